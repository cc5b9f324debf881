/* Concurrency (design section 3: a plan is immutable; execute on one plan from many threads
 * at once is safe; convblas_last_error() is per thread).
 *
 *  1. One plan, many callers: for layers of every op, rank and format, every strategy
 *     forced and the planner's pick, plan threads 1 and 2, with and without a workspace
 *     limit, THREADS threads released together by a barrier execute the same plan, each
 *     on its own input, for --rounds rounds. Half pass a NULL workspace, half their own.
 *     Every output must be bitwise the serial output of that input: a plan is
 *     deterministic, so any difference is a race (shared scratch, a torn write).
 *  2. Plans made and destroyed concurrently, ESTIMATE and MEASURE, interleaved with
 *     failing calls whose messages differ per thread: each thread must read back its own
 *     message, never another's.
 *
 *   test_concurrency [--rounds R] [--verbose]
 */
#include "test_util.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 16, INPUTS = THREADS };

static int rounds = 20;
static bool verbose;

/* CHECK's counter is a plain long: worker threads count here, main adds it at the end. */
static atomic_long thread_failures;

#define TFAIL(...)                                                                                 \
    do {                                                                                           \
        atomic_fetch_add(&thread_failures, 1);                                                     \
        fprintf(stderr, __VA_ARGS__);                                                              \
    } while (0)

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test_concurrency: out of memory\n");
        exit(2);
    }
    return p;
}

/* A quiet NaN with a payload of its own, so an output that was never written is caught. */
static void poison(float *y, size_t n) {
    const uint32_t bits = 0x7FC0DEADu;
    for (size_t i = 0; i < n; i++) memcpy(y + i, &bits, sizeof bits);
}

/* ---- the layers ---------------------------------------------------------------------- */

typedef struct layer {
    const char *name;
    convblas_layer_desc d;
    convblas_shape in;
} layer;

/* Every op at both ranks with strides, dilation, padding, groups, multipliers and
 * activations mixed in; the pointwise ones so that pointwise_gemm runs too. Small, so that
 * thousands of executions take seconds, but several tasks per plan at 2 threads. */
static const layer layers[] = {
    {"conv1d",
     {.op = CONVBLAS_CONV,
      .rank = 1,
      .filters = 6,
      .kernel_size = {3},
      .padding = CONVBLAS_SAME,
      .groups = 2,
      .activation = CONVBLAS_RELU,
      .use_bias = true},
     {.batch = 2, .spatial = {29}, .channels = 4}},
    {"conv1d_pointwise",
     {.op = CONVBLAS_CONV,
      .rank = 1,
      .filters = 8,
      .kernel_size = {1},
      .activation = CONVBLAS_SWISH,
      .use_bias = true},
     {.batch = 3, .spatial = {17}, .channels = 6}},
    {"conv2d",
     {.op = CONVBLAS_CONV,
      .rank = 2,
      .filters = 5,
      .kernel_size = {3, 2},
      .strides = {2, 1},
      .padding = CONVBLAS_SAME,
      .activation = CONVBLAS_GELU,
      .use_bias = true},
     {.batch = 2, .spatial = {9, 8}, .channels = 3}},
    {"conv2d_pointwise",
     {.op = CONVBLAS_CONV, .rank = 2, .filters = 4, .kernel_size = {1, 1}},
     {.batch = 2, .spatial = {5, 6}, .channels = 7}},
    {"depthwise1d",
     {.op = CONVBLAS_DEPTHWISE,
      .rank = 1,
      .kernel_size = {5},
      .dilation_rate = {2},
      .padding = CONVBLAS_CAUSAL,
      .depth_multiplier = 2,
      .activation = CONVBLAS_TANH,
      .use_bias = true},
     {.batch = 2, .spatial = {31}, .channels = 5}},
    {"depthwise2d",
     {.op = CONVBLAS_DEPTHWISE,
      .rank = 2,
      .kernel_size = {3, 3},
      .padding = CONVBLAS_SAME,
      .activation = CONVBLAS_RELU6},
     {.batch = 2, .spatial = {8, 9}, .channels = 6}},
    {"separable1d",
     {.op = CONVBLAS_SEPARABLE,
      .rank = 1,
      .filters = 7,
      .kernel_size = {3},
      .strides = {2},
      .depth_multiplier = 2,
      .activation = CONVBLAS_ELU,
      .use_bias = true},
     {.batch = 2, .spatial = {33}, .channels = 3}},
    {"separable2d",
     {.op = CONVBLAS_SEPARABLE,
      .rank = 2,
      .filters = 4,
      .kernel_size = {3, 3},
      .padding = CONVBLAS_SAME,
      .activation = CONVBLAS_LEAKY_RELU,
      .use_bias = true},
     {.batch = 1, .spatial = {7, 10}, .channels = 5}},
};
enum { LAYERS = sizeof layers / sizeof layers[0] };

