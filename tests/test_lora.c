/* LoRA / rsLoRA / DoRA (src/tech/lora.c) and DoRA on the one linear path:
 * - finite differences through the whole model for A, B, the magnitude, the base weight and the
 *   input (the embedding table, whose gradient carries the linear's input gradient), dropout on;
 *   W, A and B against the objective with the weight norm held constant (PEFT detaches it);
 * - attach: PEFT's names, shapes, init (A within ±1/sqrt(IC), B zero, magnitude = row norms),
 *   targets ("all" = every linear but the head), rsLoRA scaling, the base frozen with no
 *   gradient buffer;
 * - save/load round trip (same logits), every kind of bad adapter refused with a message;
 * - merge equals unmerged (LoRA and DoRA), several adapters at once;
 * - with --gpt2-124m: gradient + optimizer bytes of full fine-tuning vs LoRA on GPT-2 124M. */
#include "lmforge/ckpt.h"
#include "lmforge/loss.h"
#include "lmforge/lora.h"
#include "lmforge/optim.h"
#include "lmforge/batch.h"
#include "testutil.h"

#include <unistd.h>

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
    c.tie_embeddings = 0;
    c.init_std = 0.3f;
    return c;
}

/* ---------------------------------------------------------------- DoRA finite differences */

typedef struct {
    lf_model *m;
    lf_loss_term *ce;
    lf_batch *b;
    lf_param *w, *A, *B, *mag; /* the DoRA site under test */
    float s;
    float *n0;    /* its row norms at the base point */
    int hold;     /* hold the norm at n0: magnitude scaled by n(A,B)/n0 for the evaluation */
} fd_ctx;

static void norms(const lf_param *w, const lf_param *A, const lf_param *B, float s, float *out) {
    int OC = (int)w->shape[0], IC = (int)w->shape[1], r = (int)A->shape[0];
    for (int o = 0; o < OC; o++) {
        double ss = 0;
        for (int i = 0; i < IC; i++) {
            double v = w->data[(size_t)o * IC + i];
            for (int k = 0; k < r; k++) v += (double)s * B->data[(size_t)o * r + k] * A->data[(size_t)k * IC + i];
            ss += v * v;
        }
        out[o] = (float)sqrt(ss);
    }
}

static double objective(void *p) {
    fd_ctx *c = p;
    float *keep = NULL;
    if (c->hold) {
        size_t OC = (size_t)c->w->shape[0];
        keep = tu_alloc(OC);
        float *n = tu_alloc(OC);
        memcpy(keep, c->mag->data, OC * sizeof(float));
        norms(c->w, c->A, c->B, c->s, n);
        for (size_t o = 0; o < OC; o++) c->mag->data[o] = keep[o] * n[o] / c->n0[o];
        free(n);
    }
    double total;
    LF_ASSERT(lf_loss_forward(c->m, &c->ce, 1, c->b, NULL, &total) == LF_OK);
    if (keep) {
        memcpy(c->mag->data, keep, (size_t)c->w->shape[0] * sizeof(float));
        free(keep);
    }
    return total;
}

