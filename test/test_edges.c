/* Edge cases, each through the planner's choice and every strategy forced, against the
 * reference: length 1, kernel longer than the input, channel counts that are not multiples of
 * a SIMD width, one channel, a huge kernel, 1xN and Nx1 kernels, stride larger than the
 * kernel, extreme activation inputs, thread counts, and a long input whose workspace must
 * stay bounded by tiling. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static tu_stats stats;
static uint64_t seed = 1;

static void check(const convblas_layer_desc *d, const convblas_shape *in) {
    int threads = (int)(seed % 3) + 1;
    tu_check_layer(d, in, seed++, threads, &stats);
}

static convblas_layer_desc layer1(convblas_op op, int64_t filters, int64_t k, int64_t s, int64_t dl,
                                  convblas_padding p, convblas_data_format f) {
    convblas_layer_desc d = {.op = op,
                             .rank = 1,
                             .filters = filters,
                             .kernel_size = {k},
                             .strides = {s},
                             .dilation_rate = {dl},
                             .padding = p,
                             .data_format = f,
                             .depth_multiplier = op == CONVBLAS_CONV ? 0 : 2,
                             .activation = CONVBLAS_RELU,
                             .use_bias = true};
    return d;
}

static convblas_layer_desc layer2(convblas_op op, int64_t filters, int64_t kh, int64_t kw,
                                  int64_t sh, int64_t sw, convblas_padding p,
                                  convblas_data_format f) {
    convblas_layer_desc d = {.op = op,
                             .rank = 2,
                             .filters = filters,
                             .kernel_size = {kh, kw},
                             .strides = {sh, sw},
                             .padding = p,
                             .data_format = f,
                             .activation = CONVBLAS_TANH,
                             .use_bias = true};
    return d;
}

static const convblas_op ops[] = {CONVBLAS_CONV, CONVBLAS_DEPTHWISE, CONVBLAS_SEPARABLE};
static const convblas_data_format formats[] = {CONVBLAS_CHANNELS_LAST, CONVBLAS_CHANNELS_FIRST};

static void length_one(void) {
    for (int o = 0; o < 3; o++) {
        for (int f = 0; f < 2; f++) {
            /* rank 1, length 1: valid with kernel 1; same and causal with longer kernels */
            convblas_shape in = {.batch = 2, .spatial = {1}, .channels = 3};
            convblas_layer_desc d = layer1(ops[o], 4, 1, 1, 1, CONVBLAS_VALID, formats[f]);
            check(&d, &in);
            for (int64_t k = 1; k <= 5; k += 2) {
                for (int64_t s = 1; s <= 3; s++) {
                    d = layer1(ops[o], 4, k, s, 2, CONVBLAS_SAME, formats[f]);
                    check(&d, &in);
                    d.padding = CONVBLAS_CAUSAL;
                    check(&d, &in);
                }
            }
            /* rank 2, 1 x 1 */
            convblas_shape in2 = {.batch = 1, .spatial = {1, 1}, .channels = 5};
            d = layer2(ops[o], 3, 1, 1, 1, 1, CONVBLAS_VALID, formats[f]);
            check(&d, &in2);
            d = layer2(ops[o], 3, 3, 3, 2, 1, CONVBLAS_SAME, formats[f]);
            check(&d, &in2);
        }
    }
}

static void kernel_longer_than_input(void) {
    for (int o = 0; o < 3; o++) {
        for (int f = 0; f < 2; f++) {
            for (int64_t dl = 1; dl <= 2; dl++) {
                for (int64_t s = 1; s <= 2; s++) {
                    convblas_shape in = {.batch = 2, .spatial = {5}, .channels = 3};
                    convblas_layer_desc d = layer1(ops[o], 5, 9, s, dl, CONVBLAS_SAME, formats[f]);
                    check(&d, &in);
                    d.padding = CONVBLAS_CAUSAL;
                    check(&d, &in);
                    convblas_shape in2 = {.batch = 1, .spatial = {3, 4}, .channels = 2};
                    convblas_layer_desc d2 =
                        layer2(ops[o], 3, 7, 6, s, 3 - s, CONVBLAS_SAME, formats[f]);
                    d2.dilation_rate[0] = dl;
                    check(&d2, &in2);
                }
            }
        }
    }
}

