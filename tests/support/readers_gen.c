/* distill tests — dataset generators and helpers for the reader tests (readers_gen.h). */
#define _GNU_SOURCE // vasprintf (and the X/Open functions: nftw)
#include "distill/host.h"
#include "readers_gen.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

#include "distill/image.h"
#include "distill/param.h"

/* ---- small utilities ---------------------------------------------------------- */

static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

dd_status rg_mkdtemp(const char *tag, char **out) {
    const char *tmp = getenv("TMPDIR");
    char *t = strf("%s/distill-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
    if (!t) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    if (!mkdtemp(t)) {
        dd_status st = dd_error_set(DD_ERR_IO, "%s: %s", t, strerror(errno));
        free(t);
        return st;
    }
    *out = t;
    return DD_OK;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void rg_rmtree(const char *path) {
    if (path) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

dd_status rg_mkdirs(const char *path) {
    char *p = strf("%s", path);
    if (!p) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            dd_status st = dd_error_set(DD_ERR_IO, "mkdir %s: %s", p, strerror(errno));
            free(p);
            return st;
        }
        *s = '/';
    }
    dd_status st = DD_OK;
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        st = dd_error_set(DD_ERR_IO, "mkdir %s: %s", p, strerror(errno));
    free(p);
    return st;
}

static dd_status mkparent(const char *path) {
    char *p = strf("%s", path);
    if (!p) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    char *slash = strrchr(p, '/');
    dd_status st = DD_OK;
    if (slash && slash != p) {
        *slash = '\0';
        st = rg_mkdirs(p);
    }
    free(p);
    return st;
}

dd_status rg_write_file(const char *path, const void *data, size_t len) {
    DD_TRY(mkparent(path));
    FILE *f = fopen(path, "wb");
    if (!f) return dd_error_set(DD_ERR_IO, "%s: %s", path, strerror(errno));
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    int bad = fclose(f) != 0 || w != len;
    return bad ? dd_error_set(DD_ERR_IO, "%s: write failed", path) : DD_OK;
}

dd_status rg_write_text(const char *path, const char *text) {
    return rg_write_file(path, text, strlen(text));
}

dd_status rg_read_file(const char *path, uint8_t **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return dd_error_set(DD_ERR_IO, "%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (!d) {
        fclose(f);
        return dd_error_set(DD_ERR_NOMEM, "out of memory");
    }
    size_t got = fread(d, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(d);
        return dd_error_set(DD_ERR_IO, "%s: short read", path);
    }
    d[n] = 0;
    *data = d;
    *len = (size_t)n;
    return DD_OK;
}

char *rg_read_text(const char *path) {
    uint8_t *d = NULL;
    size_t n = 0;
    if (rg_read_file(path, &d, &n) != DD_OK) {
        dd_error_clear();
        return NULL;
    }
    return (char *)d;
}

char *rg_strf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    if (!s) {
        fprintf(stderr, "rg_strf: out of memory\n");
        abort();
    }
    return s;
}

dd_status rg_gzip_file(const char *src, const char *dst) {
    uint8_t *d;
    size_t n;
    DD_TRY(rg_read_file(src, &d, &n));
    gzFile g = gzopen(dst, "wb6");
    if (!g) {
        free(d);
        return dd_error_set(DD_ERR_IO, "%s: gzopen failed", dst);
    }
    size_t off = 0;
    int ok = 1;
    while (off < n && ok) {
        unsigned chunk = n - off > (1u << 30) ? (1u << 30) : (unsigned)(n - off);
        int w = gzwrite(g, d + off, chunk);
        ok = w > 0;
        off += (size_t)(w > 0 ? w : 0);
    }
    ok = gzclose(g) == Z_OK && ok;
    free(d);
    return ok ? DD_OK : dd_error_set(DD_ERR_IO, "%s: gzip write failed", dst);
}

dd_status rg_truncate(const char *path, size_t len) {
    if (truncate(path, (off_t)len) != 0)
        return dd_error_set(DD_ERR_IO, "truncate %s: %s", path, strerror(errno));
    return DD_OK;
}

dd_status rg_patch(const char *path, size_t offset, const void *bytes, size_t n) {
    FILE *f = fopen(path, "r+b");
    if (!f) return dd_error_set(DD_ERR_IO, "%s: %s", path, strerror(errno));
    int ok = fseek(f, (long)offset, SEEK_SET) == 0 && fwrite(bytes, 1, n, f) == n;
    ok = fclose(f) == 0 && ok;
    return ok ? DD_OK : dd_error_set(DD_ERR_IO, "%s: patch failed", path);
}

dd_status rg_append(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "ab");
    if (!f) return dd_error_set(DD_ERR_IO, "%s: %s", path, strerror(errno));
    int ok = fwrite(bytes, 1, n, f) == n;
    ok = fclose(f) == 0 && ok;
    return ok ? DD_OK : dd_error_set(DD_ERR_IO, "%s: append failed", path);
}

