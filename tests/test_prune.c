/* Pruning (issue 11): exact counts per row, per tensor and per N:M group; magnitude takes the
 * smallest; Wanda's masks against a plain reference (activation norms recomputed from the hidden
 * states, not the tap); SparseGPT's blocked LAPACK solver against the unblocked Gauss-Jordan OBS
 * reference, and its reconstruction error against magnitude's and Wanda's; masks through
 * training steps; the gradual schedule; bad input refused. */
#include "lmforge/loss.h"
#include "lmforge/optim.h"
#include "lmforge/prune.h"
#include "testutil.h"

static lf_config cfg_small(void) {
    lf_config c;
    lf_config_defaults(&c, LF_ARCH_LLAMA);
    c.vocab_size = 37;
    c.d_model = 16;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_kv_head = 2;
    c.head_dim = 4;
    c.d_ff = 24;
    c.max_seq = 16;
    c.tie_embeddings = 0;
    c.init_std = 0.3f;
    return c;
}

/* every pruned score <= every kept one within each group of len; the count of pruned is want */
static void check_groups(const char *what, const float *s, const uint8_t *mask, size_t n, size_t len, size_t want) {
    int bad_count = 0, bad_order = 0;
    for (size_t g = 0; g < n; g += len) {
        size_t pruned = 0;
        float maxp = -INFINITY, mink = INFINITY;
        for (size_t i = g; i < g + len; i++) {
            if (!mask[i]) {
                pruned++;
                if (s[i] > maxp) maxp = s[i];
            } else if (s[i] < mink) mink = s[i];
        }
        bad_count += pruned != want;
        bad_order += maxp > mink;
    }
    CHECK(!bad_count && !bad_order, "%s: %d groups with a count other than %zu, %d with a kept score below a pruned one", what,
          bad_count, want, bad_order);
}

static void test_select(void) {
    int OC = 13, IC = 48;
    size_t n = (size_t)OC * IC;
    float *s = tu_alloc(n);
    uint8_t *mask = malloc(n);
    for (size_t i = 0; i < n; i++) s[i] = fabsf(lf_randn(3, 1, i));
    float sp[] = {0.0f, 0.25f, 0.5f, 0.6f, 0.7f, 1.0f};
    for (int k = 0; k < 6; k++) {
        char w[64];
        LF_ASSERT(lf_prune_select(s, OC, IC, sp[k], 0, 0, 1, mask) == LF_OK);
        snprintf(w, sizeof w, "per row, %.2f", (double)sp[k]);
        check_groups(w, s, mask, n, (size_t)IC, (size_t)floor(IC * (double)sp[k]));
        LF_ASSERT(lf_prune_select(s, OC, IC, sp[k], 0, 0, 0, mask) == LF_OK);
        snprintf(w, sizeof w, "per tensor, %.2f", (double)sp[k]);
        check_groups(w, s, mask, n, n, (size_t)floor((double)n * sp[k]));
    }
    int nm[][2] = {{2, 4}, {1, 4}, {4, 8}, {0, 2}};
    for (int k = 0; k < 4; k++) {
        char w[64];
        LF_ASSERT(lf_prune_select(s, OC, IC, 0.0f, nm[k][0], nm[k][1], 1, mask) == LF_OK);
        snprintf(w, sizeof w, "%d:%d", nm[k][0], nm[k][1]);
        check_groups(w, s, mask, n, (size_t)nm[k][1], (size_t)(nm[k][1] - nm[k][0]));
    }
    /* ties: equal scores go lowest index first, the count stays exact */
    for (size_t i = 0; i < n; i++) s[i] = (float)(i % 3);
    LF_ASSERT(lf_prune_select(s, OC, IC, 0.5f, 0, 0, 1, mask) == LF_OK);
    int ok = 1;
    for (int o = 0; o < OC; o++) /* per row: 16 zeros (score 0) then 8 of the ones, the first by index */
        for (int j = 0; j < IC; j++) ok &= mask[(size_t)o * IC + j] == !(j % 3 == 0 || (j % 3 == 1 && j < 24));
    CHECK(ok, "ties: the lower indices must go first");
    CHECK(lf_prune_select(s, OC, IC, 1.5f, 0, 0, 1, mask) == LF_ERR_ARG, "sparsity 1.5 must be refused");
    CHECK(lf_prune_select(s, OC, IC, 0.5f, 2, 5, 1, mask) == LF_ERR_ARG, "2:5 on 48 inputs must be refused");
    s[7] = NAN;
    CHECK(lf_prune_select(s, OC, IC, 0.5f, 0, 0, 1, mask) != LF_OK, "a NaN score must be an error");
    free(s);
    free(mask);
}

