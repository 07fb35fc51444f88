/* Tokenizer speed: encodes a text file with lmforge's tokenizer on 1 thread and on N threads
 * (checking both give the same ids), and times BPE training. Prints 'result:' lines for
 * bench/run-tokenizer. Usage: bench_tokenizer TOKENIZER TEXT THREADS [TRAIN_VOCAB] */
#include "lmforge/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_tokenizer TOKENIZER TEXT THREADS [TRAIN_VOCAB]\n");
        return 2;
    }
    lf_tokenizer *t;
    if (lf_tokenizer_load(&t, argv[1])) {
        fprintf(stderr, "%s\n", lf_last_error());
        return 1;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) return 1;
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc(len);
    if (fread(text, 1, len, f) != len) return 1;
    fclose(f);
    int nt = atoi(argv[3]);
    double mb = len / 1e6, best1 = 1e9, bestn = 1e9;
    lf_ids a = {0}, b = {0};
    for (int rep = 0; rep < 3; rep++) {
        a.n = 0;
        double t0 = lf_now();
        lf_tokenizer_encode(t, text, len, 0, &a);
        double t1 = lf_now();
        b.n = 0;
        lf_tokenizer_encode_parallel(t, text, len, 0, nt, &b);
        double t2 = lf_now();
        if (t1 - t0 < best1) best1 = t1 - t0;
        if (t2 - t1 < bestn) bestn = t2 - t1;
    }
    int same = a.n == b.n && memcmp(a.ids, b.ids, a.n * sizeof(int32_t)) == 0;
    printf("lmforge encode: %.1f MB -> %zu tokens; 1 thread %.2f s (%.1f MB/s); %d threads %.2f s (%.1f MB/s)%s\n", mb,
           a.n, best1, mb / best1, nt, bestn, mb / bestn, same ? "" : "  IDS DIFFER");
    printf("result: encode_mbs_1=%.2f encode_mbs_n=%.2f tokens=%zu\n", mb / best1, mb / bestn, a.n);
    if (argc > 4) {
        lf_bpe_train_opts o = {.vocab_size = atoi(argv[4]), .quiet = 1};
        const char *files[] = {argv[2]};
        lf_tokenizer *tr;
        double t0 = lf_now();
        if (lf_tokenizer_train_bpe(&tr, files, 1, &o)) {
            fprintf(stderr, "%s\n", lf_last_error());
            return 1;
        }
        double dt = lf_now() - t0;
        printf("lmforge train: vocabulary %d on %.1f MB in %.1f s (%.2f MB/s)\n", lf_tokenizer_vocab_size(tr), mb, dt, mb / dt);
        printf("result: train_s=%.2f\n", dt);
        lf_tokenizer_free(tr);
    }
    lf_ids_free(&a);
    lf_ids_free(&b);
    free(text);
    lf_tokenizer_free(t);
    return same ? 0 : 1;
}
