/* Multi-task learning: the task list is checked field by field, T5's mixing rates follow their
 * formulae, the mixture draws tasks in those proportions (chi-square over many rows) and resumes
 * exactly, the uncertainty-weighted loss has finite-difference gradients (log-variances and
 * model), PCGrad matches a plain per-task reference (conflicting and non-conflicting gradients,
 * projected gradients orthogonal), the trainer's grad-surgery seam with a plain sum gives the
 * ordinary step, and small runs of lmforge train learn a classification and a language-modelling
 * task together and resume bit for bit. Data: JSONL made here, a byte-level BPE trained here. */
#include "lmforge/data.h"
#include "lmforge/model.h"
#include "lmforge/multitask.h"
#include "lmforge/tokenizer.h"
#include "lmforge/train.h"
#include "testutil.h"

#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/lf_test_mtl_XXXXXX";
static char tok_path[400];
static lf_config cfg_small(int V);

static char *path_of(const char *name) {
    static char p[8][4400];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static const char *words[] = {"alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"};
static const char *filler[] = {"stone", "river", "cloud", "grass", "sand", "wind", "snow", "fire", "leaf", "hill"};

/* lm: the 8 words in cyclic order from a random start; classify: fillers then red (yes) or blue
 * (no); completion: "q N" -> " a N" */
static void make_data(void) {
    FILE *lm = fopen(path_of("lm.jsonl"), "w"), *cl = fopen(path_of("cls.jsonl"), "w"), *co = fopen(path_of("comp.jsonl"), "w");
    FILE *all = fopen(path_of("corpus.txt"), "w");
    LF_ASSERT(lm && cl && co && all);
    for (int d = 0; d < 60; d++) {
        fprintf(lm, "{\"text\": \"");
        for (int k = 0; k < 24; k++) {
            fprintf(lm, "%s%s", k ? " " : "", words[(d + k) % 8]);
            fprintf(all, "%s ", words[(d + k) % 8]);
        }
        fprintf(lm, "\"}\n");
    }
    for (int d = 0; d < 300; d++) {
        char text[200] = "";
        for (int k = 0; k < 3; k++) {
            strcat(text, filler[lf_hash64(11, (uint64_t)d, (uint64_t)k) % 10]);
            strcat(text, " ");
        }
        int yes = (int)(lf_hash64(12, (uint64_t)d, 0) % 2);
        strcat(text, yes ? "red" : "blue");
        fprintf(cl, "{\"text\": \"%s\", \"label\": \"%s\"}\n", text, yes ? "yes" : "no");
        fprintf(all, "%s %s\n", text, yes ? "yes" : "no");
    }
    for (int d = 0; d < 40; d++) fprintf(co, "{\"prompt\": \"q %d\", \"completion\": \" a %d\"}\n", d, d);
    FILE *mx = fopen(path_of("mixed.jsonl"), "w");
    LF_ASSERT(mx);
    for (int d = 0; d < 50; d++) {
        fprintf(mx, "{\"task\": \"qa\", \"prompt\": \"q %d\", \"completion\": \" %s\"}\n", d, words[d % 8]);
        if (d % 2) fprintf(mx, "{\"task\": \"say\", \"prompt\": \"say %d\", \"completion\": \" %s %s\"}\n", d, words[d % 8], words[(d + 1) % 8]);
    }
    fclose(mx);
    fclose(lm);
    fclose(cl);
    fclose(co);
    fclose(all);
}

static void prepare(const char *in, const char *out) {
    const char *inputs[] = {path_of(in)};
    lf_prepare_opts o = {.tokenizer = tok_path, .inputs = inputs, .n_inputs = 1, .output = path_of(out), .val_fraction = 0.2f,
                         .seed = 1, .quiet = 1};
    lf_prepare_stats s;
    LF_ASSERT(lf_prepare(&o, &s) == LF_OK);
}

/* ---------------------------------------------------------------- task list and rates */

static void test_parse(void) {
    lf_mtl_task_spec sp[LF_MTL_MAX_TASKS];
    int n;
    CHECK(lf_mtl_parse_tasks("[{\"name\":\"a\",\"data\":\"/x\",\"kind\":\"classify\",\"weight\":2,\"prefix\":\"c: \"},"
                             "{\"name\":\"b\",\"data\":\"/y\"}]", sp, &n) == LF_OK && n == 2,
          "parse two tasks: %s", lf_last_error());
    CHECK(n == 2 && sp[0].kind == LF_MTL_CLASSIFY && sp[0].weight == 2.0f && !strcmp(sp[0].metric, "accuracy") &&
              !strcmp(sp[0].prefix, "c: ") && sp[1].kind == LF_MTL_LM && !strcmp(sp[1].metric, "loss") && sp[1].rate == 1.0f,
          "parsed fields (kind %d weight %g metric %s; %d %s)", sp[0].kind, sp[0].weight, sp[0].metric, sp[1].kind, sp[1].metric);
    const char *bad[][2] = {
        {"[{\"name\":\"a\"}]", "needs 'data'"},
        {"[{\"name\":\"a\",\"data\":\"/x\",\"kind\":\"qa\"}]", "kind must be"},
        {"[{\"name\":\"a\",\"data\":\"/x\",\"wieght\":1}]", "unknown field 'wieght'"},
        {"[{\"name\":\"a\",\"data\":\"/x\"},{\"name\":\"a\",\"data\":\"/y\"}]", "two tasks are called 'a'"},
        {"[{\"name\":\"a\",\"data\":\"/x\",\"metric\":\"accuracy\"}]", "needs kind classify"},
        {"[{\"name\":\"a\",\"data\":\"/x\",\"weight\":-1}]", "weight must be"},
        {"{}", "JSON array"},
        {"[", "JSON array"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lf_status st = lf_mtl_parse_tasks(bad[i][0], sp, &n);
        CHECK(st != LF_OK && strstr(lf_last_error(), bad[i][1]), "bad tasks %s: status %d, message '%s' (want '%s')", bad[i][0], st,
              lf_last_error(), bad[i][1]);
    }
}

static void test_rates(void) {
    size_t n[3] = {100, 1000, 10000};
    float fixed[3] = {1, 3, 0};
    double p[3];
    LF_ASSERT(lf_mtl_rates(n, NULL, 3, LF_MTL_MIX_PROPORTIONAL, 0, 1.0f, p) == LF_OK);
    CHECK(fabs(p[0] - 100.0 / 11100) < 1e-12 && fabs(p[2] - 10000.0 / 11100) < 1e-12, "proportional: %g %g %g", p[0], p[1], p[2]);
    LF_ASSERT(lf_mtl_rates(n, NULL, 3, LF_MTL_MIX_PROPORTIONAL, 1000, 1.0f, p) == LF_OK);
    CHECK(fabs(p[0] - 100.0 / 2100) < 1e-12 && fabs(p[1] - 1000.0 / 2100) < 1e-12 && fabs(p[2] - p[1]) < 1e-15,
          "cap 1000: %g %g %g (want %g %g %g)", p[0], p[1], p[2], 100.0 / 2100, 1000.0 / 2100, 1000.0 / 2100);
    LF_ASSERT(lf_mtl_rates(n, NULL, 3, LF_MTL_MIX_PROPORTIONAL, 0, 2.0f, p) == LF_OK);
    double s = 10 + sqrt(1000.0) + 100;
    CHECK(fabs(p[0] - 10 / s) < 1e-12 && fabs(p[1] - sqrt(1000.0) / s) < 1e-12, "temperature 2: %g %g %g", p[0], p[1], p[2]);
    LF_ASSERT(lf_mtl_rates(n, NULL, 3, LF_MTL_MIX_PROPORTIONAL, 0, 1e6f, p) == LF_OK);
    CHECK(fabs(p[0] - 1.0 / 3) < 1e-4 && fabs(p[2] - 1.0 / 3) < 1e-4, "temperature 1e6 ~ uniform: %g %g %g", p[0], p[1], p[2]);
    LF_ASSERT(lf_mtl_rates(n, fixed, 3, LF_MTL_MIX_FIXED, 0, 1.0f, p) == LF_OK);
    CHECK(p[0] == 0.25 && p[1] == 0.75 && p[2] == 0.0, "fixed: %g %g %g", p[0], p[1], p[2]);
    fixed[0] = fixed[1] = 0;
    CHECK(lf_mtl_rates(n, fixed, 3, LF_MTL_MIX_FIXED, 0, 1.0f, p) != LF_OK, "fixed rates all 0 refused");
}

/* ---------------------------------------------------------------- the mixture */

typedef struct {
    lf_shard *sh[3];
    lf_mtl_source_task t[3];
    lf_ids prefix;
} tasks3;

static void open3(tasks3 *k, lf_tokenizer *tok) {
    const char *names[] = {"p_cls/train.bin", "p_lm/train.bin", "p_comp/train.bin"};
    lf_mtl_kind kinds[] = {LF_MTL_CLASSIFY, LF_MTL_LM, LF_MTL_COMPLETION};
    memset(k, 0, sizeof *k);
    LF_ASSERT(lf_tokenizer_encode(tok, "task: ", 6, 0, &k->prefix) == LF_OK && k->prefix.n > 0);
    for (int i = 0; i < 3; i++) {
        LF_ASSERT(lf_shard_open(&k->sh[i], path_of(names[i]), lf_tokenizer_fingerprint(tok)) == LF_OK);
        k->t[i] = (lf_mtl_source_task){k->sh[i], kinds[i], -1, i == 2 ? k->prefix.ids : NULL, i == 2 ? (int)k->prefix.n : 0};
    }
}

static void close3(tasks3 *k) {
    for (int i = 0; i < 3; i++) lf_shard_close(k->sh[i]);
    lf_ids_free(&k->prefix);
}

static void test_mixture(lf_tokenizer *tok) {
    tasks3 k;
    open3(&k, tok);
    int B = 8, T = 24;
    lf_batch_source *src;
    LF_ASSERT(lf_mtl_source_new(&src, k.t, 3, NULL, T, 42) == LF_OK);
    size_t nex[3];
    for (int i = 0; i < 3; i++) nex[i] = lf_mtl_source_examples(src, i);
    CHECK(nex[0] > 100 && nex[2] > 20 && nex[1] > 10, "examples per task: %zu %zu %zu", nex[0], nex[1], nex[2]);
    double p[3];
    LF_ASSERT(lf_mtl_rates(nex, NULL, 3, LF_MTL_MIX_PROPORTIONAL, 0, 2.0f, p) == LF_OK);
    LF_ASSERT(lf_mtl_source_set_rates(src, p) == LF_OK);
    lf_batch b;
    LF_ASSERT(lf_batch_alloc(&b, B, T) == LF_OK);
    size_t cnt[3] = {0, 0, 0}, rows = 0;
    int prefix_ok = 1, lm_ok = 1, cls_ok = 1;
    for (int it = 0; it < 2500; it++) {
        LF_ASSERT(src->next(src, &b) == LF_OK);
        for (int r = 0; r < B; r++) {
            int t = b.task[r];
            LF_ASSERT(t >= 0 && t < 3);
            cnt[t]++;
            rows++;
            const int32_t *in = b.inputs + (size_t)r * T, *tg = b.targets + (size_t)r * T;
            if (t == 2) /* the prefix leads, without loss */
                for (size_t q = 0; q < k.prefix.n; q++) prefix_ok &= in[q] == k.prefix.ids[q] && tg[q] == -1;
            if (t == 1) /* a language-modelling window: every position a target, the next input */
                for (int q = 0; q + 1 < T; q++) lm_ok &= tg[q] >= 0 && tg[q] == in[q + 1];
            if (t == 0) { /* a classification document: the prompt carries no loss, the label does */
                int first = -1;
                for (int q = 0; q < T && first < 0; q++)
                    if (tg[q] >= 0) first = q;
                cls_ok &= first > 0 && tg[0] == -1;
            }
        }
    }
    double chi2 = 0.0;
    for (int t = 0; t < 3; t++) {
        double e = p[t] * rows;
        chi2 += (cnt[t] - e) * (cnt[t] - e) / e;
    }
    /* 13.82: the 0.999 quantile of chi-square with 2 degrees of freedom */
    CHECK(chi2 < 13.82, "mixture proportions: chi2 %.2f over %zu rows (counts %zu %zu %zu, expected %.0f %.0f %.0f)", chi2, rows, cnt[0],
          cnt[1], cnt[2], p[0] * rows, p[1] * rows, p[2] * rows);
    CHECK(prefix_ok && lm_ok && cls_ok, "row contents: prefix %d, lm windows %d, classification rows %d", prefix_ok, lm_ok, cls_ok);

    /* exact resume: batches 4..9 of a source restored at state 3 are those of an uninterrupted one */
    lf_batch_source *a, *c;
    LF_ASSERT(lf_mtl_source_new(&a, k.t, 3, p, T, 7) == LF_OK && lf_mtl_source_new(&c, k.t, 3, p, T, 7) == LF_OK);
    uint64_t w[LF_SOURCE_STATE_MAX];
    lf_batch b2;
    LF_ASSERT(lf_batch_alloc(&b2, B, T) == LF_OK);
    int nw = 0;
    for (int i = 0; i < 3; i++) {
        LF_ASSERT(a->next(a, &b) == LF_OK);
        nw = a->get_state(a, w);
    }
    CHECK(nw == 1 && w[0] == 3, "mixture state after 3 batches: %d words, [0] = %llu", nw, (unsigned long long)w[0]);
    CHECK(c->set_state(c, w, nw) == LF_OK, "set_state");
    uint64_t bad[2] = {1, 2};
    CHECK(c->set_state(c, bad, 2) != LF_OK, "a 2-word state is refused");
    int same = 1;
    for (int i = 0; i < 6; i++) {
        LF_ASSERT(a->next(a, &b) == LF_OK && c->next(c, &b2) == LF_OK);
        same &= !memcmp(b.inputs, b2.inputs, (size_t)B * T * 4) && !memcmp(b.targets, b2.targets, (size_t)B * T * 4) &&
                !memcmp(b.task, b2.task, (size_t)B * 4);
    }
    CHECK(same, "resumed mixture batches equal the uninterrupted ones");
    lf_batch_free(&b2);
    lf_batch_source_free(a);
    lf_batch_source_free(c);
    lf_batch_free(&b);
    lf_batch_source_free(src);
    close3(&k);
}

/* one task of a shard with task ids: only its documents are drawn, and lmforge eval's per-task
 * loss counts exactly its masked targets */
static void test_shared_shard(lf_tokenizer *tok) {
    lf_shard *tr, *va;
    uint64_t fp = lf_tokenizer_fingerprint(tok);
    LF_ASSERT(lf_shard_open(&tr, path_of("p_mixed/train.bin"), fp) == LF_OK && lf_shard_open(&va, path_of("p_mixed/val.bin"), fp) == LF_OK);
    size_t docs[2] = {0, 0}, targets[2] = {0, 0};
    for (size_t d = 0; d < lf_shard_num_docs(tr); d++) docs[lf_shard_doc_task(tr, d)]++;
    for (size_t d = 0; d < lf_shard_num_docs(va); d++)
        for (size_t y = lf_shard_doc_start(va, d) + 1; y < lf_shard_doc_start(va, d + 1); y++)
            targets[lf_shard_doc_task(va, d)] += (size_t)lf_shard_is_target(va, y);
    int B = 4, T = 32;
    for (int t = 0; t < 2; t++) {
        lf_mtl_source_task st = {tr, LF_MTL_COMPLETION, t, NULL, 0};
        lf_batch_source *src;
        LF_ASSERT(lf_mtl_task_source_new(&src, &st, T) == LF_OK);
        CHECK(lf_mtl_source_examples(src, 0) == docs[t], "task %d of the shared shard: %zu examples, %zu documents", t,
              lf_mtl_source_examples(src, 0), docs[t]);
        lf_batch_source_free(src);
    }
    lf_config cfg = cfg_small(lf_tokenizer_vocab_size(tok));
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK);
    lf_model_init_weights(m, 2);
    double sum[2];
    size_t cnt[2];
    CHECK(lf_mtl_eval_shard(m, va, T, B, 0, 2, sum, cnt) == LF_OK, "eval shard: %s", lf_last_error());
    CHECK(cnt[0] == targets[0] && cnt[1] == targets[1] && cnt[0] > 0 && cnt[1] > 0 && isfinite(sum[0]) && isfinite(sum[1]),
          "per-task targets %zu %zu, in the shard %zu %zu (sums %g %g)", cnt[0], cnt[1], targets[0], targets[1], sum[0], sum[1]);
    /* the per-task sum is the sum of the rows' cross-entropy: one task's documents as one batch */
    lf_mtl_source_task st = {va, LF_MTL_COMPLETION, 1, NULL, 0};
    lf_batch_source *src;
    LF_ASSERT(lf_mtl_task_source_new(&src, &st, T) == LF_OK);
    size_t n = lf_mtl_source_examples(src, 0);
    lf_batch b;
    LF_ASSERT(lf_batch_alloc(&b, (int)n, T) == LF_OK && src->next(src, &b) == LF_OK);
    double s1 = 0.0;
    size_t c1 = 0;
    LF_ASSERT(lf_loss_ce_eval(m, &b, &s1, &c1) == LF_OK);
    CHECK(c1 == cnt[1] && fabs(s1 - sum[1]) < 1e-4 * fabs(s1), "task 1 in one batch: %zu targets, %.6f nats; per batches of %d: %.6f", c1, s1, B,
          sum[1]);
    lf_batch_free(&b);
    lf_batch_source_free(src);
    lf_model_free(m);
    lf_shard_close(tr);
    lf_shard_close(va);
}

/* ---------------------------------------------------------------- loss gradients */

static lf_config cfg_small(int V) {
    lf_config c;
    lf_config_defaults(&c, LF_ARCH_LLAMA);
    c.vocab_size = V;
    c.d_model = 16;
    c.n_layer = 1;
    c.n_head = 4;
    c.n_kv_head = 2;
    c.head_dim = 4;
    c.d_ff = 24;
    c.max_seq = 32;
    c.tie_embeddings = 0;
    c.init_std = 0.3f;
    return c;
}

typedef struct {
    lf_model *m;
    lf_loss_term *term;
    lf_batch *b;
} obj_ctx;

static double objective(void *p) {
    obj_ctx *c = p;
    double total;
    LF_ASSERT(lf_loss_forward(c->m, &c->term, 1, c->b, NULL, &total) == LF_OK);
    return total;
}

static void test_loss_fd(int uncertainty) {
    const char *what = uncertainty ? "uncertainty" : "static";
    lf_config cfg = cfg_small(23);
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK);
    lf_model_init_weights(m, 5);
    lf_param *s = NULL;
    if (uncertainty) {
        LF_ASSERT(lf_mtl_add_log_vars(m, 3, &s) == LF_OK);
        CHECK(s->data[0] == -0.5f && !(s->flags & LF_PARAM_DECAY), "log-variances start at -0.5, no weight decay");
        s->data[1] = 0.4f; /* away from the start, so both signs of the gradient are exercised */
    }
    int B = 4, T = 6;
    lf_batch b;
    LF_ASSERT(lf_batch_alloc(&b, B, T) == LF_OK);
    for (size_t i = 0; i < (size_t)B * T; i++) {
        b.inputs[i] = (int32_t)(lf_hash64(3, 0, i) % 23);
        b.targets[i] = i % 5 == 0 ? -1 : (int32_t)(lf_hash64(3, 1, i) % 23);
    }
    int tasks[4] = {0, 2, 2, 1};
    memcpy(b.task, tasks, sizeof tasks);
    b.row_weight[3] = 1.5f;
    float w[3] = {1.0f, 0.5f, 2.0f};
    lf_loss_term *term = lf_mtl_loss_new(3, w, s);
    LF_ASSERT(term);
    obj_ctx c = {m, term, &b};
    LF_ASSERT(lf_model_alloc_grads(m) == LF_OK);
    lf_model_zero_grad(m);
    double v = objective(&c);
    /* the value from the task losses, by hand */
    double L[3], want = 0.0;
    lf_mtl_loss_last(term, L);
    for (int t = 0; t < 3; t++) want += uncertainty ? w[t] * 0.5 * (exp(-s->data[t]) * L[t] + s->data[t]) : w[t] * L[t];
    CHECK(fabs(v - want) < 1e-9 * fabs(want) + 1e-12, "%s: value %.9g, from the task losses %.9g", what, v, want);
    LF_ASSERT(lf_loss_backward(m, &term, 1, &b, 1.0f) == LF_OK);
    double worst = 0.0;
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        if (!p->grad) continue;
        float *g = tu_alloc(p->numel);
        memcpy(g, p->grad, p->numel * sizeof(float));
        char name[300];
        snprintf(name, sizeof name, "%s weighting: %s", what, p->name);
        double r = tu_fd_check(name, p->data, g, p->numel, objective, &c, 3e-3f, 3e-4, 3e-2, p == s ? 3 : 8);
        if (r > worst) worst = r;
        free(g);
    }
    printf("  %s weighting: worst finite-difference error / allowance %.3f\n", what, worst);
    lf_loss_free(term);
    lf_batch_free(&b);
    lf_model_free(m);
}

