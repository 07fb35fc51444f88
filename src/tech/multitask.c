/* Multi-task learning, the parts that plug into the engine (include/lmforge/multitask.h): the
 * task list, T5's mixing rates, the mixture batch source (counter-based draws, so its state is one
 * word), the per-task loss term (static and uncertainty weighting) and PCGrad for the trainer's
 * grad-surgery seam. The driver inside lmforge train is multitask_run.c. */
#include "lmforge/multitask.h"
#include "lmforge/kernels.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the task list */

static const char *kind_names[] = {"lm", "completion", "classify"};

lf_status lf_mtl_parse_tasks(const char *text, lf_mtl_task_spec *specs, int *n) {
    *n = 0;
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!json_is_array(j) || json_array_size(j) == 0 || json_array_size(j) > LF_MTL_MAX_TASKS) {
        lf_set_error("config: 'tasks' must be a JSON array of 1..%d task objects ({\"name\", \"data\", \"kind\", ...})%s%s",
                     LF_MTL_MAX_TASKS, j ? "" : ": ", j ? "" : e.text);
        json_decref(j);
        return LF_ERR_ARG;
    }
    lf_status st = LF_OK;
    size_t i;
    json_t *o;
    json_array_foreach(j, i, o) {
        lf_mtl_task_spec *s = &specs[i];
        memset(s, 0, sizeof *s);
        s->weight = s->rate = 1.0f;
#define BAD(...)                                                                                   \
    do {                                                                                           \
        lf_set_error(__VA_ARGS__);                                                                 \
        st = LF_ERR_ARG;                                                                           \
        goto out;                                                                                  \
    } while (0)
        if (!json_is_object(o)) BAD("config: tasks[%zu] is not an object", i);
        const char *key;
        json_t *v;
        json_object_foreach(o, key, v) {
            char *dst = NULL;
            size_t cap = 0;
            if (!strcmp(key, "name")) dst = s->name, cap = sizeof s->name;
            else if (!strcmp(key, "data")) dst = s->data, cap = sizeof s->data;
            else if (!strcmp(key, "prefix")) dst = s->prefix, cap = sizeof s->prefix;
            else if (!strcmp(key, "metric")) dst = s->metric, cap = sizeof s->metric;
            if (dst) {
                if (!json_is_string(v) || json_string_length(v) >= cap || strlen(json_string_value(v)) != json_string_length(v))
                    BAD("config: tasks[%zu].%s must be a string of under %zu bytes", i, key, cap);
                strcpy(dst, json_string_value(v));
            } else if (!strcmp(key, "kind")) {
                int k = -1;
                for (int q = 0; q < 3 && json_is_string(v); q++)
                    if (!strcmp(json_string_value(v), kind_names[q])) k = q;
                if (k < 0) BAD("config: tasks[%zu].kind must be lm, completion or classify", i);
                s->kind = (lf_mtl_kind)k;
            } else if (!strcmp(key, "weight") || !strcmp(key, "rate")) {
                double x = json_number_value(v);
                if (!json_is_number(v) || !(x >= 0 && x <= 1e6)) BAD("config: tasks[%zu].%s must be a number in [0, 1e6]", i, key);
                *(!strcmp(key, "weight") ? &s->weight : &s->rate) = (float)x;
            } else {
                BAD("config: tasks[%zu] has an unknown field '%s' (name, data, kind, prefix, weight, rate, metric)", i, key);
            }
        }
        if (!s->name[0] || strchr(s->name, ':') || strchr(s->name, '/')) BAD("config: tasks[%zu] needs a name without ':' or '/'", i);
        if (!s->data[0]) BAD("config: task '%s' needs 'data' (a folder made by lmforge prepare)", s->name);
        for (size_t q = 0; q < i; q++)
            if (!strcmp(specs[q].name, s->name)) BAD("config: two tasks are called '%s'", s->name);
        if (!s->metric[0]) strcpy(s->metric, s->kind == LF_MTL_CLASSIFY ? "accuracy" : "loss");
        if (strcmp(s->metric, "loss") && strcmp(s->metric, "ppl") && strcmp(s->metric, "accuracy") && strcmp(s->metric, "macro_f1"))
            BAD("config: task '%s': metric must be loss, ppl, accuracy or macro_f1", s->name);
        if (s->kind != LF_MTL_CLASSIFY && (!strcmp(s->metric, "accuracy") || !strcmp(s->metric, "macro_f1")))
            BAD("config: task '%s': %s needs kind classify", s->name, s->metric);
#undef BAD
    }
    *n = (int)json_array_size(j);
