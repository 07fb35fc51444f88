/* Sequence-classification head (see include/lmforge/seqcls.h): score.weight on the final-norm
 * output of each row's last non-padding token, as transformers' *ForSequenceClassification.
 * lf_model_hidden(m, n_layer) is the residual stream before the final norm, so the term applies
 * the norm itself on the few selected rows (kernels.h) and backpropagates through it into the
 * hidden-state gradient and the norm's own parameter gradients; the model's LM head is never run
 * (LF_LOGITS_NONE). */
#include "lmforge/seqcls.h"
#include "lmforge/ckpt.h"
#include "lmforge/distill.h"
#include "lmforge/kernels.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lf_seqcls {
    lf_model *m;
    lf_param *w; // (K,C)
    int K, trained;
    int keep_end;   /* 1: texts longer than the context keep their last tokens (truncation_side left) */
    char **names; /* (K) from config.json id2label, or NULL */
};

int lf_seqcls_num_labels(const lf_seqcls *h) { return h->K; }
int lf_seqcls_trained(const lf_seqcls *h) { return h->trained; }
lf_param *lf_seqcls_weight(lf_seqcls *h) { return h->w; }
const char *lf_seqcls_label_name(const lf_seqcls *h, int k) { return h->names && k >= 0 && k < h->K ? h->names[k] : NULL; }
int lf_seqcls_keep_end(const lf_seqcls *h) { return h->keep_end; }
void lf_seqcls_set_keep_end(lf_seqcls *h, int keep_end) { h->keep_end = keep_end != 0; }

/* "right" (keep the start, transformers' default) or "left"; anything else is not ours to read */
static void read_side(lf_seqcls *h, const char *side) {
    if (side && !strcmp(side, "left")) h->keep_end = 1;
    else if (side && !strcmp(side, "right")) h->keep_end = 0;
}

void lf_seqcls_free(lf_seqcls *h) {
    if (!h) return;
    for (int k = 0; h->names && k < h->K; k++) free(h->names[k]);
    free(h->names);
    free(h);
}

static void read_label_names(lf_seqcls *h, const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    json_t *j = json_load_file(p, 0, NULL), *map = j ? json_object_get(j, "id2label") : NULL;
    if (json_is_object(map) && json_object_size(map) == (size_t)h->K && (h->names = calloc((size_t)h->K, sizeof(char *)))) {
        for (int k = 0; k < h->K; k++) {
            char key[16];
            snprintf(key, sizeof key, "%d", k);
            const char *s = json_string_value(json_object_get(map, key));
            h->names[k] = strdup(s ? s : key);
        }
    }
    read_side(h, json_string_value(json_object_get(j, "truncation_side")));
    json_decref(j);
}

/* a GGUF classifier (gguf_write.c): label names from {arch}.classifier.output_labels, the cut from
 * lmforge.classifier.truncation_side; the head itself the loader already added as score.weight */
static void read_gguf_meta(lf_seqcls *h, const char *path) {
    lf_gguf *g;
    if (lf_gguf_open(&g, path) != LF_OK) return;
    char key[96];
    snprintf(key, sizeof key, "%s.classifier.output_labels", lf_model_config(h->m)->arch == LF_ARCH_LLAMA ? "llama" : "gpt2");
    const lf_gguf_kv *kv = lf_gguf_find_kv(g, key);
    if (kv && kv->type == 9 /* array */ && kv->arr_type == 8 /* of strings */ && kv->n == (uint64_t)h->K &&
        (h->names = calloc((size_t)h->K, sizeof(char *)))) {
        const uint8_t *p = kv->val + 12; /* array: element type, count, then (u64 length, bytes) per string */
        for (int k = 0; k < h->K; k++) {
            uint64_t l;
            memcpy(&l, p, 8);
            h->names[k] = strndup((const char *)p + 8, (size_t)l);
            p += 8 + l;
        }
    }
    size_t n = 0;
    const char *side = lf_gguf_get_str(g, "lmforge.classifier.truncation_side", &n);
    char sb[8] = "";
    if (side && n < sizeof sb) memcpy(sb, side, n), sb[n] = 0;
    read_side(h, sb);
    lf_gguf_close(g);
}

