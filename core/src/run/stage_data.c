/* distill — the fetch and load stages: the dataset's files fetched (or
 * found in the cache or dataset.path), then read by the dataset plugin. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "base/error.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "config/options.h"
#include "data/dcache.h"
#include "data/fetch.h"
#include "distill/limits.h"
#include "distill/log.h"
#include "run/pipeline.h"
#include "run/run.h"
#include "run/stages.h"

// Fetches (or, offline, finds in the cache / dataset.path) the dataset files.
static dd_status find_data(dd_run *run, int offline) {
    const dd_options *d = dd_pipeline_section(run->p, "dataset");
    size_t n_mirrors = dd_options_list_len(d, "mirrors");
    const char **mirrors = calloc(n_mirrors + 1, sizeof *mirrors);
    if (!mirrors) return dd_nomem();
    for (size_t i = 0; i < n_mirrors; i++)
        mirrors[i] = dd_options_list_item(d, "mirrors", i);
    dd_fetch_options fo = {
        .cache_dir =
            run->ro && run->ro->cache_dir ? run->ro->cache_dir : dd_options_string(d, "cache_dir"),
        .offline = offline,
        .extra_mirrors = mirrors,
        .local_path = dd_options_string(d, "path"),
        .verify = dd_options_bool(d, "verify"),
        .quiet = dd_log_get_level() < DD_LOG_INFO,
    };
    free(run->data_root);
    run->data_root = NULL;
    const dd_dataset_ops *ops = dd_pipeline_component(run->p, DD_COMPONENT_DATASET)->ops;
    dd_status s;
    if (ops->flags & DD_DATASET_LOCAL) {
        // The user's own files: no manifest, nothing to download; an archive
        // is unpacked into the cache when the reader asks for it.
        s = dd_fetch_local_path(dd_options_string(d, "name"), fo.local_path, &fo,
                                (ops->flags & DD_DATASET_UNPACK_PATH) != 0, &run->data_root);
        free(mirrors);
        return s;
    }
    s = dd_fetch_dataset(dd_options_string(d, "name"), &fo, &run->data_root);
    free(mirrors);
    return s;
}

dd_status dd_stage_fetch(dd_run *run) {
    return find_data(run, run->ro && run->ro->offline);
}

// Dataset keys that do not change the decoded pixels: where files come
// from, how they are checked, resource limits (they refuse, never alter),
// and the cache's own switches.
static const char *const not_in_key[] = {
    "mirrors",   "verify", "cache_dir", "max_image_dim",  "max_image_pixels",
    "max_bytes", "cache",  "memory",    "mmap_threshold", NULL};

static int keyed(const char *key) {
    for (const char *const *k = not_in_key; *k; k++)
        if (strcmp(*k, key) == 0) return 0;
    return 1;
}

/* The reader's identity (plugin, version, ABI, and the plugin file's size
 * and mtime, so a rebuilt reader decodes again) and every option that
 * shapes its output. */
