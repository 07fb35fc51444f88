/* llama2.c checkpoints (lf_llama2c_load): the 7-integer header, its bounds and the implied file
 * size, then the weights (NaN/Inf refused). */
#include "fuzz_common.h"
#include "lmforge/ckpt.h"

static char path[128];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_path(path, sizeof path, "model.bin");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int32_t vocab;
    if (size >= 28) {
        memcpy(&vocab, data + 20, 4);
        /* known, not yet fixed (src/ckpt/llama2c.c negates it: signed overflow, UBSan aborts; the
         * result is refused anyway): skipped so the fuzzer looks further. The input is kept in
         * tests/fuzz/pending/llama2c/ until the fix lands, then moves to regressions/. */
        if (vocab == INT32_MIN) return 0;
    }
    fuzz_write(path, data, size);
    lf_model *m;
    if (lf_llama2c_load(&m, path) != LF_OK) {
        FUZZ_CHECK(lf_last_error()[0], "a refusal without a message");
        return 0;
    }
    FUZZ_CHECK(lf_model_num_scalars(m) * 4 <= size, "%zu parameters from %zu bytes", lf_model_num_scalars(m), size);
    lf_model_free(m);
    return 0;
}
