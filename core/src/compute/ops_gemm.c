/* distill — small register-blocked sgemm kernels for the reference backend
 * (conv via im2col, linear layers). Not oneDNN-fast, but not naive. */
#include <string.h>

#include "compute/ops.h"

typedef float v8 __attribute__((vector_size(32)));

static inline v8 ld8(const float *p) {
    v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void st8(float *p, v8 v) {
    memcpy(p, &v, sizeof v);
}

static inline float hsum8(v8 v) {
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

#define NN_NB 256 /* columns per parallel block */

// C[mr × 16] += A[mr × K]·B[K × 16], accumulators held in registers.
static inline __attribute__((always_inline)) void nn_tile(int mr, int K, const float *A,
                                                          ptrdiff_t sam, ptrdiff_t sak,
                                                          const float *B, int ldb, float *C,
                                                          int ldc) {
    v8 acc[4][2];
    for (int i = 0; i < mr; i++) {
        acc[i][0] = ld8(C + (ptrdiff_t)i * ldc);
        acc[i][1] = ld8(C + (ptrdiff_t)i * ldc + 8);
    }
    for (int k = 0; k < K; k++) {
        const float *b = B + (ptrdiff_t)k * ldb;
        v8 b0 = ld8(b), b1 = ld8(b + 8);
        for (int i = 0; i < mr; i++) {
            float a = A[i * sam + k * sak];
            acc[i][0] += a * b0;
            acc[i][1] += a * b1;
        }
    }
    for (int i = 0; i < mr; i++) {
        st8(C + (ptrdiff_t)i * ldc, acc[i][0]);
        st8(C + (ptrdiff_t)i * ldc + 8, acc[i][1]);
    }
}

static void nn_block(int mr, int nn, int K, const float *A, ptrdiff_t sam, ptrdiff_t sak,
                     const float *B, int ldb, float *C, int ldc) {
    int j = 0;
    for (; j + 16 <= nn; j += 16) {
        switch (mr) {
        case 4:
            nn_tile(4, K, A, sam, sak, B + j, ldb, C + j, ldc);
            break;
        case 3:
            nn_tile(3, K, A, sam, sak, B + j, ldb, C + j, ldc);
            break;
        case 2:
            nn_tile(2, K, A, sam, sak, B + j, ldb, C + j, ldc);
            break;
        default:
            nn_tile(1, K, A, sam, sak, B + j, ldb, C + j, ldc);
            break;
        }
    }
    if (j < nn) {
        for (int i = 0; i < mr; i++) {
            float *c = C + (ptrdiff_t)i * ldc;
            for (int k = 0; k < K; k++) {
                float a = A[i * sam + k * sak];
                const float *b = B + (ptrdiff_t)k * ldb;
                for (int jj = j; jj < nn; jj++)
                    c[jj] += a * b[jj];
            }
        }
    }
}

void dd_gemm_acc(int M, int N, int K, const float *A, ptrdiff_t sam, ptrdiff_t sak, const float *B,
                 int ldb, float *C, int ldc, int nthreads) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    const int mblocks = (M + 3) / 4, nblocks = (N + NN_NB - 1) / NN_NB;
    const int par = nthreads > 1 && (double)M * N * K > 1e5 && mblocks * nblocks > 1;
#pragma omp parallel for collapse(2) schedule(static) num_threads(par ? nthreads : 1) if (par)
    for (int mb = 0; mb < mblocks; mb++) {
        for (int nb = 0; nb < nblocks; nb++) {
            int m0 = mb * 4, n0 = nb * NN_NB;
            int mr = M - m0 < 4 ? M - m0 : 4;
            int nn = N - n0 < NN_NB ? N - n0 : NN_NB;
            nn_block(mr, nn, K, A + m0 * sam, sam, sak, B + n0, ldb, C + (ptrdiff_t)m0 * ldc + n0,
                     ldc);
        }
    }
}

// C[2 × 4] += A[2 × K]·B[4 × K]ᵀ, vectorised along K.
static void nt_tile(int mr, int nr, int K, const float *A, int lda, const float *B, int ldb,
                    float *C, int ldc) {
    v8 acc[2][4];
    memset(acc, 0, sizeof acc);
    int k = 0;
    if (mr == 2 && nr == 4) {
        for (; k + 8 <= K; k += 8) {
            v8 a0 = ld8(A + k), a1 = ld8(A + lda + k);
            for (int j = 0; j < 4; j++) {
                v8 b = ld8(B + (ptrdiff_t)j * ldb + k);
                acc[0][j] += a0 * b;
                acc[1][j] += a1 * b;
            }
        }
    } else {
        for (; k + 8 <= K; k += 8) {
            for (int i = 0; i < mr; i++) {
                v8 a = ld8(A + (ptrdiff_t)i * lda + k);
                for (int j = 0; j < nr; j++)
                    acc[i][j] += a * ld8(B + (ptrdiff_t)j * ldb + k);
            }
        }
    }
    for (int i = 0; i < mr; i++) {
        for (int j = 0; j < nr; j++) {
            float s = hsum8(acc[i][j]);
            for (int kk = k; kk < K; kk++)
                s += A[(ptrdiff_t)i * lda + kk] * B[(ptrdiff_t)j * ldb + kk];
            C[(ptrdiff_t)i * ldc + j] += s;
        }
    }
}

void dd_gemm_nt_acc(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, int nthreads) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    const int mblocks = (M + 1) / 2, nblocks = (N + 3) / 4;
    const int par = nthreads > 1 && (double)M * N * K > 1e5;
#pragma omp parallel for collapse(2) schedule(static) num_threads(par ? nthreads : 1) if (par)
    for (int mb = 0; mb < mblocks; mb++) {
        for (int nb = 0; nb < nblocks; nb++) {
            int m0 = mb * 2, n0 = nb * 4;
            int mr = M - m0 < 2 ? M - m0 : 2;
            int nr = N - n0 < 4 ? N - n0 : 4;
            nt_tile(mr, nr, K, A + (ptrdiff_t)m0 * lda, lda, B + (ptrdiff_t)n0 * ldb, ldb,
                    C + (ptrdiff_t)m0 * ldc + n0, ldc);
        }
    }
}
