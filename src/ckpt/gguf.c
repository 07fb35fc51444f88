/* GGUF (llama.cpp) checkpoints, versions 2 and 3: an untrusted reader (every count, length, type,
 * offset and size is checked against the file before use), dequantization to float32 on load
 * (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K), hyperparameters from the metadata for the llama
 * and gpt2 architectures, and the map from GGUF tensor names to our Hugging Face parameter table.
 * llama.cpp stores attn_q/attn_k rows interleaved for its pairwise RoPE; we rotate halves, so those
 * rows are permuted back on load (the inverse of llama.cpp's convert script). */
#include "lmforge/ckpt.h"
#include "lmforge/quant.h"
#include "gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { GV_U8, GV_I8, GV_U16, GV_I16, GV_U32, GV_I32, GV_F32, GV_BOOL, GV_STR, GV_ARR, GV_U64, GV_I64, GV_F64, GV_N };
static const size_t gv_size[GV_N] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

struct lf_gguf {
    char path[1024];
    const uint8_t *map;
    size_t size;
    uint32_t version;
    uint64_t nkv, ntensor;
    lf_gguf_kv *kv;
    lf_gguf_tensor *t;
    size_t data_off;
};

/* ---- the cursor: every read is checked against the end of the file */
typedef struct {
    const lf_gguf *g;
    size_t pos;
} cur;

static int need(cur *c, size_t n, const char *what) {
    if (n > c->g->size || c->pos > c->g->size - n) {
        lf_set_error("%s: truncated while reading %s at byte %zu (file has %zu bytes)", c->g->path, what, c->pos,
                     c->g->size);
        return -1;
    }
    return 0;
}
static int rd_u32(cur *c, uint32_t *v, const char *what) {
    if (need(c, 4, what)) return -1;
    memcpy(v, c->g->map + c->pos, 4);
    c->pos += 4;
    return 0;
}
static int rd_u64(cur *c, uint64_t *v, const char *what) {
    if (need(c, 8, what)) return -1;
    memcpy(v, c->g->map + c->pos, 8);
    c->pos += 8;
    return 0;
}
static int rd_str(cur *c, const char **s, uint64_t *len, const char *what) {
    if (rd_u64(c, len, what)) return -1;
    if (*len > c->g->size) {
        lf_set_error("%s: %s has length %llu, larger than the file (corrupt?)", c->g->path, what,
                     (unsigned long long)*len);
        return -1;
    }
    if (need(c, (size_t)*len, what)) return -1;
    *s = (const char *)c->g->map + c->pos;
    c->pos += (size_t)*len;
    return 0;
}
/* skip (and bounds-check) one value of type ty; arrays of arrays are refused */
/* Names must be unique and data extents disjoint (llama.cpp goes further and wants them packed in
 * order): two tensors sharing bytes would let one file claim more weights than it holds. Sorted
 * rather than compared pairwise so that a file listing many tensors stays n log n. */
static int by_name(const void *a, const void *b) {
    return strcmp((*(const lf_gguf_tensor *const *)a)->name, (*(const lf_gguf_tensor *const *)b)->name);
}
static int by_offset(const void *a, const void *b) {
    uint64_t x = (*(const lf_gguf_tensor *const *)a)->offset, y = (*(const lf_gguf_tensor *const *)b)->offset;
    return x < y ? -1 : x > y;
}
static int check_tensor_layout(const lf_gguf_tensor *t, uint64_t n, const char *path) {
    const lf_gguf_tensor **ix = malloc(n * sizeof *ix);
    if (!ix) {
        lf_set_error("%s: out of memory for %llu tensor infos", path, (unsigned long long)n);
        return 1;
    }
    for (uint64_t i = 0; i < n; i++) ix[i] = &t[i];
    int bad = 0;
    qsort(ix, n, sizeof *ix, by_name);
    for (uint64_t i = 1; i < n && !bad; i++)
        if (strcmp(ix[i - 1]->name, ix[i]->name) == 0) {
            lf_set_error("%s: tensor '%s' appears twice", path, ix[i]->name);
            bad = 1;
        }
    if (!bad) qsort(ix, n, sizeof *ix, by_offset);
    for (uint64_t i = 1; i < n && !bad; i++)
        if (ix[i]->offset < ix[i - 1]->offset + ix[i - 1]->nbytes) {
            lf_set_error("%s: tensors '%s' and '%s' share bytes of the data section (offsets %llu and %llu; "
                         "a damaged or hand-edited file?)", path, ix[i - 1]->name, ix[i]->name,
                         (unsigned long long)ix[i - 1]->offset, (unsigned long long)ix[i]->offset);
            bad = 1;
        }
    free(ix);
    return bad;
}

static int skip_value(cur *c, uint32_t ty, int depth, const char *key) {
    if (ty >= GV_N) {
        lf_set_error("%s: metadata '%s' has unknown value type %u", c->g->path, key, ty);
        return -1;
    }
    if (ty == GV_STR) {
        const char *s;
        uint64_t n;
        return rd_str(c, &s, &n, key);
    }
    if (ty == GV_ARR) {
        uint32_t at;
        uint64_t n;
        if (depth > 0) {
            lf_set_error("%s: metadata '%s' is a nested array (not supported)", c->g->path, key);
            return -1;
        }
        if (rd_u32(c, &at, key) || rd_u64(c, &n, key)) return -1;
        if (at >= GV_N || at == GV_ARR) {
            lf_set_error("%s: metadata '%s' is an array of unsupported type %u", c->g->path, key, at);
            return -1;
        }
        if (n > c->g->size) {
            lf_set_error("%s: metadata '%s' has %llu elements, more than the file has bytes", c->g->path, key,
                         (unsigned long long)n);
            return -1;
        }
        if (at != GV_STR) return need(c, (size_t)n * gv_size[at], key) ? -1 : (c->pos += (size_t)n * gv_size[at], 0);
        for (uint64_t i = 0; i < n; i++)
            if (skip_value(c, GV_STR, depth + 1, key)) return -1;
        return 0;
    }
    if (need(c, gv_size[ty], key)) return -1;
    c->pos += gv_size[ty];
    return 0;
}

