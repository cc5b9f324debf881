/* Shape rules: convblas_output_shape against the formulas of design section 2 on a grid,
 * the Keras examples of keras-reference/Conv1D.md, rank-1 conventions, and the error for a
 * valid-padding input shorter than the effective kernel. */
#include "test_util.h"

#include <string.h>

/* The formulas of design section 2, written out once more here (independently of the
 * reference) for one spatial dimension. Returns -1 where the input is too short. */
static int64_t expected_len(int64_t in, int64_t k, int64_t s, int64_t d, convblas_padding p) {
    if (s == 0) s = 1;
    if (d == 0) d = 1;
    int64_t ek = (k - 1) * d + 1;
    if (p == CONVBLAS_VALID) return in < ek ? -1 : (in - ek) / s + 1;
    return in / s + (in % s != 0); /* same and causal: ceil(in / s) */
}

static long checked = 0, rejected = 0;

/* Output shape and plan creation for one layer, against the expected shape (expected.batch
 * < 0: must be INVALID_ARGUMENT). */
static void check_shape(const convblas_layer_desc *d, const convblas_shape *in,
                        const convblas_shape *expected) {
    convblas_shape out;
    memset(&out, 0x5A, sizeof out);
    convblas_status st = convblas_output_shape(d, in, &out);
    convblas_shape ref_out;
    convblas_status rst = ref_output_shape(d, in, &ref_out);
    checked++;
    if (expected->batch < 0) {
        rejected++;
        bool ok = st == CONVBLAS_INVALID_ARGUMENT && convblas_last_error()[0] != 0 &&
                  rst == CONVBLAS_INVALID_ARGUMENT;
        if (!ok) {
            tu_failures++;
            fprintf(stderr, "FAIL: expected INVALID_ARGUMENT, output_shape gave %s, reference %s\n",
                    tu_status_str(st), tu_status_str(rst));
            tu_print_case(stderr, d, in);
        }
    } else {
        bool ok = st == CONVBLAS_OK && out.batch == expected->batch &&
                  out.spatial[0] == expected->spatial[0] &&
                  out.spatial[1] == expected->spatial[1] && out.channels == expected->channels;
        bool ref_ok = rst == CONVBLAS_OK && ref_out.batch == expected->batch &&
                      ref_out.spatial[0] == expected->spatial[0] &&
                      ref_out.spatial[1] == expected->spatial[1] &&
                      ref_out.channels == expected->channels;
        if (!ok || !ref_ok) {
            tu_failures++;
            fprintf(stderr, "FAIL: output shape: library %s%s, reference %s%s (%s)\n",
                    tu_status_str(st), ok ? "" : " (wrong)", tu_status_str(rst),
                    ref_ok ? "" : " (wrong)", st ? convblas_last_error() : "");
            tu_print_case(stderr, d, in);
            tu_print_shape(stderr, "expected", expected, d->rank);
            if (st == CONVBLAS_OK) tu_print_shape(stderr, "library ", &out, d->rank);
            if (rst == CONVBLAS_OK) tu_print_shape(stderr, "reference", &ref_out, d->rank);
        }
    }
    /* plan creation validates exactly as convblas_output_shape does */
    convblas_plan *plan = NULL;
    convblas_status pst = convblas_plan_create(&plan, d, in, NULL);
    if (pst != st) {
        tu_failures++;
        fprintf(stderr, "FAIL: convblas_output_shape says %s but convblas_plan_create says %s\n",
                tu_status_str(st), tu_status_str(pst));
        tu_print_case(stderr, d, in);
    }
    convblas_plan_destroy(plan);
}

static const convblas_op ops[] = {CONVBLAS_CONV, CONVBLAS_DEPTHWISE, CONVBLAS_SEPARABLE};

/* Every length, kernel, stride and dilation (0 = default included) for one op, format and
 * padding, at rank 1. */
static void grid_rank1_layer(int o, convblas_data_format f, convblas_padding p) {
    for (int64_t len = 1; len <= 12; len++) {
        for (int64_t k = 1; k <= 5; k++) {
            for (int64_t s = 0; s <= 3; s++) {
                for (int64_t dl = 0; dl <= 3; dl++) {
                    int64_t c = 1 + (len + k) % 5, m = 1 + (s + dl) % 3;
                    convblas_layer_desc d = {
                        .op = ops[o],
                        .rank = 1,
                        .filters = 2 + k,
                        .kernel_size = {k, -1}, /* index 1 is not read at rank 1 */
                        .strides = {s, -1},
                        .dilation_rate = {dl, -1},
                        .padding = p,
                        .data_format = f,
                        .depth_multiplier = o == 0 ? -4 : m, /* ignored by CONV */
                        .groups = o == 0 ? 1 : -3,           /* ignored by the others */
                    };
                    convblas_shape in = {
                        .batch = len % 4, .spatial = {len, len % 3 - 1}, .channels = c};
                    int64_t l = expected_len(len, k, s, dl, p);
                    convblas_shape want = {.batch = l < 0 ? -1 : len % 4,
                                           .spatial = {l, 0},
                                           .channels =
                                               ops[o] == CONVBLAS_DEPTHWISE ? c * m : 2 + k};
                    check_shape(&d, &in, &want);
                }
            }
        }
    }
}

