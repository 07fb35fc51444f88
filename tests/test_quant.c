/* Weight-only quantization (issue 12): the block kernels and the quantized linear path.
 *   - half/bfloat16 conversions: known values, every half round-trips, and f32 -> f16 equals the
 *     CPU's own F16C conversion (round to nearest even) on a million random bit patterns;
 *   - every type: quantize -> dequantize within a stated per-format bound on random and adversarial
 *     rows (zeros, one huge outlier, constants, negative only, tiny and subnormal values), never a
 *     NaN; values the f16 scales cannot hold, NaNs, ragged rows and Q6_K are refused;
 *   - lf_qdot of each instruction set this CPU has (and plain C) against lf_qdot_ref, and the
 *     reference against a double dot of the dequantized row, n = 1..8 blocks, unaligned x;
 *   - the storage types in tiny llama and gpt2 models (see the second half). */
#include "lmforge/quant.h"
#include "lmforge/kernels.h"
#include "lmforge/lora.h"
#include "testutil.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

static const lf_qtype all_types[] = {LF_QT_F32, LF_QT_F16, LF_QT_BF16, LF_QT_Q8_0, LF_QT_Q4_0, LF_QT_Q4_1, LF_QT_Q4_K, LF_QT_Q6_K};
static const lf_qtype quantizable[] = {LF_QT_F16, LF_QT_BF16, LF_QT_Q8_0, LF_QT_Q4_0, LF_QT_Q4_1, LF_QT_Q4_K};
#define NELEM(a) (sizeof(a) / sizeof *(a))

static const char *tname(lf_qtype t) { return lf_qtype_get(t)->name; }

/* ---------------------------------------------------------------- half precision */

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("f16c"))) static uint16_t hw_fp16(float f) {
    return (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0);
}
#endif

static float bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_half(void) {
    static const struct {
        float f;
        uint16_t h;
    } known[] = {
        {1.0f, 0x3c00},         {-2.0f, 0xc000},       {0.1f, 0x2e66},           {65504.0f, 0x7bff},
        {65519.99f, 0x7bff},    {65520.0f, 0x7c00},    {1e10f, 0x7c00},          {6.103515625e-05f, 0x0400},
        {5.9604645e-08f, 0x0001}, {2.98023224e-08f, 0x0000}, {4.4703484e-08f, 0x0001}, {1.0f + 0x1p-11f, 0x3c00},
        {1.0f + 0x3p-11f, 0x3c02}, {-0.0f, 0x8000},     {0x1.ffcp-15f, 0x0400},  {0x1.ff8p-15f, 0x03ff}, {0x1.ff4p-15f, 0x03fe}, {0x1.ff5p-15f, 0x03ff},
    };
    for (size_t i = 0; i < NELEM(known); i++) {
        uint16_t h = lf_fp32_to_fp16(known[i].f);
        CHECK(h == known[i].h, "fp16(%.9g) = 0x%04x, expected 0x%04x", (double)known[i].f, h, known[i].h);
    }
    uint16_t hn = lf_fp32_to_fp16(NAN);
    CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff), "fp16(NaN) = 0x%04x is not a NaN", hn);
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) { /* every half survives a round trip through float */
        float f = lf_fp16_to_fp32((uint16_t)h);
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) bad += !isnan(f);
        else bad += lf_fp32_to_fp16(f) != h;
    }
    CHECK(bad == 0, "fp16 round trip: %d of 65536 halves changed", bad);
    CHECK(lf_fp16_to_fp32(0x0001) == 0x1p-24f && lf_fp16_to_fp32(0x7bff) == 65504.0f && lf_fp16_to_fp32(0x3555) == 0x1.554p-2f,
          "fp16 -> fp32 of known halves");
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("f16c")) {
        int diff = 0;
        uint32_t first = 0;
        for (uint64_t i = 0; i < 1000000; i++) {
            uint32_t u = (uint32_t)lf_hash64(3, 1, i);
            if (i % 4 == 1) u = (u & 0x80000000u) | (0x33000000u + u % 0x14800000u); /* the f16 range, densely */
            float f = bits_f(u);
            if (i % 4 == 2) { /* exactly halfway between two normal halves */
                float g = lf_fp16_to_fp32((uint16_t)((u & 0x7fffu) % 0x7800u + 0x400u));
                memcpy(&u, &g, 4);
                f = bits_f(u + 0x1000u);
            }
            if (isnan(f)) continue;
            if (lf_fp32_to_fp16(f) != hw_fp16(f) && !diff++) first = u;
        }
        CHECK(diff == 0, "fp16 vs the CPU's F16C conversion: %d of 1e6 differ (first: bits 0x%08x)", diff, first);
    }
