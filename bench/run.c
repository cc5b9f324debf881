/* One layer at one thread count: every strategy forced by name, the planner's ESTIMATE and
 * MEASURE plans and every peer are set up (untimed), checked against the reference
 * strategy's output, then timed together (interleaved), and the figures derived. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const bench_peer *const peers[] = {
#ifdef CONVBLAS_BENCH_ONEDNN
    &bench_peer_onednn,
#endif
#ifdef CONVBLAS_BENCH_XNNPACK
    &bench_peer_xnnpack,
#endif
    NULL,
};

const bench_peer *const *run_peers(void) {
    return peers;
}

/* What one entry runs: a convblas plan, or a peer's prepared state. */
typedef struct slot {
    convblas_plan *plan;
    const bench_peer *peer;
    void *state;
    const float *in;
    const convblas_weights *w;
    float *out;
    void *ws;
} slot;

static int run_slot(void *p) {
    slot *s = p;
    if (s->plan) return convblas_execute(s->plan, s->in, s->w, s->out, s->ws) != CONVBLAS_OK;
    return s->peer->run(s->state, s->in, s->out);
}

typedef struct row_state {
    row_result *r;
    slot *slots;
    convblas_weights w;
    float *ref, *out;
    void *ws, *out_block; /* out_block: what to free for out */
    const run_config *cfg;
} row_state;

/* ---- set-up ---------------------------------------------------------------------------- */

static entry_result *add_entry(row_state *s, entry_kind kind, const char *label) {
    entry_result *e = &s->r->entries[s->r->count++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->check = -1;
    snprintf(e->label, sizeof e->label, "%s", label);
    return e;
}

static void add_plan(row_state *s, entry_kind kind, const char *label, const char *strategy,
                     convblas_planner_mode mode) {
    const bench_layer *l = s->r->layer;
    entry_result *e = add_entry(s, kind, label);
    convblas_plan_options o = {.mode = mode, .strategy = strategy, .threads = s->r->threads};
    convblas_plan *plan = NULL;
    convblas_status st = convblas_plan_create(&plan, &l->desc, &l->input, &o);
    slot *sl = &s->slots[s->r->count - 1];
    if (st != CONVBLAS_OK) {
        e->error = st != CONVBLAS_UNSUPPORTED;
        snprintf(e->note, sizeof e->note, "%s%s", e->error ? "ERROR: " : "", convblas_last_error());
        return;
    }
    e->applicable = true;
    e->workspace = convblas_plan_workspace_size(plan);
    snprintf(e->strategy, sizeof e->strategy, "%s", convblas_plan_strategy(plan));
    sl->plan = plan;
    if (kind == ENTRY_ESTIMATE && s->cfg->describe) {
        int need = convblas_plan_describe(plan, NULL, 0);
        char *text = need > 0 ? malloc((size_t)need + 1) : NULL;
        if (text && convblas_plan_describe(plan, text, (size_t)need + 1) >= 0) printf("%s\n", text);
        free(text);
    }
}

static void add_peer(row_state *s, const bench_peer *p, const bench_case *c) {
    entry_result *e = add_entry(s, ENTRY_PEER, p->name);
    slot *sl = &s->slots[s->r->count - 1];
    char why[sizeof e->note] = "";
    sl->peer = p;
    sl->state = p->prepare(c, s->r->threads, why, sizeof why);
    e->applicable = sl->state != NULL;
    if (!e->applicable) snprintf(e->note, sizeof e->note, "%s", why[0] ? why : "not supported");
}

static void add_entries(row_state *s) {
    for (int i = 0; i < convblas_strategy_count(); i++)
        add_plan(s, ENTRY_STRATEGY, convblas_strategy_name(i), convblas_strategy_name(i),
                 CONVBLAS_ESTIMATE);
    s->r->estimate = s->r->count;
    add_plan(s, ENTRY_ESTIMATE, "planner ESTIMATE", NULL, CONVBLAS_ESTIMATE);
    s->r->measure = s->r->count;
    add_plan(s, ENTRY_MEASURE, "planner MEASURE", NULL, CONVBLAS_MEASURE);
    if (!s->cfg->peers) return;
    bench_case c = data_case(s->r->layer, s->r->data);
    for (int i = 0; peers[i]; i++) add_peer(s, peers[i], &c);
}

static int allocate(row_state *s) {
    const bench_data *d = s->r->data;
    size_t ws = 0;
    for (int i = 0; i < s->r->count; i++)
        if (s->r->entries[i].workspace > ws) ws = s->r->entries[i].workspace;
    size_t out_bytes = (size_t)(d->out_elems > 0 ? d->out_elems : 1) * sizeof(float);
    s->ws = ws ? malloc(ws) : NULL;
    s->ref = malloc(out_bytes);
    s->out = data_alloc_placed(d->out_elems, s->cfg->place_out, &s->out_block);
    s->w = (convblas_weights){d->kernel, d->pointwise, d->bias};
    for (int i = 0; i < s->r->count; i++)
        s->slots[i] = (slot){
            s->slots[i].plan, s->slots[i].peer, s->slots[i].state, d->input, &s->w, s->out, s->ws};
    return (ws && !s->ws) || !s->ref || !s->out ? -1 : 0;
}

/* ---- checking -------------------------------------------------------------------------- */

static double rel_error(const float *y, const float *ref, int64_t n) {
    double diff = 0, scale = 1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)y[i] - (double)ref[i]);
        if (!(d <= diff)) diff = d; /* NaN wins */
        if (fabs((double)ref[i]) > scale) scale = fabs((double)ref[i]);
    }
    return isnan(diff) ? INFINITY : diff / scale;
}

