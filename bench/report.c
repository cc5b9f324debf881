/* The readable output: the run's header (machine, library, limits) and one table per layer
 * and thread count. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void format_seconds(double s, char *buf, size_t size) {
    if (s <= 0)
        snprintf(buf, size, "-");
    else if (s < 1e-3)
        snprintf(buf, size, "%.1f us", s * 1e6);
    else if (s < 1)
        snprintf(buf, size, "%.3f ms", s * 1e3);
    else
        snprintf(buf, size, "%.3f s", s);
}

void format_bytes(double b, char *buf, size_t size) {
    if (b < 1024)
        snprintf(buf, size, "%.0f B", b);
    else if (b < 1048576)
        snprintf(buf, size, "%.1f KiB", b / 1024);
    else if (b < 1073741824.0)
        snprintf(buf, size, "%.1f MiB", b / 1048576);
    else
        snprintf(buf, size, "%.2f GiB", b / 1073741824.0);
}

static void print_peers(FILE *f) {
    const bench_peer *const *p = run_peers();
    fprintf(f, "peers:    ");
    if (!p[0]) fprintf(f, "none compiled in (meson options bench_onednn, bench_xnnpack)");
    for (int i = 0; p[i]; i++) fprintf(f, "%s%s %s", i ? ", " : "", p[i]->name, p[i]->version());
    fprintf(f, "\n");
}

static void print_limits(FILE *f, const machine_limits *m) {
    if (!m->measured) {
        fprintf(f, "limits:   not measured (--no-limits): no roofline column\n");
        return;
    }
    fprintf(f,
            "limits:   sgemm %d^3 through the BLAS; triad a=b+s*c over 3 x %.0f MiB "
            "(3 arrays counted)\n",
            m->gemm_n, m->triad_mib);
    for (int i = 0; i < m->count; i++)
        fprintf(f,
                "          threads %d: %7.1f GFLOP/s sgemm, %6.1f GB/s triad "
                "(ridge %.1f flop/B)\n",
                m->threads[i], m->gemm_gflops[i], m->triad_gbps[i],
                m->gemm_gflops[i] / m->triad_gbps[i]);
}

void report_header(FILE *f, const machine_limits *m, const run_config *cfg) {
    const char *coretype = getenv("OPENBLAS_CORETYPE");
    fprintf(f, "library:  %s\n", convblas_build_info());
    fprintf(f, "CPU:      %s, %d online\n", machine_cpu_model(), machine_online_cpus());
    fprintf(f, "OpenBLAS core: %s%s%s%s\n", machine_blas_core(),
            coretype ? "  (OPENBLAS_CORETYPE=" : "", coretype ? coretype : "",
            coretype ? " is set: benchmark with it unset)" : "");
    char env[512];
    machine_environment(env, sizeof env);
    fprintf(f, "env:      %s\n", env);
    double load = machine_load_average();
    if (load >= 0)
        fprintf(f, "load:     %.2f (1-minute average, %d CPUs)%s\n", load, machine_online_cpus(),
                load > 0.5 * machine_online_cpus()
                    ? ": the machine is busy, timings will be noisy (and OpenMP peers with "
                      "OMP_WAIT_POLICY unset slow down badly)"
                    : "");
    print_peers(f);
    print_limits(f, m);
    fprintf(f,
            "timing:   median of runs after a warm-up, >= %.2f s and >= %d runs per entry, "
            "entries interleaved; spread = min/max vs median\n",
            cfg->budget, cfg->min_reps);
    fprintf(f, "check:    every output vs strategy %s: max|y-ref| / max(1, max|ref|) <= %g\n",
            cfg->reference, cfg->tolerance);
    if (cfg->place_in < 0)
        fprintf(f, "buffers:  input and output where malloc puts them\n\n");
    else
        fprintf(f, "buffers:  input %d and output %d bytes past a 4 KiB page (--place)\n\n",
                cfg->place_in, cfg->place_out);
}

static void print_layer(FILE *f, const row_result *r) {
    const bench_layer *l = r->layer;
    const bench_data *d = r->data;
    char spec[512], bytes[32];
    spec_format(l, spec, sizeof spec);
    format_bytes(d->bytes, bytes, sizeof bytes);
    fprintf(f, "== %s, threads %d%s%s\n   %s\n", l->name, r->threads, l->source[0] ? ": " : "",
            l->source, spec);
    fprintf(f, "   output %lldx%lld", (long long)d->output.batch, (long long)d->output.spatial[0]);
    if (l->desc.rank == 2) fprintf(f, "x%lld", (long long)d->output.spatial[1]);
    fprintf(f, "x%lld; %.4g GFLOP; >= %s moved (%.1f flop/B)", (long long)d->output.channels,
            d->flops * 1e-9, bytes, d->flops / d->bytes);
    if (r->attainable > 0)
        fprintf(f, "; attainable %.1f GFLOP/s (%s-bound)", r->attainable,
                r->compute_bound ? "compute" : "memory");
    fprintf(f, "\n");
}

static const char *check_text(const entry_result *e) {
    if (e->error) return "ERROR";
    if (!e->applicable) return "-";
    return e->check > 0 ? "ok" : e->check == 0 ? "MISMATCH" : "unchecked";
}

static void entry_name(const entry_result *e, char *buf, size_t size) {
    if (e->kind == ENTRY_ESTIMATE || e->kind == ENTRY_MEASURE)
        snprintf(buf, size, "%s: %s", e->kind == ENTRY_ESTIMATE ? "ESTIMATE" : "MEASURE",
                 e->strategy[0] ? e->strategy : "-");
    else if (e->kind == ENTRY_PEER)
        snprintf(buf, size, "peer %s", e->label);
    else
        snprintf(buf, size, "%s", e->label);
}

static void marks(const entry_result *e, char *buf, size_t size) {
    snprintf(buf, size, "%s%s%s", e->fastest ? "*" : "", e->estimate_pick ? "E" : "",
             e->measure_pick ? "M" : "");
}

static void print_entry(FILE *f, const entry_result *e) {
    char name[80], med[24], ws[24], mk[8], spread[32] = "", roof[16] = "-", ratio[16] = "";
    entry_name(e, name, sizeof name);
    fprintf(f, "  %-30s %-9s", name, check_text(e));
    if (e->reps == 0) {
        fprintf(f, "\n");
        return;
    }
    format_seconds(e->median, med, sizeof med);
    double up = 100 * (e->max / e->median - 1);
    if (up < 999.5)
        snprintf(spread, sizeof spread, "-%.0f%%/+%.0f%%", 100 * (1 - e->min / e->median), up);
    else
        snprintf(spread, sizeof spread, "-%.0f%%/>+999%%", 100 * (1 - e->min / e->median));
    if (e->roof > 0) snprintf(roof, sizeof roof, "%.0f%%", 100 * e->roof);
    if (e->kind == ENTRY_PEER)
        snprintf(ws, sizeof ws, "-");
    else
        format_bytes((double)e->workspace, ws, sizeof ws);
    if (e->cb_over_peer > 0) snprintf(ratio, sizeof ratio, "%.2f", e->cb_over_peer);
    marks(e, mk, sizeof mk);
    fprintf(f, " %11s %11s %5.2f %8.2f %7.2f %5s %10s %-4s %6s\n", med, spread, e->rel_fastest,
            e->gflops, e->gbps, roof, ws, mk, ratio);
}

static void print_notes(FILE *f, const row_result *r, bool verbose) {
    for (int i = 0; i < r->count; i++) {
        const entry_result *e = &r->entries[i];
        char name[80];
        entry_name(e, name, sizeof name);
        if (e->check == 0)
            fprintf(f, "   note: %s: MISMATCH, relative error %.3g\n", name, e->rel_error);
        if (e->note[0] && (verbose || e->error)) fprintf(f, "   note: %s: %s\n", name, e->note);
    }
}

static void print_verdict(FILE *f, const row_result *r) {
    const entry_result *est = &r->entries[r->estimate], *mea = &r->entries[r->measure];
    fprintf(f, "   planner: ESTIMATE %s (regret %.2f), MEASURE %s (regret %.2f); fastest %s",
            est->strategy[0] ? est->strategy : "-", r->estimate_regret,
            mea->strategy[0] ? mea->strategy : "-", r->measure_regret,
            r->fastest >= 0 ? r->entries[r->fastest].label : "-");
    if (r->best_peer >= 0)
        fprintf(f, "; convblas/best peer (%s) %.2f", r->entries[r->best_peer].label,
                r->cb_over_best_peer);
    fprintf(f, "\n\n");
}

void report_row(FILE *f, const row_result *r, bool verbose) {
    print_layer(f, r);
    fprintf(f, "  %-30s %-9s %11s %11s %5s %8s %7s %5s %10s %-4s %6s\n", "entry", "check", "median",
            "spread", "rel", "GFLOP/s", "GB/s", "roof", "workspace", "mark", "cb/peer");
    for (int i = 0; i < r->count; i++) print_entry(f, &r->entries[i]);
    print_notes(f, r, verbose);
    print_verdict(f, r);
}