#endif
    CHECK(lf_fp32_to_bf16(1.0f) == 0x3f80 && lf_fp32_to_bf16(1.0f + 0x1p-8f) == 0x3f80 &&
              lf_fp32_to_bf16(1.0f + 0x3p-8f) == 0x3f82 && lf_fp32_to_bf16(-3.0f) == 0xc040,
          "bf16 rounding of known values (ties to even): 0x%04x 0x%04x 0x%04x", lf_fp32_to_bf16(1.0f),
          lf_fp32_to_bf16(1.0f + 0x1p-8f), lf_fp32_to_bf16(1.0f + 0x3p-8f));
    uint16_t bn = lf_fp32_to_bf16(bits_f(0x7f800001u));
    CHECK((bn & 0x7f80) == 0x7f80 && (bn & 0x7f), "bf16 of a signalling NaN = 0x%04x is not a NaN", bn);
}

/* ---------------------------------------------------------------- round trips */

enum { NROW = 2048 }; /* 8 Q4_K super-blocks */

/* row kind k of n values */
static void make_row(int k, float *x, int n, uint64_t seed) {
    for (int i = 0; i < n; i++) x[i] = lf_randn(seed, (uint64_t)k, (uint64_t)i);
    switch (k) {
    case 0: break;
    case 1: for (int i = 0; i < n; i++) x[i] *= 0.02f; break;
    case 2: for (int i = 0; i < n; i++) x[i] *= 30.0f; break;
    case 3: for (int i = 0; i < n; i++) x[i] = 0.0f; break;
    case 4: for (int i = 0; i < n; i++) x[i] *= 0.01f; x[37] = 1e4f; break; /* one huge outlier */
    case 5: for (int i = 0; i < n; i++) x[i] = 0.375f; break;
    case 6: for (int i = 0; i < n; i++) x[i] = -2.5f; break;
    case 7: for (int i = 0; i < n; i++) x[i] = -fabsf(x[i]); break; /* negative only */
    case 8: for (int i = 0; i < n; i++) x[i] *= 1e-30f; break;     /* scales underflow f16 */
    case 9: for (int i = 0; i < n; i++) x[i] *= 1e-6f; break;      /* f16-subnormal scales */
    case 10: for (int i = 0; i < n; i++) x[i] *= 1e-40f; break;    /* float32 subnormals */
    case 11: for (int i = 0; i < n; i++) x[i] = (float)((int)(lf_hash64(seed, 11, (uint64_t)i) % 16) - 8) * 0.25f; break;
    case 12: for (int i = 0; i < n; i++) x[i] = i % 97 == 3 ? 5.0f : 0.0f; break; /* sparse */
    default: for (int i = 0; i < n; i++) x[i] = fabsf(x[i]) + 3.0f; break;       /* positive, offset */
    }
}
enum { NKINDS = 14 };
static const char *const kind_names[NKINDS] = {"randn",    "randn*0.02", "randn*30", "zeros",    "outlier 1e4",
                                               "constant", "neg const",  "negative", "tiny 1e-30", "tiny 1e-6",
                                               "subnormal", "exact levels", "sparse",  "positive+3"};

/* The bound on |x - dequant(quant(x))| for value i, from the format: rounding to the level grid
 * (half a step, a full step where ggml clamps), the f16 rounding of the scales (2^-11 relative,
 * 2^-25 absolute below the normal range) times the largest level, and float32 arithmetic. */
