/* distill — the engine's worker team: dynamic chunk claiming, one reduction
 * per step by the worker that finishes the step's last chunk, backups of
 * late chunks, and a waiting policy that yields the core (team.h). */
#define _POSIX_C_SOURCE 200809L
#include "engine/team.h"

#include <omp.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "distill/log.h"

/* A late chunk gets a backup once a waiting worker has waited this many
 * times its own last chunk's duration, and at least BACKUP_MIN_S. */
#define BACKUP_FACTOR 2.0
#define BACKUP_MIN_S 50e-6
/* Spins before a waiting worker starts yielding its core to others. */
#define SPINS_BEFORE_YIELD 256
/* Buffers: at most DD_TEAM_MAX_CHUNKS results awaiting a reduction plus one
 * computation per worker (at most 255 workers). */
#define MAX_BUFFERS (DD_TEAM_MAX_CHUNKS + 256)
#define HELD_WORDS ((MAX_BUFFERS + 63) / 64)
#define BUF_SPAN 1024

typedef struct team {
    const dd_team_job *job;
    // claim[c] <= k: chunk c is free for step k; k + 1: claimed for step k.
    atomic_int claim[DD_TEAM_MAX_CHUNKS];
    // done[c] = (k + 1) * BUF_SPAN + buffer once step k's chunk c is finished.
    atomic_long done[DD_TEAM_MAX_CHUNKS];
    // bit b set: buffer b is written by a computation or holds a result
    // that counts, not yet reduced
    atomic_ullong held[HELD_WORDS];
    atomic_int ndone;     // chunks of the current step finished
    atomic_int step_done; // steps whose reduction has run
    atomic_int failed;
    atomic_llong chunks, backups;
    dd_status status; // written once, by the worker that set `failed`
    char message[1024];
} team;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void wait_a_little(unsigned *spins) {
    if (++*spins < SPINS_BEFORE_YIELD)
        cpu_relax();
    else
        sched_yield();
}

static void fail(team *t, dd_status s) {
    int expected = 0;
    if (atomic_compare_exchange_strong(&t->failed, &expected, 1)) {
        t->status = s;
        snprintf(t->message, sizeof t->message, "%s", dd_error_message());
    }
}

static int n_chunks_of(const team *t, int step) {
    int n = t->job->n_chunks(t->job->ctx, step);
    return n < 1 ? 1 : (n > DD_TEAM_MAX_CHUNKS ? DD_TEAM_MAX_CHUNKS : n);
}

static int is_done(team *t, int step, int c) {
    return atomic_load_explicit(&t->done[c], memory_order_acquire) / BUF_SPAN >= (long)step + 1;
}

/* The lowest free buffer. While a step of nc chunks runs, at most nc − 1 of
 * its results and workers − 1 other computations hold buffers, so the
 * lowest free one is below nc + workers. */
static int take_buffer(team *t) {
    for (int i = 0; i < HELD_WORDS; i++) {
        unsigned long long cur = atomic_load_explicit(&t->held[i], memory_order_relaxed);
        while (~cur) {
            const int b = __builtin_ctzll(~cur);
            if (atomic_compare_exchange_weak_explicit(&t->held[i], &cur, cur | (1ULL << b),
                                                      memory_order_acq_rel, memory_order_relaxed))
                return i * 64 + b;
        }
    }
    return -1; // more holders than workers + chunks: cannot happen
}

static void give_buffer(team *t, int b) {
    atomic_fetch_and_explicit(&t->held[b / 64], ~(1ULL << (b % 64)), memory_order_acq_rel);
}

/* The reduction of `step`, then the release of the next step. */
static void reduce_step(team *t, int step, int nc) {
    int buf[DD_TEAM_MAX_CHUNKS];
    for (int c = 0; c < nc; c++)
        buf[c] = (int)(atomic_load_explicit(&t->done[c], memory_order_acquire) % BUF_SPAN);
    if (t->job->reduce && !atomic_load(&t->failed)) {
        dd_status s = t->job->reduce(t->job->ctx, step, buf);
        if (s != DD_OK) fail(t, s);
    }
    for (int c = 0; c < nc; c++)
        give_buffer(t, buf[c]);
    atomic_store_explicit(&t->ndone, 0, memory_order_relaxed);
    atomic_store_explicit(&t->step_done, step + 1, memory_order_release);
}

/* Chunk c of `step` finished into buffer b: record it unless another
 * computation was first (then b is free again); the step's last chunk runs
 * the reduction. */
static void publish(team *t, int step, int c, int b, int nc) {
    const long mine = ((long)step + 1) * BUF_SPAN + b;
    long old = atomic_load_explicit(&t->done[c], memory_order_relaxed);
    for (;;) {
        if (old / BUF_SPAN >= (long)step + 1) { // a backup or the original won
            give_buffer(t, b);
            return;
        }
        if (atomic_compare_exchange_weak_explicit(&t->done[c], &old, mine, memory_order_acq_rel,
                                                  memory_order_relaxed))
            break;
    }
    if (atomic_fetch_add_explicit(&t->ndone, 1, memory_order_acq_rel) + 1 == nc)
        reduce_step(t, step, nc);
}

