/* The suite file: tab-separated, '#' comments, a header line naming the columns
 * (name layer data_format batch spatial channels filters kernel strides dilation padding
 * groups depth_multiplier activation source; optional use_bias), '-' where a field does
 * not apply. Each row goes through the same keys as a command-line spec (spec.c). */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_COLUMNS = 32 };

typedef struct columns {
    char *names[MAX_COLUMNS];
    int count;
} columns;

/* Splits line in place at tabs; returns the field count. */
static int split_tabs(char *line, char **fields, int max) {
    int n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    for (char *p = line; n < max;) {
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab) break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

static const char *field(const columns *h, char **fields, int n, const char *name) {
    for (int i = 0; i < h->count && i < n; i++)
        if (strcmp(h->names[i], name) == 0) return fields[i];
    return NULL;
}

static bool given(const char *v) {
    return v && *v && strcmp(v, "-") != 0;
}

/* The suite's column -> the spec's key. */
static const char *const key_map[][2] = {
    {"filters", "filters"},
    {"kernel", "kernel"},
    {"strides", "strides"},
    {"dilation", "dilation"},
    {"padding", "padding"},
    {"groups", "groups"},
    {"depth_multiplier", "multiplier"},
    {"activation", "activation"},
    {"use_bias", "bias"},
    {"name", "name"},
};

static int set_input(bench_layer *l, const char *batch, const char *spatial, const char *channels,
                     char *err, size_t n) {
    if (!given(batch) || !given(spatial) || !given(channels)) {
        snprintf(err, n, "%s: batch, spatial and channels are required", l->name);
        return -1;
    }
    char dims[128];
    if (l->desc.data_format == CONVBLAS_CHANNELS_LAST)
        snprintf(dims, sizeof dims, "%sx%sx%s", batch, spatial, channels);
    else
        snprintf(dims, sizeof dims, "%sx%sx%s", batch, channels, spatial);
    return spec_set(l, "input", dims, err, n);
}

static int parse_row(const columns *h, char **f, int nf, bench_layer *l, char *err, size_t n) {
    const char *kind = field(h, f, nf, "layer"), *format = field(h, f, nf, "data_format");
    const char *source = field(h, f, nf, "source");
    if (!given(kind)) {
        snprintf(err, n, "no layer kind");
        return -1;
    }
    if (spec_begin(l, kind, err, n)) return -1;
    if (given(format) && spec_set(l, "format", format, err, n)) return -1;
    for (size_t i = 0; i < sizeof key_map / sizeof key_map[0]; i++) {
        const char *v = field(h, f, nf, key_map[i][0]);
        if (given(v) && spec_set(l, key_map[i][1], v, err, n)) return -1;
    }
    if (set_input(l, field(h, f, nf, "batch"), field(h, f, nf, "spatial"),
                  field(h, f, nf, "channels"), err, n))
        return -1;
    if (given(source)) snprintf(l->source, sizeof l->source, "%s", source);
    return spec_finish(l, err, n);
}

/* Whether name is in the comma-separated list. */
static bool listed(const char *list, const char *name) {
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        if (k == len && strncmp(p, name, len) == 0) return true;
        p += k + (p[k] == ',');
    }
    return false;
}

static int check_rows_found(const char *rows, const bench_layer *layers, int count, char *err,
                            size_t n) {
    for (const char *p = rows; *p;) {
        size_t k = strcspn(p, ",");
        bool found = k == 0;
        for (int i = 0; i < count && !found; i++)
            found = strlen(layers[i].name) == k && strncmp(layers[i].name, p, k) == 0;
        if (!found) {
            snprintf(err, n, "--rows: no row named \"%.*s\" in the suite", (int)k, p);
            return -1;
        }
        p += k + (p[k] == ',');
    }
    return 0;
}

static int add_layer(bench_layer **layers, int *count, int *cap, const bench_layer *l) {
    if (*count == *cap) {
        int c = *cap ? 2 * *cap : 32;
        bench_layer *p = realloc(*layers, (size_t)c * sizeof *p);
        if (!p) return -1;
        *layers = p;
        *cap = c;
    }
    (*layers)[(*count)++] = *l;
    return 0;
}

static int read_lines(FILE *f, const char *path, const char *rows, bench_layer **layers, int *count,
                      char *err, size_t n) {
    char line[2048], header[2048] = "", *fields[MAX_COLUMNS];
    columns h = {.count = 0};
    int cap = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0') continue;
        if (h.count == 0) {
            snprintf(header, sizeof header, "%s", line);
            h.count = split_tabs(header, h.names, MAX_COLUMNS);
            continue;
        }
        int nf = split_tabs(line, fields, MAX_COLUMNS);
        bench_layer l;
        char why[400];
        if (parse_row(&h, fields, nf, &l, why, sizeof why)) {
            snprintf(err, n, "%s:%d: %s", path, lineno, why);
            return -1;
        }
        if (rows && !listed(rows, l.name)) continue;
        if (add_layer(layers, count, &cap, &l)) {
            snprintf(err, n, "out of memory reading %s", path);
            return -1;
        }
    }
    return 0;
}

int suite_read(const char *path, const char *rows, bench_layer **layers, int *count, char *err,
               size_t n) {
    FILE *f = fopen(path, "r");
    *layers = NULL;
    *count = 0;
    if (!f) {
        snprintf(err, n, "cannot open suite file %s", path);
        return -1;
    }
    int st = read_lines(f, path, rows, layers, count, err, n);
    fclose(f);
    if (st == 0 && rows) st = check_rows_found(rows, *layers, *count, err, n);
    if (st == 0 && *count == 0) {
        snprintf(err, n, "%s: no layers", path);
        st = -1;
    }
    if (st) {
        free(*layers);
        *layers = NULL;
        *count = 0;
    }
    return st;
}
