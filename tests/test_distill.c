/* Distillation (src/tech/distill.c): the logit term (kl, rkl, jsd) and the hidden-state term (mse,
 * cosine, with and without a projection) against the double-precision reference kernels, the
 * reference against its own finite differences, JSD's two ends, finite differences of whole
 * objectives (cross-entropy + logit + hidden terms) through the student, the frozen forward-only
 * teacher, DistilBERT's every-k-th-layer student, and the argument checks.
 * `test_distill --export DIR` writes logits, hidden states and the terms' values and gradients for
 * tests/distill_test.py, which recomputes them with PyTorch's formulas. */
#include "lmforge/distill.h"
#include "lmforge/loss.h"
#include "testutil.h"
#include "../src/kernels/vmath.h"

#include <stdio.h>
#include <stdlib.h>

static lf_config cfg_of(lf_arch arch, int d_model, int n_layer) {
    lf_config c;
    lf_config_defaults(&c, arch);
    c.vocab_size = 29;
    c.d_model = d_model;
    c.n_layer = n_layer;
    c.n_head = 4;
    c.n_kv_head = arch == LF_ARCH_LLAMA ? 2 : 4;
    c.head_dim = d_model / 4;
    c.d_ff = 2 * d_model;
    c.max_seq = 16;
    c.tie_embeddings = arch == LF_ARCH_LLAMA;
    c.init_std = 0.3f; /* peaked distributions: the terms are far from zero */
    return c;
}

static lf_model *new_model(lf_arch arch, int d_model, int n_layer, uint64_t seed) {
    lf_config c = cfg_of(arch, d_model, n_layer);
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &c) == LF_OK);
    lf_model_init_weights(m, seed);
    return m;
}

static void make_batch(lf_batch *b, int B, int T, uint64_t seed) {
    LF_ASSERT(lf_batch_alloc(b, B, T) == LF_OK);
    for (size_t i = 0; i < (size_t)B * T; i++) {
        b->inputs[i] = (int32_t)(lf_hash64(seed, 0, i) % 29);
        b->targets[i] = (int32_t)(lf_hash64(seed, 1, i) % 29);
    }
    b->targets[3] = -1; /* the loss mask: no term may look at these positions */
    b->targets[(size_t)B * T - 2] = -1;
    b->row_weight[1] = 2.5f;
}

static float *copy_logits(lf_model *m, const lf_batch *b) {
    LF_ASSERT(lf_model_forward(m, b->inputs, b->B, b->T, LF_LOGITS_ALL) == LF_OK);
    size_t rows;
    const float *z = lf_model_logits(m, &rows);
    size_t n = rows * (size_t)lf_model_config(m)->vocab_size;
    float *c = tu_alloc(n);
    memcpy(c, z, n * sizeof(float));
    return c;
}

static const char *kind_name(lf_distill_kind k) { return k == LF_DISTILL_KL ? "kl" : k == LF_DISTILL_RKL ? "rkl" : "jsd"; }

/* ---------------------------------------------------------------- logit term vs the reference */

static void test_logit_vs_ref(lf_arch arch, lf_distill_kind kind, float tau, float beta) {
    char what[120];
    snprintf(what, sizeof what, "%s %s τ=%g β=%g", arch == LF_ARCH_GPT2 ? "gpt2" : "llama", kind_name(kind), tau, beta);
    lf_model *t = new_model(arch, 24, 3, 1), *s = new_model(arch, 16, 2, 2);
    lf_distill_opts o;
    lf_distill_opts_default(&o);
    o.kind = kind;
    o.temperature = tau;
    o.beta = beta;
    lf_distill *d;
    LF_ASSERT(lf_distill_from_model(&d, t, &o) == LF_OK);
    lf_batch b;
    make_batch(&b, 2, 7, 11);
    int V = 29, BT = 14;
    float *zt = copy_logits(t, &b), *zs = copy_logits(s, &b);
    lf_loss_term *term = lf_distill_logit_term(d, 1.0f);
    double val;
    LF_ASSERT(lf_loss_forward(s, &term, 1, &b, &val, NULL) == LF_OK);
    double ref = 0;
    size_t cnt = 0;
    double *dz = calloc((size_t)BT * V, sizeof(double));
    for (int r = 0; r < BT; r++)
        if (b.targets[r] >= 0) cnt++;
    for (int r = 0; r < BT; r++) {
        if (b.targets[r] < 0) continue;
        double w = b.row_weight[r / 7];
        ref += w * lf_distill_row_ref(kind, zs + (size_t)r * V, zt + (size_t)r * V, V, tau, beta, dz + (size_t)r * V);
        for (int v = 0; v < V; v++) dz[(size_t)r * V + v] *= w / cnt;
    }
    ref /= cnt;
    CHECK(ref > 1e-3, "%s: the reference value %.3g is too small to test anything", what, ref);
    CHECK(fabs(val - ref) <= 1e-5 * fmax(1.0, fabs(ref)), "%s: term value %.8g, reference %.8g (diff %.3g)", what, val, ref, val - ref);
    /* gradient: written, then added onto ones; masked rows exactly zero */
    float *dl = tu_alloc((size_t)BT * V), *dl2 = tu_alloc((size_t)BT * V), *refz = tu_alloc((size_t)BT * V);
    for (size_t i = 0; i < (size_t)BT * V; i++) dl2[i] = 1.0f, refz[i] = (float)dz[i];
    term->backward_rows(term, &b, zs, dl, 0, (size_t)BT, V, 1.0f, 0);
    term->backward_rows(term, &b, zs, dl2, 0, (size_t)BT, V, 1.0f, 1);
    double e = tu_rel_err(dl, refz, (size_t)BT * V), zmax = 0, gmax = 0, acc = 0;
    for (size_t i = 0; i < (size_t)BT * V; i++) {
        acc = fmax(acc, fabs(dl2[i] - 1.0f - dl[i]));
        gmax = fmax(gmax, fabs(refz[i]));
        if (b.targets[i / V] < 0) zmax = fmax(zmax, fabs(dl[i]));
    }
    CHECK(e <= 1e-6 && gmax > 1e-3, "%s: gradient vs reference: max error %.3g (largest component %.3g)", what, e, gmax);
    CHECK(acc <= 1e-6, "%s: accumulated gradient differs from the written one by %.3g", what, acc);
    CHECK(zmax == 0.0, "%s: gradient on masked rows %.3g (must be 0)", what, zmax);
    printf("%-28s value %.6f (ref %.6f), gradient max error %.2e\n", what, val, ref, e);
    /* the reference against its own central differences (double precision) */
    double worst = 0;
    float zp[29];
    for (int v = 0; v < V; v += 3) {
        double dd[29];
        memcpy(zp, zs, sizeof zp);
        lf_distill_row_ref(kind, zp, zt, V, tau, beta, dd);
        float keep = zp[v], h = 1e-2f;
        zp[v] = keep + h;
        double lp = lf_distill_row_ref(kind, zp, zt, V, tau, beta, NULL);
        zp[v] = keep - h;
        double lm = lf_distill_row_ref(kind, zp, zt, V, tau, beta, NULL);
        double num = (lp - lm) / ((double)(keep + h) - (double)(keep - h));
        worst = fmax(worst, fabs(num - dd[v]) / (1e-4 + 1e-3 * fabs(dd[v])));
    }
    CHECK(worst <= 1.0, "%s: reference gradient vs its finite differences: %.2fx the tolerance", what, worst);
    lf_loss_free(term);
    lf_distill_free(d);
    lf_model_free(s);
    lf_batch_free(&b);
    free(zt), free(zs), free(dz), free(dl), free(dl2), free(refz);
}

