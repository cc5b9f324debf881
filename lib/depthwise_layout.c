/* depthwise_layout: the planning half of depthwise_direct (see depthwise_layout.h). The
 * kernel path a layer takes (strips, rows in place, staged rows, plain, channels_first
 * windows), the staging ring's geometry, and the cut of the output into tasks that fit the
 * L2 cache and keep the workers even. */
#include "depthwise_layout.h"

#include "depthwise_kernels.h"

enum {
    VEC = 16,        /* floats per vector of the kernels: channel shares are multiples */
    SHARE = 2 * VEC, /* the fewest channels worth a task of their own */
    MIN_SEG = 64,    /* the fewest columns worth a task of their own */
    ALIGN = CB_DW_ALIGN,
    MID_FLOATS = 1 << 17,  /* SEPARABLE: the intermediate tile, half the L2 cache */
    STAGE_FLOATS = 1 << 16 /* the staged rows (or window) of a task, within the L2 cache */
};
/* Multiply-adds worth a task of their own (a few microseconds). */
static const double min_task_work = 65536.0;

typedef cb_dw_layout layout;

layout cb_dw_layout_of(const cb_problem *p, const cb_params *params) {
    layout l = {.bands = cb_max(params->split, 1)};
    l.band = cb_max(cb_ceil_div(p->out_h, l.bands), 1);
    l.seg = l.band > 1 ? p->out_w : cb_max(cb_min(params->tile, p->out_w), 1);
    l.segs = cb_ceil_div(p->out_w, l.seg);
    int64_t tiles = p->batch * l.bands * l.segs;
    l.parts = tiles > 0 ? cb_max(params->tasks / tiles, 1) : 1;
    return l;
}

/* channels_last runs the lane-vector kernels (depthwise_staged.c) unless a vector is wider
 * than the channels or a window is absurdly wide (a huge dilation), left to the plain path. */
static bool vectored(const cb_problem *p) {
    return cb_dw_channels_last(p) && p->mid_channels >= VEC && cb_window_span(p, 1) <= (1 << 16) &&
           (p->k_h - 1) * p->d_h < (1 << 16);
}

/* Where the strips do not run it (the tensors come from memory, no AVX-512, a row's strips
 * crossing the padding unevenly): 3x3 of stride 1, channels in whole vectors (every pixel
 * aligned alike) over 4 L1 sets or more: the 3x3 blocks keep the nine weights in registers
 * and read the input in place as fast as from a staged copy, and staging was a quarter of
 * the time (deeplab_dw). Measured,
 * 1 thread, input and output on a cache line, staged -> in place: 33x33x320 dilation 2
 * 122 -> 98 us, 56x56x128 123 -> 99, 112x112x32 126 -> 97, 28x28x256 62 -> 53; 512
 * channels (2 sets) 31 -> 41, 1024 (1 set) 21 -> 38. */
static bool three_in_place(const cb_problem *p) {
    return p->k_h == 3 && p->k_w == 3 && p->s_h == 1 && p->s_w == 1 && p->channels % VEC == 0 &&
           cb_dw_pixel_sets(p->channels) >= 4;
}

/* In place where that beats staging: each input vector feeds few FMAs, the window is one row
 * (copying costs more than unaligned loads) or a 3x3 block reads it, the pixels of a block
 * do not crowd a few L1 sets, one channel per lane. Measured: 2D stride 2 in place 15-25%
 * faster; one-row windows 0-35% (mamba_dw 980 -> 620 us). */
static bool in_place(const cb_problem *p) {
    if (!vectored(p) || p->group_out != 1) return false;
    int64_t sets = cb_dw_pixel_sets(p->channels);
    /* Beyond a group of 4 taps the groups reload lines that crowded sets evicted: quartz_c2's
     * 87 taps on 512 channels took 1025 us in place, 475 staged (2 sets). On 4 sets, in place
     * only where the input starts a line (staged_unless_aligned). */
    bool reloads = p->k_w > 4;
    return (p->k_h == 1 && sets >= (reloads ? 4 : 2)) || (p->s_w > 1 && sets >= 8) ||
           three_in_place(p);
}

/* One-row windows of more than 4 taps on 4 L1 sets (256 channels): read in place, their
 * loads beat the staging copy where the input starts a cache line, and lose to it where
 * every vector spans two. Measured (1 thread, medians of 5 alternating runs), staged ->
 * in place: 4 x 512 x 256 kernel 31, input on a line 424 -> 395 us, 16 bytes past one
 * 435 -> 566; 800 x 256 kernel 33: 182 -> 156, 198 -> 223. */
