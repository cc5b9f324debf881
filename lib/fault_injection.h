/* Test-only hooks, present in the library built with CONVBLAS_FAULT_INJECTION. */
#ifndef CONVBLAS_FAULT_INJECTION_H
#define CONVBLAS_FAULT_INJECTION_H

#include <stdint.h>

/* From now on, this thread's allocation number n (0-based) fails; -1 disables. Resets the
 * count. */
void cb_fault_fail_nth(int64_t n);
/* Allocations this thread made since the last cb_fault_fail_nth. */
int64_t cb_fault_allocations(void);

#endif
