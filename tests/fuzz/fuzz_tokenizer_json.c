/* Hugging Face tokenizer.json (lf_tokenizer_load). An accepted tokenizer must encode any bytes,
 * decode every id, and, byte-level without add_prefix_space, give decode(encode(x)) == x for any
 * x whose bytes all have a token (its own regex included, whatever it matches; a byte without a
 * token is dropped, as Hugging Face tokenizers does); it must save as a tokenizer.json that loads
 * again and encodes the same. */
#include "fuzz_common.h"
#include "lmforge/tokenizer.h"
#include "tokenizer/tok_internal.h"

static char path[128], saved[128];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_path(path, sizeof path, "tokenizer.json");
    fuzz_path(saved, sizeof saved, "saved.json");
    return 0;
}

static const char *const samples[] = {
    "the quick brown fox", "  a  b\n\nc\t 123 ab12 \xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac x",
    "<|endoftext|>hi<s></s><unk>", "\xff\xfe\x80 bad \xc3 utf8\xe2\x82", "", "aaaaaaaaaaaaaaaaaaaaaaaa",
};

static void check_tokenizer(const lf_tokenizer *t, const uint8_t *data, size_t size, lf_ids *first) {
    int roundtrip = lf_tokenizer_kind(t) == LF_TOK_BYTELEVEL && !t->add_prefix_space;
    size_t ns = sizeof samples / sizeof samples[0];
    for (size_t k = 0; k <= ns; k++) {
        const char *x = k < ns ? samples[k] : (const char *)data + (size > 48 ? size - 48 : 0);
        size_t xl = k < ns ? strlen(x) : (size > 48 ? 48 : size);
        for (unsigned flags = 0; flags < 2; flags++) {
            lf_ids ids = {0};
            unsigned fl = flags ? LF_ENC_BOS | LF_ENC_EOS | LF_ENC_ALLOW_SPECIAL : 0;
            lf_status st = lf_tokenizer_encode(t, x, xl, fl, &ids);
            if (st != LF_OK) { /* a regex that gives up (match limit) is an error, never lost bytes */
                FUZZ_CHECK(lf_last_error()[0], "encode failed without a message");
                lf_ids_free(&ids);
                continue;
            }
            char *back;
            size_t bl;
            FUZZ_CHECK(lf_tokenizer_decode(t, ids.ids, ids.n, &back, &bl) == LF_OK, "decode of encoded ids failed");
            if (roundtrip && !flags && lf_tok_covers(t, x, xl))
                FUZZ_CHECK(bl == xl && memcmp(back, x, xl) == 0, "decode(encode(x)) != x for sample %zu (%zu -> %zu bytes)", k, xl, bl);
            free(back);
            if (first && !flags)
                for (size_t i = 0; i < ids.n; i++) FUZZ_CHECK(lf_ids_push(first, ids.ids[i]) == LF_OK, "oom");
            lf_ids_free(&ids);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write(path, data, size);
    lf_tokenizer *t;
    if (lf_tokenizer_load(&t, path) != LF_OK) {
        FUZZ_CHECK(lf_last_error()[0], "a refusal without a message");
        return 0;
    }
    int n = lf_tokenizer_vocab_size(t);
    FUZZ_CHECK(n > 0 && (size_t)n <= 2 * size + 256, "vocabulary of %d from %zu bytes", n, size);
    for (int id = 0; id < n; id++) {
        size_t len;
        FUZZ_CHECK(lf_tokenizer_piece(t, id, &len) != NULL, "id %d has no piece", id);
        char *s;
        size_t sl;
        int32_t one = id;
        FUZZ_CHECK(lf_tokenizer_decode(t, &one, 1, &s, &sl) == LF_OK, "id %d does not decode", id);
        free(s);
    }
    lf_ids a = {0}, b = {0};
    check_tokenizer(t, data, size, &a);
    if (lf_tokenizer_kind(t) == LF_TOK_BYTELEVEL) { /* prepare writes it beside the shards; train reads it back */
        FUZZ_CHECK(lf_tokenizer_save_json(t, saved) == LF_OK, "save failed: %s", lf_last_error());
        lf_tokenizer *u;
        FUZZ_CHECK(lf_tokenizer_load(&u, saved) == LF_OK, "the saved tokenizer.json does not load: %s", lf_last_error());
        check_tokenizer(u, data, size, &b);
        FUZZ_CHECK(a.n == b.n && (!a.n || memcmp(a.ids, b.ids, a.n * sizeof *a.ids) == 0), "the saved tokenizer encodes differently");
        lf_tokenizer_free(u);
    }
    lf_ids_free(&a);
    lf_ids_free(&b);
    lf_tokenizer_free(t);
    return 0;
}
