/* lmforge train with task = classify: fine-tunes a pretrained model (init) into a classifier on
 * a folder lmforge prepare made from {"text","label"} records, with
 *   head = lm     the verbalizer rows "<text>\nlabel:" + " <label>" + EOS, loss on the label and
 *                 EOS tokens (what prepare's shards hold), predictions by label scoring;
 *   head = score  a score.weight head on the last token (src/tech/seqcls.c), full fine-tuning or
 *                 head_only (the model frozen).
 * Evaluations compute loss (mean negative log-likelihood of the gold label), accuracy and
 * macro-F1 on the validation split; early stopping (the trainer's lf_hook_early_stopping, fed
 * the loss or minus the chosen metric) and best/ follow `metric`. best/ and final/ are Hugging
 * Face folders (with score.weight and a *ForSequenceClassification config for head = score)
 * with the tokenizer. This driver writes no resumable step checkpoints (lf_train does, for
 * task = lm); an interrupted run keeps its best/. */
#include "lmforge/ckpt.h"
#include "lmforge/distill.h"
#include "lmforge/eval.h"
#include "lmforge/lora.h"
#include "lmforge/report.h"
#include "lmforge/seqcls.h"
#include "lmforge/train.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- verbalizer rows for head = lm */
typedef struct {
    lf_ids *ids;    /* (n) prompt + answer + EOS */
    size_t *nprompt;
    size_t n;
    uint64_t seed, epoch, pos;
    size_t *perm;
} lm_src;

static void lm_shuffle(lm_src *s) {
    for (size_t i = 0; i < s->n; i++) s->perm[i] = i;
    for (size_t i = s->n; i > 1; i--) {
        size_t j = (size_t)(lf_hash64(s->seed, 0x1abe1000 + s->epoch, i) % i), t = s->perm[i - 1];
        s->perm[i - 1] = s->perm[j];
        s->perm[j] = t;
    }
}

static lf_status lm_next(lf_batch_source *src, lf_batch *b) {
    lm_src *s = src->ctx;
    for (int r = 0; r < b->B; r++) {
        if (s->pos >= s->n) {
            s->epoch++;
            s->pos = 0;
            lm_shuffle(s);
        }
        size_t i = s->perm[s->pos++], n = s->ids[i].n, start = n > (size_t)b->T + 1 ? n - (size_t)b->T - 1 : 0;
        const int32_t *x = s->ids[i].ids;
        int32_t *in = b->inputs + (size_t)r * b->T, *tg = b->targets + (size_t)r * b->T;
        for (int t = 0; t < b->T; t++) { /* the end is kept: the label always fits */
            size_t k = start + (size_t)t;
            in[t] = k + 1 < n ? x[k] : 0;
            tg[t] = k + 1 < n && k + 1 >= s->nprompt[i] ? x[k + 1] : -1;
        }
        if (b->row_weight) b->row_weight[r] = 1.0f;
        if (b->task) b->task[r] = 0;
    }
    return LF_OK;
}

static int lm_get_state(const lf_batch_source *src, uint64_t *w) {
    const lm_src *s = src->ctx;
    w[0] = s->epoch;
    w[1] = s->pos;
    return 2;
}

static lf_status lm_set_state(lf_batch_source *src, const uint64_t *w, int n) {
    lm_src *s = src->ctx;
    if (n != 2 || w[1] > s->n) {
        lf_set_error("classify source: a saved state that does not fit %zu examples", s->n);
        return LF_ERR_FORMAT;
    }
    s->epoch = w[0];
    lm_shuffle(s);
    s->pos = w[1];
    return LF_OK;
}

static void lm_free(lf_batch_source *src) {
    lm_src *s = src->ctx;
    for (size_t i = 0; s && i < s->n; i++) lf_ids_free(&s->ids[i]);
    if (s) free(s->ids), free(s->nprompt), free(s->perm), free(s);
    free(src);
}

