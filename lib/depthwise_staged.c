/* channels_last depthwise from staged input rows: SIMD across channels (lanes), WB output
 * columns per block so that one weight vector feeds WB independent FMA chains.
 *
 * Why staged: a pixel of 1024 channels is 4 KiB, so every pixel of a window maps to the
 * same L1 set and the loads of one block evict each other (measured: 2.5x slower than
 * 1008 channels); the caller's buffers need only malloc's 16-byte alignment, so most
 * vector loads would span two cache lines; the padding would need bounds checks; and a
 * depth_multiplier wants each channel repeated. Copying each input row once into a
 * 64-byte-aligned ring, columns an odd number of cache lines apart, zeros in the padding
 * and the channels already repeated, fixes all four for one load and one store per input
 * vector. */
#include "depthwise_kernels.h"

#include "convblas_internal.h"
#include "simd.h"

#include <stdbool.h>

enum {
    SLIDE_GROUP = 8, /* taps whose weights a sliding block holds at once (AVX-512 only) */
    WB = 8,          /* output columns of a block */
    WS = 4           /* of a block in rows of fewer than WB columns */
};

int64_t cb_dw_stage_stride(int64_t lanes) {
    int64_t cs = (lanes + VL - 1) / VL * VL;
    return cs / VL % 2 == 0 ? cs + VL : cs;
}

/* ---- staging ----------------------------------------------------------------------- */

/* n >= VL floats, the last vector overlapping the one before. */
VINLINE void copy_lanes(float *d, const float *s, int64_t n) {
    for (int64_t l = 0;; l += VL) {
        if (l + VL > n) l = n - VL;
        vstore(d + l, vload(s + l));
        if (l + VL == n) break;
    }
}

VINLINE void zero_lanes(float *d, int64_t n) {
    for (int64_t l = 0;; l += VL) {
        if (l + VL > n) l = n - VL;
        vstore(d + l, vsplat(0.0f));
        if (l + VL == n) break;
    }
}

/* A permutation of v's lanes; scalar where the compiler has no variable shuffle. */
VINLINE vf permute(vf v, vi lane) {
#if defined(__GNUC__) && !defined(__clang__)
    return __builtin_shuffle(v, lane);
#else
    vf r;
    for (int l = 0; l < VL; l++) r[l] = v[lane[l]];
    return r;
#endif
}

/* Lane l of d is pixel channel (c0 + l) / m, for l < n, when m divides VL: VL lanes at a
 * time from one load of the VL channels they need (moved back to end at the last channel
 * where needed); step[i] = (c0 % m + i) / m. */
VINLINE void repeat_lanes(float *d, const float *px, int64_t c0, int64_t n, int64_t m,
                          int64_t channels, vi step) {
    int64_t l = 0, first = c0 / m;
    for (; l + VL <= n; l += VL, first += VL / m) {
        int64_t at = first + VL <= channels ? first : channels - VL;
        vstore(d + l, permute(vload(px + at), step + (int32_t)(first - at)));
    }
    for (; l < n; l++) d[l] = px[(c0 + l) / m];
}

SIMD_CLONES
void cb_dw_stage_row(float *dst, int64_t cs, const float *src, int64_t in_w, int64_t channels,
                     int64_t x0, int64_t span, int64_t c0, int64_t lanes, int64_t m) {
    vi step;
    for (int i = 0; i < VL; i++) step[i] = (int32_t)((c0 % m + i) / m);
    bool vectors = VL % m == 0 && channels >= VL;
    for (int64_t k = 0; k < span; k++) {
        float *d = dst + k * cs;
        if (x0 + k < 0 || x0 + k >= in_w) {
            zero_lanes(d, lanes);
            continue;
        }
        const float *px = src + (x0 + k) * channels;
        if (m == 1)
            copy_lanes(d, px + c0, lanes);
        else if (vectors)
            repeat_lanes(d, px, c0, lanes, m, channels, step);
        else
            for (int64_t l = 0; l < lanes; l++) d[l] = px[(c0 + l) / m];
    }
}

/* ---- the kernels -------------------------------------------------------------------- */

VINLINE vf finish(const cb_dw_staged *g, vf v) {
    if (g->clamp != CB_DW_NONE) v = vblend(v < g->lo, vsplat(g->lo), v);
    if (g->clamp == CB_DW_BOTH) v = vblend(v > g->hi, vsplat(g->hi), v);
    return v;
}