dd_status rg_replace_text(const char *path, const char *from, const char *to) {
    uint8_t *d;
    size_t n;
    DD_TRY(rg_read_file(path, &d, &n));
    char *hit = strstr((char *)d, from);
    if (!hit) {
        free(d);
        return dd_error_set(DD_ERR_NOT_FOUND, "%s: '%s' not found", path, from);
    }
    size_t pre = (size_t)(hit - (char *)d), fl = strlen(from), tl = strlen(to);
    char *out = malloc(n - fl + tl + 1);
    if (!out) {
        free(d);
        return dd_error_set(DD_ERR_NOMEM, "out of memory");
    }
    memcpy(out, d, pre);
    memcpy(out + pre, to, tl);
    memcpy(out + pre + tl, hit + fl, n - pre - fl);
    dd_status st = rg_write_file(path, out, n - fl + tl);
    free(out);
    free(d);
    return st;
}

/* ---- tar packing ------------------------------------------------------------ */

static dd_status tar_dir_entry(struct archive *a, const char *rel) {
    struct archive_entry *e = archive_entry_new();
    if (!e) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    char *name = strf("%s/", rel);
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFDIR);
    archive_entry_set_perm(e, 0755);
    archive_entry_set_mtime(e, 1191283200, 0);
    int r = archive_write_header(a, e);
    archive_entry_free(e);
    free(name);
    if (r != ARCHIVE_OK)
        return dd_error_set(DD_ERR_ARCHIVE, "tar: %s: %s", rel, archive_error_string(a));
    return DD_OK;
}

dd_status rg_pack_tar(const char *archive, const char *base_dir, const char *const *files,
                      int gzip) {
    struct archive *a = archive_write_new();
    if (!a) return dd_error_set(DD_ERR_NOMEM, "archive_write_new failed");
    archive_write_set_format_ustar(a);
    if (gzip) archive_write_add_filter_gzip(a);
    if (archive_write_open_filename(a, archive) != ARCHIVE_OK) {
        dd_status st = dd_error_set(DD_ERR_ARCHIVE, "%s: %s", archive, archive_error_string(a));
        archive_write_free(a);
        return st;
    }
    dd_status st = DD_OK;
    // Directory entries already written (parents come before their files).
    char **dirs = NULL;
    size_t n_dirs = 0;
    for (size_t i = 0; files[i] && st == DD_OK; i++) {
        char *rel = strf("%s", files[i]);
        for (char *s = rel; s && *s && st == DD_OK; s++) {
            if (*s != '/') continue;
            *s = '\0';
            int seen = 0;
            for (size_t k = 0; k < n_dirs; k++)
                if (strcmp(dirs[k], rel) == 0) seen = 1;
            if (!seen) {
                char **nd = realloc(dirs, sizeof(char *) * (n_dirs + 1));
                if (nd) {
                    dirs = nd;
                    dirs[n_dirs++] = strf("%s", rel);
                }
                st = tar_dir_entry(a, rel);
            }
            *s = '/';
        }
        char *path = strf("%s/%s", base_dir, files[i]);
        uint8_t *data = NULL;
        size_t len = 0;
        if (st == DD_OK) st = rg_read_file(path, &data, &len);
        if (st == DD_OK) {
            struct archive_entry *e = archive_entry_new();
            archive_entry_set_pathname(e, files[i]);
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, (la_int64_t)len);
            archive_entry_set_mtime(e, 1191283200, 0);
            if (archive_write_header(a, e) != ARCHIVE_OK ||
                (len && archive_write_data(a, data, len) != (la_ssize_t)len))
                st = dd_error_set(DD_ERR_ARCHIVE, "%s: %s: %s", archive, files[i],
                                  archive_error_string(a));
            archive_entry_free(e);
        }
        free(data);
        free(path);
        free(rel);
    }
    for (size_t k = 0; k < n_dirs; k++)
        free(dirs[k]);
    free(dirs);
    if (archive_write_close(a) != ARCHIVE_OK && st == DD_OK)
        st = dd_error_set(DD_ERR_ARCHIVE, "%s: %s", archive, archive_error_string(a));
    archive_write_free(a);
    return st;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static dd_status list_rec(const char *base, const char *rel, char ***out, size_t *n, size_t *cap) {
    char *full = strf("%s/%s", base, rel);
    DIR *d = opendir(full);
    if (!d) {
        dd_status st = dd_error_set(DD_ERR_IO, "%s: %s", full, strerror(errno));
        free(full);
        return st;
    }
    dd_status st = DD_OK;
    struct dirent *e;
    while (st == DD_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *r = strf("%s/%s", rel, e->d_name);
        char *p = strf("%s/%s", base, r);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            st = list_rec(base, r, out, n, cap);
            free(r);
        } else {
            if (*n + 2 > *cap) {
                *cap = *cap ? *cap * 2 : 64;
                *out = realloc(*out, sizeof(char *) * *cap);
            }
            (*out)[(*n)++] = r;
        }
        free(p);
    }
    closedir(d);
    free(full);
    return st;
}

