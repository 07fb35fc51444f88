/* lmforge quantize MODEL --type TYPE --out OUT.gguf: any model lmforge loads, written as a GGUF file
 * for llama.cpp with its linear weights in TYPE (f32, f16, bf16, q8_0, q4_0, q4_1, q4_k) and the
 * tokenizer beside it in the metadata. A GGUF input is read with its weights kept encoded, so a
 * tensor already in TYPE is copied as it is rather than rounded a second time. */
#include "cli.h"
#include "lmforge/ckpt.h"
#include "lmforge/quant.h"
#include "lmforge/seqcls.h"
#include "lmforge/tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_type(const char *opt, const char *s, lf_qtype *t) {
    if (lf_qtype_parse(s, t) == LF_OK && *t != LF_QT_Q6_K) return 0;
    fprintf(stderr, "lmforge quantize: %s '%s' is not a type lmforge writes (f32, f16, bf16, q8_0, q4_0, q4_1, q4_k)\n",
            opt, s);
    return -1;
}

int cmd_quantize(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *type = NULL, *fallback = NULL, *embed = NULL, *tokp = NULL, *name = NULL;
    int quiet = 0, no_tok = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--type") && has) type = argv[++i];
        else if (!strcmp(a, "--out") && has) out = argv[++i];
        else if (!strcmp(a, "--fallback") && has) fallback = argv[++i];
        else if (!strcmp(a, "--embeddings") && has) embed = argv[++i];
        else if (!strcmp(a, "--tokenizer") && has) tokp = argv[++i];
        else if (!strcmp(a, "--name") && has) name = argv[++i];
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--no-tokenizer")) no_tok = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) goto help;
        else if (a[0] != '-' && !model) model = a;
        else goto usage;
    }
    if (!model || !out || !type) goto usage;
    lf_gguf_save_opts o;
    lf_qtype t;
    if (parse_type("--type", type, &t)) return 2;
    lf_gguf_save_opts_default(&o, t);
    if (fallback && parse_type("--fallback", fallback, &o.fallback)) return 2;
    if (embed && parse_type("--embeddings", embed, &o.embed)) return 2;
    if (lf_is_dir(out)) {
        fprintf(stderr, "lmforge quantize: --out %s is a folder; give the path of the .gguf file to write\n", out);
        return 2;
    }
    if (!lf_path_exists(model)) {
        fprintf(stderr, "lmforge quantize: %s: no such model (a Hugging Face folder, a .gguf file or a llama2.c .bin)\n",
                model);
        return 1;
    }
    lf_model *m = NULL;
    int gguf = lf_is_gguf(model);
    lf_gguf_load_opts lo = {.keep_quantized = 1};
    if (gguf ? lf_gguf_load_with(&m, NULL, model, &lo) : lf_model_load(&m, model)) return cli_fail("quantize");
    char p[4096];
    cli_model_tokenizer(model, p, sizeof p);
    lf_tokenizer *tok = NULL;
    if (no_tok) {
    } else if (tokp || lf_path_exists(p)) {
        if (lf_tokenizer_load(&tok, tokp ? tokp : p)) {
            lf_model_free(m);
            return cli_fail("quantize");
        }
    } else if (!quiet) {
        fprintf(stderr, "lmforge quantize: note: no tokenizer (%s, --tokenizer): the file gets none\n", p);
    }
    static char nb[256];
    char *chat = NULL; /* the chat template goes along: a GGUF's own, or tokenizer_config.json's */
    if (gguf) { /* a GGUF input keeps its own general.name */
        lf_gguf *g;
        size_t len = 0;
        const char *gs;
        if (lf_gguf_open(&g, model) == LF_OK) {
            if (!name && (gs = lf_gguf_get_str(g, "general.name", &len)) && len > 0) {
                snprintf(nb, sizeof nb, "%.*s", (int)(len < sizeof nb ? len : sizeof nb - 1), gs);
                name = nb;
            }
            if ((gs = lf_gguf_get_str(g, "tokenizer.chat_template", &len)) && len > 0 && !memchr(gs, 0, len))
                chat = strndup(gs, len);
            lf_gguf_close(g);
        }
    } else if (lf_is_dir(model)) {
        char tc[4200];
        snprintf(tc, sizeof tc, "%s/tokenizer_config.json", model);
        json_t *j = lf_path_exists(tc) ? json_load_file(tc, 0, NULL) : NULL;
        const char *ct = json_string_value(json_object_get(j, "chat_template"));
        if (ct) chat = strdup(ct);
        json_decref(j);
    }
    o.chat_template = tok ? chat : NULL;
    if (!name) { /* general.name: the model's folder or file name, as llama.cpp's converter does */
        size_t l = strlen(model);
        while (l > 1 && model[l - 1] == '/') l--;
        const char *b = model + l;
        while (b > model && b[-1] != '/') b--;
        snprintf(nb, sizeof nb, "%.*s", (int)(model + l - b), b);
        name = nb;
    }
    o.name = name;
    /* a classifier (a folder with a score.weight head, or a GGUF one): the head goes along with its
     * label names and truncation side (src/ckpt/gguf_write.c) */
    lf_seqcls *h = NULL;
    const char **labels = NULL;
    if (lf_seqcls_has_head(m, lf_is_dir(model) ? model : NULL) && lf_seqcls_attach(&h, m, 0, model, 0)) {
        free(chat);
        lf_tokenizer_free(tok);
        lf_model_free(m);
        return cli_fail("quantize");
    }
    if (h && lf_seqcls_label_name(h, 0) && (labels = calloc((size_t)lf_seqcls_num_labels(h), sizeof *labels))) {
        for (int k = 0; k < lf_seqcls_num_labels(h); k++) labels[k] = lf_seqcls_label_name(h, k);
        o.labels = labels;
        o.n_labels = lf_seqcls_num_labels(h);
    }
    if (h) o.truncation_side = lf_seqcls_keep_end(h) ? "left" : "right";
    lf_gguf_save_report rep;
    o.report = &rep;
    int rc = 0;
    if (lf_gguf_save(m, tok, out, &o)) rc = cli_fail("quantize");
    else if (!quiet) { /* one line: tensors per type, weight bytes before -> after, the file, fallbacks */
        char before[32], after[32], file[32], line[512] = "";
        lf_format_bytes(before, sizeof before, (double)rep.bytes_before);
        lf_format_bytes(after, sizeof after, (double)rep.bytes_after);
        lf_format_bytes(file, sizeof file, (double)rep.file_bytes);
        int k = 0;
        for (int id = 0; id < 32; id++) {
            const lf_qtype_info *q = lf_qtype_get((lf_qtype)id);
            if (rep.count[id] && q && k < (int)sizeof line)
                k += snprintf(line + k, sizeof line - (size_t)k, "%s%d %s", k ? ", " : "", rep.count[id], q->name);
        }
        printf("%s: %s tensors; weights %s -> %s (%.2fx); file %s; %d fallback%s", out, line, before, after,
               rep.bytes_after ? (double)rep.bytes_before / (double)rep.bytes_after : 0.0, file, rep.fallbacks,
               rep.fallbacks == 1 ? "" : "s");
        if (rep.requantized) printf("; %d re-encoded from another quantized type", rep.requantized);
        if (h) printf("; classification head of %d labels (cls.output.weight, f32)", lf_seqcls_num_labels(h));
        printf("%s\n", tok ? "" : "; no tokenizer");
    }
    free(labels);
    lf_seqcls_free(h);
    free(chat);
    lf_tokenizer_free(tok);
    lf_model_free(m);
    return rc;
