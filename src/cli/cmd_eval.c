/* lmforge eval MODEL [--data] PATH: perplexity, mean loss and bits per byte of a model on a text
 * file, a folder of text files, or a token shard, with a sliding window; with --kld-base BASE,
 * the KL divergence of MODEL's next-token distributions from BASE's over the same windows
 * (llama-perplexity --kl-divergence's statistics). */
#include "cli.h"
#include "lmforge/ckpt.h"
#include "lmforge/data.h"
#include "lmforge/eval.h"
#include "lmforge/multitask.h"
#include "lmforge/prune.h"
#include "lmforge/tokenizer.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* text of a file or of every non-hidden file of a folder (sorted), each followed by EOS */
static int add_text(const char *path, lf_tok_encoder *e, const lf_tokenizer *t, lf_ids *ids, size_t *bytes) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "lmforge eval: %s: cannot read\n", path);
        return -1;
    }
    if (S_ISDIR(sb.st_mode)) {
        struct dirent **ents;
        int n = scandir(path, &ents, NULL, alphasort), rc = 0;
        for (int i = 0; i < n; i++) {
            if (!rc && ents[i]->d_name[0] != '.') {
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", path, ents[i]->d_name);
                rc = add_text(p, e, t, ids, bytes);
            }
            free(ents[i]);
        }
        free(ents);
        return rc;
    }
    size_t n;
    char *buf = lf_read_file(path, &n); /* a FIFO or device is refused, never read forever */
    if (!buf) {
        fprintf(stderr, "lmforge eval: %s\n", lf_last_error());
        return -1;
    }
    unsigned flags = LF_ENC_EOS | (lf_tokenizer_kind(t) == LF_TOK_SENTENCEPIECE ? LF_ENC_BOS : 0);
    lf_status st = lf_tok_encode(e, buf, n, flags, ids);
    free(buf);
    *bytes += n;
    return st ? -1 : 0;
}

/* Both tokenizers decide the same ids: the same fingerprint, or else the same piece for every id
 * (a tokenizer.json and the GGUF it was converted from may differ in what the hash covers). */
static int same_tokenizer(const lf_tokenizer *a, const lf_tokenizer *b, const char *pa, const char *pb) {
    if (lf_tokenizer_fingerprint(a) == lf_tokenizer_fingerprint(b)) return 1;
    int va = lf_tokenizer_vocab_size(a), vb = lf_tokenizer_vocab_size(b);
    if (va != vb) {
        fprintf(stderr, "lmforge eval: the tokenizers differ (%s: %d tokens, %s: %d): --kld-base needs a base model with the same tokenizer\n",
                pa, va, pb, vb);
        return 0;
    }
    for (int id = 0; id < va; id++) {
        size_t la = 0, lb = 0;
        const char *x = lf_tokenizer_piece(a, id, &la), *y = lf_tokenizer_piece(b, id, &lb);
        if (la != lb || (la && memcmp(x, y, la))) {
            fprintf(stderr, "lmforge eval: the tokenizers differ at token %d (%s vs %s): --kld-base needs a base model with the same tokenizer\n",
                    id, pa, pb);
            return 0;
        }
    }
    return 1;
}

static lf_status write_kld_tokens(FILE *f, const char *path, const void *ctx) {
    const lf_kld_result *r = ctx;
    char line[256];
    int n = snprintf(line, sizeof line, "position\ttarget\tkld\tnll_base\tnll\ttop_base\ttop\n");
    lf_status st = lf_write_all(f, line, (size_t)n, path);
    for (size_t i = 0; i < r->count && !st; i++) {
        const lf_kld_token *t = &r->tokens[i];
        n = snprintf(line, sizeof line, "%zu\t%d\t%.9g\t%.9g\t%.9g\t%d\t%d\n", t->pos, t->target, t->kld, t->nll_base, t->nll,
                     t->top_base, t->top);
        st = lf_write_all(f, line, (size_t)n, path);
    }
    return st;
}

