/* distill — the command-line tool: run, validate and evaluate pipelines, list and
 * describe plugins, list and fetch datasets. Exit status: 0 success, 1
 * failure (message on stderr), 2 usage error. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/host.h"
#include "distill/distill.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: distill [-v|-q] [--log-level LEVEL] [--plugin-path DIR] COMMAND [ARGS]\n"
    "\n"
    "Dataset distillation: learn a few synthetic training images that train a\n"
    "network almost as well as the full dataset.\n"
    "\n"
    "commands:\n"
    "  run PIPELINE [--set KEY=VALUE]... [--out DIR] [--resume] [--offline] [--cache-dir DIR]\n"
    "                       validate and run a pipeline (YAML)\n"
    "  evaluate SOURCE [PIPELINE] [--set KEY=VALUE]... [--out DIR] [--offline] [--cache-dir DIR]\n"
    "                       evaluate a run directory's distilled set, or a distilled .npz,\n"
    "                       without distilling again (output: SOURCE/evaluation/ or\n"
    "                       <npz-stem>-evaluation/ beside the .npz)\n"
    "  validate PIPELINE [--set KEY=VALUE]...\n"
    "                       check a pipeline without running it\n"
    "  plugins [--describe NAME]\n"
    "                       list plugins, or the parameters of a component or section\n"
    "  datasets [--cache-dir DIR]\n"
    "                       list known datasets and whether they are cached\n"
    "  fetch DATASET [--cache-dir DIR] [--offline] [--mirror URL]...\n"
    "                       download, verify and unpack a dataset into the cache\n"
    "\n"
    "global options:\n"
    "  -v, --verbose        more output (repeat for trace); -q, --quiet: less\n"
    "  --log-level LEVEL    error, warn, info (default), debug or trace; also DISTILL_LOG\n"
    "  --plugin-path DIR    search DIR for plugins first (also DISTILL_PLUGIN_PATH)\n"
    "  -h, --help           this help; 'distill COMMAND --help' for a command\n"
    "  --version            print the version\n"
    "\n"
    "--set KEY=VALUE overrides any pipeline key, e.g. --set distill.steps=5 or\n"
    "--set evaluate.baselines=[random,kmeans]. See docs/cli.md and docs/pipelines.md.\n";

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "distill: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'distill --help'.\n");
    return EXIT_USAGE;
}

static int fail(void) {
    const char *msg = dd_error_message();
    if (dd_process_count() > 1)
        fprintf(stderr, "distill: error (rank %d of %d): %s\n", dd_process_rank(),
                dd_process_count(), *msg ? msg : dd_status_str(dd_error_status()));
    else
        fprintf(stderr, "distill: error: %s\n", *msg ? msg : dd_status_str(dd_error_status()));
    return dd_error_status() == DD_ERR_USAGE ? EXIT_USAGE : EXIT_FAIL;
}

/* ---- argument scanning ------------------------------------------------------ */

typedef struct args {
    int argc, i;
    char **argv;
    const char *cmd;
} args;

// Matches "--name VALUE" or "--name=VALUE" at the cursor; *value set on match.
// Returns 1 on match, 0 if not this option, -1 on a missing value.
static int opt_value(args *a, const char *name, const char **value) {
    const char *s = a->argv[a->i];
    size_t len = strlen(name);
    if (strncmp(s, name, len) != 0) return 0;
    if (s[len] == '=') {
        *value = s + len + 1;
        return 1;
    }
    if (s[len] != '\0') return 0;
    if (a->i + 1 >= a->argc) return -1;
    *value = a->argv[++a->i];
    return 1;
}

static int is_help(const char *s) {
    return strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0;
}

static dd_status load_registry(int lenient, dd_registry **reg) {
    dd_status s = dd_registry_load(lenient, reg);
    if (s != DD_OK) dd_error_prefix("loading plugins");
    return s;
}

/* ---- Ctrl-C ----------------------------------------------------------------- */

// A signal handler can only talk to the program through a static flag of
// type sig_atomic_t; the run reads it through dd_run_options.cancel.
static volatile sig_atomic_t g_cancel;
static struct sigaction g_old_int, g_old_term;
static int g_watching;

