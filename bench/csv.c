/* The CSV: '#' lines first (machine, library, peers, limits, settings), then a header and
 * one line per entry of every layer and thread count, each line self-contained (the
 * layer's figures and the limits that bind it are repeated). Read it with
 * pandas.read_csv(path, comment='#'). */
#include "bench.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void quoted(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

static void preamble(FILE *f, const machine_limits *m, const run_config *cfg) {
    char date[64];
    time_t t = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S%z", localtime(&t));
    const char *coretype = getenv("OPENBLAS_CORETYPE");
    fprintf(f, "# convblas-bench results; read with pandas.read_csv(path, comment='#')\n");
    fprintf(f, "# date: %s\n# convblas_version: %s\n", date, convblas_version());
    fprintf(f, "# convblas_build_info: %s\n", convblas_build_info());
    fprintf(f, "# cpu: %s\n# online_cpus: %d\n", machine_cpu_model(), machine_online_cpus());
    fprintf(f, "# openblas_core: %s\n", machine_blas_core());
    char env[512];
    machine_environment(env, sizeof env);
    fprintf(f, "# OPENBLAS_CORETYPE: %s\n# environment: %s\n", coretype ? coretype : "(unset)",
            env);
    fprintf(f, "# load_average_at_end: %.2f\n", machine_load_average());
    for (const bench_peer *const *p = run_peers(); *p; p++)
        fprintf(f, "# peer: %s %s\n", (*p)->name, (*p)->version());
    for (int i = 0; m->measured && i < m->count; i++)
        fprintf(f,
                "# limit: threads=%d sgemm_n=%d sgemm_gflops=%.2f triad_mib=%.0f "
                "triad_gbps=%.2f\n",
                m->threads[i], m->gemm_n, m->gemm_gflops[i], m->triad_mib, m->triad_gbps[i]);
    fprintf(f,
            "# settings: budget_s=%g min_reps=%d reference=%s tolerance=%g place_in=%d "
            "place_out=%d\n",
            cfg->budget, cfg->min_reps, cfg->reference, cfg->tolerance, cfg->place_in,
            cfg->place_out);
}

static const char *const header =
    "layer,kind,spec,source,threads,batch,in_h_or_l,in_w,in_channels,out_h_or_l,out_w,"
    "out_channels,flops,min_bytes,intensity,peak_gflops,bandwidth_gbps,attainable_gflops,"
    "bound,entry_kind,entry,strategy,applicable,check,rel_error,reps,median_s,min_s,max_s,"
    "gflops,gbps,roofline_fraction,rel_fastest,workspace_bytes,fastest,estimate_pick,"
    "measure_pick,cb_over_peer,estimate_regret,measure_regret,note\n";

static void layer_fields(FILE *f, const row_result *r) {
    const bench_layer *l = r->layer;
    const bench_data *d = r->data;
    char spec[512];
    spec_format(l, spec, sizeof spec);
    fprintf(f, "%s,%s,", l->name, l->kind);
    quoted(f, spec);
    fputc(',', f);
    quoted(f, l->source);
    fprintf(f, ",%d,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%.0f,%.0f,%.4f,%.2f,%.2f,%.2f,%s,",
            r->threads, (long long)l->input.batch, (long long)l->input.spatial[0],
            (long long)l->input.spatial[1], (long long)l->input.channels,
            (long long)d->output.spatial[0], (long long)d->output.spatial[1],
            (long long)d->output.channels, d->flops, d->bytes, d->flops / d->bytes, r->peak_gflops,
            r->bw_gbps, r->attainable,
            r->attainable > 0 ? (r->compute_bound ? "compute" : "memory") : "");
}

static const char *kind_name(entry_kind k) {
    return k == ENTRY_STRATEGY   ? "strategy"
           : k == ENTRY_ESTIMATE ? "estimate"
           : k == ENTRY_MEASURE  ? "measure"
                                 : "peer";
}

static void number(FILE *f, const char *fmt, double v, bool present) {
    if (present) fprintf(f, fmt, v);
    fputc(',', f);
}

/* Figures an entry does not have (not timed, no peer ratio) are left empty. */
static void entry_fields(FILE *f, const row_result *r, const entry_result *e) {
    const char *check = e->error         ? "ERROR"
                        : !e->applicable ? "-"
                        : e->check > 0   ? "ok"
                        : e->check == 0  ? "MISMATCH"
                                         : "unchecked";
    bool ran = e->reps > 0;
    fprintf(f, "%s,", kind_name(e->kind));
    quoted(f, e->label);
    fprintf(f, ",%s,%d,%s,", e->strategy, e->applicable, check);
    number(f, "%.3g", e->rel_error, e->check >= 0);
    fprintf(f, "%d,", e->reps);
    number(f, "%.9f", e->median, ran);
    number(f, "%.9f", e->min, ran);
    number(f, "%.9f", e->max, ran);
    number(f, "%.3f", e->gflops, ran);
    number(f, "%.3f", e->gbps, ran);
    number(f, "%.4f", e->roof, ran && e->roof > 0);
    number(f, "%.4f", e->rel_fastest, ran && e->rel_fastest > 0);
    fprintf(f, "%zu,%d,%d,%d,", e->workspace, e->fastest, e->estimate_pick, e->measure_pick);
    number(f, "%.4f", e->cb_over_peer, e->cb_over_peer > 0);
    number(f, "%.4f", r->estimate_regret, r->estimate_regret > 0);
    number(f, "%.4f", r->measure_regret, r->measure_regret > 0);
    quoted(f, e->note);
    fputc('\n', f);
}

int report_csv(const char *path, const row_result *rows, int count, const machine_limits *m,
               const run_config *cfg) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    preamble(f, m, cfg);
    fputs(header, f);
    for (int i = 0; i < count; i++)
        for (int j = 0; j < rows[i].count; j++) {
            layer_fields(f, &rows[i]);
            entry_fields(f, &rows[i], &rows[i].entries[j]);
        }
    return fclose(f) == 0 ? 0 : -1;
}