/* ---------------------------------------------------------------- the vectorizable log */

static void test_vlogf(void) {
    double worst = 0, at = 0;
    for (int i = 0; i <= 200000; i++) { /* log-spaced over [FLT_MIN, 1e4], and 1 ± small */
        float x = (float)exp(-87.3 + (87.3 + 9.3) * i / 200000.0);
        double e = fabs((double)lf_vlogf(x) - log((double)x)) / fmax(fabs(log((double)x)), 1e-3);
        if (e > worst) worst = e, at = x;
    }
    for (int i = -1000; i <= 1000; i++) {
        float x = 1.0f + i * 1e-6f;
        double e = fabs((double)lf_vlogf(x) - log((double)x));
        if (e > 1e-7 * fmax(fabs(log((double)x)), 1e-6) + 1e-9 && e > worst * 1e-6) worst = fmax(worst, e / 1e-6), at = x;
    }
    CHECK(worst <= 5e-7, "lf_vlogf: relative error %.3g at x = %.9g", worst, at);
    CHECK(lf_vlogf(0.0f) < -87.0f && lf_vlogf(1e-45f) < -87.0f, "lf_vlogf below FLT_MIN: %g", lf_vlogf(0.0f));
    printf("lf_vlogf: worst relative error %.2e (x = %.3g)\n", worst, at);
}

/* ---------------------------------------------------------------- JSD's ends */

static void test_jsd_ends(void) {
    int V = 29;
    float zs[29], zt[29];
    tu_fill(zs, V, 3, 2.0f);
    tu_fill(zt, V, 4, 2.0f);
    for (int ti = 0; ti < 2; ti++) {
        float tau = ti ? 2.0f : 1.0f;
        double kl = lf_distill_row_ref(LF_DISTILL_KL, zs, zt, V, tau, 0, NULL);
        double rkl = lf_distill_row_ref(LF_DISTILL_RKL, zs, zt, V, tau, 0, NULL);
        double j0 = lf_distill_row_ref(LF_DISTILL_JSD, zs, zt, V, tau, 0.0f, NULL);
        double j1 = lf_distill_row_ref(LF_DISTILL_JSD, zs, zt, V, tau, 1.0f, NULL);
        /* the mixture formula itself tends to β·KL(p‖q) and (1-β)·KL(q‖p) at its ends */
        float eps = 1e-5f;
        double jl = lf_distill_row_ref(LF_DISTILL_JSD, zs, zt, V, tau, eps, NULL) / eps;
        double jh = lf_distill_row_ref(LF_DISTILL_JSD, zs, zt, V, tau, 1.0f - eps, NULL) / (double)(1.0f - (1.0f - eps));
        CHECK(j0 == kl && j1 == rkl, "τ=%g: jsd at β=0 %.8g vs kl %.8g, at β=1 %.8g vs rkl %.8g", tau, j0, kl, j1, rkl);
        CHECK(fabs(jl - kl) <= 1e-3 * kl, "τ=%g: jsd(β=1e-5)/β = %.8g, forward KL %.8g (rel %.2g)", tau, jl, kl, fabs(jl - kl) / kl);
        CHECK(fabs(jh - rkl) <= 1e-3 * rkl, "τ=%g: jsd(β=1-1e-5)/(1-β) = %.8g, reverse KL %.8g (rel %.2g)", tau, jh, rkl, fabs(jh - rkl) / rkl);
        CHECK(kl > 0.1 && rkl > 0.1 && fabs(kl - rkl) > 1e-3, "τ=%g: forward %.4g and reverse %.4g KL must differ for the test to mean anything", tau, kl, rkl);
        printf("jsd ends τ=%g: kl %.6f, jsd(1e-5)/β %.6f; rkl %.6f, jsd(1-1e-5)/(1-β) %.6f\n", tau, kl, jl, rkl, jh);
    }
}

/* ---------------------------------------------------------------- finite differences through the student */

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

