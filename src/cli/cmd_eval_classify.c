/* lmforge eval --task classify MODEL DATA: accuracy, macro/micro F1 with bootstrap 95 % intervals,
 * per-class precision/recall/F1 and the confusion matrix of a classifier, by label scoring
 * (--method score: each label's continuation log-likelihood after a prompt, zero-shot or after
 * fine-tuning) or by a sequence-classification head (--method head: score.weight).
 * DATA: a JSONL file of {"text", "label"} records, or a folder lmforge prepare made from
 * labelled data (its val.bin split or --split's, decoded back to text, and its meta.json label order). */
#include "cli.h"
#include "lmforge/ckpt.h"
#include "lmforge/data.h"
#include "lmforge/eval.h"
#include "lmforge/report.h"
#include "lmforge/seqcls.h"
#include "lmforge/tokenizer.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char **text;
    int *gold;
    size_t n, cap;
    char **label;
    int K;
} cls_data;

static void data_free(cls_data *d) {
    for (size_t i = 0; i < d->n; i++) free(d->text[i]);
    for (int k = 0; k < d->K; k++) free(d->label[k]);
    free(d->text);
    free(d->gold);
    free(d->label);
    memset(d, 0, sizeof *d);
}

static int label_index(cls_data *d, const char *name, int add) {
    for (int k = 0; k < d->K; k++)
        if (!strcmp(d->label[k], name)) return k;
    if (!add) return -1;
    char **p = realloc(d->label, sizeof(char *) * (size_t)(d->K + 1));
    if (!p) return -2;
    d->label = p;
    if (!(d->label[d->K] = strdup(name))) return -2;
    return d->K++;
}

static int data_push(cls_data *d, char *text, int gold) {
    if (d->n == d->cap) {
        size_t c = d->cap ? d->cap * 2 : 256;
        char **t = realloc(d->text, c * sizeof *t);
        if (t) d->text = t;
        int *g = realloc(d->gold, c * sizeof *g);
        if (g) d->gold = g;
        if (!t || !g) return -1;
        d->cap = c;
    }
    d->text[d->n] = text;
    d->gold[d->n++] = gold;
    return 0;
}

/* labels from a prepared folder's meta.json (its order is the classes' order); 0 when absent */
static int load_meta_labels(cls_data *d, const char *dir) {
    char p[4400];
    snprintf(p, sizeof p, "%s/meta.json", dir);
    if (!lf_path_exists(p)) return 0;
    json_error_t err;
    json_t *m = json_load_file(p, 0, &err);
    json_t *labels = m ? json_object_get(m, "labels") : NULL;
    if (!m || !json_is_array(labels)) {
        fprintf(stderr, "lmforge eval: %s: %s (expected lmforge prepare's meta.json)\n", p, m ? "no \"labels\" array" : err.text);
        json_decref(m);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(labels); i++) {
        const char *s = json_string_value(json_array_get(labels, i));
        if (!s || label_index(d, s, 1) < 0) {
            fprintf(stderr, "lmforge eval: %s: label %zu is not a string\n", p, i);
            json_decref(m);
            return -1;
        }
    }
    json_decref(m);
    return 0;
}

/* labels in a classifier's config.json id2label order; 0 when it has none */
static int load_id2label(cls_data *d, const char *model) {
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", model);
    json_t *j = json_load_file(p, 0, NULL), *map = j ? json_object_get(j, "id2label") : NULL;
    int rc = 0;
    for (size_t k = 0; json_is_object(map) && k < json_object_size(map) && !rc; k++) {
        char key[32];
        snprintf(key, sizeof key, "%zu", k);
        const char *s = json_string_value(json_object_get(map, key));
        if (!s || label_index(d, s, 1) != (int)k) {
            fprintf(stderr, "lmforge eval: %s: id2label is not labels 0..%zu with distinct names\n", p, json_object_size(map) - 1);
            rc = -1;
        }
    }
    json_decref(j);
    return rc;
}

