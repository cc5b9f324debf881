/* Wisdom's table, key and machine, and the planner's side of it (see wisdom.h). */
#include "wisdom.h"

#include "convblas_config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

typedef cb_wisdom_machine machine;
typedef cb_wisdom_entry entry;
typedef cb_wisdom_table table;

/* ---- the key --------------------------------------------------------------------------- */

/* Fields the op ignores, and alpha where the activation ignores it, are normalized, so
 * that descriptors Keras would treat as the same layer share one key. */
static void make_key(const convblas_plan *plan, uint64_t *key) {
    const cb_problem *p = &plan->problem;
    bool alpha_used = p->activation == CONVBLAS_ELU || p->activation == CONVBLAS_LEAKY_RELU;
    uint32_t alpha = 0;
    if (alpha_used) memcpy(&alpha, &p->alpha, sizeof alpha);
    const uint64_t k[CB_WK_COUNT] = {
        [CB_WK_OP] = (uint64_t)p->op,
        [CB_WK_RANK] = (uint64_t)p->desc.rank,
        [CB_WK_FILTERS] = p->op == CONVBLAS_DEPTHWISE ? 0 : (uint64_t)p->desc.filters,
        [CB_WK_KERNEL] = (uint64_t)p->k_h,
        [CB_WK_KERNEL + 1] = (uint64_t)p->k_w,
        [CB_WK_STRIDES] = (uint64_t)p->s_h,
        [CB_WK_STRIDES + 1] = (uint64_t)p->s_w,
        [CB_WK_DILATION] = (uint64_t)p->d_h,
        [CB_WK_DILATION + 1] = (uint64_t)p->d_w,
        [CB_WK_PADDING] = (uint64_t)p->desc.padding,
        [CB_WK_FORMAT] = (uint64_t)p->format,
        [CB_WK_GROUPS] = p->op == CONVBLAS_CONV ? (uint64_t)p->groups : 1,
        [CB_WK_MULTIPLIER] = p->op == CONVBLAS_CONV ? 1 : (uint64_t)p->group_out,
        [CB_WK_ACTIVATION] = (uint64_t)p->activation,
        [CB_WK_ALPHA] = alpha,
        [CB_WK_BIAS] = p->use_bias,
        [CB_WK_BATCH] = (uint64_t)p->batch,
        [CB_WK_SPATIAL] = (uint64_t)p->in_h,
        [CB_WK_SPATIAL + 1] = (uint64_t)p->in_w,
        [CB_WK_CHANNELS] = (uint64_t)p->channels,
        [CB_WK_THREADS] = (uint64_t)plan->tuning.threads,
        [CB_WK_WORKSPACE] = (uint64_t)plan->tuning.workspace_limit,
        [CB_WK_TILE] = (uint64_t)plan->tuning.tile_bytes,
    };
    memcpy(key, k, sizeof k);
}

/* ---- the machine ----------------------------------------------------------------------- */

/* Control characters would break the line format, and outer blanks would not survive a
 * reader that trims; neither is part of a name. */
static void copy_clean(char *dst, size_t size, const char *src) {
    while (*src == ' ') src++;
    size_t n = 0;
    for (; *src && n + 1 < size; src++)
        dst[n++] = (unsigned char)*src < 0x20 || *src == 0x7f ? ' ' : *src;
    while (n > 0 && dst[n - 1] == ' ') n--;
    dst[n] = '\0';
}

static bool cpuid_brand(char *out, size_t size) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned regs[12];
    if ((unsigned)__get_cpuid_max(0x80000000u, NULL) < 0x80000004u) return false;
    for (unsigned i = 0; i < 3; i++)
        __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2],
                    &regs[4 * i + 3]);
    char brand[49];
    memcpy(brand, regs, 48);
    brand[48] = '\0';
    copy_clean(out, size, brand);
    return out[0] != '\0';
#else
    (void)out;
    (void)size;
    return false;
#endif
}

/* Where there is no cpuid (not x86), the kernel's name for the CPU. */
static bool cpuinfo_model(char *out, size_t size) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon) continue;
        line[strcspn(line, "\n")] = '\0';
        copy_clean(out, size, colon + 1);
        found = out[0] != '\0';
    }
    fclose(f);
    return found;
}

static machine here;
static pthread_once_t here_once = PTHREAD_ONCE_INIT;

static void identify_machine(void) {
    if (!cpuid_brand(here.cpu, sizeof here.cpu) && !cpuinfo_model(here.cpu, sizeof here.cpu))
        copy_clean(here.cpu, sizeof here.cpu, "unknown");
    copy_clean(here.blas, sizeof here.blas, cb_blas_description());
    /* Another build may lack the strategy remembered, or have one that would win. */
    char build[sizeof here.build];
    int n = snprintf(build, sizeof build, "%s, %s threads, strategies", CONVBLAS_VERSION,
                     CONVBLAS_THREADING);
    for (int i = 0; i < cb_strategy_total && n > 0 && (size_t)n < sizeof build; i++)
        n += snprintf(build + n, sizeof build - (size_t)n, " %s", cb_strategies[i]->name);
    copy_clean(here.build, sizeof here.build, build);
}

const machine *cb_wisdom_this_machine(void) {
    pthread_once(&here_once, identify_machine);
    return &here;
}

bool cb_wisdom_same_machine(const machine *a, const machine *b) {
    return !strcmp(a->cpu, b->cpu) && !strcmp(a->blas, b->blas) && !strcmp(a->build, b->build);
}

int cb_wisdom_strategy_index(const char *name) {
    for (int i = 0; i < cb_strategy_total; i++)
        if (!strcmp(cb_strategies[i]->name, name)) return i;
    return -1;
}

/* ---- the table ------------------------------------------------------------------------- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static table wisdom;           /* guarded by lock */
static unsigned export_serial; /* guarded by lock */

