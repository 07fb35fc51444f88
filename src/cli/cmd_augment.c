/* lmforge augment IN.jsonl|TEXT --out OUT.jsonl --ops ... --copies N --seed S: seeded augmented
 * copies of every record next to the original (labels and completions kept), exact duplicates
 * dropped, written atomically. A plain text file is one record per line; an argument that is not
 * a file is the text itself, and its copies go to stdout. */
#include "cli.h"
#include "lmforge/augment.h"
#include "lmforge/report.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char **line; /* output lines, JSON without the newline */
    size_t n, cap;
    size_t *slot; /* open-addressing set of line indices + 1, by content hash */
    size_t slots;
    size_t dropped;
} out_lines;

static int lines_grow_set(out_lines *o) {
    size_t ns = o->slots ? 2 * o->slots : 1024;
    size_t *s = calloc(ns, sizeof *s);
    if (!s) return -1;
    for (size_t i = 0; i < o->n; i++) {
        size_t h = (size_t)lf_fnv1a(o->line[i], strlen(o->line[i])) & (ns - 1);
        while (s[h]) h = (h + 1) & (ns - 1);
        s[h] = i + 1;
    }
    free(o->slot);
    o->slot = s;
    o->slots = ns;
    return 0;
}

/* keeps line (taking it over) unless an identical line is already there */
static int lines_add(out_lines *o, char *line) {
    if (!line) return -1;
    if (2 * (o->n + 1) > o->slots && lines_grow_set(o)) return -1;
    size_t h = (size_t)lf_fnv1a(line, strlen(line)) & (o->slots - 1);
    for (; o->slot[h]; h = (h + 1) & (o->slots - 1))
        if (!strcmp(o->line[o->slot[h] - 1], line)) {
            free(line);
            o->dropped++;
            return 0;
        }
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 1024;
        char **l = realloc(o->line, cap * sizeof *l);
        if (!l) return -1;
        o->line = l;
        o->cap = cap;
    }
    o->line[o->n] = line;
    o->slot[h] = ++o->n;
    return 0;
}

static lf_status write_lines(FILE *f, const char *path, const void *ctx) {
    const out_lines *o = ctx;
    for (size_t i = 0; i < o->n; i++) {
        lf_status st = lf_write_all(f, o->line[i], strlen(o->line[i]), path);
        if (!st) st = lf_write_all(f, "\n", 1, path);
        if (st) return st;
    }
    return LF_OK;
}