/* ggml tensor types: bytes per block and elements per block */
typedef struct {
    uint32_t id;
    const char *name;
    size_t blk, bytes;
    void (*deq)(const uint8_t *src, float *dst, size_t nblocks);
} qtype;

/* The block dequantizers live with the other block kernels (src/kernels/quant.c); these names
 * stay for the reader's type table and the tests. */
float lf_gguf_f16(uint16_t h) { return lf_fp16_to_fp32(h); }
void lf_gguf_deq_f32(const uint8_t *src, float *dst, size_t n) { lf_dequantize_row(LF_QT_F32, src, dst, (int64_t)n); }
void lf_gguf_deq_f16(const uint8_t *src, float *dst, size_t n) { lf_dequantize_row(LF_QT_F16, src, dst, (int64_t)n); }
void lf_gguf_deq_bf16(const uint8_t *src, float *dst, size_t n) { lf_dequantize_row(LF_QT_BF16, src, dst, (int64_t)n); }
void lf_gguf_deq_q8_0(const uint8_t *src, float *dst, size_t nb) { lf_dequantize_row(LF_QT_Q8_0, src, dst, (int64_t)nb * 32); }
void lf_gguf_deq_q4_0(const uint8_t *src, float *dst, size_t nb) { lf_dequantize_row(LF_QT_Q4_0, src, dst, (int64_t)nb * 32); }
void lf_gguf_deq_q4_1(const uint8_t *src, float *dst, size_t nb) { lf_dequantize_row(LF_QT_Q4_1, src, dst, (int64_t)nb * 32); }
void lf_gguf_deq_q4_k(const uint8_t *src, float *dst, size_t nb) { lf_dequantize_row(LF_QT_Q4_K, src, dst, (int64_t)nb * 256); }
void lf_gguf_deq_q6_k(const uint8_t *src, float *dst, size_t nb) { lf_dequantize_row(LF_QT_Q6_K, src, dst, (int64_t)nb * 256); }

static const qtype qtypes[] = {
    {0, "F32", 1, 4, lf_gguf_deq_f32},       {1, "F16", 1, 2, lf_gguf_deq_f16},
    {2, "Q4_0", 32, 18, lf_gguf_deq_q4_0},   {3, "Q4_1", 32, 20, lf_gguf_deq_q4_1},
    {8, "Q8_0", 32, 34, lf_gguf_deq_q8_0},   {12, "Q4_K", 256, 144, lf_gguf_deq_q4_k},
    {14, "Q6_K", 256, 210, lf_gguf_deq_q6_k}, {30, "BF16", 1, 2, lf_gguf_deq_bf16},
};
static const qtype *find_qtype(uint32_t id) {
    for (size_t i = 0; i < sizeof qtypes / sizeof *qtypes; i++)
        if (qtypes[i].id == id) return &qtypes[i];
    return NULL;
}

void lf_gguf_close(lf_gguf *g) {
    if (!g) return;
    if (g->map) munmap((void *)g->map, g->size);
    free(g->kv);
    free(g->t);
    free(g);
}

