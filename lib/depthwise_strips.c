/* channels_last depthwise by vertical strips: one lane vector of nw output columns swept
 * down the rows, the weight vectors and the sums of every output row the current input
 * row feeds in registers; each input row of the strip's window is loaded once, and the
 * output row it completes is stored.
 *   3x3, stride 1 (dilation 1 or 2): 3 rows of 7 sums, 9 nw FMAs per nw + 2 d loads, where
 *     the pairs of rows of depthwise_staged.c load 4 (nw + 2) vectors for 18 nw FMAs.
 *     Against those pairs (1 thread, buffers on a cache line, in place): 56x56x128 93 -> 67
 *     us, 28x28x256 47 -> 40, 112x112x32 88 -> 67, 14x14x480 23 -> 14.
 *   3x3, stride 2: 2 rows of 8 sums (112x112x64: 77 -> 57 us).
 *   5x5: one column, 25 weights and 5 sums (14x14x480: 71 -> 48 us).
 * A dilation along the height sweeps each class of rows on its own.
 *
 * Where channels are a multiple of 512 (every pixel in the same one or two L1 sets) and
 * input and output lie alike modulo 4 KiB, each load of a lane vector matches the address
 * bits of the stores just before it and waits for them (7x7x1024: 22.5 us so, 11.7 with
 * the output 128 bytes further). There a sweep's rows go to a buffer and reach the output
 * during the next sweep, of other lanes (15.3 us). Copying each strip's input instead took
 * 18, the copy's loads, all in one L1 set, waiting on the L2 cache.
 *
 * The sweeps need the 32 registers of AVX-512: they exist in its build alone. */
#include "depthwise_kernels.h"

#include "convblas_internal.h"

#include <immintrin.h>
#include <math.h>

enum {
    NW = 7,     /* the widest strip: 3 x 7 sums, 9 weights and an input vector in 32 registers */
    NW2 = 8,    /* of stride 2: 2 x 8 sums */
    NW_MIN = 4, /* the narrowest: narrower rows take the other kernels */
    NW_MAX = 8
};

bool cb_dw_strips_available(void) {
#ifdef CB_TARGET_V4
    return cb_cpu_v4();
#else
    return false;
#endif
}

/* Strips of columns [ow0, ow1): `width` wide from ow0, the last moved back to end at ow1,
 * or 4 wide where that covers what is left (rows of 7, 14, 28, 56 and 112 take 7 only at
 * stride 1, rows of 8, 16, 28 and 56 take 8 at stride 2); 5x5: one column, all 25 weights
 * in registers. */
static int strip_width(const cb_dw_strips *g) {
    if (g->k == 5) return 1;
    int wide = g->s == 2 ? NW2 : NW;
    return g->ow1 - g->ow0 >= wide ? wide : NW_MIN;
}

/* Strip k's first column and width (k < strip_count). */
static void strip_at(const cb_dw_strips *g, int64_t k, int64_t *a, int *nw) {
    int w = strip_width(g);
    *a = g->ow0 + k * w, *nw = w;
    if (*a + w <= g->ow1) return;
    *nw = g->ow1 - *a <= NW_MIN ? NW_MIN : w;
    *a = g->ow1 - *nw;
}

static int64_t strip_count(const cb_dw_strips *g) {
    return cb_ceil_div(g->ow1 - g->ow0, strip_width(g));
}

/* The window columns of strip [a, a + nw) outside the input row: before it, after it. */
static void strip_cuts(const cb_dw_strips *g, int64_t a, int nw, int64_t *left, int64_t *right) {
    int64_t first = a * g->s - g->pad_left, last = first + (nw - 1) * g->s + (g->k - 1) * g->d_w;
    *left = first < 0 ? -first : 0;
    *right = last >= g->in_w ? last - g->in_w + 1 : 0;
}

bool cb_dw_strips_fit(const cb_dw_strips *g) {
    bool s1 = g->k == 3 && g->s == 1 && (g->d_w == 1 || g->d_w == 2);
    bool s2 = g->k == 3 && g->s == 2 && g->d_w == 1 && g->d_h == 1;
    bool k5 = g->k == 5 && g->s == 1 && g->d_w == 1 && g->d_h == 1;
    if (!cb_dw_strips_available() || g->lanes < VL || g->ow1 - g->ow0 < NW_MIN || !(s1 || s2 || k5))
        return false;
    for (int64_t k = 0; k < strip_count(g); k++) {
        int64_t a, l, r;
        int nw;
        strip_at(g, k, &a, &nw);
        strip_cuts(g, a, nw, &l, &r);
        bool cut3 = (l == 0 || l == g->d_w) && (r == 0 || r == g->d_w);
        bool cut5 = (l == 0 || r == 0) && l <= 2 && r <= 2; /* a row of 4 or more */
        if (g->k == 3 ? !cut3 : !cut5) return false;
    }
    return true;
}

