/* lmforge verify MODEL REFERENCE.safetensors: "does this model compute what the reference
 * implementation computes?" The reference holds input_ids (B,T), and any of logits (B,T,V),
 * loss (mean next-token cross-entropy, Hugging Face's shift: position t predicts id t+1; an
 * optional labels tensor with -100 for ignored positions), and grad.<name> (the gradient of that
 * loss for each parameter, under its Hugging Face name and layout). Every tensor is compared with
 * error = max|ours - ref| / max(1, max|ref|), printed worst first. */
#include "cli.h"
#include "lmforge/ckpt.h"
#include "lmforge/loss.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[112];
    double max_abs, ref_max, err;
    size_t worst_index;
} cmp_row;

static void compare(cmp_row *r, const char *name, const float *ours, const float *ref, size_t n) {
    snprintf(r->name, sizeof r->name, "%s", name);
    r->max_abs = r->ref_max = 0.0;
    r->worst_index = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)ours[i] - (double)ref[i]);
        if (!(d <= r->max_abs)) { /* also catches NaN */
            r->max_abs = isnan(d) ? INFINITY : d;
            r->worst_index = i;
        }
        if (fabs(ref[i]) > r->ref_max) r->ref_max = fabs(ref[i]);
    }
    r->err = r->max_abs / (r->ref_max > 1.0 ? r->ref_max : 1.0);
}