dd_status rg_list_files(const char *base_dir, const char *sub, char ***out) {
    char **list = NULL;
    size_t n = 0, cap = 0;
    dd_status st = list_rec(base_dir, sub, &list, &n, &cap);
    if (st != DD_OK) {
        for (size_t i = 0; i < n; i++)
            free(list[i]);
        free(list);
        return st;
    }
    if (!list) list = malloc(sizeof(char *));
    qsort(list, n, sizeof(char *), cmp_str);
    list[n] = NULL;
    *out = list;
    return DD_OK;
}

void rg_free_list(char **list) {
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

/* ---- MNIST ---------------------------------------------------------------- */

uint8_t rg_mnist_pixel(int split, int64_t i, int p) {
    return (uint8_t)((i * 37 + p * 11 + split * 101) & 0xFF);
}

uint8_t rg_mnist_label(int split, int64_t i) {
    return (uint8_t)((i * 7 + split * 3) % 10);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static dd_status write_maybe_gz(const char *path, const uint8_t *data, size_t len, int gz) {
    DD_TRY(rg_write_file(path, data, len));
    if (!gz) return DD_OK;
    char *g = strf("%s.gz", path);
    dd_status st = rg_gzip_file(path, g);
    free(g);
    remove(path);
    return st;
}

dd_status rg_write_mnist(const char *dir, int n_train, int n_test, int rows, int cols, int gz) {
    DD_TRY(rg_mkdirs(dir));
    const char *prefix[2] = {"train", "t10k"};
    int counts[2] = {n_train, n_test};
    for (int s = 0; s < 2; s++) {
        size_t n = (size_t)counts[s], px = (size_t)rows * cols;
        uint8_t *img = malloc(16 + n * px), *lab = malloc(8 + n);
        if (!img || !lab) {
            free(img);
            free(lab);
            return dd_error_set(DD_ERR_NOMEM, "out of memory");
        }
        put_be32(img, 0x00000803);
        put_be32(img + 4, (uint32_t)n);
        put_be32(img + 8, (uint32_t)rows);
        put_be32(img + 12, (uint32_t)cols);
        put_be32(lab, 0x00000801);
        put_be32(lab + 4, (uint32_t)n);
        for (size_t i = 0; i < n; i++) {
            for (size_t p = 0; p < px; p++)
                img[16 + i * px + p] = rg_mnist_pixel(s, (int64_t)i, (int)p);
            lab[8 + i] = rg_mnist_label(s, (int64_t)i);
        }
        char *ip = strf("%s/%s-images-idx3-ubyte", dir, prefix[s]);
        char *lp = strf("%s/%s-labels-idx1-ubyte", dir, prefix[s]);
        dd_status st = write_maybe_gz(ip, img, 16 + n * px, gz);
        if (st == DD_OK) st = write_maybe_gz(lp, lab, 8 + n, gz);
        free(ip);
        free(lp);
        free(img);
        free(lab);
        DD_TRY(st);
    }
    return DD_OK;
}

/* ---- CIFAR-10 ------------------------------------------------------------------ */

const char *const rg_cifar_classes[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                          "dog",      "frog",       "horse", "ship", "truck"};

uint8_t rg_cifar_pixel(int f, int r, int b) {
    return (uint8_t)((f * 53 + r * 29 + b * 3) & 0xFF);
}

uint8_t rg_cifar_label(int f, int r) {
    return (uint8_t)((f + r * 3) % 10);
}

dd_status rg_write_cifar10(const char *dir, int per_batch, int n_test) {
    char *sub = strf("%s/cifar-10-batches-bin", dir);
    dd_status st = rg_mkdirs(sub);
    for (int f = 0; f < 6 && st == DD_OK; f++) {
        int n = f < 5 ? per_batch : n_test;
        uint8_t *d = malloc((size_t)n * RG_CIFAR_RECORD + 1);
        if (!d) {
            st = dd_error_set(DD_ERR_NOMEM, "out of memory");
            break;
        }
        for (int r = 0; r < n; r++) {
            uint8_t *rec = d + (size_t)r * RG_CIFAR_RECORD;
            rec[0] = rg_cifar_label(f, r);
            for (int b = 0; b < 3072; b++)
                rec[1 + b] = rg_cifar_pixel(f, r, b);
        }
        char *p = f < 5 ? strf("%s/data_batch_%d.bin", sub, f + 1) : strf("%s/test_batch.bin", sub);
        st = rg_write_file(p, d, (size_t)n * RG_CIFAR_RECORD);
        free(p);
        free(d);
    }
    if (st == DD_OK) {
        char meta[256] = "";
        for (int k = 0; k < 10; k++) {
            strcat(meta, rg_cifar_classes[k]);
            strcat(meta, "\n");
        }
        strcat(meta, "\n"); // upstream ends with a blank line
        char *p = strf("%s/batches.meta.txt", sub);
        st = rg_write_text(p, meta);
        free(p);
    }
    free(sub);
    return st;
}

/* ---- PASCAL VOC ------------------------------------------------------------------ */

static const char *const voc_names[20] = {
    "aeroplane", "bicycle",     "bird",  "boat",        "bottle", "bus",      "car",
    "cat",       "chair",       "cow",   "diningtable", "dog",    "horse",    "motorbike",
    "person",    "pottedplant", "sheep", "sofa",        "train",  "tvmonitor"};

int rg_voc_class_index(const char *name) {
    for (int k = 0; k < 20; k++)
        if (strcmp(name, voc_names[k]) == 0) return k;
    return -1;
}

static const rg_voc_image voc_fixture[] = {
    // trainval: cat is the largest object
    {"000001",
     48,
     40,
     0,
     2,
     {{"dog", 2, 2, 20, 18, 0}, {"cat", 10, 8, 45, 38, 0}},
     {20, 40, 200},
     {230, 200, 30}},
    // the largest (person, with a <part>) is difficult: bicycle wins
    {"000002",
     40,
     32,
     0,
     2,
     {{"person", 1, 1, 40, 32, 1}, {"bicycle", 5, 5, 20, 20, 0}},
     {200, 30, 30},
     {30, 200, 60}},
    // every object difficult: the largest of all (bus)
    {"000003",
     32,
     32,
     0,
     2,
     {{"car", 1, 1, 10, 10, 1}, {"bus", 3, 3, 30, 30, 1}},
     {90, 90, 90},
     {250, 250, 250}},
    // a tie: the first object (sheep)
    {"000005",
     36,
     36,
     0,
     2,
     {{"sheep", 1, 1, 10, 10, 0}, {"cow", 20, 20, 29, 29, 0}},
     {10, 120, 10},
     {240, 240, 20}},
    // test split
    {"000004", 44, 36, 1, 1, {{"aeroplane", 6, 5, 38, 30, 0}}, {30, 30, 160}, {220, 220, 220}},
    {"000006",
     40,
     40,
     1,
     2,
     {{"tvmonitor", 2, 2, 12, 12, 0}, {"chair", 15, 10, 38, 39, 0}},
     {160, 100, 40},
     {20, 20, 20}},
    {"000008",
     30,
     50,
     1,
     2,
     {{"person", 3, 3, 28, 46, 0}, {"horse", 1, 30, 10, 50, 0}},
     {0, 80, 160},
     {250, 120, 0}},
};

const rg_voc_image *rg_voc_fixture(int *n) {
    *n = (int)(sizeof voc_fixture / sizeof voc_fixture[0]);
    return voc_fixture;
}

int rg_voc_expected_object(const rg_voc_image *im) {
    int best[2] = {-1, -1};
    long area[2] = {-1, -1};
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < im->n_objects; k++) {
            const rg_voc_object *o = &im->objects[k];
            if (pass == 0 && o->difficult) continue;
            long a = (long)(o->xmax - o->xmin + 1) * (o->ymax - o->ymin + 1);
            if (a > area[pass]) {
                area[pass] = a;
                best[pass] = k;
            }
        }
    return best[0] >= 0 ? best[0] : best[1];
}

static char *voc_xml(const rg_voc_image *im) {
    size_t cap = 4096;
    char *x = malloc(cap);
    if (!x) return NULL;
    int n = snprintf(x, cap,
                     "<annotation>\n\t<folder>VOC2007</folder>\n\t<filename>%s.jpg</filename>\n"
                     "\t<source>\n\t\t<database>The VOC2007 Database</database>\n"
                     "\t\t<annotation>PASCAL VOC2007</annotation>\n\t</source>\n"
                     "\t<size>\n\t\t<width>%d</width>\n\t\t<height>%d</height>\n"
                     "\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n",
                     im->id, im->width, im->height);
    for (int k = 0; k < im->n_objects; k++) {
        const rg_voc_object *o = &im->objects[k];
        n += snprintf(x + n, cap - (size_t)n,
                      "\t<object>\n\t\t<name>%s</name>\n\t\t<pose>Unspecified</pose>\n"
                      "\t\t<truncated>0</truncated>\n\t\t<difficult>%d</difficult>\n"
                      "\t\t<bndbox>\n\t\t\t<xmin>%d</xmin>\n\t\t\t<ymin>%d</ymin>\n"
                      "\t\t\t<xmax>%d</xmax>\n\t\t\t<ymax>%d</ymax>\n\t\t</bndbox>\n",
                      o->name, o->difficult, o->xmin, o->ymin, o->xmax, o->ymax);
        if (strcmp(o->name, "person") == 0) // person layout parts carry their own <name>/<bndbox>
            n += snprintf(x + n, cap - (size_t)n,
                          "\t\t<part>\n\t\t\t<name>head</name>\n\t\t\t<bndbox>\n"
                          "\t\t\t\t<xmin>%d</xmin>\n\t\t\t\t<ymin>%d</ymin>\n"
                          "\t\t\t\t<xmax>%d</xmax>\n\t\t\t\t<ymax>%d</ymax>\n"
                          "\t\t\t</bndbox>\n\t\t</part>\n",
                          o->xmin, o->ymin, o->xmin + 2, o->ymin + 2);
        n += snprintf(x + n, cap - (size_t)n, "\t</object>\n");
    }
    snprintf(x + n, cap - (size_t)n, "</annotation>\n");
    return x;
}

dd_status rg_write_voc(const char *dir, const rg_voc_image *images, int n) {
    char *base = strf("%s/VOCdevkit/VOC2007", dir);
    dd_status st = DD_OK;
    size_t lcap = (size_t)n * 16 + 1;
    char *lists[2] = {calloc(lcap, 1), calloc(lcap, 1)};
    for (int i = 0; i < n && st == DD_OK; i++) {
        const rg_voc_image *im = &images[i];
        size_t npx = (size_t)im->width * im->height;
        uint8_t *px = malloc(npx * 3);
        for (size_t p = 0; p < npx; p++)
            memcpy(px + 3 * p, im->bg, 3);
        for (int k = 0; k < im->n_objects; k++) {
            const rg_voc_object *o = &im->objects[k];
            for (int y = o->ymin - 1; y < o->ymax; y++)
                for (int x = o->xmin - 1; x < o->xmax; x++)
                    memcpy(px + 3 * ((size_t)y * im->width + x), im->fg, 3);
        }
        char *jp = strf("%s/JPEGImages/%s.jpg", base, im->id);
        st = mkparent(jp);
        if (st == DD_OK) st = dd_image_write_jpeg_file(jp, px, im->width, im->height, 3, 95);
        free(jp);
        free(px);
        char *xp = strf("%s/Annotations/%s.xml", base, im->id);
        char *xml = voc_xml(im);
        if (st == DD_OK) st = rg_write_text(xp, xml);
        free(xml);
        free(xp);
        strcat(lists[im->test], im->id);
        strcat(lists[im->test], "\n");
    }
    const char *names[2] = {"trainval", "test"};
    for (int s = 0; s < 2 && st == DD_OK; s++) {
        char *p = strf("%s/ImageSets/Main/%s.txt", base, names[s]);
        st = rg_write_text(p, lists[s]);
        free(p);
    }
    free(lists[0]);
    free(lists[1]);
    free(base);
    return st;
}

dd_status rg_pack_voc(const char *dir, const rg_voc_image *images, int n, const char *out_dir) {
    const char *archives[2] = {"VOCtrainval_06-Nov-2007.tar", "VOCtest_06-Nov-2007.tar"};
    const char *lists[2] = {"trainval", "test"};
    dd_status st = rg_mkdirs(out_dir);
    for (int s = 0; s < 2 && st == DD_OK; s++) {
        const char **files = calloc((size_t)n * 2 + 2, sizeof(char *));
        size_t k = 0;
        files[k++] = strf("VOCdevkit/VOC2007/ImageSets/Main/%s.txt", lists[s]);
        for (int i = 0; i < n; i++) {
            if (images[i].test != s) continue;
            files[k++] = strf("VOCdevkit/VOC2007/Annotations/%s.xml", images[i].id);
            files[k++] = strf("VOCdevkit/VOC2007/JPEGImages/%s.jpg", images[i].id);
        }
        char *arch = strf("%s/%s", out_dir, archives[s]);
        st = rg_pack_tar(arch, dir, files, 0);
        free(arch);
        for (size_t i = 0; i < k; i++)
            free((char *)files[i]);
        free(files);
    }
    return st;
}

/* ---- CUB-200-2011 --------------------------------------------------------------- */

void rg_cub_class_dir(int k, char *out, size_t cap) {
    snprintf(out, cap, "%03d.Class_%d", k + 1, k + 1);
}

void rg_cub_info(int n_classes, int per_class, int i, rg_cub_image *out) {
    (void)n_classes;
    memset(out, 0, sizeof *out);
    out->id = i + 1;
    out->label = i / per_class;
    out->is_train = (i % per_class) % 2 == 0;
    out->width = 40 + 8 * (i % 3);
    out->height = 32 + 4 * (i % 2);
    out->box[0] = 4 + i % 5;
    out->box[1] = 3 + i % 4;
    out->box[2] = out->width / 2;
    out->box[3] = out->height / 2;
    out->bg[0] = (uint8_t)(30 + 40 * (out->label % 5));
    out->bg[1] = 60;
    out->bg[2] = (uint8_t)(200 - 30 * (out->label % 4));
    out->fg[0] = 250;
    out->fg[1] = 250;
    out->fg[2] = 40;
    char cdir[64];
    rg_cub_class_dir(out->label, cdir, sizeof cdir);
    snprintf(out->rel, sizeof out->rel, "%s/Class_%d_%04d.jpg", cdir, out->label + 1, out->id);
}

dd_status rg_write_cub(const char *dir, int n_classes, int per_class) {
    char *base = strf("%s/CUB_200_2011", dir);
    dd_status st = rg_mkdirs(base);
    int n = n_classes * per_class;
    size_t cap = (size_t)n * 160 + (size_t)n_classes * 64 + 16;
    char *images = calloc(cap, 1), *labels = calloc(cap, 1), *split = calloc(cap, 1),
         *boxes = calloc(cap, 1), *classes = calloc(cap, 1);
    size_t li = 0, ll = 0, ls = 0, lb = 0, lc = 0;
    for (int k = 0; k < n_classes; k++) {
        char cdir[64];
        rg_cub_class_dir(k, cdir, sizeof cdir);
        lc += (size_t)snprintf(classes + lc, cap - lc, "%d %s\n", k + 1, cdir);
    }
    for (int i = 0; i < n && st == DD_OK; i++) {
        rg_cub_image im;
        rg_cub_info(n_classes, per_class, i, &im);
        size_t npx = (size_t)im.width * im.height;
        uint8_t *px = malloc(npx * 3);
        for (size_t p = 0; p < npx; p++)
            memcpy(px + 3 * p, im.bg, 3);
        for (int y = im.box[1]; y < im.box[1] + im.box[3]; y++)
            for (int x = im.box[0]; x < im.box[0] + im.box[2]; x++)
                memcpy(px + 3 * ((size_t)y * im.width + x), im.fg, 3);
        char *jp = strf("%s/images/%s", base, im.rel);
        st = mkparent(jp);
        if (st == DD_OK) st = dd_image_write_jpeg_file(jp, px, im.width, im.height, 3, 95);
        free(jp);
        free(px);
        li += (size_t)snprintf(images + li, cap - li, "%d %s\n", im.id, im.rel);
        ll += (size_t)snprintf(labels + ll, cap - ll, "%d %d\n", im.id, im.label + 1);
        ls += (size_t)snprintf(split + ls, cap - ls, "%d %d\n", im.id, im.is_train);
        lb += (size_t)snprintf(boxes + lb, cap - lb, "%d %d.0 %d.0 %d.0 %d.0\n", im.id, im.box[0],
                               im.box[1], im.box[2], im.box[3]);
    }
    const char *names[5] = {"images.txt", "image_class_labels.txt", "train_test_split.txt",
                            "bounding_boxes.txt", "classes.txt"};
    const char *texts[5] = {images, labels, split, boxes, classes};
    for (int f = 0; f < 5 && st == DD_OK; f++) {
        char *p = strf("%s/%s", base, names[f]);
        st = rg_write_text(p, texts[f]);
        free(p);
    }
    free(images);
    free(labels);
    free(split);
    free(boxes);
    free(classes);
    free(base);
    return st;
}

dd_status rg_pack_cub(const char *dir, const char *archive) {
    char **files = NULL;
    DD_TRY(rg_list_files(dir, "CUB_200_2011", &files));
    dd_status st = rg_pack_tar(archive, dir, (const char *const *)files, 1);
    rg_free_list(files);
    return st;
}

/* ---- USPS ------------------------------------------------------------------ */

uint8_t rg_usps_pixel(int split, int64_t i, int p) {
    return (uint8_t)((i * 41 + p * 7 + split * 97) & 0xFF);
}

uint8_t rg_usps_label(int split, int64_t i) {
    return (uint8_t)((i * 3 + split * 5) % 10);
}

dd_status rg_usps_line(int split, int64_t i, char *out, size_t cap) {
    size_t u = (size_t)snprintf(out, cap, "%d", rg_usps_label(split, i) + 1);
    for (int p = 0; p < 256 && u < cap; p++) {
        double v = 2.0 * rg_usps_pixel(split, i, p) / 255.0 - 1.0;
        u += (size_t)snprintf(out + u, cap - u, " %d:%.9g", p + 1, v);
    }
    if (u >= cap) return dd_error_set(DD_ERR_INVALID, "rg_usps_line: buffer too small");
    return DD_OK;
}

dd_status rg_bzip2_file(const char *src, const char *dst) {
    uint8_t *data;
    size_t len;
    DD_TRY(rg_read_file(src, &data, &len));
    struct archive *a = archive_write_new();
    if (!a) {
        free(data);
        return dd_error_set(DD_ERR_NOMEM, "archive_write_new failed");
    }
    dd_status st = DD_OK;
    struct archive_entry *e = archive_entry_new();
    if (!e || archive_write_add_filter_bzip2(a) != ARCHIVE_OK ||
        archive_write_set_format_raw(a) != ARCHIVE_OK ||
        archive_write_open_filename(a, dst) != ARCHIVE_OK) {
        st = dd_error_set(DD_ERR_ARCHIVE, "%s: %s", dst, archive_error_string(a));
    } else {
        archive_entry_set_pathname(e, "data");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, (la_int64_t)len);
        if (archive_write_header(a, e) != ARCHIVE_OK ||
            (len && archive_write_data(a, data, len) != (la_ssize_t)len) ||
            archive_write_close(a) != ARCHIVE_OK)
            st = dd_error_set(DD_ERR_ARCHIVE, "%s: %s", dst, archive_error_string(a));
    }
    archive_entry_free(e);
    archive_write_free(a);
    free(data);
    return st;
}

