/* Ungrouped convolutions, 1D and 2D, forced to dense_direct, the own AVX-512 micro-kernel.
 * channels_last puts 14 positions in a block's rows and 32 filters in the lanes (panels,
 * masked stores past the last filter); channels_first the reverse, 32 positions in the
 * lanes and 14 filters a block. So: filter counts on both sides of 14, 16 and 32 (1 to
 * 128), outputs shorter than a block, not multiples of one and over several tiles, sums of
 * 1 to 2000 terms, strides, dilations, same / valid / causal padding, every activation,
 * bias on and off, batch 1 to 4, 1 and 2 threads; layers of published networks (Whisper in
 * both formats, wav2vec 2.0, a TCN, a 2D one); a workspace limit just large enough and
 * ones too small; and the layers it must decline (grouped, depthwise, separable). Each
 * case is compared with the reference. Where the CPU or the build lacks AVX-512 it
 * declines every layer, saying so: then only that and the declines are checked. */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

static const char *const strategy = "dense_direct";

static void random_case(tu_rng *r, convblas_layer_desc *d, convblas_shape *in) {
    static const int64_t filters[] = {1,  3,  13, 14, 15, 16, 17, 28,  31,
                                      32, 33, 47, 48, 64, 65, 96, 100, 128};
    static const int64_t channels[] = {1, 2, 3, 5, 8, 16, 17, 32, 64, 80};
    static const int64_t k2[] = {1, 2, 3, 3, 5};
    memset(d, 0, sizeof *d);
    memset(in, 0, sizeof *in);
    d->op = CONVBLAS_CONV;
    d->rank = tu_rng_chance(r, 0.5) ? 1 : 2;
    d->data_format = tu_rng_chance(r, 0.35) ? CONVBLAS_CHANNELS_FIRST : CONVBLAS_CHANNELS_LAST;
    d->activation = (convblas_activation)tu_rng_int(r, 0, CONVBLAS_LEAKY_RELU);
    d->activation_alpha = tu_rng_chance(r, 0.3) ? 0.1f : 0.0f;
    d->use_bias = tu_rng_chance(r, 0.6);
    d->groups = tu_rng_chance(r, 0.5) ? 1 : 0; /* 0 is Keras's default, 1 */
    d->filters = TU_PICK(r, filters);
    in->channels = TU_PICK(r, channels);
    in->batch = tu_rng_int(r, 1, 4);
    int dims = d->rank;
    for (int i = 0; i < dims; i++) {
        d->kernel_size[i] = dims == 1 ? tu_rng_int(r, 1, 9) : TU_PICK(r, k2);
        d->strides[i] = tu_rng_chance(r, 0.6) ? 1 : tu_rng_int(r, 2, 3);
        d->dilation_rate[i] = tu_rng_chance(r, 0.7) ? 1 : tu_rng_int(r, 2, 4);
        /* rows within one block, a few blocks, and several tiles */
        int band = (int)tu_rng_int(r, 0, 2);
        in->spatial[i] = dims == 1 ? (band == 0   ? tu_rng_int(r, 1, 20)
                                      : band == 1 ? tu_rng_int(r, 15, 120)
                                                  : tu_rng_int(r, 120, 600))
                                   : (band == 0 ? tu_rng_int(r, 1, 6) : tu_rng_int(r, 5, 24));
    }
    int pad = (int)tu_rng_int(r, 0, dims == 1 ? 2 : 1);
    d->padding = pad == 0 ? CONVBLAS_SAME : pad == 1 ? CONVBLAS_VALID : CONVBLAS_CAUSAL;
}

/* Forces dense_direct on the case with threads first..last on one set of data (the
 * reference is the cost): it must run it and match the reference. */
static void check_case(const convblas_layer_desc *d, const convblas_shape *in, tu_rng *r, int first,
                       int last, size_t limit, bool own_workspace, tu_stats *st) {
    tu_data t;
    if (tu_data_make(&t, d, in, r) != CONVBLAS_OK) {
        CHECKF(false, "the reference rejected a case meant to be valid");
        tu_print_case(stderr, d, in);
        return;
    }
    for (int threads = first; threads <= last; threads++) {
        tu_run_opts o = {.strategy = strategy,
                         .threads = threads,
                         .own_workspace = own_workspace,
                         .workspace_limit = limit};
        double err = 0;
        tu_run_result res = tu_run(d, in, &t, &o, &err);
        CHECKF(res != TU_RUN_UNSUPPORTED, "dense_direct declined a layer it is for: %s",
               convblas_last_error());
        if (res == TU_RUN_UNSUPPORTED) tu_print_case(stderr, d, in);
        /* the slot after the strategies': forced dense_direct runs */
        tu_tally(st, convblas_strategy_count(), res, err);
    }
    tu_data_free(&t);
}

