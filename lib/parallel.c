/* A parallel loop over independent tasks on short-lived threads. */
#include "convblas_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

typedef struct loop {
    void (*fn)(void *ctx, int worker, int64_t task);
    void *ctx;
    int64_t tasks;
    atomic_int_fast64_t next;
} loop;

typedef struct worker_arg {
    loop *l;
    int worker;
} worker_arg;

static void work(loop *l, int worker) {
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&l->next, 1, memory_order_relaxed);
        if (t >= l->tasks) return;
        l->fn(l->ctx, worker, t);
    }
}

static void *worker_main(void *arg) {
    worker_arg *w = arg;
    work(w->l, w->worker);
    return NULL;
}

enum { MAX_WORKERS = 256 };

void cb_parallel_for(int workers, int64_t tasks, void (*fn)(void *, int, int64_t),
                     void *ctx) {
    loop l = {.fn = fn, .ctx = ctx, .tasks = tasks};
    atomic_init(&l.next, 0);
    if (workers > MAX_WORKERS) workers = MAX_WORKERS;
    if (workers > tasks) workers = (int)tasks;
    pthread_t ids[MAX_WORKERS];
    worker_arg args[MAX_WORKERS];
    int started = 0;
    /* A thread that cannot be created is not an error: the remaining workers (the caller
     * at least) take its tasks. */
    for (int w = 1; w < workers; w++) {
        args[started] = (worker_arg){&l, w};
        if (pthread_create(&ids[started], NULL, worker_main, &args[started]) != 0) break;
        started++;
    }
    work(&l, 0);
    for (int i = 0; i < started; i++) pthread_join(ids[i], NULL);
}

int cb_online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}
