/* lmforge demo: build a tiny Llama- or GPT-2-family model over bytes, train it through the
 * trainer for a few hundred AdamW steps on a built-in public-domain text, and print the training
 * loss and the held-out loss falling. Shows the trainer with batch sources of one's own. */
#include "cli.h"
#include "lmforge/train.h"

#include <math.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char demo_text[] =
    "Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in "
    "Liberty, and dedicated to the proposition that all men are created equal.\n"
    "Now we are engaged in a great civil war, testing whether that nation, or any nation so conceived and so "
    "dedicated, can long endure. We are met on a great battle-field of that war. We have come to dedicate a "
    "portion of that field, as a final resting place for those who here gave their lives that that nation might "
    "live. It is altogether fitting and proper that we should do this.\n"
    "But, in a larger sense, we can not dedicate -- we can not consecrate -- we can not hallow -- this ground. "
    "The brave men, living and dead, who struggled here, have consecrated it, far above our poor power to add or "
    "detract. The world will little note, nor long remember what we say here, but it can never forget what they "
    "did here. It is for us the living, rather, to be dedicated here to the unfinished work which they who "
    "fought here have thus far so nobly advanced. It is rather for us to be here dedicated to the great task "
    "remaining before us -- that from these honored dead we take increased devotion to that cause for which they "
    "gave the last full measure of devotion -- that we here highly resolve that these dead shall not have died "
    "in vain -- that this nation, under God, shall have a new birth of freedom -- and that government of the "
    "people, by the people, for the people, shall not perish from the earth.\n"
    "We the People of the United States, in Order to form a more perfect Union, establish Justice, insure "
    "domestic Tranquility, provide for the common defence, promote the general Welfare, and secure the Blessings "
    "of Liberty to ourselves and our Posterity, do ordain and establish this Constitution for the United States "
    "of America.\n"
    "When in the Course of human events, it becomes necessary for one people to dissolve the political bands "
    "which have connected them with another, and to assume among the powers of the earth, the separate and equal "
    "station to which the Laws of Nature and of Nature's God entitle them, a decent respect to the opinions of "
    "mankind requires that they should declare the causes which impel them to the separation.\n"
    "We hold these truths to be self-evident, that all men are created equal, that they are endowed by their "
    "Creator with certain unalienable Rights, that among these are Life, Liberty and the pursuit of Happiness. "
    "That to secure these rights, Governments are instituted among Men, deriving their just powers from the "
    "consent of the governed.\n";

/* Batch sources over the built-in text: random windows of the training part (drawn from
 * (seed, step, row), so batch k is the same whatever came before) or consecutive windows of the
 * held-out part. */
typedef struct {
    const unsigned char *text;
    size_t lo, hi;
    int random;
    uint64_t seed, step, pos;
} text_src;

static lf_status text_next(lf_batch_source *s, lf_batch *b) {
    text_src *c = s->ctx;
    for (int r = 0; r < b->B; r++) {
        size_t start;
        if (c->random) {
            start = c->lo + lf_hash64(c->seed, c->step, (uint64_t)r) % (c->hi - c->lo - (size_t)b->T - 1);
        } else {
            if (c->pos + (size_t)b->T + 1 > c->hi) c->pos = c->lo;
            start = c->pos;
            c->pos += (size_t)b->T;
        }
        for (int t = 0; t < b->T; t++) {
            b->inputs[r * b->T + t] = c->text[start + t];
            b->targets[r * b->T + t] = c->text[start + t + 1];
        }
    }
    c->step++;
    return LF_OK;
}

static int cmd_demo_run(int steps, int gpt2, uint64_t seed);

int cmd_demo(int argc, char **argv) {
    int steps = 300;
    int gpt2 = 0;
    uint64_t seed = 1337;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], &steps) || steps < 1) {
                fprintf(stderr, "lmforge demo: --steps needs a positive integer\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--arch") && i + 1 < argc) {
            i++;
            if (!strcmp(argv[i], "gpt2")) gpt2 = 1;
            else if (strcmp(argv[i], "llama")) {
                fprintf(stderr, "lmforge demo: --arch must be gpt2 or llama\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            int s;
            if (cli_parse_int(argv[++i], &s)) {
                fprintf(stderr, "lmforge demo: --seed needs an integer\n");
                return 2;
            }
            seed = (uint64_t)s;
        } else {
            printf("usage: lmforge demo [--arch llama|gpt2] [--steps N] [--seed S]\n");
            return strcmp(argv[i], "--help") && strcmp(argv[i], "-h") ? 2 : 0;
        }
    }
    return cmd_demo_run(steps, gpt2, seed);
}