out:
    json_decref(j);
    return st;
}

/* ---------------------------------------------------------------- mixing rates */

lf_status lf_mtl_rates(const size_t *n_ex, const float *rate, int n, lf_mtl_mix mix, size_t cap, float temperature, double *p) {
    if (n < 1 || !(temperature > 0)) {
        lf_set_error("mixing: need at least one task and a temperature > 0");
        return LF_ERR_ARG;
    }
    double sum = 0.0;
    for (int t = 0; t < n; t++) {
        if (mix == LF_MTL_MIX_FIXED) p[t] = rate ? rate[t] : 1.0;
        else {
            double x = (double)(cap && n_ex[t] > cap ? cap : n_ex[t]);
            p[t] = pow(x, 1.0 / temperature);
        }
        sum += p[t];
    }
    if (!(sum > 0) || !isfinite(sum)) {
        lf_set_error("mixing: the rates sum to %g (every task empty or every fixed rate 0?)", sum);
        return LF_ERR_ARG;
    }
    for (int t = 0; t < n; t++) p[t] /= sum;
    return LF_OK;
}

/* ---------------------------------------------------------------- rows of one task */

typedef struct {
    lf_mtl_source_task t;
    int32_t *prefix; // (n_prefix) own copy
    size_t *docs;    // (n) document kinds: the documents used
    size_t n;        // examples
    int W;           // lm: tokens of shard text per row (T - prefix)
} reader;

static lf_status reader_init(reader *r, const lf_mtl_source_task *t, int T) {
    memset(r, 0, sizeof *r);
    r->t = *t;
    const lf_shard *s = t->shard;
    if (t->n_prefix < 0 || t->n_prefix >= T - 1) {
        lf_set_error("multi-task: a prefix of %d tokens leaves no room in rows of %d", t->n_prefix, T);
        return LF_ERR_ARG;
    }
    if (t->n_prefix) {
        r->prefix = malloc((size_t)t->n_prefix * sizeof(int32_t));
        if (!r->prefix) return LF_ERR_NOMEM;
        memcpy(r->prefix, t->prefix, (size_t)t->n_prefix * sizeof(int32_t));
    }
    r->t.prefix = r->prefix;
    if (t->kind == LF_MTL_LM) {
        if (t->select >= 0) {
            lf_set_error("multi-task: a language-modelling task needs a shard of its own (not one task of several)");
            return LF_ERR_ARG;
        }
        r->W = T - t->n_prefix;
        size_t ntok = lf_shard_num_tokens(s);
        r->n = ntok > (size_t)r->W ? (ntok - 1) / (size_t)r->W : 0;
    } else {
        size_t nd = lf_shard_num_docs(s), k = 0;
        r->docs = malloc((nd ? nd : 1) * sizeof(size_t));
        if (!r->docs) return LF_ERR_NOMEM;
        for (size_t d = 0; d < nd; d++)
            if ((t->select < 0 || lf_shard_doc_task(s, d) == t->select) && lf_shard_doc_start(s, d + 1) > lf_shard_doc_start(s, d))
                r->docs[k++] = d;
        r->n = k;
    }
    if (r->n == 0) {
        lf_set_error("multi-task: a task has no %s", t->kind == LF_MTL_LM ? "window of the row length" : "documents");
        return LF_ERR_ARG;
    }
    return LF_OK;
}

static void reader_free(reader *r) {
    free(r->prefix);
    free(r->docs);
}

