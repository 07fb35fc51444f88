/* Sliding-window evaluation, the validation-loss loop, sampling and generation. */
#include "lmforge/eval.h"
#include "lmforge/loss.h"
#include "eval_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lf_eval_windows_init(lf_eval_windows *w, size_t n, int T, int stride, int chunks) {
    *w = (lf_eval_windows){.n = n, .T = T, .stride = stride, .chunks = chunks};
}

int lf_eval_windows_next(lf_eval_windows *w, size_t *begin, size_t *end, size_t *first) {
    size_t T = (size_t)w->T;
    if (w->chunks) {
        if (w->done || w->begin + T > w->n) return 0;
        *begin = w->begin;
        *end = w->begin + T - 1;
        *first = w->begin + T / 2;
        w->begin += T;
        return 1;
    }
    if (w->done || w->scored_to + 1 >= w->n) return 0;
    *begin = w->begin;
    *end = w->begin + T < w->n - 1 ? w->begin + T : w->n - 1; /* targets up to end */
    *first = w->scored_to > w->begin ? w->scored_to : w->begin; /* the next unscored target is scored_to + 1 */
    w->scored_to = *end;
    if (*end >= w->n - 1) w->done = 1;
    w->begin += (size_t)w->stride;
    return 1;
}

lf_status lf_eval_sequence(lf_model *m, const int32_t *ids, size_t n, const uint8_t *is_target, int T, int stride,
                           int B, lf_eval_result *r) {
    memset(r, 0, sizeof *r);
    double t0 = lf_now();
    if (T < 2 || stride < 1 || stride > T || B < 1) {
        lf_set_error("eval: need context >= 2 and 1 <= stride <= context (got %d, %d)", T, stride);
        return LF_ERR_ARG;
    }
    if (n < 2) {
        lf_set_error("eval: need at least 2 tokens, got %zu", n);
        return LF_ERR_ARG;
    }
    int32_t *x = malloc(sizeof *x * (size_t)B * T), *y = malloc(sizeof *y * (size_t)B * T);
    if (!x || !y) {
        free(x);
        free(y);
        return LF_ERR_NOMEM;
    }
    lf_eval_windows w;
    lf_eval_windows_init(&w, n, T, stride, 0);
    size_t begin, end, first;
    int more = lf_eval_windows_next(&w, &begin, &end, &first);
    lf_status st = LF_OK;
    while (more && !st) {
        int rows = 0;
        for (; rows < B && more; rows++) {
            for (int t = 0; t < T; t++) {
                size_t i = begin + (size_t)t;
                x[rows * T + t] = i < end ? ids[i] : 0; /* padding after the end is causal-masked away */
                int score = i < end && i >= first && (!is_target || is_target[i + 1]);
                y[rows * T + t] = score ? ids[i + 1] : -1;
            }
            r->windows++;
            more = lf_eval_windows_next(&w, &begin, &end, &first);
        }
        double sum;
        size_t cnt;
        lf_batch b = {x, y, NULL, NULL, rows, T};
        st = lf_loss_ce_eval(m, &b, &sum, &cnt);
        if (!st) {
            r->loss_sum += sum;
            r->targets += cnt;
        }
    }
    free(x);
    free(y);
    r->seconds = lf_now() - t0;
    return st;
}

typedef struct {
    float v;
    int i;
} cand;

static int cmp_cand_desc(const void *a, const void *b) {
    float x = ((const cand *)a)->v, y = ((const cand *)b)->v;
    return x < y ? 1 : x > y ? -1 : ((const cand *)a)->i - ((const cand *)b)->i;
}

int lf_sample(const float *logits, int V, const lf_sampler *s, uint64_t step, float *scratch) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (s->temperature <= 0.0f) return best;
    cand *c = (cand *)scratch; /* 2*V floats hold V candidates */
    int n = 0;
    for (int v = 0; v < V; v++) c[n++] = (cand){logits[v] / s->temperature, v};
    int k = s->top_k > 0 && s->top_k < n ? s->top_k : n;
    if (k < n || s->top_p < 1.0f) qsort(c, (size_t)n, sizeof *c, cmp_cand_desc);
    n = k;
    double mx = c[0].v, sum = 0.0;
    for (int i = 0; i < n; i++) mx = c[i].v > mx ? c[i].v : mx;
    double *p = malloc(sizeof *p * (size_t)n);
    if (!p) return best;
    for (int i = 0; i < n; i++) sum += p[i] = exp(c[i].v - mx);
    if (s->top_p < 1.0f) { /* smallest prefix of the sorted candidates with mass >= top_p */
        double acc = 0.0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            acc += p[i] / sum;
            if (acc >= s->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        sum = 0.0;
        for (int i = 0; i < n; i++) sum += p[i];
    }
    double u = lf_u01(lf_hash64(s->seed, 0x5a3b1e, step)) * sum, acc = 0.0;
    int pick = c[n - 1].i;
    for (int i = 0; i < n; i++) {
        acc += p[i];
        if (u < acc) {
            pick = c[i].i;
            break;
        }
    }
    free(p);
    return pick;
}

lf_status lf_eval_loss(lf_model *m, lf_batch_source *src, int B, int T, int batches, double *mean, size_t *count) {
    *mean = NAN;
    if (count) *count = 0;
    lf_batch b;
    lf_status st = lf_batch_alloc(&b, B, T);
    if (st) return st;
    lf_loss_term *ce = lf_loss_ce_new(0.0f);
    if (!ce) {
        lf_batch_free(&b);
        return LF_ERR_NOMEM;
    }
    double sum = 0.0;
    size_t cnt = 0;
    lf_model_set_training(m, 0, 0);
    for (int i = 0; i < batches && !st; i++) {
        double v;
        st = src->next(src, &b);
        if (!st) st = lf_loss_forward(m, &ce, 1, &b, &v, NULL);
        if (!st) {
            size_t c = lf_loss_ce_counted(ce);
            sum += v * (double)c; /* v is the batch mean rounded to float: the sum of float means, as recorded before */
            cnt += c;
        }
    }
    lf_loss_free(ce);
    lf_batch_free(&b);
    if (!st && cnt) *mean = sum / (double)cnt;
    if (count) *count = cnt;
    return st;
}

lf_status lf_generate(lf_model *m, const int32_t *prompt, int n, int max_new, const lf_sampler *s, int eos,
                      lf_token_fn on_token, void *ctx, int *made) {
    if (made) *made = 0;
    const lf_config *c = lf_model_config(m);
    int V = c->vocab_size;
    if (n < 1 || n >= c->max_seq) {
        lf_set_error("generate: the prompt has %d tokens; the model takes 1..%d", n, c->max_seq - 1);
        return LF_ERR_ARG;
    }
    float *logits = malloc(sizeof(float) * (size_t)V), *scratch = malloc(sizeof(float) * 2 * (size_t)V);
    lf_status st = logits && scratch ? LF_OK : LF_ERR_NOMEM;
    if (!st) st = lf_model_cache_init(m, 0);
    if (!st) st = lf_model_decode(m, prompt, n, logits);
    int k = 0;
    for (; !st && k < max_new && lf_model_cache_len(m) < c->max_seq; k++) {
        int id = lf_sample(logits, V, s, (uint64_t)k, scratch);
        if (eos >= 0 && id == eos) break;
        if (on_token && on_token(ctx, id)) {
            k++;
            break;
        }
        if (lf_model_cache_len(m) >= c->max_seq) {
            k++;
            break;
        }
        st = lf_model_decode(m, &id, 1, logits);
    }
    if (made) *made = k;
    free(logits);
    free(scratch);
    return st;
}
