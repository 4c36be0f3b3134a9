/* distill tests — the decoded-dataset cache (data/dcache.h) around the mnist
 * reader on generated IDX files: written once and reused without calling
 * the reader, rebuilt when the key or an input changes, truncated and
 * corrupt files detected (warning naming the file) and rebuilt, concurrent
 * loads sharing one cache, RAM and mapped sets identical; with --cli, the
 * same `distill run` with dataset.memory=ram and =mmap gives the same
 * metrics.json and distilled set. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "distill/dataset.h"
#include "distill/limits.h"
#include "data/dataset_map.h"
#include "data/dcache.h"
#include "readers_gen.h"

enum { NTR = 40, NTE = 16, SIDE = 28 };

typedef struct fx {
    rg_fixture *rf;
    char *in, *cache, *calls;
    dd_options *opts;
} fx;

/* The reader under test counts its calls by appending a byte to a file, so
 * that calls made in forked children are counted too. */
static const dd_dataset_ops *g_real;
static const char *g_calls;
static int g_sleep_ms;

static dd_status counting_load(const dd_dataset_request *req, dd_dataset **train,
                               dd_dataset **test) {
    int fd = open(g_calls, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
        if (write(fd, "x", 1) != 1) fprintf(stderr, "cannot count a call\n");
        close(fd);
    }
    if (g_sleep_ms > 0) {
        struct timespec ts = {0, (long)g_sleep_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    return g_real->load(req, train, test);
}

static dd_dataset_ops g_ops;

static long calls(const fx *f) {
    struct stat st;
    return stat(f->calls, &st) == 0 ? (long)st.st_size : 0;
}

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    if (!f || !(f->rf = rg_fixture_open("mnist", "dcache"))) return -1;
    f->in = rg_strf("%s/in", f->rf->dir);
    f->cache = rg_strf("%s/cache/mnist/decoded", f->rf->dir);
    f->calls = rg_strf("%s/calls", f->rf->dir);
    if (rg_mkdirs(f->in) != DD_OK || rg_write_mnist(f->in, NTR, NTE, SIDE, SIDE, 0) != DD_OK)
        return -1;
    if (dd_options_from_strings(f->rf->comp->params, NULL, &f->opts) != DD_OK) return -1;
    g_real = f->rf->comp->ops;
    g_ops = *g_real;
    g_ops.load = counting_load;
    g_calls = f->calls;
    g_sleep_ms = 0;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    if (!f) return 0;
    dd_limits_set(0, 0, 0);
    dd_options_destroy(f->opts);
    rg_fixture_close(f->rf);
    free(f->in);
    free(f->cache);
    free(f->calls);
    free(f);
    return 0;
}

static dd_status load(fx *f, dd_memory_mode mode, const char *key, dd_dataset **train,
                      dd_dataset **test, dd_dcache_info *info) {
    dd_dataset_request req = {sizeof req, "mnist", f->in, f->opts, 0, 0};
    dd_dcache_config c = {
        .dir = f->cache, .key_text = key, .inputs = f->in, .memory = mode, .mmap_threshold = 0};
    return dd_dcache_load(&c, &g_ops, &req, train, test, info);
}

/* stderr into a file while `fn` runs; returns what was written (malloc'ed). */
typedef struct captured {
    int saved;
    char path[4096];
} captured;

static void capture_begin(const fx *f, captured *c) {
    snprintf(c->path, sizeof c->path, "%s/stderr.txt", f->rf->dir);
    fflush(stderr);
    c->saved = dup(2);
    int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    dup2(fd, 2);
    close(fd);
}

static char *capture_end(captured *c) {
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    char *t = rg_read_text(c->path);
    assert_non_null(t);
    return t;
}

/* d equals what the reader itself returns, byte for byte. */
static void assert_same(const dd_dataset *a, const dd_dataset *b) {
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->channels, b->channels);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->n_classes, b->n_classes);
    assert_int_equal(a->dtype, b->dtype);
    assert_string_equal(a->name, b->name);
    for (int k = 0; k < a->n_classes; k++)
        assert_string_equal(a->class_names[k], b->class_names[k]);
    assert_memory_equal(a->mean, b->mean, sizeof a->mean);
    assert_memory_equal(a->std, b->std, sizeof a->std);
    assert_memory_equal(a->labels, b->labels, (size_t)a->n * sizeof(int32_t));
    assert_int_equal(dd_dataset_bytes(a), dd_dataset_bytes(b));
    assert_memory_equal(a->pixels, b->pixels, dd_dataset_bytes(a));
    // and through the accessor every consumer uses
    float *ga = rg_images(a), *gb = rg_images(b);
    assert_memory_equal(ga, gb, (size_t)a->n * dd_dataset_image_size(a) * sizeof(float));
    free(ga);
    free(gb);
}

