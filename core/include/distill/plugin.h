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

/** Bumped on any incompatible change; the loader requires an exact match.
 * 2: datasets hold their pixels as stored (dd_dataset.dtype, .pixels). */
#define DD_PLUGIN_ABI_VERSION 2u
#define DD_PLUGIN_ENTRY_SYMBOL "dd_plugin_entry"

typedef enum dd_component_kind {
    DD_COMPONENT_DATASET = 1,   /**< ops: dd_dataset_ops (distill/dataset.h) */
    DD_COMPONENT_MODEL = 2,     /**< ops: dd_model_ops (distill/model.h) */
    DD_COMPONENT_OBJECTIVE = 3, /**< ops: dd_objective_ops (distill/objective.h) */
} dd_component_kind;

/** One feature of a plugin. */
typedef struct dd_component {
    size_t struct_size; /**< sizeof(dd_component) as built */
    dd_component_kind kind;
    const char *name;            /**< unique per kind, e.g. "lenet" */
    const char *description;     /**< one line */
    const dd_param_spec *params; /**< NULL-name-terminated; may be NULL for none */
    const void *ops;             /**< kind's vtable; required */
    void *reserved[4];
} dd_component;

typedef struct dd_plugin_descriptor {
    uint32_t abi_version; /**< DD_PLUGIN_ABI_VERSION */
    size_t struct_size;   /**< sizeof(dd_plugin_descriptor) as built */
    const char *name;     /**< must equal the file's basename without ".so" */
    const char *version;  /**< plugin's own version, e.g. "1.0.0" */
    const char *description;
    size_t n_components;
    const dd_component *components;
    void *reserved[4];
} dd_plugin_descriptor;

typedef const dd_plugin_descriptor *(*dd_plugin_entry_fn)(void);

/** Defines the entry symbol returning `desc` (a static dd_plugin_descriptor). */
#define DD_PLUGIN_DEFINE(desc)                                                                     \
    DD_PLUGIN_EXPORT const dd_plugin_descriptor *dd_plugin_entry(void);                            \
    const dd_plugin_descriptor *dd_plugin_entry(void) {                                            \
        return &(desc);                                                                            \
    }

/** "dataset", "model", "objective". */
DD_API const char *dd_component_kind_str(dd_component_kind kind);

#ifdef __cplusplus
}
#endif
#endif
