/* Install test: `cmake --install` into a temp prefix, check the layout, build
 * tests/install/myobjective out of tree with find_package(distill), and load
 * it with the installed CLI (`distill plugins` lists it). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static char tmp[256];
static char out[1 << 16];

// Runs a shell command, output (stdout+stderr) into `out`; returns the exit code.
static int sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[4600];
    snprintf(full, sizeof full, "(%s) >'%s/log' 2>&1", cmd, tmp);
    int rc = system(full);
    char path[300];
    snprintf(path, sizeof path, "%s/log", tmp);
    FILE *f = fopen(path, "r");
    out[0] = '\0';
    if (f) {
        size_t n = fread(out, 1, sizeof out - 1, f);
        out[n] = '\0';
        fclose(f);
    }
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void must(int rc, const char *what) {
    if (rc != 0) fail_msg("%s failed (exit %d):\n%s", what, rc, out);
}

static int setup(void **state) {
    snprintf(tmp, sizeof tmp, "/tmp/dd_test_install_XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_install_and_out_of_tree_plugin(void **state) {
    must(sh("cmake --install '%s' --prefix '%s/prefix'", DD_TEST_BINARY_DIR, tmp),
         "cmake --install");

    // layout: CLI, library, headers, package config, plugins
    must(sh("test -x '%s/prefix/bin/distill'", tmp), "installed CLI");
    must(sh("test -f '%s/prefix/include/distill/distill.h' && test -f "
            "'%s/prefix/include/distill/plugin.h'",
            tmp, tmp),
         "installed headers");
    must(sh("ls '%s'/prefix/lib*/libdistill.so* '%s'/prefix/lib*/*/libdistill.so* 2>/dev/null | "
            "grep -q .",
            tmp, tmp),
         "installed libdistill");
    must(sh("find '%s/prefix' -name distillConfig.cmake | grep -q .", tmp),
         "installed distillConfig.cmake");
    // every plugin of the build tree is installed, none of the test-only ones
    must(sh("cd '%s/plugins-out' && for p in *.so; do find '%s/prefix' -path "
            "'*/distill/plugins/'$p | grep -q . "
            "|| { echo missing $p; exit 1; }; done",
            DD_TEST_BINARY_DIR, tmp),
         "installed plugins");
    assert_int_not_equal(
        sh("find '%s/prefix' -name 'testkit.so' -o -name 'bad_*.so' | grep -q .", tmp), 0);

    // build the example objective out of tree against the installed SDK only
    must(sh("cp -r '%s/tests/install/myobjective' '%s/src'", DD_TEST_SOURCE_DIR, tmp),
         "copy sources");
    must(sh("cmake -S '%s/src' -B '%s/build' -DCMAKE_PREFIX_PATH='%s/prefix' "
            "-DCMAKE_BUILD_TYPE=Release",
            tmp, tmp, tmp),
         "configure the out-of-tree plugin");
    must(sh("cmake --build '%s/build'", tmp), "build the out-of-tree plugin");
    must(sh("test -f '%s/build/myobjective.so'", tmp), "myobjective.so built");

    // the installed CLI (installed libdistill, installed plugins) loads it
    const char *env = "env -u DISTILL_PLUGIN_PATH -u DISTILL_LOG";
    must(sh("%s '%s/prefix/bin/distill' --plugin-path '%s/build' plugins", env, tmp, tmp),
         "distill plugins");
    char line[600];
    snprintf(line, sizeof line, "myobjective 1.0.0  %s/build/myobjective.so\n", tmp);
    assert_non_null(strstr(out, line));
    assert_non_null(strstr(out, "  objective  myobjective      Brier score of the softmax"));
    assert_null(strstr(out, "refused"));
    // installed plugins come from the prefix, never from the build tree
    snprintf(line, sizeof line, "%s/prefix/", tmp);
    assert_non_null(strstr(out, line));
    assert_null(strstr(out, DD_TEST_BINARY_DIR "/plugins-out"));

    must(sh("%s DISTILL_PLUGIN_PATH='%s/build' '%s/prefix/bin/distill' plugins --describe "
            "myobjective",
            env, tmp, tmp),
         "distill plugins --describe");
    assert_non_null(strstr(out, "scale  float  1.0  "));
    assert_non_null(strstr(out, "multiplies the loss"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_and_out_of_tree_plugin),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
