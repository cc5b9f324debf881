// The public header compiles on its own in C++11: it is the first and only include, and its
// names are usable from C++ (extern "C", no C-only syntax).
#include <convblas.h>

int main() {
    convblas_layer_desc desc = convblas_layer_desc();
    desc.op = CONVBLAS_CONV;
    desc.rank = 1;
    desc.filters = 4;
    desc.kernel_size[0] = 3;
    desc.use_bias = false;
    convblas_shape in = convblas_shape();
    in.batch = 1;
    in.spatial[0] = 8;
    in.channels = 2;
    convblas_shape out = convblas_shape();
    convblas_status st = convblas_output_shape(&desc, &in, &out);
    if (st != CONVBLAS_OK || out.spatial[0] != 6) return 1;
    convblas_plan *plan = nullptr;
    convblas_plan_options options = convblas_plan_options();
    options.mode = CONVBLAS_ESTIMATE;
    if (convblas_plan_create(&plan, &desc, &in, &options) != CONVBLAS_OK) return 1;
    const char *name = convblas_plan_strategy(plan);
    convblas_plan_destroy(plan);
    if (name == nullptr || convblas_last_error() == nullptr) return 1;
    return convblas_strategy_count() > 0 ? 0 : 1;
}