static void fd_objective(lf_arch arch, lf_distill_kind kind, lf_hidden_kind hk, int single, int same_width) {
    char what[300];
    int Cs = same_width ? 24 : 16;
    lf_model *t = new_model(arch, 24, 3, 5), *s = new_model(arch, Cs, 2, 6);
    lf_distill_opts o;
    lf_distill_opts_default(&o);
    o.kind = kind;
    o.temperature = 2.0f;
    o.beta = 0.3f;
    o.hidden = hk;
    o.seed = 9;
    LF_ASSERT(lf_distill_parse_pairs(&o, single ? "" : "1:2,2:3") == LF_OK);
    lf_distill *d;
    LF_ASSERT(lf_distill_from_model(&d, t, &o) == LF_OK);
    LF_ASSERT(lf_distill_attach(d, s) == LF_OK);
    CHECK((lf_model_find(s, "distill.proj.0.weight") != NULL) == (!single && !same_width), "projection present iff widths differ");
    lf_batch b;
    make_batch(&b, 2, 7, 12);
    lf_loss_term *terms[3];
    int n = 0;
    if (single) terms[n++] = lf_distill_logit_term(d, 1.0f);
    else {
        terms[n++] = lf_loss_ce_new(0.0f);
        terms[0]->weight = 0.4f;
        terms[n++] = lf_distill_logit_term(d, 0.6f);
        terms[n++] = lf_distill_hidden_term(d, 0.7f);
    }
    obj_ctx c = {s, terms, n, &b};
    double worst = 0;
    char label[100];
    snprintf(label, sizeof label, "%s %s%s%s%s", arch == LF_ARCH_GPT2 ? "gpt2" : "llama", kind_name(kind),
             single ? " alone" : " + CE + hidden ", single ? "" : hk == LF_HIDDEN_MSE ? "mse" : "cosine",
             single ? "" : same_width ? " (same width)" : " (projected)");
    LF_ASSERT(lf_model_alloc_grads(s) == LF_OK);
    lf_model_zero_grad(s);
    objective(&c);
    LF_ASSERT(lf_loss_backward(s, terms, n, &b, 1.0f) == LF_OK);
    for (int i = 0; i < lf_model_num_params(s); i++) {
        lf_param *p = lf_model_param(s, i);
        float *g = tu_alloc(p->numel);
        memcpy(g, p->grad, p->numel * sizeof(float));
        snprintf(what, sizeof what, "%s: %s", label, p->name);
        worst = fmax(worst, tu_fd_check(what, p->data, g, p->numel, objective, &c, 3e-3f, 3e-4, 3e-2, 8));
        free(g);
    }
    printf("finite differences, %-40s %d tensors, worst %.2fx the tolerance\n", label, lf_model_num_params(s), worst);
    for (int i = 0; i < lf_model_num_params(t); i++)
        CHECK(lf_model_param(t, i)->grad == NULL && !(lf_model_param(t, i)->flags & LF_PARAM_TRAINABLE),
              "teacher tensor %s has a gradient buffer or is trainable", lf_model_param(t, i)->name);
    for (int k = 0; k < n; k++) lf_loss_free(terms[k]);
    lf_distill_free(d);
    lf_model_free(s);
    lf_batch_free(&b);
}

/* ---------------------------------------------------------------- hidden term vs the reference */

static void test_hidden_vs_ref(lf_hidden_kind hk, int same_width) {
    const char *what = hk == LF_HIDDEN_MSE ? (same_width ? "hidden mse (no projection)" : "hidden mse") : same_width ? "hidden cosine (no projection)" : "hidden cosine";
    int Cs = same_width ? 24 : 16, Ct = 24;
    lf_model *t = new_model(LF_ARCH_LLAMA, Ct, 3, 7), *s = new_model(LF_ARCH_LLAMA, Cs, 2, 8);
    lf_distill_opts o;
    lf_distill_opts_default(&o);
    o.hidden = hk;
    o.seed = 4;
    LF_ASSERT(lf_distill_parse_pairs(&o, "1:2,2:3") == LF_OK);
    lf_distill *d;
    LF_ASSERT(lf_distill_from_model(&d, t, &o) == LF_OK);
    LF_ASSERT(lf_distill_attach(d, s) == LF_OK);
    lf_batch b;
    make_batch(&b, 2, 7, 13);
    lf_loss_term *h = lf_distill_hidden_term(d, 1.0f);
    LF_ASSERT(lf_model_alloc_grads(s) == LF_OK);
    lf_model_zero_grad(s);
    double val;
    LF_ASSERT(lf_loss_forward(s, &h, 1, &b, &val, NULL) == LF_OK);
    LF_ASSERT(h->backward_hidden(h, s, &b, 1.0f) == LF_OK);
    int BT = 14, cnt = 0;
    for (int i = 0; i < BT; i++) cnt += b.targets[i] >= 0;
    double ref = 0, eh = 0, ew = 0;
    double *dhs = calloc((size_t)Cs, sizeof(double)), *dW = calloc((size_t)Ct * Cs, sizeof(double));
    for (int k = 0; k < 2; k++) {
        const float *HS = lf_model_hidden(s, k + 1), *HT = lf_model_hidden(t, k + 2), *hg = lf_model_hidden_grad(s, k + 1);
        char nm[64];
        snprintf(nm, sizeof nm, "distill.proj.%d.weight", k);
        lf_param *W = lf_model_find(s, nm);
        double *gw = calloc((size_t)Ct * Cs, sizeof(double));
        for (int i = 0; i < BT; i++) {
            double w = (double)b.row_weight[i / 7] / (cnt * 2.0);
            if (b.targets[i] < 0) {
                for (int j = 0; j < Cs; j++) eh = fmax(eh, fabs(hg[(size_t)i * Cs + j])); /* masked: nothing */
                continue;
            }
            ref += w * lf_distill_hidden_ref(hk, HS + (size_t)i * Cs, HT + (size_t)i * Ct, W ? W->data : NULL, Cs, Ct, dhs, dW);
            for (int j = 0; j < Cs; j++) eh = fmax(eh, fabs(hg[(size_t)i * Cs + j] - w * dhs[j]) / 1e-2);
            if (W)
                for (size_t j = 0; j < (size_t)Ct * Cs; j++) gw[j] += w * dW[j];
        }
        if (W)
            for (size_t j = 0; j < (size_t)Ct * Cs; j++) ew = fmax(ew, fabs(W->grad[j] - gw[j]) / 1e-2);
        free(gw);
    }
    /* errors above are relative to 1e-2, the scale of these gradients */
    CHECK(fabs(val - ref) <= 1e-5 * fmax(1.0, fabs(ref)), "%s: value %.8g, reference %.8g", what, val, ref);
    CHECK(eh <= 1e-4 && ew <= 1e-4, "%s: hidden-state gradient error %.3g, projection gradient error %.3g (x1e-2)", what, eh, ew);
    printf("%-28s value %.6f (ref %.6f), gradient errors %.2e %.2e\n", what, val, ref, eh * 1e-2, ew * 1e-2);
    /* the reference against its own central differences */
    float hs[24], ht[24], W[24 * 24];
    tu_fill(hs, (size_t)Cs, 21, 1.0f);
    tu_fill(ht, (size_t)Ct, 22, 1.0f);
    tu_fill(W, (size_t)Ct * Cs, 23, 0.3f);
    const float *Wp = same_width ? NULL : W;
    lf_distill_hidden_ref(hk, hs, ht, Wp, Cs, Ct, dhs, dW);
    double worst = 0;
    for (int j = 0; j < Cs; j++) {
        float keep = hs[j];
        hs[j] = keep + 1e-2f;
        double lp = lf_distill_hidden_ref(hk, hs, ht, Wp, Cs, Ct, NULL, NULL);
        hs[j] = keep - 1e-2f;
        double lm = lf_distill_hidden_ref(hk, hs, ht, Wp, Cs, Ct, NULL, NULL);
        hs[j] = keep;
        double num = (lp - lm) / ((double)(keep + 1e-2f) - (double)(keep - 1e-2f));
        worst = fmax(worst, fabs(num - dhs[j]) / (1e-5 + 1e-3 * fabs(dhs[j])));
    }
    for (int j = 0; Wp && j < Ct * Cs; j += 7) {
        float keep = W[j];
        W[j] = keep + 1e-2f;
        double lp = lf_distill_hidden_ref(hk, hs, ht, Wp, Cs, Ct, NULL, NULL);
        W[j] = keep - 1e-2f;
        double lm = lf_distill_hidden_ref(hk, hs, ht, Wp, Cs, Ct, NULL, NULL);
        W[j] = keep;
        double num = (lp - lm) / ((double)(keep + 1e-2f) - (double)(keep - 1e-2f));
        worst = fmax(worst, fabs(num - dW[j]) / (1e-5 + 1e-3 * fabs(dW[j])));
    }
    CHECK(worst <= 1.0, "%s: reference gradient vs its finite differences: %.2fx the tolerance", what, worst);
    free(dhs), free(dW);
    lf_loss_free(h);
    lf_distill_free(d);
    lf_model_free(s);
    lf_batch_free(&b);
}

