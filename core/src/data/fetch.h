/* distill (internal) — making a dataset available: its manifest, download
 * from the mirrors (data/transport), verification, unpacking (data/unpack)
 * into the cache (data/cache), and the listing of `distill datasets`. See
 * docs/datasets.md. */
#ifndef DD_FETCH_H
#define DD_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "distill/export.h"
#include "distill/status.h"
#include "data/cache.h"
#include "distill/host.h"

#endif