dd_status rg_write_usps(const char *dir, int n_train, int n_test, int bz2) {
    DD_TRY(rg_mkdirs(dir));
    const char *names[2] = {"usps", "usps.t"};
    int counts[2] = {n_train, n_test};
    enum { LINE = 256 * 20 + 16 };
    for (int s = 0; s < 2; s++) {
        size_t cap = (size_t)counts[s] * LINE + 1, u = 0;
        char *text = malloc(cap);
        if (!text) return dd_error_set(DD_ERR_NOMEM, "out of memory");
        text[0] = 0;
        dd_status st = DD_OK;
        for (int i = 0; i < counts[s] && st == DD_OK; i++) {
            st = rg_usps_line(s, i, text + u, cap - u - 1);
            u += strlen(text + u);
            text[u++] = '\n';
            text[u] = 0;
        }
        char *path = strf("%s/%s", dir, names[s]);
        if (st == DD_OK) st = rg_write_text(path, text);
        if (st == DD_OK && bz2) {
            char *b = strf("%s.bz2", path);
            st = rg_bzip2_file(path, b);
            free(b);
            remove(path);
        }
        free(path);
        free(text);
        DD_TRY(st);
    }
    return DD_OK;
}

/* ---- plugins --------------------------------------------------------------- */

dd_status rg_load_reader(const char *plugin, dd_registry **reg, const dd_component **comp) {
    *reg = NULL;
    const char *dir = getenv("DISTILL_PLUGIN_PATH");
    char *path;
    if (dir && *dir) {
        // The first entry of a colon-separated list is the build tree's.
        size_t len = strcspn(dir, ":");
        path = strf("%.*s/%s.so", (int)len, dir, plugin);
    } else {
        const char *bin = getenv("DISTILL_BINARY_DIR");
        path = strf("%s/plugins-out/%s.so", bin ? bin : ".", plugin);
    }
    dd_status st = dd_registry_create(reg);
    if (st == DD_OK) st = dd_registry_add_file(*reg, path);
    if (st == DD_OK) st = dd_registry_find(*reg, DD_COMPONENT_DATASET, plugin, comp);
    free(path);
    if (st != DD_OK) {
        dd_registry_destroy(*reg);
        *reg = NULL;
    }
    return st;
}

