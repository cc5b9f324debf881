/* The public header compiles on its own in C: it is the first and only include. */
#include <convblas.h>

int main(void) {
    convblas_layer_desc desc = {.op = CONVBLAS_CONV, .rank = 1, .filters = 4, .kernel_size = {3}};
    convblas_shape in = {.batch = 1, .spatial = {8}, .channels = 2}, out;
    convblas_weights weights = {0};
    convblas_plan_options options = {.mode = CONVBLAS_ESTIMATE};
    convblas_plan *plan = (convblas_plan *)0;
    (void)weights;
    (void)options;
    (void)plan;
    if (convblas_output_shape(&desc, &in, &out) != CONVBLAS_OK || out.spatial[0] != 6) return 1;
    if (convblas_last_error() == (const char *)0) return 1;
    return convblas_strategy_count() > 0 ? 0 : 1;
}
