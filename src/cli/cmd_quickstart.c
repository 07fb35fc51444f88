/* lmforge quickstart (the default job): KJV Bible (Debian's bible-kjv-text) -> byte-level BPE
 * tokenizer -> shards with a held-out split -> a small Llama-family model pretrained with
 * validation, early stopping and checkpoints -> held-out perplexity against a unigram baseline
 * -> a generated sample -> a summary. Everything goes under runs/ (or --out). */
#include "cli.h"
#include "lmforge/ckpt.h"
#include "lmforge/data.h"
#include "lmforge/eval.h"
#include "lmforge/tokenizer.h"
#include "lmforge/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


/* cross-entropy of the validation targets under add-one-smoothed training unigram frequencies */
static double unigram_loss(const lf_shard *train, const lf_shard *val, int V) {
    double *cnt = calloc((size_t)V, sizeof *cnt), total = 0, loss = 0;
    size_t n = 0;
    if (!cnt) return NAN;
    for (size_t i = 0; i < lf_shard_num_tokens(train); i++) cnt[lf_shard_token(train, i)] += 1;
    for (int v = 0; v < V; v++) total += cnt[v] + 1;
    for (size_t i = 1; i < lf_shard_num_tokens(val); i++)
        if (lf_shard_is_target(val, i)) {
            loss -= log((cnt[lf_shard_token(val, i)] + 1) / total);
            n++;
        }
    free(cnt);
    return n ? loss / n : NAN;
}

typedef struct {
    const lf_tokenizer *tok;
    char *buf;
    size_t len, cap;
} sample_buf;

static int add_piece(void *ctx, int id) {
    sample_buf *b = ctx;
    size_t len;
    const char *piece = lf_tokenizer_piece(b->tok, id, &len);
    if (piece && b->len + len < b->cap) {
        memcpy(b->buf + b->len, piece, len);
        b->len += len;
    }
    return 0;
}

static void fmt_count(char *b, size_t n, double x) {
    if (x >= 1e6) snprintf(b, n, "%.2fM", x / 1e6);
    else if (x >= 1e3) snprintf(b, n, "%.1fK", x / 1e3);
    else snprintf(b, n, "%.0f", x);
}

