/* The training loop: data, model, optimizer, schedule; evaluation and early stopping; atomic
 * checkpoints (a step folder written as *.tmp and renamed, then the 'latest' pointer replaced)
 * that hold everything needed to continue bit for bit; the NaN guard; interruption; metrics. */
#define _GNU_SOURCE /* renameat2 */
#include "lmforge/train.h"
#include "lmforge/ckpt.h"
#include "lmforge/data.h"
#include "lmforge/optim.h"
#include "lmforge/report.h"
#include "lmforge/tokenizer.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const lf_train_config *c;
    lf_model *m;
    lf_optim *opt;
    lf_tokenizer *tok;
    lf_shard *train, *val;
    lf_loader *loader;
    lf_schedule sched;
    FILE *metrics;
    lf_tb *tb;
    int step, bad, skipped, evals_since_best, best_step, tty;
    float best_val, val_start, last_val;
    double t_start, elapsed_before;
    size_t tokens_seen;
} run;

/* ---------------------------------------------------------------- small file helpers */

static lf_status mkdirs(const char *path) {
    char tmp[LF_PATH * 2];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) break;
            *p = '/';
        }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
        lf_set_error("%s: cannot create folder (%s)", path, strerror(errno));
        return LF_ERR_IO;
    }
    return LF_OK;
}

static void rm_rf(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[LF_PATH * 2 + 300];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            struct stat sb;
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) rm_rf(p);
            else unlink(p);
        }
        closedir(d);
        rmdir(path);
    }
}

