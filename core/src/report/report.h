/* distill (internal) — the run directory's outputs: distilled.png (one row
 * per class, one column per step), lrs.csv, metrics.json, report.md, and the
 * distilled set exported as IDX files + distilled.json (docs/output.md). */
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
    const dd_distilled *set; /**< the distilled set (with its learned step sizes) */
    const dd_distill_config *distill;
    const dd_distill_stats *stats;
    const dd_eval_report *eval;
    int png; /**< write distilled.png */
    int png_scale;
    int threads; /**< threads the run used (reported) */
} dd_report_info;

/** Writes metrics.json and report.md (and, with a set: distilled.png,
 * lrs.csv and the export) into r->out_dir. Each file is written to a
 * temporary name and renamed. */
DD_INTERNAL dd_status dd_report_write(const dd_report_info *r);

/** The image grid alone: rows = classes, columns = steps × images_per_class. */
DD_INTERNAL dd_status dd_report_png(const dd_distilled *set, const char *path, int scale);

/** Peak resident memory of this process in MiB (0 if unknown). */
DD_INTERNAL double dd_peak_memory_mib(void);

#endif
