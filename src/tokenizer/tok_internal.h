/* Tokenizer internals shared by the loader/encoder (tokenizer.c) and the trainer (train.c). */
#ifndef LF_TOK_INTERNAL_H
#define LF_TOK_INTERNAL_H

#include "lmforge/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

enum { TT_NORMAL = 0, TT_BYTE = 1, TT_CONTROL = 2, TT_SPECIAL = 3 };

#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

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

/* shared helpers */
uint64_t lf_tok_fnv(uint64_t h, const void *p, size_t n);
lf_status lf_tok_map_build(lf_tokenizer *t); /* string -> id over the normal pieces */
int lf_tok_map_find(const lf_tokenizer *t, const char *s, size_t len);
lf_status lf_tok_finish(lf_tokenizer *t); /* builds maps, compiles the regex, fingerprints */
lf_status lf_tok_add_merge(lf_tokenizer *t, int a, int b, float prio);
void lf_tok_bytes_to_unicode(int table[256]);

#endif
