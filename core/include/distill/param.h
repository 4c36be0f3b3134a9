/* distill — parameter specs (declared by plugins and stages) and the
 * validated options a component receives. One spec drives YAML validation,
 * defaults, `--set` overrides and `distill plugins --describe`. */
#ifndef DISTILL_PARAM_H
#define DISTILL_PARAM_H

#include <stddef.h>
#include <stdint.h>

#include "distill/export.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dd_param_type {
    DD_PARAM_BOOL = 1, /**< true/false */
    DD_PARAM_INT,      /**< 64-bit integer, range-checked with min/max */
    DD_PARAM_FLOAT,    /**< double, range-checked with min/max */
    DD_PARAM_STRING,   /**< any scalar string */
    DD_PARAM_ENUM,     /**< one of `choices` ("a|b|c") */
    DD_PARAM_LIST,     /**< a YAML sequence of scalars (e.g. baselines, mirrors) */
    /** A YAML sequence of items, each a word (`relu`) or a one-key mapping
     * whose value is a scalar (`{maxpool: 2}`) or a mapping of scalars
     * (`{conv: {out: 32, kernel: 3}}`), e.g. the layers of a network. The
     * core checks the form and the words (`choices`: allowed item kinds, NULL:
     * any); what the values mean is the component's to check, with the
     * item's position (dd_options_item_where). Default: YAML flow text or "". */
    DD_PARAM_ITEMS,
} dd_param_type;

/** Flags of a parameter. */
enum {
    DD_PARAM_REQUIRED = 1u << 0,      /**< no default: the pipeline must set it */
    DD_PARAM_HAS_MIN = 1u << 1,       /**< min is enforced (inclusive) */
    DD_PARAM_HAS_MAX = 1u << 2,       /**< max is enforced (inclusive) */
    DD_PARAM_PATH = 1u << 3,          /**< a filesystem path: relative to the pipeline file */
    DD_PARAM_MIN_EXCLUSIVE = 1u << 4, /**< with HAS_MIN: value must be > min */
    DD_PARAM_MAX_EXCLUSIVE = 1u << 5, /**< with HAS_MAX: value must be < max */
};

/** One parameter. Nested YAML mappings are named with dots:
 * `optimizer.lr` is `optimizer: {lr: ...}` in YAML. Arrays of specs end with
 * an entry whose name is NULL. */
typedef struct dd_param_spec {
    const char *name; /**< key, e.g. "steps" or "optimizer.lr" */
    dd_param_type type;
    const char *default_value; /**< YAML text of the default; NULL if required or unset.
                                    For DD_PARAM_LIST: comma-separated items. */
    unsigned flags;            /**< DD_PARAM_* flags */
    double min, max;           /**< range (with HAS_MIN / HAS_MAX) for INT and FLOAT */
    const char *choices;       /**< DD_PARAM_ENUM: "fixed|random|..."; DD_PARAM_LIST: allowed
                                    items (NULL: any) */
    const char *doc;           /**< one-line documentation (required, non-empty) */
} dd_param_spec;

/** Validated options of one component or stage: every key in the spec is
 * present (explicit, overridden, or default), typed and in range. The getters
 * assert on a key absent from the spec (a programming error). */
typedef struct dd_options dd_options;

DD_API int dd_options_has(const dd_options *o,
                          const char *key); /**< set explicitly or by default */
DD_API int dd_options_is_set(const dd_options *o, const char *key); /**< set by the user */
DD_API int64_t dd_options_int(const dd_options *o, const char *key);
DD_API double dd_options_float(const dd_options *o, const char *key);
DD_API int dd_options_bool(const dd_options *o, const char *key);
/** String, enum or path value (paths already resolved). NULL if unset and no default. */
DD_API const char *dd_options_string(const dd_options *o, const char *key);
DD_API size_t dd_options_list_len(const dd_options *o, const char *key);
DD_API const char *dd_options_list_item(const dd_options *o, const char *key, size_t i);
/* DD_PARAM_ITEMS values. `i` indexes the items, `j` the keys of an item's
 * mapping; out-of-range indices give 0 / NULL. Strings are owned by the
 * options. */
/** Number of items. */
DD_API size_t dd_options_items_len(const dd_options *o, const char *key);
/** Item i's kind: the word, or the one key of its mapping ("conv"). */
DD_API const char *dd_options_item_kind(const dd_options *o, const char *key, size_t i);
/** "file:line:col" of item i (or "<default>" / "--set ..."). */
DD_API const char *dd_options_item_where(const dd_options *o, const char *key, size_t i);
/** The scalar value of `{kind: value}`; NULL for a word or a mapping value. */
DD_API const char *dd_options_item_value(const dd_options *o, const char *key, size_t i);
/** "file:line:col" of that scalar value (the item's position if none). */
DD_API const char *dd_options_item_value_where(const dd_options *o, const char *key, size_t i);
/** Number of keys of `{kind: {k: v, ...}}` (0 for a word or a scalar value). */
DD_API size_t dd_options_item_n_args(const dd_options *o, const char *key, size_t i);
DD_API const char *dd_options_item_arg_key(const dd_options *o, const char *key, size_t i,
                                           size_t j);
DD_API const char *dd_options_item_arg_value(const dd_options *o, const char *key, size_t i,
                                             size_t j);
/** "file:line:col" of the key j of item i. */
DD_API const char *dd_options_item_arg_where(const dd_options *o, const char *key, size_t i,
                                             size_t j);
/** "file:line:col" of the value of `key` (or "<default>" / "--set"), for
 * errors a component finds later (e.g. an option combination it rejects). */
DD_API const char *dd_options_where(const dd_options *o, const char *key);

/** Builds options from a spec and `key=value` strings (NULL-terminated
 * array; values in YAML scalar syntax), for tests and programmatic use.
 * Validates exactly as the pipeline loader does. Caller owns *out. */
DD_API dd_status dd_options_from_strings(const dd_param_spec *spec, const char *const *kv,
                                         dd_options **out);
DD_API void dd_options_destroy(dd_options *o);

#ifdef __cplusplus
}
#endif
#endif