static void assert_expected(fx *f, const dd_dataset *train, const dd_dataset *test) {
    dd_dataset *rt = NULL, *rs = NULL;
    dd_dataset_request req = {sizeof req, "mnist", f->in, f->opts, 0, 0};
    assert_int_equal(g_real->load(&req, &rt, &rs), DD_OK);
    assert_same(train, rt);
    assert_same(test, rs);
    dd_dataset_destroy(rt);
    dd_dataset_destroy(rs);
}

static uint64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void test_written_once_then_reused(void **state) {
    fx *f = *state;
    dd_dataset *tr, *te;
    dd_dcache_info info;
    assert_int_equal(load(f, DD_MEMORY_AUTO, "k1", &tr, &te, &info), DD_OK);
    assert_true(info.written);
    assert_false(info.reused);
    assert_false(info.mapped); // far below the 1 GiB default threshold
    assert_int_equal(calls(f), 1);
    assert_true(file_size(info.train_path) > (uint64_t)NTR * SIDE * SIDE);
    assert_true(file_size(info.test_path) > (uint64_t)NTE * SIDE * SIDE);
    assert_expected(f, tr, te);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    for (int round = 0; round < 2; round++) {
        dd_dcache_info again;
        assert_int_equal(load(f, round ? DD_MEMORY_MMAP : DD_MEMORY_RAM, "k1", &tr, &te, &again),
                         DD_OK);
        assert_true(again.reused);
        assert_false(again.written);
        assert_false(again.rebuilt);
        assert_int_equal(again.mapped, round);
        assert_string_equal(again.train_path, info.train_path);
        assert_int_equal(calls(f), 1); // the reader was not asked again
        assert_expected(f, tr, te);
        dd_dataset_destroy(tr);
        dd_dataset_destroy(te);
    }
}

static void test_mapped_set(void **state) {
    fx *f = *state;
    dd_dataset *tr, *te, *rt, *rs;
    dd_dcache_info info;
    // written and mapped at once
    assert_int_equal(load(f, DD_MEMORY_MMAP, "k1", &tr, &te, &info), DD_OK);
    assert_true(info.written && info.mapped);
    assert_true(dd_dataset_is_mapped(tr) && dd_dataset_is_mapped(te));
    assert_int_equal((uintptr_t)tr->pixels % 4096, 0);
    assert_null(dd_dataset_u8(tr, 0)); // read-only: no reader writes into it
    assert_int_equal(load(f, DD_MEMORY_RAM, "k1", &rt, &rs, &info), DD_OK);
    assert_false(dd_dataset_is_mapped(rt));
    assert_non_null(dd_dataset_u8(rt, 0));
    assert_same(tr, rt);
    assert_same(te, rs);
    // a subset of a mapped set is an ordinary one
    const int64_t idx[] = {7, 0, 39, 7};
    dd_dataset *sm, *sr;
    assert_int_equal(dd_dataset_subset(tr, idx, 4, "s", &sm), DD_OK);
    assert_int_equal(dd_dataset_subset(rt, idx, 4, "s", &sr), DD_OK);
    assert_false(dd_dataset_is_mapped(sm));
    assert_same(sm, sr);
    dd_dataset_destroy(sm);
    dd_dataset_destroy(sr);
    // a batch gathered by index is the same from either
    float *a = malloc(4 * SIDE * SIDE * sizeof(float)),
          *b = malloc(4 * SIDE * SIDE * sizeof(float));
    assert_int_equal(dd_dataset_gather(tr, idx, 4, a), DD_OK);
    assert_int_equal(dd_dataset_gather(rt, idx, 4, b), DD_OK);
    assert_memory_equal(a, b, 4 * SIDE * SIDE * sizeof(float));
    free(a);
    free(b);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    dd_dataset_destroy(rt);
    dd_dataset_destroy(rs);
}

