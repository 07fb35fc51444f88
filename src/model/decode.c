/* Incremental decoding with a key/value cache: one token at a time, reusing the keys and values
 * of earlier positions, so generating n tokens costs O(n) layer passes instead of O(n^2). Same
 * kernels and weights as the training forward; dropout is off. */
#include "lmforge/kernels.h"
#include "model_internal.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

lf_status lf_model_cache_init(lf_model *m, int max_len) {
    const lf_config *c = &m->cfg;
    if (max_len <= 0 || max_len > c->max_seq) max_len = c->max_seq;
    if (m->kv.mem && m->kv.cap >= max_len) {
        m->kv.len = 0;
        return LF_OK;
    }
    lf_free(m->kv.mem);
    memset(&m->kv, 0, sizeof m->kv);
    size_t L = (size_t)c->n_layer, KV = (size_t)c->n_kv_head * c->head_dim, C = (size_t)c->d_model;
    size_t S = (size_t)(c->n_head + 2 * c->n_kv_head) * c->head_dim, A = (size_t)c->n_head * c->head_dim;
    size_t F = (size_t)c->d_ff, FW = c->arch == LF_ARCH_LLAMA ? 2 * F : F;
    size_t sizes[] = {L * max_len * KV, L * max_len * KV, C, C, S, A, C, FW, F, (size_t)max_len};
    float **ptrs[] = {&m->kv.k, &m->kv.v, &m->kv.x, &m->kv.ln, &m->kv.qkv, &m->kv.y, &m->kv.br, &m->kv.fc, &m->kv.fca, &m->kv.scores};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += (sizes[i] + 15) & ~(size_t)15;
    m->kv.mem = lf_alloc(total * sizeof(float));
    if (!m->kv.mem) return LF_ERR_NOMEM;
    float *p = m->kv.mem;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        *ptrs[i] = p;
        p += (sizes[i] + 15) & ~(size_t)15;
    }
    m->kv.cap = max_len;
    m->kv.len = 0;
    return LF_OK;
}

void lf_model_cache_reset(lf_model *m) { m->kv.len = 0; }
int lf_model_cache_len(const lf_model *m) { return m->kv.len; }

/* one row: a matrix-vector product (GEMV streams the weights once; GEMM with one row packs them) */
static void lin(float *out, const float *in, const lf_param *w, const lf_param *b) {
    int OC = (int)w->shape[0], IC = (int)w->shape[1];
    if (b) memcpy(out, b->data, sizeof(float) * (size_t)OC);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, IC, 1.0f, w->data, IC, in, 1, b ? 1.0f : 0.0f, out, 1);
}

static void norm(const lf_model *m, float *out, const float *in, const lf_param *w, const lf_param *b) {
    float mean, rstd;
    if (m->cfg.arch == LF_ARCH_GPT2) lf_layernorm_forward(out, &mean, &rstd, in, w->data, b->data, 1, m->cfg.d_model, m->cfg.norm_eps);
    else lf_rmsnorm_forward(out, &rstd, in, w->data, 1, m->cfg.d_model, m->cfg.norm_eps);
}

