/* fuzz_plan: arbitrary bytes as a layer descriptor, an input shape, plan options and the
 * environment, through every entry point that takes no tensor: convblas_output_shape,
 * convblas_plan_create, _describe, _workspace_size, _strategy and _destroy. A broken rule
 * of the API contract (include/convblas.h, design.md section 3) aborts with the case.
 *
 * MEASURE planning executes the layer, so it is asked for only on small layers; any other
 * MEASURE request is turned into ESTIMATE, and thread counts over 4 are only ever planned,
 * never run. */
#include "convblas.h"
#include "fuzz_bytes.h"
#include "reference.h"
#include "test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct plan_case {
    convblas_layer_desc desc;
    convblas_shape in;
    convblas_plan_options opts;
    bool null_desc, null_input, null_output, null_plan, null_options;
    const char *env_threads, *env_strategy; /* NULL: unset */
    char name[24];                          /* a strategy name spelled by the bytes */
    uint8_t describe_size;
} plan_case;

/* CONVBLAS_NUM_THREADS values whose validity is plain (1..4096), NULL for unset. */
static const char *const env_threads_table[] = {
    NULL, NULL, NULL,  NULL,   NULL, NULL, "1",  "3",
    "0",  "-3", "abc", "4097", "2x", NULL, NULL, "99999999999999999999"};
static const char *const junk_names[] = {"",        "IM2COL_GEMM", "im2col_gemm ", "im2col",
                                         "gemm",    "tap_gemm\n",  "depthwise",    "_",
                                         "planner", " tap_gemm"};

static void print_case(const plan_case *c) {
    tu_print_case(stderr, &c->desc, &c->in);
    const char *s = c->opts.strategy;
    fprintf(stderr,
            "  convblas_plan_options opts = {.mode = %d, .strategy = %s%s%s, .threads = %d,"
            " .workspace_limit = %zu};\n",
            (int)c->opts.mode, s ? "\"" : "", s ? s : "NULL", s ? "\"" : "", c->opts.threads,
            c->opts.workspace_limit);
    fprintf(stderr,
            "  NULL: desc %d, input %d, output %d, plan %d, options %d; "
            "CONVBLAS_NUM_THREADS=%s CONVBLAS_STRATEGY=%s\n",
            c->null_desc, c->null_input, c->null_output, c->null_plan, c->null_options,
            c->env_threads ? c->env_threads : "(unset)",
            c->env_strategy ? c->env_strategy : "(unset)");
}

static const plan_case *current;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_plan: contract broken: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  last error: \"%s\"\n", convblas_last_error());
    print_case(current);
    abort();
}

static const char *decode_strategy(fz_bytes *b, char *name, size_t size) {
    int count = convblas_strategy_count();
    uint8_t t = fz_u8(b);
    if (t < count) return convblas_strategy_name(t);
    if (t < 0xB0) return NULL;
    if (t < 0xF0) return junk_names[t % (sizeof junk_names / sizeof junk_names[0])];
    size_t n = fz_u8(b) % size;
    for (size_t i = 0; i < n; i++) name[i] = (char)fz_u8(b);
    name[n] = 0; /* may end early at a 0 byte: a short name, fine */
    return name;
}

static void decode(fz_bytes *b, plan_case *c) {
    memset(c, 0, sizeof *c);
    uint8_t flags = fz_u8(b);
    int variant = flags & 31; /* one NULL pointer in 4 of 32 */
    c->null_desc = variant == 1;
    c->null_input = variant == 2;
    c->null_output = variant == 3;
    c->null_plan = variant == 4;
    c->null_options = (flags & 0x60) == 0x60;
    convblas_layer_desc *d = &c->desc;
    d->op = (convblas_op)fz_enum(b, 3);
    d->rank = fz_enum(b, 3);
    d->padding = (convblas_padding)fz_enum(b, 3);
    d->data_format = (convblas_data_format)fz_enum(b, 2);
    d->activation = (convblas_activation)fz_enum(b, 12);
    d->use_bias = fz_u8(b) & 1;
    d->activation_alpha = fz_float(b);
    d->filters = fz_i64(b);
    for (int i = 0; i < 2; i++) {
        d->kernel_size[i] = fz_i64(b);
        d->strides[i] = fz_i64(b);
        d->dilation_rate[i] = fz_i64(b);
    }
    d->groups = fz_i64(b);
    d->depth_multiplier = fz_i64(b);
    c->in.batch = fz_i64(b);
    c->in.spatial[0] = fz_i64(b);
    c->in.spatial[1] = fz_i64(b);
    c->in.channels = fz_i64(b);
    c->opts.mode = (convblas_planner_mode)fz_enum(b, 2);
    c->opts.threads = fz_int(b);
    c->opts.strategy = decode_strategy(b, c->name, sizeof c->name);
    c->opts.workspace_limit = fz_size(b);
    uint8_t env = fz_u8(b);
    c->env_threads = env_threads_table[env & 15];
    int count = convblas_strategy_count();
    int es = (env >> 4) - 10; /* mostly unset */
    c->env_strategy = es < 0 ? NULL : es < count ? convblas_strategy_name(es) : "bogus";
    c->describe_size = fz_u8(b);
}

