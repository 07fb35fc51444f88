/* Block kernels of the weight-only quantized types, in llama.cpp's (ggml's) exact block layouts:
 * reference quantizers that give ggml's bytes, dequantizers, and dot products of one encoded row
 * with float32 activations (AVX-512, AVX2+FMA and plain C, chosen at run time, with a plain
 * reference kept beside them as the test oracle). Pure functions: no allocation, no files.
 *
 * The quantizers must match ggml's reference C byte for byte, so this file is compiled without
 * floating-point contraction (CMakeLists.txt: -ffp-contract=off): a fused multiply-add rounds
 * once where ggml's C rounds twice, and moves values across a rounding boundary. The rounding
 * helpers follow ggml's: nearest_int's add-a-magic-constant (round half to even), roundf (half
 * away from zero) and truncating casts, each where ggml uses it. */
#include "lmforge/quant.h"

#include <math.h>
#include <string.h>
#include <strings.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define LF_QX86 1
#endif

/* Block layouts (little-endian, packed; every block size is even, the f16 fields are read with
 * memcpy so rows at any address work):
 *   Q8_0 (34 B / 32): f16 d | int8 q[32]                          x = d·q
 *   Q4_0 (18 B / 32): f16 d | u8 qs[16]                            x = d·(nibble - 8)
 *   Q4_1 (20 B / 32): f16 d | f16 m | u8 qs[16]                    x = d·nibble + m
 *      value j < 16 is the low nibble of qs[j], value j+16 its high nibble
 *   Q4_K (144 B / 256): f16 d | f16 dmin | u8 scales[12] | u8 qs[128]
 *      8 sub-blocks of 32 with 6-bit scale sc and min mn (packed, see scale_min_k4):
 *      x = d·sc·nibble - dmin·mn; each 32-byte run of qs holds two sub-blocks (low, then high nibbles)
 *   Q6_K (210 B / 256): u8 ql[128] | u8 qh[64] | int8 scales[16] | f16 d
 *      16 sub-blocks of 16, x = d·scale·(q - 32), q 6 bits: 4 from ql, 2 from qh (see q6k_value) */
enum { QK = 32, QKK = 256 };
enum { Q8_0_B = 34, Q4_0_B = 18, Q4_1_B = 20, Q4_K_B = 144, Q6_K_B = 210 };

static const lf_qtype_info qtypes[] = {
    {LF_QT_F32, "f32", 1, 4},        {LF_QT_F16, "f16", 1, 2},         {LF_QT_BF16, "bf16", 1, 2},
    {LF_QT_Q8_0, "q8_0", QK, Q8_0_B}, {LF_QT_Q4_0, "q4_0", QK, Q4_0_B}, {LF_QT_Q4_1, "q4_1", QK, Q4_1_B},
    {LF_QT_Q4_K, "q4_k", QKK, Q4_K_B}, {LF_QT_Q6_K, "q6_k", QKK, Q6_K_B},
};

const lf_qtype_info *lf_qtype_get(lf_qtype t) {
    for (size_t i = 0; i < sizeof qtypes / sizeof *qtypes; i++)
        if (qtypes[i].type == t) return &qtypes[i];
    return NULL;
}

lf_status lf_qtype_parse(const char *name, lf_qtype *out) {
    for (size_t i = 0; name && i < sizeof qtypes / sizeof *qtypes; i++)
        if (strcasecmp(name, qtypes[i].name) == 0) {
            *out = qtypes[i].type;
            return LF_OK;
        }
    lf_set_error("unknown quantization type '%s': use one of q8_0, q4_0, q4_1, q4_k, q6_k, f16, bf16, f32",
                 name ? name : "");
    return LF_ERR_ARG;
}

size_t lf_qtype_row_bytes(lf_qtype t, int64_t n) {
    const lf_qtype_info *q = lf_qtype_get(t);
    return q && n >= 0 ? (size_t)(n / q->blck) * (size_t)q->bytes : 0;
}

/* ---------------------------------------------------------------- half precision */

