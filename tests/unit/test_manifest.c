/* Tests for core/src/data/manifest.c: parsing, validation errors with
 * file:line:col, URL building, search order — and that every manifest
 * shipped in datasets/ parses. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fetch_util.h"
#include "data/manifest.h"

static const char good[] =
    "# a comment\n"
    "name: toy\n"
    "description: a toy dataset\n"
    "reader: mnist\n"
    "unpacked_limit: 1_000_000\n"
    "mirrors:\n"
    "  - http://a.example/base/\n"
    "  - file:///srv/toy\n"
    "files:\n"
    "  - name: x.gz\n"
    "    archive: gz\n"
    "    size: 123\n"
    "    md5: 0123456789ABCDEF0123456789abcdef\n"
    "    payload_sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
    "  - name: y.tgz\n"
    "    archive: tgz\n"
    "    sha256: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
    "    mirrors: [http://b.example/full/y.tgz?download=1, http://c.example/dir/]\n"
    "splits:\n"
    "  train: [x.gz, y.tgz]\n"
    "  test: [y.tgz]\n";

static void test_parse_good(void **state) {
    (void)state;
    dd_manifest *m;
    assert_int_equal(dd_manifest_parse(good, strlen(good), "toy.yaml", &m), DD_OK);
    assert_string_equal(m->name, "toy");
    assert_string_equal(m->reader, "mnist");
    assert_string_equal(m->license, "");
    assert_int_equal(m->unpacked_limit, 1000000);
    assert_int_equal(m->n_files, 2);
    assert_string_equal(m->files[0].name, "x.gz");
    assert_int_equal(m->files[0].archive, DD_ARCHIVE_GZ);
    assert_int_equal(m->files[0].size, 123);
    assert_true(m->files[0].has_md5 && m->files[0].has_payload_sha256 && !m->files[0].has_sha256);
    assert_int_equal(m->files[0].md5[0], 0x01);
    assert_int_equal(m->files[0].md5[7], 0xef);
    assert_int_equal(m->files[0].payload_sha256[0], 0xe3);
    assert_int_equal(m->files[1].archive, DD_ARCHIVE_TAR_GZ);
    assert_int_equal(m->files[1].sha256[31], 0xad);
    assert_int_equal(m->n_splits, 2);
    assert_string_equal(m->splits[0].name, "train");
    assert_int_equal(m->splits[0].n_files, 2);
    assert_string_equal(m->splits[1].files[0], "y.tgz");

    char buf[64];
    assert_string_equal(dd_manifest_file_output(&m->files[0], buf, sizeof buf), "x");
    assert_null(dd_manifest_file_output(&m->files[1], buf, sizeof buf));

    // File mirrors first (full URL as is, '/'-terminated as a base), then the
    // dataset-wide bases (a '/' is inserted when missing).
    char **urls;
    assert_int_equal(dd_manifest_urls(m, &m->files[1], &urls), DD_OK);
    assert_string_equal(urls[0], "http://b.example/full/y.tgz?download=1");
    assert_string_equal(urls[1], "http://c.example/dir/y.tgz");
    assert_string_equal(urls[2], "http://a.example/base/y.tgz");
    assert_string_equal(urls[3], "file:///srv/toy/y.tgz");
    assert_null(urls[4]);
    dd_manifest_dirs_free(urls);
    dd_manifest_destroy(m);
    dd_manifest_destroy(NULL);
}

/* Replaces the first occurrence of `from` in the good manifest by `to`,
 * parses, and expects a parse error containing `needle`. */
static void expect_error(const char *from, const char *to, const char *needle) {
    char text[4096];
    const char *at = strstr(good, from);
    assert_non_null(at);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
    dd_manifest *m = (dd_manifest *)0x1;
    dd_status s = dd_manifest_parse(text, strlen(text), "bad.yaml", &m);
    assert_int_equal(s, DD_ERR_PARSE);
    assert_null(m);
    const char *msg = dd_error_message();
    if (!strstr(msg, needle)) fail_msg("error '%s' does not contain '%s'", msg, needle);
    assert_int_equal(strncmp(msg, "bad.yaml:", 9), 0);
}

