/* Bias and activation, applied to an output tile right after the GEMM that finished it,
 * while it is still in cache. The activations are vectorized (simd.h) with their own
 * exp/log/erf: libm's scalar calls would cost more than the convolution itself. Each
 * follows IEEE special values as the formula in convblas.h does with exact arithmetic:
 * NaN stays NaN (relu(NaN) is NaN), exp overflows to inf and underflows to 0. */
#include "convblas_internal.h"
#include "simd.h"

VINLINE vi as_int(vf x) {
    vi r;
    memcpy(&r, &x, sizeof r);
    return r;
}
VINLINE vf as_float(vi x) {
    vf r;
    memcpy(&r, &x, sizeof r);
    return r;
}
/* mask lanes (-1 or 0) choose a, others b. */
VINLINE vf select(vi mask, vf a, vf b) {
    return as_float((as_int(a) & mask) | (as_int(b) & ~mask));
}
VINLINE vf vabs(vf x) {
    return as_float(as_int(x) & 0x7fffffff);
}
VINLINE vf copy_sign(vf magnitude, vf sign) {
    return as_float((as_int(magnitude) & 0x7fffffff) | (as_int(sign) & (int32_t)0x80000000));
}

/* e^x = p s1 s2: Cody-Waite reduction x = n ln2 + r, |r| <= ln2 / 2, a degree-6
 * polynomial for p = e^r (Cephes expf), and 2^n as two powers of two put together by
 * integer arithmetic, so that n down to -174 (denormal results) needs no special case: the
 * last multiplication rounds once. x is clamped to [-120, 89], beyond which e^x is 0 or
 * inf anyway; NaN fails both comparisons and stays NaN. */
typedef struct exp_parts {
    vf p, s1, s2;
} exp_parts;

/* e^(big + small), |small| < 4: the reduction subtracts n ln2 from big exactly and adds
 * small after, so that an exact big (-x^2 / 2 split in two) keeps its digits. */
VINLINE exp_parts v_exp_sum_parts(vf big, vf small) {
    vf xc = big + small;
    xc = select(xc > 89.0f, vsplat(89.0f), select(xc < -120.0f, vsplat(-120.0f), xc));
    vf n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    vf r = (big - n * 0.693359375f + n * 2.12194440e-4f) + small;
    vf p = vsplat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    vi ni = __builtin_convertvector(n, vi), m1 = ni >> 1, m2 = ni - m1;
    return (exp_parts){p * r * r + r + 1.0f, as_float((m1 + 127) << 23),
                       as_float((m2 + 127) << 23)};
}

VINLINE exp_parts v_exp_parts(vf x) {
    vf xc = select(x > 89.0f, vsplat(89.0f), select(x < -120.0f, vsplat(-120.0f), x));
    return v_exp_sum_parts(xc, vsplat(0.0f));
}

VINLINE vf v_exp(vf x) {
    exp_parts e = v_exp_parts(x);
    return e.p * e.s1 * e.s2;
}

/* exp(x) - 1 without cancellation near 0: a Taylor polynomial there. */
VINLINE vf v_expm1(vf x) {
    vf p = vsplat(1.0f / 5040.0f);
    p = p * x + 1.0f / 720.0f;
    p = p * x + 1.0f / 120.0f;
    p = p * x + 1.0f / 24.0f;
    p = p * x + 1.0f / 6.0f;
    p = p * x + 0.5f;
    vf small = (p * x) * x + x;
    return select(vabs(x) < 0.25f, small, v_exp(x) - 1.0f);
}

