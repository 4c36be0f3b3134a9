/* distill — the dataset cache: where it lives, the per-dataset lock, the
 * .verified/.unpacked markers, installing checked files, and the listing
 * behind `distill datasets`. Layout: cache.h and docs/datasets.md. */
#define _GNU_SOURCE
#include "data/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distill/log.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "data/unpack.h"

// Cache bookkeeping that lives beside the extracted data; archives may not
// write over it.
static const char *const reserved_names[] = {"downloads",  "decoded",    ".lock",
                                             ".verified-", ".unpacked-", NULL};

// Markers are a line or two; anything larger is not one of ours.
enum { MARKER_MAX = 8192 };

dd_status dd_cache_root(const char *cache_dir, char **out) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    dd_strbuf b = DD_STRBUF_INIT;
    if (cache_dir && *cache_dir)
        dd_strbuf_printf(&b, "%s", cache_dir);
    else if (xdg && xdg[0] == '/')
        dd_strbuf_printf(&b, "%s/distill", xdg);
    else if (home && *home)
        dd_strbuf_printf(&b, "%s/.cache/distill", home);
    else
        return dd_error_set(DD_ERR_INVALID,
                            "no cache directory: set --cache-dir, XDG_CACHE_HOME or HOME");
    char *r = dd_strbuf_take(&b);
    if (!r) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    *out = r;
    return DD_OK;
}

/* ---- the lock ---------------------------------------------------------- */

dd_status dd_cache_lock(const char *path, const char *waiting, int *fd_out) {
    dd_status s = DD_OK;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        s = dd_error_set(DD_ERR_IO, "%s: cannot open lock: %s", path, strerror(errno));
    } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) {
            s = dd_error_set(DD_ERR_IO, "%s: cannot lock: %s", path, strerror(errno));
        } else {
            dd_info("waiting for another distill process that is %s (%s)", waiting, path);
            while (s == DD_OK && flock(fd, LOCK_EX) != 0)
                if (errno != EINTR)
                    s = dd_error_set(DD_ERR_IO, "%s: cannot lock: %s", path, strerror(errno));
        }
    }
    if (s != DD_OK && fd >= 0) close(fd);
    if (s == DD_OK) *fd_out = fd;
    return s;
}

void dd_cache_unlock(int fd) {
    if (fd < 0) return;
    flock(fd, LOCK_UN);
    close(fd);
}

static dd_status lock_dataset(const char *dir, const char *name, int *fd_out) {
    char *path = dd_fs_join(dir, ".lock");
    dd_strbuf what = DD_STRBUF_INIT;
    dd_strbuf_printf(&what, "fetching '%s'", name);
    char *w = dd_strbuf_take(&what);
    dd_status s = path && w ? dd_cache_lock(path, w, fd_out) : dd_nomem();
    free(w);
    free(path);
    return s;
}

dd_status dd_cache_open(const char *root, const char *name, int downloads, dd_cache_dataset *d) {
    memset(d, 0, sizeof *d);
    d->dir = dd_fs_join(root, name);
    if (!d->dir || (downloads && !(d->downloads = dd_fs_join(d->dir, "downloads"))))
        return dd_error_set(DD_ERR_NOMEM, "out of memory");
    dd_status s = dd_fs_mkdir_p_mode(downloads ? d->downloads : d->dir, 0755);
    if (s == DD_OK) s = lock_dataset(d->dir, name, &d->lock_fd);
    if (s == DD_ERR_IO) {
        // a read-only or foreign cache: say how to choose another
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", dd_error_message());
        s = dd_error_set(DD_ERR_IO,
                         "dataset cache %s is not usable (%s); choose a writable one with "
                         "--cache-dir DIR, dataset.cache_dir or XDG_CACHE_HOME",
                         root, msg);
    }
    if (s != DD_OK) {
        dd_cache_close(d);
        return s;
    }
    d->locked = 1;
    return DD_OK;
}

void dd_cache_close(dd_cache_dataset *d) {
    if (!d) return;
    if (d->locked) dd_cache_unlock(d->lock_fd);
    free(d->dir);
    free(d->downloads);
    memset(d, 0, sizeof *d);
}

/* ---- markers ----------------------------------------------------------- */

char *dd_cache_marker_path(const char *dir, dd_cache_marker kind, const char *file) {
    dd_strbuf b = DD_STRBUF_INIT;
    dd_strbuf_printf(&b, "%s/.%s-%s", dir, kind == DD_CACHE_VERIFIED ? "verified" : "unpacked",
                     file);
    return dd_strbuf_take(&b);
}

/* The marker's content (malloc'ed), or NULL if it is absent or unreadable. */
static char *read_marker(const dd_cache_dataset *d, dd_cache_marker kind, const char *file) {
    char *path = dd_cache_marker_path(d->dir, kind, file), *text = NULL;
    if (path && dd_fs_read_file(path, MARKER_MAX, &text, NULL) != DD_OK) text = NULL;
    free(path);
    return text;
}

