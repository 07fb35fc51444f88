/* Structured pruning with a physical shrink (issue 11): importance scores of KV groups, query
 * heads, MLP neurons and layers (first-order Taylor through the engine's backward, or activation
 * norms through the activation tap and block influence from the residual stream), a plan that
 * removes the same count in every layer, and the copy of the kept rows and columns into a model of
 * the smaller config. See include/lmforge/prune.h. */
#include "lmforge/loss.h"
#include "lmforge/prune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *importance_names[] = {"taylor", "act"};

lf_status lf_importance_parse(const char *s, lf_importance *out) {
    for (int i = 0; i < 2; i++)
        if (!strcmp(s, importance_names[i])) {
            *out = (lf_importance)i;
            return LF_OK;
        }
    lf_set_error("importance '%s' is not known (taylor, act)", s);
    return LF_ERR_ARG;
}

const char *lf_importance_name(lf_importance i) {
    return (unsigned)i < 2 ? importance_names[i] : "?";
}

void lf_sprune_scores_free(lf_sprune_scores *s) {
    free(s->group);
    free(s->head);
    free(s->neuron);
    free(s->layer);
    memset(s, 0, sizeof *s);
}

void lf_sprune_plan_free(lf_sprune_plan *p) {
    free(p->layers);
    free(p->heads);
    free(p->kv_heads);
    free(p->neurons);
    memset(p, 0, sizeof *p);
}

/* ---------------------------------------------------------------- where a tensor's scores go */

/* The tensors of layer l and the structures their rows / columns belong to. GPT-2's c_attn holds
 * q, k and v as three row sections of d_model rows; its heads are never removed (see plan_make)
 * but are still scored, so the scores read the same for both families. */
typedef enum { R_LAYER = 0, R_Q, R_K, R_V, R_QKV, R_O, R_FC, R_DOWN } role;

static lf_param *layer_param(lf_model *m, int l, const char *suffix) {
    char name[128];
    const lf_config *c = lf_model_config(m);
    snprintf(name, sizeof name, c->arch == LF_ARCH_GPT2 ? "transformer.h.%d.%s" : "model.layers.%d.%s", l, suffix);
    return lf_model_find(m, name);
}

static role param_role(const lf_param *p, int *layer) {
    const char *s = strstr(p->name, ".layers.");
    int skip = 8;
    if (!s) {
        s = strstr(p->name, ".h.");
        skip = 3;
    }
    if (!s || (p->flags & (LF_PARAM_EXTRA | LF_PARAM_ADAPTER))) {
        *layer = -1;
        return R_LAYER;
    }
    char *end;
    *layer = (int)strtol(s + skip, &end, 10);
    const char *suf = end + 1;
    if (!strcmp(suf, "self_attn.q_proj.weight")) return R_Q;
    if (!strcmp(suf, "self_attn.k_proj.weight")) return R_K;
    if (!strcmp(suf, "self_attn.v_proj.weight")) return R_V;
    if (!strcmp(suf, "self_attn.o_proj.weight") || !strcmp(suf, "attn.c_proj.weight")) return R_O;
    if (!strcmp(suf, "attn.c_attn.weight") || !strcmp(suf, "attn.c_attn.bias")) return R_QKV;
    if (!strcmp(suf, "mlp.gate_proj.weight") || !strcmp(suf, "mlp.up_proj.weight") || !strcmp(suf, "mlp.c_fc.weight") ||
        !strcmp(suf, "mlp.c_fc.bias"))
        return R_FC;
    if (!strcmp(suf, "mlp.down_proj.weight") || !strcmp(suf, "mlp.c_proj.weight")) return R_DOWN;
    return R_LAYER;
}

/* dst[(r - r0) / per] += Σ_c e[r, c] for rows r0 .. r0+n of e (·, IC) */
static void acc_rows(double *dst, const float *e, int64_t r0, int64_t n, int64_t IC, int per) {
    for (int64_t r = 0; r < n; r++) {
        double s = 0;
        const float *row = e + (size_t)(r0 + r) * (size_t)IC;
        for (int64_t c = 0; c < IC; c++) s += row[c];
        dst[r / per] += s;
    }
}

/* dst[c / per] += Σ_r e[r, c] over e (OC, IC) */
static void acc_cols(double *dst, const float *e, int64_t OC, int64_t IC, int per) {
    for (int64_t r = 0; r < OC; r++) {
        const float *row = e + (size_t)r * (size_t)IC;
        for (int64_t c = 0; c < IC; c++) dst[c / per] += row[c];
    }
}

