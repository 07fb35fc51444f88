/* lmforge demo (the default job for now): build a tiny Llama- or GPT-2-family model over bytes,
 * train it for a few hundred AdamW steps on a built-in public-domain text, and print the
 * training loss and the held-out loss falling. Later issues replace this with the KJV pipeline. */
#include "cli.h"
#include "lmforge/model.h"
#include "lmforge/optim.h"

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

/* mean loss over consecutive windows of text[lo, hi) */
static float eval_loss(lf_model *m, const unsigned char *text, size_t lo, size_t hi, int T, int32_t *x, int32_t *y) {
    double s = 0.0;
    int n = 0;
    for (size_t p = lo; p + T + 1 <= hi; p += T) {
        for (int t = 0; t < T; t++) {
            x[t] = text[p + t];
            y[t] = text[p + t + 1];
        }
        float l;
        if (lf_model_forward(m, x, y, 1, T, &l)) return -1.0f;
        s += l;
        n++;
    }
    return n ? (float)(s / n) : 0.0f;
}

int cmd_demo(int argc, char **argv) {
    int steps = 300, B = 8, T = 64;
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
    lf_adamw_config oc;
    lf_adamw_defaults(&oc);
    oc.weight_decay = 0.05f;
    lf_optim *opt;
    if (lf_optim_init(&opt, m, &oc)) {
        lf_model_free(m);
        return cli_fail("demo");
    }
    lf_schedule sched = {LF_SCHED_COSINE, 3e-3f, 3e-4f, steps / 15, steps};
    const unsigned char *text = (const unsigned char *)demo_text;
    size_t len = sizeof demo_text - 1, split = len * 9 / 10;
    int32_t *x = malloc(sizeof(int32_t) * B * T), *y = malloc(sizeof(int32_t) * B * T);
    if (!x || !y) {
        free(x);
        free(y);
        return 1;
    }
    printf("lmforge demo: %s-family model, %zu parameters, byte-level, trained on %zu bytes of built-in text "
           "(%zu held out), %d threads\n",
           gpt2 ? "GPT-2" : "Llama", lf_model_num_scalars(m), split, len - split, lf_num_threads());
    float val0 = eval_loss(m, text, split, len, T, x, y);
    float first = 0.0f, last = 0.0f, ema = 0.0f;
    double t0 = lf_now();
    int rc = 0;
    for (int step = 0; step < steps; step++) {
        for (int b = 0; b < B; b++) {
            size_t start = lf_hash64(seed, (uint64_t)step, (uint64_t)b) % (split - T - 1);
            for (int t = 0; t < T; t++) {
                x[b * T + t] = text[start + t];
                y[b * T + t] = text[start + t + 1];
            }
        }
        float loss, norm, lr = lf_schedule_lr(&sched, step);
        lf_model_set_training(m, 1, lf_hash64(seed, 0xd0d0, (uint64_t)step));
        lf_model_zero_grad(m);
        if (lf_model_forward(m, x, y, B, T, &loss) || lf_model_backward(m, 1.0f)) {
            rc = cli_fail("demo");
            break;
        }
        if (lf_optim_step(opt, lr, &norm)) fprintf(stderr, "lmforge demo: step %d: %s\n", step + 1, lf_last_error());
        ema = step == 0 ? loss : 0.9f * ema + 0.1f * loss;
        if (step == 0) first = loss;
        last = ema;
        if (step == 0 || (step + 1) % 25 == 0 || step + 1 == steps) {
            double el = lf_now() - t0;
            printf("step %4d/%d  loss %.4f  lr %.2e  grad_norm %.3f  %.0f tok/s\n", step + 1, steps, ema, lr, norm,
                   (double)(step + 1) * B * T / (el > 0 ? el : 1e-9));
            fflush(stdout);
        }
    }
    lf_model_set_training(m, 0, 0);
    float val1 = eval_loss(m, text, split, len, T, x, y);
    if (!rc) {
        printf("train loss %.3f -> %.3f; held-out loss %.3f -> %.3f (uniform over bytes: %.3f); %.1f s\n", first, last,
               val0, val1, 5.545f, lf_now() - t0);
        if (!(last < 0.6f * first)) {
            fprintf(stderr, "lmforge demo: training loss did not fall as expected\n");
            rc = 1;
        }
    }
    free(x);
    free(y);
    lf_optim_free(opt);
    lf_model_free(m);
    return rc;
}
