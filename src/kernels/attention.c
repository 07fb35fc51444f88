/* Causal grouped-query self-attention. The fast version runs one (batch, kv-head) group per
 * OpenMP work item and does its matrix products with single-threaded BLAS calls on row blocks
 * of ATT_BLOCK queries, each touching only the keys it may see (so about half the FLOPs of a
 * full T×T product). Work items own disjoint slices of out/att/dqkv: no races, deterministic.
 * The _ref version is the plain loop nest kept as the test oracle. */
#include "lmforge/core.h"
#include "lmforge/kernels.h"
#include "vmath.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#define ATT_BLOCK 64

/* for the current thread count: callers re-plan when it changes (omp_set_num_threads) */
size_t lf_attention_scratch_floats(int T) {
    return (size_t)lf_num_threads() * 2 * (size_t)T * (size_t)T;
}

static inline int keep(const lf_dropout *d, uint64_t i) {
    return lf_u01(lf_hash64(d->seed, d->stream, i)) >= d->p;
}

/* Pd = dropout(P) on rows [i0,i1), columns [0,i1) */
static void drop_rows(float *Pd, const float *P, int T, int i0, int i1, uint64_t base,
                      const lf_dropout *d) {
    float sc = 1.0f / (1.0f - d->p);
    for (int i = i0; i < i1; i++)
        for (int j = 0; j < i1; j++) {
            size_t k = (size_t)i * T + j;
            Pd[k] = keep(d, base + k) ? P[k] * sc : 0.0f;
        }
}

void lf_attention_forward(float *out, float *att, const float *qkv, float *scratch, int B, int T,
                          int H, int KVH, int hd, lf_dropout drop) {
    LF_ASSERT(H % KVH == 0);
    const int G = H / KVH, S = (H + 2 * KVH) * hd, OS = H * hd;
    const float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static)
    for (int item = 0; item < B * KVH; item++) {
        int b = item / KVH, kvh = item % KVH;
        float *Pd = scratch + (size_t)omp_get_thread_num() * 2 * T * T;
        const float *base = qkv + (size_t)b * T * S;
        const float *K = base + (size_t)(H + kvh) * hd, *V = base + (size_t)(H + KVH + kvh) * hd;
        for (int g = 0; g < G; g++) {
            int h = kvh * G + g;
            const float *Q = base + (size_t)h * hd;
            float *P = att + ((size_t)b * H + h) * T * T;
            float *Y = out + (size_t)b * T * OS + (size_t)h * hd;
            uint64_t dbase = ((uint64_t)b * H + h) * T * T;
            for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
                int i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, i1 - i0, i1, hd, scale,
                            Q + (size_t)i0 * S, S, K, S, 0.0f, P + (size_t)i0 * T, T);
                for (int i = i0; i < i1; i++) {
                    float *row = P + (size_t)i * T;
                    float mx = -INFINITY;
                    for (int j = 0; j <= i; j++) mx = row[j] > mx ? row[j] : mx;
                    float s = 0.0f;
#pragma omp simd reduction(+ : s)
                    for (int j = 0; j <= i; j++) {
                        float e = lf_vexpf(row[j] - mx);
                        row[j] = e;
                        s += e;
                    }
                    float inv = 1.0f / s;
                    for (int j = 0; j <= i; j++) row[j] *= inv;
                    for (int j = i + 1; j < T; j++) row[j] = 0.0f;
                }
                const float *A = P;
                if (drop.p > 0.0f) {
                    drop_rows(Pd, P, T, i0, i1, dbase, &drop);
                    A = Pd;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, i1 - i0, hd, i1, 1.0f,
                            A + (size_t)i0 * T, T, V, S, 0.0f, Y + (size_t)i0 * OS, OS);
            }
        }
    }
}

