/* Wisdom (after FFTW's): the strategy MEASURE planning chose for a key, remembered in one
 * process-wide table (wisdom.c) so that the next plan of that key skips the timing, and
 * saved to and loaded from a text file (wisdom_io.c) so that the next process does too.
 *
 * The key is everything that can change the answer: the resolved layer, the input shape,
 * the thread count, the workspace limit and the tile size; and, apart from it, the machine:
 * CPU model, BLAS, and the convblas build (version, threading, strategies compiled in). Entries of
 * other machines are kept (one file may gather several machines' wisdom) but never match: a choice
 * timed elsewhere says nothing about this machine. */
#ifndef CONVBLAS_WISDOM_H
#define CONVBLAS_WISDOM_H

#include "plan.h"

/* ---- for the planner ----------------------------------------------------------------- */

/* The usable strategy wisdom remembers for plan's key on this machine, or -1. On a hit,
 * plan->from_wisdom and plan->wisdom_seconds are set. Never allocates, never fails. */
int cb_wisdom_recall(convblas_plan *plan);

/* Remembers plan's chosen strategy and its measured time under plan's key. Best effort:
 * out of memory, nothing is recorded and nothing is reported (the plan is still good). */
void cb_wisdom_record(const convblas_plan *plan);

/* ---- between wisdom.c and wisdom_io.c -------------------------------------------------- */

/* Slots of a key; a pair of slots (height, width) for each spatial field, height 1 at
 * rank 1 as the planner sees it. */
enum {
    CB_WK_OP,
    CB_WK_RANK,
    CB_WK_FILTERS, /* 0 for DEPTHWISE */
    CB_WK_KERNEL,  /* 2 slots */
    CB_WK_STRIDES = CB_WK_KERNEL + 2,
    CB_WK_DILATION = CB_WK_STRIDES + 2,
    CB_WK_PADDING = CB_WK_DILATION + 2,
    CB_WK_FORMAT,
    CB_WK_GROUPS,     /* 1 unless CONV */
    CB_WK_MULTIPLIER, /* 1 for CONV */
    CB_WK_ACTIVATION,
    CB_WK_ALPHA, /* the resolved float's bits; 0 unless ELU or LEAKY_RELU */
    CB_WK_BIAS,
    CB_WK_BATCH,
    CB_WK_SPATIAL, /* 2 slots */
    CB_WK_CHANNELS = CB_WK_SPATIAL + 2,
    CB_WK_THREADS,
    CB_WK_WORKSPACE,
    CB_WK_TILE,
    CB_WK_COUNT
};

enum { CB_WISDOM_NAME_SIZE = 32 };

typedef struct cb_wisdom_machine {
    char cpu[128];
    char blas[256];
    char build[256]; /* convblas's version, threading and strategies compiled in */
} cb_wisdom_machine;

typedef struct cb_wisdom_entry {
    uint64_t key[CB_WK_COUNT];
    size_t machine; /* index into the table's machines */
    char strategy[CB_WISDOM_NAME_SIZE];
    double seconds;
} cb_wisdom_entry;

typedef struct cb_wisdom_table {
    cb_wisdom_machine *machines;
    size_t n_machines, cap_machines;
    cb_wisdom_entry *entries;
    size_t n_entries, cap_entries;
} cb_wisdom_table;

/* This process's machine, identified once. */
const cb_wisdom_machine *cb_wisdom_this_machine(void);
bool cb_wisdom_same_machine(const cb_wisdom_machine *a, const cb_wisdom_machine *b);
/* Index of a strategy of this build by name, or -1. */
int cb_wisdom_strategy_index(const char *name);

/* Adds e (its machine field ignored) for machine m, replacing an entry of the same machine
 * and key. On false (out of memory) t is as it was. */
bool cb_wisdom_put(cb_wisdom_table *t, const cb_wisdom_machine *m, const cb_wisdom_entry *e);
void cb_wisdom_table_free(cb_wisdom_table *t);

/* A copy of the process's wisdom, and a number unique to this call; false when out of
 * memory. */
bool cb_wisdom_snapshot(cb_wisdom_table *copy, unsigned *serial);
/* Adds every entry of t to the process's wisdom, or, out of memory, none (false). */
bool cb_wisdom_merge(const cb_wisdom_table *t);

#endif
