/* A parallel loop over independent tasks. Workers come from a process-wide pool that
 * grows to the largest count asked for (creating threads per call costs more than a small
 * layer takes). Between loops a worker first spins for CONVBLAS_SPIN_US microseconds
 * (-Dworker_spin_us), then sleeps on a condition variable: waking a sleeping thread costs
 * 5-20 us, a third of a 60 us MobileNet layer, while layers run back to back in a network
 * find the workers still spinning. The caller likewise spins briefly before sleeping
 * while it waits for the last worker. A loop that finds the pool busy with
 * another caller's loop runs on threads of its own instead, so concurrent executes never
 * wait for each other. With -Dopenmp=enabled the loop is an OpenMP parallel region
 * instead, for programs that want one thread runtime. */
#include "convblas_internal.h"

#include "convblas_config.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

typedef struct loop {
    void (*fn)(void *ctx, int worker, int64_t task);
    void *ctx;
    int64_t tasks;
    atomic_int_fast64_t next;
} loop;

static void work(loop *l, int worker) {
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&l->next, 1, memory_order_relaxed);
        if (t >= l->tasks) return;
        l->fn(l->ctx, worker, t);
    }
}

enum { MAX_WORKERS = 256 };

#if CONVBLAS_USE_OPENMP
#include <omp.h>

static void run_parallel(loop *l, int workers) {
    /* Thread numbers are unique within the team, so they select workspace slices; a
     * caller already inside a parallel region gets a team of one (no nesting). */
#pragma omp parallel num_threads(workers)
    work(l, omp_get_thread_num());
}

#else

/* ---- threads of one call --------------------------------------------------------- */

typedef struct worker_arg {
    loop *l;
    int worker;
} worker_arg;

static void *own_worker(void *arg) {
    worker_arg *w = arg;
    work(w->l, w->worker);
    return NULL;
}

static void run_on_own_threads(loop *l, int workers) {
    pthread_t ids[MAX_WORKERS];
    worker_arg args[MAX_WORKERS];
    int started = 0;
    /* A thread that cannot be created is not an error: the others take its tasks. */
    for (int w = 1; w < workers; w++) {
        args[started] = (worker_arg){l, w};
        if (pthread_create(&ids[started], NULL, own_worker, &args[started]) != 0) break;
        started++;
    }
    work(l, 0);
    for (int i = 0; i < started; i++) pthread_join(ids[i], NULL);
}

/* ---- the pool ------------------------------------------------------------------------ */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    int size;                        /* pool threads started (worker indices 1..size) */
    bool busy;                       /* a loop owns the pool */
    atomic_uint_fast64_t generation; /* bumped for every loop; read unlocked by spinners */
    loop *job;
    int job_workers;    /* workers 0..job_workers-1 take part */
    atomic_int pending; /* pool workers of this loop not yet finished */
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Spins until changed() or CONVBLAS_SPIN_US have passed; returns changed(). It yields the
 * CPU between looks: when the machine is oversubscribed, the thread waited for may be the
 * one that needs this core (a caller spinning while its descheduled worker held the last
 * task made a 60 us layer take 300 us on a loaded 2-core machine). */
static bool spin_until(bool (*changed)(uint64_t), uint64_t arg) {
    uint64_t end = now_ns() + (uint64_t)CONVBLAS_SPIN_US * 1000u;
    for (unsigned i = 0;; i++) {
        if (changed(arg)) return true;
        if (i % 16 == 15 && now_ns() >= end) return false;
        sched_yield();
    }
}

static bool new_generation(uint64_t seen) {
    return atomic_load_explicit(&pool.generation, memory_order_acquire) != seen;
}

static bool workers_done(uint64_t unused) {
    (void)unused;
    return atomic_load_explicit(&pool.pending, memory_order_acquire) == 0;
}

static void *pool_worker(void *arg) {
    int self = (int)(intptr_t)arg;
    uint64_t seen = 0;
    for (;;) {
        spin_until(new_generation, seen);
        pthread_mutex_lock(&pool.lock);
        while (atomic_load(&pool.generation) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
        seen = atomic_load(&pool.generation);
        bool member = self < pool.job_workers;
        loop *l = pool.job;
        pthread_mutex_unlock(&pool.lock);
        if (!member) continue;
        work(l, self);
        pthread_mutex_lock(&pool.lock);
        if (atomic_fetch_sub(&pool.pending, 1) == 1) pthread_cond_signal(&pool.done);
        pthread_mutex_unlock(&pool.lock);
    }
    return NULL;
}

/* Grows the pool towards `want` threads; returns how many it has. Called with the lock. */
static int grow_pool(int want) {
    while (pool.size < want) {
        pthread_t id;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&id, &attr, pool_worker, (void *)(intptr_t)(pool.size + 1));
        pthread_attr_destroy(&attr);
        if (failed) break;
        pool.size++;
    }
    return pool.size;
}

static void run_parallel(loop *l, int workers) {
    pthread_mutex_lock(&pool.lock);
    if (pool.busy) {
        pthread_mutex_unlock(&pool.lock);
        run_on_own_threads(l, workers);
        return;
    }
    pool.busy = true;
    int helpers = grow_pool(workers - 1);
    if (helpers > workers - 1) helpers = workers - 1;
    pool.job = l;
    pool.job_workers = helpers + 1;
    atomic_store(&pool.pending, helpers);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    work(l, 0);
    spin_until(workers_done, 0);
    pthread_mutex_lock(&pool.lock);
    while (atomic_load(&pool.pending) > 0) pthread_cond_wait(&pool.done, &pool.lock);
    pool.busy = false;
    pthread_mutex_unlock(&pool.lock);
}

#endif

void cb_parallel_for(int workers, int64_t tasks, void (*fn)(void *, int, int64_t), void *ctx) {
    loop l = {.fn = fn, .ctx = ctx, .tasks = tasks};
    atomic_init(&l.next, 0);
    if (workers > MAX_WORKERS) workers = MAX_WORKERS;
    if (workers > tasks) workers = (int)tasks;
    if (workers <= 1) {
        work(&l, 0);
        return;
    }
    run_parallel(&l, workers);
}

int cb_online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}