static lf_status lm_source_new(lf_batch_source **out, const lf_tokenizer *tok, const lf_cls_dataset *d, uint64_t seed) {
    lf_batch_source *src = calloc(1, sizeof *src);
    lm_src *s = calloc(1, sizeof *s);
    lf_tok_encoder *e = NULL;
    lf_status st = src && s ? lf_tok_encoder_init(&e, tok) : LF_ERR_NOMEM;
    if (src) *src = (lf_batch_source){"classify-lm", s, lm_next, lm_get_state, lm_set_state, lm_free};
    if (!st) {
        s->ids = calloc(d->n, sizeof(lf_ids));
        s->nprompt = calloc(d->n, sizeof(size_t));
        s->perm = calloc(d->n, sizeof(size_t));
        if (!s->ids || !s->nprompt || !s->perm) st = LF_ERR_NOMEM;
        else s->n = d->n;
    }
    unsigned pf = lf_tokenizer_kind(tok) == LF_TOK_SENTENCEPIECE ? LF_ENC_BOS : 0;
    for (size_t i = 0; i < d->n && !st; i++) { /* exactly prepare's tokenization of a labelled record */
        const char *t = d->text[i], *lab = d->names[d->label[i]];
        size_t tl = strlen(t), ll = strlen(lab);
        char *p = malloc(tl + ll + 9);
        if (!p) {
            st = LF_ERR_NOMEM;
            break;
        }
        memcpy(p, t, tl);
        memcpy(p + tl, "\nlabel:", 7);
        st = lf_tok_encode(e, p, tl + 7, pf, &s->ids[i]);
        s->nprompt[i] = s->ids[i].n;
        p[0] = ' ';
        memcpy(p + 1, lab, ll + 1);
        if (!st) st = lf_tok_encode(e, p, ll + 1, LF_ENC_CONTINUE, &s->ids[i]);
        if (!st && lf_tokenizer_eos(tok) >= 0) st = lf_ids_push(&s->ids[i], lf_tokenizer_eos(tok));
        free(p);
    }
    lf_tok_encoder_free(e);
    if (st) {
        if (src) lm_free(src);
        else free(s);
        return st;
    }
    s->seed = seed;
    lm_shuffle(s);
    *out = src;
    return LF_OK;
}

/* ---- the run */
typedef struct {
    const lf_train_config *c;
    lf_model *m;
    lf_tokenizer *tok;
    char tok_path[LF_PATH * 2];
    lf_cls_dataset train, val, test;
    lf_seqcls *h;
    lf_lora *lora; /* LoRA on: best/ and final/ hold the adapter folder (PEFT layout) */
    lf_distill *dist; /* with a teacher: head = lm, its distribution over the label tokens (distill.c);
                       * head = score, the model that carries th */
    lf_seqcls *th;    /* head = score with a teacher: the teacher's score head */
    lf_reporter *rep;
    int pad;
} cls_run;

typedef struct {
    double loss, acc, f1;
    double acc_ci[2], f1_ci[2]; /* 95 % percentile bootstrap (the test split only; NAN otherwise) */
} cls_eval;

/* ci: also the bootstrap intervals (1,000 resamples, a fixed seed: the same draws for every
 * method scored on the same examples) */
static lf_status evaluate(cls_run *r, const lf_cls_dataset *v, cls_eval *e, int ci) {
    int K = v->K;
    int *pred = malloc(sizeof(int) * v->n);
    if (!pred) return LF_ERR_NOMEM;
    lf_status st = LF_OK;
    double nll = 0;
    if (r->h) {
        float *z = malloc(sizeof(float) * v->n * K);
        st = z ? lf_seqcls_predict(r->h, r->tok, (const char *const *)v->text, v->n, r->c->context, r->c->batch_size, pred, z)
               : LF_ERR_NOMEM;
        for (size_t i = 0; !st && i < v->n; i++) {
            const float *zi = z + i * K;
            float mx = zi[0];
            for (int k = 1; k < K; k++) mx = zi[k] > mx ? zi[k] : mx;
            double se = 0;
            for (int k = 0; k < K; k++) se += exp((double)zi[k] - mx);
            nll += log(se) + mx - zi[v->label[i]];
        }
        free(z);
    } else {
        lf_cls_score_opts o = {NULL, NULL, r->c->context, r->c->batch_size, NULL, NULL};
        lf_cls_scores sc;
        st = lf_cls_score(r->m, r->tok, (const char *const *)v->text, v->n, (const char *const *)v->names, K, &o, &sc);
        if (!st) {
            memcpy(pred, sc.pred, sizeof(int) * v->n);
            for (size_t i = 0; i < v->n; i++) nll -= sc.ll[i * K + v->label[i]];
            lf_cls_scores_free(&sc);
        }
    }
    lf_cls_metrics mt;
    if (!st) st = lf_cls_metrics_compute(&mt, v->label, pred, v->n, K);
    if (!st && ci && (st = lf_cls_bootstrap(&mt, v->label, pred, 1000, 1234))) lf_cls_metrics_free(&mt);
    if (!st) {
        e->loss = nll / (double)v->n;
        e->acc = mt.accuracy;
        e->f1 = mt.macro_f1;
        memcpy(e->acc_ci, mt.acc_ci, sizeof e->acc_ci);
        memcpy(e->f1_ci, mt.macro_f1_ci, sizeof e->f1_ci);
        lf_cls_metrics_free(&mt);
    }
    free(pred);
    return st;
}

