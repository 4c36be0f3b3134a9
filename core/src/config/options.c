/* distill — validated options: values typed and range-checked against a
 * parameter spec, each remembering where it was written. */
#define _GNU_SOURCE
#include "config/options.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/options_impl.h"
#include "distill/log.h"

char *dd_opt_strdup(const char *s) {
    return s ? strdup(s) : NULL;
}

void dd_opt_value_free(value *v) {
    free(v->text);
    for (size_t i = 0; i < v->n_items; i++)
        free(v->items[i]);
    free(v->items);
    for (size_t i = 0; i < v->n_its; i++) {
        opt_item *it = &v->its[i];
        free(it->kind), free(it->where), free(it->value), free(it->value_where);
        for (size_t j = 0; j < it->n_args; j++)
            free(it->args[j].key), free(it->args[j].value), free(it->args[j].where);
        free(it->args);
    }
    free(v->its);
    memset(v, 0, sizeof *v);
}

void dd_options_destroy(dd_options *o) {
    if (!o) return;
    for (size_t i = 0; i < o->n; i++) {
        dd_opt_value_free(&o->e[i].v);
        free(o->e[i].where);
    }
    free(o->e);
    free(o->context);
    free(o);
}

dd_status dd_options_create(const char *context, const dd_param_spec *const *specs, size_t n_specs,
                            dd_options **out) {
    if (!out) return dd_error_set(DD_ERR_INVALID, "dd_options_create: NULL argument");
    *out = NULL;
    size_t total = 0;
    for (size_t s = 0; s < n_specs; s++)
        for (const dd_param_spec *p = specs[s]; p && p->name; p++)
            total++;
    dd_options *o = calloc(1, sizeof *o);
    if (!o) return dd_nomem();
    o->e = calloc(total ? total : 1, sizeof *o->e);
    if (!o->e || (context && !(o->context = strdup(context)))) {
        dd_options_destroy(o);
        return dd_nomem();
    }
    for (size_t s = 0; s < n_specs; s++) {
        for (const dd_param_spec *p = specs[s]; p && p->name; p++) {
            if (dd_options_index(o, p->name) >= 0) {
                dd_status st = dd_error_set(DD_ERR_INVALID, "key '%s'%s%s defined twice", p->name,
                                            context ? " in " : "", context ? context : "");
                dd_options_destroy(o);
                return st;
            }
            o->e[o->n++].spec = p;
        }
    }
    *out = o;
    return DD_OK;
}

int dd_options_index(const dd_options *o, const char *key) {
    if (!o || !key) return -1;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->e[i].spec->name, key) == 0) return (int)i;
    return -1;
}

int dd_options_has_group(const dd_options *o, const char *prefix) {
    size_t len = strlen(prefix);
    for (size_t i = 0; i < o->n; i++) {
        const char *k = o->e[i].spec->name;
        if (strncmp(k, prefix, len) == 0 && k[len] == '.') return 1;
    }
    return 0;
}

static void qualified(const dd_options *o, const char *key, char *buf, size_t n) {
    if (o->context && *o->context)
        snprintf(buf, n, "%s.%s", o->context, key);
    else
        snprintf(buf, n, "%s", key);
}

// Error prefix for an origin: "file:line:col" or the label.
static void where_str(const origin *org, int line, int col, char *buf, size_t n) {
    if (org->file)
        snprintf(buf, n, "%s:%d:%d", org->file, line, col);
    else
        snprintf(buf, n, "%s", org->label ? org->label : "<input>");
}

dd_status dd_options_unknown_key(const dd_options *o, const char *key, const char *prefix) {
    const char *dot = strrchr(key, '.');
    char group[256] = "";
    if (dot) snprintf(group, sizeof group, "%.*s", (int)(dot - key), key);
    // the deepest existing group holding the key decides which keys to list
    while (dot && !dd_options_has_group(o, group)) {
        char *d = strrchr(group, '.');
        if (d)
            *d = '\0';
        else
            group[0] = '\0';
        dot = group[0] ? dot : NULL;
    }
    const char *leaf = group[0] ? key + strlen(group) + 1 : key;
    char ctx[300];
    if (group[0])
        qualified(o, group, ctx, sizeof ctx);
    else
        snprintf(ctx, sizeof ctx, "%s", o->context ? o->context : "");
    char *valid = dd_options_valid_keys(o, group[0] ? group : NULL);
    dd_status s;
    if (ctx[0])
        s = dd_error_set(DD_ERR_INVALID, "%s: unknown key '%s' in '%s' (valid keys: %s)", prefix,
                         leaf, ctx, valid && *valid ? valid : "none");
    else
        s = dd_error_set(DD_ERR_INVALID, "%s: unknown key '%s' (valid keys: %s)", prefix, leaf,
                         valid && *valid ? valid : "none");
    free(valid);
    return s;
}

