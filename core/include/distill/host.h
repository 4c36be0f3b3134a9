/* distill — the host API: what a program that embeds libdistill calls (the
 * `distill` command is one such program). Load the plugins, load and
 * validate a pipeline, run it, evaluate an existing distilled set; fetch and
 * list datasets; describe parameter specs; build and run a model outside a
 * pipeline. Plugins need none of this: their API is the other headers of
 * distill/. */
#ifndef DISTILL_HOST_H
#define DISTILL_HOST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "distill/export.h"
#include "distill/model.h"
#include "distill/param.h"
#include "distill/plugin.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Plugins ------------------------------------------------------------ */

/** The set of loaded plugins (a registry). */
typedef struct dd_registry dd_registry;

/** Loads every *.so in the search path: DISTILL_PLUGIN_PATH (colon-separated),
 * then the build tree's plugin dir, then the install prefix's. A plugin whose
 * name is already loaded from an earlier directory is skipped (logged). A
 * broken plugin makes the call fail with its path and the reason, unless
 * `lenient` is set, in which case it is skipped with a warning.
 * Caller owns *out (dd_registry_destroy). */
DD_API dd_status dd_registry_load(int lenient, dd_registry **out);
/** Empty registry; add files with dd_registry_add_file. */
DD_API dd_status dd_registry_create(dd_registry **out);
/** dlopen(RTLD_NOW|RTLD_LOCAL) one file and validate it. */
DD_API dd_status dd_registry_add_file(dd_registry *r, const char *path);
DD_API void dd_registry_destroy(dd_registry *r);

/** Finds a component; DD_ERR_NOT_FOUND lists the names of that kind. */
DD_API dd_status dd_registry_find(const dd_registry *r, dd_component_kind kind, const char *name,
                                  const dd_component **out);
DD_API size_t dd_registry_plugin_count(const dd_registry *r);
DD_API const dd_plugin_descriptor *dd_registry_plugin(const dd_registry *r, size_t i);
DD_API const char *dd_registry_plugin_path(const dd_registry *r, size_t i);

/** Plugins refused by a lenient dd_registry_load: their paths and reasons. */
DD_API size_t dd_registry_refused_count(const dd_registry *r);
DD_API const char *dd_registry_refused_path(const dd_registry *r, size_t i);
DD_API const char *dd_registry_refused_reason(const dd_registry *r, size_t i);

/** The directories dd_registry_load searches, in order: each entry of
 * DISTILL_PLUGIN_PATH, then the build tree's plugin dir (only when this
 * libdistill is the build tree's) or <libdir>/distill/plugins next to the
 * installed libdistill, then the configured install prefix's plugin dir.
 * *dirs is a malloc'ed array of malloc'ed strings (caller frees each). */
DD_API dd_status dd_registry_plugin_dirs(char ***dirs, size_t *n);

/* ---- Parameter specs ---------------------------------------------------- */

/** "bool", "int", "float", "string", "enum", "list", or "path" for paths. */
DD_API const char *dd_param_type_str(const dd_param_spec *p);
/** Human-readable range / choices of a parameter into buf ("" if none). */
DD_API void dd_param_range_str(const dd_param_spec *p, char *buf, size_t n);

/** Spec of the pipeline's top-level scalar keys (name, description, seed,
 * stages). */
DD_API const dd_param_spec *dd_pipeline_top_spec(void);
/** Spec of a stage section ("pretrain", "distill", "evaluate", "report"),
 * NULL for anything else. */
DD_API const dd_param_spec *dd_section_spec(const char *section);
/** Core keys of a component section (dataset: plugin, name, path, ...). */
DD_API const dd_param_spec *dd_section_core_spec(dd_component_kind kind);
/** "dataset", "model", "objective". */
DD_API const char *dd_section_name(dd_component_kind kind);

/* ---- Pipelines ---------------------------------------------------------- */

typedef struct dd_pipeline dd_pipeline;

