/* convblas-bench: every strategy of convblas, the planner's picks and the peers, side by
 * side on one layer or a suite of real layers; see --help. */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct options {
    const char *suite, *rows, *csv, *svg;
    char spec[1024];
    int threads[BENCH_MAX_THREADS], thread_count;
    double budget, triad_mib;
    int min_reps, gemm_n;
    int place[2]; /* --place: input, output bytes past a page; -1: malloc's */
    bool peers, limits, describe, verbose, config;
} options;

static void usage(FILE *f) {
    fputs("Usage: convblas-bench [OPTIONS] KIND KEY=VALUE...\n"
          "       convblas-bench [OPTIONS] --suite FILE [--rows NAME,...]\n"
          "Times every convblas strategy forced by name, the planner's ESTIMATE and MEASURE\n"
          "plans and the peers compiled in, on one layer or on each layer of a suite file,\n"
          "after checking every output against the im2col_gemm strategy's.\n\n"
          "Options:\n"
          "  --suite FILE     layers from a suite file (bench-suite.tsv's format; installed in\n"
          "                   share/convblas/)\n"
          "  --rows LIST      only these rows of the suite (comma-separated names)\n"
          "  --threads LIST   thread counts, comma-separated (default: 1,<online CPUs>)\n"
          "  --budget SEC     seconds of timed runs per entry and thread count (default 0.3)\n"
          "  --min-reps N     at least N timed runs per entry (default 5)\n"
          "  --csv FILE       write every figure as CSV ('#' lines first: machine, versions)\n"
          "  --svg FILE       draw each row's times relative to its fastest entry as SVG\n"
          "  --no-peers       leave the peers out\n"
          "  --no-limits      do not measure the machine's limits (no roofline column)\n"
          "  --gemm-n N       square sgemm size for the flops limit (default 2048)\n"
          "  --triad-mib N    MiB per array of the bandwidth triad (default 256)\n"
          "  --place IN,OUT   put the input IN and the output OUT bytes past a 4 KiB page\n"
          "                   (multiples of 4, below 4096; default: where malloc puts\n"
          "                   them): small layers' times depend on how input and output\n"
          "                   lie modulo 4 KiB, in every library (4K aliasing)\n"
          "  --data MODE      normal (default), denormal (input and bias below FLT_MIN) or\n"
          "                   underflow (input and kernel products underflow): the cost of\n"
          "                   denormal arithmetic; the output check is then vacuous\n"
          "  --describe       print the ESTIMATE plan's description for each layer\n"
          "  -v, --verbose    say why each '-' entry cannot run the layer\n"
          "  --config         print the build, strategies and peers, and exit\n"
          "  -h, --help       this text\n\n",
          f);
    spec_print_grammar(f);
    fputs("\nTable columns: entry (a strategy forced by name; ESTIMATE:/MEASURE: the planner's\n"
          "plan and its pick; peer NAME), check (ok, MISMATCH, - not applicable, ERROR),\n"
          "median time, spread (min and max vs the median), rel (median / the row's fastest\n"
          "strategy or peer), GFLOP/s (2 per multiply-add of the convolution; separable: both\n"
          "stages), GB/s (input + weights + bias + output bytes, once each, per second), roof\n"
          "(GFLOP/s / min(sgemm peak, triad bandwidth x flops/bytes) at that thread count),\n"
          "workspace, mark (* fastest strategy, E ESTIMATE's pick, M MEASURE's pick), cb/peer\n"
          "(ESTIMATE plan time / peer time: below 1, convblas is faster).\n"
          "Exit status: 0; 1 on a usage error; 2 when an output mismatched or a run failed.\n"
          "Benchmark with OPENBLAS_CORETYPE unset: forcing an older core slows sgemm.\n",
          f);
}

static int parse_threads(const char *s, options *o) {
    o->thread_count = 0;
    for (const char *p = s; *p;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 1 || v > 1024 || (*end && *end != ',') ||
            o->thread_count == BENCH_MAX_THREADS) {
            fprintf(stderr,
                    "--threads %s: expected up to %d counts from 1 to 1024, "
                    "comma-separated\n",
                    s, BENCH_MAX_THREADS);
            return -1;
        }
        o->threads[o->thread_count++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return o->thread_count > 0 ? 0 : -1;
}

static int parse_number(const char *opt, const char *s, double min, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (errno || end == s || *end || *v < min) {
        fprintf(stderr, "%s %s: expected a number >= %g\n", opt, s, min);
        return -1;
    }
    return 0;
}

static int append_spec(options *o, const char *arg) {
    size_t used = strlen(o->spec);
    if (used + strlen(arg) + 2 > sizeof o->spec) {
        fprintf(stderr, "layer spec too long\n");
        return -1;
    }
    snprintf(o->spec + used, sizeof o->spec - used, "%s%s", used ? " " : "", arg);
    return 0;
}

/* "IN,OUT": byte offsets past a page, multiples of a float, below 4096. */
static int parse_place(const char *text, options *o) {
    const char *v = text;
    char *end;
    for (int i = 0; i < 2; i++) {
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || end == v || x < 0 || x >= 4096 || x % 4 || *end != (i == 0 ? ',' : '\0')) {
            fprintf(stderr,
                    "--place %s: expected IN,OUT, byte offsets below 4096 and "
                    "multiples of 4 (e.g. 0,64)\n",
                    text);
            return -1;
        }
        o->place[i] = (int)x;
        v = end + 1;
    }
    return 0;
}