static dd_status store(dd_options *o, int idx, value *v, int state, const char *where) {
    char *w = dd_opt_strdup(where);
    if (where && !w) {
        dd_opt_value_free(v);
        return dd_nomem();
    }
    entry *e = &o->e[idx];
    dd_opt_value_free(&e->v);
    free(e->where);
    e->v = *v;
    e->where = w;
    e->state = state;
    memset(v, 0, sizeof *v);
    return DD_OK;
}

/* ---- DD_PARAM_ITEMS ------------------------------------------------------ */

static char *where_dup(const origin *org, int line, int col) {
    char w[1200];
    where_str(org, line, col, w, sizeof w);
    return strdup(w);
}

static int nonempty_scalar(const dd_ynode *n) {
    return n->kind == DD_YNODE_SCALAR && !dd_ynode_is_null(n);
}

// Parses one item node (a word or a one-key mapping) into it.
static dd_status parse_item(const dd_param_spec *p, const char *qkey, const dd_ynode *n,
                            size_t index, const origin *org, opt_item *it) {
    char at[1200];
    where_str(org, n->line, n->col, at, sizeof at);
    const char *kind = NULL;
    const dd_ynode *arg = NULL;
    if (nonempty_scalar(n)) {
        kind = n->scalar;
    } else if (n->kind == DD_YNODE_MAPPING && n->n == 1) {
        kind = n->entries[0].key;
        arg = n->entries[0].value;
    } else {
        return dd_opt_bad_value(
            at, qkey, "item %zu: expected a word or a one-key mapping ({kind: value}), got %s%s",
            index,
            n->kind == DD_YNODE_MAPPING  ? "a mapping with "
            : n->kind == DD_YNODE_SCALAR ? "an empty value"
                                         : dd_ynode_kind_str(n),
            n->kind == DD_YNODE_MAPPING ? (n->n ? "several keys" : "no key") : "");
    }
    if (p->choices && !dd_param_in_choices(p->choices, kind)) {
        char *c = dd_param_choices_list(p->choices);
        dd_status s =
            dd_opt_bad_value(at, qkey, "item %zu: unknown kind '%s' (expected one of: %s)", index,
                             kind, c ? c : p->choices);
        free(c);
        return s;
    }
    if (!(it->kind = strdup(kind)) || !(it->where = strdup(at))) return dd_nomem();
    if (!arg) return DD_OK;
    char aat[1200];
    where_str(org, arg->line, arg->col, aat, sizeof aat);
    if (nonempty_scalar(arg)) {
        if (!(it->value = strdup(arg->scalar)) || !(it->value_where = strdup(aat)))
            return dd_nomem();
        return DD_OK;
    }
    if (arg->kind != DD_YNODE_MAPPING)
        return dd_opt_bad_value(
            aat, qkey, "item %zu (%s): expected a value or a mapping, got %s", index, kind,
            arg->kind == DD_YNODE_SCALAR ? "an empty value" : dd_ynode_kind_str(arg));
    if (!(it->args = calloc(arg->n ? arg->n : 1, sizeof *it->args))) return dd_nomem();
    for (size_t j = 0; j < arg->n; j++) {
        const dd_yentry *en = &arg->entries[j];
        if (!nonempty_scalar(en->value)) {
            where_str(org, en->value->line, en->value->col, aat, sizeof aat);
            return dd_opt_bad_value(
                aat, qkey, "item %zu (%s): '%s' must be a scalar, got %s", index, kind, en->key,
                en->value->kind == DD_YNODE_SCALAR ? "an empty value"
                                                   : dd_ynode_kind_str(en->value));
        }
        opt_arg *a = &it->args[it->n_args++];
        if (!(a->key = strdup(en->key)) || !(a->value = strdup(en->value->scalar)) ||
            !(a->where = where_dup(org, en->line, en->col)))
            return dd_nomem();
    }
    return DD_OK;
}

