/* The kernels of depthwise_direct that read their input in place (channels_last, for what
 * staging does not take) or from a per-channel window (channels_first). Written once with
 * GCC/Clang vector extensions and compiled for AVX-512, AVX2 and baseline x86-64
 * (target_clones): the loader picks the best the CPU has, at run time.
 *
 * channels_last here is the rare layers the lane-vector kernels do not take (fewer channels
 * than a vector, a window wider than any workspace): one column at a time with the taps
 * outside the input skipped, PG channel vectors together to keep their FMA chains
 * independent. */
#include "depthwise_kernels.h"

#include "convblas_internal.h"
#include "simd.h"

#include <stdbool.h>

enum {
    CV = 4,    /* channels_first: column vectors computed together */
    CVMAX = 8, /* and in the AVX-512 build, where they fit the registers */
    PG = 4     /* channel vectors of an edge column computed together */
};

VINLINE vf finish(const cb_dw_row *r, vf v) {
    if (r->clamp != CB_DW_NONE) v = vblend(v < r->lo, vsplat(r->lo), v);
    if (r->clamp == CB_DW_BOTH) v = vblend(v > r->hi, vsplat(r->hi), v);
    return v;
}

static inline float finish1(const cb_dw_row *r, float v) {
    if (r->clamp != CB_DW_NONE && v < r->lo) v = r->lo;
    if (r->clamp == CB_DW_BOTH && v > r->hi) v = r->hi;
    return v;
}

VINLINE vf bias_at(const cb_dw_row *r, int64_t o) {
    return r->bias ? vload(r->bias + o) : vsplat(0.0f);
}

/* The taps [*j0, *j1) of column ow whose input column exists. */
static inline void tap_range(const cb_dw_row *r, int64_t ow, int64_t *j0, int64_t *j1) {
    cb_steps_inside(ow * r->s - r->pad, r->d, r->in_w, r->kw, j0, j1);
}

/* One column, nv channel vectors from o, taps [j0, j1). */
VINLINE void edge_vectors(const cb_dw_row *r, int64_t ow, int64_t j0, int64_t j1, int64_t o,
                          const int nv) {
    int64_t u0 = ow * r->s - r->pad; /* may be far outside: only u0 + j * d is an index */
    const float *w = r->w + o;
    vf acc[PG];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) acc[v] = bias_at(r, o + v * VL);
    for (int64_t i = 0; i < r->rows; i++)
        for (int64_t j = j0; j < j1; j++) {
            const float *xp = r->x + i * r->x_row + (u0 + j * r->d) * r->cs + o;
            const float *wp = w + (i * r->kw + j) * r->w_tap;
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) acc[v] += vload(xp + v * VL) * vload(wp + v * VL);
        }
    float *out = r->out + ow * r->out_col + o;
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) vstore(out + v * VL, finish(r, acc[v]));
}

VINLINE void edge_column(const cb_dw_row *r, int64_t ow) {
    int64_t j0, j1, o = r->c0;
    tap_range(r, ow, &j0, &j1);
    for (; o + PG * VL <= r->c1; o += PG * VL) edge_vectors(r, ow, j0, j1, o, PG);
    for (; o < r->c1; o += VL) edge_vectors(r, ow, j0, j1, o + VL <= r->c1 ? o : r->c1 - VL, 1);
}

/* Fewer channels than a vector: plain loops. */
static void scalar_column(const cb_dw_row *r, int64_t ow) {
    int64_t j0, j1;
    tap_range(r, ow, &j0, &j1);
    int64_t u0 = ow * r->s - r->pad; /* may be far outside: only u0 + j * d is an index */
    float *out = r->out + ow * r->out_col;
    for (int64_t o = r->c0; o < r->c1; o++) {
        float acc = r->bias ? r->bias[o] : 0.0f;
        for (int64_t i = 0; i < r->rows; i++)
            for (int64_t j = j0; j < j1; j++)
                acc += r->x[i * r->x_row + (u0 + j * r->d) * r->cs + o / r->m] *
                       r->w[(i * r->kw + j) * r->w_tap + o];
        out[o] = finish1(r, acc);
    }
}

SIMD_CLONES
static void row_vectors(const cb_dw_row *r, int64_t ow0, int64_t ow1) {
    for (int64_t ow = ow0; ow < ow1; ow++) edge_column(r, ow);
}

void cb_dw_cl_row(const cb_dw_row *r, int64_t ow0, int64_t ow1) {
    if (r->c1 - r->c0 < VL || r->m != 1)
        for (int64_t ow = ow0; ow < ow1; ow++) scalar_column(r, ow);
    else
        row_vectors(r, ow0, ow1);
}

