/* lmforge tune: the algorithms, free of storage. TPE as Optuna configures it by default (10
 * random startup trials, gamma(n) = min(ceil(0.1 n), 25) trials "below", 24 candidates drawn
 * from l(x) and the one with the largest log l(x) - log g(x) kept, a prior kernel of weight 1,
 * Optuna's "magic clip" of bandwidths and its ramp of observation weights past 25 trials), with
 * an independent and a multivariate form; random and grid sampling; the median and successive-
 * halving (ASHA) pruners; a binned main-effect importance; and test functions for benchmarks.
 *
 * Randomness comes from lf_hash64 keyed by (seed, trial number, draw), so a trial's point does
 * not depend on which worker sampled it or on the order workers ran in. */
#include "lmforge/tune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lf_tune_opts_defaults(lf_tune_opts *o) {
    memset(o, 0, sizeof *o);
    strcpy(o->sampler, "tpe");
    strcpy(o->pruner, "none");
    o->seed = 0;
    o->n_startup_trials = 10;
    o->n_ei_candidates = 24;
    o->prior_weight = 1.0;
    o->median_startup_trials = 5;
    o->warmup_steps = 0;
    o->interval_steps = 1;
    o->min_resource = 1;
    o->reduction_factor = 4;
    o->min_early_stopping_rate = 0;
}

const char *lf_trial_state_name(lf_trial_state s) {
    static const char *n[] = {"running", "complete", "pruned", "failed"};
    return (unsigned)s < 4 ? n[s] : "?";
}