// A scalar (one word; null: no items) or a sequence of items into v.
static dd_status parse_items(const dd_param_spec *p, const char *qkey, const dd_ynode *node,
                             const origin *org, value *v) {
    memset(v, 0, sizeof *v);
    if (node->kind == DD_YNODE_MAPPING) {
        char at[1200];
        where_str(org, node->line, node->col, at, sizeof at);
        return dd_opt_bad_value(at, qkey, "expected a list, got a mapping");
    }
    size_t n = node->kind == DD_YNODE_SEQUENCE ? node->n : dd_ynode_is_null(node) ? 0 : 1;
    if (!(v->its = calloc(n ? n : 1, sizeof *v->its))) return dd_nomem();
    for (size_t i = 0; i < n; i++) {
        const dd_ynode *it = node->kind == DD_YNODE_SEQUENCE ? node->items[i] : node;
        v->n_its++;
        dd_status s = parse_item(p, qkey, it, i, org, &v->its[i]);
        if (s != DD_OK) {
            dd_opt_value_free(v);
            return s;
        }
    }
    return DD_OK;
}

dd_status dd_opt_parse_items_text(const dd_param_spec *p, const char *qkey, const char *text,
                                  const char *at, value *v) {
    memset(v, 0, sizeof *v);
    dd_ynode *node = NULL;
    DD_TRY(dd_yaml_load_string(text, strlen(text), at, &node));
    dd_ynode empty = {.kind = DD_YNODE_SCALAR, .scalar = "", .plain = 1, .line = 1, .col = 1};
    origin org = {NULL, 0, 0, at};
    dd_status s = parse_items(p, qkey, node ? node : &empty, &org, v);
    dd_ynode_destroy(node);
    return s;
}

// Parses a node (scalar or list) for entry idx into v.
static dd_status parse_node(const dd_options *o, int idx, const dd_ynode *node, const origin *org,
                            const char *base_dir, value *v) {
    const dd_param_spec *p = o->e[idx].spec;
    char qkey[300], at[1200];
    qualified(o, p->name, qkey, sizeof qkey);
    where_str(org, node->line, node->col, at, sizeof at);
    memset(v, 0, sizeof *v);
    if (p->type == DD_PARAM_ITEMS) return parse_items(p, qkey, node, org, v);
    if (node->kind == DD_YNODE_SCALAR)
        return dd_opt_parse_scalar(p, qkey, node->scalar, dd_ynode_is_null(node), at, base_dir, v);
    if (node->kind == DD_YNODE_SEQUENCE && p->type == DD_PARAM_LIST) {
        for (size_t i = 0; i < node->n; i++) {
            const dd_ynode *it = node->items[i];
            where_str(org, it->line, it->col, at, sizeof at);
            if (it->kind != DD_YNODE_SCALAR || dd_ynode_is_null(it)) {
                dd_opt_value_free(v);
                return dd_opt_bad_value(at, qkey, "list items must be non-empty scalars, got %s",
                                        it->kind == DD_YNODE_SCALAR ? "an empty value"
                                                                    : dd_ynode_kind_str(it));
            }
            value one;
            dd_status s = dd_opt_parse_scalar(p, qkey, it->scalar, 0, at, base_dir, &one);
            if (s == DD_OK) s = dd_opt_list_append(v, &one);
            dd_opt_value_free(&one);
            if (s != DD_OK) {
                dd_opt_value_free(v);
                return s;
            }
        }
        if (!v->items && !(v->items = calloc(1, sizeof *v->items))) return dd_nomem();
        return DD_OK;
    }
    static const char *const what[] = {"",         "a boolean",          "an integer", "a number",
                                       "a string", "one of the choices", "a list"};
    const char *expected =
        p->type >= DD_PARAM_BOOL && p->type <= DD_PARAM_LIST ? what[p->type] : "a value";
    if (p->type == DD_PARAM_STRING && (p->flags & DD_PARAM_PATH)) expected = "a path";
    if (p->type == DD_PARAM_LIST && node->kind == DD_YNODE_MAPPING)
        return dd_opt_bad_value(at, qkey, "expected a list, got a mapping");
    return dd_opt_bad_value(at, qkey, "expected %s, got %s", expected, dd_ynode_kind_str(node));
}