static void odd_channels(void) {
    static const int64_t counts[] = {1, 3, 7, 13, 17, 33};
    for (int i = 0; i < 6; i++) {
        for (int j = 0; j < 6; j++) {
            convblas_data_format f = formats[(i + j) % 2];
            convblas_shape in = {.batch = 2, .spatial = {11}, .channels = counts[i]};
            convblas_layer_desc d = layer1(CONVBLAS_CONV, counts[j], 3, 1, 1, CONVBLAS_SAME, f);
            check(&d, &in);
            d = layer1(CONVBLAS_SEPARABLE, counts[j], 3, 2, 1, CONVBLAS_CAUSAL, f);
            d.depth_multiplier = j % 3 + 1;
            check(&d, &in);
            convblas_shape in2 = {.batch = 1, .spatial = {5, 6}, .channels = counts[i]};
            convblas_layer_desc d2 =
                layer2(CONVBLAS_CONV, counts[j], 3, 2, 1, 1, CONVBLAS_VALID, f);
            check(&d2, &in2);
        }
        for (int64_t m = 1; m <= 4; m++) {
            convblas_shape in = {.batch = 3, .spatial = {9}, .channels = counts[i]};
            convblas_layer_desc d =
                layer1(CONVBLAS_DEPTHWISE, 0, 4, 1, 1, CONVBLAS_CAUSAL, formats[m % 2]);
            d.depth_multiplier = m;
            check(&d, &in);
            convblas_shape in2 = {.batch = 2, .spatial = {7, 5}, .channels = counts[i]};
            convblas_layer_desc d2 =
                layer2(CONVBLAS_DEPTHWISE, 0, 3, 3, 1, 1, CONVBLAS_SAME, formats[(m + 1) % 2]);
            d2.depth_multiplier = m;
            check(&d2, &in2);
        }
    }
    /* groups: every divisor of 12 channels and 24 filters, incl. one channel per group */
    static const int64_t groups[] = {1, 2, 3, 4, 6, 12};
    for (int g = 0; g < 6; g++) {
        for (int f = 0; f < 2; f++) {
            convblas_shape in = {.batch = 2, .spatial = {10}, .channels = 12};
            convblas_layer_desc d = layer1(CONVBLAS_CONV, 24, 3, 1, 2, CONVBLAS_SAME, formats[f]);
            d.groups = groups[g];
            check(&d, &in);
            convblas_shape in2 = {.batch = 1, .spatial = {6, 5}, .channels = 12};
            convblas_layer_desc d2 =
                layer2(CONVBLAS_CONV, 12, 3, 3, 2, 1, CONVBLAS_SAME, formats[f]);
            d2.groups = groups[g];
            check(&d2, &in2);
        }
    }
}

static void huge_kernel(void) {
    for (int o = 0; o < 3; o++) {
        for (int f = 0; f < 2; f++) {
            convblas_shape in = {.batch = 2, .spatial = {20}, .channels = 3};
            convblas_layer_desc d = layer1(ops[o], 4, 101, 1, 1, CONVBLAS_SAME, formats[f]);
            check(&d, &in);
            d.padding = CONVBLAS_CAUSAL;
            check(&d, &in);
            d.strides[0] = 3;
            check(&d, &in);
            convblas_shape in_long = {.batch = 1, .spatial = {130}, .channels = 3};
            d = layer1(ops[o], 4, 101, 1, 1, CONVBLAS_VALID, formats[f]);
            check(&d, &in_long);
        }
    }
}

