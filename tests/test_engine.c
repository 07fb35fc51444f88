/* The engine's seams, each with a test (docs/extending.md points here):
 * - loss terms: test-only terms (a linear probe on all logits, one on the last position's logits,
 *   one on a hidden state) summed with cross-entropy (smoothing, ignored targets, row weights),
 *   checked by finite differences through the whole model, with LoRA adapters (dropout on) on the
 *   one linear path; backward from dlogits alone and from a hidden state alone;
 * - masks: pruned weights get zero gradient and stay exactly zero through optimizer steps;
 * - taps: see every linear's input rows in training forwards and in decoding;
 * - storage types: a test-only type runs the linear path and saves dequantized;
 * - forward-only mode, last-position logits, decoding through adapters;
 * - the parameter table grows without moving tensors; the optimizer follows tensors added or
 *   unfrozen after it was made (with their own bias-correction count);
 * - the trainer: a test-only batch source, a hook that stops the run, and state that resumes
 *   bit for bit (adapter values included). */
#include "../src/data/data_internal.h" /* the shard writer, to make a shard with known documents */
#include "lmforge/ckpt.h"
#include "lmforge/data.h"
#include "lmforge/kernels.h"
#include "lmforge/loss.h"
#include "lmforge/train.h"
#include "testutil.h"

#include <unistd.h>

static lf_config cfg_small(lf_arch arch) {
    lf_config c;
    lf_config_defaults(&c, arch);
    c.vocab_size = 29;
    c.d_model = 16;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_kv_head = arch == LF_ARCH_LLAMA ? 2 : 4;
    c.head_dim = 4;
    c.d_ff = arch == LF_ARCH_LLAMA ? 24 : 64;
    c.max_seq = 16;
    c.tie_embeddings = 0;
    c.init_std = 0.3f;
    return c;
}

/* ---------------------------------------------------------------- test-only loss terms */

typedef struct {
    float *G;    /* fixed random weights */
    size_t n;
    int layer;   /* hidden term: which hidden state */
    size_t rows; /* logits rows seen in forward */
} probe;

static lf_status probe_fwd(lf_loss_term *t, lf_model *m, const lf_batch *b, const float *z, size_t rows, int V, double *v) {
    probe *p = t->ctx;
    LF_ASSERT(rows * (size_t)V <= p->n);
    double s = 0;
    for (size_t i = 0; i < rows * (size_t)V; i++) s += (double)p->G[i] * z[i];
    p->rows = rows;
    *v = s / (double)rows;
    return LF_OK;
}
static void probe_bwd(lf_loss_term *t, const lf_batch *b, const float *z, float *dz, size_t r0, size_t r1, int V, float scale,
                      int accum) {
    probe *p = t->ctx;
    for (size_t r = r0; r < r1; r++)
        for (int v = 0; v < V; v++) {
            float g = scale * p->G[r * (size_t)V + v] / (float)p->rows;
            dz[(r - r0) * (size_t)V + v] = accum ? dz[(r - r0) * (size_t)V + v] + g : g;
        }
}
static lf_status hidden_fwd(lf_loss_term *t, lf_model *m, const lf_batch *b, const float *z, size_t rows, int V, double *v) {
    probe *p = t->ctx;
    const float *h = lf_model_hidden(m, p->layer);
    size_t n = (size_t)b->B * b->T * lf_model_config(m)->d_model;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)p->G[i] * h[i] * h[i]; /* quadratic: the gradient depends on h */
    *v = s;
    return LF_OK;
}
static lf_status hidden_bwd(lf_loss_term *t, lf_model *m, const lf_batch *b, float scale) {
    probe *p = t->ctx;
    const float *h = lf_model_hidden(m, p->layer);
    float *g = lf_model_hidden_grad(m, p->layer);
    if (!g) return LF_ERR_NOMEM;
    size_t n = (size_t)b->B * b->T * lf_model_config(m)->d_model;
    for (size_t i = 0; i < n; i++) g[i] += scale * 2.0f * p->G[i] * h[i];
    return LF_OK;
}
static void probe_free(lf_loss_term *t) {
    probe *p = t->ctx;
    free(p->G);
    free(p);
    free(t);
}
static lf_loss_term *make_probe(const char *name, lf_logits_mode mode, int hidden_layer, size_t n, uint64_t seed, float w) {
    lf_loss_term *t = calloc(1, sizeof *t);
    probe *p = calloc(1, sizeof *p);
    p->G = tu_alloc(n);
    p->n = n;
    p->layer = hidden_layer;
    tu_fill(p->G, n, seed, 0.5f);
    if (hidden_layer >= 0) *t = (lf_loss_term){name, w, LF_LOGITS_NONE, p, hidden_fwd, NULL, hidden_bwd, probe_free};
    else *t = (lf_loss_term){name, w, mode, p, probe_fwd, probe_bwd, NULL, probe_free};
    return t;
}

