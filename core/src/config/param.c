/* distill — parameter values: typed scalar parsing with ranges, choices
 * and paths, spec defaults, and the check of a parameter spec itself. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/strbuf.h"
#include "config/options_impl.h"

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
    case DD_PARAM_ITEMS:
        return "items";
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
    } else if ((p->type == DD_PARAM_ENUM || p->type == DD_PARAM_LIST ||
                p->type == DD_PARAM_ITEMS) &&
               p->choices) {
        snprintf(buf, n, "%s", p->choices);
    }
}

// Nonzero if `s` is one of the '|'-separated choices.
int dd_param_in_choices(const char *choices, const char *s) {
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

char *dd_param_choices_list(const char *choices) {
    dd_strbuf b = DD_STRBUF_INIT;
    const char *c = choices;
    dd_strbuf_printf(&b, "%s", "");
    while (c && *c) {
        size_t clen = strcspn(c, "|");
        dd_strbuf_printf(&b, "%s%.*s", b.len ? ", " : "", (int)clen, c);
        c += clen;
        if (*c == '|') c++;
    }
    return dd_strbuf_take(&b);
}

dd_status dd_opt_bad_value(const char *at, const char *qkey, const char *fmt, ...) {
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
    return *out ? DD_OK : dd_nomem();
}

// The error for a YAML null given to a key that needs a value.
static dd_status empty_value(const dd_param_spec *p, const char *at, const char *qkey) {
    return dd_opt_bad_value(at, qkey, "expected %s %s, got an empty value",
                            p->type == DD_PARAM_INT || p->type == DD_PARAM_ENUM ? "an" : "a",
                            p->type == DD_PARAM_INT     ? "integer"
                            : p->type == DD_PARAM_FLOAT ? "number"
                            : p->type == DD_PARAM_BOOL  ? "boolean (true or false)"
                            : p->type == DD_PARAM_ENUM  ? "enum value"
                                                        : "string");
}

static dd_status out_of_range(const dd_param_spec *p, const char *at, const char *qkey,
                              const char *shown) {
    char r[100];
    dd_param_range_str(p, r, sizeof r);
    return dd_opt_bad_value(at, qkey, "%s is out of range (must be %s%s)", shown,
                            r[0] == '[' || r[0] == '(' ? "in " : "", r);
}

static dd_status parse_bool(const char *text, const char *at, const char *qkey, value *v) {
    static const char *const t[] = {"true", "yes", "on"}, *const f[] = {"false", "no", "off"};
    int got = -1;
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(text, t[i]) == 0) got = 1;
        if (strcasecmp(text, f[i]) == 0) got = 0;
    }
    if (got < 0) return dd_opt_bad_value(at, qkey, "expected true or false, got '%s'", text);
    v->b = got;
    v->text = strdup(got ? "true" : "false");
    return DD_OK;
}

static dd_status parse_int(const dd_param_spec *p, const char *text, const char *at,
                           const char *qkey, value *v) {
    char *end = NULL;
    errno = 0;
    long long x = *text ? strtoll(text, &end, 10) : 0;
    if (!*text || *end != '\0' || isspace((unsigned char)text[0]))
        return dd_opt_bad_value(at, qkey, "expected an integer, got '%s'", text);
    if (errno == ERANGE) return dd_opt_bad_value(at, qkey, "%s does not fit in 64 bits", text);
    if (!range_ok(p, (double)x)) {
        char shown[32];
        snprintf(shown, sizeof shown, "%lld", x);
        return out_of_range(p, at, qkey, shown);
    }
    v->i = x;
    v->f = (double)x;
    if (asprintf(&v->text, "%lld", x) < 0) v->text = NULL;
    return DD_OK;
}

static dd_status parse_float(const dd_param_spec *p, const char *text, const char *at,
                             const char *qkey, value *v) {
    char *end = NULL;
    errno = 0;
    double x = *text ? strtod(text, &end) : 0;
    if (!*text || *end != '\0' || isspace((unsigned char)text[0]))
        return dd_opt_bad_value(at, qkey, "expected a number, got '%s'", text);
    if (!isfinite(x) || errno == ERANGE)
        return dd_opt_bad_value(at, qkey, "expected a finite number, got '%s'", text);
    if (!range_ok(p, x)) return out_of_range(p, at, qkey, text);
    v->f = x;
    // the integer view of a float is only defined where it is representable
    // (a huge value such as 1e108 would overflow the conversion)
    v->i = fabs(x) < 9.0e18 ? (int64_t)x : 0;
    v->text = strdup(text);
    return DD_OK;
}

// `what` is "" for an enum value, "list item " for a list's.
static dd_status check_choice(const dd_param_spec *p, const char *text, const char *at,
                              const char *qkey, const char *what) {
    if (!p->choices || dd_param_in_choices(p->choices, text)) return DD_OK;
    char *c = dd_param_choices_list(p->choices);
    dd_status s =
        dd_opt_bad_value(at, qkey, "%s'%s' is not one of: %s", what, text, c ? c : p->choices);
    free(c);
    return s;
}

static dd_status parse_string(const dd_param_spec *p, const char *text, const char *at,
                              const char *qkey, const char *base_dir, value *v) {
    if (!(p->flags & DD_PARAM_PATH)) {
        v->text = strdup(text);
        return DD_OK;
    }
    if (!*text) return dd_opt_bad_value(at, qkey, "expected a path, got an empty string");
    dd_status s = resolve_path(text, base_dir, &v->text);
    if (s != DD_OK) dd_error_prefix("%s", at);
    return s;
}

static dd_status parse_list_item(const char *text, value *v) {
    v->items = malloc(sizeof *v->items);
    if (!v->items) return dd_nomem();
    v->items[0] = strdup(text);
    if (!v->items[0]) {
        free(v->items);
        v->items = NULL;
        return dd_nomem();
    }
    v->n_items = 1;
    return DD_OK;
}

// Parses one scalar for spec p into v (v is zeroed first). `is_null` marks a
// YAML null; `at` prefixes errors.
dd_status dd_opt_parse_scalar(const dd_param_spec *p, const char *qkey, const char *text,
                              int is_null, const char *at, const char *base_dir, value *v) {
    memset(v, 0, sizeof *v);
    if (is_null) {
        if (p->type == DD_PARAM_LIST) return DD_OK; // an empty list
        if (p->type == DD_PARAM_ITEMS)
            return (v->its = calloc(1, sizeof *v->its)) ? DD_OK : dd_nomem();
        if (p->type == DD_PARAM_STRING && !(p->flags & DD_PARAM_REQUIRED)) return DD_OK;
        return empty_value(p, at, qkey);
    }
    switch (p->type) {
    case DD_PARAM_BOOL:
        DD_TRY(parse_bool(text, at, qkey, v));
        break;
    case DD_PARAM_INT:
        DD_TRY(parse_int(p, text, at, qkey, v));
        break;
    case DD_PARAM_FLOAT:
        DD_TRY(parse_float(p, text, at, qkey, v));
        break;
    case DD_PARAM_ENUM:
        DD_TRY(check_choice(p, text, at, qkey, ""));
        v->text = strdup(text);
        break;
    case DD_PARAM_STRING:
        DD_TRY(parse_string(p, text, at, qkey, base_dir, v));
        break;
    case DD_PARAM_LIST:
        DD_TRY(check_choice(p, text, at, qkey, "list item "));
        return parse_list_item(text, v);
    case DD_PARAM_ITEMS:
        return dd_opt_parse_items_text(p, qkey, text, at, v);
    }
    if (!v->text) return dd_nomem();
    return DD_OK;
}

// Appends the items of `add` (a one-item list value) to list value v.
dd_status dd_opt_list_append(value *v, value *add) {
    char **items = realloc(v->items, (v->n_items + add->n_items + 1) * sizeof *items);
    if (!items) return dd_nomem();
    v->items = items;
    for (size_t i = 0; i < add->n_items; i++)
        v->items[v->n_items++] = add->items[i];
    free(add->items);
    add->items = NULL;
    add->n_items = 0;
    return DD_OK;
}

// Parses a spec's default (list defaults are comma-separated) into v.
dd_status dd_opt_parse_default(const dd_param_spec *p, const char *qkey, value *v) {
    memset(v, 0, sizeof *v);
    if (p->type == DD_PARAM_ITEMS)
        return dd_opt_parse_items_text(p, qkey, p->default_value, "<default>", v);
    if (p->type != DD_PARAM_LIST)
        return dd_opt_parse_scalar(p, qkey, p->default_value, 0, "<default>", NULL, v);
    const char *c = p->default_value;
    if (!(v->items = calloc(1, sizeof *v->items))) return dd_nomem();
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
        dd_status s = dd_opt_parse_scalar(p, qkey, item, item[0] == '\0', "<default>", NULL, &one);
        if (s == DD_OK) s = dd_opt_list_append(v, &one);
        dd_opt_value_free(&one);
        if (s != DD_OK) {
            dd_opt_value_free(v);
            return s;
        }
        c += len;
        if (*c == ',') c++;
    }
    return DD_OK;
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
        if (p->type < DD_PARAM_BOOL || p->type > DD_PARAM_ITEMS)
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
            dd_status s = dd_opt_parse_default(p, n, &v);
            dd_opt_value_free(&v);
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
