/* depthwise_direct: a direct, vectorized depthwise convolution (not BLAS). channels_last:
 * SIMD across channels; 3x3 (stride 1 and 2) and 5x5 layers by vertical strips
 * (depthwise_strips.c), the others row by row, the input read in place or each input row
 * copied once into a ring of staged rows (depthwise_staged.c; depthwise_layout.c says
 * which).
 * channels_first: SIMD across columns, each channel's rows copied into a zero-padded
 * window (depthwise_kernels.c). Bias, relu and relu6 are applied in the kernels' registers;
 * other activations right after, on the tile still in cache. SEPARABLE runs the depthwise
 * stage of a task (see cb_dw_layout) into a tile buffer and feeds it straight to the pointwise
 * GEMM: the intermediate tensor never goes to memory whole. */
#include "depthwise_layout.h"

#include "depthwise_kernels.h"

#include <stdio.h>
#include <string.h>

/* The rate of the direct kernels on one core, for the cost model. */
static const double direct_flops = 60e9;

enum { MAX_LAST_MULTIPLIER = 16, MAX_FIRST_STRIDE = 64, MAX_FIRST_WINDOW = 1 << 16 };

/* The rows x columns one output's channels_first window spans, in double: no overflow. */
static double window_floats(const cb_problem *p) {
    return ((double)(p->k_h - 1) * (double)p->d_h + 1) *
           ((double)(p->k_w - 1) * (double)p->d_w + 1);
}

static bool applicable(const cb_problem *p, char *why, size_t n) {
    if (p->group_in != 1)
        return cb_decline(why, n,
                          "needs one input channel per group (depthwise); this layer has %lld",
                          (long long)p->group_in);
    if (p->has_pointwise && cb_max(p->mid_channels, p->out_channels) > cb_blas_int_max())
        return cb_decline(why, n, "a pointwise GEMM dimension exceeds the BLAS integer range");
    /* Measured: multiplier 16 runs 0.25 ms where depthwise_gemm takes 0.39; multiplier 32
     * takes 4.6 ms where depthwise_gemm takes 0.57 (4x1000x16, k=5), and a one-channel
     * Conv1D to 512 filters (w2v2_fe0) 18 ms against 1.8 for im2col_gemm. */
    if (p->format == CONVBLAS_CHANNELS_LAST && p->group_out > MAX_LAST_MULTIPLIER)
        return cb_decline(why, n,
                          "channels_last with %lld outputs per input channel (more than %d): "
                          "each input is expanded to that many lanes, 10x slower than "
                          "depthwise_gemm",
                          (long long)p->group_out, MAX_LAST_MULTIPLIER);
    /* The channels_first window keeps each row's columns by phase: stride x 16 columns or
     * more, a few of them read (stride 2^31 on a 10 x 10 image asked for 256 GiB). */
    if (p->format == CONVBLAS_CHANNELS_FIRST && p->s_w > MAX_FIRST_STRIDE)
        return cb_decline(why, n,
                          "channels_first with a stride of %lld along the width (more than "
                          "%d): its window would stage stride x 16 columns per row, most "
                          "never read",
                          (long long)p->s_w, MAX_FIRST_STRIDE);
    /* The window stages every column a dilation skips: kernel 2, dilation 1.6e7 on a
     * one-column input filled 64 MiB per channel to read two floats (fuzz_plan, 10 s under
     * ASan). depthwise_gemm and im2col_gemm visit only the taps. Past 2^16 floats (the
     * staging's L2 budget) one output's window no longer stays in cache anyway. */
    if (p->format == CONVBLAS_CHANNELS_FIRST && window_floats(p) > MAX_FIRST_WINDOW)
        return cb_decline(why, n,
                          "channels_first with a dilation that spreads one output's window "
                          "over more than %d floats, of which only the %lld taps are read",
                          MAX_FIRST_WINDOW, (long long)(p->k_h * p->k_w));
    return true;
}

/* SEPARABLE's pointwise stage on our micro-kernel (micro_gemm.c) where the CPU has it. Against
 * sgemm (1 thread, kernel 5, 400 positions): mid 512 x 256 filters 5% faster, 1024 x 256
 * equal, 2048 x 512 25% faster; quartz_b3 (512 x 512) 8%. */
static bool micro_pointwise(const cb_problem *p) {
    return p->has_pointwise && cb_micro_available();
}