/* IEEE binary16, round to nearest even; overflow gives infinity, NaN stays a (quiet) NaN */
uint16_t lf_fp32_to_fp16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds past 65504 */
    if (a >= 0x38800000u) {                                  /* normal: >= 2^-14 */
        uint32_t r = a - 0x38000000u;                        /* exponent rebiased from 127 to 15 */
        return (uint16_t)(sign | ((r + 0x0fffu + ((r >> 13) & 1u)) >> 13));
    }
    if (a <= 0x33000000u) return (uint16_t)sign; /* <= 2^-25: the tie at 2^-25 goes to even zero */
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
    int sh = 126 - (int)e; /* subnormal: units of 2^-24; e in [102, 112] so sh in [14, 24] */
    uint32_t h = m >> sh, rem = m & ((1u << sh) - 1u), half = 1u << (sh - 1);
    if (rem > half || (rem == half && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

float lf_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 31u, m = h & 0x3ffu, u;
    if (e == 31) u = sign | 0x7f800000u | m << 13;
    else if (e) u = sign | (e + 112u) << 23 | m << 13;
    else if (!m) u = sign;
    else { /* subnormal: shift the leading one up to the implicit bit */
        int k = 0;
        while (!(m & 0x400u)) m <<= 1, k++;
        u = sign | (uint32_t)(113 - k) << 23 | (m & 0x3ffu) << 13;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* bfloat16 as ggml makes it: round to nearest even, a NaN made quiet */
uint16_t lf_fp32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float lf_bf16_to_fp32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float ldh(const uint8_t *p) { return lf_fp16_to_fp32((uint16_t)(p[0] | p[1] << 8)); }
static inline void sth(uint8_t *p, float f) {
    uint16_t h = lf_fp32_to_fp16(f);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* ---------------------------------------------------------------- reference quantizers */

/* ggml's nearest_int: adding 1.5·2^23 leaves the rounded integer (half to even) in the low
 * mantissa bits. Meaningful for |f| < 2^22; ggml only asserts that, so any other input gives the
 * same defined garbage here as there (the callers clamp it). */
static inline int nearest_int(float f) {
    float v = f + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static void quantize_q8_0(const float *x, uint8_t *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += QK, y += Q8_0_B) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        sth(y, d);
        for (int j = 0; j < QK; j++) y[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    }
}

/* the signed value of largest magnitude (its first occurrence) sets d = max/-8, so it maps to -8
 * exactly and the opposite extreme clamps at 7 */
static void quantize_q4_0(const float *x, uint8_t *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += QK, y += Q4_0_B) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++)
            if (amax < fabsf(x[j])) amax = fabsf(x[j]), max = x[j];
        float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        sth(y, d);
        for (int j = 0; j < QK / 2; j++) {
            float x0 = x[j] * id, x1 = x[j + QK / 2] * id;
            int q0 = (int8_t)(x0 + 8.5f), q1 = (int8_t)(x1 + 8.5f);
            y[2 + j] = (uint8_t)((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
        }
    }
}

static void quantize_q4_1(const float *x, uint8_t *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, x += QK, y += Q4_1_B) {
        float min = 3.402823466e+38f, max = -3.402823466e+38f;
        for (int j = 0; j < QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        float d = (max - min) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        sth(y, d);
        sth(y + 2, min);
        for (int j = 0; j < QK / 2; j++) {
            float x0 = (x[j] - min) * id, x1 = (x[j + QK / 2] - min) * id;
            int q0 = (int8_t)(x0 + 0.5f), q1 = (int8_t)(x1 + 0.5f);
            y[4 + j] = (uint8_t)((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
        }
    }
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ggml's make_qkx2_quants: levels L[i] in [0, nmax] with x ≈ scale·L - the_min, minimising the
 * weighted squared error over nstep+1 trial scales (nmax + rmin + rdelta·is)/(max - min); the
 * offset is clamped so the minimum is never above zero. Returns the scale. */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min, uint8_t *Laux,
                           float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min), scale = 1.0f / iscale, best = 0.0f;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * L[i] + min - x[i];
        best += w[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                cur += w[i] * (diff * diff);
            }
            if (cur < best) {
                memcpy(L, Laux, (size_t)n);
                best = cur;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Q4_K's 12 scale bytes: sub-blocks 0-3 keep scale and min in the low 6 bits of bytes 0-3 and
 * 4-7; sub-blocks 4-7 keep their low 4 bits in bytes 8-11 (scale low, min high nibble) and
 * their top 2 bits in the spare top bits of bytes 0-3 (scale) and 4-7 (min). */
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 15) | (q[j - 4] >> 6) << 4;
        *mn = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}

static void quantize_q4_k(const float *x, uint8_t *y, int64_t nb) {
    uint8_t L[QKK], Laux[32];
    float w[32], mins[8], scales[8];
    for (int64_t b = 0; b < nb; b++, x += QKK, y += Q4_K_B) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; j++) {
            const float *xs = x + 32 * j;
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
            float av_x = sqrtf(sum_x2 / 32.0f);
            for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xs[l]);
            scales[j] = fit_scale_min(32, 15, xs, w, L + 32 * j, &mins[j], Laux, -1.0f, 0.1f, 20);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f, inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
        uint8_t *sc = y + 4, *q = y + 16;
        for (int j = 0; j < 8; j++) {
            uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]), lm = (uint8_t)nearest_int(inv_min * mins[j]);
            ls = ls < 63 ? ls : 63;
            lm = lm < 63 ? lm : 63;
            if (j < 4) {
                sc[j] = ls;
                sc[j + 4] = lm;
            } else {
                sc[j + 4] = (uint8_t)((ls & 15) | (lm & 15) << 4);
                sc[j - 4] |= (uint8_t)((ls >> 4) << 6);
                sc[j] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        sth(y, max_scale / 63.0f);
        sth(y + 2, max_min / 63.0f);
        float d = ldh(y), dmin = ldh(y + 2);
        for (int j = 0; j < 8; j++) { /* levels again against the scales as stored */
            int s, m;
            scale_min_k4(j, sc, &s, &m);
            float ds = d * (float)s;
            if (ds == 0.0f) continue;
            float dm = dmin * (float)m;
            for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)clampi(nearest_int((x[32 * j + l] + dm) / ds), 0, 15);
        }
        for (int j = 0; j < QKK; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | L[j + l + 32] << 4);
    }
}

void lf_quantize_row_ref(lf_qtype t, const float *src, void *dst, int64_t n) {
    uint8_t *y = dst;
    switch (t) {
    case LF_QT_F32: memcpy(y, src, (size_t)n * 4); break;
    case LF_QT_F16:
        for (int64_t i = 0; i < n; i++) sth(y + 2 * i, src[i]);
        break;
    case LF_QT_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = lf_fp32_to_bf16(src[i]);
            y[2 * i] = (uint8_t)h;
            y[2 * i + 1] = (uint8_t)(h >> 8);
        }
        break;
    case LF_QT_Q8_0: quantize_q8_0(src, y, n / QK); break;
    case LF_QT_Q4_0: quantize_q4_0(src, y, n / QK); break;
    case LF_QT_Q4_1: quantize_q4_1(src, y, n / QK); break;
    case LF_QT_Q4_K: quantize_q4_k(src, y, n / QKK); break;
    default: LF_ASSERT(!"lf_quantize_row_ref: a type lmforge does not quantize to");
    }
}

/* 1 when every f16 (or bf16) scale the row stores is finite */
static int scales_finite(lf_qtype t, const uint8_t *y, int64_t n) {
    int64_t nb = n / lf_qtype_get(t)->blck;
    size_t stride = (size_t)lf_qtype_get(t)->bytes;
    for (int64_t b = 0; b < nb; b++, y += stride) {
        uint16_t h0 = (uint16_t)(y[0] | y[1] << 8), h1 = 0; /* the second f16 only where the block has one */
        if (t == LF_QT_Q4_1 || t == LF_QT_Q4_K) h1 = (uint16_t)(y[2] | y[3] << 8);
        switch (t) {
        case LF_QT_BF16:
            if ((h0 & 0x7f80u) == 0x7f80u) return 0;
            break;
        case LF_QT_F16: case LF_QT_Q8_0: case LF_QT_Q4_0:
            if ((h0 & 0x7c00u) == 0x7c00u) return 0;
            break;
        case LF_QT_Q4_1: case LF_QT_Q4_K:
            if ((h0 & 0x7c00u) == 0x7c00u || (h1 & 0x7c00u) == 0x7c00u) return 0;
            break;
        default: break;
        }
    }
    return 1;
}

lf_status lf_quantize_row(lf_qtype t, const float *src, void *dst, int64_t n) {
    const lf_qtype_info *q = lf_qtype_get(t);
    if (!q || t == LF_QT_Q6_K) {
        lf_set_error("quantize: %s is read from GGUF files but not written; use q8_0, q4_0, q4_1, q4_k, f16 or bf16",
                     q ? q->name : "this type");
        return LF_ERR_ARG;
    }
    if (n < 0 || n % q->blck) {
        lf_set_error("quantize: a row of %lld values is not whole %s blocks of %d", (long long)n, q->name, q->blck);
        return LF_ERR_ARG;
    }
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(src[i])) {
            lf_set_error("quantize: value %lld of the row is %g; only finite values can be quantized", (long long)i,
                         (double)src[i]);
            return LF_ERR_ARG;
        }
    lf_quantize_row_ref(t, src, dst, n);
    if (!scales_finite(t, dst, n)) {
        float amax = 0;
        for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(src[i]));
        lf_set_error("quantize: values up to %g are too large for %s (its half-precision scales overflow); keep the "
                     "tensor in f32", (double)amax, q->name);
        return LF_ERR_ARG;
    }
    return LF_OK;
}

