/* Tokenizer tables, the merge engine, encode/decode, and the loaders (encoder.json + vocab.bpe,
 * tokenizer.json of byte-level or SentencePiece-style BPE, llama2.c tokenizer.bin). */
#define _GNU_SOURCE /* memmem, qsort_r */
#include "tok_internal.h"

#include <errno.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- small containers */

lf_status lf_ids_push(lf_ids *v, int32_t id) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 256;
        int32_t *p = realloc(v->ids, nc * sizeof *p);
        if (!p) {
            lf_set_error("out of memory growing a token list to %zu ids", nc);
            return LF_ERR_NOMEM;
        }
        v->ids = p;
        v->cap = nc;
    }
    v->ids[v->n++] = id;
    return LF_OK;
}

void lf_ids_free(lf_ids *v) {
    free(v->ids);
    v->ids = NULL;
    v->n = v->cap = 0;
}

uint64_t lf_tok_fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static size_t pow2_at_least(size_t n) {
    size_t m = 16;
    while (m < n) m <<= 1;
    return m;
}

lf_status lf_tok_map_build(lf_tokenizer *t) {
    size_t cap = pow2_at_least((size_t)t->n * 2 + 2);
    t->map.slot = calloc(cap, sizeof *t->map.slot);
    if (!t->map.slot) return LF_ERR_NOMEM;
    t->map.mask = cap - 1;
    for (int i = 0; i < t->n; i++) {
        if (t->type[i] != TT_NORMAL) continue;
        size_t h = lf_tok_fnv(0xcbf29ce484222325ULL, t->piece[i], (size_t)t->plen[i]) & t->map.mask;
        while (t->map.slot[h]) {
            uint32_t j = t->map.slot[h] - 1;
            if (t->plen[j] == t->plen[i] && memcmp(t->piece[j], t->piece[i], (size_t)t->plen[i]) == 0) break;
            h = (h + 1) & t->map.mask;
        }
        if (!t->map.slot[h]) t->map.slot[h] = (uint32_t)i + 1; /* duplicates: first id wins */
    }
    return LF_OK;
}

int lf_tok_map_find(const lf_tokenizer *t, const char *s, size_t len) {
    size_t h = lf_tok_fnv(0xcbf29ce484222325ULL, s, len) & t->map.mask;
    while (t->map.slot[h]) {
        uint32_t j = t->map.slot[h] - 1;
        if ((size_t)t->plen[j] == len && memcmp(t->piece[j], s, len) == 0) return (int)j;
        h = (h + 1) & t->map.mask;
    }
    return -1;
}

static inline size_t pair_hash(uint64_t k, size_t mask) { return (size_t)((k * 0x9e3779b97f4a7c15ULL) >> 17) & mask; }

static lf_status pairs_grow(pairmap *pm) {
    size_t cap = pm->mask ? (pm->mask + 1) * 2 : 1024;
    uint64_t *key = malloc(cap * sizeof *key);
    float *prio = malloc(cap * sizeof *prio);
    int32_t *merged = malloc(cap * sizeof *merged);
    if (!key || !prio || !merged) {
        free(key);
        free(prio);
        free(merged);
        return LF_ERR_NOMEM;
    }
    memset(key, 0xff, cap * sizeof *key);
    for (size_t i = 0; pm->mask && i <= pm->mask; i++) {
        if (pm->key[i] == UINT64_MAX) continue;
        size_t h = pair_hash(pm->key[i], cap - 1);
        while (key[h] != UINT64_MAX) h = (h + 1) & (cap - 1);
        key[h] = pm->key[i];
        prio[h] = pm->prio[i];
        merged[h] = pm->merged[i];
    }
    free(pm->key);
    free(pm->prio);
    free(pm->merged);
    pm->key = key;
    pm->prio = prio;
    pm->merged = merged;
    pm->mask = cap - 1;
    return LF_OK;
}

static lf_status pairs_put(pairmap *pm, int a, int b, float prio, int merged) {
    if ((pm->count + 1) * 2 > pm->mask + 1 && pairs_grow(pm)) return LF_ERR_NOMEM;
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t h = pair_hash(k, pm->mask);
    while (pm->key[h] != UINT64_MAX && pm->key[h] != k) h = (h + 1) & pm->mask;
    if (pm->key[h] == k) { /* keep the higher priority (lower value): the first merge rule wins */
        if (prio < pm->prio[h]) {
            pm->prio[h] = prio;
            pm->merged[h] = merged;
        }
        return LF_OK;
    }
    pm->key[h] = k;
    pm->prio[h] = prio;
    pm->merged[h] = merged;
    pm->count++;
    return LF_OK;
}

static inline int pairs_get(const pairmap *pm, int a, int b, float *prio) {
    if (!pm->mask) return -1;
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t h = pair_hash(k, pm->mask);
    while (pm->key[h] != UINT64_MAX) {
        if (pm->key[h] == k) {
            *prio = pm->prio[h];
            return pm->merged[h];
        }
        h = (h + 1) & pm->mask;
    }
    return -1;
}

lf_status lf_tok_add_merge(lf_tokenizer *t, int a, int b, float prio) {
    size_t la = (size_t)t->plen[a], lb = (size_t)t->plen[b];
    char buf[512];
    char *cat = la + lb <= sizeof buf ? buf : malloc(la + lb);
    if (!cat) return LF_ERR_NOMEM;
    memcpy(cat, t->piece[a], la);
    memcpy(cat + la, t->piece[b], lb);
    int m = lf_tok_map_find(t, cat, la + lb);
    if (cat != buf) free(cat);
    if (m < 0) return LF_ERR_NOTFOUND;
    return pairs_put(&t->pairs, a, b, prio, m);
}

void lf_tok_bytes_to_unicode(int table[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        table[b] = printable ? b : 256 + n++;
    }
}

void lf_tokenizer_free(lf_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n; i++) free(t->piece[i]);
    free(t->piece);
    free(t->plen);
    free(t->score);
    free(t->type);
    free(t->map.slot);
    free(t->pairs.key);
    free(t->pairs.prio);
    free(t->pairs.merged);
    free(t->merges);
    free(t->special_ids);
    free(t->pattern);
    if (t->re) pcre2_code_free(t->re);
    free(t);
}

static lf_tokenizer *tok_alloc(lf_tok_kind kind, int n) {
    lf_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->kind = kind;
    t->n = n;
    t->piece = calloc((size_t)n, sizeof *t->piece);
    t->plen = calloc((size_t)n, sizeof *t->plen);
    t->score = calloc((size_t)n, sizeof *t->score);
    t->type = calloc((size_t)n, sizeof *t->type);
    t->bos = t->eos = t->unk = -1;
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    if (!t->piece || !t->plen || !t->score || !t->type) {
        lf_tokenizer_free(t);
        return NULL;
    }
    return t;
}