/* ---------------------------------------------------------------- finite differences */

typedef struct {
    lf_model *m;
    lf_loss_term **terms;
    int n;
    lf_batch *b;
} obj_ctx;

static double objective(void *p) {
    obj_ctx *c = p;
    double total;
    LF_ASSERT(lf_loss_forward(c->m, c->terms, c->n, c->b, NULL, &total) == LF_OK);
    return total;
}

static lf_param *add_lora(lf_model *m, const char *wname, int r, float scale, float dropout, uint64_t seed) {
    lf_param *w = lf_model_find(m, wname), *A, *B;
    char n[200];
    LF_ASSERT(w);
    snprintf(n, sizeof n, "%s.lora_A", wname);
    LF_ASSERT(lf_model_add_param(m, n, r, w->shape[1], LF_KIND_OTHER, LF_PARAM_TRAINABLE, &A) == LF_OK);
    snprintf(n, sizeof n, "%s.lora_B", wname);
    LF_ASSERT(lf_model_add_param(m, n, w->shape[0], r, LF_KIND_OTHER, LF_PARAM_TRAINABLE, &B) == LF_OK);
    tu_fill(A->data, A->numel, seed, 0.3f);
    tu_fill(B->data, B->numel, seed + 1, 0.3f); /* non-zero B so that A's gradient is non-zero too */
    LF_ASSERT(lf_model_add_adapter(m, w, A, B, scale, dropout, NULL) == LF_OK);
    return A;
}

static void fd_terms(lf_arch arch, int mode_last) {
    const char *an = arch == LF_ARCH_GPT2 ? "gpt2" : "llama";
    lf_config cfg = cfg_small(arch);
    cfg.dropout_attn = cfg.dropout_resid = cfg.dropout_embd = 0.1f;
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK);
    lf_model_init_weights(m, 3);
    int gpt2 = arch == LF_ARCH_GPT2;
    add_lora(m, gpt2 ? "transformer.h.0.attn.c_attn.weight" : "model.layers.0.self_attn.q_proj.weight", 3, 0.7f, 0.2f, 10);
    add_lora(m, gpt2 ? "transformer.h.1.mlp.c_proj.weight" : "model.layers.1.mlp.down_proj.weight", 2, 1.5f, 0.0f, 20);
    lf_model_set_training(m, 1, 99);
    int B = 2, T = 7, V = cfg.vocab_size;
    size_t N = (size_t)B * T;
    lf_batch b;
    LF_ASSERT(lf_batch_alloc(&b, B, T) == LF_OK);
    for (size_t i = 0; i < N; i++) {
        b.inputs[i] = (int32_t)(lf_hash64(5, 0, i) % 29);
        b.targets[i] = (int32_t)(lf_hash64(5, 1, i) % 29);
    }
    b.targets[4] = -1;
    b.row_weight[1] = 2.5f;
    lf_loss_term *terms[3];
    int n = 0;
    if (!mode_last) {
        terms[n++] = lf_loss_ce_new(0.1f);
        terms[n++] = make_probe("probe_all", LF_LOGITS_ALL, -1, N * V, 7, 0.5f);
    } else {
        terms[n++] = make_probe("probe_last", LF_LOGITS_LAST, -1, (size_t)B * V, 8, 1.0f);
    }
    terms[n++] = make_probe("hidden", LF_LOGITS_NONE, 1, N * cfg.d_model, 9, 0.3f);
    obj_ctx c = {m, terms, n, &b};
    LF_ASSERT(lf_model_alloc_grads(m) == LF_OK);
    lf_model_zero_grad(m);
    objective(&c);
    LF_ASSERT(lf_loss_backward(m, terms, n, &b, 1.0f) == LF_OK);
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        float *g = tu_alloc(p->numel);
        memcpy(g, p->grad, p->numel * sizeof(float));
        char what[300];
        snprintf(what, sizeof what, "%s %s: %s", an, mode_last ? "last-position + hidden terms" : "CE + probe + hidden terms", p->name);
        tu_fd_check(what, p->data, g, p->numel, objective, &c, 3e-3f, 3e-4, 3e-2, 10);
        free(g);
    }
    for (int k = 0; k < n; k++) lf_loss_free(terms[k]);
    lf_batch_free(&b);
    lf_model_free(m);
}

