/* distill — run outputs: dd_report_write, which writes the export of the
 * distilled set (IDX files, lrs.csv, distilled.json), the figures
 * (figures.c), metrics.json (metrics.c) and report.md (markdown.c). */
#define _POSIX_C_SOURCE 200809L
#include "report/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "distill/image.h"
#include "distill/log.h"
#include "distill/distill.h"
#include "distill/tensor.h"
#include "base/strbuf.h"
#include "report/report_impl.h"

double dd_peak_memory_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
    return (double)ru.ru_maxrss / 1024.0; // Linux reports KiB
}

/* ---- atomic files (base/fs.h) ------------------------------------------- */

dd_status dd_report_open(dd_fs_atomic *a, const char *dir, const char *name) {
    dd_strbuf path = DD_STRBUF_INIT;
    dd_strbuf_printf(&path, "%s/%s", dir, name);
    dd_status s = dd_strbuf_status(&path);
    if (s == DD_OK) s = dd_fs_atomic_open(a, dd_strbuf_str(&path));
    dd_strbuf_free(&path);
    return s;
}

/* ---- the entry point ---------------------------------------------------- */

dd_status dd_report_write(const dd_report_info *r) {
    if (!r->out_dir) return dd_error_set(DD_ERR_INVALID, "report: no output directory");
    if (r->set) DD_TRY(dd_distilled_save(r->set, r->class_names, r->out_dir));
    DD_TRY(dd_report_write_figures(r));
    DD_TRY(dd_report_write_metrics(r));
    return dd_report_write_markdown(r);
}