static int read_jsonl(cls_data *d, const char *path, int fixed_labels, size_t limit) {
    size_t len;
    char *buf = lf_read_file(path, &len);
    if (!buf) {
        fprintf(stderr, "lmforge eval: %s\n", lf_last_error());
        return -1;
    }
    size_t line = 0;
    int rc = 0;
    for (char *p = buf, *end = buf + len; p < end && !rc && d->n < limit;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        char *next = p + l + 1;
        while (l && (p[l - 1] == '\r' || p[l - 1] == ' ')) l--;
        if (l == 0) {
            p = next;
            continue;
        }
        json_error_t err;
        json_t *r = json_loadb(p, l, 0, &err);
        json_t *t = r ? json_object_get(r, "text") : NULL, *lab = r ? json_object_get(r, "label") : NULL;
        char num[32];
        const char *ls = json_is_string(lab) ? json_string_value(lab) : NULL;
        if (json_is_integer(lab)) {
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(lab));
            ls = num;
        }
        if (!r || !json_is_string(t) || !ls || !ls[0]) {
            fprintf(stderr, "lmforge eval: %s:%zu: %s (each line a {\"text\": ..., \"label\": ...} object)\n", path, line,
                    !r ? err.text : !json_is_string(t) ? "no string \"text\"" : "no string or integer \"label\"");
            rc = -1;
        } else {
            int k = label_index(d, ls, !fixed_labels);
            if (k == -1) {
                fprintf(stderr, "lmforge eval: %s:%zu: label \"%s\" is not one of the %d labels of the data's meta.json / --labels\n",
                        path, line, ls, d->K);
                rc = -1;
            } else if (k < 0 || data_push(d, strdup(json_string_value(t)), k) || !d->text[d->n - 1]) {
                fprintf(stderr, "lmforge eval: out of memory reading %s\n", path);
                rc = -1;
            }
        }
        json_decref(r);
        p = next;
    }
    free(buf);
    if (!rc && d->n == 0) {
        fprintf(stderr, "lmforge eval: %s: no records\n", path);
        rc = -1;
    }
    return rc;
}

/* a prepared classification folder's val.bin (or split.bin), decoded back to text (src/eval/cls_dataset.c) */
static int read_prepared(cls_data *d, const char *dir, const char *split, const char *model, size_t limit) {
    char tp[4200];
    snprintf(tp, sizeof tp, "%s/tokenizer.json", dir);
    if (!lf_path_exists(tp)) cli_model_tokenizer(model, tp, sizeof tp);
    lf_cls_dataset ds;
    if (lf_cls_dataset_load_prepared(&ds, dir, split, tp, limit == (size_t)-1 ? 0 : limit)) {
        cli_fail("eval");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < ds.n && !rc; i++) {
        int k = label_index(d, ds.names[ds.label[i]], 0);
        if (k < 0) {
            fprintf(stderr, "lmforge eval: %s: label \"%s\" is not among the given labels\n", dir, ds.names[ds.label[i]]);
            rc = -1;
        } else if (data_push(d, ds.text[i], k)) rc = -1;
        else ds.text[i] = NULL;
    }
    for (size_t i = 0; i < ds.n; i++) free(ds.text[i]);
    ds.n = 0;
    lf_cls_dataset_free(&ds);
    return rc;
}

/* "\n" and "\t" in templates given on the command line */
static char *unescape(const char *s) {
    char *o = malloc(strlen(s) + 1), *q = o;
    if (!o) return NULL;
    for (; *s; s++) {
        if (s[0] == '\\' && (s[1] == 'n' || s[1] == 't' || s[1] == '\\')) {
            *q++ = s[1] == 'n' ? '\n' : s[1] == 't' ? '\t' : '\\';
            s++;
        } else *q++ = *s;
    }
    *q = 0;
    return o;
}

static void on_progress(void *ctx, size_t done, size_t total) {
    lf_progress_update(ctx, (double)done, NULL);
    (void)total;
}

