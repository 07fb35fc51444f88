/* lmforge distillation (src/tech/distill.c): a frozen, forward-only teacher and loss terms that pull
 * a student towards it, on the engine's loss-term seam.
 *
 * Logit terms (per position whose target is not -1, mean over those positions, row weights as
 * cross-entropy uses them), with p = softmax(teacher/τ), q = softmax(student/τ):
 *   kl   τ²·KL(p‖q)                        forward KL (Hinton; DistilBERT's soft cross-entropy
 *                                          up to the teacher's entropy, a constant)
 *   rkl  τ²·KL(q‖p)                        reverse KL (MiniLLM)
 *   jsd  τ²·(β·KL(p‖m) + (1-β)·KL(q‖m)),   m = β·p + (1-β)·q: TRL GKD's generalized JSD, whose
 *                                          β = 0 is forward KL and β = 1 reverse KL (as TRL
 *                                          special-cases them; jsd/β → KL(p‖q) as β → 0)
 * TRL leaves out the τ² factor; here every kind has it, so that the gradient keeps its size when
 * τ changes (Hinton et al.) and the three are interchangeable under one α.
 * Hidden-state terms between pairs of layers (lf_model_hidden of the student and of the teacher),
 * through a learned projection W (C_teacher, C_student) when the widths differ:
 *   mse     mean over positions and channels of (W·h_s - h_t)²
 *   cosine  mean over positions of 1 - cos(W·h_s, h_t)       (DistilBERT)
 * averaged over the pairs. The teacher runs once per micro-batch (the first term that needs it),
 * into its own logits buffer, which is turned into log-probabilities in place and reused. */
#ifndef LMFORGE_DISTILL_H
#define LMFORGE_DISTILL_H

#include "lmforge/loss.h"
#include "lmforge/model.h"
#include "lmforge/tokenizer.h"

typedef enum { LF_DISTILL_KL = 0, LF_DISTILL_RKL, LF_DISTILL_JSD } lf_distill_kind;
typedef enum { LF_HIDDEN_MSE = 0, LF_HIDDEN_COSINE } lf_hidden_kind;

#define LF_DISTILL_MAX_PAIRS 16

typedef struct {
    lf_distill_kind kind;
    float temperature; /* τ > 0 */
    float beta;        /* jsd: in [0, 1] */
    int n_pairs;       /* hidden-state pairs (0 = no hidden term) */
    int student_layer[LF_DISTILL_MAX_PAIRS], teacher_layer[LF_DISTILL_MAX_PAIRS]; /* 0..n_layer */
    lf_hidden_kind hidden;
    uint64_t seed;     /* initialisation of the projections */
} lf_distill_opts;

void lf_distill_opts_default(lf_distill_opts *o); /* kl, τ = 1, β = 0.5, no hidden pairs (cosine when given) */
/* "kl", "rkl", "jsd" / "mse", "cosine"; -1 when unknown */
int lf_distill_kind_parse(const char *s);
int lf_hidden_kind_parse(const char *s);
/* "S:T,S:T,..." into o's pairs (empty: none); LF_ERR_ARG with a hint on bad text */
lf_status lf_distill_parse_pairs(lf_distill_opts *o, const char *text);

typedef struct lf_distill lf_distill;

/* The teacher at path: a Hugging Face folder, a GGUF file (its linear weights kept quantized: the
 * teacher only runs forward) or a llama2.c checkpoint; frozen and forward-only. Its tokenizer
 * (path/tokenizer.json, or the GGUF's own) must have tok's fingerprint, else a one-line error;
 * a teacher without a tokenizer file is checked on the vocabulary size alone. */
lf_status lf_distill_open(lf_distill **out, const char *path, const lf_tokenizer *tok, const lf_distill_opts *o);
/* A teacher already in memory (taken over: lf_distill_free frees it); made frozen and forward-only. */
lf_status lf_distill_from_model(lf_distill **out, lf_model *teacher, const lf_distill_opts *o);
void lf_distill_free(lf_distill *d);
/* The teacher, for reading (its configuration, its weights): a forward run on it behind the terms'
 * back would leave them reading that run's logits as the batch's log-probabilities. */
lf_model *lf_distill_teacher(lf_distill *d);

/* Checks the student against the teacher (same vocabulary, layers of the pairs in range) and adds
 * a projection "distill.proj.K.weight" (C_teacher, C_student) to the student for each pair whose
 * widths differ (EXTRA: kept in the trainer's checkpoints, not in the student's folder). Call
 * once, before the trainer is made (a resume then restores the projections' values). */
lf_status lf_distill_attach(lf_distill *d, lf_model *student);
/* The terms (the trainer or caller owns them; they use d, which must outlive them). The logit
 * term reads every position's logits; the hidden term (NULL when there are no pairs) none. */
