/* peer_check: checks each bench peer (oneDNN, XNNPACK) against convblas on the layers of the
 * real-layer suite (bench-suite.tsv, every row, with bias) plus small layers for the options
 * the suite leaves out (every activation, bias off, groups with stride and dilation, causal
 * with multiplier, rank-2 CONV and SEPARABLE, channels_first everywhere). Passes when
 * max|y - ref| / max(1, max|ref|) <= 1e-4 for every case a peer accepts, ref being convblas's
 * output. With --time it also prints median run times (ms) of convblas and each peer.
 *
 * Not part of the meson build; built by hand from the repository root, e.g.
 *   cc -O2 -std=c11 -fopenmp -Iinclude -Ibench bench/peer_check.c bench/peer_onednn.c \
 *      bench/peer_xnnpack.c -DCONVBLAS_BENCH_ONEDNN -DCONVBLAS_BENCH_XNNPACK \
 *      -Lbuild/lib -lconvblas -ldnnl -lXNNPACK -lpthreadpool -lm \
 *      -Wl,-rpath,$PWD/build/lib -o peer_check
 * (drop a peer's file and -D to build without it).
 *
 *   peer_check [--threads N] [--time] [--reps N] [NAME...]
 * NAME selects rows (all by default; with --time, the suite rows). */
#define _POSIX_C_SOURCE 200809L
#include "peer.h"

#include <convblas.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CL    CONVBLAS_CHANNELS_LAST
#define CF    CONVBLAS_CHANNELS_FIRST
#define CONV  CONVBLAS_CONV
#define DW    CONVBLAS_DEPTHWISE
#define SEP   CONVBLAS_SEPARABLE
#define VALID CONVBLAS_VALID
#define SAME  CONVBLAS_SAME
#define CAUS  CONVBLAS_CAUSAL

typedef struct row {
    const char *name;
    convblas_op op;
    int rank;
    convblas_data_format fmt;
    int64_t batch, h, w, channels, filters, kh, kw, sh, sw, dh, dw;
    convblas_padding pad;
    int64_t groups, mult;
    convblas_activation act;
    bool bias;
    bool suite;
} row;

