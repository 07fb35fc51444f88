/* lmforge model: GPT-2 and Llama families from one config, a named parameter table with
 * Hugging Face names, and forward/backward over (B,T) token batches.
 *
 * The parameter table is the single source of truth for weights: the optimizer, checkpoint code
 * and (later) LoRA adapters and pruning masks all walk it by name and flags, never by position. */
#ifndef LMFORGE_MODEL_H
#define LMFORGE_MODEL_H

#include "lmforge/core.h"

typedef enum { LF_ARCH_GPT2 = 1, LF_ARCH_LLAMA = 2 } lf_arch;

typedef struct {
    lf_arch arch;
    int vocab_size;
    int d_model;
    int n_layer;
    int n_head;
    int n_kv_head;   /* = n_head for GPT-2; divides n_head */
    int head_dim;    /* usually d_model / n_head */
    int d_ff;        /* MLP hidden width */
    int max_seq;     /* learned positions (GPT-2) / RoPE table length (Llama) */
    float norm_eps;
    float rope_theta;
    int tie_embeddings;
    float dropout_embd, dropout_attn, dropout_resid;
    float init_std;
    int bos_id, eos_id; /* -1 when unknown; carried to config.json */
} lf_config;

/* Fill defaults for an architecture (callers then set sizes) */
void lf_config_defaults(lf_config *c, lf_arch arch);
lf_status lf_config_check(const lf_config *c);

enum {
    LF_PARAM_TRAINABLE = 1u << 0,
    LF_PARAM_DECAY = 1u << 1,
};

typedef enum { LF_KIND_WEIGHT = 0, LF_KIND_EMBED, LF_KIND_NORM, LF_KIND_BIAS } lf_param_kind;

typedef struct {
    char name[96];       /* Hugging Face name */
    int ndim;
    int64_t shape[2];    /* our layout: linears are (out, in) */
    size_t numel;
    float *data;
    float *grad;         /* NULL while frozen or before gradients are allocated */
    unsigned flags;
    lf_param_kind kind;
    int hf_transposed;   /* stored as (in, out) in HF files (GPT-2 Conv1D) */
} lf_param;

typedef struct lf_model lf_model;

lf_status lf_model_init(lf_model **out, const lf_config *cfg); /* weights zeroed */
void lf_model_free(lf_model *m);
const lf_config *lf_model_config(const lf_model *m);

int lf_model_num_params(const lf_model *m);
lf_param *lf_model_param(lf_model *m, int i);
lf_param *lf_model_find(lf_model *m, const char *name);
size_t lf_model_num_scalars(const lf_model *m); /* unique parameters (a tied head counts once) */

/* Random initialisation in the style of GPT-2 (normal 0.02, residual projections scaled by
 * 1/sqrt(2L), norms 1, biases 0); reproducible from seed. */
void lf_model_init_weights(lf_model *m, uint64_t seed);

/* Freeze/unfreeze every parameter whose name starts with prefix ("" = all). Returns the number
 * matched through *count (may be NULL). Gradient buffers are re-planned on the next backward. */
lf_status lf_model_set_trainable(lf_model *m, const char *prefix, int trainable, int *count);

/* Training mode enables dropout with masks drawn from seed (set a new seed every step). */
void lf_model_set_training(lf_model *m, int training, uint64_t seed);
void lf_model_set_label_smoothing(lf_model *m, float eps);

/* inputs (B,T) token ids; targets (B,T) ids or < 0 for "no loss here", or NULL (inference).
 * With targets, *loss is the mean cross-entropy over counted positions. */
lf_status lf_model_forward(lf_model *m, const int32_t *inputs, const int32_t *targets, int B, int T,
                           float *loss);
/* Gradients of (loss_scale × mean loss) accumulate (+=) into the trainable parameters' grads.
 * Consumes the logits (they become dlogits). */
lf_status lf_model_backward(lf_model *m, float loss_scale);
void lf_model_zero_grad(lf_model *m);
/* Allocate gradient buffers for the trainable parameters now (backward does it when needed). */
lf_status lf_model_alloc_grads(lf_model *m);

/* (B,T,V) logits of the last forward; valid until the next backward/forward */
const float *lf_model_logits(const lf_model *m);
int lf_model_counted(const lf_model *m); /* positions that carried loss in the last forward */

/* Incremental decoding (inference, dropout off) with a key/value cache of up to max_len positions
 * (<= max_seq; 0 = max_seq). decode feeds n tokens after the cached ones and writes the logits of
 * the last one (V floats). reset forgets the cached positions. */
lf_status lf_model_cache_init(lf_model *m, int max_len);
void lf_model_cache_reset(lf_model *m);
int lf_model_cache_len(const lf_model *m);
lf_status lf_model_decode(lf_model *m, const int32_t *tokens, int n, float *logits);

/* Copy a parameter (or its gradient) into dst in Hugging Face layout (transposing Conv1D). */
void lf_param_to_hf(const lf_param *p, const float *src, float *dst);
void lf_param_from_hf(lf_param *p, const float *src);
void lf_param_hf_shape(const lf_param *p, int64_t shape[2]);

#endif
