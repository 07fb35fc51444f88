/* Classification: metrics against hand-checked and scikit-learn values (zero_division=0), the
 * bootstrap's intervals (deterministic, around the estimate, degenerate when every answer is
 * right), and label scoring against a brute-force log-likelihood from full forwards on the tiny
 * Hugging Face fixtures (single- and multi-token labels, shared prefixes, truncated prompts).
 * argv[1]: the fixtures folder. */
#include "lmforge/ckpt.h"
#include "lmforge/eval.h"
#include "testutil.h"

static void test_metrics(void) {
    /* 4 classes: class 2 is never gold, class 3 never predicted. scikit-learn 1.9.1:
     * accuracy_score 0.5; f1_score(average='macro', zero_division=0) 0.3; micro 0.5;
     * precision_recall_fscore_support(labels=[0,1,2,3]): P [.6 .6 0 0], R [.6 .6 0 0],
     * F1 [.6 .6 0 0], support [5 5 0 2]; macro P 0.3, macro R 0.3;
     * confusion_matrix [[3 1 1 0] [1 3 1 0] [0 0 0 0] [1 1 0 0]]. */
    int g[] = {0, 0, 0, 1, 1, 1, 1, 3, 3, 0, 1, 0}, p[] = {0, 1, 0, 1, 1, 0, 2, 0, 1, 0, 1, 2};
    size_t cm_want[16] = {3, 1, 1, 0, 1, 3, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0}, sup_want[4] = {5, 5, 0, 2};
    double pr_want[4] = {.6, .6, 0, 0};
    lf_cls_metrics r;
    CHECK(lf_cls_metrics_compute(&r, g, p, 12, 4) == LF_OK, "metrics: %s", lf_last_error());
    CHECK(fabs(r.accuracy - 0.5) < 1e-12, "accuracy %.6f, sklearn 0.5", r.accuracy);
    CHECK(fabs(r.macro_f1 - 0.3) < 1e-12, "macro F1 %.6f, sklearn 0.3", r.macro_f1);
    CHECK(fabs(r.micro_f1 - 0.5) < 1e-12, "micro F1 %.6f, sklearn 0.5", r.micro_f1);
    CHECK(fabs(r.macro_precision - 0.3) < 1e-12 && fabs(r.macro_recall - 0.3) < 1e-12, "macro P %.6f R %.6f, sklearn 0.3 0.3",
          r.macro_precision, r.macro_recall);
    for (int k = 0; k < 4; k++) {
        CHECK(fabs(r.precision[k] - pr_want[k]) < 1e-12 && fabs(r.recall[k] - pr_want[k]) < 1e-12 &&
                  fabs(r.f1[k] - pr_want[k]) < 1e-12,
              "class %d: P %.4f R %.4f F1 %.4f, sklearn %.1f each", k, r.precision[k], r.recall[k], r.f1[k], pr_want[k]);
        CHECK(r.support[k] == sup_want[k], "class %d support %zu, want %zu", k, r.support[k], sup_want[k]);
    }
    for (int i = 0; i < 16; i++) CHECK(r.confusion[i] == cm_want[i], "confusion[%d][%d] %zu, want %zu", i / 4, i % 4, r.confusion[i], cm_want[i]);
    CHECK(isnan(r.acc_ci[0]), "intervals are NaN before the bootstrap");
    lf_cls_metrics_free(&r);

    /* binary by hand: gold 1 1 1 0 0, pred 1 0 1 1 0: class 1 P 2/3 R 2/3; class 0 P 1/2 R 1/2 */
    int g2[] = {1, 1, 1, 0, 0}, p2[] = {1, 0, 1, 1, 0};
    lf_cls_metrics_compute(&r, g2, p2, 5, 2);
    CHECK(fabs(r.f1[1] - 2.0 / 3) < 1e-12 && fabs(r.f1[0] - 0.5) < 1e-12, "binary F1 %.6f %.6f, want 0.5 0.666667", r.f1[0], r.f1[1]);
    CHECK(fabs(r.macro_f1 - (0.5 + 2.0 / 3) / 2) < 1e-12, "binary macro F1 %.6f", r.macro_f1);
    lf_cls_metrics_free(&r);

    /* labels outside 0..K-1 are refused */
    int bad[] = {0, 5};
    CHECK(lf_cls_metrics_compute(&r, bad, bad, 2, 2) == LF_ERR_ARG, "label 5 of 2 classes accepted");

    /* bootstrap: n = 200, 160 right: the 95 % interval of accuracy is about 0.8 ± 0.055 */
    int gb[200], pb[200];
    for (int i = 0; i < 200; i++) {
        gb[i] = i % 3;
        pb[i] = i % 5 == 0 ? (gb[i] + 1) % 3 : gb[i];
    }
    lf_cls_metrics_compute(&r, gb, pb, 200, 3);
    CHECK(lf_cls_bootstrap(&r, gb, pb, 1000, 42) == LF_OK, "bootstrap: %s", lf_last_error());
    double lo = r.acc_ci[0], hi = r.acc_ci[1];
    CHECK(lo < r.accuracy && r.accuracy < hi && hi - lo > 0.08 && hi - lo < 0.14, "accuracy %.3f interval [%.3f, %.3f]",
          r.accuracy, lo, hi);
    CHECK(r.macro_f1_ci[0] < r.macro_f1 && r.macro_f1 < r.macro_f1_ci[1], "macro F1 %.3f outside [%.3f, %.3f]", r.macro_f1,
          r.macro_f1_ci[0], r.macro_f1_ci[1]);
    lf_cls_bootstrap(&r, gb, pb, 1000, 42);
    CHECK(r.acc_ci[0] == lo && r.acc_ci[1] == hi, "the bootstrap is not reproducible for one seed");
    lf_cls_metrics_free(&r);
    lf_cls_metrics_compute(&r, gb, gb, 200, 3);
    lf_cls_bootstrap(&r, gb, gb, 200, 1);
    CHECK(r.acc_ci[0] == 1 && r.acc_ci[1] == 1 && r.macro_f1_ci[0] == 1, "all right: interval [%.3f, %.3f]", r.acc_ci[0], r.acc_ci[1]);
    lf_cls_metrics_free(&r);
}

