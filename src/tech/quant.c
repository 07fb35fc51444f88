/* Quantized storage for linear weights (issue 12): the storage types the one linear path runs
 * (lf_storage_ops in model.h) for F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K and Q6_K, and quantizing a
 * loaded model in place. The weight is frozen; activations stay float32.
 *   - forward with a few rows (decoding: N = 1) runs lf_qdot over the output rows: the weight is
 *     read once, in its encoded bytes, so the time follows the bytes per weight;
 *   - forward with many rows (prefill, evaluation, training a LoRA on a quantized base)
 *     dequantizes tiles of rows into float32 and multiplies them with BLAS: the dequantization is
 *     paid once per weight per call and the product runs at float32 GEMM speed;
 *   - backward_input (LoRA on a quantized base, a quantized teacher) is the same tiles, transposed.
 * The tile buffer (at most TILE_FLOATS floats) is allocated per call on the GEMM path only: next
 * to a GEMM of N > SMALL_N rows its cost is noise, and the decoding path allocates nothing. */
#include "lmforge/quant.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

/* Up to SMALL_N rows go through lf_qdot: per row of activations it costs one pass of dot kernel
 * over the encoded weight (unpacking nibbles, converting, FMA: a few instructions per 16 weights),
 * while the GEMM path costs one dequantization pass (writing 4 bytes per weight) plus GEMM
 * flops at several times the dot kernel's rate. So a handful of rows cost about as much either
 * way, and beyond that the GEMM path wins by the row count; 4 keeps decoding (N = 1) and the
 * last-position logits of a small batch on the bandwidth-bound path. */
enum { SMALL_N = 4 };
enum { TILE_FLOATS = 1 << 18 }; /* 1 MiB of float32 rows: fits L2 on current CPUs, big enough for GEMM */
enum { PAR_MIN = 1 << 15 };     /* weights below which a loop stays on one thread (a fork costs more) */
/* the dot paths' threshold in weights × rows: a 256 × 256 weight of the main job's model is ~37 KB
 * in Q4_0, a few microseconds on one core, which a parallel region's start and barrier match; and
 * when another process holds a core, each barrier also waits for a descheduled thread (decoding
 * the KJV model at 2 threads on a busy 2-core machine ran 20-60x slower than at 1) */
enum { PAR_MIN_DOT = 1 << 18 };

static size_t row_bytes(lf_qtype t, const lf_param *w) { return lf_qtype_row_bytes(t, w->shape[1]); }

/* rows per tile: at least 16 so the GEMM is not degenerate for very wide rows */
static int tile_rows(int OC, int IC) {
    int r = TILE_FLOATS / (IC > 0 ? IC : 1);
    if (r < 16) r = 16;
    return r < OC ? r : OC;
}

/* dst (rows, IC) = rows [o0, o0+rows) of w as float32 */
static void deq_rows(lf_qtype t, const lf_param *w, int o0, int rows, float *dst) {
    int IC = (int)w->shape[1];
    size_t rb = row_bytes(t, w);
    const uint8_t *q = w->qdata;
#pragma omp parallel for schedule(static) if ((size_t)rows * IC >= PAR_MIN)
    for (int r = 0; r < rows; r++) lf_dequantize_row(t, q + (size_t)(o0 + r) * rb, dst + (size_t)r * IC, IC);
}

/* out (N,OC) = inp (N,IC) · Wᵀ (+ bias), each output row a dot of the encoded weight row with N
 * activation rows (the weight row stays in L1 across them) */
static void forward_dot(lf_qtype t, float *out, int ldo, const float *inp, int ldi, const lf_param *w,
                        const float *bias, size_t N) {
    int OC = (int)w->shape[0], IC = (int)w->shape[1];
    size_t rb = row_bytes(t, w);
    const uint8_t *q = w->qdata;
    lf_qdot_fn dot = lf_qdot_kernel(t, NULL);
#pragma omp parallel for schedule(static) if ((size_t)OC * IC * N >= PAR_MIN_DOT)
    for (int o = 0; o < OC; o++) {
        float b = bias ? bias[o] : 0.0f;
        for (size_t n = 0; n < N; n++) out[n * ldo + o] = dot(q + (size_t)o * rb, inp + n * ldi, IC) + b;
    }
}

