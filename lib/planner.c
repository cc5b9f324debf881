/* Plan creation: resolve the options, ask every strategy whether it can run the problem
 * and at what cost, and keep the choice with the reasons for every other strategy. */
#include "plan.h"
#include "wisdom.h"

#include "convblas_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVALID CONVBLAS_INVALID_ARGUMENT

static convblas_status resolve_threads(const convblas_plan_options *o, int *threads) {
    if (o->threads < 0)
        return cb_fail(INVALID, "threads (%d) must be >= 0 (0 means the default)", o->threads);
    if (o->threads > 0) {
        *threads = o->threads;
        return CONVBLAS_OK;
    }
    const char *env = getenv("CONVBLAS_NUM_THREADS");
    if (env && *env) {
        char *end;
        errno = 0;
        long v = strtol(env, &end, 10);
        if (errno || *end || v < 1 || v > 4096)
            return cb_fail(INVALID,
                           "CONVBLAS_NUM_THREADS (\"%s\") must be an integer from 1 "
                           "to 4096",
                           env);
        *threads = (int)v;
        return CONVBLAS_OK;
    }
    *threads = CONVBLAS_DEFAULT_THREADS > 0 ? CONVBLAS_DEFAULT_THREADS : cb_online_cpus();
    return CONVBLAS_OK;
}

static int find_strategy(const char *name) {
    for (int i = 0; i < cb_strategy_total; i++)
        if (strcmp(cb_strategies[i]->name, name) == 0) return i;
    return -1;
}

static convblas_status unknown_strategy(const char *name, const char *source) {
    char list[512] = "";
    for (int i = 0; i < cb_strategy_total; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, cb_strategies[i]->name, sizeof list - strlen(list) - 1);
    }
    return cb_fail(INVALID, "strategy \"%s\" (from %s) is not one of this build's: %s", name,
                   source, list);
}

/* The forced strategy, if any: options.strategy wins over CONVBLAS_STRATEGY. */
static convblas_status resolve_forced(const convblas_plan_options *o, int *forced,
                                      const char **source) {
    const char *name = o->strategy;
    *source = "options.strategy";
    if (!name) {
        name = getenv("CONVBLAS_STRATEGY");
        *source = "CONVBLAS_STRATEGY";
        if (name && !*name) name = NULL;
    }
    *forced = -1;
    if (!name) {
        *source = NULL;
        return CONVBLAS_OK;
    }
    *forced = find_strategy(name);
    return *forced < 0 ? unknown_strategy(name, *source) : CONVBLAS_OK;
}

/* Floats left unused after each worker's slice where several workers run. A hardware
 * prefetcher that learns a load's stride (a ring's rows, 8 blocks of columns) runs several
 * strides past the end of the worker's slice, into the next worker's, and takes the lines
 * that worker is writing: the second worker of mbv1_dw56 ran its task in 27 us against the
 * first's 18 (2 threads, Zen 4), and both in 18 with 16384 floats between the slices
 * (mbv1_dw112: 37 and 19 us; mbv2_dw56: 455 and 316). Twice that, for wider rows. */
enum { WORKER_GUARD_FLOATS = 1 << 15 };

/* Fits the strategy into the workspace limit: fewer workers first, then smaller tiles. */
static bool fit_workspace(const cb_strategy *s, const cb_problem *p, const cb_tuning *t,
                          cb_candidate *c) {
    cb_tuning local = *t;
    size_t max_floats = t->workspace_limit / sizeof(float);
    for (;;) {
        c->params = (cb_params){0};
        s->configure(p, &local, &c->params);
        int threads = (int)cb_min(t->threads, cb_max(c->params.tasks, 1));
        size_t per = c->params.worker_floats; /* floats, compared before any product */
        size_t shared = c->params.shared_floats,
               room = shared <= max_floats ? max_floats - shared : 0;
        /* With the guard where the limit holds a guarded slice for every worker (rather
         * than a worker fewer). */
        size_t guarded = room / (size_t)threads;
        if (threads > 1 && per > 0 && guarded >= WORKER_GUARD_FLOATS &&
            per <= guarded - WORKER_GUARD_FLOATS)
            per += WORKER_GUARD_FLOATS;
        /* As many workers as the limit holds slices for (not a count-down from a huge
         * thread count). */
        if (per > 0 && per <= room && room / per < (size_t)threads) threads = (int)(room / per);
        if (shared <= max_floats && per <= room / (size_t)threads) {
            c->params.threads = threads;
            c->params.worker_stride = threads > 1 ? per : c->params.worker_floats;
            c->params.workspace =
                (shared + c->params.worker_stride * (size_t)threads) * sizeof(float);
            return true;
        }
        if (c->params.tile <= 1 || local.tile_bytes < 2 * sizeof(float)) break;
        local.tile_bytes /= 2;
    }
    snprintf(c->reason, sizeof c->reason,
             "needs %.4g bytes of workspace for its smallest tile, over the limit of %zu",
             ((double)c->params.shared_floats + (double)c->params.worker_floats) * sizeof(float),
             t->workspace_limit);
    return false;
}

static void evaluate(convblas_plan *plan) {
    cb_machine_calibrate(); /* once per process: the cost model's constants */
    const cb_problem *p = &plan->problem;
    for (int i = 0; i < cb_strategy_total; i++) {
        cb_candidate *c = &plan->candidates[i];
        const cb_strategy *s = cb_strategies[i];
        c->usable =
            s->applicable(p, c->reason, sizeof c->reason) && fit_workspace(s, p, &plan->tuning, c);
        if (c->usable) c->estimate = s->cost(p, &c->params);
    }
}

