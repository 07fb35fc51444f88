/* CPU kernels: elementwise and row-wise ops (OpenMP), linears through BLAS, fused
 * cross-entropy, AdamW. Every function here is a pure function of its arguments. Reductions
 * that cross threads (parameter gradients of norms, biases and embeddings) are split by columns
 * so each thread owns its outputs and adds rows in a fixed order: bit-identical results for a
 * fixed thread count. */
#include "lmforge/kernels.h"
#include "lmforge/core.h"
#include "vmath.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>
#include <strings.h>

const char *lf_blas_core(void) { return openblas_get_corename(); }

const char *lf_blas_better_core(void) {
    const char *core = openblas_get_corename();
    if (!core || strcasecmp(core, "Prescott") != 0) return NULL;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return NULL;
}

static void block_range(size_t n, int nt, int t, size_t *b, size_t *e) {
    size_t q = n / (size_t)nt, r = n % (size_t)nt;
    *b = (size_t)t * q + ((size_t)t < r ? (size_t)t : r);
    *e = *b + q + ((size_t)t < r ? 1 : 0);
}

/* acc[c] += Σ_n x[n*ld + c] (column sums), parallel over column blocks */
static void colsum_acc(float *acc, const float *x, size_t N, int C, size_t ld) {
#pragma omp parallel
    {
        size_t c0, c1;
        block_range((size_t)C, omp_get_num_threads(), omp_get_thread_num(), &c0, &c1);
        for (size_t n = 0; n < N; n++) {
            const float *row = x + n * ld;
#pragma omp simd
            for (size_t c = c0; c < c1; c++) acc[c] += row[c];
        }
    }
}

static inline int dropout_keep(const lf_dropout *d, uint64_t i) {
    return lf_u01(lf_hash64(d->seed, d->stream, i)) >= d->p;
}

/* ---------------------------------------------------------------- encoder */

void lf_encoder_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                        int B, int T, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < B * T; n++) {
        float *o = out + (size_t)n * C;
        const float *e = wte + (size_t)tokens[n] * C;
        if (wpe) {
            const float *p = wpe + (size_t)(n % T) * C;
            for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
        } else {
            memcpy(o, e, sizeof(float) * (size_t)C);
        }
    }
}

void lf_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int B,
                         int T, int C) {
#pragma omp parallel
    {
        size_t c0, c1;
        block_range((size_t)C, omp_get_num_threads(), omp_get_thread_num(), &c0, &c1);
        for (int n = 0; n < B * T; n++) {
            const float *d = dout + (size_t)n * C;
            if (dwte) {
                float *g = dwte + (size_t)tokens[n] * C;
                for (size_t c = c0; c < c1; c++) g[c] += d[c];
            }
            if (dwpe) {
                float *g = dwpe + (size_t)(n % T) * C;
                for (size_t c = c0; c < c1; c++) g[c] += d[c];
            }
        }
    }
}

/* ---------------------------------------------------------------- norms */

void lf_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, size_t N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float s = 0.0f;
        for (int c = 0; c < C; c++) s += x[c];
        float m = s / C;
        float v = 0.0f;
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            v += d * d;
        }
        float r = 1.0f / sqrtf(v / C + eps);
        float *o = out + n * C;
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * r * w[c] + b[c];
        mean[n] = m;
        rstd[n] = r;
    }
}

void lf_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, const float *mean, const float *rstd, size_t N, int C) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *d = dout + n * C, *x = inp + n * C;
        float m = mean[n], r = rstd[n];
        float dmean = 0.0f, dnormmean = 0.0f;
        for (int c = 0; c < C; c++) {
            float dn = w[c] * d[c];
            dmean += dn;
            dnormmean += dn * (x[c] - m) * r;
        }
        dmean /= C;
        dnormmean /= C;
        float *di = dinp + n * C;
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * r;
            di[c] += (w[c] * d[c] - dmean - norm * dnormmean) * r;
        }
    }
    if (!dw && !db) return;
#pragma omp parallel
    {
        size_t c0, c1;
        block_range((size_t)C, omp_get_num_threads(), omp_get_thread_num(), &c0, &c1);
        for (size_t n = 0; n < N; n++) {
            const float *d = dout + n * C, *x = inp + n * C;
            float m = mean[n], r = rstd[n];
            if (dw)
                for (size_t c = c0; c < c1; c++) dw[c] += (x[c] - m) * r * d[c];
            if (db)
                for (size_t c = c0; c < c1; c++) db[c] += d[c];
        }
    }
}

void lf_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, size_t N, int C,
                        float eps) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float ss = 0.0f;
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        float r = 1.0f / sqrtf(ss / C + eps);
        float *o = out + n * C;
        for (int c = 0; c < C; c++) o[c] = w[c] * (x[c] * r);
        rstd[n] = r;
    }
}

