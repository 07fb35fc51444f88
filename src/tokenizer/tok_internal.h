/* Tokenizer internals shared by the tables (tables.c), the encoder (encode.c), the loaders
 * (load.c), the tokenizer.json writer (save_json.c) and the trainer (train.c). */
#ifndef LF_TOK_INTERNAL_H
#define LF_TOK_INTERNAL_H

#include "lmforge/tokenizer.h"

#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

enum { TT_NORMAL = 0, TT_BYTE = 1, TT_CONTROL = 2, TT_SPECIAL = 3 };

#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
/* llama.cpp's "smollm" pre-tokenizer (and its kin starcoder, refact, ...): every digit alone, then GPT-2's */
#define SMOLLM_PATTERN "\\p{N}|'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?![^\\s\\p{N}])|\\s+"

typedef struct {
    uint32_t *slot; /* id + 1, 0 = empty */
    size_t mask;
} strmap;

typedef struct {
    uint64_t *key; /* (a << 32) | b, UINT64_MAX = empty */
    float *prio;
    int32_t *merged;
    size_t mask, count;
} pairmap;

struct lf_tokenizer {
    lf_tok_kind kind;
    int n;
    char **piece;
    int *plen;
    float *score;
    uint8_t *type;
    strmap map;       /* normal pieces only */
    pairmap pairs;
    int32_t (*merges)[2]; /* byte-level: merges in rank order (for saving) */
    int n_merges;
    int byte_id[256];
    int bos, eos, unk;
    int *special_ids; /* recognised in text when allowed, longest first */
    int n_special;
    char *pattern;
    pcre2_code *re;
    int add_prefix_space; /* byte-level */
    int add_dummy_prefix; /* sentencepiece */
    int sp_split_ok;      /* no piece has a non-space followed by a space: chunking at words is exact */
    int sp_split_spaces;  /* Metaspace(split=true): every space starts a new word, merges never cross */
    int sp_prefix_unless_space; /* Metaspace: the prefix is added only if the text does not start with one */
    uint64_t fingerprint;
};

/* shared helpers (tables.c) */
lf_status lf_tok_map_build(lf_tokenizer *t); /* string -> id over the normal pieces */
lf_status lf_tok_finish(lf_tokenizer *t); /* builds maps, compiles the regex, fingerprints */
lf_status lf_tok_add_merge(lf_tokenizer *t, int a, int b, float prio);
void lf_tok_bytes_to_unicode(int table[256]);
/* piece id := s[0..len) of the given type (a copy); -1 when out of memory */
int lf_tok_set_piece(lf_tokenizer *t, int id, const char *s, size_t len, uint8_t type);
/* pair (a, b) -> merged with priority prio (lower first); a repeated pair keeps the lower prio */
lf_status lf_tok_pairs_put(pairmap *pm, int a, int b, float prio, int merged);

/* inline below: the encoder calls these per character / pre-token */
static inline uint64_t lf_tok_fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static inline int lf_tok_map_find(const lf_tokenizer *t, const char *s, size_t len) {
    size_t h = lf_tok_fnv(0xcbf29ce484222325ULL, s, len) & t->map.mask;
    while (t->map.slot[h]) {
        uint32_t j = t->map.slot[h] - 1;
        if ((size_t)t->plen[j] == len && memcmp(t->piece[j], s, len) == 0) return (int)j;
        h = (h + 1) & t->map.mask;
    }
    return -1;
}

static inline size_t lf_tok_pow2_at_least(size_t n) {
    size_t m = 16;
    while (m < n) m <<= 1;
    return m;
}

static inline size_t lf_tok_pair_hash(uint64_t k, size_t mask) { return (size_t)((k * 0x9e3779b97f4a7c15ULL) >> 17) & mask; }

/* the merged id of pair (a, b) and its priority, or -1 (inline: the merge engine's inner loop) */
static inline int lf_tok_pairs_get(const pairmap *pm, int a, int b, float *prio) {
    if (!pm->mask) return -1;
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t h = lf_tok_pair_hash(k, pm->mask);
    while (pm->key[h] != UINT64_MAX) {
        if (pm->key[h] == k) {
            *prio = pm->prio[h];
            return pm->merged[h];
        }
        h = (h + 1) & pm->mask;
    }
    return -1;
}

/* Whether a byte-level vocabulary has a token for every byte of s: only then does
 * decode(encode(s)) give s back, since a byte without a token is dropped at encode. */
static inline int lf_tok_covers(const lf_tokenizer *t, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (t->byte_id[(unsigned char)s[i]] < 0) return 0;
    return 1;
}

#endif
