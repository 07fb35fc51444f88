/* Benchmark configurations shared by bench_step.c (and mirrored in peer_torch.py). */
#ifndef LF_BENCH_CONFIGS_H
#define LF_BENCH_CONFIGS_H

#include "lmforge/model.h"
#include <string.h>

typedef struct {
    const char *name;
    lf_arch arch;
    int V, C, L, H, KVH, F, maxT, tied;
    int B, T;
} bench_config;

static const bench_config bench_configs[] = {
    {"gpt2-t64", LF_ARCH_GPT2, 50257, 768, 12, 12, 12, 3072, 1024, 1, 4, 64},
    {"gpt2-t256", LF_ARCH_GPT2, 50257, 768, 12, 12, 12, 3072, 1024, 1, 4, 256},
    {"small-gpt2", LF_ARCH_GPT2, 8192, 256, 4, 4, 4, 1024, 256, 1, 16, 256},
    {"small-llama", LF_ARCH_LLAMA, 8192, 256, 4, 4, 2, 688, 256, 1, 16, 256},
};

static inline const bench_config *bench_find(const char *name) {
    for (size_t i = 0; i < sizeof bench_configs / sizeof bench_configs[0]; i++)
        if (strcmp(bench_configs[i].name, name) == 0) return &bench_configs[i];
    return NULL;
}

static inline void bench_model_config(const bench_config *bc, lf_config *c) {
    lf_config_defaults(c, bc->arch);
    c->vocab_size = bc->V;
    c->d_model = bc->C;
    c->n_layer = bc->L;
    c->n_head = bc->H;
    c->n_kv_head = bc->KVH;
    c->head_dim = bc->C / bc->H;
    c->d_ff = bc->F;
    c->max_seq = bc->maxT;
    c->tie_embeddings = bc->tied;
}

#endif
