/* LoRA, rsLoRA and DoRA as a technique over the engine's adapter seam, in Hugging Face PEFT's
 * conventions (peft 0.12):
 *   - targets: a module matches a name when its path equals it or ends with "." + name;
 *     "all-linear" is every linear but the output head (PEFT expands it to the set of last name
 *     components, which is what adapter_config.json then records);
 *   - init: A kaiming-uniform with a = sqrt(5) (bound 1/sqrt(fan_in)), B zeros, DoRA magnitude
 *     the per-output-row norm of W (PEFT's "column" norm of its (out,in) weight);
 *   - scaling alpha/r, or alpha/sqrt(r) with rsLoRA;
 *   - files: adapter_model.safetensors keys "base_model.model.<module>.lora_A.weight",
 *     ".lora_B.weight", ".lora_magnitude_vector" (the adapter name removed, as PEFT saves).
 * GPT-2's Conv1D weights are stored (out,in) here like every linear, so A (r,in) and B (out,r)
 * are PEFT's tensors as they are; fan_in_fan_out only describes the base weight's file layout. */
#include "lmforge/lora.h"
#include "lmforge/train.h"
#include "lmforge/ckpt.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PREFIX "base_model.model."

typedef struct {
    lf_param *w, *A, *B, *mag;
    char module[128];
} site;

struct lf_lora {
    lf_lora_opts o;
    char name[32];
    float scale;     /* PEFT's scaling (alpha/r or alpha/sqrt r) */
    float mult;      /* the user's multiplier at load */
    int n, cap;
    site *s;
    int gpt2;
    int targets_regex; /* loaded from a config whose target_modules was a string (PEFT: a regex): saved back as one */
};

void lf_lora_opts_defaults(lf_lora_opts *o) {
    memset(o, 0, sizeof *o);
    o->r = 8;
    o->alpha = 8.0f;
    o->seed = 0;
}

void lf_lora_free(lf_lora *l) {
    if (!l) return;
    free(l->s);
    free(l);
}
int lf_lora_num_sites(const lf_lora *l) { return l->n; }
float lf_lora_scale(const lf_lora *l) { return l->scale * l->mult; }
const lf_lora_opts *lf_lora_get_opts(const lf_lora *l) { return &l->o; }
size_t lf_lora_num_params(const lf_lora *l) {
    size_t n = 0;
    for (int i = 0; i < l->n; i++) n += l->s[i].A->numel + l->s[i].B->numel + (l->s[i].mag ? l->s[i].mag->numel : 0);
    return n;
}

static float peft_scaling(int r, float alpha, int rslora) { return rslora ? alpha / sqrtf((float)r) : alpha / (float)r; }

/* an architecture linear that PEFT's LoRA can target: 2-D weight, not an embedding, not the head */
static int is_target_linear(const lf_param *p) {
    size_t n = strlen(p->name);
    return p->kind == LF_KIND_WEIGHT && p->ndim == 2 && !(p->flags & LF_PARAM_EXTRA) && n > 7 &&
           !strcmp(p->name + n - 7, ".weight") && strcmp(p->name, "lm_head.weight") != 0;
}

static void module_of(const lf_param *p, char *out, size_t n) {
    snprintf(out, n, "%.*s", (int)(strlen(p->name) - 7), p->name);
}

/* PEFT's list matching: the module path equals the name or ends with "." + name */
static int name_matches(const char *module, const char *pat, size_t plen) {
    size_t ml = strlen(module);
    if (plen == 0 || plen > ml) return 0;
    if (memcmp(module + ml - plen, pat, plen) != 0) return 0;
    return ml == plen || module[ml - plen - 1] == '.';
}

static int is_all(const char *t) { return !strcmp(t, "all") || !strcmp(t, "all-linear"); }

static int targeted(const char *targets, const char *module) {
    if (is_all(targets)) return 1;
    for (const char *p = targets; *p;) {
        size_t len = strcspn(p, ",");
        const char *q = p;
        while (len && *q == ' ') q++, len--;
        while (len && q[len - 1] == ' ') len--;
        if (name_matches(module, q, len)) return 1;
        p += strcspn(p, ",");
        if (*p) p++;
    }
    return 0;
}

