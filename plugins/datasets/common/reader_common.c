/* distill — helpers shared by the dataset reader plugins (see reader_common.h). */
#define _POSIX_C_SOURCE 200809L
#include "reader_common.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "distill/image.h"

/* Reading more than this from one file means the input is not what we expect. */
#define RD_MAX_FILE ((size_t)4 << 30)

char *rd_strf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        dd_error_set(DD_ERR_INVALID, "bad format");
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        dd_error_set(DD_ERR_NOMEM, "out of memory");
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

int rd_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int rd_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int rd_safe_relpath(const char *rel) {
    if (!rel || !rel[0] || rel[0] == '/') return 0;
    for (const char *p = rel; *p; p++)
        if ((unsigned char)*p < 0x20) return 0;
    const char *p = rel;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return 0;
        if (!e) break;
        p = e + 1;
    }
    return 1;
}

static dd_status read_plain(const char *path, rd_buf *out) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return dd_error_set(errno == ENOENT ? DD_ERR_NOT_FOUND : DD_ERR_IO, "%s: %s", path,
                            strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return dd_error_set(DD_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > RD_MAX_FILE) {
        fclose(f);
        return dd_error_set(DD_ERR_PARSE, "%s: file too large (%lld bytes)", path,
                            (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size + 1);
    if (!data) {
        fclose(f);
        return dd_error_set(DD_ERR_NOMEM, "%s: out of memory for %zu bytes", path, size);
    }
    size_t got = fread(data, 1, size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != size) {
        free(data);
        return dd_error_set(DD_ERR_IO, "%s: read error (%zu of %zu bytes)", path, got, size);
    }
    data[size] = 0;
    out->data = data;
    out->len = size;
    return DD_OK;
}

static dd_status read_gz(const char *path, rd_buf *out) {
    gzFile g = gzopen(path, "rb");
    if (!g)
        return dd_error_set(errno == ENOENT ? DD_ERR_NOT_FOUND : DD_ERR_IO, "%s: %s", path,
                            errno ? strerror(errno) : "cannot open");
    size_t cap = (size_t)1 << 20, len = 0;
    uint8_t *data = malloc(cap + 1);
    if (!data) {
        gzclose(g);
        return dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (len == cap) {
            if (cap >= RD_MAX_FILE) {
                free(data);
                gzclose(g);
                return dd_error_set(DD_ERR_PARSE, "%s: decompresses to more than %zu bytes", path,
                                    RD_MAX_FILE);
            }
            uint8_t *nd = realloc(data, cap * 2 + 1);
            if (!nd) {
                free(data);
                gzclose(g);
                return dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
            }
            data = nd;
            cap *= 2;
        }
        size_t want = cap - len;
        if (want > INT_MAX) want = INT_MAX;
        int got = gzread(g, data + len, (unsigned)want);
        if (got < 0) {
            int code;
            const char *msg = gzerror(g, &code);
            dd_status st = dd_error_set(DD_ERR_PARSE, "%s: corrupt gzip data: %s", path, msg);
            free(data);
            gzclose(g);
            return st;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    // gzread reports a stream cut short only through gzerror (Z_BUF_ERROR).
    int code = Z_OK;
    const char *msg = gzerror(g, &code);
    if (code != Z_OK && code != Z_STREAM_END) {
        dd_status st =
            dd_error_set(DD_ERR_PARSE, "%s: corrupt or truncated gzip data: %s", path, msg);
        free(data);
        gzclose(g);
        return st;
    }
    gzclose(g);
    data[len] = 0;
    out->data = data;
    out->len = len;
    return DD_OK;
}

dd_status rd_read_file(const char *path, int allow_gz, rd_buf *out) {
    memset(out, 0, sizeof *out);
    size_t n = strlen(path);
    int is_gz = n > 3 && strcmp(path + n - 3, ".gz") == 0;
    const char *use = path;
    char *gz = NULL;
    if (!rd_exists(path) && allow_gz && !is_gz) {
        gz = rd_strf("%s.gz", path);
        if (!gz) return DD_ERR_NOMEM;
        if (!rd_exists(gz)) {
            free(gz);
            return dd_error_set(DD_ERR_NOT_FOUND, "%s: no such file (nor %s.gz)", path, path);
        }
        use = gz;
        is_gz = 1;
    }
    if (!rd_exists(use)) return dd_error_set(DD_ERR_NOT_FOUND, "%s: no such file", use);
    dd_status st = is_gz ? read_gz(use, out) : read_plain(use, out);
    if (st == DD_OK) {
        out->path = gz ? gz : rd_strf("%s", path);
        if (!out->path) {
            rd_buf_free(out);
            return DD_ERR_NOMEM;
        }
        return DD_OK;
    }
    free(gz);
    return st;
}

void rd_buf_free(rd_buf *b) {
    if (!b) return;
    free(b->data);
    free(b->path);
    memset(b, 0, sizeof *b);
}

dd_status rd_split_lines(rd_buf *b, rd_lines *out) {
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] == '\n') cap++;
    cap++;
    out->text = malloc(sizeof(char *) * cap);
    out->lineno = malloc(sizeof(int) * cap);
    if (!out->text || !out->lineno) {
        rd_lines_free(out);
        return dd_error_set(DD_ERR_NOMEM, "%s: out of memory", b->path);
    }
    char *p = (char *)b->data, *end = p + b->len;
    int line = 0;
    while (p < end) {
        line++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        if (memchr(p, '\0', (size_t)(e - p))) {
            rd_lines_free(out);
            return dd_error_set(DD_ERR_PARSE, "%s:%d: NUL byte in a text file", b->path, line);
        }
        *e = '\0';
        char *t = e;
        while (t > p && (t[-1] == '\r' || t[-1] == ' ' || t[-1] == '\t'))
            *--t = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p) {
            out->text[out->n] = p;
            out->lineno[out->n] = line;
            out->n++;
        }
        p = e + 1;
    }
    return DD_OK;
}

void rd_lines_free(rd_lines *l) {
    if (!l) return;
    free(l->text);
    free(l->lineno);
    memset(l, 0, sizeof *l);
}

int64_t rd_opt_int(const dd_options *o, const char *key, int64_t def) {
    return o && dd_options_has(o, key) ? dd_options_int(o, key) : def;
}

const char *rd_opt_str(const dd_options *o, const char *key, const char *def) {
    const char *v = o && dd_options_has(o, key) ? dd_options_string(o, key) : NULL;
    return v ? v : def;
}

dd_status rd_dataset_new(const char *dataset, const char *split, dd_dtype dtype, int64_t n,
                         int channels, int height, int width, int n_classes,
                         const char *const *class_names, const float *mean, const float *std,
                         dd_dataset **out) {
    *out = NULL;
    char *name = rd_strf("%s/%s", dataset, split);
    if (!name) return DD_ERR_NOMEM;
    dd_dataset *d = NULL;
    dd_status st = dd_dataset_create(name, dtype, n, channels, height, width, n_classes, &d);
    free(name);
    if (st != DD_OK) return st;
    for (int k = 0; k < n_classes && class_names; k++) {
        st = dd_dataset_set_class_name(d, k, class_names[k]);
        if (st != DD_OK) {
            dd_dataset_destroy(d);
            return st;
        }
    }
    for (int c = 0; c < channels && c < DD_MAX_CHANNELS; c++) {
        d->mean[c] = mean ? mean[c] : 0.0f;
        d->std[c] = std ? std[c] : 1.0f;
    }
    *out = d;
    return DD_OK;
}

dd_status rd_parallel_for(int64_t n, rd_item_fn fn, void *ctx) {
    int64_t first_bad = -1;
    dd_status bad_status = DD_OK;
    char bad_msg[2048];
    bad_msg[0] = '\0';
#pragma omp parallel for schedule(dynamic, 8)
    for (int64_t i = 0; i < n; i++) {
        int64_t fb;
#pragma omp atomic read
        fb = first_bad;
        if (fb >= 0 && fb < i) continue;
        dd_status st = fn(ctx, i);
        if (st != DD_OK) {
#pragma omp critical(rd_parallel_error)
            {
                if (first_bad < 0 || i < first_bad) {
                    first_bad = i;
                    bad_status = st;
                    snprintf(bad_msg, sizeof bad_msg, "%s", dd_error_message());
                }
            }
        }
    }
    if (first_bad >= 0) return dd_error_set(bad_status, "%s", bad_msg);
    return DD_OK;
}

dd_status rd_load_jpeg(const char *path, const int *crop, int expect_w, int expect_h, int out_w,
                       int out_h, uint8_t *dst) {
    uint8_t *px = NULL, *work = NULL, *cropped = NULL;
    int w = 0, h = 0;
    DD_TRY(dd_image_read_jpeg_file(path, &px, &w, &h));
    dd_status st = DD_OK;
    if ((expect_w > 0 && w != expect_w) || (expect_h > 0 && h != expect_h)) {
        st = dd_error_set(DD_ERR_PARSE, "%s: image is %dx%d but its annotation says %dx%d", path, w,
                          h, expect_w, expect_h);
        goto done;
    }
    const uint8_t *src = px;
    int sw = w, sh = h;
    if (crop) {
        int x0 = crop[0] < 0 ? 0 : crop[0], y0 = crop[1] < 0 ? 0 : crop[1];
        int64_t x1 = (int64_t)crop[0] + crop[2], y1 = (int64_t)crop[1] + crop[3];
        if (x1 > w) x1 = w;
        if (y1 > h) y1 = h;
        if (x1 <= x0 || y1 <= y0) {
            st = dd_error_set(DD_ERR_PARSE,
                              "%s: crop box %dx%d at (%d,%d) lies outside the %dx%d image", path,
                              crop[2], crop[3], crop[0], crop[1], w, h);
            goto done;
        }
        sw = (int)(x1 - x0);
        sh = (int)(y1 - y0);
        cropped = malloc((size_t)sw * sh * 3);
        if (!cropped) {
            st = dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        st = dd_image_crop_u8(px, w, h, 3, x0, y0, sw, sh, cropped);
        if (st != DD_OK) goto done;
        src = cropped;
    }
    if (sw != out_w || sh != out_h) {
        work = malloc((size_t)out_w * out_h * 3);
        if (!work) {
            st = dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        st = dd_image_resize_u8(src, sw, sh, 3, work, out_w, out_h);
        if (st != DD_OK) {
            dd_error_prefix("%s", path);
            goto done;
        }
        src = work;
    }
    rd_planar_u8(src, out_w, out_h, 3, dst);
done:
    free(px);
    free(cropped);
    free(work);
    return st;
}

void rd_planar_u8(const uint8_t *hwc, int width, int height, int channels, uint8_t *chw) {
    const size_t hw = (size_t)width * (size_t)height;
    for (int c = 0; c < channels; c++)
        for (size_t p = 0; p < hw; p++)
            chw[(size_t)c * hw + p] = hwc[p * (size_t)channels + (size_t)c];
}

void rd_target_size(const dd_dataset_request *req, int def, int *h, int *w) {
    int rh = req->height, rw = req->width;
    if (rh <= 0 && rw <= 0)
        rh = rw = def;
    else if (rh <= 0)
        rh = rw;
    else if (rw <= 0)
        rw = rh;
    *h = rh;
    *w = rw;
}