void lf_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                           const float *att, int B, int T, int H, int KVH, int hd, lf_dropout drop) {
    LF_ASSERT(H % KVH == 0);
    const int G = H / KVH, S = (H + 2 * KVH) * hd, OS = H * hd;
    const float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static)
    for (int item = 0; item < B * KVH; item++) {
        int b = item / KVH, kvh = item % KVH;
        float *dP = scratch + (size_t)omp_get_thread_num() * 2 * T * T;
        float *Pd = dP + (size_t)T * T;
        const float *base = qkv + (size_t)b * T * S;
        float *dbase_ptr = dqkv + (size_t)b * T * S;
        const float *K = base + (size_t)(H + kvh) * hd, *V = base + (size_t)(H + KVH + kvh) * hd;
        float *dK = dbase_ptr + (size_t)(H + kvh) * hd, *dV = dbase_ptr + (size_t)(H + KVH + kvh) * hd;
        for (int t = 0; t < T; t++) {
            memset(dK + (size_t)t * S, 0, sizeof(float) * hd);
            memset(dV + (size_t)t * S, 0, sizeof(float) * hd);
        }
        for (int g = 0; g < G; g++) {
            int h = kvh * G + g;
            const float *Q = base + (size_t)h * hd;
            float *dQ = dbase_ptr + (size_t)h * hd;
            const float *P = att + ((size_t)b * H + h) * T * T;
            const float *dY = dout + (size_t)b * T * OS + (size_t)h * hd;
            uint64_t dbase = ((uint64_t)b * H + h) * T * T;
            for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
                int i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T, nb = i1 - i0;
                const float *A = P;
                if (drop.p > 0.0f) {
                    drop_rows(Pd, P, T, i0, i1, dbase, &drop);
                    A = Pd;
                }
                /* dV[0:i1] += Pdᵀ[0:i1, i0:i1] · dY[i0:i1] */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, i1, hd, nb, 1.0f,
                            A + (size_t)i0 * T, T, dY + (size_t)i0 * OS, OS, 1.0f, dV, S);
                /* dPd = dY · Vᵀ */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, i1, hd, 1.0f,
                            dY + (size_t)i0 * OS, OS, V, S, 0.0f, dP + (size_t)i0 * T, T);
                float sc = drop.p > 0.0f ? 1.0f / (1.0f - drop.p) : 1.0f;
                for (int i = i0; i < i1; i++) {
                    float *dr = dP + (size_t)i * T;
                    const float *pr = P + (size_t)i * T;
                    if (drop.p > 0.0f)
                        for (int j = 0; j <= i; j++)
                            dr[j] = keep(&drop, dbase + (size_t)i * T + j) ? dr[j] * sc : 0.0f;
                    float dot = 0.0f;
                    for (int j = 0; j <= i; j++) dot += pr[j] * dr[j];
                    for (int j = 0; j <= i; j++) dr[j] = pr[j] * (dr[j] - dot) * scale;
                    for (int j = i + 1; j < i1; j++) dr[j] = 0.0f;
                }
                /* dQ[i0:i1] = dS · K[0:i1] ; dK[0:i1] += dSᵀ · Q[i0:i1] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, hd, i1, 1.0f,
                            dP + (size_t)i0 * T, T, K, S, 0.0f, dQ + (size_t)i0 * S, S);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, i1, hd, nb, 1.0f,
                            dP + (size_t)i0 * T, T, Q + (size_t)i0 * S, S, 1.0f, dK, S);
            }
        }
    }
}

/* ---------------------------------------------------------------- reference */

void lf_attention_forward_ref(float *out, float *att, const float *qkv, int B, int T, int H, int KVH,
                              int hd, lf_dropout drop) {
    const int G = H / KVH, S = (H + 2 * KVH) * hd, OS = H * hd;
    const double scale = 1.0 / sqrt((double)hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int kvh = h / G;
            float *P = att + ((size_t)b * H + h) * T * T;
            for (int i = 0; i < T; i++) {
                const float *q = qkv + ((size_t)b * T + i) * S + (size_t)h * hd;
                double mx = -INFINITY;
                for (int j = 0; j <= i; j++) {
                    const float *k = qkv + ((size_t)b * T + j) * S + (size_t)(H + kvh) * hd;
                    double s = 0.0;
                    for (int d = 0; d < hd; d++) s += (double)q[d] * k[d];
                    P[(size_t)i * T + j] = (float)(s * scale);
                    if (s * scale > mx) mx = s * scale;
                }
                double sum = 0.0;
                for (int j = 0; j <= i; j++) sum += exp(P[(size_t)i * T + j] - mx);
                for (int j = 0; j < T; j++)
                    P[(size_t)i * T + j] = j <= i ? (float)(exp(P[(size_t)i * T + j] - mx) / sum) : 0.0f;
                float *y = out + ((size_t)b * T + i) * OS + (size_t)h * hd;
                for (int d = 0; d < hd; d++) {
                    double s = 0.0;
                    for (int j = 0; j <= i; j++) {
                        double p = P[(size_t)i * T + j];
                        uint64_t idx = (((uint64_t)b * H + h) * T + i) * T + j;
                        if (drop.p > 0.0f) p = keep(&drop, idx) ? p / (1.0 - drop.p) : 0.0;
                        s += p * qkv[((size_t)b * T + j) * S + (size_t)(H + KVH + kvh) * hd + d];
                    }
                    y[d] = (float)s;
                }
            }
        }
}

