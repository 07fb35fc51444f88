/* lf_tokenizer_to_gguf: a tokenizer in the form llama.cpp's converter gives tokenizer.ggml.*, so that
 * the GGUF writer (src/ckpt/gguf_write.c) stores it and lf_tokenizer_from_gguf reads the same ids
 * back. One buffer holds every string; the arrays point into it. */
#include "tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GT_NORMAL = 1, GT_UNKNOWN = 2, GT_CONTROL = 3, GT_UNUSED = 5, GT_BYTE = 6 };

/* raw bytes -> GPT-2's byte-to-unicode text (every mapped code point is below 0x800: 1 or 2 bytes) */
static size_t put_bytelevel(char *dst, const char *s, size_t len, const int fwd[256]) {
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        int cp = fwd[(unsigned char)s[i]];
        if (cp < 0x80) dst[k++] = (char)cp;
        else {
            dst[k++] = (char)(0xC0 | (cp >> 6));
            dst[k++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    return k;
}

/* ' ' -> U+2581, SentencePiece's visible space */
static size_t put_sp(char *dst, const char *s, size_t len) {
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') {
            memcpy(dst + k, "\xE2\x96\x81", 3);
            k += 3;
        } else dst[k++] = s[i];
    }
    return k;
}

void lf_tok_gguf_vocab_free(lf_tok_gguf_vocab *v) {
    free(v->tok);
    free(v->tok_len);
    free(v->types);
    free(v->scores);
    free(v->merge);
    free(v->merge_len);
    free(v->mem);
    memset(v, 0, sizeof *v);
}

