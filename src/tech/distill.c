/* Knowledge distillation (see include/lmforge/distill.h): the frozen teacher, the logit term (forward
 * KL, reverse KL, generalized JSD at temperature τ), the hidden-state term (MSE or cosine through a
 * learned projection) and DistilBERT's every-k-th-layer student.
 *
 * The teacher runs forward-only into its own logits buffer, which this file turns into
 * log-probabilities at τ in place: the only (rows, V) buffer distillation adds, reused every
 * micro-batch. A run is keyed on the batch's tokens, so the logit and hidden terms of one batch
 * (and the repeated forwards of a finite-difference test) share it. Per row the forward keeps the
 * student's log-sum-exp and Σ q·g, so that backward is one pass over the row. */
#include "lmforge/distill.h"
#include "lmforge/ckpt.h"
#include "lmforge/eval.h"
#include "lmforge/kernels.h"
#include "../kernels/vmath.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lf_distill {
    lf_model *teacher;
    lf_distill_opts o;
    lf_model *student;                     /* after lf_distill_attach */
    lf_param *proj[LF_DISTILL_MAX_PAIRS]; // (Ct,Cs) or NULL when the widths agree
    int32_t *last_in;                      // (cap) the tokens of the teacher's last run
    size_t in_cap;
    int last_B, last_T, have_run, have_logits;
    float logp_temp;                       /* > 0: the logits buffer holds log-probabilities at this τ */
};

void lf_distill_opts_default(lf_distill_opts *o) {
    memset(o, 0, sizeof *o);
    o->kind = LF_DISTILL_KL;
    o->temperature = 1.0f;
    o->beta = 0.5f;
    o->hidden = LF_HIDDEN_COSINE;
}

int lf_distill_kind_parse(const char *s) {
    return !strcmp(s, "kl") ? LF_DISTILL_KL : !strcmp(s, "rkl") ? LF_DISTILL_RKL : !strcmp(s, "jsd") ? LF_DISTILL_JSD : -1;
}
int lf_hidden_kind_parse(const char *s) { return !strcmp(s, "mse") ? LF_HIDDEN_MSE : !strcmp(s, "cosine") ? LF_HIDDEN_COSINE : -1; }

lf_status lf_distill_parse_pairs(lf_distill_opts *o, const char *text) {
    o->n_pairs = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long s = strtol(p, &end, 10);
        if (end == p || *end != ':' || s < 0 || s > 100000) goto bad;
        p = end + 1;
        long t = strtol(p, &end, 10);
        if (end == p || (*end && (*end != ',' || !end[1])) || t < 0 || t > 100000) goto bad;
        if (o->n_pairs >= LF_DISTILL_MAX_PAIRS) {
            lf_set_error("hidden_layers '%s': at most %d pairs", text, LF_DISTILL_MAX_PAIRS);
            return LF_ERR_ARG;
        }
        o->student_layer[o->n_pairs] = (int)s;
        o->teacher_layer[o->n_pairs] = (int)t;
        o->n_pairs++;
        p = *end ? end + 1 : end;
    }
    return LF_OK;
bad:
    lf_set_error("hidden_layers '%s': expected STUDENT:TEACHER layer pairs separated by commas, e.g. 2:4 or 1:2,2:4 "
                 "(layer L = the residual stream entering block L; n_layer = after the last block)", text);
    return LF_ERR_ARG;
}

static lf_status check_opts(const lf_distill_opts *o) {
    if (!(o->temperature > 0 && o->temperature <= 1000) || !(o->beta >= 0 && o->beta <= 1) ||
        (unsigned)o->kind > LF_DISTILL_JSD || (unsigned)o->hidden > LF_HIDDEN_COSINE ||
        o->n_pairs < 0 || o->n_pairs > LF_DISTILL_MAX_PAIRS) {
        lf_set_error("distill: need temperature in (0, 1000], beta in [0, 1], loss kl|rkl|jsd, hidden_loss mse|cosine");
        return LF_ERR_ARG;
    }
    return LF_OK;
}

lf_status lf_distill_from_model(lf_distill **out, lf_model *teacher, const lf_distill_opts *o) {
    *out = NULL;
    lf_status st = check_opts(o);
    if (st) return st;
    lf_distill *d = calloc(1, sizeof *d);
    if (!d) return LF_ERR_NOMEM;
    d->teacher = teacher;
    d->o = *o;
    /* frozen (no gradients, no optimizer moments), inference (no dropout), forward-only plan */
    st = lf_model_set_trainable(teacher, "", 0, NULL);
    lf_model_set_training(teacher, 0, 0);
    lf_model_set_forward_only(teacher, 1);
    if (st) {
        free(d);
        return st;
    }
    *out = d;
    return LF_OK;
}

lf_status lf_distill_open(lf_distill **out, const char *path, const lf_tokenizer *tok, const lf_distill_opts *o) {
    *out = NULL;
    lf_model *m = NULL;
    lf_tokenizer *ttok = NULL;
    lf_status st;
    if (lf_is_gguf(path)) { /* forward only: the linear weights may stay quantized */
        lf_gguf_load_opts go = {.keep_quantized = 1};
        st = lf_gguf_load_with(&m, &ttok, path, &go);
    } else {
        st = lf_model_load(&m, path);
        char p[4200];
        snprintf(p, sizeof p, "%s/tokenizer.json", path);
        if (!st && lf_path_exists(p)) st = lf_tokenizer_load(&ttok, p);
    }
    if (st) {
        char msg[1200];
        snprintf(msg, sizeof msg, "teacher: %s", lf_last_error());
        lf_set_error("%s", msg);
        lf_model_free(m);
        return st;
    }
    int tv = lf_model_config(m)->vocab_size, sv = tok ? lf_tokenizer_vocab_size(tok) : tv;
    if (tok && ttok && lf_tokenizer_fingerprint(ttok) != lf_tokenizer_fingerprint(tok)) {
        lf_set_error("teacher %s: its tokenizer is not the student's (fingerprint %016llx vs %016llx, %d vs %d tokens): "
                     "distillation matches the two models token by token, so train the student with the teacher's tokenizer "
                     "(prepare the data with it)", path, (unsigned long long)lf_tokenizer_fingerprint(ttok),
                     (unsigned long long)lf_tokenizer_fingerprint(tok), lf_tokenizer_vocab_size(ttok), sv);
        st = LF_ERR_ARG;
    } else if (tv < sv) {
        lf_set_error("teacher %s: its vocabulary (%d) is smaller than the tokenizer's (%d): a teacher for another tokenizer?",
                     path, tv, sv);
        st = LF_ERR_ARG;
    }
    lf_tokenizer_free(ttok);
    if (!st) st = lf_distill_from_model(out, m, o);
    if (st) lf_model_free(m);
    return st;
}

