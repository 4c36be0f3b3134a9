/* `mpirun -np 2 distill run` against one process: the distilled set after a
 * short run with fixed init (the real batch split between the ranks) within
 * a float-rounding tolerance, with random init (the networks split) bit for
 * bit; checkpoint + --resume on 2 ranks; a rank that fails on bad input ends
 * the whole job with its message, without hanging. Only rank 0 writes the
 * run directory. Built when distill is built with MPI. */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/distilled.h"
#include "readers_gen.h"

static char *g_dir;
static char g_cli[4096];
static const char *g_mpirun;

/* mpirun for 2 ranks on this machine, whatever its core count, also as
 * root (Open MPI refuses root without --allow-run-as-root), with shared
 * memory that works in containers and chroots (no cross-process copies). */
#define MPI_ENV                                                                                    \
    "OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_plm=isolated "                         \
    "OMPI_MCA_rmaps_base_oversubscribe=1 "

static char *mpirun_prefix(void) {
    return rg_strf("'%s' %s-np 2 --oversubscribe", g_mpirun,
                   geteuid() == 0 ? "--allow-run-as-root " : "");
}

static char *slurp_text(const char *path);

/* Runs `distill run` (under mpirun when ranks > 1) with `threads` threads
 * per process; returns the exit status, stderr in OUT.log. */
static int run_threads(int ranks, int threads, const char *out, const char *extra) {
    char *pre = ranks > 1 ? mpirun_prefix() : rg_strf("%s", "");
    char *cmd = rg_strf(MPI_ENV "OMP_NUM_THREADS=%d timeout 240 %s '%s' run '%s/p.yaml' "
                                "--out '%s' %s 2>'%s.log'",
                        threads, pre, g_cli, g_dir, out, extra ? extra : "", out);
    int rc = system(cmd);
    free(cmd);
    free(pre);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static int run(int ranks, const char *out, const char *extra) {
    return run_threads(ranks, 1, out, extra);
}

/* metrics.json without the lines of time, memory, threads and ranks. */
static char *metrics_without_timing(const char *out) {
    char *p = rg_strf("%s/metrics.json", out);
    char *t = slurp_text(p);
    assert_non_null(t);
    char *kept = rg_strf("%s", "");
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(line, "seconds") || strstr(line, "memory") || strstr(line, "\"threads\"") ||
            strstr(line, "\"ranks\""))
            continue;
        char *next = rg_strf("%s%s\n", kept, line);
        free(kept);
        kept = next;
    }
    free(t);
    free(p);
    return kept;
}

static char *slurp_text(const char *path) {
    uint8_t *d = NULL;
    size_t n = 0;
    if (rg_read_file(path, &d, &n) != DD_OK) return NULL;
    char *t = rg_strf("%.*s", (int)n, (const char *)d);
    free(d);
    return t;
}

static void show_log(const char *out) {
    char *log = rg_strf("%s.log", out);
    char *t = slurp_text(log);
    if (t) fprintf(stderr, "--- %s ---\n%s\n", log, t);
    free(t);
    free(log);
}

static dd_distilled *load_set(const char *out) {
    char *p = rg_strf("%s/distilled.npz", out);
    dd_distilled *d = NULL;
    int has_norm = 0;
    dd_status s = dd_distilled_load_npz(p, &d, &has_norm);
    if (s != DD_OK) fprintf(stderr, "%s: %s\n", p, dd_error_message());
    assert_int_equal(s, DD_OK);
    free(p);
    return d;
}

static size_t n_pixels(const dd_distilled *d) {
    return (size_t)d->steps * (size_t)d->per_step * (size_t)d->channels * (size_t)d->height *
           (size_t)d->width;
}

/* max |a − b| / max |a| over the images, and over the step sizes. */
static void set_diff(const dd_distilled *a, const dd_distilled *b, double *dimg, double *dlr) {
    assert_int_equal(n_pixels(a), n_pixels(b));
    double scale = 0, diff = 0;
    for (size_t i = 0; i < n_pixels(a); i++) {
        scale = fmax(scale, fabs(a->images[i]));
        diff = fmax(diff, fabs(a->images[i] - b->images[i]));
    }
    *dimg = diff / scale;
    const int K = a->steps * a->epochs;
    scale = diff = 0;
    for (int k = 0; k < K; k++) {
        scale = fmax(scale, fabs(a->lrs[k]));
        diff = fmax(diff, fabs(a->lrs[k] - b->lrs[k]));
    }
    *dlr = diff / scale;
}

