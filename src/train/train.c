/* lmforge train: a configured run driven through the trainer. The driver owns what a run adds
 * around the steps: the data shards and tokenizer, evaluation schedule and best/, atomic
 * checkpoints (a step folder written as *.tmp and renamed, then the 'latest' pointer replaced)
 * that resume bit for bit, the NaN guard, interruption, and the reporter (terminal, metrics.jsonl,
 * TensorBoard). */
#include "lmforge/train.h"
#include "lmforge/augment.h"
#include "lmforge/ckpt.h"
#include "lmforge/data.h"
#include "lmforge/distill.h"
#include "lmforge/lora.h"
#include "lmforge/multitask.h"
#include "lmforge/optim.h"
#include "lmforge/prune.h"
#include "lmforge/report.h"
#include "lmforge/tokenizer.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const lf_train_config *c;
    lf_model *m;
    lf_trainer *tr;
    lf_tokenizer *tok;
    lf_shard *train, *val;
    lf_batch_source *src;
    lf_hook *es; /* early stopping: owned by the trainer */
    lf_lora *lora; /* LoRA on: checkpoints hold the adapter folder, not the model */
    lf_distill *dist; /* a teacher (distillation): reloaded from the config on resume */
    lf_distill_cache *cache; /* or a cache of its top-k log-probabilities */
    lf_mtl *mtl; /* multi-task: the tasks' shards, mixture source, weighting and per-task validation */
    lf_reporter *rep;
    int bad, skipped;
    float val_start, last_val;
    double t_start, elapsed_before;
} run;

/* ---------------------------------------------------------------- checkpoints */

static lf_status save_model_dir(run *r, const char *dir) {
    lf_status st = lf_model_check_finite(r->m, dir); /* a NaN checkpoint must never become 'latest' or best/ */
    if (!st) st = r->lora ? lf_lora_save(r->lora, dir, r->c->init) : lf_hf_save(r->m, dir);
    if (!st && r->tok) {
        char p[LF_PATH * 3];
        snprintf(p, sizeof p, "%s/tokenizer.json", dir);
        if (lf_tokenizer_kind(r->tok) == LF_TOK_BYTELEVEL) st = lf_tokenizer_save_json(r->tok, p);
    }
    return st;
}

static lf_status write_json_file(const char *path, json_t *j) {
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    if (!s) return LF_ERR_NOMEM;
    lf_status st = lf_write_file_atomic(path, s, strlen(s));
    free(s);
    return st;
}

/* the driver's members of trainer_state.json */
static char *run_state_json(run *r) {
    lf_early_stopping *es = lf_hook_early_stopping_state(r->es);
    json_t *j = json_object();
    json_object_set_new(j, "best_val_loss", isfinite(es->best) ? json_real(es->best) : json_null());
    json_object_set_new(j, "best_step", json_integer(es->best_step));
    json_object_set_new(j, "val_loss_start", isfinite(r->val_start) ? json_real(r->val_start) : json_null());
    json_object_set_new(j, "evals_since_best", json_integer(es->evals_since_best));
    json_object_set_new(j, "bad_steps", json_integer(r->bad));
    json_object_set_new(j, "skipped_steps", json_integer(r->skipped));
    json_object_set_new(j, "elapsed_s", json_real(r->elapsed_before + lf_now() - r->t_start));
    char *cfg = lf_train_config_json(r->c);
    json_object_set_new(j, "config", json_loads(cfg, 0, NULL));
    free(cfg);
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(j);
    return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void prune_checkpoints(run *r, const char *keep) {
    char dir[LF_PATH + 32];
    snprintf(dir, sizeof dir, "%s/checkpoints", r->c->run_dir);
    DIR *d = opendir(dir);
    if (!d) return;
    char *names[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096)
        if (!strncmp(e->d_name, "step-", 5) && !strchr(e->d_name, '.')) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        if (i < n - r->c->keep_checkpoints && !strstr(keep, names[i])) {
            char p[LF_PATH * 3];
            snprintf(p, sizeof p, "%s/%s", dir, names[i]);
            lf_rm_rf(p);
        }
        free(names[i]);
    }
}

