/* distill — unpacking downloads with libarchive: single .gz files and tars,
 * extracted by hand (not archive_write_disk) so every path and link is
 * checked against the target directory before anything is created. */
#define _GNU_SOURCE
#include "data/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fs.h"

enum { UNPACK_BUF = 1 << 16 };

dd_status dd_archive_error(struct archive *a, const char *src, const char *what) {
    const char *msg = archive_error_string(a);
    return dd_error_set(DD_ERR_ARCHIVE, "%s: %s: %s", src, what,
                        msg ? msg : "unknown libarchive error");
}

static dd_status write_all(int fd, const void *buf, size_t n, const char *path) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return dd_error_set(DD_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return DD_OK;
}

/* Opens `src` as a single gzip'ed file positioned at its payload. */
static dd_status open_gz(const char *src, struct archive **out) {
    struct archive *a = archive_read_new();
    if (!a) return dd_error_set(DD_ERR_NOMEM, "%s: cannot create an archive reader", src);
    archive_read_support_filter_gzip(a);
    archive_read_support_format_raw(a);
    dd_status s = DD_OK;
    struct archive_entry *e;
    if (archive_read_open_filename(a, src, UNPACK_BUF) != ARCHIVE_OK)
        s = dd_archive_error(a, src, "cannot open");
    else if (archive_read_next_header(a, &e) != ARCHIVE_OK)
        s = dd_archive_error(a, src, "not a gzip file");
    else if (archive_filter_count(a) < 2 || archive_filter_code(a, 0) != ARCHIVE_FILTER_GZIP)
        s = dd_error_set(DD_ERR_ARCHIVE, "%s: not a gzip file", src);
    if (s != DD_OK) {
        archive_read_free(a);
        return s;
    }
    *out = a;
    return DD_OK;
}

dd_status dd_unpack_gz(const char *src, const char *dst, uint64_t limit,
                       uint8_t sha256[DD_SHA256_SIZE], uint64_t *size) {
    if (!src) return dd_error_set(DD_ERR_INVALID, "dd_unpack_gz: NULL source");
    struct archive *a = NULL;
    DD_TRY(open_gz(src, &a));
    dd_fs_atomic out = {0};
    void *buf = malloc(UNPACK_BUF);
    dd_status s = buf ? DD_OK : dd_error_set(DD_ERR_NOMEM, "out of memory");
    // The payload goes to a temporary file renamed over `dst` only once it
    // is complete (and fsync'ed), so a crash never leaves half of it there.
    if (s == DD_OK && dst) s = dd_fs_atomic_open_mode(&out, dst, 0644);
    dd_sha256 h;
    dd_sha256_init(&h);
    uint64_t total = 0;
    while (s == DD_OK) {
        la_ssize_t got = archive_read_data(a, buf, UNPACK_BUF);
        if (got < 0) {
            s = dd_archive_error(a, src, "corrupt or truncated gzip data");
            break;
        }
        if (got == 0) break;
        total += (uint64_t)got;
        if (total > limit) {
            s = dd_error_set(DD_ERR_ARCHIVE,
                             "%s: decompresses to more than the declared limit of %llu bytes", src,
                             (unsigned long long)limit);
            break;
        }
        dd_sha256_update(&h, buf, (size_t)got);
        if (out.f && fwrite(buf, 1, (size_t)got, out.f) != (size_t)got)
            s = dd_error_set(DD_ERR_IO, "%s: write failed: %s", dst, strerror(errno));
    }
    if (s == DD_OK && out.f) s = dd_fs_atomic_commit(&out);
    dd_fs_atomic_abort(&out);
    if (s == DD_OK && sha256) dd_sha256_final(&h, sha256);
    if (s == DD_OK && size) *size = total;
    free(buf);
    archive_read_free(a);
    return s;
}

/* Splits an archive path into clean components (dropping "." and empty
 * ones). Refuses absolute paths and "..". *out holds the components joined
 * by '/'; *depth is their number. */
