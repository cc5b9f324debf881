/* Wisdom: MEASURE plans record their choice; export, forget and import carry it; a plan
 * of a remembered key takes it without timing (MEASURE) or instead of the cost model
 * (ESTIMATE), and says so in describe; a forced strategy ignores it; other machines'
 * entries are kept but never used; damaged files of every kind are refused with a message
 * naming the file and line, importing nothing; and all of it holds while many threads
 * create plans and another imports, exports and forgets. A hit is told by describe's
 * "from wisdom", never by timing. Files live in a mkdtemp directory, removed at the end. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkdtemp, setenv */
#endif

#include "convblas.h"
#include "test_util.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static char *path_of(const char *name) {
    static _Thread_local char buf[4][256];
    static _Thread_local int next;
    char *p = buf[next++ % 4];
    if (snprintf(p, sizeof buf[0], "%s/%s", dir, name) >= (int)sizeof buf[0]) abort();
    return p;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    for (size_t got; s && (got = fread(s + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (cap - n - 1 == 0) s = realloc(s, cap *= 2);
    }
    fclose(f);
    if (s) s[n] = '\0';
    return s;
}

static void spit(const char *path, const char *text, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, n, f) != n) {
        fprintf(stderr, "test_wisdom: cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

/* The process's wisdom as exported text: what "the table is unchanged" compares. */
static char *wisdom_text(void) {
    const char *p = path_of("snapshot.wisdom");
    if (convblas_wisdom_export(p) != CONVBLAS_OK) {
        fprintf(stderr, "test_wisdom: export failed: %s\n", convblas_last_error());
        tu_failures++;
        return NULL;
    }
    return slurp(p);
}

static int count_lines(const char *text, const char *prefix) {
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *s = text; s && *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : "")
        n += strncmp(s, prefix, len) == 0;
    return n;
}

/* ---- layers ---------------------------------------------------------------------------- */

typedef struct layer {
    convblas_layer_desc d;
    convblas_shape s;
} layer;

static const layer layers[] = {
    {{.op = CONVBLAS_CONV,
      .rank = 1,
      .filters = 8,
      .kernel_size = {3},
      .padding = CONVBLAS_SAME,
      .activation = CONVBLAS_RELU,
      .use_bias = true},
     {.batch = 2, .spatial = {40}, .channels = 6}},
    {{.op = CONVBLAS_CONV,
      .rank = 2,
      .filters = 4,
      .kernel_size = {3, 3},
      .data_format = CONVBLAS_CHANNELS_FIRST},
     {.batch = 1, .spatial = {9, 8}, .channels = 3}},
    {{.op = CONVBLAS_DEPTHWISE,
      .rank = 1,
      .kernel_size = {4},
      .padding = CONVBLAS_CAUSAL,
      .depth_multiplier = 2,
      .activation = CONVBLAS_LEAKY_RELU},
     {.batch = 2, .spatial = {30}, .channels = 5}},
    {{.op = CONVBLAS_SEPARABLE,
      .rank = 1,
      .filters = 7,
      .kernel_size = {3},
      .strides = {2},
      .use_bias = true},
     {.batch = 1, .spatial = {25}, .channels = 4}},
    {{.op = CONVBLAS_CONV, .rank = 1, .filters = 9, .kernel_size = {1}},
     {.batch = 3, .spatial = {16}, .channels = 5}},
};
enum { LAYERS = sizeof layers / sizeof layers[0] };

static convblas_plan *plan_of(const layer *l, convblas_planner_mode mode, const char *strategy,
                              int threads) {
    convblas_plan_options o = {.mode = mode, .strategy = strategy, .threads = threads};
    convblas_plan *plan = NULL;
    convblas_status st = convblas_plan_create(&plan, &l->d, &l->s, &o);
    CHECKF(st == CONVBLAS_OK, "plan_create: %s: %s", tu_status_str(st), convblas_last_error());
    return plan;
}

static char *describe(const convblas_plan *plan) {
    int n = convblas_plan_describe(plan, NULL, 0);
    char *text = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (text) convblas_plan_describe(plan, text, (size_t)n + 1);
    return text;
}

static bool from_wisdom(const convblas_plan *plan) {
    char *text = describe(plan);
    bool hit = text && strstr(text, "from wisdom") != NULL;
    free(text);
    return hit;
}

/* A strategy that can run l other than avoid, or NULL. */
static const char *other_strategy(const layer *l, const char *avoid) {
    for (int i = 0; i < convblas_strategy_count(); i++) {
        const char *name = convblas_strategy_name(i);
        convblas_plan_options o = {.strategy = name, .threads = 1};
        convblas_plan *plan = NULL;
        bool ok = convblas_plan_create(&plan, &l->d, &l->s, &o) == CONVBLAS_OK;
        convblas_plan_destroy(plan);
        if (ok && strcmp(name, avoid) != 0) return name;
    }
    return NULL;
}

/* The machine lines and the one entry line of a file holding one entry. */
typedef struct one_entry {
    char machine[1024]; /* "cpu ...\nblas ...\nconvblas ...\n" */
    char entry[1024];   /* "entry ... strategy=NAME seconds=S" without the newline */
} one_entry;

static bool split_one(const char *text, one_entry *e) {
    e->machine[0] = e->entry[0] = '\0';
    for (const char *s = text; s && *s;) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        if (!strncmp(s, "cpu ", 4) || !strncmp(s, "blas ", 5) || !strncmp(s, "convblas ", 9))
            strncat(e->machine, s, len + 1);
        else if (!strncmp(s, "entry ", 6) && len < sizeof e->entry)
            memcpy(e->entry, s, len), e->entry[len] = '\0';
        s = nl ? nl + 1 : NULL;
    }
    return e->machine[0] && e->entry[0];
}