static int set_piece(lf_tokenizer *t, int id, const char *s, size_t len, uint8_t type) {
    free(t->piece[id]);
    t->piece[id] = malloc(len + 1);
    if (!t->piece[id]) return -1;
    memcpy(t->piece[id], s, len);
    t->piece[id][len] = 0;
    t->plen[id] = (int)len;
    t->type[id] = type;
    return 0;
}

static int cmp_special_len(const void *a, const void *b, void *ctx) {
    const lf_tokenizer *t = ctx;
    return t->plen[*(const int *)b] - t->plen[*(const int *)a];
}

/* Pieces and merges are in; build lookups, specials, regex, fingerprint. */
lf_status lf_tok_finish(lf_tokenizer *t) {
    for (int i = 0; i < t->n; i++)
        if (!t->piece[i] && set_piece(t, i, "", 0, TT_CONTROL)) return LF_ERR_NOMEM; /* holes in the id space */
    if (!t->map.slot && lf_tok_map_build(t)) return LF_ERR_NOMEM;
    int ns = 0;
    for (int i = 0; i < t->n; i++) ns += (t->type[i] == TT_SPECIAL || t->type[i] == TT_CONTROL) && t->plen[i] > 0;
    free(t->special_ids);
    t->special_ids = malloc(sizeof(int) * (size_t)(ns + 1));
    if (!t->special_ids) return LF_ERR_NOMEM;
    t->n_special = 0;
    for (int i = 0; i < t->n; i++)
        if ((t->type[i] == TT_SPECIAL || t->type[i] == TT_CONTROL) && t->plen[i] > 0) t->special_ids[t->n_special++] = i;
    qsort_r(t->special_ids, (size_t)t->n_special, sizeof(int), cmp_special_len, t);
    if (t->kind == LF_TOK_BYTELEVEL) {
        for (int b = 0; b < 256; b++)
            if (t->byte_id[b] < 0) {
                lf_set_error("byte-level tokenizer has no token for byte 0x%02x", b);
                return LF_ERR_FORMAT;
            }
        int err;
        PCRE2_SIZE off;
        t->re = pcre2_compile((PCRE2_SPTR)t->pattern, PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
        if (!t->re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            lf_set_error("pre-tokenizer regex does not compile at offset %zu: %s", (size_t)off, (char *)msg);
            return LF_ERR_FORMAT;
        }
        pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is unavailable */
    } else {
        t->sp_split_ok = 1;
        for (int i = 0; i < t->n && t->sp_split_ok; i++)
            if (t->type[i] == TT_NORMAL)
                for (int k = 1; k < t->plen[i]; k++)
                    if (t->piece[i][k] == ' ' && t->piece[i][k - 1] != ' ') {
                        t->sp_split_ok = 0;
                        break;
                    }
    }
    uint64_t h = 0xcbf29ce484222325ULL;
    h = lf_tok_fnv(h, &t->kind, sizeof t->kind);
    h = lf_tok_fnv(h, &t->n, sizeof t->n);
    for (int i = 0; i < t->n; i++) {
        h = lf_tok_fnv(h, &t->type[i], 1);
        h = lf_tok_fnv(h, &t->plen[i], sizeof(int));
        h = lf_tok_fnv(h, t->piece[i], (size_t)t->plen[i]);
        if (t->kind == LF_TOK_SENTENCEPIECE) h = lf_tok_fnv(h, &t->score[i], sizeof(float));
    }
    for (int i = 0; i < t->n_merges; i++) h = lf_tok_fnv(h, t->merges[i], sizeof t->merges[i]);
    int flags[5] = {t->add_prefix_space, t->add_dummy_prefix, t->n_merges, t->sp_split_spaces, t->sp_prefix_unless_space};
    h = lf_tok_fnv(h, flags, sizeof flags);
    if (t->pattern) h = lf_tok_fnv(h, t->pattern, strlen(t->pattern));
    t->fingerprint = h;
    return LF_OK;
}

lf_tok_kind lf_tokenizer_kind(const lf_tokenizer *t) { return t->kind; }
int lf_tokenizer_vocab_size(const lf_tokenizer *t) { return t->n; }
int lf_tokenizer_bos(const lf_tokenizer *t) { return t->bos; }
int lf_tokenizer_eos(const lf_tokenizer *t) { return t->eos; }
uint64_t lf_tokenizer_fingerprint(const lf_tokenizer *t) { return t->fingerprint; }
const char *lf_tokenizer_piece(const lf_tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->n) return NULL;
    if (len) *len = (size_t)t->plen[id];
    return t->piece[id];
}
int lf_tokenizer_special(const lf_tokenizer *t, const char *content) {
    for (int i = 0; i < t->n_special; i++) {
        int id = t->special_ids[i];
        if ((size_t)t->plen[id] == strlen(content) && memcmp(t->piece[id], content, (size_t)t->plen[id]) == 0) return id;
    }
    return -1;
}

/* ---------------------------------------------------------------- encoder */

typedef struct {
    float prio;
    int32_t pos, left, right;
} heap_item;

typedef struct {
    uint64_t hash;
    uint32_t koff, klen, ioff, ni;
} cache_entry;

#define CACHE_SLOTS 65536
#define CACHE_MAX_KEY 64

struct lf_tok_encoder {
    const lf_tokenizer *t;
    pcre2_match_data *md;
    heap_item *heap;
    size_t heap_cap;
    int32_t *sym, *prev, *next;
    size_t sym_cap;
    char *norm;
    size_t norm_cap;
    cache_entry *cache;
    size_t cache_used;
    char *ckeys;
    size_t ckeys_used;
    int32_t *cids;
    size_t cids_used;
};

#define CACHE_KEY_BYTES (CACHE_SLOTS * 24)
#define CACHE_ID_SLOTS (CACHE_SLOTS * 8)

lf_status lf_tok_encoder_init(lf_tok_encoder **out, const lf_tokenizer *t) {
    lf_tok_encoder *e = calloc(1, sizeof *e);
    if (!e) return LF_ERR_NOMEM;
    e->t = t;
    if (t->re) e->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    e->cache = calloc(CACHE_SLOTS, sizeof *e->cache);
    e->ckeys = malloc(CACHE_KEY_BYTES);
    e->cids = malloc(CACHE_ID_SLOTS * sizeof(int32_t));
    if ((t->re && !e->md) || !e->cache || !e->ckeys || !e->cids) {
        lf_tok_encoder_free(e);
        lf_set_error("out of memory creating a tokenizer encoder");
        return LF_ERR_NOMEM;
    }
    *out = e;
    return LF_OK;
}

void lf_tok_encoder_free(lf_tok_encoder *e) {
    if (!e) return;
    if (e->md) pcre2_match_data_free(e->md);
    free(e->heap);
    free(e->sym);
    free(e->prev);
    free(e->next);
    free(e->norm);
    free(e->cache);
    free(e->ckeys);
    free(e->cids);
    free(e);
}