/* ---- channels_first: SIMD across the output columns of a row, each tap's weight
 * broadcast once for CV vectors of columns. The kernels read a window copied once per
 * channel and band of rows, zero-padded, so that no load is conditional; a strided
 * layer's window stores each row split by phase, so that its taps read consecutive floats
 * as well. */

cb_dw_window cb_dw_window_of(int64_t out_rows, int64_t count, int64_t kh, int64_t kw, int64_t s_h,
                             int64_t s_w, int64_t d_h, int64_t d_w) {
    cb_dw_window win;
    win.rows = (out_rows - 1) * s_h + (kh - 1) * d_h + 1;
    /* A row shorter than a vector is computed as a whole vector. */
    win.phase = (count > VL ? count : VL) + (kw - 1) * d_w / s_w;
    win.row = s_w * win.phase;
    return win;
}

/* dst[k] = src[iw0 + k] for k < n, zero where iw0 + k is outside [0, in_w). Inline vectors,
 * the last one overlapping the one before, and scalar padding: three libc calls per row
 * were 5% of matchbox (rows of 128 columns, 6 of padding each side). */
VINLINE void fill_run(float *dst, const float *src, int64_t in_w, int64_t iw0, int64_t n) {
    int64_t a = iw0 < 0 ? (-iw0 < n ? -iw0 : n) : 0;
    int64_t b = in_w - iw0;
    b = b < a ? a : b > n ? n : b;
    for (int64_t k = 0; k < a; k++) dst[k] = 0.0f;
    int64_t k = a;
    if (b - a >= VL) {
        for (;; k += VL) {
            if (k + VL > b) k = b - VL;
            vstore(dst + k, vload(src + (iw0 + k)));
            if (k + VL == b) break;
        }
        k = b;
    }
    for (; k < b; k++) dst[k] = src[iw0 + k];
    for (k = b; k < n; k++) dst[k] = 0.0f;
}

/* How many of the columns u0, u0 + s, ..., u0 + (n - 1) s lie before column `limit`. */
static int64_t steps_before(int64_t limit, int64_t u0, int64_t s, int64_t n) {
    int64_t gap = limit - u0;
    int64_t k = gap <= 0 ? 0 : (gap + s - 1) / s;
    return k < n ? k : n;
}

/* dst[k] = src[u0 + k s] for k < n, zero where that column is outside [0, in_w); the
 * zeros are set at once, so that a window that is mostly padding costs a memset. */
static void fill_phase(float *dst, const float *src, int64_t in_w, int64_t u0, int64_t s,
                       int64_t n) {
    int64_t a = steps_before(0, u0, s, n), b = steps_before(in_w, u0, s, n);
    b = b < a ? a : b;
    memset(dst, 0, (size_t)a * sizeof(float));
    for (int64_t k = a; k < b; k++) dst[k] = src[u0 + k * s];
    memset(dst + b, 0, (size_t)(n - b) * sizeof(float));
}

SIMD_CLONES
void cb_dw_fill_window(const cb_dw_window *win, float *dst, const float *plane, int64_t in_h,
                       int64_t in_w, int64_t ih0, int64_t iw0, int64_t s_w) {
    for (int64_t b = 0; b < win->rows; b++) {
        float *d = dst + b * win->row;
        int64_t ih = ih0 + b;
        if (ih < 0 || ih >= in_h) {
            memset(d, 0, (size_t)win->row * sizeof(float));
            continue;
        }
        const float *src = plane + ih * in_w;
        if (s_w == 1) {
            fill_run(d, src, in_w, iw0, win->phase);
            continue;
        }
        for (int64_t q = 0; q < s_w; q++)
            fill_phase(d + q * win->phase, src, in_w, iw0 + q, s_w, win->phase);
    }
}

VINLINE vf finish_cf(const cb_dw_plane *q, vf v) {
    if (q->clamp != CB_DW_NONE) v = vblend(v < q->lo, vsplat(q->lo), v);
    if (q->clamp == CB_DW_BOTH) v = vblend(v > q->hi, vsplat(q->hi), v);
    return v;
}

/* A plane's taps, flattened: where each reads in the window (cb_dw_taps, once per task)
 * and its weight, so that the inner loop is a broadcast and nv FMAs per tap. */
typedef struct cf_taps {
    int64_t n;
    const int64_t *off;
    float w[CB_DW_TAPS];
} cf_taps;