/* rank 1: L, k, s, d go to the width fields */
#define R1(n, op, fmt, b, L, C, F, k, s, d, pad, g, m, act, bias, suite)                           \
    { n, op, 1, fmt, b, 0, L, C, F, 0, k, 0, s, 0, d, pad, g, m, CONVBLAS_##act, bias, suite }
#define R2(n, op, fmt, b, H, W, C, F, kh, kw, sh, sw, dh, dw, pad, g, m, act, bias, suite)         \
    { n, op, 2, fmt, b, H, W, C, F, kh, kw, sh, sw, dh, dw, pad, g, m, CONVBLAS_##act, bias, suite }

static const row rows[] = {
    /* bench-suite.tsv, every row (bias on) */
    R1("w2v2_fe0", CONV, CL, 1, 16000, 1, 512, 10, 5, 1, VALID, 1, 1, GELU, true, true),
    R1("w2v2_fe1", CONV, CL, 1, 3199, 512, 512, 3, 2, 1, VALID, 1, 1, GELU, true, true),
    R1("whisper_c1", CONV, CL, 1, 3000, 80, 384, 3, 1, 1, SAME, 1, 1, GELU, true, true),
    R1("whisper_c2", CONV, CL, 1, 3000, 384, 384, 3, 2, 1, SAME, 1, 1, GELU, true, true),
    R1("whisper_c1_ncw", CONV, CF, 1, 3000, 80, 384, 3, 1, 1, SAME, 1, 1, GELU, true, true),
    R1("wavenet_dil", CONV, CL, 1, 8000, 64, 128, 2, 1, 256, CAUS, 1, 1, TANH, true, true),
    R1("tcn_causal", CONV, CL, 4, 1024, 128, 128, 3, 1, 8, CAUS, 1, 1, RELU, true, true),
    R1("ecapa_tdnn", CONV, CF, 8, 300, 512, 512, 3, 1, 4, SAME, 1, 1, RELU, true, true),
    R1("resnext1d", CONV, CL, 8, 1000, 256, 256, 3, 1, 1, SAME, 32, 1, RELU, true, true),
    R1("textcnn", CONV, CL, 32, 400, 300, 100, 5, 1, 1, VALID, 1, 1, RELU, true, true),
    R1("conformer_dw", DW, CL, 4, 512, 256, 0, 31, 1, 1, SAME, 1, 1, LINEAR, true, true),
    R1("convtasnet_dw", DW, CF, 1, 3999, 512, 0, 3, 1, 64, SAME, 1, 1, LINEAR, true, true),
    R1("mamba_dw", DW, CL, 1, 2048, 1536, 0, 4, 1, 1, CAUS, 1, 1, SWISH, true, true),
    R1("dw1d_mult", DW, CF, 8, 1000, 64, 0, 5, 1, 1, VALID, 1, 4, RELU, true, true),
    R1("dw1d_stride", DW, CL, 2, 4096, 128, 0, 7, 2, 1, SAME, 1, 1, RELU, true, true),
    R1("quartz_b1", SEP, CL, 1, 800, 256, 256, 33, 1, 1, SAME, 1, 1, RELU, true, true),
    R1("quartz_b3", SEP, CL, 1, 400, 512, 512, 51, 1, 1, SAME, 1, 1, RELU, true, true),
    R1("quartz_c2", SEP, CL, 1, 400, 512, 512, 87, 1, 2, SAME, 1, 1, RELU, true, true),
    R1("matchbox", SEP, CF, 32, 128, 64, 64, 13, 1, 1, SAME, 1, 1, RELU, true, true),
    R1("sep1d_causal", SEP, CL, 4, 1000, 64, 128, 9, 1, 1, CAUS, 1, 2, RELU, true, true),
    R2("mbv1_dw112", DW, CL, 1, 112, 112, 32, 0, 3, 3, 1, 1, 1, 1, SAME, 1, 1, RELU6, true, true),
    R2("mbv1_dw112s2", DW, CL, 1, 112, 112, 64, 0, 3, 3, 2, 2, 1, 1, SAME, 1, 1, RELU6, true, true),
    R2("mbv1_dw56", DW, CL, 1, 56, 56, 128, 0, 3, 3, 1, 1, 1, 1, SAME, 1, 1, RELU6, true, true),
    R2("mbv1_dw14", DW, CL, 1, 14, 14, 512, 0, 3, 3, 1, 1, 1, 1, SAME, 1, 1, RELU6, true, true),
    R2("mbv1_dw7", DW, CL, 1, 7, 7, 1024, 0, 3, 3, 1, 1, 1, 1, SAME, 1, 1, RELU6, true, true),
    R2("mbv2_dw56", DW, CL, 8, 56, 56, 144, 0, 3, 3, 1, 1, 1, 1, SAME, 1, 1, RELU6, true, true),
    R2("effnet_dw5", DW, CL, 1, 14, 14, 480, 0, 5, 5, 1, 1, 1, 1, SAME, 1, 1, SWISH, true, true),
    R2("convnext_dw7", DW, CL, 1, 56, 56, 96, 0, 7, 7, 1, 1, 1, 1, SAME, 1, 1, LINEAR, true, true),
    R2("deeplab_dw", DW, CL, 1, 33, 33, 320, 0, 3, 3, 1, 1, 2, 2, SAME, 1, 1, RELU6, true, true),
    R2("mbv1_dw56_nchw", DW, CF, 1, 56, 56, 128, 0, 3, 3, 1, 1, 1, 1, SAME, 1, 1, RELU6, true,
       true),
    R2("dw2d_mult", DW, CL, 4, 28, 28, 32, 0, 3, 3, 1, 1, 1, 1, VALID, 1, 4, RELU, true, true),
    /* small layers for what the suite leaves out */
    R1("x_conv1d_g4_s2_d3_cf", CONV, CF, 2, 37, 16, 24, 3, 2, 3, SAME, 4, 1, SIGMOID, true, false),
    R1("x_conv1d_g2_causal_s2_d2", CONV, CL, 3, 29, 12, 8, 4, 2, 2, CAUS, 2, 1, ELU, false, false),
    R1("x_conv1d_g3_same_s3_cl", CONV, CL, 2, 31, 9, 6, 5, 3, 1, SAME, 3, 1, TANH, true, false),
    R1("x_conv1d_valid_s3_cf", CONV, CF, 2, 50, 7, 5, 4, 3, 1, VALID, 1, 1, SOFTPLUS, true, false),
    R1("x_conv1d_leaky", CONV, CL, 2, 33, 10, 6, 5, 1, 2, SAME, 1, 1, LEAKY_RELU, true, false),
    R1("x_conv1d_hsig", CONV, CL, 1, 40, 8, 8, 3, 1, 1, SAME, 1, 1, HARD_SIGMOID, true, false),
    R1("x_conv1d_hswish", CONV, CL, 1, 40, 8, 8, 3, 1, 1, SAME, 1, 1, HARD_SWISH, true, false),
    R1("x_conv1d_swish_nobias", CONV, CL, 2, 40, 8, 16, 3, 2, 1, CAUS, 1, 1, SWISH, false, false),
    R1("x_dw1d_causal_m3_cf", DW, CF, 2, 45, 6, 0, 3, 2, 2, CAUS, 1, 3, TANH, true, false),
    R1("x_dw1d_causal_m3_cl", DW, CL, 2, 45, 6, 0, 3, 2, 2, CAUS, 1, 3, RELU6, true, false),
    R1("x_dw1d_m2_gelu", DW, CL, 2, 60, 10, 0, 5, 1, 1, SAME, 1, 2, GELU, false, false),
    R1("x_dw1d_causal_d3", DW, CL, 2, 60, 10, 0, 4, 1, 3, CAUS, 1, 1, SIGMOID, true, false),
    R1("x_sep1d_m3_causal_cf", SEP, CF, 2, 50, 6, 10, 5, 1, 2, CAUS, 1, 3, TANH, true, false),
    R1("x_sep1d_m2_causal_cl", SEP, CL, 2, 50, 6, 10, 5, 2, 2, CAUS, 1, 2, SWISH, true, false),
    R1("x_sep1d_s2_gelu", SEP, CL, 2, 50, 8, 12, 3, 2, 1, SAME, 1, 1, GELU, false, false),
    R2("x_dw2d_s2d2_m2_cf", DW, CF, 2, 17, 19, 6, 0, 3, 3, 2, 2, 2, 2, SAME, 1, 2, SWISH, true,
       false),
    R2("x_dw2d_s2d2_m2_cl", DW, CL, 2, 17, 19, 6, 0, 3, 3, 2, 2, 2, 2, SAME, 1, 2, ELU, true,
       false),
    R2("x_dw2d_5x5_nobias", DW, CL, 1, 15, 15, 16, 0, 5, 5, 1, 1, 1, 1, SAME, 1, 1, LINEAR, false,
       false),
    R2("x_dw2d_3x5_d21_valid", DW, CL, 2, 20, 21, 8, 0, 3, 5, 1, 1, 2, 1, VALID, 1, 1, RELU, true,
       false),
    R2("x_dw2d_s2_d2", DW, CL, 1, 23, 23, 16, 0, 3, 3, 2, 2, 2, 2, SAME, 1, 1, RELU6, true, false),
    R2("x_dw2d_m3_cf_valid", DW, CF, 2, 12, 9, 5, 0, 2, 3, 1, 2, 1, 1, VALID, 1, 3, HARD_SWISH,
       true, false),
    R2("x_conv2d_g2_s2", CONV, CL, 2, 15, 16, 8, 12, 3, 3, 2, 2, 1, 1, SAME, 2, 1, RELU, true,
       false),
    R2("x_conv2d_cf", CONV, CF, 1, 12, 10, 5, 7, 3, 2, 1, 1, 1, 2, VALID, 1, 1, GELU, true, false),
    R2("x_sep2d_m2", SEP, CL, 2, 14, 14, 8, 16, 3, 3, 1, 1, 1, 1, SAME, 1, 2, RELU6, true, false),
    R2("x_sep2d_cf_s2", SEP, CF, 1, 10, 10, 4, 6, 3, 3, 2, 2, 1, 1, SAME, 1, 1, LEAKY_RELU, true,
       false),
};
#define NROWS (sizeof rows / sizeof rows[0])

static const bench_peer *const peers[] = {
#ifdef CONVBLAS_BENCH_ONEDNN
    &bench_peer_onednn,
#endif
#ifdef CONVBLAS_BENCH_XNNPACK
    &bench_peer_xnnpack,
#endif
    NULL};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float uniform(float lo, float hi) { /* xorshift64* */
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    uint64_t x = rng * 2685821657736338717ull;
    return lo + (hi - lo) * (float)((x >> 40) / 16777216.0);
}
static float *random_floats(size_t n, float scale) {
    float *p = malloc(n * sizeof(float) + 64); /* slack: XNNPACK may over-read 16 bytes */
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) p[i] = uniform(-scale, scale);
    return p;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static convblas_layer_desc row_desc(const row *r, convblas_shape *in) {
    convblas_layer_desc d = {.op = r->op,
                             .rank = r->rank,
                             .filters = r->filters,
                             .padding = r->pad,
                             .data_format = r->fmt,
                             .groups = r->groups,
                             .depth_multiplier = r->mult,
                             .activation = r->act,
                             .use_bias = r->bias};
    *in = (convblas_shape){.batch = r->batch, .channels = r->channels};
    if (r->rank == 1) {
        d.kernel_size[0] = r->kw, d.strides[0] = r->sw, d.dilation_rate[0] = r->dw;
        in->spatial[0] = r->w;
    } else {
        d.kernel_size[0] = r->kh, d.kernel_size[1] = r->kw;
        d.strides[0] = r->sh, d.strides[1] = r->sw;
        d.dilation_rate[0] = r->dh, d.dilation_rate[1] = r->dw;
        in->spatial[0] = r->h, in->spatial[1] = r->w;
    }
    return d;
}

static size_t numel(const convblas_shape *s, int rank) {
    size_t n = (size_t)(s->batch * s->channels * s->spatial[0]);
    return rank == 2 ? n * (size_t)s->spatial[1] : n;
}

/* Median of reps runs after 3 warm-ups; negative on failure. */
static double median_ms(int (*fn)(void *, const float *, float *), void *ctx, const float *x,
                        float *y, int reps) {
    double *t = malloc((size_t)reps * sizeof *t);
    if (!t) return -1;
    for (int i = 0; i < 3; i++)
        if (fn(ctx, x, y)) return free(t), -1;
    for (int i = 0; i < reps; i++) {
        double t0 = now_ms();
        if (fn(ctx, x, y)) return free(t), -1;
        t[i] = now_ms() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double m = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    free(t);
    return m;
}

typedef struct cb_ctx {
    convblas_plan *plan;
    convblas_weights w;
    void *workspace;
} cb_ctx;
static int cb_run(void *ctx, const float *x, float *y) {
    cb_ctx *c = ctx;
    return convblas_execute(c->plan, x, &c->w, y, c->workspace) != CONVBLAS_OK;
}

static bool selected(const row *r, int argc, char **argv, int first, bool timing) {
    bool any = false;
    for (int i = first; i < argc; i++) {
        any = true;
        if (!strcmp(argv[i], r->name)) return true;
    }
    return !any && (!timing || r->suite);
}

int main(int argc, char **argv) {
    int threads = 1, reps = 20, first = 1;
    bool timing = false;
    for (; first < argc; first++) {
        if (!strcmp(argv[first], "--threads") && first + 1 < argc)
            threads = atoi(argv[++first]);
        else if (!strcmp(argv[first], "--reps") && first + 1 < argc)
            reps = atoi(argv[++first]);
        else if (!strcmp(argv[first], "--time"))
            timing = true;
        else
            break;
    }
    if (threads < 1 || reps < 1) {
        fprintf(stderr, "usage: %s [--threads N] [--time] [--reps N] [NAME...]\n", argv[0]);
        return 2;
    }
    printf("convblas %s; threads %d\n", convblas_version(), threads);
    for (int p = 0; peers[p]; p++) printf("peer %s %s\n", peers[p]->name, peers[p]->version());
    if (timing) printf("times: median of %d runs after 3 warm-ups, ms\n", reps);

    int failures = 0, checked = 0;
    for (size_t ri = 0; ri < NROWS; ri++) {
        const row *r = &rows[ri];
        if (!selected(r, argc, argv, first, timing)) continue;
        convblas_shape in, out;
        convblas_layer_desc d = row_desc(r, &in);
        if (convblas_output_shape(&d, &in, &out) != CONVBLAS_OK) {
            printf("%-26s convblas_output_shape: %s\n", r->name, convblas_last_error());
            failures++;
            continue;
        }
        int64_t M = r->mult > 0 ? r->mult : 1, G = r->groups > 0 ? r->groups : 1;
        int64_t taps = r->rank == 2 ? r->kh * r->kw : r->kw;
        size_t nin = numel(&in, r->rank), nout = numel(&out, r->rank), nk, npw = 0;
        float kscale;
        if (r->op == CONV) {
            nk = (size_t)(taps * (r->channels / G) * r->filters);
            kscale = 1.0f / sqrtf((float)(taps * (r->channels / G)));
        } else {
            nk = (size_t)(taps * r->channels * M);
            kscale = 1.0f / sqrtf((float)taps);
            if (r->op == SEP) npw = (size_t)(r->channels * M * r->filters);
        }
        float *x = random_floats(nin, 1.0f), *k = random_floats(nk, 1.5f * kscale);
        float *pw = npw ? random_floats(npw, 1.5f / sqrtf((float)(r->channels * M))) : NULL;
        float *b = r->bias ? random_floats((size_t)out.channels, 0.5f) : NULL;
        float *ref = malloc(nout * sizeof(float) + 64), *y = malloc(nout * sizeof(float) + 64);
        convblas_plan *plan = NULL;
        convblas_plan_options opt = {.threads = threads};
        cb_ctx cbc = {0};
        if (!x || !k || (npw && !pw) || (r->bias && !b) || !ref || !y) {
            printf("%-26s out of memory\n", r->name);
            failures++;
            goto next;
        }
        if (convblas_plan_create(&plan, &d, &in, &opt) != CONVBLAS_OK) {
            printf("%-26s convblas_plan_create: %s\n", r->name, convblas_last_error());
            failures++;
            goto next;
        }
        cbc = (cb_ctx){plan, {k, pw, b}, malloc(convblas_plan_workspace_size(plan) + 1)};
        if (!cbc.workspace || cb_run(&cbc, x, ref)) {
            printf("%-26s convblas_execute: %s\n", r->name, convblas_last_error());
            failures++;
            goto next;
        }
        double refmax = 0;
        for (size_t i = 0; i < nout; i++) refmax = fmax(refmax, fabs(ref[i]));
        char line[1024];
        int len = snprintf(line, sizeof line, "%-26s max|ref| %6.3f", r->name, refmax);
        if (timing)
            len += snprintf(line + len, sizeof line - (size_t)len, " convblas %8.3f",
                            median_ms(cb_run, &cbc, x, y, reps));

        bench_case bc = {.name = r->name,
                         .desc = d,
                         .input = in,
                         .output = out,
                         .input_data = x,
                         .kernel = k,
                         .pointwise_kernel = pw,
                         .bias = b};
        for (int p = 0; peers[p]; p++) {
            char why[256] = "";
            void *st = peers[p]->prepare(&bc, threads, why, sizeof why);
            if (!st) {
                len += snprintf(line + len, sizeof line - (size_t)len, " | %s: skipped (%s)",
                                peers[p]->name, why);
                continue;
            }
            for (size_t i = 0; i < nout; i++) y[i] = NAN;
            if (peers[p]->run(st, x, y)) {
                len += snprintf(line + len, sizeof line - (size_t)len, " | %s: run FAILED",
                                peers[p]->name);
                failures++;
                peers[p]->release(st);
                continue;
            }
            double err = 0;
            for (size_t i = 0; i < nout; i++) {
                double e = fabs((double)y[i] - ref[i]);
                if (!(e <= err)) err = e; /* NaN counts as infinite */
            }
            err /= fmax(1.0, refmax);
            bool ok = err <= 1e-4;
            checked++;
            if (!ok) failures++;
            len += snprintf(line + len, sizeof line - (size_t)len, " | %s: %s %.1e", peers[p]->name,
                            ok ? "ok" : "FAIL", err);
            if (timing)
                len += snprintf(line + len, sizeof line - (size_t)len, " %8.3f ms",
                                median_ms(peers[p]->run, st, x, y, reps));
            peers[p]->release(st);
        }
        printf("%s\n", line);
        fflush(stdout);
    next:
        convblas_plan_destroy(plan);
        free(cbc.workspace);
        free(x), free(k), free(pw), free(b), free(ref), free(y);
    }
    printf("%d peer checks, %d failures\n", checked, failures);
    return failures ? 1 : 0;
}
