/* convblas_plan_describe: the plan in words, oneDNN-verbose style. */
#include "plan.h"

#include <stdio.h>

static const char *op_name(convblas_op op, int rank) {
    static const char *names[3][2] = {{"Conv1D", "Conv2D"},
                                      {"DepthwiseConv1D", "DepthwiseConv2D"},
                                      {"SeparableConv1D", "SeparableConv2D"}};
    return names[op][rank - 1];
}

static const char *activation_name(convblas_activation a) {
    static const char *names[] = {"linear",   "relu",         "relu6",      "sigmoid",
                                  "tanh",     "gelu",         "swish",      "elu",
                                  "softplus", "hard_sigmoid", "hard_swish", "leaky_relu"};
    return names[a];
}

/* A growing text in a caller's buffer, snprintf-like: counts what it could not store. */
typedef struct text {
    char *buf;
    size_t size;
    size_t len;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->len < t->size ? t->size - t->len : 0;
    int n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) t->len += (size_t)n;
}

static void put_shape(text *t, const char *label, const convblas_shape *s, int rank,
                      convblas_data_format f) {
    put(t, "%s (batch %lld, ", label, (long long)s->batch);
    if (f == CONVBLAS_CHANNELS_FIRST) put(t, "C %lld, ", (long long)s->channels);
    if (rank == 2)
        put(t, "%lld x %lld", (long long)s->spatial[0], (long long)s->spatial[1]);
    else
        put(t, "%lld", (long long)s->spatial[0]);
    if (f == CONVBLAS_CHANNELS_LAST) put(t, ", C %lld", (long long)s->channels);
    put(t, ")");
}

static void put_layer(text *t, const cb_problem *p) {
    int r = p->desc.rank;
    put(t, "layer: %s, kernel ", op_name(p->op, r));
    if (r == 2)
        put(t, "%lldx%lld", (long long)p->k_h, (long long)p->k_w);
    else
        put(t, "%lld", (long long)p->k_w);
    put(t,
        ", strides %lldx%lld, dilation %lldx%lld, pad (%lld,%lld)x(%lld,%lld), groups %lld, "
        "activation %s, bias %s\n",
        (long long)p->s_h, (long long)p->s_w, (long long)p->d_h, (long long)p->d_w,
        (long long)p->pad_top, (long long)p->pad_bottom, (long long)p->pad_left,
        (long long)p->pad_right, (long long)p->groups, activation_name(p->activation),
        p->use_bias ? "yes" : "no");
    put_shape(t, "input", &p->input, r, p->format);
    put(t, " -> ");
    put_shape(t, "output", &p->output, r, p->format);
    put(t, ", %s, %.3g GFLOP\n",
        p->format == CONVBLAS_CHANNELS_LAST ? "channels_last" : "channels_first", p->flops * 1e-9);
}

static void put_choice(text *t, const convblas_plan *plan) {
    const cb_candidate *c = &plan->candidates[plan->chosen];
    const cb_strategy *s = cb_strategies[plan->chosen];
    put(t, "strategy: %s (%s) -- %s\n", cb_strategies[plan->chosen]->name,
        cb_strategies[plan->chosen]->summary,
        plan->forced_by                  ? "forced"
        : plan->from_wisdom              ? "from wisdom"
        : plan->mode == CONVBLAS_MEASURE ? "fastest measured"
                                         : "lowest estimated cost");
    if (plan->forced_by) put(t, "forced by: %s\n", plan->forced_by);
    if (plan->from_wisdom)
        put(t, "wisdom: chosen without timing; it measured %.4g ms when recorded\n",
            plan->wisdom_seconds * 1e3);
    put(t,
        "parameters: tile %lld, tasks %lld (%s), on %d threads (BLAS single-threaded in "
        "each)\n",
        (long long)c->params.tile, (long long)c->params.tasks, s->parallel ? s->parallel : "tasks",
        c->params.threads);
    if (c->params.prefetch)
        put(t,
            "prefetching: the next rows, ahead (input and output outgrow half the %zu MiB "
            "cache)\n",
            cb_machine.cache_bytes >> 20);
    put(t, "workspace: %zu bytes (limit %zu)\n", c->params.workspace, plan->tuning.workspace_limit);
    put(t, "estimated time: %.4g ms", c->estimate * 1e3);
    put(t, " (cost model: sgemm %.4g GFLOP/s, copy %.4g GB/s, %.2g us per call; %s)",
        cb_machine.gemm_flops * 1e-9, cb_machine.copy_bytes * 1e-9, cb_machine.call_cost * 1e6,
        cb_machine.source);
    if (c->measured > 0) put(t, ", measured %.4g ms", c->measured * 1e3);
    put(t, "\n");
    if (plan->runner_up >= 0) {
        const cb_candidate *r = &plan->candidates[plan->runner_up];
        put(t, "runner-up: %s, estimated %.4g ms", cb_strategies[plan->runner_up]->name,
            r->estimate * 1e3);
        if (r->measured > 0) put(t, ", measured %.4g ms", r->measured * 1e3);
        put(t, "\n");
    }
}

int convblas_plan_describe(const convblas_plan *plan, char *buf, size_t size) {
    if (!plan) return -1;
    text t = {.buf = buf, .size = buf ? size : 0};
    if (t.size) buf[0] = '\0';
    put_layer(&t, &plan->problem);
    put_choice(&t, plan);
    for (int i = 0; i < cb_strategy_total; i++) {
        const cb_candidate *c = &plan->candidates[i];
        if (i == plan->chosen || i == plan->runner_up) continue;
        if (c->usable)
            put(&t, "also usable: %s, estimated %.4g ms\n", cb_strategies[i]->name,
                c->estimate * 1e3);
        else
            put(&t, "rejected: %s: %s\n", cb_strategies[i]->name, c->reason);
    }
    return (int)t.len;
}
