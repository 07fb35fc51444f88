/* Sequence-classification head (src/tech/seqcls.c): finite differences of the head's loss for
 * every parameter (score.weight, the final norm, and the body through the hidden-state path),
 * GPT-2 and Llama, with right-padded rows of different lengths and a LoRA adapter on the path;
 * predictions equal the term's logits; the batch source pads, labels the last real token and
 * resumes from its state; the exported folder loads back with the same head.
 * With --export FIXTURE OUT: attach a random 3-label head to a Hugging Face fixture, export it to
 * OUT and write OUT/lmforge_logits.json (input ids and logits) for tests/seqcls_test.py. */
#include "lmforge/ckpt.h"
#include "lmforge/seqcls.h"
#include "testutil.h"

#include <jansson.h>

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
    c.tie_embeddings = arch == LF_ARCH_GPT2;
    c.init_std = 0.3f;
    return c;
}

typedef struct {
    lf_model *m;
    lf_loss_term *t;
    lf_batch *b;
} obj_ctx;

static double objective(void *p) {
    obj_ctx *c = p;
    double total;
    LF_ASSERT(lf_loss_forward(c->m, &c->t, 1, c->b, NULL, &total) == LF_OK);
    return total;
}

/* rows of lengths len[r] (right padded with pad), label at the last real token */
static void fill_rows(lf_batch *b, const int *len, const int *label, int pad, uint64_t seed, int V) {
    for (int r = 0; r < b->B; r++)
        for (int t = 0; t < b->T; t++) {
            size_t i = (size_t)r * b->T + t;
            b->inputs[i] = t < len[r] ? (int32_t)(lf_hash64(seed, 0, i) % (uint64_t)(V - 1)) : pad;
            b->targets[i] = t == len[r] - 1 ? label[r] : -1;
        }
}

/* three rows of lengths 7, 4, 1 (labels 2, 0, 1), the second weighted 2 */
static void std_rows(lf_batch *b) {
    LF_ASSERT(lf_batch_alloc(b, 3, 7) == LF_OK);
    int len[3] = {7, 4, 1}, lab[3] = {2, 0, 1};
    fill_rows(b, len, lab, 28, 5, 29);
    b->row_weight[1] = 2.0f;
}

/* every parameter with a gradient against finite differences of the objective */
static void fd_params(const char *what, obj_ctx *c) {
    for (int i = 0; i < lf_model_num_params(c->m); i++) {
        lf_param *p = lf_model_param(c->m, i);
        if (!p->grad) continue;
        float *g = tu_alloc(p->numel);
        memcpy(g, p->grad, p->numel * sizeof(float));
        char w[300];
        snprintf(w, sizeof w, "%s: %s", what, p->name);
        tu_fd_check(w, p->data, g, p->numel, objective, c, 3e-3f, 3e-4, 3e-2, 12);
        free(g);
    }
}