static dd_status write_marker(const dd_cache_dataset *d, dd_cache_marker kind, const char *file,
                              const char *content) {
    char *path = dd_cache_marker_path(d->dir, kind, file);
    if (!path) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    dd_fs_atomic_remove_stale(path);
    dd_status s = dd_fs_write_file_mode(path, content, strlen(content), 0644);
    free(path);
    return s;
}

int dd_cache_marker_is(const dd_cache_dataset *d, dd_cache_marker kind, const char *file,
                       const char *content) {
    char *have = read_marker(d, kind, file);
    int same = have && strcmp(have, content) == 0;
    free(have);
    return same;
}

void dd_cache_unmark(const dd_cache_dataset *d, dd_cache_marker kind, const char *file) {
    char *path = dd_cache_marker_path(d->dir, kind, file);
    if (path) unlink(path);
    free(path);
}

/* Identity of a file's current content for the .verified marker. */
static void stat_stamp(const struct stat *st, char *buf, size_t cap) {
    snprintf(buf, cap, "%lld %lld.%09ld\n", (long long)st->st_size, (long long)st->st_mtim.tv_sec,
             (long)st->st_mtim.tv_nsec);
}

/* lstat of downloads/<file>; 0 on success. */
static int stat_download(const dd_cache_dataset *d, const char *file, struct stat *st) {
    char *path = dd_fs_join(d->downloads, file);
    int rc = path ? lstat(path, st) : -1;
    free(path);
    return rc;
}

int dd_cache_download_present(const dd_cache_dataset *d, const char *file) {
    struct stat st;
    return stat_download(d, file, &st) == 0 && S_ISREG(st.st_mode);
}

int dd_cache_download_verified(const dd_cache_dataset *d, const char *file) {
    struct stat st;
    if (stat_download(d, file, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    char stamp[128];
    stat_stamp(&st, stamp, sizeof stamp);
    return dd_cache_marker_is(d, DD_CACHE_VERIFIED, file, stamp);
}

dd_status dd_cache_mark_verified(const dd_cache_dataset *d, const char *file) {
    char *path = dd_fs_join(d->downloads, file);
    if (!path) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    struct stat st;
    dd_status s = DD_OK;
    if (stat(path, &st) != 0) s = dd_error_set(DD_ERR_IO, "%s: %s", path, strerror(errno));
    free(path);
    if (s != DD_OK) return s;
    char stamp[128];
    stat_stamp(&st, stamp, sizeof stamp);
    return write_marker(d, DD_CACHE_VERIFIED, file, stamp);
}

int dd_cache_installed(const dd_cache_dataset *d, const dd_manifest_file *f, const char *origin,
                       int need_verified) {
    char *have = read_marker(d, DD_CACHE_UNPACKED, f->name);
    int ok = have && strncmp(have, origin, strlen(origin)) == 0 &&
             !(need_verified && strstr(have, " unverified"));
    free(have);
    if (!ok) return 0;
    char out[1024];
    const char *name = dd_manifest_file_output(f, out, sizeof out);
    if (!name) return 1;
    // A marker whose output was removed by hand is not trusted.
    char *path = dd_fs_join(d->dir, name);
    ok = path && dd_fs_is_file(path);
    free(path);
    return ok;
}

/* ---- installing -------------------------------------------------------- */

/* Copies src to dst atomically (base/fs): for plain files across file
 * systems, where a hard link cannot be made. */
static dd_status copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    if (!in) return dd_error_set(DD_ERR_IO, "cannot copy %s to %s: %s", src, dst, strerror(errno));
    dd_fs_atomic out;
    dd_status s = dd_fs_atomic_open_mode(&out, dst, 0644);
    char buf[65536];
    size_t got;
    while (s == DD_OK && (got = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, got, out.f) != got)
            s = dd_error_set(DD_ERR_IO, "cannot copy %s to %s: %s", src, dst, strerror(errno));
    if (s == DD_OK && ferror(in))
        s = dd_error_set(DD_ERR_IO, "cannot copy %s to %s: read error", src, dst);
    fclose(in);
    if (s == DD_OK) return dd_fs_atomic_commit(&out);
    dd_fs_atomic_abort(&out);
    return s;
}

static dd_status install_file(const dd_cache_dataset *d, const dd_manifest *m,
                              const dd_manifest_file *f, const char *src) {
    char out[1024];
    const char *name = dd_manifest_file_output(f, out, sizeof out);
    char *dst = dd_fs_join(d->dir, name);
    if (!dst) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    // Under the lock nothing else writes here: what an interrupted earlier
    // install left is garbage.
    dd_fs_atomic_remove_stale(dst);
    dd_status s;
    if (f->archive == DD_ARCHIVE_GZ) {
        s = dd_unpack_gz(src, dst, m->unpacked_limit, NULL, NULL);
    } else {
        // Plain files are hard-linked (same file system) or copied.
        unlink(dst);
        s = link(src, dst) == 0 ? DD_OK : copy_file(src, dst);
    }
    free(dst);
    return s;
}

static dd_status install(const dd_cache_dataset *d, const dd_manifest *m, const dd_manifest_file *f,
                         const char *src) {
    switch (f->archive) {
    case DD_ARCHIVE_NONE:
    case DD_ARCHIVE_GZ:
        return install_file(d, m, f, src);
    case DD_ARCHIVE_TAR:
    case DD_ARCHIVE_TAR_GZ:
        dd_info("unpacking %s", f->name);
        return dd_unpack_tar_reserved(src, d->dir, m->unpacked_limit, reserved_names, NULL);
    }
    return dd_error_set(DD_ERR_INVALID, "bad archive kind");
}

dd_status dd_cache_install(const dd_cache_dataset *d, const dd_manifest *m,
                           const dd_manifest_file *f, const char *src, const char *marker) {
    dd_cache_unmark(d, DD_CACHE_UNPACKED, f->name);
    DD_TRY(install(d, m, f, src));
    return write_marker(d, DD_CACHE_UNPACKED, f->name, marker);
}

dd_status dd_cache_link(const dd_cache_dataset *d, const char *name, const char *target) {
    char *dst = dd_fs_join(d->dir, name);
    if (!dst) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    dd_status s = DD_OK;
    unlink(dst);
    if (symlink(target, dst) != 0)
        s = dd_error_set(DD_ERR_IO, "%s: cannot link to %s: %s", dst, target, strerror(errno));
    free(dst);
    return s;
}

/* ---- listing ----------------------------------------------------------- */

static uint64_t du(const char *path, int depth) {
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    if (S_ISREG(st.st_mode)) return (uint64_t)st.st_size;
    if (!S_ISDIR(st.st_mode) || depth > 64) return 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *sub = dd_fs_join(path, e->d_name);
        if (sub) total += du(sub, depth + 1);
        free(sub);
    }
    closedir(d);
    return total;
}

