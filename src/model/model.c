/* The transformer: parameter table, activation plan and forward/backward for the GPT-2 and
 * Llama families. The architecture's parameters live in one allocation carved by the table
 * (tensors added later, such as adapters, get their own); gradients in a second (trainable
 * parameters only); activations in a third, planned from one table of names and sizes for the
 * current (B,T, mode). Forward ends at the logits; losses are terms outside the model (loss.c). */
#include "model_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lf_config_defaults(lf_config *c, lf_arch arch) {
    memset(c, 0, sizeof *c);
    c->arch = arch;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->tie_embeddings = arch == LF_ARCH_GPT2;
    c->init_std = 0.02f;
    c->bos_id = c->eos_id = -1;
}

lf_status lf_config_check(const lf_config *c) {
#define REQ(cond, ...)                                                                             \
    if (!(cond)) {                                                                                 \
        lf_set_error(__VA_ARGS__);                                                                 \
        return LF_ERR_ARG;                                                                         \
    }
    REQ(c->arch == LF_ARCH_GPT2 || c->arch == LF_ARCH_LLAMA, "model config: unknown architecture %d", (int)c->arch);
    REQ(c->vocab_size > 0 && c->vocab_size <= (1 << 24), "model config: vocab_size %d out of range (1..16777216)", c->vocab_size);
    REQ(c->d_model > 0 && c->d_model <= 65536, "model config: d_model %d out of range", c->d_model);
    REQ(c->n_layer > 0 && c->n_layer <= 1024, "model config: n_layer %d out of range", c->n_layer);
    REQ(c->n_head > 0 && c->n_kv_head > 0 && c->n_head % c->n_kv_head == 0,
        "model config: n_kv_head %d must divide n_head %d", c->n_kv_head, c->n_head);
    REQ(c->head_dim > 0 && c->head_dim <= 4096, "model config: head_dim %d out of range", c->head_dim);
    REQ(c->arch != LF_ARCH_LLAMA || c->head_dim % 2 == 0, "model config: RoPE needs an even head_dim, got %d", c->head_dim);
    REQ(c->arch != LF_ARCH_GPT2 || (c->n_kv_head == c->n_head && c->n_head * c->head_dim == c->d_model),
        "model config: GPT-2 needs n_kv_head == n_head and n_head*head_dim == d_model");
    REQ(c->n_head <= 4096 && c->n_kv_head <= c->n_head, "model config: n_head %d / n_kv_head %d out of range (at most 4096)",
        c->n_head, c->n_kv_head);
    REQ((size_t)c->n_head * (size_t)c->head_dim <= (1u << 18), "model config: n_head x head_dim = %zu is out of range (at most 262144)",
        (size_t)c->n_head * (size_t)c->head_dim);
    REQ(c->d_ff > 0 && c->d_ff <= (1 << 20), "model config: d_ff %d out of range", c->d_ff);
    REQ(c->max_seq > 0 && c->max_seq <= (1 << 20), "model config: max_seq %d out of range", c->max_seq);
    REQ(c->norm_eps > 0.0f, "model config: norm_eps must be > 0");
    REQ(c->arch != LF_ARCH_LLAMA || c->rope_theta > 0.0f, "model config: rope_theta must be > 0");
    REQ(c->dropout_embd >= 0 && c->dropout_embd < 1 && c->dropout_attn >= 0 && c->dropout_attn < 1 &&
            c->dropout_resid >= 0 && c->dropout_resid < 1,
        "model config: dropout rates must be in [0, 1)");
#undef REQ
    return LF_OK;
}

size_t lf_config_num_params(const lf_config *c) {
    size_t C = (size_t)c->d_model, V = (size_t)c->vocab_size, A = (size_t)c->n_head * c->head_dim;
    size_t KV = (size_t)c->n_kv_head * c->head_dim, F = (size_t)c->d_ff, L = (size_t)c->n_layer;
    size_t per, outside;
    if (c->arch == LF_ARCH_GPT2) {
        per = 2 * C + 3 * C * C + 3 * C + C * A + C + 2 * C + F * C + F + C * F + C;
        outside = V * C + (size_t)c->max_seq * C + 2 * C;
    } else {
        per = C + A * C + 2 * KV * C + C * A + C + 3 * F * C;
        outside = V * C + C;
    }
    if (!c->tie_embeddings) outside += V * C;
    return per * L + outside; /* bounded by lf_config_check: no overflow in 64 bits */
}

lf_status lf_model_check_finite(lf_model *m, const char *where) {
    for (int i = 0; i < m->nparams; i++) {
        const lf_param *p = m->params[i];
        if (!p->data) continue;
        for (size_t j = 0; j < p->numel; j++)
            if (!isfinite(p->data[j])) {
                lf_set_error("%s: tensor '%s' holds %s at index %zu: refusing a model with non-finite weights", where, p->name,
                             isnan(p->data[j]) ? "NaN" : "an infinite value", j);
                return LF_ERR_FORMAT;
            }
    }
    return LF_OK;
}

/* ---------------------------------------------------------------- parameter table */

typedef struct {
    lf_param *p;
    int n, cap;
} table_builder;