/* e (numel): the per-weight importance of p; its share goes to the structures p belongs to.
 * kv (n_layer, n_kv_head) collects the k/v rows, folded into the groups at the end. */
static void add_scores(lf_sprune_scores *s, double *kv, const lf_config *c, const lf_param *p, const float *e) {
    int l;
    role r = param_role(p, &l);
    if (l < 0 || l >= s->n_layer) return;
    int hd = c->head_dim, H = c->n_head, KVH = c->n_kv_head, C = c->d_model;
    int64_t IC = p->ndim == 2 ? p->shape[1] : 1, OC = p->shape[0];
    double *head = s->head + (size_t)l * H, *kvl = kv + (size_t)l * KVH, *neu = s->neuron + (size_t)l * c->d_ff;
    double tot = 0;
    for (size_t i = 0; i < p->numel; i++) tot += e[i];
    s->layer[l] += tot;
    switch (r) {
    case R_Q: acc_rows(head, e, 0, OC, IC, hd); break;
    case R_K:
    case R_V: acc_rows(kvl, e, 0, OC, IC, hd); break;
    case R_QKV: /* (3C, C) or (3C): q rows, then k, then v */
        acc_rows(head, e, 0, C, IC, hd);
        acc_rows(kvl, e, C, C, IC, hd);
        acc_rows(kvl, e, 2 * (int64_t)C, C, IC, hd);
        break;
    case R_O: acc_cols(head, e, OC, IC, hd); break;
    case R_FC: acc_rows(neu, e, 0, OC, IC, 1); break;
    case R_DOWN: acc_cols(neu, e, OC, IC, 1); break;
    case R_LAYER: break;
    }
}

/* ---------------------------------------------------------------- scoring */

typedef struct {
    double *sq; /* (IC) Σ x_j² */
} act_slot;

static void act_tap(void *ctx, const lf_param *w, const float *inp, int ldi, size_t N, int IC) {
    act_slot *s = ctx;
    (void)w;
    for (size_t i = 0; i < N; i++) {
        const float *x = inp + i * (size_t)ldi;
        for (int j = 0; j < IC; j++) s->sq[j] += (double)x[j] * x[j];
    }
}

/* the block influence of every layer on the forward just run: Σ over rows of 1 - cos(h_l, h_l+1) */
static void block_influence(lf_model *m, int rows, double *layer) {
    const lf_config *c = lf_model_config(m);
    int C = c->d_model;
    for (int l = 0; l < c->n_layer; l++) {
        const float *a = lf_model_hidden(m, l), *b = lf_model_hidden(m, l + 1);
        for (int r = 0; r < rows; r++) {
            double ab = 0, aa = 0, bb = 0;
            for (int j = 0; j < C; j++) {
                double x = a[(size_t)r * C + j], y = b[(size_t)r * C + j];
                ab += x * y;
                aa += x * x;
                bb += y * y;
            }
            layer[l] += 1.0 - (aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 1.0);
        }
    }
}

