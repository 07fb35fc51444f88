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
/* Bounds every size (computed in size_t, no wrap-around). */
lf_status lf_config_check(const lf_config *c);
/* Parameters the architecture has (a tied head counted once). */
size_t lf_config_num_params(const lf_config *c);

enum {
    LF_PARAM_TRAINABLE = 1u << 0, /* has a gradient and optimizer moments */
    LF_PARAM_DECAY = 1u << 1,     /* in the weight-decay group */
    LF_PARAM_ADAPTER = 1u << 2,   /* belongs to an adapter (LoRA A/B, DoRA magnitude) */
    LF_PARAM_MASKED = 1u << 3,    /* has a weight mask (pruning) */
    LF_PARAM_EXTRA = 1u << 4,     /* added after init (adapters, heads): not part of the architecture,
                                     so a Hugging Face save of the model leaves it out */
};

typedef enum { LF_KIND_WEIGHT = 0, LF_KIND_EMBED, LF_KIND_NORM, LF_KIND_BIAS, LF_KIND_OTHER } lf_param_kind;

typedef struct lf_param lf_param;

/* How a tensor's values are stored when not as float32 in data: the operations the one linear
 * path runs for it (quantized types arrive with the quantization issue; tests define their own). */
typedef struct {
    const char *name;
    /* out (N,OC, stride ldo) = inp (N,IC, stride ldi) · Wᵀ (+ bias) */
    void (*forward)(float *out, int ldo, const float *inp, int ldi, const lf_param *w, const float *bias, size_t N);
    /* dinp (N,IC, stride ldi) = (accum ? dinp : 0) + dout · W ; the weight itself gets no gradient */
    void (*backward_input)(float *dinp, int ldi, int accum, const float *dout, int ldo, const lf_param *w, size_t N);
    /* dst (numel) = the values as float32 */
    void (*dequantize)(const lf_param *w, float *dst);
    /* dst (n, shape[1]) = rows ids[0..n) as float32: embedding lookups. Optional; a type with it can
     * also store the token embedding (and with it a tied output head) */
    void (*lookup)(const lf_param *w, const int32_t *ids, size_t n, float *dst);
} lf_storage_ops;

/* A low-rank adapter on a linear weight W (OC,IC): y += scale · (drop(x)·Aᵀ)·Bᵀ, with A (r,IC) and
 * B (OC,r) parameters of the model (flag ADAPTER). magnitude (OC), when set, makes it DoRA
 * (lf_model_set_adapter_magnitude). */
typedef struct lf_adapter {
    lf_param *A, *B, *magnitude;
    float scale;
    float dropout; /* on the adapter's input, training only */
    int enabled;
    struct lf_adapter *next;
} lf_adapter;

/* An activation tap sees the input rows of a linear in every forward (training, evaluation,
 * decoding): calibration statistics (per-channel ‖x‖², XᵀX) without a second forward. */
typedef void (*lf_tap_fn)(void *ctx, const lf_param *w, const float *inp, int ldi, size_t N, int IC);

struct lf_param {
    char name[128];      /* Hugging Face name */
    int ndim;
    int64_t shape[2];    /* our layout: linears are (out, in) */
    size_t numel;
    float *data;         /* F32 values (NULL for another storage type) */
    float *grad;         /* NULL while frozen or before gradients are allocated */
    unsigned flags;
    lf_param_kind kind;
    int hf_transposed;   /* stored as (in, out) in HF files (GPT-2 Conv1D) */
    const lf_storage_ops *qops; /* NULL: float32 in data; else the storage type of qdata */
    void *qdata;         /* the encoded values (owned by the model) */
    size_t qbytes;
    uint8_t *mask;       /* (numel) 1 = keep, 0 = pruned; NULL = dense */
    lf_adapter *adapters;
    lf_tap_fn tap;
    void *tap_ctx;
    uint64_t id;         /* unique within the model for its lifetime (never reused) */
};

typedef struct lf_model lf_model;

lf_status lf_model_init(lf_model **out, const lf_config *cfg); /* weights zeroed */
/* The table only (names, shapes, flags; data NULL): loaders validate a file against it before
 * committing memory, then call lf_model_alloc_weights (which skips tensors already given another
 * storage with lf_model_set_storage: a quantized import never holds their float32 copies). */
lf_status lf_model_init_table(lf_model **out, const lf_config *cfg);
lf_status lf_model_alloc_weights(lf_model *m);
void lf_model_free(lf_model *m);
/* LF_ERR_FORMAT naming the first tensor with a NaN or infinite value ("where": the file or folder
 * the weights came from, for the message). */
lf_status lf_model_check_finite(lf_model *m, const char *where);
const lf_config *lf_model_config(const lf_model *m);

int lf_model_num_params(const lf_model *m);
lf_param *lf_model_param(lf_model *m, int i);
lf_param *lf_model_find(lf_model *m, const char *name);
size_t lf_model_num_scalars(const lf_model *m); /* unique parameters (a tied head counts once) */

