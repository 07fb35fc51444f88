/* Data preparation and loading: shards hold exactly the documents' ids with EOT between them,
 * loss masks follow prompt/completion and classification records, task ids survive, the split is
 * seeded, content-keyed and stratified, the loader is reproducible and resumable, shards from
 * another tokenizer or corrupted shards are refused, and bad inputs (empty, binary, invalid UTF-8,
 * broken JSONL, empty folders) get the documented handling. Optional: the built-in corpora. */
#include "lmforge/data.h"
#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/lf_test_data_XXXXXX";
static const char *gpt2;

static void put(const char *name, const char *content, size_t len) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    LF_ASSERT(f);
    fwrite(content, 1, len, f);
    fclose(f);
}
static void puts_file(const char *name, const char *s) { put(name, s, strlen(s)); }
static char *path_of(const char *name) {
    static char p[8][4400];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static lf_status run_prepare(const char *const *inputs, int n, const char *out, const char *delim, uint64_t seed,
                             float frac, lf_prepare_stats *s) {
    lf_prepare_opts o = {.tokenizer = gpt2, .inputs = inputs, .n_inputs = n, .output = path_of(out),
                         .delimiter = delim, .val_fraction = frac, .seed = seed, .quiet = 1};
    lf_prepare_stats tmp;
    return lf_prepare(&o, s ? s : &tmp);
}

static void test_text_and_shards(lf_tokenizer *tok) {
    mkdir(path_of("docs"), 0755);
    puts_file("docs/a.txt", "In the beginning was the word.");
    puts_file("docs/b.txt", "Second document.\n\nWith a paragraph.");
    puts_file("docs/.hidden", "never read");
    puts_file("docs/empty.txt", "");
    put("docs/bin.dat", "\x7f" "ELF\0\0\0", 7);
    const char *in[] = {path_of("docs")};
    lf_prepare_stats s;
    CHECK(run_prepare(in, 1, "out1", NULL, 1, 0.0f, &s) == LF_OK, "prepare folder: %s", lf_last_error());
    CHECK(s.docs[0] == 2 && s.docs[1] == 0 && s.skipped_files == 2, "folder: %zu train docs, %zu val, %zu skipped", s.docs[0], s.docs[1], s.skipped_files);
    lf_shard *sh;
    CHECK(lf_shard_open(&sh, path_of("out1/train.bin"), lf_tokenizer_fingerprint(tok)) == LF_OK, "open: %s", lf_last_error());
    if (!sh) return;
    /* exactly encode(doc) + EOT per document, in sorted file order */
    const char *texts[] = {"In the beginning was the word.", "Second document.\n\nWith a paragraph."};
    size_t pos = 0;
    int same = lf_shard_num_docs(sh) == 2;
    for (int d = 0; d < 2 && same; d++) {
        lf_ids ids = {0};
        lf_tokenizer_encode(tok, texts[d], strlen(texts[d]), LF_ENC_EOS, &ids);
        same &= lf_shard_doc_start(sh, (size_t)d) == pos;
        for (size_t i = 0; i < ids.n && same; i++) same &= lf_shard_token(sh, pos + i) == ids.ids[i];
        pos += ids.n;
        lf_ids_free(&ids);
    }
    CHECK(same && pos == lf_shard_num_tokens(sh), "shard tokens differ from encode(doc)+EOT");
    CHECK(lf_shard_is_target(sh, 0) && lf_shard_vocab_size(sh) == 50257, "plain text: every token is a target");
    /* loader: random windows are a function of (seed, step); state restores exactly */
    lf_loader *l, *l2;
    int T = 4, B = 2;
    LF_ASSERT(lf_loader_init(&l, sh, B, T, 99, 0) == LF_OK && lf_loader_init(&l2, sh, B, T, 99, 0) == LF_OK);
    int32_t x[8], y[8], x2[8], y2[8];
    lf_loader_next(l, x, y);
    lf_loader_next(l, x, y);
    lf_loader_state st = lf_loader_get_state(l);
    lf_loader_next(l, x, y);
    lf_loader_set_state(l2, st);
    lf_loader_next(l2, x2, y2);
    CHECK(!memcmp(x, x2, sizeof x) && !memcmp(y, y2, sizeof y), "loader: restored state gives a different batch");
    int shifted = 1;
    for (int b = 0; b < B; b++)
        for (int t = 0; t + 1 < T; t++) shifted &= y[b * T + t] == x[b * T + t + 1];
    CHECK(shifted, "targets are not inputs shifted by one");
    lf_loader_free(l);
    lf_loader_free(l2);
    /* sequential: in order, then the next epoch */
    LF_ASSERT(lf_loader_init(&l, sh, 1, T, 0, 1) == LF_OK);
    size_t n = lf_shard_num_tokens(sh), windows = (n - (size_t)T + T - 1) / (size_t)T;
    int ordered = 1;
    for (size_t w = 0; w < windows; w++) {
        lf_loader_next(l, x, y);
        ordered &= x[0] == lf_shard_token(sh, w * T);
    }
    lf_loader_next(l, x, y);
    CHECK(ordered && lf_loader_get_state(l).epoch == 1 && x[0] == lf_shard_token(sh, 0), "sequential loader order / epoch");
    lf_loader_free(l);
    lf_shard_close(sh);
    /* a shard from another tokenizer is refused, with a hint */
    lf_shard *x3 = NULL;
    CHECK(lf_shard_open(&x3, path_of("out1/train.bin"), 0x1234) == LF_ERR_FORMAT && strstr(lf_last_error(), "lmforge prepare"),
          "fingerprint mismatch: %s", lf_last_error());
    /* corruption: a flipped byte, a truncated file */
    char *p = path_of("out1/train.bin");
    FILE *f = fopen(p, "r+b");
    fseek(f, 130, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 130, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    CHECK(lf_shard_open(&x3, p, 0) == LF_ERR_FORMAT && strstr(lf_last_error(), "checksum"), "corrupted shard: %s", lf_last_error());
    CHECK(truncate(p, 100) == 0 && lf_shard_open(&x3, p, 0) == LF_ERR_FORMAT, "truncated shard accepted");
    puts_file("notashard.bin", "hello world, definitely not a shard at all, but long enough to have a header of 128 bytes...........................................");
    CHECK(lf_shard_open(&x3, path_of("notashard.bin"), 0) == LF_ERR_FORMAT && strstr(lf_last_error(), "magic"), "bad magic: %s", lf_last_error());
}

static void test_jsonl(lf_tokenizer *tok) {
    puts_file("sft.jsonl",
              "{\"prompt\": \"Q: 2+2?\\nA:\", \"completion\": \" 4\", \"task\": \"math\"}\n"
              "\n"
              "{\"text\": \"free text for language modelling\", \"task\": \"lm\"}\n"
              "{\"prompt\": \"Say hi:\", \"completion\": \" hi\", \"task\": \"math\"}\n");
    const char *in[] = {path_of("sft.jsonl")};
    lf_prepare_stats s;
    CHECK(run_prepare(in, 1, "out2", NULL, 1, 0.0f, &s) == LF_OK, "prepare jsonl: %s", lf_last_error());
    CHECK(s.docs[0] == 3 && s.n_tasks == 2, "jsonl: %zu docs, %d tasks", s.docs[0], s.n_tasks);
    lf_shard *sh;
    if (lf_shard_open(&sh, path_of("out2/train.bin"), 0)) {
        CHECK(0, "open: %s", lf_last_error());
        return;
    }
    lf_ids p = {0}, c = {0};
    lf_tokenizer_encode(tok, "Q: 2+2?\nA:", 10, 0, &p);
    lf_tokenizer_encode(tok, " 4", 2, LF_ENC_CONTINUE | LF_ENC_EOS, &c);
    int ok = lf_shard_doc_start(sh, 1) == p.n + c.n;
    for (size_t i = 0; i < p.n; i++) ok &= !lf_shard_is_target(sh, i) && lf_shard_token(sh, i) == p.ids[i];
    for (size_t i = 0; i < c.n; i++) ok &= lf_shard_is_target(sh, p.n + i) && lf_shard_token(sh, p.n + i) == c.ids[i];
    CHECK(ok, "prompt/completion: prompt tokens must carry no loss, completion + EOT must");
    size_t d1 = lf_shard_doc_start(sh, 1), d2 = lf_shard_doc_start(sh, 2);
    int all = 1;
    for (size_t i = d1; i < d2; i++) all &= lf_shard_is_target(sh, i);
    CHECK(all, "text records in a masked shard are targets everywhere");
    CHECK(lf_shard_doc_task(sh, 0) == 0 && lf_shard_doc_task(sh, 1) == 1 && lf_shard_doc_task(sh, 2) == 0, "task ids");
    /* the loader turns masked positions into ignored targets */
    lf_loader *l;
    lf_loader_init(&l, sh, 1, (int)p.n, 0, 1);
    int32_t *x = malloc(sizeof(int32_t) * p.n), *y = malloc(sizeof(int32_t) * p.n);
    lf_loader_next(l, x, y);
    int ign = 1;
    for (size_t t = 0; t + 1 < p.n; t++) ign &= y[t] == -1;
    CHECK(ign && y[p.n - 1] == c.ids[0], "loader: prompt targets must be -1, first completion token kept");
    free(x);
    free(y);
    lf_loader_free(l);
    lf_ids_free(&p);
    lf_ids_free(&c);
    lf_shard_close(sh);
    /* broken records: the error names file and line */
    struct {
        const char *content, *expect;
    } bad[] = {
        {"{\"text\": \"ok\"}\n{\"prompt\": \"no completion\"}\n", ":2: \"completion\""},
        {"{\"text\": 42}\n", ":1: \"text\" must be a string"},
        {"{\"text\": \"a\"}\n{\"text\": \"b\"\n", ":2: invalid JSON"},
        {"[1,2]\n", ":1: each line must be a JSON object"},
        {"{\"label\": \"x\"}\n", ":1: record has no"},
        {"{\"text\": \"t\", \"label\": [1]}\n", ":1: \"label\" must be"},
        {"\n\n  \n", "no records"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        puts_file("bad.jsonl", bad[i].content);
        const char *bi[] = {path_of("bad.jsonl")};
        CHECK(run_prepare(bi, 1, "outbad", NULL, 1, 0.0f, NULL) != LF_OK && strstr(lf_last_error(), "bad.jsonl") &&
                  strstr(lf_last_error(), bad[i].expect),
              "bad jsonl %zu: expected '%s' in: %s", i, bad[i].expect, lf_last_error());
    }
}

static void test_split_and_labels(lf_tokenizer *tok) {
    /* 600 labelled records, 3 labels in uneven shares: the split is stratified */
    FILE *f = fopen(path_of("cls.jsonl"), "w");
    const char *labs[] = {"alpha", "beta", "gamma"};
    int per[3] = {0};
    for (int i = 0; i < 600; i++) {
        int lab = i % 10 < 6 ? 0 : i % 10 < 9 ? 1 : 2;
        per[lab]++;
        fprintf(f, "{\"text\": \"record number %d\", \"label\": \"%s\"}\n", i, labs[lab]);
    }
    fclose(f);
    const char *in[] = {path_of("cls.jsonl")};
    lf_prepare_stats s;
    CHECK(run_prepare(in, 1, "out3", NULL, 7, 0.1f, &s) == LF_OK, "prepare labels: %s", lf_last_error());
    CHECK(s.n_labels == 3 && s.docs[1] == 60, "stratified split: %zu validation docs of 600 (want 60)", s.docs[1]);
    lf_shard *sh;
    if (lf_shard_open(&sh, path_of("out3/val.bin"), 0) == LF_OK) {
        /* count labels in validation by decoding each document's answer */
        int cnt[3] = {0};
        for (size_t d = 0; d < lf_shard_num_docs(sh); d++) {
            size_t a = lf_shard_doc_start(sh, d), b = lf_shard_doc_start(sh, d + 1);
            int32_t ids[64];
            size_t n = 0;
            for (size_t i = a; i < b && n < 64; i++)
                if (lf_shard_is_target(sh, i)) ids[n++] = lf_shard_token(sh, i);
            char *txt;
            size_t tl;
            lf_tokenizer_decode(tok, ids, n, &txt, &tl);
            for (int k = 0; k < 3; k++)
                if (strstr(txt, labs[k])) cnt[k]++;
            free(txt);
        }
        CHECK(cnt[0] == 36 && cnt[1] == 18 && cnt[2] == 6, "validation labels %d/%d/%d, want 36/18/6", cnt[0], cnt[1], cnt[2]);
        lf_shard_close(sh);
    }
    /* the split is keyed by content and seed: the same for the same seed, in any input order */
    mkdir(path_of("many"), 0755);
    for (int i = 0; i < 200; i++) {
        char name[64], text[64];
        snprintf(name, sizeof name, "many/%03d.txt", i);
        snprintf(text, sizeof text, "document %d says hello", i);
        puts_file(name, text);
    }
    const char *m[] = {path_of("many")};
    lf_prepare_stats a, b, c;
    run_prepare(m, 1, "out4", NULL, 5, 0.2f, &a);
    run_prepare(m, 1, "out5", NULL, 5, 0.2f, &b);
    run_prepare(m, 1, "out6", NULL, 6, 0.2f, &c);
    CHECK(a.docs[1] == 40 && b.docs[1] == 40 && a.tokens[1] == b.tokens[1], "same seed, same split (%zu/%zu)", a.docs[1], b.docs[1]);
    lf_shard *v5, *v6;
    lf_shard_open(&v5, path_of("out5/val.bin"), 0);
    lf_shard_open(&v6, path_of("out6/val.bin"), 0);
    int differ = lf_shard_num_tokens(v5) != lf_shard_num_tokens(v6);
    for (size_t i = 0; !differ && i < lf_shard_num_tokens(v5); i++) differ = lf_shard_token(v5, i) != lf_shard_token(v6, i);
    CHECK(differ, "another seed should give another split");
    lf_shard_close(v5);
    lf_shard_close(v6);
    /* delimiter splitting */
    puts_file("delim.txt", "one%\ntwo%\n%\nthree\n");
    const char *d[] = {path_of("delim.txt")};
    CHECK(run_prepare(d, 1, "out7", "%\n", 1, 0.0f, &a) == LF_OK && a.docs[0] == 3, "delimiter: %zu docs (want 3)", a.docs[0]);
}

static void test_bad_inputs(lf_tokenizer *tok) {
    puts_file("empty.txt", "");
    const char *e[] = {path_of("empty.txt")};
    CHECK(run_prepare(e, 1, "o", NULL, 1, 0, NULL) != LF_OK && strstr(lf_last_error(), "empty"), "explicit empty file: %s", lf_last_error());
    put("binary.bin", "\x01\x02\0\x03", 4);
    const char *b[] = {path_of("binary.bin")};
    CHECK(run_prepare(b, 1, "o", NULL, 1, 0, NULL) != LF_OK && strstr(lf_last_error(), "binary"), "binary file: %s", lf_last_error());
    mkdir(path_of("nothing"), 0755);
    puts_file("nothing/.x", "hidden");
    puts_file("nothing/e.txt", "");
    const char *n[] = {path_of("nothing")};
    CHECK(run_prepare(n, 1, "o", NULL, 1, 0, NULL) != LF_OK && strstr(lf_last_error(), "no readable"), "empty folder: %s", lf_last_error());
    const char *missing[] = {path_of("no/such/file")};
    CHECK(run_prepare(missing, 1, "o", NULL, 1, 0, NULL) != LF_OK && strstr(lf_last_error(), "no/such/file"), "missing input: %s", lf_last_error());
    CHECK(run_prepare(e, 1, "o", NULL, 1, 1.5f, NULL) == LF_ERR_ARG, "val fraction 1.5 must be refused");
    /* invalid UTF-8 is kept byte for byte */
    const char bad[] = "valid text \xff\xfe then \xc3 broken \xe2\x82";
    put("bad_utf8.txt", bad, sizeof bad - 1);
    const char *u[] = {path_of("bad_utf8.txt")};
    lf_prepare_stats s;
    CHECK(run_prepare(u, 1, "o8", NULL, 1, 0, &s) == LF_OK && s.invalid_utf8_docs == 1, "invalid UTF-8: %s", lf_last_error());
    lf_shard *sh;
    if (lf_shard_open(&sh, path_of("o8/train.bin"), 0) == LF_OK) {
        size_t nt = lf_shard_num_tokens(sh);
        int32_t *ids = malloc(sizeof *ids * nt);
        for (size_t i = 0; i < nt; i++) ids[i] = lf_shard_token(sh, i);
        char *txt;
        size_t tl;
        lf_tokenizer_decode(tok, ids, nt - 1, &txt, &tl); /* without the EOT */
        CHECK(tl == sizeof bad - 1 && !memcmp(txt, bad, tl), "invalid UTF-8 bytes did not survive");
        free(txt);
        free(ids);
        lf_shard_close(sh);
    }
}

static void test_builtin(void) {
    lf_prepare_opts o = {.tokenizer = gpt2, .builtin = "fortunes", .output = path_of("fortunes"), .val_fraction = 0.05f, .seed = 3, .quiet = 1};
    lf_prepare_stats s;
    if (access("/usr/share/games/fortunes/computers", R_OK) != 0) {
        printf("skipped: fortunes package not installed\n");
    } else {
        CHECK(lf_prepare(&o, &s) == LF_OK, "builtin fortunes: %s", lf_last_error());
        size_t total = s.docs[0] + s.docs[1];
        CHECK(s.n_labels == 6 && total > 4000 && total < 6000, "fortunes: %d labels, %zu records", s.n_labels, total);
        CHECK(s.docs[1] > total * 4 / 100 && s.docs[1] < total * 6 / 100, "fortunes validation share %zu/%zu", s.docs[1], total);
        printf("builtin fortunes: %zu train + %zu validation records, 6 labels\n", s.docs[0], s.docs[1]);
    }
    if (system("command -v bible >/dev/null 2>&1") != 0) {
        printf("skipped: bible-kjv-text not installed\n");
        return;
    }
    o.builtin = "kjv";
    o.output = path_of("kjv");
    CHECK(lf_prepare(&o, &s) == LF_OK, "builtin kjv: %s", lf_last_error());
    CHECK(s.docs[0] + s.docs[1] == 1189 && s.bytes > 3900000, "kjv: %zu chapters, %zu bytes", s.docs[0] + s.docs[1], s.bytes);
    printf("builtin kjv: %zu chapters, %.1f MB, %zu tokens\n", s.docs[0] + s.docs[1], s.bytes / 1e6, s.tokens[0] + s.tokens[1]);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_data GPT2_TOKENIZER_DIR [--big]\n");
        return 2;
    }
    gpt2 = argv[1];
    LF_ASSERT(mkdtemp(dir));
    lf_tokenizer *tok;
    if (access(gpt2, R_OK) != 0 || lf_tokenizer_load(&tok, gpt2)) {
        printf("skipped: fixture missing (%s)\n", gpt2);
        return 77;
    }
    if (argc > 2 && !strcmp(argv[2], "--big")) {
        /* one 100 MB line */
        size_t n = 100u << 20;
        char *big = malloc(n);
        const char *w[] = {"lorem ", "ipsum ", "dolor ", "sit ", "amet, ", "consectetur "};
        for (size_t i = 0; i < n;) {
            const char *x = w[lf_hash64(1, 2, i) % 6];
            for (size_t k = 0; x[k] && i < n; k++) big[i++] = x[k];
        }
        put("big.txt", big, n);
        free(big);
        const char *in[] = {path_of("big.txt")};
        lf_prepare_stats s;
        double t0 = lf_now();
        CHECK(run_prepare(in, 1, "big", NULL, 1, 0.0f, &s) == LF_OK, "100 MB single line: %s", lf_last_error());
        printf("100 MB single line: %zu tokens in %.1f s\n", s.tokens[0], lf_now() - t0);
    } else {
        test_text_and_shards(tok);
        test_jsonl(tok);
        test_split_and_labels(tok);
        test_bad_inputs(tok);
        test_builtin();
    }
    lf_tokenizer_free(tok);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "warning: cleanup failed\n");
    return tu_finish("test_data");
}