/* ---- randomness */
typedef struct {
    uint64_t seed, stream, counter;
} rng;
static double u01(rng *r) { /* in (0, 1) */
    uint64_t h = lf_hash64(r->seed, r->stream, r->counter++);
    return ((double)(h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* ---- the internal (transformed) scale of a parameter: log for log-scaled ones; ints and
 * stepped floats widened by half a step each side so every grid value has an equal share */
static void bounds(const lf_hparam *p, double *lo, double *hi) {
    if (p->kind == LF_HP_CAT) {
        *lo = 0;
        *hi = p->n_choices - 1;
        return;
    }
    double half = p->step > 0 ? 0.5 * p->step : 0;
    if (p->log) {
        *lo = log(p->low - (p->kind == LF_HP_INT ? 0.5 : 0));
        *hi = log(p->high + (p->kind == LF_HP_INT ? 0.5 : 0));
    } else {
        *lo = p->low - half;
        *hi = p->high + half;
    }
}
static double to_internal(const lf_hparam *p, double x) { return p->log ? log(x) : x; }
/* internal value -> the nearest legal user value */
static double from_internal(const lf_hparam *p, double v) {
    double x = p->log ? exp(v) : v;
    if (p->step > 0) x = p->low + round((x - p->low) / p->step) * p->step;
    else if (p->kind == LF_HP_INT) x = round(x);
    if (x < p->low) x = p->low;
    if (x > p->high) x = p->high;
    return x;
}

static int active(const lf_hparam *ps, const lf_hparam *p, const double *x) {
    if (p->cond_param < 0) return 1;
    double v = x[p->cond_param];
    if (isnan(v) || !active(ps, &ps[p->cond_param], x)) return 0;
    for (int i = 0; i < p->n_cond; i++)
        if (v == p->cond_values[i]) return 1;
    return 0;
}

static double sample_uniform(const lf_hparam *p, rng *r) {
    if (p->kind == LF_HP_CAT) {
        int c = (int)(u01(r) * p->n_choices);
        return c < p->n_choices ? c : p->n_choices - 1;
    }
    double lo, hi;
    bounds(p, &lo, &hi);
    return from_internal(p, lo + (hi - lo) * u01(r));
}

/* ---- normal distribution helpers */
static double phi_cdf(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }
/* inverse of the standard normal CDF: Acklam's rational approximation, one Halley refinement */
static double phi_inv(double p) {
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00, 2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00};
    if (p <= 0) return -INFINITY;
    if (p >= 1) return INFINITY;
    double q, x;
    if (p < 0.02425) {
        q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p > 1 - 0.02425) {
        q = sqrt(-2 * log(1 - p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else {
        q = p - 0.5;
        double r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    double e = phi_cdf(x) - p, u = e * sqrt(2 * M_PI) * exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}
/* log density of N(mu, sigma) truncated to [lo, hi] at x */
static double trunc_logpdf(double x, double mu, double sigma, double lo, double hi) {
    double a = (lo - mu) / sigma, b = (hi - mu) / sigma, z = (x - mu) / sigma;
    double mass = a > 0 ? 0.5 * (erfc(a / sqrt(2.0)) - erfc(b / sqrt(2.0))) : phi_cdf(b) - phi_cdf(a);
    if (mass < 1e-300) mass = 1e-300;
    return -0.5 * z * z - 0.5 * log(2 * M_PI) - log(sigma) - log(mass);
}
static double trunc_sample(double mu, double sigma, double lo, double hi, rng *r) {
    double a = (lo - mu) / sigma, b = (hi - mu) / sigma, u = u01(r), z;
    if (a > 0) { /* upper tail: sample the mirrored lower tail where the CDF keeps its precision */
        double pa = phi_cdf(-b), pb = phi_cdf(-a);
        z = -phi_inv(pa + u * (pb - pa));
    } else {
        double pa = phi_cdf(a), pb = phi_cdf(b);
        z = phi_inv(pa + u * (pb - pa));
    }
    double x = mu + sigma * z;
    return x < lo ? lo : x > hi ? hi : x;
}

static double logsumexp(const double *v, int n) {
    double m = -INFINITY, s = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > m) m = v[i];
    if (!isfinite(m)) return m;
    for (int i = 0; i < n; i++) s += exp(v[i] - m);
    return m + log(s);
}

/* ---- Parzen estimators. One estimator is a mixture over kernels (observations + prior); for
 * each parameter d a kernel has (mu, sigma) on the internal scale, or a categorical
 * distribution. Independent TPE uses one parameter per estimator, multivariate all of them. */
typedef struct {
    int nk, nd;
    double *w;       /* (nk) mixture weights, normalised */
    double *mu, *sg; /* (nk, nd) */
    double *cat;     /* (nk, nd, max_choices) categorical probabilities */
    int maxc;
    const lf_hparam **ps; /* (nd) */
    double *lo, *hi;          /* (nd) */
} parzen;

static void parzen_free(parzen *e) {
    free(e->w);
    free(e->mu);
    free(e->sg);
    free(e->cat);
    free(e->ps);
    free(e->lo);
    free(e->hi);
}

/* Optuna's default weights: flat for the newest 25 observations, a linear ramp from 1/n for older */
static void default_weights(int n, double *w) {
    if (n < 25) {
        for (int i = 0; i < n; i++) w[i] = 1;
        return;
    }
    int nr = n - 25;
    for (int i = 0; i < nr; i++) w[i] = nr == 1 ? 1.0 / n : 1.0 / n + (1 - 1.0 / n) * i / (nr - 1);
    for (int i = nr; i < n; i++) w[i] = 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* obs: (n, nd) internal values (categorical as index), in trial-number order */
static lf_status parzen_build(parzen *e, const lf_hparam **ps, int nd, const double *obs, int n, int multivariate, double prior_weight) {
    memset(e, 0, sizeof *e);
    e->nd = nd;
    e->nk = n + 1; /* the prior is always a kernel (Optuna's consider_prior default) */
    e->maxc = 1;
    for (int d = 0; d < nd; d++)
        if (ps[d]->kind == LF_HP_CAT && ps[d]->n_choices > e->maxc) e->maxc = ps[d]->n_choices;
    size_t kd = (size_t)e->nk * nd;
    e->w = calloc((size_t)e->nk, sizeof *e->w);
    e->mu = calloc(kd, sizeof *e->mu);
    e->sg = calloc(kd, sizeof *e->sg);
    e->cat = calloc(kd * e->maxc, sizeof *e->cat);
    e->ps = calloc((size_t)nd, sizeof *e->ps);
    e->lo = calloc((size_t)nd, sizeof *e->lo);
    e->hi = calloc((size_t)nd, sizeof *e->hi);
    double *sorted = calloc((size_t)n + 3, sizeof *sorted), *order = calloc(2 * ((size_t)n + 1), sizeof *order);
    if (!e->w || !e->mu || !e->sg || !e->cat || !e->ps || !e->lo || !e->hi || !sorted || !order) {
        free(sorted);
        free(order);
        parzen_free(e);
        lf_set_error("tune: out of memory building a Parzen estimator");
        return LF_ERR_NOMEM;
    }
    default_weights(n, e->w);
    e->w[n] = prior_weight;
    double ws = 0;
    for (int k = 0; k < e->nk; k++) ws += e->w[k];
    for (int k = 0; k < e->nk; k++) e->w[k] /= ws;
    for (int d = 0; d < nd; d++) {
        const lf_hparam *p = ps[d];
        e->ps[d] = p;
        if (p->kind == LF_HP_CAT) {
            int C = p->n_choices;
            /* each observation: prior_weight/(n+1) on every choice, +1 on its own; the prior kernel uniform */
            for (int k = 0; k < e->nk; k++) {
                double *c = e->cat + ((size_t)k * nd + d) * e->maxc, s = 0;
                for (int j = 0; j < C; j++) c[j] = prior_weight / (n + 1);
                if (k < n) c[(int)obs[(size_t)k * nd + d]] += 1;
                for (int j = 0; j < C; j++) s += c[j];
                for (int j = 0; j < C; j++) c[j] /= s;
            }
            continue;
        }
        double lo, hi;
        bounds(p, &lo, &hi);
        e->lo[d] = lo;
        e->hi[d] = hi;
        double range = hi - lo, prior_mu = 0.5 * (lo + hi);
        for (int k = 0; k < n; k++) e->mu[(size_t)k * nd + d] = obs[(size_t)k * nd + d];
        if (multivariate) {
            double s = 0.2 * pow(n > 1 ? n : 1, -1.0 / (nd + 4)) * range;
            for (int k = 0; k < n; k++) e->sg[(size_t)k * nd + d] = s;
        } else {
            /* bandwidth = the larger gap to a neighbour among the observations, the prior's mean
             * and the two ends; the outermost use their inner gap (consider_endpoints off) */
            int m = n + 1;
            for (int k = 0; k < m; k++) {
                order[2 * k] = k < n ? obs[(size_t)k * nd + d] : prior_mu;
                order[2 * k + 1] = k;
            }
            /* sort (value, index) pairs by value; stable on ties by index */
            for (int i = 1; i < m; i++) {
                double v = order[2 * i], ix = order[2 * i + 1];
                int j = i - 1;
                while (j >= 0 && order[2 * j] > v) {
                    order[2 * (j + 1)] = order[2 * j];
                    order[2 * (j + 1) + 1] = order[2 * j + 1];
                    j--;
                }
                order[2 * (j + 1)] = v;
                order[2 * (j + 1) + 1] = ix;
            }
            sorted[0] = lo;
            for (int i = 0; i < m; i++) sorted[i + 1] = order[2 * i];
            sorted[m + 1] = hi;
            for (int i = 0; i < m; i++) {
                double left = sorted[i + 1] - sorted[i], right = sorted[i + 2] - sorted[i + 1];
                double s = left > right ? left : right;
                if (m + 2 >= 4) {
                    if (i == 0) s = sorted[2] - sorted[1];
                    if (i == m - 1) s = sorted[m] - sorted[m - 1];
                }
                int k = (int)order[2 * i + 1];
                if (k < n) e->sg[(size_t)k * nd + d] = s;
            }
        }
        /* magic clip: no kernel narrower than range / min(100, 1 + kernels), none wider than the range */
        double minsg = range / fmin(100.0, 1.0 + e->nk), maxsg = range;
        for (int k = 0; k < n; k++) {
            double *s = &e->sg[(size_t)k * nd + d];
            *s = *s < minsg ? minsg : *s > maxsg ? maxsg : *s;
        }
        e->mu[(size_t)n * nd + d] = prior_mu;
        e->sg[(size_t)n * nd + d] = range;
    }
    free(sorted);
    free(order);
    return LF_OK;
}

/* one draw (internal scale, categorical as index) */
static void parzen_sample(const parzen *e, rng *r, double *x) {
    double u = u01(r), acc = 0;
    int k = e->nk - 1;
    for (int i = 0; i < e->nk; i++) {
        acc += e->w[i];
        if (u < acc) {
            k = i;
            break;
        }
    }
    for (int d = 0; d < e->nd; d++) {
        const lf_hparam *p = e->ps[d];
        if (p->kind == LF_HP_CAT) {
            const double *c = e->cat + ((size_t)k * e->nd + d) * e->maxc;
            double v = u01(r), a = 0;
            int j = p->n_choices - 1;
            for (int i = 0; i < p->n_choices; i++) {
                a += c[i];
                if (v < a) {
                    j = i;
                    break;
                }
            }
            x[d] = j;
        } else {
            double v = trunc_sample(e->mu[(size_t)k * e->nd + d], e->sg[(size_t)k * e->nd + d], e->lo[d], e->hi[d], r);
            /* a discrete parameter's draw lands on its grid, so l and g score the value it will take */
            x[d] = to_internal(p, from_internal(p, v));
        }
    }
}

static double parzen_logpdf(const parzen *e, const double *x, double *tmp) {
    for (int k = 0; k < e->nk; k++) {
        double s = log(e->w[k]);
        for (int d = 0; d < e->nd; d++) {
            const lf_hparam *p = e->ps[d];
            if (p->kind == LF_HP_CAT) s += log(e->cat[((size_t)k * e->nd + d) * e->maxc + (int)x[d]]);
            else s += trunc_logpdf(x[d], e->mu[(size_t)k * e->nd + d], e->sg[(size_t)k * e->nd + d], e->lo[d], e->hi[d]);
        }
        tmp[k] = s;
    }
    return logsumexp(tmp, e->nk);
}

/* ---- TPE */
static int gamma_n(int n) {
    int g = (int)ceil(0.1 * n);
    return g < 25 ? g : 25;
}

typedef struct {
    const lf_trial *t;
    double key1, key2;
} ranked;
static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->key1 != y->key1) return x->key1 < y->key1 ? -1 : 1;
    if (x->key2 != y->key2) return x->key2 < y->key2 ? -1 : 1;
    return x->t->number - y->t->number;
}
static int cmp_number(const void *a, const void *b) { return (*(const lf_trial *const *)a)->number - (*(const lf_trial *const *)b)->number; }

/* below/above split: complete trials by value, then pruned ones (further reports first, then by
 * the last value), as Optuna ranks them; each group back in trial-number order */
static lf_status tpe_split(const lf_tune_opts *o, const lf_trial *hist, int n_hist, const lf_trial ***below, int *nb,
                           const lf_trial ***above, int *na) {
    ranked *r = calloc((size_t)n_hist + 1, sizeof *r);
    *below = calloc((size_t)n_hist + 1, sizeof **below);
    *above = calloc((size_t)n_hist + 1, sizeof **above);
    if (!r || !*below || !*above) {
        free(r);
        lf_set_error("tune: out of memory");
        return LF_ERR_NOMEM;
    }
    int n = 0;
    double sign = o->maximize ? -1 : 1;
    for (int i = 0; i < n_hist; i++) {
        const lf_trial *t = &hist[i];
        if (t->state == LF_TRIAL_COMPLETE) r[n++] = (ranked){t, 0, isnan(t->value) ? INFINITY : sign * t->value};
        else if (t->state == LF_TRIAL_PRUNED) /* after every complete trial; more steps ranks first */
            r[n++] = (ranked){t, 1.0 + 1.0 / (2.0 + (t->last_step > 0 ? t->last_step : 0)), isnan(t->value) ? INFINITY : sign * t->value};
    }
    qsort(r, (size_t)n, sizeof *r, cmp_ranked);
    int g = gamma_n(n);
    *nb = *na = 0;
    for (int i = 0; i < n; i++) {
        if (i < g) (*below)[(*nb)++] = r[i].t;
        else (*above)[(*na)++] = r[i].t;
    }
    qsort(*below, (size_t)*nb, sizeof **below, cmp_number);
    qsort(*above, (size_t)*na, sizeof **above, cmp_number);
    free(r);
    return LF_OK;
}

/* TPE over the parameters dims[0..nd) jointly (nd = 1: independent); x gets the chosen values */
static lf_status tpe_dims(const lf_space *s, const lf_tune_opts *o, const lf_trial **below, int nb, const lf_trial **above, int na,
                          const int *dims, int nd, int multivariate, rng *r, double *x) {
    const lf_hparam *ps[LF_TUNE_MAX_PARAMS];
    for (int d = 0; d < nd; d++) ps[d] = lf_space_param(s, dims[d]);
    double *ob = calloc(((size_t)nb + na + 1) * nd, sizeof *ob), *oa = ob + (size_t)nb * nd;
    if (!ob) {
        lf_set_error("tune: out of memory");
        return LF_ERR_NOMEM;
    }
    int mb = 0, ma = 0;
    for (int pass = 0; pass < 2; pass++) {
        const lf_trial **src = pass ? above : below;
        int ns = pass ? na : nb, *m = pass ? &ma : &mb;
        double *dst = pass ? oa : ob;
        for (int i = 0; i < ns; i++) {
            int ok = 1;
            for (int d = 0; d < nd; d++) ok &= !isnan(src[i]->x[dims[d]]);
            if (!ok) continue;
            for (int d = 0; d < nd; d++) {
                double v = src[i]->x[dims[d]];
                dst[(size_t)*m * nd + d] = ps[d]->kind == LF_HP_CAT ? v : to_internal(ps[d], v);
            }
            (*m)++;
        }
    }
    parzen l, g;
    lf_status st = parzen_build(&l, ps, nd, ob, mb, multivariate, o->prior_weight);
    if (st) {
        free(ob);
        return st;
    }
    if ((st = parzen_build(&g, ps, nd, oa, ma, multivariate, o->prior_weight))) {
        parzen_free(&l);
        free(ob);
        return st;
    }
    int nc = o->n_ei_candidates > 0 ? o->n_ei_candidates : 24;
    double cand[LF_TUNE_MAX_PARAMS], best[LF_TUNE_MAX_PARAMS], best_score = -INFINITY;
    double *tmp = calloc((size_t)(l.nk > g.nk ? l.nk : g.nk), sizeof *tmp);
    if (!tmp) st = LF_ERR_NOMEM;
    for (int c = 0; !st && c < nc; c++) {
        parzen_sample(&l, r, cand);
        double score = parzen_logpdf(&l, cand, tmp) - parzen_logpdf(&g, cand, tmp);
        if (c == 0 || score > best_score) {
            best_score = score;
            memcpy(best, cand, sizeof(double) * nd);
        }
    }
    for (int d = 0; !st && d < nd; d++) x[dims[d]] = ps[d]->kind == LF_HP_CAT ? best[d] : from_internal(ps[d], best[d]);
    free(tmp);
    parzen_free(&l);
    parzen_free(&g);
    free(ob);
    return st;
}

/* ---- grid */
static int grid_points(const lf_hparam *p) {
    if (p->kind == LF_HP_CAT) return p->n_choices;
    int want = p->grid ? p->grid : 5;
    if (p->step > 0 && !p->log) {
        double k = round((p->high - p->low) / p->step) + 1;
        if (!p->grid && k <= 50) return (int)k;
        return k < want ? (int)k : want;
    }
    return p->low == p->high ? 1 : want;
}
static double grid_value(const lf_hparam *p, int i, int m) {
    if (p->kind == LF_HP_CAT) return i;
    if (m == 1) return p->low;
    double lo = to_internal(p, p->low), hi = to_internal(p, p->high);
    return from_internal(p, lo + (hi - lo) * i / (m - 1));
}

lf_status lf_tune_sample(const lf_space *s, const lf_tune_opts *o, const lf_trial *hist, int n_hist, int number, double *x,
                         int *exhausted) {
    int n = lf_space_size(s);
    const lf_hparam *ps = lf_space_param(s, 0);
    if (exhausted) *exhausted = 0;
    rng r = {o->seed, ((uint64_t)(unsigned)number << 8) | 1, 0};
    for (int i = 0; i < n; i++) x[i] = NAN;
    if (!strcmp(o->sampler, "grid")) {
        double total = 1;
        int m[LF_TUNE_MAX_PARAMS];
        for (int i = 0; i < n; i++) total *= (m[i] = grid_points(&ps[i]));
        if (total > 1e7) {
            lf_set_error("tune: the grid has %.3g points; give floats fewer \"grid\" points (at most 10 million in all)", total);
            return LF_ERR_ARG;
        }
        long N = (long)total;
        /* a seeded random order of the grid (an affine permutation modulo N), first unused point */
        uint64_t h = lf_hash64(o->seed, 7, 0), a = 1 + h % (N > 1 ? (uint64_t)N - 1 : 1), b = (h >> 32) % (uint64_t)N;
        while (N > 1) { /* a must be coprime with N */
            uint64_t u = a, v = (uint64_t)N;
            while (v) {
                uint64_t t = u % v;
                u = v;
                v = t;
            }
            if (u == 1) break;
            a = a % ((uint64_t)N - 1) + 1;
        }
        for (long k = 0; k < N; k++) {
            long idx = (long)((a * (uint64_t)k + b) % (uint64_t)N), rem = idx;
            double pt[LF_TUNE_MAX_PARAMS];
            for (int i = n - 1; i >= 0; i--) {
                pt[i] = grid_value(&ps[i], (int)(rem % m[i]), m[i]);
                rem /= m[i];
            }
            for (int i = 0; i < n; i++)
                if (!active(ps, &ps[i], pt)) pt[i] = NAN;
            int used = 0;
            for (int t = 0; t < n_hist && !used; t++) {
                if (hist[t].state == LF_TRIAL_FAILED) continue;
                int same = 1;
                for (int i = 0; i < n && same; i++) same = (isnan(pt[i]) && isnan(hist[t].x[i])) || pt[i] == hist[t].x[i];
                used = same;
            }
            if (!used) {
                memcpy(x, pt, sizeof(double) * n);
                return LF_OK;
            }
        }
        if (exhausted) *exhausted = 1;
        for (int i = 0; i < n; i++) x[i] = grid_value(&ps[i], 0, m[i]);
        return LF_OK;
    }
    int n_done = 0;
    for (int t = 0; t < n_hist; t++) n_done += hist[t].state == LF_TRIAL_COMPLETE || hist[t].state == LF_TRIAL_PRUNED;
    int tpe = !strcmp(o->sampler, "tpe");
    if (!tpe && strcmp(o->sampler, "random")) {
        lf_set_error("tune: unknown sampler '%s' (tpe, random or grid)", o->sampler);
        return LF_ERR_ARG;
    }
    if (!tpe || n_done < o->n_startup_trials) {
        for (int i = 0; i < n; i++) x[i] = active(ps, &ps[i], x) ? sample_uniform(&ps[i], &r) : NAN;
        return LF_OK;
    }
    const lf_trial **below, **above;
    int nb, na;
    lf_status st = tpe_split(o, hist, n_hist, &below, &nb, &above, &na);
    if (st) return st;
    /* multivariate: the unconditional parameters jointly, conditional ones one by one */
    if (o->multivariate) {
        int dims[LF_TUNE_MAX_PARAMS], nd = 0;
        for (int i = 0; i < n; i++)
            if (ps[i].cond_param < 0) dims[nd++] = i;
        if (nd) st = tpe_dims(s, o, below, nb, above, na, dims, nd, 1, &r, x);
    }
    for (int i = 0; !st && i < n; i++) {
        if (o->multivariate && ps[i].cond_param < 0) continue;
        if (!active(ps, &ps[i], x)) continue;
        st = tpe_dims(s, o, below, nb, above, na, &i, 1, 0, &r, x);
    }
    free(below);
    free(above);
    return st;
}

/* ---- pruners */
static double median_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

lf_status lf_tune_should_prune(const lf_tune_opts *o, const lf_trial *hist, int n_hist, const lf_trial *self, int step, double value,
                               const lf_rung_store *rungs, int *prune) {
    *prune = 0;
    if (!strcmp(o->pruner, "none")) return LF_OK;
    if (!strcmp(o->pruner, "median")) {
        /* Optuna's MedianPruner: after warm-up and startup, on the interval, prune when this
         * trial's best value so far is worse than the median of completed trials at this step */
        int completed = 0;
        for (int i = 0; i < n_hist; i++) completed += hist[i].state == LF_TRIAL_COMPLETE;
        if (completed < o->median_startup_trials || step < o->warmup_steps) return LF_OK;
        int iv = o->interval_steps > 0 ? o->interval_steps : 1;
        if ((step - o->warmup_steps) % iv) return LF_OK;
        double best = value;
        for (int i = 0; i < self->n_inter; i++) {
            double v = self->inter_value[i];
            if (self->inter_step[i] <= step && !isnan(v) && (isnan(best) || (o->maximize ? v > best : v < best))) best = v;
        }
        if (isnan(best)) {
            *prune = 1;
            return LF_OK;
        }
        double *v = calloc((size_t)n_hist + 1, sizeof *v);
        if (!v) return LF_ERR_NOMEM;
        int m = 0;
        for (int i = 0; i < n_hist; i++) {
            if (hist[i].state != LF_TRIAL_COMPLETE || hist[i].number == self->number) continue;
            for (int j = 0; j < hist[i].n_inter; j++)
                if (hist[i].inter_step[j] == step && !isnan(hist[i].inter_value[j])) v[m++] = hist[i].inter_value[j];
        }
        if (m > 0) {
            double med = median_of(v, m);
            *prune = o->maximize ? best < med : best > med;
        }
        free(v);
        return LF_OK;
    }
    if (!strcmp(o->pruner, "asha")) {
        /* Optuna's SuccessiveHalvingPruner (asynchronous): at each rung the trial reaches, record
         * its value and continue only if it is in the top 1/reduction_factor of the values any
         * trial recorded there (the best one while fewer than reduction_factor have) */
        int eta = o->reduction_factor >= 2 ? o->reduction_factor : 2;
        int rung = rungs->n_rungs(rungs->ctx, self->number);
        for (;;) {
            double promote = (double)(o->min_resource > 0 ? o->min_resource : 1) * pow(eta, o->min_early_stopping_rate + rung);
            if (step < promote) return LF_OK;
            if (isnan(value)) {
                *prune = 1;
                return LF_OK;
            }
            lf_status st = rungs->set_rung(rungs->ctx, self->number, rung, value);
            if (st) return st;
            int cap = n_hist + 1;
            double *v = calloc((size_t)cap + 1, sizeof *v);
            if (!v) return LF_ERR_NOMEM;
            int m = rungs->get_rung(rungs->ctx, rung, self->number, v, cap);
            v[m++] = value;
            qsort(v, (size_t)m, sizeof *v, cmp_double);
            int idx = m / eta - 1;
            if (idx < 0) idx = 0;
            int ok = o->maximize ? v[m - 1 - idx] <= value : value <= v[idx];
            free(v);
            if (!ok) {
                *prune = 1;
                return LF_OK;
            }
            rung++;
        }
    }
    lf_set_error("tune: unknown pruner '%s' (none, median or asha)", o->pruner);
    return LF_ERR_ARG;
}

/* ---- importance */
typedef struct {
    double x, y;
} pair;
static int cmp_pair(const void *a, const void *b) {
    const pair *p = a, *q = b;
    return p->x < q->x ? -1 : p->x > q->x ? 1 : (p->y < q->y ? -1 : p->y > q->y);
}

lf_status lf_tune_importance(const lf_space *s, const lf_trial *t, int n, int maximize, double *imp) {
    int np = lf_space_size(s);
    pair *pr = calloc((size_t)n + 1, sizeof *pr), *yr = calloc((size_t)n + 1, sizeof *yr);
    if (!pr || !yr) {
        free(pr);
        free(yr);
        return LF_ERR_NOMEM;
    }
    /* the objective's ranks (ties share the mean rank): a diverged trial weighs as the worst, not as 1000x */
    int m = 0;
    for (int i = 0; i < n; i++)
        if (t[i].state == LF_TRIAL_COMPLETE && isfinite(t[i].value)) yr[m++] = (pair){maximize ? -t[i].value : t[i].value, i};
    qsort(yr, (size_t)m, sizeof *yr, cmp_pair);
    double *rank = calloc((size_t)n + 1, sizeof *rank);
    if (!rank) {
        free(pr);
        free(yr);
        return LF_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) rank[i] = NAN;
    for (int i = 0; i < m;) {
        int j = i;
        while (j + 1 < m && yr[j + 1].x == yr[i].x) j++;
        for (int k = i; k <= j; k++) rank[(int)yr[k].y] = 0.5 * (i + j);
        i = j + 1;
    }
    double total = 0;
    for (int p = 0; p < np; p++) {
        const lf_hparam *ps = lf_space_param(s, p);
        int k = 0;
        for (int i = 0; i < n; i++)
            if (!isnan(rank[i]) && !isnan(t[i].x[p])) pr[k++] = (pair){t[i].x[p], rank[i]};
        imp[p] = NAN;
        if (k < 4) continue;
        qsort(pr, (size_t)k, sizeof *pr, cmp_pair);
        double mean = 0, var = 0, between = 0;
        for (int i = 0; i < k; i++) mean += pr[i].y;
        mean /= k;
        for (int i = 0; i < k; i++) var += (pr[i].y - mean) * (pr[i].y - mean);
        /* bins: the categories, or about sqrt(k) quantile bins that never split equal values */
        int nbins = ps->kind == LF_HP_CAT ? ps->n_choices : (int)floor(sqrt((double)k));
        if (nbins < 2) nbins = 2;
        for (int i = 0; i < k;) {
            int j;
            if (ps->kind == LF_HP_CAT) {
                j = i;
                while (j < k && pr[j].x == pr[i].x) j++;
            } else {
                j = i + (k + nbins - 1) / nbins;
                if (j > k) j = k;
                while (j < k && pr[j].x == pr[j - 1].x) j++;
            }
            double bm = 0;
            for (int q = i; q < j; q++) bm += pr[q].y;
            bm /= (j - i);
            between += (j - i) * (bm - mean) * (bm - mean);
            i = j;
        }
        imp[p] = var > 0 ? between / var : 0;
        total += imp[p];
    }
    for (int p = 0; p < np; p++)
        if (!isnan(imp[p]) && total > 0) imp[p] /= total;
    free(pr);
    free(yr);
    free(rank);
    return LF_OK;
}

/* ---- test functions */
lf_status lf_tune_objective_space(const char *name, char **space_json) {
    const char *sp = NULL;
    static char buf[2048];
    if (!strcmp(name, "branin")) {
        sp = "{\"x1\":{\"type\":\"float\",\"low\":-5,\"high\":10},\"x2\":{\"type\":\"float\",\"low\":0,\"high\":15}}";
    } else if (!strcmp(name, "hartmann6") || !strcmp(name, "noisy-hartmann6") || !strcmp(name, "rosen10")) {
        int d = !strcmp(name, "rosen10") ? 10 : 6;
        double lo = d == 10 ? -2 : 0, hi = d == 10 ? 2 : 1;
        size_t off = (size_t)snprintf(buf, sizeof buf, "{");
        for (int i = 0; i < d; i++)
            off += (size_t)snprintf(buf + off, sizeof buf - off, "%s\"x%d\":{\"type\":\"float\",\"low\":%g,\"high\":%g}", i ? "," : "", i + 1, lo, hi);
        snprintf(buf + off, sizeof buf - off, "}");
        sp = buf;
    }
    if (!sp) {
        lf_set_error("unknown objective '%s' (branin, hartmann6, noisy-hartmann6, rosen10)", name);
        return LF_ERR_NOTFOUND;
    }
    *space_json = strdup(sp);
    return *space_json ? LF_OK : LF_ERR_NOMEM;
}

static double hartmann6(const double *x) {
    static const double al[4] = {1.0, 1.2, 3.0, 3.2};
    static const double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14}, {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}};
    static const double P[4][6] = {{1312, 1696, 5569, 124, 8283, 5886},
                                   {2329, 4135, 8307, 3736, 1004, 9991},
                                   {2348, 1451, 3522, 2883, 3047, 6650},
                                   {4047, 8828, 8732, 5743, 1091, 381}};
    double s = 0;
    for (int i = 0; i < 4; i++) {
        double in = 0;
        for (int j = 0; j < 6; j++) in += A[i][j] * (x[j] - 1e-4 * P[i][j]) * (x[j] - 1e-4 * P[i][j]);
        s += al[i] * exp(-in);
    }
    return -s;
}

lf_status lf_tune_objective_eval(const char *name, const double *x, uint64_t seed, int number, double *value) {
    if (!strcmp(name, "branin")) {
        double b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, t = 1 / (8 * M_PI), u = x[1] - b * x[0] * x[0] + c * x[0] - 6;
        *value = u * u + 10 * (1 - t) * cos(x[0]) + 10;
    } else if (!strcmp(name, "hartmann6")) {
        *value = hartmann6(x);
    } else if (!strcmp(name, "noisy-hartmann6")) {
        *value = hartmann6(x) + 0.1 * lf_randn(seed ^ 0x6e6f697379ULL, 3, (uint64_t)number);
    } else if (!strcmp(name, "rosen10")) {
        double s = 0;
        for (int i = 0; i < 2; i++) s += 100 * (x[i + 1] - x[i] * x[i]) * (x[i + 1] - x[i] * x[i]) + (1 - x[i]) * (1 - x[i]);
        *value = s;
    } else {
        lf_set_error("unknown objective '%s' (branin, hartmann6, noisy-hartmann6, rosen10)", name);
        return LF_ERR_NOTFOUND;
    }
    return LF_OK;
}