/* ---------------------------------------------------------------- PCGrad */

/* the plain reference: each task's gradient copied and projected in the library's order */
static void pcgrad_ref(float *const *g, int n, size_t len, float *out, uint64_t seed, uint64_t step, double **proj) {
    for (size_t k = 0; k < len; k++) out[k] = 0.0f;
    for (int i = 0; i < n; i++) {
        double *gi = proj[i];
        for (size_t k = 0; k < len; k++) gi[k] = g[i][k];
        int order[64];
        lf_pcgrad_order(seed, step, i, n, order);
        for (int q = 0; q < n - 1; q++) {
            int j = order[q];
            double dot = 0.0, nn = 0.0;
            for (size_t k = 0; k < len; k++) {
                dot += gi[k] * g[j][k];
                nn += (double)g[j][k] * g[j][k];
            }
            if (dot < 0.0)
                for (size_t k = 0; k < len; k++) gi[k] -= dot / nn * g[j][k];
        }
    }
    for (size_t k = 0; k < len; k++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) s += proj[i][k];
        out[k] = (float)s;
    }
}

static double dotf(const double *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t k = 0; k < n; k++) s += a[k] * b[k];
    return s;
}

static void test_pcgrad(void) {
    size_t len = 1000;
    float *g[4], *out = tu_alloc(len), *ref = tu_alloc(len);
    double *proj[4];
    for (int i = 0; i < 4; i++) {
        g[i] = tu_alloc(len);
        proj[i] = calloc(len, sizeof(double));
        tu_fill(g[i], len, 100 + (uint64_t)i, 1.0f);
    }
    /* conflicting pair: g1 = -0.7 g0 + noise */
    for (size_t k = 0; k < len; k++) g[1][k] = -0.7f * g[0][k] + 0.3f * g[1][k];
    lf_pcgrad_combine(g, 2, len, out, 1, 5);
    pcgrad_ref(g, 2, len, ref, 1, 5, proj);
    double e = tu_rel_err(out, ref, len);
    double o01 = dotf(proj[0], g[1], len), o10 = dotf(proj[1], g[0], len), d = dotf(proj[0], g[0], len);
    CHECK(e < 1e-5, "pcgrad conflicting pair vs reference: rel err %.3g", e);
    CHECK(fabs(o01) < 1e-6 * d && fabs(o10) < 1e-6 * d, "projected gradients orthogonal to the other task's: %.3g %.3g (|g0|^2 %.3g)",
          o01, o10, d);
    printf("  pcgrad: conflicting pair rel err %.2g, orthogonality %.2g\n", e, fmax(fabs(o01), fabs(o10)) / d);
    /* non-conflicting pair: plain sum */
    for (size_t k = 0; k < len; k++) g[1][k] = 0.5f * g[0][k] + 0.2f * g[2][k];
    lf_pcgrad_combine(g, 2, len, out, 1, 5);
    for (size_t k = 0; k < len; k++) ref[k] = g[0][k] + g[1][k];
    e = tu_rel_err(out, ref, len);
    CHECK(e < 1e-6, "pcgrad non-conflicting pair = sum: rel err %.3g", e);
    /* four tasks, some conflicting, over several steps (orders) */
    for (size_t k = 0; k < len; k++) {
        g[2][k] = -0.4f * g[0][k] + 0.5f * g[2][k];
        g[3][k] = -0.3f * g[1][k] + 0.6f * g[3][k];
    }
    double worst = 0.0;
    for (uint64_t step = 0; step < 6; step++) {
        lf_pcgrad_combine(g, 4, len, out, 9, step);
        pcgrad_ref(g, 4, len, ref, 9, step, proj);
        e = tu_rel_err(out, ref, len);
        if (e > worst) worst = e;
    }
    CHECK(worst < 1e-5, "pcgrad 4 tasks vs reference: worst rel err %.3g", worst);
    printf("  pcgrad: 4 tasks worst rel err %.2g\n", worst);
    int order[8], seen = 0;
    lf_pcgrad_order(3, 4, 1, 4, order);
    for (int q = 0; q < 3; q++) seen |= 1 << order[q];
    CHECK(seen == (1 | 4 | 8), "order of task 1 holds the other tasks once: mask %x", seen);
    for (int i = 0; i < 4; i++) {
        free(g[i]);
        free(proj[i]);
    }
    free(out);
    free(ref);
}

