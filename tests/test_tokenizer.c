/* Tokenizers against the reference libraries' ids (tokenizer_ref.json: Hugging Face tokenizers
 * for GPT-2, sentencepiece for Llama 2), exact byte round trips (including invalid UTF-8 and
 * random bytes), special-token handling, BOS/EOS, a long single "word", BPE training with a
 * save/load round trip, and malformed tokenizer files. */
#define _GNU_SOURCE /* memmem */
#include "lmforge/tokenizer.h"
#include "testutil.h"

#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

static char shared_dir[4096];

static lf_tokenizer *load(const char *rel) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", shared_dir, rel);
    lf_tokenizer *t = NULL;
    if (lf_tokenizer_load(&t, p)) CHECK(0, "load %s: %s", p, lf_last_error());
    return t;
}

static void check_refs(lf_tokenizer *t, json_t *texts, json_t *refs, const char *what) {
    size_t i;
    json_t *tx;
    int ok = 0;
    json_array_foreach(texts, i, tx) {
        lf_ids ids = {0};
        const char *s = json_string_value(tx);
        CHECK(lf_tokenizer_encode(t, s, json_string_length(tx), 0, &ids) == LF_OK, "%s: encode failed", what);
        json_t *r = json_array_get(refs, i);
        int same = ids.n == json_array_size(r);
        size_t first = ids.n;
        for (size_t k = 0; k < ids.n && k < json_array_size(r); k++)
            if (ids.ids[k] != json_integer_value(json_array_get(r, k))) {
                same = 0;
                first = k;
                break;
            }
        CHECK(same, "%s: text %zu (%.30s): %zu ids vs reference %zu, first difference at %zu", what, i, s, ids.n,
              json_array_size(r), first);
        ok += same;
        lf_ids_free(&ids);
    }
    printf("%s: %d/%zu reference strings identical\n", what, ok, json_array_size(texts));
}

static void roundtrip(lf_tokenizer *t, const char *s, size_t len, const char *what) {
    lf_ids ids = {0};
    char *out = NULL;
    size_t olen = 0;
    CHECK(lf_tokenizer_encode(t, s, len, 0, &ids) == LF_OK, "%s: encode", what);
    CHECK(lf_tokenizer_decode(t, ids.ids, ids.n, &out, &olen) == LF_OK, "%s: decode", what);
    CHECK(out && olen == len && memcmp(out, s, len) == 0, "%s: decode(encode(x)) != x (%zu vs %zu bytes)", what, olen, len);
    free(out);
    lf_ids_free(&ids);
}

