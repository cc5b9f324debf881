/* The only file that includes the CBLAS header: every BLAS call and setting goes here. */
#include "convblas_internal.h"

#include "convblas_config.h"

#include <cblas.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>

void cb_sgemm(cb_trans ta, cb_trans tb, int64_t m, int64_t n, int64_t k, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, ta == CB_TRANS ? CblasTrans : CblasNoTrans,
                tb == CB_TRANS ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a,
                (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

int64_t cb_blas_int_max(void) {
    return INT_MAX;
}

#ifdef CONVBLAS_HAVE_OPENBLAS_THREADS
/* OpenBLAS's thread count is process-wide. While any convblas call runs its own workers,
 * it is 1 (each GEMM on the worker that issues it: no oversubscription); the first call in
 * saves the caller's value and the last call out restores it. */
static pthread_mutex_t serial_lock = PTHREAD_MUTEX_INITIALIZER;
static int serial_depth;
static int serial_saved;

void cb_blas_serial_enter(void) {
    pthread_mutex_lock(&serial_lock);
    if (serial_depth++ == 0) {
        serial_saved = openblas_get_num_threads();
        if (serial_saved != 1) openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&serial_lock);
}

void cb_blas_serial_leave(void) {
    pthread_mutex_lock(&serial_lock);
    if (--serial_depth == 0 && serial_saved != 1) openblas_set_num_threads(serial_saved);
    pthread_mutex_unlock(&serial_lock);
}

static char description[200];
static pthread_once_t description_once = PTHREAD_ONCE_INIT;

static void describe_blas(void) {
    snprintf(description, sizeof description, "OpenBLAS (%s), core %s", openblas_get_config(),
             openblas_get_corename());
}

const char *cb_blas_description(void) {
    pthread_once(&description_once, describe_blas);
    return description;
}
#else
/* A generic CBLAS has no thread control: it is expected to be single-threaded (or its own
 * environment variable set so), as the README says. */
void cb_blas_serial_enter(void) {}
void cb_blas_serial_leave(void) {}
const char *cb_blas_description(void) {
    return CONVBLAS_BLAS_NAME " (generic CBLAS)";
}
#endif
