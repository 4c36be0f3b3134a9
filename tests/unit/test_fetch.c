/* Tests for core/src/data/fetch.c (with data/transport and data/cache)
 * against the loopback server in tests/support/fetch_httpd.c: resume after
 * a dropped connection, retries after HTTP 500, low-speed timeout, wrong
 * bytes, mirror order, offline mode, the per-dataset lock, local paths,
 * crash recovery, idempotence, and the cache's file modes.
 * With --e2e it instead fetches the real Fashion-MNIST from Debian's copy
 * (file:// mirror) into a temporary cache. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "distill/host.h"
#include "distill/log.h"
#include "data/fetch.h"
#include "fetch_httpd.h"
#include "fetch_util.h"

enum { DATA_N = 300000, PAY_N = 200000 };

typedef struct fx {
    fetch_httpd *srv;
    char *root;
    char cache[4096], manifests[4096], local[4096];
    unsigned char *data; // data.bin: DATA_N pseudo-random bytes
    unsigned char *pay;  // payload of pay.gz
    unsigned char *gz;   // pay.gz
    size_t gz_n;
    unsigned char *tgz; // bundle.tar.gz
    size_t tgz_n;
    char data_sha[65], gz_md5[33], pay_sha[65], tgz_sha[65];
    dd_fetch_options opt;
} fx;

static void fill(unsigned char *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (unsigned char)(seed >> 24);
    }
}

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    if (!f || fetch_httpd_start(&f->srv) != DD_OK || !(f->root = fetch_tmpdir("fetch"))) return -1;
    snprintf(f->cache, sizeof f->cache, "%s/cache", f->root);
    snprintf(f->manifests, sizeof f->manifests, "%s/manifests", f->root);
    snprintf(f->local, sizeof f->local, "%s/local", f->root);
    mkdir(f->manifests, 0755);
    mkdir(f->local, 0755);
    f->data = malloc(DATA_N);
    f->pay = malloc(PAY_N);
    if (!f->data || !f->pay) return -1;
    fill(f->data, DATA_N, 1);
    // Compressible payload (like an IDX file) so the .gz is smaller.
    for (size_t i = 0; i < PAY_N; i++)
        f->pay[i] = (unsigned char)((i % 784) < 200 ? 0 : (i * 31) & 0xff);
    if (fetch_make_gz(f->pay, PAY_N, &f->gz, &f->gz_n) != DD_OK) return -1;
    const fetch_tar_entry e[] = {
        {"bundle/", 'd', NULL, 0},
        {"bundle/a.txt", 'f', "alpha\n", 6},
        {"bundle/b.bin", 'f', NULL, 70000},
        {"bundle/link", 'l', "a.txt", 0},
    };
    if (fetch_make_tar(e, 4, 1, &f->tgz, &f->tgz_n) != DD_OK) return -1;
    fetch_sha256_hex(f->data, DATA_N, f->data_sha);
    fetch_md5_hex(f->gz, f->gz_n, f->gz_md5);
    fetch_sha256_hex(f->pay, PAY_N, f->pay_sha);
    fetch_sha256_hex(f->tgz, f->tgz_n, f->tgz_sha);
    fetch_httpd_add(f->srv, "m/data.bin", f->data, DATA_N);
    fetch_httpd_add(f->srv, "m/pay.gz", f->gz, f->gz_n);
    fetch_httpd_add(f->srv, "m/bundle.tar.gz", f->tgz, f->tgz_n);
    dd_fetch_options_init(&f->opt);
    f->opt.cache_dir = f->cache;
    f->opt.manifest_dir = f->manifests;
    f->opt.quiet = 1;
    f->opt.connect_timeout_s = 5;
    f->opt.low_speed_limit = 1000;
    f->opt.low_speed_time_s = 5;
    f->opt.retries = 2;
    f->opt.backoff_ms = 10;
    dd_log_set_level(DD_LOG_WARN);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    fetch_httpd_stop(f->srv);
    fetch_rmtree(f->root);
    free(f->root);
    free(f->data);
    free(f->pay);
    free(f->gz);
    free(f->tgz);
    free(f);
    return 0;
}

/* Writes manifests/<name>.yaml with dataset-wide `mirrors` (NULL-terminated,
 * relative ones are prefixed with the server URL) and the files selected by
 * `which` ("d" data.bin, "g" pay.gz, "t" bundle.tar.gz). */
