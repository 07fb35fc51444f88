/* Tokenizer loaders: tokenizer.json (byte-level BPE, or SentencePiece-style BPE with Metaspace /
 * byte_fallback), GPT-2's encoder.json + vocab.bpe, llama2.c's tokenizer.bin, and
 * lf_tokenizer_load, which picks one by looking at a file or a folder. */
#include "tok_internal.h"
#include "lmforge/ckpt.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- loaders */

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
    memset(t->type, TT_CONTROL, (size_t)n); /* ids no entry names stay holes (never looked up as text) */
    return t;
}

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

/* A vocabulary key (mapped-unicode text for byte-level BPE, SentencePiece text otherwise) as the
 * piece's bytes in buf (room for kl bytes: unmapping never lengthens) and its type. A byte-level
 * key that does not unmap (added tokens, or one with a NUL inside) stays literal text, special;
 * a SentencePiece <0xAB> piece is that byte's token. */
static uint8_t piece_of_key(lf_tokenizer *t, int id, const char *key, size_t kl, char *buf, size_t *len, const int inv[512]) {
    if (t->kind == LF_TOK_BYTELEVEL) {
        if (strlen(key) == kl && !unmap_bytelevel(key, buf, len, inv)) return TT_NORMAL;
        memcpy(buf, key, kl);
        *len = kl;
        return TT_SPECIAL;
    }
    int b = byte_token(key, kl);
    if (b >= 0) {
        buf[0] = (char)b;
        *len = 1;
        t->byte_id[b] = id;
        return TT_BYTE;
    }
    *len = unmap_sp(key, buf);
    return TT_NORMAL;
}