static int cmd_demo_run(int steps, int gpt2, uint64_t seed) {
    int B = 8, T = 64;
    lf_config c;
    lf_config_defaults(&c, gpt2 ? LF_ARCH_GPT2 : LF_ARCH_LLAMA);
    c.vocab_size = 256; /* bytes */
    c.d_model = 64;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_kv_head = gpt2 ? 4 : 2;
    c.head_dim = 16;
    c.d_ff = gpt2 ? 256 : 172;
    c.max_seq = T;
    c.dropout_resid = 0.05f;
    lf_model *m;
    if (lf_model_init(&m, &c)) return cli_fail("demo");
    lf_model_init_weights(m, seed);
    const unsigned char *text = (const unsigned char *)demo_text;
    size_t len = sizeof demo_text - 1, split = len * 9 / 10;
    text_src tc = {text, 0, split, 1, seed, 0, 0}, vc = {text, split, len, 0, 0, 0, split};
    lf_batch_source train = {"demo-train", &tc, text_next, NULL, NULL, NULL};
    lf_batch_source val = {"demo-val", &vc, text_next, NULL, NULL, NULL};
    lf_trainer_opts o = {.ctx = {0, seed}, .B = B, .T = T, .grad_accum = 1,
                         .schedule = {LF_SCHED_COSINE, 3e-3f, 3e-4f, steps / 15, steps}};
    lf_adamw_defaults(&o.adamw);
    o.adamw.weight_decay = 0.05f;
    lf_trainer *tr;
    if (lf_trainer_init(&tr, m, &train, &o) || lf_trainer_add_loss(tr, lf_loss_ce_new(0.0f))) {
        lf_model_free(m);
        return cli_fail("demo");
    }
    int val_batches = (int)((len - split - 1) / (size_t)T); /* every held-out window once, one row each */
    printf("lmforge demo: %s-family model, %zu parameters, byte-level, trained on %zu bytes of built-in text "
           "(%zu held out), %d threads\n",
           gpt2 ? "GPT-2" : "Llama", lf_model_num_scalars(m), split, len - split, lf_num_threads());
    double val0 = NAN, val1 = NAN;
    int rc = 0, stop;
    vc.pos = split;
    if (lf_trainer_evaluate(tr, &val, 1, val_batches, &val0, &stop)) rc = cli_fail("demo");
    float first = 0.0f, ema = 0.0f;
    double t0 = lf_now();
    for (int step = 0; step < steps && !rc; step++) {
        lf_step_info s;
        if (lf_trainer_step(tr, &s, &stop)) {
            rc = cli_fail("demo");
            break;
        }
        if (!s.finite) fprintf(stderr, "lmforge demo: step %d: non-finite loss or gradient, update skipped\n", step + 1);
        ema = step == 0 ? s.loss : 0.9f * ema + 0.1f * s.loss;
        if (step == 0) first = s.loss;
        if (step == 0 || (step + 1) % 25 == 0 || step + 1 == steps) {
            double el = lf_now() - t0;
            printf("step %4d/%d  loss %.4f  lr %.2e  grad_norm %.3f  %.0f tok/s\n", step + 1, steps, ema, s.lr, s.grad_norm,
                   (double)(step + 1) * B * T / (el > 0 ? el : 1e-9));
            fflush(stdout);
        }
    }
    vc.pos = split;
    if (!rc && lf_trainer_evaluate(tr, &val, 1, val_batches, &val1, &stop)) rc = cli_fail("demo");
    if (!rc) {
        printf("train loss %.3f -> %.3f; held-out loss %.3f -> %.3f (uniform over bytes: %.3f); %.1f s\n", first, ema,
               val0, val1, 5.545f, lf_now() - t0);
        if (!(ema < 0.6f * first)) {
            fprintf(stderr, "lmforge demo: training loss did not fall as expected\n");
            rc = 1;
        }
    }
    lf_trainer_free(tr);
    lf_model_free(m);
    return rc;
}