static void write_manifest(fx *f, const char *name, const char *const *mirrors, const char *which) {
    char text[8192];
    size_t u = 0;
    u += (size_t)snprintf(text + u, sizeof text - u,
                          "name: %s\nreader: mnist\nunpacked_limit: 10000000\nmirrors:\n", name);
    for (const char *const *m = mirrors; *m; m++)
        u += (size_t)snprintf(text + u, sizeof text - u, "  - %s%s\n",
                              strstr(*m, "://") ? "" : fetch_httpd_url(f->srv), *m);
    u += (size_t)snprintf(text + u, sizeof text - u, "files:\n");
    if (strchr(which, 'd'))
        u += (size_t)snprintf(text + u, sizeof text - u,
                              "  - {name: data.bin, archive: none, size: %d, sha256: %s}\n", DATA_N,
                              f->data_sha);
    if (strchr(which, 'g'))
        u += (size_t)snprintf(text + u, sizeof text - u,
                              "  - {name: pay.gz, archive: gz, md5: %s, payload_sha256: %s}\n",
                              f->gz_md5, f->pay_sha);
    if (strchr(which, 't'))
        u += (size_t)snprintf(text + u, sizeof text - u,
                              "  - {name: bundle.tar.gz, archive: tar.gz, sha256: %s}\n",
                              f->tgz_sha);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.yaml", f->manifests, name);
    assert_int_equal(fetch_write_file(path, text, u), 0);
}

static void assert_bytes(const char *dir, const char *rel, const void *want, size_t n) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    size_t got_n;
    unsigned char *got = fetch_read_file(path, &got_n);
    if (!got) fail_msg("missing %s", path);
    assert_int_equal(got_n, n);
    assert_memory_equal(got, want, n);
    free(got);
}

static size_t count(fx *f, const char *path) {
    fetch_httpd_wait_idle(f->srv);
    return fetch_httpd_requests(f->srv, path, NULL, 0);
}

static int cache_has(fx *f, const char *ds, const char *rel) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s/%s", f->cache, ds, rel);
    return fetch_exists(path);
}

/* stderr captured into a file while `fn` runs, returned malloc'ed. */
typedef struct capture {
    int saved;
    char path[4200];
} capture;

static void capture_begin(fx *f, capture *c) {
    snprintf(c->path, sizeof c->path, "%s/stderr.txt", f->root);
    fflush(stderr);
    c->saved = dup(2);
    int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    dup2(fd, 2);
    close(fd);
}

static char *capture_end(capture *c) {
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    size_t n;
    unsigned char *t = fetch_read_file(c->path, &n);
    char *s = malloc(n + 1);
    if (t && s) memcpy(s, t, n);
    if (s) s[t ? n : 0] = '\0';
    free(t);
    return s;
}

/* ---- tests ------------------------------------------------------------- */

static void test_fetch_all_kinds_then_idempotent(void **state) {
    fx *f = *state;
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "dgt");
    char *root = NULL;
    dd_status s = dd_fetch_dataset("toy", &f->opt, &root);
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    char want_root[4200];
    snprintf(want_root, sizeof want_root, "%s/toy", f->cache);
    assert_string_equal(root, want_root);
    assert_bytes(root, "data.bin", f->data, DATA_N);
    assert_bytes(root, "pay", f->pay, PAY_N); // .gz decompressed beside
    assert_bytes(root, "bundle/a.txt", "alpha\n", 6);
    assert_bytes(root, "bundle/link", "alpha\n", 6);
    assert_true(cache_has(f, "toy", "downloads/pay.gz"));
    assert_true(cache_has(f, "toy", ".verified-pay.gz"));
    assert_true(cache_has(f, "toy", ".unpacked-bundle.tar.gz"));
    free(root);
    size_t before = count(f, NULL);
    assert_int_equal(before, 3);

    // Second run: everything is cached, nothing is requested.
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_OK);
    free(root);
    f->opt.offline = 1;
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_OK);
    free(root);
    assert_int_equal(count(f, NULL), before);

    // `distill datasets` view.
    dd_dataset_status *list;
    size_t n;
    assert_int_equal(dd_fetch_list(&f->opt, &list, &n), DD_OK);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].name, "toy") != 0) continue;
        seen = 1;
        assert_true(list[i].cached);
        assert_true(list[i].bytes >= (uint64_t)DATA_N + PAY_N + f->gz_n + f->tgz_n);
        assert_int_equal(list[i].download_bytes, DATA_N);
    }
    assert_true(seen);
    free(list);
}

static void test_resume_after_drop(void **state) {
    fx *f = *state;
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "d");
    fetch_httpd_fault fault = {.drop_after = 100000, .drop_times = 1};
    fetch_httpd_set_fault(f->srv, "m/data.bin", &fault);
    char *root;
    dd_status s = dd_fetch_dataset("toy", &f->opt, &root);
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    assert_bytes(root, "data.bin", f->data, DATA_N);
    free(root);
    fetch_httpd_request log[4];
    fetch_httpd_wait_idle(f->srv);
    assert_int_equal(fetch_httpd_requests(f->srv, "m/data.bin", log, 4), 2);
    assert_int_equal(log[0].range_start, -1);
    assert_int_equal(log[0].bytes_sent, 100000);
    // The second request resumed exactly where the first one broke off.
    assert_int_equal(log[1].range_start, 100000);
    assert_int_equal(log[1].status, 206);
    assert_int_equal(log[1].bytes_sent, DATA_N - 100000);
}