static void on_cancel_signal(int sig) {
    (void)sig;
    g_cancel = 1;
}

/* SIGINT/SIGTERM raise g_cancel while the run reads it (the distill stage:
 * it stops at the next iteration with a checkpoint); elsewhere they keep
 * their default action and end the process at once. */
static void watch_cancel(int watching, void *user) {
    (void)user;
    if (watching && !g_watching) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_cancel_signal;
        sigemptyset(&sa.sa_mask);
        g_cancel = 0;
        if (sigaction(SIGINT, &sa, &g_old_int) != 0) return;
        if (sigaction(SIGTERM, &sa, &g_old_term) != 0) {
            sigaction(SIGINT, &g_old_int, NULL);
            return;
        }
        g_watching = 1;
    } else if (!watching && g_watching) {
        sigaction(SIGINT, &g_old_int, NULL);
        sigaction(SIGTERM, &g_old_term, NULL);
        g_watching = 0;
    }
}

/* ---- run / validate --------------------------------------------------------- */

static int cmd_run(args *a, int validate_only) {
    const char *pipeline = NULL;
    const char **sets = calloc((size_t)a->argc + 1, sizeof *sets);
    if (!sets) return dd_error_set(DD_ERR_NOMEM, "out of memory"), fail();
    size_t n_sets = 0;
    dd_run_options ro = {
        .struct_size = sizeof ro, .cancel = &g_cancel, .cancel_watch = watch_cancel};
    int rc = EXIT_OK;
    for (a->i++; a->i < a->argc && rc == EXIT_OK; a->i++) {
        const char *s = a->argv[a->i], *v = NULL;
        int m;
        if (is_help(s)) {
            printf("%s",
                   validate_only
                       ? "usage: distill validate PIPELINE [--set KEY=VALUE]...\n"
                       : "usage: distill run PIPELINE [--set KEY=VALUE]... [--out DIR] [--resume] "
                         "[--offline] [--cache-dir DIR]\n");
            free(sets);
            return EXIT_OK;
        }
        if ((m = opt_value(a, "--set", &v)) != 0) {
            if (m < 0)
                rc = usage_error("option '%s' needs KEY=VALUE", s);
            else
                sets[n_sets++] = v;
        } else if (!validate_only && (m = opt_value(a, "--out", &v)) != 0) {
            if (m < 0)
                rc = usage_error("option '%s' needs a directory", s);
            else
                ro.out_dir = v;
        } else if (!validate_only && (m = opt_value(a, "--cache-dir", &v)) != 0) {
            if (m < 0)
                rc = usage_error("option '%s' needs a directory", s);
            else
                ro.cache_dir = v;
        } else if (!validate_only && strcmp(s, "--resume") == 0) {
            ro.resume = 1;
        } else if (!validate_only && strcmp(s, "--offline") == 0) {
            ro.offline = 1;
        } else if (s[0] == '-' && s[1] != '\0') {
            rc = usage_error("unknown option '%s'", s);
        } else if (!pipeline) {
            pipeline = s;
        } else {
            rc = usage_error("unexpected argument '%s' (one pipeline per run)", s);
        }
    }
    if (rc == EXIT_OK && !pipeline) rc = usage_error("%s: missing PIPELINE (a .yaml file)", a->cmd);
    if (rc != EXIT_OK) {
        free(sets);
        return rc;
    }
    dd_registry *reg = NULL;
    dd_pipeline *p = NULL;
    dd_status s = load_registry(0, &reg);
    if (s == DD_OK) s = dd_pipeline_load(pipeline, sets, reg, &p);
    if (s == DD_OK && validate_only) {
        char summary[1024];
        dd_pipeline_summary(p, summary, sizeof summary);
        printf("OK: %s\n", summary);
    } else if (s == DD_OK) {
        s = dd_run_pipeline(reg, p, &ro);
    }
    rc = s == DD_OK ? EXIT_OK : fail();
    dd_pipeline_destroy(p);
    dd_registry_destroy(reg);
    free(sets);
    return rc;
}

/* ---- evaluate ---------------------------------------------------------------- */

