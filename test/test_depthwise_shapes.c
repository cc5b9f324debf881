/* Depthwise and separable layers of the shapes real networks have (many channels, 3x3 at
 * stride 1 and 2, dilation 2, widths 7..56, multipliers 2 and 4, long 1D rows, several
 * threads): the sizes at which depthwise_direct takes its register-blocked, staged and
 * multi-task paths, which the random sweep's small layers never reach. Every strategy
 * and the planner are checked against the reference on each case. */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

static const int64_t channel_counts[] = {16, 32, 48, 144, 256, 320, 512, 1024};
static const int64_t widths[] = {7, 12, 14, 28, 33, 56};
static const int64_t lengths[] = {300, 517, 1000};
static const convblas_activation activations[] = {CONVBLAS_LINEAR, CONVBLAS_RELU, CONVBLAS_RELU6,
                                                  CONVBLAS_SWISH};

#define PICK(r, a) (a)[tu_rng_int(r, 0, (int64_t)(sizeof(a) / sizeof((a)[0])) - 1)]

/* Multiply-adds of the reference, kept small enough for a quick test. */
static double macs(const convblas_layer_desc *d, const convblas_shape *in) {
    double taps = (double)d->kernel_size[0] * (d->rank == 2 ? (double)d->kernel_size[1] : 1.0);
    double plane = (double)in->spatial[0] * (d->rank == 2 ? (double)in->spatial[1] : 1.0);
    double m = d->depth_multiplier ? (double)d->depth_multiplier : 1.0;
    double dw = (double)in->batch * plane * (double)in->channels * m * taps;
    double pw = d->op == CONVBLAS_SEPARABLE
                    ? (double)in->batch * plane * (double)in->channels * m * (double)d->filters
                    : 0.0;
    return dw + pw;
}

static void random_case(tu_rng *r, convblas_layer_desc *d, convblas_shape *in) {
    memset(d, 0, sizeof *d);
    memset(in, 0, sizeof *in);
    d->op = tu_rng_chance(r, 0.25) ? CONVBLAS_SEPARABLE : CONVBLAS_DEPTHWISE;
    d->rank = tu_rng_chance(r, 0.6) ? 2 : 1;
    d->data_format = tu_rng_chance(r, 0.75) ? CONVBLAS_CHANNELS_LAST : CONVBLAS_CHANNELS_FIRST;
    d->depth_multiplier = tu_rng_chance(r, 0.7) ? 1 : tu_rng_chance(r, 0.5) ? 2 : 4;
    d->activation = PICK(r, activations);
    d->use_bias = tu_rng_chance(r, 0.7);
    d->padding = tu_rng_chance(r, 0.7) ? CONVBLAS_SAME : CONVBLAS_VALID;
    in->batch = tu_rng_int(r, 1, 2);
    in->channels = PICK(r, channel_counts);
    if (d->rank == 2) {
        int64_t k = tu_rng_chance(r, 0.7) ? 3 : tu_rng_chance(r, 0.5) ? 5 : 7;
        d->kernel_size[0] = d->kernel_size[1] = k;
        int64_t s = tu_rng_chance(r, 0.3) ? 2 : 1;
        d->strides[0] = d->strides[1] = s;
        if (s == 1 && tu_rng_chance(r, 0.2)) d->dilation_rate[0] = d->dilation_rate[1] = 2;
        in->spatial[0] = PICK(r, widths);
        in->spatial[1] = tu_rng_chance(r, 0.8) ? in->spatial[0] : PICK(r, widths);
    } else {
        static const int64_t k1[] = {3, 4, 5, 7, 9, 13, 31};
        d->kernel_size[0] = PICK(r, k1);
        d->strides[0] = tu_rng_chance(r, 0.25) ? 2 : 1;
        if (d->strides[0] == 1 && tu_rng_chance(r, 0.2)) d->dilation_rate[0] = 2;
        if (d->op == CONVBLAS_DEPTHWISE && tu_rng_chance(r, 0.2)) d->padding = CONVBLAS_CAUSAL;
        in->spatial[0] = PICK(r, lengths);
    }
    d->filters = d->op == CONVBLAS_SEPARABLE ? tu_rng_int(r, 8, 96) : 0;
}

