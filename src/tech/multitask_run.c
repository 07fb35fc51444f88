/* Multi-task learning inside lmforge train (include/lmforge/multitask.h): opens the tasks of the
 * `tasks` key, builds the mixture source and the weighting (loss term, log-variances, PCGrad),
 * validates each task with its own metrics and reduces them to the early-stopping criterion.
 * Also the per-task loss of a shard with task ids, for lmforge eval. */
#include "lmforge/eval.h"
#include "lmforge/multitask.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lf_mtl {
    const lf_train_config *c;
    int n;
    lf_mtl_task_spec spec[LF_MTL_MAX_TASKS];
    lf_shard *train[LF_MTL_MAX_TASKS], *val[LF_MTL_MAX_TASKS];
    lf_ids prefix[LF_MTL_MAX_TASKS];
    lf_mtl_source_task st[LF_MTL_MAX_TASKS];
    lf_cls_dataset cls[LF_MTL_MAX_TASKS];
    double p[LF_MTL_MAX_TASKS];
    lf_mtl_metrics met[LF_MTL_MAX_TASKS];
    lf_batch_source *src;
    lf_mtl_weighting weighting;
    lf_param *log_vars;
    lf_loss_term *term; /* owned by the trainer */
    const lf_tokenizer *tok;
    int es_task;        /* -1: the weighted mean of the losses */
    double mean_loss;   /* of the last evaluation */
    char es_metric[16];
};

static lf_status meta_tasks(const char *dir, json_t **tasks) {
    char p[LF_PATH + 16];
    snprintf(p, sizeof p, "%s/meta.json", dir);
    *tasks = NULL;
    if (!lf_path_exists(p)) return LF_OK;
    json_error_t e;
    json_t *j = json_load_file(p, 0, &e);
    if (!j) {
        lf_set_error("%s: %s (a folder made by lmforge prepare?)", p, e.text);
        return LF_ERR_FORMAT;
    }
    json_t *t = json_object_get(j, "tasks");
    if (json_is_array(t)) *tasks = json_incref(t);
    json_decref(j);
    return LF_OK;
}

/* "auto": one completion task per task name of data's meta.json */
static lf_status auto_tasks(lf_mtl *mt) {
    json_t *names;
    lf_status st = meta_tasks(mt->c->data, &names);
    if (st) return st;
    size_t n = names ? json_array_size(names) : 0;
    if (n == 0 || n > LF_MTL_MAX_TASKS) {
        lf_set_error("config: tasks = auto needs data (%s) prepared from JSONL records with a \"task\" field (1..%d tasks); "
                     "it has %zu", mt->c->data, LF_MTL_MAX_TASKS, n);
        json_decref(names);
        return LF_ERR_ARG;
    }
    for (size_t i = 0; i < n; i++) {
        lf_mtl_task_spec *s = &mt->spec[i];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", json_string_value(json_array_get(names, i)) ? json_string_value(json_array_get(names, i)) : "?");
        snprintf(s->data, sizeof s->data, "%s", mt->c->data);
        s->kind = LF_MTL_COMPLETION;
        s->weight = s->rate = 1.0f;
        strcpy(s->metric, "loss");
    }
    mt->n = (int)n;
    json_decref(names);
    return LF_OK;
}