static void fd_head(lf_arch arch) {
    const char *an = arch == LF_ARCH_GPT2 ? "gpt2" : "llama";
    lf_config cfg = cfg_small(arch);
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK);
    lf_model_init_weights(m, 3);
    lf_seqcls *h;
    CHECK(lf_seqcls_attach(&h, m, 3, NULL, 7) == LF_OK, "%s: attach: %s", an, lf_last_error());
    for (size_t i = 0; i < lf_seqcls_weight(h)->numel; i++) lf_seqcls_weight(h)->data[i] *= 20; /* a head that matters */
    /* the final norm's parameters away from their init, so their gradients are not trivially symmetric */
    lf_param *nw = lf_model_find(m, arch == LF_ARCH_GPT2 ? "transformer.ln_f.weight" : "model.norm.weight");
    for (size_t i = 0; i < nw->numel; i++) nw->data[i] = 1.0f + 0.3f * lf_randn(11, 0, i);
    /* a LoRA adapter on the path: the head trains through the public seams like any term */
    lf_param *W = lf_model_find(m, arch == LF_ARCH_GPT2 ? "transformer.h.1.mlp.c_fc.weight" : "model.layers.1.mlp.up_proj.weight"), *A, *B;
    LF_ASSERT(lf_model_add_param(m, "lora.A", 2, W->shape[1], LF_KIND_WEIGHT, LF_PARAM_TRAINABLE, &A) == LF_OK);
    LF_ASSERT(lf_model_add_param(m, "lora.B", W->shape[0], 2, LF_KIND_WEIGHT, LF_PARAM_TRAINABLE, &B) == LF_OK);
    for (size_t i = 0; i < A->numel; i++) A->data[i] = 0.3f * lf_randn(12, 0, i);
    for (size_t i = 0; i < B->numel; i++) B->data[i] = 0.3f * lf_randn(13, 0, i);
    LF_ASSERT(lf_model_add_adapter(m, W, A, B, 0.8f, 0.0f, NULL) == LF_OK);
    lf_model_set_training(m, 0, 0);
    lf_batch b;
    std_rows(&b);
    int len[3] = {7, 4, 1};
    lf_loss_term *t = lf_seqcls_loss_new(h);
    obj_ctx c = {m, t, &b};
    LF_ASSERT(lf_model_alloc_grads(m) == LF_OK);
    lf_model_zero_grad(m);
    double v = objective(&c);
    CHECK(isfinite(v) && v > 0, "%s: loss %g", an, v);
    CHECK(lf_loss_backward(m, &t, 1, &b, 1.0f) == LF_OK, "%s: backward: %s", an, lf_last_error());
    char what[100];
    snprintf(what, sizeof what, "%s seqcls head loss", an);
    fd_params(what, &c);
    /* padding after the read token changes nothing: the same rows with other pads give the same loss */
    double v1 = objective(&c);
    for (int r = 0; r < 3; r++)
        for (int tt = len[r]; tt < 7; tt++) b.inputs[r * 7 + tt] = 3;
    double v2 = objective(&c);
    CHECK(fabs(v1 - v2) < 1e-6, "%s: the padding changed the loss (%.8f vs %.8f)", an, v1, v2);
    /* predictions: the term's logits on the same rows */
    int rows;
    const float *z = lf_seqcls_last_logits(t, &rows);
    CHECK(rows == 3, "%s: %d labelled rows, want 3", an, rows);
    float zt[9];
    memcpy(zt, z, sizeof zt);
    lf_loss_free(t);
    lf_batch_free(&b);
    lf_seqcls_free(h);
    lf_model_free(m);
    (void)zt;
}

/* score-head distillation: a teacher of another width (Llama, d_model 24) with its own head; the
 * term's value equals the per-row reference of distill.h (with the row weights) on the two heads'
 * logits, the teacher's logits are its own CE term's on the same rows, finite differences hold for
 * every student parameter, and the teacher gets no gradient */
