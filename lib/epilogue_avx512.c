/* The transcendental activations (sigmoid, swish, tanh, gelu) with AVX-512 instructions
 * that the portable vector code of epilogue.c cannot reach: vscalefps puts the exponent
 * into exp() and saturates to inf and 0 by itself (no clamping selects), vrcp14ps plus
 * one Newton step replaces the division (one zmm division costs more than the rest of a
 * sigmoid), and mask registers choose between branches. About 2x faster than the portable
 * code, which stays for the other activations and for CPUs without AVX-512.
 *
 * Accuracy (measured by test_activations against double precision): a few ulp wherever
 * the result is a normal float. gelu is computed from erfc, so its negative tail keeps its
 * relative accuracy where 1 + erf(x) would cancel. IEEE special values follow the
 * reference formulas in convblas.h: NaN in gives NaN out, swish(-inf) and gelu(-inf) are
 * NaN (-inf * 0), exp overflows to inf and underflows to 0. */
#include "convblas_internal.h"
#include "simd.h"

#ifdef CB_TARGET_V4
#include <immintrin.h>

#define V4 CB_TARGET_V4 static inline __attribute__((always_inline))

V4 __m512 splat(float v) {
    return _mm512_set1_ps(v);
}

/* e^(big + small) = p 2^n, big + small finite in [-250, 89], |small| < 4: the reduction
 * (Cody-Waite with Cephes's two-part ln2) works on big, which it subtracts exactly, and
 * small joins the reduced argument, so a big that is exact (e.g. -x^2 / 2 split in two)
 * keeps its digits; p = e^r by Cephes expf's degree-6 polynomial, |r| <= ln2 / 2 + small's
 * rounding. Callers scale by 2^n with vscalefps as the last step, so a result below
 * FLT_MIN is rounded once (a denormal e^x times something would lose digits). */
typedef struct {
    __m512 p, n;
} exp_parts;

