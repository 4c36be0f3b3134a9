/* distill — counter-based RNG: every draw is a pure hash of
 * (seed, stream, counter), so parallel fills give the same numbers for any
 * thread count or split of the range. */
#include "distill/tensor.h"

#include <math.h>

#define GOLDEN 0x9E3779B97F4A7C15ull

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t mix64b(uint64_t z) {
    z = (z ^ (z >> 33)) * 0xFF51AFD7ED558CCDull;
    z = (z ^ (z >> 33)) * 0xC4CEB9FE1A85EC53ull;
    return z ^ (z >> 33);
}

// Keys derived from (seed, stream); the draw at counter c is a two-round
// hash of a Weyl sequence, so no state other than the counter is needed.
static void rng_keys(const dd_rng *r, uint64_t *k1, uint64_t *k2) {
    *k1 = mix64(r->seed + GOLDEN * (r->stream + 1));
    *k2 = mix64b(r->seed ^ mix64(r->stream ^ 0xD1B54A32D192ED03ull));
}

static inline uint64_t rng_at(uint64_t k1, uint64_t k2, uint64_t c) {
    return mix64b(mix64(k1 + GOLDEN * c) ^ k2);
}

dd_rng dd_rng_make(uint64_t seed, uint64_t stream) {
    dd_rng r = {seed, stream, 0};
    return r;
}

uint64_t dd_rng_u64(dd_rng *r) {
    uint64_t k1, k2;
    rng_keys(r, &k1, &k2);
    return rng_at(k1, k2, r->counter++);
}

uint64_t dd_rng_below(dd_rng *r, uint64_t n) {
    if (n <= 1) return 0;
    // Lemire's multiply-shift with rejection: unbiased for every n.
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = dd_rng_u64(r);
        unsigned __int128 m = (unsigned __int128)x * n;
        if ((uint64_t)m >= threshold) return (uint64_t)(m >> 64);
    }
}

#define PAR_MIN 65536

void dd_rng_uniform(dd_rng *r, float *out, size_t n, float lo, float hi) {
    uint64_t k1, k2;
    rng_keys(r, &k1, &k2);
    const uint64_t c0 = r->counter;
    const double span = (double)hi - (double)lo;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        double u = (double)(rng_at(k1, k2, c0 + i) >> 11) * 0x1.0p-53;
        float v = (float)(lo + span * u);
        if (v >= hi && hi > lo) v = nextafterf(hi, lo);
        out[i] = v;
    }
    r->counter += n;
}

void dd_rng_normal(dd_rng *r, float *out, size_t n, float mean, float std) {
    uint64_t k1, k2;
    rng_keys(r, &k1, &k2);
    const uint64_t c0 = r->counter;
    const double two_pi = 6.283185307179586476925;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        // Box–Muller from the two 32-bit halves of one draw: one draw per
        // value keeps "counter advances by n" and index i independent.
        uint64_t x = rng_at(k1, k2, c0 + i);
        double u1 = ((double)(x >> 32) + 0.5) * 0x1.0p-32;
        double u2 = (double)(x & 0xFFFFFFFFu) * 0x1.0p-32;
        double z = sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
        out[i] = (float)(mean + std * z);
    }
    r->counter += n;
}

void dd_rng_shuffle(dd_rng *r, int64_t *idx, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)dd_rng_below(r, i);
        int64_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