static void qforward(lf_qtype t, float *out, int ldo, const float *inp, int ldi, const lf_param *w, const float *bias,
                     size_t N) {
    int OC = (int)w->shape[0], IC = (int)w->shape[1], R = tile_rows(OC, IC);
    float *tile = N > SMALL_N ? malloc(sizeof(float) * (size_t)R * IC) : NULL;
    if (!tile) { /* few rows, or no memory for a tile: the dot path needs none */
        forward_dot(t, out, ldo, inp, ldi, w, bias, N);
        return;
    }
    if (bias)
#pragma omp parallel for schedule(static)
        for (size_t n = 0; n < N; n++) memcpy(out + n * ldo, bias, sizeof(float) * (size_t)OC);
    for (int o0 = 0; o0 < OC; o0 += R) {
        int rows = OC - o0 < R ? OC - o0 : R;
        deq_rows(t, w, o0, rows, tile);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, rows, IC, 1.0f, inp, ldi, tile, IC, bias ? 1.0f : 0.0f,
                    out + o0, ldo);
    }
    free(tile);
}

/* dinp (N,IC) = (accum ? dinp : 0) + dout (N,OC) · W, W by tiles of rows (the weight has no gradient) */
static void qbackward_input(lf_qtype t, float *dinp, int ldi, int accum, const float *dout, int ldo, const lf_param *w,
                            size_t N) {
    int OC = (int)w->shape[0], IC = (int)w->shape[1], R = tile_rows(OC, IC);
    float *tile = malloc(sizeof(float) * (size_t)R * IC);
    if (!tile) { /* no memory for a tile: a row at a time (slow, but the result is the same) */
        float *row = malloc(sizeof(float) * (size_t)IC);
        LF_ASSERT(row && "quantized backward: out of memory for one row of the weight");
        for (int o = 0; o < OC; o++) {
            deq_rows(t, w, o, 1, row);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, IC, 1, 1.0f, dout + o, ldo, row, IC,
                        (accum || o > 0) ? 1.0f : 0.0f, dinp, ldi);
        }
        free(row);
        return;
    }
    for (int o0 = 0; o0 < OC; o0 += R) {
        int rows = OC - o0 < R ? OC - o0 : R;
        deq_rows(t, w, o0, rows, tile);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, IC, rows, 1.0f, dout + o0, ldo, tile, IC,
                    (accum || o0 > 0) ? 1.0f : 0.0f, dinp, ldi);
    }
    free(tile);
}

static void qdequantize(lf_qtype t, const lf_param *w, float *dst) { deq_rows(t, w, 0, (int)w->shape[0], dst); }

/* dst (n, IC) = rows ids of w: the token embedding's lookups (ids were checked by the caller) */
static void qlookup(lf_qtype t, const lf_param *w, const int32_t *ids, size_t n, float *dst) {
    int IC = (int)w->shape[1];
    size_t rb = row_bytes(t, w);
    const uint8_t *q = w->qdata;
#pragma omp parallel for schedule(static) if (n * (size_t)IC >= PAR_MIN)
    for (size_t i = 0; i < n; i++) lf_dequantize_row(t, q + (size_t)ids[i] * rb, dst + i * (size_t)IC, IC);
}

/* ---- int8 activations (llama.cpp's way): each row of activations quantized to blocks of 32 int8
 * (lf_quantize_act_q8), the weight rows dotted with them in integer arithmetic. The GEMM path gives
 * the same numbers (up to summation order) by multiplying the dequantized weights with the
 * activations quantized and decoded again, so evaluation measures what generation computes. */