int64_t cb_dw_strips_buffer_floats(void) {
    return 2 * CB_DW_STRIP_ROWS * NW_MAX * VL; /* two sweeps' rows */
}

#ifdef CB_TARGET_V4

/* Where a sweep reads: step j's input row at src + row0 + j * row_step (rows [j_lo, j_hi)
 * exist, the others are padding), column u of the window col0 + u * col_step further.
 * Offsets are summed before they touch a pointer: the window may start before the image. */
typedef struct source {
    const float *src;
    int64_t row0, row_step, col0, col_step, j_lo, j_hi;
} source;

/* The rows of a finished sweep on their way from its buffer to the output, a row per step
 * of the next sweep: row m of nw vectors at buf + m * nw * VL to out + m * out_step, its
 * columns out_col apart; rows [m, rows) still to go. */
typedef struct drain {
    const float *buf;
    float *out;
    int64_t out_step, out_col, m, rows;
    int nw;
} drain;

CB_TARGET_V4 VINLINE void drain_row(drain *d) {
    int64_t m = d->m++;
    for (int c = 0; c < d->nw; c++)
        vstore(d->out + (m * d->out_step + c * d->out_col), vload(d->buf + (m * d->nw + c) * VL));
}

/* The clamp as max and min: a NaN sum passes through (the second operand is returned), as
 * the epilogue's relu and relu6 let it; lo -inf and hi +inf where there is none. */
/* The clamp as bounds held in locals: the output stores could alias g as far as the
 * compiler knows. */
static inline void clamp_bounds(const cb_dw_strips *g, float *lo, float *hi) {
    *lo = g->clamp != CB_DW_NONE ? g->lo : -INFINITY;
    *hi = g->clamp == CB_DW_BOTH ? g->hi : INFINITY;
}

CB_TARGET_V4 VINLINE vf clamp(vf v, float lo, float hi) {
    __m512 r = _mm512_min_ps(_mm512_set1_ps(hi), _mm512_max_ps(_mm512_set1_ps(lo), (__m512)v));
    return (vf)r;
}

/* The k x k weight vectors of lanes [o, o + VL); upward, kernel row i is the input row
 * k - 1 - i rows up. */
CB_TARGET_V4 VINLINE void load_weights(const cb_dw_strips *g, int64_t o, vf *wv, const int k) {
#pragma GCC unroll 25
    for (int x = 0; x < k * k; x++)
        wv[x] = vload(g->w + ((g->upward ? k * k - k - x / k * k + x % k : x) * g->w_tap + o));
}

/* A finished row of nw sums, clamped, to y (columns out_col apart). */
CB_TARGET_V4 VINLINE void store_row(float *y, int64_t out_col, vf *sums, float lo, float hi,
                                    const int nw) {
#pragma GCC unroll 8
    for (int c = 0; c < nw; c++) sums[c] = clamp(sums[c], lo, hi);
#pragma GCC unroll 8
    for (int c = 0; c < nw; c++) vstore(y + c * out_col, sums[c]);
}

/* One input row into the sums it is kernel row 2 of (P), 1 of (Q) and 0 of (R), as the
 * flags say; columns cl from the left and cr from the right are outside the row. */
CB_TARGET_V4 VINLINE void row_in(vf *P, vf *Q, vf *R, const vf *wv, const source *s, int64_t j,
                                 const int nw, const int D, const int cl, const int cr,
                                 const bool p, const bool q, const bool r) {
    int64_t row = s->row0 + j * s->row_step + s->col0;
#pragma GCC unroll 16
    for (int u = cl; u < nw + 2 * D - cr; u++) {
        vf x = cb_vload_reg(s->src + (row + u * s->col_step));
#pragma GCC unroll 3
        for (int t = 0; t < 3; t++) {
            int c = u - t * D;
            if (c < 0 || c >= nw) continue;
            if (p) P[c] += x * wv[6 + t];
            if (q) Q[c] += x * wv[3 + t];
            if (r) R[c] += x * wv[t];
        }
    }
}

/* n output rows, step j's input row feeding rows j - 2, j - 1 and j: out at row 0, rows
 * out_step apart, lanes [o, o + VL). */
