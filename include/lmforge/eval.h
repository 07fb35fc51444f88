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

/* ---- KL divergence of a model against a base model (src/eval/kld.c): llama-perplexity's
 * --kl-divergence statistics, for a quantized model against the model it came from ---- */
typedef struct {
    int context;  /* T */
    int stride;   /* sliding windows as lf_eval_sequence's; unused with chunks */
    int chunks;   /* llama-perplexity's windows instead: T tokens, not overlapping, each scoring the
                     targets of its second half (src/eval/eval_internal.h) */
} lf_kld_opts;

/* one scored target: input position pos predicts ids[pos + 1] */
typedef struct {
    size_t pos;
    int32_t target, top_base, top; /* top: argmax of the logits (the first on ties) */
    double kld;                    /* KL(P_base || P_model) in nats */
    double nll_base, nll;          /* -log p(target) */
} lf_kld_token;

/* Mean ± standard error (of the mean; 0 for fewer than 2 values), percentiles by linear
 * interpolation between order statistics (NumPy's default), as llama-perplexity reports them. */
typedef struct {
    size_t count, windows, same_top;
    double kld_mean, kld_se, kld_min, kld_max, kld_median;
    double kld_p999, kld_p99, kld_p95, kld_p90, kld_p10, kld_p5, kld_p1, kld_p01;
    double same_top_frac, same_top_se;
    double ppl, ppl_se, ppl_base, ppl_base_se;     /* exp of the mean NLL; se by the delta method */
    double ln_ratio, ln_ratio_se;                  /* ln(PPL / PPL_base), se with the covariance */
    double ppl_ratio, ppl_ratio_se, ppl_diff, ppl_diff_se;
    double nll_cor;                                /* correlation of the two models' per-token NLL */
    double dp_mean, dp_se, dp_rms, dp_rms_se, dp_min, dp_max, dp_median; /* Δp = p(target) - p_base(target) */
    double dp_p99, dp_p95, dp_p90, dp_p10, dp_p5, dp_p1;
    double seconds;
    lf_kld_token *tokens; // (count) in scoring order
} lf_kld_result;

/* Runs base and m forward over the same windows of ids (one window at a time: never more than
 * one window's logits of each model) and compares, at every scored target (is_target may be
 * NULL), the two next-token distributions in double from log-softmax. The vocabularies must
 * have the same size (the caller checks that the tokenizers agree). */
lf_status lf_kld_sequence(lf_model *m, lf_model *base, const int32_t *ids, size_t n, const uint8_t *is_target,
                          const lf_kld_opts *o, lf_kld_result *r);
/* The statistics of r->tokens (r->count of them), recomputed (lf_kld_sequence calls it). */
void lf_kld_stats(lf_kld_result *r);
void lf_kld_result_free(lf_kld_result *r);

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

/* ---- classification (src/eval/metrics.c, src/eval/classify.c) ---- */
#include "lmforge/tokenizer.h"

/* Metrics of single-label predictions over K classes. Zero divisions give 0 (scikit-learn's
 * zero_division=0); macro averages run over the classes present in gold or pred (sklearn's
 * default without labels=); micro F1 equals accuracy for single-label data. */
typedef struct {
    int K;
    size_t n;
    double accuracy, micro_f1, macro_f1, macro_precision, macro_recall;
    double *precision, *recall, *f1; // (K)
    size_t *support, *predicted;     // (K) gold / predicted counts
    size_t *confusion;               // (K,K) rows gold, columns predicted
    double acc_ci[2], macro_f1_ci[2]; /* 95 % percentile bootstrap; NAN until lf_cls_bootstrap */
    int resamples;
} lf_cls_metrics;
lf_status lf_cls_metrics_compute(lf_cls_metrics *r, const int *gold, const int *pred, size_t n, int K);
/* Percentile bootstrap (resamples of n drawn with replacement; draw i of resample b depends only
 * on seed, b, i) of accuracy and macro-F1 into r->acc_ci / r->macro_f1_ci. */
lf_status lf_cls_bootstrap(lf_cls_metrics *r, const int *gold, const int *pred, int resamples, uint64_t seed);
void lf_cls_metrics_free(lf_cls_metrics *r);

/* Label scoring: for each text, the log-likelihood of each label's continuation after a prompt.
 * prompt: a template with {text} (default "{text}\nlabel:"); answer: a template with {label}
 * (default " {label}"): the verbalizer lmforge prepare trains on. The prompt is encoded as a
 * document start (BOS for SentencePiece tokenizers, as prepare does), the answer as a
 * continuation (LF_ENC_CONTINUE). Texts whose prompt + answer exceed max_tokens (0: the model's
 * context) lose the start of the prompt, so the end of the prompt is kept. */
typedef struct {
    const char *prompt, *answer; /* NULL: the defaults */
    int max_tokens;              /* 0: the model's context length */
    int batch;                   /* unused: label scoring runs one row per forward (classify.c says why) */
    void (*progress)(void *ctx, size_t done, size_t total); /* may be NULL */
    void *progress_ctx;
} lf_cls_score_opts;

typedef struct {
    size_t n;
    int K;
    double *ll;      // (n,K) summed log-likelihood of each label's continuation (nats)
    int *ntok;       // (K) continuation tokens of each label
    size_t *nchars;  // (K) characters (UTF-8 code points) of each label name: lm-eval's acc_norm
    int *pred;       // (n) argmax of the sum
    int *pred_tok;   // (n) argmax of the sum per token
    int *pred_norm;  // (n) argmax of the sum per character of the label (lm-eval acc_norm)
    size_t truncated; /* examples whose prompt lost its start */
    double seconds;
} lf_cls_scores;

lf_status lf_cls_score(lf_model *m, const lf_tokenizer *tok, const char *const *texts, size_t n,
                       const char *const *labels, int K, const lf_cls_score_opts *o, lf_cls_scores *out);
void lf_cls_scores_free(lf_cls_scores *s);

/* Labelled examples of a folder lmforge prepare made from {"text","label"} records: split
 * ("train" or "val") decoded back to text ("<text>\nlabel:" prompt, " <label>" answer) with
 * tokenizer (a tokenizer.json; NULL: the folder's own), labels in meta.json's order. At most
 * limit examples (0: all): a fixed pseudo-random subset (the same in every run), in file order;
 * documents must number under 2^24 for a subset. */
typedef struct {
    char **text;  // (n)
    int *label;   // (n)
    size_t n;
    char **names; // (K)
    int K;
} lf_cls_dataset;
lf_status lf_cls_dataset_load_prepared(lf_cls_dataset *d, const char *dir, const char *split, const char *tokenizer,
                                       size_t limit);
void lf_cls_dataset_free(lf_cls_dataset *d);

#endif