/* dir's score.weight: a fine-tuned model's folder, or a LoRA adapter's (its head beside the
 * adapter). Its index in *sf (path names the file), or -1 with *sf NULL. */
static int head_file(const char *dir, lf_st **sf, char *path, size_t cap) {
    static const char *const files[] = {"model.safetensors", "score.safetensors"};
    *sf = NULL;
    for (int f = 0; f < 2; f++) {
        snprintf(path, cap, "%s/%s", dir, files[f]);
        int idx = lf_path_exists(path) && lf_st_open(sf, path) == LF_OK ? lf_st_find(*sf, "score.weight") : -1;
        if (idx >= 0) return idx;
        lf_st_close(*sf);
        *sf = NULL;
    }
    return -1;
}

int lf_seqcls_has_head(const lf_model *m, const char *dir) {
    if (lf_model_find((lf_model *)m, "score.weight")) return 1;
    if (!dir || !lf_is_dir(dir)) return 0;
    lf_st *sf;
    char path[4200];
    int idx = head_file(dir, &sf, path, sizeof path);
    lf_st_close(sf);
    return idx >= 0;
}

lf_status lf_seqcls_attach(lf_seqcls **out, lf_model *m, int num_labels, const char *dir, uint64_t seed) {
    *out = NULL;
    const lf_config *c = lf_model_config(m);
    lf_seqcls *h = calloc(1, sizeof *h);
    if (!h) return LF_ERR_NOMEM;
    h->m = m;
    lf_status st = LF_OK;
    lf_param *w = lf_model_find(m, "score.weight");
    lf_st *sf = NULL;
    char path[4200];
    int idx = !w && dir ? head_file(dir, &sf, path, sizeof path) : -1;
    if (idx >= 0) { /* a trained head: the file is untrusted, check its shape before allocating */
        const int64_t *s = lf_st_shape(sf, idx);
        if (lf_st_ndim(sf, idx) != 2 || s[1] != c->d_model || s[0] < 1 || s[0] > 1000000 ||
            (num_labels > 0 && s[0] != num_labels)) {
            lf_set_error("%s: score.weight has shape (%lld, %lld); expected (%s, %d) (a head for another model or label set?)",
                         path, (long long)s[0], lf_st_ndim(sf, idx) == 2 ? (long long)s[1] : -1LL,
                         num_labels > 0 ? "num_labels" : "labels", c->d_model);
            st = LF_ERR_FORMAT;
        } else {
            h->K = (int)s[0];
            st = lf_model_add_param(m, "score.weight", h->K, c->d_model, LF_KIND_WEIGHT, LF_PARAM_TRAINABLE | LF_PARAM_DECAY, &w);
            if (!st) st = lf_st_read_f32(sf, idx, w->data, w->numel);
            h->trained = 1;
            if (!st) read_label_names(h, dir);
            if (!st) read_side(h, lf_st_metadata(sf, "truncation_side")); /* an adapter's score.safetensors */
        }
    } else if (w) {
        if (w->ndim != 2 || w->shape[1] != c->d_model || (num_labels > 0 && w->shape[0] != num_labels)) {
            lf_set_error("seqcls: the model's score.weight has %lld rows, %d labels asked", (long long)w->shape[0], num_labels);
            st = LF_ERR_ARG;
        }
        h->K = (int)w->shape[0];
        h->trained = 1;
        if (!st && dir && lf_is_gguf(dir)) read_gguf_meta(h, dir);
    } else if (num_labels < 1 || num_labels > 1000000) {
        lf_set_error("seqcls: %d labels (a head needs 1..1000000, or a score.weight in %s)", num_labels, dir ? dir : "the model");
        st = LF_ERR_ARG;
    } else {
        h->K = num_labels;
        st = lf_model_add_param(m, "score.weight", num_labels, c->d_model, LF_KIND_WEIGHT, LF_PARAM_TRAINABLE | LF_PARAM_DECAY, &w);
        for (size_t i = 0; !st && i < w->numel; i++) w->data[i] = 0.02f * lf_randn(seed, 0x5c0e, i);
    }
    if (sf) lf_st_close(sf);
    if (st) {
        lf_seqcls_free(h);
        return st;
    }
    h->w = w;
    *out = h;
    return LF_OK;
}

