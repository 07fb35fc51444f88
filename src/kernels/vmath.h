/* Vectorizable single-precision exp/tanh/sigmoid for the kernels' inner loops. glibc's expf and
 * tanhf do not vectorize without -ffast-math (which we refuse: it hides NaNs), and these loops
 * run over B·T·V and B·T·4C elements per step. Cephes-style range reduction + degree-6
 * polynomial: relative error about 2e-7 on the clamped range. */
#ifndef LF_VMATH_H
#define LF_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float lf_vexpf(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* round to nearest by adding 1.5*2^23: unlike floorf this stays inline and vectorizes */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * (-2.12194440e-4f);
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

static inline float lf_vtanhf(float x) { return 1.0f - 2.0f / (lf_vexpf(2.0f * x) + 1.0f); }
static inline float lf_vsigmoidf(float x) { return 1.0f / (1.0f + lf_vexpf(-x)); }

/* Natural log for x > 0 (below FLT_MIN taken as FLT_MIN), Cephes' logf made branch-free in
 * integer arithmetic so that it vectorizes (distillation's JSD takes one per vocabulary entry; a
 * float compare-and-select here kept gcc from vectorizing the callers): exponent and mantissa from
 * the bits, the mantissa folded into [sqrt(1/2), sqrt(2)), degree-8 polynomial; relative error
 * about 1e-7. */
static inline float lf_vlogf(float x) {
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits = bits < 0x00800000 ? 0x00800000 : bits; /* FLT_MIN: also catches 0 and negatives */
    int32_t e = (bits >> 23) - 126, mb = (bits & 0x007fffff) | 0x3f000000; /* m in [0.5, 1) */
    int32_t fold = mb < 0x3f3504f3; /* m < sqrt(1/2): m → 2m, one less in the exponent */
    e -= fold;
    mb += fold << 23;
    float m, fe = (float)e;
    memcpy(&m, &mb, sizeof m);
    m -= 1.0f;
    float z = m * m, y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z - 2.12194440e-4f * fe - 0.5f * z;
    return m + y + 0.693359375f * fe;
}

#endif