static lf_param *add_param(table_builder *tb, lf_param_kind kind, int transposed, int64_t d0, int64_t d1,
                           const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static lf_param *add_param(table_builder *tb, lf_param_kind kind, int transposed, int64_t d0, int64_t d1,
                           const char *fmt, ...) {
    LF_ASSERT(tb->n < tb->cap);
    lf_param *p = &tb->p[tb->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->ndim = d1 > 0 ? 2 : 1;
    p->shape[0] = d0;
    p->shape[1] = d1 > 0 ? d1 : 1;
    p->numel = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
    p->kind = kind;
    p->hf_transposed = transposed;
    p->flags = LF_PARAM_TRAINABLE | (kind == LF_KIND_WEIGHT ? LF_PARAM_DECAY : 0);
    return p;
}

/* The one table: Hugging Face names, our shapes, kinds. Order = memory order. */
static void build_table(lf_model *m, table_builder *tb) {
    const lf_config *c = &m->cfg;
    int C = c->d_model, A = c->n_head * c->head_dim, KV = c->n_kv_head * c->head_dim, F = c->d_ff;
    if (c->arch == LF_ARCH_GPT2) {
        m->wte = add_param(tb, LF_KIND_EMBED, 0, c->vocab_size, C, "transformer.wte.weight");
        m->wpe = add_param(tb, LF_KIND_EMBED, 0, c->max_seq, C, "transformer.wpe.weight");
        for (int l = 0; l < c->n_layer; l++) {
            layer_params *L = &m->layers[l];
            L->ln1_w = add_param(tb, LF_KIND_NORM, 0, C, 0, "transformer.h.%d.ln_1.weight", l);
            L->ln1_b = add_param(tb, LF_KIND_BIAS, 0, C, 0, "transformer.h.%d.ln_1.bias", l);
            L->qkv_w = add_param(tb, LF_KIND_WEIGHT, 1, 3 * C, C, "transformer.h.%d.attn.c_attn.weight", l);
            L->qkv_b = add_param(tb, LF_KIND_BIAS, 0, 3 * C, 0, "transformer.h.%d.attn.c_attn.bias", l);
            L->o_w = add_param(tb, LF_KIND_WEIGHT, 1, C, A, "transformer.h.%d.attn.c_proj.weight", l);
            L->o_b = add_param(tb, LF_KIND_BIAS, 0, C, 0, "transformer.h.%d.attn.c_proj.bias", l);
            L->ln2_w = add_param(tb, LF_KIND_NORM, 0, C, 0, "transformer.h.%d.ln_2.weight", l);
            L->ln2_b = add_param(tb, LF_KIND_BIAS, 0, C, 0, "transformer.h.%d.ln_2.bias", l);
            L->fc_w = add_param(tb, LF_KIND_WEIGHT, 1, F, C, "transformer.h.%d.mlp.c_fc.weight", l);
            L->fc_b = add_param(tb, LF_KIND_BIAS, 0, F, 0, "transformer.h.%d.mlp.c_fc.bias", l);
            L->down_w = add_param(tb, LF_KIND_WEIGHT, 1, C, F, "transformer.h.%d.mlp.c_proj.weight", l);
            L->down_b = add_param(tb, LF_KIND_BIAS, 0, C, 0, "transformer.h.%d.mlp.c_proj.bias", l);
        }
        m->lnf_w = add_param(tb, LF_KIND_NORM, 0, C, 0, "transformer.ln_f.weight");
        m->lnf_b = add_param(tb, LF_KIND_BIAS, 0, C, 0, "transformer.ln_f.bias");
        m->head = c->tie_embeddings ? m->wte
                                    : add_param(tb, LF_KIND_WEIGHT, 0, c->vocab_size, C, "lm_head.weight");
    } else {
        m->wte = add_param(tb, LF_KIND_EMBED, 0, c->vocab_size, C, "model.embed_tokens.weight");
        for (int l = 0; l < c->n_layer; l++) {
            layer_params *L = &m->layers[l];
            L->ln1_w = add_param(tb, LF_KIND_NORM, 0, C, 0, "model.layers.%d.input_layernorm.weight", l);
            L->q_w = add_param(tb, LF_KIND_WEIGHT, 0, A, C, "model.layers.%d.self_attn.q_proj.weight", l);
            L->k_w = add_param(tb, LF_KIND_WEIGHT, 0, KV, C, "model.layers.%d.self_attn.k_proj.weight", l);
            L->v_w = add_param(tb, LF_KIND_WEIGHT, 0, KV, C, "model.layers.%d.self_attn.v_proj.weight", l);
            L->o_w = add_param(tb, LF_KIND_WEIGHT, 0, C, A, "model.layers.%d.self_attn.o_proj.weight", l);
            L->ln2_w = add_param(tb, LF_KIND_NORM, 0, C, 0, "model.layers.%d.post_attention_layernorm.weight", l);
            L->gate_w = add_param(tb, LF_KIND_WEIGHT, 0, F, C, "model.layers.%d.mlp.gate_proj.weight", l);
            L->up_w = add_param(tb, LF_KIND_WEIGHT, 0, F, C, "model.layers.%d.mlp.up_proj.weight", l);
            L->down_w = add_param(tb, LF_KIND_WEIGHT, 0, C, F, "model.layers.%d.mlp.down_proj.weight", l);
        }
        m->lnf_w = add_param(tb, LF_KIND_NORM, 0, C, 0, "model.norm.weight");
        m->head = c->tie_embeddings ? m->wte
                                    : add_param(tb, LF_KIND_WEIGHT, 0, c->vocab_size, C, "lm_head.weight");
    }
}

static lf_status model_init(lf_model **out, const lf_config *cfg, int alloc_weights) {
    *out = NULL;
    lf_status st = lf_config_check(cfg);
    if (st) return st;
    double need = 4.0 * (double)lf_config_num_params(cfg), have = lf_machine_memory();
    if (have > 0 && need > have) {
        char a[32], b[32];
        lf_format_bytes(a, sizeof a, need);
        lf_format_bytes(b, sizeof b, have);
        lf_set_error("model config: the weights alone need %s, this machine has %s of memory", a, b);
        return LF_ERR_NOMEM;
    }
    lf_model *m = calloc(1, sizeof *m);
    if (!m) return LF_ERR_NOMEM;
    m->cfg = *cfg;
    m->layers = calloc((size_t)cfg->n_layer, sizeof *m->layers);
    /* the architecture's tensors per layer: at most 12 (GPT-2) or 9 (Llama), plus 6 outside */
    int cap = cfg->n_layer * 12 + 6;
    table_builder tb = {calloc((size_t)cap, sizeof(lf_param)), 0, cap};
    m->params_cap = cap + 16;
    m->params = calloc((size_t)m->params_cap, sizeof *m->params);
    if (!m->layers || !tb.p || !m->params) {
        free(tb.p);
        lf_model_free(m);
        lf_set_error("out of memory building the parameter table");
        return LF_ERR_NOMEM;
    }
    build_table(m, &tb);
    m->base = tb.p;
    m->nbase = m->nparams = tb.n;
    m->next_id = (uint64_t)tb.n + 1;
    for (int i = 0; i < m->nparams; i++) {
        m->params[i] = &m->base[i];
        m->base[i].id = (uint64_t)i + 1;
        m->param_scalars += m->base[i].numel;
    }
    if (alloc_weights && (st = lf_model_alloc_weights(m))) {
        lf_model_free(m);
        return st;
    }
    if (cfg->arch == LF_ARCH_LLAMA) {
        int half = cfg->head_dim / 2;
        m->rope_cos = lf_alloc(sizeof(float) * (size_t)cfg->max_seq * half);
        m->rope_sin = lf_alloc(sizeof(float) * (size_t)cfg->max_seq * half);
        if (!m->rope_cos || !m->rope_sin) {
            lf_model_free(m);
            return LF_ERR_NOMEM;
        }
        for (int p = 0; p < half; p++) {
            /* Hugging Face computes inv_freq and the angles in float32; so do we */
            float inv = 1.0f / powf(cfg->rope_theta, (float)(2 * p) / (float)cfg->head_dim);
            for (int t = 0; t < cfg->max_seq; t++) {
                float ang = (float)t * inv;
                m->rope_cos[(size_t)t * half + p] = cosf(ang);
                m->rope_sin[(size_t)t * half + p] = sinf(ang);
            }
        }
    }
    *out = m;
    return LF_OK;
}

static void free_param_extras(lf_param *p) {
    free(p->mask);
    free(p->qdata);
    for (lf_adapter *a = p->adapters, *nx; a; a = nx) {
        nx = a->next;
        free(a);
    }
    p->mask = NULL;
    p->qdata = NULL;
    p->adapters = NULL;
}

/* float32 slots of the architecture's tensors: those in another storage type have none */
static size_t f32_slots(const lf_model *m) {
    size_t total = 0;
    for (int i = 0; i < m->nbase; i++)
        if (!m->base[i].qops) total += (m->base[i].numel + 15) & ~(size_t)15;
    return total;
}

lf_status lf_model_alloc_weights(lf_model *m) {
    if (m->param_mem) return LF_OK;
    size_t total = f32_slots(m);
    m->param_mem = lf_alloc((total ? total : 16) * sizeof(float));
    if (!m->param_mem) {
        lf_set_error("out of memory: the model's weights need %.1f MiB", total * 4.0 / 1048576.0);
        return LF_ERR_NOMEM;
    }
    m->param_floats = total;
    size_t off = 0;
    for (int i = 0; i < m->nbase; i++) {
        if (m->base[i].qops) continue; /* given its storage before the weights were allocated */
        m->base[i].data = m->param_mem + off;
        off += (m->base[i].numel + 15) & ~(size_t)15;
    }
    for (int i = 0; i < m->nbase; i++) /* norms start at 1 so a zero-initialised model is sane */
        if (m->base[i].kind == LF_KIND_NORM && m->base[i].data)
            for (size_t j = 0; j < m->base[i].numel; j++) m->base[i].data[j] = 1.0f;
    return LF_OK;
}

lf_status lf_model_compact_weights(lf_model *m) {
    if (!m->param_mem) return LF_OK;
    size_t total = f32_slots(m);
    if (total == m->param_floats) return LF_OK;
    float *mem = lf_alloc((total ? total : 16) * sizeof(float));
    if (!mem) {
        lf_set_error("out of memory: compacting the model's float32 weights into %.1f MiB", total * 4.0 / 1048576.0);
        return LF_ERR_NOMEM;
    }
    size_t off = 0;
    for (int i = 0; i < m->nbase; i++) {
        lf_param *p = &m->base[i];
        if (p->qops) continue;
        memcpy(mem + off, p->data, p->numel * sizeof(float));
        p->data = mem + off;
        off += (p->numel + 15) & ~(size_t)15;
    }
    lf_free(m->param_mem);
    m->param_mem = mem;
    m->param_floats = total;
    return LF_OK;
}

lf_status lf_model_init(lf_model **out, const lf_config *cfg) { return model_init(out, cfg, 1); }
lf_status lf_model_init_table(lf_model **out, const lf_config *cfg) { return model_init(out, cfg, 0); }

void lf_model_free(lf_model *m) {
    if (!m) return;
    for (int i = 0; m->params && i < m->nparams; i++) {
        lf_param *p = m->params[i];
        free_param_extras(p);
        if (p->flags & LF_PARAM_EXTRA) {
            lf_free(p->data);
            free(p);
        }
    }
    lf_free(m->kv.mem);
    lf_free(m->param_mem);
    lf_free(m->grad_mem);
    lf_free(m->act_mem);
    lf_free(m->dhid);
    lf_free(m->rope_cos);
    lf_free(m->rope_sin);
    free(m->inputs);
    free(m->base);
    free(m->params);
    free(m->layers);
    free(m);
}

const lf_config *lf_model_config(const lf_model *m) { return &m->cfg; }
int lf_model_num_params(const lf_model *m) { return m->nparams; }
lf_param *lf_model_param(lf_model *m, int i) { return i >= 0 && i < m->nparams ? m->params[i] : NULL; }
size_t lf_model_num_scalars(const lf_model *m) { return m->param_scalars; }
void lf_model_set_training(lf_model *m, int training, uint64_t seed) {
    m->training = training;
    m->drop_seed = seed;
}
void lf_model_set_forward_only(lf_model *m, int on) {
    m->fwd_only = on != 0;
    m->fwd_valid = 0;
}
size_t lf_model_activation_bytes(const lf_model *m) { return m->act_cap * sizeof(float); }

lf_param *lf_model_find(lf_model *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i]->name, name) == 0) return m->params[i];
    return NULL;
}

