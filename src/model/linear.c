/* The one linear path: every linear layer of training, evaluation and decoding runs here, so a
 * technique attaches to a weight once and works everywhere. In order:
 *   - the activation tap sees the input rows (calibration statistics);
 *   - the base product runs through the weight's storage (float32 GEMM/GEMV, or a storage type's
 *     own kernel for quantized weights);
 *   - each enabled adapter adds scale·(drop(x)·Aᵀ)·Bᵀ (LoRA), or with a magnitude vector PEFT's
 *     DoRA term (g-1)·(drop(x)·Wᵀ) + g·scale·(drop(x)·Aᵀ)·Bᵀ, g = m/‖W + scale·B·A‖ per output row;
 *   - in backward, the weight mask zeroes the gradient of pruned weights (the weights themselves
 *     are kept at zero by lf_model_set_mask and lf_model_apply_masks).
 * Adapter intermediates are recomputed in backward instead of stored: x·Aᵀ is N·r·IC flops,
 * small next to the base product, and it keeps activation memory independent of adapter count. */
#include "model_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* x·Aᵀ for an adapter, input after its dropout (in ad_x when it drops) */
static const float *adapter_input(lf_model *m, const lf_adapter *ad, const float *inp, int ldi, size_t N, int *ldx,
                                  lf_dropout *drop) {
    int IC = (int)ad->A->shape[1];
    *drop = lf_model_site(m, ad->dropout, 0x4c6f5241ull ^ lf_fnv1a(ad->A->name, strlen(ad->A->name)));
    *ldx = ldi;
    if (drop->p <= 0.0f) return inp;
    float *x = m->a.ad_x;
    for (size_t n = 0; n < N; n++) memcpy(x + n * IC, inp + n * ldi, sizeof(float) * (size_t)IC);
    lf_dropout_forward(x, x, N * (size_t)IC, *drop);
    *ldx = IC;
    return x;
}

/* DoRA: norm[o] = ‖W[o,:] + s·B[o,:]·A‖ (OC), the weight norm PEFT detaches from the graph */
static void dora_norms(const lf_param *w, const lf_adapter *ad, float *norm) {
    int OC = (int)w->shape[0], IC = (int)w->shape[1], r = (int)ad->A->shape[0];
    float s = ad->scale;
#pragma omp parallel
    {
        float *row = malloc(sizeof(float) * (size_t)IC);
#pragma omp for schedule(static)
        for (int o = 0; o < OC; o++) {
            if (!row) continue;
            memcpy(row, w->data + (size_t)o * IC, sizeof(float) * (size_t)IC);
            for (int k = 0; k < r; k++) {
                float b = s * ad->B->data[(size_t)o * r + k];
                const float *a = ad->A->data + (size_t)k * IC;
                for (int i = 0; i < IC; i++) row[i] += b * a[i];
            }
            double ss = 0;
            for (int i = 0; i < IC; i++) ss += (double)row[i] * row[i];
            norm[o] = (float)sqrt(ss);
        }
        free(row);
    }
}

/* out (N,OC) += (g-1)·(x·Wᵀ) + g·(xa·Bᵀ), xa = s·x·Aᵀ already in m->a.ad_xa */
static void dora_forward(lf_model *m, const lf_adapter *ad, const lf_param *w, float *out, int ldo, const float *x,
                         int ldx, size_t N) {
    int OC = (int)w->shape[0], IC = (int)w->shape[1], r = (int)ad->A->shape[0];
    float *norm = m->a.ad_norm, *y = m->a.ad_y; // (OC) (N,OC)
    const float *mag = ad->magnitude->data;
    dora_norms(w, ad, norm);
    lf_linear_forward(y, OC, x, ldx, w->data, NULL, N, IC, OC);
    for (size_t n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) out[n * ldo + o] += (mag[o] / norm[o] - 1.0f) * y[n * OC + o];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, OC, r, 1.0f, m->a.ad_xa, r, ad->B->data, r, 0.0f, y, OC);
    for (size_t n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) out[n * ldo + o] += mag[o] / norm[o] * y[n * OC + o];
}