static void one_by_n(void) {
    for (int o = 0; o < 3; o++) {
        for (int f = 0; f < 2; f++) {
            convblas_shape in = {.batch = 2, .spatial = {6, 9}, .channels = 3};
            convblas_layer_desc d = layer2(ops[o], 5, 1, 5, 1, 2, CONVBLAS_SAME, formats[f]);
            check(&d, &in);
            d = layer2(ops[o], 5, 5, 1, 2, 1, CONVBLAS_VALID, formats[f]);
            check(&d, &in);
            convblas_shape row = {.batch = 1, .spatial = {1, 17}, .channels = 4};
            d = layer2(ops[o], 3, 1, 4, 1, 1, CONVBLAS_VALID, formats[f]);
            check(&d, &row);
            d = layer2(ops[o], 3, 3, 4, 1, 3, CONVBLAS_SAME, formats[f]);
            check(&d, &row);
            convblas_shape col = {.batch = 2, .spatial = {17, 1}, .channels = 4};
            d = layer2(ops[o], 3, 4, 1, 1, 1, CONVBLAS_VALID, formats[f]);
            check(&d, &col);
            d = layer2(ops[o], 3, 4, 3, 3, 1, CONVBLAS_SAME, formats[f]);
            d.dilation_rate[0] = 2;
            check(&d, &col);
            /* 1x1 everywhere: the pointwise case at rank 2 */
            d = layer2(ops[o], 7, 1, 1, 1, 1, CONVBLAS_SAME, formats[f]);
            check(&d, &in);
        }
    }
}

static void large_stride(void) {
    for (int o = 0; o < 3; o++) {
        for (int f = 0; f < 2; f++) {
            convblas_shape in = {.batch = 2, .spatial = {23}, .channels = 3};
            convblas_layer_desc d = layer1(ops[o], 4, 2, 5, 1, CONVBLAS_VALID, formats[f]);
            check(&d, &in);
            d.padding = CONVBLAS_SAME;
            check(&d, &in);
            d.padding = CONVBLAS_CAUSAL;
            check(&d, &in);
            d = layer1(ops[o], 4, 1, 7, 1, CONVBLAS_VALID, formats[f]); /* kernel 1, stride 7 */
            check(&d, &in);
            convblas_shape in2 = {.batch = 1, .spatial = {11, 13}, .channels = 2};
            convblas_layer_desc d2 = layer2(ops[o], 3, 2, 1, 4, 3, CONVBLAS_SAME, formats[f]);
            check(&d2, &in2);
            d2.padding = CONVBLAS_VALID;
            check(&d2, &in2);
        }
    }
}

static void batch_edges(void) {
    for (int o = 0; o < 3; o++) {
        for (int f = 0; f < 2; f++) {
            convblas_shape in = {.batch = 0, .spatial = {8}, .channels = 3};
            convblas_layer_desc d = layer1(ops[o], 4, 3, 1, 1, CONVBLAS_SAME, formats[f]);
            check(&d, &in);
            convblas_shape in2 = {.batch = 0, .spatial = {4, 5}, .channels = 3};
            convblas_layer_desc d2 = layer2(ops[o], 4, 3, 3, 1, 1, CONVBLAS_VALID, formats[f]);
            check(&d2, &in2);
            in.batch = 37; /* an extended batch, e.g. (37) or (1, 37) */
            check(&d, &in);
        }
    }
}

/* Inputs scaled so the pre-activation values reach +-300: exp() overflows in float there,
 * which softplus, sigmoid, swish, gelu and elu must survive. */
