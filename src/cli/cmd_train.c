/* lmforge train / lmforge config show: a configured training run. SIGINT/SIGTERM finish the
 * current step, write a checkpoint and exit with the command that resumes. */
#include "cli.h"
#include "lmforge/seqcls.h"
#include "lmforge/train.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void usage(FILE *f) {
    fprintf(f, "usage: lmforge train [--config FILE.json] [--key=value ...] [--resume RUN_OR_CHECKPOINT]\n"
               "       lmforge config show [--config FILE.json] [--key=value ...] [--resume ...]\n\n"
               "keys (default, meaning):\n");
    lf_train_config_help(f);
}

/* defaults <- the checkpoint's saved config (when resuming) <- the config file <- --key=value */
int cli_train_resolve(lf_train_config *c, int argc, char **argv, const char **resume, const char *cmd, void (*help)(FILE *)) {
    lf_train_config_defaults(c);
    const char *cfg_file = NULL;
    *resume = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--resume") && i + 1 < argc) *resume = argv[i + 1];
        else if (!strncmp(argv[i], "--resume=", 9)) *resume = argv[i] + 9;
    }
    if (*resume) { /* the run continues with the configuration it was started with */
        char p[2048], latest[1024] = "";
        snprintf(p, sizeof p, "%s/trainer_state.json", *resume);
        FILE *f = fopen(p, "r");
        if (!f) {
            snprintf(p, sizeof p, "%s/latest", *resume);
            FILE *lf = fopen(p, "r");
            if (lf && fgets(latest, sizeof latest, lf)) latest[strcspn(latest, "\n")] = 0;
            if (lf) fclose(lf);
            snprintf(p, sizeof p, "%s/%s/trainer_state.json", *resume, latest);
            f = fopen(p, "r");
        }
        if (!f) {
            fprintf(stderr, "lmforge %s: %s: no checkpoint to resume (no trainer_state.json, no 'latest')\n", cmd, *resume);
            return 2;
        }
        fclose(f);
        json_error_t e;
        json_t *j = json_load_file(p, 0, &e), *cfg = j ? json_object_get(j, "config") : NULL;
        char *txt = cfg ? json_dumps(cfg, JSON_COMPACT) : NULL;
        lf_status st = txt ? lf_train_config_from_json_text(c, txt, p) : LF_ERR_FORMAT;
        free(txt);
        json_decref(j);
        if (st) {
            fprintf(stderr, "lmforge %s: %s\n", cmd, txt ? lf_last_error() : "checkpoint has no saved config");
            return 2;
        }
        /* limits and output modes belong to one invocation, not to the run */
        c->stop_after_steps = 0;
        c->max_minutes = 0;
        c->quiet = c->json = 0;
    }
    if (lf_train_config_args(c, argc - 1, argv + 1, &cfg_file, resume)) {
        fprintf(stderr, "lmforge %s: %s\n", cmd, lf_last_error());
        return 2;
    }
    return -1; /* go on */
}

int cmd_config(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "show")) {
        fprintf(stderr, "usage: lmforge config show [--config FILE.json] [--key=value ...]\n");
        return 2;
    }
    lf_train_config c;
    const char *resume;
    int rc = cli_train_resolve(&c, argc - 1, argv + 1, &resume, "config show", usage);
    if (rc >= 0) return rc;
    char *s = lf_train_config_json(&c);
    puts(s);
    free(s);
    return 0;
}

int cmd_train(int argc, char **argv) {
    lf_train_config c;
    const char *resume;
    int rc = cli_train_resolve(&c, argc, argv, &resume, "train", usage);
    if (rc >= 0) return rc;
    volatile sig_atomic_t *stop = cli_stop_on_signals();
    lf_train_result r;
    lf_status st;
    if (!strcmp(c.task, "classify")) { /* a classifier: src/tech/cls_train.c */
        if (resume) {
            fprintf(stderr, "lmforge train: task = classify does not resume (it keeps best/ and final/, no step checkpoints)\n");
            return 2;
        }
        st = lf_cls_train(&c, stop, &r);
        if (st) return cli_fail("train");
        if (!c.json)
            printf("steps %d, train loss %.4f -> %.4f, %zu trainable parameters; best (%s) at step %d in %s; last weights in %s\n",
                   r.steps, r.first_loss, r.last_loss, r.params, c.metric, r.best_step, r.best_dir, r.last_checkpoint);
        return r.reason == LF_STOP_SIGNAL ? 130 : 0;
    }
    st = lf_train(&c, resume, stop, &r);
    if (st) return cli_fail("train");
    return cli_train_summary(&c, &r, "train");
}

int cli_train_summary(const lf_train_config *cp, const lf_train_result *rp, const char *cmd) {
    const lf_train_config c = *cp;
    const lf_train_result r = *rp;
    FILE *msg = c.json ? stderr : stdout; /* stdout stays pure JSON lines in --json mode */
    if (r.reason == LF_STOP_SIGNAL)
        fprintf(msg, "interrupted at step %d; checkpoint %s\nresume with: lmforge %s --resume %s\n", r.steps, r.last_checkpoint, cmd, c.run_dir);
    else if (r.reason == LF_STOP_TIME)
        fprintf(msg, "paused at step %d (time or step limit); resume with: lmforge %s --resume %s\n", r.steps, cmd, c.run_dir);
    if (!c.json) {
        printf("steps %d (%d this run%s), %.0f tokens/s, train loss %.4f -> %.4f\n", r.steps, r.steps - r.start_step,
               r.skipped_steps ? ", some skipped as non-finite" : "", r.tokens_per_s, r.first_loss, r.last_loss);
        if (isfinite(r.best_val_loss) && c.tasks[0]) /* the tasks' own metrics are in the lines above */
            printf("multi-task criterion (%s) %.4f -> %.4f; best %.4f at step %d, saved in %s\n", c.early_stop_metric,
                   r.val_loss_start, r.val_loss_end, r.best_val_loss, r.best_step, r.best_dir);
        else if (isfinite(r.best_val_loss))
            printf("validation loss %.4f -> %.4f; best %.4f (perplexity %.2f) at step %d, saved in %s\n", r.val_loss_start,
                   r.val_loss_end, r.best_val_loss, exp(r.best_val_loss), r.best_step, r.best_dir);
        printf("last checkpoint: %s\n", r.last_checkpoint);
    }
    return r.reason == LF_STOP_SIGNAL ? 130 : 0;
}