void lf_distill_free(lf_distill *d) {
    if (!d) return;
    lf_model_free(d->teacher);
    free(d->last_in);
    free(d);
}

lf_model *lf_distill_teacher(lf_distill *d) { return d->teacher; }

lf_status lf_distill_attach(lf_distill *d, lf_model *student) {
    const lf_config *sc = lf_model_config(student), *tc = lf_model_config(d->teacher);
    if (sc->vocab_size != tc->vocab_size) {
        lf_set_error("distill: the student has %d output tokens and the teacher %d: both must use one tokenizer and vocabulary",
                     sc->vocab_size, tc->vocab_size);
        return LF_ERR_ARG;
    }
    d->student = student;
    for (int k = 0; k < d->o.n_pairs; k++) {
        int ls = d->o.student_layer[k], lt = d->o.teacher_layer[k];
        if (ls > sc->n_layer || lt > tc->n_layer) {
            lf_set_error("hidden_layers pair %d:%d is out of range: the student has layers 0..%d, the teacher 0..%d "
                         "(L = the residual stream entering block L)", ls, lt, sc->n_layer, tc->n_layer);
            return LF_ERR_ARG;
        }
        d->proj[k] = NULL;
        if (sc->d_model == tc->d_model) continue;
        char name[64];
        snprintf(name, sizeof name, "distill.proj.%d.weight", k);
        lf_param *w = lf_model_find(student, name);
        if (!w) {
            lf_status st = lf_model_add_param(student, name, tc->d_model, sc->d_model, LF_KIND_WEIGHT, LF_PARAM_TRAINABLE, &w);
            if (st) return st;
            float sd = 1.0f / sqrtf((float)sc->d_model); /* keeps W·h at h's scale */
            for (size_t i = 0; i < w->numel; i++) w->data[i] = sd * lf_randn(d->o.seed, 0xd157 + (uint64_t)k, i);
        } else if (w->shape[0] != tc->d_model || w->shape[1] != sc->d_model) {
            lf_set_error("distill: the student's %s has the wrong shape for these widths", name);
            return LF_ERR_ARG;
        }
        d->proj[k] = w;
    }
    return LF_OK;
}

/* the teacher's forward on b, unless its last run was on the same tokens (and had logits when asked) */
static lf_status teacher_run(lf_distill *d, const lf_batch *b, int need_logits) {
    size_t n = (size_t)b->B * b->T;
    if (d->have_run && d->last_B == b->B && d->last_T == b->T && (d->have_logits || !need_logits) &&
        !memcmp(d->last_in, b->inputs, n * sizeof(int32_t)))
        return LF_OK;
    if (n > d->in_cap) {
        free(d->last_in);
        d->last_in = malloc(n * sizeof(int32_t));
        d->in_cap = d->last_in ? n : 0;
        if (!d->last_in) return LF_ERR_NOMEM;
    }
    d->have_run = 0;
    lf_status st = lf_model_forward(d->teacher, b->inputs, b->B, b->T, need_logits ? LF_LOGITS_ALL : LF_LOGITS_NONE);
    if (st) return st;
    memcpy(d->last_in, b->inputs, n * sizeof(int32_t));
    d->last_B = b->B;
    d->last_T = b->T;
    d->have_run = 1;
    d->have_logits = need_logits;
    d->logp_temp = 0;
    return LF_OK;
}

/* ---------------------------------------------------------------- reference kernels */

static void log_softmax_ref(const float *z, int V, double invT, double *out) {
    double mx = -INFINITY, s = 0;
    for (int v = 0; v < V; v++) mx = fmax(mx, z[v] * invT);
    for (int v = 0; v < V; v++) s += exp(z[v] * invT - mx);
    for (int v = 0; v < V; v++) out[v] = z[v] * invT - mx - log(s);
}

double lf_distill_row_ref(lf_distill_kind kind, const float *zs, const float *zt, int V, float temperature, float beta,
                          double *dz) {
    double *ls = malloc(sizeof(double) * V), *lt = malloc(sizeof(double) * V), *dq = malloc(sizeof(double) * V);
    LF_ASSERT(ls && lt && dq);
    double invT = 1.0 / temperature, T2 = (double)temperature * temperature, b = beta, D = 0;
    log_softmax_ref(zs, V, invT, ls);
    log_softmax_ref(zt, V, invT, lt);
    if (kind == LF_DISTILL_JSD && b == 0.0) kind = LF_DISTILL_KL; /* TRL's two ends */
    if (kind == LF_DISTILL_JSD && b == 1.0) kind = LF_DISTILL_RKL;
    for (int v = 0; v < V; v++) { /* D and its partial derivatives in q, unsimplified */
        double q = exp(ls[v]), p = exp(lt[v]);
        if (kind == LF_DISTILL_KL) {
            D += p * (lt[v] - ls[v]);
            dq[v] = -p / q;
        } else if (kind == LF_DISTILL_RKL) {
            D += q * (ls[v] - lt[v]);
            dq[v] = ls[v] + 1 - lt[v];
        } else {
            double m = b * p + (1 - b) * q, lm = log(m);
            D += b * p * (lt[v] - lm) + (1 - b) * q * (ls[v] - lm);
            dq[v] = -b * p * (1 - b) / m + (1 - b) * (ls[v] + 1 - lm) - (1 - b) * q * (1 - b) / m;
        }
    }
    if (dz) { /* through q = softmax(zs/τ): dz_u = (1/τ)·q_u·(dq_u − Σ_v q_v·dq_v) */
        double s = 0;
        for (int v = 0; v < V; v++) s += exp(ls[v]) * dq[v];
        for (int v = 0; v < V; v++) dz[v] = T2 * invT * exp(ls[v]) * (dq[v] - s);
    }
    free(ls), free(lt), free(dq);
    return T2 * D;
}

