/* Pruning (issue 11): magnitude, Wanda and SparseGPT masks on the linear weights, set through the
 * engine's weight masks, with calibration statistics from the activation tap; and the gradual
 * (Zhu & Gupta) schedule as a training step hook. See include/lmforge/prune.h.
 *
 * Calibration is one forward-only pass over the K calibration sequences as a single batch. The
 * tap runs before each linear's product, so in sequential mode a linear is pruned inside its own
 * tap: its product, and everything downstream, already uses the pruned weight, and each later
 * linear is calibrated on the outputs of the pruned ones before it (SparseGPT's sequential layer
 * order, finer-grained: sublayer by sublayer, like GPTQ's --true-sequential), at the cost of one
 * forward instead of one per block. */
#include "lmforge/prune.h"
#include "lmforge/kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK from OpenBLAS (Fortran symbols; Debian ships no lapacke.h with it). The trailing length
 * is the Fortran hidden string length, ignored by C implementations. */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
extern void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);

static const char *method_names[] = {"magnitude", "wanda", "sparsegpt"};

void lf_prune_opts_default(lf_prune_opts *o, lf_prune_method method) {
    memset(o, 0, sizeof *o);
    o->method = method;
    o->sparsity = 0.5f;
    o->blocksize = 128;
    o->damp = 0.01f;
    o->sequential = 1;
}

lf_status lf_prune_method_parse(const char *s, lf_prune_method *out) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, method_names[i])) {
            *out = (lf_prune_method)i;
            return LF_OK;
        }
    lf_set_error("pruning method '%s' is not known (magnitude, wanda, sparsegpt)", s);
    return LF_ERR_ARG;
}

const char *lf_prune_method_name(lf_prune_method m) {
    return (unsigned)m < 3 ? method_names[m] : "?";
}

int lf_prune_is_target(lf_model *m, const lf_param *p, int include_head) {
    if (p->kind != LF_KIND_WEIGHT || p->ndim != 2 || (p->flags & (LF_PARAM_EXTRA | LF_PARAM_ADAPTER))) return 0;
    (void)m; /* a tied head is the embedding (LF_KIND_EMBED) */
    if (!strcmp(p->name, "lm_head.weight")) return include_head;
    return 1;
}

/* ---------------------------------------------------------------- selection */

/* the k-th smallest (0-based) of a (n), reordering a */
static float kth_smallest(float *a, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        /* median of three as the pivot */
        float x = a[lo], y = a[mid], z = a[hi];
        float piv = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < piv) i++;
            while (a[j] > piv) j--;
            if (i <= j) {
                float t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return a[k];
    }
    return a[k];
}

/* mask (n, stride 1) over scores s (n): the k lowest pruned exactly, ties to the lower index */
static int prune_lowest(const float *s, size_t n, size_t k, uint8_t *mask, float *tmp) {
    for (size_t i = 0; i < n; i++) mask[i] = 1;
    if (k == 0) return 0;
    if (k >= n) {
        memset(mask, 0, n);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        tmp[i] = s[i];
        if (isnan(tmp[i])) return -1;
    }
    float t = kth_smallest(tmp, n, k - 1);
    size_t below = 0;
    for (size_t i = 0; i < n; i++) below += s[i] < t;
    size_t ties = k - below; /* entries equal to t that go, the first ones by index */
    for (size_t i = 0; i < n; i++) {
        if (s[i] < t) mask[i] = 0;
        else if (s[i] == t && ties) {
            mask[i] = 0;
            ties--;
        }
    }
    return 0;
}

/* one N:M group of m scores: the m-n lowest pruned, ties to the lower index */
static void prune_group(const float *s, int m, int n, uint8_t *mask) {
    for (int i = 0; i < m; i++) mask[i] = 1;
    for (int r = 0; r < m - n; r++) {
        int best = -1;
        for (int i = 0; i < m; i++)
            if (mask[i] && (best < 0 || s[i] < s[best])) best = i;
        mask[best] = 0;
    }
}