/* example i into one row: prefix (no loss), then the text with targets where the shard says */
static void reader_fill(const reader *r, size_t i, int32_t *in, int32_t *tg, int T) {
    const lf_shard *s = r->t.shard;
    int P = r->t.n_prefix;
    size_t a, e; /* shard tokens [a, e) follow the prefix */
    if (r->t.kind == LF_MTL_LM) {
        a = (i % r->n) * (size_t)r->W;
        e = a + (size_t)r->W + 1;
    } else {
        size_t d = r->docs[i % r->n];
        a = lf_shard_doc_start(s, d);
        e = lf_shard_doc_start(s, d + 1);
        if (e - a + (size_t)P > (size_t)T + 1) a = e - ((size_t)T + 1 - (size_t)P); /* the end (the answer) is kept */
    }
    size_t L = (size_t)P + (e - a); /* the whole sequence z: prefix, then shard tokens [a, e) */
    for (size_t x = 0; x < (size_t)T; x++) {
        if (x + 1 >= L) { /* past the last pair: padding */
            in[x] = 0;
            tg[x] = -1;
            continue;
        }
        size_t y = x + 1;
        in[x] = x < (size_t)P ? r->prefix[x] : lf_shard_token(s, a + x - (size_t)P);
        tg[x] = y >= (size_t)P && lf_shard_is_target(s, a + y - (size_t)P) ? lf_shard_token(s, a + y - (size_t)P) : -1;
    }
}

/* ---------------------------------------------------------------- the mixture source */

typedef struct {
    int n, T;
    reader r[LF_MTL_MAX_TASKS];
    double cum[LF_MTL_MAX_TASKS]; /* cumulative rates */
    uint64_t seed, k; /* k: batches drawn (rows drawn when sequential) */
    int sequential;   /* one task in order (validation) */
} mix_ctx;

static int draw_task(const mix_ctx *c, uint64_t h) {
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    for (int t = 0; t < c->n - 1; t++)
        if (u < c->cum[t]) return t;
    return c->n - 1;
}

static lf_status mix_next(lf_batch_source *src, lf_batch *b) {
    mix_ctx *c = src->ctx;
    if (b->T != c->T) {
        lf_set_error("multi-task source: built for rows of %d tokens, asked for %d", c->T, b->T);
        return LF_ERR_ARG;
    }
    for (int row = 0; row < b->B; row++) {
        int t;
        size_t i;
        if (c->sequential) { /* k counts rows here, so a shorter last batch continues in order */
            t = 0;
            i = (size_t)(c->k++ % c->r[0].n);
        } else {
            t = draw_task(c, lf_hash64(c->seed, 2 * c->k, (uint64_t)row));
            i = (size_t)(lf_hash64(c->seed, 2 * c->k + 1, (uint64_t)row) % c->r[t].n);
        }
        reader_fill(&c->r[t], i, b->inputs + (size_t)row * b->T, b->targets + (size_t)row * b->T, b->T);
        if (b->task) b->task[row] = t;
        if (b->row_weight) b->row_weight[row] = 1.0f;
    }
    if (!c->sequential) c->k++;
    return LF_OK;
}

static int mix_get_state(const lf_batch_source *src, uint64_t *w) {
    w[0] = ((const mix_ctx *)src->ctx)->k;
    return 1;
}

static lf_status mix_set_state(lf_batch_source *src, const uint64_t *w, int n) {
    if (n != 1) {
        lf_set_error("multi-task source: a saved state of %d words, expected 1 (a checkpoint of another data source?)", n);
        return LF_ERR_FORMAT;
    }
    ((mix_ctx *)src->ctx)->k = w[0];
    return LF_OK;
}

static void mix_free(lf_batch_source *src) {
    mix_ctx *c = src->ctx;
    for (int t = 0; t < c->n; t++) reader_free(&c->r[t]);
    free(c);
    free(src);
}

static lf_status mix_make(lf_batch_source **out, const lf_mtl_source_task *tasks, int n, int T, uint64_t seed, int sequential) {
    *out = NULL;
    if (n < 1 || n > LF_MTL_MAX_TASKS || T < 2) {
        lf_set_error("multi-task source: %d tasks (1..%d) and rows of %d tokens (>= 2)", n, LF_MTL_MAX_TASKS, T);
        return LF_ERR_ARG;
    }
    mix_ctx *c = calloc(1, sizeof *c);
    lf_batch_source *s = calloc(1, sizeof *s);
    if (!c || !s) {
        free(c);
        free(s);
        return LF_ERR_NOMEM;
    }
    c->n = n;
    c->T = T;
    c->seed = seed;
    c->sequential = sequential;
    *s = (lf_batch_source){sequential ? "multitask_task" : "multitask", c, mix_next, mix_get_state, mix_set_state, mix_free};
    lf_status st = LF_OK;
    for (int t = 0; t < n && !st; t++) {
        st = reader_init(&c->r[t], &tasks[t], T);
        c->n = t + 1; /* what mix_free must release */
    }
    for (int t = 0; t < n; t++) c->cum[t] = (double)(t + 1) / n;
    if (st) {
        mix_free(s);
        return st;
    }
    *out = s;
    return LF_OK;
}

