/* Tests for core/src/data/unpack.c: .gz and tar/tar.gz extraction, and hostile
 * archives (traversal, absolute paths, escaping links, truncation, size
 * bombs) that must fail with a clear error and write nothing outside the
 * target directory. Archives are built in memory with libarchive. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch_util.h"
#include "data/unpack.h"

typedef struct fx {
    char *root; // scratch dir: holds target/, the archive and a decoy
    char target[4096], archive[4096], outside[4096];
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    if (!f || !(f->root = fetch_tmpdir("unpack"))) return -1;
    snprintf(f->target, sizeof f->target, "%s/target", f->root);
    snprintf(f->archive, sizeof f->archive, "%s/archive.bin", f->root);
    snprintf(f->outside, sizeof f->outside, "%s/outside.txt", f->root);
    if (mkdir(f->target, 0755) != 0 || fetch_write_file(f->outside, "keep", 4) != 0) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    fetch_rmtree(f->root);
    free(f->root);
    free(f);
    return 0;
}

/* The scratch dir must still hold exactly target/, archive.bin and
 * outside.txt (unchanged): nothing was written outside the target. */
static void assert_nothing_outside(const fx *f) {
    DIR *d = opendir(f->root);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "target") ||
            !strcmp(n, "archive.bin") || !strcmp(n, "outside.txt"))
            continue;
        fail_msg("unexpected entry outside the target: %s", n);
    }
    closedir(d);
    size_t n;
    unsigned char *c = fetch_read_file(f->outside, &n);
    assert_non_null(c);
    assert_int_equal(n, 4);
    assert_memory_equal(c, "keep", 4);
    free(c);
    struct stat st;
    assert_int_equal(stat(f->outside, &st), 0);
    assert_int_equal(st.st_nlink, 1);
}

static void write_archive(const fx *f, const fetch_tar_entry *e, size_t n, int gz) {
    unsigned char *buf;
    size_t len;
    assert_int_equal(fetch_make_tar(e, n, gz, &buf, &len), DD_OK);
    assert_int_equal(fetch_write_file(f->archive, buf, len), 0);
    free(buf);
}

static void assert_file(const char *dir, const char *rel, const char *content) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    size_t n;
    unsigned char *c = fetch_read_file(path, &n);
    if (!c) fail_msg("missing %s", path);
    assert_int_equal(n, strlen(content));
    assert_memory_equal(c, content, n);
    free(c);
}

/* ---- single .gz -------------------------------------------------------- */

static void test_gz_roundtrip(void **state) {
    fx *f = *state;
    const char payload[] = "IDX payload \x00\x01\x02 with binary bytes";
    unsigned char *gz;
    size_t gzn;
    assert_int_equal(fetch_make_gz(payload, sizeof payload, &gz, &gzn), DD_OK);
    assert_int_equal(fetch_write_file(f->archive, gz, gzn), 0);
    free(gz);
    char dst[8192], tmp[8300];
    snprintf(dst, sizeof dst, "%s/out", f->target);
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    uint8_t sha[DD_SHA256_SIZE];
    uint64_t size = 0;
    assert_int_equal(dd_unpack_gz(f->archive, dst, 1 << 20, sha, &size), DD_OK);
    assert_int_equal(size, sizeof payload);
    size_t n;
    unsigned char *c = fetch_read_file(dst, &n);
    assert_non_null(c);
    assert_int_equal(n, sizeof payload);
    assert_memory_equal(c, payload, n);
    free(c);
    char want[65], got[65];
    fetch_sha256_hex(payload, sizeof payload, want);
    dd_hex(sha, sizeof sha, got);
    assert_string_equal(got, want);
    assert_false(fetch_exists(tmp));
    // Hash-only mode writes nothing.
    uint8_t sha2[DD_SHA256_SIZE];
    assert_int_equal(dd_unpack_gz(f->archive, NULL, 1 << 20, sha2, NULL), DD_OK);
    assert_memory_equal(sha, sha2, sizeof sha);
}