static lf_status check_pattern(int64_t IC, float sparsity, int keep_n, int group_m) {
    if (group_m) {
        if (group_m < 1 || group_m > 256 || keep_n < 0 || keep_n > group_m || IC % group_m) {
            lf_set_error("N:M pattern %d:%d: needs 0 <= N <= M <= 256 and M dividing the input width %lld", keep_n, group_m,
                         (long long)IC);
            return LF_ERR_ARG;
        }
    } else if (!(sparsity >= 0.0f && sparsity <= 1.0f)) {
        lf_set_error("sparsity %g is outside 0..1", (double)sparsity);
        return LF_ERR_ARG;
    }
    return LF_OK;
}

lf_status lf_prune_select(const float *score, int64_t OC, int64_t IC, float sparsity, int keep_n, int group_m, int per_row,
                          uint8_t *mask) {
    lf_status st = check_pattern(IC, sparsity, keep_n, group_m);
    if (st) return st;
    size_t n = (size_t)OC * (size_t)IC;
    if (group_m) {
        for (size_t g = 0; g < n; g += (size_t)group_m) prune_group(score + g, group_m, keep_n, mask + g);
        return LF_OK;
    }
    size_t len = per_row ? (size_t)IC : n, k = (size_t)floor((double)len * sparsity);
    float *tmp = malloc(sizeof(float) * len);
    if (!tmp) {
        lf_set_error("pruning: out of memory");
        return LF_ERR_NOMEM;
    }
    int bad = 0;
    for (size_t r = 0; r < n; r += len) bad |= prune_lowest(score + r, len, k, mask + r, tmp);
    free(tmp);
    if (bad) {
        lf_set_error("pruning: a score is NaN (non-finite weights or calibration activations)");
        return LF_ERR_ARG;
    }
    return LF_OK;
}

/* ---------------------------------------------------------------- SparseGPT */

static lf_status sgpt_check(int OC, int IC, float sparsity, int keep_n, int group_m, int blocksize, float damp) {
    if (OC < 1 || IC < 1 || blocksize < 1 || !(damp >= 0.0f)) {
        lf_set_error("sparsegpt: a %d x %d weight, block size %d and dampening %g are not valid", OC, IC, blocksize,
                     (double)damp);
        return LF_ERR_ARG;
    }
    if (group_m && blocksize % group_m) {
        lf_set_error("sparsegpt: the block size %d is not a multiple of M=%d (a group must not straddle blocks)",
                     blocksize, group_m);
        return LF_ERR_ARG;
    }
    return check_pattern(IC, sparsity, keep_n, group_m);
}

/* dead inputs (never active: H_jj = 0) get H_jj = 1 and zero weights; then H += damp·mean(diag H)·I */
static void sgpt_prepare(float *W, double *H, int OC, int IC, float damp) {
    double mean = 0;
    for (int j = 0; j < IC; j++) {
        double *h = H + (size_t)j * IC + j;
        if (*h == 0.0) {
            *h = 1.0;
            for (int o = 0; o < OC; o++) W[(size_t)o * IC + j] = 0.0f;
        }
        mean += *h;
    }
    mean = damp * mean / IC;
    for (int j = 0; j < IC; j++) H[(size_t)j * IC + j] += mean;
}

/* U (IC,IC) upper with H⁻¹ = UᵀU, in place of H. Row-major upper is LAPACK's column-major lower. */
static lf_status sgpt_inverse_factor(double *H, int IC) {
    int info = 0;
    dpotrf_("L", &IC, H, &IC, &info, 1);
    if (!info) dpotri_("L", &IC, H, &IC, &info, 1);
    if (!info) dpotrf_("L", &IC, H, &IC, &info, 1);
    if (info) {
        lf_set_error("sparsegpt: the dampened Hessian is not positive definite (LAPACK info %d): raise --damp", info);
        return LF_ERR_ARG;
    }
    for (int i = 0; i < IC; i++) memset(H + (size_t)i * IC, 0, sizeof(double) * (size_t)i);
    return LF_OK;
}

/* scores w²/d² over the block's columns (OC,cnt) then the block's mask (OC,cnt): floor(OC·cnt·s) */
static lf_status sgpt_block_mask(const double *W, int OC, int IC, int i1, int cnt, const double *d, float sparsity,
                                 uint8_t *mask1, float *score1) {
    for (int o = 0; o < OC; o++)
        for (int j = 0; j < cnt; j++) {
            double w = W[(size_t)o * IC + i1 + j];
            score1[(size_t)o * cnt + j] = (float)(w * w / (d[j] * d[j]));
        }
    return lf_prune_select(score1, OC, cnt, sparsity, 0, 0, 0, mask1);
}