VINLINE void start(const cb_dw_staged *g, int64_t o, vf *acc, const int nw) {
    vf b = g->bias ? vload(g->bias + o) : vsplat(0.0f);
#pragma GCC unroll 8
    for (int t = 0; t < nw; t++) acc[t] = b;
}

VINLINE void store_at(const cb_dw_staged *g, float *row, int64_t t, int64_t o, vf *acc,
                      const int nw) {
    float *out = row + t * g->out_col + o;
    int64_t col = g->out_col;
#pragma GCC unroll 8
    for (int c = 0; c < nw; c++) acc[c] = finish(g, acc[c]); /* before any store may alias g */
#pragma GCC unroll 8
    for (int c = 0; c < nw; c++) vstore(out + c * col, acc[c]);
}

VINLINE void store(const cb_dw_staged *g, int64_t t, int64_t o, vf *acc, const int nw) {
    store_at(g, g->out, t, o, acc, nw);
}

/* In place, lanes before the first whose loads start a cache line (every pixel has the
 * same alignment when the channels are whole lines): the caller's buffers may be aligned to
 * 16 bytes only (malloc's), and a vector across two lines costs two loads. 0 when staged.
 * Only the AVX-512 build calls it. */
__attribute__((unused)) VINLINE int64_t lane_head(const cb_dw_staged *g) {
    if (!g->in_place || g->nrows == 0) return 0;
    /* x_off may be negative (an edge column's window starts before the row) */
    uintptr_t at = ((uintptr_t)g->rows[0] + (uintptr_t)g->x_off * sizeof(float)) % 64;
    return (int64_t)((64 - at) % 64 / sizeof(float)) % VL;
}

/* nw outputs from t, lanes [o, o + VL), any stride and dilation: per tap, one weight
 * vector and nw input loads. */
VINLINE void block_taps(const cb_dw_staged *g, int64_t t, int64_t o, const int nw) {
    vf acc[WB];
    start(g, o, acc, nw);
    /* A stride or dilation that no second output or tap uses may be near INT64_MAX. */
    int64_t sc = g->count > 1 ? g->s * g->cs : 0, dc = g->kw > 1 ? g->d * g->cs : 0;
    for (int64_t i = 0; i < g->nrows; i++) {
        const float *x = g->rows[i] + g->x_off + t * sc + o, *w = g->w + i * g->kw * g->w_tap + o;
        for (int64_t j = 0; j < g->kw; j++) {
            vf wv = vload(w + j * g->w_tap);
            const float *xp = x + j * dc;
#pragma GCC unroll 8
            for (int c = 0; c < nw; c++) acc[c] += vload(xp + c * sc) * wv;
        }
    }
    store(g, t, o, acc, nw);
}

/* Every block of nw outputs and VL lanes: an output block or lane vector that would pass
 * the end is moved back to overlap the one before (it writes the same values again). */
VINLINE void all_taps(const cb_dw_staged *g, const int nw) {
    for (int64_t t = 0;; t += nw) {
        if (t + nw > g->count) t = g->count - nw;
        for (int64_t o = 0;; o = cb_dw_next_lanes(o, 0, g->lanes)) {
            block_taps(g, t, o, nw);
            if (o + VL >= g->lanes) break;
        }
        if (t + nw == g->count) break;
    }
}

VINLINE void rows_taps(const cb_dw_staged *g) {
    if (g->count >= WB)
        all_taps(g, WB);
    else if (g->count >= WS)
        all_taps(g, WS);
    else
        all_taps(g, 1);
}

/* out2 as a second call on the rows below. */
static void single_rows(const cb_dw_staged *g, void (*run)(const cb_dw_staged *)) {
    cb_dw_staged row = *g;
    row.out2 = NULL;
    run(&row);
    row.rows = g->rows + 1;
    row.out = g->out2;
    run(&row);
}

/* ---- in place: the columns whose window crosses an end of the input row ------------- */

/* The columns [*lo, *hi) whose window lies inside the input row: all when staged (the
 * padding is in the staged rows). */
static void columns_inside(const cb_dw_staged *g, int64_t *lo, int64_t *hi) {
    if (!g->in_place) {
        *lo = 0, *hi = g->count;
        return;
    }
    cb_steps_inside(g->x0, g->s, g->in_w - (g->kw - 1) * g->d, g->count, lo, hi);
}

