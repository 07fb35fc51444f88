/* lmforge tune / lmforge tune show: hyperparameter search over training-config keys.
 *
 * Each trial is a training run through the library (lf_train_with_hooks), not a child
 * `lmforge train`: the pruner is then a trainer hook on after_eval that stops the run at the very
 * evaluation it loses at, with no polling of metrics files or signals between processes. Workers
 * are processes (fork), each with its own SQLite connection to the study, so a crashed trial takes
 * down one worker, and its trial is found dead (pid gone) and re-sampled by the others or on the
 * next start. A built-in test function (--objective) replaces training for sampler benchmarks. */
#include "cli.h"
#include "lmforge/seqcls.h"
#include "lmforge/train.h"
#include "lmforge/tune.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: lmforge tune --space SPACE.json --trials N --study DIR [options] [--config FILE.json] [--key=value ...]\n"
            "       lmforge tune --objective NAME --trials N --study DIR [options]\n"
            "       lmforge tune show DIR [--top K]\n\n"
            "Each trial trains with the fixed configuration (--config, --key=value: any 'lmforge train' key)\n"
            "plus the trial's values of the keys in SPACE.json, in DIR/trials/trial-NNNN (its own run folder\n"
            "and metrics.jsonl). The study lives in DIR/study.db (SQLite): run the same command again to\n"
            "resume it (trials of a dead worker are marked failed and sampled again), or start it in other\n"
            "terminals to add workers. At the end: a table of trials (best first), parameter importance, and\n"
            "DIR/best_config.json for 'lmforge train --config'.\n\n"
            "SPACE.json: {\"lr\": {\"type\": \"float\", \"low\": 1e-4, \"high\": 1e-2, \"log\": true},\n"
            "             \"warmup_steps\": {\"type\": \"int\", \"low\": 0, \"high\": 100, \"step\": 10},\n"
            "             \"schedule\": {\"type\": \"categorical\", \"choices\": [\"cosine\", \"linear\"]},\n"
            "             \"min_lr\": {\"type\": \"float\", \"low\": 0, \"high\": 1e-3, \"when\": {\"schedule\": \"cosine\"}}}\n"
            "  (\"grid\": K points of a float for --sampler grid; \"when\": active only for those values)\n\n"
            "options:\n"
            "  --trials N             trials to finish (complete or pruned; failed ones are re-sampled)\n"
            "  --workers W            worker processes (default 1); give each --threads=T\n"
            "  --sampler S            tpe (default: Optuna's defaults, 10 random startup trials), random, grid\n"
            "  --multivariate         TPE over all parameters jointly instead of one by one\n"
            "  --pruner P             none (default), median (Optuna's MedianPruner), asha (successive halving)\n"
            "  --prune-warmup K       median: no pruning before step K (default 0)\n"
            "  --prune-startup K      median: completed trials before any pruning (default 5)\n"
            "  --reduction-factor R   asha: keep the top 1/R at each rung (default 4); rungs at eval_every*R^k\n"
            "  --metric M             val_loss (default), val_ppl, accuracy, macro_f1 (task = classify)\n"
            "  --direction D          min or max (default: max for accuracy and macro_f1, min otherwise)\n"
            "  --sampler-seed S       seed of the sampler (default 0)\n"
            "  --objective NAME       no training: branin, hartmann6, noisy-hartmann6, rosen10 (benchmarks)\n"
            "  --json                 one JSON summary line on stdout (best value, seconds, trials)\n"
            "  --quiet                no per-trial lines\n");
}

typedef struct {
    const char *space, *study, *objective, *metric;
    int trials, workers, json, quiet, top;
    lf_tune_opts o;
} tune_args;

/* ---- one trial: a training run with the pruner as an after_eval hook */
typedef struct {
    lf_study *st;
    lf_trial *t;
    int log_ppl, pruned, failed;
    double last;
    double last_beat;
} prune_ctx;