/* ---------------------------------------------------------------- the trainer's seam */

static void sum_combine(lf_grad_surgery *s, float *const *g, int n, size_t len, float *out, int step) {
    (void)s;
    (void)step;
    for (size_t k = 0; k < len; k++) {
        float v = 0.0f;
        for (int i = 0; i < n; i++) v += g[i][k];
        out[k] = v;
    }
}

static void train_steps(lf_tokenizer *tok, int surgery, lf_model **out, float *losses) {
    tasks3 k;
    open3(&k, tok);
    lf_config cfg = cfg_small(lf_tokenizer_vocab_size(tok));
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK);
    lf_model_init_weights(m, 8);
    lf_batch_source *src;
    LF_ASSERT(lf_mtl_source_new(&src, k.t, 3, NULL, 24, 3) == LF_OK);
    lf_trainer_opts o = {0};
    o.ctx = (lf_ctx){1, 5};
    o.B = 6;
    o.T = 24;
    o.grad_accum = 2;
    lf_adamw_defaults(&o.adamw);
    o.adamw.grad_clip = 0.0f;
    o.schedule = (lf_schedule){LF_SCHED_CONSTANT, 1e-3f, 1e-3f, 0, 10};
    lf_trainer *tr;
    LF_ASSERT(lf_trainer_init(&tr, m, src, &o) == LF_OK);
    float w[3] = {1.0f, 0.5f, 2.0f};
    LF_ASSERT(lf_trainer_add_loss(tr, lf_mtl_loss_new(3, w, NULL)) == LF_OK);
    if (surgery == 1) {
        lf_grad_surgery *s = calloc(1, sizeof *s);
        *s = (lf_grad_surgery){"sum", NULL, 3, sum_combine, (void (*)(lf_grad_surgery *))free};
        LF_ASSERT(lf_trainer_set_grad_surgery(tr, s) == LF_OK);
    } else if (surgery == 2) {
        LF_ASSERT(lf_trainer_set_grad_surgery(tr, lf_pcgrad_surgery(3, 5)) == LF_OK);
    }
    for (int i = 0; i < 3; i++) {
        lf_step_info si;
        LF_ASSERT(lf_trainer_step(tr, &si, NULL) == LF_OK);
        losses[i] = si.loss;
    }
    lf_trainer_free(tr);
    lf_batch_source_free(src);
    close3(&k);
    *out = m;
}