static void test_gz_over_limit(void **state) {
    fx *f = *state;
    size_t big = 3 << 20;
    unsigned char *payload = calloc(1, big), *gz;
    size_t gzn;
    assert_non_null(payload);
    assert_int_equal(fetch_make_gz(payload, big, &gz, &gzn), DD_OK);
    free(payload);
    assert_true(gzn < 100000); // a small file that inflates 30x+: a bomb in miniature
    assert_int_equal(fetch_write_file(f->archive, gz, gzn), 0);
    free(gz);
    char dst[8192], tmp[8300];
    snprintf(dst, sizeof dst, "%s/out", f->target);
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    assert_int_equal(dd_unpack_gz(f->archive, dst, 1 << 20, NULL, NULL), DD_ERR_ARCHIVE);
    assert_non_null(strstr(dd_error_message(), "limit"));
    assert_non_null(strstr(dd_error_message(), f->archive));
    assert_false(fetch_exists(dst));
    assert_false(fetch_exists(tmp));
}

static void test_gz_not_gzip_and_truncated(void **state) {
    fx *f = *state;
    char dst[8192];
    snprintf(dst, sizeof dst, "%s/out", f->target);
    assert_int_equal(fetch_write_file(f->archive, "plain text, not gzip", 20), 0);
    assert_int_equal(dd_unpack_gz(f->archive, dst, 1 << 20, NULL, NULL), DD_ERR_ARCHIVE);
    assert_non_null(strstr(dd_error_message(), "gzip"));
    assert_false(fetch_exists(dst));

    unsigned char payload[50000], *gz;
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (unsigned char)(i * 7919 >> 3);
    size_t gzn;
    assert_int_equal(fetch_make_gz(payload, sizeof payload, &gz, &gzn), DD_OK);
    assert_int_equal(fetch_write_file(f->archive, gz, gzn / 2), 0);
    free(gz);
    assert_int_equal(dd_unpack_gz(f->archive, dst, 1 << 20, NULL, NULL), DD_ERR_ARCHIVE);
    assert_non_null(strstr(dd_error_message(), f->archive));
    assert_false(fetch_exists(dst));
}

/* ---- tar --------------------------------------------------------------- */

static void test_tar_good(void **state) {
    fx *f = *state;
    for (int gz = 0; gz < 2; gz++) {
        const fetch_tar_entry e[] = {
            {"./", 'd', NULL, 0},
            {"./top/", 'd', NULL, 0},
            {"./top/a.txt", 'f', "alpha", 5},
            {"top/sub/b.bin", 'f', "beta", 4}, // parent dir not listed first
            {"top/link-a", 'l', "a.txt", 0},
            {"top/sub/up", 'l', "../a.txt", 0},
            {"top/hard-a", 'h', "top/a.txt", 0},
            {"empty.txt", 'f', "", 0},
        };
        write_archive(f, e, sizeof e / sizeof e[0], gz);
        uint64_t size = 0;
        assert_int_equal(dd_unpack_tar(f->archive, f->target, 1 << 20, &size), DD_OK);
        assert_int_equal(size, 9);
        assert_file(f->target, "top/a.txt", "alpha");
        assert_file(f->target, "top/sub/b.bin", "beta");
        assert_file(f->target, "top/link-a", "alpha");
        assert_file(f->target, "top/sub/up", "alpha");
        assert_file(f->target, "top/hard-a", "alpha");
        assert_file(f->target, "empty.txt", "");
        // Idempotent: extracting again over the result works.
        assert_int_equal(dd_unpack_tar(f->archive, f->target, 1 << 20, NULL), DD_OK);
        assert_file(f->target, "top/link-a", "alpha");
        assert_nothing_outside(f);
    }
}

