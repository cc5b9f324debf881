/*
 * convblas.h - the whole public API of convblas.
 *
 * convblas computes the forward pass of the Keras convolution layers Conv1D, Conv2D,
 * DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D and SeparableConv2D, with Keras's
 * shapes, weight layouts, padding rules and activations, by lowering each layer to GEMM
 * calls into a CBLAS (OpenBLAS by default).
 *
 * The flow of a call:
 *
 *     convblas_layer_desc desc = {.op = CONVBLAS_CONV, .rank = 1, .filters = 32,
 *                                 .kernel_size = {3}, .activation = CONVBLAS_RELU,
 *                                 .use_bias = true};
 *     convblas_shape in = {.batch = 4, .spatial = {10}, .channels = 128}, out;
 *     convblas_output_shape(&desc, &in, &out);          // out = {4, {8}, 32}
 *     convblas_plan *plan;
 *     convblas_plan_create(&plan, &desc, &in, NULL);    // picks a lowering
 *     convblas_weights w = {.kernel = kernel, .bias = bias};
 *     convblas_execute(plan, x, &w, y, NULL);
 *     convblas_plan_destroy(plan);
 *
 * Conventions:
 *  - Every function that can fail returns a convblas_status; on failure
 *    convblas_last_error() holds a sentence saying what was wrong, nothing was written to
 *    the output and nothing leaked.
 *  - Sizes are int64_t. A descriptor field left 0 takes the Keras default, so designated
 *    initializers read like the Keras call. The one exception is use_bias: false means no
 *    bias (Keras defaults to true).
 *  - Tensors are dense float32, row-major, in the layout data_format names. Weights are in
 *    Keras's own layouts (what layer.get_weights() returns), so they load unchanged.
 *
 * Beyond Keras (all documented at the field they concern):
 *  - strides > 1 together with dilation_rate > 1 is accepted (Keras raises);
 *  - padding CAUSAL is accepted for DEPTHWISE at rank 1 (Keras raises);
 *  - CONV and SEPARABLE at rank 2 are Keras's Conv2D and SeparableConv2D.
 */
#ifndef CONVBLAS_H
#define CONVBLAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(CONVBLAS_BUILDING) && defined(__GNUC__)
#define CONVBLAS_API __attribute__((visibility("default")))
#else
#define CONVBLAS_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------
 * Status and errors
 * ------------------------------------------------------------------------------------- */

typedef enum convblas_status {
    CONVBLAS_OK = 0,
    CONVBLAS_INVALID_ARGUMENT, /* a descriptor field, shape or pointer is wrong */
    CONVBLAS_UNSUPPORTED,      /* well-formed, but not possible (e.g. forced strategy unfit) */
    CONVBLAS_OUT_OF_MEMORY,
    CONVBLAS_TOO_LARGE, /* a size or product overflows */
    CONVBLAS_IO_ERROR   /* reading or writing a file (wisdom, tensors) */
} convblas_status;

/* The enumerator's name without the prefix ("OK", "INVALID_ARGUMENT", ...); "UNKNOWN" for a
 * value that is not a status. Never NULL. */
CONVBLAS_API const char *convblas_status_name(convblas_status status);

/* This thread's message for its most recent failure; "" before any. A successful call does
 * not clear it. Never NULL; valid until this thread's next failing call. */
CONVBLAS_API const char *convblas_last_error(void);

/* ---------------------------------------------------------------------------------------
 * The layer
 * ------------------------------------------------------------------------------------- */

typedef enum {
    CONVBLAS_CONV,      /* Conv1D / Conv2D */
    CONVBLAS_DEPTHWISE, /* DepthwiseConv1D / DepthwiseConv2D */
    CONVBLAS_SEPARABLE  /* SeparableConv1D / SeparableConv2D */
} convblas_op;

/* Per spatial dimension, with ek = (kernel - 1) * dilation + 1:
 *  VALID:  out = floor((in - ek) / stride) + 1; in < ek is an error.
 *  SAME:   out = ceil(in / stride); pad_total = max((out - 1) * stride + ek - in, 0),
 *          pad_before = pad_total / 2, the rest after (TensorFlow's rule).
 *  CAUSAL: rank 1 only: pad_before = ek - 1, nothing after, out = ceil(in / stride).
 *          Accepted for DEPTHWISE too (beyond Keras). */