static lf_hook_action prune_after_eval(lf_hook *h, lf_trainer *tr, int step, double val_loss) {
    prune_ctx *p = h->ctx;
    if (step == 0) return LF_HOOK_CONTINUE; /* the untrained start says nothing about the trial */
    double v = p->log_ppl ? exp(val_loss) : val_loss;
    int prune = 0;
    if (lf_study_report(p->st, p->t, step, v, &prune)) {
        p->failed = 1; /* the storage failed: stop the run, the worker reports it */
        return LF_HOOK_STOP;
    }
    p->last = v;
    p->last_beat = lf_now();
    if (prune) {
        p->pruned = 1;
        return LF_HOOK_STOP;
    }
    return LF_HOOK_CONTINUE;
}
static lf_hook_action beat_after_step(lf_hook *h, lf_trainer *tr, const lf_step_info *s) {
    prune_ctx *p = h->ctx;
    if (lf_now() - p->last_beat > 10) { /* so another host can tell a live worker from a dead one */
        lf_study_heartbeat(p->st, p->t);
        p->last_beat = lf_now();
    }
    return LF_HOOK_CONTINUE;
}

/* classify: the trainer's evaluations are not hooked there, so the run's eval events are read back
 * afterwards and recorded as the trial's intermediate values (no pruning) */
static lf_status classify_value(lf_study *st, lf_trial *t, const char *run_dir, const char *metric, int maximize, double *best) {
    char p[1100];
    snprintf(p, sizeof p, "%s/metrics.jsonl", run_dir);
    FILE *f = fopen(p, "r");
    if (!f) {
        lf_set_error("%s: cannot read the trial's metrics", p);
        return LF_ERR_IO;
    }
    char key[32], line[8192];
    snprintf(key, sizeof key, "val_%s", metric);
    *best = NAN;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *ev = json_string_value(json_object_get(j, "event"));
        json_t *v = json_object_get(j, key);
        if (ev && !strcmp(ev, "eval") && json_is_number(v)) {
            double x = json_number_value(v);
            int prune;
            lf_study_report(st, t, (int)json_integer_value(json_object_get(j, "step")), x, &prune);
            if (isnan(*best) || (maximize ? x > *best : x < *best)) *best = x;
        }
        json_decref(j);
    }
    fclose(f);
    if (isnan(*best)) {
        lf_set_error("%s: no evaluation with %s (is eval_every set?)", p, key);
        return LF_ERR_FORMAT;
    }
    return LF_OK;
}

