/* Bag-of-words multinomial naive Bayes: the baseline every text classifier in bench/ is compared
 * with (issue 9). Reads labelled JSONL ({"text", "label"} per line, as `lmforge prepare --builtin
 * rt|20ng|r8` writes {train,test}.jsonl), lower-cases ASCII letters, splits on everything that is
 * not an ASCII letter or digit, counts words per class with Laplace smoothing (alpha = 1) and the
 * class prior from the training frequencies, and prints accuracy and macro-F1 on the test file.
 * The same model as scikit-learn's CountVectorizer(token_pattern="[a-z0-9]+") + MultinomialNB()
 * (bench/peer_nb.py); classes are ordered by name so that ties break the same way.
 * Usage: nb_baseline TRAIN.jsonl TEST.jsonl [--json] */
#include "lmforge/core.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- string -> id table (open addressing, FNV-1a) */
typedef struct {
    char **key;
    int n, cap;
    int *slot; /* id + 1; 0 = empty */
    size_t mask;
} table;

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "nb_baseline: out of memory\n");
        exit(1);
    }
    return q;
}

/* id of s[0..n); -1 when absent and add is 0 */
static int lookup(table *t, const char *s, size_t n, int add) {
    if (!t->slot || (size_t)t->n * 2 + 2 > t->mask + 1) {
        size_t cap = t->slot ? (t->mask + 1) * 2 : 1024;
        int *slot = xrealloc(NULL, cap * sizeof *slot);
        memset(slot, 0, cap * sizeof *slot);
        for (int i = 0; i < t->n; i++) {
            size_t h = lf_fnv1a(t->key[i], strlen(t->key[i])) & (cap - 1);
            while (slot[h]) h = (h + 1) & (cap - 1);
            slot[h] = i + 1;
        }
        free(t->slot);
        t->slot = slot;
        t->mask = cap - 1;
    }
    size_t h = lf_fnv1a(s, n) & t->mask;
    while (t->slot[h]) {
        const char *k = t->key[t->slot[h] - 1];
        if (strlen(k) == n && !memcmp(k, s, n)) return t->slot[h] - 1;
        h = (h + 1) & t->mask;
    }
    if (!add) return -1;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->key = xrealloc(t->key, sizeof *t->key * (size_t)t->cap);
    }
    char *k = xrealloc(NULL, n + 1);
    memcpy(k, s, n);
    k[n] = 0;
    t->key[t->n] = k;
    t->slot[h] = t->n + 1;
    return t->n++;
}

typedef struct {
    char **text, **label;
    size_t n, cap;
} dataset;

static void read_jsonl(const char *path, dataset *d) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nb_baseline: %s: cannot open\n", path);
        exit(1);
    }
    char *line = NULL;
    size_t cap = 0, ln = 0;
    ssize_t k;
    while ((k = getline(&line, &cap, f)) > 0) {
        ln++;
        json_error_t e;
        json_t *r = json_loadb(line, (size_t)k, 0, &e);
        const char *t = r ? json_string_value(json_object_get(r, "text")) : NULL;
        const char *l = r ? json_string_value(json_object_get(r, "label")) : NULL;
        if (!t || !l) {
            if (k == 1 && line[0] == '\n') {
                json_decref(r);
                continue;
            }
            fprintf(stderr, "nb_baseline: %s:%zu: expected {\"text\": ..., \"label\": ...}\n", path, ln);
            exit(1);
        }
        if (d->n == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 1024;
            d->text = xrealloc(d->text, sizeof *d->text * d->cap);
            d->label = xrealloc(d->label, sizeof *d->label * d->cap);
        }
        d->text[d->n] = strdup(t);
        d->label[d->n] = strdup(l);
        d->n++;
        json_decref(r);
    }
    free(line);
    fclose(f);
    if (!d->n) {
        fprintf(stderr, "nb_baseline: %s: no records\n", path);
        exit(1);
    }
}

