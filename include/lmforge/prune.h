/* Pruning (issue 11): zero a fraction of each linear weight and keep it zero through the engine's
 * weight masks (lf_model_set_mask: later training re-applies them after every optimizer step and
 * the linear path drops pruned weights' gradients). Three ways to choose what goes:
 *   - magnitude: the smallest |W|, per layer or with one threshold over all layers;
 *   - Wanda (Sun et al. 2023): the smallest |W_ij|·‖X_j‖₂ within each output row, ‖X_j‖ from
 *     calibration inputs seen by the activation tap;
 *   - SparseGPT (Frantar & Alistarh 2023): OBS reconstruction with the inverse Hessian of the layer's
 *     least-squares problem, H = XᵀX + λI, λ = damp·mean(diag H): the Cholesky factor of H⁻¹ (LAPACK
 *     from OpenBLAS), column blocks whose mask is chosen by w²/[U]_jj², and each pruned weight's
 *     error pushed onto the columns not yet visited.
 * Unstructured (a fraction per layer) or N:M (N kept of every M consecutive inputs of a row).
 * Embeddings, norms, biases and the output head stay dense (the head optionally pruned). */
#ifndef LMFORGE_PRUNE_H
#define LMFORGE_PRUNE_H

#include "lmforge/model.h"
#include "lmforge/report.h"
#include "lmforge/train.h"

typedef enum { LF_PRUNE_MAGNITUDE = 0, LF_PRUNE_WANDA, LF_PRUNE_SPARSEGPT } lf_prune_method;

typedef struct {
    lf_prune_method method;
    float sparsity;   /* fraction pruned of each layer (unstructured); ignored with N:M */
    int keep_n, group_m; /* N:M: keep N of every M consecutive inputs of a row; group_m 0 = unstructured */
    int global;       /* magnitude: one threshold over every pruned tensor instead of one per tensor */
    int blocksize;    /* SparseGPT column block (128) */
    float damp;       /* SparseGPT dampening, a fraction of mean(diag H) (0.01) */
    int sequential;   /* calibration: 1 = each linear is pruned as soon as its inputs are seen, so
                         every later linear's statistics come from the already-pruned model (one
                         forward pass); 0 = statistics of the dense model, pruning after the pass */
    int include_head; /* an untied output head is pruned too */
    lf_reporter *rep; /* progress (may be NULL) */
} lf_prune_opts;
void lf_prune_opts_default(lf_prune_opts *o, lf_prune_method method);
/* "magnitude", "wanda", "sparsegpt" -> method; LF_ERR_ARG naming the accepted names otherwise */
lf_status lf_prune_method_parse(const char *s, lf_prune_method *out);
const char *lf_prune_method_name(lf_prune_method m);

typedef struct {
    int tensors;             /* tensors pruned */
    size_t pruned, total;    /* weights of those tensors */
    double seconds_calib;    /* the calibration forward (with the pruning done inside it when sequential) */
    double seconds;          /* everything */
} lf_prune_report;

/* Whether lf_prune_model would prune p: a float32 linear weight of the architecture (not the
 * embedding, not a tied or, unless include_head, untied head, not an adapter or added tensor). */
int lf_prune_is_target(lf_model *m, const lf_param *p, int include_head);

/* Prune m in place. calib (K,T) token ids: the calibration sequences, run as one forward-only batch
 * (Wanda and SparseGPT; magnitude takes NULL). Masks are set on every pruned tensor. */
lf_status lf_prune_model(lf_model *m, const lf_prune_opts *o, const int32_t *calib, int K, int T, lf_prune_report *rep);

/* ---- kernels (exposed for tests) */
/* mask (OC,IC) = 1 except the lowest scores: N:M (keep_n of every group_m consecutive columns of a
 * row), else floor(IC·sparsity) per row (per_row) or floor(OC·IC·sparsity) over the whole matrix.
 * Ties go to the lower index. */
lf_status lf_prune_select(const float *score /* (OC,IC) */, int64_t OC, int64_t IC, float sparsity, int keep_n, int group_m,
                          int per_row, uint8_t *mask);
/* SparseGPT on one weight W (OC,IC) from H = XᵀX (IC,IC, destroyed): W gets the pruned, reconstructed
 * values (zeros in place) and mask the pattern. Unstructured: floor(OC·B·sparsity) pruned in each
 * column block of B; N:M: per row and group, chosen when the group's first column is reached. */
lf_status lf_sparsegpt_prune(float *W, double *H, int OC, int IC, float sparsity, int keep_n, int group_m, int blocksize,
                             float damp, uint8_t *mask);
/* The plain reference: the same choices with the inverse Hessian formed by Gauss-Jordan and the
 * OBS update of every column applied at once to all later columns (no Cholesky, no lazy blocks). */
lf_status lf_sparsegpt_prune_ref(float *W, double *H, int OC, int IC, float sparsity, int keep_n, int group_m,
                                 int blocksize, float damp, uint8_t *mask);

/* Sparsity of the model's linear weights: zeros and total over the tensors lf_prune_is_target
 * accepts (include_head 1: also the head). */
void lf_prune_count(lf_model *m, int include_head, size_t *zeros, size_t *total);