/* xq (N, IC/32 blocks) = inp (N,IC, stride ldi) quantized; NULL when out of memory */
static uint8_t *quantize_acts(const float *inp, int ldi, size_t N, int IC) {
    size_t rowq = (size_t)(IC / 32) * LF_Q8A_BYTES;
    uint8_t *xq = malloc(N * rowq);
    if (!xq) return NULL;
#pragma omp parallel for schedule(static) if (N * (size_t)IC >= PAR_MIN_DOT)
    for (size_t n = 0; n < N; n++) lf_quantize_act_q8(inp + n * (size_t)ldi, xq + n * rowq, IC);
    return xq;
}

static void qforward_a8(lf_qtype t, float *out, int ldo, const float *inp, int ldi, const lf_param *w, const float *bias,
                        size_t N) {
    int OC = (int)w->shape[0], IC = (int)w->shape[1];
    size_t rowq = (size_t)(IC / 32) * LF_Q8A_BYTES, rb = row_bytes(t, w);
    uint8_t *xq = quantize_acts(inp, ldi, N, IC);
    LF_ASSERT(xq && "int8 activations: out of memory for the quantized activations");
    if (N <= SMALL_N) {
        lf_qdot_q8_fn dot = lf_qdot_q8_kernel(t, NULL);
        const uint8_t *q = w->qdata;
#pragma omp parallel for schedule(static) if ((size_t)OC * IC * N >= PAR_MIN_DOT)
        for (int o = 0; o < OC; o++) {
            float b = bias ? bias[o] : 0.0f;
            for (size_t n = 0; n < N; n++) out[n * ldo + o] = dot(q + (size_t)o * rb, xq + n * rowq, IC) + b;
        }
    } else {
        float *xf = malloc(sizeof(float) * N * (size_t)IC);
        LF_ASSERT(xf && "int8 activations: out of memory for the decoded activations");
#pragma omp parallel for schedule(static)
        for (size_t n = 0; n < N; n++) lf_dequantize_act_q8(xq + n * rowq, xf + n * (size_t)IC, IC);
        qforward(t, out, ldo, xf, IC, w, bias, N);
        free(xf);
    }
    free(xq);
}

/* one set of lf_storage_ops per type: the ops carry no type argument */
#define QTYPE_OPS(id, T, nm)                                                                                         \
    static void fwd_##id(float *out, int ldo, const float *inp, int ldi, const lf_param *w, const float *bias, size_t N) { \
        qforward(T, out, ldo, inp, ldi, w, bias, N);                                                                 \
    }                                                                                                                \
    static void bwd_##id(float *dinp, int ldi, int accum, const float *dout, int ldo, const lf_param *w, size_t N) {  \
        qbackward_input(T, dinp, ldi, accum, dout, ldo, w, N);                                                       \
    }                                                                                                                \
    static void deq_##id(const lf_param *w, float *dst) { qdequantize(T, w, dst); }                                  \
    static void look_##id(const lf_param *w, const int32_t *ids, size_t n, float *dst) { qlookup(T, w, ids, n, dst); } \
    static const lf_storage_ops ops_##id = {nm, fwd_##id, bwd_##id, deq_##id, look_##id};

/* the int8-activation twin of a type: the same encoding, dequantize, lookups and backward (the
 * gradient passes straight through the activations' rounding) */
#define QTYPE_OPS_A8(id, T, nm)                                                                                      \
    static void fwd8_##id(float *out, int ldo, const float *inp, int ldi, const lf_param *w, const float *bias,      \
                          size_t N) {                                                                                \
        qforward_a8(T, out, ldo, inp, ldi, w, bias, N);                                                              \
    }                                                                                                                \
    static const lf_storage_ops ops8_##id = {nm, fwd8_##id, bwd_##id, deq_##id, look_##id};

QTYPE_OPS(f16, LF_QT_F16, "f16")
QTYPE_OPS(bf16, LF_QT_BF16, "bf16")
QTYPE_OPS(q8_0, LF_QT_Q8_0, "q8_0")
QTYPE_OPS(q4_0, LF_QT_Q4_0, "q4_0")
QTYPE_OPS(q4_1, LF_QT_Q4_1, "q4_1")
QTYPE_OPS(q4_k, LF_QT_Q4_K, "q4_k")
QTYPE_OPS(q6_k, LF_QT_Q6_K, "q6_k")
QTYPE_OPS_A8(q8_0, LF_QT_Q8_0, "q8_0 (int8 activations)")
QTYPE_OPS_A8(q4_0, LF_QT_Q4_0, "q4_0 (int8 activations)")
QTYPE_OPS_A8(q4_1, LF_QT_Q4_1, "q4_1 (int8 activations)")
QTYPE_OPS_A8(q4_k, LF_QT_Q4_K, "q4_k (int8 activations)")

