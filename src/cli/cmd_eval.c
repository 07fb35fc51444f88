/* lmforge eval MODEL --data PATH: perplexity, mean loss and bits per byte of a model on a text
 * file, a folder of text files, or a token shard, with a sliding window. */
#include "cli.h"
#include "lmforge/ckpt.h"
#include "lmforge/data.h"
#include "lmforge/eval.h"
#include "lmforge/tokenizer.h"

#include <dirent.h>
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

int cmd_eval(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++) /* --task classify: src/cli/cmd_eval_classify.c */
        if (!strcmp(argv[i], "--task") && !strcmp(argv[i + 1], "classify")) return cmd_eval_classify(argc, argv);
    const char *model = NULL, *data = NULL, *tokp = NULL, *adapters = NULL;
    int T = 0, stride = 0, B = 8, json = 0, keep = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (cli_quant_option(a, &keep)) continue;
        if (!strcmp(a, "--data") && has) data = argv[++i];
        else if (!strcmp(a, "--tokenizer") && has) tokp = argv[++i];
        else if (!strcmp(a, "--adapter") && has) adapters = argv[++i];
        else if (!strcmp(a, "--context") && has) {
            if (cli_parse_int(argv[++i], &T)) goto usage;
        } else if (!strcmp(a, "--stride") && has) {
            if (cli_parse_int(argv[++i], &stride)) goto usage;
        } else if (!strcmp(a, "--batch") && has) {
            if (cli_parse_int(argv[++i], &B)) goto usage;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (a[0] != '-' && !model) model = a;
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
    if (dl > 4 && !strcmp(data + dl - 4, ".bin")) { /* a shard: its own tokens */
        lf_shard *s;
        lf_tokenizer *t = NULL; /* the shard's fingerprint is checked against it; bytes per token for bits per byte */
        char p[4096];
        cli_model_tokenizer(model, p, sizeof p);
        if (tokp && lf_tokenizer_load(&t, tokp)) {
            lf_model_free(m);
            return cli_fail("eval");
        }
        if (!tokp && lf_path_exists(p) && lf_tokenizer_load(&t, p)) {
            lf_model_free(m);
            return cli_fail("eval");
        }
        if (!t) fprintf(stderr, "lmforge eval: note: no tokenizer (%s, --tokenizer): the shard's tokenizer cannot be checked\n", p);
        if (lf_shard_open(&s, data, t ? lf_tokenizer_fingerprint(t) : 0) || lf_shard_check_vocab(s, mc->vocab_size)) {
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
        lf_tokenizer_free(t);
    } else {
        char p[4096];
        cli_model_tokenizer(model, p, sizeof p);
        lf_tokenizer *t;
        if (lf_tokenizer_load(&t, tokp ? tokp : p)) {
            lf_model_free(m);
            return cli_fail("eval");
        }
        lf_tok_encoder *e;
        lf_tok_encoder_init(&e, t);
        int bad = add_text(data, e, t, &ids, &bytes);
        lf_tok_encoder_free(e);
        lf_tokenizer_free(t);
        if (bad) {
            lf_model_free(m);
            lf_ids_free(&ids);
            return 1;
        }
    }
    lf_eval_result r;
    if (lf_eval_sequence(m, ids.ids, ids.n, mask, T, stride, B, &r)) {
        rc = cli_fail("eval");
    } else {
        double loss = r.targets ? r.loss_sum / r.targets : NAN, bpb = bytes ? r.loss_sum / log(2.0) / bytes : NAN;
        if (json)
            printf("{\"model\": \"%s\", \"data\": \"%s\", \"tokens\": %zu, \"targets\": %zu, \"bytes\": %zu, \"context\": %d, "
                   "\"stride\": %d, \"loss\": %.6f, \"perplexity\": %.4f, \"bits_per_byte\": %.6f, \"seconds\": %.3f}\n",
                   model, data, ids.n, r.targets, bytes, T, stride, loss, exp(loss), bpb, r.seconds);
        else
            printf("%-14s %s\n%-14s %s\n%-14s %zu (%zu scored)\n%-14s %d, stride %d (%zu windows)\n%-14s %.4f nats/token\n"
                   "%-14s %.3f\n%-14s %.4f\n%-14s %.1f tokens/s\n",
                   "model", model, "data", data, "tokens", ids.n, r.targets, "context", T, stride, r.windows, "mean loss", loss,
                   "perplexity", exp(loss), "bits/byte", bpb, "speed", r.targets / (r.seconds > 0 ? r.seconds : 1e-9));
        rc = 0;
    }
    free(mask);
    lf_ids_free(&ids);
    lf_model_free(m);
    return rc;
usage:
    fprintf(stderr, "usage: lmforge eval MODEL --data FILE|FOLDER|SHARD.bin [--tokenizer PATH] [--adapter DIR[,DIR]] [--context T] [--stride S]\n"
                    "                           [--batch B] [--json] [--keep-quantized | --dequantize]\n"
                    "       lmforge eval --task classify MODEL DATA ... (accuracy, F1; --task classify --help)\n");
    return 2;
}
