/* Structured pruning (issue 11): a model whose KV groups, query heads, neurons and layers are made
 * dead by zeroing their output weights gets exactly those structures chosen by both importance
 * scores, and the shrunk model computes the same logits (the shrink is exact); the Taylor and
 * activation scores against a plain reference (one full-batch gradient or forward, per-structure
 * sums written out index by index); the shrunk config saves and reloads; bad plans are refused. */
#include "lmforge/ckpt.h"
#include "lmforge/loss.h"
#include "lmforge/prune.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static lf_model *make_model(lf_arch arch, uint64_t seed) {
    lf_config c;
    lf_config_defaults(&c, arch);
    c.vocab_size = 37;
    c.d_model = 16;
    c.n_layer = 3;
    c.n_head = 4;
    c.n_kv_head = arch == LF_ARCH_LLAMA ? 2 : 4;
    c.head_dim = arch == LF_ARCH_LLAMA ? 8 : 4; /* Llama: n_head·head_dim (32) != d_model on purpose */
    c.d_ff = 24;
    c.max_seq = 16;
    c.tie_embeddings = 0;
    c.init_std = 0.3f;
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &c) == LF_OK);
    lf_model_init_weights(m, seed);
    /* biases and norms away from their init, so that they matter in the exactness checks */
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        if (p->kind == LF_KIND_BIAS || p->kind == LF_KIND_NORM)
            for (size_t j = 0; j < p->numel; j++) p->data[j] += 0.2f * lf_randn(seed + 7, (uint64_t)i, j);
    }
    lf_model_set_training(m, 0, 0);
    return m;
}

static lf_param *lp(lf_model *m, int l, const char *suffix) {
    char name[128];
    snprintf(name, sizeof name, lf_model_config(m)->arch == LF_ARCH_GPT2 ? "transformer.h.%d.%s" : "model.layers.%d.%s", l,
             suffix);
    lf_param *p = lf_model_find(m, name);
    LF_ASSERT(p != NULL);
    return p;
}

static void zero_cols(lf_param *p, int c0, int n) {
    for (int64_t r = 0; r < p->shape[0]; r++)
        for (int c = c0; c < c0 + n; c++) p->data[(size_t)r * p->shape[1] + c] = 0.0f;
}

static int32_t *tokens(int K, int T, uint64_t seed) {
    int32_t *t = malloc(sizeof(int32_t) * (size_t)K * T);
    for (size_t i = 0; i < (size_t)K * T; i++) t[i] = (int32_t)(lf_hash64(seed, 1, i) % 37);
    return t;
}

/* (B·T, V) logits of m on ids, copied */
static float *logits_of(lf_model *m, const int32_t *ids, int B, int T) {
    size_t rows;
    LF_ASSERT(lf_model_forward(m, ids, B, T, LF_LOGITS_ALL) == LF_OK);
    float *lg = lf_model_logits(m, &rows), *c = tu_alloc(rows * (size_t)lf_model_config(m)->vocab_size);
    memcpy(c, lg, sizeof(float) * rows * (size_t)lf_model_config(m)->vocab_size);
    return c;
}

static int contains(const int *v, int n, int x) {
    for (int i = 0; i < n; i++)
        if (v[i] == x) return 1;
    return 0;
}

/* Dead structures: Llama layer 0 loses KV group 1 (o_proj columns of heads 2, 3), layer 1 group 0,
 * layer 2 everything (o_proj and down_proj zero: the block is the identity); neurons {3,7,11} in
 * layer 0 and {0,5,23} in layer 1 (their down_proj columns). Query-head variant: heads {1,2} of
 * layer 0 and {0,3} of layer 1, one in each group. */