/* ---------------------------------------------------------------- students, teachers, checks */

static void test_every_k(lf_arch arch) {
    const char *an = arch == LF_ARCH_GPT2 ? "gpt2" : "llama";
    lf_model *t = new_model(arch, 16, 4, 3), *s1, *s2, *bad;
    lf_batch b;
    make_batch(&b, 2, 7, 14);
    LF_ASSERT(lf_distill_student_every_k(&s1, t, 1) == LF_OK);
    float *zt = copy_logits(t, &b), *z1 = copy_logits(s1, &b);
    CHECK(tu_rel_err(z1, zt, 14 * 29) == 0.0, "%s: every_k:1 student's logits differ from the teacher's", an);
    LF_ASSERT(lf_distill_student_every_k(&s2, t, 2) == LF_OK);
    CHECK(lf_model_config(s2)->n_layer == 2, "%s: every_k:2 of 4 blocks gave %d", an, lf_model_config(s2)->n_layer);
    const char *sn = arch == LF_ARCH_GPT2 ? "transformer.h.1.mlp.c_proj.weight" : "model.layers.1.mlp.down_proj.weight";
    const char *tn = arch == LF_ARCH_GPT2 ? "transformer.h.2.mlp.c_proj.weight" : "model.layers.2.mlp.down_proj.weight";
    lf_param *ps = lf_model_find(s2, sn), *pt = lf_model_find(t, tn);
    CHECK(ps && pt && !memcmp(ps->data, pt->data, ps->numel * sizeof(float)), "%s: student block 1 is not teacher block 2", an);
    lf_param *es = lf_model_param(s2, 0), *et = lf_model_param(t, 0);
    CHECK(!memcmp(es->data, et->data, es->numel * sizeof(float)), "%s: embeddings not copied", an);
    CHECK(lf_distill_student_every_k(&bad, t, 5) == LF_ERR_ARG && strstr(lf_last_error(), "every_k"),
          "%s: every_k:5 of 4 blocks must be refused: %s", an, lf_last_error());
    free(zt), free(z1);
    lf_model_free(s1), lf_model_free(s2), lf_model_free(t);
    lf_batch_free(&b);
}