/* ---------------------------------------------------------------- masks, taps, storage, modes */

typedef struct {
    int calls;
    size_t rows;
    double sumsq;
} tap_stats;

static void tap_fn(void *ctx, const lf_param *w, const float *inp, int ldi, size_t N, int IC) {
    tap_stats *s = ctx;
    s->calls++;
    s->rows += N;
    for (size_t n = 0; n < N; n++)
        for (int i = 0; i < IC; i++) s->sumsq += (double)inp[n * ldi + i] * inp[n * ldi + i];
}

static void f32copy_forward(float *out, int ldo, const float *inp, int ldi, const lf_param *w, const float *bias, size_t N) {
    lf_linear_forward_ref(out, ldo, inp, ldi, w->qdata, bias, N, (int)w->shape[1], (int)w->shape[0]);
}
static void f32copy_dequant(const lf_param *w, float *dst) { memcpy(dst, w->qdata, w->numel * sizeof(float)); }
static const lf_storage_ops f32copy = {"f32copy", f32copy_forward, NULL, f32copy_dequant, NULL}; /* no lookups */

static void test_modes(lf_arch arch) {
    const char *an = arch == LF_ARCH_GPT2 ? "gpt2" : "llama";
    lf_config cfg = cfg_small(arch);
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK);
    lf_model_init_weights(m, 5);
    int B = 2, T = 9, V = cfg.vocab_size;
    size_t N = (size_t)B * T;
    int32_t x[18];
    for (size_t i = 0; i < N; i++) x[i] = (int32_t)(lf_hash64(6, 0, i) % 29);
    LF_ASSERT(lf_model_forward(m, x, B, T, LF_LOGITS_ALL) == LF_OK);
    float *full = tu_alloc(N * V);
    memcpy(full, lf_model_logits(m, NULL), N * V * sizeof(float));
    size_t train_bytes = lf_model_activation_bytes(m);
    /* last-position logits are the rows T-1, 2T-1 of the full ones */
    size_t rows;
    LF_ASSERT(lf_model_forward(m, x, B, T, LF_LOGITS_LAST) == LF_OK);
    const float *last = lf_model_logits(m, &rows);
    double e = fmax(tu_rel_err(last, full + (size_t)(T - 1) * V, V), tu_rel_err(last + V, full + (size_t)(2 * T - 1) * V, V));
    CHECK(rows == 2 && e < 1e-6, "%s: last-position logits: %zu rows, rel err %.3g", an, rows, e);
    /* forward-only: same logits, less memory, no backward */
    lf_model_set_forward_only(m, 1);
    LF_ASSERT(lf_model_forward(m, x, B, T, LF_LOGITS_ALL) == LF_OK);
    e = tu_rel_err(lf_model_logits(m, NULL), full, N * V);
    size_t fo_bytes = lf_model_activation_bytes(m);
    CHECK(e == 0.0, "%s: forward-only logits differ from the training forward's by %.3g", an, e);
    CHECK(lf_model_backward(m) == LF_ERR_ARG, "%s: backward in forward-only mode must be refused", an);
    CHECK(lf_model_hidden(m, cfg.n_layer) != NULL, "%s: hidden states readable in forward-only mode", an);
    lf_model_free(m); /* a fresh model: the first plan was training-sized */
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK);
    lf_model_init_weights(m, 5);
    lf_model_set_forward_only(m, 1);
    LF_ASSERT(lf_model_forward(m, x, B, T, LF_LOGITS_ALL) == LF_OK);
    fo_bytes = lf_model_activation_bytes(m);
    printf("%s: activations for B=%d T=%d: training %zu bytes, forward-only %zu bytes\n", an, B, T, train_bytes, fo_bytes);
    CHECK(fo_bytes < train_bytes * 3 / 4, "%s: forward-only plan %zu bytes, training %zu", an, fo_bytes, train_bytes);
    lf_model_set_forward_only(m, 0);

    /* taps: every forward row, decoding included */
    lf_param *w = lf_model_find(m, arch == LF_ARCH_GPT2 ? "transformer.h.1.mlp.c_fc.weight" : "model.layers.1.mlp.up_proj.weight");
    tap_stats ts = {0};
    w->tap = tap_fn;
    w->tap_ctx = &ts;
    LF_ASSERT(lf_model_forward(m, x, B, T, LF_LOGITS_ALL) == LF_OK);
    CHECK(ts.calls == 1 && ts.rows == N && ts.sumsq > 0, "%s: tap saw %d calls, %zu rows", an, ts.calls, ts.rows);
    LF_ASSERT(lf_model_cache_init(m, 0) == LF_OK);
    float logits[29];
    LF_ASSERT(lf_model_decode(m, x, 3, logits) == LF_OK);
    CHECK(ts.calls == 4 && ts.rows == N + 3, "%s: tap in decoding: %d calls, %zu rows", an, ts.calls, ts.rows);
    w->tap = NULL;

    /* decoding through an adapter matches the batch forward */
    add_lora(m, arch == LF_ARCH_GPT2 ? "transformer.h.0.attn.c_proj.weight" : "model.layers.0.self_attn.v_proj.weight", 2, 0.5f, 0.3f, 30);
    LF_ASSERT(lf_model_forward(m, x, 1, T, LF_LOGITS_ALL) == LF_OK);
    memcpy(full, lf_model_logits(m, NULL), (size_t)T * V * sizeof(float));
    lf_model_cache_reset(m);
    LF_ASSERT(lf_model_decode(m, x, T, logits) == LF_OK);
    e = tu_rel_err(logits, full + (size_t)(T - 1) * V, V);
    CHECK(e < 1e-5, "%s: decode with an adapter vs forward: rel err %.3g", an, e);

    /* a storage type: the same numbers through its own kernel; saved dequantized */
    lf_param *q = lf_model_find(m, arch == LF_ARCH_GPT2 ? "transformer.h.1.mlp.c_proj.weight" : "model.layers.1.mlp.gate_proj.weight");
    float *copy = malloc(q->numel * sizeof(float));
    memcpy(copy, q->data, q->numel * sizeof(float));
    CHECK(lf_model_set_storage(m, q, &f32copy, copy, q->numel * sizeof(float)) == LF_OK, "%s: set storage: %s", an, lf_last_error());
    CHECK(q->data == NULL && !(q->flags & LF_PARAM_TRAINABLE), "%s: stored tensor must drop data and train no more", an);
    LF_ASSERT(lf_model_forward(m, x, 1, T, LF_LOGITS_ALL) == LF_OK);
    e = tu_rel_err(lf_model_logits(m, NULL), full, (size_t)T * V);
    CHECK(e < 1e-5, "%s: storage-type forward vs float32: rel err %.3g", an, e);
    CHECK(lf_model_set_trainable(m, q->name, 1, NULL) == LF_ERR_ARG, "%s: training a stored tensor must be refused", an);
    /* compaction frees the stored tensor's float32 slot and moves the others: same numbers */
    const float *before = lf_model_find(m, arch == LF_ARCH_GPT2 ? "transformer.ln_f.weight" : "model.norm.weight")->data;
    CHECK(lf_model_compact_weights(m) == LF_OK, "%s: compact: %s", an, lf_last_error());
    CHECK(lf_model_find(m, arch == LF_ARCH_GPT2 ? "transformer.ln_f.weight" : "model.norm.weight")->data != before,
          "%s: compaction must move the float32 tensors into a smaller block", an);
    LF_ASSERT(lf_model_forward(m, x, 1, T, LF_LOGITS_ALL) == LF_OK);
    e = tu_rel_err(lf_model_logits(m, NULL), full, (size_t)T * V);
    CHECK(e < 1e-5, "%s: forward after compaction vs float32: rel err %.3g", an, e);
    before = lf_model_find(m, arch == LF_ARCH_GPT2 ? "transformer.ln_f.weight" : "model.norm.weight")->data;
    CHECK(lf_model_compact_weights(m) == LF_OK, "%s: a second compaction (nothing to do) failed", an);
    CHECK(lf_model_find(m, arch == LF_ARCH_GPT2 ? "transformer.ln_f.weight" : "model.norm.weight")->data == before,
          "%s: a compaction with nothing to free must not move the weights", an);
    char dir[] = "/tmp/lf_engine_XXXXXX";
    LF_ASSERT(mkdtemp(dir));
    LF_ASSERT(lf_hf_save(m, dir) == LF_OK);
    lf_model *m2;
    LF_ASSERT(lf_hf_load(&m2, dir) == LF_OK);
    lf_param *q2 = lf_model_find(m2, q->name);
    CHECK(q2 && memcmp(q2->data, q->qdata, q->numel * sizeof(float)) == 0, "%s: stored tensor saved dequantized", an);
    CHECK(lf_model_num_params(m2) == lf_model_num_params(m) - 2, "%s: the adapter must not be saved in the model's files", an);
    lf_model_free(m2);
    lf_rm_rf(dir);
    free(full);
    lf_model_free(m);
}

