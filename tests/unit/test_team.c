/* Tests of the engine's worker team (engine/team.h): every chunk of every
 * step counted once and reduced in chunk order, whatever the worker count;
 * a paused worker's chunk backed up by another; a failing chunk ends the
 * job with its message, without hanging; the buffers the team hands out
 * are never shared by two computations at once nor reused before their
 * result is reduced, and stay below chunks + workers. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "distill/status.h"
#include "engine/team.h"

#define STEPS 40
#define MAXW 4

#define MAXBUF (DD_TEAM_MAX_CHUNKS + MAXW)

/* Step k's chunk c produces (k + 1) · (c + 1) into the buffer the team gives
 * it; the reduction appends the step's sum, taken in chunk order, to a
 * running total that the next step's chunks read (so a step that started
 * early would see the wrong total, and a buffer handed out again before its
 * result was reduced would give a wrong sum). */
typedef struct job_ctx {
    long long slot[MAXBUF];
    int busy[MAXBUF]; /* a computation is writing it */
    int workers;      /* of the run */
    int buf_overlap;  /* two computations were given one buffer at once */
    int buf_too_high; /* a buffer at or above chunks + workers */
    long long total;
    long long sums[STEPS];
    int calls[STEPS][DD_TEAM_MAX_CHUNKS];
    int pause_step, pause_chunk;         /* the first worker there sleeps (−1: never) */
    int paused;                          /* set by that worker */
    long long total_before, total_after; /* the running total around its sleep */
    int fail_step, fail_chunk;           /* that chunk fails (−1: never) */
    int nworkers_seen[MAXW];
} job_ctx;

static int chunks_of(void *ctx, int step) {
    (void)ctx;
    return 1 + step % 7;
}

static dd_status compute_into(job_ctx *j, int step, int c, int w, int b) {
    if (step == j->fail_step && c == j->fail_chunk)
        return dd_error_set(DD_ERR_NUMERIC, "chunk %d of step %d failed on purpose", c, step);
    if (step == j->pause_step && c == j->pause_chunk &&
        __atomic_exchange_n(&j->paused, 1, __ATOMIC_ACQ_REL) == 0) {
        j->total_before = __atomic_load_n(&j->total, __ATOMIC_ACQUIRE);
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        j->total_after = __atomic_load_n(&j->total, __ATOMIC_ACQUIRE);
        return DD_OK; // late: its result is not used
    }
    __atomic_fetch_add(&j->calls[step][c], 1, __ATOMIC_RELAXED);
    j->nworkers_seen[w] = 1;
    j->slot[b] = (step + 1) * (c + 1) + j->total;
    return DD_OK;
}

static dd_status compute(void *vctx, int step, int c, int w, int b) {
    job_ctx *j = vctx;
    if (b < 0 || b >= chunks_of(j, step) + j->workers) {
        __atomic_store_n(&j->buf_too_high, 1, __ATOMIC_RELAXED);
        return DD_OK;
    }
    if (__atomic_exchange_n(&j->busy[b], 1, __ATOMIC_ACQ_REL))
        __atomic_store_n(&j->buf_overlap, 1, __ATOMIC_RELAXED);
    dd_status s = compute_into(j, step, c, w, b);
    __atomic_store_n(&j->busy[b], 0, __ATOMIC_RELEASE);
    return s;
}

static dd_status reduce(void *vctx, int step, const int *buf) {
    job_ctx *j = vctx;
    long long s = 0;
    for (int c = 0; c < chunks_of(j, step); c++)
        s += j->slot[buf[c]] - j->total;
    j->sums[step] = s;
    __atomic_store_n(&j->total, j->total + s, __ATOMIC_RELEASE);
    return DD_OK;
}

static void run(int workers, job_ctx *j, dd_team_stats *st, dd_status want) {
    dd_team_job job = {STEPS, chunks_of, compute, reduce, j, 0};
    j->workers = workers;
    assert_int_equal(dd_team_run(workers, &job, st), want);
    assert_int_equal(j->buf_overlap, 0);
    assert_int_equal(j->buf_too_high, 0);
}

static void expect_sums(const job_ctx *j) {
    for (int k = 0; k < STEPS; k++) {
        const int n = 1 + k % 7;
        assert_int_equal(j->sums[k], (long long)(k + 1) * n * (n + 1) / 2);
    }
}

static void test_every_chunk_once(void **st) {
    (void)st;
    for (int w = 1; w <= MAXW; w++) {
        static job_ctx j;
        memset(&j, 0, sizeof j);
        j.pause_step = j.fail_step = -1;
        dd_team_stats ts;
        run(w, &j, &ts, DD_OK);
        expect_sums(&j);
        assert_true(ts.chunks >= 155); // 40 steps of 1, 2, …, 7, 1, … chunks
        for (int k = 0; k < STEPS; k++)
            for (int c = 0; c < 1 + k % 7; c++)
                assert_true(j.calls[k][c] >= 1);
    }
}

/* The worker that takes one chunk sleeps 200 ms in it: the other computes
 * it again and finishes the job's later steps meanwhile; the totals are
 * right (the sleeper's result, late, is never used). */
static void test_late_chunk_backed_up(void **st) {
    (void)st;
    static job_ctx j;
    memset(&j, 0, sizeof j);
    j.pause_step = 5;
    j.pause_chunk = 0;
    j.fail_step = -1;
    dd_team_stats ts;
    run(2, &j, &ts, DD_OK);
    expect_sums(&j);
    assert_int_equal(j.paused, 1);
    assert_true(ts.backups >= 1);
    assert_int_equal(j.calls[5][0], 1);          // the backup's (the sleeper returns early)
    assert_true(j.total_after > j.total_before); // later steps went on meanwhile
    printf("  chunks %lld, backups %lld\n", ts.chunks, ts.backups);
}

static void test_failure_ends_job(void **st) {
    (void)st;
    for (int w = 1; w <= 3; w++) {
        static job_ctx j;
        memset(&j, 0, sizeof j);
        j.pause_step = -1;
        j.fail_step = 9;
        j.fail_chunk = 2;
        dd_error_clear();
        run(w, &j, NULL, DD_ERR_NUMERIC);
        assert_non_null(strstr(dd_error_message(), "chunk 2 of step 9 failed on purpose"));
        for (int k = 10; k < STEPS; k++)
            assert_int_equal(j.calls[k][0], 0); // nothing after the failing step
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_chunk_once),
        cmocka_unit_test(test_late_chunk_backed_up),
        cmocka_unit_test(test_failure_ends_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
