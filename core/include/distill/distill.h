/* distill — umbrella header for plugins and tools. */
#ifndef DISTILL_DISTILL_H
#define DISTILL_DISTILL_H

#include "distill/export.h"
#include "distill/status.h"
#include "distill/log.h"
#include "distill/param.h"
#include "distill/plugin.h"
#include "distill/tensor.h"
#include "distill/dataset.h"
#include "distill/limits.h"
#include "distill/model.h"
#include "distill/objective.h"

/** Library version, e.g. "0.1.0". */
DD_API const char *dd_version(void);

#endif