typedef enum { CONVBLAS_VALID, CONVBLAS_SAME, CONVBLAS_CAUSAL } convblas_padding;

/* CHANNELS_LAST: (batch, L, C) or (batch, H, W, C). CHANNELS_FIRST: (batch, C, L) or
 * (batch, C, H, W). */
typedef enum { CONVBLAS_CHANNELS_LAST, CONVBLAS_CHANNELS_FIRST } convblas_data_format;

/* keras.activations, applied after the bias:
 *  LINEAR x; RELU max(x, 0); RELU6 min(max(x, 0), 6); SIGMOID 1 / (1 + exp(-x)); TANH;
 *  GELU 0.5 x (1 + erf(x / sqrt 2)) (the exact form); SWISH x sigmoid(x) (= silu);
 *  ELU x if x > 0 else alpha (exp(x) - 1), alpha 1; SOFTPLUS log(exp(x) + 1) without
 *  overflow; HARD_SIGMOID clip(0.2 x + 0.5, 0, 1) (Keras 2's definition);
 *  HARD_SWISH x relu6(x + 3) / 6; LEAKY_RELU x if x > 0 else alpha x, alpha 0.2. */
typedef enum {
    CONVBLAS_LINEAR,
    CONVBLAS_RELU,
    CONVBLAS_RELU6,
    CONVBLAS_SIGMOID,
    CONVBLAS_TANH,
    CONVBLAS_GELU,
    CONVBLAS_SWISH,
    CONVBLAS_ELU,
    CONVBLAS_SOFTPLUS,
    CONVBLAS_HARD_SIGMOID,
    CONVBLAS_HARD_SWISH,
    CONVBLAS_LEAKY_RELU
} convblas_activation;

/* One layer, as Keras would construct it. At rank 1 only index 0 of the arrays is read.
 * Fields that do not apply to the op are ignored: filters for DEPTHWISE, groups for
 * DEPTHWISE and SEPARABLE, depth_multiplier for CONV. */
typedef struct convblas_layer_desc {
    convblas_op op;
    int rank;                 /* spatial dimensions: 1 or 2 */
    int64_t filters;          /* CONV and SEPARABLE: output channels */
    int64_t kernel_size[2];   /* > 0 */
    int64_t strides[2];       /* 0 = 1; > 1 with dilation > 1 is accepted (beyond Keras) */
    int64_t dilation_rate[2]; /* 0 = 1 */
    convblas_padding padding;
    convblas_data_format data_format;
    int64_t groups;           /* CONV; 0 = 1; must divide channels and filters */
    int64_t depth_multiplier; /* DEPTHWISE and SEPARABLE; 0 = 1 */
    convblas_activation activation;
    float activation_alpha; /* leaky_relu slope, elu alpha; 0 = Keras default */
    bool use_bias;          /* false = no bias (Keras's default is true) */
} convblas_layer_desc;

/* A tensor's shape. batch is the product of every leading dimension: Keras's extended
 * batch shape (4, 7, 10, 128) for a Conv1D is batch 28, spatial {10}, channels 128.
 * batch 0 is valid (an empty batch). */
typedef struct convblas_shape {
    int64_t batch;
    int64_t spatial[2]; /* length, or height and width; at rank 1 the output's [1] is 0 */
    int64_t channels;
} convblas_shape;

/* The output shape of desc on input, validated exactly as convblas_plan_create validates
 * (same statuses, same messages; CONVBLAS_TOO_LARGE when an element count overflows). */
CONVBLAS_API convblas_status convblas_output_shape(const convblas_layer_desc *desc,
                                                   const convblas_shape *input,
                                                   convblas_shape *output);

/* The layer's weights, in Keras's layouts, row-major:
 *  CONV:      kernel (k, channels / groups, filters) or (kh, kw, channels / groups, filters);
 *             group g reads input channels [g C/G, (g+1) C/G) and writes filters
 *             [g F/G, (g+1) F/G).
 *  DEPTHWISE: kernel = depthwise_kernel (k..., channels, depth_multiplier); output channel
 *             c * depth_multiplier + m comes from input channel c.
 *  SEPARABLE: kernel = depthwise_kernel (k..., channels, depth_multiplier), then
 *             pointwise_kernel (1..., channels * depth_multiplier, filters).
 *  bias:      one value per output channel; read only when use_bias (NULL otherwise).
 * The arrays are read during execute only; convblas keeps no pointer to them. */
