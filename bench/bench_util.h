/* distill benchmarks — timing, medians, and the oneDNN verbose check that
 * no `ref:` implementation runs. */
#ifndef DD_BENCH_UTIL_H
#define DD_BENCH_UTIL_H

#include <stddef.h>

/** Monotonic clock in seconds. */
double bench_now(void);

/** Median of t[0..n) (sorts t in place). */
double bench_median(double *t, size_t n);

/** Runs fn(arg) repeatedly: one untimed warm-up, then at least min_reps and
 * until min_seconds have passed (at most max_reps). Returns the median time
 * of one call in seconds, or a negative value if fn returned non-zero. */
double bench_time(int (*fn)(void *), void *arg, int min_reps, int max_reps, double min_seconds);

/** Runs fn(arg) once with oneDNN verbose output captured (stdout redirected
 * to a temporary file). Counts executed primitives and `ref:` ones; prints
 * every `ref:` line to stderr prefixed by `what`. Returns fn's result, or -1
 * if the capture itself failed. */
int bench_check_ref(const char *what, int (*fn)(void *), void *arg, int *n_exec, int *n_ref);

/** Parses a comma-separated list of positive integers into out (at most
 * cap). Returns the count, or -1 on a malformed list. */
int bench_parse_list(const char *s, long *out, int cap);

#endif
