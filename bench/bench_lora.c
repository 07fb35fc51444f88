/* Times one LoRA training step (forward + backward + AdamW over the adapters only; the base frozen)
 * on a Llama config shaped like SmolLM2-135M (30 layers, d 576, 9/3 heads, ffn 1536, vocab 49152,
 * tied head; random weights) and prints the median and peak RSS in a line bench/run-lora parses.
 * Usage: bench_lora TARGETS [STEPS] [B] [T]   (TARGETS: "q_proj,v_proj" or "all"; r=8, alpha 16) */
#include "lmforge/loss.h"
#include "lmforge/lora.h"
#include "lmforge/optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_lora TARGETS [STEPS] [B] [T]\n");
        return 2;
    }
    int steps = argc > 2 ? atoi(argv[2]) : 5, B = argc > 3 ? atoi(argv[3]) : 4, T = argc > 4 ? atoi(argv[4]) : 128;
    if (steps < 1) steps = 1;
    lf_config c;
    lf_config_defaults(&c, LF_ARCH_LLAMA);
    c.vocab_size = 49152;
    c.d_model = 576;
    c.n_layer = 30;
    c.n_head = 9;
    c.n_kv_head = 3;
    c.head_dim = 64;
    c.d_ff = 1536;
    c.max_seq = 2048;
    c.tie_embeddings = 1;
    c.rope_theta = 100000;
    lf_model *m;
    if (lf_model_init(&m, &c)) {
        fprintf(stderr, "bench_lora: %s\n", lf_last_error());
        return 1;
    }
    lf_model_init_weights(m, 1);
    lf_lora_opts lo;
    lf_lora_opts_defaults(&lo);
    lo.r = 8;
    lo.alpha = 16;
    snprintf(lo.targets, sizeof lo.targets, "%s", argv[1]);
    lf_lora *l;
    if (lf_lora_attach(&l, m, &lo, NULL)) {
        fprintf(stderr, "bench_lora: %s\n", lf_last_error());
        return 1;
    }
    lf_adamw_config oc;
    lf_adamw_defaults(&oc);
    lf_optim *o;
    if (lf_optim_init(&o, m, &oc)) return 1;
    lf_model_set_training(m, 1, 1);
    int32_t *x = malloc(sizeof(int32_t) * B * T), *y = malloc(sizeof(int32_t) * B * T);
    for (int i = 0; i < B * T; i++) {
        x[i] = (int32_t)(lf_hash64(1, 0, (uint64_t)i) % (uint64_t)c.vocab_size);
        y[i] = (int32_t)(lf_hash64(1, 1, (uint64_t)i) % (uint64_t)c.vocab_size);
    }
    double *ms = malloc(sizeof(double) * (size_t)steps), loss = 0;
    lf_loss_term *ce = lf_loss_ce_new(0.0f);
    lf_batch batch = {x, y, NULL, NULL, B, T};
    for (int s = -1; s < steps; s++) { /* step -1 warms up */
        double t0 = lf_now();
        lf_model_zero_grad(m);
        lf_loss_forward(m, &ce, 1, &batch, &loss, NULL);
        lf_loss_backward(m, &ce, 1, &batch, 1.0f);
        lf_optim_step(o, 1e-4f, NULL);
        if (s >= 0) ms[s] = 1e3 * (lf_now() - t0);
    }
    qsort(ms, (size_t)steps, sizeof *ms, cmp_double);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("lmforge lora %s: %zu params, %zu trainable (%d adapted linears), B=%d T=%d, %d threads: median %.1f ms/step, "
           "peak RSS %.2f GiB, loss %.4f\n",
           argv[1], lf_model_num_scalars(m), lf_lora_num_params(l), lf_lora_num_sites(l), B, T, lf_num_threads(),
           ms[steps / 2], ru.ru_maxrss / 1048576.0, loss);
    printf("result: ms=%.3f rss_gib=%.3f\n", ms[steps / 2], ru.ru_maxrss / 1048576.0);
    lf_loss_free(ce);
    free(ms);
    free(x);
    free(y);
    lf_optim_free(o);
    lf_lora_free(l);
    lf_model_free(m);
    return 0;
}
