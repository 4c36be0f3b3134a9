/* Conformance test over every built plugin (the build tree's plugin dir via
 * DISTILL_PLUGIN_PATH): descriptor, names (= file basename), documented
 * parameters whose defaults validate, and per kind: required vtable members,
 * models build and run with default options on a small valid input,
 * objectives create/compute/destroy with defaults, destroy(NULL) is safe. */
#include <math.h>
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

static dd_registry *reg;

static int setup(void **state) {
    // strict: any broken plugin in the build fails the whole test, with its reason
    if (dd_registry_load(0, &reg) != DD_OK) {
        fprintf(stderr, "loading plugins: %s\n", dd_error_message());
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    dd_registry_destroy(reg);
    return 0;
}

// Options for a component as the pipeline builds them: core keys + plugin keys, defaults.
static dd_options *default_options(const dd_component *c) {
    const dd_param_spec *specs[2] = {dd_section_core_spec(c->kind), c->params};
    dd_options *o = NULL;
    if (dd_options_create(dd_section_name(c->kind), specs, 2, &o) != DD_OK ||
        dd_options_set_default(o, "plugin", c->name) != DD_OK ||
        dd_options_finalize(o, "defaults") != DD_OK)
        fail_msg("%s '%s': default options: %s", dd_component_kind_str(c->kind), c->name,
                 dd_error_message());
    return o;
}

static int has_required_param(const dd_component *c) {
    for (const dd_param_spec *p = c->params; p && p->name; p++)
        if (p->flags & DD_PARAM_REQUIRED) return 1;
    return 0;
}

static void test_plugins_exist_and_descriptors(void **state) {
    size_t n = dd_registry_plugin_count(reg);
    print_message("%zu plugins\n", n);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) {
        const dd_plugin_descriptor *d = dd_registry_plugin(reg, i);
        const char *path = dd_registry_plugin_path(reg, i);
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        char expect[256];
        snprintf(expect, sizeof expect, "%s.so", d->name);
        if (strcmp(base, expect) != 0)
            fail_msg("%s: descriptor name '%s' != file name", path, d->name);
        assert_int_equal(d->abi_version, DD_PLUGIN_ABI_VERSION);
        assert_true(d->struct_size >= offsetof(dd_plugin_descriptor, reserved));
        assert_true(d->version && *d->version);
        assert_true(d->description && *d->description);
        assert_true(d->n_components >= 1);
        for (size_t c = 0; c < d->n_components; c++) {
            const dd_component *comp = &d->components[c];
            assert_true(comp->name && *comp->name);
            if (!comp->description || !*comp->description)
                fail_msg("%s: component '%s' has no description", path, comp->name);
            assert_non_null(comp->ops);
            const dd_component *found = NULL;
            assert_int_equal(dd_registry_find(reg, comp->kind, comp->name, &found), DD_OK);
            assert_ptr_equal(found, comp);
        }
    }
}

static void test_parameters_documented(void **state) {
    for (size_t i = 0; i < dd_registry_plugin_count(reg); i++) {
        const dd_plugin_descriptor *d = dd_registry_plugin(reg, i);
        for (size_t c = 0; c < d->n_components; c++) {
            const dd_component *comp = &d->components[c];
            for (const dd_param_spec *p = comp->params; p && p->name; p++) {
                if (!p->doc || !*p->doc)
                    fail_msg("%s: parameter '%s' has no doc", comp->name, p->name);
                if (!(p->flags & DD_PARAM_REQUIRED) && !p->default_value &&
                    p->type != DD_PARAM_STRING && p->type != DD_PARAM_LIST)
                    fail_msg("%s: optional parameter '%s' has no default", comp->name, p->name);
            }
            // names, types, choices, ranges, and every default against its own spec
            if (dd_param_spec_check(comp->params, comp->name) != DD_OK)
                fail_msg("%s", dd_error_message());
            if (has_required_param(comp)) continue;
            dd_options *o = default_options(comp);
            dd_options_destroy(o);
        }
    }
}

static void check_dataset(const dd_component *c) {
    const dd_dataset_ops *ops = c->ops;
    assert_true(ops->struct_size >= offsetof(dd_dataset_ops, reserved));
    assert_non_null(ops->load);
    assert_non_null(ops->datasets);
    assert_non_null(ops->datasets[0]);
    for (size_t i = 0; ops->datasets[i]; i++)
        assert_true(*ops->datasets[i]);
}

