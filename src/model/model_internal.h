/* Model internals shared by model.c (parameter table, training forward/backward), linear.c (the
 * one linear path) and decode.c (KV-cache inference). Not part of the public API. */
#ifndef LF_MODEL_INTERNAL_H
#define LF_MODEL_INTERNAL_H

#include "lmforge/model.h"
#include "lmforge/kernels.h"

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

/* Per-layer buffers have one slot per layer, or a single reused slot in forward-only mode. */
typedef struct {
    float *resid;          // (L+1,N,C) residual stream entering each layer, then the final one
    float *mid;            // (Ls,N,C) after the attention residual
    float *ln1, *ln1_mean, *ln1_rstd; // (Ls,N,C) (Ls,N) (Ls,N)
    float *qkv;            // (Ls,N,S) after RoPE
    float *att;            // (Ls,B,H,T,T) softmax probabilities
    float *atty;           // (Ls,N,A)
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fc;             // (Ls,N,FW) pre-activation (GPT-2: F; Llama: gate|up, 2F)
    float *fca;            // (Ls,N,F) activated
    float *lnf, *lnf_mean, *lnf_rstd; // (N,C) (N) (N)
    float *logits;         // (rows,V): N rows, B rows (last positions) or none
    float *branch;         // (N,C) scratch: a residual branch before it is added
    float *dres, *dbranch, *dln; // (N,C)      } backward only
    float *dqkv;           // (N,S)           }
    float *datty;          // (N,A)           }
    float *dfc;            // (N,FW)          }
    float *dfca;           // (N,F)           }
    float *ad_xa, *ad_dxa; // (N,R) adapter scratch (R = largest adapter rank)
    float *ad_x;           // (N,I) adapter input after dropout (I = widest adapter input; 0 if none drops)
    float *ad_y, *ad_norm; // (N,O) (O) DoRA scratch: x·Wᵀ and row norms (O = widest DoRA output; 0 if none)
    float *att_scratch;    // per-thread attention work space
} activations;

struct lf_model {
    lf_config cfg;
    lf_param **params;    /* the table: pointers, so growing it never moves a tensor */
    int nparams, params_cap;
    lf_param *base;       /* the architecture's tensors: one block of structs ... */
    int nbase;
    uint64_t next_id;
    float *param_mem;     /* ... and one block of values */
    size_t param_floats;  /* its size (slots of 16-float alignment included) */
    size_t param_scalars;
    float *grad_mem;
    int grads_planned;
    layer_params *layers;
    lf_param *wte, *wpe, *lnf_w, *lnf_b, *head; /* head == wte when tied */
    float *rope_cos, *rope_sin;                 // (max_seq, hd/2)
    /* activations for the current shape */
    activations a;
    void *act_mem;
    size_t act_cap;
    int B, T, planned_threads, planned_fwd_only, planned_rows, planned_adapters;
    int fwd_only;
    int adapter_gen;      /* bumped when adapters change: re-plan their scratch */
    int32_t *inputs;      // (B,T)
    size_t tok_cap;
    size_t logit_rows;
    lf_logits_mode logits_mode;
    int fwd_valid, training;
    uint64_t drop_seed;
    float *dhid;          // (L+1,N,C) hidden-state gradients, allocated on first request
    size_t dhid_cap;
    int dhid_on;
    kv_cache kv; /* incremental decoding (decode.c) */
};

/* The one linear path (linear.c): y = x·Wᵀ + b through the weight's storage type, plus its
 * adapters, with its activation tap; backward applies the weight mask to the gradient. Training,
 * evaluation and decoding all call these. */
void lf_linear_run_forward(lf_model *m, float *out, int ldo, const float *inp, int ldi, const lf_param *w,
                           const lf_param *b, size_t N);
void lf_linear_run_backward(lf_model *m, float *dinp, int ldi, int accum, const lf_param *w, const lf_param *b,
                            const float *dout, int ldo, const float *inp, size_t N);
/* plan (and carve) activations for (B,T) with rows of logits */
lf_status lf_model_plan(lf_model *m, int B, int T, size_t rows);
lf_dropout lf_model_site(const lf_model *m, float p, uint64_t stream);
void lf_model_norm_row(const lf_model *m, float *out, const float *in, const lf_param *w, const lf_param *b);

#endif