static void set_env(const char *name, const char *value) {
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

static bool env_threads_valid(const char *v) {
    return !v || !strcmp(v, "1") || !strcmp(v, "3");
}

static bool is_strategy(const char *name) {
    for (int i = 0; i < convblas_strategy_count(); i++)
        if (!strcmp(convblas_strategy_name(i), name)) return true;
    return false;
}

/* The strategy plan_create must run, or NULL. */
static const char *forced_name(const plan_case *c) {
    if (!c->null_options && c->opts.strategy) return c->opts.strategy;
    return c->env_strategy;
}

static bool options_valid(const plan_case *c) {
    const convblas_plan_options *o = &c->opts;
    int threads = c->null_options ? 0 : o->threads;
    if (!c->null_options && o->mode != CONVBLAS_ESTIMATE && o->mode != CONVBLAS_MEASURE)
        return false;
    if (threads < 0 || (threads == 0 && !env_threads_valid(c->env_threads))) return false;
    const char *f = forced_name(c);
    return !f || is_strategy(f);
}

/* Whether planning may execute the layer: few elements, little work, few threads. */
static bool small_layer(const plan_case *c, const convblas_shape *out) {
    const convblas_layer_desc *d = &c->desc;
    double k = (double)d->kernel_size[0] * (d->rank == 2 ? (double)d->kernel_size[1] : 1.0);
    double ch = (double)c->in.channels;
    double mult = d->op == CONVBLAS_CONV ? 1.0 : fmax((double)d->depth_multiplier, 1.0);
    double oc = d->op == CONVBLAS_DEPTHWISE ? ch * mult : (double)d->filters;
    double sp = (double)c->in.spatial[0] * (d->rank == 2 ? (double)c->in.spatial[1] : 1.0);
    double osp = (double)out->spatial[0] * (d->rank == 2 ? (double)out->spatial[1] : 1.0);
    double in_e = (double)c->in.batch * sp * ch;
    double out_e = (double)out->batch * osp * (double)out->channels;
    double kern = k * ch * fmax(oc, mult);
    double flops = (double)out->batch * osp * (k * ch * fmax(oc, mult) + ch * mult * oc);
    int threads = c->null_options ? 0 : c->opts.threads;
    if (threads == 0 && c->env_threads) threads = atoi(c->env_threads);
    return in_e <= 32768 && out_e <= 32768 && kern <= 32768 && flops <= 2e6 && threads >= 0 &&
           threads <= 4;
}

static void check_failure(convblas_status st, const char *what) {
    const char *name = convblas_status_name(st);
    if (!name || !strcmp(name, "UNKNOWN") || !strcmp(name, "OK"))
        fail("%s returned status %d, whose name is \"%s\"", what, (int)st, name ? name : "NULL");
    const char *msg = convblas_last_error();
    if (!msg || !msg[0]) fail("%s failed (%s) with an empty convblas_last_error()", what, name);
}

static bool same_shape(const convblas_shape *a, const convblas_shape *b) {
    return a->batch == b->batch && a->spatial[0] == b->spatial[0] &&
           a->spatial[1] == b->spatial[1] && a->channels == b->channels;
}

/* Within +-2^30 the reference's own arithmetic cannot overflow: compare shapes with it. */
static bool reference_safe(const plan_case *c) {
    const int64_t lim = (int64_t)1 << 30;
    const convblas_layer_desc *d = &c->desc;
    const int64_t v[] = {d->filters,          d->kernel_size[0], d->kernel_size[1],
                         d->strides[0],       d->strides[1],     d->dilation_rate[0],
                         d->dilation_rate[1], d->groups,         d->depth_multiplier,
                         c->in.batch,         c->in.spatial[0],  c->in.spatial[1],
                         c->in.channels};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] < -lim || v[i] > lim) return false;
    return true;
}

