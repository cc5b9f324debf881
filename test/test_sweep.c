/* Randomized sweep: every strategy, forced by name, and the planner's own choice, against the
 * reference on random layers covering every option. Deterministic (fixed seed).
 *
 *   test_sweep [--cases N] [--seed S] [--case I] [--verbose]
 *
 * Case I of seed S is the same layer and data whatever the other cases and the number of
 * strategies compiled in, so `--seed S --case I` re-runs one failing case alone.
 */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NUM_ACTIVATIONS 12

/* What the sweep covered; each must be non-zero at the end of a default-sized run. */
typedef struct coverage {
    long op_rank[3][2];
    long format[2];
    long padding[3][3]; /* [op][padding] */
    long batch0;
    long activation[NUM_ACTIVATIONS];
    long alpha_set;
    long bias[2];
    long groups;     /* CONV with groups > 1 */
    long multiplier; /* depth_multiplier > 1 */
    long stride_dil; /* stride > 1 and dilation > 1 in the same dimension */
    long pointwise;  /* every kernel 1, stride 1, no padding */
    long big_kernel; /* kernel > 7 */
    long defaults;   /* a 0 meaning the Keras default */
    long threads[3];
    long own_ws[2];
    long limit;
    long tight_limit;
    long measure;
    long invalid;
} coverage;

/* Multiply-adds of the reference, to keep each case small. */
static double cost(const ref_sizes *sz) {
    double oc = (double)(sz->out.channels ? sz->out.channels : 1);
    return (double)sz->output * ((double)sz->kernel + (double)sz->pointwise) / oc + 1;
}

static int64_t pick(tu_rng *r, const int64_t *v, int n) {
    return v[tu_rng_int(r, 0, n - 1)];
}

/* A random layer. *invalid says whether it is meant to be rejected (valid padding with an
 * input shorter than the effective kernel). */
static void gen_case(tu_rng *r, long idx, convblas_layer_desc *d, convblas_shape *in, bool *invalid,
                     bool *pointwise) {
    memset(d, 0, sizeof *d);
    memset(in, 0, sizeof *in);
    *invalid = false;
    *pointwise = false;
    d->op = (convblas_op)tu_rng_int(r, 0, 2);
    d->rank = tu_rng_chance(r, 0.6) ? 1 : 2;
    d->data_format = tu_rng_chance(r, 0.5) ? CONVBLAS_CHANNELS_LAST : CONVBLAS_CHANNELS_FIRST;
    d->activation = (convblas_activation)(idx % NUM_ACTIVATIONS);
    d->activation_alpha = tu_rng_chance(r, 0.5) ? 0.0f : (float)(0.05 + 1.5 * tu_rng_unit(r));
    d->use_bias = tu_rng_chance(r, 0.5);
    in->batch = tu_rng_chance(r, 0.08) ? 0 : tu_rng_int(r, 1, 3);

    static const int64_t odd_channels[] = {1, 3, 5, 7, 9, 13, 17};
    bool wide = tu_rng_chance(r, 0.1); /* now and then more channels and filters */
    if (d->op == CONVBLAS_CONV) {
        static const int64_t gs[] = {1, 1, 1, 1, 2, 3, 4};
        int64_t g = pick(r, gs, 7);
        in->channels = g * (tu_rng_chance(r, 0.2) ? pick(r, odd_channels, 7) : tu_rng_int(r, 1, 4));
        if (wide) in->channels = g * tu_rng_int(r, 5, 12);
        d->filters = g * tu_rng_int(r, 1, wide ? 12 : 5);
        d->groups = g == 1 && tu_rng_chance(r, 0.5) ? 0 : g;
        d->depth_multiplier = tu_rng_int(r, -3, 9); /* ignored for CONV */
    } else {
        in->channels = tu_rng_chance(r, 0.3) ? pick(r, odd_channels, 7) : tu_rng_int(r, 1, 8);
        if (wide) in->channels = tu_rng_int(r, 9, 40);
        int64_t m = tu_rng_int(r, 1, 4);
        d->depth_multiplier = m == 1 && tu_rng_chance(r, 0.5) ? 0 : m;
        d->groups = tu_rng_int(r, -3, 9); /* ignored for DEPTHWISE and SEPARABLE */
        d->filters = d->op == CONVBLAS_SEPARABLE ? tu_rng_int(r, 1, wide ? 40 : 9)
                                                 : tu_rng_int(r, -5, 40); /* ignored */
    }

    int rank = d->rank;
    /* now and then a longer input, so strategies tile over several output tiles */
    bool medium = tu_rng_chance(r, 0.2);
    int64_t maxlen = rank == 1 ? (medium ? 300 : 40) : (medium ? 32 : 12);
    if (d->op != CONVBLAS_DEPTHWISE && tu_rng_chance(r, 0.15)) {
        /* pointwise: every kernel 1, stride 1, no padding (so pointwise_gemm applies) */
        *pointwise = true;
        for (int i = 0; i < rank; i++) {
            d->kernel_size[i] = 1;
            d->strides[i] = tu_rng_chance(r, 0.5) ? 0 : 1;
            d->dilation_rate[i] = tu_rng_int(r, 0, 3);
            in->spatial[i] = tu_rng_int(r, 1, maxlen);
        }
        d->padding = (convblas_padding)tu_rng_int(r, 0, rank == 1 ? 2 : 1);
    } else {
        d->padding = (convblas_padding)tu_rng_int(r, 0, rank == 1 ? 2 : 1);
        bool short_input = d->padding == CONVBLAS_VALID && tu_rng_chance(r, 0.05);
        for (int i = 0; i < rank; i++) {
            int64_t k;
            if (tu_rng_chance(r, 0.1))
                k = tu_rng_int(r, 8, rank == 1 ? 17 : 9);
            else
                k = tu_rng_int(r, 1, 7);
            int64_t s = tu_rng_int(r, 0, 3), dl = tu_rng_int(r, 0, 3);
            d->kernel_size[i] = k;
            d->strides[i] = s;
            d->dilation_rate[i] = dl;
            int64_t ek = (k - 1) * (dl ? dl : 1) + 1;
            if (d->padding == CONVBLAS_VALID) {
                if (short_input && ek > 1 && (i == 0 || !*invalid)) {
                    in->spatial[i] = tu_rng_int(r, 1, ek - 1);
                    *invalid = true;
                } else {
                    in->spatial[i] = ek + tu_rng_int(r, 0, maxlen - 10);
                }
            } else {
                in->spatial[i] = tu_rng_int(r, 1, maxlen);
            }
        }
    }
    if (rank == 1) {
        /* index 1 is not read at rank 1: put junk there */
        d->kernel_size[1] = tu_rng_int(r, -2, 5);
        d->strides[1] = tu_rng_int(r, -2, 5);
        d->dilation_rate[1] = tu_rng_int(r, -2, 5);
        in->spatial[1] = tu_rng_int(r, -2, 5);
    }
}