static int setup(void **st) {
    (void)st;
    const char *bin = getenv("DISTILL_BINARY_DIR");
    snprintf(g_cli, sizeof g_cli, "%s/bin/distill", bin ? bin : ".");
    g_mpirun = getenv("DISTILL_MPIEXEC");
    if (!g_mpirun || access(g_cli, X_OK) != 0) {
        fprintf(stderr, "no CLI at %s or no DISTILL_MPIEXEC\n", g_cli);
        return -1;
    }
    if (rg_mkdtemp("mpi", &g_dir) != DD_OK) return -1;
    char *data = rg_strf("%s/data", g_dir);
    if (rg_mkdirs(data) != DD_OK || rg_write_mnist(data, 300, 100, 28, 28, 0) != DD_OK) return -1;
    char *yaml = rg_strf("name: mpi-test\n"
                         "seed: 5\n"
                         "stages: [load, distill, evaluate, report]\n"
                         "dataset: {plugin: mnist, name: mnist, path: %s}\n"
                         "model: {plugin: lenet, backend: onednn}\n"
                         "objective: {plugin: classification}\n"
                         "distill:\n"
                         "  steps: 2\n  epochs: 2\n  images_per_class: 1\n"
                         "  iterations: 6\n  batch_real: 64\n  checkpoint_every: 3\n"
                         "evaluate: {nets: 2, lr_search: 0, batch: 50, baselines: []}\n",
                         data);
    char *p = rg_strf("%s/p.yaml", g_dir);
    dd_status s = rg_write_text(p, yaml);
    free(yaml);
    free(p);
    free(data);
    return s == DD_OK ? 0 : -1;
}