static void test_500_then_success(void **state) {
    fx *f = *state;
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "g");
    fetch_httpd_fault fault = {.fail_first = 2};
    fetch_httpd_set_fault(f->srv, "m/pay.gz", &fault);
    char *root;
    dd_status s = dd_fetch_dataset("toy", &f->opt, &root);
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    assert_bytes(root, "pay", f->pay, PAY_N);
    free(root);
    fetch_httpd_request log[4];
    fetch_httpd_wait_idle(f->srv);
    assert_int_equal(fetch_httpd_requests(f->srv, "m/pay.gz", log, 4), 3);
    assert_int_equal(log[0].status, 500);
    assert_int_equal(log[1].status, 500);
    assert_int_equal(log[2].status, 200);
}

static void test_500_forever_fails_clearly(void **state) {
    fx *f = *state;
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "g");
    fetch_httpd_fault fault = {.fail_first = 100};
    fetch_httpd_set_fault(f->srv, "m/pay.gz", &fault);
    f->opt.retries = 1;
    char *root = NULL;
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_ERR_NETWORK);
    assert_null(root);
    const char *msg = dd_error_message();
    char url[512];
    snprintf(url, sizeof url, "%sm/pay.gz: HTTP 500", fetch_httpd_url(f->srv));
    if (!strstr(msg, url)) fail_msg("message '%s' lacks '%s'", msg, url);
    assert_int_equal(count(f, "m/pay.gz"), 2);
    assert_false(cache_has(f, "toy", "downloads/pay.gz"));
    assert_false(cache_has(f, "toy", ".unpacked-pay.gz"));
}

static void test_trickle_times_out(void **state) {
    fx *f = *state;
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "d");
    fetch_httpd_fault fault = {.trickle_bytes = 40, .trickle_ms = 100}; // ~400 B/s
    fetch_httpd_set_fault(f->srv, "m/data.bin", &fault);
    f->opt.low_speed_limit = 1000;
    f->opt.low_speed_time_s = 1;
    f->opt.retries = -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *root = NULL;
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_ERR_NETWORK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    assert_true(secs < 10.0);
    const char *msg = dd_error_message();
    char url[512];
    snprintf(url, sizeof url, "%sm/data.bin", fetch_httpd_url(f->srv));
    if (!strstr(msg, url) || !strstr(msg, "too slow"))
        fail_msg("message '%s' lacks the URL or 'too slow'", msg);
    assert_false(cache_has(f, "toy", "data.bin"));
    assert_false(cache_has(f, "toy", "downloads/data.bin"));
}

static void test_wrong_bytes_rejected_and_not_trusted(void **state) {
    fx *f = *state;
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "t");
    fetch_httpd_fault fault = {.wrong_bytes = 1};
    fetch_httpd_set_fault(f->srv, "m/bundle.tar.gz", &fault);
    char *root = NULL;
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_ERR_CHECKSUM);
    const char *msg = dd_error_message();
    char url[512];
    snprintf(url, sizeof url, "%sm/bundle.tar.gz", fetch_httpd_url(f->srv));
    if (!strstr(msg, "bundle.tar.gz") || !strstr(msg, url) || !strstr(msg, "checksum mismatch"))
        fail_msg("message '%s' does not name the file, URL and checksum", msg);
    assert_false(cache_has(f, "toy", "downloads/bundle.tar.gz"));
    assert_false(cache_has(f, "toy", "downloads/bundle.tar.gz.part"));
    assert_false(cache_has(f, "toy", ".verified-bundle.tar.gz"));
    assert_false(cache_has(f, "toy", ".unpacked-bundle.tar.gz"));
    assert_false(cache_has(f, "toy", "bundle"));
    // A later offline run must not find anything to trust.
    f->opt.offline = 1;
    size_t before = count(f, NULL);
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_ERR_NOT_FOUND);
    assert_non_null(strstr(dd_error_message(), "offline"));
    assert_int_equal(count(f, NULL), before);
    // Once the server is fixed, an online run succeeds.
    f->opt.offline = 0;
    fetch_httpd_set_fault(f->srv, "m/bundle.tar.gz", NULL);
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_OK);
    assert_bytes(root, "bundle/a.txt", "alpha\n", 6);
    free(root);
}

