/* distill — the fetch and load stages: the dataset's files fetched (or
 * found in the cache or dataset.path), then read by the dataset plugin. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "config/options.h"
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
    const dd_dataset_ops *ops = c->ops;
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
    DD_TRY(ops->load(&req, &run->train, &run->test));
    if (!run->train || !run->test || run->train->n <= 0)
        return dd_error_set(DD_ERR_PLUGIN, "dataset plugin '%s' returned no training images",
                            c->name);
    dd_info("loaded %s: %lld training / %lld test images, %d×%d×%d, %d classes", req.dataset,
            (long long)run->train->n, (long long)run->test->n, run->train->channels,
            run->train->height, run->train->width, run->train->n_classes);
    return DD_OK;
}