/* Output t, lanes [o, o + nv VL), with the taps outside the input row skipped. Offsets are
 * summed before they touch a pointer: the window may start before the row. */
VINLINE void block_clipped(const cb_dw_staged *g, int64_t t, int64_t o, const int nv) {
    vf acc[WS];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) acc[v] = g->bias ? vload(g->bias + o + v * VL) : vsplat(0.0f);
    int64_t j0, j1;
    cb_steps_inside(g->x0 + t * g->s, g->d, g->in_w, g->kw, &j0, &j1);
    for (int64_t i = 0; i < g->nrows; i++)
        for (int64_t j = j0; j < j1; j++) {
            const float *x = g->rows[i] + (g->x_off + (t * g->s + j * g->d) * g->cs + o);
            const float *w = g->w + (i * g->kw + j) * g->w_tap + o;
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) acc[v] += vload(x + v * VL) * vload(w + v * VL);
        }
    float *out = g->out + t * g->out_col + o;
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) acc[v] = finish(g, acc[v]);
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) vstore(out + v * VL, acc[v]);
}

/* Columns [t0, t1), lanes innermost (whole pixels, as the kernels that leave them here
 * read), WS vectors at a time for as many independent sums. */
SIMD_CLONES
static void clipped_columns(const cb_dw_staged *g, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
        int64_t o = 0;
        for (; o + WS * VL <= g->lanes; o += WS * VL) block_clipped(g, t, o, WS);
        for (; o < g->lanes; o += VL)
            block_clipped(g, t, o + VL <= g->lanes ? o : g->lanes - VL, 1);
    }
}

/* In place: columns [0, lo) and [hi, count) clipped, of out and of out2 (from rows[1..]),
 * then `run` on columns [lo, hi). */
static void split_edges(const cb_dw_staged *g, int64_t lo, int64_t hi,
                        void (*run)(const cb_dw_staged *)) {
    cb_dw_staged part = *g;
    part.out2 = NULL;
    for (int k = 0; k < (g->out2 ? 2 : 1); k++) {
        part.rows = g->rows + k;
        part.out = k ? g->out2 : g->out;
        if (lo > 0) clipped_columns(&part, 0, lo);
        if (hi < g->count) clipped_columns(&part, hi, g->count);
    }
    if (hi == lo) return;
    part = *g;
    part.count = hi - lo;
    part.x0 += lo * g->s;
    part.x_off += lo * g->s * g->cs;
    part.out += lo * g->out_col;
    if (g->out2) part.out2 += lo * g->out_col;
    run(&part);
}

SIMD_CLONES
static void staged_any_cpu(const cb_dw_staged *g) {
    int64_t lo, hi;
    columns_inside(g, &lo, &hi);
    if (lo > 0 || hi < g->count) {
        split_edges(g, lo, hi, staged_any_cpu);
        return;
    }
    if (g->out2) {
        single_rows(g, staged_any_cpu);
        return;
    }
    cb_dw_staged own = *g; /* a copy no output store can alias: its fields stay in registers */
    rows_taps(&own);
}

#ifdef CB_TARGET_V4

/* ---- sliding blocks: stride S and dilation D known at compile time ------------------- */

/* Taps [0, nj) of one kernel row for nw outputs, x and w at the first output's tap 0: the
 * nj weight vectors stay in registers and each input vector is loaded once and fed to
 * every (output, tap) pair that reads it. */
CB_TARGET_V4 VINLINE void slide_taps(vf *acc, const float *x, int64_t cs, const float *w,
                                     int64_t w_tap, const int nw, const int nj, const int S,
                                     const int D) {
    vf wv[SLIDE_GROUP];
#pragma GCC unroll 8
    for (int j = 0; j < nj; j++) wv[j] = vload(w + j * w_tap);
#pragma GCC unroll 32
    for (int u = 0; u <= (nw - 1) * S + (nj - 1) * D; u++) {
        /* At a stride or dilation of 2, one load for the FMAs that read it (GCC folded it
         * into each: 2 x 4096 x 128 kernel 7 stride 2, 115 -> 106 us; 400 x 512 kernel 87
         * dilation 2, 452-494 -> 431-439); at stride and dilation 1 the folded loads ran
         * faster (kernel 31: 380 against 397 us). */
        vf xv = S > 1 || D > 1 ? cb_vload_reg(x + u * cs) : vload(x + u * cs);
#pragma GCC unroll 8
        for (int j = 0; j < nj; j++) {
            int q = u - j * D;
            if (q >= 0 && q % S == 0 && q / S < nw) acc[q / S] += xv * wv[j];
        }
    }
}

