/* Sliding-window evaluation scores every target exactly once and equals a hand-made windowing;
 * with stride < context the extra context lowers (or keeps) the loss of a trained-looking model;
 * the sampler is reproducible, top-k 1 / tiny top-p / temperature 0 are greedy, and a high
 * temperature spreads the draws. The KL divergence against a base model: 0 and the same top
 * token against an identical copy, the base's perplexity that of plain eval over the same
 * windows, per-token values equal to a textbook log-softmax computation, llama-perplexity's
 * chunks, a vocabulary mismatch refused; and quantized copies (lf_quant_model) ordered as their
 * precision: Q8_0 closer to the base than Q4_0. */
#include "lmforge/eval.h"
#include "lmforge/loss.h"
#include "lmforge/quant.h"
#include "testutil.h"

static lf_model *small_seeded(int vocab, uint64_t seed) {
    lf_config c;
    lf_config_defaults(&c, LF_ARCH_LLAMA);
    c.vocab_size = vocab;
    c.d_model = 16;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_kv_head = 2;
    c.head_dim = 4;
    c.d_ff = 24;
    c.max_seq = 16;
    c.init_std = 0.3f;
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &c) == LF_OK);
    lf_model_init_weights(m, seed);
    return m;
}

/* the textbook: log-softmax of both rows in double, KL = Σ p_b (log p_b - log p_q) */
static double kld_ref(const float *b, const float *q, int V) {
    double mb = b[0], mq = q[0], sb = 0, sq = 0, kl = 0;
    for (int v = 1; v < V; v++) {
        mb = b[v] > mb ? b[v] : mb;
        mq = q[v] > mq ? q[v] : mq;
    }
    for (int v = 0; v < V; v++) {
        sb += exp(b[v] - mb);
        sq += exp(q[v] - mq);
    }
    for (int v = 0; v < V; v++) {
        double lb = b[v] - mb - log(sb), lq = q[v] - mq - log(sq);
        kl += exp(lb) * (lb - lq);
    }
    return kl;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void kld_tests(const int32_t *ids, size_t n) {
    lf_model *base = small_seeded(23, 5), *same = small_seeded(23, 5), *other = small_seeded(23, 5);
    for (int j = 0; j < lf_model_num_params(other); j++) { /* a perturbed copy, as a quantized one is */
        lf_param *p = lf_model_param(other, j);
        for (size_t e = 0; e < p->numel; e++) p->data[e] += 0.1f * lf_randn(11, (uint64_t)j, e);
    }
    lf_kld_opts o = {8, 4, 0};
    lf_kld_result r;
    CHECK(lf_kld_sequence(same, base, ids, n, NULL, &o, &r) == LF_OK, "kld: %s", lf_last_error());
    CHECK(r.count == n - 1 && r.kld_max == 0.0 && r.kld_min == 0.0 && r.same_top == r.count,
          "an identical copy: %zu targets (want %zu), KLD in [%g, %g] (want 0), same top %zu", r.count, n - 1, r.kld_min,
          r.kld_max, r.same_top);
    lf_eval_result e;
    lf_eval_sequence(base, ids, n, NULL, 8, 4, 2, &e);
    double ppl = exp(e.loss_sum / (double)e.targets);
    CHECK(fabs(r.ppl_base - ppl) < 1e-5 * ppl && r.ppl == r.ppl_base, "base perplexity %.6f, plain eval's %.6f (same windows)",
          r.ppl_base, ppl);
    lf_kld_result_free(&r);
    /* a perturbed copy: every token against the textbook, window by window (sliding, 8 / 4; padded
     * to 8 as lf_kld_sequence does, so that the logits are the same floats) */
    CHECK(lf_kld_sequence(other, base, ids, n, NULL, &o, &r) == LF_OK, "kld: %s", lf_last_error());
    double worst = 0, sum = 0, *k = malloc(sizeof *k * r.count);
    size_t i = 0;
    for (size_t b = 0; i < r.count; b += 4) {
        size_t end = b + 8 < n - 1 ? b + 8 : n - 1, first = b == 0 ? 0 : b + 4;
        int32_t x[8];
        for (size_t t = 0; t < 8; t++) x[t] = b + t < end ? ids[b + t] : 0;
        LF_ASSERT(lf_model_forward(base, x, 1, 8, LF_LOGITS_ALL) == LF_OK && lf_model_forward(other, x, 1, 8, LF_LOGITS_ALL) == LF_OK);
        size_t rows;
        const float *lb = lf_model_logits(base, &rows), *lq = lf_model_logits(other, &rows);
        for (size_t p = first; p < end; p++, i++) {
            double want = kld_ref(lb + (p - b) * 23, lq + (p - b) * 23, 23);
            CHECK(r.tokens[i].pos == p, "token %zu at position %zu, want %zu", i, r.tokens[i].pos, p);
            worst = fmax(worst, fabs(r.tokens[i].kld - want));
            k[i] = want;
            sum += want;
        }
    }
    qsort(k, r.count, sizeof *k, cmp_d);
    double med = r.count % 2 ? k[r.count / 2] : 0.5 * (k[r.count / 2 - 1] + k[r.count / 2]);
    CHECK(worst < 1e-12 && r.kld_mean > 0.01, "KLD per token vs the textbook: max |diff| %.3g (mean %.4f)", worst, r.kld_mean);
    CHECK(fabs(r.kld_mean - sum / (double)r.count) < 1e-12 * r.kld_mean && fabs(r.kld_median - med) < 1e-12 * med &&
              fabs(r.kld_max - k[r.count - 1]) < 1e-12 * k[r.count - 1],
          "mean %.8f vs %.8f, median %.8f vs %.8f", r.kld_mean, sum / (double)r.count, r.kld_median, med);
    printf("kld: a perturbed copy: mean %.6f ± %.6f, median %.6f, p99 %.6f, same top %.1f %%, PPL %.3f vs base %.3f; "
           "max |KLD - textbook| %.2g\n",
           r.kld_mean, r.kld_se, r.kld_median, r.kld_p99, 100 * r.same_top_frac, r.ppl, r.ppl_base, worst);
    free(k);
    lf_kld_result_free(&r);
    /* llama-perplexity's chunks: 50 tokens, T = 8: 6 whole windows, each scoring 8 - 1 - 4 = 3 targets */
    lf_kld_opts ch = {8, 0, 1};
    CHECK(lf_kld_sequence(other, base, ids, n, NULL, &ch, &r) == LF_OK && r.count == 18 && r.windows == 6 &&
              r.tokens[0].pos == 4 && r.tokens[3].pos == 12 && r.tokens[17].pos == 46,
          "chunks: %zu targets in %zu windows (want 18 in 6), first positions %zu, %zu", r.count, r.windows,
          r.count ? r.tokens[0].pos : 0, r.count > 3 ? r.tokens[3].pos : 0);
    lf_kld_result_free(&r);
    lf_model *wide = small_seeded(24, 5);
    CHECK(lf_kld_sequence(wide, base, ids, n, NULL, &o, &r) == LF_ERR_ARG, "a vocabulary of 24 against 23 must be refused");
    lf_model_free(wide);
    lf_model_free(base);
    lf_model_free(same);
    lf_model_free(other);
}

/* a model whose linears are whole Q8_0 / Q4_0 blocks (64 and 128 wide), quantized in place */
static lf_model *blocky(lf_qtype t) {
    lf_config c;
    lf_config_defaults(&c, LF_ARCH_LLAMA);
    c.vocab_size = 40;
    c.d_model = 64;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_kv_head = 2;
    c.head_dim = 16;
    c.d_ff = 128;
    c.max_seq = 32;
    c.init_std = 0.1f;
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &c) == LF_OK);
    lf_model_init_weights(m, 8);
    lf_quant_opts o = {.type = t};
    lf_quant_report rep;
    if (t != LF_QT_F32) LF_ASSERT(lf_quant_model(m, &o, &rep) == LF_OK && rep.tensors == 14 && rep.fallbacks == 0);
    return m;
}

