/* lmforge command-line: one file per subcommand; this header lists them. Only the CLI prints
 * usage or exits. */
#ifndef LF_CLI_H
#define LF_CLI_H

#include <stddef.h>

int cmd_demo(int argc, char **argv);
int cmd_quickstart(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_prepare(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_eval_classify(int argc, char **argv); /* eval --task classify */
int cmd_generate(int argc, char **argv);
int cmd_fetch(int argc, char **argv);
int cmd_lora(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_distill(int argc, char **argv);
/* the training commands' configuration (cmd_train.c): defaults <- a resumed checkpoint's config <-
 * --config FILE <- --key=value. Returns -1 to go on, else the exit code (help printed: 0). */
#include "lmforge/train.h"
int cli_train_resolve(lf_train_config *c, int argc, char **argv, const char **resume, const char *cmd, void (*help)(FILE *));
/* prints a finished lf_train's summary; returns the exit code (130 when interrupted) */
int cli_train_summary(const lf_train_config *c, const lf_train_result *r, const char *cmd);
int cmd_prune(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_augment(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_default(int argc, char **argv); /* no arguments: run the default recipe's quick variant */
#define LMFORGE_VERSION "0.1.0"
/* LoRA adapters for eval/generate/verify: "--adapter DIR[:SCALE][,DIR...]" loaded onto m (list NULL:
 * nothing); prints the error and returns -1 on failure (cmd_lora.c) */
typedef struct lf_model lf_model;
int cli_load_adapters(lf_model *m, const char *list, const char *cmd);

/* A model for inference (eval, generate): a GGUF file keeps its Q8_0/Q4_0/Q4_1/Q4_K/Q6_K linear
 * weights encoded unless keep is 0 (--dequantize); anything else loads as lf_model_load does.
 * cli_quant_option reads --keep-quantized / --dequantize / --int8-activations / --float-activations
 * into *keep (0 dequantized, 1 kept, 2 kept with int8 activations; returns 1 when a is one of them). */
int cli_load_model(lf_model **m, const char *path, int keep);
int cli_quant_option(const char *a, int *keep);
/* the tokenizer that comes with a model: MODEL/tokenizer.json, or the GGUF file itself */
void cli_model_tokenizer(const char *model, char *buf, size_t cap);
/* prints "lmforge <cmd>: <message>" from lf_last_error() and returns 1 */
int cli_fail(const char *cmd);
#include <signal.h>
/* SIGINT/SIGTERM set the returned flag instead of killing the process (training checkpoints, then stops) */
volatile sig_atomic_t *cli_stop_on_signals(void);
/* strict number parsing for options: returns 0 on success */
int cli_parse_float(const char *s, float *out);
int cli_parse_int(const char *s, int *out);

#endif