static void test_auto_threshold(void **state) {
    fx *f = *state;
    dd_dataset_request req = {sizeof req, "mnist", f->in, f->opts, 0, 0};
    dd_dcache_config c = {.dir = f->cache,
                          .key_text = "k1",
                          .inputs = f->in,
                          .memory = DD_MEMORY_AUTO,
                          .mmap_threshold = 1000};
    dd_dataset *tr, *te;
    dd_dcache_info info;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(dd_dcache_load(&c, &g_ops, &req, &tr, &te, &info), DD_OK);
        assert_int_equal(info.written, !round);
        assert_true(info.mapped); // 56 images of 784 bytes > 1000
        assert_true(dd_dataset_is_mapped(tr));
        assert_expected(f, tr, te);
        dd_dataset_destroy(tr);
        dd_dataset_destroy(te);
    }
    c.mmap_threshold = (NTR + NTE) * SIDE * SIDE; // not above it
    assert_int_equal(dd_dcache_load(&c, &g_ops, &req, &tr, &te, &info), DD_OK);
    assert_true(info.reused);
    assert_false(info.mapped);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    assert_int_equal(calls(f), 1);
}

static void test_rebuilt_when_key_changes(void **state) {
    fx *f = *state;
    dd_dataset *tr, *te;
    dd_dcache_info a, b;
    assert_int_equal(load(f, DD_MEMORY_RAM, "option max_images=0\n", &tr, &te, &a), DD_OK);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    assert_int_equal(load(f, DD_MEMORY_RAM, "option max_images=5\n", &tr, &te, &b), DD_OK);
    assert_true(b.written);
    assert_int_equal(calls(f), 2);
    assert_string_not_equal(a.train_path, b.train_path);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    // both stay usable
    assert_int_equal(load(f, DD_MEMORY_RAM, "option max_images=0\n", &tr, &te, &a), DD_OK);
    assert_true(a.reused);
    assert_int_equal(calls(f), 2);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
}