static lf_status score_act(lf_model *m, const int32_t *calib, int K, int T, int batch, lf_reporter *rep, lf_sprune_scores *s,
                           double *kv) {
    const lf_config *c = lf_model_config(m);
    int np = lf_model_num_params(m), n = 0;
    lf_param **ps = calloc((size_t)np, sizeof *ps);
    act_slot *slots = calloc((size_t)np, sizeof *slots);
    lf_status st = LF_OK;
    if (!ps || !slots) {
        st = LF_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < np; i++) {
        lf_param *p = lf_model_param(m, i);
        int l;
        role r = param_role(p, &l);
        if (l < 0 || (r != R_O && r != R_DOWN)) continue;
        if (p->tap) {
            lf_set_error("structured pruning %s: the weight already has an activation tap", p->name);
            st = LF_ERR_ARG;
            goto done;
        }
        if (!(slots[n].sq = calloc((size_t)p->shape[1], sizeof(double)))) {
            st = LF_ERR_NOMEM;
            goto done;
        }
        p->tap = act_tap;
        p->tap_ctx = &slots[n];
        ps[n++] = p;
    }
    lf_model_set_forward_only(m, 1);
    for (int k0 = 0; k0 < K && !st; k0 += batch) {
        int B = K - k0 < batch ? K - k0 : batch;
        st = lf_model_forward(m, calib + (size_t)k0 * T, B, T, LF_LOGITS_NONE);
        if (!st) block_influence(m, B * T, s->layer);
        if (rep) lf_report_progress(rep, "act importance: %d/%d sequences", k0 + B, K);
    }
    lf_model_set_forward_only(m, 0);
    /* |W_ij|·‖X_j‖ of o_proj / down_proj, summed by add_scores over each structure's columns;
     * the layer sums add_scores makes are replaced by the block influence afterwards */
    double *bi = malloc(sizeof(double) * (size_t)c->n_layer);
    if (!bi && !st) st = LF_ERR_NOMEM;
    if (bi) memcpy(bi, s->layer, sizeof(double) * (size_t)c->n_layer);
    for (int i = 0; i < n && !st; i++) {
        lf_param *p = ps[i];
        int64_t OC = p->shape[0], IC = p->shape[1];
        float *e = malloc(sizeof(float) * p->numel);
        if (!e) {
            st = LF_ERR_NOMEM;
            break;
        }
        for (int64_t j = 0; j < IC; j++) {
            float nx = (float)sqrt(slots[i].sq[j]);
            for (int64_t o = 0; o < OC; o++) e[(size_t)o * IC + j] = fabsf(p->data[(size_t)o * IC + j]) * nx;
        }
        add_scores(s, kv, c, p, e);
        free(e);
    }
    if (bi) memcpy(s->layer, bi, sizeof(double) * (size_t)c->n_layer);
    free(bi);
done:
    if (st == LF_ERR_NOMEM) lf_set_error("structured pruning: out of memory for the activation statistics");
    for (int i = 0; i < n; i++) {
        ps[i]->tap = NULL;
        ps[i]->tap_ctx = NULL;
    }
    for (int i = 0; slots && i < np; i++) free(slots[i].sq);
    free(slots);
    free(ps);
    return st;
}

static lf_status score_taylor(lf_model *m, const int32_t *calib, int K, int T, int batch, lf_reporter *rep, lf_sprune_scores *s,
                              double *kv) {
    const lf_config *c = lf_model_config(m);
    int np = lf_model_num_params(m);
    /* only the blocks' tensors score: the embeddings, the head and the final norm are frozen while
     * scoring (their V×C gradients are the largest) */
    unsigned *flags = malloc(sizeof(unsigned) * (size_t)np);
    lf_loss_term *ce = lf_loss_ce_new(0.0f);
    lf_batch b = {0};
    lf_status st = LF_OK;
    if (!flags || !ce || lf_batch_alloc(&b, batch < K ? batch : K, T - 1)) {
        free(flags);
        lf_loss_free(ce);
        lf_batch_free(&b);
        lf_set_error("structured pruning: out of memory for the calibration batch");
        return LF_ERR_NOMEM;
    }
    for (int i = 0; i < np; i++) {
        lf_param *p = lf_model_param(m, i);
        flags[i] = p->flags;
        int l;
        param_role(p, &l);
        if (l < 0) st = lf_model_set_trainable(m, p->name, 0, NULL);
        else if (!(p->flags & LF_PARAM_TRAINABLE)) st = lf_model_set_trainable(m, p->name, 1, NULL);
        if (st) goto done;
    }
    lf_model_set_training(m, 0, 0);
    lf_model_zero_grad(m);
    for (int k0 = 0; k0 < K && !st; k0 += b.B) {
        int B = K - k0 < b.B ? K - k0 : b.B;
        lf_batch bb = b;
        bb.B = B;
        for (int r = 0; r < B; r++) {
            const int32_t *w = calib + (size_t)(k0 + r) * T;
            memcpy(bb.inputs + (size_t)r * (T - 1), w, sizeof(int32_t) * (size_t)(T - 1));
            memcpy(bb.targets + (size_t)r * (T - 1), w + 1, sizeof(int32_t) * (size_t)(T - 1));
        }
        lf_loss_term *terms[1] = {ce};
        st = lf_loss_forward(m, terms, 1, &bb, NULL, NULL);
        /* each batch's mean loss weighted by its rows: the gradient of the mean over all K */
        if (!st) st = lf_loss_backward(m, terms, 1, &bb, (float)B / (float)K);
        if (rep) lf_report_progress(rep, "taylor importance: %d/%d sequences", k0 + B, K);
    }
    for (int i = 0; i < np && !st; i++) {
        lf_param *p = lf_model_param(m, i);
        int l;
        param_role(p, &l);
        if (l < 0 || !p->grad) continue;
        float *e = malloc(sizeof(float) * p->numel);
        if (!e) {
            lf_set_error("structured pruning: out of memory");
            st = LF_ERR_NOMEM;
            break;
        }
        for (size_t j = 0; j < p->numel; j++) e[j] = fabsf(p->data[j] * p->grad[j]);
        add_scores(s, kv, c, p, e);
        free(e);
    }
    lf_model_zero_grad(m);
done:
    for (int i = 0; i < np; i++) {
        lf_param *p = lf_model_param(m, i);
        if ((p->flags ^ flags[i]) & LF_PARAM_TRAINABLE) lf_model_set_trainable(m, p->name, (flags[i] & LF_PARAM_TRAINABLE) != 0, NULL);
    }
    free(flags);
    lf_loss_free(ce);
    lf_batch_free(&b);
    return st;
}