/** Loads and validates `path`. `overrides` is a NULL-terminated array of
 * "a.b.c=value" strings (--set; may be NULL) applied over the file's values.
 * Every key is checked against the section's spec (for dataset/model/
 * objective: the core keys merged with the selected plugin's spec), errors
 * carry file:line:col (or the --set argument). `reg` must outlive the
 * pipeline. Caller owns *out (dd_pipeline_destroy). */
DD_API dd_status dd_pipeline_load(const char *path, const char *const *overrides,
                                  const dd_registry *reg, dd_pipeline **out);
DD_API void dd_pipeline_destroy(dd_pipeline *p);

/** The path as given, and the absolute directory holding the file. */
DD_API const char *dd_pipeline_path(const dd_pipeline *p);
DD_API const char *dd_pipeline_dir(const dd_pipeline *p);
DD_API const char *dd_pipeline_name(const dd_pipeline *p);
/** "" if none. */
DD_API const char *dd_pipeline_description(const dd_pipeline *p);
DD_API uint64_t dd_pipeline_seed(const dd_pipeline *p);

/** One-line summary ("quickstart: dataset mnist/fashion-mnist, ..."). */
DD_API void dd_pipeline_summary(const dd_pipeline *p, char *buf, size_t n);

/* ---- Running a pipeline ------------------------------------------------- */

/** How to run (all optional; zero-initialise and set struct_size). */
/* ---- processes: one, or the ranks of an MPI job ------------------------ */

/** Joins the MPI job when the program was started by mpirun and the
 * library was built with MPI (else a no-op: one process, rank 0 of 1). Call
 * before anything else; see docs/scale.md. */
DD_API dd_status dd_process_init(int *argc, char ***argv);
/** Leaves the MPI job (no-op without one). */
DD_API void dd_process_finalize(void);
/** Ends the whole job (every rank) with exit status `code`; exit(code)
 * without MPI. For a rank that failed: the others never wait for it. */
DD_API void dd_process_abort(int code) __attribute__((noreturn));
/** This process's rank and the job's rank count (0 and 1 without MPI). */
DD_API int dd_process_rank(void);
DD_API int dd_process_count(void);

typedef struct dd_run_options {
    size_t struct_size;
    const char *out_dir;   /**< NULL: runs/<name>-<YYYYmmdd-HHMMSS> in the current directory */
    int resume;            /**< continue the run in out_dir (which must exist) */
    int offline;           /**< never download: use the cache or dataset.path only */
    const char *cache_dir; /**< overrides dataset.cache_dir */
    /** Cancel flag owned by the caller, which sets it (e.g. from a SIGINT
     * handler); the library only reads it. NULL = never cancelled. Non-zero
     * at an iteration boundary of the distill stage: the engine writes its
     * checkpoint and the run fails with DD_ERR_INTERRUPTED. */
    const volatile sig_atomic_t *cancel;
    /** (optional) Called with watching = 1 when the run starts honouring
     * *cancel (the distill stage) and with 0 when it stops, so that a caller
     * can route signals to the flag only while something reads it. */
    void (*cancel_watch)(int watching, void *user);
    void *cancel_user; /**< passed to cancel_watch */
} dd_run_options;

/** Runs every stage of `p`. Writes <out>/config.yaml (the resolved pipeline)
 * first. On failure the error message names the stage. */
DD_API dd_status dd_run_pipeline(const dd_registry *reg, const dd_pipeline *p,
                                 const dd_run_options *ro);

/** `distill evaluate`: evaluates an existing distilled set without
 * distilling again. `source` is a run directory (the set is its export,
 * distilled-images.idx..., or its distilled.npz when only that is there) or
 * an .npz in the distilled.npz layout (docs/output.md), written by distill or
 * by another tool. `pipeline` (may be NULL) is the pipeline to evaluate with;
 * NULL: the run directory's config.yaml (for an .npz: the config.yaml beside
 * it). `overrides` are --set strings as for dd_pipeline_load. The stages run
 * are fetch, load, pretrain (when the pipeline has it), evaluate and report;
 * distill.steps, epochs and images_per_class come from the set's shape. The
 * output (metrics.json, report.md, config.yaml whose first comment line names
 * what was evaluated, the set's export) goes to ro->out_dir, by default
 * <run dir>/evaluation or <npz dir>/<npz stem>-evaluation; it may replace an
 * earlier evaluation there but never the source's own files or another run.
 * Every error names the file (and for an .npz the array). ro may be NULL;
 * ro->resume is refused. */