static void fd_dora(lf_arch arch, float dropout) {
    const char *an = arch == LF_ARCH_GPT2 ? "gpt2" : "llama";
    lf_config cfg = cfg_small(arch);
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK);
    lf_model_init_weights(m, 3);
    lf_lora_opts o;
    lf_lora_opts_defaults(&o);
    o.r = 3;
    o.alpha = 5;
    o.dropout = dropout;
    o.use_dora = 1;
    snprintf(o.targets, sizeof o.targets, "%s", arch == LF_ARCH_GPT2 ? "c_attn" : "q_proj");
    lf_lora *l;
    LF_ASSERT(lf_lora_attach(&l, m, &o, NULL) == LF_OK);
    LF_ASSERT(lf_model_set_trainable(m, arch == LF_ARCH_GPT2 ? "transformer.wte." : "model.embed_tokens.", 1, NULL) == LF_OK);
    const char *mod = arch == LF_ARCH_GPT2 ? "transformer.h.1.attn.c_attn" : "model.layers.1.self_attn.q_proj";
    char n[256];
    fd_ctx c = {.m = m, .ce = lf_loss_ce_new(0.0f)};
    snprintf(n, sizeof n, "%s.weight", mod);
    c.w = lf_model_find(m, n);
    snprintf(n, sizeof n, "%s.lora_A.default.weight", mod);
    c.A = lf_model_find(m, n);
    snprintf(n, sizeof n, "%s.lora_B.default.weight", mod);
    c.B = lf_model_find(m, n);
    snprintf(n, sizeof n, "%s.lora_magnitude_vector.default.weight", mod);
    c.mag = lf_model_find(m, n);
    LF_ASSERT(c.w && c.A && c.B && c.mag);
    c.s = lf_lora_scale(l);
    /* the base weight under the adapter trains too (DoRA's extra (g-1)·x·Wᵀ term reaches its gradient) */
    LF_ASSERT(lf_model_set_trainable(m, c.w->name, 1, NULL) == LF_OK);
    /* B non-zero (else A has no gradient) and the magnitude off the norms (else g = 1) */
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        if (strstr(p->name, "lora_B")) tu_fill(p->data, p->numel, 40 + i, 0.3f);
        if (strstr(p->name, "lora_magnitude")) for (size_t j = 0; j < p->numel; j++) p->data[j] *= 1.0f + 0.3f * lf_randn(50, i, j);
    }
    lf_model_set_training(m, 1, 77);
    int Bn = 2, T = 7;
    lf_batch b;
    LF_ASSERT(lf_batch_alloc(&b, Bn, T) == LF_OK);
    for (int i = 0; i < Bn * T; i++) {
        b.inputs[i] = (int32_t)(lf_hash64(5, 0, i) % 29);
        b.targets[i] = (int32_t)(lf_hash64(5, 1, i) % 29);
    }
    c.b = &b;
    c.n0 = tu_alloc((size_t)c.w->shape[0]);
    norms(c.w, c.A, c.B, c.s, c.n0);
    LF_ASSERT(lf_model_alloc_grads(m) == LF_OK);
    lf_model_zero_grad(m);
    objective(&c);
    LF_ASSERT(lf_loss_backward(m, &c.ce, 1, &b, 1.0f) == LF_OK);
    int checked = 0;
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        if (!p->grad) continue;
        int is_site = p == c.A || p == c.B || p == c.w;
        /* the layer-0 site's A/B are checked only where the held-norm objective is set up (layer 1) */
        if ((strstr(p->name, "lora_A") || strstr(p->name, "lora_B")) && !is_site) continue;
        float *g = tu_alloc(p->numel);
        memcpy(g, p->grad, p->numel * sizeof(float));
        c.hold = is_site;
        char what[300];
        snprintf(what, sizeof what, "%s DoRA (dropout %.1f): %s", an, dropout, p->name);
        tu_fd_check(what, p->data, g, p->numel, objective, &c, 3e-3f, 3e-4, 3e-2, 24);
        c.hold = 0;
        free(g);
        checked++;
    }
    CHECK(checked == 6, "%s: expected W, A, B, two magnitudes and the embeddings checked; got %d tensors", an, checked);
    /* the true gradient of B differs from the detached one (sanity: the hold matters) */
    free(c.n0);
    lf_loss_free(c.ce);
    lf_batch_free(&b);
    lf_lora_free(l);
    lf_model_free(m);
}

/* ---------------------------------------------------------------- attach */

static size_t grad_floats(lf_model *m) {
    size_t n = 0;
    LF_ASSERT(lf_model_alloc_grads(m) == LF_OK);
    for (int i = 0; i < lf_model_num_params(m); i++)
        if (lf_model_param(m, i)->grad) n += lf_model_param(m, i)->numel;
    return n;
}