static void extreme_activations(void) {
    for (int a = 0; a <= (int)CONVBLAS_LEAKY_RELU; a++) {
        for (int o = 0; o < 3; o++) {
            convblas_layer_desc d = layer1(ops[o], 3, 2, 1, 1, CONVBLAS_SAME, formats[a % 2]);
            d.activation = (convblas_activation)a;
            d.activation_alpha = a % 3 == 0 ? 0.0f : 0.7f;
            convblas_shape in = {.batch = 2, .spatial = {9}, .channels = 2};
            tu_rng rng;
            tu_rng_seed(&rng, seed++);
            tu_data t;
            convblas_status st = tu_data_make(&t, &d, &in, &rng);
            CHECK(st == CONVBLAS_OK);
            if (st != CONVBLAS_OK) continue;
            for (size_t i = 0; i < t.sz.input; i++) t.x_copy[i] = t.x[i] *= 300.0f;
            CHECK(ref_forward(&d, &in, t.x, &t.w, t.ref, NULL) == CONVBLAS_OK);
            tu_run_all(&d, &in, &t, 1, a % 2 == 0, &stats);
            tu_data_free(&t);
        }
    }
    /* the reference itself at the extremes (so a wrong oracle cannot pass silently) */
    CHECK(ref_activation(CONVBLAS_SOFTPLUS, 0, 1000.0) == 1000.0);
    CHECK(ref_activation(CONVBLAS_SOFTPLUS, 0, -1000.0) == 0.0);
    CHECK(ref_activation(CONVBLAS_SIGMOID, 0, -1000.0) == 0.0);
    CHECK(ref_activation(CONVBLAS_SWISH, 0, -1000.0) == 0.0);
    CHECK(ref_activation(CONVBLAS_ELU, 0, -1000.0) == -1.0);
    CHECK(ref_activation(CONVBLAS_ELU, 0.5, -1000.0) == -0.5);
    CHECK(ref_activation(CONVBLAS_LEAKY_RELU, 0, -10.0) == -2.0);
    CHECK(fabs(ref_activation(CONVBLAS_HARD_SIGMOID, 0, 1.0) - 0.7) < 1e-12);
    CHECK(ref_activation(CONVBLAS_HARD_SIGMOID, 0, 3.0) == 1.0);
    CHECK(fabs(ref_activation(CONVBLAS_HARD_SWISH, 0, 1.0) - 4.0 / 6.0) < 1e-12);
    CHECK(ref_activation(CONVBLAS_RELU6, 0, 7.0) == 6.0);
}

/* Threads 1, 2, 3, 7: every strategy gives the reference's answer, and the answers agree. */
static void thread_counts(void) {
    convblas_layer_desc layers[4];
    convblas_shape inputs[4];
    layers[0] = layer1(CONVBLAS_CONV, 24, 5, 1, 1, CONVBLAS_SAME, CONVBLAS_CHANNELS_LAST);
    inputs[0] = (convblas_shape){.batch = 3, .spatial = {300}, .channels = 16};
    layers[1] = layer2(CONVBLAS_DEPTHWISE, 0, 3, 3, 1, 1, CONVBLAS_SAME, CONVBLAS_CHANNELS_FIRST);
    layers[1].depth_multiplier = 2;
    inputs[1] = (convblas_shape){.batch = 2, .spatial = {20, 21}, .channels = 12};
    layers[2] = layer1(CONVBLAS_SEPARABLE, 20, 7, 2, 1, CONVBLAS_CAUSAL, CONVBLAS_CHANNELS_LAST);
    inputs[2] = (convblas_shape){.batch = 1, .spatial = {1001}, .channels = 9};
    layers[3] = layer2(CONVBLAS_CONV, 16, 3, 3, 1, 1, CONVBLAS_VALID, CONVBLAS_CHANNELS_FIRST);
    layers[3].groups = 2;
    inputs[3] = (convblas_shape){.batch = 1, .spatial = {30, 29}, .channels = 8};
    static const int threads[] = {1, 2, 3, 7};
    int nstrat = convblas_strategy_count();
    for (int l = 0; l < 4; l++) {
        tu_rng rng;
        tu_rng_seed(&rng, seed++);
        tu_data t;
        convblas_status st = tu_data_make(&t, &layers[l], &inputs[l], &rng);
        CHECK(st == CONVBLAS_OK);
        if (st != CONVBLAS_OK) continue;
        float *first = malloc(t.sz.output * sizeof *first);
        float *other = malloc(t.sz.output * sizeof *other);
        CHECK(first && other);
        for (int s = -1; s < nstrat && first && other; s++) {
            const char *name = s < 0 ? NULL : convblas_strategy_name(s);
            bool have_first = false;
            for (int i = 0; i < 4; i++) {
                tu_run_opts o = {.strategy = name,
                                 .threads = threads[i],
                                 .own_workspace = i % 2 == 1,
                                 .out_copy = have_first ? other : first};
                double e = 0;
                tu_run_result r = tu_run(&layers[l], &inputs[l], &t, &o, &e);
                if (r == TU_RUN_UNSUPPORTED) continue;
                int slot = s < 0 ? nstrat : s;
                if (r == TU_RUN_OK) {
                    stats.executed[slot]++;
                    if (e > stats.max_err) stats.max_err = e;
                } else {
                    stats.failed[slot]++;
                    continue;
                }
                if (!have_first) {
                    have_first = true;
                } else {
                    double d = tu_rel_error(other, first, t.sz.output, NULL);
                    CHECKF(d <= TU_TOLERANCE,
                           "layer %d, %s: %d threads differ from the first run by %.3g", l,
                           name ? name : "(planner)", threads[i], d);
                }
            }
        }
        free(first);
        free(other);
        tu_data_free(&t);
    }
}

