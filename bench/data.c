/* A layer's data: input uniform in [-1, 1), weights Glorot-uniform as Keras initializes
 * them (so outputs stay near unit scale), bias small; from a PRNG seeded by the layer's
 * name, so a row gets the same data however the suite is filtered; --data scales it into
 * the denormal range. Also the layer's arithmetic: flops and the bytes that must move at
 * least. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t seed_of(const char *name) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

/* Uniform in [-limit, limit). */
static void fill(float *x, int64_t n, float limit, uint64_t *state) {
    for (int64_t i = 0; i < n; i++) {
        float u = (float)(splitmix64(state) >> 40) * (1.0f / 16777216.0f);
        x[i] = (2.0f * u - 1.0f) * limit;
    }
}

static float glorot(double fan_in, double fan_out) {
    return (float)sqrt(6.0 / (fan_in + fan_out));
}

static int64_t spatial_product(const int64_t *v, int rank) {
    return rank == 2 ? v[0] * v[1] : v[0];
}

/* Element counts, flops and bytes. */
static void arithmetic(const bench_layer *l, bench_data *d) {
    const convblas_layer_desc *ds = &l->desc;
    int64_t c = l->input.channels, taps = spatial_product(ds->kernel_size, ds->rank);
    int64_t mult = ds->depth_multiplier ? ds->depth_multiplier : 1;
    int64_t groups = ds->groups ? ds->groups : 1;
    double positions =
        (double)d->output.batch * (double)spatial_product(d->output.spatial, ds->rank);
    d->in_elems = l->input.batch * spatial_product(l->input.spatial, ds->rank) * c;
    d->out_elems = (int64_t)positions * d->output.channels;
    d->bias_elems = ds->use_bias ? d->output.channels : 0;
    d->pointwise_elems = 0;
    if (ds->op == CONVBLAS_CONV) {
        d->kernel_elems = taps * (c / groups) * ds->filters;
        d->flops = 2.0 * positions * (double)ds->filters * (double)taps * (double)(c / groups);
    } else {
        d->kernel_elems = taps * c * mult;
        d->flops = 2.0 * positions * (double)(c * mult) * (double)taps;
        if (ds->op == CONVBLAS_SEPARABLE) {
            d->pointwise_elems = c * mult * ds->filters;
            d->flops += 2.0 * positions * (double)(c * mult) * (double)ds->filters;
        }
    }
    d->bytes = 4.0 * (double)(d->in_elems + d->kernel_elems + d->pointwise_elems + d->bias_elems +
                              d->out_elems);
}

static float *alloc_floats(int64_t n) {
    return malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
}

float *data_alloc_placed(int64_t floats, int place, void **block) {
    size_t bytes = (size_t)(floats > 0 ? floats : 1) * sizeof(float);
    if (place < 0) return *block = malloc(bytes);
    size_t page = 4096, size = (bytes + (size_t)place + page - 1) / page * page;
    *block = aligned_alloc(page, size);
    return *block ? (float *)((char *)*block + place) : NULL;
}

static void fill_weights(const bench_layer *l, bench_data *d, uint64_t *state) {
    const convblas_layer_desc *ds = &l->desc;
    int64_t taps = spatial_product(ds->kernel_size, ds->rank), c = l->input.channels;
    int64_t groups = ds->groups ? ds->groups : 1, mult = ds->depth_multiplier;
    if (ds->op == CONVBLAS_CONV)
        fill(d->kernel, d->kernel_elems,
             glorot((double)(taps * (c / groups)), (double)(taps * ds->filters)), state);
    else
        fill(d->kernel, d->kernel_elems, glorot((double)taps, (double)(taps * (mult ? mult : 1))),
             state);
    if (d->pointwise_elems)
        fill(d->pointwise, d->pointwise_elems,
             glorot((double)(d->pointwise_elems / ds->filters), (double)ds->filters), state);
    if (d->bias_elems) fill(d->bias, d->bias_elems, 0.1f, state);
}

/* ---- data modes: the same values scaled by powers of two, to time denormal arithmetic ---- */

typedef enum { MODE_NORMAL, MODE_DENORMAL, MODE_UNDERFLOW } data_mode;

static const char *const mode_names[] = {"normal", "denormal", "underflow"};
static data_mode mode = MODE_NORMAL;

int data_set_mode(const char *name) {
    for (int m = 0; m < (int)(sizeof mode_names / sizeof mode_names[0]); m++)
        if (strcmp(name, mode_names[m]) == 0) {
            mode = (data_mode)m;
            return 0;
        }
    return -1;
}

const char *data_mode_name(void) {
    return mode_names[mode];
}

static void scale(float *x, int64_t n, int exponent) {
    for (int64_t i = 0; x && i < n; i++) x[i] = ldexpf(x[i], exponent);
}

/* denormal: input and bias below FLT_MIN (2^-126), so every product of the first stage has
 * a denormal operand and a denormal result, and so has the pointwise stage. underflow:
 * input and kernel normal but so small (2^-66 each) that their products underflow into
 * denormals or to zero. */
static void apply_mode(bench_data *d) {
    if (mode == MODE_DENORMAL) {
        scale(d->input, d->in_elems, -130);
        scale(d->bias, d->bias_elems, -130);
    } else if (mode == MODE_UNDERFLOW) {
        scale(d->input, d->in_elems, -66);
        scale(d->kernel, d->kernel_elems, -66);
        scale(d->bias, d->bias_elems, -132);
    }
}

int data_create(const bench_layer *l, bench_data *d, int place_in, char *err, size_t n) {
    memset(d, 0, sizeof *d);
    convblas_status st = convblas_output_shape(&l->desc, &l->input, &d->output);
    if (st != CONVBLAS_OK) {
        snprintf(err, n, "%s: %s", l->name, convblas_last_error());
        return -1;
    }
    arithmetic(l, d);
    d->input = data_alloc_placed(d->in_elems, place_in, &d->input_block);
    d->kernel = alloc_floats(d->kernel_elems);
    d->pointwise = d->pointwise_elems ? alloc_floats(d->pointwise_elems) : NULL;
    d->bias = d->bias_elems ? alloc_floats(d->bias_elems) : NULL;
    if (!d->input || !d->kernel || (d->pointwise_elems && !d->pointwise) ||
        (d->bias_elems && !d->bias)) {
        data_free(d);
        snprintf(err, n, "%s: out of memory for the layer's data", l->name);
        return -1;
    }
    uint64_t state = seed_of(l->name);
    fill(d->input, d->in_elems, 1.0f, &state);
    fill_weights(l, d, &state);
    apply_mode(d);
    return 0;
}

void data_free(bench_data *d) {
    free(d->input_block);
    d->input_block = NULL;
    free(d->kernel);
    free(d->pointwise);
    free(d->bias);
    d->input = d->kernel = d->pointwise = d->bias = NULL; /* the figures stay */
}

bench_case data_case(const bench_layer *l, const bench_data *d) {
    return (bench_case){
        .name = l->name,
        .desc = l->desc,
        .input = l->input,
        .output = d->output,
        .input_data = d->input,
        .kernel = d->kernel,
        .pointwise_kernel = d->pointwise,
        .bias = d->bias,
    };
}