V4 exp_parts exp_sum_v4(__m512 big, __m512 small) {
    __m512 n =
        _mm512_roundscale_ps(_mm512_mul_ps(_mm512_add_ps(big, small), splat(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, splat(0.693359375f), big);
    r = _mm512_add_ps(_mm512_fnmadd_ps(n, splat(-2.12194440e-4f), r), small);
    __m512 p = splat(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, splat(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, splat(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, splat(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, splat(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, splat(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
    return (exp_parts){_mm512_add_ps(p, splat(1.0f)), n};
}

/* e^x for every x: clamped to [-120, 89] first, beyond which the result is 0 or inf anyway
 * (and inf - inf would give NaN). min/max return their second operand for NaN: NaN stays. */
V4 exp_parts exp_clamped_v4(__m512 x) {
    return exp_sum_v4(_mm512_max_ps(splat(-120.0f), _mm512_min_ps(splat(89.0f), x)),
                      _mm512_setzero_ps());
}

/* 1 / d for d in [1, 2]: a 14-bit estimate and one Newton step (about 1 ulp). */
V4 __m512 recip_v4(__m512 d) {
    __m512 r = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, splat(1.0f)), r);
}

/* 1 / (1 + e^-x), times x for swish (factor x) or not (factor 1): from e = e^-|x| in
 * (0, 1], r = 1 / (1 + e); factor r for x >= 0, factor e r below, so nothing overflows and
 * the small side keeps its relative accuracy, down to the denormals (2^n applied last). */
V4 __m512 sigmoid_times_v4(__m512 x, __m512 factor) {
    exp_parts e = exp_clamped_v4(_mm512_or_ps(x, splat(-0.0f)));
    __m512 r = recip_v4(_mm512_add_ps(_mm512_scalef_ps(e.p, e.n), splat(1.0f)));
    __mmask16 neg = _mm512_cmp_ps_mask(x, splat(0.0f), _CMP_LT_OQ);
    __m512 fr = _mm512_mul_ps(factor, r);
    __m512 y = _mm512_mask_scalef_ps(fr, neg, _mm512_mul_ps(fr, e.p), e.n);
    /* below -120 (exp clamped): factor * 0, the true value being below every denormal */
    __mmask16 tiny = _mm512_cmp_ps_mask(x, splat(-120.0f), _CMP_LT_OQ);
    return _mm512_mask_mul_ps(y, tiny, factor, splat(0.0f));
}

/* tanh: Cephes tanhf's odd polynomial below |x| = 0.625, else
 * sign(x) (1 - e) / (1 + e) with e = e^-2|x|. */
V4 __m512 tanh_v4(__m512 x) {
    __m512 z = _mm512_mul_ps(x, x);
    __m512 p = splat(-5.70498872745e-3f);
    p = _mm512_fmadd_ps(p, z, splat(2.06390887954e-2f));
    p = _mm512_fmadd_ps(p, z, splat(-5.37397155531e-2f));
    p = _mm512_fmadd_ps(p, z, splat(1.33314422036e-1f));
    p = _mm512_fmadd_ps(p, z, splat(-3.33332819422e-1f));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
    exp_parts ep = exp_clamped_v4(_mm512_mul_ps(_mm512_or_ps(x, splat(-0.0f)), splat(2.0f)));
    __m512 e = _mm512_scalef_ps(ep.p, ep.n);
    __m512 r = recip_v4(_mm512_add_ps(e, splat(1.0f)));
    __m512 large = _mm512_mul_ps(_mm512_sub_ps(splat(1.0f), e), r);
    /* x's sign bit onto the magnitude: bitwise c ? b : a (truth table 0xD8), c the sign bit */
    large = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(
        _mm512_castps_si512(large), _mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN), 0xD8));
    __mmask16 big = _mm512_cmp_ps_mask(_mm512_abs_ps(x), splat(0.625f), _CMP_GE_OQ);
    return _mm512_mask_mov_ps(small, big, large);
}

/* y, but x * 0 where x < limit: where the true value is below the smallest denormal
 * though clamped arguments would give a tiny non-zero one (and -inf * 0 = NaN, as the
 * formulas x sigmoid(x) and x Phi(x) give at -inf). */
V4 __m512 zero_below(__m512 x, float limit, __m512 y) {
    __mmask16 m = _mm512_cmp_ps_mask(x, splat(limit), _CMP_LT_OQ);
    return _mm512_mask_mul_ps(y, m, x, splat(0.0f));
}

/* gelu(x) = x Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2. erfc(a), a = |x| / sqrt 2, is
 * t exp(-a^2 + P(t)), t = 1 / (1 + a / 2): the Chebyshev fit of Press et al. (Numerical
 * Recipes, erfcc), relative error under 1.2e-7 for every a >= 0; the halving is folded
 * into P's constant (- ln 2). Then Phi = erfc / 2 below 0 (relative accuracy kept in the
 * tail) and 1 - erfc / 2 above. The exponent -x^2 / 2 is an exact sum of two floats, or
 * its rounding would cost up to 150 ulp in the tail. |x| is capped at 18 (a at 12.8),
 * where erfc is far below the smallest float, so that everything stays finite; below
 * x = -18 the result is x * 0. */
V4 __m512 gelu_v4(__m512 x) {
    __m512 a =
        _mm512_min_ps(splat(12.8f), _mm512_mul_ps(_mm512_abs_ps(x), splat(0.70710678118654752f)));
    __m512 t = recip_v4(_mm512_fmadd_ps(a, splat(0.5f), splat(1.0f)));
    __m512 p = splat(0.17087277f);
    p = _mm512_fmadd_ps(p, t, splat(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, splat(1.48851587f));
    p = _mm512_fmadd_ps(p, t, splat(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, splat(0.27886807f));
    p = _mm512_fmadd_ps(p, t, splat(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, splat(0.09678418f));
    p = _mm512_fmadd_ps(p, t, splat(0.37409196f));
    p = _mm512_fmadd_ps(p, t, splat(1.00002368f));
    p = _mm512_fmadd_ps(p, t, splat(-1.26551223f - 0.69314718056f));
    /* -a^2 = -x^2 / 2 as an exact sum hi + lo (x capped with a) */
    __m512 xc = _mm512_min_ps(splat(18.0f), _mm512_abs_ps(x));
    __m512 x2 = _mm512_mul_ps(xc, xc);
    __m512 x2_lo = _mm512_fmsub_ps(xc, xc, x2);
    exp_parts e =
        exp_sum_v4(_mm512_mul_ps(x2, splat(-0.5f)), _mm512_fnmadd_ps(x2_lo, splat(0.5f), p));
    __m512 tp = _mm512_mul_ps(t, e.p); /* erfc(a) / 2 = tp 2^n */
    /* x >= 0: x (1 - erfc / 2); below: x erfc / 2, with 2^n applied last */
    __m512 y = _mm512_mul_ps(x, _mm512_sub_ps(splat(1.0f), _mm512_scalef_ps(tp, e.n)));
    __mmask16 pos = _mm512_cmp_ps_mask(x, splat(0.0f), _CMP_GE_OQ);
    y = _mm512_mask_scalef_ps(y, (__mmask16)~pos, _mm512_mul_ps(x, tp), e.n);
    return zero_below(x, -18.0f, y);
}

V4 __m512 activate_v4(convblas_activation a, __m512 x) {
    switch (a) {
    case CONVBLAS_SIGMOID:
        return sigmoid_times_v4(x, splat(1.0f));
    case CONVBLAS_SWISH:
        return sigmoid_times_v4(x, x);
    case CONVBLAS_TANH:
        return tanh_v4(x);
    case CONVBLAS_GELU:
        return gelu_v4(x);
    default:
        return x;
    }
}

/* One loop per activation (the switch is resolved outside the loop by inlining). */
V4 void span_v4(convblas_activation a, float *x, int64_t n, const float *bias_vec, float bias_one) {
    __m512 one_bias = splat(bias_one);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 b = bias_vec ? _mm512_loadu_ps(bias_vec + i) : one_bias;
        _mm512_storeu_ps(x + i, activate_v4(a, _mm512_add_ps(_mm512_loadu_ps(x + i), b)));
    }
    if (i == n) return;
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    __m512 b = bias_vec ? _mm512_maskz_loadu_ps(m, bias_vec + i) : one_bias;
    __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, x + i), b);
    _mm512_mask_storeu_ps(x + i, m, activate_v4(a, v));
}

CB_TARGET_V4 static void span_sigmoid(float *x, int64_t n, const float *bv, float b1) {
    span_v4(CONVBLAS_SIGMOID, x, n, bv, b1);
}
CB_TARGET_V4 static void span_swish(float *x, int64_t n, const float *bv, float b1) {
    span_v4(CONVBLAS_SWISH, x, n, bv, b1);
}
CB_TARGET_V4 static void span_tanh(float *x, int64_t n, const float *bv, float b1) {
    span_v4(CONVBLAS_TANH, x, n, bv, b1);
}
CB_TARGET_V4 static void span_gelu(float *x, int64_t n, const float *bv, float b1) {
    span_v4(CONVBLAS_GELU, x, n, bv, b1);
}

cb_span_fn cb_activation_span_v4(convblas_activation a) {
    if (!cb_cpu_v4()) return NULL;
    switch (a) {
    case CONVBLAS_SIGMOID:
        return span_sigmoid;
    case CONVBLAS_SWISH:
        return span_swish;
    case CONVBLAS_TANH:
        return span_tanh;
    case CONVBLAS_GELU:
        return span_gelu;
    default:
        return NULL;
    }
}

#else

cb_span_fn cb_activation_span_v4(convblas_activation a) {
    (void)a;
    return NULL;
}

#endif
