/* SIMD kernels of depthwise_direct (depthwise_staged.c, depthwise_kernels.c). Each
 * computes finished outputs: the bias and a clamp (relu, relu6) are applied in registers,
 * so an output is written once; other activations are the caller's, on the tile just
 * written. */
#ifndef CONVBLAS_DEPTHWISE_KERNELS_H
#define CONVBLAS_DEPTHWISE_KERNELS_H

#include <stdint.h>

#include <stdbool.h>

/* The kernels that need AVX-512's 32 vector registers are built for it alone
 * (CB_TARGET_V4 of simd.h: target_clones would also build them for AVX2 and baseline,
 * where they would spill) and run where cb_cpu_v4() says. */
#include "simd.h"

/* What the kernels apply after the sum: nothing, max(x, lo), or min(max(x, lo), hi), with
 * NaN passed through as the epilogue's relu and relu6 do. */
typedef enum { CB_DW_NONE, CB_DW_LOW, CB_DW_BOTH } cb_dw_clamp;

/* channels_last from staged input (depthwise_staged.c): every kernel row's input row
 * copied by cb_dw_stage_row into a 64-byte-aligned buffer, one column each cs floats.
 * Output t, lane l (l < lanes, lanes >= 16):
 *   out[t * out_col + l] = bias[l] + sum_{i < nrows, j < kw}
 *                          rows[i][x_off + (t * s + j * d) * cs + l] * w[(i * kw + j) * w_tap + l].
 */
typedef struct cb_dw_staged {
    const float *const *rows; /* the staged rows of the kernel rows whose input row exists */
    int64_t nrows;
    int64_t x_off; /* floats added to each of rows: where output 0's window starts */
    int64_t cs;    /* cb_dw_stage_stride(lanes) */
    int64_t kw, s, d;
    const float *w; /* the kernel row of rows[0], tap 0, at lane 0 */
    int64_t w_tap;
    const float *bias; /* at lane 0; NULL: none */
    cb_dw_clamp clamp;
    float lo, hi;
    float *out; /* output 0, lane 0 */
    int64_t out_col;
    int64_t count, lanes;
    /* NULL, or the output row below (stride 1, dilation 1 vertically): the same sums from
     * rows[1..nrows], which has one more entry. */
    float *out2;
    /* rows are the input itself, read in place (aligned as the caller's buffer is, pixels
     * as wide as the channels): lanes go innermost, so that a block's pixels stream in
     * whole, but in the 3x3 blocks of stride 1, whose weights stay in registers. */
    bool in_place;
    /* In place: the input column of output 0's first tap (negative in the padding) and the
     * row's columns. Taps outside [0, in_w) are skipped: x_off + (t * s + j * d) * cs is
     * then read only where x0 + t * s + j * d is a column of the row. */
    int64_t x0, in_w;
} cb_dw_staged;

void cb_dw_cl_staged(const cb_dw_staged *g);

/* The lane vector after o, of `lanes` lanes: lane `head` after lane 0 (whole cache lines
 * from there; head 0: whole vectors from 0), the last moved back to end at the last lane
 * (it overlaps the one before and writes the same values again). The caller stops after
 * the vector that ends at the last lane. */
static inline int64_t cb_dw_next_lanes(int64_t o, int64_t head, int64_t lanes) {
    int64_t n = o < head ? head : o + VL;
    return n + VL > lanes ? lanes - VL : n;
}

/* channels_last k x k depthwise (3x3 of stride 1 or 2, 5x5) by vertical strips
 * (depthwise_strips.c): output rows [oh0, oh1) and columns [ow0, ow1), lanes [0, lanes):
 *   out[(oh - oh0) * out_row + (ow - ow0) * out_col + l] = bias[l] +
 *       sum_{i, j < k, (ih, iw) inside the input}
 *           in[ih * in_row + iw * in_col + l] * w[(i * k + j) * w_tap + l],
 *   ih = oh * s - pad_top + i * d_h, iw = ow * s - pad_left + j * d_w. */
typedef struct cb_dw_strips {
    const float *in; /* row 0, column 0, the first lane */
    int64_t in_h, in_w, in_row, in_col;
    int64_t k; /* the kernel's size, 3 (3x3) or 5 (5x5) */
    int64_t s; /* the stride, 1 or 2 */
    int64_t pad_top, pad_left, d_h, d_w;
    const float *w; /* tap 0, the first lane */
    int64_t w_tap;
    const float *bias; /* NULL: none */
    cb_dw_clamp clamp;
    float lo, hi;
    float *out; /* row oh0, column ow0, the first lane */
    int64_t out_row, out_col;
    int64_t oh0, oh1, ow0, ow1, lanes;
    bool upward; /* the rows swept bottom to top */
} cb_dw_strips;

/* Whether this CPU has the strip kernels (AVX-512). */
bool cb_dw_strips_available(void);
/* Whether they compute g: 3x3 of stride 1 and dilation 1 or 2, or of stride 2 and
 * dilation 1, each strip's window crossing an end of the input row by 0 or d_w columns (as
 * "same" and "valid" padding do); 5x5 of stride and dilation 1; rows of 4 columns or
 * more. */
bool cb_dw_strips_fit(const cb_dw_strips *g);
/* Output rows of one class of rows (d_h of them) in a call with a buffer, at most. */
enum { CB_DW_STRIP_ROWS = 16 };
/* Floats of that buffer. */
int64_t cb_dw_strips_buffer_floats(void);
/* Computes g; buffer: NULL to store the sums in the output, or cb_dw_strips_buffer_floats
 * floats on a cache line to pass each sweep's rows through (oh1 - oh0 <= CB_DW_STRIP_ROWS
 * * d_h), where the output's stores would delay the input's loads (depthwise_strips.c). */