static int heap_less(const heap_item *a, const heap_item *b) {
    return a->prio < b->prio || (a->prio == b->prio && a->pos < b->pos);
}

static lf_status heap_push(lf_tok_encoder *e, size_t *n, heap_item it) {
    if (*n == e->heap_cap) {
        size_t nc = e->heap_cap ? e->heap_cap * 2 : 256;
        heap_item *p = realloc(e->heap, nc * sizeof *p);
        if (!p) return LF_ERR_NOMEM;
        e->heap = p;
        e->heap_cap = nc;
    }
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(&it, &e->heap[parent])) break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = it;
    return LF_OK;
}

static heap_item heap_pop(lf_tok_encoder *e, size_t *n) {
    heap_item top = e->heap[0], last = e->heap[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(&e->heap[c + 1], &e->heap[c])) c++;
        if (!heap_less(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (*n) e->heap[i] = last;
    return top;
}

static lf_status ensure_sym(lf_tok_encoder *e, size_t n) {
    if (n <= e->sym_cap) return LF_OK;
    size_t nc = pow2_at_least(n);
    int32_t *a = realloc(e->sym, nc * sizeof *a);
    if (a) e->sym = a;
    int32_t *b = realloc(e->prev, nc * sizeof *b);
    if (b) e->prev = b;
    int32_t *c = realloc(e->next, nc * sizeof *c);
    if (c) e->next = c;
    if (!a || !b || !c) {
        lf_set_error("out of memory: a pre-token of %zu symbols", n);
        return LF_ERR_NOMEM;
    }
    e->sym_cap = nc;
    return LF_OK;
}

/* Merge e->sym[0..n) by pair priority (leftmost first on ties) and append the result. */
static lf_status bpe(lf_tok_encoder *e, size_t n, lf_ids *out) {
    const lf_tokenizer *t = e->t;
    int32_t *sym = e->sym, *prev = e->prev, *next = e->next;
    size_t hn = 0;
    lf_status st = LF_OK;
    for (size_t i = 0; i < n; i++) {
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n && !st; i++) {
        float pr;
        if (pairs_get(&t->pairs, sym[i], sym[i + 1], &pr) >= 0)
            st = heap_push(e, &hn, (heap_item){pr, (int32_t)i, sym[i], sym[i + 1]});
    }
    while (hn && !st) {
        heap_item it = heap_pop(e, &hn);
        int32_t p = it.pos, q = next[p];
        if (sym[p] != it.left || q < 0 || sym[q] != it.right) continue; /* stale */
        float pr;
        int m = pairs_get(&t->pairs, it.left, it.right, &pr);
        sym[p] = m;
        next[p] = next[q];
        if (next[q] >= 0) prev[next[q]] = p;
        sym[q] = -1;
        if (prev[p] >= 0 && pairs_get(&t->pairs, sym[prev[p]], m, &pr) >= 0)
            st = heap_push(e, &hn, (heap_item){pr, prev[p], sym[prev[p]], m});
        if (!st && next[p] >= 0 && pairs_get(&t->pairs, m, sym[next[p]], &pr) >= 0)
            st = heap_push(e, &hn, (heap_item){pr, p, m, sym[next[p]]});
    }
    for (int32_t i = 0; i >= 0 && !st && n; i = next[i]) st = lf_ids_push(out, sym[i]);
    return st;
}

/* initial symbols of a chunk: bytes (byte-level) or characters with byte fallback */
static lf_status symbols(lf_tok_encoder *e, const unsigned char *s, size_t len, size_t *n) {
    const lf_tokenizer *t = e->t;
    lf_status st = ensure_sym(e, len);
    if (st) return st;
    size_t k = 0;
    if (t->kind == LF_TOK_BYTELEVEL) {
        for (size_t i = 0; i < len; i++) e->sym[k++] = t->byte_id[s[i]];
    } else {
        for (size_t i = 0; i < len;) {
            size_t cl = s[i] < 0x80 ? 1 : (s[i] >> 5) == 6 ? 2 : (s[i] >> 4) == 14 ? 3 : (s[i] >> 3) == 30 ? 4 : 1;
            if (i + cl > len) cl = 1;
            for (size_t j = 1; j < cl; j++)
                if ((s[i + j] & 0xc0) != 0x80) cl = 1;
            int id = lf_tok_map_find(t, (const char *)s + i, cl);
            if (id >= 0) {
                e->sym[k++] = id;
            } else {
                for (size_t j = 0; j < cl; j++) {
                    int b = t->byte_id[s[i + j]];
                    e->sym[k++] = b >= 0 ? b : (t->unk >= 0 ? t->unk : 0);
                }
            }
            i += cl;
        }
    }
    *n = k;
    return LF_OK;
}

static lf_status encode_chunk(lf_tok_encoder *e, const char *s, size_t len, lf_ids *out) {
    if (!len) return LF_OK;
    uint64_t h = 0;
    cache_entry *ce = NULL;
    if (len <= CACHE_MAX_KEY) {
        h = lf_tok_fnv(0xcbf29ce484222325ULL, s, len) | 1;
        ce = &e->cache[h & (CACHE_SLOTS - 1)];
        if (ce->hash == h && ce->klen == len && memcmp(e->ckeys + ce->koff, s, len) == 0) {
            for (uint32_t i = 0; i < ce->ni; i++) {
                lf_status st = lf_ids_push(out, e->cids[ce->ioff + i]);
                if (st) return st;
            }
            return LF_OK;
        }
    }
    size_t n, before = out->n;
    lf_status st = symbols(e, (const unsigned char *)s, len, &n);
    if (!st) st = bpe(e, n, out);
    if (st || !ce) return st;
    size_t ni = out->n - before;
    if (e->ckeys_used + len > CACHE_KEY_BYTES || e->cids_used + ni > CACHE_ID_SLOTS) { /* full: start over */
        memset(e->cache, 0, CACHE_SLOTS * sizeof *e->cache);
        e->ckeys_used = e->cids_used = 0;
    }
    memcpy(e->ckeys + e->ckeys_used, s, len);
    memcpy(e->cids + e->cids_used, out->ids + before, ni * sizeof(int32_t));
    *ce = (cache_entry){h, (uint32_t)e->ckeys_used, (uint32_t)len, (uint32_t)e->cids_used, (uint32_t)ni};
    e->ckeys_used += len;
    e->cids_used += ni;
    return LF_OK;
}

/* byte-level: regex pre-tokens; bytes the regex cannot match (invalid UTF-8) form chunks too */
static lf_status encode_bytelevel(lf_tok_encoder *e, const char *s, size_t len, lf_ids *out) {
    const lf_tokenizer *t = e->t;
    size_t pos = 0;
    lf_status st = LF_OK;
    while (pos < len && !st) {
        int rc = pcre2_match(t->re, (PCRE2_SPTR)s, len, pos, 0, e->md, NULL);
        if (rc < 0) {
            if (rc != PCRE2_ERROR_NOMATCH) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(rc, msg, sizeof msg);
                lf_set_error("pre-tokenizer regex failed: %s", (char *)msg);
                return LF_ERR_ARG;
            }
            return encode_chunk(e, s + pos, len - pos, out);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        size_t ms = ov[0], me = ov[1];
        if (ms > pos) st = encode_chunk(e, s + pos, ms - pos, out);
        if (!st) st = encode_chunk(e, s + ms, me - ms, out);
        pos = me > ms ? me : ms + 1;
    }
    return st;
}

/* sentencepiece: " " + text, merged whole, or per word when no piece crosses a word start */
static lf_status encode_sp(lf_tok_encoder *e, const char *s, size_t len, int at_start, lf_ids *out) {
    const lf_tokenizer *t = e->t;
    size_t need = len + 1;
    if (need > e->norm_cap) {
        char *p = realloc(e->norm, need);
        if (!p) return LF_ERR_NOMEM;
        e->norm = p;
        e->norm_cap = need;
    }
    size_t n = 0;
    if (t->add_dummy_prefix && at_start && len && !(t->sp_prefix_unless_space && s[0] == ' ')) e->norm[n++] = ' ';
    memcpy(e->norm + n, s, len);
    n += len;
    if (!t->sp_split_ok && !t->sp_split_spaces) return encode_chunk(e, e->norm, n, out);
    size_t start = 0;
    for (size_t i = 1; i <= n; i++)
        if (i == n || (e->norm[i] == ' ' && (t->sp_split_spaces || e->norm[i - 1] != ' '))) {
            lf_status st = encode_chunk(e, e->norm + start, i - start, out);
            if (st) return st;
            start = i;
        }
    return LF_OK;
}

static lf_status encode_plain(lf_tok_encoder *e, const char *s, size_t len, int at_start, lf_ids *out) {
    if (e->t->kind == LF_TOK_BYTELEVEL) {
        if (e->t->add_prefix_space && at_start && len && s[0] != ' ') {
            char *tmp = malloc(len + 1);
            if (!tmp) return LF_ERR_NOMEM;
            tmp[0] = ' ';
            memcpy(tmp + 1, s, len);
            lf_status st = encode_bytelevel(e, tmp, len + 1, out);
            free(tmp);
            return st;
        }
        return encode_bytelevel(e, s, len, out);
    }
    return encode_sp(e, s, len, at_start, out);
}

static lf_status encode_from(lf_tok_encoder *e, const char *text, size_t len, unsigned flags, int at_start,
                             lf_ids *out) {
    const lf_tokenizer *t = e->t;
    lf_status st = LF_OK;
    if ((flags & LF_ENC_BOS) && t->bos >= 0) st = lf_ids_push(out, t->bos);
    size_t pos = 0;
    if (flags & LF_ENC_ALLOW_SPECIAL) {
        while (pos < len && !st) { /* earliest special occurrence, longest first at a position */
            size_t best = len;
            int bid = -1;
            for (int k = 0; k < t->n_special; k++) {
                int id = t->special_ids[k];
                const char *f = memmem(text + pos, len - pos, t->piece[id], (size_t)t->plen[id]);
                if (f && (size_t)(f - text) < best) {
                    best = (size_t)(f - text);
                    bid = id;
                }
            }
            if (bid < 0) break;
            st = encode_plain(e, text + pos, best - pos, at_start && pos == 0, out);
            if (!st) st = lf_ids_push(out, bid);
            pos = best + (size_t)t->plen[bid];
        }
    }
    if (!st && pos < len) st = encode_plain(e, text + pos, len - pos, at_start && pos == 0, out);
    if (!st && (flags & LF_ENC_EOS) && t->eos >= 0) st = lf_ids_push(out, t->eos);
    return st;
}

lf_status lf_tok_encode(lf_tok_encoder *e, const char *text, size_t len, unsigned flags, lf_ids *out) {
    return encode_from(e, text, len, flags, !(flags & LF_ENC_CONTINUE), out);
}

static int plain_ascii(unsigned char c) { return c > ' ' && c < 0x7f; }

/* a position where the text can be cut without changing the ids */
static int safe_cut(const lf_tokenizer *t, const char *s, size_t i) {
    if (t->kind == LF_TOK_BYTELEVEL)
        return i >= 2 && s[i - 1] == '\n' && plain_ascii((unsigned char)s[i]) && plain_ascii((unsigned char)s[i - 2]);
    return (t->sp_split_ok || t->sp_split_spaces) && i >= 1 && s[i] == ' ' && s[i - 1] != ' ';
}

lf_status lf_tokenizer_encode_parallel(const lf_tokenizer *t, const char *text, size_t len, unsigned flags,
                                       int nthreads, lf_ids *out) {
    if (nthreads <= 1 || len < (1u << 16)) return lf_tokenizer_encode(t, text, len, flags, out);
    size_t *cut = malloc(sizeof *cut * (size_t)(nthreads + 1));
    lf_ids *part = calloc((size_t)nthreads, sizeof *part);
    lf_status *sts = calloc((size_t)nthreads, sizeof *sts);
    if (!cut || !part || !sts) {
        free(cut);
        free(part);
        free(sts);
        return LF_ERR_NOMEM;
    }
    cut[0] = 0;
    cut[nthreads] = len;
    for (int k = 1; k < nthreads; k++) {
        size_t i = len * (size_t)k / (size_t)nthreads;
        if (i < cut[k - 1]) i = cut[k - 1];
        while (i < len && !safe_cut(t, text, i)) i++;
        cut[k] = i;
    }
#pragma omp parallel for num_threads(nthreads) schedule(static, 1)
    for (int k = 0; k < nthreads; k++) {
        lf_tok_encoder *e;
        sts[k] = lf_tok_encoder_init(&e, t);
        if (sts[k]) continue;
        unsigned f = flags & LF_ENC_ALLOW_SPECIAL;
        if (k == 0) f |= flags & LF_ENC_BOS;
        if (k == nthreads - 1) f |= flags & LF_ENC_EOS;
        lf_ids mine = {0}; /* thread-local: the part[] structs share a cache line */
        sts[k] = encode_from(e, text + cut[k], cut[k + 1] - cut[k], f, k == 0, &mine);
        part[k] = mine;
        lf_tok_encoder_free(e);
    }
    lf_status st = LF_OK;
    size_t total = out->n;
    for (int k = 0; k < nthreads; k++) {
        if (!st) st = sts[k];
        total += part[k].n;
    }
    if (!st && total > out->cap) {
        int32_t *p = realloc(out->ids, total * sizeof *p);
        if (!p) st = LF_ERR_NOMEM;
        else {
            out->ids = p;
            out->cap = total;
        }
    }
    for (int k = 0; k < nthreads; k++) {
        if (!st) {
            memcpy(out->ids + out->n, part[k].ids, part[k].n * sizeof(int32_t));
            out->n += part[k].n;
        }
        lf_ids_free(&part[k]);
    }
    free(cut);
    free(part);
    free(sts);
    return st;
}

lf_status lf_tokenizer_encode(const lf_tokenizer *t, const char *text, size_t len, unsigned flags, lf_ids *out) {
    lf_tok_encoder *e;
    lf_status st = lf_tok_encoder_init(&e, t);
    if (st) return st;
    st = lf_tok_encode(e, text, len, flags, out);
    lf_tok_encoder_free(e);
    return st;
}

lf_status lf_tokenizer_decode(const lf_tokenizer *t, const int32_t *ids, size_t n, char **out, size_t *out_len) {
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n) {
            lf_set_error("token id %d at position %zu is outside the vocabulary (0..%d)", ids[i], i, t->n - 1);
            return LF_ERR_ARG;
        }
        total += (size_t)t->plen[ids[i]];
    }
    char *buf = malloc(total);
    if (!buf) return LF_ERR_NOMEM;
    size_t k = 0;
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        int id = ids[i];
        if (t->kind == LF_TOK_SENTENCEPIECE) {
            if (t->type[id] == TT_CONTROL) continue;
            if (t->type[id] == TT_BYTE) {
                buf[k++] = t->piece[id][0];
                first = 0;
                continue;
            }
            const char *p = t->piece[id];
            size_t l = (size_t)t->plen[id];
            if (first && t->add_dummy_prefix && l && p[0] == ' ') { /* the dummy prefix is not text */
                p++;
                l--;
            }
            memcpy(buf + k, p, l);
            k += l;
            first = 0;
        } else {
            memcpy(buf + k, t->piece[id], (size_t)t->plen[id]);
            k += (size_t)t->plen[id];
        }
    }
    buf[k] = 0;
    *out = buf;
    *out_len = k;
    return LF_OK;
}

