/* Generation speed: greedy KV-cache decoding of NEW tokens after a 16-token prompt, batch 1, on a
 * named config from configs.h (random weights). Prints a 'result:' line for bench/run-generate.
 * Usage: bench_generate CONFIG [NEW_TOKENS] */
#include "configs.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    const bench_config *bc = argc > 1 ? bench_find(argv[1]) : NULL;
    if (!bc) {
        fprintf(stderr, "usage: bench_generate CONFIG [NEW_TOKENS]\n");
        return 2;
    }
    int n_new = argc > 2 ? atoi(argv[2]) : 128;
    lf_config c;
    bench_model_config(bc, &c);
    lf_model *m;
    if (lf_model_init(&m, &c) || lf_model_cache_init(m, 16 + n_new + 1)) {
        fprintf(stderr, "%s\n", lf_last_error());
        return 1;
    }
    lf_model_init_weights(m, 1);
    float *logits = malloc(sizeof(float) * (size_t)c.vocab_size);
    int32_t prompt[16];
    for (int i = 0; i < 16; i++) prompt[i] = (int32_t)(lf_hash64(1, 0, (uint64_t)i) % (uint64_t)c.vocab_size);
    double best = 1e9;
    for (int rep = 0; rep < 2; rep++) {
        lf_model_cache_reset(m);
        lf_model_decode(m, prompt, 16, logits);
        double t0 = lf_now();
        for (int k = 0; k < n_new; k++) {
            int32_t tok = 0;
            for (int v = 1; v < c.vocab_size; v++)
                if (logits[v] > logits[tok]) tok = v;
            lf_model_decode(m, &tok, 1, logits);
        }
        double dt = lf_now() - t0;
        if (dt < best) best = dt;
    }
    printf("lmforge %s: %zu parameters, %d threads: %d new tokens in %.2f s, %.1f tokens/s\n", bc->name,
           lf_model_num_scalars(m), lf_num_threads(), n_new, best, n_new / best);
    printf("result: tok_s=%.3f\n", n_new / best);
    free(logits);
    lf_model_free(m);
    return 0;
}