static void fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) == (size_t)n) b[n] = 0;
    else {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* ---------------------------------------------------------------- output */

static void emit(run *r, json_t *ev, int to_stdout) {
    char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
    if (s) {
        if (r->metrics) {
            fputs(s, r->metrics);
            fputc('\n', r->metrics);
            fflush(r->metrics);
        }
        if (to_stdout && r->c->json) {
            puts(s);
            fflush(stdout);
        }
        free(s);
    }
    json_decref(ev);
}

static void say(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(run *r, const char *fmt, ...) {
    if (r->c->quiet || r->c->json) return;
    if (r->tty) fprintf(stdout, "\r\033[K");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* ---------------------------------------------------------------- checkpoints */

static lf_status save_model_dir(run *r, const char *dir) {
    lf_status st = lf_hf_save(r->m, dir);
    if (!st && r->tok) {
        char p[LF_PATH * 3];
        snprintf(p, sizeof p, "%s/tokenizer.json", dir);
        if (lf_tokenizer_kind(r->tok) == LF_TOK_BYTELEVEL) st = lf_tokenizer_save_json(r->tok, p);
    }
    return st;
}

static json_t *state_json(run *r) {
    json_t *j = json_object();
    lf_loader_state ls = lf_loader_get_state(r->loader);
    json_object_set_new(j, "format", json_string("lmforge-trainer-state"));
    json_object_set_new(j, "version", json_integer(1));
    json_object_set_new(j, "step", json_integer(r->step));
    json_object_set_new(j, "optimizer_t", json_integer(lf_optim_t(r->opt)));
    json_object_set_new(j, "loader_step", json_integer((json_int_t)ls.step));
    json_object_set_new(j, "loader_pos", json_integer((json_int_t)ls.pos));
    json_object_set_new(j, "loader_epoch", json_integer((json_int_t)ls.epoch));
    json_object_set_new(j, "best_val_loss", isfinite(r->best_val) ? json_real(r->best_val) : json_null());
    json_object_set_new(j, "best_step", json_integer(r->best_step));
    json_object_set_new(j, "val_loss_start", isfinite(r->val_start) ? json_real(r->val_start) : json_null());
    json_object_set_new(j, "evals_since_best", json_integer(r->evals_since_best));
    json_object_set_new(j, "bad_steps", json_integer(r->bad));
    json_object_set_new(j, "skipped_steps", json_integer(r->skipped));
    json_object_set_new(j, "tokens_seen", json_integer((json_int_t)r->tokens_seen));
    json_object_set_new(j, "elapsed_s", json_real(r->elapsed_before + lf_now() - r->t_start));
    char *cfg = lf_train_config_json(r->c);
    json_object_set_new(j, "config", json_loads(cfg, 0, NULL));
    free(cfg);
    return j;
}

static lf_status write_json_file(const char *path, json_t *j) {
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    if (!s) return LF_ERR_NOMEM;
    lf_status st = lf_write_file_atomic(path, s, strlen(s));
    free(s);
    return st;
}

/* dir.tmp is filled, then renamed to dir (an older dir of that name is exchanged out first) */
static lf_status publish_dir(const char *tmp, const char *dir) {
    fsync_path(tmp);
    if (exists(dir)) {
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) != 0) {
            lf_set_error("%s: cannot replace (%s)", dir, strerror(errno));
            return LF_ERR_IO;
        }
        rm_rf(tmp); /* now the old contents */
    } else if (rename(tmp, dir) != 0) {
        lf_set_error("%s: cannot rename from %s (%s)", dir, tmp, strerror(errno));
        return LF_ERR_IO;
    }
    char parent[LF_PATH * 2];
    snprintf(parent, sizeof parent, "%s", dir);
    char *sl = strrchr(parent, '/');
    if (sl) {
        *sl = 0;
        fsync_path(parent);
    }
    return LF_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void prune_checkpoints(run *r, const char *keep) {
    char dir[LF_PATH + 32];
    snprintf(dir, sizeof dir, "%s/checkpoints", r->c->run_dir);
    DIR *d = opendir(dir);
    if (!d) return;
    char *names[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096)
        if (!strncmp(e->d_name, "step-", 5) && !strchr(e->d_name, '.')) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        if (i < n - r->c->keep_checkpoints && !strstr(keep, names[i])) {
            char p[LF_PATH * 3];
            snprintf(p, sizeof p, "%s/%s", dir, names[i]);
            rm_rf(p);
        }
        free(names[i]);
    }
}

static lf_status save_checkpoint(run *r, char *out_path, size_t out_len) {
    char dir[LF_PATH + 64], tmp[LF_PATH + 80], p[LF_PATH * 3];
    snprintf(dir, sizeof dir, "%s/checkpoints/step-%08d", r->c->run_dir, r->step);
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    rm_rf(tmp); /* leftovers of a run killed while writing */
    lf_status st = mkdirs(tmp);
    if (!st) st = save_model_dir(r, tmp);
    if (!st) { /* optimizer moments, named after their parameters */
        int np = lf_model_num_params(r->m), k = 0;
        lf_st_tensor *t = calloc((size_t)np * 2, sizeof *t);
        char (*names)[112] = calloc((size_t)np * 2, sizeof *names);
        for (int i = 0; t && names && i < np; i++) {
            lf_param *prm = lf_model_param(r->m, i);
            for (int w = 0; w < 2; w++) {
                float *mom = lf_optim_moment(r->opt, i, w);
                if (!mom) continue;
                snprintf(names[k], sizeof names[k], "%s.%s", w ? "v" : "m", prm->name);
                t[k] = (lf_st_tensor){names[k], prm->ndim, {prm->shape[0], prm->shape[1]}, mom, NULL, NULL};
                k++;
            }
        }
        snprintf(p, sizeof p, "%s/trainer_state.safetensors", tmp);
        st = t && names ? lf_st_write(p, t, k, NULL, 0) : LF_ERR_NOMEM;
        free(t);
        free(names);
    }
    if (!st) {
        json_t *j = state_json(r);
        snprintf(p, sizeof p, "%s/trainer_state.json", tmp);
        st = write_json_file(p, j);
        json_decref(j);
    }
    if (!st) st = publish_dir(tmp, dir);
    if (!st) { /* the pointer moves last: a kill before this line leaves the previous checkpoint current */
        char rel[64];
        snprintf(rel, sizeof rel, "checkpoints/step-%08d\n", r->step);
        snprintf(p, sizeof p, "%s/latest", r->c->run_dir);
        st = lf_write_file_atomic(p, rel, strlen(rel));
    }
    if (!st) {
        prune_checkpoints(r, dir);
        if (out_path) snprintf(out_path, out_len, "%s", dir);
        json_t *ev = json_object();
        json_object_set_new(ev, "event", json_string("checkpoint"));
        json_object_set_new(ev, "step", json_integer(r->step));
        json_object_set_new(ev, "path", json_string(dir));
        emit(r, ev, 1);
    }
    return st;
}

static lf_status save_best(run *r) {
    char dir[LF_PATH + 16], tmp[LF_PATH + 32], p[LF_PATH * 2];
    snprintf(dir, sizeof dir, "%s/best", r->c->run_dir);
    snprintf(tmp, sizeof tmp, "%s/best.tmp", r->c->run_dir);
    rm_rf(tmp);
    lf_status st = mkdirs(tmp);
    if (!st) st = save_model_dir(r, tmp);
    if (!st) {
        json_t *j = json_object();
        json_object_set_new(j, "step", json_integer(r->step));
        json_object_set_new(j, "val_loss", json_real(r->best_val));
        json_object_set_new(j, "val_perplexity", json_real(exp(r->best_val)));
        snprintf(p, sizeof p, "%s/best.json", tmp);
        st = write_json_file(p, j);
        json_decref(j);
    }
    if (!st) st = publish_dir(tmp, dir);
    return st;
}

/* a run folder (its 'latest') or a checkpoint folder */
static lf_status resolve_checkpoint(const char *path, char *out, size_t n) {
    char p[LF_PATH * 3];
    snprintf(p, sizeof p, "%s/trainer_state.json", path);
    if (exists(p)) {
        snprintf(out, n, "%s", path);
        return LF_OK;
    }
    snprintf(p, sizeof p, "%s/latest", path);
    char *rel = read_text(p);
    if (!rel) {
        lf_set_error("%s: neither a checkpoint (no trainer_state.json) nor a run folder with a 'latest' checkpoint", path);
        return LF_ERR_NOTFOUND;
    }
    rel[strcspn(rel, "\n")] = 0;
    snprintf(out, n, "%s/%s", path, rel);
    free(rel);
    snprintf(p, sizeof p, "%s/trainer_state.json", out);
    if (!exists(p)) {
        lf_set_error("%s: 'latest' names %s, which has no trainer_state.json", path, out);
        return LF_ERR_NOTFOUND;
    }
    return LF_OK;
}

static lf_status restore_state(run *r, const char *ck) {
    char p[LF_PATH * 3];
    snprintf(p, sizeof p, "%s/trainer_state.json", ck);
    json_error_t e;
    json_t *j = json_load_file(p, 0, &e);
    if (!j) {
        lf_set_error("%s: %s", p, e.text);
        return LF_ERR_FORMAT;
    }
    r->step = (int)json_integer_value(json_object_get(j, "step"));
    lf_optim_set_t(r->opt, (int)json_integer_value(json_object_get(j, "optimizer_t")));
    lf_loader_state ls = {(uint64_t)json_integer_value(json_object_get(j, "loader_step")),
                          (uint64_t)json_integer_value(json_object_get(j, "loader_pos")),
                          (uint64_t)json_integer_value(json_object_get(j, "loader_epoch"))};
    lf_loader_set_state(r->loader, ls);
    json_t *bv = json_object_get(j, "best_val_loss"), *vs = json_object_get(j, "val_loss_start");
    r->best_val = json_is_number(bv) ? (float)json_number_value(bv) : INFINITY;
    r->val_start = json_is_number(vs) ? (float)json_number_value(vs) : NAN;
    r->best_step = (int)json_integer_value(json_object_get(j, "best_step"));
    r->evals_since_best = (int)json_integer_value(json_object_get(j, "evals_since_best"));
    r->bad = (int)json_integer_value(json_object_get(j, "bad_steps"));
    r->skipped = (int)json_integer_value(json_object_get(j, "skipped_steps"));
    r->tokens_seen = (size_t)json_integer_value(json_object_get(j, "tokens_seen"));
    r->elapsed_before = json_number_value(json_object_get(j, "elapsed_s"));
    json_decref(j);
    snprintf(p, sizeof p, "%s/trainer_state.safetensors", ck);
    lf_st *st;
    lf_status s = lf_st_open(&st, p);
    if (s) return s;
    for (int i = 0; i < lf_model_num_params(r->m) && !s; i++) {
        lf_param *prm = lf_model_param(r->m, i);
        for (int w = 0; w < 2 && !s; w++) {
            float *mom = lf_optim_moment(r->opt, i, w);
            if (!mom) continue;
            char name[128];
            snprintf(name, sizeof name, "%s.%s", w ? "v" : "m", prm->name);
            int k = lf_st_find(st, name);
            if (k < 0) {
                lf_set_error("%s: no optimizer state '%s' (was the checkpoint made with other frozen layers?)", p, name);
                s = LF_ERR_FORMAT;
            } else {
                s = lf_st_read_f32(st, k, mom, prm->numel);
            }
        }
    }
    lf_st_close(st);
    return s;
}

/* After a kill, the steps after the last checkpoint are run again: drop their old records so
 * metrics.jsonl reads as one uninterrupted run. */
static lf_status trim_metrics(const char *run_dir, int step) {
    char p[LF_PATH * 3];
    snprintf(p, sizeof p, "%s/metrics.jsonl", run_dir);
    char *txt = read_text(p);
    if (!txt) return LF_OK;
    size_t len = strlen(txt), k = 0;
    char *out = malloc(len + 1);
    if (!out) {
        free(txt);
        return LF_ERR_NOMEM;
    }
    for (char *line = txt; *line;) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line + 1) : strlen(line);
        json_t *j = json_loadb(line, ll, 0, NULL);
        json_t *js = j ? json_object_get(j, "step") : NULL;
        if (!js || json_integer_value(js) <= step) {
            memcpy(out + k, line, ll);
            k += ll;
        }
        json_decref(j);
        line += ll;
    }
    lf_status st = k == len ? LF_OK : lf_write_file_atomic(p, out, k);
    free(out);
    free(txt);
    return st;
}