lf_status lf_sparsegpt_prune(float *W, double *H, int OC, int IC, float sparsity, int keep_n, int group_m, int blocksize,
                             float damp, uint8_t *mask) {
    lf_status st = sgpt_check(OC, IC, sparsity, keep_n, group_m, blocksize, damp);
    if (st) return st;
    sgpt_prepare(W, H, OC, IC, damp);
    if ((st = sgpt_inverse_factor(H, IC))) return st;
    const double *U = H;
    int bs = blocksize < IC ? blocksize : IC;
    size_t n = (size_t)OC * IC;
    double *Wd = malloc(sizeof(double) * n), *err = malloc(sizeof(double) * (size_t)OC * bs); // (OC,IC) (OC,bs)
    double *d = malloc(sizeof(double) * (size_t)bs);
    uint8_t *mask1 = malloc((size_t)OC * bs);
    float *score1 = malloc(sizeof(float) * (size_t)OC * bs);
    if (!Wd || !err || !d || !mask1 || !score1) {
        lf_set_error("sparsegpt: out of memory for a %d x %d weight", OC, IC);
        st = LF_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) Wd[i] = W[i];
    for (int i1 = 0; i1 < IC && !st; i1 += bs) {
        int i2 = i1 + bs < IC ? i1 + bs : IC, cnt = i2 - i1;
        for (int j = 0; j < cnt; j++) d[j] = U[(size_t)(i1 + j) * IC + i1 + j];
        if (!group_m) st = sgpt_block_mask(Wd, OC, IC, i1, cnt, d, sparsity, mask1, score1);
        if (st) break;
        /* rows are independent within a block: each walks its columns, pushing each column's
         * error onto the rest of the block; the columns after the block get it in one product */
#pragma omp parallel for schedule(static)
        for (int o = 0; o < OC; o++) {
            double *w = Wd + (size_t)o * IC, *e = err + (size_t)o * cnt;
            uint8_t *mk = mask1 + (size_t)o * cnt;
            for (int i = 0; i < cnt; i++) {
                int c = i1 + i;
                if (group_m && c % group_m == 0) {
                    float s[256];
                    int gm = group_m < 256 ? group_m : 256;
                    for (int k = 0; k < gm; k++) s[k] = (float)(w[c + k] * w[c + k] / (d[i + k] * d[i + k]));
                    prune_group(s, gm, keep_n, mk + i);
                }
                double q = mk[i] ? w[c] : 0.0, ei = (w[c] - q) / d[i];
                const double *u = U + (size_t)c * IC;
                for (int j = c + 1; j < i2; j++) w[j] -= ei * u[j];
                w[c] = q;
                e[i] = ei;
            }
        }
        if (i2 < IC)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, IC - i2, cnt, -1.0, err, cnt, U + (size_t)i1 * IC + i2,
                        IC, 1.0, Wd + i2, IC);
        for (int o = 0; o < OC; o++) memcpy(mask + (size_t)o * IC + i1, mask1 + (size_t)o * cnt, (size_t)cnt);
    }
    if (!st)
        for (size_t i = 0; i < n; i++) W[i] = mask[i] ? (float)Wd[i] : 0.0f;
done:
    free(Wd);
    free(err);
    free(d);
    free(mask1);
    free(score1);
    return st;
}

/* Gauss-Jordan inverse with partial pivoting of A (n,n) into Ai; A is destroyed */
static lf_status gj_inverse(double *A, double *Ai, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) Ai[(size_t)i * n + j] = i == j;
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(A[(size_t)r * n + c]) > fabs(A[(size_t)p * n + c])) p = r;
        if (A[(size_t)p * n + c] == 0.0) {
            lf_set_error("sparsegpt reference: singular Hessian");
            return LF_ERR_ARG;
        }
        for (int j = 0; j < n && p != c; j++) {
            double t = A[(size_t)p * n + j];
            A[(size_t)p * n + j] = A[(size_t)c * n + j];
            A[(size_t)c * n + j] = t;
            t = Ai[(size_t)p * n + j];
            Ai[(size_t)p * n + j] = Ai[(size_t)c * n + j];
            Ai[(size_t)c * n + j] = t;
        }
        double piv = A[(size_t)c * n + c];
        for (int j = 0; j < n; j++) {
            A[(size_t)c * n + j] /= piv;
            Ai[(size_t)c * n + j] /= piv;
        }
        for (int r = 0; r < n; r++) {
            double f = A[(size_t)r * n + c];
            if (r == c || f == 0.0) continue;
            for (int j = 0; j < n; j++) {
                A[(size_t)r * n + j] -= f * A[(size_t)c * n + j];
                Ai[(size_t)r * n + j] -= f * Ai[(size_t)c * n + j];
            }
        }
    }
    return LF_OK;
}