static lf_status add_site(lf_lora *l, lf_model *m, lf_param *w, int r, int trainable) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        site *ns = realloc(l->s, (size_t)cap * sizeof *ns);
        if (!ns) return LF_ERR_NOMEM;
        l->s = ns;
        l->cap = cap;
    }
    site *s = &l->s[l->n];
    memset(s, 0, sizeof *s);
    s->w = w;
    module_of(w, s->module, sizeof s->module);
    if (!w->data && l->o.use_dora) { /* DoRA's norms read the weight; plain LoRA only its product (QLoRA) */
        lf_set_error("lora: '%s' is stored as %s; DoRA needs a float32 weight (plain LoRA works on it)", w->name,
                     w->qops ? w->qops->name : "another type");
        return LF_ERR_ARG;
    }
    char nm[256];
    unsigned fl = trainable ? LF_PARAM_TRAINABLE : 0, fm = trainable ? LF_PARAM_TRAINABLE | LF_PARAM_DECAY : 0;
    lf_status st; /* A and B are matrices in AdamW's decay group (as HF Trainer puts them); the magnitude is not */
    snprintf(nm, sizeof nm, "%s.lora_A.%s.weight", s->module, l->name);
    st = lf_model_add_param(m, nm, r, w->shape[1], LF_KIND_OTHER, fm, &s->A);
    snprintf(nm, sizeof nm, "%s.lora_B.%s.weight", s->module, l->name);
    if (!st) st = lf_model_add_param(m, nm, w->shape[0], r, LF_KIND_OTHER, fm, &s->B);
    if (!st && l->o.use_dora) {
        snprintf(nm, sizeof nm, "%s.lora_magnitude_vector.%s.weight", s->module, l->name);
        st = lf_model_add_param(m, nm, w->shape[0], 0, LF_KIND_OTHER, fl, &s->mag);
    }
    if (st) { /* a half-made site leaves nothing behind */
        if (s->B) lf_model_remove_param(m, s->B);
        if (s->A) lf_model_remove_param(m, s->A);
        return st;
    }
    l->n++;
    return LF_OK;
}

/* attach every site's adapter (after A/B/magnitude hold their values) */
static lf_status connect(lf_lora *l, lf_model *m) {
    for (int i = 0; i < l->n; i++) {
        site *s = &l->s[i];
        lf_adapter *ad;
        lf_status st = lf_model_add_adapter(m, s->w, s->A, s->B, l->scale * l->mult, l->o.dropout, &ad);
        if (!st && s->mag) st = lf_model_set_adapter_magnitude(m, ad, s->mag);
        if (st) return st;
    }
    return LF_OK;
}

/* freeze everything that is not an adapter tensor; adapter tensors keep their flag */
static lf_status freeze_base(lf_model *m) {
    int n = lf_model_num_params(m), k = 0;
    lf_param **keep = malloc(sizeof *keep * (size_t)n);
    if (!keep) return LF_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        lf_param *p = lf_model_param(m, i);
        if ((p->flags & LF_PARAM_ADAPTER) && (p->flags & LF_PARAM_TRAINABLE)) keep[k++] = p;
    }
    lf_status st = lf_model_set_trainable(m, "", 0, NULL);
    for (int i = 0; i < k && !st; i++) st = lf_model_set_trainable(m, keep[i]->name, 1, NULL);
    free(keep);
    return st;
}

static lf_status check_opts(const lf_lora_opts *o) {
    if (o->r < 1 || o->r > 65536) {
        lf_set_error("lora: r must be in 1..65536 (got %d)", o->r);
        return LF_ERR_ARG;
    }
    if (!isfinite(o->alpha) || !isfinite(o->dropout) || !(o->dropout >= 0 && o->dropout < 1)) {
        lf_set_error("lora: alpha must be finite and dropout in [0, 1) (got alpha %g, dropout %g)", o->alpha, o->dropout);
        return LF_ERR_ARG;
    }
    return LF_OK;
}