static void configure(const cb_problem *p, const cb_tuning *t, cb_params *params) {
    cb_dw_layout l = cb_dw_layout_plan(p, t->threads, (int64_t)(t->tile_bytes / sizeof(float)));
    params->split = l.bands;
    params->tile = l.band > 1 || l.seg == p->out_w ? l.band * p->out_w : l.seg;
    params->tasks = p->batch * l.bands * cb_ceil_div(p->out_w, l.seg) * l.parts;
    params->worker_floats = (size_t)cb_dw_worker_floats(p, &l);
    cb_dw_path path = cb_dw_path_of(p);
    params->prefetch = (path == CB_DW_STAGED || path == CB_DW_IN_PLACE) && p->out_h > 1 &&
                       cb_streams_from_memory(p);
    /* the pointwise kernel packed for the micro-kernel */
    int64_t packed = micro_pointwise(p)
                         ? cb_micro_packed_floats(p->format, p->mid_channels, p->out_channels)
                         : 0;
    params->shared_floats =
        packed > 0 ? (size_t)cb_min(packed, INT64_MAX - CB_DW_ALIGN) + CB_DW_ALIGN : 0;
}

static double cost(const cb_problem *p, const cb_params *params) {
    double positions = (double)p->batch * (double)p->out_plane;
    double dw_flops = 2.0 * positions * (double)p->mid_channels * (double)p->taps;
    double bytes = (cb_dw_input_read(p, params) + (double)p->out_elems) * sizeof(float);
    double t = dw_flops / direct_flops + bytes / cb_machine.copy_bytes +
               (double)params->tasks * cb_machine.call_cost;
    double pw_rate = micro_pointwise(p)
                         ? cb_micro_rate(cb_dw_channels_last(p) ? p->out_channels : params->tile,
                                         p->mid_channels)
                         : cb_machine.gemm_flops *
                               cb_gemm_efficiency(params->tile, p->out_channels, p->mid_channels);
    if (p->has_pointwise)
        t += (p->flops - dw_flops) / pw_rate + (double)params->tasks * cb_machine.call_cost;
    return t / (double)cb_min(params->threads, cb_max(params->tasks, 1));
}

/* ---- one task ------------------------------------------------------------------------ */

/* What the kernels finish in registers: bias, and relu or relu6 as a clamp. */
static bool fused(const cb_problem *p) {
    return cb_dw_fused(p);
}

static cb_dw_clamp clamp_of(const cb_problem *p, float *lo, float *hi) {
    *lo = 0.0f, *hi = 6.0f;
    if (p->has_pointwise) return CB_DW_NONE; /* the activation follows the pointwise stage */
    return p->activation == CONVBLAS_RELU    ? CB_DW_LOW
           : p->activation == CONVBLAS_RELU6 ? CB_DW_BOTH
                                             : CB_DW_NONE;
}

/* The activation alone (the kernels added the bias) on `positions` positions of `lanes`
 * channels at out: channels_last, rows of ld floats; channels_first, channels ld apart. */
static void activate(const cb_problem *p, float *out, int64_t positions, int64_t lanes,
                     int64_t ld) {
    cb_problem q = *p;
    q.out_channels = lanes;
    q.use_bias = false;
    cb_epilogue(&q, NULL, out, positions, ld);
}

/* Output columns activated in one go: small enough to be still in the L1 cache. */
static int64_t chunk_of(const cb_problem *p, int64_t lanes) {
    return fused(p) ? INT64_MAX : cb_max(8192 / lanes, 8);
}

/* Kernel rows [*i0, *i1) whose input row exists for output row oh. */
static void row_range(const cb_problem *p, int64_t oh, int64_t *i0, int64_t *i1) {
    int64_t top = oh * p->s_h - p->pad_top;
    *i0 = top >= 0 ? 0 : cb_ceil_div(-top, p->d_h);
    int64_t room = p->in_h - top;
    *i1 = room <= 0 ? 0 : cb_min(cb_ceil_div(room, p->d_h), p->k_h);
    *i0 = cb_min(*i0, *i1);
}

/* The output of column ow0, lane c0 of row oh: in the output, or SEPARABLE's tile. */
static float *row_out(const cb_exec *e, const cb_dw_tile *t, float *mid, int64_t oh) {
    const cb_problem *p = e->p;
    int64_t ctot = p->mid_channels;
    if (mid) return mid + (oh - t->oh0) * (t->ow1 - t->ow0) * ctot + t->c0;
    return e->out + ((t->n * p->out_h + oh) * p->out_w + t->ow0) * ctot + t->c0;
}