/* ---------------------------------------------------------------- dequantizers */

static inline int q6k_value(const uint8_t *ql, const uint8_t *qh, int i) {
    /* value i of a 128-value half: ql holds 64 bytes, qh 32; i = 32·k + l (k = 0..3) */
    int k = i >> 5, l = i & 31;
    int lo = (k & 1 ? ql[l + 32] : ql[l]) >> (k & 2 ? 4 : 0) & 15;
    return (lo | (qh[l] >> (2 * k) & 3) << 4) - 32;
}

static void deq_block(lf_qtype t, const uint8_t *s, float *y) {
    switch (t) {
    case LF_QT_Q8_0: {
        float d = ldh(s);
        for (int j = 0; j < QK; j++) y[j] = d * (float)(int8_t)s[2 + j];
        break;
    }
    case LF_QT_Q4_0: {
        float d = ldh(s);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = d * (float)((s[2 + j] & 15) - 8);
            y[j + QK / 2] = d * (float)((s[2 + j] >> 4) - 8);
        }
        break;
    }
    case LF_QT_Q4_1: {
        float d = ldh(s), m = ldh(s + 2);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = d * (float)(s[4 + j] & 15) + m;
            y[j + QK / 2] = d * (float)(s[4 + j] >> 4) + m;
        }
        break;
    }
    case LF_QT_Q4_K: {
        float d = ldh(s), dmin = ldh(s + 2);
        const uint8_t *q = s + 16;
        for (int j = 0; j < 8; j += 2, q += 32) {
            int sc, mn;
            scale_min_k4(j, s + 4, &sc, &mn);
            float d1 = d * (float)sc, m1 = dmin * (float)mn;
            scale_min_k4(j + 1, s + 4, &sc, &mn);
            float d2 = d * (float)sc, m2 = dmin * (float)mn;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 15) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
        break;
    }
    case LF_QT_Q6_K: {
        float d = ldh(s + 208);
        const int8_t *sc = (const int8_t *)(s + 192);
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < 128; i++) /* sub-block of 16: scale index 8h + i/16 */
                y[128 * h + i] = d * (float)sc[8 * h + i / 16] * (float)q6k_value(s + 64 * h, s + 128 + 32 * h, i);
        break;
    }
    default: LF_ASSERT(!"deq_block: not a block type");
    }
}

void lf_dequantize_row(lf_qtype t, const void *src, float *dst, int64_t n) {
    const uint8_t *s = src;
    switch (t) {
    case LF_QT_F32: memcpy(dst, s, (size_t)n * 4); return;
    case LF_QT_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = ldh(s + 2 * i);
        return;
    case LF_QT_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = lf_bf16_to_fp32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8));
        return;
    default: break;
    }
    const lf_qtype_info *q = lf_qtype_get(t);
    LF_ASSERT(q);
    for (int64_t b = 0; b < n / q->blck; b++) deq_block(t, s + (size_t)b * q->bytes, dst + (size_t)b * q->blck);
}

/* ---------------------------------------------------------------- dot products */

/* The oracle: each weight exactly as the dequantizer makes it, summed in order in double. */
float lf_qdot_ref(lf_qtype t, const void *row, const float *x, int64_t n) {
    const lf_qtype_info *q = lf_qtype_get(t);
    LF_ASSERT(q);
    const uint8_t *s = row;
    float w[QKK];
    double acc = 0;
    int blk = q->blck > 1 ? q->blck : 1;
    for (int64_t i = 0; i < n; i += blk) {
        if (q->blck > 1) lf_dequantize_row(t, s + (size_t)(i / blk) * q->bytes, w, blk);
        else lf_dequantize_row(t, s + (size_t)i * q->bytes, w, 1);
        for (int j = 0; j < blk; j++) acc += (double)w[j] * x[i + j];
    }
    return (float)acc;
}

/* Plain C for CPUs without AVX2 (and other architectures): the factored sums below in float,
 * in loops a compiler can vectorise. */