/* e's entry with its strategy replaced. */
static void with_strategy(char *out, size_t size, const one_entry *e, const char *strategy) {
    const char *at = strstr(e->entry, " strategy=");
    const char *seconds = at ? strstr(at, " seconds=") : NULL;
    if (!at || !seconds) {
        snprintf(out, size, "%s", e->entry);
        return;
    }
    snprintf(out, size, "%.*s strategy=%s%s", (int)(at - e->entry), e->entry, strategy, seconds);
}

/* Records l by one MEASURE plan into emptied wisdom and returns it as one entry. */
static bool record_one(const layer *l, one_entry *e, char *chosen, size_t size) {
    convblas_wisdom_forget();
    convblas_plan *plan = plan_of(l, CONVBLAS_MEASURE, NULL, 1);
    if (!plan) return false;
    snprintf(chosen, size, "%s", convblas_plan_strategy(plan));
    convblas_plan_destroy(plan);
    char *text = wisdom_text();
    bool ok = text && split_one(text, e);
    CHECKF(ok, "the export of one recorded plan has no entry:\n%s", text ? text : "(none)");
    free(text);
    return ok;
}

/* A wisdom file of the given machine lines and entry lines. */
static void write_wisdom(const char *path, const char *machine, const char *entry) {
    char text[4096];
    int n = snprintf(text, sizeof text, "convblas-wisdom 1\n%s%s\nend 1\n", machine, entry);
    spit(path, text, (size_t)n);
}

/* Export's temporary files are gone, after success and failure alike. */
static bool no_temporaries(void) {
    bool none = true;
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));)
        if (strstr(de->d_name, ".tmp")) {
            fprintf(stderr, "test_wisdom: temporary file left: %s\n", de->d_name);
            none = false;
        }
    if (d) closedir(d);
    return none;
}

/* ---- record, export, forget, import ---------------------------------------------------- */

