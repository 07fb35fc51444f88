/* llama2.c stories260K: load the legacy .bin checkpoint (RoPE rows permuted to Hugging Face's
 * layout on load), decode greedily from BOS and match run.c's 256 ids exactly and its logits at
 * positions 0-3 within 1e-4. Also: the converted model survives a save/load round trip. */
#include "lmforge/ckpt.h"
#include "lmforge/model.h"
#include "testutil.h"

#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_llama2c FIXTURE_DIR\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.bin", argv[1]);
    if (access(path, R_OK) != 0) {
        printf("skipped: fixture missing (%s)\n", path);
        return 77;
    }
    lf_model *m;
    if (lf_llama2c_load(&m, path)) {
        fprintf(stderr, "load failed: %s\n", lf_last_error());
        return 1;
    }
    int ref_ids[256];
    snprintf(path, sizeof path, "%s/greedy_ids_from_bos.txt", argv[1]);
    FILE *f = fopen(path, "r");
    LF_ASSERT(f);
    for (int i = 0; i < 256; i++) LF_ASSERT(fscanf(f, "%d", &ref_ids[i]) == 1);
    fclose(f);
    static float ref_logits[4 * 512];
    snprintf(path, sizeof path, "%s/logits_pos0-3.txt", argv[1]);
    f = fopen(path, "r");
    LF_ASSERT(f);
    for (int i = 0; i < 4 * 512; i++) LF_ASSERT(fscanf(f, "%f", &ref_logits[i]) == 1);
    fclose(f);

    const lf_config *c = lf_model_config(m);
    int V = c->vocab_size;
    int32_t seq[257];
    seq[0] = 1; /* BOS */
    int first_diff = -1;
    for (int n = 1; n <= 256; n++) {
        LF_ASSERT(lf_model_forward(m, seq, 1, n, LF_LOGITS_ALL) == LF_OK);
        const float *z = lf_model_logits(m, NULL) + (size_t)(n - 1) * V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (z[v] > z[best]) best = v;
        seq[n] = best;
        if (best != ref_ids[n - 1] && first_diff < 0) first_diff = n - 1;
        if (n == 256) {
            double worst = 0;
            for (int i = 0; i < 4 * V; i++) worst = fmax(worst, fabs(lf_model_logits(m, NULL)[i] - ref_logits[i]));
            printf("logits at positions 0-3: max abs error %.3g vs run.c\n", worst);
            CHECK(worst <= 1e-4, "logits at positions 0-3 differ from run.c by %.3g (> 1e-4)", worst);
        }
    }
    CHECK(first_diff < 0, "greedy ids differ from run.c first at index %d: ours %d, run.c %d", first_diff,
          first_diff >= 0 ? seq[first_diff + 1] : 0, first_diff >= 0 ? ref_ids[first_diff] : 0);
    if (first_diff < 0) printf("256 greedy ids identical to run.c\n");

    /* the same 256 ids through the KV cache */
    LF_ASSERT(lf_model_cache_init(m, 0) == LF_OK);
    float *lg = malloc(sizeof(float) * (size_t)V);
    int32_t tok = 1;
    int cache_diff = -1;
    for (int n = 0; n < 256; n++) {
        LF_ASSERT(lf_model_decode(m, &tok, 1, lg) == LF_OK);
        int best = 0;
        for (int v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = v;
        if (best != ref_ids[n] && cache_diff < 0) cache_diff = n;
        tok = best;
    }
    free(lg);
    CHECK(cache_diff < 0, "KV-cache greedy ids differ from run.c first at index %d", cache_diff);

    /* save as a Hugging Face directory and reload: identical tensors */
    char dir[] = "/tmp/lf_test_llama2c_XXXXXX";
    LF_ASSERT(mkdtemp(dir));
    CHECK(lf_hf_save(m, dir) == LF_OK, "save failed: %s", lf_last_error());
    lf_model *m2;
    CHECK(lf_hf_load(&m2, dir) == LF_OK, "reload failed: %s", lf_last_error());
    if (m2) {
        int same = 1;
        for (int i = 0; i < lf_model_num_params(m); i++)
            same &= memcmp(lf_model_param(m, i)->data, lf_model_param(m2, i)->data,
                           lf_model_param(m, i)->numel * sizeof(float)) == 0;
        CHECK(same, "tensors changed across save/load");
        lf_model_free(m2);
    }
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    if (system(path)) fprintf(stderr, "warning: could not remove %s\n", dir);
    lf_model_free(m);
    return tu_finish("test_llama2c");
}