DD_API dd_status dd_evaluate_source(const dd_registry *reg, const char *source,
                                    const char *pipeline, const char *const *overrides,
                                    const dd_run_options *ro);

/* ---- Datasets ----------------------------------------------------------- */

/** One line of `distill datasets`. */
typedef struct dd_dataset_status {
    char name[64];
    char description[160];
    int cached;              /**< all files present and verified/unpacked */
    uint64_t bytes;          /**< size of the cached files (0 if none) */
    uint64_t download_bytes; /**< declared download size (0 if unknown) */
} dd_dataset_status;

/** How to obtain one dataset. Every pointer may be NULL. Start from
 * dd_fetch_options_init(), which sets verify = 1: a zeroed struct has
 * verify = 0. The fields after `quiet` were appended for tuning and tests;
 * 0 selects their default. */
typedef struct dd_fetch_options {
    const char *cache_dir;            /**< NULL: $XDG_CACHE_HOME/distill or ~/.cache/distill */
    const char *manifest_dir;         /**< NULL: search the default manifest dirs */
    int offline;                      /**< use the cache only */
    const char *const *extra_mirrors; /**< NULL-terminated base URLs; tried before the manifest's */
    const char *local_path;           /**< a directory that already holds the files */
    int verify;                       /**< 1 (default) verify checksums; 0 skip (warned) for files
                                           from local_path or extra_mirrors only — files from the
                                           manifest's own mirrors are always verified */
    int quiet;                        /**< no progress bar */
    long connect_timeout_s;           /**< 0: 30 s */
    long low_speed_limit;             /**< bytes/s below which a transfer is "too slow"; 0: 1024 */
    long low_speed_time_s;            /**< seconds a transfer may stay too slow; 0: 60 */
    int retries;                      /**< extra attempts per mirror; 0: 3; negative: none */
    long backoff_ms;                  /**< wait before the first retry, doubled each time (capped
                                           at 60 s); 0: 1000 ms */
} dd_fetch_options;

/** Fills `o` with the defaults (all NULL/0 except verify = 1). */
DD_API void dd_fetch_options_init(dd_fetch_options *o);

/** Makes `dataset` (a manifest name, e.g. "fashion-mnist") available:
 * fetches missing files, verifies, unpacks once; returns in *root (caller
 * frees with free()) the directory the dataset reader should read.
 *
 * With local_path set nothing is downloaded: if local_path holds every file
 * in its final form (plain files, and .gz files already decompressed) that
 * directory itself is returned; otherwise archives found there are verified
 * and unpacked into the cache's dataset directory, which is returned.
 * Errors: DD_ERR_NOT_FOUND (no manifest, offline and not cached),
 * DD_ERR_NETWORK (every mirror failed; the message lists each URL and why),
 * DD_ERR_CHECKSUM, DD_ERR_ARCHIVE, DD_ERR_IO. */
DD_API dd_status dd_fetch_dataset(const char *dataset, const dd_fetch_options *opt, char **root);

/** Lists every manifest found, sorted by name (a manifest that does not
 * parse is skipped with a warning), with its state in the cache
 * (dd_dataset_status above). *out is malloc'ed (caller frees). */
DD_API dd_status dd_fetch_list(const dd_fetch_options *opt, dd_dataset_status **out, size_t *n);

/** The cache root the options select (opt->cache_dir, else
 * $XDG_CACHE_HOME/distill, else $HOME/.cache/distill). Caller frees *out. */
DD_API dd_status dd_fetch_cache_root(const dd_fetch_options *opt, char **out);