static void expect_refused(fx *f, const fetch_tar_entry *e, size_t n, int gz, const char *needle) {
    write_archive(f, e, n, gz);
    dd_status s = dd_unpack_tar(f->archive, f->target, 1 << 20, NULL);
    assert_int_equal(s, DD_ERR_ARCHIVE);
    const char *msg = dd_error_message();
    if (!strstr(msg, needle)) fail_msg("error '%s' does not mention '%s'", msg, needle);
    assert_non_null(strstr(msg, f->archive));
    assert_nothing_outside(f);
}

static void test_hostile_traversal(void **state) {
    fx *f = *state;
    const fetch_tar_entry e[] = {{"ok.txt", 'f', "fine", 4}, {"../escape.txt", 'f', "pwned", 5}};
    expect_refused(f, e, 2, 1, "'..'");
    const fetch_tar_entry e2[] = {{"a/../../escape.txt", 'f', "pwned", 5}};
    expect_refused(f, e2, 1, 0, "'..'");
}

static void test_hostile_absolute(void **state) {
    fx *f = *state;
    char abs[8192];
    snprintf(abs, sizeof abs, "%s/abs.txt", f->root);
    const fetch_tar_entry e[] = {{abs, 'f', "pwned", 5}};
    expect_refused(f, e, 1, 1, "absolute");
    assert_false(fetch_exists(abs));
}

static void test_hostile_symlink_escape(void **state) {
    fx *f = *state;
    // A link pointing out of the target, then a file written through it.
    const fetch_tar_entry e[] = {{"evil", 'l', "..", 0}, {"evil/pwned.txt", 'f', "pwned", 5}};
    expect_refused(f, e, 2, 1, "escapes");
    char link[8192];
    snprintf(link, sizeof link, "%s/evil", f->target);
    assert_false(fetch_exists(link));

    const fetch_tar_entry e2[] = {{"evil2", 'l', f->root, 0}, {"evil2/pwned.txt", 'f', "pwned", 5}};
    expect_refused(f, e2, 2, 0, "absolute");

    // Deeper: the link climbs more levels than it is deep.
    const fetch_tar_entry e3[] = {{"x/y/z", 'l', "../../../outside.txt", 0}};
    expect_refused(f, e3, 1, 0, "escapes");

    // ".." after a descent could climb out through another link: refused.
    const fetch_tar_entry e4[] = {{"d/", 'd', NULL, 0}, {"s", 'l', "d/../..", 0}};
    expect_refused(f, e4, 2, 0, "escapes");

    // Even a link that stays inside is never written through.
    const fetch_tar_entry e5[] = {
        {"real/", 'd', NULL, 0}, {"alias", 'l', "real", 0}, {"alias/f.txt", 'f', "x", 1}};
    expect_refused(f, e5, 3, 0, "symbolic link");
}

static void test_hostile_hardlink(void **state) {
    fx *f = *state;
    const fetch_tar_entry e[] = {{"h", 'h', "../outside.txt", 0}};
    expect_refused(f, e, 1, 1, "'..'");
    char abs[8192];
    snprintf(abs, sizeof abs, "%s/outside.txt", f->root);
    const fetch_tar_entry e2[] = {{"h2", 'h', abs, 0}};
    expect_refused(f, e2, 1, 0, "absolute");
    // A hard link through an escaping symlink can't be created either.
    const fetch_tar_entry e3[] = {
        {"l", 'l', "sub", 0}, {"sub/", 'd', NULL, 0}, {"h3", 'h', "l/x", 0}};
    expect_refused(f, e3, 3, 0, "symbolic link");
}