/* sqrt of the diagonal the next cnt eliminations of G (n,n) from column c will meet: Schur
 * complements of a copy of the (cnt,cnt) block */
static void ref_next_diag(const double *G, int n, int c, int cnt, double *d, double *tmp) {
    for (int a = 0; a < cnt; a++)
        for (int b = 0; b < cnt; b++) tmp[(size_t)a * cnt + b] = G[(size_t)(c + a) * n + c + b];
    for (int j = 0; j < cnt; j++) {
        double h = tmp[(size_t)j * cnt + j];
        d[j] = sqrt(h);
        for (int a = j + 1; a < cnt; a++)
            for (int b = j + 1; b < cnt; b++) tmp[(size_t)a * cnt + b] -= tmp[(size_t)a * cnt + j] * tmp[(size_t)j * cnt + b] / h;
    }
}

lf_status lf_sparsegpt_prune_ref(float *W, double *H, int OC, int IC, float sparsity, int keep_n, int group_m,
                                 int blocksize, float damp, uint8_t *mask) {
    lf_status st = sgpt_check(OC, IC, sparsity, keep_n, group_m, blocksize, damp);
    if (st) return st;
    sgpt_prepare(W, H, OC, IC, damp);
    int bs = blocksize < IC ? blocksize : IC;
    size_t n = (size_t)OC * IC;
    double *G = malloc(sizeof(double) * (size_t)IC * IC), *Wd = malloc(sizeof(double) * n); // (IC,IC) (OC,IC)
    double *d = malloc(sizeof(double) * (size_t)bs), *tmp = malloc(sizeof(double) * (size_t)bs * bs);
    float *score = malloc(sizeof(float) * (size_t)OC * bs);
    uint8_t *mask1 = malloc((size_t)OC * bs);
    if (!G || !Wd || !d || !tmp || !score || !mask1) {
        st = LF_ERR_NOMEM;
        lf_set_error("sparsegpt reference: out of memory");
        goto done;
    }
    if ((st = gj_inverse(H, G, IC))) goto done;
    for (size_t i = 0; i < n; i++) Wd[i] = W[i];
    for (int i1 = 0; i1 < IC && !st; i1 += bs) {
        int i2 = i1 + bs < IC ? i1 + bs : IC, cnt = i2 - i1;
        if (!group_m) {
            ref_next_diag(G, IC, i1, cnt, d, tmp);
            if ((st = sgpt_block_mask(Wd, OC, IC, i1, cnt, d, sparsity, mask1, score))) break;
            for (int o = 0; o < OC; o++) memcpy(mask + (size_t)o * IC + i1, mask1 + (size_t)o * cnt, (size_t)cnt);
        }
        for (int c = i1; c < i2; c++) {
            if (group_m && c % group_m == 0) {
                ref_next_diag(G, IC, c, group_m, d, tmp);
                for (int o = 0; o < OC; o++) {
                    float s[256];
                    for (int k = 0; k < group_m && k < 256; k++) {
                        double w = Wd[(size_t)o * IC + c + k];
                        s[k] = (float)(w * w / (d[k] * d[k]));
                    }
                    prune_group(s, group_m, keep_n, mask + (size_t)o * IC + c);
                }
            }
            /* OBS: fixing w_c at q moves the remaining weights by -(w_c - q)/[G]_cc · G[c, c:] */
            double h = G[(size_t)c * IC + c];
            for (int o = 0; o < OC; o++) {
                double *w = Wd + (size_t)o * IC, q = mask[(size_t)o * IC + c] ? w[c] : 0.0, e = (w[c] - q) / h;
                for (int j = c + 1; j < IC; j++) w[j] -= e * G[(size_t)c * IC + j];
                w[c] = q;
            }
            /* the inverse Hessian of the weights still free: eliminate c */
            for (int a = c + 1; a < IC; a++) {
                double f = G[(size_t)a * IC + c] / h;
                for (int b = c + 1; b < IC; b++) G[(size_t)a * IC + b] -= f * G[(size_t)c * IC + b];
            }
        }
    }
    if (!st)
        for (size_t i = 0; i < n; i++) W[i] = mask[i] ? (float)Wd[i] : 0.0f;
done:
    free(G);
    free(Wd);
    free(d);
    free(tmp);
    free(score);
    free(mask1);
    return st;
}