static double err_bound(lf_qtype t, const float *x, int i) {
    const double h = 0x1p-11, ha = 0x1p-25;
    int b0 = i / 32 * 32;
    double amax = 0, mn = INFINITY, mx = -INFINITY;
    for (int j = b0; j < b0 + 32; j++) {
        amax = fmax(amax, fabs(x[j]));
        mn = fmin(mn, x[j]);
        mx = fmax(mx, x[j]);
    }
    switch (t) {
    case LF_QT_F32: return 0;
    case LF_QT_F16: return fabs(x[i]) * h + ha;
    case LF_QT_BF16: return fabs(x[i]) * 0x1p-8 + 0x1p-134; /* float32 subnormals: half a bf16 step */
    case LF_QT_Q8_0: {
        double d = amax / 127;
        return 0.5 * d + 127 * (d * h + ha) + 1e-6 * amax;
    }
    case LF_QT_Q4_0: {
        double d = amax / 8;
        return d + 8 * (d * h + ha) + 1e-6 * amax;
    }
    case LF_QT_Q4_1: {
        double d = (mx - mn) / 15;
        return 0.5 * d + 15 * (d * h + ha) + fabs(mn) * h + ha + 1e-6 * amax;
    }
    case LF_QT_Q4_K: {
        /* Over the super-block of 256: R = max(x) - min(min(x), 0) (the span a sub-block fit covers),
         * A = max |x|. A sub-block's fitted step is at most R/14 (ggml's widest trial grid is 14
         * steps), and the second pass re-levels against the stored scales, so a value is off by at
         * most a step where the grid clamps. The 6-bit codes move the scale by half a code
         * (max_scale/126, times 15 levels) and the offset by max_min/126 <= A/126; f16 rounds d and
         * dmin by 2^-11 relative, 2^-25 absolute, times up to 63·15 and 63. A sub-block whose
         * scale code rounds to 0 has range below 15·max_scale/126 and decodes to its offset: inside
         * the same bound. */
        int s0 = i / 256 * 256;
        double smn = 0, smx = -INFINITY, A = 0;
        for (int j = s0; j < s0 + 256; j++) smn = fmin(smn, x[j]), smx = fmax(smx, x[j]), A = fmax(A, fabs(x[j]));
        double R = smx - smn;
        return R / 14 + 15 * R / (14 * 126) + A / 126 + (15 * R / 14 + A) * h + 1008 * ha + 1e-6 * A;
    }
    default: return 0;
    }
}

