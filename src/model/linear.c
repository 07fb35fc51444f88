/* The one linear path: every linear layer of training, evaluation and decoding runs here, so a
 * technique attaches to a weight once and works everywhere. In order:
 *   - the activation tap sees the input rows (calibration statistics);
 *   - the base product runs through the weight's storage (float32 GEMM/GEMV, or a storage type's
 *     own kernel for quantized weights);
 *   - each enabled adapter adds scale·(drop(x)·Aᵀ)·Bᵀ (LoRA);
 *   - in backward, the weight mask zeroes the gradient of pruned weights (the weights themselves
 *     are kept at zero by lf_model_set_mask and lf_model_apply_masks).
 * Adapter intermediates are recomputed in backward instead of stored: x·Aᵀ is N·r·IC flops,
 * small next to the base product, and it keeps activation memory independent of adapter count. */
#include "model_internal.h"

#include <cblas.h>
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
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, OC, r, 1.0f, xa, r, ad->B->data, r, 1.0f, out, ldo);
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