/* ---------------------------------------------------------------- the model */

void lf_prune_count(lf_model *m, int include_head, size_t *zeros, size_t *total) {
    size_t z = 0, t = 0;
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        if (!lf_prune_is_target(m, p, include_head) || !p->data) continue;
        for (size_t j = 0; j < p->numel; j++) z += p->data[j] == 0.0f;
        t += p->numel;
    }
    *zeros = z;
    *total = t;
}

typedef struct prune_run prune_run;
typedef struct {
    prune_run *run;
    lf_param *p;
    double *sq; /* (IC) Σ x_j² (Wanda) */
    float *H;   /* (IC,IC) upper triangle of XᵀX (SparseGPT) */
    size_t rows;
    int done;
} tap_slot;

struct prune_run {
    lf_model *m;
    const lf_prune_opts *o;
    tap_slot *slots;
    int n, done;
    lf_status st;
};

/* W (OC,IC) pruned from the statistics of slot s; the mask set on the model */
static lf_status prune_slot(prune_run *r, tap_slot *s) {
    lf_param *p = s->p;
    const lf_prune_opts *o = r->o;
    int OC = (int)p->shape[0], IC = (int)p->shape[1];
    size_t n = p->numel;
    uint8_t *mask = malloc(n);
    lf_status st = LF_OK;
    if (!mask) {
        lf_set_error("pruning %s: out of memory", p->name);
        return LF_ERR_NOMEM;
    }
    if (o->method == LF_PRUNE_WANDA) {
        float *score = malloc(sizeof(float) * n);
        if (!score) st = LF_ERR_NOMEM;
        for (int o2 = 0; o2 < OC && score; o2++)
            for (int j = 0; j < IC; j++)
                score[(size_t)o2 * IC + j] = fabsf(p->data[(size_t)o2 * IC + j]) * (float)sqrt(s->sq[j] / (s->rows ? s->rows : 1));
        if (score) st = lf_prune_select(score, OC, IC, o->sparsity, o->keep_n, o->group_m, 1, mask);
        free(score);
    } else {
        double *H = malloc(sizeof(double) * (size_t)IC * IC);
        if (!H) st = LF_ERR_NOMEM;
        for (int a = 0; H && a < IC; a++)
            for (int b = a; b < IC; b++) H[(size_t)a * IC + b] = H[(size_t)b * IC + a] = s->H[(size_t)a * IC + b];
        if (H) st = lf_sparsegpt_prune(p->data, H, OC, IC, o->sparsity, o->keep_n, o->group_m, o->blocksize, o->damp, mask);
        free(H);
    }
    if (st == LF_ERR_NOMEM) lf_set_error("pruning %s: out of memory", p->name);
    if (!st) st = lf_model_set_mask(r->m, p, mask);
    free(mask);
    free(s->sq);
    free(s->H);
    s->sq = NULL;
    s->H = NULL;
    s->done = 1;
    r->done++;
    if (o->rep) lf_report_progress(o->rep, "%s: %d/%d tensors pruned", lf_prune_method_name(o->method), r->done, r->n);
    return st;
}

static void calib_tap(void *ctx, const lf_param *w, const float *inp, int ldi, size_t N, int IC) {
    tap_slot *s = ctx;
    prune_run *r = s->run;
    (void)w;
    if (r->st || s->done) return;
    if (r->o->method == LF_PRUNE_WANDA) {
        for (size_t i = 0; i < N; i++) {
            const float *x = inp + i * (size_t)ldi;
            for (int j = 0; j < IC; j++) s->sq[j] += (double)x[j] * x[j];
        }
    } else {
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, IC, (int)N, 1.0f, inp, ldi, 1.0f, s->H, IC);
    }
    s->rows += N;
    if (r->o->sequential) r->st = prune_slot(r, s);
}