static bool long_row_on_four_sets(const cb_problem *p) {
    return p->k_h == 1 && p->k_w > 4 && p->channels % VEC == 0 &&
           cb_dw_pixel_sets(p->channels) == 4;
}

/* The 3x3 layers in place whose input the kernels cannot read by whole cache lines where it
 * does not start one: 2 or 3 lane vectors, every one then across two lines (with more, the
 * kernels shift the vectors onto the lines for the cost of one vector more). Measured, input
 * and output 16 bytes past a line (as malloc gives), in place against staged: 112x112x32
 * 152 against 131 us, 80x80x48 108 against 101; 64x64x64 82 against 87, 56x56x128 115
 * against 132, 112x112x16 57 against 69. */
static bool staged_unless_aligned(const cb_problem *p) {
    bool narrow_three = three_in_place(p) && p->channels >= 2 * VEC && p->channels < 4 * VEC;
    return in_place(p) && (narrow_three || long_row_on_four_sets(p));
}

static bool staged(const cb_problem *p) {
    return vectored(p) && !in_place(p);
}

cb_dw_path cb_dw_path_of(const cb_problem *p) {
    return !cb_dw_channels_last(p) ? CB_DW_WINDOW
           : in_place(p)           ? CB_DW_IN_PLACE
           : staged(p)             ? CB_DW_STAGED
                                   : CB_DW_PLAIN;
}

/* 3x3 of stride 1 in whole lane vectors, one channel per lane: the strips, but where the
 * tensors come from memory. There the rows, whose next rows are requested while one is
 * computed (depthwise_direct.c's prefetch_next), ran 8 x 56 x 56 x 144 (1 thread, 16 bytes
 * past a line) in 2.84 ms (median of 12), the strips in 3.02, or 3.08 and 3.11 with the
 * next rows requested per sweep or per call: a strip walks down the rows, no stream for
 * the prefetchers to follow. */
static bool strips(const cb_problem *p) {
    bool s1 = p->s_h == 1 && p->s_w == 1 && p->d_h <= 2 && p->d_w <= 2;
    bool s2 = p->s_h == 2 && p->s_w == 2 && p->d_h == 1 && p->d_w == 1;
    bool three = p->k_h == 3 && p->k_w == 3 && (s1 || s2);
    bool five =
        p->k_h == 5 && p->k_w == 5 && p->s_h == 1 && p->s_w == 1 && p->d_h == 1 && p->d_w == 1;
    return vectored(p) && (three || five) && p->group_out == 1 && p->channels % VEC == 0 &&
           p->out_w >= 4 && !cb_streams_from_memory(p) && cb_dw_strips_available();
}

/* Whether the strips pass their rows through a buffer: where input and output pixels fall
 * in the same one or two L1 sets and lie alike within 4 KiB (closer than a cache line),
 * every load would wait for the stores before it (depthwise_strips.c). Measured (1 thread,
 * 7x7x1024 / 14x14x512, input on a page): output 0, 16 or 48 bytes before the input,
 * buffered 16 / 26 us against 29-31 / 33-36 in place; 64 bytes before or after, 128 and
 * 256 after, in place 13-17 / 18-19 against 16-28 / 23-34 buffered (the buffer helped
 * only within a line). An input off a cache line needs nothing: the strips read it in
 * place (16 bytes past a line, in place against copies of each strip's window: 112x112x32
 * 82 against 185 us, 80x80x48 64 against 125, 112x112x16 35 against 61). */
static bool strips_buffered(const cb_problem *p, const float *in, const float *out) {
    int64_t sets = cb_dw_pixel_sets(p->channels);
    if (sets >= 4) return false;
    uintptr_t period = 4096 / (uintptr_t)sets, d = ((uintptr_t)in - (uintptr_t)out) % period;
    return d < 64 || d > period - 64;
}

cb_dw_path cb_dw_rows_path_at(const cb_problem *p, const float *in) {
    bool aligned = (uintptr_t)in % 64 == 0;
    return !aligned && staged_unless_aligned(p) ? CB_DW_STAGED : cb_dw_path_of(p);
}

cb_dw_path cb_dw_path_at(const cb_problem *p, const float *in, const float *out) {
    if (strips(p)) return strips_buffered(p, in, out) ? CB_DW_STRIPS_BUFFERED : CB_DW_STRIPS;
    return cb_dw_rows_path_at(p, in);
}

/* Whether a task may stage its rows: the workspace has room for the ring. */
static bool may_stage(const cb_problem *p) {
    return staged(p) || staged_unless_aligned(p);
}

