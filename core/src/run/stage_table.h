/* distill (internal) — the stages of a pipeline, listed once: each stage's
 * section (named like the stage; spec in config/schema.c), when it runs by
 * default, what it needs before it, and the function that runs it (names:
 * DD_STAGE_LIST in config/schema.h). The pipeline loader, the runner and the CLI all read this
 * table. */
#ifndef DD_STAGE_TABLE_H
#define DD_STAGE_TABLE_H

#include "config/schema.h"
#include "base/export.h"
#include "distill/param.h"
#include "distill/status.h"

struct dd_run;

/** When a stage runs if the pipeline does not list `stages`. */
typedef enum dd_stage_default {
    DD_STAGE_ALWAYS = 0,           /**< every run */
    DD_STAGE_IF_SECTION,           /**< its section is written (or --set) */
    DD_STAGE_IF_SECTION_OR_OUTPUT, /**< that, or a stage that produces a set runs */
} dd_stage_default;

enum {
    DD_STAGE_NEEDS_LOAD = 1u << 0,  /**< the load stage must come before it */
    DD_STAGE_NEEDS_MODEL = 1u << 1, /**< the pipeline needs a model section */
    DD_STAGE_NEEDS_OBJECTIVE = 1u << 2,
    DD_STAGE_PRODUCES_SET = 1u << 3, /**< makes or evaluates a distilled set */
    DD_STAGE_HAS_SECTION = 1u << 4,  /**< options in the section named like the stage */
};

typedef struct dd_stage_def {
    dd_stage id;
    dd_stage_default when;
    unsigned flags; /**< DD_STAGE_NEEDS_*, DD_STAGE_PRODUCES_SET, DD_STAGE_HAS_SECTION */
    dd_status (*run)(struct dd_run *run);
} dd_stage_def;

/** The definition of stage s (s < DD_STAGE_COUNT). */
DD_INTERNAL const dd_stage_def *dd_stage_get(dd_stage s);
/** The pipeline section holding a stage's options (its name), NULL for a
 * stage without one. */
DD_INTERNAL const char *dd_stage_section(dd_stage s);
/** Parameter spec of a stage's section (NULL for a stage without one). */
DD_INTERNAL const dd_param_spec *dd_stage_spec(dd_stage s);

#endif