/* ---------------------------------------------------------------- loaders */

/* mapped-unicode string (GPT-2 byte-level vocabulary) -> raw bytes; -1 if not a mapped string */
static int unmap_bytelevel(const char *s, char *dst, size_t *dlen, const int inv[512]) {
    size_t k = 0;
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        int cp;
        if (u[0] < 0x80) cp = *u++;
        else if ((u[0] >> 5) == 6 && (u[1] & 0xc0) == 0x80) {
            cp = ((u[0] & 0x1f) << 6) | (u[1] & 0x3f);
            u += 2;
        } else return -1;
        if (cp >= 512 || inv[cp] < 0) return -1;
        dst[k++] = (char)inv[cp];
    }
    *dlen = k;
    return 0;
}

static void inverse_table(int inv[512]) {
    int fwd[256];
    lf_tok_bytes_to_unicode(fwd);
    for (int i = 0; i < 512; i++) inv[i] = -1;
    for (int b = 0; b < 256; b++) inv[fwd[b]] = b;
}

/* "<0xAB>" -> 0xAB */
static int byte_token(const char *s, size_t len) {
    if (len != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    unsigned v;
    char hex[3] = {s[3], s[4], 0};
    char *end;
    v = (unsigned)strtoul(hex, &end, 16);
    return *end ? -1 : (int)v;
}

/* replace U+2581 (SentencePiece's space) by ' ' */
static size_t unmap_sp(const char *s, char *dst) {
    size_t k = 0;
    for (size_t i = 0; s[i];) {
        if ((unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 && (unsigned char)s[i + 2] == 0x81) {
            dst[k++] = ' ';
            i += 3;
        } else {
            dst[k++] = s[i++];
        }
    }
    return k;
}

static lf_status vocab_from_json(lf_tokenizer **out, json_t *vocab, lf_tok_kind kind, const char *path) {
    int maxid = -1;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (1 << 24)) {
            lf_set_error("%s: vocabulary entry '%.40s' has no valid id", path, key);
            return LF_ERR_FORMAT;
        }
        if (json_integer_value(v) > maxid) maxid = (int)json_integer_value(v);
    }
    if (maxid < 0) {
        lf_set_error("%s: empty vocabulary", path);
        return LF_ERR_FORMAT;
    }
    lf_tokenizer *t = tok_alloc(kind, maxid + 1);
    if (!t) return LF_ERR_NOMEM;
    int inv[512];
    inverse_table(inv);
    json_object_foreach(vocab, key, v) {
        int id = (int)json_integer_value(v);
        size_t kl = strlen(key), len;
        char *buf = malloc(kl + 1);
        if (!buf) {
            lf_tokenizer_free(t);
            return LF_ERR_NOMEM;
        }
        uint8_t type = TT_NORMAL;
        if (kind == LF_TOK_BYTELEVEL) {
            if (unmap_bytelevel(key, buf, &len, inv)) { /* not byte-mapped: literal text (added tokens) */
                memcpy(buf, key, kl);
                len = kl;
                type = TT_SPECIAL;
            }
        } else {
            int b = byte_token(key, kl);
            if (b >= 0) {
                buf[0] = (char)b;
                len = 1;
                type = TT_BYTE;
                t->byte_id[b] = id;
            } else {
                len = unmap_sp(key, buf);
            }
        }
        if (t->piece[id]) {
            free(buf);
            lf_tokenizer_free(t);
            lf_set_error("%s: id %d appears twice in the vocabulary", path, id);
            return LF_ERR_FORMAT;
        }
        int r = set_piece(t, id, buf, len, type);
        free(buf);
        if (r) {
            lf_tokenizer_free(t);
            return LF_ERR_NOMEM;
        }
        if (kind == LF_TOK_BYTELEVEL && type == TT_NORMAL && len == 1) t->byte_id[(unsigned char)t->piece[id][0]] = id;
    }
    *out = t;
    return LF_OK;
}

