/* fuzz_wisdom: arbitrary bytes as a wisdom file, through convblas_wisdom_import, _export
 * and _forget, then planning and running a few fixed layers whose keys the seeds hold (so
 * an entry the bytes changed may steer the planner). Checks: a failed import has a status
 * and a message and imports nothing (the export is the empty one); a successful import
 * exports a file that imports again and exports identically; a plan steered by wisdom is
 * one the layer can run and computes what the reference computes.
 *
 * FUZZ_WISDOM_SEED=PATH: instead of fuzzing, MEASURE the fixed layers and export their
 * wisdom to PATH (how fuzz/corpus/fuzz_wisdom/this-machine was made). */
#include "convblas.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The layers planned after each import: the keys of the seed's entries. */
static const convblas_layer_desc layers[] = {
    {.op = CONVBLAS_CONV, .rank = 1, .filters = 6, .kernel_size = {3}, .use_bias = true},
    {.op = CONVBLAS_CONV,
     .rank = 2,
     .filters = 4,
     .kernel_size = {1, 1},
     .data_format = CONVBLAS_CHANNELS_FIRST},
    {.op = CONVBLAS_DEPTHWISE,
     .rank = 2,
     .kernel_size = {3, 3},
     .padding = CONVBLAS_SAME,
     .depth_multiplier = 2,
     .activation = CONVBLAS_RELU},
    {.op = CONVBLAS_SEPARABLE,
     .rank = 1,
     .filters = 5,
     .kernel_size = {5},
     .padding = CONVBLAS_CAUSAL,
     .activation = CONVBLAS_LEAKY_RELU,
     .use_bias = true},
};
static const convblas_shape shapes[] = {
    {.batch = 2, .spatial = {17}, .channels = 4},
    {.batch = 1, .spatial = {6, 7}, .channels = 8},
    {.batch = 1, .spatial = {9, 5}, .channels = 3},
    {.batch = 2, .spatial = {20}, .channels = 3},
};
enum { LAYERS = sizeof layers / sizeof layers[0] };

static char dir[64], input_path[96], export_a[96], export_b[96];
static char *empty_export; /* what export writes with no wisdom */
static bool print_status;
static size_t empty_size;

static void cleanup(void) {
    unlink(input_path);
    unlink(export_a);
    unlink(export_b);
    rmdir(dir);
}

static char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *size = n;
    return buf;
}

static void fail(const char *what) __attribute__((noreturn));
static void fail(const char *what) {
    fprintf(stderr, "fuzz_wisdom: %s\n  last error: \"%s\"\n", what, convblas_last_error());
    abort();
}

/* Exports to path and returns its content. */
static char *export_to(const char *path, size_t *size) {
    if (convblas_wisdom_export(path) != CONVBLAS_OK) fail("export failed");
    char *text = read_file(path, size);
    if (!text) fail("cannot read back the export");
    return text;
}

static bool same_text(const char *a, size_t na, const char *b, size_t nb) {
    return na == nb && memcmp(a, b, na) == 0;
}

static void write_seed(const char *path) {
    for (int i = 0; i < LAYERS; i++) {
        convblas_plan *plan;
        convblas_plan_options o = {.mode = CONVBLAS_MEASURE, .threads = 1};
        if (convblas_plan_create(&plan, &layers[i], &shapes[i], &o) != CONVBLAS_OK)
            fail("cannot MEASURE a fixed layer");
        convblas_plan_destroy(plan);
    }
    if (convblas_wisdom_export(path) != CONVBLAS_OK) fail("cannot export the seed");
    exit(0);
}

int LLVMFuzzerInitialize(int *argc, char **argv[]) {
    (void)argc;
    (void)argv;
    const char *seed = getenv("FUZZ_WISDOM_SEED");
    if (seed) write_seed(seed);
    print_status = getenv("FUZZ_PRINT") != NULL;
    /* export fsyncs: on tmpfs that costs nothing */
    const char *tmp = getenv("TMPDIR");
    if (!tmp || strlen(tmp) >= 40) tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/fuzz_wisdom.XXXXXX", tmp);
    if (!mkdtemp(dir)) fail("cannot make a temporary directory");
    snprintf(input_path, sizeof input_path, "%s/input", dir);
    snprintf(export_a, sizeof export_a, "%s/a", dir);
    snprintf(export_b, sizeof export_b, "%s/b", dir);
    atexit(cleanup);
    convblas_wisdom_forget();
    empty_export = export_to(export_a, &empty_size);
    return 0;
}

/* The fixed layers, planned as the seed's MEASURE was (ESTIMATE reads MEASURE's wisdom),
 * run against the reference. */
static void plan_layers(uint64_t seed) {
    for (int i = 0; i < LAYERS; i++) {
        tu_rng rng;
        tu_rng_seed(&rng, seed + (uint64_t)i);
        tu_data t;
        if (tu_data_make(&t, &layers[i], &shapes[i], &rng) != CONVBLAS_OK) abort();
        tu_run_opts o = {.threads = 1};
        tu_run(&layers[i], &shapes[i], &t, &o, NULL);
        tu_data_free(&t);
        if (tu_failures) fail("a plan after importing wisdom is wrong (details above)");
    }
}

static void round_trip(void) {
    size_t na, nb;
    char *a = export_to(export_a, &na);
    convblas_wisdom_forget();
    if (convblas_wisdom_import(export_a) != CONVBLAS_OK) fail("its own export does not import");
    char *b = export_to(export_b, &nb);
    if (!same_text(a, na, b, nb)) {
        fprintf(stderr, "first export:\n%.*s\nsecond export:\n%.*s\n", (int)na, a, (int)nb, b);
        fail("an export imported and exported again differs");
    }
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *f = fopen(input_path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f)) fail("cannot write the input file");
    convblas_status st = convblas_wisdom_import(input_path);
    if (print_status)
        fprintf(stderr, "import: %s %s\n", convblas_status_name(st),
                st ? convblas_last_error() : "");
    if (st != CONVBLAS_OK) {
        if (st != CONVBLAS_IO_ERROR && st != CONVBLAS_OUT_OF_MEMORY)
            fail("import failed with a status other than IO_ERROR or OUT_OF_MEMORY");
        if (!convblas_last_error()[0]) fail("import failed without a message");
        size_t n;
        char *text = export_to(export_a, &n);
        if (!same_text(text, n, empty_export, empty_size)) fail("a failed import left wisdom");
        free(text);
    } else {
        round_trip();
        plan_layers(size);
    }
    convblas_wisdom_forget();
    return 0;
}