/* A long 1D input: im2col_gemm must tile output positions, not unfold the whole input. */
static void long_input(void) {
    const int64_t length = 200000;
    convblas_layer_desc d =
        layer1(CONVBLAS_CONV, 4, 9, 1, 1, CONVBLAS_SAME, CONVBLAS_CHANNELS_LAST);
    convblas_shape in = {.batch = 1, .spatial = {length}, .channels = 8};
    size_t input_bytes = (size_t)(length * 8) * sizeof(float);
    size_t full_columns = (size_t)(length * 9 * 8) * sizeof(float); /* unfolding everything */

    int nstrat = convblas_strategy_count();
    for (int s = -1; s < nstrat; s++) {
        const char *name = s < 0 ? NULL : convblas_strategy_name(s);
        static const int threads[] = {0, 1, 2};
        for (int i = 0; i < 3; i++) {
            convblas_plan_options o = {.strategy = name, .threads = threads[i]};
            convblas_plan *plan = NULL;
            convblas_status st = convblas_plan_create(&plan, &d, &in, &o);
            if (name && st == CONVBLAS_UNSUPPORTED) continue;
            CHECKF(st == CONVBLAS_OK, "%s: %s", name ? name : "(planner)", convblas_last_error());
            size_t ws = convblas_plan_workspace_size(plan);
            CHECKF(ws < ((size_t)64 << 20), "%s, threads %d: workspace %zu bytes",
                   convblas_plan_strategy(plan), threads[i], ws);
            if (threads[i] == 1 || threads[i] == 2)
                CHECKF(ws < input_bytes && ws < full_columns / 4,
                       "%s, threads %d: workspace %zu bytes not bounded by tiling (input %zu "
                       "bytes, whole column buffer %zu)",
                       convblas_plan_strategy(plan), threads[i], ws, input_bytes, full_columns);
            convblas_plan_destroy(plan);
        }
    }
    check(&d, &in);
    /* a causal depthwise layer over a long sequence (Mamba / TCN style), channels_first */
    convblas_layer_desc dw =
        layer1(CONVBLAS_DEPTHWISE, 0, 4, 1, 1, CONVBLAS_CAUSAL, CONVBLAS_CHANNELS_FIRST);
    convblas_shape in_dw = {.batch = 1, .spatial = {length}, .channels = 6};
    check(&dw, &in_dw);
    /* and a separable one, channels_last */
    convblas_layer_desc sep =
        layer1(CONVBLAS_SEPARABLE, 5, 3, 1, 2, CONVBLAS_SAME, CONVBLAS_CHANNELS_LAST);
    convblas_shape in_sep = {.batch = 1, .spatial = {length / 2}, .channels = 3};
    check(&sep, &in_sep);
}

int main(void) {
    length_one();
    kernel_longer_than_input();
    odd_channels();
    huge_kernel();
    one_by_n();
    large_stride();
    batch_edges();
    extreme_activations();
    thread_counts();
    long_input();
    tu_print_stats(stdout, "edges", &stats);
    return tu_finish("edges");
}
