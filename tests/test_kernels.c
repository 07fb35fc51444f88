/* Every kernel's backward against central finite differences (float32, eps and tolerances
 * stated per call), and the fast BLAS kernels against their plain reference versions. */
#include "lmforge/kernels.h"
#include "testutil.h"

/* loss = Σ out · r, accumulated in double */
static double dot(const float *a, const float *r, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * r[i];
    return s;
}

#define EPS 1e-2f
#define ATOL 2e-3
#define RTOL 1e-2

/* ---------------------------------------------------------------- norms */
typedef struct {
    float *x, *w, *b, *out, *mean, *rstd, *r;
    size_t N;
    int C, rms;
} norm_ctx;
static double norm_loss(void *p) {
    norm_ctx *c = p;
    if (c->rms) lf_rmsnorm_forward(c->out, c->rstd, c->x, c->w, c->N, c->C, 1e-5f);
    else lf_layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C, 1e-5f);
    return dot(c->out, c->r, c->N * c->C);
}
static void test_norm(int rms) {
    norm_ctx c = {0};
    c.N = 6;
    c.C = 24;
    c.rms = rms;
    size_t n = c.N * c.C;
    c.x = tu_alloc(n); c.w = tu_alloc(c.C); c.b = tu_alloc(c.C); c.out = tu_alloc(n);
    c.mean = tu_alloc(c.N); c.rstd = tu_alloc(c.N); c.r = tu_alloc(n);
    tu_fill(c.x, n, 1, 1.5f); tu_fill(c.w, c.C, 2, 1.0f); tu_fill(c.b, c.C, 3, 0.5f); tu_fill(c.r, n, 4, 1.0f);
    for (size_t i = 0; i < n; i++) c.x[i] += 0.3f; /* non-zero mean */
    float *dx = tu_alloc(n), *dw = tu_alloc(c.C), *db = tu_alloc(c.C);
    norm_loss(&c);
    for (size_t i = 0; i < n; i++) dx[i] = 0.25f; /* dinp accumulates: start non-zero */
    if (rms) lf_rmsnorm_backward(dx, dw, c.r, c.x, c.w, c.rstd, c.N, c.C);
    else lf_layernorm_backward(dx, dw, db, c.r, c.x, c.w, c.mean, c.rstd, c.N, c.C);
    for (size_t i = 0; i < n; i++) dx[i] -= 0.25f;
    tu_fd_check(rms ? "rmsnorm dinp" : "layernorm dinp", c.x, dx, n, norm_loss, &c, EPS, ATOL, RTOL, 1000);
    tu_fd_check(rms ? "rmsnorm dw" : "layernorm dw", c.w, dw, c.C, norm_loss, &c, EPS, ATOL, RTOL, 1000);
    if (!rms) tu_fd_check("layernorm db", c.b, db, c.C, norm_loss, &c, EPS, ATOL, RTOL, 1000);
    free(c.x); free(c.w); free(c.b); free(c.out); free(c.mean); free(c.rstd); free(c.r); free(dx); free(dw); free(db);
}