/* merges as "a b" strings or [a, b] arrays */
static lf_status merges_from_json(lf_tokenizer *t, json_t *merges, const char *path) {
    size_t n = json_array_size(merges);
    t->merges = malloc(sizeof *t->merges * (n ? n : 1));
    if (!t->merges) return LF_ERR_NOMEM;
    int inv[512];
    inverse_table(inv);
    if (lf_tok_map_build(t)) return LF_ERR_NOMEM;
    for (size_t r = 0; r < n; r++) {
        json_t *m = json_array_get(merges, r);
        const char *a = NULL, *b = NULL;
        char tmp[1024];
        if (json_is_string(m)) {
            snprintf(tmp, sizeof tmp, "%s", json_string_value(m));
            char *sp = strchr(tmp, ' ');
            if (sp) {
                *sp = 0;
                a = tmp;
                b = sp + 1;
            }
        } else if (json_is_array(m) && json_array_size(m) == 2) {
            a = json_string_value(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
        }
        if (!a || !b) {
            lf_set_error("%s: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", path, r);
            return LF_ERR_FORMAT;
        }
        int ids[2];
        const char *parts[2] = {a, b};
        for (int k = 0; k < 2; k++) {
            char buf[1024];
            size_t len;
            if (t->kind == LF_TOK_BYTELEVEL) {
                if (strlen(parts[k]) >= sizeof buf || unmap_bytelevel(parts[k], buf, &len, inv)) len = (size_t)-1;
            } else {
                len = strlen(parts[k]) < sizeof buf ? unmap_sp(parts[k], buf) : (size_t)-1;
            }
            ids[k] = len == (size_t)-1 ? -1 : lf_tok_map_find(t, buf, len);
            if (ids[k] < 0) {
                lf_set_error("%s: merge %zu names '%s', which is not in the vocabulary", path, r, parts[k]);
                return LF_ERR_FORMAT;
            }
        }
        lf_status st = lf_tok_add_merge(t, ids[0], ids[1], (float)r);
        if (st == LF_ERR_NOTFOUND) {
            lf_set_error("%s: merge %zu ('%s' + '%s') produces a token missing from the vocabulary", path, r, a, b);
            return LF_ERR_FORMAT;
        }
        if (st) return st;
        t->merges[t->n_merges][0] = ids[0];
        t->merges[t->n_merges][1] = ids[1];
        t->n_merges++;
    }
    return LF_OK;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        lf_set_error("%s: cannot open (%s)", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        fclose(f);
        lf_set_error("%s: read failed", path);
        return NULL;
    }
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

lf_status lf_tokenizer_load_gpt2(lf_tokenizer **out, const char *encoder_json, const char *vocab_bpe) {
    *out = NULL;
    json_error_t jerr;
    json_t *enc = json_load_file(encoder_json, 0, &jerr);
    if (!enc || !json_is_object(enc)) {
        lf_set_error("%s: %s", encoder_json, enc ? "not a JSON object of token -> id" : jerr.text);
        json_decref(enc);
        return LF_ERR_FORMAT;
    }
    lf_tokenizer *t;
    lf_status st = vocab_from_json(&t, enc, LF_TOK_BYTELEVEL, encoder_json);
    json_decref(enc);
    if (st) return st;
    size_t len;
    char *txt = slurp(vocab_bpe, &len);
    if (!txt) {
        lf_tokenizer_free(t);
        return LF_ERR_IO;
    }
    json_t *merges = json_array();
    char *save = NULL;
    int line = 0;
    for (char *l = strtok_r(txt, "\n", &save); l; l = strtok_r(NULL, "\n", &save), line++) {
        size_t ll = strlen(l);
        if (ll && l[ll - 1] == '\r') l[--ll] = 0;
        if (line == 0 && strncmp(l, "#version", 8) == 0) continue;
        if (!ll) continue;
        json_array_append_new(merges, json_string(l));
    }
    free(txt);
    st = merges_from_json(t, merges, vocab_bpe);
    json_decref(merges);
    if (!st) {
        t->pattern = strdup(GPT2_PATTERN);
        int eot = lf_tok_map_find(t, "<|endoftext|>", 13);
        if (eot >= 0) {
            t->type[eot] = TT_SPECIAL;
            t->eos = eot;
        }
        free(t->map.slot); /* rebuilt without the specials */
        t->map.slot = NULL;
        st = lf_tok_finish(t);
    }
    if (st) {
        lf_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LF_OK;
}

static const char *jstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* find a pre-tokenizer / normalizer entry of a given type, looking inside Sequence */
static json_t *find_type(json_t *node, const char *type, const char *list_key) {
    if (!json_is_object(node)) return NULL;
    const char *ty = jstr(node, "type");
    if (ty && strcmp(ty, type) == 0) return node;
    json_t *arr = json_object_get(node, list_key);
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
        json_t *r = find_type(x, type, list_key);
        if (r) return r;
    }
    return NULL;
}

static lf_status load_tokenizer_json(lf_tokenizer **out, const char *path) {
    *out = NULL;
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    if (!j) {
        lf_set_error("%s: invalid JSON at line %d: %s", path, jerr.line, jerr.text);
        return LF_ERR_FORMAT;
    }
    lf_status st = LF_ERR_FORMAT;
    lf_tokenizer *t = NULL;
    json_t *model = json_object_get(j, "model");
    json_t *pre = json_object_get(j, "pre_tokenizer"), *norm = json_object_get(j, "normalizer");
    const char *mtype = json_is_object(model) ? jstr(model, "type") : NULL;
    if (!mtype || strcmp(mtype, "BPE") != 0) {
        lf_set_error("%s: model type '%s' is not supported (lmforge reads BPE tokenizers)", path, mtype ? mtype : "none");
        goto done;
    }
    json_t *bl = find_type(pre, "ByteLevel", "pretokenizers");
    json_t *ms = find_type(pre, "Metaspace", "pretokenizers");
    json_t *prep = find_type(norm, "Prepend", "normalizers");
    int byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    lf_tok_kind kind;
    if (bl) kind = LF_TOK_BYTELEVEL;
    else if (ms || byte_fallback || find_type(norm, "Replace", "normalizers")) kind = LF_TOK_SENTENCEPIECE;
    else {
        lf_set_error("%s: neither a ByteLevel nor a SentencePiece-style (Metaspace / byte_fallback) BPE tokenizer", path);
        goto done;
    }
    if (kind == LF_TOK_BYTELEVEL && json_is_object(norm) && !find_type(norm, "NFC", "normalizers")) {
        lf_set_error("%s: normalizer '%s' is not supported for byte-level BPE", path, jstr(norm, "type"));
        goto done;
    }
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab) || !json_is_array(merges)) {
        lf_set_error("%s: model.vocab must be an object and model.merges an array", path);
        goto done;
    }
    st = vocab_from_json(&t, vocab, kind, path);
    if (st) goto done;
    /* added tokens: literal strings, special or not */
    json_t *added = json_object_get(j, "added_tokens");
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a) {
        json_t *jid = json_object_get(a, "id");
        const char *content = jstr(a, "content");
        if (!json_is_integer(jid) || !content || json_integer_value(jid) < 0 || json_integer_value(jid) >= t->n) {
            lf_set_error("%s: added_tokens[%zu] needs an id inside the vocabulary and a content", path, i);
            st = LF_ERR_FORMAT;
            goto done;
        }
        int id = (int)json_integer_value(jid);
        if (set_piece(t, id, content, strlen(content), kind == LF_TOK_SENTENCEPIECE ? TT_CONTROL : TT_SPECIAL)) {
            st = LF_ERR_NOMEM;
            goto done;
        }
    }
    st = merges_from_json(t, merges, path);
    if (st) goto done;
    if (kind == LF_TOK_BYTELEVEL) {
        t->add_prefix_space = json_is_true(json_object_get(bl, "add_prefix_space"));
        json_t *split = find_type(pre, "Split", "pretokenizers");
        const char *rx = split ? jstr(json_object_get(split, "pattern"), "Regex") : NULL;
        if (split && !rx) {
            lf_set_error("%s: Split pre-tokenizer without a Regex pattern is not supported", path);
            st = LF_ERR_FORMAT;
            goto done;
        }
        if (!split && json_is_false(json_object_get(bl, "use_regex"))) {
            lf_set_error("%s: ByteLevel pre-tokenizer with use_regex=false and no Split is not supported", path);
            st = LF_ERR_FORMAT;
            goto done;
        }
        t->pattern = strdup(rx ? rx : GPT2_PATTERN);
        /* GPT-2's end-of-text token is special even where a tokenizer.json forgot to list it among
         * added_tokens (as in the file `tokenizers` saves from encoder.json + vocab.bpe); it is
         * still plain text unless the caller allows special tokens */
        for (int k = 0; k < t->n; k++)
            if (t->plen[k] == 13 && memcmp(t->piece[k], "<|endoftext|>", 13) == 0) {
                t->type[k] = TT_SPECIAL;
                t->eos = k;
            }
    } else {
        const char *scheme = ms ? jstr(ms, "prepend_scheme") : NULL;
        json_t *split = ms ? json_object_get(ms, "split") : NULL;
        t->sp_split_spaces = ms && !json_is_false(split); /* tokenizers' default is split=true */
        t->sp_prefix_unless_space = ms && !prep; /* unlike sentencepiece's dummy prefix */
        t->add_dummy_prefix = prep != NULL || (ms && (scheme ? strcmp(scheme, "never") != 0
                                                            : !json_is_false(json_object_get(ms, "add_prefix_space"))));
        for (int k = 0; k < t->n; k++) {
            if (t->type[k] != TT_CONTROL) continue;
            if (t->plen[k] == 3 && !memcmp(t->piece[k], "<s>", 3)) t->bos = k;
            if (t->plen[k] == 4 && !memcmp(t->piece[k], "</s>", 4)) t->eos = k;
            if (t->plen[k] == 5 && !memcmp(t->piece[k], "<unk>", 5)) t->unk = k;
        }
    }
    free(t->map.slot);
    t->map.slot = NULL;
    st = lf_tok_finish(t);
