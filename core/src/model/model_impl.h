/* distill (internal) — the network runtime behind dd_model_*: graph, backend,
 * per-batch-size workspaces; and the inner losses. */
#ifndef DD_MODEL_IMPL_H
#define DD_MODEL_IMPL_H

#include "base/export.h"

#include <stdint.h>

#include "distill/host.h"
#include "distill/model.h"
#include "model/graph.h"
#include "compute/ops.h"

/** Builds a model directly from a graph (no plugin); takes ownership of g
 * (also on failure). For tests and tools. */
DD_INTERNAL dd_status dd_model_create_from_graph(dd_graph *g, dd_backend backend, dd_model **out);
/** A second model of m's graph, backend and thread setting, with its own
 * workspaces and oneDNN engine (no parameters are shared: a model holds
 * none), e.g. for one worker thread each. Caller owns *out. */
DD_INTERNAL dd_status dd_model_clone(const dd_model *m, dd_model **out);
/** Bytes of the workspace a forward + backward at `batch` allocates
 * (activations, layer scratch, cotangents, probabilities; not oneDNN's own
 * scratchpads): for sizing slices of a batch. */
DD_INTERNAL size_t dd_model_workspace_bytes(const dd_model *m, int64_t batch);
/** The model's graph (owned by the model). */
/** Builds cfg's graph without allocating a model (the plugin's build and
 * every shape check, as dd_model_create does them), for validating a
 * pipeline; *n_params (may be NULL) gets θ's size. */
DD_INTERNAL dd_status dd_model_check(const dd_model_config *cfg, size_t *n_params);
DD_INTERNAL const dd_graph *dd_model_graph(const dd_model *m);
/** The backend the model runs. */
DD_INTERNAL dd_backend dd_model_backend(const dd_model *m);

/** Threads of the model's passes that follow: oneDNN's calls and primitive
 * creation, and the ops' own loops of workspaces built from now on (a
 * workspace keeps the count it was built with for its per-thread scratch).
 * 0 (the default) follows the calling thread's OpenMP default at each pass.
 * The model never changes OpenMP's own setting beyond a oneDNN call.
 * Returns the previous setting, for a caller that changes it for a while. */
DD_INTERNAL int dd_model_set_threads(dd_model *m, int nthreads);
/** The model's thread setting (0: the calling thread's OpenMP default). */
DD_INTERNAL int dd_model_threads(const dd_model *m);

/** Frees every cached per-batch workspace (activations, gradients,
 * tangents, layer scratch); a later pass at any batch size builds its
 * workspace again, with the same results. For a phase that is done with a
 * batch size, e.g. distillation's real batch before evaluation. */
DD_INTERNAL void dd_model_release_workspaces(dd_model *m);

/** Images per piece of dd_model_forward_pieces for evaluation and testing. */
#define DD_MODEL_FORWARD_PIECE 64

/** dd_model_forward of `batch` images in consecutive pieces of at most
 * `piece` (logits batch × outputs): the workspace is that of a piece, not of
 * the batch. Each image's logits are the same as in one call (oneDNN's
 * per-image results do not depend on the batch they run in). */
DD_INTERNAL dd_status dd_model_forward_pieces(dd_model *m, const float *theta, const float *x,
                                              int64_t batch, int64_t piece, float *logits);

/** Hash of the piecewise-linear pattern of the last forward pass at this
 * batch size: relu signs and max-pool argmax positions. Two points with the
 * same pattern lie on one smooth piece, so finite differences between them
 * are valid (tests use it to avoid stepping over kinks). 0 if no workspace. */
DD_INTERNAL uint64_t dd_model_pattern_hash(const dd_model *m, int64_t batch);

/** DD_ERR_INVALID unless exactly one label kind is given and hard labels are
 * in [0, K). */
DD_INTERNAL dd_status dd_loss_check_labels(int64_t batch, int K, dd_labels y);
/** Loss (mean over the batch) of logits z[B×K]; dz = ∂ℓ/∂z (optional);
 * probs (B×K, cross-entropy only) keeps the softmax for dd_loss_tangent. */
DD_INTERNAL dd_status dd_loss_forward(dd_loss_kind kind, int64_t batch, int K, const float *z,
                                      dd_labels y, double *loss, float *dz, float *probs);
/** Tangent along ż of dz (dzd) and of ∇_y ℓ (mixed_y, optional). */
DD_INTERNAL void dd_loss_tangent(dd_loss_kind kind, int64_t batch, int K, dd_labels y,
                                 const float *probs, const float *zd, float *dzd, float *mixed_y);

#endif