/* Options that take a value; 1 if argv[*i] was one of them, -1 on error. */
static int value_option(options *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    static const char *const names[] = {"--suite",     "--rows",   "--csv",      "--svg",
                                        "--threads",   "--budget", "--min-reps", "--gemm-n",
                                        "--triad-mib", "--data",   "--place"};
    int k = -1;
    for (int j = 0; j < (int)(sizeof names / sizeof names[0]); j++)
        if (strcmp(a, names[j]) == 0) k = j;
    if (k < 0) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s needs a value\n", a);
        return -1;
    }
    const char *v = argv[++*i];
    double x;
    switch (k) {
    case 0:
        o->suite = v;
        return 1;
    case 1:
        o->rows = v;
        return 1;
    case 2:
        o->csv = v;
        return 1;
    case 3:
        o->svg = v;
        return 1;
    case 4:
        return parse_threads(v, o) ? -1 : 1;
    case 5:
        return parse_number(a, v, 0, &o->budget) ? -1 : 1;
    case 6:
        return parse_number(a, v, 1, &x) ? -1 : (o->min_reps = (int)x, 1);
    case 7:
        return parse_number(a, v, 16, &x) ? -1 : (o->gemm_n = (int)x, 1);
    case 8:
        return parse_number(a, v, 1, &o->triad_mib) ? -1 : 1;
    case 10:
        return parse_place(v, o) ? -1 : 1;
    default:
        if (data_set_mode(v) == 0) return 1;
        fprintf(stderr, "--data %s: expected normal, denormal or underflow\n", v);
        return -1;
    }
}

static int flag_option(options *o, const char *a) {
    if (!strcmp(a, "--no-peers"))
        o->peers = false;
    else if (!strcmp(a, "--no-limits"))
        o->limits = false;
    else if (!strcmp(a, "--describe"))
        o->describe = true;
    else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
        o->verbose = true;
    else if (!strcmp(a, "--config"))
        o->config = true;
    else
        return 0;
    return 1;
}

/* 0: run; 1: exit 0 (help); -1: usage error. */
static int parse_args(int argc, char **argv, options *o) {
    *o = (options){.budget = 0.3,
                   .min_reps = 5,
                   .gemm_n = 2048,
                   .triad_mib = 256,
                   .peers = true,
                   .limits = true,
                   .place = {-1, -1}};
    o->threads[o->thread_count++] = 1;
    if (machine_online_cpus() > 1) o->threads[o->thread_count++] = machine_online_cpus();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        int r = value_option(o, argc, argv, &i);
        if (r == 0) r = flag_option(o, a);
        if (r < 0) return -1;
        if (r > 0) continue;
        if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "unknown option %s (see --help)\n", a);
            return -1;
        }
        if (append_spec(o, a)) return -1;
    }
    if (o->config) return 0;
    if (!o->suite == !o->spec[0] || (o->rows && !o->suite)) {
        fprintf(stderr, "give either a layer spec or --suite FILE (--rows needs --suite); "
                        "see --help\n");
        return -1;
    }
    return 0;
}

static void print_config(void) {
    printf("%s\nCPU: %s, %d online\nOpenBLAS core: %s\nstrategies:", convblas_build_info(),
           machine_cpu_model(), machine_online_cpus(), machine_blas_core());
    for (int i = 0; i < convblas_strategy_count(); i++) printf(" %s", convblas_strategy_name(i));
    printf("\npeers:");
    const bench_peer *const *p = run_peers();
    if (!p[0]) printf(" none");
    for (; *p; p++) printf(" %s %s;", (*p)->name, (*p)->version());
    printf("\n");
}

static void check_environment(void) {
    const char *coretype = getenv("OPENBLAS_CORETYPE");
    if (coretype)
        fprintf(stderr,
                "warning: OPENBLAS_CORETYPE=%s is set: OpenBLAS runs the %s kernels "
                "(core %s), which can halve sgemm on an AVX-512 machine; benchmark "
                "with it unset (env -u OPENBLAS_CORETYPE convblas-bench ...)\n",
                coretype, coretype, machine_blas_core());
    if (getenv("CONVBLAS_STRATEGY")) {
        fprintf(stderr, "warning: CONVBLAS_STRATEGY is set; the bench ignores it (it would "
                        "force the planner's plans)\n");
        unsetenv("CONVBLAS_STRATEGY");
    }
}