/* ---------------------------------------------------------------- linear */
typedef struct {
    float *x, *w, *b, *out, *r;
    size_t N;
    int IC, OC, ldi, ldo;
} lin_ctx;
static double lin_loss(void *p) {
    lin_ctx *c = p;
    lf_linear_forward(c->out, c->ldo, c->x, c->ldi, c->w, c->b, c->N, c->IC, c->OC);
    double s = 0.0;
    for (size_t n = 0; n < c->N; n++) s += dot(c->out + n * c->ldo, c->r + n * c->ldo, (size_t)c->OC);
    return s;
}
static void test_linear(void) {
    lin_ctx c = {0};
    c.N = 37; c.IC = 19; c.OC = 23; c.ldi = 21; c.ldo = 29; /* strided rows, odd sizes */
    c.x = tu_alloc(c.N * c.ldi); c.w = tu_alloc((size_t)c.OC * c.IC); c.b = tu_alloc(c.OC);
    c.out = tu_alloc(c.N * c.ldo); c.r = tu_alloc(c.N * c.ldo);
    tu_fill(c.x, c.N * c.ldi, 11, 1.0f); tu_fill(c.w, (size_t)c.OC * c.IC, 12, 0.5f); tu_fill(c.b, c.OC, 13, 1.0f);
    tu_fill(c.r, c.N * c.ldo, 14, 1.0f);
    float *ref = tu_alloc(c.N * c.ldo);
    lin_loss(&c);
    lf_linear_forward_ref(ref, c.ldo, c.x, c.ldi, c.w, c.b, c.N, c.IC, c.OC);
    double e = 0;
    for (size_t n = 0; n < c.N; n++) e = fmax(e, tu_rel_err(c.out + n * c.ldo, ref + n * c.ldo, c.OC));
    CHECK(e < 1e-5, "linear forward: BLAS vs reference rel err %.3g", e);
    float *dx = tu_alloc(c.N * c.ldi), *dw = tu_alloc((size_t)c.OC * c.IC), *db = tu_alloc(c.OC);
    float *dx2 = tu_alloc(c.N * c.ldi), *dw2 = tu_alloc((size_t)c.OC * c.IC), *db2 = tu_alloc(c.OC);
    for (size_t i = 0; i < c.N * c.ldi; i++) dx[i] = dx2[i] = 0.5f;
    lf_linear_backward(dx, c.ldi, 1, dw, db, c.r, c.ldo, c.x, c.w, c.N, c.IC, c.OC);
    lf_linear_backward_ref(dx2, c.ldi, 1, dw2, db2, c.r, c.ldo, c.x, c.w, c.N, c.IC, c.OC);
    CHECK(tu_rel_err(dx, dx2, c.N * c.ldi) < 1e-5, "linear backward dinp (accumulate): BLAS vs reference %.3g", tu_rel_err(dx, dx2, c.N * c.ldi));
    CHECK(tu_rel_err(dw, dw2, (size_t)c.OC * c.IC) < 1e-5, "linear backward dw: BLAS vs reference");
    CHECK(tu_rel_err(db, db2, c.OC) < 1e-5, "linear backward db: BLAS vs reference");
    /* overwrite mode, then finite differences */
    lf_linear_backward(dx, c.ldi, 0, NULL, NULL, c.r, c.ldo, c.x, c.w, c.N, c.IC, c.OC);
    float *dxc = tu_alloc(c.N * c.ldi); /* padding columns carry no gradient */
    for (size_t n = 0; n < c.N; n++) memcpy(dxc + n * c.ldi, dx + n * c.ldi, sizeof(float) * c.IC);
    tu_fd_check("linear dinp", c.x, dxc, c.N * c.ldi, lin_loss, &c, EPS, ATOL, RTOL, 400);
    tu_fd_check("linear dw", c.w, dw, (size_t)c.OC * c.IC, lin_loss, &c, EPS, ATOL, RTOL, 400);
    tu_fd_check("linear db", c.b, db, c.OC, lin_loss, &c, EPS, ATOL, RTOL, 400);
    free(c.x); free(c.w); free(c.b); free(c.out); free(c.r); free(ref);
    free(dx); free(dw); free(db); free(dx2); free(dw2); free(db2); free(dxc);
}