double lf_distill_hidden_ref(lf_hidden_kind kind, const float *hs, const float *ht, const float *W, int Cs, int Ct,
                             double *dhs, double *dW) {
    double *y = malloc(sizeof(double) * Ct), *dy = malloc(sizeof(double) * Ct), L = 0;
    LF_ASSERT(y && dy);
    for (int o = 0; o < Ct; o++) {
        double s = 0;
        if (W)
            for (int i = 0; i < Cs; i++) s += (double)W[(size_t)o * Cs + i] * hs[i];
        else s = hs[o];
        y[o] = s;
    }
    if (kind == LF_HIDDEN_MSE) {
        for (int o = 0; o < Ct; o++) {
            L += (y[o] - ht[o]) * (y[o] - ht[o]) / Ct;
            dy[o] = 2 * (y[o] - ht[o]) / Ct;
        }
    } else {
        double yy = 0, tt = 0, yt = 0;
        for (int o = 0; o < Ct; o++) yy += y[o] * y[o], tt += (double)ht[o] * ht[o], yt += y[o] * ht[o];
        double a = sqrt(fmax(yy, 1e-24)), bn = sqrt(fmax(tt, 1e-24));
        L = 1 - yt / (a * bn);
        for (int o = 0; o < Ct; o++) dy[o] = -(ht[o] / (a * bn) - yt * y[o] / (a * a * a * bn));
    }
    if (dhs)
        for (int i = 0; i < Cs; i++) {
            double s = 0;
            if (W)
                for (int o = 0; o < Ct; o++) s += dy[o] * W[(size_t)o * Cs + i];
            else s = dy[i];
            dhs[i] = s;
        }
    if (dW && W)
        for (int o = 0; o < Ct; o++)
            for (int i = 0; i < Cs; i++) dW[(size_t)o * Cs + i] = dy[o] * hs[i];
    free(y), free(dy);
    return L;
}

/* ---------------------------------------------------------------- the logit term */

typedef struct {
    lf_distill *d;
    float *lse, *S, *val; // (cap) per row: student log-sum-exp at τ, Σ q·g, τ²·D
    size_t cap, counted;
} logit_ctx;

/* log_softmax(z/τ) in place, per row */
static void to_logp(float *z, size_t rows, int V, float invT) {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        float *x = z + r * (size_t)V, mx = x[0], s = 0.0f;
        for (int v = 1; v < V; v++) mx = x[v] > mx ? x[v] : mx;
#pragma omp simd reduction(+ : s)
        for (int v = 0; v < V; v++) s += lf_vexpf((x[v] - mx) * invT);
        float l = mx * invT + logf(s);
#pragma omp simd
        for (int v = 0; v < V; v++) x[v] = x[v] * invT - l;
    }
}

/* exp of a log-probability, 0 below e^-60: products of smaller probabilities with the gradient's
 * 1/(rows) scale land in float's denormal range, whose arithmetic is ~100x slower on x86 (the KL
 * step ran 4x slower than JSD's for it); what is dropped is below 1e-26 of the row's mass */
static inline float pexp(float x) { return x < -60.0f ? 0.0f : lf_vexpf(x); }

static int jsd_end(const lf_distill_opts *o) { /* TRL's β = 0 and β = 1 are the plain KLs */
    if (o->kind != LF_DISTILL_JSD) return o->kind;
    return o->beta == 0.0f ? LF_DISTILL_KL : o->beta == 1.0f ? LF_DISTILL_RKL : LF_DISTILL_JSD;
}

static lf_status logit_forward(lf_loss_term *t, lf_model *m, const lf_batch *b, const float *logits, size_t rows, int V,
                               double *value) {
    logit_ctx *c = t->ctx;
    lf_distill *d = c->d;
    size_t N = (size_t)b->B * b->T;
    (void)m;
    if (rows != N) {
        lf_set_error("distill: the logit term needs the logits of every position (%zu rows, got %zu)", N, rows);
        return LF_ERR_ARG;
    }
    if (V != lf_model_config(d->teacher)->vocab_size) {
        lf_set_error("distill: the student has %d output tokens, the teacher %d", V, lf_model_config(d->teacher)->vocab_size);
        return LF_ERR_ARG;
    }
    lf_status st = teacher_run(d, b, 1);
    if (st) return st;
    float tau = d->o.temperature, invT = 1.0f / tau, beta = d->o.beta;
    size_t trows;
    float *tl = lf_model_logits(d->teacher, &trows); // (N,V)
    LF_ASSERT(trows == N);
    if (d->logp_temp != tau) {
        to_logp(tl, N, V, invT);
        d->logp_temp = tau;
    }
    if (N > c->cap) {
        free(c->lse), free(c->S), free(c->val);
        c->lse = malloc(N * sizeof(float));
        c->S = malloc(N * sizeof(float));
        c->val = malloc(N * sizeof(float));
        c->cap = c->lse && c->S && c->val ? N : 0;
        if (!c->cap) return LF_ERR_NOMEM;
    }
    int kind = jsd_end(&d->o);
    float T2 = tau * tau;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++) {
        c->val[r] = 0;
        if (b->targets[r] < 0) continue;
        const float *zs = logits + r * (size_t)V, *lp = tl + r * (size_t)V;
        float mx = zs[0], se = 0.0f, D = 0.0f, S = 0.0f;
        for (int v = 1; v < V; v++) mx = zs[v] > mx ? zs[v] : mx;
#pragma omp simd reduction(+ : se)
        for (int v = 0; v < V; v++) se += lf_vexpf((zs[v] - mx) * invT);
        float lse = mx * invT + logf(se);
        if (kind == LF_DISTILL_KL) {
#pragma omp simd reduction(+ : D)
            for (int v = 0; v < V; v++) D += pexp(lp[v]) * (lp[v] - (zs[v] * invT - lse));
        } else if (kind == LF_DISTILL_RKL) {
#pragma omp simd reduction(+ : D)
            for (int v = 0; v < V; v++) {
                float ls = zs[v] * invT - lse;
                D += pexp(ls) * (ls - lp[v]);
            }
            S = D;
        } else {
#pragma omp simd reduction(+ : D, S)
            for (int v = 0; v < V; v++) { /* an underflowed mixture is taken as FLT_MIN: its terms are ~0 */
                float ls = zs[v] * invT - lse, q = pexp(ls), p = pexp(lp[v]);
                float lm = lf_vlogf(beta * p + (1 - beta) * q);
                D += beta * p * (lp[v] - lm) + (1 - beta) * q * (ls - lm);
                S += q * (1 - beta) * (ls - lm);
            }
        }
        c->lse[r] = lse;
        c->S[r] = (float)S;
        c->val[r] = (float)(T2 * D);
    }
    double sum = 0;
    size_t cnt = 0;
    for (size_t r = 0; r < N; r++) /* in order: the same sum for any thread count */
        if (b->targets[r] >= 0) {
            float w = b->row_weight ? b->row_weight[r / (size_t)b->T] : 1.0f;
            sum += (double)w * c->val[r];
            cnt++;
        }
    c->counted = cnt;
    *value = cnt ? sum / cnt : 0.0;
    return LF_OK;
}