/* A kernel row's taps go in groups of at most SLIDE_GROUP, as even as possible: 8 weights
 * and 8 sums in AVX-512's registers (groups of 4 reloaded the inputs twice as often: 4 x
 * 512 x 256 kernel 31 on a line 408 -> 382 us, 400 x 512 kernel 51 247 -> 235). */
CB_TARGET_V4 VINLINE void block_slide(const cb_dw_staged *g, int64_t t, int64_t o, const int nw,
                                      const int S, const int D) {
    vf acc[WB];
    start(g, o, acc, nw);
    int64_t groups = (g->kw + SLIDE_GROUP - 1) / SLIDE_GROUP, base = g->kw / groups,
            extra = g->kw % groups;
    for (int64_t i = 0; i < g->nrows; i++) {
        const float *x = g->rows[i] + g->x_off + t * S * g->cs + o,
                    *w = g->w + i * g->kw * g->w_tap + o;
        int64_t j0 = 0;
        for (int64_t k = 0; k < groups; k++) {
            int64_t nj = base + (k < extra);
            const float *xg = x + j0 * D * g->cs, *wg = w + j0 * g->w_tap;
            switch (nj) { /* each count unrolled with its weights in registers */
            case 1:
                slide_taps(acc, xg, g->cs, wg, g->w_tap, nw, 1, S, D);
                break;
            case 2:
                slide_taps(acc, xg, g->cs, wg, g->w_tap, nw, 2, S, D);
                break;
            case 3:
                slide_taps(acc, xg, g->cs, wg, g->w_tap, nw, 3, S, D);
                break;
            case 4:
                slide_taps(acc, xg, g->cs, wg, g->w_tap, nw, 4, S, D);
                break;
            case 5:
                slide_taps(acc, xg, g->cs, wg, g->w_tap, nw, 5, S, D);
                break;
            case 6:
                slide_taps(acc, xg, g->cs, wg, g->w_tap, nw, 6, S, D);
                break;
            case 7:
                slide_taps(acc, xg, g->cs, wg, g->w_tap, nw, 7, S, D);
                break;
            default:
                slide_taps(acc, xg, g->cs, wg, g->w_tap, nw, SLIDE_GROUP, S, D);
                break;
            }
            j0 += nj;
        }
    }
    store(g, t, o, acc, nw);
}

/* all_taps with sliding blocks. */
CB_TARGET_V4 VINLINE void all_slide(const cb_dw_staged *g, const int nw, const int S, const int D) {
    for (int64_t t = 0;; t += nw) {
        if (t + nw > g->count) t = g->count - nw;
        for (int64_t o = 0;; o = cb_dw_next_lanes(o, 0, g->lanes)) {
            block_slide(g, t, o, nw, S, D);
            if (o + VL >= g->lanes) break;
        }
        if (t + nw == g->count) break;
    }
}

/* The 3x3 blocks below hold 9 weight vectors and up to 16 sums: AVX-512's 32 registers, so
 * they exist in the AVX-512 build alone, as its target (clang checks the asm below against
 * the function's own target, not the caller's). */

/* 3x3 windows whose three rows exist, the commonest case: the nine weight vectors of a
 * lane vector stay in registers for the whole row of outputs, so a block of WB outputs
 * is its input loads and 72 FMAs. */
CB_TARGET_V4 VINLINE void block3(const cb_dw_staged *g, const vf *wv, vf b, int64_t t, int64_t o,
                                 const int nw, const int S, const int D) {
    vf acc[WB];
#pragma GCC unroll 8
    for (int c = 0; c < nw; c++) acc[c] = b;
#pragma GCC unroll 3
    for (int i = 0; i < 3; i++) {
        const float *x = g->rows[i] + (g->x_off + t * S * g->cs + o);
#pragma GCC unroll 32
        for (int u = 0; u <= (nw - 1) * S + 2 * D; u++) {
            vf xv = cb_vload_reg(x + u * g->cs);
#pragma GCC unroll 3
            for (int j = 0; j < 3; j++) {
                int q = u - j * D;
                if (q >= 0 && q % S == 0 && q / S < nw) acc[q / S] += xv * wv[i * 3 + j];
            }
        }
    }
    store(g, t, o, acc, nw);
}