static const char evaluate_help[] =
    "usage: distill evaluate SOURCE [PIPELINE] [--set KEY=VALUE]... [--out DIR] [--offline]\n"
    "                        [--cache-dir DIR]\n"
    "\n"
    "Evaluates an existing distilled set without distilling again, writing the same\n"
    "metrics.json and report.md as 'distill run'.\n"
    "\n"
    "SOURCE   a run directory (its exported set, or its distilled.npz when only that\n"
    "         is there), or an .npz in the distilled.npz layout written by distill or\n"
    "         by another tool (arrays images, labels, lrs; optional step, mean, std;\n"
    "         docs/output.md)\n"
    "PIPELINE the pipeline to evaluate with; default: the run directory's config.yaml\n"
    "         (for an .npz: the config.yaml beside it; otherwise PIPELINE is required)\n"
    "\n"
    "Stages: fetch, load, pretrain (if the pipeline has it), evaluate, report.\n"
    "distill.steps, epochs and images_per_class come from the set's shape; --set\n"
    "overrides the rest (e.g. --set evaluate.nets=5).\n"
    "\n"
    "--out DIR      output directory; default SOURCE/evaluation/ for a run directory,\n"
    "               <npz-stem>-evaluation/ beside an .npz. It gets metrics.json,\n"
    "               report.md, config.yaml (its first comment line says what was\n"
    "               evaluated) and the set's export. An earlier evaluation there is\n"
    "               replaced; the source's own directory and other runs are refused.\n"
    "--offline      never download; use the cache or dataset.path\n"
    "--cache-dir DIR  download/unpack cache\n";

static int cmd_evaluate(args *a) {
    const char *source = NULL, *pipeline = NULL;
    const char **sets = calloc((size_t)a->argc + 1, sizeof *sets);
    if (!sets) return dd_error_set(DD_ERR_NOMEM, "out of memory"), fail();
    size_t n_sets = 0;
    dd_run_options ro = {.struct_size = sizeof ro};
    int rc = EXIT_OK;
    for (a->i++; a->i < a->argc && rc == EXIT_OK; a->i++) {
        const char *s = a->argv[a->i], *v = NULL;
        int m;
        if (is_help(s)) {
            printf("%s", evaluate_help);
            free(sets);
            return EXIT_OK;
        }
        if ((m = opt_value(a, "--set", &v)) != 0) {
            if (m < 0)
                rc = usage_error("option '%s' needs KEY=VALUE", s);
            else
                sets[n_sets++] = v;
        } else if ((m = opt_value(a, "--out", &v)) != 0) {
            if (m < 0)
                rc = usage_error("option '%s' needs a directory", s);
            else
                ro.out_dir = v;
        } else if ((m = opt_value(a, "--cache-dir", &v)) != 0) {
            if (m < 0)
                rc = usage_error("option '%s' needs a directory", s);
            else
                ro.cache_dir = v;
        } else if (strcmp(s, "--offline") == 0) {
            ro.offline = 1;
        } else if (s[0] == '-' && s[1] != '\0') {
            rc = usage_error("unknown option '%s'", s);
        } else if (!source) {
            source = s;
        } else if (!pipeline) {
            pipeline = s;
        } else {
            rc = usage_error("unexpected argument '%s' (evaluate takes SOURCE and at most one "
                             "PIPELINE)",
                             s);
        }
    }
    if (rc == EXIT_OK && !source)
        rc = usage_error("%s: missing SOURCE (a run directory or a distilled .npz)", a->cmd);
    if (rc != EXIT_OK) {
        free(sets);
        return rc;
    }
    dd_registry *reg = NULL;
    dd_status s = load_registry(0, &reg);
    if (s == DD_OK) s = dd_evaluate_source(reg, source, pipeline, sets, &ro);
    rc = s == DD_OK ? EXIT_OK : fail();
    dd_registry_destroy(reg);
    free(sets);
    return rc;
}

/* ---- plugins ---------------------------------------------------------------- */