static void test_exact(lf_arch arch, int qheads, lf_importance imp) {
    lf_model *m = make_model(arch, 11);
    const lf_config *c = lf_model_config(m);
    int hd = c->head_dim, K = 6, T = 10;
    const char *o = arch == LF_ARCH_GPT2 ? "attn.c_proj.weight" : "self_attn.o_proj.weight";
    const char *down = arch == LF_ARCH_GPT2 ? "mlp.c_proj.weight" : "mlp.down_proj.weight";
    int dead_n[2][3] = {{3, 7, 11}, {0, 5, 23}};
    if (arch == LF_ARCH_LLAMA && !qheads) {
        zero_cols(lp(m, 0, o), 2 * hd, 2 * hd);
        zero_cols(lp(m, 1, o), 0, 2 * hd);
    } else if (arch == LF_ARCH_LLAMA) {
        zero_cols(lp(m, 0, o), 1 * hd, hd);
        zero_cols(lp(m, 0, o), 2 * hd, hd);
        zero_cols(lp(m, 1, o), 0, hd);
        zero_cols(lp(m, 1, o), 3 * hd, hd);
    }
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 3; k++) zero_cols(lp(m, l, down), dead_n[l][k], 1);
    zero_cols(lp(m, 2, o), 0, (int)lp(m, 2, o)->shape[1]);
    zero_cols(lp(m, 2, down), 0, c->d_ff);
    if (arch == LF_ARCH_GPT2) { /* the projections' biases too, for an identity block */
        memset(lp(m, 2, "attn.c_proj.bias")->data, 0, sizeof(float) * (size_t)c->d_model);
        memset(lp(m, 2, "mlp.c_proj.bias")->data, 0, sizeof(float) * (size_t)c->d_model);
    }
    int32_t *calib = tokens(K, T, 5), *ids = tokens(2, 12, 9);
    float *ref = logits_of(m, ids, 2, 12);
    lf_sprune_scores s;
    lf_sprune_plan p;
    lf_model *small = NULL;
    char what[96];
    snprintf(what, sizeof what, "%s %s%s", arch == LF_ARCH_GPT2 ? "gpt2" : "llama", lf_importance_name(imp),
             qheads ? " query heads" : "");
    LF_ASSERT(lf_sprune_score(m, imp, calib, K, T, 4, NULL, &s) == LF_OK);
    int rg = arch == LF_ARCH_LLAMA && !qheads, rq = arch == LF_ARCH_LLAMA && qheads;
    LF_ASSERT(lf_sprune_plan_make(m, &s, rg, rq, 3, 1, &p) == LF_OK);
    int ok = p.n_layer == 2 && p.layers[0] == 0 && p.layers[1] == 1;
    for (int l = 0; l < 2 && ok; l++) {
        for (int k = 0; k < 3; k++) ok &= !contains(p.neurons + (size_t)l * p.d_ff, p.d_ff, dead_n[l][k]);
        if (rg) ok &= p.n_kv_head == 1 && p.kv_heads[l] == (l == 0 ? 0 : 1) && p.n_head == 2;
        if (rq) {
            const int *h = p.heads + (size_t)l * p.n_head;
            ok &= p.n_head == 2 && p.n_kv_head == 2 && (l == 0 ? (h[0] == 0 && h[1] == 3) : (h[0] == 1 && h[1] == 2));
        }
    }
    CHECK(ok, "%s: the plan does not remove exactly the dead structures (layers %d: %d %d; d_ff %d; heads %d)", what, p.n_layer,
          p.layers[0], p.n_layer > 1 ? p.layers[1] : -1, p.d_ff, p.n_head);
    LF_ASSERT(lf_sprune_shrink(m, &p, &small) == LF_OK);
    const lf_config *sc = lf_model_config(small);
    float *got = logits_of(small, ids, 2, 12);
    size_t n = (size_t)2 * 12 * c->vocab_size;
    double e = tu_rel_err(got, ref, n);
    CHECK(e < 1e-5, "%s: shrunk model's logits differ from the dead-structure model's by rel %.3g", what, e);
    CHECK(lf_model_num_scalars(small) < lf_model_num_scalars(m) && sc->n_layer == 2 && sc->d_ff == c->d_ff - 3 &&
              sc->head_dim == c->head_dim,
          "%s: shrunk config %d layers, d_ff %d, head_dim %d, %zu of %zu parameters", what, sc->n_layer, sc->d_ff, sc->head_dim,
          lf_model_num_scalars(small), lf_model_num_scalars(m));
    /* incremental decoding of the smaller shapes (n_head·head_dim != d_model) agrees with the forward */
    float *dl = tu_alloc((size_t)c->vocab_size);
    LF_ASSERT(lf_model_cache_init(small, 0) == LF_OK);
    for (int t = 0; t < 12; t++) LF_ASSERT(lf_model_decode(small, ids + t, 1, dl) == LF_OK);
    double ed = tu_rel_err(dl, got + (size_t)11 * c->vocab_size, (size_t)c->vocab_size);
    CHECK(ed < 1e-5, "%s: decoding the shrunk model differs from its forward by rel %.3g", what, ed);
    free(dl);
    printf("  %s: %d->%d layers, %d->%d heads, d_ff %d->%d, logits rel err %.2g\n", what, c->n_layer, sc->n_layer, c->n_head,
           sc->n_head, c->d_ff, sc->d_ff, e);
    /* the written config reloads to the same model */
    char dir[] = "/tmp/lf_sprune_XXXXXX";
    LF_ASSERT(mkdtemp(dir) != NULL);
    LF_ASSERT(lf_hf_save(small, dir) == LF_OK);
    lf_model *back;
    lf_status st = lf_model_load(&back, dir);
    CHECK(st == LF_OK, "%s: the shrunk folder does not reload: %s", what, lf_last_error());
    if (!st) {
        const lf_config *bc = lf_model_config(back);
        CHECK(bc->n_layer == sc->n_layer && bc->n_head == sc->n_head && bc->n_kv_head == sc->n_kv_head && bc->head_dim == sc->head_dim &&
                  bc->d_ff == sc->d_ff && bc->d_model == sc->d_model,
              "%s: reloaded config %d layers %d/%d heads of %d, d_ff %d", what, bc->n_layer, bc->n_head, bc->n_kv_head, bc->head_dim,
              bc->d_ff);
        float *g2 = logits_of(back, ids, 2, 12);
        double e2 = tu_rel_err(g2, got, n);
        CHECK(e2 == 0.0, "%s: reloaded logits differ by rel %.3g", what, e2);
        free(g2);
        lf_model_free(back);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "note: could not remove %s\n", dir);
    free(got);
    free(ref);
    free(calib);
    free(ids);
    lf_sprune_scores_free(&s);
    lf_sprune_plan_free(&p);
    lf_model_free(small);
    lf_model_free(m);
}

