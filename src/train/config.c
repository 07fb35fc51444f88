/* The training configuration: one table of keys (name, type, default, help) drives defaults,
 * JSON files, --key=value overrides, validation hints and 'lmforge config show'. */
#include "lmforge/train.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { K_INT, K_FLOAT, K_BOOL, K_STR } ktype;
typedef struct {
    const char *name;
    ktype type;
    size_t off, size;
    const char *def;
    const char *help;
} key_def;

#define I(n, d, h) {#n, K_INT, offsetof(lf_train_config, n), 0, d, h}
#define F(n, d, h) {#n, K_FLOAT, offsetof(lf_train_config, n), 0, d, h}
#define B(n, d, h) {#n, K_BOOL, offsetof(lf_train_config, n), 0, d, h}
#define S(n, d, h) {#n, K_STR, offsetof(lf_train_config, n), sizeof(((lf_train_config *)0)->n), d, h}
static const key_def keys[] = {
    S(run_dir, "runs/train", "folder for checkpoints, best/, metrics.jsonl"),
    S(data, "", "folder made by 'lmforge prepare' (train.bin, val.bin, meta.json)"),
    S(tokenizer, "", "tokenizer (default: the data's meta.json, or the init model's tokenizer.json)"),
    S(init, "", "start from this model (Hugging Face folder or llama2.c .bin); empty = from scratch"),
    S(tensorboard, "", "also write TensorBoard event files into this folder"),
    S(arch, "llama", "from scratch: llama or gpt2"),
    I(d_model, "256", "from scratch: width"),
    I(n_layer, "4", "from scratch: blocks"),
    I(n_head, "4", "from scratch: attention heads"),
    I(n_kv_head, "2", "from scratch: key/value heads (llama; divides n_head)"),
    I(d_ff, "688", "from scratch: MLP width"),
    I(context, "128", "sequence length of training windows (and of a new model)"),
    B(tie_embeddings, "true", "from scratch: share the embedding and output matrices"),
    F(rope_theta, "10000", "from scratch (llama): RoPE base"),
    F(norm_eps, "1e-5", "from scratch: norm epsilon"),
    F(dropout, "-1", "set all three dropout rates (negative: keep the model's)"),
    F(dropout_embd, "-1", "dropout on embeddings (negative: keep the model's)"),
    F(dropout_attn, "-1", "dropout on attention probabilities (negative: keep the model's)"),
    F(dropout_resid, "-1", "dropout on residual branches (negative: keep the model's)"),
    F(weight_decay, "0.1", "AdamW decoupled weight decay (matrices only)"),
    F(label_smoothing, "0", "cross-entropy label smoothing"),
    F(grad_clip, "1.0", "global gradient-norm clip (0 = off)"),
    B(freeze_embeddings, "false", "freeze token/position embeddings (and a tied head)"),
    I(freeze_layers, "0", "freeze the first N blocks"),
    I(batch_size, "16", "sequences per micro-batch"),
    I(grad_accum, "1", "micro-batches per optimizer step"),
    I(max_steps, "1000", "optimizer steps (the LR schedule spans them)"),
    F(max_minutes, "0", "stop (with a checkpoint) after this many minutes; 0 = no limit"),
    F(lr, "3e-3", "peak learning rate"),
    F(min_lr, "3e-4", "final learning rate (linear, cosine)"),
    S(schedule, "cosine", "constant, linear or cosine"),
    I(warmup_steps, "50", "linear warmup steps"),
    F(beta1, "0.9", "AdamW beta1"),
    F(beta2, "0.95", "AdamW beta2"),
    F(adam_eps, "1e-8", "AdamW epsilon"),
    I(eval_every, "100", "evaluate on the validation split every N steps (0 = only at start and end)"),
    I(eval_batches, "20", "validation batches per evaluation"),
    I(patience, "0", "early stopping: evaluations without improvement before stopping (0 = off)"),
    F(min_delta, "0", "early stopping: smallest validation-loss drop that counts as improvement"),
    I(checkpoint_every, "200", "write a checkpoint every N steps (and at the end)"),
    I(keep_checkpoints, "2", "step checkpoints to keep (best/ is kept separately)"),
    I(seed, "1337", "seed for data order, dropout and initialisation"),
    I(threads, "0", "threads (0 = OMP_NUM_THREADS or all cores)"),
    I(max_bad_steps, "5", "stop after this many non-finite steps in a row"),
    I(log_every, "10", "steps between log lines / metrics records"),
    I(stop_after_steps, "0", "stop (with a checkpoint) after this many steps in this invocation"),
    B(quiet, "false", "print only the summary and errors"),
    B(json, "false", "print one JSON object per event on stdout"),
    I(lora_r, "0", "LoRA rank (0 = off): train low-rank adapters on a frozen init model"),
    F(lora_alpha, "16", "LoRA alpha: the update is scaled by alpha/r (alpha/sqrt(r) with lora_rslora)"),
    F(lora_dropout, "0", "dropout on the adapters' input"),
    S(lora_targets, "", "modules to adapt: comma list (q_proj,v_proj / c_attn) or all; empty = PEFT's default"),
    B(lora_rslora, "false", "rsLoRA scaling alpha/sqrt(r)"),
    B(lora_dora, "false", "DoRA: a trained magnitude per output row"),
    S(adapter, "", "continue training this PEFT adapter folder (LoRA settings come from its config)"),
    /* classification: lmforge prepare on {"text","label"} records, then task = classify */
    S(task, "lm", "lm (next-token training) or classify (a classifier from labelled data; needs init)"),
    S(head, "lm", "classify: lm (the label's tokens, predicted by label scoring) or score (a score.weight head)"),
    S(metric, "loss", "classify: what early stopping and best/ follow: loss, accuracy or macro_f1"),
    B(head_only, "false", "classify with head = score: train only score.weight (the model frozen)"),
    S(truncation_side, "", "classify: texts over context keep their start (right; head = score's default, as transformers) or end (left; head = lm's only way: the label must fit)"),
    I(eval_examples, "0", "classify: validation examples per evaluation (0 = all)"),
    I(test_examples, "0", "classify: score the first N examples of the data's test split at every new best (0 = none, -1 = all)"),
    /* distillation (lmforge distill, or these keys in lmforge train): src/tech/distill.c */
    S(teacher, "", "distill from this model (HF folder, GGUF, llama2.c .bin; frozen, forward only; same tokenizer)"),
    F(temperature, "1", "distill: softmax temperature of both models (the logit term is scaled by its square)"),
    F(alpha, "0.5", "distill: weight of the logit term; cross-entropy on the labels gets 1 - alpha"),
    S(loss, "kl", "distill: kl (forward KL), rkl (reverse KL) or jsd (generalized Jensen-Shannon with beta)"),
    F(beta, "0.5", "distill: jsd interpolation (0 = forward KL, 1 = reverse KL, as TRL's GKD)"),
    S(hidden_layers, "", "distill: hidden-state pairs STUDENT:TEACHER,... (layer L = input of block L; n_layer = last)"),
    S(hidden_loss, "cosine", "distill: hidden-state loss, cosine (DistilBERT) or mse (a learned projection when widths differ)"),
    F(hidden_weight, "1", "distill: weight of the hidden-state term (with hidden_layers)"),
    S(student_init, "", "distill: every_k:K starts the student from the teacher's blocks 0, K, 2K, ... (DistilBERT)"),
    S(teacher_cache, "", "distill from this teacher cache (lmforge distill --write-cache) instead of a teacher: forward KL over its top k"),
    I(cache_k, "16", "distill --write-cache: the teacher's top-k log-probabilities kept per position (the rest is one tail bin)"),
    F(on_policy, "0", "distill (GKD's lambda): fraction of batches whose rows the student continues by sampling, scored by the teacher"),
    I(on_policy_prompt, "0", "distill on-policy: tokens of each row kept as the prompt (0 = context/2)"),
    F(sample_temperature, "1", "distill on-policy: the student's sampling temperature (0 = greedy)"),
    B(keep_sparsity, "false", "keep the zeros of init's linear weights zero (fine-tune a pruned model; masks)"),
    S(prune_schedule, "", "gradual pruning: magnitude or wanda (empty = off); cubic from prune_initial to prune_final"),
    F(prune_initial, "0", "gradual pruning: sparsity at prune_start"),
    F(prune_final, "0.5", "gradual pruning: sparsity reached at prune_end"),
    I(prune_start, "0", "gradual pruning: first step that prunes"),
    I(prune_end, "0", "gradual pruning: step the final sparsity is reached (0 = max_steps)"),
    I(prune_every, "50", "gradual pruning: steps between mask updates"),
    /* online augmentation of language-model windows: inputs noised, targets clean */
    F(aug_mask, "0", "lm: replace each input token by aug_mask_id with this probability"),
    F(aug_span, "0", "lm: span corruption: this share of input tokens masked in spans of mean length 3"),
    I(aug_shuffle, "0", "lm: shuffle input tokens within a window of this many places (0/1 = off)"),
    I(aug_mask_id, "0", "lm: the token id that masks (e.g. the tokenizer's unknown or a reserved token)"),
    S(tasks, "", "multi-task: a JSON array of {name, data, kind (lm|completion|classify), prefix, weight, rate, metric}, or auto"),
    S(mix, "proportional", "multi-task mixing: proportional (examples, with mix_cap and mix_temperature) or fixed (task rates)"),
    I(mix_cap, "0", "multi-task: cap on a task's examples when mixing proportionally (T5's K; 0 = none)"),
    F(mix_temperature, "1", "multi-task: rates ~ examples^(1/T) (1 = proportional, large = uniform)"),
    S(task_weighting, "static", "multi-task loss weighting: static (task weights), uncertainty (learned) or pcgrad"),
    S(early_stop_metric, "mean", "multi-task: early stopping and best/ follow mean (weighted task losses) or task:NAME[:loss|ppl|accuracy|macro_f1]"),
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const key_def *find_key(const char *name) {
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].name, name)) return &keys[i];
    return NULL;
}

