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
#define _GNU_SOURCE /* sched_getcpu, sched_setaffinity (Linux) */
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

/* A loop is handed over without the lock: the caller sets job and pending, then publishes
 * a new ticket (a generation number and the count of workers taking part, in one word so
 * that no worker reads one without the other); a spinning worker that sees it goes to
 * work. The lock and the condition variables serve only threads that stopped spinning
 * (sleepers and caller_waits say whether one has). Taking the lock on every hand-off let a
 * worker that saw the new loop while the caller still held the lock sleep in the kernel
 * until the caller let go. */
enum { TICKET_WORKERS = 1 << 16 }; /* ticket = generation * TICKET_WORKERS + workers */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    int size;                    /* pool threads started (worker indices 1..size); locked */
    atomic_bool busy;            /* a loop owns the pool */
    atomic_uint_fast64_t ticket; /* workers 0..ticket % TICKET_WORKERS - 1 take part */
    _Atomic(loop *) job;         /* stays until every worker taking part is done */
    atomic_int pending;          /* pool workers of this loop not yet done */
    atomic_int sleepers;         /* workers waiting on wake */
    atomic_bool caller_waits;    /* the caller waits on done */
    atomic_int caller_cpu;       /* where the caller published the loop; -1: unknown */
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spins until changed() or CONVBLAS_SPIN_US have passed; returns changed(). It looks
 * PAUSES times between yields of the CPU: a look per yield (half a microsecond a yield
 * in a VM) made every hand-off 1.5 us late; no yield at all would starve the thread
 * waited for when the machine is oversubscribed and it needs this core (a caller spinning
 * while its descheduled worker held the last task made a 60 us layer take 300 us on a
 * loaded 2-core machine). */
enum { PAUSES = 64 };

static bool spin_until(bool (*changed)(uint64_t), uint64_t arg) {
    uint64_t end = now_ns() + (uint64_t)CONVBLAS_SPIN_US * 1000u;
    for (unsigned i = 0;; i++) {
        for (int k = 0; k < PAUSES; k++) {
            if (changed(arg)) return true;
            cpu_relax();
        }
        if (i % 4 == 3 && now_ns() >= end) return false;
        sched_yield();
    }
}

static bool new_ticket(uint64_t seen) {
    return atomic_load(&pool.ticket) != seen;
}

static bool workers_done(uint64_t unused) {
    (void)unused;
    return atomic_load(&pool.pending) == 0;
}

/* Waits for a ticket other than `seen`: spinning, then asleep. sleepers and ticket are
 * sequentially consistent, so a caller who publishes a ticket either is seen here before
 * this thread sleeps or sees the sleeper and wakes it. */
static uint64_t next_ticket(uint64_t seen) {
    if (!spin_until(new_ticket, seen)) {
        pthread_mutex_lock(&pool.lock);
        atomic_fetch_add(&pool.sleepers, 1);
        while (atomic_load(&pool.ticket) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
        atomic_fetch_sub(&pool.sleepers, 1);
        pthread_mutex_unlock(&pool.lock);
    }
    return atomic_load(&pool.ticket);
}

static int current_cpu(void) {
#ifdef __linux__
    return sched_getcpu();
#else
    return -1;
#endif
}

/* Moves a worker off the caller's CPU. Linux wakes a sleeping thread on its waker's CPU
 * when it judges that cheaper: measured here, 95 to 100 wakes in 100 put the worker beside
 * the caller with the other CPU idle, and the two then shared one core for the whole
 * loop (a 2-thread MobileNet layer at 1-thread speed). Leaving the caller's CPU out of the
 * mask for a moment makes the kernel move the worker; the mask is then restored. */
static void leave_caller_cpu(void) {
#ifdef __linux__
    int here = current_cpu();
    if (here < 0 || here != atomic_load(&pool.caller_cpu)) return;
    cpu_set_t all, others;
    if (sched_getaffinity(0, sizeof all, &all) != 0) return;
    others = all;
    CPU_CLR(here, &others);
    if (CPU_COUNT(&others) == 0) return;
    if (sched_setaffinity(0, sizeof others, &others) == 0) sched_setaffinity(0, sizeof all, &all);
#endif
}

static void *pool_worker(void *arg) {
    int self = (int)(intptr_t)arg;
    uint64_t seen = 0;
    for (;;) {
        seen = next_ticket(seen);
        if (self >= (int)(seen % TICKET_WORKERS)) continue;
        leave_caller_cpu();
        work(atomic_load(&pool.job), self);
        /* The last one wakes the caller if it stopped spinning (as in next_ticket). */
        if (atomic_fetch_sub(&pool.pending, 1) == 1 && atomic_load(&pool.caller_waits)) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.lock);
        }
    }
    return NULL;
}

/* Grows the pool towards `want` threads; returns how many it has. A new thread's index is
 * above every earlier ticket's count, so the ticket it first sees does not include it. */
static int grow_pool(int want) {
    pthread_mutex_lock(&pool.lock);
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
    int size = pool.size;
    pthread_mutex_unlock(&pool.lock);
    return size;
}

static void wait_for_workers(void) {
    if (spin_until(workers_done, 0)) return;
    pthread_mutex_lock(&pool.lock);
    atomic_store(&pool.caller_waits, true);
    while (atomic_load(&pool.pending) > 0) pthread_cond_wait(&pool.done, &pool.lock);
    atomic_store(&pool.caller_waits, false);
    pthread_mutex_unlock(&pool.lock);
}

static void run_parallel(loop *l, int workers) {
    if (atomic_exchange(&pool.busy, true)) {
        run_on_own_threads(l, workers);
        return;
    }
    int helpers = grow_pool(workers - 1);
    if (helpers > workers - 1) helpers = workers - 1;
    atomic_store(&pool.job, l);
    atomic_store(&pool.pending, helpers);
    atomic_store(&pool.caller_cpu, current_cpu());
    uint64_t generation = atomic_load(&pool.ticket) / TICKET_WORKERS + 1;
    atomic_store(&pool.ticket, generation * TICKET_WORKERS + (uint64_t)(helpers + 1));
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    work(l, 0);
    wait_for_workers();
    atomic_store(&pool.busy, false);
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