lf_loss_term *lf_distill_logit_term(lf_distill *d, float weight);
lf_loss_term *lf_distill_hidden_term(lf_distill *d, float weight);

/* On-policy batches (GKD's λ): a batch source over inner that, for a fraction lambda of its
 * batches (drawn from (seed, batch index)), keeps each row's first prompt_len tokens and replaces
 * the rest with a continuation sampled from the student (KV-cache decoding, temperature
 * sample_temperature, seeds from (seed, batch, row)); targets are then the sampled tokens, and -1 on
 * the prompt's positions and on the last position (its next token was not sampled). The teacher's
 * terms score those positions as on any batch. Cross-entropy, when its weight is not 0, also trains
 * on the student's own samples there: TRL's GKD uses the divergence alone (alpha = 1). The inner
 * source is taken over; the state is the inner's words plus the batch index (resume is exact). */
lf_status lf_distill_on_policy_source(lf_batch_source **out, lf_batch_source *inner, lf_model *student, float lambda,
                                      int prompt_len, float sample_temperature, uint64_t seed);

/* DistilBERT's initialisation: a student with the teacher's blocks 0, k, 2k, ... (n_layer/k
 * rounded up), embeddings, final norm and head copied (quantized tensors dequantized). */
lf_status lf_distill_student_every_k(lf_model **out, lf_model *teacher, int k);

/* ---- teacher cache: the teacher's top-k log-probabilities at temperature τ for every position of
 * a run's batches, written once, so that students distil from it without running the teacher.
 * File (little-endian): "LFDCACHE", u32 version (1), u32 k, u32 vocabulary, u32 T, u64 rows,
 * u64 tokenizer fingerprint, f32 τ, u32 0; then per row (one sequence of the batches): u64 hash of
 * its T input tokens, (T,k) i32 token ids and (T,k) f32 log-probabilities, largest first; then the
 * SHA-256 of everything before it. Rows are found by their tokens' hash, so any data order that
 * draws the cached rows works (a resumed run, another student, other α); a row that is not there
 * is an error naming the settings that decide the rows.
 * The tail: r = 1 − Σ p over the teacher's top k is kept as one more bin, and the student's
 * probabilities are grouped the same way (q_tail = its mass outside the teacher's top k). The
 * cached term is τ²·KL between those (k+1)-bin distributions: Σ_top p·log(p/q) + r·log(r/q_tail),
 * a lower bound on the full KL (grouping never increases a divergence), equal to it when the top k
 * hold all the mass; its gradient moves each tail token with its share of q_tail. A tail mass below
 * 1e-5 is the rounding noise of Σ p and counts as 0, and q_tail is taken as at least 1e-5. Forward
 * KL only. */
#include "lmforge/batch.h"
/* Runs the teacher on `batches` batches of src (B,T) and writes the cache atomically. */
lf_status lf_distill_cache_write(lf_distill *d, lf_batch_source *src, int B, int T, long batches, int k, uint64_t fingerprint,
                                 const char *path);
typedef struct lf_distill_cache lf_distill_cache;
/* Reads and checks a cache (magic, version, sizes, checksum) against what the run expects. */
lf_status lf_distill_cache_open(lf_distill_cache **out, const char *path, uint64_t fingerprint, int vocab, int T,
                                float temperature);
void lf_distill_cache_free(lf_distill_cache *c);
int lf_distill_cache_k(const lf_distill_cache *c);
/* The cached forward-KL term (reads every position's logits); c must outlive it. */
lf_loss_term *lf_distill_cache_term(lf_distill_cache *c, float weight);
/* One position's cached value τ²·D and (dz not NULL) its gradient, from student logits zs (V) and the
 * top-k ids / log-probabilities at τ: the reference for tests (double precision). */
double lf_distill_cache_row_ref(const float *zs, const int32_t *ids, const float *lp, int k, int V, float temperature,
                                double *dz);

/* Reference kernels (double precision, straight from the definitions), for tests: one row's
 * value τ²·D(student logits zs, teacher logits zt) and, when dz is not NULL, d(value)/d(zs). */
double lf_distill_row_ref(lf_distill_kind kind, const float *zs, const float *zt, int V, float temperature, float beta,
                          double *dz);
/* One position's hidden loss for y = W·hs (W NULL: y = hs) against ht; gradients (may be NULL)
 * d/dhs (Cs) and d/dW (Ct,Cs) written. */
double lf_distill_hidden_ref(lf_hidden_kind kind, const float *hs, const float *ht, const float *W, int Cs, int Ct,
                             double *dhs, double *dW);

#endif