static void kld_quantized(void) {
    int32_t ids[200];
    for (size_t i = 0; i < 200; i++) ids[i] = (int32_t)(lf_hash64(4, 0, i) % 40);
    lf_model *base = blocky(LF_QT_F32), *q8 = blocky(LF_QT_Q8_0), *q4 = blocky(LF_QT_Q4_0);
    lf_kld_opts o = {32, 16, 0};
    lf_kld_result r8, r4;
    CHECK(lf_kld_sequence(q8, base, ids, 200, NULL, &o, &r8) == LF_OK && lf_kld_sequence(q4, base, ids, 200, NULL, &o, &r4) == LF_OK,
          "kld of quantized copies: %s", lf_last_error());
    CHECK(r8.kld_mean > 0 && r8.kld_mean < r4.kld_mean && r8.kld_p99 < r4.kld_p99 && r8.same_top >= r4.same_top &&
              r8.same_top_frac > 0.9 && r8.ppl_base == r4.ppl_base,
          "Q8_0: mean KLD %.3g, p99 %.3g, same top %.1f %%; Q4_0: %.3g, %.3g, %.1f %% (Q8_0 must be the closer)", r8.kld_mean,
          r8.kld_p99, 100 * r8.same_top_frac, r4.kld_mean, r4.kld_p99, 100 * r4.same_top_frac);
    printf("kld: quantized copies of a 64-wide Llama: Q8_0 mean %.3g ± %.2g, p99 %.3g, same top %.1f %%; Q4_0 mean %.3g ± %.2g, "
           "p99 %.3g, same top %.1f %%\n",
           r8.kld_mean, r8.kld_se, r8.kld_p99, 100 * r8.same_top_frac, r4.kld_mean, r4.kld_se, r4.kld_p99, 100 * r4.same_top_frac);
    lf_kld_result_free(&r8);
    lf_kld_result_free(&r4);
    lf_model_free(base);
    lf_model_free(q8);
    lf_model_free(q4);
}