static void test_record_and_recall(void) {
    convblas_wisdom_forget();
    const layer *l = &layers[0];
    convblas_plan *first = plan_of(l, CONVBLAS_MEASURE, NULL, 1);
    if (!first) return;
    CHECK(!from_wisdom(first));
    convblas_plan *second = plan_of(l, CONVBLAS_MEASURE, NULL, 1);
    if (second) {
        CHECKF(from_wisdom(second), "the second MEASURE plan of a key was timed again");
        char *text = describe(second);
        CHECK(text && !strstr(text, "fastest measured") && strstr(text, "without timing"));
        free(text);
        CHECK(!strcmp(convblas_plan_strategy(first), convblas_plan_strategy(second)));
    }
    convblas_plan *estimate = plan_of(l, CONVBLAS_ESTIMATE, NULL, 1);
    if (estimate) {
        CHECKF(from_wisdom(estimate), "ESTIMATE did not take MEASURE's wisdom");
        CHECK(!strcmp(convblas_plan_strategy(first), convblas_plan_strategy(estimate)));
    }
    char *text = wisdom_text();
    CHECK(text && !strncmp(text, "convblas-wisdom 1\n", 18));
    CHECK(count_lines(text, "entry ") == 1 && count_lines(text, "end 1") == 1);
    CHECK(text && strstr(text, convblas_plan_strategy(first)));
    free(text);

    /* forget, then import brings it back */
    convblas_wisdom_export(path_of("one.wisdom"));
    convblas_wisdom_forget();
    text = wisdom_text();
    CHECK(count_lines(text, "entry ") == 0 && count_lines(text, "end 0") == 1);
    free(text);
    convblas_plan *forgotten = plan_of(l, CONVBLAS_ESTIMATE, NULL, 1);
    if (forgotten) CHECK(!from_wisdom(forgotten));
    CHECK(convblas_wisdom_import(path_of("one.wisdom")) == CONVBLAS_OK);
    convblas_plan *again = plan_of(l, CONVBLAS_MEASURE, NULL, 1);
    if (again) {
        CHECK(from_wisdom(again));
        CHECK(!strcmp(convblas_plan_strategy(first), convblas_plan_strategy(again)));
    }
    convblas_plan_destroy(first);
    convblas_plan_destroy(second);
    convblas_plan_destroy(estimate);
    convblas_plan_destroy(forgotten);
    convblas_plan_destroy(again);
}

/* What makes a different key misses; what Keras calls the same layer hits. */
static void test_key(void) {
    convblas_wisdom_forget();
    const layer *l = &layers[0];
    convblas_plan_destroy(plan_of(l, CONVBLAS_MEASURE, NULL, 1));
    layer v[8];
    for (int i = 0; i < 8; i++) v[i] = *l;
    v[0].s.batch = 3;
    v[1].d.activation = CONVBLAS_TANH;
    v[2].d.use_bias = false;
    v[3].d.strides[0] = 2;
    v[4].d.data_format = CONVBLAS_CHANNELS_FIRST;
    v[5].d.filters = 4;
    v[6].d.strides[0] = 1;          /* explicit default: same key */
    v[7].d.activation_alpha = 0.5f; /* relu ignores alpha: same key */
    for (int i = 0; i < 8; i++) {
        convblas_plan *plan = plan_of(&v[i], CONVBLAS_ESTIMATE, NULL, 1);
        if (plan) CHECKF(from_wisdom(plan) == (i >= 6), "key variant %d", i);
        convblas_plan_destroy(plan);
    }
    /* the thread count and the workspace limit are part of the key */
    convblas_plan_options o = {.mode = CONVBLAS_ESTIMATE, .threads = 2};
    convblas_plan *plan = NULL;
    if (convblas_plan_create(&plan, &l->d, &l->s, &o) == CONVBLAS_OK) CHECK(!from_wisdom(plan));
    convblas_plan_destroy(plan);
    o = (convblas_plan_options){
        .mode = CONVBLAS_ESTIMATE, .threads = 1, .workspace_limit = 1 << 20};
    plan = NULL;
    if (convblas_plan_create(&plan, &l->d, &l->s, &o) == CONVBLAS_OK) CHECK(!from_wisdom(plan));
    convblas_plan_destroy(plan);
}

/* A wisdom entry naming a strategy the planner would not pick is obeyed: proof that the
 * choice comes from wisdom. Forcing wins over it, and forced plans record nothing. */