static void print_params_table(const dd_param_spec *spec, const char *indent) {
    size_t wk = 3, wt = 4, wd = 7, wr = 5;
    char def[256], range[256];
    for (const dd_param_spec *p = spec; p && p->name; p++) {
        dd_param_range_str(p, range, sizeof range);
        snprintf(def, sizeof def, "%s",
                 p->flags & DD_PARAM_REQUIRED ? "(required)"
                 : p->default_value           ? (*p->default_value ? p->default_value : "[]")
                                              : "-");
        if (strlen(p->name) > wk) wk = strlen(p->name);
        if (strlen(dd_param_type_str(p)) > wt) wt = strlen(dd_param_type_str(p));
        if (strlen(def) > wd) wd = strlen(def);
        if (strlen(range) > wr) wr = strlen(range);
    }
    if (wd > 24) wd = 24;
    if (wr > 32) wr = 32;
    printf("%s%-*s  %-*s  %-*s  %-*s  %s\n", indent, (int)wk, "KEY", (int)wt, "TYPE", (int)wd,
           "DEFAULT", (int)wr, "RANGE", "DESCRIPTION");
    for (const dd_param_spec *p = spec; p && p->name; p++) {
        dd_param_range_str(p, range, sizeof range);
        snprintf(def, sizeof def, "%s",
                 p->flags & DD_PARAM_REQUIRED ? "(required)"
                 : p->default_value           ? (*p->default_value ? p->default_value : "[]")
                                              : "-");
        printf("%s%-*s  %-*s  %-*s  %-*s  %s\n", indent, (int)wk, p->name, (int)wt,
               dd_param_type_str(p), (int)wd, def, (int)wr, range[0] ? range : "-",
               p->doc ? p->doc : "");
    }
}

static void describe_component(const dd_registry *reg, size_t plugin, const dd_component *c) {
    const dd_plugin_descriptor *d = dd_registry_plugin(reg, plugin);
    printf("%s '%s' — %s\n", dd_component_kind_str(c->kind), c->name, c->description);
    printf("  plugin %s %s (%s)\n", d->name, d->version, dd_registry_plugin_path(reg, plugin));
    if (c->kind == DD_COMPONENT_DATASET) {
        const dd_dataset_ops *ops = c->ops;
        printf("  reads datasets:");
        for (size_t i = 0; ops->datasets[i]; i++)
            printf("%s %s", i ? "," : "", ops->datasets[i]);
        printf("\n");
    } else if (c->kind == DD_COMPONENT_OBJECTIVE) {
        const dd_objective_ops *ops = c->ops;
        printf("  metrics:");
        for (size_t i = 0; ops->metric_names[i]; i++)
            printf("%s %s", i ? "," : "", ops->metric_names[i]);
        printf("\n");
    }
    printf("\n  section '%s', core keys:\n", dd_section_name(c->kind));
    print_params_table(dd_section_core_spec(c->kind), "    ");
    printf("\n  keys of %s '%s':\n", dd_component_kind_str(c->kind), c->name);
    if (c->params && c->params[0].name)
        print_params_table(c->params, "    ");
    else
        printf("    (none)\n");
}

static int describe(const dd_registry *reg, const char *name) {
    // "kind/name" selects one kind; a bare name matches components of every
    // kind, then plugins, then pipeline sections.
    char kind_s[32] = "";
    const char *cname = name;
    const char *slash = strchr(name, '/');
    if (slash && (size_t)(slash - name) < sizeof kind_s) {
        snprintf(kind_s, sizeof kind_s, "%.*s", (int)(slash - name), name);
        cname = slash + 1;
    }
    int found = 0;
    for (size_t i = 0; i < dd_registry_plugin_count(reg); i++) {
        const dd_plugin_descriptor *d = dd_registry_plugin(reg, i);
        for (size_t c = 0; c < d->n_components; c++) {
            const dd_component *comp = &d->components[c];
            if (strcmp(comp->name, cname) != 0) continue;
            if (kind_s[0] && strcmp(kind_s, dd_component_kind_str(comp->kind)) != 0) continue;
            if (found++) printf("\n");
            describe_component(reg, i, comp);
        }
    }
    if (found) return EXIT_OK;
    for (size_t i = 0; i < dd_registry_plugin_count(reg); i++) {
        const dd_plugin_descriptor *d = dd_registry_plugin(reg, i);
        if (strcmp(d->name, name) != 0) continue;
        for (size_t c = 0; c < d->n_components; c++) {
            if (c) printf("\n");
            describe_component(reg, i, &d->components[c]);
        }
        return EXIT_OK;
    }
    const dd_param_spec *spec = dd_section_spec(name);
    if (spec) {
        printf("section '%s' (stage options):\n", name);
        print_params_table(spec, "  ");
        return EXIT_OK;
    }
    for (int k = DD_COMPONENT_DATASET; k <= DD_COMPONENT_OBJECTIVE; k++) {
        if (strcmp(name, dd_section_name((dd_component_kind)k)) != 0) continue;
        printf("section '%s', core keys (plus the selected plugin's keys):\n", name);
        print_params_table(dd_section_core_spec((dd_component_kind)k), "  ");
        return EXIT_OK;
    }
    if (strcmp(name, "pipeline") == 0) {
        printf("top-level keys of a pipeline:\n");
        print_params_table(dd_pipeline_top_spec(), "  ");
        return EXIT_OK;
    }
    dd_error_set(
        DD_ERR_NOT_FOUND,
        "no component, plugin or section named '%s' (see 'distill plugins'; sections: pipeline, "
        "dataset, model, objective, pretrain, distill, evaluate, report)",
        name);
    return fail();
}