static void test_hostile_truncated(void **state) {
    fx *f = *state;
    const fetch_tar_entry e[] = {{"a.bin", 'f', NULL, 300000}, {"b.bin", 'f', NULL, 300000}};
    unsigned char *buf;
    size_t len;
    assert_int_equal(fetch_make_tar(e, 2, 1, &buf, &len), DD_OK);
    assert_int_equal(fetch_write_file(f->archive, buf, len / 2), 0);
    free(buf);
    assert_int_equal(dd_unpack_tar(f->archive, f->target, 1 << 20, NULL), DD_ERR_ARCHIVE);
    assert_non_null(strstr(dd_error_message(), f->archive));
    assert_nothing_outside(f);

    // An uncompressed tar cut in the middle of a member.
    assert_int_equal(fetch_make_tar(e, 2, 0, &buf, &len), DD_OK);
    assert_int_equal(fetch_write_file(f->archive, buf, 400000), 0);
    free(buf);
    assert_int_equal(dd_unpack_tar(f->archive, f->target, 1 << 20, NULL), DD_ERR_ARCHIVE);
    assert_nothing_outside(f);

    // Not an archive at all.
    assert_int_equal(fetch_write_file(f->archive, "hello", 5), 0);
    assert_int_equal(dd_unpack_tar(f->archive, f->target, 1 << 20, NULL), DD_ERR_ARCHIVE);
}

static void test_hostile_oversized(void **state) {
    fx *f = *state;
    // One member declared larger than the cap: refused before writing it.
    const fetch_tar_entry e[] = {{"big.bin", 'f', NULL, 2 << 20}};
    write_archive(f, e, 1, 1);
    assert_int_equal(dd_unpack_tar(f->archive, f->target, 1 << 20, NULL), DD_ERR_ARCHIVE);
    assert_non_null(strstr(dd_error_message(), "limit"));
    char big[8192];
    snprintf(big, sizeof big, "%s/big.bin", f->target);
    assert_false(fetch_exists(big));
    // Many members that together exceed it.
    fetch_tar_entry many[12];
    char names[12][16];
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof names[i], "part%02d", i);
        many[i] = (fetch_tar_entry){names[i], 'f', NULL, 100000};
    }
    write_archive(f, many, 12, 1);
    assert_int_equal(dd_unpack_tar(f->archive, f->target, 1000000, NULL), DD_ERR_ARCHIVE);
    assert_non_null(strstr(dd_error_message(), "limit"));
    assert_nothing_outside(f);
}

static void test_reserved_names(void **state) {
    fx *f = *state;
    static const char *const reserved[] = {"downloads", ".unpacked-", NULL};
    const fetch_tar_entry e[] = {{".unpacked-other.tar", 'f', "cache verified\n", 15}};
    write_archive(f, e, 1, 0);
    assert_int_equal(dd_unpack_tar_reserved(f->archive, f->target, 1 << 20, reserved, NULL),
                     DD_ERR_ARCHIVE);
    assert_non_null(strstr(dd_error_message(), "cache"));
    char p[8192];
    snprintf(p, sizeof p, "%s/.unpacked-other.tar", f->target);
    assert_false(fetch_exists(p));
}

// A hard link may not point at the cache's bookkeeping files either: the
// link would make a dataset file of them (and tie the two together).
static void test_reserved_hardlink_targets(void **state) {
    fx *f = *state;
    static const char *const reserved[] = {"downloads", ".verified-", NULL};
    char p[8192];
    snprintf(p, sizeof p, "%s/downloads", f->target);
    assert_int_equal(mkdir(p, 0755), 0);
    const char *own[] = {"downloads/x.tar", ".verified-x"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", f->target, own[i]);
        FILE *o = fopen(p, "wb");
        assert_non_null(o);
        fclose(o);
        const fetch_tar_entry e[] = {{"h", 'h', own[i], 0}};
        write_archive(f, e, 1, 0);
        assert_int_equal(dd_unpack_tar_reserved(f->archive, f->target, 1 << 20, reserved, NULL),
                         DD_ERR_ARCHIVE);
        if (!strstr(dd_error_message(), "hard link to the cache's own file"))
            fail_msg("%s: %s", own[i], dd_error_message());
        snprintf(p, sizeof p, "%s/h", f->target);
        assert_false(fetch_exists(p));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gz_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gz_over_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gz_not_gzip_and_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tar_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_traversal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_absolute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_symlink_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_hardlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_oversized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserved_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserved_hardlink_targets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
