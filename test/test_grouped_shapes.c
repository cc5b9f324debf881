/* Grouped convolutions of the sizes real networks have (ResNeXt, RegNet, grouped 1D
 * convolutions: 2 to 64 input and 2 to 32 output channels per group, up to 512 channels),
 * 1D and 2D, strides, dilations, same / valid / causal padding, every activation, bias on
 * and off, batch 1 to 8, 1 and 2 threads: where grouped_direct takes its blocked kernels,
 * its staged windows and its padded weights, which the random sweep's small layers seldom
 * reach. Each case is forced to grouped_direct (it must accept it) and compared with the
 * reference; the layers it must decline (channels_first, depthwise, ungrouped, groups
 * too wide, 1x1 kernels) are checked to be declined. */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

static const char *const strategy = "grouped_direct";

static void random_case(tu_rng *r, convblas_layer_desc *d, convblas_shape *in) {
    static const int64_t group_in[] = {2, 3, 4, 6, 8, 8, 12, 16, 16, 24, 32, 48, 64};
    static const int64_t group_out[] = {2, 4, 5, 8, 8, 8, 12, 16, 16, 20, 24, 32};
    static const int64_t groups[] = {2, 3, 4, 8, 16, 32};
    memset(d, 0, sizeof *d);
    memset(in, 0, sizeof *in);
    d->op = CONVBLAS_CONV;
    d->rank = tu_rng_chance(r, 0.5) ? 1 : 2;
    d->data_format = CONVBLAS_CHANNELS_LAST;
    d->activation = (convblas_activation)tu_rng_int(r, 0, CONVBLAS_LEAKY_RELU);
    d->activation_alpha = tu_rng_chance(r, 0.3) ? 0.1f : 0.0f;
    d->use_bias = tu_rng_chance(r, 0.6);
    int64_t g = TU_PICK(r, groups), cg = TU_PICK(r, group_in), fg = TU_PICK(r, group_out);
    while (g * cg > 512) g /= 2;
    d->groups = g;
    d->filters = g * fg;
    in->channels = g * cg;
    in->batch = tu_rng_chance(r, 0.6) ? tu_rng_int(r, 1, 2) : tu_rng_int(r, 3, 8);
    int dims = d->rank;
    for (int i = 0; i < dims; i++) {
        static const int64_t k1[] = {1, 2, 3, 3, 5, 7, 9}, k2[] = {1, 3, 3, 3, 5};
        d->kernel_size[i] = dims == 1 ? TU_PICK(r, k1) : TU_PICK(r, k2);
        d->strides[i] = tu_rng_chance(r, 0.7) ? 1 : tu_rng_int(r, 2, 3);
        d->dilation_rate[i] = tu_rng_chance(r, 0.75) ? 1 : tu_rng_int(r, 2, 4);
        in->spatial[i] = dims == 1 ? tu_rng_int(r, 8, 700) : tu_rng_int(r, 4, 30);
    }
    int pad = (int)tu_rng_int(r, 0, dims == 1 ? 2 : 1);
    d->padding = pad == 0 ? CONVBLAS_SAME : pad == 1 ? CONVBLAS_VALID : CONVBLAS_CAUSAL;
}

/* Forces grouped_direct on the case: it must run it and match the reference. */
static void check_case(const convblas_layer_desc *d, const convblas_shape *in, tu_rng *r,
                       int threads, bool own_workspace, tu_stats *st) {
    tu_data t;
    if (tu_data_make(&t, d, in, r) != CONVBLAS_OK) {
        CHECKF(false, "the reference rejected a case meant to be valid");
        tu_print_case(stderr, d, in);
        return;
    }
    tu_run_opts o = {.strategy = strategy, .threads = threads, .own_workspace = own_workspace};
    double err = 0;
    tu_run_result res = tu_run(d, in, &t, &o, &err);
    CHECKF(res != TU_RUN_UNSUPPORTED, "grouped_direct declined a layer it is for: %s",
           convblas_last_error());
    if (res == TU_RUN_UNSUPPORTED) tu_print_case(stderr, d, in);
    /* the slot after the strategies': forced grouped_direct runs */
    tu_tally(st, convblas_strategy_count(), res, err);
    tu_data_free(&t);
}

/* The layers grouped_direct must decline, each with a reason. */
static void check_declined(const convblas_layer_desc *d, const convblas_shape *in,
                           const char *what) {
    convblas_plan *plan = NULL;
    convblas_plan_options o = {.strategy = strategy, .threads = 1};
    convblas_status st = convblas_plan_create(&plan, d, in, &o);
    CHECKF(st == CONVBLAS_UNSUPPORTED && plan == NULL, "%s: grouped_direct gave status %s", what,
           tu_status_str(st));
    CHECKF(strstr(convblas_last_error(), strategy) != NULL, "%s: the message (%s) names no reason",
           what, convblas_last_error());
    convblas_plan_destroy(plan);
}

