/* distill (internal) — giving freed heap memory back to the system. */
#ifndef DD_HEAP_H
#define DD_HEAP_H

#include "base/export.h"

/** Returns the heap's free memory to the system (glibc's malloc keeps freed
 * blocks, in every thread's arena, for reuse). For the end of a phase whose
 * buffers the next phase does not reuse: a model's workspaces, an engine.
 * Costs about a millisecond; a no-op elsewhere than glibc. */
DD_INTERNAL void dd_heap_trim(void);

#endif
