/* Accuracy of every activation, element by element, against the double reference: a 1x1
 * layer with one channel per group and unit weights passes each input through unchanged
 * (no 0 * Inf from other channels), so the output is exactly the library's activation of
 * (input + bias) rounded to float. Inputs:
 * random floats of every binade from 2^-30 to 2^8, both signs, plus the special points
 * (zeros, denormals, the edges of exp's range, each formula's switch-over points, Inf,
 * NaN). Both data formats, so both epilogue loops (a bias vector per row, one bias per
 * channel) and their partial last vectors run.
 *
 * The bound is in units in the last place of the float result (for results below
 * FLT_MIN, of the smallest normal's ulp): what the vector code reaches, with margin, so a
 * coarser approximation or a tail that loses its relative accuracy fails.
 *
 *   test_activations [--verbose]   (--verbose prints each activation's worst case)
 */
#include "test_util.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { CH = 37 }; /* channels: two vectors and a partial one per channels_last row */

static const char *const names[] = {"linear",   "relu",         "relu6",      "sigmoid",
                                    "tanh",     "gelu",         "swish",      "elu",
                                    "softplus", "hard_sigmoid", "hard_swish", "leaky_relu"};

/* Worst error allowed, ulp of the result. The piecewise-linear ones are exact but for the
 * rounding of their one or two operations. */
static double bound(convblas_activation a) {
    switch (a) {
    case CONVBLAS_LINEAR:
    case CONVBLAS_RELU:
    case CONVBLAS_RELU6:
        return 0.5;
    case CONVBLAS_LEAKY_RELU: /* the default slope is the float nearest 0.2 */
        return 1;
    case CONVBLAS_HARD_SIGMOID:
    case CONVBLAS_HARD_SWISH:
        return 2;
    default:
        return 8;
    }
}

static bool verbose;

/* The test inputs: n values (n a multiple of CH). */
static float *make_inputs(size_t *count) {
    static const float specials[] = {
        0.0f,     -0.0f,      FLT_MIN,     -FLT_MIN, 1e-40f,    -1e-40f, FLT_TRUE_MIN, 0.625f,
        -0.625f,  0.6249999f, -0.6250001f, 88.7f,    89.0f,     -87.3f,  -88.0f,       -103.9f,
        -104.1f,  18.38f,     -18.38f,     -14.0f,   -14.1421f, -15.0f,  -20.0f,       6.0f,
        -3.0f,    3.0f,       2.5f,        -2.5f,    1.0f,      -1.0f,   FLT_MAX,      -FLT_MAX,
        INFINITY, -INFINITY,  NAN,         0.25f,    -0.25f,    1e-8f,   -1e-8f,       5.0f,
        -5.0f,    10.0f,      -10.0f,      30.0f,    -30.0f,    100.0f,  -100.0f,      300.0f};
    size_t nspecial = sizeof specials / sizeof specials[0];
    size_t per_binade = 300, binades = 39; /* 2^-30 .. 2^8 */
    size_t n = nspecial + 2 * per_binade * binades;
    n = (n + CH - 1) / CH * CH;
    float *x = malloc(n * sizeof *x);
    if (!x) return NULL;
    tu_rng rng;
    tu_rng_seed(&rng, 20261121);
    size_t i = 0;
    for (; i < nspecial; i++) x[i] = specials[i];
    for (size_t b = 0; b < binades; b++)
        for (size_t k = 0; k < 2 * per_binade; k++)
            x[i++] = (k % 2 ? -1.0f : 1.0f) * ldexpf(1.0f + (float)tu_rng_unit(&rng), (int)b - 30);
    for (; i < n; i++) x[i] = (float)(tu_rng_unit(&rng) * 20.0 - 10.0);
    *count = n;
    return x;
}

