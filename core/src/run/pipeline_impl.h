/* distill (internal) — the loaded pipeline's representation, shared by the
 * loader (run/pipeline.c) and its getters and writers
 * (run/pipeline_access.c). Nothing else includes this. */
#ifndef DD_PIPELINE_IMPL_H
#define DD_PIPELINE_IMPL_H

#include "run/pipeline.h"
#include "run/stage_table.h"

enum { DD_PIPELINE_N_KINDS = 4 };

struct dd_pipeline {
    char *path, *dir;
    const dd_registry *reg;
    dd_options *top;
    dd_options *stage_opts[DD_STAGE_COUNT]; /**< stages with a section only */
    int stage_present[DD_STAGE_COUNT];      /**< their section was written or --set */
    dd_options *comp_opts[DD_PIPELINE_N_KINDS];
    const dd_component *comp[DD_PIPELINE_N_KINDS];
    int comp_present[DD_PIPELINE_N_KINDS];
    dd_stage stages[DD_STAGE_COUNT];
    size_t n_stages;
    /* evaluate.architectures: model components of the cross_architecture
     * protocol, loaded like the model section. */
    size_t n_arch;
    const dd_component *arch_comp[DD_PIPELINE_MAX_ARCH];
    dd_options *arch_opts[DD_PIPELINE_MAX_ARCH];
};

#endif
