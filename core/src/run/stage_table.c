/* distill — the stage table (see stage_table.h). */
#include "run/stage_table.h"

#include <stdio.h>
#include <string.h>

#include "config/schema.h"
#include "run/stages.h"

static const dd_stage_def table[DD_STAGE_COUNT] = {
    {DD_STAGE_FETCH, "fetch", NULL, DD_STAGE_ALWAYS, 0, dd_stage_fetch},
    {DD_STAGE_LOAD, "load", NULL, DD_STAGE_ALWAYS, 0, dd_stage_load},
    {DD_STAGE_PRETRAIN, "pretrain", "pretrain", DD_STAGE_IF_SECTION,
     DD_STAGE_NEEDS_LOAD | DD_STAGE_NEEDS_MODEL | DD_STAGE_NEEDS_OBJECTIVE, dd_stage_pretrain},
    {DD_STAGE_DISTILL, "distill", "distill", DD_STAGE_IF_SECTION,
     DD_STAGE_NEEDS_LOAD | DD_STAGE_NEEDS_MODEL | DD_STAGE_NEEDS_OBJECTIVE | DD_STAGE_PRODUCES_SET,
     dd_stage_distill},
    {DD_STAGE_EVALUATE, "evaluate", "evaluate", DD_STAGE_IF_SECTION,
     DD_STAGE_NEEDS_LOAD | DD_STAGE_NEEDS_MODEL | DD_STAGE_NEEDS_OBJECTIVE | DD_STAGE_PRODUCES_SET,
     dd_stage_evaluate},
    {DD_STAGE_REPORT, "report", "report", DD_STAGE_IF_SECTION_OR_OUTPUT, 0, dd_stage_report},
};

// The table's names and the X-macro's must agree: checked by test_pipeline.

const dd_stage_def *dd_stage_get(dd_stage s) {
    return (unsigned)s < DD_STAGE_COUNT ? &table[s] : NULL;
}

const char *dd_stage_name(dd_stage s) {
    return (unsigned)s < DD_STAGE_COUNT ? table[s].name : "?";
}

const char *dd_stage_choices(void) {
    return DD_STAGE_CHOICES;
}

dd_status dd_stage_parse(const char *name, dd_stage *out) {
    for (int i = 0; i < DD_STAGE_COUNT; i++) {
        if (name && strcmp(name, table[i].name) == 0) {
            *out = (dd_stage)i;
            return DD_OK;
        }
    }
    char list[128] = "";
    size_t len = 0;
    for (int i = 0; i < DD_STAGE_COUNT; i++)
        len +=
            (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", table[i].name);
    return dd_error_set(DD_ERR_NOT_FOUND, "unknown stage '%s' (stages: %s)", name ? name : "(null)",
                        list);
}

const dd_param_spec *dd_stage_spec(dd_stage s) {
    const dd_stage_def *d = dd_stage_get(s);
    return d && d->section ? dd_section_spec(d->section) : NULL;
}
