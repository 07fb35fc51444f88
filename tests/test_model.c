/* Whole-model tests on small random configs of both families:
 * - finite differences through the full model (dropout on with a fixed seed, label smoothing,
 *   ignored targets, GQA, tied and untied heads) for a sample of every parameter's gradient;
 * - training: 200 AdamW steps on a built-in text cut the loss far below its start, and two runs
 *   with the same seed and thread count give bit-identical losses;
 * - gradient accumulation of two half batches equals one full batch;
 * - frozen tensors get no gradient buffer and do not move. */
#include "lmforge/loss.h"
#include "lmforge/optim.h"
#include "testutil.h"

/* forward + cross-entropy and its backward, through the loss-term API */
static lf_loss_term *g_ce;
static lf_batch g_b;
static float smoothing_now;
static lf_status ce_forward(lf_model *m, int32_t *x, int32_t *y, int B, int T, float *loss) {
    if (!g_ce) g_ce = lf_loss_ce_new(smoothing_now);
    g_b = (lf_batch){x, y, NULL, NULL, B, T};
    double v = 0;
    lf_status st = lf_loss_forward(m, &g_ce, 1, &g_b, &v, NULL);
    *loss = (float)v;
    return st;
}
static lf_status ce_backward(lf_model *m, float scale) { return lf_loss_backward(m, &g_ce, 1, &g_b, scale); }
static void set_smoothing(float s) {
    lf_loss_free(g_ce);
    g_ce = NULL;
    smoothing_now = s;
}

static lf_config small_config(lf_arch arch, int tied) {
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
    c.tie_embeddings = tied;
    c.init_std = 0.3f; /* large enough that every path carries signal */
    return c;
}

typedef struct {
    lf_model *m;
    int32_t *x, *y;
    int B, T;
} model_ctx;

static double model_loss(void *p) {
    model_ctx *c = p;
    float loss;
    LF_ASSERT(ce_forward(c->m, c->x, c->y, c->B, c->T, &loss) == LF_OK);
    return loss;
}

static void fd_model(lf_arch arch, int tied, float dropout, float smoothing) {
    lf_config cfg = small_config(arch, tied);
    cfg.dropout_embd = cfg.dropout_attn = cfg.dropout_resid = dropout;
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK);
    lf_model_init_weights(m, 42);
    for (int i = 0; i < lf_model_num_params(m); i++) { /* non-trivial norms and biases */
        lf_param *p = lf_model_param(m, i);
        if (p->kind == LF_KIND_NORM || p->kind == LF_KIND_BIAS)
            for (size_t j = 0; j < p->numel; j++) p->data[j] += 0.2f * lf_randn(43, (uint64_t)i, j);
    }
    lf_model_set_training(m, dropout > 0, 777); /* same masks on every call */
    set_smoothing(smoothing);
    model_ctx c = {m, NULL, NULL, 2, 7};
    int32_t x[14], y[14];
    for (int i = 0; i < 14; i++) {
        x[i] = (int32_t)(lf_hash64(5, 0, (uint64_t)i) % 29);
        y[i] = (int32_t)(lf_hash64(5, 1, (uint64_t)i) % 29);
    }
    y[3] = -1; /* ignored positions */
    y[10] = -1;
    c.x = x;
    c.y = y;
    model_loss(&c);
    lf_model_zero_grad(m);
    LF_ASSERT(lf_model_alloc_grads(m) == LF_OK);
    lf_model_zero_grad(m);
    model_loss(&c);
    LF_ASSERT(ce_backward(m, 1.0f) == LF_OK);
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        float *g = tu_alloc(p->numel);
        memcpy(g, p->grad, p->numel * sizeof(float));
        char what[300];
        snprintf(what, sizeof what, "%s %s%s drop=%.1f smooth=%.1f: %s", arch == LF_ARCH_GPT2 ? "gpt2" : "llama",
                 tied ? "tied" : "untied", "", dropout, smoothing, p->name);
        /* float32 model: eps 3e-3 balances truncation (init_std 0.3 is very nonlinear) and rounding */
        tu_fd_check(what, p->data, g, p->numel, model_loss, &c, 3e-3f, 3e-4, 3e-2, 48);
        free(g);
    }
    lf_model_free(m);
}

static const char corpus[] =
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it "
    "was the season of Darkness, it was the spring of hope, it was the winter of despair.";

