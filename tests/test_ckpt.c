/* Checkpoint tests: Hugging Face directories load and save back bit-identical tensor for tensor
 * (GPT-2 Conv1D transposition and the absent tied head included); sharded checkpoints load like
 * single files; malformed safetensors, config.json and llama2.c files are refused with a message
 * naming the file (never a crash: this test also runs under ASan/UBSan), including a few
 * thousand random mutations of a valid file. */
#include "lmforge/ckpt.h"
#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/lf_test_ckpt_XXXXXX";

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    LF_ASSERT(f);
    LF_ASSERT(fwrite(p, 1, n, f) == n);
    fclose(f);
}

static void write_str(const char *path, const char *s) { write_bytes(path, s, strlen(s)); }

static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    LF_ASSERT(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*n + 1);
    LF_ASSERT(p && fread(p, 1, *n, f) == *n);
    fclose(f);
    return p;
}

/* every tensor of a equals b's bit for bit, and the name sets agree */
static void same_tensors(const char *pa, const char *pb, const char *what) {
    lf_st *a, *b;
    if (lf_st_open(&a, pa) || lf_st_open(&b, pb)) {
        CHECK(0, "%s: cannot open: %s", what, lf_last_error());
        return;
    }
    CHECK(lf_st_count(a) == lf_st_count(b), "%s: %d vs %d tensors", what, lf_st_count(a), lf_st_count(b));
    int diff = 0;
    for (int i = 0; i < lf_st_count(a); i++) {
        int j = lf_st_find(b, lf_st_name(a, i));
        if (j < 0 || lf_st_numel(a, i) != lf_st_numel(b, j) || lf_st_ndim(a, i) != lf_st_ndim(b, j) ||
            memcmp(lf_st_shape(a, i), lf_st_shape(b, j), sizeof(int64_t) * (size_t)lf_st_ndim(a, i))) {
            CHECK(0, "%s: tensor %s missing or reshaped", what, lf_st_name(a, i));
            diff++;
            continue;
        }
        size_t n = lf_st_numel(a, i);
        float *x = tu_alloc(n), *y = tu_alloc(n);
        lf_st_read_f32(a, i, x, n);
        lf_st_read_f32(b, j, y, n);
        if (memcmp(x, y, n * sizeof(float))) {
            CHECK(0, "%s: tensor %s differs", what, lf_st_name(a, i));
            diff++;
        }
        free(x);
        free(y);
    }
    if (!diff) printf("%s: %d tensors bit-identical\n", what, lf_st_count(a));
    lf_st_close(a);
    lf_st_close(b);
}

static void test_roundtrip(const char *fixtures, const char *name) {
    char src[4096], out[4096], a[8400], b[8400];
    snprintf(src, sizeof src, "%s/%s", fixtures, name);
    snprintf(out, sizeof out, "%s/%s", tmpdir, name);
    lf_model *m;
    if (lf_hf_load(&m, src)) {
        CHECK(0, "load %s: %s", src, lf_last_error());
        return;
    }
    CHECK(lf_hf_save(m, out) == LF_OK, "save: %s", lf_last_error());
    snprintf(a, sizeof a, "%s/model.safetensors", src);
    snprintf(b, sizeof b, "%s/model.safetensors", out);
    same_tensors(a, b, name);
    lf_model *m2;
    CHECK(lf_hf_load(&m2, out) == LF_OK, "reload of saved %s: %s", name, lf_last_error());
    if (m2) {
        const lf_config *c1 = lf_model_config(m), *c2 = lf_model_config(m2);
        CHECK(c1->arch == c2->arch && c1->vocab_size == c2->vocab_size && c1->n_kv_head == c2->n_kv_head &&
                  c1->tie_embeddings == c2->tie_embeddings && c1->norm_eps == c2->norm_eps &&
                  c1->rope_theta == c2->rope_theta && c1->d_ff == c2->d_ff,
              "%s: config changed across save/load", name);
        lf_model_free(m2);
    }
    lf_model_free(m);
}

