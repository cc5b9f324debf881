/* Shared test helpers: a CHECK macro that works in release builds, a seeded PRNG, guarded
 * output buffers, the error measure, a printer for a failing case, and a harness that runs
 * one layer through one plan (planner's pick or a forced strategy) against the reference. */
#ifndef CONVBLAS_TEST_UTIL_H
#define CONVBLAS_TEST_UTIL_H

#include "convblas.h"
#include "reference.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- checks (not assert: release builds define NDEBUG) ---- */

extern long tu_failures; /* failed CHECKs so far */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            tu_failures++;                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

/* CHECK with a printf-style explanation. */
#define CHECKF(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            tu_failures++;                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* Prints a one-line verdict and returns the process exit status (0 when no CHECK failed). */
int tu_finish(const char *test_name);

/* ---- deterministic PRNG (splitmix64) ---- */

typedef struct tu_rng {
    uint64_t state;
} tu_rng;

void tu_rng_seed(tu_rng *r, uint64_t seed);
uint64_t tu_rng_next(tu_rng *r);
int64_t tu_rng_int(tu_rng *r, int64_t lo, int64_t hi); /* uniform in [lo, hi] */
double tu_rng_unit(tu_rng *r);                         /* uniform in [0, 1) */
bool tu_rng_chance(tu_rng *r, double p);               /* true with probability p */
void tu_fill(tu_rng *r, float *p, size_t n, float lo, float hi);

/* ---- guarded buffers ---- */

/* floats of guard before and after every guarded buffer */
#define TU_GUARD 64

/* n floats (n may be 0) with TU_GUARD floats before and after; every float, guards and
 * body, holds the sentinel (a quiet NaN with a payload), so an element the library forgets
 * to write shows up as NaN and a write past either end shows up in the guards. NULL when out
 * of memory. */
float *tu_guarded_alloc(size_t n);
bool tu_guards_intact(const float *data, size_t n); /* guards still hold the sentinel */
void tu_guarded_free(float *data);

/* ---- comparison ---- */

/* max|y - ref| / max(1, max|ref|); +INFINITY if any y is NaN or infinite where ref is
 * finite. *worst (if not NULL) gets the index of the largest difference. */
double tu_rel_error(const float *y, const float *ref, size_t n, size_t *worst);

#define TU_TOLERANCE 1e-4

/* The index of strategy `name` in the library's table, or -1 where it is not compiled in. */
int tu_strategy_index(const char *name);

/* Multiply-adds of the reference convolution (stage 1 of the layer: kernel x channels per
 * group x filters per output position). */
double tu_conv_macs(const convblas_layer_desc *d, const convblas_shape *in);

/* A uniformly chosen element of array a. */
#define TU_PICK(r, a) (a)[tu_rng_int(r, 0, (int64_t)(sizeof(a) / sizeof((a)[0])) - 1)]

/* Whether strategy `name` is compiled in but cannot run on this CPU or build at all (a
 * kernel for AVX-512 alone, under valgrind or in a build without target attributes): a
 * plain Conv1D forced to it is refused for the CPU. Tests that expect every strategy to
 * have run somewhere leave such a one out. */
bool tu_strategy_missing_cpu(const char *name);

/* ---- printing ---- */

const char *tu_op_name(convblas_op op);
const char *tu_padding_name(convblas_padding p);
const char *tu_format_name(convblas_data_format f);
const char *tu_activation_name(convblas_activation a);
const char *tu_status_str(convblas_status s);

/* The descriptor and input shape as a C initializer, so a failing case can be pasted into a
 * test; every field is printed, including those the op ignores. */
void tu_print_case(FILE *out, const convblas_layer_desc *d, const convblas_shape *in);
void tu_print_shape(FILE *out, const char *label, const convblas_shape *s, int rank);

/* ---- running a layer against the reference ---- */

/* A layer's random data and the reference output for it. */
typedef struct tu_data {
    ref_sizes sz;
    float *x, *kernel, *pointwise, *bias; /* never NULL (at least one element each) */
    float *x_copy, *kernel_copy, *pointwise_copy, *bias_copy; /* to check nothing wrote them */
    float *ref;
    convblas_weights w;
} tu_data;

/* Allocates and fills (uniform [-1, 1] from rng) input and weights, and runs the reference.
 * Returns the reference's status; on anything but CONVBLAS_OK nothing is allocated. */
convblas_status tu_data_make(tu_data *t, const convblas_layer_desc *d, const convblas_shape *in,
                             tu_rng *rng);
void tu_data_free(tu_data *t);

typedef struct tu_run_opts {
    const char *strategy; /* NULL: the planner's choice */
    int threads;          /* options.threads */
    bool own_workspace;   /* pass a malloc'd workspace (filled with garbage) instead of NULL */
    size_t workspace_limit;
    convblas_planner_mode mode;
    float *out_copy;         /* if not NULL, receives sz.output floats of the library's output */
    bool may_be_unsupported; /* the planner may answer UNSUPPORTED too (a tight limit) */
} tu_run_opts;

typedef enum { TU_RUN_OK, TU_RUN_UNSUPPORTED, TU_RUN_FAIL } tu_run_result;

/* Plans and executes d on in with t's data and checks, against the reference: the plan
 * (forced strategy honoured, workspace within the limit), the output shape, every output
 * element within TU_TOLERANCE, the guards around the output, the inputs and weights left
 * unchanged. A forced strategy may answer CONVBLAS_UNSUPPORTED (TU_RUN_UNSUPPORTED); the
 * planner's choice may not, unless may_be_unsupported. On a failure prints the case and counts it
 * in tu_failures. *err (if not NULL) gets the relative error. */
tu_run_result tu_run(const convblas_layer_desc *d, const convblas_shape *in, const tu_data *t,
                     const tu_run_opts *o, double *err);

/* Per-strategy counts over many runs; index convblas_strategy_count() is the planner. */
#define TU_MAX_STRATEGIES 32
typedef struct tu_stats {
    long executed[TU_MAX_STRATEGIES + 1];
    long unsupported[TU_MAX_STRATEGIES + 1];
    long failed[TU_MAX_STRATEGIES + 1];
    double max_err;
} tu_stats;

/* Runs the case with the planner's choice and then with every strategy forced, with the
 * given threads and workspace choice; counts into st (may be NULL). Returns the number of
 * failed runs. */
int tu_run_all(const convblas_layer_desc *d, const convblas_shape *in, const tu_data *t,
               int threads, bool own_workspace, tu_stats *st);

/* tu_data_make + tu_run_all + tu_data_free, with data from seed. Checks that the reference
 * accepts the case. Returns the number of failed runs. */
int tu_check_layer(const convblas_layer_desc *d, const convblas_shape *in, uint64_t seed,
                   int threads, tu_stats *st);

/* Counts one run's result (and its error) in slot `slot` of st. */
void tu_tally(tu_stats *st, int slot, tu_run_result res, double err);

void tu_print_stats(FILE *out, const char *label, const tu_stats *st);

#endif