static void logit_backward_rows(lf_loss_term *t, const lf_batch *b, const float *logits, float *dlogits, size_t r0,
                                size_t r1, int V, float scale, int accum) {
    logit_ctx *c = t->ctx;
    lf_distill *d = c->d;
    float tau = d->o.temperature, invT = 1.0f / tau, beta = d->o.beta;
    const float *tl = lf_model_logits(d->teacher, NULL);
    int kind = jsd_end(&d->o);
#pragma omp parallel for schedule(static)
    for (size_t r = r0; r < r1; r++) {
        const float *zs = logits + (r - r0) * (size_t)V, *lp = tl + r * (size_t)V;
        float *dz = dlogits + (r - r0) * (size_t)V;
        if (b->targets[r] < 0 || !c->counted) {
            if (!accum) memset(dz, 0, sizeof(float) * V);
            continue;
        }
        /* τ²·(1/τ) from the chain rule through zs/τ */
        float w = b->row_weight ? b->row_weight[r / (size_t)b->T] : 1.0f, k = scale * w * tau / (float)c->counted;
        float lse = c->lse[r], S = c->S[r];
        if (kind == LF_DISTILL_KL) {
#pragma omp simd
            for (int v = 0; v < V; v++) {
                float g = k * (pexp(zs[v] * invT - lse) - pexp(lp[v]));
                dz[v] = accum ? dz[v] + g : g;
            }
        } else if (kind == LF_DISTILL_RKL) {
#pragma omp simd
            for (int v = 0; v < V; v++) {
                float ls = zs[v] * invT - lse, g = k * pexp(ls) * (ls - lp[v] - S);
                dz[v] = accum ? dz[v] + g : g;
            }
        } else {
            float keep = accum ? 1.0f : 0.0f;
#pragma omp simd
            for (int v = 0; v < V; v++) {
                float ls = zs[v] * invT - lse, q = pexp(ls), lm = lf_vlogf(beta * pexp(lp[v]) + (1 - beta) * q);
                float g = k * q * ((1 - beta) * (ls - lm) - S);
                dz[v] = keep * dz[v] + g; /* in place (accum 0) dz holds finite logits: 0·dz = 0 */
            }
        }
    }
}

static void logit_free(lf_loss_term *t) {
    logit_ctx *c = t->ctx;
    if (c) free(c->lse), free(c->S), free(c->val), free(c);
    free(t);
}

lf_loss_term *lf_distill_logit_term(lf_distill *d, float weight) {
    lf_loss_term *t = calloc(1, sizeof *t);
    logit_ctx *c = calloc(1, sizeof *c);
    if (!t || !c) {
        free(t), free(c);
        lf_set_error("out of memory");
        return NULL;
    }
    c->d = d;
    static const char *names[] = {"distill_kl", "distill_rkl", "distill_jsd"};
    *t = (lf_loss_term){names[d->o.kind], weight, LF_LOGITS_ALL, c, logit_forward, logit_backward_rows, NULL, logit_free};
    return t;
}

/* ---------------------------------------------------------------- the hidden-state term */

typedef struct {
    lf_distill *d;
    size_t N, cap;                 /* counted positions of the last batch */
    size_t *pos;                   // (cap) their index in (B,T)
    float *w;                      // (cap) row weight / (N · pairs)
    float *hs[LF_DISTILL_MAX_PAIRS], *dy[LF_DISTILL_MAX_PAIRS]; // (cap,Cs) (cap,Ct)
    float *y, *ht, *dhs;           // (cap,Ct) (cap,Ct) (cap,Cs) scratch
} hidden_ctx;

static void hidden_release(hidden_ctx *h) {
    free(h->pos), free(h->w), free(h->y), free(h->ht), free(h->dhs);
    for (int k = 0; k < LF_DISTILL_MAX_PAIRS; k++) free(h->hs[k]), free(h->dy[k]);
}

static lf_status hidden_reserve(hidden_ctx *h, size_t N, int Cs, int Ct, int P) {
    if (N <= h->cap) return LF_OK;
    hidden_release(h);
    memset(h->hs, 0, sizeof h->hs);
    memset(h->dy, 0, sizeof h->dy);
    h->cap = 0;
    h->pos = malloc(N * sizeof(size_t));
    h->w = malloc(N * sizeof(float));
    h->y = malloc(N * Ct * sizeof(float));
    h->ht = malloc(N * Ct * sizeof(float));
    h->dhs = malloc(N * Cs * sizeof(float));
    int ok = h->pos && h->w && h->y && h->ht && h->dhs;
    for (int k = 0; k < P; k++) {
        h->hs[k] = malloc(N * Cs * sizeof(float));
        h->dy[k] = malloc(N * Ct * sizeof(float));
        ok = ok && h->hs[k] && h->dy[k];
    }
    if (!ok) return LF_ERR_NOMEM;
    h->cap = N;
    return LF_OK;
}

static lf_status hidden_forward(lf_loss_term *t, lf_model *m, const lf_batch *b, const float *logits, size_t rows, int V,
                                double *value) {
    (void)logits, (void)rows, (void)V;
    hidden_ctx *h = t->ctx;
    lf_distill *d = h->d;
    int P = d->o.n_pairs, Cs = lf_model_config(m)->d_model, Ct = lf_model_config(d->teacher)->d_model, T = b->T;
    size_t NT = (size_t)b->B * T, N = 0;
    lf_status st = teacher_run(d, b, d->have_run ? d->have_logits : 0); /* the logit term's run when there is one */
    if (!st) st = hidden_reserve(h, NT, Cs, Ct, P);
    if (st) return st;
    for (size_t i = 0; i < NT; i++)
        if (b->targets[i] >= 0) h->pos[N++] = i;
    h->N = N;
    for (size_t n = 0; n < N; n++) h->w[n] = (b->row_weight ? b->row_weight[h->pos[n] / (size_t)T] : 1.0f) / ((float)N * P);
    double total = 0;
    for (int k = 0; k < P; k++) {
        const float *HS = lf_model_hidden(m, d->o.student_layer[k]), *HT = lf_model_hidden(d->teacher, d->o.teacher_layer[k]);
        for (size_t n = 0; n < N; n++) {
            memcpy(h->hs[k] + n * Cs, HS + h->pos[n] * Cs, sizeof(float) * Cs);
            memcpy(h->ht + n * Ct, HT + h->pos[n] * Ct, sizeof(float) * Ct);
        }
        const float *y = h->hs[k];
        if (d->proj[k] && N) {
            lf_linear_forward(h->y, Ct, h->hs[k], Cs, d->proj[k]->data, NULL, N, Cs, Ct);
            y = h->y;
        }
        float *dy = h->dy[k];
        double *lv = malloc(sizeof(double) * (N ? N : 1));
        if (!lv) return LF_ERR_NOMEM;
        lf_hidden_kind kind = d->o.hidden;
#pragma omp parallel for schedule(static)
        for (size_t n = 0; n < N; n++) { /* loss per position and d(w·loss)/dy */
            const float *yn = y + n * Ct, *tn = h->ht + n * Ct;
            float *g = dy + n * Ct, w = h->w[n];
            if (kind == LF_HIDDEN_MSE) {
                double s = 0;
                for (int o = 0; o < Ct; o++) {
                    float e = yn[o] - tn[o];
                    s += (double)e * e;
                    g[o] = w * 2.0f * e / Ct;
                }
                lv[n] = s / Ct;
            } else {
                double yy = 0, tt = 0, yt = 0;
                for (int o = 0; o < Ct; o++) yy += (double)yn[o] * yn[o], tt += (double)tn[o] * tn[o], yt += (double)yn[o] * tn[o];
                double a = sqrt(fmax(yy, 1e-24)), bn = sqrt(fmax(tt, 1e-24));
                float c1 = (float)(w / (a * bn)), c2 = (float)(w * yt / (a * a * a * bn));
                for (int o = 0; o < Ct; o++) g[o] = c2 * yn[o] - c1 * tn[o];
                lv[n] = 1 - yt / (a * bn);
            }
        }
        for (size_t n = 0; n < N; n++) total += h->w[n] * lv[n];
        free(lv);
    }
    *value = total;
    return LF_OK;
}

