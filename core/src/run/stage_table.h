/* distill (internal) — the stages of a pipeline, listed once: each stage's
 * name, the pipeline section holding its options (spec in config/schema.c),
 * when it runs by default, what it needs before it, and the function that
 * runs it. The pipeline loader, the runner and the CLI all read this table. */
#ifndef DD_STAGE_TABLE_H
#define DD_STAGE_TABLE_H

#include "distill/export.h"
#include "distill/param.h"
#include "distill/status.h"

struct dd_run;

/* X-macro of the stages in the order they run: id, name. */
#define DD_STAGE_LIST(X)                                                                           \
    X(FETCH, "fetch")                                                                              \
    X(LOAD, "load")                                                                                \
    X(PRETRAIN, "pretrain")                                                                        \
    X(DISTILL, "distill")                                                                          \
    X(EVALUATE, "evaluate")                                                                        \
    X(REPORT, "report")

typedef enum dd_stage {
#define DD_STAGE_ENUM_(id, name) DD_STAGE_##id,
    DD_STAGE_LIST(DD_STAGE_ENUM_)
#undef DD_STAGE_ENUM_
        DD_STAGE_COUNT
} dd_stage;

/** "fetch|load|pretrain|distill|evaluate|report", as an address constant
 * (usable in a static parameter spec). */
#define DD_STAGE_BAR_NAME_(id, name) "|" name
#define DD_STAGE_CHOICES (DD_STAGE_LIST(DD_STAGE_BAR_NAME_) + 1)

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
};

typedef struct dd_stage_def {
    dd_stage id;
    const char *name;
    const char *section; /**< pipeline section of its options; NULL: none */
    dd_stage_default when;
    unsigned flags; /**< DD_STAGE_NEEDS_*, DD_STAGE_PRODUCES_SET */
    dd_status (*run)(struct dd_run *run);
} dd_stage_def;

/** The definition of stage s (s < DD_STAGE_COUNT). */
DD_API const dd_stage_def *dd_stage_get(dd_stage s);
/** "fetch", "load", ...; "?" out of range. */
DD_API const char *dd_stage_name(dd_stage s);
/** DD_ERR_NOT_FOUND for an unknown name (the message lists the stages). */
DD_API dd_status dd_stage_parse(const char *name, dd_stage *out);
/** "fetch|load|pretrain|distill|evaluate|report" */
DD_API const char *dd_stage_choices(void);
/** Parameter spec of a stage's section (NULL for a stage without one). */
DD_API const dd_param_spec *dd_stage_spec(dd_stage s);

#endif
