/* lmforge tune: hyperparameter search over training-config keys. A search space (JSON), samplers
 * (TPE after Optuna's defaults, random, grid), pruners (median, successive halving / ASHA) fed by
 * intermediate values, and a study stored in SQLite (WAL, busy timeouts) so that worker processes
 * and separate `lmforge tune` invocations share one study, and a killed study resumes.
 *
 * The library holds the study and the algorithms; what a trial runs (a training run, a built-in
 * test function) is the caller's: ask for a trial, report intermediate values, tell the result. */
#ifndef LMFORGE_TUNE_H
#define LMFORGE_TUNE_H

#include "lmforge/core.h"

#define LF_TUNE_MAX_PARAMS 32

/* ---- search space */
typedef enum { LF_HP_FLOAT = 0, LF_HP_INT, LF_HP_CAT } lf_hparam_kind;

typedef struct {
    char name[64];
    lf_hparam_kind kind;
    double low, high, step; /* float: step 0 = continuous; int: step >= 1 */
    int log;                /* sampled uniformly in log space (float, int) */
    int n_choices;          /* categorical */
    char **choices;         /* categorical: the choices as JSON texts ("\"cosine\"", "8", "true") */
    int grid;               /* grid sampler: points for a float (0: 5) */
    /* conditional: active only when param `cond_param` (an earlier one) takes one of cond_values
     * (indices for a categorical, values otherwise) */
    int cond_param, n_cond;
    double *cond_values;
} lf_hparam;

typedef struct lf_space lf_space;
/* {"name": {"type": "float"|"int"|"categorical", "low", "high", "log", "step", "choices",
 *  "grid", "when": {"other": value or [values]}}, ...}; what: the file name for messages */
lf_status lf_space_parse(lf_space **out, const char *json_text, const char *what);
lf_status lf_space_load(lf_space **out, const char *path);
void lf_space_free(lf_space *s);
int lf_space_size(const lf_space *s);
const lf_hparam *lf_space_param(const lf_space *s, int i);
char *lf_space_json(const lf_space *s); /* malloc'd, the normalised space (what a study stores) */

/* A point of the space in user units: float and int values as numbers, a categorical as its
 * index; NAN for an inactive conditional parameter. */
/* "key": value JSON object text of the active parameters (malloc'd) */
char *lf_space_point_json(const lf_space *s, const double *x);
/* --key=value strings for lf_train_config_set: out[i] malloc'd; returns how many */
int lf_space_point_args(const lf_space *s, const double *x, char **out, int cap);

/* ---- samplers and pruners */
typedef struct {
    char sampler[16];       /* "tpe" (default), "random", "grid" */
    char pruner[16];        /* "none" (default), "median", "asha" */
    int maximize;           /* 0: minimise the objective */
    uint64_t seed;
    /* TPE (Optuna's defaults) */
    int n_startup_trials;   /* 10: random sampling until this many trials finished */
    int n_ei_candidates;    /* 24 */
    int multivariate;       /* 0: one Parzen estimator per parameter; 1: joint kernels */
    double prior_weight;    /* 1.0 */
    /* median pruner */
    int median_startup_trials; /* 5 completed trials before any pruning */
    int warmup_steps;          /* no pruning before this step */
    int interval_steps;        /* 1 */
    /* successive halving / ASHA */
    int min_resource;          /* 1 (in steps of the reports) */
    int reduction_factor;      /* 4 */
    int min_early_stopping_rate; /* 0 */
} lf_tune_opts;
void lf_tune_opts_defaults(lf_tune_opts *o);

typedef enum { LF_TRIAL_RUNNING = 0, LF_TRIAL_COMPLETE, LF_TRIAL_PRUNED, LF_TRIAL_FAILED } lf_trial_state;
const char *lf_trial_state_name(lf_trial_state s);

/* A finished or running trial, as the samplers and pruners see it. */
typedef struct {
    int number;
    lf_trial_state state;
    double value;           /* the objective (COMPLETE), the last intermediate value (PRUNED), NAN otherwise */
    double x[LF_TUNE_MAX_PARAMS];
    int last_step;          /* the last reported step, -1 when none */
    int n_inter;            /* intermediate values (step, value), step ascending */
    int *inter_step;
    double *inter_value;
    double started, finished, heartbeat; /* Unix seconds */
    int pid;
    char host[64], run_dir[512], message[256];
} lf_trial;

