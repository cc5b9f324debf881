/* MEASURE planning: every usable strategy run on the plan's own shape, on synthetic data,
 * and timed; the median of a few runs is its score. */
#include "plan.h"

#include <math.h>
#include <time.h>

enum { RUNS = 5 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Values in [-1, 1), deterministic: the data does not change GEMM timings. */
static void fill(float *x, int64_t n) {
    uint32_t s = 12345u;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) * (1.0f / 8388608.0f) - 1.0f;
    }
}

static double median(double *t, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    return t[n / 2];
}

static double timed_run(const convblas_plan *plan, int s, const float *in,
                        const convblas_weights *w, float *out, void *ws) {
    double t0 = now();
    cb_run_strategy(plan, s, in, w, out, ws);
    return now() - t0;
}

/* Each usable candidate's score: a warm-up run each (caches, BLAS buffers), then RUNS
 * rounds that run every remaining candidate once, and the median of its RUNS. Rounds,
 * not one candidate's runs after another's: a burst of load from elsewhere then slows
 * every candidate of that round, not the one that happened to be running (tcn_causal's
 * MEASURE picked im2col_gemm, 13% slower than dense_direct, in a suite run on a busy
 * machine). A candidate whose warm-up alone took over a millisecond and SLOWER times the
 * best warm-up is scored by it and not run again: it cannot win, and MEASURE's time stays
 * a few runs of the fast candidates (a window that staged megabytes of padding per
 * channel made one plan take 10 s). Below a millisecond a first run's page faults and
 * thread start could be most of it. */
enum { SLOWER = 10 };
static void time_candidates(convblas_plan *plan, const float *in, const convblas_weights *w,
                            float *out, void *ws) {
    double t[CB_MAX_STRATEGIES][RUNS], best = INFINITY;
    bool timed[CB_MAX_STRATEGIES] = {false};
    for (int i = 0; i < cb_strategy_total; i++) {
        if (!plan->candidates[i].usable) continue;
        double first = timed_run(plan, i, in, w, out, ws);
        plan->candidates[i].measured = first;
        timed[i] = !(first > 1e-3 && first > SLOWER * best);
        best = first < best ? first : best;
    }
    for (int r = 0; r < RUNS; r++)
        for (int i = 0; i < cb_strategy_total; i++)
            if (timed[i]) t[i][r] = timed_run(plan, i, in, w, out, ws);
    for (int i = 0; i < cb_strategy_total; i++)
        if (timed[i]) plan->candidates[i].measured = median(t[i], RUNS);
}

convblas_status cb_measure_candidates(convblas_plan *plan) {
    const cb_problem *p = &plan->problem;
    if (p->out_elems == 0) return CONVBLAS_OK; /* nothing to time: the estimate decides */
    size_t ws_bytes = 0;
    for (int i = 0; i < cb_strategy_total; i++)
        if (plan->candidates[i].usable && plan->candidates[i].params.workspace > ws_bytes)
            ws_bytes = plan->candidates[i].params.workspace;
    int64_t weights = p->kernel_elems + p->pointwise_elems + p->out_channels;
    float *in = cb_malloc((size_t)p->in_elems * sizeof(float));
    float *w = cb_malloc((size_t)weights * sizeof(float));
    float *out = cb_malloc((size_t)p->out_elems * sizeof(float));
    void *ws = cb_malloc(ws_bytes);
    convblas_status st = CONVBLAS_OK;
    if (!in || !w || !out || !ws) {
        st = cb_fail(CONVBLAS_OUT_OF_MEMORY, "out of memory allocating the data to time the "
                                             "strategies on (MEASURE planning); use ESTIMATE");
    } else {
        fill(in, p->in_elems);
        fill(w, weights);
        convblas_weights cw = {.kernel = w,
                               .pointwise_kernel = w + p->kernel_elems,
                               .bias = w + p->kernel_elems + p->pointwise_elems};
        time_candidates(plan, in, &cw, out, ws);
    }
    cb_free(in);
    cb_free(w);
    cb_free(out);
    cb_free(ws);
    return st;
}