static double score(const convblas_plan *plan, int i) {
    const cb_candidate *c = &plan->candidates[i];
    return plan->mode == CONVBLAS_MEASURE && c->measured > 0 ? c->measured : c->estimate;
}

/* Best and second best usable candidates by score. */
static void rank_candidates(convblas_plan *plan) {
    plan->chosen = plan->runner_up = -1;
    for (int i = 0; i < cb_strategy_total; i++) {
        if (!plan->candidates[i].usable) continue;
        if (plan->chosen < 0 || score(plan, i) < score(plan, plan->chosen)) {
            plan->runner_up = plan->chosen;
            plan->chosen = i;
        } else if (plan->runner_up < 0 || score(plan, i) < score(plan, plan->runner_up)) {
            plan->runner_up = i;
        }
    }
}

static convblas_status nothing_usable(const convblas_plan *plan) {
    char text[1024];
    int used = 0;
    for (int i = 0; i < cb_strategy_total && used < (int)sizeof text; i++)
        used += snprintf(text + used, sizeof text - (size_t)used, "%s%s: %s", i ? "; " : "",
                         cb_strategies[i]->name, plan->candidates[i].reason);
    return cb_fail(CONVBLAS_UNSUPPORTED,
                   "no strategy can run this layer (workspace limit %zu "
                   "bytes): %s",
                   plan->tuning.workspace_limit, text);
}

/* Strategy s, whatever the ranking; the best of the others is the runner-up. */
static void take(convblas_plan *plan, int s) {
    rank_candidates(plan);
    if (plan->chosen != s) plan->runner_up = plan->chosen;
    plan->chosen = s;
}

/* Forced beats wisdom, and wisdom (in either mode) beats estimating or timing anew. */
static convblas_status choose(convblas_plan *plan, int forced) {
    if (forced >= 0) {
        const cb_candidate *c = &plan->candidates[forced];
        if (!c->usable)
            return cb_fail(CONVBLAS_UNSUPPORTED,
                           "strategy %s (forced by %s) cannot run this "
                           "layer: %s",
                           cb_strategies[forced]->name, plan->forced_by, c->reason);
        take(plan, forced);
        return CONVBLAS_OK;
    }
    int remembered = cb_wisdom_recall(plan);
    if (remembered >= 0) {
        take(plan, remembered);
        return CONVBLAS_OK;
    }
    if (plan->mode == CONVBLAS_MEASURE) {
        convblas_status st = cb_measure_candidates(plan);
        if (st) return st;
    }
    rank_candidates(plan);
    if (plan->chosen < 0) return nothing_usable(plan);
    if (plan->mode == CONVBLAS_MEASURE) cb_wisdom_record(plan);
    return CONVBLAS_OK;
}

static convblas_status init_plan(convblas_plan *plan, const convblas_layer_desc *desc,
                                 const convblas_shape *input, const convblas_plan_options *o,
                                 int *forced) {
    convblas_status st = cb_problem_init(&plan->problem, desc, input);
    if (st) return st;
    if (o->mode != CONVBLAS_ESTIMATE && o->mode != CONVBLAS_MEASURE)
        return cb_fail(INVALID,
                       "options.mode (%d) must be CONVBLAS_ESTIMATE or "
                       "CONVBLAS_MEASURE",
                       (int)o->mode);
    if ((st = resolve_threads(o, &plan->tuning.threads))) return st;
    if ((st = resolve_forced(o, forced, &plan->forced_by))) return st;
    plan->mode = o->mode;
    plan->tuning.workspace_limit =
        o->workspace_limit ? o->workspace_limit : (size_t)CONVBLAS_DEFAULT_WORKSPACE_LIMIT;
    plan->tuning.tile_bytes = CONVBLAS_TILE_BYTES;
    evaluate(plan);
    return choose(plan, *forced);
}

convblas_status convblas_plan_create(convblas_plan **plan, const convblas_layer_desc *desc,
                                     const convblas_shape *input,
                                     const convblas_plan_options *options) {
    if (!plan) return cb_fail(INVALID, "plan (where the new plan is stored) is NULL");
    *plan = NULL;
    const convblas_plan_options defaults = {.mode = CONVBLAS_DEFAULT_PLANNER_MODE};
    /* Planned on the stack, so that bad input is reported before any allocation. */
    convblas_plan local;
    memset(&local, 0, sizeof local);
    int forced;
    convblas_status st = init_plan(&local, desc, input, options ? options : &defaults, &forced);
    if (st) return st;
    convblas_plan *p = cb_malloc(sizeof *p);
    if (!p)
        return cb_fail(CONVBLAS_OUT_OF_MEMORY,
                       "out of memory allocating a plan (%zu "
                       "bytes)",
                       sizeof *p);
    *p = local;
    *plan = p;
    return CONVBLAS_OK;
}

void convblas_plan_destroy(convblas_plan *plan) {
    cb_free(plan);
}

size_t convblas_plan_workspace_size(const convblas_plan *plan) {
    return plan ? plan->candidates[plan->chosen].params.workspace : 0;
}

const char *convblas_plan_strategy(const convblas_plan *plan) {
    return plan ? cb_strategies[plan->chosen]->name : NULL;
}