static void fd_distill(lf_arch arch, lf_distill_kind kind) {
    const char *an = arch == LF_ARCH_GPT2 ? "gpt2" : "llama";
    static const char *const kn[] = {"kl", "rkl", "jsd"};
    lf_config cfg = cfg_small(arch), tcfg = cfg_small(LF_ARCH_LLAMA);
    tcfg.d_model = 24;
    tcfg.head_dim = 6;
    lf_model *m, *tm;
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK && lf_model_init(&tm, &tcfg) == LF_OK);
    lf_model_init_weights(m, 3);
    lf_model_init_weights(tm, 4);
    lf_seqcls *h, *th;
    LF_ASSERT(lf_seqcls_attach(&h, m, 3, NULL, 7) == LF_OK && lf_seqcls_attach(&th, tm, 3, NULL, 8) == LF_OK);
    for (size_t i = 0; i < lf_seqcls_weight(h)->numel; i++) lf_seqcls_weight(h)->data[i] *= 20;
    for (size_t i = 0; i < lf_seqcls_weight(th)->numel; i++) lf_seqcls_weight(th)->data[i] *= 30;
    lf_model_set_training(m, 0, 0);
    lf_model_set_training(tm, 0, 0);
    lf_batch b;
    std_rows(&b);
    const float tau = 2.0f, beta = 0.3f;
    lf_loss_term *t = lf_seqcls_distill_new(h, th, kind, tau, beta);
    CHECK(t != NULL, "%s %s: distill term: %s", an, kn[kind], lf_last_error());
    if (!t) return;
    obj_ctx c = {m, t, &b};
    LF_ASSERT(lf_model_alloc_grads(m) == LF_OK);
    lf_model_zero_grad(m);
    double v = objective(&c);
    int rows;
    const float *zs = lf_seqcls_last_logits(t, &rows), *zt = lf_seqcls_teacher_logits(t);
    double want = 0;
    for (int r = 0; r < rows; r++) want += (r == 1 ? 2.0 : 1.0) * lf_distill_row_ref(kind, zs + 3 * r, zt + 3 * r, 3, tau, beta, NULL);
    want /= rows;
    CHECK(rows == 3 && fabs(v - want) < 1e-6 * fmax(1, fabs(want)) && v > 1e-3, "%s %s: value %.8g, the reference %.8g (%d rows)", an,
          kn[kind], v, want, rows);
    /* the teacher's logits are its own head's on the same rows */
    float ztc[9];
    memcpy(ztc, zt, sizeof ztc);
    lf_loss_term *tce = lf_seqcls_loss_new(th);
    double dummy;
    LF_ASSERT(lf_loss_forward(tm, &tce, 1, &b, NULL, &dummy) == LF_OK);
    const float *zt2 = lf_seqcls_last_logits(tce, NULL);
    double d = 0;
    for (int i = 0; i < 9; i++) d = fmax(d, fabs(zt2[i] - ztc[i]));
    CHECK(d < 1e-5, "%s %s: the term's teacher logits are %.3g from the teacher head's own", an, kn[kind], d);
    lf_loss_free(tce);
    CHECK(lf_loss_backward(m, &t, 1, &b, 1.0f) == LF_OK, "%s %s: backward: %s", an, kn[kind], lf_last_error());
    char what[100];
    snprintf(what, sizeof what, "%s seqcls distill (%s)", an, kn[kind]);
    fd_params(what, &c);
    CHECK(lf_seqcls_weight(th)->grad == NULL, "%s %s: the teacher's head has a gradient buffer", an, kn[kind]);
    CHECK(lf_seqcls_distill_new(h, NULL, kind, tau, beta) == NULL && lf_seqcls_distill_new(h, th, kind, 0.0f, beta) == NULL,
          "%s: a distill term without a teacher, or at temperature 0, was made", an);
    lf_loss_free(t);
    lf_batch_free(&b);
    lf_seqcls_free(h);
    lf_seqcls_free(th);
    lf_model_free(m);
    lf_model_free(tm);
}