static void unknown_key(const char *name, const char *where) {
    const char *names[NKEYS];
    for (size_t i = 0; i < NKEYS; i++) names[i] = keys[i].name;
    const char *best = lf_closest_name(name, names, NKEYS);
    if (best) lf_set_error("%s: unknown key '%s' (did you mean '%s'?)", where, name, best);
    else lf_set_error("%s: unknown key '%s' (see 'lmforge train --help' for the keys)", where, name);
}

/* the keys' names, for callers that validate keys of their own next to training keys */
size_t lf_train_config_key_names(const char **names, size_t cap) {
    for (size_t i = 0; i < NKEYS && i < cap; i++) names[i] = keys[i].name;
    return NKEYS;
}

lf_status lf_train_config_set(lf_train_config *c, const char *key, const char *value) {
    const key_def *k = find_key(key);
    if (!k) {
        unknown_key(key, "config");
        return LF_ERR_ARG;
    }
    char *p = (char *)c + k->off, *end;
    errno = 0;
    switch (k->type) {
    case K_INT: {
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < -2147483647L || v > 2147483647L) {
            lf_set_error("config: '%s' needs an integer, got '%s'", key, value);
            return LF_ERR_ARG;
        }
        *(int *)p = (int)v;
        break;
    }
    case K_FLOAT: {
        float v = strtof(value, &end);
        if (errno || end == value || *end || !isfinite(v)) {
            lf_set_error("config: '%s' needs a number, got '%s'", key, value);
            return LF_ERR_ARG;
        }
        *(float *)p = v;
        break;
    }
    case K_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes")) *(int *)p = 1;
        else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no")) *(int *)p = 0;
        else {
            lf_set_error("config: '%s' needs true or false, got '%s'", key, value);
            return LF_ERR_ARG;
        }
        break;
    case K_STR:
        if (strlen(value) >= k->size) {
            lf_set_error("config: '%s' is longer than %zu characters", key, k->size - 1);
            return LF_ERR_ARG;
        }
        strcpy(p, value);
        break;
    }
    return LF_OK;
}

