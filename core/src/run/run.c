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

#include "base/error.h"
#include "distill/log.h"
#include "run/stage_table.h"
#include "run/stage_source.h"
#include "run/stages.h"
#include "config/options.h"
#include "engine/netpool.h"
#include "base/fs.h"

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
        if (!(run->out_dir = strdup(ro->out_dir))) return dd_nomem();
    } else {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        if (asprintf(&run->out_dir, "runs/%s-%s", dd_pipeline_name(run->p), stamp) < 0) {
            run->out_dir = NULL;
            return dd_nomem();
        }
    }
    struct stat st;
    int exists = stat(run->out_dir, &st) == 0;
    if (ro && ro->resume && !exists)
        return dd_error_set(DD_ERR_NOT_FOUND,
                            "%s: nothing to resume (the directory does not exist)", run->out_dir);
    const int replace = run->source && run->source->replace_output;
    if (exists && !(ro && ro->resume) && !replace && !dir_is_empty(run->out_dir))
        return dd_error_set(
            DD_ERR_INVALID,
            "%s: already holds a run (use --resume to continue it, or another --out)",
            run->out_dir);
    return dd_fs_mkdir_p(run->out_dir);
}

static dd_status write_config(dd_run *run) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.yaml", run->out_dir);
    dd_fs_atomic a;
    DD_TRY(dd_fs_atomic_open(&a, path));
    if (run->source && run->source->comment) {
        // one "# " line per line of the comment
        for (const char *c = run->source->comment; *c;) {
            size_t n = strcspn(c, "\n");
            fprintf(a.f, "# %.*s\n", (int)n, c);
            c += n + (c[n] == '\n');
        }
    }
    dd_status s = dd_pipeline_write_config(run->p, a.f);
    if (s != DD_OK) {
        dd_fs_atomic_abort(&a);
        return s;
    }
    return dd_fs_atomic_commit(&a);
}

/* ---- stages --------------------------------------------------------------- */

dd_status dd_run_pipeline(const dd_registry *reg, const dd_pipeline *p, const dd_run_options *ro) {
    return dd_run_pipeline_source(reg, p, ro, NULL);
}

dd_status dd_run_pipeline_source(const dd_registry *reg, const dd_pipeline *p,
                                 const dd_run_options *ro, const dd_run_source *src) {
    if (!reg || !p) return dd_error_set(DD_ERR_INVALID, "dd_run_pipeline: NULL argument");
    dd_run run = {.reg = reg, .p = p, .ro = ro, .source = src};
    dd_status s = make_out_dir(&run);
    if (s == DD_OK) s = write_config(&run);
    if (s == DD_OK) dd_info("run '%s' → %s", dd_pipeline_name(p), run.out_dir);
    for (size_t i = 0; s == DD_OK && i < dd_pipeline_stage_count(p); i++) {
        dd_stage st = dd_pipeline_stage(p, i);
        dd_debug("stage %s", dd_stage_name(st));
        s = dd_stage_get(st)->run(&run);
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