/* 3x3 windows of stride and dilation 1 run two output rows at once (depthwise_staged.c). */
bool cb_dw_pairs(const cb_problem *p) {
    return p->k_h == 3 && p->k_w == 3 && p->s_h == 1 && p->d_h == 1;
}

/* The ring holds every input row a window (or a pair of windows) can read: at most that
 * many exist. */
int64_t cb_dw_ring_rows(const cb_problem *p) {
    return cb_min((p->k_h - 1) * p->d_h + 1 + cb_dw_pairs(p), p->in_h);
}

int64_t cb_dw_slot_floats(const cb_problem *p, int64_t count) {
    return cb_mul_sat(cb_window_span(p, count), cb_dw_stage_stride(p->mid_channels));
}

/* Ring row k starts k slots and some lines in, rows 1, 2, 3, 4, 1, ... lines further apart:
 * one stride taught the prefetcher to run past the ring into the next worker's, taking lines it
 * was writing (effnet_dw5, 2 threads: 57 -> 36 us). Cyclic: a ring of many rows stays small. */
int64_t cb_dw_ring_offset(int64_t slot, int64_t k) {
    return k * slot + (k / 4 * 10 + k % 4 * (k % 4 + 1) / 2) * VEC;
}

int64_t cb_dw_ring_floats(const cb_problem *p, int64_t count) {
    int64_t slot = cb_dw_slot_floats(p, count), n = cb_dw_ring_rows(p);
    return n > 0 && slot > INT64_MAX / 2 / n ? INT64_MAX : cb_dw_ring_offset(slot, n);
}

static cb_dw_window window_of(const cb_problem *p, int64_t rows, int64_t count) {
    return cb_dw_window_of(rows, count, p->k_h, p->k_w, p->s_h, p->s_w, p->d_h, p->d_w);
}

/* Floats of a worker's staging: channels_last, the ring of staged rows and the kernel rows'
 * pointers into it; channels_first, the padded window of one channel. */
int64_t cb_dw_stage_floats(const cb_problem *p, const layout *l) {
    if (cb_dw_channels_last(p)) {
        if (!vectored(p)) return 0;
        int64_t pointers = 2 * (p->k_h + 1); /* rows of a pair of windows, as floats */
        int64_t ring = may_stage(p) ? cb_dw_ring_floats(p, l->seg) : 0;
        if (strips(p)) ring = cb_max(ring, cb_dw_strips_buffer_floats());
        return ring > INT64_MAX - pointers - ALIGN ? INT64_MAX : ring + pointers + ALIGN;
    }
    /* A window over 2^28 floats (1 GiB; a huge dilation stages the skipped columns too)
     * is declined through the workspace: also no overflow below. */
    double rows = (double)(l->band - 1) * (double)p->s_h + (double)(p->k_h - 1) * (double)p->d_h;
    double cols = (double)(l->seg - 1) * (double)p->s_w + (double)(p->k_w - 1) * (double)p->d_w;
    if ((rows + 1) * (cols + VEC + (double)p->s_w) > 0x1p28) return INT64_MAX;
    cb_dw_window w = window_of(p, l->band, l->seg);
    return w.rows * w.row + ALIGN;
}

/* SEPARABLE: the intermediate tile follows the staging. */
int64_t cb_dw_worker_floats(const cb_problem *p, const layout *l) {
    int64_t f = cb_dw_stage_floats(p, l);
    int64_t mid = p->has_pointwise ? cb_mul_sat(l->band * l->seg, p->mid_channels) : 0;
    return mid > INT64_MAX - f ? INT64_MAX : f + mid;
}

/* Whether a task's buffers stay in the L2 cache; where one output's window alone is more,
 * enough for 4 windows' span. */
static bool cache_sized(const cb_problem *p, const layout *l) {
    if (p->has_pointwise && l->band * l->seg > 1 &&
        cb_mul_sat(l->band * l->seg, p->mid_channels) > MID_FLOATS)
        return false;
    if (l->band * l->seg <= 1) return true;
    int64_t least = cb_min(cb_mul_sat(4, cb_window_span(p, 1)), p->out_w);
    /* A ring of several rows stays whole (within the budget): cutting its rows short would
     * stage every row again for each piece. */
    if (may_stage(p))
        return p->k_h > 1 || cb_mul_sat(cb_dw_ring_rows(p), cb_dw_slot_floats(p, l->seg)) <=
                                 cb_max(STAGE_FLOATS, cb_mul_sat(cb_dw_ring_rows(p),
                                                                 cb_dw_slot_floats(p, least)));
    return cb_dw_channels_last(p) || cb_dw_stage_floats(p, l) <= STAGE_FLOATS / 4 ||
           l->seg <= least;
}

