/* distill — the plugin ABI. A plugin is a shared object exporting one symbol,
 * DD_PLUGIN_ENTRY_SYMBOL, returning a descriptor of the components it provides.
 * Structs are append-only: new members go at the end, and struct_size tells
 * the loader what the plugin was built with. */
#ifndef DISTILL_PLUGIN_H
#define DISTILL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "distill/export.h"
#include "distill/param.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Bumped on any incompatible change; the loader requires an exact match. */
#define DD_PLUGIN_ABI_VERSION 1u
#define DD_PLUGIN_ENTRY_SYMBOL "dd_plugin_entry"

typedef enum dd_component_kind {
    DD_COMPONENT_DATASET = 1,   /**< ops: dd_dataset_ops (distill/dataset.h) */
    DD_COMPONENT_MODEL = 2,     /**< ops: dd_model_ops (distill/model.h) */
    DD_COMPONENT_OBJECTIVE = 3, /**< ops: dd_objective_ops (distill/objective.h) */
} dd_component_kind;

/** One feature of a plugin. */
typedef struct dd_component {
    size_t struct_size;          /**< sizeof(dd_component) as built */
    dd_component_kind kind;
    const char *name;            /**< unique per kind, e.g. "lenet" */
    const char *description;     /**< one line */
    const dd_param_spec *params; /**< NULL-name-terminated; may be NULL for none */
    const void *ops;             /**< kind's vtable; required */
    void *reserved[4];
} dd_component;

typedef struct dd_plugin_descriptor {
    uint32_t abi_version;  /**< DD_PLUGIN_ABI_VERSION */
    size_t struct_size;    /**< sizeof(dd_plugin_descriptor) as built */
    const char *name;      /**< must equal the file's basename without ".so" */
    const char *version;   /**< plugin's own version, e.g. "1.0.0" */
    const char *description;
    size_t n_components;
    const dd_component *components;
    void *reserved[4];
} dd_plugin_descriptor;

typedef const dd_plugin_descriptor *(*dd_plugin_entry_fn)(void);

/** Defines the entry symbol returning `desc` (a static dd_plugin_descriptor). */
#define DD_PLUGIN_DEFINE(desc)                                                                     \
    DD_PLUGIN_EXPORT const dd_plugin_descriptor *dd_plugin_entry(void);                            \
    const dd_plugin_descriptor *dd_plugin_entry(void) { return &(desc); }

/** The set of loaded plugins (a registry). */
typedef struct dd_registry dd_registry;

/** Loads every *.so in the search path: DISTILL_PLUGIN_PATH (colon-separated),
 * then the build tree's plugin dir, then the install prefix's. A plugin whose
 * name is already loaded from an earlier directory is skipped (logged). A
 * broken plugin makes the call fail with its path and the reason, unless
 * `lenient` is set, in which case it is skipped with a warning.
 * Caller owns *out (dd_registry_destroy). */
DD_API dd_status dd_registry_load(int lenient, dd_registry **out);
/** Empty registry; add files with dd_registry_add_file. */
DD_API dd_status dd_registry_create(dd_registry **out);
/** dlopen(RTLD_NOW|RTLD_LOCAL) one file and validate it. */
DD_API dd_status dd_registry_add_file(dd_registry *r, const char *path);
DD_API void dd_registry_destroy(dd_registry *r);

/** Finds a component; DD_ERR_NOT_FOUND lists the names of that kind. */
DD_API dd_status dd_registry_find(const dd_registry *r, dd_component_kind kind, const char *name,
                                  const dd_component **out);
DD_API size_t dd_registry_plugin_count(const dd_registry *r);
DD_API const dd_plugin_descriptor *dd_registry_plugin(const dd_registry *r, size_t i);
DD_API const char *dd_registry_plugin_path(const dd_registry *r, size_t i);
DD_API const char *dd_component_kind_str(dd_component_kind kind);

/** Plugins refused by a lenient dd_registry_load: their paths and reasons. */
DD_API size_t dd_registry_refused_count(const dd_registry *r);
DD_API const char *dd_registry_refused_path(const dd_registry *r, size_t i);
DD_API const char *dd_registry_refused_reason(const dd_registry *r, size_t i);

/** The directories dd_registry_load searches, in order: each entry of
 * DISTILL_PLUGIN_PATH, then the build tree's plugin dir (only when this
 * libdistill is the build tree's) or <libdir>/distill/plugins next to the
 * installed libdistill, then the configured install prefix's plugin dir.
 * *dirs is a malloc'ed array of malloc'ed strings (caller frees each). */
DD_API dd_status dd_registry_plugin_dirs(char ***dirs, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
