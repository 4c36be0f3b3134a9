/* distill — fetching a dataset: manifest, then for each file the cache, the
 * mirrors in order (data/transport), checksum verification and installing
 * into the cache (data/cache); or a local directory instead of mirrors.
 * Layout and rules: docs/datasets.md. */
#define _GNU_SOURCE
#include "data/fetch.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distill/log.h"
#include "base/fs.h"
#include "base/hash.h"
#include "base/strbuf.h"
#include "data/cache.h"
#include "data/manifest.h"
#include "data/transport.h"
#include "data/unpack.h"

typedef struct ds_ctx {
    const dd_manifest *m;
    const dd_fetch_options *opt;
    dd_transport_cfg cfg;
    dd_cache_dataset cache; // <cache>/<dataset>, locked
    char dead[8][256];      // "scheme://host[:port]" found unreachable during this call
    int n_dead;
} ds_ctx;

/* Starts the next item of a "; "-separated summary. */
static void next_item(dd_strbuf *b) {
    if (b->len) dd_strbuf_append(b, "; ", 2);
}

static dd_transport_cfg make_cfg(const dd_fetch_options *o) {
    dd_transport_cfg c;
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
    return dd_cache_root(opt ? opt->cache_dir : NULL, out);
}

/* ---- verification ------------------------------------------------------ */

/* Appends why the digest of `what` differs ("" when it matches). */
static void note_mismatch(dd_strbuf *why, const char *what, const uint8_t *got, const uint8_t *want,
                          size_t n) {
    char g[2 * DD_SHA256_SIZE + 1], w[2 * DD_SHA256_SIZE + 1];
    dd_hex(want, n, w);
    dd_hex(got, n, g);
    if (strcmp(w, g) == 0) return;
    next_item(why);
    dd_strbuf_printf(why, "%s %s, expected %s", what, g, w);
}

/* The payload rule (gz with payload_sha256): 1 if the decompressed payload
 * has the manifest's digest, else 0 with the reason noted. */
static int payload_matches(const dd_manifest *m, const dd_manifest_file *f, const char *path,
                           dd_strbuf *why) {
    uint8_t psha[DD_SHA256_SIZE];
    dd_status s = dd_unpack_gz(path, NULL, m->unpacked_limit, psha, NULL);
    if (s == DD_OK && memcmp(psha, f->payload_sha256, DD_SHA256_SIZE) == 0) {
        dd_debug("%s: accepted by the sha256 of its decompressed payload", f->name);
        return 1;
    }
    if (s == DD_OK) {
        note_mismatch(why, "payload sha256", psha, f->payload_sha256, DD_SHA256_SIZE);
    } else {
        next_item(why);
        dd_strbuf_printf(why, "payload unreadable: %s", dd_error_message());
    }
    return 0;
}

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
    dd_strbuf why = DD_STRBUF_INIT;
    if (want_sha) note_mismatch(&why, "sha256", sha, f->sha256, DD_SHA256_SIZE);
    if (want_md5) note_mismatch(&why, "md5", md5, f->md5, DD_MD5_SIZE);
    if (f->has_payload_sha256 && payload_matches(m, f, path, &why)) {
        dd_strbuf_free(&why);
        return DD_OK;
    }
    dd_status s = dd_error_set(DD_ERR_CHECKSUM, "%s (from %s): checksum mismatch: %s", f->name,
                               origin, dd_strbuf_str(&why));
    dd_strbuf_free(&why);
    return s;
}

/* ---- download from the mirrors ----------------------------------------- */

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

/* What check_download needs: the verification rule is skipped (warned)
 * only for an extra mirror with verify = 0. */
typedef struct verify_ctx {
    const ds_ctx *c;
    const dd_manifest_file *f;
    int extra;
    int *verified;
    int failed; // verification itself failed (not a mismatch)
} verify_ctx;

/* The transport's judgement of a complete download (dd_transport_check). */
static dd_status check_download(void *ctx, const char *part, const char *url) {
    verify_ctx *k = ctx;
    if (k->extra && !k->c->opt->verify) {
        dd_warn("%s: not verified (verify: false), from %s", k->f->name, url);
        *k->verified = 0;
        return DD_OK;
    }
    dd_status s = verify_download(k->c->m, k->f, part, url);
    if (s == DD_OK) *k->verified = 1;
    if (s != DD_OK && s != DD_ERR_CHECKSUM) k->failed = 1;
    return s;
}