static int cmp_status(const void *a, const void *b) {
    return strcmp(((const dd_dataset_status *)a)->name, ((const dd_dataset_status *)b)->name);
}

/* The row of manifest m: cached when every file has its .unpacked marker. */
static void fill_row(const dd_manifest *m, const char *root, dd_dataset_status *row) {
    memset(row, 0, sizeof *row);
    snprintf(row->name, sizeof row->name, "%s", m->name);
    snprintf(row->description, sizeof row->description, "%s", m->description);
    char *dsdir = dd_fs_join(root, m->name);
    row->cached = dsdir != NULL;
    for (size_t i = 0; i < m->n_files; i++) {
        row->download_bytes += m->files[i].size;
        char *marker =
            dsdir ? dd_cache_marker_path(dsdir, DD_CACHE_UNPACKED, m->files[i].name) : NULL;
        if (!marker || !dd_fs_is_file(marker)) row->cached = 0;
        free(marker);
    }
    row->bytes = dsdir ? du(dsdir, 0) : 0;
    free(dsdir);
}

static int listed(const dd_dataset_status *v, size_t n, const char *name, size_t len) {
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i].name) == len && strncmp(v[i].name, name, len) == 0) return 1;
    return 0;
}

static dd_status list_dir(const char *dir, const char *root, dd_dataset_status **v, size_t *n,
                          size_t *cap) {
    DIR *d = opendir(dir);
    if (!d) return DD_OK;
    struct dirent *e;
    dd_status s = DD_OK;
    while (s == DD_OK && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0) continue;
        if (listed(*v, *n, e->d_name, len - 5)) continue;
        char *path = dd_fs_join(dir, e->d_name);
        if (!path) {
            s = dd_error_set(DD_ERR_NOMEM, "out of memory");
            break;
        }
        dd_manifest *m;
        dd_status ls = dd_manifest_load(path, &m);
        free(path);
        if (ls != DD_OK) {
            dd_warn("skipping manifest: %s", dd_error_message());
            continue;
        }
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 8;
            dd_dataset_status *nv = realloc(*v, nc * sizeof *nv);
            if (!nv) {
                dd_manifest_destroy(m);
                s = dd_error_set(DD_ERR_NOMEM, "out of memory");
                break;
            }
            *v = nv;
            *cap = nc;
        }
        fill_row(m, root, &(*v)[(*n)++]);
        dd_manifest_destroy(m);
    }
    closedir(d);
    return s;
}

dd_status dd_cache_list(char *const *manifest_dirs, const char *root, dd_dataset_status **out,
                        size_t *n) {
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    dd_status s = DD_OK;
    for (char *const *d = manifest_dirs; s == DD_OK && *d; d++)
        s = list_dir(*d, root, out, n, &cap);
    if (s != DD_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
        return s;
    }
    if (*n > 1) qsort(*out, *n, sizeof **out, cmp_status);
    return DD_OK;
}
