/* GPT-2 encoder.json + vocab.bpe (lf_tokenizer_load_gpt2): the input is split at its first NUL
 * byte (encoder.json never holds one) into the two files. An accepted tokenizer round-trips any
 * bytes that all have a token (a vocabulary may lack a few bytes; encoding drops those). */
#include "fuzz_common.h"
#include "lmforge/tokenizer.h"
#include "tokenizer/tok_internal.h"

static char enc[128], bpe[128];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_path(enc, sizeof enc, "encoder.json");
    fuzz_path(bpe, sizeof bpe, "vocab.bpe");
    return 0;
}

static const char *const samples[] = {"the quick brown fox's 123", "\xc3\xa9t\xc3\xa9 \xe6\x97\xa5 \xff\xfe x\n\n  y", ""};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *sep = memchr(data, 0, size);
    size_t a = sep ? (size_t)(sep - data) : size;
    fuzz_write(enc, data, a);
    fuzz_write(bpe, sep ? sep + 1 : data, sep ? size - a - 1 : 0);
    lf_tokenizer *t;
    if (lf_tokenizer_load_gpt2(&t, enc, bpe) != LF_OK) {
        FUZZ_CHECK(lf_last_error()[0], "a refusal without a message");
        return 0;
    }
    for (size_t k = 0; k < sizeof samples / sizeof samples[0]; k++) {
        lf_ids ids = {0};
        FUZZ_CHECK(lf_tokenizer_encode(t, samples[k], strlen(samples[k]), 0, &ids) == LF_OK, "encode failed");
        char *back;
        size_t bl;
        FUZZ_CHECK(lf_tokenizer_decode(t, ids.ids, ids.n, &back, &bl) == LF_OK, "decode failed");
        if (lf_tok_covers(t, samples[k], strlen(samples[k])))
            FUZZ_CHECK(bl == strlen(samples[k]) && memcmp(back, samples[k], bl) == 0, "decode(encode(x)) != x");
        free(back);
        lf_ids_free(&ids);
    }
    lf_tokenizer_free(t);
    return 0;
}