static void test_teacher_and_checks(void) {
    lf_model *t = new_model(LF_ARCH_LLAMA, 24, 3, 1), *ref = new_model(LF_ARCH_LLAMA, 24, 3, 1), *s = new_model(LF_ARCH_LLAMA, 16, 2, 2);
    lf_distill_opts o;
    lf_distill_opts_default(&o);
    lf_distill *d;
    LF_ASSERT(lf_distill_from_model(&d, t, &o) == LF_OK);
    lf_batch b;
    make_batch(&b, 2, 7, 15);
    LF_ASSERT(lf_model_forward(ref, b.inputs, 2, 7, LF_LOGITS_ALL) == LF_OK);
    LF_ASSERT(lf_model_forward(t, b.inputs, 2, 7, LF_LOGITS_ALL) == LF_OK);
    size_t tb = lf_model_activation_bytes(ref), fb = lf_model_activation_bytes(t);
    CHECK(fb < tb * 3 / 4, "the teacher's forward-only plan %zu bytes is not below a training model's %zu", fb, tb);
    printf("teacher activations for B=2 T=7: %zu bytes (a training-mode model: %zu)\n", fb, tb);
    /* a batch with the same tokens reuses the teacher's run, different tokens run it again */
    lf_loss_term *term = lf_distill_logit_term(d, 1.0f);
    double v1, v2, v3;
    LF_ASSERT(lf_loss_forward(s, &term, 1, &b, &v1, NULL) == LF_OK);
    LF_ASSERT(lf_loss_forward(s, &term, 1, &b, &v2, NULL) == LF_OK);
    b.inputs[0] = (b.inputs[0] + 1) % 29;
    LF_ASSERT(lf_loss_forward(s, &term, 1, &b, &v3, NULL) == LF_OK);
    lf_batch b2;
    make_batch(&b2, 2, 7, 15);
    b2.inputs[0] = b.inputs[0];
    lf_distill *d2;
    lf_model *t2 = new_model(LF_ARCH_LLAMA, 24, 3, 1);
    LF_ASSERT(lf_distill_from_model(&d2, t2, &o) == LF_OK);
    lf_loss_term *term2 = lf_distill_logit_term(d2, 1.0f);
    double v4;
    LF_ASSERT(lf_loss_forward(s, &term2, 1, &b2, &v4, NULL) == LF_OK);
    CHECK(v1 == v2 && v3 != v1 && v3 == v4, "teacher reuse: %.8g %.8g; new tokens %.8g, fresh teacher %.8g", v1, v2, v3, v4);
    /* argument checks */
    lf_distill_opts p;
    lf_distill_opts_default(&p);
    CHECK(lf_distill_parse_pairs(&p, "1:2,2:3") == LF_OK && p.n_pairs == 2 && p.student_layer[1] == 2 && p.teacher_layer[1] == 3,
          "pairs '1:2,2:3' parsed to %d pairs", p.n_pairs);
    CHECK(lf_distill_parse_pairs(&p, "1-2") == LF_ERR_ARG && strstr(lf_last_error(), "STUDENT:TEACHER"), "bad pairs: %s", lf_last_error());
    CHECK(lf_distill_parse_pairs(&p, "1:2,") == LF_ERR_ARG, "trailing comma accepted");
    LF_ASSERT(lf_distill_parse_pairs(&p, "2:9") == LF_OK);
    lf_distill *d3;
    lf_model *t3 = new_model(LF_ARCH_LLAMA, 24, 3, 1), *s3 = new_model(LF_ARCH_LLAMA, 16, 2, 2);
    LF_ASSERT(lf_distill_from_model(&d3, t3, &p) == LF_OK);
    CHECK(lf_distill_attach(d3, s3) == LF_ERR_ARG && strstr(lf_last_error(), "out of range"), "pair 2:9 of a 3-block teacher: %s", lf_last_error());
    lf_config cv = cfg_of(LF_ARCH_LLAMA, 16, 2);
    cv.vocab_size = 31;
    lf_model *sv;
    LF_ASSERT(lf_model_init(&sv, &cv) == LF_OK);
    CHECK(lf_distill_attach(d3, sv) == LF_ERR_ARG && strstr(lf_last_error(), "tokenizer"), "vocabulary mismatch: %s", lf_last_error());
    p.temperature = 0;
    lf_distill *d4 = NULL;
    lf_model *t4 = new_model(LF_ARCH_LLAMA, 24, 3, 1);
    CHECK(lf_distill_from_model(&d4, t4, &p) == LF_ERR_ARG, "temperature 0 accepted");
    lf_model_free(t4);
    lf_loss_free(term), lf_loss_free(term2);
    lf_distill_free(d), lf_distill_free(d2), lf_distill_free(d3);
    lf_model_free(ref), lf_model_free(s), lf_model_free(s3), lf_model_free(sv);
    lf_batch_free(&b), lf_batch_free(&b2);
}

/* ---------------------------------------------------------------- teacher cache */

typedef struct {
    int n;
    uint64_t seed;
} two_src; /* batches from seeds seed, seed+1, seed, ... */

static lf_status two_next(lf_batch_source *s, lf_batch *b) {
    two_src *t = s->ctx;
    lf_batch x;
    make_batch(&x, b->B, b->T, t->seed + (uint64_t)(t->n++ % 2));
    memcpy(b->inputs, x.inputs, sizeof(int32_t) * b->B * b->T);
    memcpy(b->targets, x.targets, sizeof(int32_t) * b->B * b->T);
    memcpy(b->row_weight, x.row_weight, sizeof(float) * b->B);
    lf_batch_free(&x);
    return LF_OK;
}