/* ---------------------------------------------------------------- setup */

static lf_status open_model(run *r, const char *resume_ck) {
    const lf_train_config *c = r->c;
    lf_status st;
    if (resume_ck) st = lf_hf_load(&r->m, resume_ck);
    else if (c->init[0]) st = lf_model_load(&r->m, c->init);
    else {
        lf_config mc;
        lf_config_defaults(&mc, !strcmp(c->arch, "gpt2") ? LF_ARCH_GPT2 : LF_ARCH_LLAMA);
        mc.vocab_size = lf_tokenizer_vocab_size(r->tok);
        mc.d_model = c->d_model;
        mc.n_layer = c->n_layer;
        mc.n_head = c->n_head;
        mc.n_kv_head = mc.arch == LF_ARCH_GPT2 ? c->n_head : c->n_kv_head;
        mc.head_dim = c->n_head > 0 ? c->d_model / c->n_head : 0;
        mc.d_ff = c->d_ff;
        mc.max_seq = c->context;
        mc.norm_eps = c->norm_eps;
        mc.rope_theta = c->rope_theta;
        mc.tie_embeddings = c->tie_embeddings;
        mc.bos_id = lf_tokenizer_bos(r->tok);
        mc.eos_id = lf_tokenizer_eos(r->tok);
        st = lf_model_init(&r->m, &mc);
        if (!st) lf_model_init_weights(r->m, (uint64_t)c->seed);
    }
    if (st) return st;
    lf_config *mc = (lf_config *)lf_model_config(r->m); /* regularisation comes from the run's config */
    float all = c->dropout;
    if (all >= 0) mc->dropout_embd = mc->dropout_attn = mc->dropout_resid = all;
    if (c->dropout_embd >= 0) mc->dropout_embd = c->dropout_embd;
    if (c->dropout_attn >= 0) mc->dropout_attn = c->dropout_attn;
    if (c->dropout_resid >= 0) mc->dropout_resid = c->dropout_resid;
    lf_model_set_label_smoothing(r->m, c->label_smoothing);
    if (mc->vocab_size < lf_tokenizer_vocab_size(r->tok)) {
        lf_set_error("the model's vocabulary (%d) is smaller than the tokenizer's (%d): wrong tokenizer for this model?",
                     mc->vocab_size, lf_tokenizer_vocab_size(r->tok));
        return LF_ERR_ARG;
    }
    if (c->context > mc->max_seq) {
        lf_set_error("context %d exceeds the model's %d positions", c->context, mc->max_seq);
        return LF_ERR_ARG;
    }
    int gpt2 = mc->arch == LF_ARCH_GPT2;
    if (c->freeze_embeddings) {
        st = lf_model_set_trainable(r->m, gpt2 ? "transformer.wte." : "model.embed_tokens.", 0, NULL);
        if (!st && gpt2) st = lf_model_set_trainable(r->m, "transformer.wpe.", 0, NULL);
        if (st) return st;
    }
    if (c->freeze_layers > mc->n_layer) {
        lf_set_error("freeze_layers %d exceeds the model's %d blocks", c->freeze_layers, mc->n_layer);
        return LF_ERR_ARG;
    }
    for (int l = 0; l < c->freeze_layers && !st; l++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, gpt2 ? "transformer.h.%d." : "model.layers.%d.", l);
        st = lf_model_set_trainable(r->m, prefix, 0, NULL);
    }
    return st;
}

