/* Wisdom files: convblas_wisdom_export and convblas_wisdom_import (see wisdom.h). One
 * line each: the version, the machine (cpu, blas, convblas), the entries (a key of
 * "name=value" fields in a fixed order, then strategy= and seconds=), and "end N". */
#include "wisdom.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { LINE_SIZE = 1024, FORMAT_VERSION = 1, NAME_SIZE = CB_WISDOM_NAME_SIZE };
#define FILE_MAGIC "convblas-wisdom"

typedef cb_wisdom_machine machine;
typedef cb_wisdom_entry entry;
typedef cb_wisdom_table table;

/* ---- the key's fields ------------------------------------------------------------------ */

typedef enum { F_NUMBER, F_DIMS, F_NAME, F_ALPHA } field_kind;

/* How a slot reads in the file: "name=value", in this order. */
typedef struct field {
    const char *name;
    field_kind kind;
    int slot;
    uint64_t min, max; /* F_NUMBER, F_DIMS; max 0: no limit */
    const char *const *names;
} field;

static const char *const op_names[] = {"conv", "depthwise", "separable", NULL};
static const char *const padding_names[] = {"valid", "same", "causal", NULL};
static const char *const format_names[] = {"channels_last", "channels_first", NULL};
static const char *const activation_names[] = {
    "linear", "relu",     "relu6",        "sigmoid",    "tanh",       "gelu", "swish",
    "elu",    "softplus", "hard_sigmoid", "hard_swish", "leaky_relu", NULL};

static const field fields[] = {
    {"op", F_NAME, CB_WK_OP, 0, 0, op_names},
    {"rank", F_NUMBER, CB_WK_RANK, 1, 2, NULL},
    {"filters", F_NUMBER, CB_WK_FILTERS, 0, 0, NULL},
    {"kernel", F_DIMS, CB_WK_KERNEL, 1, 0, NULL},
    {"strides", F_DIMS, CB_WK_STRIDES, 1, 0, NULL},
    {"dilation", F_DIMS, CB_WK_DILATION, 1, 0, NULL},
    {"padding", F_NAME, CB_WK_PADDING, 0, 0, padding_names},
    {"format", F_NAME, CB_WK_FORMAT, 0, 0, format_names},
    {"groups", F_NUMBER, CB_WK_GROUPS, 1, 0, NULL},
    {"multiplier", F_NUMBER, CB_WK_MULTIPLIER, 1, 0, NULL},
    {"activation", F_NAME, CB_WK_ACTIVATION, 0, 0, activation_names},
    {"alpha", F_ALPHA, CB_WK_ALPHA, 0, 0, NULL},
    {"bias", F_NUMBER, CB_WK_BIAS, 0, 1, NULL},
    {"batch", F_NUMBER, CB_WK_BATCH, 0, 0, NULL},
    {"spatial", F_DIMS, CB_WK_SPATIAL, 1, 0, NULL},
    {"channels", F_NUMBER, CB_WK_CHANNELS, 1, 0, NULL},
    {"threads", F_NUMBER, CB_WK_THREADS, 1, 0, NULL},
    {"workspace_limit", F_NUMBER, CB_WK_WORKSPACE, 1, 0, NULL},
    {"tile_bytes", F_NUMBER, CB_WK_TILE, 1, 0, NULL},
};
enum { FIELDS = sizeof fields / sizeof fields[0] };

/* ---- writing --------------------------------------------------------------------------- */

static void print_dims(FILE *f, const uint64_t *key, int slot) {
    if (key[CB_WK_RANK] == 2) fprintf(f, "%llux", (unsigned long long)key[slot]);
    fprintf(f, "%llu", (unsigned long long)key[slot + 1]);
}