static void test_surgery_seam(lf_tokenizer *tok) {
    lf_model *a, *b, *c;
    float la[3], lb[3], lc[3];
    train_steps(tok, 0, &a, la);
    train_steps(tok, 1, &b, lb);
    train_steps(tok, 2, &c, lc);
    double worst = 0.0, moved = 0.0;
    for (int i = 0; i < lf_model_num_params(a); i++) {
        lf_param *p = lf_model_param(a, i), *q = lf_model_param(b, i), *r = lf_model_param(c, i);
        double e = tu_rel_err(q->data, p->data, p->numel), f = tu_rel_err(r->data, p->data, p->numel);
        if (e > worst) worst = e;
        if (f > moved) moved = f;
    }
    /* per-task sub-batches summed = the whole batch: the same weights up to float rounding */
    CHECK(worst < 2e-5, "grad surgery with a plain sum vs the ordinary step: weights differ by %.3g (rel)", worst);
    CHECK(fabs(la[0] - lb[0]) < 1e-5f * fabsf(la[0]), "first-step loss with and without the seam: %.7f %.7f", la[0], lb[0]);
    CHECK(moved > 0.0 && isfinite(lc[2]), "pcgrad steps run and change the result (max rel diff %.3g, loss %.4f)", moved, lc[2]);
    printf("  grad-surgery seam (sum) vs plain step: max rel weight diff %.2g; pcgrad differs by %.2g\n", worst, moved);
    lf_model_free(a);
    lf_model_free(b);
    lf_model_free(c);
}

