/* GGUF writing (version 3) for llama.cpp: the metadata its converter (convert_hf_to_gguf.py) writes
 * for the llama and gpt2 architectures, the tokenizer as tokenizer.ggml.*, tensors under its names
 * (the reader's map, gguf_internal.h) with attn_q/attn_k rows in its RoPE order, each tensor's data
 * at an offset that is the running sum of the sizes before it rounded up to 32 bytes (llama.cpp
 * checks exactly that). Linear weights are encoded by the block quantizers of quant.h, row by row.
 *
 * Which tensor gets which type (after llama.cpp's converter and its quantize tool):
 * - norms, biases and GPT-2's learned positions: F32 always (the converter keeps 1-D tensors and
 *   position embeddings in F32; llama.cpp's kernels expect it);
 * - linear weights: the type asked; rows that are not whole blocks of it (Q4_K needs 256 values,
 *   SmolLM2's rows have 576) take the fallback type, and F16 where that fails too (the converter's
 *   own fallback when a type does not fit);
 * - the token embedding and an untied output head: the "embed" type. Its default follows the
 *   converter for F32/F16/BF16/Q8_0 (it encodes token_embd and output like every other weight).
 *   For the 4-bit types llama.cpp's quantize tool gives the output head (or the tied embedding
 *   that serves as one) Q6_K, which lmforge does not encode; Q8_0 is the nearest it writes, and the
 *   head's error reaches every logit, so the default keeps both embedding and head at Q8_0.
 * A tied head is not written: llama.cpp's llama and gpt2 loaders use token_embd when output is
 * missing (the gpt2 converter writes a copy, which would double the embedding and read back as an
 * untied head). */
#include "lmforge/ckpt.h"
#include "gguf_internal.h"

#include <stdlib.h>
#include <string.h>

enum { GV_U8, GV_I8, GV_U16, GV_I16, GV_U32, GV_I32, GV_F32, GV_BOOL, GV_STR, GV_ARR, GV_U64, GV_I64, GV_F64 };
#define GGUF_ALIGN 32

void lf_gguf_save_opts_default(lf_gguf_save_opts *o, lf_qtype type) {
    memset(o, 0, sizeof *o);
    o->type = type;
    o->fallback = LF_QT_Q4_1;
    o->embed = lf_quant_default_embed_type(type);
}

/* ---- a growing byte buffer for the header (metadata and tensor infos) */
typedef struct {
    uint8_t *p;
    size_t n, cap;
    int oom;
    uint64_t count; /* key-values or tensor infos put */
} buf;

static void put(buf *b, const void *x, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, x, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s, size_t len) {
    put_u64(b, len);
    put(b, s, len);
}
static void key(buf *b, const char *k, uint32_t type) {
    put_str(b, k, strlen(k));
    put_u32(b, type);
    b->count++;
}
static void kv_str(buf *b, const char *k, const char *v) {
    key(b, k, GV_STR);
    put_str(b, v, strlen(v));
}
static void kv_u32(buf *b, const char *k, uint32_t v) {
    key(b, k, GV_U32);
    put_u32(b, v);
}
static void kv_f32(buf *b, const char *k, float v) {
    key(b, k, GV_F32);
    put(b, &v, 4);
}
static void kv_bool(buf *b, const char *k, int v) {
    uint8_t x = v != 0;
    key(b, k, GV_BOOL);
    put(b, &x, 1);
}
static void kv_arr(buf *b, const char *k, uint32_t type, const void *v, size_t n) {
    key(b, k, GV_ARR);
    put_u32(b, type);
    put_u64(b, n);
    put(b, v, 4 * n);
}
static void kv_strs(buf *b, const char *k, const char *const *s, const size_t *len, size_t n) {
    key(b, k, GV_ARR);
    put_u32(b, GV_STR);
    put_u64(b, n);
    for (size_t i = 0; i < n; i++) put_str(b, s[i], len[i]);
}

/* ---- the plan: one entry per tensor, in the order of the parameter table */
typedef struct {
    lf_param *p;
    char name[160];
    int perm;          /* q/k: heads whose rows go to llama.cpp's order */
    lf_qtype type;
    int64_t rows, cols; /* rows = 1 for a vector */
    size_t nbytes, offset;
} tensor_plan;

