/* The constants of the ESTIMATE cost model: the machine's single-thread sgemm rate, its
 * streaming copy rate and the fixed cost of a small BLAS call. They are measured once per
 * process, at the first plan, in about 3 ms (a 256^3 sgemm, 8 MiB copied in short runs,
 * a burst of 32^3 sgemms, each the best of a few), so that the same cost model chooses well on a
 * machine whose GEMM-to-memory ratio differs from ours. CONVBLAS_COST_MODEL
 * ("gemm=1.5e11,copy=1.2e10,call=3e-7": flop/s, bytes/s, seconds) pins them instead, for
 * reproducible plans. */
#include "convblas_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What an AVX-512 server core with OpenBLAS does; kept when measuring is impossible. */
cb_machine_model cb_machine = {
    .gemm_flops = 150e9,
    .copy_bytes = 12e9,
    .call_cost = 0.3e-6,
    .source = "built-in defaults",
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { GEMM_N = 256, COPY_FLOATS = 2 << 20, SMALL_CALLS = 100, TRIES = 5 };

static double time_gemm(float *a, float *b, float *c) {
    double best = 1e30;
    for (int r = 0; r < TRIES; r++) {
        double t0 = now();
        cb_sgemm(CB_NO_TRANS, CB_NO_TRANS, GEMM_N, GEMM_N, GEMM_N, a, GEMM_N, b, GEMM_N, 0.0f, c,
                 GEMM_N);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    return 2.0 * GEMM_N * GEMM_N * GEMM_N / best;
}

/* The lowerings copy receptive fields as runs of a few hundred bytes from scattered
 * places (im2col of a channels_last row, the padded windows of the direct kernels): time
 * that, not a streaming memcpy, which would be several times faster. */
static double time_copy(float *src, float *dst) {
    enum { RUN = 64, STRIDE = 3 * RUN / 2 };
    int64_t runs = COPY_FLOATS / STRIDE;
    double best = 1e30;
    for (int r = 0; r < TRIES; r++) {
        double t0 = now();
        for (int64_t i = 0; i < runs; i++)
            memcpy(dst + i * RUN, src + i * STRIDE, RUN * sizeof(float));
        double t = now() - t0;
        best = t < best ? t : best;
    }
    /* Read and write both count, as the strategies' byte counts do. */
    return 2.0 * (double)(runs * RUN) * sizeof(float) / best;
}

/* The fixed cost of a GEMM call beyond its flops: a 32^3 call less its flops at the
 * large-block rate (argument checks, packing set-up, the edge kernels). */
static double time_small_calls(float *a, float *b, float *c, double gemm_rate) {
    double best = 1e30;
    for (int r = 0; r < TRIES; r++) {
        double t0 = now();
        for (int i = 0; i < SMALL_CALLS; i++)
            cb_sgemm(CB_NO_TRANS, CB_NO_TRANS, 32, 32, 32, a, 32, b, 32, 0.0f, c, 32);
        double t = (now() - t0) / SMALL_CALLS;
        best = t < best ? t : best;
    }
    double overhead = best - 2.0 * 32 * 32 * 32 / gemm_rate;
    return overhead > 0.05e-6 ? overhead : 0.05e-6;
}

static void measure(void) {
    /* Plain malloc: a best-effort measurement, outside the plan's fault-injected memory. */
    size_t n = (size_t)GEMM_N * GEMM_N;
    float *buf = malloc((3 * n + 2 * (size_t)COPY_FLOATS) * sizeof(float));
    if (!buf) return;
    for (size_t i = 0; i < 3 * n + 2 * (size_t)COPY_FLOATS; i++) buf[i] = (float)(i % 7) * 0.25f;
    float *a = buf, *b = a + n, *c = b + n, *src = c + n, *dst = src + COPY_FLOATS;
    cb_blas_serial_enter(); /* one BLAS thread, as the strategies' GEMMs run */
    cb_sgemm(CB_NO_TRANS, CB_NO_TRANS, GEMM_N, GEMM_N, GEMM_N, a, GEMM_N, b, GEMM_N, 0.0f, c,
             GEMM_N); /* warm-up: the BLAS's buffers and kernel choice */
    double gemm = time_gemm(a, b, c), copy = time_copy(src, dst);
    double call = time_small_calls(a, b, c, gemm);
    cb_blas_serial_leave();
    free(buf);
    /* The machine's rates times what our code gets of them: a 256^3 call runs a little
     * below the large-block rate; the lowerings' unfolding (index arithmetic, bounds,
     * zero fill) moves bytes at about a quarter of memcpy's rate; a call inside a
     * strategy costs several times an isolated small call (cold operands, edge tiles).
     * The factors were fitted once on the whole suite, not per row. */
    cb_machine.gemm_flops = gemm * 1.1;
    cb_machine.copy_bytes = copy * 0.24;
    cb_machine.call_cost = call * 6.0;
    cb_machine.source = "measured at the first plan";
}

static bool parse_pinned(const char *text) {
    double g, c, k;
    char tail;
    if (sscanf(text, "gemm=%lf,copy=%lf,call=%lf%c", &g, &c, &k, &tail) != 3) return false;
    if (!(g > 0 && c > 0 && k >= 0) || g > 1e18 || c > 1e18 || k > 1) return false;
    cb_machine.gemm_flops = g;
    cb_machine.copy_bytes = c;
    cb_machine.call_cost = k;
    cb_machine.source = "CONVBLAS_COST_MODEL";
    return true;
}

/* The largest cache sysfs lists for CPU 0. glibc's sysconf reads CPUID, which in our VM
 * claims a 320 MiB L3 where sysfs (and lscpu) give the true 32 MiB. */
static size_t read_cache_bytes(void) {
    size_t best = 0;
    for (int i = 0; i < 8; i++) {
        char path[64];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        unsigned long long v;
        char unit = 0;
        if (fscanf(f, "%llu%c", &v, &unit) >= 1 && v < (1ull << 40)) {
            size_t bytes = unit == 'K' ? v << 10 : unit == 'M' ? v << 20 : v;
            best = bytes > best ? bytes : best;
        }
        fclose(f);
    }
    return best;
}

bool cb_streams_from_memory(const cb_problem *p) {
    double bytes = ((double)p->in_elems + (double)p->out_elems) * sizeof(float);
    return cb_machine.cache_bytes > 0 && bytes > 0.5 * (double)cb_machine.cache_bytes;
}

static void calibrate(void) {
    cb_machine.cache_bytes = read_cache_bytes();
    const char *pinned = getenv("CONVBLAS_COST_MODEL");
    if (pinned && *pinned && parse_pinned(pinned)) return;
    measure();
    if (pinned && *pinned)
        cb_machine.source = "measured: CONVBLAS_COST_MODEL is not gemm=F,copy=B,call=S";
}

void cb_machine_calibrate(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, calibrate);
}