static lf_model *small_model(uint64_t seed) {
    lf_config cfg = cfg_small();
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK);
    lf_model_init_weights(m, seed);
    return m;
}

static void test_magnitude(void) {
    lf_model *m = small_model(5);
    lf_param *emb = lf_model_find(m, "model.embed_tokens.weight"), *head = lf_model_find(m, "lm_head.weight");
    float e0 = emb->data[3], h0 = head->data[3];
    lf_prune_opts o;
    lf_prune_opts_default(&o, LF_PRUNE_MAGNITUDE);
    o.sparsity = 0.6f;
    lf_prune_report r;
    LF_ASSERT(lf_prune_model(m, &o, NULL, 0, 0, &r) == LF_OK);
    int bad = 0, tensors = 0;
    size_t want = 0;
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        if (!lf_prune_is_target(m, p, 0)) {
            CHECK(!p->mask, "%s must stay dense", p->name);
            continue;
        }
        tensors++;
        size_t z = 0;
        for (size_t j = 0; j < p->numel; j++) z += p->data[j] == 0.0f;
        want += (size_t)floor((double)p->numel * 0.6);
        bad += z != (size_t)floor((double)p->numel * 0.6);
    }
    CHECK(!bad && tensors == 14, "magnitude 60%%: %d of %d tensors without exactly floor(0.6·numel) zeros", bad, tensors);
    CHECK(emb->data[3] == e0 && head->data[3] == h0, "embedding and head must be untouched");
    CHECK(r.tensors == 14 && r.pruned == want, "report: %d tensors, %zu of %zu pruned",
          r.tensors, r.pruned, r.total);
    /* the smallest went: compare against the same weights, unpruned */
    lf_model *d = small_model(5);
    int wrong = 0;
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i), *q = lf_model_param(d, i);
        if (!lf_prune_is_target(m, p, 0)) continue;
        float maxp = 0, mink = INFINITY;
        for (size_t j = 0; j < p->numel; j++) {
            float a = fabsf(q->data[j]);
            if (!p->mask[j] && a > maxp) maxp = a;
            if (p->mask[j] && a < mink) mink = a;
        }
        wrong += maxp > mink;
    }
    CHECK(!wrong, "magnitude: %d tensors kept a weight smaller than one pruned", wrong);
    /* global: one threshold over all tensors */
    lf_prune_opts_default(&o, LF_PRUNE_MAGNITUDE);
    o.global = 1;
    o.sparsity = 0.5f;
    LF_ASSERT(lf_prune_model(d, &o, NULL, 0, 0, &r) == LF_OK);
    CHECK(r.pruned == r.total / 2, "global 50%%: %zu of %zu pruned", r.pruned, r.total);
    lf_model_free(d);
    lf_model_free(m);
}

/* Wanda's masks against scores recomputed from the model's own hidden states: layer 0's q_proj
 * sees RMSNorm(embedding)·g (no tap involved) */
