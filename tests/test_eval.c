/* Sliding-window evaluation scores every target exactly once and equals a hand-made windowing;
 * with stride < context the extra context lowers (or keeps) the loss of a trained-looking model;
 * the sampler is reproducible, top-k 1 / tiny top-p / temperature 0 are greedy, and a high
 * temperature spreads the draws. */
#include "lmforge/eval.h"
#include "lmforge/loss.h"
#include "testutil.h"

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
    return tu_finish("test_eval");
}