/* byte-level model over the corpus (vocab 256), returns final loss; records losses */
static float train_run(lf_arch arch, int steps, float *losses, float dropout) {
    set_smoothing(0.0f);
    lf_config c;
    lf_config_defaults(&c, arch);
    c.vocab_size = 256;
    c.d_model = 32;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_kv_head = arch == LF_ARCH_LLAMA ? 2 : 4;
    c.head_dim = 8;
    c.d_ff = arch == LF_ARCH_LLAMA ? 64 : 128;
    c.max_seq = 32;
    c.dropout_resid = c.dropout_attn = dropout;
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &c) == LF_OK);
    lf_model_init_weights(m, 1);
    lf_adamw_config oc;
    lf_adamw_defaults(&oc);
    lf_optim *o;
    LF_ASSERT(lf_optim_init(&o, m, &oc) == LF_OK);
    lf_schedule s = {LF_SCHED_COSINE, 5e-3f, 5e-4f, 10, steps};
    int B = 4, T = 32;
    int32_t x[128], y[128];
    size_t len = sizeof corpus - 1;
    float loss = 0;
    for (int step = 0; step < steps; step++) {
        for (int b = 0; b < B; b++) {
            size_t st = lf_hash64(3, (uint64_t)step, (uint64_t)b) % (len - T - 1);
            for (int t = 0; t < T; t++) {
                x[b * T + t] = (unsigned char)corpus[st + t];
                y[b * T + t] = (unsigned char)corpus[st + t + 1];
            }
        }
        lf_model_set_training(m, 1, lf_hash64(9, 9, (uint64_t)step));
        lf_model_zero_grad(m);
        LF_ASSERT(ce_forward(m, x, y, B, T, &loss) == LF_OK);
        LF_ASSERT(ce_backward(m, 1.0f) == LF_OK);
        float norm;
        LF_ASSERT(lf_optim_step(o, lf_schedule_lr(&s, step), &norm) == LF_OK);
        losses[step] = loss;
    }
    lf_optim_free(o);
    lf_model_free(m);
    return loss;
}

static void test_training(lf_arch arch) {
    float a[200], b[200];
    train_run(arch, 200, a, 0.1f);
    train_run(arch, 200, b, 0.1f);
    const char *nm = arch == LF_ARCH_GPT2 ? "gpt2" : "llama";
    float start = a[0], end = (a[195] + a[196] + a[197] + a[198] + a[199]) / 5;
    printf("%s: 200 steps, loss %.4f -> %.4f\n", nm, start, end);
    CHECK(start > 5.0f && end < 0.5f * start, "%s training: loss %.4f -> %.4f, expected to fall below half", nm, start, end);
    CHECK(memcmp(a, b, sizeof a) == 0, "%s training: two runs with the same seed differ", nm);
}

static void test_accumulation(lf_arch arch) {
    set_smoothing(0.0f);
    lf_config c = small_config(arch, 0);
    c.init_std = 0.05f;
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &c) == LF_OK);
    lf_model_init_weights(m, 7);
    LF_ASSERT(lf_model_alloc_grads(m) == LF_OK);
    int32_t x[32], y[32];
    for (int i = 0; i < 32; i++) {
        x[i] = (int32_t)(lf_hash64(8, 0, (uint64_t)i) % 29);
        y[i] = (int32_t)(lf_hash64(8, 1, (uint64_t)i) % 29);
    }
    float l;
    lf_model_zero_grad(m);
    ce_forward(m, x, y, 4, 8, &l);
    ce_backward(m, 1.0f);
    int n = lf_model_num_params(m);
    float **full = calloc((size_t)n, sizeof *full);
    for (int i = 0; i < n; i++) {
        lf_param *p = lf_model_param(m, i);
        full[i] = tu_alloc(p->numel);
        memcpy(full[i], p->grad, p->numel * sizeof(float));
    }
    lf_model_zero_grad(m);
    ce_forward(m, x, y, 2, 8, &l);
    ce_backward(m, 0.5f);
    ce_forward(m, x + 16, y + 16, 2, 8, &l);
    ce_backward(m, 0.5f);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        lf_param *p = lf_model_param(m, i);
        worst = fmax(worst, tu_rel_err(p->grad, full[i], p->numel));
        free(full[i]);
    }
    free(full);
    CHECK(worst < 1e-5, "gradient accumulation (2 x B=2 vs B=4): rel err %.3g", worst);
    /* freezing: no gradient buffer, no movement */
    int cnt = 0;
    LF_ASSERT(lf_model_set_trainable(m, arch == LF_ARCH_GPT2 ? "transformer.h.0." : "model.layers.0.", 0, &cnt) == LF_OK);
    CHECK(cnt > 0, "freeze matched nothing");
    CHECK(lf_model_set_trainable(m, "no.such.prefix", 0, NULL) == LF_ERR_NOTFOUND, "freezing an unknown prefix must fail");
    lf_adamw_config oc;
    lf_adamw_defaults(&oc);
    lf_optim *o;
    LF_ASSERT(lf_optim_init(&o, m, &oc) == LF_OK);
    lf_param *frozen = lf_model_param(m, arch == LF_ARCH_GPT2 ? 4 : 2);
    float before = frozen->data[0];
    lf_param *head = lf_model_find(m, "lm_head.weight");
    float hbefore = head->data[0];
    lf_model_zero_grad(m);
    ce_forward(m, x, y, 4, 8, &l);
    ce_backward(m, 1.0f);
    lf_optim_step(o, 1e-2f, NULL);
    CHECK(frozen->grad == NULL, "frozen tensor %s has a gradient buffer", frozen->name);
    CHECK(frozen->data[0] == before, "frozen tensor %s moved", frozen->name);
    CHECK(head->data[0] != hbefore, "trainable head did not move");
    lf_optim_free(o);
    lf_model_free(m);
}

