/* Token shards (lf_shard_open): header, section offsets, document table, mask, task ids, then the
 * loader over an accepted shard. Unless bit 0 of header byte 127 (unused) is set, the size and the
 * checksum fields are made right first, so that the fuzzer gets past them to the tables. */
#include "fuzz_common.h"
#include "lmforge/data.h"

static char path[128];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_path(path, sizeof path, "train.bin");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) abort();
    if (size) memcpy(buf, data, size);
    if (size >= 128 && !(buf[127] & 1)) {
        uint64_t sz = size, h = 0xcbf29ce484222325ULL;
        memcpy(buf + 80, &sz, 8);
        for (size_t i = 128; i < size; i++) h = (h ^ buf[i]) * 0x100000001b3ULL;
        memcpy(buf + 88, &h, 8);
    }
    fuzz_write(path, buf, size);
    free(buf);
    lf_shard *s;
    if (lf_shard_open(&s, path, 0) != LF_OK) {
        FUZZ_CHECK(lf_last_error()[0], "a refusal without a message");
        return 0;
    }
    size_t nt = lf_shard_num_tokens(s), nd = lf_shard_num_docs(s);
    FUZZ_CHECK(nt <= size && nd <= size, "%zu tokens, %zu documents in %zu bytes", nt, nd, size);
    long sum = 0;
    for (size_t i = 0; i < nt; i++) {
        FUZZ_CHECK((uint32_t)lf_shard_token(s, i) < lf_shard_vocab_size(s), "token %zu outside the vocabulary", i);
        sum += lf_shard_is_target(s, i);
    }
    for (size_t d = 0; d <= nd; d++) {
        FUZZ_CHECK(lf_shard_doc_start(s, d) <= nt, "document %zu starts past the end", d);
        sum += lf_shard_doc_task(s, d);
    }
    (void)lf_shard_check_vocab(s, (int)(lf_shard_vocab_size(s) > 1 ? lf_shard_vocab_size(s) / 2 : 1));
    for (int mode = 0; mode < 4; mode++) {
        lf_loader *l;
        int T = 3, B = 2;
        if (lf_loader_init(&l, s, B, T, 7, mode & 1) != LF_OK) break;
        lf_loader_set_within_doc(l, mode >> 1);
        int32_t in[6], tg[6], task[2];
        for (int k = 0; k < 5; k++) {
            FUZZ_CHECK(lf_loader_next_batch(l, in, tg, task) == LF_OK, "loader failed");
            for (int i = 0; i < B * T; i++)
                FUZZ_CHECK(in[i] >= 0 && (uint32_t)in[i] < lf_shard_vocab_size(s) && tg[i] < (int32_t)lf_shard_vocab_size(s),
                           "batch holds an id outside the vocabulary");
        }
        lf_loader_free(l);
    }
    (void)sum;
    lf_shard_close(s);
    return 0;
}