/* Layers whose tensors outgrow half the last-level cache (20 MB and more), where
 * depthwise_direct prefetches the rows it reads and writes next: 3x3 staged in pairs of rows,
 * and stride 2 read in place. Whether it did is in describe, printed; a machine with a larger
 * cache runs them without. */
static void beyond_cache(tu_stats *st) {
    static const int64_t cases[][4] = {{6, 56, 144, 1}, {5, 112, 64, 2}}; /* batch, size, C, s */
    for (int i = 0; i < 2; i++) {
        convblas_layer_desc d = {.op = CONVBLAS_DEPTHWISE,
                                 .rank = 2,
                                 .kernel_size = {3, 3},
                                 .strides = {cases[i][3], cases[i][3]},
                                 .padding = CONVBLAS_SAME,
                                 .activation = CONVBLAS_RELU6,
                                 .use_bias = true};
        convblas_shape in = {
            .batch = cases[i][0], .spatial = {cases[i][1], cases[i][1]}, .channels = cases[i][2]};
        for (int threads = 1; threads <= 2; threads++)
            tu_check_layer(&d, &in, 77 + (uint64_t)i, threads, st);
        convblas_plan *plan = NULL;
        convblas_plan_options o = {.strategy = "depthwise_direct", .threads = 2};
        char text[4096] = "";
        if (convblas_plan_create(&plan, &d, &in, &o) == CONVBLAS_OK)
            convblas_plan_describe(plan, text, sizeof text);
        convblas_plan_destroy(plan);
        printf("  beyond the cache: %lld x %lld x %lld x %lld stride %lld: %s\n",
               (long long)in.batch, (long long)in.spatial[0], (long long)in.spatial[1],
               (long long)in.channels, (long long)cases[i][3],
               strstr(text, "prefetching:") ? "prefetched" : "not prefetched (a larger cache)");
    }
}

/* A copy of n floats `shift` floats (at most 256) past a 64-byte boundary, in a buffer with
 * room for 16 more; *base is what to free. */