/* split a single-file checkpoint into two shards + index, load both ways, compare */
static void test_sharded(const char *fixtures) {
    char src[4096], dir[4200], p[8800];
    snprintf(src, sizeof src, "%s/hf_llama_tiny", fixtures);
    snprintf(dir, sizeof dir, "%s/sharded", tmpdir);
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/model.safetensors", src);
    lf_st *st;
    LF_ASSERT(lf_st_open(&st, p) == LF_OK);
    int n = lf_st_count(st);
    lf_st_tensor *t = calloc((size_t)n, sizeof *t);
    float **bufs = calloc((size_t)n, sizeof *bufs);
    for (int i = 0; i < n; i++) {
        t[i].name = lf_st_name(st, i);
        t[i].ndim = lf_st_ndim(st, i);
        for (int d = 0; d < t[i].ndim; d++) t[i].shape[d] = lf_st_shape(st, i)[d];
        bufs[i] = tu_alloc(lf_st_numel(st, i));
        lf_st_read_f32(st, i, bufs[i], lf_st_numel(st, i));
        t[i].data = bufs[i];
    }
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    CHECK(lf_st_write(p, t, n / 2, NULL, 0) == LF_OK, "write shard 1: %s", lf_last_error());
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    CHECK(lf_st_write(p, t + n / 2, n - n / 2, NULL, 0) == LF_OK, "write shard 2: %s", lf_last_error());
    char *idx = malloc(65536);
    size_t len = (size_t)snprintf(idx, 65536, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(idx + len, 65536 - len, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "",
                                t[i].name, i < n / 2 ? 1 : 2);
    len += (size_t)snprintf(idx + len, 65536 - len, "}}\n");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_bytes(p, idx, len);
    snprintf(p, sizeof p, "cp '%s/config.json' '%s/'", src, dir);
    LF_ASSERT(system(p) == 0);
    lf_model *a, *b;
    CHECK(lf_hf_load(&a, src) == LF_OK, "load single");
    CHECK(lf_hf_load(&b, dir) == LF_OK, "load sharded: %s", lf_last_error());
    if (a && b) {
        int same = 1;
        for (int i = 0; i < lf_model_num_params(a); i++)
            same &= memcmp(lf_model_param(a, i)->data, lf_model_param(b, i)->data, lf_model_param(a, i)->numel * 4) == 0;
        CHECK(same, "sharded load differs from single-file load");
        if (same) printf("sharded checkpoint (2 shards + index) loads identically\n");
    }
    lf_model_free(a);
    lf_model_free(b);
    for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(t);
    free(idx);
    lf_st_close(st);
}

/* a small valid file: header JSON + data */
static size_t make_st(unsigned char *buf, const char *json, size_t data_len) {
    size_t jl = strlen(json);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)jl >> (8 * i));
    memcpy(buf + 8, json, jl);
    for (size_t i = 0; i < data_len; i++) buf[8 + jl + i] = (unsigned char)i;
    return 8 + jl + data_len;
}

static void expect_bad(const char *label, const unsigned char *bytes, size_t n) {
    char path[4200];
    snprintf(path, sizeof path, "%s/bad.safetensors", tmpdir);
    write_bytes(path, bytes, n);
    lf_st *st = NULL;
    lf_status s = lf_st_open(&st, path);
    CHECK(s != LF_OK && st == NULL, "%s: accepted a malformed file", label);
    CHECK(s == LF_OK || strstr(lf_last_error(), path) != NULL, "%s: error does not name the file: %s", label, lf_last_error());
    if (s != LF_OK && getenv("LF_TEST_VERBOSE")) printf("  %-28s -> %s\n", label, lf_last_error());
    lf_st_close(st);
}

