/* Peak memory of one forward pass in training mode (activations kept for backward, gradients
 * allocated) and in forward-only mode (teachers, evaluation, calibration), each in its own
 * process so that ru_maxrss is that mode's peak. Usage: bench_memory CONFIG train|forward */
#include "configs.h"
#include "lmforge/loss.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

int main(int argc, char **argv) {
    const bench_config *bc = argc == 3 ? bench_find(argv[1]) : NULL;
    int fwd = argc == 3 && !strcmp(argv[2], "forward");
    if (!bc || (!fwd && strcmp(argv[2], "train"))) {
        fprintf(stderr, "usage: bench_memory CONFIG train|forward\n");
        return 2;
    }
    lf_config c;
    bench_model_config(bc, &c);
    lf_model *m;
    if (lf_model_init(&m, &c)) {
        fprintf(stderr, "bench_memory: %s\n", lf_last_error());
        return 1;
    }
    lf_model_init_weights(m, 1);
    lf_model_set_forward_only(m, fwd);
    size_t N = (size_t)bc->B * bc->T;
    int32_t *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (size_t i = 0; i < N; i++) {
        x[i] = (int32_t)(lf_hash64(1, 0, i) % (uint64_t)bc->V);
        y[i] = (int32_t)(lf_hash64(1, 1, i) % (uint64_t)bc->V);
    }
    lf_loss_term *ce = lf_loss_ce_new(0.0f);
    lf_batch b = {x, y, NULL, NULL, bc->B, bc->T};
    double loss = 0;
    lf_status st = lf_loss_forward(m, &ce, 1, &b, &loss, NULL);
    if (!st && !fwd) st = lf_loss_backward(m, &ce, 1, &b, 1.0f);
    if (st) {
        fprintf(stderr, "bench_memory: %s\n", lf_last_error());
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%s %s: activations %.1f MiB, peak RSS %.1f MiB, loss %.4f\n", bc->name, fwd ? "forward-only" : "training",
           lf_model_activation_bytes(m) / 1048576.0, ru.ru_maxrss / 1024.0, loss);
    lf_loss_free(ce);
    lf_model_free(m);
    free(x);
    free(y);
    return 0;
}