static void tally(coverage *cv, const convblas_layer_desc *d, const convblas_shape *in,
                  bool pointwise) {
    cv->op_rank[d->op][d->rank - 1]++;
    cv->format[d->data_format]++;
    cv->padding[d->op][d->padding]++;
    cv->batch0 += in->batch == 0;
    cv->activation[d->activation]++;
    cv->alpha_set += d->activation_alpha != 0 &&
                     (d->activation == CONVBLAS_ELU || d->activation == CONVBLAS_LEAKY_RELU);
    cv->bias[d->use_bias]++;
    cv->groups += d->op == CONVBLAS_CONV && d->groups > 1;
    cv->multiplier += d->op != CONVBLAS_CONV && d->depth_multiplier > 1;
    cv->pointwise += pointwise;
    bool def = d->strides[0] == 0 || d->dilation_rate[0] == 0;
    def = def || (d->op == CONVBLAS_CONV ? d->groups == 0 : d->depth_multiplier == 0);
    cv->defaults += def;
    for (int i = 0; i < d->rank; i++) {
        cv->stride_dil += d->strides[i] > 1 && d->dilation_rate[i] > 1;
        cv->big_kernel += d->kernel_size[i] > 7;
    }
}

/* A case the reference rejects: the library must reject it the same way. */
static void check_invalid(const convblas_layer_desc *d, const convblas_shape *in) {
    convblas_shape out = {.batch = -7};
    convblas_status st = convblas_output_shape(d, in, &out);
    bool ok = st == CONVBLAS_INVALID_ARGUMENT && convblas_last_error()[0] != 0;
    convblas_plan *plan = NULL;
    convblas_status st2 = convblas_plan_create(&plan, d, in, NULL);
    ok = ok && st2 == CONVBLAS_INVALID_ARGUMENT && plan == NULL;
    int n = convblas_strategy_count();
    for (int s = 0; s < n && ok; s++) {
        convblas_plan_options o = {.strategy = convblas_strategy_name(s)};
        convblas_plan *p2 = NULL;
        ok = convblas_plan_create(&p2, d, in, &o) == CONVBLAS_INVALID_ARGUMENT && p2 == NULL;
        convblas_plan_destroy(p2);
    }
    if (!ok) {
        tu_failures++;
        fprintf(stderr,
                "FAIL: expected INVALID_ARGUMENT (input shorter than the effective kernel with "
                "valid padding); output_shape %s, plan_create %s (%s)\n",
                tu_status_str(st), tu_status_str(st2), convblas_last_error());
        tu_print_case(stderr, d, in);
    }
    convblas_plan_destroy(plan);
}