static void test_cache(const char *dir) {
    char path[600], bad[640];
    snprintf(path, sizeof path, "%s/cache.bin", dir);
    snprintf(bad, sizeof bad, "%s/bad.bin", dir);
    int V = 29, B = 2, T = 7, BT = 14, k = 5;
    lf_model *t = new_model(LF_ARCH_LLAMA, 24, 3, 1), *s = new_model(LF_ARCH_LLAMA, 16, 2, 2);
    lf_distill_opts o;
    lf_distill_opts_default(&o);
    o.temperature = 2.0f;
    lf_distill *d;
    LF_ASSERT(lf_distill_from_model(&d, t, &o) == LF_OK);
    two_src ts = {0, 31};
    lf_batch_source src = {"two", &ts, two_next, NULL, NULL, NULL};
    uint64_t fp = 0x1234;
    LF_ASSERT(lf_distill_cache_write(d, &src, B, T, 2, k, fp, path) == LF_OK);
    snprintf(bad, sizeof bad, "%s/full.bin", dir);
    ts.n = 0;
    LF_ASSERT(lf_distill_cache_write(d, &src, B, T, 2, V, fp, bad) == LF_OK);
    lf_distill_cache *c, *cf, *x = NULL;
    LF_ASSERT(lf_distill_cache_open(&c, path, fp, V, T, 2.0f) == LF_OK);
    LF_ASSERT(lf_distill_cache_open(&cf, bad, fp, V, T, 2.0f) == LF_OK);
    lf_batch b;
    make_batch(&b, B, T, 32); /* the second cached batch */
    lf_model *t2 = new_model(LF_ARCH_LLAMA, 24, 3, 1); /* the teacher's twin: d keeps its own teacher's last run */
    float *zt = copy_logits(t2, &b), *zs = copy_logits(s, &b);
    lf_model_free(t2);
    /* the cached term against the reference built from the teacher's own top k */
    lf_loss_term *ct = lf_distill_cache_term(c, 1.0f), *cft = lf_distill_cache_term(cf, 1.0f), *full = lf_distill_logit_term(d, 1.0f);
    double v, vf, vfull;
    LF_ASSERT(lf_loss_forward(s, &ct, 1, &b, &v, NULL) == LF_OK);
    LF_ASSERT(lf_loss_forward(s, &cft, 1, &b, &vf, NULL) == LF_OK);
    LF_ASSERT(lf_loss_forward(s, &full, 1, &b, &vfull, NULL) == LF_OK);
    double ref = 0, *dz = calloc((size_t)BT * V, sizeof(double)), lpd[29];
    int cnt = 0;
    for (int r = 0; r < BT; r++) cnt += b.targets[r] >= 0;
    float *refz = tu_alloc((size_t)BT * V), *g = tu_alloc((size_t)BT * V);
    for (int r = 0; r < BT; r++) {
        if (b.targets[r] < 0) continue;
        int32_t ids[5];
        float lp[5], l2[29];
        for (int u = 0; u < V; u++) lpd[u] = zt[(size_t)r * V + u] / 2.0;
        double mx = lpd[0], se = 0;
        for (int u = 1; u < V; u++) mx = fmax(mx, lpd[u]);
        for (int u = 0; u < V; u++) se += exp(lpd[u] - mx);
        for (int u = 0; u < V; u++) l2[u] = (float)(lpd[u] - mx - log(se));
        for (int j = 0; j < k; j++) { /* top k by selection */
            int best = -1;
            for (int u = 0; u < V; u++) {
                int used = 0;
                for (int q = 0; q < j; q++) used |= ids[q] == u;
                if (!used && (best < 0 || l2[u] > l2[best])) best = u;
            }
            ids[j] = best;
            lp[j] = l2[best];
        }
        double w = b.row_weight[r / T] / (double)cnt;
        ref += w * lf_distill_cache_row_ref(zs + (size_t)r * V, ids, lp, k, V, 2.0f, dz + (size_t)r * V);
        for (int u = 0; u < V; u++) refz[(size_t)r * V + u] = (float)(w * dz[(size_t)r * V + u]);
    }
    ct->backward_rows(ct, &b, zs, g, 0, (size_t)BT, V, 1.0f, 0);
    double e = tu_rel_err(g, refz, (size_t)BT * V);
    CHECK(fabs(v - ref) <= 1e-5 * fmax(1, ref) && e <= 1e-6, "cached top-%d KL: value %.8g vs reference %.8g, gradient error %.3g", k, v, ref, e);
    CHECK(v < vfull && v > 0.3 * vfull, "cached top-%d KL %.6g must be a lower bound near the full KL %.6g", k, v, vfull);
    CHECK(fabs(vf - vfull) <= 1e-5 * vfull, "a cache of all %d tokens gives KL %.8g, the teacher's term %.8g", V, vf, vfull);
    printf("teacher cache: top-%d KL %.6f (reference %.6f, gradient error %.2e); all-token cache %.6f, teacher %.6f\n", k, v, ref, e, vf, vfull);
    /* the reference against its own finite differences */
    {
        int32_t ids[5] = {3, 7, 1, 20, 11};
        float lp[5] = {-0.9f, -1.5f, -2.0f, -2.6f, -3.1f}, z[29];
        double dd[29], worst = 0;
        tu_fill(z, (size_t)V, 41, 1.5f);
        lf_distill_cache_row_ref(z, ids, lp, 5, V, 1.5f, dd);
        for (int u = 0; u < V; u++) {
            float keep = z[u];
            z[u] = keep + 1e-2f;
            double lp1 = lf_distill_cache_row_ref(z, ids, lp, 5, V, 1.5f, NULL);
            z[u] = keep - 1e-2f;
            double lm1 = lf_distill_cache_row_ref(z, ids, lp, 5, V, 1.5f, NULL);
            z[u] = keep;
            double num = (lp1 - lm1) / ((double)(keep + 1e-2f) - (double)(keep - 1e-2f));
            worst = fmax(worst, fabs(num - dd[u]) / (1e-5 + 1e-3 * fabs(dd[u])));
        }
        CHECK(worst <= 1.0, "cached KL reference vs its finite differences: %.2fx the tolerance", worst);
    }
    /* through the student, with cross-entropy */
    {
        lf_loss_term *terms[2] = {lf_distill_cache_term(c, 0.6f), lf_loss_ce_new(0.0f)};
        terms[1]->weight = 0.4f;
        obj_ctx oc = {s, terms, 2, &b};
        LF_ASSERT(lf_model_alloc_grads(s) == LF_OK);
        lf_model_zero_grad(s);
        objective(&oc);
        LF_ASSERT(lf_loss_backward(s, terms, 2, &b, 1.0f) == LF_OK);
        double worst = 0;
        for (int i = 0; i < lf_model_num_params(s); i++) {
            lf_param *p = lf_model_param(s, i);
            float *gg = tu_alloc(p->numel);
            memcpy(gg, p->grad, p->numel * sizeof(float));
            char what[200];
            snprintf(what, sizeof what, "cached KL + CE: %s", p->name);
            worst = fmax(worst, tu_fd_check(what, p->data, gg, p->numel, objective, &oc, 3e-3f, 3e-4, 3e-2, 8));
            free(gg);
        }
        printf("finite differences, %-40s %d tensors, worst %.2fx the tolerance\n", "cached KL + CE", lf_model_num_params(s), worst);
        lf_loss_free(terms[0]), lf_loss_free(terms[1]);
    }
    /* a row that is not in the cache */
    lf_batch nb;
    make_batch(&nb, B, T, 99);
    CHECK(lf_loss_forward(s, &ct, 1, &nb, &v, NULL) == LF_ERR_ARG && strstr(lf_last_error(), "not in the cache"), "unknown row: %s", lf_last_error());
    /* the file's checks */
    CHECK(lf_distill_cache_open(&x, path, fp + 1, V, T, 2.0f) == LF_ERR_FORMAT && strstr(lf_last_error(), "tokenizer"), "fingerprint: %s", lf_last_error());
    CHECK(lf_distill_cache_open(&x, path, fp, V, T, 1.0f) == LF_ERR_FORMAT && strstr(lf_last_error(), "temperature"), "temperature: %s", lf_last_error());
    size_t len;
    char *buf = lf_read_file(path, &len);
    LF_ASSERT(buf);
    snprintf(bad, sizeof bad, "%s/bad.bin", dir);
    buf[len / 2] ^= 1;
    LF_ASSERT(lf_write_file_atomic(bad, buf, len) == LF_OK);
    CHECK(lf_distill_cache_open(&x, bad, fp, V, T, 2.0f) == LF_ERR_FORMAT && strstr(lf_last_error(), "checksum"), "flipped bit: %s", lf_last_error());
    buf[len / 2] ^= 1;
    LF_ASSERT(lf_write_file_atomic(bad, buf, len - 40) == LF_OK);
    CHECK(lf_distill_cache_open(&x, bad, fp, V, T, 2.0f) == LF_ERR_FORMAT && strstr(lf_last_error(), "truncated"), "truncated: %s", lf_last_error());
    buf[8] = 9;
    LF_ASSERT(lf_write_file_atomic(bad, buf, len) == LF_OK);
    CHECK(lf_distill_cache_open(&x, bad, fp, V, T, 2.0f) == LF_ERR_FORMAT && strstr(lf_last_error(), "version"), "version: %s", lf_last_error());
    buf[0] = 'X';
    LF_ASSERT(lf_write_file_atomic(bad, buf, len) == LF_OK);
    CHECK(lf_distill_cache_open(&x, bad, fp, V, T, 2.0f) == LF_ERR_FORMAT && strstr(lf_last_error(), "not a teacher cache"), "magic: %s", lf_last_error());
    CHECK(x == NULL, "a refused cache must leave no handle");
    free(buf);
    lf_loss_free(ct), lf_loss_free(cft), lf_loss_free(full);
    lf_distill_cache_free(c), lf_distill_cache_free(cf);
    lf_distill_free(d);
    lf_model_free(s);
    lf_batch_free(&b), lf_batch_free(&nb);
    free(zt), free(zs), free(dz), free(refz), free(g);
}

