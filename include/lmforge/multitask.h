/* lmforge multi-task learning (src/tech/multitask*.c): one model trained on several tasks at once.
 * T5's mixtures (examples-proportional with a cap, temperature-scaled rates, fixed rates) as a
 * batch source that tags every row with its task; task prefixes; per-task loss weighting (static
 * weights, Kendall et al.'s uncertainty weighting with learned log-variances, Yu et al.'s PCGrad
 * gradient surgery through the trainer's grad-surgery seam); per-task validation (loss and
 * perplexity, or accuracy and macro-F1 by label scoring) and an early-stopping criterion.
 *
 * Config (lmforge train): `tasks` is a JSON array of objects
 *   {"name": "fortunes", "data": DIR, "kind": "lm" | "completion" | "classify",
 *    "prefix": "classify: ", "weight": 1, "rate": 1, "metric": "loss" | "ppl" | "accuracy" | "macro_f1"}
 * (DIR a folder from lmforge prepare; when DIR's meta.json lists tasks — the JSONL `task` field —
 * and one is called NAME, only its documents are used), or "auto": one completion task per task
 * of `data`'s meta.json. Keys mix, mix_cap, mix_temperature, task_weighting, early_stop_metric. */
#ifndef LMFORGE_MULTITASK_H
#define LMFORGE_MULTITASK_H

#include "lmforge/data.h"
#include "lmforge/loss.h"
#include "lmforge/report.h"
#include "lmforge/train.h"

#define LF_MTL_MAX_TASKS 16

typedef enum { LF_MTL_LM = 0, LF_MTL_COMPLETION, LF_MTL_CLASSIFY } lf_mtl_kind;
typedef enum { LF_MTL_MIX_PROPORTIONAL = 0, LF_MTL_MIX_FIXED } lf_mtl_mix;
typedef enum { LF_MTL_STATIC = 0, LF_MTL_UNCERTAINTY, LF_MTL_PCGRAD } lf_mtl_weighting;

typedef struct {
    char name[64], data[LF_PATH], prefix[256], metric[16];
    lf_mtl_kind kind;
    float weight; /* loss weight (static and PCGrad; a factor on the learned weight for uncertainty) */
    float rate;   /* mixing rate for mix = fixed */
} lf_mtl_task_spec;

/* Parses the `tasks` JSON text (an array of task objects) into specs (at most LF_MTL_MAX_TASKS).
 * Every error names the task and the field. */
lf_status lf_mtl_parse_tasks(const char *json_text, lf_mtl_task_spec *specs, int *n);

/* Mixing rates p (n, summing to 1). proportional: p_t ∝ min(n_t, cap)^(1/temperature) (cap 0:
 * none; temperature 1: examples-proportional, large: uniform) as T5's mixtures; fixed: p_t ∝ rate_t. */
lf_status lf_mtl_rates(const size_t *n_examples, const float *rate, int n, lf_mtl_mix mix, size_t cap, float temperature,
                       double *p);

/* One task's rows from a shard. lm: windows of T - |prefix| tokens over the whole shard, an
 * example per window; completion / classify: one document per row (from its start, its end kept
 * when it is longer than the row), targets where the shard's mask says so. */
typedef struct {
    const lf_shard *shard;
    lf_mtl_kind kind;
    int select;            /* only documents with this task id (-1: all) */
    const int32_t *prefix; /* (n_prefix) prepended to every row, no loss on it; may be NULL */
    int n_prefix;
} lf_mtl_source_task;

/* The mixture as a batch source: row r of batch k belongs to task t drawn from p with
 * hash(seed, k, r), and holds example hash(seed, k, r) mod n_t of it (sampling with replacement),
 * so the state is one word (k) and a resumed run draws exactly the batches of an uninterrupted
 * one. batch.task = t, batch.row_weight = 1. p may be NULL with n = 1. */
lf_status lf_mtl_source_new(lf_batch_source **out, const lf_mtl_source_task *tasks, int n, const double *p, int T,
                            uint64_t seed);
size_t lf_mtl_source_examples(const lf_batch_source *s, int task);
/* New rates (n, any positive scale) for a source made with p NULL. */
lf_status lf_mtl_source_set_rates(lf_batch_source *s, const double *p);
/* The same rows of one task in order (example 0, 1, ...; wraps): validation batches. */
lf_status lf_mtl_task_source_new(lf_batch_source **out, const lf_mtl_source_task *task, int T);