/* ---------------------------------------------------------------- lmforge train */

static json_t *read_events(const char *run, const char *event) {
    char p[4400];
    snprintf(p, sizeof p, "%s/metrics.jsonl", run);
    FILE *f = fopen(p, "r");
    json_t *arr = json_array();
    char line[65536];
    while (f && fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        if (j && !strcmp(json_string_value(json_object_get(j, "event")) ?: "", event)) json_array_append(arr, j);
        json_decref(j);
    }
    if (f) fclose(f);
    return arr;
}

static void base_config(lf_train_config *c, const char *run, const char *weighting) {
    lf_train_config_defaults(c);
    snprintf(c->run_dir, sizeof c->run_dir, "%s", path_of(run));
    snprintf(c->tokenizer, sizeof c->tokenizer, "%s", tok_path);
    snprintf(c->tasks, sizeof c->tasks,
             "[{\"name\":\"cls\",\"data\":\"%s\",\"kind\":\"classify\"},{\"name\":\"lm\",\"data\":\"%s\",\"kind\":\"lm\"}]",
             path_of("p_cls"), path_of("p_lm"));
    snprintf(c->task_weighting, sizeof c->task_weighting, "%s", weighting);
    c->d_model = 32;
    c->n_head = 4;
    c->n_kv_head = 2;
    c->n_layer = 2;
    c->d_ff = 64;
    c->context = 24;
    c->batch_size = 8;
    c->lr = 3e-3f;
    c->min_lr = 3e-4f;
    c->warmup_steps = 5;
    c->threads = 1;
    c->quiet = 1;
    c->log_every = 1;
    c->eval_batches = 4;
    c->checkpoint_every = 0;
}