/* ---------------------------------------------------------------- tensors added after init */

lf_status lf_model_add_param(lf_model *m, const char *name, int64_t d0, int64_t d1, lf_param_kind kind,
                             unsigned flags, lf_param **out) {
    if (out) *out = NULL;
    if (!name[0] || strlen(name) >= sizeof m->params[0]->name) {
        lf_set_error("add tensor: name '%.60s' is empty or longer than %zu bytes", name, sizeof m->params[0]->name - 1);
        return LF_ERR_ARG;
    }
    if (lf_model_find(m, name)) {
        lf_set_error("add tensor: the model already has a tensor named '%s'", name);
        return LF_ERR_ARG;
    }
    if (d0 <= 0 || d1 < 0 || d0 > (1LL << 31) || d1 > (1LL << 31) || (d1 > 0 && (uint64_t)d0 * (uint64_t)d1 > (1ULL << 34))) {
        lf_set_error("add tensor '%s': shape [%lld, %lld] out of range", name, (long long)d0, (long long)d1);
        return LF_ERR_ARG;
    }
    if (m->nparams == m->params_cap) {
        int cap = m->params_cap * 2;
        lf_param **np = realloc(m->params, (size_t)cap * sizeof *np);
        if (!np) return LF_ERR_NOMEM;
        m->params = np;
        m->params_cap = cap;
    }
    lf_param *p = calloc(1, sizeof *p);
    if (!p) return LF_ERR_NOMEM;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = d1 > 0 ? 2 : 1;
    p->shape[0] = d0;
    p->shape[1] = d1 > 0 ? d1 : 1;
    p->numel = (size_t)d0 * (size_t)p->shape[1];
    p->kind = kind;
    p->flags = flags | LF_PARAM_EXTRA;
    p->id = m->next_id++;
    p->data = lf_alloc(p->numel * sizeof(float));
    if (!p->data) {
        free(p);
        return LF_ERR_NOMEM;
    }
    m->params[m->nparams++] = p;
    m->param_scalars += p->numel;
    m->grads_planned = 0;
    if (out) *out = p;
    return LF_OK;
}

