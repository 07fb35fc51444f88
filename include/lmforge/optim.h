/* lmforge optimizer: AdamW with decoupled weight decay over the model's parameter table (only
 * trainable tensors; the decay group comes from each tensor's flags), learning-rate schedules,
 * global-norm gradient clipping. Gradient accumulation is the caller summing several backward
 * passes (each with loss_scale = 1/steps) before one lf_optim_step.
 *
 * Moments are kept per tensor and follow the table: a tensor added or unfrozen after init gets
 * zero moments at its first step; a frozen one keeps its moments (unfreezing resumes them, as
 * PyTorch's optimizer state does); a removed one's moments are dropped. */
#ifndef LMFORGE_OPTIM_H
#define LMFORGE_OPTIM_H

#include "lmforge/model.h"

typedef enum { LF_SCHED_CONSTANT = 0, LF_SCHED_LINEAR, LF_SCHED_COSINE } lf_sched_kind;

typedef struct {
    lf_sched_kind kind;
    float lr;          /* peak learning rate */
    float min_lr;      /* floor reached at total_steps (linear, cosine) */
    int warmup_steps;  /* linear ramp from lr/warmup to lr */
    int total_steps;
} lf_schedule;

/* learning rate for 0-based step */
float lf_schedule_lr(const lf_schedule *s, int step);
lf_status lf_schedule_parse(const char *name, lf_sched_kind *kind);

typedef struct {
    float beta1, beta2, eps;
    float weight_decay;
    float grad_clip;       /* max global L2 norm; <= 0 disables */
    int decay_embeddings;  /* also decay embedding tables (off by default) */
    int decay_norms_biases;/* also decay norm weights and biases (off by default) */
} lf_adamw_config;

void lf_adamw_defaults(lf_adamw_config *c); /* 0.9, 0.999, 1e-8, wd 0.01, clip 1.0 */

typedef struct lf_optim lf_optim;
lf_status lf_optim_init(lf_optim **out, lf_model *m, const lf_adamw_config *cfg);
void lf_optim_free(lf_optim *o);

/* Global L2 norm of the trainable gradients (deterministic). */
float lf_optim_grad_norm(lf_optim *o);
/* Clip (if configured), then one AdamW update at learning rate lr. Returns the pre-clip norm in
 * *norm. If the norm is not finite the update is skipped and LF_ERR_ARG is returned. */
lf_status lf_optim_step(lf_optim *o, float lr, float *norm);
int lf_optim_t(const lf_optim *o); /* updates applied so far */
void lf_optim_set_t(lf_optim *o, int t); /* when restoring a checkpoint (per-tensor counts: below) */
/* Updates one tensor has had (its bias correction); a tensor trained from a later step has fewer. */
int lf_optim_param_t(lf_optim *o, const lf_param *p);
lf_status lf_optim_set_param_t(lf_optim *o, const lf_param *p, int t);

/* Moments of a tensor for checkpointing (which: 0 = m, 1 = v); NULL when it has none yet, unless
 * create is set (then zero moments are made for it). */
float *lf_optim_moment(lf_optim *o, const lf_param *p, int which, int create);

#endif
