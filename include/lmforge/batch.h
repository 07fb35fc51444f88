/* lmforge batches and batch sources: what the trainer pulls from. A shard loader is the first
 * source; a task mixture, an online augmenter or a noiser are others (they wrap sources). Only
 * core types here, so data, model and train can all include it without depending on each other. */
#ifndef LMFORGE_BATCH_H
#define LMFORGE_BATCH_H

#include "lmforge/core.h"

/* One micro-batch of B rows of T tokens. Buffers belong to whoever filled the batch. */
typedef struct {
    int32_t *inputs;   // (B,T) token ids
    int32_t *targets;  // (B,T) next-token ids; < 0 means "no loss here" (the loss mask)
    float *row_weight; // (B) weight of each row's loss terms (1 = plain), or NULL
    int32_t *task;     // (B) task id of each row (0 when the data has none), or NULL
    int B, T;
} lf_batch;

/* Allocate / free the four buffers of a (B,T) batch (row_weight set to 1, task to 0). */
lf_status lf_batch_alloc(lf_batch *b, int B, int T);
void lf_batch_free(lf_batch *b);

/* A batch source. The state is a few integers the trainer saves in its checkpoint and hands back
 * on resume, so that batch k after a resume is batch k of an uninterrupted run. */
#define LF_SOURCE_STATE_MAX 16
typedef struct lf_batch_source lf_batch_source;
struct lf_batch_source {
    const char *name;
    void *ctx;
    /* fill b (already sized for the source's B and T) with the next batch */
    lf_status (*next)(lf_batch_source *s, lf_batch *b);
    /* write up to LF_SOURCE_STATE_MAX words; return how many */
    int (*get_state)(const lf_batch_source *s, uint64_t *words);
    lf_status (*set_state)(lf_batch_source *s, const uint64_t *words, int n);
    void (*free)(lf_batch_source *s); /* frees ctx and s itself; may be NULL */
};

static inline void lf_batch_source_free(lf_batch_source *s) {
    if (s && s->free) s->free(s);
}

#endif