/* Stages the input rows of output row oh's window that *next says are not staged yet (in
 * increasing order, each once per task), and points rows at its taps' rows. */
static void stage_rows(const cb_exec *e, const cb_dw_tile *t, float *ring, int64_t slot, int64_t oh,
                       int64_t i0, int64_t i1, int64_t *next, const float **rows) {
    const cb_problem *p = e->p;
    int64_t n = cb_dw_ring_rows(p), top = oh * p->s_h - p->pad_top, C = p->channels;
    int64_t count = t->ow1 - t->ow0, x0 = t->ow0 * p->s_w - p->pad_left;
    const float *img = e->in + t->n * p->in_plane * C;
    int64_t cs = cb_dw_stage_stride(t->c1 - t->c0), end = top + (i1 - 1) * p->d_h + 1;
    /* From the window's first row, not its first tap's: with a dilation, the first tap
     * inside the input moves back and forth from one output row to the next. */
    for (int64_t ih = cb_max(cb_max(top, 0), *next); ih < end; ih++)
        cb_dw_stage_row(ring + cb_dw_ring_offset(slot, ih % n), cs, img + ih * p->in_w * C, p->in_w,
                        C, x0, cb_window_span(p, count), t->c0, t->c1 - t->c0, p->group_out);
    *next = cb_max(*next, end);
    for (int64_t i = i0; i < i1; i++)
        rows[i - i0] = ring + cb_dw_ring_offset(slot, (top + i * p->d_h) % n);
}

/* Bytes [a, a + bytes) toward the L1 cache, to be written, or read once. */
static void prefetch_bytes(const void *a, int64_t bytes, bool write) {
    const char *c = (const char *)((uintptr_t)a & ~(uintptr_t)63), *end = (const char *)a + bytes;
    for (; c < end; c += 64)
        if (write)
            __builtin_prefetch(c, 1, 3);
        else
            __builtin_prefetch(c, 0, 0);
}

/* The last input row output row oh's window reads (it may lie past the input). */
static int64_t last_row(const cb_problem *p, int64_t oh) {
    return oh * p->s_h - p->pad_top + (p->k_h - 1) * p->d_h;
}

/* Where the tensors come from memory (params->prefetch): the output rows of the next step
 * and the input rows that step reads first, requested while this step computes. Without,
 * the stores' misses (a read for ownership each) stalled the kernels and the rows' loads
 * waited in turn, memory idle while the kernels ran. Bench, 8 x 56 x 56 x 144 (mbv2_dw56,
 * staged), 1 / 2 threads: 3.2 -> 2.4-2.7 ms, 1.8-2.0 -> 1.26-1.41; 8 x 112 x 112 x 64
 * stride 2 (in place): 3.8-4.1 -> 2.4-3.0 ms, 1.5 -> 1.05-1.3. In the cache the same
 * requests cost 10-25%: only here. */
static void prefetch_next(const cb_exec *e, const cb_dw_tile *t, int64_t oh, int64_t step) {
    const cb_problem *p = e->p;
    int64_t C = p->channels, count = t->ow1 - t->ow0, x0 = t->ow0 * p->s_w - p->pad_left;
    for (int64_t r = oh + step; r < cb_min(oh + 2 * step, t->oh1); r++)
        prefetch_bytes(row_out(e, t, NULL, r),
                       ((count - 1) * p->mid_channels + t->c1 - t->c0) * (int64_t)sizeof(float),
                       true);
    int64_t lo = cb_max(x0, 0), hi = cb_min(x0 + cb_window_span(p, count), p->in_w);
    int64_t first = cb_max(last_row(p, oh + step - 1) + 1, 0);
    int64_t end = cb_min(last_row(p, cb_min(oh + 2 * step, t->oh1) - 1) + 1, p->in_h);
    const float *img = e->in + t->n * p->in_plane * C;
    for (int64_t ih = first; ih < end && lo < hi; ih++)
        prefetch_bytes(img + (ih * p->in_w + lo) * C, (hi - lo) * C * (int64_t)sizeof(float),
                       false);
}

