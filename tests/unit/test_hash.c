/* Tests for core/src/hash.c: SHA-256 against FIPS 180-4 / NIST example
 * vectors, MD5 against the RFC 1321 test suite, incremental updates split at
 * every offset, and the file helper. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/hash.h"

static void sha_hex(const void *data, size_t n, char out[65]) {
    dd_sha256 c;
    uint8_t d[DD_SHA256_SIZE];
    dd_sha256_init(&c);
    dd_sha256_update(&c, data, n);
    dd_sha256_final(&c, d);
    dd_hex(d, sizeof d, out);
}

static void md5_hex(const void *data, size_t n, char out[33]) {
    dd_md5 c;
    uint8_t d[DD_MD5_SIZE];
    dd_md5_init(&c);
    dd_md5_update(&c, data, n);
    dd_md5_final(&c, d);
    dd_hex(d, sizeof d, out);
}

static void test_sha256_vectors(void **state) {
    (void)state;
    static const struct {
        const char *msg, *hex;
    } v[] = {
        // FIPS 180-4 examples (one block, two blocks) and the empty string.
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrl"
         "mnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char out[65];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sha_hex(v[i].msg, strlen(v[i].msg), out);
        assert_string_equal(out, v[i].hex);
    }
}

static void test_sha256_million_a(void **state) {
    (void)state;
    // NIST: one million repetitions of 'a', fed in uneven chunks.
    char chunk[997];
    memset(chunk, 'a', sizeof chunk);
    dd_sha256 c;
    dd_sha256_init(&c);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        dd_sha256_update(&c, chunk, n);
        left -= n;
    }
    uint8_t d[DD_SHA256_SIZE];
    char out[65];
    dd_sha256_final(&c, d);
    dd_hex(d, sizeof d, out);
    assert_string_equal(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_md5_rfc1321(void **state) {
    (void)state;
    static const struct {
        const char *msg, *hex;
    } v[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    char out[33];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        md5_hex(v[i].msg, strlen(v[i].msg), out);
        assert_string_equal(out, v[i].hex);
    }
}

static void test_incremental_splits(void **state) {
    (void)state;
    // Lengths around the 55/56/64-byte padding boundaries, split everywhere.
    uint8_t msg[200];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 37 + 11);
    size_t lens[] = {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 200};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        char ref_s[65], ref_m[33];
        sha_hex(msg, n, ref_s);
        md5_hex(msg, n, ref_m);
        for (size_t cut = 0; cut <= n; cut++) {
            dd_sha256 s;
            dd_md5 m;
            uint8_t ds[DD_SHA256_SIZE], dm[DD_MD5_SIZE];
            char hs[65], hm[33];
            dd_sha256_init(&s);
            dd_md5_init(&m);
            dd_sha256_update(&s, msg, cut);
            dd_sha256_update(&s, msg + cut, n - cut);
            dd_md5_update(&m, msg, cut);
            dd_md5_update(&m, msg + cut, n - cut);
            dd_sha256_final(&s, ds);
            dd_md5_final(&m, dm);
            dd_hex(ds, sizeof ds, hs);
            dd_hex(dm, sizeof dm, hm);
            assert_string_equal(hs, ref_s);
            assert_string_equal(hm, ref_m);
        }
    }
}

static void test_hash_file(void **state) {
    (void)state;
    char path[] = "/tmp/dd_test_hash_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "abc", 3), 3);
    close(fd);
    uint8_t s[DD_SHA256_SIZE], m[DD_MD5_SIZE];
    uint64_t size = 0;
    char hs[65], hm[33];
    assert_int_equal(dd_hash_file(path, s, m, &size), DD_OK);
    dd_hex(s, sizeof s, hs);
    dd_hex(m, sizeof m, hm);
    assert_string_equal(hs, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_string_equal(hm, "900150983cd24fb0d6963f7d28e17f72");
    assert_int_equal(size, 3);
    unlink(path);
    assert_int_equal(dd_hash_file(path, s, NULL, NULL), DD_ERR_IO);
    assert_non_null(strstr(dd_error_message(), path));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors), cmocka_unit_test(test_sha256_million_a),
        cmocka_unit_test(test_md5_rfc1321),    cmocka_unit_test(test_incremental_splits),
        cmocka_unit_test(test_hash_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