static lf_status prune_magnitude(lf_model *m, const lf_prune_opts *o, lf_prune_report *rep) {
    int np = lf_model_num_params(m);
    lf_status st = LF_OK;
    float thr = 0.0f;
    if (o->global && !o->group_m) { /* one threshold: the k-th smallest |w| over every target */
        size_t total = 0, k = 0;
        for (int i = 0; i < np; i++)
            if (lf_prune_is_target(m, lf_model_param(m, i), o->include_head)) total += lf_model_param(m, i)->numel;
        float *all = malloc(sizeof(float) * (total ? total : 1));
        if (!all) {
            lf_set_error("pruning: out of memory for the global threshold (%zu weights)", total);
            return LF_ERR_NOMEM;
        }
        for (int i = 0; i < np; i++) {
            lf_param *p = lf_model_param(m, i);
            if (!lf_prune_is_target(m, p, o->include_head)) continue;
            for (size_t j = 0; j < p->numel; j++) all[k++] = fabsf(p->data[j]);
        }
        size_t kk = (size_t)floor((double)total * o->sparsity);
        thr = kk ? kth_smallest(all, total, kk - 1) : -1.0f;
        free(all);
    }
    for (int i = 0; i < np && !st; i++) {
        lf_param *p = lf_model_param(m, i);
        if (!lf_prune_is_target(m, p, o->include_head)) continue;
        uint8_t *mask = malloc(p->numel);
        float *score = malloc(sizeof(float) * p->numel);
        if (!mask || !score) {
            lf_set_error("pruning %s: out of memory", p->name);
            st = LF_ERR_NOMEM;
        } else {
            for (size_t j = 0; j < p->numel; j++) score[j] = fabsf(p->data[j]);
            if (o->global && !o->group_m) /* ties at the threshold all go: the total can exceed k by them */
                for (size_t j = 0; j < p->numel; j++) mask[j] = score[j] > thr;
            else st = lf_prune_select(score, p->shape[0], p->shape[1], o->sparsity, o->keep_n, o->group_m, 0, mask);
            if (!st) st = lf_model_set_mask(m, p, mask);
            rep->tensors++;
        }
        free(mask);
        free(score);
    }
    return st;
}