static void test_gpt2(json_t *ref) {
    json_t *texts = json_object_get(ref, "texts");
    lf_tokenizer *a = load("data/gpt2"), *b = load("fixtures/gpt2_tokenizer.json");
    if (!a || !b) return;
    check_refs(a, texts, json_object_get(ref, "gpt2_ids"), "gpt2 encoder.json+vocab.bpe");
    check_refs(b, texts, json_object_get(ref, "gpt2_ids"), "gpt2 tokenizer.json");
    CHECK(lf_tokenizer_fingerprint(a) == lf_tokenizer_fingerprint(b), "the same GPT-2 vocabulary from two files has two fingerprints");
    size_t i;
    json_t *tx;
    json_array_foreach(texts, i, tx) roundtrip(a, json_string_value(tx), json_string_length(tx), "gpt2 reference text");
    /* random bytes, invalid UTF-8 included */
    char buf[4096];
    for (int it = 0; it < 200; it++) {
        size_t n = lf_hash64(1, (uint64_t)it, 0) % sizeof buf;
        for (size_t k = 0; k < n; k++) buf[k] = (char)(lf_hash64(2, (uint64_t)it, k) & (it % 2 ? 0xff : 0x7f));
        roundtrip(a, buf, n, it % 2 ? "gpt2 random bytes" : "gpt2 random ascii");
    }
    const char *bad_utf8 = "ok \xff\xfe broken \xc3 end \xe2\x82";
    roundtrip(a, bad_utf8, strlen(bad_utf8), "gpt2 invalid UTF-8");
    /* a single 1 MB "word" goes through the heap merge, not a quadratic one */
    size_t big = 1 << 20;
    char *w = malloc(big);
    for (size_t k = 0; k < big; k++) w[k] = "abcdefghij"[k % 10];
    double t0 = lf_now();
    roundtrip(a, w, big, "gpt2 1 MB single word");
    double dt = lf_now() - t0;
    CHECK(dt < 20.0, "1 MB single word took %.1f s (quadratic merging?)", dt);
    free(w);
    /* special tokens only where allowed */
    lf_ids ids = {0};
    const char *s = "a<|endoftext|>b";
    lf_tokenizer_encode(a, s, strlen(s), 0, &ids);
    int plain = 1;
    for (size_t k = 0; k < ids.n; k++) plain &= ids.ids[k] != 50256;
    CHECK(plain && ids.n > 3, "<|endoftext|> must be plain text unless allowed");
    ids.n = 0;
    lf_tokenizer_encode(a, s, strlen(s), LF_ENC_ALLOW_SPECIAL, &ids);
    CHECK(ids.n == 3 && ids.ids[1] == 50256, "<|endoftext|> allowed: expected [a, 50256, b], got %zu ids", ids.n);
    ids.n = 0;
    lf_tokenizer_encode(a, "x", 1, LF_ENC_EOS, &ids);
    CHECK(ids.n == 2 && ids.ids[1] == 50256 && lf_tokenizer_eos(a) == 50256, "EOS for GPT-2 is <|endoftext|>");
    lf_ids_free(&ids);
    lf_tokenizer_free(a);
    lf_tokenizer_free(b);
}

static void test_llama(json_t *ref) {
    lf_tokenizer *t = load("data/llama2/tokenizer.bin");
    if (!t) return;
    check_refs(t, json_object_get(ref, "texts"), json_object_get(ref, "llama2_ids"), "llama2 tokenizer.bin");
    lf_ids ids = {0};
    lf_tokenizer_encode(t, "Hello", 5, LF_ENC_BOS | LF_ENC_EOS, &ids);
    CHECK(ids.n >= 3 && ids.ids[0] == 1 && ids.ids[ids.n - 1] == 2, "llama BOS/EOS: got %zu ids, first %d", ids.n, ids.n ? ids.ids[0] : -1);
    char *out;
    size_t olen;
    lf_tokenizer_decode(t, ids.ids, ids.n, &out, &olen);
    CHECK(olen == 5 && memcmp(out, "Hello", 5) == 0, "llama decode drops BOS/EOS and the dummy prefix: '%s'", out);
    free(out);
    const char *s = "naïve 日本語 😀 done";
    roundtrip(t, s, strlen(s), "llama byte fallback");
    lf_ids_free(&ids);
    lf_tokenizer_free(t);
}