/* ---- scores against a plain reference */

static double rel(const double *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* Σ over the weights w (·, IC) of e(r, c) = |w·g| (Taylor) for rows r0..r1, columns c0..c1 */
static double box(const lf_param *p, const float *e, int r0, int r1, int c0, int c1) {
    double s = 0;
    int64_t IC = p->ndim == 2 ? p->shape[1] : 1;
    for (int r = r0; r < r1; r++)
        for (int c = c0; c < c1; c++) s += e[(size_t)r * IC + c];
    return s;
}

typedef struct {
    double *sq[8];
    const lf_param *w[8];
    int n;
} ref_tap;

static void ref_tap_fn(void *ctx, const lf_param *w, const float *inp, int ldi, size_t N, int IC) {
    ref_tap *t = ctx;
    int k = 0;
    while (t->w[k] != w) k++;
    for (size_t i = 0; i < N; i++)
        for (int j = 0; j < IC; j++) t->sq[k][j] += (double)inp[i * (size_t)ldi + j] * inp[i * (size_t)ldi + j];
}

static void test_scores(lf_importance imp) {
    lf_model *m = make_model(LF_ARCH_LLAMA, 21);
    const lf_config *c = lf_model_config(m);
    int K = 5, T = 9, L = c->n_layer, H = c->n_head, KVH = c->n_kv_head, hd = c->head_dim, F = c->d_ff, C = c->d_model;
    int32_t *calib = tokens(K, T, 3);
    lf_sprune_scores s;
    LF_ASSERT(lf_sprune_score(m, imp, calib, K, T, 2, NULL, &s) == LF_OK); /* batches of 2, 2, 1 */
    double *g = calloc((size_t)L * KVH, sizeof(double)), *h = calloc((size_t)L * H, sizeof(double));
    double *nn = calloc((size_t)L * F, sizeof(double)), *ly = calloc((size_t)L, sizeof(double));
    const char *names[9] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                            "mlp.gate_proj.weight",    "mlp.up_proj.weight",      "mlp.down_proj.weight",    "input_layernorm.weight",
                            "post_attention_layernorm.weight"};
    if (imp == LF_IMPORTANCE_TAYLOR) {
        /* one batch of all K rows, the gradient of its mean loss */
        lf_batch b;
        LF_ASSERT(lf_batch_alloc(&b, K, T - 1) == LF_OK);
        for (int r = 0; r < K; r++)
            for (int t = 0; t < T - 1; t++) {
                b.inputs[r * (T - 1) + t] = calib[r * T + t];
                b.targets[r * (T - 1) + t] = calib[r * T + t + 1];
            }
        lf_loss_term *ce = lf_loss_ce_new(0.0f);
        lf_model_zero_grad(m);
        LF_ASSERT(lf_loss_forward(m, &ce, 1, &b, NULL, NULL) == LF_OK);
        LF_ASSERT(lf_loss_backward(m, &ce, 1, &b, 1.0f) == LF_OK);
        for (int l = 0; l < L; l++) {
            float *e[9];
            lf_param *p[9];
            for (int k = 0; k < 9; k++) {
                p[k] = lp(m, l, names[k]);
                e[k] = tu_alloc(p[k]->numel);
                for (size_t j = 0; j < p[k]->numel; j++) e[k][j] = fabsf(p[k]->data[j] * p[k]->grad[j]);
                ly[l] += box(p[k], e[k], 0, (int)p[k]->shape[0], 0, p[k]->ndim == 2 ? (int)p[k]->shape[1] : 1);
            }
            for (int hh = 0; hh < H; hh++) {
                h[l * H + hh] = box(p[0], e[0], hh * hd, (hh + 1) * hd, 0, C) + box(p[3], e[3], 0, C, hh * hd, (hh + 1) * hd);
                g[l * KVH + hh / (H / KVH)] += h[l * H + hh];
            }
            for (int kv = 0; kv < KVH; kv++)
                g[l * KVH + kv] += box(p[1], e[1], kv * hd, (kv + 1) * hd, 0, C) + box(p[2], e[2], kv * hd, (kv + 1) * hd, 0, C);
            for (int j = 0; j < F; j++)
                nn[l * F + j] = box(p[4], e[4], j, j + 1, 0, C) + box(p[5], e[5], j, j + 1, 0, C) + box(p[6], e[6], 0, C, j, j + 1);
            for (int k = 0; k < 9; k++) free(e[k]);
        }
        lf_model_zero_grad(m);
        lf_loss_free(ce);
        lf_batch_free(&b);
    } else {
        ref_tap t = {0};
        for (int l = 0; l < L; l++)
            for (int k = 0; k < 2; k++) {
                lf_param *p = lp(m, l, k ? "mlp.down_proj.weight" : "self_attn.o_proj.weight");
                t.w[t.n] = p;
                t.sq[t.n++] = calloc((size_t)p->shape[1], sizeof(double));
                p->tap = ref_tap_fn;
                p->tap_ctx = &t;
            }
        LF_ASSERT(lf_model_forward(m, calib, K, T, LF_LOGITS_NONE) == LF_OK);
        for (int l = 0; l < L; l++) {
            const float *a = lf_model_hidden(m, l), *b = lf_model_hidden(m, l + 1);
            for (int r = 0; r < K * T; r++) {
                double ab = 0, aa = 0, bb = 0;
                for (int j = 0; j < C; j++) {
                    ab += (double)a[r * C + j] * b[r * C + j];
                    aa += (double)a[r * C + j] * a[r * C + j];
                    bb += (double)b[r * C + j] * b[r * C + j];
                }
                ly[l] += 1 - ab / sqrt(aa * bb);
            }
            lf_param *o = (lf_param *)t.w[2 * l], *d = (lf_param *)t.w[2 * l + 1];
            for (int col = 0; col < H * hd; col++)
                for (int r = 0; r < C; r++) h[l * H + col / hd] += fabs(o->data[r * H * hd + col]) * sqrt(t.sq[2 * l][col]);
            for (int hh = 0; hh < H; hh++) g[l * KVH + hh / (H / KVH)] += h[l * H + hh];
            for (int j = 0; j < F; j++)
                for (int r = 0; r < C; r++) nn[l * F + j] += fabs(d->data[r * F + j]) * sqrt(t.sq[2 * l + 1][j]);
            o->tap = d->tap = NULL;
        }
        for (int k = 0; k < t.n; k++) free(t.sq[k]);
    }
    double eg = rel(s.group, g, (size_t)L * KVH), eh = rel(s.head, h, (size_t)L * H), en = rel(s.neuron, nn, (size_t)L * F),
           el = rel(s.layer, ly, (size_t)L);
    double mx = fmax(fmax(eg, eh), fmax(en, el));
    CHECK(mx < 1e-4, "%s scores against the plain reference: rel err groups %.3g, heads %.3g, neurons %.3g, layers %.3g",
          lf_importance_name(imp), eg, eh, en, el);
    int nz = 1;
    for (int i = 0; i < L * F; i++) nz &= s.neuron[i] > 0;
    CHECK(nz, "%s: a neuron of a random model scored zero", lf_importance_name(imp));
    printf("  %s scores vs reference: max rel err %.2g\n", lf_importance_name(imp), mx);
    /* the model is left as it was: no gradients, the same outputs */
    int grads = 0;
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        for (size_t j = 0; p->grad && j < p->numel; j++) grads += p->grad[j] != 0.0f;
        CHECK(!p->tap, "%s: a tap is left on %s", lf_importance_name(imp), p->name);
    }
    CHECK(!grads, "%s: %d gradient entries left non-zero after scoring", lf_importance_name(imp), grads);
    free(g);
    free(h);
    free(nn);
    free(ly);
    free(calib);
    lf_sprune_scores_free(&s);
    lf_model_free(m);
}