static int run_trial(const tune_args *a, lf_study *st, lf_trial *t, volatile sig_atomic_t *stop) {
    const lf_space *s = lf_study_space(st);
    const lf_tune_opts *o = lf_study_opts(st);
    char *pj = lf_space_point_json(s, t->x);
    double t0 = lf_now(), value = NAN;
    lf_trial_state state = LF_TRIAL_COMPLETE;
    char msg[256] = "";
    if (a->objective) {
        if (lf_tune_objective_eval(a->objective, t->x, o->seed, t->number, &value)) {
            state = LF_TRIAL_FAILED;
            snprintf(msg, sizeof msg, "%s", lf_last_error());
        }
    } else {
        lf_train_config c;
        lf_train_config_defaults(&c);
        lf_status e = lf_train_config_from_json_text(&c, lf_study_extra(st), "the study's fixed configuration");
        char *args[LF_TUNE_MAX_PARAMS];
        int na = lf_space_point_args(s, t->x, args, LF_TUNE_MAX_PARAMS);
        for (int i = 0; i < na; i++) {
            char *eq = strchr(args[i], '=');
            *eq = 0;
            if (!e) e = lf_train_config_set(&c, args[i] + 2, eq + 1);
            free(args[i]);
        }
        snprintf(c.run_dir, sizeof c.run_dir, "%s/trials/trial-%04d", lf_study_dir(st), t->number);
        c.quiet = 1;
        c.json = 0;
        if (!e) e = lf_train_config_check(&c);
        if (!e) {
            lf_rm_rf(c.run_dir); /* a leftover of an earlier study in this folder */
            e = lf_study_set_run_dir(st, t, c.run_dir);
        }
        lf_train_result r;
        prune_ctx pc = {st, t, !strcmp(a->metric, "val_ppl"), 0, 0, NAN, lf_now()};
        int classify = !strcmp(c.task, "classify");
        if (!e && classify) {
            e = lf_cls_train(&c, stop, &r);
            if (!e) e = classify_value(st, t, c.run_dir, a->metric, o->maximize, &value);
        } else if (!e) {
            lf_hook h = {"tune", &pc, beat_after_step, prune_after_eval, NULL};
            lf_hook *hs[1] = {&h};
            e = lf_train_with_hooks(&c, NULL, stop, hs, 1, &r);
            if (!e && pc.failed) e = LF_ERR_IO;
            if (!e) value = pc.log_ppl ? exp(r.best_val_loss) : r.best_val_loss;
            if (!e && isnan(value)) {
                lf_set_error("%s: the run has no validation loss (no val.bin in %s, or eval_every 0)", c.run_dir, c.data);
                e = LF_ERR_ARG;
            }
        }
        if (e) {
            state = LF_TRIAL_FAILED;
            snprintf(msg, sizeof msg, "%s", lf_last_error());
        } else if (r.reason == LF_STOP_SIGNAL) {
            state = LF_TRIAL_FAILED;
            snprintf(msg, sizeof msg, "interrupted at step %d", r.steps);
        } else if (pc.pruned) {
            state = LF_TRIAL_PRUNED;
            value = pc.last;
            snprintf(msg, sizeof msg, "pruned at step %d (%s %.4f)", t->last_step, a->metric, value);
        }
    }
    lf_status ts = lf_study_tell(st, t, state, value, msg);
    if (!a->quiet && !a->json) {
        if (state == LF_TRIAL_COMPLETE)
            printf("trial %d: %s %.6g  %s  (%.1f s)\n", t->number, a->metric, value, pj ? pj : "", lf_now() - t0);
        else if (state == LF_TRIAL_PRUNED) printf("trial %d: %s  %s  (%.1f s)\n", t->number, msg, pj ? pj : "", lf_now() - t0);
        else printf("trial %d: failed: %s  %s  (%.1f s)\n", t->number, msg, pj ? pj : "", lf_now() - t0);
        fflush(stdout);
    }
    free(pj);
    if (ts) {
        fprintf(stderr, "lmforge tune: %s\n", lf_last_error());
        return -1;
    }
    return state == LF_TRIAL_FAILED ? 1 : 0;
}

static int worker(const tune_args *a, volatile sig_atomic_t *stop) {
    lf_study *st;
    if (lf_study_open(&st, a->study, NULL, NULL, NULL)) return cli_fail("tune");
    int rc = 0, failed_in_a_row = 0;
    while (!*stop) {
        lf_trial t;
        int got;
        if (lf_study_ask(st, a->trials, &t, &got)) {
            rc = cli_fail("tune");
            break;
        }
        if (!got) break;
        int r = run_trial(a, st, &t, stop);
        if (r < 0) {
            rc = 1;
            break;
        }
        /* failed trials are sampled again; a configuration that always fails must not loop forever */
        failed_in_a_row = r ? failed_in_a_row + 1 : 0;
        if (failed_in_a_row == 5) {
            fprintf(stderr, "lmforge tune: 5 trials in a row failed (see their messages above); stopping this worker\n");
            rc = 1;
            break;
        }
    }
    lf_study_free(st);
    return rc;
}