static lf_status open_tokenizer(run *r, const char *resume_ck) {
    const lf_train_config *c = r->c;
    char p[LF_PATH * 3];
    if (c->tokenizer[0]) return lf_tokenizer_load(&r->tok, c->tokenizer);
    const char *cands[] = {resume_ck, c->data, c->init[0] ? c->init : NULL};
    for (int i = 0; i < 3; i++) {
        if (!cands[i]) continue;
        snprintf(p, sizeof p, "%s/tokenizer.json", cands[i]);
        if (exists(p)) return lf_tokenizer_load(&r->tok, p);
    }
    snprintf(p, sizeof p, "%s/meta.json", c->data); /* the tokenizer prepare was given */
    json_t *j = json_load_file(p, 0, NULL);
    const char *t = j ? json_string_value(json_object_get(j, "tokenizer")) : NULL;
    lf_status st;
    if (t) st = lf_tokenizer_load(&r->tok, t);
    else {
        lf_set_error("no tokenizer: set 'tokenizer', or prepare the data with a tokenizer.json");
        st = LF_ERR_NOTFOUND;
    }
    json_decref(j);
    return st;
}

/* mean validation loss over up to eval_batches sequential batches from the start of the split */
static float evaluate(run *r) {
    if (!r->val) return NAN;
    const lf_train_config *c = r->c;
    size_t windows = (lf_shard_num_tokens(r->val) - 1) / (size_t)c->context;
    int B = c->batch_size, batches = c->eval_batches;
    if ((size_t)B * batches > windows) batches = (int)(windows / (size_t)B);
    if (batches == 0) {
        B = (int)windows;
        batches = 1;
    }
    lf_loader *l;
    if (lf_loader_init(&l, r->val, B, c->context, 0, 1)) return NAN;
    int32_t *x = malloc(sizeof *x * (size_t)B * c->context), *y = malloc(sizeof *y * (size_t)B * c->context);
    double sum = 0;
    size_t cnt = 0;
    lf_model_set_training(r->m, 0, 0);
    for (int b = 0; b < batches && x && y; b++) {
        float loss;
        lf_loader_next(l, x, y);
        if (lf_model_forward(r->m, x, y, B, c->context, &loss)) break;
        sum += (double)loss * lf_model_counted(r->m);
        cnt += (size_t)lf_model_counted(r->m);
    }
    free(x);
    free(y);
    lf_loader_free(l);
    return cnt ? (float)(sum / cnt) : NAN;
}