static void check_shape(const plan_case *c, convblas_status st, const convblas_shape *out) {
    const convblas_layer_desc *d = &c->desc;
    if (st == CONVBLAS_OK) {
        bool ok = out->batch == c->in.batch && out->channels > 0 && out->spatial[0] > 0 &&
                  (d->rank == 1 ? out->spatial[1] == 0 : out->spatial[1] > 0);
        if (!ok)
            fail("output_shape OK but the shape is (batch %lld, spatial {%lld, %lld}, channels "
                 "%lld)",
                 (long long)out->batch, (long long)out->spatial[0], (long long)out->spatial[1],
                 (long long)out->channels);
    }
    if (!reference_safe(c)) return;
    convblas_shape ref;
    convblas_status rs = ref_output_shape(d, &c->in, &ref);
    if (rs != CONVBLAS_OK && st == CONVBLAS_OK)
        fail("output_shape accepts a layer the reference rejects");
    if (rs == CONVBLAS_OK && st == CONVBLAS_OK && !same_shape(&ref, out))
        fail("output_shape gives (%lld, {%lld, %lld}, %lld), the reference (%lld, {%lld, %lld}, "
             "%lld)",
             (long long)out->batch, (long long)out->spatial[0], (long long)out->spatial[1],
             (long long)out->channels, (long long)ref.batch, (long long)ref.spatial[0],
             (long long)ref.spatial[1], (long long)ref.channels);
    /* TOO_LARGE: an element count overflows where the reference does not count; INVALID:
     * a non-finite activation_alpha, which the reference does not read. */
    if (rs == CONVBLAS_OK && st != CONVBLAS_OK && st != CONVBLAS_TOO_LARGE &&
        !(st == CONVBLAS_INVALID_ARGUMENT && !isfinite(c->desc.activation_alpha)))
        fail("output_shape rejects (%s) a layer the reference accepts", convblas_status_name(st));
}

/* describe into a buffer of exactly size bytes: snprintf's contract. */
static void check_describe_size(const convblas_plan *plan, int need, size_t size) {
    char *buf = malloc(size ? size : 1);
    if (!buf) abort();
    memset(buf, 0x7E, size ? size : 1);
    int n = convblas_plan_describe(plan, size ? buf : NULL, size);
    if (n != need) fail("describe returned %d with size %zu, %d with size 0", n, size, need);
    if (size) {
        size_t len = (size_t)need < size - 1 ? (size_t)need : size - 1;
        const char *nul = memchr(buf, 0, size);
        if (nul != buf + len)
            fail("describe with size %zu (needs %d): NUL at %td, expected at %zu", size, need,
                 nul ? nul - buf : (ptrdiff_t)-1, len);
    }
    free(buf);
}

static void check_plan(const plan_case *c, const convblas_plan *plan) {
    const char *name = convblas_plan_strategy(plan);
    if (!name || !is_strategy(name)) fail("the plan's strategy \"%s\" is not in the table", name);
    const char *forced = forced_name(c);
    if (forced && strcmp(forced, name) != 0) fail("forced %s, the plan runs %s", forced, name);
    size_t ws = convblas_plan_workspace_size(plan);
    size_t limit = c->null_options ? 0 : c->opts.workspace_limit;
    if (limit && ws > limit) fail("workspace %zu bytes over the limit %zu", ws, limit);
    int need = convblas_plan_describe(plan, NULL, 0);
    if (need <= 0) fail("describe(plan, NULL, 0) returned %d", need);
    check_describe_size(plan, need, c->describe_size);
    check_describe_size(plan, need, (size_t)need);
    check_describe_size(plan, need, (size_t)need + 1);
}

