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

#include "distill/log.h"

enum { UNSET = 0, FROM_DEFAULT = 1, FROM_USER = 2 };

typedef struct value {
    char *text; // scalar text; for paths the resolved path (NULL: no value)
    int64_t i;
    double f;
    int b;
    char **items;
    size_t n_items;
} value;

typedef struct entry {
    const dd_param_spec *spec;
    int state;
    char *where;
    value v;
} entry;

struct dd_options {
    char *context;
    entry *e;
    size_t n;
};

// Where a value came from, for errors: "file:line:col" or a label.
typedef struct origin {
    const char *file; // NULL: use label
    int line, col;
    const char *label;
} origin;

static char *xstrdup(const char *s) {
    return s ? strdup(s) : NULL;
}

static dd_status nomem(void) {
    return dd_error_set(DD_ERR_NOMEM, "out of memory");
}

static void value_free(value *v) {
    free(v->text);
    for (size_t i = 0; i < v->n_items; i++)
        free(v->items[i]);
    free(v->items);
    memset(v, 0, sizeof *v);
}

void dd_options_destroy(dd_options *o) {
    if (!o) return;
    for (size_t i = 0; i < o->n; i++) {
        value_free(&o->e[i].v);
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
    if (!o) return nomem();
    o->e = calloc(total ? total : 1, sizeof *o->e);
    if (!o->e || (context && !(o->context = strdup(context)))) {
        dd_options_destroy(o);
        return nomem();
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

// A growing string; on allocation failure it stays NULL and reports it.
typedef struct sbuf {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t nc = (b->cap ? b->cap * 2 : 64) + (size_t)n;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            free(b->s);
            b->s = NULL;
            b->failed = 1;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *dd_options_valid_keys(const dd_options *o, const char *prefix) {
    size_t plen = prefix ? strlen(prefix) : 0;
    sbuf b = {0};
    sb_add(&b, "%s", "");
    for (size_t i = 0; i < o->n; i++) {
        const char *k = o->e[i].spec->name;
        if (plen && (strncmp(k, prefix, plen) != 0 || k[plen] != '.')) continue;
        const char *rel = plen ? k + plen + 1 : k;
        size_t rlen = strcspn(rel, ".");
        // list a group ("optimizer") once, at its first member
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) {
            const char *kj = o->e[j].spec->name;
            if (plen && (strncmp(kj, prefix, plen) != 0 || kj[plen] != '.')) continue;
            const char *rj = plen ? kj + plen + 1 : kj;
            if (strncmp(rj, rel, rlen) == 0 && (rj[rlen] == '.' || rj[rlen] == '\0')) seen = 1;
        }
        if (seen) continue;
        sb_add(&b, "%s%.*s", b.len ? ", " : "", (int)rlen, rel);
    }
    return b.s;
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

/* ---- scalar parsing ------------------------------------------------------ */

static void fmt_num(double x, char *buf, size_t n) {
    if (x == floor(x) && fabs(x) < 1e15)
        snprintf(buf, n, "%lld", (long long)x);
    else
        snprintf(buf, n, "%g", x);
}

const char *dd_param_type_str(const dd_param_spec *p) {
    switch (p->type) {
    case DD_PARAM_BOOL:
        return "bool";
    case DD_PARAM_INT:
        return "int";
    case DD_PARAM_FLOAT:
        return "float";
    case DD_PARAM_STRING:
        return (p->flags & DD_PARAM_PATH) ? "path" : "string";
    case DD_PARAM_ENUM:
        return "enum";
    case DD_PARAM_LIST:
        return "list";
    }
    return "?";
}

void dd_param_range_str(const dd_param_spec *p, char *buf, size_t n) {
    buf[0] = '\0';
    if (p->type == DD_PARAM_INT || p->type == DD_PARAM_FLOAT) {
        char lo[40], hi[40];
        fmt_num(p->min, lo, sizeof lo);
        fmt_num(p->max, hi, sizeof hi);
        int lo_x = (p->flags & DD_PARAM_MIN_EXCLUSIVE) != 0;
        int hi_x = (p->flags & DD_PARAM_MAX_EXCLUSIVE) != 0;
        if ((p->flags & DD_PARAM_HAS_MIN) && (p->flags & DD_PARAM_HAS_MAX))
            snprintf(buf, n, "%c%s, %s%c", lo_x ? '(' : '[', lo, hi, hi_x ? ')' : ']');
        else if (p->flags & DD_PARAM_HAS_MIN)
            snprintf(buf, n, "%s %s", lo_x ? ">" : ">=", lo);
        else if (p->flags & DD_PARAM_HAS_MAX)
            snprintf(buf, n, "%s %s", hi_x ? "<" : "<=", hi);
    } else if ((p->type == DD_PARAM_ENUM || p->type == DD_PARAM_LIST) && p->choices) {
        snprintf(buf, n, "%s", p->choices);
    }
}

// Nonzero if `s` is one of the '|'-separated choices.
static int in_choices(const char *choices, const char *s) {
    size_t len = strlen(s);
    const char *c = choices;
    while (c && *c) {
        size_t clen = strcspn(c, "|");
        if (clen == len && strncmp(c, s, len) == 0) return 1;
        c += clen;
        if (*c == '|') c++;
    }
    return 0;
}

static char *choices_list(const char *choices) {
    sbuf b = {0};
    const char *c = choices;
    sb_add(&b, "%s", "");
    while (c && *c) {
        size_t clen = strcspn(c, "|");
        sb_add(&b, "%s%.*s", b.len ? ", " : "", (int)clen, c);
        c += clen;
        if (*c == '|') c++;
    }
    return b.s;
}

static dd_status bad_value(const char *at, const char *qkey, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static dd_status bad_value(const char *at, const char *qkey, const char *fmt, ...) {
    char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return dd_error_set(DD_ERR_INVALID, "%s: invalid value for '%s': %s", at, qkey, why);
}

static int range_ok(const dd_param_spec *p, double x) {
    if (p->flags & DD_PARAM_HAS_MIN) {
        if ((p->flags & DD_PARAM_MIN_EXCLUSIVE) ? !(x > p->min) : !(x >= p->min)) return 0;
    }
    if (p->flags & DD_PARAM_HAS_MAX) {
        if ((p->flags & DD_PARAM_MAX_EXCLUSIVE) ? !(x < p->max) : !(x <= p->max)) return 0;
    }
    return 1;
}

static dd_status resolve_path(const char *text, const char *base_dir, char **out) {
    *out = NULL;
    if (text[0] == '/') {
        *out = strdup(text);
    } else if (text[0] == '~' && (text[1] == '/' || text[1] == '\0')) {
        const char *home = getenv("HOME");
        if (!home || !*home)
            return dd_error_set(DD_ERR_INVALID, "cannot expand '~': HOME is not set");
        if (asprintf(out, "%s%s", home, text + 1) < 0) *out = NULL;
    } else {
        char cwd[4096];
        if (!base_dir) {
            if (!getcwd(cwd, sizeof cwd))
                return dd_error_set(DD_ERR_IO, "cannot resolve '%s': getcwd: %s", text,
                                    strerror(errno));
            base_dir = cwd;
        }
        if (strcmp(text, ".") == 0) {
            *out = strdup(base_dir);
        } else {
            const char *rel = strncmp(text, "./", 2) == 0 ? text + 2 : text;
            if (asprintf(out, "%s/%s", base_dir, rel) < 0) *out = NULL;
        }
    }
    return *out ? DD_OK : nomem();
}

// Parses one scalar for spec p into v (v is zeroed first). `is_null` marks a
// YAML null; `at` prefixes errors.
static dd_status parse_scalar(const dd_param_spec *p, const char *qkey, const char *text,
                              int is_null, const char *at, const char *base_dir, value *v) {
    memset(v, 0, sizeof *v);
    if (is_null) {
        if (p->type == DD_PARAM_LIST) return DD_OK; // an empty list
        if (p->type == DD_PARAM_STRING && !(p->flags & DD_PARAM_REQUIRED)) return DD_OK;
        return bad_value(at, qkey, "expected %s %s, got an empty value",
                         p->type == DD_PARAM_INT || p->type == DD_PARAM_ENUM ? "an" : "a",
                         p->type == DD_PARAM_INT     ? "integer"
                         : p->type == DD_PARAM_FLOAT ? "number"
                         : p->type == DD_PARAM_BOOL  ? "boolean (true or false)"
                         : p->type == DD_PARAM_ENUM  ? "enum value"
                                                     : "string");
    }
    switch (p->type) {
    case DD_PARAM_BOOL: {
        static const char *const t[] = {"true", "yes", "on"}, *const f[] = {"false", "no", "off"};
        int got = -1;
        for (int i = 0; i < 3; i++) {
            if (strcasecmp(text, t[i]) == 0) got = 1;
            if (strcasecmp(text, f[i]) == 0) got = 0;
        }
        if (got < 0) return bad_value(at, qkey, "expected true or false, got '%s'", text);
        v->b = got;
        v->text = strdup(got ? "true" : "false");
        break;
    }
    case DD_PARAM_INT: {
        char *end = NULL;
        errno = 0;
        long long x = *text ? strtoll(text, &end, 10) : 0;
        if (!*text || *end != '\0' || isspace((unsigned char)text[0]))
            return bad_value(at, qkey, "expected an integer, got '%s'", text);
        if (errno == ERANGE) return bad_value(at, qkey, "%s does not fit in 64 bits", text);
        if (!range_ok(p, (double)x)) {
            char r[100];
            dd_param_range_str(p, r, sizeof r);
            return bad_value(at, qkey, "%lld is out of range (must be %s%s)", x,
                             r[0] == '[' || r[0] == '(' ? "in " : "", r);
        }
        v->i = x;
        v->f = (double)x;
        if (asprintf(&v->text, "%lld", x) < 0) v->text = NULL;
        break;
    }
    case DD_PARAM_FLOAT: {
        char *end = NULL;
        errno = 0;
        double x = *text ? strtod(text, &end) : 0;
        if (!*text || *end != '\0' || isspace((unsigned char)text[0]))
            return bad_value(at, qkey, "expected a number, got '%s'", text);
        if (!isfinite(x) || errno == ERANGE)
            return bad_value(at, qkey, "expected a finite number, got '%s'", text);
        if (!range_ok(p, x)) {
            char r[100];
            dd_param_range_str(p, r, sizeof r);
            return bad_value(at, qkey, "%s is out of range (must be %s%s)", text,
                             r[0] == '[' || r[0] == '(' ? "in " : "", r);
        }
        v->f = x;
        v->i = (int64_t)x;
        v->text = strdup(text);
        break;
    }
    case DD_PARAM_ENUM:
        if (!in_choices(p->choices, text)) {
            char *c = choices_list(p->choices);
            dd_status s = bad_value(at, qkey, "'%s' is not one of: %s", text, c ? c : p->choices);
            free(c);
            return s;
        }
        v->text = strdup(text);
        break;
    case DD_PARAM_STRING:
        if (p->flags & DD_PARAM_PATH) {
            if (!*text) return bad_value(at, qkey, "expected a path, got an empty string");
            dd_status s = resolve_path(text, base_dir, &v->text);
            if (s != DD_OK) {
                dd_error_prefix("%s", at);
                return s;
            }
        } else {
            v->text = strdup(text);
        }
        break;
    case DD_PARAM_LIST:
        if (p->choices && !in_choices(p->choices, text)) {
            char *c = choices_list(p->choices);
            dd_status s =
                bad_value(at, qkey, "list item '%s' is not one of: %s", text, c ? c : p->choices);
            free(c);
            return s;
        }
        v->items = malloc(sizeof *v->items);
        if (!v->items) return nomem();
        v->items[0] = strdup(text);
        if (!v->items[0]) {
            free(v->items);
            v->items = NULL;
            return nomem();
        }
        v->n_items = 1;
        return DD_OK;
    }
    if (!v->text) return nomem();
    return DD_OK;
}

// Appends the items of `add` (a one-item list value) to list value v.
static dd_status list_append(value *v, value *add) {
    char **items = realloc(v->items, (v->n_items + add->n_items + 1) * sizeof *items);
    if (!items) return nomem();
    v->items = items;
    for (size_t i = 0; i < add->n_items; i++)
        v->items[v->n_items++] = add->items[i];
    free(add->items);
    add->items = NULL;
    add->n_items = 0;
    return DD_OK;
}

static dd_status store(dd_options *o, int idx, value *v, int state, const char *where) {
    char *w = xstrdup(where);
    if (where && !w) {
        value_free(v);
        return nomem();
    }
    entry *e = &o->e[idx];
    value_free(&e->v);
    free(e->where);
    e->v = *v;
    e->where = w;
    e->state = state;
    memset(v, 0, sizeof *v);
    return DD_OK;
}

// Parses a node (scalar or list) for entry idx into v.
static dd_status parse_node(const dd_options *o, int idx, const dd_ynode *node, const origin *org,
                            const char *base_dir, value *v) {
    const dd_param_spec *p = o->e[idx].spec;
    char qkey[300], at[1200];
    qualified(o, p->name, qkey, sizeof qkey);
    where_str(org, node->line, node->col, at, sizeof at);
    memset(v, 0, sizeof *v);
    if (node->kind == DD_YNODE_SCALAR)
        return parse_scalar(p, qkey, node->scalar, dd_ynode_is_null(node), at, base_dir, v);
    if (node->kind == DD_YNODE_SEQUENCE && p->type == DD_PARAM_LIST) {
        for (size_t i = 0; i < node->n; i++) {
            const dd_ynode *it = node->items[i];
            where_str(org, it->line, it->col, at, sizeof at);
            if (it->kind != DD_YNODE_SCALAR || dd_ynode_is_null(it)) {
                value_free(v);
                return bad_value(at, qkey, "list items must be non-empty scalars, got %s",
                                 it->kind == DD_YNODE_SCALAR ? "an empty value"
                                                             : dd_ynode_kind_str(it));
            }
            value one;
            dd_status s = parse_scalar(p, qkey, it->scalar, 0, at, base_dir, &one);
            if (s == DD_OK) s = list_append(v, &one);
            value_free(&one);
            if (s != DD_OK) {
                value_free(v);
                return s;
            }
        }
        if (!v->items && !(v->items = calloc(1, sizeof *v->items))) return nomem();
        return DD_OK;
    }
    static const char *const what[] = {"",         "a boolean",          "an integer", "a number",
                                       "a string", "one of the choices", "a list"};
    const char *expected =
        p->type >= DD_PARAM_BOOL && p->type <= DD_PARAM_LIST ? what[p->type] : "a value";
    if (p->type == DD_PARAM_STRING && (p->flags & DD_PARAM_PATH)) expected = "a path";
    if (p->type == DD_PARAM_LIST && node->kind == DD_YNODE_MAPPING)
        return bad_value(at, qkey, "expected a list, got a mapping");
    return bad_value(at, qkey, "expected %s, got %s", expected, dd_ynode_kind_str(node));
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
            dd_status s = bad_value(at, qkey, "expected a mapping (keys: %s), got %s",
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
    if (o->e[idx].state == FROM_USER && (o->e[idx].v.text || o->e[idx].v.items)) return DD_OK;
    char qkey[300];
    qualified(o, key, qkey, sizeof qkey);
    value v;
    DD_TRY(parse_scalar(o->e[idx].spec, qkey, text, 0, "<default>", NULL, &v));
    return store(o, idx, &v, FROM_DEFAULT, "<default>");
}

// Parses a spec's default (list defaults are comma-separated) into v.
static dd_status parse_default(const dd_param_spec *p, const char *qkey, value *v) {
    memset(v, 0, sizeof *v);
    if (p->type != DD_PARAM_LIST)
        return parse_scalar(p, qkey, p->default_value, 0, "<default>", NULL, v);
    const char *c = p->default_value;
    if (!(v->items = calloc(1, sizeof *v->items))) return nomem();
    while (*c) {
        while (*c == ' ')
            c++;
        size_t len = strcspn(c, ",");
        size_t tl = len;
        while (tl > 0 && c[tl - 1] == ' ')
            tl--;
        char item[256];
        snprintf(item, sizeof item, "%.*s", (int)tl, c);
        value one;
        dd_status s = parse_scalar(p, qkey, item, item[0] == '\0', "<default>", NULL, &one);
        if (s == DD_OK) s = list_append(v, &one);
        value_free(&one);
        if (s != DD_OK) {
            value_free(v);
            return s;
        }
        c += len;
        if (*c == ',') c++;
    }
    return DD_OK;
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
        dd_status s = parse_default(p, qkey, &v);
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
           (o->e[idx].v.text || o->e[idx].v.items || o->e[idx].spec->type == DD_PARAM_LIST);
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

/* ---- formatting ---------------------------------------------------------- */

// Nonzero if `s` reads back from YAML as the same plain string.
static int plain_safe(const char *s) {
    if (!*s) return 0;
    if (strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]))
        return s[0] == '-' && s[1] && s[1] != ' ' && !strchr(s, '#');
    for (const char *c = s; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == '#' || (c[0] == ':' && (c[1] == ' ' || c[1] == '\0')))
            return 0;
        if (strchr(",[]{}", *c)) return 0;
    }
    if (s[strlen(s) - 1] == ' ') return 0;
    static const char *const reserved[] = {"true", "false", "yes", "no", "on", "off", "null", "~"};
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strcasecmp(s, reserved[i]) == 0) return 0;
    char *end;
    (void)strtod(s, &end);
    return *end != '\0';
}

static void sb_scalar(sbuf *b, const char *s) {
    if (plain_safe(s)) {
        sb_add(b, "%s", s);
        return;
    }
    sb_add(b, "\"");
    for (const char *c = s; *c; c++) {
        if (*c == '"' || *c == '\\')
            sb_add(b, "\\%c", *c);
        else if ((unsigned char)*c < 0x20)
            sb_add(b, "\\x%02x", (unsigned char)*c);
        else
            sb_add(b, "%c", *c);
    }
    sb_add(b, "\"");
}

void dd_yaml_write_scalar(FILE *f, const char *s) {
    sbuf b = {0};
    sb_scalar(&b, s);
    if (b.s) fputs(b.s, f);
    free(b.s);
}

char *dd_options_format(const dd_options *o, size_t i) {
    if (!o || i >= o->n) return NULL;
    const entry *e = &o->e[i];
    sbuf b = {0};
    if (e->spec->type == DD_PARAM_LIST) {
        sb_add(&b, "[");
        for (size_t k = 0; k < e->v.n_items; k++) {
            if (k) sb_add(&b, ", ");
            sb_scalar(&b, e->v.items[k]);
        }
        sb_add(&b, "]");
    } else if (!e->v.text) {
        sb_add(&b, "null");
    } else if (e->spec->type == DD_PARAM_STRING || e->spec->type == DD_PARAM_ENUM) {
        sb_scalar(&b, e->v.text);
    } else {
        sb_add(&b, "%s", e->v.text);
    }
    return b.s;
}

/* ---- spec checking ------------------------------------------------------- */

dd_status dd_param_spec_check(const dd_param_spec *spec, const char *owner) {
    if (!spec) return DD_OK;
    for (const dd_param_spec *p = spec; p->name; p++) {
        const char *n = p->name;
        if (!*n || n[0] == '.' || n[strlen(n) - 1] == '.' || strstr(n, ".."))
            return dd_error_set(DD_ERR_PLUGIN, "%s: malformed parameter name '%s'", owner, n);
        for (const char *c = n; *c; c++)
            if (!(isalnum((unsigned char)*c) || *c == '_' || *c == '-' || *c == '.'))
                return dd_error_set(DD_ERR_PLUGIN, "%s: parameter name '%s' has character '%c'",
                                    owner, n, *c);
        for (const dd_param_spec *q = spec; q < p; q++) {
            if (strcmp(q->name, n) == 0)
                return dd_error_set(DD_ERR_PLUGIN, "%s: parameter '%s' declared twice", owner, n);
            size_t ql = strlen(q->name), nl = strlen(n);
            if ((ql < nl && strncmp(q->name, n, ql) == 0 && n[ql] == '.') ||
                (nl < ql && strncmp(q->name, n, nl) == 0 && q->name[nl] == '.'))
                return dd_error_set(
                    DD_ERR_PLUGIN, "%s: parameter '%s' is both a key and a group ('%s')", owner,
                    strlen(q->name) < nl ? q->name : n, strlen(q->name) < nl ? n : q->name);
        }
        if (p->type < DD_PARAM_BOOL || p->type > DD_PARAM_LIST)
            return dd_error_set(DD_ERR_PLUGIN, "%s: parameter '%s' has unknown type %d", owner, n,
                                (int)p->type);
        if (!p->doc || !*p->doc)
            return dd_error_set(DD_ERR_PLUGIN, "%s: parameter '%s' has no documentation", owner, n);
        if (p->type == DD_PARAM_ENUM && (!p->choices || !*p->choices))
            return dd_error_set(DD_ERR_PLUGIN, "%s: enum parameter '%s' has no choices", owner, n);
        if ((p->flags & DD_PARAM_HAS_MIN) && (p->flags & DD_PARAM_HAS_MAX) && p->min > p->max)
            return dd_error_set(DD_ERR_PLUGIN, "%s: parameter '%s' has min > max", owner, n);
        if ((p->flags & DD_PARAM_REQUIRED) && p->default_value)
            return dd_error_set(DD_ERR_PLUGIN, "%s: required parameter '%s' has a default", owner,
                                n);
        if (p->default_value) {
            value v;
            dd_status s = parse_default(p, n, &v);
            value_free(&v);
            if (s != DD_OK) {
                char msg[2048];
                snprintf(msg, sizeof msg, "%s", dd_error_message());
                return dd_error_set(DD_ERR_PLUGIN,
                                    "%s: default of parameter '%s' does not validate: %s", owner, n,
                                    msg);
            }
        }
    }
    return DD_OK;
}