static dd_status set_node_at(dd_options *o, const char *key, const dd_ynode *value_node,
                             const origin *org, int key_line, int key_col, const char *base_dir,
                             const char *where_store) {
    int idx = dd_options_index(o, key);
    if (idx < 0) {
        if (value_node->kind == DD_YNODE_MAPPING && dd_options_has_group(o, key)) {
            for (size_t i = 0; i < value_node->n; i++) {
                const dd_yentry *en = &value_node->entries[i];
                char sub[512];
                if ((size_t)snprintf(sub, sizeof sub, "%s.%s", key, en->key) >= sizeof sub) {
                    char at[1200];
                    where_str(org, en->line, en->col, at, sizeof at);
                    return dd_error_set(DD_ERR_INVALID, "%s: key too long", at);
                }
                DD_TRY(
                    set_node_at(o, sub, en->value, org, en->line, en->col, base_dir, where_store));
            }
            return DD_OK;
        }
        char at[1200];
        where_str(org, key_line, key_col, at, sizeof at);
        if (dd_options_has_group(o, key)) {
            char qkey[300];
            qualified(o, key, qkey, sizeof qkey);
            where_str(org, value_node->line, value_node->col, at, sizeof at);
            char *valid = dd_options_valid_keys(o, key);
            dd_status s = dd_opt_bad_value(at, qkey, "expected a mapping (keys: %s), got %s",
                                           valid ? valid : "?", dd_ynode_kind_str(value_node));
            free(valid);
            return s;
        }
        return dd_options_unknown_key(o, key, at);
    }
    value v;
    DD_TRY(parse_node(o, idx, value_node, org, base_dir, &v));
    char w[1200];
    if (where_store)
        snprintf(w, sizeof w, "%s", where_store);
    else
        where_str(org, value_node->line, value_node->col, w, sizeof w);
    return store(o, idx, &v, FROM_USER, w);
}

dd_status dd_options_set_node(dd_options *o, const char *key, const dd_ynode *value_node,
                              const char *file, int key_line, int key_col, const char *base_dir) {
    if (!o || !key || !value_node || !file)
        return dd_error_set(DD_ERR_INVALID, "dd_options_set_node: NULL argument");
    origin org = {file, 0, 0, NULL};
    return set_node_at(o, key, value_node, &org, key_line, key_col, base_dir, NULL);
}

dd_status dd_options_set_yaml_text(dd_options *o, const char *key, const char *text,
                                   const char *where, const char *err_prefix,
                                   const char *base_dir) {
    if (!o || !key || !text || !where)
        return dd_error_set(DD_ERR_INVALID, "dd_options_set_yaml_text: NULL argument");
    const char *label = err_prefix ? err_prefix : where;
    dd_ynode *node = NULL;
    dd_status s = dd_yaml_load_string(text, strlen(text), label, &node);
    if (s != DD_OK) {
        // positions inside a one-line command-line value only confuse: keep the problem
        const char *msg = dd_error_message();
        const char *syn = strstr(msg, "YAML syntax error: ");
        if (syn) {
            char problem[512];
            snprintf(problem, sizeof problem, "%s", syn + strlen("YAML syntax error: "));
            char *paren = strstr(problem, " (");
            if (paren) *paren = '\0';
            dd_error_set(s, "%s: YAML syntax error in the value: %s", label, problem);
        }
        return s;
    }
    dd_ynode empty = {.kind = DD_YNODE_SCALAR, .scalar = "", .plain = 1, .line = 1, .col = 1};
    const dd_ynode *use = node ? node : &empty;
    origin org = {NULL, 0, 0, label};
    if (use->kind == DD_YNODE_MAPPING && dd_options_index(o, key) < 0 &&
        dd_options_has_group(o, key))
        s = dd_error_set(DD_ERR_INVALID,
                         "%s: '%s' is a group of keys; set each one (e.g. %s.%s=...)", label, key,
                         key, "<key>");
    else
        s = set_node_at(o, key, use, &org, 1, 1, base_dir, where);
    dd_ynode_destroy(node);
    return s;
}