static lf_status open_task(lf_mtl *mt, int t) {
    const lf_train_config *c = mt->c;
    lf_mtl_task_spec *s = &mt->spec[t];
    uint64_t fp = lf_tokenizer_fingerprint(mt->tok);
    char p[LF_PATH + 16];
    snprintf(p, sizeof p, "%s/train.bin", s->data);
    lf_status st = lf_shard_open(&mt->train[t], p, fp);
    if (st) return st;
    snprintf(p, sizeof p, "%s/val.bin", s->data);
    if (lf_path_exists(p) && (st = lf_shard_open(&mt->val[t], p, fp))) return st;
    json_t *names;
    if ((st = meta_tasks(s->data, &names))) return st;
    int select = -1;
    for (size_t i = 0; names && i < json_array_size(names); i++)
        if (json_string_value(json_array_get(names, i)) && !strcmp(json_string_value(json_array_get(names, i)), s->name)) select = (int)i;
    json_decref(names);
    if (s->prefix[0] && (st = lf_tokenizer_encode(mt->tok, s->prefix, strlen(s->prefix), 0, &mt->prefix[t]))) return st;
    mt->st[t] = (lf_mtl_source_task){mt->train[t], s->kind, select, mt->prefix[t].ids, (int)mt->prefix[t].n};
    if (mt->val[t] && s->kind != LF_MTL_CLASSIFY) { /* a task with no rows in val.bin is trained but not validated */
        lf_mtl_source_task vt = mt->st[t];
        lf_batch_source *vs = NULL;
        vt.shard = mt->val[t];
        if (lf_mtl_task_source_new(&vs, &vt, c->context) != LF_OK) {
            lf_shard_close(mt->val[t]);
            mt->val[t] = NULL;
        }
        lf_batch_source_free(vs);
    }
    if (s->kind == LF_MTL_CLASSIFY) {
        if (!mt->val[t]) {
            lf_set_error("task '%s': %s has no val.bin to score the classification on", s->name, s->data);
            return LF_ERR_NOTFOUND;
        }
        st = lf_cls_dataset_load_prepared(&mt->cls[t], s->data, "val", c->tokenizer[0] ? c->tokenizer : NULL, (size_t)c->eval_examples);
        if (st) {
            char m[1200];
            snprintf(m, sizeof m, "task '%s': %s", s->name, lf_last_error());
            lf_set_error("%s", m);
        }
    }
    return st;
}

static lf_status parse_es(lf_mtl *mt) {
    const char *e = mt->c->early_stop_metric;
    mt->es_task = -1;
    strcpy(mt->es_metric, "loss");
    if (!e[0] || !strcmp(e, "mean")) return LF_OK;
    char name[128] = "", metric[16] = "";
    const char *colon = strncmp(e, "task:", 5) ? NULL : strchr(e + 5, ':');
    if (strncmp(e, "task:", 5) == 0) {
        size_t len = colon ? (size_t)(colon - (e + 5)) : strlen(e + 5);
        if (len < sizeof name) memcpy(name, e + 5, len), name[len] = 0;
        if (colon) snprintf(metric, sizeof metric, "%s", colon + 1);
        for (int t = 0; t < mt->n; t++)
            if (!strcmp(mt->spec[t].name, name)) mt->es_task = t;
    }
    if (mt->es_task < 0) {
        lf_set_error("config: early_stop_metric '%s' is neither 'mean' nor task:NAME[:METRIC] of a configured task", e);
        return LF_ERR_ARG;
    }
    snprintf(mt->es_metric, sizeof mt->es_metric, "%s", metric[0] ? metric : mt->spec[mt->es_task].metric);
    int cls = mt->spec[mt->es_task].kind == LF_MTL_CLASSIFY;
    if (strcmp(mt->es_metric, "loss") && strcmp(mt->es_metric, "ppl") &&
        !(cls && (!strcmp(mt->es_metric, "accuracy") || !strcmp(mt->es_metric, "acc") || !strcmp(mt->es_metric, "macro_f1")))) {
        lf_set_error("config: early_stop_metric '%s': the metric must be loss or ppl%s", e, cls ? ", accuracy (acc) or macro_f1" : "");
        return LF_ERR_ARG;
    }
    return LF_OK;
}