/* a tiny byte-level tokenizer is not at hand here: the source and predict run on the GPT-2 fixture tokenizer */
static void test_source_and_predict(const char *fixtures) {
    char p[4096];
    snprintf(p, sizeof p, "%s/gpt2_tokenizer.json", fixtures);
    if (!lf_path_exists(p)) {
        printf("test_seqcls: skipped source/predict: fixture missing (%s)\n", p);
        return;
    }
    lf_tokenizer *tok;
    LF_ASSERT(lf_tokenizer_load(&tok, p) == LF_OK);
    snprintf(p, sizeof p, "%s/hf_gpt2_tiny", fixtures);
    lf_model *m;
    LF_ASSERT(lf_model_load(&m, p) == LF_OK);
    lf_seqcls *h;
    LF_ASSERT(lf_seqcls_attach(&h, m, 2, NULL, 1) == LF_OK);
    const char *texts[] = {"a good film", "bad", "the plot was long and the acting was very flat", "fine"};
    int labels[] = {1, 0, 0, 1};
    /* both cuts of a text over T tokens (the third): its first T (transformers' default) or its
     * last T; predict cuts as the source does */
    lf_batch_source *src = NULL;
    lf_batch b;
    lf_loss_term *t = NULL;
    float pz[8];
    LF_ASSERT(lf_batch_alloc(&b, 4, 8) == LF_OK);
    for (int keep_end = 0; keep_end < 2; keep_end++) {
        lf_batch_source_free(src);
        lf_loss_free(t);
        CHECK(lf_seqcls_source_new(&src, tok, texts, labels, 4, 8, 50256, 3,
                                   LF_SEQCLS_SEQUENTIAL | (keep_end ? LF_SEQCLS_KEEP_END : 0)) == LF_OK,
              "source: %s", lf_last_error());
        LF_ASSERT(src->next(src, &b) == LF_OK);
        for (int r = 0; r < 4; r++) {
            lf_ids ids = {0};
            lf_tokenizer_encode(tok, texts[r], strlen(texts[r]), 0, &ids);
            int len = ids.n < 8 ? (int)ids.n : 8, ok = 1;
            size_t off = keep_end ? ids.n - (size_t)len : 0;
            if (r == 2) CHECK(ids.n > 8, "the long text has %zu tokens: it does not test the cut", ids.n);
            for (int k = 0; k < 8; k++) {
                int want_in = k < len ? ids.ids[off + (size_t)k] : 50256, want_tg = k == len - 1 ? labels[r] : -1;
                ok &= b.inputs[r * 8 + k] == want_in && b.targets[r * 8 + k] == want_tg;
            }
            CHECK(ok, "source row %d: not the text's %s %d tokens + padding with the label on the last token", r,
                  keep_end ? "last" : "first", len);
            lf_ids_free(&ids);
        }
        /* predict == the loss term's logits on the same rows */
        t = lf_seqcls_loss_new(h);
        LF_ASSERT(lf_loss_forward(m, &t, 1, &b, NULL, NULL) == LF_OK);
        int rows;
        const float *z = lf_seqcls_last_logits(t, &rows);
        int pred[4];
        lf_seqcls_set_keep_end(h, keep_end);
        CHECK(lf_seqcls_predict(h, tok, texts, 4, 8, 3, pred, pz) == LF_OK, "predict: %s", lf_last_error());
        double d = 0;
        for (int i = 0; i < 8; i++) d = fmax(d, fabs(pz[i] - z[i]));
        CHECK(rows == 4 && d < 1e-5, "keep_end %d: predict logits differ from the term's by %.3g", keep_end, d);
    }
    double d;
    /* shuffled source: resumes from its state */
    lf_batch_source *s2, *s3;
    LF_ASSERT(lf_seqcls_source_new(&s2, tok, texts, labels, 4, 8, 50256, 9, 0) == LF_OK);
    LF_ASSERT(lf_seqcls_source_new(&s3, tok, texts, labels, 4, 8, 50256, 9, 0) == LF_OK);
    lf_batch b1, b2;
    lf_batch_alloc(&b1, 3, 8);
    lf_batch_alloc(&b2, 3, 8);
    for (int k = 0; k < 3; k++) s2->next(s2, &b1);
    uint64_t w[LF_SOURCE_STATE_MAX];
    int nw = s2->get_state(s2, w);
    CHECK(s3->set_state(s3, w, nw) == LF_OK, "set_state: %s", lf_last_error());
    s2->next(s2, &b1);
    s3->next(s3, &b2);
    CHECK(!memcmp(b1.inputs, b2.inputs, sizeof(int32_t) * 24) && !memcmp(b1.targets, b2.targets, sizeof(int32_t) * 24),
          "a resumed source gives another batch");
    /* export and load back: the head comes with the folder */
    char dir[] = "/tmp/lf_seqcls_XXXXXX";
    LF_ASSERT(mkdtemp(dir));
    const char *names[] = {"neg", "pos"};
    CHECK(lf_seqcls_export(h, dir, names, 50256) == LF_OK, "export: %s", lf_last_error());
    lf_model *m2;
    lf_seqcls *h2;
    CHECK(lf_model_load(&m2, dir) == LF_OK, "load the export: %s", lf_last_error());
    CHECK(lf_seqcls_attach(&h2, m2, 0, dir, 0) == LF_OK && lf_seqcls_trained(h2) && lf_seqcls_num_labels(h2) == 2,
          "the export's head: %s", lf_last_error());
    CHECK(lf_seqcls_label_name(h2, 1) && !strcmp(lf_seqcls_label_name(h2, 1), "pos"), "id2label not read back");
    CHECK(lf_seqcls_keep_end(h2) == 1, "truncation_side (left) not read back from the export's config.json");
    float pz2[8];
    lf_seqcls_predict(h2, tok, texts, 4, 8, 4, NULL, pz2);
    d = 0;
    for (int i = 0; i < 8; i++) d = fmax(d, fabs(pz2[i] - pz[i]));
    CHECK(d < 1e-6, "the loaded export predicts logits %.3g away", d);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    lf_seqcls_free(h2);
    lf_model_free(m2);
    lf_batch_free(&b1);
    lf_batch_free(&b2);
    lf_batch_source_free(s2);
    lf_batch_source_free(s3);
    lf_loss_free(t);
    lf_batch_free(&b);
    lf_batch_source_free(src);
    lf_seqcls_free(h);
    lf_model_free(m);
    lf_tokenizer_free(tok);
}