/* ---- the head's forward on selected rows: final norm, then score.weight */
typedef struct {
    lf_seqcls *h;
    int N, cap;        /* rows with a label in the last batch */
    int *row, *pos, *label;
    float *x, *xn, *mean, *rstd, *logits; // (N,C) (N,C) (N) (N) (N,K)
    double value;
    /* distillation (lf_seqcls_distill_new): the teacher's head on the same rows, and the gradient
     * of the divergence with respect to the student's logits, kept for the backward */
    lf_seqcls *teacher;
    lf_distill_kind kind;
    float tau, beta;
    int tcap;
    float *tx, *txn, *tmean, *trstd, *tlogits, *dz; // (N,Ct) (N,Ct) (N) (N) (N,K) (N,K)
} seqcls_term;

static lf_status term_reserve(seqcls_term *s, int B, int C, int K) {
    if (B <= s->cap) return LF_OK;
    free(s->row);
    free(s->pos);
    free(s->label);
    free(s->x);
    free(s->xn);
    free(s->mean);
    free(s->rstd);
    free(s->logits);
    s->row = malloc(sizeof(int) * B);
    s->pos = malloc(sizeof(int) * B);
    s->label = malloc(sizeof(int) * B);
    s->x = malloc(sizeof(float) * (size_t)B * C);
    s->xn = malloc(sizeof(float) * (size_t)B * C);
    s->mean = malloc(sizeof(float) * B);
    s->rstd = malloc(sizeof(float) * B);
    s->logits = malloc(sizeof(float) * (size_t)B * K);
    s->cap = 0;
    if (!s->row || !s->pos || !s->label || !s->x || !s->xn || !s->mean || !s->rstd || !s->logits) return LF_ERR_NOMEM;
    s->cap = B;
    return LF_OK;
}

static const lf_param *norm_w(lf_model *m) {
    return lf_model_config(m)->arch == LF_ARCH_GPT2 ? lf_model_find(m, "transformer.ln_f.weight") : lf_model_find(m, "model.norm.weight");
}
static const lf_param *norm_b(lf_model *m) {
    return lf_model_config(m)->arch == LF_ARCH_GPT2 ? lf_model_find(m, "transformer.ln_f.bias") : NULL;
}

/* xn = norm(x); logits = xn · Wᵀ for N rows */
static void head_rows(lf_model *m, const lf_param *W, int K, const float *x, float *xn, float *mean, float *rstd, float *logits,
                      int N) {
    const lf_config *c = lf_model_config(m);
    int C = c->d_model;
    const lf_param *nw = norm_w(m), *nb = norm_b(m);
    if (c->arch == LF_ARCH_GPT2) lf_layernorm_forward(xn, mean, rstd, x, nw->data, nb->data, (size_t)N, C, c->norm_eps);
    else lf_rmsnorm_forward(xn, rstd, x, nw->data, (size_t)N, C, c->norm_eps);
    for (int r = 0; r < N; r++)
        for (int k = 0; k < K; k++) {
            double s = 0;
            const float *a = xn + (size_t)r * C, *w = W->data + (size_t)k * C;
            for (int j = 0; j < C; j++) s += (double)a[j] * w[j];
            logits[(size_t)r * K + k] = (float)s;
        }
}

/* The teacher's label logits on the student's rows (its own forward over the same inputs, its
 * final norm and head at the same positions), then τ²·D(teacher ‖ student) per row (distill.h's
 * kinds, from the double-precision reference: K is a handful of labels), mean over the rows with
 * their row weights as the cross-entropy term has them. */