static int cmd_plugins(args *a) {
    const char *describe_name = NULL;
    for (a->i++; a->i < a->argc; a->i++) {
        const char *s = a->argv[a->i], *v = NULL;
        int m;
        if (is_help(s)) {
            printf("usage: distill plugins [--describe NAME]\n"
                   "NAME: a component (optionally KIND/NAME), a plugin, or a section\n"
                   "(pipeline, dataset, model, objective, pretrain, distill, evaluate, report)\n");
            return EXIT_OK;
        }
        if ((m = opt_value(a, "--describe", &v)) != 0) {
            if (m < 0) return usage_error("option '%s' needs a NAME", s);
            describe_name = v;
        } else {
            return usage_error(s[0] == '-' ? "unknown option '%s'" : "unexpected argument '%s'", s);
        }
    }
    dd_registry *reg = NULL;
    if (load_registry(1, &reg) != DD_OK) return fail();
    int rc = EXIT_OK;
    if (describe_name) {
        rc = describe(reg, describe_name);
    } else {
        size_t n = dd_registry_plugin_count(reg);
        if (n == 0)
            printf("no plugins found (search path: DISTILL_PLUGIN_PATH, build tree, install "
                   "prefix)\n");
        for (size_t i = 0; i < n; i++) {
            const dd_plugin_descriptor *d = dd_registry_plugin(reg, i);
            printf("%s %s  %s\n", d->name, d->version, dd_registry_plugin_path(reg, i));
            for (size_t c = 0; c < d->n_components; c++) {
                const dd_component *comp = &d->components[c];
                printf("  %-10s %-16s %s\n", dd_component_kind_str(comp->kind), comp->name,
                       comp->description);
            }
        }
        for (size_t i = 0; i < dd_registry_refused_count(reg); i++)
            printf("refused: %s\n", dd_registry_refused_reason(reg, i));
    }
    dd_registry_destroy(reg);
    return rc;
}

/* ---- datasets / fetch --------------------------------------------------------- */

static int cmd_datasets(args *a) {
    dd_fetch_options fo = {.verify = 1};
    for (a->i++; a->i < a->argc; a->i++) {
        const char *s = a->argv[a->i], *v = NULL;
        int m;
        if (is_help(s)) {
            printf("usage: distill datasets [--cache-dir DIR]\n");
            return EXIT_OK;
        }
        if ((m = opt_value(a, "--cache-dir", &v)) != 0) {
            if (m < 0) return usage_error("option '%s' needs a directory", s);
            fo.cache_dir = v;
        } else {
            return usage_error(s[0] == '-' ? "unknown option '%s'" : "unexpected argument '%s'", s);
        }
    }
    dd_dataset_status *list = NULL;
    size_t n = 0;
    if (dd_fetch_list(&fo, &list, &n) != DD_OK) return fail();
    printf("%-16s %-10s %-10s %s\n", "NAME", "CACHED", "DOWNLOAD", "DESCRIPTION");
    for (size_t i = 0; i < n; i++) {
        char size[32] = "?";
        if (list[i].download_bytes)
            snprintf(size, sizeof size, "%.1f MB", (double)list[i].download_bytes / 1e6);
        printf("%-16s %-10s %-10s %s\n", list[i].name, list[i].cached ? "yes" : "no", size,
               list[i].description);
    }
    free(list);
    return EXIT_OK;
}