void lf_train_config_defaults(lf_train_config *c) {
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++) LF_ASSERT(lf_train_config_set(c, keys[i].name, keys[i].def) == LF_OK);
}

static lf_status apply_json(lf_train_config *c, json_t *j, const char *what) {
    if (!json_is_object(j)) {
        lf_set_error("%s: the configuration must be a JSON object", what);
        return LF_ERR_FORMAT;
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        const key_def *k = find_key(key);
        if (!k) {
            unknown_key(key, what);
            return LF_ERR_ARG;
        }
        char buf[64];
        const char *val = buf;
        char *dumped = NULL;
        if (!strcmp(key, "tasks") && (json_is_array(v) || json_is_object(v))) { /* the task list, kept as its JSON text */
            dumped = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (!dumped) return LF_ERR_NOMEM;
            lf_status st = lf_train_config_set(c, key, dumped);
            free(dumped);
            if (st) return st;
            continue;
        }
        if (json_is_string(v) && k->type == K_STR) {
            val = json_string_value(v); /* whole: set() refuses what does not fit, nothing is cut */
            if (strlen(val) != json_string_length(v)) {
                lf_set_error("%s: '%s' contains a NUL character", what, key);
                return LF_ERR_ARG;
            }
        } else if (json_is_integer(v) && (k->type == K_INT || k->type == K_FLOAT)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        else if (json_is_real(v) && k->type == K_FLOAT) snprintf(buf, sizeof buf, "%.9g", json_real_value(v));
        else if (json_is_boolean(v) && k->type == K_BOOL) snprintf(buf, sizeof buf, "%s", json_is_true(v) ? "true" : "false");
        else if (json_is_null(v) && k->type == K_STR) buf[0] = 0;
        else {
            static const char *tn[] = {"an integer", "a number", "true or false", "a string"};
            lf_set_error("%s: '%s' must be %s", what, key, tn[k->type]);
            return LF_ERR_ARG;
        }
        lf_status st = lf_train_config_set(c, key, val);
        if (st) {
            char m[1200];
            snprintf(m, sizeof m, "%s: %s", what, lf_last_error());
            lf_set_error("%s", m);
            return st;
        }
    }
    return LF_OK;
}

lf_status lf_train_config_load_file(lf_train_config *c, const char *path) {
    size_t len;
    char *txt = lf_read_file(path, &len); /* refuses FIFOs and devices instead of blocking on them */
    if (!txt) return LF_ERR_IO;
    json_error_t e;
    json_t *j = json_loadb(txt, len, JSON_REJECT_DUPLICATES, &e);
    free(txt);
    if (!j) {
        lf_set_error("%s: %s at line %d (the config is JSON)", path, e.text, e.line);
        return LF_ERR_FORMAT;
    }
    lf_status st = apply_json(c, j, path);
    json_decref(j);
    return st;
}

lf_status lf_train_config_from_json_text(lf_train_config *c, const char *text, const char *what) {
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j) {
        lf_set_error("%s: %s", what, e.text);
        return LF_ERR_FORMAT;
    }
    lf_status st = apply_json(c, j, what);
    json_decref(j);
    return st;
}