static void test_wisdom_wins_unless_forced(void) {
    const layer *l = &layers[0];
    one_entry e;
    char chosen[64];
    if (!record_one(l, &e, chosen, sizeof chosen)) return;
    convblas_wisdom_forget();
    convblas_plan *estimate = plan_of(l, CONVBLAS_ESTIMATE, NULL, 1);
    if (!estimate) return;
    const char *other = other_strategy(l, convblas_plan_strategy(estimate));
    bool has_tap = false; /* the second strategy of this CONV layer in a full build */
    for (int i = 0; i < convblas_strategy_count(); i++)
        has_tap = has_tap || strcmp(convblas_strategy_name(i), "tap_gemm") == 0;
    if (!other && !has_tap) {
        printf("test_wisdom: skipped the wins-unless-forced check: this -Dstrategies build has "
               "one strategy for its layer\n");
        convblas_plan_destroy(estimate);
        return;
    }
    CHECKF(other != NULL, "the test layer needs two usable strategies");
    if (!other) return;
    char entry[1024];
    with_strategy(entry, sizeof entry, &e, other);
    write_wisdom(path_of("other.wisdom"), e.machine, entry);
    CHECKF(convblas_wisdom_import(path_of("other.wisdom")) == CONVBLAS_OK, "%s",
           convblas_last_error());
    for (int m = 0; m < 2; m++) {
        convblas_plan *plan = plan_of(l, m ? CONVBLAS_MEASURE : CONVBLAS_ESTIMATE, NULL, 1);
        if (plan) {
            CHECKF(!strcmp(convblas_plan_strategy(plan), other), "mode %d took %s, wisdom says %s",
                   m, convblas_plan_strategy(plan), other);
            CHECK(from_wisdom(plan));
        }
        convblas_plan_destroy(plan);
    }
    /* forced by options and by the environment */
    const char *forced = convblas_plan_strategy(estimate);
    for (int env = 0; env < 2; env++) {
        if (env) setenv("CONVBLAS_STRATEGY", forced, 1);
        convblas_plan *plan = plan_of(l, CONVBLAS_MEASURE, env ? NULL : forced, 1);
        if (plan) {
            CHECK(!strcmp(convblas_plan_strategy(plan), forced));
            CHECK(!from_wisdom(plan));
        }
        convblas_plan_destroy(plan);
        unsetenv("CONVBLAS_STRATEGY");
    }
    convblas_plan_destroy(estimate);
    convblas_wisdom_forget();
    convblas_plan_destroy(plan_of(&layers[1], CONVBLAS_MEASURE, "im2col_gemm", 1));
    char *text = wisdom_text();
    CHECKF(count_lines(text, "entry ") == 0, "a forced MEASURE plan recorded wisdom");
    free(text);
}

/* Several layers out and back in: the same choices, the same file. */
static void test_round_trip(void) {
    convblas_wisdom_forget();
    const char *names[LAYERS];
    for (int i = 0; i < LAYERS; i++) {
        convblas_plan *plan = plan_of(&layers[i], CONVBLAS_MEASURE, NULL, 1 + i % 2);
        names[i] = plan ? convblas_plan_strategy(plan) : "";
        convblas_plan_destroy(plan);
    }
    CHECK(convblas_wisdom_export(path_of("all.wisdom")) == CONVBLAS_OK);
    char *before = slurp(path_of("all.wisdom"));
    CHECK(count_lines(before, "entry ") == LAYERS);
    convblas_wisdom_forget();
    CHECK(convblas_wisdom_import(path_of("all.wisdom")) == CONVBLAS_OK);
    CHECK(convblas_wisdom_import(path_of("all.wisdom")) == CONVBLAS_OK); /* idempotent */
    char *after = wisdom_text();
    CHECKF(before && after && !strcmp(before, after), "round trip changed the file:\n%s\n--\n%s",
           before ? before : "", after ? after : "");
    for (int i = 0; i < LAYERS; i++) {
        convblas_plan *plan = plan_of(&layers[i], CONVBLAS_ESTIMATE, NULL, 1 + i % 2);
        if (plan)
            CHECKF(from_wisdom(plan) && !strcmp(convblas_plan_strategy(plan), names[i]),
                   "layer %d after the round trip", i);
        convblas_plan_destroy(plan);
    }
    free(before);
    free(after);
    CHECK(no_temporaries());
}

/* ---- other machines -------------------------------------------------------------------- */

static void replace_line(char *out, size_t size, const char *machine, const char *prefix,
                         const char *line) {
    out[0] = '\0';
    for (const char *s = machine; *s;) {
        const char *nl = strchr(s, '\n');
        size_t len = (size_t)(nl - s) + 1;
        if (!strncmp(s, prefix, strlen(prefix)))
            strncat(out, line, size - strlen(out) - 1);
        else
            strncat(out, s, len < size - strlen(out) ? len : size - strlen(out) - 1);
        s += len;
    }
}

