/* Tests of the pipeline loader: a valid pipeline (values, defaults, paths,
 * where-tracking, stages, resolved config round trip), --set overrides, and
 * every malformed fixture in tests/pipelines/ with its exact error and
 * line:col. Uses only the test-only plugin testkit (tests/plugins). */
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
#include "config/options.h"
#include "run/pipeline.h"

#define FIXTURES DD_TEST_SOURCE_DIR "/tests/pipelines"

static dd_registry *reg;

static int setup(void **state) {
    if (chdir(FIXTURES) != 0) return -1;
    if (dd_registry_create(&reg) != DD_OK) return -1;
    if (dd_registry_add_file(reg, DD_TEST_PLUGIN_DIR "/testkit.so") != DD_OK) {
        fprintf(stderr, "%s\n", dd_error_message());
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    dd_registry_destroy(reg);
    return 0;
}

static dd_pipeline *load_ok(const char *file, const char *const *sets) {
    dd_pipeline *p = NULL;
    dd_status s = dd_pipeline_load(file, sets, reg, &p);
    if (s != DD_OK) fail_msg("%s: unexpected error: %s", file, dd_error_message());
    return p;
}

typedef struct bad_case {
    const char *file;
    dd_status status;
    const char *message;
} bad_case;

static const bad_case bad_cases[] = {
    {"bad_syntax_indent.yaml", DD_ERR_PARSE,
     "bad_syntax_indent.yaml:3:2: YAML syntax error: did not find expected key (while parsing a "
     "block mapping at 1:1)"},
    {"bad_syntax_flow.yaml", DD_ERR_PARSE,
     "bad_syntax_flow.yaml:2:6: YAML syntax error: did not find expected ',' or '}' (while parsing "
     "a "
     "flow mapping at 1:10)"},
    {"bad_syntax_colon.yaml", DD_ERR_PARSE,
     "bad_syntax_colon.yaml:2:19: YAML syntax error: mapping values are not allowed in this "
     "context"},
    {"invalid_utf8.yaml", DD_ERR_PARSE,
     "invalid_utf8.yaml: invalid text at byte 22: invalid leading UTF-8 octet"},
    {"unknown_top_key.yaml", DD_ERR_INVALID,
     "unknown_top_key.yaml:2:1: unknown top-level key 'distil' (valid keys: name, description, "
     "seed, "
     "stages, dataset, model, objective, pretrain, distill, evaluate, report)"},
    {"unknown_key.yaml", DD_ERR_INVALID,
     "unknown_key.yaml:6:3: unknown key 'lr' in 'distill' (valid keys: steps, epochs, "
     "images_per_class, iterations, batch_real, lr_init, init_mode, nets_per_iteration, "
     "image_init, "
     "learn_labels, optimizer, checkpoint_every, log_every, threads, real_chunk, "
     "max_unrolled_images)"},
    {"unknown_nested_key.yaml", DD_ERR_INVALID,
     "unknown_nested_key.yaml:7:5: unknown key 'momentum' in 'distill.optimizer' (valid keys: lr, "
     "beta1, beta2, lr_lr, decay_every, decay)"},
    {"unknown_plugin_key.yaml", DD_ERR_INVALID,
     "unknown_plugin_key.yaml:4:3: unknown key 'depth' in 'model' (valid keys: plugin, init, gain, "
     "backend, hidden, activation, head)"},
    {"unknown_plugin.yaml", DD_ERR_NOT_FOUND,
     "unknown_plugin.yaml:3:11: unknown model plugin 'resnet' (available: testnet)"},
    {"unknown_source_plugin.yaml", DD_ERR_NOT_FOUND,
     "unknown_source_plugin.yaml:6:18: unknown dataset plugin 'nosuch' (available: testdata)"},
    {"default_objective_missing.yaml", DD_ERR_NOT_FOUND,
     "default_objective_missing.yaml:1:1: objective.plugin defaults to 'classification': unknown "
     "objective plugin 'classification' (available: testobj)"},
    {"missing_plugin.yaml", DD_ERR_INVALID,
     "missing_plugin.yaml:2:1: missing required key 'plugin' in 'model'"},
    {"missing_dataset.yaml", DD_ERR_INVALID,
     "missing_dataset.yaml:1:1: missing required section 'dataset'"},
    {"stage_needs_model.yaml", DD_ERR_INVALID,
     "stage_needs_model.yaml:1:1: missing section 'model' (needed by stage 'distill')"},
    {"wrong_type_int.yaml", DD_ERR_INVALID,
     "wrong_type_int.yaml:5:10: invalid value for 'distill.steps': expected an integer, got 'ten'"},
    {"wrong_type_bool.yaml", DD_ERR_INVALID,
     "wrong_type_bool.yaml:5:17: invalid value for 'distill.learn_labels': expected true or false, "
     "got 'maybe'"},
    {"list_for_scalar.yaml", DD_ERR_INVALID,
     "list_for_scalar.yaml:5:11: invalid value for 'distill.epochs': expected an integer, got a "
     "list"},
    {"mapping_for_list.yaml", DD_ERR_INVALID,
     "mapping_for_list.yaml:6:5: invalid value for 'evaluate.baselines': expected a list, got a "
     "mapping"},
    {"out_of_range_int.yaml", DD_ERR_INVALID,
     "out_of_range_int.yaml:5:10: invalid value for 'distill.steps': 0 is out of range (must be in "
     "[1, 10000])"},
    {"out_of_range_float.yaml", DD_ERR_INVALID,
     "out_of_range_float.yaml:5:22: invalid value for 'distill.optimizer.decay': 1.5 is out of "
     "range "
     "(must be in (0, 1])"},
    {"out_of_range_plugin.yaml", DD_ERR_INVALID,
     "out_of_range_plugin.yaml:3:12: invalid value for 'dataset.classes': 11 is out of range (must "
     "be "
     "in [2, 10])"},
    {"negative_seed.yaml", DD_ERR_INVALID,
     "negative_seed.yaml:1:7: invalid value for 'seed': -1 is out of range (must be >= 0)"},
    {"bad_enum.yaml", DD_ERR_INVALID,
     "bad_enum.yaml:5:14: invalid value for 'distill.init_mode': 'warm' is not one of: fixed, "
     "random, "
     "pretrained-fixed, pretrained-random"},
    {"bad_list_item.yaml", DD_ERR_INVALID,
     "bad_list_item.yaml:5:23: invalid value for 'evaluate.baselines': list item 'best' is not one "
     "of: random, average, kmeans, best_of_random, knn"},
    {"duplicate_key.yaml", DD_ERR_PARSE,
     "duplicate_key.yaml:7:3: duplicate key 'steps' (first defined at 5:3)"},
    {"duplicate_section.yaml", DD_ERR_PARSE,
     "duplicate_section.yaml:3:1: duplicate key 'dataset' (first defined at 1:1)"},
    {"section_not_mapping.yaml", DD_ERR_INVALID,
     "section_not_mapping.yaml:4:10: section 'distill' must be a mapping of keys, got a scalar"},
    {"group_not_mapping.yaml", DD_ERR_INVALID,
     "group_not_mapping.yaml:5:14: invalid value for 'distill.optimizer': expected a mapping "
     "(keys: "
     "lr, beta1, beta2, lr_lr, decay_every, decay), got a scalar"},
    {"stages_order.yaml", DD_ERR_INVALID,
     "stages_order.yaml:1:9: invalid value for 'stages': 'fetch' must come earlier (stages run in "
     "the "
     "order fetch, load, pretrain, distill, evaluate, report)"},
    {"stages_unknown.yaml", DD_ERR_INVALID,
     "stages_unknown.yaml:1:23: invalid value for 'stages': list item 'train' is not one of: "
     "fetch, "
     "load, pretrain, distill, evaluate, report"},
    {"empty.yaml", DD_ERR_INVALID,
     "empty.yaml: the pipeline is empty (expected a mapping with at least a 'dataset' section)"},
    {"not_mapping.yaml", DD_ERR_INVALID,
     "not_mapping.yaml:1:1: a pipeline must be a mapping of keys, got a list"},
    {"bad_name.yaml", DD_ERR_INVALID,
     "bad_name.yaml:1:7: invalid value for 'name': 'my run/1' may only contain letters, digits, "
     "'.', "
     "'_' and '-' (it names the run directory)"},
    {"alias.yaml", DD_ERR_PARSE, "alias.yaml:2:8: YAML aliases (*d) are not supported"},
    {"two_documents.yaml", DD_ERR_PARSE,
     "two_documents.yaml:2:1: only one YAML document is allowed per file"},
    {"key_not_scalar.yaml", DD_ERR_PARSE,
     "key_not_scalar.yaml:2:3: mapping keys must be plain scalars"},
    {"wrong_dataset_name.yaml", DD_ERR_INVALID,
     "wrong_dataset_name.yaml:3:9: invalid value for 'dataset.name': plugin 'testdata' does not "
     "read "
     "'cifar10' (it reads: testdata, testdata-alt)"},
    {"no_such_file.yaml", DD_ERR_NOT_FOUND,
     "no_such_file.yaml: cannot open: No such file or directory"},
};

static void test_malformed_pipelines(void **state) {
    size_t n = sizeof bad_cases / sizeof *bad_cases;
    assert_true(n >= 15);
    for (size_t i = 0; i < n; i++) {
        dd_pipeline *p = (dd_pipeline *)0x1;
        dd_error_clear();
        dd_status s = dd_pipeline_load(bad_cases[i].file, NULL, reg, &p);
        if (s != bad_cases[i].status || strcmp(dd_error_message(), bad_cases[i].message) != 0)
            fail_msg("%s:\n  got      %d '%s'\n  expected %d '%s'", bad_cases[i].file, s,
                     dd_error_message(), bad_cases[i].status, bad_cases[i].message);
        assert_null(p);
    }
}

// Every fixture in the directory is either valid or listed above, so a new
// fixture cannot be added without its expected error.
static void test_every_fixture_is_checked(void **state) {
    FILE *ls = popen("ls " FIXTURES, "r");
    assert_non_null(ls);
    char name[256];
    int checked = 0;
    while (fgets(name, sizeof name, ls)) {
        name[strcspn(name, "\n")] = '\0';
        if (strcmp(name, "good.yaml") == 0 || strcmp(name, "minimal.yaml") == 0) continue;
        int found = 0;
        for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++)
            found |= strcmp(bad_cases[i].file, name) == 0;
        if (!found) fail_msg("fixture %s has no expected error in test_pipeline.c", name);
        checked++;
    }
    pclose(ls);
    assert_true(checked >= 15);
}

