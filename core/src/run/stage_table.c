/* distill — the stage table (see stage_table.h). */
#include "run/stage_table.h"

#include "config/schema.h"
#include "run/stages.h"

static const dd_stage_def table[DD_STAGE_COUNT] = {
    {DD_STAGE_FETCH, DD_STAGE_ALWAYS, 0, dd_stage_fetch},
    {DD_STAGE_LOAD, DD_STAGE_ALWAYS, 0, dd_stage_load},
    {DD_STAGE_PRETRAIN, DD_STAGE_IF_SECTION,
     DD_STAGE_HAS_SECTION | DD_STAGE_NEEDS_LOAD | DD_STAGE_NEEDS_MODEL | DD_STAGE_NEEDS_OBJECTIVE,
     dd_stage_pretrain},
    {DD_STAGE_DISTILL, DD_STAGE_IF_SECTION,
     DD_STAGE_HAS_SECTION | DD_STAGE_NEEDS_LOAD | DD_STAGE_NEEDS_MODEL | DD_STAGE_NEEDS_OBJECTIVE |
         DD_STAGE_PRODUCES_SET,
     dd_stage_distill},
    {DD_STAGE_EVALUATE, DD_STAGE_IF_SECTION,
     DD_STAGE_HAS_SECTION | DD_STAGE_NEEDS_LOAD | DD_STAGE_NEEDS_MODEL | DD_STAGE_NEEDS_OBJECTIVE |
         DD_STAGE_PRODUCES_SET,
     dd_stage_evaluate},
    {DD_STAGE_REPORT, DD_STAGE_IF_SECTION_OR_OUTPUT, DD_STAGE_HAS_SECTION, dd_stage_report},
};

const dd_stage_def *dd_stage_get(dd_stage s) {
    return (unsigned)s < DD_STAGE_COUNT ? &table[s] : NULL;
}

const char *dd_stage_section(dd_stage s) {
    const dd_stage_def *d = dd_stage_get(s);
    return d && (d->flags & DD_STAGE_HAS_SECTION) ? dd_stage_name(s) : NULL;
}

const dd_param_spec *dd_stage_spec(dd_stage s) {
    const char *section = dd_stage_section(s);
    return section ? dd_section_spec(section) : NULL;
}