void cb_dw_cf_offsets(const cb_dw_plane *q, const cb_dw_window *win, cb_dw_taps *taps) {
    taps->n = q->count >= VL && q->kh * q->kw <= CB_DW_TAPS ? q->kh * q->kw : 0;
    if (taps->n == 0) return;
    for (int64_t i = 0, k = 0; i < q->kh; i++)
        for (int64_t j = 0, phase = 0, idx = 0; j < q->kw; j++, k++) {
            taps->off[k] = i * q->d_h * win->row + phase * win->phase + idx;
            phase += q->d_w % q->s_w, idx += q->d_w / q->s_w; /* column j * d_w, by phase */
            if (phase >= q->s_w) phase -= q->s_w, idx++;
        }
}

/* nv vectors of one output row: vector v at column min(t + v * VL, last), so that a row's
 * end is one block, its last vector overlapping the one before (same values again). */
VINLINE void cf_block(const cb_dw_plane *q, const cf_taps *tp, const float *xr, float *out,
                      int64_t t, int64_t last, const int nv) {
    int64_t col[CVMAX];
    vf acc[CVMAX];
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++) {
        col[v] = t + v * VL < last ? t + v * VL : last;
        acc[v] = vsplat(q->bias);
    }
    for (int64_t k = 0; k < tp->n; k++) {
        vf wv = vsplat(tp->w[k]);
        const float *xp = xr + tp->off[k];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) acc[v] += vload(xp + col[v]) * wv;
    }
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++) vstore(out + col[v], finish_cf(q, acc[v]));
}

/* One vector at column t, for kernels of more than CB_DW_TAPS taps: the window offset of each
 * tap followed along the phases. */
VINLINE void cf_block_any(const cb_dw_plane *q, const cb_dw_window *win, const float *xr,
                          float *out, int64_t t) {
    vf acc = vsplat(q->bias);
    int64_t dq = q->d_w / q->s_w, dr = q->d_w % q->s_w;
    for (int64_t i = 0; i < q->kh; i++) {
        const float *xi = xr + i * q->d_h * win->row + t;
        const float *wi = q->w + i * q->kw * q->w_tap;
        for (int64_t j = 0, idx = 0, ph = 0; j < q->kw; j++) {
            acc += vload(xi + ph * win->phase + idx) * vsplat(wi[j * q->w_tap]);
            idx += dq;
            ph += dr;
            if (ph >= q->s_w) ph -= q->s_w, idx++;
        }
    }
    vstore(out + t, finish_cf(q, acc));
}

/* Columns [t, count) of a row, at most nv vectors: as one block. */
VINLINE void cf_rest(const cb_dw_plane *q, const cf_taps *tp, const float *xr, float *out,
                     int64_t t, const int nv) {
    int64_t last = q->count - VL, need = (q->count - t + VL - 1) / VL;
    if (need == 1) cf_block(q, tp, xr, out, t, last, 1);
    if (need == 2) cf_block(q, tp, xr, out, t, last, 2);
    if (need == 3) cf_block(q, tp, xr, out, t, last, 3);
    if (need == 4) cf_block(q, tp, xr, out, t, last, 4);
    if (nv > 4 && need == 5) cf_block(q, tp, xr, out, t, last, 5);
    if (nv > 4 && need == 6) cf_block(q, tp, xr, out, t, last, 6);
    if (nv > 4 && need == 7) cf_block(q, tp, xr, out, t, last, 7);
    if (nv > 4 && need == 8) cf_block(q, tp, xr, out, t, last, 8);
}

/* The rows of a plane in blocks of nv vectors, the rest as one narrower block. */
VINLINE void cf_rows(const cb_dw_plane *q, const cb_dw_window *win, const cf_taps *tp,
                     const int nv) {
    for (int64_t r = 0; r < q->rows; r++) {
        const float *xr = q->x + r * q->s_h * win->row;
        float *out = q->out + r * q->out_row;
        int64_t t = 0;
        for (; t + nv * VL <= q->count; t += nv * VL)
            cf_block(q, tp, xr, out, t, q->count - VL, nv);
        if (t < q->count) cf_rest(q, tp, xr, out, t, nv);
    }
}