static lf_status save_checkpoint(run *r, char *out_path, size_t out_len) {
    char dir[LF_PATH + 64], tmp[LF_PATH + 80], p[LF_PATH * 3];
    int step = lf_trainer_step_count(r->tr);
    snprintf(dir, sizeof dir, "%s/checkpoints/step-%08d", r->c->run_dir, step);
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    lf_rm_rf(tmp); /* leftovers of a run killed while writing (a stray file of that name too) */
    lf_status st = lf_mkdirs(tmp);
    if (!st) st = save_model_dir(r, tmp);
    if (!st) {
        char *extra = run_state_json(r);
        st = extra ? lf_trainer_save_state(r->tr, tmp, extra) : LF_ERR_NOMEM;
        free(extra);
    }
    if (!st) st = lf_publish_dir(tmp, dir);
    if (!st) { /* the pointer moves last: a kill before this line leaves the previous checkpoint current */
        char rel[64];
        snprintf(rel, sizeof rel, "checkpoints/step-%08d\n", step);
        snprintf(p, sizeof p, "%s/latest", r->c->run_dir);
        st = lf_write_file_atomic(p, rel, strlen(rel));
    }
    if (!st) {
        prune_checkpoints(r, dir);
        if (out_path) snprintf(out_path, out_len, "%s", dir);
        json_t *ev = json_object();
        json_object_set_new(ev, "event", json_string("checkpoint"));
        json_object_set_new(ev, "step", json_integer(step));
        json_object_set_new(ev, "path", json_string(dir));
        lf_report_event(r->rep, ev);
    }
    return st;
}

static lf_status save_best(run *r) {
    char dir[LF_PATH + 16], tmp[LF_PATH + 32], p[LF_PATH * 2];
    lf_early_stopping *es = lf_hook_early_stopping_state(r->es);
    snprintf(dir, sizeof dir, "%s/best", r->c->run_dir);
    snprintf(tmp, sizeof tmp, "%s/best.tmp", r->c->run_dir);
    lf_rm_rf(tmp);
    lf_status st = lf_mkdirs(tmp);
    if (!st) st = save_model_dir(r, tmp);
    if (!st) {
        json_t *j = json_object();
        json_object_set_new(j, "step", json_integer(lf_trainer_step_count(r->tr)));
        json_object_set_new(j, "val_loss", json_real(es->best));
        json_object_set_new(j, "val_perplexity", json_real(exp(es->best)));
        snprintf(p, sizeof p, "%s/best.json", tmp);
        st = write_json_file(p, j);
        json_decref(j);
    }
    if (!st) st = lf_publish_dir(tmp, dir);
    return st;
}

/* a run folder (its 'latest') or a checkpoint folder */
static lf_status resolve_checkpoint(const char *path, char *out, size_t n) {
    char p[LF_PATH * 3];
    snprintf(p, sizeof p, "%s/trainer_state.json", path);
    if (lf_path_exists(p)) {
        snprintf(out, n, "%s", path);
        return LF_OK;
    }
    snprintf(p, sizeof p, "%s/latest", path);
    char *rel = lf_path_exists(p) ? lf_read_file(p, NULL) : NULL;
    if (!rel) {
        lf_set_error("%s: neither a checkpoint (no trainer_state.json) nor a run folder with a 'latest' checkpoint", path);
        return LF_ERR_NOTFOUND;
    }
    rel[strcspn(rel, "\n")] = 0;
    if (strncmp(rel, "checkpoints/step-", 17) != 0 || strstr(rel, "..") || strchr(rel + 17, '/')) {
        lf_set_error("%s/latest: '%.80s' is not a checkpoint name (checkpoints/step-N)", path, rel);
        free(rel);
        return LF_ERR_FORMAT;
    }
    snprintf(out, n, "%s/%s", path, rel);
    free(rel);
    snprintf(p, sizeof p, "%s/trainer_state.json", out);
    if (!lf_path_exists(p)) {
        lf_set_error("%s: 'latest' names %s, which has no trainer_state.json", path, out);
        return LF_ERR_NOTFOUND;
    }
    return LF_OK;
}

/* the driver's members of a checkpoint's trainer_state.json, checked */
static lf_status restore_run_state(run *r, const char *ck, const char *txt) {
    json_t *j = json_loads(txt, 0, NULL);
    lf_early_stopping *es = lf_hook_early_stopping_state(r->es);
    json_t *bv = json_object_get(j, "best_val_loss"), *vs = json_object_get(j, "val_loss_start");
    json_t *bs = json_object_get(j, "best_step"), *eb = json_object_get(j, "evals_since_best");
    json_t *bad = json_object_get(j, "bad_steps"), *sk = json_object_get(j, "skipped_steps"), *el = json_object_get(j, "elapsed_s");
    int step = lf_trainer_step_count(r->tr);
    lf_status st = LF_OK;
    if (!j || (bv && !json_is_null(bv) && !(json_is_number(bv) && isfinite(json_number_value(bv)))) ||
        !json_is_integer(bs) || json_integer_value(bs) < 0 || json_integer_value(bs) > step ||
        !json_is_integer(eb) || json_integer_value(eb) < 0 || !json_is_integer(bad) || json_integer_value(bad) < 0 ||
        !json_is_integer(sk) || json_integer_value(sk) < 0 || json_integer_value(sk) > step ||
        !json_is_number(el) || !(json_number_value(el) >= 0)) {
        lf_set_error("%s/trainer_state.json: best_val_loss, best_step, evals_since_best, bad_steps, skipped_steps or "
                     "elapsed_s is missing or out of range: the checkpoint is damaged", ck);
        st = LF_ERR_FORMAT;
    } else {
        es->best = json_is_number(bv) ? json_number_value(bv) : INFINITY;
        es->best_step = (int)json_integer_value(bs);
        es->evals_since_best = (int)json_integer_value(eb);
        r->val_start = json_is_number(vs) ? (float)json_number_value(vs) : NAN;
        r->bad = (int)json_integer_value(bad);
        r->skipped = (int)json_integer_value(sk);
        r->elapsed_before = json_number_value(el);
    }
    json_decref(j);
    return st;
}