lf_status lf_model_remove_param(lf_model *m, lf_param *p) {
    int i = 0;
    while (i < m->nparams && m->params[i] != p) i++;
    if (i == m->nparams || !(p->flags & LF_PARAM_EXTRA)) {
        lf_set_error("remove tensor '%s': only tensors added after init can be removed", p->name);
        return LF_ERR_ARG;
    }
    for (int k = 0; k < m->nparams; k++) /* adapters that use it go too */
        for (lf_adapter **ap = &m->params[k]->adapters; *ap;)
            if ((*ap)->A == p || (*ap)->B == p || (*ap)->magnitude == p) {
                lf_adapter *dead = *ap;
                *ap = dead->next;
                free(dead);
                m->adapter_gen++;
            } else {
                ap = &(*ap)->next;
            }
    memmove(&m->params[i], &m->params[i + 1], (size_t)(m->nparams - i - 1) * sizeof *m->params);
    m->nparams--;
    m->param_scalars -= p->numel;
    free_param_extras(p);
    lf_free(p->data);
    free(p);
    m->grads_planned = 0;
    return LF_OK;
}

static int is_linear_weight(const lf_model *m, const lf_param *w) {
    return w->kind == LF_KIND_WEIGHT && w->ndim == 2 && w != m->wte;
}

lf_status lf_model_add_adapter(lf_model *m, lf_param *w, lf_param *A, lf_param *B, float scale, float dropout,
                               lf_adapter **out) {
    if (out) *out = NULL;
    if (!is_linear_weight(m, w) || w == m->wte) {
        lf_set_error("adapter: '%s' is not a linear layer's weight", w->name);
        return LF_ERR_ARG;
    }
    int64_t OC = w->shape[0], IC = w->shape[1], r = A->shape[0];
    if (A->ndim != 2 || B->ndim != 2 || A->shape[1] != IC || B->shape[0] != OC || B->shape[1] != r || r < 1) {
        lf_set_error("adapter on '%s' (%lld x %lld): A must be (r, %lld) and B (%lld, r); got A [%lld, %lld], B [%lld, %lld]",
                     w->name, (long long)OC, (long long)IC, (long long)IC, (long long)OC, (long long)A->shape[0],
                     (long long)A->shape[1], (long long)B->shape[0], (long long)B->shape[1]);
        return LF_ERR_ARG;
    }
    if (!(dropout >= 0.0f && dropout < 1.0f) || !isfinite(scale)) {
        lf_set_error("adapter on '%s': dropout must be in [0, 1) and the scale finite", w->name);
        return LF_ERR_ARG;
    }
    lf_adapter *a = calloc(1, sizeof *a);
    if (!a) return LF_ERR_NOMEM;
    *a = (lf_adapter){A, B, NULL, scale, dropout, 1, NULL};
    A->flags |= LF_PARAM_ADAPTER;
    B->flags |= LF_PARAM_ADAPTER;
    lf_adapter **tail = &w->adapters; /* applied in the order they were attached */
    while (*tail) tail = &(*tail)->next;
    *tail = a;
    m->adapter_gen++;
    m->fwd_valid = 0;
    if (out) *out = a;
    return LF_OK;
}

lf_status lf_model_set_adapter_magnitude(lf_model *m, lf_adapter *ad, lf_param *mag) {
    if (!mag || mag->ndim != 1 || mag->shape[0] != ad->B->shape[0]) {
        lf_set_error("DoRA magnitude for '%s': must be a vector of %lld values", ad->B->name, (long long)ad->B->shape[0]);
        return LF_ERR_ARG;
    }
    for (int i = 0; i < m->nparams; i++) /* the base weight must be float32: the norms read it */
        for (const lf_adapter *a = m->params[i]->adapters; a; a = a->next)
            if (a == ad && !m->params[i]->data) {
                lf_set_error("DoRA on '%s': the weight is not stored as float32", m->params[i]->name);
                return LF_ERR_ARG;
            }
    ad->magnitude = mag;
    mag->flags |= LF_PARAM_ADAPTER;
    m->adapter_gen++;
    m->fwd_valid = 0;
    return LF_OK;
}

lf_status lf_model_set_mask(lf_model *m, lf_param *p, const uint8_t *mask) {
    if (!mask) {
        free(p->mask);
        p->mask = NULL;
        p->flags &= ~LF_PARAM_MASKED;
        return LF_OK;
    }
    if (!p->data) {
        lf_set_error("mask: '%s' is not stored as float32", p->name);
        return LF_ERR_ARG;
    }
    if (!p->mask) {
        p->mask = malloc(p->numel);
        if (!p->mask) return LF_ERR_NOMEM;
    }
    memcpy(p->mask, mask, p->numel);
    p->flags |= LF_PARAM_MASKED;
    lf_mask_apply(p->data, p->mask, p->numel);
    m->fwd_valid = 0;
    return LF_OK;
}

