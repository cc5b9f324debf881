/* The layer spec: "conv1d filters=384 kernel=3 strides=2 padding=same input=1x3000x384".
 * Parsed key by key, so that suite rows (suite.c) go through the same checks. */
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

static const struct {
    const char *name;
    convblas_op op;
    int rank;
} kinds[] = {
    {"conv1d", CONVBLAS_CONV, 1},           {"conv2d", CONVBLAS_CONV, 2},
    {"depthwise1d", CONVBLAS_DEPTHWISE, 1}, {"depthwise2d", CONVBLAS_DEPTHWISE, 2},
    {"separable1d", CONVBLAS_SEPARABLE, 1}, {"separable2d", CONVBLAS_SEPARABLE, 2},
};

static const char *const activations[] = {
    "linear", "relu", "relu6",    "sigmoid",      "tanh",       "gelu",
    "swish",  "elu",  "softplus", "hard_sigmoid", "hard_swish", "leaky_relu",
};
enum { ACTIVATION_COUNT = (int)(sizeof activations / sizeof activations[0]) };

static const char *const paddings[] = {"valid", "same", "causal"};
static const char *const formats[] = {"channels_last", "channels_first"};

const char *spec_activation_name(convblas_activation a) {
    return (int)a >= 0 && (int)a < ACTIVATION_COUNT ? activations[a] : "?";
}

int spec_begin(bench_layer *l, const char *kind, char *err, size_t n) {
    memset(l, 0, sizeof *l);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(kind, kinds[i].name) != 0) continue;
        snprintf(l->kind, sizeof l->kind, "%s", kind);
        snprintf(l->name, sizeof l->name, "%s", kind);
        l->desc.op = kinds[i].op;
        l->desc.rank = kinds[i].rank;
        l->desc.use_bias = true;
        return 0;
    }
    return fail(err, n,
                "unknown layer kind \"%s\" (conv1d conv2d depthwise1d depthwise2d "
                "separable1d separable2d)",
                kind);
}

static int parse_int(const char *key, const char *s, int64_t min, int64_t *v, char *err, size_t n) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end || x < min)
        return fail(err, n, "%s=%s: expected an integer >= %lld", key, s, (long long)min);
    *v = x;
    return 0;
}

/* "3x5" -> {3, 5}; returns the count, or -1. */
static int parse_dims(const char *key, const char *s, int64_t min, int64_t *dims, int max,
                      char *err, size_t n) {
    char buf[128];
    if (strlen(s) >= sizeof buf) return fail(err, n, "%s=%s: too long", key, s);
    snprintf(buf, sizeof buf, "%s", s);
    int count = 0;
    for (char *save = NULL, *tok = strtok_r(buf, "x", &save); tok;
         tok = strtok_r(NULL, "x", &save)) {
        if (count == max) return fail(err, n, "%s=%s: at most %d dimensions", key, s, max);
        if (parse_int(key, tok, min, &dims[count++], err, n)) return -1;
    }
    if (count == 0) return fail(err, n, "%s=: no value", key);
    return count;
}

/* kernel, strides, dilation: one number per spatial dimension, or one for all. */
static int set_spatial(bench_layer *l, const char *key, const char *value, int64_t *field,
                       char *err, size_t n) {
    int64_t dims[2];
    int count = parse_dims(key, value, 1, dims, 2, err, n);
    if (count < 0) return -1;
    if (count != 1 && count != l->desc.rank)
        return fail(err, n, "%s=%s: a %dD layer takes %d number%s", key, value, l->desc.rank,
                    l->desc.rank, l->desc.rank > 1 ? "s (or one for all)" : "");
    for (int i = 0; i < l->desc.rank; i++) field[i] = dims[count == 1 ? 0 : i];
    return 0;
}

