/* distill (internal) — building dd_options: the pipeline loader (and
 * dd_options_from_strings) create an options set from one or more specs, set
 * values with where they came from, then finalize (defaults, required keys,
 * path resolution). Also spec validation and value formatting. */
#ifndef DD_OPTIONS_H
#define DD_OPTIONS_H

#include "base/export.h"

#include <stdio.h>

#include "distill/param.h"
#include "config/yaml_tree.h"
#include "distill/host.h"

/** Creates an empty options set over the concatenation of `n_specs` spec
 * arrays (each NULL-name-terminated; NULL entries skipped). `context` (e.g.
 * "distill", may be NULL) qualifies key names in errors: 'distill.steps'.
 * The specs must outlive the options. A key defined twice is DD_ERR_INVALID. */
DD_INTERNAL dd_status dd_options_create(const char *context, const dd_param_spec *const *specs,
                                        size_t n_specs, dd_options **out);

/** Index of `key` or -1. */
DD_INTERNAL int dd_options_index(const dd_options *o, const char *key);
/** Nonzero if some key starts with "prefix." (a nested mapping). */
DD_INTERNAL int dd_options_has_group(const dd_options *o, const char *prefix);
/** Comma-separated list of the keys under "prefix." (all keys if prefix is
 * NULL or ""), relative to the prefix, each group listed once. Caller frees. */
DD_INTERNAL char *dd_options_valid_keys(const dd_options *o, const char *prefix);

/** Sets `key` (or, for a mapping value, every key under the group "key.")
 * from a YAML node written in `file` with the key at key_line:key_col. A
 * list is accepted for DD_PARAM_LIST (a scalar there is a one-item list).
 * Errors point at the value ("file:line:col: invalid value for ...") or, for
 * unknown keys, at the key, listing the valid keys. Relative paths resolve
 * against `base_dir` (NULL: the current directory). */
DD_INTERNAL dd_status dd_options_set_node(dd_options *o, const char *key, const dd_ynode *value,
                                          const char *file, int key_line, int key_col,
                                          const char *base_dir);
/** Sets `key` from `text` in YAML syntax (a scalar or a flow sequence),
 * recording `where` (e.g. "--set"); errors are prefixed with `err_prefix`
 * (e.g. "--set distill.steps=x"; NULL: `where`). */
DD_INTERNAL dd_status dd_options_set_yaml_text(dd_options *o, const char *key, const char *text,
                                               const char *where, const char *err_prefix,
                                               const char *base_dir);
/** Parses "key=value" and sets it as above, with err_prefix "<where> key=value". */
DD_INTERNAL dd_status dd_options_set_kv(dd_options *o, const char *kv, const char *where,
                                        const char *base_dir);
/** Sets a default computed at load time (e.g. a dataset name taken from the
 * plugin) unless the user set the key: counts as a default. */
DD_INTERNAL dd_status dd_options_set_default(dd_options *o, const char *key, const char *text);
/** Error "<prefix>: unknown key 'k' in '<context>' (valid keys: ...)" for a
 * dotted key, listing the keys of its group. Returns DD_ERR_INVALID. */
DD_INTERNAL dd_status dd_options_unknown_key(const dd_options *o, const char *key,
                                             const char *prefix);

/** Fills defaults and checks required keys; a missing one is reported as
 * "<where_missing>: missing required key 'k' in '<context>'". */
DD_INTERNAL dd_status dd_options_finalize(dd_options *o, const char *where_missing);

DD_INTERNAL size_t dd_options_count(const dd_options *o);
DD_INTERNAL const dd_param_spec *dd_options_spec(const dd_options *o, size_t i);
/** The value of entry i as YAML flow text ("10", "0.02", "true", "\"a b\"",
 * "[random, average]"); "null" if unset. Caller frees. */
DD_INTERNAL char *dd_options_format(const dd_options *o, size_t i);
DD_INTERNAL const char *dd_options_context(const dd_options *o);
/** Where entry i was set ("<default>" / "--set" / "file:line:col"), NULL if unset. */
DD_INTERNAL const char *dd_options_where_at(const dd_options *o, size_t i);

/** Checks one spec array as a plugin or stage declares it: names present,
 * unique and well-formed, known types, enum choices present, docs present,
 * min <= max, and every default valid against its own spec. `owner` names
 * the spec in errors ("model 'lenet'"). */
DD_INTERNAL dd_status dd_param_spec_check(const dd_param_spec *spec, const char *owner);

/** Writes `s` as a YAML scalar (quoted if it would not read back as the
 * same plain string). */
DD_INTERNAL void dd_yaml_write_scalar(FILE *f, const char *s);

#endif
