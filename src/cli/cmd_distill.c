/* lmforge distill: lmforge train with a teacher. The same configuration (file, --key=value,
 * --resume; the teacher is reloaded from the run's saved config on resume) plus the distillation
 * keys; the engine work is src/tech/distill.c, plugged into the training driver. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: lmforge distill --teacher MODEL [--config FILE.json] [--key=value ...] [--resume RUN_OR_CHECKPOINT]\n\n"
               "Trains a student (from the model keys, from init, or with --student_init every_k:K from the teacher's\n"
               "every K-th block) on the data with (1-alpha)*cross-entropy + alpha*(kl|rkl|jsd at temperature T, x T^2)\n"
               "+ hidden_weight*(hidden-state mse|cosine over hidden_layers S:T pairs). The teacher (HF folder, GGUF\n"
               "kept quantized, llama2.c .bin) is frozen and runs forward only; its tokenizer must be the student's.\n"
               "Checkpoints, best/ and resume are those of lmforge train.\n\n"
               "keys (default, meaning):\n");
    lf_train_config_help(f);
}

int cmd_distill(int argc, char **argv) {
    lf_train_config c;
    const char *resume;
    int rc = cli_train_resolve(&c, argc, argv, &resume, "distill", usage);
    if (rc >= 0) return rc;
    if (!c.teacher[0]) {
        fprintf(stderr, "lmforge distill: no teacher: give --teacher MODEL (a model folder, .gguf or llama2.c .bin)\n");
        return 2;
    }
    volatile sig_atomic_t *stop = cli_stop_on_signals();
    lf_train_result r;
    if (lf_train(&c, resume, stop, &r)) return cli_fail("distill");
    return cli_train_summary(&c, &r, "distill");
}
