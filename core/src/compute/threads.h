/* distill (internal) — thread counts in the compute layer: a configured count
 * resolved against OpenMP's default, and the one scoped place that changes
 * OpenMP's per-thread setting (oneDNN sizes its parallel regions from it). */
#ifndef DD_THREADS_H
#define DD_THREADS_H

#include "base/export.h"
#include "distill/status.h"

/** n if n > 0, else OpenMP's default for the calling thread
 * (omp_get_max_threads()); at least 1. Reads, never changes, OpenMP state. */
DD_INTERNAL int dd_threads_resolve(int n);

/** Runs fn(arg) with the calling thread's OpenMP thread count (its
 * nthreads-var, what omp_get_max_threads() returns and what oneDNN's
 * primitives are created and executed with) set to n, and restores the
 * previous count before returning; n <= 0 runs fn without touching it.
 * Returns what fn returns. The only place the library sets OpenMP's count. */
DD_INTERNAL dd_status dd_threads_run(int n, dd_status (*fn)(void *arg), void *arg);

#endif