static lf_status hidden_backward(lf_loss_term *t, lf_model *m, const lf_batch *b, float scale) {
    (void)b;
    hidden_ctx *h = t->ctx;
    lf_distill *d = h->d;
    int P = d->o.n_pairs, Cs = lf_model_config(m)->d_model, Ct = lf_model_config(d->teacher)->d_model;
    size_t N = h->N;
    if (!N) return LF_OK;
    lf_status st = lf_model_alloc_grads(m);
    if (st) return st;
    for (int k = 0; k < P; k++) {
        float *dy = h->y; /* scratch: scale × the forward's dy */
        for (size_t i = 0; i < N * Ct; i++) dy[i] = scale * h->dy[k][i];
        const float *dhs = dy;
        if (d->proj[k]) {
            lf_linear_backward(h->dhs, Cs, 0, d->proj[k]->grad, NULL, dy, Ct, h->hs[k], d->proj[k]->data, N, Cs, Ct);
            dhs = h->dhs;
        }
        float *hg = lf_model_hidden_grad(m, d->o.student_layer[k]); // (B,T,Cs)
        for (size_t n = 0; n < N; n++) {
            float *g = hg + h->pos[n] * Cs;
            const float *s = dhs + n * Cs;
            for (int i = 0; i < Cs; i++) g[i] += s[i];
        }
    }
    return LF_OK;
}

static void hidden_free(lf_loss_term *t) {
    hidden_ctx *h = t->ctx;
    if (h) hidden_release(h), free(h);
    free(t);
}

lf_loss_term *lf_distill_hidden_term(lf_distill *d, float weight) {
    if (d->o.n_pairs == 0) return NULL;
    lf_loss_term *t = calloc(1, sizeof *t);
    hidden_ctx *h = calloc(1, sizeof *h);
    if (!t || !h) {
        free(t), free(h);
        lf_set_error("out of memory");
        return NULL;
    }
    h->d = d;
    *t = (lf_loss_term){d->o.hidden == LF_HIDDEN_MSE ? "distill_hidden_mse" : "distill_hidden_cosine", weight, LF_LOGITS_NONE,
                        h, hidden_forward, NULL, hidden_backward, hidden_free};
    return t;
}

/* ---------------------------------------------------------------- every-k-th-layer student */

/* the block index in a parameter name ("model.layers.N." / "transformer.h.N."), or -1 */
static int block_of(const char *name, const char **rest) {
    const char *pre[] = {"model.layers.", "transformer.h."};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(pre[i]);
        if (strncmp(name, pre[i], n)) continue;
        char *end;
        long l = strtol(name + n, &end, 10);
        if (*end != '.') return -1;
        *rest = end;
        return (int)l;
    }
    return -1;
}

lf_status lf_distill_student_every_k(lf_model **out, lf_model *teacher, int k) {
    *out = NULL;
    lf_config c = *lf_model_config(teacher);
    if (k < 1 || k > c.n_layer) {
        lf_set_error("student_init every_k:%d: k must be in 1..%d (the teacher's blocks)", k, c.n_layer);
        return LF_ERR_ARG;
    }
    c.n_layer = (c.n_layer + k - 1) / k;
    lf_model *s;
    lf_status st = lf_model_init(&s, &c);
    if (st) return st;
    for (int i = 0; i < lf_model_num_params(s) && !st; i++) {
        lf_param *p = lf_model_param(s, i);
        const char *rest = NULL;
        char tname[160];
        int l = block_of(p->name, &rest);
        if (l >= 0) snprintf(tname, sizeof tname, "%s%d%s", !strncmp(p->name, "model.", 6) ? "model.layers." : "transformer.h.", l * k, rest);
        else snprintf(tname, sizeof tname, "%s", p->name);
        lf_param *q = lf_model_find(teacher, tname);
        if (!q || q->numel != p->numel) {
            lf_set_error("student_init: the teacher has no tensor %s of %zu values", tname, p->numel);
            st = LF_ERR_FORMAT;
        } else if (q->qops) q->qops->dequantize(q, p->data);
        else memcpy(p->data, q->data, p->numel * sizeof(float));
    }
    if (!st) st = lf_model_check_finite(s, "student_init");
    if (st) {
        lf_model_free(s);
        return st;
    }
    *out = s;
    return LF_OK;
}

/* ---------------------------------------------------------------- teacher cache */

#define CACHE_MAGIC "LFDCACHE"
#define CACHE_VERSION 1u
#define CACHE_HEADER 48
#define CACHE_MAX_K 1024

static uint64_t row_hash(const int32_t *tok, int T) {
    uint64_t h = 0x6c66646361636865ull;
    for (int t = 0; t < T; t++) h = lf_hash64(h, (uint64_t)t, (uint64_t)(uint32_t)tok[t]);
    return h;
}

/* the k largest of x (V), largest first */
static void top_k(const float *x, int V, int k, int32_t *ids, float *vals) {
    int n = 0;
    for (int v = 0; v < V; v++) {
        if (n == k && x[v] <= vals[k - 1]) continue;
        int i = n < k ? n++ : k - 1;
        while (i > 0 && vals[i - 1] < x[v]) {
            vals[i] = vals[i - 1];
            ids[i] = ids[i - 1];
            i--;
        }
        vals[i] = x[v];
        ids[i] = v;
    }
}

typedef struct {
    lf_distill *d;
    lf_batch_source *src;
    int B, T, k;
    long batches;
    uint64_t fp;
} cache_writer;

