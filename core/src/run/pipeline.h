/* distill (internal) — a pipeline file, loaded and validated: top-level keys,
 * the selected dataset/model/objective components with their options, the
 * stage sections' options and the stages to run. */
#ifndef DD_PIPELINE_H
#define DD_PIPELINE_H

#include "base/export.h"

#include <stdint.h>
#include <stdio.h>

#include "distill/param.h"
#include "distill/plugin.h"
#include "config/schema.h"
#include "distill/host.h"
#include "run/stage_table.h"

/** Stages to run, in order. */
DD_INTERNAL size_t dd_pipeline_stage_count(const dd_pipeline *p);
DD_INTERNAL dd_stage dd_pipeline_stage(const dd_pipeline *p, size_t i);
DD_INTERNAL int dd_pipeline_has_stage(const dd_pipeline *p, dd_stage s);

/** Options of a section: "dataset", "model", "objective" (NULL when the
 * pipeline has no such component), or "pretrain", "distill", "evaluate",
 * "report" (always present, defaults when the section is absent). */
DD_INTERNAL const dd_options *dd_pipeline_section(const dd_pipeline *p, const char *section);
/** Nonzero if the section was written in the file or given with --set. */
DD_INTERNAL int dd_pipeline_section_present(const dd_pipeline *p, const char *section);
/** The selected component of a kind (NULL if the pipeline has none) and its
 * options (core keys such as "plugin" plus the plugin's own). */
DD_INTERNAL const dd_component *dd_pipeline_component(const dd_pipeline *p, dd_component_kind kind);
DD_INTERNAL const dd_options *dd_pipeline_component_options(const dd_pipeline *p,
                                                            dd_component_kind kind);

/** evaluate.architectures: the other networks of the cross_architecture
 * protocol, each a model plugin with its options (validated like the model
 * section's). */
#define DD_PIPELINE_MAX_ARCH 8
DD_INTERNAL size_t dd_pipeline_arch_count(const dd_pipeline *p);
DD_INTERNAL const dd_component *dd_pipeline_arch(const dd_pipeline *p, size_t i,
                                                 const dd_options **options);

/** Writes the resolved pipeline (every key with its value) as YAML that
 * `distill run` accepts. */
DD_INTERNAL dd_status dd_pipeline_write_config(const dd_pipeline *p, FILE *f);

#endif