/* What the mirrors tried so far said, for the error if all fail. */
typedef struct mirror_log {
    dd_strbuf failures;
    int saw_checksum;
} mirror_log;

/* Tries one mirror: *done when `dest` now holds the checked file. Returns an
 * error only for failures no other mirror can cure. */
static dd_status try_mirror(ds_ctx *c, const dd_manifest_file *f, const char *url, int extra,
                            const char *dest, const char *part, mirror_log *log, int *verified,
                            int *done) {
    *done = 0;
    if (host_is_dead(c, url)) {
        dd_info("skipping %s: its host was unreachable for an earlier file", url);
        next_item(&log->failures);
        dd_strbuf_printf(&log->failures, "%s: skipped, host unreachable", url);
        return DD_OK;
    }
    verify_ctx k = {.c = c, .f = f, .extra = extra, .verified = verified};
    dd_transport_req rq = {.url = url,
                           .part = part,
                           .label = f->name,
                           .size_hint = f->size,
                           .check = check_download,
                           .check_ctx = &k};
    dd_transport_result r;
    dd_status s = dd_transport_download(&rq, &c->cfg, &r);
    if (s != DD_OK) {
        if (!k.failed) dd_error_prefix("dataset '%s'", c->m->name);
        return s;
    }
    if (r.ok) {
        if (rename(part, dest) != 0)
            return dd_error_set(DD_ERR_IO, "%s: cannot rename to %s: %s", part, dest,
                                strerror(errno));
        *done = 1;
        return DD_OK;
    }
    next_item(&log->failures);
    if (r.rejected) {
        log->saw_checksum = 1;
        dd_strbuf_printf(&log->failures, "%s", dd_error_message());
    } else {
        if (r.unreachable) mark_dead(c, url);
        dd_strbuf_printf(&log->failures, "%s: %s", url, r.why);
    }
    return DD_OK;
}

/* The i-th URL to try for f: the extra mirrors first, then the manifest's. */
static dd_status mirror_url(const ds_ctx *c, const dd_manifest_file *f, char **urls, size_t n_extra,
                            size_t i, char **out) {
    if (i < n_extra) return dd_manifest_join_url(c->opt->extra_mirrors[i], 1, f->name, out);
    *out = strdup(urls[i - n_extra]);
    return *out ? DD_OK : dd_error_set(DD_ERR_NOMEM, "out of memory");
}

/* Downloads f into `dest` from the mirrors in order. On success *verified
 * says whether the checksum was checked (it is skipped only for extra
 * mirrors with verify = 0). */
static dd_status download_file(ds_ctx *c, const dd_manifest_file *f, const char *dest,
                               int *verified) {
    char **urls = NULL;
    DD_TRY(dd_manifest_urls(c->m, f, &urls));
    size_t n_extra = 0, n_man = 0;
    for (const char *const *e = c->opt->extra_mirrors; e && *e; e++)
        n_extra++;
    while (urls[n_man])
        n_man++;
    dd_strbuf part = DD_STRBUF_INIT;
    dd_strbuf_printf(&part, "%s.part", dest);
    mirror_log log = {DD_STRBUF_INIT, 0};
    dd_status s = dd_strbuf_status(&part);
    if (s == DD_OK && n_extra + n_man == 0)
        s = dd_error_set(DD_ERR_NOT_FOUND, "dataset '%s': file '%s' has no mirror", c->m->name,
                         f->name);
    int done = 0;
    for (size_t i = 0; s == DD_OK && !done && i < n_extra + n_man; i++) {
        char *url = NULL;
        s = mirror_url(c, f, urls, n_extra, i, &url);
        if (s == DD_OK)
            s = try_mirror(c, f, url, i < n_extra, dest, dd_strbuf_str(&part), &log, verified,
                           &done);
        free(url);
    }
    if (s == DD_OK && !done)
        s = dd_error_set(log.saw_checksum ? DD_ERR_CHECKSUM : DD_ERR_NETWORK,
                         "dataset '%s': cannot fetch '%s' from any mirror: %s", c->m->name, f->name,
                         dd_strbuf_str(&log.failures));
    dd_strbuf_free(&log.failures);
    dd_strbuf_free(&part);
    dd_manifest_dirs_free(urls);
    return s;
}