lf_status lf_gguf_open(lf_gguf **out, const char *path) {
    *out = NULL;
    if (lf_check_regular(path)) return LF_ERR_IO;
    lf_gguf *g = calloc(1, sizeof *g);
    if (!g) return LF_ERR_NOMEM;
    snprintf(g->path, sizeof g->path, "%s", path);
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        lf_set_error("%s: cannot open (%s)", path, strerror(errno));
        if (fd >= 0) close(fd);
        free(g);
        return LF_ERR_IO;
    }
    g->size = (size_t)sb.st_size;
    if (g->size < 24) {
        close(fd);
        free(g);
        lf_set_error("%s: %zu bytes is too short for a GGUF header (24 bytes)", path, (size_t)sb.st_size);
        return LF_ERR_FORMAT;
    }
    void *mp = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (mp == MAP_FAILED) {
        lf_set_error("%s: cannot map (%s)", path, strerror(errno));
        free(g);
        return LF_ERR_IO;
    }
    g->map = mp;
    lf_status st = LF_ERR_FORMAT;
    cur c = {g, 0};
    if (memcmp(g->map, "GGUF", 4) != 0) {
        lf_set_error("%s: not a GGUF file (bad magic)", path);
        goto fail;
    }
    c.pos = 4;
    rd_u32(&c, &g->version, "version");
    if (g->version != 2 && g->version != 3) {
        lf_set_error("%s: GGUF version %u is not supported (2 or 3)", path, g->version);
        goto fail;
    }
    rd_u64(&c, &g->ntensor, "tensor count");
    rd_u64(&c, &g->nkv, "metadata count");
    /* each key-value takes at least 13 bytes, each tensor info at least 24: bound the counts by the
     * file before allocating */
    if (g->nkv > g->size / 13 || g->ntensor > g->size / 24) {
        lf_set_error("%s: header claims %llu tensors and %llu metadata entries, more than the file can hold "
                     "(corrupt?)", path, (unsigned long long)g->ntensor, (unsigned long long)g->nkv);
        goto fail;
    }
    g->kv = calloc(g->nkv ? g->nkv : 1, sizeof *g->kv);
    g->t = calloc(g->ntensor ? g->ntensor : 1, sizeof *g->t);
    if (!g->kv || !g->t) {
        st = LF_ERR_NOMEM;
        goto fail;
    }
    uint64_t align = 32;
    for (uint64_t i = 0; i < g->nkv; i++) {
        lf_gguf_kv *kv = &g->kv[i];
        uint64_t kl;
        if (rd_str(&c, &kv->key, &kl, "metadata key") || rd_u32(&c, &kv->type, "metadata type")) goto fail;
        if (kl > 255) {
            lf_set_error("%s: metadata key %llu is %llu bytes long (corrupt?)", path, (unsigned long long)i,
                         (unsigned long long)kl);
            goto fail;
        }
        kv->key_len = (int)kl;
        char key[256];
        memcpy(key, kv->key, (size_t)kl);
        key[kl] = 0;
        kv->val = g->map + c.pos;
        if (kv->type == GV_ARR && c.pos + 12 <= g->size) {
            memcpy(&kv->arr_type, g->map + c.pos, 4);
            memcpy(&kv->n, g->map + c.pos + 4, 8);
        }
        if (skip_value(&c, kv->type, 0, key)) goto fail;
        kv->val_end = g->map + c.pos;
        if (strcmp(key, "general.alignment") == 0) {
            uint32_t a;
            if (kv->type != GV_U32) {
                lf_set_error("%s: general.alignment must be a uint32", path);
                goto fail;
            }
            memcpy(&a, kv->val, 4);
            if (a == 0 || (a & (a - 1)) || a > 65536) {
                lf_set_error("%s: general.alignment = %u is not a power of two up to 65536", path, a);
                goto fail;
            }
            align = a;
        }
    }
    for (uint64_t i = 0; i < g->ntensor; i++) {
        lf_gguf_tensor *t = &g->t[i];
        uint64_t nl;
        const char *nm;
        uint32_t nd;
        if (rd_str(&c, &nm, &nl, "tensor name") || rd_u32(&c, &nd, "tensor dims")) goto fail;
        if (nl == 0 || nl >= sizeof t->name) {
            lf_set_error("%s: tensor %llu has a name of %llu bytes (1 to %zu)", path, (unsigned long long)i,
                         (unsigned long long)nl, sizeof t->name - 1);
            goto fail;
        }
        memcpy(t->name, nm, (size_t)nl);
        t->name[nl] = 0;
        if (nd < 1 || nd > 4) {
            lf_set_error("%s: tensor '%s' has %u dimensions (1 to 4)", path, t->name, nd);
            goto fail;
        }
        t->ndim = (int)nd;
        uint64_t numel = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t n;
            if (rd_u64(&c, &n, "tensor shape")) goto fail;
            if (n == 0 || n > ((uint64_t)1 << 40) || numel > ((uint64_t)1 << 40) / n) {
                lf_set_error("%s: tensor '%s' dimension %u = %llu is out of range", path, t->name, d,
                             (unsigned long long)n);
                goto fail;
            }
            t->ne[d] = (int64_t)n;
            numel *= n;
        }
        t->numel = (size_t)numel;
        uint32_t ty;
        uint64_t off;
        if (rd_u32(&c, &ty, "tensor type") || rd_u64(&c, &off, "tensor offset")) goto fail;
        const qtype *q = find_qtype(ty);
        if (!q) {
            lf_set_error("%s: tensor '%s' has ggml type %u, which lmforge cannot dequantize (F32, F16, BF16, Q8_0, "
                         "Q4_0, Q4_1, Q4_K, Q6_K)", path, t->name, ty);
            goto fail;
        }
        if ((uint64_t)t->ne[0] % q->blk) {
            lf_set_error("%s: tensor '%s' rows of %lld are not whole %s blocks of %zu", path, t->name,
                         (long long)t->ne[0], q->name, q->blk);
            goto fail;
        }
        t->type = ty;
        t->type_name = q->name;
        t->offset = off;
        t->nbytes = (size_t)(numel / q->blk) * q->bytes;
    }
    g->data_off = (c.pos + align - 1) / align * align;
    if (g->data_off > g->size && g->ntensor) { /* a vocabulary-only file may end without the padding */
        lf_set_error("%s: truncated before the tensor data", path);
        goto fail;
    }
    for (uint64_t i = 0; i < g->ntensor; i++) {
        lf_gguf_tensor *t = &g->t[i];
        size_t room = g->size - g->data_off;
        if (t->offset % align || t->offset > room || t->nbytes > room - t->offset) {
            lf_set_error("%s: tensor '%s' (%zu bytes at data offset %llu) lies outside the file or is misaligned "
                         "(truncated?)", path, t->name, t->nbytes, (unsigned long long)t->offset);
            goto fail;
        }
        t->data = g->map + g->data_off + t->offset;
    }
    if (g->ntensor > 1 && check_tensor_layout(g->t, g->ntensor, path)) goto fail;
    *out = g;
    return LF_OK;
fail:
    lf_gguf_close(g);
    return st;
}

int lf_gguf_num_kv(const lf_gguf *g) { return (int)g->nkv; }
const lf_gguf_kv *lf_gguf_kv_at(const lf_gguf *g, int i) { return &g->kv[i]; }
int lf_gguf_num_tensors(const lf_gguf *g) { return (int)g->ntensor; }
const lf_gguf_tensor *lf_gguf_tensor_at(const lf_gguf *g, int i) { return &g->t[i]; }
const char *lf_gguf_path(const lf_gguf *g) { return g->path; }

