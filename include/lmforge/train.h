/* lmforge train: a configured training run (from scratch or from a checkpoint), with evaluation,
 * early stopping, atomic checkpoints that resume bit for bit, a NaN guard, graceful interruption,
 * and metrics (terminal, metrics.jsonl, TensorBoard).
 *
 * Configuration: one JSON file (jansson), every key overridable as --key=value. The key table in
 * config.c is the single definition of names, types, defaults and help. */
#ifndef LMFORGE_TRAIN_H
#define LMFORGE_TRAIN_H

#include "lmforge/model.h"

#include <signal.h>
#include <stdio.h>

#define LF_PATH 512

typedef struct {
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
} lf_train_config;

void lf_train_config_defaults(lf_train_config *c);
/* Apply a JSON object file, then "--key=value" / "--key value" arguments (argv[0..argc)); an
 * unknown key is an error with a "did you mean" hint. Unconsumed non-option arguments are errors. */
lf_status lf_train_config_load_file(lf_train_config *c, const char *path);
lf_status lf_train_config_set(lf_train_config *c, const char *key, const char *value);
lf_status lf_train_config_args(lf_train_config *c, int argc, char **argv, const char **config_file, const char **resume);
char *lf_train_config_json(const lf_train_config *c); /* malloc'd, pretty JSON */
lf_status lf_train_config_from_json_text(lf_train_config *c, const char *json, const char *what);
lf_status lf_train_config_check(const lf_train_config *c);
void lf_train_config_help(FILE *f);

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

#endif
