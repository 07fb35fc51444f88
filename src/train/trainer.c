/* The trainer: one optimizer step over grad_accum micro-batches pulled from a batch source, the
 * objective a weighted sum of loss terms, hooks after each step and evaluation, and the trainer
 * state for exact resume. It neither prints nor knows about files other than its own state. */
#include "lmforge/train.h"
#include "lmforge/ckpt.h"
#include "lmforge/eval.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TERMS 16
#define MAX_HOOKS 16

struct lf_trainer {
    lf_model *m;
    lf_optim *opt;
    lf_batch_source *src;
    lf_trainer_opts o;
    lf_loss_term *terms[MAX_TERMS];
    lf_hook *hooks[MAX_HOOKS];
    int nterms, nhooks;
    lf_batch batch;
    int step;
    size_t tokens_seen;
    /* grad surgery: a sub-batch per group, the groups' gradients, the combined one */
    lf_grad_surgery *surg;
    lf_batch sub;
    float *ggrads, *gout; // (n_groups, gn), (gn)
    size_t gn;
};

lf_status lf_trainer_init(lf_trainer **out, lf_model *m, lf_batch_source *train, const lf_trainer_opts *o) {
    *out = NULL;
    if (o->B <= 0 || o->T <= 0 || o->grad_accum <= 0) {
        lf_set_error("trainer: batch %d x %d with %d accumulation steps is invalid", o->B, o->T, o->grad_accum);
        return LF_ERR_ARG;
    }
    lf_trainer *t = calloc(1, sizeof *t);
    if (!t) return LF_ERR_NOMEM;
    t->m = m;
    t->src = train;
    t->o = *o;
    lf_ctx_apply(&o->ctx);
    lf_status st = lf_batch_alloc(&t->batch, o->B, o->T);
    if (!st) st = lf_optim_init(&t->opt, m, &o->adamw);
    if (st) {
        lf_trainer_free(t);
        return st;
    }
    *out = t;
    return LF_OK;
}

void lf_trainer_free(lf_trainer *t) {
    if (!t) return;
    for (int i = 0; i < t->nterms; i++) lf_loss_free(t->terms[i]);
    for (int i = 0; i < t->nhooks; i++)
        if (t->hooks[i]->free) t->hooks[i]->free(t->hooks[i]);
    lf_batch_free(&t->batch);
    if (t->surg) {
        lf_batch_free(&t->sub);
        if (t->surg->free) t->surg->free(t->surg);
    }
    free(t->ggrads);
    free(t->gout);
    lf_optim_free(t->opt);
    free(t);
}

lf_status lf_trainer_add_loss(lf_trainer *t, lf_loss_term *term) {
    if (!term) return LF_ERR_NOMEM; /* a constructor's failure passed straight in */
    if (t->nterms == MAX_TERMS) {
        lf_loss_free(term);
        lf_set_error("trainer: at most %d loss terms", MAX_TERMS);
        return LF_ERR_ARG;
    }
    t->terms[t->nterms++] = term;
    return LF_OK;
}

lf_status lf_trainer_add_hook(lf_trainer *t, lf_hook *h) {
    if (!h) return LF_ERR_NOMEM;
    if (t->nhooks == MAX_HOOKS) {
        if (h->free) h->free(h);
        lf_set_error("trainer: at most %d hooks", MAX_HOOKS);
        return LF_ERR_ARG;
    }
    t->hooks[t->nhooks++] = h;
    return LF_OK;
}

lf_status lf_trainer_set_grad_surgery(lf_trainer *t, lf_grad_surgery *s) {
    if (!s) return LF_ERR_NOMEM;
    if (t->surg || s->n_groups < 1 || s->n_groups > 64 || !s->combine) {
        if (s->free) s->free(s);
        lf_set_error("trainer: %s", t->surg ? "a grad surgery is already set" : "a grad surgery needs n_groups in 1..64 and combine");
        return LF_ERR_ARG;
    }
    lf_status st = lf_batch_alloc(&t->sub, t->o.B, t->o.T);
    if (st) {
        if (s->free) s->free(s);
        return st;
    }
    t->surg = s;
    return LF_OK;
}

/* the trainable tensors' gradients as one vector: add into dst (dir 0) or write from src (dir 1) */
static void flat_grads(lf_model *m, float *v, int dir) {
    size_t o = 0;
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        if (!(p->flags & LF_PARAM_TRAINABLE) || !p->grad) continue;
        if (dir == 0)
            for (size_t k = 0; k < p->numel; k++) v[o + k] += p->grad[k];
        else
            memcpy(p->grad, v + o, p->numel * sizeof(float));
        o += p->numel;
    }
}