static void test_foreign(void) {
    const layer *l = &layers[0];
    one_entry e;
    char chosen[64];
    if (!record_one(l, &e, chosen, sizeof chosen)) return;
    const char *other = other_strategy(l, chosen);
    if (!other) return;
    char entry[1024], machine[1024];
    with_strategy(entry, sizeof entry, &e, other);
    const char *foreign[][2] = {{"cpu ", "cpu Imaginary CPU 9000\n"},
                                {"blas ", "blas Some Other BLAS 1.0\n"},
                                {"convblas ", "convblas 99.0.0\n"}};
    for (int f = 0; f < 3; f++) {
        /* this machine has wisdom too (another layer's): the lookup must tell them apart */
        convblas_wisdom_forget();
        convblas_plan_destroy(plan_of(&layers[1], CONVBLAS_MEASURE, NULL, 1));
        replace_line(machine, sizeof machine, e.machine, foreign[f][0], foreign[f][1]);
        write_wisdom(path_of("foreign.wisdom"), machine, entry);
        CHECKF(convblas_wisdom_import(path_of("foreign.wisdom")) == CONVBLAS_OK, "%s",
               convblas_last_error());
        for (int m = 0; m < 2; m++) {
            convblas_plan *plan = plan_of(l, m ? CONVBLAS_MEASURE : CONVBLAS_ESTIMATE, NULL, 1);
            if (plan)
                CHECKF(!from_wisdom(plan), "another machine's entry (%s) was used", foreign[f][1]);
            convblas_plan_destroy(plan);
        }
        /* kept, and exported again beside this machine's new entry */
        char *text = wisdom_text();
        CHECK(text && strstr(text, foreign[f][1]) && count_lines(text, "entry ") == 3);
        free(text);
    }
    /* another build's strategy name is no error in another machine's entry */
    convblas_wisdom_forget();
    replace_line(machine, sizeof machine, e.machine, "convblas ", "convblas 99.0.0\n");
    with_strategy(entry, sizeof entry, &e, "future_strategy");
    write_wisdom(path_of("future.wisdom"), machine, entry);
    CHECKF(convblas_wisdom_import(path_of("future.wisdom")) == CONVBLAS_OK, "%s",
           convblas_last_error());
    convblas_plan *plan = plan_of(l, CONVBLAS_ESTIMATE, NULL, 1);
    if (plan) CHECK(!from_wisdom(plan));
    convblas_plan_destroy(plan);
}

/* ---- bad files and paths --------------------------------------------------------------- */

typedef struct bad_file {
    const char *what;
    int line;           /* the line the message must name; 0: any */
    const char *phrase; /* in the message */
} bad_file;

static void expect_refused(const char *name, const bad_file *b, const char *baseline) {
    convblas_status st = convblas_wisdom_import(path_of(name));
    const char *msg = convblas_last_error();
    CHECKF(st == CONVBLAS_IO_ERROR, "%s: import returned %s", b->what, tu_status_str(st));
    CHECKF(strstr(msg, path_of(name)) != NULL, "%s: message does not name the file: %s", b->what,
           msg);
    char line[32];
    snprintf(line, sizeof line, "line %d:", b->line);
    CHECKF(!b->line || strstr(msg, line), "%s: message does not name %s: %s", b->what, line, msg);
    CHECKF(strstr(msg, b->phrase) != NULL, "%s: message lacks \"%s\": %s", b->what, b->phrase, msg);
    char *now = wisdom_text();
    CHECKF(now && baseline && !strcmp(now, baseline), "%s: a refused import changed the wisdom",
           b->what);
    free(now);
}

