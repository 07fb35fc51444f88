/* Label scoring: classification by the log-likelihood of each label's continuation after a
 * prompt (lm-evaluation-harness's loglikelihood requests: acc, acc_norm), zero-shot or after
 * fine-tuning, on any model the engine runs.
 *
 * Why full forwards rather than the KV cache: lf_model_decode runs one token at a time (a
 * matrix-vector product per linear, bound by reading every weight once per token), while
 * lf_model_forward runs the T tokens of a row through one GEMM per linear; on a CPU the GEMM is
 * several times faster per token than the matrix-vector path for prompts longer than a few
 * tokens. The cost of re-running the prompt per label is cut by sharing rows: label k needs the
 * input prompt + its continuation minus the last token, so every label whose continuation is one
 * token (the common case: " positive", " sports") is scored from the same prompt-only row, and
 * labels whose continuations share everything but the last token share a row too. One row per
 * forward, because a prompt-only row then needs only its last position's logits
 * (LF_LOGITS_LAST): with right-padded batches every position's V logits would be computed, and
 * that output GEMM (B·T × V) dominated the time on a 50k vocabulary (profiled). */
#include "lmforge/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lf_cls_scores_free(lf_cls_scores *s) {
    if (!s) return;
    free(s->ll);
    free(s->ntok);
    free(s->nchars);
    free(s->pred);
    free(s->pred_tok);
    free(s->pred_norm);
    memset(s, 0, sizeof *s);
}

/* template with every `key` replaced by val (malloc'd) */
static char *fill(const char *tpl, const char *key, const char *val) {
    size_t kl = strlen(key), vl = strlen(val), n = 0, cap = strlen(tpl) + 1;
    for (const char *p = strstr(tpl, key); p; p = strstr(p + kl, key)) cap += vl;
    char *out = malloc(cap);
    if (!out) return NULL;
    for (const char *p = tpl; *p;) {
        if (!strncmp(p, key, kl)) {
            memcpy(out + n, val, vl);
            n += vl;
            p += kl;
        } else out[n++] = *p++;
    }
    out[n] = 0;
    return out;
}

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

typedef struct {
    int32_t *ids; /* the shared input: prompt tail + prefix */
    int len, ctx; /* tokens; of which prompt */
    size_t ex;    /* example */
    int group;
} row;

static int argmax_row(const double *v, int K) {
    int b = 0;
    for (int k = 1; k < K; k++)
        if (v[k] > v[b]) b = k; /* ties: the first label (numpy's argmax) */
    return b;
}