done:
    json_decref(j);
    if (st) {
        char msg[1200];
        if (!strstr(lf_last_error(), path)) {
            snprintf(msg, sizeof msg, "%s: %s", path, lf_last_error());
            lf_set_error("%s", msg);
        }
        lf_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LF_OK;
}

/* llama2.c tokenizer.bin: int32 max_token_length, then per token float score, int32 len, bytes */
static lf_status load_llama2c(lf_tokenizer **out, const char *path) {
    *out = NULL;
    size_t len;
    char *b = slurp(path, &len);
    if (!b) return LF_ERR_IO;
    lf_status st = LF_ERR_FORMAT;
    int32_t maxlen;
    size_t pos = 4, count = 0;
    if (len < 4) goto bad;
    memcpy(&maxlen, b, 4);
    if (maxlen <= 0 || maxlen > 65536) goto bad;
    while (pos < len) { /* count and validate */
        int32_t l;
        if (pos + 8 > len) goto bad;
        memcpy(&l, b + pos + 4, 4);
        if (l < 0 || l > maxlen || pos + 8 + (size_t)l > len) goto bad;
        pos += 8 + (size_t)l;
        count++;
    }
    if (count < 3 || count > (1u << 24)) goto bad;
    lf_tokenizer *t = tok_alloc(LF_TOK_SENTENCEPIECE, (int)count);
    if (!t) {
        free(b);
        return LF_ERR_NOMEM;
    }
    pos = 4;
    for (size_t i = 0; i < count; i++) {
        int32_t l;
        memcpy(&t->score[i], b + pos, 4);
        memcpy(&l, b + pos + 4, 4);
        const char *s = b + pos + 8;
        uint8_t type = TT_NORMAL;
        int by = byte_token(s, (size_t)l);
        if (by >= 0) {
            type = TT_BYTE;
            t->byte_id[by] = (int)i;
        } else if ((l == 5 && !memcmp(s, "<unk>", 5)) || (l == 5 && !memcmp(s, "\n<s>\n", 5)) ||
                   (l == 6 && !memcmp(s, "\n</s>\n", 6))) {
            type = TT_CONTROL;
            if (l == 5 && s[0] == '\n') t->bos = (int)i;
            else if (l == 6) t->eos = (int)i;
            else t->unk = (int)i;
        }
        char one = by >= 0 ? (char)by : 0;
        if (set_piece(t, (int)i, by >= 0 ? &one : s, by >= 0 ? 1 : (size_t)l, type)) {
            lf_tokenizer_free(t);
            free(b);
            return LF_ERR_NOMEM;
        }
        pos += 8 + (size_t)l;
    }
    free(b);
    t->add_dummy_prefix = 1;
    st = lf_tok_map_build(t);
    /* every way of splitting a piece into two pieces is a merge, ranked by the piece's score */
    for (int i = 0; i < t->n && !st; i++) {
        if (t->type[i] != TT_NORMAL || t->plen[i] < 2) continue;
        for (int k = 1; k < t->plen[i] && !st; k++) {
            int a = lf_tok_map_find(t, t->piece[i], (size_t)k);
            int c = lf_tok_map_find(t, t->piece[i] + k, (size_t)(t->plen[i] - k));
            if (a >= 0 && c >= 0 && lf_tok_map_find(t, t->piece[i], (size_t)t->plen[i]) == i)
                st = pairs_put(&t->pairs, a, c, -t->score[i], i);
        }
    }
    if (!st) st = lf_tok_finish(t);
    if (st) {
        lf_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LF_OK;
bad:
    free(b);
    lf_set_error("%s: not a tokenizer.json, encoder.json or llama2.c tokenizer.bin (the binary layout does not parse)", path);
    return st;
}

static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

lf_status lf_tokenizer_load(lf_tokenizer **out, const char *path) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        lf_set_error("%s: %s (expected tokenizer.json, a folder with encoder.json + vocab.bpe, or tokenizer.bin)", path,
                     strerror(errno));
        return LF_ERR_IO;
    }
    char a[4200], b[4200];
    if (S_ISDIR(sb.st_mode)) {
        snprintf(a, sizeof a, "%s/tokenizer.json", path);
        if (is_file(a)) return load_tokenizer_json(out, a);
        snprintf(a, sizeof a, "%s/encoder.json", path);
        snprintf(b, sizeof b, "%s/vocab.bpe", path);
        if (is_file(a) && is_file(b)) return lf_tokenizer_load_gpt2(out, a, b);
        snprintf(a, sizeof a, "%s/tokenizer.bin", path);
        if (is_file(a)) return load_llama2c(out, a);
        lf_set_error("%s: folder has no tokenizer.json, encoder.json + vocab.bpe, or tokenizer.bin", path);
        return LF_ERR_NOTFOUND;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        lf_set_error("%s: cannot open (%s)", path, strerror(errno));
        return LF_ERR_IO;
    }
    int c;
    while ((c = fgetc(f)) == ' ' || c == '\n' || c == '\r' || c == '\t') {}
    fclose(f);
    if (c == '{') {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (strcmp(base, "encoder.json") == 0) {
            snprintf(b, sizeof b, "%.*svocab.bpe", (int)(base - path), path);
            if (!is_file(b)) {
                lf_set_error("%s: an encoder.json needs vocab.bpe beside it (%s is missing)", path, b);
                return LF_ERR_NOTFOUND;
            }
            return lf_tokenizer_load_gpt2(out, path, b);
        }
        return load_tokenizer_json(out, path);
    }
    return load_llama2c(out, path);
}