static void test_bad_files(void) {
    one_entry e;
    char chosen[64];
    if (!record_one(&layers[0], &e, chosen, sizeof chosen)) return;
    /* the wisdom every refused import must leave as it is: one entry */
    char *baseline = wisdom_text();
    char good[4096], text[8192];
    int n = snprintf(good, sizeof good, "convblas-wisdom 1\n%s%s\nend 1\n", e.machine, e.entry);
    int entry_line = 5; /* header, cpu, blas, convblas, entry */

    static const bad_file empty = {"empty file", 1, "empty"};
    spit(path_of("bad.wisdom"), "", 0);
    expect_refused("bad.wisdom", &empty, baseline);

    struct {
        bad_file b;
        const char *text; /* NULL: built below */
    } cases[] = {
        {{"wrong version", 1, "version"}, "convblas-wisdom 2\nend 0\n"},
        {{"not wisdom", 1, "not a convblas wisdom file"}, "hello, world\n"},
        {{"garbage line", 2, "not a wisdom line"}, "convblas-wisdom 1\nfoo bar\nend 0\n"},
        {{"no end line", 0, "truncated"}, NULL},
        {{"cut mid-line", 0, "truncated"}, NULL},
        {{"end miscounts", 0, "counts 2 entries"}, NULL},
        {{"text after end", 0, "after the end"}, NULL},
        {{"entry before machine", 2, "before the cpu"}, NULL},
        {{"unknown strategy", entry_line, "not one of this build's"}, NULL},
        {{"bad number", entry_line, "kernel="}, NULL},
        {{"negative number", entry_line, "threads="}, NULL},
        {{"overflowing number", entry_line, "batch="}, NULL},
        {{"bad seconds", entry_line, "seconds"}, NULL},
        {{"zero seconds", entry_line, "seconds"}, NULL},
        {{"bad alpha", entry_line, "alpha="}, NULL},
        {{"unknown op", entry_line, "op="}, NULL},
        {{"missing field", entry_line, "expected"}, NULL},
        {{"extra field", entry_line, "unexpected"}, NULL},
        {{"overlong line", entry_line, "longer than"}, NULL},
        {{"binary junk", 0, "not text"}, NULL},
        {{"binary file", 1, "not text"}, NULL},
    };
    enum { CASES = sizeof cases / sizeof cases[0] };
    char entry[2048];
    for (int i = 0; i < CASES; i++) {
        const char *what = cases[i].b.what;
        const char *t = cases[i].text;
        size_t len;
        if (t) {
            len = strlen(t);
        } else if (!strcmp(what, "no end line")) {
            len = (size_t)snprintf(text, sizeof text, "convblas-wisdom 1\n%s%s\n", e.machine,
                                   e.entry);
        } else if (!strcmp(what, "cut mid-line")) {
            len = (size_t)n - 20;
        } else if (!strcmp(what, "end miscounts")) {
            len = (size_t)snprintf(text, sizeof text, "convblas-wisdom 1\n%s%s\nend 2\n", e.machine,
                                   e.entry);
        } else if (!strcmp(what, "text after end")) {
            len = (size_t)snprintf(text, sizeof text, "%sentry\n", good);
        } else if (!strcmp(what, "entry before machine")) {
            len = (size_t)snprintf(text, sizeof text, "convblas-wisdom 1\n%s\n%send 1\n", e.entry,
                                   e.machine);
        } else if (!strcmp(what, "binary file")) {
            for (int k = 0; k < 512; k++) text[k] = (char)(k & 0xff);
            len = 512;
        } else if (!strcmp(what, "binary junk")) {
            memcpy(text, good, (size_t)n);
            for (int k = 0; k < 64; k++) text[n + k] = (char)((k * 37 + 11) & 0xff);
            text[n + 3] = '\0';
            len = (size_t)n + 64;
        } else {
            /* one entry, damaged */
            snprintf(entry, sizeof entry, "%s", e.entry);
            char *at;
            if (!strcmp(what, "unknown strategy")) {
                with_strategy(entry, sizeof entry, &e, "no_such_strategy");
            } else if (!strcmp(what, "bad number") && (at = strstr(entry, " kernel="))) {
                memcpy(at + 8, "abc", 3);
            } else if (!strcmp(what, "negative number") && (at = strstr(entry, " threads="))) {
                at[9] = '-';
            } else if (!strcmp(what, "overflowing number") && (at = strstr(entry, " batch="))) {
                memmove(at + 27, at + 7, strlen(at + 7) + 1);
                memset(at + 7, '9', 20);
            } else if (!strcmp(what, "bad seconds") && (at = strstr(entry, " seconds="))) {
                strcpy(at + 9, "nan");
            } else if (!strcmp(what, "zero seconds") && (at = strstr(entry, " seconds="))) {
                strcpy(at + 9, "0");
            } else if (!strcmp(what, "bad alpha") && (at = strstr(entry, " alpha="))) {
                memmove(at + 10, at + 7, strlen(at + 7) + 1);
                memcpy(at + 7, "inf", 3);
            } else if (!strcmp(what, "unknown op") && (at = strstr(entry, " op="))) {
                memcpy(at + 4, "xyzw", 4);
            } else if (!strcmp(what, "missing field") && (at = strstr(entry, " groups="))) {
                memmove(at, strchr(at + 1, ' '), strlen(strchr(at + 1, ' ')) + 1);
            } else if (!strcmp(what, "extra field")) {
                strcat(entry, " extra=1");
            } else if (!strcmp(what, "overlong line")) {
                size_t k = strlen(entry);
                entry[k++] = ' ';
                memset(entry + k, 'x', 1200);
                entry[k + 1200] = '\0';
            }
            len = (size_t)snprintf(text, sizeof text, "convblas-wisdom 1\n%s%s\nend 1\n", e.machine,
                                   entry);
        }
        spit(path_of("bad.wisdom"), t ? t : text, len);
        expect_refused("bad.wisdom", &cases[i].b, baseline);
    }
    /* the unchanged file itself is fine */
    spit(path_of("good.wisdom"), good, (size_t)n);
    CHECKF(convblas_wisdom_import(path_of("good.wisdom")) == CONVBLAS_OK, "%s",
           convblas_last_error());
    free(baseline);
}