lf_status lf_model_decode(lf_model *m, const int32_t *tokens, int n, float *logits) {
    const lf_config *c = &m->cfg;
    kv_cache *kv = &m->kv;
    if (!kv->mem) {
        lf_set_error("decode: call lf_model_cache_init first");
        return LF_ERR_ARG;
    }
    if (kv->len + n > kv->cap) {
        lf_set_error("decode: %d tokens exceed the cache / context length %d", kv->len + n, kv->cap);
        return LF_ERR_ARG;
    }
    int C = c->d_model, H = c->n_head, KVH = c->n_kv_head, hd = c->head_dim, F = c->d_ff, V = c->vocab_size;
    int S = (H + 2 * KVH) * hd, A = H * hd, KVW = KVH * hd, G = H / KVH, half = hd / 2;
    int gpt2 = c->arch == LF_ARCH_GPT2;
    float scale = 1.0f / sqrtf((float)hd);
    for (int i = 0; i < n; i++) {
        int tok = tokens[i], pos = kv->len;
        if (tok < 0 || tok >= V) {
            lf_set_error("decode: token id %d is outside the vocabulary (0..%d)", tok, V - 1);
            return LF_ERR_ARG;
        }
        for (int j = 0; j < C; j++)
            kv->x[j] = m->wte->data[(size_t)tok * C + j] + (gpt2 ? m->wpe->data[(size_t)pos * C + j] : 0.0f);
        for (int l = 0; l < c->n_layer; l++) {
            const layer_params *Lp = &m->layers[l];
            float *kc = kv->k + ((size_t)l * kv->cap) * KVW, *vc = kv->v + ((size_t)l * kv->cap) * KVW;
            norm(m, kv->ln, kv->x, Lp->ln1_w, Lp->ln1_b);
            if (gpt2) {
                lin(kv->qkv, kv->ln, Lp->qkv_w, Lp->qkv_b);
            } else {
                lin(kv->qkv, kv->ln, Lp->q_w, NULL);
                lin(kv->qkv + A, kv->ln, Lp->k_w, NULL);
                lin(kv->qkv + A + KVW, kv->ln, Lp->v_w, NULL);
                lf_rope_forward(kv->qkv, m->rope_cos + (size_t)pos * half, m->rope_sin + (size_t)pos * half, 1, 1, H + KVH, hd, S);
            }
            memcpy(kc + (size_t)pos * KVW, kv->qkv + A, sizeof(float) * KVW);
            memcpy(vc + (size_t)pos * KVW, kv->qkv + A + KVW, sizeof(float) * KVW);
            for (int h = 0; h < H; h++) {
                const float *q = kv->qkv + (size_t)h * hd;
                int g = h / G;
                float mx = -INFINITY;
                for (int t = 0; t <= pos; t++) {
                    const float *k = kc + (size_t)t * KVW + (size_t)g * hd;
                    float s = 0.0f;
                    for (int d = 0; d < hd; d++) s += q[d] * k[d];
                    kv->scores[t] = s * scale;
                    mx = kv->scores[t] > mx ? kv->scores[t] : mx;
                }
                float sum = 0.0f;
                for (int t = 0; t <= pos; t++) {
                    kv->scores[t] = expf(kv->scores[t] - mx);
                    sum += kv->scores[t];
                }
                float *y = kv->y + (size_t)h * hd;
                memset(y, 0, sizeof(float) * hd);
                for (int t = 0; t <= pos; t++) {
                    const float *v = vc + (size_t)t * KVW + (size_t)g * hd;
                    float p = kv->scores[t] / sum;
                    for (int d = 0; d < hd; d++) y[d] += p * v[d];
                }
            }
            lin(kv->br, kv->y, Lp->o_w, Lp->o_b);
            for (int j = 0; j < C; j++) kv->x[j] += kv->br[j];
            norm(m, kv->ln, kv->x, Lp->ln2_w, Lp->ln2_b);
            if (gpt2) {
                lin(kv->fc, kv->ln, Lp->fc_w, Lp->fc_b);
                lf_gelu_forward(kv->fca, kv->fc, (size_t)F);
            } else {
                lin(kv->fc, kv->ln, Lp->gate_w, NULL);
                lin(kv->fc + F, kv->ln, Lp->up_w, NULL);
                lf_swiglu_forward(kv->fca, kv->fc, 1, F);
            }
            lin(kv->br, kv->fca, Lp->down_w, Lp->down_b);
            for (int j = 0; j < C; j++) kv->x[j] += kv->br[j];
        }
        kv->len++;
        if (i == n - 1) {
            norm(m, kv->ln, kv->x, m->lnf_w, m->lnf_b);
            lin(logits, kv->ln, m->head, NULL);
        }
    }
    return LF_OK;
}