static void sleep_ms(int ms) {
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_rebuilt_when_an_input_changes(void **state) {
    fx *f = *state;
    dd_dataset *tr, *te;
    dd_dcache_info info;
    assert_int_equal(load(f, DD_MEMORY_MMAP, "k", &tr, &te, &info), DD_OK);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    char first[sizeof info.train_path];
    snprintf(first, sizeof first, "%s", info.train_path);
    // another size
    assert_int_equal(rg_write_mnist(f->in, NTR - 3, NTE, SIDE, SIDE, 0), DD_OK);
    assert_int_equal(load(f, DD_MEMORY_MMAP, "k", &tr, &te, &info), DD_OK);
    assert_true(info.written);
    assert_int_equal(calls(f), 2);
    assert_int_equal(tr->n, NTR - 3);
    assert_string_equal(info.train_path, first); // replaced, not one file more
    assert_expected(f, tr, te);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    // the same size, one pixel changed (a later mtime)
    sleep_ms(20);
    char *img = rg_strf("%s/train-images-idx3-ubyte", f->in);
    const uint8_t v = (uint8_t)(rg_mnist_pixel(0, 0, 0) ^ 0x5a);
    assert_int_equal(rg_patch(img, 16, &v, 1), DD_OK);
    assert_int_equal(load(f, DD_MEMORY_RAM, "k", &tr, &te, &info), DD_OK);
    assert_true(info.written);
    assert_int_equal(calls(f), 3);
    assert_int_equal(((const uint8_t *)tr->pixels)[0], v);
    assert_expected(f, tr, te);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    free(img);
}

/* Damages the train file with `damage`, then loads in `mode`: a warning
 * naming the file and `why`, the data rebuilt and correct, the file whole. */
static void damaged(fx *f, dd_memory_mode mode, void (*damage)(const char *path), const char *why) {
    dd_dataset *tr, *te;
    dd_dcache_info info;
    assert_int_equal(load(f, mode, "k", &tr, &te, &info), DD_OK);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    const uint64_t good = file_size(info.train_path);
    sleep_ms(20); // a later ctime than the verified stamp's, on coarse clocks too
    damage(info.train_path);
    captured cap;
    capture_begin(f, &cap);
    dd_status s = load(f, mode, "k", &tr, &te, &info);
    char *err = capture_end(&cap);
    assert_int_equal(s, DD_OK);
    if (!strstr(err, info.train_path) || !strstr(err, why) || !strstr(err, "rebuilding"))
        fail_msg("expected a warning naming %s and '%s', got:\n%s", info.train_path, why, err);
    free(err);
    assert_true(info.rebuilt && info.written);
    assert_int_equal(calls(f), 2);
    assert_int_equal(file_size(info.train_path), good);
    assert_expected(f, tr, te);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    // and the rebuilt file is used again
    assert_int_equal(load(f, mode, "k", &tr, &te, &info), DD_OK);
    assert_true(info.reused);
    assert_int_equal(calls(f), 2);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
}

static void truncate_half(const char *path) {
    assert_int_equal(rg_truncate(path, (size_t)file_size(path) / 2), DD_OK);
}

static void truncate_header(const char *path) {
    assert_int_equal(rg_truncate(path, 100), DD_OK);
}

static void flip_last_pixel(const char *path) {
    uint8_t *d;
    size_t n;
    assert_int_equal(rg_read_file(path, &d, &n), DD_OK);
    const uint8_t v = (uint8_t)(d[n - 1] ^ 1);
    free(d);
    assert_int_equal(rg_patch(path, n - 1, &v, 1), DD_OK);
}

static void flip_label(const char *path) {
    uint8_t *d;
    size_t n;
    assert_int_equal(rg_read_file(path, &d, &n), DD_OK);
    const uint8_t v = (uint8_t)(d[256] ^ 1); // the first label
    free(d);
    assert_int_equal(rg_patch(path, 256, &v, 1), DD_OK);
}

static void other_version(const char *path) {
    const uint8_t v[4] = {99, 0, 0, 0};
    assert_int_equal(rg_patch(path, 8, v, 4), DD_OK);
}

static void garbage(const char *path) {
    char junk[300];
    memset(junk, 'z', sizeof junk);
    assert_int_equal(rg_write_file(path, junk, sizeof junk), DD_OK);
}

static void test_truncated_ram(void **state) {
    damaged(*state, DD_MEMORY_RAM, truncate_half, "truncated");
}
static void test_truncated_mmap(void **state) {
    damaged(*state, DD_MEMORY_MMAP, truncate_half, "truncated");
}
static void test_truncated_header(void **state) {
    damaged(*state, DD_MEMORY_AUTO, truncate_header, "shorter than the 256-byte header");
}
static void test_flipped_pixel_ram(void **state) {
    damaged(*state, DD_MEMORY_RAM, flip_last_pixel, "pixel checksum mismatch");
}
static void test_flipped_pixel_mmap(void **state) {
    damaged(*state, DD_MEMORY_MMAP, flip_last_pixel, "pixel checksum mismatch");
}
static void test_flipped_label(void **state) {
    damaged(*state, DD_MEMORY_MMAP, flip_label, "header checksum mismatch");
}
static void test_other_version(void **state) {
    damaged(*state, DD_MEMORY_RAM, other_version, "format version 99");
}
static void test_garbage(void **state) {
    damaged(*state, DD_MEMORY_RAM, garbage, "not a distill decoded cache");
}

/* Several processes load the same uncached set at once: one decodes, all
 * get the right data, one valid pair of files remains and nothing else. */
static void test_concurrent_loads(void **state) {
    fx *f = *state;
    g_sleep_ms = 300; // the first decoder holds the lock while the others arrive
    enum { KIDS = 3 };
    pid_t kids[KIDS];
    for (int k = 0; k < KIDS; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            dd_dataset *tr = NULL, *te = NULL, *rt = NULL, *rs = NULL;
            dd_dcache_info info;
            dd_status s = load(f, k % 2 ? DD_MEMORY_MMAP : DD_MEMORY_RAM, "k", &tr, &te, &info);
            dd_dataset_request req = {sizeof req, "mnist", f->in, f->opts, 0, 0};
            int ok = s == DD_OK && g_real->load(&req, &rt, &rs) == DD_OK &&
                     dd_dataset_bytes(tr) == dd_dataset_bytes(rt) &&
                     memcmp(tr->pixels, rt->pixels, dd_dataset_bytes(rt)) == 0 &&
                     memcmp(te->pixels, rs->pixels, dd_dataset_bytes(rs)) == 0 &&
                     memcmp(tr->labels, rt->labels, (size_t)rt->n * 4) == 0;
            if (!ok) fprintf(stderr, "child %d: %s\n", k, s ? dd_error_message() : "wrong data");
            _exit(ok ? 0 : 1);
        }
    }
    for (int k = 0; k < KIDS; k++) {
        int st = 0;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    g_sleep_ms = 0;
    assert_int_equal(calls(f), 1);
    DIR *d = opendir(f->cache);
    assert_non_null(d);
    int ddc = 0, other = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        size_t len = strlen(n);
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strcmp(n, ".lock") == 0) continue;
        if (len > 4 && strcmp(n + len - 4, ".ddc") == 0)
            ddc++;
        else if (!(len > 13 && strcmp(n + len - 13, ".ddc.verified") == 0)) {
            fprintf(stderr, "left over: %s\n", n);
            other++;
        }
    }
    closedir(d);
    assert_int_equal(ddc, 2);
    assert_int_equal(other, 0);
    dd_dataset *tr, *te;
    dd_dcache_info info;
    assert_int_equal(load(f, DD_MEMORY_MMAP, "k", &tr, &te, &info), DD_OK);
    assert_true(info.reused);
    assert_expected(f, tr, te);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
}

