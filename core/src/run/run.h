/* distill (internal) — running a loaded pipeline: the output directory, the
 * resolved config, then each stage in order (fetch, load, pretrain, distill,
 * evaluate, report). */
#ifndef DD_RUN_H
#define DD_RUN_H

#include <signal.h>

#include "distill/dataset.h"
#include "distill/plugin.h"
#include "run/pipeline.h"

/** How to run (all optional; zero-initialise and set struct_size). */
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

/** State handed from stage to stage. Stages add what they produce. */
typedef struct dd_run {
    const dd_registry *reg;
    const dd_pipeline *p;
    const dd_run_options *ro;
    char *out_dir;     /**< created by dd_run_pipeline (owned) */
    char *data_root;   /**< directory the dataset reader reads (owned; set by fetch or load) */
    dd_dataset *train; /**< set by load (owned) */
    dd_dataset *test;  /**< set by load (owned) */
    struct dd_stage_state *engine; /**< distill/evaluate/report state (owned; engine_stages.h) */
    struct dd_netpool *pool; /**< pretrained pool, set by the pretrain stage (owned; pool.h) */
} dd_run;

/** Runs every stage of `p`. Writes <out>/config.yaml (the resolved pipeline)
 * first. On failure the error message names the stage. */
DD_API dd_status dd_run_pipeline(const dd_registry *reg, const dd_pipeline *p,
                                 const dd_run_options *ro);


#endif