/* Points rows at the input rows of output row oh's kernel rows [i0, i1), read in place. */
static void point_rows(const cb_exec *e, const cb_dw_tile *t, int64_t oh, int64_t i0, int64_t i1,
                       const float **rows) {
    const cb_problem *p = e->p;
    const float *img = e->in + t->n * p->in_plane * p->channels;
    int64_t top = oh * p->s_h - p->pad_top;
    for (int64_t i = i0; i < i1; i++)
        rows[i - i0] = img + (top + i * p->d_h) * p->in_w * p->channels;
}

/* channels_last through the lane-vector kernels: the input rows staged into the ring, or
 * read in place (the kernels then skip the taps in the padding). */
static void run_cl_lanes(const cb_exec *e, const cb_dw_tile *t, float *ws, float *mid,
                         bool in_place) {
    const cb_problem *p = e->p;
    int64_t ctot = p->mid_channels, lanes = t->c1 - t->c0, count = t->ow1 - t->ow0;
    int64_t next = INT64_MIN, chunk = chunk_of(p, lanes);
    int64_t slot = in_place ? 0 : cb_dw_slot_floats(p, count);
    float *ring = cb_align64(ws); /* in place: none, the row pointers alone */
    const float **rows =
        (const float **)(void *)(ring + (in_place ? 0 : cb_dw_ring_floats(p, count)));
    cb_dw_staged g = {.rows = rows,
                      .in_place = in_place,
                      .cs = in_place ? ctot : cb_dw_stage_stride(lanes),
                      .kw = p->k_w,
                      .s = p->s_w,
                      .d = p->d_w,
                      .w_tap = ctot,
                      .out_col = ctot,
                      .lanes = lanes,
                      .in_w = p->in_w};
    g.bias = !p->has_pointwise && p->use_bias ? e->bias + t->c0 : NULL;
    g.clamp = clamp_of(p, &g.lo, &g.hi);
    for (int64_t oh = t->oh0; oh < t->oh1; oh += g.out2 ? 2 : 1) {
        int64_t i0, i1, j0, j1;
        row_range(p, oh, &i0, &i1);
        row_range(p, oh + 1, &j0, &j1);
        bool pair = cb_dw_pairs(p) && oh + 1 < t->oh1 && i1 - i0 == 3 && j1 - j0 == 3;
        if (in_place) {
            point_rows(e, t, oh, i0, i1 + pair, rows);
        } else {
            if (i1 > i0) stage_rows(e, t, ring, slot, oh, i0, i1, &next, rows);
            if (pair) stage_rows(e, t, ring, slot, oh + 1, j0, j1, &next, rows + 1);
        }
        g.nrows = i1 - i0;
        g.w = e->kernel + i0 * p->k_w * ctot + t->c0;
        float *out = row_out(e, t, mid, oh), *below = pair ? row_out(e, t, mid, oh + 1) : NULL;
        if (e->params->prefetch && !mid) prefetch_next(e, t, oh, pair ? 2 : 1);
        for (int64_t a = 0; a < count; a += g.count) {
            g.count = cb_min(chunk, count - a);
            g.x0 = (t->ow0 + a) * p->s_w - p->pad_left; /* read in place only */
            g.x_off = in_place ? g.x0 * ctot + t->c0 : a * p->s_w * g.cs;
            g.out = out + a * ctot;
            g.out2 = below ? below + a * ctot : NULL;
            cb_dw_cl_staged(&g);
            if (mid || fused(p)) continue;
            activate(p, g.out, g.count, lanes, ctot);
            if (below) activate(p, g.out2, g.count, lanes, ctot);
        }
    }
}

/* Output rows of a call to the strips: a buffer holds CB_DW_STRIP_ROWS per class of rows;
 * activations not done in registers follow each call on rows still in the L2 cache (half
 * of it: each call's first and last rows cost a 5x5 sweep 10 rows' worth of FMAs). */
static int64_t strip_rows(const cb_problem *p, int64_t count, int64_t lanes, bool buffered) {
    int64_t rows = buffered ? CB_DW_STRIP_ROWS * p->d_h : INT64_MAX;
    return fused(p) ? rows : cb_min(rows, cb_max((1 << 17) / (count * lanes), 1));
}

/* channels_last 3x3 and 5x5 through the strips (depthwise_strips.c), their rows stored
 * in the output or passed through a buffer in ws; false where they do not fit the tile (it
 * runs the row kernels). */
