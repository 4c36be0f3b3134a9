/* distill (internal to report/) — the writers dd_report_write calls, one
 * file each, and the atomic file they write through. */
#ifndef DD_REPORT_IMPL_H
#define DD_REPORT_IMPL_H

#include <stdio.h>

#include "base/fs.h"
#include "report/report.h"

/** Opens `dir`/`name` for an atomic write (base/fs.h: commit or abort). */
dd_status dd_report_open(dd_fs_atomic *a, const char *dir, const char *name);

/** metrics.json: every number of the run (metrics.c). */
dd_status dd_report_write_metrics(const dd_report_info *r);

/** report.md: the human-readable report (markdown.c). */
dd_status dd_report_write_markdown(const dd_report_info *r);

/** The figures (figures.c): distilled.png (labelled grid; with r->png),
 * curves.png and curves.csv (with histories), steps.png (with step curves)
 * and classes.png (per-class accuracy, see dd_report_draws_classes). A
 * figure without its data is not written. */
dd_status dd_report_write_figures(const dd_report_info *r);

/** 1 when classes.png is drawn: per-class accuracies measured, and a
 * pretrained init mode (poisoning, adaptation) or an objective with its own
 * report section. */
int dd_report_draws_classes(const dd_report_info *r);

/** report.md's "Figures" section: each PNG dd_report_write_figures writes
 * for `r`, embedded, with a one-line plain-text caption. Nothing when there
 * is none. */
void dd_report_markdown_figures(FILE *f, const dd_report_info *r);

#endif
