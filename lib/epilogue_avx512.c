/* The transcendental activations (sigmoid, swish, tanh, gelu) with AVX-512 instructions
 * that the portable vector code of epilogue.c cannot reach: vscalefps puts the exponent
 * into exp() and saturates to inf and 0 by itself (no clamping selects), vrcp14ps plus
 * one Newton step replaces the division (one zmm division costs more than the rest of a
 * sigmoid), and mask registers choose between branches. About 2x faster than the portable
 * code, which stays for the other activations and for CPUs without AVX-512.
 *
 * Each function works on U vectors at once, step by step (EACH), so that four independent
 * chains are interleaved in the instruction stream: one vector's gelu is a chain of about
 * 45 dependent operations, and one at a time they filled the scheduler with operations
 * waiting on each other (gelu 0.84 ns per float; interleaved by 4, 0.65).
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
/* Vectors interleaved by the main loop: 4 chains keep 13 values each within 32 registers. */
enum { UMAX = 4 };
/* stmt for each of the U vectors, u the index (unrolled: U is a constant). */
#define EACH(stmt) _Pragma("GCC unroll 4") for (int u = 0; u < U; u++) stmt

V4 __m512 splat(float v) {
    return _mm512_set1_ps(v);
}

/* e^(big + small) = p 2^n, big + small finite in [-250, 89], |small| < 4: the reduction
 * (Cody-Waite with Cephes's two-part ln2) works on big, which it subtracts exactly, and
 * small joins the reduced argument, so a big that is exact (e.g. -x^2 / 2 split in two)
 * keeps its digits; p = e^r by a degree-6 polynomial in Horner's form, our minimax fit of
 * e^r's relative error on |r| <= ln2 / 2 + 0.002 (mpmath, Remez; 0.3 ulp with the
 * coefficients rounded to float): six FMAs where Cephes's form of the same degree takes
 * eight operations. Callers scale by 2^n with vscalefps as the last step, so a result
 * below FLT_MIN is rounded once (a denormal e^x times something would lose digits). */
