/* lmforge prune MODEL --method magnitude|wanda|sparsegpt --sparsity S [--pattern N:M] --out DIR:
 * a Hugging Face folder with the pruned weights as zeros in place (transformers loads it as any
 * other), the tokenizer beside it, and sparsity.json, the per-tensor report. Wanda and SparseGPT
 * calibrate on K windows of T tokens of --calib (a token shard or a text file). */
#include "cli.h"
#include "lmforge/ckpt.h"
#include "lmforge/data.h"
#include "lmforge/prune.h"
#include "lmforge/tokenizer.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* K windows of T tokens at seeded random starts of the calibration data, (K,T) */
static int32_t *calib_windows(const char *path, const char *model, const char *tokp, int K, int T, uint64_t seed, int vocab) {
    lf_ids ids = {0};
    size_t pl = strlen(path);
    if (pl > 4 && !strcmp(path + pl - 4, ".bin")) {
        lf_shard *s;
        if (lf_shard_open(&s, path, 0) || lf_shard_check_vocab(s, vocab)) {
            fprintf(stderr, "lmforge prune: --calib %s\n", lf_last_error());
            return NULL;
        }
        for (size_t i = 0; i < lf_shard_num_tokens(s); i++) lf_ids_push(&ids, lf_shard_token(s, i));
        lf_shard_close(s);
    } else {
        char tp[4096];
        cli_model_tokenizer(model, tp, sizeof tp);
        if (tokp) snprintf(tp, sizeof tp, "%s", tokp);
        lf_tokenizer *t;
        size_t n;
        char *text = lf_read_file(path, &n);
        if (!text) {
            fprintf(stderr, "lmforge prune: --calib %s (a token shard .bin or a text file)\n", lf_last_error());
            return NULL;
        }
        if (lf_tokenizer_load(&t, tp)) {
            fprintf(stderr, "lmforge prune: --calib is text, and the model's tokenizer %s: %s\n", tp, lf_last_error());
            free(text);
            return NULL;
        }
        lf_tok_encoder *e;
        lf_tok_encoder_init(&e, t);
        lf_status st = lf_tok_encode(e, text, n, LF_ENC_EOS, &ids);
        lf_tok_encoder_free(e);
        lf_tokenizer_free(t);
        free(text);
        if (st) {
            fprintf(stderr, "lmforge prune: --calib %s: %s\n", path, lf_last_error());
            lf_ids_free(&ids);
            return NULL;
        }
    }
    if (ids.n < (size_t)T + 1) {
        fprintf(stderr, "lmforge prune: --calib %s has %zu tokens, fewer than one window of --calib-seq %d\n", path, ids.n, T);
        lf_ids_free(&ids);
        return NULL;
    }
    int32_t *w = malloc(sizeof(int32_t) * (size_t)K * T);
    for (int k = 0; w && k < K; k++) {
        size_t start = lf_hash64(seed, 0x70726e, (uint64_t)k) % (ids.n - (size_t)T);
        memcpy(w + (size_t)k * T, ids.ids + start, sizeof(int32_t) * (size_t)T);
    }
    lf_ids_free(&ids);
    if (!w) fprintf(stderr, "lmforge prune: out of memory for %d calibration windows\n", K);
    return w;
}

/* --save-calib: the windows as {"calib_seq": T, "ids": [[...], ...]} (a peer prunes on the same) */
typedef struct {
    const int32_t *w;
    int K, T;
} calib_ctx;

static lf_status write_calib(FILE *f, const char *path, const void *ctx) {
    const calib_ctx *c = ctx;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "{\"calib_seq\": %d, \"ids\": [", c->T);
    lf_status st = lf_write_all(f, buf, (size_t)n, path);
    for (int k = 0; k < c->K && !st; k++)
        for (int t = 0; t < c->T && !st; t++) {
            n = snprintf(buf, sizeof buf, "%s%d%s", t ? "" : (k ? ", [" : "["), c->w[(size_t)k * c->T + t], t + 1 < c->T ? ", " : "]");
            st = lf_write_all(f, buf, (size_t)n, path);
        }
    if (!st) st = lf_write_all(f, "]}\n", 3, path);
    return st;
}