int main(int argc, char **argv) {
    long cases = 2000;
    uint64_t seed = 20240611;
    long only = -1;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cases") && i + 1 < argc) {
            cases = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--case") && i + 1 < argc) {
            only = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--verbose")) {
            verbose = true;
        } else {
            fprintf(stderr, "usage: %s [--cases N] [--seed S] [--case I] [--verbose]\n", argv[0]);
            return 2;
        }
    }
    int nstrat = convblas_strategy_count();
    CHECKF(nstrat > 0 && nstrat <= TU_MAX_STRATEGIES, "strategy count %d", nstrat);
    if (nstrat > TU_MAX_STRATEGIES) nstrat = TU_MAX_STRATEGIES;
    if (nstrat < 0) nstrat = 0;

    clock_t t0 = clock();
    tu_stats st;
    memset(&st, 0, sizeof st);
    coverage cv;
    memset(&cv, 0, sizeof cv);
    long executions = 0, failed_cases = 0;

    for (long idx = only >= 0 ? only : 0; idx < (only >= 0 ? only + 1 : cases); idx++) {
        /* one generator for the layer and its data, one for the run options */
        tu_rng rng, opt_rng;
        tu_rng_seed(&rng, seed * 1000003u + (uint64_t)idx);
        tu_rng_seed(&opt_rng, ~(seed * 1000003u + (uint64_t)idx));
        convblas_layer_desc d;
        convblas_shape in;
        bool invalid, pointwise;
        ref_sizes sz;
        int tries = 0;
        do { /* keep each case small: the whole sweep runs in seconds */
            gen_case(&rng, idx, &d, &in, &invalid, &pointwise);
            tries++;
        } while (!invalid && tries < 100 &&
                 (ref_layer_sizes(&d, &in, &sz) != CONVBLAS_OK || cost(&sz) > 1e6));

        long before = tu_failures;
        if (invalid) {
            CHECKF(ref_output_shape(&d, &in, NULL) == CONVBLAS_INVALID_ARGUMENT,
                   "case %ld: the reference accepts a short valid-padding input", idx);
            check_invalid(&d, &in);
            cv.invalid++;
            if (tu_failures != before) failed_cases++;
            continue;
        }
        tally(&cv, &d, &in, pointwise);

        tu_data t;
        convblas_status rs = tu_data_make(&t, &d, &in, &rng);
        if (rs != CONVBLAS_OK) {
            CHECKF(rs == CONVBLAS_OK, "case %ld: the reference rejects a generated case (%s)", idx,
                   tu_status_str(rs));
            tu_print_case(stderr, &d, &in);
            failed_cases++;
            continue;
        }
        /* the output shape as the library computes it */
        convblas_shape out;
        memset(&out, 0x5A, sizeof out);
        convblas_status os = convblas_output_shape(&d, &in, &out);
        if (os != CONVBLAS_OK || out.batch != t.sz.out.batch ||
            out.spatial[0] != t.sz.out.spatial[0] || out.spatial[1] != t.sz.out.spatial[1] ||
            out.channels != t.sz.out.channels) {
            tu_failures++;
            fprintf(stderr, "FAIL: case %ld: convblas_output_shape %s\n", idx, tu_status_str(os));
            tu_print_case(stderr, &d, &in);
            tu_print_shape(stderr, "expected", &t.sz.out, d.rank);
            if (os == CONVBLAS_OK) tu_print_shape(stderr, "got", &out, d.rank);
        }

        for (int s = -1; s < nstrat; s++) {
            tu_run_opts o = {.strategy = s < 0 ? NULL : convblas_strategy_name(s),
                             .threads = (int)tu_rng_int(&opt_rng, 1, 2),
                             .own_workspace = tu_rng_chance(&opt_rng, 0.4)};
            if (tu_rng_chance(&opt_rng, 0.05)) o.threads = 0; /* the library's default */
            if (tu_rng_chance(&opt_rng, 0.15)) {
                /* a limit: tight ones force small tiles; below 64 KiB nothing may fit */
                static const size_t limits[] = {(size_t)1 << 20, (size_t)64 << 10, (size_t)16 << 10,
                                                (size_t)4 << 10};
                o.workspace_limit = limits[tu_rng_int(&opt_rng, 0, 3)];
                o.may_be_unsupported = o.workspace_limit < ((size_t)64 << 10);
            }
            if (s < 0 && tu_rng_chance(&opt_rng, 0.03)) o.mode = CONVBLAS_MEASURE;
            int slot = s < 0 ? nstrat : s;
            double e = 0;
            tu_run_result rr = tu_run(&d, &in, &t, &o, &e);
            if (rr == TU_RUN_OK) {
                st.executed[slot]++;
                executions++;
                if (e > st.max_err) st.max_err = e;
                cv.threads[o.threads]++;
                cv.own_ws[o.own_workspace]++;
                cv.limit += o.workspace_limit != 0;
                cv.tight_limit += o.workspace_limit != 0 && o.workspace_limit < ((size_t)64 << 10);
                cv.measure += o.mode == CONVBLAS_MEASURE;
            } else if (rr == TU_RUN_UNSUPPORTED) {
                st.unsupported[slot]++;
            } else {
                st.failed[slot]++;
                fprintf(stderr,
                        "  (sweep case %ld; re-run alone: test_sweep --seed %llu --case %ld)\n",
                        idx, (unsigned long long)seed, idx);
            }
            if (verbose && rr != TU_RUN_UNSUPPORTED)
                printf("case %ld %s: err %.3g\n", idx, o.strategy ? o.strategy : "(planner)", e);
        }
        tu_data_free(&t);
        if (tu_failures != before) failed_cases++;
    }

    /* the sweep must actually have covered what it claims to */
    if (only < 0 && cases >= 300) {
        for (int op = 0; op < 3; op++) {
            for (int rk = 0; rk < 2; rk++)
                CHECKF(cv.op_rank[op][rk] > 0, "no case of op %d at rank %d", op, rk + 1);
            for (int p = 0; p < 3; p++)
                CHECKF(cv.padding[op][p] > 0, "no case of op %d with padding %d", op, p);
        }
        for (int a = 0; a < NUM_ACTIVATIONS; a++)
            CHECKF(cv.activation[a] > 0, "no case with activation %d", a);
        CHECK(cv.format[0] > 0 && cv.format[1] > 0);
        CHECK(cv.batch0 > 0);
        CHECK(cv.alpha_set > 0);
        CHECK(cv.bias[0] > 0 && cv.bias[1] > 0);
        CHECK(cv.groups > 0);
        CHECK(cv.multiplier > 0);
        CHECK(cv.stride_dil > 0);
        CHECK(cv.pointwise > 0);
        CHECK(cv.big_kernel > 0);
        CHECK(cv.defaults > 0);
        CHECK(cv.threads[1] > 0 && cv.threads[2] > 0);
        CHECK(cv.own_ws[0] > 0 && cv.own_ws[1] > 0);
        CHECK(cv.limit > 0);
        CHECK(cv.tight_limit > 0);
        CHECK(cv.invalid > 0);
        CHECKF(executions >= 500, "only %ld executions", executions);
        CHECKF(st.executed[nstrat] + st.unsupported[nstrat] == cases - cv.invalid,
               "the planner ran %ld of %ld cases", st.executed[nstrat], cases - cv.invalid);
    }

    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("sweep: seed %llu, %ld cases (%ld checked as invalid), %ld executions, %ld failed "
           "cases, max relative error %.3g, %.1f s CPU\n",
           (unsigned long long)seed, cases, cv.invalid, executions, failed_cases, st.max_err, secs);
    for (int s = 0; s <= nstrat; s++)
        printf("  %-20s executed %6ld  unsupported %6ld  failed %ld\n",
               s < nstrat ? convblas_strategy_name(s) : "(planner)", st.executed[s],
               st.unsupported[s], st.failed[s]);
    printf("  coverage: batch0 %ld, groups>1 %ld, multiplier>1 %ld, stride+dilation %ld, "
           "pointwise %ld, kernel>7 %ld, workspace limit %ld (< 64 KiB %ld), measure %ld\n",
           cv.batch0, cv.groups, cv.multiplier, cv.stride_dil, cv.pointwise, cv.big_kernel,
           cv.limit, cv.tight_limit, cv.measure);
    return tu_finish("sweep");
}