const lf_gguf_kv *lf_gguf_find_kv(const lf_gguf *g, const char *key) {
    size_t kl = strlen(key);
    for (uint64_t i = 0; i < g->nkv; i++)
        if ((size_t)g->kv[i].key_len == kl && memcmp(g->kv[i].key, key, kl) == 0) return &g->kv[i];
    return NULL;
}
const lf_gguf_tensor *lf_gguf_find_tensor(const lf_gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->ntensor; i++)
        if (strcmp(g->t[i].name, name) == 0) return &g->t[i];
    return NULL;
}

/* an integer-typed metadata value; absent → 1 with *out = def; wrong type or range → -1 */
int lf_gguf_get_int(const lf_gguf *g, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out) {
    const lf_gguf_kv *kv = lf_gguf_find_kv(g, key);
    *out = def;
    if (!kv) return 1;
    const uint8_t *p = kv->val;
    int64_t v;
    switch (kv->type) {
    case GV_U8: v = p[0]; break;
    case GV_I8: v = (int8_t)p[0]; break;
    case GV_U16: { uint16_t x; memcpy(&x, p, 2); v = x; break; }
    case GV_I16: { int16_t x; memcpy(&x, p, 2); v = x; break; }
    case GV_U32: { uint32_t x; memcpy(&x, p, 4); v = x; break; }
    case GV_I32: { int32_t x; memcpy(&x, p, 4); v = x; break; }
    case GV_BOOL: v = p[0] != 0; break;
    case GV_U64: { uint64_t x; memcpy(&x, p, 8); v = x > INT64_MAX ? -1 : (int64_t)x; if (x > INT64_MAX) goto range; break; }
    case GV_I64: memcpy(&v, p, 8); break;
    default:
        lf_set_error("%s: metadata '%s' must be an integer", g->path, key);
        return -1;
    }
    if (v < lo || v > hi) {
    range:
        lf_set_error("%s: metadata '%s' is out of range [%lld, %lld]", g->path, key, (long long)lo, (long long)hi);
        return -1;
    }
    *out = v;
    return 0;
}
int lf_gguf_get_float(const lf_gguf *g, const char *key, double def, double *out) {
    const lf_gguf_kv *kv = lf_gguf_find_kv(g, key);
    *out = def;
    if (!kv) return 1;
    double v;
    if (kv->type == GV_F32) { float f; memcpy(&f, kv->val, 4); v = f; }
    else if (kv->type == GV_F64) memcpy(&v, kv->val, 8);
    else {
        int64_t i;
        if (lf_gguf_get_int(g, key, 0, INT64_MIN, INT64_MAX, &i)) {
            lf_set_error("%s: metadata '%s' must be a number", g->path, key);
            return -1;
        }
        v = (double)i;
    }
    if (!isfinite(v)) {
        lf_set_error("%s: metadata '%s' must be finite", g->path, key);
        return -1;
    }
    *out = v;
    return 0;
}
/* a string value (not NUL-terminated) or NULL */
const char *lf_gguf_get_str(const lf_gguf *g, const char *key, size_t *len) {
    const lf_gguf_kv *kv = lf_gguf_find_kv(g, key);
    if (!kv || kv->type != GV_STR) return NULL;
    uint64_t n;
    memcpy(&n, kv->val, 8);
    *len = (size_t)n;
    return (const char *)kv->val + 8;
}

lf_status lf_gguf_dequantize(const lf_gguf *g, const lf_gguf_tensor *t, float *dst) {
    const qtype *q = find_qtype(t->type);
    if (!q) {
        lf_set_error("%s: tensor '%s' has an unsupported type", g->path, t->name);
        return LF_ERR_FORMAT;
    }
    q->deq(t->data, dst, t->numel / q->blk);
    return LF_OK;
}

/* ---- model loading */
static int streq(const char *s, size_t n, const char *lit) { return s && strlen(lit) == n && memcmp(s, lit, n) == 0; }

