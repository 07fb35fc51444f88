/* Byte-level BPE training with the GPT-2 pre-tokenizer: count pre-tokens ("words") over the
 * input files (one thread per file slice), then merge the most frequent adjacent pair until the
 * vocabulary is full. Pair counts are updated incrementally: only the words that contain the
 * merged pair are touched, and a lazy max-heap finds the next pair. Ties go to the smaller pair
 * (by ids), so the result is deterministic for the same input. */
#include "tok_internal.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- word counting: an open-addressing map of byte strings -> count */
typedef struct {
    char **key;
    uint32_t *klen;
    int64_t *count;
    size_t mask, n;
} wordmap;

static int wm_init(wordmap *m, size_t cap) {
    m->mask = cap - 1;
    m->n = 0;
    m->key = calloc(cap, sizeof *m->key);
    m->klen = calloc(cap, sizeof *m->klen);
    m->count = calloc(cap, sizeof *m->count);
    return m->key && m->klen && m->count ? 0 : -1;
}
static void wm_free(wordmap *m) {
    for (size_t i = 0; m->key && i <= m->mask; i++) free(m->key[i]);
    free(m->key);
    free(m->klen);
    free(m->count);
}
static int wm_add(wordmap *m, const char *s, size_t len, int64_t c) {
    if ((m->n + 1) * 2 > m->mask + 1) {
        wordmap g;
        if (wm_init(&g, (m->mask + 1) * 2)) return -1;
        for (size_t i = 0; i <= m->mask; i++)
            if (m->key[i]) {
                size_t h = lf_tok_fnv(0xcbf29ce484222325ULL, m->key[i], m->klen[i]) & g.mask;
                while (g.key[h]) h = (h + 1) & g.mask;
                g.key[h] = m->key[i];
                g.klen[h] = m->klen[i];
                g.count[h] = m->count[i];
                g.n++;
                m->key[i] = NULL;
            }
        wm_free(m);
        *m = g;
    }
    size_t h = lf_tok_fnv(0xcbf29ce484222325ULL, s, len) & m->mask;
    while (m->key[h]) {
        if (m->klen[h] == len && memcmp(m->key[h], s, len) == 0) {
            m->count[h] += c;
            return 0;
        }
        h = (h + 1) & m->mask;
    }
    m->key[h] = malloc(len ? len : 1);
    if (!m->key[h]) return -1;
    memcpy(m->key[h], s, len);
    m->klen[h] = (uint32_t)len;
    m->count[h] = c;
    m->n++;
    return 0;
}

static int count_text(wordmap *m, pcre2_code *re, const char *s, size_t len) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) return -1;
    size_t pos = 0;
    int rc = 0;
    while (pos < len && rc == 0) {
        int r = pcre2_match(re, (PCRE2_SPTR)s, len, pos, 0, md, NULL);
        if (r < 0) {
            rc = wm_add(m, s + pos, len - pos, 1);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[0] > pos) rc = wm_add(m, s + pos, ov[0] - pos, 1); /* bytes the regex skips (invalid UTF-8) */
        if (!rc) rc = wm_add(m, s + ov[0], ov[1] - ov[0], 1);
        pos = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    pcre2_match_data_free(md);
    return rc;
}

/* ---- pair statistics */
typedef struct {
    int64_t count;
    int32_t *words;
    int nw, cap;
} pair_stat;

typedef struct {
    uint64_t *key;
    pair_stat *val;
    size_t mask, n;
} pstat_map;