dd_status rg_read(const dd_component *comp, const char *dataset, const char *root,
                  const char *const *kv, int height, int width, dd_dataset **train,
                  dd_dataset **test) {
    *train = *test = NULL;
    dd_options *opts = NULL;
    DD_TRY(dd_options_from_strings(comp->params, kv, &opts));
    dd_dataset_request req = {sizeof req, dataset, root, opts, height, width};
    const dd_dataset_ops *ops = comp->ops;
    dd_status st = ops->load(&req, train, test);
    dd_options_destroy(opts);
    return st;
}

/* ---- test fixture ------------------------------------------------------------ */

rg_fixture *rg_fixture_open(const char *reader, const char *tag) {
    rg_fixture *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->reader = reader;
    if (rg_load_reader(reader, &f->reg, &f->comp) != DD_OK) {
        fprintf(stderr, "%s\n", dd_error_message());
        free(f);
        return NULL;
    }
    if (rg_mkdtemp(tag, &f->dir) != DD_OK) {
        rg_fixture_close(f);
        return NULL;
    }
    return f;
}

void rg_fixture_close(rg_fixture *f) {
    if (!f) return;
    if (f->dir) rg_rmtree(f->dir);
    free(f->dir);
    dd_registry_destroy(f->reg);
    free(f);
}