static lf_status kd_forward(seqcls_term *s, const lf_batch *b, double *value) {
    lf_model *tm = s->teacher->m;
    const lf_config *tc = lf_model_config(tm);
    int Ct = tc->d_model, K = s->h->K, N = s->N, T = b->T;
    if (b->B > s->tcap) {
        free(s->tx), free(s->txn), free(s->tmean), free(s->trstd), free(s->tlogits), free(s->dz);
        s->tx = malloc(sizeof(float) * (size_t)b->B * Ct);
        s->txn = malloc(sizeof(float) * (size_t)b->B * Ct);
        s->tmean = malloc(sizeof(float) * b->B);
        s->trstd = malloc(sizeof(float) * b->B);
        s->tlogits = malloc(sizeof(float) * (size_t)b->B * K);
        s->dz = malloc(sizeof(float) * (size_t)b->B * K);
        s->tcap = 0;
        if (!s->tx || !s->txn || !s->tmean || !s->trstd || !s->tlogits || !s->dz) return LF_ERR_NOMEM;
        s->tcap = b->B;
    }
    s->value = 0;
    *value = 0;
    if (N == 0) return LF_OK;
    lf_status st = lf_model_forward(tm, b->inputs, b->B, T, LF_LOGITS_NONE);
    if (st) return st;
    const float *hid = lf_model_hidden(tm, tc->n_layer); // (B,T,Ct)
    for (int n = 0; n < N; n++) memcpy(s->tx + (size_t)n * Ct, hid + ((size_t)s->row[n] * T + s->pos[n]) * Ct, sizeof(float) * Ct);
    head_rows(tm, s->teacher->w, K, s->tx, s->txn, s->tmean, s->trstd, s->tlogits, N);
    double sum = 0, *g = malloc(sizeof(double) * (size_t)K);
    if (!g) return LF_ERR_NOMEM;
    for (int n = 0; n < N; n++) {
        double rw = b->row_weight ? b->row_weight[s->row[n]] : 1.0;
        sum += rw * lf_distill_row_ref(s->kind, s->logits + (size_t)n * K, s->tlogits + (size_t)n * K, K, s->tau, s->beta, g);
        for (int k = 0; k < K; k++) s->dz[(size_t)n * K + k] = (float)(rw * g[k] / N);
    }
    free(g);
    s->value = sum / N;
    *value = s->value;
    return LF_OK;
}

static lf_status term_forward(lf_loss_term *t, lf_model *m, const lf_batch *b, const float *logits, size_t rows, int V,
                              double *value) {
    (void)logits, (void)rows, (void)V;
    seqcls_term *s = t->ctx;
    lf_seqcls *h = s->h;
    const lf_config *c = lf_model_config(m);
    int C = c->d_model, K = h->K, T = b->T;
    lf_status st = term_reserve(s, b->B, C, K);
    if (st) return st;
    const float *hid = lf_model_hidden(m, c->n_layer); // (B,T,C)
    s->N = 0;
    for (int r = 0; r < b->B; r++) {
        int p = -1;
        for (int i = 0; i < T; i++)
            if (b->targets[(size_t)r * T + i] >= 0) p = i;
        if (p < 0) continue;
        int lab = b->targets[(size_t)r * T + p];
        if (lab >= K) {
            lf_set_error("seqcls: row %d has label %d; the head has %d labels", r, lab, K);
            return LF_ERR_ARG;
        }
        s->row[s->N] = r;
        s->pos[s->N] = p;
        s->label[s->N] = lab;
        memcpy(s->x + (size_t)s->N * C, hid + ((size_t)r * T + p) * C, sizeof(float) * C);
        s->N++;
    }
    head_rows(m, h->w, K, s->x, s->xn, s->mean, s->rstd, s->logits, s->N);
    if (s->teacher) return kd_forward(s, b, value);
    double sum = 0, wsum = 0;
    for (int n = 0; n < s->N; n++) {
        const float *z = s->logits + (size_t)n * K;
        float mx = z[0];
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        double se = 0;
        for (int k = 0; k < K; k++) se += exp((double)z[k] - mx);
        double rw = b->row_weight ? b->row_weight[s->row[n]] : 1.0;
        sum += rw * (log(se) + mx - z[s->label[n]]);
        wsum += 1;
    }
    s->value = wsum > 0 ? sum / wsum : 0.0;
    *value = s->value;
    return LF_OK;
}