void lf_model_apply_masks(lf_model *m) {
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i]->mask && m->params[i]->data) lf_mask_apply(m->params[i]->data, m->params[i]->mask, m->params[i]->numel);
}

lf_status lf_model_set_storage(lf_model *m, lf_param *p, const lf_storage_ops *ops, void *qdata, size_t qbytes) {
    if (!ops || !ops->forward || !ops->dequantize || !qdata) {
        lf_set_error("storage for '%s': the type needs forward and dequantize operations and data", p->name);
        return LF_ERR_ARG;
    }
    int embed_ok = p == m->wte && ops->lookup; /* lookups decode rows: the type must offer them */
    if (!(is_linear_weight(m, p) || embed_ok) || p->adapters || p->mask) {
        lf_set_error("storage for '%s': only a plain linear weight (no adapter, no mask) or, with a type that has "
                     "row lookups, the token embedding can change storage", p->name);
        return LF_ERR_ARG;
    }
    free(p->qdata);
    p->qops = ops;
    p->qdata = qdata;
    p->qbytes = qbytes;
    if (p->flags & LF_PARAM_EXTRA) lf_free(p->data);
    p->data = NULL;
    p->flags &= ~LF_PARAM_TRAINABLE;
    m->grads_planned = 0;
    m->fwd_valid = 0;
    return LF_OK;
}

void lf_param_hf_shape(const lf_param *p, int64_t shape[2]) {
    shape[0] = p->hf_transposed ? p->shape[1] : p->shape[0];
    shape[1] = p->hf_transposed ? p->shape[0] : p->shape[1];
}

void lf_param_to_hf(const lf_param *p, const float *src, float *dst) {
    if (!p->hf_transposed) {
        memcpy(dst, src, p->numel * sizeof(float));
        return;
    }
    size_t R = (size_t)p->shape[0], Cc = (size_t)p->shape[1];
    for (size_t r = 0; r < R; r++)
        for (size_t c = 0; c < Cc; c++) dst[c * R + r] = src[r * Cc + c];
}

void lf_param_from_hf(lf_param *p, const float *src) {
    if (!p->hf_transposed) {
        memcpy(p->data, src, p->numel * sizeof(float));
        return;
    }
    size_t R = (size_t)p->shape[0], Cc = (size_t)p->shape[1];
    for (size_t r = 0; r < R; r++)
        for (size_t c = 0; c < Cc; c++) p->data[r * Cc + c] = src[c * R + r];
}

void lf_model_init_weights(lf_model *m, uint64_t seed) {
    float std = m->cfg.init_std > 0 ? m->cfg.init_std : 0.02f;
    for (int i = 0; i < m->nbase; i++) {
        lf_param *p = &m->base[i];
        if (!p->data) continue;
        float s = std;
        /* residual projections: GPT-2's 1/sqrt(2L) scaling keeps the stream's variance flat */
        if (strstr(p->name, "c_proj.weight") || strstr(p->name, "o_proj.weight") ||
            strstr(p->name, "down_proj.weight"))
            s = std / sqrtf(2.0f * (float)m->cfg.n_layer);
        for (size_t j = 0; j < p->numel; j++) {
            switch (p->kind) {
            case LF_KIND_NORM: p->data[j] = 1.0f; break;
            case LF_KIND_BIAS: p->data[j] = 0.0f; break;
            default: p->data[j] = s * lf_randn(seed, (uint64_t)i, j); break;
            }
        }
        if (p->mask) lf_mask_apply(p->data, p->mask, p->numel);
    }
}

/* ---------------------------------------------------------------- gradients */

lf_status lf_model_set_trainable(lf_model *m, const char *prefix, int trainable, int *count) {
    int n = 0;
    size_t len = strlen(prefix);
    for (int i = 0; i < m->nparams; i++) {
        lf_param *p = m->params[i];
        if (strncmp(p->name, prefix, len) != 0) continue;
        if (trainable && p->qops) {
            lf_set_error("'%s' is stored as %s, which has no weight gradient: it cannot be trained", p->name, p->qops->name);
            return LF_ERR_ARG;
        }
        if (trainable) p->flags |= LF_PARAM_TRAINABLE;
        else p->flags &= ~LF_PARAM_TRAINABLE;
        n++;
    }
    if (count) *count = n;
    m->grads_planned = 0;
    if (n == 0) {
        lf_set_error("no parameter name starts with '%s' (names look like '%s')", prefix, m->params[0]->name);
        return LF_ERR_NOTFOUND;
    }
    return LF_OK;
}

lf_status lf_model_alloc_grads(lf_model *m) {
    if (m->grads_planned) return LF_OK;
    lf_free(m->grad_mem);
    m->grad_mem = NULL;
    size_t total = 0;
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i]->flags & LF_PARAM_TRAINABLE) total += (m->params[i]->numel + 15) & ~(size_t)15;
    if (total) {
        m->grad_mem = lf_alloc(total * sizeof(float));
        if (!m->grad_mem) return LF_ERR_NOMEM;
    }
    size_t off = 0;
    for (int i = 0; i < m->nparams; i++) {
        lf_param *p = m->params[i];
        p->grad = NULL;
        if (p->flags & LF_PARAM_TRAINABLE) {
            p->grad = m->grad_mem + off;
            off += (p->numel + 15) & ~(size_t)15;
        }
    }
    m->grads_planned = 1;
    return LF_OK;
}

void lf_model_zero_grad(lf_model *m) {
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i]->grad) memset(m->params[i]->grad, 0, m->params[i]->numel * sizeof(float));
}

/* ---------------------------------------------------------------- activations */

static void adapter_dims(const lf_model *m, size_t *rank, size_t *drop_in, size_t *dora_out) {
    *rank = *drop_in = *dora_out = 0;
    for (int i = 0; i < m->nparams; i++)
        for (const lf_adapter *a = m->params[i]->adapters; a; a = a->next) {
            if ((size_t)a->A->shape[0] > *rank) *rank = (size_t)a->A->shape[0];
            if (a->magnitude && (size_t)a->B->shape[0] > *dora_out) *dora_out = (size_t)a->B->shape[0];
            if (a->dropout > 0 && (size_t)a->A->shape[1] > *drop_in) *drop_in = (size_t)a->A->shape[1];
        }
}

