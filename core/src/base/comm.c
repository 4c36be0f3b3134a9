/* distill — the processes of a run: MPI when launched by mpirun, one
 * process otherwise (comm.h). */
#define _POSIX_C_SOURCE 200809L
#include "base/comm.h"

#include "distill/host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef DD_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_active = 0;
static double g_seconds = 0.0;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int dd_comm_rank(void) {
    return g_rank;
}

int dd_comm_size(void) {
    return g_size;
}

double dd_comm_seconds(void) {
    return g_seconds;
}

int dd_comm_built_with_mpi(void) {
#ifdef DD_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

/* Set by Open MPI's mpirun and by PMIx / PMI launchers (srun, hydra). */
static int launched_by_mpirun(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

#ifdef DD_HAVE_MPI
static dd_status mpi_error(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", rc);
    return dd_error_set(DD_ERR_IO, "MPI %s failed on rank %d: %s", what, g_rank, msg);
}
#define MPI_TRY(call, what)                                                                        \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MPI_SUCCESS) return mpi_error(rc_, what);                                       \
    } while (0)
#endif

dd_status dd_comm_init(int *argc, char ***argv) {
#ifdef DD_HAVE_MPI
    if (g_active || !launched_by_mpirun()) return DD_OK;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        return dd_error_set(DD_ERR_IO, "MPI_Init_thread failed (started by mpirun?)");
    g_active = 1;
    // errors come back as codes, reported with the rank and the call
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (provided < MPI_THREAD_SERIALIZED && g_size > 1)
        return dd_error_set(DD_ERR_UNSUPPORTED,
                            "this MPI library gives thread level %d; distill needs "
                            "MPI_THREAD_SERIALIZED (its worker threads take turns calling MPI)",
                            provided);
    return DD_OK;
#else
    (void)argc;
    (void)argv;
    if (launched_by_mpirun() && getenv("OMPI_COMM_WORLD_SIZE") &&
        atoi(getenv("OMPI_COMM_WORLD_SIZE")) > 1)
        return dd_error_set(DD_ERR_UNSUPPORTED,
                            "started by mpirun with %s ranks, but this distill was built without "
                            "MPI (install libopenmpi-dev and rebuild; see docs/scale.md)",
                            getenv("OMPI_COMM_WORLD_SIZE"));
    return DD_OK;
#endif
}

void dd_comm_finalize(void) {
#ifdef DD_HAVE_MPI
    if (!g_active) return;
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    g_active = 0;
#endif
}

void dd_comm_abort(int code) {
    fflush(stdout);
    fflush(stderr);
#ifdef DD_HAVE_MPI
    if (g_active && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}

#ifdef DD_HAVE_MPI
/* Sum over ranks with the same bits everywhere: the vector is cut into
 * `size` blocks; MPI_Reduce_scatter_block leaves block r, reduced, on rank r
 * alone, and MPI_Allgather copies the blocks to everyone. */
static dd_status sum_blocks(void *buf, size_t n, size_t elem, MPI_Datatype type) {
    const size_t size = (size_t)g_size;
    const size_t block = (n + size - 1) / size;
    if (block > (size_t)INT32_MAX) return dd_error_set(DD_ERR_LIMIT, "MPI sum: vector too long");
    unsigned char *pad = calloc(block * size, elem), *mine = malloc(block * elem);
    if (!pad || !mine) {
        free(pad);
        free(mine);
        return dd_error_set(DD_ERR_NOMEM, "MPI sum: out of memory");
    }
    memcpy(pad, buf, n * elem);
    int rc = MPI_Reduce_scatter_block(pad, mine, (int)block, type, MPI_SUM, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS)
        rc = MPI_Allgather(mine, (int)block, type, pad, (int)block, type, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS) memcpy(buf, pad, n * elem);
    free(pad);
    free(mine);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "sum");
    return DD_OK;
}
#endif

/* The sums of floats (is_double 0) or doubles, timed. */
static dd_status sum_timed(void *buf, size_t n, int is_double) {
#ifdef DD_HAVE_MPI
    if (g_size > 1) {
        const double t0 = now_s();
        dd_status s = is_double ? sum_blocks(buf, n, sizeof(double), MPI_DOUBLE)
                                : sum_blocks(buf, n, sizeof(float), MPI_FLOAT);
        g_seconds += now_s() - t0;
        return s;
    }
#endif
    (void)buf;
    (void)n;
    (void)is_double;
    return DD_OK;
}

dd_status dd_comm_sum_floats(float *buf, size_t n) {
    return sum_timed(buf, n, 0);
}

dd_status dd_comm_sum_doubles(double *buf, size_t n) {
    return sum_timed(buf, n, 1);
}

dd_status dd_comm_allgather_floats(float *buf, const int *counts, const int *displs) {
#ifdef DD_HAVE_MPI
    if (g_size > 1) {
        const double t0 = now_s();
        int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT,
                                MPI_COMM_WORLD);
        g_seconds += now_s() - t0;
        if (rc != MPI_SUCCESS) return mpi_error(rc, "allgather");
    }
#endif
    (void)buf;
    (void)counts;
    (void)displs;
    return DD_OK;
}

dd_status dd_comm_bcast(void *buf, size_t bytes, int root) {
#ifdef DD_HAVE_MPI
    if (g_size > 1) {
        unsigned char *p = buf;
        while (bytes > 0) {
            const int part = bytes > (size_t)1 << 30 ? 1 << 30 : (int)bytes;
            MPI_TRY(MPI_Bcast(p, part, MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
            p += part;
            bytes -= (size_t)part;
        }
    }
#endif
    (void)buf;
    (void)bytes;
    (void)root;
    return DD_OK;
}

dd_status dd_comm_barrier(void) {
#ifdef DD_HAVE_MPI
    if (g_size > 1) MPI_TRY(MPI_Barrier(MPI_COMM_WORLD), "barrier");
#endif
    return DD_OK;
}

/* ---- the public face (distill/host.h) ----------------------------------- */

dd_status dd_process_init(int *argc, char ***argv) {
    return dd_comm_init(argc, argv);
}

void dd_process_finalize(void) {
    dd_comm_finalize();
}

void dd_process_abort(int code) {
    dd_comm_abort(code);
}

int dd_process_rank(void) {
    return g_rank;
}

int dd_process_count(void) {
    return g_size;
}