/* After a failed fetch of `dataset` that has no manifest: if a reader of the
 * user's own files (DD_DATASET_LOCAL) reads that name, say so instead. */
static void explain_local_reader(const char *dataset) {
    if (dd_error_status() != DD_ERR_NOT_FOUND) return;
    char saved[2048];
    snprintf(saved, sizeof saved, "%s", dd_error_message());
    dd_registry *reg = NULL;
    dd_log_level level = dd_log_get_level();
    dd_log_set_level(DD_LOG_ERROR); // a broken plugin is not this command's business
    dd_status s = dd_registry_load(1, &reg);
    dd_log_set_level(level);
    for (size_t i = 0; s == DD_OK && i < dd_registry_plugin_count(reg); i++) {
        const dd_plugin_descriptor *d = dd_registry_plugin(reg, i);
        for (size_t j = 0; j < d->n_components; j++) {
            const dd_component *c = &d->components[j];
            if (c->kind != DD_COMPONENT_DATASET) continue;
            const dd_dataset_ops *ops = c->ops;
            if (!(ops->flags & DD_DATASET_LOCAL)) continue;
            for (size_t k = 0; ops->datasets[k]; k++)
                if (strcmp(ops->datasets[k], dataset) == 0) {
                    // (the message is made before the plugin is unloaded)
                    dd_error_set(DD_ERR_NOT_FOUND,
                                 "'%s' is read by the dataset plugin '%s' from your own files: "
                                 "there is nothing to fetch; set dataset.path (a directory, or "
                                 "an archive it unpacks) in the pipeline",
                                 dataset, c->name);
                    dd_registry_destroy(reg);
                    return;
                }
        }
    }
    dd_registry_destroy(reg);
    dd_error_set(DD_ERR_NOT_FOUND, "%s", saved);
}

static int cmd_fetch(args *a) {
    dd_fetch_options fo = {.verify = 1};
    const char *dataset = NULL;
    const char **mirrors = calloc((size_t)a->argc + 1, sizeof *mirrors);
    if (!mirrors) return dd_error_set(DD_ERR_NOMEM, "out of memory"), fail();
    size_t n_m = 0;
    int rc = EXIT_OK;
    for (a->i++; a->i < a->argc && rc == EXIT_OK; a->i++) {
        const char *s = a->argv[a->i], *v = NULL;
        int m;
        if (is_help(s)) {
            printf(
                "usage: distill fetch DATASET [--cache-dir DIR] [--offline] [--mirror URL]...\n");
            free(mirrors);
            return EXIT_OK;
        }
        if ((m = opt_value(a, "--cache-dir", &v)) != 0) {
            if (m < 0)
                rc = usage_error("option '%s' needs a directory", s);
            else
                fo.cache_dir = v;
        } else if ((m = opt_value(a, "--mirror", &v)) != 0) {
            if (m < 0)
                rc = usage_error("option '%s' needs a URL", s);
            else
                mirrors[n_m++] = v;
        } else if (strcmp(s, "--offline") == 0) {
            fo.offline = 1;
        } else if (s[0] == '-' && s[1] != '\0') {
            rc = usage_error("unknown option '%s'", s);
        } else if (!dataset) {
            dataset = s;
        } else {
            rc = usage_error("unexpected argument '%s' (one dataset at a time)", s);
        }
    }
    if (rc == EXIT_OK && !dataset)
        rc = usage_error("%s: missing DATASET (see 'distill datasets')", "fetch");
    if (rc == EXIT_OK) {
        fo.extra_mirrors = mirrors;
        char *root = NULL;
        if (dd_fetch_dataset(dataset, &fo, &root) != DD_OK) {
            explain_local_reader(dataset);
            rc = fail();
        } else {
            printf("%s\n", root);
            free(root);
        }
    }
    free(mirrors);
    return rc;
}