static double es_value(const lf_train_config *c, const cls_eval *e) {
    return !strcmp(c->metric, "accuracy") ? -e->acc : !strcmp(c->metric, "macro_f1") ? -e->f1 : e->loss;
}

/* best/ or final/: the model (with the head) and the tokenizer, published in one rename */
static lf_status save_dir(cls_run *r, const char *name) {
    char dir[LF_PATH + 32], tmp[LF_PATH + 48], p[LF_PATH + 80];
    snprintf(dir, sizeof dir, "%s/%s", r->c->run_dir, name);
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", r->c->run_dir, name);
    lf_rm_rf(tmp);
    lf_status st;
    if (r->lora) { /* the adapter (PEFT layout, base = init) and, with a head, score.weight beside it */
        st = lf_lora_save(r->lora, tmp, r->c->init);
        lf_param *w = r->h ? lf_model_find(r->m, "score.weight") : NULL;
        if (!st && w) {
            lf_st_tensor t = {"score.weight", 2, {w->shape[0], w->shape[1]}, w->data, NULL, NULL};
            const char *meta[] = {"truncation_side", lf_seqcls_keep_end(r->h) ? "left" : "right"};
            snprintf(p, sizeof p, "%s/score.safetensors", tmp);
            st = lf_st_write(p, &t, 1, meta, 1);
        }
    } else
        st = r->h ? lf_seqcls_export(r->h, tmp, (const char *const *)r->train.names, r->pad) : lf_hf_save(r->m, tmp);
    size_t n = 0;
    char *tj = st ? NULL : lf_read_file(r->tok_path, &n);
    if (!st && !tj) st = LF_ERR_IO;
    snprintf(p, sizeof p, "%s/tokenizer.json", tmp);
    if (!st) st = lf_write_file_atomic(p, tj, n);
    free(tj);
    if (!st) st = lf_publish_dir(tmp, dir);
    return st;
}

/* The test split (test_examples) scored with the weights just saved as best/: the figure a
 * validation-selected model reports. */
static lf_status test_best(cls_run *r, int step, cls_eval *out) {
    if (!r->test.n) return LF_OK;
    lf_status st = evaluate(r, &r->test, out, 1);
    if (st) return st;
    json_t *ev = json_object();
    json_object_set_new(ev, "event", json_string("test"));
    json_object_set_new(ev, "step", json_integer(step));
    json_object_set_new(ev, "examples", json_integer((json_int_t)r->test.n));
    json_object_set_new(ev, "test_loss", json_real(out->loss));
    json_object_set_new(ev, "test_accuracy", json_real(out->acc));
    json_object_set_new(ev, "test_macro_f1", json_real(out->f1));
    json_object_set_new(ev, "test_accuracy_ci95", json_pack("[ff]", out->acc_ci[0], out->acc_ci[1]));
    json_object_set_new(ev, "test_macro_f1_ci95", json_pack("[ff]", out->f1_ci[0], out->f1_ci[1]));
    lf_report_event(r->rep, ev);
    lf_report_say(r->rep, "step %d: test (%zu examples) accuracy %.4f, macro F1 %.4f\n", step, r->test.n, out->acc, out->f1);
    return LF_OK;
}