static float dot_f32_plain(const void *row, const float *x, int64_t n) {
    const float *w = row;
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += w[i + k] * x[i + k];
    for (; i < n; i++) acc[0] += w[i] * x[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static float dot_conv_plain(lf_qtype t, const uint8_t *s, const float *x, int64_t n) {
    float w[64], acc = 0;
    for (int64_t i = 0; i < n; i += 64) {
        int m = n - i < 64 ? (int)(n - i) : 64;
        lf_dequantize_row(t, s + 2 * i, w, m);
        acc += dot_f32_plain(w, x + i, m);
    }
    return acc;
}
static float dot_f16_plain(const void *row, const float *x, int64_t n) { return dot_conv_plain(LF_QT_F16, row, x, n); }
static float dot_bf16_plain(const void *row, const float *x, int64_t n) { return dot_conv_plain(LF_QT_BF16, row, x, n); }

static float dot_q8_0_plain(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    float acc = 0;
    for (int64_t b = 0; b < n / QK; b++, s += Q8_0_B, x += QK) {
        float sum = 0;
        for (int j = 0; j < QK; j++) sum += (float)(int8_t)s[2 + j] * x[j];
        acc += ldh(s) * sum;
    }
    return acc;
}

static float dot_q4_0_plain(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    float acc = 0;
    for (int64_t b = 0; b < n / QK; b++, s += Q4_0_B, x += QK) {
        float sum = 0;
        for (int j = 0; j < QK / 2; j++)
            sum += (float)((s[2 + j] & 15) - 8) * x[j] + (float)((s[2 + j] >> 4) - 8) * x[j + 16];
        acc += ldh(s) * sum;
    }
    return acc;
}

static float dot_q4_1_plain(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    float acc = 0;
    for (int64_t b = 0; b < n / QK; b++, s += Q4_1_B, x += QK) {
        float sq = 0, sx = 0;
        for (int j = 0; j < QK / 2; j++) {
            sq += (float)(s[4 + j] & 15) * x[j] + (float)(s[4 + j] >> 4) * x[j + 16];
            sx += x[j] + x[j + 16];
        }
        acc += ldh(s) * sq + ldh(s + 2) * sx;
    }
    return acc;
}

static float dot_q4_k_plain(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    float acc = 0;
    for (int64_t b = 0; b < n / QKK; b++, s += Q4_K_B) {
        float d = ldh(s), dmin = ldh(s + 2);
        const uint8_t *q = s + 16;
        for (int j = 0; j < 8; j += 2, q += 32, x += 64) {
            float sl = 0, sh = 0, xl = 0, xh = 0;
            for (int l = 0; l < 32; l++) {
                sl += (float)(q[l] & 15) * x[l];
                sh += (float)(q[l] >> 4) * x[l + 32];
                xl += x[l];
                xh += x[l + 32];
            }
            int sc, mn;
            scale_min_k4(j, s + 4, &sc, &mn);
            acc += d * (float)sc * sl - dmin * (float)mn * xl;
            scale_min_k4(j + 1, s + 4, &sc, &mn);
            acc += d * (float)sc * sh - dmin * (float)mn * xh;
        }
    }
    return acc;
}

static float dot_q6_k_plain(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    float acc = 0;
    for (int64_t b = 0; b < n / QKK; b++, s += Q6_K_B) {
        float d = ldh(s + 208);
        const int8_t *sc = (const int8_t *)(s + 192);
        for (int h = 0; h < 2; h++, x += 128)
            for (int g = 0; g < 8; g++) { /* sub-block of 16 */
                float sum = 0;
                for (int i = 16 * g; i < 16 * g + 16; i++) sum += (float)q6k_value(s + 64 * h, s + 128 + 32 * h, i) * x[i];
                acc += d * (float)sc[8 * h + g] * sum;
            }
    }
    return acc;
}

#ifdef LF_QX86
/* AVX2 + FMA (+ F16C for the f16 type): 8 lanes; each block's integer levels widened to int32,
 * converted and multiplied with x, the block sum scaled once. */
#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* a block's f16 scale by F16C's one instruction (the portable ldh's bit manipulation costs more
 * than the rest of a Q4 block's dot); the same value: half to single is exact */
__attribute__((target("f16c"))) static inline float ldh_hw(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
/* 8 signed / unsigned bytes at the low end of v, as floats */
AVX2 static inline __m256 i8f(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }
AVX2 static inline __m256 u8f(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
/* Σ over 16 bytes q (as floats) times x[0..15], added to acc */
AVX2 static inline __m256 dot16_u8(__m128i q, const float *x, __m256 acc) {
    acc = _mm256_fmadd_ps(u8f(q), _mm256_loadu_ps(x), acc);
    return _mm256_fmadd_ps(u8f(_mm_srli_si128(q, 8)), _mm256_loadu_ps(x + 8), acc);
}
AVX2 static inline __m256 dot16_i8(__m128i q, const float *x, __m256 acc) {
    acc = _mm256_fmadd_ps(i8f(q), _mm256_loadu_ps(x), acc);
    return _mm256_fmadd_ps(i8f(_mm_srli_si128(q, 8)), _mm256_loadu_ps(x + 8), acc);
}
AVX2 static inline __m256 sum16(const float *x, __m256 acc) {
    return _mm256_add_ps(acc, _mm256_add_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8)));
}

AVX2 static float dot_f32_avx2(const void *row, const float *x, int64_t n) {
    const float *w = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    float acc = hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) acc += w[i] * x[i];
    return acc;
}

AVX2 static float dot_f16_avx2(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 2 * i))), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 2 * i + 16))), _mm256_loadu_ps(x + i + 8), a1);
    }
    float acc = hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) acc += ldh_hw(s + 2 * i) * x[i];
    return acc;
}

AVX2 static float dot_bf16_avx2(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    __m256 a0 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + 2 * i))), 16);
        a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(u), _mm256_loadu_ps(x + i), a0);
    }
    float acc = hsum8(a0);
    for (; i < n; i++) acc += lf_bf16_to_fp32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8)) * x[i];
    return acc;
}

AVX2 static float dot_q8_0_avx2(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK; b++, s += Q8_0_B, x += QK) {
        __m256 v = dot16_i8(_mm_loadu_si128((const __m128i *)(s + 2)), x, _mm256_setzero_ps());
        v = dot16_i8(_mm_loadu_si128((const __m128i *)(s + 18)), x + 16, v);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ldh_hw(s)), v, acc);
    }
    return hsum8(acc);
}

AVX2 static float dot_q4_0_avx2(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    const __m128i m4 = _mm_set1_epi8(15), e8 = _mm_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK; b++, s += Q4_0_B, x += QK) {
        __m128i raw = _mm_loadu_si128((const __m128i *)(s + 2));
        __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, m4), e8), hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), e8);
        __m256 v = dot16_i8(hi, x + 16, dot16_i8(lo, x, _mm256_setzero_ps()));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ldh_hw(s)), v, acc);
    }
    return hsum8(acc);
}

AVX2 static float dot_q4_1_avx2(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    const __m128i m4 = _mm_set1_epi8(15);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK; b++, s += Q4_1_B, x += QK) {
        __m128i raw = _mm_loadu_si128((const __m128i *)(s + 4));
        __m128i lo = _mm_and_si128(raw, m4), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), m4);
        __m256 v = dot16_u8(hi, x + 16, dot16_u8(lo, x, _mm256_setzero_ps()));
        __m256 sx = sum16(x + 16, sum16(x, _mm256_setzero_ps()));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ldh_hw(s)), v, acc);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ldh_hw(s + 2)), sx, acc);
    }
    return hsum8(acc);
}

AVX2 static float dot_q4_k_avx2(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    const __m128i m4 = _mm_set1_epi8(15);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QKK; b++, s += Q4_K_B) {
        float d = ldh_hw(s), dmin = ldh_hw(s + 2);
        const uint8_t *q = s + 16;
        for (int j = 0; j < 8; j += 2, q += 32, x += 64) {
            __m128i r0 = _mm_loadu_si128((const __m128i *)q), r1 = _mm_loadu_si128((const __m128i *)(q + 16));
            __m256 vl = dot16_u8(_mm_and_si128(r1, m4), x + 16, dot16_u8(_mm_and_si128(r0, m4), x, _mm256_setzero_ps()));
            __m256 vh = dot16_u8(_mm_and_si128(_mm_srli_epi16(r1, 4), m4), x + 48,
                                 dot16_u8(_mm_and_si128(_mm_srli_epi16(r0, 4), m4), x + 32, _mm256_setzero_ps()));
            __m256 xl = sum16(x + 16, sum16(x, _mm256_setzero_ps())), xh = sum16(x + 48, sum16(x + 32, _mm256_setzero_ps()));
            int sc, mn;
            scale_min_k4(j, s + 4, &sc, &mn);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc), vl, acc);
            acc = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * (float)mn), xl, acc);
            scale_min_k4(j + 1, s + 4, &sc, &mn);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc), vh, acc);
            acc = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * (float)mn), xh, acc);
        }
    }
    return hsum8(acc);
}