static dd_status clean_path(const char *src, const char *entry, const char *raw, char *out,
                            size_t cap, int *depth) {
    if (raw[0] == '/')
        return dd_error_set(DD_ERR_ARCHIVE, "%s: entry '%s': absolute path refused", src, entry);
    size_t used = 0;
    int n = 0;
    const char *p = raw;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return dd_error_set(DD_ERR_ARCHIVE, "%s: entry '%s': '..' in a path refused", src,
                                entry);
        if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (used + len + 2 > cap)
                return dd_error_set(DD_ERR_ARCHIVE, "%s: entry '%s': path too long", src, entry);
            if (used) out[used++] = '/';
            memcpy(out + used, p, len);
            used += len;
            n++;
        }
        p += len;
        if (*p == '/') p++;
    }
    out[used] = '\0';
    *depth = n;
    return DD_OK;
}

/* A symbolic link may climb with leading ".." (no further than its own
 * directory's depth inside the target) and then only descend. Since every
 * link obeys this and nothing is created through a link, resolving any link
 * stays inside the target. */
static dd_status check_link_target(const char *src, const char *entry, const char *target,
                                   int parent_depth) {
    if (!*target)
        return dd_error_set(DD_ERR_ARCHIVE, "%s: entry '%s': empty symbolic link target", src,
                            entry);
    if (target[0] == '/')
        return dd_error_set(DD_ERR_ARCHIVE,
                            "%s: entry '%s': symbolic link to absolute path '%s' refused", src,
                            entry, target);
    int ups = 0, descended = 0;
    const char *p = target;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (descended || ++ups > parent_depth)
                return dd_error_set(
                    DD_ERR_ARCHIVE,
                    "%s: entry '%s': symbolic link target '%s' escapes the target directory", src,
                    entry, target);
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            descended = 1;
        }
        p += len;
        if (*p == '/') p++;
    }
    return DD_OK;
}

/* Creates the parent directories of `rel` under `root`, refusing to pass
 * through anything that is not a real directory. (Not base/fs's mkdir -p:
 * that one follows symbolic links, which an archive may have planted.) */
static dd_status make_parents(const char *src, const char *root, const char *rel,
                              int include_last) {
    char path[4096];
    size_t rl = strlen(root);
    if (rl + strlen(rel) + 2 > sizeof path)
        return dd_error_set(DD_ERR_ARCHIVE, "%s: path too long: %s", src, rel);
    memcpy(path, root, rl);
    path[rl] = '/';
    const char *p = rel;
    size_t used = rl + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash && !include_last) break;
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        memcpy(path + used, p, len);
        used += len;
        path[used] = '\0';
        struct stat st;
        if (lstat(path, &st) == 0) {
            if (S_ISLNK(st.st_mode))
                return dd_error_set(
                    DD_ERR_ARCHIVE,
                    "%s: entry '%s' would be written through the symbolic link '%s'", src, rel,
                    path + rl + 1);
            if (!S_ISDIR(st.st_mode))
                return dd_error_set(DD_ERR_ARCHIVE,
                                    "%s: entry '%s': '%s' exists and is not a directory", src, rel,
                                    path + rl + 1);
        } else if (errno != ENOENT || (mkdir(path, 0755) != 0 && errno != EEXIST)) {
            return dd_error_set(DD_ERR_IO, "%s: cannot create directory: %s", path,
                                strerror(errno));
        }
        if (!slash) break;
        path[used++] = '/';
        p = slash + 1;
    }
    return DD_OK;
}

/* Removes whatever non-directory is at `path` so the new entry can be
 * created without following an old link. */
static dd_status clear_slot(const char *src, const char *rel, const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return DD_OK;
    if (S_ISDIR(st.st_mode))
        return dd_error_set(DD_ERR_ARCHIVE, "%s: entry '%s' would replace a directory", src, rel);
    if (unlink(path) != 0)
        return dd_error_set(DD_ERR_IO, "%s: cannot replace: %s", path, strerror(errno));
    return DD_OK;
}

