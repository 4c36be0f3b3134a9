/* distill tests — the npz reader (NumPy .npz files and directories of .npy
 * files) on generated arrays: layouts, dtypes, stored and deflated members,
 * probe, every malformed header or inconsistent array refused with the file's
 * name; Fashion-MNIST read as .npz equals the mnist reader's IDX read
 * (--fashion); distilled.npz parsed strictly and read back. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "distill/dataset.h"
#include "distill/limits.h"
#include "distill/image.h"
#include "engine/distilled.h"
#include "distill/npy.h"
#include "npy_gen.h"
#include "readers_gen.h"

enum { NTR = 6, NTE = 4, C = 3, H = 5, W = 3, HW = H * W, D = C * HW };

static uint8_t pix(int split, int i, int c, int p) {
    return (uint8_t)((split * 7 + i * 31 + c * 17 + p * 5 + (p * p) % 11) % 256);
}
static int label_of(int split, int i) {
    return (i + split) % 4;
}

/* ---- writing .npy the way numpy does (independently of the core's writer) -- */

typedef rg_blob blob;
#define npy_raw rg_npy_raw
#define npy rg_npy

/* x (uint8 or float32 = byte/255, NHWC or NCHW, or 3-D with one channel). */
static blob make_x(int split, int n, int ch, int nchw, int f32) {
    size_t count = (size_t)n * ch * HW, isz = f32 ? 4 : 1;
    uint8_t *buf = malloc(count * isz);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < ch; c++)
            for (int p = 0; p < HW; p++) {
                size_t off = nchw ? ((size_t)i * ch + c) * HW + p : ((size_t)i * HW + p) * ch + c;
                uint8_t v = pix(split, i, c, p);
                if (f32) {
                    float f = v * (1.0f / 255.0f);
                    memcpy(buf + off * 4, &f, 4);
                } else {
                    buf[off] = v;
                }
            }
    char shape[64];
    if (ch == 0) // 3-D: the channel axis left out (ch counted as 1 above)
        snprintf(shape, sizeof shape, "(%d, %d, %d)", n, H, W);
    else if (nchw)
        snprintf(shape, sizeof shape, "(%d, %d, %d, %d)", n, ch, H, W);
    else
        snprintf(shape, sizeof shape, "(%d, %d, %d, %d)", n, H, W, ch);
    blob b = npy(f32 ? "<f4" : "|u1", shape, buf, count * isz);
    free(buf);
    return b;
}

static blob make_x3(int split, int n) {
    uint8_t *buf = malloc((size_t)n * HW);
    for (int i = 0; i < n; i++)
        for (int p = 0; p < HW; p++)
            buf[i * HW + p] = pix(split, i, 0, p);
    char shape[64];
    snprintf(shape, sizeof shape, "(%d, %d, %d)", n, H, W);
    blob b = npy("|u1", shape, buf, (size_t)n * HW);
    free(buf);
    return b;
}

/* y in any integer dtype ("<i8", ">i4", "|u1", ...). */
static blob make_y(int split, int n, const char *descr) {
    int size = descr[2] - '0', be = descr[0] == '>';
    uint8_t *buf = calloc((size_t)n, (size_t)size);
    for (int i = 0; i < n; i++) {
        uint64_t v = (uint64_t)label_of(split, i);
        for (int k = 0; k < size; k++)
            buf[i * size + (be ? size - 1 - k : k)] = (uint8_t)(v >> (8 * k));
    }
    char shape[32];
    snprintf(shape, sizeof shape, "(%d,)", n);
    blob b = npy(descr, shape, buf, (size_t)n * size);
    free(buf);
    return b;
}

static const char *const member_names[4] = {"x_train.npy", "y_train.npy", "x_test.npy",
                                            "y_test.npy"};

static void write_dir(const char *dir, blob *m) {
    for (int k = 0; k < 4; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, member_names[k]);
        assert_int_equal(rg_write_file(path, m[k].p, m[k].n), DD_OK);
    }
}

/* A zip of the members, stored or deflated (as zipfile would). */
static void write_zip(const char *path, const char *const *names, blob *m, int n, int deflate) {
    assert_int_equal(rg_write_zip(path, names, m, n, deflate), DD_OK);
}

static void free_blobs(blob *m, int n) {
    for (int k = 0; k < n; k++)
        free(m[k].p);
}

static void std_set(blob *m, int nchw, int f32, const char *ydescr) {
    m[0] = make_x(0, NTR, C, nchw, f32);
    m[1] = make_y(0, NTR, ydescr);
    m[2] = make_x(1, NTE, C, nchw, f32);
    m[3] = make_y(1, NTE, ydescr);
}

/* ---- fixture --------------------------------------------------------------- */

static int setup(void **state) {
    return (*state = rg_fixture_open("npz", "npz")) ? 0 : -1;
}

static int teardown(void **state) {
    rg_fixture_close(*state);
    return 0;
}