// The stage table: one entry per name of DD_STAGE_LIST, in order, each with a
// run function; stages with a section have a spec; names parse back.
static void test_stage_table(void **state) {
    char joined[256] = "";
    for (int i = 0; i < DD_STAGE_COUNT; i++) {
        const dd_stage_def *d = dd_stage_get((dd_stage)i);
        assert_non_null(d);
        assert_int_equal(d->id, i);
        const char *name = dd_stage_name((dd_stage)i);
        assert_non_null(d->run);
        if (d->flags & DD_STAGE_HAS_SECTION) {
            assert_string_equal(dd_stage_section((dd_stage)i), name);
            assert_non_null(dd_stage_spec((dd_stage)i));
        } else {
            assert_null(dd_stage_section((dd_stage)i));
            assert_null(dd_stage_spec((dd_stage)i));
        }
        dd_stage back;
        assert_int_equal(dd_stage_parse(name, &back), DD_OK);
        assert_int_equal(back, i);
        if (i) strcat(joined, "|");
        strcat(joined, name);
    }
    assert_string_equal(dd_stage_choices(), joined);
    assert_null(dd_stage_get(DD_STAGE_COUNT));
    dd_stage s;
    assert_int_equal(dd_stage_parse("train", &s), DD_ERR_NOT_FOUND);
    assert_non_null(strstr(dd_error_message(),
                           "unknown stage 'train' (stages: fetch, load, pretrain, distill, "
                           "evaluate, report)"));
}

