/* AdamW over the parameter table, LR schedules, global-norm clipping. Moments live in one
 * allocation, carved per trainable tensor; frozen tensors get none. */
#include "lmforge/optim.h"
#include "lmforge/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct lf_optim {
    lf_model *model;
    lf_adamw_config cfg;
    float *mem;
    float **m, **v; /* per parameter index; NULL for frozen */
    int n, t;
};

void lf_adamw_defaults(lf_adamw_config *c) {
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = 0.01f;
    c->grad_clip = 1.0f;
    c->decay_embeddings = 0;
    c->decay_norms_biases = 0;
}

float lf_schedule_lr(const lf_schedule *s, int step) {
    if (s->warmup_steps > 0 && step < s->warmup_steps) return s->lr * (float)(step + 1) / (float)s->warmup_steps;
    if (s->kind == LF_SCHED_CONSTANT) return s->lr;
    int span = s->total_steps - s->warmup_steps;
    if (span <= 0) return s->lr;
    float frac = (float)(step - s->warmup_steps) / (float)span;
    if (frac > 1.0f) frac = 1.0f;
    float w = s->kind == LF_SCHED_LINEAR ? 1.0f - frac : 0.5f * (1.0f + cosf(3.14159265358979f * frac));
    return s->min_lr + (s->lr - s->min_lr) * w;
}

lf_status lf_schedule_parse(const char *name, lf_sched_kind *kind) {
    if (strcmp(name, "constant") == 0) *kind = LF_SCHED_CONSTANT;
    else if (strcmp(name, "linear") == 0) *kind = LF_SCHED_LINEAR;
    else if (strcmp(name, "cosine") == 0) *kind = LF_SCHED_COSINE;
    else {
        lf_set_error("unknown LR schedule '%s' (expected constant, linear or cosine)", name);
        return LF_ERR_ARG;
    }
    return LF_OK;
}

lf_status lf_optim_init(lf_optim **out, lf_model *model, const lf_adamw_config *cfg) {
    *out = NULL;
    lf_status st = lf_model_alloc_grads(model);
    if (st) return st;
    lf_optim *o = calloc(1, sizeof *o);
    if (!o) return LF_ERR_NOMEM;
    o->model = model;
    o->cfg = *cfg;
    o->n = lf_model_num_params(model);
    o->m = calloc((size_t)o->n, sizeof *o->m);
    o->v = calloc((size_t)o->n, sizeof *o->v);
    size_t total = 0;
    for (int i = 0; i < o->n; i++) {
        lf_param *p = lf_model_param(model, i);
        /* the decay group is a flag on the tensor; the config widens it */
        if ((p->kind == LF_KIND_EMBED && cfg->decay_embeddings) ||
            ((p->kind == LF_KIND_NORM || p->kind == LF_KIND_BIAS) && cfg->decay_norms_biases))
            p->flags |= LF_PARAM_DECAY;
        if (p->flags & LF_PARAM_TRAINABLE) total += 2 * ((p->numel + 15) & ~(size_t)15);
    }
    o->mem = lf_alloc(total ? total * sizeof(float) : 64);
    if (!o->m || !o->v || !o->mem) {
        lf_optim_free(o);
        return LF_ERR_NOMEM;
    }
    size_t off = 0;
    for (int i = 0; i < o->n; i++) {
        lf_param *p = lf_model_param(model, i);
        if (!(p->flags & LF_PARAM_TRAINABLE)) continue;
        size_t k = (p->numel + 15) & ~(size_t)15;
        o->m[i] = o->mem + off;
        o->v[i] = o->mem + off + k;
        off += 2 * k;
    }
    *out = o;
    return LF_OK;
}

void lf_optim_free(lf_optim *o) {
    if (!o) return;
    lf_free(o->mem);
    free(o->m);
    free(o->v);
    free(o);
}

int lf_optim_t(const lf_optim *o) { return o->t; }
void lf_optim_set_t(lf_optim *o, int t) { o->t = t; }
float *lf_optim_moment(lf_optim *o, int i, int which) {
    if (i < 0 || i >= o->n) return NULL;
    return which ? o->v[i] : o->m[i];
}

float lf_optim_grad_norm(lf_optim *o) {
    double s = 0.0;
    for (int i = 0; i < o->n; i++) {
        lf_param *p = lf_model_param(o->model, i);
        if (p->grad && o->m[i]) s += lf_sumsq(p->grad, p->numel);
    }
    return (float)sqrt(s);
}

lf_status lf_optim_step(lf_optim *o, float lr, float *norm_out) {
    float norm = lf_optim_grad_norm(o);
    if (norm_out) *norm_out = norm;
    if (!isfinite(norm)) {
        lf_set_error("gradient norm is %f: update skipped", norm);
        return LF_ERR_ARG;
    }
    float clip = o->cfg.grad_clip > 0.0f && norm > o->cfg.grad_clip ? o->cfg.grad_clip / (norm + 1e-6f) : 1.0f;
    o->t++;
    for (int i = 0; i < o->n; i++) {
        lf_param *p = lf_model_param(o->model, i);
        if (!p->grad || !o->m[i]) continue;
        float wd = (p->flags & LF_PARAM_DECAY) ? o->cfg.weight_decay : 0.0f;
        lf_adamw_update(p->data, p->grad, o->m[i], o->v[i], p->numel, lr, o->cfg.beta1, o->cfg.beta2, o->cfg.eps,
                        wd, clip, o->t);
    }
    return LF_OK;
}
