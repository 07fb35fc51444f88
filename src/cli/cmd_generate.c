/* lmforge generate MODEL --prompt TEXT: KV-cache decoding, streamed token by token (or, with
 * --json, the token ids and the prompt / generation timings for benchmarks and tests). */
#include "cli.h"
#include "lmforge/ckpt.h"
#include "lmforge/eval.h"
#include "lmforge/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const lf_tokenizer *t;
    int json;       /* collect the ids instead of printing the text */
    lf_ids ids;
    double t_first; /* when the first new token came: the prompt's decode ends there */
} gen_out;

/* streamed as it comes */
static int print_piece(void *ctx, int id) {
    gen_out *g = ctx;
    if (!g->ids.n) g->t_first = lf_now();
    lf_ids_push(&g->ids, id);
    if (g->json) return 0;
    size_t len;
    const char *piece = lf_tokenizer_piece(g->t, id, &len);
    if (piece && id < lf_tokenizer_vocab_size(g->t)) fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static void print_ids(const char *key, const lf_ids *ids) {
    printf("\"%s\": [", key);
    for (size_t i = 0; i < ids->n; i++) printf(i ? ", %d" : "%d", ids->ids[i]);
    printf("]");
}

int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *prompt = "", *tokp = NULL, *adapters = NULL;
    int max_tokens = 100, stop_eos = 1, json = 0, keep = 1;
    lf_sampler s = {0.8f, 40, 1.0f, 42};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc, seed;
        if (cli_quant_option(a, &keep)) continue;
        if (!strcmp(a, "--prompt") && has) prompt = argv[++i];
        else if (!strcmp(a, "--tokenizer") && has) tokp = argv[++i];
        else if (!strcmp(a, "--adapter") && has) adapters = argv[++i];
        else if (!strcmp(a, "--max-tokens") && has) {
            if (cli_parse_int(argv[++i], &max_tokens) || max_tokens < 0 || max_tokens > (1 << 24)) {
                fprintf(stderr, "lmforge generate: --max-tokens needs an integer in 0..16777216, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--temperature") && has) {
            if (cli_parse_float(argv[++i], &s.temperature) || !isfinite(s.temperature) || s.temperature < 0) {
                fprintf(stderr, "lmforge generate: --temperature needs a finite number >= 0 (0 = greedy), got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--top-k") && has) {
            if (cli_parse_int(argv[++i], &s.top_k) || s.top_k < 0) {
                fprintf(stderr, "lmforge generate: --top-k needs an integer >= 0 (0 = off), got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--top-p") && has) {
            if (cli_parse_float(argv[++i], &s.top_p) || !(s.top_p > 0 && s.top_p <= 1)) {
                fprintf(stderr, "lmforge generate: --top-p needs a number in (0, 1] (1 = off), got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--seed") && has) {
            if (cli_parse_int(argv[++i], &seed)) goto usage;
            s.seed = (uint64_t)seed;
        } else if (!strcmp(a, "--greedy")) s.temperature = 0;
        else if (!strcmp(a, "--ignore-eos")) stop_eos = 0;
        else if (!strcmp(a, "--json")) json = 1;
        else if (a[0] != '-' && !model) model = a;
        else goto usage;
    }
    if (!model) goto usage;
    lf_model *m;
    if (cli_load_model(&m, model, keep)) return cli_fail("generate");
    if (cli_load_adapters(m, adapters, "generate")) {
        lf_model_free(m);
        return 1;
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizer.json", model);
    lf_tokenizer *t;
    int gguf = lf_is_gguf(model); /* a GGUF carries its tokenizer; its prompts may hold special tokens (chat templates) */
    if (gguf && !tokp) tokp = model;
    if (lf_tokenizer_load(&t, tokp ? tokp : p)) {
        lf_model_free(m);
        return cli_fail("generate");
    }
    const lf_config *mc = lf_model_config(m);
    lf_ids ids = {0};
    unsigned flags = lf_tokenizer_kind(t) == LF_TOK_SENTENCEPIECE ? LF_ENC_BOS : 0;
    if (gguf) flags |= LF_ENC_ALLOW_SPECIAL;
    lf_tokenizer_encode(t, prompt, strlen(prompt), flags, &ids);
    if (ids.n == 0 && lf_tokenizer_eos(t) >= 0) lf_ids_push(&ids, lf_tokenizer_eos(t)); /* empty prompt: start a document */
    int rc = 0;
    if (ids.n == 0 || (int)ids.n >= mc->max_seq) {
        fprintf(stderr, "lmforge generate: the prompt has %zu tokens; the model takes 1..%d\n", ids.n, mc->max_seq - 1);
        rc = 2;
    }
    if (!json) {
        fputs(prompt, stdout);
        fflush(stdout);
    }
    gen_out g = {t, json, {0}, 0.0};
    double t0 = lf_now();
    int made = 0;
    if (!rc && lf_generate(m, ids.ids, (int)ids.n, max_tokens, &s, stop_eos ? lf_tokenizer_eos(t) : -1, print_piece, &g, &made))
        rc = cli_fail("generate");
    double t1 = lf_now(), dt = t1 - t0;
    if (!g.ids.n) g.t_first = t1;
    /* after the first new token, one decode step per token (the last one's logits go unused) */
    double gen_s = t1 - g.t_first;
    if (json && !rc) {
        printf("{\"model\": \"%s\", \"prompt_tokens\": %zu, \"new_tokens\": %d, \"prompt_seconds\": %.6f, "
               "\"gen_seconds\": %.6f, \"tokens_per_s\": %.3f, ",
               model, ids.n, made, g.t_first - t0, gen_s, made / (gen_s > 0 ? gen_s : 1e-9));
        print_ids("prompt_ids", &ids);
        printf(", ");
        print_ids("ids", &g.ids);
        printf("}\n");
    } else if (!json) {
        fputc('\n', stdout);
        fflush(stdout);
        fprintf(stderr, "[%d tokens in %.2f s, %.1f tokens/s; prompt %zu tokens in %.2f s, then %.1f tokens/s]\n", made, dt,
                made / (dt > 0 ? dt : 1e-9), ids.n, g.t_first - t0, made / (gen_s > 0 ? gen_s : 1e-9));
    }
    lf_ids_free(&g.ids);
    lf_ids_free(&ids);
    lf_tokenizer_free(t);
    lf_model_free(m);
    return rc;
usage:
    fprintf(stderr, "usage: lmforge generate MODEL [--prompt TEXT] [--max-tokens N] [--temperature T] [--top-k K]\n"
                    "                               [--top-p P] [--seed S] [--greedy] [--ignore-eos] [--tokenizer PATH]\n"
                    "                               [--adapter DIR[:SCALE][,DIR...]] [--keep-quantized | --dequantize] [--json]\n"
                    "                               [--int8-activations | --float-activations]\n"
                    "  --int8-activations  a GGUF's quantized weights run integer dot products with activations rounded\n"
                    "          to int8 blocks of 32 (llama.cpp's way); default float32 activations (eval --kld-base measures both)\n"
                    "  --json  no text: one JSON line with the prompt's and the new token ids, the prompt's time and\n"
                    "          the generation's (from the first new token on: one decode step per token) in tokens/s\n");
    return 2;
}