/* dataset.max_bytes bounds RAM: a mapped set is not refused by it. */
static void test_mapped_not_held_to_max_bytes(void **state) {
    fx *f = *state;
    dd_dataset *tr, *te;
    dd_dcache_info info;
    assert_int_equal(load(f, DD_MEMORY_RAM, "k", &tr, &te, &info), DD_OK);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    dd_limits_set(0, 0, 10000);
    assert_int_equal(load(f, DD_MEMORY_MMAP, "k", &tr, &te, &info), DD_OK);
    assert_true(info.reused && info.mapped);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    assert_int_equal(load(f, DD_MEMORY_RAM, "k", &tr, &te, &info), DD_ERR_LIMIT);
    assert_non_null(strstr(dd_error_message(), "dataset.max_bytes"));
    assert_null(tr);
    assert_null(te);
    dd_limits_set(0, 0, 0);
}

/* Links back up the input tree (two of them: exponential if followed) are
 * not walked again; a link to a file is listed as the file it reaches. */
static void test_inputs_with_link_loops(void **state) {
    fx *f = *state;
    char *a = rg_strf("%s/loop", f->in), *b = rg_strf("%s/sub", f->in);
    char *c = rg_strf("%s/sub/up", f->in), *e = rg_strf("%s/extra", f->in);
    assert_int_equal(symlink(".", a), 0);
    assert_int_equal(rg_mkdirs(b), DD_OK);
    assert_int_equal(symlink("..", c), 0);
    assert_int_equal(symlink("train-labels-idx1-ubyte", e), 0);
    dd_dataset *tr, *te;
    dd_dcache_info info;
    assert_int_equal(load(f, DD_MEMORY_AUTO, "k", &tr, &te, &info), DD_OK);
    assert_true(info.written);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    assert_int_equal(load(f, DD_MEMORY_AUTO, "k", &tr, &te, &info), DD_OK);
    assert_true(info.reused);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    free(a);
    free(b);
    free(c);
    free(e);
}

static int count_spills(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strncmp(e->d_name, ".spill.", 7) == 0;
    if (d) closedir(d);
    return n;
}

/* With memory: mmap even the first decode writes the pixels straight into
 * the file (a spill), so a set above dataset.max_bytes loads; a reader that
 * fails leaves no spill file behind. */
static void test_first_decode_beyond_max_bytes(void **state) {
    fx *f = *state;
    dd_limits_set(0, 0, 10000); // far below the 31 KB train split
    dd_dataset *tr, *te;
    dd_dcache_info info;
    assert_int_equal(load(f, DD_MEMORY_RAM, "k", &tr, &te, &info), DD_ERR_LIMIT);
    assert_int_equal(load(f, DD_MEMORY_MMAP, "k", &tr, &te, &info), DD_OK);
    assert_true(info.written && info.mapped);
    assert_true(dd_dataset_is_mapped(tr) && dd_dataset_is_mapped(te));
    assert_int_equal(count_spills(f->cache), 0);
    dd_limits_set(0, 0, 0);
    assert_expected(f, tr, te);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    // the file it left is a normal one: used again, in RAM too
    assert_int_equal(load(f, DD_MEMORY_RAM, "k", &tr, &te, &info), DD_OK);
    assert_true(info.reused);
    assert_expected(f, tr, te);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    // a reader failing after it allocated its (spilled) train split
    assert_int_equal(rg_write_mnist(f->in, NTR, NTE, SIDE, SIDE, 0), DD_OK);
    char *labels = rg_strf("%s/t10k-labels-idx1-ubyte", f->in);
    assert_int_equal(rg_truncate(labels, 20), DD_OK);
    assert_int_not_equal(load(f, DD_MEMORY_MMAP, "k", &tr, &te, &info), DD_OK);
    assert_null(tr);
    assert_null(te);
    assert_int_equal(count_spills(f->cache), 0);
    free(labels);
}