static void declined_layers(void) {
    convblas_layer_desc d = {.op = CONVBLAS_CONV,
                             .rank = 1,
                             .filters = 64,
                             .kernel_size = {3},
                             .padding = CONVBLAS_SAME,
                             .groups = 8};
    convblas_shape in = {.batch = 1, .spatial = {50}, .channels = 64};
    d.data_format = CONVBLAS_CHANNELS_FIRST;
    check_declined(&d, &in, "channels_first");
    d.data_format = CONVBLAS_CHANNELS_LAST;
    d.groups = 64;
    check_declined(&d, &in, "one input channel per group (depthwise)");
    d.groups = 1;
    check_declined(&d, &in, "groups 1");
    d.groups = 2, d.filters = 2 * 33;
    check_declined(&d, &in, "33 outputs per group");
    d.filters = 64, in.channels = 2 * 65;
    check_declined(&d, &in, "65 inputs per group");
    in.channels = 64, d.groups = 8, d.kernel_size[0] = 1;
    check_declined(&d, &in, "a 1x1 kernel");
    d.op = CONVBLAS_DEPTHWISE, d.groups = 0, d.kernel_size[0] = 3;
    check_declined(&d, &in, "DEPTHWISE");
}

/* Layers of published networks, and the edges of the kernels' paths. */
static void fixed_cases(tu_rng *r, tu_stats *st) {
    typedef struct {
        int rank;
        int64_t batch, h, w, c, f, g, k, s, d;
        convblas_padding pad;
        convblas_activation act;
    } layer;
    static const layer layers[] = {
        /* resnext1d, shortened: 8 in and 8 out per group */
        {1, 2, 1, 300, 256, 256, 32, 3, 1, 1, CONVBLAS_SAME, CONVBLAS_RELU},
        /* ResNeXt-50 32x4d, 2D: 4 per group (padded weights), stride 1 and 2 */
        {2, 1, 14, 14, 128, 128, 32, 3, 1, 1, CONVBLAS_SAME, CONVBLAS_RELU},
        {2, 2, 15, 15, 128, 128, 32, 3, 2, 1, CONVBLAS_SAME, CONVBLAS_RELU6},
        /* RegNetX: group width 24 (three vectors), 2D 7x7 */
        {2, 1, 7, 7, 240, 240, 10, 3, 1, 1, CONVBLAS_SAME, CONVBLAS_SWISH},
        /* 32 per group, 64 in per group, 12 out (a partial vector) */
        {1, 1, 1, 130, 256, 256, 8, 5, 1, 1, CONVBLAS_VALID, CONVBLAS_GELU},
        {1, 3, 1, 97, 512, 96, 8, 3, 1, 2, CONVBLAS_CAUSAL, CONVBLAS_LINEAR},
        /* a stride wider than the kernel, a dilation wider than the input */
        {1, 1, 1, 200, 64, 64, 8, 2, 5, 1, CONVBLAS_SAME, CONVBLAS_TANH},
        {1, 2, 1, 40, 32, 32, 4, 3, 1, 25, CONVBLAS_SAME, CONVBLAS_ELU},
        {2, 1, 9, 11, 48, 24, 6, 3, 1, 6, CONVBLAS_SAME, CONVBLAS_LEAKY_RELU},
        /* rows shorter than a block, one position */
        {1, 4, 1, 5, 64, 64, 8, 3, 1, 1, CONVBLAS_SAME, CONVBLAS_RELU},
        {2, 1, 1, 1, 64, 64, 4, 3, 1, 1, CONVBLAS_SAME, CONVBLAS_HARD_SWISH},
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const layer *l = &layers[i];
        convblas_layer_desc d = {.op = CONVBLAS_CONV,
                                 .rank = l->rank,
                                 .filters = l->f,
                                 .kernel_size = {l->k, l->k},
                                 .strides = {l->s, l->s},
                                 .dilation_rate = {l->d, l->d},
                                 .padding = l->pad,
                                 .groups = l->g,
                                 .activation = l->act,
                                 .use_bias = i % 2 == 0};
        convblas_shape in = {.batch = l->batch,
                             .spatial = {l->rank == 2 ? l->h : l->w, l->rank == 2 ? l->w : 0},
                             .channels = l->c};
        for (int threads = 1; threads <= 2; threads++)
            check_case(&d, &in, r, threads, threads == 2, st);
    }
}

int main(int argc, char **argv) {
    long cases = argc > 1 ? atol(argv[1]) : 300;
    if (tu_strategy_index(strategy) < 0) {
        printf("grouped_shapes: grouped_direct is not compiled in (-Dstrategies); skipped\n");
        return 77; /* meson's skip */
    }
    tu_rng r;
    tu_rng_seed(&r, 4242);
    tu_stats st;
    memset(&st, 0, sizeof st);
    declined_layers();
    fixed_cases(&r, &st);
    long run = 0, redrawn = 0;
    while (run < cases) {
        convblas_layer_desc d;
        convblas_shape in;
        random_case(&r, &d, &in);
        convblas_shape out;
        /* redraw what the reference would take too long on, valid windows too long, and
         * 1x1 kernels (declined: the per-group GEMMs run them) */
        bool one = d.kernel_size[0] == 1 && (d.rank == 1 || d.kernel_size[1] == 1);
        if (one || tu_conv_macs(&d, &in) > 3e6 ||
            convblas_output_shape(&d, &in, &out) != CONVBLAS_OK) {
            redrawn++;
            continue;
        }
        check_case(&d, &in, &r, (int)(run % 2) + 1, run % 3 == 0, &st);
        run++;
    }
    int s = convblas_strategy_count();
    printf("  %ld random cases (%ld redrawn), %ld runs of grouped_direct, %ld failed, max "
           "relative error %.3g\n",
           run, redrawn, st.executed[s], st.failed[s], st.max_err);
    CHECK(st.executed[s] == 2 * 11 + run);
    return tu_finish("grouped_shapes");
}
