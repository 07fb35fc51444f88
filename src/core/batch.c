/* Batch buffers (see batch.h). */
#include "lmforge/batch.h"

#include <stdlib.h>
#include <string.h>

lf_status lf_batch_alloc(lf_batch *b, int B, int T) {
    memset(b, 0, sizeof *b);
    if (B <= 0 || T <= 0 || (size_t)B * (size_t)T > ((size_t)1 << 31)) {
        lf_set_error("batch %d x %d is out of range", B, T);
        return LF_ERR_ARG;
    }
    size_t N = (size_t)B * T;
    b->inputs = malloc(N * sizeof *b->inputs);
    b->targets = malloc(N * sizeof *b->targets);
    b->row_weight = malloc((size_t)B * sizeof *b->row_weight);
    b->task = calloc((size_t)B, sizeof *b->task);
    if (!b->inputs || !b->targets || !b->row_weight || !b->task) {
        lf_batch_free(b);
        lf_set_error("out of memory for a %d x %d batch", B, T);
        return LF_ERR_NOMEM;
    }
    for (int i = 0; i < B; i++) b->row_weight[i] = 1.0f;
    b->B = B;
    b->T = T;
    return LF_OK;
}

void lf_batch_free(lf_batch *b) {
    free(b->inputs);
    free(b->targets);
    free(b->row_weight);
    free(b->task);
    memset(b, 0, sizeof *b);
}