lf_status lf_model_plan(lf_model *m, int B, int T, size_t rows) {
    if (m->act_mem && m->B == B && m->T == T && m->planned_threads == lf_num_threads() &&
        m->planned_fwd_only == m->fwd_only && m->planned_rows == (int)rows && m->planned_adapters == m->adapter_gen)
        return LF_OK;
    const lf_config *c = &m->cfg;
    size_t N = (size_t)B * T, C = c->d_model, L = c->n_layer, V = c->vocab_size, F = c->d_ff;
    size_t S = (size_t)(c->n_head + 2 * c->n_kv_head) * c->head_dim, A = (size_t)c->n_head * c->head_dim;
    size_t FW = c->arch == LF_ARCH_LLAMA ? 2 * F : F;
    size_t Ls = m->fwd_only ? 1 : L, bw = m->fwd_only ? 0 : 1, R, I, O;
    adapter_dims(m, &R, &I, &O);
    activations *a = &m->a;
    struct {
        float **ptr;
        size_t n;
    } table[] = {
        {&a->resid, (L + 1) * N * C}, {&a->mid, Ls * N * C},
        {&a->ln1, Ls * N * C}, {&a->ln1_mean, Ls * N}, {&a->ln1_rstd, Ls * N},
        {&a->qkv, Ls * N * S}, {&a->att, Ls * (size_t)B * c->n_head * T * T}, {&a->atty, Ls * N * A},
        {&a->ln2, Ls * N * C}, {&a->ln2_mean, Ls * N}, {&a->ln2_rstd, Ls * N},
        {&a->fc, Ls * N * FW}, {&a->fca, Ls * N * F},
        {&a->lnf, N * C}, {&a->lnf_mean, N}, {&a->lnf_rstd, N},
        {&a->logits, rows * V},
        {&a->branch, N * C}, {&a->dres, bw * N * C}, {&a->dbranch, bw * N * C}, {&a->dln, bw * N * C},
        {&a->dqkv, bw * N * S}, {&a->datty, bw * N * A}, {&a->dfc, bw * N * FW}, {&a->dfca, bw * N * F},
        {&a->ad_xa, N * R}, {&a->ad_dxa, bw * N * R}, {&a->ad_x, N * I},
        {&a->ad_y, N * O}, {&a->ad_norm, O},
        {&a->att_scratch, lf_attention_scratch_floats(T)},
    };
    size_t nt = sizeof table / sizeof table[0], total = 0;
    for (size_t i = 0; i < nt; i++) total += (table[i].n + 15) & ~(size_t)15;
    if (total > m->act_cap) {
        lf_free(m->act_mem);
        m->act_cap = 0;
        m->act_mem = lf_alloc(total * sizeof(float));
        if (!m->act_mem) {
            lf_set_error("out of memory: activations for B=%d T=%d need %.1f MiB", B, T, total * 4.0 / 1048576.0);
            return LF_ERR_NOMEM;
        }
        m->act_cap = total;
    }
    if (N > m->tok_cap) {
        free(m->inputs);
        m->tok_cap = 0;
        m->inputs = malloc(N * sizeof(int32_t));
        if (!m->inputs) return LF_ERR_NOMEM;
        m->tok_cap = N;
    }
    float *p = m->act_mem;
    for (size_t i = 0; i < nt; i++) {
        *table[i].ptr = table[i].n ? p : NULL;
        p += (table[i].n + 15) & ~(size_t)15;
    }
    m->B = B;
    m->T = T;
    m->planned_threads = lf_num_threads();
    m->planned_fwd_only = m->fwd_only;
    m->planned_rows = (int)rows;
    m->planned_adapters = m->adapter_gen;
    return LF_OK;
}

/* ---------------------------------------------------------------- forward / backward */

lf_dropout lf_model_site(const lf_model *m, float p, uint64_t stream) {
    lf_dropout d = {m->training ? p : 0.0f, m->drop_seed, stream};
    return d;
}
#define site lf_model_site
enum { SITE_EMBD = 0 };
#define SITE_ATTN(l) (1 + 3 * (uint64_t)(l))
#define SITE_RES_ATTN(l) (2 + 3 * (uint64_t)(l))
#define SITE_RES_MLP(l) (3 + 3 * (uint64_t)(l))

#define linear_fwd(...) lf_linear_run_forward(m, __VA_ARGS__)
#define linear_bwd(...) lf_linear_run_backward(m, __VA_ARGS__)

void lf_model_norm_row(const lf_model *m, float *out, const float *in, const lf_param *w, const lf_param *b) {
    float mean, rstd;
    if (m->cfg.arch == LF_ARCH_GPT2) lf_layernorm_forward(out, &mean, &rstd, in, w->data, b->data, 1, m->cfg.d_model, m->cfg.norm_eps);
    else lf_rmsnorm_forward(out, &rstd, in, w->data, 1, m->cfg.d_model, m->cfg.norm_eps);
}

float *lf_model_logits(lf_model *m, size_t *rows) {
    if (rows) *rows = m->fwd_valid ? m->logit_rows : 0;
    return m->fwd_valid && m->logit_rows ? m->a.logits : NULL;
}

const float *lf_model_hidden(const lf_model *m, int l) {
    if (!m->fwd_valid || l < 0 || l > m->cfg.n_layer) return NULL;
    return m->a.resid + (size_t)l * m->B * m->T * m->cfg.d_model;
}

float *lf_model_hidden_grad(lf_model *m, int l) {
    if (!m->fwd_valid || m->fwd_only || l < 0 || l > m->cfg.n_layer) {
        lf_set_error("hidden-state gradient: needs a training-mode forward first and a layer in 0..%d", m->cfg.n_layer);
        return NULL;
    }
    size_t NC = (size_t)m->B * m->T * m->cfg.d_model, need = (size_t)(m->cfg.n_layer + 1) * NC;
    if (need > m->dhid_cap) {
        lf_free(m->dhid);
        m->dhid = lf_alloc(need * sizeof(float));
        m->dhid_cap = m->dhid ? need : 0;
        if (!m->dhid) return NULL;
    } else if (!m->dhid_on) {
        memset(m->dhid, 0, need * sizeof(float));
    }
    m->dhid_on = 1;
    return m->dhid + (size_t)l * NC;
}

