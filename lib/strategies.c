/* The strategy table: the planner, the tests and the bench all read this one list.
 * Adding a lowering is one file and one line here. */
#include "convblas_internal.h"

extern const cb_strategy cb_im2col_gemm;
extern const cb_strategy cb_pointwise_gemm;
extern const cb_strategy cb_depthwise_direct;
extern const cb_strategy cb_tap_gemm;

const cb_strategy *const cb_strategies[] = {
    &cb_im2col_gemm,
    &cb_pointwise_gemm,
    &cb_depthwise_direct,
    &cb_tap_gemm,
};
const int cb_strategy_total = (int)(sizeof cb_strategies / sizeof cb_strategies[0]);

int convblas_strategy_count(void) {
    return cb_strategy_total;
}

const char *convblas_strategy_name(int index) {
    return index >= 0 && index < cb_strategy_total ? cb_strategies[index]->name : NULL;
}