lf_status lf_tokenizer_to_gguf(const lf_tokenizer *t, int n_vocab, lf_tok_gguf_vocab *v) {
    memset(v, 0, sizeof *v);
    int bl = t->kind == LF_TOK_BYTELEVEL;
    if (n_vocab < t->n) {
        lf_set_error("tokenizer: %d tokens do not fit the model's vocabulary of %d", t->n, n_vocab);
        return LF_ERR_ARG;
    }
    if (bl) {
        /* llama.cpp picks the pre-tokenizer regex by name; these are the two lmforge's reader maps back */
        if (!strcmp(t->pattern, GPT2_PATTERN)) v->pre = "gpt-2";
        else if (!strcmp(t->pattern, SMOLLM_PATTERN)) v->pre = "smollm";
        else {
            lf_set_error("tokenizer: its pre-tokenizer regex '%.80s' has no llama.cpp name (lmforge writes GPT-2's "
                         "and SmolLM's, 'gpt-2' and 'smollm'); export without the tokenizer or retrain it", t->pattern);
            return LF_ERR_ARG;
        }
    }
    v->model = bl ? "gpt2" : "llama";
    size_t total = 0;
    for (int i = 0; i < t->n; i++) total += 3 * (size_t)t->plen[i] + 24;
    total += 24 * (size_t)(n_vocab - t->n);
    for (int r = 0; bl && r < t->n_merges; r++) total += 2 * (size_t)(t->plen[t->merges[r][0]] + t->plen[t->merges[r][1]]) + 1;
    size_t nv = (size_t)n_vocab, nm = bl ? (size_t)t->n_merges : 0;
    v->mem = malloc(total ? total : 1);
    v->tok = malloc(nv * sizeof *v->tok);
    v->tok_len = malloc(nv * sizeof *v->tok_len);
    v->types = malloc(nv * sizeof *v->types);
    v->scores = bl ? NULL : malloc(nv * sizeof *v->scores);
    v->merge = malloc((nm ? nm : 1) * sizeof *v->merge);
    v->merge_len = malloc((nm ? nm : 1) * sizeof *v->merge_len);
    if (!v->mem || !v->tok || !v->tok_len || !v->types || (!bl && !v->scores) || !v->merge || !v->merge_len) {
        lf_tok_gguf_vocab_free(v);
        lf_set_error("tokenizer: out of memory for the GGUF vocabulary");
        return LF_ERR_NOMEM;
    }
    int fwd[256];
    lf_tok_bytes_to_unicode(fwd);
    char *p = v->mem;
    for (int i = 0; i < n_vocab; i++) {
        const char *s = i < t->n ? t->piece[i] : NULL;
        size_t len = i < t->n ? (size_t)t->plen[i] : 0, k;
        int ty = i < t->n ? t->type[i] : TT_CONTROL;
        int32_t gt;
        if (ty == TT_CONTROL && len == 0) { /* a hole in the id space: the converter's padding token */
            k = (size_t)snprintf(p, 24, "[PAD%d]", i);
            gt = GT_UNUSED;
        } else if (ty == TT_SPECIAL || ty == TT_CONTROL) {
            memcpy(p, s, len);
            k = len;
            gt = !bl && i == t->unk ? GT_UNKNOWN : GT_CONTROL;
        } else if (ty == TT_BYTE) {
            k = (size_t)snprintf(p, 24, "<0x%02X>", (unsigned char)s[0]);
            gt = GT_BYTE;
        } else {
            k = bl ? put_bytelevel(p, s, len, fwd) : put_sp(p, s, len);
            gt = !bl && i == t->unk ? GT_UNKNOWN : GT_NORMAL;
        }
        v->tok[i] = p;
        v->tok_len[i] = k;
        v->types[i] = gt;
        if (v->scores) v->scores[i] = i < t->n ? t->score[i] : 0.0f;
        p += k;
    }
    /* A SentencePiece-style vocabulary read from a tokenizer.json has merges in rank order but no
     * scores, and llama.cpp (like our GGUF reader) merges by score: the piece the r-th merge makes
     * scores -r, the first merge highest, so the order of merging stays the same. */
    int scored = 0;
    for (int i = 0; !bl && i < t->n; i++) scored |= t->score[i] != 0.0f;
    if (!bl && !scored && t->n_merges > 0) {
        float floor = -(float)t->n_merges - 1.0f;
        size_t most = 0;
        for (int i = 0; i < t->n; i++) {
            v->scores[i] = t->type[i] == TT_NORMAL ? floor : 0.0f;
            if ((size_t)t->plen[i] > most) most = (size_t)t->plen[i];
        }
        char *cat = malloc(2 * most + 1);
        if (!cat) {
            lf_tok_gguf_vocab_free(v);
            lf_set_error("tokenizer: out of memory for the GGUF vocabulary");
            return LF_ERR_NOMEM;
        }
        for (int r = 0; r < t->n_merges; r++) {
            int a = t->merges[r][0], b = t->merges[r][1];
            memcpy(cat, t->piece[a], (size_t)t->plen[a]);
            memcpy(cat + t->plen[a], t->piece[b], (size_t)t->plen[b]);
            int m = lf_tok_map_find(t, cat, (size_t)(t->plen[a] + t->plen[b]));
            if (m >= 0 && v->scores[m] == floor) v->scores[m] = -(float)r;
        }
        free(cat);
    }
    for (size_t r = 0; r < nm; r++) {
        int a = t->merges[r][0], b = t->merges[r][1];
        char *m = p;
        p += put_bytelevel(p, t->piece[a], (size_t)t->plen[a], fwd);
        *p++ = ' ';
        p += put_bytelevel(p, t->piece[b], (size_t)t->plen[b], fwd);
        v->merge[r] = m;
        v->merge_len[r] = (size_t)(p - m);
    }
    LF_ASSERT((size_t)(p - v->mem) <= total);
    v->n = n_vocab;
    v->n_merges = (int)nm;
    v->bos = t->bos;
    v->eos = t->eos;
    v->unk = t->unk;
    /* lmforge's eval and generate prepend BOS for SentencePiece vocabularies only; so does llama.cpp by default */
    v->add_bos = !bl && t->bos >= 0;
    v->add_space_prefix = bl ? 0 : t->add_dummy_prefix;
    return LF_OK;
}
