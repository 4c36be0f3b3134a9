/* distill — the decoded-dataset cache (dcache.h): one file per split, a
 * checksummed header, labels and class names, then the pixels at a page
 * boundary so they can be mapped as they are. */
#define _GNU_SOURCE
#include "data/dcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distill/distill.h"
#include "distill/limits.h"
#include "distill/log.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/hash.h"
#include "base/paths.h"
#include "base/strbuf.h"
#include "data/cache.h"
#include "data/dataset_map.h"

/* ---- the file format ------------------------------------------------------
 *
 * offset 0     header (256 bytes, host byte order; `endian` tells)
 * 256          labels: n × int32
 *              class names: n_classes × (uint32 length, bytes)
 *              split name: uint32 length, bytes
 * pixel_offset pixels (a multiple of 4096): n × C × H × W of dtype
 *
 * meta_sum covers the header (with meta_sum zero) and the labels/names;
 * pixel_sum covers the pixel block. Both are dc_sum (below): a fast 64-bit
 * hash for detecting damage, not an adversarial checksum. */

#define DC_MAGIC "DDDECODE"
#define DC_VERSION 1u
#define DC_ENDIAN 0x01020304u
#define DC_HEADER 256
#define DC_ALIGN 4096
// Sanity bounds for a header read from disk.
#define DC_MAX_CLASSES (1 << 20)
#define DC_MAX_NAME 4096

typedef struct dc_header {
    char magic[8];
    uint32_t version, endian;
    uint8_t key[32];
    uint32_t dtype, channels, height, width;
    uint32_t n_classes, reserved0;
    int64_t n;
    float mean[DD_MAX_CHANNELS], std[DD_MAX_CHANNELS];
    uint64_t meta_bytes, pixel_offset, pixel_bytes, file_bytes;
    uint64_t pixel_sum, meta_sum;
    uint8_t pad[DC_HEADER - 8 - 8 - 32 - 16 - 8 - 8 - 8 * DD_MAX_CHANNELS - 6 * 8];
} dc_header;

_Static_assert(sizeof(dc_header) == DC_HEADER, "decoded-cache header must be 256 bytes");

/* ---- the checksum --------------------------------------------------------- */

#define P1 UINT64_C(0x9E3779B185EBCA87)
#define P2 UINT64_C(0xC2B2AE3D27D4EB4F)
#define P3 UINT64_C(0x165667B19E3779F9)