static lf_status term_backward_hidden(lf_loss_term *t, lf_model *m, const lf_batch *b, float scale) {
    seqcls_term *s = t->ctx;
    lf_seqcls *h = s->h;
    const lf_config *c = lf_model_config(m);
    int C = c->d_model, K = h->K, N = s->N, T = b->T;
    if (N == 0) return LF_OK;
    lf_status st = lf_model_alloc_grads(m);
    if (st) return st;
    float *dz = malloc(sizeof(float) * (size_t)N * K), *dxn = calloc((size_t)N * C, sizeof(float)),
          *dx = calloc((size_t)N * C, sizeof(float)), *scratch = calloc(2 * (size_t)C, sizeof(float));
    if (!dz || !dxn || !dx || !scratch) {
        free(dz), free(dxn), free(dx), free(scratch);
        return LF_ERR_NOMEM;
    }
    for (int n = 0; n < N && s->teacher; n++) /* the divergence's gradient, from the forward */
        for (int k = 0; k < K; k++) dz[(size_t)n * K + k] = scale * s->dz[(size_t)n * K + k];
    for (int n = 0; n < N && !s->teacher; n++) { /* d(mean CE)/dz = (softmax - onehot) · row weight / N */
        const float *z = s->logits + (size_t)n * K;
        float mx = z[0];
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        double se = 0;
        for (int k = 0; k < K; k++) se += exp((double)z[k] - mx);
        double g = scale * (b->row_weight ? b->row_weight[s->row[n]] : 1.0) / N;
        for (int k = 0; k < K; k++) dz[(size_t)n * K + k] = (float)(g * (exp((double)z[k] - mx) / se - (k == s->label[n])));
    }
    const lf_param *W = h->w;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            float g = dz[(size_t)n * K + k];
            const float *xn = s->xn + (size_t)n * C, *w = W->data + (size_t)k * C;
            if (W->grad)
                for (int j = 0; j < C; j++) W->grad[(size_t)k * C + j] += g * xn[j];
            for (int j = 0; j < C; j++) dxn[(size_t)n * C + j] += g * w[j];
        }
    const lf_param *nw = norm_w(m), *nb = norm_b(m);
    float *dnw = nw->grad ? nw->grad : scratch, *dnb = nb && nb->grad ? nb->grad : scratch + C;
    if (c->arch == LF_ARCH_GPT2) lf_layernorm_backward(dx, dnw, dnb, dxn, s->x, nw->data, s->mean, s->rstd, (size_t)N, C);
    else lf_rmsnorm_backward(dx, dnw, dxn, s->x, nw->data, s->rstd, (size_t)N, C);
    float *hg = lf_model_hidden_grad(m, c->n_layer); // (B,T,C)
    for (int n = 0; n < N; n++) {
        float *d = hg + ((size_t)s->row[n] * T + s->pos[n]) * C;
        for (int j = 0; j < C; j++) d[j] += dx[(size_t)n * C + j];
    }
    free(dz), free(dxn), free(dx), free(scratch);
    return LF_OK;
}

static void term_free(lf_loss_term *t) {
    seqcls_term *s = t->ctx;
    if (s) {
        free(s->row), free(s->pos), free(s->label), free(s->x), free(s->xn), free(s->mean), free(s->rstd), free(s->logits);
        free(s->tx), free(s->txn), free(s->tmean), free(s->trstd), free(s->tlogits), free(s->dz);
        free(s);
    }
    free(t);
}

lf_loss_term *lf_seqcls_loss_new(lf_seqcls *h) {
    lf_loss_term *t = calloc(1, sizeof *t);
    seqcls_term *s = calloc(1, sizeof *s);
    if (!t || !s) {
        free(t);
        free(s);
        return NULL;
    }
    s->h = h;
    *t = (lf_loss_term){"seqcls_ce", 1.0f, LF_LOGITS_NONE, s, term_forward, NULL, term_backward_hidden, term_free};
    return t;
}

lf_loss_term *lf_seqcls_distill_new(lf_seqcls *student, lf_seqcls *teacher, lf_distill_kind kind, float temperature, float beta) {
    if (!student || !teacher || student->K != teacher->K || temperature <= 0 || beta < 0 || beta > 1) {
        lf_set_error("seqcls distill: heads of %d and %d labels, temperature %g, beta %g (need equal label counts, "
                     "temperature > 0, beta in [0, 1])", student ? student->K : 0, teacher ? teacher->K : 0, temperature, beta);
        return NULL;
    }
    lf_loss_term *t = lf_seqcls_loss_new(student);
    if (!t) return NULL;
    seqcls_term *s = t->ctx;
    s->teacher = teacher;
    s->kind = kind;
    s->tau = temperature;
    s->beta = beta;
    t->name = "seqcls_distill";
    return t;
}

