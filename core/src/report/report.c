/* distill — run outputs: the image grid, the export of the distilled set
 * (IDX files, lrs.csv, distilled.json), and dd_report_write, which writes
 * them with metrics.json (metrics.c) and report.md (markdown.c). */
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

dd_status dd_report_png(const dd_distilled *set, const char *path, int scale) {
    if (set->channels != 1 && set->channels != 3)
        return dd_error_set(DD_ERR_UNSUPPORTED, "%s: cannot draw %d-channel images", path,
                            set->channels);
    const size_t D = dd_distilled_image_size(set);
    const int K = set->n_classes, cols = set->steps * set->images_per_class;
    const int n = K * cols;
    float *grid = dd_alloc_floats((size_t)n * D);
    if (!grid) return dd_error_set(DD_ERR_NOMEM, "report: out of memory");
    // Row c, column (s, i): image j = i·K + c of step s.
    size_t t = 0;
    for (int c = 0; c < K; c++)
        for (int s = 0; s < set->steps; s++)
            for (int i = 0; i < set->images_per_class; i++, t++) {
                const size_t j = (size_t)i * (size_t)K + (size_t)c;
                memcpy(grid + t * D, set->images + ((size_t)s * (size_t)set->per_step + j) * D,
                       D * sizeof(float));
            }
    dd_status s = dd_image_grid_png(path, grid, n, set->channels, set->height, set->width,
                                    set->mean, set->std, K, cols, scale < 1 ? 1 : scale);
    dd_free(grid);
    return s;
}

/* ---- the entry point ---------------------------------------------------- */

dd_status dd_report_write(const dd_report_info *r) {
    if (!r->out_dir) return dd_error_set(DD_ERR_INVALID, "report: no output directory");
    if (r->set) {
        if (r->png) {
            char path[4096];
            snprintf(path, sizeof path, "%s/distilled.png", r->out_dir);
            dd_status s = dd_report_png(r->set, path, r->png_scale > 0 ? r->png_scale : 4);
            if (s == DD_ERR_UNSUPPORTED) {
                dd_warn("report: %s", dd_error_message());
                dd_error_clear();
            } else if (s != DD_OK) {
                return s;
            }
        }
        DD_TRY(dd_distilled_save(r->set, r->class_names, r->out_dir));
    }
    DD_TRY(dd_report_write_metrics(r));
    return dd_report_write_markdown(r);
}