/* The multi-task loss: per-task mean cross-entropy L_t over the rows of task t (batch.task), so a
 * task with few targets per row (a label) is not drowned by one with many (language modelling).
 *   static:      Σ_t w_t·L_t
 *   uncertainty: Σ_t w_t·(exp(-s_t)·L_t + s_t)/2, s = log_vars (LibMTL's UW form; s_t starts at
 *                -0.5 as there), trained by the optimizer with the model (its gradient is added
 *                in backward_hidden). log_vars from lf_mtl_add_log_vars; NULL: static. */
lf_loss_term *lf_mtl_loss_new(int n_tasks, const float *weights, lf_param *log_vars);
/* task losses L_t (n_tasks; NAN for a task absent from the last batch) of the last forward */
void lf_mtl_loss_last(const lf_loss_term *t, double *task_loss);
lf_status lf_mtl_add_log_vars(lf_model *m, int n_tasks, lf_param **out);

/* PCGrad (Yu et al. 2020, as LibMTL): for each task i a copy g_i' of its gradient is projected,
 * for each other task j in a random order (drawn from seed, step, i), onto the normal plane of
 * the original g_j whenever g_i'·g_j < 0; out = Σ_i g_i'. grads: n_tasks vectors of n floats
 * (a task absent from the step has a zero vector and changes nothing). Dot products in double. */
void lf_pcgrad_combine(float *const *grads, int n_tasks, size_t n, float *out, uint64_t seed, uint64_t step);
/* The order in which task i's gradient meets the others (n - 1 task ids) at a step. */
void lf_pcgrad_order(uint64_t seed, uint64_t step, int i, int n, int *order);
/* PCGrad as the trainer's grad surgery (one group per task). */
lf_grad_surgery *lf_pcgrad_surgery(int n_tasks, uint64_t seed);

/* ---- the technique inside lmforge train (src/train/train.c calls these when `tasks` is set) */
typedef struct lf_mtl lf_mtl;
/* Opens every task's shards (train.bin, val.bin) and label lists, tokenizes prefixes, computes
 * the rates and builds the mixture source. tok: the run's tokenizer (prefixes; fingerprint). */
lf_status lf_mtl_open(lf_mtl **out, const lf_train_config *c, const lf_tokenizer *tok);
void lf_mtl_free(lf_mtl *mt);
int lf_mtl_num_tasks(const lf_mtl *mt);
const lf_mtl_task_spec *lf_mtl_task(const lf_mtl *mt, int t);
double lf_mtl_rate(const lf_mtl *mt, int t);
size_t lf_mtl_train_tokens(const lf_mtl *mt);
/* The mixture source (owned by mt). */
lf_batch_source *lf_mtl_source(lf_mtl *mt);
/* Before lf_trainer_init: the learned log-variances (uncertainty weighting). */
lf_status lf_mtl_attach_model(lf_mtl *mt, lf_model *m);
/* The loss term and, for PCGrad, the grad surgery. */
lf_status lf_mtl_attach_trainer(lf_mtl *mt, lf_trainer *tr);
/* Per-task metrics of the last lf_mtl_evaluate. */
typedef struct {
    double loss, ppl;             /* mean validation loss (classify: NLL of the gold label) */
    double accuracy, macro_f1;    /* classify; NAN otherwise */
    size_t examples;
} lf_mtl_metrics;
/* Validates every task (eval_batches batches of batch_size rows, eval_examples for classify),
 * reports each task's metrics (event "task_eval", TensorBoard val/TASK/METRIC, a line) and
 * returns in *criterion what early stopping follows, lower is better: early_stop_metric
 * "task:NAME[:METRIC]" (a task's loss/ppl, or minus its accuracy/macro_f1) or "mean" (default:
 * the weight-weighted mean of the task losses). */
lf_status lf_mtl_evaluate(lf_mtl *mt, lf_model *m, lf_reporter *rep, int step, double *criterion);
const lf_mtl_metrics *lf_mtl_last_metrics(const lf_mtl *mt, int t);
/* The weight-weighted mean of the task losses of the last lf_mtl_evaluate (NAN before one): the
 * run's validation loss, whatever its criterion. */
double lf_mtl_mean_loss(const lf_mtl *mt);
/* The last training batch's per-task losses into the reporter (train/TASK/loss) and, with
 * uncertainty weighting, the learned weights exp(-s_t)/2. */
void lf_mtl_report_train(lf_mtl *mt, lf_reporter *rep, int step, json_t *event);

/* lmforge eval on a shard with task ids: mean loss per task over whole documents (targets where
 * the mask says), one row per task id. sum (n_tasks), count (n_tasks). */
lf_status lf_mtl_eval_shard(lf_model *m, const lf_shard *s, int T, int B, int max_docs, int n_tasks, double *sum,
                            size_t *count);

#endif