/* min_n: ids below it exist even without a vocabulary entry (added tokens may lie past it) */
static lf_status vocab_from_json(lf_tokenizer **out, json_t *vocab, lf_tok_kind kind, const char *path, int min_n,
                                 size_t more_entries) {
    int maxid = min_n - 1;
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
    /* the tables are sized by the largest id: validate before allocating, so that a few entries
     * with ids like 16000000 cannot commit hundreds of MB */
    size_t entries = json_object_size(vocab) + more_entries;
    if ((size_t)maxid + 1 > 2 * entries + 256) {
        lf_set_error("%s: vocabulary ids are sparse (%zu entries, largest id %d): ids must run 0..n-1 with few gaps",
                     path, entries, maxid);
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
        uint8_t type = piece_of_key(t, id, key, kl, buf, &len, inv);
        if (t->piece[id]) {
            free(buf);
            lf_tokenizer_free(t);
            lf_set_error("%s: id %d appears twice in the vocabulary", path, id);
            return LF_ERR_FORMAT;
        }
        int r = lf_tok_set_piece(t, id, buf, len, type);
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

/* a merge's part (mapped-unicode or SentencePiece text) -> piece id, or -1; buf has room for
 * len(part) bytes (unmapping never lengthens) */
static int merge_part_id(const lf_tokenizer *t, const char *part, char *buf, const int inv[512]) {
    size_t len;
    if (t->kind == LF_TOK_BYTELEVEL) {
        if (unmap_bytelevel(part, buf, &len, inv)) return -1;
    } else {
        len = unmap_sp(part, buf);
    }
    return lf_tok_map_find(t, buf, len);
}

/* merges as "a b" strings or [a, b] arrays (any length: nothing is cut) */
static lf_status merges_from_json(lf_tokenizer *t, json_t *merges, const char *path) {
    size_t n = json_array_size(merges);
    t->merges = malloc(sizeof *t->merges * (n ? n : 1));
    if (!t->merges) return LF_ERR_NOMEM;
    int inv[512];
    inverse_table(inv);
    if (lf_tok_map_build(t)) return LF_ERR_NOMEM;
    char *tmp = NULL, *buf = NULL;
    size_t cap = 0;
    lf_status st = LF_OK;
    for (size_t r = 0; r < n && !st; r++) {
        json_t *m = json_array_get(merges, r);
        const char *a = NULL, *b = NULL;
        size_t need = 0;
        if (json_is_string(m)) need = json_string_length(m) + 1;
        else if (json_is_array(m) && json_array_size(m) == 2) {
            a = json_string_value(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            need = (a ? strlen(a) : 0) + (b ? strlen(b) : 0) + 2;
        }
        if (need > cap) {
            cap = need * 2;
            char *x = realloc(tmp, cap), *y = x ? realloc(buf, cap) : NULL;
            if (x) tmp = x;
            if (y) buf = y;
            if (!x || !y) {
                st = LF_ERR_NOMEM;
                break;
            }
        }
        if (json_is_string(m)) {
            memcpy(tmp, json_string_value(m), need); /* a NUL inside ends it: then no ' ' is found or a part is refused */
            char *sp = strchr(tmp, ' ');
            if (sp) {
                *sp = 0;
                a = tmp;
                b = sp + 1;
            }
        }
        if (!a || !b) {
            lf_set_error("%s: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", path, r);
            st = LF_ERR_FORMAT;
            break;
        }
        int ids[2];
        const char *parts[2] = {a, b};
        for (int k = 0; k < 2 && !st; k++) {
            ids[k] = merge_part_id(t, parts[k], buf, inv);
            if (ids[k] < 0) {
                lf_set_error("%s: merge %zu names '%.200s', which is not in the vocabulary", path, r, parts[k]);
                st = LF_ERR_FORMAT;
            }
        }
        if (st) break;
        st = lf_tok_add_merge(t, ids[0], ids[1], (float)r);
        if (st == LF_ERR_NOTFOUND) {
            lf_set_error("%s: merge %zu ('%.200s' + '%.200s') produces a token missing from the vocabulary", path, r, a, b);
            st = LF_ERR_FORMAT;
        }
        if (st) break;
        t->merges[t->n_merges][0] = ids[0];
        t->merges[t->n_merges][1] = ids[1];
        t->n_merges++;
    }
    free(tmp);
    free(buf);
    return st;
}

/* a whole regular file parsed as JSON; NULL with *st and an error naming the file otherwise */
static json_t *read_json(const char *path, lf_status *st) {
    size_t len;
    char *buf = lf_read_file(path, &len);
    if (!buf) {
        *st = LF_ERR_IO;
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(buf, len, 0, &jerr);
    free(buf);
    if (!j) {
        lf_set_error("%s: invalid JSON at line %d: %s", path, jerr.line, jerr.text);
        *st = LF_ERR_FORMAT;
    }
    return j;
}

lf_status lf_tokenizer_load_gpt2(lf_tokenizer **out, const char *encoder_json, const char *vocab_bpe) {
    *out = NULL;
    lf_status st;
    json_t *enc = read_json(encoder_json, &st);
    if (!enc) return st;
    if (!json_is_object(enc)) {
        lf_set_error("%s: not a JSON object of token -> id", encoder_json);
        json_decref(enc);
        return LF_ERR_FORMAT;
    }
    lf_tokenizer *t;
    st = vocab_from_json(&t, enc, LF_TOK_BYTELEVEL, encoder_json, 0, 0);
    json_decref(enc);
    if (st) return st;
    size_t len;
    char *txt = lf_read_file(vocab_bpe, &len);
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
        /* nocheck: a line that is not UTF-8 must be refused by name below, not dropped here */
        if (json_array_append_new(merges, json_string_nocheck(l))) {
            free(txt);
            json_decref(merges);
            lf_tokenizer_free(t);
            return LF_ERR_NOMEM;
        }
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

/* how many entries of a given type, looking inside Sequence */
static int count_type(json_t *node, const char *type, const char *list_key) {
    if (!json_is_object(node)) return 0;
    const char *ty = jstr(node, "type");
    int n = ty && strcmp(ty, type) == 0;
    json_t *arr = json_object_get(node, list_key);
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) n += count_type(x, type, list_key);
    return n;
}

static lf_status load_tokenizer_json(lf_tokenizer **out, const char *path) {
    *out = NULL;
    lf_status st;
    json_t *j = read_json(path, &st);
    if (!j) return st;
    st = LF_ERR_FORMAT;
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
    /* added tokens: literal strings, special or not; their ids may lie past model.vocab (as in
     * Hugging Face, where they extend it) */
    json_t *added = json_object_get(j, "added_tokens");
    size_t i;
    json_t *a;
    int added_n = 0;
    json_array_foreach(added, i, a) {
        json_t *jid = json_object_get(a, "id");
        const char *content = jstr(a, "content");
        if (!json_is_integer(jid) || !content || json_integer_value(jid) < 0 || json_integer_value(jid) >= (1 << 24)) {
            lf_set_error("%s: added_tokens[%zu] needs an id in 0..16777215 and a content", path, i);
            st = LF_ERR_FORMAT;
            goto done;
        }
        if (json_integer_value(jid) >= added_n) added_n = (int)json_integer_value(jid) + 1;
    }
    st = vocab_from_json(&t, vocab, kind, path, added_n, json_array_size(added));
    if (st) goto done;
    json_array_foreach(added, i, a) {
        json_t *jid = json_object_get(a, "id");
        const char *content = jstr(a, "content");
        int id = (int)json_integer_value(jid);
        if (lf_tok_set_piece(t, id, content, strlen(content), kind == LF_TOK_SENTENCEPIECE ? TT_CONTROL : TT_SPECIAL)) {
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
        /* one Split with behavior Isolated (Hugging Face's default for byte-level models): each match
         * and each stretch between matches is a pre-token. Other behaviors drop bytes (Removed) or
         * cut elsewhere, and a second regex would cut again: refused rather than encoded differently */
        const char *behavior = split ? jstr(split, "behavior") : NULL;
        if (split && behavior && strcmp(behavior, "Isolated") != 0) {
            lf_set_error("%s: Split pre-tokenizer behavior '%.40s' is not supported (lmforge reads Isolated)", path, behavior);
            st = LF_ERR_FORMAT;
            goto done;
        }
        if (count_type(pre, "Split", "pretokenizers") > 1 || (split && !json_is_false(json_object_get(bl, "use_regex")))) {
            lf_set_error("%s: pre-tokenizers with more than one regex (several Split, or Split and ByteLevel with "
                         "use_regex) are not supported", path);
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

/* the piece equal to s[0..len) in map m, given the hash h it is filed under there (FNV-1a of the
 * bytes in order for t->map, of the bytes reversed for the suffix map), or -1 */
static int find_hashed(const lf_tokenizer *t, const strmap *m, uint64_t h, const char *s, size_t len) {
    size_t k = h & m->mask;
    while (m->slot[k]) {
        uint32_t j = m->slot[k] - 1;
        if ((size_t)t->plen[j] == len && memcmp(t->piece[j], s, len) == 0) return (int)j;
        k = (k + 1) & m->mask;
    }
    return -1;
}

static uint64_t fnv_reversed(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = len; i-- > 0;) h = lf_tok_fnv(h, s + i, 1);
    return h;
}

/* Every way of splitting a piece into two pieces is a merge, ranked by the piece's score. The
 * hashes of a piece's prefixes grow one byte at a time and those of its suffixes likewise from
 * the end (a second map keyed by the hash of the reversed piece), so a piece of L bytes costs
 * O(L) hashing instead of O(L^2): one 65 KB piece used to take seconds. */
static lf_status llama2c_merges(lf_tokenizer *t) {
    strmap rev = {NULL, lf_tok_pow2_at_least((size_t)t->n * 2 + 2) - 1};
    int maxl = 0;
    for (int i = 0; i < t->n; i++)
        if (t->plen[i] > maxl) maxl = t->plen[i];
    rev.slot = calloc(rev.mask + 1, sizeof *rev.slot);
    int32_t *pre = malloc(sizeof *pre * ((size_t)maxl + 1));
    lf_status st = rev.slot && pre ? LF_OK : LF_ERR_NOMEM;
    for (int i = 0; i < t->n && !st; i++) { /* reversed-hash map over the normal pieces, first id wins */
        if (t->type[i] != TT_NORMAL) continue;
        size_t k = fnv_reversed(t->piece[i], (size_t)t->plen[i]) & rev.mask;
        while (rev.slot[k]) {
            uint32_t j = rev.slot[k] - 1;
            if (t->plen[j] == t->plen[i] && memcmp(t->piece[j], t->piece[i], (size_t)t->plen[i]) == 0) break;
            k = (k + 1) & rev.mask;
        }
        if (!rev.slot[k]) rev.slot[k] = (uint32_t)i + 1;
    }
    for (int i = 0; i < t->n && !st; i++) {
        size_t L = (size_t)t->plen[i];
        const char *s = t->piece[i];
        if (t->type[i] != TT_NORMAL || L < 2 || lf_tok_map_find(t, s, L) != i) continue; /* duplicates merge into the first */
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t k = 1; k < L; k++) {
            h = lf_tok_fnv(h, s + k - 1, 1);
            pre[k] = find_hashed(t, &t->map, h, s, k);
        }
        h = 0xcbf29ce484222325ULL;
        for (size_t k = L - 1; k >= 1 && !st; k--) {
            h = lf_tok_fnv(h, s + k, 1);
            if (pre[k] < 0) continue;
            int c = find_hashed(t, &rev, h, s + k, L - k);
            if (c >= 0) st = lf_tok_pairs_put(&t->pairs, pre[k], c, -t->score[i], i);
        }
    }
    free(rev.slot);
    free(pre);
    return st;
}

/* llama2.c tokenizer.bin: int32 max_token_length, then per token float score, int32 len, bytes */
static lf_status load_llama2c(lf_tokenizer **out, const char *path) {
    *out = NULL;
    size_t len;
    char *b = lf_read_file(path, &len);
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
        if (lf_tok_set_piece(t, (int)i, by >= 0 ? &one : s, by >= 0 ? 1 : (size_t)l, type)) {
            lf_tokenizer_free(t);
            free(b);
            return LF_ERR_NOMEM;
        }
        pos += 8 + (size_t)l;
    }
    free(b);
    t->add_dummy_prefix = 1;
    st = lf_tok_map_build(t);
    if (!st) st = llama2c_merges(t);
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
    if (strlen(path) + 32 > sizeof a) { /* the names built below would be cut: another file */
        lf_set_error("%.200s...: path too long (%zu bytes)", path, strlen(path));
        return LF_ERR_ARG;
    }
    if (S_ISREG(sb.st_mode) && lf_is_gguf(path)) { /* a GGUF model carries its tokenizer in the metadata */
        lf_gguf *g;
        lf_status st = lf_gguf_open(&g, path);
        if (st) return st;
        st = lf_gguf_tokenizer(out, g);
        lf_gguf_close(g);
        return st;
    }
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
    if (!S_ISREG(sb.st_mode)) { /* a FIFO or device: peeking at it below could block */
        lf_set_error("%s: not a regular file (expected tokenizer.json, a folder with encoder.json + vocab.bpe, or "
                     "tokenizer.bin)", path);
        return LF_ERR_IO;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK); /* replaced by a FIFO since the stat: still no wait */
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        lf_set_error("%s: cannot open as a regular file (%s)", path, fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0) close(fd);
        return LF_ERR_IO;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
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


/* ---- a tokenizer described by GGUF metadata (src/ckpt/gguf.c parses the file and passes the
 * arrays here). token_type follows llama.cpp: 1 normal, 2 unknown, 3 control, 4 user-defined,
 * 5 unused, 6 byte. */
lf_status lf_tokenizer_from_gguf(lf_tokenizer **out, const lf_tok_gguf_spec *s) {
    *out = NULL;
    const char *path = s->path;
    int bytelevel = s->model && strcmp(s->model, "gpt2") == 0;
    if (!bytelevel && !(s->model && strcmp(s->model, "llama") == 0)) {
        lf_set_error("%s: tokenizer.ggml.model '%.40s' is not supported (gpt2 or llama)", path,
                     s->model ? s->model : "(missing)");
        return LF_ERR_FORMAT;
    }
    const char *pattern = GPT2_PATTERN;
    /* llama.cpp's pre-tokenizer types that share a regex list: GPT-2's, or "\p{N}" then GPT-2's */
    static const char *const digit_kin[] = {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone"};
    static const char *const gpt2_kin[] = {"gpt2", "gpt-2", "default", "olmo", "jais"};
    int known = 0;
    for (size_t i = 0; bytelevel && s->pre && i < sizeof digit_kin / sizeof *digit_kin; i++)
        if (!strcmp(s->pre, digit_kin[i])) pattern = SMOLLM_PATTERN, known = 1;
    for (size_t i = 0; bytelevel && s->pre && i < sizeof gpt2_kin / sizeof *gpt2_kin; i++) known |= !strcmp(s->pre, gpt2_kin[i]);
    if (bytelevel && s->pre && !known) {
        lf_set_error("%s: tokenizer.ggml.pre '%.40s' is not supported (gpt2, gpt-2, default, olmo, jais; smollm, "
                     "starcoder, refact, command-r, codeshell, exaone)", path, s->pre);
        return LF_ERR_FORMAT;
    }
    if (s->n < 3 || s->n > (1 << 24)) {
        lf_set_error("%s: %d tokenizer tokens is out of range", path, s->n);
        return LF_ERR_FORMAT;
    }
    lf_tokenizer *t = tok_alloc(bytelevel ? LF_TOK_BYTELEVEL : LF_TOK_SENTENCEPIECE, s->n);
    if (!t) return LF_ERR_NOMEM;
    int inv[512];
    inverse_table(inv);
    lf_status st = LF_OK;
    char *buf = NULL;
    size_t cap = 0;
    for (int i = 0; i < s->n && !st; i++) {
        const char *k = s->tok[i];
        size_t kl = s->tok_len[i], len = 0;
        int tt = s->types ? s->types[i] : 1;
        if (kl + 1 > cap) {
            cap = 2 * kl + 16;
            char *nb = realloc(buf, cap);
            if (!nb) { st = LF_ERR_NOMEM; break; }
            buf = nb;
        }
        char *key = malloc(kl + 1); /* NUL-terminated copy: the unmappers stop at NUL */
        if (!key) { st = LF_ERR_NOMEM; break; }
        memcpy(key, k, kl);
        key[kl] = 0;
        uint8_t type = TT_NORMAL;
        if (tt == 5) { /* unused (llama.cpp's padding ids): never matched in text, decodes to nothing: a hole */
            free(key);
            continue;
        }
        if (tt == 3 || tt == 4 || tt == 2) {
            memcpy(buf, key, kl);
            len = kl;
            type = bytelevel ? TT_SPECIAL : TT_CONTROL;
            if (!bytelevel && tt == 2) t->unk = i;
            if (!bytelevel && tt == 4) { len = unmap_sp(key, buf); type = TT_NORMAL; }
        } else {
            type = piece_of_key(t, i, key, kl, buf, &len, inv);
        }
        free(key);
        if (lf_tok_set_piece(t, i, buf, len, type)) { st = LF_ERR_NOMEM; break; }
        if (s->scores) t->score[i] = s->scores[i];
        if (bytelevel && type == TT_NORMAL && len == 1) t->byte_id[(unsigned char)t->piece[i][0]] = i;
    }
    if (!st && bytelevel) {
        t->merges = malloc(sizeof *t->merges * (size_t)(s->n_merges ? s->n_merges : 1));
        if (!t->merges || lf_tok_map_build(t)) st = LF_ERR_NOMEM;
        for (int r = 0; r < s->n_merges && !st; r++) {
            size_t ml = s->merge_len[r];
            if (ml + 1 > cap) {
                cap = 2 * ml + 16;
                char *nb = realloc(buf, cap);
                if (!nb) { st = LF_ERR_NOMEM; break; }
                buf = nb;
            }
            char *m = malloc(ml + 1);
            if (!m) { st = LF_ERR_NOMEM; break; }
            memcpy(m, s->merge[r], ml);
            m[ml] = 0;
            char *sp = strlen(m) == ml ? strchr(m, ' ') : NULL;
            int ids[2] = {-1, -1};
            if (sp) {
                *sp = 0;
                ids[0] = merge_part_id(t, m, buf, inv);
                ids[1] = merge_part_id(t, sp + 1, buf, inv);
            }
            if (ids[0] < 0 || ids[1] < 0) {
                lf_set_error("%s: merge %d ('%.100s') is not two vocabulary pieces separated by a space", path, r, s->merge[r]);
                free(m);
                st = LF_ERR_FORMAT;
                break;
            }
            free(m);
            st = lf_tok_add_merge(t, ids[0], ids[1], (float)r);
            if (st == LF_ERR_NOTFOUND) {
                lf_set_error("%s: merge %d produces a token missing from the vocabulary", path, r);
                st = LF_ERR_FORMAT;
            }
            if (st) break;
            t->merges[t->n_merges][0] = ids[0];
            t->merges[t->n_merges][1] = ids[1];
            t->n_merges++;
        }
        if (!st && !(t->pattern = strdup(pattern))) st = LF_ERR_NOMEM;
    } else if (!st) {
        t->add_dummy_prefix = s->add_space_prefix;
        st = lf_tok_map_build(t);
        if (!st) st = llama2c_merges(t);
    }
    free(buf);
    if (!st) {
        t->bos = s->bos >= 0 && s->bos < s->n ? s->bos : -1;
        t->eos = s->eos >= 0 && s->eos < s->n ? s->eos : -1;
        if (s->unk >= 0 && s->unk < s->n) t->unk = s->unk;
        if (bytelevel) {
            free(t->map.slot);
            t->map.slot = NULL;
        }
        st = lf_tok_finish(t);
    }
    if (st) {
        lf_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LF_OK;
}