static void test_bad_paths(void) {
    CHECK(convblas_wisdom_import(NULL) == CONVBLAS_INVALID_ARGUMENT);
    CHECK(strstr(convblas_last_error(), "NULL") != NULL);
    CHECK(convblas_wisdom_export(NULL) == CONVBLAS_INVALID_ARGUMENT);
    CHECK(strstr(convblas_last_error(), "NULL") != NULL);
    const char *missing = path_of("no-such-dir/x.wisdom");
    CHECK(convblas_wisdom_import(missing) == CONVBLAS_IO_ERROR);
    CHECKF(strstr(convblas_last_error(), missing) && strstr(convblas_last_error(), "No such file"),
           "%s", convblas_last_error());
    CHECK(convblas_wisdom_export(missing) == CONVBLAS_IO_ERROR);
    CHECKF(strstr(convblas_last_error(), missing) && strstr(convblas_last_error(), "No such file"),
           "%s", convblas_last_error());
    CHECK(convblas_wisdom_import(dir) == CONVBLAS_IO_ERROR); /* a directory */
    CHECKF(strstr(convblas_last_error(), "directory"), "%s", convblas_last_error());
    /* the rename fails: the temporary beside it must go */
    const char *sub = path_of("a-directory");
    CHECK(mkdir(sub, 0700) == 0);
    CHECK(convblas_wisdom_export(sub) == CONVBLAS_IO_ERROR);
    CHECKF(strstr(convblas_last_error(), "directory"), "%s", convblas_last_error());
    CHECK(no_temporaries());
}

/* ---- concurrency ----------------------------------------------------------------------- */

enum { WORKERS = 12, ROUNDS = 12 };

typedef struct layer_data {
    tu_data t;
    float *expected; /* the output of a plan forced to im2col_gemm */
} layer_data;

static layer_data data[LAYERS];
static pthread_barrier_t start;
static int workers_left; /* guarded by churn_lock */
static pthread_mutex_t churn_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct worker {
    int id;
    int errors, mismatches, plans, hits;
    char first_error[256];
} worker;

static void note(worker *w, const char *what) {
    if (!w->errors++)
        snprintf(w->first_error, sizeof w->first_error, "%s: %s", what, convblas_last_error());
}

static void *work(void *arg) {
    worker *w = arg;
    pthread_barrier_wait(&start);
    for (int r = 0; r < ROUNDS; r++) {
        int li = (w->id + r) % LAYERS;
        const layer *l = &layers[li];
        convblas_plan_options o = {.mode = r % 3 ? CONVBLAS_MEASURE : CONVBLAS_ESTIMATE,
                                   .threads = 1 + (w->id + r) % 2};
        convblas_plan *plan = NULL;
        if (convblas_plan_create(&plan, &l->d, &l->s, &o) != CONVBLAS_OK) {
            note(w, "plan_create");
            continue;
        }
        w->plans++;
        w->hits += from_wisdom(plan);
        float *y = malloc(data[li].t.sz.output * sizeof(float) + 1);
        if (convblas_execute(plan, data[li].t.x, &data[li].t.w, y, NULL) != CONVBLAS_OK)
            note(w, "execute");
        else if (tu_rel_error(y, data[li].expected, data[li].t.sz.output, NULL) > TU_TOLERANCE)
            w->mismatches++;
        free(y);
        convblas_plan_destroy(plan);
    }
    pthread_mutex_lock(&churn_lock);
    workers_left--;
    pthread_mutex_unlock(&churn_lock);
    return NULL;
}