static int lookup(const char *key, const char *value, const char *const *names, int count,
                  int *index, char *err, size_t n) {
    for (int i = 0; i < count; i++)
        if (strcmp(value, names[i]) == 0) {
            *index = i;
            return 0;
        }
    char list[256] = "";
    for (int i = 0; i < count; i++) {
        strncat(list, " ", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    return fail(err, n, "%s=%s: expected one of%s", key, value, list);
}

static int set_activation(bench_layer *l, const char *value, char *err, size_t n) {
    int i = 0;
    if (strcmp(value, "silu") == 0) value = "swish";
    if (lookup("activation", value, activations, ACTIVATION_COUNT, &i, err, n)) return -1;
    l->desc.activation = (convblas_activation)i;
    return 0;
}

static int set_alpha(bench_layer *l, const char *value, char *err, size_t n) {
    char *end;
    errno = 0;
    double a = strtod(value, &end);
    if (errno || end == value || *end || a < 0)
        return fail(err, n, "alpha=%s: expected a number >= 0", value);
    l->desc.activation_alpha = (float)a;
    return 0;
}

/* groups only for conv, filters not for depthwise, multiplier not for conv (1 is
 * tolerated where it does not apply: suite rows spell the default out). */
static int check_applies(const bench_layer *l, const char *key, int64_t v, char *err, size_t n) {
    convblas_op op = l->desc.op;
    bool bad = (strcmp(key, "filters") == 0 && op == CONVBLAS_DEPTHWISE) ||
               (strcmp(key, "groups") == 0 && op != CONVBLAS_CONV && v != 1) ||
               (strcmp(key, "multiplier") == 0 && op == CONVBLAS_CONV && v != 1);
    return bad ? fail(err, n, "%s does not apply to %s", key, l->kind) : 0;
}

static int set_integer(bench_layer *l, const char *key, const char *value, char *err, size_t n) {
    int64_t v = 0;
    if (strcmp(key, "bias") == 0) {
        if (strcmp(value, "0") && strcmp(value, "1"))
            return fail(err, n, "bias=%s: expected 0 or 1", value);
        l->desc.use_bias = value[0] == '1';
        return 0;
    }
    if (parse_int(key, value, 1, &v, err, n) || check_applies(l, key, v, err, n)) return -1;
    if (strcmp(key, "filters") == 0) {
        l->desc.filters = v;
        l->has_filters = true;
    } else if (strcmp(key, "groups") == 0) {
        l->desc.groups = v;
    } else {
        l->desc.depth_multiplier = v;
    }
    return 0;
}

static int set_enum(bench_layer *l, const char *key, const char *value, char *err, size_t n) {
    int i = 0;
    if (strcmp(key, "padding") == 0) {
        if (lookup(key, value, paddings, 3, &i, err, n)) return -1;
        l->desc.padding = (convblas_padding)i;
    } else {
        if (lookup(key, value, formats, 2, &i, err, n)) return -1;
        l->desc.data_format = (convblas_data_format)i;
    }
    return 0;
}

int spec_set(bench_layer *l, const char *key, const char *value, char *err, size_t n) {
    if (!strcmp(key, "filters") || !strcmp(key, "groups") || !strcmp(key, "multiplier") ||
        !strcmp(key, "bias"))
        return set_integer(l, key, value, err, n);
    if (!strcmp(key, "kernel")) {
        l->has_kernel = true;
        return set_spatial(l, key, value, l->desc.kernel_size, err, n);
    }
    if (!strcmp(key, "strides")) return set_spatial(l, key, value, l->desc.strides, err, n);
    if (!strcmp(key, "dilation")) return set_spatial(l, key, value, l->desc.dilation_rate, err, n);
    if (!strcmp(key, "padding") || !strcmp(key, "format")) return set_enum(l, key, value, err, n);
    if (!strcmp(key, "activation")) return set_activation(l, value, err, n);
    if (!strcmp(key, "alpha")) return set_alpha(l, value, err, n);
    if (!strcmp(key, "name")) {
        if (!*value || strlen(value) >= sizeof l->name)
            return fail(err, n, "name=%s: 1 to %zu characters", value, sizeof l->name - 1);
        snprintf(l->name, sizeof l->name, "%s", value);
        return 0;
    }
    if (!strcmp(key, "input")) {
        l->ndims = parse_dims(key, value, 0, l->dims, BENCH_MAX_DIMS, err, n);
        return l->ndims < 0 ? -1 : 0;
    }
    return fail(err, n,
                "unknown key \"%s\" (filters kernel strides dilation padding format "
                "groups multiplier activation alpha bias input name)",
                key);
}

/* input= in the format's order: leading dimensions multiply into batch. */
static int derive_input(bench_layer *l, char *err, size_t n) {
    int rank = l->desc.rank, lead = l->ndims - rank - 1;
    if (l->ndims == 0) return fail(err, n, "input= is required (e.g. input=1x3000x80)");
    if (lead < 1)
        return fail(err, n, "input= of a %dD layer needs at least %d dimensions (batch, %s)", rank,
                    rank + 2,
                    l->desc.data_format == CONVBLAS_CHANNELS_LAST ? "spatial..., channels"
                                                                  : "channels, spatial...");
    convblas_shape *s = &l->input;
    s->batch = 1;
    for (int i = 0; i < lead; i++) s->batch *= l->dims[i];
    bool last = l->desc.data_format == CONVBLAS_CHANNELS_LAST;
    s->channels = last ? l->dims[l->ndims - 1] : l->dims[lead];
    for (int i = 0; i < rank; i++) s->spatial[i] = l->dims[lead + (last ? 0 : 1) + i];
    return 0;
}

int spec_finish(bench_layer *l, char *err, size_t n) {
    if (!l->has_kernel) return fail(err, n, "%s: kernel= is required", l->name);
    if (l->desc.op != CONVBLAS_DEPTHWISE && !l->has_filters)
        return fail(err, n, "%s: filters= is required for %s", l->name, l->kind);
    if (derive_input(l, err, n)) return -1;
    convblas_shape out;
    convblas_status st = convblas_output_shape(&l->desc, &l->input, &out);
    if (st != CONVBLAS_OK)
        return fail(err, n, "%s: %s (%s)", l->name, convblas_last_error(),
                    convblas_status_name(st));
    return 0;
}

int spec_parse(const char *text, bench_layer *l, char *err, size_t n) {
    char buf[1024];
    if (strlen(text) >= sizeof buf) return fail(err, n, "layer spec too long");
    snprintf(buf, sizeof buf, "%s", text);
    char *save = NULL, *tok = strtok_r(buf, " \t\n", &save);
    if (!tok) return fail(err, n, "empty layer spec");
    if (spec_begin(l, tok, err, n)) return -1;
    while ((tok = strtok_r(NULL, " \t\n", &save))) {
        char *eq = strchr(tok, '=');
        if (!eq) return fail(err, n, "\"%s\": expected key=value", tok);
        *eq = '\0';
        if (spec_set(l, tok, eq + 1, err, n)) return -1;
    }
    return spec_finish(l, err, n);
}

typedef enum { DIMS_AS_GIVEN, DIMS_SPATIAL, DIMS_SPATIAL_DEFAULT_1 } dims_mode;

/* " key=AxB"; in spatial fields 0 means 1, and strides and dilation are left out when all
 * 1, their default. */
static int put_dims(char *buf, size_t size, const char *key, const int64_t *v, int count,
                    dims_mode mode) {
    bool zero_is_one = mode != DIMS_AS_GIVEN, all_one = mode == DIMS_SPATIAL_DEFAULT_1;
    for (int i = 0; i < count; i++) all_one = all_one && v[i] <= 1;
    if (all_one) return 0;
    int used = snprintf(buf, size, " %s=", key);
    for (int i = 0; i < count && used >= 0 && (size_t)used < size; i++)
        used += snprintf(buf + used, size - (size_t)used, "%s%lld", i ? "x" : "",
                         (long long)(zero_is_one && v[i] == 0 ? 1 : v[i]));
    return used;
}

static void append(size_t size, size_t *used, int n) {
    *used += n > 0 ? (size_t)n : 0;
    if (*used > size) *used = size;
}

void spec_format(const bench_layer *l, char *buf, size_t size) {
    const convblas_layer_desc *d = &l->desc;
    size_t used = 0;
    int rank = d->rank;
    append(size, &used, snprintf(buf, size, "%s", l->kind));
    if (d->op != CONVBLAS_DEPTHWISE)
        append(size, &used,
               snprintf(buf + used, size - used, " filters=%lld", (long long)d->filters));
    append(size, &used,
           put_dims(buf + used, size - used, "kernel", d->kernel_size, rank, DIMS_SPATIAL));
    append(size, &used,
           put_dims(buf + used, size - used, "strides", d->strides, rank, DIMS_SPATIAL_DEFAULT_1));
    append(size, &used,
           put_dims(buf + used, size - used, "dilation", d->dilation_rate, rank,
                    DIMS_SPATIAL_DEFAULT_1));
    append(size, &used,
           snprintf(buf + used, size - used, " padding=%s format=%s", paddings[d->padding],
                    formats[d->data_format]));
    if (d->op == CONVBLAS_CONV && d->groups > 1)
        append(size, &used,
               snprintf(buf + used, size - used, " groups=%lld", (long long)d->groups));
    if (d->op != CONVBLAS_CONV && d->depth_multiplier > 1)
        append(
            size, &used,
            snprintf(buf + used, size - used, " multiplier=%lld", (long long)d->depth_multiplier));
    append(
        size, &used,
        snprintf(buf + used, size - used, " activation=%s", spec_activation_name(d->activation)));
    if (d->activation_alpha > 0)
        append(size, &used,
               snprintf(buf + used, size - used, " alpha=%g", (double)d->activation_alpha));
    append(size, &used, snprintf(buf + used, size - used, " bias=%d", d->use_bias));
    append(size, &used,
           put_dims(buf + used, size - used, "input", l->dims, l->ndims, DIMS_AS_GIVEN));
}

void spec_print_grammar(FILE *f) {
    fputs("Layer spec:  KIND KEY=VALUE ...   (as separate arguments or one quoted string)\n"
          "  KIND        conv1d conv2d depthwise1d depthwise2d separable1d separable2d\n"
          "  filters=N   output channels (conv*, separable*: required)\n"
          "  kernel=K    kernel size (required); 2D: KxK, or one number for both\n"
          "  strides=S   default 1; 2D: SxS or one number\n"
          "  dilation=D  default 1; 2D: DxD or one number (strides and dilation > 1 together\n"
          "              are accepted, beyond Keras)\n"
          "  padding=P   valid (default) same causal (causal: 1D only)\n"
          "  format=F    channels_last (default) channels_first\n"
          "  groups=G    conv* only, default 1\n"
          "  multiplier=M  depth_multiplier of depthwise*/separable*, default 1\n"
          "  activation=A  linear (default) relu relu6 sigmoid tanh gelu swish (silu) elu\n"
          "              softplus hard_sigmoid hard_swish leaky_relu\n"
          "  alpha=X     activation_alpha for elu and leaky_relu (default: Keras's)\n"
          "  bias=0|1    use_bias, default 1 (as in Keras)\n"
          "  input=DIMS  the input tensor's shape in the format's order, joined by 'x':\n"
          "              channels_last  BATCHxLxC   or BATCHxHxWxC\n"
          "              channels_first BATCHxCxL   or BATCHxCxHxW\n"
          "              more leading dimensions multiply into the batch (Keras's extended\n"
          "              batch shape: input=4x7x10x128 on conv1d is batch 28)\n"
          "  name=TEXT   label in the table (default: the kind)\n"
          "Example: conv1d filters=384 kernel=3 strides=2 padding=same input=1x3000x384 "
          "activation=gelu\n",
          f);
}