/* In place, column t whose window crosses an end of the row (rows and out: of the upper or
 * the lower row of a pair): the taps outside are skipped, the weights are wv. */
CB_TARGET_V4 VINLINE void block3_clipped(const cb_dw_staged *g, const float *const *rows,
                                         float *out, const vf *wv, vf b, int64_t t, int64_t o,
                                         const int S, const int D) {
    vf acc[1] = {b};
    int64_t j0, j1;
    cb_steps_inside(g->x0 + t * S, D, g->in_w, 3, &j0, &j1);
    /* j runs over constants, tested against [j0, j1): wv indexed by a variable would go to
     * the stack, and every block with it. */
#pragma GCC unroll 3
    for (int i = 0; i < 3; i++)
#pragma GCC unroll 3
        for (int j = 0; j < 3; j++)
            if (j >= j0 && j < j1)
                acc[0] += vload(rows[i] + (g->x_off + (t * S + j * D) * g->cs + o)) * wv[i * 3 + j];
    store_at(g, out, t, o, acc, 1);
}

/* Columns [lo, hi) in blocks of nw outputs (the last one overlapping the one before), the
 * others clipped, lane vectors outermost. */
CB_TARGET_V4 VINLINE void all_block3(const cb_dw_staged *g, int64_t lo, int64_t hi, const int nw,
                                     const int S, const int D) {
    int64_t head = lane_head(g);
    for (int64_t o = 0;; o = cb_dw_next_lanes(o, head, g->lanes)) {
        vf wv[9];
#pragma GCC unroll 9
        for (int k = 0; k < 9; k++) wv[k] = vload(g->w + k * g->w_tap + o);
        vf b = g->bias ? vload(g->bias + o) : vsplat(0.0f);
        for (int64_t t = 0; t < lo; t++) block3_clipped(g, g->rows, g->out, wv, b, t, o, S, D);
        int64_t t = lo;
        for (; t + nw <= hi; t += nw) block3(g, wv, b, t, o, nw, S, D);
        /* The rest: one block ending at the last output, of 4 where that is enough (33
         * columns: 36 outputs computed instead of 40). */
        if (t < hi && nw == WB && hi - t <= WS)
            block3(g, wv, b, hi - WS, o, WS, S, D);
        else if (t < hi)
            block3(g, wv, b, hi - nw, o, nw, S, D);
        for (t = hi; t < g->count; t++) block3_clipped(g, g->rows, g->out, wv, b, t, o, S, D);
        if (o + VL >= g->lanes) break;
    }
}

/* Two output rows at once (3x3, stride and dilation 1): the four staged rows are loaded
 * once for both, a third fewer loads per FMA than two single rows. */
CB_TARGET_V4 VINLINE void block3x2(const cb_dw_staged *g, const vf *wv, vf b, int64_t t, int64_t o,
                                   const int nw) {
    vf a0[WB], a1[WB];
#pragma GCC unroll 8
    for (int c = 0; c < nw; c++) a0[c] = a1[c] = b;
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        const float *x = g->rows[k] + (g->x_off + t * g->cs + o);
#pragma GCC unroll 16
        for (int u = 0; u < nw + 2; u++) {
            vf xv = cb_vload_reg(x + u * g->cs);
#pragma GCC unroll 3
            for (int j = 0; j < 3; j++) {
                int q = u - j;
                if (q < 0 || q >= nw) continue;
                if (k < 3) a0[q] += xv * wv[k * 3 + j];
                if (k > 0) a1[q] += xv * wv[(k - 1) * 3 + j];
            }
        }
    }
    store_at(g, g->out, t, o, a0, nw);
    store_at(g, g->out2, t, o, a1, nw);
}

/* all_block3 for pairs. One function with the pair as a constant flag ran deeplab_dw 3%
 * slower (97-98 -> 100-103 us), so the two stay apart. */
