/* distill (internal) — the processes of a run. Under `mpirun -np N` (and a
 * build with MPI) a run is N ranks of one MPI job; otherwise it is one
 * process, rank 0 of 1, and every call here is a no-op or a copy. Nothing
 * else in the library calls MPI.
 *
 * The reductions are deterministic and leave the same bits on every rank:
 * each block of a vector is summed by one rank, in rank order, and copied
 * to the others; the result depends on the rank count, never on timing. */
#ifndef DD_COMM_H
#define DD_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "base/export.h"
#include "distill/status.h"

/** Joins the MPI job when the process was started by mpirun (Open MPI's or
 * another PMIx/PMI launcher's environment is present) and MPI support is
 * built in; else does nothing. The threads that call the functions below
 * take turns (MPI_THREAD_SERIALIZED). */
DD_INTERNAL dd_status dd_comm_init(int *argc, char ***argv);
/** Leaves the MPI job (after a barrier, so no rank exits while others still
 * send). */
DD_INTERNAL void dd_comm_finalize(void);
/** Ends every rank of the job at once with exit status `code` (after this
 * rank has printed its error): a failing rank never leaves the others
 * waiting. Single process: exit(code). */
DD_INTERNAL void dd_comm_abort(int code) __attribute__((noreturn));

DD_INTERNAL int dd_comm_rank(void);
DD_INTERNAL int dd_comm_size(void);
/** Non-zero when built with MPI support. */
DD_INTERNAL int dd_comm_built_with_mpi(void);

/** Ranks up to which callers keep gather counts on the stack. */
#define DD_COMM_MAX_GATHER 64

/** buf[0..n) ← the sum over ranks of every rank's buf (same bits on all). */
DD_INTERNAL dd_status dd_comm_sum_floats(float *buf, size_t n);
DD_INTERNAL dd_status dd_comm_sum_doubles(double *buf, size_t n);
/** Rank r contributes counts[r] floats at buf + displs[r] (its own part of
 * buf, in place); afterwards every rank holds every part. */
DD_INTERNAL dd_status dd_comm_allgather_floats(float *buf, const int *counts, const int *displs);
/** Copies `bytes` at buf from rank `root` to every rank. */
DD_INTERNAL dd_status dd_comm_bcast(void *buf, size_t bytes, int root);
/** Every rank waits for all. */
DD_INTERNAL dd_status dd_comm_barrier(void);
/** Seconds spent in this module's reductions so far (this rank). */
DD_INTERNAL double dd_comm_seconds(void);

/** The part [*lo, *hi) of n items that rank `rank` of `size` takes
 * (contiguous, sizes differing by at most one, in rank order). */
static inline void dd_comm_share(int64_t n, int rank, int size, int64_t *lo, int64_t *hi) {
    *lo = n * rank / size;
    *hi = n * (rank + 1) / size;
}

#endif