static dd_status read_at(rg_fixture *f, const char *root, const char *const *kv, dd_dataset **tr,
                         dd_dataset **te) {
    return rg_read(f->comp, "npz", root, kv, 0, 0, tr, te);
}

/* Expects the read of `root` to fail with `status` and a message holding a and b. */
static void expect_err(rg_fixture *f, const char *root, const char *const *kv, dd_status status,
                       const char *a, const char *b) {
    dd_dataset *tr = (dd_dataset *)1, *te = (dd_dataset *)1;
    dd_status st = read_at(f, root, kv, &tr, &te);
    const char *msg = dd_error_message();
    if (st != status || !strstr(msg, a) || !strstr(msg, b))
        fail_msg("expected status %d with '%s' and '%s', got %d: %s", status, a, b, st, msg);
    assert_null(tr);
    assert_null(te);
}

static void check_split(const dd_dataset *d, int split, int n, int ch) {
    assert_int_equal(d->n, n);
    assert_int_equal(d->channels, ch);
    assert_int_equal(d->height, H);
    assert_int_equal(d->width, W);
    assert_int_equal(d->n_classes, 4);
    uint8_t back[D];
    for (int i = 0; i < n; i++) {
        assert_int_equal(d->labels[i], label_of(split, i));
        dd_image_denormalize(rg_image(d, i), W, H, ch, d->mean, d->std, back);
        for (int c = 0; c < ch; c++)
            for (int p = 0; p < HW; p++)
                assert_int_equal(back[p * ch + c], pix(split, i, c, p));
        // uint8 stays uint8: normalised bit for bit as the reader once stored it
        for (int c = 0; c < ch; c++)
            for (int p = 0; p < HW; p++)
                back[p * ch + c] = pix(split, i, c, p);
        if (d->dtype == DD_DTYPE_U8) assert_true(rg_old_path_image(d, i, back));
    }
    if (d->dtype == DD_DTYPE_U8) {
        assert_true(rg_old_path_batch(d));
        assert_int_equal(dd_dataset_bytes(d), (size_t)n * ch * HW);
    }
}

/* ---- reading ---------------------------------------------------------------- */

static void test_dir_nhwc_uint8(void **state) {
    rg_fixture *f = *state;
    blob m[4];
    std_set(m, 0, 0, "<i8");
    write_dir(f->dir, m);
    free_blobs(m, 4);
    dd_dataset *tr, *te;
    assert_int_equal(read_at(f, f->dir, NULL, &tr, &te), DD_OK);
    check_split(tr, 0, NTR, C);
    check_split(te, 1, NTE, C);
    assert_string_equal(tr->name, "npz/train");
    assert_string_equal(tr->class_names[3], "3");
    // mean/std measured on the training images, per channel, in [0, 1] pixel scale
    for (int c = 0; c < C; c++) {
        double s1 = 0, s2 = 0;
        for (int i = 0; i < NTR; i++)
            for (int p = 0; p < HW; p++) {
                double v = pix(0, i, c, p) / 255.0;
                s1 += v, s2 += v * v;
            }
        double mean = s1 / (NTR * HW), sd = sqrt(s2 / (NTR * HW) - mean * mean);
        assert_float_equal(tr->mean[c], mean, 1e-6);
        assert_float_equal(tr->std[c], sd, 1e-6);
        assert_true(tr->mean[c] == te->mean[c] && tr->std[c] == te->std[c]);
    }
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
}

/* The same normalised images (as gathered), labels and statistics. */
static int same_dataset(const dd_dataset *a, const dd_dataset *b) {
    if (a->n != b->n || a->channels != b->channels || a->n_classes != b->n_classes) return 0;
    float *xa = rg_images(a), *xb = rg_images(b);
    int same = memcmp(xa, xb, a->n * dd_dataset_image_size(a) * sizeof(float)) == 0 &&
               memcmp(a->labels, b->labels, (size_t)a->n * sizeof(int32_t)) == 0 &&
               memcmp(a->mean, b->mean, sizeof a->mean) == 0 &&
               memcmp(a->std, b->std, sizeof a->std) == 0;
    free(xa);
    free(xb);
    return same;
}

static int close_dataset(const dd_dataset *a, const dd_dataset *b) {
    if (a->n != b->n || a->channels != b->channels ||
        memcmp(a->labels, b->labels, (size_t)a->n * 4))
        return 0;
    float *xa = rg_images(a), *xb = rg_images(b);
    int close = 1;
    for (size_t i = 0; close && i < (size_t)a->n * dd_dataset_image_size(a); i++)
        close = fabsf(xa[i] - xb[i]) <= 1e-6f * (1 + fabsf(xa[i]));
    free(xa);
    free(xb);
    return close;
}

/* NHWC from a directory, NCHW from a stored .npz, NCHW from a deflated .npz:
 * the same images bit for bit; float32 in [0, 1] the same as uint8. */
