/* distill — filesystem helpers: mkdir -p, whole-file reads, atomic writes. */
#define _POSIX_C_SOURCE 200809L
#include "base/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

dd_status dd_fs_mkdir_p(const char *path) {
    return dd_fs_mkdir_p_mode(path, 0777);
}

dd_status dd_fs_mkdir_p_mode(const char *path, mode_t mode) {
    if (!path || !*path) return dd_error_set(DD_ERR_INVALID, "empty directory path");
    size_t len = strlen(path);
    char *buf = malloc(len + 1);
    if (!buf) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    memcpy(buf, path, len + 1);
    dd_status s = DD_OK;
    for (size_t i = 1; i <= len && s == DD_OK; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        struct stat st;
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            s = dd_error_set(DD_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
        else if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
            s = dd_error_set(DD_ERR_IO, "%s: exists and is not a directory", buf);
        buf[i] = c;
    }
    free(buf);
    return s;
}

char *dd_fs_join(const char *dir, const char *name) {
    size_t dl = strlen(dir), nl = strlen(name);
    char *p = malloc(dl + nl + 2);
    if (!p) return NULL;
    memcpy(p, dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, name, nl + 1);
    return p;
}

int dd_fs_is_file(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

dd_status dd_fs_read_file(const char *path, size_t max_bytes, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return dd_error_set(DD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    dd_status s = buf ? DD_OK : dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
    while (s == DD_OK) {
        if (n == cap) {
            if (cap > max_bytes) break;
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb) {
                s = dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (s == DD_OK && ferror(f)) s = dd_error_set(DD_ERR_IO, "%s: read error", path);
    if (s == DD_OK && n > max_bytes)
        s = dd_error_set(DD_ERR_INVALID, "%s: larger than %zu bytes", path, max_bytes);
    fclose(f);
    if (s != DD_OK) {
        free(buf);
        return s;
    }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return DD_OK;
}

/* Creates "<path>.tmp.XXXXXX" with open(2)'s `mode`, so the umask applies
 * (mkstemp always makes 0600); O_EXCL makes a name taken meanwhile, or a
 * planted link, a retry rather than a hazard. */
static int create_temp(const char *path, char *tmp, size_t cap, mode_t mode) {
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 42) ^
                 (uint64_t)(uintptr_t)tmp;
    for (int attempt = 0; attempt < 100; attempt++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        uint64_t y = x >> 16;
        char suffix[7];
        for (int i = 0; i < 6; i++, y /= 62)
            suffix[i] = digits[y % 62];
        suffix[6] = '\0';
        snprintf(tmp, cap, "%s.tmp.%s", path, suffix);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

/* use_mode: the temporary gets `mode` & ~umask; else 0644 whatever the umask. */
static dd_status atomic_open(dd_fs_atomic *a, const char *path, int use_mode, mode_t mode) {
    memset(a, 0, sizeof *a);
    size_t n = strlen(path) + 16;
    a->path = strdup(path);
    a->tmp = malloc(n);
    if (!a->path || !a->tmp) {
        dd_fs_atomic_abort(a);
        return dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
    }
    int fd;
    if (use_mode) {
        fd = create_temp(path, a->tmp, n, mode);
    } else {
        snprintf(a->tmp, n, "%s.tmp.XXXXXX", path);
        fd = mkstemp(a->tmp);
    }
    if (fd < 0) {
        dd_status s = dd_error_set(DD_ERR_IO, "%s: cannot create a temporary file: %s", path,
                                   strerror(errno));
        free(a->tmp);
        a->tmp = NULL;
        dd_fs_atomic_abort(a);
        return s;
    }
    // mkstemp creates 0600; outputs are shared like ordinary files. (Reading
    // the umask would need umask(), which is racy between threads.)
    if (!use_mode) (void)fchmod(fd, 0644);
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        dd_status s = dd_error_set(DD_ERR_IO, "%s: %s", a->tmp, strerror(errno));
        close(fd);
        dd_fs_atomic_abort(a);
        return s;
    }
    return DD_OK;
}

dd_status dd_fs_atomic_open(dd_fs_atomic *a, const char *path) {
    return atomic_open(a, path, 0, 0);
}

dd_status dd_fs_atomic_open_mode(dd_fs_atomic *a, const char *path, mode_t mode) {
    return atomic_open(a, path, 1, mode);
}

void dd_fs_atomic_abort(dd_fs_atomic *a) {
    if (!a) return;
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    memset(a, 0, sizeof *a);
}

// Makes a rename in path's directory durable (best effort: a directory that
// cannot be opened or synced leaves the rename as the kernel has it).
static void sync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = !slash          ? strdup(".")
                : slash == path ? strdup("/")
                                : strndup(path, (size_t)(slash - path));
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

dd_status dd_fs_atomic_commit(dd_fs_atomic *a) {
    dd_status s = DD_OK;
    if (fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0)
        s = dd_error_set(DD_ERR_IO, "%s: write failed: %s", a->path, strerror(errno));
    int rc = fclose(a->f);
    a->f = NULL;
    if (rc != 0 && s == DD_OK)
        s = dd_error_set(DD_ERR_IO, "%s: write failed: %s", a->path, strerror(errno));
    if (s == DD_OK && rename(a->tmp, a->path) != 0)
        s = dd_error_set(DD_ERR_IO, "%s: cannot rename %s over it: %s", a->path, a->tmp,
                         strerror(errno));
    if (s == DD_OK) {
        free(a->tmp);
        a->tmp = NULL;
        sync_parent(a->path);
    }
    dd_fs_atomic_abort(a);
    return s;
}

void dd_fs_atomic_remove_stale(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t blen = strlen(base);
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    char *dir = !slash ? strdup(".") : dlen ? strndup(path, dlen) : strdup("/");
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        // Exactly the names dd_fs_atomic_open makes: "<base>.tmp.XXXXXX".
        const char *rest = e->d_name + blen;
        if (strncmp(e->d_name, base, blen) != 0 || strncmp(rest, ".tmp.", 5) != 0 ||
            strlen(rest + 5) != 6)
            continue;
        char *stale = dd_fs_join(dir, e->d_name);
        if (stale) unlink(stale);
        free(stale);
    }
    if (d) closedir(d);
    free(dir);
}

static dd_status write_file(const char *path, const void *data, size_t len, int use_mode,
                            mode_t mode) {
    dd_fs_atomic a;
    DD_TRY(atomic_open(&a, path, use_mode, mode));
    if (len && fwrite(data, 1, len, a.f) != len) {
        dd_status s = dd_error_set(DD_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        dd_fs_atomic_abort(&a);
        return s;
    }
    return dd_fs_atomic_commit(&a);
}

dd_status dd_fs_write_file(const char *path, const void *data, size_t len) {
    return write_file(path, data, len, 0, 0);
}

dd_status dd_fs_write_file_mode(const char *path, const void *data, size_t len, mode_t mode) {
    return write_file(path, data, len, 1, mode);
}