static lf_status read_config(const lf_gguf *g, lf_config *c) {
    size_t al = 0;
    const char *arch = lf_gguf_get_str(g, "general.architecture", &al);
    const char *pfx;
    if (streq(arch, al, "llama")) {
        lf_config_defaults(c, LF_ARCH_LLAMA);
        pfx = "llama";
    } else if (streq(arch, al, "gpt2")) {
        lf_config_defaults(c, LF_ARCH_GPT2);
        pfx = "gpt2";
    } else {
        lf_set_error("%s: general.architecture is %s%.*s%s (lmforge reads llama and gpt2)", g->path, arch ? "'" : "",
                     arch ? (int)(al > 64 ? 64 : al) : 7, arch ? arch : "missing", arch ? "'" : "");
        return LF_ERR_FORMAT;
    }
    char k[128];
    int64_t v;
#define GI(name, field, lo, hi, required)                                                                   \
    snprintf(k, sizeof k, "%s.%s", pfx, name);                                                            \
    {                                                                                                     \
        int r = lf_gguf_get_int(g, k, c->field, lo, hi, &v);                                              \
        if (r < 0) return LF_ERR_FORMAT;                                                                  \
        if (r > 0 && required) {                                                                          \
            lf_set_error("%s: metadata '%s' is missing", g->path, k);                                     \
            return LF_ERR_FORMAT;                                                                         \
        }                                                                                                 \
        c->field = (int)v;                                                                                \
    }
    GI("block_count", n_layer, 1, 1024, 1);
    GI("embedding_length", d_model, 1, 65536, 1);
    GI("attention.head_count", n_head, 1, 4096, 1);
    c->n_kv_head = c->n_head;
    c->d_ff = 4 * c->d_model;
    GI("feed_forward_length", d_ff, 1, 1 << 20, 0);
    GI("context_length", max_seq, 1, 1 << 20, 0);
    if (c->arch == LF_ARCH_LLAMA) { GI("attention.head_count_kv", n_kv_head, 1, 4096, 0); }
#undef GI
    double d;
    snprintf(k, sizeof k, "%s.attention.%s", pfx, c->arch == LF_ARCH_LLAMA ? "layer_norm_rms_epsilon" : "layer_norm_epsilon");
    if (lf_gguf_get_float(g, k, c->norm_eps, &d) < 0) return LF_ERR_FORMAT;
    c->norm_eps = (float)d;
    snprintf(k, sizeof k, "%s.rope.freq_base", pfx);
    if (lf_gguf_get_float(g, k, c->arch == LF_ARCH_LLAMA ? 10000.0 : c->rope_theta, &d) < 0) return LF_ERR_FORMAT;
    c->rope_theta = (float)d;
    /* heads may be narrower or wider than embedding_length / head_count (attention.key_length) */
    int64_t kl, vl;
    snprintf(k, sizeof k, "%s.attention.key_length", pfx);
    int has_kl = lf_gguf_get_int(g, k, 0, 1, 65536, &kl);
    snprintf(k, sizeof k, "%s.attention.value_length", pfx);
    if (has_kl < 0 || lf_gguf_get_int(g, k, kl, 1, 65536, &vl) < 0) return LF_ERR_FORMAT;
    if (has_kl == 0 && vl != kl) {
        lf_set_error("%s: attention.key_length %lld differs from value_length %lld (lmforge needs them equal)", g->path,
                     (long long)kl, (long long)vl);
        return LF_ERR_FORMAT;
    }
    if ((has_kl != 0 && c->d_model % c->n_head) || c->n_head % c->n_kv_head) {
        lf_set_error("%s: %d heads do not divide embedding_length %d (or %d kv heads do not divide them)", g->path,
                     c->n_head, c->d_model, c->n_kv_head);
        return LF_ERR_FORMAT;
    }
    c->head_dim = has_kl == 0 ? (int)kl : c->d_model / c->n_head;
    const lf_gguf_tensor *emb = lf_gguf_find_tensor(g, "token_embd.weight");
    if (!emb || emb->ndim != 2) {
        lf_set_error("%s: tensor 'token_embd.weight' is missing or not 2-D", g->path);
        return LF_ERR_FORMAT;
    }
    if (emb->ne[1] > (1 << 24)) {
        lf_set_error("%s: vocabulary of %lld is too large", g->path, (long long)emb->ne[1]);
        return LF_ERR_FORMAT;
    }
    c->vocab_size = (int)emb->ne[1];
    const lf_gguf_kv *toks = lf_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (toks && toks->type == GV_ARR && toks->n != (uint64_t)c->vocab_size) {
        lf_set_error("%s: %llu tokenizer tokens but token_embd has %d rows", g->path, (unsigned long long)toks->n,
                     c->vocab_size);
        return LF_ERR_FORMAT;
    }
    c->tie_embeddings = lf_gguf_find_tensor(g, "output.weight") == NULL;
    if (lf_gguf_get_int(g, "tokenizer.ggml.bos_token_id", -1, -1, c->vocab_size - 1, &v) < 0) return LF_ERR_FORMAT;
    c->bos_id = (int)v;
    if (lf_gguf_get_int(g, "tokenizer.ggml.eos_token_id", -1, -1, c->vocab_size - 1, &v) < 0) return LF_ERR_FORMAT;
    c->eos_id = (int)v;
    return lf_config_check(c);
}

int lf_gguf_name(const lf_config *c, const char *hf, char *out, size_t n, int *perm_heads) {
    int l;
    char rest[128];
    *perm_heads = 0;
    static const char *const map_llama[][2] = {
        {"input_layernorm.weight", "attn_norm.weight"}, {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"},    {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.o_proj.weight", "attn_output.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},     {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"}};
    static const char *const map_gpt2[][2] = {
        {"ln_1.weight", "attn_norm.weight"},     {"ln_1.bias", "attn_norm.bias"},
        {"attn.c_attn.weight", "attn_qkv.weight"}, {"attn.c_attn.bias", "attn_qkv.bias"},
        {"attn.c_proj.weight", "attn_output.weight"}, {"attn.c_proj.bias", "attn_output.bias"},
        {"ln_2.weight", "ffn_norm.weight"},      {"ln_2.bias", "ffn_norm.bias"},
        {"mlp.c_fc.weight", "ffn_up.weight"},    {"mlp.c_fc.bias", "ffn_up.bias"},
        {"mlp.c_proj.weight", "ffn_down.weight"}, {"mlp.c_proj.bias", "ffn_down.bias"}};
    static const char *const top[][2] = {
        {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},                {"transformer.wte.weight", "token_embd.weight"},
        {"transformer.wpe.weight", "position_embd.weight"}, {"transformer.ln_f.weight", "output_norm.weight"},
        {"transformer.ln_f.bias", "output_norm.bias"}};
    for (size_t i = 0; i < sizeof top / sizeof *top; i++)
        if (strcmp(hf, top[i][0]) == 0) return snprintf(out, n, "%s", top[i][1]), 0;
    if (sscanf(hf, "model.layers.%d.%127s", &l, rest) == 2 || sscanf(hf, "transformer.h.%d.%127s", &l, rest) == 2) {
        int llama = c->arch == LF_ARCH_LLAMA;
        size_t cnt = llama ? sizeof map_llama / sizeof *map_llama : sizeof map_gpt2 / sizeof *map_gpt2;
        for (size_t i = 0; i < cnt; i++) {
            const char *const *e = llama ? map_llama[i] : map_gpt2[i];
            if (strcmp(rest, e[0]) == 0) {
                snprintf(out, n, "blk.%d.%s", l, e[1]);
                if (llama && strcmp(e[1], "attn_q.weight") == 0) *perm_heads = c->n_head;
                if (llama && strcmp(e[1], "attn_k.weight") == 0) *perm_heads = c->n_kv_head;
                return 0;
            }
        }
    }
    return -1;
}