static lf_status surgery_buffers(lf_trainer *t) {
    lf_status st = lf_model_alloc_grads(t->m);
    if (st) return st;
    size_t n = 0;
    for (int i = 0; i < lf_model_num_params(t->m); i++) {
        lf_param *p = lf_model_param(t->m, i);
        if ((p->flags & LF_PARAM_TRAINABLE) && p->grad) n += p->numel;
    }
    if (n != t->gn || !t->ggrads) { /* the trainable set may change between steps (unfreezing) */
        free(t->ggrads);
        free(t->gout);
        t->gn = n;
        t->ggrads = malloc((size_t)t->surg->n_groups * (n ? n : 1) * sizeof(float));
        t->gout = malloc((n ? n : 1) * sizeof(float));
        if (!t->ggrads || !t->gout) {
            lf_set_error("trainer: no memory for %d gradient copies of %zu floats (grad surgery)", t->surg->n_groups + 1, n);
            return LF_ERR_NOMEM;
        }
    }
    memset(t->ggrads, 0, (size_t)t->surg->n_groups * n * sizeof(float));
    return LF_OK;
}

/* one micro-batch split into its groups: a forward and backward each, gradients into ggrads */
static lf_status surgery_micro(lf_trainer *t, int a, float scale, double *total) {
    lf_batch *b = &t->batch, *s = &t->sub;
    int G = t->surg->n_groups;
    *total = 0.0;
    for (int r = 0; r < b->B; r++)
        if (!b->task || b->task[r] < 0 || b->task[r] >= G) {
            lf_set_error("trainer: grad surgery over %d tasks, but batch row %d has task id %d", G, r, b->task ? b->task[r] : -1);
            return LF_ERR_ARG;
        }
    for (int g = 0; g < G; g++) {
        int n = 0;
        for (int r = 0; r < b->B; r++) {
            if (b->task[r] != g) continue;
            memcpy(s->inputs + (size_t)n * b->T, b->inputs + (size_t)r * b->T, (size_t)b->T * sizeof(int32_t));
            memcpy(s->targets + (size_t)n * b->T, b->targets + (size_t)r * b->T, (size_t)b->T * sizeof(int32_t));
            s->row_weight[n] = b->row_weight ? b->row_weight[r] : 1.0f;
            s->task[n] = g;
            n++;
        }
        if (!n) continue;
        s->B = n;
        s->T = b->T;
        double tot = 0.0;
        lf_model_zero_grad(t->m);
        lf_model_set_training(t->m, 1, lf_hash64(t->o.ctx.seed, (uint64_t)t->step, (uint64_t)a * 65536u + (uint64_t)g));
        lf_status st = lf_loss_forward(t->m, t->terms, t->nterms, s, NULL, &tot);
        if (!st) st = lf_loss_backward(t->m, t->terms, t->nterms, s, scale);
        if (st) return st;
        flat_grads(t->m, t->ggrads + (size_t)g * t->gn, 0);
        *total += tot;
    }
    return LF_OK;
}

lf_status lf_trainer_eval_hooks(lf_trainer *t, double value, int *stop) {
    if (stop) *stop = 0;
    for (int i = 0; i < t->nhooks; i++)
        if (t->hooks[i]->after_eval && t->hooks[i]->after_eval(t->hooks[i], t, t->step, value) == LF_HOOK_STOP && stop) *stop = 1;
    return LF_OK;
}

int lf_trainer_step_count(const lf_trainer *t) { return t->step; }
lf_model *lf_trainer_model(lf_trainer *t) { return t->m; }
lf_optim *lf_trainer_optim(lf_trainer *t) { return t->opt; }
size_t lf_trainer_tokens_seen(const lf_trainer *t) { return t->tokens_seen; }