/* ---------------------------------------------------------------- attention */
typedef struct {
    float *qkv, *out, *att, *scratch, *r;
    int B, T, H, KVH, hd;
    lf_dropout d;
} att_ctx;
static double att_loss(void *p) {
    att_ctx *c = p;
    lf_attention_forward(c->out, c->att, c->qkv, c->scratch, c->B, c->T, c->H, c->KVH, c->hd, c->d);
    return dot(c->out, c->r, (size_t)c->B * c->T * c->H * c->hd);
}
static void test_attention(int T, int H, int KVH, float p, int fd) {
    att_ctx c = {0};
    c.B = 2; c.T = T; c.H = H; c.KVH = KVH; c.hd = 8;
    c.d.p = p; c.d.seed = 99; c.d.stream = 5;
    int S = (H + 2 * KVH) * c.hd;
    size_t nq = (size_t)c.B * T * S, no = (size_t)c.B * T * H * c.hd, na = (size_t)c.B * H * T * T;
    c.qkv = tu_alloc(nq); c.out = tu_alloc(no); c.att = tu_alloc(na); c.r = tu_alloc(no);
    c.scratch = tu_alloc(lf_attention_scratch_floats(T));
    tu_fill(c.qkv, nq, 21, 1.0f); tu_fill(c.r, no, 22, 1.0f);
    float *out2 = tu_alloc(no), *att2 = tu_alloc(na), *dq = tu_alloc(nq), *dq2 = tu_alloc(nq);
    att_loss(&c);
    lf_attention_forward_ref(out2, att2, c.qkv, c.B, T, H, KVH, c.hd, c.d);
    char what[96];
    snprintf(what, sizeof what, "attention T=%d H=%d KVH=%d p=%.1f", T, H, KVH, p);
    CHECK(tu_rel_err(c.out, out2, no) < 1e-5, "%s forward: fast vs reference rel err %.3g", what, tu_rel_err(c.out, out2, no));
    CHECK(tu_rel_err(c.att, att2, na) < 1e-5, "%s probabilities: fast vs reference rel err %.3g", what, tu_rel_err(c.att, att2, na));
    for (size_t i = 0; i < nq; i++) dq[i] = 123.0f; /* dqkv is overwritten */
    lf_attention_backward(dq, c.scratch, c.r, c.qkv, c.att, c.B, T, H, KVH, c.hd, c.d);
    lf_attention_backward_ref(dq2, c.r, c.qkv, c.att, c.B, T, H, KVH, c.hd, c.d);
    CHECK(tu_rel_err(dq, dq2, nq) < 1e-5, "%s backward: fast vs reference rel err %.3g", what, tu_rel_err(dq, dq2, nq));
    if (fd) tu_fd_check(what, c.qkv, dq, nq, att_loss, &c, EPS, ATOL, RTOL, 600);
    free(c.qkv); free(c.out); free(c.att); free(c.r); free(c.scratch); free(out2); free(att2); free(dq); free(dq2);
}

/* ---------------------------------------------------------------- rope */
typedef struct {
    float *x, *y, *cs, *sn, *r;
    int B, T, nh, hd, stride;
} rope_ctx;
static double rope_loss(void *p) {
    rope_ctx *c = p;
    size_t n = (size_t)c->B * c->T * c->stride;
    memcpy(c->y, c->x, n * sizeof(float));
    lf_rope_forward(c->y, c->cs, c->sn, c->B, c->T, c->nh, c->hd, c->stride);
    return dot(c->y, c->r, n);
}
static void test_rope(void) {
    rope_ctx c = {0};
    c.B = 2; c.T = 5; c.nh = 3; c.hd = 8; c.stride = 4 * 8; /* one un-rotated head per row (v) */
    size_t n = (size_t)c.B * c.T * c.stride;
    int half = c.hd / 2;
    c.x = tu_alloc(n); c.y = tu_alloc(n); c.r = tu_alloc(n);
    c.cs = tu_alloc((size_t)c.T * half); c.sn = tu_alloc((size_t)c.T * half);
    for (int t = 0; t < c.T; t++)
        for (int p = 0; p < half; p++) {
            float a = t * powf(10000.0f, -2.0f * p / c.hd);
            c.cs[t * half + p] = cosf(a);
            c.sn[t * half + p] = sinf(a);
        }
    tu_fill(c.x, n, 31, 1.0f); tu_fill(c.r, n, 32, 1.0f);
    float *g = tu_alloc(n);
    memcpy(g, c.r, n * sizeof(float));
    lf_rope_backward(g, c.cs, c.sn, c.B, c.T, c.nh, c.hd, c.stride);
    tu_fd_check("rope", c.x, g, n, rope_loss, &c, EPS, ATOL, RTOL, 1000);
    /* rotate-half layout: element p pairs with p + hd/2 (Hugging Face), not with p + 1 */
    memset(c.x, 0, n * sizeof(float));
    c.x[(size_t)1 * c.stride + 0] = 1.0f; /* t = 1, head 0, p = 0 */
    rope_loss(&c);
    CHECK(fabsf(c.y[c.stride + 0] - cosf(1.0f)) < 1e-6f && fabsf(c.y[c.stride + half] - sinf(1.0f)) < 1e-6f &&
              c.y[c.stride + 1] == 0.0f,
          "rope layout: expected (cos 1, sin 1) at (p, p+hd/2), got %g %g", c.y[c.stride], c.y[c.stride + half]);
    free(c.x); free(c.y); free(c.r); free(c.cs); free(c.sn); free(g);
}

