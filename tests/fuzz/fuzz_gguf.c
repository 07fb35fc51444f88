/* GGUF files (lf_gguf_load): header counts, metadata types and array lengths, tensor infos (dims,
 * types, offsets, alignment), dequantization, hyperparameters, and the tokenizer from the metadata. */
#include "fuzz_common.h"
#include "lmforge/ckpt.h"

static char path[128];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_path(path, sizeof path, "model.gguf");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write(path, data, size);
    lf_gguf *g;
    if (lf_gguf_open(&g, path) != LF_OK) {
        FUZZ_CHECK(lf_last_error()[0], "a refusal without a message");
        return 0;
    }
    size_t bytes = 0;
    for (int i = 0; i < lf_gguf_num_tensors(g); i++) bytes += lf_gguf_tensor_at(g, i)->nbytes;
    FUZZ_CHECK(bytes <= size, "%zu tensor bytes in a file of %zu", bytes, size);
    lf_tokenizer *t = NULL;
    if (lf_gguf_tokenizer(&t, g) == LF_OK) {
        lf_ids ids = {0};
        lf_tokenizer_encode(t, "Hello 123 world", 15, 0, &ids);
        lf_ids_free(&ids);
        lf_tokenizer_free(t);
    }
    lf_gguf_close(g);
    lf_model *m;
    if (lf_gguf_load(&m, NULL, path) == LF_OK) lf_model_free(m);
    else FUZZ_CHECK(lf_last_error()[0], "a model refusal without a message");
    return 0;
}