const float *lf_seqcls_teacher_logits(const lf_loss_term *t) {
    const seqcls_term *s = t->ctx;
    return s->teacher ? s->tlogits : NULL;
}

const float *lf_seqcls_last_logits(const lf_loss_term *t, int *rows) {
    const seqcls_term *s = t->ctx;
    if (rows) *rows = s->N;
    return s->logits;
}

/* ---- the batch source */
typedef struct {
    lf_ids *ids; /* (n) encoded texts */
    int *labels;
    size_t n;
    int T, pad, sequential, keep_end;
    uint64_t seed, epoch, pos;
    size_t *perm;
} seqcls_src;

static void src_shuffle(seqcls_src *s) {
    for (size_t i = 0; i < s->n; i++) s->perm[i] = i;
    if (s->sequential) return;
    for (size_t i = s->n; i > 1; i--) { /* Fisher-Yates from (seed, epoch) */
        size_t j = (size_t)(lf_hash64(s->seed, 0x5eed0000 + s->epoch, i) % i);
        size_t tmp = s->perm[i - 1];
        s->perm[i - 1] = s->perm[j];
        s->perm[j] = tmp;
    }
}

static lf_status src_next(lf_batch_source *src, lf_batch *b) {
    seqcls_src *s = src->ctx;
    for (int r = 0; r < b->B; r++) {
        if (s->pos >= s->n) {
            s->epoch++;
            s->pos = 0;
            src_shuffle(s);
        }
        size_t i = s->perm[s->pos++];
        const lf_ids *x = &s->ids[i];
        int len = (int)x->n < b->T ? (int)x->n : b->T;
        size_t off = s->keep_end ? x->n - (size_t)len : 0;
        int32_t *in = b->inputs + (size_t)r * b->T, *tg = b->targets + (size_t)r * b->T;
        for (int t = 0; t < b->T; t++) {
            in[t] = t < len ? x->ids[off + (size_t)t] : s->pad;
            tg[t] = -1;
        }
        tg[len - 1] = s->labels[i];
        if (b->row_weight) b->row_weight[r] = 1.0f;
        if (b->task) b->task[r] = 0;
    }
    return LF_OK;
}

static int src_get_state(const lf_batch_source *src, uint64_t *w) {
    const seqcls_src *s = src->ctx;
    w[0] = s->epoch;
    w[1] = s->pos;
    return 2;
}

static lf_status src_set_state(lf_batch_source *src, const uint64_t *w, int n) {
    seqcls_src *s = src->ctx;
    if (n != 2 || w[1] > s->n) {
        lf_set_error("seqcls source: a saved state of %d words / position %llu does not fit %zu examples", n,
                     n >= 2 ? (unsigned long long)w[1] : 0ULL, s->n);
        return LF_ERR_FORMAT;
    }
    s->epoch = w[0];
    src_shuffle(s);
    s->pos = w[1];
    return LF_OK;
}

static void src_free(lf_batch_source *src) {
    seqcls_src *s = src->ctx;
    for (size_t i = 0; s && i < s->n; i++) lf_ids_free(&s->ids[i]);
    if (s) {
        free(s->ids);
        free(s->labels);
        free(s->perm);
        free(s);
    }
    free(src);
}

static lf_status encode_text(lf_tok_encoder *e, const lf_tokenizer *tok, const char *text, lf_ids *out) {
    unsigned f = lf_tokenizer_kind(tok) == LF_TOK_SENTENCEPIECE ? LF_ENC_BOS : 0;
    lf_status st = lf_tok_encode(e, text, strlen(text), f, out);
    if (!st && out->n == 0) { /* an empty text: the head reads the start token */
        int id = lf_tokenizer_bos(tok) >= 0 ? lf_tokenizer_bos(tok) : lf_tokenizer_eos(tok);
        st = id >= 0 ? lf_ids_push(out, id) : LF_ERR_ARG;
        if (st == LF_ERR_ARG) lf_set_error("seqcls: an empty text and a tokenizer without BOS/EOS");
    }
    return st;
}

