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

// the compiler (and flags) a user program is built with; the sanitizer build
// needs the build's own compiler and its sanitizer runtime
#ifndef DD_TEST_CC
#define DD_TEST_CC "cc"
#endif

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

// pkg-config finds libdistill, a program built with its flags runs, and an
// installed tree moved elsewhere still finds its plugins and manifests.
static void test_pkg_config_and_relocation(void **state) {
    must(sh("cmake --install '%s' --prefix '%s/prefix'", DD_TEST_BINARY_DIR, tmp),
         "cmake --install");
    must(sh("test \"$(find '%s/prefix' -name distill.pc | wc -l)\" = 1", tmp),
         "one installed distill.pc");
    must(sh("cd '%s' && pc=$(dirname \"$(find prefix -name distill.pc)\") && "
            "PKG_CONFIG_PATH=\"$PWD/$pc\" pkg-config --define-variable=prefix='%s/prefix' "
            "--cflags --libs distill > flags && cat flags",
            tmp, tmp),
         "pkg-config --cflags --libs distill");
    assert_non_null(strstr(out, "-ldistill"));
    char inc[400];
    snprintf(inc, sizeof inc, "-I%s/prefix/include", tmp);
    assert_non_null(strstr(out, inc));
    must(sh("cd '%s' && printf '#include <distill/distill.h>\n#include <stdio.h>\n"
            "int main(void) { puts(dd_version()); return 0; }\n' > v.c && " DD_TEST_CC
            " -std=c11 v.c $(cat flags) -o v && "
            "LD_LIBRARY_PATH=$(dirname \"$(find prefix -name libdistill.so)\") ./v",
            tmp),
         "build and run a program with pkg-config's flags");
    assert_non_null(strstr(out, DD_VERSION_STRING));

    // the installed library exports the public API and nothing else
    must(sh("'%s/tests/layering/check-exports' \"$(find '%s/prefix' -name libdistill.so)\" "
            "'%s/prefix/include/distill'",
            DD_TEST_SOURCE_DIR, tmp, tmp),
         "check-exports on the installed libdistill.so");

    // relocate the whole prefix: plugins and manifests come from where the
    // library now is (the build and source trees are never consulted)
    must(sh("mv '%s/prefix' '%s/moved'", tmp, tmp), "move the prefix");
    const char *env = "env -u DISTILL_PLUGIN_PATH -u DISTILL_MANIFEST_PATH -u DISTILL_LOG";
    must(sh("%s '%s/moved/bin/distill' plugins", env, tmp), "relocated distill plugins");
    assert_non_null(strstr(out, "lenet"));
    char dir[400];
    snprintf(dir, sizeof dir, "%s/moved/", tmp);
    assert_non_null(strstr(out, dir));
    assert_null(strstr(out, "refused"));
    must(sh("%s '%s/moved/bin/distill' datasets --cache-dir '%s/cache'", env, tmp, tmp),
         "relocated distill datasets");
    assert_non_null(strstr(out, "fashion-mnist"));
    must(sh("%s '%s/moved/bin/distill' validate '%s/moved/share/distill/pipelines/quickstart.yaml'",
            env, tmp, tmp),
         "relocated distill validate");
    must(sh("rm -rf '%s/moved'", tmp), "clean up");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_and_out_of_tree_plugin),
        cmocka_unit_test(test_pkg_config_and_relocation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