/* ---- The model runtime ------------------------------------------------- */

typedef struct dd_model_config {
    size_t struct_size;
    const dd_component *plugin;  /**< a DD_COMPONENT_MODEL component */
    const dd_options *options;   /**< that component's options (may be NULL: defaults) */
    int channels, height, width; /**< input shape */
    int n_outputs;               /**< classes (or regression outputs) */
    dd_backend backend;
} dd_model_config;

/** A built network with its per-batch-size workspaces. Not thread-safe: use
 * one dd_model per thread. θ is always a caller-owned flat vector of
 * dd_model_param_count floats; the model holds no parameters. */
typedef struct dd_model dd_model;

DD_API dd_status dd_model_create(const dd_model_config *cfg, dd_model **out);
DD_API void dd_model_destroy(dd_model *m);
DD_API size_t dd_model_param_count(const dd_model *m);
DD_API int dd_model_output_dim(const dd_model *m);
DD_API size_t dd_model_input_size(const dd_model *m); /**< floats per sample */
DD_API dd_loss_kind dd_model_loss(const dd_model *m);
/** Human-readable layer list (one per line), owned by the model. */
DD_API const char *dd_model_summary(const dd_model *m);

/** Init schemes: "xavier" (= xavier-normal), "xavier-uniform", "kaiming"
 * (= kaiming-normal, fan-in, ReLU gain), "kaiming-uniform"; weights scaled by
 * `gain`, biases zero, norm scales one. Deterministic in `seed`. */
DD_API dd_status dd_model_init_params(dd_model *m, float *theta, const char *scheme, float gain,
                                      uint64_t seed);

/** Forward only: logits (B × output_dim). */
DD_API dd_status dd_model_forward(dd_model *m, const float *theta, const float *x, int64_t batch,
                                  float *logits);

/** Loss (mean over the batch) and gradients. grad_theta, grad_x (B × input)
 * and logits are optional (NULL). */
DD_API dd_status dd_model_loss_grad(dd_model *m, const float *theta, const float *x, int64_t batch,
                                    dd_labels y, double *loss, float *grad_theta, float *grad_x,
                                    float *logits);

/** Forward, then backward from a caller-supplied ∂L/∂logits (for outer
 * losses defined by objectives). grad_theta and grad_x optional. */
DD_API dd_status dd_model_backward_from(dd_model *m, const float *theta, const float *x,
                                        int64_t batch, const float *dlogits, float *grad_theta,
                                        float *grad_x);

/** One forward-over-reverse pass with tangent v on θ. Writes (each optional):
 *   hv      = H v                 (∇²_θ ℓ · v)
 *   mixed_x = ∇_x ⟨∇_θ ℓ, v⟩      (B × input)
 *   mixed_y = ∇_y ⟨∇_θ ℓ, v⟩      (B × K, soft labels only)
 *   grad    = ∇_θ ℓ               (free by-product)
 *   loss    = ℓ */
DD_API dd_status dd_model_hvp(dd_model *m, const float *theta, const float *x, int64_t batch,
                              dd_labels y, const float *v, float *hv, float *mixed_x,
                              float *mixed_y, float *grad, double *loss);

/** Backward from a caller-supplied ∂L/∂logits, reusing the activations of
 * the dd_model_forward call made immediately before it on this model with
 * the same batch size (saves re-running the forward). Preconditions: no
 * other pass (forward, loss_grad, backward_from, hvp, at any batch size)
 * ran on the model in between; theta holds the same values as in that
 * forward; the x given to that forward is still alive and unchanged (the
 * model keeps a pointer to it). A violated ordering is detected and returns
 * DD_ERR_INVALID. May be called again with other dlogits while nothing else
 * runs. grad_theta and grad_x optional. */
DD_API dd_status dd_model_backward(dd_model *m, const float *theta, int64_t batch,
                                   const float *dlogits, float *grad_theta, float *grad_x);

#ifdef __cplusplus
}
#endif
#endif
