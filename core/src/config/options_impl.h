/* distill (internal) — what the options module's files share: the stored
 * value of one key, its entry, and the scalar parser (config/param.c). Only
 * config/options*.c and config/param.c include this. */
#ifndef DD_OPTIONS_IMPL_H
#define DD_OPTIONS_IMPL_H

#include <stdint.h>

#include "base/error.h"
#include "config/options.h"

enum { UNSET = 0, FROM_DEFAULT = 1, FROM_USER = 2 };

// One DD_PARAM_ITEMS item: `kind`, `{kind: value}` or `{kind: {args}}`.
typedef struct opt_arg {
    char *key, *value, *where;
} opt_arg;

typedef struct opt_item {
    char *kind, *where;
    char *value, *value_where; // scalar shorthand, else NULL
    opt_arg *args;
    size_t n_args;
} opt_item;

typedef struct value {
    char *text; // scalar text; for paths the resolved path (NULL: no value)
    int64_t i;
    double f;
    int b;
    char **items;
    size_t n_items;
    opt_item *its; // DD_PARAM_ITEMS (non-NULL once set, even when empty)
    size_t n_its;
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

char *dd_opt_strdup(const char *s);
/* Nonzero if `s` is one of the '|'-separated choices; the choices as
 * "a, b, c" (caller frees). */
int dd_param_in_choices(const char *choices, const char *s);
char *dd_param_choices_list(const char *choices);
void dd_opt_value_free(value *v);
/* Parses one scalar for spec p into v (v is zeroed first). `is_null` marks
 * a YAML null; `at` prefixes errors; paths resolve against base_dir. */
dd_status dd_opt_parse_scalar(const dd_param_spec *p, const char *qkey, const char *text,
                              int is_null, const char *at, const char *base_dir, value *v);
/* "AT: invalid value for 'QKEY': WHY" as a DD_ERR_INVALID error. */
dd_status dd_opt_bad_value(const char *at, const char *qkey, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends add's text as one more item of list value v (add keeps its own). */
dd_status dd_opt_list_append(value *v, value *add);
/* Parses a DD_PARAM_ITEMS value written as YAML text (a default), errors
 * prefixed with `at`. */
dd_status dd_opt_parse_items_text(const dd_param_spec *p, const char *qkey, const char *text,
                                  const char *at, value *v);
/* Parses a spec's default (list defaults are comma-separated) into v. */
dd_status dd_opt_parse_default(const dd_param_spec *p, const char *qkey, value *v);

#endif
