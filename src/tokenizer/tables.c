/* Tokenizer tables: the piece -> id map, the pair -> merge map, setting pieces,
 * finishing a loaded or trained tokenizer (special tokens longest first, the pre-tokenizer regex,
 * the fingerprint), the accessors, and freeing. The loaders (load.c) and the trainer (train.c)
 * fill these tables; the encoder (encode.c) reads them. */
#define _GNU_SOURCE /* qsort_r */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- tables */

lf_status lf_tok_map_build(lf_tokenizer *t) {
    size_t cap = lf_tok_pow2_at_least((size_t)t->n * 2 + 2);
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
        size_t h = lf_tok_pair_hash(pm->key[i], cap - 1);
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

lf_status lf_tok_pairs_put(pairmap *pm, int a, int b, float prio, int merged) {
    if ((pm->count + 1) * 2 > pm->mask + 1 && pairs_grow(pm)) return LF_ERR_NOMEM;
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t h = lf_tok_pair_hash(k, pm->mask);
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
    return lf_tok_pairs_put(&t->pairs, a, b, prio, m);
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

int lf_tok_set_piece(lf_tokenizer *t, int id, const char *s, size_t len, uint8_t type) {
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
        if (!t->piece[i] && lf_tok_set_piece(t, i, "", 0, TT_CONTROL)) return LF_ERR_NOMEM; /* holes in the id space */
    if (!t->map.slot && lf_tok_map_build(t)) return LF_ERR_NOMEM;
    /* the byte table from the final pieces: an added token may have replaced a byte's piece, and a
     * byte's id must decode to that byte (byte-level: the first normal one-byte piece, as in the
     * map; SentencePiece: the first <0xAB> piece) */
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (int i = 0; i < t->n; i++) {
        int want = t->kind == LF_TOK_BYTELEVEL ? TT_NORMAL : TT_BYTE;
        if (t->type[i] == want && t->plen[i] == 1 && t->byte_id[(unsigned char)t->piece[i][0]] < 0)
            t->byte_id[(unsigned char)t->piece[i][0]] = i;
    }
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
        /* a vocabulary may lack a few bytes (SmolLM2's lacks 21, control characters and bytes that
         * never occur in UTF-8): encoding drops them, as Hugging Face tokenizers (no unk token) and
         * llama.cpp do, whether it came from a GGUF or from the tokenizer.json convert wrote; but a
         * vocabulary without most bytes, or without ' ' and 'a', is not byte-level */
        int missing = 0;
        for (int b = 0; b < 256; b++) missing += t->byte_id[b] < 0;
        if (missing > 64 || t->byte_id[' '] < 0 || t->byte_id['a'] < 0) {
            lf_set_error("byte-level tokenizer lacks tokens for %d of the 256 bytes (not a byte-level vocabulary?)", missing);
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