static lf_lora *new_handle(const lf_model *m, const lf_lora_opts *o, const char *name) {
    lf_lora *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->o = *o;
    snprintf(l->name, sizeof l->name, "%s", name && name[0] ? name : "default");
    l->scale = peft_scaling(o->r, o->alpha, o->use_rslora);
    l->mult = 1.0f;
    l->gpt2 = lf_model_config(m)->arch == LF_ARCH_GPT2;
    if (!l->o.targets[0]) snprintf(l->o.targets, sizeof l->o.targets, "%s", l->gpt2 ? "c_attn" : "q_proj,v_proj");
    return l;
}

/* row norms of W + s·B·A (out rows): DoRA's magnitude init and its merge */
static void row_norms(const lf_param *w, const lf_param *A, const lf_param *B, float s, float *norm, float *row_out,
                      int write_back, const float *mag) {
    int OC = (int)w->shape[0], IC = (int)w->shape[1], r = (int)A->shape[0];
    for (int o = 0; o < OC; o++) {
        float *row = row_out;
        for (int i = 0; i < IC; i++) row[i] = w->data[(size_t)o * IC + i];
        for (int k = 0; k < r; k++) {
            float b = s * B->data[(size_t)o * r + k];
            if (b == 0.0f) continue;
            const float *a = A->data + (size_t)k * IC;
            for (int i = 0; i < IC; i++) row[i] += b * a[i];
        }
        double ss = 0;
        for (int i = 0; i < IC; i++) ss += (double)row[i] * row[i];
        float nrm = (float)sqrt(ss);
        if (norm) norm[o] = nrm;
        if (write_back) {
            float g = mag ? mag[o] / nrm : 1.0f;
            for (int i = 0; i < IC; i++) w->data[(size_t)o * IC + i] = mag ? row[i] * g : row[i];
        }
    }
}

lf_status lf_lora_attach(lf_lora **out, lf_model *m, const lf_lora_opts *o, const char *name) {
    *out = NULL;
    lf_status st = check_opts(o);
    if (st) return st;
    lf_lora *l = new_handle(m, o, name);
    if (!l) return LF_ERR_NOMEM;
    int nbase = lf_model_num_params(m);
    for (int i = 0; i < nbase && !st; i++) {
        lf_param *p = lf_model_param(m, i);
        if (!is_target_linear(p)) continue;
        char mod[128];
        module_of(p, mod, sizeof mod);
        if (targeted(l->o.targets, mod)) st = add_site(l, m, p, o->r, 1);
    }
    if (!st && l->n == 0) {
        lf_set_error("lora: no linear layer matches targets '%s' (module names look like '%s'; or use 'all')",
                     l->o.targets, l->gpt2 ? "transformer.h.0.attn.c_attn" : "model.layers.0.self_attn.q_proj");
        st = LF_ERR_NOTFOUND;
    }
    size_t wmax = 1;
    for (int i = 0; i < l->n; i++)
        if ((size_t)l->s[i].w->shape[1] > wmax) wmax = (size_t)l->s[i].w->shape[1];
    float *row = st ? NULL : malloc(sizeof(float) * wmax);
    if (!st && !row) st = LF_ERR_NOMEM;
    for (int i = 0; i < l->n && !st; i++) {
        site *s = &l->s[i];
        int IC = (int)s->A->shape[1];
        float bound = 1.0f / sqrtf((float)IC); /* kaiming_uniform_(a=sqrt(5)): gain sqrt(1/3), bound sqrt(3)·gain/sqrt(fan_in) */
        uint64_t stream = lf_fnv1a(s->A->name, strlen(s->A->name));
        for (size_t j = 0; j < s->A->numel; j++)
            s->A->data[j] = bound * (2.0f * lf_u01(lf_hash64(o->seed, stream, j)) - 1.0f);
        /* B stays zero (add_param zero-fills) */
        if (s->mag) row_norms(s->w, s->A, s->B, l->scale, s->mag->data, row, 0, NULL);
    }
    free(row);
    if (!st) st = connect(l, m);
    if (!st) st = freeze_base(m);
    if (st) {
        for (int i = l->n - 1; i >= 0; i--) { /* leave the model as it was */
            if (l->s[i].mag) lf_model_remove_param(m, l->s[i].mag);
            if (l->s[i].B) lf_model_remove_param(m, l->s[i].B);
            if (l->s[i].A) lf_model_remove_param(m, l->s[i].A);
        }
        lf_lora_free(l);
        return st;
    }
    *out = l;
    return LF_OK;
}