/* A cache directory that cannot be created: RAM with a warning, or for
 * memory: mmap an error saying why. */
static void test_unusable_cache_dir(void **state) {
    fx *f = *state;
    char *file = rg_strf("%s/plain-file", f->rf->dir);
    assert_int_equal(rg_write_text(file, "x"), DD_OK);
    free(f->cache);
    f->cache = rg_strf("%s/decoded", file); // below a regular file
    dd_dataset *tr, *te;
    dd_dcache_info info;
    captured cap;
    capture_begin(f, &cap);
    dd_status s = load(f, DD_MEMORY_AUTO, "k", &tr, &te, &info);
    char *err = capture_end(&cap);
    assert_int_equal(s, DD_OK);
    assert_non_null(strstr(err, "decoded cache not used"));
    free(err);
    assert_false(info.written || info.mapped);
    assert_expected(f, tr, te);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    s = load(f, DD_MEMORY_MMAP, "k", &tr, &te, &info);
    assert_int_not_equal(s, DD_OK);
    assert_non_null(strstr(dd_error_message(), "dataset.memory: mmap"));
    assert_null(tr);
    free(file);
}

/* ---- every reader through the cache ---------------------------------------- */

typedef struct reader_case {
    const char *plugin, *dataset;
    int side; // requested height = width; 0 = native
} reader_case;

static dd_status write_fixture(const char *plugin, const char *dir) {
    if (strcmp(plugin, "mnist") == 0) return rg_write_mnist(dir, 20, 8, 28, 28, 1);
    if (strcmp(plugin, "cifar10") == 0) return rg_write_cifar10(dir, 6, 5);
    if (strcmp(plugin, "usps") == 0) return rg_write_usps(dir, 10, 5, 1);
    if (strcmp(plugin, "cub200") == 0) return rg_write_cub(dir, 3, 4);
    int n;
    const rg_voc_image *im = rg_voc_fixture(&n);
    return rg_write_voc(dir, im, n);
}

/* Each reader on its usual fixture: what comes back from the cache, in RAM
 * and mapped, is what the reader itself returns. */
static void test_every_reader_through_the_cache(void **state) {
    (void)state;
    static const reader_case cases[] = {{"mnist", "mnist", 0},
                                        {"cifar10", "cifar10", 0},
                                        {"usps", "usps", 0},
                                        {"pascal-voc", "pascal-voc", 16},
                                        {"cub200", "cub200", 12}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const reader_case *rc = &cases[i];
        rg_fixture *f = rg_fixture_open(rc->plugin, "dcache-reader");
        assert_non_null(f);
        assert_int_equal(write_fixture(rc->plugin, f->dir), DD_OK);
        dd_options *o = NULL;
        assert_int_equal(dd_options_from_strings(f->comp->params, NULL, &o), DD_OK);
        dd_dataset_request req = {sizeof req, rc->dataset, f->dir, o, rc->side, rc->side};
        char *cache = rg_strf("%s/decoded", f->dir);
        dd_dataset *rt, *rs;
        assert_int_equal(((const dd_dataset_ops *)f->comp->ops)->load(&req, &rt, &rs), DD_OK);
        static const dd_memory_mode modes[] = {DD_MEMORY_RAM, DD_MEMORY_RAM, DD_MEMORY_MMAP};
        for (int m = 0; m < 3; m++) {
            dd_dcache_config c = {
                .dir = cache, .key_text = rc->plugin, .inputs = f->dir, .memory = modes[m]};
            dd_dataset *tr, *te;
            dd_dcache_info info;
            if (dd_dcache_load(&c, f->comp->ops, &req, &tr, &te, &info) != DD_OK)
                fail_msg("%s: %s", rc->plugin, dd_error_message());
            assert_int_equal(info.reused, m > 0);
            assert_int_equal(info.mapped, m == 2);
            assert_same(tr, rt);
            assert_same(te, rs);
            dd_dataset_destroy(tr);
            dd_dataset_destroy(te);
        }
        dd_dataset_destroy(rt);
        dd_dataset_destroy(rs);
        free(cache);
        dd_options_destroy(o);
        rg_fixture_close(f);
    }
}