CB_TARGET_V4 VINLINE void sweep(const cb_dw_strips *g, const source *s, drain *dr, float *out,
                                int64_t out_step, int64_t out_col, int64_t n, int64_t o,
                                const int nw, const int D, const int cl, const int cr) {
    vf wv[9];
    load_weights(g, o, wv, 3);
    vf b = g->bias ? vload(g->bias + o) : vsplat(0.0f);
    float lo, hi;
    clamp_bounds(g, &lo, &hi);
    source src = *s;
    vf P[NW], Q[NW], R[NW];
#pragma GCC unroll 8
    for (int c = 0; c < nw; c++) P[c] = Q[c] = R[c] = b;
    for (int64_t j = 0; j < n + 2; j++) {
#pragma GCC unroll 8
        for (int c = 0; c < nw; c++) P[c] = Q[c], Q[c] = R[c], R[c] = b;
        if (j >= src.j_lo && j < src.j_hi) {
            /* Rows past either end take the sums of the middle case they fit, computed
             * and never stored: two bodies fewer for a third of a row's FMAs. */
            if (j >= 2 && j < n)
                row_in(P, Q, R, wv, &src, j, nw, D, cl, cr, true, true, true);
            else if (j < 2)
                row_in(P, Q, R, wv, &src, j, nw, D, cl, cr, false, true, true);
            else
                row_in(P, Q, R, wv, &src, j, nw, D, cl, cr, true, true, false);
        }
        if (dr && dr->m < dr->rows) drain_row(dr);
        if (j < 2) continue;
        store_row(out + (j - 2) * out_step, out_col, P, lo, hi, nw);
    }
}

/* Stride 2 (dilation 1): one input row into the sums of the output it is kernel row 0 of
 * (A) and, for even rows, of the one it is kernel row 2 of (P); odd rows are kernel row 1
 * of A alone. Window column u is tap u - 2 c of output c. */
CB_TARGET_V4 VINLINE void row2_in(vf *P, vf *A, const vf *wv, const source *s, int64_t j,
                                  const int nw, const int cl, const int cr, const bool even) {
    int64_t row = s->row0 + j * s->row_step + s->col0;
#pragma GCC unroll 17
    for (int u = cl; u < 2 * nw + 1 - cr; u++) {
        vf x = cb_vload_reg(s->src + (row + u * s->col_step));
#pragma GCC unroll 3
        for (int t = 0; t < 3; t++) {
            int c = (u - t) / 2;
            if (u < t || (u - t) % 2 != 0 || c >= nw) continue;
            if (even) A[c] += x * wv[t], P[c] += x * wv[6 + t];
            if (!even) A[c] += x * wv[3 + t];
        }
    }
}

/* Stride 2: n output rows from 2 n + 1 input rows, output m from rows 2 m, 2 m + 1 and
 * 2 m + 2, two rows of sums in registers; otherwise as sweep. */
CB_TARGET_V4 VINLINE void sweep2(const cb_dw_strips *g, const source *s, drain *dr, float *out,
                                 int64_t out_step, int64_t out_col, int64_t n, int64_t o,
                                 const int nw, const int cl, const int cr) {
    vf wv[9];
    load_weights(g, o, wv, 3);
    vf b = g->bias ? vload(g->bias + o) : vsplat(0.0f);
    float lo, hi;
    clamp_bounds(g, &lo, &hi);
    source src = *s;
    vf P[NW2], A[NW2];
#pragma GCC unroll 8
    for (int c = 0; c < nw; c++) P[c] = A[c] = b;
    for (int64_t m = 0;; m++) {
        /* Row 2 m: kernel row 2 of output m - 1 (none at m = 0) and row 0 of output m
         * (none at m = n): computed there too, never stored. */
        if (2 * m >= src.j_lo && 2 * m < src.j_hi) row2_in(P, A, wv, &src, 2 * m, nw, cl, cr, true);
        if (dr && dr->m < dr->rows) drain_row(dr);
        if (m > 0) store_row(out + (m - 1) * out_step, out_col, P, lo, hi, nw);
        if (m == n) return;
        if (2 * m + 1 >= src.j_lo && 2 * m + 1 < src.j_hi)
            row2_in(P, A, wv, &src, 2 * m + 1, nw, cl, cr, false);
#pragma GCC unroll 8
        for (int c = 0; c < nw; c++) P[c] = A[c], A[c] = b;
    }
}

