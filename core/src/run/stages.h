/* distill (internal) — the stages of `distill run` past fetch and load:
 * adapters from a loaded pipeline (dd_run) to the engine, evaluation and
 * report entry points, which take explicit arguments. */
#ifndef DD_RUN_STAGES_H
#define DD_RUN_STAGES_H

#include "base/export.h"

#include "distill/dataset.h"
#include "distill/plugin.h"
#include "distill/status.h"

struct dd_run;

/** What the distill/evaluate/report stages hand to each other (the model,
 * the objective, the distilled set...). Created by the first of them to
 * run; owned by dd_run. */
typedef struct dd_stage_state dd_stage_state;

/** fetch: downloads and verifies the dataset's files into the cache (or,
 * offline, finds them there or in dataset.path); sets run->data_root. */
DD_INTERNAL dd_status dd_stage_fetch(struct dd_run *run);
/** load: the dataset plugin reads run->data_root into run->train/test. */
DD_INTERNAL dd_status dd_stage_load(struct dd_run *run);
struct dd_dcache_info;
/** Reads a dataset with reader `c` as the load stage does: through the
 * decoded cache (data/dcache.h) under the pipeline's dataset.cache,
 * dataset.memory and dataset.mmap_threshold, keyed by c and req->options;
 * also for pretrain.source. info may be NULL. Caller owns *train, *test. */
DD_INTERNAL dd_status dd_stage_read_dataset(struct dd_run *run, const dd_component *c,
                                            const dd_dataset_request *req, dd_dataset **train,
                                            dd_dataset **test, struct dd_dcache_info *info);
/** pretrain: sets run->pool (the pool in the target model's layout; members
 * 0..n−holdout−1 for distillation). */
DD_INTERNAL dd_status dd_stage_pretrain(struct dd_run *run);
/** distill: learns the set (resuming from <out>/checkpoint.bin with
 * --resume), checkpointing every distill.checkpoint_every iterations and on
 * SIGINT/SIGTERM. */
DD_INTERNAL dd_status dd_stage_distill(struct dd_run *run);
/** evaluate: the distilled set (from this run, or the export found in the
 * output directory) against the baselines. */
DD_INTERNAL dd_status dd_stage_evaluate(struct dd_run *run);
/** report: distilled.png, lrs.csv, export, metrics.json, report.md. */
DD_INTERNAL dd_status dd_stage_report(struct dd_run *run);
DD_INTERNAL void dd_stage_state_destroy(dd_stage_state *st);

#endif