static void test_train_learns(void) {
    lf_train_config c;
    base_config(&c, "run_learn", "static");
    c.max_steps = 120;
    c.eval_every = 60;
    snprintf(c.early_stop_metric, sizeof c.early_stop_metric, "task:cls:accuracy");
    lf_train_result r;
    lf_status st = lf_train(&c, NULL, NULL, &r);
    CHECK(st == LF_OK, "multi-task train: %s", lf_last_error());
    json_t *ev = read_events(c.run_dir, "task_eval");
    double acc0 = NAN, acc1 = NAN, lm0 = NAN, lm1 = NAN;
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e) {
        int step = (int)json_integer_value(json_object_get(e, "step"));
        const char *t = json_string_value(json_object_get(e, "task"));
        if (!strcmp(t, "cls")) *(step == 0 ? &acc0 : &acc1) = json_number_value(json_object_get(e, "accuracy"));
        else *(step == 0 ? &lm0 : &lm1) = json_number_value(json_object_get(e, "loss"));
    }
    CHECK(json_array_size(ev) == 6, "3 evaluations x 2 tasks in metrics.jsonl, found %zu task_eval events", json_array_size(ev));
    CHECK(acc1 >= 0.9, "classification learned: accuracy %.3f -> %.3f", acc0, acc1);
    CHECK(lm1 < lm0 - 1.0, "language modelling learned: loss %.3f -> %.3f", lm0, lm1);
    CHECK(r.best_val_loss <= -acc1 + 1e-6, "early stopping followed -accuracy: best %.4f, last accuracy %.4f", r.best_val_loss, acc1);
    printf("  2-task run (120 steps): classify accuracy %.3f -> %.3f, lm loss %.3f -> %.3f\n", acc0, acc1, lm0, lm1);
    json_decref(ev);
    json_t *stop = read_events(c.run_dir, "stop");
    json_t *tasks = json_object_get(json_array_get(stop, 0), "tasks");
    CHECK(json_is_number(json_object_get(json_object_get(tasks, "cls"), "macro_f1")) &&
              json_is_number(json_object_get(json_object_get(tasks, "lm"), "perplexity")),
          "the stop event's summary holds every task's metrics");
    json_decref(stop);
}