static void test_layouts_members_and_float(void **state) {
    rg_fixture *f = *state;
    const char *mv[] = {"mean=[0.25, 0.5, 0.75]", "std=[0.2, 0.3, 0.4]", NULL};
    blob m[4];
    std_set(m, 0, 0, "<i8");
    write_dir(f->dir, m);
    free_blobs(m, 4);
    dd_dataset *a, *at, *b, *bt;
    assert_int_equal(read_at(f, f->dir, mv, &a, &at), DD_OK);
    assert_float_equal(a->mean[1], 0.5, 1e-7);
    assert_float_equal(a->std[2], 0.4, 1e-7);

    char stored[1024], deflated[1024];
    snprintf(stored, sizeof stored, "%s/stored.npz", f->dir);
    snprintf(deflated, sizeof deflated, "%s/deflated.npz", f->dir);
    std_set(m, 1, 0, "<i8");
    write_zip(stored, member_names, m, 4, 0);
    write_zip(deflated, member_names, m, 4, 1);
    free_blobs(m, 4);
    // the members really are stored (method 0) and deflated (method 8)
    uint8_t *z;
    size_t zn;
    assert_int_equal(rg_read_file(stored, &z, &zn), DD_OK);
    assert_int_equal(z[8], 0);
    free(z);
    assert_int_equal(rg_read_file(deflated, &z, &zn), DD_OK);
    assert_int_equal(z[8], 8);
    free(z);
    const char *nchw[] = {"layout=nchw", "mean=[0.25, 0.5, 0.75]", "std=[0.2, 0.3, 0.4]", NULL};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(read_at(f, k ? deflated : stored, nchw, &b, &bt), DD_OK);
        assert_true(same_dataset(a, b));
        assert_true(same_dataset(at, bt));
        dd_dataset_destroy(b);
        dd_dataset_destroy(bt);
    }
    // float32 images in [0, 1] (byte/255): the same normalized values as uint8
    std_set(m, 0, 1, "<i8");
    write_dir(f->dir, m);
    free_blobs(m, 4);
    // (the same formula; only a fused multiply-add in one of the two may differ)
    assert_int_equal(read_at(f, f->dir, mv, &b, &bt), DD_OK);
    assert_true(close_dataset(a, b));
    assert_true(close_dataset(at, bt));
    dd_dataset_destroy(b);
    dd_dataset_destroy(bt);
    // measured statistics agree too (uint8 and float32 alike)
    assert_int_equal(read_at(f, f->dir, NULL, &b, &bt), DD_OK);
    check_split(b, 0, NTR, C);
    dd_dataset_destroy(b);
    dd_dataset_destroy(bt);
    dd_dataset_destroy(a);
    dd_dataset_destroy(at);
}

static void test_3d_is_one_channel(void **state) {
    rg_fixture *f = *state;
    blob m[4] = {make_x3(0, NTR), make_y(0, NTR, "|u1"), make_x3(1, NTE), make_y(1, NTE, "|u1")};
    write_dir(f->dir, m);
    free_blobs(m, 4);
    dd_dataset *tr, *te;
    assert_int_equal(read_at(f, f->dir, NULL, &tr, &te), DD_OK);
    check_split(tr, 0, NTR, 1);
    check_split(te, 1, NTE, 1);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
}

/* Every integer label dtype, big-endian ones converted, gives the same labels. */
static void test_label_dtypes(void **state) {
    rg_fixture *f = *state;
    static const char *const types[] = {"|u1", "|i1", "<i2", "<u2", "<i4", "<u4",
                                        "<i8", "<u8", ">i2", ">u4", ">i8"};
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
        blob m[4];
        std_set(m, 0, 0, types[t]);
        write_dir(f->dir, m);
        free_blobs(m, 4);
        dd_dataset *tr, *te;
        if (read_at(f, f->dir, NULL, &tr, &te) != DD_OK)
            fail_msg("%s: %s", types[t], dd_error_message());
        check_split(tr, 0, NTR, C);
        check_split(te, 1, NTE, C);
        dd_dataset_destroy(tr);
        dd_dataset_destroy(te);
    }
}

