/* distill (internal) — running a loaded pipeline: the output directory, the
 * resolved config, then each stage in order (fetch, load, pretrain, distill,
 * evaluate, report). */
#ifndef DD_RUN_H
#define DD_RUN_H

#include <signal.h>

#include "distill/dataset.h"
#include "distill/plugin.h"
#include "base/export.h"
#include "distill/host.h"
#include "run/pipeline.h"

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
    const struct dd_run_source *source; /**< distill evaluate's set (borrowed; stage_source.h) */
} dd_run;

struct dd_run_source;
/** dd_run_pipeline, evaluating `src`'s set (`distill evaluate`; NULL: an
 * ordinary run). */
DD_INTERNAL dd_status dd_run_pipeline_source(const dd_registry *reg, const dd_pipeline *p,
                                             const dd_run_options *ro,
                                             const struct dd_run_source *src);

#endif