/* Q6_K's 6-bit levels of one 128-value half, minus 32, as four runs of 32 int8 (k = 0..3) */
AVX2 static inline void q6k_levels(const uint8_t *ql, const uint8_t *qh, __m256i out[4]) {
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3), e32 = _mm256_set1_epi8(32);
    __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    __m256i h = _mm256_loadu_si256((const __m256i *)qh);
    __m256i lo[4] = {_mm256_and_si256(l0, m4), _mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                     _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4)};
    for (int k = 0; k < 4; k++) {
        __m256i hk = _mm256_and_si256(_mm256_srli_epi16(h, 2 * k), m2);
        out[k] = _mm256_sub_epi8(_mm256_or_si256(lo[k], _mm256_slli_epi16(hk, 4)), e32);
    }
}

AVX2 static float dot_q6_k_avx2(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QKK; b++, s += Q6_K_B) {
        float d = ldh_hw(s + 208);
        const int8_t *sc = (const int8_t *)(s + 192);
        for (int h = 0; h < 2; h++, x += 128) {
            __m256i lv[4];
            q6k_levels(s + 64 * h, s + 128 + 32 * h, lv);
            for (int k = 0; k < 4; k++) {
                __m128i a = _mm256_castsi256_si128(lv[k]), c = _mm256_extracti128_si256(lv[k], 1);
                __m256 v0 = dot16_i8(a, x + 32 * k, _mm256_setzero_ps()), v1 = dot16_i8(c, x + 32 * k + 16, _mm256_setzero_ps());
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[8 * h + 2 * k]), v0, acc);
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[8 * h + 2 * k + 1]), v1, acc);
            }
        }
    }
    return hsum8(acc);
}

/* AVX-512F: 16 lanes; the nibble unpacking stays in 128/256-bit registers (AVX2) */
#define AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

AVX512 static inline __m512 i8f16(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }
AVX512 static inline __m512 u8f16(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }

AVX512 static float dot_f32_avx512(const void *row, const float *x, int64_t n) {
    const float *w = row;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
    }
    float acc = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; i < n; i++) acc += w[i] * x[i];
    return acc;
}

AVX512 static float dot_f16_avx512(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + 2 * i))), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + 2 * i + 32))), _mm512_loadu_ps(x + i + 16), a1);
    }
    float acc = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; i < n; i++) acc += ldh_hw(s + 2 * i) * x[i];
    return acc;
}

AVX512 static float dot_bf16_avx512(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    __m512 a0 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + 2 * i))), 16);
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(u), _mm512_loadu_ps(x + i), a0);
    }
    float acc = _mm512_reduce_add_ps(a0);
    for (; i < n; i++) acc += lf_bf16_to_fp32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8)) * x[i];
    return acc;
}

AVX512 static float dot_q8_0_avx512(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / QK; b++, s += Q8_0_B, x += QK) {
        __m512 v = _mm512_mul_ps(i8f16(_mm_loadu_si128((const __m128i *)(s + 2))), _mm512_loadu_ps(x));
        v = _mm512_fmadd_ps(i8f16(_mm_loadu_si128((const __m128i *)(s + 18))), _mm512_loadu_ps(x + 16), v);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(ldh_hw(s)), v, acc);
    }
    return _mm512_reduce_add_ps(acc);
}

AVX512 static float dot_q4_0_avx512(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    const __m128i m4 = _mm_set1_epi8(15), e8 = _mm_set1_epi8(8);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / QK; b++, s += Q4_0_B, x += QK) {
        __m128i raw = _mm_loadu_si128((const __m128i *)(s + 2));
        __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, m4), e8), hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), e8);
        __m512 v = _mm512_mul_ps(i8f16(lo), _mm512_loadu_ps(x));
        v = _mm512_fmadd_ps(i8f16(hi), _mm512_loadu_ps(x + 16), v);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(ldh_hw(s)), v, acc);
    }
    return _mm512_reduce_add_ps(acc);
}

AVX512 static float dot_q4_1_avx512(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    const __m128i m4 = _mm_set1_epi8(15);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / QK; b++, s += Q4_1_B, x += QK) {
        __m128i raw = _mm_loadu_si128((const __m128i *)(s + 4));
        __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
        __m512 v = _mm512_mul_ps(u8f16(_mm_and_si128(raw, m4)), x0);
        v = _mm512_fmadd_ps(u8f16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4)), x1, v);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(ldh_hw(s)), v, acc);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(ldh_hw(s + 2)), _mm512_add_ps(x0, x1), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

AVX512 static float dot_q4_k_avx512(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    const __m128i m4 = _mm_set1_epi8(15);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / QKK; b++, s += Q4_K_B) {
        float d = ldh_hw(s), dmin = ldh_hw(s + 2);
        const uint8_t *q = s + 16;
        for (int j = 0; j < 8; j += 2, q += 32, x += 64) {
            __m128i r0 = _mm_loadu_si128((const __m128i *)q), r1 = _mm_loadu_si128((const __m128i *)(q + 16));
            __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16), x2 = _mm512_loadu_ps(x + 32), x3 = _mm512_loadu_ps(x + 48);
            __m512 vl = _mm512_fmadd_ps(u8f16(_mm_and_si128(r1, m4)), x1, _mm512_mul_ps(u8f16(_mm_and_si128(r0, m4)), x0));
            __m512 vh = _mm512_fmadd_ps(u8f16(_mm_and_si128(_mm_srli_epi16(r1, 4), m4)), x3,
                                        _mm512_mul_ps(u8f16(_mm_and_si128(_mm_srli_epi16(r0, 4), m4)), x2));
            int sc, mn;
            scale_min_k4(j, s + 4, &sc, &mn);
            acc = _mm512_fmadd_ps(_mm512_set1_ps(d * (float)sc), vl, acc);
            acc = _mm512_fnmadd_ps(_mm512_set1_ps(dmin * (float)mn), _mm512_add_ps(x0, x1), acc);
            scale_min_k4(j + 1, s + 4, &sc, &mn);
            acc = _mm512_fmadd_ps(_mm512_set1_ps(d * (float)sc), vh, acc);
            acc = _mm512_fnmadd_ps(_mm512_set1_ps(dmin * (float)mn), _mm512_add_ps(x2, x3), acc);
        }
    }
    return _mm512_reduce_add_ps(acc);
}