/* No realloc in alloc.c: a fresh block and a copy, so fault injection sees every one. */
static bool reserve(void **items, size_t *cap, size_t need, size_t item_size) {
    if (need <= *cap) return true;
    size_t cap2 = *cap ? *cap * 2 : 8;
    if (cap2 < need) cap2 = need;
    void *p = cb_malloc(cap2 * item_size);
    if (!p) return false;
    if (*cap) memcpy(p, *items, *cap * item_size);
    cb_free(*items);
    *items = p;
    *cap = cap2;
    return true;
}

void cb_wisdom_table_free(table *t) {
    cb_free(t->machines);
    cb_free(t->entries);
    *t = (table){0};
}

static long find_machine(const table *t, const machine *m) {
    for (size_t i = 0; i < t->n_machines; i++)
        if (cb_wisdom_same_machine(&t->machines[i], m)) return (long)i;
    return -1;
}

/* A linear search: a process plans tens to thousands of layers, and a plan's own creation
 * costs far more than comparing its key with each. */
static entry *find_entry(const table *t, long machine_index, const uint64_t *key) {
    for (size_t i = 0; machine_index >= 0 && i < t->n_entries; i++) {
        entry *e = &t->entries[i];
        if (e->machine == (size_t)machine_index && !memcmp(e->key, key, sizeof e->key)) return e;
    }
    return NULL;
}

bool cb_wisdom_put(table *t, const machine *m, const entry *e) {
    long mi = find_machine(t, m);
    entry *old = find_entry(t, mi, e->key);
    if (old) {
        memcpy(old->strategy, e->strategy, sizeof old->strategy);
        old->seconds = e->seconds;
        return true;
    }
    bool new_machine = mi < 0;
    if (new_machine) {
        if (!reserve((void **)&t->machines, &t->cap_machines, t->n_machines + 1, sizeof *m))
            return false;
        t->machines[t->n_machines] = *m;
        mi = (long)t->n_machines++;
    }
    if (!reserve((void **)&t->entries, &t->cap_entries, t->n_entries + 1, sizeof *e)) {
        if (new_machine) t->n_machines--;
        return false;
    }
    t->entries[t->n_entries] = *e;
    t->entries[t->n_entries++].machine = (size_t)mi;
    return true;
}

/* dst = a copy of src; false when out of memory (dst then empty). */
static bool table_copy(table *dst, const table *src) {
    *dst = (table){0};
    if (!reserve((void **)&dst->machines, &dst->cap_machines, src->n_machines, sizeof(machine)) ||
        !reserve((void **)&dst->entries, &dst->cap_entries, src->n_entries, sizeof(entry))) {
        cb_wisdom_table_free(dst);
        return false;
    }
    if (src->n_machines) memcpy(dst->machines, src->machines, src->n_machines * sizeof(machine));
    if (src->n_entries) memcpy(dst->entries, src->entries, src->n_entries * sizeof(entry));
    dst->n_machines = src->n_machines;
    dst->n_entries = src->n_entries;
    return true;
}

bool cb_wisdom_snapshot(table *copy, unsigned *serial) {
    pthread_mutex_lock(&lock);
    bool ok = table_copy(copy, &wisdom);
    *serial = export_serial++;
    pthread_mutex_unlock(&lock);
    return ok;
}

/* Built aside and swapped in, so that out of memory leaves the wisdom as it was. */
bool cb_wisdom_merge(const table *t) {
    table merged;
    pthread_mutex_lock(&lock);
    bool ok = table_copy(&merged, &wisdom);
    for (size_t i = 0; ok && i < t->n_entries; i++)
        ok = cb_wisdom_put(&merged, &t->machines[t->entries[i].machine], &t->entries[i]);
    table old = wisdom;
    if (ok) wisdom = merged;
    pthread_mutex_unlock(&lock);
    cb_wisdom_table_free(ok ? &old : &merged);
    return ok;
}

void convblas_wisdom_forget(void) {
    pthread_mutex_lock(&lock);
    table old = wisdom;
    wisdom = (table){0};
    pthread_mutex_unlock(&lock);
    cb_wisdom_table_free(&old);
}

/* ---- the planner's side ---------------------------------------------------------------- */

int cb_wisdom_recall(convblas_plan *plan) {
    uint64_t key[CB_WK_COUNT];
    make_key(plan, key);
    const machine *m = cb_wisdom_this_machine();
    char name[CB_WISDOM_NAME_SIZE] = "";
    double seconds = 0;
    pthread_mutex_lock(&lock);
    const entry *e = find_entry(&wisdom, find_machine(&wisdom, m), key);
    if (e) {
        memcpy(name, e->strategy, sizeof name);
        seconds = e->seconds;
    }
    pthread_mutex_unlock(&lock);
    int s = name[0] ? cb_wisdom_strategy_index(name) : -1;
    /* The key fixes what is usable, so this holds unless the file was edited by hand. */
    if (s < 0 || !plan->candidates[s].usable) return -1;
    plan->from_wisdom = true;
    plan->wisdom_seconds = seconds;
    return s;
}

void cb_wisdom_record(const convblas_plan *plan) {
    double seconds = plan->candidates[plan->chosen].measured;
    if (!(seconds > 0)) return; /* nothing was timed (an empty output) */
    entry e = {.seconds = seconds};
    make_key(plan, e.key);
    snprintf(e.strategy, sizeof e.strategy, "%s", cb_strategies[plan->chosen]->name);
    const machine *m = cb_wisdom_this_machine();
    pthread_mutex_lock(&lock);
    (void)cb_wisdom_put(&wisdom, m, &e); /* out of memory: the plan is good, just not kept */
    pthread_mutex_unlock(&lock);
}
