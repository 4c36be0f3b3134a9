/* distill (internal) — the layer list a model plugin builds with the
 * dd_graph_* API, and the graph's lifetime (the runtime owns it). */
#ifndef DD_GRAPH_H
#define DD_GRAPH_H

#include "base/export.h"

#include <stddef.h>
#include <stdint.h>

#include "compute/layer.h"
#include "distill/model.h"

struct dd_graph {
    int in_c, in_h, in_w;
    int cur_c, cur_h, cur_w;
    dd_layer *layers;
    int n_layers, cap;
    size_t n_params;
    dd_loss_kind loss;
    dd_status error; /**< first builder error (sticky) */
};

/** Empty graph for an input of c×h×w. Caller owns *out. */
DD_INTERNAL dd_status dd_graph_create(int c, int h, int w, dd_graph **out);
DD_INTERNAL void dd_graph_destroy(dd_graph *g);
#endif