/* ---- reporting: the table, the importances, the best configuration */
typedef struct {
    const lf_trial *t;
    int maximize;
} row;
static int row_cmp(const void *x, const void *y) {
    const row *a = x, *b = y;
    int ra = a->t->state == LF_TRIAL_COMPLETE ? 0 : a->t->state == LF_TRIAL_PRUNED ? 1 : a->t->state == LF_TRIAL_RUNNING ? 2 : 3;
    int rb = b->t->state == LF_TRIAL_COMPLETE ? 0 : b->t->state == LF_TRIAL_PRUNED ? 1 : b->t->state == LF_TRIAL_RUNNING ? 2 : 3;
    if (ra != rb) return ra - rb;
    double va = a->t->value, vb = b->t->value;
    if (isnan(va) != isnan(vb)) return isnan(va) ? 1 : -1;
    if (!isnan(va) && va != vb) return (a->maximize ? va > vb : va < vb) ? -1 : 1;
    return a->t->number - b->t->number;
}

static void fmt_value(char *buf, size_t n, const lf_hparam *p, double x) {
    if (isnan(x)) snprintf(buf, n, "-");
    else if (p->kind == LF_HP_CAT) snprintf(buf, n, "%s", p->choices[(int)x]);
    else if (p->kind == LF_HP_INT) snprintf(buf, n, "%lld", llround(x));
    else snprintf(buf, n, "%.4g", x);
}

static int write_best(lf_study *st, const lf_trial *best, const char *metric) {
    const lf_space *s = lf_study_space(st);
    lf_train_config c;
    lf_train_config_defaults(&c);
    if (lf_train_config_from_json_text(&c, lf_study_extra(st), "the study's fixed configuration")) return cli_fail("tune");
    char *args[LF_TUNE_MAX_PARAMS];
    int na = lf_space_point_args(s, best->x, args, LF_TUNE_MAX_PARAMS), bad = 0;
    for (int i = 0; i < na; i++) {
        char *eq = strchr(args[i], '=');
        *eq = 0;
        if (!bad && lf_train_config_set(&c, args[i] + 2, eq + 1)) bad = 1;
        free(args[i]);
    }
    if (bad) return cli_fail("tune");
    snprintf(c.run_dir, sizeof c.run_dir, "%s/best-run", lf_study_dir(st));
    c.quiet = 0;
    char *j = lf_train_config_json(&c), p[700];
    snprintf(p, sizeof p, "%s/best_config.json", lf_study_dir(st));
    lf_status e = j ? lf_write_file_atomic(p, j, strlen(j)) : LF_ERR_NOMEM;
    free(j);
    if (e) return cli_fail("tune");
    printf("best: trial %d, %s %.6g; its configuration: %s (lmforge train --config %s)\n", best->number, metric, best->value, p, p);
    return 0;
}