/* Masks on the prunable tensors that hold zeros (1 where the value is not zero): a pruned model
 * loaded from its folder fine-tunes with its zeros kept. *count: tensors masked (may be NULL). */
lf_status lf_prune_mask_zeros(lf_model *m, int *count);

/* Gradual pruning during training (Zhu & Gupta 2017): from step t0 to t1, every dt steps, the target
 * sparsity follows s_f + (s_i - s_f)·(1 - (t - t0)/(t1 - t0))³ and each prunable tensor's mask is
 * recomputed (magnitude, or Wanda with ‖X_j‖ from the training forwards since the last update). */
typedef struct {
    float s_initial, s_final;
    int64_t t0, t1, dt;
    lf_prune_method method; /* magnitude or wanda */
} lf_prune_schedule;
float lf_prune_schedule_sparsity(const lf_prune_schedule *s, int64_t step);
/* The step hook (the trainer owns it once added); taps are attached for Wanda. */
lf_status lf_hook_prune_schedule(lf_hook **out, lf_model *m, const lf_prune_schedule *s);

/* ---- structured pruning with a physical shrink (LLM-Pruner / Sheared-LLaMA style)
 * Whole structures leave the model, and the result is a smaller ordinary config, so the speedup
 * needs no sparse kernels:
 *   - KV groups: a key/value head with the query heads that read it (MHA: one head each);
 *   - query heads inside every kept group (GQA: the same number in every group, since the config
 *     says n_head = n_kv_head · heads-per-group); Llama only (GPT-2 configs cannot say head_dim);
 *   - MLP neurons: a row of gate/up (GPT-2 c_fc and its bias) and the column of down (c_proj);
 *   - whole layers.
 * The same count of each structure goes in every layer (only the ranking is per layer), so every
 * layer keeps one shape. Importance (higher = kept):
 *   - taylor: first order, Σ |w · ∂L/∂w| over the structure's weights (LLM-Pruner's element-wise
 *     first-order term), ∂L/∂w of the mean next-token loss over the calibration sequences;
 *   - act: activation norms seen by the tap, weighted by the weights that carry them on
 *     (Wanda's |W_ij|·‖X_j‖ summed over the structure's columns of o_proj / down_proj, the
 *     structured form FLAP and Wanda-sp use); layers by block influence, mean 1 - cos(h_in, h_out)
 *     of the residual stream over the block (ShortGPT). */
typedef enum { LF_IMPORTANCE_TAYLOR = 0, LF_IMPORTANCE_ACT } lf_importance;
/* "taylor", "act" -> importance; LF_ERR_ARG naming the accepted names otherwise */
lf_status lf_importance_parse(const char *s, lf_importance *out);
const char *lf_importance_name(lf_importance i);

/* Scores of every structure of the (unshrunk) model; all arrays owned, freed by _free. */
typedef struct {
    int n_layer, n_head, n_kv_head, d_ff;
    double *group;  /* (n_layer, n_kv_head) KV groups */
    double *head;   /* (n_layer, n_head) query heads (their q rows and o_proj columns) */
    double *neuron; /* (n_layer, d_ff) */
    double *layer;  /* (n_layer) */
} lf_sprune_scores;
void lf_sprune_scores_free(lf_sprune_scores *s);

/* Score m on calib (K,T) token ids, batch rows per forward (taylor: forward + backward each; the
 * gradients are summed over batches and scaled to the mean loss). Parameter gradients are left
 * zeroed and the model in evaluation mode. rep (may be NULL) shows progress. */
lf_status lf_sprune_score(lf_model *m, lf_importance imp, const int32_t *calib, int K, int T, int batch, lf_reporter *rep,
                          lf_sprune_scores *out);

/* What stays: source indices, ascending within each list. */
typedef struct {
    int n_layer;     /* layers kept */
    int *layers;     /* (n_layer) source layer of each kept layer */
    int n_kv_head;   /* KV groups kept per layer */
    int n_head;      /* query heads kept per layer: n_kv_head · heads kept per group */
    int *heads;      /* (n_layer, n_head) source query heads, group by group (head i reads kv i / (n_head/n_kv_head)) */
    int *kv_heads;   /* (n_layer, n_kv_head) source KV heads */
    int d_ff;
    int *neurons;    /* (n_layer, d_ff) source neurons */
} lf_sprune_plan;
void lf_sprune_plan_free(lf_sprune_plan *p);

/* The plan that drops, in every layer, the remove_groups lowest KV groups, then in every kept group
 * the remove_qheads lowest query heads, the remove_neurons lowest neurons, and the remove_layers
 * lowest layers overall. LF_ERR_ARG when nothing of a kind would be left, or heads inside groups
 * are asked of GPT-2. */
lf_status lf_sprune_plan_make(const lf_model *m, const lf_sprune_scores *s, int remove_groups, int remove_qheads,
                              int remove_neurons, int remove_layers, lf_sprune_plan *out);

/* The smaller model: a new config (n_layer, n_head, n_kv_head, d_ff from the plan; head_dim and
 * d_model unchanged) with the kept rows and columns copied from m. m must hold float32 weights and
 * no adapters; masks are dropped (the kept values, zeros included, are copied). */
lf_status lf_sprune_shrink(lf_model *m, const lf_sprune_plan *p, lf_model **out);

#endif
