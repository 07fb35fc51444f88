/* Incremental decoding with a key/value cache: one token at a time, reusing the keys and values
 * of earlier positions, so generating n tokens costs O(n) layer passes instead of O(n^2). Same
 * linear path (adapters, storage types, taps) and kernels as the training forward; dropout off. */
#include "lmforge/kernels.h"
#include "model_internal.h"

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
    /* adapters need their scratch (one row) from the activation plan */
    if (m->adapter_gen && (!m->act_mem || m->planned_adapters != m->adapter_gen)) {
        m->fwd_valid = 0;
        lf_status st = lf_model_plan(m, 1, 1, 0);
        if (st) return st;
    }
    int C = c->d_model, H = c->n_head, KVH = c->n_kv_head, hd = c->head_dim, F = c->d_ff, V = c->vocab_size;
    int S = (H + 2 * KVH) * hd, A = H * hd, KVW = KVH * hd, half = hd / 2;
    int gpt2 = c->arch == LF_ARCH_GPT2;
    int training = m->training;
    m->training = 0; /* decoding never drops out */
    for (int i = 0; i < n; i++) {
        int tok = tokens[i], pos = kv->len;
        if (tok < 0 || tok >= V) {
            m->training = training;
            lf_set_error("decode: token id %d is outside the vocabulary (0..%d)", tok, V - 1);
            return LF_ERR_ARG;
        }
        if (m->wte->qops) {
            int32_t t32 = tok;
            m->wte->qops->lookup(m->wte, &t32, 1, kv->x);
            for (int j = 0; gpt2 && j < C; j++) kv->x[j] += m->wpe->data[(size_t)pos * C + j];
        } else {
            for (int j = 0; j < C; j++)
                kv->x[j] = m->wte->data[(size_t)tok * C + j] + (gpt2 ? m->wpe->data[(size_t)pos * C + j] : 0.0f);
        }
        for (int l = 0; l < c->n_layer; l++) {
            const layer_params *Lp = &m->layers[l];
            float *kc = kv->k + ((size_t)l * kv->cap) * KVW, *vc = kv->v + ((size_t)l * kv->cap) * KVW;
            lf_model_norm_row(m, kv->ln, kv->x, Lp->ln1_w, Lp->ln1_b);
            if (gpt2) {
                lf_linear_run_forward(m, kv->qkv, S, kv->ln, C, Lp->qkv_w, Lp->qkv_b, 1);
            } else {
                lf_linear_run_forward(m, kv->qkv, S, kv->ln, C, Lp->q_w, NULL, 1);
                lf_linear_run_forward(m, kv->qkv + A, S, kv->ln, C, Lp->k_w, NULL, 1);
                lf_linear_run_forward(m, kv->qkv + A + KVW, S, kv->ln, C, Lp->v_w, NULL, 1);
                lf_rope_forward(kv->qkv, m->rope_cos + (size_t)pos * half, m->rope_sin + (size_t)pos * half, 1, 1, H + KVH, hd, S);
            }
            memcpy(kc + (size_t)pos * KVW, kv->qkv + A, sizeof(float) * KVW);
            memcpy(vc + (size_t)pos * KVW, kv->qkv + A + KVW, sizeof(float) * KVW);
            lf_attention_decode_forward(kv->y, kv->qkv, kc, vc, kv->scores, pos + 1, H, KVH, hd);
            lf_linear_run_forward(m, kv->br, C, kv->y, A, Lp->o_w, Lp->o_b, 1);
            for (int j = 0; j < C; j++) kv->x[j] += kv->br[j];
            lf_model_norm_row(m, kv->ln, kv->x, Lp->ln2_w, Lp->ln2_b);
            if (gpt2) {
                lf_linear_run_forward(m, kv->fc, F, kv->ln, C, Lp->fc_w, Lp->fc_b, 1);
                lf_gelu_forward(kv->fca, kv->fc, (size_t)F);
            } else {
                lf_linear_run_forward(m, kv->fc, 2 * F, kv->ln, C, Lp->gate_w, NULL, 1);
                lf_linear_run_forward(m, kv->fc + F, 2 * F, kv->ln, C, Lp->up_w, NULL, 1);
                lf_swiglu_forward(kv->fca, kv->fc, 1, F);
            }
            lf_linear_run_forward(m, kv->br, C, kv->fca, F, Lp->down_w, Lp->down_b, 1);
            for (int j = 0; j < C; j++) kv->x[j] += kv->br[j];
        }
        kv->len++;
        if (i == n - 1) {
            lf_model_norm_row(m, kv->ln, kv->x, m->lnf_w, m->lnf_b);
            lf_linear_run_forward(m, logits, V, kv->ln, C, m->head, NULL, 1);
        }
    }
    m->training = training;
    return LF_OK;
}
