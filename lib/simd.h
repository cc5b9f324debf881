/* Portable SIMD for the library's own loops (depthwise kernels, activations): GCC/Clang
 * vector extensions, 16 floats wide, compiled per CPU level with SIMD_CLONES so the loader
 * picks AVX-512, AVX2+FMA or baseline at run time. */
#ifndef CONVBLAS_SIMD_H
#define CONVBLAS_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(CONVBLAS_NO_TARGET_CLONES)
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SIMD_CLONES
#endif

/* Vector helpers are static and inlined into the clones: no vector crosses an ABI. */
#pragma GCC diagnostic ignored "-Wpsabi"

/* Code written for AVX-512 alone (intrinsics, or loops that need its 32 registers): the
 * function attribute, and whether this CPU runs it (what arch=x86-64-v4 asks). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(CONVBLAS_NO_TARGET_CLONES)
#define CB_TARGET_V4 __attribute__((target("arch=x86-64-v4")))
#include <stdbool.h>
static inline bool cb_cpu_v4(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512cd");
}
#endif

/* Every vector helper is inlined whole (GCC would otherwise outline parts of big ones). */
#define VINLINE static inline __attribute__((always_inline))

enum { VL = 16 }; /* floats per vector: one zmm, two ymm, four xmm */
typedef float vf __attribute__((vector_size(VL * sizeof(float)), aligned(sizeof(float))));
typedef int32_t vi __attribute__((vector_size(VL * sizeof(int32_t)), aligned(sizeof(int32_t))));

VINLINE vf vload(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
VINLINE void vstore(float *p, vf v) {
    memcpy(p, &v, sizeof v);
}
VINLINE vf vsplat(float x) {
    return (vf){0} + x;
}

/* Lane-wise choice: a where mask (a comparison's result) is set, b elsewhere. */
VINLINE vf vblend(vi mask, vf a, vf b) {
    vi ai, bi;
    memcpy(&ai, &a, sizeof ai);
    memcpy(&bi, &b, sizeof bi);
    vi r = (ai & mask) | (bi & ~mask);
    vf out;
    memcpy(&out, &r, sizeof out);
    return out;
}

#ifdef CB_TARGET_V4
/* A vector loaded into a register, to be reused by every FMA that reads it: left to itself,
 * GCC folds the load into each FMA (126 loads for 36 vectors in a 3x3 pair block), and the
 * load port, not the FMAs, sets the pace. "v": one of AVX-512's 32 registers. */
CB_TARGET_V4 VINLINE vf cb_vload_reg(const float *p) {
    vf v = vload(p);
    __asm__("" : "+v"(v));
    return v;
}
#endif

#endif