static int show(lf_study *st, const char *metric, int top, int json_out, double seconds) {
    const lf_space *s = lf_study_space(st);
    const lf_tune_opts *o = lf_study_opts(st);
    lf_trial *t;
    int n;
    if (lf_study_trials(st, &t, &n)) return cli_fail("tune");
    int counts[4] = {0};
    for (int i = 0; i < n; i++) counts[t[i].state]++;
    row *rows = calloc((size_t)n + 1, sizeof *rows);
    if (!rows) {
        lf_trials_free(t, n);
        return 1;
    }
    for (int i = 0; i < n; i++) rows[i] = (row){&t[i], o->maximize};
    qsort(rows, (size_t)n, sizeof *rows, row_cmp);
    const lf_trial *best = n && rows[0].t->state == LF_TRIAL_COMPLETE ? rows[0].t : NULL;
    if (json_out) {
        json_t *j = json_object();
        json_object_set_new(j, "trials", json_integer(n));
        json_object_set_new(j, "complete", json_integer(counts[LF_TRIAL_COMPLETE]));
        json_object_set_new(j, "pruned", json_integer(counts[LF_TRIAL_PRUNED]));
        json_object_set_new(j, "failed", json_integer(counts[LF_TRIAL_FAILED]));
        json_object_set_new(j, "best_value", best ? json_real(best->value) : json_null());
        json_object_set_new(j, "best_trial", best ? json_integer(best->number) : json_null());
        if (best) {
            char *pj = lf_space_point_json(s, best->x);
            json_object_set_new(j, "best_params", pj ? json_loads(pj, 0, NULL) : json_null());
            free(pj);
        }
        json_object_set_new(j, "seconds", json_real(seconds));
        char *txt = json_dumps(j, JSON_COMPACT);
        puts(txt ? txt : "{}");
        free(txt);
        json_decref(j);
        free(rows);
        lf_trials_free(t, n);
        return 0;
    }
    printf("study %s: sampler %s%s, pruner %s, %s %s; %d trials (%d complete, %d pruned, %d failed, %d running)\n",
           lf_study_dir(st), o->sampler, o->multivariate ? " (multivariate)" : "", o->pruner, o->maximize ? "maximise" : "minimise", metric, n,
           counts[1], counts[2], counts[3], counts[0]);
    printf("%6s  %-9s  %12s  %6s  %7s", "trial", "state", metric, "steps", "seconds");
    for (int p = 0; p < lf_space_size(s); p++) printf("  %12.12s", lf_space_param(s, p)->name);
    printf("\n");
    for (int i = 0; i < n && i < top; i++) {
        const lf_trial *r = rows[i].t;
        double secs = (r->finished > 0 ? r->finished : r->heartbeat) - r->started;
        printf("%6d  %-9s  %12.6g  %6d  %7.1f", r->number, lf_trial_state_name(r->state), r->value, r->last_step, secs);
        for (int p = 0; p < lf_space_size(s); p++) {
            char b[64];
            fmt_value(b, sizeof b, lf_space_param(s, p), r->x[p]);
            printf("  %12.12s", b);
        }
        printf("%s%s\n", r->state == LF_TRIAL_FAILED ? "  " : "", r->state == LF_TRIAL_FAILED ? r->message : "");
    }
    if (n > top) printf("(%d more; --top K shows more)\n", n - top);
    double imp[LF_TUNE_MAX_PARAMS];
    if (counts[1] >= 4 && !lf_tune_importance(s, t, n, o->maximize, imp)) {
        printf("parameter importance (share of the variance of the objective's ranks over complete trials explained by each\n"
               "parameter alone, binned main effect):\n");
        for (int p = 0; p < lf_space_size(s); p++)
            if (!isnan(imp[p])) printf("  %-24s %5.3f\n", lf_space_param(s, p)->name, imp[p]);
    }
    int rc = 0;
    if (best && strcmp(lf_study_extra(st), "")) rc = write_best(st, best, metric);
    else if (best) {
        char *pj = lf_space_point_json(s, best->x);
        printf("best: trial %d, %s %.6g at %s\n", best->number, metric, best->value, pj ? pj : "");
        free(pj);
    }
    free(rows);
    lf_trials_free(t, n);
    return rc;
}

