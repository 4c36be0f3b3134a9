/* distill — the engine's state in and out: checkpoints (every learned value,
 * the Adam moments, counters and histories, checked against the run's
 * configuration on load) and the export as a distilled set. */
#include <math.h>
#include <string.h>

#include "distill/tensor.h"
#include "engine/checkpoint.h"
#include "engine/engine_impl.h"

/* What must match for a checkpoint to continue this run. */
#define SIG_LEN 10

static void config_signature(const dd_engine *e, int64_t sig[SIG_LEN]) {
    sig[0] = e->S;
    sig[1] = e->E;
    sig[2] = e->M;
    sig[3] = (int64_t)e->D;
    sig[4] = (int64_t)e->P;
    sig[5] = e->n_out;
    sig[6] = e->cfg.init_mode;
    sig[7] = e->soft != NULL;
    sig[8] = (int64_t)e->cfg.seed;
    sig[9] = e->B;
}

dd_status dd_engine_save(const dd_engine *e, const char *path) {
    const size_t SMD = (size_t)e->S * (size_t)e->M * e->D * sizeof(float);
    const size_t SMO = (size_t)e->S * (size_t)e->M * (size_t)e->n_out * sizeof(float);
    const size_t KB = (size_t)e->K * sizeof(float);
    const int64_t hist = e->iter < e->hist_cap ? e->iter : e->hist_cap;
    int64_t sig[SIG_LEN], counters[3] = {e->iter, e->adam_t, e->stats.timed_iterations};
    config_signature(e, sig);
    double seconds = e->stats.seconds;
    dd_ckpt_writer *w;
    DD_TRY(dd_ckpt_writer_create(&w));
    dd_status s = DD_OK;
#define ADD(tag, p, n)                                                                             \
    if (s == DD_OK) s = dd_ckpt_writer_add(w, tag, p, n)
    ADD("signature", sig, sizeof sig);
    ADD("counters", counters, sizeof counters);
    ADD("seconds", &seconds, sizeof seconds);
    ADD("pixels", e->pixels, SMD);
    ADD("pixels.m", e->m_pix, SMD);
    ADD("pixels.v", e->v_pix, SMD);
    ADD("raw_lrs", e->raw, KB);
    ADD("raw_lrs.m", e->m_raw, KB);
    ADD("raw_lrs.v", e->v_raw, KB);
    if (e->soft) {
        ADD("labels", e->soft, SMO);
        ADD("labels.m", e->m_soft, SMO);
        ADD("labels.v", e->v_soft, SMO);
    }
    if (e->theta0) ADD("theta0", e->theta0, e->P * sizeof(float));
    ADD("loss", e->stats.loss_history, (size_t)hist * sizeof(double));
    ADD("metric", e->stats.metric_history, (size_t)hist * sizeof(double));
    ADD("lr_history", e->stats.lr_history, (size_t)hist * KB);
#undef ADD
    if (s == DD_OK) s = dd_ckpt_writer_commit(w, path);
    dd_ckpt_writer_destroy(w);
    return s;
}

/* The signature, counters and time of a checkpoint, checked against e. */
static dd_status read_header(const dd_engine *e, const dd_ckpt *c, const char *path,
                             int64_t counters[3], double *seconds) {
    int64_t sig[SIG_LEN], want[SIG_LEN];
    DD_TRY(dd_ckpt_get_exact(c, "signature", sig, sizeof sig));
    config_signature(e, want);
    static const char *const what[SIG_LEN] = {
        "steps",   "epochs",    "images per step", "image size", "parameters",
        "outputs", "init_mode", "learned labels",  "seed",       "batch_real"};
    for (int i = 0; i < SIG_LEN; i++)
        if (sig[i] != want[i])
            return dd_error_set(DD_ERR_INVALID,
                                "%s: checkpoint was made with %s = %lld, this run has %lld; "
                                "resume with the same configuration",
                                path, what[i], (long long)sig[i], (long long)want[i]);
    DD_TRY(dd_ckpt_get_exact(c, "counters", counters, 3 * sizeof *counters));
    if (counters[0] > e->hist_cap && e->cfg.iterations > 0)
        return dd_error_set(DD_ERR_INVALID,
                            "%s: checkpoint is at iteration %lld, beyond distill.iterations = %lld",
                            path, (long long)counters[0], (long long)e->cfg.iterations);
    return dd_ckpt_get_exact(c, "seconds", seconds, sizeof *seconds);
}

/* The step sizes after each iteration. A checkpoint written before they
 * were recorded has no such record: its iterations get NaN (the plots skip
 * them) and the run goes on, as it did with that checkpoint before. */