typedef struct {
    const lf_model *m;
    tensor_plan *t;
    int n;
    buf head;          /* everything before the data section, padded to the alignment */
} writer;

/* llama.cpp's LlamaFileType for a model whose linear weights are of type t (general.file_type) */
static uint32_t file_type(lf_qtype t) {
    switch (t) {
    case LF_QT_F32: return 0;
    case LF_QT_F16: return 1;
    case LF_QT_Q4_0: return 2;
    case LF_QT_Q4_1: return 3;
    case LF_QT_Q8_0: return 7;
    case LF_QT_Q4_K: return 14; /* MOSTLY_Q4_K_S: every weight Q4_K (Q4_K_M mixes in Q6_K) */
    case LF_QT_BF16: return 32;
    default: return 0;
    }
}

static int writable(lf_qtype t) {
    return t == LF_QT_F32 || t == LF_QT_F16 || t == LF_QT_BF16 || t == LF_QT_Q8_0 || t == LF_QT_Q4_0 ||
           t == LF_QT_Q4_1 || t == LF_QT_Q4_K;
}

static int fits(lf_qtype t, int64_t cols) {
    const lf_qtype_info *q = lf_qtype_get(t);
    return q && cols % q->blck == 0;
}

static lf_qtype choose(const lf_gguf_save_opts *o, const tensor_plan *tp, lf_gguf_save_report *rep) {
    if (tp->p->ndim == 1 || !strcmp(tp->name, "position_embd.weight") || !strcmp(tp->name, "cls.output.weight")) return LF_QT_F32;
    int emb = !strcmp(tp->name, "token_embd.weight") || !strcmp(tp->name, "output.weight");
    lf_qtype want = emb ? o->embed : o->type;
    if (fits(want, tp->cols)) return want;
    if (rep) rep->fallbacks++;
    return fits(o->fallback, tp->cols) ? o->fallback : LF_QT_F16;
}