static void print_kld(const lf_kld_result *r, const char *model, const char *base, const char *data, size_t ntok,
                      const lf_kld_opts *o, int json) {
    char win[160];
    if (o->chunks)
        snprintf(win, sizeof win, "%d, chunks (llama-perplexity's: not overlapping, second half scored)", o->context);
    else
        snprintf(win, sizeof win, "%d, stride %d (every target scored once, as plain eval)", o->context, o->stride);
    if (json) {
        printf("{\"model\": \"%s\", \"base\": \"%s\", \"data\": \"%s\", \"tokens\": %zu, \"targets\": %zu, \"windows\": %zu, "
               "\"context\": %d, \"stride\": %d, \"chunks\": %s, "
               "\"ppl\": %.6f, \"ppl_se\": %.6f, \"ppl_base\": %.6f, \"ppl_base_se\": %.6f, \"nll_cor\": %.6f, "
               "\"ln_ppl_ratio\": %.8f, \"ln_ppl_ratio_se\": %.8f, \"ppl_ratio\": %.8f, \"ppl_ratio_se\": %.8f, "
               "\"ppl_diff\": %.6f, \"ppl_diff_se\": %.6f, "
               "\"kld_mean\": %.9f, \"kld_se\": %.9f, \"kld_max\": %.9f, \"kld_p999\": %.9f, \"kld_p99\": %.9f, \"kld_p95\": %.9f, "
               "\"kld_p90\": %.9f, \"kld_median\": %.9f, \"kld_p10\": %.9f, \"kld_p5\": %.9f, \"kld_p1\": %.9f, \"kld_p01\": %.9f, "
               "\"kld_min\": %.9f, \"same_top\": %.8f, \"same_top_se\": %.8f, "
               "\"dp_mean\": %.8f, \"dp_se\": %.8f, \"dp_rms\": %.8f, \"dp_rms_se\": %.8f, \"dp_max\": %.8f, \"dp_p99\": %.8f, "
               "\"dp_p95\": %.8f, \"dp_p90\": %.8f, \"dp_median\": %.8f, \"dp_p10\": %.8f, \"dp_p5\": %.8f, \"dp_p1\": %.8f, "
               "\"dp_min\": %.8f, \"seconds\": %.3f}\n",
               model, base, data, ntok, r->count, r->windows, o->context, o->chunks ? 0 : o->stride, o->chunks ? "true" : "false",
               r->ppl, r->ppl_se, r->ppl_base, r->ppl_base_se, r->nll_cor, r->ln_ratio, r->ln_ratio_se, r->ppl_ratio,
               r->ppl_ratio_se, r->ppl_diff, r->ppl_diff_se, r->kld_mean, r->kld_se, r->kld_max, r->kld_p999, r->kld_p99,
               r->kld_p95, r->kld_p90, r->kld_median, r->kld_p10, r->kld_p5, r->kld_p1, r->kld_p01, r->kld_min,
               r->same_top_frac, r->same_top_se, r->dp_mean, r->dp_se, r->dp_rms, r->dp_rms_se, r->dp_max, r->dp_p99,
               r->dp_p95, r->dp_p90, r->dp_median, r->dp_p10, r->dp_p5, r->dp_p1, r->dp_min, r->seconds);
        return;
    }
    printf("%-14s %s\n%-14s %s\n%-14s %s\n%-14s %zu (%zu scored)\n%-14s %s (%zu windows)\n%-14s %.1f tokens/s (both models)\n\n",
           "model (Q)", model, "base", base, "data", data, "tokens", ntok, r->count, "context", win, r->windows, "speed",
           r->count / (r->seconds > 0 ? r->seconds : 1e-9));
    printf("====== Perplexity ======\n");
    printf("PPL(Q)                : %12.6f ± %.6f\n", r->ppl, r->ppl_se);
    printf("PPL(base)             : %12.6f ± %.6f\n", r->ppl_base, r->ppl_base_se);
    printf("Cor(ln PPL(Q), base)  : %11.2f %%\n", 100.0 * r->nll_cor);
    printf("ln(PPL(Q)/PPL(base))  : %12.6f ± %.6f\n", r->ln_ratio, r->ln_ratio_se);
    printf("PPL(Q)/PPL(base)      : %12.6f ± %.6f\n", r->ppl_ratio, r->ppl_ratio_se);
    printf("PPL(Q)-PPL(base)      : %12.6f ± %.6f\n\n", r->ppl_diff, r->ppl_diff_se);
    printf("====== KL divergence KL(base || Q), nats ======\n");
    printf("Mean    KLD : %12.6f ± %.6f\n", r->kld_mean, r->kld_se);
    printf("Maximum KLD : %12.6f\n99.9%%   KLD : %12.6f\n99.0%%   KLD : %12.6f\n95.0%%   KLD : %12.6f\n90.0%%   KLD : %12.6f\n",
           r->kld_max, r->kld_p999, r->kld_p99, r->kld_p95, r->kld_p90);
    printf("Median  KLD : %12.6f\n10.0%%   KLD : %12.6f\n 5.0%%   KLD : %12.6f\n 1.0%%   KLD : %12.6f\n 0.1%%   KLD : %12.6f\n"
           "Minimum KLD : %12.6f\n\n",
           r->kld_median, r->kld_p10, r->kld_p5, r->kld_p1, r->kld_p01, r->kld_min);
    printf("====== Token probability ======\n");
    printf("Mean    Δp  : %8.3f ± %.3f %%\n", 100.0 * r->dp_mean, 100.0 * r->dp_se);
    printf("Maximum Δp  : %8.3f %%\n99.0%%   Δp  : %8.3f %%\n95.0%%   Δp  : %8.3f %%\n90.0%%   Δp  : %8.3f %%\n", 100.0 * r->dp_max,
           100.0 * r->dp_p99, 100.0 * r->dp_p95, 100.0 * r->dp_p90);
    printf("Median  Δp  : %8.3f %%\n10.0%%   Δp  : %8.3f %%\n 5.0%%   Δp  : %8.3f %%\n 1.0%%   Δp  : %8.3f %%\nMinimum Δp  : %8.3f %%\n",
           100.0 * r->dp_median, 100.0 * r->dp_p10, 100.0 * r->dp_p5, 100.0 * r->dp_p1, 100.0 * r->dp_min);
    printf("RMS Δp      : %8.3f ± %.3f %%\n", 100.0 * r->dp_rms, 100.0 * r->dp_rms_se);
    printf("Same top p  : %8.3f ± %.3f %%\n", 100.0 * r->same_top_frac, 100.0 * r->same_top_se);
}