/* log(v) for v in [1, 2] (Cephes logf's polynomial after reduction to [sqrt(1/2), sqrt 2)). */
VINLINE vf v_log_1_2(vf v) {
    vi big = v > 1.41421356237f;
    vf m = select(big, v * 0.5f, v), e = select(big, vsplat(1.0f), vsplat(0.0f));
    vf x = m - 1.0f, z = x * x;
    vf y = vsplat(7.0376836292e-2f);
    y = y * x - 1.1514610310e-1f;
    y = y * x + 1.1676998740e-1f;
    y = y * x - 1.2420140846e-1f;
    y = y * x + 1.4249322787e-1f;
    y = y * x - 1.6668057665e-1f;
    y = y * x + 2.0000714765e-1f;
    y = y * x - 2.4999993993e-1f;
    y = y * x + 3.3333331174e-1f;
    y = y * z * x - 0.5f * z;
    return x + y + e * 0.693147180559945f;
}

/* log1p(u) for u in [0, 1]: log(1 + u) scaled by u / ((1 + u) - 1), exact where 1 + u
 * rounds (Goldberg's trick). */
VINLINE vf v_log1p_unit(vf u) {
    vf v = u + 1.0f;
    vf d = v - 1.0f;
    return select(d == 0.0f, u, v_log_1_2(v) * (u / select(d == 0.0f, vsplat(1.0f), d)));
}

VINLINE vf v_tanh(vf x) {
    vf a = vabs(x), z = x * x;
    /* Small |x|: Cephes tanhf's odd polynomial; else (1 - e^-2a) / (1 + e^-2a). */
    vf p = vsplat(-5.70498872745e-3f);
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    vf small = p * z * x + x;
    vf t = v_exp(a * -2.0f); /* (0, 1] */
    vf large = copy_sign((1.0f - t) / (1.0f + t), x);
    return select(a < 0.625f, small, large);
}

/* x^2 - x2 exactly, x2 the rounded square (Dekker: x split into two 12-bit halves, whose
 * products are exact; no FMA needed). */
VINLINE vf square_error(vf x, vf x2) {
    vf c = x * 4097.0f;
    vf hi = c - (c - x), lo = x - hi;
    return ((hi * hi - x2) + 2.0f * hi * lo) + lo * lo;
}

/* gelu(x) = x Phi(x) from erfc(a) = t exp(-a^2 + P(t)), a = |x| / sqrt 2,
 * t = 1 / (1 + a / 2) (Press et al.'s Chebyshev fit, relative error < 1.2e-7): x erfc / 2
 * below 0, keeping the tail's relative accuracy, x (1 - erfc / 2) above; as in
 * epilogue_avx512.c, with -x^2 / 2 an exact sum of two floats. Below x = -18 the result
 * is x * 0 (-0, or NaN for -inf as the formula gives), and a and x are capped so that
 * nothing there overflows. */
VINLINE vf v_gelu(vf x) {
    vf a = vabs(x) * 0.70710678118654752f;
    a = select(a > 13.0f, vsplat(13.0f), a);
    vf t = 1.0f / (a * 0.5f + 1.0f);
    vf p = vsplat(0.17087277f);
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - (1.26551223f + 0.69314718056f);
    vf xc = vabs(x);
    xc = select(xc > 18.0f, vsplat(18.0f), xc);
    vf x2 = xc * xc;
    exp_parts e = v_exp_sum_parts(x2 * -0.5f, p - square_error(xc, x2) * 0.5f);
    vf tp = t * e.p; /* erfc(a) / 2 = tp s1 s2 */
    vf y = select(x < 0.0f, x * tp * e.s1 * e.s2, x * (1.0f - tp * e.s1 * e.s2));
    return select(x < -18.0f, x * 0.0f, y);
}

/* factor / (1 + e^-x) from e = e^-|x| in (0, 1]: factor r for x >= 0, factor e r below,
 * r = 1 / (1 + e): nothing overflows, and the small side keeps its relative accuracy down
 * to the denormals (e's powers of two multiplied in last). Below x = -120, where exp is
 * clamped, factor * 0: the true value is below the smallest denormal for every factor
 * up to FLT_MAX, and swish(-inf) is -inf * 0 = NaN as its formula. */
