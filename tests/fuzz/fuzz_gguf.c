/* GGUF files (lf_gguf_load): header counts, metadata types and array lengths, tensor infos (dims,
 * types, offsets, alignment), dequantization, hyperparameters, and the tokenizer from the metadata.
 * A model that loads also loads with its quantized weights kept encoded, holding the same values,
 * and the writer's file of it (lf_gguf_save, tokenizer included) reads back the same. */
#include "fuzz_common.h"
#include "lmforge/ckpt.h"

static char path[128], out[128];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_path(path, sizeof path, "model.gguf");
    fuzz_path(out, sizeof out, "written.gguf");
    return 0;
}

/* every tensor of b (kept encoded or float32) holds the values of a's */
static void same_values(lf_model *a, lf_model *b, const char *what) {
    for (int i = 0; i < lf_model_num_params(a); i++) {
        lf_param *p = lf_model_param(a, i), *q = lf_model_find(b, p->name);
        FUZZ_CHECK(q && q->numel == p->numel, "%s: '%s' missing", what, p->name);
        float *v = q->data;
        if (q->qops) {
            v = malloc(q->numel * sizeof(float));
            FUZZ_CHECK(v != NULL, "out of memory");
            q->qops->dequantize(q, v);
        }
        FUZZ_CHECK(memcmp(v, p->data, p->numel * sizeof(float)) == 0, "%s: '%s' holds other values", what, p->name);
        if (v != q->data) free(v);
    }
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
    }
    lf_gguf_close(g);
    lf_model *m;
    if (lf_gguf_load(&m, NULL, path) != LF_OK) {
        FUZZ_CHECK(lf_last_error()[0], "a model refusal without a message");
        lf_tokenizer_free(t);
        return 0;
    }
    if (t && lf_tokenizer_vocab_size(t) > lf_model_config(m)->vocab_size) { /* the writer refuses that pair */
        lf_tokenizer_free(t);
        t = NULL;
    }
    lf_model *k;
    lf_gguf_load_opts keep = {.keep_quantized = 1};
    FUZZ_CHECK(lf_gguf_load_with(&k, NULL, path, &keep) == LF_OK, "loads dequantized but not kept quantized: %s",
               lf_last_error());
    same_values(m, k, "kept quantized");
    lf_model_free(k);
    lf_gguf_save_opts o;
    lf_gguf_save_opts_default(&o, LF_QT_F32);
    /* a tokenizer whose regex llama.cpp has no name for is refused (by message); then without it */
    lf_status st = lf_gguf_save(m, t, out, &o);
    if (st) {
        FUZZ_CHECK(lf_last_error()[0], "a save refusal without a message");
        FUZZ_CHECK(lf_gguf_save(m, NULL, out, &o) == LF_OK, "saving without the tokenizer: %s", lf_last_error());
    }
    lf_model *w;
    FUZZ_CHECK(lf_gguf_load(&w, NULL, out) == LF_OK, "the writer's file does not read back: %s", lf_last_error());
    same_values(m, w, "written and read back");
    lf_model_free(w);
    lf_tokenizer_free(t);
    lf_model_free(m);
    return 0;
}