static void test_wanda(void) {
    lf_model *m = small_model(9);
    const lf_config *c = lf_model_config(m);
    int K = 3, T = 12, C = c->d_model;
    int32_t ids[36];
    for (int i = 0; i < K * T; i++) ids[i] = (int32_t)(lf_hash64(4, 1, (uint64_t)i) % (uint64_t)c->vocab_size);
    lf_model_set_forward_only(m, 1);
    LF_ASSERT(lf_model_forward(m, ids, K, T, LF_LOGITS_NONE) == LF_OK);
    const float *h0 = lf_model_hidden(m, 0);
    const float *g = lf_model_find(m, "model.layers.0.input_layernorm.weight")->data;
    double sq[64] = {0};
    for (int r = 0; r < K * T; r++) {
        const float *x = h0 + (size_t)r * C;
        double ms = 0;
        for (int j = 0; j < C; j++) ms += (double)x[j] * x[j];
        double rs = 1.0 / sqrt(ms / C + c->norm_eps);
        for (int j = 0; j < C; j++) {
            double y = x[j] * rs * g[j];
            sq[j] += y * y;
        }
    }
    lf_model_set_forward_only(m, 0);
    lf_param *q = lf_model_find(m, "model.layers.0.self_attn.q_proj.weight");
    int OC = (int)q->shape[0];
    float *w0 = tu_alloc(q->numel);
    memcpy(w0, q->data, q->numel * sizeof(float));
    for (int seq = 0; seq < 2; seq++) {
        lf_model *mm = small_model(9);
        lf_prune_opts o;
        lf_prune_opts_default(&o, LF_PRUNE_WANDA);
        o.sequential = seq;
        o.sparsity = 0.5f;
        lf_prune_report r;
        LF_ASSERT(lf_prune_model(mm, &o, ids, K, T, &r) == LF_OK);
        lf_param *qq = lf_model_find(mm, q->name);
        int diff = 0;
        for (int o2 = 0; o2 < OC; o2++) { /* reference: rank each row by a plain double score, drop the 8 lowest */
            for (int j = 0; j < C; j++) {
                double sj = fabs(w0[(size_t)o2 * C + j]) * sqrt(sq[j] / (K * T));
                int below = 0;
                for (int k = 0; k < C; k++) {
                    double sk = fabs(w0[(size_t)o2 * C + k]) * sqrt(sq[k] / (K * T));
                    below += sk < sj || (sk == sj && k < j);
                }
                diff += (below >= C / 2) != qq->mask[(size_t)o2 * C + j];
            }
        }
        CHECK(diff == 0, "wanda (%s): layer 0 q_proj mask differs from the reference in %d places",
              seq ? "sequential" : "dense statistics", diff);
        CHECK(r.pruned == r.total / 2 && r.tensors == 14, "wanda: %zu of %zu pruned in %d tensors", r.pruned, r.total, r.tensors);
        int rows_bad = 0;
        for (int i = 0; i < lf_model_num_params(mm); i++) {
            lf_param *p = lf_model_param(mm, i);
            if (!lf_prune_is_target(mm, p, 0)) continue;
            int IC = (int)p->shape[1];
            for (int o2 = 0; o2 < (int)p->shape[0]; o2++) {
                int z = 0;
                for (int j = 0; j < IC; j++) z += !p->mask[(size_t)o2 * IC + j];
                rows_bad += z != IC / 2;
            }
        }
        CHECK(!rows_bad, "wanda: %d rows without exactly half pruned", rows_bad);
        CHECK(!qq->tap, "the calibration tap must be removed");
        lf_model_free(mm);
    }
    lf_prune_opts o;
    lf_prune_opts_default(&o, LF_PRUNE_WANDA);
    CHECK(lf_prune_model(m, &o, NULL, 0, 0, NULL) == LF_ERR_ARG, "wanda without calibration data must be refused");
    o.keep_n = 2;
    o.group_m = 5;
    CHECK(lf_prune_model(m, &o, ids, K, T, NULL) == LF_ERR_ARG, "2:5 on 16 inputs must be refused");
    free(w0);
    lf_model_free(m);
}

/* ‖X·Wᵀ − X·Ŵᵀ‖_F / ‖X·Wᵀ‖_F */
static double recon_err(const float *X, const float *W, const float *Wh, int N, int OC, int IC) {
    double num = 0, den = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double a = 0, b = 0;
            for (int j = 0; j < IC; j++) {
                a += (double)X[(size_t)n * IC + j] * W[(size_t)o * IC + j];
                b += (double)X[(size_t)n * IC + j] * Wh[(size_t)o * IC + j];
            }
            num += (a - b) * (a - b);
            den += a * a;
        }
    return sqrt(num / den);
}

