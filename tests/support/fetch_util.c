/* tests/support — scratch dirs, file I/O and archive builders for the fetch
 * and unpack tests (see fetch_util.h). */
#define _GNU_SOURCE
#include "fetch_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/hash.h"

char *fetch_tmpdir(const char *tag) {
    const char *bin = getenv("DISTILL_BINARY_DIR");
    char base[4096];
    if (bin && *bin) {
        snprintf(base, sizeof base, "%s/tmp", bin);
        mkdir(base, 0755);
    } else {
        snprintf(base, sizeof base, "/tmp");
    }
    char *path = NULL;
    if (asprintf(&path, "%s/%s-XXXXXX", base, tag) < 0) return NULL;
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void fetch_rmtree(const char *path) {
    if (path) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int fetch_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int bad = n && fwrite(data, 1, n, f) != n;
    if (fclose(f) != 0) bad = 1;
    return bad ? -1 : 0;
}

unsigned char *fetch_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose(f);
    *n = len;
    return buf;
}

int fetch_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

void fetch_sha256_hex(const void *data, size_t n, char out[65]) {
    dd_sha256 c;
    uint8_t d[DD_SHA256_SIZE];
    dd_sha256_init(&c);
    dd_sha256_update(&c, data, n);
    dd_sha256_final(&c, d);
    dd_hex(d, sizeof d, out);
}

void fetch_md5_hex(const void *data, size_t n, char out[33]) {
    dd_md5 c;
    uint8_t d[DD_MD5_SIZE];
    dd_md5_init(&c);
    dd_md5_update(&c, data, n);
    dd_md5_final(&c, d);
    dd_hex(d, sizeof d, out);
}

/* libarchive writes into a growing memory buffer through these callbacks. */
typedef struct membuf {
    unsigned char *p;
    size_t n, cap;
    int failed;
} membuf;

static la_ssize_t mem_write(struct archive *a, void *user, const void *buf, size_t n) {
    (void)a;
    membuf *m = user;
    if (m->n + n > m->cap) {
        size_t nc = m->cap ? m->cap : 65536;
        while (nc < m->n + n)
            nc *= 2;
        unsigned char *np = realloc(m->p, nc);
        if (!np) {
            m->failed = 1;
            return -1;
        }
        m->p = np;
        m->cap = nc;
    }
    memcpy(m->p + m->n, buf, n);
    m->n += n;
    return (la_ssize_t)n;
}

static dd_status finish(struct archive *a, membuf *m, int ok, unsigned char **out, size_t *out_n) {
    if (archive_write_close(a) != ARCHIVE_OK) ok = 0;
    archive_write_free(a);
    if (!ok || m->failed) {
        free(m->p);
        return dd_error_set(DD_ERR_ARCHIVE, "fetch_util: cannot build the archive");
    }
    *out = m->p;
    *out_n = m->n;
    return DD_OK;
}

dd_status fetch_make_tar(const fetch_tar_entry *entries, size_t n, int gzip, unsigned char **out,
                         size_t *out_n) {
    struct archive *a = archive_write_new();
    membuf m = {0};
    if (!a) return dd_error_set(DD_ERR_NOMEM, "fetch_util: archive_write_new");
    archive_write_set_format_pax_restricted(a);
    if (gzip) archive_write_add_filter_gzip(a);
    archive_write_set_bytes_in_last_block(a, 1);
    if (archive_write_open(a, &m, NULL, mem_write, NULL) != ARCHIVE_OK)
        return finish(a, &m, 0, out, out_n);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        const fetch_tar_entry *e = &entries[i];
        struct archive_entry *ae = archive_entry_new();
        archive_entry_set_pathname(ae, e->path);
        archive_entry_set_mtime(ae, 1600000000, 0);
        unsigned char *pattern = NULL;
        switch (e->type) {
        case 'd':
            archive_entry_set_filetype(ae, AE_IFDIR);
            archive_entry_set_perm(ae, 0755);
            break;
        case 'l':
            archive_entry_set_filetype(ae, AE_IFLNK);
            archive_entry_set_perm(ae, 0777);
            archive_entry_set_symlink(ae, e->data);
            break;
        case 'h':
            archive_entry_set_filetype(ae, AE_IFREG);
            archive_entry_set_perm(ae, 0644);
            archive_entry_set_hardlink(ae, e->data);
            archive_entry_set_size(ae, 0);
            break;
        default:
            archive_entry_set_filetype(ae, AE_IFREG);
            archive_entry_set_perm(ae, 0644);
            archive_entry_set_size(ae, (la_int64_t)e->size);
            break;
        }
        if (archive_write_header(a, ae) != ARCHIVE_OK) ok = 0;
        if (ok && e->type == 'f' && e->size > 0) {
            const void *data = e->data;
            if (!data) {
                pattern = malloc(e->size);
                if (!pattern) ok = 0;
                for (size_t k = 0; ok && k < e->size; k++)
                    pattern[k] = (unsigned char)(k % 251);
                data = pattern;
            }
            if (ok && archive_write_data(a, data, e->size) != (la_ssize_t)e->size) ok = 0;
        }
        free(pattern);
        archive_entry_free(ae);
    }
    return finish(a, &m, ok, out, out_n);
}

dd_status fetch_make_gz(const void *data, size_t n, unsigned char **out, size_t *out_n) {
    struct archive *a = archive_write_new();
    membuf m = {0};
    if (!a) return dd_error_set(DD_ERR_NOMEM, "fetch_util: archive_write_new");
    archive_write_set_format_raw(a);
    archive_write_add_filter_gzip(a);
    archive_write_set_bytes_in_last_block(a, 1);
    if (archive_write_open(a, &m, NULL, mem_write, NULL) != ARCHIVE_OK)
        return finish(a, &m, 0, out, out_n);
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, "payload");
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_size(ae, (la_int64_t)n);
    int ok = archive_write_header(a, ae) == ARCHIVE_OK;
    if (ok && n) ok = archive_write_data(a, data, n) == (la_ssize_t)n;
    archive_entry_free(ae);
    return finish(a, &m, ok, out, out_n);
}