/* TPE / random / grid: the next point given the history (number: the new trial's number, which
 * seeds its randomness). Deterministic for (opts->seed, number, history). *exhausted: the grid
 * sampler has no point left (may be NULL for the others). */
lf_status lf_tune_sample(const lf_space *s, const lf_tune_opts *o, const lf_trial *hist, int n_hist, int number, double *x,
                         int *exhausted);
/* The pruner's decision for trial `self` that has just reported (step, value): 1 = prune.
 * rung_values (ASHA): the values other trials recorded at each rung, read and updated through
 * the callbacks; hist: every trial of the study (self included). */
typedef struct {
    void *ctx;
    /* values other trials than `self` recorded at rung r; returns the count (<= cap) */
    int (*get_rung)(void *ctx, int rung, int self, double *vals, int cap);
    int (*n_rungs)(void *ctx, int number); /* rungs trial `number` has passed */
    lf_status (*set_rung)(void *ctx, int number, int rung, double value);
} lf_rung_store;
lf_status lf_tune_should_prune(const lf_tune_opts *o, const lf_trial *hist, int n_hist, const lf_trial *self, int step, double value,
                               const lf_rung_store *rungs, int *prune);

/* ---- the study: DIR/study.db (SQLite) */
typedef struct lf_study lf_study;
/* Creates the study (space_json and the options are stored) or opens an existing one (then its
 * stored space, options and extra must agree with those given, or any may be NULL to take the
 * stored ones). extra_json: the caller's fixed part (base training config), stored as is. */
lf_status lf_study_open(lf_study **out, const char *dir, const char *space_json, const lf_tune_opts *o, const char *extra_json);
void lf_study_free(lf_study *st);
const lf_space *lf_study_space(const lf_study *st);
const lf_tune_opts *lf_study_opts(const lf_study *st);
const char *lf_study_extra(const lf_study *st); /* the stored extra JSON, or "" */
const char *lf_study_dir(const lf_study *st);

/* Marks RUNNING trials whose worker is gone (same host: its pid is dead; another host: no
 * heartbeat for stale_s seconds) as FAILED; *n_marked (may be NULL) gets how many. */
lf_status lf_study_reap(lf_study *st, double stale_s, int *n_marked);
/* Claims the next trial in one write transaction: reaps dead workers, and when fewer than
 * n_trials are COMPLETE, PRUNED or RUNNING, numbers a new trial, samples its point and records
 * it as RUNNING with this process's pid and host. *got 0: nothing left to do. */
lf_status lf_study_ask(lf_study *st, int n_trials, lf_trial *t, int *got);
/* Records an intermediate value and returns the pruner's decision (0 with pruner "none"). */
lf_status lf_study_report(lf_study *st, lf_trial *t, int step, double value, int *prune);
lf_status lf_study_heartbeat(lf_study *st, const lf_trial *t);
lf_status lf_study_set_run_dir(lf_study *st, const lf_trial *t, const char *run_dir);
/* Finishes a trial: state COMPLETE (value = objective), PRUNED (value = last report) or FAILED
 * (message says why). */
lf_status lf_study_tell(lf_study *st, const lf_trial *t, lf_trial_state state, double value, const char *message);
/* Every trial by number (malloc'd; free with lf_trials_free). */
lf_status lf_study_trials(lf_study *st, lf_trial **out, int *n);
void lf_trials_free(lf_trial *t, int n);

/* Parameter importance: for each parameter, the share of the variance of the objective's ranks
 * over COMPLETE trials explained by that parameter alone (correlation ratio: variance of the mean
 * rank within quantile bins of the parameter / total variance), normalised to sum 1. A
 * first-order main effect as fANOVA's single-parameter importances, estimated by binning
 * instead of a random forest. imp[i] NAN where fewer than 4 trials set the parameter. */
lf_status lf_tune_importance(const lf_space *s, const lf_trial *t, int n, int maximize, double *imp);

/* ---- built-in test functions (sampler benchmarks without training) */
/* branin (2-D), hartmann6 (6-D), noisy-hartmann6 (+ N(0, 0.1²) noise, seeded by the trial),
 * rosen10 (Rosenbrock on the first 3 of 10 parameters; the other 7 do nothing). *space_json:
 * malloc'd. Returns LF_ERR_NOTFOUND for an unknown name. */
lf_status lf_tune_objective_space(const char *name, char **space_json);
lf_status lf_tune_objective_eval(const char *name, const double *x, uint64_t seed, int number, double *value);

#endif