static lf_status put_sha(FILE *f, const char *path, lf_sha256 *sh, const void *p, size_t n) {
    lf_sha256_update(sh, p, n);
    return lf_write_all(f, p, n, path);
}

static lf_status cache_write_fn(FILE *f, const char *path, const void *ctx) {
    const cache_writer *w = ctx;
    lf_distill *d = w->d;
    int V = lf_model_config(d->teacher)->vocab_size, T = w->T, k = w->k;
    uint8_t h[CACHE_HEADER] = {0};
    uint32_t u[4] = {CACHE_VERSION, (uint32_t)k, (uint32_t)V, (uint32_t)T};
    uint64_t rows = (uint64_t)w->batches * w->B;
    float tau = d->o.temperature;
    memcpy(h, CACHE_MAGIC, 8);
    memcpy(h + 8, u, 16);
    memcpy(h + 24, &rows, 8);
    memcpy(h + 32, &w->fp, 8);
    memcpy(h + 40, &tau, 4);
    lf_sha256 sh;
    lf_sha256_init(&sh);
    lf_status st = put_sha(f, path, &sh, h, sizeof h);
    lf_batch b;
    if (!st) st = lf_batch_alloc(&b, w->B, T);
    if (st) return st;
    size_t per = (size_t)T * k;
    int32_t *ids = malloc(per * sizeof(int32_t));
    float *lp = malloc(per * sizeof(float));
    if (!ids || !lp) st = LF_ERR_NOMEM;
    for (long i = 0; !st && i < w->batches; i++) {
        st = w->src->next(w->src, &b);
        if (!st) st = teacher_run(d, &b, 1);
        if (st) break;
        float *tl = lf_model_logits(d->teacher, NULL); // (B·T, V)
        if (d->logp_temp != tau) {
            to_logp(tl, (size_t)w->B * T, V, 1.0f / tau);
            d->logp_temp = tau;
        }
        for (int r = 0; !st && r < w->B; r++) {
#pragma omp parallel for schedule(static)
            for (int t = 0; t < T; t++) top_k(tl + ((size_t)r * T + t) * V, V, k, ids + (size_t)t * k, lp + (size_t)t * k);
            uint64_t hh = row_hash(b.inputs + (size_t)r * T, T);
            st = put_sha(f, path, &sh, &hh, 8);
            if (!st) st = put_sha(f, path, &sh, ids, per * sizeof(int32_t));
            if (!st) st = put_sha(f, path, &sh, lp, per * sizeof(float));
        }
    }
    uint8_t dig[32];
    lf_sha256_final(&sh, dig);
    if (!st) st = lf_write_all(f, dig, 32, path);
    free(ids), free(lp);
    lf_batch_free(&b);
    return st;
}

lf_status lf_distill_cache_write(lf_distill *d, lf_batch_source *src, int B, int T, long batches, int k, uint64_t fingerprint,
                                 const char *path) {
    int V = lf_model_config(d->teacher)->vocab_size;
    if (k < 1 || k > V || k > CACHE_MAX_K || B < 1 || T < 1 || batches < 1) {
        lf_set_error("teacher cache: k must be in 1..%d (and at most the vocabulary, %d), with at least one batch", CACHE_MAX_K, V);
        return LF_ERR_ARG;
    }
    cache_writer w = {d, src, B, T, k, batches, fingerprint};
    return lf_write_atomic_with(path, cache_write_fn, &w);
}

struct lf_distill_cache {
    char path[512];
    uint8_t *buf;         /* the whole file */
    int k, V, T;
    float tau;
    uint64_t rows;
    uint64_t *keys;       // (cap) open addressing: row hash (0 = empty)
    const uint8_t **vals; // (cap) the row's ids
    size_t cap;
};

void lf_distill_cache_free(lf_distill_cache *c) {
    if (!c) return;
    free(c->buf), free(c->keys), free(c->vals), free(c);
}

int lf_distill_cache_k(const lf_distill_cache *c) { return c->k; }

static const uint8_t *cache_find(const lf_distill_cache *c, uint64_t h) {
    h = h ? h : 1;
    for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        if (c->keys[i] == h) return c->vals[i];
        if (!c->keys[i]) return NULL;
    }
}

lf_status lf_distill_cache_open(lf_distill_cache **out, const char *path, uint64_t fingerprint, int vocab, int T,
                                float temperature) {
    *out = NULL;
    size_t len = 0;
    lf_status st = lf_check_regular(path);
    uint8_t *buf = st ? NULL : (uint8_t *)lf_read_file(path, &len);
    if (!buf) return st ? st : LF_ERR_IO;
    lf_distill_cache *c = calloc(1, sizeof *c);
    if (!c) {
        free(buf);
        return LF_ERR_NOMEM;
    }
    c->buf = buf;
    snprintf(c->path, sizeof c->path, "%s", path);
#define BAD(...)                                                                                   \
    do {                                                                                           \
        lf_set_error(__VA_ARGS__);                                                                 \
        lf_distill_cache_free(c);                                                                  \
        return LF_ERR_FORMAT;                                                                      \
    } while (0)
    if (len < CACHE_HEADER + 32 || memcmp(buf, CACHE_MAGIC, 8)) BAD("%s: not a teacher cache (no LFDCACHE header)", path);
    uint32_t u[4];
    uint64_t fp;
    memcpy(u, buf + 8, 16);
    memcpy(&c->rows, buf + 24, 8);
    memcpy(&fp, buf + 32, 8);
    memcpy(&c->tau, buf + 40, 4);
    if (u[0] != CACHE_VERSION) BAD("%s: teacher cache version %u; this lmforge reads version %u (write it again)", path, u[0], CACHE_VERSION);
    c->k = (int)u[1], c->V = (int)u[2], c->T = (int)u[3];
    if (u[1] < 1 || u[1] > u[2] || u[1] > CACHE_MAX_K || u[2] > (1u << 24) || u[3] < 1 || u[3] > (1u << 20))
        BAD("%s: teacher cache header out of range (k %u, vocabulary %u, T %u): the file is damaged", path, u[1], u[2], u[3]);
    size_t row_bytes = 8 + (size_t)c->T * c->k * 8;
    if (c->rows == 0 || c->rows > (len - CACHE_HEADER - 32) / row_bytes || CACHE_HEADER + c->rows * row_bytes + 32 != len)
        BAD("%s: %zu bytes, but the header says %llu rows of %zu bytes: the file is truncated or damaged", path, len,
            (unsigned long long)c->rows, row_bytes);
    uint8_t dig[32];
    lf_sha256 sh;
    lf_sha256_init(&sh);
    lf_sha256_update(&sh, buf, len - 32);
    lf_sha256_final(&sh, dig);
    if (memcmp(dig, buf + len - 32, 32)) BAD("%s: checksum mismatch: the teacher cache is damaged (write it again)", path);
    if (fp != fingerprint)
        BAD("%s: the cache was written with another tokenizer (fingerprint %016llx, the run's %016llx)", path,
            (unsigned long long)fp, (unsigned long long)fingerprint);
    if (c->V != vocab || c->T != T || c->tau != temperature)
        BAD("%s: the cache holds vocabulary %d, context %d, temperature %g; the run has %d, %d, %g (write a cache for these)",
            path, c->V, c->T, c->tau, vocab, T, temperature);
    c->cap = 16;
    while (c->cap < 2 * c->rows) c->cap *= 2;
    c->keys = calloc(c->cap, sizeof *c->keys);
    c->vals = calloc(c->cap, sizeof *c->vals);
    if (!c->keys || !c->vals) {
        lf_distill_cache_free(c);
        return LF_ERR_NOMEM;
    }
    for (uint64_t r = 0; r < c->rows; r++) {
        const uint8_t *row = buf + CACHE_HEADER + r * row_bytes;
        uint64_t h;
        memcpy(&h, row, 8);
        h = h ? h : 1;
        size_t i = h & (c->cap - 1);
        while (c->keys[i] && c->keys[i] != h) i = (i + 1) & (c->cap - 1);
        if (c->keys[i]) continue; /* the same tokens twice: the same teacher output */
        c->keys[i] = h;
        c->vals[i] = row + 8;
        const int32_t *ids = (const int32_t *)(row + 8);
        for (size_t j = 0; j < (size_t)c->T * c->k; j++)
            if (ids[j] < 0 || ids[j] >= c->V) BAD("%s: row %llu has token id %d outside the vocabulary: the file is damaged", path, (unsigned long long)r, ids[j]);
    }
#undef BAD
    *out = c;
    return LF_OK;
}

