/* Version and build configuration. */
#include "convblas_internal.h"

#include "convblas_config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

const char *convblas_version(void) {
    return CONVBLAS_VERSION;
}

static char info[768];
static pthread_once_t info_once = PTHREAD_ONCE_INIT;

static void fill_info(void) {
    char spin[48];
    snprintf(spin, sizeof spin, ", idle workers spin %d us", CONVBLAS_SPIN_US);
    int n = snprintf(info, sizeof info,
                     "convblas %s; BLAS: %s; threads: %s, default %d (0 = all CPUs)%s; "
                     "planner: %s; workspace limit %llu bytes; tile %llu bytes; strategies:",
                     CONVBLAS_VERSION, cb_blas_description(), CONVBLAS_THREADING,
                     CONVBLAS_DEFAULT_THREADS, CONVBLAS_USE_OPENMP ? "" : spin,
                     CONVBLAS_DEFAULT_PLANNER_MODE == CONVBLAS_MEASURE ? "measure" : "estimate",
                     (unsigned long long)CONVBLAS_DEFAULT_WORKSPACE_LIMIT,
                     (unsigned long long)CONVBLAS_TILE_BYTES);
    for (int i = 0; i < cb_strategy_total && n > 0 && (size_t)n < sizeof info; i++)
        n += snprintf(info + n, sizeof info - (size_t)n, " %s", cb_strategies[i]->name);
}

const char *convblas_build_info(void) {
    pthread_once(&info_once, fill_info);
    return info;
}