dd_status dd_options_set_kv(dd_options *o, const char *kv, const char *where,
                            const char *base_dir) {
    if (!o || !kv || !where)
        return dd_error_set(DD_ERR_INVALID, "dd_options_set_kv: NULL argument");
    const char *eq = strchr(kv, '=');
    char prefix[1200];
    snprintf(prefix, sizeof prefix, "%s %s", where, kv);
    if (!eq || eq == kv) return dd_error_set(DD_ERR_USAGE, "%s: expected KEY=VALUE", prefix);
    char key[512];
    if ((size_t)(eq - kv) >= sizeof key)
        return dd_error_set(DD_ERR_INVALID, "%s: key too long", prefix);
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    return dd_options_set_yaml_text(o, key, eq + 1, where, prefix, base_dir);
}

dd_status dd_options_set_default(dd_options *o, const char *key, const char *text) {
    int idx = dd_options_index(o, key);
    if (idx < 0) return dd_error_set(DD_ERR_INVALID, "no option '%s' to set a default for", key);
    // a user's explicit null (`name: ~`) leaves the key open for the computed default
    if (o->e[idx].state == FROM_USER && (o->e[idx].v.text || o->e[idx].v.items || o->e[idx].v.its))
        return DD_OK;
    char qkey[300];
    qualified(o, key, qkey, sizeof qkey);
    value v;
    DD_TRY(dd_opt_parse_scalar(o->e[idx].spec, qkey, text, 0, "<default>", NULL, &v));
    return store(o, idx, &v, FROM_DEFAULT, "<default>");
}

dd_status dd_options_finalize(dd_options *o, const char *where_missing) {
    for (size_t i = 0; i < o->n; i++) {
        entry *e = &o->e[i];
        if (e->state != UNSET) continue;
        const dd_param_spec *p = e->spec;
        if (p->flags & DD_PARAM_REQUIRED) {
            if (o->context && *o->context)
                return dd_error_set(DD_ERR_INVALID, "%s: missing required key '%s' in '%s'",
                                    where_missing ? where_missing : "<input>", p->name, o->context);
            return dd_error_set(DD_ERR_INVALID, "%s: missing required key '%s'",
                                where_missing ? where_missing : "<input>", p->name);
        }
        if (!p->default_value) continue;
        char qkey[300];
        qualified(o, p->name, qkey, sizeof qkey);
        value v;
        dd_status s = dd_opt_parse_default(p, qkey, &v);
        if (s != DD_OK) {
            dd_error_prefix("bad default in the parameter spec");
            return s;
        }
        DD_TRY(store(o, (int)i, &v, FROM_DEFAULT, "<default>"));
    }
    return DD_OK;
}

/* ---- getters ------------------------------------------------------------- */

static const entry *lookup(const dd_options *o, const char *key, const char *getter) {
    int idx = o ? dd_options_index(o, key) : -1;
    if (idx < 0) {
        dd_log(DD_LOG_ERROR, "%s: option '%s' is not in the spec%s%s (programming error)", getter,
               key ? key : "(null)", o && o->context ? " of " : "",
               o && o->context ? o->context : "");
        assert(!"option key not in spec");
        return NULL;
    }
    return &o->e[idx];
}

int dd_options_has(const dd_options *o, const char *key) {
    int idx = o ? dd_options_index(o, key) : -1;
    return idx >= 0 && o->e[idx].state != UNSET &&
           (o->e[idx].v.text || o->e[idx].v.items || o->e[idx].v.its ||
            o->e[idx].spec->type == DD_PARAM_LIST);
}

int dd_options_is_set(const dd_options *o, const char *key) {
    int idx = o ? dd_options_index(o, key) : -1;
    return idx >= 0 && o->e[idx].state == FROM_USER;
}

int64_t dd_options_int(const dd_options *o, const char *key) {
    const entry *e = lookup(o, key, "dd_options_int");
    if (!e) return 0;
    assert(e->spec->type == DD_PARAM_INT || e->spec->type == DD_PARAM_BOOL);
    return e->spec->type == DD_PARAM_BOOL ? e->v.b : e->v.i;
}

double dd_options_float(const dd_options *o, const char *key) {
    const entry *e = lookup(o, key, "dd_options_float");
    if (!e) return 0;
    assert(e->spec->type == DD_PARAM_FLOAT || e->spec->type == DD_PARAM_INT);
    return e->v.f;
}

int dd_options_bool(const dd_options *o, const char *key) {
    const entry *e = lookup(o, key, "dd_options_bool");
    if (!e) return 0;
    assert(e->spec->type == DD_PARAM_BOOL);
    return e->v.b;
}

const char *dd_options_string(const dd_options *o, const char *key) {
    const entry *e = lookup(o, key, "dd_options_string");
    if (!e) return NULL;
    return e->v.text;
}