static void put_metadata(buf *b, const lf_config *c, const lf_tokenizer *tok, const lf_gguf_save_opts *o,
                         int quantized, lf_tok_gguf_vocab *v) {
    const char *arch = c->arch == LF_ARCH_LLAMA ? "llama" : "gpt2";
    char k[96];
    kv_str(b, "general.architecture", arch);
    kv_str(b, "general.type", "model");
    kv_str(b, "general.name", o->name ? o->name : "lmforge");
    kv_u32(b, "general.file_type", file_type(o->type));
    if (quantized) kv_u32(b, "general.quantization_version", 2); /* ggml's GGML_QNT_VERSION */
    kv_u32(b, "general.alignment", GGUF_ALIGN);
#define KU(name, v) (snprintf(k, sizeof k, "%s.%s", arch, name), kv_u32(b, k, (uint32_t)(v)))
#define KF(name, v) (snprintf(k, sizeof k, "%s.%s", arch, name), kv_f32(b, k, (float)(v)))
    KU("context_length", c->max_seq);
    KU("embedding_length", c->d_model);
    KU("block_count", c->n_layer);
    KU("feed_forward_length", c->d_ff);
    KU("attention.head_count", c->n_head);
    KU("vocab_size", c->vocab_size);
    if (c->arch == LF_ARCH_LLAMA) {
        KU("attention.head_count_kv", c->n_kv_head);
        KF("rope.freq_base", c->rope_theta);
        KF("attention.layer_norm_rms_epsilon", c->norm_eps);
        KU("rope.dimension_count", c->head_dim);
        if (c->head_dim * c->n_head != c->d_model) { /* heads narrower or wider than d_model / n_head */
            KU("attention.key_length", c->head_dim);
            KU("attention.value_length", c->head_dim);
        }
    } else {
        KF("attention.layer_norm_epsilon", c->norm_eps);
    }
#undef KU
#undef KF
    int bos = c->bos_id, eos = c->eos_id;
    /* llama.cpp needs tokenizer.ggml.model: without a tokenizer, its "no vocabulary" model (it then
     * makes vocab_size placeholder tokens) */
    if (!tok) kv_str(b, "tokenizer.ggml.model", "no_vocab");
    if (tok) {
        kv_str(b, "tokenizer.ggml.model", v->model);
        if (v->pre) kv_str(b, "tokenizer.ggml.pre", v->pre);
        kv_strs(b, "tokenizer.ggml.tokens", v->tok, v->tok_len, (size_t)v->n);
        if (v->scores) kv_arr(b, "tokenizer.ggml.scores", GV_F32, v->scores, (size_t)v->n);
        kv_arr(b, "tokenizer.ggml.token_type", GV_I32, v->types, (size_t)v->n);
        if (v->n_merges) kv_strs(b, "tokenizer.ggml.merges", v->merge, v->merge_len, (size_t)v->n_merges);
        if (v->bos >= 0) bos = v->bos;
        if (v->eos >= 0) eos = v->eos;
    }
    /* a config may name ids past the vocabulary (GPT2Config's 50256 on a small model): llama.cpp and
     * our reader refuse those, so they are left out */
    if (bos >= 0 && bos < c->vocab_size) kv_u32(b, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (eos >= 0 && eos < c->vocab_size) kv_u32(b, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (tok) {
        if (v->unk >= 0) kv_u32(b, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk);
        kv_bool(b, "tokenizer.ggml.add_bos_token", v->add_bos);
        kv_bool(b, "tokenizer.ggml.add_eos_token", 0);
        if (!v->pre) kv_bool(b, "tokenizer.ggml.add_space_prefix", v->add_space_prefix);
    }
    if (o->chat_template) kv_str(b, "tokenizer.chat_template", o->chat_template);
    if (o->labels && o->n_labels > 0) {
        size_t *len = malloc(sizeof(size_t) * (size_t)o->n_labels);
        if (!len) {
            b->oom = 1;
            return;
        }
        for (int i = 0; i < o->n_labels; i++) len[i] = strlen(o->labels[i]);
        snprintf(k, sizeof k, "%s.classifier.output_labels", arch);
        kv_strs(b, k, o->labels, len, (size_t)o->n_labels);
        free(len);
    }
    if (o->truncation_side) kv_str(b, "lmforge.classifier.truncation_side", o->truncation_side);
}

/* The plan: names, types, shapes and offsets; refuses what llama.cpp could not load. */
static lf_status plan_tensors(writer *w, const lf_gguf_save_opts *o, const char *path, int *quantized) {
    lf_model *m = (lf_model *)w->m; /* the table is only read */
    const lf_config *c = lf_model_config(m);
    lf_gguf_save_report *rep = o->report;
    w->t = calloc((size_t)lf_model_num_params(m), sizeof *w->t);
    if (!w->t) return LF_ERR_NOMEM;
    size_t off = 0;
    *quantized = 0;
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        int head = (p->flags & LF_PARAM_EXTRA) && !strcmp(p->name, "score.weight") && p->ndim == 2 && p->shape[1] == c->d_model;
        if (((p->flags & LF_PARAM_EXTRA) && !head) || p->adapters) {
            lf_set_error("%s: the model has '%s', which is not part of the %s architecture (a LoRA adapter, say): "
                         "merge adapters into the weights first (lmforge lora merge BASE "
                         "ADAPTER OUT) and export that", path, p->name, c->arch == LF_ARCH_LLAMA ? "llama" : "gpt2");
            return LF_ERR_ARG;
        }
        tensor_plan *tp = &w->t[w->n];
        tp->p = p;
        if (head) snprintf(tp->name, sizeof tp->name, "cls.output.weight"); /* a handful of rows: F32 (choose) */
        else if (lf_gguf_name(c, p->name, tp->name, sizeof tp->name, &tp->perm) != 0) {
            lf_set_error("%s: parameter '%s' has no GGUF name", path, p->name);
            return LF_ERR_ARG;
        }
        tp->rows = p->ndim == 2 ? p->shape[0] : 1;
        tp->cols = p->ndim == 2 ? p->shape[1] : p->shape[0];
        tp->type = choose(o, tp, rep);
        LF_ASSERT(p->data || p->qops);
        LF_ASSERT(!tp->perm || (tp->rows % tp->perm == 0 && (tp->rows / tp->perm) % 2 == 0));
        tp->nbytes = lf_qtype_row_bytes(tp->type, tp->cols) * (size_t)tp->rows;
        tp->offset = off;
        off += (tp->nbytes + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
        if (tp->type != LF_QT_F32 && tp->type != LF_QT_F16 && tp->type != LF_QT_BF16) *quantized = 1;
        if (rep) {
            rep->count[tp->type]++;
            rep->bytes_before += p->qops ? p->qbytes : p->numel * sizeof(float);
            rep->bytes_after += tp->nbytes;
        }
        w->n++;
    }
    return LF_OK;
}

/* One tensor into the file in llama.cpp's row order and the planned type, encoded a chunk of rows
 * at a time: writing holds at most one decoded or permuted tensor (a linear weight, never the
 * embedding) besides the chunk. */
static lf_status write_tensor(FILE *f, const char *path, const tensor_plan *tp, uint8_t *chunk, size_t chunk_bytes) {
    static const uint8_t zero[GGUF_ALIGN];
    const lf_param *p = tp->p;
    size_t rows = (size_t)tp->rows, cols = (size_t)tp->cols, rb = lf_qtype_row_bytes(tp->type, tp->cols);
    lf_status st = LF_OK;
    void *own = NULL;
    float *deq = NULL;
    if (p->qops && lf_param_qtype(p) == tp->type) { /* already in this type: the bytes as they are */
        LF_ASSERT(p->qbytes == tp->nbytes);
        const void *src = p->qdata;
        if (tp->perm) {
            if (!(own = malloc(tp->nbytes))) st = LF_ERR_NOMEM;
            else lf_gguf_permute_rows(own, p->qdata, tp->perm, rows, rb, 1), src = own;
        }
        if (!st) st = lf_write_all(f, src, tp->nbytes, path);
    } else {
        const float *src = p->data;
        if (p->qops) { /* quantized in another type: decoded, then encoded again (a second rounding) */
            if (!(deq = malloc(p->numel * sizeof(float)))) st = LF_ERR_NOMEM;
            else p->qops->dequantize(p, deq), src = deq;
        }
        if (!st && tp->perm) {
            if (!(own = malloc(p->numel * sizeof(float)))) st = LF_ERR_NOMEM;
            else lf_gguf_permute_rows(own, src, tp->perm, rows, sizeof(float) * cols, 1), src = own;
        }
        if (!st && tp->type == LF_QT_F32) st = lf_write_all(f, src, tp->nbytes, path);
        size_t per = chunk_bytes / rb;
        for (size_t r0 = 0; !st && tp->type != LF_QT_F32 && r0 < rows; r0 += per) {
            size_t n = rows - r0 < per ? rows - r0 : per;
            long bad = -1;
#pragma omp parallel for schedule(dynamic, 16)
            for (size_t r = 0; r < n; r++)
                if (lf_quantize_row(tp->type, src + (r0 + r) * cols, chunk + r * rb, tp->cols) != LF_OK) {
#pragma omp critical(lf_gguf_bad_row)
                    if (bad < 0 || (long)r < bad) bad = (long)r;
                }
            if (bad >= 0) { /* again, for the quantizer's message */
                lf_quantize_row(tp->type, src + (r0 + (size_t)bad) * cols, chunk, tp->cols);
                char msg[512];
                snprintf(msg, sizeof msg, "%s", lf_last_error());
                lf_set_error("%s: tensor '%s' row %zu: %s", path, tp->name, r0 + (size_t)bad, msg);
                st = LF_ERR_ARG;
            } else {
                st = lf_write_all(f, chunk, n * rb, path);
            }
        }
    }
    if (st == LF_ERR_NOMEM) lf_set_error("%s: out of memory for tensor '%s' (%zu values)", path, tp->name, p->numel);
    size_t pad = (GGUF_ALIGN - tp->nbytes % GGUF_ALIGN) % GGUF_ALIGN;
    if (!st) st = lf_write_all(f, zero, pad, path);
    free(own);
    free(deq);
    return st;
}

static lf_status write_all(FILE *f, const char *path, const void *ctx) {
    const writer *w = ctx;
    size_t chunk_bytes = (size_t)4 << 20;
    for (int i = 0; i < w->n; i++) {
        size_t rb = lf_qtype_row_bytes(w->t[i].type, w->t[i].cols);
        if (rb > chunk_bytes) chunk_bytes = rb;
    }
    uint8_t *chunk = malloc(chunk_bytes);
    lf_status st = chunk ? lf_write_all(f, w->head.p, w->head.n, path) : LF_ERR_NOMEM;
    if (!chunk) lf_set_error("%s: out of memory for a %zu-byte write buffer", path, chunk_bytes);
    for (int i = 0; i < w->n && !st; i++) st = write_tensor(f, path, &w->t[i], chunk, chunk_bytes);
    free(chunk);
    return st;
}

lf_status lf_gguf_save(const lf_model *m, const lf_tokenizer *tok, const char *path, const lf_gguf_save_opts *o) {
    const lf_config *c = lf_model_config(m);
    if (o->report) memset(o->report, 0, sizeof *o->report);
    if (!writable(o->type) || !writable(o->embed) || !writable(o->fallback)) {
        lf_set_error("%s: GGUF tensors can be written as f32, f16, bf16, q8_0, q4_0, q4_1 or q4_k", path);
        return LF_ERR_ARG;
    }
    if (c->arch != LF_ARCH_LLAMA && c->arch != LF_ARCH_GPT2) {
        lf_set_error("%s: only llama and gpt2 models can be written as GGUF", path);
        return LF_ERR_ARG;
    }
    writer w = {m, NULL, 0, {0}};
    lf_tok_gguf_vocab v;
    memset(&v, 0, sizeof v);
    buf infos = {0};
    int quantized = 0;
    lf_status st = plan_tensors(&w, o, path, &quantized);
    for (int i = 0; !st && i < w.n; i++)
        if (!strcmp(w.t[i].name, "cls.output.weight") && o->labels && o->n_labels != w.t[i].rows) {
            lf_set_error("%s: %d label names for a classification head of %lld rows", path, o->n_labels, (long long)w.t[i].rows);
            st = LF_ERR_ARG;
        }
    if (!st && tok && (st = lf_tokenizer_to_gguf(tok, c->vocab_size, &v))) {
        char msg[1200];
        snprintf(msg, sizeof msg, "%s: %s", path, lf_last_error());
        lf_set_error("%s", msg);
    }
    if (!st) {
        buf kv = {0};
        put_metadata(&kv, c, tok, o, quantized, &v);
        for (int i = 0; i < w.n; i++) {
            const tensor_plan *tp = &w.t[i];
            put_str(&infos, tp->name, strlen(tp->name));
            put_u32(&infos, (uint32_t)tp->p->ndim);
            put_u64(&infos, (uint64_t)tp->cols); /* innermost first: ne[0] = the row length */
            if (tp->p->ndim == 2) put_u64(&infos, (uint64_t)tp->rows);
            put_u32(&infos, (uint32_t)tp->type);
            put_u64(&infos, tp->offset);
        }
        put(&w.head, "GGUF", 4);
        put_u32(&w.head, 3);
        put_u64(&w.head, (uint64_t)w.n);
        put_u64(&w.head, kv.count);
        put(&w.head, kv.p, kv.n);
        put(&w.head, infos.p, infos.n);
        static const uint8_t zero[GGUF_ALIGN];
        put(&w.head, zero, (GGUF_ALIGN - w.head.n % GGUF_ALIGN) % GGUF_ALIGN);
        if (kv.oom || infos.oom || w.head.oom) {
            lf_set_error("%s: out of memory for the GGUF header", path);
            st = LF_ERR_NOMEM;
        }
        free(kv.p);
    }
    if (!st && o->report) {
        for (int i = 0; i < w.n; i++)
            if (w.t[i].p->qops && lf_param_qtype(w.t[i].p) != w.t[i].type) o->report->requantized++;
    }
    if (!st) st = lf_write_atomic_with(path, write_all, &w);
    if (!st && o->report) {
        o->report->file_bytes = w.head.n;
        for (int i = 0; i < w.n; i++) o->report->file_bytes += (w.t[i].nbytes + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
    }
    lf_tok_gguf_vocab_free(&v);
    free(infos.p);
    free(w.head.p);
    free(w.t);
    return st;
}