/* Add a tensor after init (an adapter, a classification head): zero-filled F32, flags as given
 * plus EXTRA. Names must be new. The table grows; earlier lf_param pointers stay valid. */
lf_status lf_model_add_param(lf_model *m, const char *name, int64_t d0, int64_t d1, lf_param_kind kind,
                             unsigned flags, lf_param **out);
/* Remove a tensor added with lf_model_add_param (after merging an adapter, say). */
lf_status lf_model_remove_param(lf_model *m, lf_param *p);
/* Attach a LoRA adapter (A (r,IC), B (OC,r), both from lf_model_add_param) to linear weight w. */
lf_status lf_model_add_adapter(lf_model *m, lf_param *w, lf_param *A, lf_param *B, float scale, float dropout,
                               lf_adapter **out);
/* Make an adapter DoRA (PEFT's formula, on a float32 weight W (OC,IC)): y += (g-1)·(drop(x)·Wᵀ) +
 * g·scale·(drop(x)·Aᵀ)·Bᵀ with g = magnitude / ‖W + scale·B·A‖ per output row, the norm treated
 * as a constant in backward (detached, as PEFT does). magnitude (OC) from lf_model_add_param. */
lf_status lf_model_set_adapter_magnitude(lf_model *m, lf_adapter *ad, lf_param *magnitude);
/* Set (or with mask NULL, remove) a weight mask: copies it and zeroes the pruned weights. */
lf_status lf_model_set_mask(lf_model *m, lf_param *p, const uint8_t *mask);
void lf_model_apply_masks(lf_model *m); /* zero every masked weight again (after an update) */
/* Store a linear weight (or, with a type that has lookup, the token embedding and so a tied head)
 * in another type: qdata (qbytes, malloc'd; the model takes it over) replaces data, and the tensor
 * is frozen (the storage types have no weight gradient). */
lf_status lf_model_set_storage(lf_model *m, lf_param *p, const lf_storage_ops *ops, void *qdata, size_t qbytes);
/* The float32 slots of tensors now in another storage stay in the weights' one block until this
 * moves the live float32 tensors into a block of their size (lf_param data pointers change).
 * Call it once after a batch of lf_model_set_storage; a loader can instead set storage on a
 * table-only model (lf_model_init_table), and lf_model_alloc_weights skips those tensors. */
lf_status lf_model_compact_weights(lf_model *m);

/* Random initialisation in the style of GPT-2 (normal 0.02, residual projections scaled by
 * 1/sqrt(2L), norms 1, biases 0); reproducible from seed. Architecture tensors only. */
void lf_model_init_weights(lf_model *m, uint64_t seed);

/* Freeze/unfreeze every parameter whose name starts with prefix ("" = all). Returns the number
 * matched through *count (may be NULL). Gradient buffers are re-planned on the next backward, and
 * the optimizer follows (it gives a newly trainable tensor moments at its next step). */
lf_status lf_model_set_trainable(lf_model *m, const char *prefix, int trainable, int *count);

/* Training mode enables dropout with masks drawn from seed (set a new seed every step). */
void lf_model_set_training(lf_model *m, int training, uint64_t seed);

/* Forward-only mode: no gradients, no backward buffers, and per-layer activations kept for one
 * layer at a time (the residual stream of every block is still kept, for hidden-state reads).
 * For teachers, evaluation and calibration passes. Switching re-plans the activations. */
void lf_model_set_forward_only(lf_model *m, int on);
size_t lf_model_activation_bytes(const lf_model *m); /* of the current plan */

typedef enum {
    LF_LOGITS_ALL = 0, /* (B*T, V) */
    LF_LOGITS_LAST,    /* (B, V): the last position of each row */
    LF_LOGITS_NONE,    /* hidden states only */
} lf_logits_mode;

/* inputs (B,T) token ids. Computes the logits and keeps what backward needs. */
lf_status lf_model_forward(lf_model *m, const int32_t *inputs, int B, int T, lf_logits_mode mode);
/* The logits of the last forward, (rows, V); loss terms overwrite them with dlogits in place. */
float *lf_model_logits(lf_model *m, size_t *rows);
/* (B,T,C) residual stream entering block l (l = n_layer: after the last block, before the final
 * norm), valid until the next forward. */
const float *lf_model_hidden(const lf_model *m, int l);
/* (B,T,C) gradient on lf_model_hidden(l) that backward adds in; zeroed by every forward. */
float *lf_model_hidden_grad(lf_model *m, int l);
/* Backward from the dlogits now in the logits buffer (all of them; rows that carry no loss must
 * be zero) plus any hidden-state gradients. Parameter gradients accumulate (+=). */
lf_status lf_model_backward(lf_model *m);
void lf_model_zero_grad(lf_model *m);
/* Allocate gradient buffers for the trainable parameters now (backward does it when needed). */
lf_status lf_model_alloc_grads(lf_model *m);

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