/* Rows shorter than a vector, and kernels of more than CB_DW_TAPS taps. */
static void cf_rows_any(const cb_dw_plane *q, const cb_dw_window *win) {
    for (int64_t r = 0; r < q->rows; r++) {
        const float *xr = q->x + r * q->s_h * win->row;
        float *out = q->out + r * q->out_row;
        if (q->count < VL) { /* a whole vector into a buffer: the window is wide enough */
            float tmp[VL];
            cf_block_any(q, win, xr, tmp, 0);
            memcpy(out, tmp, (size_t)q->count * sizeof(float));
            continue;
        }
        for (int64_t t = 0;; t += VL) {
            if (t + VL > q->count) t = q->count - VL;
            cf_block_any(q, win, xr, out, t);
            if (t + VL == q->count) break;
        }
    }
}

SIMD_CLONES
static void cf_plane_any_cpu(const cb_dw_plane *q, const cb_dw_window *win, const cf_taps *tp) {
    if (tp)
        cf_rows(q, win, tp, CV);
    else
        cf_rows_any(q, win);
}

/* Eight vectors per tap where they fit the registers. */
#ifdef CB_TARGET_V4
CB_TARGET_V4 static void cf_plane_v4(const cb_dw_plane *q, const cb_dw_window *win,
                                     const cf_taps *tp) {
    cb_dw_plane own = *q; /* a copy no output store can alias */
    cf_rows(&own, win, tp, CVMAX);
}
#endif

#ifdef CB_TARGET_V4
#include <immintrin.h>

/* What a row read in place needs, in locals: the plane's fields re-read after each store
 * (which may alias them) and the weights copied per plane were 9% of the time. */
typedef struct cf_in_place {
    const cb_dw_taps *taps;
    const float *w; /* tap 0's weight, w_tap apart */
    int64_t w_tap;
    __m512 bias, lo, hi;
    cb_dw_clamp clamp;
    float *out;
} cf_in_place;

/* cf_block on a row read where it lies, from xr (the input of column t's first tap, as an
 * integer: it may lie before the row). With mf, the block's first vector is the row's first
 * and its loads are masked by taps->head[k]; with ml, its last is the row's last, masked by
 * taps->tail[k] (one vector alone: the head's mask, which holds both ends). Lanes outside
 * the row read as zeros and are never touched (no fault): the sum a zero-padded window
 * gives. The flags are compile-time, the masks a table and the columns constants (but a
 * last vector that overlaps the one before): computed in the loop, the masks made it twice
 * as long and 40% slower; columns in registers cost 13%. */
CB_TARGET_V4 VINLINE void cf_block_in_place(const cf_in_place *r, uintptr_t xr, int64_t t,
                                            int64_t last, const int nv, const bool mf,
                                            const bool ml) {
    const cb_dw_taps *taps = r->taps;
    int64_t col[CVMAX];
    __m512 acc[CVMAX];
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++) {
        col[v] = v < nv - 1 || t + v * VL <= last ? v * VL : last - t;
        acc[v] = r->bias;
    }
    const float *w = r->w;
    for (int64_t k = 0; k < taps->n; k++, w += r->w_tap) {
        __m512 wv = _mm512_set1_ps(*w);
        uintptr_t xk = xr + (uintptr_t)taps->off[k] * sizeof(float);
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) {
            const float *src = (const float *)(xk + (uintptr_t)col[v] * sizeof(float));
            __m512 x = v == 0 && mf        ? _mm512_maskz_loadu_ps(taps->head[k], src)
                       : v == nv - 1 && ml ? _mm512_maskz_loadu_ps(taps->tail[k], src)
                                           : _mm512_loadu_ps(src);
            acc[v] = _mm512_fmadd_ps(x, wv, acc[v]);
        }
    }
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++) {
        /* max(lo, x) and min(hi, x) return x where x is NaN, as the window kernels' blends */
        if (r->clamp != CB_DW_NONE) acc[v] = _mm512_max_ps(r->lo, acc[v]);
        if (r->clamp == CB_DW_BOTH) acc[v] = _mm512_min_ps(r->hi, acc[v]);
        _mm512_storeu_ps(r->out + t + col[v], acc[v]);
    }
}

/* The lanes [lo, hi) of a vector (none where hi <= lo). */
static uint16_t lanes_between(int64_t lo, int64_t hi) {
    lo = lo < 0 ? 0 : lo > VL ? VL : lo;
    hi = hi < 0 ? 0 : hi > VL ? VL : hi;
    return (uint16_t)((0xFFFFu << lo) & (0xFFFFu >> (VL - hi)));
}

/* A 1D row of stride 1 read where it lies, with no window, in blocks of CVMAX vectors: a
 * short row is one block masked at both ends; a long one a first block masked at its start,
 * plain blocks, and a last block masked at its end. */