/* ---------------------------------------------------------------- setup */

static lf_status open_model(run *r, const char *resume_ck) {
    const lf_train_config *c = r->c;
    lf_status st;
    int lora = c->lora_r > 0 || c->adapter[0];
    if (resume_ck && !lora) st = lf_hf_load(&r->m, resume_ck);
    else if (c->init[0]) st = lf_model_load(&r->m, c->init); /* LoRA resumes over its base: the checkpoint holds the adapter */
    else if (r->dist && c->student_init[0]) /* DistilBERT: the teacher's every k-th block */
        st = lf_distill_student_every_k(&r->m, lf_distill_teacher(r->dist), atoi(c->student_init + 8));
    else {
        lf_config mc;
        lf_config_defaults(&mc, !strcmp(c->arch, "gpt2") ? LF_ARCH_GPT2 : LF_ARCH_LLAMA);
        mc.vocab_size = lf_tokenizer_vocab_size(r->tok);
        mc.d_model = c->d_model;
        mc.n_layer = c->n_layer;
        mc.n_head = c->n_head;
        mc.n_kv_head = mc.arch == LF_ARCH_GPT2 ? c->n_head : c->n_kv_head;
        mc.head_dim = c->n_head > 0 ? c->d_model / c->n_head : 0;
        mc.d_ff = c->d_ff;
        mc.max_seq = c->context;
        mc.norm_eps = c->norm_eps;
        mc.rope_theta = c->rope_theta;
        mc.tie_embeddings = c->tie_embeddings;
        mc.bos_id = lf_tokenizer_bos(r->tok);
        mc.eos_id = lf_tokenizer_eos(r->tok);
        st = lf_model_init(&r->m, &mc);
        if (!st) lf_model_init_weights(r->m, (uint64_t)c->seed);
    }
    if (st) return st;
    lf_config *mc = (lf_config *)lf_model_config(r->m); /* regularisation comes from the run's config */
    float all = c->dropout;
    if (all >= 0) mc->dropout_embd = mc->dropout_attn = mc->dropout_resid = all;
    if (c->dropout_embd >= 0) mc->dropout_embd = c->dropout_embd;
    if (c->dropout_attn >= 0) mc->dropout_attn = c->dropout_attn;
    if (c->dropout_resid >= 0) mc->dropout_resid = c->dropout_resid;
    if (mc->vocab_size < lf_tokenizer_vocab_size(r->tok)) {
        lf_set_error("the model's vocabulary (%d) is smaller than the tokenizer's (%d): wrong tokenizer for this model?",
                     mc->vocab_size, lf_tokenizer_vocab_size(r->tok));
        return LF_ERR_ARG;
    }
    if (c->context > mc->max_seq) {
        lf_set_error("context %d exceeds the model's %d positions", c->context, mc->max_seq);
        return LF_ERR_ARG;
    }
    int gpt2 = mc->arch == LF_ARCH_GPT2;
    if (c->freeze_embeddings) {
        st = lf_model_set_trainable(r->m, gpt2 ? "transformer.wte." : "model.embed_tokens.", 0, NULL);
        if (!st && gpt2) st = lf_model_set_trainable(r->m, "transformer.wpe.", 0, NULL);
        if (st) return st;
    }
    if (c->freeze_layers > mc->n_layer) {
        lf_set_error("freeze_layers %d exceeds the model's %d blocks", c->freeze_layers, mc->n_layer);
        return LF_ERR_ARG;
    }
    for (int l = 0; l < c->freeze_layers && !st; l++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, gpt2 ? "transformer.h.%d." : "model.layers.%d.", l);
        st = lf_model_set_trainable(r->m, prefix, 0, NULL);
    }
    if (!st && lora) { /* the base freezes; on resume the trainer state then restores the adapter's values */
        st = lf_lora_from_config(&r->lora, r->m, c);
    }
    /* a pruned init keeps its zeros; a resumed gradual run gets its masks back from the checkpoint's */
    if (!st && (c->keep_sparsity || c->prune_schedule[0])) st = lf_prune_mask_zeros(r->m, NULL);
    if (!st && r->dist) st = lf_distill_attach(r->dist, r->m); /* projections before the trainer: resume restores them */
    return st;
}