const char *rg_fixture_path(rg_fixture *f, const char *sub, const char *rel) {
    if (sub)
        snprintf(f->path, sizeof f->path, "%s/%s/%s", f->dir, sub, rel);
    else
        snprintf(f->path, sizeof f->path, "%s/%s", f->dir, rel);
    return f->path;
}

int rg_expect_read_error(rg_fixture *f, const char *dataset, const char *const *kv, int height,
                         int width, dd_status status, const char *a, const char *b) {
    dd_dataset *const unset = (dd_dataset *)1;
    dd_dataset *train = unset, *test = unset;
    dd_status st = rg_read(f->comp, dataset, f->dir, kv, height, width, &train, &test);
    const char *msg = dd_error_message();
    int ok = 1;
    if (st != status || !strstr(msg, a) || !strstr(msg, b)) {
        fprintf(stderr, "%s: expected status %d with '%s' and '%s', got %d: %s\n", f->reader,
                status, a, b, st, msg);
        ok = 0;
    }
    if (train || test) {
        fprintf(stderr, "%s: a split is not NULL after the error (train %p, test %p)\n", f->reader,
                (void *)train, (void *)test);
        ok = 0;
    }
    if (train && train != unset) dd_dataset_destroy(train);
    if (test && test != unset) dd_dataset_destroy(test);
    return ok ? 0 : -1;
}