lf_status lf_sprune_score(lf_model *m, lf_importance imp, const int32_t *calib, int K, int T, int batch, lf_reporter *rep,
                          lf_sprune_scores *out) {
    memset(out, 0, sizeof *out);
    const lf_config *c = lf_model_config(m);
    if (!calib || K < 1 || T < 2 || batch < 1) {
        lf_set_error("structured pruning needs calibration sequences (got %d of %d tokens, batch %d)", K, T, batch);
        return LF_ERR_ARG;
    }
    if ((unsigned)imp > LF_IMPORTANCE_ACT) {
        lf_set_error("structured pruning: unknown importance %d", (int)imp);
        return LF_ERR_ARG;
    }
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        if (!p->data || p->qops) {
            lf_set_error("structured pruning %s: the weight is stored as %s, not float32 (load the model dequantized)", p->name,
                         p->qops ? p->qops->name : "nothing");
            return LF_ERR_ARG;
        }
    }
    size_t L = (size_t)c->n_layer;
    out->n_layer = c->n_layer;
    out->n_head = c->n_head;
    out->n_kv_head = c->n_kv_head;
    out->d_ff = c->d_ff;
    out->group = calloc(L * c->n_kv_head, sizeof(double));
    out->head = calloc(L * c->n_head, sizeof(double));
    out->neuron = calloc(L * c->d_ff, sizeof(double));
    out->layer = calloc(L, sizeof(double));
    double *kv = calloc(L * c->n_kv_head, sizeof(double)); // (L, KVH) k/v rows' share
    lf_status st = LF_OK;
    if (!out->group || !out->head || !out->neuron || !out->layer || !kv) {
        lf_set_error("structured pruning: out of memory for the scores");
        st = LF_ERR_NOMEM;
    }
    if (!st)
        st = imp == LF_IMPORTANCE_TAYLOR ? score_taylor(m, calib, K, T, batch, rep, out, kv)
                                         : score_act(m, calib, K, T, batch, rep, out, kv);
    if (rep) lf_report_progress_end(rep);
    int G = c->n_head / c->n_kv_head;
    for (size_t l = 0; l < L && !st; l++)
        for (int g = 0; g < c->n_kv_head; g++) {
            double v = kv[l * c->n_kv_head + g];
            for (int h = g * G; h < (g + 1) * G; h++) v += out->head[l * c->n_head + h];
            out->group[l * c->n_kv_head + g] = v;
        }
    free(kv);
    if (st) lf_sprune_scores_free(out);
    return st;
}

/* ---------------------------------------------------------------- the plan */

typedef struct {
    double s;
    int i;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? -1 : 1;
    return x->i - y->i;
}

static int cmp_int(const void *a, const void *b) {
    return *(const int *)a - *(const int *)b;
}

/* keep (n - drop): the indices of idx (n) whose scores sc[idx[i]] are not among the drop lowest
 * (ties: the lower index goes), ascending */
static void keep_highest(const double *sc, const int *idx, int n, int drop, int *keep, ranked *tmp) {
    for (int i = 0; i < n; i++) tmp[i] = (ranked){isnan(sc[idx[i]]) ? -INFINITY : sc[idx[i]], idx[i]};
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_ranked);
    for (int i = drop; i < n; i++) keep[i - drop] = tmp[i].i;
    qsort(keep, (size_t)(n - drop), sizeof *keep, cmp_int);
}

