/* Online augmentation: a batch source that wraps another (the shard loader) and noises the token
 * windows it hands out: span corruption, masking, then a local shuffle of each row's inputs. The
 * targets stay the clean next tokens, so the model learns to predict through the noise. Row r of
 * batch k is noised from (seed, k, r) only; the state is the inner source's words followed by k,
 * so a resumed run draws bit-identical batches. */
#include "lmforge/augment.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    lf_batch_source *inner;
    lf_noise_config c;
    uint64_t k; /* batches drawn */
} noise_ctx;

static lf_status noise_next(lf_batch_source *s, lf_batch *b) {
    noise_ctx *x = s->ctx;
    lf_status st = x->inner->next(x->inner, b);
    if (st) return st;
    for (int r = 0; r < b->B; r++) {
        int32_t *in = b->inputs + (size_t)r * (size_t)b->T;  // (T)
        const int32_t *tg = b->targets + (size_t)r * (size_t)b->T;
        int n = b->T; /* up to the last position that carries loss: padding after it stays put */
        while (n > 0 && tg[n - 1] < 0) n--;
        lf_aug_rng g = {x->c.seed, x->k, (uint64_t)r << 40};
        if (x->c.span > 0) lf_noise_span(in, n, x->c.span, x->c.mask_id, &g);
        if (x->c.mask > 0) lf_noise_mask(in, n, x->c.mask, x->c.mask_id, &g);
        if (x->c.shuffle > 1) lf_noise_shuffle(in, n, x->c.shuffle, &g);
    }
    x->k++;
    return LF_OK;
}

static int noise_get_state(const lf_batch_source *s, uint64_t *words) {
    const noise_ctx *x = s->ctx;
    int n = x->inner->get_state ? x->inner->get_state(x->inner, words) : 0;
    LF_ASSERT(n >= 0 && n < LF_SOURCE_STATE_MAX);
    words[n++] = x->k;
    return n;
}

static lf_status noise_set_state(lf_batch_source *s, const uint64_t *words, int n) {
    noise_ctx *x = s->ctx;
    if (n < 1) {
        lf_set_error("noise source: saved state has no batch counter (a checkpoint from a run without augmentation?)");
        return LF_ERR_FORMAT;
    }
    if (x->inner->set_state) {
        lf_status st = x->inner->set_state(x->inner, words, n - 1);
        if (st) return st;
    }
    x->k = words[n - 1];
    return LF_OK;
}

static void noise_free(lf_batch_source *s) {
    noise_ctx *x = s->ctx;
    lf_batch_source_free(x->inner);
    free(x);
    free(s);
}

lf_status lf_noise_source(lf_batch_source **out, lf_batch_source *inner, const lf_noise_config *c) {
    *out = NULL;
    if (!(c->mask >= 0 && c->mask <= 1 && c->span >= 0 && c->span < 1 && c->shuffle >= 0)) {
        lf_set_error("noise source: aug_mask must be in [0, 1], aug_span in [0, 1), aug_shuffle >= 0");
        return LF_ERR_ARG;
    }
    if ((c->mask > 0 || c->span > 0) && c->mask_id < 0) {
        lf_set_error("noise source: masking needs a mask token id (aug_mask_id >= 0)");
        return LF_ERR_ARG;
    }
    noise_ctx *x = calloc(1, sizeof *x);
    lf_batch_source *s = calloc(1, sizeof *s);
    if (!x || !s) {
        free(x);
        free(s);
        return LF_ERR_NOMEM;
    }
    x->inner = inner;
    x->c = *c;
    *s = (lf_batch_source){"noise", x, noise_next, noise_get_state, noise_set_state, noise_free};
    *out = s;
    return LF_OK;
}