void lf_gguf_permute_rows(void *dst, const void *src, int nheads, size_t rows, size_t row_bytes, int to_gguf) {
    size_t hd = rows / (size_t)nheads, half = hd / 2;
    uint8_t *d = dst;
    const uint8_t *s = src;
    for (size_t h = 0; h < (size_t)nheads; h++)
        for (size_t p = 0; p < half; p++)
            for (size_t k = 0; k < 2; k++) {
                size_t ours = h * hd + k * half + p, file = h * hd + 2 * p + k;
                memcpy(d + (to_gguf ? file : ours) * row_bytes, s + (to_gguf ? ours : file) * row_bytes, row_bytes);
            }
}

/* Keeping a weight encoded: the model gets a copy of the tensor's bytes (rows back in our q/k order;
 * rows hold whole blocks, so they move whole), after a check that every value decodes finite (the
 * file is untrusted, and a NaN scale would otherwise surface only as NaN logits). */
static lf_status keep_encoded(lf_model *m, lf_param *prm, const lf_gguf *g, const lf_gguf_tensor *t, int perm, int act_q8) {
    const qtype *q = find_qtype(t->type);
    size_t rows = (size_t)t->ne[1], rb = t->nbytes / rows, bpr = (size_t)t->ne[0] / q->blk, chunk = 64;
    float *tmp = malloc(chunk * (size_t)t->ne[0] * sizeof(float));
    uint8_t *copy = malloc(t->nbytes);
    if (!tmp || !copy) {
        free(tmp);
        free(copy);
        lf_set_error("%s: out of memory for tensor '%s' (%zu bytes)", g->path, t->name, t->nbytes);
        return LF_ERR_NOMEM;
    }
    for (size_t r = 0; r < rows; r += chunk) {
        size_t n = rows - r < chunk ? rows - r : chunk, vals = n * (size_t)t->ne[0];
        q->deq(t->data + r * rb, tmp, n * bpr);
        for (size_t j = 0; j < vals; j++)
            if (!isfinite(tmp[j])) {
                lf_set_error("%s: tensor '%s' decodes to %s at index %zu: refusing a model with non-finite weights",
                             g->path, t->name, isnan(tmp[j]) ? "NaN" : "an infinite value", r * (size_t)t->ne[0] + j);
                free(tmp);
                free(copy);
                return LF_ERR_FORMAT;
            }
    }
    free(tmp);
    if (perm) lf_gguf_permute_rows(copy, t->data, perm, rows, rb, 0);
    else memcpy(copy, t->data, t->nbytes);
    lf_status st = lf_model_set_storage(m, prm, lf_quant_storage_ops_act((lf_qtype)t->type, act_q8), copy, t->nbytes);
    if (st) free(copy);
    return st;
}

/* the block types a weight may stay in, when quant.c has a storage type for them */
static int keepable(const lf_param *prm, const char *gname, const lf_gguf_tensor *t) {
    int blocky = t->type == LF_QT_Q8_0 || t->type == LF_QT_Q4_0 || t->type == LF_QT_Q4_1 || t->type == LF_QT_Q4_K ||
                 t->type == LF_QT_Q6_K;
    const lf_storage_ops *ops = blocky ? lf_quant_storage_ops((lf_qtype)t->type) : NULL;
    if (!ops || prm->ndim != 2) return 0;
    if (!strcmp(gname, "token_embd.weight")) return ops->lookup != NULL; /* and with it a tied head */
    return prm->kind == LF_KIND_WEIGHT;
}

/* A sequence-classification head (gguf_write.c writes score.weight as llama.cpp's cls.output.weight,
 * ne = [d_model, labels], its label names in {arch}.classifier.output_labels): added to the model
 * as score.weight for src/tech/seqcls.c, in float32. */
static lf_status load_cls_head(lf_model *m, const lf_gguf *g, const lf_config *cfg) {
    const lf_gguf_tensor *t = lf_gguf_find_tensor(g, "cls.output.weight");
    if (!t) return LF_OK;
    if (t->ndim != 2 || t->ne[0] != cfg->d_model || t->ne[1] < 1 || t->ne[1] > 1000000) {
        lf_set_error("%s: tensor 'cls.output.weight' has shape [%lld, %lld] (%d dims); a classification head is "
                     "[%d, labels]", g->path, (long long)t->ne[0], (long long)(t->ndim > 1 ? t->ne[1] : 1), t->ndim, cfg->d_model);
        return LF_ERR_FORMAT;
    }
    char key[96];
    snprintf(key, sizeof key, "%s.classifier.output_labels", cfg->arch == LF_ARCH_LLAMA ? "llama" : "gpt2");
    const lf_gguf_kv *kv = lf_gguf_find_kv(g, key);
    if (kv && (kv->type != GV_ARR || kv->arr_type != GV_STR || kv->n != (uint64_t)t->ne[1])) {
        lf_set_error("%s: '%s' lists %llu labels for a classification head of %lld (or is not an array of strings)", g->path,
                     key, (unsigned long long)kv->n, (long long)t->ne[1]);
        return LF_ERR_FORMAT;
    }
    lf_param *w;
    lf_status st = lf_model_add_param(m, "score.weight", t->ne[1], cfg->d_model, LF_KIND_WEIGHT, LF_PARAM_TRAINABLE | LF_PARAM_DECAY, &w);
    return st ? st : lf_gguf_dequantize(g, t, w->data);
}

