/* Weight-only quantization in llama.cpp's block formats (issue 12): the block kernels (quantize,
 * dequantize, dot with float32 activations; a plain reference beside each fast one), storage
 * types for the one linear path (lf_storage_ops), and quantizing a loaded model in place.
 * The encoded bytes of a (OC, IC) weight are exactly a GGUF tensor's data (rows of IC values,
 * ggml's ne[0] = IC), so a GGUF file is written from, and read into, storage without a copy. */
#ifndef LMFORGE_QUANT_H
#define LMFORGE_QUANT_H

#include "lmforge/model.h"

/* ggml's type ids (the values GGUF files store) */
typedef enum {
    LF_QT_F32 = 0,
    LF_QT_F16 = 1,
    LF_QT_Q4_0 = 2,
    LF_QT_Q4_1 = 3,
    LF_QT_Q8_0 = 8,
    LF_QT_Q4_K = 12,
    LF_QT_Q6_K = 14,
    LF_QT_BF16 = 30,
} lf_qtype;

typedef struct {
    lf_qtype type;
    const char *name;  /* "q8_0", "q4_k", ... (lower case, as llama.cpp's quantize takes them) */
    int blck;          /* values per block (1 for F32/F16/BF16) */
    int bytes;         /* bytes per block */
} lf_qtype_info;

const lf_qtype_info *lf_qtype_get(lf_qtype t); /* NULL for a type lmforge does not know */
/* "q8_0", "Q4_K", "f16", ... -> type; LF_ERR_ARG naming the accepted names otherwise */
lf_status lf_qtype_parse(const char *name, lf_qtype *out);
size_t lf_qtype_row_bytes(lf_qtype t, int64_t n); /* n a multiple of blck */

/* Block kernels over one row of n values (n a multiple of the type's blck).
 * quantize: every type above but Q6_K (read from GGUF files only: quantize returns LF_ERR_ARG). */
lf_status lf_quantize_row(lf_qtype t, const float *src /* (n) */, void *dst, int64_t n);
void lf_quantize_row_ref(lf_qtype t, const float *src /* (n) */, void *dst, int64_t n);
void lf_dequantize_row(lf_qtype t, const void *src, float *dst /* (n) */, int64_t n);
/* sum_i W[i]·x[i] for one encoded row W: the fast kernel for the CPU (AVX-512, AVX2 or plain,
 * chosen at run time) and the reference */
float lf_qdot(lf_qtype t, const void *row, const float *x /* (n) */, int64_t n);
float lf_qdot_ref(lf_qtype t, const void *row, const float *x /* (n) */, int64_t n);
const char *lf_qdot_kernel_name(void); /* "avx512", "avx2" or "plain": for --version and benches */
/* One type's dot kernel for an instruction set ("avx512", "avx2", "plain"; NULL: the CPU's best),
 * resolved once by a caller that runs it many times; NULL when this CPU or build lacks the set. */
typedef float (*lf_qdot_fn)(const void *row, const float *x /* (n) */, int64_t n);
lf_qdot_fn lf_qdot_kernel(lf_qtype t, const char *isa);

/* Integer dot products (llama.cpp's way of running quantized weights fast): the activations are
 * quantized too, to blocks of 32 int8 with a float scale and the block's integer sum
 * (LF_Q8A_BYTES per block; an in-memory layout of lmforge's, never written to a file), and a row
 * of Q8_0, Q4_0, Q4_1 or Q4_K weights is dotted with them in integer arithmetic, one float
 * multiply-add per block of 32. Each activation block is d·q with d = max|x|/127: a relative
 * error of at most 1/254 of the block's largest value per activation, which the KLD of the
 * model's outputs measures (bench/run-quant). n is a multiple of 32 (256 for Q4_K). */