/* ---- one file through the cache ---------------------------------------- */

/* An earlier download of f: trusted while its .verified marker matches it,
 * else verified now (and removed if it fails). */
static dd_status reuse_download(ds_ctx *c, const dd_manifest_file *f, const char *dl,
                                int *verified) {
    *verified = 0;
    if (!dd_cache_download_present(&c->cache, f->name)) return DD_OK;
    if (dd_cache_download_verified(&c->cache, f->name)) {
        *verified = 1;
        return DD_OK;
    }
    // Completed earlier but never marked (crash, or copied in by hand).
    dd_cache_unmark(&c->cache, DD_CACHE_VERIFIED, f->name);
    dd_status s = verify_download(c->m, f, dl, dl);
    if (s == DD_OK) {
        *verified = 1;
    } else if (s == DD_ERR_CHECKSUM) {
        dd_warn("%s; removing it", dd_error_message());
        unlink(dl);
        s = DD_OK;
    }
    return s;
}

static dd_status ensure_cached_file(ds_ctx *c, const dd_manifest_file *f) {
    if (dd_cache_installed(&c->cache, f, "cache ", c->opt->verify)) return DD_OK;
    char *dl = dd_fs_join(c->cache.downloads, f->name);
    if (!dl) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    int verified = 0;
    dd_status s = reuse_download(c, f, dl, &verified);
    if (s == DD_OK && !verified) {
        if (c->opt->offline) {
            s = dd_error_set(
                DD_ERR_NOT_FOUND,
                "dataset '%s': '%s' is not in the cache (%s) and offline mode forbids downloading",
                c->m->name, f->name, c->cache.dir);
        } else {
            dd_cache_unmark(&c->cache, DD_CACHE_VERIFIED, f->name);
            s = download_file(c, f, dl, &verified);
        }
    }
    if (s == DD_OK && verified) s = dd_cache_mark_verified(&c->cache, f->name);
    if (s == DD_OK)
        s = dd_cache_install(&c->cache, c->m, f, dl,
                             verified ? "cache verified\n" : "cache unverified\n");
    free(dl);
    return s;
}

/* ---- local directories ------------------------------------------------- */

typedef enum { LOCAL_FINAL, LOCAL_ARCHIVE } local_kind;

/* A decompressed file `fin` standing in for gz file f: checked against the
 * manifest's payload_sha256. */
static dd_status check_decompressed(const ds_ctx *c, const dd_manifest_file *f, const char *fin,
                                    int *verified) {
    if (!c->opt->verify) {
        dd_warn("%s: not verified (verify: false)", fin);
        return DD_OK;
    }
    if (!f->has_payload_sha256)
        return dd_error_set(DD_ERR_CHECKSUM,
                            "%s: cannot verify a decompressed file (the manifest has no "
                            "payload_sha256 for %s); "
                            "provide %s or set verify: false",
                            fin, f->name, f->name);
    uint8_t sha[DD_SHA256_SIZE];
    DD_TRY(dd_hash_file(fin, sha, NULL, NULL));
    if (memcmp(sha, f->payload_sha256, DD_SHA256_SIZE) != 0) {
        char got[65], want[65];
        dd_hex(sha, DD_SHA256_SIZE, got);
        dd_hex(f->payload_sha256, DD_SHA256_SIZE, want);
        return dd_error_set(DD_ERR_CHECKSUM,
                            "%s: checksum mismatch: sha256 %s, expected %s (payload of %s)", fin,
                            got, want, f->name);
    }
    *verified = 1;
    return DD_OK;
}

/* Decides how file f is present in local_path `lp` (dl: as downloaded, fin:
 * in its final form) and verifies it. */