/* masks and a growing table, and the optimizer following both */
static void test_table_and_optim(void) {
    lf_config cfg = cfg_small(LF_ARCH_LLAMA);
    cfg.init_std = 0.05f;
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK);
    lf_model_init_weights(m, 2);
    lf_param *wte = lf_model_find(m, "model.embed_tokens.weight");
    LF_ASSERT(lf_model_set_trainable(m, "model.layers.0.", 0, NULL) == LF_OK);
    lf_adamw_config oc;
    lf_adamw_defaults(&oc);
    lf_optim *o;
    LF_ASSERT(lf_optim_init(&o, m, &oc) == LF_OK);
    lf_param *up = lf_model_find(m, "model.layers.1.mlp.up_proj.weight");
    uint8_t *mask = malloc(up->numel);
    for (size_t i = 0; i < up->numel; i++) mask[i] = i % 3 != 0;
    LF_ASSERT(lf_model_set_mask(m, up, mask) == LF_OK);
    /* grow the table well past its first capacity; earlier pointers stay valid */
    lf_param *extra[40];
    for (int i = 0; i < 40; i++) {
        char n[64];
        snprintf(n, sizeof n, "test.extra.%d", i);
        LF_ASSERT(lf_model_add_param(m, n, 4, 0, LF_KIND_OTHER, 0, &extra[i]) == LF_OK);
    }
    CHECK(lf_model_find(m, "model.embed_tokens.weight") == wte && lf_model_find(m, "test.extra.39") == extra[39],
          "the table moved a tensor while growing");
    CHECK(lf_model_add_param(m, "test.extra.3", 4, 0, LF_KIND_OTHER, 0, NULL) == LF_ERR_ARG, "a duplicate name must be refused");
    CHECK(lf_model_remove_param(m, wte) == LF_ERR_ARG, "removing an architecture tensor must be refused");
    LF_ASSERT(lf_model_remove_param(m, extra[5]) == LF_OK);
    CHECK(lf_model_find(m, "test.extra.5") == NULL, "removed tensor still found");
    lf_param *head;
    LF_ASSERT(lf_model_add_param(m, "test.head", 3, cfg.d_model, LF_KIND_WEIGHT, LF_PARAM_TRAINABLE, &head) == LF_OK);
    lf_loss_term *ce = lf_loss_ce_new(0.0f);
    lf_batch b;
    LF_ASSERT(lf_batch_alloc(&b, 2, 8) == LF_OK);
    for (int i = 0; i < 16; i++) {
        b.inputs[i] = (int32_t)(lf_hash64(1, 2, (uint64_t)i) % 29);
        b.targets[i] = (int32_t)(lf_hash64(1, 3, (uint64_t)i) % 29);
    }
    for (int step = 0; step < 3; step++) {
        if (step == 1) LF_ASSERT(lf_model_set_trainable(m, "model.layers.0.", 1, NULL) == LF_OK); /* unfrozen after init */
        lf_model_zero_grad(m);
        LF_ASSERT(lf_loss_forward(m, &ce, 1, &b, NULL, NULL) == LF_OK);
        LF_ASSERT(lf_loss_backward(m, &ce, 1, &b, 1.0f) == LF_OK);
        for (size_t i = 0; i < up->numel; i += 3) CHECK(up->grad[i] == 0.0f, "pruned weight %zu has gradient %g", i, up->grad[i]);
        for (size_t i = 0; i < head->numel; i++) head->grad[i] = 0.01f * (float)(i + 1); /* the test head gets a gradient */
        LF_ASSERT(lf_optim_step(o, 1e-2f, NULL) == LF_OK);
    }
    int zeros = 1;
    for (size_t i = 0; i < up->numel; i += 3) zeros &= up->data[i] == 0.0f;
    CHECK(zeros, "pruned weights moved away from zero after optimizer steps");
    lf_param *q0 = lf_model_find(m, "model.layers.0.self_attn.q_proj.weight");
    CHECK(lf_optim_moment(o, q0, 0, 0) != NULL && lf_optim_param_t(o, q0) == 2 && lf_optim_t(o) == 3,
          "a tensor unfrozen after init: moments %p, its count %d (want 2), global %d (want 3)",
          (void *)lf_optim_moment(o, q0, 0, 0), lf_optim_param_t(o, q0), lf_optim_t(o));
    CHECK(lf_optim_moment(o, head, 1, 0) != NULL && head->data[0] != 0.0f, "a tensor added after the optimizer was not updated");
    LF_ASSERT(lf_model_remove_param(m, head) == LF_OK);
    LF_ASSERT(lf_optim_step(o, 1e-2f, NULL) == LF_OK); /* its moments are dropped, nothing dangles */
    free(mask);
    lf_batch_free(&b);
    lf_loss_free(ce);
    lf_optim_free(o);
    lf_model_free(m);
}

