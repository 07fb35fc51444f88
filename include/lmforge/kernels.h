/* lmforge kernels: pure functions over pointers and sizes, paired _forward/_backward.
 * Conventions: shapes in comments, row-major; parameter gradients accumulate (+=); activation
 * gradients say per function whether they overwrite or accumulate. A NULL parameter gradient
 * means "frozen: do not compute". GEMMs go through BLAS; the rest are OpenMP loops written so
 * that results are bit-identical for a fixed thread count (no atomics, fixed reduction order).
 * A plain reference version of the GEMM-based kernels (suffix _ref) is the test oracle. */
#ifndef LMFORGE_KERNELS_H
#define LMFORGE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Dropout: element i of a site is kept iff lf_u01(lf_hash64(seed, stream, i)) >= p, and kept
 * values are scaled by 1/(1-p). p == 0 is the identity. The mask is never stored. */
typedef struct {
    float p;
    uint64_t seed;
    uint64_t stream;
} lf_dropout;

/* out = wte[tok] (+ wpe[t]) */
void lf_encoder_forward(float *out,            // (B,T,C)
                        const int32_t *tokens, // (B,T)
                        const float *wte,      // (V,C)
                        const float *wpe,      // (maxT,C) or NULL (Llama)
                        int B, int T, int C);
void lf_encoder_backward(float *dwte,          // (V,C) += ; NULL if frozen
                         float *dwpe,          // (maxT,C) += ; NULL if frozen or absent
                         const float *dout,    // (B,T,C)
                         const int32_t *tokens, int B, int T, int C);

void lf_layernorm_forward(float *out, float *mean, float *rstd, // (N,C) (N) (N)
                          const float *inp, const float *w, const float *b, // (N,C) (C) (C)
                          size_t N, int C, float eps);
void lf_layernorm_backward(float *dinp, float *dw, float *db, // (N,C) += ; (C) += ; (C) +=
                           const float *dout, const float *inp, const float *w,
                           const float *mean, const float *rstd, size_t N, int C);

void lf_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, // (N,C) (N) (N,C) (C)
                        size_t N, int C, float eps);
void lf_rmsnorm_backward(float *dinp, float *dw, // (N,C) += ; (C) +=
                         const float *dout, const float *inp, const float *w, const float *rstd,
                         size_t N, int C);

/* out = inp · wᵀ + b. Rows of out/inp may be strided (ldo/ldi) so that several linears write
 * into one packed buffer (Llama's q/k/v, gate/up). One row (N = 1, decoding) runs as a GEMV. */
void lf_linear_forward(float *out, int ldo,       // (N,OC) row stride ldo
                       const float *inp, int ldi, // (N,IC) row stride ldi
                       const float *w,            // (OC,IC)
                       const float *b,            // (OC) or NULL
                       size_t N, int IC, int OC);
/* dinp = (accum ? dinp : 0) + dout·w ; dw += doutᵀ·inp ; db += Σ dout */
void lf_linear_backward(float *dinp, int ldi, int accum, // (N,IC) or NULL
                        float *dw, float *db,            // (OC,IC) (OC), NULL if frozen/absent
                        const float *dout, int ldo,      // (N,OC)
                        const float *inp, const float *w, size_t N, int IC, int OC);
void lf_linear_forward_ref(float *out, int ldo, const float *inp, int ldi, const float *w,
                           const float *b, size_t N, int IC, int OC);
void lf_linear_backward_ref(float *dinp, int ldi, int accum, float *dw, float *db,
                            const float *dout, int ldo, const float *inp, const float *w,
                            size_t N, int IC, int OC);

/* Causal self-attention with grouped-query heads over a packed qkv buffer whose rows are
 * [H query heads | KVH key heads | KVH value heads], each hd wide (S = (H+2·KVH)·hd).
 * Query head h reads kv head h / (H/KVH), as Hugging Face's repeat_kv does. att keeps the
 * softmax probabilities (before dropout) for backward. */
size_t lf_attention_scratch_floats(int T); // per call, covers all threads
void lf_attention_forward(float *out,       // (B,T,H*hd)
                          float *att,       // (B,H,T,T)
                          const float *qkv, // (B,T,S)
                          float *scratch, int B, int T, int H, int KVH, int hd, lf_dropout drop);
