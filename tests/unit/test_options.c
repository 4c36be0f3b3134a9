/* Tests of dd_options: typing, ranges, choices, lists, paths, defaults,
 * where-tracking, formatting and parameter-spec checking. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "distill/host.h"
#include "distill/distill.h"
#include "config/options.h"
#include "config/schema.h"
#include "run/pipeline.h"

static const dd_param_spec spec[] = {
    {"count", DD_PARAM_INT, "3", DD_PARAM_HAS_MIN | DD_PARAM_HAS_MAX, 1, 16, NULL, "a bounded int"},
    {"rate", DD_PARAM_FLOAT, "0.5", DD_PARAM_HAS_MIN | DD_PARAM_MIN_EXCLUSIVE | DD_PARAM_HAS_MAX, 0,
     1, NULL, "a float in (0, 1]"},
    {"flag", DD_PARAM_BOOL, "false", 0, 0, 0, NULL, "a bool"},
    {"mode", DD_PARAM_ENUM, "fast", 0, 0, 0, "fast|slow|exact", "an enum"},
    {"label", DD_PARAM_STRING, NULL, 0, 0, 0, NULL, "an optional string"},
    {"items", DD_PARAM_LIST, "x, y", 0, 0, 0, NULL, "a list"},
    {"kinds", DD_PARAM_LIST, "", 0, 0, 0, "red|green|blue", "a list with choices"},
    {"dir", DD_PARAM_STRING, NULL, DD_PARAM_PATH, 0, 0, NULL, "a path"},
    {"opt.lr", DD_PARAM_FLOAT, "0.01", DD_PARAM_HAS_MIN | DD_PARAM_MIN_EXCLUSIVE, 0, 0, NULL,
     "nested"},
    {"opt.beta", DD_PARAM_FLOAT, "0.9", 0, 0, 0, NULL, "nested too"},
    {"big", DD_PARAM_INT, "0", 0, 0, 0, NULL, "an unbounded int"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const dd_param_spec required_spec[] = {
    {"name", DD_PARAM_STRING, NULL, DD_PARAM_REQUIRED, 0, 0, NULL, "required"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static dd_options *make(const char *const *kv) {
    dd_options *o = NULL;
    dd_status s = dd_options_from_strings(spec, kv, &o);
    if (s != DD_OK) fail_msg("unexpected error: %s", dd_error_message());
    return o;
}

static void expect_error(const char *kv, dd_status status, const char *message) {
    const char *list[] = {kv, NULL};
    dd_options *o = (dd_options *)0x1;
    dd_status s = dd_options_from_strings(spec, list, &o);
    assert_int_equal(s, status);
    assert_null(o);
    assert_string_equal(dd_error_message(), message);
}

static void test_defaults(void **state) {
    dd_options *o = make(NULL);
    assert_int_equal(dd_options_int(o, "count"), 3);
    assert_true(dd_options_float(o, "rate") == 0.5);
    assert_false(dd_options_bool(o, "flag"));
    assert_string_equal(dd_options_string(o, "mode"), "fast");
    assert_null(dd_options_string(o, "label"));
    assert_false(dd_options_has(o, "label"));
    assert_true(dd_options_has(o, "count"));
    assert_false(dd_options_is_set(o, "count"));
    assert_int_equal(dd_options_list_len(o, "items"), 2);
    assert_string_equal(dd_options_list_item(o, "items", 0), "x");
    assert_string_equal(dd_options_list_item(o, "items", 1), "y");
    assert_null(dd_options_list_item(o, "items", 2));
    assert_int_equal(dd_options_list_len(o, "kinds"), 0);
    assert_string_equal(dd_options_where(o, "count"), "<default>");
    assert_true(dd_options_float(o, "opt.lr") == 0.01);
    dd_options_destroy(o);
}

static void test_values(void **state) {
    const char *kv[] = {"count=16",
                        "rate=1",
                        "flag=yes",
                        "mode=exact",
                        "label='a: b'",
                        "items=[p, 'q r']",
                        "kinds=[blue, red]",
                        "opt.lr=1e-3",
                        "big=-9223372036854775808",
                        NULL};
    dd_options *o = make(kv);
    assert_int_equal(dd_options_int(o, "count"), 16);
    assert_true(dd_options_float(o, "rate") == 1.0);
    assert_true(dd_options_bool(o, "flag"));
    assert_string_equal(dd_options_string(o, "mode"), "exact");
    assert_string_equal(dd_options_string(o, "label"), "a: b");
    assert_int_equal(dd_options_list_len(o, "items"), 2);
    assert_string_equal(dd_options_list_item(o, "items", 1), "q r");
    assert_string_equal(dd_options_list_item(o, "kinds", 0), "blue");
    assert_true(dd_options_float(o, "opt.lr") == 1e-3);
    assert_true(dd_options_int(o, "big") == INT64_MIN);
    assert_true(dd_options_is_set(o, "count"));
    assert_string_equal(dd_options_where(o, "count"), "--set");
    // an int is a valid float, read through either getter
    assert_true(dd_options_float(o, "count") == 16.0);
    dd_options_destroy(o);
}

static void test_scalar_as_list_and_last_wins(void **state) {
    const char *kv[] = {"items=solo", "count=2", "count=5", NULL};
    dd_options *o = make(kv);
    assert_int_equal(dd_options_list_len(o, "items"), 1);
    assert_string_equal(dd_options_list_item(o, "items", 0), "solo");
    assert_int_equal(dd_options_int(o, "count"), 5);
    dd_options_destroy(o);
}

static void test_type_errors(void **state) {
    expect_error("count=ten", DD_ERR_INVALID,
                 "--set count=ten: invalid value for 'count': expected an integer, got 'ten'");
    expect_error("count=2.5", DD_ERR_INVALID,
                 "--set count=2.5: invalid value for 'count': expected an integer, got '2.5'");
    expect_error("rate=fast", DD_ERR_INVALID,
                 "--set rate=fast: invalid value for 'rate': expected a number, got 'fast'");
    expect_error("rate=.nan", DD_ERR_INVALID,
                 "--set rate=.nan: invalid value for 'rate': expected a number, got '.nan'");
    expect_error("rate=inf", DD_ERR_INVALID,
                 "--set rate=inf: invalid value for 'rate': expected a finite number, got 'inf'");
    expect_error("flag=maybe", DD_ERR_INVALID,
                 "--set flag=maybe: invalid value for 'flag': expected true or false, got 'maybe'");
    expect_error("count=[1, 2]", DD_ERR_INVALID,
                 "--set count=[1, 2]: invalid value for 'count': expected an integer, got a list");
    expect_error(
        "count={a: 1}", DD_ERR_INVALID,
        "--set count={a: 1}: invalid value for 'count': expected an integer, got a mapping");
    expect_error(
        "count=", DD_ERR_INVALID,
        "--set count=: invalid value for 'count': expected an integer, got an empty value");
    expect_error(
        "big=9223372036854775808", DD_ERR_INVALID,
        "--set big=9223372036854775808: invalid value for 'big': 9223372036854775808 does not "
        "fit in 64 bits");
    expect_error("items={a: b}", DD_ERR_INVALID,
                 "--set items={a: b}: invalid value for 'items': expected a list, got a mapping");
    expect_error("items=[a, [b]]", DD_ERR_INVALID,
                 "--set items=[a, [b]]: invalid value for 'items': list items must be non-empty "
                 "scalars, got a list");
}

static void test_range_and_choice_errors(void **state) {
    expect_error(
        "count=0", DD_ERR_INVALID,
        "--set count=0: invalid value for 'count': 0 is out of range (must be in [1, 16])");
    expect_error(
        "count=17", DD_ERR_INVALID,
        "--set count=17: invalid value for 'count': 17 is out of range (must be in [1, 16])");
    expect_error("rate=0", DD_ERR_INVALID,
                 "--set rate=0: invalid value for 'rate': 0 is out of range (must be in (0, 1])");
    expect_error("opt.lr=-1", DD_ERR_INVALID,
                 "--set opt.lr=-1: invalid value for 'opt.lr': -1 is out of range (must be > 0)");
    expect_error(
        "mode=quick", DD_ERR_INVALID,
        "--set mode=quick: invalid value for 'mode': 'quick' is not one of: fast, slow, exact");
    expect_error(
        "kinds=[red, pink]", DD_ERR_INVALID,
        "--set kinds=[red, pink]: invalid value for 'kinds': list item 'pink' is not one of: "
        "red, green, blue");
}

static void test_key_errors(void **state) {
    expect_error("cuont=3", DD_ERR_INVALID,
                 "--set cuont=3: unknown key 'cuont' (valid keys: count, rate, flag, mode, label, "
                 "items, kinds, dir, opt, big)");
    expect_error("opt.momentum=3", DD_ERR_INVALID,
                 "--set opt.momentum=3: unknown key 'momentum' in 'opt' (valid keys: lr, beta)");
    expect_error(
        "opt=3", DD_ERR_INVALID,
        "--set opt=3: invalid value for 'opt': expected a mapping (keys: lr, beta), got a scalar");
    expect_error("noequals", DD_ERR_USAGE, "--set noequals: expected KEY=VALUE");
    expect_error(
        "count=[1", DD_ERR_PARSE,
        "--set count=[1: YAML syntax error in the value: did not find expected ',' or ']'");
}

static void test_required(void **state) {
    dd_options *o = NULL;
    assert_int_equal(dd_options_from_strings(required_spec, NULL, &o), DD_ERR_INVALID);
    assert_string_equal(dd_error_message(), "options: missing required key 'name'");
    const char *kv[] = {"name=x", NULL};
    assert_int_equal(dd_options_from_strings(required_spec, kv, &o), DD_OK);
    assert_string_equal(dd_options_string(o, "name"), "x");
    dd_options_destroy(o);
}

static void test_paths(void **state) {
    const dd_param_spec *specs[] = {spec};
    dd_options *o = NULL;
    assert_int_equal(dd_options_create("sec", specs, 1, &o), DD_OK);
    assert_int_equal(dd_options_set_yaml_text(o, "dir", "data/x", "--set", NULL, "/base"), DD_OK);
    assert_string_equal(dd_options_string(o, "dir"), "/base/data/x");
    assert_int_equal(dd_options_set_yaml_text(o, "dir", "./y", "--set", NULL, "/base"), DD_OK);
    assert_string_equal(dd_options_string(o, "dir"), "/base/y");
    assert_int_equal(dd_options_set_yaml_text(o, "dir", "/abs", "--set", NULL, "/base"), DD_OK);
    assert_string_equal(dd_options_string(o, "dir"), "/abs");
    setenv("HOME", "/home/tester", 1);
    assert_int_equal(dd_options_set_yaml_text(o, "dir", "~/d", "--set", NULL, "/base"), DD_OK);
    assert_string_equal(dd_options_string(o, "dir"), "/home/tester/d");
    // errors name the section: 'sec.count'
    assert_int_equal(
        dd_options_set_yaml_text(o, "count", "99", "--set", "--set sec.count=99", NULL),
        DD_ERR_INVALID);
    assert_string_equal(dd_error_message(),
                        "--set sec.count=99: invalid value for 'sec.count': 99 is "
                        "out of range (must be in [1, 16])");
    assert_int_equal(dd_options_finalize(o, "here"), DD_OK);
    dd_options_destroy(o);
}

static void test_set_default_does_not_override_user(void **state) {
    const dd_param_spec *specs[] = {spec};
    dd_options *o = NULL;
    assert_int_equal(dd_options_create(NULL, specs, 1, &o), DD_OK);
    assert_int_equal(dd_options_set_yaml_text(o, "label", "mine", "--set", NULL, NULL), DD_OK);
    assert_int_equal(dd_options_set_default(o, "label", "computed"), DD_OK);
    assert_int_equal(dd_options_set_default(o, "mode", "slow"), DD_OK);
    assert_int_equal(dd_options_set_default(o, "mode", "bogus"), DD_ERR_INVALID);
    assert_int_equal(dd_options_finalize(o, NULL), DD_OK);
    assert_string_equal(dd_options_string(o, "label"), "mine");
    assert_string_equal(dd_options_string(o, "mode"), "slow");
    assert_false(dd_options_is_set(o, "mode"));
    dd_options_destroy(o);
}

static void test_format(void **state) {
    const char *kv[] = {"label=true", "items=[a b, 'c,d', plain]", "rate=0.25", NULL};
    dd_options *o = make(kv);
    const char *expect[][2] = {{"count", "3"},        {"rate", "0.25"},
                               {"flag", "false"},     {"mode", "fast"},
                               {"label", "\"true\""}, {"items", "[a b, \"c,d\", plain]"},
                               {"kinds", "[]"},       {"dir", "null"}};
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++) {
        int idx = dd_options_index(o, expect[i][0]);
        assert_true(idx >= 0);
        char *f = dd_options_format(o, (size_t)idx);
        assert_non_null(f);
        assert_string_equal(f, expect[i][1]);
        free(f);
    }
    dd_options_destroy(o);
}

/* DD_PARAM_ITEMS: words and one-key mappings, the accessors, the default,
 * positions of items and keys, formatting that reads back, and errors. */
