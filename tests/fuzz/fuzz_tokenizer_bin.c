/* llama2.c tokenizer.bin (lf_tokenizer_load of a file that is not JSON): the binary layout, the
 * merges derived from every split of every piece (linear in the file since issue 8), encode and
 * decode of any bytes. */
#include "fuzz_common.h"
#include "lmforge/tokenizer.h"

static char path[128];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_path(path, sizeof path, "tokenizer.bin");
    return 0;
}

static const char *const samples[] = {"the quick brown fox", " \xc3\xa9t\xc3\xa9 \xe6\x97\xa5 \xff\xfe x", "", "aaaaaaaaaaaaaaaa"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size && data[0] == '{') return 0; /* that is the tokenizer.json target's */
    fuzz_write(path, data, size);
    lf_tokenizer *t;
    if (lf_tokenizer_load(&t, path) != LF_OK) {
        FUZZ_CHECK(lf_last_error()[0], "a refusal without a message");
        return 0;
    }
    for (size_t k = 0; k <= sizeof samples / sizeof samples[0]; k++) {
        const char *x = k < 4 ? samples[k] : (const char *)data;
        size_t xl = k < 4 ? strlen(x) : (size < 64 ? size : 64);
        lf_ids ids = {0};
        FUZZ_CHECK(lf_tokenizer_encode(t, x, xl, LF_ENC_BOS | LF_ENC_EOS, &ids) == LF_OK, "encode failed: %s", lf_last_error());
        char *back;
        size_t bl;
        FUZZ_CHECK(lf_tokenizer_decode(t, ids.ids, ids.n, &back, &bl) == LF_OK, "decode failed");
        free(back);
        lf_ids_free(&ids);
    }
    lf_tokenizer_free(t);
    return 0;
}
