/* lmforge lora: adapters in PEFT's layout.
 *   lora merge BASE ADAPTER[,ADAPTER...] OUT   fold the adapters into the weights, write a HF folder
 *   lora info ADAPTER                          what an adapter folder holds, checked against nothing
 * and the --adapter DIR[:SCALE][,DIR...] option that eval, generate and verify share. */
#include "cli.h"
#include "lmforge/ckpt.h"
#include "lmforge/lora.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_load_adapters(lf_model *m, const char *list, const char *cmd) {
    if (!list) return 0;
    lf_lora **ls;
    int n;
    if (lf_lora_load_list(m, list, &ls, &n)) {
        fprintf(stderr, "lmforge %s: %s\n", cmd, lf_last_error());
        return -1;
    }
    for (int i = 0; i < n; i++) lf_lora_free(ls[i]); /* the tensors stay in the model */
    free(ls);
    return 0;
}

/* copy tokenizer files of the base beside the merged weights, so the folder is complete */
static void copy_file(const char *from_dir, const char *to_dir, const char *name) {
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/%s", from_dir, name);
    if (!lf_path_exists(a)) return;
    size_t len;
    char *d = lf_read_file(a, &len);
    if (!d) return;
    snprintf(b, sizeof b, "%s/%s", to_dir, name);
    lf_write_file_atomic(b, d, len);
    free(d);
}

static int merge(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: lmforge lora merge BASE ADAPTER[:SCALE][,ADAPTER...] OUT\n");
        return 2;
    }
    const char *base = argv[1], *list = argv[2], *out = argv[3];
    lf_model *m;
    if (lf_model_load(&m, base)) return cli_fail("lora merge");
    lf_lora **ls;
    int n;
    if (lf_lora_load_list(m, list, &ls, &n)) {
        lf_model_free(m);
        return cli_fail("lora merge");
    }
    int rc = 0;
    for (int i = 0; i < n; i++) /* every adapter reads the base weight alone, as PEFT does: merge last-first is not needed for LoRA, and DoRA's norm is of W plus its own update */
        if (!rc && lf_lora_merge(ls[i], m)) rc = cli_fail("lora merge");
        else if (rc) lf_lora_free(ls[i]);
    free(ls);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    if (!rc) {
        lf_rm_rf(tmp);
        if (lf_mkdirs(tmp) || lf_hf_save(m, tmp)) rc = cli_fail("lora merge");
    }
    if (!rc && lf_is_dir(base)) {
        static const char *extra[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                                      "vocab.json", "merges.txt", "encoder.json", "vocab.bpe", "tokenizer.model"};
        for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) copy_file(base, tmp, extra[i]);
    }
    if (!rc && lf_publish_dir(tmp, out)) rc = cli_fail("lora merge");
    if (!rc) printf("merged %d adapter%s into %s (%zu parameters)\n", n, n == 1 ? "" : "s", out, lf_model_num_scalars(m));
    lf_model_free(m);
    return rc;
}

int cmd_lora(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "merge")) return merge(argc - 1, argv + 1);
    printf("usage: lmforge lora merge BASE ADAPTER[:SCALE][,ADAPTER...] OUT\n"
           "  merges PEFT-layout LoRA/rsLoRA/DoRA adapter folders (adapter_config.json +\n"
           "  adapter_model.safetensors) into BASE and writes a Hugging Face folder OUT.\n"
           "  eval, generate and verify take --adapter DIR[:SCALE][,DIR...] to run adapters unmerged.\n");
    return argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? 0 : 2;
}