static dd_status read_lr_history(dd_engine *e, const dd_ckpt *c, int64_t iterations) {
    const size_t n = (size_t)iterations * (size_t)e->K;
    const void *p;
    size_t bytes;
    if (dd_ckpt_get(c, "lr_history", &p, &bytes) != DD_OK) {
        dd_error_clear();
        for (size_t i = 0; i < n; i++)
            e->stats.lr_history[i] = NAN;
        return DD_OK;
    }
    return dd_ckpt_get_exact(c, "lr_history", e->stats.lr_history, n * sizeof(float));
}

/* Every learned value, moment and history entry into the live buffers. */
static dd_status read_state(dd_engine *e, const dd_ckpt *c, int64_t iterations) {
    const size_t SMD = (size_t)e->S * (size_t)e->M * e->D * sizeof(float);
    const size_t SMO = (size_t)e->S * (size_t)e->M * (size_t)e->n_out * sizeof(float);
    const size_t KB = (size_t)e->K * sizeof(float);
    dd_status s = dd_ckpt_get_exact(c, "pixels", e->pixels, SMD);
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "pixels.m", e->m_pix, SMD);
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "pixels.v", e->v_pix, SMD);
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "raw_lrs", e->raw, KB);
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "raw_lrs.m", e->m_raw, KB);
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "raw_lrs.v", e->v_raw, KB);
    if (s == DD_OK && e->soft) {
        s = dd_ckpt_get_exact(c, "labels", e->soft, SMO);
        if (s == DD_OK) s = dd_ckpt_get_exact(c, "labels.m", e->m_soft, SMO);
        if (s == DD_OK) s = dd_ckpt_get_exact(c, "labels.v", e->v_soft, SMO);
    }
    if (s == DD_OK && e->theta0)
        s = dd_ckpt_get_exact(c, "theta0", e->theta0, e->P * sizeof(float));
    if (s == DD_OK) {
        size_t hb = (size_t)iterations * sizeof(double);
        s = dd_ckpt_get_exact(c, "loss", e->stats.loss_history, hb);
        if (s == DD_OK) s = dd_ckpt_get_exact(c, "metric", e->stats.metric_history, hb);
    }
    if (s == DD_OK) s = read_lr_history(e, c, iterations);
    return s;
}

dd_status dd_engine_load(dd_engine *e, const char *path) {
    dd_ckpt *c;
    DD_TRY(dd_ckpt_read(path, &c));
    int64_t counters[3];
    double seconds = 0;
    // Read into the live buffers only after every check of the header passed.
    dd_status s = read_header(e, c, path, counters, &seconds);
    if (s == DD_OK) s = read_state(e, c, counters[0]);
    dd_ckpt_destroy(c);
    if (s != DD_OK) return s;
    e->iter = counters[0];
    e->adam_t = counters[1];
    e->stats.timed_iterations = counters[2];
    e->stats.seconds = seconds;
    e->stats.iterations = e->iter;
    if (e->iter > 0) {
        e->stats.last_loss = e->stats.loss_history[e->iter - 1];
        e->stats.last_metric = e->stats.metric_history[e->iter - 1];
    }
    e->stats.seconds_per_iteration =
        e->stats.timed_iterations > 0 ? e->stats.seconds / (double)e->stats.timed_iterations : 0;
    return DD_OK;
}

dd_status dd_engine_export(const dd_engine *e, dd_distilled **out) {
    const dd_dataset *t = e->train;
    DD_TRY(dd_distilled_create(e->S, e->E, e->cfg.images_per_class, e->n_classes, t->channels,
                               t->height, t->width, 0.f, out));
    dd_distilled *d = *out;
    memcpy(d->images, e->pixels, (size_t)e->S * (size_t)e->M * e->D * sizeof(float));
    memcpy(d->labels, e->labels, (size_t)e->M * sizeof(int32_t));
    for (int k = 0; k < e->K; k++)
        d->lrs[k] = dd_lr_from_raw(e->raw[k]);
    memcpy(d->mean, t->mean, sizeof d->mean);
    memcpy(d->std, t->std, sizeof d->std);
    d->n_outputs = e->n_out;
    if (e->soft) {
        size_t n = (size_t)e->S * (size_t)e->M * (size_t)e->n_out;
        if (!(d->soft = dd_alloc_floats(n))) {
            dd_distilled_destroy(d);
            *out = NULL;
            return dd_error_set(DD_ERR_NOMEM, "engine: out of memory");
        }
        memcpy(d->soft, e->soft, n * sizeof(float));
    }
    return DD_OK;
}