static int teardown(void **st) {
    (void)st;
    if (g_dir && !getenv("KEEP_TMP")) rg_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static char *out_path(const char *tag) {
    return rg_strf("%s/%s", g_dir, tag);
}

static void expect_ok(int ranks, const char *out, const char *extra) {
    int rc = run(ranks, out, extra);
    if (rc != 0) show_log(out);
    assert_int_equal(rc, 0);
}

/* Fixed init: each rank takes half of the real batch; the gradients are
 * summed in another order than one process sums them, so the sets differ in
 * the last bits of the first hypergradient and Adam carries that on. The
 * bound: a relative difference of order 1e-7 per iteration, grown by Adam's
 * normalisation over 6 iterations, stays far below 1e-3, while splitting
 * the batch wrongly (a share lost or counted twice) changes the gradient by
 * half and the images by more than 1e-2 after one step. */
static void test_fixed_split_real_batch(void **st) {
    (void)st;
    char *one = out_path("fixed-1"), *two = out_path("fixed-2");
    expect_ok(1, one, NULL);
    expect_ok(2, two, NULL);
    dd_distilled *a = load_set(one), *b = load_set(two);
    double dimg, dlr;
    set_diff(a, b, &dimg, &dlr);
    printf("  fixed init, 1 process vs 2 ranks: images %.2e, step sizes %.2e\n", dimg, dlr);
    assert_true(dimg < 1e-3);
    assert_true(dlr < 1e-3);
    // only rank 0 wrote: one report, and no scratch directory left behind
    char *report = rg_strf("%s/report.md", two);
    assert_int_equal(access(report, F_OK), 0);
    free(report);
    dd_distilled_destroy(a);
    dd_distilled_destroy(b);
    free(one);
    free(two);
}

/* Random init, 4 networks an iteration: each rank computes two, every rank
 * gets all four and adds them in network order, as one process does; the
 * evaluation's networks are split the same way. One process with 2 threads
 * (a network per thread) gives the same bits too. */
static void test_random_split_nets_bit_identical(void **st) {
    (void)st;
    const char *set = "--set distill.init_mode=random --set distill.nets_per_iteration=4 "
                      "--set evaluate.nets=3";
    char *one = out_path("random-1"), *two = out_path("random-2");
    char *threads = out_path("random-1x2");
    expect_ok(1, one, set);
    expect_ok(2, two, set);
    int rc = run_threads(1, 2, threads, set);
    if (rc != 0) show_log(threads);
    assert_int_equal(rc, 0);
    dd_distilled *a = load_set(one), *b = load_set(two), *c = load_set(threads);
    assert_memory_equal(a->images, b->images, n_pixels(a) * sizeof(float));
    assert_memory_equal(a->lrs, b->lrs, (size_t)a->steps * (size_t)a->epochs * sizeof(float));
    assert_memory_equal(a->images, c->images, n_pixels(a) * sizeof(float));
    char *ma = metrics_without_timing(one), *mb = metrics_without_timing(two),
         *mc = metrics_without_timing(threads);
    assert_string_equal(ma, mb);
    assert_string_equal(ma, mc);
    free(ma);
    free(mb);
    free(mc);
    dd_distilled_destroy(c);
    free(threads);
    dd_distilled_destroy(a);
    dd_distilled_destroy(b);
    free(one);
    free(two);
}

/* 3 iterations, then --resume to 6 on 2 ranks: the same set as 6 at once.
 * Rank 1 has no shared disk with rank 0's run directory in general: it
 * resumes from the checkpoint rank 0 sends (if it started over, its share
 * of the real batch would be computed at other images and the sets would
 * differ). */
static void test_resume_on_two_ranks(void **st) {
    (void)st;
    char *full = out_path("fixed-2"), *part = out_path("resume-2");
    expect_ok(2, part, "--set distill.iterations=3 --set 'stages=[load,distill]'");
    expect_ok(2, part, "--resume");
    dd_distilled *a = load_set(full), *b = load_set(part);
    assert_memory_equal(a->images, b->images, n_pixels(a) * sizeof(float));
    assert_memory_equal(a->lrs, b->lrs, (size_t)a->steps * (size_t)a->epochs * sizeof(float));
    char *log = rg_strf("%s.log", part);
    char *t = slurp_text(log);
    assert_non_null(t);
    assert_non_null(strstr(t, "resumed from"));
    free(t);
    free(log);
    dd_distilled_destroy(a);
    dd_distilled_destroy(b);
    free(full);
    free(part);
}

/* Rank 1 alone gets a dataset path that does not exist (mpirun's MPMD
 * form): the job ends, non-zero, within the timeout, with rank 1's message
 * naming the path; rank 0 does not wait forever in the first exchange. */
static void test_failing_rank_ends_job(void **st) {
    (void)st;
    char *out = out_path("fail-2");
    char *pre =
        rg_strf("'%s' %s--oversubscribe", g_mpirun, geteuid() == 0 ? "--allow-run-as-root " : "");
    char *cmd =
        rg_strf(MPI_ENV "OMP_NUM_THREADS=1 timeout 120 %s -np 1 '%s' run '%s/p.yaml' --out '%s' : "
                        "-np 1 '%s' run '%s/p.yaml' --out '%s' --set "
                        "dataset.path=%s/no-such-data 2>'%s.log'",
                pre, g_cli, g_dir, out, g_cli, g_dir, out, g_dir, out);
    const time_t t0 = time(NULL);
    int rc = system(cmd);
    const double took = difftime(time(NULL), t0);
    assert_true(WIFEXITED(rc));
    const int code = WEXITSTATUS(rc);
    printf("  exit %d after %.0f s\n", code, took);
    assert_true(code != 0 && code != 124); // 124: timeout's, the job hung
    char *log = rg_strf("%s.log", out);
    char *t = slurp_text(log);
    assert_non_null(t);
    if (!strstr(t, "rank 1 of 2") || !strstr(t, "no-such-data")) fprintf(stderr, "%s\n", t);
    assert_non_null(strstr(t, "rank 1 of 2"));
    assert_non_null(strstr(t, "no-such-data"));
    free(t);
    free(log);
    free(cmd);
    free(pre);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_split_real_batch),
        cmocka_unit_test(test_random_split_nets_bit_identical),
        cmocka_unit_test(test_resume_on_two_ranks),
        cmocka_unit_test(test_failing_rank_ends_job),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