static void report_eval(cls_run *r, int step, const cls_eval *e, int improved) {
    json_t *ev = json_object();
    json_object_set_new(ev, "event", json_string("eval"));
    json_object_set_new(ev, "step", json_integer(step));
    json_object_set_new(ev, "val_loss", json_real(e->loss));
    json_object_set_new(ev, "val_accuracy", json_real(e->acc));
    json_object_set_new(ev, "val_macro_f1", json_real(e->f1));
    lf_report_event(r->rep, ev);
    lf_report_scalar(r->rep, "val/loss", step, (float)e->loss);
    lf_report_scalar(r->rep, "val/accuracy", step, (float)e->acc);
    lf_report_scalar(r->rep, "val/macro_f1", step, (float)e->f1);
    lf_report_say(r->rep, "step %d: val loss %.4f, accuracy %.4f, macro F1 %.4f%s\n", step, e->loss, e->acc, e->f1,
                  improved ? " (best so far, saved to best/)" : "");
    lf_report_flush(r->rep);
}

/* head = score with a teacher: the teacher must be a classifier of the same labels (its folder's
 * score.weight and id2label), so that its distribution means the same label at the same index */
static lf_status teacher_head(cls_run *r, const lf_train_config *c) {
    lf_status st = lf_seqcls_attach(&r->th, lf_distill_teacher(r->dist), r->train.K, c->teacher, 0);
    if (st) {
        char msg[1200];
        snprintf(msg, sizeof msg, "teacher %s: %s", c->teacher, lf_last_error());
        lf_set_error("%s", msg);
        return st;
    }
    if (!lf_seqcls_trained(r->th)) {
        lf_set_error("teacher %s has no score.weight head: head = score distils a classifier trained with head = score "
                     "(or give head = lm and a language-model teacher)", c->teacher);
        return LF_ERR_ARG;
    }
    for (int k = 0; k < r->train.K; k++) {
        const char *tn = lf_seqcls_label_name(r->th, k);
        if (tn && strcmp(tn, r->train.names[k])) {
            lf_set_error("teacher %s: label %d is '%s', the data's is '%s' (a classifier of another label set, or another order)",
                         c->teacher, k, tn, r->train.names[k]);
            return LF_ERR_ARG;
        }
    }
    return LF_OK;
}

