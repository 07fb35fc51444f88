/* lmforge train: a configured training run (from scratch or from a checkpoint), with evaluation,
 * early stopping, atomic checkpoints that resume bit for bit, a NaN guard, graceful interruption,
 * and metrics (terminal, metrics.jsonl, TensorBoard).
 *
 * Configuration: one JSON file (jansson), every key overridable as --key=value. The key table in
 * config.c is the single definition of names, types, defaults and help. */
#ifndef LMFORGE_TRAIN_H
#define LMFORGE_TRAIN_H

#include "lmforge/batch.h"
#include "lmforge/loss.h"
#include "lmforge/model.h"
#include "lmforge/optim.h"

#include <signal.h>
#include <stdio.h>

#define LF_PATH 512

typedef struct lf_train_config_s {
    /* where */
    char run_dir[LF_PATH], data[LF_PATH], tokenizer[LF_PATH], init[LF_PATH], tensorboard[LF_PATH];
    /* model (from scratch) */
    char arch[16];
    int d_model, n_layer, n_head, n_kv_head, d_ff, context, tie_embeddings;
    float rope_theta, norm_eps;
    /* regularisation */
    float dropout, dropout_embd, dropout_attn, dropout_resid; /* < 0: keep the model's own */
    float weight_decay, label_smoothing, grad_clip;
    int freeze_embeddings, freeze_layers;
    /* optimisation */
    int batch_size, grad_accum, max_steps;
    float max_minutes;
    float lr, min_lr;
    char schedule[16];
    int warmup_steps;
    float beta1, beta2, adam_eps;
    /* evaluation, early stopping, checkpoints */
    int eval_every, eval_batches, patience;
    float min_delta;
    int checkpoint_every, keep_checkpoints;
    int seed, threads, max_bad_steps, log_every, stop_after_steps;
    /* output */
    int quiet, json;
    /* LoRA (src/tech/lora.c): on when lora_r > 0 or adapter is set; checkpoints then hold the
     * adapter folder (PEFT layout) instead of the model, and init names the base */
    int lora_r, lora_rslora, lora_dora;
    float lora_alpha, lora_dropout;
    char lora_targets[256], adapter[LF_PATH];
    /* classification (task = classify: src/tech/cls_train.c) */
    char task[16], head[16], metric[16], truncation_side[8];
    int head_only, eval_examples;
    int test_examples; /* classify: test-split examples scored at each new best (0 = none, -1 = all) */
    /* distillation (src/tech/distill.c): on when teacher is set; the objective is then
     * (1 - alpha)·cross-entropy + alpha·(logit term) + hidden_weight·(hidden-state term) */
    char teacher[LF_PATH], loss[8], hidden_layers[128], hidden_loss[8], student_init[32];
    float temperature, alpha, beta, hidden_weight;
    char teacher_cache[LF_PATH]; /* distill from a cache of the teacher's top-k log-probabilities instead */
    int cache_k;                 /* lmforge distill --write-cache: log-probabilities kept per position */
    float on_policy, sample_temperature; /* GKD: fraction of batches continued by the student, its sampling temperature */
    int on_policy_prompt;                /* tokens kept from the data before the student continues (0 = context/2) */
    /* pruning (src/tech/prune.c): keep_sparsity masks the linear weights that are zero in init, so a
     * pruned model fine-tunes without regrowing them; prune_schedule (magnitude or wanda) prunes
     * gradually, cubic from prune_initial to prune_final between two steps, every prune_every */
    int keep_sparsity;
    char prune_schedule[16];
    float prune_initial, prune_final;
    int prune_start, prune_end, prune_every;
    /* online augmentation (src/tech/augment_source.c): noised input windows, clean targets */
    float aug_mask, aug_span;
    int aug_shuffle, aug_mask_id;
    /* multi-task learning (src/tech/multitask*.c, include/lmforge/multitask.h): on when tasks is set */
    char tasks[4096], mix[16], task_weighting[16], early_stop_metric[96];
    int mix_cap;
    float mix_temperature;
} lf_train_config;