typedef struct convblas_weights {
    const float *kernel;           /* CONV: kernel; DEPTHWISE, SEPARABLE: depthwise_kernel */
    const float *pointwise_kernel; /* SEPARABLE only */
    const float *bias;             /* NULL unless use_bias */
} convblas_weights;

/* ---------------------------------------------------------------------------------------
 * Plans
 * ------------------------------------------------------------------------------------- */

typedef enum {
    CONVBLAS_ESTIMATE, /* a cost model picks the strategy: instant */
    CONVBLAS_MEASURE   /* every applicable strategy is timed on the plan's shape */
} convblas_planner_mode;

typedef struct convblas_plan_options {
    convblas_planner_mode mode;
    /* NULL: the planner decides (or the CONVBLAS_STRATEGY environment variable, if set).
     * Else force this strategy by name; it wins over CONVBLAS_STRATEGY. An unknown name is
     * CONVBLAS_INVALID_ARGUMENT; a strategy that cannot run the layer, CONVBLAS_UNSUPPORTED. */
    const char *strategy;
    /* 0: the CONVBLAS_NUM_THREADS environment variable, else the build's default. < 0 is
     * an error. The count is honoured end to end: convblas either runs its own threads
     * (each GEMM then on one BLAS thread) or one BLAS call on that many threads. */
    int threads;
    /* Bytes of workspace a plan may use; 0: the build's default. No plan exceeds it; if no
     * strategy fits, plan creation returns CONVBLAS_UNSUPPORTED. */
    size_t workspace_limit;
} convblas_plan_options;

typedef struct convblas_plan convblas_plan;

/* Validates desc and input, picks a strategy and sizes its workspace. options may be NULL
 * (all defaults). On success *plan is a new plan, immutable, to be destroyed with
 * convblas_plan_destroy; on failure *plan is set to NULL (if plan is not NULL). */
CONVBLAS_API convblas_status convblas_plan_create(convblas_plan **plan,
                                                  const convblas_layer_desc *desc,
                                                  const convblas_shape *input,
                                                  const convblas_plan_options *options);

/* Bytes of workspace convblas_execute needs when given one; 0 for a NULL plan. Memory from
 * malloc is enough: no alignment beyond malloc's is asked. */
CONVBLAS_API size_t convblas_plan_workspace_size(const convblas_plan *plan);

/* The chosen strategy's name (e.g. "im2col_gemm"); NULL for a NULL plan. */
CONVBLAS_API const char *convblas_plan_strategy(const convblas_plan *plan);

/* A readable account of the plan: layer, shapes, strategy and why, its parameters,
 * workspace, estimated time, and why each other strategy was rejected. snprintf-like:
 * writes at most size bytes (NUL included) and returns the length the whole text needs;
 * -1 for a NULL plan. buf may be NULL when size is 0. */
CONVBLAS_API int convblas_plan_describe(const convblas_plan *plan, char *buf, size_t size);

/* Runs the layer: input in the plan's input shape and data format, output in its output
 * shape. workspace: NULL, and convblas allocates it for this call; else at least
 * convblas_plan_workspace_size(plan) bytes that no other call uses at the same time.
 * Input and output must not overlap. Safe to call on one plan from many threads at once. */
CONVBLAS_API convblas_status convblas_execute(const convblas_plan *plan, const float *input,
                                              const convblas_weights *weights, float *output,
                                              void *workspace);

/* Frees the plan; NULL is a no-op. */
CONVBLAS_API void convblas_plan_destroy(convblas_plan *plan);

