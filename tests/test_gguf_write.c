/* GGUF writer (lf_gguf_save) against lmforge's own reader, for a tiny llama (untied head) and a tiny
 * gpt2 (tied): f32 reads back bit for bit; f16 reads back as the float16 rounding of every weight;
 * for each block type, a model quantized in memory (lf_quant_model, head float32) and exported reads
 * back with --keep-quantized holding the same bytes and giving the same logits bit for bit, and dequantized
 * within 1e-4; the writer encoding a float32 model gives the same file byte for byte as exporting the
 * model lf_quant_model quantized; a tensor in another type is re-encoded; the report counts types and
 * fallbacks; extra tensors and unwritable types are refused and leave no file. The gguf package and
 * transformers check the same files from outside (tests/gguf_export_test.py). */
#include "testutil.h"
#include "lmforge/ckpt.h"
#include "lmforge/quant.h"

#include <dirent.h>
#include <unistd.h>

static char dir[256];

static lf_config cfg_of(lf_arch arch, int F) {
    lf_config c;
    lf_config_defaults(&c, arch);
    c.vocab_size = 300;
    c.d_model = 256;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_kv_head = arch == LF_ARCH_LLAMA ? 2 : 4;
    c.head_dim = 64;
    c.d_ff = F;
    c.max_seq = 32;
    c.tie_embeddings = arch == LF_ARCH_GPT2;
    c.init_std = 0.05f;
    c.eos_id = 299;
    return c;
}

static lf_model *tiny(const lf_config *c) {
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, c) == LF_OK);
    lf_model_init_weights(m, 17);
    for (int i = 0; i < lf_model_num_params(m); i++) { /* norms and biases away from 1 and 0: a misplaced one shows */
        lf_param *p = lf_model_param(m, i);
        if (p->ndim == 1)
            for (size_t k = 0; k < p->numel; k++) p->data[k] += 0.1f * lf_randn(3, (uint64_t)i, k);
    }
    return m;
}

static float *logits(lf_model *m, const int32_t *ids, int B, int T) {
    LF_ASSERT(lf_model_forward(m, ids, B, T, LF_LOGITS_ALL) == LF_OK);
    size_t rows;
    const float *l = lf_model_logits(m, &rows);
    size_t n = rows * (size_t)lf_model_config(m)->vocab_size;
    float *c = tu_alloc(n);
    memcpy(c, l, n * sizeof(float));
    return c;
}

static lf_model *load(const char *path, int keep) {
    lf_model *m = NULL;
    lf_gguf_load_opts o = {.keep_quantized = keep};
    lf_status st = lf_gguf_load_with(&m, NULL, path, &o);
    CHECK(st == LF_OK, "load %s: %s", path, lf_last_error());
    return m;
}

static void save(lf_model *m, const char *path, lf_qtype t, lf_qtype embed, lf_gguf_save_report *rep) {
    lf_gguf_save_opts o;
    lf_gguf_save_opts_default(&o, t);
    o.embed = embed;
    o.report = rep;
    lf_status st = lf_gguf_save(m, NULL, path, &o);
    CHECK(st == LF_OK, "save %s: %s", path, lf_last_error());
}

static char *slurp(const char *path, size_t *n) {
    char *b = lf_read_file(path, n);
    LF_ASSERT(b);
    return b;
}

static int tmp_files_left(void) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