/* ---------------------------------------------------------------- the trainer */

typedef struct {
    uint64_t step;
} synth_src;

static lf_status synth_next(lf_batch_source *s, lf_batch *b) {
    synth_src *c = s->ctx;
    for (int i = 0; i < b->B * b->T; i++) { /* a learnable sequence: next = (cur * 5 + 1) mod 29, noisy starts */
        int t = i % b->T;
        int32_t v = t == 0 ? (int32_t)(lf_hash64(4, c->step, (uint64_t)i) % 29) : (b->inputs[i - 1] * 5 + 1) % 29;
        b->inputs[i] = v;
        b->targets[i] = (v * 5 + 1) % 29;
    }
    c->step++;
    return LF_OK;
}
static int synth_get(const lf_batch_source *s, uint64_t *w) {
    w[0] = ((synth_src *)s->ctx)->step;
    return 1;
}
static lf_status synth_set(lf_batch_source *s, const uint64_t *w, int n) {
    if (n != 1) return LF_ERR_FORMAT;
    ((synth_src *)s->ctx)->step = w[0];
    return LF_OK;
}

static lf_hook_action stop_at(lf_hook *h, lf_trainer *t, const lf_step_info *s) {
    return s->step >= *(int *)h->ctx ? LF_HOOK_STOP : LF_HOOK_CONTINUE;
}