static bool run_cl_strips(const cb_exec *e, const cb_dw_tile *t, float *ws, float *mid,
                          bool buffered) {
    const cb_problem *p = e->p;
    int64_t ctot = p->mid_channels, lanes = t->c1 - t->c0, count = t->ow1 - t->ow0;
    cb_dw_strips g = {.in = e->in + t->n * p->in_plane * p->channels + t->c0,
                      .in_h = p->in_h,
                      .in_w = p->in_w,
                      .in_row = p->in_w * p->channels,
                      .in_col = p->channels,
                      .k = p->k_w,
                      .s = p->s_w,
                      .pad_top = p->pad_top,
                      .pad_left = p->pad_left,
                      .d_h = p->d_h,
                      .d_w = p->d_w,
                      .w = e->kernel + t->c0,
                      .w_tap = ctot,
                      .out_row = mid ? count * ctot : p->out_w * ctot,
                      .out_col = ctot,
                      .oh0 = t->oh0,
                      .oh1 = t->oh1,
                      .ow0 = t->ow0,
                      .ow1 = t->ow1,
                      .lanes = lanes};
    g.bias = !p->has_pointwise && p->use_bias ? e->bias + t->c0 : NULL;
    g.clamp = clamp_of(p, &g.lo, &g.hi);
    g.upward = t->upward;
    if (!cb_dw_strips_fit(&g)) return false;
    float *out = row_out(e, t, mid, t->oh0);
    int64_t step = strip_rows(p, count, lanes, buffered);
    for (int64_t r = t->oh0; r < t->oh1; r += cb_min(step, t->oh1 - r)) {
        g.oh0 = r, g.oh1 = r + cb_min(step, t->oh1 - r);
        g.out = out + (r - t->oh0) * g.out_row;
        cb_dw_strips_run(&g, buffered ? cb_align64(ws) : NULL);
        if (mid || fused(p)) continue;
        for (int64_t oh = g.oh0; oh < g.oh1; oh++)
            activate(p, g.out + (oh - g.oh0) * g.out_row, count, lanes, ctot);
    }
    return true;
}

/* channels_last through the plain path, columns [ow0, ow1) of the tile. */
static void run_cl_plain(const cb_exec *e, const cb_dw_tile *t, int64_t ow0, int64_t ow1,
                         float *mid) {
    const cb_problem *p = e->p;
    int64_t ctot = p->mid_channels, C = p->channels, lanes = t->c1 - t->c0;
    int64_t chunk = chunk_of(p, lanes);
    cb_dw_row r = {.x_row = 0,
                   .in_w = p->in_w,
                   .cs = C,
                   .m = p->group_out,
                   .kw = p->k_w,
                   .s = p->s_w,
                   .d = p->d_w,
                   .pad = p->pad_left,
                   .w_tap = ctot,
                   .out_col = ctot,
                   .c0 = t->c0,
                   .c1 = t->c1};
    r.bias = !p->has_pointwise && p->use_bias ? e->bias : NULL;
    r.clamp = clamp_of(p, &r.lo, &r.hi);
    const float *img = e->in + t->n * p->in_plane * C;
    for (int64_t oh = t->oh0; oh < t->oh1; oh++) {
        int64_t i0, i1;
        row_range(p, oh, &i0, &i1);
        r.rows = i1 - i0;
        /* Two rows exist only when the dilation is below the height: no overflow. */
        r.x_row = r.rows > 1 ? p->d_h * p->in_w * C : 0;
        r.x = r.rows ? img + (oh * p->s_h - p->pad_top + i0 * p->d_h) * p->in_w * C : img;
        r.w = e->kernel + i0 * p->k_w * ctot;
        r.out = row_out(e, t, mid, oh) - t->ow0 * ctot - t->c0; /* at column 0, channel 0 */
        for (int64_t a = ow0, b; a < ow1; a = b) {
            b = a + cb_min(chunk, ow1 - a);
            cb_dw_cl_row(&r, a, b);
            if (!mid && !fused(p)) activate(p, r.out + a * ctot + t->c0, b - a, lanes, ctot);
        }
    }
}