/* Wisdom (as in FFTW): the choices MEASURE planning made, remembered so that they need not
 * be timed again, in this process or, through a file, in the next.
 *
 * What it holds: for each key, the strategy chosen (by name) and the seconds it measured.
 * The key is the layer as resolved (op, rank, filters, kernel, strides, dilation, padding,
 * data format, groups, depth multiplier, activation and its alpha where it has one,
 * use_bias: the epilogue's cost is part of the time), the input shape (batch, spatial,
 * channels), the plan's thread count, its workspace limit and the build's tile size. Fields
 * the op ignores, 0-means-default fields and their explicit defaults give the same key.
 * Each entry also names its machine: the CPU model, the BLAS (with its core) and the
 * convblas build (version, threading, strategies compiled in). An entry of another machine
 * is never used: importing it is not an error, it is kept (and exported again, so one file
 * can gather several machines' wisdom), but it matches no plan here.
 *
 * When it is used: convblas_plan_create without a forced strategy looks the key up first,
 * in both modes. On a hit, if that strategy can run the plan, it is chosen without timing
 * (MEASURE) or in place of the cost model (ESTIMATE: wisdom from the more rigorous mode
 * serves the less rigorous one), and convblas_plan_describe says "from wisdom". A forced
 * strategy (options.strategy or CONVBLAS_STRATEGY) ignores wisdom, and records none. Every
 * MEASURE plan creation that times strategies records its choice, replacing any entry of
 * the same key; when memory runs out there, the plan is still created, just not remembered.
 *
 * Thread safety: one table per process behind a mutex. Plans may be created from many
 * threads while others import, export or forget; each call sees the table before or after
 * another's change, never half of it.
 *
 * The file: text, one line each, human-readable and stable. The first line is
 * "convblas-wisdom 1" (the format's version; a change that older readers could misread gets
 * a new number, and this reader refuses any other). Then "cpu ...", "blas ...", "convblas
 * ..." lines naming a machine, each followed by that machine's "entry ..." lines: the key
 * as name=value fields in a fixed order, then strategy=NAME seconds=S. The last line,
 * "end N", counts the entries, so a truncated file is recognised. Lines starting with '#'
 * are comments. */

/* Writes the process's wisdom to path, all of it (other machines' entries too). The file is
 * written beside path under a temporary name, flushed to disk and renamed over path: a
 * crash or a concurrent reader never sees half a file. Errors: NULL path,
 * CONVBLAS_INVALID_ARGUMENT; path not writable, CONVBLAS_IO_ERROR with the system's
 * reason; CONVBLAS_OUT_OF_MEMORY. */
CONVBLAS_API convblas_status convblas_wisdom_export(const char *path);

/* Reads a wisdom file and adds its entries to the process's wisdom, replacing those of
 * the same machine and key. All or nothing: the whole file is read and checked before
 * anything changes. Errors, with nothing imported: NULL path, CONVBLAS_INVALID_ARGUMENT;
 * a file that cannot be opened or read, or is not a valid wisdom file (empty, truncated,
 * another format version, a damaged line, a number out of range, a line over 1024
 * characters, binary data, a strategy this build lacks in an entry of this machine),
 * CONVBLAS_IO_ERROR, with a message naming the file, the line and what is wrong;
 * CONVBLAS_OUT_OF_MEMORY. */
CONVBLAS_API convblas_status convblas_wisdom_import(const char *path);

/* Forgets all wisdom of this process (and frees its memory); plans already created keep
 * their strategy. */
CONVBLAS_API void convblas_wisdom_forget(void);

/* ---------------------------------------------------------------------------------------
 * Strategies (the lowerings compiled in), for forcing and benchmarking
 * ------------------------------------------------------------------------------------- */

/* How many strategies this build has. */
CONVBLAS_API int convblas_strategy_count(void);

/* The name of strategy index (0 <= index < count); NULL out of range. */
CONVBLAS_API const char *convblas_strategy_name(int index);

/* ---------------------------------------------------------------------------------------
 * Library information
 * ------------------------------------------------------------------------------------- */

/* "MAJOR.MINOR.PATCH" of the library. */
CONVBLAS_API const char *convblas_version(void);

/* A line naming the build's configuration: BLAS provider and its core, threading,
 * defaults (threads, planner mode, workspace limit, tile size), the strategies. */
CONVBLAS_API const char *convblas_build_info(void);

#ifdef __cplusplus
}
#endif

#endif /* CONVBLAS_H */