lf_status lf_mtl_open(lf_mtl **out, const lf_train_config *c, const lf_tokenizer *tok) {
    *out = NULL;
    lf_mtl *mt = calloc(1, sizeof *mt);
    if (!mt) return LF_ERR_NOMEM;
    mt->c = c;
    mt->tok = tok;
    mt->mean_loss = NAN;
    lf_status st = !strcmp(c->tasks, "auto") ? auto_tasks(mt) : lf_mtl_parse_tasks(c->tasks, mt->spec, &mt->n);
    if (!st) {
        if (!strcmp(c->task_weighting, "uncertainty")) mt->weighting = LF_MTL_UNCERTAINTY;
        else if (!strcmp(c->task_weighting, "pcgrad")) mt->weighting = LF_MTL_PCGRAD;
        else mt->weighting = LF_MTL_STATIC;
    }
    for (int t = 0; !st && t < mt->n; t++) st = open_task(mt, t);
    if (!st) st = parse_es(mt);
    if (!st) st = lf_mtl_source_new(&mt->src, mt->st, mt->n, NULL, c->context, (uint64_t)c->seed ^ 0x6d756c7469ull);
    if (!st) {
        size_t nex[LF_MTL_MAX_TASKS];
        float rate[LF_MTL_MAX_TASKS];
        for (int t = 0; t < mt->n; t++) {
            nex[t] = lf_mtl_source_examples(mt->src, t);
            rate[t] = mt->spec[t].rate;
        }
        st = lf_mtl_rates(nex, rate, mt->n, !strcmp(c->mix, "fixed") ? LF_MTL_MIX_FIXED : LF_MTL_MIX_PROPORTIONAL,
                          (size_t)c->mix_cap, c->mix_temperature, mt->p);
        if (!st) st = lf_mtl_source_set_rates(mt->src, mt->p);
    }
    if (st) {
        lf_mtl_free(mt);
        return st;
    }
    *out = mt;
    return LF_OK;
}

void lf_mtl_free(lf_mtl *mt) {
    if (!mt) return;
    lf_batch_source_free(mt->src);
    for (int t = 0; t < LF_MTL_MAX_TASKS; t++) {
        lf_shard_close(mt->train[t]);
        lf_shard_close(mt->val[t]);
        lf_ids_free(&mt->prefix[t]);
        if (mt->spec[t].kind == LF_MTL_CLASSIFY) lf_cls_dataset_free(&mt->cls[t]);
    }
    free(mt);
}

int lf_mtl_num_tasks(const lf_mtl *mt) { return mt->n; }
const lf_mtl_task_spec *lf_mtl_task(const lf_mtl *mt, int t) { return &mt->spec[t]; }
double lf_mtl_rate(const lf_mtl *mt, int t) { return mt->p[t]; }
lf_batch_source *lf_mtl_source(lf_mtl *mt) { return mt->src; }
const lf_mtl_metrics *lf_mtl_last_metrics(const lf_mtl *mt, int t) { return &mt->met[t]; }

size_t lf_mtl_train_tokens(const lf_mtl *mt) {
    size_t n = 0;
    for (int t = 0; t < mt->n; t++) n += lf_shard_num_tokens(mt->train[t]);
    return n;
}

lf_status lf_mtl_attach_model(lf_mtl *mt, lf_model *m) {
    int V = lf_model_config(m)->vocab_size;
    for (int t = 0; t < mt->n; t++) {
        lf_status st = lf_shard_check_vocab(mt->train[t], V);
        if (!st && mt->val[t]) st = lf_shard_check_vocab(mt->val[t], V);
        if (st) return st;
    }
    if (mt->weighting != LF_MTL_UNCERTAINTY) return LF_OK;
    mt->log_vars = lf_model_find(m, "multitask.log_vars"); /* present when a resumed run re-attaches */
    return mt->log_vars ? LF_OK : lf_mtl_add_log_vars(m, mt->n, &mt->log_vars);
}

lf_status lf_mtl_attach_trainer(lf_mtl *mt, lf_trainer *tr) {
    float w[LF_MTL_MAX_TASKS];
    for (int t = 0; t < mt->n; t++) w[t] = mt->spec[t].weight;
    mt->term = lf_mtl_loss_new(mt->n, w, mt->log_vars);
    lf_status st = lf_trainer_add_loss(tr, mt->term);
    if (st) {
        mt->term = NULL;
        return st;
    }
    if (mt->weighting == LF_MTL_PCGRAD) st = lf_trainer_set_grad_surgery(tr, lf_pcgrad_surgery(mt->n, (uint64_t)mt->c->seed));
    return st;
}

