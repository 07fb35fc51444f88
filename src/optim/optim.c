/* AdamW over the parameter table, LR schedules, global-norm clipping. Moments live in one
 * allocation, carved per trainable tensor; frozen tensors get none. */
#include "lmforge/optim.h"
#include "lmforge/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t id; /* the tensor's id: pointers can be reused after a removal, ids cannot */
    float *m, *v;
    int t;       /* updates this tensor has had: Adam's bias correction is per tensor (as in PyTorch) */
} slot;

struct lf_optim {
    lf_model *model;
    lf_adamw_config cfg;
    slot *slots;
    int n, cap, t;
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

static slot *find_slot(lf_optim *o, const lf_param *p) {
    for (int i = 0; i < o->n; i++)
        if (o->slots[i].id == p->id) return &o->slots[i];
    return NULL;
}

static slot *make_slot(lf_optim *o, lf_param *p) {
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 64;
        slot *ns = realloc(o->slots, (size_t)cap * sizeof *ns);
        if (!ns) return NULL;
        o->slots = ns;
        o->cap = cap;
    }
    size_t k = (p->numel + 15) & ~(size_t)15;
    float *mem = lf_alloc(2 * k * sizeof(float));
    if (!mem) return NULL;
    /* the decay group is a flag on the tensor; the config widens it */
    if ((p->kind == LF_KIND_EMBED && o->cfg.decay_embeddings) ||
        ((p->kind == LF_KIND_NORM || p->kind == LF_KIND_BIAS) && o->cfg.decay_norms_biases))
        p->flags |= LF_PARAM_DECAY;
    o->slots[o->n] = (slot){p->id, mem, mem + k, 0};
    return &o->slots[o->n++];
}

/* drop the moments of tensors no longer in the model */
static void sync_slots(lf_optim *o) {
    int k = 0;
    for (int i = 0; i < o->n; i++) {
        int alive = 0;
        for (int j = 0; j < lf_model_num_params(o->model) && !alive; j++) alive = lf_model_param(o->model, j)->id == o->slots[i].id;
        if (alive) o->slots[k++] = o->slots[i];
        else lf_free(o->slots[i].m);
    }
    o->n = k;
}

lf_status lf_optim_init(lf_optim **out, lf_model *model, const lf_adamw_config *cfg) {
    *out = NULL;
    lf_status st = lf_model_alloc_grads(model);
    if (st) return st;
    lf_optim *o = calloc(1, sizeof *o);
    if (!o) return LF_ERR_NOMEM;
    o->model = model;
    o->cfg = *cfg;
    for (int i = 0; i < lf_model_num_params(model); i++) {
        lf_param *p = lf_model_param(model, i);
        if ((p->flags & LF_PARAM_TRAINABLE) && !make_slot(o, p)) {
            lf_optim_free(o);
            lf_set_error("out of memory for optimizer moments");
            return LF_ERR_NOMEM;
        }
    }
    *out = o;
    return LF_OK;
}

void lf_optim_free(lf_optim *o) {
    if (!o) return;
    for (int i = 0; i < o->n; i++) lf_free(o->slots[i].m);
    free(o->slots);
    free(o);
}

int lf_optim_t(const lf_optim *o) { return o->t; }
void lf_optim_set_t(lf_optim *o, int t) { o->t = t; }
int lf_optim_param_t(lf_optim *o, const lf_param *p) {
    slot *s = find_slot(o, p);
    return s ? s->t : 0;
}
lf_status lf_optim_set_param_t(lf_optim *o, const lf_param *p, int t) {
    slot *s = find_slot(o, p);
    if (!s && !(s = make_slot(o, (lf_param *)p))) return LF_ERR_NOMEM;
    s->t = t;
    return LF_OK;
}
float *lf_optim_moment(lf_optim *o, const lf_param *p, int which, int create) {
    slot *s = find_slot(o, p);
    if (!s && create) s = make_slot(o, (lf_param *)p);
    return s ? (which ? s->v : s->m) : NULL;
}

static int updatable(const lf_param *p) { return (p->flags & LF_PARAM_TRAINABLE) && p->grad && p->data; }

float lf_optim_grad_norm(lf_optim *o) {
    double s = 0.0;
    for (int i = 0; i < lf_model_num_params(o->model); i++) {
        lf_param *p = lf_model_param(o->model, i);
        if (updatable(p)) s += lf_sumsq(p->grad, p->numel);
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
    sync_slots(o);
    float clip = o->cfg.grad_clip > 0.0f && norm > o->cfg.grad_clip ? o->cfg.grad_clip / (norm + 1e-6f) : 1.0f;
    o->t++;
    int masked = 0;
    for (int i = 0; i < lf_model_num_params(o->model); i++) {
        lf_param *p = lf_model_param(o->model, i);
        if (!updatable(p)) continue;
        slot *s = find_slot(o, p);
        if (!s && !(s = make_slot(o, p))) {
            lf_set_error("out of memory for the optimizer moments of '%s'", p->name);
            return LF_ERR_NOMEM;
        }
        float wd = (p->flags & LF_PARAM_DECAY) ? o->cfg.weight_decay : 0.0f;
        s->t++;
        lf_adamw_update(p->data, p->grad, s->m, s->v, p->numel, lr, o->cfg.beta1, o->cfg.beta2, o->cfg.eps, wd, clip, s->t);
        masked |= p->mask != NULL;
    }
    if (masked) lf_model_apply_masks(o->model); /* pruned weights stay exactly zero */
    return LF_OK;
}