lf_status lf_mtl_source_new(lf_batch_source **out, const lf_mtl_source_task *tasks, int n, const double *p, int T, uint64_t seed) {
    lf_status st = mix_make(out, tasks, n, T, seed, 0);
    if (!st && p) st = lf_mtl_source_set_rates(*out, p);
    if (st && *out) {
        lf_batch_source_free(*out);
        *out = NULL;
    }
    return st;
}

lf_status lf_mtl_source_set_rates(lf_batch_source *s, const double *p) {
    mix_ctx *c = s->ctx;
    double acc = 0.0;
    for (int t = 0; t < c->n; t++) {
        if (!(p[t] >= 0)) {
            lf_set_error("multi-task source: rate %d is %g", t, p[t]);
            return LF_ERR_ARG;
        }
        acc += p[t];
        c->cum[t] = acc;
    }
    if (!(acc > 0)) {
        lf_set_error("multi-task source: the rates sum to 0");
        return LF_ERR_ARG;
    }
    for (int t = 0; t < c->n; t++) c->cum[t] /= acc;
    return LF_OK;
}

size_t lf_mtl_source_examples(const lf_batch_source *s, int task) {
    const mix_ctx *c = s->ctx;
    return task >= 0 && task < c->n ? c->r[task].n : 0;
}

lf_status lf_mtl_task_source_new(lf_batch_source **out, const lf_mtl_source_task *task, int T) {
    return mix_make(out, task, 1, T, 0, 1);
}

/* ---------------------------------------------------------------- the loss */

typedef struct {
    int n;
    float w[LF_MTL_MAX_TASKS];
    lf_param *s;           /* log-variances (uncertainty weighting) or NULL */
    float *losses, *lse;   // (cap) (cap)
    size_t cap;
    double sum[LF_MTL_MAX_TASKS], L[LF_MTL_MAX_TASKS];
    size_t cnt[LF_MTL_MAX_TASKS];
    float coef[LF_MTL_MAX_TASKS]; /* d value / d L_t */
} mtl_loss;

static int row_task(const lf_batch *b, size_t brow, int n) {
    int t = b->task ? b->task[brow] : 0;
    return t >= 0 && t < n ? t : -1;
}

static lf_status mtl_forward(lf_loss_term *term, lf_model *m, const lf_batch *b, const float *logits, size_t rows, int V,
                             double *value) {
    (void)m;
    mtl_loss *c = term->ctx;
    size_t N = (size_t)b->B * b->T;
    if (rows != N) {
        lf_set_error("multi-task loss: needs the logits of every position");
        return LF_ERR_ARG;
    }
    if (N > c->cap) {
        free(c->losses);
        free(c->lse);
        c->losses = malloc(N * sizeof(float));
        c->lse = malloc(N * sizeof(float));
        c->cap = c->losses && c->lse ? N : 0;
        if (!c->cap) return LF_ERR_NOMEM;
    }
    lf_crossentropy_forward(c->losses, c->lse, logits, b->targets, N, V, 0.0f);
    memset(c->sum, 0, sizeof c->sum);
    memset(c->cnt, 0, sizeof c->cnt);
    for (int r = 0; r < b->B; r++) {
        int t = row_task(b, (size_t)r, c->n);
        if (t < 0) {
            lf_set_error("multi-task loss: batch row %d has task id %d, outside 0..%d", r, b->task[r], c->n - 1);
            return LF_ERR_ARG;
        }
        float w = b->row_weight ? b->row_weight[r] : 1.0f;
        for (size_t i = (size_t)r * b->T; i < (size_t)(r + 1) * b->T; i++)
            if (b->targets[i] >= 0) {
                c->sum[t] += (double)w * c->losses[i];
                c->cnt[t]++;
            }
    }
    double v = 0.0;
    for (int t = 0; t < c->n; t++) {
        c->coef[t] = 0.0f;
        if (!c->cnt[t]) {
            c->L[t] = NAN;
            continue;
        }
        c->L[t] = c->sum[t] / (double)c->cnt[t];
        if (c->s) {
            double e = exp(-(double)c->s->data[t]);
            v += c->w[t] * 0.5 * (e * c->L[t] + c->s->data[t]);
            c->coef[t] = (float)(c->w[t] * 0.5 * e);
        } else {
            v += c->w[t] * c->L[t];
            c->coef[t] = c->w[t];
        }
    }
    *value = v;
    return LF_OK;
}

