/* Model internals shared by model.c (training forward/backward) and decode.c (KV-cache
 * inference). Not part of the public API. */
#ifndef LF_MODEL_INTERNAL_H
#define LF_MODEL_INTERNAL_H

#include "lmforge/model.h"

typedef struct {
    float *k, *v;       // (L, cap, KVH*hd) each
    float *mem;         // one allocation: caches + scratch below
    float *x, *ln, *qkv, *y, *br, *fc, *fca, *scores; // one token's activations
    int cap, len;
} kv_cache;

typedef struct {
    lf_param *ln1_w, *ln1_b, *qkv_w, *qkv_b, *q_w, *k_w, *v_w, *o_w, *o_b;
    lf_param *ln2_w, *ln2_b, *fc_w, *fc_b, *gate_w, *up_w, *down_w, *down_b;
} layer_params;

typedef struct {
    float *resid;          // (L+1,N,C) residual stream entering each layer, then the final one
    float *mid;            // (L,N,C) after the attention residual
    float *ln1, *ln1_mean, *ln1_rstd; // (L,N,C) (L,N) (L,N)
    float *qkv;            // (L,N,S) after RoPE
    float *att;            // (L,B,H,T,T) softmax probabilities
    float *atty;           // (L,N,A)
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fc;             // (L,N,FW) pre-activation (GPT-2: F; Llama: gate|up, 2F)
    float *fca;            // (L,N,F) activated
    float *lnf, *lnf_mean, *lnf_rstd; // (N,C) (N) (N)
    float *logits;         // (N,V)
    float *lse, *losses;   // (N) (N)
    float *branch;         // (N,C) scratch: a residual branch before it is added
    float *dres, *dbranch, *dln; // (N,C)
    float *dqkv;           // (N,S)
    float *datty;          // (N,A)
    float *dfc;            // (N,FW)
    float *dfca;           // (N,F)
    float *att_scratch;    // per-thread attention work space
} activations;

struct lf_model {
    lf_config cfg;
    lf_param *params;
    int nparams;
    float *param_mem;
    size_t param_scalars;
    float *grad_mem;
    int grads_planned;
    layer_params *layers;
    lf_param *wte, *wpe, *lnf_w, *lnf_b, *head; /* head == wte when tied */
    float *rope_cos, *rope_sin;                 // (max_seq, hd/2)
    /* activations for the current shape */
    activations a;
    void *act_mem;
    size_t act_cap, tok_cap; /* floats in act_mem; a smaller (B,T) is re-carved from the same block */
    int B, T, planned_threads; /* attention scratch is per thread: re-plan if the count changes */
    int32_t *inputs, *targets; // (B,T)
    int has_targets, counted, logits_valid, training;
    uint64_t drop_seed;
    float smoothing;
    kv_cache kv; /* incremental decoding (decode.c) */
};


#endif
