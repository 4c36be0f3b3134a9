/* Tests of the progress bar with a fake clock: TTY redraws (bar, rate, ETA,
 * status), plain periodic lines when not a TTY, silence below info. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "distill/distill.h"
#include "base/progress.h"

static double fake_now;
static double fake_clock(void *ctx) {
    return *(double *)ctx;
}

// Everything written to f so far (caller frees).
static char *slurp(FILE *f) {
    fflush(f);
    long n = ftell(f);
    char *s = calloc((size_t)n + 1, 1);
    rewind(f);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    return s;
}

static size_t count(const char *s, const char *needle) {
    size_t n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_plain_lines(void **state) {
    FILE *f = tmpfile();
    fake_now = 100;
    dd_progress_config cfg = {
        .out = f, .tty = 0, .interval = 5, .clock = fake_clock, .clock_ctx = &fake_now, .force = 1};
    dd_progress *p = NULL;
    assert_int_equal(dd_progress_create_config("train", 100, "it", &cfg, &p), DD_OK);
    for (int i = 1; i <= 100; i++) {
        fake_now = 100 + i * 0.5; // 2 it/s, 50 s in total
        dd_progress_update(p, (uint64_t)i, i == 40 ? "loss 0.50" : NULL);
    }
    dd_progress_finish(p);
    dd_progress_finish(p); // idempotent
    dd_progress_destroy(p);
    char *out = slurp(f);
    // lines at t = 0.5, 5.5, ..., 45.5 s (one per 5 s), then the final line
    assert_int_equal(count(out, "\n"), 11);
    assert_int_equal(count(out, "\r"), 0);
    assert_non_null(strstr(out, "train:   1% 1/100 2.00 it/s ETA 0:50\n"));
    // at 20.5 s: 41 done at 2 it/s, 59 left → ETA 29.5 s; the status text sticks
    assert_non_null(strstr(out, "train:  41% 41/100 2.00 it/s ETA 0:30  loss 0.50\n"));
    assert_non_null(strstr(out, "train: 100% 100/100 in 0:50 (2.00 it/s)  loss 0.50\n"));
    free(out);
    fclose(f);
}

static void test_tty_redraw(void **state) {
    FILE *f = tmpfile();
    fake_now = 0;
    dd_progress_config cfg = {
        .out = f, .tty = 1, .width = 80, .clock = fake_clock, .clock_ctx = &fake_now, .force = 1};
    dd_progress *p = NULL;
    assert_int_equal(dd_progress_create_config("fetch", 4 << 20, "B", &cfg, &p), DD_OK);
    fake_now = 1;
    dd_progress_update(p, 1 << 20, NULL);
    fake_now = 1.05; // within 0.1 s of the last draw: no redraw
    dd_progress_update(p, 2 << 20, NULL);
    fake_now = 2;
    dd_progress_update(p, 2 << 20, NULL);
    dd_progress_destroy(p); // finishes
    char *out = slurp(f);
    assert_int_equal(count(out, "\r"), 3);
    assert_int_equal(count(out, "\n"), 1);
    assert_int_equal(out[strlen(out) - 1], '\n');
    assert_non_null(strstr(out, "\rfetch ["));
    assert_non_null(strstr(out, "#####"));
    assert_non_null(strstr(out, " 25% 1.0 MiB/4.0 MiB 1.0 MiB/s ETA 0:03\033[K"));
    assert_non_null(strstr(out, " 50% 2.0 MiB/4.0 MiB 1.0 MiB/s ETA 0:02\033[K"));
    // every redrawn line fits the terminal width
    for (char *line = strtok(out, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        char *esc = strstr(line, "\033[K");
        size_t len = esc ? (size_t)(esc - line) : strlen(line);
        assert_true(len <= 80);
    }
    free(out);
    fclose(f);
}

static void test_unknown_total_and_silence(void **state) {
    FILE *f = tmpfile();
    fake_now = 0;
    dd_progress_config cfg = {
        .out = f, .tty = 0, .clock = fake_clock, .clock_ctx = &fake_now, .force = 1};
    dd_progress *p = NULL;
    assert_int_equal(dd_progress_create_config("scan", 0, "img", &cfg, &p), DD_OK);
    fake_now = 4;
    dd_progress_update(p, 8, NULL);
    dd_progress_destroy(p);
    char *out = slurp(f);
    assert_string_equal(out, "scan: 8 2.00 img/s\nscan: 8 in 0:04 (2.00 img/s)\n");
    free(out);
    fclose(f);

    // below info (e.g. -q) nothing is printed
    f = tmpfile();
    dd_log_level old = dd_log_get_level();
    dd_log_set_level(DD_LOG_WARN);
    cfg.out = f;
    cfg.force = 0;
    assert_int_equal(dd_progress_create_config("quiet", 10, "it", &cfg, &p), DD_OK);
    dd_progress_update(p, 5, "x");
    dd_progress_destroy(p);
    dd_log_set_level(old);
    fflush(f);
    assert_int_equal(ftell(f), 0);
    fclose(f);
    dd_progress_destroy(NULL);
    dd_progress_update(NULL, 1, NULL);
    dd_progress_finish(NULL);
}

static void test_formatting(void **state) {
    char b[64];
    dd_format_duration(0, b, sizeof b);
    assert_string_equal(b, "0:00");
    dd_format_duration(75.4, b, sizeof b);
    assert_string_equal(b, "1:15");
    dd_format_duration(3725, b, sizeof b);
    assert_string_equal(b, "1:02:05");
    dd_format_duration(-1, b, sizeof b);
    assert_string_equal(b, "?");
    dd_format_amount(512, "B", b, sizeof b);
    assert_string_equal(b, "512 B");
    dd_format_amount(1536, "B", b, sizeof b);
    assert_string_equal(b, "1.5 KiB");
    dd_format_amount(3.0 * (1 << 30), "B", b, sizeof b);
    assert_string_equal(b, "3.0 GiB");
    dd_format_amount(42, "it", b, sizeof b);
    assert_string_equal(b, "42");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_lines),
        cmocka_unit_test(test_tty_redraw),
        cmocka_unit_test(test_unknown_total_and_silence),
        cmocka_unit_test(test_formatting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
