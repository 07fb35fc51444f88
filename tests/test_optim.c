/* Optimizer: schedule shapes (warmup, floor, cosine/linear endpoints), decay groups (norms,
 * biases and embeddings excluded unless asked), global-norm clipping, and the non-finite
 * gradient guard (update skipped, weights untouched). */
#include "lmforge/optim.h"
#include "testutil.h"

static void test_schedules(void) {
    lf_schedule s = {LF_SCHED_COSINE, 1.0f, 0.1f, 10, 110};
    CHECK(fabsf(lf_schedule_lr(&s, 0) - 0.1f) < 1e-6f, "warmup step 0: %g", lf_schedule_lr(&s, 0));
    CHECK(fabsf(lf_schedule_lr(&s, 9) - 1.0f) < 1e-6f, "warmup end: %g", lf_schedule_lr(&s, 9));
    CHECK(fabsf(lf_schedule_lr(&s, 10) - 1.0f) < 1e-6f, "cosine start: %g", lf_schedule_lr(&s, 10));
    CHECK(fabsf(lf_schedule_lr(&s, 60) - 0.55f) < 1e-5f, "cosine midpoint: %g", lf_schedule_lr(&s, 60));
    CHECK(fabsf(lf_schedule_lr(&s, 110) - 0.1f) < 1e-6f, "cosine floor: %g", lf_schedule_lr(&s, 110));
    CHECK(fabsf(lf_schedule_lr(&s, 500) - 0.1f) < 1e-6f, "past the end stays at the floor: %g", lf_schedule_lr(&s, 500));
    s.kind = LF_SCHED_LINEAR;
    CHECK(fabsf(lf_schedule_lr(&s, 60) - 0.55f) < 1e-5f, "linear midpoint: %g", lf_schedule_lr(&s, 60));
    s.kind = LF_SCHED_CONSTANT;
    CHECK(lf_schedule_lr(&s, 100) == 1.0f, "constant");
    float prev = 2.0f;
    int mono = 1;
    s.kind = LF_SCHED_COSINE;
    for (int i = 10; i < 120; i++) {
        float lr = lf_schedule_lr(&s, i);
        mono &= lr <= prev;
        prev = lr;
    }
    CHECK(mono, "cosine decay is not monotone");
    lf_sched_kind k;
    CHECK(lf_schedule_parse("cosine", &k) == LF_OK && k == LF_SCHED_COSINE, "parse cosine");
    CHECK(lf_schedule_parse("cosin", &k) == LF_ERR_ARG, "parse typo must fail");
}

static lf_model *tiny(void) {
    lf_config c;
    lf_config_defaults(&c, LF_ARCH_GPT2);
    c.vocab_size = 11;
    c.d_model = 8;
    c.n_layer = 1;
    c.n_head = 2;
    c.n_kv_head = 2;
    c.head_dim = 4;
    c.d_ff = 16;
    c.max_seq = 8;
    lf_model *m;
    LF_ASSERT(lf_model_init(&m, &c) == LF_OK);
    lf_model_init_weights(m, 3);
    return m;
}

static void test_groups_and_clip(void) {
    lf_model *m = tiny();
    lf_adamw_config oc;
    lf_adamw_defaults(&oc);
    oc.weight_decay = 0.5f;
    oc.grad_clip = 0.25f;
    lf_optim *o;
    LF_ASSERT(lf_optim_init(&o, m, &oc) == LF_OK);
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        int decays = (p->flags & LF_PARAM_DECAY) != 0;
        CHECK(decays == (p->kind == LF_KIND_WEIGHT), "%s: decay flag %d for kind %d", p->name, decays, p->kind);
    }
    /* zero gradients: only decayed tensors move, by exactly lr*wd*p */
    lf_model_zero_grad(m);
    lf_param *w = lf_model_find(m, "transformer.h.0.mlp.c_fc.weight"), *ln = lf_model_find(m, "transformer.ln_f.weight");
    lf_param *e = lf_model_find(m, "transformer.wte.weight");
    float w0 = w->data[0], ln0 = ln->data[0], e0 = e->data[0];
    float norm;
    CHECK(lf_optim_step(o, 0.1f, &norm) == LF_OK && norm == 0.0f, "zero-gradient step");
    CHECK(fabsf(w->data[0] - w0 * (1 - 0.05f)) < 1e-7f, "weight decay: %g -> %g", w0, w->data[0]);
    CHECK(ln->data[0] == ln0 && e->data[0] == e0, "norms and embeddings must not decay by default");
    /* clipping: a gradient of norm 5 is scaled to 0.25 before the update */
    lf_model_zero_grad(m);
    w->grad[0] = 3.0f;
    w->grad[1] = 4.0f;
    CHECK(lf_optim_step(o, 0.1f, &norm) == LF_OK && fabsf(norm - 5.0f) < 1e-6f, "pre-clip norm %g", norm);
    float *mom = lf_optim_moment(o, w, 0, 0);
    /* m = 0.9*0 + 0.1 * (3 * 0.25/5) after the clip */
    CHECK(fabsf(mom[0] - 0.1f * 3.0f * 0.05f) < 1e-6f, "clipped first moment %g", mom[0]);
    /* non-finite gradient: refused, nothing moves */
    lf_model_zero_grad(m);
    w->grad[2] = NAN;
    float before = w->data[3];
    int t = lf_optim_t(o);
    CHECK(lf_optim_step(o, 0.1f, &norm) == LF_ERR_ARG && !isfinite(norm), "NaN gradient must be refused");
    CHECK(w->data[3] == before && lf_optim_t(o) == t, "NaN step changed weights or the step count");
    lf_optim_free(o);
    /* asking for decay on embeddings and norms widens the group */
    oc.decay_embeddings = 1;
    oc.decay_norms_biases = 1;
    LF_ASSERT(lf_optim_init(&o, m, &oc) == LF_OK);
    CHECK((e->flags & LF_PARAM_DECAY) && (ln->flags & LF_PARAM_DECAY), "decay_embeddings / decay_norms_biases ignored");
    lf_optim_free(o);
    lf_model_free(m);
}

int main(void) {
    test_schedules();
    test_groups_and_clip();
    return tu_finish("test_optim");
}