VINLINE vf v_sigmoid_times(vf x, vf factor) {
    exp_parts e = v_exp_parts(-vabs(x));
    vf fr = factor / (1.0f + e.p * e.s1 * e.s2);
    vf y = select(x < 0.0f, fr * e.p * e.s1 * e.s2, fr);
    return select(x < -120.0f, factor * 0.0f, y);
}

VINLINE vf v_relu6(vf x) {
    return select(x < 0.0f, vsplat(0.0f), select(x > 6.0f, vsplat(6.0f), x));
}

VINLINE vf activate(convblas_activation a, float alpha, vf x) {
    switch (a) {
    case CONVBLAS_LINEAR:
        return x;
    case CONVBLAS_RELU:
        return select(x < 0.0f, vsplat(0.0f), x);
    case CONVBLAS_RELU6:
        return v_relu6(x);
    case CONVBLAS_SIGMOID:
        return v_sigmoid_times(x, vsplat(1.0f));
    case CONVBLAS_TANH:
        return v_tanh(x);
    case CONVBLAS_GELU:
        return v_gelu(x);
    case CONVBLAS_SWISH:
        return v_sigmoid_times(x, x);
    case CONVBLAS_ELU:
        return select(x > 0.0f, x, alpha * v_expm1(x));
    case CONVBLAS_SOFTPLUS:
        return select(x > 0.0f, x, vsplat(0.0f)) + v_log1p_unit(v_exp(-vabs(x)));
    case CONVBLAS_HARD_SIGMOID: {
        vf y = (x + 2.5f) * 0.2f; /* 0.2 x + 0.5 without its cancellation near -2.5 */
        return select(y < 0.0f, vsplat(0.0f), select(y > 1.0f, vsplat(1.0f), y));
    }
    case CONVBLAS_HARD_SWISH:
        return x * v_relu6(x + 3.0f) / 6.0f;
    case CONVBLAS_LEAKY_RELU:
        return select(x < 0.0f, alpha * x, x);
    }
    return x;
}

/* n consecutive values, each plus its bias (bias_vec[i], or bias_one for all). The last
 * partial vector goes through a local buffer so every lane runs the same code. */
SIMD_CLONES
static void activate_span(convblas_activation a, float alpha, float *x, int64_t n,
                          const float *bias_vec, float bias_one) {
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        vf b = bias_vec ? vload(bias_vec + i) : vsplat(bias_one);
        vstore(x + i, activate(a, alpha, vload(x + i) + b));
    }
    if (i == n) return;
    float xt[VL] = {0}, bt[VL] = {0};
    int64_t rest = n - i;
    memcpy(xt, x + i, (size_t)rest * sizeof(float));
    if (bias_vec) memcpy(bt, bias_vec + i, (size_t)rest * sizeof(float));
    vf v = activate(a, alpha, vload(xt) + (bias_vec ? vload(bt) : vsplat(bias_one)));
    vstore(xt, v);
    memcpy(x + i, xt, (size_t)rest * sizeof(float));
}

void cb_epilogue(const cb_problem *p, const float *bias, float *c, int64_t positions, int64_t ld) {
    const float *b = p->use_bias ? bias : NULL;
    if (!b && p->activation == CONVBLAS_LINEAR) return;
    cb_span_fn fast = cb_activation_span_v4(p->activation);
    if (p->format == CONVBLAS_CHANNELS_LAST) {
        for (int64_t r = 0; r < positions; r++)
            if (fast)
                fast(c + r * ld, p->out_channels, b, 0.0f);
            else
                activate_span(p->activation, p->alpha, c + r * ld, p->out_channels, b, 0.0f);
    } else {
        for (int64_t ch = 0; ch < p->out_channels; ch++)
            if (fast)
                fast(c + ch * ld, positions, NULL, b ? b[ch] : 0.0f);
            else
                activate_span(p->activation, p->alpha, c + ch * ld, positions, NULL,
                              b ? b[ch] : 0.0f);
    }
}