lf_status lf_prune_model(lf_model *m, const lf_prune_opts *o, const int32_t *calib, int K, int T, lf_prune_report *rep) {
    lf_prune_report r0;
    if (!rep) rep = &r0;
    memset(rep, 0, sizeof *rep);
    double t0 = lf_now();
    if ((unsigned)o->method > LF_PRUNE_SPARSEGPT) {
        lf_set_error("pruning: unknown method %d", (int)o->method);
        return LF_ERR_ARG;
    }
    int np = lf_model_num_params(m), ntarget = 0;
    for (int i = 0; i < np; i++) {
        lf_param *p = lf_model_param(m, i);
        if (!lf_prune_is_target(m, p, o->include_head)) continue;
        if (!p->data || p->qops) {
            lf_set_error("pruning %s: the weight is stored as %s, not float32 (load the model dequantized)", p->name,
                         p->qops ? p->qops->name : "nothing");
            return LF_ERR_ARG;
        }
        lf_status st = check_pattern(p->shape[1], o->sparsity, o->keep_n, o->group_m);
        if (st) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", lf_last_error());
            lf_set_error("pruning %s: %s", p->name, msg);
            return st;
        }
        if (p->tap) {
            lf_set_error("pruning %s: the weight already has an activation tap", p->name);
            return LF_ERR_ARG;
        }
        ntarget++;
    }
    lf_status st = LF_OK;
    if (o->method == LF_PRUNE_MAGNITUDE) {
        st = prune_magnitude(m, o, rep);
    } else {
        if (!calib || K < 1 || T < 2) {
            lf_set_error("pruning with %s needs calibration sequences (got %d of %d tokens)", lf_prune_method_name(o->method),
                         K, T);
            return LF_ERR_ARG;
        }
        prune_run r = {m, o, calloc((size_t)(ntarget ? ntarget : 1), sizeof(tap_slot)), ntarget, 0, LF_OK};
        if (!r.slots) {
            lf_set_error("pruning: out of memory");
            return LF_ERR_NOMEM;
        }
        int k = 0;
        for (int i = 0; i < np && !st; i++) {
            lf_param *p = lf_model_param(m, i);
            if (!lf_prune_is_target(m, p, o->include_head)) continue;
            tap_slot *s = &r.slots[k++];
            size_t IC = (size_t)p->shape[1];
            s->run = &r;
            s->p = p;
            if (o->method == LF_PRUNE_WANDA) s->sq = calloc(IC, sizeof(double));
            else s->H = calloc(IC * IC, sizeof(float));
            if (!s->sq && !s->H) {
                lf_set_error("pruning %s: out of memory for its calibration statistics", p->name);
                st = LF_ERR_NOMEM;
            }
            p->tap = calib_tap;
            p->tap_ctx = s;
        }
        double tc = lf_now();
        if (!st) {
            lf_model_set_forward_only(m, 1);
            st = lf_model_forward(m, calib, K, T, LF_LOGITS_NONE);
            lf_model_set_forward_only(m, 0);
            if (!st) st = r.st;
        }
        rep->seconds_calib = lf_now() - tc;
        for (int i = 0; i < k && !st; i++)
            if (!r.slots[i].done) {
                if (!r.slots[i].rows) {
                    lf_set_error("pruning %s: the calibration forward never reached it", r.slots[i].p->name);
                    st = LF_ERR_ARG;
                } else {
                    st = prune_slot(&r, &r.slots[i]);
                }
            }
        for (int i = 0; i < k; i++) {
            r.slots[i].p->tap = NULL;
            r.slots[i].p->tap_ctx = NULL;
            free(r.slots[i].sq);
            free(r.slots[i].H);
        }
        free(r.slots);
        rep->tensors = st ? 0 : k;
        if (o->rep) lf_report_progress_end(o->rep);
    }
    if (!st)
        for (int i = 0; i < np; i++) {
            lf_param *p = lf_model_param(m, i);
            if (!lf_prune_is_target(m, p, o->include_head)) continue;
            rep->total += p->numel;
            for (size_t j = 0; j < p->numel; j++) rep->pruned += p->mask && !p->mask[j];
        }
    rep->seconds = lf_now() - t0;
    return st;
}

lf_status lf_prune_mask_zeros(lf_model *m, int *count) {
    int k = 0;
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        if (!lf_prune_is_target(m, p, 1) || !p->data) continue;
        size_t z = 0;
        for (size_t j = 0; j < p->numel; j++) z += p->data[j] == 0.0f;
        if (!z) continue;
        uint8_t *mask = malloc(p->numel);
        if (!mask) {
            lf_set_error("masking %s: out of memory", p->name);
            return LF_ERR_NOMEM;
        }
        for (size_t j = 0; j < p->numel; j++) mask[j] = p->data[j] != 0.0f;
        lf_status st = lf_model_set_mask(m, p, mask);
        free(mask);
        if (st) return st;
        k++;
    }
    if (count) *count = k;
    return LF_OK;
}

/* ---------------------------------------------------------------- gradual pruning */

float lf_prune_schedule_sparsity(const lf_prune_schedule *s, int64_t step) {
    if (step <= s->t0) return s->s_initial;
    if (step >= s->t1) return s->s_final;
    double f = 1.0 - (double)(step - s->t0) / (double)(s->t1 - s->t0);
    return (float)(s->s_final + (s->s_initial - s->s_final) * f * f * f);
}

typedef struct {
    lf_model *m;
    lf_prune_schedule s;
    int n;
    tap_slot *slots;
    prune_run run;
    lf_prune_opts o;
} sched_ctx;

static void sched_tap(void *ctx, const lf_param *w, const float *inp, int ldi, size_t N, int IC) {
    tap_slot *s = ctx;
    (void)w;
    for (size_t i = 0; i < N; i++) {
        const float *x = inp + i * (size_t)ldi;
        for (int j = 0; j < IC; j++) s->sq[j] += (double)x[j] * x[j];
    }
    s->rows += N;
}

