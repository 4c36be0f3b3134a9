/* distill benchmarks — timing helpers and the oneDNN verbose `ref:` check. */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl.h>

double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *t, size_t n) {
    if (n == 0) return 0.0;
    qsort(t, n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

double bench_time(int (*fn)(void *), void *arg, int min_reps, int max_reps, double min_seconds) {
    enum { CAP = 1000 };
    static _Thread_local double t[CAP];
    if (max_reps > CAP) max_reps = CAP;
    if (min_reps > max_reps) min_reps = max_reps;
    if (fn(arg)) return -1.0;
    int n = 0;
    double start = bench_now();
    while (n < max_reps && (n < min_reps || bench_now() - start < min_seconds)) {
        double a = bench_now();
        if (fn(arg)) return -1.0;
        t[n++] = bench_now() - a;
    }
    return bench_median(t, (size_t)n);
}

int bench_check_ref(const char *what, int (*fn)(void *), void *arg, int *n_exec, int *n_ref) {
    *n_exec = 0;
    *n_ref = 0;
    FILE *tmp = tmpfile();
    if (!tmp) return -1;
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    if (saved < 0 || dup2(fileno(tmp), STDOUT_FILENO) < 0) {
        if (saved >= 0) close(saved);
        fclose(tmp);
        return -1;
    }
    dnnl_set_verbose(1);
    int rc = fn(arg);
    fflush(stdout);
    dnnl_set_verbose(0);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(tmp);
    char line[4096];
    while (fgets(line, sizeof line, tmp)) {
        if (strncmp(line, "onednn_verbose,exec,", 20) != 0) continue;
        (*n_exec)++;
        // onednn_verbose,exec,<engine>,<primitive>,<implementation>,...
        const char *f = line;
        for (int i = 0; i < 4 && f; i++) {
            f = strchr(f, ',');
            if (f) f++;
        }
        if (f && strncmp(f, "ref", 3) == 0) {
            (*n_ref)++;
            fprintf(stderr, "%s: ref implementation: %s", what, line);
        }
    }
    fclose(tmp);
    return rc;
}

int bench_parse_list(const char *s, long *out, int cap) {
    int n = 0;
    while (*s) {
        char *end = NULL;
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || n >= cap) return -1;
        out[n++] = v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return n;
}
