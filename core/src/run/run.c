/* distill — running a pipeline: output directory, resolved config, and the
 * stages in order. Each stage is one function in the `stages` table below. */
#define _GNU_SOURCE
#include "run/run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "distill/log.h"
#include "run/stages.h"
#include "data/fetch.h"
#include "config/options.h"
#include "engine/netpool.h"
#include "base/fs.h"

static dd_status nomem(void) { return dd_error_set(DD_ERR_NOMEM, "out of memory"); }

static int dir_is_empty(const char *path) {
    char probe[4200];
    static const char *const names[] = {"config.yaml", "checkpoint.bin", "metrics.json"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(probe, sizeof probe, "%s/%s", path, names[i]);
        if (access(probe, F_OK) == 0) return 0;
    }
    return 1;
}

static dd_status make_out_dir(dd_run *run) {
    const dd_run_options *ro = run->ro;
    if (ro && ro->out_dir) {
        if (!(run->out_dir = strdup(ro->out_dir))) return nomem();
    } else {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        if (asprintf(&run->out_dir, "runs/%s-%s", dd_pipeline_name(run->p), stamp) < 0) {
            run->out_dir = NULL;
            return nomem();
        }
    }
    struct stat st;
    int exists = stat(run->out_dir, &st) == 0;
    if (ro && ro->resume && !exists)
        return dd_error_set(DD_ERR_NOT_FOUND, "%s: nothing to resume (the directory does not exist)",
                            run->out_dir);
    if (exists && !(ro && ro->resume) && !dir_is_empty(run->out_dir))
        return dd_error_set(DD_ERR_INVALID,
                            "%s: already holds a run (use --resume to continue it, or another --out)",
                            run->out_dir);
    return dd_fs_mkdir_p(run->out_dir);
}

static dd_status write_config(dd_run *run) {
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/config.yaml", run->out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return dd_error_set(DD_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    dd_status s = dd_pipeline_write_config(run->p, f);
    if (fclose(f) != 0 && s == DD_OK) s = dd_error_set(DD_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (s == DD_OK && rename(tmp, path) != 0)
        s = dd_error_set(DD_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (s != DD_OK) remove(tmp);
    return s;
}

/* ---- stages --------------------------------------------------------------- */

// Fetches (or, offline, finds in the cache / dataset.path) the dataset files.
static dd_status find_data(dd_run *run, int offline) {
    const dd_options *d = dd_pipeline_section(run->p, "dataset");
    size_t n_mirrors = dd_options_list_len(d, "mirrors");
    const char **mirrors = calloc(n_mirrors + 1, sizeof *mirrors);
    if (!mirrors) return nomem();
    for (size_t i = 0; i < n_mirrors; i++) mirrors[i] = dd_options_list_item(d, "mirrors", i);
    dd_fetch_options fo = {
        .cache_dir = run->ro && run->ro->cache_dir ? run->ro->cache_dir : dd_options_string(d, "cache_dir"),
        .offline = offline,
        .extra_mirrors = mirrors,
        .local_path = dd_options_string(d, "path"),
        .verify = dd_options_bool(d, "verify"),
        .quiet = dd_log_get_level() < DD_LOG_INFO,
    };
    free(run->data_root);
    run->data_root = NULL;
    dd_status s = dd_fetch_dataset(dd_options_string(d, "name"), &fo, &run->data_root);
    free(mirrors);
    return s;
}

static dd_status stage_fetch(dd_run *run) {
    return find_data(run, run->ro && run->ro->offline);
}

static dd_status stage_load(dd_run *run) {
    // Without a fetch stage nothing is downloaded or verified: read
    // dataset.path as it is, or else the cache.
    if (!run->data_root) {
        const char *path = dd_options_string(dd_pipeline_section(run->p, "dataset"), "path");
        if (path && !(run->data_root = strdup(path))) return nomem();
        if (!path) DD_TRY(find_data(run, 1));
    }
    const dd_component *c = dd_pipeline_component(run->p, DD_COMPONENT_DATASET);
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
    DD_TRY(ops->load(&req, &run->train, &run->test));
    if (!run->train || !run->test || run->train->n <= 0)
        return dd_error_set(DD_ERR_PLUGIN, "dataset plugin '%s' returned no training images", c->name);
    dd_info("loaded %s: %lld training / %lld test images, %d×%d×%d, %d classes", req.dataset,
            (long long)run->train->n, (long long)run->test->n, run->train->channels,
            run->train->height, run->train->width, run->train->n_classes);
    return DD_OK;
}

/* ---- Hand-off point for the engine ----------------------------------------
 * Later stages plug in here: add `static dd_status stage_<name>(dd_run *run)`
 * and put it in the table. A NULL entry means "not available in this build":
 * the run stops cleanly before it with a warning. Results a stage produces
 * for later ones go into dd_run (run.h). */
typedef dd_status (*stage_fn)(dd_run *run);

static const stage_fn stages[DD_STAGE_COUNT] = {
    [DD_STAGE_FETCH] = stage_fetch,
    [DD_STAGE_LOAD] = stage_load,
    [DD_STAGE_PRETRAIN] = dd_stage_pretrain,
    [DD_STAGE_DISTILL] = dd_stage_distill,
    [DD_STAGE_EVALUATE] = dd_stage_evaluate,
    [DD_STAGE_REPORT] = dd_stage_report,
};

dd_status dd_run_pipeline(const dd_registry *reg, const dd_pipeline *p, const dd_run_options *ro) {
    if (!reg || !p) return dd_error_set(DD_ERR_INVALID, "dd_run_pipeline: NULL argument");
    dd_run run = {.reg = reg, .p = p, .ro = ro};
    dd_status s = make_out_dir(&run);
    if (s == DD_OK) s = write_config(&run);
    if (s == DD_OK) dd_info("run '%s' → %s", dd_pipeline_name(p), run.out_dir);
    for (size_t i = 0; s == DD_OK && i < dd_pipeline_stage_count(p); i++) {
        dd_stage st = dd_pipeline_stage(p, i);
        if (!stages[st]) {
            dd_warn("stage '%s' is not available in this build yet; stopping before it",
                    dd_stage_name(st));
            break;
        }
        dd_debug("stage %s", dd_stage_name(st));
        s = stages[st](&run);
        if (s != DD_OK) dd_error_prefix("stage '%s'", dd_stage_name(st));
    }
    dd_stage_state_destroy(run.engine);
    dd_netpool_destroy(run.pool);
    free(run.out_dir);
    free(run.data_root);
    dd_dataset_destroy(run.train);
    dd_dataset_destroy(run.test);
    return s;
}