const float *rg_image(const dd_dataset *d, int64_t i) {
    static float *buf;
    static size_t cap;
    const size_t D = dd_dataset_image_size(d);
    if (D > cap) {
        free(buf);
        buf = malloc(D * sizeof *buf);
        cap = buf ? D : 0;
    }
    if (!buf || dd_dataset_gather_range(d, i, 1, buf) != DD_OK) {
        fprintf(stderr, "rg_image: image %lld of %s: %s\n", (long long)i, d->name,
                dd_error_message());
        abort();
    }
    return buf;
}

float *rg_images(const dd_dataset *d) {
    float *x = malloc((d->n > 0 ? (size_t)d->n : 1) * dd_dataset_image_size(d) * sizeof *x);
    if (!x || dd_dataset_gather_range(d, 0, d->n, x) != DD_OK) {
        fprintf(stderr, "rg_images: %s: %s\n", d->name, dd_error_message());
        abort();
    }
    return x;
}

/* Image i's stored bytes, interleaved (HWC) as the readers once normalised them. */
static void stored_hwc(const dd_dataset *d, int64_t i, uint8_t *hwc) {
    const size_t hw = (size_t)d->height * d->width, D = hw * d->channels;
    const uint8_t *chw = (const uint8_t *)d->pixels + (size_t)i * D;
    for (int c = 0; c < d->channels; c++)
        for (size_t p = 0; p < hw; p++)
            hwc[p * d->channels + c] = chw[c * hw + p];
}