static void mtl_backward_rows(lf_loss_term *term, const lf_batch *b, const float *logits, float *dlogits, size_t r0, size_t r1,
                              int V, float scale, int accum) {
    mtl_loss *c = term->ctx;
    size_t T = (size_t)b->T;
    size_t r = r0;
    while (r < r1) { /* a batch row at a time: its positions share one task and weight */
        size_t brow = r / T, end = (brow + 1) * T < r1 ? (brow + 1) * T : r1;
        int t = row_task(b, brow, c->n);
        float w = b->row_weight ? b->row_weight[brow] : 1.0f;
        float d = t >= 0 && c->cnt[t] ? scale * c->coef[t] * w / (float)c->cnt[t] : 0.0f;
        if (!accum) {
            lf_crossentropy_backward(dlogits + (r - r0) * (size_t)V, logits + (r - r0) * (size_t)V, c->lse + r, b->targets + r,
                                     end - r, V, 0.0f, d);
        } else if (d != 0.0f) {
            for (size_t i = r; i < end; i++) {
                int y = b->targets[i];
                if (y < 0) continue;
                const float *z = logits + (i - r0) * (size_t)V;
                float *dz = dlogits + (i - r0) * (size_t)V, l = c->lse[i];
                for (int v = 0; v < V; v++) dz[v] += d * expf(z[v] - l);
                dz[y] -= d;
            }
        }
        r = end;
    }
}

/* d value / d s_t = w_t·(1 - exp(-s_t)·L_t)/2, into the log-variances' gradient */
static lf_status mtl_backward_hidden(lf_loss_term *term, lf_model *m, const lf_batch *b, float scale) {
    (void)b;
    mtl_loss *c = term->ctx;
    if (!c->s || !(c->s->flags & LF_PARAM_TRAINABLE)) return LF_OK;
    if (!c->s->grad) {
        lf_status st = lf_model_alloc_grads(m);
        if (st) return st;
    }
    for (int t = 0; t < c->n; t++)
        if (c->cnt[t]) c->s->grad[t] += scale * (float)(c->w[t] * 0.5 * (1.0 - exp(-(double)c->s->data[t]) * c->L[t]));
    return LF_OK;
}

static void mtl_free(lf_loss_term *term) {
    mtl_loss *c = term->ctx;
    free(c->losses);
    free(c->lse);
    free(c);
    free(term);
}

lf_loss_term *lf_mtl_loss_new(int n, const float *weights, lf_param *log_vars) {
    if (n < 1 || n > LF_MTL_MAX_TASKS || (log_vars && log_vars->numel != (size_t)n)) {
        lf_set_error("multi-task loss: %d tasks (1..%d)%s", n, LF_MTL_MAX_TASKS, log_vars ? " and as many log-variances" : "");
        return NULL;
    }
    lf_loss_term *t = calloc(1, sizeof *t);
    mtl_loss *c = calloc(1, sizeof *c);
    if (!t || !c) {
        free(t);
        free(c);
        lf_set_error("out of memory");
        return NULL;
    }
    c->n = n;
    c->s = log_vars;
    for (int i = 0; i < n; i++) c->w[i] = weights ? weights[i] : 1.0f;
    *t = (lf_loss_term){"multitask", 1.0f, LF_LOGITS_ALL, c, mtl_forward, mtl_backward_rows, log_vars ? mtl_backward_hidden : NULL,
                        mtl_free};
    return t;
}