static int by_err_desc(const void *a, const void *b) {
    double x = ((const cmp_row *)a)->err, y = ((const cmp_row *)b)->err;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void usage(void) {
    printf("usage: lmforge verify MODEL REFERENCE.safetensors [--tol X] [--adapter DIR[:SCALE][,DIR...]] [--keep-quantized]\n"
           "  MODEL      a Hugging Face model directory, a GGUF file or a llama2.c .bin file\n"
           "  REFERENCE  safetensors with input_ids and any of logits, loss, labels, grad.<param name>\n"
           "  --adapter  run PEFT-layout LoRA adapters on MODEL (unmerged)\n"
           "  --tol X    pass when max|ours-ref| <= X * max(1, max|ref|) for every tensor (default 1e-4)\n"
           "  --keep-quantized  a GGUF's quantized linear weights stay encoded (default: dequantized)\n");
}

int cmd_verify(int argc, char **argv) {
    const char *model_path = NULL, *ref_path = NULL, *adapters = NULL;
    float tol = 1e-4f;
    int keep = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_quant_option(argv[i], &keep)) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        } else if (!strcmp(argv[i], "--tol")) {
            if (i + 1 >= argc || cli_parse_float(argv[++i], &tol) || !(tol > 0)) {
                fprintf(stderr, "lmforge verify: --tol needs a positive number\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--adapter") && i + 1 < argc) {
            adapters = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "lmforge verify: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        } else if (!model_path) model_path = argv[i];
        else if (!ref_path) ref_path = argv[i];
        else {
            fprintf(stderr, "lmforge verify: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!model_path || !ref_path) {
        usage();
        return 2;
    }
    lf_model *m = NULL;
    lf_loss_term *ce = NULL;
    lf_st *ref = NULL;
    if (cli_load_model(&m, model_path, keep)) return cli_fail("verify");
    int kept = 0;
    for (int i = 0; i < lf_model_num_params(m); i++) kept += lf_model_param(m, i)->qops != NULL;
    if (kept) printf("note: %d weights kept quantized\n", kept);
    if (cli_load_adapters(m, adapters, "verify")) {
        lf_model_free(m);
        return 1;
    }
    if (lf_st_open(&ref, ref_path)) {
        lf_model_free(m);
        return cli_fail("verify");
    }
    int rc = 1;
    int32_t *ids = NULL, *targets = NULL, *labels = NULL;
    float *buf = NULL, *hf = NULL;
    cmp_row *rows = NULL;
    int nrows = 0;
    const lf_config *cfg = lf_model_config(m);
    int k = lf_st_find(ref, "input_ids");
    if (k < 0 || lf_st_ndim(ref, k) != 2) {
        fprintf(stderr, "lmforge verify: %s: needs an 'input_ids' tensor of shape (B,T)\n", ref_path);
        goto done;
    }
    int B = (int)lf_st_shape(ref, k)[0], T = (int)lf_st_shape(ref, k)[1];
    size_t N = (size_t)B * T, V = (size_t)cfg->vocab_size;
    ids = malloc(N * sizeof *ids);
    targets = malloc(N * sizeof *targets);
    labels = malloc(N * sizeof *labels);
    if (!ids || !targets || !labels) goto done;
    if (lf_st_read_i32(ref, k, ids, N)) {
        cli_fail("verify");
        goto done;
    }
    int kl = lf_st_find(ref, "labels");
    if (kl >= 0) {
        if (lf_st_read_i32(ref, kl, labels, N)) {
            cli_fail("verify");
            goto done;
        }
    } else {
        memcpy(labels, ids, N * sizeof *ids);
    }
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int32_t y = t + 1 < T ? labels[(size_t)b * T + t + 1] : -100;
            targets[(size_t)b * T + t] = y < 0 ? -1 : y; /* -100 is Hugging Face's ignore_index */
        }
    float loss = 0.0f;
    double dloss = 0.0;
    lf_batch batch = {ids, targets, NULL, NULL, B, T};
    ce = lf_loss_ce_new(0.0f);
    if (!ce || lf_loss_forward(m, &ce, 1, &batch, &dloss, NULL)) {
        cli_fail("verify");
        goto done;
    }
    loss = (float)dloss;
    int cap = lf_st_count(ref) + 2;
    rows = calloc((size_t)cap, sizeof *rows);
    if (!rows) goto done;
    int kg = lf_st_find(ref, "logits");
    if (kg >= 0) {
        if (lf_st_numel(ref, kg) != N * V) {
            fprintf(stderr, "lmforge verify: %s: logits have %zu values, the model gives %zu (B*T*V)\n", ref_path,
                    lf_st_numel(ref, kg), N * V);
            goto done;
        }
        buf = malloc(N * V * sizeof(float));
        if (!buf || lf_st_read_f32(ref, kg, buf, N * V)) {
            cli_fail("verify");
            goto done;
        }
        compare(&rows[nrows++], "logits", lf_model_logits(m, NULL), buf, N * V);
        free(buf);
        buf = NULL;
    }
    int kloss = lf_st_find(ref, "loss");
    if (kloss >= 0) {
        float rl;
        if (lf_st_numel(ref, kloss) != 1 || lf_st_read_f32(ref, kloss, &rl, 1)) {
            fprintf(stderr, "lmforge verify: %s: 'loss' must be a single float\n", ref_path);
            goto done;
        }
        compare(&rows[nrows++], "loss", &loss, &rl, 1);
    }
    int have_grads = 0;
    for (int i = 0; i < lf_st_count(ref); i++) have_grads |= strncmp(lf_st_name(ref, i), "grad.", 5) == 0;
    if (have_grads) {
        if (lf_model_alloc_grads(m)) {
            cli_fail("verify");
            goto done;
        }
        lf_model_zero_grad(m);
        if (lf_loss_backward(m, &ce, 1, &batch, 1.0f)) {
            cli_fail("verify");
            goto done;
        }
        for (int i = 0; i < lf_st_count(ref); i++) {
            const char *nm = lf_st_name(ref, i);
            if (strncmp(nm, "grad.", 5) != 0) continue;
            lf_param *p = lf_model_find(m, nm + 5);
            if (!p) {
                fprintf(stderr, "lmforge verify: %s: '%s' names no parameter of this model\n", ref_path, nm);
                goto done;
            }
            if (lf_st_numel(ref, i) != p->numel) {
                fprintf(stderr, "lmforge verify: %s: '%s' has %zu values, parameter has %zu\n", ref_path, nm,
                        lf_st_numel(ref, i), p->numel);
                goto done;
            }
            free(buf);
            free(hf);
            buf = malloc(p->numel * sizeof(float));
            hf = malloc(p->numel * sizeof(float));
            if (!buf || !hf || lf_st_read_f32(ref, i, buf, p->numel)) {
                cli_fail("verify");
                goto done;
            }
            lf_param_to_hf(p, p->grad, hf);
            compare(&rows[nrows++], nm, hf, buf, p->numel);
        }
        for (int i = 0; i < lf_model_num_params(m); i++) {
            char gname[160];
            snprintf(gname, sizeof gname, "grad.%s", lf_model_param(m, i)->name);
            if (lf_st_find(ref, gname) < 0) printf("note: no reference for %s\n", gname);
        }
    }
    if (nrows == 0) {
        fprintf(stderr, "lmforge verify: %s: nothing to compare (no logits, loss or grad.* tensors)\n", ref_path);
        goto done;
    }
    qsort(rows, (size_t)nrows, sizeof *rows, by_err_desc);
    printf("%-52s %12s %12s %12s\n", "tensor", "max_abs_err", "max_abs_ref", "rel_err");
    for (int i = 0; i < nrows; i++)
        printf("%-52s %12.3e %12.3e %12.3e%s\n", rows[i].name, rows[i].max_abs, rows[i].ref_max, rows[i].err,
               rows[i].err <= tol ? "" : "  FAIL");
    printf("model loss %.7f over %zu positions (B=%d, T=%d), tolerance %.1e\n", loss, lf_loss_ce_counted(ce), B, T, tol);
    if (rows[0].err <= tol) {
        printf("verify: PASS\n");
        rc = 0;
    } else {
        printf("verify: FAIL (%s %.3e)\n", rows[0].name, rows[0].err);
    }
done:
    free(ids);
    free(targets);
    free(labels);
    free(buf);
    free(hf);
    free(rows);
    lf_st_close(ref);
    lf_loss_free(ce);
    lf_model_free(m);
    return rc;
}
