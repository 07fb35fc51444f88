/* decode(encode(x)) == x for byte-level tokenizers, for any bytes x: GPT-2's tokenizer.json from
 * the fixtures (or, without them, a small one trained here), and the same vocabulary with
 * pre-tokenizer regexes that can match the empty string (issue 8: such a regex dropped bytes).
 * The first input byte picks the tokenizer and LF_ENC_CONTINUE; a fresh encoder (empty cache)
 * must give the same ids as the long-lived one. */
#include "fuzz_common.h"
#include "lmforge/tokenizer.h"

#include <jansson.h>

#ifndef LF_FUZZ_FIXTURES
#define LF_FUZZ_FIXTURES "../shared/fixtures"
#endif

static const char *const regexes[] = {
    NULL,            /* the tokenizer's own (GPT-2's) */
    "\\p{L}*",       /* empty between words */
    "\\b",           /* only empty matches */
    "x*|\\s+(?!\\S)", /* empty almost everywhere */
    "(?=a)|\\p{N}{1,3}",
};
#define NTOK (sizeof regexes / sizeof regexes[0])
static lf_tokenizer *tok[NTOK];
static lf_tok_encoder *enc[NTOK];

static void done(void) {
    for (size_t i = 0; i < NTOK; i++) {
        lf_tok_encoder_free(enc[i]);
        lf_tokenizer_free(tok[i]);
    }
}

static const char corpus[] =
    "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness "
    "was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let "
    "there be light: and there was light. 1234 don't we'll it's  \n\n\t caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char base[160], p[200];
    const char *fx = getenv("LF_FIXTURES") ? getenv("LF_FIXTURES") : LF_FUZZ_FIXTURES;
    snprintf(p, sizeof p, "%s/gpt2_tokenizer.json", fx);
    fuzz_path(base, sizeof base, "base.json");
    if (lf_path_exists(p)) {
        size_t len;
        char *b = lf_read_file(p, &len);
        LF_ASSERT(b);
        fuzz_write(base, b, len);
        free(b);
    } else { /* no fixtures: a small byte-level BPE trained on the corpus above */
        char txt[160];
        fuzz_path(txt, sizeof txt, "corpus.txt");
        fuzz_write(txt, corpus, sizeof corpus - 1);
        const char *files[] = {txt};
        lf_bpe_train_opts o = {.vocab_size = 300, .min_frequency = 2, .quiet = 1};
        lf_tokenizer *t;
        LF_ASSERT(lf_tokenizer_train_bpe(&t, files, 1, &o) == LF_OK);
        LF_ASSERT(lf_tokenizer_save_json(t, base) == LF_OK);
        lf_tokenizer_free(t);
    }
    json_error_t e;
    json_t *j = json_load_file(base, 0, &e);
    LF_ASSERT(j);
    for (size_t i = 0; i < NTOK; i++) {
        char path[200];
        snprintf(path, sizeof path, "%s/rt%zu.json", fuzz_tmpdir(), i);
        if (regexes[i]) {
            json_t *pre = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type", "Sequence",
                                    "pretokenizers", "type", "Split", "pattern", "Regex", regexes[i], "behavior",
                                    "Isolated", "invert", 0, "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets",
                                    1, "use_regex", 0);
            LF_ASSERT(pre);
            json_object_set_new(j, "pre_tokenizer", pre);
        }
        LF_ASSERT(json_dump_file(j, path, 0) == 0);
        if (lf_tokenizer_load(&tok[i], path) != LF_OK) {
            fprintf(stderr, "fuzz_roundtrip: %s\n", lf_last_error());
            abort();
        }
        LF_ASSERT(lf_tok_encoder_init(&enc[i], tok[i]) == LF_OK);
    }
    json_decref(j);
    atexit(done);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    size_t which = data[0] % NTOK;
    unsigned cont = (data[0] / NTOK) & 1 ? LF_ENC_CONTINUE : 0;
    const char *x = (const char *)data + 1;
    size_t n = size - 1;
    lf_ids ids = {0};
    FUZZ_CHECK(lf_tok_encode(enc[which], x, n, cont, &ids) == LF_OK, "encode failed: %s", lf_last_error());
    char *back;
    size_t bl;
    FUZZ_CHECK(lf_tokenizer_decode(tok[which], ids.ids, ids.n, &back, &bl) == LF_OK, "decode failed");
    FUZZ_CHECK(bl == n && memcmp(back, x, n) == 0, "decode(encode(x)) != x with tokenizer %zu (%zu bytes -> %zu)", which, n, bl);
    free(back);
    /* the per-encoder cache must not change the ids: a fresh encoder agrees */
    lf_ids again = {0};
    FUZZ_CHECK(lf_tokenizer_encode(tok[which], x, n, cont, &again) == LF_OK, "encode failed");
    FUZZ_CHECK(again.n == ids.n && (!ids.n || memcmp(again.ids, ids.ids, ids.n * sizeof *ids.ids) == 0), "cached encoder differs");
    lf_ids_free(&again);
    lf_ids_free(&ids);
    return 0;
}
