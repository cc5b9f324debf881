/* The plot, written as SVG text: one band per layer and thread count; in it each
 * strategy's, planner plan's and peer's median time relative to the band's fastest entry,
 * as markers on a shared log axis (1 = fastest), dodged vertically so none hides another.
 * Entries of every row come in the same order (run.c), so an entry's index is its series. */
#include "bench.h"

#include <math.h>
#include <string.h>

enum { WIDTH = 1100, LEFT = 230, RIGHT = 190, TOP_GAP = 40, SERIES_GAP = 7, BAND_PAD = 6 };

static const char *const strategy_colors[] = {"#1f77b4", "#2ca02c", "#9467bd", "#17becf",
                                              "#bcbd22", "#8c564b", "#7f7f7f", "#aec7e8",
                                              "#98df8a", "#c5b0d5"};
static const char *const peer_colors[] = {"#ff7f0e", "#d62728", "#e377c2", "#ffbb78"};

typedef struct axis {
    double max;         /* right end, a 1-2-5 value */
    double x0, x1;      /* pixels of 1 and of max */
    double top, bottom; /* pixels of the bands */
} axis;

static double xpos(const axis *a, double rel) {
    if (rel > a->max) rel = a->max;
    if (rel < 1) rel = 1;
    return a->x0 + (a->x1 - a->x0) * log(rel) / log(a->max);
}

static void text(FILE *f, double x, double y, const char *anchor, const char *style,
                 const char *s) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" %s>", x, y, anchor, style);
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
    fputs("</text>\n", f);
}

/* The marker of series i at (x, y); mismatched outputs are drawn as a red cross. */
static void marker(FILE *f, const entry_result *e, int peer_index, int strategy_index, double x,
                   double y) {
    if (e->check == 0) {
        fprintf(f, "<path d=\"M%.1f %.1fl7 7m0 -7l-7 7\" stroke=\"#d00\" stroke-width=\"2\"/>\n",
                x - 3.5, y - 3.5);
    } else if (e->kind == ENTRY_STRATEGY) {
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.6\" fill=\"%s\"/>\n", x, y,
                strategy_colors[strategy_index % 10]);
    } else if (e->kind == ENTRY_PEER) {
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"7\" height=\"7\" fill=\"%s\"/>\n", x - 3.5,
                y - 3.5, peer_colors[peer_index % 4]);
    } else {
        bool est = e->kind == ENTRY_ESTIMATE;
        fprintf(f,
                "<path d=\"M%.1f %.1fl4 4l-4 4l-4 -4z\" fill=\"none\" stroke=\"%s\" "
                "stroke-width=\"1.6\"/>\n",
                x, y - 4, est ? "#000" : "#888");
    }
}

/* Index of entry i among the entries of its kind (for the colour). */
static int kind_index(const row_result *r, int i) {
    int k = 0;
    for (int j = 0; j < i; j++) k += r->entries[j].kind == r->entries[i].kind;
    return k;
}

static const char *legend_label(const entry_result *e, char *buf, size_t size) {
    if (e->kind == ENTRY_ESTIMATE)
        snprintf(buf, size, "planner ESTIMATE plan");
    else if (e->kind == ENTRY_MEASURE)
        snprintf(buf, size, "planner MEASURE plan");
    else if (e->kind == ENTRY_PEER)
        snprintf(buf, size, "peer %s", e->label);
    else
        snprintf(buf, size, "%s", e->label);
    return buf;
}

/* Lays the legend out from y = 48 and draws it when f is not NULL; returns its bottom. */
static double legend(FILE *f, const row_result *r) {
    double x = LEFT, y = 48;
    if (f) text(f, 12, y + 4, "start", "font-weight=\"bold\"", "legend:");
    for (int i = 0; i <= r->count; i++) {
        entry_result shown = {.check = 0};
        char label[80] = "output MISMATCH";
        if (i < r->count) {
            shown = r->entries[i];
            shown.check = 1;
            legend_label(&shown, label, sizeof label);
        }
        double w = 30 + 7.0 * (double)strlen(label);
        if (x + w > WIDTH - 20) x = LEFT, y += 18;
        if (f) {
            marker(f, &shown, kind_index(r, i < r->count ? i : 0),
                   kind_index(r, i < r->count ? i : 0), x, y);
            text(f, x + 9, y + 4, "start", "", label);
        }
        x += w;
    }
    return y + 10;
}

