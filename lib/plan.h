/* The plan object, shared by planner.c, describe.c, measure.c and execute.c. */
#ifndef CONVBLAS_PLAN_H
#define CONVBLAS_PLAN_H

#include "convblas_internal.h"

enum { CB_MAX_STRATEGIES = 16, CB_REASON_SIZE = 192 };

/* What the planner found for one strategy. */
typedef struct cb_candidate {
    bool usable;
    cb_params params;
    double estimate;             /* seconds, cost model */
    double measured;             /* seconds, MEASURE only; 0 when not timed */
    char reason[CB_REASON_SIZE]; /* why not usable */
} cb_candidate;

struct convblas_plan {
    cb_problem problem;
    cb_tuning tuning;
    convblas_planner_mode mode;
    const char *forced_by; /* "options.strategy", "CONVBLAS_STRATEGY" or NULL */
    bool from_wisdom;      /* chosen was remembered (wisdom.c), not estimated or timed now */
    double wisdom_seconds; /* from_wisdom: what the remembered choice measured back then */
    int chosen;
    int runner_up; /* -1 when none */
    cb_candidate candidates[CB_MAX_STRATEGIES];
};

/* MEASURE: times every usable candidate on the plan's own shape (random data) and stores
 * the medians in candidates[].measured. */
convblas_status cb_measure_candidates(convblas_plan *plan);

/* Runs strategy index s of plan with the given operands (execute's core, used by
 * MEASURE too). workspace must hold the candidate's workspace. */
void cb_run_strategy(const convblas_plan *plan, int s, const float *in, const convblas_weights *w,
                     float *out, void *workspace);

#endif
