/* How depthwise_direct lays a layer out (depthwise_layout.c): which kernel path runs it, how
 * its output is cut into tasks, and the geometry of each worker's staging buffers. Planning
 * (depthwise_direct.c's configure and cost) and running (its row drivers) both read it from
 * here, so the two never disagree on a size or an offset. */
#ifndef CONVBLAS_DEPTHWISE_LAYOUT_H
#define CONVBLAS_DEPTHWISE_LAYOUT_H

#include "convblas_internal.h"

enum { CB_DW_ALIGN = 16 }; /* floats of slack to start a buffer on a 64-byte boundary */

/* How a task's input reaches the kernels. channels_last: the lane-vector kernels read rows
 * staged into a ring (STAGED) or the input itself (IN_PLACE), or the plain path runs (PLAIN:
 * fewer channels than a vector, or an absurd dilation). channels_first: a zero-padded window
 * of one channel (WINDOW). */
typedef enum {
    CB_DW_PLAIN,
    CB_DW_IN_PLACE,
    CB_DW_STAGED,
    CB_DW_WINDOW,
    /* 3x3 of stride 1: the strip kernels of depthwise_strips.c, their rows stored in the
     * output, or passed through a buffer; where they do not fit a task, the path path_of
     * gives. */
    CB_DW_STRIPS,
    CB_DW_STRIPS_BUFFERED
} cb_dw_path;

cb_dw_path cb_dw_path_of(const cb_problem *p);
/* The path for the input at `in` and the output (or SEPARABLE's tile) at `out`: the strips,
 * path_of's, or STAGED where the kernels could not read the input in place by whole cache
 * lines (the workspace has room for each). */
cb_dw_path cb_dw_path_at(const cb_problem *p, const float *in, const float *out);
/* path_at without the strips: what runs a task they do not fit. */
cb_dw_path cb_dw_rows_path_at(const cb_problem *p, const float *in);

static inline bool cb_dw_channels_last(const cb_problem *p) {
    return p->format == CONVBLAS_CHANNELS_LAST;
}

/* Whether the kernels finish the outputs in registers (bias, relu and relu6 as a clamp;
 * SEPARABLE's activation follows the pointwise stage); other activations follow on the
 * rows just written. */
static inline bool cb_dw_fused(const cb_problem *p) {
    return p->has_pointwise || p->activation == CONVBLAS_LINEAR || p->activation == CONVBLAS_RELU ||
           p->activation == CONVBLAS_RELU6;
}

/* STAGED 3x3 windows of stride 1 run two output rows at once: oh with oh + d_h. */
bool cb_dw_pairs(const cb_problem *p);

/* How the output is cut into tasks: image, then one of `bands` near-equal bands of whole
 * rows (at most `band` rows), or when band is 1 a segment of `seg` columns of one row, then
 * one of `parts` shares of the channels (depthwise alone). params->split holds bands,
 * params->tile the positions of the largest task and params->tasks the product of the
 * counts. */
typedef struct cb_dw_layout {
    int64_t band, seg, bands, segs, parts;
} cb_dw_layout;

/* The layout for `threads` workers whose buffers fit `budget` floats and the cache. */
cb_dw_layout cb_dw_layout_plan(const cb_problem *p, int threads, int64_t budget);
/* The layout a plan's params describe. */
cb_dw_layout cb_dw_layout_of(const cb_problem *p, const cb_params *params);

/* Floats of a worker's staging (ring and row pointers, in place the row pointers, or the
 * channels_first window), and with SEPARABLE's intermediate tile after it. */
int64_t cb_dw_stage_floats(const cb_problem *p, const cb_dw_layout *l);
int64_t cb_dw_worker_floats(const cb_problem *p, const cb_dw_layout *l);

/* Input floats all tasks read or stage together, halo included: for the cost. */
double cb_dw_input_read(const cb_problem *p, const cb_params *params);

/* One task: image n, output rows [oh0, oh1), columns [ow0, ow1), and lanes [c0, c1). */
typedef struct cb_dw_tile {
    int64_t n, oh0, oh1, ow0, ow1;
    int64_t c0, c1; /* channels_last: output channels; channels_first: input channels */
    /* Sweep the rows bottom to top (the strips): the even bands of several, so that two
     * neighbouring bands' sweeps end away from each other (see cb_dw_locate). */
    bool upward;
} cb_dw_tile;

/* Task `task` of the layout, channel shares aligned to out's cache lines. */
cb_dw_tile cb_dw_locate(const cb_problem *p, const cb_dw_layout *l, int64_t task, const float *out);

/* The ring of staged rows (STAGED) for `count` output columns: ring_rows slots of
 * slot_floats, slot k at ring_offset(slot, k), ring_floats in all. */
int64_t cb_dw_ring_rows(const cb_problem *p);
int64_t cb_dw_slot_floats(const cb_problem *p, int64_t count);
int64_t cb_dw_ring_offset(int64_t slot, int64_t k);
int64_t cb_dw_ring_floats(const cb_problem *p, int64_t count);

#endif