static lf_status open_teacher(run *r) {
    const lf_train_config *c = r->c;
    lf_distill_opts o;
    lf_distill_opts_default(&o);
    o.kind = (lf_distill_kind)lf_distill_kind_parse(c->loss);
    o.temperature = c->temperature;
    o.beta = c->beta;
    o.hidden = (lf_hidden_kind)lf_hidden_kind_parse(c->hidden_loss);
    o.seed = (uint64_t)c->seed;
    lf_status st = lf_distill_parse_pairs(&o, c->hidden_layers);
    if (!st) st = lf_distill_open(&r->dist, c->teacher, r->tok, &o);
    return st;
}

static lf_status open_tokenizer(run *r, const char *resume_ck) {
    const lf_train_config *c = r->c;
    char p[LF_PATH * 3];
    if (c->tokenizer[0]) return lf_tokenizer_load(&r->tok, c->tokenizer);
    const char *cands[] = {resume_ck, c->data, c->init[0] ? c->init : NULL};
    for (int i = 0; i < 3; i++) {
        if (!cands[i]) continue;
        snprintf(p, sizeof p, "%s/tokenizer.json", cands[i]);
        if (lf_path_exists(p)) return lf_tokenizer_load(&r->tok, p);
    }
    snprintf(p, sizeof p, "%s/meta.json", c->data); /* the tokenizer prepare was given */
    json_t *j = json_load_file(p, 0, NULL);
    const char *t = j ? json_string_value(json_object_get(j, "tokenizer")) : NULL;
    lf_status st;
    if (t) st = lf_tokenizer_load(&r->tok, t);
    else {
        lf_set_error("no tokenizer: set 'tokenizer', or prepare the data with a tokenizer.json");
        st = LF_ERR_NOTFOUND;
    }
    json_decref(j);
    return st;
}

/* mean validation loss over up to eval_batches sequential batches from the start of the split */
static lf_status evaluate(run *r, double *vl, int *stop) {
    const lf_train_config *c = r->c;
    if (r->mtl) { /* every task's metrics, and the criterion early stopping and best/ follow */
        lf_status st = lf_mtl_evaluate(r->mtl, r->m, r->rep, lf_trainer_step_count(r->tr), vl);
        if (!st) st = lf_trainer_eval_hooks(r->tr, *vl, stop);
        return st;
    }
    size_t windows = (lf_shard_num_tokens(r->val) - 1) / (size_t)c->context;
    int B = c->batch_size, batches = c->eval_batches;
    if ((size_t)B * batches > windows) batches = (int)(windows / (size_t)B);
    if (batches == 0) {
        B = (int)windows;
        batches = 1;
    }
    lf_loader *l;
    lf_batch_source *src;
    lf_status st = lf_loader_init(&l, r->val, B, c->context, 0, 1);
    if (st) return st;
    if ((st = lf_loader_source(&src, l, 1))) {
        lf_loader_free(l);
        return st;
    }
    st = lf_trainer_evaluate(r->tr, src, B, batches, vl, stop);
    lf_batch_source_free(src);
    return st;
}

static void record_eval(run *r, int step, double vl) {
    lf_early_stopping *es = lf_hook_early_stopping_state(r->es);
    r->last_val = (float)vl;
    json_t *ev = json_object();
    json_object_set_new(ev, "event", json_string("eval"));
    json_object_set_new(ev, "step", json_integer(step));
    /* multi-task: early stopping may follow a task's accuracy (as minus it); the event's loss is
     * still the tasks' mean loss, and the criterion goes beside it under its own name */
    double loss = r->mtl ? lf_mtl_mean_loss(r->mtl) : vl;
    json_object_set_new(ev, "val_loss", isfinite(loss) ? json_real((float)loss) : json_null());
    json_object_set_new(ev, "val_perplexity", isfinite(loss) ? json_real(exp((float)loss)) : json_null());
    if (r->mtl) {
        json_object_set_new(ev, "criterion", json_real((float)vl));
        json_object_set_new(ev, "criterion_metric", json_string(r->c->early_stop_metric[0] ? r->c->early_stop_metric : "mean"));
    }
    json_object_set_new(ev, r->mtl ? "best_criterion" : "best_val_loss", isfinite(es->best) ? json_real((float)es->best) : json_null());
    lf_report_event(r->rep, ev);
    if (isfinite(loss)) {
        lf_report_scalar(r->rep, "val/loss", step, (float)loss);
        lf_report_scalar(r->rep, "val/perplexity", step, expf((float)loss));
    }
    lf_report_flush(r->rep);
}

static void say_eval(run *r, int step, double vl, const char *note) {
    if (r->mtl) lf_report_say(r->rep, "step %d: multi-task criterion (%s) %.4f%s\n", step, r->c->early_stop_metric, (float)vl, note);
    else lf_report_say(r->rep, "step %d: validation loss %.4f, perplexity %.2f%s\n", step, (float)vl, exp((float)vl), note);
}