void lf_linear_run_forward(lf_model *m, float *out, int ldo, const float *inp, int ldi, const lf_param *w,
                           const lf_param *b, size_t N) {
    int OC = (int)w->shape[0], IC = (int)w->shape[1];
    if (w->tap) w->tap(w->tap_ctx, w, inp, ldi, N, IC);
    if (w->qops) w->qops->forward(out, ldo, inp, ldi, w, b ? b->data : NULL, N);
    else lf_linear_forward(out, ldo, inp, ldi, w->data, b ? b->data : NULL, N, IC, OC);
    for (const lf_adapter *ad = w->adapters; ad; ad = ad->next) {
        if (!ad->enabled) continue;
        int r = (int)ad->A->shape[0], ldx;
        lf_dropout drop;
        const float *x = adapter_input(m, ad, inp, ldi, N, &ldx, &drop);
        float *xa = m->a.ad_xa; // (N,r)
        lf_linear_forward(xa, r, x, ldx, ad->A->data, NULL, N, IC, r);
        lf_scale(xa, N * (size_t)r, ad->scale);
        if (ad->magnitude) dora_forward(m, ad, w, out, ldo, x, ldx, N);
        else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, OC, r, 1.0f, xa, r, ad->B->data, r, 1.0f, out, ldo);
    }
}

/* DoRA backward with the norm n held constant (g = m/n): with y0 = x·Wᵀ and u = xa·Bᵀ,
 *   dm  += Σ_n dout·(y0 + u) / n        dW += (dout·(g-1))ᵀ·x      (when W trains)
 *   the LoRA pair sees dout·g;          dx += (dout·(g-1))·W + (s·(dout·g)·B)·A */
static void dora_backward(lf_model *m, const lf_adapter *ad, const lf_param *w, float *dinp, int ldi,
                          const float *dout, int ldo, const float *x, int ldx, size_t N, lf_dropout drop) {
    int OC = (int)w->shape[0], IC = (int)w->shape[1], r = (int)ad->A->shape[0];
    float *norm = m->a.ad_norm, *y = m->a.ad_y, *xa = m->a.ad_xa, *dxa = m->a.ad_dxa; // (OC) (N,OC) (N,r) (N,r)
    const float *mag = ad->magnitude->data;
    dora_norms(w, ad, norm);
    lf_linear_forward(y, OC, x, ldx, w->data, NULL, N, IC, OC);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, OC, r, 1.0f, xa, r, ad->B->data, r, 1.0f, y, OC);
    if (ad->magnitude->grad) {
        float *dm = ad->magnitude->grad;
        for (int o = 0; o < OC; o++) {
            double acc = 0;
            for (size_t n = 0; n < N; n++) acc += (double)dout[n * ldo + o] * y[n * OC + o];
            dm[o] += (float)(acc / norm[o]);
        }
    }
    for (size_t n = 0; n < N; n++) /* y = dout·g: what the low-rank pair sees */
        for (int o = 0; o < OC; o++) y[n * OC + o] = dout[n * ldo + o] * (mag[o] / norm[o]);
    lf_linear_backward(dxa, r, 0, ad->B->grad, NULL, y, OC, xa, ad->B->data, N, r, OC);
    lf_scale(dxa, N * (size_t)r, ad->scale);
    if (ad->A->grad) lf_linear_backward(NULL, ldx, 0, ad->A->grad, NULL, dxa, r, x, ad->A->data, N, IC, r);
    if (!dinp && !w->grad) return;
    for (size_t n = 0; n < N; n++) /* y = dout·(g-1): the base weight's extra term */
        for (int o = 0; o < OC; o++) y[n * OC + o] -= dout[n * ldo + o];
    if (w->grad) {
        lf_linear_backward(NULL, ldx, 0, w->grad, NULL, y, OC, x, w->data, N, IC, OC);
        if (w->mask) lf_mask_apply(w->grad, w->mask, w->numel);
    }
    if (!dinp) return;
    if (drop.p <= 0.0f) {
        lf_linear_backward(dinp, ldi, 1, NULL, NULL, y, OC, NULL, w->data, N, IC, OC);
        lf_linear_backward(dinp, ldi, 1, NULL, NULL, dxa, r, NULL, ad->A->data, N, IC, r);
    } else {
        float *dx = m->a.ad_x; /* the dropped input is no longer needed */
        lf_linear_backward(dx, IC, 0, NULL, NULL, y, OC, NULL, w->data, N, IC, OC);
        lf_linear_backward(dx, IC, 1, NULL, NULL, dxa, r, NULL, ad->A->data, N, IC, r);
        lf_dropout_backward(dx, dx, N * (size_t)IC, drop);
        for (size_t n = 0; n < N; n++)
            for (int i = 0; i < IC; i++) dinp[n * ldi + i] += dx[n * IC + i];
    }
}

