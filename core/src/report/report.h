/* distill (internal) — the run directory's outputs: the figures
 * (distilled.png, curves.png + curves.csv, steps.png, classes.png), lrs.csv,
 * metrics.json, report.md, and the distilled set exported as IDX files +
 * distilled.json (docs/output.md). */
#ifndef DD_REPORT_H
#define DD_REPORT_H

#include "base/export.h"

#include "engine/engine.h"
#include "engine/evaluate.h"

/** What a report shows; every pointer except out_dir may be NULL. */
typedef struct dd_report_info {
    const char *out_dir;
    const char *run_name;
    const char *dataset, *model, *objective, *backend;
    const char *config_yaml; /**< the resolved pipeline, quoted in report.md */
    const char *const *class_names;
    int n_classes;           /**< entries of class_names (0: as many as the set's classes) */
    const dd_distilled *set; /**< the distilled set (with its learned step sizes) */
    const dd_distill_config *distill;
    const dd_distill_stats *stats;
    const dd_eval_report *eval;
    int png; /**< write distilled.png */
    int png_scale;
    int threads; /**< threads the run used (reported) */
    /** The distillation's per-iteration histories (curves.png, curves.csv;
     * borrowed, NULL or history_len 0: none). */
    int64_t history_len;          /**< iterations recorded */
    const double *loss_history;   /**< outer loss, history_len values */
    const double *metric_history; /**< first metric on the real batch, history_len values */
    const float *lr_history;      /**< history_len × lr_count step sizes (NULL: none) */
    int lr_count;                 /**< K = steps × epochs */
    const char *batch_metric;     /**< name of metric_history's metric (NULL: "accuracy") */
} dd_report_info;

/** Writes metrics.json and report.md, the figures the data allow (see
 * docs/output.md) and, with a set, lrs.csv and the export into r->out_dir.
 * Each file is written to a temporary name and renamed. */
DD_INTERNAL dd_status dd_report_write(const dd_report_info *r);

/** Peak resident memory of this process in MiB (0 if unknown). */
DD_INTERNAL double dd_peak_memory_mib(void);

#endif
