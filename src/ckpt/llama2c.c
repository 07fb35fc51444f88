/* llama2.c checkpoints (the legacy headerless format of run.c): 7 int32 config values, then
 * float32 weights; a negative vocab_size means an untied classifier follows. llama2.c applies
 * RoPE to interleaved pairs (2i, 2i+1); Hugging Face (and our kernels) rotate halves (i, i+hd/2),
 * so wq and wk rows are permuted on load, exactly as Hugging Face's conversion script does. */
#include "lmforge/ckpt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* rows of one head: new[k*half + p] = old[2p + k] */
static void permute_rope_rows(float *dst, const float *src, int nheads, int hd, int dim) {
    int half = hd / 2;
    for (int h = 0; h < nheads; h++)
        for (int p = 0; p < half; p++)
            for (int k = 0; k < 2; k++)
                memcpy(dst + ((size_t)h * hd + (size_t)k * half + p) * dim,
                       src + ((size_t)h * hd + 2 * (size_t)p + k) * dim, sizeof(float) * (size_t)dim);
}

lf_status lf_llama2c_load(lf_model **out, const char *path) {
    *out = NULL;
    if (lf_check_regular(path)) return LF_ERR_IO;
    FILE *f = fopen(path, "rb");
    if (!f) {
        lf_set_error("%s: cannot open (%s)", path, strerror(errno));
        return LF_ERR_IO;
    }
    int32_t h[7];
    if (fread(h, sizeof h, 1, f) != 1) {
        fclose(f);
        lf_set_error("%s: too short for a llama2.c header (28 bytes)", path);
        return LF_ERR_FORMAT;
    }
    int dim = h[0], hidden = h[1], L = h[2], nh = h[3], nkv = h[4], vocab = h[5], seq = h[6];
    int shared = vocab > 0;
    if (vocab < 0) vocab = vocab == INT32_MIN ? 0 : -vocab; /* -INT32_MIN does not exist: refused below */
    if (dim <= 0 || hidden <= 0 || L <= 0 || nh <= 0 || nkv <= 0 || vocab <= 0 || seq <= 0 || dim % nh ||
        nh % nkv || dim > 65536 || hidden > (1 << 20) || L > 1024 || vocab > (1 << 24) || seq > (1 << 20) ||
        (dim / nh) % 2) {
        fclose(f);
        lf_set_error("%s: header (dim=%d hidden=%d layers=%d heads=%d kv_heads=%d vocab=%d seq=%d) is not a valid "
                     "llama2.c config (not a llama2.c .bin file?)", path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
        return LF_ERR_FORMAT;
    }
    int hd = dim / nh;
    size_t D = (size_t)dim, HD = (size_t)hidden, V = (size_t)vocab, KV = (size_t)nkv * hd, Ls = (size_t)L;
    size_t expect = V * D + Ls * D + Ls * D * D + 2 * Ls * D * KV + Ls * D * D + Ls * D + 3 * Ls * D * HD + D +
                    (size_t)seq * hd; /* freq_cis_real + imag, seq * hd/2 each */
    if (!shared) expect += V * D;
    fseek(f, 0, SEEK_END);
    long fsize = ftell(f);
    fseek(f, 28, SEEK_SET);
    if (fsize < 0 || (size_t)fsize != 28 + expect * 4) {
        fclose(f);
        lf_set_error("%s: file has %ld bytes but its header implies %zu (truncated, or a newer llama2.c export "
                     "version?)", path, fsize, 28 + expect * 4);
        return LF_ERR_FORMAT;
    }
    lf_config c;
    lf_config_defaults(&c, LF_ARCH_LLAMA);
    c.vocab_size = vocab;
    c.d_model = dim;
    c.n_layer = L;
    c.n_head = nh;
    c.n_kv_head = nkv;
    c.head_dim = hd;
    c.d_ff = hidden;
    c.max_seq = seq;
    c.norm_eps = 1e-5f; /* run.c's rmsnorm */
    c.rope_theta = 10000.0f;
    c.tie_embeddings = shared;
    c.bos_id = 1;
    c.eos_id = 2;
    lf_model *m = NULL;
    lf_status st = lf_model_init(&m, &c);
    if (st) {
        fclose(f);
        return st;
    }
    float *all = malloc(expect * sizeof(float));
    if (!all || fread(all, sizeof(float), expect, f) != expect) {
        free(all);
        fclose(f);
        lf_model_free(m);
        lf_set_error("%s: read failed", path);
        return LF_ERR_IO;
    }
    fclose(f);
    const float *p = all;
    char name[128];
#define TAKE(fmt, l, count, permute_heads)                                                         \
    do {                                                                                           \
        snprintf(name, sizeof name, fmt, l);                                                       \
        lf_param *prm = lf_model_find(m, name);                                                    \
        LF_ASSERT(prm && prm->numel == (count));                                                   \
        if (permute_heads) permute_rope_rows(prm->data, p, permute_heads, hd, dim);                \
        else memcpy(prm->data, p, sizeof(float) * (count));                                        \
        p += (count);                                                                              \
    } while (0)
    TAKE("model.embed_tokens.weight%.0d", 0, V * D, 0);
    for (int l = 0; l < L; l++) TAKE("model.layers.%d.input_layernorm.weight", l, D, 0);
    for (int l = 0; l < L; l++) TAKE("model.layers.%d.self_attn.q_proj.weight", l, D * D, nh);
    for (int l = 0; l < L; l++) TAKE("model.layers.%d.self_attn.k_proj.weight", l, KV * D, nkv);
    for (int l = 0; l < L; l++) TAKE("model.layers.%d.self_attn.v_proj.weight", l, KV * D, 0);
    for (int l = 0; l < L; l++) TAKE("model.layers.%d.self_attn.o_proj.weight", l, D * D, 0);
    for (int l = 0; l < L; l++) TAKE("model.layers.%d.post_attention_layernorm.weight", l, D, 0);
    for (int l = 0; l < L; l++) TAKE("model.layers.%d.mlp.gate_proj.weight", l, HD * D, 0);
    for (int l = 0; l < L; l++) TAKE("model.layers.%d.mlp.down_proj.weight", l, D * HD, 0);
    for (int l = 0; l < L; l++) TAKE("model.layers.%d.mlp.up_proj.weight", l, HD * D, 0);
    TAKE("model.norm.weight%.0d", 0, D, 0);
    p += (size_t)seq * hd; /* run.c's precomputed freq_cis tables: we compute our own */
    if (!shared) TAKE("lm_head.weight%.0d", 0, V * D, 0);
#undef TAKE
    LF_ASSERT((size_t)(p - all) == expect);
    free(all);
    st = lf_model_check_finite(m, path);
    if (st) {
        lf_model_free(m);
        return st;
    }
    *out = m;
    return LF_OK;
}