static uint64_t rotl(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

static uint64_t round64(uint64_t acc, uint64_t in) {
    return rotl(acc + in * P2, 31) * P1;
}

/* Streaming state: four lanes over 32-byte stripes, a byte tail. */
typedef struct dc_sum {
    uint64_t lane[4];
    uint64_t bytes;
    uint8_t tail[32];
    size_t fill;
} dc_sum;

static void sum_init(dc_sum *s) {
    memset(s, 0, sizeof *s);
    s->lane[0] = P1 + P2;
    s->lane[1] = P2;
    s->lane[2] = 0;
    s->lane[3] = (uint64_t)0 - P1;
}

static void sum_stripe(dc_sum *s, const uint8_t *p) {
    for (int l = 0; l < 4; l++) {
        uint64_t w;
        memcpy(&w, p + 8 * l, 8);
        s->lane[l] = round64(s->lane[l], w);
    }
}

static void sum_update(dc_sum *s, const void *data, size_t n) {
    const uint8_t *p = data;
    s->bytes += n;
    if (s->fill) {
        size_t take = 32 - s->fill < n ? 32 - s->fill : n;
        memcpy(s->tail + s->fill, p, take);
        s->fill += take;
        p += take;
        n -= take;
        if (s->fill < 32) return;
        sum_stripe(s, s->tail);
        s->fill = 0;
    }
    for (; n >= 32; p += 32, n -= 32)
        sum_stripe(s, p);
    memcpy(s->tail, p, n);
    s->fill = n;
}

static uint64_t sum_final(const dc_sum *s) {
    uint64_t h = rotl(s->lane[0], 1) + rotl(s->lane[1], 7) + rotl(s->lane[2], 12) +
                 rotl(s->lane[3], 18) + s->bytes;
    for (size_t i = 0; i < s->fill; i++)
        h = rotl(h ^ (s->tail[i] * P3), 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    return h ^ (h >> 32);
}

/* ---- writing -------------------------------------------------------------- */

static int put(dd_strbuf *b, const void *p, size_t n) {
    dd_strbuf_append(b, (const char *)p, n);
    return !b->oom;
}

/* Labels and names, as they follow the header. */
static dd_status build_meta(const dd_dataset *d, dd_strbuf *m) {
    int ok = put(m, d->labels, (size_t)d->n * sizeof(int32_t));
    for (int k = 0; ok && k <= d->n_classes; k++) {
        const char *s = k < d->n_classes ? d->class_names[k] : d->name;
        uint32_t len = (uint32_t)(s ? strlen(s) : 0);
        if (len > DC_MAX_NAME) len = DC_MAX_NAME;
        ok = put(m, &len, sizeof len) && put(m, s ? s : "", len);
    }
    return ok ? DD_OK : dd_nomem();
}

static uint64_t align_up(uint64_t x) {
    return (x + DC_ALIGN - 1) / DC_ALIGN * DC_ALIGN;
}

/* The header of d with its meta block and pixels at pixel_offset. */
static void make_header(dc_header *h, const uint8_t key[32], const dd_dataset *d,
                        const dd_strbuf *meta, uint64_t pixel_offset) {
    memset(h, 0, sizeof *h);
    memcpy(h->magic, DC_MAGIC, 8);
    h->version = DC_VERSION;
    h->endian = DC_ENDIAN;
    memcpy(h->key, key, 32);
    h->dtype = (uint32_t)d->dtype;
    h->channels = (uint32_t)d->channels;
    h->height = (uint32_t)d->height;
    h->width = (uint32_t)d->width;
    h->n_classes = (uint32_t)d->n_classes;
    h->n = d->n;
    memcpy(h->mean, d->mean, sizeof h->mean);
    memcpy(h->std, d->std, sizeof h->std);
    h->meta_bytes = meta->len;
    h->pixel_offset = pixel_offset;
    h->pixel_bytes = dd_dataset_bytes(d);
    h->file_bytes = h->pixel_offset + h->pixel_bytes;
    dc_sum ps;
    sum_init(&ps);
    sum_update(&ps, d->pixels, h->pixel_bytes);
    h->pixel_sum = sum_final(&ps);
    dc_sum ms;
    sum_init(&ms);
    sum_update(&ms, h, sizeof *h);
    sum_update(&ms, meta->s, meta->len);
    h->meta_sum = sum_final(&ms);
}

/* Room the header and meta block of a split of n images and k classes can
 * take at most (names are capped at DC_MAX_NAME): where a spill file puts
 * its pixels. */
static size_t spill_offset(int64_t n, int n_classes) {
    return (size_t)align_up(DC_HEADER + (uint64_t)n * sizeof(int32_t) +
                            ((uint64_t)n_classes + 1) * (4 + DC_MAX_NAME));
}

static void sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* A split the reader decoded into a spill file: the header goes in front of
 * the pixels already there, then the file is synced and renamed into place. */
static dd_status write_spilled(const char *path, const char *dir, const uint8_t key[32],
                               dd_dataset *d, int fd, const char *tmp, size_t off) {
    dd_strbuf meta = DD_STRBUF_INIT;
    DD_TRY(build_meta(d, &meta));
    dd_status s = DD_OK;
    if (DC_HEADER + meta.len > off)
        s = dd_error_set(DD_ERR_INVALID, "%s: no room for the header", tmp);
    dc_header h;
    if (s == DD_OK) make_header(&h, key, d, &meta, off);
    if (s == DD_OK && (pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h ||
                       pwrite(fd, meta.s, meta.len, DC_HEADER) != (ssize_t)meta.len ||
                       ftruncate(fd, (off_t)h.file_bytes) != 0 || fsync(fd) != 0))
        s = dd_error_set(DD_ERR_IO, "%s: cannot write the decoded cache: %s", tmp, strerror(errno));
    dd_strbuf_free(&meta);
    if (s == DD_OK && rename(tmp, path) != 0)
        s = dd_error_set(DD_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (s != DD_OK) return s;
    sync_dir(dir);
    dd_dataset_spill_committed(d);
    return DD_OK;
}

dd_status dd_dcache_write(const char *path, const uint8_t key[32], const dd_dataset *d) {
    dd_strbuf meta = DD_STRBUF_INIT;
    dd_status s = build_meta(d, &meta);
    if (s != DD_OK) return s;
    dc_header h;
    make_header(&h, key, d, &meta, align_up(DC_HEADER + meta.len));
    static const uint8_t zeros[DC_ALIGN];
    const size_t gap = (size_t)(h.pixel_offset - DC_HEADER - meta.len);
    dd_fs_atomic a;
    s = dd_fs_atomic_open_mode(&a, path, 0644);
    if (s == DD_OK) {
        if (fwrite(&h, sizeof h, 1, a.f) != 1 || fwrite(meta.s, 1, meta.len, a.f) != meta.len ||
            fwrite(zeros, 1, gap, a.f) != gap ||
            fwrite(d->pixels, 1, h.pixel_bytes, a.f) != h.pixel_bytes) {
            s = dd_error_set(DD_ERR_IO, "%s: cannot write the decoded cache: %s", path,
                             strerror(errno));
            dd_fs_atomic_abort(&a);
        } else {
            s = dd_fs_atomic_commit(&a);
        }
    }
    dd_strbuf_free(&meta);
    return s;
}

/* ---- reading -------------------------------------------------------------- */

/* The "verified" stamp beside a cache file: the identity (device, inode,
 * size, mtime, ctime) the file had when its pixel checksum last passed. Any
 * write to the file changes its ctime, so a matching stamp means the pixels
 * are the ones checked. */
static void stamp_of(const struct stat *st, char *buf, size_t cap) {
    snprintf(buf, cap, "%llu %llu %lld %lld.%09ld %lld.%09ld\n", (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino, (long long)st->st_size, (long long)st->st_mtim.tv_sec,
             (long)st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec, (long)st->st_ctim.tv_nsec);
}

static char *stamp_path(const char *path) {
    dd_strbuf b = DD_STRBUF_INIT;
    dd_strbuf_printf(&b, "%s.verified", path);
    return dd_strbuf_take(&b);
}

static int stamp_matches(const char *path, const struct stat *st) {
    char want[256], *have = NULL, *sp = stamp_path(path);
    stamp_of(st, want, sizeof want);
    int ok = sp && dd_fs_read_file(sp, sizeof want, &have, NULL) == DD_OK && have &&
             strcmp(have, want) == 0;
    free(have);
    free(sp);
    return ok;
}

/* Best effort: a stamp that cannot be written only costs a re-check. */
static void stamp_write(const char *path) {
    struct stat st;
    char buf[256], *sp = stamp_path(path);
    if (sp && stat(path, &st) == 0) {
        stamp_of(&st, buf, sizeof buf);
        if (dd_fs_write_file_mode(sp, buf, strlen(buf), 0644) != DD_OK) dd_error_clear();
    }
    free(sp);
}

static dd_status bad(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static dd_status bad(const char *path, const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return dd_error_set(DD_ERR_CHECKSUM, "%s: %s", path, why);
}

static dd_status read_at(int fd, const char *path, void *buf, size_t n, uint64_t off) {
    uint8_t *p = buf;
    while (n > 0) {
        size_t chunk = n < (1u << 30) ? n : (1u << 30);
        ssize_t got = pread(fd, p, chunk, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return dd_error_set(DD_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        if (got == 0) return bad(path, "truncated while reading");
        p += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return DD_OK;
}

/* Checks the header against itself and the file's size. */
static dd_status check_header(const char *path, const dc_header *h, const uint8_t key[32],
                              uint64_t size) {
    if (memcmp(h->magic, DC_MAGIC, 8) != 0) return bad(path, "not a distill decoded cache");
    if (h->endian != DC_ENDIAN) return bad(path, "written on a machine of another byte order");
    if (h->version != DC_VERSION)
        return bad(path, "format version %u, this distill reads %u", h->version, DC_VERSION);
    // Not damage: the inputs or the reader changed since it was written.
    if (memcmp(h->key, key, 32) != 0)
        return dd_error_set(DD_ERR_NOT_FOUND, "%s: decoded from other inputs", path);
    const size_t es = dd_dtype_size((dd_dtype)h->dtype);
    if (es == 0 || h->channels < 1 || h->channels > DD_MAX_CHANNELS || h->height < 1 ||
        h->height > 65535 || h->width < 1 || h->width > 65535 || h->n_classes < 1 ||
        h->n_classes > DC_MAX_CLASSES || h->n < 0 || h->n > (INT64_C(1) << 40))
        return bad(path, "header holds an impossible shape");
    const uint64_t pixels = (uint64_t)h->n * h->channels * h->height * h->width * es;
    if (h->pixel_bytes != pixels || h->pixel_offset % DC_ALIGN != 0 ||
        h->meta_bytes > h->pixel_offset || h->pixel_offset < DC_HEADER + h->meta_bytes ||
        h->file_bytes != h->pixel_offset + h->pixel_bytes)
        return bad(path, "header sizes do not add up");
    if (size != h->file_bytes)
        return bad(path, "%s: %llu bytes, the header says %llu",
                   size < h->file_bytes ? "truncated" : "too long", (unsigned long long)size,
                   (unsigned long long)h->file_bytes);
    return DD_OK;
}

/* Labels and names from the meta block into d. */
static dd_status parse_meta(const char *path, const dc_header *h, const uint8_t *m, dd_dataset *d) {
    const uint8_t *end = m + h->meta_bytes;
    const size_t lb = (size_t)h->n * sizeof(int32_t);
    if ((size_t)(end - m) < lb) return bad(path, "labels cut short");
    memcpy(d->labels, m, lb);
    m += lb;
    for (int64_t i = 0; i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= d->n_classes)
            return bad(path, "label %d of image %lld is not in 0..%d", d->labels[i], (long long)i,
                       d->n_classes - 1);
    char name[DC_MAX_NAME + 1];
    for (int k = 0; k <= d->n_classes; k++) {
        uint32_t len;
        if (end - m < 4) return bad(path, "class names cut short");
        memcpy(&len, m, 4);
        m += 4;
        if (len > DC_MAX_NAME || (uint64_t)(end - m) < len) return bad(path, "bad name length");
        memcpy(name, m, len);
        name[len] = '\0';
        m += len;
        if (k < d->n_classes) DD_TRY(dd_dataset_set_class_name(d, k, name));
    }
    memcpy(d->mean, h->mean, sizeof d->mean);
    memcpy(d->std, h->std, sizeof d->std);
    return DD_OK;
}

static dd_status open_fd(int fd, const char *path, const uint8_t key[32], int map,
                         dd_dataset **out) {
    struct stat st;
    if (fstat(fd, &st) != 0)
        return dd_error_set(DD_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return bad(path, "not a regular file");
    if (st.st_size < DC_HEADER)
        return bad(path, "truncated: %lld bytes, shorter than the %d-byte header",
                   (long long)st.st_size, DC_HEADER);
    dc_header h;
    DD_TRY(read_at(fd, path, &h, sizeof h, 0));
    DD_TRY(check_header(path, &h, key, (uint64_t)st.st_size));
    uint8_t *meta = malloc(h.meta_bytes ? (size_t)h.meta_bytes : 1);
    if (!meta) return dd_nomem();
    dd_status s = read_at(fd, path, meta, (size_t)h.meta_bytes, DC_HEADER);
    if (s == DD_OK) {
        dc_header z = h;
        z.meta_sum = 0;
        dc_sum ms;
        sum_init(&ms);
        sum_update(&ms, &z, sizeof z);
        sum_update(&ms, meta, (size_t)h.meta_bytes);
        if (sum_final(&ms) != h.meta_sum) s = bad(path, "header checksum mismatch");
    }
    if (s != DD_OK) {
        free(meta);
        return s;
    }
    // the name is the last string of the meta block; parse_meta re-walks it
    dd_dataset *d = NULL;
    void *base = NULL;
    const char *nm = "dataset";
    char namebuf[DC_MAX_NAME + 1];
    {
        const uint8_t *p = meta + (size_t)h.n * 4, *end = meta + h.meta_bytes;
        for (uint32_t k = 0; k <= h.n_classes && p <= end; k++) {
            uint32_t len = 0;
            if (end - p < 4) break;
            memcpy(&len, p, 4);
            p += 4;
            if (len > DC_MAX_NAME || (uint64_t)(end - p) < len) break;
            if (k == h.n_classes) {
                memcpy(namebuf, p, len);
                namebuf[len] = '\0';
                nm = namebuf;
            }
            p += len;
        }
    }
    if (map) {
        base = mmap(NULL, (size_t)h.file_bytes, PROT_READ, MAP_SHARED, fd, 0);
        if (base == MAP_FAILED) {
            free(meta);
            return dd_error_set(DD_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        }
        s = dd_dataset_create_mapped(nm, (dd_dtype)h.dtype, h.n, (int)h.channels, (int)h.height,
                                     (int)h.width, (int)h.n_classes, base, (size_t)h.file_bytes,
                                     (size_t)h.pixel_offset, &d);
        if (s != DD_OK) munmap(base, (size_t)h.file_bytes);
    } else {
        s = dd_dataset_create(nm, (dd_dtype)h.dtype, h.n, (int)h.channels, (int)h.height,
                              (int)h.width, (int)h.n_classes, &d);
    }
    if (s == DD_OK) s = parse_meta(path, &h, meta, d);
    free(meta);
    if (s == DD_OK && !map) s = read_at(fd, path, d->pixels, (size_t)h.pixel_bytes, h.pixel_offset);
    // Mapped: the pixels are checked once per change of the file (the stamp);
    // read into RAM they are checked every time, as they pass by anyway.
    int check = s == DD_OK && (!map || !stamp_matches(path, &st));
    if (check) {
        dc_sum ps;
        sum_init(&ps);
        sum_update(&ps, d->pixels, (size_t)h.pixel_bytes);
        if (sum_final(&ps) != h.pixel_sum)
            s = bad(path, "pixel checksum mismatch");
        else if (map)
            stamp_write(path);
    }
    if (s != DD_OK) {
        dd_dataset_destroy(d);
        return s;
    }
    *out = d;
    return DD_OK;
}

dd_status dd_dcache_open(const char *path, const uint8_t key[32], int map, dd_dataset **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return dd_error_set(DD_ERR_NOT_FOUND, "%s: not cached", path);
        return dd_error_set(DD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    dd_status s = open_fd(fd, path, key, map, out);
    close(fd); // a mapping stays valid without its descriptor
    return s;
}

/* ---- the key -------------------------------------------------------------- */

typedef struct input_list {
    char **v;
    size_t n, cap;
} input_list;

static int input_add(input_list *l, char *line) {
    if (!line) return 0;
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 64;
        char **nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) {
            free(line);
            return 0;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = line;
    return 1;
}

/* The dataset cache's own bookkeeping beside the data (cache.h). */
static int is_bookkeeping(const char *name) {
    return strcmp(name, "downloads") == 0 || strcmp(name, "decoded") == 0 ||
           strcmp(name, ".lock") == 0 || strncmp(name, ".verified-", 10) == 0 ||
           strncmp(name, ".unpacked-", 10) == 0;
}

static char *stat_line(const char *rel, const struct stat *st) {
    dd_strbuf b = DD_STRBUF_INIT;
    dd_strbuf_printf(&b, "%s\t%lld\t%lld.%09ld\n", rel, (long long)st->st_size,
                     (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
    return dd_strbuf_take(&b);
}

/* The directories from the root down to the one being listed, so that a
 * link back up (a loop) is not followed again. */
typedef struct ancestors {
    dev_t dev[33];
    ino_t ino[33];
    int n;
} ancestors;

/* Every regular file under `path` (links followed, as a reader would), a
 * link to an enclosing directory skipped; a directory that cannot be listed
 * enters the key as such (the reader will say whether it needed it). */
static dd_status walk(const char *path, const char *rel, ancestors *up, input_list *l) {
    struct stat st;
    if (stat(path, &st) != 0) return DD_OK; // a dangling link: nothing a reader could read
    if (S_ISREG(st.st_mode)) return input_add(l, stat_line(rel, &st)) ? DD_OK : dd_nomem();
    if (!S_ISDIR(st.st_mode) || up->n >= 32) return DD_OK;
    for (int i = 0; i < up->n; i++)
        if (up->dev[i] == st.st_dev && up->ino[i] == st.st_ino) return DD_OK;
    DIR *d = opendir(path);
    if (!d) {
        dd_strbuf b = DD_STRBUF_INIT;
        dd_strbuf_printf(&b, "%s\tunreadable\n", rel);
        return input_add(l, dd_strbuf_take(&b)) ? DD_OK : dd_nomem();
    }
    up->dev[up->n] = st.st_dev;
    up->ino[up->n] = st.st_ino;
    up->n++;
    dd_status s = DD_OK;
    struct dirent *e;
    while (s == DD_OK && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (up->n == 1 && is_bookkeeping(e->d_name)) continue;
        char *sub = dd_fs_join(path, e->d_name);
        dd_strbuf r = DD_STRBUF_INIT;
        dd_strbuf_printf(&r, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        char *subrel = dd_strbuf_take(&r);
        s = sub && subrel ? walk(sub, subrel, up, l) : dd_nomem();
        free(sub);
        free(subrel);
    }
    up->n--;
    closedir(d);
    return s;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The slot names the files: the key text and where the inputs are, so that
 * inputs that change replace their cache file instead of adding one. The
 * key, kept in the header, adds every input file's path, size and mtime. */
static dd_status make_key(const dd_dcache_config *c, uint8_t key[32], char slot_hex[17]) {
    static const char head[] = "distill decoded cache 1\n";
    dd_sha256 h;
    dd_sha256_init(&h);
    dd_sha256_update(&h, head, sizeof head - 1);
    // The core's own decoders and resizers (image.c) shape the pixels too:
    // a rebuilt or upgraded libdistill decodes again.
    char lib[PATH_MAX];
    struct stat ls;
    dd_paths_library_file(lib, sizeof lib);
    if (!lib[0] || stat(lib, &ls) != 0) memset(&ls, 0, sizeof ls);
    dd_strbuf core = DD_STRBUF_INIT;
    dd_strbuf_printf(&core, "core %s %lld %lld.%09ld\n", dd_version(), (long long)ls.st_size,
                     (long long)ls.st_mtim.tv_sec, (long)ls.st_mtim.tv_nsec);
    if (core.oom) {
        dd_strbuf_free(&core);
        return dd_nomem();
    }
    dd_sha256_update(&h, core.s, core.len);
    dd_strbuf_free(&core);
    if (c->key_text) dd_sha256_update(&h, c->key_text, strlen(c->key_text) + 1);
    char *real = c->inputs ? realpath(c->inputs, NULL) : NULL;
    const char *where = real ? real : c->inputs ? c->inputs : "";
    dd_sha256_update(&h, where, strlen(where) + 1);
    free(real);
    dd_sha256 slot = h;
    uint8_t sd[32];
    dd_sha256_final(&slot, sd);
    for (int i = 0; i < 8; i++)
        snprintf(slot_hex + 2 * i, 3, "%02x", sd[i]);
    input_list l = {0};
    ancestors up = {.n = 0};
    dd_status s = c->inputs ? walk(c->inputs, "", &up, &l) : DD_OK;
    if (s == DD_OK && l.n > 1) qsort(l.v, l.n, sizeof *l.v, cmp_str);
    for (size_t i = 0; i < l.n; i++) {
        if (s == DD_OK) dd_sha256_update(&h, l.v[i], strlen(l.v[i]));
        free(l.v[i]);
    }
    free(l.v);
    if (s != DD_OK) return s;
    dd_sha256_final(&h, key);
    return DD_OK;
}

/* ---- loading through the cache -------------------------------------------- */

/* Both files for key, or an error: NOT_FOUND / CHECKSUM / PARSE mean "build
 * it", anything else is real. */
static dd_status open_pair(const dd_dcache_info *in, const uint8_t key[32], int map,
                           dd_dataset **train, dd_dataset **test) {
    DD_TRY(dd_dcache_open(in->train_path, key, map, train));
    dd_status s = dd_dcache_open(in->test_path, key, map, test);
    if (s != DD_OK) {
        dd_dataset_destroy(*train);
        *train = NULL;
    }
    return s;
}

static int rebuildable(dd_status s) {
    return s == DD_ERR_NOT_FOUND || s == DD_ERR_CHECKSUM || s == DD_ERR_PARSE;
}

static int want_map(const dd_dcache_config *c, uint64_t bytes) {
    int64_t t = c->mmap_threshold > 0 ? c->mmap_threshold : DD_DCACHE_DEFAULT_MMAP_THRESHOLD;
    return c->memory == DD_MEMORY_MMAP || (c->memory == DD_MEMORY_AUTO && bytes > (uint64_t)t);
}

/* The decoded size of both splits, from the headers alone (0 if unknown). */
static uint64_t cached_bytes(const dd_dcache_info *in, const uint8_t key[32]) {
    uint64_t total = 0;
    const char *paths[2] = {in->train_path, in->test_path};
    for (int i = 0; i < 2; i++) {
        int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
        dc_header h;
        int ok = fd >= 0 && pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h &&
                 memcmp(h.key, key, 32) == 0;
        if (fd >= 0) close(fd);
        if (!ok) return 0;
        total += h.pixel_bytes;
    }
    return total;
}

static dd_status write_pair(const dd_dcache_config *c, const dd_dcache_info *in,
                            const uint8_t key[32], dd_dataset *train, dd_dataset *test) {
    const char *paths[2] = {in->train_path, in->test_path};
    dd_dataset *sets[2] = {train, test};
    for (int i = 0; i < 2; i++) {
        dd_fs_atomic_remove_stale(paths[i]); // under the lock: leftovers of a crash
        char *sp = stamp_path(paths[i]);
        if (sp) unlink(sp);
        free(sp);
        int fd;
        const char *tmp;
        size_t off;
        if (dd_dataset_spill_file(sets[i], &fd, &tmp, &off))
            DD_TRY(write_spilled(paths[i], c->dir, key, sets[i], fd, tmp, off));
        else
            DD_TRY(dd_dcache_write(paths[i], key, sets[i]));
        stamp_write(paths[i]); // just checksummed from the very bytes written
    }
    return DD_OK;
}

/* Under the lock nobody else spills: what is there is left by a crash. */
static void remove_spills(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, ".spill.", 7) == 0) {
            char *p = dd_fs_join(dir, e->d_name);
            if (p) unlink(p);
            free(p);
        }
    closedir(d);
}

/* Under the lock: the files once more (another run may have written them
 * while we waited), else the reader and a fresh pair. */
static dd_status load_locked(const dd_dcache_config *c, const dd_dataset_ops *ops,
                             const dd_dataset_request *req, const uint8_t key[32],
                             dd_dcache_info *in, dd_dataset **train, dd_dataset **test) {
    int map = want_map(c, cached_bytes(in, key));
    dd_status s = open_pair(in, key, map, train, test);
    if (s == DD_OK) {
        in->reused = 1;
        in->mapped = map;
        return DD_OK;
    }
    if (!rebuildable(s)) return s;
    if (s != DD_ERR_NOT_FOUND) {
        dd_warn("decoded cache: %s; rebuilding it from the inputs", dd_error_message());
        in->rebuilt = 1;
    } else if (access(in->train_path, F_OK) == 0) {
        dd_info("decoded cache: the inputs changed; decoding them again");
    }
    dd_error_clear();
    remove_spills(c->dir);
    // A split that will be mapped is decoded straight into its file, so
    // that even the first decode need not hold it in RAM.
    int64_t t = c->mmap_threshold > 0 ? c->mmap_threshold : DD_DCACHE_DEFAULT_MMAP_THRESHOLD;
    dd_dataset_spill sp = {c->dir, c->memory == DD_MEMORY_MMAP ? 0 : (uint64_t)t + 1, spill_offset};
    if (c->memory != DD_MEMORY_RAM) dd_dataset_spill_begin(&sp);
    s = ops->load(req, train, test);
    dd_dataset_spill_end();
    if (s != DD_OK) return s;
    if (!*train || !*test) return DD_OK; // the caller reports the reader's failure
    in->written = 1;
    s = write_pair(c, in, key, *train, *test);
    if (s != DD_OK) return s;
    const uint64_t bytes = dd_dataset_bytes(*train) + dd_dataset_bytes(*test);
    if (!want_map(c, bytes)) return DD_OK;
    // Hand the decoded RAM back: from here on the pages come from the file.
    dd_dataset *mt = NULL, *ms = NULL;
    s = open_pair(in, key, 1, &mt, &ms);
    if (s != DD_OK) return s;
    dd_dataset_destroy(*train);
    dd_dataset_destroy(*test);
    *train = mt;
    *test = ms;
    in->mapped = 1;
    return DD_OK;
}

dd_status dd_dcache_load(const dd_dcache_config *c, const dd_dataset_ops *ops,
                         const dd_dataset_request *req, dd_dataset **train, dd_dataset **test,
                         dd_dcache_info *info) {
    *train = *test = NULL;
    dd_dcache_info local;
    dd_dcache_info *in = info ? info : &local;
    memset(in, 0, sizeof *in);
    uint8_t key[32];
    char hex[17];
    DD_TRY(make_key(c, key, hex));
    snprintf(in->train_path, sizeof in->train_path, "%s/%s-train.ddc", c->dir, hex);
    snprintf(in->test_path, sizeof in->test_path, "%s/%s-test.ddc", c->dir, hex);

    // Without the lock first: files are only ever replaced whole (rename),
    // so a valid pair is valid whoever else is running.
    int map = want_map(c, cached_bytes(in, key));
    dd_status s = open_pair(in, key, map, train, test);
    if (s == DD_OK) {
        in->reused = 1;
        in->mapped = map;
        return DD_OK;
    }
    // An unreadable file (EACCES, ...) is met again under the lock, which
    // says whether the cache can be used at all.
    if (!rebuildable(s) && s != DD_ERR_IO) return s;
    dd_error_clear();

    char *lock = dd_fs_join(c->dir, ".lock");
    if (!lock) return dd_nomem();
    int fd = -1;
    s = dd_fs_mkdir_p_mode(c->dir, 0755);
    if (s == DD_OK) s = dd_cache_lock(lock, "decoding this dataset", &fd);
    free(lock);
    if (s != DD_OK) {
        if (c->memory == DD_MEMORY_MMAP) {
            dd_error_prefix("dataset.memory: mmap needs a writable decoded cache");
            return s;
        }
        dd_warn("decoded cache not used: %s", dd_error_message());
        dd_error_clear();
        return ops->load(req, train, test);
    }
    s = load_locked(c, ops, req, key, in, train, test);
    dd_cache_unlock(fd);
    if (s != DD_OK && *train && *test && in->written && !in->mapped &&
        c->memory != DD_MEMORY_MMAP) {
        // The splits were decoded but the file could not be written (disk
        // full, ...): keep them in RAM rather than lose the work.
        dd_warn("decoded cache not written: %s", dd_error_message());
        dd_error_clear();
        return DD_OK;
    }
    if (s != DD_OK) {
        dd_dataset_destroy(*train);
        dd_dataset_destroy(*test);
        *train = *test = NULL;
    }
    return s;
}
