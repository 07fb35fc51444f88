/* lmforge LoRA (and rsLoRA, DoRA): low-rank adapters on linear layers chosen by name patterns,
 * with Hugging Face PEFT's initialisation, scaling, tensor names and folder layout
 * (adapter_config.json + adapter_model.safetensors), so adapters move both ways between lmforge
 * and PEFT. Built on the engine's adapter seam (lf_model_add_param + lf_model_add_adapter):
 * the adapters run in training, evaluation and decoding through the one linear path. */
#ifndef LMFORGE_LORA_H
#define LMFORGE_LORA_H

#include "lmforge/model.h"

typedef struct {
    int r;              /* rank (PEFT default 8) */
    float alpha;        /* lora_alpha (PEFT default 8) */
    float dropout;      /* on the adapter's input, training only */
    /* comma list: module names matched like PEFT's list form (the whole module path, or its
     * ending after a '.': "q_proj,v_proj", "c_attn", "self_attn.q_proj"), or "all" / "all-linear"
     * for every linear layer but the output head. Empty: PEFT's default for the architecture
     * (GPT-2: c_attn; Llama: q_proj,v_proj). */
    char targets[256];
    int use_rslora;     /* scale alpha/sqrt(r) instead of alpha/r */
    int use_dora;       /* magnitude vector (DoRA), initialised to the row norms of W */
    uint64_t seed;      /* A's kaiming-uniform draw */
} lf_lora_opts;

void lf_lora_opts_defaults(lf_lora_opts *o);

/* One attached adapter (all its sites). Freeing it leaves the tensors in the model. */
typedef struct lf_lora lf_lora;

/* Adds A (r,IC) kaiming-uniform(a=sqrt(5)), i.e. U(-1/sqrt(IC), 1/sqrt(IC)), and B (OC,r) zeros
 * (plus the magnitude for DoRA) to every targeted weight, named
 * "<module>.lora_A.<name>.weight" etc. (name NULL = "default"), and freezes every other tensor of
 * the model that is not an adapter (no gradient buffer, no optimizer moments). */
lf_status lf_lora_attach(lf_lora **out, lf_model *m, const lf_lora_opts *o, const char *name);

/* Loads a PEFT adapter folder (or the adapter_model.safetensors inside one) onto m: the config
 * and every tensor name and shape are checked against the model. scale multiplies PEFT's own
 * scaling (1 = as trained). trainable: the adapter's tensors train (the rest is frozen), else
 * they are frozen too. */
lf_status lf_lora_load(lf_lora **out, lf_model *m, const char *dir, const char *name, float scale, int trainable);
/* A comma list "DIR[:SCALE],DIR[:SCALE]..." loaded in order, every adapter active, frozen.
 * *out gets a malloc'd array of *n handles (free each, then the array). */
lf_status lf_lora_load_list(lf_model *m, const char *list, lf_lora ***out, int *n);

/* Writes DIR/adapter_config.json and DIR/adapter_model.safetensors (each atomically; DIR is
 * created). base: base_model_name_or_path to record (may be NULL). */
lf_status lf_lora_save(const lf_lora *l, const char *dir, const char *base);

/* Folds the adapter into its weights (W += s·B·A; DoRA: W = m·(W + s·B·A)/‖W + s·B·A‖ per output
 * row) and removes its tensors from the model; the handle is freed. */
lf_status lf_lora_merge(lf_lora *l, lf_model *m);

void lf_lora_free(lf_lora *l);
/* The training config's LoRA keys (lora_r, lora_alpha, ..., or adapter = an existing folder to
 * continue) applied to m: *out stays NULL when LoRA is off. */
struct lf_train_config_s;
lf_status lf_lora_from_config(lf_lora **out, lf_model *m, const struct lf_train_config_s *c);
int lf_lora_num_sites(const lf_lora *l);
size_t lf_lora_num_params(const lf_lora *l);
float lf_lora_scale(const lf_lora *l);
const lf_lora_opts *lf_lora_get_opts(const lf_lora *l);

#endif