typedef struct {
    lf_model *m;
    json_t *meta;
    int include_head;
} report_ctx;

/* a report object as indented JSON and a newline into the atomic writer's file (takes j, may be NULL) */
static lf_status write_json(FILE *f, const char *path, json_t *j) {
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!s) {
        lf_set_error("%s: out of memory", path);
        return LF_ERR_NOMEM;
    }
    lf_status st = lf_write_all(f, s, strlen(s), path);
    if (!st) st = lf_write_all(f, "\n", 1, path);
    free(s);
    return st;
}

static lf_status write_report(FILE *f, const char *path, const void *ctx) {
    const report_ctx *r = ctx;
    json_t *j = json_deep_copy(r->meta), *tensors = json_object();
    size_t z = 0, t = 0, all_zero = 0;
    for (int i = 0; i < lf_model_num_params(r->m); i++) {
        lf_param *p = lf_model_param(r->m, i);
        if (!p->data) continue;
        size_t pz = 0;
        for (size_t k = 0; k < p->numel; k++) pz += p->data[k] == 0.0f;
        all_zero += pz;
        if (!lf_prune_is_target(r->m, p, r->include_head)) continue;
        z += pz;
        t += p->numel;
        json_t *e = json_object();
        json_object_set_new(e, "shape", json_pack("[II]", (json_int_t)p->shape[0], (json_int_t)p->shape[1]));
        json_object_set_new(e, "zeros", json_integer((json_int_t)pz));
        json_object_set_new(e, "numel", json_integer((json_int_t)p->numel));
        json_object_set_new(e, "sparsity", json_real((double)pz / (double)p->numel));
        json_object_set_new(tensors, p->name, e);
    }
    size_t np = lf_model_num_scalars(r->m);
    json_object_set_new(j, "linear_zeros", json_integer((json_int_t)z));
    json_object_set_new(j, "linear_weights", json_integer((json_int_t)t));
    json_object_set_new(j, "linear_sparsity", json_real(t ? (double)z / (double)t : 0.0));
    json_object_set_new(j, "params", json_integer((json_int_t)np));
    json_object_set_new(j, "params_nonzero", json_integer((json_int_t)(np - all_zero)));
    json_object_set_new(j, "tensors", tensors);
    return write_json(f, path, j);
}

/* the tokenizer beside the weights: a folder's tokenizer files copied as they are, a GGUF's
 * written as tokenizer.json */