static void grid(FILE *f, const axis *a) {
    static const double steps[] = {1, 2, 5};
    for (double decade = 1; decade <= a->max; decade *= 10)
        for (int i = 0; i < 3; i++) {
            double v = decade * steps[i];
            if (v > a->max * 1.0001) break;
            char label[16];
            snprintf(label, sizeof label, "%gx", v);
            double x = xpos(a, v);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", x,
                    a->top, x, a->bottom, v == 1 ? "#444" : "#ccc");
            text(f, x, a->top - 5, "middle", "", label);
            text(f, x, a->bottom + 15, "middle", "", label);
        }
}

static void band_label(FILE *f, const row_result *r, double y, double h, bool shade,
                       bool show_threads) {
    char label[96];
    if (shade)
        fprintf(f, "<rect x=\"4\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"#f0f0f0\"/>\n", y,
                WIDTH - 8, h);
    if (show_threads)
        snprintf(label, sizeof label, "%s  t=%d", r->layer->name, r->threads);
    else
        snprintf(label, sizeof label, "%s", r->layer->name);
    text(f, LEFT - 10, y + h / 2 + 4, "end", "", label);
}

/* The markers of one row, one vertical slot per series, and the fastest's time. */
static void band_markers(FILE *f, const axis *a, const row_result *r, double y, double h) {
    char right[96];
    const entry_result *best = NULL;
    for (int i = 0; i < r->count; i++) {
        const entry_result *e = &r->entries[i];
        if (e->reps == 0 || e->rel_fastest <= 0) continue;
        double cy = y + BAND_PAD / 2.0 + SERIES_GAP * (i + 0.5);
        marker(f, e, kind_index(r, i), kind_index(r, i), xpos(a, e->rel_fastest), cy);
        bool candidate = e->kind == ENTRY_STRATEGY || e->kind == ENTRY_PEER;
        if (candidate && e->check != 0 && (!best || e->median < best->median)) best = e;
    }
    if (best) {
        char t[24];
        format_seconds(best->median, t, sizeof t);
        snprintf(right, sizeof right, "%s  %s", t, best->label);
        text(f, a->x1 + 12, y + h / 2 + 4, "start", "font-size=\"11\"", right);
    }
}

static double axis_max(const row_result *rows, int count) {
    double worst = 1;
    for (int i = 0; i < count; i++)
        for (int j = 0; j < rows[i].count; j++)
            if (rows[i].entries[j].rel_fastest > worst) worst = rows[i].entries[j].rel_fastest;
    static const double steps[] = {2, 5, 10};
    for (double decade = 1; decade < 1000; decade *= 10)
        for (int i = 0; i < 3; i++)
            if (decade * steps[i] >= worst) return decade * steps[i];
    return 1000;
}

int plot_svg(const char *path, const row_result *rows, int count) {
    if (count == 0) return 0;
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    bool multi = false;
    for (int i = 1; i < count; i++) multi = multi || rows[i].threads != rows[0].threads;
    double h = BAND_PAD + SERIES_GAP * rows[0].count;
    axis a = {.max = axis_max(rows, count),
              .x0 = LEFT,
              .x1 = WIDTH - RIGHT,
              .top = legend(NULL, &rows[0]) + TOP_GAP};
    a.bottom = a.top + h * count;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" "
            "font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n",
            WIDTH, a.bottom + 50);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    text(f, 12, 22, "start", "font-size=\"15\" font-weight=\"bold\"",
         "convblas-bench: median time relative to the fastest entry of each row (log scale)");
    legend(f, &rows[0]);
    for (int i = 0, layer = 0; i < count; i++) { /* shading alternates per layer */
        layer += i > 0 && rows[i].layer != rows[i - 1].layer;
        band_label(f, &rows[i], a.top + h * i, h, layer % 2 == 0, multi);
    }
    grid(f, &a);
    for (int i = 0; i < count; i++) band_markers(f, &a, &rows[i], a.top + h * i, h);
    text(f, a.x1 + 12, a.top - 22, "start", "font-size=\"11\" font-weight=\"bold\"",
         "fastest: time, entry");
    char note[256];
    snprintf(note, sizeof note,
             "%s; OpenBLAS core %s; the planner's plans (diamonds) run the "
             "strategy they picked",
             machine_cpu_model(), machine_blas_core());
    text(f, 12, a.bottom + 38, "start", "font-size=\"11\" fill=\"#555\"", note);
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? 0 : -1;
}