/* loss of one lm / completion task over its first validation rows */
static lf_status eval_tokens(lf_mtl *mt, lf_model *m, int t, lf_mtl_metrics *r) {
    const lf_train_config *c = mt->c;
    lf_mtl_source_task vt = mt->st[t];
    vt.shard = mt->val[t];
    lf_batch_source *src;
    lf_status st = lf_mtl_task_source_new(&src, &vt, c->context);
    if (st) return st;
    size_t n = lf_mtl_source_examples(src, 0);
    int B = (size_t)c->batch_size < n ? c->batch_size : (int)n;
    size_t batches = n / (size_t)B < (size_t)c->eval_batches ? n / (size_t)B : (size_t)c->eval_batches;
    size_t count = 0;
    st = lf_eval_loss(m, src, B, c->context, (int)(batches ? batches : 1), &r->loss, &count);
    lf_batch_source_free(src);
    r->ppl = exp(r->loss);
    r->examples = (batches ? batches : 1) * (size_t)B;
    return st;
}

static lf_status eval_classify(lf_mtl *mt, lf_model *m, int t, lf_mtl_metrics *r) {
    const lf_cls_dataset *v = &mt->cls[t];
    char prompt[300];
    snprintf(prompt, sizeof prompt, "%s{text}\nlabel:", mt->spec[t].prefix);
    lf_cls_score_opts o = {prompt, NULL, mt->c->context, mt->c->batch_size, NULL, NULL};
    lf_cls_scores sc;
    lf_status st = lf_cls_score(m, mt->tok, (const char *const *)v->text, v->n, (const char *const *)v->names, v->K, &o, &sc);
    if (st) return st;
    double nll = 0.0;
    for (size_t i = 0; i < v->n; i++) nll -= sc.ll[i * v->K + v->label[i]];
    lf_cls_metrics mm;
    st = lf_cls_metrics_compute(&mm, v->label, sc.pred, v->n, v->K);
    lf_cls_scores_free(&sc);
    if (st) return st;
    r->loss = nll / (double)v->n;
    r->ppl = exp(r->loss);
    r->accuracy = mm.accuracy;
    r->macro_f1 = mm.macro_f1;
    r->examples = v->n;
    lf_cls_metrics_free(&mm);
    return LF_OK;
}

lf_status lf_mtl_evaluate(lf_mtl *mt, lf_model *m, lf_reporter *rep, int step, double *criterion) {
    double wsum = 0.0, lsum = 0.0;
    for (int t = 0; t < mt->n; t++) {
        lf_mtl_metrics *r = &mt->met[t];
        *r = (lf_mtl_metrics){NAN, NAN, NAN, NAN, 0};
        lf_status st = LF_OK;
        if (mt->spec[t].kind == LF_MTL_CLASSIFY) st = eval_classify(mt, m, t, r);
        else if (mt->val[t]) st = eval_tokens(mt, m, t, r);
        if (st) {
            char msg[1200];
            snprintf(msg, sizeof msg, "task '%s': validation: %s", mt->spec[t].name, lf_last_error());
            lf_set_error("%s", msg);
            return st;
        }
        if (isfinite(r->loss)) {
            wsum += mt->spec[t].weight;
            lsum += mt->spec[t].weight * r->loss;
        }
        const char *name = mt->spec[t].name;
        json_t *ev = json_object();
        json_object_set_new(ev, "event", json_string("task_eval"));
        json_object_set_new(ev, "step", json_integer(step));
        json_object_set_new(ev, "task", json_string(name));
        json_object_set_new(ev, "loss", isfinite(r->loss) ? json_real(r->loss) : json_null());
        json_object_set_new(ev, "perplexity", isfinite(r->ppl) ? json_real(r->ppl) : json_null());
        if (mt->spec[t].kind == LF_MTL_CLASSIFY) {
            json_object_set_new(ev, "accuracy", json_real(r->accuracy));
            json_object_set_new(ev, "macro_f1", json_real(r->macro_f1));
        }
        json_object_set_new(ev, "examples", json_integer((json_int_t)r->examples));
        lf_report_event(rep, ev);
        char tag[128];
        if (isfinite(r->loss)) {
            snprintf(tag, sizeof tag, "val/%s/loss", name);
            lf_report_scalar(rep, tag, step, (float)r->loss);
        }
        if (mt->spec[t].kind == LF_MTL_CLASSIFY) {
            snprintf(tag, sizeof tag, "val/%s/accuracy", name);
            lf_report_scalar(rep, tag, step, (float)r->accuracy);
            snprintf(tag, sizeof tag, "val/%s/macro_f1", name);
            lf_report_scalar(rep, tag, step, (float)r->macro_f1);
            lf_report_say(rep, "  task %-12s loss %.4f  accuracy %.4f  macro-F1 %.4f  (%zu examples)\n", name, r->loss, r->accuracy,
                          r->macro_f1, r->examples);
        } else if (isfinite(r->loss)) {
            snprintf(tag, sizeof tag, "val/%s/perplexity", name);
            lf_report_scalar(rep, tag, step, (float)r->ppl);
            lf_report_say(rep, "  task %-12s loss %.4f  perplexity %.2f  (%zu rows)\n", name, r->loss, r->ppl, r->examples);
        } else {
            lf_report_say(rep, "  task %-12s no validation rows (val.bin holds none of its documents)\n", name);
        }
    }
    mt->mean_loss = wsum > 0 ? lsum / wsum : NAN;
    if (mt->es_task < 0) *criterion = mt->mean_loss;
    else {
        const lf_mtl_metrics *r = &mt->met[mt->es_task];
        const char *k = mt->es_metric;
        *criterion = !strcmp(k, "accuracy") || !strcmp(k, "acc") ? -r->accuracy : !strcmp(k, "macro_f1") ? -r->macro_f1
                   : !strcmp(k, "ppl")                          ? r->ppl
                                                                : r->loss;
    }
    return LF_OK;
}

