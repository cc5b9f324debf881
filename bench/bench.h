/* Declarations shared by the files of convblas-bench (not installed).
 *
 * The flow: a layer (spec.c from the command line, suite.c from a TSV file) -> its data
 * (data.c) -> for each thread count, every entry (forced strategies, the planner's picks,
 * the peers) checked and timed (run.c with timing.c) -> a row_result -> the table
 * (report.c), the regret summary (summary.c), the CSV (csv.c) and the plot (plot_svg.c).
 * machine.c measures the limits the roofline compares against. */
#ifndef CONVBLAS_BENCH_H
#define CONVBLAS_BENCH_H

#include "peer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { BENCH_MAX_DIMS = 8, BENCH_MAX_THREADS = 16 };

/* ---- spec.c: one layer, as the command line or a suite row gives it ------------------- */

typedef struct bench_layer {
    char name[64];
    char kind[16];    /* conv1d conv2d depthwise1d depthwise2d separable1d separable2d */
    char source[160]; /* suite's source column; "" from the command line */
    convblas_layer_desc desc;
    convblas_shape input;
    int64_t dims[BENCH_MAX_DIMS]; /* the input= dimensions, as given */
    int ndims;
    bool has_filters, has_kernel; /* required keys seen */
} bench_layer;

/* Starts a layer of this kind with the Keras defaults (use_bias true). 0 on success. */
int spec_begin(bench_layer *l, const char *kind, char *err, size_t err_size);
/* Sets one key (filters kernel strides dilation padding format groups multiplier
 * activation alpha bias input name). 0 on success, else a message in err. */
int spec_set(bench_layer *l, const char *key, const char *value, char *err, size_t err_size);
/* Checks the required keys, derives the input shape and validates through convblas. */
int spec_finish(bench_layer *l, char *err, size_t err_size);
/* "conv1d filters=384 kernel=3 ..." (whitespace-separated) -> layer. */
int spec_parse(const char *text, bench_layer *l, char *err, size_t err_size);
/* The canonical spec text of a layer, re-readable by spec_parse. */
void spec_format(const bench_layer *l, char *buf, size_t size);
/* The grammar, for --help. */
void spec_print_grammar(FILE *f);
const char *spec_activation_name(convblas_activation a);

/* ---- suite.c -------------------------------------------------------------------------- */

/* Reads a suite TSV (bench/bench-suite.tsv's format); rows: NULL for all, else a comma
 * list of names to keep (in the file's order). 0 on success. */
int suite_read(const char *path, const char *rows, bench_layer **layers, int *count, char *err,
               size_t err_size);

/* ---- data.c: deterministic data and the layer's arithmetic ---------------------------- */

typedef struct bench_data {
    convblas_shape output;
    int64_t in_elems, out_elems, kernel_elems, pointwise_elems, bias_elems;
    float *input, *kernel, *pointwise, *bias;
    void *input_block; /* what to free: input's block */
    double flops;      /* 2 per multiply-add of the mathematical convolution (both stages) */
    double bytes;      /* input + weights + bias + output, once each */
} bench_data;

/* place_in: the input's bytes past a 4 KiB page, or -1 where malloc puts it. */
int data_create(const bench_layer *l, bench_data *d, int place_in, char *err, size_t err_size);
/* bytes floats' worth of memory `place` bytes past a 4 KiB page (-1: malloc's choice);
 * *block is what to free. NULL if out of memory. */
float *data_alloc_placed(int64_t floats, int place, void **block);
/* --data: "normal" (the default), "denormal" (input and bias below FLT_MIN) or "underflow"
 * (input and kernel so small that their products underflow). 0 on success. */
int data_set_mode(const char *name);
const char *data_mode_name(void);
/* Frees the arrays; the shapes and figures stay. */
void data_free(bench_data *d);
/* The peers' view of the same layer and data. */
bench_case data_case(const bench_layer *l, const bench_data *d);

/* ---- timing.c ------------------------------------------------------------------------- */

typedef int (*bench_fn)(void *ctx); /* one run; 0 on success */

typedef struct timed {
    bench_fn fn;
    void *ctx;
    double *samples; /* seconds per run */
    int count, cap;
    double total, estimate;
    bool failed;
} timed;