/* Computes chunk c of `step` on worker w; returns its duration. */
static double run_chunk(team *t, int step, int c, int w, int nc, int backup) {
    const double t0 = now_s();
    const int b = take_buffer(t);
    dd_status s = b < 0 ? dd_error_set(DD_ERR_NOMEM, "team: no free buffer")
                        : t->job->compute(t->job->ctx, step, c, w, b);
    const double dt = now_s() - t0;
    atomic_fetch_add_explicit(&t->chunks, 1, memory_order_relaxed);
    if (backup) atomic_fetch_add_explicit(&t->backups, 1, memory_order_relaxed);
    if (s != DD_OK) {
        // A late copy's failure does not count when the chunk is done.
        if (!is_done(t, step, c)) fail(t, s);
        dd_error_clear();
        if (b >= 0) give_buffer(t, b);
        return dt;
    }
    publish(t, step, c, b, nc);
    return dt;
}

static void worker_loop(team *t, int w) {
    const dd_team_job *job = t->job;
    double last = 0.0; // this worker's last chunk duration
    for (int k = 0; k < job->n_steps && !atomic_load(&t->failed); k++) {
        unsigned spins = 0;
        while (atomic_load_explicit(&t->step_done, memory_order_acquire) < k &&
               !atomic_load(&t->failed))
            wait_a_little(&spins);
        if (atomic_load(&t->failed)) break;
        const int nc = n_chunks_of(t, k);
        for (int c = 0; c < nc && !atomic_load(&t->failed); c++) {
            int seen = atomic_load_explicit(&t->claim[c], memory_order_relaxed);
            if (seen <= k && atomic_compare_exchange_strong(&t->claim[c], &seen, k + 1))
                last = run_chunk(t, k, c, w, nc, 0);
        }
        // Wait for the step; back up a late chunk now and then.
        double since = now_s();
        int next_backup = 0;
        spins = 0;
        while (atomic_load_explicit(&t->step_done, memory_order_acquire) < k + 1 &&
               !atomic_load(&t->failed)) {
            const double limit =
                BACKUP_FACTOR * last > BACKUP_MIN_S ? BACKUP_FACTOR * last : BACKUP_MIN_S;
            if (!job->no_backup && now_s() - since > limit) {
                int c = -1;
                for (int j = 0; j < nc; j++) {
                    int cand = (next_backup + j) % nc;
                    if (!is_done(t, k, cand)) {
                        c = cand;
                        break;
                    }
                }
                if (c >= 0) {
                    next_backup = c + 1;
                    last = run_chunk(t, k, c, w, nc, 1);
                }
                since = now_s();
                spins = 0;
                continue;
            }
            wait_a_little(&spins);
        }
    }
}

static dd_status run_inline(const dd_team_job *job, dd_team_stats *stats) {
    int buf[DD_TEAM_MAX_CHUNKS];
    for (int c = 0; c < DD_TEAM_MAX_CHUNKS; c++)
        buf[c] = c;
    for (int k = 0; k < job->n_steps; k++) {
        const int nc = job->n_chunks(job->ctx, k);
        for (int c = 0; c < nc; c++) {
            DD_TRY(job->compute(job->ctx, k, c, 0, c));
            if (stats) stats->chunks++;
        }
        if (job->reduce) DD_TRY(job->reduce(job->ctx, k, buf));
    }
    return DD_OK;
}

dd_status dd_team_run(int workers, const dd_team_job *job, dd_team_stats *stats) {
    if (stats) memset(stats, 0, sizeof *stats);
    if (workers > 255) workers = 255;
    if (workers <= 1) return run_inline(job, stats);
    team t;
    memset(&t, 0, sizeof t);
    t.job = job;
    for (int c = 0; c < DD_TEAM_MAX_CHUNKS; c++) {
        atomic_init(&t.claim[c], 0);
        atomic_init(&t.done[c], 0);
    }
    for (int i = 0; i < HELD_WORDS; i++)
        atomic_init(&t.held[i], 0);
    atomic_init(&t.ndone, 0);
    atomic_init(&t.step_done, 0);
    atomic_init(&t.failed, 0);
    atomic_init(&t.chunks, 0);
    atomic_init(&t.backups, 0);
#pragma omp parallel num_threads(workers)
    worker_loop(&t, omp_get_thread_num());
    if (stats) {
        stats->chunks = atomic_load(&t.chunks);
        stats->backups = atomic_load(&t.backups);
    }
    if (atomic_load(&t.failed)) return dd_error_set(t.status, "%s", t.message);
    return DD_OK;
}
