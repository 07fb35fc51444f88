/* Times one full training step (forward + backward + AdamW) of lmforge on a named config and
 * prints the median in a line bench/run parses. Usage: bench_step CONFIG [STEPS]. */
#include "configs.h"
#include "lmforge/loss.h"
#include "lmforge/optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const bench_config *bc = argc > 1 ? bench_find(argv[1]) : NULL;
    if (!bc) {
        fprintf(stderr, "usage: bench_step CONFIG [STEPS]\nconfigs:");
        for (size_t i = 0; i < sizeof bench_configs / sizeof bench_configs[0]; i++) fprintf(stderr, " %s", bench_configs[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    int steps = argc > 2 ? atoi(argv[2]) : 5;
    if (steps < 1) steps = 1;
    lf_config c;
    bench_model_config(bc, &c);
    lf_model *m;
    if (lf_model_init(&m, &c)) {
        fprintf(stderr, "bench_step: %s\n", lf_last_error());
        return 1;
    }
    lf_model_init_weights(m, 1);
    lf_adamw_config oc;
    lf_adamw_defaults(&oc);
    lf_optim *o;
    if (lf_optim_init(&o, m, &oc)) return 1;
    int B = bc->B, T = bc->T;
    int32_t *x = malloc(sizeof(int32_t) * B * T), *y = malloc(sizeof(int32_t) * B * T);
    for (int i = 0; i < B * T; i++) {
        x[i] = (int32_t)(lf_hash64(1, 0, (uint64_t)i) % (uint64_t)bc->V);
        y[i] = (int32_t)(lf_hash64(1, 1, (uint64_t)i) % (uint64_t)bc->V);
    }
    double *ms = malloc(sizeof(double) * (size_t)steps);
    double fwd_ms = 0, bwd_ms = 0, opt_ms = 0;
    double loss = 0;
    lf_loss_term *ce = lf_loss_ce_new(0.0f);
    lf_batch batch = {x, y, NULL, NULL, B, T};
    for (int s = -1; s < steps; s++) { /* step -1 warms up */
        double t0 = lf_now();
        lf_model_zero_grad(m);
        lf_loss_forward(m, &ce, 1, &batch, &loss, NULL);
        double t1 = lf_now();
        lf_loss_backward(m, &ce, 1, &batch, 1.0f);
        double t2 = lf_now();
        lf_optim_step(o, 1e-4f, NULL);
        double t3 = lf_now();
        if (s >= 0) {
            ms[s] = 1e3 * (t3 - t0);
            fwd_ms += 1e3 * (t1 - t0);
            bwd_ms += 1e3 * (t2 - t1);
            opt_ms += 1e3 * (t3 - t2);
        }
    }
    qsort(ms, (size_t)steps, sizeof *ms, cmp_double);
    double med = ms[steps / 2];
    /* model FLOPs: 6 per parameter per token in the matmuls (head included), plus attention's
     * QK^T and PV over the causal half of T^2, forward and backward */
    double pm = 0;
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        if (p->kind == LF_KIND_WEIGHT) pm += (double)p->numel;
    }
    pm += (double)bc->V * bc->C; /* the head's matmul (tied or not) */
    double tokens = (double)B * T;
    double flops = 6.0 * tokens * pm + 6.0 * 2.0 * bc->L * B * (double)T * T / 2.0 * bc->C;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("lmforge %s: params %zu, B=%d T=%d, %d threads: median %.1f ms/step (fwd %.1f, bwd %.1f, adamw %.1f), "
           "%.0f tok/s, %.1f GFLOP/s, peak RSS %.2f GiB, loss %.4f\n",
           bc->name, lf_model_num_scalars(m), B, T, lf_num_threads(), med, fwd_ms / steps, bwd_ms / steps,
           opt_ms / steps, tokens / (med / 1e3), flops / (med / 1e3) / 1e9, ru.ru_maxrss / 1048576.0, loss);
    printf("result: ms=%.3f rss_gib=%.3f gflop=%.3f\n", med, ru.ru_maxrss / 1048576.0, flops / 1e9);
    free(ms);
    free(x);
    free(y);
    lf_optim_free(o);
    lf_model_free(m);
    return 0;
}
