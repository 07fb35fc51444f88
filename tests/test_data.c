/* Data preparation and loading: shards hold exactly the documents' ids with EOT between them,
 * loss masks follow prompt/completion and classification records, task ids survive, the split is
 * seeded, content-keyed and stratified, the loader is reproducible and resumable, shards from
 * another tokenizer or corrupted shards are refused, and bad inputs (empty, binary, invalid UTF-8,
 * broken JSONL, empty folders) get the documented handling. Optional: the built-in corpora. */
#include "lmforge/data.h"
#include "testutil.h"

#include <jansson.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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

static char *read_all(const char *path, size_t *n) { return lf_read_file(path, n); }

/* the shard's documents decoded back to text, EOT removed, concatenated */
static char *shard_text(lf_tokenizer *tok, const char *path, size_t *len) {
    lf_shard *sh;
    if (lf_shard_open(&sh, path, 0) != LF_OK) return NULL;
    size_t nt = lf_shard_num_tokens(sh), k = 0;
    int32_t *ids = malloc(sizeof *ids * (nt ? nt : 1));
    for (size_t i = 0; i < nt; i++)
        if (lf_shard_token(sh, i) != lf_tokenizer_eos(tok)) ids[k++] = lf_shard_token(sh, i);
    char *txt = NULL;
    lf_tokenizer_decode(tok, ids, k, &txt, len);
    free(ids);
    lf_shard_close(sh);
    return txt;
}