static void test_parse_errors(void **state) {
    (void)state;
    expect_error("reader: mnist\n", "reader: mnist\nlicence: MIT\n",
                 "bad.yaml:5:1: unknown key 'licence'");
    expect_error("    size: 123\n", "    sizes: 123\n", "bad.yaml:12:5: unknown key 'sizes'");
    expect_error("    archive: tgz\n", "    archive: zip\n",
                 "bad.yaml:16:14: unknown archive kind 'zip'");
    expect_error("    md5: 0123456789ABCDEF0123456789abcdef\n", "    md5: 0123\n",
                 "13:10: 'md5' must be 32 hex digits");
    expect_error("    md5: 0123456789ABCDEF0123456789abcdef\n",
                 "    md5: 0123456789ABCDEF0123456789abcdeg\n", "hex digits");
    expect_error("    size: 123\n", "    size: -5\n",
                 "12:11: 'size' must be a non-negative integer");
    expect_error("  test: [y.tgz]\n", "  test: [z.tgz]\n",
                 "21:10: split 'test' names 'z.tgz', which is not in 'files'");
    expect_error("name: toy\n", "", "has no 'name'");
    expect_error("unpacked_limit: 1_000_000\n", "", "has no 'unpacked_limit'");
    expect_error("  - name: x.gz\n", "  - name: ../x.gz\n", "must be a plain name");
    expect_error("  - name: y.tgz\n", "  - name: x.gz\n", "listed twice");
    // A file without any checksum can never be trusted.
    expect_error("    sha256: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
                 "", "file 'y.tgz' has no checksum");
    expect_error("    archive: tgz\n",
                 "    archive: tgz\n    payload_sha256: "
                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n",
                 "only meaningful for archive: gz");
    expect_error("  - name: x.gz\n    archive: gz\n", "  - name: x.bin\n    archive: gz\n",
                 "does not end in .gz");
    expect_error("mirrors:\n  - http://a.example/base/\n  - file:///srv/toy\n", "",
                 "has no mirrors");
    expect_error("mirrors:\n  - http://a.example/base/\n", "mirrors:\n  - not a url\n",
                 "7:5: 'mirrors' entries must be URLs");
    // Manifests are read by the pipeline loader's YAML layer: a repeated
    // key is an error at its second occurrence, not a silent override.
    expect_error("reader: mnist\n", "reader: mnist\nreader: other\n",
                 "bad.yaml:5:1: duplicate key 'reader' (first defined at 4:1)");
    // libyaml's own error, positioned.
    expect_error("reader: mnist\n", "reader: [mnist\n", "bad.yaml:");
    expect_error("name: toy\n", "name: Toy/../x\n", "may only use");
    // the optional input shape: all four keys, each in [1, 65535]
    expect_error("reader: mnist\n", "reader: mnist\ninput: {channels: 1, height: 28}\n",
                 "bad.yaml:5:8: 'input' has no 'width'");
    expect_error("reader: mnist\n",
                 "reader: mnist\ninput: {channels: 0, height: 2, width: 2, classes: 2}\n",
                 "bad.yaml:5:19: input.channels must be in [1, 65535]");
    expect_error("reader: mnist\n",
                 "reader: mnist\ninput: {channels: 1, depth: 2, width: 2, classes: 2}\n",
                 "bad.yaml:5:22: unknown key 'depth' in 'input'");
    expect_error("reader: mnist\n", "reader: mnist\ninput: 28\n",
                 "bad.yaml:5:8: 'input' must be a mapping");
}

/* A hostile manifest nested 10,000 flow sequences deep (~20 KB) is refused
 * at the first level past the YAML loader's cap, with its position, and
 * without first building (or walking) the whole nest. */
static void test_deep_nesting_refused(void **state) {
    (void)state;
    enum { DEPTH = 10000 };
    const char head[] = "name: toy\nreader: mnist\nmirrors: ";
    size_t hl = strlen(head);
    char *text = malloc(hl + 2 * DEPTH + 2);
    assert_non_null(text);
    memcpy(text, head, hl);
    memset(text + hl, '[', DEPTH);
    memset(text + hl + DEPTH, ']', DEPTH);
    memcpy(text + hl + 2 * DEPTH, "\n", 2);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dd_manifest *m = (dd_manifest *)0x1;
    dd_status s = dd_manifest_parse(text, hl + 2 * DEPTH + 1, "deep.yaml", &m);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(text);
    assert_int_equal(s, DD_ERR_PARSE);
    assert_null(m);
    // The root mapping is level 1, so the 64th '[' (column 10 + 63) is the
    // first one refused.
    const char *msg = dd_error_message();
    if (!strstr(msg, "deep.yaml:3:73: nesting deeper than 64 levels"))
        fail_msg("unexpected error '%s'", msg);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    // The old document loader needed ~0.7 s here (quadratic in depth).
    if (secs > 0.2) fail_msg("refusing the nest took %.2f s", secs);
}