double lf_mtl_mean_loss(const lf_mtl *mt) { return mt->mean_loss; }

void lf_mtl_report_train(lf_mtl *mt, lf_reporter *rep, int step, json_t *ev) {
    if (!mt->term) return;
    double L[LF_MTL_MAX_TASKS];
    lf_mtl_loss_last(mt->term, L);
    json_t *tl = json_object(), *tw = mt->log_vars ? json_object() : NULL;
    for (int t = 0; t < mt->n; t++) {
        char tag[128];
        if (isfinite(L[t])) {
            json_object_set_new(tl, mt->spec[t].name, json_real(L[t]));
            snprintf(tag, sizeof tag, "train/%s/loss", mt->spec[t].name);
            lf_report_scalar(rep, tag, step, (float)L[t]);
        }
        if (tw) {
            double w = 0.5 * exp(-(double)mt->log_vars->data[t]);
            json_object_set_new(tw, mt->spec[t].name, json_real(w));
            snprintf(tag, sizeof tag, "train/%s/uw_weight", mt->spec[t].name);
            lf_report_scalar(rep, tag, step, (float)w);
        }
    }
    json_object_set_new(ev, "task_loss", tl);
    if (tw) json_object_set_new(ev, "task_weight", tw);
}

/* ---------------------------------------------------------------- lmforge eval */

lf_status lf_mtl_eval_shard(lf_model *m, const lf_shard *s, int T, int B, int max_docs, int n_tasks, double *sum, size_t *count) {
    for (int t = 0; t < n_tasks; t++) sum[t] = 0.0, count[t] = 0;
    lf_batch b;
    lf_status st = lf_batch_alloc(&b, B, T);
    if (st) return st;
    lf_model_set_training(m, 0, 0);
    for (int t = 0; t < n_tasks && !st; t++) { /* each task's documents, B at a time, as training rows */
        lf_mtl_source_task task = {s, LF_MTL_COMPLETION, t, NULL, 0};
        lf_batch_source *src = NULL;
        lf_status e = lf_mtl_task_source_new(&src, &task, T);
        if (e) continue; /* a task without documents in this split */
        size_t n = lf_mtl_source_examples(src, 0);
        if (max_docs > 0 && n > (size_t)max_docs) n = (size_t)max_docs;
        for (size_t done = 0; done < n && !st; done += (size_t)B) {
            b.B = n - done < (size_t)B ? (int)(n - done) : B;
            st = src->next(src, &b);
            double bs = 0.0;
            size_t bc = 0;
            if (!st) st = lf_loss_ce_eval(m, &b, &bs, &bc);
            sum[t] += bs;
            count[t] += bc;
        }
        lf_batch_source_free(src);
    }
    b.B = B;
    lf_batch_free(&b);
    return st;
}
