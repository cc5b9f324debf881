/* The machine's limits, measured in the same run as the layers: sgemm on a large square
 * problem straight through the BLAS (peak flops), and a STREAM-like triad over arrays far
 * larger than the last-level cache (memory bandwidth), at each thread count. */
#include "bench.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- sgemm ---------------------------------------------------------------------------- */

static void blas_threads(int n) {
#ifdef CONVBLAS_BENCH_OPENBLAS
    openblas_set_num_threads(n);
#else
    (void)n; /* a generic CBLAS: its own settings decide */
#endif
}

static int blas_get_threads(void) {
#ifdef CONVBLAS_BENCH_OPENBLAS
    return openblas_get_num_threads();
#else
    return 1;
#endif
}

/* Best of a few 2 n^3 sgemm calls (at least 3, about 0.5 s), in GFLOP/s. */
static double sgemm_rate(int n, int threads, float *a, float *b, float *c) {
    int saved = blas_get_threads();
    blas_threads(threads);
    double best = 0, spent = 0;
    for (int rep = 0; rep < 4 || (rep < 20 && spent < 0.5); rep++) {
        double t0 = now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        double t = now_seconds() - t0;
        spent += t;
        if (rep > 0 && (best == 0 || t < best)) best = t; /* rep 0 is the warm-up */
    }
    blas_threads(saved);
    return 2.0 * n * (double)n * n / best * 1e-9;
}

/* ---- triad ---------------------------------------------------------------------------- */

typedef struct triad_arg {
    float *a, *b, *c;
    size_t begin, end;
    bool init;
} triad_arg;

static void *triad_worker(void *p) {
    triad_arg *t = p;
    float *restrict a = t->a, *restrict b = t->b, *restrict c = t->c;
    if (t->init) { /* first touch by the thread that will stream the slice */
        for (size_t i = t->begin; i < t->end; i++) {
            a[i] = 0.0f;
            b[i] = 1.0f;
            c[i] = 2.0f;
        }
        return NULL;
    }
    const float s = 3.0f;
    for (size_t i = t->begin; i < t->end; i++) a[i] = b[i] + s * c[i];
    return NULL;
}

static double triad_pass(float *a, float *b, float *c, size_t n, int threads, bool init) {
    pthread_t *ids = malloc((size_t)threads * sizeof *ids);
    triad_arg *args = malloc((size_t)threads * sizeof *args);
    if (!ids || !args) threads = 1; /* the caller's thread alone */
    triad_arg one;
    if (!args) args = &one;
    double t0 = now_seconds();
    int started = 0;
    for (int i = 0; i < threads; i++)
        args[i] = (triad_arg){
            a, b, c, n * (size_t)i / (size_t)threads, n * (size_t)(i + 1) / (size_t)threads, init};
    for (int i = 1; i < threads; i++)
        if (pthread_create(&ids[started], NULL, triad_worker, &args[i]) == 0)
            started++;
        else
            triad_worker(&args[i]); /* could not start one: its slice runs here */
    triad_worker(&args[0]);
    for (int i = 0; i < started; i++) pthread_join(ids[i], NULL);
    double t = now_seconds() - t0;
    free(ids);
    if (args != &one) free(args);
    return t;
}

/* Best of 5 passes, in GB/s, counting 3 arrays moved (STREAM's convention). */
static double triad_rate(float *a, float *b, float *c, size_t n, int threads) {
    double best = 0;
    triad_pass(a, b, c, n, threads, false);
    for (int rep = 0; rep < 5; rep++) {
        double t = triad_pass(a, b, c, n, threads, false);
        if (best == 0 || t < best) best = t;
    }
    return 3.0 * (double)n * sizeof(float) / best * 1e-9;
}

/* ---- both ----------------------------------------------------------------------------- */

static void measure_gemm(machine_limits *m) {
    size_t n = (size_t)m->gemm_n;
    float *a = malloc(n * n * sizeof *a), *b = malloc(n * n * sizeof *b);
    float *c = malloc(n * n * sizeof *c);
    if (a && b && c) {
        for (size_t i = 0; i < n * n; i++) {
            a[i] = (float)(i % 13) * 0.01f;
            b[i] = (float)(i % 7) * 0.02f;
        }
        for (int i = 0; i < m->count; i++)
            m->gemm_gflops[i] = sgemm_rate(m->gemm_n, m->threads[i], a, b, c);
    }
    free(a);
    free(b);
    free(c);
}

static void measure_triad(machine_limits *m) {
    size_t n = (size_t)(m->triad_mib * 1048576.0 / sizeof(float));
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    if (a && b && c) {
        int most = 1;
        for (int i = 0; i < m->count; i++) most = m->threads[i] > most ? m->threads[i] : most;
        triad_pass(a, b, c, n, most, true);
        for (int i = 0; i < m->count; i++) m->triad_gbps[i] = triad_rate(a, b, c, n, m->threads[i]);
    }
    free(a);
    free(b);
    free(c);
}

void machine_measure(machine_limits *m, const int *threads, int count, int gemm_n, double triad_mib,
                     bool verbose) {
    memset(m, 0, sizeof *m);
    m->threads[m->count++] = 1; /* always: the single-core limits */
    for (int i = 0; i < count && m->count < BENCH_MAX_THREADS; i++)
        if (threads[i] != 1) m->threads[m->count++] = threads[i];
    m->gemm_n = gemm_n;
    m->triad_mib = triad_mib;
    if (verbose)
        fprintf(stderr, "measuring the machine: sgemm %d^3, triad 3 x %.0f MiB ...\n", gemm_n,
                triad_mib);
    measure_gemm(m);
    measure_triad(m);
    m->measured = true;
}

bool machine_limit(const machine_limits *m, int threads, double *gflops, double *gbps) {
    for (int i = 0; m->measured && i < m->count; i++)
        if (m->threads[i] == threads && m->gemm_gflops[i] > 0 && m->triad_gbps[i] > 0) {
            *gflops = m->gemm_gflops[i];
            *gbps = m->triad_gbps[i];
            return true;
        }
    return false;
}

/* ---- identification ------------------------------------------------------------------- */

const char *machine_cpu_model(void) {
    static char model[160] = "";
    if (model[0]) return model;
    snprintf(model, sizeof model, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon) continue;
        colon += 1 + strspn(colon + 1, " \t");
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(model, sizeof model, "%s", colon);
        break;
    }
    if (f) fclose(f);
    return model;
}

const char *machine_blas_core(void) {
#ifdef CONVBLAS_BENCH_OPENBLAS
    return openblas_get_corename();
#else
    return "(not OpenBLAS: see the build info)";
#endif
}

double machine_load_average(void) {
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &load) != 1) load = -1;
    if (f) fclose(f);
    return load;
}

static const char *const tuning_variables[] = {
    "OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",  "OMP_WAIT_POLICY",
    "GOMP_SPINCOUNT",    "CONVBLAS_NUM_THREADS", "DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA",
};

void machine_environment(char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof tuning_variables / sizeof tuning_variables[0]; i++) {
        const char *v = getenv(tuning_variables[i]);
        if (!v || used >= size) continue;
        int n =
            snprintf(buf + used, size - used, "%s%s=%s", used ? " " : "", tuning_variables[i], v);
        used += n > 0 ? (size_t)n : 0;
    }
    if (!buf[0]) snprintf(buf, size, "(none of the tuning variables set)");
}

int machine_online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > BENCH_MAX_THREADS ? BENCH_MAX_THREADS : (int)n;
}