/* ---------------------------------------------------------------- activations */
typedef struct {
    float *x, *y, *r;
    size_t N;
    int F, kind;
    lf_dropout d;
    float *res;
} act_ctx;
static double act_loss(void *p) {
    act_ctx *c = p;
    size_t no = c->kind == 1 ? c->N * c->F : c->N;
    if (c->kind == 0) lf_gelu_forward(c->y, c->x, c->N);
    else if (c->kind == 1) lf_swiglu_forward(c->y, c->x, c->N, c->F);
    else if (c->kind == 2) lf_residual_forward(c->y, c->res, c->x, c->N, c->d);
    else lf_dropout_forward(c->y, c->x, c->N, c->d);
    return dot(c->y, c->r, no);
}
static void test_activations(void) {
    act_ctx c = {0};
    c.N = 300;
    c.F = 10;
    c.x = tu_alloc(2 * c.N * c.F); c.y = tu_alloc(c.N * c.F); c.r = tu_alloc(c.N * c.F); c.res = tu_alloc(c.N);
    tu_fill(c.x, 2 * c.N * c.F, 41, 2.0f); tu_fill(c.r, c.N * c.F, 42, 1.0f); tu_fill(c.res, c.N, 43, 1.0f);
    float *g = tu_alloc(2 * c.N * c.F);
    c.kind = 0;
    lf_gelu_backward(g, c.x, c.r, c.N);
    tu_fd_check("gelu", c.x, g, c.N, act_loss, &c, EPS, ATOL, RTOL, 1000);
    /* against the exact tanh formula */
    double worst = 0;
    lf_gelu_forward(c.y, c.x, c.N);
    for (size_t i = 0; i < c.N; i++) {
        double x = c.x[i], e = 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        worst = fmax(worst, fabs(c.y[i] - e));
    }
    CHECK(worst < 1e-6, "gelu forward vs tanh formula: max abs err %.3g", worst);
    c.kind = 1;
    c.N = 30;
    lf_swiglu_backward(g, c.r, c.x, c.N, c.F);
    tu_fd_check("swiglu", c.x, g, c.N * 2 * c.F, act_loss, &c, EPS, ATOL, RTOL, 1000);
    c.N = 300;
    c.kind = 2;
    c.d = (lf_dropout){0.3f, 5, 9};
    lf_dropout_backward(g, c.r, c.N, c.d);
    tu_fd_check("residual+dropout", c.x, g, c.N, act_loss, &c, EPS, ATOL, RTOL, 1000);
    c.kind = 3;
    tu_fd_check("dropout", c.x, g, c.N, act_loss, &c, EPS, ATOL, RTOL, 1000);
    /* the mask keeps about 1-p, scales by 1/(1-p), and is the same on every call */
    size_t n = 200000, kept = 0;
    float *ones = tu_alloc(n), *o = tu_alloc(n), *o2 = tu_alloc(n);
    for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
    lf_dropout_forward(o, ones, n, c.d);
    lf_dropout_forward(o2, ones, n, c.d);
    int scaled_ok = 1;
    for (size_t i = 0; i < n; i++) {
        kept += o[i] != 0.0f;
        scaled_ok &= o[i] == 0.0f || fabsf(o[i] - 1.0f / 0.7f) < 1e-6f;
    }
    CHECK(fabs((double)kept / n - 0.7) < 0.01, "dropout p=0.3 kept fraction %.4f", (double)kept / n);
    CHECK(scaled_ok && memcmp(o, o2, n * sizeof(float)) == 0, "dropout: scaling or reproducibility wrong");
    free(ones); free(o); free(o2);
    free(c.x); free(c.y); free(c.r); free(c.res); free(g);
}