/* 1 − Σ p of the top k; below CACHE_TAIL_MIN it is rounding noise of the sum (top k holding all the
 * mass) and counts as 0, and the student's tail is taken as at least that much, so that the ratio
 * r/q_tail stays a ratio of masses, not of rounding errors */
#define CACHE_TAIL_MIN 1e-5
static double tail_mass(double P) { return 1 - P < CACHE_TAIL_MIN ? 0.0 : 1 - P; }

double lf_distill_cache_row_ref(const float *zs, const int32_t *ids, const float *lp, int k, int V, float temperature,
                                double *dz) {
    double *ls = malloc(sizeof(double) * V), invT = 1.0 / temperature, T2 = (double)temperature * temperature, P = 0, Q = 0, D = 0;
    LF_ASSERT(ls);
    log_softmax_ref(zs, V, invT, ls);
    for (int j = 0; j < k; j++) {
        double p = exp(lp[j]), q = exp(ls[ids[j]]);
        P += p, Q += q;
        D += p * (lp[j] - ls[ids[j]]);
    }
    double r = tail_mass(P), qt = fmax(1 - Q, CACHE_TAIL_MIN);
    if (r > 0) D += r * (log(r) - log(qt));
    if (dz) /* (1/τ)·q_u·(g_u + 1), g = ∂D/∂q: −p/q on the top k, −r/q_tail on the rest */
        for (int v = 0; v < V; v++) dz[v] = T2 * invT * exp(ls[v]) * (1 - r / qt);
    for (int j = 0; dz && j < k; j++) dz[ids[j]] = T2 * invT * (exp(ls[ids[j]]) - exp(lp[j]));
    free(ls);
    return T2 * D;
}

typedef struct {
    lf_distill_cache *c;
    const uint8_t **row; // (B) each batch row's cached entry
    int rcap;
    float *lse, *rt;     // (cap) per position: student log-sum-exp at τ, r/q_tail
    size_t cap, counted;
} cache_term_ctx;

static lf_status cache_forward(lf_loss_term *t, lf_model *m, const lf_batch *b, const float *logits, size_t rows, int V,
                               double *value) {
    (void)m;
    cache_term_ctx *x = t->ctx;
    lf_distill_cache *c = x->c;
    size_t N = (size_t)b->B * b->T;
    int k = c->k, T = b->T;
    if (rows != N || V != c->V || T != c->T) {
        lf_set_error("teacher cache %s: holds vocabulary %d and context %d; the batch has %d and %d", c->path, c->V, c->T, V, T);
        return LF_ERR_ARG;
    }
    if (b->B > x->rcap) {
        free(x->row);
        x->row = malloc(sizeof *x->row * b->B);
        x->rcap = x->row ? b->B : 0;
        if (!x->row) return LF_ERR_NOMEM;
    }
    if (N > x->cap) {
        free(x->lse), free(x->rt);
        x->lse = malloc(N * sizeof(float));
        x->rt = malloc(N * sizeof(float));
        x->cap = x->lse && x->rt ? N : 0;
        if (!x->cap) return LF_ERR_NOMEM;
    }
    for (int r = 0; r < b->B; r++)
        if (!(x->row[r] = cache_find(c, row_hash(b->inputs + (size_t)r * T, T)))) {
            lf_set_error("teacher cache %s: a batch row is not in the cache: it was written for other rows (write it with "
                         "the run's data, seed, batch_size, context, grad_accum and max_steps)", c->path);
            return LF_ERR_ARG;
        }
    float tau = c->tau, invT = 1.0f / tau, T2 = tau * tau;
    float *val = malloc(N * sizeof(float));
    if (!val) return LF_ERR_NOMEM;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) {
        val[i] = 0;
        if (b->targets[i] < 0) continue;
        const float *zs = logits + i * (size_t)V;
        const int32_t *ids = (const int32_t *)x->row[i / T] + (size_t)(i % T) * k;
        const float *lp = (const float *)(x->row[i / T] + (size_t)T * k * 4) + (size_t)(i % T) * k;
        float mx = zs[0], se = 0.0f;
        for (int v = 1; v < V; v++) mx = zs[v] > mx ? zs[v] : mx;
#pragma omp simd reduction(+ : se)
        for (int v = 0; v < V; v++) se += lf_vexpf((zs[v] - mx) * invT);
        float lse = mx * invT + logf(se);
        double P = 0, Q = 0, D = 0;
        for (int j = 0; j < k; j++) {
            float ls = zs[ids[j]] * invT - lse, p = pexp(lp[j]);
            P += p, Q += pexp(ls);
            D += p * (lp[j] - ls);
        }
        double r = tail_mass(P), qt = fmax(1 - Q, CACHE_TAIL_MIN);
        if (r > 0) D += r * (log(r) - log(qt));
        x->lse[i] = lse;
        x->rt[i] = (float)(r / qt);
        val[i] = (float)(T2 * D);
    }
    double sum = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < N; i++)
        if (b->targets[i] >= 0) {
            sum += (double)(b->row_weight ? b->row_weight[i / T] : 1.0f) * val[i];
            cnt++;
        }
    free(val);
    x->counted = cnt;
    *value = cnt ? sum / cnt : 0.0;
    return LF_OK;
}