/* Σ log p(cont | ctx tail) from one full forward with every logit */
static double brute(lf_model *m, const lf_ids *ctx, size_t keep, const lf_ids *cont) {
    int V = lf_model_config(m)->vocab_size;
    size_t n = keep + cont->n;
    int32_t *x = malloc(sizeof(int32_t) * n);
    memcpy(x, ctx->ids + ctx->n - keep, keep * sizeof(int32_t));
    memcpy(x + keep, cont->ids, cont->n * sizeof(int32_t));
    LF_ASSERT(lf_model_forward(m, x, 1, (int)n - 1, LF_LOGITS_ALL) == LF_OK);
    const float *lg = lf_model_logits(m, NULL);
    double s = 0;
    for (size_t j = 0; j < cont->n; j++) {
        const float *r = lg + (keep - 1 + j) * V;
        double z = 0;
        for (int v = 0; v < V; v++) z += exp((double)r[v]);
        s += r[cont->ids[j]] - log(z);
    }
    free(x);
    return s;
}

static void test_scoring(const char *fixtures, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", fixtures, name);
    lf_model *m;
    lf_tokenizer *t;
    if (lf_model_load(&m, path)) {
        CHECK(0, "%s: %s", path, lf_last_error());
        return;
    }
    snprintf(path, sizeof path, "%s/gpt2_tokenizer.json", fixtures);
    LF_ASSERT(lf_tokenizer_load(&t, path) == LF_OK);
    const char *texts[] = {"the movie was good", "a dull and boring story", "it was fine", "what a film, really"};
    /* " very good" and " very bad" share " very" (one row); the single-token labels share the prompt row */
    const char *labels[] = {"good", "bad", "very good", "very bad", "ok"};
    int K = 5;
    for (int trunc = 0; trunc < 2; trunc++) {
        lf_cls_score_opts o = {NULL, NULL, trunc ? 5 : 0, 3, NULL, NULL};
        lf_cls_scores s;
        CHECK(lf_cls_score(m, t, texts, 4, labels, K, &o, &s) == LF_OK, "%s: score: %s", name, lf_last_error());
        if (!s.ll) break;
        double worst = 0;
        for (size_t i = 0; i < 4; i++)
            for (int k = 0; k < K; k++) {
                lf_ids ctx = {0}, cont = {0};
                char p[256], a[64];
                snprintf(p, sizeof p, "%s\nlabel:", texts[i]);
                snprintf(a, sizeof a, " %s", labels[k]);
                LF_ASSERT(lf_tokenizer_encode(t, p, strlen(p), 0, &ctx) == LF_OK);
                LF_ASSERT(lf_tokenizer_encode(t, a, strlen(a), LF_ENC_CONTINUE, &cont) == LF_OK);
                size_t keep = ctx.n;
                if (trunc && keep + cont.n - 1 > 5) keep = 5 - (cont.n - 1);
                CHECK(s.ntok[k] == (int)cont.n, "%s: label %d has %d tokens, want %zu", name, k, s.ntok[k], cont.n);
                double want = brute(m, &ctx, keep, &cont), d = fabs(want - s.ll[i * K + k]);
                if (d > worst) worst = d;
                CHECK(d < 1e-4 * (1 + fabs(want)), "%s: example %zu label %s: %.6f, brute force %.6f", name, i, labels[k],
                      s.ll[i * K + k], want);
                lf_ids_free(&ctx);
                lf_ids_free(&cont);
            }
        for (size_t i = 0; i < 4; i++) {
            const double *ll = s.ll + i * K;
            int b = 0, bn = 0;
            for (int k = 1; k < K; k++) {
                if (ll[k] > ll[b]) b = k;
                if (ll[k] / s.nchars[k] > ll[bn] / s.nchars[bn]) bn = k;
            }
            CHECK(s.pred[i] == b && s.pred_norm[i] == bn, "%s: example %zu predicted %d/%d, argmax %d/%d", name, i, s.pred[i],
                  s.pred_norm[i], b, bn);
        }
        CHECK(!trunc || s.truncated == 4, "%s: %zu truncated prompts, want 4", name, s.truncated);
        printf("%s%s: label log-likelihoods within %.2e of the brute force\n", name, trunc ? " (truncated to 5 tokens)" : "", worst);
        lf_cls_scores_free(&s);
    }
    lf_tokenizer_free(t);
    lf_model_free(m);
}

int main(int argc, char **argv) {
    test_metrics();
    if (argc > 1) {
        char p[4096];
        snprintf(p, sizeof p, "%s/gpt2_tokenizer.json", argv[1]);
        if (!lf_path_exists(p)) {
            printf("test_classify: skipped scoring: fixture missing (%s)\n", p);
        } else {
            test_scoring(argv[1], "hf_gpt2_tiny");
            test_scoring(argv[1], "hf_llama_tiny"); /* GPT-2's ids of these words are all below Llama's 32000 */
        }
    }
    return tu_finish("test_classify");
}
