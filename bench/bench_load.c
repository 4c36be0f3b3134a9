/* distill — dataset load benchmark (issue #17 item 5): Fashion-MNIST (or
 * MNIST) read by the mnist reader from its .gz files, against the same
 * splits from the decoded cache (data/dcache.h), read into RAM and mapped;
 * medians of several loads in one process, the page cache warm.
 *
 *   bench_load DIR [REPS]     DIR holds the four IDX .gz files
 *
 * Needs DISTILL_PLUGIN_PATH to find mnist.so (the build's plugins-out/). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/dataset.h"
#include "distill/host.h"
#include "distill/plugin.h"
#include "bench_util.h"
#include "data/dcache.h"

typedef struct job {
    const dd_dataset_ops *ops;
    dd_dataset_request req;
    dd_dcache_config cfg;
    int cached;
    int touch; // gather every image once after loading
    float *buf;
} job;

static int run(void *arg) {
    job *j = arg;
    dd_dataset *tr = NULL, *te = NULL;
    dd_status s = j->cached ? dd_dcache_load(&j->cfg, j->ops, &j->req, &tr, &te, NULL)
                            : j->ops->load(&j->req, &tr, &te);
    if (s == DD_OK && j->touch) {
        for (int64_t i = 0; s == DD_OK && i < tr->n; i += 1024) {
            int64_t n = tr->n - i < 1024 ? tr->n - i : 1024;
            s = dd_dataset_gather_range(tr, i, n, j->buf);
        }
    }
    if (s != DD_OK) fprintf(stderr, "bench_load: %s\n", dd_error_message());
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    return s == DD_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_load DIR [REPS]   (DIR holds the IDX .gz files)\n");
        return 2;
    }
    const int reps = argc > 2 ? atoi(argv[2]) : 5;
    const char *name = strstr(argv[1], "fashion") ? "fashion-mnist" : "mnist";
    dd_registry *reg = NULL;
    const dd_component *comp = NULL;
    if (dd_registry_load(0, &reg) != DD_OK ||
        dd_registry_find(reg, DD_COMPONENT_DATASET, "mnist", &comp) != DD_OK) {
        fprintf(stderr, "bench_load: %s\n", dd_error_message());
        return 1;
    }
    dd_options *opts = NULL;
    if (dd_options_from_strings(comp->params, NULL, &opts) != DD_OK) return 1;
    char tmpl[] = "/tmp/distill-bench-load-XXXXXX";
    if (!mkdtemp(tmpl)) return 1;
    char dir[sizeof tmpl + 16];
    snprintf(dir, sizeof dir, "%s/decoded", tmpl);
    job j = {
        .ops = comp->ops,
        .req = {sizeof j.req, name, argv[1], opts, 0, 0},
        .cfg = {.dir = dir, .key_text = "bench", .inputs = argv[1]},
        .buf = malloc(1024 * 28 * 28 * sizeof(float)),
    };
    if (!j.buf) return 1;
    printf("%s from %s, median of %d loads (both splits)\n", name, argv[1], reps);
    double t = bench_time(run, &j, reps, reps, 0);
    printf("  reader, from the .gz files:         %8.1f ms\n", t * 1e3);
    j.cached = 1;
    j.cfg.memory = DD_MEMORY_RAM;
    double t0 = bench_now();
    if (run(&j) != 0) return 1;
    printf("  first load, decoding + writing:     %8.1f ms (once)\n", (bench_now() - t0) * 1e3);
    t = bench_time(run, &j, reps, reps, 0);
    printf("  decoded cache, read into RAM:       %8.1f ms\n", t * 1e3);
    j.cfg.memory = DD_MEMORY_MMAP;
    t = bench_time(run, &j, reps, reps, 0);
    printf("  decoded cache, mapped:              %8.1f ms\n", t * 1e3);
    j.touch = 1;
    t = bench_time(run, &j, reps, reps, 0);
    printf("  mapped + every train image gathered: %7.1f ms\n", t * 1e3);
    j.cfg.memory = DD_MEMORY_RAM;
    t = bench_time(run, &j, reps, reps, 0);
    printf("  RAM + every train image gathered:   %8.1f ms\n", t * 1e3);
    char cmd[sizeof tmpl + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    if (system(cmd) != 0) fprintf(stderr, "bench_load: could not remove %s\n", tmpl);
    free(j.buf);
    dd_options_destroy(opts);
    dd_registry_destroy(reg);
    return 0;
}