/* --export FIXTURE OUT: a head on a transformers fixture, exported, with lmforge's logits */
static int export_for_python(const char *fixture, const char *out) {
    lf_model *m;
    lf_seqcls *h;
    if (lf_model_load(&m, fixture) || lf_seqcls_attach(&h, m, 3, NULL, 21)) {
        fprintf(stderr, "%s: %s\n", fixture, lf_last_error());
        return 1;
    }
    for (size_t i = 0; i < lf_seqcls_weight(h)->numel; i++) lf_seqcls_weight(h)->data[i] *= 10;
    const lf_config *c = lf_model_config(m);
    int V = c->vocab_size, pad = V - 1, B = 3, T = 9, len[3] = {9, 5, 2}, lab[3] = {0, 1, 2};
    lf_batch b;
    LF_ASSERT(lf_batch_alloc(&b, B, T) == LF_OK);
    fill_rows(&b, len, lab, pad, 77, V);
    lf_loss_term *t = lf_seqcls_loss_new(h);
    double loss;
    if (lf_loss_forward(m, &t, 1, &b, NULL, &loss) || lf_seqcls_export(h, out, NULL, pad)) {
        fprintf(stderr, "%s\n", lf_last_error());
        return 1;
    }
    int rows;
    const float *z = lf_seqcls_last_logits(t, &rows);
    json_t *j = json_object(), *ids = json_array(), *lg = json_array();
    for (int r = 0; r < B; r++) {
        json_t *row = json_array(), *zr = json_array();
        for (int i = 0; i < T; i++) json_array_append_new(row, json_integer(b.inputs[r * T + i]));
        for (int k = 0; k < 3; k++) json_array_append_new(zr, json_real(z[r * 3 + k]));
        json_array_append_new(ids, row);
        json_array_append_new(lg, zr);
    }
    json_object_set_new(j, "input_ids", ids);
    json_object_set_new(j, "logits", lg);
    json_object_set_new(j, "loss", json_real(loss));
    json_object_set_new(j, "labels", json_pack("[i,i,i]", 0, 1, 2));
    char p[4200];
    snprintf(p, sizeof p, "%s/lmforge_logits.json", out);
    int rc = json_dump_file(j, p, JSON_COMPACT | JSON_REAL_PRECISION(9)) ? 1 : 0;
    json_decref(j);
    lf_loss_free(t);
    lf_batch_free(&b);
    lf_seqcls_free(h);
    lf_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--export")) return export_for_python(argv[2], argv[3]);
    fd_head(LF_ARCH_GPT2);
    fd_head(LF_ARCH_LLAMA);
    fd_distill(LF_ARCH_GPT2, LF_DISTILL_KL);
    fd_distill(LF_ARCH_LLAMA, LF_DISTILL_JSD);
    fd_distill(LF_ARCH_LLAMA, LF_DISTILL_RKL);
    if (argc > 1) test_source_and_predict(argv[1]);
    return tu_finish("test_seqcls");
}