static void test_training(void) {
    char dir[] = "/tmp/lf_test_tok_XXXXXX";
    LF_ASSERT(mkdtemp(dir));
    char corpus[4200], out[4200];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    snprintf(out, sizeof out, "%s/tokenizer.json", dir);
    FILE *f = fopen(corpus, "w");
    const char *words[] = {"the", "lord", "said", "unto", "moses", "and", "it", "was", "so", "children", "of", "israel",
                           "café", "naïve", "1234", "!!", "\t"};
    for (int i = 0; i < 20000; i++) {
        uint64_t h = lf_hash64(5, 0, (uint64_t)i);
        fprintf(f, "%s%s", i % 13 == 0 ? "\n" : " ", words[h % 17]);
    }
    fclose(f);
    const char *files[] = {corpus};
    lf_bpe_train_opts o = {.vocab_size = 400, .quiet = 1};
    lf_tokenizer *t = NULL, *t2 = NULL;
    CHECK(lf_tokenizer_train_bpe(&t, files, 1, &o) == LF_OK, "train: %s", lf_last_error());
    if (t) {
        CHECK(lf_tokenizer_vocab_size(t) <= 400 && lf_tokenizer_vocab_size(t) > 300, "trained vocab %d", lf_tokenizer_vocab_size(t));
        CHECK(lf_tokenizer_special(t, "<|endoftext|>") == lf_tokenizer_eos(t) && lf_tokenizer_eos(t) >= 0, "default special");
        const char *s = "the children of israel said unto moses: café 1234!!";
        lf_ids ids = {0};
        lf_tokenizer_encode(t, s, strlen(s), 0, &ids);
        CHECK(ids.n < strlen(s) / 2, "trained tokenizer barely compresses: %zu ids for %zu bytes", ids.n, strlen(s));
        roundtrip(t, s, strlen(s), "trained round trip");
        CHECK(lf_tokenizer_save_json(t, out) == LF_OK, "save: %s", lf_last_error());
        CHECK(lf_tokenizer_load(&t2, out) == LF_OK, "reload: %s", lf_last_error());
        if (t2) {
            lf_ids ids2 = {0};
            lf_tokenizer_encode(t2, s, strlen(s), 0, &ids2);
            CHECK(ids2.n == ids.n && memcmp(ids.ids, ids2.ids, ids.n * 4) == 0, "saved tokenizer encodes differently");
            CHECK(lf_tokenizer_fingerprint(t) == lf_tokenizer_fingerprint(t2), "fingerprint changed across save/load");
            lf_ids_free(&ids2);
        }
        lf_ids_free(&ids);
        /* training is deterministic */
        lf_tokenizer *t3 = NULL;
        lf_tokenizer_train_bpe(&t3, files, 1, &o);
        CHECK(t3 && lf_tokenizer_fingerprint(t3) == lf_tokenizer_fingerprint(t), "two trainings differ");
        lf_tokenizer_free(t3);
    }
    lf_tokenizer_free(t);
    lf_tokenizer_free(t2);
    /* malformed files */
    struct {
        const char *name, *content;
    } bad[] = {
        {"garbage.json", "{\"model\": {\"type\": \"WordPiece\"}}"},
        {"nomerges.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}"},
        {"badmerge.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a zz\"]}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}"},
        {"trunc.json", "{\"model\": {\"type\": "},
        {"tokenizer.bin", "\x10\0\0\0\0\0\0\0\x50\0\0\0ab"},
        {"empty.bin", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", dir, bad[i].name);
        f = fopen(p, "w");
        fputs(bad[i].content, f);
        fclose(f);
        lf_tokenizer *x = NULL;
        lf_status st = lf_tokenizer_load(&x, p);
        CHECK(st != LF_OK && x == NULL && strstr(lf_last_error(), p), "%s: accepted or unnamed error: %s", bad[i].name, lf_last_error());
    }
    lf_tokenizer *x = NULL;
    char p[4400];
    snprintf(p, sizeof p, "%s/encoder.json", dir);
    f = fopen(p, "w");
    fputs("{\"a\": 0}", f);
    fclose(f);
    CHECK(lf_tokenizer_load(&x, p) != LF_OK && strstr(lf_last_error(), "vocab.bpe"), "encoder.json without vocab.bpe: %s", lf_last_error());
    snprintf(p, sizeof p, "rm -rf '%s'", dir);
    if (system(p)) fprintf(stderr, "warning: cleanup failed\n");
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    LF_ASSERT(f);
    if (n) LF_ASSERT(fwrite(p, 1, n, f) == n);
    fclose(f);
}

/* a llama2.c tokenizer.bin: the three controls, the 256 byte pieces, then extra pieces */
static void write_tokbin(const char *path, const char *const *extra, const size_t *len, int n) {
    size_t cap = 1 << 20, k = 0;
    char *b = malloc(cap);
    int32_t maxlen = 65536;
    memcpy(b, &maxlen, 4);
    k = 4;
    for (int i = 0; i < 3 + 256 + n; i++) {
        char tmp[8];
        const char *s = tmp;
        int32_t l;
        if (i < 3) s = (const char *[]){"<unk>", "\n<s>\n", "\n</s>\n"}[i], l = (int32_t)strlen(s);
        else if (i < 259) l = snprintf(tmp, sizeof tmp, "<0x%02X>", i - 3);
        else s = extra[i - 259], l = (int32_t)len[i - 259];
        while (k + 8 + (size_t)l > cap) LF_ASSERT((b = realloc(b, cap *= 2)));
        float score = -(float)i;
        memcpy(b + k, &score, 4);
        memcpy(b + k + 4, &l, 4);
        memcpy(b + k + 8, s, (size_t)l);
        k += 8 + (size_t)l;
    }
    write_bytes(path, b, k);
    free(b);
}

/* issue 8: hostile tokenizer files */
static void test_hostile(void) {
    char dir[] = "/tmp/lf_test_tokh_XXXXXX", p[4400], corpus[4400];
    LF_ASSERT(mkdtemp(dir));
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    FILE *f = fopen(corpus, "w");
    for (int i = 0; i < 3000; i++) fprintf(f, "%s ", (const char *[]){"the", "quick", "brown", "fox", "jumps", "12", "caf\xc3\xa9"}[lf_hash64(9, 0, (uint64_t)i) % 7]);
    fclose(f);
    const char *files[] = {corpus};
    lf_bpe_train_opts o = {.vocab_size = 300, .quiet = 1};
    lf_tokenizer *t = NULL;
    LF_ASSERT(lf_tokenizer_train_bpe(&t, files, 1, &o) == LF_OK);
    snprintf(p, sizeof p, "%s/base.json", dir);
    LF_ASSERT(lf_tokenizer_save_json(t, p) == LF_OK);
    lf_tokenizer_free(t);
    json_error_t jerr;
    json_t *base = json_load_file(p, 0, &jerr);
    LF_ASSERT(base);

    /* item 4: a Split regex that can match the empty string kept only the matches ("the quick
     * brown fox" came back as "thequickbrownfox"; \b kept nothing but "heuickrownox"). Now every
     * byte lands in a chunk, as in Hugging Face tokenizers (ids identical to it, checked by hand:
     * an empty match cuts, the search moves on by one character). */
    const char *rx[] = {"\\p{L}*", "\\b", "x*", "(?=a)", "a|", "(?:)", "\\s*"};
    char rnd[3000];
    for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (char)(lf_hash64(3, 1, i) & 0xff);
    for (size_t r = 0; r < sizeof rx / sizeof rx[0]; r++) {
        json_t *pre = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b}]}", "type", "Sequence", "pretokenizers",
                                "type", "Split", "pattern", "Regex", rx[r], "behavior", "Isolated", "invert", 0, "type",
                                "ByteLevel", "add_prefix_space", 0, "use_regex", 0);
        json_object_set_new(base, "pre_tokenizer", pre);
        snprintf(p, sizeof p, "%s/rx%zu.json", dir, r);
        LF_ASSERT(json_dump_file(base, p, 0) == 0);
        lf_tokenizer *u = NULL;
        CHECK(lf_tokenizer_load(&u, p) == LF_OK, "regex %s: %s", rx[r], lf_last_error());
        if (!u) continue;
        char what[64];
        snprintf(what, sizeof what, "empty-matching regex %s", rx[r]);
        roundtrip(u, "the quick brown fox", 19, what);
        roundtrip(u, "  a  b\n\nc\t 123 ab12 \xc3\xa9t\xc3\xa9 \xe6\x97\xa5 x\xff", 31, what);
        roundtrip(u, rnd, sizeof rnd, what);
        lf_tokenizer_free(u);
    }
    /* \p{L}* cuts where Hugging Face cuts: words and each space apart */
    snprintf(p, sizeof p, "%s/rx0.json", dir);
    lf_tokenizer *u = NULL, *g = NULL;
    snprintf(corpus, sizeof corpus, "%s/base.json", dir);
    if (lf_tokenizer_load(&u, p) == LF_OK && lf_tokenizer_load(&g, corpus) == LF_OK) {
        lf_ids a = {0}, b = {0};
        lf_tokenizer_encode(u, "the quick", 9, 0, &a);
        const char *parts[] = {"the", " ", "quick"};
        for (int k = 0; k < 3; k++) lf_tokenizer_encode(g, parts[k], strlen(parts[k]), 0, &b);
        CHECK(a.n == b.n && !memcmp(a.ids, b.ids, a.n * 4), "\\p{L}* must cut 'the quick' into the, ' ', quick");
        lf_ids_free(&a);
        lf_ids_free(&b);
    }
    lf_tokenizer_free(u);
    lf_tokenizer_free(g);
    /* behaviors other than Isolated and a second regex are refused by name, not encoded differently */
    const char *refused[][3] = {{"Removed", "0", "behavior 'Removed'"}, {"MergedWithPrevious", "0", "behavior"},
                                {"Isolated", "1", "more than one regex"}};
    for (int k = 0; k < 3; k++) {
        json_t *pre = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s, s:b}]}", "type", "Sequence", "pretokenizers", "type",
                                "Split", "pattern", "Regex", "\\p{L}+", "behavior", refused[k][0], "type", "ByteLevel",
                                "use_regex", refused[k][1][0] == '1');
        json_object_set_new(base, "pre_tokenizer", pre);
        snprintf(p, sizeof p, "%s/refused%d.json", dir, k);
        LF_ASSERT(json_dump_file(base, p, 0) == 0);
        lf_tokenizer *x = NULL;
        CHECK(lf_tokenizer_load(&x, p) != LF_OK && strstr(lf_last_error(), refused[k][2]) && strstr(lf_last_error(), p),
              "Split %s: %s", refused[k][0], x ? "accepted" : lf_last_error());
        lf_tokenizer_free(x);
    }
    json_object_set_new(base, "pre_tokenizer", json_pack("{s:s, s:b}", "type", "ByteLevel", "add_prefix_space", 0));

    /* an added token that takes a byte's id: byte 0x01 used to be encoded as that token, which
     * decodes to "<evil>". A vocabulary may lack a few bytes (SmolLM2 lacks control characters;
     * tokenizers and llama.cpp drop them), so the file loads, but the byte is dropped, never
     * encoded as the added token */
    json_t *added = json_object_get(base, "added_tokens");
    json_array_append_new(added, json_pack("{s:i, s:s, s:b}", "id", 1, "content", "<evil>", "special", 1));
    snprintf(p, sizeof p, "%s/added_byte.json", dir);
    LF_ASSERT(json_dump_file(base, p, 0) == 0);
    lf_tokenizer *x = NULL;
    CHECK(lf_tokenizer_load(&x, p) == LF_OK, "added token over a byte: %s", lf_last_error());
    if (x) {
        lf_ids ids = {0};
        LF_ASSERT(lf_tokenizer_encode(x, "a\x01b", 3, 0, &ids) == LF_OK);
        int has_evil = 0;
        for (size_t i = 0; i < ids.n; i++) has_evil |= ids.ids[i] == 1;
        CHECK(!has_evil, "byte 0x01 encoded as the added token <evil>");
        char *text = NULL;
        size_t tl = 0;
        LF_ASSERT(lf_tokenizer_decode(x, ids.ids, ids.n, &text, &tl) == LF_OK);
        CHECK(!memmem(text, tl, "<evil>", 6) && tl >= 1 && text[0] == 'a', "a\\x01b decodes to '%.*s'", (int)tl, text);
        free(text);
        lf_ids_free(&ids);
    }
    lf_tokenizer_free(x);
    json_decref(base);

    /* item 14: sparse ids (6 KB, ids near 16M) used to commit ~743 MB before any check */
    snprintf(p, sizeof p, "%s/sparse.json", dir);
    f = fopen(p, "w");
    fprintf(f, "{\"model\": {\"type\": \"BPE\", \"vocab\": {");
    for (int i = 0; i < 256; i++) fprintf(f, "\"t%d\": %d, ", i, 16000000 + i);
    fprintf(f, "\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}");
    fclose(f);
    x = NULL;
    CHECK(lf_tokenizer_load(&x, p) != LF_OK && strstr(lf_last_error(), "sparse") && strstr(lf_last_error(), p),
          "sparse ids: %s", x ? "accepted" : lf_last_error());
    lf_tokenizer_free(x);

    /* item 13: merges from a llama2.c tokenizer.bin were O(L^2) per piece: one 65 KB piece took
     * 4.2 s, a 786 KB file with 12 of them did not finish in 20 s; now linear */
    size_t big = 65536;
    char *aa = malloc(12 * big);
    for (size_t i = 0; i < 12 * big; i++) aa[i] = (char)('a' + (i / big) % 2);
    const char *extra[30] = {"b"};
    size_t lens[30] = {1};
    for (int k = 0; k < 12; k++) { /* runs of a and b of about 65 KB */
        extra[1 + k] = aa + (size_t)k * big;
        lens[1 + k] = big - 1 - (size_t)k;
    }
    for (int k = 0; k <= 16; k++) { /* a, aa, aaaa, ... a^65536: the longest is reached by merges */
        extra[13 + k] = aa;
        lens[13 + k] = (size_t)1 << k;
    }
    snprintf(p, sizeof p, "%s/tokenizer.bin", dir);
    write_tokbin(p, extra, lens, 30);
    double t0 = lf_now();
    x = NULL;
    CHECK(lf_tokenizer_load(&x, p) == LF_OK, "900 KB tokenizer.bin: %s", lf_last_error());
    double secs = lf_now() - t0;
    CHECK(secs < 2.0, "900 KB tokenizer.bin with 65 KB pieces loaded in %.2f s (quadratic merge building?)", secs);
    printf("900 KB llama2.c tokenizer.bin with 65 KB pieces: loaded in %.3f s\n", secs);
    if (x) {
        lf_ids ids = {0};
        lf_tokenizer_encode(x, aa, big, 0, &ids); /* " " + a^65536: the space's byte, then one piece */
        CHECK(ids.n == 2 && ids.ids[1] == 259 + 13 + 16, "a^65536 encodes to %zu ids, not [<0x20>, a^65536]", ids.n);
        lf_ids_free(&ids);
    }
    lf_tokenizer_free(x);
    free(aa);

    /* item 15: a FIFO never blocks the loader */
    snprintf(p, sizeof p, "%s/fifo.json", dir);
    if (mkfifo(p, 0600) == 0) {
        x = NULL;
        CHECK(lf_tokenizer_load(&x, p) != LF_OK && strstr(lf_last_error(), "regular"), "FIFO tokenizer: %s", lf_last_error());
        lf_tokenizer *y = NULL;
        char q[4400];
        snprintf(q, sizeof q, "%s/vocab.bpe", dir);
        write_bytes(q, "#version: 0.2\n", 14);
        CHECK(lf_tokenizer_load_gpt2(&y, p, q) != LF_OK, "FIFO encoder.json accepted");
    }
    snprintf(p, sizeof p, "rm -rf '%s'", dir);
    if (system(p)) fprintf(stderr, "warning: cleanup failed\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_tokenizer SHARED_DIR\n");
        return 2;
    }
    snprintf(shared_dir, sizeof shared_dir, "%s", argv[1]);
    char p[4400];
    snprintf(p, sizeof p, "%s/fixtures/tokenizer_ref.json", shared_dir);
    test_training();
    test_hostile();
    if (access(p, R_OK) != 0) {
        printf("skipped: fixture missing (%s): reference-id tests not run\n", p);
        return tu_finish("test_tokenizer");
    }
    json_error_t jerr;
    json_t *ref = json_load_file(p, 0, &jerr);
    LF_ASSERT(ref);
    test_gpt2(ref);
    test_llama(ref);
    json_decref(ref);
    return tu_finish("test_tokenizer");
}
