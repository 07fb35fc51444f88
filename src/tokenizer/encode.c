/* Encoding and decoding: pre-tokenization (the byte-level regex, or SentencePiece-style words
 * with a dummy prefix), special tokens in the text, the heap-driven BPE merge engine with a
 * per-encoder chunk cache, the multi-threaded encoder that cuts text at safe points, and decode. */
#define _GNU_SOURCE /* memmem */
#include "tok_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- token id lists (the encoder's output) */

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
    size_t nc = lf_tok_pow2_at_least(n);
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
        if (lf_tok_pairs_get(&t->pairs, sym[i], sym[i + 1], &pr) >= 0)
            st = heap_push(e, &hn, (heap_item){pr, (int32_t)i, sym[i], sym[i + 1]});
    }
    while (hn && !st) {
        heap_item it = heap_pop(e, &hn);
        int32_t p = it.pos, q = next[p];
        if (sym[p] != it.left || q < 0 || sym[q] != it.right) continue; /* stale */
        float pr;
        int m = lf_tok_pairs_get(&t->pairs, it.left, it.right, &pr);
        sym[p] = m;
        next[p] = next[q];
        if (next[q] >= 0) prev[next[q]] = p;
        sym[q] = -1;
        if (prev[p] >= 0 && lf_tok_pairs_get(&t->pairs, sym[prev[p]], m, &pr) >= 0)
            st = heap_push(e, &hn, (heap_item){pr, prev[p], sym[prev[p]], m});
        if (!st && next[p] >= 0 && lf_tok_pairs_get(&t->pairs, m, sym[next[p]], &pr) >= 0)
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
        for (size_t i = 0; i < len; i++)
            if (t->byte_id[s[i]] >= 0) e->sym[k++] = t->byte_id[s[i]]; /* a byte without a token is dropped */
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

/* bytes of the UTF-8 character at s[0] (1 for an invalid or truncated sequence) */
static size_t utf8_char_len(const unsigned char *s, size_t avail) {
    size_t cl = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3 : (s[0] >> 3) == 30 ? 4 : 1;
    if (cl > avail) return 1;
    for (size_t j = 1; j < cl; j++)
        if ((s[j] & 0xc0) != 0x80) return 1;
    return cl;
}

/* byte-level: regex pre-tokens, and the text between matches (bytes the regex does not match,
 * invalid UTF-8 included) as chunks of their own, as Hugging Face's Split(Isolated) does. Every
 * byte lands in exactly one chunk whatever the regex: an empty match cuts the text there (as in
 * Hugging Face) and moves the search on by one character, which stays in the next in-between
 * chunk, so decode(encode(x)) == x also for a regex that can match the empty string. */
static lf_status encode_bytelevel(lf_tok_encoder *e, const char *s, size_t len, lf_ids *out) {
    const lf_tokenizer *t = e->t;
    size_t pos = 0, done = 0; /* search from pos; bytes before done are encoded */
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
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        size_t ms = ov[0], me = ov[1];
        if (ms < pos || me < ms || me > len) { /* \K in a lookahead can report such matches: treat as no match */
            lf_set_error("pre-tokenizer regex reported a match outside the searched text");
            return LF_ERR_ARG;
        }
        if (me == ms) { /* empty: a cut, then search again one character later */
            if (ms > done) st = encode_chunk(e, s + done, ms - done, out);
            done = ms;
            if (ms >= len) break; /* at the end of the text */
            pos = ms + utf8_char_len((const unsigned char *)s + ms, len - ms);
            continue;
        }
        if (ms > done) st = encode_chunk(e, s + done, ms - done, out);
        if (!st) st = encode_chunk(e, s + ms, me - ms, out);
        done = pos = me;
    }
    if (!st && done < len) st = encode_chunk(e, s + done, len - done, out);
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
    /* the safe cuts are known for GPT-2's regex; another regex may match across them */
    if (nthreads <= 1 || len < (1u << 16) || (t->kind == LF_TOK_BYTELEVEL && strcmp(t->pattern, GPT2_PATTERN) != 0))
        return lf_tokenizer_encode(t, text, len, flags, out);
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
