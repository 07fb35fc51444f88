/* Test helpers: failure counting with messages that say what differed and by how much, random
 * fills, and a central finite-difference gradient checker. */
#ifndef LF_TESTUTIL_H
#define LF_TESTUTIL_H

#include "lmforge/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tu_failures = 0, tu_checks = 0;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        tu_checks++;                                                                               \
        if (!(cond)) {                                                                             \
            tu_failures++;                                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

static inline int tu_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, tu_checks, tu_failures);
    return tu_failures ? 1 : 0;
}

static inline void tu_fill(float *x, size_t n, uint64_t seed, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * lf_randn(seed, 7, i);
}

static inline float *tu_alloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* max |a-b| / max(1, max|b|) */
static inline double tu_rel_err(const float *a, const float *b, size_t n) {
    double m = 0.0, r = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > r) r = fabs(b[i]);
    }
    return m / (r > 1.0 ? r : 1.0);
}

/* Central differences in float32 with step eps; a component passes when
 * |num - ana| <= atol + rtol * max(|num|, |ana|). Checks up to max_checks evenly spread
 * components. Returns the worst ratio of error to allowance (<= 1 passes). */
typedef double (*tu_loss_fn)(void *ctx);
static inline double tu_fd_check(const char *what, float *x, const float *ana, size_t n, tu_loss_fn f, void *ctx,
                                 float eps, double atol, double rtol, size_t max_checks) {
    size_t stride = n > max_checks ? n / max_checks : 1;
    double worst = 0.0;
    size_t worst_i = 0;
    double worst_num = 0, worst_ana = 0;
    for (size_t i = 0; i < n; i += stride) {
        float keep = x[i];
        x[i] = keep + eps;
        double lp = f(ctx);
        x[i] = keep - eps;
        double lm = f(ctx);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * eps);
        double allow = atol + rtol * fmax(fabs(num), fabs(ana[i]));
        double ratio = fabs(num - ana[i]) / allow;
        if (!(ratio <= worst)) {
            worst = isnan(ratio) ? INFINITY : ratio;
            worst_i = i;
            worst_num = num;
            worst_ana = ana[i];
        }
    }
    CHECK(worst <= 1.0, "%s: gradient mismatch at [%zu]: finite difference %.6g vs analytic %.6g (%.2fx the tolerance)",
          what, worst_i, worst_num, worst_ana, worst);
    return worst;
}

#endif
