/* The strategy table: the planner, the tests and the bench all read this one list.
 * Adding a lowering is one file (lib/<name>.c, defining cb_<name>) and its name in
 * the strategies option of meson_options.txt. */
#include "convblas_internal.h"

#include "convblas_strategy_list.h"

/* The list comes from -Dstrategies (meson_options.txt), through the generated header. */
#define CB_STRATEGY(name) extern const cb_strategy cb_##name;
CB_STRATEGY_LIST
#undef CB_STRATEGY

const cb_strategy *const cb_strategies[] = {
#define CB_STRATEGY(name) &cb_##name,
    CB_STRATEGY_LIST
#undef CB_STRATEGY
};
const int cb_strategy_total = (int)(sizeof cb_strategies / sizeof cb_strategies[0]);

int convblas_strategy_count(void) {
    return cb_strategy_total;
}

const char *convblas_strategy_name(int index) {
    return index >= 0 && index < cb_strategy_total ? cb_strategies[index]->name : NULL;
}
