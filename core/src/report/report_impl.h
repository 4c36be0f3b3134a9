/* distill (internal to report/) — the writers dd_report_write calls, one
 * file each, and the atomic file they write through. */
#ifndef DD_REPORT_IMPL_H
#define DD_REPORT_IMPL_H

#include "base/fs.h"
#include "report/report.h"

/** Opens `dir`/`name` for an atomic write (base/fs.h: commit or abort). */
dd_status dd_report_open(dd_fs_atomic *a, const char *dir, const char *name);

/** metrics.json: every number of the run (metrics.c). */
dd_status dd_report_write_metrics(const dd_report_info *r);

/** report.md: the human-readable report (markdown.c). */
dd_status dd_report_write_markdown(const dd_report_info *r);

#endif