/* Halves the band, then the segment, until the buffers fit `budget` floats and the cache. */
static void fit(const cb_problem *p, int64_t budget, layout *l) {
    while (cb_dw_worker_floats(p, l) > budget || !cache_sized(p, l)) {
        if (l->band > 1)
            l->bands = cb_ceil_div(p->out_h, cb_ceil_div(l->band, 2));
        else if (l->seg > 1)
            l->seg = cb_ceil_div(l->seg, 2);
        else
            return;
        l->band = cb_ceil_div(p->out_h, l->bands);
    }
}

/* One task per worker, as many as pay for themselves (a task of min_task_work: a few us).
 * Four per worker only staged more halo, once the workers ran alike (2 threads: deeplab_dw
 * 73 -> 69 us, mbv1_dw56 71 -> 65.5, convtasnet_dw 246 -> 211, quartz_c2 1.40 -> 1.29 ms). */
static int64_t wanted_tasks(const cb_problem *p, int threads) {
    double work =
        (double)p->batch * (double)p->out_plane * (double)p->mid_channels * (double)p->taps;
    double worth = work / min_task_work; /* compared as a double: it may exceed int64 */
    return threads <= 1 || worth < 2.0 ? 1 : worth < threads ? (int64_t)worth : threads;
}

/* Bands for `pieces` pieces of an image: a multiple of the workers (2 threads, 33x33x320: 2
 * bands 69 us, 7 bands 112), at most 1 + out_h / (2 halo): the halo staged again is at most
 * half the rows. */
static int64_t band_count(const cb_problem *p, int64_t pieces, int threads) {
    int64_t halo = staged(p) || !cb_dw_channels_last(p) ? (p->k_h - 1) * p->d_h : 0;
    int64_t most = halo > 0 ? 1 + p->out_h / (2 * halo) : p->out_h;
    int64_t bands = cb_min(cb_min(pieces, most), p->out_h);
    if (bands >= threads) bands = bands / threads * threads;
    return cb_max(bands, 1);
}

/* Cuts each image into `pieces`. channels_first: shares of the channels (whole planes:
 * nothing staged twice), then bands of rows or segments of a row. channels_last: bands or
 * segments, and channel shares only for what they cannot cut: two workers writing parts of
 * every pixel cost as much as the work they split (7x7x1024 on 2 threads: 20.5 us in two
 * shares, 11.8 with one share's output moved to a buffer of its own, 14-15 in bands). */
static void cut(const cb_problem *p, int64_t pieces, int threads, layout *l) {
    *l = (layout){.band = p->out_h, .seg = p->out_w, .bands = 1, .segs = 1, .parts = 1};
    if (pieces <= 1) return;
    int64_t most = p->has_pointwise         ? 1
                   : cb_dw_channels_last(p) ? p->mid_channels / SHARE
                                            : p->channels;
    if (!cb_dw_channels_last(p)) {
        l->parts = cb_max(cb_min(pieces, most), 1);
        pieces = cb_ceil_div(pieces, l->parts);
        if (pieces <= 1) return;
    }
    /* The strips cut the channels where each share keeps 4 vectors or more: a strip then
     * sweeps the whole height, and no worker's sweeps end next to another's rows, where the
     * prefetchers that learnt the sweep's stride run on into them. 2 threads, shares against
     * bands (the upper band swept upward): 33x33x320 dilation 2 37 against 50 us, 28x28x256
     * 19 against 25, 7x7x1024 11-12 against 13, 14x14x480 5x5 29 against 42; 14x14x512
     * 19.7 against 17.3. But not where an activation follows on the rows written: that
     * pass over half of each pixel ran into the other half (swish, 33x33x320: 145 against
     * 112 us; 14x14x480 5x5: 70 against 56). Nor SEPARABLE, whose tile keeps every channel
     * for the pointwise stage (`most` is 1: one task, one thread, 14x14x512 955 us on 2
     * threads as on 1). */
    if (strips(p) && !p->has_pointwise && cb_dw_fused(p) && p->mid_channels / threads >= 4 * VEC) {
        l->parts = cb_max(cb_min(pieces, most), 1);
        return;
    }
    if (p->out_h > 1) {
        l->bands = band_count(p, pieces, threads);
        l->band = cb_ceil_div(p->out_h, l->bands);
        /* channels_last: shares for what the bands cannot cut (7x7 kernel on a 7x7 image) */
        if (cb_dw_channels_last(p) && l->bands < threads)
            l->parts = cb_max(cb_min(cb_ceil_div(pieces, l->bands), most), 1);
        return;
    }
    /* One row: segments long enough for the pointwise GEMM (128 positions) and for their
     * halo (4 times it), not so long that the workers go short, as many as a multiple of
     * the workers where they are more (quartz_b3 ran 7 segments of 64 on 2 workers: 1.4x). */
    int64_t halo = cb_min(cb_window_span(p, 1) - 1, p->out_w);
    int64_t least = cb_max(p->has_pointwise ? 2 * MIN_SEG : MIN_SEG, 4 * halo);
    least = cb_min(least, cb_ceil_div(p->out_w, cb_max(threads, 1)));
    l->seg = cb_max(cb_ceil_div(p->out_w, pieces), least);
    int64_t segs = cb_ceil_div(p->out_w, l->seg);
    if (segs > threads && segs % threads != 0)
        l->seg = cb_ceil_div(p->out_w, segs / threads * threads);
    l->segs = cb_ceil_div(p->out_w, l->seg);
    if (cb_dw_channels_last(p)) l->parts = cb_max(cb_min(cb_ceil_div(pieces, l->segs), most), 1);
}

