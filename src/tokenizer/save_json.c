/* lf_tokenizer_save_json: writes a byte-level BPE tokenizer as a Hugging Face tokenizer.json
 * (vocabulary in GPT-2's byte-to-unicode mapping, merges as "a b" strings, the pre-tokenizer
 * regex as a Split when it is not GPT-2's), atomically. */
#include "tok_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

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
    /* the vocabulary: normal pieces under their byte-to-unicode names; then each special token in
     * added_tokens, and in the vocabulary too unless its literal text is already a normal piece's
     * name there (it would replace that piece: the file would not load again). Holes in the id
     * space (empty control pieces) are left out. */
    for (int i = 0; i < t->n; i++) {
        if (t->type[i] == TT_SPECIAL || (t->type[i] == TT_CONTROL && t->plen[i] == 0)) continue;
        json_t *s = bytelevel_string(t->piece[i], (size_t)t->plen[i]);
        if (!s) continue;
        json_object_set_new(vocab, json_string_value(s), json_integer(i));
        json_decref(s);
    }
    for (int i = 0; i < t->n; i++) {
        if (t->type[i] != TT_SPECIAL) continue;
        json_t *a = json_object();
        json_object_set_new(a, "id", json_integer(i));
        json_object_set_new(a, "content", json_stringn(t->piece[i], (size_t)t->plen[i]));
        json_object_set_new(a, "single_word", json_false());
        json_object_set_new(a, "lstrip", json_false());
        json_object_set_new(a, "rstrip", json_false());
        json_object_set_new(a, "normalized", json_false());
        json_object_set_new(a, "special", json_true());
        json_array_append_new(added, a);
        if (!json_object_get(vocab, t->piece[i])) json_object_set_new(vocab, t->piece[i], json_integer(i));
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