int cmd_quickstart(int argc, char **argv) {
    const char *out = "runs/kjv";
    int steps = 600, vocab = 4096;
    float minutes = 5.0f;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], &steps) || steps < 1) goto usage;
        } else if (!strcmp(argv[i], "--minutes") && i + 1 < argc) {
            if (cli_parse_float(argv[++i], &minutes) || minutes < 0) goto usage;
        } else if (!strcmp(argv[i], "--vocab-size") && i + 1 < argc) {
            if (cli_parse_int(argv[++i], &vocab) || vocab < 300) goto usage;
        } else goto usage;
    }
    double t0 = lf_now();
    char data[400], run[400], text[500], tokp[500], p[1200];
    snprintf(data, sizeof data, "%s/data", out);
    snprintf(run, sizeof run, "%s/run", out);
    snprintf(text, sizeof text, "%s/kjv.txt", data);
    snprintf(tokp, sizeof tokp, "%s/tokenizer.json", data);
    printf("lmforge quickstart: pretrain a small Llama-family model on the King James Bible (output in %s/)\n\n", out);

    /* 1. corpus */
    printf("[1/6] corpus: built-in KJV (bible-kjv-text), one document per chapter\n");
    lf_prepare_opts po = {.builtin = "kjv", .output = data, .text_only = 1, .quiet = 1, .val_fraction = 0.05f, .seed = 1234};
    lf_prepare_stats ps;
    char *mk = strdup(out); /* mkdir -p out */
    for (char *q = mk + 1; *q; q++)
        if (*q == '/') {
            *q = 0;
            mkdir(mk, 0755);
            *q = '/';
        }
    mkdir(mk, 0755);
    free(mk);
    if (lf_prepare(&po, &ps)) return cli_fail("quickstart");

    /* 2. tokenizer */
    printf("[2/6] tokenizer: byte-level BPE, %d tokens, trained on %s\n", vocab, text);
    const char *files[] = {text};
    lf_bpe_train_opts to = {.vocab_size = vocab, .quiet = 1};
    lf_tokenizer *tok;
    if (lf_tokenizer_train_bpe(&tok, files, 1, &to) || lf_tokenizer_save_json(tok, tokp)) return cli_fail("quickstart");
    int V = lf_tokenizer_vocab_size(tok);
    lf_tokenizer_free(tok);

    /* 3. shards */
    po.text_only = 0;
    po.tokenizer = tokp;
    if (lf_prepare(&po, &ps)) return cli_fail("quickstart");
    char a[32], b[32];
    fmt_count(a, sizeof a, (double)ps.tokens[0]);
    fmt_count(b, sizeof b, (double)ps.tokens[1]);
    printf("[3/6] shards: %zu chapters / %s tokens for training, %zu / %s held out (%s/)\n", ps.docs[0], a, ps.docs[1], b, data);

    /* 4. training */
    lf_train_config c;
    lf_train_config_defaults(&c);
    snprintf(c.data, sizeof c.data, "%s", data);
    snprintf(c.run_dir, sizeof c.run_dir, "%s", run);
    snprintf(c.tensorboard, sizeof c.tensorboard, "%s/tensorboard", out);
    c.max_steps = steps;
    c.max_minutes = minutes;
    c.eval_every = steps >= 500 ? 100 : (steps / 5 > 0 ? steps / 5 : 1);
    c.checkpoint_every = c.eval_every * 2;
    c.patience = 3;
    c.min_delta = 0.01f;
    c.warmup_steps = steps / 12;
    c.log_every = 25;
    snprintf(p, sizeof p, "rm -rf '%s'", run); /* a fresh run each time: the old one's metrics would mix in */
    if (system(p) != 0) fprintf(stderr, "lmforge quickstart: could not clear %s\n", run);
    printf("[4/6] training: llama, d_model %d, %d layers, %d heads (%d kv), context %d, batch %d, up to %d steps / %.0f min\n",
           c.d_model, c.n_layer, c.n_head, c.n_kv_head, c.context, c.batch_size, c.max_steps, c.max_minutes);
    volatile sig_atomic_t *stop = cli_stop_on_signals();
    lf_train_result tr;
    if (lf_train(&c, NULL, stop, &tr)) return cli_fail("quickstart");
    if (tr.reason == LF_STOP_SIGNAL) {
        printf("interrupted at step %d; resume with: lmforge train --resume %s\n", tr.steps, run);
        return 130;
    }

    /* 5. evaluation of the best checkpoint on the held-out chapters */
    lf_model *m;
    lf_shard *trs, *vs;
    snprintf(p, sizeof p, "%s/train.bin", data);
    if (lf_hf_load(&m, tr.best_dir) || lf_shard_open(&trs, p, 0)) return cli_fail("quickstart");
    snprintf(p, sizeof p, "%s/val.bin", data);
    if (lf_shard_open(&vs, p, 0)) return cli_fail("quickstart");
    size_t nv = lf_shard_num_tokens(vs);
    int32_t *ids = malloc(sizeof *ids * nv);
    for (size_t i = 0; ids && i < nv; i++) ids[i] = lf_shard_token(vs, i);
    lf_eval_result er;
    if (!ids || lf_eval_sequence(m, ids, nv, NULL, c.context, c.context / 2, 8, &er)) return cli_fail("quickstart");
    double ppl = exp(er.loss_sum / er.targets), uni = exp(unigram_loss(trs, vs, V));
    printf("[5/6] held-out perplexity of %s: %.2f (sliding window %d, stride %d); unigram baseline %.1f\n", tr.best_dir, ppl,
           c.context, c.context / 2, uni);

    /* 6. a sample */
    lf_tokenizer *t2;
    snprintf(p, sizeof p, "%s/tokenizer.json", tr.best_dir);
    const char *prompt = "And God said,";
    char sample[4096];
    sample_buf sb = {NULL, sample, 0, sizeof sample};
    if (!lf_tokenizer_load(&t2, p)) {
        lf_ids pid = {0};
        lf_tokenizer_encode(t2, prompt, strlen(prompt), 0, &pid);
        lf_sampler smp = {0.8f, 40, 0.95f, 7};
        sb.tok = t2;
        if (lf_generate(m, pid.ids, (int)pid.n, 60, &smp, lf_tokenizer_eos(t2), add_piece, &sb, NULL))
            fprintf(stderr, "lmforge quickstart: sampling stopped: %s\n", lf_last_error());
        lf_ids_free(&pid);
        lf_tokenizer_free(t2);
    }
    size_t sl = sb.len;
    sample[sl] = 0;
    for (size_t i = 0; i < sl; i++)
        if (sample[i] == '\n') sample[i] = ' ';
    printf("[6/6] sample (temperature 0.8, top-k 40, top-p 0.95):\n      %s%s\n\n", prompt, sample);

    char pc[32], tk[32];
    fmt_count(pc, sizeof pc, (double)tr.params);
    fmt_count(tk, sizeof tk, tr.tokens_per_s);
    static const char *why[] = {"max steps", "early stopping", "time limit", "interrupted", "non-finite loss"};
    printf("summary\n");
    printf("  %-28s %s\n", "parameters", pc);
    printf("  %-28s %d (stopped by %s), %.0f s, %s tokens/s\n", "steps", tr.steps, why[tr.reason], tr.seconds, tk);
    printf("  %-28s %.1f -> %.2f (%d validation batches, during training)\n", "val perplexity start -> end",
           exp(tr.val_loss_start), exp(tr.val_loss_end), c.eval_batches);
    printf("  %-28s %.2f (best/, step %d; all held-out chapters, sliding window)\n", "held-out perplexity", ppl, tr.best_step);
    printf("  %-28s %.1f (%.1fx higher)\n", "unigram baseline perplexity", uni, uni / ppl);
    printf("  %-28s %s (last checkpoint %s)\n", "model", tr.best_dir, tr.last_checkpoint);
    printf("  %-28s %s/metrics.jsonl, %s\n", "metrics", run, c.tensorboard);
    printf("  %-28s %.0f s\n", "total time", lf_now() - t0);
    printf("next: lmforge generate %s --prompt \"In the beginning\"   |   lmforge eval %s --data %s/val.bin\n", tr.best_dir,
           tr.best_dir, data);
    free(ids);
    lf_shard_close(trs);
    lf_shard_close(vs);
    lf_model_free(m);
    return ppl < uni ? 0 : 1;
usage:
    fprintf(stderr, "usage: lmforge [quickstart] [--out DIR] [--steps N] [--minutes M] [--vocab-size N]\n");
    return 2;
}