static void print_entry(FILE *f, const entry *e) {
    fputs("entry", f);
    for (int i = 0; i < FIELDS; i++) {
        const field *fd = &fields[i];
        uint64_t v = e->key[fd->slot];
        fprintf(f, " %s=", fd->name);
        if (fd->kind == F_NAME) {
            fputs(fd->names[v], f);
        } else if (fd->kind == F_DIMS) {
            print_dims(f, e->key, fd->slot);
        } else if (fd->kind == F_ALPHA) {
            uint32_t bits = (uint32_t)v;
            float alpha;
            memcpy(&alpha, &bits, sizeof alpha);
            fprintf(f, "%.9g", (double)alpha);
        } else {
            fprintf(f, "%llu", (unsigned long long)v);
        }
    }
    fprintf(f, " strategy=%s seconds=%.6e\n", e->strategy, e->seconds);
}

static void print_table(FILE *f, const table *t) {
    fprintf(f,
            FILE_MAGIC
            " %d\n"
            "# The strategies convblas's MEASURE planner chose: one entry per layer, input shape,\n"
            "# thread count, workspace limit and tile size, with the time measured. Entries\n"
            "# apply only on the machine of the cpu, blas and convblas lines above them.\n",
            FORMAT_VERSION);
    for (size_t m = 0; m < t->n_machines; m++) {
        const machine *mc = &t->machines[m];
        fprintf(f, "cpu %s\nblas %s\nconvblas %s\n", mc->cpu, mc->blas, mc->build);
        for (size_t i = 0; i < t->n_entries; i++)
            if (t->entries[i].machine == m) print_entry(f, &t->entries[i]);
    }
    fprintf(f, "end %zu\n", t->n_entries);
}

static convblas_status write_error(const char *path, const char *what, int err) {
    return cb_fail(CONVBLAS_IO_ERROR, "cannot write wisdom file \"%s\" (%s): %s", path, what,
                   strerror(err));
}