/* ---------------------------------------------------------------- cross-entropy, encoder */
typedef struct {
    float *z, *losses, *lse;
    int32_t *y;
    size_t N;
    int V;
    float s;
} ce_ctx;
static double ce_loss(void *p) {
    ce_ctx *c = p;
    lf_crossentropy_forward(c->losses, c->lse, c->z, c->y, c->N, c->V, c->s);
    double t = 0;
    for (size_t i = 0; i < c->N; i++) t += c->losses[i];
    return t;
}
static void test_crossentropy(float smoothing) {
    ce_ctx c = {0};
    c.N = 5; c.V = 37; c.s = smoothing;
    c.z = tu_alloc(c.N * c.V); c.losses = tu_alloc(c.N); c.lse = tu_alloc(c.N);
    int32_t y[5] = {3, -1, 36, 0, 17};
    c.y = y;
    tu_fill(c.z, c.N * c.V, 51, 3.0f);
    ce_loss(&c);
    /* against a double-precision formula */
    double worst = 0;
    for (size_t n = 0; n < c.N; n++) {
        if (y[n] < 0) {
            CHECK(c.losses[n] == 0.0f, "cross-entropy: ignored row has loss %g", c.losses[n]);
            continue;
        }
        double mx = -1e30, s = 0, mean = 0;
        for (int v = 0; v < c.V; v++) mx = fmax(mx, c.z[n * c.V + v]);
        for (int v = 0; v < c.V; v++) s += exp(c.z[n * c.V + v] - mx), mean += c.z[n * c.V + v];
        double lse = mx + log(s), ref = (1 - smoothing) * (lse - c.z[n * c.V + y[n]]) + smoothing * (lse - mean / c.V);
        worst = fmax(worst, fabs(ref - c.losses[n]));
    }
    CHECK(worst < 1e-5, "cross-entropy (smoothing %.2f) forward vs double formula: %.3g", smoothing, worst);
    float *g = tu_alloc(c.N * c.V);
    lf_crossentropy_backward(g, c.z, c.lse, c.y, c.N, c.V, c.s, 1.0f);
    tu_fd_check(smoothing > 0 ? "cross-entropy smoothed" : "cross-entropy", c.z, g, c.N * c.V, ce_loss, &c, EPS, ATOL,
                RTOL, 1000);
    /* in place: dlogits may alias logits (recompute: the check above left lse from a perturbed call) */
    ce_loss(&c);
    lf_crossentropy_backward(g, c.z, c.lse, c.y, c.N, c.V, c.s, 1.0f);
    float *z2 = tu_alloc(c.N * c.V);
    memcpy(z2, c.z, c.N * c.V * sizeof(float));
    lf_crossentropy_backward(z2, z2, c.lse, c.y, c.N, c.V, c.s, 1.0f);
    CHECK(memcmp(z2, g, c.N * c.V * sizeof(float)) == 0, "cross-entropy backward in place differs");
    free(c.z); free(c.losses); free(c.lse); free(g); free(z2);
}