void lf_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                         const float *rstd, size_t N, int C) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *d = dout + n * C, *x = inp + n * C;
        float r = rstd[n];
        float dot = 0.0f;
        for (int c = 0; c < C; c++) dot += w[c] * d[c] * x[c] * r;
        dot /= C;
        float *di = dinp + n * C;
        for (int c = 0; c < C; c++) di[c] += r * (w[c] * d[c] - x[c] * r * dot);
    }
    if (!dw) return;
#pragma omp parallel
    {
        size_t c0, c1;
        block_range((size_t)C, omp_get_num_threads(), omp_get_thread_num(), &c0, &c1);
        for (size_t n = 0; n < N; n++) {
            const float *d = dout + n * C, *x = inp + n * C;
            float r = rstd[n];
            for (size_t c = c0; c < c1; c++) dw[c] += x[c] * r * d[c];
        }
    }
}

/* ---------------------------------------------------------------- linear */

void lf_linear_forward(float *out, int ldo, const float *inp, int ldi, const float *w,
                       const float *b, size_t N, int IC, int OC) {
    if (N == 1) { /* one row (decoding): GEMV streams the weights once; GEMM would pack them */
        if (b) memcpy(out, b, sizeof(float) * (size_t)OC);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, IC, 1.0f, w, IC, inp, 1, b ? 1.0f : 0.0f, out, 1);
        return;
    }
    float beta = 0.0f;
    if (b) {
#pragma omp parallel for schedule(static)
        for (size_t n = 0; n < N; n++) memcpy(out + n * ldo, b, sizeof(float) * (size_t)OC);
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, OC, IC, 1.0f, inp, ldi, w, IC, beta,
                out, ldo);
}

void lf_linear_backward(float *dinp, int ldi, int accum, float *dw, float *db, const float *dout,
                        int ldo, const float *inp, const float *w, size_t N, int IC, int OC) {
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, IC, OC, 1.0f, dout, ldo, w, IC,
                    accum ? 1.0f : 0.0f, dinp, ldi);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, (int)N, 1.0f, dout, ldo, inp, ldi,
                    1.0f, dw, IC);
    if (db) colsum_acc(db, dout, N, OC, (size_t)ldo);
}

void lf_linear_forward_ref(float *out, int ldo, const float *inp, int ldi, const float *w,
                           const float *b, size_t N, int IC, int OC) {
    for (size_t n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < IC; i++) s += (double)inp[n * ldi + i] * w[(size_t)o * IC + i];
            out[n * ldo + o] = (float)s;
        }
}

void lf_linear_backward_ref(float *dinp, int ldi, int accum, float *dw, float *db,
                            const float *dout, int ldo, const float *inp, const float *w, size_t N,
                            int IC, int OC) {
    if (dinp)
        for (size_t n = 0; n < N; n++)
            for (int i = 0; i < IC; i++) {
                double s = accum ? dinp[n * ldi + i] : 0.0;
                for (int o = 0; o < OC; o++) s += (double)dout[n * ldo + o] * w[(size_t)o * IC + i];
                dinp[n * ldi + i] = (float)s;
            }
    for (int o = 0; o < OC; o++) {
        if (dw)
            for (int i = 0; i < IC; i++) {
                double s = 0.0;
                for (size_t n = 0; n < N; n++) s += (double)dout[n * ldo + o] * inp[n * ldi + i];
                dw[(size_t)o * IC + i] += (float)s;
            }
        if (db) {
            double s = 0.0;
            for (size_t n = 0; n < N; n++) s += dout[n * ldo + o];
            db[o] += (float)s;
        }
    }
}

/* ---------------------------------------------------------------- activations */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

void lf_gelu_forward(float *out, const float *inp, size_t N) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + lf_vtanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

void lf_gelu_backward(float *dinp, const float *inp, const float *dout, size_t N) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        float th = lf_vtanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = g * dout[i];
    }
}

void lf_swiglu_forward(float *out, const float *gu, size_t N, int F) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *g = gu + n * 2 * F, *u = g + F;
        float *o = out + n * F;
#pragma omp simd
        for (int i = 0; i < F; i++) o[i] = g[i] * lf_vsigmoidf(g[i]) * u[i];
    }
}

void lf_swiglu_backward(float *dgu, const float *dout, const float *gu, size_t N, int F) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *g = gu + n * 2 * F, *u = g + F, *d = dout + n * F;
        float *dg = dgu + n * 2 * F, *du = dg + F;
#pragma omp simd
        for (int i = 0; i < F; i++) {
            float s = lf_vsigmoidf(g[i]);
            float silu = g[i] * s;
            du[i] = d[i] * silu;
            dg[i] = d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        }
    }
}

/* ---------------------------------------------------------------- rope */