static int cmd_tune_show(int argc, char **argv) {
    const char *dir = NULL;
    int top = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--top") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], &top) || top < 1) {
                fprintf(stderr, "lmforge tune show: --top takes a positive integer\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!dir && argv[i][0] != '-') dir = argv[i];
        else {
            fprintf(stderr, "lmforge tune show: unexpected argument '%s' (usage: lmforge tune show DIR [--top K])\n", argv[i]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: lmforge tune show DIR [--top K]\n");
        return 2;
    }
    lf_study *st;
    if (lf_study_open(&st, dir, NULL, NULL, NULL)) return cli_fail("tune show");
    const char *metric = "value";
    json_t *x = json_loads(lf_study_extra(st), 0, NULL);
    char mb[32] = "value";
    char p[700];
    snprintf(p, sizeof p, "%s/metric", dir);
    char *m = lf_read_file(p, NULL);
    if (m) {
        m[strcspn(m, "\n")] = 0;
        snprintf(mb, sizeof mb, "%s", m);
        metric = mb;
        free(m);
    }
    json_decref(x);
    int rc = show(st, metric, top, 0, 0);
    lf_study_free(st);
    return rc;
}

int cmd_tune(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "show")) return cmd_tune_show(argc - 1, argv + 1);
    tune_args a = {0};
    a.workers = 1;
    a.top = 20;
    a.metric = "val_loss";
    lf_tune_opts_defaults(&a.o);
    const char *direction = NULL;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) return 1;
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
#define OPT(name) (!strcmp(k, name) && v && (i++, 1))
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            usage(stdout);
            free(rest);
            return 0;
        } else if (OPT("--space")) a.space = v;
        else if (OPT("--study")) a.study = v;
        else if (OPT("--objective")) a.objective = v;
        else if (OPT("--trials")) bad = cli_parse_int(v, &a.trials) || a.trials < 1;
        else if (OPT("--workers")) bad = cli_parse_int(v, &a.workers) || a.workers < 1 || a.workers > 256;
        else if (OPT("--sampler")) {
            bad = strcmp(v, "tpe") && strcmp(v, "random") && strcmp(v, "grid");
            if (!bad) snprintf(a.o.sampler, sizeof a.o.sampler, "%s", v);
        } else if (OPT("--pruner")) {
            bad = strcmp(v, "none") && strcmp(v, "median") && strcmp(v, "asha");
            if (!bad) snprintf(a.o.pruner, sizeof a.o.pruner, "%s", v);
        } else if (OPT("--metric")) {
            a.metric = v;
            bad = strcmp(v, "val_loss") && strcmp(v, "val_ppl") && strcmp(v, "accuracy") && strcmp(v, "macro_f1");
        } else if (OPT("--direction")) {
            direction = v;
            bad = strcmp(v, "min") && strcmp(v, "max");
        } else if (OPT("--sampler-seed")) {
            int sd;
            bad = cli_parse_int(v, &sd) || sd < 0;
            a.o.seed = (uint64_t)sd;
        } else if (OPT("--prune-warmup")) bad = cli_parse_int(v, &a.o.warmup_steps) || a.o.warmup_steps < 0;
        else if (OPT("--prune-startup")) bad = cli_parse_int(v, &a.o.median_startup_trials) || a.o.median_startup_trials < 0;
        else if (OPT("--reduction-factor")) bad = cli_parse_int(v, &a.o.reduction_factor) || a.o.reduction_factor < 2;
        else if (!strcmp(k, "--multivariate")) a.o.multivariate = 1;
        else if (!strcmp(k, "--json")) a.json = 1;
        else if (!strcmp(k, "--quiet")) a.quiet = 1;
        else rest[nrest++] = argv[i]; /* the fixed training configuration */