/* Plans the layer forced to dense_direct and destroys the plan; *workspace (if not NULL)
 * gets its size. */
static convblas_status plan_forced(const convblas_layer_desc *d, const convblas_shape *in,
                                   int threads, size_t limit, size_t *workspace) {
    convblas_plan *plan = NULL;
    convblas_plan_options o = {.strategy = strategy, .threads = threads, .workspace_limit = limit};
    convblas_status st = convblas_plan_create(&plan, d, in, &o);
    CHECKF(st == CONVBLAS_OK || plan == NULL, "a failed plan_create left *plan set");
    if (workspace) *workspace = convblas_plan_workspace_size(plan);
    convblas_plan_destroy(st == CONVBLAS_OK ? plan : NULL);
    return st;
}

/* A layer dense_direct must decline, with the strategy's name and the reason. */
static void check_declined(const convblas_layer_desc *d, const convblas_shape *in, const char *what,
                           const char *reason) {
    convblas_status st = plan_forced(d, in, 1, 0, NULL);
    const char *msg = convblas_last_error();
    CHECKF(st == CONVBLAS_UNSUPPORTED, "%s: dense_direct gave status %s", what, tu_status_str(st));
    CHECKF(strstr(msg, strategy) && strstr(msg, reason), "%s: the message (%s) lacks %s or %s",
           what, msg, strategy, reason);
}

static const convblas_layer_desc base = {.op = CONVBLAS_CONV,
                                         .rank = 1,
                                         .filters = 64,
                                         .kernel_size = {3},
                                         .padding = CONVBLAS_SAME,
                                         .activation = CONVBLAS_RELU,
                                         .use_bias = true};
static const convblas_shape base_in = {.batch = 2, .spatial = {50}, .channels = 64};

/* The reasons come before the CPU's in dense_direct's checks: these hold without AVX-512. */
static void declined_layers(void) {
    convblas_layer_desc d = base;
    d.groups = 2;
    check_declined(&d, &base_in, "groups 2", "groups");
    d = base, d.op = CONVBLAS_DEPTHWISE, d.depth_multiplier = 1;
    check_declined(&d, &base_in, "DEPTHWISE", "CONV");
    d = base, d.op = CONVBLAS_SEPARABLE, d.depth_multiplier = 1;
    check_declined(&d, &base_in, "SEPARABLE", "CONV");
}

/* Layers of published networks, some shortened for the reference's sake, and the filter
 * counts one short of and one past a panel. */
static void fixed_cases(tu_rng *r, tu_stats *st) {
    typedef struct {
        int rank;
        int64_t batch, h, w, c, f, k, s, d;
        convblas_padding pad;
        convblas_activation act;
        bool first; /* channels_first */
    } layer;
    static const layer layers[] = {
        /* Whisper's conv1 (80 mel bins to whisper-tiny's d_model), NWC and NCW */
        {1, 1, 1, 3000, 80, 384, 3, 1, 1, CONVBLAS_SAME, CONVBLAS_GELU, false},
        {1, 1, 1, 3000, 80, 384, 3, 1, 1, CONVBLAS_SAME, CONVBLAS_GELU, true},
        /* wav2vec 2.0's feature encoder, layer 0: one second of raw audio */
        {1, 1, 1, 16000, 1, 512, 10, 5, 1, CONVBLAS_VALID, CONVBLAS_GELU, false},
        /* a TCN block at dilation 8 */
        {1, 4, 1, 1024, 128, 128, 3, 1, 8, CONVBLAS_CAUSAL, CONVBLAS_RELU, false},
        /* a small image CNN's second layer */
        {2, 1, 28, 28, 64, 96, 3, 1, 1, CONVBLAS_SAME, CONVBLAS_RELU, false},
        /* 100 filters: 3 panels of 32 and one of 4; channels_first: 7 blocks of 14 and one of 2 */
        {1, 2, 1, 300, 48, 100, 5, 2, 1, CONVBLAS_SAME, CONVBLAS_SWISH, false},
        {1, 2, 1, 300, 48, 100, 5, 2, 1, CONVBLAS_SAME, CONVBLAS_SWISH, true},
        {2, 2, 17, 23, 17, 65, 3, 2, 2, CONVBLAS_VALID, CONVBLAS_ELU, false},
        {2, 3, 13, 9, 3, 31, 5, 1, 1, CONVBLAS_SAME, CONVBLAS_LEAKY_RELU, false},
        /* channels_first: 33 positions (a lane block and 1) for 2 blocks of 14 filters; 32
         * positions (one lane block) for 14 filters and 1 */
        {2, 2, 3, 11, 16, 28, 3, 1, 1, CONVBLAS_SAME, CONVBLAS_HARD_SWISH, true},
        {1, 3, 1, 34, 5, 15, 3, 1, 1, CONVBLAS_VALID, CONVBLAS_TANH, true},
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
                                 .data_format =
                                     l->first ? CONVBLAS_CHANNELS_FIRST : CONVBLAS_CHANNELS_LAST,
                                 .activation = l->act,
                                 .use_bias = i % 3 != 1};
        convblas_shape in = {.batch = l->batch,
                             .spatial = {l->rank == 2 ? l->h : l->w, l->rank == 2 ? l->w : 0},
                             .channels = l->c};
        check_case(&d, &in, r, 1, 2, 0, i % 2 == 0, st);
    }
}