static dd_status classify_local(const ds_ctx *c, const dd_manifest_file *f, const char *lp,
                                const char *dl, const char *fin, const char *final_name,
                                local_kind *kind, int *verified) {
    if (dd_fs_is_file(dl)) {
        *kind = f->archive == DD_ARCHIVE_NONE ? LOCAL_FINAL : LOCAL_ARCHIVE;
        if (!c->opt->verify) {
            dd_warn("%s: not verified (verify: false)", dl);
            return DD_OK;
        }
        DD_TRY(verify_download(c->m, f, dl, dl));
        *verified = 1;
        return DD_OK;
    }
    if (f->archive == DD_ARCHIVE_GZ && dd_fs_is_file(fin)) {
        *kind = LOCAL_FINAL;
        return check_decompressed(c, f, fin, verified);
    }
    if (f->archive == DD_ARCHIVE_TAR || f->archive == DD_ARCHIVE_TAR_GZ) {
        // No archive: the directory must already hold its extracted tree.
        *kind = LOCAL_FINAL;
        if (c->opt->verify)
            return dd_error_set(DD_ERR_NOT_FOUND,
                                "%s: not found, and an already extracted tree cannot be "
                                "verified; provide the archive or set verify: false",
                                dl);
        dd_warn("%s: archive absent, using %s as already extracted (not verified)", dl, lp);
        return DD_OK;
    }
    return dd_error_set(DD_ERR_NOT_FOUND, "dataset '%s': local path %s has neither %s%s%s",
                        c->m->name, lp, f->name, fin ? " nor " : "", fin ? final_name : "");
}

static dd_status check_local(const ds_ctx *c, const dd_manifest_file *f, const char *lp,
                             local_kind *kind, int *verified) {
    char out[1024];
    const char *final_name = dd_manifest_file_output(f, out, sizeof out);
    char *dl = dd_fs_join(lp, f->name);
    char *fin = final_name ? dd_fs_join(lp, final_name) : NULL;
    *verified = 0;
    dd_status s;
    if (!dl || (final_name && !fin))
        s = dd_error_set(DD_ERR_NOMEM, "out of memory");
    else
        s = classify_local(c, f, lp, dl, fin, final_name, kind, verified);
    free(dl);
    free(fin);
    return s;
}

/* Brings local file f (found as `kind` in `abs`) into the cache's dataset
 * directory: a final file is linked, an archive unpacked once. */