CB_TARGET_V4 static void cf_row_in_place_v4(const cf_in_place *r, int64_t count, const float *row,
                                            int64_t x0) {
    int64_t last = count - VL;
    uintptr_t x = (uintptr_t)row + (uintptr_t)x0 * sizeof(float); /* column 0's first tap */
    for (int64_t t = 0; t < count; t += CVMAX * VL) {
        int64_t need = (count - t + VL - 1) / VL;
        uintptr_t xr = x + (uintptr_t)t * sizeof(float);
        if (need > CVMAX) {
            if (t == 0)
                cf_block_in_place(r, xr, t, last, CVMAX, true, false);
            else
                cf_block_in_place(r, xr, t, last, CVMAX, false, false);
            continue;
        }
        switch (need + (t == 0 ? CVMAX : 0)) { /* the last block; also the first? */
#define BLOCK(k)                                                                                   \
    case k:                                                                                        \
        cf_block_in_place(r, xr, t, last, k, false, true);                                         \
        break;                                                                                     \
    case k + CVMAX:                                                                                \
        cf_block_in_place(r, xr, t, last, k, true, true);                                          \
        break;
            BLOCK(1) BLOCK(2) BLOCK(3) BLOCK(4) BLOCK(5) BLOCK(6) BLOCK(7) BLOCK(8)
#undef BLOCK
        }
    }
}
#endif

bool cb_dw_cf_in_place(const cb_dw_plane *q, cb_dw_taps *taps, int64_t x0, int64_t in_w) {
#ifdef CB_TARGET_V4
    if (q->kh != 1 || q->rows != 1 || q->s_w != 1 || taps->n == 0 || !cb_cpu_v4()) return false;
    /* Only the row's first and last vectors are masked: those between, at VL to
     * (vectors - 2) VL, must lie inside (1D: the taps' offsets grow, the last one is the
     * span). */
    int64_t last = q->count - VL, span = taps->off[taps->n - 1];
    int64_t between = (q->count + VL - 1) / VL - 2;
    if (between > 0 && (x0 + VL < 0 || x0 + between * VL + VL + span > in_w)) return false;
    for (int64_t k = 0; k < taps->n; k++) {
        int64_t u = x0 + taps->off[k], v = u + last; /* lane 0's column, first and last */
        taps->head[k] = lanes_between(-u, in_w - u);
        taps->tail[k] = lanes_between(-v, in_w - v);
    }
    return true;
#else
    (void)q, (void)taps, (void)x0, (void)in_w;
    return false;
#endif
}

#ifdef CB_TARGET_V4
CB_TARGET_V4 static void cf_plane_in_place_v4(const cb_dw_plane *q, const cb_dw_taps *taps,
                                              const float *row, int64_t x0) {
    cf_in_place r = {.taps = taps,
                     .w = q->w,
                     .w_tap = q->w_tap,
                     .bias = _mm512_set1_ps(q->bias),
                     .lo = _mm512_set1_ps(q->lo),
                     .hi = _mm512_set1_ps(q->hi),
                     .clamp = q->clamp,
                     .out = q->out};
    cf_row_in_place_v4(&r, q->count, row, x0);
}
#endif

void cb_dw_cf_row_in_place(const cb_dw_plane *q, const cb_dw_taps *taps, const float *row,
                           int64_t x0) {
#ifdef CB_TARGET_V4
    cf_plane_in_place_v4(q, taps, row, x0);
#else
    (void)q, (void)taps, (void)row, (void)x0;
#endif
}

void cb_dw_cf_plane(const cb_dw_plane *q, const cb_dw_window *win, const cb_dw_taps *taps) {
    cf_taps tp; /* not zeroed as a whole: 512 bytes per plane for 13 weights */
    tp.n = taps->n, tp.off = taps->off;
    for (int64_t k = 0; k < tp.n; k++) tp.w[k] = q->w[k * q->w_tap];
#ifdef CB_TARGET_V4
    if (tp.n > 0 && cb_cpu_v4()) {
        cf_plane_v4(q, win, &tp);
        return;
    }
#endif
    cb_dw_plane own = *q; /* as in cf_plane_v4 */
    cf_plane_any_cpu(&own, win, tp.n > 0 ? &tp : NULL);
}

int64_t cb_dw_pixel_sets(int64_t channels) {
    if (channels % VL != 0) return 64;
    int64_t lines = channels / VL, sets = 64;
    while (lines % 2 == 0 && sets > 1) lines /= 2, sets /= 2;
    return sets;
}