lf_status lf_train_config_args(lf_train_config *c, int argc, char **argv, const char **config_file, const char **resume) {
    /* the config file first, so that --key=value overrides it wherever it appears */
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) *config_file = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9)) *config_file = argv[i] + 9;
    }
    if (*config_file) {
        lf_status st = lf_train_config_load_file(c, *config_file);
        if (st) return st;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (!strncmp(a, "--config=", 9)) continue;
        if (!strcmp(a, "--resume") || !strncmp(a, "--resume=", 9)) {
            if (a[8] == '=') *resume = a + 9;
            else if (i + 1 < argc) *resume = argv[++i];
            else {
                lf_set_error("--resume needs a run or checkpoint folder");
                return LF_ERR_ARG;
            }
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            lf_set_error("unexpected argument '%s' (options are --key=value)", a);
            return LF_ERR_ARG;
        }
        char key[64];
        const char *eq = strchr(a, '='), *val;
        size_t kl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (kl >= sizeof key) kl = sizeof key - 1;
        memcpy(key, a + 2, kl);
        key[kl] = 0;
        for (char *p = key; *p; p++)
            if (*p == '-') *p = '_';
        const key_def *k = find_key(key);
        if (eq) val = eq + 1;
        else if (k && k->type == K_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) val = "true";
        else if (i + 1 < argc) val = argv[++i];
        else {
            lf_set_error("option --%s needs a value", key);
            return LF_ERR_ARG;
        }
        lf_status st = lf_train_config_set(c, key, val);
        if (st) return st;
    }
    return LF_OK;
}

