/* distill (internal) — the parameter specs of the core-owned pipeline
 * sections: the stage sections (pretrain, distill, evaluate, report) and the
 * core keys of the component sections (dataset, model, objective), which are
 * merged with the selected plugin's own spec, and the pipeline's top-level
 * keys. The stages' names are listed once here (DD_STAGE_LIST); what each
 * stage does is in run/stage_table.h. */
#ifndef DD_SCHEMA_H
#define DD_SCHEMA_H

#include "base/export.h"

#include "distill/param.h"
#include "distill/host.h"
#include "distill/plugin.h"

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

/** "fetch", "load", ...; "?" out of range. */
DD_INTERNAL const char *dd_stage_name(dd_stage s);
/** DD_ERR_NOT_FOUND for an unknown name (the message lists the stages). */
DD_INTERNAL dd_status dd_stage_parse(const char *name, dd_stage *out);
/** "fetch|load|pretrain|distill|evaluate|report" */
DD_INTERNAL const char *dd_stage_choices(void);

#endif