/* --kld-base: BASE loaded (a GGUF kept quantized or not as MODEL), its tokenizer checked against tok (MODEL's; may be NULL), then both
 * models over the same windows */
static int run_kld(lf_model *m, const char *model, const char *base_path, int keep, const lf_tokenizer *tok,
                   const char *tok_path, const char *data, const lf_ids *ids, const uint8_t *mask, lf_kld_opts *o,
                   const char *out, int json) {
    lf_model *base;
    if (cli_load_model(&base, base_path, keep)) return cli_fail("eval");
    const lf_config *mc = lf_model_config(m), *bc = lf_model_config(base);
    if (mc->vocab_size != bc->vocab_size) {
        fprintf(stderr, "lmforge eval: %s has a vocabulary of %d tokens and the base %s %d: --kld-base needs a base model with the same tokenizer\n",
                model, mc->vocab_size, base_path, bc->vocab_size);
        lf_model_free(base);
        return 1;
    }
    char p[4096];
    cli_model_tokenizer(base_path, p, sizeof p);
    if (lf_path_exists(p)) {
        lf_tokenizer *bt;
        if (lf_tokenizer_load(&bt, p)) {
            lf_model_free(base);
            return cli_fail("eval");
        }
        int same = !tok || same_tokenizer(tok, bt, tok_path, p);
        if (!tok) fprintf(stderr, "lmforge eval: note: %s has no tokenizer to check against %s's\n", model, base_path);
        lf_tokenizer_free(bt);
        if (!same) {
            lf_model_free(base);
            return 1;
        }
    } else {
        fprintf(stderr, "lmforge eval: note: no tokenizer beside %s: only the vocabulary sizes were checked\n", base_path);
    }
    int max_seq = bc->max_seq < mc->max_seq ? bc->max_seq : mc->max_seq;
    if (o->context > max_seq) {
        fprintf(stderr, "lmforge eval: --context %d exceeds the base model's context length %d\n", o->context, max_seq);
        lf_model_free(base);
        return 2;
    }
    lf_kld_result r;
    int rc = 0;
    if (lf_kld_sequence(m, base, ids->ids, ids->n, mask, o, &r)) {
        rc = cli_fail("eval");
    } else {
        if (out && lf_write_atomic_with(out, write_kld_tokens, &r)) rc = cli_fail("eval");
        if (!rc) print_kld(&r, model, base_path, data, ids->n, o, json);
        lf_kld_result_free(&r);
    }
    lf_model_free(base);
    return rc;
}