static void test_attach(lf_arch arch) {
    const char *an = arch == LF_ARCH_GPT2 ? "gpt2" : "llama";
    lf_config cfg = cfg_small(arch);
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK);
    lf_model_init_weights(m, 3);
    int base_params = lf_model_num_params(m);
    lf_lora_opts o;
    lf_lora_opts_defaults(&o);
    o.r = 4;
    o.alpha = 16;
    o.use_rslora = 1;
    o.seed = 9;
    snprintf(o.targets, sizeof o.targets, "all");
    lf_lora *l;
    LF_ASSERT(lf_lora_attach(&l, m, &o, NULL) == LF_OK);
    int per_layer = arch == LF_ARCH_GPT2 ? 4 : 7;
    CHECK(lf_lora_num_sites(l) == per_layer * cfg.n_layer, "%s: 'all' adapted %d linears, expected %d (every linear but the head)",
          an, lf_lora_num_sites(l), per_layer * cfg.n_layer);
    CHECK(fabsf(lf_lora_scale(l) - 16.0f / 2.0f) < 1e-6f, "%s: rsLoRA scale %g, expected alpha/sqrt(r) = 8", an, lf_lora_scale(l));
    const char *an_A = arch == LF_ARCH_GPT2 ? "transformer.h.0.attn.c_attn.lora_A.default.weight"
                                            : "model.layers.0.self_attn.q_proj.lora_A.default.weight";
    lf_param *A = lf_model_find(m, an_A);
    CHECK(A && A->shape[0] == 4 && A->shape[1] == cfg.d_model, "%s: %s missing or misshapen", an, an_A);
    if (A) {
        float bound = 1.0f / sqrtf((float)cfg.d_model), mx = 0;
        for (size_t j = 0; j < A->numel; j++) mx = fmaxf(mx, fabsf(A->data[j]));
        CHECK(mx <= bound && mx > 0.5f * bound, "%s: A's values reach %g; kaiming-uniform(a=sqrt 5) bound is %g", an, mx, bound);
    }
    size_t gf = grad_floats(m), ad = lf_lora_num_params(l);
    CHECK(gf == ad, "%s: gradient buffers hold %zu floats, the adapters have %zu (the base must have none)", an, gf, ad);
    for (int i = 0; i < base_params; i++)
        CHECK(!(lf_model_param(m, i)->flags & LF_PARAM_TRAINABLE), "%s: base tensor %s still trainable", an, lf_model_param(m, i)->name);
    /* B = 0: the model computes what the base computes */
    int32_t x[12];
    for (int i = 0; i < 12; i++) x[i] = (int32_t)(lf_hash64(8, 0, i) % 29);
    LF_ASSERT(lf_model_forward(m, x, 2, 6, LF_LOGITS_ALL) == LF_OK);
    size_t NV = 12 * (size_t)cfg.vocab_size;
    float *with = tu_alloc(NV);
    memcpy(with, lf_model_logits(m, NULL), NV * sizeof(float));
    lf_lora_free(l);
    lf_model *m0;
    LF_ASSERT(lf_model_init(&m0, &cfg) == LF_OK);
    lf_model_init_weights(m0, 3);
    LF_ASSERT(lf_model_forward(m0, x, 2, 6, LF_LOGITS_ALL) == LF_OK);
    double e = tu_rel_err(with, lf_model_logits(m0, NULL), NV);
    CHECK(e < 1e-6, "%s: a fresh adapter (B = 0) changed the logits by %.3g", an, e);
    /* targets that match nothing are refused, naming an example */
    lf_lora *bad;
    snprintf(o.targets, sizeof o.targets, "nonexistent_proj");
    CHECK(lf_lora_attach(&bad, m0, &o, "x") == LF_ERR_NOTFOUND && strstr(lf_last_error(), "look like"),
          "%s: unmatched targets: %s", an, lf_last_error());
    CHECK(lf_model_num_params(m0) == base_params, "%s: a refused attach left tensors behind", an);
    /* a second adapter under a name already taken is refused and leaves nothing behind */
    snprintf(o.targets, sizeof o.targets, "all");
    LF_ASSERT(lf_lora_attach(&l, m0, &o, "dup") == LF_OK);
    int with_one = lf_model_num_params(m0);
    CHECK(lf_lora_attach(&bad, m0, &o, "dup") == LF_ERR_ARG && strstr(lf_last_error(), "already has"),
          "%s: a duplicate adapter name: %s", an, lf_last_error());
    CHECK(lf_model_num_params(m0) == with_one, "%s: a refused duplicate attach left %d tensors behind", an,
          lf_model_num_params(m0) - with_one);
    lf_lora_free(l);
    free(with);
    lf_model_free(m0);
    lf_model_free(m);
}

/* ---------------------------------------------------------------- save, load, merge */

static void logits_of(lf_model *m, const int32_t *x, float *out, size_t NV) {
    LF_ASSERT(lf_model_forward(m, x, 2, 6, LF_LOGITS_ALL) == LF_OK);
    memcpy(out, lf_model_logits(m, NULL), NV * sizeof(float));
}

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    LF_ASSERT(f);
    fputs(s, f);
    fclose(f);
}