static void test_mirror_order_and_fallback(void **state) {
    fx *f = *state;
    // a/ has nothing (404), b/ serves wrong bytes, m/ is good.
    fetch_httpd_add(f->srv, "b/data.bin", f->data, DATA_N);
    fetch_httpd_fault wrong = {.wrong_bytes = 1};
    fetch_httpd_set_fault(f->srv, "b/data.bin", &wrong);
    write_manifest(f, "toy", (const char *const[]){"a/", "b", "m/", NULL}, "d");
    char *root;
    dd_status s = dd_fetch_dataset("toy", &f->opt, &root);
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    assert_bytes(root, "data.bin", f->data, DATA_N);
    free(root);
    fetch_httpd_request log[8];
    fetch_httpd_wait_idle(f->srv);
    size_t n = fetch_httpd_requests(f->srv, NULL, log, 8);
    assert_int_equal(n, 3); // 404 is not retried; a checksum failure moves on
    assert_string_equal(log[0].path, "a/data.bin");
    assert_int_equal(log[0].status, 404);
    assert_string_equal(log[1].path, "b/data.bin");
    assert_string_equal(log[2].path, "m/data.bin");
    assert_int_equal(log[2].range_start, -1); // the bad bytes were not kept to resume from

    // Extra mirrors (dataset.mirrors) come before the manifest's.
    fetch_httpd_add(f->srv, "c/pay.gz", f->gz, f->gz_n);
    write_manifest(f, "toy2", (const char *const[]){"m/", NULL}, "g");
    char extra[512];
    snprintf(extra, sizeof extra, "%sc", fetch_httpd_url(f->srv));
    const char *extras[] = {extra, NULL};
    f->opt.extra_mirrors = extras;
    fetch_httpd_clear_log(f->srv);
    assert_int_equal(dd_fetch_dataset("toy2", &f->opt, &root), DD_OK);
    free(root);
    fetch_httpd_wait_idle(f->srv);
    assert_int_equal(fetch_httpd_requests(f->srv, NULL, log, 8), 1);
    assert_string_equal(log[0].path, "c/pay.gz");
}

static void test_offline_empty_cache(void **state) {
    fx *f = *state;
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "dg");
    f->opt.offline = 1;
    char *root = NULL;
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_ERR_NOT_FOUND);
    assert_null(root);
    assert_non_null(strstr(dd_error_message(), "offline"));
    assert_int_equal(count(f, NULL), 0);
    assert_int_equal(dd_fetch_dataset("no-such-set", &f->opt, &root), DD_ERR_NOT_FOUND);
    assert_non_null(strstr(dd_error_message(), "no-such-set"));
}

typedef struct worker {
    fx *f;
    dd_status s;
    char *root;
    char msg[512];
} worker;

static void *run_worker(void *arg) {
    worker *w = arg;
    w->s = dd_fetch_dataset("toy", &w->f->opt, &w->root);
    snprintf(w->msg, sizeof w->msg, "%s", dd_error_message());
    return NULL;
}

static void test_concurrent_fetch_lock(void **state) {
    fx *f = *state;
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "dt");
    // Slow enough (~0.5 s) that the two fetches overlap.
    fetch_httpd_fault slow = {.trickle_bytes = 30000, .trickle_ms = 50};
    fetch_httpd_set_fault(f->srv, "m/data.bin", &slow);
    worker w[2] = {{.f = f}, {.f = f}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, run_worker, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        if (w[i].s != DD_OK) fail_msg("worker %d: %s", i, w[i].msg);
        assert_bytes(w[i].root, "data.bin", f->data, DATA_N);
        assert_bytes(w[i].root, "bundle/a.txt", "alpha\n", 6);
        free(w[i].root);
    }
    // The lock made the second one wait and reuse the first one's work.
    assert_int_equal(count(f, "m/data.bin"), 1);
    assert_int_equal(count(f, "m/bundle.tar.gz"), 1);
}