help:
    printf("usage: lmforge quantize MODEL --type f32|f16|bf16|q8_0|q4_0|q4_1|q4_k --out OUT.gguf [--fallback TYPE]\n"
           "                               [--embeddings TYPE] [--tokenizer PATH | --no-tokenizer] [--name NAME] [--quiet]\n"
           "  MODEL         a Hugging Face folder, a .gguf file or a llama2.c .bin (tokenizer from beside it)\n"
           "  --type        linear weights (attention, MLP; norms, biases and positions stay f32)\n"
           "  --fallback    for rows that are not whole blocks of --type (q4_k needs 256; default q4_1, then f16)\n"
           "  --embeddings  token embedding and an untied output head (default: --type for f32/f16/bf16/q8_0, else q8_0)\n"
           "A classifier (a folder with a score.weight head, from lmforge train task=classify head=score) keeps its head\n"
           "in f32 as cls.output.weight with its label names: lmforge eval --task classify --method head reads it; llama.cpp\n"
           "defines that tensor for its BERT and Qwen3 families only and refuses it in a llama or gpt2 file.\n");
    return 0;
usage:
    fprintf(stderr, "usage: lmforge quantize MODEL --type f32|f16|bf16|q8_0|q4_0|q4_1|q4_k --out OUT.gguf [--fallback TYPE]\n"
                    "                               [--embeddings TYPE] [--tokenizer PATH | --no-tokenizer] [--name NAME] [--quiet]\n");
    return 2;
}