lf_status lf_cls_train(const lf_train_config *c, volatile sig_atomic_t *stop, lf_train_result *res) {
    memset(res, 0, sizeof *res);
    res->val_loss_start = res->val_loss_end = res->best_val_loss = NAN;
    lf_status st = lf_train_config_check(c);
    if (st) return st;
    if (!c->init[0]) {
        lf_set_error("task = classify fine-tunes a model: set init (a Hugging Face folder)");
        return LF_ERR_ARG;
    }
    if (c->head_only && (c->lora_r > 0 || c->adapter[0])) { /* head_only would freeze the adapters too */
        lf_set_error("head_only trains score.weight alone: drop lora_r / adapter, or head_only");
        return LF_ERR_ARG;
    }
    lf_ctx ctx = {c->threads, (uint64_t)c->seed};
    lf_ctx_apply(&ctx);
    cls_run R = {0}, *r = &R;
    r->c = c;
    lf_trainer *tr = NULL;
    lf_batch_source *src = NULL;
    lf_hook *es = NULL;
    double t0 = lf_now();
    char p[LF_PATH * 3];
    if (c->tokenizer[0]) snprintf(r->tok_path, sizeof r->tok_path, "%s", c->tokenizer);
    else {
        snprintf(r->tok_path, sizeof r->tok_path, "%s/tokenizer.json", c->init);
        if (!lf_path_exists(r->tok_path)) snprintf(r->tok_path, sizeof r->tok_path, "%s/tokenizer.json", c->data);
    }
    if ((st = lf_mkdirs(c->run_dir))) goto out;
    if ((st = lf_tokenizer_load(&r->tok, r->tok_path))) goto out;
    if ((st = lf_model_load(&r->m, c->init))) goto out;
    if ((st = lf_cls_dataset_load_prepared(&r->train, c->data, "train", r->tok_path, 0))) goto out;
    snprintf(p, sizeof p, "%s/val.bin", c->data);
    if (lf_path_exists(p) && (st = lf_cls_dataset_load_prepared(&r->val, c->data, "val", r->tok_path, (size_t)c->eval_examples)))
        goto out;
    snprintf(p, sizeof p, "%s/test.bin", c->data);
    if (c->test_examples != 0 && !lf_path_exists(p)) {
        lf_set_error("%s: no test split (test_examples is set; lmforge prepare --builtin rt|20ng|r8 writes one)", c->data);
        st = LF_ERR_NOTFOUND;
        goto out;
    }
    if (c->test_examples != 0 &&
        (st = lf_cls_dataset_load_prepared(&r->test, c->data, "test", r->tok_path, c->test_examples > 0 ? (size_t)c->test_examples : 0)))
        goto out;
    lf_config *mc = (lf_config *)lf_model_config(r->m);
    if (c->dropout >= 0) mc->dropout_embd = mc->dropout_attn = mc->dropout_resid = c->dropout;
    if (c->context > mc->max_seq) {
        lf_set_error("context %d exceeds the model's %d positions", c->context, mc->max_seq);
        st = LF_ERR_ARG;
        goto out;
    }
    int gpt2 = mc->arch == LF_ARCH_GPT2; /* freeze_embeddings / freeze_layers as for task = lm */
    if (c->freeze_embeddings && !(st = lf_model_set_trainable(r->m, gpt2 ? "transformer.wte." : "model.embed_tokens.", 0, NULL)) && gpt2)
        st = lf_model_set_trainable(r->m, "transformer.wpe.", 0, NULL);
    if (!st && c->freeze_layers > mc->n_layer) {
        lf_set_error("freeze_layers %d exceeds the model's %d blocks", c->freeze_layers, mc->n_layer);
        st = LF_ERR_ARG;
    }
    for (int l = 0; l < c->freeze_layers && !st; l++) {
        snprintf(p, sizeof p, gpt2 ? "transformer.h.%d." : "model.layers.%d.", l);
        st = lf_model_set_trainable(r->m, p, 0, NULL);
    }
    if (!st) st = lf_lora_from_config(&r->lora, r->m, c); /* freezes the base; a score head added next trains */
    if (!st && c->teacher[0]) { /* the teacher scores the same verbalizer rows; the terms read the label positions */
        lf_distill_opts dopt;
        lf_distill_opts_default(&dopt);
        dopt.kind = (lf_distill_kind)lf_distill_kind_parse(c->loss);
        dopt.temperature = c->temperature;
        dopt.beta = c->beta;
        st = lf_distill_open(&r->dist, c->teacher, r->tok, &dopt);
        if (!st) st = lf_distill_attach(r->dist, r->m);
    }
    if (st) goto out;
    r->pad = lf_tokenizer_eos(r->tok) >= 0 ? lf_tokenizer_eos(r->tok) : 0;
    if (!strcmp(c->head, "score")) {
        if ((st = lf_seqcls_attach(&r->h, r->m, r->train.K, NULL, (uint64_t)c->seed))) goto out;
        lf_seqcls_set_keep_end(r->h, !strcmp(c->truncation_side, "left"));
        if (c->head_only && !(st = lf_model_set_trainable(r->m, "", 0, NULL)))
            st = lf_model_set_trainable(r->m, "score.weight", 1, NULL);
        if (!st && r->dist) st = teacher_head(r, c);
        int *lab = r->train.label;
        if (!st) st = lf_seqcls_source_new(&src, r->tok, (const char *const *)r->train.text, lab, r->train.n, c->context, r->pad,
                                           (uint64_t)c->seed, lf_seqcls_keep_end(r->h) ? LF_SEQCLS_KEEP_END : 0);
    } else st = lm_source_new(&src, r->tok, &r->train, (uint64_t)c->seed);
    if (st) goto out;
    lf_trainer_opts o = {0};
    o.ctx = ctx;
    o.B = c->batch_size;
    o.T = c->context;
    o.grad_accum = c->grad_accum;
    lf_adamw_defaults(&o.adamw);
    o.adamw.beta1 = c->beta1;
    o.adamw.beta2 = c->beta2;
    o.adamw.eps = c->adam_eps;
    o.adamw.weight_decay = c->weight_decay;
    o.adamw.grad_clip = c->grad_clip;
    lf_sched_kind k;
    lf_schedule_parse(c->schedule, &k);
    o.schedule = (lf_schedule){k, c->lr, c->min_lr, c->warmup_steps, c->max_steps};
    if ((st = lf_trainer_init(&tr, r->m, src, &o))) goto out;
    if (r->th) { /* head = score: the divergence between the two heads' label distributions */
        lf_loss_term *kd = lf_seqcls_distill_new(r->h, r->th, (lf_distill_kind)lf_distill_kind_parse(c->loss), c->temperature, c->beta);
        if (kd) kd->weight = c->alpha;
        if ((st = kd ? lf_trainer_add_loss(tr, kd) : LF_ERR_ARG)) goto out;
    } else if (r->dist && (st = lf_trainer_add_loss(tr, lf_distill_logit_term(r->dist, c->alpha))))
        goto out;
    lf_loss_term *ce = r->h ? lf_seqcls_loss_new(r->h) : lf_loss_ce_new(c->label_smoothing);
    if (ce && r->dist) ce->weight = 1.0f - c->alpha;
    if ((st = lf_trainer_add_loss(tr, ce))) goto out;
    es = lf_hook_early_stopping(c->patience, c->min_delta); /* called here with the chosen metric, not the LM loss */
    if (!es) {
        st = LF_ERR_NOMEM;
        goto out;
    }
    snprintf(p, sizeof p, "%s/metrics.jsonl", c->run_dir);
    lf_report_opts ro = {p, c->tensorboard[0] ? c->tensorboard : NULL, c->quiet, c->json};
    if ((st = lf_report_open(&r->rep, &ro))) goto out;
    char *cj = lf_train_config_json(c);
    snprintf(p, sizeof p, "%s/train_config.json", c->run_dir);
    st = cj ? lf_write_file_atomic(p, cj, strlen(cj)) : LF_ERR_NOMEM;
    free(cj);
    if (st) goto out;
    size_t trainable = 0;
    for (int i = 0; i < lf_model_num_params(r->m); i++)
        if (lf_model_param(r->m, i)->flags & LF_PARAM_TRAINABLE) trainable += lf_model_param(r->m, i)->numel;
    res->params = trainable;
    lf_report_say(r->rep, "classify: %zu train / %zu val examples, %d labels, head %s%s, %zu trainable parameters\n", r->train.n,
                  r->val.n, r->train.K, c->head, c->head_only ? " only" : "", trainable);
    lf_early_stopping *ess = lf_hook_early_stopping_state(es);
    cls_eval e = {NAN, NAN, NAN, {NAN, NAN}, {NAN, NAN}}, te = e;
    int has_val = r->val.n > 0, evaluated = 0;
    if (has_val) {
        if ((st = evaluate(r, &r->val, &e, 0))) goto out;
        res->val_loss_start = (float)e.loss;
        report_eval(r, 0, &e, 0);
    }
    res->reason = LF_STOP_DONE;
    int step = 0;
    size_t tokens = 0;
    double step_seconds = 0; /* in optimizer steps only (evaluations excluded) */
    for (step = 1; step <= c->max_steps; step++) {
        lf_step_info si;
        double ts = lf_now();
        if ((st = lf_trainer_step(tr, &si, NULL))) goto out;
        step_seconds += lf_now() - ts;
        tokens += si.tokens;
        if (step == 1) res->first_loss = si.loss;
        res->last_loss = si.loss;
        res->skipped_steps += !si.finite;
        if (step % c->log_every == 0 || step == c->max_steps) {
            json_t *ev = json_object();
            json_object_set_new(ev, "event", json_string("step"));
            json_object_set_new(ev, "step", json_integer(step));
            json_object_set_new(ev, "loss", json_real(si.loss));
            json_object_set_new(ev, "lr", json_real(si.lr));
            json_object_set_new(ev, "grad_norm", json_real(si.grad_norm));
            lf_report_event(r->rep, ev);
            lf_report_scalar(r->rep, "train/loss", step, si.loss);
        }
        lf_report_progress(r->rep, "step %d/%d  loss %.4f  lr %.2e", step, c->max_steps, si.loss, si.lr);
        evaluated = 0;
        if (has_val && c->eval_every > 0 && step % c->eval_every == 0) {
            if ((st = evaluate(r, &r->val, &e, 0))) goto out;
            evaluated = 1;
            lf_hook_action a = es->after_eval(es, tr, step, es_value(c, &e));
            if (ess->improved && (st = save_dir(r, "best"))) goto out;
            report_eval(r, step, &e, ess->improved);
            if (ess->improved && (st = test_best(r, step, &te))) goto out;
            if (ess->improved) res->best_val_loss = (float)e.loss;
            if (a == LF_HOOK_STOP) {
                lf_report_say(r->rep, "early stopping: %s did not improve in %d evaluations (best at step %d)\n", c->metric,
                              c->patience, ess->best_step);
                res->reason = LF_STOP_EARLY;
                break;
            }
        }
        if (stop && *stop) {
            res->reason = LF_STOP_SIGNAL;
            break;
        }
        if ((c->max_minutes > 0 && lf_now() - t0 > c->max_minutes * 60.0) || (c->stop_after_steps > 0 && step >= c->stop_after_steps)) {
            res->reason = LF_STOP_TIME;
            break;
        }
    }
    lf_report_progress_end(r->rep);
    if (step > c->max_steps) step = c->max_steps;
    if (has_val && !evaluated) {
        if ((st = evaluate(r, &r->val, &e, 0))) goto out;
        es->after_eval(es, tr, step, es_value(c, &e));
        if (ess->improved && (st = save_dir(r, "best"))) goto out;
        if (ess->improved) res->best_val_loss = (float)e.loss;
        report_eval(r, step, &e, ess->improved);
        if (ess->improved && (st = test_best(r, step, &te))) goto out;
    }
    if (!has_val && ((st = save_dir(r, "best")) || (st = test_best(r, step, &te)))) goto out; /* without validation data the last weights are the best we know */
    if ((st = save_dir(r, "final"))) goto out;
    res->val_loss_end = (float)e.loss;
    res->steps = step;
    res->best_step = ess->best_step;
    res->seconds = lf_now() - t0;
    res->tokens_per_s = tokens / (res->seconds > 0 ? res->seconds : 1e-9);
    snprintf(res->best_dir, sizeof res->best_dir, "%s/best", c->run_dir);
    snprintf(res->last_checkpoint, sizeof res->last_checkpoint, "%s/final", c->run_dir);
    {
        json_t *ev = json_object();
        json_object_set_new(ev, "event", json_string("done"));
        json_object_set_new(ev, "steps", json_integer(step));
        json_object_set_new(ev, "metric", json_string(c->metric));
        json_object_set_new(ev, "best", json_real(!strcmp(c->metric, "loss") ? ess->best : -ess->best));
        json_object_set_new(ev, "best_step", json_integer(ess->best_step));
        if (r->test.n) {
            json_object_set_new(ev, "test_accuracy", json_real(te.acc));
            json_object_set_new(ev, "test_macro_f1", json_real(te.f1));
            json_object_set_new(ev, "test_accuracy_ci95", json_pack("[ff]", te.acc_ci[0], te.acc_ci[1]));
            json_object_set_new(ev, "test_macro_f1_ci95", json_pack("[ff]", te.f1_ci[0], te.f1_ci[1]));
        }
        json_object_set_new(ev, "trainable", json_integer((json_int_t)res->params));
        json_object_set_new(ev, "seconds", json_real(lf_now() - t0));
        json_object_set_new(ev, "seconds_per_step", json_real(step > 0 ? step_seconds / step : NAN));
        lf_report_event(r->rep, ev);
    }
out:
    if (es && es->free) es->free(es);
    lf_trainer_free(tr);
    lf_seqcls_free(r->th);
    lf_distill_free(r->dist); /* after the trainer: its terms use the teacher */
    lf_batch_source_free(src);
    lf_report_close(r->rep);
    lf_seqcls_free(r->h);
    lf_lora_free(r->lora);
    lf_cls_dataset_free(&r->train);
    lf_cls_dataset_free(&r->val);
    lf_cls_dataset_free(&r->test);
    lf_model_free(r->m);
    lf_tokenizer_free(r->tok);
    return st;
}
