/* The suite's summary: the planner's regret per row (time of its pick / time of the fastest
 * strategy, both forced timings, so that noise alone does not show as regret), and
 * convblas against the best peer, per thread count. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, compare);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static const char *pick(const row_result *r, int entry) {
    const char *s = r->entries[entry].strategy;
    return s[0] ? s : "-";
}

static void print_row(FILE *f, const row_result *r) {
    char peer[64] = "-", ratio[16] = "-";
    if (r->best_peer >= 0) {
        snprintf(peer, sizeof peer, "%s", r->entries[r->best_peer].label);
        snprintf(ratio, sizeof ratio, "%.2f", r->cb_over_best_peer);
    }
    fprintf(f, "  %-16s %3d  %-20s %6.2f  %-20s %6.2f  %-20s %-8s %7s\n", r->layer->name,
            r->threads, pick(r, r->estimate), r->estimate_regret, pick(r, r->measure),
            r->measure_regret, r->fastest >= 0 ? r->entries[r->fastest].label : "-", peer, ratio);
}

/* Median and worst of the regrets (> 0) of the rows at `threads`. */
static void regret_line(FILE *f, const row_result *rows, int count, int threads, bool estimate,
                        double *v) {
    int n = 0, worst = -1;
    for (int i = 0; i < count; i++) {
        if (rows[i].threads != threads) continue;
        double x = estimate ? rows[i].estimate_regret : rows[i].measure_regret;
        if (x <= 0) continue;
        v[n++] = x;
        double w = worst < 0  ? 0
                   : estimate ? rows[worst].estimate_regret
                              : rows[worst].measure_regret;
        if (x > w) worst = i;
    }
    if (n == 0) return;
    double worst_value = v[0];
    for (int i = 1; i < n; i++) worst_value = v[i] > worst_value ? v[i] : worst_value;
    fprintf(f, "  threads %d, %s regret: median %.2f, worst %.2f (%s), over %d rows\n", threads,
            estimate ? "ESTIMATE" : "MEASURE ", median_of(v, n), worst_value,
            rows[worst].layer->name, n);
}

static void peer_line(FILE *f, const row_result *rows, int count, int threads) {
    double log_sum = 0;
    int n = 0, wins = 0;
    for (int i = 0; i < count; i++) {
        if (rows[i].threads != threads || rows[i].cb_over_best_peer <= 0) continue;
        log_sum += log(rows[i].cb_over_best_peer);
        wins += rows[i].cb_over_best_peer < 1;
        n++;
    }
    if (n == 0) {
        fprintf(f, "  threads %d, convblas / best peer: no row with a peer\n", threads);
        return;
    }
    fprintf(f,
            "  threads %d, convblas (ESTIMATE plan) / best peer: geometric mean %.2f over "
            "%d rows (convblas faster on %d)\n",
            threads, exp(log_sum / n), n, wins);
}

void report_summary(FILE *f, const row_result *rows, int count) {
    double *v = malloc((size_t)(count > 0 ? count : 1) * sizeof *v);
    if (!v) return;
    fprintf(f, "== Summary: regret = time of the planner's pick / time of the fastest strategy "
               "(forced timings); cb/peer = ESTIMATE plan / best peer\n");
    fprintf(f, "  %-16s %3s  %-20s %6s  %-20s %6s  %-20s %-8s %7s\n", "row", "thr", "ESTIMATE pick",
            "regret", "MEASURE pick", "regret", "fastest", "best peer", "cb/peer");
    for (int i = 0; i < count; i++) print_row(f, &rows[i]);
    fprintf(f, "\n");
    for (int i = 0; i < count; i++) {
        bool first = true; /* one block per thread count, in the order first seen */
        for (int j = 0; j < i && first; j++) first = rows[j].threads != rows[i].threads;
        if (!first) continue;
        regret_line(f, rows, count, rows[i].threads, true, v);
        regret_line(f, rows, count, rows[i].threads, false, v);
        peer_line(f, rows, count, rows[i].threads);
    }
    free(v);
}
