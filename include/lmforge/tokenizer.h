/* lmforge tokenizers: byte-level BPE (GPT-2 encoder.json + vocab.bpe, Hugging Face
 * tokenizer.json) with pre-tokenization by PCRE2 (UTF + UCP, JIT), and SentencePiece-style BPE
 * with byte fallback (llama2.c tokenizer.bin, Hugging Face tokenizer.json of type BPE with
 * byte_fallback). One merge engine serves both: a symbol sequence is merged by pair priority
 * (merge rank, or negated piece score) with a heap, leftmost first on ties.
 *
 * A loaded lf_tokenizer is immutable and may be shared by threads; each thread encodes through
 * its own lf_tok_encoder (PCRE2 match data, scratch, a cache of recent pre-tokens). */
#ifndef LMFORGE_TOKENIZER_H
#define LMFORGE_TOKENIZER_H

#include "lmforge/core.h"

typedef enum { LF_TOK_BYTELEVEL = 1, LF_TOK_SENTENCEPIECE = 2 } lf_tok_kind;

enum {
    LF_ENC_BOS = 1u << 0,           /* prepend BOS (if the tokenizer has one) */
    LF_ENC_EOS = 1u << 1,           /* append EOS */
    LF_ENC_ALLOW_SPECIAL = 1u << 2, /* recognise special tokens such as <|endoftext|> in the text */
    LF_ENC_CONTINUE = 1u << 3,      /* the text continues earlier text: no dummy prefix / prefix space */
};

typedef struct {
    int32_t *ids;
    size_t n, cap;
} lf_ids;
lf_status lf_ids_push(lf_ids *v, int32_t id);
void lf_ids_free(lf_ids *v);

typedef struct lf_tokenizer lf_tokenizer;
typedef struct lf_tok_encoder lf_tok_encoder;

/* Detects the kind from the content: a tokenizer.json, a folder holding tokenizer.json or
 * encoder.json + vocab.bpe, or a llama2.c tokenizer.bin. */
lf_status lf_tokenizer_load(lf_tokenizer **out, const char *path);
lf_status lf_tokenizer_load_gpt2(lf_tokenizer **out, const char *encoder_json, const char *vocab_bpe);
void lf_tokenizer_free(lf_tokenizer *t);

lf_tok_kind lf_tokenizer_kind(const lf_tokenizer *t);
int lf_tokenizer_vocab_size(const lf_tokenizer *t);
int lf_tokenizer_bos(const lf_tokenizer *t); /* -1 when none */
int lf_tokenizer_eos(const lf_tokenizer *t); /* -1 when none; byte-level: <|endoftext|> */
/* the token id of a special token's text, or -1 */
int lf_tokenizer_special(const lf_tokenizer *t, const char *content);
/* 64-bit hash of everything that decides the ids: kind, vocabulary, merges, specials */
uint64_t lf_tokenizer_fingerprint(const lf_tokenizer *t);
/* bytes a token decodes to (for byte-level: the raw bytes) */
const char *lf_tokenizer_piece(const lf_tokenizer *t, int id, size_t *len);

lf_status lf_tok_encoder_init(lf_tok_encoder **out, const lf_tokenizer *t);
void lf_tok_encoder_free(lf_tok_encoder *e);
/* Appends the ids of text[0..len) to out. Any bytes are accepted (invalid UTF-8 included: for
 * byte-level BPE decode(encode(x)) == x for every byte string). */
lf_status lf_tok_encode(lf_tok_encoder *e, const char *text, size_t len, unsigned flags, lf_ids *out);
/* one-shot convenience (builds and frees an encoder) */
lf_status lf_tokenizer_encode(const lf_tokenizer *t, const char *text, size_t len, unsigned flags, lf_ids *out);

/* Same ids as lf_tokenizer_encode, computed by nthreads threads on slices of the text cut only
 * where pre-tokenization cannot cross (byte-level: after "\n" between printable non-space ASCII;
 * SentencePiece: at a word start). */
lf_status lf_tokenizer_encode_parallel(const lf_tokenizer *t, const char *text, size_t len, unsigned flags,
                                       int nthreads, lf_ids *out);

/* Decodes into a malloc'd buffer (*out, *out_len; NUL-terminated for convenience). */
lf_status lf_tokenizer_decode(const lf_tokenizer *t, const int32_t *ids, size_t n, char **out, size_t *out_len);

/* A tokenizer from GGUF metadata (tokenizer.ggml.*), parsed by the GGUF reader: model "gpt2"
 * (byte-level BPE; pre "gpt2"/"default" or "smollm", which isolates every digit) or "llama"
 * (SentencePiece with scores). Strings are not NUL-terminated. */
typedef struct {
    const char *path;  /* for messages */
    const char *model, *pre; /* NUL-terminated, pre may be NULL */
    int n;
    const char *const *tok;
    const size_t *tok_len;
    const int32_t *types; /* may be NULL */
    const float *scores;  /* may be NULL */
    int n_merges;
    const char *const *merge;
    const size_t *merge_len;
    int bos, eos, unk;    /* -1 when absent */
    int add_space_prefix; /* SentencePiece dummy prefix */
} lf_tok_gguf_spec;
lf_status lf_tokenizer_from_gguf(lf_tokenizer **out, const lf_tok_gguf_spec *s);

/* The inverse: a tokenizer as llama.cpp's converter writes it into tokenizer.ggml.* (byte-level
 * pieces in GPT-2's byte-to-unicode form with merges "a b"; SentencePiece pieces with U+2581 for
 * space, bytes as <0xAB>, scores), token types 1 normal, 2 unknown, 3 control, 5 unused (ids
 * without a piece, and ids n..n_vocab-1 when the model's vocabulary is larger), 6 byte. The
 * pre-tokenizer regex must be one llama.cpp names ("gpt-2", "smollm"); LF_ERR_ARG otherwise. */
typedef struct {
    const char *model, *pre; /* "gpt2" or "llama"; pre NULL for SentencePiece */
    int n;
    const char **tok;        /* (n) not NUL-terminated */
    size_t *tok_len;
    int32_t *types;          /* (n) */
    float *scores;           /* (n) SentencePiece; NULL for byte-level */
    int n_merges;
    const char **merge;      /* byte-level */
    size_t *merge_len;
    int bos, eos, unk;       /* -1 when none */
    int add_bos, add_space_prefix;
    char *mem;               /* owns the strings */
} lf_tok_gguf_vocab;
lf_status lf_tokenizer_to_gguf(const lf_tokenizer *t, int n_vocab, lf_tok_gguf_vocab *out);
void lf_tok_gguf_vocab_free(lf_tok_gguf_vocab *v);

/* Writes a Hugging Face tokenizer.json (atomic). */
lf_status lf_tokenizer_save_json(const lf_tokenizer *t, const char *path);

/* Byte-level BPE training with the GPT-2 pre-tokenizer. The vocabulary is the 256 bytes, then
 * the learned merges, then the special tokens (default: <|endoftext|>). */
typedef struct {
    int vocab_size;       /* total, including 256 bytes and specials */
    int min_frequency;    /* a pair must occur at least this often to be merged (default 2) */
    const char *const *specials;
    int n_specials;
    int quiet;            /* no progress on stderr */
} lf_bpe_train_opts;
lf_status lf_tokenizer_train_bpe(lf_tokenizer **out, const char *const *files, int nfiles, const lf_bpe_train_opts *o);

#endif