/* The workspace is the packed kernel and one block's rows per worker: a limit of the
 * default plan's size, or of one worker's, must still plan and run; anything less, down to
 * a few bytes, must fail cleanly. */
static void workspace_limits(tu_rng *r, tu_stats *st) {
    convblas_layer_desc d = base;
    d.filters = 48, d.kernel_size[0] = 5;
    size_t two = 0, one = 0;
    CHECK(plan_forced(&d, &base_in, 2, 0, &two) == CONVBLAS_OK);
    CHECK(plan_forced(&d, &base_in, 1, 0, &one) == CONVBLAS_OK);
    CHECKF(one > 0 && one < two, "workspace of 1 thread %zu, of 2 threads %zu", one, two);
    check_case(&d, &base_in, r, 2, 2, two, true, st);
    check_case(&d, &base_in, r, 2, 2, one, false, st); /* one worker fits */
    const size_t limits[] = {4, 1024, one / 4, one - 1};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        size_t limit = limits[i];
        convblas_status s = plan_forced(&d, &base_in, 2, limit, NULL);
        CHECKF(s == CONVBLAS_UNSUPPORTED && strstr(convblas_last_error(), "workspace"),
               "a limit of %zu bytes gave %s: %s", limit, tu_status_str(s), convblas_last_error());
    }
}

/* dense_direct planned on a layer it is for: OK, or declined for want of AVX-512. */
static bool kernel_available(void) {
    convblas_status st = plan_forced(&base, &base_in, 1, 0, NULL);
    if (st == CONVBLAS_OK) return true;
    CHECKF(st == CONVBLAS_UNSUPPORTED && strstr(convblas_last_error(), "AVX-512"),
           "dense_direct on a plain Conv1D: %s, %s", tu_status_str(st), convblas_last_error());
    printf("dense_shapes: %s; only the declines checked\n", convblas_last_error());
    return false;
}

int main(int argc, char **argv) {
    long cases = argc > 1 ? atol(argv[1]) : 250;
    if (tu_strategy_index(strategy) < 0) {
        printf("dense_shapes: dense_direct is not compiled in (-Dstrategies); skipped\n");
        return 77; /* meson's skip */
    }
    declined_layers();
    if (!kernel_available()) return tu_finish("dense_shapes");
    tu_rng r;
    tu_rng_seed(&r, 1414);
    tu_stats st;
    memset(&st, 0, sizeof st);
    fixed_cases(&r, &st);
    workspace_limits(&r, &st);
    long run = 0, redrawn = 0, short_rows = 0, ragged = 0, long_rows = 0;
    while (run < cases) {
        convblas_layer_desc d;
        convblas_shape in, out;
        random_case(&r, &d, &in);
        while (tu_conv_macs(&d, &in) > 1.2e7 && in.batch > 1) in.batch--; /* keep the wide layers */
        if (tu_conv_macs(&d, &in) > 1.2e7 || convblas_output_shape(&d, &in, &out) != CONVBLAS_OK) {
            redrawn++;
            continue;
        }
        /* positions of a block: the rows (channels_last) or the lanes (channels_first) */
        int64_t block = d.data_format == CONVBLAS_CHANNELS_LAST ? 14 : 32;
        int64_t positions = out.spatial[0] * (d.rank == 2 ? out.spatial[1] : 1);
        short_rows += positions < block;
        ragged += positions > block && positions % block != 0;
        long_rows += positions > 10 * block;
        check_case(&d, &in, &r, 1, 2, 0, run % 3 == 0, &st);
        run++;
    }
    int s = convblas_strategy_count();
    printf("  %ld random cases (%ld redrawn): %ld with outputs shorter than a block, %ld not "
           "a multiple of one, %ld over 10 blocks\n",
           run, redrawn, short_rows, ragged, long_rows);
    printf("  %ld runs of dense_direct, %ld failed, max relative error %.3g\n", st.executed[s],
           st.failed[s], st.max_err);
    CHECK(short_rows > 0 && ragged > 0 && long_rows > 0); /* the seed still reaches them */
    CHECK(st.executed[s] == 2 * 11 + 2 + 2 * run);
    return tu_finish("dense_shapes");
}
