/* Bias and activation, applied to an output tile right after the GEMM that finished it,
 * while it is still in cache. */
#include "convblas_internal.h"

#include <math.h>

static inline float sigmoid(float x) {
    /* Both branches avoid exp overflow: exp of a non-positive number only. */
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

static inline float relu6(float x) { return fminf(fmaxf(x, 0.0f), 6.0f); }

static inline float activate(convblas_activation a, float alpha, float x) {
    switch (a) {
    case CONVBLAS_LINEAR: return x;
    case CONVBLAS_RELU: return x > 0.0f ? x : 0.0f;
    case CONVBLAS_RELU6: return relu6(x);
    case CONVBLAS_SIGMOID: return sigmoid(x);
    case CONVBLAS_TANH: return tanhf(x);
    case CONVBLAS_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case CONVBLAS_SWISH: return x * sigmoid(x);
    case CONVBLAS_ELU: return x > 0.0f ? x : alpha * expm1f(x);
    case CONVBLAS_SOFTPLUS: return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
    case CONVBLAS_HARD_SIGMOID: return fminf(fmaxf(0.2f * x + 0.5f, 0.0f), 1.0f);
    case CONVBLAS_HARD_SWISH: return x * relu6(x + 3.0f) / 6.0f;
    case CONVBLAS_LEAKY_RELU: return x > 0.0f ? x : alpha * x;
    }
    return x;
}

/* One contiguous run of n values of one channel (or n channels of one position). The
 * switch sits outside the loop so each case is a tight, vectorizable loop. */
static void run_span(convblas_activation a, float alpha, float *x, int64_t n,
                     const float *bias_vec, float bias_one) {
#define SPAN(EXPR)                                                                         \
    for (int64_t i = 0; i < n; i++) {                                                      \
        float v = x[i] + (bias_vec ? bias_vec[i] : bias_one);                             \
        x[i] = (EXPR);                                                                     \
    }                                                                                      \
    break
    switch (a) {
    case CONVBLAS_LINEAR: SPAN(v);
    case CONVBLAS_RELU: SPAN(v > 0.0f ? v : 0.0f);
    case CONVBLAS_RELU6: SPAN(relu6(v));
    default: SPAN(activate(a, alpha, v));
    }
#undef SPAN
}

void cb_epilogue(const cb_problem *p, const float *bias, float *c, int64_t positions,
                 int64_t ld) {
    const float *b = p->use_bias ? bias : NULL;
    if (!b && p->activation == CONVBLAS_LINEAR) return;
    if (p->format == CONVBLAS_CHANNELS_LAST) {
        for (int64_t r = 0; r < positions; r++)
            run_span(p->activation, p->alpha, c + r * ld, p->out_channels, b, 0.0f);
    } else {
        for (int64_t ch = 0; ch < p->out_channels; ch++)
            run_span(p->activation, p->alpha, c + ch * ld, positions, NULL, b ? b[ch] : 0.0f);
    }
}