static void test_round_trips(void) {
    float *x = tu_alloc(NROW), *y = tu_alloc(NROW);
    uint8_t *q = malloc(lf_qtype_row_bytes(LF_QT_F32, NROW));
    for (size_t ti = 0; ti < NELEM(quantizable); ti++) {
        lf_qtype t = quantizable[ti];
        double worst_ratio = 0, worst_abs = 0;
        int worst_kind = 0, nans = 0;
        for (int k = 0; k < NKINDS; k++) {
            make_row(k, x, NROW, 40 + (uint64_t)k);
            lf_status st = lf_quantize_row(t, x, q, NROW);
            CHECK(st == LF_OK, "%s: quantize row '%s': %s", tname(t), kind_names[k], lf_last_error());
            if (st) continue;
            /* the checked entry point and the reference write the same bytes */
            uint8_t *q2 = malloc(lf_qtype_row_bytes(t, NROW));
            lf_quantize_row_ref(t, x, q2, NROW);
            CHECK(memcmp(q, q2, lf_qtype_row_bytes(t, NROW)) == 0, "%s: lf_quantize_row and _ref differ on '%s'", tname(t), kind_names[k]);
            free(q2);
            lf_dequantize_row(t, q, y, NROW);
            for (int i = 0; i < NROW; i++) {
                if (!isfinite(y[i])) {
                    nans++;
                    continue;
                }
                double e = fabs((double)y[i] - x[i]), b = err_bound(t, x, i);
                double ratio = e == 0 ? 0 : b > 0 ? e / b : INFINITY;
                if (ratio > worst_ratio) worst_ratio = ratio, worst_kind = k;
                if (e > worst_abs && k < 3) worst_abs = e;
                if (ratio > 1) {
                    CHECK(0, "%s: '%s' value %d: %.9g came back as %.9g (error %.3g, bound %.3g)", tname(t), kind_names[k], i,
                          (double)x[i], (double)y[i], e, b);
                    break;
                }
            }
        }
        CHECK(nans == 0, "%s: %d non-finite values after the round trip", tname(t), nans);
        printf("  %-5s round trip: %d row kinds, worst error %.2f of the bound (on '%s'), max abs error on randn rows %.3g\n",
               tname(t), NKINDS, worst_ratio, kind_names[worst_kind], worst_abs);
    }
    /* refusals: the checked entry point names the problem */
    make_row(0, x, NROW, 9);
    x[100] = NAN;
    CHECK(lf_quantize_row(LF_QT_Q8_0, x, q, NROW) == LF_ERR_ARG, "a NaN must be refused");
    x[100] = 1e6f; /* Q4_1's f16 minimum cannot hold -1e6 */
    x[101] = -1e6f;
    CHECK(lf_quantize_row(LF_QT_Q4_1, x, q, NROW) == LF_ERR_ARG && strstr(lf_last_error(), "too large"),
          "values beyond the f16 scales must be refused (%s)", lf_last_error());
    CHECK(lf_quantize_row(LF_QT_Q8_0, x, q, NROW) == LF_OK, "q8_0 holds 1e6 (d = 1e6/127 fits f16): %s", lf_last_error());
    x[100] = 1e8f;
    CHECK(lf_quantize_row(LF_QT_Q8_0, x, q, NROW) == LF_ERR_ARG, "q8_0: 1e8 overflows its f16 scale and must be refused");
    CHECK(lf_quantize_row(LF_QT_F16, x, q, NROW) == LF_ERR_ARG, "f16: 1e8 must be refused");
    CHECK(lf_quantize_row(LF_QT_Q6_K, x, q, 256) == LF_ERR_ARG, "q6_k quantization must be refused");
    CHECK(lf_quantize_row(LF_QT_Q4_K, x, q, 576) == LF_ERR_ARG && strstr(lf_last_error(), "576"),
          "a 576-value row is not whole q4_k blocks: %s", lf_last_error());
    lf_qtype t;
    CHECK(lf_qtype_parse("Q4_K", &t) == LF_OK && t == LF_QT_Q4_K && lf_qtype_parse("bf16", &t) == LF_OK && t == LF_QT_BF16,
          "type names parse case-insensitively");
    CHECK(lf_qtype_parse("q5_k", &t) == LF_ERR_ARG && strstr(lf_last_error(), "q4_k"), "unknown names list the known ones");
    CHECK(lf_qtype_row_bytes(LF_QT_Q4_K, 512) == 288 && lf_qtype_row_bytes(LF_QT_Q8_0, 64) == 68 &&
              lf_qtype_row_bytes(LF_QT_Q6_K, 256) == 210 && lf_qtype_row_bytes(LF_QT_Q4_1, 32) == 20,
          "row bytes");
    free(x);
    free(y);
    free(q);
}

/* ---------------------------------------------------------------- dot products */

/* An encoded row of n values: quantized from random values, or (Q6_K, and Q4_K as a second case)
 * random bytes with moderate f16 scales, so every level and scale code occurs. */
static void make_qrow(lf_qtype t, uint8_t *q, int n, uint64_t seed, int random_bytes) {
    const lf_qtype_info *qi = lf_qtype_get(t);
    size_t nb = lf_qtype_row_bytes(t, n);
    if (t == LF_QT_Q6_K || random_bytes) {
        for (size_t i = 0; i < nb; i++) q[i] = (uint8_t)lf_hash64(seed, 5, i);
        for (size_t b = 0; b < nb / (size_t)qi->bytes; b++) {
            uint8_t *blk = q + b * (size_t)qi->bytes;
            int offs[2] = {t == LF_QT_Q6_K ? 208 : 0, t == LF_QT_Q6_K ? -1 : 2};
            for (int k = 0; k < 2; k++) {
                if (offs[k] < 0) continue;
                uint16_t h = lf_fp32_to_fp16(0.01f * (1.0f + lf_u01(lf_hash64(seed, 6, 2 * b + (uint64_t)k))));
                blk[offs[k]] = (uint8_t)h;
                blk[offs[k] + 1] = (uint8_t)(h >> 8);
            }
        }
        return;
    }
    float *x = tu_alloc((size_t)n);
    for (int i = 0; i < n; i++) x[i] = lf_randn(seed, 4, (uint64_t)i) + (t == LF_QT_Q4_1 ? 0.7f : 0.0f);
    LF_ASSERT(lf_quantize_row(t, x, q, n) == LF_OK);
    free(x);
}

/* Σ over values of (|w| + 2·|offset|)·|x|: what the kernels' factored sums add up (Q4_1 and Q4_K
 * subtract an offset times Σx, so their rounding scales with the offset, not with |w|) */