static void test_good_pipeline(void **state) {
    dd_pipeline *p = load_ok("good.yaml", NULL);
    assert_string_equal(dd_pipeline_name(p), "good-run");
    assert_string_equal(dd_pipeline_description(p), "valid: every section");
    assert_int_equal(dd_pipeline_seed(p), 7);
    assert_string_equal(dd_pipeline_dir(p), FIXTURES);

    // default stages: fetch, load, distill and evaluate (sections present), report
    const dd_stage expect[] = {DD_STAGE_FETCH, DD_STAGE_LOAD, DD_STAGE_DISTILL, DD_STAGE_EVALUATE,
                               DD_STAGE_REPORT};
    assert_int_equal(dd_pipeline_stage_count(p), 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(dd_pipeline_stage(p, i), expect[i]);
    assert_false(dd_pipeline_has_stage(p, DD_STAGE_PRETRAIN));

    const dd_options *d = dd_pipeline_section(p, "dataset");
    assert_ptr_equal(d, dd_pipeline_component_options(p, DD_COMPONENT_DATASET));
    assert_string_equal(dd_pipeline_component(p, DD_COMPONENT_DATASET)->name, "testdata");
    assert_string_equal(dd_options_string(d, "name"), "testdata-alt");
    assert_string_equal(dd_options_string(d, "path"), FIXTURES "/data/here");
    assert_int_equal(dd_options_int(d, "classes"), 5);
    assert_int_equal(dd_options_int(d, "per_class"), 4); // plugin default
    assert_true(dd_options_bool(d, "verify"));           // core default
    assert_string_equal(dd_options_where(d, "classes"), "good.yaml:9:12");
    assert_string_equal(dd_options_where(d, "per_class"), "<default>");

    const dd_options *m = dd_pipeline_component_options(p, DD_COMPONENT_MODEL);
    assert_int_equal(dd_options_int(m, "hidden"), 12);
    assert_false(dd_options_bool(m, "head.bias"));
    assert_string_equal(dd_options_string(m, "init"), "xavier");
    assert_string_equal(dd_options_string(m, "backend"), "onednn");

    const dd_options *o = dd_pipeline_component_options(p, DD_COMPONENT_OBJECTIVE);
    assert_string_equal(dd_options_string(o, "data_dir"), FIXTURES "/../elsewhere");
    assert_int_equal(dd_options_list_len(o, "targets"), 3);

    const dd_options *ds = dd_pipeline_section(p, "distill");
    assert_int_equal(dd_options_int(ds, "steps"), 4);
    assert_int_equal(dd_options_int(ds, "epochs"), 3);
    assert_true(dd_options_float(ds, "optimizer.lr") == 0.05);
    assert_int_equal(dd_options_int(ds, "optimizer.decay_every"), 100);
    assert_true(dd_options_float(ds, "optimizer.beta1") == 0.5);
    assert_string_equal(dd_options_where(ds, "optimizer.lr"), "good.yaml:21:19");

    const dd_options *ev = dd_pipeline_section(p, "evaluate");
    assert_int_equal(dd_options_list_len(ev, "baselines"), 2);
    assert_string_equal(dd_options_list_item(ev, "baselines", 1), "kmeans");
    // absent stage sections still carry their defaults
    assert_false(dd_pipeline_section_present(p, "pretrain"));
    assert_int_equal(dd_options_int(dd_pipeline_section(p, "pretrain"), "nets"), 10);
    assert_int_equal(dd_options_int(dd_pipeline_section(p, "report"), "png_scale"), 4);
    assert_null(dd_pipeline_section(p, "nonsense"));

    char summary[512];
    dd_pipeline_summary(p, summary, sizeof summary);
    assert_string_equal(summary,
                        "good-run: dataset testdata/testdata-alt, model testnet, objective "
                        "testobj; seed 7; stages: fetch, load, distill, evaluate, report");
    dd_pipeline_destroy(p);
}

static void test_minimal_pipeline(void **state) {
    dd_pipeline *p = load_ok("minimal.yaml", NULL);
    assert_string_equal(dd_pipeline_name(p), "minimal"); // from the file name
    assert_int_equal(dd_pipeline_seed(p), 0);
    assert_int_equal(dd_pipeline_stage_count(p), 2); // fetch, load
    assert_string_equal(dd_options_string(dd_pipeline_section(p, "dataset"), "name"), "testdata");
    assert_null(dd_pipeline_component(p, DD_COMPONENT_MODEL));
    assert_null(dd_pipeline_component(p, DD_COMPONENT_OBJECTIVE));
    assert_null(dd_pipeline_section(p, "model"));
    dd_pipeline_destroy(p);
}

// Absurd integers are refused where they are written, never cut to fit:
// 2^32 + 1 steps once ran as 1 step, a height of 2^32 + 4 as 4, and
// steps × epochs could overflow; 0 iterations ran nothing and reported
// success.
static void test_absurd_integers(void **state) {
    static const struct {
        const char *set, *message;
    } cases[] = {
        {"distill.steps=4294967297", "--set distill.steps=4294967297: invalid value for "
                                     "'distill.steps': 4294967297 is out of range (must be in "
                                     "[1, 10000])"},
        {"distill.epochs=2147483647", "'distill.epochs': 2147483647 is out of range (must be in "
                                      "[1, 1000])"},
        {"dataset.height=4294967300", "'dataset.height': 4294967300 is out of range (must be in "
                                      "[0, 65535])"},
        {"distill.iterations=0", "'distill.iterations': 0 is out of range (must be >= 1)"},
        {"evaluate.nets=99999999999", "'evaluate.nets': 99999999999 is out of range"},
        {"pretrain.nets=4294967296", "'pretrain.nets': 4294967296 is out of range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *sets[] = {cases[i].set, NULL};
        dd_pipeline *p = NULL;
        assert_int_equal(dd_pipeline_load("good.yaml", sets, reg, &p), DD_ERR_INVALID);
        assert_null(p);
        if (!strstr(dd_error_message(), cases[i].message))
            fail_msg("--set %s: got '%s', expected '%s'", cases[i].set, dd_error_message(),
                     cases[i].message);
    }
}

// A float far beyond any integer is a valid value of an unbounded float key;
// loading it once converted it to an integer (undefined behaviour, found by
// fuzz_pipeline under UBSan).
static void test_huge_float(void **state) {
    const char *sets[] = {"distill.optimizer.lr_lr=1e108", NULL};
    dd_pipeline *p = load_ok("good.yaml", sets);
    assert_true(dd_options_float(dd_pipeline_section(p, "distill"), "optimizer.lr_lr") == 1e108);
    dd_pipeline_destroy(p);
}

static void test_overrides(void **state) {
    const char *sets[] = {"distill.steps=9",
                          "distill.optimizer.lr=0.5",
                          "seed=42",
                          "name=renamed",
                          "model.hidden=3",
                          "evaluate.baselines=[average]",
                          "stages=[fetch, load, distill]",
                          "pretrain.nets=2",
                          "dataset.path=rel/dir",
                          NULL};
    dd_pipeline *p = load_ok("good.yaml", sets);
    const dd_options *ds = dd_pipeline_section(p, "distill");
    assert_int_equal(dd_options_int(ds, "steps"), 9);
    assert_string_equal(dd_options_where(ds, "steps"), "--set distill.steps");
    assert_true(dd_options_float(ds, "optimizer.lr") == 0.5);
    assert_int_equal(dd_options_int(ds, "optimizer.decay_every"), 100); // untouched file value
    assert_int_equal(dd_pipeline_seed(p), 42);
    assert_string_equal(dd_pipeline_name(p), "renamed");
    assert_int_equal(dd_options_int(dd_pipeline_section(p, "model"), "hidden"), 3);
    assert_int_equal(dd_options_list_len(dd_pipeline_section(p, "evaluate"), "baselines"), 1);
    assert_int_equal(dd_pipeline_stage_count(p), 3);
    assert_true(dd_pipeline_section_present(p, "pretrain"));
    // a path given with --set is relative to the current directory
    char cwd[4096], expect[4200];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(expect, sizeof expect, "%s/rel/dir", cwd);
    assert_string_equal(dd_options_string(dd_pipeline_section(p, "dataset"), "path"), expect);
    dd_pipeline_destroy(p);

    // --set can switch the plugin and create a section the file lacks
    const char *sets2[] = {"model.plugin=testnet", "objective.plugin=testobj", "distill.steps=2",
                           NULL};
    p = load_ok("minimal.yaml", sets2);
    assert_string_equal(dd_pipeline_component(p, DD_COMPONENT_MODEL)->name, "testnet");
    assert_true(dd_pipeline_has_stage(p, DD_STAGE_DISTILL));
    dd_pipeline_destroy(p);
}

static void test_bad_overrides(void **state) {
    static const struct {
        const char *set;
        dd_status status;
        const char *message;
    } cases[] = {
        {"distill.steps=zero", DD_ERR_INVALID,
         "--set distill.steps=zero: invalid value for 'distill.steps': expected an integer, got "
         "'zero'"},
        {"distill.lr=1", DD_ERR_INVALID,
         "--set distill.lr=1: unknown key 'lr' in 'distill' (valid keys: steps, epochs, "
         "images_per_class, iterations, batch_real, lr_init, init_mode, nets_per_iteration, "
         "image_init, learn_labels, optimizer, checkpoint_every, log_every, threads, real_chunk, "
         "max_unrolled_images)"},
        {"distil.steps=1", DD_ERR_INVALID,
         "--set distil.steps=1: unknown key 'distil' (valid keys: name, description, seed, stages, "
         "dataset, model, objective, pretrain, distill, evaluate, report)"},
        {"distill=3", DD_ERR_INVALID,
         "--set distill=3: 'distill' is a section; set one of its keys (distill.KEY=VALUE)"},
        {"seed.x=3", DD_ERR_INVALID,
         "--set seed.x=3: 'seed' is not a section (use --set seed=VALUE)"},
        {"steps", DD_ERR_USAGE, "--set steps: expected KEY=VALUE (e.g. distill.steps=5)"},
        {"model.plugin=resnet", DD_ERR_NOT_FOUND,
         "--set model.plugin=resnet: unknown model plugin 'resnet' (available: testnet)"},
        {"model.hidden=0", DD_ERR_INVALID,
         "--set model.hidden=0: invalid value for 'model.hidden': 0 is out of range (must be >= "
         "1)"},
        {"evaluate.baselines=[random", DD_ERR_PARSE,
         "--set evaluate.baselines=[random: YAML syntax error in the value: did not find expected "
         "',' "
         "or ']'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *sets[] = {cases[i].set, NULL};
        dd_pipeline *p = (dd_pipeline *)0x1;
        dd_status s = dd_pipeline_load("good.yaml", sets, reg, &p);
        if (s != cases[i].status || strcmp(dd_error_message(), cases[i].message) != 0)
            fail_msg("--set %s:\n  got      %d '%s'\n  expected %d '%s'", cases[i].set, s,
                     dd_error_message(), cases[i].status, cases[i].message);
        assert_null(p);
    }
}

// The resolved config loads back to the same values.
static void test_config_round_trip(void **state) {
    const char *sets[] = {"objective.targets=['a b', 'c: d', 'true']",
                          "description=quote \" and \\", NULL};
    dd_pipeline *p = load_ok("good.yaml", sets);
    char path[] = "/tmp/dd_test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_int_equal(dd_pipeline_write_config(p, f), DD_OK);
    fclose(f);
    dd_pipeline *q = load_ok(path, NULL);
    assert_string_equal(dd_pipeline_name(q), dd_pipeline_name(p));
    assert_string_equal(dd_pipeline_description(q), "quote \" and \\");
    assert_int_equal(dd_pipeline_stage_count(q), dd_pipeline_stage_count(p));
    const char *sections[] = {"dataset", "model", "objective", "distill", "evaluate", "report"};
    for (size_t k = 0; k < sizeof sections / sizeof *sections; k++) {
        const dd_options *a = dd_pipeline_section(p, sections[k]);
        const dd_options *b = dd_pipeline_section(q, sections[k]);
        assert_int_equal(dd_options_count(a), dd_options_count(b));
        for (size_t i = 0; i < dd_options_count(a); i++) {
            char *va = dd_options_format(a, i), *vb = dd_options_format(b, i);
            if (strcmp(va, vb) != 0)
                fail_msg("%s.%s: %s != %s", sections[k], dd_options_spec(a, i)->name, va, vb);
            free(va);
            free(vb);
        }
    }
    assert_string_equal(dd_options_list_item(dd_pipeline_section(q, "objective"), "targets", 1),
                        "c: d");
    dd_pipeline_destroy(q);
    dd_pipeline_destroy(p);
    unlink(path);
}

// Loads `len` bytes of `text` from a temp file: must succeed or fail with a
// message that names the file; never crash.
static void load_bytes(const char *text, size_t len, const char *what, size_t at) {
    char path[] = "/tmp/dd_test_mangled_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    dd_pipeline *p = NULL;
    dd_error_clear();
    dd_status s = dd_pipeline_load(path, NULL, reg, &p);
    if (s == DD_OK) {
        assert_non_null(p);
        dd_pipeline_destroy(p);
    } else {
        assert_null(p);
        if (strncmp(dd_error_message(), path, strlen(path)) != 0)
            fail_msg("%s at %zu: message does not name the file: '%s'", what, at,
                     dd_error_message());
    }
    unlink(path);
}

static void test_truncated_and_corrupted(void **state) {
    FILE *f = fopen("good.yaml", "rb");
    assert_non_null(f);
    char text[4096];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    for (size_t n = 0; n <= len; n++)
        load_bytes(text, n, "truncated", n);
    static const char junk[] = {':', '[', '{', '\0', '\xff', '\t', '&', '*', '-', '"', '!', '%'};
    for (size_t i = 0; i < len; i++) {
        for (size_t j = 0; j < sizeof junk; j++) {
            char copy[4096];
            memcpy(copy, text, len);
            copy[i] = junk[j];
            load_bytes(copy, len, "corrupted", i);
        }
    }
}

static void test_destroy_null(void **state) {
    dd_pipeline_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_pipelines),
        cmocka_unit_test(test_every_fixture_is_checked),
        cmocka_unit_test(test_stage_table),
        cmocka_unit_test(test_good_pipeline),
        cmocka_unit_test(test_minimal_pipeline),
        cmocka_unit_test(test_absurd_integers),
        cmocka_unit_test(test_huge_float),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_bad_overrides),
        cmocka_unit_test(test_config_round_trip),
        cmocka_unit_test(test_truncated_and_corrupted),
        cmocka_unit_test(test_destroy_null),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
