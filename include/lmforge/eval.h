/* lmforge eval: perplexity / mean loss / bits-per-byte of a model on token sequences with a
 * sliding window, and sampling (greedy, temperature, top-k, top-p) for generation. */
#ifndef LMFORGE_EVAL_H
#define LMFORGE_EVAL_H

#include "lmforge/batch.h"
#include "lmforge/model.h"

typedef struct {
    double loss_sum;  /* nats, summed over scored targets */
    size_t targets;   /* scored targets */
    size_t windows;
    double seconds;
} lf_eval_result;

/* Scores every target ids[j] (j >= 1) from its prefix, using windows of T tokens that advance by
 * stride (<= T): each window scores only the targets no earlier window scored, so with stride < T
 * every target but the first T sees at least T - stride tokens of context (Hugging Face's
 * perplexity recipe). is_target (may be NULL) excludes masked targets. B windows per forward. */
lf_status lf_eval_sequence(lf_model *m, const int32_t *ids, size_t n, const uint8_t *is_target, int T, int stride,
                           int B, lf_eval_result *r);

typedef struct {
    float temperature; /* <= 0: greedy */
    int top_k;         /* 0: off */
    float top_p;       /* >= 1: off */
    uint64_t seed;
} lf_sampler;

/* Mean cross-entropy of the model over `batches` batches (B,T) from src, dropout off. The one
 * validation-loss loop: the trainer, demo and every later technique use it. *mean is NAN when no
 * target was counted; count (may be NULL) gets the number of targets. */
lf_status lf_eval_loss(lf_model *m, lf_batch_source *src, int B, int T, int batches, double *mean, size_t *count);

/* Generation with the KV cache: decodes the prompt, then samples up to max_new tokens, stopping at
 * eos (>= 0) or the context length. on_token (may be NULL) sees each new id as it comes and can
 * stop the generation by returning nonzero. *made (may be NULL) gets the number generated. */
typedef int (*lf_token_fn)(void *ctx, int id);
lf_status lf_generate(lf_model *m, const int32_t *prompt, int n, int max_new, const lf_sampler *s, int eos,
                      lf_token_fn on_token, void *ctx, int *made);

/* Draws a token from logits (V). scratch: 2*V floats. The draw depends only on (seed, step). */
int lf_sample(const float *logits, int V, const lf_sampler *s, uint64_t step, float *scratch);

#endif