/* 5x5 (stride and dilation 1), one column: the 25 weight vectors and the sums of the five
 * output rows an input row feeds in registers, 25 FMAs per 5 loads. Step j's input row is
 * kernel row i of output j - i (acc[i]); rows outside [0, n) are computed, never stored. */
CB_TARGET_V4 VINLINE void sweep5(const cb_dw_strips *g, const source *s, drain *dr, float *out,
                                 int64_t out_step, int64_t n, int64_t o, const int cl,
                                 const int cr) {
    vf wv[25];
    load_weights(g, o, wv, 5);
    vf b = g->bias ? vload(g->bias + o) : vsplat(0.0f);
    float lo, hi;
    clamp_bounds(g, &lo, &hi);
    source src = *s;
    vf acc[5];
#pragma GCC unroll 5
    for (int i = 0; i < 5; i++) acc[i] = b;
    for (int64_t j = 0; j < n + 4; j++) {
#pragma GCC unroll 4
        for (int i = 4; i > 0; i--) acc[i] = acc[i - 1];
        acc[0] = b;
        if (j >= src.j_lo && j < src.j_hi) {
            int64_t row = src.row0 + j * src.row_step + src.col0;
#pragma GCC unroll 5
            for (int u = cl; u < 5 - cr; u++) {
                vf x = cb_vload_reg(src.src + (row + u * src.col_step));
#pragma GCC unroll 5
                for (int i = 0; i < 5; i++) acc[i] += x * wv[i * 5 + u];
            }
        }
        if (dr && dr->m < dr->rows) drain_row(dr);
        if (j >= 4) store_row(out + (j - 4) * out_step, 0, &acc[4], lo, hi, 1);
    }
}

#define SWEEP5(CL, CR)                                                                             \
    if (cl == CL && cr == CR) {                                                                    \
        sweep5(g, s, dr, out, out_step, n, o, CL, CR);                                             \
        return;                                                                                    \
    }

#define SWEEP2(W, CL, CR)                                                                          \
    if (nw == W && cl == CL && cr == CR) {                                                         \
        sweep2(g, s, dr, out, out_step, out_col, n, o, W, CL, CR);                                 \
        return;                                                                                    \
    }

#define SWEEP(W, DD, CL, CR)                                                                       \
    if (nw == W && D == DD && cl == CL && cr == CR) {                                              \
        sweep(g, s, dr, out, out_step, out_col, n, o, W, DD, CL, CR);                              \
        return;                                                                                    \
    }

/* The sweep for this width, dilation and cut, each compiled on its own. */
CB_TARGET_V4 static void sweep_any(const cb_dw_strips *g, const source *s, drain *dr, float *out,
                                   int64_t out_step, int64_t out_col, int64_t n, int64_t o, int nw,
                                   int64_t cl, int64_t cr) {
    int64_t D = g->d_w;
    if (g->k == 5) {
        SWEEP5(0, 0)
        SWEEP5(1, 0)
        SWEEP5(2, 0)
        SWEEP5(0, 1)
        SWEEP5(0, 2)
        return;
    }
    if (g->s == 2) {
        SWEEP2(8, 0, 0)
        SWEEP2(8, 1, 0)
        SWEEP2(8, 0, 1)
        SWEEP2(8, 1, 1)
        SWEEP2(4, 0, 0)
        SWEEP2(4, 1, 0)
        SWEEP2(4, 0, 1)
        SWEEP2(4, 1, 1)
        return;
    }
    SWEEP(7, 1, 0, 0)
    SWEEP(7, 1, 1, 0)
    SWEEP(7, 1, 0, 1)
    SWEEP(7, 1, 1, 1)
    SWEEP(4, 1, 0, 0)
    SWEEP(4, 1, 1, 0)
    SWEEP(4, 1, 0, 1)
    SWEEP(4, 1, 1, 1)
    SWEEP(7, 2, 0, 0)
    SWEEP(7, 2, 2, 0)
    SWEEP(7, 2, 0, 2)
    SWEEP(7, 2, 2, 2)
    SWEEP(4, 2, 0, 0)
    SWEEP(4, 2, 2, 0)
    SWEEP(4, 2, 0, 2)
    SWEEP(4, 2, 2, 2)
}

/* The sweeps' state across one call: the lane vector after which to shift onto the
 * output's lines, and with a buffer, the sweep whose rows are on their way out and the half of the
 * buffer the next sweep writes. */
typedef struct sweeps {
    int64_t head;
    float *buffer;
    drain last;
    int half;
} sweeps;

