/* The evaluation windows that plain perplexity (lf_eval_sequence) and the KL divergence against
 * a base model (lf_kld_sequence) share, so that both score exactly the same targets. */
#ifndef LF_EVAL_INTERNAL_H
#define LF_EVAL_INTERNAL_H

#include <stddef.h>

/* Window k reads the inputs ids[begin, end) (end - begin <= T) and scores, at the input
 * positions i in [first, end), the targets ids[i + 1].
 * Sliding (chunks 0): windows of T that advance by stride, each scoring only the targets no
 * earlier window scored (lf_eval_sequence's scheme). Chunks (1): llama-perplexity's windows of T
 * tokens that do not overlap, the trailing n % T tokens left out, each scoring the targets of its
 * second half (positions T/2 .. T-2 of the window predict tokens T/2+1 .. T-1); the window's
 * last token is no input of a scored position, so end = begin + T - 1. */
typedef struct {
    size_t n, begin, scored_to;
    int T, stride, chunks, done;
} lf_eval_windows;

void lf_eval_windows_init(lf_eval_windows *w, size_t n, int T, int stride, int chunks);
/* 1 and the next window, or 0 when there is none */
int lf_eval_windows_next(lf_eval_windows *w, size_t *begin, size_t *end, size_t *first);

#endif