lf_status lf_gguf_load_model(lf_model **out, const lf_gguf *g) { return lf_gguf_load_model_with(out, g, NULL); }

lf_status lf_gguf_load_model_with(lf_model **out, const lf_gguf *g, const lf_gguf_load_opts *o) {
    *out = NULL;
    lf_config cfg;
    lf_status st = read_config(g, &cfg);
    if (st) {
        if (strncmp(lf_last_error(), g->path, strlen(g->path)) != 0) {
            char msg[1200];
            snprintf(msg, sizeof msg, "%s: %s", g->path, lf_last_error());
            lf_set_error("%s", msg);
        }
        return st;
    }
    lf_model *m = NULL;
    if ((st = lf_model_init_table(&m, &cfg))) return st;
    int keep = o && o->keep_quantized;
    /* pass 0: names and shapes; pass 1: weights kept encoded; pass 2: the rest dequantized into the
     * float32 block, which leaves out the kept ones */
    for (int pass = 0; pass < 3 && !st; pass++)
        for (int p = 0; p < lf_model_num_params(m) && !st; p++) {
            if (pass == 1 && !keep) break;
            if (pass == 2 && p == 0 && (st = lf_model_alloc_weights(m))) break;
            lf_param *prm = lf_model_param(m, p);
            char gn[160];
            int perm = 0;
            if (lf_gguf_name(&cfg, prm->name, gn, sizeof gn, &perm) != 0) {
                lf_set_error("%s: no GGUF tensor corresponds to parameter '%s'", g->path, prm->name);
                st = LF_ERR_FORMAT;
                break;
            }
            const lf_gguf_tensor *t = lf_gguf_find_tensor(g, gn);
            if (!t) {
                lf_set_error("%s: tensor '%s' (for '%s') is missing", g->path, gn, prm->name);
                st = LF_ERR_FORMAT;
                break;
            }
            /* GGUF shapes are innermost first: ne[0] = columns */
            int64_t rows = prm->ndim == 2 ? prm->shape[0] : 1, cols = prm->ndim == 2 ? prm->shape[1] : prm->shape[0];
            if (pass == 0) {
                if (t->ndim != prm->ndim || t->ne[0] != cols || (t->ndim == 2 && t->ne[1] != rows)) {
                    lf_set_error("%s: tensor '%s' has shape [%lld, %lld] (%d dims) but the metadata implies [%lld, %lld]",
                                 g->path, gn, (long long)t->ne[0], (long long)(t->ndim > 1 ? t->ne[1] : 1), t->ndim,
                                 (long long)cols, (long long)rows);
                    st = LF_ERR_FORMAT;
                } else if (perm && (rows % perm || (rows / perm) % 2)) {
                    lf_set_error("%s: tensor '%s' rows %lld do not split into %d heads of even size", g->path, gn,
                                 (long long)rows, perm);
                    st = LF_ERR_FORMAT;
                }
                continue;
            }
            if (pass == 1) {
                if (keepable(prm, gn, t)) st = keep_encoded(m, prm, g, t, perm, o->act_q8);
                continue;
            }
            if (prm->qops) continue;
            if (!perm) {
                st = lf_gguf_dequantize(g, t, prm->data);
            } else {
                float *tmp = malloc(prm->numel * sizeof(float));
                if (!tmp) { st = LF_ERR_NOMEM; break; }
                st = lf_gguf_dequantize(g, t, tmp);
                if (!st) lf_gguf_permute_rows(prm->data, tmp, perm, (size_t)rows, sizeof(float) * (size_t)cols, 0);
                free(tmp);
            }
        }
    if (!st) st = load_cls_head(m, g, &cfg);
    if (!st) st = lf_model_check_finite(m, g->path);
    if (st) {
        lf_model_free(m);
        return st;
    }
    *out = m;
    return LF_OK;
}

int lf_is_gguf(const char *path) {
    struct stat sb; /* only regular files are opened: a FIFO would block here */
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return 0;
    char mg[4];
    int ok = read(fd, mg, 4) == 4 && memcmp(mg, "GGUF", 4) == 0;
    close(fd);
    return ok;
}

lf_status lf_gguf_load(lf_model **out, lf_tokenizer **tok, const char *path) { return lf_gguf_load_with(out, tok, path, NULL); }

lf_status lf_gguf_load_with(lf_model **out, lf_tokenizer **tok, const char *path, const lf_gguf_load_opts *o) {
    *out = NULL;
    if (tok) *tok = NULL;
    lf_gguf *g;
    lf_status st = lf_gguf_open(&g, path);
    if (st) return st;
    st = lf_gguf_load_model_with(out, g, o);
    if (!st && tok) {
        st = lf_gguf_tokenizer(tok, g);
        if (st) {
            lf_model_free(*out);
            *out = NULL;
        }
    }
    lf_gguf_close(g);
    return st;
}

