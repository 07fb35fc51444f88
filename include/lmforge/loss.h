/* lmforge loss terms: the training objective is a weighted sum of terms over the model's outputs.
 * Cross-entropy is the first term; distillation (KL/JSD to a teacher), per-task weights and
 * hidden-state matching are others, added without touching the model.
 *
 * Protocol for one micro-batch: lf_loss_forward runs the model forward and every term's forward
 * on the intact logits (each term saves what its backward needs); lf_loss_backward turns the
 * logits into dlogits in place — row by row, the last term writes its gradient over the row and
 * the others add theirs from a per-thread copy, so B×T×V memory is never doubled — then adds the
 * terms' hidden-state gradients and runs the model backward. */
#ifndef LMFORGE_LOSS_H
#define LMFORGE_LOSS_H

#include "lmforge/batch.h"
#include "lmforge/model.h"

typedef struct lf_loss_term lf_loss_term;
struct lf_loss_term {
    const char *name;
    float weight; /* the term enters the objective as weight × value */
    lf_logits_mode logits; /* the logits it reads (ALL for token losses, LAST for sequence losses) */
    void *ctx;
    /* The term's value on this batch from logits (rows, V), which must not be modified. */
    lf_status (*forward)(lf_loss_term *t, lf_model *m, const lf_batch *b, const float *logits, size_t rows, int V,
                         double *value);
    /* For rows [r0, r1): scale × d(value)/d(logits), written (accum 0) or added (accum 1) into
     * dlogits. logits and dlogits point at row r0 (row r is at (r - r0)·V); with accum 0 they may
     * be the same buffer (in place). May be NULL when the term has no logit gradient. With several
     * terms it is called per row from inside a parallel region (OpenMP inside then runs on one
     * thread); a single term gets all rows in one call. */
    void (*backward_rows)(lf_loss_term *t, const lf_batch *b, const float *logits, float *dlogits, size_t r0, size_t r1,
                          int V, float scale, int accum);
    /* Optional: scale × d(value)/d(hidden) added into lf_model_hidden_grad(m, l). */
    lf_status (*backward_hidden)(lf_loss_term *t, lf_model *m, const lf_batch *b, float scale);
    void (*free)(lf_loss_term *t); /* frees ctx and t */
};

/* Cross-entropy with label smoothing (PyTorch semantics), ignored targets (< 0) and per-row
 * weights (batch row_weight): value = Σ w_row · ce_i / (number of counted targets). */
lf_loss_term *lf_loss_ce_new(float smoothing);
size_t lf_loss_ce_counted(const lf_loss_term *ce); /* targets counted in the last forward */
double lf_loss_ce_sum(const lf_loss_term *ce);     /* Σ w · ce_i of the last forward (nats) */

void lf_loss_free(lf_loss_term *t);

/* Model forward (logits mode: the widest any term needs) + every term's forward. values (n, may
 * be NULL) gets each term's value; *total (may be NULL) Σ weight·value. */
lf_status lf_loss_forward(lf_model *m, lf_loss_term *const *terms, int n, const lf_batch *b, double *values,
                          double *total);
/* dlogits in place, hidden-state gradients, model backward; gradients of scale × total. */
lf_status lf_loss_backward(lf_model *m, lf_loss_term *const *terms, int n, const lf_batch *b, float scale);

/* Mean cross-entropy of a model on a batch, forward only, as (Σ nats, counted targets). */
lf_status lf_loss_ce_eval(lf_model *m, const lf_batch *b, double *sum, size_t *count);

#endif