int rg_old_path_image(const dd_dataset *d, int64_t i, const uint8_t *hwc) {
    const size_t D = dd_dataset_image_size(d);
    uint8_t *own = hwc ? NULL : malloc(D);
    float *want = malloc(D * sizeof *want);
    if (!want || (!hwc && !own)) abort();
    if (!hwc) stored_hwc(d, i, own);
    dd_image_normalize(hwc ? hwc : own, d->width, d->height, d->channels, d->mean, d->std, want);
    int same = memcmp(rg_image(d, i), want, D * sizeof *want) == 0;
    free(own);
    free(want);
    return same;
}

int rg_old_path_batch(const dd_dataset *d) {
    if (d->dtype != DD_DTYPE_U8 ||
        dd_dataset_bytes(d) != (size_t)d->n * d->channels * d->height * d->width)
        return 0;
    const size_t D = dd_dataset_image_size(d);
    const int64_t n = d->n + (d->n + 2) / 3;
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    float *got = malloc((size_t)n * D * sizeof *got), *want = malloc(D * sizeof *want);
    uint8_t *hwc = malloc(D);
    if (!idx || !got || !want || !hwc) abort();
    int64_t k = 0;
    for (int64_t i = d->n - 1; i >= 0; i--)
        idx[k++] = i;
    for (int64_t i = 0; i < d->n; i += 3)
        idx[k++] = i;
    int same = dd_dataset_gather(d, idx, n, got) == DD_OK;
    for (int64_t j = 0; same && j < n; j++) {
        stored_hwc(d, idx[j], hwc);
        dd_image_normalize(hwc, d->width, d->height, d->channels, d->mean, d->std, want);
        same = memcmp(got + (size_t)j * D, want, D * sizeof *want) == 0;
    }
    free(idx);
    free(got);
    free(want);
    free(hwc);
    return same;
}