static pair_stat *ps_get(pstat_map *m, uint64_t k, int create) {
    if (create && (m->n + 1) * 2 > m->mask + 1) {
        size_t cap = (m->mask + 1) * 2;
        uint64_t *key = malloc(cap * sizeof *key);
        pair_stat *val = calloc(cap, sizeof *val);
        if (!key || !val) {
            free(key);
            free(val);
            return NULL;
        }
        memset(key, 0xff, cap * sizeof *key);
        for (size_t i = 0; i <= m->mask; i++)
            if (m->key[i] != UINT64_MAX) {
                size_t h = (size_t)((m->key[i] * 0x9e3779b97f4a7c15ULL) >> 20) & (cap - 1);
                while (key[h] != UINT64_MAX) h = (h + 1) & (cap - 1);
                key[h] = m->key[i];
                val[h] = m->val[i];
            }
        free(m->key);
        free(m->val);
        m->key = key;
        m->val = val;
        m->mask = cap - 1;
    }
    size_t h = (size_t)((k * 0x9e3779b97f4a7c15ULL) >> 20) & m->mask;
    while (m->key[h] != UINT64_MAX) {
        if (m->key[h] == k) return &m->val[h];
        h = (h + 1) & m->mask;
    }
    if (!create) return NULL;
    m->key[h] = k;
    memset(&m->val[h], 0, sizeof m->val[h]);
    m->n++;
    return &m->val[h];
}

static int ps_add_word(pair_stat *p, int32_t w) {
    if (p->nw && p->words[p->nw - 1] == w) return 0;
    if (p->nw == p->cap) {
        int nc = p->cap ? p->cap * 2 : 4;
        int32_t *x = realloc(p->words, sizeof *x * (size_t)nc);
        if (!x) return -1;
        p->words = x;
        p->cap = nc;
    }
    p->words[p->nw++] = w;
    return 0;
}

typedef struct {
    int64_t count;
    uint64_t pair;
} hitem;

static int h_better(const hitem *a, const hitem *b) { return a->count > b->count || (a->count == b->count && a->pair < b->pair); }

typedef struct {
    hitem *a;
    size_t n, cap;
} maxheap;

static int mh_push(maxheap *h, hitem it) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 1024;
        hitem *p = realloc(h->a, nc * sizeof *p);
        if (!p) return -1;
        h->a = p;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i && h_better(&it, &h->a[(i - 1) / 2])) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = it;
    return 0;
}

static hitem mh_pop(maxheap *h) {
    hitem top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h_better(&h->a[c + 1], &h->a[c])) c++;
        if (!h_better(&h->a[c], &last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n) h->a[i] = last;
    return top;
}

typedef struct {
    int32_t *sym;
    int len;
    int64_t freq;
} word;

static int cmp_words(const void *a, const void *b) {
    const word *x = a, *y = b;
    int n = x->len < y->len ? x->len : y->len;
    for (int i = 0; i < n; i++)
        if (x->sym[i] != y->sym[i]) return x->sym[i] < y->sym[i] ? -1 : 1;
    return x->len - y->len;
}

#define PK(a, b) (((uint64_t)(uint32_t)(a) << 32) | (uint32_t)(b))

