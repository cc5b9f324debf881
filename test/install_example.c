/* Built against an installed convblas through pkg-config by install_test.sh: the Keras
 * Conv1D example (input (4, 10, 128), Conv1D(32, 3, activation="relu")) with deterministic
 * weights, checked against plain loops. Prints OK, or says what is wrong and exits 1. */
#include <convblas.h>

#include <stdio.h>
#include <stdlib.h>

enum { B = 4, L = 10, C = 128, F = 32, K = 3, OUT_L = L - K + 1 };

static float value(long i, int mul, int mod, float scale) {
    return (float)((i * mul) % mod - mod / 2) * scale;
}

int main(void) {
    convblas_layer_desc desc = {.op = CONVBLAS_CONV,
                                .rank = 1,
                                .filters = F,
                                .kernel_size = {K},
                                .activation = CONVBLAS_RELU,
                                .use_bias = true};
    convblas_shape in = {.batch = B, .spatial = {L}, .channels = C}, out;
    convblas_status st = convblas_output_shape(&desc, &in, &out);
    if (st != CONVBLAS_OK) {
        fprintf(stderr, "convblas_output_shape: %s: %s\n", convblas_status_name(st),
                convblas_last_error());
        return 1;
    }
    if (out.batch != B || out.spatial[0] != OUT_L || out.spatial[1] != 0 || out.channels != F) {
        fprintf(stderr, "output shape (%lld, %lld, %lld), expected (4, 8, 32)\n",
                (long long)out.batch, (long long)out.spatial[0], (long long)out.channels);
        return 1;
    }

    static float x[B * L * C], kernel[K * C * F], bias[F], y[B * OUT_L * F];
    for (long i = 0; i < B * L * C; i++) x[i] = value(i, 7, 13, 0.125f);
    for (long i = 0; i < K * C * F; i++) kernel[i] = value(i, 5, 11, 0.0625f);
    for (long i = 0; i < F; i++) bias[i] = value(i, 1, 3, 0.25f);
    for (long i = 0; i < B * OUT_L * F; i++) y[i] = -1.0f;

    convblas_plan *plan = NULL;
    st = convblas_plan_create(&plan, &desc, &in, NULL);
    if (st != CONVBLAS_OK) {
        fprintf(stderr, "convblas_plan_create: %s: %s\n", convblas_status_name(st),
                convblas_last_error());
        return 1;
    }
    convblas_weights w = {.kernel = kernel, .bias = bias};
    st = convblas_execute(plan, x, &w, y, NULL);
    const char *strategy = convblas_plan_strategy(plan);
    printf("convblas %s, strategy %s\n", convblas_version(), strategy ? strategy : "(none)");
    convblas_plan_destroy(plan);
    if (st != CONVBLAS_OK) {
        fprintf(stderr, "convblas_execute: %s: %s\n", convblas_status_name(st),
                convblas_last_error());
        return 1;
    }

    /* Keras Conv1D, valid padding: y[b, t, f] = relu(bias[f] + sum over k, c of
     * x[b, t + k, c] * kernel[k, c, f]). */
    int bad = 0, positive = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < OUT_L; t++)
            for (int f = 0; f < F; f++) {
                double acc = bias[f];
                for (int k = 0; k < K; k++)
                    for (int c = 0; c < C; c++)
                        acc += (double)x[(b * L + t + k) * C + c] *
                               (double)kernel[(k * C + c) * F + f];
                double want = acc > 0 ? acc : 0;
                double got = y[(b * OUT_L + t) * F + f];
                double err = got - want;
                if (err < 0) err = -err;
                if (!(err <= 1e-4 * (1.0 + (want > 0 ? want : -want)))) {
                    if (bad++ < 5)
                        fprintf(stderr, "y[%d, %d, %d] = %.7g, expected %.7g\n", b, t, f, got,
                                want);
                }
                positive += want > 0;
            }
    if (bad) {
        fprintf(stderr, "%d of %d outputs wrong\n", bad, B * OUT_L * F);
        return 1;
    }
    if (positive == 0 || positive == B * OUT_L * F) {
        fprintf(stderr, "degenerate test data: relu %s\n",
                positive ? "never clips" : "clips everything");
        return 1;
    }
    printf("OK\n");
    return 0;
}
