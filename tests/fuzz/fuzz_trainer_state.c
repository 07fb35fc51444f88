/* Trainer state (lf_trainer_load_state): the input is trainer_state.json beside a valid
 * trainer_state.safetensors saved once from a tiny Llama with a LoRA-style extra tensor. Every
 * value must be checked before it is used; an accepted state lets the trainer take a step. */
#include "fuzz_common.h"
#include "lmforge/loss.h"
#include "lmforge/train.h"

static lf_trainer *trainer;
static char json_path[128];

typedef struct {
    uint64_t step;
} synth_src;

static lf_status synth_next(lf_batch_source *s, lf_batch *b) {
    synth_src *c = s->ctx;
    for (int i = 0; i < b->B * b->T; i++) {
        b->inputs[i] = (int32_t)((c->step * 7 + (uint64_t)i) % 29);
        b->targets[i] = (b->inputs[i] * 5 + 1) % 29;
    }
    c->step++;
    return LF_OK;
}
static int synth_get(const lf_batch_source *s, uint64_t *w) {
    w[0] = ((synth_src *)s->ctx)->step;
    return 1;
}
static lf_status synth_set(lf_batch_source *s, const uint64_t *w, int n) {
    if (n != 1) {
        lf_set_error("synth source: %d state words, expected 1", n);
        return LF_ERR_FORMAT;
    }
    ((synth_src *)s->ctx)->step = w[0];
    return LF_OK;
}

static synth_src src_state;
static lf_batch_source src = {"synth", &src_state, synth_next, synth_get, synth_set, NULL};
static lf_model *model;

static void done(void) {
    lf_trainer_free(trainer);
    lf_model_free(model);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    lf_config c;
    lf_config_defaults(&c, LF_ARCH_LLAMA);
    c.vocab_size = 29;
    c.d_model = 8;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_kv_head = 1;
    c.head_dim = 4;
    c.d_ff = 12;
    c.max_seq = 8;
    c.tie_embeddings = 0;
    LF_ASSERT(lf_model_init(&model, &c) == LF_OK);
    lf_model_init_weights(model, 1);
    LF_ASSERT(lf_model_set_trainable(model, "model.layers.0.", 0, NULL) == LF_OK); /* some frozen: no moments */
    lf_param *extra;
    LF_ASSERT(lf_model_add_param(model, "head.extra", 2, 8, LF_KIND_WEIGHT, LF_PARAM_TRAINABLE, &extra) == LF_OK);
    lf_trainer_opts o = {.ctx = {1, 3}, .B = 1, .T = 4, .grad_accum = 1};
    lf_adamw_defaults(&o.adamw);
    o.schedule = (lf_schedule){LF_SCHED_CONSTANT, 1e-3f, 1e-3f, 0, 10};
    LF_ASSERT(lf_trainer_init(&trainer, model, &src, &o) == LF_OK);
    LF_ASSERT(lf_trainer_add_loss(trainer, lf_loss_ce_new(0.0f)) == LF_OK);
    LF_ASSERT(lf_trainer_step(trainer, NULL, NULL) == LF_OK);
    LF_ASSERT(lf_trainer_save_state(trainer, fuzz_tmpdir(), "{\"note\": 1}") == LF_OK);
    fuzz_path(json_path, sizeof json_path, "trainer_state.json");
    if (getenv("LF_FUZZ_DUMP_STATE")) { /* make_corpus.py: the saved JSON is the seed */
        size_t len;
        char *b = lf_read_file(json_path, &len);
        LF_ASSERT(b);
        fuzz_write(getenv("LF_FUZZ_DUMP_STATE"), b, len);
        free(b);
    }
    atexit(done);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write(json_path, data, size);
    char *extra = NULL;
    lf_status st = lf_trainer_load_state(trainer, fuzz_tmpdir(), &extra);
    if (st != LF_OK) {
        FUZZ_CHECK(lf_last_error()[0], "a refusal without a message");
        FUZZ_CHECK(!extra, "extra JSON handed out on failure");
        return 0;
    }
    FUZZ_CHECK(extra, "no extra JSON on success");
    free(extra);
    FUZZ_CHECK(lf_trainer_step_count(trainer) >= 0, "negative step");
    return 0;
}