static size_t train_tokens(run *r) { return r->mtl ? lf_mtl_train_tokens(r->mtl) : lf_shard_num_tokens(r->train); }

static const char *reason_name(lf_stop_reason s) {
    static const char *n[] = {"done", "early_stopping", "time_limit", "interrupted", "non_finite"};
    return n[s];
}

static lf_status make_trainer(run *r, lf_hook **extra, int n_extra) {
    const lf_train_config *c = r->c;
    lf_trainer_opts o = {0};
    o.ctx = (lf_ctx){c->threads, (uint64_t)c->seed};
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
    lf_status st = lf_trainer_init(&r->tr, r->m, r->src, &o);
    /* with a teacher: the logit term first (it runs the teacher with logits; the hidden term
     * reuses that run), cross-entropy last among the logit terms (the last one writes the row with
     * its fused kernel, the others add to it) */
    if (!st && r->dist) st = lf_trainer_add_loss(r->tr, lf_distill_logit_term(r->dist, c->alpha));
    if (!st && r->cache) st = lf_trainer_add_loss(r->tr, lf_distill_cache_term(r->cache, c->alpha));
    if (!st && r->mtl) st = lf_mtl_attach_trainer(r->mtl, r->tr); /* its per-task loss replaces cross-entropy */
    lf_loss_term *ce = st || r->mtl ? NULL : lf_loss_ce_new(c->label_smoothing);
    if (ce && (r->dist || r->cache)) ce->weight = 1.0f - c->alpha;
    if (!st && !r->mtl) st = lf_trainer_add_loss(r->tr, ce);
    if (!st && r->dist && c->hidden_layers[0]) st = lf_trainer_add_loss(r->tr, lf_distill_hidden_term(r->dist, c->hidden_weight));
    if (!st) {
        r->es = lf_hook_early_stopping(c->patience, c->min_delta);
        st = lf_trainer_add_hook(r->tr, r->es);
    }
    if (!st && c->prune_schedule[0]) {
        lf_prune_schedule ps = {c->prune_initial, c->prune_final, c->prune_start, c->prune_end ? c->prune_end : c->max_steps,
                                c->prune_every, LF_PRUNE_MAGNITUDE};
        lf_hook *h;
        lf_prune_method_parse(c->prune_schedule, &ps.method);
        st = lf_hook_prune_schedule(&h, r->m, &ps);
        if (!st) st = lf_trainer_add_hook(r->tr, h);
    }
    for (int i = 0; !st && i < n_extra; i++) st = lf_trainer_add_hook(r->tr, extra[i]);
    return st;
}

lf_status lf_train(const lf_train_config *c, const char *resume, volatile sig_atomic_t *stop, lf_train_result *res) {
    return lf_train_with_hooks(c, resume, stop, NULL, 0, res);
}