lf_status lf_trainer_step(lf_trainer *t, lf_step_info *info, int *stop) {
    if (stop) *stop = 0;
    if (t->nterms == 0) {
        lf_set_error("trainer: no loss term (add cross-entropy with lf_trainer_add_loss)");
        return LF_ERR_ARG;
    }
    lf_ctx_apply(&t->o.ctx);
    double t0 = lf_now();
    int accum = t->o.grad_accum;
    float lr = lf_schedule_lr(&t->o.schedule, t->step), loss = 0.0f, norm = 0.0f;
    int finite = 1;
    lf_status st = LF_OK;
    lf_model_zero_grad(t->m);
    if (t->surg) st = surgery_buffers(t);
    for (int a = 0; a < accum && !st; a++) {
        double total = 0.0;
        st = t->src->next(t->src, &t->batch);
        if (!st && t->surg) st = surgery_micro(t, a, 1.0f / accum, &total);
        else if (!st) {
            lf_model_set_training(t->m, 1, lf_hash64(t->o.ctx.seed, (uint64_t)t->step, (uint64_t)a));
            st = lf_loss_forward(t->m, t->terms, t->nterms, &t->batch, NULL, &total);
            if (!st) st = lf_loss_backward(t->m, t->terms, t->nterms, &t->batch, 1.0f / accum);
        }
        float l = (float)total;
        finite &= isfinite(l);
        loss += l / accum;
    }
    if (st) return st;
    if (t->surg) { /* the groups' gradients combined into the one the optimizer sees */
        float *gp[64];
        int G = t->surg->n_groups < 64 ? t->surg->n_groups : 64;
        for (int g = 0; g < G; g++) gp[g] = t->ggrads + (size_t)g * t->gn;
        t->surg->combine(t->surg, gp, G, t->gn, t->gout, t->step);
        flat_grads(t->m, t->gout, 1);
    }
    if (finite && lf_optim_step(t->opt, lr, &norm) != LF_OK) finite = 0; /* non-finite gradient */
    t->step++;
    size_t tokens = (size_t)t->o.B * t->o.T * accum;
    t->tokens_seen += tokens;
    lf_step_info s = {t->step, loss, lr, norm, finite, lf_now() - t0, tokens};
    if (info) *info = s;
    for (int i = 0; i < t->nhooks; i++)
        if (t->hooks[i]->after_step && t->hooks[i]->after_step(t->hooks[i], t, &s) == LF_HOOK_STOP && stop) *stop = 1;
    return LF_OK;
}

lf_status lf_trainer_evaluate(lf_trainer *t, lf_batch_source *val, int B, int batches, double *val_loss, int *stop) {
    if (stop) *stop = 0;
    lf_ctx_apply(&t->o.ctx);
    lf_status st = lf_eval_loss(t->m, val, B, t->o.T, batches, val_loss, NULL);
    if (st) return st;
    for (int i = 0; i < t->nhooks; i++)
        if (t->hooks[i]->after_eval && t->hooks[i]->after_eval(t->hooks[i], t, t->step, *val_loss) == LF_HOOK_STOP && stop)
            *stop = 1;
    return LF_OK;
}

/* ---------------------------------------------------------------- state */