/* A new file beside path, so that the rename that publishes it stays in one filesystem. */
static int create_temporary(const char *path, unsigned serial, char *tmp, size_t size) {
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(tmp, size, "%s.tmp.%ld.%u", path, (long)getpid(), serial + attempt * 7919u);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

/* Writes t to a temporary file, flushed to disk, then renames it over path: a reader (or a
 * crash) sees the old file or the new, never half of one. */
static convblas_status write_file(const char *path, const table *t, unsigned serial) {
    size_t size = strlen(path) + 48;
    char *tmp = cb_malloc(size);
    if (!tmp) return cb_fail(CONVBLAS_OUT_OF_MEMORY, "out of memory exporting wisdom");
    convblas_status st = CONVBLAS_OK;
    int fd = create_temporary(path, serial, tmp, size);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (fd < 0) {
        st = write_error(path, "creating a temporary file beside it", errno);
    } else if (!f) {
        st = write_error(path, "opening the temporary file", errno);
        close(fd);
    } else {
        print_table(f, t);
        if (fflush(f) || ferror(f) || fsync(fd)) st = write_error(path, "writing", errno);
        if (fclose(f) && !st) st = write_error(path, "closing", errno);
        if (!st && rename(tmp, path)) st = write_error(path, "renaming the temporary file", errno);
    }
    if (st && fd >= 0) unlink(tmp);
    cb_free(tmp);
    return st;
}

convblas_status convblas_wisdom_export(const char *path) {
    if (!path) return cb_fail(CONVBLAS_INVALID_ARGUMENT, "wisdom export: path is NULL");
    table snapshot;
    unsigned serial;
    /* A copy, so that plan creation does not wait for the disk. */
    if (!cb_wisdom_snapshot(&snapshot, &serial))
        return cb_fail(CONVBLAS_OUT_OF_MEMORY, "out of memory copying the wisdom to export");
    convblas_status st = write_file(path, &snapshot, serial);
    cb_wisdom_table_free(&snapshot);
    return st;
}

/* ---- reading --------------------------------------------------------------------------- */

typedef struct reader {
    const char *path;
    FILE *f;
    int line;
    char buf[LINE_SIZE + 1];
    machine current; /* from the cpu, blas and convblas lines so far */
    unsigned have;   /* bits: 1 cpu, 2 blas, 4 convblas */
    size_t entries;  /* entry lines read */
} reader;

static convblas_status bad(const reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static convblas_status bad(const reader *r, const char *fmt, ...) {
    char what[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cb_fail(CONVBLAS_IO_ERROR, "wisdom file \"%s\", line %d: %s; nothing was imported",
                   r->path, r->line, what);
}

/* The next line into r->buf, checked to be text; *eof at the end of the file. */
static convblas_status not_text(const reader *r, int byte, size_t column) {
    return bad(r, "byte 0x%02x at column %zu is not text (a binary or damaged file)", byte, column);
}

static bool is_text(int c) {
    return c >= 0x20 && c != 0x7f;
}

static convblas_status next_line(reader *r, bool *eof) {
    size_t n = 0;
    int c;
    r->line++;
    while ((c = getc(r->f)) != EOF && c != '\n') {
        /* checked as read: junk is named as junk, not as an overlong or truncated line */
        if (!is_text(c) && c != '\r') return not_text(r, c, n + 1);
        if (n == LINE_SIZE) return bad(r, "line longer than %d characters", LINE_SIZE);
        r->buf[n++] = (char)c;
    }
    if (c == EOF && ferror(r->f)) return bad(r, "cannot read: %s", strerror(errno));
    *eof = c == EOF && n == 0;
    if (c == EOF && n > 0) return bad(r, "the last line has no end (the file is truncated)");
    if (n > 0 && r->buf[n - 1] == '\r') n--; /* CRLF line ends */
    r->buf[n] = '\0';
    char *cr = memchr(r->buf, '\r', n);
    return cr ? not_text(r, '\r', (size_t)(cr - r->buf) + 1) : CONVBLAS_OK;
}

/* Splits off the next space-separated token; NULL at the end of the line. */
static char *token(char **cursor) {
    char *s = *cursor;
    while (*s == ' ') s++;
    if (!*s) return NULL;
    char *end = s + strcspn(s, " ");
    if (*end) *end++ = '\0';
    *cursor = end;
    return s;
}

static bool parse_u64(const char *s, const char **end, uint64_t *v) {
    if (*s < '0' || *s > '9') return false;
    errno = 0;
    char *e;
    unsigned long long x = strtoull(s, &e, 10);
    *end = e;
    *v = x;
    return errno == 0;
}

static convblas_status parse_number(const reader *r, const field *fd, const char *s, uint64_t *v) {
    const char *end;
    if (!parse_u64(s, &end, v) || *end) return bad(r, "%s=%s is not a whole number", fd->name, s);
    if (*v < fd->min || (fd->max && *v > fd->max))
        return bad(r, "%s=%s is out of range", fd->name, s);
    return CONVBLAS_OK;
}

/* "H x W" at rank 2, "W" at rank 1 (height 1, as the planner sees rank 1). */
static convblas_status parse_dims(const reader *r, const field *fd, const char *s, uint64_t *key) {
    const char *end = s;
    uint64_t v[2] = {1, 1};
    int want = (int)key[CB_WK_RANK];
    for (int i = 2 - want; i < 2; i++) {
        if (i > 2 - want && *end++ != 'x')
            return bad(r, "%s=%s: expected %d sizes joined by 'x'", fd->name, s, want);
        if (!parse_u64(end, &end, &v[i]) || v[i] < fd->min)
            return bad(r, "%s=%s: sizes must be whole numbers >= %llu", fd->name, s,
                       (unsigned long long)fd->min);
    }
    if (*end) return bad(r, "%s=%s: expected %d size(s) for rank %d", fd->name, s, want, want);
    key[fd->slot] = v[0];
    key[fd->slot + 1] = v[1];
    return CONVBLAS_OK;
}

static convblas_status parse_name(const reader *r, const field *fd, const char *s, uint64_t *v) {
    for (uint64_t i = 0; fd->names[i]; i++)
        if (!strcmp(fd->names[i], s)) {
            *v = i;
            return CONVBLAS_OK;
        }
    return bad(r, "%s=%s is not a known %s", fd->name, s, fd->name);
}

static convblas_status parse_alpha(const reader *r, const char *s, uint64_t *v) {
    char *end;
    errno = 0;
    float alpha = strtof(s, &end);
    if (!*s || *end || errno || !isfinite(alpha))
        return bad(r, "alpha=%s is not a finite number", s);
    uint32_t bits;
    memcpy(&bits, &alpha, sizeof bits);
    *v = bits;
    return CONVBLAS_OK;
}

static convblas_status parse_field(const reader *r, const field *fd, char **cursor, uint64_t *key) {
    char *t = token(cursor);
    size_t len = strlen(fd->name);
    if (!t) return bad(r, "the entry ends before its %s= field", fd->name);
    if (strncmp(t, fd->name, len) != 0 || t[len] != '=')
        return bad(r, "expected %s= where \"%.40s\" is", fd->name, t);
    const char *v = t + len + 1;
    switch (fd->kind) {
    case F_NAME:
        return parse_name(r, fd, v, &key[fd->slot]);
    case F_DIMS:
        return parse_dims(r, fd, v, key);
    case F_ALPHA:
        return parse_alpha(r, v, &key[fd->slot]);
    default:
        return parse_number(r, fd, v, &key[fd->slot]);
    }
}

/* "strategy=NAME seconds=X". A name this build lacks is corruption in this machine's
 * entries; in another machine's it may be a strategy of another convblas build. */
static convblas_status parse_value(const reader *r, char **cursor, entry *e) {
    char *t = token(cursor);
    if (!t || strncmp(t, "strategy=", 9) != 0) return bad(r, "expected strategy= after the key");
    const char *name = t + 9;
    if (!*name || strlen(name) >= NAME_SIZE ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name))
        return bad(r, "strategy=%.40s is not a strategy name", name);
    if (cb_wisdom_same_machine(&r->current, cb_wisdom_this_machine()) &&
        cb_wisdom_strategy_index(name) < 0)
        return bad(r, "strategy \"%s\" is not one of this build's", name);
    snprintf(e->strategy, sizeof e->strategy, "%s", name);
    t = token(cursor);
    char *end;
    if (!t || strncmp(t, "seconds=", 8) != 0) return bad(r, "expected seconds= after strategy=");
    errno = 0;
    e->seconds = strtod(t + 8, &end);
    if (!t[8] || *end || errno || !isfinite(e->seconds) || e->seconds <= 0)
        return bad(r, "%s is not a positive number of seconds", t);
    if ((t = token(cursor))) return bad(r, "unexpected \"%.40s\" after seconds=", t);
    return CONVBLAS_OK;
}

static convblas_status parse_entry(reader *r, char *rest, table *t) {
    if (r->have != 7)
        return bad(r, "an entry before the cpu, blas and convblas lines naming its machine");
    entry e = {0};
    char *cursor = rest;
    convblas_status st;
    for (int i = 0; i < FIELDS; i++)
        if ((st = parse_field(r, &fields[i], &cursor, e.key))) return st;
    if ((st = parse_value(r, &cursor, &e))) return st;
    r->entries++;
    if (!cb_wisdom_put(t, &r->current, &e))
        return cb_fail(CONVBLAS_OUT_OF_MEMORY,
                       "out of memory reading wisdom file \"%s\"; nothing was imported", r->path);
    return CONVBLAS_OK;
}

static convblas_status parse_machine(reader *r, const char *word, const char *rest) {
    static const struct {
        const char *word;
        size_t offset, size;
    } parts[] = {{"cpu", offsetof(machine, cpu), sizeof(((machine *)0)->cpu)},
                 {"blas", offsetof(machine, blas), sizeof(((machine *)0)->blas)},
                 {"convblas", offsetof(machine, build), sizeof(((machine *)0)->build)}};
    for (unsigned i = 0; i < 3; i++) {
        if (strcmp(word, parts[i].word) != 0) continue;
        if (!*rest || strlen(rest) >= parts[i].size)
            return bad(r, "the %s line must name it in 1 to %zu characters", word,
                       parts[i].size - 1);
        memcpy((char *)&r->current + parts[i].offset, rest, strlen(rest) + 1);
        r->have |= 1u << i;
        return CONVBLAS_OK;
    }
    return bad(r, "\"%.40s\" is not a wisdom line (cpu, blas, convblas, entry, end)", word);
}

static convblas_status parse_header(reader *r) {
    bool eof;
    convblas_status st = next_line(r, &eof);
    if (st) return st;
    if (eof)
        return bad(r, "the file is empty; a wisdom file starts with \"" FILE_MAGIC " %d\"",
                   FORMAT_VERSION);
    const char *end;
    uint64_t version;
    size_t magic = strlen(FILE_MAGIC);
    if (strncmp(r->buf, FILE_MAGIC " ", magic + 1) != 0 ||
        !parse_u64(r->buf + magic + 1, &end, &version) || *end)
        return bad(r, "not a convblas wisdom file (the first line must be \"" FILE_MAGIC " %d\")",
                   FORMAT_VERSION);
    if (version != FORMAT_VERSION)
        return bad(r, "wisdom format version %s; this convblas reads version %d",
                   r->buf + magic + 1, FORMAT_VERSION);
    return CONVBLAS_OK;
}

/* "end N", then nothing but comments: N guards against a file cut at a line boundary. */
static convblas_status parse_end(reader *r, const char *rest) {
    const char *end;
    uint64_t n;
    if (!parse_u64(rest, &end, &n) || *end) return bad(r, "the end line must be \"end <entries>\"");
    if (n != r->entries)
        return bad(r, "the end line counts %llu entries but the file has %zu (damaged)",
                   (unsigned long long)n, r->entries);
    for (bool eof = false;;) {
        convblas_status st = next_line(r, &eof);
        if (st || eof) return st;
        const char *s = r->buf + strspn(r->buf, " ");
        if (*s && *s != '#') return bad(r, "text after the end line");
    }
}

static convblas_status parse_file(reader *r, table *t) {
    convblas_status st = parse_header(r);
    for (bool eof = false; !st;) {
        if ((st = next_line(r, &eof))) break;
        if (eof) return bad(r, "the file ends without its \"end\" line (truncated)");
        char *cursor = r->buf;
        char *word = token(&cursor);
        if (!word || word[0] == '#') continue;
        if (!strcmp(word, "entry"))
            st = parse_entry(r, cursor, t);
        else if (!strcmp(word, "end"))
            return parse_end(r, cursor);
        else
            st = parse_machine(r, word, cursor);
    }
    return st;
}

convblas_status convblas_wisdom_import(const char *path) {
    if (!path) return cb_fail(CONVBLAS_INVALID_ARGUMENT, "wisdom import: path is NULL");
    reader r = {.path = path, .f = fopen(path, "r")};
    if (!r.f)
        return cb_fail(CONVBLAS_IO_ERROR, "cannot open wisdom file \"%s\": %s", path,
                       strerror(errno));
    table parsed = {0};
    convblas_status st = parse_file(&r, &parsed);
    fclose(r.f);
    if (!st && !cb_wisdom_merge(&parsed))
        st = cb_fail(CONVBLAS_OUT_OF_MEMORY,
                     "out of memory merging wisdom file \"%s\"; nothing was imported", path);
    cb_wisdom_table_free(&parsed);
    return st;
}