/* the task names of the meta.json beside a shard (0 when it has none) */
static int shard_task_names(const char *shard, char (*names)[64], int max) {
    char p[4096];
    snprintf(p, sizeof p, "%s", shard);
    char *slash = strrchr(p, '/');
    snprintf(slash ? slash + 1 : p, sizeof p - (size_t)(slash ? slash + 1 - p : 0), "meta.json");
    json_t *j = json_load_file(p, 0, NULL), *t = json_object_get(j, "tasks");
    int n = 0;
    for (size_t i = 0; json_is_array(t) && i < json_array_size(t) && n < max; i++)
        snprintf(names[n++], 64, "%s", json_string_value(json_array_get(t, i)) ? json_string_value(json_array_get(t, i)) : "?");
    json_decref(j);
    return n;
}

int cmd_eval(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++) /* --task classify: src/cli/cmd_eval_classify.c */
        if (!strcmp(argv[i], "--task") && !strcmp(argv[i + 1], "classify")) return cmd_eval_classify(argc, argv);
    const char *model = NULL, *data = NULL, *tokp = NULL, *adapters = NULL, *kld_base = NULL, *kld_out = NULL;
    int T = 0, stride = 0, B = 8, json = 0, chunks = 0, limit = 0, keep = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (cli_quant_option(a, &keep)) continue;
        if (!strcmp(a, "--data") && has) data = argv[++i];
        else if (!strcmp(a, "--tokenizer") && has) tokp = argv[++i];
        else if (!strcmp(a, "--adapter") && has) adapters = argv[++i];
        else if (!strcmp(a, "--kld-base") && has) kld_base = argv[++i];
        else if (!strcmp(a, "--kld-out") && has) kld_out = argv[++i];
        else if (!strcmp(a, "--chunks")) chunks = 1;
        else if (!strcmp(a, "--context") && has) {
            if (cli_parse_int(argv[++i], &T)) goto usage;
        } else if (!strcmp(a, "--stride") && has) {
            if (cli_parse_int(argv[++i], &stride)) goto usage;
        } else if (!strcmp(a, "--batch") && has) {
            if (cli_parse_int(argv[++i], &B)) goto usage;
        } else if (!strcmp(a, "--limit") && has) {
            if (cli_parse_int(argv[++i], &limit) || limit < 0) {
                fprintf(stderr, "lmforge eval: --limit needs a number of tokens >= 0 (0: all), got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--json")) json = 1;
        else if (a[0] != '-' && !model) model = a;
        else if (a[0] != '-' && !data) data = a;
        else goto usage;
    }
    if (!model || !data) goto usage;
    if (B < 1 || B > 4096) {
        fprintf(stderr, "lmforge eval: --batch %d is out of range (1..4096 windows per forward)\n", B);
        return 2;
    }
    if (T < 0 || stride < 0) {
        fprintf(stderr, "lmforge eval: --context and --stride must be positive\n");
        return 2;
    }
    if ((kld_out || chunks) && !kld_base) {
        fprintf(stderr, "lmforge eval: %s needs --kld-base BASE\n", kld_out ? "--kld-out" : "--chunks");
        return 2;
    }
    if (chunks && stride) {
        fprintf(stderr, "lmforge eval: --stride has no effect with --chunks (windows of --context tokens that do not overlap)\n");
        return 2;
    }
    lf_model *m;
    if (cli_load_model(&m, model, keep)) return cli_fail("eval");
    if (cli_load_adapters(m, adapters, "eval")) {
        lf_model_free(m);
        return 1;
    }
    const lf_config *mc = lf_model_config(m);
    if (T > mc->max_seq || T == 1) {
        fprintf(stderr, "lmforge eval: --context %d is out of range (2..%d, the model's context length)\n", T, mc->max_seq);
        lf_model_free(m);
        return 2;
    }
    if (T <= 0) T = mc->max_seq < 1024 ? mc->max_seq : 1024;
    if (stride > T) {
        fprintf(stderr, "lmforge eval: --stride %d exceeds the context %d\n", stride, T);
        lf_model_free(m);
        return 2;
    }
    if (stride <= 0) stride = T / 2 > 0 ? T / 2 : 1;
    lf_ids ids = {0};
    uint8_t *mask = NULL;
    size_t bytes = 0;
    int rc = 1;
    size_t dl = strlen(data);
    char p[4096];
    cli_model_tokenizer(model, p, sizeof p);
    const char *tok_path = tokp ? tokp : p;
    lf_tokenizer *t = NULL; /* kept for --kld-base's check */
    char task_names[64][64];
    double task_sum[64];
    size_t task_count[64];
    int n_tasks = 0, limit_docs = 0;
    if (dl > 4 && !strcmp(data + dl - 4, ".bin")) { /* a shard: its own tokens */
        lf_shard *s;
        /* the shard's fingerprint is checked against it; bytes per token for bits per byte */
        if ((tokp || lf_path_exists(p)) && lf_tokenizer_load(&t, tok_path)) {
            lf_model_free(m);
            return cli_fail("eval");
        }
        if (!t) fprintf(stderr, "lmforge eval: note: no tokenizer (%s, --tokenizer): the shard's tokenizer cannot be checked\n", p);
        if (lf_shard_open(&s, data, t ? lf_tokenizer_fingerprint(t) : 0) || lf_shard_check_vocab(s, mc->vocab_size)) {
            lf_tokenizer_free(t);
            lf_model_free(m);
            return cli_fail("eval");
        }
        /* a shard of several tasks (prepare's JSONL "task" field): one row per task, whole documents */
        n_tasks = shard_task_names(data, task_names, 64);
        if (n_tasks > 0 &&
            lf_mtl_eval_shard(m, s, T, B, limit_docs, n_tasks, task_sum, task_count)) {
            lf_shard_close(s);
            lf_tokenizer_free(t);
            lf_model_free(m);
            return cli_fail("eval");
        }
        size_t n = lf_shard_num_tokens(s);
        mask = malloc(n);
        for (size_t i = 0; mask && i < n; i++) {
            lf_ids_push(&ids, lf_shard_token(s, i));
            mask[i] = (uint8_t)lf_shard_is_target(s, i);
        }
        lf_shard_close(s);
        if (t)
            for (size_t i = 0; i < n; i++) {
                size_t l = 0;
                lf_tokenizer_piece(t, ids.ids[i], &l);
                bytes += l;
            }
    } else {
        if (lf_tokenizer_load(&t, tok_path)) {
            lf_model_free(m);
            return cli_fail("eval");
        }
        lf_tok_encoder *e;
        lf_tok_encoder_init(&e, t);
        int bad = add_text(data, e, t, &ids, &bytes);
        lf_tok_encoder_free(e);
        if (bad) {
            lf_tokenizer_free(t);
            lf_model_free(m);
            lf_ids_free(&ids);
            return 1;
        }
    }
    if (limit && ids.n > (size_t)limit) { /* the first tokens only: bits per byte over their pieces' bytes */
        ids.n = (size_t)limit;
        bytes = 0;
        for (size_t i = 0; t && i < ids.n; i++) {
            size_t l = 0;
            lf_tokenizer_piece(t, ids.ids[i], &l);
            bytes += l;
        }
    }
    if (kld_base) {
        lf_kld_opts o = {T, chunks ? 0 : stride, chunks};
        rc = run_kld(m, model, kld_base, keep, t, tok_path, data, &ids, mask, &o, kld_out, json);
        goto done;
    }
    lf_eval_result r;
    if (lf_eval_sequence(m, ids.ids, ids.n, mask, T, stride, B, &r)) {
        rc = cli_fail("eval");
    } else {
        double loss = r.targets ? r.loss_sum / r.targets : NAN, bpb = bytes ? r.loss_sum / log(2.0) / bytes : NAN;
        char bpbs[32] = "null"; /* no tokenizer, no bytes: JSON has no NaN */
        if (isfinite(bpb)) snprintf(bpbs, sizeof bpbs, "%.6f", bpb);
        /* pruning (issue 11): zeros of the blocks' linear weights held as float32, and the parameters that
         * are not zero (tensors in a quantized storage count as nonzero) */
        size_t lz = 0, lt = 0, zeros = 0, np = lf_model_num_scalars(m);
        lf_prune_count(m, 0, &lz, &lt); /* the blocks' linears: a pruned head shows in the nonzero count */
        for (int i = 0; i < lf_model_num_params(m); i++) {
            lf_param *pp = lf_model_param(m, i);
            for (size_t k = 0; pp->data && k < pp->numel; k++) zeros += pp->data[k] == 0.0f;
        }
        if (json)
            printf("{\"model\": \"%s\", \"data\": \"%s\", \"tokens\": %zu, \"targets\": %zu, \"bytes\": %zu, \"context\": %d, "
                   "\"stride\": %d, \"loss\": %.6f, \"perplexity\": %.4f, \"bits_per_byte\": %s, \"seconds\": %.3f, "
                   "\"linear_sparsity\": %.6f, \"params\": %zu, \"params_nonzero\": %zu}\n",
                   model, data, ids.n, r.targets, bytes, T, stride, loss, exp(loss), bpbs, r.seconds,
                   lt ? (double)lz / (double)lt : 0.0, np, np - zeros);
        else
            printf("%-14s %s\n%-14s %s\n%-14s %zu (%zu scored)\n%-14s %d, stride %d (%zu windows)\n%-14s %.4f nats/token\n"
                   "%-14s %.3f\n%-14s %.4f\n%-14s %.1f tokens/s\n%-14s %.2f%% of the linear weights are zero\n"
                   "%-14s %zu nonzero of %zu\n",
                   "model", model, "data", data, "tokens", ids.n, r.targets, "context", T, stride, r.windows, "mean loss", loss,
                   "perplexity", exp(loss), "bits/byte", bpb, "speed", r.targets / (r.seconds > 0 ? r.seconds : 1e-9),
                   "sparsity", lt ? 100.0 * (double)lz / (double)lt : 0.0, "parameters", np - zeros, np);
        for (int k = 0; k < n_tasks; k++) {
            double tl = task_count[k] ? task_sum[k] / (double)task_count[k] : NAN;
            if (json && !task_count[k]) printf("{\"task\": \"%s\", \"targets\": 0, \"loss\": null, \"perplexity\": null}\n", task_names[k]);
            else if (json)
                printf("{\"task\": \"%s\", \"targets\": %zu, \"loss\": %.6f, \"perplexity\": %.4f}\n", task_names[k], task_count[k],
                       tl, exp(tl));
            else if (!task_count[k])
                printf("%s%-14s %-20s no scored targets in this split\n", k ? "" : "per task (whole documents, masked targets):\n", "task",
                       task_names[k]);
            else
                printf("%s%-14s %-20s loss %.4f  perplexity %.3f  (%zu targets)\n", k ? "" : "per task (whole documents, masked targets):\n",
                       "task", task_names[k], tl, exp(tl), task_count[k]);
        }
        rc = 0;
    }
