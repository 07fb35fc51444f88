/* lmforge checkpoints: safetensors (read, untrusted input; write, atomic), Hugging Face model
 * directories (config.json + model.safetensors or a sharded index), llama2.c .bin files. */
#ifndef LMFORGE_CKPT_H
#define LMFORGE_CKPT_H

#include "lmforge/core.h"
#include "lmforge/model.h"

typedef enum { LF_DT_F32, LF_DT_F16, LF_DT_BF16, LF_DT_F64, LF_DT_I32, LF_DT_I64, LF_DT_I16, LF_DT_I8,
               LF_DT_U8, LF_DT_BOOL } lf_dtype;

/* ---- safetensors reading: every length, offset, dtype and shape is checked against the file */
typedef struct lf_st lf_st;
lf_status lf_st_open(lf_st **out, const char *path);
void lf_st_close(lf_st *st);
int lf_st_count(const lf_st *st);
const char *lf_st_name(const lf_st *st, int i);
/* index of a tensor by name, or -1 */
int lf_st_find(const lf_st *st, const char *name);
lf_dtype lf_st_dtype(const lf_st *st, int i);
int lf_st_ndim(const lf_st *st, int i);
const int64_t *lf_st_shape(const lf_st *st, int i);
size_t lf_st_numel(const lf_st *st, int i);
/* Copy tensor i converted to float32 (from F32/F16/BF16/F64) or int32 (from I32/I64/I16/I8/U8). */
lf_status lf_st_read_f32(const lf_st *st, int i, float *dst, size_t numel);
lf_status lf_st_read_i32(const lf_st *st, int i, int32_t *dst, size_t numel);
/* "key" in __metadata__, or NULL */
const char *lf_st_metadata(const lf_st *st, const char *key);

/* ---- safetensors writing: sorted names, 8-byte aligned header, temp file + fsync + rename */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[4];
    const float *data; /* float32, row-major; may be NULL with fill != NULL */
    /* optional producer: writes numel floats into buf (used to transpose on the fly) */
    void (*fill)(const void *ctx, float *buf);
    const void *ctx;
} lf_st_tensor;
lf_status lf_st_write(const char *path, const lf_st_tensor *t, int n, const char *const *meta_kv, int nmeta);

/* ---- Hugging Face directories */
lf_status lf_hf_read_config(const char *dir, lf_config *cfg);
lf_status lf_hf_load(lf_model **out, const char *dir);
lf_status lf_hf_save(lf_model *m, const char *dir);

/* ---- llama2.c checkpoints (legacy headerless format) */
lf_status lf_llama2c_load(lf_model **out, const char *path);

/* ---- GGUF (llama.cpp), versions 2 and 3: untrusted reader, dequantized to float32 on load */
#include "lmforge/tokenizer.h"
typedef struct lf_gguf lf_gguf;
typedef struct {
    const char *key; /* not NUL-terminated */
    int key_len;
    uint32_t type;   /* GGUF value type (9 = array) */
    uint32_t arr_type;
    uint64_t n;      /* array length */
    const uint8_t *val, *val_end; /* the encoded value inside the mapped file */
} lf_gguf_kv;
typedef struct {
    char name[128];
    int ndim;
    int64_t ne[4];   /* innermost first */
    size_t numel, nbytes;
    uint32_t type;   /* ggml type id */
    const char *type_name;
    uint64_t offset;
    const uint8_t *data;
} lf_gguf_tensor;
lf_status lf_gguf_open(lf_gguf **out, const char *path);
void lf_gguf_close(lf_gguf *g);
const char *lf_gguf_path(const lf_gguf *g);
int lf_gguf_num_kv(const lf_gguf *g);
const lf_gguf_kv *lf_gguf_kv_at(const lf_gguf *g, int i);
const lf_gguf_kv *lf_gguf_find_kv(const lf_gguf *g, const char *key);
int lf_gguf_num_tensors(const lf_gguf *g);
const lf_gguf_tensor *lf_gguf_tensor_at(const lf_gguf *g, int i);
const lf_gguf_tensor *lf_gguf_find_tensor(const lf_gguf *g, const char *name);
/* metadata getters: 0 found, 1 absent (*out = def), -1 wrong type or range (error set) */
int lf_gguf_get_int(const lf_gguf *g, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out);
int lf_gguf_get_float(const lf_gguf *g, const char *key, double def, double *out);
const char *lf_gguf_get_str(const lf_gguf *g, const char *key, size_t *len);
lf_status lf_gguf_dequantize(const lf_gguf *g, const lf_gguf_tensor *t, float *dst); /* numel floats */
/* the block dequantizers (nblocks blocks; F32/F16/BF16: n values), exposed for tests */
float lf_gguf_f16(uint16_t h);
void lf_gguf_deq_f32(const uint8_t *src, float *dst, size_t n);
void lf_gguf_deq_f16(const uint8_t *src, float *dst, size_t n);
void lf_gguf_deq_bf16(const uint8_t *src, float *dst, size_t n);
void lf_gguf_deq_q8_0(const uint8_t *src, float *dst, size_t nblocks);
void lf_gguf_deq_q4_0(const uint8_t *src, float *dst, size_t nblocks);
void lf_gguf_deq_q4_1(const uint8_t *src, float *dst, size_t nblocks);
void lf_gguf_deq_q4_k(const uint8_t *src, float *dst, size_t nblocks);
void lf_gguf_deq_q6_k(const uint8_t *src, float *dst, size_t nblocks);
lf_status lf_gguf_load_model(lf_model **out, const lf_gguf *g);
lf_status lf_gguf_tokenizer(lf_tokenizer **out, const lf_gguf *g);
/* model (llama or gpt2) and, when tok != NULL, the tokenizer from the metadata */
lf_status lf_gguf_load(lf_model **out, lf_tokenizer **tok, const char *path);
/* The same with options. keep_quantized: linear weights stored as Q8_0, Q4_0, Q4_1, Q4_K or Q6_K
 * stay encoded (a copy the model owns, frozen, run by quant.h's storage types), for inference and
 * frozen teachers: the float32 copies are never allocated. The embedding (looked up by row), the
 * norms and the other types are dequantized as before. Default (NULL or 0): every tensor float32,
 * for training and convert. */