static dd_status extract_file(struct archive *a, const char *src, const char *rel, const char *path,
                              mode_t perm, void *buf, uint64_t limit, uint64_t *total) {
    DD_TRY(clear_slot(src, rel, path));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  (perm & 0111) ? 0755 : 0644);
    if (fd < 0) return dd_error_set(DD_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    dd_status s = DD_OK;
    for (;;) {
        la_ssize_t got = archive_read_data(a, buf, UNPACK_BUF);
        if (got < 0) {
            s = dd_archive_error(a, src, "corrupt or truncated archive");
            dd_error_prefix("entry '%s'", rel);
            break;
        }
        if (got == 0) break;
        *total += (uint64_t)got;
        if (*total > limit) {
            s = dd_error_set(DD_ERR_ARCHIVE,
                             "%s: extracts to more than the declared limit of %llu bytes (at '%s')",
                             src, (unsigned long long)limit, rel);
            break;
        }
        if ((s = write_all(fd, buf, (size_t)got, path)) != DD_OK) break;
    }
    if (close(fd) != 0 && s == DD_OK)
        s = dd_error_set(DD_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    return s;
}

static int is_reserved(const char *rel, const char *const *reserved) {
    for (; reserved && *reserved; reserved++)
        if (strncmp(rel, *reserved, strlen(*reserved)) == 0) return 1;
    return 0;
}

dd_status dd_unpack_tar(const char *src, const char *dst_dir, uint64_t limit, uint64_t *size) {
    return dd_unpack_tar_reserved(src, dst_dir, limit, NULL, size);
}

/* An entry that is a hard link to `hard`, a file extracted before (never
 * one of the `reserved` bookkeeping names of the target directory). */
static dd_status extract_hard_link(const char *src, const char *dst_dir, const char *raw,
                                   const char *rel, const char *path, const char *hard,
                                   const char *const *reserved) {
    char hrel[4096], hpath[8192];
    int hdepth;
    DD_TRY(clean_path(src, raw, hard, hrel, sizeof hrel, &hdepth));
    if (hdepth == 0)
        return dd_error_set(DD_ERR_ARCHIVE,
                            "%s: entry '%s': hard link to the target directory refused", src, raw);
    if (is_reserved(hrel, reserved))
        return dd_error_set(DD_ERR_ARCHIVE,
                            "%s: entry '%s': hard link to the cache's own file '%s' refused", src,
                            raw, hard);
    DD_TRY(make_parents(src, dst_dir, hrel, 0));
    snprintf(hpath, sizeof hpath, "%s/%s", dst_dir, hrel);
    struct stat hs;
    if (lstat(hpath, &hs) != 0 || !S_ISREG(hs.st_mode))
        return dd_error_set(DD_ERR_ARCHIVE,
                            "%s: entry '%s': hard link target '%s' is not a file extracted before",
                            src, raw, hard);
    DD_TRY(make_parents(src, dst_dir, rel, 0));
    DD_TRY(clear_slot(src, rel, path));
    if (link(hpath, path) != 0)
        return dd_error_set(DD_ERR_IO, "%s: cannot create hard link: %s", path, strerror(errno));
    return DD_OK;
}

static dd_status extract_symlink(const char *src, const char *dst_dir, const char *rel,
                                 const char *path, const char *target, int depth) {
    DD_TRY(check_link_target(src, rel, target ? target : "", depth - 1));
    DD_TRY(make_parents(src, dst_dir, rel, 0));
    DD_TRY(clear_slot(src, rel, path));
    if (symlink(target, path) != 0)
        return dd_error_set(DD_ERR_IO, "%s: cannot create symbolic link: %s", path,
                            strerror(errno));
    return DD_OK;
}

/* One archive entry, its path already cleaned to `rel` (`depth`
 * components); `total` counts the bytes extracted so far. */
static dd_status extract_entry(struct archive *a, struct archive_entry *e, const char *src,
                               const char *dst_dir, const char *raw, const char *rel, int depth,
                               const char *const *reserved, void *buf, uint64_t limit,
                               uint64_t *total) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dst_dir, rel);
    const char *hard = archive_entry_hardlink(e);
    mode_t type = archive_entry_filetype(e);
    if (hard) return extract_hard_link(src, dst_dir, raw, rel, path, hard, reserved);
    if (type == AE_IFDIR) return make_parents(src, dst_dir, rel, 1);
    if (type == AE_IFLNK)
        return extract_symlink(src, dst_dir, rel, path, archive_entry_symlink(e), depth);
    if (type != AE_IFREG)
        return dd_error_set(DD_ERR_ARCHIVE,
                            "%s: entry '%s': unsupported entry type (device, fifo or socket)", src,
                            raw);
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
        (uint64_t)archive_entry_size(e) > limit - *total)
        return dd_error_set(DD_ERR_ARCHIVE,
                            "%s: extracts to more than the declared limit of %llu bytes "
                            "(entry '%s' is %lld bytes)",
                            src, (unsigned long long)limit, rel, (long long)archive_entry_size(e));
    DD_TRY(make_parents(src, dst_dir, rel, 0));
    return extract_file(a, src, rel, path, archive_entry_perm(e), buf, limit, total);
}