lf_status lf_cls_score(lf_model *m, const lf_tokenizer *tok, const char *const *texts, size_t n,
                       const char *const *labels, int K, const lf_cls_score_opts *o, lf_cls_scores *out) {
    memset(out, 0, sizeof *out);
    const lf_config *c = lf_model_config(m);
    const char *ptpl = o && o->prompt ? o->prompt : "{text}\nlabel:", *atpl = o && o->answer ? o->answer : " {label}";
    int L = o && o->max_tokens > 0 && o->max_tokens < c->max_seq ? o->max_tokens : c->max_seq;
    int B = 1, V = c->vocab_size; /* one row per forward: see the top of the file */
    if (K < 1) {
        lf_set_error("classify: no labels (the data needs a \"label\" on its records)");
        return LF_ERR_ARG;
    }
    if (!strstr(ptpl, "{text}")) {
        lf_set_error("classify: the prompt template \"%s\" has no {text}", ptpl);
        return LF_ERR_ARG;
    }
    if (!strstr(atpl, "{label}")) {
        lf_set_error("classify: the answer template \"%s\" has no {label}", atpl);
        return LF_ERR_ARG;
    }
    lf_status st = LF_OK;
    lf_tok_encoder *e = NULL;
    lf_ids *cont = calloc((size_t)K, sizeof *cont);
    int *group = calloc((size_t)K, sizeof(int)), G = 0;
    out->n = n;
    out->K = K;
    out->ll = calloc(n * (size_t)K + 1, sizeof(double));
    out->ntok = calloc((size_t)K, sizeof(int));
    out->nchars = calloc((size_t)K, sizeof(size_t));
    out->pred = calloc(n + 1, sizeof(int));
    out->pred_tok = calloc(n + 1, sizeof(int));
    out->pred_norm = calloc(n + 1, sizeof(int));
    if (!cont || !group || !out->ll || !out->ntok || !out->nchars || !out->pred || !out->pred_tok || !out->pred_norm) {
        st = LF_ERR_NOMEM;
        goto done;
    }
    if ((st = lf_tok_encoder_init(&e, tok))) goto done;
    /* each label's continuation, once: it does not depend on the text (encoded as a continuation) */
    for (int k = 0; k < K && !st; k++) {
        char *a = fill(atpl, "{label}", labels[k]);
        if (!a) {
            st = LF_ERR_NOMEM;
            break;
        }
        st = lf_tok_encode(e, a, strlen(a), LF_ENC_CONTINUE, &cont[k]);
        free(a);
        if (st) break;
        if (cont[k].n == 0) {
            lf_set_error("classify: label \"%s\" encodes to no tokens (check the answer template)", labels[k]);
            st = LF_ERR_ARG;
            break;
        }
        if ((int)cont[k].n >= L) {
            lf_set_error("classify: label \"%s\" takes %zu tokens, more than the %d-token context allows", labels[k],
                         cont[k].n, L);
            st = LF_ERR_ARG;
            break;
        }
        out->ntok[k] = (int)cont[k].n;
        out->nchars[k] = utf8_chars(labels[k]);
        for (int j = 0; j < k; j++) /* share a row with an earlier label of the same prefix */
            if (cont[j].n == cont[k].n &&
                !memcmp(cont[j].ids, cont[k].ids, (cont[k].n - 1) * sizeof(int32_t))) {
                group[k] = group[j];
                goto grouped;
            }
        group[k] = G++;
    grouped:;
    }
    if (st) goto done;
    double t0 = lf_now();
    lf_model_set_training(m, 0, 0);
    unsigned pflags = lf_tokenizer_kind(tok) == LF_TOK_SENTENCEPIECE ? LF_ENC_BOS : 0;
    int start_id = lf_tokenizer_bos(tok) >= 0 ? lf_tokenizer_bos(tok) : lf_tokenizer_eos(tok);
    row *rows = calloc((size_t)B, sizeof(row));
    int32_t *inputs = NULL;
    size_t in_cap = 0;
    if (!rows) {
        st = LF_ERR_NOMEM;
        goto done;
    }
    /* rows are (example, group) in order; B at a time */
    size_t total = n * (size_t)G, next = 0;
    lf_ids ctx = {0};
    size_t ctx_ex = (size_t)-1;
    while (next < total && !st) {
        int nb = 0, T = 1;
        for (; nb < B && next < total; nb++, next++) {
            size_t i = next / G;
            int g = (int)(next % G);
            if (ctx_ex != i) {
                ctx.n = 0;
                char *p = fill(ptpl, "{text}", texts[i]);
                if (!p) {
                    st = LF_ERR_NOMEM;
                    break;
                }
                st = lf_tok_encode(e, p, strlen(p), pflags, &ctx);
                free(p);
                if (!st && ctx.n == 0 && start_id >= 0) st = lf_ids_push(&ctx, start_id); /* lm-eval: an empty context starts from EOS */
                if (!st && ctx.n == 0) {
                    lf_set_error("classify: example %zu has an empty prompt and the tokenizer no BOS/EOS to start from", i);
                    st = LF_ERR_ARG;
                }
                if (st) break;
                ctx_ex = i;
            }
            int k0 = 0;
            while (group[k0] != g) k0++;
            int plen = (int)cont[k0].n - 1, keep = (int)ctx.n;
            if (keep + plen > L) keep = L - plen; /* keep the end of the prompt */
            if (keep < (int)ctx.n && g == 0) out->truncated++;
            row *r = &rows[nb];
            free(r->ids);
            r->ids = malloc(sizeof(int32_t) * (size_t)(keep + plen));
            if (!r->ids) {
                st = LF_ERR_NOMEM;
                break;
            }
            memcpy(r->ids, ctx.ids + ctx.n - keep, sizeof(int32_t) * keep);
            memcpy(r->ids + keep, cont[k0].ids, sizeof(int32_t) * plen);
            r->len = keep + plen;
            r->ctx = keep;
            r->ex = i;
            r->group = g;
            if (r->len > T) T = r->len;
        }
        if (st) break;
        if ((size_t)nb * T > in_cap) {
            free(inputs);
            in_cap = (size_t)nb * T;
            if (!(inputs = malloc(sizeof(int32_t) * in_cap))) {
                st = LF_ERR_NOMEM;
                break;
            }
        }
        for (int b = 0; b < nb; b++) { /* right padding: causal attention never lets it reach the scored positions */
            memcpy(inputs + (size_t)b * T, rows[b].ids, sizeof(int32_t) * rows[b].len);
            for (int t = rows[b].len; t < T; t++) inputs[(size_t)b * T + t] = 0;
        }
        /* a prompt-only row (one-token labels) needs the logits of its last position only */
        int last = nb == 1 && rows[0].len == rows[0].ctx;
        if ((st = lf_model_forward(m, inputs, nb, T, last ? LF_LOGITS_LAST : LF_LOGITS_ALL))) break;
        const float *logits = lf_model_logits(m, NULL);
        /* log-sum-exp once per scored position (every label of a row shares them) */
/* (one row per forward: no parallel loop here; the forward itself is threaded) */
        for (int b = 0; b < nb; b++) {
            int np = rows[b].len - rows[b].ctx + 1; /* positions ctx-1 .. len-1 */
            double lse[64], *lp = np <= 64 ? lse : malloc(sizeof(double) * (size_t)np);
            if (!lp) continue; /* out of memory: this row's labels keep 0, never read past */
            for (int j = 0; j < np; j++) {
                const float *x = last ? logits : logits + ((size_t)b * T + rows[b].ctx - 1 + j) * V;
                float mx = x[0];
                for (int v = 1; v < V; v++) mx = x[v] > mx ? x[v] : mx;
                double z = 0;
                for (int v = 0; v < V; v++) z += exp((double)x[v] - mx);
                lp[j] = mx + log(z);
            }
            for (int k = 0; k < K; k++) {
                if (group[k] != rows[b].group) continue;
                double sum = 0;
                for (int j = 0; j < (int)cont[k].n; j++)
                    sum += (double)(last ? logits : logits + ((size_t)b * T + rows[b].ctx - 1 + j) * V)[cont[k].ids[j]] - lp[j];
                out->ll[rows[b].ex * K + k] = sum;
            }
            if (lp != lse) free(lp);
        }
        if (o && o->progress) o->progress(o->progress_ctx, next / G, n);
    }
    for (int b = 0; b < B; b++) free(rows[b].ids);
    free(rows);
    free(inputs);
    lf_ids_free(&ctx);
    if (st) goto done;
    double *tmp = malloc(sizeof(double) * 2 * (size_t)K);
    if (!tmp) {
        st = LF_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const double *ll = out->ll + i * K;
        out->pred[i] = argmax_row(ll, K);
        for (int k = 0; k < K; k++) {
            tmp[k] = ll[k] / out->ntok[k];
            tmp[K + k] = out->nchars[k] ? ll[k] / (double)out->nchars[k] : ll[k];
        }
        out->pred_tok[i] = argmax_row(tmp, K);
        out->pred_norm[i] = argmax_row(tmp + K, K);
    }
    free(tmp);
    out->seconds = lf_now() - t0;
done:
    for (int k = 0; cont && k < K; k++) lf_ids_free(&cont[k]);
    free(cont);
    free(group);
    lf_tok_encoder_free(e);
    if (st) lf_cls_scores_free(out);
    return st;
}