V4 void exp_sum(const __m512 *big, const __m512 *small, __m512 *p, __m512 *n, const int U) {
    static const float c[7] = {0x1.6ab578p-10f,
                               0x1.12710ep-7f,
                               0x1.5558aep-5f,
                               0x1.555402p-3f,
                               0x1.fffffap-2f,
                               1.0f,
                               1.0f};
    __m512 r[UMAX];
    EACH(n[u] = _mm512_roundscale_ps(
             _mm512_mul_ps(_mm512_add_ps(big[u], small[u]), splat(1.44269504088896341f)),
             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    EACH(r[u] = _mm512_fnmadd_ps(n[u], splat(0.693359375f), big[u]));
    EACH(r[u] = _mm512_add_ps(_mm512_fnmadd_ps(n[u], splat(-2.12194440e-4f), r[u]), small[u]));
    EACH(p[u] = splat(c[0]));
#pragma GCC unroll 6
    for (int k = 1; k < 7; k++) EACH(p[u] = _mm512_fmadd_ps(p[u], r[u], splat(c[k])));
}

/* e^x for every x: clamped to [-120, 89] first, beyond which the result is 0 or inf anyway
 * (and inf - inf would give NaN). min/max return their second operand for NaN: NaN stays. */
V4 void exp_clamped(const __m512 *x, __m512 *p, __m512 *n, const int U) {
    __m512 c[UMAX], zero[UMAX];
    EACH(c[u] = _mm512_max_ps(splat(-120.0f), _mm512_min_ps(splat(89.0f), x[u])));
    EACH(zero[u] = _mm512_setzero_ps());
    exp_sum(c, zero, p, n, U);
}

/* 1 / d for d in [1, 2]: a 14-bit estimate and one Newton step (about 1 ulp). */
V4 void recip(__m512 *d, const int U) {
    __m512 r[UMAX];
    EACH(r[u] = _mm512_rcp14_ps(d[u]));
    EACH(d[u] = _mm512_fmadd_ps(r[u], _mm512_fnmadd_ps(d[u], r[u], splat(1.0f)), r[u]));
}

/* 1 / (1 + e^-x), times x for swish (times_x) or not: from e = e^-|x| in (0, 1],
 * r = 1 / (1 + e); factor r for x >= 0, factor e r below, so nothing overflows and the
 * small side keeps its relative accuracy, down to the denormals (2^n applied last). */
V4 void sigmoid_times(__m512 *x, bool times_x, const int U) {
    __m512 m[UMAX], p[UMAX], n[UMAX], r[UMAX];
    EACH(m[u] = _mm512_or_ps(x[u], splat(-0.0f)));
    exp_clamped(m, p, n, U);
    EACH(r[u] = _mm512_add_ps(_mm512_scalef_ps(p[u], n[u]), splat(1.0f)));
    recip(r, U);
    EACH({
        __m512 factor = times_x ? x[u] : splat(1.0f);
        __mmask16 neg = _mm512_cmp_ps_mask(x[u], splat(0.0f), _CMP_LT_OQ);
        __m512 fr = _mm512_mul_ps(factor, r[u]);
        __m512 y = _mm512_mask_scalef_ps(fr, neg, _mm512_mul_ps(fr, p[u]), n[u]);
        /* below -120 (exp clamped): factor * 0, the true value being below every denormal */
        __mmask16 tiny = _mm512_cmp_ps_mask(x[u], splat(-120.0f), _CMP_LT_OQ);
        x[u] = _mm512_mask_mul_ps(y, tiny, factor, splat(0.0f));
    });
}

/* tanh: Cephes tanhf's odd polynomial below |x| = 0.625, else
 * sign(x) (1 - e) / (1 + e) with e = e^-2|x|. */
V4 void tanh_n(__m512 *x, const int U) {
    static const float c[5] = {-5.70498872745e-3f, 2.06390887954e-2f, -5.37397155531e-2f,
                               1.33314422036e-1f, -3.33332819422e-1f};
    __m512 z[UMAX], q[UMAX], m[UMAX], p[UMAX], n[UMAX], e[UMAX], r[UMAX];
    EACH(z[u] = _mm512_mul_ps(x[u], x[u]));
    EACH(q[u] = splat(c[0]));
#pragma GCC unroll 4
    for (int k = 1; k < 5; k++) EACH(q[u] = _mm512_fmadd_ps(q[u], z[u], splat(c[k])));
    EACH(m[u] = _mm512_mul_ps(_mm512_or_ps(x[u], splat(-0.0f)), splat(2.0f)));
    exp_clamped(m, p, n, U);
    EACH(e[u] = _mm512_scalef_ps(p[u], n[u]));
    EACH(r[u] = _mm512_add_ps(e[u], splat(1.0f)));
    recip(r, U);
    EACH({
        __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(q[u], z[u]), x[u], x[u]);
        __m512 large = _mm512_mul_ps(_mm512_sub_ps(splat(1.0f), e[u]), r[u]);
        /* x's sign bit onto the magnitude: bitwise c ? b : a (truth table 0xD8), c the
         * sign bit */
        large = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(large),
                                                              _mm512_castps_si512(x[u]),
                                                              _mm512_set1_epi32(INT32_MIN), 0xD8));
        __mmask16 big = _mm512_cmp_ps_mask(_mm512_abs_ps(x[u]), splat(0.625f), _CMP_GE_OQ);
        x[u] = _mm512_mask_mov_ps(small, big, large);
    });
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
 * its rounding would cost up to 150 ulp in the tail. |x| is capped at 18 (a at 12.73),
 * where erfc is far below the smallest float, so that everything stays finite; below
 * x = -18 the result is x * 0. */