static void run_cf(const cb_exec *e, const cb_dw_tile *t, float *ws, float *mid) {
    const cb_problem *p = e->p;
    int64_t M = p->group_out, ctot = p->mid_channels;
    int64_t rows = t->oh1 - t->oh0, count = t->ow1 - t->ow0, positions = rows * count;
    cb_dw_window win = cb_dw_window_of(rows, count, p->k_h, p->k_w, p->s_h, p->s_w, p->d_h, p->d_w);
    float *buf = cb_align64(ws);
    cb_dw_plane q = {.x = buf,
                     .kh = p->k_h,
                     .kw = p->k_w,
                     .s_h = p->s_h,
                     .s_w = p->s_w,
                     .d_h = p->d_h,
                     .d_w = p->d_w,
                     .rows = rows,
                     .count = count,
                     .w_tap = ctot,
                     .out_row = mid ? count : p->out_w};
    q.clamp = clamp_of(p, &q.lo, &q.hi);
    /* Per task, not per channel: 13 taps' offsets were 6% of matchbox (128 columns). */
    cb_dw_taps taps;
    cb_dw_cf_offsets(&q, &win, &taps);
    bool bias = !p->has_pointwise && p->use_bias;
    int64_t first = t->oh0 * p->out_w + t->ow0; /* of the output plane */
    int64_t x0 = t->ow0 * p->s_w - p->pad_left;
    bool in_place = cb_dw_cf_in_place(&q, &taps, x0, p->in_w);
    for (int64_t c = t->c0; c < t->c1; c++) {
        const float *plane = e->in + (t->n * p->channels + c) * p->in_plane;
        if (!in_place)
            cb_dw_fill_window(&win, buf, plane, p->in_h, p->in_w, t->oh0 * p->s_h - p->pad_top, x0,
                              p->s_w);
        float *out =
            mid ? mid + c * M * positions : e->out + (t->n * ctot + c * M) * p->out_plane + first;
        int64_t ld = mid ? positions : p->out_plane;
        for (int64_t m = 0; m < M; m++) {
            q.w = e->kernel + c * M + m;
            q.bias = bias ? e->bias[c * M + m] : 0.0f;
            q.out = out + m * ld;
            if (in_place)
                cb_dw_cf_row_in_place(&q, &taps, plane, x0);
            else
                cb_dw_cf_plane(&q, &win, &taps);
        }
        if (!mid && !fused(p)) activate(p, out, positions, M, ld);
    }
}

static void run_path(const cb_exec *e, const cb_dw_tile *t, float *ws, float *mid,
                     cb_dw_path path) {
    switch (path) {
    case CB_DW_WINDOW:
        run_cf(e, t, ws, mid);
        break;
    case CB_DW_IN_PLACE:
    case CB_DW_STAGED:
        run_cl_lanes(e, t, ws, mid, path == CB_DW_IN_PLACE);
        break;
    case CB_DW_PLAIN:
        run_cl_plain(e, t, t->ow0, t->ow1, mid);
        break;
    case CB_DW_STRIPS:
    case CB_DW_STRIPS_BUFFERED:
        if (!run_cl_strips(e, t, ws, mid, path == CB_DW_STRIPS_BUFFERED))
            run_path(e, t, ws, mid, cb_dw_rows_path_at(e->p, e->in));
        break;
    }
}

static void run_task(const cb_exec *e, int64_t task, float *ws) {
    const cb_problem *p = e->p;
    cb_dw_layout l = cb_dw_layout_of(p, e->params);
    cb_dw_tile t = cb_dw_locate(p, &l, task, e->out);
    int64_t positions = (t.oh1 - t.oh0) * (t.ow1 - t.ow0);
    float *mid = p->has_pointwise ? ws + cb_dw_stage_floats(p, &l) : NULL;
    run_path(e, &t, ws, mid, cb_dw_path_at(p, e->in, mid ? mid : e->out));
    if (p->has_pointwise)
        cb_pointwise_finish(e, mid, micro_pointwise(p) ? cb_align64(e->shared) : NULL, t.n,
                            t.oh0 * p->out_w + t.ow0, positions);
}

/* The pointwise kernel packed for the micro-kernel, where the stage runs on it. */
static void prepare(const cb_exec *e, int64_t part, int64_t parts) {
    const cb_problem *p = e->p;
    if (micro_pointwise(p))
        cb_micro_pack(p->format, e->pointwise, p->mid_channels, p->out_channels,
                      cb_align64(e->shared), part, parts);
}

const cb_strategy cb_depthwise_direct = {
    .name = "depthwise_direct",
    .summary = "vectorized direct depthwise kernels per band of rows (separable: fused with "
               "the pointwise GEMM per band)",
    .parallel = "images x row bands or row segments x channel shares",
    .applicable = applicable,
    .configure = configure,
    .cost = cost,
    .run_task = run_task,
    .prepare = prepare,
};