static lf_hook_action sched_after_step(lf_hook *h, lf_trainer *t, const lf_step_info *si) {
    sched_ctx *c = h->ctx;
    (void)t;
    int64_t step = si->step;
    if (step < c->s.t0 || step > c->s.t1 || (step - c->s.t0) % c->s.dt) return LF_HOOK_CONTINUE;
    c->o.sparsity = lf_prune_schedule_sparsity(&c->s, step);
    for (int i = 0; i < c->n; i++) {
        tap_slot *s = &c->slots[i];
        lf_param *p = s->p;
        size_t n = p->numel;
        int IC = (int)p->shape[1];
        uint8_t *mask = malloc(n);
        float *score = malloc(sizeof(float) * n);
        if (mask && score) {
            for (size_t j = 0; j < n; j++) {
                double a = s->sq && s->rows ? sqrt(s->sq[j % (size_t)IC] / s->rows) : 1.0;
                score[j] = fabsf(p->data[j]) * (float)a;
            }
            /* Wanda compares within an output row; magnitude over the whole tensor (Zhu & Gupta) */
            if (!lf_prune_select(score, p->shape[0], IC, c->o.sparsity, 0, 0, c->s.method == LF_PRUNE_WANDA, mask))
                lf_model_set_mask(c->m, p, mask);
        }
        free(mask);
        free(score);
        if (s->sq) memset(s->sq, 0, sizeof(double) * (size_t)IC);
        s->rows = 0;
    }
    return LF_HOOK_CONTINUE;
}

static void sched_free(lf_hook *h) {
    sched_ctx *c = h->ctx;
    for (int i = 0; i < c->n; i++) {
        if (c->slots[i].p->tap == sched_tap) {
            c->slots[i].p->tap = NULL;
            c->slots[i].p->tap_ctx = NULL;
        }
        free(c->slots[i].sq);
    }
    free(c->slots);
    free(c);
    free(h);
}

lf_status lf_hook_prune_schedule(lf_hook **out, lf_model *m, const lf_prune_schedule *s) {
    *out = NULL;
    if (!(s->s_initial >= 0 && s->s_initial <= s->s_final && s->s_final < 1) || s->t0 < 0 || s->t1 <= s->t0 || s->dt < 1 ||
        (s->method != LF_PRUNE_MAGNITUDE && s->method != LF_PRUNE_WANDA)) {
        lf_set_error("prune_schedule: needs 0 <= s_initial <= s_final < 1, 0 <= start < end, every >= 1 and magnitude or "
                     "wanda (got %g -> %g, steps %lld..%lld every %lld)",
                     (double)s->s_initial, (double)s->s_final, (long long)s->t0, (long long)s->t1, (long long)s->dt);
        return LF_ERR_ARG;
    }
    sched_ctx *c = calloc(1, sizeof *c);
    lf_hook *h = calloc(1, sizeof *h);
    int np = lf_model_num_params(m);
    if (c) c->slots = calloc((size_t)np, sizeof(tap_slot));
    if (!c || !h || !c->slots) goto oom;
    c->m = m;
    c->s = *s;
    lf_prune_opts_default(&c->o, s->method);
    for (int i = 0; i < np; i++) {
        lf_param *p = lf_model_param(m, i);
        if (!lf_prune_is_target(m, p, 0) || !p->data || p->qops) continue;
        tap_slot *sl = &c->slots[c->n++];
        sl->p = p;
        if (s->method == LF_PRUNE_WANDA) {
            if (p->tap) {
                lf_set_error("prune_schedule: %s already has an activation tap", p->name);
                *h = (lf_hook){"prune_schedule", c, NULL, NULL, sched_free};
                sched_free(h);
                return LF_ERR_ARG;
            }
            if (!(sl->sq = calloc((size_t)p->shape[1], sizeof(double)))) goto oom;
            p->tap = sched_tap;
            p->tap_ctx = sl;
        }
    }
    *h = (lf_hook){"prune_schedule", c, sched_after_step, NULL, sched_free};
    *out = h;
    return LF_OK;
oom:
    if (c && h) {
        *h = (lf_hook){"prune_schedule", c, NULL, NULL, sched_free};
        sched_free(h);
    } else {
        if (c) free(c->slots);
        free(c);
        free(h);
    }
    lf_set_error("prune_schedule: out of memory");
    return LF_ERR_NOMEM;
}