static double dot_magnitude(lf_qtype t, const uint8_t *q, const float *x, int n) {
    float *w = tu_alloc((size_t)n);
    lf_dequantize_row(t, q, w, n);
    double mag = 0;
    for (int i = 0; i < n; i++) {
        double off = 0;
        if (t == LF_QT_Q4_1) off = lf_fp16_to_fp32((uint16_t)(q[i / 32 * 20 + 2] | q[i / 32 * 20 + 3] << 8));
        if (t == LF_QT_Q4_K) {
            const uint8_t *b = q + i / 256 * 144;
            int j = i % 256 / 32, mn = j < 4 ? b[4 + j + 4] & 63 : (b[4 + j + 4] >> 4) | (b[4 + j] >> 6) << 4;
            off = lf_fp16_to_fp32((uint16_t)(b[2] | b[3] << 8)) * mn;
        }
        mag += (fabs(w[i]) + 2 * fabs(off)) * fabs(x[i]);
    }
    free(w);
    return mag;
}

static void test_dots(void) {
    static const char *const isas[] = {"plain", "avx2", "avx512"};
    const double tol = 2e-5; /* relative to dot_magnitude: float summation order only */
    printf("  qdot kernel for this CPU: %s\n", lf_qdot_kernel_name());
    uint8_t *q = malloc(lf_qtype_row_bytes(LF_QT_F32, 8 * 256 + 64));
    float *xbuf = tu_alloc(8 * 256 + 64), *w = tu_alloc(8 * 256);
    for (size_t ti = 0; ti < NELEM(all_types); ti++) {
        lf_qtype t = all_types[ti];
        int blck = lf_qtype_get(t)->blck;
        double worst[3] = {0, 0, 0}, worst_ref = 0;
        int ran[3] = {0, 0, 0};
        for (int nb = 1; nb <= 8; nb++)
            for (int variant = 0; variant < (t == LF_QT_Q4_K ? 2 : 1); variant++) {
                /* single-value types: odd lengths exercise the tails */
                int n = blck == 1 ? 8 * nb * nb + nb : nb * blck;
                float *x = xbuf + nb % 4; /* unaligned activations */
                for (int i = 0; i < n; i++) x[i] = lf_randn(77, (uint64_t)nb, (uint64_t)i);
                make_qrow(t, q, n, 100 + (uint64_t)nb, variant);
                double mag = dot_magnitude(t, q, x, n);
                float ref = lf_qdot_ref(t, q, x, n);
                lf_dequantize_row(t, q, w, n);
                double exact = 0;
                for (int i = 0; i < n; i++) exact += (double)w[i] * x[i];
                double er = fabs(ref - exact) / (mag > 0 ? mag : 1);
                worst_ref = fmax(worst_ref, er);
                CHECK(er <= 1e-7, "%s n=%d: lf_qdot_ref %.9g vs the dequantized double dot %.9g (rel %.3g)", tname(t), n,
                      (double)ref, exact, er);
                for (int k = 0; k < 3; k++) {
                    lf_qdot_fn f = lf_qdot_kernel(t, isas[k]);
                    if (!f) continue;
                    ran[k] = 1;
                    float v = f(q, x, n);
                    double e = fabs(v - exact) / (mag > 0 ? mag : 1);
                    worst[k] = fmax(worst[k], e);
                    CHECK(e <= tol, "%s n=%d %s kernel: %.9g vs reference %.9g: error %.3g of the magnitude %.3g (tolerance %.0e)",
                          tname(t), n, isas[k], (double)v, (double)ref, e, mag, tol);
                }
                float best = lf_qdot(t, q, x, n);
                CHECK(best == lf_qdot_kernel(t, NULL)(q, x, n), "%s: lf_qdot is the CPU's best kernel", tname(t));
            }
        printf("  %-5s dot: worst relative error plain %.2g%s, avx2 %.2g%s, avx512 %.2g%s; reference vs double %.2g\n", tname(t),
               worst[0], ran[0] ? "" : " (not run)", worst[1], ran[1] ? "" : " (not run)", worst[2], ran[2] ? "" : " (not run)",
               worst_ref);
    }
    free(q);
    free(xbuf);
    free(w);
}

int main(void) {
    test_half();
    test_round_trips();
    test_dots();
    return tu_finish("quant");
}