void cb_dw_strips_run(const cb_dw_strips *g, float *buffer);

/* The column stride of a staged row of `lanes` lanes: whole vectors, an odd number of
 * cache lines, so that the columns of a window fall in different L1 sets. */
int64_t cb_dw_stage_stride(int64_t lanes);
/* L1 sets that consecutive pixels of `channels` floats fall in (64 sets of 64 bytes):
 * 1024 channels put every pixel in the same one. */
int64_t cb_dw_pixel_sets(int64_t channels);

/* Stages columns [x0, x0 + span) of an input row (in_w columns of `channels` floats):
 * dst[k * cs + l] = src[(x0 + k) * channels + (c0 + l) / m] for l < lanes (lanes >= 16),
 * zero where the column is outside [0, in_w). m is the depth_multiplier: lane l is output
 * channel c0 + l. */
void cb_dw_stage_row(float *dst, int64_t cs, const float *src, int64_t in_w, int64_t channels,
                     int64_t x0, int64_t span, int64_t c0, int64_t lanes, int64_t m);

/* channels_last read in place, for what staging does not take (fewer than 16 channels, a
 * window too wide to stage): output channel o of column ow is
 *   bias[o] + sum_{i < rows, j < kw, column u inside [0, in_w)}
 *            x[i * x_row + u * cs + o / m] * w[(i * kw + j) * w_tap + o],
 *   u = ow * s + j * d - pad,
 * stored at out[ow * out_col + o]. Rows are the kernel rows whose input row exists. */
typedef struct cb_dw_row {
    const float *x; /* the first kernel row's input row, column 0, channel 0 */
    int64_t x_row;  /* floats from one kernel row's input row to the next's */
    int64_t rows;   /* kernel rows whose input row exists (0: bias only) */
    int64_t in_w;   /* the input's columns */
    int64_t cs;     /* floats from one input column to the next */
    int64_t m;      /* depth_multiplier */
    int64_t kw, s, d, pad;
    const float *w;    /* the first kernel row's tap 0, channel 0 */
    int64_t w_tap;     /* floats from one tap to the next */
    const float *bias; /* NULL: none */
    cb_dw_clamp clamp;
    float lo, hi;
    float *out; /* output column 0, channel 0 */
    int64_t out_col;
    int64_t c0, c1; /* the channels to compute */
} cb_dw_row;

/* Columns [ow0, ow1) of the row. */
void cb_dw_cl_row(const cb_dw_row *r, int64_t ow0, int64_t ow1);

/* A band of output rows of one channel of a channels_first layer, read from a zero-padded
 * window (see cb_dw_window) so that no load is conditional:
 *   out[r * out_row + t] = bias + sum_{i < kh, j < kw} w[(i * kw + j) * w_tap] *
 *                          window value at row r * s_h + i * d_h, column t * s_w + j * d_w. */
typedef struct cb_dw_plane {
    const float *x;
    int64_t kh, kw, s_h, s_w, d_h, d_w;
    int64_t rows, count; /* output rows, output columns */
    const float *w;      /* this channel's tap 0 */
    int64_t w_tap;
    float bias;
    cb_dw_clamp clamp;
    float lo, hi;
    float *out;
    int64_t out_row;
} cb_dw_plane;

/* The window's layout: `rows` rows of `row` floats; a row stores its columns split by
 * phase (column u at (u % s_w) * phase + u / s_w), so that every tap of a strided row reads
 * consecutive floats. */
typedef struct cb_dw_window {
    int64_t rows, row, phase;
} cb_dw_window;

cb_dw_window cb_dw_window_of(int64_t out_rows, int64_t count, int64_t kh, int64_t kw, int64_t s_h,
                             int64_t s_w, int64_t d_h, int64_t d_w);

/* Copies rows [ih0, ih0 + win->rows) x columns [iw0, ...) of a plane of in_h x in_w into
 * the window, zeros where they fall outside. */
void cb_dw_fill_window(const cb_dw_window *win, float *dst, const float *plane, int64_t in_h,
                       int64_t in_w, int64_t ih0, int64_t iw0, int64_t s_w);

/* Where each tap of a plane reads in the window, from its output's column: the same for
 * every channel of a task, so computed once for them all. n is 0 for rows shorter than a
 * vector and kernels of more than CB_DW_TAPS taps, which a slower loop takes. */
enum { CB_DW_TAPS = 128 };
typedef struct cb_dw_taps {
    int64_t n, off[CB_DW_TAPS];
    uint16_t head[CB_DW_TAPS], tail[CB_DW_TAPS]; /* in place: see cb_dw_cf_in_place */
} cb_dw_taps;

void cb_dw_cf_offsets(const cb_dw_plane *q, const cb_dw_window *win, cb_dw_taps *taps);

void cb_dw_cf_plane(const cb_dw_plane *q, const cb_dw_window *win, const cb_dw_taps *taps);

/* Whether the task's planes can be read where they lie instead of from a window: 1D rows
 * of stride 1 on an AVX-512 CPU, where only a row's first and last vectors reach past it
 * (x0: the input column of output column 0's first tap, negative in the padding; in_w: the
 * row's length). If so, sets the lanes of those vectors that each tap reads inside the row.
 * The copy into the window was a third of the kernels' time on matchbox (13 taps over rows
 * of 128), and the window's unaligned loads cost what the input's do. */
bool cb_dw_cf_in_place(const cb_dw_plane *q, cb_dw_taps *taps, int64_t x0, int64_t in_w);

/* The plane's output row from its input row, after cb_dw_cf_in_place said yes. */
void cb_dw_cf_row_in_place(const cb_dw_plane *q, const cb_dw_taps *taps, const float *row,
                           int64_t x0);

#endif
