/* distill — thread counts in the compute layer: resolving a configured count
 * and running a call with OpenMP's per-thread count scoped to it. */
#include "compute/threads.h"

#include <omp.h>

int dd_threads_resolve(int n) {
    if (n > 0) return n;
    n = omp_get_max_threads();
    return n > 0 ? n : 1;
}

dd_status dd_threads_run(int n, dd_status (*fn)(void *arg), void *arg) {
    const int saved = omp_get_max_threads();
    // oneDNN (OpenMP runtime) has no per-call thread argument: it reads the
    // calling thread's nthreads-var when it creates and runs a primitive.
    if (n <= 0 || n == saved) return fn(arg);
    omp_set_num_threads(n);
    dd_status s = fn(arg);
    omp_set_num_threads(saved);
    return s;
}