/* ---- part 1: one plan executed from many threads ------------------------------------- */

/* One layer's data: INPUTS inputs, shared weights, the serial output of each input. */
typedef struct layer_data {
    ref_sizes sz;
    float *x[INPUTS];
    float *serial[INPUTS];
    float *kernel, *pointwise, *bias;
    convblas_weights w;
} layer_data;

static void layer_data_make(layer_data *ld, const layer *l, uint64_t seed) {
    memset(ld, 0, sizeof *ld);
    if (ref_layer_sizes(&l->d, &l->in, &ld->sz) != CONVBLAS_OK) {
        fprintf(stderr, "test_concurrency: the reference rejects layer %s\n", l->name);
        exit(2);
    }
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    for (int i = 0; i < INPUTS; i++) {
        ld->x[i] = xmalloc(ld->sz.input * sizeof(float));
        tu_fill(&rng, ld->x[i], ld->sz.input, -1.0f, 1.0f);
        ld->serial[i] = xmalloc(ld->sz.output * sizeof(float));
    }
    ld->kernel = xmalloc(ld->sz.kernel * sizeof(float));
    ld->pointwise = xmalloc(ld->sz.pointwise * sizeof(float));
    ld->bias = xmalloc(ld->sz.bias * sizeof(float));
    tu_fill(&rng, ld->kernel, ld->sz.kernel, -1.0f, 1.0f);
    tu_fill(&rng, ld->pointwise, ld->sz.pointwise, -1.0f, 1.0f);
    tu_fill(&rng, ld->bias, ld->sz.bias, -1.0f, 1.0f);
    ld->w =
        (convblas_weights){.kernel = ld->kernel,
                           .pointwise_kernel = l->d.op == CONVBLAS_SEPARABLE ? ld->pointwise : NULL,
                           .bias = l->d.use_bias ? ld->bias : NULL};
}

static void layer_data_free(layer_data *ld) {
    for (int i = 0; i < INPUTS; i++) {
        free(ld->x[i]);
        free(ld->serial[i]);
    }
    free(ld->kernel);
    free(ld->pointwise);
    free(ld->bias);
}

/* What every worker of one configuration shares. */
typedef struct shared_run {
    const convblas_plan *plan;
    const layer_data *ld;
    const char *label;
    pthread_barrier_t start;
} shared_run;

typedef struct worker {
    shared_run *s;
    int index;
    long mismatches;
} worker;

static void *execute_worker(void *arg) {
    worker *wk = arg;
    const shared_run *s = wk->s;
    size_t n = s->ld->sz.output;
    float *y = xmalloc(n * sizeof(float));
    size_t ws_bytes = convblas_plan_workspace_size(s->plan);
    /* odd threads bring their own workspace, even ones let the library allocate */
    void *ws = wk->index % 2 ? xmalloc(ws_bytes) : NULL;
    if (ws) memset(ws, 0xFF, ws_bytes ? ws_bytes : 1);
    pthread_barrier_wait(&wk->s->start);
    for (int r = 0; r < rounds; r++) {
        int i = (wk->index + r) % INPUTS; /* distinct inputs across threads in a round */
        poison(y, n);
        convblas_status st = convblas_execute(s->plan, s->ld->x[i], &s->ld->w, y, ws);
        if (st != CONVBLAS_OK) {
            TFAIL("FAIL: %s: thread %d round %d: execute %s: %s\n", s->label, wk->index, r,
                  tu_status_str(st), convblas_last_error());
        } else if (n && memcmp(y, s->ld->serial[i], n * sizeof(float)) != 0) {
            size_t k = 0;
            while (memcmp(y + k, s->ld->serial[i] + k, sizeof(float)) == 0) k++;
            if (wk->mismatches++ == 0)
                TFAIL("FAIL: %s: thread %d round %d input %d: output differs from the serial "
                      "run (first at element %zu: %.9g, serial %.9g)\n",
                      s->label, wk->index, r, i, k, (double)y[k], (double)s->ld->serial[i][k]);
        }
    }
    free(ws);
    free(y);
    return NULL;
}

/* The serial outputs with this plan; the first is also checked against the reference, so
 * that agreement between threads means agreement with the right answer. */