/* an interrupted and resumed run gives the uninterrupted run's losses, bit for bit */
static void test_train_resume(const char *weighting) {
    lf_train_config a, b;
    char ra[64], rb[64];
    snprintf(ra, sizeof ra, "run_full_%s", weighting);
    snprintf(rb, sizeof rb, "run_part_%s", weighting);
    base_config(&a, ra, weighting);
    a.max_steps = 10;
    a.eval_every = 5;
    b = a;
    snprintf(b.run_dir, sizeof b.run_dir, "%s", path_of(rb));
    b.stop_after_steps = 4;
    lf_train_result r;
    CHECK(lf_train(&a, NULL, NULL, &r) == LF_OK, "%s: full run: %s", weighting, lf_last_error());
    CHECK(lf_train(&b, NULL, NULL, &r) == LF_OK && r.reason == LF_STOP_TIME, "%s: first part: %s", weighting, lf_last_error());
    b.stop_after_steps = 0;
    CHECK(lf_train(&b, b.run_dir, NULL, &r) == LF_OK && r.steps == 10, "%s: resumed: %s", weighting, lf_last_error());
    json_t *ea = read_events(a.run_dir, "train"), *eb = read_events(b.run_dir, "train");
    int same = json_array_size(ea) == 10 && json_array_size(eb) == 10;
    for (size_t i = 0; same && i < 10; i++) {
        json_t *x = json_array_get(ea, i), *y = json_array_get(eb, i);
        same &= json_real_value(json_object_get(x, "loss")) == json_real_value(json_object_get(y, "loss"));
        same &= json_equal(json_object_get(x, "task_loss"), json_object_get(y, "task_loss"));
        if (!strcmp(weighting, "uncertainty")) same &= json_equal(json_object_get(x, "task_weight"), json_object_get(y, "task_weight"));
    }
    CHECK(same, "%s: resumed run's step losses (and task losses/weights) equal the uninterrupted run's (%zu and %zu steps logged)",
          weighting, json_array_size(ea), json_array_size(eb));
    if (!strcmp(weighting, "uncertainty")) { /* the learned weights moved */
        json_t *last = json_object_get(json_array_get(ea, 9), "task_weight");
        double w0 = json_real_value(json_object_get(last, "cls"));
        CHECK(json_is_real(json_object_get(last, "cls")) && w0 != 0.5 * exp(0.5), "uncertainty: the weight of cls moved (%.6f)", w0);
    }
    json_decref(ea);
    json_decref(eb);
}

