/* Loss terms over the model's logits (see loss.h) and the cross-entropy term. The dispatcher
 * keeps the fused in-place property of a single cross-entropy: with one term its backward writes
 * dlogits straight over the logits with the parallel kernel; with several, each thread copies a
 * row, the other terms add their gradient from the copy, and the last writes over the row. */
#include "lmforge/loss.h"
#include "lmforge/kernels.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- cross-entropy */

typedef struct {
    float smoothing;
    float *lse, *losses; // (cap) (cap)
    size_t cap, counted;
    double sum;
    float dloss_base; /* 1 / counted */
} ce_ctx;

static lf_status ce_forward(lf_loss_term *t, lf_model *m, const lf_batch *b, const float *logits, size_t rows, int V,
                            double *value) {
    ce_ctx *c = t->ctx;
    size_t N = (size_t)b->B * b->T;
    if (rows != N) {
        lf_set_error("cross-entropy: needs the logits of every position (%zu rows, got %zu)", N, rows);
        return LF_ERR_ARG;
    }
    for (size_t i = 0; i < N; i++)
        if (b->targets[i] >= V) {
            lf_set_error("cross-entropy: target id %d at position %zu is outside the vocabulary (0..%d)", b->targets[i], i, V - 1);
            return LF_ERR_ARG;
        }
    if (N > c->cap) {
        free(c->lse);
        free(c->losses);
        c->lse = malloc(N * sizeof(float));
        c->losses = malloc(N * sizeof(float));
        c->cap = c->lse && c->losses ? N : 0;
        if (!c->cap) return LF_ERR_NOMEM;
    }
    lf_crossentropy_forward(c->losses, c->lse, logits, b->targets, N, V, c->smoothing);
    double s = 0.0;
    size_t cnt = 0;
    for (size_t i = 0; i < N; i++)
        if (b->targets[i] >= 0) {
            float w = b->row_weight ? b->row_weight[i / (size_t)b->T] : 1.0f;
            s += w == 1.0f ? c->losses[i] : (double)w * c->losses[i];
            cnt++;
        }
    c->sum = s;
    c->counted = cnt;
    *value = cnt ? (double)(float)(s / cnt) : 0.0;
    return LF_OK;
}

static void ce_backward_rows(lf_loss_term *t, const lf_batch *b, const float *logits, float *dlogits, size_t r0,
                             size_t r1, int V, float scale, int accum) {
    ce_ctx *c = t->ctx;
    float dloss = c->counted ? scale / (float)c->counted : 0.0f;
    int T = b->T;
    size_t r = r0;
    while (r < r1) { /* runs of rows that share one weight (a batch row) go through the kernel together */
        size_t brow = r / (size_t)T, end = r1;
        float w = b->row_weight ? b->row_weight[brow] : 1.0f, d = w == 1.0f ? dloss : dloss * w;
        if (b->row_weight) { /* extend over the following batch rows of the same weight */
            size_t nb = brow + 1;
            while (nb * (size_t)T < r1 && b->row_weight[nb] == w) nb++;
            if (nb * (size_t)T < r1) end = nb * (size_t)T;
        }
        if (!accum) {
            lf_crossentropy_backward(dlogits + (r - r0) * (size_t)V, logits + (r - r0) * (size_t)V, c->lse + r,
                                     b->targets + r, end - r, V, c->smoothing, d);
        } else { /* add: dl = d·(softmax − smoothed one-hot) */
            float off = c->smoothing / V;
            for (size_t i = r; i < end; i++) {
                int y = b->targets[i];
                if (y < 0) continue;
                const float *z = logits + (i - r0) * (size_t)V;
                float *dz = dlogits + (i - r0) * (size_t)V, l = c->lse[i];
                for (int v = 0; v < V; v++) dz[v] += d * (expf(z[v] - l) - off);
                dz[y] -= d * (1.0f - c->smoothing);
            }
        }
        r = end;
    }
}

static void ce_free(lf_loss_term *t) {
    ce_ctx *c = t->ctx;
    free(c->lse);
    free(c->losses);
    free(c);
    free(t);
}

lf_loss_term *lf_loss_ce_new(float smoothing) {
    lf_loss_term *t = calloc(1, sizeof *t);
    ce_ctx *c = calloc(1, sizeof *c);
    if (!t || !c || !(smoothing >= 0.0f && smoothing < 1.0f)) {
        free(t);
        free(c);
        lf_set_error(t && c ? "cross-entropy: label smoothing must be in [0, 1)" : "out of memory");
        return NULL;
    }
    c->smoothing = smoothing;
    *t = (lf_loss_term){"cross_entropy", 1.0f, LF_LOGITS_ALL, c, ce_forward, ce_backward_rows, NULL, ce_free};
    return t;
}