static const dd_param_spec items_spec[] = {
    {"layers", DD_PARAM_ITEMS, "[relu, {pool: 2}]", 0, 0, 0, "conv|relu|pool", "a layer list"},
    {"any", DD_PARAM_ITEMS, "", 0, 0, 0, NULL, "items of any kind"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static void test_items(void **state) {
    assert_int_equal(dd_param_spec_check(items_spec, "test"), DD_OK);
    dd_options *o = NULL;
    assert_int_equal(dd_options_from_strings(items_spec, NULL, &o), DD_OK);
    assert_int_equal(dd_options_items_len(o, "layers"), 2);
    assert_string_equal(dd_options_item_kind(o, "layers", 0), "relu");
    assert_null(dd_options_item_value(o, "layers", 0));
    assert_string_equal(dd_options_item_kind(o, "layers", 1), "pool");
    assert_string_equal(dd_options_item_value(o, "layers", 1), "2");
    assert_int_equal(dd_options_items_len(o, "any"), 0);
    assert_true(dd_options_has(o, "any"));
    assert_null(dd_options_item_kind(o, "layers", 2));
    dd_options_destroy(o);

    const char *text = "layers:\n  - {conv: {out: 4, kernel: 3}}\n  - relu\n  - pool: 2\n";
    dd_ynode *root = NULL;
    assert_int_equal(dd_yaml_load_string(text, strlen(text), "t.yaml", &root), DD_OK);
    const dd_param_spec *specs[] = {items_spec};
    assert_int_equal(dd_options_create("model", specs, 1, &o), DD_OK);
    const dd_yentry *e = &root->entries[0];
    assert_int_equal(dd_options_set_node(o, e->key, e->value, "t.yaml", e->line, e->col, NULL),
                     DD_OK);
    assert_int_equal(dd_options_finalize(o, "t.yaml"), DD_OK);
    assert_int_equal(dd_options_items_len(o, "layers"), 3);
    assert_string_equal(dd_options_item_where(o, "layers", 0), "t.yaml:2:5");
    assert_int_equal(dd_options_item_n_args(o, "layers", 0), 2);
    assert_string_equal(dd_options_item_arg_key(o, "layers", 0, 1), "kernel");
    assert_string_equal(dd_options_item_arg_value(o, "layers", 0, 1), "3");
    assert_string_equal(dd_options_item_arg_where(o, "layers", 0, 1), "t.yaml:2:21");
    assert_string_equal(dd_options_item_where(o, "layers", 1), "t.yaml:3:5");
    assert_string_equal(dd_options_item_value_where(o, "layers", 2), "t.yaml:4:11");
    char *f = dd_options_format(o, (size_t)dd_options_index(o, "layers"));
    assert_string_equal(f, "[{conv: {out: 4, kernel: 3}}, relu, {pool: 2}]");
    // the formatted value reads back as the same value
    char kv[256];
    snprintf(kv, sizeof kv, "layers=%s", f);
    free(f);
    dd_options *o2 = NULL;
    const char *kvs[] = {kv, NULL};
    assert_int_equal(dd_options_from_strings(items_spec, kvs, &o2), DD_OK);
    f = dd_options_format(o2, 0);
    assert_string_equal(f, kv + strlen("layers="));
    free(f);
    dd_options_destroy(o2);
    dd_options_destroy(o);
    dd_ynode_destroy(root);

    static const char *const bad[][2] = {
        {"layers=[conv, sigmoid]",
         "--set layers=[conv, sigmoid]: invalid value for 'layers': item 1: unknown kind "
         "'sigmoid' (expected one of: conv, relu, pool)"},
        {"layers={relu: 1}", "--set layers={relu: 1}: invalid value for 'layers': expected a list, "
                             "got a mapping"},
        {"layers=[{}]", "--set layers=[{}]: invalid value for 'layers': item 0: expected a word or "
                        "a one-key mapping ({kind: value}), got a mapping with no key"},
        {"layers=[{conv: {out: [1]}}]",
         "--set layers=[{conv: {out: [1]}}]: invalid value for 'layers': item 0 (conv): 'out' "
         "must be a scalar, got a list"},
        {"layers=[relu, ~]", "--set layers=[relu, ~]: invalid value for 'layers': item 1: "
                             "expected a word or a one-key mapping ({kind: value}), got an "
                             "empty value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *l[] = {bad[i][0], NULL};
        dd_options *x = (dd_options *)0x1;
        assert_int_equal(dd_options_from_strings(items_spec, l, &x), DD_ERR_INVALID);
        assert_null(x);
        assert_string_equal(dd_error_message(), bad[i][1]);
    }
    // a bad default is a plugin error
    static const dd_param_spec bad_default[] = {
        {"layers", DD_PARAM_ITEMS, "[nope]", 0, 0, 0, "relu", "a layer list"},
        {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
    };
    assert_int_equal(dd_param_spec_check(bad_default, "test"), DD_ERR_PLUGIN);
}

static void test_spec_check(void **state) {
    assert_int_equal(dd_param_spec_check(spec, "test"), DD_OK);
    const char *sections[] = {"distill", "evaluate", "pretrain", "report"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(dd_param_spec_check(dd_section_spec(sections[i]), sections[i]), DD_OK);
    for (int k = DD_COMPONENT_DATASET; k <= DD_COMPONENT_OBJECTIVE; k++)
        assert_int_equal(dd_param_spec_check(dd_section_core_spec((dd_component_kind)k), "core"),
                         DD_OK);
    assert_int_equal(dd_param_spec_check(dd_pipeline_top_spec(), "top"), DD_OK);

    const dd_param_spec nodoc[] = {{"a", DD_PARAM_INT, "1", 0, 0, 0, NULL, ""}, {0}};
    assert_int_equal(dd_param_spec_check(nodoc, "t"), DD_ERR_PLUGIN);
    assert_string_equal(dd_error_message(), "t: parameter 'a' has no documentation");
    const dd_param_spec dup[] = {{"a", DD_PARAM_INT, "1", 0, 0, 0, NULL, "d"},
                                 {"a", DD_PARAM_INT, "1", 0, 0, 0, NULL, "d"},
                                 {0}};
    assert_int_equal(dd_param_spec_check(dup, "t"), DD_ERR_PLUGIN);
    assert_string_equal(dd_error_message(), "t: parameter 'a' declared twice");
    const dd_param_spec group[] = {{"a", DD_PARAM_INT, "1", 0, 0, 0, NULL, "d"},
                                   {"a.b", DD_PARAM_INT, "1", 0, 0, 0, NULL, "d"},
                                   {0}};
    assert_int_equal(dd_param_spec_check(group, "t"), DD_ERR_PLUGIN);
    assert_string_equal(dd_error_message(), "t: parameter 'a' is both a key and a group ('a.b')");
    const dd_param_spec badenum[] = {{"e", DD_PARAM_ENUM, "x", 0, 0, 0, NULL, "d"}, {0}};
    assert_int_equal(dd_param_spec_check(badenum, "t"), DD_ERR_PLUGIN);
    assert_string_equal(dd_error_message(), "t: enum parameter 'e' has no choices");
    const dd_param_spec baddef[] = {{"e", DD_PARAM_ENUM, "z", 0, 0, 0, "x|y", "d"}, {0}};
    assert_int_equal(dd_param_spec_check(baddef, "t"), DD_ERR_PLUGIN);
    assert_string_equal(dd_error_message(),
                        "t: default of parameter 'e' does not validate: <default>: "
                        "invalid value for 'e': 'z' is not one of: x, y");
    const dd_param_spec reqdef[] = {{"r", DD_PARAM_INT, "1", DD_PARAM_REQUIRED, 0, 0, NULL, "d"},
                                    {0}};
    assert_int_equal(dd_param_spec_check(reqdef, "t"), DD_ERR_PLUGIN);
    assert_string_equal(dd_error_message(), "t: required parameter 'r' has a default");
    const dd_param_spec badname[] = {{"a b", DD_PARAM_INT, "1", 0, 0, 0, NULL, "d"}, {0}};
    assert_int_equal(dd_param_spec_check(badname, "t"), DD_ERR_PLUGIN);
    assert_string_equal(dd_error_message(), "t: parameter name 'a b' has character ' '");
    const dd_param_spec badtype[] = {{"a", (dd_param_type)42, "1", 0, 0, 0, NULL, "d"}, {0}};
    assert_int_equal(dd_param_spec_check(badtype, "t"), DD_ERR_PLUGIN);
    assert_string_equal(dd_error_message(), "t: parameter 'a' has unknown type 42");
}

static void test_create_rejects_duplicate_keys_across_specs(void **state) {
    const dd_param_spec a[] = {{"k", DD_PARAM_INT, "1", 0, 0, 0, NULL, "d"}, {0}};
    const dd_param_spec *specs[] = {a, a};
    dd_options *o = (dd_options *)0x1;
    assert_int_equal(dd_options_create("sec", specs, 2, &o), DD_ERR_INVALID);
    assert_null(o);
    assert_string_equal(dd_error_message(), "key 'k' in sec defined twice");
}

static void test_destroy_null(void **state) {
    dd_options_destroy(NULL);
    assert_int_equal(dd_options_count(NULL), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_scalar_as_list_and_last_wins),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_range_and_choice_errors),
        cmocka_unit_test(test_key_errors),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_set_default_does_not_override_user),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_spec_check),
        cmocka_unit_test(test_create_rejects_duplicate_keys_across_specs),
        cmocka_unit_test(test_destroy_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