static int load_layers(const options *o, bench_layer **layers, int *count) {
    char err[512];
    if (o->suite) {
        if (suite_read(o->suite, o->rows, layers, count, err, sizeof err) == 0) return 0;
    } else {
        *layers = malloc(sizeof **layers);
        *count = 1;
        if (*layers && spec_parse(o->spec, *layers, err, sizeof err) == 0) return 0;
        if (!*layers) snprintf(err, sizeof err, "out of memory");
        free(*layers);
        *layers = NULL;
    }
    fprintf(stderr, "convblas-bench: %s\n", err);
    return -1;
}

/* Every layer at every thread count; rows[] gets count * thread_count results. */
static int run_all(const options *o, const run_config *cfg, bench_layer *layers, int count,
                   bench_data *data, row_result *rows, int *done) {
    char err[512];
    *done = 0;
    for (int i = 0; i < count; i++) {
        if (data_create(&layers[i], &data[i], cfg->place_in, err, sizeof err)) {
            fprintf(stderr, "convblas-bench: %s\n", err);
            return -1;
        }
        for (int t = 0; t < o->thread_count; t++) {
            if (run_row(&layers[i], &data[i], o->threads[t], cfg, &rows[*done])) {
                fprintf(stderr, "convblas-bench: %s: out of memory\n", layers[i].name);
                data_free(&data[i]);
                return -1;
            }
            report_row(stdout, &rows[(*done)++], o->verbose);
            fflush(stdout);
        }
        data_free(&data[i]); /* the arrays; the figures stay for the summary */
    }
    return 0;
}

static bool any_failure(const row_result *rows, int count) {
    for (int i = 0; i < count; i++)
        for (int j = 0; j < rows[i].count; j++)
            if (rows[i].entries[j].check == 0 || rows[i].entries[j].error) return true;
    return false;
}

static int write_outputs(const options *o, const row_result *rows, int count,
                         const machine_limits *m, const run_config *cfg) {
    int st = 0;
    if (o->csv && report_csv(o->csv, rows, count, m, cfg)) {
        fprintf(stderr, "convblas-bench: cannot write %s\n", o->csv);
        st = -1;
    } else if (o->csv) {
        printf("CSV written to %s\n", o->csv);
    }
    if (o->svg && plot_svg(o->svg, rows, count)) {
        fprintf(stderr, "convblas-bench: cannot write %s\n", o->svg);
        st = -1;
    } else if (o->svg) {
        printf("SVG written to %s\n", o->svg);
    }
    return st;
}

static int bench(const options *o, bench_layer *layers, int count) {
    machine_limits limits = {0};
    if (o->limits)
        machine_measure(&limits, o->threads, o->thread_count, o->gemm_n, o->triad_mib, true);
    run_config cfg = {.budget = o->budget,
                      .min_reps = o->min_reps,
                      .peers = o->peers,
                      .describe = o->describe,
                      .tolerance = 1e-4,
                      .reference = "im2col_gemm",
                      .limits = &limits,
                      .place_in = o->place[0],
                      .place_out = o->place[1]};
    report_header(stdout, &limits, &cfg);
    bench_data *data = calloc((size_t)count, sizeof *data);
    row_result *rows = calloc((size_t)count * (size_t)o->thread_count, sizeof *rows);
    int done = 0, st = data && rows ? run_all(o, &cfg, layers, count, data, rows, &done) : -1;
    if (st == 0 && done > 1) report_summary(stdout, rows, done);
    if (st == 0) st = write_outputs(o, rows, done, &limits, &cfg);
    if (st == 0 && any_failure(rows, done)) {
        fprintf(stderr, "convblas-bench: some output MISMATCHED or a run failed (see above)\n");
        st = 2;
    }
    for (int i = 0; i < done; i++) row_free(&rows[i]);
    free(rows);
    free(data);
    return st < 0 ? 1 : st;
}

int main(int argc, char **argv) {
    options o;
    int r = parse_args(argc, argv, &o);
    if (r) return r > 0 ? 0 : 1;
    if (o.config) {
        print_config();
        return 0;
    }
    check_environment();
    if (strcmp(data_mode_name(), "normal") != 0)
        printf("data:     %s (--data): timings of denormal arithmetic\n", data_mode_name());
    bench_layer *layers;
    int count;
    if (load_layers(&o, &layers, &count)) return 1;
    int st = bench(&o, layers, count);
    free(layers);
    return st;
}