lf_status lf_seqcls_source_new(lf_batch_source **out, const lf_tokenizer *tok, const char *const *texts, const int *labels,
                               size_t n, int T, int pad_id, uint64_t seed, unsigned flags) {
    *out = NULL;
    if (n == 0 || T < 1) {
        lf_set_error("seqcls source: %zu examples of %d tokens", n, T);
        return LF_ERR_ARG;
    }
    lf_batch_source *src = calloc(1, sizeof *src);
    seqcls_src *s = calloc(1, sizeof *s);
    lf_tok_encoder *e = NULL;
    lf_status st = !src || !s ? LF_ERR_NOMEM : lf_tok_encoder_init(&e, tok);
    if (!st) {
        s->ids = calloc(n, sizeof(lf_ids));
        s->labels = malloc(sizeof(int) * n);
        s->perm = malloc(sizeof(size_t) * n);
        if (!s->ids || !s->labels || !s->perm) st = LF_ERR_NOMEM;
    }
    *src = (lf_batch_source){"seqcls", s, src_next, src_get_state, src_set_state, src_free};
    if (s) s->n = st ? 0 : n;
    for (size_t i = 0; i < n && !st; i++) {
        st = encode_text(e, tok, texts[i], &s->ids[i]);
        s->labels[i] = labels[i];
        if (!st && labels[i] < 0) {
            lf_set_error("seqcls source: example %zu has label %d", i, labels[i]);
            st = LF_ERR_ARG;
        }
    }
    lf_tok_encoder_free(e);
    if (st) {
        if (src) src_free(src);
        else free(s);
        return st;
    }
    s->T = T;
    s->pad = pad_id;
    s->seed = seed;
    s->sequential = (flags & LF_SEQCLS_SEQUENTIAL) != 0;
    s->keep_end = (flags & LF_SEQCLS_KEEP_END) != 0;
    src_shuffle(s);
    *out = src;
    return LF_OK;
}

lf_status lf_seqcls_predict(lf_seqcls *h, const lf_tokenizer *tok, const char *const *texts, size_t n, int max_tokens,
                            int B, int *pred, float *logits) {
    lf_model *m = h->m;
    const lf_config *c = lf_model_config(m);
    int L = max_tokens > 0 && max_tokens < c->max_seq ? max_tokens : c->max_seq, C = c->d_model, K = h->K;
    if (B < 1) B = 8;
    lf_tok_encoder *e;
    lf_status st = lf_tok_encoder_init(&e, tok);
    if (st) return st;
    lf_ids *ids = calloc((size_t)B, sizeof(lf_ids));
    int32_t *in = malloc(sizeof(int32_t) * (size_t)B * L);
    float *x = malloc(sizeof(float) * (size_t)B * C), *xn = malloc(sizeof(float) * (size_t)B * C),
          *mean = malloc(sizeof(float) * B), *rstd = malloc(sizeof(float) * B), *z = malloc(sizeof(float) * (size_t)B * K);
    if (!ids || !in || !x || !xn || !mean || !rstd || !z) st = LF_ERR_NOMEM;
    lf_model_set_training(m, 0, 0);
    for (size_t i0 = 0; i0 < n && !st; i0 += (size_t)B) {
        int nb = (int)(n - i0 < (size_t)B ? n - i0 : (size_t)B), T = 1;
        for (int r = 0; r < nb && !st; r++) {
            ids[r].n = 0;
            st = encode_text(e, tok, texts[i0 + r], &ids[r]);
            int len = (int)ids[r].n < L ? (int)ids[r].n : L;
            if (len > T) T = len;
        }
        if (st) break;
        for (int r = 0; r < nb; r++) { /* right padding: the causal mask keeps it from the read position */
            int len = (int)ids[r].n < L ? (int)ids[r].n : L;
            size_t off = h->keep_end ? ids[r].n - (size_t)len : 0;
            for (int t = 0; t < T; t++) in[(size_t)r * T + t] = t < len ? ids[r].ids[off + (size_t)t] : 0;
        }
        if ((st = lf_model_forward(m, in, nb, T, LF_LOGITS_NONE))) break;
        const float *hid = lf_model_hidden(m, c->n_layer);
        for (int r = 0; r < nb; r++) {
            int len = (int)ids[r].n < L ? (int)ids[r].n : L;
            memcpy(x + (size_t)r * C, hid + ((size_t)r * T + len - 1) * C, sizeof(float) * C);
        }
        head_rows(m, h->w, K, x, xn, mean, rstd, z, nb);
        for (int r = 0; r < nb; r++) {
            const float *zr = z + (size_t)r * K;
            if (logits) memcpy(logits + (i0 + r) * K, zr, sizeof(float) * K);
            if (pred) {
                int best = 0;
                for (int k = 1; k < K; k++)
                    if (zr[k] > zr[best]) best = k;
                pred[i0 + r] = best;
            }
        }
    }
    for (int r = 0; ids && r < B; r++) lf_ids_free(&ids[r]);
    free(ids), free(in), free(x), free(xn), free(mean), free(rstd), free(z);
    lf_tok_encoder_free(e);
    return st;
}