double now_seconds(void);
/* Warms every item up, then runs them in interleaved chunks until each has run for at
 * least `budget` seconds and `min_reps` times. */
void time_interleaved(timed *items, int n, double budget, int min_reps);
void timed_free(timed *t);
/* Median, min and max of t's samples (sorts them). */
void timed_stats(timed *t, double *median, double *min, double *max);

/* ---- machine.c: the limits of this machine -------------------------------------------- */

typedef struct machine_limits {
    int count;
    int threads[BENCH_MAX_THREADS];
    double gemm_gflops[BENCH_MAX_THREADS]; /* sgemm, best of repeats */
    double triad_gbps[BENCH_MAX_THREADS];  /* STREAM-like triad, best of repeats */
    int gemm_n;
    double triad_mib; /* per array */
    bool measured;
} machine_limits;

void machine_measure(machine_limits *m, const int *threads, int count, int gemm_n, double triad_mib,
                     bool verbose);
/* The limits for a thread count; false when not measured. */
bool machine_limit(const machine_limits *m, int threads, double *gflops, double *gbps);
const char *machine_cpu_model(void);
const char *machine_blas_core(void); /* OpenBLAS's core name, or the BLAS's description */
int machine_online_cpus(void);
/* The 1-minute load average (-1 if unknown): a loaded machine gives noisy timings. */
double machine_load_average(void);
/* The environment variables that change BLAS, OpenMP or convblas behaviour, as set. */
void machine_environment(char *buf, size_t size);

/* ---- run.c: one layer at one thread count --------------------------------------------- */

typedef enum { ENTRY_STRATEGY, ENTRY_ESTIMATE, ENTRY_MEASURE, ENTRY_PEER } entry_kind;

typedef struct entry_result {
    entry_kind kind;
    char label[48];    /* strategy name, "ESTIMATE", "MEASURE", or the peer's name */
    char strategy[48]; /* the convblas strategy that ran; "" for peers */
    bool applicable;   /* false: "-" in the table, note says why */
    bool error;        /* failed for another reason than UNSUPPORTED */
    char note[320];
    int check;        /* 1 ok, 0 MISMATCH, -1 not checked (no reference) */
    double rel_error; /* max|y - ref| / max(1, max|ref|) */
    size_t workspace;
    int reps;
    double median, min, max;   /* seconds */
    double gflops, gbps, roof; /* roof: achieved / attainable, 0 when unknown */
    double rel_fastest;        /* median / fastest timed entry's median */
    double cb_over_peer;       /* peers: ESTIMATE plan median / this median */
    bool fastest, estimate_pick, measure_pick;
} entry_result;

typedef struct row_result {
    const bench_layer *layer;
    const bench_data *data;
    int threads;
    double peak_gflops, bw_gbps, attainable; /* 0 when limits unknown */
    bool compute_bound;
    entry_result *entries;
    int count;
    int fastest;                            /* fastest checked strategy entry, -1 if none */
    int estimate, measure;                  /* planner entries */
    double estimate_regret, measure_regret; /* 0 when unknown */
    int best_peer;                          /* -1 if no peer ran */
    double cb_over_best_peer;
} row_result;

typedef struct run_config {
    double budget;
    int min_reps;
    bool peers;
    bool describe;
    double tolerance;
    const char *reference; /* "im2col_gemm" */
    const machine_limits *limits;
    int place_in, place_out; /* bytes past a 4 KiB page; -1: where malloc puts them */
} run_config;

int run_row(const bench_layer *l, const bench_data *d, int threads, const run_config *cfg,
            row_result *r);
void row_free(row_result *r);
/* The peers compiled in: a NULL-terminated list. */
const bench_peer *const *run_peers(void);

/* ---- report.c / summary.c / csv.c / plot_svg.c --------------------------------------------- */

void report_header(FILE *f, const machine_limits *m, const run_config *cfg);
void report_row(FILE *f, const row_result *r, bool verbose);
void report_summary(FILE *f, const row_result *rows, int count);
int report_csv(const char *path, const row_result *rows, int count, const machine_limits *m,
               const run_config *cfg);
int plot_svg(const char *path, const row_result *rows, int count);
/* Human sizes and times ("1.23 ms", "4.0 MiB"). */
void format_seconds(double s, char *buf, size_t size);
void format_bytes(double b, char *buf, size_t size);

#endif
