/* Timing: every candidate of a layer is run in interleaved chunks of about a tenth of the
 * budget each, round after round, so that a slow spell of the (noisy, shared) machine
 * spreads over all of them instead of landing on one. Each sample is one call. */
#include "bench.h"

#include <stdlib.h>
#include <time.h>

enum { MAX_SAMPLES = 1 << 20, CHUNKS = 10 };

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool push(timed *t, double s) {
    if (t->count == t->cap) {
        if (t->cap >= MAX_SAMPLES) return false;
        int cap = t->cap ? 2 * t->cap : 64;
        double *p = realloc(t->samples, (size_t)cap * sizeof *p);
        if (!p) return false;
        t->samples = p;
        t->cap = cap;
    }
    t->samples[t->count++] = s;
    t->total += s;
    return true;
}

/* One timed call; false when it failed or no more samples fit. */
static bool sample(timed *t) {
    double t0 = now_seconds();
    if (t->fn(t->ctx) != 0) {
        t->failed = true;
        return false;
    }
    return push(t, now_seconds() - t0);
}

static bool done(const timed *t, double budget, int min_reps) {
    return t->failed || t->count >= MAX_SAMPLES || (t->total >= budget && t->count >= min_reps);
}

/* Before a chunk: the previous entry's threads may still spin (XNNPACK's pthreadpool spins
 * before it sleeps; OpenMP runtimes too), and on two cores a spinning thread takes the
 * second core from this entry's worker: a 2-thread run then times like 1 thread (whisper_c1's
 * im2col_gemm at 2 threads: median 5.6 ms after the peers, 3.5 ms alone). 3 ms of sleep was
 * not enough, 20 ms is; one untimed call then brings this entry's data back to cache. */
static void settle(timed *t) {
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    if (t->fn(t->ctx) != 0) t->failed = true;
}

/* Runs one chunk of t: about budget / CHUNKS seconds, and no more than still needed. */
static void run_chunk(timed *t, double budget, int min_reps) {
    double per = t->count ? t->total / t->count : t->estimate;
    double want = budget / CHUNKS;
    if (t->total + want > budget) want = budget - t->total;
    long reps = per > 0 ? (long)(want / per) : 1;
    if (reps < 1) reps = 1;
    if (t->total >= budget && reps > min_reps - t->count) reps = min_reps - t->count;
    settle(t);
    for (long r = 0; r < reps && sample(t); r++) {
    }
}

void time_interleaved(timed *items, int n, double budget, int min_reps) {
    for (int i = 0; i < n; i++) { /* warm-up: caches, BLAS buffers, page faults */
        double t0 = now_seconds();
        items[i].failed = items[i].fn(items[i].ctx) != 0;
        items[i].estimate = now_seconds() - t0;
    }
    for (bool pending = true; pending;) {
        pending = false;
        for (int i = 0; i < n; i++) {
            if (done(&items[i], budget, min_reps)) continue;
            run_chunk(&items[i], budget, min_reps);
            pending = pending || !done(&items[i], budget, min_reps);
        }
    }
}

void timed_free(timed *t) {
    free(t->samples);
    t->samples = NULL;
    t->count = t->cap = 0;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void timed_stats(timed *t, double *median, double *min, double *max) {
    if (t->count == 0) {
        *median = *min = *max = 0;
        return;
    }
    qsort(t->samples, (size_t)t->count, sizeof *t->samples, compare);
    int n = t->count;
    *median = n % 2 ? t->samples[n / 2] : 0.5 * (t->samples[n / 2 - 1] + t->samples[n / 2]);
    *min = t->samples[0];
    *max = t->samples[n - 1];
}