/* Heights, widths, kernels, strides and dilations for one op, format and padding, at rank 2
 * (the two dimensions get different values so a swap shows). */
static void grid_rank2_layer(int o, convblas_data_format f, convblas_padding p) {
    static const int64_t hs[] = {1, 2, 5, 8, 13};
    static const int64_t ws[] = {1, 3, 7, 10};
    for (int hi = 0; hi < 5; hi++) {
        for (int wi = 0; wi < 4; wi++) {
            for (int64_t kh = 1; kh <= 4; kh++) {
                for (int64_t kw = 1; kw <= 3; kw += 2) {
                    for (int64_t s = 1; s <= 3; s++) {
                        for (int64_t dl = 1; dl <= 2; dl++) {
                            int64_t sh = s, sw = 4 - s, dh = dl, dw = 3 - dl;
                            int64_t c = 2 + (hi + wi) % 3, m = 1 + s % 2;
                            convblas_layer_desc d = {
                                .op = ops[o],
                                .rank = 2,
                                .filters = 6,
                                .kernel_size = {kh, kw},
                                .strides = {sh, sw},
                                .dilation_rate = {dh, dw},
                                .padding = p,
                                .data_format = f,
                                .groups = o == 0 ? (c % 2 == 0 ? 2 : 1) : 0,
                                .depth_multiplier = m,
                            };
                            convblas_shape in = {
                                .batch = 3, .spatial = {hs[hi], ws[wi]}, .channels = c};
                            int64_t oh = expected_len(hs[hi], kh, sh, dh, p);
                            int64_t ow = expected_len(ws[wi], kw, sw, dw, p);
                            convblas_shape want = {.batch = oh < 0 || ow < 0 ? -1 : 3,
                                                   .spatial = {oh, ow},
                                                   .channels =
                                                       ops[o] == CONVBLAS_DEPTHWISE ? c * m : 6};
                            check_shape(&d, &in, &want);
                        }
                    }
                }
            }
        }
    }
}

static void grids(void) {
    static const convblas_data_format formats[] = {CONVBLAS_CHANNELS_LAST, CONVBLAS_CHANNELS_FIRST};
    static const convblas_padding pads[] = {CONVBLAS_VALID, CONVBLAS_SAME, CONVBLAS_CAUSAL};
    for (int o = 0; o < 3; o++) {
        for (int f = 0; f < 2; f++) {
            for (int p = 0; p < 3; p++) grid_rank1_layer(o, formats[f], pads[p]);
            for (int p = 0; p < 2; p++) grid_rank2_layer(o, formats[f], pads[p]);
            /* causal is rank 1 only */
            convblas_layer_desc d = {.op = ops[o],
                                     .rank = 2,
                                     .filters = 4,
                                     .kernel_size = {2, 2},
                                     .padding = CONVBLAS_CAUSAL,
                                     .data_format = formats[f]};
            convblas_shape in = {.batch = 1, .spatial = {5, 5}, .channels = 2};
            convblas_shape bad = {.batch = -1};
            check_shape(&d, &in, &bad);
        }
    }
}

/* The padding split of the TF rule, seen through values: with a kernel of ones and one
 * channel, the output at each end counts the real (unpadded) taps it covers. */
static void padding_split(void) {
    for (int64_t len = 1; len <= 9; len++)
        for (int64_t k = 1; k <= 6; k++)
            for (int64_t s = 1; s <= 3; s++)
                for (int p = 1; p <= 2; p++) {
                    convblas_layer_desc d = {.op = CONVBLAS_DEPTHWISE,
                                             .rank = 1,
                                             .kernel_size = {k},
                                             .strides = {s},
                                             .padding = (convblas_padding)p};
                    convblas_shape in = {.batch = 1, .spatial = {len}, .channels = 1}, out;
                    if (convblas_output_shape(&d, &in, &out) != CONVBLAS_OK) {
                        CHECKF(0, "len %lld k %lld s %lld padding %d: %s", (long long)len,
                               (long long)k, (long long)s, p, convblas_last_error());
                        continue;
                    }
                    int64_t n = out.spatial[0];
                    int64_t total = (n - 1) * s + k - len;
                    if (total < 0) total = 0;
                    int64_t before = p == CONVBLAS_SAME ? total / 2 : k - 1;
                    float x[16], kern[8], y[16];
                    for (int i = 0; i < 16; i++) x[i] = 1.0f;
                    for (int i = 0; i < 8; i++) kern[i] = 1.0f;
                    convblas_plan *plan = NULL;
                    CHECK(convblas_plan_create(&plan, &d, &in, NULL) == CONVBLAS_OK);
                    convblas_weights w = {.kernel = kern};
                    bool ran = plan && convblas_execute(plan, x, &w, y, NULL) == CONVBLAS_OK;
                    CHECK(ran);
                    convblas_plan_destroy(plan);
                    for (int64_t j = 0; j < n && ran; j++) {
                        int64_t taps = 0;
                        for (int64_t t = 0; t < k; t++) {
                            int64_t i = j * s + t - before;
                            taps += i >= 0 && i < len;
                        }
                        CHECKF(y[j] == (float)taps,
                               "len %lld k %lld s %lld %s: y[%lld] = %g, expected %lld taps",
                               (long long)len, (long long)k, (long long)s,
                               tu_padding_name(d.padding), (long long)j, (double)y[j],
                               (long long)taps);
                    }
                }
}