/* ---- main ------------------------------------------------------------------- */

static int dispatch(args *a);

/* Under mpirun every rank runs the same command; a rank that fails ends the
 * whole job (the others would wait for it forever), the rest leave it
 * together. */
int main(int argc, char **argv) {
    if (dd_process_init(&argc, &argv) != DD_OK) return fail();
    args a = {.argc = argc, .argv = argv, .i = 1};
    const int rc = dispatch(&a);
    if (dd_process_count() > 1 && rc != EXIT_OK) dd_process_abort(rc);
    dd_process_finalize();
    return rc;
}

static int dispatch(args *a_) {
    args a = *a_;
    const int argc = a.argc;
    char **argv = a.argv;
    int verbosity = 0, have_level = 0;
    dd_log_level level = dd_log_get_level();
    for (; a.i < argc; a.i++) {
        const char *s = argv[a.i], *v = NULL;
        int m;
        if (s[0] != '-') break;
        if (is_help(s)) {
            printf("%s", usage_text);
            return EXIT_OK;
        }
        if (strcmp(s, "--version") == 0) {
            printf("distill %s\n", dd_version());
            return EXIT_OK;
        }
        if (strcmp(s, "--verbose") == 0) {
            verbosity++;
        } else if (strcmp(s, "--quiet") == 0) {
            verbosity--;
        } else if (s[1] == 'v' || s[1] == 'q') {
            for (const char *c = s + 1; *c; c++) {
                if (*c != 'v' && *c != 'q') return usage_error("unknown option '%s'", s);
                verbosity += *c == 'v' ? 1 : -1;
            }
        } else if ((m = opt_value(&a, "--log-level", &v)) != 0) {
            if (m < 0)
                return usage_error("option '%s' needs a level (error, warn, info, debug, trace)",
                                   s);
            if (dd_log_level_parse(v, &level) != DD_OK) {
                fprintf(stderr, "distill: %s\nTry 'distill --help'.\n", dd_error_message());
                return EXIT_USAGE;
            }
            have_level = 1;
        } else if ((m = opt_value(&a, "--plugin-path", &v)) != 0) {
            if (m < 0) return usage_error("option '%s' needs a directory", s);
            const char *old = getenv("DISTILL_PLUGIN_PATH");
            size_t len = strlen(v) + (old ? strlen(old) + 1 : 0) + 1;
            char *path = malloc(len);
            if (!path) return dd_error_set(DD_ERR_NOMEM, "out of memory"), fail();
            snprintf(path, len, "%s%s%s", v, old && *old ? ":" : "", old && *old ? old : "");
            setenv("DISTILL_PLUGIN_PATH", path, 1);
            free(path);
        } else {
            return usage_error("unknown option '%s'", s);
        }
    }
    int l = (int)(have_level ? level : dd_log_get_level()) + verbosity;
    // Rank 0 speaks for the job; the others only warn (and report errors).
    if (dd_process_rank() > 0 && l > DD_LOG_WARN) l = DD_LOG_WARN;
    if (l < DD_LOG_ERROR) l = DD_LOG_ERROR;
    if (l > DD_LOG_TRACE) l = DD_LOG_TRACE;
    dd_log_set_level((dd_log_level)l);

    if (a.i >= argc) {
        fprintf(stderr, "%s", usage_text);
        return EXIT_USAGE;
    }
    a.cmd = argv[a.i];
    if (strcmp(a.cmd, "run") == 0) return cmd_run(&a, 0);
    if (strcmp(a.cmd, "validate") == 0) return cmd_run(&a, 1);
    if (strcmp(a.cmd, "evaluate") == 0) return cmd_evaluate(&a);
    if (strcmp(a.cmd, "plugins") == 0) return cmd_plugins(&a);
    if (strcmp(a.cmd, "datasets") == 0) return cmd_datasets(&a);
    if (strcmp(a.cmd, "fetch") == 0) return cmd_fetch(&a);
    if (strcmp(a.cmd, "help") == 0) {
        printf("%s", usage_text);
        return EXIT_OK;
    }
    return usage_error(
        "unknown command '%s' (commands: run, evaluate, validate, plugins, datasets, "
        "fetch)",
        a.cmd);
}
