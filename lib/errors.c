/* Statuses and the per-thread last error. */
#include "convblas_internal.h"

#include <stdio.h>

/* Thread-local, so that one thread's failure never shows in another's message. */
static _Thread_local char last_error[512];

const char *convblas_status_name(convblas_status status) {
    switch (status) {
    case CONVBLAS_OK:
        return "OK";
    case CONVBLAS_INVALID_ARGUMENT:
        return "INVALID_ARGUMENT";
    case CONVBLAS_UNSUPPORTED:
        return "UNSUPPORTED";
    case CONVBLAS_OUT_OF_MEMORY:
        return "OUT_OF_MEMORY";
    case CONVBLAS_TOO_LARGE:
        return "TOO_LARGE";
    case CONVBLAS_IO_ERROR:
        return "IO_ERROR";
    }
    return "UNKNOWN";
}

const char *convblas_last_error(void) {
    return last_error;
}

convblas_status cb_fail(convblas_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

bool cb_decline(char *why, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return false;
}