static void test_sparsegpt(void) {
    int N = 400, IC = 64, OC = 24;
    size_t nw = (size_t)OC * IC;
    float *X = tu_alloc((size_t)N * IC), *W = tu_alloc(nw), *Wf = tu_alloc(nw), *Wr = tu_alloc(nw), *Wm = tu_alloc(nw);
    double *H = malloc(sizeof(double) * IC * IC), *H2 = malloc(sizeof(double) * IC * IC);
    uint8_t *mf = malloc(nw), *mr = malloc(nw);
    float *s = tu_alloc(nw);
    /* correlated inputs with uneven scales (as activations are): X = Z·A, column j scaled */
    float *Z = tu_alloc((size_t)N * IC), *A = tu_alloc((size_t)IC * IC);
    tu_fill(Z, (size_t)N * IC, 11, 1.0f);
    tu_fill(A, (size_t)IC * IC, 12, 0.3f);
    for (int j = 0; j < IC; j++) A[(size_t)j * IC + j] += 1.0f;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < IC; j++) {
            double a = 0;
            for (int k = 0; k < IC; k++) a += (double)Z[(size_t)n * IC + k] * A[(size_t)k * IC + j];
            X[(size_t)n * IC + j] = (float)(a * (1.0 + 3.0 * (j % 7 == 0)));
        }
    for (int j = 0; j < N; j++) X[(size_t)j * IC + 5] = 0.0f; /* a dead input */
    tu_fill(W, nw, 13, 1.0f);
    struct { int n, m, bs; float sp; } cases[] = {{0, 0, 16, 0.5f}, {0, 0, 64, 0.7f}, {0, 0, 128, 0.25f}, {2, 4, 16, 0.0f}, {1, 4, 32, 0.0f}};
    for (int c = 0; c < 5; c++) {
        for (int a = 0; a < IC; a++)
            for (int b = 0; b < IC; b++) {
                double h = 0;
                for (int n = 0; n < N; n++) h += (double)X[(size_t)n * IC + a] * X[(size_t)n * IC + b];
                H[(size_t)a * IC + b] = H2[(size_t)a * IC + b] = h;
            }
        memcpy(Wf, W, nw * sizeof(float));
        memcpy(Wr, W, nw * sizeof(float));
        LF_ASSERT(lf_sparsegpt_prune(Wf, H, OC, IC, cases[c].sp, cases[c].n, cases[c].m, cases[c].bs, 0.01f, mf) == LF_OK);
        LF_ASSERT(lf_sparsegpt_prune_ref(Wr, H2, OC, IC, cases[c].sp, cases[c].n, cases[c].m, cases[c].bs, 0.01f, mr) == LF_OK);
        int mdiff = 0;
        size_t zeros = 0;
        for (size_t i = 0; i < nw; i++) {
            mdiff += mf[i] != mr[i];
            zeros += Wf[i] == 0.0f && mf[i] == 0;
        }
        double e = tu_rel_err(Wf, Wr, nw);
        char what[64];
        if (cases[c].m) snprintf(what, sizeof what, "%d:%d, block %d", cases[c].n, cases[c].m, cases[c].bs);
        else snprintf(what, sizeof what, "%.0f%%, block %d", 100.0 * cases[c].sp, cases[c].bs);
        CHECK(mdiff == 0 && e < 1e-5, "sparsegpt %s: blocked vs reference: %d mask entries differ, weights rel err %.3g",
              what, mdiff, e);
        size_t want = cases[c].m ? nw / cases[c].m * (cases[c].m - cases[c].n) : 0;
        if (!cases[c].m) /* per block of bs columns: floor(OC·bs·s) */
            for (int i1 = 0; i1 < IC; i1 += cases[c].bs) {
                int cnt = i1 + cases[c].bs < IC ? cases[c].bs : IC - i1;
                want += (size_t)floor((double)OC * cnt * cases[c].sp);
            }
        CHECK(zeros == want, "sparsegpt %s: %zu zeros, want %zu", what, zeros, want);
        if (cases[c].m) {
            size_t bad = 0;
            for (size_t g = 0; g < nw; g += (size_t)cases[c].m) {
                int z = 0;
                for (int k = 0; k < cases[c].m; k++) z += !mf[g + (size_t)k];
                bad += z != cases[c].m - cases[c].n;
            }
            CHECK(!bad, "sparsegpt %s: %zu groups with the wrong count", what, bad);
        }
        /* against magnitude and Wanda at the same pattern */
        for (size_t i = 0; i < nw; i++) s[i] = fabsf(W[i]);
        LF_ASSERT(lf_prune_select(s, OC, IC, cases[c].sp, cases[c].n, cases[c].m, 0, mr) == LF_OK);
        for (size_t i = 0; i < nw; i++) Wm[i] = mr[i] ? W[i] : 0.0f;
        double em = recon_err(X, W, Wm, N, OC, IC);
        for (int j = 0; j < IC; j++) {
            double q = 0;
            for (int n = 0; n < N; n++) q += (double)X[(size_t)n * IC + j] * X[(size_t)n * IC + j];
            for (int o = 0; o < OC; o++) s[(size_t)o * IC + j] = fabsf(W[(size_t)o * IC + j]) * (float)sqrt(q);
        }
        LF_ASSERT(lf_prune_select(s, OC, IC, cases[c].sp, cases[c].n, cases[c].m, 1, mr) == LF_OK);
        for (size_t i = 0; i < nw; i++) Wm[i] = mr[i] ? W[i] : 0.0f;
        double ew = recon_err(X, W, Wm, N, OC, IC), es = recon_err(X, W, Wf, N, OC, IC);
        printf("  %-16s relative output error: magnitude %.4f, wanda %.4f, sparsegpt %.4f; blocked vs reference %.2g\n", what,
               em, ew, es, e);
        CHECK(es < 0.7 * em && es < ew, "sparsegpt %s: output error %.4f, not well below magnitude's %.4f and Wanda's %.4f",
              what, es, em, ew);
    }
    for (int a = 0; a < IC * IC; a++) H[a] = 0;
    memcpy(Wf, W, nw * sizeof(float));
    CHECK(lf_sparsegpt_prune(Wf, H, OC, IC, 0.5f, 2, 4, 18, 0.01f, mf) == LF_ERR_ARG, "block 18 with 2:4 must be refused");
    free(X);
    free(W);
    free(Wf);
    free(Wr);
    free(Wm);
    free(H);
    free(H2);
    free(mf);
    free(mr);
    free(s);
    free(Z);
    free(A);
}

