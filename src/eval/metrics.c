/* Classification metrics from (gold, pred) label arrays over K classes: accuracy, per-class
 * precision / recall / F1, micro and macro F1, the confusion matrix, and percentile bootstrap
 * confidence intervals for accuracy and macro-F1. Zero divisions follow scikit-learn with
 * zero_division=0, and the macro average runs over the classes present in gold or pred (what
 * sklearn's f1_score(average="macro") does without a labels= argument). */
#include "lmforge/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lf_cls_metrics_free(lf_cls_metrics *r) {
    if (!r) return;
    free(r->precision);
    free(r->recall);
    free(r->f1);
    free(r->support);
    free(r->predicted);
    free(r->confusion);
    memset(r, 0, sizeof *r);
}

static double safe_div(double a, double b) { return b > 0 ? a / b : 0.0; }

/* accuracy and macro-F1 from a confusion matrix (K,K), rows gold */
static void summarize(const size_t *cm, int K, size_t n, double *acc, double *macro_f1) {
    size_t correct = 0;
    double f1sum = 0;
    int present = 0;
    for (int k = 0; k < K; k++) {
        size_t tp = cm[(size_t)k * K + k], gold = 0, pred = 0;
        for (int j = 0; j < K; j++) {
            gold += cm[(size_t)k * K + j];
            pred += cm[(size_t)j * K + k];
        }
        correct += tp;
        if (gold + pred == 0) continue; /* absent from both: not averaged */
        present++;
        f1sum += safe_div(2.0 * tp, (double)gold + pred);
    }
    *acc = safe_div((double)correct, (double)n);
    *macro_f1 = present ? f1sum / present : 0.0;
}

static lf_status check_labels(const int *gold, const int *pred, size_t n, int K) {
    if (K < 1 || K > 1000000) {
        lf_set_error("metrics: %d classes is out of range (1..1000000)", K);
        return LF_ERR_ARG;
    }
    for (size_t i = 0; i < n; i++)
        if (gold[i] < 0 || gold[i] >= K || pred[i] < 0 || pred[i] >= K) {
            lf_set_error("metrics: example %zu has label %d / prediction %d outside 0..%d", i, gold[i], pred[i], K - 1);
            return LF_ERR_ARG;
        }
    return LF_OK;
}

lf_status lf_cls_metrics_compute(lf_cls_metrics *r, const int *gold, const int *pred, size_t n, int K) {
    memset(r, 0, sizeof *r);
    lf_status st = check_labels(gold, pred, n, K);
    if (st) return st;
    r->K = K;
    r->n = n;
    r->precision = calloc((size_t)K, sizeof(double));
    r->recall = calloc((size_t)K, sizeof(double));
    r->f1 = calloc((size_t)K, sizeof(double));
    r->support = calloc((size_t)K, sizeof(size_t));
    r->predicted = calloc((size_t)K, sizeof(size_t));
    r->confusion = calloc((size_t)K * K, sizeof(size_t));
    if (!r->precision || !r->recall || !r->f1 || !r->support || !r->predicted || !r->confusion) {
        lf_cls_metrics_free(r);
        return LF_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) r->confusion[(size_t)gold[i] * K + pred[i]]++;
    size_t tp_all = 0;
    for (int k = 0; k < K; k++) {
        size_t tp = r->confusion[(size_t)k * K + k];
        for (int j = 0; j < K; j++) {
            r->support[k] += r->confusion[(size_t)k * K + j];
            r->predicted[k] += r->confusion[(size_t)j * K + k];
        }
        tp_all += tp;
        r->precision[k] = safe_div((double)tp, (double)r->predicted[k]);
        r->recall[k] = safe_div((double)tp, (double)r->support[k]);
        r->f1[k] = safe_div(2.0 * tp, (double)r->support[k] + r->predicted[k]);
    }
    int present = 0;
    for (int k = 0; k < K; k++)
        if (r->support[k] + r->predicted[k]) {
            present++;
            r->macro_precision += r->precision[k];
            r->macro_recall += r->recall[k];
            r->macro_f1 += r->f1[k];
        }
    if (present) {
        r->macro_precision /= present;
        r->macro_recall /= present;
        r->macro_f1 /= present;
    }
    r->accuracy = safe_div((double)tp_all, (double)n);
    /* single-label: Σfp = Σfn = n - Σtp, so micro P = micro R = micro F1 = accuracy */
    r->micro_f1 = r->accuracy;
    r->acc_ci[0] = r->acc_ci[1] = r->macro_f1_ci[0] = r->macro_f1_ci[1] = NAN;
    return LF_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* the q-quantile of sorted v (n) with linear interpolation (numpy's default) */
static double quantile(const double *v, int n, double q) {
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) return v[n - 1];
    return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

lf_status lf_cls_bootstrap(lf_cls_metrics *r, const int *gold, const int *pred, int resamples, uint64_t seed) {
    if (resamples < 2 || resamples > 1000000) {
        lf_set_error("metrics: %d bootstrap resamples is out of range (2..1000000)", resamples);
        return LF_ERR_ARG;
    }
    if (r->n == 0) return LF_OK; /* nothing to resample: the intervals stay NaN */
    lf_status st = check_labels(gold, pred, r->n, r->K);
    if (st) return st;
    int K = r->K;
    size_t n = r->n;
    double *acc = malloc(sizeof(double) * resamples), *f1 = malloc(sizeof(double) * resamples);
    size_t *cm = malloc(sizeof(size_t) * K * K);
    if (!acc || !f1 || !cm) {
        free(acc);
        free(f1);
        free(cm);
        return LF_ERR_NOMEM;
    }
    for (int b = 0; b < resamples; b++) {
        memset(cm, 0, sizeof(size_t) * K * K);
        for (size_t i = 0; i < n; i++) {
            /* draw i of resample b depends only on (seed, b, i): the same intervals on any thread count */
            size_t j = (size_t)(lf_hash64(seed, (uint64_t)b, i) % n);
            cm[(size_t)gold[j] * K + pred[j]]++;
        }
        summarize(cm, K, n, &acc[b], &f1[b]);
    }
    qsort(acc, resamples, sizeof(double), cmp_double);
    qsort(f1, resamples, sizeof(double), cmp_double);
    r->acc_ci[0] = quantile(acc, resamples, 0.025);
    r->acc_ci[1] = quantile(acc, resamples, 0.975);
    r->macro_f1_ci[0] = quantile(f1, resamples, 0.025);
    r->macro_f1_ci[1] = quantile(f1, resamples, 0.975);
    r->resamples = resamples;
    free(acc);
    free(f1);
    free(cm);
    return LF_OK;
}