static void cache_backward_rows(lf_loss_term *t, const lf_batch *b, const float *logits, float *dlogits, size_t r0, size_t r1,
                                int V, float scale, int accum) {
    cache_term_ctx *x = t->ctx;
    lf_distill_cache *c = x->c;
    int k = c->k, T = b->T;
    float tau = c->tau, invT = 1.0f / tau;
#pragma omp parallel for schedule(static)
    for (size_t i = r0; i < r1; i++) {
        const float *zs = logits + (i - r0) * (size_t)V;
        float *dz = dlogits + (i - r0) * (size_t)V;
        if (b->targets[i] < 0 || !x->counted) {
            if (!accum) memset(dz, 0, sizeof(float) * V);
            continue;
        }
        const int32_t *ids = (const int32_t *)x->row[i / T] + (size_t)(i % T) * k;
        const float *lp = (const float *)(x->row[i / T] + (size_t)T * k * 4) + (size_t)(i % T) * k;
        float w = b->row_weight ? b->row_weight[i / T] : 1.0f, kc = scale * w * tau / (float)x->counted;
        float lse = x->lse[i], tail = kc * (1.0f - x->rt[i]), keep = accum ? 1.0f : 0.0f, q[CACHE_MAX_K];
        for (int j = 0; j < k; j++) q[j] = pexp(zs[ids[j]] * invT - lse); /* before an in-place write replaces zs */
#pragma omp simd
        for (int v = 0; v < V; v++) dz[v] = keep * dz[v] + tail * pexp(zs[v] * invT - lse);
        for (int j = 0; j < k; j++) dz[ids[j]] += kc * (q[j] - pexp(lp[j])) - tail * q[j]; /* the top k: q - p */
    }
}

static void cache_term_free(lf_loss_term *t) {
    cache_term_ctx *x = t->ctx;
    if (x) free(x->row), free(x->lse), free(x->rt), free(x);
    free(t);
}

lf_loss_term *lf_distill_cache_term(lf_distill_cache *c, float weight) {
    lf_loss_term *t = calloc(1, sizeof *t);
    cache_term_ctx *x = calloc(1, sizeof *x);
    if (!t || !x) {
        free(t), free(x);
        lf_set_error("out of memory");
        return NULL;
    }
    x->c = c;
    *t = (lf_loss_term){"distill_kl_cached", weight, LF_LOGITS_ALL, x, cache_forward, cache_backward_rows, NULL, cache_term_free};
    return t;
}

/* ---------------------------------------------------------------- on-policy batches (GKD) */

typedef struct {
    lf_batch_source *inner;
    lf_model *student;
    float lambda, temp;
    int prompt;
    uint64_t seed, n; /* n: batches drawn */
    int32_t *row;     /* (T) the row being generated */
    int len, T;
} onpol_src;

static int onpol_token(void *ctx, int id) {
    onpol_src *o = ctx;
    o->row[o->len++] = id;
    return o->len >= o->T; /* the window is full */
}

static lf_status onpol_next(lf_batch_source *src, lf_batch *b) {
    onpol_src *o = src->ctx;
    lf_status st = o->inner->next(o->inner, b);
    uint64_t n = o->n++;
    if (st || (double)(lf_hash64(o->seed, 0x09b0, n) >> 11) * 0x1p-53 >= o->lambda) return st;
    int T = b->T, P = o->prompt < T ? o->prompt : T - 1;
    if (!o->row || o->T != T) {
        free(o->row);
        o->row = malloc(sizeof(int32_t) * T);
        o->T = T;
        if (!o->row) return LF_ERR_NOMEM;
    }
    for (int r = 0; r < b->B && !st; r++) {
        int32_t *in = b->inputs + (size_t)r * T, *tg = b->targets + (size_t)r * T;
        memcpy(o->row, in, sizeof(int32_t) * P);
        o->len = P;
        lf_sampler s = {o->temp, 0, 1.0f, lf_hash64(o->seed, 0x09b1 + n, (uint64_t)r)};
        st = lf_generate(o->student, o->row, P, T - P, &s, -1, onpol_token, o, NULL);
        for (int t = 0; t < T; t++) {
            in[t] = t < o->len ? o->row[t] : 0;
            tg[t] = t >= P - 1 && t + 1 < o->len ? o->row[t + 1] : -1;
        }
    }
    return st;
}

static int onpol_get_state(const lf_batch_source *src, uint64_t *w) {
    const onpol_src *o = src->ctx;
    int k = o->inner->get_state ? o->inner->get_state(o->inner, w) : 0;
    if (k >= LF_SOURCE_STATE_MAX) return k; /* no room: the batch index is then not kept (refused on set) */
    w[k] = o->n;
    return k + 1;
}

static lf_status onpol_set_state(lf_batch_source *src, const uint64_t *w, int n) {
    onpol_src *o = src->ctx;
    if (n < 1) {
        lf_set_error("on-policy source: the saved state has no batch index");
        return LF_ERR_FORMAT;
    }
    o->n = w[n - 1];
    return o->inner->set_state ? o->inner->set_state(o->inner, w, n - 1) : LF_OK;
}

static void onpol_free(lf_batch_source *src) {
    onpol_src *o = src->ctx;
    lf_batch_source_free(o->inner);
    free(o->row);
    free(o);
    free(src);
}

lf_status lf_distill_on_policy_source(lf_batch_source **out, lf_batch_source *inner, lf_model *student, float lambda,
                                      int prompt_len, float sample_temperature, uint64_t seed) {
    *out = NULL;
    if (!(lambda >= 0 && lambda <= 1) || prompt_len < 1 || !(sample_temperature >= 0)) {
        lf_set_error("on-policy distillation: need on_policy in [0, 1], a prompt of at least 1 token, sample_temperature >= 0");
        return LF_ERR_ARG;
    }
    lf_batch_source *s = calloc(1, sizeof *s);
    onpol_src *o = calloc(1, sizeof *o);
    if (!s || !o) {
        free(s), free(o);
        return LF_ERR_NOMEM;
    }
    *o = (onpol_src){inner, student, lambda, sample_temperature, prompt_len, seed, 0, NULL, 0, 0};
    *s = (lf_batch_source){"on_policy", o, onpol_next, onpol_get_state, onpol_set_state, onpol_free};
    *out = s;
    return LF_OK;
}