static const struct {
    lf_qtype t;
    const lf_storage_ops *ops, *ops8; /* float32 activations; int8 (the same where no integer kernel) */
} storage[] = {
    {LF_QT_F16, &ops_f16, &ops_f16},      {LF_QT_BF16, &ops_bf16, &ops_bf16}, {LF_QT_Q8_0, &ops_q8_0, &ops8_q8_0},
    {LF_QT_Q4_0, &ops_q4_0, &ops8_q4_0}, {LF_QT_Q4_1, &ops_q4_1, &ops8_q4_1}, {LF_QT_Q4_K, &ops_q4_k, &ops8_q4_k},
    {LF_QT_Q6_K, &ops_q6_k, &ops_q6_k},
};

const lf_storage_ops *lf_quant_storage_ops(lf_qtype t) {
    for (size_t i = 0; i < sizeof storage / sizeof *storage; i++)
        if (storage[i].t == t) return storage[i].ops;
    return NULL;
}

const lf_storage_ops *lf_quant_storage_ops_act(lf_qtype t, int act_q8) {
    for (size_t i = 0; i < sizeof storage / sizeof *storage; i++)
        if (storage[i].t == t) return act_q8 ? storage[i].ops8 : storage[i].ops;
    return NULL;
}

int lf_param_act_q8(const lf_param *p) {
    for (size_t i = 0; p->qops && i < sizeof storage / sizeof *storage; i++)
        if (storage[i].ops8 == p->qops && storage[i].ops8 != storage[i].ops) return 1;
    return 0;
}

lf_qtype lf_quant_default_embed_type(lf_qtype type) {
    return type == LF_QT_F32 || type == LF_QT_F16 || type == LF_QT_BF16 || type == LF_QT_Q8_0 ? type : LF_QT_Q8_0;
}

lf_qtype lf_param_qtype(const lf_param *p) {
    for (size_t i = 0; p->qops && i < sizeof storage / sizeof *storage; i++)
        if (storage[i].ops == p->qops || storage[i].ops8 == p->qops) return storage[i].t;
    return p->qops ? (lf_qtype)-1 : LF_QT_F32;
}

/* ---------------------------------------------------------------- quantizing a model */

typedef struct {
    lf_param *p;
    lf_qtype t, want;
    void *q;
    size_t bytes;
} job;

static int whole_blocks(lf_qtype t, int64_t n) { return n % lf_qtype_get(t)->blck == 0; }

/* the tensors lf_quant_model touches: the architecture's 2-D linear weights (not the embedding,
 * which is LF_KIND_EMBED, nor a head or adapter added later), the untied lm_head only when asked */
static int is_target(lf_model *m, const lf_param *p, int include_head) {
    if (p->kind != LF_KIND_WEIGHT || p->ndim != 2 || (p->flags & (LF_PARAM_EXTRA | LF_PARAM_ADAPTER))) return 0;
    if (p == lf_model_find(m, "lm_head.weight")) return include_head;
    return 1;
}

static lf_status check_type(lf_qtype t, const char *what) {
    const lf_qtype_info *q = lf_qtype_get(t);
    if (!q || t == LF_QT_F32 || t == LF_QT_Q6_K) {
        lf_set_error("quantize: %s %s is not a type lmforge quantizes to; use q8_0, q4_0, q4_1, q4_k, f16 or bf16", what,
                     q ? q->name : "(unknown)");
        return LF_ERR_ARG;
    }
    return LF_OK;
}

/* Two passes, so a failure leaves the model as it was: every tensor is quantized first (into new
 * buffers, rows in parallel), then all are installed. */