static void test_options_and_probe(void **state) {
    rg_fixture *f = *state;
    blob m[4];
    std_set(m, 0, 0, "<i8");
    char path[1024];
    snprintf(path, sizeof path, "%s/set.npz", f->dir);
    write_zip(path, member_names, m, 4, 1);
    free_blobs(m, 4);
    const dd_dataset_ops *ops = f->comp->ops;
    assert_true(ops->flags & DD_DATASET_LOCAL);
    assert_non_null(ops->probe);
    dd_options *o;
    assert_int_equal(dd_options_from_strings(f->comp->params, NULL, &o), DD_OK);
    dd_dataset_request req = {sizeof req, "npz", path, o, 0, 0};
    dd_dataset_shape sh = {0};
    assert_int_equal(ops->probe(&req, &sh), DD_OK);
    assert_int_equal(sh.channels, C);
    assert_int_equal(sh.height, H);
    assert_int_equal(sh.width, W);
    assert_int_equal(sh.n_classes, 4);
    dd_options_destroy(o);
    const char *kv[] = {"classes=7", NULL};
    assert_int_equal(dd_options_from_strings(f->comp->params, kv, &o), DD_OK);
    req.options = o;
    assert_int_equal(ops->probe(&req, &sh), DD_OK);
    assert_int_equal(sh.n_classes, 7);
    dd_options_destroy(o);
    // a test label above every training label counts too (as for load)
    std_set(m, 0, 0, "|u1");
    m[3].p[m[3].n - 1] = 9;
    write_zip(path, member_names, m, 4, 0);
    free_blobs(m, 4);
    req.options = NULL;
    assert_int_equal(ops->probe(&req, &sh), DD_OK);
    assert_int_equal(sh.n_classes, 10);
    dd_dataset *t9, *t9t;
    assert_int_equal(read_at(f, path, NULL, &t9, &t9t), DD_OK);
    assert_int_equal(t9->n_classes, 10);
    assert_int_equal(t9t->labels[NTE - 1], 9);
    dd_dataset_destroy(t9);
    dd_dataset_destroy(t9t);
    std_set(m, 0, 0, "<i8");
    write_zip(path, member_names, m, 4, 1);
    free_blobs(m, 4);

    const char *names[] = {"class_names=[cat, dog, bird, fish, frog]", "max_images=2", NULL};
    dd_dataset *tr, *te;
    assert_int_equal(read_at(f, path, names, &tr, &te), DD_OK);
    assert_int_equal(tr->n_classes, 5);
    assert_int_equal(tr->n, 2);
    assert_int_equal(te->n, 2);
    assert_string_equal(te->class_names[4], "frog");
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
}

/* ---- the strict .npy parser ------------------------------------------------- */

static void expect_npy(blob b, const char *what) {
    dd_npy_array a;
    dd_status st = dd_npy_parse("t.npy", b.p, b.n, &a);
    if (st != DD_ERR_PARSE || !strstr(dd_error_message(), what) ||
        !strstr(dd_error_message(), "t.npy"))
        fail_msg("expected a parse error with '%s', got %d: %s", what, st, dd_error_message());
    free(b.p);
}

static void test_npy_parser(void **state) {
    (void)state;
    uint8_t data[24] = {1, 2, 3, 4, 5, 6};
    dd_npy_array a;
    // well-formed, version 1.0, 2.0 and 3.0; old 16-byte alignment accepted
    for (int v = 1; v <= 3; v++) {
        blob b = npy_raw(v, "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3), }",
                         v == 3 ? 16 : 64, data, 12);
        assert_int_equal(dd_npy_parse("t.npy", b.p, b.n, &a), DD_OK);
        assert_int_equal(a.ndim, 2);
        assert_int_equal(a.shape[1], 3);
        assert_int_equal(a.count, 6);
        assert_int_equal(dd_npy_int_at(&a, 1), 3 | 4 << 8);
        free(b.p);
    }
    // other key order, no trailing comma, 0-d and 1-d shapes
    blob b = npy_raw(1, "{'shape': (), 'fortran_order': False, 'descr': '<f4'}", 64, data, 4);
    assert_int_equal(dd_npy_parse("t.npy", b.p, b.n, &a), DD_OK);
    assert_int_equal(a.ndim, 0);
    free(b.p);

    b = npy("<f4", "(6,)", data, 24);
    memcpy(b.p, "\x93NUMPX", 6);
    expect_npy(b, "magic");
    b = npy("<f4", "(6,)", data, 24);
    b.p[6] = 4;
    expect_npy(b, "version 4.0");
    b = npy("<f4", "(6,)", data, 24);
    b.p[7] = 1;
    expect_npy(b, "version 1.1");
    expect_npy(
        npy_raw(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 64, data, 24),
        "Fortran");
    expect_npy(npy("<f2", "(6,)", data, 12), "dtype '<f2'");
    expect_npy(npy("|i4", "(6,)", data, 24), "dtype '|i4'");
    expect_npy(npy("<c8", "(3,)", data, 24), "dtype '<c8'");
    expect_npy(npy("<f4", "(6,)", data, 20), "truncated");
    b = npy("<f4", "(6,)", data, 20);
    dd_npy_array t;
    assert_int_equal(dd_npy_parse("t.npy", b.p, b.n, &t), DD_ERR_PARSE);
    assert_non_null(strstr(dd_error_message(), "need 24 bytes, the file has 20"));
    free(b.p);
    expect_npy(npy("<f4", "(5,)", data, 24), "4 trailing bytes");
    expect_npy(npy("<f4", "(6)", data, 24), "1-tuple");
    expect_npy(npy("<f4", "(-6,)", data, 24), "non-negative integers");
    expect_npy(npy("<f4", "(99999999999999999999,)", data, 24), "overflows");
    expect_npy(npy("|u1", "(1000000, 1000000, 1000000)", data, 24), "refused");
    expect_npy(npy("<f4", "(1, 1, 1, 1, 1, 1, 1, 1, 1)", data, 4), "more than 8");
    expect_npy(
        npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", 64, data, 24),
        "unknown key 'x'");
    expect_npy(npy_raw(1, "{'descr': '<f4', 'fortran_order': False}", 64, data, 24),
               "lacks the key 'shape'");
    expect_npy(npy_raw(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}",
                       64, data, 24),
               "duplicate key 'descr'");
    expect_npy(npy_raw(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}", 64,
                       data, 24),
               "structured");
    expect_npy(
        npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x", 64, data, 24),
        "padding");
    expect_npy(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", 8, data, 24),
               "multiple of 16");
    // header not ending in '\n'
    b = npy("<f4", "(6,)", data, 24);
    b.p[b.n - 24 - 1] = ' '; // the '\n' before the data
    expect_npy(b, "'\\n'");
    // cut inside the header
    b = npy("<f4", "(6,)", data, 24);
    b.n = 30;
    expect_npy(b, "truncated .npy header");
}