/* dqkv is overwritten */
void lf_attention_backward(float *dqkv,       // (B,T,S)
                           float *scratch, const float *dout, // (B,T,H*hd)
                           const float *qkv, const float *att, int B, int T, int H, int KVH,
                           int hd, lf_dropout drop);
void lf_attention_forward_ref(float *out, float *att, const float *qkv, int B, int T, int H,
                              int KVH, int hd, lf_dropout drop);
void lf_attention_backward_ref(float *dqkv, const float *dout, const float *qkv, const float *att,
                               int B, int T, int H, int KVH, int hd, lf_dropout drop);

/* One query position attending to len cached positions (incremental decoding): for each query
 * head h, y_h = softmax(q_h·K_gᵀ/√hd)·V_g over the cache of kv head g = h / (H/KVH). Caches hold
 * rows of KVH·hd floats. scores: len floats of scratch. */
void lf_attention_decode_forward(float *y,          // (H*hd)
                                 const float *q,    // (H*hd)
                                 const float *kc,   // (len, KVH*hd)
                                 const float *vc,   // (len, KVH*hd)
                                 float *scores, int len, int H, int KVH, int hd);

/* Rotary embeddings, Hugging Face rotate-half layout, in place on the first nh heads of each
 * row (q heads then k heads in the packed qkv buffer). cos/sin: (maxT, hd/2). Backward is the
 * inverse rotation, also in place. */
void lf_rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int nh, int hd,
                     int stride);
void lf_rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int nh,
                      int hd, int stride);

/* GELU, tanh approximation (Hugging Face gelu_new). dinp is overwritten and may alias dout. */
void lf_gelu_forward(float *out, const float *inp, size_t N);
void lf_gelu_backward(float *dinp, const float *inp, const float *dout, size_t N);

/* SwiGLU: out = silu(gate) * up, gu rows = [gate (F) | up (F)]. dgu is overwritten. */
void lf_swiglu_forward(float *out, const float *gu, size_t N, int F);           // (N,F) (N,2F)
void lf_swiglu_backward(float *dgu, const float *dout, const float *gu, size_t N, int F);

/* out = res + dropout(branch); out may alias res. */
void lf_residual_forward(float *out, const float *res, const float *branch, size_t N, lf_dropout drop);
/* out = dropout(inp), in place allowed; backward: dinp = dropout mask applied to dout (may alias). */
void lf_dropout_forward(float *out, const float *inp, size_t N, lf_dropout drop);
void lf_dropout_backward(float *dinp, const float *dout, size_t N, lf_dropout drop);

/* Cross-entropy with label smoothing eps (PyTorch semantics) and ignored rows (target < 0).
 * losses[i] = 0 for ignored rows. lse keeps each row's log-sum-exp for backward. */
void lf_crossentropy_forward(float *losses, float *lse,   // (N) (N)
                             const float *logits,         // (N,V)
                             const int32_t *targets,      // (N)
                             size_t N, int V, float smoothing);
/* dlogits = dloss · (softmax − smoothed one-hot) for counted rows, 0 for ignored rows.
 * dlogits may alias logits (the logits are then consumed, never held twice). */
void lf_crossentropy_backward(float *dlogits, const float *logits, const float *lse,
                              const int32_t *targets, size_t N, int V, float smoothing, float dloss);

/* AdamW (PyTorch order: decoupled decay p *= 1 − lr·wd, then the Adam step) on the gradient
 * grad_scale·g (clipping folded in, so g is read once). t ≥ 1. */
/* x[i] = 0 where mask[i] == 0 (pruned weights and their gradients) */
void lf_mask_apply(float *x, const uint8_t *mask, size_t n);
/* x *= a */
void lf_scale(float *x, size_t n, float a);

void lf_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                     float beta2, float eps, float weight_decay, float grad_scale, int t);
double lf_sumsq(const float *x, size_t n); // deterministic for a fixed thread count

/* The OpenBLAS kernel set in use ("SkylakeX", "Haswell", "Prescott", ...). */
const char *lf_blas_core(void);
/* The kernel set this CPU should get when OpenBLAS fell back to its generic Prescott (SSE3)
 * kernels on a CPU newer than its tables (Debian 12's 0.3.21 on recent Xeons: ~6x slower GEMM);
 * NULL when the detected core is fine. OpenBLAS reads OPENBLAS_CORETYPE only when it loads, so
 * the CLI re-executes itself with it set. */
const char *lf_blas_better_core(void);

#endif