static bool serial_outputs(const convblas_plan *plan, const layer *l, layer_data *ld,
                           const char *label) {
    for (int i = 0; i < INPUTS; i++) {
        convblas_status st = convblas_execute(plan, ld->x[i], &ld->w, ld->serial[i], NULL);
        if (st != CONVBLAS_OK) {
            TFAIL("FAIL: %s: serial execute %s: %s\n", label, tu_status_str(st),
                  convblas_last_error());
            return false;
        }
    }
    float *ref = xmalloc(ld->sz.output * sizeof(float));
    ref_forward(&l->d, &l->in, ld->x[0], &ld->w, ref, NULL);
    size_t worst = 0;
    double e = tu_rel_error(ld->serial[0], ref, ld->sz.output, &worst);
    if (!(e <= TU_TOLERANCE))
        TFAIL("FAIL: %s: serial output off the reference by %.3g (element %zu)\n", label, e, worst);
    free(ref);
    return e <= TU_TOLERANCE;
}

/* Runs one plan from THREADS threads at once; returns the threads' mismatch count. */
static long hammer(const convblas_plan *plan, const layer_data *ld, const char *label) {
    shared_run s = {.plan = plan, .ld = ld, .label = label};
    pthread_barrier_init(&s.start, NULL, THREADS);
    pthread_t ids[THREADS];
    worker wk[THREADS];
    long mismatches = 0;
    for (int t = 0; t < THREADS; t++) {
        wk[t] = (worker){.s = &s, .index = t};
        if (pthread_create(&ids[t], NULL, execute_worker, &wk[t]) != 0) {
            fprintf(stderr, "test_concurrency: cannot create thread %d\n", t);
            exit(2);
        }
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(ids[t], NULL);
        mismatches += wk[t].mismatches;
    }
    pthread_barrier_destroy(&s.start);
    return mismatches;
}

typedef struct config {
    int strategy; /* -1: the planner */
    int threads;
    size_t limit;
} config;

/* Returns 1 if the configuration ran, 0 if its forced strategy cannot run the layer. */
static int run_config(const layer *l, layer_data *ld, const config *c, long *ran_by_strategy) {
    const char *forced = c->strategy < 0 ? NULL : convblas_strategy_name(c->strategy);
    convblas_plan_options o = {
        .strategy = forced, .threads = c->threads, .workspace_limit = c->limit};
    char label[160];
    snprintf(label, sizeof label, "%s %s, plan threads %d, limit %zu", l->name,
             forced ? forced : "(planner)", c->threads, c->limit);
    convblas_plan *plan = NULL;
    convblas_status st = convblas_plan_create(&plan, &l->d, &l->in, &o);
    if (st == CONVBLAS_UNSUPPORTED && (forced || c->limit)) return 0;
    if (st != CONVBLAS_OK) {
        TFAIL("FAIL: %s: plan_create %s: %s\n", label, tu_status_str(st), convblas_last_error());
        return 0;
    }
    if (serial_outputs(plan, l, ld, label)) {
        long bad = hammer(plan, ld, label);
        if (verbose || bad)
            printf("%-60s -> %-16s %ld of %d outputs differ\n", label, convblas_plan_strategy(plan),
                   bad, THREADS * rounds);
        int s = c->strategy < 0 ? convblas_strategy_count() : c->strategy;
        ran_by_strategy[s]++;
    }
    convblas_plan_destroy(plan);
    return 1;
}

static void test_shared_plan(void) {
    int nstrat = convblas_strategy_count();
    long *ran = calloc((size_t)nstrat + 1, sizeof *ran);
    long configs = 0;
    for (int li = 0; li < LAYERS; li++) {
        for (int f = 0; f < 2; f++) {
            layer l = layers[li];
            l.d.data_format = f ? CONVBLAS_CHANNELS_FIRST : CONVBLAS_CHANNELS_LAST;
            char name[64];
            snprintf(name, sizeof name, "%s %s", l.name, f ? "channels_first" : "channels_last");
            l.name = name;
            layer_data ld;
            layer_data_make(&ld, &l, 1000u + (uint64_t)(2 * li + f));
            for (int s = -1; s < nstrat; s++)
                for (int th = 1; th <= 2; th++)
                    for (int lim = 0; lim < 2; lim++) {
                        /* a small limit means smaller tiles: more tasks per execute */
                        config c = {
                            .strategy = s, .threads = th, .limit = lim ? (size_t)8 << 10 : 0};
                        configs += run_config(&l, &ld, &c, ran);
                    }
            layer_data_free(&ld);
        }
    }
    /* every strategy, and the planner, must have been exercised */
    for (int s = 0; s <= nstrat; s++)
        CHECKF(ran[s] > 0 || (s < nstrat && tu_strategy_missing_cpu(convblas_strategy_name(s))),
               "%s never ran concurrently",
               s < nstrat ? convblas_strategy_name(s) : "the planner's pick");
    printf("shared plans: %ld configurations x %d threads x %d rounds\n", configs, THREADS, rounds);
    free(ran);
}

