/* distill — dataset fetching: manifest lookup, download over libcurl with
 * mirrors, retries and resume, checksum verification, and unpacking into the
 * cache under a per-dataset lock. Layout and rules: docs/datasets.md. */
#define _GNU_SOURCE
#include "data/fetch.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "distill/log.h"
#include "base/hash.h"
#include "data/manifest.h"
#include "data/unpack.h"

// Cache bookkeeping that lives beside the extracted data; archives may not
// write over it.
static const char *const reserved_names[] = {"downloads", ".lock", ".verified-", ".unpacked-",
                                             NULL};

typedef struct fetch_cfg {
    long connect_timeout_s, low_speed_limit, low_speed_time_s, backoff_ms;
    int attempts;
    int quiet;
} fetch_cfg;

/* ---- small helpers ---------------------------------------------------- */

static char *fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_alloc(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

static dd_status mkdir_p(const char *path) {
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return dd_error_set(DD_ERR_IO, "%s: bad directory path", path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return dd_error_set(DD_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return dd_error_set(DD_ERR_IO, "%s: not a directory", path);
    return DD_OK;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Reads a small marker file into buf; 0 if absent or unreadable. */
static int read_marker(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return 1;
}

/* Writes a marker atomically: temp file, fsync, rename. */
static dd_status write_marker(const char *path, const char *content) {
    char *tmp = fmt_alloc("%s.tmp", path);
    if (!tmp) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    dd_status s = DD_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(content);
    if (fd < 0 || write(fd, content, len) != (ssize_t)len || fsync(fd) != 0)
        s = dd_error_set(DD_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && s == DD_OK)
        s = dd_error_set(DD_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    if (s == DD_OK && rename(tmp, path) != 0)
        s = dd_error_set(DD_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (s != DD_OK) unlink(tmp);
    free(tmp);
    return s;
}

/* Identity of a file's current content for the .verified marker. */
static void stat_stamp(const struct stat *st, char *buf, size_t cap) {
    snprintf(buf, cap, "%lld %lld.%09ld\n", (long long)st->st_size, (long long)st->st_mtim.tv_sec,
             (long)st->st_mtim.tv_nsec);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Appends "; <text>" to a growing failure summary (best effort). */
static void note(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(char *buf, size_t cap, const char *fmt, ...) {
    size_t used = strlen(buf);
    if (used + 4 >= cap) return;
    if (used) {
        memcpy(buf + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, cap - used, fmt, ap);
    va_end(ap);
}

static fetch_cfg make_cfg(const dd_fetch_options *o) {
    fetch_cfg c;
    c.connect_timeout_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 30;
    c.low_speed_limit = o->low_speed_limit > 0 ? o->low_speed_limit : 1024;
    c.low_speed_time_s = o->low_speed_time_s > 0 ? o->low_speed_time_s : 60;
    c.attempts = o->retries < 0 ? 1 : 1 + (o->retries > 0 ? o->retries : 3);
    c.backoff_ms = o->backoff_ms > 0 ? o->backoff_ms : 1000;
    c.quiet = o->quiet;
    return c;
}

void dd_fetch_options_init(dd_fetch_options *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->verify = 1;
}

dd_status dd_fetch_cache_root(const dd_fetch_options *opt, char **out) {
    if (!out) return dd_error_set(DD_ERR_INVALID, "dd_fetch_cache_root: NULL argument");
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char *r;
    if (opt && opt->cache_dir && *opt->cache_dir)
        r = strdup(opt->cache_dir);
    else if (xdg && xdg[0] == '/')
        r = fmt_alloc("%s/distill", xdg);
    else if (home && *home)
        r = fmt_alloc("%s/.cache/distill", home);
    else
        return dd_error_set(DD_ERR_INVALID,
                            "no cache directory: set --cache-dir, XDG_CACHE_HOME or HOME");
    if (!r) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    *out = r;
    return DD_OK;
}

/* ---- verification ------------------------------------------------------ */

/* Applies the verification rule to the file at `path`: its own digest
 * matches the manifest's, or (gz with payload_sha256) the digest of its
 * decompressed payload does. `origin` (a URL or path) names the source in
 * the error. */
static dd_status verify_download(const dd_manifest *m, const dd_manifest_file *f, const char *path,
                                 const char *origin) {
    uint8_t sha[DD_SHA256_SIZE], md5[DD_MD5_SIZE];
    uint64_t size;
    int want_sha = f->has_sha256, want_md5 = f->has_md5;
    if (want_sha || want_md5) {
        DD_TRY(dd_hash_file(path, want_sha ? sha : NULL, want_md5 ? md5 : NULL, &size));
        int ok = (!want_sha || memcmp(sha, f->sha256, DD_SHA256_SIZE) == 0) &&
                 (!want_md5 || memcmp(md5, f->md5, DD_MD5_SIZE) == 0);
        if (ok) return DD_OK;
    }
    char got[2 * DD_SHA256_SIZE + 1], want[2 * DD_SHA256_SIZE + 1];
    char why[512] = "";
    if (want_sha) {
        dd_hex(f->sha256, DD_SHA256_SIZE, want);
        dd_hex(sha, DD_SHA256_SIZE, got);
        if (strcmp(want, got) != 0) note(why, sizeof why, "sha256 %s, expected %s", got, want);
    }
    if (want_md5) {
        dd_hex(f->md5, DD_MD5_SIZE, want);
        dd_hex(md5, DD_MD5_SIZE, got);
        if (strcmp(want, got) != 0) note(why, sizeof why, "md5 %s, expected %s", got, want);
    }
    if (f->has_payload_sha256) {
        uint8_t psha[DD_SHA256_SIZE];
        dd_status s = dd_unpack_gz(path, NULL, m->unpacked_limit, psha, NULL);
        if (s == DD_OK && memcmp(psha, f->payload_sha256, DD_SHA256_SIZE) == 0) {
            dd_debug("%s: accepted by the sha256 of its decompressed payload", f->name);
            return DD_OK;
        }
        if (s == DD_OK) {
            dd_hex(f->payload_sha256, DD_SHA256_SIZE, want);
            dd_hex(psha, DD_SHA256_SIZE, got);
            note(why, sizeof why, "payload sha256 %s, expected %s", got, want);
        } else {
            note(why, sizeof why, "payload unreadable: %s", dd_error_message());
        }
    }
    return dd_error_set(DD_ERR_CHECKSUM, "%s (from %s): checksum mismatch: %s", f->name, origin,
                        why);
}

/* ---- download ---------------------------------------------------------- */

typedef struct xfer {
    CURL *curl;
    FILE *fp;
    const char *part;
    curl_off_t offset; // bytes already in the .part file when the request started
    int checked;       // response code inspected
    int restarted;     // server ignored Range: the .part was truncated
    int write_failed;
    const fetch_cfg *cfg;
    const char *label;
    uint64_t hint; // manifest size, for the bar when the server sends no length
    dd_progress *bar;
} xfer;

static size_t on_write(char *data, size_t size, size_t nmemb, void *user) {
    xfer *x = user;
    size_t n = size * nmemb;
    if (!x->checked) {
        x->checked = 1;
        long code = 0;
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 400) return 0; // do not store an error page
        if (x->offset > 0 && code == 200) {
            // The server ignored the Range request and sends the whole file.
            if (fflush(x->fp) != 0 || ftruncate(fileno(x->fp), 0) != 0 ||
                fseeko(x->fp, 0, SEEK_SET) != 0) {
                x->write_failed = 1;
                return 0;
            }
            dd_debug("%s: server ignored the range request, restarting from 0", x->label);
            x->offset = 0;
            x->restarted = 1;
        }
    }
    if (fwrite(data, 1, n, x->fp) != n) {
        x->write_failed = 1;
        return 0;
    }
    return n;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    xfer *x = user;
    if (x->cfg->quiet || dlnow <= 0) return 0;
    if (!x->bar) {
        uint64_t total = dltotal > 0 ? (uint64_t)(x->offset + dltotal) : x->hint;
        if (dd_progress_create(x->label, total, "B", &x->bar) != DD_OK) x->bar = NULL;
    }
    if (x->bar) dd_progress_update(x->bar, (uint64_t)(x->offset + dlnow), NULL);
    (void)ultotal;
    (void)ulnow;
    return 0;
}

typedef enum { GET_OK, GET_RETRY, GET_RESTART, GET_NEXT_MIRROR, GET_FATAL } get_result;

/* Failures that say the host itself is unreachable: later files of the same
 * dataset skip that host instead of waiting out the same timeouts again. */
static int host_unreachable(CURLcode rc) {
    return rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
           rc == CURLE_COULDNT_CONNECT;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_failed;
static void init_curl(void) {
    curl_init_failed = curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK;
}

/* One attempt to fetch `url` into `part`, resuming from what `part` already
 * holds. On failure `why` describes it (without the URL). */
static get_result http_get(const char *url, const char *part, const fetch_cfg *cfg,
                           const char *label, uint64_t hint, int *resumed, int *unreachable,
                           char *why, size_t why_cap) {
    why[0] = '\0';
    *unreachable = 0;
    pthread_once(&curl_once, init_curl);
    if (curl_init_failed) {
        snprintf(why, why_cap, "cannot initialise libcurl");
        return GET_FATAL;
    }
    FILE *fp = fopen(part, "ab");
    if (!fp) {
        snprintf(why, why_cap, "%s: %s", part, strerror(errno));
        return GET_FATAL;
    }
    xfer x = {0};
    x.fp = fp;
    x.part = part;
    x.cfg = cfg;
    x.label = label;
    x.hint = hint;
    x.offset = (curl_off_t)ftello(fp);
    if (x.offset < 0) x.offset = 0;
    CURL *c = curl_easy_init();
    if (!c) {
        fclose(fp);
        snprintf(why, why_cap, "cannot initialise libcurl");
        return GET_FATAL;
    }
    x.curl = c;
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,ftp,ftps,file");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https,ftp,ftps");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "distill/" DD_VERSION_STRING);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, cfg->connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, cfg->low_speed_limit);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, cfg->low_speed_time_s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (x.offset > 0) curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, x.offset);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_off_t connect_us = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connect_us);
    curl_easy_cleanup(c);
    dd_progress_destroy(x.bar);
    int close_failed = fflush(fp) != 0 || fsync(fileno(fp)) != 0;
    if (fclose(fp) != 0) close_failed = 1;
    *resumed = x.offset > 0 && !x.restarted;

    if (x.write_failed || (rc == CURLE_OK && close_failed)) {
        snprintf(why, why_cap, "cannot write %s: %s", part, strerror(errno));
        return GET_FATAL;
    }
    if (code == 416 && x.offset > 0) {
        // Nothing left to send: the partial file may already be complete;
        // verification decides, and a failed resumed file is fetched afresh.
        return GET_OK;
    }
    if ((rc == CURLE_RANGE_ERROR || rc == CURLE_BAD_DOWNLOAD_RESUME) && x.offset > 0) {
        // libcurl refuses a 200 answer to a resume request, or the partial
        // file is longer than the source (file://, ftp://): start over.
        if (truncate(part, 0) != 0) {
            snprintf(why, why_cap, "cannot truncate %s: %s", part, strerror(errno));
            return GET_FATAL;
        }
        snprintf(why, why_cap, "server does not support resuming, restarting from the beginning");
        return GET_RESTART;
    }
    if (code >= 400) {
        snprintf(why, why_cap, "HTTP %ld", code);
        return code >= 500 || code == 408 || code == 429 ? GET_RETRY : GET_NEXT_MIRROR;
    }
    if (rc == CURLE_OK) return GET_OK;
    snprintf(why, why_cap, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    // A timeout before the connection was made is an unreachable host too.
    *unreachable = host_unreachable(rc) || (rc == CURLE_OPERATION_TIMEDOUT && connect_us == 0);
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP_RETURNED_ERROR:
        return GET_RETRY;
    default:
        return GET_NEXT_MIRROR;
    }
}

/* ---- per-file work ----------------------------------------------------- */

typedef struct ds_ctx {
    const dd_manifest *m;
    const dd_fetch_options *opt;
    fetch_cfg cfg;
    char *dir;         // <cache>/<dataset>
    char *downloads;   // <cache>/<dataset>/downloads
    char dead[8][256]; // "scheme://host[:port]" found unreachable during this call
    int n_dead;
} ds_ctx;

/* "scheme://authority" of a URL into buf ("" for file:// and odd URLs). */
static void url_host(const char *url, char *buf, size_t cap) {
    buf[0] = '\0';
    const char *sep = strstr(url, "://");
    if (!sep || strncmp(url, "file:", 5) == 0) return;
    const char *end = strchr(sep + 3, '/');
    size_t len = end ? (size_t)(end - url) : strlen(url);
    if (len < cap) snprintf(buf, cap, "%.*s", (int)len, url);
}

static int host_is_dead(const ds_ctx *c, const char *url) {
    char h[256];
    url_host(url, h, sizeof h);
    for (int i = 0; h[0] && i < c->n_dead; i++)
        if (strcmp(c->dead[i], h) == 0) return 1;
    return 0;
}

static void mark_dead(ds_ctx *c, const char *url) {
    char h[256];
    url_host(url, h, sizeof h);
    if (h[0] && c->n_dead < 8 && !host_is_dead(c, url))
        snprintf(c->dead[c->n_dead++], sizeof c->dead[0], "%s", h);
}

/* Downloads f into downloads/<name> from the mirrors in order. On success
 * *verified says whether the checksum was checked (it is skipped only for
 * extra mirrors with verify = 0). */
static dd_status download_file(ds_ctx *c, const dd_manifest_file *f, const char *dest,
                               int *verified) {
    char **urls = NULL;
    DD_TRY(dd_manifest_urls(c->m, f, &urls));
    size_t n_extra = 0, n_man = 0;
    for (const char *const *e = c->opt->extra_mirrors; e && *e; e++)
        n_extra++;
    while (urls[n_man])
        n_man++;
    if (n_extra + n_man == 0) {
        dd_manifest_dirs_free(urls);
        return dd_error_set(DD_ERR_NOT_FOUND, "dataset '%s': file '%s' has no mirror", c->m->name,
                            f->name);
    }
    char *part = fmt_alloc("%s.part", dest);
    if (!part) {
        dd_manifest_dirs_free(urls);
        return dd_error_set(DD_ERR_NOMEM, "out of memory");
    }
    char failures[3072] = "";
    int saw_checksum = 0;
    dd_status s = DD_ERR_NETWORK;
    for (size_t i = 0; i < n_extra + n_man && s != DD_OK; i++) {
        char *url = NULL;
        int extra = i < n_extra;
        if (extra) {
            dd_status js = dd_manifest_join_url(c->opt->extra_mirrors[i], 1, f->name, &url);
            if (js != DD_OK) {
                s = js;
                break;
            }
        } else {
            url = strdup(urls[i - n_extra]);
            if (!url) {
                s = dd_error_set(DD_ERR_NOMEM, "out of memory");
                break;
            }
        }
        if (host_is_dead(c, url)) {
            dd_info("skipping %s: its host was unreachable for an earlier file", url);
            note(failures, sizeof failures, "%s: skipped, host unreachable", url);
            free(url);
            continue;
        }
        int fresh_retry_done = 0;
        for (int attempt = 0; attempt < c->cfg.attempts; attempt++) {
            if (attempt > 0) {
                long wait = c->cfg.backoff_ms << (attempt - 1 < 16 ? attempt - 1 : 16);
                if (wait > 60000) wait = 60000;
                dd_info("retrying %s in %.1f s", url, (double)wait / 1000.0);
                sleep_ms(wait);
            }
            dd_info("downloading %s", url);
            char why[CURL_ERROR_SIZE + 256];
            int resumed = 0, unreachable = 0;
            get_result r = http_get(url, part, &c->cfg, f->name, f->size, &resumed, &unreachable,
                                    why, sizeof why);
            if (r == GET_FATAL) {
                s = dd_error_set(DD_ERR_IO, "dataset '%s': %s: %s", c->m->name, url, why);
                free(url);
                goto out;
            }
            if (r == GET_RESTART && !fresh_retry_done) {
                dd_info("%s: %s", url, why);
                fresh_retry_done = 1;
                attempt--;
                continue;
            }
            if (r != GET_OK) {
                dd_warn("%s: %s", url, why);
                if (r == GET_RETRY && attempt + 1 < c->cfg.attempts) continue;
                if (unreachable) mark_dead(c, url);
                note(failures, sizeof failures, "%s: %s", url, why);
                break;
            }
            if (extra && !c->opt->verify) {
                dd_warn("%s: not verified (verify: false), from %s", f->name, url);
                *verified = 0;
            } else {
                dd_status vs = verify_download(c->m, f, part, url);
                if (vs != DD_OK) {
                    // Never keep bytes that failed verification.
                    unlink(part);
                    if (vs != DD_ERR_CHECKSUM) {
                        s = vs;
                        free(url);
                        goto out;
                    }
                    dd_warn("%s", dd_error_message());
                    if (resumed && !fresh_retry_done) {
                        // The stale prefix may be what is wrong: one clean retry.
                        fresh_retry_done = 1;
                        attempt--;
                        continue;
                    }
                    saw_checksum = 1;
                    note(failures, sizeof failures, "%s", dd_error_message());
                    break;
                }
                *verified = 1;
            }
            if (rename(part, dest) != 0) {
                s = dd_error_set(DD_ERR_IO, "%s: cannot rename to %s: %s", part, dest,
                                 strerror(errno));
                free(url);
                goto out;
            }
            s = DD_OK;
            break;
        }
        free(url);
    }
    if (s != DD_OK)
        s = dd_error_set(saw_checksum ? DD_ERR_CHECKSUM : DD_ERR_NETWORK,
                         "dataset '%s': cannot fetch '%s' from any mirror: %s", c->m->name, f->name,
                         failures);
out:
    free(part);
    dd_manifest_dirs_free(urls);
    return s;
}

/* Turns a verified download `src` into the dataset directory's files. */
static dd_status install(const ds_ctx *c, const dd_manifest_file *f, const char *src) {
    char out[1024];
    const char *name = dd_manifest_file_output(f, out, sizeof out);
    switch (f->archive) {
    case DD_ARCHIVE_NONE:
    case DD_ARCHIVE_GZ: {
        char *dst = fmt_alloc("%s/%s", c->dir, name);
        if (!dst) return dd_error_set(DD_ERR_NOMEM, "out of memory");
        dd_status s;
        if (f->archive == DD_ARCHIVE_GZ) {
            s = dd_unpack_gz(src, dst, c->m->unpacked_limit, NULL, NULL);
        } else {
            // Plain files are hard-linked (same file system) or copied.
            unlink(dst);
            s = DD_OK;
            if (link(src, dst) != 0) {
                char *tmp = fmt_alloc("%s.tmp", dst);
                FILE *in = fopen(src, "rb"), *o = tmp ? fopen(tmp, "wb") : NULL;
                char buf[65536];
                size_t got;
                int bad = !in || !o;
                while (!bad && (got = fread(buf, 1, sizeof buf, in)) > 0)
                    if (fwrite(buf, 1, got, o) != got) bad = 1;
                if (in && ferror(in)) bad = 1;
                if (in) fclose(in);
                if (o && fclose(o) != 0) bad = 1;
                if (bad || rename(tmp, dst) != 0) {
                    s = dd_error_set(DD_ERR_IO, "cannot copy %s to %s: %s", src, dst,
                                     strerror(errno));
                    if (tmp) unlink(tmp);
                }
                free(tmp);
            }
        }
        free(dst);
        return s;
    }
    case DD_ARCHIVE_TAR:
    case DD_ARCHIVE_TAR_GZ:
        dd_info("unpacking %s", f->name);
        return dd_unpack_tar_reserved(src, c->dir, c->m->unpacked_limit, reserved_names, NULL);
    }
    return dd_error_set(DD_ERR_INVALID, "bad archive kind");
}

/* True if the install marker says `f` is in place and acceptable now. */
static int installed(const ds_ctx *c, const dd_manifest_file *f, const char *marker,
                     const char *expect_prefix) {
    char buf[4200];
    if (!read_marker(marker, buf, sizeof buf)) return 0;
    if (strncmp(buf, expect_prefix, strlen(expect_prefix)) != 0) return 0;
    if (c->opt->verify && strstr(buf, " unverified")) return 0;
    char out[1024], *path;
    const char *name = dd_manifest_file_output(f, out, sizeof out);
    if (!name) return 1;
    // A marker whose output was removed by hand is not trusted.
    path = fmt_alloc("%s/%s", c->dir, name);
    int ok = path && file_exists(path);
    free(path);
    return ok;
}

static dd_status ensure_cached_file(ds_ctx *c, const dd_manifest_file *f) {
    char *marker = fmt_alloc("%s/.unpacked-%s", c->dir, f->name);
    char *vmarker = fmt_alloc("%s/.verified-%s", c->dir, f->name);
    char *dl = fmt_alloc("%s/%s", c->downloads, f->name);
    dd_status s = DD_OK;
    if (!marker || !vmarker || !dl) {
        s = dd_error_set(DD_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (installed(c, f, marker, "cache ")) goto out;

    int verified = 0;
    struct stat st;
    if (lstat(dl, &st) == 0 && S_ISREG(st.st_mode)) {
        char stamp[128], have[128];
        stat_stamp(&st, stamp, sizeof stamp);
        if (read_marker(vmarker, have, sizeof have) && strcmp(have, stamp) == 0) {
            verified = 1;
        } else {
            // Completed earlier but never marked (crash, or copied in by hand).
            unlink(vmarker);
            s = verify_download(c->m, f, dl, dl);
            if (s == DD_OK) {
                verified = 1;
            } else if (s == DD_ERR_CHECKSUM) {
                dd_warn("%s; removing it", dd_error_message());
                unlink(dl);
                s = DD_OK;
            } else {
                goto out;
            }
        }
    }
    if (!verified) {
        if (c->opt->offline) {
            s = dd_error_set(
                DD_ERR_NOT_FOUND,
                "dataset '%s': '%s' is not in the cache (%s) and offline mode forbids downloading",
                c->m->name, f->name, c->dir);
            goto out;
        }
        unlink(vmarker);
        s = download_file(c, f, dl, &verified);
        if (s != DD_OK) goto out;
    }
    if (verified) {
        if (stat(dl, &st) != 0) {
            s = dd_error_set(DD_ERR_IO, "%s: %s", dl, strerror(errno));
            goto out;
        }
        char stamp[128];
        stat_stamp(&st, stamp, sizeof stamp);
        if ((s = write_marker(vmarker, stamp)) != DD_OK) goto out;
    }
    unlink(marker);
    if ((s = install(c, f, dl)) != DD_OK) goto out;
    s = write_marker(marker, verified ? "cache verified\n" : "cache unverified\n");
out:
    free(marker);
    free(vmarker);
    free(dl);
    return s;
}

/* ---- the lock ---------------------------------------------------------- */

static dd_status lock_dataset(const char *dir, const char *name, int *fd_out) {
    char *path = fmt_alloc("%s/.lock", dir);
    if (!path) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        dd_status s = dd_error_set(DD_ERR_IO, "%s: cannot open lock: %s", path, strerror(errno));
        free(path);
        return s;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) {
            dd_status s = dd_error_set(DD_ERR_IO, "%s: cannot lock: %s", path, strerror(errno));
            close(fd);
            free(path);
            return s;
        }
        dd_info("waiting for another distill process that is fetching '%s' (%s)", name, path);
        while (flock(fd, LOCK_EX) != 0) {
            if (errno != EINTR) {
                dd_status s = dd_error_set(DD_ERR_IO, "%s: cannot lock: %s", path, strerror(errno));
                close(fd);
                free(path);
                return s;
            }
        }
    }
    free(path);
    *fd_out = fd;
    return DD_OK;
}

static void unlock_dataset(int fd) {
    if (fd < 0) return;
    flock(fd, LOCK_UN);
    close(fd);
}

/* ---- local directories ------------------------------------------------- */

typedef enum { LOCAL_FINAL, LOCAL_ARCHIVE } local_kind;

/* Decides how file f is present in local_path and verifies it. */
static dd_status check_local(const ds_ctx *c, const dd_manifest_file *f, const char *lp,
                             local_kind *kind, int *verified) {
    char out[1024];
    const char *final_name = dd_manifest_file_output(f, out, sizeof out);
    char *dl = fmt_alloc("%s/%s", lp, f->name);
    char *fin = final_name ? fmt_alloc("%s/%s", lp, final_name) : NULL;
    dd_status s = DD_OK;
    if (!dl || (final_name && !fin)) {
        s = dd_error_set(DD_ERR_NOMEM, "out of memory");
        goto out;
    }
    *verified = 0;
    if (file_exists(dl)) {
        *kind = f->archive == DD_ARCHIVE_NONE ? LOCAL_FINAL : LOCAL_ARCHIVE;
        if (!c->opt->verify) {
            dd_warn("%s: not verified (verify: false)", dl);
        } else {
            s = verify_download(c->m, f, dl, dl);
            *verified = s == DD_OK;
        }
    } else if (f->archive == DD_ARCHIVE_GZ && file_exists(fin)) {
        *kind = LOCAL_FINAL;
        if (!c->opt->verify) {
            dd_warn("%s: not verified (verify: false)", fin);
        } else if (!f->has_payload_sha256) {
            s = dd_error_set(DD_ERR_CHECKSUM,
                             "%s: cannot verify a decompressed file (the manifest has no "
                             "payload_sha256 for %s); "
                             "provide %s or set verify: false",
                             fin, f->name, f->name);
        } else {
            uint8_t sha[DD_SHA256_SIZE];
            s = dd_hash_file(fin, sha, NULL, NULL);
            if (s == DD_OK && memcmp(sha, f->payload_sha256, DD_SHA256_SIZE) != 0) {
                char got[65], want[65];
                dd_hex(sha, DD_SHA256_SIZE, got);
                dd_hex(f->payload_sha256, DD_SHA256_SIZE, want);
                s = dd_error_set(DD_ERR_CHECKSUM,
                                 "%s: checksum mismatch: sha256 %s, expected %s (payload of %s)",
                                 fin, got, want, f->name);
            }
            *verified = s == DD_OK;
        }
    } else if (f->archive == DD_ARCHIVE_TAR || f->archive == DD_ARCHIVE_TAR_GZ) {
        // No archive: the directory must already hold its extracted tree.
        *kind = LOCAL_FINAL;
        if (c->opt->verify)
            s = dd_error_set(DD_ERR_NOT_FOUND,
                             "%s: not found, and an already extracted tree cannot be verified; "
                             "provide the archive "
                             "or set verify: false",
                             dl);
        else
            dd_warn("%s: archive absent, using %s as already extracted (not verified)", dl, lp);
    } else {
        s = dd_error_set(DD_ERR_NOT_FOUND, "dataset '%s': local path %s has neither %s%s%s",
                         c->m->name, lp, f->name, fin ? " nor " : "", fin ? final_name : "");
    }
out:
    free(dl);
    free(fin);
    return s;
}

static dd_status fetch_local(ds_ctx *c, const char *cache, char **root) {
    const char *lp = c->opt->local_path;
    struct stat st;
    if (stat(lp, &st) != 0 || !S_ISDIR(st.st_mode))
        return dd_error_set(DD_ERR_NOT_FOUND, "dataset '%s': local path '%s' is not a directory",
                            c->m->name, lp);
    char *abs = realpath(lp, NULL);
    if (!abs) return dd_error_set(DD_ERR_IO, "%s: %s", lp, strerror(errno));
    local_kind *kinds = calloc(c->m->n_files, sizeof *kinds);
    int *verified = calloc(c->m->n_files, sizeof *verified);
    dd_status s = DD_OK;
    int lock = -1, all_final = 1;
    if (!kinds || !verified) {
        s = dd_error_set(DD_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < c->m->n_files && s == DD_OK; i++) {
        s = check_local(c, &c->m->files[i], abs, &kinds[i], &verified[i]);
        if (kinds[i] != LOCAL_FINAL) all_final = 0;
    }
    if (s != DD_OK) goto out;
    if (all_final) {
        *root = abs;
        abs = NULL;
        goto out;
    }
    // Some files need unpacking: build the dataset dir in the cache, with
    // links to the files that are already final.
    c->dir = fmt_alloc("%s/%s", cache, c->m->name);
    if (!c->dir) {
        s = dd_error_set(DD_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((s = mkdir_p(c->dir)) != DD_OK || (s = lock_dataset(c->dir, c->m->name, &lock)) != DD_OK)
        goto out;
    for (size_t i = 0; i < c->m->n_files && s == DD_OK; i++) {
        const dd_manifest_file *f = &c->m->files[i];
        char out[1024];
        const char *final_name = dd_manifest_file_output(f, out, sizeof out);
        char *src =
            fmt_alloc("%s/%s", abs, kinds[i] == LOCAL_FINAL && final_name ? final_name : f->name);
        char *marker = fmt_alloc("%s/.unpacked-%s", c->dir, f->name);
        if (!src || !marker) {
            free(src);
            free(marker);
            s = dd_error_set(DD_ERR_NOMEM, "out of memory");
            break;
        }
        if (kinds[i] == LOCAL_FINAL) {
            if (final_name) {
                char *dst = fmt_alloc("%s/%s", c->dir, final_name);
                if (!dst) {
                    s = dd_error_set(DD_ERR_NOMEM, "out of memory");
                } else {
                    unlink(dst);
                    if (symlink(src, dst) != 0)
                        s = dd_error_set(DD_ERR_IO, "%s: cannot link to %s: %s", dst, src,
                                         strerror(errno));
                    free(dst);
                }
            } else {
                s = dd_error_set(
                    DD_ERR_UNSUPPORTED,
                    "dataset '%s': %s mixes an extracted tree with archives that need unpacking; "
                    "provide every archive",
                    c->m->name, abs);
            }
        } else {
            struct stat fs;
            char want[4200];
            if (stat(src, &fs) != 0) {
                s = dd_error_set(DD_ERR_IO, "%s: %s", src, strerror(errno));
            } else {
                snprintf(want, sizeof want, "local %s %lld %lld.%09ld %s\n", src,
                         (long long)fs.st_size, (long long)fs.st_mtim.tv_sec,
                         (long)fs.st_mtim.tv_nsec, verified[i] ? "verified" : "unverified");
                char have[4200];
                if (!(read_marker(marker, have, sizeof have) && strcmp(have, want) == 0 &&
                      installed(c, f, marker, "local "))) {
                    unlink(marker);
                    s = install(c, f, src);
                    if (s == DD_OK) s = write_marker(marker, want);
                }
            }
        }
        free(src);
        free(marker);
    }
    if (s == DD_OK) {
        *root = c->dir;
        c->dir = NULL;
    }
out:
    unlock_dataset(lock);
    free(kinds);
    free(verified);
    free(abs);
    return s;
}

/* ---- public entry points ----------------------------------------------- */

dd_status dd_fetch_dataset(const char *dataset, const dd_fetch_options *opt, char **root) {
    if (!dataset || !root) return dd_error_set(DD_ERR_INVALID, "dd_fetch_dataset: NULL argument");
    *root = NULL;
    dd_fetch_options defaults;
    dd_fetch_options_init(&defaults);
    if (!opt) opt = &defaults;
    dd_manifest *m = NULL;
    DD_TRY(dd_manifest_find(dataset, opt->manifest_dir, &m));
    ds_ctx c = {.m = m, .opt = opt, .cfg = make_cfg(opt)};
    char *cache = NULL;
    int lock = -1;
    dd_status s = dd_fetch_cache_root(opt, &cache);
    if (s != DD_OK) goto out;
    if (opt->local_path) {
        s = fetch_local(&c, cache, root);
        goto out;
    }
    c.dir = fmt_alloc("%s/%s", cache, m->name);
    c.downloads = fmt_alloc("%s/%s/downloads", cache, m->name);
    if (!c.dir || !c.downloads) {
        s = dd_error_set(DD_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((s = mkdir_p(c.downloads)) != DD_OK) goto out;
    if ((s = lock_dataset(c.dir, m->name, &lock)) != DD_OK) goto out;
    for (size_t i = 0; i < m->n_files && s == DD_OK; i++)
        s = ensure_cached_file(&c, &m->files[i]);
    if (s == DD_OK) {
        *root = c.dir;
        c.dir = NULL;
    }
out:
    unlock_dataset(lock);
    free(c.dir);
    free(c.downloads);
    free(cache);
    dd_manifest_destroy(m);
    return s;
}

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
        char *sub = fmt_alloc("%s/%s", path, e->d_name);
        if (sub) total += du(sub, depth + 1);
        free(sub);
    }
    closedir(d);
    return total;
}

static int cmp_status(const void *a, const void *b) {
    return strcmp(((const dd_dataset_status *)a)->name, ((const dd_dataset_status *)b)->name);
}

static dd_status list_dir(const char *dir, const char *cache, dd_dataset_status **v, size_t *n,
                          size_t *cap) {
    DIR *d = opendir(dir);
    if (!d) return DD_OK;
    struct dirent *e;
    dd_status s = DD_OK;
    while (s == DD_OK && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0) continue;
        int dup = 0;
        for (size_t i = 0; i < *n; i++)
            if (strlen((*v)[i].name) == len - 5 && strncmp((*v)[i].name, e->d_name, len - 5) == 0)
                dup = 1;
        if (dup) continue;
        char *path = fmt_alloc("%s/%s", dir, e->d_name);
        if (!path) {
            s = dd_error_set(DD_ERR_NOMEM, "out of memory");
            break;
        }
        dd_manifest *m;
        if (dd_manifest_load(path, &m) != DD_OK) {
            dd_warn("skipping manifest: %s", dd_error_message());
            free(path);
            continue;
        }
        free(path);
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
        dd_dataset_status *row = &(*v)[(*n)++];
        memset(row, 0, sizeof *row);
        snprintf(row->name, sizeof row->name, "%s", m->name);
        snprintf(row->description, sizeof row->description, "%s", m->description);
        char *dsdir = fmt_alloc("%s/%s", cache, m->name);
        row->cached = dsdir != NULL;
        for (size_t i = 0; i < m->n_files; i++) {
            row->download_bytes += m->files[i].size;
            char *marker = dsdir ? fmt_alloc("%s/.unpacked-%s", dsdir, m->files[i].name) : NULL;
            if (!marker || !file_exists(marker)) row->cached = 0;
            free(marker);
        }
        row->bytes = dsdir ? du(dsdir, 0) : 0;
        free(dsdir);
        dd_manifest_destroy(m);
    }
    closedir(d);
    return s;
}

dd_status dd_fetch_list(const dd_fetch_options *opt, dd_dataset_status **out, size_t *n) {
    if (!out || !n) return dd_error_set(DD_ERR_INVALID, "dd_fetch_list: NULL argument");
    *out = NULL;
    *n = 0;
    char **dirs = NULL, *cache = NULL;
    DD_TRY(dd_manifest_dirs(opt ? opt->manifest_dir : NULL, &dirs));
    dd_status s = dd_fetch_cache_root(opt, &cache);
    size_t cap = 0;
    for (char **d = dirs; s == DD_OK && *d; d++)
        s = list_dir(*d, cache, out, n, &cap);
    dd_manifest_dirs_free(dirs);
    free(cache);
    if (s != DD_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
        return s;
    }
    if (*n > 1) qsort(*out, *n, sizeof **out, cmp_status);
    return DD_OK;
}