AVX512 static float dot_q6_k_avx512(const void *row, const float *x, int64_t n) {
    const uint8_t *s = row;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / QKK; b++, s += Q6_K_B) {
        float d = ldh_hw(s + 208);
        const int8_t *sc = (const int8_t *)(s + 192);
        for (int h = 0; h < 2; h++, x += 128) {
            __m256i lv[4];
            q6k_levels(s + 64 * h, s + 128 + 32 * h, lv);
            for (int k = 0; k < 4; k++) {
                __m512 v0 = _mm512_mul_ps(i8f16(_mm256_castsi256_si128(lv[k])), _mm512_loadu_ps(x + 32 * k));
                __m512 v1 = _mm512_mul_ps(i8f16(_mm256_extracti128_si256(lv[k], 1)), _mm512_loadu_ps(x + 32 * k + 16));
                acc = _mm512_fmadd_ps(_mm512_set1_ps(d * (float)sc[8 * h + 2 * k]), v0, acc);
                acc = _mm512_fmadd_ps(_mm512_set1_ps(d * (float)sc[8 * h + 2 * k + 1]), v1, acc);
            }
        }
    }
    return _mm512_reduce_add_ps(acc);
}
#endif

/* isa: 0 plain, 1 AVX2, 2 AVX-512 */
static lf_qdot_fn kernel_of(lf_qtype t, int isa) {
#ifdef LF_QX86
    static const struct {
        lf_qtype t;
        lf_qdot_fn f[3];
    } tab[] = {
        {LF_QT_F32, {dot_f32_plain, dot_f32_avx2, dot_f32_avx512}},
        {LF_QT_F16, {dot_f16_plain, dot_f16_avx2, dot_f16_avx512}},
        {LF_QT_BF16, {dot_bf16_plain, dot_bf16_avx2, dot_bf16_avx512}},
        {LF_QT_Q8_0, {dot_q8_0_plain, dot_q8_0_avx2, dot_q8_0_avx512}},
        {LF_QT_Q4_0, {dot_q4_0_plain, dot_q4_0_avx2, dot_q4_0_avx512}},
        {LF_QT_Q4_1, {dot_q4_1_plain, dot_q4_1_avx2, dot_q4_1_avx512}},
        {LF_QT_Q4_K, {dot_q4_k_plain, dot_q4_k_avx2, dot_q4_k_avx512}},
        {LF_QT_Q6_K, {dot_q6_k_plain, dot_q6_k_avx2, dot_q6_k_avx512}},
    };
#else
    static const struct {
        lf_qtype t;
        lf_qdot_fn f[1];
    } tab[] = {
        {LF_QT_F32, {dot_f32_plain}},   {LF_QT_F16, {dot_f16_plain}},   {LF_QT_BF16, {dot_bf16_plain}},
        {LF_QT_Q8_0, {dot_q8_0_plain}}, {LF_QT_Q4_0, {dot_q4_0_plain}}, {LF_QT_Q4_1, {dot_q4_1_plain}},
        {LF_QT_Q4_K, {dot_q4_k_plain}}, {LF_QT_Q6_K, {dot_q6_k_plain}},
    };
    if (isa > 0) return NULL;
#endif
    for (size_t i = 0; i < sizeof tab / sizeof *tab; i++)
        if (tab[i].t == t) return tab[i].f[isa];
    return NULL;
}

/* the best instruction set this CPU has, read once: CPUID is slow (in a virtual machine it exits
 * to the hypervisor, microseconds), and the storage types ask for their kernel on every call. The
 * cached value is a fact about the CPU, not state: two threads racing to fill it store the same. */
static int detect_isa(void) {
#ifdef LF_QX86
    unsigned a, b, c, d; /* F16C from CPUID leaf 1 (clang's __builtin_cpu_supports does not know it) */
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_F16C))
        return 0;
    return __builtin_cpu_supports("avx512f") ? 2 : 1;
#else
    return 0;
#endif
}

static int cpu_isa(void) {
    static int isa = -1;
    int v = __atomic_load_n(&isa, __ATOMIC_RELAXED);
    if (v < 0) __atomic_store_n(&isa, v = detect_isa(), __ATOMIC_RELAXED);
    return v;
}

static const char *const isa_names[3] = {"plain", "avx2", "avx512"};

const char *lf_qdot_kernel_name(void) { return isa_names[cpu_isa()]; }

lf_qdot_fn lf_qdot_kernel(lf_qtype t, const char *isa) {
    int best = cpu_isa();
    if (!isa) return kernel_of(t, best);
    for (int i = 0; i < 3; i++)
        if (strcmp(isa, isa_names[i]) == 0) return i <= best ? kernel_of(t, i) : NULL;
    return NULL;
}

float lf_qdot(lf_qtype t, const void *row, const float *x, int64_t n) {
    lf_qdot_fn f = kernel_of(t, cpu_isa());
    LF_ASSERT(f);
    return f(row, x, n);
}

/* ---------------------------------------------------------------- integer dots (int8 activations) */

/* one block of 32 quantized activations: x ≈ d·q, sum = Σq (for the types with an offset) */
typedef struct {
    float d;
    int32_t sum;
    int8_t q[QK];
} q8a;
_Static_assert(sizeof(q8a) == LF_Q8A_BYTES, "q8a block layout");

void lf_quantize_act_q8(const float *x, void *dst, int64_t n) {
    q8a *y = dst;
    for (int64_t b = 0; b < n / QK; b++, x += QK, y++) {
        float amax = 0;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        int32_t sum = 0;
        for (int j = 0; j < QK; j++) {
            int v = clampi(nearest_int(x[j] * id), -127, 127); /* NaN/inf activations: d is NaN/inf, so is the dot */
            y->q[j] = (int8_t)v;
            sum += v;
        }
        y->d = d;
        y->sum = sum;
    }
}

void lf_dequantize_act_q8(const void *src, float *x, int64_t n) {
    const q8a *y = src;
    for (int64_t b = 0; b < n / QK; b++, x += QK, y++)
        for (int j = 0; j < QK; j++) x[j] = y->d * (float)y->q[j];
}