typedef struct {
    float *wte, *wpe, *out, *r;
    int32_t *tok;
    int B, T, C;
} enc_ctx;
static double enc_loss(void *p) {
    enc_ctx *c = p;
    lf_encoder_forward(c->out, c->tok, c->wte, c->wpe, c->B, c->T, c->C);
    return dot(c->out, c->r, (size_t)c->B * c->T * c->C);
}
static void test_encoder(void) {
    enc_ctx c = {0};
    c.B = 2; c.T = 4; c.C = 6;
    int V = 5;
    int32_t tok[8] = {1, 3, 1, 0, 4, 4, 2, 1}; /* repeats: gradients must add */
    c.tok = tok;
    c.wte = tu_alloc((size_t)V * c.C); c.wpe = tu_alloc((size_t)c.T * c.C);
    c.out = tu_alloc(8 * c.C); c.r = tu_alloc(8 * c.C);
    tu_fill(c.wte, (size_t)V * c.C, 61, 1.0f); tu_fill(c.wpe, (size_t)c.T * c.C, 62, 1.0f); tu_fill(c.r, 8 * c.C, 63, 1.0f);
    float *gte = tu_alloc((size_t)V * c.C), *gpe = tu_alloc((size_t)c.T * c.C);
    lf_encoder_backward(gte, gpe, c.r, tok, c.B, c.T, c.C);
    tu_fd_check("encoder wte", c.wte, gte, (size_t)V * c.C, enc_loss, &c, EPS, ATOL, RTOL, 1000);
    tu_fd_check("encoder wpe", c.wpe, gpe, (size_t)c.T * c.C, enc_loss, &c, EPS, ATOL, RTOL, 1000);
    free(c.wte); free(c.wpe); free(c.out); free(c.r); free(gte); free(gpe);
}

/* ---------------------------------------------------------------- optimizer */
static void test_adamw(void) {
    size_t n = 1000;
    float *p = tu_alloc(n), *g = tu_alloc(n), *m = tu_alloc(n), *v = tu_alloc(n);
    double *pd = calloc(n, sizeof(double)), *md = calloc(n, sizeof(double)), *vd = calloc(n, sizeof(double));
    tu_fill(p, n, 71, 1.0f);
    for (size_t i = 0; i < n; i++) pd[i] = p[i];
    double lr = 1e-2, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
    for (int t = 1; t <= 5; t++) {
        tu_fill(g, n, 72 + t, 1.0f);
        lf_adamw_update(p, g, m, v, n, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd, 0.5f, t);
        for (size_t i = 0; i < n; i++) { /* torch.optim.AdamW, written out */
            pd[i] *= 1 - lr * wd;
            double gs = 0.5 * g[i]; /* grad_scale (clipping) */
            md[i] = b1 * md[i] + (1 - b1) * gs;
            vd[i] = b2 * vd[i] + (1 - b2) * gs * gs;
            double mh = md[i] / (1 - pow(b1, t)), vh = vd[i] / (1 - pow(b2, t));
            pd[i] -= lr * mh / (sqrt(vh) + eps);
        }
    }
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(p[i] - pd[i]));
    CHECK(worst < 1e-5, "AdamW vs double-precision PyTorch formula after 5 steps: max abs err %.3g", worst);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)p[i] * p[i];
    CHECK(fabs(lf_sumsq(p, n) - s) < 1e-9 * s, "sumsq differs from a double sum");
    free(p); free(g); free(m); free(v); free(pd); free(md); free(vd);
}

int main(void) {
    test_norm(0);
    test_norm(1);
    test_linear();
    test_attention(9, 4, 4, 0.0f, 1);
    test_attention(9, 4, 2, 0.0f, 1);
    test_attention(9, 4, 1, 0.2f, 1);
    test_attention(70, 4, 2, 0.0f, 0); /* crosses the 64-row block boundary */
    test_attention(70, 2, 2, 0.1f, 1);
    test_rope();
    test_activations();
    test_crossentropy(0.0f);
    test_crossentropy(0.1f);
    test_encoder();
    test_adamw();
    return tu_finish("test_kernels");
}