lf_status lf_model_forward(lf_model *m, const int32_t *inputs, int B, int T, lf_logits_mode mode) {
    const lf_config *c = &m->cfg;
    m->fwd_valid = 0;
    if (B <= 0 || T <= 0 || T > c->max_seq) {
        lf_set_error("forward: batch %dx%d invalid (T must be in 1..%d, the model's context length)", B, T, c->max_seq);
        return LF_ERR_ARG;
    }
    size_t N = (size_t)B * T;
    for (size_t i = 0; i < N; i++)
        if (inputs[i] < 0 || inputs[i] >= c->vocab_size) {
            lf_set_error("forward: token id %d at position %zu is outside the vocabulary (0..%d)", inputs[i], i, c->vocab_size - 1);
            return LF_ERR_ARG;
        }
    size_t rows = mode == LF_LOGITS_ALL ? N : mode == LF_LOGITS_LAST ? (size_t)B : 0;
    lf_status st = lf_model_plan(m, B, T, rows);
    if (st) return st;
    memcpy(m->inputs, inputs, N * sizeof(int32_t));
    m->logits_mode = mode;
    m->logit_rows = rows;

    activations *a = &m->a;
    int C = c->d_model, H = c->n_head, KVH = c->n_kv_head, hd = c->head_dim, F = c->d_ff, V = c->vocab_size;
    int S = (H + 2 * KVH) * hd, A = H * hd, FW = c->arch == LF_ARCH_LLAMA ? 2 * F : F;
    int gpt2 = c->arch == LF_ARCH_GPT2;

    if (m->wte->qops) { /* the embedding in a storage type: its rows decoded, then the positions added */
        m->wte->qops->lookup(m->wte, m->inputs, N, a->resid);
        if (gpt2)
#pragma omp parallel for schedule(static)
            for (size_t n = 0; n < N; n++)
                for (int j = 0; j < C; j++) a->resid[n * C + j] += m->wpe->data[(n % (size_t)T) * C + j];
    } else {
        lf_encoder_forward(a->resid, m->inputs, m->wte->data, gpt2 ? m->wpe->data : NULL, B, T, C);
    }
    lf_dropout_forward(a->resid, a->resid, N * C, site(m, c->dropout_embd, SITE_EMBD));
    for (int l = 0; l < c->n_layer; l++) {
        const layer_params *Lp = &m->layers[l];
        size_t ls = m->fwd_only ? 0 : (size_t)l; /* forward-only reuses one slot */
        float *x = a->resid + l * N * C, *mid = a->mid + ls * N * C, *xo = a->resid + (l + 1) * N * C;
        float *ln1 = a->ln1 + ls * N * C, *ln2 = a->ln2 + ls * N * C;
        float *qkv = a->qkv + ls * N * S, *att = a->att + ls * B * H * T * T, *atty = a->atty + ls * N * A;
        float *fc = a->fc + ls * N * FW, *fca = a->fca + ls * N * F;
        if (gpt2) lf_layernorm_forward(ln1, a->ln1_mean + ls * N, a->ln1_rstd + ls * N, x, Lp->ln1_w->data, Lp->ln1_b->data, N, C, c->norm_eps);
        else lf_rmsnorm_forward(ln1, a->ln1_rstd + ls * N, x, Lp->ln1_w->data, N, C, c->norm_eps);
        if (gpt2) {
            linear_fwd(qkv, S, ln1, C, Lp->qkv_w, Lp->qkv_b, N);
        } else {
            linear_fwd(qkv, S, ln1, C, Lp->q_w, NULL, N);
            linear_fwd(qkv + A, S, ln1, C, Lp->k_w, NULL, N);
            linear_fwd(qkv + A + KVH * hd, S, ln1, C, Lp->v_w, NULL, N);
            lf_rope_forward(qkv, m->rope_cos, m->rope_sin, B, T, H + KVH, hd, S);
        }
        lf_attention_forward(atty, att, qkv, a->att_scratch, B, T, H, KVH, hd, site(m, c->dropout_attn, SITE_ATTN(l)));
        linear_fwd(a->branch, C, atty, A, Lp->o_w, Lp->o_b, N);
        lf_residual_forward(mid, x, a->branch, N * C, site(m, c->dropout_resid, SITE_RES_ATTN(l)));
        if (gpt2) {
            lf_layernorm_forward(ln2, a->ln2_mean + ls * N, a->ln2_rstd + ls * N, mid, Lp->ln2_w->data, Lp->ln2_b->data, N, C, c->norm_eps);
            linear_fwd(fc, F, ln2, C, Lp->fc_w, Lp->fc_b, N);
            lf_gelu_forward(fca, fc, N * F);
        } else {
            lf_rmsnorm_forward(ln2, a->ln2_rstd + ls * N, mid, Lp->ln2_w->data, N, C, c->norm_eps);
            linear_fwd(fc, FW, ln2, C, Lp->gate_w, NULL, N);
            linear_fwd(fc + F, FW, ln2, C, Lp->up_w, NULL, N);
            lf_swiglu_forward(fca, fc, N, F);
        }
        linear_fwd(a->branch, C, fca, F, Lp->down_w, Lp->down_b, N);
        lf_residual_forward(xo, mid, a->branch, N * C, site(m, c->dropout_resid, SITE_RES_MLP(l)));
    }
    if (mode != LF_LOGITS_NONE) {
        float *xl = a->resid + (size_t)c->n_layer * N * C;
        if (gpt2) lf_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, xl, m->lnf_w->data, m->lnf_b->data, N, C, c->norm_eps);
        else lf_rmsnorm_forward(a->lnf, a->lnf_rstd, xl, m->lnf_w->data, N, C, c->norm_eps);
        if (mode == LF_LOGITS_ALL) linear_fwd(a->logits, V, a->lnf, C, m->head, NULL, N);
        else linear_fwd(a->logits, V, a->lnf + (size_t)(T - 1) * C, T * C, m->head, NULL, (size_t)B); /* rows T-1, 2T-1, ... */
    }
    m->dhid_on = 0; /* lf_model_hidden_grad zeroes the buffers when first asked after a forward */
    m->fwd_valid = 1;
    return LF_OK;
}