/* The sweep of strip k, class c of rows (d_h of them), lane vector o. */
CB_TARGET_V4 static void sweep_one(const cb_dw_strips *g, sweeps *w, int64_t k, int64_t c,
                                   int64_t o) {
    int64_t a, cl, cr;
    int nw;
    strip_at(g, k, &a, &nw);
    strip_cuts(g, a, nw, &cl, &cr);
    int64_t f = g->oh0 + c, n = cb_ceil_div(g->oh1 - f, g->d_h);
    /* the input row of step 0, the rows a step apart, the steps */
    int64_t top = f * g->s - g->pad_top, step = g->s == 2 ? 1 : g->d_h;
    int64_t steps = (n - 1) * g->s + g->k;
    source s = {.src = g->in,
                .row0 = top * g->in_row,
                .row_step = step * g->in_row,
                .col0 = (a * g->s - g->pad_left) * g->in_col + o,
                .col_step = g->in_col};
    cb_steps_inside(top, step, g->in_h, steps, &s.j_lo, &s.j_hi);
    float *out = g->out + ((f - g->oh0) * g->out_row + (a - g->ow0) * g->out_col + o);
    int64_t out_step = g->d_h * g->out_row;
    if (g->upward) { /* the same steps in reverse: rows and outputs, stepping up */
        s.row0 += (steps - 1) * s.row_step, s.row_step = -s.row_step;
        int64_t lo = steps - s.j_hi, hi = steps - s.j_lo;
        s.j_lo = lo, s.j_hi = hi;
        out += (n - 1) * out_step, out_step = -out_step;
    }
    if (!w->buffer) {
        sweep_any(g, &s, NULL, out, out_step, g->out_col, n, o, nw, cl, cr);
        return;
    }
    float *rows = w->buffer + w->half * (cb_dw_strips_buffer_floats() / 2);
    sweep_any(g, &s, &w->last, rows, nw * VL, VL, n, o, nw, cl, cr);
    while (w->last.m < w->last.rows) drain_row(&w->last);
    w->last = (drain){
        .buf = rows, .out = out, .out_step = out_step, .out_col = g->out_col, .rows = n, .nw = nw};
    w->half ^= 1;
}

/* Every sweep. 3x3, and with a buffer: strips, classes of rows, then lane vectors, so that
 * two sweeps in a row never share lanes (the buffer's purpose). 5x5 without: lane vectors
 * outermost, so that the next column's strip, 4 of its 5 input columns the same, finds
 * them in the L1 cache (14x14x480, 1 / 2 threads: 48 / 29 us that way round, 52 / 36 the
 * other). */
CB_TARGET_V4 static void strips_v4(const cb_dw_strips *g, float *buffer) {
    /* An output off a cache line: lane vectors shifted onto its lines (lane 0, then `head`
     * onward) where a pixel is 4 vectors or more; under that, accesses across two lines
     * cost less than the vector more (input and output 16 bytes past a line, shifted
     * against not: 112x112x32 114 against 82 us, 80x80x48 78 against 64; 64x64x64 65
     * against 68, at stride 2 112x112x64 83 against 90; 33x33x320 d2 70 against 80). The
     * output's lines rather than the input's where the two differ: a store across two
     * lines costs more than a load (7x7x1024, input 16 bytes past a line, output on one:
     * 16.3 us against 18.7). */
    sweeps w = {.buffer = buffer, .last = {.rows = 0}};
    w.head =
        g->lanes < 4 * VL ? 0 : (int64_t)((64 - (uintptr_t)g->out % 64) % 64 / sizeof(float)) % VL;
    int64_t classes = cb_min(g->d_h, g->oh1 - g->oh0), strips = strip_count(g);
    bool lanes_outer = g->k == 5 && !buffer;
    for (int64_t x = 0; x < (lanes_outer ? 1 : strips); x++)
        for (int64_t c = 0; c < classes; c++)
            for (int64_t o = 0;; o = cb_dw_next_lanes(o, w.head, g->lanes)) {
                for (int64_t k = lanes_outer ? 0 : x; k < (lanes_outer ? strips : x + 1); k++)
                    sweep_one(g, &w, k, c, o);
                if (o + VL >= g->lanes) break;
            }
    while (w.last.m < w.last.rows) drain_row(&w.last);
}

#endif

void cb_dw_strips_run(const cb_dw_strips *g, float *buffer) {
#ifdef CB_TARGET_V4
    strips_v4(g, buffer);
#else
    (void)g, (void)buffer;
#endif
}