/* ---------------------------------------------------------------- on-policy batches */

static void test_on_policy(void) {
    int B = 3, T = 12, P = 5;
    lf_model *s = new_model(LF_ARCH_LLAMA, 16, 2, 2);
    two_src a0 = {0, 50}, a1 = {0, 50}, a2 = {0, 50}, a3 = {0, 50};
    lf_batch_source in0 = {"two", &a0, two_next, NULL, NULL, NULL}, in1 = {"two", &a1, two_next, NULL, NULL, NULL};
    lf_batch_source in2 = {"two", &a2, two_next, NULL, NULL, NULL}, in3 = {"two", &a3, two_next, NULL, NULL, NULL};
    lf_batch_source *none, *all, *half, *again;
    LF_ASSERT(lf_distill_on_policy_source(&none, &in0, s, 0.0f, P, 1.0f, 7) == LF_OK);
    LF_ASSERT(lf_distill_on_policy_source(&all, &in1, s, 1.0f, P, 1.0f, 7) == LF_OK);
    LF_ASSERT(lf_distill_on_policy_source(&half, &in2, s, 0.5f, P, 1.0f, 7) == LF_OK);
    LF_ASSERT(lf_distill_on_policy_source(&again, &in3, s, 0.5f, P, 1.0f, 7) == LF_OK);
    lf_batch b0, b1, b2, b3, ref;
    lf_batch_alloc(&b0, B, T), lf_batch_alloc(&b1, B, T), lf_batch_alloc(&b2, B, T), lf_batch_alloc(&b3, B, T);
    int changed = 0, bad_prompt = 0, bad_targets = 0, half_gen = 0, same = 1;
    uint64_t st[LF_SOURCE_STATE_MAX];
    for (int k = 0; k < 20; k++) {
        make_batch(&ref, B, T, 50 + (uint64_t)(k % 2));
        LF_ASSERT(none->next(none, &b0) == LF_OK && all->next(all, &b1) == LF_OK && half->next(half, &b2) == LF_OK);
        if (k == 9) { /* a source restored from half's state continues as half does */
            int n = half->get_state(half, st);
            CHECK(n == 1 && st[0] == 10, "on-policy state: %d words, batch index %llu", n, (unsigned long long)st[0]);
            a3.n = a2.n;
            LF_ASSERT(again->set_state(again, st, n) == LF_OK);
        }
        if (k > 9) {
            LF_ASSERT(again->next(again, &b3) == LF_OK);
            same &= !memcmp(b3.inputs, b2.inputs, sizeof(int32_t) * B * T) && !memcmp(b3.targets, b2.targets, sizeof(int32_t) * B * T);
        }
        CHECK(!memcmp(b0.inputs, ref.inputs, sizeof(int32_t) * B * T) && !memcmp(b0.targets, ref.targets, sizeof(int32_t) * B * T),
              "lambda 0 changed batch %d", k);
        for (int r = 0; r < B; r++) {
            const int32_t *x = b1.inputs + r * T, *y = b1.targets + r * T, *x0 = ref.inputs + r * T;
            bad_prompt += memcmp(x, x0, sizeof(int32_t) * P) != 0;
            changed += memcmp(x + P, x0 + P, sizeof(int32_t) * (T - P)) != 0;
            for (int t = 0; t < T; t++) bad_targets += y[t] != (t >= P - 1 && t + 1 < T ? x[t + 1] : -1);
        }
        half_gen += memcmp(b2.inputs, ref.inputs, sizeof(int32_t) * B * T) != 0;
        lf_batch_free(&ref);
    }
    CHECK(bad_prompt == 0 && bad_targets == 0, "lambda 1: %d rows lost their prompt, %d targets are not the sampled tokens", bad_prompt, bad_targets);
    CHECK(changed >= 55, "lambda 1: only %d of 60 rows were continued by the student", changed);
    CHECK(half_gen >= 5 && half_gen <= 15, "lambda 0.5: %d of 20 batches on-policy", half_gen);
    CHECK(same, "a source restored from a saved state draws other batches");
    printf("on-policy: lambda 1 continued %d/60 rows, lambda 0.5 %d/20 batches; restored state identical\n", changed, half_gen);
    /* the sources were given the stack-allocated inners: free only the wrappers' own parts */
    lf_batch_source *w[4] = {none, all, half, again};
    for (int i = 0; i < 4; i++) ((lf_batch_source **)w[i]->ctx)[0] = NULL;
    for (int i = 0; i < 4; i++) lf_batch_source_free(w[i]);
    lf_batch_free(&b0), lf_batch_free(&b1), lf_batch_free(&b2), lf_batch_free(&b3);
    lf_model_free(s);
}

/* ---------------------------------------------------------------- export for distill_test.py */

static void put(const char *dir, const char *name, const void *p, size_t bytes) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    LF_ASSERT(f && fwrite(p, 1, bytes, f) == bytes);
    fclose(f);
}