lf_status lf_trainer_save_state(lf_trainer *t, const char *dir, const char *extra_json) {
    char p[4096];
    int np = lf_model_num_params(t->m), k = 0;
    lf_st_tensor *ts = calloc((size_t)np * 3, sizeof *ts);
    char (*names)[160] = calloc((size_t)np * 3, sizeof *names);
    json_t *steps = json_object();
    lf_status st = ts && names && steps ? LF_OK : LF_ERR_NOMEM;
    for (int i = 0; !st && i < np; i++) { /* optimizer moments, named after their tensors */
        lf_param *prm = lf_model_param(t->m, i);
        for (int w = 0; w < 2; w++) {
            float *mom = lf_optim_moment(t->opt, prm, w, 0);
            if (!mom) continue;
            snprintf(names[k], sizeof names[k], "%s.%s", w ? "v" : "m", prm->name);
            ts[k] = (lf_st_tensor){names[k], prm->ndim, {prm->shape[0], prm->shape[1]}, mom, NULL, NULL};
            k++;
        }
        if (lf_optim_moment(t->opt, prm, 0, 0)) json_object_set_new(steps, prm->name, json_integer(lf_optim_param_t(t->opt, prm)));
        if ((prm->flags & LF_PARAM_EXTRA) && prm->data) { /* values the Hugging Face files do not hold */
            snprintf(names[k], sizeof names[k], "param.%s", prm->name);
            ts[k] = (lf_st_tensor){names[k], prm->ndim, {prm->shape[0], prm->shape[1]}, prm->data, NULL, NULL};
            k++;
        }
    }
    if (!st) {
        snprintf(p, sizeof p, "%s/trainer_state.safetensors", dir);
        st = lf_st_write(p, ts, k, NULL, 0);
    }
    free(ts);
    free(names);
    json_t *j = NULL;
    if (!st) {
        json_error_t e;
        j = extra_json ? json_loads(extra_json, 0, &e) : json_object();
        if (!j || !json_is_object(j)) {
            lf_set_error("trainer state: extra members are not a JSON object");
            st = LF_ERR_ARG;
        }
    }
    if (!st) {
        uint64_t w[LF_SOURCE_STATE_MAX];
        int nw = t->src->get_state ? t->src->get_state(t->src, w) : 0;
        json_t *src = json_array();
        for (int i = 0; i < nw; i++) json_array_append_new(src, json_integer((json_int_t)w[i]));
        json_t *h = json_object();
        json_object_set_new(h, "format", json_string("lmforge-trainer-state"));
        json_object_set_new(h, "version", json_integer(2));
        json_object_set_new(h, "step", json_integer(t->step));
        json_object_set_new(h, "optimizer_t", json_integer(lf_optim_t(t->opt)));
        json_object_set_new(h, "optimizer_steps", steps);
        steps = NULL;
        json_object_set_new(h, "source", json_string(t->src->name ? t->src->name : ""));
        json_object_set_new(h, "source_state", src);
        json_object_set_new(h, "tokens_seen", json_integer((json_int_t)t->tokens_seen));
        json_object_update(h, j); /* the caller's members after ours */
        char *s = json_dumps(h, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        json_decref(h);
        snprintf(p, sizeof p, "%s/trainer_state.json", dir);
        st = s ? lf_write_file_atomic(p, s, strlen(s)) : LF_ERR_NOMEM;
        free(s);
    }
    json_decref(steps);
    json_decref(j);
    return st;
}

static lf_status get_int(json_t *j, const char *key, const char *path, json_int_t lo, json_int_t hi, json_int_t *out) {
    json_t *v = json_object_get(j, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        lf_set_error("%s: '%s' must be an integer in %lld..%lld%s", path, key, (long long)lo, (long long)hi,
                     v ? "" : " (missing)");
        return LF_ERR_FORMAT;
    }
    *out = json_integer_value(v);
    return LF_OK;
}

lf_status lf_trainer_load_state(lf_trainer *t, const char *dir, char **extra_json) {
    if (extra_json) *extra_json = NULL;
    char p[4096];
    snprintf(p, sizeof p, "%s/trainer_state.json", dir);
    size_t len;
    char *txt = lf_read_file(p, &len);
    if (!txt) return LF_ERR_IO;
    json_error_t e;
    json_t *j = json_loadb(txt, len, 0, &e);
    if (!j || !json_is_object(j)) {
        lf_set_error("%s: not a JSON object (%s)", p, j ? "another JSON value" : e.text);
        json_decref(j);
        free(txt);
        return LF_ERR_FORMAT;
    }
    json_int_t step = 0, opt_t = 0, tokens = 0;
    lf_status st = get_int(j, "step", p, 0, 1 << 30, &step);
    if (!st) st = get_int(j, "optimizer_t", p, 0, step, &opt_t);
    if (!st) st = get_int(j, "tokens_seen", p, 0, INT64_MAX, &tokens);
    json_t *src = json_object_get(j, "source_state"), *steps = json_object_get(j, "optimizer_steps");
    uint64_t w[LF_SOURCE_STATE_MAX];
    int nw = 0;
    if (!st && (!json_is_array(src) || json_array_size(src) > LF_SOURCE_STATE_MAX || !json_is_object(steps))) {
        lf_set_error("%s: 'source_state' (an array of at most %d integers) or 'optimizer_steps' is missing or malformed "
                     "(a checkpoint of an older lmforge? resume it with the version that wrote it)", p, LF_SOURCE_STATE_MAX);
        st = LF_ERR_FORMAT;
    }
    for (size_t i = 0; !st && i < json_array_size(src); i++) {
        json_t *v = json_array_get(src, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            lf_set_error("%s: source_state[%zu] is not a non-negative integer", p, i);
            st = LF_ERR_FORMAT;
        } else {
            w[nw++] = (uint64_t)json_integer_value(v);
        }
    }
    if (!st && t->src->set_state) st = t->src->set_state(t->src, w, nw);
    /* moments, per-tensor counts and added tensors' values */
    lf_st *sf = NULL;
    if (!st) {
        snprintf(p, sizeof p, "%s/trainer_state.safetensors", dir);
        st = lf_st_open(&sf, p);
    }
    for (int i = 0; !st && i < lf_model_num_params(t->m); i++) {
        lf_param *prm = lf_model_param(t->m, i);
        char name[200];
        if ((prm->flags & LF_PARAM_EXTRA) && prm->data) {
            snprintf(name, sizeof name, "param.%s", prm->name);
            int k = lf_st_find(sf, name);
            if (k < 0) {
                lf_set_error("%s: no saved values for '%s' (was the checkpoint made with other adapters or heads?)", p, prm->name);
                st = LF_ERR_FORMAT;
                break;
            }
            if (lf_st_numel(sf, k) != prm->numel) {
                lf_set_error("%s: '%s' has %zu values, the model's tensor %zu", p, name, lf_st_numel(sf, k), prm->numel);
                st = LF_ERR_FORMAT;
                break;
            }
            st = lf_st_read_f32(sf, k, prm->data, prm->numel);
        }
        json_t *pt = json_object_get(steps, prm->name);
        if (!st && (prm->flags & LF_PARAM_TRAINABLE) && !pt) {
            lf_set_error("%s: no optimizer state for '%s' (was the checkpoint made with other frozen layers?)", p, prm->name);
            st = LF_ERR_FORMAT;
        }
        if (st || !pt) continue;
        if (!json_is_integer(pt) || json_integer_value(pt) < 1 || json_integer_value(pt) > opt_t) {
            lf_set_error("%s: optimizer step count of '%s' must be an integer in 1..%lld", p, prm->name, (long long)opt_t);
            st = LF_ERR_FORMAT;
            break;
        }
        for (int w2 = 0; w2 < 2 && !st; w2++) {
            float *mom = lf_optim_moment(t->opt, prm, w2, 1);
            snprintf(name, sizeof name, "%s.%s", w2 ? "v" : "m", prm->name);
            int k = lf_st_find(sf, name);
            if (!mom) st = LF_ERR_NOMEM;
            else if (k < 0 || lf_st_numel(sf, k) != prm->numel) {
                lf_set_error("%s: optimizer state '%s' is missing or has the wrong size", p, name);
                st = LF_ERR_FORMAT;
            } else {
                st = lf_st_read_f32(sf, k, mom, prm->numel);
                for (size_t q = 0; !st && q < prm->numel; q++)
                    if (!isfinite(mom[q]) || (w2 == 1 && mom[q] < 0.0f)) {
                        lf_set_error("%s: optimizer state '%s' holds %s at %zu: the checkpoint is damaged", p, name,
                                     isfinite(mom[q]) ? "a negative second moment" : "a non-finite value", q);
                        st = LF_ERR_FORMAT;
                    }
            }
        }
        if (!st) st = lf_optim_set_param_t(t->opt, prm, (int)json_integer_value(pt));
    }
    lf_st_close(sf);
    if (!st) {
        lf_optim_set_t(t->opt, (int)opt_t);
        t->step = (int)step;
        t->tokens_seen = (size_t)tokens;
    }
    json_decref(j);
    if (!st && extra_json) *extra_json = txt;
    else free(txt);
    return st;
}

/* ---------------------------------------------------------------- early stopping */

typedef struct {
    lf_early_stopping s;
    int patience;
    float min_delta;
} es_ctx;

static lf_hook_action es_after_eval(lf_hook *h, lf_trainer *t, int step, double vl) {
    es_ctx *c = h->ctx;
    c->s.improved = vl < c->s.best - c->min_delta;
    if (c->s.improved) {
        c->s.best = vl;
        c->s.best_step = step;
        c->s.evals_since_best = 0;
    } else {
        c->s.evals_since_best++;
    }
    return c->patience > 0 && c->s.evals_since_best >= c->patience ? LF_HOOK_STOP : LF_HOOK_CONTINUE;
}

static void es_free(lf_hook *h) {
    free(h->ctx);
    free(h);
}

lf_hook *lf_hook_early_stopping(int patience, float min_delta) {
    lf_hook *h = calloc(1, sizeof *h);
    es_ctx *c = calloc(1, sizeof *c);
    if (!h || !c) {
        free(h);
        free(c);
        return NULL;
    }
    c->s.best = INFINITY;
    c->patience = patience;
    c->min_delta = min_delta;
    *h = (lf_hook){"early_stopping", c, NULL, es_after_eval, es_free};
    return h;
}

lf_early_stopping *lf_hook_early_stopping_state(lf_hook *h) { return &((es_ctx *)h->ctx)->s; }
