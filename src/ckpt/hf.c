/* Hugging Face model directories: config.json (GPT-2 and Llama families), model.safetensors or a
 * sharded model.safetensors.index.json, written back in the same layout (Conv1D transposed back,
 * tied head omitted) so a loaded-then-saved checkpoint is bit-identical tensor for tensor. */
#include "lmforge/ckpt.h"

#include <errno.h>
#include <unistd.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* typed getters: absent → default; present with the wrong type → error */
static int get_int(json_t *o, const char *k, int def, int *out, const char *path) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) { *out = def; return 0; }
    if (!json_is_integer(v)) {
        lf_set_error("%s: '%s' must be an integer", path, k);
        return -1;
    }
    json_int_t x = json_integer_value(v);
    if (x < INT32_MIN || x > INT32_MAX) { /* never wrap: 2^32+300 is not 300 */
        lf_set_error("%s: '%s' = %lld is out of range", path, k, (long long)x);
        return -1;
    }
    *out = (int)x;
    return 0;
}
static int get_num(json_t *o, const char *k, float def, float *out, const char *path) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) { *out = def; return 0; }
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
        lf_set_error("%s: '%s' must be a finite number", path, k);
        return -1;
    }
    *out = (float)json_number_value(v);
    return 0;
}
static int get_bool(json_t *o, const char *k, int def, int *out, const char *path) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) { *out = def; return 0; }
    if (!json_is_boolean(v)) {
        lf_set_error("%s: '%s' must be true or false", path, k);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

lf_status lf_hf_read_config(const char *dir, lf_config *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        lf_set_error("%s: missing (a Hugging Face model directory needs config.json)", path);
        return LF_ERR_IO;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size > (1 << 24)) {
        lf_set_error("%s: %s (expected a JSON file)", path, S_ISREG(sb.st_mode) ? "larger than 16 MiB" : "not a regular file");
        return LF_ERR_FORMAT;
    }
    size_t len;
    char *txt = lf_read_file(path, &len);
    if (!txt) return LF_ERR_IO;
    json_error_t jerr;
    json_t *j = json_loadb(txt, len, JSON_REJECT_DUPLICATES, &jerr);
    free(txt);
    if (!j || !json_is_object(j)) {
        if (j) lf_set_error("%s: not a JSON object", path);
        else lf_set_error("%s: invalid JSON at line %d: %s", path, jerr.line, jerr.text);
        json_decref(j);
        return LF_ERR_FORMAT;
    }
    lf_status st = LF_ERR_FORMAT;
    const char *mt = json_string_value(json_object_get(j, "model_type"));
    int e = 0;
    if (!mt) {
        lf_set_error("%s: no \"model_type\" (expected \"gpt2\" or \"llama\")", path);
        goto done;
    }
    if (strcmp(mt, "gpt2") == 0) {
        lf_config_defaults(c, LF_ARCH_GPT2);
        int n_inner = 0, scale_w = 1, inv_layer = 0, upcast = 0;
        e |= get_int(j, "vocab_size", 50257, &c->vocab_size, path);
        e |= get_int(j, "n_embd", 768, &c->d_model, path);
        e |= get_int(j, "n_layer", 12, &c->n_layer, path);
        e |= get_int(j, "n_head", 12, &c->n_head, path);
        e |= get_int(j, "n_positions", 1024, &c->max_seq, path);
        e |= get_int(j, "n_inner", 0, &n_inner, path);
        e |= get_num(j, "layer_norm_epsilon", 1e-5f, &c->norm_eps, path);
        e |= get_bool(j, "tie_word_embeddings", 1, &c->tie_embeddings, path);
        e |= get_num(j, "embd_pdrop", 0.1f, &c->dropout_embd, path);
        e |= get_num(j, "attn_pdrop", 0.1f, &c->dropout_attn, path);
        e |= get_num(j, "resid_pdrop", 0.1f, &c->dropout_resid, path);
        e |= get_num(j, "initializer_range", 0.02f, &c->init_std, path);
        e |= get_bool(j, "scale_attn_weights", 1, &scale_w, path);
        e |= get_bool(j, "scale_attn_by_inverse_layer_idx", 0, &inv_layer, path);
        e |= get_bool(j, "reorder_and_upcast_attn", 0, &upcast, path);
        e |= get_int(j, "bos_token_id", 50256, &c->bos_id, path);
        e |= get_int(j, "eos_token_id", 50256, &c->eos_id, path);
        if (e) goto done;
        const char *act = json_string_value(json_object_get(j, "activation_function"));
        if (act && strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh")) {
            lf_set_error("%s: activation_function \"%s\" is not supported (lmforge implements gelu_new)", path, act);
            goto done;
        }
        if (!scale_w || inv_layer) {
            lf_set_error("%s: scale_attn_weights=false / scale_attn_by_inverse_layer_idx=true are not supported", path);
            goto done;
        }
        c->n_kv_head = c->n_head;
        c->head_dim = c->n_head > 0 ? c->d_model / c->n_head : 0;
        /* 4·n_embd in 64 bits: a huge n_embd must be refused by the range check, not wrap */
        int64_t ff = n_inner > 0 ? n_inner : 4 * (int64_t)c->d_model;
        c->d_ff = ff > 0 && ff <= INT32_MAX ? (int)ff : -1;
    } else if (strcmp(mt, "llama") == 0) {
        lf_config_defaults(c, LF_ARCH_LLAMA);
        int abias = 0, mbias = 0;
        e |= get_int(j, "vocab_size", 32000, &c->vocab_size, path);
        e |= get_int(j, "hidden_size", 4096, &c->d_model, path);
        e |= get_int(j, "num_hidden_layers", 32, &c->n_layer, path);
        e |= get_int(j, "num_attention_heads", 32, &c->n_head, path);
        e |= get_int(j, "num_key_value_heads", c->n_head, &c->n_kv_head, path);
        e |= get_int(j, "head_dim", c->n_head > 0 ? c->d_model / c->n_head : 0, &c->head_dim, path);
        e |= get_int(j, "intermediate_size", 11008, &c->d_ff, path);
        e |= get_int(j, "max_position_embeddings", 2048, &c->max_seq, path);
        e |= get_num(j, "rms_norm_eps", 1e-6f, &c->norm_eps, path);
        e |= get_bool(j, "tie_word_embeddings", 0, &c->tie_embeddings, path);
        e |= get_num(j, "attention_dropout", 0.0f, &c->dropout_attn, path);
        e |= get_num(j, "initializer_range", 0.02f, &c->init_std, path);
        e |= get_bool(j, "attention_bias", 0, &abias, path);
        e |= get_bool(j, "mlp_bias", 0, &mbias, path);
        e |= get_int(j, "bos_token_id", -1, &c->bos_id, path);
        e |= get_int(j, "eos_token_id", -1, &c->eos_id, path);
        if (e) goto done;
        /* transformers ≥ 5 nests rope settings in rope_parameters; older configs keep rope_theta
         * at the top and rope_scaling beside it */
        json_t *rp = json_object_get(j, "rope_parameters");
        json_t *rs = json_object_get(j, "rope_scaling");
        if (json_is_object(rp)) {
            if (get_num(rp, "rope_theta", 10000.0f, &c->rope_theta, path)) goto done;
        } else if (get_num(j, "rope_theta", 10000.0f, &c->rope_theta, path)) {
            goto done;
        }
        json_t *scal = json_is_object(rp) ? rp : rs;
        const char *rt = json_is_object(scal) ? json_string_value(json_object_get(scal, "rope_type")) : NULL;
        if (!rt && json_is_object(scal)) rt = json_string_value(json_object_get(scal, "type"));
        if (rt && strcmp(rt, "default") != 0) {
            lf_set_error("%s: rope_type \"%s\" is not supported yet (only default RoPE)", path, rt);
            goto done;
        }
        const char *act = json_string_value(json_object_get(j, "hidden_act"));
        if (act && strcmp(act, "silu") != 0) {
            lf_set_error("%s: hidden_act \"%s\" is not supported (Llama uses silu)", path, act);
            goto done;
        }
        if (abias || mbias) {
            lf_set_error("%s: attention_bias/mlp_bias=true is not supported (Llama has no biases)", path);
            goto done;
        }
    } else {
        lf_set_error("%s: model_type \"%s\" is not supported (lmforge reads \"gpt2\" and \"llama\")", path, mt);
        goto done;
    }
    st = lf_config_check(c);
    if (st) {
        char msg[5200];
        snprintf(msg, sizeof msg, "%s: %s", path, lf_last_error());
        lf_set_error("%s", msg);
    }
done:
    json_decref(j);
    return st;
}