static void rope_apply(float *x, const float *cos_t, const float *sin_t, int B, int T, int nh, int hd,
                       int stride, float sign) {
    int half = hd / 2;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < B * T; n++) {
        int t = n % T;
        const float *cs = cos_t + (size_t)t * half, *sn = sin_t + (size_t)t * half;
        for (int h = 0; h < nh; h++) {
            float *v = x + (size_t)n * stride + (size_t)h * hd;
            for (int p = 0; p < half; p++) {
                float a = v[p], b = v[p + half], c = cs[p], s = sign * sn[p];
                v[p] = a * c - b * s;
                v[p + half] = b * c + a * s;
            }
        }
    }
}

void lf_rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int nh, int hd,
                     int stride) {
    rope_apply(x, cos_t, sin_t, B, T, nh, hd, stride, 1.0f);
}

void lf_rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int nh,
                      int hd, int stride) {
    rope_apply(dx, cos_t, sin_t, B, T, nh, hd, stride, -1.0f);
}

/* ---------------------------------------------------------------- dropout / residual */

void lf_residual_forward(float *out, const float *res, const float *branch, size_t N, lf_dropout drop) {
    if (drop.p <= 0.0f) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < N; i++) out[i] = res[i] + branch[i];
        return;
    }
    float sc = 1.0f / (1.0f - drop.p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) out[i] = res[i] + (dropout_keep(&drop, i) ? branch[i] * sc : 0.0f);
}

void lf_dropout_forward(float *out, const float *inp, size_t N, lf_dropout drop) {
    if (drop.p <= 0.0f) {
        if (out != inp) memcpy(out, inp, sizeof(float) * N);
        return;
    }
    float sc = 1.0f / (1.0f - drop.p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) out[i] = dropout_keep(&drop, i) ? inp[i] * sc : 0.0f;
}

void lf_dropout_backward(float *dinp, const float *dout, size_t N, lf_dropout drop) {
    lf_dropout_forward(dinp, dout, N, drop); /* the mask is its own transpose */
}

/* ---------------------------------------------------------------- cross-entropy */

void lf_crossentropy_forward(float *losses, float *lse, const float *logits, const int32_t *targets,
                             size_t N, int V, float smoothing) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *z = logits + n * V;
        float mx = -INFINITY;
        for (int v = 0; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        float s = 0.0f, zs = 0.0f;
#pragma omp simd reduction(+ : s, zs)
        for (int v = 0; v < V; v++) {
            s += lf_vexpf(z[v] - mx);
            zs += z[v];
        }
        float l = mx + logf(s);
        lse[n] = l;
        int y = targets[n];
        if (y < 0) {
            losses[n] = 0.0f;
            continue;
        }
        losses[n] = l - (1.0f - smoothing) * z[y] - smoothing * (zs / V);
    }
}

void lf_crossentropy_backward(float *dlogits, const float *logits, const float *lse,
                              const int32_t *targets, size_t N, int V, float smoothing, float dloss) {
    float off = smoothing / V;
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        const float *z = logits + n * V;
        float *dz = dlogits + n * V;
        int y = targets[n];
        if (y < 0) {
            memset(dz, 0, sizeof(float) * (size_t)V);
            continue;
        }
        float l = lse[n];
#pragma omp simd
        for (int v = 0; v < V; v++) dz[v] = dloss * (lf_vexpf(z[v] - l) - off);
        dz[y] -= dloss * (1.0f - smoothing);
    }
}

/* ---------------------------------------------------------------- optimizer helpers */

void lf_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                     float beta2, float eps, float weight_decay, float grad_scale, int t) {
    float bc1 = 1.0f - powf(beta1, (float)t), bc2 = 1.0f - powf(beta2, (float)t);
    float step = lr / bc1, bc2s = sqrtf(bc2), decay = 1.0f - lr * weight_decay;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * grad_scale;
        float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step * mi / (sqrtf(vi) / bc2s + eps);
    }
}

void lf_mask_apply(float *x, const uint8_t *mask, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = mask[i] ? x[i] : 0.0f;
}

void lf_scale(float *x, size_t n, float a) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= a;
}

double lf_sumsq(const float *x, size_t n) {
    double part[256] = {0};
    int used = 1;
#pragma omp parallel
    {
        /* one block per thread, at most 256 blocks: threads past the 256th idle here (the sum
         * stays deterministic for a given thread count, whatever that count is) */
        int nt = omp_get_num_threads(), t = omp_get_thread_num(), nb = nt < 256 ? nt : 256;
        if (t < nb) {
            size_t b, e;
            block_range(n, nb, t, &b, &e);
            double s = 0.0;
            for (size_t i = b; i < e; i++) s += (double)x[i] * x[i];
            part[t] = s;
        }
        if (t == 0) used = nb;
    }
    double s = 0.0;
    for (int t = 0; t < used; t++) s += part[t];
    return s;
}