static void test_save_load_merge(lf_arch arch, int dora) {
    const char *an = arch == LF_ARCH_GPT2 ? "gpt2" : "llama";
    lf_config cfg = cfg_small(arch);
    char dir[] = "/tmp/lf_lora_XXXXXX";
    LF_ASSERT(mkdtemp(dir));
    char base[300], ad1[300], ad2[300], p[400];
    snprintf(base, sizeof base, "%s/base", dir);
    snprintf(ad1, sizeof ad1, "%s/ad1", dir);
    snprintf(ad2, sizeof ad2, "%s/ad2", dir);
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &cfg) == LF_OK);
    lf_model_init_weights(m, 4);
    LF_ASSERT(lf_hf_save(m, base) == LF_OK);
    lf_lora_opts o;
    lf_lora_opts_defaults(&o);
    o.r = 2;
    o.alpha = 3;
    o.use_dora = dora;
    snprintf(o.targets, sizeof o.targets, "all");
    lf_lora *l;
    LF_ASSERT(lf_lora_attach(&l, m, &o, NULL) == LF_OK);
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *q = lf_model_param(m, i);
        if (strstr(q->name, "lora_B")) tu_fill(q->data, q->numel, 60 + i, 0.2f);
        if (strstr(q->name, "lora_magnitude")) for (size_t j = 0; j < q->numel; j++) q->data[j] *= 1.2f;
    }
    LF_ASSERT(lf_lora_save(l, ad1, "base") == LF_OK);
    int32_t x[12];
    for (int i = 0; i < 12; i++) x[i] = (int32_t)(lf_hash64(8, 0, i) % 29);
    size_t NV = 12 * (size_t)cfg.vocab_size;
    float *ref = tu_alloc(NV), *got = tu_alloc(NV), *base_logits = tu_alloc(NV);
    logits_of(m, x, ref, NV);
    /* a second, different adapter (q/v or c_attn only) for the two-adapter check */
    lf_lora_opts o2 = o;
    o2.use_dora = 0;
    o2.targets[0] = 0;
    o2.seed = 3;
    lf_lora *l2;
    LF_ASSERT(lf_lora_attach(&l2, m, &o2, "second") == LF_OK);
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *q = lf_model_param(m, i);
        if (strstr(q->name, "lora_B.second")) tu_fill(q->data, q->numel, 90 + i, 0.2f);
    }
    LF_ASSERT(lf_lora_save(l2, ad2, NULL) == LF_OK);
    float *both = tu_alloc(NV);
    logits_of(m, x, both, NV);
    lf_lora_free(l);
    lf_lora_free(l2);
    lf_model_free(m);

    /* load: same logits */
    LF_ASSERT(lf_model_load(&m, base) == LF_OK);
    logits_of(m, x, base_logits, NV);
    LF_ASSERT(lf_lora_load(&l, m, ad1, NULL, 1.0f, 0) == LF_OK);
    logits_of(m, x, got, NV);
    double e = tu_rel_err(got, ref, NV), d = tu_rel_err(base_logits, ref, NV);
    CHECK(e < 1e-6 && d > 1e-3, "%s%s: loaded adapter logits differ by %.3g (base differs by %.3g)", an, dora ? " DoRA" : "", e, d);
    /* KV-cache decoding runs the adapters too (DoRA's norms included): the last position's logits */
    LF_ASSERT(lf_model_cache_init(m, 0) == LF_OK);
    float *dec = tu_alloc((size_t)cfg.vocab_size);
    LF_ASSERT(lf_model_decode(m, x, 6, dec) == LF_OK);
    e = tu_rel_err(dec, ref + 5 * (size_t)cfg.vocab_size, (size_t)cfg.vocab_size);
    CHECK(e < 1e-5, "%s%s: decoding with the adapter differs from the forward by %.3g", an, dora ? " DoRA" : "", e);
    free(dec);
    /* merge equals unmerged */
    LF_ASSERT(lf_lora_merge(l, m) == LF_OK);
    logits_of(m, x, got, NV);
    e = tu_rel_err(got, ref, NV);
    CHECK(e < 1e-5, "%s%s: merged logits differ from unmerged by %.3g", an, dora ? " DoRA" : "", e);
    lf_model_free(m);
    /* two adapters listed at load, both active */
    LF_ASSERT(lf_model_load(&m, base) == LF_OK);
    char list[700];
    snprintf(list, sizeof list, "%s,%s:1", ad1, ad2);
    lf_lora **ls;
    int n;
    LF_ASSERT(lf_lora_load_list(m, list, &ls, &n) == LF_OK);
    logits_of(m, x, got, NV);
    e = tu_rel_err(got, both, NV);
    CHECK(n == 2 && e < 1e-6, "%s%s: two adapters at load: %d loaded, logits differ by %.3g", an, dora ? " DoRA" : "", n, e);
    for (int i = 0; i < n; i++) lf_lora_free(ls[i]);
    free(ls);
    lf_model_free(m);

    /* refusals: another model's adapter (shapes), a missing tensor, a wrong peft_type, bad JSON */
    if (!dora) {
        lf_config c2 = cfg;
        c2.d_model = 32;
        c2.head_dim = 8;
        lf_model *other;
        LF_ASSERT(lf_model_init(&other, &c2) == LF_OK);
        int np = lf_model_num_params(other);
        CHECK(lf_lora_load(&l, other, ad1, NULL, 1.0f, 0) == LF_ERR_FORMAT && strstr(lf_last_error(), "shape"),
              "%s: adapter on a wider model: %s", an, lf_last_error());
        CHECK(lf_model_num_params(other) == np, "%s: a refused load left tensors behind", an);
        lf_model_free(other);
        LF_ASSERT(lf_model_load(&m, base) == LF_OK);
        snprintf(p, sizeof p, "%s/adapter_config.json", ad2);
        char *txt = lf_read_file(p, NULL);
        write_text(p, "{\"peft_type\": \"PREFIX_TUNING\", \"r\": 8, \"lora_alpha\": 8}");
        CHECK(lf_lora_load(&l, m, ad2, NULL, 1.0f, 0) == LF_ERR_FORMAT && strstr(lf_last_error(), "peft_type"),
              "%s: wrong peft_type: %s", an, lf_last_error());
        write_text(p, "{\"peft_type\": \"LORA\", \"r\": ");
        CHECK(lf_lora_load(&l, m, ad2, NULL, 1.0f, 0) == LF_ERR_FORMAT && strstr(lf_last_error(), "JSON"),
              "%s: truncated config: %s", an, lf_last_error());
        write_text(p, "{\"peft_type\": \"LORA\", \"r\": 3, \"lora_alpha\": 8}"); /* r disagrees with the tensors */
        CHECK(lf_lora_load(&l, m, ad2, NULL, 1.0f, 0) == LF_ERR_FORMAT && strstr(lf_last_error(), "r=3"),
              "%s: r disagreeing with the tensors: %s", an, lf_last_error());
        write_text(p, txt);
        free(txt);
        snprintf(p, sizeof p, "%s/x", dir);
        CHECK(lf_lora_load(&l, m, p, NULL, 1.0f, 0) == LF_ERR_NOTFOUND, "%s: a missing folder: %s", an, lf_last_error());
        CHECK(lf_lora_load(&l, m, ad2, NULL, 1.0f, 0) == LF_OK, "%s: restored adapter reloads: %s", an, lf_last_error());
        lf_lora_free(l);
        lf_model_free(m);
    }
    free(ref);
    free(got);
    free(both);
    free(base_logits);
    lf_rm_rf(dir);
}