typedef struct {
    int keep_quantized;
    int act_q8; /* with keep_quantized: the kept linear weights run int8 activations (quant.h) */
} lf_gguf_load_opts;
lf_status lf_gguf_load_model_with(lf_model **out, const lf_gguf *g, const lf_gguf_load_opts *o);
lf_status lf_gguf_load_with(lf_model **out, lf_tokenizer **tok, const char *path, const lf_gguf_load_opts *o);
int lf_is_gguf(const char *path); /* starts with the GGUF magic */

/* ---- GGUF writing (src/ckpt/gguf_write.c): llama and gpt2 models in llama.cpp's layout (its tensor
 * names, q/k rows in its RoPE order, hyperparameters and tokenizer in the metadata keys its
 * converter writes), version 3, data aligned to 32 bytes, atomic (temp file + fsync + rename).
 * Norms, biases and GPT-2's position embedding are always F32. A tensor already quantized in
 * memory is written as its bytes when its type is the one chosen, else dequantized and encoded
 * again. Models with extra tensors (LoRA adapters) are refused: merge the adapters first (lmforge
 * lora merge). tok may be NULL (no tokenizer.ggml.* keys).
 * A sequence-classification head (score.weight, src/tech/seqcls.c) is written under llama.cpp's
 * name for a classifier's output projection, cls.output.weight (F32, ne = [d_model, labels]),
 * with the label names in {arch}.classifier.output_labels and the truncation side in
 * lmforge.classifier.truncation_side; lf_gguf_load_model reads it back as score.weight. llama.cpp
 * defines cls.output for its BERT and Qwen3 families only: its llama and gpt2 loaders count the
 * tensor as unexpected and refuse such a file. */
#include "lmforge/quant.h"
typedef struct {
    int count[32];        /* tensors written per ggml type id */
    int fallbacks;        /* weights whose rows are not whole blocks of the type: in the fallback (or F16) */
    int requantized;      /* tensors quantized in memory, written in another type */
    size_t bytes_before;  /* of all tensors, as held in memory (float32 or their encoded size) */
    size_t bytes_after;   /* tensor data in the file */
    size_t file_bytes;
} lf_gguf_save_report;
typedef struct {
    lf_qtype type;     /* linear weights: F32, F16, BF16, Q8_0, Q4_0, Q4_1 or Q4_K */
    lf_qtype fallback; /* rows that are not whole blocks of type (Q4_K's 256); F16 where that fails too */
    lf_qtype embed;    /* token embedding and untied output head */
    const char *name;  /* general.name (NULL: "lmforge") */
    const char *chat_template; /* tokenizer.chat_template (Jinja text, as transformers keeps it), or NULL */
    const char *const *labels; /* a classifier's label names (n_labels of them, = score.weight's rows), or NULL */
    int n_labels;
    const char *truncation_side; /* a classifier's: "right" or "left", or NULL */
    lf_gguf_save_report *report; /* filled when not NULL */
} lf_gguf_save_opts;
/* type as given; fallback Q4_1; embed: type for F32/F16/BF16/Q8_0, else Q8_0 (see gguf_write.c) */
void lf_gguf_save_opts_default(lf_gguf_save_opts *o, lf_qtype type);
lf_status lf_gguf_save(const lf_model *m, const lf_tokenizer *tok, const char *path, const lf_gguf_save_opts *o);

/* Any of the above: a directory is a Hugging Face model, a file a GGUF (by its magic) or else a llama2.c checkpoint. */
lf_status lf_model_load(lf_model **out, const char *path);

#endif