void lf_train_config_defaults(lf_train_config *c);
/* Apply a JSON object file, then "--key=value" / "--key value" arguments (argv[0..argc)); an
 * unknown key is an error with a "did you mean" hint. Unconsumed non-option arguments are errors. */
lf_status lf_train_config_load_file(lf_train_config *c, const char *path);
lf_status lf_train_config_set(lf_train_config *c, const char *key, const char *value);
/* the names of all keys into names[0..cap); returns how many there are */
size_t lf_train_config_key_names(const char **names, size_t cap);
lf_status lf_train_config_args(lf_train_config *c, int argc, char **argv, const char **config_file, const char **resume);
char *lf_train_config_json(const lf_train_config *c); /* malloc'd, pretty JSON */
lf_status lf_train_config_from_json_text(lf_train_config *c, const char *json, const char *what);
lf_status lf_train_config_check(const lf_train_config *c);
void lf_train_config_help(FILE *f);

/* ---- the trainer: a model, its optimizer, a sum of loss terms, a batch source and hooks.
 * lf_train (below) is one driver of it; techniques drive it themselves or plug into lf_train. */
typedef struct lf_trainer lf_trainer;

typedef struct {
    lf_ctx ctx;            /* threads; seed: dropout masks derive from (seed, step, micro-batch) */
    int B, T, grad_accum;
    lf_adamw_config adamw;
    lf_schedule schedule;
} lf_trainer_opts;

typedef struct {
    int step;              /* optimizer steps done, this one included */
    float loss;            /* total loss (Σ weight·term), mean over the micro-batches */
    float lr, grad_norm;
    int finite;            /* 0: non-finite loss or gradient, the update was skipped */
    double seconds;        /* this step's wall time */
    size_t tokens;         /* tokens in this step */
} lf_step_info;

typedef enum { LF_HOOK_CONTINUE = 0, LF_HOOK_STOP = 1 } lf_hook_action;

typedef struct lf_hook lf_hook;
struct lf_hook {
    const char *name;
    void *ctx;
    /* after each optimizer step (also skipped ones); may be NULL */
    lf_hook_action (*after_step)(lf_hook *h, lf_trainer *t, const lf_step_info *s);
    /* after each evaluation with its validation loss; may be NULL */
    lf_hook_action (*after_eval)(lf_hook *h, lf_trainer *t, int step, double val_loss);
    void (*free)(lf_hook *h); /* frees ctx and h; may be NULL */
};

/* Gradient surgery (multi-task: PCGrad and kin): when set, each micro-batch is split by task id
 * (batch.task) into n_groups sub-batches, each gets its own forward and backward through the loss
 * terms, and combine turns the groups' gradients, accumulated over the step's micro-batches, into
 * the one the optimizer applies. grads: n_groups vectors of n floats, the trainable tensors'
 * gradients in table order (a group absent from the step is zero); out: n floats. Costs n_groups
 * gradient copies (+1 for out) and one forward/backward per group present in a micro-batch. */
typedef struct lf_grad_surgery lf_grad_surgery;
struct lf_grad_surgery {
    const char *name;
    void *ctx;
    int n_groups;
    void (*combine)(lf_grad_surgery *s, float *const *grads, int n_groups, size_t n, float *out, int step);
    void (*free)(lf_grad_surgery *s); /* frees ctx and s; may be NULL */
};

/* The source stays the caller's. The trainer starts with no loss term: add cross-entropy (or
 * others); it owns the terms and hooks it is given. */
lf_status lf_trainer_init(lf_trainer **out, lf_model *m, lf_batch_source *train, const lf_trainer_opts *o);
void lf_trainer_free(lf_trainer *t);
lf_status lf_trainer_add_loss(lf_trainer *t, lf_loss_term *term);
lf_status lf_trainer_add_hook(lf_trainer *t, lf_hook *h);
/* The trainer owns it (one at most). */
lf_status lf_trainer_set_grad_surgery(lf_trainer *t, lf_grad_surgery *s);
/* One optimizer step over grad_accum micro-batches; then the after_step hooks. *stop (may be
 * NULL) is set when a hook asked to stop. */
