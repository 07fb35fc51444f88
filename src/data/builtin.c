/* Built-in corpora from Debian packages: the King James Bible (bible-kjv-text; one document per
 * chapter, verse references stripped) for language modelling, and fortunes (fortunes package) as
 * a labelled classification set: the category file a fortune comes from is its label. */
#define _GNU_SOURCE /* getline, popen */
#include "data_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lf_status kjv(doc_list *out) {
    FILE *p = popen("bible -f gen1:1-rev22:21 </dev/null 2>/dev/null", "r");
    if (!p) {
        lf_set_error("builtin kjv: cannot run 'bible'");
        return LF_ERR_IO;
    }
    char *line = NULL, *doc = NULL;
    size_t cap = 0, dlen = 0, dcap = 0;
    ssize_t n;
    char cur[32] = "";
    lf_status st = LF_OK;
    size_t verses = 0;
    while ((n = getline(&line, &cap, p)) > 0 && !st) {
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        /* "Book<chapter>:<verse> text": the chapter key is everything before ':' */
        char *colon = strchr(line, ':'), *space = strchr(line, ' ');
        if (!colon || !space || space < colon) continue;
        char key[32];
        snprintf(key, sizeof key, "%.*s", (int)(colon - line), line);
        if (strcmp(key, cur) != 0 && dlen) {
            st = lf_docs_push(out, doc, dlen, 0, 0, -1, "builtin:kjv");
            doc = NULL;
            dlen = dcap = 0;
        }
        snprintf(cur, sizeof cur, "%s", key);
        size_t tl = strlen(space + 1);
        if (dlen + tl + 2 > dcap) {
            dcap = (dlen + tl + 2) * 2;
            char *nd = realloc(doc, dcap);
            if (!nd) {
                st = LF_ERR_NOMEM;
                break;
            }
            doc = nd;
        }
        memcpy(doc + dlen, space + 1, tl);
        dlen += tl;
        doc[dlen++] = '\n';
        verses++;
    }
    if (!st && dlen) st = lf_docs_push(out, doc, dlen, 0, 0, -1, "builtin:kjv");
    else free(doc);
    free(line);
    int rc = pclose(p);
    if (!st && (verses < 30000 || rc != 0)) {
        lf_set_error("builtin kjv: 'bible' produced %zu verses (exit %d); install Debian's bible-kjv-text "
                     "(scripts/setup does)", verses, rc);
        st = LF_ERR_NOTFOUND;
    }
    return st;
}

static const char *const fortune_labels[] = {"computers", "people", "politics", "science", "songs-poems", "work"};
#define N_FORTUNE_LABELS 6

typedef struct {
    char *text;
    size_t len;
    int label;
    uint64_t h;
} fortune;

static int cmp_fortune(const void *a, const void *b) {
    const fortune *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    int c = memcmp(x->text, y->text, x->len);
    return c ? c : x->label - y->label;
}

static lf_status fortunes(doc_list *out) {
    fortune *f = NULL;
    size_t n = 0, cap = 0;
    lf_status st = LF_OK;
    for (int l = 0; l < N_FORTUNE_LABELS && !st; l++) {
        char path[256];
        snprintf(path, sizeof path, "/usr/share/games/fortunes/%s", fortune_labels[l]);
        FILE *fp = fopen(path, "rb");
        if (!fp) {
            lf_set_error("builtin fortunes: %s missing; install Debian's fortunes package (scripts/setup does)", path);
            st = LF_ERR_NOTFOUND;
            break;
        }
        char *line = NULL, *cur = NULL;
        size_t lcap = 0, clen = 0, ccap = 0;
        ssize_t k;
        for (;;) {
            k = getline(&line, &lcap, fp);
            if (k < 0 || (k >= 1 && line[0] == '%' && (k == 1 || line[1] == '\n'))) { /* end of one fortune */
                while (clen && isspace((unsigned char)cur[clen - 1])) clen--;
                if (clen) {
                    if (n == cap) {
                        cap = cap ? cap * 2 : 1024;
                        fortune *nf = realloc(f, cap * sizeof *f);
                        if (!nf) {
                            st = LF_ERR_NOMEM;
                            break;
                        }
                        f = nf;
                    }
                    f[n++] = (fortune){cur, clen, l, lf_fnv1a(cur, clen)};
                    cur = NULL;
                    ccap = 0;
                }
                clen = 0;
                if (k < 0) break;
                continue;
            }
            if (clen + (size_t)k + 1 > ccap) {
                ccap = (clen + (size_t)k + 1) * 2;
                char *nc = realloc(cur, ccap);
                if (!nc) {
                    st = LF_ERR_NOMEM;
                    break;
                }
                cur = nc;
            }
            memcpy(cur + clen, line, (size_t)k);
            clen += (size_t)k;
        }
        free(cur);
        free(line);
        fclose(fp);
    }
    /* drop fortunes that appear under more than one label (ambiguous), keep one copy of repeats */
    qsort(f, n, sizeof *f, cmp_fortune);
    int labels[N_FORTUNE_LABELS];
    for (int l = 0; l < N_FORTUNE_LABELS && !st; l++)
        if ((labels[l] = lf_docs_intern(&out->labels, fortune_labels[l])) < 0) st = LF_ERR_NOMEM;
    for (size_t i = 0; i < n && !st;) {
        size_t j = i + 1;
        int multi = 0;
        while (j < n && f[j].h == f[i].h && f[j].len == f[i].len && memcmp(f[j].text, f[i].text, f[i].len) == 0) {
            multi |= f[j].label != f[i].label;
            j++;
        }
        if (!multi) {
            st = lf_docs_push(out, f[i].text, f[i].len, 0, 0, labels[f[i].label], "builtin:fortunes");
            f[i].text = NULL;
        }
        for (size_t k = i; k < j; k++) {
            free(f[k].text);
            f[k].text = NULL;
        }
        i = j;
    }
    for (size_t k = 0; st && k < n; k++) free(f[k].text);
    free(f);
    return st;
}

lf_status lf_builtin_docs(const char *name, doc_list *out) {
    if (!strcmp(name, "kjv")) return kjv(out);
    if (!strcmp(name, "fortunes")) return fortunes(out);
    lf_set_error("unknown built-in corpus '%s' (available: kjv, fortunes)", name);
    return LF_ERR_ARG;
}