/* Errors through the reader name the file (directory member or npz:member). */
static void test_reader_errors(void **state) {
    rg_fixture *f = *state;
    blob m[4];
    // wrong image dtype
    std_set(m, 0, 0, "<i8");
    free(m[0].p);
    uint8_t z[NTR * D * 8] = {0};
    m[0] = npy("<f8", "(6, 5, 3, 3)", z, sizeof z);
    write_dir(f->dir, m);
    free_blobs(m, 4);
    expect_err(f, f->dir, NULL, DD_ERR_PARSE, "x_train.npy", "expected uint8 ('|u1') or float32");
    // float labels
    std_set(m, 0, 0, "<i8");
    free(m[3].p);
    m[3] = npy("<f4", "(4,)", z, 16);
    write_dir(f->dir, m);
    free_blobs(m, 4);
    expect_err(f, f->dir, NULL, DD_ERR_PARSE, "y_test.npy", "expected an integer type");
    // x/y length mismatch
    std_set(m, 0, 0, "<i8");
    free(m[1].p);
    m[1] = make_y(0, NTR - 1, "<i8");
    write_dir(f->dir, m);
    free_blobs(m, 4);
    expect_err(f, f->dir, NULL, DD_ERR_PARSE, "has 6 images", "has 5 labels");
    // labels out of range: the classes option, and a negative label
    std_set(m, 0, 0, "<i8");
    write_dir(f->dir, m);
    free_blobs(m, 4);
    const char *three[] = {"classes=3", NULL};
    expect_err(f, f->dir, three, DD_ERR_PARSE, "label 3 is out of range", "3 classes");
    const char *names[] = {"class_names=[a, b]", NULL};
    expect_err(f, f->dir, names, DD_ERR_PARSE, "label 3 is out of range", "class_names has 2");
    std_set(m, 0, 0, "|i1");
    m[3].p[m[3].n - 1] = 0xFF; // -1
    write_dir(f->dir, m);
    free_blobs(m, 4);
    expect_err(f, f->dir, NULL, DD_ERR_PARSE, "y_test.npy", "label -1 of item 3");
    // truncated and trailing data, in a directory and in an .npz
    std_set(m, 0, 0, "<i8");
    m[2].n -= 7;
    write_dir(f->dir, m);
    expect_err(f, f->dir, NULL, DD_ERR_PARSE, "x_test.npy", "truncated");
    char path[1024];
    snprintf(path, sizeof path, "%s/t.npz", f->dir);
    write_zip(path, member_names, m, 4, 1);
    expect_err(f, path, NULL, DD_ERR_PARSE, "t.npz:x_test.npy", "truncated");
    m[2].n += 7;
    free_blobs(m, 4);
    std_set(m, 0, 0, "<i8");
    m[0].p = realloc(m[0].p, m[0].n + 3);
    memset(m[0].p + m[0].n, 0, 3);
    m[0].n += 3;
    write_zip(path, member_names, m, 4, 0);
    free_blobs(m, 4);
    expect_err(f, path, NULL, DD_ERR_PARSE, "t.npz:x_train.npy", "3 trailing bytes");
    // Fortran order, wrong magic, in the reader
    std_set(m, 0, 0, "<i8");
    free(m[0].p);
    m[0] = npy_raw(1, "{'descr': '|u1', 'fortran_order': True, 'shape': (6, 5, 3, 3), }", 64, z,
                   NTR * D);
    memcpy(m[1].p, "\x93NUMPZ", 6);
    write_zip(path, member_names, m, 4, 0);
    expect_err(f, path, NULL, DD_ERR_PARSE, "x_train.npy", "Fortran");
    write_dir(f->dir, m);
    free_blobs(m, 4);
    const char *renamed[] = {"x_train=x_test", NULL};
    expect_err(f, f->dir, renamed, DD_ERR_PARSE, "y_train.npy", "bad magic");
    // a missing member, a missing directory file, not a zip
    std_set(m, 0, 0, "<i8");
    write_zip(path, member_names, m, 3, 0);
    free_blobs(m, 4);
    expect_err(f, path, NULL, DD_ERR_NOT_FOUND, "t.npz", "no member 'y_test.npy'");
    assert_int_equal(rg_write_text(path, "not a zip at all"), DD_OK);
    expect_err(f, path, NULL, DD_ERR_ARCHIVE, "t.npz", "");
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/nothing.npz", f->dir);
    expect_err(f, sub, NULL, DD_ERR_NOT_FOUND, "nothing.npz", "no such");
    // wrong layout: NHWC data (6, 5, 3, 3) read as NCHW has 5 channels
    std_set(m, 0, 0, "<i8");
    write_dir(f->dir, m);
    free_blobs(m, 4);
    const char *nchw[] = {"layout=nchw", NULL};
    expect_err(f, f->dir, nchw, DD_ERR_PARSE, "x_train.npy", "5 channels (layout nchw)");
    // a shape announcing terabytes is refused before anything is allocated
    std_set(m, 0, 0, "<i8");
    free(m[0].p);
    m[0] = npy("|u1", "(100000000000000, 28, 28)", z, 16);
    write_dir(f->dir, m);
    free_blobs(m, 4);
    expect_err(f, f->dir, NULL, DD_ERR_PARSE, "x_train.npy", "refused");
}