static char *key_text(const dd_run *run, const dd_component *c, const dd_dataset_request *req) {
    const dd_options *d = req->options;
    dd_strbuf b = DD_STRBUF_INIT;
    dd_strbuf_printf(&b, "reader %s abi %u\n", c->name, (unsigned)DD_PLUGIN_ABI_VERSION);
    // What the request itself asks (pretrain.source takes its size from the
    // target dataset, not from options).
    dd_strbuf_printf(&b, "request %s %dx%d\n", req->dataset ? req->dataset : "", req->height,
                     req->width);
    for (size_t i = 0; run->reg && i < dd_registry_plugin_count(run->reg); i++) {
        const dd_plugin_descriptor *pd = dd_registry_plugin(run->reg, i);
        if (!pd || c < pd->components || c >= pd->components + pd->n_components) continue;
        const char *path = dd_registry_plugin_path(run->reg, i);
        struct stat st;
        if (!path || stat(path, &st) != 0) memset(&st, 0, sizeof st);
        dd_strbuf_printf(&b, "plugin %s %s %lld %lld.%09ld\n", pd->name,
                         pd->version ? pd->version : "", (long long)st.st_size,
                         (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
    }
    for (size_t i = 0; d && i < dd_options_count(d); i++) {
        const dd_param_spec *sp = dd_options_spec(d, i);
        if (!sp || !keyed(sp->name)) continue;
        char *v = dd_options_format(d, i);
        dd_strbuf_printf(&b, "option %s=%s\n", sp->name, v ? v : "?");
        free(v);
    }
    return dd_strbuf_take(&b);
}

dd_status dd_stage_read_dataset(dd_run *run, const dd_component *c, const dd_dataset_request *req,
                                dd_dataset **train, dd_dataset **test, dd_dcache_info *info) {
    const dd_options *d = dd_pipeline_component_options(run->p, DD_COMPONENT_DATASET);
    const dd_dataset_ops *ops = c->ops;
    const char *mem = dd_options_string(d, "memory");
    dd_memory_mode mode = !mem || strcmp(mem, "auto") == 0 ? DD_MEMORY_AUTO
                          : strcmp(mem, "ram") == 0        ? DD_MEMORY_RAM
                                                           : DD_MEMORY_MMAP;
    if (!dd_options_bool(d, "cache")) {
        if (mode == DD_MEMORY_MMAP)
            return dd_error_set(DD_ERR_INVALID,
                                "dataset.memory: mmap maps the decoded cache, but dataset.cache "
                                "is false");
        return ops->load(req, train, test);
    }
    dd_fetch_options fo;
    dd_fetch_options_init(&fo);
    fo.cache_dir =
        run->ro && run->ro->cache_dir ? run->ro->cache_dir : dd_options_string(d, "cache_dir");
    char *root = NULL, *dsdir = NULL, *dir = NULL, *key = NULL;
    dd_status s = dd_fetch_cache_root(&fo, &root);
    if (s == DD_OK) {
        dsdir = dd_fs_join(root, req->dataset ? req->dataset : c->name);
        dir = dsdir ? dd_fs_join(dsdir, "decoded") : NULL;
        key = key_text(run, c, req);
        if (!dir || !key) s = dd_nomem();
    }
    if (s == DD_OK) {
        dd_dcache_config cfg = {
            .dir = dir,
            .key_text = key,
            .inputs = req->root,
            .memory = mode,
            .mmap_threshold = dd_options_int(d, "mmap_threshold"),
        };
        s = dd_dcache_load(&cfg, ops, req, train, test, info);
    }
    free(root);
    free(dsdir);
    free(dir);
    free(key);
    return s;
}

dd_status dd_stage_load(dd_run *run) {
    // Without a fetch stage nothing is downloaded or verified: read
    // dataset.path as it is, or else the cache.
    const dd_component *c = dd_pipeline_component(run->p, DD_COMPONENT_DATASET);
    if (!run->data_root) {
        const char *path = dd_options_string(dd_pipeline_section(run->p, "dataset"), "path");
        const dd_dataset_ops *lops = c->ops;
        if (lops->flags & DD_DATASET_LOCAL)
            DD_TRY(find_data(run, 1)); // a local archive still needs unpacking
        else if (path && !(run->data_root = strdup(path)))
            return dd_nomem();
        else if (!path)
            DD_TRY(find_data(run, 1));
    }
    const dd_options *d = dd_pipeline_component_options(run->p, DD_COMPONENT_DATASET);
    dd_dataset_request req = {
        .struct_size = sizeof req,
        .dataset = dd_options_string(d, "name"),
        .root = run->data_root,
        .options = d,
        .height = (int)dd_options_int(d, "height"),
        .width = (int)dd_options_int(d, "width"),
    };
    dd_limits_set(dd_options_int(d, "max_image_dim"), dd_options_int(d, "max_image_pixels"),
                  dd_options_int(d, "max_bytes"));
    dd_dcache_info info;
    memset(&info, 0, sizeof info);
    DD_TRY(dd_stage_read_dataset(run, c, &req, &run->train, &run->test, &info));
    if (!run->train || !run->test || run->train->n <= 0)
        return dd_error_set(DD_ERR_PLUGIN, "dataset plugin '%s' returned no training images",
                            c->name);
    dd_info("loaded %s: %lld training / %lld test images, %d×%d×%d, %d classes%s", req.dataset,
            (long long)run->train->n, (long long)run->test->n, run->train->channels,
            run->train->height, run->train->width, run->train->n_classes,
            info.reused ? (info.mapped ? " (decoded cache, mapped)" : " (decoded cache)")
            : info.written
                ? (info.mapped ? " (decoded; cache written, mapped)" : " (decoded; cache written)")
                : "");
    return DD_OK;
}