/* ---- part 2: plans made and destroyed concurrently, per-thread errors ----------------- */

/* Thread t's layers: a valid conv1d whose filters differ per thread (so do its output
 * size and overlap message), and failing variants whose messages name a value of t's own. */
static convblas_layer_desc good_desc(int t) {
    return (convblas_layer_desc){.op = CONVBLAS_CONV,
                                 .rank = 1,
                                 .filters = t + 1,
                                 .kernel_size = {3},
                                 .padding = CONVBLAS_SAME,
                                 .activation = CONVBLAS_RELU,
                                 .use_bias = true};
}
static const convblas_shape good_shape = {.batch = 2, .spatial = {24}, .channels = 97};

enum { FAILURES = 4 };

/* Failure kind k of thread t: a call that must fail, with a value only t uses. */
static convblas_status fail_call(int t, int k, char *strategy_name, size_t name_size,
                                 const convblas_plan *plan, const float *buf) {
    convblas_layer_desc d = good_desc(t);
    convblas_plan *p = NULL;
    convblas_status st;
    switch (k) {
    case 0: /* 97 is prime: no groups from 2 to 17 divides it */
        d.groups = t + 2;
        st = convblas_plan_create(&p, &d, &good_shape, NULL);
        break;
    case 1:
        d.strides[0] = -(t + 1);
        st = convblas_plan_create(&p, &d, &good_shape, NULL);
        break;
    case 2: {
        snprintf(strategy_name, name_size, "no_such_strategy_%d", t);
        convblas_plan_options o = {.strategy = strategy_name, .mode = CONVBLAS_MEASURE};
        st = convblas_plan_create(&p, &d, &good_shape, &o);
        break;
    }
    default: /* the output is the input: the message names the output's size */
        st = convblas_execute(plan, buf, &(convblas_weights){.kernel = buf, .bias = buf},
                              (float *)buf, NULL);
        break;
    }
    convblas_plan_destroy(p);
    return st;
}

typedef struct life_worker {
    int index;
    pthread_barrier_t *start;
    char expected[FAILURES][512]; /* the message each failure gives when run alone */
    float *x, *ref, *buf;
    size_t in_n, out_n, buf_n;
    const float *kernel, *bias;
} life_worker;

/* One round: a failing call, then a plan made (ESTIMATE or MEASURE), run and destroyed;
 * the message of the failure must still be this thread's afterwards. */
static void life_round(life_worker *lw, int r) {
    int t = lw->index, k = (t + r) % FAILURES;
    convblas_layer_desc d = good_desc(t);
    convblas_plan_options o = {.mode = r % 2 ? CONVBLAS_MEASURE : CONVBLAS_ESTIMATE,
                               .threads = 1 + r % 2};
    convblas_plan *plan = NULL;
    convblas_status st = convblas_plan_create(&plan, &d, &good_shape, &o);
    if (st != CONVBLAS_OK) {
        TFAIL("FAIL: lifecycle thread %d round %d: plan_create %s: %s\n", t, r, tu_status_str(st),
              convblas_last_error());
        return;
    }
    char name[64];
    memcpy(lw->buf, lw->x, lw->in_n * sizeof(float));
    st = fail_call(t, k, name, sizeof name, plan, lw->buf);
    if (st == CONVBLAS_OK || strcmp(convblas_last_error(), lw->expected[k]) != 0)
        TFAIL("FAIL: lifecycle thread %d round %d: failure %d gave %s \"%s\", expected \"%s\"\n", t,
              r, k, tu_status_str(st), convblas_last_error(), lw->expected[k]);
    if (memcmp(lw->buf, lw->x, lw->in_n * sizeof(float)) != 0)
        TFAIL("FAIL: lifecycle thread %d round %d: a failing call wrote its buffer\n", t, r);

    float *y = xmalloc(lw->out_n * sizeof(float));
    convblas_weights w = {.kernel = lw->kernel, .bias = lw->bias};
    st = convblas_execute(plan, lw->x, &w, y, NULL);
    double e = st == CONVBLAS_OK ? tu_rel_error(y, lw->ref, lw->out_n, NULL) : INFINITY;
    if (!(e <= TU_TOLERANCE))
        TFAIL("FAIL: lifecycle thread %d round %d (%s): execute %s, error %.3g\n", t, r,
              convblas_plan_strategy(plan), tu_status_str(st), e);
    /* a successful call leaves the last failure's message alone */
    if (strcmp(convblas_last_error(), lw->expected[k]) != 0)
        TFAIL("FAIL: lifecycle thread %d round %d: after success the message is \"%s\", "
              "expected \"%s\"\n",
              t, r, convblas_last_error(), lw->expected[k]);
    free(y);
    convblas_plan_destroy(plan);
}