#undef OPT
        if (bad) {
            fprintf(stderr, "lmforge tune: bad value '%s' for %s (see lmforge tune --help)\n", v, k);
            free(rest);
            return 2;
        }
    }
    if (!a.study || a.trials < 1 || (!a.space == !a.objective)) {
        fprintf(stderr, "lmforge tune: needs --study DIR, --trials N and one of --space SPACE.json or --objective NAME "
                        "(see lmforge tune --help)\n");
        free(rest);
        return 2;
    }
    int classify_metric = !strcmp(a.metric, "accuracy") || !strcmp(a.metric, "macro_f1");
    a.o.maximize = direction ? !strcmp(direction, "max") : classify_metric;
    if (a.objective) a.metric = "value";
    char *space_json = NULL, *extra = NULL;
    if (a.objective) {
        if (nrest) {
            fprintf(stderr, "lmforge tune: --objective takes no training configuration ('%s')\n", rest[0]);
            free(rest);
            return 2;
        }
        if (lf_tune_objective_space(a.objective, &space_json)) {
            free(rest);
            return cli_fail("tune");
        }
    } else {
        lf_space *sp;
        if (lf_space_load(&sp, a.space)) {
            free(rest);
            return cli_fail("tune");
        }
        space_json = lf_space_json(sp);
        lf_train_config c;
        lf_train_config_defaults(&c);
        const char *cfg = NULL, *resume = NULL;
        if (lf_train_config_args(&c, nrest, rest, &cfg, &resume)) {
            lf_space_free(sp);
            free(rest);
            free(space_json);
            return cli_fail("tune");
        }
        if (resume) {
            fprintf(stderr, "lmforge tune: --resume is not a tuning option (run the same tune command again to resume the study)\n");
            return 2;
        }
        if (classify_metric && strcmp(c.task, "classify")) {
            fprintf(stderr, "lmforge tune: --metric %s needs a classifier (--task=classify); use val_loss or val_ppl for a language model\n", a.metric);
            return 2;
        }
        if (classify_metric) snprintf(c.metric, sizeof c.metric, "%s", a.metric);
        if (classify_metric && strcmp(a.o.pruner, "none"))
            fprintf(stderr, "lmforge tune: note: classifier trials are not pruned (their evaluations are recorded after the run)\n");
        /* every key of the space must be a training key, with a value of the right type: a
         * mistake fails here, not in every trial */
        for (int i = 0; i < lf_space_size(sp); i++) {
            const lf_hparam *p = lf_space_param(sp, i);
            double x[LF_TUNE_MAX_PARAMS];
            for (int j = 0; j < LF_TUNE_MAX_PARAMS; j++) x[j] = NAN;
            x[i] = p->kind == LF_HP_CAT ? 0 : p->low;
            char *args[1];
            if (lf_space_point_args(sp, x, args, 1) != 1) continue;
            char *eq = strchr(args[0], '=');
            *eq = 0;
            lf_train_config probe = c;
            lf_status e = lf_train_config_set(&probe, args[0] + 2, eq + 1);
            free(args[0]);
            if (e) {
                fprintf(stderr, "lmforge tune: %s: '%s': %s\n", a.space, p->name, lf_last_error());
                lf_space_free(sp);
                free(rest);
                free(space_json);
                return 2;
            }
        }
        lf_space_free(sp);
        if (!strcmp(a.o.pruner, "asha")) a.o.min_resource = c.eval_every > 0 ? c.eval_every : 1;
        snprintf(c.run_dir, sizeof c.run_dir, "%s/trials", a.study);
        extra = lf_train_config_json(&c);
    }
    free(rest);
    lf_study *st;
    double t0 = lf_now();
    if (lf_study_open(&st, a.study, space_json, &a.o, extra ? extra : "")) {
        free(space_json);
        free(extra);
        return cli_fail("tune");
    }
    free(space_json);
    free(extra);
    char p[700];
    snprintf(p, sizeof p, "%s/metric", a.study);
    if (lf_write_file_atomic(p, a.metric, strlen(a.metric))) {
        lf_study_free(st);
        return cli_fail("tune");
    }
    int marked = 0;
    if (lf_study_reap(st, 600, &marked)) {
        lf_study_free(st);
        return cli_fail("tune");
    }
    if (marked && !a.json) printf("resuming: %d trial(s) of a dead worker marked failed; they are sampled again\n", marked);
    lf_study_free(st); /* workers open their own connections; none is shared across fork */
    volatile sig_atomic_t *stop = cli_stop_on_signals();
    int rc = 0;
    if (a.workers == 1) {
        rc = worker(&a, stop);
    } else {
        fflush(stdout);
        pid_t *pids = calloc((size_t)a.workers, sizeof *pids);
        if (!pids) return 1;
        for (int w = 0; w < a.workers; w++) {
            pids[w] = fork();
            if (pids[w] == 0) _exit(worker(&a, stop));
            if (pids[w] < 0) {
                perror("lmforge tune: fork");
                rc = 1;
                break;
            }
        }
        for (int w = 0; w < a.workers; w++) {
            int ws;
            if (pids[w] > 0 && waitpid(pids[w], &ws, 0) > 0 && (!WIFEXITED(ws) || WEXITSTATUS(ws))) rc = 1;
        }
        free(pids);
    }
    if (lf_study_open(&st, a.study, NULL, NULL, NULL)) return cli_fail("tune");
    int r2 = show(st, a.metric, a.top, a.json, lf_now() - t0);
    lf_study_free(st);
    if (*stop) {
        fprintf(stderr, "interrupted; resume with the same lmforge tune command\n");
        return 130;
    }
    return rc ? rc : r2;
}