static json_t *metrics_json(const lf_cls_metrics *r, const cls_data *d) {
    json_t *o = json_object(), *per = json_array(), *cm = json_array();
    json_object_set_new(o, "accuracy", json_real(r->accuracy));
    json_object_set_new(o, "accuracy_ci95", json_pack("[f,f]", r->acc_ci[0], r->acc_ci[1]));
    json_object_set_new(o, "macro_f1", json_real(r->macro_f1));
    json_object_set_new(o, "macro_f1_ci95", json_pack("[f,f]", r->macro_f1_ci[0], r->macro_f1_ci[1]));
    json_object_set_new(o, "micro_f1", json_real(r->micro_f1));
    json_object_set_new(o, "macro_precision", json_real(r->macro_precision));
    json_object_set_new(o, "macro_recall", json_real(r->macro_recall));
    for (int k = 0; k < r->K; k++) {
        json_array_append_new(per, json_pack("{s:s,s:f,s:f,s:f,s:I,s:I}", "label", d->label[k], "precision", r->precision[k],
                                             "recall", r->recall[k], "f1", r->f1[k], "support", (json_int_t)r->support[k],
                                             "predicted", (json_int_t)r->predicted[k]));
        json_t *row = json_array();
        for (int j = 0; j < r->K; j++) json_array_append_new(row, json_integer((json_int_t)r->confusion[(size_t)k * r->K + j]));
        json_array_append_new(cm, row);
    }
    json_object_set_new(o, "per_class", per);
    json_object_set_new(o, "confusion", cm);
    return o;
}

static void print_metrics(const lf_cls_metrics *r, const cls_data *d) {
    printf("%-16s %.4f  [%.4f, %.4f]\n", "accuracy", r->accuracy, r->acc_ci[0], r->acc_ci[1]);
    printf("%-16s %.4f  [%.4f, %.4f]\n", "macro F1", r->macro_f1, r->macro_f1_ci[0], r->macro_f1_ci[1]);
    printf("%-16s %.4f\n", "micro F1", r->micro_f1);
    printf("(95 %% percentile bootstrap intervals, %d resamples)\n\n", r->resamples);
    int w = 5;
    for (int k = 0; k < r->K; k++) w = (int)strlen(d->label[k]) > w ? (int)strlen(d->label[k]) : w;
    if (w > 24) w = 24;
    printf("%-*s %9s %9s %9s %8s\n", w, "label", "precision", "recall", "f1", "support");
    for (int k = 0; k < r->K; k++)
        printf("%-*.*s %9.4f %9.4f %9.4f %8zu\n", w, w, d->label[k], r->precision[k], r->recall[k], r->f1[k], r->support[k]);
    printf("%-*s %9.4f %9.4f %9.4f %8zu\n\n", w, "macro avg", r->macro_precision, r->macro_recall, r->macro_f1, r->n);
    printf("confusion matrix (rows: gold, columns: predicted, in label order)\n");
    for (int k = 0; k < r->K; k++) {
        printf("%-*.*s", w, w, d->label[k]);
        for (int j = 0; j < r->K; j++) printf(" %6zu", r->confusion[(size_t)k * r->K + j]);
        printf("\n");
    }
}