typedef struct churn {
    int rounds, errors;
    char first_error[256];
} churn;

static void *churn_wisdom(void *arg) {
    churn *c = arg;
    const char *file = path_of("churn.wisdom");
    pthread_barrier_wait(&start);
    for (;;) {
        pthread_mutex_lock(&churn_lock);
        int left = workers_left;
        pthread_mutex_unlock(&churn_lock);
        if (!left && c->rounds >= 3) break;
        convblas_status st = convblas_wisdom_export(file);
        if (!st) st = convblas_wisdom_import(file);
        if (st && !c->errors++)
            snprintf(c->first_error, sizeof c->first_error, "%s", convblas_last_error());
        if (c->rounds++ % 4 == 3) convblas_wisdom_forget();
    }
    return NULL;
}

static void test_concurrency(void) {
    convblas_wisdom_forget();
    tu_rng rng;
    tu_rng_seed(&rng, 42);
    for (int i = 0; i < LAYERS; i++) {
        const layer *l = &layers[i];
        CHECK(tu_data_make(&data[i].t, &l->d, &l->s, &rng) == CONVBLAS_OK);
        data[i].expected = malloc(data[i].t.sz.output * sizeof(float) + 1);
        convblas_plan *plan = plan_of(l, CONVBLAS_ESTIMATE, "im2col_gemm", 1);
        CHECK(plan && convblas_execute(plan, data[i].t.x, &data[i].t.w, data[i].expected, NULL) ==
                          CONVBLAS_OK);
        convblas_plan_destroy(plan);
    }
    worker w[WORKERS];
    churn c = {0};
    pthread_t ids[WORKERS + 1];
    workers_left = WORKERS;
    pthread_barrier_init(&start, NULL, WORKERS + 1);
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (worker){.id = i};
        CHECK(pthread_create(&ids[i], NULL, work, &w[i]) == 0);
    }
    CHECK(pthread_create(&ids[WORKERS], NULL, churn_wisdom, &c) == 0);
    int plans = 0, hits = 0;
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(ids[i], NULL);
        CHECKF(w[i].errors == 0, "worker %d: %s", i, w[i].first_error);
        CHECKF(w[i].mismatches == 0, "worker %d: %d outputs differ from im2col_gemm's", i,
               w[i].mismatches);
        plans += w[i].plans;
        hits += w[i].hits;
    }
    pthread_join(ids[WORKERS], NULL);
    pthread_barrier_destroy(&start);
    CHECKF(c.errors == 0, "export/import while planning: %s", c.first_error);
    CHECK(plans == WORKERS * ROUNDS);
    printf("test_wisdom: %d plans from %d threads (%d from wisdom) beside %d export/import "
           "rounds\n",
           plans, WORKERS, hits, c.rounds);
    for (int i = 0; i < LAYERS; i++) {
        free(data[i].expected);
        tu_data_free(&data[i].t);
    }
}

static void remove_dir(void) {
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && unlink(path_of(de->d_name)))
            rmdir(path_of(de->d_name));
    if (d) closedir(d);
    rmdir(dir);
}

int main(void) {
    unsetenv("CONVBLAS_STRATEGY");
    unsetenv("CONVBLAS_NUM_THREADS");
    snprintf(dir, sizeof dir, "/tmp/convblas-wisdom-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("test_wisdom: mkdtemp");
        return 2;
    }
    test_record_and_recall();
    test_key();
    test_wisdom_wins_unless_forced();
    test_round_trip();
    test_foreign();
    test_bad_files();
    test_bad_paths();
    test_concurrency();
    convblas_wisdom_forget();
    remove_dir();
    return tu_finish("test_wisdom");
}