/* ---- export: lf_hf_save's folder, then score.weight added to its safetensors and config.json
 * turned into a *ForSequenceClassification config */
static void fill_hf_param(const void *ctx, float *buf) {
    const lf_param *p = ctx;
    if (p->qops) {
        float *tmp = p->hf_transposed ? malloc(sizeof(float) * p->numel) : buf;
        if (!tmp) return;
        p->qops->dequantize(p, tmp);
        if (p->hf_transposed) {
            lf_param_to_hf(p, tmp, buf);
            free(tmp);
        }
    } else lf_param_to_hf(p, p->data, buf);
}

lf_status lf_seqcls_export(lf_seqcls *h, const char *dir, const char *const *labels, int pad_id) {
    lf_model *m = h->m;
    lf_status st = lf_hf_save(m, dir);
    if (st) return st;
    int np = lf_model_num_params(m), k = 0;
    lf_st_tensor *t = calloc((size_t)np, sizeof *t);
    if (!t) return LF_ERR_NOMEM;
    for (int i = 0; i < np; i++) {
        lf_param *p = lf_model_param(m, i);
        if ((p->flags & LF_PARAM_EXTRA) && p != h->w) continue; /* adapters are their owner's to save (or merge) */
        t[k].name = p->name;
        t[k].ndim = p->ndim;
        lf_param_hf_shape(p, t[k].shape);
        t[k].fill = fill_hf_param;
        t[k].ctx = p;
        k++;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const char *meta[] = {"format", "pt"};
    st = lf_st_write(path, t, k, meta, 1);
    free(t);
    if (st) return st;
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j) {
        lf_set_error("%s: %s", path, err.text);
        return LF_ERR_IO;
    }
    int gpt2 = lf_model_config(m)->arch == LF_ARCH_GPT2;
    json_object_set_new(j, "architectures", json_pack("[s]", gpt2 ? "GPT2ForSequenceClassification" : "LlamaForSequenceClassification"));
    json_object_set_new(j, "num_labels", json_integer(h->K));
    json_t *i2l = json_object(), *l2i = json_object();
    for (int c = 0; c < h->K; c++) {
        char key[32], def[32];
        snprintf(key, sizeof key, "%d", c);
        snprintf(def, sizeof def, "LABEL_%d", c);
        const char *name = labels ? labels[c] : lf_seqcls_label_name(h, c) ? lf_seqcls_label_name(h, c) : def;
        json_object_set_new(i2l, key, json_string(name));
        json_object_set_new(l2i, name, json_integer(c));
    }
    json_object_set_new(j, "id2label", i2l);
    json_object_set_new(j, "label2id", l2i);
    if (pad_id >= 0) json_object_set_new(j, "pad_token_id", json_integer(pad_id));
    /* the tokenizer's setting in transformers (tokenizer_config.json); here so that lmforge eval
     * cuts long texts the way training did */
    json_object_set_new(j, "truncation_side", json_string(h->keep_end ? "left" : "right"));
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(j);
    if (!s) return LF_ERR_NOMEM;
    st = lf_write_file_atomic(path, s, strlen(s));
    free(s);
    return st;
}
