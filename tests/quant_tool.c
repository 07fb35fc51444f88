/* Test helper for tests/quant_gguf_test.py: lmforge's block kernels on stdin/stdout, so Python can
 * hold them against the gguf package.
 *   quant_tool quantize TYPE     float32 values in, the encoded row out (lf_quantize_row)
 *   quant_tool dequantize TYPE   an encoded row in, float32 values out (lf_dequantize_row) */
#include "lmforge/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *slurp(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n, stdin)) > 0;) {
        n += r;
        if (n == cap) b = realloc(b, cap *= 2);
    }
    *len = n;
    return b;
}

int main(int argc, char **argv) {
    lf_qtype t;
    if (argc != 3 || lf_qtype_parse(argv[2], &t) != LF_OK || (strcmp(argv[1], "quantize") && strcmp(argv[1], "dequantize"))) {
        fprintf(stderr, "usage: quant_tool quantize|dequantize TYPE < in > out%s%s\n", argc == 3 ? ": " : "",
                argc == 3 ? lf_last_error() : "");
        return 2;
    }
    const lf_qtype_info *q = lf_qtype_get(t);
    size_t len;
    unsigned char *in = slurp(&len);
    if (!in) return 1;
    if (!strcmp(argv[1], "quantize")) {
        int64_t n = (int64_t)(len / sizeof(float));
        void *out = malloc(lf_qtype_row_bytes(t, n) + 1);
        if (len % sizeof(float) || !out || lf_quantize_row(t, (const float *)in, out, n) != LF_OK) {
            fprintf(stderr, "quant_tool: %s\n", len % sizeof(float) ? "input is not whole float32 values" : lf_last_error());
            return 1;
        }
        fwrite(out, 1, lf_qtype_row_bytes(t, n), stdout);
        free(out);
    } else {
        if (len % (size_t)q->bytes) {
            fprintf(stderr, "quant_tool: %zu bytes are not whole %s blocks of %d bytes\n", len, q->name, q->bytes);
            return 1;
        }
        int64_t n = (int64_t)(len / (size_t)q->bytes) * q->blck;
        float *out = malloc(sizeof(float) * (size_t)(n + 1));
        if (!out) return 1;
        lf_dequantize_row(t, in, out, n);
        fwrite(out, sizeof(float), (size_t)n, stdout);
        free(out);
    }
    free(in);
    return 0;
}