/* ---- distilled.npz --------------------------------------------------------- */

/* Reads every member of a zip: names in order and contents. */
static int unzip(const char *path, char names[][32], blob *m, int cap) {
    struct archive *a = archive_read_new();
    archive_read_support_format_zip(a);
    assert_int_equal(archive_read_open_filename(a, path, 4096), ARCHIVE_OK);
    struct archive_entry *e;
    int n = 0;
    while (n < cap && archive_read_next_header(a, &e) == ARCHIVE_OK) {
        snprintf(names[n], 32, "%s", archive_entry_pathname(e));
        size_t sz = (size_t)archive_entry_size(e);
        m[n].p = malloc(sz + 1);
        m[n].n = sz;
        assert_int_equal(archive_read_data(a, m[n].p, sz), (la_ssize_t)sz);
        n++;
    }
    archive_read_free(a);
    return n;
}

static void expect_header(const blob *b, const char *dict) {
    dd_npy_array a;
    assert_int_equal(dd_npy_parse_header("m.npy", b->p, b->n, &a), DD_OK);
    assert_int_equal(a.header_len % 64, 0);
    assert_int_equal(b->p[6], 1);
    const char *text = (const char *)b->p + 10;
    size_t dl = strlen(dict);
    if (strncmp(text, dict, dl) != 0) fail_msg("header %.*s, expected %s", (int)dl, text, dict);
    for (size_t i = 10 + dl; i + 1 < a.header_len; i++)
        assert_int_equal(b->p[i], ' ');
}

