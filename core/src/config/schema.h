/* distill (internal) — the parameter specs of the core-owned pipeline
 * sections: the stage sections (pretrain, distill, evaluate, report) and the
 * core keys of the component sections (dataset, model, objective), which are
 * merged with the selected plugin's own spec. The stages themselves are
 * listed once, in run/stage_table.h. */
#ifndef DD_SCHEMA_H
#define DD_SCHEMA_H

#include "distill/param.h"
#include "distill/plugin.h"

/** Spec of a stage section ("pretrain", "distill", "evaluate", "report"),
 * NULL for anything else. */
DD_API const dd_param_spec *dd_section_spec(const char *section);
/** Core keys of a component section (dataset: plugin, name, path, ...). */
DD_API const dd_param_spec *dd_section_core_spec(dd_component_kind kind);
/** "dataset", "model", "objective". */
DD_API const char *dd_section_name(dd_component_kind kind);
#endif