/* the reference: each block's integer dot exact, scaled and summed in double */
float lf_qdot_q8_ref(lf_qtype t, const void *row, const void *xq, int64_t n) {
    const uint8_t *s = row;
    const q8a *y = xq;
    double acc = 0;
    switch (t) {
    case LF_QT_Q8_0:
        for (int64_t b = 0; b < n / QK; b++, s += Q8_0_B, y++) {
            const int8_t *w = (const int8_t *)(s + 2); /* not (int8_t)s[j]: see idot_q8_0_plain */
            int32_t dot = 0;
            for (int j = 0; j < QK; j++) dot += w[j] * y->q[j];
            acc += (double)ldh(s) * y->d * dot;
        }
        break;
    case LF_QT_Q4_0:
    case LF_QT_Q4_1: {
        int off = t == LF_QT_Q4_0 ? 2 : 4;
        for (int64_t b = 0; b < n / QK; b++, s += t == LF_QT_Q4_0 ? Q4_0_B : Q4_1_B, y++) {
            int32_t dot = 0;
            for (int j = 0; j < QK / 2; j++) dot += (s[off + j] & 15) * y->q[j] + (s[off + j] >> 4) * y->q[j + 16];
            if (t == LF_QT_Q4_0) acc += (double)ldh(s) * y->d * (dot - 8 * y->sum);
            else acc += (double)ldh(s) * y->d * dot + (double)ldh(s + 2) * y->d * y->sum;
        }
        break;
    }
    case LF_QT_Q4_K:
        for (int64_t b = 0; b < n / QKK; b++, s += Q4_K_B) {
            double d = ldh(s), dmin = ldh(s + 2);
            const uint8_t *q = s + 16;
            for (int j = 0; j < 8; j++, y++) {
                int32_t dot = 0;
                for (int l = 0; l < QK; l++) dot += (j & 1 ? q[(j / 2) * 32 + l] >> 4 : q[(j / 2) * 32 + l] & 15) * y->q[l];
                int sc, mn;
                scale_min_k4(j, s + 4, &sc, &mn);
                acc += d * sc * y->d * dot - dmin * mn * y->d * y->sum;
            }
        }
        break;
    default:
        LF_ASSERT(!"lf_qdot_q8_ref: no integer kernel for this type");
    }
    return (float)acc;
}

/* plain C: the same factored sums, block by block in float */
static float idot_q8_0_plain(const void *row, const void *xq, int64_t n) {
    const uint8_t *s = row;
    const q8a *y = xq;
    float acc = 0;
    for (int64_t b = 0; b < n / QK; b++, s += Q8_0_B, y++) {
        /* the weights read through a signed pointer: GCC 12.2 at -O3 -march=native turns the loop
         * Σ (int8_t)u8[j]·i8[j] into VNNI's unsigned-by-signed vpdpbusd, dropping the cast's sign
         * (wrong sums; found by test_int8_dots), and gets this form right */
        const int8_t *w = (const int8_t *)(s + 2);
        int32_t dot = 0;
        for (int j = 0; j < QK; j++) dot += w[j] * y->q[j];
        acc += ldh(s) * y->d * (float)dot;
    }
    return acc;
}
static float idot_q4_plain(const void *row, const void *xq, int64_t n, int q41) {
    const uint8_t *s = row;
    const q8a *y = xq;
    int off = q41 ? 4 : 2;
    float acc = 0;
    for (int64_t b = 0; b < n / QK; b++, s += q41 ? Q4_1_B : Q4_0_B, y++) {
        int32_t dot = 0;
        for (int j = 0; j < QK / 2; j++) dot += (s[off + j] & 15) * y->q[j] + (s[off + j] >> 4) * y->q[j + 16];
        acc += q41 ? ldh(s) * y->d * (float)dot + ldh(s + 2) * y->d * (float)y->sum : ldh(s) * y->d * (float)(dot - 8 * y->sum);
    }
    return acc;
}
static float idot_q4_0_plain(const void *row, const void *xq, int64_t n) { return idot_q4_plain(row, xq, n, 0); }
static float idot_q4_1_plain(const void *row, const void *xq, int64_t n) { return idot_q4_plain(row, xq, n, 1); }
static float idot_q4_k_plain(const void *row, const void *xq, int64_t n) {
    const uint8_t *s = row;
    const q8a *y = xq;
    float acc = 0;
    for (int64_t b = 0; b < n / QKK; b++, s += Q4_K_B) {
        float d = ldh(s), dmin = ldh(s + 2);
        for (int j = 0; j < 8; j++, y++) {
            const uint8_t *q = s + 16 + (j / 2) * 32;
            int32_t dot = 0;
            for (int l = 0; l < QK; l++) dot += (j & 1 ? q[l] >> 4 : q[l] & 15) * y->q[l];
            int sc, mn;
            scale_min_k4(j, s + 4, &sc, &mn);
            acc += d * (float)sc * y->d * (float)dot - dmin * (float)mn * y->d * (float)y->sum;
        }
    }
    return acc;
}

#ifdef LF_QX86
/* x86: 32 bytes of weights (unsigned: nibbles, or |w| with the sign moved onto the activations)
 * times 32 int8 activations -> 8 int32 partial sums: AVX2's maddubs (pairs to int16; no overflow:
 * at most 2·127·127) then madd with ones, or one VNNI dpbusd. Each block's sums become floats and
 * meet the two scales in one FMA; the offset terms (Q4_0's -8, Q4_1's and Q4_K's minimums) use the
 * activation block's integer sum, in a scalar accumulator. */
#define IDOT_AVX2(u, v) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (v)), _mm256_set1_epi16(1))
#define IDOT_VNNI(u, v) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (v))
#define TGT_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TGT_VNNI __attribute__((target("avx512vnni,avx512vl,avx512f,avx2,fma,f16c")))