lf_status lf_train_with_hooks(const lf_train_config *c, const char *resume, volatile sig_atomic_t *stop, lf_hook **hooks,
                              int n_hooks, lf_train_result *res) {
    memset(res, 0, sizeof *res);
    res->val_loss_start = res->val_loss_end = res->best_val_loss = NAN;
    lf_status st = lf_train_config_check(c);
    if (st) return st;
    lf_ctx ctx = {c->threads, (uint64_t)c->seed};
    lf_ctx_apply(&ctx);
    run R = {0}, *r = &R;
    r->c = c;
    r->val_start = r->last_val = NAN;
    r->t_start = lf_now();
    char ck[LF_PATH * 2] = "", p[LF_PATH * 3];
    if (resume) st = resolve_checkpoint(resume, ck, sizeof ck);
    if (!st) st = lf_mkdirs(c->run_dir);
    if (!st) st = open_tokenizer(r, resume ? ck : NULL);
    if (!st && c->teacher[0]) st = open_teacher(r);
    if (!st) st = open_model(r, resume ? ck : NULL);
    if (!st && c->teacher_cache[0])
        st = lf_distill_cache_open(&r->cache, c->teacher_cache, lf_tokenizer_fingerprint(r->tok), lf_model_config(r->m)->vocab_size,
                                   c->context, c->temperature);
    uint64_t fp = r->tok ? lf_tokenizer_fingerprint(r->tok) : 0;
    if (!st && c->tasks[0]) { /* multi-task: the tasks' own shards and the mixture instead of data/ */
        st = lf_mtl_open(&r->mtl, c, r->tok);
        if (!st) st = lf_mtl_attach_model(r->mtl, r->m);
        if (!st) r->src = lf_mtl_source(r->mtl);
    }
    if (!st && !r->mtl) {
        snprintf(p, sizeof p, "%s/train.bin", c->data);
        st = lf_shard_open(&r->train, p, fp);
    }
    if (!st && !r->mtl) {
        snprintf(p, sizeof p, "%s/val.bin", c->data);
        if (lf_path_exists(p)) st = lf_shard_open(&r->val, p, fp);
        if (!st && r->val && lf_shard_num_tokens(r->val) < (size_t)c->context + 1) { /* too small to evaluate */
            lf_shard_close(r->val);
            r->val = NULL;
        }
    }
    if (!st && r->train) st = lf_shard_check_vocab(r->train, lf_model_config(r->m)->vocab_size);
    if (!st && r->val) st = lf_shard_check_vocab(r->val, lf_model_config(r->m)->vocab_size);
    if (!st && !r->mtl) {
        lf_loader *l;
        st = lf_loader_init(&l, r->train, c->batch_size, c->context, (uint64_t)c->seed, 0);
        if (!st && (st = lf_loader_source(&r->src, l, 1))) lf_loader_free(l);
    }
    if (!st && (c->aug_mask > 0 || c->aug_span > 0 || c->aug_shuffle > 1)) { /* online augmentation */
        lf_noise_config nc = {c->aug_mask, c->aug_span, c->aug_shuffle, c->aug_mask_id, (uint64_t)c->seed};
        lf_batch_source *w = NULL;
        if (!(st = lf_noise_source(&w, r->src, &nc))) r->src = w;
    }
    if (!st && c->aug_mask_id >= lf_model_config(r->m)->vocab_size) {
        lf_set_error("config: aug_mask_id %d is not a token of the model (vocabulary %d)", c->aug_mask_id,
                     lf_model_config(r->m)->vocab_size);
        st = LF_ERR_ARG;
    }
    if (!st && c->on_policy > 0) { /* GKD: some batches continued by the student itself */
        lf_batch_source *inner = r->src;
        st = lf_distill_on_policy_source(&r->src, inner, r->m, c->on_policy, c->on_policy_prompt ? c->on_policy_prompt : c->context / 2,
                                         c->sample_temperature, (uint64_t)c->seed);
        if (st) r->src = inner;
    }
    if (!st) st = make_trainer(r, hooks, n_hooks);
    if (!st && resume) {
        char *txt = NULL;
        st = lf_trainer_load_state(r->tr, ck, &txt);
        if (!st) st = restore_run_state(r, ck, txt);
        free(txt);
    }
    snprintf(p, sizeof p, "%s/metrics.jsonl", c->run_dir);
    if (!st && resume) st = lf_metrics_trim(p, lf_trainer_step_count(r->tr));
    if (!st) {
        lf_report_opts ro = {p, c->tensorboard[0] ? c->tensorboard : NULL, c->quiet, c->json};
        st = lf_report_open(&r->rep, &ro);
    }
    if (!st) {
        char *cj = lf_train_config_json(c);
        snprintf(p, sizeof p, "%s/train_config.json", c->run_dir);
        st = cj ? lf_write_file_atomic(p, cj, strlen(cj)) : LF_ERR_NOMEM;
        free(cj);
    }
    if (st) goto out;

    lf_early_stopping *es = lf_hook_early_stopping_state(r->es);
    size_t BT = (size_t)c->batch_size * c->context;
    int step = lf_trainer_step_count(r->tr);
    res->params = lf_model_num_scalars(r->m);
    res->start_step = step;
    {
        json_t *ev = json_object();
        json_object_set_new(ev, "event", json_string(resume ? "resume" : "start"));
        json_object_set_new(ev, "step", json_integer(step));
        json_object_set_new(ev, "params", json_integer((json_int_t)res->params));
        json_object_set_new(ev, "train_tokens", json_integer((json_int_t)train_tokens(r)));
        if (r->mtl) {
            json_t *tk = json_array();
            for (int t = 0; t < lf_mtl_num_tasks(r->mtl); t++) {
                const lf_mtl_task_spec *sp = lf_mtl_task(r->mtl, t);
                json_t *o = json_object();
                json_object_set_new(o, "name", json_string(sp->name));
                json_object_set_new(o, "rate", json_real(lf_mtl_rate(r->mtl, t)));
                json_object_set_new(o, "weight", json_real(sp->weight));
                json_array_append_new(tk, o);
            }
            json_object_set_new(ev, "tasks", tk);
        }
        if (resume) json_object_set_new(ev, "checkpoint", json_string(ck));
        lf_report_event(r->rep, ev);
    }
    lf_report_say(r->rep, "%s %s: %.2fM parameters, %zu training tokens, batch %d x %d x %d, %d steps%s%s\n",
                  resume ? "resuming" : "training", c->run_dir, res->params / 1e6, train_tokens(r),
                  c->batch_size, c->context, c->grad_accum, c->max_steps, resume ? " from " : "", resume ? ck : "");
    if (r->mtl)
        for (int t = 0; t < lf_mtl_num_tasks(r->mtl); t++)
            lf_report_say(r->rep, "  task %-12s %-10s rate %.3f  weight %g  (%s)\n", lf_mtl_task(r->mtl, t)->name,
                          (const char *[]){"lm", "completion", "classify"}[lf_mtl_task(r->mtl, t)->kind], lf_mtl_rate(r->mtl, t),
                          lf_mtl_task(r->mtl, t)->weight, c->task_weighting);
    int has_val = r->val || r->mtl;
    if (!resume && has_val) {
        double vl;
        int hstop;
        st = evaluate(r, &vl, &hstop); /* the starting point: it never counts as an improvement */
        if (st) goto out;
        es->best = INFINITY;
        es->best_step = 0;
        es->evals_since_best = 0;
        r->val_start = (float)vl;
        say_eval(r, step, vl, "");
        record_eval(r, step, vl);
    }
    res->val_loss_start = r->val_start;

    lf_stop_reason reason = LF_STOP_DONE;
    int steps_here = 0, last_eval_step = resume ? -1 : 0, last_ck_step = resume ? step : -1;
    double t_loop = lf_now(), t_train = 0; /* t_train: time in steps only, not evaluation or checkpoints */
    float loss_ema = NAN;
    while (lf_trainer_step_count(r->tr) < c->max_steps) {
        lf_step_info s;
        int hstop;
        st = lf_trainer_step(r->tr, &s, &hstop);
        if (st) break;
        step = s.step;
        steps_here++;
        t_train += s.seconds;
        if (!s.finite) {
            r->bad++;
            r->skipped++;
            json_t *ev = json_object();
            json_object_set_new(ev, "event", json_string("skipped_step"));
            json_object_set_new(ev, "step", json_integer(step));
            json_object_set_new(ev, "in_a_row", json_integer(r->bad));
            lf_report_event(r->rep, ev);
            if (r->bad >= c->max_bad_steps) {
                reason = LF_STOP_NAN;
                break;
            }
        } else {
            r->bad = 0;
            if (steps_here == 1) res->first_loss = s.loss;
            res->last_loss = s.loss;
            loss_ema = isfinite(loss_ema) ? 0.9f * loss_ema + 0.1f * s.loss : s.loss;
        }
        double el = lf_now() - t_loop, tps = (double)steps_here * BT * c->grad_accum / (t_train > 0 ? t_train : 1e-9);
        if (step % c->log_every == 0 || step == c->max_steps) {
            json_t *ev = json_object();
            json_object_set_new(ev, "event", json_string("train"));
            json_object_set_new(ev, "step", json_integer(step));
            json_object_set_new(ev, "loss", json_real(s.loss));
            json_object_set_new(ev, "lr", json_real(s.lr));
            json_object_set_new(ev, "grad_norm", json_real(s.grad_norm));
            json_object_set_new(ev, "tokens_per_s", json_real(tps));
            json_object_set_new(ev, "elapsed_s", json_real(r->elapsed_before + lf_now() - r->t_start));
            if (r->mtl) lf_mtl_report_train(r->mtl, r->rep, step, ev);
            lf_report_event(r->rep, ev);
            lf_report_scalar(r->rep, "train/loss", step, s.loss);
            lf_report_scalar(r->rep, "train/lr", step, s.lr);
            lf_report_scalar(r->rep, "train/grad_norm", step, s.grad_norm);
            lf_report_scalar(r->rep, "train/tokens_per_s", step, (float)tps);
            if (!lf_report_is_tty(r->rep))
                lf_report_say(r->rep, "step %d/%d  loss %.4f  lr %.2e  grad_norm %.3f  %.0f tok/s\n", step, c->max_steps,
                              s.loss, s.lr, s.grad_norm, tps);
        }
        double eta = (c->max_steps - step) * (el / steps_here);
        lf_report_progress(r->rep, "step %d/%d  loss %.4f  lr %.2e  %.0f tok/s  ETA %dm%02ds", step, c->max_steps, loss_ema,
                           s.lr, tps, (int)eta / 60, (int)eta % 60);
        if (hstop) { /* a hook other than early stopping asked to stop */
            reason = LF_STOP_EARLY;
            break;
        }
        if (has_val && c->eval_every > 0 && step % c->eval_every == 0) {
            double vl;
            st = evaluate(r, &vl, &hstop);
            if (st) break;
            last_eval_step = step;
            if (es->improved && (st = save_best(r))) break;
            say_eval(r, step, vl, es->improved ? " (best so far, saved to best/)" : "");
            record_eval(r, step, vl);
            if (hstop && !(c->patience > 0 && es->evals_since_best >= c->patience)) {
                reason = LF_STOP_EARLY; /* another hook (a tuner's pruner) stopped the run: it says why */
                break;
            }
            if (hstop) {
                reason = LF_STOP_EARLY;
                lf_report_say(r->rep, "early stopping: no improvement of at least %g in %d evaluations (best %.4f at step %d)\n",
                              c->min_delta, c->patience, (float)es->best, es->best_step);
                break;
            }
        }
        if (c->checkpoint_every > 0 && step % c->checkpoint_every == 0 && step < c->max_steps) {
            st = save_checkpoint(r, res->last_checkpoint, sizeof res->last_checkpoint);
            if (st) break;
            last_ck_step = step;
        }
        if (stop && *stop) {
            reason = LF_STOP_SIGNAL;
            break;
        }
        if ((c->stop_after_steps > 0 && steps_here >= c->stop_after_steps) ||
            (c->max_minutes > 0 && lf_now() - r->t_start >= 60.0 * c->max_minutes)) {
            reason = LF_STOP_TIME;
            break;
        }
    }
    step = lf_trainer_step_count(r->tr);
    lf_report_progress_end(r->rep);
    /* a finished run gets a final evaluation; a paused or interrupted one does not, so that its
     * early-stopping state stays what an uninterrupted run would have */
    int finished = reason == LF_STOP_DONE || reason == LF_STOP_EARLY || reason == LF_STOP_NAN;
    if (!st && has_val && last_eval_step != step && finished) {
        double vl;
        int hstop;
        st = evaluate(r, &vl, &hstop);
        if (!st && es->improved) st = save_best(r);
        if (!st) {
            say_eval(r, step, vl, "");
            record_eval(r, step, vl);
            res->val_loss_end = (float)vl;
        }
    } else if (!st) {
        res->val_loss_end = r->last_val; /* NAN when nothing was evaluated in this invocation */
    }
    if (!st && last_ck_step != step) st = save_checkpoint(r, res->last_checkpoint, sizeof res->last_checkpoint);
    else if (!st) snprintf(res->last_checkpoint, sizeof res->last_checkpoint, "%s/checkpoints/step-%08d", c->run_dir, step);
    if (!st && !has_val) st = save_best(r); /* without validation data the last weights are the best we know */
    res->steps = step;
    res->skipped_steps = r->skipped;
    res->reason = reason;
    res->best_val_loss = isfinite(es->best) ? (float)es->best : NAN;
    res->best_step = es->best_step;
    res->seconds = lf_now() - t_loop;
    res->tokens_per_s = steps_here ? (double)steps_here * BT * c->grad_accum / (t_train > 0 ? t_train : 1e-9) : 0;
    snprintf(res->best_dir, sizeof res->best_dir, "%s/best", c->run_dir);
    if (!st) {
        json_t *ev = json_object();
        json_object_set_new(ev, "event", json_string("stop"));
        json_object_set_new(ev, "step", json_integer(step));
        json_object_set_new(ev, "reason", json_string(reason_name(reason)));
        if (r->mtl) { /* the run summary: every task's metrics at its last evaluation */
            json_t *tk = json_object();
            for (int t = 0; t < lf_mtl_num_tasks(r->mtl); t++) {
                const lf_mtl_metrics *mm = lf_mtl_last_metrics(r->mtl, t);
                json_t *o = json_object();
                if (isfinite(mm->loss)) json_object_set_new(o, "loss", json_real(mm->loss));
                if (isfinite(mm->ppl)) json_object_set_new(o, "perplexity", json_real(mm->ppl));
                if (isfinite(mm->accuracy)) json_object_set_new(o, "accuracy", json_real(mm->accuracy));
                if (isfinite(mm->macro_f1)) json_object_set_new(o, "macro_f1", json_real(mm->macro_f1));
                json_object_set_new(tk, lf_mtl_task(r->mtl, t)->name, o);
            }
            json_object_set_new(ev, "tasks", tk);
        }
        json_object_set_new(ev, "checkpoint", json_string(res->last_checkpoint));
        lf_report_event(r->rep, ev);
    }
    if (!st && reason == LF_STOP_NAN) {
        lf_set_error("stopped after %d non-finite steps in a row at step %d (updates were skipped; the checkpoint %s "
                     "holds the last finite weights): lower lr or enable grad_clip", r->bad, step, res->last_checkpoint);
        st = LF_ERR_ARG;
    }
out:
    lf_report_close(r->rep);
    lf_trainer_free(r->tr);
    if (!r->mtl) lf_batch_source_free(r->src); /* the mixture is the technique's */
    lf_mtl_free(r->mtl);
    lf_shard_close(r->train);
    lf_shard_close(r->val);
    lf_lora_free(r->lora);
    lf_distill_free(r->dist); /* after the trainer: its terms use the teacher */
    lf_distill_cache_free(r->cache);
    lf_model_free(r->m);
    lf_tokenizer_free(r->tok);
    return st;
}