done:
    lf_tokenizer_free(t);
    free(mask);
    lf_ids_free(&ids);
    lf_model_free(m);
    return rc;
usage:
    fprintf(stderr, "usage: lmforge eval MODEL [--data] FILE|FOLDER|SHARD.bin [--tokenizer PATH] [--adapter DIR[,DIR]] [--context T]\n"
                    "                           [--stride S] [--batch B] [--limit N] [--json] [--keep-quantized | --dequantize]\n"
                    "                           [--int8-activations | --float-activations]\n"
                    "           --limit N: only the first N tokens of the data\n"
                    "           a SHARD.bin whose meta.json lists tasks (prepare's JSONL \"task\" field) also gets one row per\n"
                    "           task: the loss of its whole documents (masked targets), as multi-task training validates\n"
                    "           --int8-activations: a GGUF's quantized weights meet activations rounded to int8 blocks of 32\n"
                    "           (llama.cpp's way; the integer kernels at batch 1), default float32 activations\n"
                    "       lmforge eval MODEL DATA --kld-base BASE [--chunks] [--kld-out FILE.tsv] [--context T] [--stride S] [--json]\n"
                    "           KL divergence of MODEL's next-token distributions from BASE's (same tokenizer), one window at\n"
                    "           a time; the windows of plain eval (every target once), or with --chunks llama-perplexity's\n"
                    "           (windows of T that do not overlap, their second half scored); --kld-out: one line per target;\n"
                    "           a GGUF BASE loads like MODEL (--keep-quantized / --dequantize)\n"
                    "       lmforge eval --task classify MODEL DATA ... (accuracy, F1; --task classify --help)\n");
    return 2;
}