static int export_for_python(const char *dir) {
    int V = 29, B = 2, T = 7, BT = 14, Cs = 16, Ct = 24;
    lf_model *t = new_model(LF_ARCH_LLAMA, Ct, 3, 1), *s = new_model(LF_ARCH_LLAMA, Cs, 2, 2);
    lf_batch b;
    make_batch(&b, B, T, 11);
    float *zt = copy_logits(t, &b), *zs = copy_logits(s, &b);
    put(dir, "zs.f32", zs, sizeof(float) * BT * V);
    put(dir, "zt.f32", zt, sizeof(float) * BT * V);
    put(dir, "targets.i32", b.targets, sizeof(int32_t) * BT);
    put(dir, "row_weight.f32", b.row_weight, sizeof(float) * B);
    FILE *meta = NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    meta = fopen(path, "w");
    LF_ASSERT(meta);
    fprintf(meta, "%d %d %d %d %d\n", B, T, V, Cs, Ct);
    struct { lf_distill_kind k; float tau, beta; } cases[] = {{LF_DISTILL_KL, 1, 0}, {LF_DISTILL_KL, 2, 0}, {LF_DISTILL_RKL, 1, 0},
                                                            {LF_DISTILL_RKL, 3, 0}, {LF_DISTILL_JSD, 1, 0.5f}, {LF_DISTILL_JSD, 2, 0.1f},
                                                            {LF_DISTILL_JSD, 1, 0.9f}, {LF_DISTILL_JSD, 2, 0.0f}, {LF_DISTILL_JSD, 2, 1.0f}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        lf_model *tc = new_model(LF_ARCH_LLAMA, Ct, 3, 1);
        lf_distill_opts o;
        lf_distill_opts_default(&o);
        o.kind = cases[c].k;
        o.temperature = cases[c].tau;
        o.beta = cases[c].beta;
        lf_distill *d;
        LF_ASSERT(lf_distill_from_model(&d, tc, &o) == LF_OK);
        lf_loss_term *term = lf_distill_logit_term(d, 1.0f);
        double v;
        LF_ASSERT(lf_loss_forward(s, &term, 1, &b, &v, NULL) == LF_OK);
        float *g = tu_alloc((size_t)BT * V);
        term->backward_rows(term, &b, zs, g, 0, (size_t)BT, V, 1.0f, 0);
        char name[64];
        snprintf(name, sizeof name, "grad%zu.f32", c);
        put(dir, name, g, sizeof(float) * BT * V);
        fprintf(meta, "logit %s %g %g %.10g %s\n", kind_name(cases[c].k), cases[c].tau, cases[c].beta, v, name);
        free(g);
        lf_loss_free(term);
        lf_distill_free(d);
    }
    for (int hk = 0; hk < 2; hk++) { /* one pair 2:3 through a projection */
        lf_model *tc = new_model(LF_ARCH_LLAMA, Ct, 3, 1);
        lf_distill_opts o;
        lf_distill_opts_default(&o);
        o.hidden = (lf_hidden_kind)hk;
        o.seed = 5 + hk;
        LF_ASSERT(lf_distill_parse_pairs(&o, "2:3") == LF_OK);
        lf_distill *d;
        LF_ASSERT(lf_distill_from_model(&d, tc, &o) == LF_OK);
        LF_ASSERT(lf_distill_attach(d, s) == LF_OK);
        lf_param *W = lf_model_find(s, "distill.proj.0.weight");
        lf_loss_term *h = lf_distill_hidden_term(d, 1.0f);
        LF_ASSERT(lf_model_alloc_grads(s) == LF_OK);
        lf_model_zero_grad(s);
        double v;
        LF_ASSERT(lf_loss_forward(s, &h, 1, &b, &v, NULL) == LF_OK);
        LF_ASSERT(h->backward_hidden(h, s, &b, 1.0f) == LF_OK);
        char n1[32], n2[32], n3[32], n4[32], n5[32];
        snprintf(n1, sizeof n1, "hs%d.f32", hk), snprintf(n2, sizeof n2, "ht%d.f32", hk), snprintf(n3, sizeof n3, "W%d.f32", hk);
        snprintf(n4, sizeof n4, "dhs%d.f32", hk), snprintf(n5, sizeof n5, "dW%d.f32", hk);
        put(dir, n1, lf_model_hidden(s, 2), sizeof(float) * BT * Cs);
        put(dir, n2, lf_model_hidden(tc, 3), sizeof(float) * BT * Ct);
        put(dir, n3, W->data, sizeof(float) * Ct * Cs);
        put(dir, n4, lf_model_hidden_grad(s, 2), sizeof(float) * BT * Cs);
        put(dir, n5, W->grad, sizeof(float) * Ct * Cs);
        fprintf(meta, "hidden %s %.10g %s %s %s %s %s\n", hk ? "cosine" : "mse", v, n1, n2, n3, n4, n5);
        lf_loss_free(h);
        lf_distill_free(d);
        LF_ASSERT(lf_model_remove_param(s, W) == LF_OK);
    }
    fclose(meta);
    free(zt), free(zs);
    lf_model_free(t), lf_model_free(s);
    lf_batch_free(&b);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--export")) return export_for_python(argv[2]);
    lf_distill_kind kinds[] = {LF_DISTILL_KL, LF_DISTILL_RKL, LF_DISTILL_JSD};
    for (int a = 0; a < 2; a++)
        for (int k = 0; k < 3; k++)
            for (int ti = 0; ti < 2; ti++) test_logit_vs_ref(a ? LF_ARCH_GPT2 : LF_ARCH_LLAMA, kinds[k], ti ? 2.0f : 1.0f, 0.3f);
    test_logit_vs_ref(LF_ARCH_LLAMA, LF_DISTILL_JSD, 2.0f, 0.0f);
    test_logit_vs_ref(LF_ARCH_LLAMA, LF_DISTILL_JSD, 2.0f, 1.0f);
    test_vlogf();
    test_jsd_ends();
    for (int hk = 0; hk < 2; hk++)
        for (int sw = 0; sw < 2; sw++) test_hidden_vs_ref((lf_hidden_kind)hk, sw);
    fd_objective(LF_ARCH_LLAMA, LF_DISTILL_KL, LF_HIDDEN_MSE, 1, 0);
    fd_objective(LF_ARCH_LLAMA, LF_DISTILL_JSD, LF_HIDDEN_COSINE, 0, 0);
    fd_objective(LF_ARCH_GPT2, LF_DISTILL_RKL, LF_HIDDEN_MSE, 0, 0);
    fd_objective(LF_ARCH_GPT2, LF_DISTILL_KL, LF_HIDDEN_COSINE, 0, 1);
    test_every_k(LF_ARCH_LLAMA);
    test_every_k(LF_ARCH_GPT2);
    test_teacher_and_checks();
    char dir[] = "/tmp/lf_distill_XXXXXX";
    LF_ASSERT(mkdtemp(dir));
    test_cache(dir);
    lf_rm_rf(dir);
    test_on_policy();
    return tu_finish("test_distill");
}