void lf_attention_backward_ref(float *dqkv, const float *dout, const float *qkv, const float *att,
                               int B, int T, int H, int KVH, int hd, lf_dropout drop) {
    const int G = H / KVH, S = (H + 2 * KVH) * hd, OS = H * hd;
    const double scale = 1.0 / sqrt((double)hd);
    memset(dqkv, 0, sizeof(float) * (size_t)B * T * S);
    double dp[4096];
    LF_ASSERT(T <= 4096);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int kvh = h / G;
            const float *P = att + ((size_t)b * H + h) * T * T;
            for (int i = 0; i < T; i++) {
                const float *dy = dout + ((size_t)b * T + i) * OS + (size_t)h * hd;
                double dot = 0.0;
                for (int j = 0; j <= i; j++) {
                    uint64_t idx = (((uint64_t)b * H + h) * T + i) * T + j;
                    double m = drop.p > 0.0f ? (keep(&drop, idx) ? 1.0 / (1.0 - drop.p) : 0.0) : 1.0;
                    const float *v = qkv + ((size_t)b * T + j) * S + (size_t)(H + KVH + kvh) * hd;
                    float *dv = dqkv + ((size_t)b * T + j) * S + (size_t)(H + KVH + kvh) * hd;
                    double s = 0.0;
                    for (int d = 0; d < hd; d++) {
                        s += (double)dy[d] * v[d];
                        dv[d] += (float)(P[(size_t)i * T + j] * m * dy[d]);
                    }
                    dp[j] = s * m;
                    dot += dp[j] * P[(size_t)i * T + j];
                }
                const float *q = qkv + ((size_t)b * T + i) * S + (size_t)h * hd;
                float *dq = dqkv + ((size_t)b * T + i) * S + (size_t)h * hd;
                for (int j = 0; j <= i; j++) {
                    double ds = P[(size_t)i * T + j] * (dp[j] - dot) * scale;
                    const float *k = qkv + ((size_t)b * T + j) * S + (size_t)(H + kvh) * hd;
                    float *dk = dqkv + ((size_t)b * T + j) * S + (size_t)(H + kvh) * hd;
                    for (int d = 0; d < hd; d++) {
                        dq[d] += (float)(ds * k[d]);
                        dk[d] += (float)(ds * q[d]);
                    }
                }
            }
        }
}

void lf_attention_decode_forward(float *y, const float *q, const float *kc, const float *vc, float *scores, int len,
                                 int H, int KVH, int hd) {
    int G = H / KVH, KVW = KVH * hd;
    float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < H; h++) {
        const float *qh = q + (size_t)h * hd;
        int g = h / G;
        float mx = -INFINITY;
        for (int t = 0; t < len; t++) {
            const float *k = kc + (size_t)t * KVW + (size_t)g * hd;
            float s = 0.0f;
            for (int d = 0; d < hd; d++) s += qh[d] * k[d];
            scores[t] = s * scale;
            mx = scores[t] > mx ? scores[t] : mx;
        }
        float sum = 0.0f;
        for (int t = 0; t < len; t++) {
            scores[t] = expf(scores[t] - mx);
            sum += scores[t];
        }
        float *yh = y + (size_t)h * hd;
        memset(yh, 0, sizeof(float) * hd);
        for (int t = 0; t < len; t++) {
            const float *v = vc + (size_t)t * KVW + (size_t)g * hd;
            float p = scores[t] / sum;
            for (int d = 0; d < hd; d++) yh[d] += p * v[d];
        }
    }
}