/* ---------------------------------------------------------------- GPT-2 124M memory */

static void memory_124m(void) {
    lf_config c;
    lf_config_defaults(&c, LF_ARCH_GPT2);
    c.vocab_size = 50257;
    c.d_model = 768;
    c.n_layer = 12;
    c.n_head = c.n_kv_head = 12;
    c.head_dim = 64;
    c.d_ff = 3072;
    c.max_seq = 1024;
    c.tie_embeddings = 1;
    for (int lora = 0; lora < 3; lora++) {
        lf_model *m;
        LF_ASSERT(lf_model_init(&m, &c) == LF_OK);
        lf_lora *l = NULL;
        if (lora) {
            lf_lora_opts o;
            lf_lora_opts_defaults(&o);
            snprintf(o.targets, sizeof o.targets, "%s", lora == 1 ? "c_attn" : "all");
            LF_ASSERT(lf_lora_attach(&l, m, &o, NULL) == LF_OK);
        }
        lf_adamw_config ac;
        lf_adamw_defaults(&ac);
        lf_optim *opt;
        LF_ASSERT(lf_optim_init(&opt, m, &ac) == LF_OK);
        size_t g = 0, mo = 0;
        for (int i = 0; i < lf_model_num_params(m); i++) {
            lf_param *p = lf_model_param(m, i);
            if (p->grad) g += p->numel * sizeof(float);
            for (int w = 0; w < 2; w++)
                if (lf_optim_moment(opt, p, w, 0)) mo += p->numel * sizeof(float);
        }
        printf("gpt2-124m %-22s trainable %10zu  gradient %8.2f MiB  optimizer %8.2f MiB\n",
               lora == 0 ? "full fine-tuning" : lora == 1 ? "LoRA r=8 c_attn" : "LoRA r=8 all-linear", g / 4, g / 1048576.0,
               mo / 1048576.0);
        lf_optim_free(opt);
        lf_lora_free(l);
        lf_model_free(m);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--gpt2-124m")) {
        memory_124m();
        return tu_finish("lora memory");
    }
    for (int a = 0; a < 2; a++) {
        lf_arch arch = a ? LF_ARCH_LLAMA : LF_ARCH_GPT2;
        fd_dora(arch, 0.0f);
        fd_dora(arch, 0.2f);
        test_attach(arch);
        test_save_load_merge(arch, 0);
        test_save_load_merge(arch, 1);
    }
    return tu_finish("lora");
}
