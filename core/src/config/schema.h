/* distill (internal) — the pipeline's stages and the parameter specs of the
 * core-owned sections: the stage sections (pretrain, distill, evaluate,
 * report) and the core keys of the component sections (dataset, model,
 * objective), which are merged with the selected plugin's own spec. */
#ifndef DD_STAGES_H
#define DD_STAGES_H

#include "distill/param.h"
#include "distill/plugin.h"

/** Stages in the order they run. */
typedef enum dd_stage {
    DD_STAGE_FETCH = 0,
    DD_STAGE_LOAD,
    DD_STAGE_PRETRAIN,
    DD_STAGE_DISTILL,
    DD_STAGE_EVALUATE,
    DD_STAGE_REPORT,
    DD_STAGE_COUNT
} dd_stage;

/** "fetch", "load", ... */
DD_API const char *dd_stage_name(dd_stage s);
/** DD_ERR_NOT_FOUND for an unknown name (message lists the stages). */
DD_API dd_status dd_stage_parse(const char *name, dd_stage *out);
/** "fetch|load|pretrain|distill|evaluate|report" */
DD_API const char *dd_stage_choices(void);

/** Spec of a stage section ("pretrain", "distill", "evaluate", "report"),
 * NULL for anything else. */
DD_API const dd_param_spec *dd_stage_spec(const char *section);
/** Core keys of a component section (dataset: plugin, name, path, ...). */
DD_API const dd_param_spec *dd_section_core_spec(dd_component_kind kind);
/** "dataset", "model", "objective". */
DD_API const char *dd_section_name(dd_component_kind kind);
/** Spec of the pipeline's top-level scalar keys (name, description, seed, stages). */
DD_API const dd_param_spec *dd_pipeline_top_spec(void);

#endif