/* ---------------------------------------------------------------- save */

/* the target_modules PEFT would record: "all" expands to the set of last name components */
static json_t *targets_json(const lf_lora *l) {
    if (l->targets_regex && !is_all(l->o.targets)) return json_string(l->o.targets);
    json_t *a = json_array();
    if (is_all(l->o.targets)) {
        for (int i = 0; i < l->n; i++) {
            const char *dot = strrchr(l->s[i].module, '.');
            const char *last = dot ? dot + 1 : l->s[i].module;
            size_t k = 0;
            for (; k < json_array_size(a); k++)
                if (!strcmp(json_string_value(json_array_get(a, k)), last)) break;
            if (k == json_array_size(a)) json_array_append_new(a, json_string(last));
        }
        return a;
    }
    for (const char *p = l->o.targets; *p;) {
        size_t len = strcspn(p, ",");
        const char *q = p;
        while (len && *q == ' ') q++, len--;
        while (len && q[len - 1] == ' ') len--;
        if (len) json_array_append_new(a, json_stringn(q, len));
        p += strcspn(p, ",");
        if (*p) p++;
    }
    return a;
}

static json_t *number(float v) {
    return v == floorf(v) && fabsf(v) < 1e9f ? json_integer((json_int_t)v) : json_real(v);
}