CB_TARGET_V4 VINLINE void all_block3x2(const cb_dw_staged *g, int64_t lo, int64_t hi,
                                       const int nw) {
    int64_t head = lane_head(g);
    for (int64_t o = 0;; o = cb_dw_next_lanes(o, head, g->lanes)) {
        vf wv[9];
#pragma GCC unroll 9
        for (int k = 0; k < 9; k++) wv[k] = vload(g->w + k * g->w_tap + o);
        vf b = g->bias ? vload(g->bias + o) : vsplat(0.0f);
        for (int64_t t = 0; t < lo; t++) {
            block3_clipped(g, g->rows, g->out, wv, b, t, o, 1, 1);
            block3_clipped(g, g->rows + 1, g->out2, wv, b, t, o, 1, 1);
        }
        int64_t t = lo;
        for (; t + nw <= hi; t += nw) block3x2(g, wv, b, t, o, nw);
        if (t < hi && nw == WB && hi - t <= WS)
            block3x2(g, wv, b, hi - WS, o, WS);
        else if (t < hi)
            block3x2(g, wv, b, hi - nw, o, nw);
        for (t = hi; t < g->count; t++) {
            block3_clipped(g, g->rows, g->out, wv, b, t, o, 1, 1);
            block3_clipped(g, g->rows + 1, g->out2, wv, b, t, o, 1, 1);
        }
        if (o + VL >= g->lanes) break;
    }
}

/* The sliding blocks are unrolled per tap count, stride and dilation: with 16-float
 * vectors in two or four registers each they would spill and cost the AVX2 and baseline
 * builds ten times the code and compile time, so only an AVX-512 build has them, and only
 * for the common strides and dilations. */
CB_TARGET_V4 static void staged_v4(const cb_dw_staged *in) {
    cb_dw_staged own = *in, *g = &own; /* as in staged_any_cpu */
    /* In place, the 3x3 blocks clip the edge columns themselves, with the weights they hold;
     * the other kernels leave them to split_edges. */
    int64_t lo, hi;
    columns_inside(g, &lo, &hi);
    int64_t n = hi - lo;
    /* The 3x3 blocks run lanes outermost (the weights stay in registers along a row): in
     * place they read every pixel in slices, right at stride 1 (depthwise_layout.c's
     * in_place) but not at stride 2 (mbv1_dw112s2: 125 us that way, 100 us with lanes
     * innermost). */
    bool three = g->kw == 3 && g->nrows == 3 && (!g->in_place || g->s == 1);
    bool s1d1 = g->s == 1 && g->d == 1;
    /* Blocks of 7 where they compute fewer outputs than blocks of 8 (overlapping at the
     * end) would: rows of 7, 14 or 28 (the last stages of MobileNets and EfficientNets). */
    bool sevens = n >= 7 && (n + 6) / 7 * 7 < (n + WB - 1) / WB * WB;
    if (g->out2 && three && s1d1 && n >= WS) {
        if (sevens) /* constant block sizes: each one unrolled */
            all_block3x2(g, lo, hi, 7);
        else if (n >= WB)
            all_block3x2(g, lo, hi, WB);
        else
            all_block3x2(g, lo, hi, WS);
        return;
    }
    if (!g->out2 && three && s1d1 && n >= WS) {
        if (sevens)
            all_block3(g, lo, hi, 7, 1, 1);
        else if (n >= WB)
            all_block3(g, lo, hi, WB, 1, 1);
        else
            all_block3(g, lo, hi, WS, 1, 1);
        return;
    }
    if (!g->out2 && three && n >= WB && g->s == 2 && g->d == 1) {
        all_block3(g, lo, hi, WB, 2, 1);
        return;
    }
    if (!g->out2 && three && n >= WB && g->s == 1 && g->d == 2) {
        all_block3(g, lo, hi, WB, 1, 2);
        return;
    }
    if (lo > 0 || hi < g->count)
        split_edges(g, lo, hi, staged_v4);
    else if (g->out2)
        single_rows(g, staged_v4);
    else if (n >= WB && s1d1)
        all_slide(g, WB, 1, 1);
    else if (n >= WS && s1d1)
        all_slide(g, WS, 1, 1);
    else if (n >= WB && g->s == 2 && g->d == 1)
        all_slide(g, WB, 2, 1);
    else if (n >= WB && g->s == 1 && g->d == 2)
        all_slide(g, WB, 1, 2);
    else
        rows_taps(g);
}

#endif

void cb_dw_cl_staged(const cb_dw_staged *g) {
#ifdef CB_TARGET_V4
    if (cb_cpu_v4()) {
        staged_v4(g);
        return;
    }
#endif
    staged_any_cpu(g);
}
