/* Pieces every GEMM lowering shares: where an output tile lives, the pointwise stage of
 * SEPARABLE, and the cost-model constants. */
#include "convblas_internal.h"

/* Constants of the ESTIMATE cost model, single thread, measured on an AVX-512 server
 * core with OpenBLAS; only their ratios matter for choosing. */
const cb_machine_model cb_machine = {
    .gemm_flops = 150e9,
    .copy_bytes = 12e9,
    .call_cost = 0.3e-6,
};

double cb_gemm_efficiency(int64_t m, int64_t n, int64_t k) {
    /* The register tile and the packing overhead make each dimension count as
     * x / (x + half), where half is the size at which it reaches half speed. */
    double dm = (double)m, dn = (double)n, dk = (double)k;
    return dm / (dm + 8.0) * dn / (dn + 12.0) * dk / (dk + 24.0);
}

float *cb_output_tile(const cb_exec *e, int64_t n, int64_t p0, int64_t *ld) {
    const cb_problem *p = e->p;
    if (p->format == CONVBLAS_CHANNELS_LAST) {
        *ld = p->out_channels;
        return e->out + (n * p->out_plane + p0) * p->out_channels;
    }
    *ld = p->out_plane;
    return e->out + n * p->out_channels * p->out_plane + p0;
}

void cb_pointwise_stage(const cb_exec *e, const float *mid, int64_t n, int64_t p0,
                        int64_t positions) {
    const cb_problem *p = e->p;
    int64_t ld;
    float *out = cb_output_tile(e, n, p0, &ld);
    if (p->format == CONVBLAS_CHANNELS_LAST)
        cb_sgemm(CB_NO_TRANS, CB_NO_TRANS, positions, p->out_channels, p->mid_channels, mid,
                 p->mid_channels, e->pointwise, p->out_channels, 0.0f, out, ld);
    else
        cb_sgemm(CB_TRANS, CB_NO_TRANS, p->out_channels, positions, p->mid_channels,
                 e->pointwise, p->out_channels, mid, positions, 0.0f, out, ld);
}