int cmd_eval_classify(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *tokp = NULL, *adapters = NULL, *split = "val", *json_out = NULL, *labels_arg = NULL, *verbalizer = NULL, *method = "score",
               *norm = "sum", *side = NULL;
    char *prompt = NULL, *answer = NULL;
    int keep_end = 0, limit = 0, max_tokens = 0, B = 8, resamples = 1000, seed = 1234, quiet = 0, per_example = 0, keep = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (cli_quant_option(a, &keep)) continue;
        if (!strcmp(a, "--task") && has) {
            if (strcmp(argv[++i], "classify")) goto usage;
        } else if (!strcmp(a, "--method") && has) method = argv[++i];
        else if (!strcmp(a, "--template") && has) {
            free(prompt);
            prompt = unescape(argv[++i]);
        } else if (!strcmp(a, "--answer") && has) {
            free(answer);
            answer = unescape(argv[++i]);
        } else if (!strcmp(a, "--labels") && has) labels_arg = argv[++i];
        else if (!strcmp(a, "--verbalizer") && has) verbalizer = argv[++i];
        else if (!strcmp(a, "--norm") && has) norm = argv[++i];
        else if (!strcmp(a, "--truncation-side") && has) {
            side = argv[++i];
            if (strcmp(side, "left") && strcmp(side, "right")) goto usage;
        }
        else if (!strcmp(a, "--tokenizer") && has) tokp = argv[++i];
        else if (!strcmp(a, "--adapter") && has) adapters = argv[++i];
        else if (!strcmp(a, "--split") && has) {
            split = argv[++i];
            if (strcmp(split, "train") && strcmp(split, "val") && strcmp(split, "test")) goto usage;
        }
        else if (!strcmp(a, "--json") && has) json_out = argv[++i];
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--per-example")) per_example = 1;
        else if (!strcmp(a, "--limit") && has) {
            if (cli_parse_int(argv[++i], &limit) || limit < 1) goto usage;
        } else if (!strcmp(a, "--max-tokens") && has) {
            if (cli_parse_int(argv[++i], &max_tokens) || max_tokens < 2) goto usage;
        } else if (!strcmp(a, "--batch") && has) {
            if (cli_parse_int(argv[++i], &B) || B < 1 || B > 4096) goto usage;
        } else if (!strcmp(a, "--bootstrap") && has) {
            if (cli_parse_int(argv[++i], &resamples) || resamples < 2) goto usage;
        } else if (!strcmp(a, "--seed") && has) {
            if (cli_parse_int(argv[++i], &seed)) goto usage;
        } else if (a[0] != '-' && !model) model = a;
        else if (a[0] != '-' && !data) data = a;
        else goto usage;
    }
    if (!model || !data) goto usage;
    int head = !strcmp(method, "head");
    if (!head && strcmp(method, "score")) {
        fprintf(stderr, "lmforge eval: --method %s: expected score (label log-likelihood) or head (a score.weight head)\n", method);
        goto usage_quiet;
    }
    if (side && !head) {
        fprintf(stderr, "lmforge eval: --truncation-side is for --method head (label scoring keeps the prompt's end, where the label follows)\n");
        goto usage_quiet;
    }
    if (strcmp(norm, "sum") && strcmp(norm, "token") && strcmp(norm, "char")) {
        fprintf(stderr, "lmforge eval: --norm %s: expected sum, token (per token) or char (per character: lm-eval's acc_norm)\n", norm);
        goto usage_quiet;
    }
    cls_data d = {0};
    int rc = 1;
    struct stat sb;
    int is_dir = stat(data, &sb) == 0 && S_ISDIR(sb.st_mode);
    size_t lim = limit > 0 ? (size_t)limit : (size_t)-1;
    if (labels_arg) { /* the class order, comma-separated */
        char *s = strdup(labels_arg), *save = NULL;
        for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) label_index(&d, tok, 1);
        free(s);
    } else {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s", data);
        if (!is_dir) {
            char *sl = strrchr(dir, '/');
            if (sl) *sl = 0;
            else snprintf(dir, sizeof dir, ".");
        }
        if (load_meta_labels(&d, dir)) goto out;
        if (d.K == 0 && head && load_id2label(&d, model)) goto out; /* the head's own order */
    }
    if (is_dir) {
        if (d.K == 0) {
            fprintf(stderr, "lmforge eval: %s: no meta.json with labels (a folder from lmforge prepare on labelled data, or a JSONL file)\n", data);
            goto out;
        }
        if (read_prepared(&d, data, split, model, lim)) goto out;
    } else if (read_jsonl(&d, data, d.K > 0, lim)) goto out;
    if (d.K < 2) {
        fprintf(stderr, "lmforge eval: %s: %d label%s; classification needs at least 2\n", data, d.K, d.K == 1 ? "" : "s");
        goto out;
    }
    lf_model *m = NULL;
    lf_tokenizer *t = NULL;
    char tp[4200];
    cli_model_tokenizer(model, tp, sizeof tp);
    if (cli_load_model(&m, model, keep) || lf_tokenizer_load(&t, tokp ? tokp : tp)) {
        rc = cli_fail("eval");
        lf_model_free(m);
        goto out;
    }
    if (adapters && cli_load_adapters(m, adapters, "eval")) {
        rc = 1;
        lf_model_free(m);
        lf_tokenizer_free(t);
        goto out;
    }
    lf_model_set_forward_only(m, 1);
    int *pred = NULL;
    float *head_logits = NULL; // (n,K) with --per-example and --method head
    lf_cls_scores sc = {0};
    double seconds = 0;
    lf_progress pg;
    lf_progress_start(&pg, head ? "classify (head)" : "classify (label scoring)", "examples", (double)d.n,
                      quiet);
    lf_status st;
    if (head) {
        lf_seqcls *h = NULL;
        /* with a LoRA adapter trained with a head, the head is the adapter's (score.safetensors beside it) */
        char hdir[4200];
        snprintf(hdir, sizeof hdir, "%s", model);
        if (adapters) {
            char sp[4300];
            snprintf(hdir, sizeof hdir, "%s", adapters);
            hdir[strcspn(hdir, ",")] = 0;
            char *colon = strrchr(hdir, ':');
            if (colon && !strchr(colon, '/')) *colon = 0; /* DIR:SCALE */
            snprintf(sp, sizeof sp, "%s/score.safetensors", hdir);
            if (!lf_path_exists(sp)) snprintf(hdir, sizeof hdir, "%s", model);
        }
        st = lf_seqcls_attach(&h, m, d.K, hdir, 0);
        if (!st && side) lf_seqcls_set_keep_end(h, !strcmp(side, "left"));
        if (!st) keep_end = lf_seqcls_keep_end(h);
        if (!st && !lf_seqcls_trained(h)) {
            lf_set_error("%s has no score.weight head (train one: lmforge train with task = classify, head = score)", model);
            st = LF_ERR_ARG;
        }
        if (!st && lf_seqcls_num_labels(h) != d.K) {
            lf_set_error("%s: the head has %d labels, the data %d", model, lf_seqcls_num_labels(h), d.K);
            st = LF_ERR_ARG;
        }
        pred = malloc(sizeof(int) * d.n);
        if (!st && !pred) st = LF_ERR_NOMEM;
        double t0 = lf_now();
        if (!st && per_example && !(head_logits = malloc(sizeof(float) * d.n * (size_t)d.K))) st = LF_ERR_NOMEM;
        if (!st) st = lf_seqcls_predict(h, t, (const char *const *)d.text, d.n, max_tokens, B, pred, head_logits);
        seconds = lf_now() - t0;
        /* a head that names its labels (id2label, a GGUF's output_labels) answers in its own order:
         * map it onto the data's by name, so --labels or a data set's order cannot scramble it */
        int *perm = !st && lf_seqcls_label_name(h, 0) ? malloc(sizeof(int) * (size_t)d.K) : NULL;
        for (int k = 0; perm && k < d.K && !st; k++) {
            perm[k] = -1;
            for (int j = 0; j < d.K; j++)
                if (!strcmp(lf_seqcls_label_name(h, k), d.label[j])) perm[k] = j;
            if (perm[k] < 0) {
                lf_set_error("%s: the head's label '%s' is not one of the data's (--labels, or a head for another label set)",
                             model, lf_seqcls_label_name(h, k));
                st = LF_ERR_ARG;
            }
        }
        float *z = perm && head_logits ? malloc(sizeof(float) * (size_t)d.K) : NULL;
        if (perm && head_logits && !z && !st) st = LF_ERR_NOMEM;
        for (size_t i = 0; perm && !st && i < d.n; i++) {
            pred[i] = perm[pred[i]];
            if (z) {
                float *row = head_logits + i * (size_t)d.K;
                for (int k = 0; k < d.K; k++) z[perm[k]] = row[k];
                memcpy(row, z, sizeof(float) * (size_t)d.K);
            }
        }
        free(z);
        free(perm);
        lf_seqcls_free(h);
    } else {
        lf_cls_score_opts o = {prompt, answer, max_tokens, B, on_progress, &pg};
        /* --verbalizer LABEL=WORDS,...: the words scored for a label (fresh=positive), the label otherwise */
        const char **words = malloc(sizeof(char *) * (size_t)d.K);
        char *vb = verbalizer ? strdup(verbalizer) : NULL;
        st = words && (!verbalizer || vb) ? LF_OK : LF_ERR_NOMEM;
        for (int k = 0; !st && k < d.K; k++) words[k] = d.label[k];
        for (char *save = NULL, *it = vb ? strtok_r(vb, ",", &save) : NULL; it && !st; it = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(it, '=');
            int found = 0;
            if (eq) *eq = 0;
            for (int k = 0; eq && k < d.K; k++)
                if (!strcmp(d.label[k], it)) words[k] = eq + 1, found = 1;
            if (!found) {
                lf_set_error("--verbalizer: '%s' is not LABEL=WORDS with a label of the data", it);
                st = LF_ERR_ARG;
            }
        }
        if (!st) st = lf_cls_score(m, t, (const char *const *)d.text, d.n, words, d.K, &o, &sc);
        free(words);
        free(vb);
        if (!st) {
            pred = !strcmp(norm, "sum") ? sc.pred : !strcmp(norm, "token") ? sc.pred_tok : sc.pred_norm;
            seconds = sc.seconds;
        }
    }
    lf_progress_end(&pg);
    lf_cls_metrics r = {0};
    if (!st) st = lf_cls_metrics_compute(&r, d.gold, pred, d.n, d.K);
    if (!st) st = lf_cls_bootstrap(&r, d.gold, pred, resamples, (uint64_t)seed);
    if (st) {
        rc = cli_fail("eval");
    } else {
        double acc[3] = {NAN, NAN, NAN};
        if (!head)
            for (int v = 0; v < 3; v++) {
                const int *p = v == 0 ? sc.pred : v == 1 ? sc.pred_tok : sc.pred_norm;
                size_t c = 0;
                for (size_t i = 0; i < d.n; i++) c += p[i] == d.gold[i];
                acc[v] = (double)c / d.n;
            }
        if (!quiet) {
            printf("%-16s %s\n%-16s %s (%zu examples, %d labels)\n", "model", model, "data", data, d.n, d.K);
            if (head)
                printf("%-16s head (score.weight on the last token; long texts keep their %s)\n", "method", keep_end ? "end" : "start");
            else {
                printf("%-16s score: argmax of %s, prompt \"", "method",
                       !strcmp(norm, "sum") ? "the sum of log-likelihoods" : !strcmp(norm, "token") ? "log-likelihood per token" : "log-likelihood per character (acc_norm)");
                for (const char *c = prompt ? prompt : "{text}\nlabel:"; *c; c++) c[0] == '\n' ? printf("\\n") : putchar(*c);
                printf("\", answer \"%s\"\n", answer ? answer : " {label}");
                printf("%-16s acc %.4f, per token %.4f, acc_norm (per char) %.4f\n", "all norms", acc[0], acc[1], acc[2]);
                if (sc.truncated) printf("%-16s %zu prompts lost their start (--max-tokens)\n", "truncated", sc.truncated);
            }
            printf("%-16s %.2f s (%.1f examples/s)\n\n", "time", seconds, d.n / (seconds > 0 ? seconds : 1e-9));
            print_metrics(&r, &d);
        }
        rc = 0;
        if (json_out) {
            json_t *o = metrics_json(&r, &d), *lab = json_array();
            for (int k = 0; k < d.K; k++) json_array_append_new(lab, json_string(d.label[k]));
            json_object_set_new(o, "model", json_string(model));
            json_object_set_new(o, "data", json_string(data));
            json_object_set_new(o, "examples", json_integer((json_int_t)d.n));
            json_object_set_new(o, "labels", lab);
            json_object_set_new(o, "method", json_string(method));
            if (head) json_object_set_new(o, "truncation_side", json_string(keep_end ? "left" : "right"));
            if (head && head_logits) { /* every label's logit and the prediction, per example */
                json_t *lg = json_array(), *pp = json_array();
                for (size_t i = 0; i < d.n; i++) {
                    json_t *row = json_array();
                    for (int k = 0; k < d.K; k++) json_array_append_new(row, json_real(head_logits[i * d.K + k]));
                    json_array_append_new(lg, row);
                    json_array_append_new(pp, json_integer(pred[i]));
                }
                json_object_set_new(o, "logits", lg);
                json_object_set_new(o, "predictions", pp);
            }
            json_object_set_new(o, "bootstrap_resamples", json_integer(resamples));
            json_object_set_new(o, "seconds", json_real(seconds));
            if (!head) {
                json_object_set_new(o, "prompt", json_string(prompt ? prompt : "{text}\nlabel:"));
                json_object_set_new(o, "answer", json_string(answer ? answer : " {label}"));
                if (verbalizer) json_object_set_new(o, "verbalizer", json_string(verbalizer));
                json_object_set_new(o, "norm", json_string(norm));
                json_object_set_new(o, "acc", json_real(acc[0]));
                json_object_set_new(o, "acc_per_token", json_real(acc[1]));
                json_object_set_new(o, "acc_norm", json_real(acc[2]));
                json_object_set_new(o, "truncated", json_integer((json_int_t)sc.truncated));
                if (per_example) { /* every label's log-likelihood and the prediction, per example */
                    json_t *ll = json_array(), *pp = json_array();
                    for (size_t i = 0; i < d.n; i++) {
                        json_t *row = json_array();
                        for (int k = 0; k < d.K; k++) json_array_append_new(row, json_real(sc.ll[i * d.K + k]));
                        json_array_append_new(ll, row);
                        json_array_append_new(pp, json_integer(pred[i]));
                    }
                    json_object_set_new(o, "log_likelihoods", ll);
                    json_object_set_new(o, "predictions", pp);
                }
            }
            char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
            json_decref(o);
            if (!s || lf_write_file_atomic(json_out, s, strlen(s))) rc = cli_fail("eval");
            else if (quiet) printf("%s\n", json_out);
            free(s);
        }
    }
    lf_cls_metrics_free(&r);
    if (head) free(pred);
    free(head_logits);
    lf_cls_scores_free(&sc);
    lf_tokenizer_free(t);
    lf_model_free(m);