static float *shifted_copy(const float *src, size_t n, int64_t shift, float **base) {
    size_t bytes = ((n + 256 + 16) * sizeof(float) + 63) / 64 * 64;
    *base = aligned_alloc(64, bytes);
    if (!*base) {
        fprintf(stderr, "test: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < bytes / sizeof(float); i++) (*base)[i] = -7.0f;
    if (src) memcpy(*base + shift, src, n * sizeof(float));
    return *base + shift;
}

/* depthwise_direct runs 3x3 layers of stride 1 and 2, and 5x5, by vertical strips read in
 * place (lane vectors shifted onto the input's cache lines where a pixel is 4 vectors or
 * more), their rows passed through a buffer where 512 or 1024 channels put input and
 * output pixels in the same L1 sets (the buffers alike to 256 bytes modulo 4 KiB); narrow
 * rows whose strips cross the padding unevenly take the row kernels, which stage the rows
 * where the input starts off a line and the channels are 2 or 3 vectors. Input and output
 * at several offsets from a line and from each other, each dilation along each axis,
 * stride 2 and 5x5, against the reference, nothing written outside the output. */
/* One layer through depthwise_direct with input and output shift floats past a cache line,
 * against the reference; nothing written outside the output. */
static void check_placed(tu_stats *st, tu_rng *r, const convblas_layer_desc *d,
                         const convblas_shape *in, int threads, const int64_t shift[2],
                         const char *what) {
    tu_data t;
    if (tu_data_make(&t, d, in, r) != CONVBLAS_OK) return;
    convblas_plan *plan = NULL;
    convblas_plan_options o = {.strategy = "depthwise_direct", .threads = threads};
    convblas_status ps = convblas_plan_create(&plan, d, in, &o);
    CHECKF(ps == CONVBLAS_OK, "%s: %s", what, convblas_last_error());
    float *xb, *yb, *x = shifted_copy(t.x, t.sz.input, shift[0], &xb);
    float *y = shifted_copy(NULL, t.sz.output, shift[1], &yb);
    convblas_status es = convblas_execute(plan, x, &t.w, y, NULL);
    size_t worst = 0;
    double err = es == CONVBLAS_OK ? tu_rel_error(y, t.ref, t.sz.output, &worst) : 1.0;
    bool outside = false;
    for (int64_t i = 0; i < shift[1]; i++) outside |= yb[i] != -7.0f;
    for (int64_t i = 0; i < 16; i++) outside |= y[t.sz.output + (size_t)i] != -7.0f;
    bool ok = es == CONVBLAS_OK && err <= TU_TOLERANCE && !outside;
    CHECKF(ok,
           "%s, input %lld and output %lld floats past a line, %d threads: %s, error %.3g at %zu%s",
           what, (long long)shift[0], (long long)shift[1], threads, convblas_status_name(es), err,
           worst, outside ? ", wrote outside the output" : "");
    tu_tally(st, tu_strategy_index("depthwise_direct"), ok ? TU_RUN_OK : TU_RUN_FAIL, err);
    free(xb);
    free(yb);
    convblas_plan_destroy(plan);
    tu_data_free(&t);
}

static const int64_t shifts[][2] = {{0, 0},  {4, 4},  {1, 0},   {0, 7},
                                    {12, 3}, {8, 15}, {0, 100}, {3, 200}};

/* depthwise_direct runs 3x3 layers of stride 1 and 2, and 5x5, by vertical strips read in
 * place (lane vectors shifted onto the input's cache lines where a pixel is 4 vectors or
 * more), their rows passed through a buffer where 512 or 1024 channels put input and
 * output pixels in the same L1 sets (the buffers alike to 256 bytes modulo 4 KiB); narrow
 * rows whose strips cross the padding unevenly take the row kernels, which stage the rows
 * where the input starts off a line and the channels are 2 or 3 vectors. Input and output
 * at several offsets from a line and from each other, each dilation along each axis,
 * stride 2 and 5x5, against the reference, nothing written outside the output. */
static void alignments(tu_stats *st) {
    static const int64_t channels[] = {16, 32, 48, 64, 80, 144, 320, 512, 1024};
    static const int64_t sizes[][2] = {{9, 13}, {6, 5}, {5, 8}, {7, 4}};
    /* kernel size, stride, then dilation along the height and the width */
    static const int64_t configs[][4] = {{3, 1, 1, 1}, {3, 1, 2, 2}, {3, 1, 1, 2},
                                         {3, 1, 2, 1}, {3, 2, 1, 1}, {5, 1, 1, 1}};
    tu_rng r;
    tu_rng_seed(&r, 4242);
    int64_t n = 0;
    for (size_t c = 0; c < sizeof channels / sizeof *channels; c++)
        for (size_t cf = 0; cf < sizeof configs / sizeof *configs; cf++)
            for (size_t k = 0; k < sizeof shifts / sizeof *shifts; k++, n++) {
                convblas_layer_desc d = {.op = CONVBLAS_DEPTHWISE,
                                         .rank = 2,
                                         .kernel_size = {configs[cf][0], configs[cf][0]},
                                         .strides = {configs[cf][1], configs[cf][1]},
                                         .dilation_rate = {configs[cf][2], configs[cf][3]},
                                         .padding = n % 5 == 4 ? CONVBLAS_VALID : CONVBLAS_SAME,
                                         .activation = n % 7 == 6 ? CONVBLAS_GELU : CONVBLAS_RELU6,
                                         .use_bias = n % 3 != 2};
                const int64_t *hw = sizes[n % 4];
                convblas_shape in = {
                    .batch = 2, .spatial = {hw[0], hw[1]}, .channels = channels[c]};
                char what[160];
                snprintf(what, sizeof what,
                         "%lld x %lld x %lld channels, kernel %lld, stride %lld, dilation %lld x "
                         "%lld, %s",
                         (long long)hw[0], (long long)hw[1], (long long)channels[c],
                         (long long)configs[cf][0], (long long)configs[cf][1],
                         (long long)configs[cf][2], (long long)configs[cf][3],
                         tu_padding_name(d.padding));
                check_placed(st, &r, &d, &in, (int)(k % 2) + 1, shifts[k], what);
            }
}

/* channels_first 1D rows of stride 1 are read in place (no window) on AVX-512, their first
 * and last vectors masked to the row, in blocks of 8 vectors: lengths around one vector
 * and around a block, kernels up to padding of more than a vector (which takes the window),
 * each dilation and padding, multipliers, the separable stage, rows cut between threads. */
static void cf_rows(tu_stats *st) {
    static const int64_t lengths[] = {5,   16,  17,  31,  32,  33,  100,
                                      128, 129, 143, 144, 160, 255, 300};
    static const int64_t kernels[] = {1, 2, 3, 7, 13, 17, 33};
    static const convblas_padding pads[] = {CONVBLAS_SAME, CONVBLAS_VALID, CONVBLAS_CAUSAL};
    tu_rng r;
    tu_rng_seed(&r, 777);
    int64_t n = 0;
    for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++)
        for (size_t k = 0; k < sizeof kernels / sizeof *kernels; k++)
            for (int64_t dil = 1; dil <= 3; dil++, n++) {
                bool separable = n % 4 == 3;
                convblas_padding pad = pads[n % 3];
                if (separable && pad == CONVBLAS_CAUSAL) pad = CONVBLAS_SAME;
                if (pad == CONVBLAS_VALID && lengths[l] < (kernels[k] - 1) * dil + 1) continue;
                convblas_layer_desc d = {.op = separable ? CONVBLAS_SEPARABLE : CONVBLAS_DEPTHWISE,
                                         .rank = 1,
                                         .data_format = CONVBLAS_CHANNELS_FIRST,
                                         .kernel_size = {kernels[k]},
                                         .strides = {1},
                                         .dilation_rate = {dil},
                                         .padding = pad,
                                         .depth_multiplier = n % 5 == 2 ? 2 : 1,
                                         .filters = separable ? 24 : 0,
                                         .activation = n % 7 == 6   ? CONVBLAS_GELU
                                                       : n % 2 == 0 ? CONVBLAS_RELU6
                                                                    : CONVBLAS_LINEAR,
                                         .use_bias = n % 3 != 2};
                convblas_shape in = {
                    .batch = n % 2 + 1, .spatial = {lengths[l]}, .channels = n % 3 == 0 ? 3 : 16};
                char what[160];
                snprintf(what, sizeof what,
                         "channels_first %s length %lld, %lld channels x %lld, kernel %lld, "
                         "dilation %lld, %s",
                         separable ? "separable" : "depthwise", (long long)lengths[l],
                         (long long)in.channels, (long long)d.depth_multiplier,
                         (long long)kernels[k], (long long)dil, tu_padding_name(pad));
                check_placed(st, &r, &d, &in, (int)(n % 2) + 1, shifts[n % 8], what);
            }
}

/* channels_last one-row windows of more than 4 taps on 256 channels (4 L1 sets) are read in
 * place where the input starts a cache line and staged where it does not; 128 channels
 * always in place, 512 always staged: each at input and output offsets on and off a line,
 * depthwise and separable, the three paddings. */
static void cl_long_rows(tu_stats *st) {
    static const int64_t channels[] = {128, 256, 512};
    static const int64_t kernels[] = {5, 13, 31};
    static const convblas_padding pads[] = {CONVBLAS_SAME, CONVBLAS_VALID, CONVBLAS_CAUSAL};
    tu_rng r;
    tu_rng_seed(&r, 31);
    int64_t n = 0;
    for (size_t c = 0; c < sizeof channels / sizeof *channels; c++)
        for (size_t k = 0; k < sizeof kernels / sizeof *kernels; k++)
            for (size_t sh = 0; sh < sizeof shifts / sizeof *shifts; sh++, n++) {
                bool separable = n % 4 == 1;
                convblas_padding pad = pads[n % 3];
                if (separable && pad == CONVBLAS_CAUSAL) pad = CONVBLAS_SAME;
                convblas_layer_desc d = {.op = separable ? CONVBLAS_SEPARABLE : CONVBLAS_DEPTHWISE,
                                         .rank = 1,
                                         .kernel_size = {kernels[k]},
                                         .strides = {1},
                                         .dilation_rate = {n % 5 == 3 ? 2 : 1},
                                         .padding = pad,
                                         .filters = separable ? 32 : 0,
                                         .activation = n % 2 ? CONVBLAS_RELU : CONVBLAS_LINEAR,
                                         .use_bias = n % 3 != 2};
                convblas_shape in = {
                    .batch = 1, .spatial = {n % 2 ? 77 : 150}, .channels = channels[c]};
                char what[160];
                snprintf(
                    what, sizeof what,
                    "channels_last %s length %lld, %lld channels, kernel %lld, dilation %lld, %s",
                    separable ? "separable" : "depthwise", (long long)in.spatial[0],
                    (long long)channels[c], (long long)kernels[k], (long long)d.dilation_rate[0],
                    tu_padding_name(pad));
                check_placed(st, &r, &d, &in, (int)(n % 2) + 1, shifts[sh], what);
            }
}

static long plan_tasks(const convblas_layer_desc *d, const convblas_shape *in, int threads) {
    convblas_plan *plan = NULL;
    convblas_plan_options o = {.strategy = "depthwise_direct", .threads = threads};
    char text[4096] = "";
    if (convblas_plan_create(&plan, d, in, &o) == CONVBLAS_OK)
        convblas_plan_describe(plan, text, sizeof text);
    convblas_plan_destroy(plan);
    const char *at = strstr(text, "tasks ");
    return at ? strtol(at + 6, NULL, 10) : -1;
}

/* Every kernel path of depthwise_direct gives a second thread work on a layer of a few
 * hundred microseconds: one task would leave it idle. (The strips' channel-share cut once
 * gave SEPARABLE layers, whose tile keeps every channel, a single task.) */
static void threads_used(void) {
    static const struct {
        convblas_op op;
        int rank;
        int64_t k, s, d, size, channels;
        convblas_activation act;
        convblas_data_format format;
    } cases[] = {
        {CONVBLAS_DEPTHWISE, 2, 3, 1, 1, 14, 512, CONVBLAS_RELU6, CONVBLAS_CHANNELS_LAST},
        {CONVBLAS_DEPTHWISE, 2, 3, 1, 1, 56, 32, CONVBLAS_RELU6, CONVBLAS_CHANNELS_LAST},
        {CONVBLAS_DEPTHWISE, 2, 3, 1, 2, 33, 320, CONVBLAS_SWISH, CONVBLAS_CHANNELS_LAST},
        {CONVBLAS_DEPTHWISE, 2, 3, 2, 1, 56, 64, CONVBLAS_RELU, CONVBLAS_CHANNELS_LAST},
        {CONVBLAS_DEPTHWISE, 2, 5, 1, 1, 14, 480, CONVBLAS_SWISH, CONVBLAS_CHANNELS_LAST},
        {CONVBLAS_DEPTHWISE, 2, 7, 1, 1, 28, 96, CONVBLAS_LINEAR, CONVBLAS_CHANNELS_LAST},
        {CONVBLAS_SEPARABLE, 2, 3, 1, 1, 14, 512, CONVBLAS_RELU, CONVBLAS_CHANNELS_LAST},
        {CONVBLAS_SEPARABLE, 2, 5, 1, 1, 28, 128, CONVBLAS_RELU, CONVBLAS_CHANNELS_LAST},
        {CONVBLAS_DEPTHWISE, 2, 3, 1, 1, 56, 128, CONVBLAS_RELU6, CONVBLAS_CHANNELS_FIRST},
        {CONVBLAS_DEPTHWISE, 1, 7, 2, 1, 4096, 128, CONVBLAS_RELU, CONVBLAS_CHANNELS_LAST},
        {CONVBLAS_SEPARABLE, 1, 33, 1, 1, 800, 256, CONVBLAS_RELU, CONVBLAS_CHANNELS_LAST},
    };
    if (tu_strategy_index("depthwise_direct") < 0) return; /* not built (-Dstrategies) */
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        convblas_layer_desc d = {.op = cases[i].op,
                                 .rank = cases[i].rank,
                                 .kernel_size = {cases[i].k, cases[i].k},
                                 .strides = {cases[i].s, cases[i].s},
                                 .dilation_rate = {cases[i].d, cases[i].d},
                                 .padding = CONVBLAS_SAME,
                                 .data_format = cases[i].format,
                                 .activation = cases[i].act,
                                 .use_bias = true,
                                 .filters = cases[i].op == CONVBLAS_SEPARABLE ? 64 : 0};
        convblas_shape in = {.batch = 1,
                             .spatial = {cases[i].size, cases[i].rank == 2 ? cases[i].size : 0},
                             .channels = cases[i].channels};
        long tasks = plan_tasks(&d, &in, 2);
        CHECKF(tasks >= 2,
               "case %zu (%s, rank %d, kernel %lld, stride %lld, %lld channels): "
               "%ld tasks on 2 threads",
               i, d.op == CONVBLAS_SEPARABLE ? "separable" : "depthwise", d.rank,
               (long long)cases[i].k, (long long)cases[i].s, (long long)cases[i].channels, tasks);
    }
}