static int copy_tokenizer(const char *model, const char *out) {
    char src[4096], dst[4200];
    cli_model_tokenizer(model, src, sizeof src);
    if (!lf_path_exists(src)) {
        fprintf(stderr, "lmforge prune: note: no tokenizer beside %s: %s gets none\n", model, out);
        return 0;
    }
    snprintf(dst, sizeof dst, "%s/tokenizer.json", out);
    if (lf_is_gguf(model)) {
        lf_tokenizer *t;
        if (lf_tokenizer_load(&t, src)) return cli_fail("prune");
        lf_status st = lf_tokenizer_save_json(t, dst);
        lf_tokenizer_free(t);
        return st ? cli_fail("prune") : 0;
    }
    const char *files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"};
    for (int i = 0; i < 4; i++) {
        snprintf(src, sizeof src, "%s/%s", model, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", out, files[i]);
        if (!lf_is_dir(model) || !lf_path_exists(src)) continue;
        size_t n;
        char *b = lf_read_file(src, &n);
        if (!b || lf_write_file_atomic(dst, b, n)) {
            free(b);
            return cli_fail("prune");
        }
        free(b);
    }
    return 0;
}

/* ---- --structured: scores, a plan, the smaller model and structure.json */

typedef struct {
    const char *model, *calib, *importance;
    const lf_config *before;
    size_t params_before, params_after;
    const lf_sprune_plan *plan;
    int remove_groups, remove_qheads, remove_neurons, remove_layers, K, T, batch;
    double seconds_score, seconds;
} struct_report;

static json_t *int_list(const int *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

/* the indices in 0..n that a sorted keep list (k) leaves out */
static json_t *removed_list(const int *keep, int k, int n) {
    json_t *a = json_array();
    for (int i = 0, j = 0; i < n; i++) {
        if (j < k && keep[j] == i) j++;
        else json_array_append_new(a, json_integer(i));
    }
    return a;
}

static lf_status write_struct_report(FILE *f, const char *path, const void *ctx) {
    const struct_report *r = ctx;
    const lf_config *c = r->before;
    const lf_sprune_plan *p = r->plan;
    json_t *layers = json_array();
    for (int i = 0; i < p->n_layer; i++) {
        int l = p->layers[i];
        json_t *e = json_pack("{s:i, s:o, s:o, s:o}", "source_layer", l, "kv_heads_kept", int_list(p->kv_heads + (size_t)i * p->n_kv_head, p->n_kv_head),
                              "heads_kept", int_list(p->heads + (size_t)i * p->n_head, p->n_head), "neurons_removed",
                              removed_list(p->neurons + (size_t)i * p->d_ff, p->d_ff, c->d_ff));
        json_array_append_new(layers, e);
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:{s:i, s:i, s:i, s:i}, s:{s:f, s:f, s:f, s:f}, s:{s:i, s:i, s:i, s:i}, "
                          "s:{s:i, s:i, s:i, s:i}, s:I, s:I, s:f, s:o, s:o, s:f, s:f}",
                          "model", r->model, "importance", r->importance, "calib", r->calib, "calib_samples", r->K, "calib_seq",
                          r->T, "batch", r->batch, "removed", "kv_groups_per_layer", r->remove_groups, "heads_per_group",
                          r->remove_qheads, "neurons_per_layer", r->remove_neurons, "layers", r->remove_layers, "removed_fraction",
                          "heads", 1.0 - (double)p->n_head / c->n_head, "kv_heads", 1.0 - (double)p->n_kv_head / c->n_kv_head,
                          "neurons", 1.0 - (double)p->d_ff / c->d_ff, "layers", 1.0 - (double)p->n_layer / c->n_layer, "before",
                          "n_layer", c->n_layer, "n_head", c->n_head, "n_kv_head", c->n_kv_head, "d_ff", c->d_ff, "after", "n_layer",
                          p->n_layer, "n_head", p->n_head, "n_kv_head", p->n_kv_head, "d_ff", p->d_ff, "params_before",
                          (json_int_t)r->params_before, "params_after", (json_int_t)r->params_after, "params_fraction",
                          (double)r->params_after / (double)r->params_before, "layers_removed",
                          removed_list(p->layers, p->n_layer, c->n_layer), "layers_kept", layers, "seconds_score", r->seconds_score,
                          "seconds", r->seconds);
    return write_json(f, path, j);
}

/* a fraction of n as a count: rounded to the nearest (halves up) */
static int frac_count(float f, int n) {
    return (int)floor((double)f * n + 0.5);
}

static int prune_structured(lf_model *m, const char *model, const char *out, const char *calib, const char *imps, const int32_t *w,
                            int K, int T, int batch, float heads, float qheads, float neurons, int layers, lf_reporter *rep,
                            int quiet) {
    lf_importance imp;
    if (lf_importance_parse(imps, &imp)) {
        fprintf(stderr, "lmforge prune: --importance: %s\n", lf_last_error());
        return 2;
    }
    const lf_config *c = lf_model_config(m);
    lf_config before = *c;
    int rg = frac_count(heads, c->n_kv_head), rq = frac_count(qheads, c->n_head / c->n_kv_head), rn = frac_count(neurons, c->d_ff);
    if ((heads > 0 && rg == 0) || (qheads > 0 && rq == 0)) {
        fprintf(stderr, "lmforge prune: %s of %d %s rounds to none: a larger fraction removes at least one\n",
                heads > 0 && rg == 0 ? "--heads" : "--query-heads", heads > 0 && rg == 0 ? c->n_kv_head : c->n_head / c->n_kv_head,
                heads > 0 && rg == 0 ? "KV groups" : "query heads per group");
        return 2;
    }
    double t0 = lf_now();
    lf_sprune_scores sc;
    lf_sprune_plan plan;
    lf_model *small = NULL;
    if (lf_sprune_score(m, imp, w, K, T, batch, rep, &sc)) return cli_fail("prune");
    double ts = lf_now() - t0;
    lf_status st = lf_sprune_plan_make(m, &sc, rg, rq, rn, layers, &plan);
    lf_sprune_scores_free(&sc);
    if (st) return cli_fail("prune");
    int rc = 0;
    if (lf_sprune_shrink(m, &plan, &small) || lf_hf_save(small, out)) rc = cli_fail("prune");
    if (!rc) rc = copy_tokenizer(model, out);
    if (!rc) {
        struct_report r = {model, calib, imps, &before, lf_model_num_scalars(m), lf_model_num_scalars(small), &plan, rg, rq, rn,
                           layers, K, T, batch, ts, lf_now() - t0};
        char rp[4200];
        snprintf(rp, sizeof rp, "%s/structure.json", out);
        if (lf_write_atomic_with(rp, write_struct_report, &r)) rc = cli_fail("prune");
        if (!rc && !quiet)
            printf("%s: %s structured: %d→%d layers, %d→%d heads (%d→%d KV), d_ff %d→%d; %zu → %zu parameters (%.1f%%) in %.2f s "
                   "(scoring %.2f s)\n",
                   out, imps, before.n_layer, plan.n_layer, before.n_head, plan.n_head, before.n_kv_head, plan.n_kv_head, before.d_ff,
                   plan.d_ff, r.params_before, r.params_after, 100.0 * r.params_after / r.params_before, r.seconds, ts);
    }
    lf_model_free(small);
    lf_sprune_plan_free(&plan);
    return rc;
}

int cmd_prune(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *method = NULL, *calib = NULL, *pattern = NULL, *tokp = NULL, *save_calib = NULL;
    float sparsity = -1.0f, damp = 0.01f;
    int K = -1, T = 256, bs = 128, global = 0, dense_stats = 0, head = 0, quiet = 0, seed = 0;
    int structured = 0, layers = 0, batch = 4;
    float heads = 0, qheads = 0, neurons = 0;
    const char *importance = "taylor";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc, bad = 0;
        if (!strcmp(a, "--method") && has) method = argv[++i];
        else if (!strcmp(a, "--out") && has) out = argv[++i];
        else if (!strcmp(a, "--calib") && has) calib = argv[++i];
        else if (!strcmp(a, "--pattern") && has) pattern = argv[++i];
        else if (!strcmp(a, "--tokenizer") && has) tokp = argv[++i];
        else if (!strcmp(a, "--save-calib") && has) save_calib = argv[++i];
        else if (!strcmp(a, "--sparsity") && has) bad = cli_parse_float(argv[++i], &sparsity);
        else if (!strcmp(a, "--damp") && has) bad = cli_parse_float(argv[++i], &damp);
        else if (!strcmp(a, "--calib-samples") && has) bad = cli_parse_int(argv[++i], &K);
        else if (!strcmp(a, "--calib-seq") && has) bad = cli_parse_int(argv[++i], &T);
        else if (!strcmp(a, "--blocksize") && has) bad = cli_parse_int(argv[++i], &bs);
        else if (!strcmp(a, "--seed") && has) bad = cli_parse_int(argv[++i], &seed);
        else if (!strcmp(a, "--importance") && has) importance = argv[++i];
        else if (!strcmp(a, "--heads") && has) bad = cli_parse_float(argv[++i], &heads);
        else if (!strcmp(a, "--query-heads") && has) bad = cli_parse_float(argv[++i], &qheads);
        else if (!strcmp(a, "--neurons") && has) bad = cli_parse_float(argv[++i], &neurons);
        else if (!strcmp(a, "--layers") && has) bad = cli_parse_int(argv[++i], &layers);
        else if (!strcmp(a, "--batch") && has) bad = cli_parse_int(argv[++i], &batch);
        else if (!strcmp(a, "--structured")) structured = 1;
        else if (!strcmp(a, "--global")) global = 1;
        else if (!strcmp(a, "--dense-stats")) dense_stats = 1;
        else if (!strcmp(a, "--include-head")) head = 1;
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) goto help;
        else if (a[0] != '-' && !model) model = a;
        else goto usage;
        if (bad) {
            fprintf(stderr, "lmforge prune: %s needs a number, got '%s'\n", a, argv[i]);
            return 2;
        }
    }
    if (!model || !out || (!method && !structured)) goto usage;
    if (K == -1) K = structured ? 32 : 64;
    if (structured) {
        if (method || pattern || sparsity >= 0) {
            fprintf(stderr, "lmforge prune: --structured removes whole heads, neurons and layers: --method, --sparsity and "
                            "--pattern are for unstructured pruning\n");
            return 2;
        }
        if (!(heads >= 0 && heads < 1 && qheads >= 0 && qheads < 1 && neurons >= 0 && neurons < 1) || layers < 0 || batch < 1 ||
            K < 1 || T < 2) {
            fprintf(stderr, "lmforge prune: --heads, --query-heads and --neurons need fractions in 0..1 (0.25 removes a quarter), "
                            "--layers a count >= 0, --batch and --calib-samples >= 1, --calib-seq >= 2\n");
            return 2;
        }
        if (heads == 0 && qheads == 0 && neurons == 0 && layers == 0) {
            fprintf(stderr, "lmforge prune: --structured needs something to remove: --heads F, --query-heads F, --neurons F or "
                            "--layers N\n");
            return 2;
        }
        if (!calib) {
            fprintf(stderr, "lmforge prune: --structured scores on calibration text: --calib DATA (a token shard .bin or a text "
                            "file)\n");
            return 2;
        }
        if (!lf_path_exists(model)) {
            fprintf(stderr, "lmforge prune: %s: no such model (a Hugging Face folder, a .gguf file or a llama2.c .bin)\n", model);
            return 1;
        }
        lf_reporter *rep = NULL;
        lf_report_opts ro = {0};
        ro.quiet = quiet;
        lf_report_open(&rep, &ro);
        lf_model *m;
        if (lf_model_load(&m, model)) {
            lf_report_close(rep);
            return cli_fail("prune");
        }
        int rc = 0;
        int32_t *w = NULL;
        if (T > lf_model_config(m)->max_seq) {
            fprintf(stderr, "lmforge prune: --calib-seq %d exceeds the model's context length %d\n", T, lf_model_config(m)->max_seq);
            rc = 2;
        } else if (!(w = calib_windows(calib, model, tokp, K, T, (uint64_t)seed, lf_model_config(m)->vocab_size))) {
            rc = 1;
        } else {
            rc = prune_structured(m, model, out, calib, importance, w, K, T, batch, heads, qheads, neurons, layers, rep, quiet);
        }
        free(w);
        lf_model_free(m);
        lf_report_close(rep);
        return rc;
    }
    lf_prune_opts o;
    lf_prune_method meth;
    if (lf_prune_method_parse(method, &meth)) {
        fprintf(stderr, "lmforge prune: --method: %s\n", lf_last_error());
        return 2;
    }
    lf_prune_opts_default(&o, meth);
    if (pattern) {
        int n = 0, mm = 0, len = 0;
        if (sscanf(pattern, "%d:%d%n", &n, &mm, &len) != 2 || pattern[len] || n < 0 || mm < 1 || n > mm || mm > 256) {
            fprintf(stderr, "lmforge prune: --pattern '%s' is not N:M with 0 <= N <= M <= 256 (2:4 keeps 2 of every 4)\n", pattern);
            return 2;
        }
        o.keep_n = n;
        o.group_m = mm;
        if (sparsity < 0) sparsity = 1.0f - (float)n / (float)mm;
    }
    if (!(sparsity >= 0.0f && sparsity < 1.0f)) {
        fprintf(stderr, "lmforge prune: --sparsity needs a fraction in 0..1 (0.5 prunes half of each layer)%s\n",
                pattern ? "" : ", or --pattern N:M");
        return 2;
    }
    if (K < 1 || T < 2 || bs < 1 || !(damp >= 0.0f)) {
        fprintf(stderr, "lmforge prune: --calib-samples, --calib-seq (>= 2), --blocksize must be positive and --damp >= 0\n");
        return 2;
    }
    if (meth != LF_PRUNE_MAGNITUDE && !calib) {
        fprintf(stderr, "lmforge prune: --method %s needs calibration text: --calib DATA (a token shard .bin or a text file)\n",
                method);
        return 2;
    }
    if (global && (meth != LF_PRUNE_MAGNITUDE || pattern)) {
        fprintf(stderr, "lmforge prune: --global is for unstructured magnitude pruning\n");
        return 2;
    }
    if (!lf_path_exists(model)) {
        fprintf(stderr, "lmforge prune: %s: no such model (a Hugging Face folder, a .gguf file or a llama2.c .bin)\n", model);
        return 1;
    }
    o.sparsity = sparsity;
    o.global = global;
    o.blocksize = bs;
    o.damp = damp;
    o.sequential = !dense_stats;
    o.include_head = head;
    lf_reporter *rep = NULL;
    lf_report_opts ro = {0};
    ro.quiet = quiet;
    if (lf_report_open(&rep, &ro) == LF_OK) o.rep = rep;
    lf_model *m;
    if (lf_model_load(&m, model)) { /* a GGUF dequantized: pruning works on float32 */
        lf_report_close(rep);
        return cli_fail("prune");
    }
    const lf_config *c = lf_model_config(m);
    int32_t *w = NULL;
    if (calib) {
        if (T > c->max_seq) {
            fprintf(stderr, "lmforge prune: --calib-seq %d exceeds the model's context length %d\n", T, c->max_seq);
            lf_model_free(m);
            lf_report_close(rep);
            return 2;
        }
        if (!(w = calib_windows(calib, model, tokp, K, T, (uint64_t)seed, c->vocab_size))) {
            lf_model_free(m);
            lf_report_close(rep);
            return 1;
        }
        calib_ctx cc = {w, K, T};
        if (save_calib && lf_write_atomic_with(save_calib, write_calib, &cc)) {
            free(w);
            lf_model_free(m);
            lf_report_close(rep);
            return cli_fail("prune");
        }
    }
    lf_prune_report pr;
    int rc = 0;
    if (lf_prune_model(m, &o, w, meth == LF_PRUNE_MAGNITUDE ? 0 : K, T, &pr)) rc = cli_fail("prune");
    lf_report_close(rep);
    free(w);
    if (!rc && lf_hf_save(m, out)) rc = cli_fail("prune");
    if (!rc) rc = copy_tokenizer(model, out);
    if (!rc) {
        char pat[32] = "unstructured", rp[4200];
        if (pattern) snprintf(pat, sizeof pat, "%d:%d", o.keep_n, o.group_m);
        json_t *meta = json_pack("{s:s, s:s, s:s, s:f, s:s, s:b, s:b, s:f, s:f, s:i}", "model", model, "method", method,
                                 "pattern", pat, "sparsity", (double)sparsity, "calib", calib ? calib : "", "global", global,
                                 "sequential", o.sequential, "seconds", pr.seconds, "seconds_calib", pr.seconds_calib,
                                 "tensors_pruned", pr.tensors);
        if (meth != LF_PRUNE_MAGNITUDE) {
            json_object_set_new(meta, "calib_samples", json_integer(K));
            json_object_set_new(meta, "calib_seq", json_integer(T));
        }
        if (meth == LF_PRUNE_SPARSEGPT) {
            json_object_set_new(meta, "blocksize", json_integer(bs));
            json_object_set_new(meta, "damp", json_real(damp));
        }
        report_ctx r = {m, meta, head};
        snprintf(rp, sizeof rp, "%s/sparsity.json", out);
        if (lf_write_atomic_with(rp, write_report, &r)) rc = cli_fail("prune");
        json_decref(meta);
        if (!rc && !quiet)
            printf("%s: %s %s, %d tensors, %zu of %zu linear weights pruned (%.2f%%) in %.2f s (calibration forward %.2f s)\n",
                   out, method, pat, pr.tensors, pr.pruned, pr.total, pr.total ? 100.0 * pr.pruned / pr.total : 0.0,
                   pr.seconds, pr.seconds_calib);
    }
    lf_model_free(m);
    return rc;
help:
    printf("usage: lmforge prune MODEL --method magnitude|wanda|sparsegpt --sparsity S [--pattern N:M] --out DIR\n"
           "                            [--calib DATA --calib-samples K --calib-seq T] [--blocksize B --damp D]\n"
           "                            [--global] [--dense-stats] [--include-head] [--seed N] [--save-calib FILE] [--quiet]\n"
           "  MODEL            a Hugging Face folder, a .gguf file (dequantized) or a llama2.c .bin\n"
           "  --method         magnitude: smallest |W| per tensor (--global: one threshold over all);\n"
           "                   wanda: smallest |W|·||X_j|| per output row; sparsegpt: OBS reconstruction\n"
           "  --sparsity       fraction of each linear weight pruned (0..1); --pattern N:M keeps N of every M\n"
           "                   consecutive inputs (2:4); embeddings, norms and the head stay dense\n"
           "  --calib          wanda/sparsegpt calibration: a token shard .bin or a text file; K windows (64) of\n"
           "                   T tokens (256) at random starts (--seed), run as one batch; text is encoded with the\n"
           "                   model's tokenizer or --tokenizer PATH; --save-calib FILE.json writes the windows\n"
           "  --dense-stats    calibrate every layer on the dense model (default: each linear is pruned as soon\n"
           "                   as its inputs are seen, so later ones see the pruned model)\n"
           "  --blocksize, --damp  sparsegpt column block (128) and dampening (0.01 of mean diag H)\n"
           "  writes DIR: config.json, model.safetensors (zeros in place), tokenizer.json, sparsity.json\n"
           "\n"
           "usage: lmforge prune MODEL --structured [--heads F] [--query-heads F] [--neurons F] [--layers N]\n"
           "                            --calib DATA [--importance taylor|act] [--calib-samples K --calib-seq T --batch B] --out DIR\n"
           "  removes whole structures, the same count in every layer, and writes a smaller ordinary model:\n"
           "  --heads F        fraction of KV groups removed per layer (a KV head with its query heads; MHA: heads)\n"
           "  --query-heads F  fraction of the query heads removed inside every kept group (Llama GQA)\n"
           "  --neurons F      fraction of MLP neurons removed per layer (gate/up rows and down columns)\n"
           "  --layers N       whole layers removed; counts are F x n rounded to the nearest\n"
           "  --importance     taylor (default): sum of |w * dL/dw| over the structure, gradients from --calib\n"
           "                   (K windows (32) of T tokens, B per forward/backward (4)); act: |W_ij|*||X_j|| over the\n"
           "                   structure's o_proj/down_proj columns, layers by block influence 1 - cos(h_in, h_out)\n"
           "  writes DIR: config.json (head_dim kept, fewer heads/neurons/layers), model.safetensors, tokenizer.json,\n"
           "  structure.json (what was removed, parameters before/after); fine-tune it with train --init DIR or\n"
           "  distill --teacher MODEL\n");
    return 0;
usage:
    fprintf(stderr, "usage: lmforge prune MODEL --method magnitude|wanda|sparsegpt --sparsity S [--pattern N:M] --out DIR\n"
                    "                            [--calib DATA --calib-samples K --calib-seq T] [--blocksize B --damp D] (--help)\n");
    return 2;
}