V4 void gelu_n(__m512 *x, const int U) {
    static const float c[10] = {
        0.17087277f,  -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
        -0.18628806f, 0.09678418f,  0.37409196f, 1.00002368f,  -1.26551223f - 0.69314718056f};
    __m512 xc[UMAX], t[UMAX], q[UMAX], big[UMAX], small[UMAX], p[UMAX], n[UMAX];
    EACH(xc[u] = _mm512_min_ps(splat(18.0f), _mm512_abs_ps(x[u])));
    EACH(t[u] = _mm512_fmadd_ps(_mm512_mul_ps(xc[u], splat(0.70710678118654752f)), splat(0.5f),
                                splat(1.0f)));
    recip(t, U);
    EACH(q[u] = splat(c[0]));
#pragma GCC unroll 9
    for (int k = 1; k < 10; k++) EACH(q[u] = _mm512_fmadd_ps(q[u], t[u], splat(c[k])));
    /* -a^2 = -x^2 / 2 as an exact sum big + small's first term */
    EACH(big[u] = _mm512_mul_ps(xc[u], xc[u]));
    EACH(small[u] = _mm512_fnmadd_ps(_mm512_fmsub_ps(xc[u], xc[u], big[u]), splat(0.5f), q[u]));
    EACH(big[u] = _mm512_mul_ps(big[u], splat(-0.5f)));
    exp_sum(big, small, p, n, U);
    EACH({
        __m512 tp = _mm512_mul_ps(t[u], p[u]); /* erfc(a) / 2 = tp 2^n */
        /* x >= 0: x (1 - erfc / 2) (x - x erfc / 2 would be inf - inf * 0 at inf); below:
         * x erfc / 2, with 2^n applied last */
        __m512 y = _mm512_mul_ps(x[u], _mm512_sub_ps(splat(1.0f), _mm512_scalef_ps(tp, n[u])));
        __mmask16 pos = _mm512_cmp_ps_mask(x[u], splat(0.0f), _CMP_GE_OQ);
        y = _mm512_mask_scalef_ps(y, (__mmask16)~pos, _mm512_mul_ps(x[u], tp), n[u]);
        x[u] = zero_below(x[u], -18.0f, y);
    });
}

V4 void activate(convblas_activation a, __m512 *x, const int U) {
    switch (a) {
    case CONVBLAS_SIGMOID:
        sigmoid_times(x, false, U);
        break;
    case CONVBLAS_SWISH:
        sigmoid_times(x, true, U);
        break;
    case CONVBLAS_TANH:
        tanh_n(x, U);
        break;
    case CONVBLAS_GELU:
        gelu_n(x, U);
        break;
    default:
        break;
    }
}

/* One loop per activation (the switch is resolved outside the loop by inlining): UMAX
 * vectors at a time, then two, then one, then the masked rest. */
V4 void span_v4(convblas_activation a, float *x, int64_t n, const float *bias_vec, float bias_one) {
    __m512 one_bias = splat(bias_one), v[UMAX];
    int64_t i = 0;
    for (; i + 16 * UMAX <= n; i += 16 * UMAX) {
        const int U = UMAX;
        EACH(v[u] = _mm512_add_ps(_mm512_loadu_ps(x + i + 16 * u),
                                  bias_vec ? _mm512_loadu_ps(bias_vec + i + 16 * u) : one_bias));
        activate(a, v, UMAX);
        EACH(_mm512_storeu_ps(x + i + 16 * u, v[u]));
    }
    if (i + 32 <= n) {
        const int U = 2;
        EACH(v[u] = _mm512_add_ps(_mm512_loadu_ps(x + i + 16 * u),
                                  bias_vec ? _mm512_loadu_ps(bias_vec + i + 16 * u) : one_bias));
        activate(a, v, 2);
        EACH(_mm512_storeu_ps(x + i + 16 * u, v[u]));
        i += 32;
    }
    for (; i + 16 <= n; i += 16) {
        v[0] = _mm512_add_ps(_mm512_loadu_ps(x + i),
                             bias_vec ? _mm512_loadu_ps(bias_vec + i) : one_bias);
        activate(a, v, 1);
        _mm512_storeu_ps(x + i, v[0]);
    }
    if (i == n) return;
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    __m512 b = bias_vec ? _mm512_maskz_loadu_ps(m, bias_vec + i) : one_bias;
    v[0] = _mm512_add_ps(_mm512_maskz_loadu_ps(m, x + i), b);
    activate(a, v, 1);
    _mm512_mask_storeu_ps(x + i, m, v[0]);
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