int main(int argc, char **argv) {
    long cases = argc > 1 ? atol(argv[1]) : 400;
    tu_rng r;
    tu_rng_seed(&r, 2026);
    tu_stats st;
    memset(&st, 0, sizeof st);
    long run = 0;
    while (run < cases) {
        convblas_layer_desc d;
        convblas_shape in;
        random_case(&r, &d, &in);
        if (macs(&d, &in) > 6e6) continue; /* redraw: the reference would take too long */
        if (d.padding == CONVBLAS_VALID &&
            (in.spatial[0] < (d.kernel_size[0] - 1) * (d.dilation_rate[0] ? 2 : 1) + 1 ||
             (d.rank == 2 && in.spatial[1] < (d.kernel_size[1] - 1) * 2 + 1)))
            continue;
        tu_data t;
        if (tu_data_make(&t, &d, &in, &r) != CONVBLAS_OK) continue;
        int threads = (int)(run % 3) + 1;
        tu_run_all(&d, &in, &t, threads, run % 2 == 1, &st);
        tu_data_free(&t);
        run++;
    }
    beyond_cache(&st);
    alignments(&st);
    cf_rows(&st);
    cl_long_rows(&st);
    threads_used();
    for (int s = 0; s <= convblas_strategy_count(); s++)
        printf("  %-18s executed %5ld  unsupported %5ld  failed %ld\n",
               s < convblas_strategy_count() ? convblas_strategy_name(s) : "(planner)",
               st.executed[s], st.unsupported[s], st.failed[s]);
    printf("  %ld cases, max relative error %.3g\n", run, st.max_err);
    return tu_finish("depthwise_shapes");
}