static struct archive *open_tar_reader(int zip) {
    struct archive *a = archive_read_new();
    if (!a) return NULL;
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if (zip) archive_read_support_format_zip(a);
    return a;
}

static dd_status unpack_tree(const char *src, const char *dst_dir, uint64_t limit,
                             const char *const *reserved, int zip, uint64_t *size);

dd_status dd_unpack_tar_reserved(const char *src, const char *dst_dir, uint64_t limit,
                                 const char *const *reserved, uint64_t *size) {
    return unpack_tree(src, dst_dir, limit, reserved, 0, size);
}

dd_status dd_unpack_archive(const char *src, const char *dst_dir, uint64_t limit, uint64_t *size) {
    return unpack_tree(src, dst_dir, limit, NULL, 1, size);
}

static dd_status unpack_tree(const char *src, const char *dst_dir, uint64_t limit,
                             const char *const *reserved, int zip, uint64_t *size) {
    if (!src || !dst_dir) return dd_error_set(DD_ERR_INVALID, "dd_unpack_tar: NULL argument");
    struct stat st;
    if (stat(dst_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return dd_error_set(DD_ERR_IO, "%s: target directory does not exist", dst_dir);
    struct archive *a = open_tar_reader(zip);
    if (!a) return dd_error_set(DD_ERR_NOMEM, "%s: cannot create an archive reader", src);
    void *buf = malloc(UNPACK_BUF);
    dd_status s = buf ? DD_OK : dd_error_set(DD_ERR_NOMEM, "out of memory");
    uint64_t total = 0;
    int entries = 0;
    if (s == DD_OK && archive_read_open_filename(a, src, UNPACK_BUF) != ARCHIVE_OK)
        s = dd_archive_error(
            a, src, zip ? "cannot open as a tar or zip archive" : "cannot open as a tar archive");
    while (s == DD_OK) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            s = dd_archive_error(a, src,
                                 entries ? "corrupt or truncated archive"
                                 : zip   ? "not a readable tar or zip archive"
                                         : "not a readable tar archive");
            break;
        }
        entries++;
        const char *raw = archive_entry_pathname(e);
        if (!raw) {
            s = dd_error_set(DD_ERR_ARCHIVE, "%s: entry #%d has no path", src, entries);
            break;
        }
        char rel[4096];
        int depth;
        if ((s = clean_path(src, raw, raw, rel, sizeof rel, &depth)) != DD_OK) break;
        if (depth == 0) continue; // "./" itself
        if (is_reserved(rel, reserved))
            s = dd_error_set(DD_ERR_ARCHIVE, "%s: entry '%s' collides with the cache's own files",
                             src, raw);
        else
            s = extract_entry(a, e, src, dst_dir, raw, rel, depth, reserved, buf, limit, &total);
    }
    if (s == DD_OK && entries == 0) s = dd_error_set(DD_ERR_ARCHIVE, "%s: empty archive", src);
    if (s == DD_OK && size) *size = total;
    free(buf);
    archive_read_free(a);
    return s;
}