static void record_eval(run *r, float vl) {
    r->last_val = vl;
    json_t *ev = json_object();
    json_object_set_new(ev, "event", json_string("eval"));
    json_object_set_new(ev, "step", json_integer(r->step));
    json_object_set_new(ev, "val_loss", json_real(vl));
    json_object_set_new(ev, "val_perplexity", json_real(exp(vl)));
    json_object_set_new(ev, "best_val_loss", isfinite(r->best_val) ? json_real(r->best_val) : json_null());
    emit(r, ev, 1);
    if (r->tb) {
        lf_tb_scalar(r->tb, "val/loss", r->step, vl);
        lf_tb_scalar(r->tb, "val/perplexity", r->step, expf(vl));
        lf_tb_flush(r->tb);
    }
}

static const char *reason_name(lf_stop_reason s) {
    static const char *n[] = {"done", "early_stopping", "time_limit", "interrupted", "non_finite"};
    return n[s];
}

lf_status lf_train(const lf_train_config *c, const char *resume, volatile sig_atomic_t *stop, lf_train_result *res) {
    memset(res, 0, sizeof *res);
    res->val_loss_start = res->val_loss_end = res->best_val_loss = NAN;
    lf_status st = lf_train_config_check(c);
    if (st) return st;
    if (c->threads > 0) omp_set_num_threads(c->threads);
    run R = {0}, *r = &R;
    r->c = c;
    r->best_val = INFINITY;
    r->val_start = r->last_val = NAN;
    r->tty = isatty(1);
    r->t_start = lf_now();
    char ck[LF_PATH * 2] = "", p[LF_PATH * 3];
    int32_t *x = NULL, *y = NULL;
    if (resume) st = resolve_checkpoint(resume, ck, sizeof ck);
    if (!st) st = mkdirs(c->run_dir);
    if (!st) st = open_tokenizer(r, resume ? ck : NULL);
    if (!st) st = open_model(r, resume ? ck : NULL);
    if (!st) {
        lf_adamw_config oc;
        lf_adamw_defaults(&oc);
        oc.beta1 = c->beta1;
        oc.beta2 = c->beta2;
        oc.eps = c->adam_eps;
        oc.weight_decay = c->weight_decay;
        oc.grad_clip = c->grad_clip;
        st = lf_optim_init(&r->opt, r->m, &oc);
    }
    uint64_t fp = r->tok ? lf_tokenizer_fingerprint(r->tok) : 0;
    if (!st) {
        snprintf(p, sizeof p, "%s/train.bin", c->data);
        st = lf_shard_open(&r->train, p, fp);
    }
    if (!st) {
        snprintf(p, sizeof p, "%s/val.bin", c->data);
        if (exists(p)) st = lf_shard_open(&r->val, p, fp);
        if (!st && r->val && lf_shard_num_tokens(r->val) < (size_t)c->context + 1) { /* too small to evaluate */
            lf_shard_close(r->val);
            r->val = NULL;
        }
    }
    if (!st) st = lf_loader_init(&r->loader, r->train, c->batch_size, c->context, (uint64_t)c->seed, 0);
    if (!st && resume) st = restore_state(r, ck);
    if (!st && resume) st = trim_metrics(c->run_dir, r->step);
    if (!st) {
        lf_sched_kind k;
        lf_schedule_parse(c->schedule, &k);
        r->sched = (lf_schedule){k, c->lr, c->min_lr, c->warmup_steps, c->max_steps};
        snprintf(p, sizeof p, "%s/metrics.jsonl", c->run_dir);
        r->metrics = fopen(p, "a");
        if (!r->metrics) {
            lf_set_error("%s: cannot open (%s)", p, strerror(errno));
            st = LF_ERR_IO;
        }
    }
    if (!st && c->tensorboard[0]) st = lf_tb_open(&r->tb, c->tensorboard);
    if (!st) {
        char *cj = lf_train_config_json(c);
        snprintf(p, sizeof p, "%s/train_config.json", c->run_dir);
        st = cj ? lf_write_file_atomic(p, cj, strlen(cj)) : LF_ERR_NOMEM;
        free(cj);
    }
    size_t BT = (size_t)c->batch_size * c->context;
    if (!st) {
        x = malloc(sizeof *x * BT);
        y = malloc(sizeof *y * BT);
        if (!x || !y) st = LF_ERR_NOMEM;
    }
    if (st) goto out;

    res->params = lf_model_num_scalars(r->m);
    res->start_step = r->step;
    {
        json_t *ev = json_object();
        json_object_set_new(ev, "event", json_string(resume ? "resume" : "start"));
        json_object_set_new(ev, "step", json_integer(r->step));
        json_object_set_new(ev, "params", json_integer((json_int_t)res->params));
        json_object_set_new(ev, "train_tokens", json_integer((json_int_t)lf_shard_num_tokens(r->train)));
        if (resume) json_object_set_new(ev, "checkpoint", json_string(ck));
        emit(r, ev, 1);
    }
    say(r, "%s %s: %.2fM parameters, %zu training tokens, batch %d x %d x %d, %d steps%s%s\n",
        resume ? "resuming" : "training", c->run_dir, res->params / 1e6, lf_shard_num_tokens(r->train), c->batch_size,
        c->context, c->grad_accum, c->max_steps, resume ? " from " : "", resume ? ck : "");
    if (!resume && r->val) {
        float vl = evaluate(r);
        r->val_start = vl;
        say(r, "step %d: validation loss %.4f, perplexity %.2f\n", r->step, vl, exp(vl));
        record_eval(r, vl);
    }
    res->val_loss_start = r->val_start;

    lf_stop_reason reason = LF_STOP_DONE;
    int steps_here = 0, last_eval_step = resume ? -1 : 0, last_ck_step = resume ? r->step : -1;
    double t_loop = lf_now(), t_train = 0; /* t_train: time in steps only, not evaluation or checkpoints */
    float loss_ema = NAN;
    while (r->step < c->max_steps) {
        double t_step = lf_now();
        float lr = lf_schedule_lr(&r->sched, r->step), loss = 0.0f, norm = 0.0f;
        int finite = 1;
        lf_model_zero_grad(r->m);
        for (int a = 0; a < c->grad_accum && !st; a++) {
            float l;
            lf_loader_next(r->loader, x, y);
            lf_model_set_training(r->m, 1, lf_hash64((uint64_t)c->seed, (uint64_t)r->step, (uint64_t)a));
            st = lf_model_forward(r->m, x, y, c->batch_size, c->context, &l);
            if (!st) st = lf_model_backward(r->m, 1.0f / c->grad_accum);
            finite &= isfinite(l);
            loss += l / c->grad_accum;
        }
        if (st) break;
        if (finite && lf_optim_step(r->opt, lr, &norm) != LF_OK) finite = 0; /* non-finite gradient */
        r->step++;
        steps_here++;
        r->tokens_seen += BT * c->grad_accum;
        t_train += lf_now() - t_step;
        if (!finite) {
            r->bad++;
            r->skipped++;
            json_t *ev = json_object();
            json_object_set_new(ev, "event", json_string("skipped_step"));
            json_object_set_new(ev, "step", json_integer(r->step));
            json_object_set_new(ev, "in_a_row", json_integer(r->bad));
            emit(r, ev, 1);
            if (r->bad >= c->max_bad_steps) {
                reason = LF_STOP_NAN;
                break;
            }
        } else {
            r->bad = 0;
            if (steps_here == 1) res->first_loss = loss;
            res->last_loss = loss;
            loss_ema = isfinite(loss_ema) ? 0.9f * loss_ema + 0.1f * loss : loss;
        }
        double el = lf_now() - t_loop, tps = (double)steps_here * BT * c->grad_accum / (t_train > 0 ? t_train : 1e-9);
        if (r->step % c->log_every == 0 || r->step == c->max_steps) {
            json_t *ev = json_object();
            json_object_set_new(ev, "event", json_string("train"));
            json_object_set_new(ev, "step", json_integer(r->step));
            json_object_set_new(ev, "loss", json_real(loss));
            json_object_set_new(ev, "lr", json_real(lr));
            json_object_set_new(ev, "grad_norm", json_real(norm));
            json_object_set_new(ev, "tokens_per_s", json_real(tps));
            json_object_set_new(ev, "elapsed_s", json_real(r->elapsed_before + lf_now() - r->t_start));
            emit(r, ev, 1);
            if (r->tb) {
                lf_tb_scalar(r->tb, "train/loss", r->step, loss);
                lf_tb_scalar(r->tb, "train/lr", r->step, lr);
                lf_tb_scalar(r->tb, "train/grad_norm", r->step, norm);
                lf_tb_scalar(r->tb, "train/tokens_per_s", r->step, (float)tps);
            }
            if (!r->tty) say(r, "step %d/%d  loss %.4f  lr %.2e  grad_norm %.3f  %.0f tok/s\n", r->step, c->max_steps, loss, lr, norm, tps);
        }
        if (r->tty && !c->quiet && !c->json) {
            double eta = (c->max_steps - r->step) * (el / steps_here);
            fprintf(stdout, "\r\033[Kstep %d/%d  loss %.4f  lr %.2e  %.0f tok/s  ETA %dm%02ds", r->step, c->max_steps,
                    loss_ema, lr, tps, (int)eta / 60, (int)eta % 60);
            fflush(stdout);
        }
        int do_eval = r->val && c->eval_every > 0 && r->step % c->eval_every == 0;
        if (do_eval) {
            float vl = evaluate(r);
            last_eval_step = r->step;
            int improved = vl < r->best_val - c->min_delta;
            if (improved) {
                r->best_val = vl;
                r->best_step = r->step;
                r->evals_since_best = 0;
                st = save_best(r);
                if (st) break;
            } else {
                r->evals_since_best++;
            }
            say(r, "step %d: validation loss %.4f, perplexity %.2f%s\n", r->step, vl, exp(vl), improved ? " (best so far, saved to best/)" : "");
            record_eval(r, vl);
            if (c->patience > 0 && r->evals_since_best >= c->patience) {
                reason = LF_STOP_EARLY;
                say(r, "early stopping: no improvement of at least %g in %d evaluations (best %.4f at step %d)\n",
                    c->min_delta, c->patience, r->best_val, r->best_step);
                break;
            }
        }
        if (c->checkpoint_every > 0 && r->step % c->checkpoint_every == 0 && r->step < c->max_steps) {
            st = save_checkpoint(r, res->last_checkpoint, sizeof res->last_checkpoint);
            if (st) break;
            last_ck_step = r->step;
        }
        if (stop && *stop) {
            reason = LF_STOP_SIGNAL;
            break;
        }
        if ((c->stop_after_steps > 0 && steps_here >= c->stop_after_steps) ||
            (c->max_minutes > 0 && lf_now() - r->t_start >= 60.0 * c->max_minutes)) {
            reason = LF_STOP_TIME;
            break;
        }
    }
    if (r->tty && !c->quiet && !c->json) fprintf(stdout, "\r\033[K");
    /* a finished run gets a final evaluation; a paused or interrupted one does not, so that its
     * early-stopping state stays what an uninterrupted run would have */
    int finished = reason == LF_STOP_DONE || reason == LF_STOP_EARLY || reason == LF_STOP_NAN;
    if (!st && r->val && last_eval_step != r->step && finished) {
        float vl = evaluate(r);
        if (vl < r->best_val - c->min_delta) {
            r->best_val = vl;
            r->best_step = r->step;
            r->evals_since_best = 0;
            st = save_best(r);
        }
        say(r, "step %d: validation loss %.4f, perplexity %.2f\n", r->step, vl, exp(vl));
        record_eval(r, vl);
        res->val_loss_end = vl;
    } else if (!st) {
        res->val_loss_end = r->last_val; /* NAN when nothing was evaluated in this invocation */
    }
    if (!st && last_ck_step != r->step) st = save_checkpoint(r, res->last_checkpoint, sizeof res->last_checkpoint);
    else if (!st) snprintf(res->last_checkpoint, sizeof res->last_checkpoint, "%s/checkpoints/step-%08d", c->run_dir, r->step);
    if (!st && !r->val) st = save_best(r); /* without validation data the last weights are the best we know */
    res->steps = r->step;
    res->skipped_steps = r->skipped;
    res->reason = reason;
    res->best_val_loss = isfinite(r->best_val) ? r->best_val : NAN;
    res->best_step = r->best_step;
    res->seconds = lf_now() - t_loop;
    res->tokens_per_s = steps_here ? (double)steps_here * BT * c->grad_accum / (t_train > 0 ? t_train : 1e-9) : 0;
    snprintf(res->best_dir, sizeof res->best_dir, "%s/best", c->run_dir);
    if (!st) {
        json_t *ev = json_object();
        json_object_set_new(ev, "event", json_string("stop"));
        json_object_set_new(ev, "step", json_integer(r->step));
        json_object_set_new(ev, "reason", json_string(reason_name(reason)));
        json_object_set_new(ev, "checkpoint", json_string(res->last_checkpoint));
        emit(r, ev, 1);
    }
    if (!st && reason == LF_STOP_NAN) {
        lf_set_error("stopped after %d non-finite steps in a row at step %d (updates were skipped; the checkpoint %s "
                     "holds the last finite weights): lower lr or enable grad_clip", r->bad, r->step, res->last_checkpoint);
        st = LF_ERR_ARG;
    }
out:
    free(x);
    free(y);
    if (r->metrics) fclose(r->metrics);
    lf_tb_close(r->tb);
    lf_loader_free(r->loader);
    lf_shard_close(r->train);
    lf_shard_close(r->val);
    lf_optim_free(r->opt);
    lf_model_free(r->m);
    lf_tokenizer_free(r->tok);
    return st;
}