/* Input floats the tasks read (or stage) together: each band's window rows, each segment's
 * window columns, every lane, the halo again in each. Thin tasks restage the same rows over
 * and over: a 2x2 kernel of dilation 3000 on 4000 x 4 x 32 cut into 3000 one-output tasks,
 * each staging 3001 rows, ran 170 ms (0.6 for im2col_gemm) where the input alone said 0.5. */
double cb_dw_input_read(const cb_problem *p, const cb_params *params) {
    layout l = cb_dw_layout_of(p, params);
    double rows = (double)(l.band - 1) * (double)p->s_h + (double)(p->k_h - 1) * (double)p->d_h + 1;
    double cols = (double)cb_min(cb_window_span(p, l.seg), p->in_w);
    rows = rows < (double)p->in_h ? rows : (double)p->in_h;
    double lanes = (double)(cb_dw_channels_last(p) ? p->mid_channels : p->channels);
    return (double)p->batch * (double)l.bands * (double)l.segs * rows * cols * lanes;
}

/* Share k of `parts` of `total` lanes, cut at multiples of unit. */
static int64_t share_start(int64_t total, int64_t parts, int64_t k, int64_t unit) {
    return k >= parts ? total : k * total / parts / unit * unit;
}

/* channels_last: the shift that puts the shares' inner boundaries on the output's cache
 * lines, where every pixel starts at the same offset in one. Two workers writing halves of
 * a line, pixel after pixel: 7x7x1024 in two shares took 77 us on two threads, 22 on one. */
static int64_t share_shift(const cb_problem *p, const float *out) {
    if (!cb_dw_channels_last(p) || p->mid_channels % VEC != 0) return 0;
    int64_t mis = (int64_t)((uintptr_t)out / sizeof(float) % VEC);
    return (VEC - mis) % VEC;
}

cb_dw_tile cb_dw_locate(const cb_problem *p, const layout *l, int64_t task, const float *out) {
    int64_t shift = share_shift(p, out);
    cb_dw_tile t;
    int64_t part = task % l->parts, rest = task / l->parts;
    t.ow0 = rest % l->segs * l->seg;
    rest /= l->segs;
    int64_t band = rest % l->bands, rows = p->out_h / l->bands, more = p->out_h % l->bands;
    t.n = rest / l->bands;
    t.oh0 = band * rows + cb_min(band, more); /* the first `more` bands have a row more */
    t.oh1 = t.oh0 + rows + (band < more);
    t.ow1 = cb_min(t.ow0 + l->seg, p->out_w);
    int64_t lanes = cb_dw_channels_last(p) ? p->mid_channels : p->channels;
    int64_t unit = cb_dw_channels_last(p) ? VEC : 1;
    t.c0 = share_start(lanes, l->parts, part, unit) + (part > 0 ? shift : 0);
    t.c1 = share_start(lanes, l->parts, part + 1, unit) + (part + 1 < l->parts ? shift : 0);
    /* A sweep down the rows teaches the prefetchers its stride, and at its end they run on
     * into the band below, whose worker is writing there: 2 threads, 14x14x512 in two bands
     * 30.6 us so, 17.3 with the upper band swept upward; 112x112x32 40-73 against 39-40. */
    t.upward = l->bands > 1 && band % 2 == 0;
    return t;
}

cb_dw_layout cb_dw_layout_plan(const cb_problem *p, int threads, int64_t budget) {
    layout l;
    cut(p, cb_ceil_div(wanted_tasks(p, threads), cb_max(p->batch, 1)), threads, &l);
    fit(p, budget, &l);
    return l;
}