static lf_model *trainer_model(void) {
    lf_config cfg = cfg_small(LF_ARCH_LLAMA);
    cfg.init_std = 0.05f;
    cfg.dropout_resid = 0.1f;
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK);
    lf_model_init_weights(m, 8);
    LF_ASSERT(lf_model_set_trainable(m, "", 0, NULL) == LF_OK);
    LF_ASSERT(lf_model_set_trainable(m, "model.layers.1.", 1, NULL) == LF_OK);
    add_lora(m, "model.layers.0.self_attn.q_proj.weight", 2, 1.0f, 0.1f, 40); /* LoRA-style: frozen base, adapter trains */
    return m;
}

static void test_trainer(void) {
    lf_trainer_opts o = {.ctx = {0, 11}, .B = 2, .T = 8, .grad_accum = 2};
    lf_adamw_defaults(&o.adamw);
    o.schedule = (lf_schedule){LF_SCHED_COSINE, 1e-2f, 1e-3f, 2, 12};
    /* uninterrupted: 12 steps */
    synth_src sa = {0};
    lf_batch_source src = {"synth", &sa, synth_next, synth_get, synth_set, NULL};
    lf_model *ma = trainer_model();
    lf_trainer *ta;
    LF_ASSERT(lf_trainer_init(&ta, ma, &src, &o) == LF_OK);
    LF_ASSERT(lf_trainer_add_loss(ta, lf_loss_ce_new(0.0f)) == LF_OK);
    float first = 0, last = 0;
    for (int i = 0; i < 12; i++) {
        lf_step_info s;
        LF_ASSERT(lf_trainer_step(ta, &s, NULL) == LF_OK);
        if (i == 0) first = s.loss;
        last = s.loss;
    }
    CHECK(last < first, "trainer: loss did not fall (%.4f -> %.4f)", first, last);
    /* 5 steps, a hook stops the run, state saved; a fresh process-like start resumes for 7 more */
    synth_src sb = {0};
    lf_batch_source srcb = {"synth", &sb, synth_next, synth_get, synth_set, NULL};
    lf_model *mb = trainer_model();
    lf_trainer *tb;
    LF_ASSERT(lf_trainer_init(&tb, mb, &srcb, &o) == LF_OK);
    LF_ASSERT(lf_trainer_add_loss(tb, lf_loss_ce_new(0.0f)) == LF_OK);
    int at = 5, stop = 0, steps = 0;
    lf_hook *h = calloc(1, sizeof *h);
    *h = (lf_hook){"stop_at", &at, stop_at, NULL, NULL};
    LF_ASSERT(lf_trainer_add_hook(tb, h) == LF_OK);
    while (!stop) {
        LF_ASSERT(lf_trainer_step(tb, NULL, &stop) == LF_OK);
        steps++;
    }
    CHECK(steps == 5, "a hook asked to stop after step 5; the run made %d steps", steps);
    char dir[] = "/tmp/lf_trainer_XXXXXX";
    LF_ASSERT(mkdtemp(dir));
    LF_ASSERT(lf_hf_save(mb, dir) == LF_OK);
    CHECK(lf_trainer_save_state(tb, dir, "{\"note\": \"mine\"}") == LF_OK, "save state: %s", lf_last_error());
    lf_trainer_free(tb);
    free(h);
    lf_model_free(mb);
    synth_src sc = {0};
    lf_batch_source srcc = {"synth", &sc, synth_next, synth_get, synth_set, NULL};
    lf_model *mc;
    LF_ASSERT(lf_hf_load(&mc, dir) == LF_OK);
    lf_config *cc = (lf_config *)lf_model_config(mc);
    cc->dropout_resid = 0.1f;
    LF_ASSERT(lf_model_set_trainable(mc, "", 0, NULL) == LF_OK);
    LF_ASSERT(lf_model_set_trainable(mc, "model.layers.1.", 1, NULL) == LF_OK);
    add_lora(mc, "model.layers.0.self_attn.q_proj.weight", 2, 1.0f, 0.1f, 77); /* values come from the state */
    lf_trainer *tc;
    LF_ASSERT(lf_trainer_init(&tc, mc, &srcc, &o) == LF_OK);
    LF_ASSERT(lf_trainer_add_loss(tc, lf_loss_ce_new(0.0f)) == LF_OK);
    char *extra = NULL;
    CHECK(lf_trainer_load_state(tc, dir, &extra) == LF_OK, "load state: %s", lf_last_error());
    CHECK(extra && strstr(extra, "\"mine\""), "the caller's members did not come back");
    free(extra);
    CHECK(lf_trainer_step_count(tc) == 5 && sc.step == 10, "resumed at step %d, source at %llu", lf_trainer_step_count(tc),
          (unsigned long long)sc.step);
    while (lf_trainer_step_count(tc) < 12) LF_ASSERT(lf_trainer_step(tc, NULL, NULL) == LF_OK);
    int same = 1;
    for (int i = 0; i < lf_model_num_params(ma); i++) {
        lf_param *pa = lf_model_param(ma, i), *pc = lf_model_find(mc, pa->name);
        if (!pc || memcmp(pa->data, pc->data, pa->numel * sizeof(float)) != 0) {
            same = 0;
            fprintf(stderr, "resume differs in %s\n", pa->name);
        }
    }
    CHECK(same, "paused-and-resumed training is not bit-identical to the uninterrupted run");
    /* damaged state is refused, not trusted */
    char p[256];
    snprintf(p, sizeof p, "%s/trainer_state.json", dir);
    const char *bad = "{\"step\": -3, \"optimizer_t\": 0, \"tokens_seen\": 0, \"source_state\": [0], \"optimizer_steps\": {}}";
    LF_ASSERT(lf_write_file_atomic(p, bad, strlen(bad)) == LF_OK);
    CHECK(lf_trainer_load_state(tc, dir, NULL) == LF_ERR_FORMAT && strstr(lf_last_error(), "step"),
          "a negative step must be refused (got: %s)", lf_last_error());
    lf_rm_rf(dir);
    lf_trainer_free(tc);
    lf_trainer_free(ta);
    lf_model_free(ma);
    lf_model_free(mc);
}