lf_status lf_lora_save(const lf_lora *l, const char *dir, const char *base) {
    lf_status st = lf_mkdirs(dir);
    if (st) return st;
    int nt = l->n * 3, k = 0;
    lf_st_tensor *t = calloc((size_t)nt, sizeof *t);
    char (*names)[192] = calloc((size_t)nt, sizeof *names);
    if (!t || !names) {
        free(t);
        free(names);
        return LF_ERR_NOMEM;
    }
    for (int i = 0; i < l->n; i++) {
        const site *s = &l->s[i];
        const lf_param *ps[3] = {s->A, s->B, s->mag};
        const char *suf[3] = {"lora_A.weight", "lora_B.weight", "lora_magnitude_vector"};
        for (int j = 0; j < 3; j++) {
            if (!ps[j]) continue;
            snprintf(names[k], sizeof names[k], KEY_PREFIX "%s.%s", s->module, suf[j]);
            t[k].name = names[k];
            t[k].ndim = ps[j]->ndim;
            t[k].shape[0] = ps[j]->shape[0];
            t[k].shape[1] = ps[j]->shape[1];
            t[k].data = ps[j]->data;
            k++;
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    const char *meta[] = {"format", "pt"};
    st = lf_st_write(path, t, k, meta, 1);
    free(t);
    free(names);
    if (st) return st;

    json_t *j = json_object();
    json_object_set_new(j, "alpha_pattern", json_object());
    json_object_set_new(j, "auto_mapping", json_null());
    json_object_set_new(j, "base_model_name_or_path", base ? json_string(base) : json_null());
    json_object_set_new(j, "bias", json_string("none"));
    json_object_set_new(j, "fan_in_fan_out", json_boolean(l->gpt2));
    json_object_set_new(j, "inference_mode", json_true());
    json_object_set_new(j, "init_lora_weights", json_true());
    json_object_set_new(j, "layer_replication", json_null());
    json_object_set_new(j, "layers_pattern", json_null());
    json_object_set_new(j, "layers_to_transform", json_null());
    json_object_set_new(j, "loftq_config", json_object());
    json_object_set_new(j, "lora_alpha", number(l->o.alpha));
    json_object_set_new(j, "lora_dropout", json_real(l->o.dropout));
    json_object_set_new(j, "megatron_config", json_null());
    json_object_set_new(j, "megatron_core", json_string("megatron.core"));
    json_object_set_new(j, "modules_to_save", json_null());
    json_object_set_new(j, "peft_type", json_string("LORA"));
    json_object_set_new(j, "r", json_integer(l->o.r));
    json_object_set_new(j, "rank_pattern", json_object());
    json_object_set_new(j, "revision", json_null());
    json_object_set_new(j, "target_modules", targets_json(l));
    json_object_set_new(j, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(j, "use_dora", json_boolean(l->o.use_dora));
    json_object_set_new(j, "use_rslora", json_boolean(l->o.use_rslora));
    char *txt = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
    json_decref(j);
    if (!txt) return LF_ERR_NOMEM;
    size_t len = strlen(txt);
    char *buf = malloc(len + 2);
    if (!buf) {
        free(txt);
        return LF_ERR_NOMEM;
    }
    memcpy(buf, txt, len);
    buf[len] = '\n';
    free(txt);
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    st = lf_write_file_atomic(path, buf, len + 1);
    free(buf);
    return st;
}

/* ---------------------------------------------------------------- load */

static lf_status bad_config(const char *path, const char *what) {
    lf_set_error("%s: %s (is this a PEFT LoRA adapter_config.json?)", path, what);
    return LF_ERR_FORMAT;
}

/* an absent key, null, {} or [] */
static int empty_json(const json_t *v) {
    return !v || json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0) ||
           (json_is_array(v) && json_array_size(v) == 0);
}

static lf_status read_config(const char *path, lf_lora_opts *o, int *targets_regex) {
    json_error_t e;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        lf_set_error("%s: not valid JSON (line %d: %s)", path, e.line, e.text);
        return LF_ERR_FORMAT;
    }
    lf_status st = LF_OK;
    const char *pt = json_string_value(json_object_get(j, "peft_type"));
    json_t *r = json_object_get(j, "r"), *al = json_object_get(j, "lora_alpha"), *dr = json_object_get(j, "lora_dropout");
    json_t *rs = json_object_get(j, "use_rslora"), *dora = json_object_get(j, "use_dora");
    const char *bias = json_string_value(json_object_get(j, "bias"));
    if (!json_is_object(j)) st = bad_config(path, "not a JSON object");
    else if (!pt || strcmp(pt, "LORA") != 0) st = bad_config(path, "peft_type is not \"LORA\"");
    else if (!json_is_integer(r) || json_integer_value(r) < 1 || json_integer_value(r) > 65536)
        st = bad_config(path, "r is missing or not an integer in 1..65536");
    else if (!json_is_number(al) || !isfinite(json_number_value(al)))
        st = bad_config(path, "lora_alpha is missing or not a finite number");
    else if (dr && !json_is_null(dr) && !(json_is_number(dr) && json_number_value(dr) >= 0 && json_number_value(dr) < 1))
        st = bad_config(path, "lora_dropout is not a number in [0, 1)");
    else if ((rs && !json_is_boolean(rs) && !json_is_null(rs)) || (dora && !json_is_boolean(dora) && !json_is_null(dora)))
        st = bad_config(path, "use_rslora / use_dora are not true or false");
    else if (bias && strcmp(bias, "none") != 0) {
        lf_set_error("%s: bias \"%s\" is not supported (only \"none\": the adapter trains no biases)", path, bias);
        st = LF_ERR_FORMAT;
    } else if (!empty_json(json_object_get(j, "rank_pattern")) || !empty_json(json_object_get(j, "alpha_pattern"))) {
        lf_set_error("%s: rank_pattern / alpha_pattern (per-module rank or alpha) are not supported", path);
        st = LF_ERR_FORMAT;
    } else if (!empty_json(json_object_get(j, "modules_to_save"))) {
        lf_set_error("%s: modules_to_save (fully trained extra modules) is not supported", path);
        st = LF_ERR_FORMAT;
    } else if (!empty_json(json_object_get(j, "layer_replication"))) {
        lf_set_error("%s: layer_replication is not supported", path);
        st = LF_ERR_FORMAT;
    }
    if (!st) {
        lf_lora_opts_defaults(o);
        o->r = (int)json_integer_value(r);
        o->alpha = (float)json_number_value(al);
        o->dropout = json_is_number(dr) ? (float)json_number_value(dr) : 0.0f;
        o->use_rslora = json_is_true(rs);
        o->use_dora = json_is_true(dora);
        json_t *tm = json_object_get(j, "target_modules");
        size_t at = 0;
        *targets_regex = json_is_string(tm);
        if (json_is_string(tm)) snprintf(o->targets, sizeof o->targets, "%s", json_string_value(tm));
        else if (json_is_array(tm))
            for (size_t i = 0; i < json_array_size(tm); i++) {
                const char *s = json_string_value(json_array_get(tm, i));
                if (s && at < sizeof o->targets)
                    at += (size_t)snprintf(o->targets + at, sizeof o->targets - at, "%s%s", at ? "," : "", s);
            }
    }
    json_decref(j);
    return st;
}

/* "<module>" and which tensor (0 A, 1 B, 2 magnitude) from a PEFT key, or -1 */
static int parse_key(const char *key, char *module, size_t n) {
    static const char *suf[3] = {".lora_A.weight", ".lora_B.weight", ".lora_magnitude_vector"};
    size_t pl = strlen(KEY_PREFIX), kl = strlen(key);
    if (strncmp(key, KEY_PREFIX, pl) != 0) return -1;
    for (int j = 0; j < 3; j++) {
        size_t sl = strlen(suf[j]);
        if (kl > pl + sl && !strcmp(key + kl - sl, suf[j])) {
            if (kl - sl - pl >= n) return -1;
            snprintf(module, n, "%.*s", (int)(kl - sl - pl), key + pl);
            return j;
        }
    }
    return -1;
}

lf_status lf_lora_load(lf_lora **out, lf_model *m, const char *dir, const char *name, float scale, int trainable) {
    *out = NULL;
    char cfgp[4160], stp[4160], folder[4096];
    snprintf(folder, sizeof folder, "%s", dir);
    size_t fl = strlen(folder);
    if (fl > 25 && !strcmp(folder + fl - 25, "adapter_model.safetensors")) { /* the file inside the folder */
        folder[fl - 25] = 0;
        if (fl > 25 && folder[fl - 26] == '/') folder[fl - 26] = 0;
        if (!folder[0]) snprintf(folder, sizeof folder, ".");
    }
    snprintf(cfgp, sizeof cfgp, "%s/adapter_config.json", folder);
    snprintf(stp, sizeof stp, "%s/adapter_model.safetensors", folder);
    if (!lf_path_exists(cfgp) || !lf_path_exists(stp)) {
        lf_set_error("%s: not an adapter folder (needs adapter_config.json and adapter_model.safetensors; "
                     "adapter_model.bin is not read: re-save with safe_serialization=True)", folder);
        return LF_ERR_NOTFOUND;
    }
    if (!isfinite(scale)) {
        lf_set_error("%s: the adapter's scale must be finite", folder);
        return LF_ERR_ARG;
    }
    lf_lora_opts o;
    int targets_regex = 0;
    lf_status st = read_config(cfgp, &o, &targets_regex);
    if (st) return st;
    lf_st *f;
    if ((st = lf_st_open(&f, stp))) return st;
    lf_lora *l = new_handle(m, &o, name);
    if (!l) {
        lf_st_close(f);
        return LF_ERR_NOMEM;
    }
    l->mult = scale;
    l->targets_regex = targets_regex;
    int nt = lf_st_count(f);
    /* pass 1: every key names a module of this model and a tensor kind we know */
    for (int i = 0; i < nt && !st; i++) {
        char mod[128], wn[160];
        int kind = parse_key(lf_st_name(f, i), mod, sizeof mod);
        if (kind < 0) {
            lf_set_error("%s: tensor '%s' is not a LoRA tensor (expected base_model.model.<module>.lora_A.weight, "
                         ".lora_B.weight or .lora_magnitude_vector)", stp, lf_st_name(f, i));
            st = LF_ERR_FORMAT;
            break;
        }
        if (kind == 2 && !o.use_dora) {
            lf_set_error("%s: '%s' is a DoRA magnitude but the config says use_dora false", stp, lf_st_name(f, i));
            st = LF_ERR_FORMAT;
            break;
        }
        snprintf(wn, sizeof wn, "%s.weight", mod);
        lf_param *w = lf_model_find(m, wn);
        if (!w || !is_target_linear(w)) {
            lf_set_error("%s: tensor '%s' adapts module '%s', which is not a linear layer of this base model "
                         "(an adapter made for another model?)", stp, lf_st_name(f, i), mod);
            st = LF_ERR_FORMAT;
            break;
        }
        /* the shape before anything is allocated: a config's r must agree with the file's tensors */
        int64_t want[2] = {kind == 0 ? o.r : w->shape[0], kind == 0 ? w->shape[1] : kind == 1 ? o.r : 1};
        int wnd = kind == 2 ? 1 : 2, nd = lf_st_ndim(f, i);
        const int64_t *sh = lf_st_shape(f, i);
        if (nd != wnd || sh[0] != want[0] || (nd == 2 && sh[1] != want[1])) {
            lf_set_error("%s: '%s' has shape [%lld%s%lld], expected [%lld%s%lld] for module '%s' (%lld x %lld) with r=%d "
                         "(an adapter made for another model, or a config that does not match the tensors)",
                         stp, lf_st_name(f, i), (long long)sh[0], nd > 1 ? ", " : "", nd > 1 ? (long long)sh[1] : 0LL,
                         (long long)want[0], wnd > 1 ? ", " : "", wnd > 1 ? (long long)want[1] : 0LL, mod,
                         (long long)w->shape[0], (long long)w->shape[1], o.r);
            st = LF_ERR_FORMAT;
            break;
        }
        int seen = 0;
        for (int k = 0; k < l->n; k++) seen |= l->s[k].w == w;
        if (!seen) st = add_site(l, m, w, o.r, trainable);
    }
    if (!st && l->n == 0) {
        lf_set_error("%s: holds no LoRA tensors", stp);
        st = LF_ERR_FORMAT;
    }
    /* pass 2: every site has its tensors, each of the right shape */
    for (int k = 0; k < l->n && !st; k++) {
        site *s = &l->s[k];
        lf_param *ps[3] = {s->A, s->B, s->mag};
        const char *suf[3] = {"lora_A.weight", "lora_B.weight", "lora_magnitude_vector"};
        for (int j = 0; j < 3 && !st; j++) {
            if (!ps[j]) continue;
            char key[256];
            snprintf(key, sizeof key, KEY_PREFIX "%s.%s", s->module, suf[j]);
            int idx = lf_st_find(f, key);
            if (idx < 0) {
                lf_set_error("%s: '%s' is missing (every adapted module needs lora_A and lora_B%s)", stp, key,
                             o.use_dora ? " and, with use_dora, lora_magnitude_vector" : "");
                st = LF_ERR_FORMAT;
                break;
            }
            const int64_t *sh = lf_st_shape(f, idx);
            int nd = lf_st_ndim(f, idx);
            int ok = nd == ps[j]->ndim && sh[0] == ps[j]->shape[0] && (nd == 1 || sh[1] == ps[j]->shape[1]);
            if (!ok) {
                lf_set_error("%s: '%s' has shape [%lld%s%lld], expected [%lld%s%lld] for module '%s' (%lld x %lld) with r=%d "
                             "(an adapter made for another model, or a config that does not match the tensors)",
                             stp, key, (long long)sh[0], nd > 1 ? ", " : "", nd > 1 ? (long long)sh[1] : 0LL,
                             (long long)ps[j]->shape[0], ps[j]->ndim > 1 ? ", " : "",
                             ps[j]->ndim > 1 ? (long long)ps[j]->shape[1] : 0LL, s->module, (long long)s->w->shape[0],
                             (long long)s->w->shape[1], o.r);
                st = LF_ERR_FORMAT;
                break;
            }
            st = lf_st_read_f32(f, idx, ps[j]->data, ps[j]->numel);
            for (size_t e = 0; !st && e < ps[j]->numel; e++)
                if (!isfinite(ps[j]->data[e])) {
                    lf_set_error("%s: '%s' holds a NaN or infinite value", stp, key);
                    st = LF_ERR_FORMAT;
                }
        }
    }
    lf_st_close(f);
    if (!st) st = connect(l, m);
    if (!st && trainable) st = freeze_base(m);
    if (st) {
        for (int i = l->n - 1; i >= 0; i--) {
            if (l->s[i].mag) lf_model_remove_param(m, l->s[i].mag);
            if (l->s[i].B) lf_model_remove_param(m, l->s[i].B);
            if (l->s[i].A) lf_model_remove_param(m, l->s[i].A);
        }
        lf_lora_free(l);
        return st;
    }
    *out = l;
    return LF_OK;
}

lf_status lf_lora_load_list(lf_model *m, const char *list, lf_lora ***out, int *n) {
    *out = NULL;
    *n = 0;
    int cap = 1;
    for (const char *p = list; *p; p++) cap += *p == ',';
    lf_lora **ls = calloc((size_t)cap, sizeof *ls);
    if (!ls) return LF_ERR_NOMEM;
    lf_status st = LF_OK;
    int k = 0;
    for (const char *p = list; *p && !st;) {
        size_t len = strcspn(p, ",");
        char item[4096];
        snprintf(item, sizeof item, "%.*s", (int)len, p);
        p += len;
        if (*p) p++;
        if (!item[0]) continue;
        float scale = 1.0f;
        char *colon = strrchr(item, ':');
        if (colon && !lf_is_dir(item)) { /* DIR:SCALE (a folder whose name has a ':' is taken whole) */
            char *end;
            scale = strtof(colon + 1, &end);
            if (end == colon + 1 || *end || !isfinite(scale)) {
                lf_set_error("adapter '%s': the scale after ':' is not a number (DIR or DIR:SCALE)", item);
                st = LF_ERR_ARG;
                break;
            }
            *colon = 0;
        }
        char name[32];
        snprintf(name, sizeof name, k ? "adapter%d" : "default", k);
        st = lf_lora_load(&ls[k], m, item, name, scale, 0);
        if (!st) k++;
    }
    if (!st && k == 0) {
        lf_set_error("adapter list '%s' names no folder", list);
        st = LF_ERR_ARG;
    }
    if (st) {
        for (int i = 0; i < k; i++) lf_lora_free(ls[i]);
        free(ls);
        return st;
    }
    /* adapters given at load are for inference: they and the base stay frozen */
    *out = ls;
    *n = k;
    return LF_OK;
}

/* ---------------------------------------------------------------- merge */

lf_status lf_lora_merge(lf_lora *l, lf_model *m) {
    float s = l->scale * l->mult;
    size_t wmax = 0;
    for (int i = 0; i < l->n; i++) {
        if (!l->s[i].w->data) {
            lf_set_error("lora merge: '%s' is not stored as float32", l->s[i].w->name);
            return LF_ERR_ARG;
        }
        if ((size_t)l->s[i].w->shape[1] > wmax) wmax = (size_t)l->s[i].w->shape[1];
    }
    float *row = malloc(sizeof(float) * (wmax ? wmax : 1));
    if (!row) return LF_ERR_NOMEM;
    for (int i = 0; i < l->n; i++) {
        site *st = &l->s[i];
        row_norms(st->w, st->A, st->B, s, NULL, row, 1, st->mag ? st->mag->data : NULL);
        if (st->mag) lf_model_remove_param(m, st->mag);
        lf_model_remove_param(m, st->B);
        lf_model_remove_param(m, st->A);
    }
    free(row);
    lf_lora_free(l);
    return LF_OK;
}

lf_status lf_lora_from_config(lf_lora **out, lf_model *m, const lf_train_config *c) {
    *out = NULL;
    if (c->adapter[0]) return lf_lora_load(out, m, c->adapter, NULL, 1.0f, 1);
    if (c->lora_r <= 0) return LF_OK;
    lf_lora_opts o;
    lf_lora_opts_defaults(&o);
    o.r = c->lora_r;
    o.alpha = c->lora_alpha;
    o.dropout = c->lora_dropout;
    o.use_rslora = c->lora_rslora;
    o.use_dora = c->lora_dora;
    o.seed = (uint64_t)c->seed;
    snprintf(o.targets, sizeof o.targets, "%s", c->lora_targets);
    return lf_lora_attach(out, m, &o, NULL);
}