/* ---------------------------------------------------------------- tokenizer.json writer */

static json_t *bytelevel_string(const char *s, size_t len) {
    int fwd[256];
    lf_tok_bytes_to_unicode(fwd);
    char *buf = malloc(len * 2 + 1);
    if (!buf) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        int cp = fwd[(unsigned char)s[i]];
        if (cp < 0x80) buf[k++] = (char)cp;
        else {
            buf[k++] = (char)(0xC0 | (cp >> 6));
            buf[k++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    json_t *j = json_stringn(buf, k);
    free(buf);
    return j;
}

lf_status lf_tokenizer_save_json(const lf_tokenizer *t, const char *path) {
    if (t->kind != LF_TOK_BYTELEVEL) {
        lf_set_error("%s: writing SentencePiece-style tokenizers as tokenizer.json is not supported yet", path);
        return LF_ERR_ARG;
    }
    json_t *root = json_object(), *added = json_array(), *vocab = json_object(), *merges = json_array();
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "truncation", json_null());
    json_object_set_new(root, "padding", json_null());
    for (int i = 0; i < t->n; i++) {
        if (t->type[i] == TT_SPECIAL) {
            json_t *a = json_object();
            json_object_set_new(a, "id", json_integer(i));
            json_object_set_new(a, "content", json_stringn(t->piece[i], (size_t)t->plen[i]));
            json_object_set_new(a, "single_word", json_false());
            json_object_set_new(a, "lstrip", json_false());
            json_object_set_new(a, "rstrip", json_false());
            json_object_set_new(a, "normalized", json_false());
            json_object_set_new(a, "special", json_true());
            json_array_append_new(added, a);
            json_object_set_new(vocab, t->piece[i], json_integer(i));
        } else {
            json_t *s = bytelevel_string(t->piece[i], (size_t)t->plen[i]);
            json_object_set_new(vocab, json_string_value(s), json_integer(i));
            json_decref(s);
        }
    }
    /* merges as "a b" strings, the form every tokenizers version reads (the [a, b] arrays of
     * tokenizers >= 0.20 are not understood by older ones); byte-level pieces never hold a space */
    for (int r = 0; r < t->n_merges; r++) {
        json_t *a = bytelevel_string(t->piece[t->merges[r][0]], (size_t)t->plen[t->merges[r][0]]);
        json_t *b = bytelevel_string(t->piece[t->merges[r][1]], (size_t)t->plen[t->merges[r][1]]);
        size_t la = json_string_length(a), lb = json_string_length(b);
        char *m = malloc(la + lb + 2);
        if (m) {
            memcpy(m, json_string_value(a), la);
            m[la] = ' ';
            memcpy(m + la + 1, json_string_value(b), lb);
            json_array_append_new(merges, json_stringn(m, la + lb + 1));
        }
        free(m);
        json_decref(a);
        json_decref(b);
    }
    json_object_set_new(root, "added_tokens", added);
    json_object_set_new(root, "normalizer", json_null());
    json_t *bl = json_object();
    json_object_set_new(bl, "type", json_string("ByteLevel"));
    json_object_set_new(bl, "add_prefix_space", json_boolean(t->add_prefix_space));
    json_object_set_new(bl, "trim_offsets", json_true());
    int gpt2 = strcmp(t->pattern, GPT2_PATTERN) == 0;
    json_object_set_new(bl, "use_regex", json_boolean(gpt2));
    if (gpt2) {
        json_object_set_new(root, "pre_tokenizer", bl);
    } else {
        json_t *seq = json_object(), *list = json_array(), *split = json_object(), *pat = json_object();
        json_object_set_new(pat, "Regex", json_string(t->pattern));
        json_object_set_new(split, "type", json_string("Split"));
        json_object_set_new(split, "pattern", pat);
        json_object_set_new(split, "behavior", json_string("Isolated"));
        json_object_set_new(split, "invert", json_false());
        json_array_append_new(list, split);
        json_array_append_new(list, bl);
        json_object_set_new(seq, "type", json_string("Sequence"));
        json_object_set_new(seq, "pretokenizers", list);
        json_object_set_new(root, "pre_tokenizer", seq);
    }
    json_object_set_new(root, "post_processor", json_null());
    json_t *dec = json_object();
    json_object_set_new(dec, "type", json_string("ByteLevel"));
    json_object_set_new(dec, "add_prefix_space", json_true());
    json_object_set_new(dec, "trim_offsets", json_true());
    json_object_set_new(dec, "use_regex", json_true());
    json_object_set_new(root, "decoder", dec);
    json_t *model = json_object();
    json_object_set_new(model, "type", json_string("BPE"));
    json_object_set_new(model, "dropout", json_null());
    json_object_set_new(model, "unk_token", json_null());
    json_object_set_new(model, "continuing_subword_prefix", json_null());
    json_object_set_new(model, "end_of_word_suffix", json_null());
    json_object_set_new(model, "fuse_unk", json_false());
    json_object_set_new(model, "byte_fallback", json_false());
    json_object_set_new(model, "ignore_merges", json_false());
    json_object_set_new(model, "vocab", vocab);
    json_object_set_new(model, "merges", merges);
    json_object_set_new(root, "model", model);
    char *s = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(root);
    if (!s) return LF_ERR_NOMEM;
    lf_status st = lf_write_file_atomic(path, s, strlen(s));
    free(s);
    return st;
}
