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

/* Any of the above: a directory is a Hugging Face model, a file is a llama2.c checkpoint. */
lf_status lf_model_load(lf_model **out, const char *path);

#endif
