/* Tests for core/src/base/json.c: string escaping (control characters,
 * valid and invalid UTF-8), nesting and both layouts, numbers and
 * non-finite values, the stream sink, and errors on misused structure. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

/* The document a sequence of calls makes, finished; NULL if finish failed
 * (the status in *st). Caller frees. The buffer's fields are read directly
 * (its functions are internal to the library). */
typedef void (*writer_fn)(dd_json *w);

static char *write_doc(writer_fn fn, dd_status *st) {
    dd_strbuf b = DD_STRBUF_INIT;
    dd_json w;
    dd_json_init_buf(&w, &b);
    fn(&w);
    *st = dd_json_finish(&w);
    if (*st != DD_OK || b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* The JSON text of one string value (without the final newline). */
static char *quoted(const char *s) {
    dd_strbuf b = DD_STRBUF_INIT;
    dd_json w;
    dd_json_init_buf(&w, &b);
    dd_json_string(&w, s);
    assert_int_equal(dd_json_finish(&w), DD_OK);
    char *out = b.s;
    assert_non_null(out);
    size_t n = strlen(out);
    assert_true(n > 0 && out[n - 1] == '\n');
    out[n - 1] = '\0';
    return out;
}

static void expect_quoted(const char *in, const char *want) {
    char *got = quoted(in);
    assert_string_equal(got, want);
    free(got);
}

static void test_escapes(void **state) {
    (void)state;
    expect_quoted("", "\"\"");
    expect_quoted("plain text", "\"plain text\"");
    expect_quoted("say \"hi\"", "\"say \\\"hi\\\"\"");
    expect_quoted("a\\b", "\"a\\\\b\"");
    expect_quoted("/", "\"/\"");
    expect_quoted("\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"");
    expect_quoted("\x01\x1f", "\"\\u0001\\u001f\"");
    expect_quoted("\x7f", "\"\x7f\"");
    expect_quoted(NULL, "null");
}

static void test_utf8(void **state) {
    (void)state;
    // Valid sequences of every length are copied unchanged.
    expect_quoted("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                  "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    expect_quoted("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""); // U+10FFFF
    expect_quoted("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");         // U+D7FF
    // A stray continuation byte, an overlong form, a surrogate, a code point
    // above U+10FFFF, bytes that never occur, and a truncated sequence: each
    // byte that is not part of a valid sequence becomes U+FFFD.
    expect_quoted("a\x80z", "\"a\\ufffdz\"");
    expect_quoted("\xc0\xaf", "\"\\ufffd\\ufffd\"");
    expect_quoted("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");
    expect_quoted("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
    expect_quoted("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    expect_quoted("\xf5\xff", "\"\\ufffd\\ufffd\"");
    expect_quoted("x\xe2\x82", "\"x\\ufffd\\ufffd\"");
    expect_quoted("\xe2\x82\"", "\"\\ufffd\\ufffd\\\"\"");
    expect_quoted("\xc3\xa9\xc3", "\"\xc3\xa9\\ufffd\"");
}

static void nested(dd_json *w) {
    dd_json_object(w, DD_JSON_LINES);
    dd_json_key(w, "name");
    dd_json_string(w, "x");
    dd_json_key(w, "a");
    dd_json_int(w, 1);
    dd_json_same_line(w);
    dd_json_key(w, "b");
    dd_json_int(w, 2);
    dd_json_key(w, "row");
    dd_json_object(w, DD_JSON_INLINE);
    dd_json_key(w, "list");
    dd_json_array(w, DD_JSON_INLINE);
    dd_json_int(w, 1);
    dd_json_array(w, DD_JSON_INLINE);
    dd_json_array_end(w);
    dd_json_object(w, DD_JSON_INLINE);
    dd_json_object_end(w);
    dd_json_bool(w, 1);
    dd_json_bool(w, 0);
    dd_json_null(w);
    dd_json_array_end(w);
    dd_json_key(w, "k\"ey");
    dd_json_string(w, "v");
    dd_json_object_end(w);
    dd_json_key(w, "inner");
    dd_json_object(w, DD_JSON_LINES);
    dd_json_key(w, "deep");
    dd_json_array(w, DD_JSON_LINES);
    dd_json_int(w, 7);
    dd_json_int(w, 8);
    dd_json_array_end(w);
    dd_json_key(w, "empty");
    dd_json_object(w, DD_JSON_LINES);
    dd_json_object_end(w);
    dd_json_object_end(w);
    dd_json_keyf(w, "test_%s_mean", "accuracy");
    dd_json_int(w, 3);
    dd_json_object_end(w);
}

static void test_nesting_and_layout(void **state) {
    (void)state;
    dd_status st;
    char *doc = write_doc(nested, &st);
    assert_int_equal(st, DD_OK);
    assert_string_equal(
        doc, "{\n"
             "  \"name\": \"x\",\n"
             "  \"a\": 1, \"b\": 2,\n"
             "  \"row\": {\"list\": [1, [], {}, true, false, null], \"k\\\"ey\": \"v\"},\n"
             "  \"inner\": {\n"
             "    \"deep\": [\n"
             "      7,\n"
             "      8\n"
             "    ],\n"
             "    \"empty\": {\n"
             "    }\n"
             "  },\n"
             "  \"test_accuracy_mean\": 3\n"
             "}\n");
    free(doc);
}

static void numbers(dd_json *w) {
    dd_json_array(w, DD_JSON_INLINE);
    dd_json_int(w, LLONG_MIN);
    dd_json_int(w, 0);
    dd_json_uint(w, ULLONG_MAX);
    dd_json_double(w, 0.1, 10);
    dd_json_double(w, 1.0 / 3.0, 10);
    dd_json_double(w, 1e-5, 10);
    dd_json_double(w, -0.0, 10);
    dd_json_double(w, 12345.678, 3);
    dd_json_double(w, (double)0.02411020361f, 9);
    dd_json_double(w, 0.1, 0);  // clamped to 1 digit
    dd_json_double(w, 0.1, 99); // clamped to 17 digits
    dd_json_fixed(w, 0.5, 6);
    dd_json_fixed(w, -1.0, 6);
    dd_json_fixed(w, 2.5, 0);
    dd_json_fixed(w, 1e300, 17); // the widest text
    dd_json_array_end(w);
}

static void test_numbers(void **state) {
    (void)state;
    dd_status st;
    char *doc = write_doc(numbers, &st);
    assert_int_equal(st, DD_OK);
    char want[1024];
    snprintf(want, sizeof want,
             "[-9223372036854775808, 0, 18446744073709551615, 0.1, 0.3333333333, 1e-05, -0, "
             "1.23e+04, 0.0241102036, 0.1, 0.10000000000000001, 0.500000, -1.000000, 2, %.17f]\n",
             1e300);
    assert_string_equal(doc, want);
    free(doc);
}

static void non_finite(dd_json *w) {
    dd_json_object(w, DD_JSON_INLINE);
    dd_json_key(w, "nan");
    dd_json_double(w, NAN, 10);
    dd_json_key(w, "inf");
    dd_json_double(w, INFINITY, 10);
    dd_json_key(w, "-inf");
    dd_json_double(w, -INFINITY, 10);
    dd_json_key(w, "fixed");
    dd_json_fixed(w, NAN, 6);
    dd_json_object_end(w);
}

static void test_non_finite(void **state) {
    (void)state;
    dd_status st;
    char *doc = write_doc(non_finite, &st);
    assert_int_equal(st, DD_OK);
    assert_string_equal(doc, "{\"nan\": null, \"inf\": null, \"-inf\": null, \"fixed\": null}\n");
    free(doc);
}

/* ---- misuse: each writer breaks the structure once ---------------------- */

static void value_without_key(dd_json *w) {
    dd_json_object(w, DD_JSON_INLINE);
    dd_json_int(w, 1);
    dd_json_object_end(w);
}
static void key_in_array(dd_json *w) {
    dd_json_array(w, DD_JSON_INLINE);
    dd_json_key(w, "k");
    dd_json_int(w, 1);
    dd_json_array_end(w);
}
static void key_at_top(dd_json *w) {
    dd_json_key(w, "k");
}
static void key_after_key(dd_json *w) {
    dd_json_object(w, DD_JSON_INLINE);
    dd_json_key(w, "a");
    dd_json_key(w, "b");
    dd_json_int(w, 1);
    dd_json_object_end(w);
}
static void wrong_close(dd_json *w) {
    dd_json_object(w, DD_JSON_INLINE);
    dd_json_key(w, "a");
    dd_json_array(w, DD_JSON_INLINE);
    dd_json_object_end(w);
}
static void close_after_key(dd_json *w) {
    dd_json_object(w, DD_JSON_INLINE);
    dd_json_key(w, "a");
    dd_json_object_end(w);
}
static void close_nothing(dd_json *w) {
    dd_json_int(w, 1);
    dd_json_array_end(w);
}
static void left_open(dd_json *w) {
    dd_json_object(w, DD_JSON_LINES);
    dd_json_key(w, "a");
    dd_json_array(w, DD_JSON_INLINE);
}
static void empty_doc(dd_json *w) {
    (void)w;
}
static void two_values(dd_json *w) {
    dd_json_int(w, 1);
    dd_json_int(w, 2);
}
static void too_deep(dd_json *w) {
    for (int i = 0; i <= DD_JSON_MAX_DEPTH; i++)
        dd_json_array(w, DD_JSON_INLINE);
    for (int i = 0; i <= DD_JSON_MAX_DEPTH; i++)
        dd_json_array_end(w);
}
static void null_key(dd_json *w) {
    dd_json_object(w, DD_JSON_INLINE);
    dd_json_key(w, NULL);
    dd_json_int(w, 1);
    dd_json_object_end(w);
}

static void test_misuse(void **state) {
    (void)state;
    static const struct {
        writer_fn fn;
        const char *says;
    } cases[] = {
        {value_without_key, "without its key"},
        {key_in_array, "outside an object"},
        {key_at_top, "outside an object"},
        {key_after_key, "after a key"},
        {wrong_close, "closing an object while an array is open"},
        {close_after_key, "without its value"},
        {close_nothing, "closing an array while none is open"},
        {left_open, "2 container(s) left open"},
        {empty_doc, "empty document"},
        {two_values, "second value"},
        {too_deep, "deeper than"},
        {null_key, "NULL key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dd_status st = DD_OK;
        dd_error_clear();
        char *doc = write_doc(cases[i].fn, &st);
        if (doc || st != DD_ERR_INVALID || !strstr(dd_error_message(), cases[i].says))
            fprintf(stderr, "case %zu: status %d, message '%s'\n", i, (int)st, dd_error_message());
        assert_null(doc);
        assert_int_equal(st, DD_ERR_INVALID);
        assert_non_null(strstr(dd_error_message(), "json: "));
        assert_non_null(strstr(dd_error_message(), cases[i].says));
    }
}

/* After the first error nothing more is written and that error is the one
 * reported. */
static void test_first_error_sticks(void **state) {
    (void)state;
    dd_strbuf b = DD_STRBUF_INIT;
    dd_json w;
    dd_json_init_buf(&w, &b);
    dd_json_object(&w, DD_JSON_INLINE);
    dd_json_int(&w, 1); // no key
    const size_t len = b.len;
    dd_json_key(&w, "a");
    dd_json_int(&w, 2);
    dd_json_array_end(&w);
    assert_int_equal(b.len, len);
    assert_int_equal(dd_json_finish(&w), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "without its key"));
    free(b.s);
}

static void test_long_key(void **state) {
    (void)state;
    char key[600];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    dd_strbuf b = DD_STRBUF_INIT;
    dd_json w;
    dd_json_init_buf(&w, &b);
    dd_json_object(&w, DD_JSON_INLINE);
    dd_json_keyf(&w, "%s_%d", key, 7);
    dd_json_int(&w, 1);
    dd_json_object_end(&w);
    assert_int_equal(dd_json_finish(&w), DD_OK);
    char want[700];
    snprintf(want, sizeof want, "{\"%s_7\": 1}\n", key);
    assert_string_equal(b.s, want);
    free(b.s);
}

static void test_buffer_oom_reported(void **state) {
    (void)state;
    dd_strbuf b = DD_STRBUF_INIT;
    dd_json w;
    dd_json_init_buf(&w, &b);
    dd_json_int(&w, 1);
    b.oom = 1; // as if an append had failed
    assert_int_equal(dd_json_finish(&w), DD_ERR_NOMEM);
    assert_non_null(strstr(dd_error_message(), "out of memory"));
    free(b.s);
}

static void test_stream_sink(void **state) {
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    dd_json w;
    dd_json_init_file(&w, f);
    dd_json_object(&w, DD_JSON_LINES);
    dd_json_key(&w, "s");
    dd_json_string(&w, "t\tu");
    dd_json_object_end(&w);
    assert_int_equal(dd_json_finish(&w), DD_OK);
    rewind(f);
    char got[64] = "";
    size_t n = fread(got, 1, sizeof got - 1, f);
    got[n] = '\0';
    fclose(f);
    assert_string_equal(got, "{\n  \"s\": \"t\\tu\"\n}\n");

    // A stream that cannot be written: the error is reported at the end.
    f = fopen("/dev/null", "r");
    assert_non_null(f);
    dd_json_init_file(&w, f);
    dd_json_int(&w, 1);
    assert_int_equal(dd_json_finish(&w), DD_ERR_IO);
    assert_non_null(strstr(dd_error_message(), "write error"));
    fclose(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_nesting_and_layout),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_non_finite),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_first_error_sticks),
        cmocka_unit_test(test_long_key),
        cmocka_unit_test(test_buffer_oom_reported),
        cmocka_unit_test(test_stream_sink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