static void check_model(const dd_component *c) {
    const dd_model_ops *ops = c->ops;
    assert_true(ops->struct_size >= offsetof(dd_model_ops, reserved));
    assert_non_null(ops->build);
    if (has_required_param(c)) return;
    dd_options *o = default_options(c);
    // the smallest of these input shapes the model accepts
    static const int shapes[][3] = {
        {1, 28, 28}, {3, 32, 32}, {3, 64, 64}, {3, 128, 128}, {3, 224, 224}};
    dd_model *m = NULL;
    char errors[4096] = "";
    int shape = -1;
    for (int s = 0; s < 5 && !m; s++) {
        dd_model_config cfg = {.struct_size = sizeof cfg,
                               .plugin = c,
                               .options = o,
                               .channels = shapes[s][0],
                               .height = shapes[s][1],
                               .width = shapes[s][2],
                               .n_outputs = 10,
                               .backend = DD_BACKEND_ONEDNN};
        if (dd_model_create(&cfg, &m) == DD_OK) {
            shape = s;
        } else {
            size_t len = strlen(errors);
            snprintf(errors + len, sizeof errors - len, "\n  %dx%dx%d: %s", shapes[s][0],
                     shapes[s][1], shapes[s][2], dd_error_message());
            m = NULL;
        }
    }
    if (!m) fail_msg("model '%s' builds on none of the test shapes:%s", c->name, errors);
    print_message("model %-14s builds on %dx%dx%d: %zu parameters\n", c->name, shapes[shape][0],
                  shapes[shape][1], shapes[shape][2], dd_model_param_count(m));
    assert_int_equal(dd_model_output_dim(m), 10);
    assert_true(dd_model_param_count(m) > 0);
    size_t in = dd_model_input_size(m);
    assert_int_equal(in, (size_t)shapes[shape][0] * shapes[shape][1] * shapes[shape][2]);
    float *theta = dd_alloc_floats(dd_model_param_count(m));
    float *x = dd_alloc_floats(2 * in);
    float logits[20];
    assert_non_null(theta);
    assert_non_null(x);
    for (size_t i = 0; i < 2 * in; i++)
        x[i] = (float)((i * 37 % 101) / 50.0 - 1.0);
    const char *init = ops->default_init ? ops->default_init : "xavier";
    assert_int_equal(dd_model_init_params(m, theta, init, 1.0f, 1), DD_OK);
    if (dd_model_forward(m, theta, x, 2, logits) != DD_OK)
        fail_msg("%s: forward: %s", c->name, dd_error_message());
    for (int i = 0; i < 20; i++)
        assert_true(isfinite(logits[i]));
    dd_free(theta);
    dd_free(x);
    dd_model_destroy(m);
    dd_model_destroy(NULL);
    dd_options_destroy(o);
}

static void check_objective(const dd_component *c) {
    const dd_objective_ops *ops = c->ops;
    assert_true(ops->struct_size >= offsetof(dd_objective_ops, reserved));
    assert_non_null(ops->create);
    assert_non_null(ops->outer_loss);
    assert_non_null(ops->metrics);
    assert_non_null(ops->metric_names);
    assert_non_null(ops->metric_names[0]);
    if (ops->destroy) ops->destroy(NULL); // must be a no-op
    if (has_required_param(c)) return;
    dd_options *o = default_options(c);
    const char *names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    dd_objective_info info = {.struct_size = sizeof info, .n_classes = 10, .class_names = names};
    void *st = NULL;
    if (ops->create(o, &info, &st) != DD_OK)
        fail_msg("%s: create: %s", c->name, dd_error_message());
    float logits[30], dlogits[30];
    int32_t labels[3] = {0, 4, 9};
    for (int i = 0; i < 30; i++)
        logits[i] = (float)((i * 7 % 11) - 5) * 0.3f;
    double loss = NAN;
    if (ops->outer_loss(st, logits, labels, 3, 10, &loss, dlogits) != DD_OK)
        fail_msg("%s: outer_loss: %s", c->name, dd_error_message());
    assert_true(isfinite(loss));
    for (int i = 0; i < 30; i++)
        assert_true(isfinite(dlogits[i]));
    size_t n_metrics = 0;
    while (ops->metric_names[n_metrics])
        n_metrics++;
    double num[16] = {0}, den[16] = {0};
    assert_true(n_metrics <= 16);
    assert_int_equal(ops->metrics(st, logits, labels, 3, 10, num, den), DD_OK);
    for (size_t i = 0; i < n_metrics; i++)
        assert_true(isfinite(num[i]) && den[i] > 0);
    if (ops->destroy) ops->destroy(st);
    dd_options_destroy(o);
}

static void test_kinds(void **state) {
    size_t counts[4] = {0};
    for (size_t i = 0; i < dd_registry_plugin_count(reg); i++) {
        const dd_plugin_descriptor *d = dd_registry_plugin(reg, i);
        for (size_t c = 0; c < d->n_components; c++) {
            const dd_component *comp = &d->components[c];
            counts[comp->kind]++;
            switch (comp->kind) {
            case DD_COMPONENT_DATASET:
                check_dataset(comp);
                break;
            case DD_COMPONENT_MODEL:
                check_model(comp);
                break;
            case DD_COMPONENT_OBJECTIVE:
                check_objective(comp);
                break;
            }
        }
    }
    print_message("components: %zu datasets, %zu models, %zu objectives\n", counts[1], counts[2],
                  counts[3]);
    dd_dataset_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plugins_exist_and_descriptors),
        cmocka_unit_test(test_parameters_documented),
        cmocka_unit_test(test_kinds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