lf_status lf_quant_model(lf_model *m, const lf_quant_opts *o, lf_quant_report *rep) {
    if (rep) memset(rep, 0, sizeof *rep);
    lf_qtype fb = o->fallback == LF_QT_F32 ? LF_QT_Q4_1 : o->fallback; /* a zeroed field: the default */
    lf_status st = check_type(o->type, "type");
    if (!st) st = check_type(fb, "fallback type");
    if (st) return st;
    lf_qtype et = o->embed_type != LF_QT_F32 ? o->embed_type : lf_quant_default_embed_type(o->type);
    if (!st && o->include_embeddings) st = check_type(et, "embedding type");
    if (st) return st;
    lf_param *wte = lf_model_find(m, "model.embed_tokens.weight");
    if (!wte) wte = lf_model_find(m, "transformer.wte.weight");
    int np = lf_model_num_params(m), nj = 0;
    job *jobs = calloc((size_t)np + 1, sizeof *jobs);
    if (!jobs) return LF_ERR_NOMEM;
    for (int i = 0; i < np && !st; i++) {
        lf_param *p = lf_model_param(m, i);
        lf_qtype want = o->type;
        if (p == wte && o->include_embeddings) want = et;
        else if (!is_target(m, p, o->include_head)) continue;
        if (p->qops) continue; /* stored in another type already */
        if (p->adapters) {
            lf_set_error("quantize: '%s' has an adapter attached; quantize the base model first, then attach adapters "
                         "(LoRA works on a quantized base)", p->name);
            st = LF_ERR_ARG;
            break;
        }
        int64_t IC = p->shape[1];
        lf_qtype t = whole_blocks(want, IC) ? want : whole_blocks(fb, IC) ? fb : LF_QT_F32;
        if (t == LF_QT_F32) continue; /* rows are whole blocks of neither: stays float32 */
        size_t rb = lf_qtype_row_bytes(t, IC), bytes = rb * (size_t)p->shape[0];
        job *j = &jobs[nj++];
        *j = (job){p, t, want, malloc(bytes ? bytes : 1), bytes};
        if (!j->q) {
            st = LF_ERR_NOMEM;
            break;
        }
        int bad = -1;
#pragma omp parallel for schedule(static) if (p->numel >= PAR_MIN)
        for (int64_t r = 0; r < p->shape[0]; r++) {
            if (lf_quantize_row(t, p->data + (size_t)r * (size_t)IC, (uint8_t *)j->q + (size_t)r * rb, IC) != LF_OK) {
#pragma omp critical(lf_quant_bad)
                if (bad < 0 || r < bad) bad = (int)r;
            }
        }
        if (bad >= 0) {
            lf_quantize_row(t, p->data + (size_t)bad * (size_t)IC, j->q, IC); /* again, for its message */
            char msg[512];
            snprintf(msg, sizeof msg, "%s", lf_last_error());
            lf_set_error("quantize: '%s' row %d: %s", p->name, bad, msg);
            st = LF_ERR_ARG;
        }
    }
    for (int k = 0; k < nj && !st; k++) {
        job *j = &jobs[k];
        size_t before = j->p->numel * sizeof(float);
        if (j->p->mask) lf_model_set_mask(m, j->p, NULL); /* pruned zeros are in the values; the frozen
                                                               weight needs no mask to keep them */
        st = lf_model_set_storage(m, j->p, lf_quant_storage_ops_act(j->t, o->act_q8), j->q, j->bytes);
        if (st) break;
        j->q = NULL; /* the model owns it now */
        if (rep) {
            rep->tensors++;
            rep->fallbacks += j->t != j->want;
            rep->embeddings += j->p == wte;
            rep->bytes_before += before;
            rep->bytes_after += j->bytes;
        }
    }
    for (int k = 0; k < nj; k++) free(jobs[k].q);
    free(jobs);
    /* release the float32 copies (a model left uncompacted after an allocation failure still works) */
    if (!st && nj) st = lf_model_compact_weights(m);
    return st;
}