/* ---- the tokenizer: tokenizer.ggml.* arrays walked (already bounds-checked by lf_gguf_open) */
static int str_array(const lf_gguf *g, const char *key, const char ***s, size_t **len, uint64_t *n) {
    const lf_gguf_kv *kv = lf_gguf_find_kv(g, key);
    *s = NULL;
    *len = NULL;
    *n = 0;
    if (!kv) return 1;
    if (kv->type != GV_ARR || kv->arr_type != GV_STR) {
        lf_set_error("%s: metadata '%s' must be an array of strings", g->path, key);
        return -1;
    }
    *s = malloc(sizeof **s * (kv->n ? kv->n : 1));
    *len = malloc(sizeof **len * (kv->n ? kv->n : 1));
    if (!*s || !*len) {
        lf_set_error("%s: out of memory reading '%s'", g->path, key);
        return -1;
    }
    const uint8_t *p = kv->val + 12;
    for (uint64_t i = 0; i < kv->n; i++) {
        uint64_t l;
        memcpy(&l, p, 8);
        (*s)[i] = (const char *)p + 8;
        (*len)[i] = (size_t)l;
        p += 8 + l;
    }
    *n = kv->n;
    return 0;
}
static const void *num_array(const lf_gguf *g, const char *key, uint32_t want, uint64_t n, int *bad) {
    const lf_gguf_kv *kv = lf_gguf_find_kv(g, key);
    if (!kv) return NULL;
    if (kv->type != GV_ARR || kv->arr_type != want || kv->n != n) {
        lf_set_error("%s: metadata '%s' must be an array of %llu %s", g->path, key, (unsigned long long)n,
                     want == GV_F32 ? "float32" : "int32");
        *bad = 1;
        return NULL;
    }
    return kv->val + 12;
}

lf_status lf_gguf_tokenizer(lf_tokenizer **out, const lf_gguf *g) {
    *out = NULL;
    lf_tok_gguf_spec s;
    memset(&s, 0, sizeof s);
    s.path = g->path;
    size_t ml = 0, pl = 0;
    const char *model = lf_gguf_get_str(g, "tokenizer.ggml.model", &ml);
    const char *pre = lf_gguf_get_str(g, "tokenizer.ggml.pre", &pl);
    char mbuf[64] = "", pbuf[64] = "";
    if (!model) {
        lf_set_error("%s: no tokenizer in the metadata (tokenizer.ggml.model missing)", g->path);
        return LF_ERR_FORMAT;
    }
    snprintf(mbuf, sizeof mbuf, "%.*s", (int)(ml > 63 ? 63 : ml), model);
    if (!strcmp(mbuf, "no_vocab") || !strcmp(mbuf, "none")) {
        lf_set_error("%s: the file holds no vocabulary (tokenizer.ggml.model = %s): give the tokenizer with --tokenizer",
                     g->path, mbuf);
        return LF_ERR_NOTFOUND;
    }
    if (pre) snprintf(pbuf, sizeof pbuf, "%.*s", (int)(pl > 63 ? 63 : pl), pre);
    s.model = mbuf;
    s.pre = pre ? pbuf : NULL;
    const char **tok = NULL, **mer = NULL;
    size_t *tl = NULL, *mlen = NULL;
    uint64_t nt, nm;
    lf_status st = LF_ERR_FORMAT;
    int32_t *types = NULL;
    float *scores = NULL;
    int r = str_array(g, "tokenizer.ggml.tokens", &tok, &tl, &nt);
    if (r > 0) lf_set_error("%s: tokenizer.ggml.tokens is missing", g->path);
    if (r) goto done;
    if (nt > (1 << 24)) {
        lf_set_error("%s: %llu tokens is too many", g->path, (unsigned long long)nt);
        goto done;
    }
    if (str_array(g, "tokenizer.ggml.merges", &mer, &mlen, &nm) < 0) goto done;
    if (nm > (1 << 24)) {
        lf_set_error("%s: %llu merges is too many", g->path, (unsigned long long)nm);
        goto done;
    }
    int bad = 0;
    const void *ty = num_array(g, "tokenizer.ggml.token_type", GV_I32, nt, &bad);
    const void *sc = num_array(g, "tokenizer.ggml.scores", GV_F32, nt, &bad);
    if (bad) goto done;
    if (ty) {
        if (!(types = malloc(4 * (size_t)nt))) goto nomem;
        memcpy(types, ty, 4 * (size_t)nt);
    }
    if (sc) {
        if (!(scores = malloc(4 * (size_t)nt))) goto nomem;
        memcpy(scores, sc, 4 * (size_t)nt);
    }
    int64_t v;
    s.n = (int)nt;
    s.tok = tok;
    s.tok_len = tl;
    s.types = types;
    s.scores = scores;
    s.n_merges = (int)nm;
    s.merge = mer;
    s.merge_len = mlen;
    if (lf_gguf_get_int(g, "tokenizer.ggml.bos_token_id", -1, -1, (int64_t)nt - 1, &v) < 0) goto done;
    s.bos = (int)v;
    if (lf_gguf_get_int(g, "tokenizer.ggml.eos_token_id", -1, -1, (int64_t)nt - 1, &v) < 0) goto done;
    s.eos = (int)v;
    if (lf_gguf_get_int(g, "tokenizer.ggml.unknown_token_id", -1, -1, (int64_t)nt - 1, &v) < 0) goto done;
    s.unk = (int)v;
    if (lf_gguf_get_int(g, "tokenizer.ggml.add_space_prefix", 1, 0, 1, &v) < 0) goto done;
    s.add_space_prefix = (int)v;
    st = lf_tokenizer_from_gguf(out, &s);
    goto done;
nomem:
    st = LF_ERR_NOMEM;
done:
    free(tok);
    free(tl);
    free(mer);
    free(mlen);
    free(types);
    free(scores);
    return st;
}