static void test_distilled_npz(void **state) {
    rg_fixture *f = *state;
    dd_distilled *set;
    assert_int_equal(dd_distilled_create(2, 3, 1, 3, 1, 4, 4, 0.02f, &set), DD_OK);
    const int N = 6, S = 16;
    for (int i = 0; i < N * S; i++)
        set->images[i] = (float)(i % 13) * 0.37f - 1.5f;
    for (int k = 0; k < 6; k++)
        set->lrs[k] = 0.01f * (float)(k + 1);
    set->mean[0] = 0.2860f, set->std[0] = 0.3530f;
    const char *const cls[] = {"T-shirt/top", "Trouser", "Pull\xc3\xb6ver"};
    assert_int_equal(dd_distilled_save(set, cls, f->dir), DD_OK);
    char path[1024];
    snprintf(path, sizeof path, "%s/distilled.npz", f->dir);
    uint8_t *z1, *z2;
    size_t n1, n2;
    assert_int_equal(rg_read_file(path, &z1, &n1), DD_OK);
    assert_int_equal(z1[8], 0);                     // stored
    assert_int_equal(z1[10] | z1[11] << 8, 0);      // 00:00
    assert_int_equal(z1[12] | z1[13] << 8, 0x0021); // 1980-01-01
    assert_int_equal(dd_distilled_save(set, cls, f->dir), DD_OK);
    assert_int_equal(rg_read_file(path, &z2, &n2), DD_OK);
    assert_int_equal(n1, n2);
    assert_memory_equal(z1, z2, n1); // deterministic bytes
    free(z1);
    free(z2);

    char names[10][32];
    blob m[10];
    int n = unzip(path, names, m, 10);
    static const char *const want[] = {"images.npy", "labels.npy", "lrs.npy",        "step.npy",
                                       "mean.npy",   "std.npy",    "class_names.npy"};
    assert_int_equal(n, 7);
    for (int k = 0; k < 7; k++)
        assert_string_equal(names[k], want[k]);
    expect_header(&m[0], "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 1, 4, 4), }");
    expect_header(&m[1], "{'descr': '<i8', 'fortran_order': False, 'shape': (6,), }");
    expect_header(&m[2], "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }");
    expect_header(&m[3], "{'descr': '<i8', 'fortran_order': False, 'shape': (6,), }");
    expect_header(&m[4], "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }");
    expect_header(&m[5], "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }");
    // class_names: '<U11' (numpy loads it without allow_pickle); dd_npy_parse
    // refuses the 'U' kind, so the header and the UCS-4 data are checked here
    const char *u = "{'descr': '<U11', 'fortran_order': False, 'shape': (3,), }";
    assert_memory_equal(m[6].p + 10, u, strlen(u));
    assert_int_equal(m[6].n, 128 + 3 * 11 * 4);
    assert_int_equal(m[6].p[128 + 2 * 44 + 4 * 4], 0xF6); // 'ö' = U+00F6
    dd_npy_array a;
    assert_int_equal(dd_npy_parse("images.npy", m[0].p, m[0].n, &a), DD_OK);
    assert_memory_equal(a.data, set->images, (size_t)N * S * 4);
    assert_int_equal(dd_npy_parse("labels.npy", m[1].p, m[1].n, &a), DD_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(dd_npy_int_at(&a, (uint64_t)i), i % 3);
    assert_int_equal(dd_npy_parse("lrs.npy", m[2].p, m[2].n, &a), DD_OK);
    assert_memory_equal(a.data, set->lrs, 6 * 4);
    assert_int_equal(dd_npy_parse("step.npy", m[3].p, m[3].n, &a), DD_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(dd_npy_int_at(&a, (uint64_t)i), i / 3);
    assert_int_equal(dd_npy_parse("mean.npy", m[4].p, m[4].n, &a), DD_OK);
    assert_float_equal(dd_npy_float_at(&a, 0), 0.2860f, 0);
    free_blobs(m, n);

    // read back by the npz reader: the images are already normalized
    // (scale: none), mean/std given so that they are described correctly
    const char *kv[] = {"x_train=images", "y_train=labels", "x_test=images",
                        "y_test=labels",  "layout=nchw",    "scale=none",
                        "mean=[0.2860]",  "std=[0.3530]",   NULL};
    dd_dataset *tr, *te;
    if (read_at(f, path, kv, &tr, &te) != DD_OK) fail_msg("%s", dd_error_message());
    assert_int_equal(tr->n, N);
    assert_int_equal(tr->n_classes, 3);
    // float32 stays float32: held as read, gathered as they are
    assert_int_equal(tr->dtype, DD_DTYPE_F32);
    assert_int_equal(dd_dataset_bytes(tr), (size_t)N * S * 4);
    assert_memory_equal(tr->pixels, set->images, (size_t)N * S * 4);
    float *xtr = rg_images(tr);
    assert_memory_equal(xtr, set->images, (size_t)N * S * 4);
    free(xtr);
    assert_true(tr->mean[0] == 0.2860f && tr->std[0] == 0.3530f);
    for (int i = 0; i < N; i++)
        assert_int_equal(tr->labels[i], i % 3);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);

    // soft labels: float32 (N, K)
    set->soft = calloc((size_t)N * 3, sizeof(float));
    set->n_outputs = 3;
    for (int i = 0; i < N * 3; i++)
        set->soft[i] = 0.5f * (float)i;
    assert_int_equal(dd_distilled_save(set, NULL, f->dir), DD_OK);
    n = unzip(path, names, m, 10);
    expect_header(&m[1], "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 3), }");
    assert_int_equal(dd_npy_parse("labels.npy", m[1].p, m[1].n, &a), DD_OK);
    assert_memory_equal(a.data, set->soft, (size_t)N * 3 * 4);
    assert_memory_equal(m[6].p + 10, "{'descr': '<U1',", 16);
    free_blobs(m, n);
    dd_distilled_destroy(set);
}

/* ---- Fashion-MNIST: .npz read equals the IDX read ------------------------------ */

#define FASHION "/usr/share/datasets/fashion-mnist"

static uint8_t *gunzip(const char *path, size_t *len) {
    gzFile g = gzopen(path, "rb");
    if (!g) return NULL;
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    int r;
    while ((r = gzread(g, buf + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)r;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    gzclose(g);
    *len = n;
    return buf;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

static void test_fashion_equivalence(void **state) {
    rg_fixture *f = *state;
    static const char *const src[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    const int keep[2] = {2000, 500};
    blob npy_m[4];
    char idx_dir[1024];
    snprintf(idx_dir, sizeof idx_dir, "%s/idx", f->dir);
    assert_int_equal(rg_mkdirs(idx_dir), DD_OK);
    for (int k = 0; k < 4; k++) {
        char p[2048];
        snprintf(p, sizeof p, FASHION "/%s.gz", src[k]);
        size_t len;
        uint8_t *raw = gunzip(p, &len);
        assert_non_null(raw);
        int img = k % 2 == 0, n = keep[k / 2];
        size_t header = img ? 16 : 8, item = img ? 784 : 1;
        assert_true(len >= header + (size_t)n * item);
        // the subset as IDX (the mnist reader) and as .npy (uint8 N×28×28, labels |u1)
        put_be32(raw + 4, (uint32_t)n);
        snprintf(p, sizeof p, "%s/%s", idx_dir, src[k]);
        assert_int_equal(rg_write_file(p, raw, header + (size_t)n * item), DD_OK);
        char shape[32];
        if (img)
            snprintf(shape, sizeof shape, "(%d, 28, 28)", n);
        else
            snprintf(shape, sizeof shape, "(%d,)", n);
        npy_m[k] = npy("|u1", shape, raw + header, (size_t)n * item);
        free(raw);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/fashion.npz", f->dir);
    write_zip(path, member_names, npy_m, 4, 1);
    free_blobs(npy_m, 4);

    dd_registry *reg;
    const dd_component *mnist;
    assert_int_equal(rg_load_reader("mnist", &reg, &mnist), DD_OK);
    dd_dataset *a, *at, *b, *bt;
    assert_int_equal(rg_read(mnist, "fashion-mnist", idx_dir, NULL, 0, 0, &a, &at), DD_OK);
    const char *kv[] = {"mean=[0.2860]", "std=[0.3530]", NULL};
    assert_int_equal(read_at(f, path, kv, &b, &bt), DD_OK);
    assert_int_equal(a->n, 2000);
    assert_int_equal(at->n, 500);
    assert_true(same_dataset(a, b));
    assert_true(same_dataset(at, bt));
    dd_dataset_destroy(a);
    dd_dataset_destroy(at);
    dd_dataset_destroy(b);
    dd_dataset_destroy(bt);
    dd_registry_destroy(reg);
}

/* A 52-byte zip whose member claims 2.6 GB (found by fuzz_npz_zip: the
 * reader allocated the claimed size up front). The claim is held to
 * dataset.max_bytes, and below it the buffer grows only with the data
 * actually read. */
static void test_zip_size_claim(void **state) {
    rg_fixture *f = *state;
    static const uint8_t zip[] = {0x50, 0x4b, 0x03, 0x04, 0x14, 0x01, 0x00, 0x00, 0x09, 0x00, 0x00,
                                  0x00, 0x21, 0x00, 0x96, 0xb7, 0xe5, 0xe9, 0xc0, 0x01, 0x00, 0x00,
                                  0xc0, 0x01, 0x00, 0x9d, 0x0b, 0x00, 0x00, 0x00, 0x78, 0x5f, 0x74,
                                  0x72, 0x61, 0x69, 0x6e, 0x2e, 0x6e, 0x70, 0x79, 0x93, 0x4e, 0x55,
                                  0x4d, 0x50, 0x59, 0x72, 0x27, 0x27, 0x20, 0x20};
    char path[1024];
    snprintf(path, sizeof path, "%s/claim.npz", f->dir);
    assert_int_equal(rg_write_file(path, zip, sizeof zip), DD_OK);
    dd_limits_set(0, 0, 64 << 20);
    expect_err(f, path, NULL, DD_ERR_LIMIT, "claim.npz:x_train.npy", "(dataset.max_bytes)");
    dd_limits_set(0, 0, 0);
    dd_dataset *tr = NULL, *te = NULL;
    assert_int_not_equal(read_at(f, path, NULL, &tr, &te), DD_OK);
    assert_null(tr);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--fashion") == 0) {
        FILE *t = fopen(FASHION "/train-images-idx3-ubyte.gz", "rb");
        if (!t) {
            printf("skipped: no " FASHION " (Debian package dataset-fashion-mnist)\n");
            return 77;
        }
        fclose(t);
        const struct CMUnitTest fashion[] = {
            cmocka_unit_test_setup_teardown(test_fashion_equivalence, setup, teardown),
        };
        return cmocka_run_group_tests(fashion, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dir_nhwc_uint8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layouts_members_and_float, setup, teardown),
        cmocka_unit_test_setup_teardown(test_3d_is_one_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_dtypes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options_and_probe, setup, teardown),
        cmocka_unit_test(test_npy_parser),
        cmocka_unit_test_setup_teardown(test_reader_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_distilled_npz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zip_size_claim, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