static void test_local_path(void **state) {
    fx *f = *state;
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "dg");
    char p[8192];
    // 1. Archives as downloaded: verified, the .gz is decompressed into the cache.
    snprintf(p, sizeof p, "%s/data.bin", f->local);
    assert_int_equal(fetch_write_file(p, f->data, DATA_N), 0);
    snprintf(p, sizeof p, "%s/pay.gz", f->local);
    assert_int_equal(fetch_write_file(p, f->gz, f->gz_n), 0);
    f->opt.local_path = f->local;
    char *root;
    dd_status s = dd_fetch_dataset("toy", &f->opt, &root);
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    // unpacked apart from the verified download cache: <cache>/+local/toy-<hash>/
    char want[4200];
    snprintf(want, sizeof want, "%s/+local/toy-", f->cache);
    assert_true(strncmp(root, want, strlen(want)) == 0);
    assert_int_equal(strlen(root), strlen(want) + 16);
    assert_bytes(root, "pay", f->pay, PAY_N);
    assert_bytes(root, "data.bin", f->data, DATA_N);
    free(root);
    assert_int_equal(count(f, NULL), 0);

    // 2. Everything already in final form: the directory itself is used.
    snprintf(p, sizeof p, "%s/pay.gz", f->local);
    unlink(p);
    snprintf(p, sizeof p, "%s/pay", f->local);
    assert_int_equal(fetch_write_file(p, f->pay, PAY_N), 0);
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_OK);
    char *real = realpath(f->local, NULL);
    assert_string_equal(root, real);
    free(real);
    free(root);

    // 3. A wrong file is refused unless verification is explicitly off.
    snprintf(p, sizeof p, "%s/data.bin", f->local);
    f->data[5] ^= 1;
    assert_int_equal(fetch_write_file(p, f->data, DATA_N), 0);
    f->data[5] ^= 1;
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_ERR_CHECKSUM);
    assert_non_null(strstr(dd_error_message(), p));
    f->opt.verify = 0;
    capture c;
    capture_begin(f, &c);
    s = dd_fetch_dataset("toy", &f->opt, &root);
    char *err = capture_end(&c);
    assert_int_equal(s, DD_OK);
    free(root);
    assert_non_null(err);
    if (!strstr(err, "warning") || !strstr(err, "not verified"))
        fail_msg("no warning in '%s'", err);
    free(err);
    assert_int_equal(count(f, NULL), 0);

    // 4. Missing files are named.
    f->opt.verify = 1;
    snprintf(p, sizeof p, "%s/data.bin", f->local);
    assert_int_equal(fetch_write_file(p, f->data, DATA_N), 0);
    snprintf(p, sizeof p, "%s/pay", f->local);
    unlink(p);
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_ERR_NOT_FOUND);
    assert_non_null(strstr(dd_error_message(), "pay.gz"));
}

// A local copy read with verify: false never touches the verified cache:
// it used to replace the cache's verified files by links to the local ones
// and keep the markers, so a later verified fetch served the local bytes.
static void test_unverified_local_copy_not_trusted_later(void **state) {
    fx *f = *state;
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "dg");
    char *root;
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_OK); // verified, from m/
    free(root);
    // a tampered data.bin in final form beside pay.gz, which needs unpacking
    char p[8192];
    f->data[7] ^= 0x5a;
    snprintf(p, sizeof p, "%s/data.bin", f->local);
    assert_int_equal(fetch_write_file(p, f->data, DATA_N), 0);
    f->data[7] ^= 0x5a;
    snprintf(p, sizeof p, "%s/pay.gz", f->local);
    assert_int_equal(fetch_write_file(p, f->gz, f->gz_n), 0);
    f->opt.local_path = f->local;
    f->opt.verify = 0;
    capture c;
    capture_begin(f, &c);
    dd_status s = dd_fetch_dataset("toy", &f->opt, &root);
    free(capture_end(&c));
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    free(root);
    char cached[4200];
    snprintf(cached, sizeof cached, "%s/toy", f->cache);
    // a plain verified fetch again: the cache still serves the verified bytes
    f->opt.local_path = NULL;
    f->opt.verify = 1;
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_OK);
    assert_string_equal(root, cached);
    assert_bytes(root, "data.bin", f->data, DATA_N);
    assert_bytes(root, "pay", f->pay, PAY_N);
    free(root);
}

static void test_unverified_extra_mirror_not_trusted_later(void **state) {
    fx *f = *state;
    // An extra mirror serving different bytes, accepted only with verify: false.
    fetch_httpd_add(f->srv, "x/pay.gz", "not the real file", 17);
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "g");
    char extra[512];
    snprintf(extra, sizeof extra, "%sx/", fetch_httpd_url(f->srv));
    const char *extras[] = {extra, NULL};
    f->opt.extra_mirrors = extras;
    f->opt.verify = 0;
    char *root;
    // Not gzip: accepted unverified, but unpacking it fails cleanly.
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_ERR_ARCHIVE);
    // Same with a valid gzip of other content: accepted, with a warning.
    unsigned char *gz2;
    size_t gz2_n;
    assert_int_equal(fetch_make_gz("other", 5, &gz2, &gz2_n), DD_OK);
    fetch_httpd_add(f->srv, "x/pay.gz", gz2, gz2_n);
    free(gz2);
    char p[8192];
    snprintf(p, sizeof p, "%s/toy/downloads/pay.gz", f->cache);
    unlink(p);
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_OK);
    assert_bytes(root, "pay", "other", 5);
    free(root);
    assert_false(cache_has(f, "toy", ".verified-pay.gz"));
    // A verifying run does not trust it: re-checks, discards, refetches.
    f->opt.verify = 1;
    f->opt.extra_mirrors = NULL;
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_OK);
    assert_bytes(root, "pay", f->pay, PAY_N);
    free(root);
    assert_int_equal(count(f, "m/pay.gz"), 1);
}