size_t lf_loss_ce_counted(const lf_loss_term *t) { return ((const ce_ctx *)t->ctx)->counted; }
double lf_loss_ce_sum(const lf_loss_term *t) { return ((const ce_ctx *)t->ctx)->sum; }

void lf_loss_free(lf_loss_term *t) {
    if (t && t->free) t->free(t);
}

/* ---------------------------------------------------------------- dispatch */

lf_status lf_loss_forward(lf_model *m, lf_loss_term *const *terms, int n, const lf_batch *b, double *values,
                          double *total) {
    lf_logits_mode mode = LF_LOGITS_NONE;
    const char *who = NULL;
    for (int k = 0; k < n; k++) {
        if (terms[k]->logits == LF_LOGITS_NONE) continue;
        if (mode != LF_LOGITS_NONE && terms[k]->logits != mode) {
            lf_set_error("loss terms '%s' and '%s' need different logits (all positions vs last only)", who, terms[k]->name);
            return LF_ERR_ARG;
        }
        mode = terms[k]->logits;
        who = terms[k]->name;
    }
    lf_status st = lf_model_forward(m, b->inputs, b->B, b->T, mode);
    if (st) return st;
    size_t rows;
    float *logits = lf_model_logits(m, &rows);
    int V = lf_model_config(m)->vocab_size;
    double sum = 0.0;
    for (int k = 0; k < n && !st; k++) {
        double v = 0.0;
        st = terms[k]->forward(terms[k], m, b, logits, rows, V, &v);
        if (values) values[k] = v;
        sum += terms[k]->weight * v;
    }
    if (total) *total = sum;
    return st;
}

lf_status lf_loss_backward(lf_model *m, lf_loss_term *const *terms, int n, const lf_batch *b, float scale) {
    size_t rows;
    float *logits = lf_model_logits(m, &rows);
    int V = lf_model_config(m)->vocab_size;
    int nl = 0, last = -1;
    for (int k = 0; k < n; k++)
        if (terms[k]->backward_rows && terms[k]->weight != 0.0f) {
            nl++;
            last = k;
        }
    if (rows && !logits) {
        lf_set_error("loss backward: needs lf_loss_forward first");
        return LF_ERR_ARG;
    }
    if (rows && nl == 0) {
        memset(logits, 0, rows * (size_t)V * sizeof(float));
    } else if (rows && nl == 1) {
        lf_loss_term *t = terms[last];
        float s = t->weight == 1.0f ? scale : scale * t->weight;
        t->backward_rows(t, b, logits, logits, 0, rows, V, s, 0);
    } else if (rows) {
        int nt = lf_num_threads();
        float *copy = lf_alloc((size_t)nt * V * sizeof(float));
        if (!copy) return LF_ERR_NOMEM;
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < rows; r++) {
            float *row = logits + r * (size_t)V, *cp = copy + (size_t)omp_get_thread_num() * V;
            memcpy(cp, row, (size_t)V * sizeof(float));
            terms[last]->backward_rows(terms[last], b, cp, row, r, r + 1, V, scale * terms[last]->weight, 0);
            for (int k = 0; k < n; k++)
                if (k != last && terms[k]->backward_rows && terms[k]->weight != 0.0f)
                    terms[k]->backward_rows(terms[k], b, cp, row, r, r + 1, V, scale * terms[k]->weight, 1);
        }
        lf_free(copy);
    }
    for (int k = 0; k < n; k++)
        if (terms[k]->backward_hidden && terms[k]->weight != 0.0f) {
            lf_status st = terms[k]->backward_hidden(terms[k], m, b, scale * terms[k]->weight);
            if (st) return st;
        }
    return lf_model_backward(m);
}

lf_status lf_loss_ce_eval(lf_model *m, const lf_batch *b, double *sum, size_t *count) {
    lf_loss_term *ce = lf_loss_ce_new(0.0f);
    if (!ce) return LF_ERR_NOMEM;
    lf_status st = lf_loss_forward(m, &ce, 1, b, NULL, NULL);
    if (!st) {
        *sum = lf_loss_ce_sum(ce);
        *count = lf_loss_ce_counted(ce);
    }
    lf_loss_free(ce);
    return st;
}