/* a SparseGPT-pruned model trains with its masks: zero gradients, zeros after AdamW steps */
static void test_training_keeps_masks(void) {
    lf_model *m = small_model(21);
    int K = 2, T = 16;
    int32_t ids[32];
    for (int i = 0; i < K * T; i++) ids[i] = (int32_t)(lf_hash64(8, 1, (uint64_t)i) % 37);
    lf_prune_opts o;
    lf_prune_opts_default(&o, LF_PRUNE_SPARSEGPT);
    o.keep_n = 2;
    o.group_m = 4;
    lf_prune_report r;
    LF_ASSERT(lf_prune_model(m, &o, ids, K, T, &r) == LF_OK);
    CHECK(r.pruned == r.total / 2, "sparsegpt 2:4 on the model: %zu of %zu pruned", r.pruned, r.total);
    lf_adamw_config oc;
    lf_adamw_defaults(&oc);
    lf_optim *opt;
    LF_ASSERT(lf_optim_init(&opt, m, &oc) == LF_OK);
    lf_loss_term *ce = lf_loss_ce_new(0.0f);
    lf_batch b;
    LF_ASSERT(lf_batch_alloc(&b, K, T) == LF_OK);
    for (int i = 0; i < K * T; i++) {
        b.inputs[i] = ids[i];
        b.targets[i] = ids[(i + 1) % (K * T)];
    }
    lf_param *down = lf_model_find(m, "model.layers.1.mlp.down_proj.weight");
    float *before = tu_alloc(down->numel);
    memcpy(before, down->data, down->numel * sizeof(float));
    size_t gbad = 0;
    for (int step = 0; step < 3; step++) {
        lf_model_zero_grad(m);
        LF_ASSERT(lf_loss_forward(m, &ce, 1, &b, NULL, NULL) == LF_OK);
        LF_ASSERT(lf_loss_backward(m, &ce, 1, &b, 1.0f) == LF_OK);
        for (size_t i = 0; i < down->numel; i++) gbad += !down->mask[i] && down->grad[i] != 0.0f;
        LF_ASSERT(lf_optim_step(opt, 1e-2f, NULL) == LF_OK);
    }
    size_t zbad = 0, moved = 0;
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        if (!p->mask) continue;
        for (size_t j = 0; j < p->numel; j++) zbad += !p->mask[j] && p->data[j] != 0.0f;
    }
    for (size_t i = 0; i < down->numel; i++) moved += down->mask[i] && down->data[i] != before[i];
    CHECK(gbad == 0 && zbad == 0, "after training steps: %zu pruned gradients nonzero, %zu pruned weights nonzero", gbad, zbad);
    CHECK(moved > down->numel / 4, "kept weights must train (%zu of %zu moved)", moved, down->numel);
    free(before);
    lf_batch_free(&b);
    lf_loss_free(ce);
    lf_optim_free(opt);
    lf_model_free(m);
}