static void test_payload_checksum_accepts_recompressed(void **state) {
    fx *f = *state;
    // Same payload, different gzip bytes (as Debian's recompressed files).
    unsigned char *re = malloc(f->gz_n);
    assert_non_null(re);
    memcpy(re, f->gz, f->gz_n);
    re[4] ^= 0x5a; // gzip header MTIME: changes the file, not the payload
    fetch_httpd_add(f->srv, "d/pay.gz", re, f->gz_n);
    free(re);
    write_manifest(f, "toy", (const char *const[]){"d/", NULL}, "g");
    char *root;
    dd_status s = dd_fetch_dataset("toy", &f->opt, &root);
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    assert_bytes(root, "pay", f->pay, PAY_N);
    free(root);
}

static void test_crash_mid_unpack_is_redone(void **state) {
    fx *f = *state;
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "tg");
    char *root;
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_OK);
    size_t before = count(f, NULL);
    // Simulate a crash mid-unpack: marker gone, a file half-written.
    char p[8192];
    snprintf(p, sizeof p, "%s/.unpacked-bundle.tar.gz", root);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof p, "%s/bundle/a.txt", root);
    assert_int_equal(fetch_write_file(p, "al", 2), 0);
    // And a decompressed file removed by hand while its marker stayed.
    snprintf(p, sizeof p, "%s/pay", root);
    assert_int_equal(unlink(p), 0);
    free(root);
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_OK);
    assert_bytes(root, "bundle/a.txt", "alpha\n", 6);
    assert_bytes(root, "pay", f->pay, PAY_N);
    free(root);
    assert_int_equal(count(f, NULL), before); // redone from the verified download
}

static void test_resume_edge_cases(void **state) {
    fx *f = *state;
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "d");
    char dir[4200], part[4300];
    snprintf(dir, sizeof dir, "%s/toy/downloads", f->cache);
    snprintf(part, sizeof part, "%s/data.bin.part", dir);
    assert_int_equal(mkdir(f->cache, 0755), 0);
    snprintf(dir, sizeof dir, "%s/toy", f->cache);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(dir, sizeof dir, "%s/toy/downloads", f->cache);
    assert_int_equal(mkdir(dir, 0755), 0);

    // 1. A correct partial file, but the server ignores Range: start over.
    assert_int_equal(fetch_write_file(part, f->data, 1000), 0);
    fetch_httpd_fault ign = {.ignore_range = 1};
    fetch_httpd_set_fault(f->srv, "m/data.bin", &ign);
    char *root;
    dd_status s = dd_fetch_dataset("toy", &f->opt, &root);
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    assert_bytes(root, "data.bin", f->data, DATA_N);
    free(root);
    fetch_httpd_request log[8];
    fetch_httpd_wait_idle(f->srv);
    size_t n = fetch_httpd_requests(f->srv, "m/data.bin", log, 8);
    // libcurl refuses the 200 answer to the ranged request; the fetcher
    // truncates the partial file and asks again without a range.
    assert_int_equal(n, 2);
    assert_int_equal(log[0].range_start, 1000);
    assert_int_equal(log[0].status, 200);
    assert_int_equal(log[1].range_start, -1);

    // 2. A stale partial file with wrong bytes: the resumed result fails the
    // checksum, so it is fetched once more from scratch.
    snprintf(dir, sizeof dir, "%s/toy", f->cache);
    fetch_rmtree(dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(dir, sizeof dir, "%s/toy/downloads", f->cache);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(fetch_write_file(part, "garbage garbage", 15), 0);
    fetch_httpd_set_fault(f->srv, "m/data.bin", NULL);
    fetch_httpd_clear_log(f->srv);
    s = dd_fetch_dataset("toy", &f->opt, &root);
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    assert_bytes(root, "data.bin", f->data, DATA_N);
    free(root);
    fetch_httpd_wait_idle(f->srv);
    assert_int_equal(fetch_httpd_requests(f->srv, "m/data.bin", log, 8), 2);
    assert_int_equal(log[0].range_start, 15);
    assert_int_equal(log[1].range_start, -1);

    // 3. A complete file left as .part (crash before the rename): the
    // server answers 416 and the file is verified as it is.
    snprintf(dir, sizeof dir, "%s/toy", f->cache);
    fetch_rmtree(dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(dir, sizeof dir, "%s/toy/downloads", f->cache);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(fetch_write_file(part, f->data, DATA_N), 0);
    fetch_httpd_clear_log(f->srv);
    s = dd_fetch_dataset("toy", &f->opt, &root);
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    assert_bytes(root, "data.bin", f->data, DATA_N);
    free(root);
    fetch_httpd_wait_idle(f->srv);
    assert_int_equal(fetch_httpd_requests(f->srv, "m/data.bin", log, 8), 1);
    assert_int_equal(log[0].status, 416);
}

static void test_unreachable_host_skipped_for_later_files(void **state) {
    fx *f = *state;
    // Port 1 on loopback refuses connections: after its retries fail for the
    // first file, the second file does not try that host again.
    write_manifest(f, "toy", (const char *const[]){"http://127.0.0.1:1/", "m/", NULL}, "dg");
    dd_log_set_level(DD_LOG_INFO);
    capture c;
    capture_begin(f, &c);
    char *root = NULL;
    dd_status s = dd_fetch_dataset("toy", &f->opt, &root);
    char *err = capture_end(&c);
    dd_log_set_level(DD_LOG_WARN);
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    assert_bytes(root, "pay", f->pay, PAY_N);
    free(root);
    assert_non_null(err);
    // data.bin: 1 + retries attempts on the dead host; pay.gz: none.
    size_t tries = 0;
    for (const char *p = err; (p = strstr(p, "downloading http://127.0.0.1:1/data.bin")); p++)
        tries++;
    assert_int_equal(tries, 3);
    assert_null(strstr(err, "downloading http://127.0.0.1:1/pay.gz"));
    assert_non_null(strstr(err, "skipping http://127.0.0.1:1/pay.gz"));
    free(err);
}

static void test_file_mirror_with_oversized_part(void **state) {
    fx *f = *state;
    // A file:// mirror, and a stale .part longer than the file: libcurl
    // cannot resume it, so it is restarted from scratch.
    char p[8192], mirror[4200];
    snprintf(p, sizeof p, "%s/data.bin", f->local);
    assert_int_equal(fetch_write_file(p, f->data, DATA_N), 0);
    snprintf(mirror, sizeof mirror, "file://%s/", f->local);
    write_manifest(f, "toy", (const char *const[]){mirror, NULL}, "d");
    snprintf(p, sizeof p, "%s/toy", f->cache);
    assert_int_equal(mkdir(f->cache, 0755), 0);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/toy/downloads", f->cache);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/toy/downloads/data.bin.part", f->cache);
    unsigned char *big = calloc(1, DATA_N + 100);
    assert_non_null(big);
    assert_int_equal(fetch_write_file(p, big, DATA_N + 100), 0);
    free(big);
    char *root;
    dd_status s = dd_fetch_dataset("toy", &f->opt, &root);
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    assert_bytes(root, "data.bin", f->data, DATA_N);
    free(root);
    assert_false(fetch_exists(p));
}