enum { LF_Q8A_BYTES = 40 };
void lf_quantize_act_q8(const float *x /* (n) */, void *dst /* (n/32 blocks) */, int64_t n);
void lf_dequantize_act_q8(const void *src, float *x /* (n) */, int64_t n);
/* sum_i W[i]·xq[i]; the reference computes each block's integer sum and scales it in double */
float lf_qdot_q8_ref(lf_qtype t, const void *row, const void *xq, int64_t n);
typedef float (*lf_qdot_q8_fn)(const void *row, const void *xq, int64_t n);
/* the kernel for an instruction set ("avx512vnni", "avx2", "plain"; NULL: the CPU's best); NULL
 * for a type without integer kernels (F16, BF16, Q6_K: they keep float32 activations) or a set
 * this CPU lacks */
lf_qdot_q8_fn lf_qdot_q8_kernel(lf_qtype t, const char *isa);
const char *lf_qdot_q8_kernel_name(void); /* "avx512vnni", "avx2" or "plain" */

/* IEEE half and bfloat16 conversions as ggml makes them (round to nearest even) */
uint16_t lf_fp32_to_fp16(float f);
float lf_fp16_to_fp32(uint16_t h);
uint16_t lf_fp32_to_bf16(float f);
float lf_bf16_to_fp32(uint16_t h);

/* The storage type of a quantized linear weight: forward (batch-1 rows by lf_qdot; many rows by
 * dequantizing tiles of W into float32 for BLAS), backward_input (frozen weight: LoRA on a
 * quantized base, a quantized teacher), dequantize. NULL for F32 and unknown types. */
const lf_storage_ops *lf_quant_storage_ops(lf_qtype t);
/* The same type with int8 activations (act_q8 != 0) for Q8_0, Q4_0, Q4_1 and Q4_K: few rows run
 * the integer dot kernels (lf_qdot_q8), many rows multiply the dequantized weights with the
 * activations rounded the same way; the other types have float32 activations either way. */
const lf_storage_ops *lf_quant_storage_ops_act(lf_qtype t, int act_q8);
int lf_param_act_q8(const lf_param *p); /* 1 when p's storage runs int8 activations */
lf_qtype lf_param_qtype(const lf_param *p); /* F32 when the tensor holds float32; (lf_qtype)-1 for a
                                               storage type not from lf_quant_storage_ops */

typedef struct {
    lf_qtype type;          /* for the linear weights (q/k/v/o, MLP; GPT-2's fused qkv) */
    lf_qtype fallback;      /* for rows that are not whole blocks of type (Q4_K needs 256; SmolLM2's
                               576-wide rows are not): Q4_1 by default (llama.cpp uses Q5_0); the
                               zero value (LF_QT_F32) means that default */
    int include_head;       /* also an untied lm_head (a tied head stays with the embedding) */
    int include_embeddings; /* also the token embedding, and with it a tied head (GPT-2's position
                               embedding stays float32) */
    lf_qtype embed_type;    /* its type; zero (F32): lf_quant_default_embed_type(type) */
    int act_q8;             /* the linear weights run int8 activations (lf_quant_storage_ops_act) */
} lf_quant_opts;
/* The embedding's type for a weight type, as lf_gguf_save picks it: the type itself for F16, BF16
 * and Q8_0, else Q8_0 (the embedding and a tied head see every token: llama.cpp's quantize keeps
 * the output head at 6 bits or more, and Q8_0 where rows are not whole Q6_K blocks). */
lf_qtype lf_quant_default_embed_type(lf_qtype type);

typedef struct {
    int tensors;            /* tensors quantized */
    int fallbacks;          /* of which, in the fallback type */
    int embeddings;         /* of which, the token embedding (1 or 0) */
    size_t bytes_before, bytes_after; /* of those tensors */
} lf_quant_report;

/* Quantize a model's linear weights in place (they become frozen storage); a tensor whose rows are
 * whole blocks of neither type stays float32. */
lf_status lf_quant_model(lf_model *m, const lf_quant_opts *o, lf_quant_report *rep);

#endif