#define IDOT_KERNELS(SFX, TGT, IDOT)                                                                   \
    /* the 32 nibbles of 16 bytes in value order: low nibbles (values 0..15), then high (16..31) */    \
    TGT static inline __m256i nibbles_##SFX(const uint8_t *p) {                                        \
        __m128i b = _mm_loadu_si128((const __m128i *)p), m = _mm_set1_epi8(15);                        \
        return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));          \
    }                                                                                                  \
    TGT static inline float hsum_##SFX(__m256 v) {                                                     \
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));                 \
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));                                                        \
        s = _mm_add_ss(s, _mm_movehdup_ps(s));                                                         \
        return _mm_cvtss_f32(s);                                                                       \
    }                                                                                                  \
    TGT static float idot_q8_0_##SFX(const void *row, const void *xq, int64_t n) {                     \
        const uint8_t *s = row;                                                                        \
        const q8a *y = xq;                                                                             \
        __m256 acc = _mm256_setzero_ps();                                                              \
        for (int64_t b = 0; b < n / QK; b++, s += Q8_0_B, y++) {                                       \
            __m256i w = _mm256_loadu_si256((const __m256i *)(s + 2));                                  \
            __m256i x = _mm256_loadu_si256((const __m256i *)y->q);                                     \
            __m256i p = IDOT(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));                          \
            acc = _mm256_fmadd_ps(_mm256_set1_ps(ldh_hw(s) * y->d), _mm256_cvtepi32_ps(p), acc);          \
        }                                                                                              \
        return hsum_##SFX(acc);                                                                        \
    }                                                                                                  \
    TGT static float idot_q4_0_##SFX(const void *row, const void *xq, int64_t n) {                     \
        const uint8_t *s = row;                                                                        \
        const q8a *y = xq;                                                                             \
        __m256 acc = _mm256_setzero_ps();                                                              \
        float off = 0;                                                                                 \
        for (int64_t b = 0; b < n / QK; b++, s += Q4_0_B, y++) {                                       \
            float dd = ldh_hw(s) * y->d;                                                                  \
            __m256i p = IDOT(nibbles_##SFX(s + 2), _mm256_loadu_si256((const __m256i *)y->q));               \
            acc = _mm256_fmadd_ps(_mm256_set1_ps(dd), _mm256_cvtepi32_ps(p), acc);                     \
            off += dd * (float)y->sum;                                                                 \
        }                                                                                              \
        return hsum_##SFX(acc) - 8.0f * off;                                                           \
    }                                                                                                  \
    TGT static float idot_q4_1_##SFX(const void *row, const void *xq, int64_t n) {                     \
        const uint8_t *s = row;                                                                        \
        const q8a *y = xq;                                                                             \
        __m256 acc = _mm256_setzero_ps();                                                              \
        float off = 0;                                                                                 \
        for (int64_t b = 0; b < n / QK; b++, s += Q4_1_B, y++) {                                       \
            __m256i p = IDOT(nibbles_##SFX(s + 4), _mm256_loadu_si256((const __m256i *)y->q));               \
            acc = _mm256_fmadd_ps(_mm256_set1_ps(ldh_hw(s) * y->d), _mm256_cvtepi32_ps(p), acc);          \
            off += ldh_hw(s + 2) * y->d * (float)y->sum;                                                  \
        }                                                                                              \
        return hsum_##SFX(acc) + off;                                                                  \
    }                                                                                                  \
    TGT static float idot_q4_k_##SFX(const void *row, const void *xq, int64_t n) {                     \
        const uint8_t *s = row;                                                                        \
        const q8a *y = xq;                                                                             \
        __m256 acc = _mm256_setzero_ps();                                                              \
        float off = 0;                                                                                 \
        const __m256i m4 = _mm256_set1_epi8(15);                                                       \
        for (int64_t b = 0; b < n / QKK; b++, s += Q4_K_B) {                                           \
            float d = ldh_hw(s), dmin = ldh_hw(s + 2);                                                 \
            int sc[8], mn[8];                                                                          \
            for (int j = 0; j < 8; j++) scale_min_k4(j, s + 4, &sc[j], &mn[j]);                        \
            for (int j = 0; j < 8; j += 2, y += 2) {                                                   \
                __m256i q = _mm256_loadu_si256((const __m256i *)(s + 16 + (j / 2) * 32));              \
                int sc0 = sc[j], mn0 = mn[j], sc1 = sc[j + 1], mn1 = mn[j + 1];                        \
                __m256i p0 = IDOT(_mm256_and_si256(q, m4), _mm256_loadu_si256((const __m256i *)y[0].q)); \
                __m256i p1 = IDOT(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),                        \
                                  _mm256_loadu_si256((const __m256i *)y[1].q));                        \
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc0 * y[0].d), _mm256_cvtepi32_ps(p0), acc); \
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc1 * y[1].d), _mm256_cvtepi32_ps(p1), acc); \
                off += dmin * ((float)mn0 * y[0].d * (float)y[0].sum + (float)mn1 * y[1].d * (float)y[1].sum); \
            }                                                                                          \
        }                                                                                              \
        return hsum_##SFX(acc) - off;                                                                  \
    }

IDOT_KERNELS(avx2, TGT_AVX2, IDOT_AVX2)
IDOT_KERNELS(vnni, TGT_VNNI, IDOT_VNNI)
#endif

/* isa: 0 plain, 1 AVX2, 2 AVX-512 VNNI (256-bit) */
static lf_qdot_q8_fn ikernel_of(lf_qtype t, int isa) {
#ifdef LF_QX86
    static const struct {
        lf_qtype t;
        lf_qdot_q8_fn f[3];
    } tab[] = {
        {LF_QT_Q8_0, {idot_q8_0_plain, idot_q8_0_avx2, idot_q8_0_vnni}},
        {LF_QT_Q4_0, {idot_q4_0_plain, idot_q4_0_avx2, idot_q4_0_vnni}},
        {LF_QT_Q4_1, {idot_q4_1_plain, idot_q4_1_avx2, idot_q4_1_vnni}},
        {LF_QT_Q4_K, {idot_q4_k_plain, idot_q4_k_avx2, idot_q4_k_vnni}},
    };
#else
    static const struct {
        lf_qtype t;
        lf_qdot_q8_fn f[1];
    } tab[] = {{LF_QT_Q8_0, {idot_q8_0_plain}}, {LF_QT_Q4_0, {idot_q4_0_plain}}, {LF_QT_Q4_1, {idot_q4_1_plain}},
               {LF_QT_Q4_K, {idot_q4_k_plain}}};
    if (isa > 0) return NULL;
#endif
    for (size_t i = 0; i < sizeof tab / sizeof *tab; i++)
        if (tab[i].t == t) return tab[i].f[isa];
    return NULL;
}

static int detect_iisa(void) {
#ifdef LF_QX86
    if (cpu_isa() == 0) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") ? 2 : 1;
#else
    return 0;
#endif
}

static int cpu_iisa(void) { /* read once, as cpu_isa */
    static int isa = -1;
    int v = __atomic_load_n(&isa, __ATOMIC_RELAXED);
    if (v < 0) __atomic_store_n(&isa, v = detect_iisa(), __ATOMIC_RELAXED);
    return v;
}

static const char *const iisa_names[3] = {"plain", "avx2", "avx512vnni"};

const char *lf_qdot_q8_kernel_name(void) { return iisa_names[cpu_iisa()]; }

lf_qdot_q8_fn lf_qdot_q8_kernel(lf_qtype t, const char *isa) {
    int best = cpu_iisa();
    if (!isa) return ikernel_of(t, best);
    for (int i = 0; i < 3; i++)
        if (strcmp(isa, iisa_names[i]) == 0) return i <= best ? ikernel_of(t, i) : NULL;
    return NULL;
}