/* the shard loader as a batch source: windows kept inside one document, task ids, loss mask */
static void test_loader_source(void) {
    size_t lens[3] = {5, 12, 30};
    shard_builder sb = {0};
    size_t n = 5 + 12 + 30;
    sb.tokens = malloc(n * sizeof *sb.tokens);
    sb.doc_start = malloc(4 * sizeof *sb.doc_start);
    sb.mask = malloc(n);
    sb.tasks = malloc(3 * sizeof *sb.tasks);
    size_t k = 0;
    for (int d = 0; d < 3; d++) {
        sb.doc_start[d] = k;
        for (size_t i = 0; i < lens[d]; i++, k++) {
            sb.tokens[k] = (int32_t)(100 * d + (int)i);
            sb.mask[k] = !(d == 1 && i < 3); /* doc 1: a 3-token prompt without loss */
        }
        sb.tasks[d] = (uint16_t)(d + 1);
    }
    sb.doc_start[3] = k;
    sb.n = sb.cap = n;
    sb.n_docs = 3;
    sb.has_tasks = 1;
    char path[] = "/tmp/lf_engine_shard_XXXXXX";
    int fd = mkstemp(path);
    LF_ASSERT(fd >= 0);
    close(fd);
    LF_ASSERT(lf_shard_write(path, &sb, 0, 400) == LF_OK);
    lf_shard *s;
    LF_ASSERT(lf_shard_open(&s, path, 0) == LF_OK);
    CHECK(lf_shard_check_vocab(s, 200) == LF_ERR_FORMAT && lf_shard_check_vocab(s, 230) == LF_OK && strstr(lf_last_error(), "229"), "vocabulary check: %s", lf_last_error());
    lf_loader *l;
    LF_ASSERT(lf_loader_init(&l, s, 1, 8, 0, 1) == LF_OK);
    lf_loader_set_within_doc(l, 1);
    lf_batch_source *src;
    LF_ASSERT(lf_loader_source(&src, l, 1) == LF_OK);
    lf_batch b;
    LF_ASSERT(lf_batch_alloc(&b, 1, 8) == LF_OK);
    LF_ASSERT(src->next(src, &b) == LF_OK); /* doc 0: 5 tokens, then padding */
    int good = b.task[0] == 1 && b.inputs[4] == 4 && b.inputs[5] == 0 && b.targets[3] == 4 && b.targets[4] == -1 && b.targets[7] == -1;
    CHECK(good, "window in doc 0: task %d, inputs[4..5] %d %d, targets[3..4] %d %d", b.task[0], b.inputs[4], b.inputs[5], b.targets[3], b.targets[4]);
    LF_ASSERT(src->next(src, &b) == LF_OK); /* doc 1 from its start: the prompt carries no loss */
    good = b.task[0] == 2 && b.inputs[0] == 100 && b.targets[0] == -1 && b.targets[1] == -1 && b.targets[2] == 103;
    CHECK(good, "window in doc 1: task %d, inputs[0] %d, targets[0..2] %d %d %d", b.task[0], b.inputs[0], b.targets[0], b.targets[1], b.targets[2]);
    uint64_t w[LF_SOURCE_STATE_MAX], w2[LF_SOURCE_STATE_MAX];
    int nw = src->get_state(src, w);
    LF_ASSERT(src->next(src, &b) == LF_OK);
    int32_t first = b.inputs[0];
    LF_ASSERT(src->set_state(src, w, nw) == LF_OK);
    LF_ASSERT(src->next(src, &b) == LF_OK);
    CHECK(b.inputs[0] == first && src->get_state(src, w2) == nw, "source state did not restore the position");
    lf_batch_source_free(src);
    /* random windows: never across a document end */
    LF_ASSERT(lf_loader_init(&l, s, 4, 8, 5, 0) == LF_OK);
    lf_loader_set_within_doc(l, 1);
    LF_ASSERT(lf_loader_source(&src, l, 1) == LF_OK);
    lf_batch_free(&b);
    LF_ASSERT(lf_batch_alloc(&b, 4, 8) == LF_OK);
    int crossed = 0;
    for (int it = 0; it < 50; it++) {
        LF_ASSERT(src->next(src, &b) == LF_OK);
        for (int r = 0; r < 4; r++)
            for (int t = 0; t < 8; t++) {
                int32_t x = b.inputs[r * 8 + t], y = b.targets[r * 8 + t];
                if (y >= 0 && (y / 100 != b.inputs[r * 8] / 100 || y != x + 1 || b.task[r] != y / 100 + 1)) crossed++;
            }
    }
    CHECK(crossed == 0, "%d targets crossed a document boundary or carried the wrong task", crossed);
    lf_batch_source_free(src);
    lf_batch_free(&b);
    lf_shard_close(s);
    unlink(path);
    free(sb.tokens);
    free(sb.doc_start);
    free(sb.mask);
    free(sb.tasks);
}

int main(void) {
    test_loader_source();
    fd_terms(LF_ARCH_LLAMA, 0);
    fd_terms(LF_ARCH_GPT2, 0);
    fd_terms(LF_ARCH_LLAMA, 1);
    fd_terms(LF_ARCH_GPT2, 1);
    test_modes(LF_ARCH_LLAMA);
    test_modes(LF_ARCH_GPT2);
    test_table_and_optim();
    test_trainer();
    return tu_finish("test_engine");
}