static void test_load_name_must_match_file(void **state) {
    (void)state;
    char *dir = fetch_tmpdir("manifest");
    assert_non_null(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/other.yaml", dir);
    assert_int_equal(fetch_write_file(path, good, strlen(good)), 0);
    dd_manifest *m;
    assert_int_equal(dd_manifest_load(path, &m), DD_ERR_PARSE);
    assert_non_null(strstr(dd_error_message(), "does not match the file name"));
    snprintf(path, sizeof path, "%s/toy.yaml", dir);
    assert_int_equal(fetch_write_file(path, good, strlen(good)), 0);
    assert_int_equal(dd_manifest_load(path, &m), DD_OK);
    assert_string_equal(m->origin, path);
    dd_manifest_destroy(m);

    // Search order: the explicit dir first, then DISTILL_MANIFEST_PATH.
    assert_int_equal(dd_manifest_find("toy", dir, &m), DD_OK);
    dd_manifest_destroy(m);
    setenv("DISTILL_MANIFEST_PATH", dir, 1);
    assert_int_equal(dd_manifest_find("toy", NULL, &m), DD_OK);
    dd_manifest_destroy(m);
    unsetenv("DISTILL_MANIFEST_PATH");
    assert_int_equal(dd_manifest_find("no-such-dataset", dir, &m), DD_ERR_NOT_FOUND);
    assert_non_null(strstr(dd_error_message(), dir));
    assert_int_equal(dd_manifest_find("../etc/passwd", dir, &m), DD_ERR_INVALID);
    assert_int_equal(dd_manifest_load("/nonexistent/x.yaml", &m), DD_ERR_NOT_FOUND);
    fetch_rmtree(dir);
    free(dir);
}

static void test_shipped_manifests(void **state) {
    (void)state;
    const char *src = getenv("DISTILL_SOURCE_DIR");
    if (!src) src = ".";
    static const struct {
        const char *name, *reader;
        size_t files;
    } want[] = {
        {"mnist", "mnist", 4},           {"fashion-mnist", "mnist", 4}, {"cifar10", "cifar10", 1},
        {"pascal-voc", "pascal-voc", 2}, {"cub200", "cub200", 1},       {"usps", "usps", 2},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/datasets/%s.yaml", src, want[i].name);
        dd_manifest *m;
        dd_status s = dd_manifest_load(path, &m);
        if (s != DD_OK) fail_msg("%s", dd_error_message());
        assert_string_equal(m->reader, want[i].reader);
        assert_int_equal(m->n_files, want[i].files);
        // the native shape where the images have one (cub/voc are resized)
        int shaped = strcmp(want[i].name, "pascal-voc") && strcmp(want[i].name, "cub200");
        assert_int_equal(m->input_channels != 0, shaped);
        if (shaped) assert_int_equal(m->input_classes, 10);
        if (!strcmp(want[i].name, "usps")) assert_int_equal(m->input_height, 16);
        if (!strcmp(want[i].name, "cifar10")) assert_int_equal(m->input_channels, 3);
        for (size_t k = 0; k < m->n_files; k++) {
            char **urls;
            assert_int_equal(dd_manifest_urls(m, &m->files[k], &urls), DD_OK);
            assert_non_null(urls[0]);
            dd_manifest_dirs_free(urls);
        }
        dd_manifest_destroy(m);
    }
    // Fashion-MNIST also lists Debian's copy, and can verify it by payload.
    char path[4096];
    snprintf(path, sizeof path, "%s/datasets/fashion-mnist.yaml", src);
    dd_manifest *m;
    assert_int_equal(dd_manifest_load(path, &m), DD_OK);
    int debian = 0;
    for (size_t k = 0; k < m->n_mirrors; k++)
        if (strcmp(m->mirrors[k], "file:///usr/share/datasets/fashion-mnist/") == 0) debian = 1;
    assert_true(debian);
    assert_int_equal(strncmp(m->mirrors[0], "http://fashion-mnist.s3", 23), 0); // official first
    for (size_t k = 0; k < m->n_files; k++)
        assert_true(m->files[k].has_payload_sha256 && m->files[k].has_md5);
    dd_manifest_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_deep_nesting_refused),
        cmocka_unit_test(test_load_name_must_match_file),
        cmocka_unit_test(test_shipped_manifests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
