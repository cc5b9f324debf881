/* The oracle: a plain reference convolution written from design.md section 2 alone (direct
 * loops, double accumulation). It shares no code with lib/: it reads only the public types of
 * convblas.h and calls no library function, so a bug in the library cannot hide in it. */
#ifndef CONVBLAS_TEST_REFERENCE_H
#define CONVBLAS_TEST_REFERENCE_H

#include "convblas.h"

#include <stddef.h>
#include <stdint.h>

/* The output shape of desc on in, from the formulas of design section 2:
 *   ek = (k - 1) * d + 1
 *   valid:  out = floor((in - ek) / s) + 1, in < ek is an error
 *   same:   out = ceil(in / s)
 *   causal: out = ceil(in / s) (rank 1 only)
 * Returns CONVBLAS_OK, or CONVBLAS_INVALID_ARGUMENT for a descriptor or shape that the
 * contract calls wrong (rank not 1/2, kernel <= 0, negative strides/dilation/groups/
 * multiplier, filters <= 0 where read, groups not dividing channels and filters, causal at
 * rank 2, valid with in < ek, batch < 0, spatial or channels <= 0). Fields that do not apply
 * (index 1 at rank 1, filters for DEPTHWISE, groups for DEPTHWISE/SEPARABLE,
 * depth_multiplier for CONV) are not read. *out is written only on success. */
convblas_status ref_output_shape(const convblas_layer_desc *desc, const convblas_shape *in,
                                 convblas_shape *out);

/* Element counts of a layer's tensors in Keras's layouts (0 when not used). Returns
 * CONVBLAS_OK or CONVBLAS_INVALID_ARGUMENT, as ref_output_shape. */
typedef struct ref_sizes {
    convblas_shape out;
    size_t input;     /* batch * spatial * channels */
    size_t output;    /* output elements */
    size_t kernel;    /* CONV kernel, or depthwise_kernel */
    size_t pointwise; /* SEPARABLE pointwise_kernel */
    size_t bias;      /* output channels when use_bias, else 0 */
} ref_sizes;
convblas_status ref_layer_sizes(const convblas_layer_desc *desc, const convblas_shape *in,
                                ref_sizes *sizes);

/* The forward pass: y (in the output shape of ref_output_shape, in desc's data format) =
 * activation(conv(x, w) + bias). Returns what ref_output_shape returns; on success writes
 * every output element and, if out_shape is not NULL, the output shape. */
convblas_status ref_forward(const convblas_layer_desc *desc, const convblas_shape *in,
                            const float *x, const convblas_weights *w, float *y,
                            convblas_shape *out_shape);

/* One activation of design section 2, in double. alpha 0 takes the Keras default (1 for elu,
 * 0.2 for leaky_relu). */
double ref_activation(convblas_activation act, double alpha, double x);

#endif
