/* A peer engine (oneDNN, XNNPACK) that runs the same layer as convblas, on the same data,
 * in the same plain layout, for the bench's side-by-side table. Each peer is one file,
 * compiled in when its package is found (meson options bench_onednn, bench_xnnpack). */
#ifndef CONVBLAS_BENCH_PEER_H
#define CONVBLAS_BENCH_PEER_H

#include <convblas.h>

#include <stddef.h>

/* One layer with its data, all in Keras layouts (the same arrays convblas reads). */
typedef struct bench_case {
    const char *name;
    convblas_layer_desc desc;
    convblas_shape input, output;  /* output from convblas_output_shape */
    const float *input_data;       /* input in desc.data_format */
    const float *kernel;           /* Keras kernel or depthwise_kernel */
    const float *pointwise_kernel; /* SEPARABLE only */
    const float *bias;             /* NULL unless desc.use_bias */
} bench_case;

typedef struct bench_peer {
    const char *name; /* "oneDNN", "XNNPACK" */
    /* The library's version, for the report. */
    const char *(*version)(void);
    /* Untimed set-up for this case on `threads` threads: weight reorders, primitive
     * creation, scratch buffers. NULL when the peer cannot run the case, with a short reason
     * in why (e.g. "channels_first not supported"). */
    void *(*prepare)(const bench_case *c, int threads, char *why, size_t why_size);
    /* One timed run: input in the case's layout -> output in the same layout as convblas's,
     * bias and activation included (applied the way a user of that engine would, e.g. a
     * post-op, or a separate pass where the engine has no such activation). 0 on success. */
    int (*run)(void *state, const float *input, float *output);
    void (*release)(void *state);
} bench_peer;

#ifdef CONVBLAS_BENCH_ONEDNN
extern const bench_peer bench_peer_onednn;
#endif
#ifdef CONVBLAS_BENCH_XNNPACK
extern const bench_peer bench_peer_xnnpack;
#endif

#endif
