/* The library's allocations. Built with CONVBLAS_FAULT_INJECTION (the test library only),
 * the n-th allocation of this thread can be made to fail, so tests can reach every
 * out-of-memory path. */
#include "convblas_internal.h"

#include <stdlib.h>

#ifdef CONVBLAS_FAULT_INJECTION
#include "fault_injection.h"

static _Thread_local int64_t fail_at = -1; /* the allocation number that fails; -1 none */
static _Thread_local int64_t count;

void cb_fault_fail_nth(int64_t n) {
    fail_at = n;
    count = 0;
}
int64_t cb_fault_allocations(void) {
    return count;
}

static bool injected_failure(void) {
    int64_t n = count++;
    return fail_at >= 0 && n == fail_at;
}
#else
static bool injected_failure(void) {
    return false;
}
#endif

void *cb_malloc(size_t bytes) {
    if (injected_failure()) return NULL;
    return malloc(bytes ? bytes : 1);
}

void *cb_calloc(size_t count_, size_t size) {
    if (injected_failure()) return NULL;
    return calloc(count_ ? count_ : 1, size ? size : 1);
}

void cb_free(void *ptr) {
    free(ptr);
}
