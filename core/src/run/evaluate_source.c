/* distill — `distill evaluate SOURCE`: evaluates an existing distilled set (a
 * run directory's export, or an .npz in the distilled.npz layout) with the
 * run's pipeline or a given one, without distilling again. */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/fs.h"
#include "distill/host.h"
#include "distill/log.h"
#include "engine/distilled.h"
#include "run/pipeline.h"
#include "run/run.h"
#include "run/stage_source.h"

/* The first line of an evaluation's config.yaml: an output directory that
 * starts with it holds an earlier evaluation and may be replaced. */
static const char marker[] = "distill evaluate: ";

static int is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int exists(const char *dir, const char *name) {
    char p[2 * PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* What is being evaluated, worked out from SOURCE (and PIPELINE). */
typedef struct source_plan {
    char set_path[PATH_MAX + 64]; /* the directory or the .npz the set is read from */
    char pipeline[PATH_MAX + 64];
    char out_dir[PATH_MAX + 64];
    char src_dir[PATH_MAX]; /* the run directory (or the .npz's directory) */
    int is_npz;
} source_plan;

static dd_status plan_source(const char *source, const char *pipeline, source_plan *pl) {
    memset(pl, 0, sizeof *pl);
    if (strlen(source) >= PATH_MAX - 64 || (pipeline && strlen(pipeline) >= PATH_MAX))
        return dd_error_set(DD_ERR_INVALID, "%s: path too long", source);
    struct stat sb;
    if (stat(source, &sb) != 0)
        return dd_error_set(DD_ERR_NOT_FOUND,
                            "%s: %s (SOURCE is a run directory or a distilled .npz)", source,
                            strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        snprintf(pl->src_dir, sizeof pl->src_dir, "%s", source);
        const int has_cfg = exists(source, "config.yaml");
        if (exists(source, "distilled-images.idx")) {
            snprintf(pl->set_path, sizeof pl->set_path, "%s", source);
        } else if (exists(source, "distilled.npz")) {
            snprintf(pl->set_path, sizeof pl->set_path, "%s/distilled.npz", source);
            pl->is_npz = 1;
        } else {
            return dd_error_set(DD_ERR_NOT_FOUND,
                                "%s: %s no distilled set (neither distilled-images.idx nor "
                                "distilled.npz): not a run directory that distilled a set",
                                source,
                                has_cfg ? "has a config.yaml but" : "has no config.yaml and");
        }
        if (!pipeline && !has_cfg)
            return dd_error_set(DD_ERR_NOT_FOUND,
                                "%s: no config.yaml (the pipeline the set was distilled with); "
                                "give a PIPELINE",
                                source);
        snprintf(pl->out_dir, sizeof pl->out_dir, "%s/evaluation", source);
    } else {
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s", source);
        snprintf(pl->src_dir, sizeof pl->src_dir, "%s", dirname(tmp));
        snprintf(pl->set_path, sizeof pl->set_path, "%s", source);
        pl->is_npz = 1;
        if (!pipeline && !exists(pl->src_dir, "config.yaml"))
            return dd_error_set(DD_ERR_NOT_FOUND,
                                "%s: an .npz needs a PIPELINE (the dataset, model and init mode "
                                "to evaluate it with): there is no config.yaml beside it",
                                source);
        snprintf(tmp, sizeof tmp, "%s", source);
        char *stem = basename(tmp);
        size_t n = strlen(stem);
        if (n > 4 && strcmp(stem + n - 4, ".npz") == 0) stem[n - 4] = '\0';
        snprintf(pl->out_dir, sizeof pl->out_dir, "%s/%s-evaluation", pl->src_dir, stem);
    }
    if (pipeline)
        snprintf(pl->pipeline, sizeof pl->pipeline, "%s", pipeline);
    else
        snprintf(pl->pipeline, sizeof pl->pipeline, "%s/config.yaml", pl->src_dir);
    return DD_OK;
}

/* The output directory must not be the source's own (its metrics.json and
 * report.md stay as they are) nor hold another run; an earlier evaluation
 * is replaced. */
static dd_status check_out_dir(const char *out, const char *src_dir, int *replace) {
    *replace = 0;
    if (!is_dir(out)) return DD_OK;
    char a[PATH_MAX], b[PATH_MAX];
    if (realpath(out, a) && realpath(src_dir, b) && strcmp(a, b) == 0)
        return dd_error_set(DD_ERR_INVALID,
                            "%s: is the source's own directory; the evaluation would overwrite its "
                            "metrics.json and report.md (choose another --out)",
                            out);
    if (!exists(out, "config.yaml") && !exists(out, "metrics.json") &&
        !exists(out, "checkpoint.bin"))
        return DD_OK;
    char cfg[2 * PATH_MAX], line[256] = "";
    snprintf(cfg, sizeof cfg, "%s/config.yaml", out);
    FILE *f = fopen(cfg, "r");
    if (f) {
        if (!fgets(line, sizeof line, f)) line[0] = '\0';
        fclose(f);
    }
    if (strncmp(line, "# ", 2) != 0 || strncmp(line + 2, marker, sizeof marker - 1) != 0 ||
        exists(out, "checkpoint.bin"))
        return dd_error_set(
            DD_ERR_INVALID,
            "%s: already holds a run's results (not an earlier 'distill evaluate'); "
            "choose another --out",
            out);
    *replace = 1;
    return DD_OK;
}

static dd_status read_set(const source_plan *pl, dd_distilled **set, int *has_norm) {
    *has_norm = 0;
    if (pl->is_npz) return dd_distilled_load_npz(pl->set_path, set, has_norm);
    return dd_distilled_load(pl->set_path, set);
}

/* The user's overrides, then the stages and the set's shape. Caller frees
 * the strings from index n_user on, and the array. */
static dd_status build_overrides(const char *const *user, int fetch, int pretrain,
                                 const dd_distilled *set, char ***out) {
    size_t n = 0;
    while (user && user[n])
        n++;
    char **ov = calloc(n + 5, sizeof *ov);
    if (!ov) return dd_nomem();
    for (size_t i = 0; i < n; i++)
        ov[i] = (char *)user[i];
    int ok = asprintf(&ov[n], "stages=[%sload,%sevaluate,report]", fetch ? "fetch," : "",
                      pretrain ? "pretrain," : "") >= 0 &&
             asprintf(&ov[n + 1], "distill.steps=%d", set->steps) >= 0 &&
             asprintf(&ov[n + 2], "distill.epochs=%d", set->epochs) >= 0;
    // (no whole number of images per class: the evaluate stage says why)
    if (ok && set->images_per_class > 0)
        ok = asprintf(&ov[n + 3], "distill.images_per_class=%d", set->images_per_class) >= 0;
    if (!ok) {
        for (size_t i = n; i < n + 4; i++)
            free(ov[i]);
        free(ov);
        return dd_nomem();
    }
    *out = ov;
    return DD_OK;
}

dd_status dd_evaluate_source(const dd_registry *reg, const char *source, const char *pipeline,
                             const char *const *overrides, const dd_run_options *ro) {
    if (!reg || !source) return dd_error_set(DD_ERR_INVALID, "dd_evaluate_source: NULL argument");
    if (ro && ro->resume)
        return dd_error_set(DD_ERR_USAGE, "distill evaluate: --resume is for 'distill run'");
    source_plan pl;
    DD_TRY(plan_source(source, pipeline, &pl));
    // The pipeline as the user gives it first: does it fetch and pretrain
    // (those stages run again; the pretrained pool is cached), and what shape
    // does its distill section say (the set's own shape wins)?
    dd_pipeline *p = NULL;
    DD_TRY(dd_pipeline_load(pl.pipeline, overrides, reg, &p));
    const int fetch = dd_pipeline_has_stage(p, DD_STAGE_FETCH);
    const int pretrain =
        dd_pipeline_has_stage(p, DD_STAGE_PRETRAIN) || dd_pipeline_section_present(p, "pretrain");
    const dd_options *dopt = dd_pipeline_section(p, "distill");
    int64_t steps = dopt ? dd_options_int(dopt, "steps") : 0,
            epochs = dopt ? dd_options_int(dopt, "epochs") : 0,
            ipc = dopt ? dd_options_int(dopt, "images_per_class") : 0;
    dd_pipeline_destroy(p);
    p = NULL;

    dd_distilled *set = NULL;
    int has_norm = 0;
    DD_TRY(read_set(&pl, &set, &has_norm));
    if (steps != set->steps || epochs != set->epochs || ipc != set->images_per_class)
        dd_info("evaluate: the set in %s has %d steps × %d epochs × %d per class (the pipeline "
                "says %lld × %lld × %lld): the set's shape is used",
                pl.set_path, set->steps, set->epochs, set->images_per_class, (long long)steps,
                (long long)epochs, (long long)ipc);
    char **ov = NULL;
    size_t n_user = 0;
    while (overrides && overrides[n_user])
        n_user++;
    dd_status s = build_overrides(overrides, fetch, pretrain, set, &ov);
    if (s == DD_OK) s = dd_pipeline_load(pl.pipeline, (const char *const *)ov, reg, &p);

    dd_run_options o = {.struct_size = sizeof o};
    if (ro) memcpy(&o, ro, ro->struct_size < sizeof o ? ro->struct_size : sizeof o);
    o.struct_size = sizeof o;
    if (!o.out_dir) o.out_dir = pl.out_dir;
    int replace = 0;
    if (s == DD_OK) s = check_out_dir(o.out_dir, pl.src_dir, &replace);
    char *comment = NULL;
    if (s == DD_OK &&
        asprintf(&comment,
                 "%sthe distilled set in %s (%d steps × %d epochs × %d image(s) per class, %s "
                 "labels),\nevaluated with the pipeline %s; nothing was distilled again.",
                 marker, pl.set_path, set->steps, set->epochs, set->images_per_class,
                 set->soft ? "soft" : "hard", pl.pipeline) < 0) {
        comment = NULL;
        s = dd_nomem();
    }
    if (s == DD_OK) {
        const dd_run_source src = {.label = pl.set_path,
                                   .set = set,
                                   .has_norm = has_norm,
                                   .replace_output = replace,
                                   .comment = comment};
        dd_info("evaluate: %s → %s", pl.set_path, o.out_dir);
        s = dd_run_pipeline_source(reg, p, &o, &src);
    }
    free(comment);
    dd_pipeline_destroy(p);
    if (ov)
        for (size_t i = n_user; ov[i]; i++)
            free(ov[i]);
    free(ov);
    dd_distilled_destroy(set);
    return s;
}