lf_status lf_trainer_step(lf_trainer *t, lf_step_info *info, int *stop);
/* Mean cross-entropy on `batches` batches of val (dropout off), then the after_eval hooks. */
lf_status lf_trainer_evaluate(lf_trainer *t, lf_batch_source *val, int B, int batches, double *val_loss, int *stop);
/* The after_eval hooks with a validation value the caller computed (lower is better), for drivers
 * whose criterion is not lf_trainer_evaluate's cross-entropy (per-task metrics, say). */
lf_status lf_trainer_eval_hooks(lf_trainer *t, double value, int *stop);
/* Trainer state into a checkpoint folder: trainer_state.safetensors (optimizer moments and the
 * values of tensors added after init, such as adapters) and trainer_state.json (step, optimizer
 * counts, the source's position, and the members of extra_json, a JSON object text or NULL). The
 * model's own files are the caller's (lf_hf_save). */
lf_status lf_trainer_save_state(lf_trainer *t, const char *dir, const char *extra_json);
/* Restores what save_state wrote; *extra_json (may be NULL) gets the whole trainer_state.json
 * text (malloc'd) for the caller's own members. Every value is checked before it is used. */
lf_status lf_trainer_load_state(lf_trainer *t, const char *dir, char **extra_json);
int lf_trainer_step_count(const lf_trainer *t);
lf_model *lf_trainer_model(lf_trainer *t);
lf_optim *lf_trainer_optim(lf_trainer *t);
size_t lf_trainer_tokens_seen(const lf_trainer *t);

/* Early stopping as a hook: tracks the best validation loss; stops after `patience` evaluations
 * without an improvement of at least min_delta (patience 0: tracks only). */
lf_hook *lf_hook_early_stopping(int patience, float min_delta);
typedef struct {
    double best;           /* INFINITY until the first evaluation */
    int best_step, evals_since_best, improved; /* improved: the last evaluation set a new best */
} lf_early_stopping;
lf_early_stopping *lf_hook_early_stopping_state(lf_hook *h);

typedef enum {
    LF_STOP_DONE = 0,     /* max_steps reached */
    LF_STOP_EARLY,        /* patience exhausted */
    LF_STOP_TIME,         /* max_minutes or stop_after_steps */
    LF_STOP_SIGNAL,       /* SIGINT/SIGTERM: checkpoint written */
    LF_STOP_NAN,          /* max_bad_steps non-finite steps in a row */
} lf_stop_reason;

typedef struct {
    int steps, start_step;
    size_t params;
    double seconds, tokens_per_s;
    float first_loss, last_loss;
    float val_loss_start, val_loss_end, best_val_loss; /* NAN when no validation data */
    int best_step, skipped_steps;
    lf_stop_reason reason;
    char last_checkpoint[LF_PATH + 64], best_dir[LF_PATH + 16];
} lf_train_result;

/* Runs the training described by c. resume: a run folder (its latest checkpoint) or a
 * checkpoint folder, or NULL. stop: set asynchronously (signal handler) to request a checkpoint
 * and a clean stop after the current step; may be NULL. */
lf_status lf_train(const lf_train_config *c, const char *resume, volatile sig_atomic_t *stop, lf_train_result *res);
/* lf_train with extra hooks (after early stopping), e.g. a tuner's pruner on after_eval: the
 * trainer takes them over (their free runs when it ends; free NULL leaves them the caller's).
 * A run a hook stops ends as LF_STOP_EARLY with its final evaluation and checkpoint. */
lf_status lf_train_with_hooks(const lf_train_config *c, const char *resume, volatile sig_atomic_t *stop, lf_hook **hooks,
                              int n_hooks, lf_train_result *res);

#endif