static void test_bad_safetensors(void) {
    unsigned char buf[4096];
    const char *good = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                       "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[16,20]}}";
    size_t n = make_st(buf, good, 20);
    char path[4200];
    snprintf(path, sizeof path, "%s/good.safetensors", tmpdir);
    write_bytes(path, buf, n);
    lf_st *st;
    CHECK(lf_st_open(&st, path) == LF_OK, "valid file refused: %s", lf_last_error());
    if (st) {
        float x[4];
        CHECK(lf_st_read_f32(st, lf_st_find(st, "b"), x, 2) == LF_OK, "bf16 read");
        CHECK(lf_st_read_f32(st, lf_st_find(st, "a"), x, 3) != LF_OK, "wrong element count must be refused");
        int32_t iv[4];
        CHECK(lf_st_read_i32(st, lf_st_find(st, "a"), iv, 4) != LF_OK, "float tensor read as int must be refused");
        lf_st_close(st);
    }
    struct {
        const char *label, *json;
        size_t data;
    } cases[] = {
        {"not JSON", "{\"a\": nope}", 16},
        {"JSON array", "[1, 2, 3]", 0},
        {"unknown dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16},
        {"negative shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16},
        {"shape not ints", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"4\"],\"data_offsets\":[0,16]}}", 16},
        {"offsets past end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8},
        {"offsets reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8},
        {"size vs shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16},
        {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24},
        {"gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16},
        {"trailing bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16},
        {"duplicate key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16},
        {"huge shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,16]}}", 16},
        {"metadata not string", "{\"__metadata__\":{\"k\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8},
        {"missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8},
        {"too many dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t k = make_st(buf, cases[i].json, cases[i].data);
        expect_bad(cases[i].label, buf, k);
    }
    expect_bad("empty file", buf, 0);
    expect_bad("4 bytes", (const unsigned char *)"\x10\0\0\0", 4);
    unsigned char hl[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    expect_bad("header length huge", hl, 10);
    unsigned char hl2[16] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    expect_bad("header past end", hl2, 10);
    size_t k = make_st(buf, good, 20);
    expect_bad("truncated data", buf, k - 3);

    /* mutation fuzzing: open must succeed or fail cleanly; reading what opened must work */
    unsigned char orig[4096], mut[4096];
    size_t on = make_st(orig, good, 20);
    int opened = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(mut, orig, on);
        size_t mn = on;
        int edits = 1 + (int)(lf_hash64(17, (uint64_t)it, 0) % 4);
        for (int e = 0; e < edits; e++) {
            uint64_t h = lf_hash64(17, (uint64_t)it, (uint64_t)e + 1);
            size_t pos = (size_t)(h % mn);
            switch ((h >> 32) % 4) {
            case 0: mut[pos] = (unsigned char)(h >> 40); break;
            case 1: mut[pos] = "0123456789[]{}\",:-"[(h >> 40) % 18]; break;
            case 2: mn = pos + 1; break; /* truncate */
            default: mut[pos] ^= (unsigned char)(1u << ((h >> 40) % 8)); break;
            }
        }
        write_bytes(path, mut, mn);
        lf_st *s2 = NULL;
        if (lf_st_open(&s2, path) == LF_OK) {
            opened++;
            for (int i = 0; i < lf_st_count(s2); i++) {
                size_t ne = lf_st_numel(s2, i);
                float *x = tu_alloc(ne);
                lf_st_read_f32(s2, i, x, ne);
                free(x);
            }
            lf_st_close(s2);
        }
    }
    printf("mutation fuzz: 3000 variants, %d still valid, none crashed\n", opened);
}

static void test_bad_dirs(const char *fixtures) {
    char dir[4200], p[4400];
    lf_model *m = NULL;
    snprintf(dir, sizeof dir, "%s/nodir", tmpdir);
    CHECK(lf_model_load(&m, dir) != LF_OK && strstr(lf_last_error(), dir), "missing path: %s", lf_last_error());
    snprintf(dir, sizeof dir, "%s/empty", tmpdir);
    mkdir(dir, 0755);
    CHECK(lf_hf_load(&m, dir) != LF_OK && strstr(lf_last_error(), "config.json"), "no config: %s", lf_last_error());
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_str(p, "{\"model_type\": \"bert\"}");
    CHECK(lf_hf_load(&m, dir) != LF_OK && strstr(lf_last_error(), "bert"), "bert: %s", lf_last_error());
    write_str(p, "{\"model_type\": \"gpt2\", \"n_embd\": \"big\"}");
    CHECK(lf_hf_load(&m, dir) != LF_OK && strstr(lf_last_error(), "n_embd"), "typed field: %s", lf_last_error());
    write_str(p, "{\"model_type\": \"llama\", \"num_attention_heads\": 4, \"num_key_value_heads\": 3}");
    CHECK(lf_hf_load(&m, dir) != LF_OK && strstr(lf_last_error(), "divide"), "bad gqa: %s", lf_last_error());
    write_str(p, "{\"model_type\": ");
    CHECK(lf_hf_load(&m, dir) != LF_OK && strstr(lf_last_error(), "invalid JSON"), "bad json: %s", lf_last_error());
    /* real weights, config says a different width */
    snprintf(p, sizeof p, "cp '%s/hf_gpt2_tiny/model.safetensors' '%s/'", fixtures, dir);
    LF_ASSERT(system(p) == 0);
    snprintf(p, sizeof p, "%s/config.json", dir);
    const char *cfg = "{\"model_type\": \"gpt2\", \"n_embd\": 32, \"n_layer\": 2, \"n_head\": 2, \"n_positions\": 32}";
    write_str(p, cfg);
    CHECK(lf_hf_load(&m, dir) != LF_OK && strstr(lf_last_error(), "shape"), "shape mismatch: %s", lf_last_error());
    cfg = "{\"model_type\": \"gpt2\", \"n_embd\": 16, \"n_layer\": 3, \"n_head\": 2, \"n_positions\": 32}";
    write_str(p, cfg);
    CHECK(lf_hf_load(&m, dir) != LF_OK && strstr(lf_last_error(), "missing"), "missing tensor: %s", lf_last_error());
    cfg = "{\"model_type\": \"gpt2\", \"n_embd\": 16, \"n_layer\": 1, \"n_head\": 2, \"n_positions\": 32}";
    write_str(p, cfg);
    CHECK(lf_hf_load(&m, dir) != LF_OK && strstr(lf_last_error(), "unexpected"), "extra tensor: %s", lf_last_error());
    /* llama2.c: truncated and nonsense headers */
    size_t n;
    snprintf(p, sizeof p, "%s/llama2c_stories260K/model.bin", fixtures);
    unsigned char *bin = read_bytes(p, &n);
    snprintf(p, sizeof p, "%s/trunc.bin", tmpdir);
    write_bytes(p, bin, n - 100);
    CHECK(lf_llama2c_load(&m, p) != LF_OK && strstr(lf_last_error(), "bytes"), "truncated llama2.c: %s", lf_last_error());
    write_bytes(p, bin, 20);
    CHECK(lf_llama2c_load(&m, p) != LF_OK, "short llama2.c: %s", lf_last_error());
    int32_t hdr[7] = {64, 172, 5, 7, 4, 512, 512}; /* 64 % 7 != 0 */
    memcpy(bin, hdr, sizeof hdr);
    write_bytes(p, bin, n);
    CHECK(lf_llama2c_load(&m, p) != LF_OK && strstr(lf_last_error(), "valid"), "bad llama2.c header: %s", lf_last_error());
    free(bin);
    CHECK(m == NULL, "failed loads must not return a model");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_ckpt FIXTURES_DIR\n");
        return 2;
    }
    LF_ASSERT(mkdtemp(tmpdir));
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/hf_gpt2_tiny/model.safetensors", argv[1]);
    test_bad_safetensors();
    if (access(probe, R_OK) == 0) {
        test_roundtrip(argv[1], "hf_gpt2_tiny");
        test_roundtrip(argv[1], "hf_llama_tiny");
        test_sharded(argv[1]);
        test_bad_dirs(argv[1]);
    } else {
        printf("skipped: fixture missing (%s): round-trip and directory tests not run\n", probe);
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return tu_finish("test_ckpt");
}