static void keras_examples(void) {
    /* input_shape = (4, 10, 128); Conv1D(32, 3, activation='relu') -> (4, 8, 32) */
    convblas_layer_desc d = {.op = CONVBLAS_CONV,
                             .rank = 1,
                             .filters = 32,
                             .kernel_size = {3},
                             .activation = CONVBLAS_RELU,
                             .use_bias = true};
    convblas_shape in = {.batch = 4, .spatial = {10}, .channels = 128};
    convblas_shape want = {.batch = 4, .spatial = {8, 0}, .channels = 32};
    check_shape(&d, &in, &want);
    CHECK(tu_check_layer(&d, &in, 4101, 0, NULL) == 0);

    /* extended batch: input_shape = (4, 7, 10, 128) -> (4, 7, 8, 32): batch 4 * 7 = 28 */
    convblas_shape ext = {.batch = 4 * 7, .spatial = {10}, .channels = 128};
    convblas_shape want_ext = {.batch = 28, .spatial = {8, 0}, .channels = 32};
    check_shape(&d, &ext, &want_ext);
    CHECK(tu_check_layer(&d, &ext, 4702, 2, NULL) == 0);

    /* the same layer channels_first: (4, 128, 10) -> (4, 32, 8) */
    d.data_format = CONVBLAS_CHANNELS_FIRST;
    check_shape(&d, &in, &want);
    CHECK(tu_check_layer(&d, &in, 4103, 1, NULL) == 0);
    d.data_format = CONVBLAS_CHANNELS_LAST;

    /* rank 1: the output's spatial[1] is 0, whatever the input's spatial[1] holds */
    convblas_shape junk = {.batch = 4, .spatial = {10, 99}, .channels = 128}, out;
    memset(&out, 0x5A, sizeof out);
    CHECK(convblas_output_shape(&d, &junk, &out) == CONVBLAS_OK);
    CHECK(out.spatial[1] == 0);
    CHECK(out.spatial[0] == 8);

    /* valid padding with an input shorter than the effective kernel: an error, not a crash */
    convblas_shape short_in = {.batch = 4, .spatial = {2}, .channels = 128};
    convblas_shape bad = {.batch = -1};
    check_shape(&d, &short_in, &bad);
    d.kernel_size[0] = 3;
    d.dilation_rate[0] = 5; /* effective kernel 11 > 10 */
    check_shape(&d, &in, &bad);
    d.padding = CONVBLAS_SAME; /* fine with same: ceil(10 / 1) */
    convblas_shape want_same = {.batch = 4, .spatial = {10, 0}, .channels = 32};
    check_shape(&d, &in, &want_same);

    /* DepthwiseConv1D: channels * depth_multiplier; SeparableConv1D: filters */
    convblas_layer_desc dw = {.op = CONVBLAS_DEPTHWISE,
                              .rank = 1,
                              .kernel_size = {3},
                              .depth_multiplier = 3,
                              .filters = 999};
    convblas_shape want_dw = {.batch = 4, .spatial = {8, 0}, .channels = 128 * 3};
    check_shape(&dw, &in, &want_dw);
    convblas_layer_desc sep = {.op = CONVBLAS_SEPARABLE,
                               .rank = 1,
                               .kernel_size = {3},
                               .depth_multiplier = 2,
                               .filters = 17};
    convblas_shape want_sep = {.batch = 4, .spatial = {8, 0}, .channels = 17};
    check_shape(&sep, &in, &want_sep);
    /* DepthwiseConv2D (1, 28, 28, 3), kernel 3, multiplier 2, same, stride 2 -> (1, 14, 14, 6) */
    convblas_layer_desc dw2 = {.op = CONVBLAS_DEPTHWISE,
                               .rank = 2,
                               .kernel_size = {3, 3},
                               .strides = {2, 2},
                               .padding = CONVBLAS_SAME,
                               .depth_multiplier = 2};
    convblas_shape in2 = {.batch = 1, .spatial = {28, 28}, .channels = 3};
    convblas_shape want2 = {.batch = 1, .spatial = {14, 14}, .channels = 6};
    check_shape(&dw2, &in2, &want2);
    CHECK(tu_check_layer(&dw2, &in2, 2802, 2, NULL) == 0);
}

int main(void) {
    grids();
    padding_split();
    keras_examples();
    printf("shapes: %ld shapes checked (%ld expected errors)\n", checked, rejected);
    return tu_finish("shapes");
}