/* |y - r| in ulps of r as a float; -1 when their classes (NaN, +-Inf, finite) differ. */
static double ulp_error(float y, double r) {
    if (isnan(r) || isnan(y)) return isnan(r) && isnan(y) ? 0 : -1;
    if (isinf(r) || isinf(y)) {
        if (y == r) return 0;
        /* a result that rounds to FLT_MAX or inf, either is right */
        return fabs(r) >= FLT_MAX && fabs((double)y) >= FLT_MAX ? 0 : -1;
    }
    int e;
    frexp(fmax(fabs(r), FLT_MIN), &e);
    return fabs((double)y - r) / ldexp(1.0, e - 24);
}

/* One activation in one format, with or without bias. */
static void run(convblas_activation a, convblas_data_format f, bool with_bias, const float *x,
                size_t n) {
    int64_t positions = (int64_t)(n / CH);
    convblas_layer_desc d = {.op = CONVBLAS_CONV,
                             .rank = 1,
                             .filters = CH,
                             .kernel_size = {1},
                             .groups = CH,
                             .data_format = f,
                             .activation = a,
                             .activation_alpha = a == CONVBLAS_ELU ? 0.7f : 0.0f,
                             .use_bias = with_bias};
    convblas_shape in = {.batch = 1, .spatial = {positions}, .channels = CH};
    float *kernel = malloc(CH * sizeof *kernel), *bias = malloc(CH * sizeof *bias);
    float *y = malloc(n * sizeof *y);
    CHECK(kernel && bias && y);
    if (!kernel || !bias || !y) goto done;
    for (int c = 0; c < CH; c++) {
        kernel[c] = 1.0f;
        bias[c] = with_bias ? (float)(c % 5) * 0.375f - 0.75f : 0.0f;
    }
    convblas_plan *plan = NULL;
    convblas_plan_options o = {.mode = CONVBLAS_ESTIMATE, .threads = 1};
    convblas_status st = convblas_plan_create(&plan, &d, &in, &o);
    CHECKF(st == CONVBLAS_OK, "%s", convblas_last_error());
    if (st != CONVBLAS_OK) goto done;
    convblas_weights w = {.kernel = kernel, .bias = with_bias ? bias : NULL};
    st = convblas_execute(plan, x, &w, y, NULL);
    CHECKF(st == CONVBLAS_OK, "%s", convblas_last_error());
    convblas_plan_destroy(plan);
    if (st != CONVBLAS_OK) goto done;

    double worst = 0, alpha = d.activation_alpha;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        size_t c = f == CONVBLAS_CHANNELS_LAST ? i % CH : i / (size_t)positions;
        float pre = x[i] + bias[c]; /* the float sum the library activates */
        double e = ulp_error(y[i], ref_activation(a, alpha, (double)pre));
        if (e < 0 || e > worst) {
            wi = i;
            worst = e < 0 ? INFINITY : e;
        }
    }
    size_t c = f == CONVBLAS_CHANNELS_LAST ? wi % CH : wi / (size_t)positions;
    float pre = x[wi] + bias[c];
    CHECKF(worst <= bound(a), "%s (%s%s): %.3g ulp at x = %.9g: %.9g, reference %.9g", names[a],
           f == CONVBLAS_CHANNELS_LAST ? "channels_last" : "channels_first",
           with_bias ? ", bias" : "", worst, (double)pre, (double)y[wi],
           ref_activation(a, alpha, (double)pre));
    if (verbose && !with_bias && f == CONVBLAS_CHANNELS_LAST)
        printf("  %-12s worst %6.3f ulp (bound %g) at x = %.9g\n", names[a], worst, bound(a),
               (double)pre);
done:
    free(kernel);
    free(bias);
    free(y);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--verbose")) {
            verbose = true;
        } else {
            fprintf(stderr, "usage: %s [--verbose]\n", argv[0]);
            return 2;
        }
    }
    size_t n;
    float *x = make_inputs(&n);
    CHECK(x != NULL);
    if (!x) return tu_finish("activations");
    for (int a = 0; a <= (int)CONVBLAS_LEAKY_RELU; a++)
        for (int f = 0; f < 2; f++)
            for (int b = 0; b < 2; b++)
                run((convblas_activation)a, f ? CONVBLAS_CHANNELS_FIRST : CONVBLAS_CHANNELS_LAST, b,
                    x, n);
    free(x);
    return tu_finish("activations");
}