static json_t *config_json(const lf_config *c) {
    json_t *j = json_object();
    json_t *arch = json_array();
    if (c->arch == LF_ARCH_GPT2) {
        json_array_append_new(arch, json_string("GPT2LMHeadModel"));
        json_object_set_new(j, "architectures", arch);
        json_object_set_new(j, "model_type", json_string("gpt2"));
        json_object_set_new(j, "activation_function", json_string("gelu_new"));
        json_object_set_new(j, "vocab_size", json_integer(c->vocab_size));
        json_object_set_new(j, "n_embd", json_integer(c->d_model));
        json_object_set_new(j, "n_layer", json_integer(c->n_layer));
        json_object_set_new(j, "n_head", json_integer(c->n_head));
        json_object_set_new(j, "n_positions", json_integer(c->max_seq));
        json_object_set_new(j, "n_inner", c->d_ff == 4 * c->d_model ? json_null() : json_integer(c->d_ff));
        json_object_set_new(j, "layer_norm_epsilon", json_real(c->norm_eps));
        json_object_set_new(j, "embd_pdrop", json_real(c->dropout_embd));
        json_object_set_new(j, "attn_pdrop", json_real(c->dropout_attn));
        json_object_set_new(j, "resid_pdrop", json_real(c->dropout_resid));
        json_object_set_new(j, "scale_attn_weights", json_true());
    } else {
        json_array_append_new(arch, json_string("LlamaForCausalLM"));
        json_object_set_new(j, "architectures", arch);
        json_object_set_new(j, "model_type", json_string("llama"));
        json_object_set_new(j, "hidden_act", json_string("silu"));
        json_object_set_new(j, "vocab_size", json_integer(c->vocab_size));
        json_object_set_new(j, "hidden_size", json_integer(c->d_model));
        json_object_set_new(j, "num_hidden_layers", json_integer(c->n_layer));
        json_object_set_new(j, "num_attention_heads", json_integer(c->n_head));
        json_object_set_new(j, "num_key_value_heads", json_integer(c->n_kv_head));
        json_object_set_new(j, "head_dim", json_integer(c->head_dim));
        json_object_set_new(j, "intermediate_size", json_integer(c->d_ff));
        json_object_set_new(j, "max_position_embeddings", json_integer(c->max_seq));
        json_object_set_new(j, "rms_norm_eps", json_real(c->norm_eps));
        json_object_set_new(j, "rope_theta", json_real(c->rope_theta));
        json_t *rp = json_object();
        json_object_set_new(rp, "rope_theta", json_real(c->rope_theta));
        json_object_set_new(rp, "rope_type", json_string("default"));
        json_object_set_new(j, "rope_parameters", rp);
        json_object_set_new(j, "attention_bias", json_false());
        json_object_set_new(j, "mlp_bias", json_false());
        json_object_set_new(j, "attention_dropout", json_real(c->dropout_attn));
    }
    json_object_set_new(j, "tie_word_embeddings", json_boolean(c->tie_embeddings));
    json_object_set_new(j, "initializer_range", json_real(c->init_std));
    json_object_set_new(j, "bos_token_id", c->bos_id >= 0 ? json_integer(c->bos_id) : json_null());
    json_object_set_new(j, "eos_token_id", c->eos_id >= 0 ? json_integer(c->eos_id) : json_null());
    json_object_set_new(j, "dtype", json_string("float32"));
    return j;
}