static void assert_mode(fx *f, const char *rel, unsigned mode) {
    char path[8192];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", f->cache, rel);
    if (lstat(path, &st) != 0) fail_msg("missing %s", path);
    if ((st.st_mode & 07777) != mode)
        fail_msg("%s: mode %04o, expected %04o", path, (unsigned)(st.st_mode & 07777), mode);
}

static void test_cache_modes_follow_umask_up_to_0755(void **state) {
    fx *f = *state;
    // Directories 0755 and files 0644 at most, even when the process would
    // let others write.
    mode_t old = umask(0);
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "dg");
    char *root = NULL;
    dd_status s = dd_fetch_dataset("toy", &f->opt, &root);
    umask(old);
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    free(root);
    assert_mode(f, "", 0755);
    assert_mode(f, "toy", 0755);
    assert_mode(f, "toy/downloads", 0755);
    assert_mode(f, "toy/.lock", 0644);
    assert_mode(f, "toy/.verified-pay.gz", 0644);
    assert_mode(f, "toy/.unpacked-pay.gz", 0644);
    assert_mode(f, "toy/pay", 0644);

    // A strict umask is honoured, as by ordinary files.
    old = umask(077);
    write_manifest(f, "toy2", (const char *const[]){"m/", NULL}, "dg");
    s = dd_fetch_dataset("toy2", &f->opt, &root);
    umask(old);
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    free(root);
    assert_mode(f, "toy2", 0700);
    assert_mode(f, "toy2/downloads", 0700);
    assert_mode(f, "toy2/.verified-pay.gz", 0600);
    assert_mode(f, "toy2/.unpacked-pay.gz", 0600);
    assert_mode(f, "toy2/pay", 0600);
}

