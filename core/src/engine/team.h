/* distill (internal) — a team of worker threads for the engine's phased
 * work. A job is a sequence of steps; each step is a set of independent
 * chunks (image ranges of a distilled batch, slices of the real batch, whole
 * networks) that any worker may compute, followed by one reduction that
 * combines the chunks' results in chunk order before the next step starts.
 *
 * Workers claim chunks dynamically, so a worker the scheduler pauses does
 * not hold the others back: the others take the chunks it has not claimed
 * and, when a chunk it has claimed is late, compute it a second time (a
 * backup; chunk results are bit-identical whoever computes them, so the
 * first to finish counts). Waiting spins briefly, then yields the core.
 * One OpenMP parallel region per job: no barrier per operation. */
#ifndef DD_TEAM_H
#define DD_TEAM_H

#include "base/export.h"
#include "distill/status.h"

/** Most chunks in one step. */
#define DD_TEAM_MAX_CHUNKS 64

typedef struct dd_team_job {
    int n_steps;
    /** Chunks of step `step` (1..DD_TEAM_MAX_CHUNKS). */
    int (*n_chunks)(void *ctx, int step);
    /** Computes chunk `chunk` of step `step` on worker `worker` into buffer
     * `buf`, the caller's storage numbered by the team: no other computation
     * writes buffer `buf` until this one returns and, when this result is
     * the one that counts, until the step's reduction has run. buf <
     * n_chunks(step) + workers, so that many buffers of a step's kind
     * suffice. Worker w runs at most one call at a time. */
    dd_status (*compute)(void *ctx, int step, int chunk, int worker, int buf);
    /** Combines step `step`: buf[c] is the buffer holding the result of chunk
     * c that counts. Runs once per step, on one worker, after every chunk of
     * the step and before any chunk of the next. (optional) */
    dd_status (*reduce)(void *ctx, int step, const int *buf);
    void *ctx;
    /** Non-zero: never compute a chunk twice (for chunks that read state a
     * later step's reduction overwrites, or that write outside `buf`). */
    int no_backup;
} dd_team_job;

/** What a run of a job did (for the engine's statistics and tests). */
typedef struct dd_team_stats {
    long long chunks;  /**< chunk computations, backups included */
    long long backups; /**< second computations of a late chunk */
} dd_team_stats;

/** Runs `job` on `workers` threads (1: inline, in order, no threads).
 * Returns the first failure of a compute or reduce (its message kept); a
 * failure stops the job at the next chunk boundary. stats is optional. */
DD_INTERNAL dd_status dd_team_run(int workers, const dd_team_job *job, dd_team_stats *stats);

#endif
