/* Tests of the plugin loader with deliberately broken test-only plugins
 * (tests/plugins/bad_*.c): each is refused with its path and the reason;
 * search order, shadowing and lenient loading. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "distill/host.h"
#include "distill/distill.h"

#define TP DD_TEST_PLUGIN_DIR

static void expect_refused(dd_registry *r, const char *path, const char *message) {
    dd_error_clear();
    dd_status s = dd_registry_add_file(r, path);
    if (s != DD_ERR_PLUGIN || strcmp(dd_error_message(), message) != 0)
        fail_msg("%s:\n  got      %d '%s'\n  expected %d '%s'", path, s, dd_error_message(),
                 DD_ERR_PLUGIN, message);
}

static void test_good_plugin(void **state) {
    dd_registry *r = NULL;
    assert_int_equal(dd_registry_create(&r), DD_OK);
    assert_int_equal(dd_registry_add_file(r, TP "/testkit.so"), DD_OK);
    assert_int_equal(dd_registry_plugin_count(r), 1);
    const dd_plugin_descriptor *d = dd_registry_plugin(r, 0);
    assert_string_equal(d->name, "testkit");
    assert_int_equal(d->n_components, 3);
    assert_string_equal(dd_registry_plugin_path(r, 0), TP "/testkit.so");
    const dd_component *c = NULL;
    assert_int_equal(dd_registry_find(r, DD_COMPONENT_MODEL, "testnet", &c), DD_OK);
    assert_string_equal(c->name, "testnet");
    assert_int_equal(dd_registry_find(r, DD_COMPONENT_MODEL, "testdata", &c), DD_ERR_NOT_FOUND);
    assert_null(c);
    assert_string_equal(dd_error_message(), "unknown model plugin 'testdata' (available: testnet)");
    assert_null(dd_registry_plugin(r, 1));
    // loading the same name twice is refused
    expect_refused(r, TP "/testkit.so",
                   TP "/testkit.so: a plugin named 'testkit' is already loaded from " TP
                      "/testkit.so");
    dd_registry_destroy(r);
}

static void test_broken_plugins(void **state) {
    static const struct {
        const char *file, *reason;
    } cases[] = {
        {"bad_abi.so",
         "ABI version mismatch: plugin built for ABI 999, this distill uses ABI 2 (rebuild "
         "the plugin against this distill)"},
        {"bad_nosym.so", "not a distill plugin: missing entry symbol 'dd_plugin_entry'"},
        {"bad_null.so", "objective 'nullobj': required member 'outer_loss' is NULL"},
        {"bad_name.so", "plugin name 'not_bad_name' does not match its file name 'bad_name'"},
        {"bad_param.so", "objective 'paramobj': default of parameter 'steps' does not validate: "
                         "<default>: invalid value for 'steps': 0 is out of range (must be >= 1)"},
        {"bad_corekey.so",
         "objective 'corekeyobj': parameter 'plugin' redefines the core key 'plugin' "
         "of section 'objective'"},
        {"does_not_exist.so",
         "cannot load: cannot open shared object file: No such file or directory"},
    };
    dd_registry *r = NULL;
    assert_int_equal(dd_registry_create(&r), DD_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[1024], msg[2048];
        snprintf(path, sizeof path, "%s/%s", TP, cases[i].file);
        snprintf(msg, sizeof msg, "%s: %s", path, cases[i].reason);
        expect_refused(r, path, msg);
        assert_int_equal(dd_registry_plugin_count(r), 0);
    }
    dd_registry_destroy(r);
}

static void test_duplicate_component(void **state) {
    dd_registry *r = NULL;
    assert_int_equal(dd_registry_create(&r), DD_OK);
    assert_int_equal(dd_registry_add_file(r, TP "/testkit.so"), DD_OK);
    expect_refused(r, TP "/bad_dup.so",
                   TP "/bad_dup.so: duplicate objective 'testobj' (already provided by " TP
                      "/testkit.so)");
    assert_int_equal(dd_registry_plugin_count(r), 1);
    dd_registry_destroy(r);
}

// Makes a temp dir; returns its path in buf.
static void make_tmpdir(char *buf, size_t n) {
    snprintf(buf, n, "/tmp/dd_test_loader_XXXXXX");
    assert_non_null(mkdtemp(buf));
}

static void link_plugin(const char *dir, const char *as, const char *from) {
    char dst[1024];
    snprintf(dst, sizeof dst, "%s/%s", dir, as);
    assert_int_equal(symlink(from, dst), 0);
}

static void rm_rf(const char *dir) {
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_not_a_shared_object(void **state) {
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/garbage.so", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not an ELF file\n", f);
    fclose(f);
    dd_registry *r = NULL;
    assert_int_equal(dd_registry_create(&r), DD_OK);
    assert_int_equal(dd_registry_add_file(r, path), DD_ERR_PLUGIN);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s: cannot load: ", path);
    assert_memory_equal(dd_error_message(), prefix, strlen(prefix));
    // renamed copy: name no longer matches the file
    link_plugin(dir, "renamed.so", TP "/testkit.so");
    snprintf(path, sizeof path, "%s/renamed.so", dir);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: plugin name 'testkit' does not match its file name 'renamed'",
             path);
    expect_refused(r, path, msg);
    dd_registry_destroy(r);
    rm_rf(dir);
}

static void test_search_order_and_shadowing(void **state) {
    char a[256], b[256];
    make_tmpdir(a, sizeof a);
    make_tmpdir(b, sizeof b);
    link_plugin(a, "testkit.so", TP "/testkit.so");
    link_plugin(b, "testkit.so", TP "/testkit.so");
    char env[600];
    snprintf(env, sizeof env, "%s:%s", a, b);
    char *old = getenv("DISTILL_PLUGIN_PATH") ? strdup(getenv("DISTILL_PLUGIN_PATH")) : NULL;
    setenv("DISTILL_PLUGIN_PATH", env, 1);

    char **dirs = NULL;
    size_t n = 0;
    assert_int_equal(dd_registry_plugin_dirs(&dirs, &n), DD_OK);
    assert_true(n >= 4);
    assert_string_equal(dirs[0], a);
    assert_string_equal(dirs[1], b);
    // this test runs against the build tree's libdistill
    assert_string_equal(dirs[2], DD_TEST_BINARY_DIR "/plugins-out");
    for (size_t i = 0; i < n; i++)
        free(dirs[i]);
    free(dirs);

    // lenient, so a broken plugin elsewhere in the build tree cannot interfere
    dd_registry *r = NULL;
    assert_int_equal(dd_registry_load(1, &r), DD_OK);
    size_t found = 0;
    for (size_t i = 0; i < dd_registry_plugin_count(r); i++) {
        if (strcmp(dd_registry_plugin(r, i)->name, "testkit") != 0) continue;
        found++;
        char expect[600];
        snprintf(expect, sizeof expect, "%s/testkit.so", a);
        assert_string_equal(dd_registry_plugin_path(r, i), expect); // the first dir wins
    }
    assert_int_equal(found, 1);
    dd_registry_destroy(r);

    if (old) {
        setenv("DISTILL_PLUGIN_PATH", old, 1);
        free(old);
    } else {
        unsetenv("DISTILL_PLUGIN_PATH");
    }
    rm_rf(a);
    rm_rf(b);
}

static void test_strict_and_lenient_directory_load(void **state) {
    char *old = getenv("DISTILL_PLUGIN_PATH") ? strdup(getenv("DISTILL_PLUGIN_PATH")) : NULL;
    setenv("DISTILL_PLUGIN_PATH", TP, 1);
    dd_registry *r = (dd_registry *)0x1;
    // strict: the first broken plugin in name order (bad_abi) fails the load
    assert_int_equal(dd_registry_load(0, &r), DD_ERR_PLUGIN);
    assert_null(r);
    assert_string_equal(dd_error_message(),
                        TP "/bad_abi.so: ABI version mismatch: plugin built for ABI "
                           "999, this distill uses ABI 2 (rebuild the plugin "
                           "against this distill)");
    // lenient: broken ones are recorded, the rest load (bad_dup comes before
    // testkit, so testkit's objective is the duplicate)
    assert_int_equal(dd_registry_load(1, &r), DD_OK);
    const char *refused[] = {"bad_abi",  "bad_corekey", "bad_name", "bad_nosym",
                             "bad_null", "bad_param",   "testkit"};
    assert_int_equal(dd_registry_refused_count(r), 7);
    for (size_t i = 0; i < 7; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s.so", TP, refused[i]);
        assert_string_equal(dd_registry_refused_path(r, i), path);
        assert_memory_equal(dd_registry_refused_reason(r, i), path, strlen(path));
    }
    assert_string_equal(dd_registry_refused_reason(r, 6),
                        TP "/testkit.so: duplicate objective 'testobj' (already provided by " TP
                           "/bad_dup.so)");
    int has_bad_dup = 0;
    for (size_t i = 0; i < dd_registry_plugin_count(r); i++)
        has_bad_dup |= strcmp(dd_registry_plugin(r, i)->name, "bad_dup") == 0;
    assert_true(has_bad_dup);
    dd_registry_destroy(r);
    if (old) {
        setenv("DISTILL_PLUGIN_PATH", old, 1);
        free(old);
    } else {
        unsetenv("DISTILL_PLUGIN_PATH");
    }
}

static void test_kind_names_and_null(void **state) {
    assert_string_equal(dd_component_kind_str(DD_COMPONENT_DATASET), "dataset");
    assert_string_equal(dd_component_kind_str(DD_COMPONENT_MODEL), "model");
    assert_string_equal(dd_component_kind_str(DD_COMPONENT_OBJECTIVE), "objective");
    assert_string_equal(dd_component_kind_str((dd_component_kind)99), "unknown");
    dd_registry_destroy(NULL);
    assert_int_equal(dd_registry_plugin_count(NULL), 0);
    assert_int_equal(dd_registry_add_file(NULL, "x"), DD_ERR_INVALID);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_plugin),
        cmocka_unit_test(test_broken_plugins),
        cmocka_unit_test(test_duplicate_component),
        cmocka_unit_test(test_not_a_shared_object),
        cmocka_unit_test(test_search_order_and_shadowing),
        cmocka_unit_test(test_strict_and_lenient_directory_load),
        cmocka_unit_test(test_kind_names_and_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