static dd_status install_local(ds_ctx *c, const dd_manifest_file *f, const char *abs,
                               local_kind kind, int verified) {
    char out[1024];
    const char *final_name = dd_manifest_file_output(f, out, sizeof out);
    if (kind == LOCAL_FINAL && !final_name)
        return dd_error_set(
            DD_ERR_UNSUPPORTED,
            "dataset '%s': %s mixes an extracted tree with archives that need unpacking; "
            "provide every archive",
            c->m->name, abs);
    char *src = dd_fs_join(abs, kind == LOCAL_FINAL ? final_name : f->name);
    if (!src) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    dd_status s = DD_OK;
    struct stat st;
    if (kind == LOCAL_FINAL) {
        s = dd_cache_link(&c->cache, final_name, src);
    } else if (stat(src, &st) != 0) {
        s = dd_error_set(DD_ERR_IO, "%s: %s", src, strerror(errno));
    } else {
        dd_strbuf want = DD_STRBUF_INIT;
        dd_strbuf_printf(&want, "local %s %lld %lld.%09ld %s\n", src, (long long)st.st_size,
                         (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec,
                         verified ? "verified" : "unverified");
        s = dd_strbuf_status(&want);
        if (s == DD_OK &&
            !(dd_cache_marker_is(&c->cache, DD_CACHE_UNPACKED, f->name, dd_strbuf_str(&want)) &&
              dd_cache_installed(&c->cache, f, "local ", c->opt->verify)))
            s = dd_cache_install(&c->cache, c->m, f, src, dd_strbuf_str(&want));
        dd_strbuf_free(&want);
    }
    free(src);
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
    size_t n = c->m->n_files;
    local_kind *kinds = calloc(n, sizeof *kinds);
    int *verified = calloc(n, sizeof *verified);
    dd_status s = kinds && verified ? DD_OK : dd_error_set(DD_ERR_NOMEM, "out of memory");
    int all_final = 1;
    for (size_t i = 0; i < n && s == DD_OK; i++) {
        s = check_local(c, &c->m->files[i], abs, &kinds[i], &verified[i]);
        if (kinds[i] != LOCAL_FINAL) all_final = 0;
    }
    if (s == DD_OK && all_final) {
        *root = abs;
        abs = NULL;
    } else if (s == DD_OK) {
        // Some files need unpacking: build a dataset dir with links to the
        // files that are already final. It lives apart from the verified
        // download cache (<cache>/+local/<dataset>-<hash of the path>), so a
        // local, perhaps unverified, copy never replaces verified files.
        char *local_root = dd_fs_join(cache, "+local"); // "+": no dataset is named so
        char name[160];
        uint8_t h[DD_SHA256_SIZE];
        char hex[2 * DD_SHA256_SIZE + 1];
        dd_sha256 sh;
        dd_sha256_init(&sh);
        dd_sha256_update(&sh, abs, strlen(abs));
        dd_sha256_final(&sh, h);
        dd_hex(h, DD_SHA256_SIZE, hex);
        snprintf(name, sizeof name, "%s-%.16s", c->m->name, hex);
        s = local_root ? dd_cache_open(local_root, name, 0, &c->cache)
                       : dd_error_set(DD_ERR_NOMEM, "out of memory");
        free(local_root);
        for (size_t i = 0; i < n && s == DD_OK; i++)
            s = install_local(c, &c->m->files[i], abs, kinds[i], verified[i]);
        if (s == DD_OK) {
            *root = c->cache.dir;
            c->cache.dir = NULL;
        }
    }
    free(kinds);
    free(verified);
    free(abs);
    return s;
}

/* ---- the user's own files (DD_DATASET_LOCAL readers) -------------------- */

static int is_archive_name(const char *p) {
    static const char *const ext[] = {".tar",    ".tar.gz", ".tgz", ".tar.bz2",
                                      ".tar.xz", ".zip",    NULL};
    size_t n = strlen(p);
    for (const char *const *e = ext; *e; e++) {
        size_t k = strlen(*e);
        if (n > k && strcasecmp(p + n - k, *e) == 0) return 1;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT;
}

/* rm -rf that never follows a symbolic link (FTW_PHYS). */
static dd_status remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return DD_OK;
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return dd_error_set(DD_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return DD_OK;
}

/* Unpacks `abs` (size/mtime in st) into c->dir/tree unless the marker says
 * it already holds this archive. */
static dd_status unpack_local_archive(const dd_cache_dataset *c, const char *abs,
                                      const struct stat *st) {
    dd_strbuf want = DD_STRBUF_INIT;
    dd_strbuf_printf(&want, "local %s %lld %lld.%09ld\n", abs, (long long)st->st_size,
                     (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
    char *tree = dd_fs_join(c->dir, "tree"), *tmp = dd_fs_join(c->dir, "tree.part");
    char *marker = dd_cache_marker_path(c->dir, DD_CACHE_UNPACKED, "archive");
    dd_status s = dd_strbuf_status(&want);
    if (s == DD_OK && (!tree || !tmp || !marker)) s = dd_error_set(DD_ERR_NOMEM, "out of memory");
    if (s == DD_OK && dd_cache_marker_is(c, DD_CACHE_UNPACKED, "archive", dd_strbuf_str(&want)) &&
        dd_fs_is_file(marker)) {
        struct stat ts;
        if (lstat(tree, &ts) == 0 && S_ISDIR(ts.st_mode)) goto done;
    }
    if (s == DD_OK) {
        dd_cache_unmark(c, DD_CACHE_UNPACKED, "archive");
        dd_info("unpacking %s", abs);
        s = remove_tree(tmp);
    }
    if (s == DD_OK && mkdir(tmp, 0755) != 0)
        s = dd_error_set(DD_ERR_IO, "%s: cannot create directory: %s", tmp, strerror(errno));
    uint64_t limit = (uint64_t)st->st_size * 16;
    if (limit < ((uint64_t)64 << 20)) limit = (uint64_t)64 << 20;
    if (s == DD_OK) s = dd_unpack_archive(abs, tmp, limit, NULL);
    if (s == DD_OK) s = remove_tree(tree);
    if (s == DD_OK && rename(tmp, tree) != 0)
        s = dd_error_set(DD_ERR_IO, "%s: cannot rename to %s: %s", tmp, tree, strerror(errno));
    if (s == DD_OK) s = dd_fs_write_file_mode(marker, dd_strbuf_str(&want), want.len, 0644);
    if (s != DD_OK && tmp) {
        dd_status keep = s;
        remove_tree(tmp); // a refused archive leaves nothing behind
        s = keep;
    }
done:
    dd_strbuf_free(&want);
    free(tree);
    free(tmp);
    free(marker);
    return s;
}

dd_status dd_fetch_local_path(const char *name, const char *path, const dd_fetch_options *opt,
                              int unpack, char **root) {
    if (!name || !path || !root)
        return dd_error_set(DD_ERR_INVALID, "dd_fetch_local_path: NULL argument");
    *root = NULL;
    // `name` becomes a directory name in the cache: a plain name only.
    int plain = name[0] && name[0] != '.';
    for (const char *p = name; *p && plain; p++)
        plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '.' || *p == '_' || *p == '-';
    if (!plain)
        return dd_error_set(DD_ERR_INVALID,
                            "dataset name '%s' may only contain letters, digits, '.', '_' and '-' "
                            "(not first)",
                            name);
    struct stat st;
    if (stat(path, &st) != 0)
        return dd_error_set(DD_ERR_NOT_FOUND, "dataset.path '%s': %s", path, strerror(errno));
    char *abs = realpath(path, NULL);
    if (!abs) return dd_error_set(DD_ERR_IO, "%s: %s", path, strerror(errno));
    // A directory, or a file the reader opens itself (no unpacking asked
    // for: e.g. the npz reader's .npz), is given to the reader as it is.
    if (S_ISDIR(st.st_mode) || (!unpack && S_ISREG(st.st_mode))) {
        *root = abs;
        return DD_OK;
    }
    dd_status s = DD_OK;
    if (!S_ISREG(st.st_mode) || !unpack || !is_archive_name(abs))
        s = dd_error_set(DD_ERR_INVALID, "dataset.path '%s' is not a %s", path,
                         unpack ? "directory nor a .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz or .zip "
                                  "archive"
                                : "directory nor a regular file");
    char *cache = NULL;
    if (s == DD_OK) s = dd_fetch_cache_root(opt, &cache);
    char *local_root = s == DD_OK ? dd_fs_join(cache, "+local") : NULL;
    if (s == DD_OK && !local_root) s = dd_error_set(DD_ERR_NOMEM, "out of memory");
    if (s == DD_OK) s = dd_fs_mkdir_p(local_root);
    dd_cache_dataset c = {0};
    if (s == DD_OK) {
        uint8_t h[DD_SHA256_SIZE];
        char hex[2 * DD_SHA256_SIZE + 1], dir[160];
        dd_sha256 sh;
        dd_sha256_init(&sh);
        dd_sha256_update(&sh, abs, strlen(abs));
        dd_sha256_final(&sh, h);
        dd_hex(h, DD_SHA256_SIZE, hex);
        snprintf(dir, sizeof dir, "%.64s-%.16s", name, hex);
        s = dd_cache_open(local_root, dir, 0, &c);
    }
    if (s == DD_OK) s = unpack_local_archive(&c, abs, &st);
    if (s == DD_OK && !(*root = dd_fs_join(c.dir, "tree")))
        s = dd_error_set(DD_ERR_NOMEM, "out of memory");
    dd_cache_close(&c);
    free(local_root);
    free(cache);
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
    dd_status s = dd_fetch_cache_root(opt, &cache);
    if (s == DD_OK && opt->local_path) {
        s = fetch_local(&c, cache, root);
    } else if (s == DD_OK) {
        s = dd_cache_open(cache, m->name, 1, &c.cache);
        for (size_t i = 0; i < m->n_files && s == DD_OK; i++)
            s = ensure_cached_file(&c, &m->files[i]);
        if (s == DD_OK) {
            *root = c.cache.dir;
            c.cache.dir = NULL;
        }
    }
    dd_cache_close(&c.cache);
    free(cache);
    dd_manifest_destroy(m);
    return s;
}

dd_status dd_fetch_list(const dd_fetch_options *opt, dd_dataset_status **out, size_t *n) {
    if (!out || !n) return dd_error_set(DD_ERR_INVALID, "dd_fetch_list: NULL argument");
    *out = NULL;
    *n = 0;
    char **dirs = NULL, *cache = NULL;
    DD_TRY(dd_manifest_dirs(opt ? opt->manifest_dir : NULL, &dirs));
    dd_status s = dd_fetch_cache_root(opt, &cache);
    if (s == DD_OK) s = dd_cache_list(dirs, cache, out, n);
    dd_manifest_dirs_free(dirs);
    free(cache);
    return s;
}