lf_status lf_tokenizer_train_bpe(lf_tokenizer **out, const char *const *files, int nfiles, const lf_bpe_train_opts *o) {
    *out = NULL;
    static const char *const default_specials[] = {"<|endoftext|>"};
    const char *const *specials = o->n_specials > 0 ? o->specials : default_specials;
    int nspec = o->n_specials > 0 ? o->n_specials : 1;
    int min_freq = o->min_frequency > 0 ? o->min_frequency : 2;
    if (o->vocab_size < 256 + nspec || o->vocab_size > (1 << 24)) {
        lf_set_error("vocab size %d must be at least 256 + %d specials", o->vocab_size, nspec);
        return LF_ERR_ARG;
    }
    int show = !o->quiet && isatty(2);
    double t0 = lf_now();
    int err;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &eoff, NULL);
    if (!re) return LF_ERR_FORMAT;
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    /* read everything; count words per thread over slices cut at newlines */
    size_t total = 0;
    char **txt = calloc((size_t)nfiles, sizeof *txt);
    size_t *tl = calloc((size_t)nfiles, sizeof *tl);
    lf_status st = LF_OK;
    for (int f = 0; f < nfiles && !st; f++) {
        txt[f] = lf_read_file(files[f], &tl[f]);
        if (!txt[f]) {
            st = LF_ERR_IO;
            break;
        }
        total += tl[f];
    }
    int nt = lf_num_threads();
    wordmap *maps = calloc((size_t)nt, sizeof *maps);
    int fail = 0;
    if (!st) {
#pragma omp parallel num_threads(nt) reduction(| : fail)
        {
            int t = omp_get_thread_num(), n = omp_get_num_threads();
            wordmap *m = &maps[t];
            if (wm_init(m, 1 << 14)) fail = 1;
            for (int f = 0; f < nfiles && !fail; f++) {
                size_t b = tl[f] * (size_t)t / (size_t)n, e = tl[f] * (size_t)(t + 1) / (size_t)n;
                while (b > 0 && b < tl[f] && txt[f][b - 1] != '\n') b++; /* slices start after a newline */
                while (e < tl[f] && e > 0 && txt[f][e - 1] != '\n') e++;
                if (b < e && count_text(m, re, txt[f] + b, e - b)) fail = 1;
            }
        }
    }
    for (int f = 0; f < nfiles; f++) free(txt[f]);
    free(txt);
    free(tl);
    pcre2_code_free(re);
    if (!st && fail) {
        lf_set_error("out of memory counting words");
        st = LF_ERR_NOMEM;
    }
    /* merge the per-thread counts */
    wordmap all = {0};
    if (!st && wm_init(&all, 1 << 16)) st = LF_ERR_NOMEM;
    for (int t = 0; t < nt && !st; t++)
        for (size_t i = 0; maps[t].key && i <= maps[t].mask && !st; i++)
            if (maps[t].key[i] && wm_add(&all, maps[t].key[i], maps[t].klen[i], maps[t].count[i])) st = LF_ERR_NOMEM;
    for (int t = 0; t < nt; t++) wm_free(&maps[t]);
    free(maps);
    word *words = NULL;
    size_t nw = 0;
    if (!st) {
        words = calloc(all.n ? all.n : 1, sizeof *words);
        for (size_t i = 0; words && i <= all.mask; i++) {
            if (!all.key[i]) continue;
            word *w = &words[nw++];
            w->len = (int)all.klen[i];
            w->freq = all.count[i];
            w->sym = malloc(sizeof(int32_t) * (size_t)(w->len ? w->len : 1));
            if (!w->sym) {
                st = LF_ERR_NOMEM;
                break;
            }
            for (int k = 0; k < w->len; k++) w->sym[k] = (unsigned char)all.key[i][k];
        }
        if (!words) st = LF_ERR_NOMEM;
        if (!st) qsort(words, nw, sizeof *words, cmp_words); /* order independent of hashing and threads */
    }
    wm_free(&all);
    if (show && !st) fprintf(stderr, "\rtokenizer train: %.1f MB, %zu distinct pre-tokens (%.1f s)\n", total / 1e6, nw, lf_now() - t0);

    /* vocabulary under construction: 256 bytes, then merges */
    int target = o->vocab_size - nspec;
    char **piece = calloc((size_t)o->vocab_size, sizeof *piece);
    int *plen = calloc((size_t)o->vocab_size, sizeof *plen);
    int32_t(*merges)[2] = malloc(sizeof *merges * (size_t)(target > 256 ? target - 256 : 1));
    int nm = 0, nv = 256;
    if (!piece || !plen || !merges) st = LF_ERR_NOMEM;
    for (int b = 0; b < 256 && !st; b++) {
        piece[b] = malloc(1);
        if (!piece[b]) st = LF_ERR_NOMEM;
        else piece[b][0] = (char)b;
        plen[b] = 1;
    }
    pstat_map pm = {0};
    maxheap heap = {0}, touched = {0};
    if (!st) {
        pm.mask = (1 << 16) - 1;
        pm.key = malloc(sizeof *pm.key * (pm.mask + 1));
        pm.val = calloc(pm.mask + 1, sizeof *pm.val);
        if (!pm.key || !pm.val) st = LF_ERR_NOMEM;
        else memset(pm.key, 0xff, sizeof *pm.key * (pm.mask + 1));
    }
    for (size_t w = 0; w < nw && !st; w++)
        for (int k = 0; k + 1 < words[w].len && !st; k++) {
            pair_stat *p = ps_get(&pm, PK(words[w].sym[k], words[w].sym[k + 1]), 1);
            if (!p || ps_add_word(p, (int32_t)w)) st = LF_ERR_NOMEM;
            else p->count += words[w].freq;
        }
    for (size_t i = 0; !st && i <= pm.mask; i++)
        if (pm.key[i] != UINT64_MAX && mh_push(&heap, (hitem){pm.val[i].count, pm.key[i]})) st = LF_ERR_NOMEM;
    /* new token strings may repeat (a+bc == ab+c): reuse the id, as Hugging Face's trainer does */
    wordmap seen = {0};
    if (!st && wm_init(&seen, 1 << 14)) st = LF_ERR_NOMEM;
    while (!st && nv < target && heap.n) {
        hitem top = mh_pop(&heap);
        pair_stat *ps = ps_get(&pm, top.pair, 0);
        if (!ps || ps->count != top.count) { /* stale entry: requeue with the current count */
            if (ps && ps->count > 0 && mh_push(&heap, (hitem){ps->count, top.pair})) st = LF_ERR_NOMEM;
            continue;
        }
        if (top.count < min_freq) break;
        int a = (int)(top.pair >> 32), b = (int)(uint32_t)top.pair;
        size_t ln = (size_t)plen[a] + (size_t)plen[b];
        char *cat = malloc(ln);
        if (!cat) {
            st = LF_ERR_NOMEM;
            break;
        }
        memcpy(cat, piece[a], (size_t)plen[a]);
        memcpy(cat + plen[a], piece[b], (size_t)plen[b]);
        int id = -1;
        size_t h = lf_tok_fnv(0xcbf29ce484222325ULL, cat, ln) & seen.mask;
        while (seen.key[h]) {
            if (seen.klen[h] == ln && memcmp(seen.key[h], cat, ln) == 0) id = (int)seen.count[h];
            h = (h + 1) & seen.mask;
        }
        if (id < 0) {
            id = nv++;
            piece[id] = cat;
            plen[id] = (int)ln;
            if (wm_add(&seen, cat, ln, id)) st = LF_ERR_NOMEM;
        } else {
            free(cat);
        }
        merges[nm][0] = a;
        merges[nm][1] = b;
        nm++;
        /* apply the merge in every word that has the pair, updating neighbouring pair counts the
         * way Hugging Face's Word::merge does (transient +1/-1 changes cancel out) */
        int32_t *wl = ps->words;
        int nwl = ps->nw;
        ps->words = NULL;
        ps->nw = ps->cap = 0;
        for (int i = 0; i < nwl && !st; i++) {
            word *w = &words[wl[i]];
            int k = 0, j = 0;
            while (k < w->len && !st) {
                if (k + 1 < w->len && w->sym[k] == a && w->sym[k + 1] == b) {
                    if (j > 0) {
                        pair_stat *p = ps_get(&pm, PK(w->sym[j - 1], a), 0);
                        if (p) p->count -= w->freq;
                        p = ps_get(&pm, PK(w->sym[j - 1], id), 1);
                        if (!p || ps_add_word(p, wl[i]) || mh_push(&touched, (hitem){0, PK(w->sym[j - 1], id)})) st = LF_ERR_NOMEM;
                        else p->count += w->freq;
                    }
                    if (!st && k + 2 < w->len) {
                        int nx = w->sym[k + 2];
                        pair_stat *p = ps_get(&pm, PK(b, nx), 0);
                        if (p) p->count -= w->freq;
                        p = ps_get(&pm, PK(id, nx), 1);
                        if (!p || ps_add_word(p, wl[i]) || mh_push(&touched, (hitem){0, PK(id, nx)})) st = LF_ERR_NOMEM;
                        else p->count += w->freq;
                    }
                    w->sym[j++] = id;
                    k += 2;
                } else {
                    w->sym[j++] = w->sym[k++];
                }
            }
            w->len = j;
        }
        free(wl);
        pair_stat *done_pair = ps_get(&pm, top.pair, 0); /* the map may have grown: look it up again */
        if (done_pair) done_pair->count = 0;
        /* counts that grew get a fresh heap entry; entries that are now too high are fixed when popped */
        for (size_t i = 0; i < touched.n && !st; i++) {
            pair_stat *p = ps_get(&pm, touched.a[i].pair, 0);
            if (p && p->count > 0 && mh_push(&heap, (hitem){p->count, touched.a[i].pair})) st = LF_ERR_NOMEM;
        }
        touched.n = 0;
        if (show && (nm % 250 == 0))
            fprintf(stderr, "\rtokenizer train: %d / %d merges (%.1f s)", nm, target - 256, lf_now() - t0);
    }
    if (show) fprintf(stderr, "\rtokenizer train: %d merges, vocabulary %d (%.1f s)            \n", nm, nv + nspec, lf_now() - t0);
    for (size_t i = 0; pm.key && i <= pm.mask; i++)
        if (pm.key[i] != UINT64_MAX) free(pm.val[i].words);
    free(pm.key);
    free(pm.val);
    free(heap.a);
    free(touched.a);
    wm_free(&seen);
    for (size_t w = 0; w < nw; w++) free(words[w].sym);
    free(words);

    lf_tokenizer *t = NULL;
    if (!st) {
        t = calloc(1, sizeof *t);
        if (!t) st = LF_ERR_NOMEM;
    }
    if (!st) {
        t->kind = LF_TOK_BYTELEVEL;
        t->n = nv + nspec;
        t->piece = calloc((size_t)t->n, sizeof *t->piece);
        t->plen = calloc((size_t)t->n, sizeof *t->plen);
        t->score = calloc((size_t)t->n, sizeof *t->score);
        t->type = calloc((size_t)t->n, sizeof *t->type);
        t->bos = t->eos = t->unk = -1;
        if (!t->piece || !t->plen || !t->score || !t->type) st = LF_ERR_NOMEM;
    }
    if (!st) {
        for (int i = 0; i < nv; i++) {
            t->piece[i] = piece[i];
            t->plen[i] = plen[i];
            piece[i] = NULL;
        }
        for (int b = 0; b < 256; b++) t->byte_id[b] = b;
        for (int s2 = 0; s2 < nspec && !st; s2++) {
            size_t l = strlen(specials[s2]);
            t->piece[nv + s2] = malloc(l + 1);
            if (!t->piece[nv + s2]) st = LF_ERR_NOMEM;
            else memcpy(t->piece[nv + s2], specials[s2], l + 1);
            t->plen[nv + s2] = (int)l;
            t->type[nv + s2] = TT_SPECIAL;
        }
        t->eos = nv; /* the first special ends documents */
        t->pattern = strdup(GPT2_PATTERN);
        t->merges = merges;
        t->n_merges = nm;
        merges = NULL;
    }
    if (!st) st = lf_tok_map_build(t);
    for (int r = 0; !st && r < t->n_merges; r++) st = lf_tok_add_merge(t, t->merges[r][0], t->merges[r][1], (float)r);
    if (!st) st = lf_tok_finish(t);
    for (int i = 0; i < o->vocab_size; i++) free(piece ? piece[i] : NULL);
    free(piece);
    free(plen);
    free(merges);
    if (st) {
        lf_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LF_OK;
}