void lf_mtl_loss_last(const lf_loss_term *term, double *task_loss) {
    const mtl_loss *c = term->ctx;
    for (int t = 0; t < c->n; t++) task_loss[t] = c->L[t];
}

lf_status lf_mtl_add_log_vars(lf_model *m, int n, lf_param **out) {
    lf_status st = lf_model_add_param(m, "multitask.log_vars", n, 0, LF_KIND_OTHER, LF_PARAM_TRAINABLE, out);
    if (st) return st;
    for (int t = 0; t < n; t++) (*out)->data[t] = -0.5f; /* LibMTL's UW starts there */
    return LF_OK;
}

/* ---------------------------------------------------------------- PCGrad */

void lf_pcgrad_order(uint64_t seed, uint64_t step, int i, int n, int *order) {
    int m = 0;
    for (int j = 0; j < n; j++)
        if (j != i) order[m++] = j;
    for (int q = m; q > 1; q--) { /* Fisher-Yates from (seed, step, i) */
        int r = (int)(lf_hash64(seed ^ 0x9c9ad5u, step * 64 + (uint64_t)i, (uint64_t)q) % (uint64_t)q), tmp = order[q - 1];
        order[q - 1] = order[r];
        order[r] = tmp;
    }
}

/* With D the Gram matrix of the original gradients, each task's projected gradient is
 * g_i' = g_i - Σ_j a_ij·g_j with the a_ij found in projection order from dot products alone
 * (g_i'·g_j = D_ij - Σ_k a_ik·D_kj), so out = Σ_j (1 - Σ_i a_ij)·g_j needs no per-task copy. */
void lf_pcgrad_combine(float *const *g, int n, size_t len, float *out, uint64_t seed, uint64_t step) {
    double D[LF_MTL_MAX_TASKS * 4][LF_MTL_MAX_TASKS * 4], a[LF_MTL_MAX_TASKS * 4][LF_MTL_MAX_TASKS * 4];
    LF_ASSERT(n >= 1 && n <= LF_MTL_MAX_TASKS * 4);
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++) {
            double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static)
            for (size_t k = 0; k < len; k++) s += (double)g[i][k] * g[j][k];
            D[i][j] = D[j][i] = s;
        }
    for (int i = 0; i < n; i++) {
        int order[LF_MTL_MAX_TASKS * 4], m = n - 1;
        lf_pcgrad_order(seed, step, i, n, order);
        for (int j = 0; j < n; j++) a[i][j] = 0.0;
        for (int q = 0; q < m; q++) {
            int j = order[q];
            double dot = D[i][j];
            for (int k = 0; k < n; k++) dot -= a[i][k] * D[k][j];
            if (dot < 0.0 && D[j][j] > 0.0) a[i][j] += dot / D[j][j];
        }
    }
    double c[LF_MTL_MAX_TASKS * 4];
    for (int j = 0; j < n; j++) {
        c[j] = 1.0;
        for (int i = 0; i < n; i++) c[j] -= a[i][j];
    }
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < len; k++) {
        double s = 0.0;
        for (int j = 0; j < n; j++) s += c[j] * g[j][k];
        out[k] = (float)s;
    }
}

typedef struct {
    uint64_t seed;
} pcgrad_ctx;

static void pcgrad_combine_cb(lf_grad_surgery *s, float *const *grads, int n, size_t len, float *out, int step) {
    lf_pcgrad_combine(grads, n, len, out, ((pcgrad_ctx *)s->ctx)->seed, (uint64_t)step);
}

static void pcgrad_free(lf_grad_surgery *s) {
    free(s->ctx);
    free(s);
}

lf_grad_surgery *lf_pcgrad_surgery(int n, uint64_t seed) {
    lf_grad_surgery *s = calloc(1, sizeof *s);
    pcgrad_ctx *c = calloc(1, sizeof *c);
    if (!s || !c || n < 1 || n > LF_MTL_MAX_TASKS) {
        free(s);
        free(c);
        lf_set_error("pcgrad: %d tasks (1..%d)", n, LF_MTL_MAX_TASKS);
        return NULL;
    }
    c->seed = seed;
    *s = (lf_grad_surgery){"pcgrad", c, n, pcgrad_combine_cb, pcgrad_free};
    return s;
}