/* add a requested hidden-state gradient for layer l into dres */
static void add_dhidden(lf_model *m, float *dres, int l, size_t NC) {
    if (!m->dhid_on) return;
    const float *g = m->dhid + (size_t)l * NC;
    for (size_t i = 0; i < NC; i++) dres[i] += g[i];
}

lf_status lf_model_backward(lf_model *m) {
    if (!m->fwd_valid) {
        lf_set_error("backward: needs a forward pass first");
        return LF_ERR_ARG;
    }
    if (m->fwd_only) {
        lf_set_error("backward: the model is in forward-only mode (no backward buffers)");
        return LF_ERR_ARG;
    }
    lf_status st = lf_model_alloc_grads(m);
    if (st) return st;
    const lf_config *c = &m->cfg;
    activations *a = &m->a;
    int B = m->B, T = m->T;
    size_t N = (size_t)B * T;
    int C = c->d_model, H = c->n_head, KVH = c->n_kv_head, hd = c->head_dim, F = c->d_ff, V = c->vocab_size;
    int S = (H + 2 * KVH) * hd, A = H * hd, FW = c->arch == LF_ARCH_LLAMA ? 2 * F : F;
    int gpt2 = c->arch == LF_ARCH_GPT2;

    m->fwd_valid = 0; /* the logits were consumed as dlogits */
    float *dlogits = a->logits;
    float *xl = a->resid + (size_t)c->n_layer * N * C;
    memset(a->dres, 0, N * C * sizeof(float));
    if (m->logits_mode != LF_LOGITS_NONE) {
        if (m->logits_mode == LF_LOGITS_ALL) {
            linear_bwd(a->dln, C, 0, m->head, NULL, dlogits, V, a->lnf, N);
        } else { /* only the last position of each row has a gradient */
            memset(a->dln, 0, N * C * sizeof(float));
            linear_bwd(a->dln + (size_t)(T - 1) * C, T * C, 0, m->head, NULL, dlogits, V, a->lnf + (size_t)(T - 1) * C, (size_t)B);
        }
        if (gpt2) lf_layernorm_backward(a->dres, m->lnf_w->grad, m->lnf_b->grad, a->dln, xl, m->lnf_w->data, a->lnf_mean, a->lnf_rstd, N, C);
        else lf_rmsnorm_backward(a->dres, m->lnf_w->grad, a->dln, xl, m->lnf_w->data, a->lnf_rstd, N, C);
    }
    add_dhidden(m, a->dres, c->n_layer, N * C);

    for (int l = c->n_layer - 1; l >= 0; l--) {
        const layer_params *Lp = &m->layers[l];
        float *x = a->resid + l * N * C, *mid = a->mid + l * N * C;
        float *ln1 = a->ln1 + l * N * C, *ln2 = a->ln2 + l * N * C;
        float *qkv = a->qkv + l * N * S, *att = a->att + (size_t)l * B * H * T * T, *atty = a->atty + l * N * A;
        float *fc = a->fc + l * N * FW, *fca = a->fca + l * N * F;
        /* MLP branch: dres holds d(layer output) */
        lf_dropout_backward(a->dbranch, a->dres, N * C, site(m, c->dropout_resid, SITE_RES_MLP(l)));
        linear_bwd(a->dfca, F, 0, Lp->down_w, Lp->down_b, a->dbranch, C, fca, N);
        if (gpt2) {
            lf_gelu_backward(a->dfc, fc, a->dfca, N * F);
            linear_bwd(a->dln, C, 0, Lp->fc_w, Lp->fc_b, a->dfc, F, ln2, N);
            lf_layernorm_backward(a->dres, Lp->ln2_w->grad, Lp->ln2_b->grad, a->dln, mid, Lp->ln2_w->data, a->ln2_mean + l * N, a->ln2_rstd + l * N, N, C);
        } else {
            lf_swiglu_backward(a->dfc, a->dfca, fc, N, F);
            linear_bwd(a->dln, C, 0, Lp->gate_w, NULL, a->dfc, FW, ln2, N);
            linear_bwd(a->dln, C, 1, Lp->up_w, NULL, a->dfc + F, FW, ln2, N);
            lf_rmsnorm_backward(a->dres, Lp->ln2_w->grad, a->dln, mid, Lp->ln2_w->data, a->ln2_rstd + l * N, N, C);
        }
        /* attention branch: dres now holds d(mid) */
        lf_dropout_backward(a->dbranch, a->dres, N * C, site(m, c->dropout_resid, SITE_RES_ATTN(l)));
        linear_bwd(a->datty, A, 0, Lp->o_w, Lp->o_b, a->dbranch, C, atty, N);
        lf_attention_backward(a->dqkv, a->att_scratch, a->datty, qkv, att, B, T, H, KVH, hd, site(m, c->dropout_attn, SITE_ATTN(l)));
        if (gpt2) {
            linear_bwd(a->dln, C, 0, Lp->qkv_w, Lp->qkv_b, a->dqkv, S, ln1, N);
            lf_layernorm_backward(a->dres, Lp->ln1_w->grad, Lp->ln1_b->grad, a->dln, x, Lp->ln1_w->data, a->ln1_mean + l * N, a->ln1_rstd + l * N, N, C);
        } else {
            lf_rope_backward(a->dqkv, m->rope_cos, m->rope_sin, B, T, H + KVH, hd, S);
            linear_bwd(a->dln, C, 0, Lp->q_w, NULL, a->dqkv, S, ln1, N);
            linear_bwd(a->dln, C, 1, Lp->k_w, NULL, a->dqkv + A, S, ln1, N);
            linear_bwd(a->dln, C, 1, Lp->v_w, NULL, a->dqkv + A + KVH * hd, S, ln1, N);
            lf_rmsnorm_backward(a->dres, Lp->ln1_w->grad, a->dln, x, Lp->ln1_w->data, a->ln1_rstd + l * N, N, C);
        }
        add_dhidden(m, a->dres, l, N * C); /* dres now holds d(resid[l]) */
    }
    lf_dropout_backward(a->dres, a->dres, N * C, site(m, c->dropout_embd, SITE_EMBD));
    lf_encoder_backward(m->wte->grad, gpt2 ? m->wpe->grad : NULL, a->dres, m->inputs, B, T, C);
    return LF_OK;
}