static void test_bad_inputs(void) {
    lf_config c = small_config(LF_ARCH_LLAMA, 1);
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &c) == LF_OK);
    int32_t x[4] = {1, 2, 29, 3}, y[4] = {1, 1, 1, 1};
    float l;
    CHECK(ce_forward(m, x, y, 1, 4, &l) == LF_ERR_ARG && strstr(lf_last_error(), "29"),
          "out-of-vocabulary token must be refused, got '%s'", lf_last_error());
    int32_t big[17] = {0};
    CHECK(lf_model_forward(m, big, 1, 17, LF_LOGITS_ALL) == LF_ERR_ARG, "T beyond max_seq must be refused");
    CHECK(lf_model_backward(m) == LF_ERR_ARG, "backward without forward must be refused");
    c.n_kv_head = 3;
    lf_model *m2;
    CHECK(lf_model_init(&m2, &c) == LF_ERR_ARG, "n_kv_head not dividing n_head must be refused");
    lf_model_free(m);
}

/* KV-cache decoding reproduces the full forward's logits at every position */
static void test_decode(lf_arch arch) {
    lf_config c = small_config(arch, arch == LF_ARCH_GPT2);
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &c) == LF_OK);
    lf_model_init_weights(m, 11);
    int32_t x[12];
    for (int i = 0; i < 12; i++) x[i] = (int32_t)(lf_hash64(4, 0, (uint64_t)i) % 29);
    LF_ASSERT(lf_model_forward(m, x, 1, 12, LF_LOGITS_ALL) == LF_OK);
    float *full = tu_alloc(12 * 29), logits[29];
    memcpy(full, lf_model_logits(m, NULL), sizeof(float) * 12 * 29);
    LF_ASSERT(lf_model_cache_init(m, 0) == LF_OK);
    double worst = 0;
    for (int t = 0; t < 12; t++) {
        LF_ASSERT(lf_model_decode(m, x + t, 1, logits) == LF_OK);
        worst = fmax(worst, tu_rel_err(logits, full + t * 29, 29));
    }
    lf_model_cache_reset(m);
    LF_ASSERT(lf_model_decode(m, x, 7, logits) == LF_OK); /* prefill several at once */
    LF_ASSERT(lf_model_decode(m, x + 7, 5, logits) == LF_OK);
    worst = fmax(worst, tu_rel_err(logits, full + 11 * 29, 29));
    CHECK(worst < 1e-5, "%s: KV-cache decode vs full forward: rel err %.3g", arch == LF_ARCH_GPT2 ? "gpt2" : "llama", worst);
    CHECK(lf_model_cache_len(m) == 12, "cache length %d", lf_model_cache_len(m));
    int32_t more[5] = {0};
    CHECK(lf_model_decode(m, more, 5, logits) == LF_ERR_ARG, "decoding past max_seq must be refused");
    free(full);
    lf_model_free(m);
}

int main(void) {
    test_decode(LF_ARCH_GPT2);
    test_decode(LF_ARCH_LLAMA);
    fd_model(LF_ARCH_GPT2, 1, 0.0f, 0.0f);
    fd_model(LF_ARCH_GPT2, 0, 0.1f, 0.1f);
    fd_model(LF_ARCH_LLAMA, 0, 0.0f, 0.0f);
    fd_model(LF_ARCH_LLAMA, 1, 0.1f, 0.1f);
    test_accumulation(LF_ARCH_GPT2);
    test_accumulation(LF_ARCH_LLAMA);
    test_training(LF_ARCH_GPT2);
    test_training(LF_ARCH_LLAMA);
    test_bad_inputs();
    lf_loss_free(g_ce);
    return tu_finish("test_model");
}