static void *life_thread(void *arg) {
    life_worker *lw = arg;
    pthread_barrier_wait(lw->start);
    for (int r = 0; r < rounds; r++) life_round(lw, r);
    return NULL;
}

/* Thread t's data and, run alone in this thread, the message each failure gives. */
static void life_prepare(life_worker *lw, int t, const float *kernel, const float *bias) {
    convblas_layer_desc d = good_desc(t);
    ref_sizes sz;
    ref_layer_sizes(&d, &good_shape, &sz);
    lw->index = t;
    lw->in_n = sz.input;
    lw->out_n = sz.output;
    lw->buf_n = sz.input > sz.output ? sz.input : sz.output;
    lw->x = xmalloc(sz.input * sizeof(float));
    lw->buf = xmalloc(lw->buf_n * sizeof(float));
    lw->ref = xmalloc(sz.output * sizeof(float));
    lw->kernel = kernel;
    lw->bias = bias;
    tu_rng rng;
    tu_rng_seed(&rng, 77u + (uint64_t)t);
    tu_fill(&rng, lw->x, sz.input, -1.0f, 1.0f);
    convblas_weights w = {.kernel = kernel, .bias = bias};
    ref_forward(&d, &good_shape, lw->x, &w, lw->ref, NULL);
    convblas_plan *plan = NULL;
    convblas_plan_create(&plan, &d, &good_shape, NULL);
    for (int k = 0; k < FAILURES; k++) {
        char name[64];
        memcpy(lw->buf, lw->x, lw->in_n * sizeof(float));
        convblas_status st = fail_call(t, k, name, sizeof name, plan, lw->buf);
        CHECKF(st != CONVBLAS_OK, "failure %d of thread %d did not fail", k, t);
        snprintf(lw->expected[k], sizeof lw->expected[k], "%s", convblas_last_error());
    }
    convblas_plan_destroy(plan);
}

static void test_lifecycle(void) {
    life_worker *lw = calloc(THREADS, sizeof *lw);
    float *kernels[THREADS], *biases[THREADS];
    tu_rng rng;
    tu_rng_seed(&rng, 4242);
    for (int t = 0; t < THREADS; t++) {
        size_t kn = (size_t)3 * 97 * (size_t)(t + 1);
        kernels[t] = xmalloc(kn * sizeof(float));
        biases[t] = xmalloc((size_t)(t + 1) * sizeof(float));
        tu_fill(&rng, kernels[t], kn, -1.0f, 1.0f);
        tu_fill(&rng, biases[t], (size_t)(t + 1), -1.0f, 1.0f);
        life_prepare(&lw[t], t, kernels[t], biases[t]);
    }
    /* the messages must really differ between threads, or the check below proves nothing */
    for (int k = 0; k < FAILURES; k++)
        for (int a = 0; a < THREADS; a++)
            for (int b = a + 1; b < THREADS; b++)
                CHECKF(strcmp(lw[a].expected[k], lw[b].expected[k]) != 0,
                       "failure %d gives threads %d and %d the same message \"%s\"", k, a, b,
                       lw[a].expected[k]);

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    pthread_t ids[THREADS];
    for (int t = 0; t < THREADS; t++) {
        lw[t].start = &start;
        if (pthread_create(&ids[t], NULL, life_thread, &lw[t]) != 0) {
            fprintf(stderr, "test_concurrency: cannot create thread %d\n", t);
            exit(2);
        }
    }
    for (int t = 0; t < THREADS; t++) pthread_join(ids[t], NULL);
    pthread_barrier_destroy(&start);
    for (int t = 0; t < THREADS; t++) {
        free(lw[t].x);
        free(lw[t].buf);
        free(lw[t].ref);
        free(kernels[t]);
        free(biases[t]);
    }
    free(lw);
    printf("lifecycle: %d threads x %d rounds of failing and succeeding calls\n", THREADS, rounds);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            rounds = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--verbose")) {
            verbose = true;
        } else {
            fprintf(stderr, "usage: %s [--rounds R] [--verbose]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1) rounds = 1;
    test_shared_plan();
    test_lifecycle();
    tu_failures += atomic_load(&thread_failures);
    return tu_finish("concurrency");
}