static lf_model *small(void) {
    lf_config c;
    lf_config_defaults(&c, LF_ARCH_LLAMA);
    c.vocab_size = 23;
    c.d_model = 16;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_kv_head = 2;
    c.head_dim = 4;
    c.d_ff = 24;
    c.max_seq = 16;
    c.init_std = 0.3f;
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &c) == LF_OK);
    lf_model_init_weights(m, 5);
    return m;
}

int main(void) {
    lf_model *m = small();
    size_t n = 50;
    int32_t ids[50];
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(lf_hash64(9, 0, i) % 23);
    /* stride == context: non-overlapping windows [0,8), [8,16), ... scoring targets 1..49 */
    lf_eval_result r;
    CHECK(lf_eval_sequence(m, ids, n, NULL, 8, 8, 3, &r) == LF_OK, "eval: %s", lf_last_error());
    CHECK(r.targets == n - 1, "stride 8: %zu targets scored, want %zu", r.targets, n - 1);
    double want = 0;
    size_t cnt = 0;
    for (size_t b = 0; b + 1 < n; b += 8) {
        int T = (int)(b + 8 < n - 1 ? 8 : n - 1 - b);
        int32_t x[8], y[8];
        for (int t = 0; t < T; t++) {
            x[t] = ids[b + (size_t)t];
            y[t] = ids[b + (size_t)t + 1];
        }
        double l;
        size_t c;
        lf_batch bt = {x, y, NULL, NULL, 1, T};
        LF_ASSERT(lf_loss_ce_eval(m, &bt, &l, &c) == LF_OK && c == (size_t)T);
        want += l;
        cnt += (size_t)T;
    }
    CHECK(cnt == r.targets && fabs(want - r.loss_sum) < 1e-3 * fabs(want), "windowed loss %.6f vs by hand %.6f", r.loss_sum, want);
    /* overlapping windows still score each target once */
    for (int stride = 1; stride <= 8; stride += 3) {
        lf_eval_sequence(m, ids, n, NULL, 8, stride, 4, &r);
        CHECK(r.targets == n - 1, "stride %d: %zu targets scored, want %zu", stride, r.targets, n - 1);
    }
    uint8_t mask[50];
    for (size_t i = 0; i < n; i++) mask[i] = i % 2;
    lf_eval_sequence(m, ids, n, mask, 8, 4, 2, &r);
    CHECK(r.targets == 25, "masked: %zu targets, want 25 (odd positions 1..49)", r.targets);
    CHECK(lf_eval_sequence(m, ids, n, NULL, 8, 9, 1, &r) == LF_ERR_ARG, "stride > context must be refused");

    /* sampler */
    float logits[23], scratch[46];
    for (int v = 0; v < 23; v++) logits[v] = (float)(v % 7) * 0.3f;
    logits[11] = 5.0f;
    lf_sampler greedy = {0, 0, 1, 1}, k1 = {1.0f, 1, 1.0f, 1}, p0 = {1.0f, 0, 1e-6f, 1}, hot = {5.0f, 0, 1.0f, 3};
    CHECK(lf_sample(logits, 23, &greedy, 0, scratch) == 11, "greedy");
    CHECK(lf_sample(logits, 23, &k1, 5, scratch) == 11, "top-k 1 is greedy");
    CHECK(lf_sample(logits, 23, &p0, 5, scratch) == 11, "tiny top-p is greedy");
    int seen[23] = {0}, distinct = 0, same = 1;
    for (int s = 0; s < 400; s++) {
        int a = lf_sample(logits, 23, &hot, (uint64_t)s, scratch), b = lf_sample(logits, 23, &hot, (uint64_t)s, scratch);
        same &= a == b;
        distinct += !seen[a]++;
    }
    CHECK(same, "sampling is not reproducible for the same (seed, step)");
    CHECK(distinct > 15, "temperature 5 drew only %d distinct tokens in 400 draws", distinct);
    lf_sampler k3 = {5.0f, 3, 1.0f, 3};
    int outside = 0;
    for (int s = 0; s < 200; s++) {
        int a = lf_sample(logits, 23, &k3, (uint64_t)s, scratch);
        outside += !(a == 11 || logits[a] >= 0.3f * 6 - 1e-6f); /* the 3 largest: 11 and two of value 1.8 */
    }
    CHECK(outside == 0, "top-k 3 drew %d tokens outside the top 3", outside);
    lf_model_free(m);
    kld_tests(ids, n);
    kld_quantized();
    return tu_finish("test_eval");
}
