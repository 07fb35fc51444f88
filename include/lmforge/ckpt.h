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
int lf_is_gguf(const char *path); /* starts with the GGUF magic */

/* Any of the above: a directory is a Hugging Face model, a file a GGUF (by its magic) or else a llama2.c checkpoint. */
lf_status lf_model_load(lf_model **out, const char *path);

#endif
