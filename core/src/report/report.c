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
#include "base/json.h"
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

// The export below writes its files through out_open / out_close.
typedef struct out_file {
    FILE *f;
    dd_fs_atomic a;
} out_file;

static dd_status out_open(out_file *o, const char *dir, const char *name) {
    dd_status s = dd_report_open(&o->a, dir, name);
    o->f = o->a.f;
    return s;
}

static dd_status out_close(out_file *o) {
    o->f = NULL;
    return dd_fs_atomic_commit(&o->a);
}

// A string of distilled.json, escaped by the JSON writer. Its status needs
// no check: one string cannot misuse the structure, and a write error on
// the stream is caught when the file is committed.
static void json_str(FILE *f, const char *s) {
    dd_json w;
    dd_json_init_file(&w, f);
    dd_json_string(&w, s ? s : "");
}

/* ---- PNG grid ----------------------------------------------------------- */

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

/* ---- export ------------------------------------------------------------- */

static void be32(FILE *f, uint32_t v) {
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

static dd_status write_idx_f32(const char *dir, const char *name, const float *x, int ndim,
                               const uint32_t *dims) {
    out_file o;
    DD_TRY(out_open(&o, dir, name));
    unsigned char magic[4] = {0, 0, 0x0D, (unsigned char)ndim};
    fwrite(magic, 1, 4, o.f);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        be32(o.f, dims[i]);
        n *= dims[i];
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        be32(o.f, u);
    }
    return out_close(&o);
}

static dd_status write_lrs_csv(const dd_distilled *set, const char *dir) {
    out_file o;
    DD_TRY(out_open(&o, dir, "lrs.csv"));
    fprintf(o.f, "k,epoch,step,lr\n");
    for (int e = 0; e < set->epochs; e++)
        for (int s = 0; s < set->steps; s++) {
            int k = e * set->steps + s;
            fprintf(o.f, "%d,%d,%d,%.9g\n", k, e, s, (double)set->lrs[k]);
        }
    return out_close(&o);
}

dd_status dd_report_export(const dd_distilled *set, const char *const *class_names,
                           const char *out_dir) {
    const uint32_t N = (uint32_t)((int64_t)set->steps * set->per_step);
    uint32_t dims[4];
    int nd;
    if (set->channels == 1) {
        dims[0] = N, dims[1] = (uint32_t)set->height, dims[2] = (uint32_t)set->width, nd = 3;
    } else {
        dims[0] = N, dims[1] = (uint32_t)set->channels, dims[2] = (uint32_t)set->height;
        dims[3] = (uint32_t)set->width, nd = 4;
    }
    DD_TRY(write_idx_f32(out_dir, "distilled-images.idx", set->images, nd, dims));
    if (set->n_classes <= 256) {
        out_file o;
        DD_TRY(out_open(&o, out_dir, "distilled-labels.idx"));
        unsigned char magic[4] = {0, 0, 0x08, 1};
        fwrite(magic, 1, 4, o.f);
        be32(o.f, N);
        for (int s = 0; s < set->steps; s++)
            for (int64_t j = 0; j < set->per_step; j++)
                fputc((unsigned char)set->labels[j], o.f);
        DD_TRY(out_close(&o));
    }
    if (set->soft) {
        uint32_t sd[2] = {N, (uint32_t)set->n_outputs};
        DD_TRY(write_idx_f32(out_dir, "distilled-soft-labels.idx", set->soft, 2, sd));
    }
    DD_TRY(write_lrs_csv(set, out_dir));
    out_file o;
    DD_TRY(out_open(&o, out_dir, "distilled.json"));
    FILE *f = o.f;
    fprintf(f, "{\n  \"format\": \"distill-export-1\",\n");
    fprintf(f, "  \"steps\": %d,\n  \"epochs\": %d,\n  \"images_per_class\": %d,\n", set->steps,
            set->epochs, set->images_per_class);
    fprintf(f, "  \"n_classes\": %d,\n  \"images_per_step\": %lld,\n", set->n_classes,
            (long long)set->per_step);
    fprintf(f, "  \"channels\": %d,\n  \"height\": %d,\n  \"width\": %d,\n", set->channels,
            set->height, set->width);
    fprintf(f, "  \"class_names\": [");
    for (int c = 0; c < set->n_classes; c++) {
        if (c) fputs(", ", f);
        char num[16];
        snprintf(num, sizeof num, "%d", c);
        json_str(f, class_names ? class_names[c] : num);
    }
    fprintf(f, "],\n  \"normalization\": {\"mean\": [");
    for (int c = 0; c < set->channels; c++)
        fprintf(f, "%s%.9g", c ? ", " : "", (double)set->mean[c]);
    fprintf(f, "], \"std\": [");
    for (int c = 0; c < set->channels; c++)
        fprintf(f, "%s%.9g", c ? ", " : "", (double)set->std[c]);
    fprintf(f, "]},\n");
    fprintf(f, "  \"order\": \"image i belongs to step i / images_per_step; its label is "
               "(i %% images_per_step) %% n_classes\",\n");
    fprintf(f, "  \"values\": \"normalised: pixel / 255 = value * std[c] + mean[c]\",\n");
    fprintf(f,
            "  \"files\": {\"images\": \"distilled-images.idx\", \"labels\": "
            "\"distilled-labels.idx\", \"lrs\": \"lrs.csv\"%s},\n",
            set->soft ? ", \"soft_labels\": \"distilled-soft-labels.idx\"" : "");
    fprintf(f, "  \"lrs\": [");
    for (int k = 0; k < set->steps * set->epochs; k++)
        fprintf(f, "%s%.9g", k ? ", " : "", (double)set->lrs[k]);
    fprintf(f, "]\n}\n");
    return out_close(&o);
}