static void family(lf_arch arch) {
    const char *an = arch == LF_ARCH_LLAMA ? "llama" : "gpt2";
    lf_config c = cfg_of(arch, 512);
    lf_model *base = tiny(&c);
    int32_t ids[2 * 12];
    for (int i = 0; i < 24; i++) ids[i] = (int32_t)((i * 37 + 5) % c.vocab_size);
    float *l0 = logits(base, ids, 2, 12);
    size_t nl = (size_t)24 * c.vocab_size;
    char p32[512], p16[512], pa[512], pb[512], pr[512];
    snprintf(p32, sizeof p32, "%s/%s_f32.gguf", dir, an);
    snprintf(p16, sizeof p16, "%s/%s_f16.gguf", dir, an);

    /* f32: every tensor and the logits bit for bit; the config survives; without a tokenizer the
     * file says no_vocab (llama.cpp needs tokenizer.ggml.model), which our tokenizer reader names */
    save(base, p32, LF_QT_F32, LF_QT_F32, NULL);
    lf_gguf *g;
    if (lf_gguf_open(&g, p32) == LF_OK) {
        size_t len = 0;
        const char *tm = lf_gguf_get_str(g, "tokenizer.ggml.model", &len);
        lf_tokenizer *t = NULL;
        lf_status ts = lf_gguf_tokenizer(&t, g);
        CHECK(tm && len == 8 && !memcmp(tm, "no_vocab", 8) && ts == LF_ERR_NOTFOUND && strstr(lf_last_error(), "no vocabulary"),
              "%s: a file without a tokenizer: model '%.*s', tokenizer status %d '%s'", an, (int)len, tm ? tm : "", ts,
              lf_last_error());
        lf_tokenizer_free(t);
        lf_gguf_close(g);
    }
    lf_model *m = load(p32, 0);
    if (m) {
        const lf_config *r = lf_model_config(m);
        CHECK(r->d_model == c.d_model && r->n_layer == c.n_layer && r->n_kv_head == c.n_kv_head && r->d_ff == c.d_ff &&
                  r->max_seq == c.max_seq && r->norm_eps == c.norm_eps && r->tie_embeddings == c.tie_embeddings &&
                  r->eos_id == c.eos_id && r->vocab_size == c.vocab_size,
              "%s f32: config read back differs", an);
        int same = 1;
        for (int i = 0; i < lf_model_num_params(base); i++) {
            lf_param *a = lf_model_param(base, i), *b = lf_model_find(m, a->name);
            same &= b && memcmp(a->data, b->data, a->numel * sizeof(float)) == 0;
        }
        CHECK(same, "%s f32: a tensor read back differs", an);
        float *l = logits(m, ids, 2, 12);
        CHECK(memcmp(l, l0, nl * sizeof(float)) == 0, "%s f32: logits differ (rel %.3e)", an, tu_rel_err(l, l0, nl));
        printf("%s f32: %d tensors and the logits read back bit for bit\n", an, lf_model_num_params(base));
        free(l);
        lf_model_free(m);
    }

    /* f16: every weight read back is its float16 rounding, norms and biases exact */
    save(base, p16, LF_QT_F16, LF_QT_F16, NULL);
    if ((m = load(p16, 0))) {
        int bad = 0;
        for (int i = 0; i < lf_model_num_params(base); i++) {
            lf_param *a = lf_model_param(base, i), *b = lf_model_find(m, a->name);
            for (size_t k = 0; k < a->numel; k++) {
                int f32 = a->ndim == 1 || strstr(a->name, "wpe"); /* norms, biases, positions */
                float want = f32 ? a->data[k] : lf_fp16_to_fp32(lf_fp32_to_fp16(a->data[k]));
                bad += b->data[k] != want;
            }
        }
        CHECK(bad == 0, "%s f16: %d values are not the float16 rounding", an, bad);
        float *l = logits(m, ids, 2, 12);
        double e = tu_rel_err(l, l0, nl);
        CHECK(e < 1e-2, "%s f16: logits rel err %.3e", an, e);
        printf("%s f16: every weight its float16 rounding; logits within %.2e of float32\n", an, e);
        free(l);
        lf_model_free(m);
    }

    static const lf_qtype types[] = {LF_QT_Q8_0, LF_QT_Q4_0, LF_QT_Q4_1, LF_QT_Q4_K};
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        lf_qtype t = types[ti];
        const char *tn = lf_qtype_get(t)->name;
        snprintf(pa, sizeof pa, "%s/%s_%s_a.gguf", dir, an, tn);
        snprintf(pb, sizeof pb, "%s/%s_%s_b.gguf", dir, an, tn);
        snprintf(pr, sizeof pr, "%s/%s_%s_r.gguf", dir, an, tn);
        lf_model *mq = load(p32, 0);
        if (!mq) continue;
        /* the head stays float32 here, as the embed type F32 below writes it (the Python test keeps a head) */
        lf_quant_opts qo = {.type = t, .fallback = LF_QT_Q4_1};
        CHECK(lf_quant_model(mq, &qo, NULL) == LF_OK, "%s %s: lf_quant_model: %s", an, tn, lf_last_error());
        float *lq = logits(mq, ids, 2, 12), *lq3 = logits(mq, ids, 1, 3);
        /* the quantized model's bytes as they are (a), and the float32 model encoded by the writer (b) */
        lf_gguf_save_report ra, rb;
        save(mq, pa, t, LF_QT_F32, &ra);
        save(base, pb, t, LF_QT_F32, &rb);
        size_t na, nb;
        char *fa = slurp(pa, &na), *fb = slurp(pb, &nb);
        CHECK(na == nb && memcmp(fa, fb, na) == 0, "%s %s: exporting the quantized model and encoding the float32 one "
              "give different files (%zu and %zu bytes)", an, tn, na, nb);
        free(fa);
        free(fb);
        int nlin = 7 * c.n_layer * (arch == LF_ARCH_LLAMA) + 4 * c.n_layer * (arch == LF_ARCH_GPT2);
        int nhead = 0;
        CHECK(ra.count[t] == nlin + nhead && rb.count[t] == nlin + nhead && ra.fallbacks == 0 && ra.requantized == 0,
              "%s %s: report %d tensors of the type (want %d), %d fallbacks, %d requantized", an, tn, ra.count[t],
              nlin + nhead, ra.fallbacks, ra.requantized);
        /* read back kept encoded: the same bytes, the same logits bit for bit (dot kernels and tiles) */
        lf_model *mk = load(pa, 1);
        if (mk) {
            int kept = 0, same = 1;
            for (int i = 0; i < lf_model_num_params(mq); i++) {
                lf_param *a = lf_model_param(mq, i), *b = lf_model_find(mk, a->name);
                if (!a->qops) {
                    same &= !b->qops && memcmp(a->data, b->data, a->numel * sizeof(float)) == 0;
                    continue;
                }
                kept++;
                same &= b->qops == a->qops && b->qbytes == a->qbytes && memcmp(a->qdata, b->qdata, a->qbytes) == 0 &&
                        !b->data;
            }
            CHECK(same && kept == nlin + nhead, "%s %s: kept tensors differ from the model's (%d kept)", an, tn, kept);
            float *lk = logits(mk, ids, 2, 12), *lk3 = logits(mk, ids, 1, 3);
            CHECK(memcmp(lk, lq, nl * sizeof(float)) == 0 && memcmp(lk3, lq3, (size_t)3 * c.vocab_size * sizeof(float)) == 0,
                  "%s %s: kept-quantized logits differ from the in-memory model's (rel %.3e, 3 rows %.3e)", an, tn,
                  tu_rel_err(lk, lq, nl), tu_rel_err(lk3, lq3, (size_t)3 * c.vocab_size));
            free(lk);
            free(lk3);
            lf_model_free(mk);
        }
        /* read back dequantized: the same values through float32 GEMMs */
        lf_model *md = load(pa, 0);
        double ed = 0;
        if (md) {
            float *ld = logits(md, ids, 2, 12);
            ed = tu_rel_err(ld, lq, nl);
            CHECK(ed <= 1e-4, "%s %s: dequantized import vs the in-memory quantized model: rel %.3e", an, tn, ed);
            free(ld);
            lf_model_free(md);
        }
        /* another type: each quantized tensor decoded and encoded again (Q8_0 for the 4-bit ones, Q4_0 for Q8_0) */
        lf_qtype t2 = t == LF_QT_Q8_0 ? LF_QT_Q4_0 : LF_QT_Q8_0;
        lf_gguf_save_report rr;
        save(mq, pr, t2, LF_QT_F32, &rr);
        CHECK(rr.requantized == nlin + nhead && rr.count[t2] == nlin + nhead, "%s %s -> %s: %d requantized, %d of the type",
              an, tn, lf_qtype_get(t2)->name, rr.requantized, rr.count[t2]);
        lf_model *m2 = load(pr, 1);
        if (m2) {
            const char *qn = arch == LF_ARCH_LLAMA ? "model.layers.1.self_attn.q_proj.weight" : "transformer.h.1.attn.c_attn.weight";
            lf_param *a = lf_model_find(mq, qn), *b = lf_model_find(m2, qn);
            size_t IC = (size_t)a->shape[1], rbytes = lf_qtype_row_bytes(t2, (int64_t)IC);
            float *row = tu_alloc(a->numel);
            uint8_t *enc = malloc(rbytes * (size_t)a->shape[0]);
            a->qops->dequantize(a, row);
            for (int64_t r = 0; r < a->shape[0]; r++)
                LF_ASSERT(lf_quantize_row(t2, row + (size_t)r * IC, enc + (size_t)r * rbytes, (int64_t)IC) == LF_OK);
            CHECK(lf_param_qtype(b) == t2 && b->qbytes == rbytes * (size_t)a->shape[0] && !memcmp(enc, b->qdata, b->qbytes),
                  "%s %s -> %s: '%s' is not the re-encoding of its decoded values", an, tn, lf_qtype_get(t2)->name, qn);
            free(row);
            free(enc);
            lf_model_free(m2);
        }
        printf("%s %s: %d linears; export of the quantized model = the writer's own encoding (%zu bytes); kept-quantized "
               "import: same bytes, logits bit for bit (2x12 and 1x3 rows); dequantized import %.2e; %d re-encoded as %s\n",
               an, tn, nlin + nhead, na, ed, rr.requantized, lf_qtype_get(t2)->name);
        free(lq);
        free(lq3);
        lf_model_free(mq);
    }

    /* defaults: the embedding (and untied head) Q8_0 for the 4-bit types, norms F32; ragged rows fall back */
    lf_config cr = cfg_of(arch, 96);
    lf_model *rag = tiny(&cr);
    lf_gguf_save_report rep;
    snprintf(pa, sizeof pa, "%s/%s_rag.gguf", dir, an);
    save(rag, pa, LF_QT_Q4_K, LF_QT_Q8_0, &rep);
    int nnorm = arch == LF_ARCH_LLAMA ? 2 * cr.n_layer + 1 : 4 * cr.n_layer + 2 + 4 * cr.n_layer + 1; /* + wpe */
    CHECK(rep.count[LF_QT_Q8_0] == 1 + (arch == LF_ARCH_LLAMA) && rep.count[LF_QT_F32] == nnorm &&
              rep.fallbacks == cr.n_layer && rep.count[LF_QT_Q4_1] == cr.n_layer,
          "%s ragged q4_k: %d q8_0, %d f32 (want %d), %d q4_1, %d fallbacks", an, rep.count[LF_QT_Q8_0],
          rep.count[LF_QT_F32], nnorm, rep.count[LF_QT_Q4_1], rep.fallbacks);
    if ((m = load(pa, 1))) {
        lf_param *down = lf_model_find(m, arch == LF_ARCH_LLAMA ? "model.layers.0.mlp.down_proj.weight" : "transformer.h.0.mlp.c_proj.weight");
        lf_param *emb = lf_model_find(m, arch == LF_ARCH_LLAMA ? "model.embed_tokens.weight" : "transformer.wte.weight");
        lf_param *hd = lf_model_find(m, "lm_head.weight");
        CHECK(lf_param_qtype(down) == LF_QT_Q4_1 && lf_param_qtype(emb) == LF_QT_Q8_0 && !emb->data &&
                  (!hd || lf_param_qtype(hd) == LF_QT_Q8_0),
              "%s ragged: down projection %d (want q4_1 kept), embedding %d, head %d (want q8_0 kept)", an,
              (int)lf_param_qtype(down), (int)lf_param_qtype(emb), hd ? (int)lf_param_qtype(hd) : -1);
        lf_model_free(m);
    }
    printf("%s: rows of %d values fall back to q4_1 under q4_k (%d tensors, kept so on import); the embedding%s q8_0, "
           "kept so on import\n", an, cr.d_ff, rep.fallbacks, arch == LF_ARCH_LLAMA ? " and the head" : " (the tied head)");
    lf_model_free(rag);

    /* a classification head (score.weight) goes as cls.output.weight in f32 with its labels, and
     * comes back as score.weight, bit for bit; a label list of another length is refused */
    snprintf(pa, sizeof pa, "%s/%s_cls.gguf", dir, an);
    lf_param *head;
    LF_ASSERT(lf_model_add_param(base, "score.weight", 3, c.d_model, LF_KIND_WEIGHT, LF_PARAM_TRAINABLE, &head) == LF_OK);
    for (size_t i = 0; i < head->numel; i++) head->data[i] = lf_randn(31, 0, i);
    static const char *const labs[] = {"x", "y", "z"};
    lf_gguf_save_opts o;
    lf_gguf_save_opts_default(&o, LF_QT_Q8_0);
    o.labels = labs;
    o.n_labels = 3;
    o.truncation_side = "right";
    lf_status st = lf_gguf_save(base, NULL, pa, &o);
    CHECK(st == LF_OK, "%s: a classifier: %s", an, lf_last_error());
    lf_model *mc = NULL;
    if (!st && lf_model_load(&mc, pa) == LF_OK) {
        lf_param *h2 = lf_model_find(mc, "score.weight");
        CHECK(h2 && h2->numel == head->numel && !memcmp(h2->data, head->data, head->numel * sizeof(float)),
              "%s: the classification head does not come back as score.weight, bit for bit", an);
        lf_model_free(mc);
    } else
        CHECK(0, "%s: the classifier GGUF does not load: %s", an, lf_last_error());
    snprintf(pa, sizeof pa, "%s/%s_refused.gguf", dir, an);
    o.n_labels = 2;
    st = lf_gguf_save(base, NULL, pa, &o);
    CHECK(st == LF_ERR_ARG && strstr(lf_last_error(), "2 label names"), "%s: 2 labels for a 3-row head: status %d, '%s'", an, st,
          lf_last_error());
    LF_ASSERT(lf_model_remove_param(base, head) == LF_OK);
    /* refusals: an extra tensor (an adapter), an unwritable type; no file, no temporary */
    LF_ASSERT(lf_model_add_param(base, "lora.A", 3, c.d_model, LF_KIND_WEIGHT, LF_PARAM_TRAINABLE, &head) == LF_OK);
    lf_gguf_save_opts_default(&o, LF_QT_Q8_0);
    st = lf_gguf_save(base, NULL, pa, &o);
    CHECK(st == LF_ERR_ARG && strstr(lf_last_error(), "lora.A") && strstr(lf_last_error(), "lora merge"),
          "%s: a model with an extra tensor: status %d, '%s'", an, st, lf_last_error());
    LF_ASSERT(lf_model_remove_param(base, head) == LF_OK);
    lf_gguf_save_opts_default(&o, LF_QT_Q6_K);
    st = lf_gguf_save(base, NULL, pa, &o);
    CHECK(st == LF_ERR_ARG && strstr(lf_last_error(), "q4_k"), "%s: type q6_k: status %d, '%s'", an, st, lf_last_error());
    CHECK(!lf_path_exists(pa) && tmp_files_left() == 0, "%s: a refused save left a file behind", an);
    free(l0);
    lf_model_free(base);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/lf_gguf_write_%d", (int)getpid());
    LF_ASSERT(lf_mkdirs(dir) == LF_OK);
    family(LF_ARCH_LLAMA);
    family(LF_ARCH_GPT2);
    CHECK(tmp_files_left() == 0, "temporary files left in %s", dir);
    lf_rm_rf(dir);
    return tu_finish("test_gguf_write");
}