char *lf_train_config_json(const lf_train_config *c) {
    json_t *j = json_object();
    for (size_t i = 0; i < NKEYS; i++) {
        const char *p = (const char *)c + keys[i].off;
        switch (keys[i].type) {
        case K_INT: json_object_set_new(j, keys[i].name, json_integer(*(const int *)p)); break;
        case K_FLOAT: {
            char b[32];
            snprintf(b, sizeof b, "%.7g", *(const float *)p); /* shortest text that reads back the same float */
            json_object_set_new(j, keys[i].name, json_real(strtod(b, NULL)));
            break;
        }
        case K_BOOL: json_object_set_new(j, keys[i].name, json_boolean(*(const int *)p)); break;
        case K_STR: json_object_set_new(j, keys[i].name, json_string(p)); break;
        }
    }
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(j);
    return s;
}

void lf_train_config_help(FILE *f) {
    for (size_t i = 0; i < NKEYS; i++) fprintf(f, "  --%-18s %-10s %s\n", keys[i].name, keys[i].def[0] ? keys[i].def : "\"\"", keys[i].help);
}

lf_status lf_train_config_check(const lf_train_config *c) {
#define REQ(cond, ...)                                                                             \
    if (!(cond)) {                                                                                 \
        lf_set_error(__VA_ARGS__);                                                                 \
        return LF_ERR_ARG;                                                                         \
    }
    REQ(c->data[0] || (c->tasks[0] && strcmp(c->tasks, "auto")), "config: 'data' is required (a folder made by 'lmforge prepare')");
    REQ(!strcmp(c->mix, "proportional") || !strcmp(c->mix, "fixed"), "config: mix must be proportional or fixed, got '%s'", c->mix);
    REQ(c->mix_cap >= 0 && c->mix_temperature > 0 && c->mix_temperature <= 1e6, "config: need mix_cap >= 0 and mix_temperature in (0, 1e6]");
    REQ(!strcmp(c->task_weighting, "static") || !strcmp(c->task_weighting, "uncertainty") || !strcmp(c->task_weighting, "pcgrad"),
        "config: task_weighting must be static, uncertainty or pcgrad, got '%s'", c->task_weighting);
    REQ(!c->tasks[0] || (!strcmp(c->task, "lm") && !c->teacher[0] && !c->teacher_cache[0] && c->label_smoothing == 0 &&
                         c->aug_mask == 0 && c->aug_span == 0 && c->aug_shuffle <= 1),
        "config: tasks (multi-task) trains with task = lm (classification tasks are tasks of kind classify), without "
        "distillation, label_smoothing or online augmentation");
    REQ(!strcmp(c->arch, "llama") || !strcmp(c->arch, "gpt2"), "config: arch must be llama or gpt2, got '%s'", c->arch);
    REQ(!strcmp(c->schedule, "constant") || !strcmp(c->schedule, "linear") || !strcmp(c->schedule, "cosine"),
        "config: schedule must be constant, linear or cosine, got '%s'", c->schedule);
    REQ(c->batch_size > 0 && c->grad_accum > 0 && c->max_steps > 0 && c->context > 1, "config: batch_size, grad_accum, max_steps must be > 0 and context > 1");
    REQ(c->lr > 0 && c->min_lr >= 0 && c->min_lr <= c->lr, "config: need lr > 0 and 0 <= min_lr <= lr");
    REQ(c->warmup_steps >= 0 && c->eval_every >= 0 && c->eval_batches > 0 && c->patience >= 0 && c->checkpoint_every >= 0,
        "config: warmup_steps, eval_every, patience, checkpoint_every must be >= 0 and eval_batches > 0");
    REQ(c->dropout < 1 && c->dropout_embd < 1 && c->dropout_attn < 1 && c->dropout_resid < 1, "config: dropout rates must be < 1");
    REQ(c->label_smoothing >= 0 && c->label_smoothing < 1, "config: label_smoothing must be in [0, 1)");
    REQ(c->aug_mask >= 0 && c->aug_mask <= 1, "config: aug_mask must be in [0, 1]");
    REQ(c->aug_span >= 0 && c->aug_span < 1, "config: aug_span must be in [0, 1)");
    REQ(c->aug_shuffle >= 0 && c->aug_shuffle <= 1000, "config: aug_shuffle must be in [0, 1000]");
    REQ(c->aug_mask_id >= 0, "config: aug_mask_id must be >= 0");
    REQ(c->weight_decay >= 0 && c->grad_clip >= 0 && c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1 && c->adam_eps > 0,
        "config: need weight_decay, grad_clip >= 0, betas in [0, 1), adam_eps > 0");
    REQ(c->keep_checkpoints >= 1 && c->max_bad_steps >= 1 && c->log_every >= 1, "config: keep_checkpoints, max_bad_steps, log_every must be >= 1");
    REQ(c->lora_r >= 0 && c->lora_r <= 65536 && c->lora_dropout >= 0 && c->lora_dropout < 1,
        "config: lora_r must be in 0..65536 and lora_dropout in [0, 1)");
    REQ(!(c->lora_r > 0 || c->adapter[0]) || c->init[0], "config: LoRA (lora_r or adapter) needs init, the pretrained base model");
    REQ(c->freeze_layers >= 0 && c->max_minutes >= 0 && c->stop_after_steps >= 0, "config: freeze_layers, max_minutes, stop_after_steps must be >= 0");
    REQ(!c->prune_schedule[0] || !strcmp(c->prune_schedule, "magnitude") || !strcmp(c->prune_schedule, "wanda"),
        "config: prune_schedule must be magnitude or wanda (or empty), got '%s'", c->prune_schedule);
    REQ(!c->prune_schedule[0] || (c->prune_initial >= 0 && c->prune_initial <= c->prune_final && c->prune_final < 1 &&
                                   c->prune_start >= 0 && c->prune_every >= 1 &&
                                   (c->prune_end ? c->prune_end : c->max_steps) > c->prune_start),
        "config: gradual pruning needs 0 <= prune_initial <= prune_final < 1, prune_every >= 1 and prune_start < prune_end");
    REQ(c->threads >= 0 && c->threads <= 1024, "config: threads %d out of range (0 = all cores, at most 1024)", c->threads);
    REQ(c->context <= (1 << 20) && c->batch_size <= (1 << 20) && (size_t)c->batch_size * (size_t)c->context <= ((size_t)1 << 31),
        "config: batch_size x context = %zu tokens is out of range", (size_t)c->batch_size * (size_t)c->context);
    REQ(c->max_steps <= (1 << 30) && c->eval_batches <= (1 << 24) && c->grad_accum <= (1 << 20), "config: max_steps, eval_batches or grad_accum out of range");
    REQ(c->min_delta >= 0, "config: min_delta must be >= 0");
    REQ(!strcmp(c->task, "lm") || !strcmp(c->task, "classify"), "config: task must be lm or classify, got '%s'", c->task);
    REQ(!strcmp(c->head, "lm") || !strcmp(c->head, "score"), "config: head must be lm or score, got '%s'", c->head);
    REQ(!strcmp(c->metric, "loss") || !strcmp(c->metric, "accuracy") || !strcmp(c->metric, "macro_f1"),
        "config: metric must be loss, accuracy or macro_f1, got '%s'", c->metric);
    REQ(!strcmp(c->task, "classify") || (!strcmp(c->head, "lm") && !strcmp(c->metric, "loss") && !c->head_only),
        "config: head, metric and head_only are for task = classify");
    REQ(!c->head_only || !strcmp(c->head, "score"), "config: head_only needs head = score");
    REQ(!c->truncation_side[0] || !strcmp(c->truncation_side, "left") || !strcmp(c->truncation_side, "right"),
        "config: truncation_side must be right (keep the start) or left (keep the end), got '%s'", c->truncation_side);
    REQ(strcmp(c->truncation_side, "right") || !strcmp(c->head, "score"),
        "config: truncation_side = right needs head = score (label scoring keeps the text's end, where the label follows)");
    REQ(c->eval_examples >= 0, "config: eval_examples must be >= 0");
    REQ(c->test_examples >= -1, "config: test_examples must be >= -1 (-1 = all)");
    REQ(!strcmp(c->loss, "kl") || !strcmp(c->loss, "rkl") || !strcmp(c->loss, "jsd"), "config: loss must be kl, rkl or jsd, got '%s'", c->loss);
    REQ(!strcmp(c->hidden_loss, "mse") || !strcmp(c->hidden_loss, "cosine"), "config: hidden_loss must be mse or cosine, got '%s'", c->hidden_loss);
    REQ(c->temperature > 0 && c->temperature <= 1000 && c->alpha >= 0 && c->alpha <= 1 && c->beta >= 0 && c->beta <= 1 && c->hidden_weight >= 0,
        "config: need temperature in (0, 1000], alpha and beta in [0, 1], hidden_weight >= 0");
    if (c->student_init[0]) {
        char *end;
        long k = strncmp(c->student_init, "every_k:", 8) ? 0 : strtol(c->student_init + 8, &end, 10);
        REQ(k >= 1 && k <= 4096 && !*end, "config: student_init must be every_k:K (K >= 1), got '%s'", c->student_init);
        REQ(c->teacher[0] && !c->init[0], "config: student_init builds the student from the teacher: it needs teacher and no init");
    }
    REQ(!(c->teacher[0] || c->teacher_cache[0]) || !strcmp(c->task, "lm") || (c->teacher[0] &&
        !c->hidden_layers[0] && !c->student_init[0] && c->on_policy == 0),
        "config: task = classify distils from a teacher (head = lm: its distribution over the label tokens; head = score: "
        "its score head's): no teacher_cache, hidden_layers, student_init or on_policy");
    REQ(!(c->teacher[0] && c->teacher_cache[0]), "config: give teacher or teacher_cache, not both");
    REQ(!c->teacher_cache[0] || (!strcmp(c->loss, "kl") && !c->hidden_layers[0] && !c->student_init[0]),
        "config: a teacher cache holds top-k log-probabilities only: loss kl, no hidden_layers or student_init (those need the teacher)");
    REQ(c->cache_k >= 1 && c->cache_k <= 1024, "config: cache_k must be in 1..1024");
    REQ(c->on_policy >= 0 && c->on_policy <= 1 && c->sample_temperature >= 0 && c->on_policy_prompt >= 0 && c->on_policy_prompt < c->context,
        "config: need on_policy in [0, 1], sample_temperature >= 0 and 0 <= on_policy_prompt < context");
    REQ(c->on_policy == 0 || c->teacher[0], "config: on_policy needs a teacher (the student's samples are not in a teacher cache)");
#undef REQ
    return LF_OK;
}