/* Runs the reference strategy into s->ref; false if there is none. */
static bool run_reference(row_state *s) {
    for (int i = 0; i < s->r->count; i++) {
        entry_result *e = &s->r->entries[i];
        if (e->kind != ENTRY_STRATEGY || strcmp(e->label, s->cfg->reference) || !e->applicable)
            continue;
        slot sl = s->slots[i];
        sl.out = s->ref;
        return run_slot(&sl) == 0;
    }
    return false;
}

static void check_entries(row_state *s) {
    bool have_ref = run_reference(s);
    int64_t n = s->r->data->out_elems;
    for (int i = 0; i < s->r->count; i++) {
        entry_result *e = &s->r->entries[i];
        if (!e->applicable) continue;
        for (int64_t j = 0; j < n; j++) s->out[j] = NAN; /* unwritten output shows */
        if (run_slot(&s->slots[i]) != 0) {
            e->applicable = false;
            e->error = true;
            snprintf(e->note, sizeof e->note, "ERROR: run failed%s%s",
                     e->kind == ENTRY_PEER ? "" : ": ",
                     e->kind == ENTRY_PEER ? "" : convblas_last_error());
            continue;
        }
        if (!have_ref) continue;
        e->rel_error = rel_error(s->out, s->ref, n);
        e->check = e->rel_error <= s->cfg->tolerance;
    }
}

/* ---- timing and figures ---------------------------------------------------------------- */

static void time_entries(row_state *s) {
    size_t count = (size_t)(unsigned)s->r->count + 1;
    timed *items = calloc(count, sizeof *items);
    int *which = calloc(count, sizeof *which), n = 0;
    if (!items || !which) goto out;
    for (int i = 0; i < s->r->count; i++)
        if (s->r->entries[i].applicable) {
            items[n] = (timed){.fn = run_slot, .ctx = &s->slots[i]};
            which[n++] = i;
        }
    time_interleaved(items, n, s->cfg->budget, s->cfg->min_reps);
    for (int k = 0; k < n; k++) {
        entry_result *e = &s->r->entries[which[k]];
        timed_stats(&items[k], &e->median, &e->min, &e->max);
        e->reps = items[k].count;
        if (items[k].failed) {
            e->error = true;
            snprintf(e->note, sizeof e->note, "ERROR: a timed run failed");
        }
        timed_free(&items[k]);
    }
out:
    free(items);
    free(which);
}

static bool usable(const entry_result *e) {
    return e->reps > 0 && e->check != 0;
}

static int find_strategy(const row_result *r, const char *name) {
    for (int i = 0; i < r->count; i++)
        if (r->entries[i].kind == ENTRY_STRATEGY && !strcmp(r->entries[i].label, name) &&
            r->entries[i].reps > 0)
            return i;
    return -1;
}