static void test_refused(void) {
    lf_model *m = make_model(LF_ARCH_LLAMA, 3), *g2 = make_model(LF_ARCH_GPT2, 3);
    int32_t *calib = tokens(2, 6, 1);
    lf_sprune_scores s, s2;
    lf_sprune_plan p;
    LF_ASSERT(lf_sprune_score(m, LF_IMPORTANCE_ACT, calib, 2, 6, 2, NULL, &s) == LF_OK);
    LF_ASSERT(lf_sprune_score(g2, LF_IMPORTANCE_ACT, calib, 2, 6, 2, NULL, &s2) == LF_OK);
    CHECK(lf_sprune_plan_make(m, &s, 2, 0, 0, 0, &p) == LF_ERR_ARG, "removing every KV group must be refused");
    CHECK(lf_sprune_plan_make(m, &s, 0, 0, 24, 0, &p) == LF_ERR_ARG, "removing every neuron must be refused");
    CHECK(lf_sprune_plan_make(m, &s, 0, 0, 0, 3, &p) == LF_ERR_ARG, "removing every layer must be refused");
    CHECK(lf_sprune_plan_make(g2, &s2, 1, 0, 0, 0, &p) == LF_ERR_ARG && strstr(lf_last_error(), "GPT-2"),
          "GPT-2 head removal must be refused with a reason: %s", lf_last_error());
    CHECK(lf_sprune_plan_make(g2, &s, 0, 0, 1, 0, &p) == LF_ERR_ARG, "scores of another model must be refused");
    lf_sprune_scores s3;
    CHECK(lf_sprune_score(m, LF_IMPORTANCE_TAYLOR, NULL, 0, 6, 2, NULL, &s3) == LF_ERR_ARG, "scoring without calibration must be refused");
    lf_importance imp;
    CHECK(lf_importance_parse("fisher", &imp) == LF_ERR_ARG && strstr(lf_last_error(), "taylor"), "unknown importance: %s",
          lf_last_error());
    lf_sprune_scores_free(&s);
    lf_sprune_scores_free(&s2);
    free(calib);
    lf_model_free(m);
    lf_model_free(g2);
}

int main(void) {
    for (int imp = 0; imp < 2; imp++) {
        test_exact(LF_ARCH_LLAMA, 0, (lf_importance)imp);
        test_exact(LF_ARCH_LLAMA, 1, (lf_importance)imp);
        test_exact(LF_ARCH_GPT2, 0, (lf_importance)imp);
        test_scores((lf_importance)imp);
    }
    test_refused();
    return tu_finish("test_prune_struct");
}
