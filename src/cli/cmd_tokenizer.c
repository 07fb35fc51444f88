/* lmforge tokenizer encode|decode|train|info: the tokenizers from the command line.
 * encode reads UTF-8 (any bytes) on stdin and prints a JSON array of ids; decode reads such an
 * array and writes the bytes; train learns a byte-level BPE and writes tokenizer.json. */
#include "cli.h"
#include "lmforge/tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            return NULL;
        }
        b = nb;
        cap *= 2;
    }
    if (b) *len = n;
    return b;
}

static void usage(FILE *f) {
    fprintf(f, "usage:\n"
               "  lmforge tokenizer encode --tokenizer PATH [--bos] [--eos] [--allow-special]  < text  > ids.json\n"
               "  lmforge tokenizer decode --tokenizer PATH  < ids.json  > text\n"
               "  lmforge tokenizer train --vocab-size N --input FILE... --output tokenizer.json\n"
               "                          [--min-frequency K] [--special TEXT]...\n"
               "  lmforge tokenizer info --tokenizer PATH\n"
               "PATH: a tokenizer.json, a folder with tokenizer.json or encoder.json + vocab.bpe, or a llama2.c\n"
               "tokenizer.bin; the kind is detected from the content.\n");
}

static int do_train(int argc, char **argv) {
    lf_bpe_train_opts o = {0};
    const char *output = NULL;
    const char **inputs = calloc((size_t)argc, sizeof *inputs), **specials = calloc((size_t)argc, sizeof *specials);
    int ni = 0, ns = 0, rc = 2;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--vocab-size") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], &o.vocab_size)) goto bad;
        } else if (!strcmp(argv[i], "--min-frequency") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], &o.min_frequency)) goto bad;
        } else if (!strcmp(argv[i], "--output") && i + 1 < argc) {
            output = argv[++i];
        } else if (!strcmp(argv[i], "--special") && i + 1 < argc) {
            specials[ns++] = argv[++i];
        } else if (!strcmp(argv[i], "--quiet")) {
            o.quiet = 1;
        } else if (!strcmp(argv[i], "--input")) {
            while (i + 1 < argc && argv[i + 1][0] != '-') inputs[ni++] = argv[++i];
        } else {
            fprintf(stderr, "lmforge tokenizer train: unknown or incomplete option '%s'\n", argv[i]);
            goto out;
        }
    }
    if (!output || !ni || o.vocab_size <= 0) {
        fprintf(stderr, "lmforge tokenizer train: needs --vocab-size N, --input FILE... and --output PATH\n");
        goto out;
    }
    o.specials = specials;
    o.n_specials = ns;
    lf_tokenizer *t;
    double t0 = lf_now();
    if (lf_tokenizer_train_bpe(&t, inputs, ni, &o)) {
        rc = cli_fail("tokenizer train");
        goto out;
    }
    if (lf_tokenizer_save_json(t, output)) {
        rc = cli_fail("tokenizer train");
        lf_tokenizer_free(t);
        goto out;
    }
    if (!o.quiet) fprintf(stderr, "wrote %s: vocabulary %d, %.1f s\n", output, lf_tokenizer_vocab_size(t), lf_now() - t0);
    lf_tokenizer_free(t);
    rc = 0;
    goto out;
bad:
    fprintf(stderr, "lmforge tokenizer train: option needs an integer\n");
out:
    free(inputs);
    free(specials);
    return rc;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "train")) return do_train(argc, argv);
    if (strcmp(sub, "encode") && strcmp(sub, "decode") && strcmp(sub, "info")) {
        fprintf(stderr, "lmforge tokenizer: unknown subcommand '%s' (encode, decode, train, info)\n", sub);
        return 2;
    }
    const char *path = NULL;
    unsigned flags = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--bos")) flags |= LF_ENC_BOS;
        else if (!strcmp(argv[i], "--eos")) flags |= LF_ENC_EOS;
        else if (!strcmp(argv[i], "--allow-special")) flags |= LF_ENC_ALLOW_SPECIAL;
        else {
            fprintf(stderr, "lmforge tokenizer %s: unknown option '%s'\n", sub, argv[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "lmforge tokenizer %s: --tokenizer PATH is required\n", sub);
        return 2;
    }
    lf_tokenizer *t;
    if (lf_tokenizer_load(&t, path)) return cli_fail("tokenizer");
    int rc = 0;
    if (!strcmp(sub, "info")) {
        printf("kind         %s\nvocab_size   %d\nbos          %d\neos          %d\nfingerprint  %016llx\n",
               lf_tokenizer_kind(t) == LF_TOK_BYTELEVEL ? "byte-level BPE" : "SentencePiece BPE",
               lf_tokenizer_vocab_size(t), lf_tokenizer_bos(t), lf_tokenizer_eos(t),
               (unsigned long long)lf_tokenizer_fingerprint(t));
    } else if (!strcmp(sub, "encode")) {
        size_t len;
        char *text = read_all(stdin, &len);
        lf_ids ids = {0};
        if (!text || lf_tokenizer_encode(t, text, len, flags, &ids)) {
            rc = cli_fail("tokenizer encode");
        } else {
            fputc('[', stdout);
            for (size_t i = 0; i < ids.n; i++) printf(i ? ", %d" : "%d", ids.ids[i]);
            fputs("]\n", stdout);
        }
        free(text);
        lf_ids_free(&ids);
    } else {
        json_error_t jerr;
        json_t *arr = json_loadf(stdin, 0, &jerr);
        if (!json_is_array(arr)) {
            fprintf(stderr, "lmforge tokenizer decode: stdin: expected a JSON array of ids (%s)\n", arr ? "not an array" : jerr.text);
            json_decref(arr);
            lf_tokenizer_free(t);
            return 1;
        }
        size_t n = json_array_size(arr);
        int32_t *ids = malloc(sizeof *ids * (n ? n : 1));
        for (size_t i = 0; ids && i < n; i++) {
            json_t *v = json_array_get(arr, i);
            if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX) {
                fprintf(stderr, "lmforge tokenizer decode: stdin: element %zu is not an integer id\n", i);
                rc = 1;
                break;
            }
            ids[i] = (int32_t)json_integer_value(v);
        }
        char *out;
        size_t olen;
        if (!rc && ids) {
            if (lf_tokenizer_decode(t, ids, n, &out, &olen)) rc = cli_fail("tokenizer decode");
            else {
                fwrite(out, 1, olen, stdout);
                free(out);
            }
        }
        free(ids);
        json_decref(arr);
    }
    lf_tokenizer_free(t);
    return rc;
}