/* calls fn(word, len) for each maximal run of [a-z0-9] after ASCII lower-casing (in place) */
#define FOR_WORDS(s, W, N, BODY)                                                                   \
    for (char *p_ = (s); *p_;) {                                                                   \
        while (*p_ && !isalnum((unsigned char)*p_)) p_++;                                          \
        char *W = p_;                                                                              \
        while (*p_ && isalnum((unsigned char)*p_)) *p_ = (char)tolower((unsigned char)*p_), p_++;  \
        size_t N = (size_t)(p_ - W);                                                               \
        if (N) BODY                                                                                \
    }

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: nb_baseline TRAIN.jsonl TEST.jsonl [--json]\n");
        return 2;
    }
    int json = argc > 3 && !strcmp(argv[3], "--json");
    double t0 = lf_now();
    dataset tr = {0}, te = {0};
    read_jsonl(argv[1], &tr);
    read_jsonl(argv[2], &te);
    /* classes: the training labels, sorted by name (scikit-learn's order) */
    table cls = {0};
    for (size_t i = 0; i < tr.n; i++) lookup(&cls, tr.label[i], strlen(tr.label[i]), 1);
    int C = cls.n;
    char **names = xrealloc(NULL, sizeof *names * (size_t)C);
    memcpy(names, cls.key, sizeof *names * (size_t)C);
    qsort(names, (size_t)C, sizeof *names, cmp_str);
    table sorted = {0};
    for (int c = 0; c < C; c++) lookup(&sorted, names[c], strlen(names[c]), 1);
    /* counts: (V, C) grown as the vocabulary grows */
    table vocab = {0};
    double *count = NULL; // (V,C)
    size_t count_rows = 0;
    double *class_words = calloc((size_t)C, sizeof(double)), *class_docs = calloc((size_t)C, sizeof(double));
    for (size_t i = 0; i < tr.n; i++) {
        int c = lookup(&sorted, tr.label[i], strlen(tr.label[i]), 0);
        class_docs[c] += 1;
        FOR_WORDS(tr.text[i], w, n, {
            int v = lookup(&vocab, w, n, 1);
            if ((size_t)v >= count_rows) {
                size_t nr = count_rows ? count_rows * 2 : 4096;
                count = xrealloc(count, nr * (size_t)C * sizeof *count);
                memset(count + count_rows * (size_t)C, 0, (nr - count_rows) * (size_t)C * sizeof *count);
                count_rows = nr;
            }
            count[(size_t)v * (size_t)C + (size_t)c] += 1;
            class_words[c] += 1;
        })
    }
    size_t V = (size_t)vocab.n;
    /* log P(w|c) = log((N_wc + 1) / (N_c + V)); log P(c) = log(docs_c / docs) */
    double *logp = xrealloc(NULL, V * (size_t)C * sizeof *logp); // (V,C)
    double *prior = xrealloc(NULL, (size_t)C * sizeof *prior);
    for (int c = 0; c < C; c++) {
        prior[c] = log(class_docs[c] / (double)tr.n);
        double den = log(class_words[c] + (double)V);
        for (size_t v = 0; v < V; v++) logp[v * (size_t)C + (size_t)c] = log(count[v * (size_t)C + (size_t)c] + 1.0) - den;
    }
    /* test: argmax over classes (the first on ties); words outside the vocabulary ignored */
    size_t *tp = calloc((size_t)C + 1, sizeof *tp), *n_true = calloc((size_t)C + 1, sizeof *tp),
           *n_pred = calloc((size_t)C + 1, sizeof *tp);
    double *score = xrealloc(NULL, (size_t)C * sizeof *score);
    size_t correct = 0;
    for (size_t i = 0; i < te.n; i++) {
        memcpy(score, prior, (size_t)C * sizeof *score);
        FOR_WORDS(te.text[i], w, n, {
            int v = lookup(&vocab, w, n, 0);
            if (v >= 0)
                for (int c = 0; c < C; c++) score[c] += logp[(size_t)v * (size_t)C + (size_t)c];
        })
        int best = 0;
        for (int c = 1; c < C; c++)
            if (score[c] > score[best]) best = c;
        int truth = lookup(&sorted, te.label[i], strlen(te.label[i]), 0);
        if (truth < 0) truth = C; /* a label never seen in training: always wrong */
        n_true[truth]++;
        n_pred[best]++;
        if (best == truth) tp[best]++, correct++;
    }
    /* macro-F1 over the classes present in the truth or the predictions (scikit-learn's default) */
    double f1_sum = 0;
    int f1_n = 0;
    for (int c = 0; c <= C; c++) {
        if (!n_true[c] && !n_pred[c]) continue;
        double p = n_pred[c] ? (double)tp[c] / (double)n_pred[c] : 0, r = n_true[c] ? (double)tp[c] / (double)n_true[c] : 0;
        f1_sum += p + r > 0 ? 2 * p * r / (p + r) : 0;
        f1_n++;
    }
    double acc = (double)correct / (double)te.n, macro = f1_n ? f1_sum / f1_n : 0, secs = lf_now() - t0;
    if (json)
        printf("{\"model\": \"lmforge nb_baseline\", \"accuracy\": %.6f, \"macro_f1\": %.6f, \"train\": %zu, \"test\": %zu, "
               "\"vocab\": %zu, \"classes\": %d, \"seconds\": %.3f}\n",
               acc, macro, tr.n, te.n, V, C, secs);
    else
        printf("naive Bayes (lmforge): accuracy %.4f  macro-F1 %.4f  (train %zu, test %zu, vocabulary %zu, %d classes, %.2f s)\n",
               acc, macro, tr.n, te.n, V, C, secs);
    return 0;
}