void lf_linear_run_backward(lf_model *m, float *dinp, int ldi, int accum, const lf_param *w, const lf_param *b,
                            const float *dout, int ldo, const float *inp, size_t N) {
    int OC = (int)w->shape[0], IC = (int)w->shape[1];
    if (w->qops) {
        if (dinp) {
            if (w->qops->backward_input) w->qops->backward_input(dinp, ldi, accum, dout, ldo, w, N);
            else LF_ASSERT(!"storage type without backward_input used in a backward pass");
        }
        if (b && b->grad) lf_linear_backward(NULL, ldi, 0, NULL, b->grad, dout, ldo, inp, NULL, N, IC, OC);
    } else {
        lf_linear_backward(dinp, ldi, accum, w->grad, b ? b->grad : NULL, dout, ldo, inp, w->data, N, IC, OC);
        if (w->mask && w->grad) lf_mask_apply(w->grad, w->mask, w->numel);
    }
    for (const lf_adapter *ad = w->adapters; ad; ad = ad->next) {
        if (!ad->enabled) continue;
        int r = (int)ad->A->shape[0], ldx;
        lf_dropout drop;
        const float *x = adapter_input(m, ad, inp, ldi, N, &ldx, &drop);
        float *xa = m->a.ad_xa, *dxa = m->a.ad_dxa; // (N,r) (N,r)
        lf_linear_forward(xa, r, x, ldx, ad->A->data, NULL, N, IC, r);
        lf_scale(xa, N * (size_t)r, ad->scale);
        if (ad->magnitude) {
            dora_backward(m, ad, w, dinp, ldi, dout, ldo, x, ldx, N, drop);
            continue;
        }
        /* dB += doutᵀ·(s·xa); dxa = s·(dout·B) */
        lf_linear_backward(dxa, r, 0, ad->B->grad, NULL, dout, ldo, xa, ad->B->data, N, r, OC);
        lf_scale(dxa, N * (size_t)r, ad->scale);
        /* dA += dxaᵀ·x */
        if (ad->A->grad) lf_linear_backward(NULL, ldx, 0, ad->A->grad, NULL, dxa, r, x, ad->A->data, N, IC, r);
        if (!dinp) continue;
        if (drop.p <= 0.0f) { /* dinp += dxa·A */
            lf_linear_backward(dinp, ldi, 1, NULL, NULL, dxa, r, NULL, ad->A->data, N, IC, r);
        } else {
            float *dx = m->a.ad_x; /* the dropped input is no longer needed */
            lf_linear_backward(dx, IC, 0, NULL, NULL, dxa, r, NULL, ad->A->data, N, IC, r);
            lf_dropout_backward(dx, dx, N * (size_t)IC, drop);
            for (size_t n = 0; n < N; n++)
                for (int i = 0; i < IC; i++) dinp[n * ldi + i] += dx[n * IC + i];
        }
    }
}