static uint32_t rd_be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

dd_status dd_report_import(const char *dir, dd_distilled **out) {
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/distilled-images.idx", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return dd_error_set(DD_ERR_NOT_FOUND, "%s: %s", path, strerror(errno));
    unsigned char hdr[4 + 16];
    dd_status s = DD_OK;
    uint32_t dims[4] = {0, 1, 1, 1};
    int nd = 0;
    if (fread(hdr, 1, 4, f) != 4 || hdr[0] || hdr[1] || hdr[2] != 0x0D || hdr[3] < 3 || hdr[3] > 4)
        s = dd_error_set(DD_ERR_PARSE, "%s: not a float32 IDX file of 3 or 4 dimensions", path);
    if (s == DD_OK) {
        nd = hdr[3];
        if (fread(hdr + 4, 4, (size_t)nd, f) != (size_t)nd)
            s = dd_error_set(DD_ERR_PARSE, "%s: truncated header", path);
        for (int i = 0; s == DD_OK && i < nd; i++)
            dims[i] = rd_be32(hdr + 4 + 4 * i);
    }
    int C = 1, H = 0, W = 0;
    if (s == DD_OK) {
        if (nd == 3)
            H = (int)dims[1], W = (int)dims[2];
        else
            C = (int)dims[1], H = (int)dims[2], W = (int)dims[3];
    }
    // Step sizes: lrs.csv gives epochs and steps.
    int steps = 0, epochs = 0, K = 0;
    float lrs_buf[4096];
    if (s == DD_OK) {
        char lp[4096];
        snprintf(lp, sizeof lp, "%s/lrs.csv", dir);
        FILE *lf = fopen(lp, "r");
        if (!lf) {
            s = dd_error_set(DD_ERR_NOT_FOUND, "%s: %s", lp, strerror(errno));
        } else {
            char line[256];
            int lineno = 0;
            while (s == DD_OK && fgets(line, sizeof line, lf)) {
                lineno++;
                if (lineno == 1) continue;
                int k, e, st;
                float lr;
                if (sscanf(line, "%d,%d,%d,%f", &k, &e, &st, &lr) != 4 || k != K || K >= 4096)
                    s = dd_error_set(DD_ERR_PARSE, "%s:%d: expected 'k,epoch,step,lr'", lp, lineno);
                else {
                    lrs_buf[K++] = lr;
                    if (st + 1 > steps) steps = st + 1;
                    if (e + 1 > epochs) epochs = e + 1;
                }
            }
            fclose(lf);
            if (s == DD_OK && (K == 0 || K != steps * epochs))
                s = dd_error_set(DD_ERR_PARSE, "%s: inconsistent steps/epochs", lp);
        }
    }
    // Labels give the class count (labels of one step are 0..K-1 repeated).
    int n_classes = 0;
    int32_t *lab = NULL;
    if (s == DD_OK) {
        char lp[4096];
        snprintf(lp, sizeof lp, "%s/distilled-labels.idx", dir);
        FILE *lf = fopen(lp, "rb");
        unsigned char lh[8];
        if (!lf)
            s = dd_error_set(DD_ERR_NOT_FOUND, "%s: %s", lp, strerror(errno));
        else if (fread(lh, 1, 8, lf) != 8 || lh[2] != 0x08 || lh[3] != 1 ||
                 rd_be32(lh + 4) != dims[0])
            s = dd_error_set(DD_ERR_PARSE, "%s: expected %u uint8 labels", lp, dims[0]);
        if (s == DD_OK && !(lab = malloc(dims[0] * sizeof *lab)))
            s = dd_error_set(DD_ERR_NOMEM, "import: out of memory");
        for (uint32_t i = 0; s == DD_OK && i < dims[0]; i++) {
            int ch = fgetc(lf);
            if (ch == EOF) s = dd_error_set(DD_ERR_PARSE, "%s: truncated", lp);
            lab[i] = ch;
            if (ch + 1 > n_classes) n_classes = ch + 1;
        }
        if (lf) fclose(lf);
    }
    dd_distilled *d = NULL;
    if (s == DD_OK) {
        if (dims[0] % (uint32_t)steps != 0 || (dims[0] / (uint32_t)steps) % (uint32_t)n_classes)
            s = dd_error_set(DD_ERR_PARSE, "%s: %u images do not split into %d steps of %d classes",
                             path, dims[0], steps, n_classes);
        else
            s = dd_distilled_create(steps, epochs, (int)(dims[0] / (uint32_t)steps) / n_classes,
                                    n_classes, C, H, W, 0.f, &d);
    }
    if (s == DD_OK) {
        for (int64_t j = 0; j < d->per_step; j++)
            if (lab[j] != d->labels[j])
                s = dd_error_set(DD_ERR_PARSE, "%s: label %lld is %d, expected %d", dir,
                                 (long long)j, lab[j], d->labels[j]);
        memcpy(d->lrs, lrs_buf, (size_t)K * sizeof(float));
        const size_t n = (size_t)dims[0] * C * H * W;
        unsigned char b[4];
        for (size_t i = 0; s == DD_OK && i < n; i++) {
            if (fread(b, 1, 4, f) != 4) {
                s = dd_error_set(DD_ERR_PARSE, "%s: truncated data", path);
                break;
            }
            uint32_t u = rd_be32(b);
            memcpy(&d->images[i], &u, 4);
        }
    }
    fclose(f);
    free(lab);
    if (s != DD_OK) {
        dd_distilled_destroy(d);
        return s;
    }
    *out = d;
    return DD_OK;
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
        DD_TRY(dd_report_export(r->set, r->class_names, r->out_dir));
    }
    DD_TRY(dd_report_write_metrics(r));
    return dd_report_write_markdown(r);
}