static size_t count_tmp(const char *dir) {
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

static void test_interrupted_install_leaves_no_temporaries(void **state) {
    fx *f = *state;
    write_manifest(f, "toy", (const char *const[]){"m/", NULL}, "g");
    char *root = NULL;
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_OK);
    // An install interrupted mid-way: no marker, and the temporaries of the
    // decompressed file and of its marker left behind.
    char p[8192];
    snprintf(p, sizeof p, "%s/.unpacked-pay.gz", root);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof p, "%s/pay.tmp.Ab12Cd", root);
    assert_int_equal(fetch_write_file(p, "half", 4), 0);
    snprintf(p, sizeof p, "%s/.unpacked-pay.gz.tmp.Xy34Zw", root);
    assert_int_equal(fetch_write_file(p, "cache", 5), 0);
    // Not a temporary of ours: kept.
    snprintf(p, sizeof p, "%s/pay.tmp.keep-me", root);
    assert_int_equal(fetch_write_file(p, "mine", 4), 0);
    assert_int_equal(count_tmp(root), 3);
    free(root);
    assert_int_equal(dd_fetch_dataset("toy", &f->opt, &root), DD_OK);
    assert_bytes(root, "pay", f->pay, PAY_N);
    assert_true(cache_has(f, "toy", ".unpacked-pay.gz"));
    assert_int_equal(count_tmp(root), 1);
    assert_true(cache_has(f, "toy", "pay.tmp.keep-me"));
    free(root);
}

/* ---- e2e: the real Fashion-MNIST from Debian's package ------------------ */

static void test_e2e_fashion_mnist_debian(void **state) {
    (void)state;
    const char *deb = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
    if (!fetch_exists(deb)) {
        print_message("skipped: %s not installed (Debian package dataset-fashion-mnist)\n", deb);
        skip();
    }
    char *root = fetch_tmpdir("fetch-e2e");
    assert_non_null(root);
    char cache[4200], manifests[4200];
    snprintf(cache, sizeof cache, "%s/cache", root);
    snprintf(manifests, sizeof manifests, "%s/manifests", root);
    assert_int_equal(mkdir(manifests, 0755), 0);
    // The shipped manifest, with only its file:// mirror so the test does
    // not depend on how the sandbox fails DNS for the official hosts.
    const char *src = getenv("DISTILL_SOURCE_DIR");
    char path[8192];
    snprintf(path, sizeof path, "%s/datasets/fashion-mnist.yaml", src ? src : ".");
    size_t n;
    unsigned char *text = fetch_read_file(path, &n);
    assert_non_null(text);
    char *out = malloc(n + 1);
    assert_non_null(out);
    size_t u = 0;
    int dropped = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && text[j] != '\n')
            j++;
        if (j < n) j++;
        int is_http_mirror = (j - i > 10) && memmem(text + i, j - i, "  - http", 8) == text + i;
        if (is_http_mirror)
            dropped++;
        else {
            memcpy(out + u, text + i, j - i);
            u += j - i;
        }
        i = j;
    }
    assert_int_equal(dropped, 2);
    free(text);
    snprintf(path, sizeof path, "%s/fashion-mnist.yaml", manifests);
    assert_int_equal(fetch_write_file(path, out, u), 0);
    free(out);

    dd_fetch_options o;
    dd_fetch_options_init(&o);
    o.cache_dir = cache;
    o.manifest_dir = manifests;
    o.quiet = 1;
    char *ds;
    dd_status s = dd_fetch_dataset("fashion-mnist", &o, &ds);
    if (s != DD_OK) fail_msg("%s", dd_error_message());
    static const struct {
        const char *name;
        long size;
    } want[] = {{"train-images-idx3-ubyte", 47040016},
                {"train-labels-idx1-ubyte", 60008},
                {"t10k-images-idx3-ubyte", 7840016},
                {"t10k-labels-idx1-ubyte", 10008}};
    for (size_t i = 0; i < 4; i++) {
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", ds, want[i].name);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_size, want[i].size);
        snprintf(p, sizeof p, "%s/.verified-%s.gz", ds, want[i].name);
        assert_true(fetch_exists(p));
    }
    // IDX magic of the image file: 0x00000803.
    char p[8192];
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte", ds);
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    unsigned char magic[4];
    assert_int_equal(fread(magic, 1, 4, fp), 4);
    fclose(fp);
    assert_int_equal(magic[2], 0x08);
    assert_int_equal(magic[3], 0x03);
    free(ds);
    // Offline now works from the cache.
    o.offline = 1;
    assert_int_equal(dd_fetch_dataset("fashion-mnist", &o, &ds), DD_OK);
    free(ds);
    fetch_rmtree(root);
    free(root);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--e2e") == 0) {
        const struct CMUnitTest e2e[] = {cmocka_unit_test(test_e2e_fashion_mnist_debian)};
        return cmocka_run_group_tests(e2e, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fetch_all_kinds_then_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_500_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_500_forever_fails_clearly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trickle_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_bytes_rejected_and_not_trusted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror_order_and_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_empty_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_fetch_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unverified_local_copy_not_trusted_later, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unverified_extra_mirror_not_trusted_later, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_payload_checksum_accepts_recompressed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crash_mid_unpack_is_redone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_edge_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_host_skipped_for_later_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_mirror_with_oversized_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_modes_follow_umask_up_to_0755, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_install_leaves_no_temporaries, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