/* issue 8: hostile data inputs */
static void test_hostile(lf_tokenizer *tok) {
    lf_prepare_stats s;
    /* item 10: labels were cut to 255 bytes, so two long labels became one */
    char *rec = malloc(4000), *l1 = malloc(400);
    memset(l1, 'L', 300);
    l1[300] = 0;
    FILE *f = fopen(path_of("long.jsonl"), "w");
    for (int i = 0; i < 6; i++) fprintf(f, "{\"text\": \"doc %d\", \"label\": \"%s%c\"}\n", i, l1, "xy"[i % 2]);
    fclose(f);
    const char *in[] = {path_of("long.jsonl")};
    CHECK(run_prepare(in, 1, "long", NULL, 1, 0.0f, &s) == LF_OK && s.n_labels == 2, "300-byte labels: %d labels (%s)", s.n_labels, lf_last_error());
    size_t ml;
    char *meta = read_all(path_of("long/meta.json"), &ml);
    json_t *m = meta ? json_loads(meta, 0, NULL) : NULL;
    json_t *labels = json_object_get(m, "labels");
    CHECK(json_array_size(labels) == 2 && json_string_length(json_array_get(labels, 0)) == 301, "meta.json labels are cut");
    json_decref(m);
    free(meta);
    size_t tl;
    char *txt = shard_text(tok, path_of("long/train.bin"), &tl);
    CHECK(txt && strstr(txt, "label: LLLL") && strstr(txt, "LLLx") && strstr(txt, "LLLy"), "the answers lost the label ends");
    free(txt);
    free(rec);
    free(l1);

    /* item 13: label interning was a linear search per record: 200,000 labels did not finish in 20 s */
    f = fopen(path_of("many.jsonl"), "w");
    for (int i = 0; i < 200000; i++) fprintf(f, "{\"text\": \"d%d\", \"label\": \"label-%d\"}\n", i, i);
    fclose(f);
    in[0] = path_of("many.jsonl");
    double t0 = lf_now();
    CHECK(run_prepare(in, 1, "many", NULL, 1, 0.05f, &s) == LF_OK && s.n_labels == 200000, "200,000 labels: %s", lf_last_error());
    double secs = lf_now() - t0;
    CHECK(secs < 15.0, "200,000 labels took %.1f s (quadratic interning or split?)", secs);
    printf("200,000 distinct labels prepared in %.2f s\n", secs);

    /* item 11 + 15: sockets, FIFOs and broken or looping links in a folder are skipped with a note
     * naming them; named on the command line they are refused by name; nothing blocks */
    mkdir(path_of("odd"), 0755);
    puts_file("odd/a.txt", "a real document");
    int sock = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path_of("odd/sock"));
    int have_sock = sock >= 0 && strlen(path_of("odd/sock")) < sizeof sa.sun_path &&
                    bind(sock, (struct sockaddr *)&sa, sizeof sa) == 0;
    int have_fifo = mkfifo(path_of("odd/fifo"), 0600) == 0;
    CHECK(symlink("no-such-target", path_of("odd/broken")) == 0, "symlink");
    CHECK(symlink(".", path_of("odd/loop")) == 0, "symlink");
    in[0] = path_of("odd");
    CHECK(run_prepare(in, 1, "oddout", NULL, 1, 0.0f, &s) == LF_OK && s.docs[0] == 1, "folder with a socket: %s", lf_last_error());
    CHECK(s.skipped_files == (size_t)(2 + have_sock + have_fifo), "skipped %zu entries", s.skipped_files);
    if (have_sock) {
        in[0] = path_of("odd/sock");
        CHECK(run_prepare(in, 1, "o", NULL, 1, 0.0f, NULL) == LF_ERR_ARG && strstr(lf_last_error(), "odd/sock: is a socket"),
              "explicit socket: %s", lf_last_error());
    }
    if (have_fifo) {
        in[0] = path_of("odd/fifo");
        CHECK(run_prepare(in, 1, "o", NULL, 1, 0.0f, NULL) != LF_OK && strstr(lf_last_error(), "FIFO"), "explicit FIFO: %s", lf_last_error());
        lf_shard *sh = NULL;
        CHECK(lf_shard_open(&sh, path_of("odd/fifo"), 0) != LF_OK && strstr(lf_last_error(), "FIFO"), "FIFO shard: %s", lf_last_error());
    }
    unlink(path_of("odd/a.txt"));
    in[0] = path_of("odd");
    CHECK(run_prepare(in, 1, "o", NULL, 1, 0.0f, NULL) == LF_ERR_NOTFOUND && strstr(lf_last_error(), "sockets"),
          "folder with only odd entries: %s", lf_last_error());
    if (sock >= 0) close(sock);

    /* item 4: a tokenizer whose regex matches the empty string lost 99% of a file in prepare */
    char tj[4400];
    snprintf(tj, sizeof tj, "%s", path_of("rx/tokenizer.json"));
    mkdir(path_of("rx"), 0755);
    LF_ASSERT(lf_tokenizer_save_json(tok, tj) == LF_OK);
    json_t *j = json_load_file(tj, 0, NULL);
    LF_ASSERT(j);
    json_object_set_new(j, "pre_tokenizer",
                        json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s, s:b}]}", "type", "Sequence", "pretokenizers", "type",
                                  "Split", "pattern", "Regex", "\\p{L}*", "behavior", "Isolated", "type", "ByteLevel", "use_regex", 0));
    LF_ASSERT(json_dump_file(j, tj, 0) == 0);
    json_decref(j);
    const char doc[] = "the quick brown fox jumps over the lazy dog, 12 times.\n\tcaf\xc3\xa9 \xff!";
    put("fox.txt", doc, sizeof doc - 1);
    lf_tokenizer *rt;
    CHECK(lf_tokenizer_load(&rt, tj) == LF_OK, "regex tokenizer: %s", lf_last_error());
    lf_prepare_opts o = {.tokenizer = tj, .inputs = (const char *[]){path_of("fox.txt")}, .n_inputs = 1,
                         .output = path_of("foxout"), .val_fraction = 0, .seed = 1, .quiet = 1};
    CHECK(lf_prepare(&o, &s) == LF_OK, "prepare with an empty-matching regex: %s", lf_last_error());
    txt = rt ? shard_text(rt, path_of("foxout/train.bin"), &tl) : NULL;
    CHECK(txt && tl == sizeof doc - 1 && !memcmp(txt, doc, tl), "prepare lost bytes with an empty-matching regex (%zu of %zu)", txt ? tl : 0, sizeof doc - 1);
    free(txt);
    lf_tokenizer_free(rt);

    /* shard header siblings: a vocabulary over int32, offsets that wrap around when added */
    size_t sn;
    char *sh_bytes = read_all(path_of("long/train.bin"), &sn);
    LF_ASSERT(sh_bytes && sn > 128);
    struct {
        int at;
        uint64_t v;
        int width;
        const char *msg;
    } bad[] = {{40, 0xF0000000u, 4, "vocabulary size"}, {56, UINT64_MAX - 7, 8, "inconsistent"}, {64, UINT64_MAX - 3, 8, "mask"},
               {44, 0x80, 4, "flags"}};
    for (int k = 0; k < 4; k++) {
        char *b = malloc(sn);
        memcpy(b, sh_bytes, sn);
        memcpy(b + bad[k].at, &bad[k].v, (size_t)bad[k].width);
        uint64_t h = 0xcbf29ce484222325ULL; /* a valid checksum: the header checks must stand alone */
        for (size_t i = 128; i < sn; i++) h = (h ^ (unsigned char)b[i]) * 0x100000001b3ULL;
        memcpy(b + 88, &h, 8);
        put("tampered.bin", b, sn);
        free(b);
        lf_shard *sh = NULL;
        CHECK(lf_shard_open(&sh, path_of("tampered.bin"), 0) != LF_OK && strstr(lf_last_error(), bad[k].msg),
              "tampered shard %d: %s", k, sh ? "accepted" : lf_last_error());
        lf_shard_close(sh);
    }
    free(sh_bytes);
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
        test_hostile(tok);
        test_builtin();
    }
    lf_tokenizer_free(tok);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "warning: cleanup failed\n");
    return tu_finish("test_data");
}
