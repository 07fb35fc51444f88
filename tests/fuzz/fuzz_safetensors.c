/* safetensors reader (lf_st_open): the header length, JSON, dtypes, shapes, offsets and tiling.
 * An accepted file must be readable in full: every tensor converts without touching bytes outside
 * the mapping, names are found again, metadata is strings. */
#include "fuzz_common.h"
#include "lmforge/ckpt.h"

static char path[128];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_path(path, sizeof path, "model.safetensors");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write(path, data, size);
    lf_st *st;
    if (lf_st_open(&st, path) != LF_OK) {
        FUZZ_CHECK(lf_last_error()[0], "a refusal without a message");
        return 0;
    }
    size_t total = 0;
    for (int i = 0; i < lf_st_count(st); i++) {
        const char *name = lf_st_name(st, i);
        FUZZ_CHECK(lf_st_find(st, name) == i, "tensor '%s' is not found by name", name);
        size_t numel = lf_st_numel(st, i), prod = 1;
        for (int d = 0; d < lf_st_ndim(st, i); d++) prod *= (size_t)lf_st_shape(st, i)[d];
        FUZZ_CHECK(prod == numel, "numel %zu vs shape product %zu", numel, prod);
        total += numel;
        FUZZ_CHECK(total <= size, "%zu elements in a %zu-byte file", total, size);
        float *f = malloc((numel ? numel : 1) * sizeof *f);
        int32_t *n32 = malloc((numel ? numel : 1) * sizeof *n32);
        if (!f || !n32) abort();
        lf_status a = lf_st_read_f32(st, i, f, numel), b = lf_st_read_i32(st, i, n32, numel);
        FUZZ_CHECK(a == LF_OK || b == LF_OK || lf_st_dtype(st, i) == LF_DT_BOOL || b == LF_ERR_FORMAT,
                   "tensor '%s' readable neither as float nor as int", name);
        if (numel) FUZZ_CHECK(lf_st_read_f32(st, i, f, numel - 1) != LF_OK, "a wrong element count was accepted");
        free(f);
        free(n32);
    }
    (void)lf_st_metadata(st, "format");
    lf_st_close(st);
    return 0;
}
