/* KL divergence of a model against its base model (a quantized copy against the float32 one):
 * both run forward over the same windows, and each scored target compares the two next-token
 * distributions; the statistics are those llama-perplexity --kl-divergence reports, computed in
 * double from the full logits (llama.cpp stores the base's log-probabilities as 16-bit steps and
 * drops base probabilities under e^-16; lmforge does neither). */
#include "lmforge/eval.h"
#include "eval_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* KL(P_b || P_q), both NLLs and both argmaxes for one position. KL = Σ p_i (b_i - q_i) - lse_b +
 * lse_q since Σ p_i = 1: one pass of exps per model, and exactly 0 when q equals b. */
static void compare_row(const float *b, const float *q, int V, int32_t target, lf_kld_token *t) {
    int ib = 0, iq = 0;
    for (int v = 1; v < V; v++) {
        if (b[v] > b[ib]) ib = v;
        if (q[v] > q[iq]) iq = v;
    }
    double mb = b[ib], mq = q[iq], sb = 0.0, sq = 0.0, acc = 0.0;
    for (int v = 0; v < V; v++) {
        double eb = exp((double)b[v] - mb);
        sb += eb;
        sq += exp((double)q[v] - mq);
        acc += eb * ((double)b[v] - (double)q[v]);
    }
    double lse_b = mb + log(sb), lse_q = mq + log(sq);
    t->target = target;
    t->top_base = ib;
    t->top = iq;
    t->kld = acc / sb - lse_b + lse_q;
    t->nll_base = lse_b - (double)b[target];
    t->nll = lse_q - (double)q[target];
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* sorted (n >= 1), fraction in [0, 1]: linear between the order statistics around fraction·(n-1) */
static double percentile(const double *sorted, size_t n, double fraction) {
    double p = fraction * (double)(n - 1);
    size_t i = (size_t)p;
    if (i >= n - 1) return sorted[n - 1];
    p -= (double)i;
    return (1.0 - p) * sorted[i] + p * sorted[i + 1];
}

/* mean and standard error of the mean (two passes: var/n would cancel badly for small spreads) */
static void mean_se(const double *x, size_t n, double *mean, double *se) {
    double s = 0.0, ss = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i];
    *mean = s / (double)n;
    for (size_t i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
    *se = n > 1 ? sqrt(ss / (double)n / (double)(n - 1)) : 0.0;
}

void lf_kld_stats(lf_kld_result *r) {
    size_t n = r->count;
    if (!n) return;
    double *a = malloc(sizeof *a * n), *b = malloc(sizeof *b * n);
    if (!a || !b) { /* statistics of a result already computed: leave them NAN rather than fail */
        free(a);
        free(b);
        r->kld_mean = r->ppl = r->ppl_base = NAN;
        return;
    }
    const lf_kld_token *t = r->tokens;
    double ma, mb, sa, sb, cov = 0.0;
    /* perplexities: the mean NLLs and their covariance */
    for (size_t i = 0; i < n; i++) {
        a[i] = t[i].nll;
        b[i] = t[i].nll_base;
    }
    mean_se(a, n, &ma, &sa);
    mean_se(b, n, &mb, &sb);
    if (n > 1) {
        for (size_t i = 0; i < n; i++) cov += (a[i] - ma) * (b[i] - mb);
        cov /= (double)n * (double)(n - 1); /* of the two means */
    }
    r->ppl = exp(ma);
    r->ppl_se = r->ppl * sa;
    r->ppl_base = exp(mb);
    r->ppl_base_se = r->ppl_base * sb;
    r->nll_cor = sa > 0 && sb > 0 ? cov / (sa * sb) : NAN;
    r->ln_ratio = ma - mb;
    double v = sa * sa + sb * sb - 2.0 * cov;
    r->ln_ratio_se = v > 0 ? sqrt(v) : 0.0;
    r->ppl_ratio = exp(r->ln_ratio);
    r->ppl_ratio_se = r->ppl_ratio * r->ln_ratio_se;
    r->ppl_diff = r->ppl - r->ppl_base;
    v = r->ppl_se * r->ppl_se + r->ppl_base_se * r->ppl_base_se - 2.0 * r->ppl * r->ppl_base * cov;
    r->ppl_diff_se = v > 0 ? sqrt(v) : 0.0;
    /* same top token */
    r->same_top = 0;
    for (size_t i = 0; i < n; i++) r->same_top += t[i].top == t[i].top_base;
    r->same_top_frac = (double)r->same_top / (double)n;
    r->same_top_se = n > 1 ? sqrt(r->same_top_frac * (1.0 - r->same_top_frac) / (double)(n - 1)) : 0.0;
    /* KL divergence */
    for (size_t i = 0; i < n; i++) a[i] = t[i].kld;
    mean_se(a, n, &r->kld_mean, &r->kld_se);
    qsort(a, n, sizeof *a, cmp_double);
    r->kld_min = a[0];
    r->kld_max = a[n - 1];
    r->kld_median = percentile(a, n, 0.5);
    r->kld_p999 = percentile(a, n, 0.999);
    r->kld_p99 = percentile(a, n, 0.99);
    r->kld_p95 = percentile(a, n, 0.95);
    r->kld_p90 = percentile(a, n, 0.90);
    r->kld_p10 = percentile(a, n, 0.10);
    r->kld_p5 = percentile(a, n, 0.05);
    r->kld_p1 = percentile(a, n, 0.01);
    r->kld_p01 = percentile(a, n, 0.001);
    /* Δp of the target token, and its root mean square */
    for (size_t i = 0; i < n; i++) {
        a[i] = exp(-t[i].nll) - exp(-t[i].nll_base);
        b[i] = a[i] * a[i];
    }
    mean_se(a, n, &r->dp_mean, &r->dp_se);
    double mse, mse_se;
    mean_se(b, n, &mse, &mse_se);
    r->dp_rms = sqrt(mse);
    r->dp_rms_se = r->dp_rms > 0 ? 0.5 / r->dp_rms * mse_se : 0.0;
    qsort(a, n, sizeof *a, cmp_double);
    r->dp_min = a[0];
    r->dp_max = a[n - 1];
    r->dp_median = percentile(a, n, 0.5);
    r->dp_p99 = percentile(a, n, 0.99);
    r->dp_p95 = percentile(a, n, 0.95);
    r->dp_p90 = percentile(a, n, 0.90);
    r->dp_p10 = percentile(a, n, 0.10);
    r->dp_p5 = percentile(a, n, 0.05);
    r->dp_p1 = percentile(a, n, 0.01);
    free(a);
    free(b);
}

lf_status lf_kld_sequence(lf_model *m, lf_model *base, const int32_t *ids, size_t n, const uint8_t *is_target,
                          const lf_kld_opts *o, lf_kld_result *r) {
    memset(r, 0, sizeof *r);
    double t0 = lf_now();
    const lf_config *cm = lf_model_config(m), *cb = lf_model_config(base);
    int T = o->context, V = cm->vocab_size;
    if (cm->vocab_size != cb->vocab_size) {
        lf_set_error("kld: the model has a vocabulary of %d tokens and the base model %d: the KL divergence needs "
                     "both to predict the same tokens (the same tokenizer)",
                     cm->vocab_size, cb->vocab_size);
        return LF_ERR_ARG;
    }
    int max_seq = cm->max_seq < cb->max_seq ? cm->max_seq : cb->max_seq;
    if (T < 2 || T > max_seq || (!o->chunks && (o->stride < 1 || o->stride > T))) {
        lf_set_error("kld: need 2 <= context <= %d (both models' context) and 1 <= stride <= context (got %d, %d)",
                     max_seq, T, o->stride);
        return LF_ERR_ARG;
    }
    if (n < 2 || (o->chunks && n < (size_t)T)) {
        lf_set_error("kld: %zu tokens are too few for %s", n,
                     o->chunks ? "one window (chunks need at least --context tokens)" : "a target (2 at least)");
        return LF_ERR_ARG;
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V) {
            lf_set_error("kld: token %zu has id %d, outside the models' vocabulary of %d", i, ids[i], V);
            return LF_ERR_ARG;
        }
    int32_t *x = malloc(sizeof *x * (size_t)T);
    size_t *rows = malloc(sizeof *rows * (size_t)T);
    if (!x || !rows) {
        free(x);
        free(rows);
        return LF_ERR_NOMEM;
    }
    lf_model *both[2] = {base, m};
    for (int k = 0; k < 2; k++) {
        lf_model_set_training(both[k], 0, 0);
        lf_model_set_forward_only(both[k], 1);
    }
    size_t cap = 0;
    lf_eval_windows w;
    lf_eval_windows_init(&w, n, T, o->stride, o->chunks);
    size_t begin, end, first;
    lf_status st = LF_OK;
    while (!st && lf_eval_windows_next(&w, &begin, &end, &first)) {
        r->windows++;
        int nrows = 0;
        for (size_t i = first; i < end; i++)
            if (!is_target || is_target[i + 1]) rows[nrows++] = i - begin;
        if (!nrows) continue;
        for (int t = 0; t < T; t++) x[t] = begin + (size_t)t < end ? ids[begin + (size_t)t] : 0; /* padding: causal-masked away */
        /* each model keeps its own window of logits until its next forward */
        for (int k = 0; k < 2 && !st; k++) st = lf_model_forward(both[k], x, 1, T, LF_LOGITS_ALL);
        if (st) break;
        if (r->count + (size_t)nrows > cap) {
            size_t nc = cap ? cap * 2 : 4096;
            while (nc < r->count + (size_t)nrows) nc *= 2;
            lf_kld_token *nt = realloc(r->tokens, sizeof *nt * nc);
            if (!nt) {
                lf_set_error("kld: out of memory for %zu scored tokens", nc);
                st = LF_ERR_NOMEM;
                break;
            }
            r->tokens = nt;
            cap = nc;
        }
        size_t nl;
        const float *lb = lf_model_logits(base, &nl), *lq = lf_model_logits(m, &nl); // (T,V) each
        lf_kld_token *out = r->tokens + r->count;
#pragma omp parallel for schedule(static)
        for (int k = 0; k < nrows; k++) {
            size_t row = rows[k];
            compare_row(lb + row * (size_t)V, lq + row * (size_t)V, V, ids[begin + row + 1], &out[k]);
            out[k].pos = begin + row;
        }
        r->count += (size_t)nrows;
    }
    free(x);
    free(rows);
    if (!st && !r->count) {
        lf_set_error("kld: no target was scored (every target masked, or no whole window)");
        st = LF_ERR_ARG;
    }
    if (st) {
        lf_kld_result_free(r);
        return st;
    }
    lf_kld_stats(r);
    r->seconds = lf_now() - t0;
    return LF_OK;
}

void lf_kld_result_free(lf_kld_result *r) {
    free(r->tokens);
    r->tokens = NULL;
    r->count = 0;
}