/* float32 sets (npz float arrays) and names at the length cap round-trip. */
static void test_f32_round_trip(void **state) {
    fx *f = *state;
    dd_dataset *d;
    assert_int_equal(dd_dataset_create("npz/train", DD_DTYPE_F32, 5, 3, 4, 2, 3, &d), DD_OK);
    for (int64_t i = 0; i < 5; i++) {
        float *px = dd_dataset_f32(d, i);
        for (size_t p = 0; p < dd_dataset_image_size(d); p++)
            px[p] = (float)i - 0.37f * (float)p;
        d->labels[i] = (int32_t)(i % 3);
    }
    char long_name[5000];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(dd_dataset_set_class_name(d, 2, "tench, Tinca tinca"), DD_OK);
    d->mean[0] = 0.25f;
    d->std[2] = 2.5f;
    uint8_t key[32] = {1, 2, 3};
    char *path = rg_strf("%s/f32.ddc", f->rf->dir);
    assert_int_equal(dd_dcache_write(path, key, d), DD_OK);
    for (int map = 0; map < 2; map++) {
        dd_dataset *back;
        assert_int_equal(dd_dcache_open(path, key, map, &back), DD_OK);
        assert_same(back, d);
        dd_dataset_destroy(back);
    }
    uint8_t other[32] = {9};
    dd_dataset *back = NULL;
    assert_int_equal(dd_dcache_open(path, other, 0, &back), DD_ERR_NOT_FOUND);
    assert_null(back);
    // a class name beyond the cap is cut, never overflows
    assert_int_equal(dd_dataset_set_class_name(d, 0, long_name), DD_OK);
    assert_int_equal(dd_dcache_write(path, key, d), DD_OK);
    assert_int_equal(dd_dcache_open(path, key, 1, &back), DD_OK);
    assert_int_equal(strlen(back->class_names[0]), 4096);
    dd_dataset_destroy(back);
    dd_dataset_destroy(d);
    free(path);
}

/* ---- --cli: ram and mmap runs give the same results ------------------------ */

static char *g_cli_dir;

/* Runs the pipeline with dataset.memory=`mem`; returns metrics.json without
 * its timing and memory lines. */
static char *cli_run(const char *mem, char **log_out) {
    const char *bin = getenv("DISTILL_BINARY_DIR");
    char *out = rg_strf("%s/out-%s", g_cli_dir, mem), *log = rg_strf("%s/%s.log", g_cli_dir, mem);
    char *cmd = rg_strf("OMP_NUM_THREADS=1 '%s/bin/distill' run '%s/p.yaml' --out '%s' "
                        "--cache-dir '%s/cache' --set dataset.memory=%s 2>'%s'",
                        bin ? bin : ".", g_cli_dir, out, g_cli_dir, mem, log);
    assert_int_equal(system(cmd), 0);
    *log_out = rg_read_text(log);
    char *m = rg_strf("%s/metrics.json", out);
    char *text = rg_read_text(m);
    assert_non_null(text);
    char *kept = calloc(1, strlen(text) + 1);
    assert_non_null(kept);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (!strstr(line, "seconds") && !strstr(line, "peak_memory") && !strstr(line, "\"run\""))
            strcat(strcat(kept, line), "\n");
    free(text);
    free(m);
    free(cmd);
    free(log);
    free(out);
    return kept;
}

/* A load-only run with extra --set arguments; returns its log. */
static char *cli_load(const char *tag, const char *sets) {
    const char *bin = getenv("DISTILL_BINARY_DIR");
    char *out = rg_strf("%s/out-%s", g_cli_dir, tag), *log = rg_strf("%s/%s.log", g_cli_dir, tag);
    char *cmd = rg_strf("'%s/bin/distill' run '%s/p.yaml' --out '%s' --cache-dir '%s/cache' "
                        "--set 'stages=[load]' %s 2>'%s'",
                        bin ? bin : ".", g_cli_dir, out, g_cli_dir, sets, log);
    assert_int_equal(system(cmd), 0);
    char *t = rg_read_text(log);
    assert_non_null(t);
    free(cmd);
    free(log);
    free(out);
    return t;
}

static void expect_log(const char *log, const char *a, const char *b) {
    if (!strstr(log, a) || !strstr(log, b)) fail_msg("expected '%s' and '%s' in:\n%s", a, b, log);
}