out:
    data_free(&d);
    free(prompt);
    free(answer);
    return rc;
usage:
    fprintf(stderr,
            "usage: lmforge eval --task classify MODEL DATA [--method score|head] [--template '{text}\\nlabel:']\n"
            "                    [--answer ' {label}'] [--norm sum|token|char] [--labels A,B,..] [--limit N]\n"
            "                    [--max-tokens T] [--batch B] [--bootstrap N] [--seed S] [--tokenizer PATH]\n"
            "                    [--adapter DIR[:SCALE][,DIR...]] [--split val|test|train] [--verbalizer L=WORDS,..]\n"
            "                    [--json FILE [--per-example]] [--quiet] [--keep-quantized | --dequantize]\n"
            "                    [--int8-activations | --float-activations] [--truncation-side right|left]\n"
            "  DATA: a JSONL file of {\"text\", \"label\"} records, or a folder from lmforge prepare on labelled\n"
            "  data (its val.bin split, or --split's). Labels keep meta.json's order (or --labels, or first\n"
            "  appearance). --limit N: a JSONL file's first N records; a prepared split's fixed pseudo-random N.\n"
            "  --method head cuts texts over --max-tokens as the classifier was trained (its config.json's\n"
            "  truncation_side: right keeps the start, left the end); --truncation-side overrides it.\n");
usage_quiet:
    free(prompt);
    free(answer);
    return 2;
}