static void test_config_errors(void) {
    lf_train_config c;
    base_config(&c, "run_bad", "static");
    c.max_steps = 2;
    snprintf(c.tasks, sizeof c.tasks, "[{\"name\":\"x\",\"data\":\"%s\",\"kind\":\"lm\"}]", path_of("nowhere"));
    lf_train_result r;
    CHECK(lf_train(&c, NULL, NULL, &r) != LF_OK && strstr(lf_last_error(), "nowhere"), "missing task data named: %s", lf_last_error());
    base_config(&c, "run_bad", "static");
    snprintf(c.early_stop_metric, sizeof c.early_stop_metric, "task:lm:accuracy");
    CHECK(lf_train(&c, NULL, NULL, &r) != LF_OK && strstr(lf_last_error(), "early_stop_metric"), "accuracy of an lm task refused: %s",
          lf_last_error());
    base_config(&c, "run_bad", "sometimes");
    CHECK(lf_train_config_check(&c) != LF_OK && strstr(lf_last_error(), "task_weighting"), "bad weighting refused: %s", lf_last_error());
    lf_train_config_defaults(&c);
    CHECK(lf_train_config_from_json_text(&c, "{\"tasks\": [{\"name\": \"a\", \"data\": \"/d\"}]}", "cfg") == LF_OK &&
              strstr(c.tasks, "\"name\":\"a\""),
          "a JSON array in a config file becomes the tasks text: '%s' (%s)", c.tasks, lf_last_error());
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    LF_ASSERT(mkdtemp(dir));
    make_data();
    const char *corpus[] = {path_of("corpus.txt")};
    const char *specials[] = {"<|endoftext|>"};
    lf_bpe_train_opts bo = {300, 2, specials, 1, 1};
    lf_tokenizer *tok;
    LF_ASSERT(lf_tokenizer_train_bpe(&tok, corpus, 1, &bo) == LF_OK);
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", dir);
    LF_ASSERT(lf_tokenizer_save_json(tok, tok_path) == LF_OK);
    prepare("cls.jsonl", "p_cls");
    prepare("lm.jsonl", "p_lm");
    prepare("comp.jsonl", "p_comp");
    prepare("mixed.jsonl", "p_mixed");

    test_parse();
    test_rates();
    test_mixture(tok);
    test_loss_fd(0);
    test_loss_fd(1);
    test_pcgrad();
    test_shared_shard(tok);
    test_surgery_seam(tok);
    test_config_errors();
    test_train_learns();
    test_train_resume("static");
    test_train_resume("uncertainty");
    test_train_resume("pcgrad");

    lf_tokenizer_free(tok);
    if (!tu_failures) lf_rm_rf(dir);
    return tu_finish("multitask");
}