lf_status lf_sprune_plan_make(const lf_model *m, const lf_sprune_scores *s, int remove_groups, int remove_qheads,
                              int remove_neurons, int remove_layers, lf_sprune_plan *out) {
    memset(out, 0, sizeof *out);
    const lf_config *c = lf_model_config(m);
    int L = c->n_layer, H = c->n_head, KVH = c->n_kv_head, G = H / KVH, F = c->d_ff;
    if (s->n_layer != L || s->n_head != H || s->n_kv_head != KVH || s->d_ff != F) {
        lf_set_error("structured pruning: the scores are of another model (%d layers, %d heads)", s->n_layer, s->n_head);
        return LF_ERR_ARG;
    }
    if (remove_groups < 0 || remove_groups >= KVH || remove_qheads < 0 || remove_qheads >= G || remove_neurons < 0 ||
        remove_neurons >= F || remove_layers < 0 || remove_layers >= L) {
        lf_set_error("structured pruning: removing %d of %d KV groups, %d of %d heads per group, %d of %d neurons and %d of %d "
                     "layers would leave none of one kind (at least one of each must stay)",
                     remove_groups, KVH, remove_qheads, G, remove_neurons, F, remove_layers, L);
        return LF_ERR_ARG;
    }
    if (c->arch == LF_ARCH_GPT2 && (remove_groups || remove_qheads)) {
        lf_set_error("structured pruning: GPT-2 configs cannot say head_dim (n_head · head_dim must equal n_embd), so its "
                     "heads stay; prune neurons or layers");
        return LF_ERR_ARG;
    }
    int nl = L - remove_layers, nkv = KVH - remove_groups, ng = G - remove_qheads, nh = nkv * ng, nf = F - remove_neurons;
    int big = H > F ? H : F;
    big = big > L ? big : L;
    out->n_layer = nl;
    out->n_kv_head = nkv;
    out->n_head = nh;
    out->d_ff = nf;
    out->layers = malloc(sizeof(int) * (size_t)nl);
    out->kv_heads = malloc(sizeof(int) * (size_t)nl * nkv);
    out->heads = malloc(sizeof(int) * (size_t)nl * nh);
    out->neurons = malloc(sizeof(int) * (size_t)nl * nf);
    ranked *tmp = malloc(sizeof(ranked) * (size_t)big);
    int *idx = malloc(sizeof(int) * (size_t)big);
    if (!out->layers || !out->kv_heads || !out->heads || !out->neurons || !tmp || !idx) {
        free(tmp);
        free(idx);
        lf_sprune_plan_free(out);
        lf_set_error("structured pruning: out of memory for the plan");
        return LF_ERR_NOMEM;
    }
    for (int i = 0; i < big; i++) idx[i] = i;
    keep_highest(s->layer, idx, L, remove_layers, out->layers, tmp);
    for (int i = 0; i < nl; i++) {
        int l = out->layers[i];
        int *kvk = out->kv_heads + (size_t)i * nkv;
        keep_highest(s->group + (size_t)l * KVH, idx, KVH, remove_groups, kvk, tmp);
        for (int g = 0; g < nkv; g++) { /* the query heads of source group kvk[g] */
            int hidx[256], *dst = out->heads + (size_t)i * nh + (size_t)g * ng;
            for (int q = 0; q < G && q < 256; q++) hidx[q] = kvk[g] * G + q;
            keep_highest(s->head + (size_t)l * H, hidx, G, remove_qheads, dst, tmp);
        }
        keep_highest(s->neuron + (size_t)l * F, idx, F, remove_neurons, out->neurons + (size_t)i * nf, tmp);
    }
    free(tmp);
    free(idx);
    return LF_OK;
}

/* ---------------------------------------------------------------- the shrink */

/* dst (nr, nc) = src (·, IC) at rows rows[r] and columns cols[c] */
static void gather(float *dst, const float *src, int64_t IC, const int *rows, int64_t nr, const int *cols, int64_t nc) {
    for (int64_t r = 0; r < nr; r++)
        for (int64_t c = 0; c < nc; c++) dst[(size_t)r * nc + c] = src[(size_t)rows[r] * IC + cols[c]];
}