static double regret(row_result *r, int planner, bool estimate) {
    const entry_result *p = &r->entries[planner];
    int i = p->reps > 0 ? find_strategy(r, p->strategy) : -1;
    if (i < 0 || r->fastest < 0) return 0;
    if (estimate)
        r->entries[i].estimate_pick = true;
    else
        r->entries[i].measure_pick = true;
    return r->entries[i].median / r->entries[r->fastest].median;
}

static void derive_rates(row_result *r) {
    for (int i = 0; i < r->count; i++) {
        entry_result *e = &r->entries[i];
        if (e->reps == 0 || e->median <= 0) continue;
        e->gflops = r->data->flops / e->median * 1e-9;
        e->gbps = r->data->bytes / e->median * 1e-9;
        e->roof = r->attainable > 0 ? e->gflops / r->attainable : 0;
    }
}

static void derive_marks(row_result *r) {
    double best_any = 0;
    r->fastest = r->best_peer = -1;
    for (int i = 0; i < r->count; i++) {
        const entry_result *e = &r->entries[i];
        if (!usable(e) || (e->kind != ENTRY_STRATEGY && e->kind != ENTRY_PEER)) continue;
        if (best_any == 0 || e->median < best_any) best_any = e->median;
        int *best = e->kind == ENTRY_STRATEGY ? &r->fastest : &r->best_peer;
        if (*best < 0 || e->median < r->entries[*best].median) *best = i;
    }
    if (r->fastest >= 0) r->entries[r->fastest].fastest = true;
    for (int i = 0; i < r->count; i++)
        if (r->entries[i].reps > 0 && best_any > 0)
            r->entries[i].rel_fastest = r->entries[i].median / best_any;
    r->estimate_regret = regret(r, r->estimate, true);
    r->measure_regret = regret(r, r->measure, false);
    const entry_result *est = &r->entries[r->estimate];
    for (int i = 0; i < r->count; i++)
        if (r->entries[i].kind == ENTRY_PEER && usable(&r->entries[i]) && usable(est))
            r->entries[i].cb_over_peer = est->median / r->entries[i].median;
    r->cb_over_best_peer = r->best_peer >= 0 ? r->entries[r->best_peer].cb_over_peer : 0;
}

static void derive_limits(row_result *r, const machine_limits *m) {
    double peak, bw;
    if (!m || !machine_limit(m, r->threads, &peak, &bw)) return;
    double intensity = r->data->flops / r->data->bytes;
    r->peak_gflops = peak;
    r->bw_gbps = bw;
    r->compute_bound = peak <= bw * intensity;
    r->attainable = r->compute_bound ? peak : bw * intensity;
}

static void release(row_state *s) {
    for (int i = 0; i < s->r->count; i++) {
        convblas_plan_destroy(s->slots[i].plan);
        if (s->slots[i].state) s->slots[i].peer->release(s->slots[i].state);
    }
    free(s->slots);
    free(s->ref);
    free(s->out_block);
    free(s->ws);
}

int run_row(const bench_layer *l, const bench_data *d, int threads, const run_config *cfg,
            row_result *r) {
    int peer_count = 0;
    while (peers[peer_count]) peer_count++;
    int cap = convblas_strategy_count() + 2 + peer_count;
    memset(r, 0, sizeof *r);
    *r = (row_result){.layer = l, .data = d, .threads = threads, .fastest = -1, .best_peer = -1};
    r->entries = calloc((size_t)cap, sizeof *r->entries);
    row_state s = {.r = r, .slots = calloc((size_t)cap, sizeof(slot)), .cfg = cfg};
    if (!r->entries || !s.slots) {
        free(s.slots);
        return -1;
    }
    add_entries(&s);
    int st = allocate(&s);
    if (st == 0) {
        check_entries(&s);
        time_entries(&s);
        derive_limits(r, cfg->limits);
        derive_rates(r);
        derive_marks(r);
    }
    release(&s);
    if (st) row_free(r);
    return st;
}

void row_free(row_result *r) {
    free(r->entries);
    r->entries = NULL;
    r->count = 0;
}