/* The entry points on a NULL plan, by the contract. */
static void check_null_plan(void) {
    char buf[4] = "abc";
    if (convblas_plan_describe(NULL, buf, sizeof buf) != -1) fail("describe(NULL) is not -1");
    if (convblas_plan_strategy(NULL) != NULL) fail("strategy(NULL) is not NULL");
    if (convblas_plan_workspace_size(NULL) != 0) fail("workspace_size(NULL) is not 0");
    convblas_plan_destroy(NULL);
}

static void run_case(plan_case *c) {
    current = c;
    set_env("CONVBLAS_NUM_THREADS", c->env_threads);
    set_env("CONVBLAS_STRATEGY", c->env_strategy);
    const convblas_layer_desc *desc = c->null_desc ? NULL : &c->desc;
    const convblas_shape *in = c->null_input ? NULL : &c->in;

    convblas_shape out, untouched;
    memset(&out, 0x5A, sizeof out);
    untouched = out;
    convblas_status st1 = convblas_output_shape(desc, in, c->null_output ? NULL : &out);
    char msg1[1024];
    snprintf(msg1, sizeof msg1, "%s", convblas_last_error());
    if (st1 != CONVBLAS_OK) {
        check_failure(st1, "output_shape");
        if (memcmp(&out, &untouched, sizeof out) != 0)
            fail("output_shape failed but wrote *output");
    }
    if (desc && in && !c->null_output) check_shape(c, st1, &out);
    if (st1 != CONVBLAS_OK || !small_layer(c, &out)) {
        if (c->opts.mode == CONVBLAS_MEASURE) c->opts.mode = CONVBLAS_ESTIMATE;
        c->null_options = false; /* the defaults may MEASURE or use many threads */
    }

    if (getenv("FUZZ_PRINT_CASE")) print_case(c);
    convblas_plan *plan = (convblas_plan *)c; /* must be overwritten with NULL on failure */
    convblas_status st2 = convblas_plan_create(c->null_plan ? NULL : &plan, desc, in,
                                               c->null_options ? NULL : &c->opts);
    if (st2 != CONVBLAS_OK) {
        check_failure(st2, "plan_create");
        if (!c->null_plan && plan != NULL) fail("plan_create failed but *plan is not NULL");
        plan = NULL;
    }
    if (c->null_plan && st2 != CONVBLAS_INVALID_ARGUMENT)
        fail("plan_create(NULL, ...) is not INVALID");
    if (!c->null_plan && !c->null_output) {
        bool valid = options_valid(c);
        if (st1 == CONVBLAS_OK && valid && st2 != CONVBLAS_OK && st2 != CONVBLAS_UNSUPPORTED &&
            st2 != CONVBLAS_OUT_OF_MEMORY)
            fail("output_shape OK, plan_create %s", convblas_status_name(st2));
        if (st1 == CONVBLAS_OK && !valid && st2 != CONVBLAS_INVALID_ARGUMENT)
            fail("invalid options, plan_create %s", convblas_status_name(st2));
        if (st1 != CONVBLAS_OK && st2 != st1 && (valid || st2 != CONVBLAS_INVALID_ARGUMENT))
            fail("output_shape %s (\"%s\"), plan_create %s", convblas_status_name(st1), msg1,
                 convblas_status_name(st2));
        if (st1 != CONVBLAS_OK && valid && strcmp(msg1, convblas_last_error()) != 0)
            fail("output_shape and plan_create fail with different messages: \"%s\"", msg1);
    }
    if (plan) check_plan(c, plan);
    convblas_plan_destroy(plan);
}

static bool print_cases;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    print_cases = getenv("FUZZ_PRINT") != NULL; /* to see what a saved input means */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_bytes b = fz_start(data, size);
    plan_case c;
    decode(&b, &c);
    if (print_cases) print_case(&c);
    run_case(&c);
#ifdef FUZZ_HAVE_WISDOM
    /* MEASURE records wisdom: forget it, so that every input plans the same way alone */
    convblas_wisdom_forget();
#endif
    check_null_plan();
    /* an arbitrary value is a status name or "UNKNOWN", never NULL */
    if (!convblas_status_name((convblas_status)fz_raw(&b, 4))) fail("status_name is NULL");
    return 0;
}