/* idx expanded to units of per: structure i -> per consecutive rows/columns */
static int *expand(const int *idx, int n, int per) {
    int *e = malloc(sizeof(int) * (size_t)n * per);
    for (int i = 0; e && i < n; i++)
        for (int k = 0; k < per; k++) e[(size_t)i * per + k] = idx[i] * per + k;
    return e;
}

static int *iota(int64_t n) {
    int *e = malloc(sizeof(int) * (size_t)(n ? n : 1));
    for (int64_t i = 0; e && i < n; i++) e[i] = (int)i;
    return e;
}

lf_status lf_sprune_shrink(lf_model *m, const lf_sprune_plan *p, lf_model **out) {
    *out = NULL;
    const lf_config *c = lf_model_config(m);
    int np = lf_model_num_params(m);
    for (int i = 0; i < np; i++) {
        lf_param *q = lf_model_param(m, i);
        if (q->flags & (LF_PARAM_EXTRA | LF_PARAM_ADAPTER) || q->adapters) {
            lf_set_error("structured pruning: %s is an adapter or added tensor (merge or remove it first)", q->name);
            return LF_ERR_ARG;
        }
        if (!q->data || q->qops) {
            lf_set_error("structured pruning %s: the weight is not float32 (load the model dequantized)", q->name);
            return LF_ERR_ARG;
        }
    }
    if (p->n_layer < 1 || p->n_layer > c->n_layer || p->n_kv_head < 1 || p->n_kv_head > c->n_kv_head || p->n_head < 1 ||
        p->n_head % p->n_kv_head || p->d_ff < 1 || p->d_ff > c->d_ff ||
        (c->arch == LF_ARCH_GPT2 && (p->n_head != c->n_head || p->n_kv_head != c->n_kv_head))) {
        lf_set_error("structured pruning: the plan (%d layers, %d heads in %d groups, %d neurons) does not fit the model", p->n_layer,
                     p->n_head, p->n_kv_head, p->d_ff);
        return LF_ERR_ARG;
    }
    lf_config nc = *c;
    nc.n_layer = p->n_layer;
    nc.n_head = p->n_head;
    nc.n_kv_head = p->n_kv_head;
    nc.d_ff = p->d_ff;
    lf_model *n;
    lf_status st = lf_model_init(&n, &nc);
    if (st) return st;
    int hd = c->head_dim;
    for (int i = 0; i < lf_model_num_params(n) && !st; i++) {
        lf_param *d = lf_model_param(n, i);
        int nl;
        role r = param_role(d, &nl);
        lf_param *s;
        if (nl < 0) {
            s = lf_model_find(m, d->name);
        } else {
            const char *suf = strchr(strstr(d->name, nc.arch == LF_ARCH_GPT2 ? ".h." : ".layers.") + 1, '.');
            suf = strchr(suf + 1, '.') + 1;
            s = layer_param(m, p->layers[nl], suf);
        }
        LF_ASSERT(s != NULL);
        LF_ASSERT(r != R_LAYER || s->numel == d->numel);
        int64_t OC = d->shape[0], IC = d->ndim == 2 ? d->shape[1] : 1, SIC = s->ndim == 2 ? s->shape[1] : 1;
        int *rows = NULL, *cols = NULL;
        const int *heads = nl >= 0 ? p->heads + (size_t)nl * p->n_head : NULL;
        const int *kvh = nl >= 0 ? p->kv_heads + (size_t)nl * p->n_kv_head : NULL;
        const int *neu = nl >= 0 ? p->neurons + (size_t)nl * p->d_ff : NULL;
        switch (r) {
        case R_Q: rows = expand(heads, p->n_head, hd); break;
        case R_K:
        case R_V: rows = expand(kvh, p->n_kv_head, hd); break;
        case R_O: cols = expand(heads, p->n_head, hd); break;
        case R_FC: rows = expand(neu, p->d_ff, 1); break;
        case R_DOWN: cols = expand(neu, p->d_ff, 1); break;
        default: break;
        }
        if (!rows) rows = iota(OC);
        if (!cols) cols = iota(IC);
        if (!rows || !cols) {
            lf_set_error("structured pruning: out of memory");
            st = LF_ERR_NOMEM;
        } else {
            gather(d->data, s->data, SIC, rows, OC, cols, IC);
        }
        free(rows);
        free(cols);
    }
    if (st) lf_model_free(n);
    else *out = n;
    return st;
}
