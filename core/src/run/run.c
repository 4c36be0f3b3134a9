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

#include <dirent.h>

#include "base/comm.h"
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

/* ---- ranks other than 0 ------------------------------------------------------ */

/* Under MPI only rank 0 writes the run directory. The other ranks run the
 * same stages on a private scratch directory, removed at the end; on
 * --resume, rank 0 sends them the files of its directory first, so that
 * every rank resumes from the same state even without a shared disk. */

static dd_status make_scratch_dir(dd_run *run) {
    const char *tmp = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/distill-rank%d-XXXXXX", tmp && *tmp ? tmp : "/tmp",
             dd_comm_rank());
    if (!mkdtemp(tmpl))
        return dd_error_set(DD_ERR_IO, "%s: cannot create the scratch directory of rank %d: %s",
                            tmpl, dd_comm_rank(), strerror(errno));
    if (!(run->out_dir = strdup(tmpl))) return dd_nomem();
    return DD_OK;
}

static void remove_scratch_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char path[4600];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            remove_scratch_dir(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Rank 0 sends the regular files at the top of its run directory; every
 * other rank writes them into its scratch directory. */
static dd_status mirror_run_dir(dd_run *run) {
    const int root = dd_comm_rank() == 0;
    DIR *d = root ? opendir(run->out_dir) : NULL;
    if (root && !d) return dd_error_set(DD_ERR_IO, "%s: %s", run->out_dir, strerror(errno));
    dd_status s = DD_OK;
    for (;;) {
        // per file: name length (0 ends), name, size, bytes
        char name[256] = {0};
        uint64_t len = 0, size = 0;
        char *data = NULL;
        if (root) {
            struct dirent *de;
            while ((de = readdir(d)) != NULL) {
                char path[4600];
                snprintf(path, sizeof path, "%s/%s", run->out_dir, de->d_name);
                if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof name ||
                    !dd_fs_is_file(path))
                    continue;
                size_t n = 0;
                s = dd_fs_read_file(path, SIZE_MAX, &data, &n);
                if (s != DD_OK) break;
                snprintf(name, sizeof name, "%s", de->d_name);
                len = strlen(name);
                size = n;
                break;
            }
        }
        // a failure on rank 0 ends the job (dd_comm_abort in the CLI)
        if (s != DD_OK) break;
        if ((s = dd_comm_bcast(&len, sizeof len, 0)) != DD_OK) break;
        if (len == 0) break;
        if ((s = dd_comm_bcast(name, sizeof name, 0)) != DD_OK) break;
        if ((s = dd_comm_bcast(&size, sizeof size, 0)) != DD_OK) break;
        if (!root && !(data = malloc(size ? size : 1))) {
            s = dd_nomem();
            break;
        }
        if ((s = dd_comm_bcast(data, size, 0)) == DD_OK && !root) {
            char path[4600];
            snprintf(path, sizeof path, "%s/%s", run->out_dir, name);
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(data, 1, size, f) != size)
                s = dd_error_set(DD_ERR_IO, "%s: %s", path, strerror(errno));
            if (f && fclose(f) != 0 && s == DD_OK)
                s = dd_error_set(DD_ERR_IO, "%s: %s", path, strerror(errno));
        }
        free(data);
        if (s != DD_OK) break;
    }
    if (d) closedir(d);
    return s;
}

static dd_status prepare_out_dir(dd_run *run) {
    if (dd_comm_size() == 1) return make_out_dir(run);
    DD_TRY(dd_comm_rank() == 0 ? make_out_dir(run) : make_scratch_dir(run));
    if (run->ro && run->ro->resume) DD_TRY(mirror_run_dir(run));
    return DD_OK;
}

/* ---- stages --------------------------------------------------------------- */

dd_status dd_run_pipeline(const dd_registry *reg, const dd_pipeline *p, const dd_run_options *ro) {
    return dd_run_pipeline_source(reg, p, ro, NULL);
}

dd_status dd_run_pipeline_source(const dd_registry *reg, const dd_pipeline *p,
                                 const dd_run_options *ro, const dd_run_source *src) {
    if (!reg || !p) return dd_error_set(DD_ERR_INVALID, "dd_run_pipeline: NULL argument");
    dd_run run = {.reg = reg, .p = p, .ro = ro, .source = src};
    dd_status s = prepare_out_dir(&run);
    if (s == DD_OK) s = write_config(&run);
    if (s == DD_OK) dd_info("run '%s' → %s", dd_pipeline_name(p), run.out_dir);
    for (size_t i = 0; s == DD_OK && i < dd_pipeline_stage_count(p); i++) {
        dd_stage st = dd_pipeline_stage(p, i);
        // the report is rank 0's alone (it reads what every rank computed)
        if (st == DD_STAGE_REPORT && dd_comm_rank() > 0) continue;
        dd_debug("stage %s", dd_stage_name(st));
        s = dd_stage_get(st)->run(&run);
        if (s != DD_OK) dd_error_prefix("stage '%s'", dd_stage_name(st));
    }
    dd_stage_state_destroy(run.engine);
    dd_netpool_destroy(run.pool);
    if (dd_comm_rank() > 0 && run.out_dir) remove_scratch_dir(run.out_dir);
    free(run.out_dir);
    free(run.data_root);
    dd_dataset_destroy(run.train);
    dd_dataset_destroy(run.test);
    return s;
}
