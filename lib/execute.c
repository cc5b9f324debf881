/* convblas_execute: check the operands, provide the workspace, run the plan's tasks on its
 * workers with the BLAS kept single-threaded meanwhile. */
#include "plan.h"

#include <stdint.h>

#define INVALID CONVBLAS_INVALID_ARGUMENT

typedef struct task_ctx {
    cb_exec exec;
    const cb_strategy *strategy;
} task_ctx;

static void run_one(void *ctx, int worker, int64_t task) {
    task_ctx *t = ctx;
    const cb_params *c = t->exec.params;
    float *ws = t->exec.workspace
                    ? t->exec.workspace + c->shared_floats + (size_t)worker * c->worker_stride
                    : NULL;
    t->strategy->run_task(&t->exec, task, ws);
}

static void prepare_one(void *ctx, int worker, int64_t part) {
    (void)worker;
    task_ctx *t = ctx;
    t->strategy->prepare(&t->exec, part, t->exec.params->threads);
}

void cb_run_strategy(const convblas_plan *plan, int s, const float *in, const convblas_weights *w,
                     float *out, void *workspace) {
    const cb_candidate *c = &plan->candidates[s];
    task_ctx t = {
        .exec = {.p = &plan->problem,
                 .params = &c->params,
                 .in = in,
                 .kernel = w->kernel,
                 .pointwise = w->pointwise_kernel,
                 .bias = w->bias,
                 .out = out,
                 .workspace = workspace,
                 .shared = workspace},
        .strategy = cb_strategies[s],
    };
    cb_blas_serial_enter();
    /* no shared region, nothing to prepare: no second round of the workers */
    if (t.strategy->prepare && c->params.shared_floats > 0 && c->params.tasks > 0)
        cb_parallel_for(c->params.threads, c->params.threads, prepare_one, &t);
    cb_parallel_for(c->params.threads, c->params.tasks, run_one, &t);
    cb_blas_serial_leave();
}

static bool overlap(const float *a, int64_t na, const float *b, int64_t nb) {
    uintptr_t a0 = (uintptr_t)a, a1 = a0 + (uintptr_t)na * sizeof(float);
    uintptr_t b0 = (uintptr_t)b, b1 = b0 + (uintptr_t)nb * sizeof(float);
    return na > 0 && nb > 0 && a0 < b1 && b0 < a1;
}

static convblas_status check_operands(const convblas_plan *plan, const float *in,
                                      const convblas_weights *w, const float *out) {
    if (!plan) return cb_fail(INVALID, "plan is NULL");
    const cb_problem *p = &plan->problem;
    if (!in) return cb_fail(INVALID, "input is NULL");
    if (!out) return cb_fail(INVALID, "output is NULL");
    if (!w) return cb_fail(INVALID, "weights is NULL");
    if (!w->kernel)
        return cb_fail(INVALID, p->op == CONVBLAS_CONV ? "weights->kernel is NULL"
                                                       : "weights->kernel (the depthwise "
                                                         "kernel) is NULL");
    if (p->has_pointwise && !w->pointwise_kernel)
        return cb_fail(INVALID, "weights->pointwise_kernel is NULL (SEPARABLE needs it)");
    if (p->use_bias && !w->bias)
        return cb_fail(INVALID, "weights->bias is NULL but the layer has use_bias");
    if (overlap(in, p->in_elems, out, p->out_elems))
        return cb_fail(INVALID,
                       "input and output overlap: convblas does not compute in place "
                       "(give the output its own %lld floats)",
                       (long long)p->out_elems);
    return CONVBLAS_OK;
}

convblas_status convblas_execute(const convblas_plan *plan, const float *input,
                                 const convblas_weights *weights, float *output, void *workspace) {
    convblas_status st = check_operands(plan, input, weights, output);
    if (st) return st;
    if (plan->problem.out_elems == 0) return CONVBLAS_OK;
    size_t bytes = convblas_plan_workspace_size(plan);
    void *owned = NULL;
    if (!workspace && bytes > 0) {
        workspace = owned = cb_malloc(bytes);
        if (!owned)
            return cb_fail(CONVBLAS_OUT_OF_MEMORY,
                           "out of memory allocating %zu bytes of "
                           "workspace (pass your own to execute)",
                           bytes);
    }
    /* Rare (an Inf or NaN weight in a padded layer): allocated before anything is
     * written, so running out of memory leaves the output untouched. */
    const cb_problem *p = &plan->problem;
    bool fixup = cb_needs_border_fixup(p, weights->kernel);
    float *mid = NULL;
    if (fixup && p->has_pointwise && !(mid = cb_malloc((size_t)p->mid_channels * sizeof(float)))) {
        cb_free(owned);
        return cb_fail(CONVBLAS_OUT_OF_MEMORY, "out of memory allocating %zu bytes of scratch",
                       (size_t)p->mid_channels * sizeof(float));
    }
    cb_run_strategy(plan, plan->chosen, input, weights, output, workspace);
    if (fixup) {
        cb_exec e = {.p = p,
                     .in = input,
                     .kernel = weights->kernel,
                     .pointwise = weights->pointwise_kernel,
                     .bias = weights->bias,
                     .out = output};
        cb_fix_padded_borders(&e, mid);
    }
    cb_free(mid);
    cb_free(owned);
    return CONVBLAS_OK;
}