/* Buffers older checkpoints carry that are not parameters */
static int ignorable(const char *name) {
    size_t n = strlen(name);
    const char *suffix[] = {".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq"};
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(suffix[i]);
        if (n >= k && strcmp(name + n - k, suffix[i]) == 0) return 1;
    }
    return 0;
}

typedef struct {
    lf_st **files;
    char **names;
    int n;
} shard_set;

static void shards_close(shard_set *s) {
    for (int i = 0; i < s->n; i++) {
        lf_st_close(s->files[i]);
        free(s->names[i]);
    }
    free(s->files);
    free(s->names);
}

static lf_status shards_open(shard_set *s, const char *dir) {
    memset(s, 0, sizeof *s);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (file_exists(path)) {
        s->files = calloc(1, sizeof *s->files);
        s->names = calloc(1, sizeof *s->names);
        s->n = 1;
        s->names[0] = strdup("model.safetensors");
        return lf_st_open(&s->files[0], path);
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (!file_exists(path)) {
        lf_set_error("%s: no model.safetensors or model.safetensors.index.json (PyTorch .bin checkpoints must be "
                     "converted to safetensors first)", dir);
        return LF_ERR_IO;
    }
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    json_t *wm = j ? json_object_get(j, "weight_map") : NULL;
    if (!json_is_object(wm)) {
        lf_set_error("%s: %s", path, j ? "no \"weight_map\" object" : jerr.text);
        json_decref(j);
        return LF_ERR_FORMAT;
    }
    size_t cap = json_object_size(wm);
    s->files = calloc(cap ? cap : 1, sizeof *s->files);
    s->names = calloc(cap ? cap : 1, sizeof *s->names);
    const char *k;
    json_t *v;
    lf_status st = LF_OK;
    json_object_foreach(wm, k, v) {
        const char *fn = json_string_value(v);
        if (!fn || strchr(fn, '/') || strcmp(fn, "..") == 0) {
            lf_set_error("%s: weight_map entry for '%s' is not a plain file name", path, k);
            st = LF_ERR_FORMAT;
            break;
        }
        int seen = 0;
        for (int i = 0; i < s->n; i++) seen |= strcmp(s->names[i], fn) == 0;
        if (seen) continue;
        char sp[4096];
        snprintf(sp, sizeof sp, "%s/%s", dir, fn);
        s->names[s->n] = strdup(fn);
        st = lf_st_open(&s->files[s->n], sp);
        s->n++;
        if (st) break;
    }
    json_decref(j);
    return st;
}

static int shards_find(const shard_set *s, const char *name, int *which) {
    for (int i = 0; i < s->n; i++) {
        if (!s->files[i]) continue;
        int k = lf_st_find(s->files[i], name);
        if (k >= 0) {
            *which = i;
            return k;
        }
    }
    return -1;
}

lf_status lf_hf_load(lf_model **out, const char *dir) {
    *out = NULL;
    lf_config cfg;
    lf_status st = lf_hf_read_config(dir, &cfg);
    if (st) return st;
    shard_set sh;
    st = shards_open(&sh, dir);
    if (st) {
        shards_close(&sh);
        return st;
    }
    lf_model *m = NULL; /* the table first: names and shapes are checked before the weights' memory is committed */
    st = lf_model_init_table(&m, &cfg);
    if (st) {
        char msg[1200];
        snprintf(msg, sizeof msg, "%s: %s", dir, lf_last_error());
        lf_set_error("%s", msg);
        shards_close(&sh);
        return st;
    }
    float *buf = NULL;
    /* every file tensor must be a parameter (or a known buffer); every parameter must be present */
    for (int f = 0; f < sh.n && !st; f++)
        for (int i = 0; i < lf_st_count(sh.files[f]) && !st; i++) {
            const char *nm = lf_st_name(sh.files[f], i);
            char alt[128];
            snprintf(alt, sizeof alt, "transformer.%s", nm);
            if (lf_model_find(m, nm) || ignorable(nm)) continue;
            if (cfg.arch == LF_ARCH_GPT2 && lf_model_find(m, alt)) continue; /* old names lack the prefix */
            if (strcmp(nm, "lm_head.weight") == 0 && cfg.tie_embeddings) continue;
            if (strcmp(nm, "score.weight") == 0) continue; /* a classification head: src/tech/seqcls.c reads it */
            lf_set_error("%s: unexpected tensor '%s' for a %s model (wrong config.json?)", sh.names[f], nm,
                         cfg.arch == LF_ARCH_GPT2 ? "GPT-2" : "Llama");
            st = LF_ERR_FORMAT;
        }
    /* pass 0 checks every name and shape against the table; pass 1, with the memory committed, reads */
    for (int pass = 0; pass < 2 && !st; pass++)
    for (int p = 0; p < lf_model_num_params(m) && !st; p++) {
        if (pass == 1 && p == 0 && (st = lf_model_alloc_weights(m))) break;
        lf_param *prm = lf_model_param(m, p);
        int which = 0, k = shards_find(&sh, prm->name, &which);
        if (k < 0 && strncmp(prm->name, "transformer.", 12) == 0) k = shards_find(&sh, prm->name + 12, &which);
        if (k < 0) {
            lf_set_error("%s: tensor '%s' is missing from the checkpoint", dir, prm->name);
            st = LF_ERR_FORMAT;
            break;
        }
        int64_t hs[2];
        lf_param_hf_shape(prm, hs);
        const int64_t *fs = lf_st_shape(sh.files[which], k);
        int nd = lf_st_ndim(sh.files[which], k);
        if (nd != prm->ndim || fs[0] != hs[0] || (nd == 2 && fs[1] != hs[1])) {
            char got[160] = "", want[64];
            size_t o = 0;
            for (int d = 0; d < nd && o < sizeof got - 24; d++)
                o += (size_t)snprintf(got + o, sizeof got - o, "%s%lld", d ? ", " : "", (long long)fs[d]);
            if (prm->ndim == 2) snprintf(want, sizeof want, "%lld, %lld", (long long)hs[0], (long long)hs[1]);
            else snprintf(want, sizeof want, "%lld", (long long)hs[0]);
            lf_set_error("%s: tensor '%s' has shape [%s] (%d dims) but config.json implies [%s]", sh.names[which], prm->name,
                         got, nd, want);
            st = LF_ERR_FORMAT;
            break;
        }
        if (pass == 0) continue;
        if (!prm->hf_transposed) {
            st = lf_st_read_f32(sh.files[which], k, prm->data, prm->numel);
        } else {
            free(buf);
            buf = malloc(prm->numel * sizeof(float));
            if (!buf) { st = LF_ERR_NOMEM; break; }
            st = lf_st_read_f32(sh.files[which], k, buf, prm->numel);
            if (!st) lf_param_from_hf(prm, buf);
        }
    }
    free(buf);
    shards_close(&sh);
    if (!st) st = lf_model_check_finite(m, dir);
    if (st) {
        lf_model_free(m);
        return st;
    }
    *out = m;
    return LF_OK;
}

static void fill_hf(const void *ctx, float *buf) {
    const lf_param *p = ctx;
    if (!p->qops) {
        lf_param_to_hf(p, p->data, buf);
        return;
    }
    /* another storage type: dequantize, then lay out as Hugging Face does */
    float *tmp = p->hf_transposed ? malloc(p->numel * sizeof(float)) : buf;
    if (!tmp) {
        memset(buf, 0, p->numel * sizeof(float));
        return;
    }
    p->qops->dequantize(p, tmp);
    if (p->hf_transposed) {
        lf_param_to_hf(p, tmp, buf);
        free(tmp);
    }
}

static lf_status save_files(lf_model *m, const char *dir) {
    int n = lf_model_num_params(m);
    lf_st_tensor *t = calloc((size_t)n, sizeof *t);
    if (!t) return LF_ERR_NOMEM;
    int k = 0;
    for (int i = 0; i < n; i++) { /* the model's own tensors: adapters and added heads are saved by their owners */
        lf_param *p = lf_model_param(m, i);
        if (p->flags & LF_PARAM_EXTRA) continue;
        t[k].name = p->name;
        t[k].ndim = p->ndim;
        lf_param_hf_shape(p, t[k].shape);
        if (p->hf_transposed || p->qops) {
            t[k].fill = fill_hf;
            t[k].ctx = p;
        } else {
            t[k].data = p->data;
        }
        k++;
    }
    n = k;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const char *meta[] = {"format", "pt"};
    lf_status st = lf_st_write(path, t, n, meta, 1);
    free(t);
    if (st) return st;
    json_t *j = config_json(lf_model_config(m));
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(j);
    if (!s) return LF_ERR_NOMEM;
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len = strlen(s);
    s[len] = '\n'; /* json_dumps leaves room for the terminator we overwrite */
    st = lf_write_file_atomic(path, s, len + 1);
    free(s);
    return st;
}

/* The folder is replaced as a whole: the files are written into DIR.tmp.PID beside it (with
 * hard links to the other files already in DIR, such as tokenizer.json), which then takes DIR's
 * place in one rename. A kill at any moment leaves the old folder or the new one, never new
 * weights beside an old config.json. */
lf_status lf_hf_save(lf_model *m, const char *dir) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    char *tmp = malloc(n + 40);
    if (!tmp) return LF_ERR_NOMEM;
    snprintf(tmp, n + 40, "%.*s.tmp.%d", (int)n, dir, (int)getpid());
    lf_rm_rf(tmp);
    lf_status st = lf_mkdirs(tmp);
    DIR *d = st ? NULL : opendir(dir);
    if (d) { /* keep the folder's other files (tokenizer, trainer state): everything but the weights and config */
        struct dirent *e;
        while ((e = readdir(d))) {
            const char *f = e->d_name;
            if (!strcmp(f, ".") || !strcmp(f, "..") || !strcmp(f, "config.json") || !strncmp(f, "model", 5)) continue;
            char src[4600], dst[4600];
            snprintf(src, sizeof src, "%s/%s", dir, f);
            snprintf(dst, sizeof dst, "%s/%s", tmp, f);
            struct stat sb;
            if (lstat(src, &sb) == 0 && !S_ISREG(sb.st_mode)) { /* replacing the folder would drop it: refuse */
                lf_set_error("%s: holds '%s', which is not a regular file; save the model into an empty folder or a "
                             "model folder", dir, f);
                st = LF_ERR_ARG;
                break;
            }
            if (link(src, dst) != 0) {
                lf_set_error("%s: cannot keep %s in the new folder (%s)", dir, f, strerror(errno));
                st = LF_ERR_IO;
                break;
            }
        }
        closedir(d);
    }
    if (!st) st = save_files(m, tmp);
    char *target = strndup(dir, n);
    if (!st) st = target ? lf_publish_dir(tmp, target) : LF_ERR_NOMEM;
    if (st) lf_rm_rf(tmp);
    free(target);
    free(tmp);
    return st;
}

lf_status lf_model_load(lf_model **out, const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        lf_set_error("%s: %s (expected a Hugging Face model directory or a llama2.c .bin file)", path, strerror(errno));
        return LF_ERR_IO;
    }
    if (S_ISDIR(sb.st_mode)) return lf_hf_load(out, path);
    if (lf_is_gguf(path)) return lf_gguf_load(out, NULL, path);
    return lf_llama2c_load(out, path);
}
