/* Labelled examples from a folder lmforge prepare made out of {"text","label"} records: each
 * document of a split is "<text>\nlabel:" (no loss) then " <label>" and EOS (loss); decoding the
 * two parts gives the text and the label back (decode(encode(x)) == x is a tested property of
 * the tokenizers). The shard and meta.json are untrusted: every document must have that shape. */
#include "lmforge/data.h"
#include "lmforge/eval.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lf_cls_dataset_free(lf_cls_dataset *d) {
    for (size_t i = 0; i < d->n; i++) free(d->text[i]);
    for (int k = 0; k < d->K; k++) free(d->names[k]);
    free(d->text);
    free(d->label);
    free(d->names);
    memset(d, 0, sizeof *d);
}

static lf_status read_labels(lf_cls_dataset *d, const char *dir) {
    char p[4400];
    snprintf(p, sizeof p, "%s/meta.json", dir);
    json_error_t err;
    json_t *m = json_load_file(p, 0, &err), *labels = m ? json_object_get(m, "labels") : NULL;
    size_t K = json_array_size(labels);
    if (!m || !json_is_array(labels) || K < 1 || K > 1000000) {
        lf_set_error("%s: %s (a folder from lmforge prepare on {\"text\",\"label\"} records)", p,
                     !m ? err.text : "no labels");
        json_decref(m);
        return LF_ERR_FORMAT;
    }
    d->names = calloc(K, sizeof(char *));
    lf_status st = d->names ? LF_OK : LF_ERR_NOMEM;
    for (size_t i = 0; i < K && !st; i++) {
        const char *s = json_string_value(json_array_get(labels, i));
        if (!s || !s[0]) {
            lf_set_error("%s: label %zu is not a non-empty string", p, i);
            st = LF_ERR_FORMAT;
        } else if (!(d->names[i] = strdup(s))) st = LF_ERR_NOMEM;
        d->K = (int)i + 1;
    }
    json_decref(m);
    return st;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

lf_status lf_cls_dataset_load_prepared(lf_cls_dataset *d, const char *dir, const char *split, const char *tokenizer,
                                       size_t limit) {
    memset(d, 0, sizeof *d);
    lf_status st = read_labels(d, dir);
    if (st) {
        lf_cls_dataset_free(d);
        return st;
    }
    char sp[4400], tp[4400];
    snprintf(sp, sizeof sp, "%s/%s.bin", dir, split);
    snprintf(tp, sizeof tp, "%s/tokenizer.json", dir);
    lf_tokenizer *t = NULL;
    lf_shard *s = NULL;
    if ((st = lf_tokenizer_load(&t, tokenizer ? tokenizer : tp)) || (st = lf_shard_open(&s, sp, lf_tokenizer_fingerprint(t)))) {
        lf_tokenizer_free(t);
        lf_cls_dataset_free(d);
        return st;
    }
    int bos = lf_tokenizer_bos(t), eos = lf_tokenizer_eos(t);
    size_t nd = lf_shard_num_docs(s), cap = 0;
    lf_ids ids = {0};
    if (limit == 0 || limit > nd) limit = nd;
    /* A limit takes a fixed pseudo-random subset (the same for every run and seed), not the first
     * documents: sources store their test splits sorted by label. Kept in document order. */
    int subset = limit < nd && nd <= 0xffffff; /* else the first documents */
    uint8_t *pick = subset ? calloc(nd, 1) : NULL;
    if (subset) {
        uint64_t *key = malloc(nd * sizeof *key);
        if (!pick || !key) st = LF_ERR_NOMEM;
        for (size_t i = 0; !st && i < nd; i++) key[i] = (lf_hash64(0xc1a55e7, i, 0) & ~(uint64_t)0xffffff) | (i & 0xffffff);
        if (!st) qsort(key, nd, sizeof *key, cmp_u64);
        for (size_t i = 0; !st && i < limit; i++) pick[key[i] & 0xffffff] = 1;
        free(key);
    }
    for (size_t doc = 0; doc < nd && d->n < limit && !st; doc++) {
        if (pick && !pick[doc]) continue;
        size_t a = lf_shard_doc_start(s, doc), b = lf_shard_doc_start(s, doc + 1), split_at = a;
        while (split_at < b && !lf_shard_is_target(s, split_at)) split_at++;
        ids.n = 0;
        for (size_t i = a; i < b && !st; i++) st = lf_ids_push(&ids, lf_shard_token(s, i));
        if (st) break;
        size_t p0 = ids.n && bos >= 0 && ids.ids[0] == bos ? 1 : 0, pn = split_at - a, ln = b - split_at;
        if (ln && eos >= 0 && ids.ids[ids.n - 1] == eos) ln--;
        char *text = NULL, *lab = NULL;
        size_t tl = 0, ll = 0;
        int k = -1;
        if (pn > p0 && ln > 0 && !lf_tokenizer_decode(t, ids.ids + p0, pn - p0, &text, &tl) &&
            !lf_tokenizer_decode(t, ids.ids + pn, ln, &lab, &ll) && tl >= 7 && !strcmp(text + tl - 7, "\nlabel:") && ll >= 2 &&
            lab[0] == ' ')
            for (int j = 0; j < d->K; j++)
                if (!strcmp(d->names[j], lab + 1)) k = j;
        if (k < 0) {
            lf_set_error("%s: document %zu is not \"<text>\\nlabel: <label>\" with a label of meta.json", sp, doc);
            st = LF_ERR_FORMAT;
        } else {
            if (d->n == cap) {
                cap = cap ? cap * 2 : 256;
                char **tx = realloc(d->text, cap * sizeof *tx);
                if (tx) d->text = tx;
                int *lb = realloc(d->label, cap * sizeof *lb);
                if (lb) d->label = lb;
                if (!tx || !lb) st = LF_ERR_NOMEM;
            }
            if (!st) {
                text[tl - 7] = 0;
                d->text[d->n] = text;
                d->label[d->n++] = k;
                text = NULL;
            }
        }
        free(text);
        free(lab);
    }
    free(pick);
    lf_ids_free(&ids);
    lf_shard_close(s);
    lf_tokenizer_free(t);
    if (!st && d->n == 0) {
        lf_set_error("%s: no documents", sp);
        st = LF_ERR_FORMAT;
    }
    if (st) lf_cls_dataset_free(d);
    return st;
}