static void test_cli_ram_and_mmap_same_run(void **state) {
    (void)state;
    assert_int_equal(rg_mkdtemp("dcache-cli", &g_cli_dir), DD_OK);
    char *data = rg_strf("%s/data", g_cli_dir);
    assert_int_equal(rg_mkdirs(data), DD_OK);
    assert_int_equal(rg_write_mnist(data, 200, 60, 28, 28, 0), DD_OK);
    char *yaml = rg_strf("name: dcache\nseed: 4\nstages: [load, distill, evaluate, report]\n"
                         "dataset: {plugin: mnist, name: mnist, path: %s}\n"
                         "model: {plugin: lenet}\n"
                         "distill: {steps: 2, epochs: 1, iterations: 8, batch_real: 32,\n"
                         "          checkpoint_every: 0, threads: 1}\n"
                         "evaluate: {nets: 1, lr_search: 2, batch: 60, baselines: [random]}\n",
                         data);
    char *p = rg_strf("%s/p.yaml", g_cli_dir);
    assert_int_equal(rg_write_text(p, yaml), DD_OK);
    char *log_ram, *log_mmap;
    char *ram = cli_run("ram", &log_ram);    // decodes and writes the cache
    char *mmap = cli_run("mmap", &log_mmap); // maps it
    if (!strstr(log_mmap, "(decoded cache, mapped)"))
        fail_msg("the mmap run did not map the cache:\n%s", log_mmap);
    if (strstr(log_ram, "(decoded cache"))
        fail_msg("the first run found a cache it should have written:\n%s", log_ram);
    assert_non_null(strstr(ram, "\"distilled\""));
    assert_string_equal(ram, mmap);
    // a reader option is in the key, the cache's own switches are not
    char *t = cli_load("opt", "--set dataset.max_images=50");
    expect_log(t, "50 training / 50 test", "(decoded; cache written)");
    free(t);
    t = cli_load("thr", "--set dataset.mmap_threshold=5");
    expect_log(t, "200 training / 60 test", "(decoded cache, mapped)");
    free(t);
    t = cli_load("off", "--set dataset.cache=false");
    if (strstr(t, "decoded")) fail_msg("dataset.cache=false used the cache:\n%s", t);
    free(t);
    const char *bin = getenv("DISTILL_BINARY_DIR");
    char *log = rg_strf("%s/bad.log", g_cli_dir);
    char *cmd = rg_strf("'%s/bin/distill' run '%s/p.yaml' --out '%s/out-bad' --set "
                        "'stages=[load]' --set dataset.cache=false --set dataset.memory=mmap "
                        "2>'%s'",
                        bin ? bin : ".", g_cli_dir, g_cli_dir, log);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
    t = rg_read_text(log);
    expect_log(t, "dataset.memory: mmap", "dataset.cache is false");
    free(t);
    free(cmd);
    free(log);
    // the distilled set itself, byte for byte
    char *a = rg_strf("%s/out-ram/distilled-images.idx", g_cli_dir);
    char *b = rg_strf("%s/out-mmap/distilled-images.idx", g_cli_dir);
    uint8_t *da, *db;
    size_t na, nb;
    assert_int_equal(rg_read_file(a, &da, &na), DD_OK);
    assert_int_equal(rg_read_file(b, &db, &nb), DD_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
    free(da);
    free(db);
    free(a);
    free(b);
    free(ram);
    free(mmap);
    free(log_ram);
    free(log_mmap);
    free(p);
    free(yaml);
    free(data);
    if (!getenv("KEEP_TMP")) rg_rmtree(g_cli_dir);
    free(g_cli_dir);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--cli") == 0) {
        const struct CMUnitTest cli[] = {cmocka_unit_test(test_cli_ram_and_mmap_same_run)};
        return cmocka_run_group_tests(cli, NULL, NULL);
    }
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_written_once_then_reused),
        T(test_mapped_set),
        T(test_auto_threshold),
        T(test_rebuilt_when_key_changes),
        T(test_rebuilt_when_an_input_changes),
        T(test_truncated_ram),
        T(test_truncated_mmap),
        T(test_truncated_header),
        T(test_flipped_pixel_ram),
        T(test_flipped_pixel_mmap),
        T(test_flipped_label),
        T(test_other_version),
        T(test_garbage),
        T(test_concurrent_loads),
        T(test_mapped_not_held_to_max_bytes),
        T(test_unusable_cache_dir),
        T(test_first_decode_beyond_max_bytes),
        T(test_inputs_with_link_loops),
        T(test_f32_round_trip),
        cmocka_unit_test(test_every_reader_through_the_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
