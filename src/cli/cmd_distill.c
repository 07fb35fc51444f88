/* lmforge distill: lmforge train with a teacher. The same configuration (file, --key=value,
 * --resume; the teacher is reloaded from the run's saved config on resume) plus the distillation
 * keys; the engine work is src/tech/distill.c, plugged into the training driver. */
#include "cli.h"
#include "lmforge/data.h"
#include "lmforge/distill.h"
#include "lmforge/seqcls.h"
#include "lmforge/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: lmforge distill --teacher MODEL [--config FILE.json] [--key=value ...] [--resume RUN_OR_CHECKPOINT]\n"
               "       lmforge distill --teacher MODEL --write-cache FILE [--cache_k K] [--key=value ...]\n"
               "       lmforge distill --teacher_cache FILE [--key=value ...]\n\n"
               "Trains a student (from the model keys, from init, or with --student_init every_k:K from the teacher's\n"
               "every K-th block) on the data with (1-alpha)*cross-entropy + alpha*(kl|rkl|jsd at temperature T, x T^2)\n"
               "+ hidden_weight*(hidden-state mse|cosine over hidden_layers S:T pairs). The teacher (HF folder, GGUF\n"
               "kept quantized, llama2.c .bin) is frozen and runs forward only; its tokenizer must be the student's.\n"
               "Checkpoints, best/ and resume are those of lmforge train. With task=classify (no resume) the student is\n"
               "a classifier: head=lm takes the teacher's distribution over the label tokens, head=score its score head's\n"
               "over the labels (the teacher a head=score classifier of the same labels).\n"
               "--write-cache runs the teacher once over the batches the run would draw (data, seed, batch_size, context,\n"
               "grad_accum, max_steps) and keeps its top cache_k log-probabilities per position at the temperature;\n"
               "--teacher_cache then distils (forward KL; the mass beyond the top k as one bin) without the teacher.\n\n"
               "keys (default, meaning):\n");
    lf_train_config_help(f);
}

/* --write-cache: the teacher over the run's batches, its top k per position into a file */
static int write_cache(const lf_train_config *c, const char *path) {
    lf_tokenizer *tok = NULL;
    lf_shard *sh = NULL;
    lf_loader *l = NULL;
    lf_batch_source *src = NULL;
    lf_distill *d = NULL;
    char p[LF_PATH + 32];
    snprintf(p, sizeof p, "%s/tokenizer.json", c->data);
    lf_status st = lf_tokenizer_load(&tok, c->tokenizer[0] ? c->tokenizer : p);
    uint64_t fp = st ? 0 : lf_tokenizer_fingerprint(tok);
    snprintf(p, sizeof p, "%s/train.bin", c->data);
    if (!st) st = lf_shard_open(&sh, p, fp);
    lf_distill_opts o;
    lf_distill_opts_default(&o);
    o.temperature = c->temperature;
    if (!st) st = lf_distill_open(&d, c->teacher, tok, &o);
    if (!st) st = lf_shard_check_vocab(sh, lf_model_config(lf_distill_teacher(d))->vocab_size);
    if (!st) st = lf_loader_init(&l, sh, c->batch_size, c->context, (uint64_t)c->seed, 0);
    if (!st && (st = lf_loader_source(&src, l, 1))) lf_loader_free(l);
    long batches = (long)c->max_steps * c->grad_accum;
    if (!st) {
        lf_ctx ctx = {c->threads, (uint64_t)c->seed};
        lf_ctx_apply(&ctx);
        st = lf_distill_cache_write(d, src, c->batch_size, c->context, batches, c->cache_k, fp, path);
    }
    if (!st && !c->quiet)
        printf("teacher cache %s: %ld batches of %d x %d positions, top %d log-probabilities at temperature %g\n", path, batches,
               c->batch_size, c->context, c->cache_k, c->temperature);
    lf_batch_source_free(src);
    lf_distill_free(d);
    lf_shard_close(sh);
    lf_tokenizer_free(tok);
    return st ? cli_fail("distill --write-cache") : 0;
}

int cmd_distill(int argc, char **argv) {
    lf_train_config c;
    const char *resume, *cache_out = NULL;
    char **args = malloc(sizeof(char *) * (size_t)(argc + 1));
    int n = 0;
    if (!args) return 1;
    for (int i = 0; i < argc; i++) { /* --write-cache is the command's own, not a configuration key */
        if (!strcmp(argv[i], "--write-cache") && i + 1 < argc) cache_out = argv[++i];
        else if (!strncmp(argv[i], "--write-cache=", 14)) cache_out = argv[i] + 14;
        else args[n++] = argv[i];
    }
    args[n] = NULL;
    int rc = cli_train_resolve(&c, n, args, &resume, "distill", usage);
    free(args);
    if (rc >= 0) return rc;
    if (!c.teacher[0] && !(c.teacher_cache[0] && !cache_out)) {
        fprintf(stderr, "lmforge distill: no teacher: give --teacher MODEL (a model folder, .gguf or llama2.c .bin)%s\n",
                cache_out ? "" : " or --teacher_cache FILE");
        return 2;
    }
    if (cache_out) {
        if (lf_train_config_check(&c)) return cli_fail("distill --write-cache");
        return write_cache(&c, cache_out);
    }
    volatile sig_atomic_t *stop = cli_stop_on_signals();
    lf_train_result r;
    if (!strcmp(c.task, "classify")) { /* a classifier (head = lm or score) distilled: src/tech/cls_train.c */
        if (resume) {
            fprintf(stderr, "lmforge distill: task = classify does not resume (it keeps best/ and final/, no step checkpoints)\n");
            return 2;
        }
        if (lf_cls_train(&c, stop, &r)) return cli_fail("distill");
        if (!c.json)
            printf("steps %d, train loss %.4f -> %.4f, %zu trainable parameters; best (%s) at step %d in %s; last weights in %s\n",
                   r.steps, r.first_loss, r.last_loss, r.params, c.metric, r.best_step, r.best_dir, r.last_checkpoint);
        return r.reason == LF_STOP_SIGNAL ? 130 : 0;
    }
    if (lf_train(&c, resume, stop, &r)) return cli_fail("distill");
    return cli_train_summary(&c, &r, "distill");
}