static void on_progress(void *ctx, size_t done, size_t total) {
    (void)total;
    lf_progress_update(ctx, (double)done, NULL);
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static void usage(FILE *f) {
    fprintf(f, "usage: lmforge augment IN.jsonl|IN.txt|TEXT [--out OUT.jsonl] [--ops OPS] [--copies N] [--seed S]\n"
               "                        [--threads N] [--chain] [--field NAME] [--mask-token TOK] [--max-bytes N]\n"
               "                        [--wordnet DIR] [--apertium PROG] [--quiet]\n");
}

int cmd_augment(int argc, char **argv) {
    const char *in = NULL, *outp = NULL, *ops = "syn=0.1,ins=0.1,swap=0.1,del=0.1", *field = NULL;
    int copies = 4, threads = 0, quiet = 0, seed = 1;
    lf_aug_config c;
    lf_aug_config_default(&c);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--out") && has) outp = argv[++i];
        else if (!strcmp(a, "--ops") && has) ops = argv[++i];
        else if (!strcmp(a, "--field") && has) field = argv[++i];
        else if (!strcmp(a, "--mask-token") && has) c.mask_token = argv[++i];
        else if (!strcmp(a, "--wordnet") && has) c.wordnet_dir = argv[++i];
        else if (!strcmp(a, "--apertium") && has) c.apertium = argv[++i];
        else if (!strcmp(a, "--chain")) c.chain = 1;
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--copies") && has) {
            if (cli_parse_int(argv[++i], &copies) || copies < 0 || copies > 1000) {
                fprintf(stderr, "lmforge augment: --copies %s: expected a count from 0 to 1000\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--seed") && has) {
            if (cli_parse_int(argv[++i], &seed)) {
                fprintf(stderr, "lmforge augment: --seed %s: expected an integer\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--threads") && has) {
            if (cli_parse_int(argv[++i], &threads) || threads < 0) {
                fprintf(stderr, "lmforge augment: --threads %s: expected a count (0 = all cores)\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--max-bytes") && has) {
            int mb;
            if (cli_parse_int(argv[++i], &mb) || mb < 1) {
                fprintf(stderr, "lmforge augment: --max-bytes %s: expected a positive byte count\n", argv[i]);
                return 2;
            }
            c.max_bytes = (size_t)mb;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            printf("\n  IN            JSONL records {\"text\",\"label\"} (label kept), {\"text\"}, or {\"prompt\",\"completion\"}\n"
                   "                (the prompt is augmented); a .txt file: one record per line; any other argument:\n"
                   "                the text itself (its copies are printed)\n"
                   "  --ops         operations with their rates (default syn=0.1,ins=0.1,swap=0.1,del=0.1):\n"
                   "                  syn, ins, swap, del   EDA: WordNet synonyms / insertions, swaps, deletions\n"
                   "                                        (alpha: max(1, alpha*words) changes; del: p per word)\n"
                   "                  kbd, cins, cdel, cswap, char   character noise per letter: keyboard typo,\n"
                   "                                        insertion, deletion, transposition, or any of them\n"
                   "                  mask, span, shuffle   word noise: p masked, p in spans (mean 3), window k\n"
                   "                  bt                    back-translation eng->spa->eng (Apertium)\n"
                   "  --copies N    augmented copies per record (default 4): copy c uses the (c mod #ops)-th\n"
                   "                operation as EDA does; --chain applies every operation to every copy\n"
                   "  --seed S      copies depend only on (S, record, copy): the same for any --threads\n"
                   "  --field NAME  the field to augment (default: prompt if present, else text)\n"
                   "  --max-bytes N longer texts are kept but not augmented (default 1 MiB)\n"
                   "  --wordnet DIR WordNet database folder (default $WNSEARCHDIR or /usr/share/wordnet)\n"
                   "Originals are kept, exact duplicate lines dropped, the output written atomically.\n"
                   "Needs Debian's wordnet-base for syn/ins and apertium + apertium-eng-spa for bt.\n");
            return 0;
        } else if (a[0] != '-' && !in) in = a;
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!in) {
        usage(stderr);
        return 2;
    }
    if (lf_aug_config_parse(&c, ops)) return cli_fail("augment");
    int is_file = lf_path_exists(in);
    if (!is_file && !strchr(in, ' ') && (ends_with(in, ".jsonl") || ends_with(in, ".json") || ends_with(in, ".txt"))) {
        fprintf(stderr, "lmforge augment: %s: no such file\n", in);
        return 1;
    }
    if (is_file && lf_check_regular(in)) return cli_fail("augment");
    if (is_file && !outp) {
        fprintf(stderr, "lmforge augment: --out OUT.jsonl is required for a file input\n");
        return 2;
    }
    if (outp && lf_is_dir(outp)) {
        fprintf(stderr, "lmforge augment: --out %s is a folder; give the path of the .jsonl file to write\n", outp);
        return 2;
    }

    /* records: JSON objects (or a text per line), the texts to augment, and what to call them */
    size_t len = 0, n = 0, cap = 0, no_field = 0, blank_lines = 0;
    char *buf = is_file ? lf_read_file(in, &len) : strdup(in);
    if (!buf) return cli_fail("augment");
    if (!is_file) len = strlen(buf);
    const char *fld = NULL;
    int jsonl = is_file && !ends_with(in, ".txt");
    json_t **rec = NULL;
    const char **text = NULL;
    int rc = 0;
    size_t lineno = 0;
    for (size_t i = 0; i < len || (!is_file && n == 0);) {
        size_t e = i;
        if (is_file)
            while (e < len && buf[e] != '\n') e++;
        else
            e = len;
        lineno++;
        size_t s = i, t = e;
        if (t > s && buf[t - 1] == '\r') t--;
        i = e + 1;
        int empty = 1;
        for (size_t k = s; k < t && empty; k++) empty = buf[k] == ' ' || buf[k] == '\t';
        if (empty && is_file) {
            blank_lines++;
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            json_t **r2 = realloc(rec, cap * sizeof *r2);
            const char **t2 = r2 ? realloc(text, cap * sizeof *t2) : NULL;
            if (r2) rec = r2;
            if (!t2) {
                fprintf(stderr, "lmforge augment: out of memory\n");
                rc = 1;
                break;
            }
            text = t2;
        }
        json_error_t je;
        if (jsonl) {
            json_t *j = json_loadb(buf + s, t - s, 0, &je);
            if (!j || !json_is_object(j)) {
                fprintf(stderr, "lmforge augment: %s:%zu: %s (each line must be a JSON object such as "
                                "{\"text\": ..., \"label\": ...}; invalid UTF-8 is refused)\n",
                        in, lineno, j ? "not a JSON object" : je.text);
                json_decref(j);
                rc = 1;
                break;
            }
            rec[n] = j;
        } else {
            rec[n] = json_object();
            json_t *v = json_stringn(buf + s, t - s);
            if (!v) {
                fprintf(stderr, "lmforge augment: %s:%zu: not valid UTF-8 (convert it first, e.g. iconv -f latin1 -t utf-8)\n",
                        is_file ? in : "TEXT", lineno);
                json_decref(rec[n]);
                rc = 1;
                break;
            }
            json_object_set_new(rec[n], "text", v);
        }
        const char *f = field ? field : json_is_string(json_object_get(rec[n], "prompt")) ? "prompt" : "text";
        if (!fld) fld = f;
        json_t *v = json_object_get(rec[n], f);
        text[n] = json_is_string(v) ? json_string_value(v) : NULL;
        if (!text[n]) no_field++;
        n++;
        if (!is_file) break;
    }
    if (rc) goto done;
    if (n == 0) {
        fprintf(stderr, "lmforge augment: %s: no records\n", in);
        rc = 1;
        goto done;
    }
    lf_augmenter *aug = NULL;
    if (lf_augmenter_init(&aug, &c)) {
        rc = cli_fail("augment");
        goto done;
    }
    /* records without the field go through as they are */
    const char **src = malloc(n * sizeof *src);
    char **cp = calloc(n * (size_t)(copies ? copies : 1), sizeof *cp);
    if (!src || !cp) {
        fprintf(stderr, "lmforge augment: out of memory\n");
        rc = 1;
    }
    for (size_t i = 0; !rc && i < n; i++) src[i] = text[i] ? text[i] : "";
    lf_progress pr;
    lf_progress_start(&pr, "augment", "records", (double)n, quiet || !is_file);
    lf_aug_stats st;
    memset(&st, 0, sizeof st);
    double t0 = lf_now();
    if (!rc && lf_augment_texts(aug, src, n, copies, (uint64_t)(int64_t)seed, threads, cp, &st, on_progress, &pr))
        rc = cli_fail("augment");
    lf_progress_end(&pr);
    double secs = lf_now() - t0;
    out_lines ol = {0};
    size_t made = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        if (lines_add(&ol, json_dumps(rec[i], JSON_COMPACT | JSON_PRESERVE_ORDER))) rc = 1;
        json_t *orig = text[i] ? json_incref(json_object_get(rec[i], fld ? fld : "text")) : NULL;
        for (int k = 0; !rc && text[i] && k < copies; k++) {
            char *s = cp[i * (size_t)copies + (size_t)k];
            if (!s) continue;
            if (!is_file && !outp) {
                printf("%s\n", s);
                continue;
            }
            json_t *v = json_string(s);
            if (!v) continue; /* not UTF-8: cannot happen for edits of valid text; dropped rather than written */
            json_object_set_new(rec[i], fld, v);
            made++;
            if (lines_add(&ol, json_dumps(rec[i], JSON_COMPACT | JSON_PRESERVE_ORDER))) rc = 1;
        }
        if (orig) json_object_set_new(rec[i], fld, orig);
        if (rc) fprintf(stderr, "lmforge augment: out of memory\n");
    }
    if (!rc && outp) {
        if (lf_write_atomic_with(outp, write_lines, &ol)) rc = cli_fail("augment");
        else if (!quiet)
            printf("%s: %zu records -> %zu lines (%zu copies made, %zu duplicate lines dropped) in %.2f s, %.0f records/s\n",
                   outp, n, ol.n, made, ol.dropped, secs, secs > 0 ? (double)n / secs : 0.0);
    }
    if (!rc && !quiet) { /* notes: what was kept without being augmented */
        if (st.empty) fprintf(stderr, "lmforge augment: note: %zu empty record%s kept as they are\n", st.empty, st.empty == 1 ? "" : "s");
        if (no_field)
            fprintf(stderr, "lmforge augment: note: %zu record%s without a string \"%s\" kept as they are\n", no_field,
                    no_field == 1 ? "" : "s", fld ? fld : "text");
        if (st.too_long)
            fprintf(stderr, "lmforge augment: note: %zu record%s over --max-bytes %zu kept but not augmented\n", st.too_long,
                    st.too_long == 1 ? "" : "s", c.max_bytes);
        if (st.bt_failed)
            fprintf(stderr, "lmforge augment: note: %zu back-translation%s lost (Apertium garbled the markers)\n",
                    st.bt_failed, st.bt_failed == 1 ? "" : "s");
        if (blank_lines) fprintf(stderr, "lmforge augment: note: %zu blank line%s skipped\n", blank_lines, blank_lines == 1 ? "" : "s");
    }
    for (size_t i = 0; cp && i < n * (size_t)copies; i++) free(cp[i]);
    free(cp);
    free(src);
    for (size_t i = 0; i < ol.n; i++) free(ol.line[i]);
    free(ol.line);
    free(ol.slot);
    lf_augmenter_free(aug);
done:
    for (size_t i = 0; i < n; i++) json_decref(rec[i]);
    free(rec);
    free(text);
    free(buf);
    return rc;
}