static void test_schedule(void) {
    lf_prune_schedule s = {0.0f, 0.8f, 10, 50, 10, LF_PRUNE_MAGNITUDE};
    CHECK(lf_prune_schedule_sparsity(&s, 0) == 0.0f && lf_prune_schedule_sparsity(&s, 50) == 0.8f &&
              lf_prune_schedule_sparsity(&s, 90) == 0.8f,
          "cubic schedule ends");
    float mid = lf_prune_schedule_sparsity(&s, 30); /* 0.8 + (0 - 0.8)·0.5³ = 0.7 */
    CHECK(fabsf(mid - 0.7f) < 1e-6f, "cubic schedule at the midpoint: %g, want 0.7", (double)mid);
    for (int meth = 0; meth < 2; meth++) {
        lf_model *m = small_model(3);
        s.method = meth ? LF_PRUNE_WANDA : LF_PRUNE_MAGNITUDE;
        lf_hook *h;
        LF_ASSERT(lf_hook_prune_schedule(&h, m, &s) == LF_OK);
        int32_t ids[16];
        for (int i = 0; i < 16; i++) ids[i] = i;
        LF_ASSERT(lf_model_forward(m, ids, 1, 16, LF_LOGITS_ALL) == LF_OK); /* Wanda's taps see it */
        lf_step_info si = {0};
        si.step = 30;
        h->after_step(h, NULL, &si);
        size_t z, t;
        lf_prune_count(m, 0, &z, &t);
        /* magnitude: floor(0.7·numel) per tensor; Wanda: floor(0.7·IC) per row (11 of 16, 16 of 24) */
        CHECK(z >= (size_t)(0.66 * (double)t) && z <= (size_t)(0.70 * (double)t), "%s schedule at step 30: %zu of %zu zero",
              meth ? "wanda" : "magnitude", z, t);
        si.step = 35; /* not a multiple of dt after t0: nothing */
        LF_ASSERT(lf_model_forward(m, ids, 1, 16, LF_LOGITS_ALL) == LF_OK);
        h->after_step(h, NULL, &si);
        size_t z2;
        lf_prune_count(m, 0, &z2, &t);
        CHECK(z2 == z, "schedule off-step changed the masks");
        h->free(h);
        CHECK(!lf_model_find(m, "model.layers.0.mlp.up_proj.weight")->tap, "the hook's taps must go with it");
        lf_model_free(m);
    }
    lf_prune_schedule bad = {0.5f, 0.2f, 0, 10, 1, LF_PRUNE_MAGNITUDE};
    lf_hook *h;
    lf_model *m = small_model(3);
    CHECK(lf_hook_prune_schedule(&h, m, &bad) == LF_ERR_ARG, "a decreasing schedule must be refused");
    lf_model_free(m);
}

int main(void) {
    test_select();
    test_magnitude();
    test_wanda();
    test_sparsegpt();
    test_training_keeps_masks();
    test_schedule();
    return tu_finish("test_prune");
}
