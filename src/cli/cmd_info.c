/* lmforge info MODEL / lmforge convert MODEL OUTDIR: inspect a model's configuration and named
 * parameter table; re-save any loadable model as a Hugging Face directory. */
#include "cli.h"
#include "lmforge/ckpt.h"
#include "lmforge/model.h"
#include "lmforge/tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

int cmd_info(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        printf("usage: lmforge info MODEL   (a Hugging Face model directory or a llama2.c .bin file)\n");
        return argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? 0 : 2;
    }
    lf_model *m;
    if (lf_model_load(&m, argv[1])) return cli_fail("info");
    const lf_config *c = lf_model_config(m);
    printf("architecture   %s\n", c->arch == LF_ARCH_GPT2 ? "gpt2" : "llama");
    printf("vocab_size     %d\nd_model        %d\nn_layer        %d\nn_head         %d\nn_kv_head      %d\n"
           "head_dim       %d\nd_ff           %d\nmax_seq        %d\nnorm_eps       %g\n",
           c->vocab_size, c->d_model, c->n_layer, c->n_head, c->n_kv_head, c->head_dim, c->d_ff, c->max_seq,
           c->norm_eps);
    if (c->arch == LF_ARCH_LLAMA) printf("rope_theta     %g\n", c->rope_theta);
    printf("tied head      %s\nparameters     %zu\n\n", c->tie_embeddings ? "yes" : "no", lf_model_num_scalars(m));
    static const char *kinds[] = {"weight", "embed", "norm", "bias"};
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        int64_t hs[2];
        lf_param_hf_shape(p, hs);
        char shape[48];
        if (p->ndim == 2) snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)hs[0], (long long)hs[1]);
        else snprintf(shape, sizeof shape, "[%lld]", (long long)hs[0]);
        printf("%-56s %-14s %-6s %s\n", p->name, shape, kinds[p->kind], (p->flags & LF_PARAM_DECAY) ? "decay" : "");
    }
    lf_model_free(m);
    return 0;
}

int cmd_convert(int argc, char **argv) {
    if (argc != 3 || argv[1][0] == '-') {
        printf("usage: lmforge convert MODEL OUTDIR   (writes OUTDIR/config.json + model.safetensors)\n");
        return argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? 0 : 2;
    }
    lf_model *m;
    if (lf_model_load(&m, argv[1])) return cli_fail("convert");
    if (lf_hf_save(m, argv[2])) {
        lf_model_free(m);
        return cli_fail("convert");
    }
    if (lf_is_gguf(argv[1])) { /* a GGUF carries its tokenizer: write it beside the weights */
        lf_gguf *g;
        lf_tokenizer *tok = NULL;
        char tp[4096];
        snprintf(tp, sizeof tp, "%s/tokenizer.json", argv[2]);
        size_t ml = 0;
        const char *tm = NULL;
        if (lf_gguf_open(&g, argv[1]) == LF_OK && (tm = lf_gguf_get_str(g, "tokenizer.ggml.model", &ml)) &&
            ml == 8 && !memcmp(tm, "no_vocab", 8)) {
            lf_gguf_close(g); /* written without a tokenizer: nothing to put beside the weights */
        } else if (g) {
            if (lf_gguf_find_kv(g, "tokenizer.ggml.model") && lf_gguf_tokenizer(&tok, g) == LF_OK &&
                lf_tokenizer_save_json(tok, tp) == LF_OK) {
                printf("wrote %s\n", tp);
                /* BOS/EOS names for transformers (and lm-eval), which read them from here; llama.cpp
                 * adds BOS only for SentencePiece vocabularies unless the metadata says otherwise */
                int64_t ab = lf_tokenizer_kind(tok) == LF_TOK_SENTENCEPIECE;
                if (lf_gguf_get_int(g, "tokenizer.ggml.add_bos_token", ab, 0, 1, &ab) < 0) ab = 0;
                json_t *tc = json_object();
                size_t n;
                const char *pc;
                if (lf_tokenizer_bos(tok) >= 0 && (pc = lf_tokenizer_piece(tok, lf_tokenizer_bos(tok), &n)))
                    json_object_set_new(tc, "bos_token", json_stringn(pc, n));
                if (lf_tokenizer_eos(tok) >= 0 && (pc = lf_tokenizer_piece(tok, lf_tokenizer_eos(tok), &n)))
                    json_object_set_new(tc, "eos_token", json_stringn(pc, n));
                json_object_set_new(tc, "add_bos_token", json_boolean(ab != 0));
                json_object_set_new(tc, "add_eos_token", json_false());
                json_object_set_new(tc, "tokenizer_class", json_string("PreTrainedTokenizerFast"));
                json_object_set_new(tc, "model_max_length", json_integer(lf_model_config(m)->max_seq));
                char *js = json_dumps(tc, JSON_INDENT(2));
                json_decref(tc);
                snprintf(tp, sizeof tp, "%s/tokenizer_config.json", argv[2]);
                if (!js || lf_write_file_atomic(tp, js, strlen(js)) != LF_OK)
                    fprintf(stderr, "convert: %s not written\n", tp);
                free(js);
            }
            else if (lf_gguf_find_kv(g, "tokenizer.ggml.model"))
                fprintf(stderr, "convert: tokenizer not written: %s\n", lf_last_error());
            lf_tokenizer_free(tok);
            lf_gguf_close(g);
        }
    }
    printf("wrote %s (%zu parameters)\n", argv[2], lf_model_num_scalars(m));
    lf_model_free(m);
    return 0;
}