size_t dd_options_list_len(const dd_options *o, const char *key) {
    const entry *e = lookup(o, key, "dd_options_list_len");
    if (!e) return 0;
    assert(e->spec->type == DD_PARAM_LIST);
    return e->v.n_items;
}

const char *dd_options_list_item(const dd_options *o, const char *key, size_t i) {
    const entry *e = lookup(o, key, "dd_options_list_item");
    if (!e || i >= e->v.n_items) return NULL;
    return e->v.items[i];
}

static const opt_item *item_at(const dd_options *o, const char *key, size_t i, const char *getter) {
    const entry *e = lookup(o, key, getter);
    if (!e) return NULL;
    assert(e->spec->type == DD_PARAM_ITEMS);
    return i < e->v.n_its ? &e->v.its[i] : NULL;
}

size_t dd_options_items_len(const dd_options *o, const char *key) {
    const entry *e = lookup(o, key, "dd_options_items_len");
    if (!e) return 0;
    assert(e->spec->type == DD_PARAM_ITEMS);
    return e->v.n_its;
}

const char *dd_options_item_kind(const dd_options *o, const char *key, size_t i) {
    const opt_item *it = item_at(o, key, i, "dd_options_item_kind");
    return it ? it->kind : NULL;
}

const char *dd_options_item_where(const dd_options *o, const char *key, size_t i) {
    const opt_item *it = item_at(o, key, i, "dd_options_item_where");
    return it ? it->where : NULL;
}

const char *dd_options_item_value(const dd_options *o, const char *key, size_t i) {
    const opt_item *it = item_at(o, key, i, "dd_options_item_value");
    return it ? it->value : NULL;
}

const char *dd_options_item_value_where(const dd_options *o, const char *key, size_t i) {
    const opt_item *it = item_at(o, key, i, "dd_options_item_value_where");
    return it ? (it->value_where ? it->value_where : it->where) : NULL;
}

size_t dd_options_item_n_args(const dd_options *o, const char *key, size_t i) {
    const opt_item *it = item_at(o, key, i, "dd_options_item_n_args");
    return it ? it->n_args : 0;
}

const char *dd_options_item_arg_key(const dd_options *o, const char *key, size_t i, size_t j) {
    const opt_item *it = item_at(o, key, i, "dd_options_item_arg_key");
    return it && j < it->n_args ? it->args[j].key : NULL;
}

const char *dd_options_item_arg_value(const dd_options *o, const char *key, size_t i, size_t j) {
    const opt_item *it = item_at(o, key, i, "dd_options_item_arg_value");
    return it && j < it->n_args ? it->args[j].value : NULL;
}

const char *dd_options_item_arg_where(const dd_options *o, const char *key, size_t i, size_t j) {
    const opt_item *it = item_at(o, key, i, "dd_options_item_arg_where");
    return it && j < it->n_args ? it->args[j].where : NULL;
}

const char *dd_options_where(const dd_options *o, const char *key) {
    const entry *e = lookup(o, key, "dd_options_where");
    if (!e || !e->where) return "<unset>";
    return e->where;
}

dd_status dd_options_from_strings(const dd_param_spec *spec, const char *const *kv,
                                  dd_options **out) {
    if (!out) return dd_error_set(DD_ERR_INVALID, "dd_options_from_strings: NULL argument");
    *out = NULL;
    dd_options *o = NULL;
    DD_TRY(dd_options_create(NULL, &spec, 1, &o));
    dd_status s = DD_OK;
    for (size_t i = 0; kv && kv[i] && s == DD_OK; i++)
        s = dd_options_set_kv(o, kv[i], "--set", NULL);
    if (s == DD_OK) s = dd_options_finalize(o, "options");
    if (s != DD_OK) {
        dd_options_destroy(o);
        return s;
    }
    *out = o;
    return DD_OK;
}

size_t dd_options_count(const dd_options *o) {
    return o ? o->n : 0;
}

const dd_param_spec *dd_options_spec(const dd_options *o, size_t i) {
    return o && i < o->n ? o->e[i].spec : NULL;
}

const char *dd_options_context(const dd_options *o) {
    return o ? o->context : NULL;
}

const char *dd_options_where_at(const dd_options *o, size_t i) {
    return o && i < o->n ? o->e[i].where : NULL;
}
