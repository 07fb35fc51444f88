/* GGUF import (llama.cpp's format): a reader that treats the file as untrusted, dequantization
 * of F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q4_K/Q6_K to float32, the Llama and GPT-2 families mapped onto
 * lmforge's parameter table (Hugging Face names; llama.cpp's interleaved-RoPE row order of q/k
 * undone), and the tokenizer rebuilt from the tokenizer.ggml.* metadata as a tokenizer.json.
 *
 * File layout (little-endian): "GGUF", u32 version (2, 3), u64 tensor count, u64 key/value count,
 * the key/values (string key, u32 type, value), the tensor infos (string name, u32 dims, u64 ne[dims]
 * with ne[0] the fastest, u32 ggml type, u64 offset into the data section), then the data section
 * at the next multiple of general.alignment (default 32). Strings are u64 length + bytes. */
#include "lmforge/ckpt.h"
#include "lmforge/tokenizer.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { GT_U8, GT_I8, GT_U16, GT_I16, GT_U32, GT_I32, GT_F32, GT_BOOL, GT_STRING, GT_ARRAY, GT_U64, GT_I64, GT_F64 };

typedef struct {
    const char *s; /* into the mapping, not NUL-terminated */
    size_t len;
} gstr;

typedef struct {
    gstr key;
    uint32_t type;
    const uint8_t *val; /* the value's first byte */
    uint32_t atype;     /* arrays: element type and count */
    uint64_t count;
} gkv;

typedef struct {
    char name[128];
    uint32_t ndim;
    uint64_t ne[4];
    uint32_t type;
    uint64_t offset;
    uint64_t numel;
    size_t nbytes;
} gtensor;

struct lf_gguf {
    const uint8_t *base;
    size_t size;
    gkv *kv;
    uint64_t nkv;
    gtensor *t;
    uint64_t nt;
    size_t data;
    char path[1024];
};

/* ---- ggml block types */
typedef struct {
    const char *name;
    int block;    /* elements per block */
    int bytes;    /* bytes per block */
} gtype_info;

static const gtype_info *type_info(uint32_t t) {
    static const gtype_info f32 = {"F32", 1, 4}, f16 = {"F16", 1, 2}, bf16 = {"BF16", 1, 2}, q4_0 = {"Q4_0", 32, 18},
                            q4_1 = {"Q4_1", 32, 20}, q8_0 = {"Q8_0", 32, 34}, q4_k = {"Q4_K", 256, 144},
                            q6_k = {"Q6_K", 256, 210};
    switch (t) {
    case 0: return &f32;
    case 1: return &f16;
    case 2: return &q4_0;
    case 3: return &q4_1;
    case 8: return &q8_0;
    case 12: return &q4_k;
    case 14: return &q6_k;
    case 30: return &bf16;
    default: return NULL;
    }
}

static float half_to_float(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, bits;
    if (e == 0) {
        if (!m) bits = s;
        else { /* subnormal: normalise */
            e = 113;
            while (!(m & 1024)) {
                m <<= 1;
                e--;
            }
            bits = s | (e << 23) | ((m & 1023) << 13);
        }
    } else if (e == 31) bits = s | 0x7f800000u | (m << 13);
    else bits = s | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

lf_status lf_gguf_dequantize(uint32_t type, const void *src, size_t n, float *dst) {
    const gtype_info *ti = type_info(type);
    if (!ti || n % (size_t)ti->block) {
        lf_set_error("gguf: cannot dequantize %zu values of ggml type %u", n, type);
        return LF_ERR_FORMAT;
    }
    const uint8_t *p = src;
    size_t nb = n / (size_t)ti->block;
    switch (type) {
    case 0: memcpy(dst, src, n * 4); break;
    case 1:
        for (size_t i = 0; i < n; i++) dst[i] = half_to_float(rd16(p + 2 * i));
        break;
    case 30:
        for (size_t i = 0; i < n; i++) {
            uint32_t b = (uint32_t)rd16(p + 2 * i) << 16;
            memcpy(dst + i, &b, 4);
        }
        break;
    case 2: /* d, 16 bytes: low nibbles are elements 0..15, high nibbles 16..31; x = (q - 8) d */
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < nb; b++) {
            const uint8_t *q = p + b * 18;
            float d = half_to_float(rd16(q)), *y = dst + b * 32;
            for (int j = 0; j < 16; j++) {
                y[j] = (float)((q[2 + j] & 0xF) - 8) * d;
                y[j + 16] = (float)((q[2 + j] >> 4) - 8) * d;
            }
        }
        break;
    case 3: /* d, m, 16 bytes; x = q d + m */
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < nb; b++) {
            const uint8_t *q = p + b * 20;
            float d = half_to_float(rd16(q)), m = half_to_float(rd16(q + 2)), *y = dst + b * 32;
            for (int j = 0; j < 16; j++) {
                y[j] = (float)(q[4 + j] & 0xF) * d + m;
                y[j + 16] = (float)(q[4 + j] >> 4) * d + m;
            }
        }
        break;
    case 8: /* d, 32 int8 */
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < nb; b++) {
            const uint8_t *q = p + b * 34;
            float d = half_to_float(rd16(q)), *y = dst + b * 32;
            for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)q[2 + j] * d;
        }
        break;
    case 12: /* d, dmin, 12 bytes of 6-bit scales/mins for 8 sub-blocks of 32, 128 bytes of nibbles */
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < nb; b++) {
            const uint8_t *blk = p + b * 144, *sc = blk + 4, *q = blk + 16;
            float d = half_to_float(rd16(blk)), dmin = half_to_float(rd16(blk + 2)), *y = dst + b * 256;
            for (int c = 0, is = 0; c < 4; c++, is += 2, q += 32) {
                uint8_t s1, m1, s2, m2;
                get_scale_min_k4(is, sc, &s1, &m1);
                get_scale_min_k4(is + 1, sc, &s2, &m2);
                float d1 = d * s1, o1 = dmin * m1, d2 = d * s2, o2 = dmin * m2;
                for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - o1;
                for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - o2;
            }
        }
        break;
    case 14: /* ql[128] low 4 bits, qh[64] high 2 bits, int8 scales[16], d */
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < nb; b++) {
            const uint8_t *blk = p + b * 210, *ql = blk, *qh = blk + 128;
            const int8_t *sc = (const int8_t *)(blk + 192);
            float d = half_to_float(rd16(blk + 208)), *y = dst + b * 256;
            for (int h = 0; h < 2; h++, y += 128, ql += 64, qh += 32, sc += 8)
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * sc[is] * q1;
                    y[l + 32] = d * sc[is + 2] * q2;
                    y[l + 64] = d * sc[is + 4] * q3;
                    y[l + 96] = d * sc[is + 6] * q4;
                }
        }
        break;
    }
    return LF_OK;
}

/* ---- parsing: a cursor that never reads past the end */
typedef struct {
    const uint8_t *p, *end;
    const char *path;
    int bad;
} cur;

static int need(cur *c, size_t n, const char *what) {
    if (c->bad) return 0;
    if ((size_t)(c->end - c->p) < n) {
        lf_set_error("%s: truncated GGUF file (%s runs past the end; a partial download?)", c->path, what);
        c->bad = 1;
        return 0;
    }
    return 1;
}
static uint32_t u32(cur *c, const char *what) {
    if (!need(c, 4, what)) return 0;
    uint32_t v;
    memcpy(&v, c->p, 4);
    c->p += 4;
    return v;
}
static uint64_t u64(cur *c, const char *what) {
    if (!need(c, 8, what)) return 0;
    uint64_t v;
    memcpy(&v, c->p, 8);
    c->p += 8;
    return v;
}
static gstr str(cur *c, const char *what) {
    gstr s = {0};
    uint64_t n = u64(c, what);
    if (c->bad) return s;
    if (n > (uint64_t)(c->end - c->p)) {
        lf_set_error("%s: %s is %llu bytes long, past the end of the file", c->path, what, (unsigned long long)n);
        c->bad = 1;
        return s;
    }
    s.s = (const char *)c->p;
    s.len = (size_t)n;
    c->p += n;
    return s;
}

static size_t scalar_size(uint32_t t) {
    switch (t) {
    case GT_U8: case GT_I8: case GT_BOOL: return 1;
    case GT_U16: case GT_I16: return 2;
    case GT_U32: case GT_I32: case GT_F32: return 4;
    case GT_U64: case GT_I64: case GT_F64: return 8;
    default: return 0;
    }
}

static void skip_value(cur *c, gkv *kv, uint32_t type, int depth) {
    size_t sz = scalar_size(type);
    if (sz) {
        need(c, sz, "a metadata value");
        if (!c->bad) c->p += sz;
    } else if (type == GT_STRING) str(c, "a metadata string");
    else if (type == GT_ARRAY && depth == 0) {
        uint32_t at = u32(c, "an array type");
        uint64_t n = u64(c, "an array length");
        if (c->bad) return;
        if (kv) kv->atype = at, kv->count = n;
        size_t es = scalar_size(at);
        if (es) {
            if (n > (uint64_t)(c->end - c->p) / es) {
                lf_set_error("%s: a metadata array of %llu elements runs past the end of the file", c->path, (unsigned long long)n);
                c->bad = 1;
                return;
            }
            c->p += n * es;
        } else if (at == GT_STRING) {
            for (uint64_t i = 0; i < n && !c->bad; i++) str(c, "an array string");
        } else {
            lf_set_error("%s: metadata array of type %u is not supported", c->path, at);
            c->bad = 1;
        }
    } else {
        lf_set_error("%s: metadata value type %u is not a GGUF type%s", c->path, type, type == GT_ARRAY ? " (nested array)" : "");
        c->bad = 1;
    }
}

void lf_gguf_close(lf_gguf *g) {
    if (!g) return;
    if (g->base) munmap((void *)g->base, g->size);
    free(g->kv);
    free(g->t);
    free(g);
}

lf_status lf_gguf_open(lf_gguf **out, const char *path) {
    *out = NULL;
    lf_status st = lf_check_regular(path);
    if (st) return st;
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        lf_set_error("%s: cannot open (%s)", path, strerror(errno));
        if (fd >= 0) close(fd);
        return LF_ERR_IO;
    }
    if (sb.st_size < 24) {
        close(fd);
        lf_set_error("%s: %lld bytes is too short for a GGUF file", path, (long long)sb.st_size);
        return LF_ERR_FORMAT;
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        lf_set_error("%s: cannot map (%s)", path, strerror(errno));
        return LF_ERR_IO;
    }
    lf_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        munmap(map, (size_t)sb.st_size);
        return LF_ERR_NOMEM;
    }
    g->base = map;
    g->size = (size_t)sb.st_size;
    snprintf(g->path, sizeof g->path, "%s", path);
    cur c = {g->base, g->base + g->size, g->path, 0};
    if (memcmp(c.p, "GGUF", 4) != 0) {
        lf_set_error("%s: not a GGUF file (no GGUF magic)", path);
        goto bad;
    }
    c.p += 4;
    uint32_t version = u32(&c, "the version");
    if (version != 2 && version != 3) {
        lf_set_error("%s: GGUF version %u is not supported (lmforge reads versions 2 and 3)", path, version);
        goto bad;
    }
    g->nt = u64(&c, "the tensor count");
    g->nkv = u64(&c, "the metadata count");
    /* every entry takes at least 8 + 4 bytes (kv) or 8 + 4 + 4 + 8 bytes (tensor): bound before allocating */
    if (g->nkv > g->size / 12 || g->nt > g->size / 24) {
        lf_set_error("%s: %llu metadata entries / %llu tensors cannot fit in %zu bytes (a damaged header)", path,
                     (unsigned long long)g->nkv, (unsigned long long)g->nt, g->size);
        goto bad;
    }
    g->kv = calloc(g->nkv ? g->nkv : 1, sizeof *g->kv);
    g->t = calloc(g->nt ? g->nt : 1, sizeof *g->t);
    if (!g->kv || !g->t) {
        lf_gguf_close(g);
        return LF_ERR_NOMEM;
    }
    uint64_t alignment = 32;
    for (uint64_t i = 0; i < g->nkv && !c.bad; i++) {
        gkv *kv = &g->kv[i];
        kv->key = str(&c, "a metadata key");
        kv->type = u32(&c, "a metadata type");
        kv->val = c.p;
        skip_value(&c, kv, kv->type, 0);
        if (!c.bad && kv->key.len == 17 && !memcmp(kv->key.s, "general.alignment", 17)) {
            uint32_t a;
            if (kv->type != GT_U32 || (memcpy(&a, kv->val, 4), a == 0 || (a & (a - 1)) || a > 65536)) {
                lf_set_error("%s: general.alignment must be a u32 power of two up to 65536", path);
                goto bad;
            }
            alignment = a;
        }
    }
    for (uint64_t i = 0; i < g->nt && !c.bad; i++) {
        gtensor *t = &g->t[i];
        gstr name = str(&c, "a tensor name");
        t->ndim = u32(&c, "a tensor's dimension count");
        if (c.bad) break;
        if (name.len == 0 || name.len >= sizeof t->name || memchr(name.s, 0, name.len)) {
            lf_set_error("%s: tensor %llu has an empty, over-long or NUL-containing name", path, (unsigned long long)i);
            goto bad;
        }
        memcpy(t->name, name.s, name.len);
        if (t->ndim < 1 || t->ndim > 4) {
            lf_set_error("%s: tensor '%s' has %u dimensions (1 to 4 allowed)", path, t->name, t->ndim);
            goto bad;
        }
        t->numel = 1;
        for (uint32_t d = 0; d < t->ndim; d++) {
            t->ne[d] = u64(&c, "a tensor dimension");
            if (t->ne[d] == 0 || t->ne[d] > ((uint64_t)1 << 40) || t->numel > ((uint64_t)1 << 40) / t->ne[d]) {
                if (!c.bad) lf_set_error("%s: tensor '%s' has a zero or impossible size", path, t->name);
                goto bad;
            }
            t->numel *= t->ne[d];
        }
        t->type = u32(&c, "a tensor type");
        t->offset = u64(&c, "a tensor offset");
        if (c.bad) break;
        const gtype_info *ti = type_info(t->type);
        if (!ti) {
            lf_set_error("%s: tensor '%s' has ggml type %u, which lmforge does not read (F32, F16, BF16, Q8_0, Q4_0, Q4_1, "
                         "Q4_K, Q6_K)", path, t->name, t->type);
            goto bad;
        }
        if (t->ne[0] % (uint64_t)ti->block) {
            lf_set_error("%s: tensor '%s' rows of %llu values are not whole %s blocks", path, t->name,
                         (unsigned long long)t->ne[0], ti->name);
            goto bad;
        }
        t->nbytes = (size_t)(t->numel / (uint64_t)ti->block * (uint64_t)ti->bytes);
        if (t->offset % alignment) {
            lf_set_error("%s: tensor '%s' offset %llu is not aligned to %llu", path, t->name, (unsigned long long)t->offset,
                         (unsigned long long)alignment);
            goto bad;
        }
    }
    if (c.bad) goto bad;
    size_t pos = (size_t)(c.p - g->base);
    g->data = (size_t)((pos + alignment - 1) / alignment * alignment);
    for (uint64_t i = 0; i < g->nt; i++) {
        gtensor *t = &g->t[i];
        if (g->data > g->size || t->offset > g->size - g->data || t->nbytes > g->size - g->data - t->offset) {
            lf_set_error("%s: tensor '%s' (%zu bytes at offset %llu) lies past the end of the file (truncated?)", path,
                         t->name, t->nbytes, (unsigned long long)t->offset);
            goto bad;
        }
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(g->t[j].name, t->name)) {
                lf_set_error("%s: tensor '%s' appears twice", path, t->name);
                goto bad;
            }
    }
    *out = g;
    return LF_OK;
bad:
    lf_gguf_close(g);
    return LF_ERR_FORMAT;
}

/* ---- metadata access */
static const gkv *find_kv(const lf_gguf *g, const char *key) {
    size_t kl = strlen(key);
    for (uint64_t i = 0; i < g->nkv; i++)
        if (g->kv[i].key.len == kl && !memcmp(g->kv[i].key.s, key, kl)) return &g->kv[i];
    return NULL;
}

/* an integer of any integer type; 0 found, -1 missing, -2 not an integer */
static int kv_int(const lf_gguf *g, const char *key, int64_t *v) {
    const gkv *kv = find_kv(g, key);
    if (!kv) return -1;
    const uint8_t *p = kv->val;
    switch (kv->type) {
    case GT_U8: *v = p[0]; break;
    case GT_I8: *v = (int8_t)p[0]; break;
    case GT_U16: *v = rd16(p); break;
    case GT_I16: *v = (int16_t)rd16(p); break;
    case GT_U32: { uint32_t x; memcpy(&x, p, 4); *v = x; break; }
    case GT_I32: { int32_t x; memcpy(&x, p, 4); *v = x; break; }
    case GT_U64: { uint64_t x; memcpy(&x, p, 8); *v = x > INT64_MAX ? INT64_MAX : (int64_t)x; break; }
    case GT_I64: { int64_t x; memcpy(&x, p, 8); *v = x; break; }
    case GT_BOOL: *v = p[0] != 0; break;
    default: return -2;
    }
    return 0;
}

static int kv_float(const lf_gguf *g, const char *key, double *v) {
    const gkv *kv = find_kv(g, key);
    if (!kv) return -1;
    if (kv->type == GT_F32) {
        float f;
        memcpy(&f, kv->val, 4);
        *v = f;
    } else if (kv->type == GT_F64) memcpy(v, kv->val, 8);
    else {
        int64_t i;
        if (kv_int(g, key, &i)) return -2;
        *v = (double)i;
    }
    return isfinite(*v) ? 0 : -2;
}

/* a string value copied into buf (NUL-terminated); 0 found */
static int kv_str(const lf_gguf *g, const char *key, char *buf, size_t cap) {
    const gkv *kv = find_kv(g, key);
    if (!kv || kv->type != GT_STRING) return -1;
    uint64_t n;
    memcpy(&n, kv->val, 8);
    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), (const char *)kv->val + 8);
    return 0;
}

static const gtensor *find_tensor(const lf_gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->nt; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    return NULL;
}

/* ---- hyperparameters */
static lf_status read_config(const lf_gguf *g, lf_config *c, char *arch, size_t archcap) {
    const char *path = g->path;
    if (kv_str(g, "general.architecture", arch, archcap)) {
        lf_set_error("%s: no general.architecture in the metadata", path);
        return LF_ERR_FORMAT;
    }
    int llama = !strcmp(arch, "llama"), gpt2 = !strcmp(arch, "gpt2");
    if (!llama && !gpt2) {
        lf_set_error("%s: architecture '%.40s' is not supported (lmforge reads llama and gpt2 GGUF files)", path, arch);
        return LF_ERR_FORMAT;
    }
    lf_config_defaults(c, llama ? LF_ARCH_LLAMA : LF_ARCH_GPT2);
    char k[128];
    int64_t v;
#define GETI(field, name, required)                                                                               \
    snprintf(k, sizeof k, "%s.%s", arch, name);                                                                   \
    if (kv_int(g, k, &v) == 0) {                                                                                  \
        if (v < 1 || v > (1 << 24)) {                                                                             \
            lf_set_error("%s: %s = %lld is out of range", path, k, (long long)v);                                 \
            return LF_ERR_FORMAT;                                                                                 \
        }                                                                                                         \
        c->field = (int)v;                                                                                        \
    } else if (required) {                                                                                        \
        lf_set_error("%s: the metadata has no integer %s", path, k);                                              \
        return LF_ERR_FORMAT;                                                                                     \
    }
    GETI(n_layer, "block_count", 1);
    GETI(d_model, "embedding_length", 1);
    GETI(d_ff, "feed_forward_length", 1);
    GETI(n_head, "attention.head_count", 1);
    c->n_kv_head = c->n_head;
    GETI(n_kv_head, "attention.head_count_kv", 0);
    GETI(max_seq, "context_length", 1);
#undef GETI
    if (c->d_model % c->n_head) {
        lf_set_error("%s: embedding_length %d is not a multiple of head_count %d", path, c->d_model, c->n_head);
        return LF_ERR_FORMAT;
    }
    c->head_dim = c->d_model / c->n_head;
    double f;
    snprintf(k, sizeof k, "%s.attention.%s", arch, llama ? "layer_norm_rms_epsilon" : "layer_norm_epsilon");
    if (kv_float(g, k, &f) == 0) c->norm_eps = (float)f;
    snprintf(k, sizeof k, "%s.rope.freq_base", arch);
    if (llama && kv_float(g, k, &f) == 0) c->rope_theta = (float)f;
    const gtensor *emb = find_tensor(g, "token_embd.weight");
    if (!emb || emb->ndim != 2) {
        lf_set_error("%s: no 2-D token_embd.weight tensor", path);
        return LF_ERR_FORMAT;
    }
    c->vocab_size = (int)emb->ne[1];
    c->tie_embeddings = find_tensor(g, "output.weight") == NULL;
    c->dropout_embd = c->dropout_attn = c->dropout_resid = 0;
    c->bos_id = kv_int(g, "tokenizer.ggml.bos_token_id", &v) == 0 && v >= 0 && v < c->vocab_size ? (int)v : -1;
    c->eos_id = kv_int(g, "tokenizer.ggml.eos_token_id", &v) == 0 && v >= 0 && v < c->vocab_size ? (int)v : -1;
    return lf_config_check(c);
}

/* the GGUF name of an lmforge (Hugging Face) parameter, and whether its rows are in llama.cpp's
 * interleaved-RoPE order (1 = q, 2 = k) */
static int gguf_name(const char *hf, int llama, char *out, size_t cap, int *rope) {
    int l;
    char rest[96];
    *rope = 0;
    static const char *const lmap[][2] = {
        {"input_layernorm.weight", "attn_norm.weight"}, {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"}, {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.o_proj.weight", "attn_output.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"}, {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"}};
    static const char *const gmap[][2] = {
        {"ln_1.weight", "attn_norm.weight"}, {"ln_1.bias", "attn_norm.bias"}, {"attn.c_attn.weight", "attn_qkv.weight"},
        {"attn.c_attn.bias", "attn_qkv.bias"}, {"attn.c_proj.weight", "attn_output.weight"},
        {"attn.c_proj.bias", "attn_output.bias"}, {"ln_2.weight", "ffn_norm.weight"}, {"ln_2.bias", "ffn_norm.bias"},
        {"mlp.c_fc.weight", "ffn_up.weight"}, {"mlp.c_fc.bias", "ffn_up.bias"}, {"mlp.c_proj.weight", "ffn_down.weight"},
        {"mlp.c_proj.bias", "ffn_down.bias"}};
    if (llama && sscanf(hf, "model.layers.%d.%95s", &l, rest) == 2) {
        for (size_t i = 0; i < sizeof lmap / sizeof lmap[0]; i++)
            if (!strcmp(rest, lmap[i][0])) {
                snprintf(out, cap, "blk.%d.%s", l, lmap[i][1]);
                *rope = i == 1 ? 1 : i == 2 ? 2 : 0;
                return 0;
            }
        return -1;
    }
    if (!llama && sscanf(hf, "transformer.h.%d.%95s", &l, rest) == 2) {
        for (size_t i = 0; i < sizeof gmap / sizeof gmap[0]; i++)
            if (!strcmp(rest, gmap[i][0])) {
                snprintf(out, cap, "blk.%d.%s", l, gmap[i][1]);
                return 0;
            }
        return -1;
    }
    static const char *const top[][2] = {
        {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"}, {"transformer.wte.weight", "token_embd.weight"},
        {"transformer.wpe.weight", "position_embd.weight"}, {"transformer.ln_f.weight", "output_norm.weight"},
        {"transformer.ln_f.bias", "output_norm.bias"}};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (!strcmp(hf, top[i][0])) {
            snprintf(out, cap, "%s", top[i][1]);
            return 0;
        }
    return -1;
}

/* llama.cpp's rows h*hd + 2i + s hold Hugging Face's rows h*hd + s*hd/2 + i (rotate-half order) */
static lf_status unpermute_rows(float *w, int heads, int64_t rows, int64_t cols) {
    int64_t hd = rows / heads;
    float *tmp = malloc(sizeof(float) * (size_t)(hd * cols));
    if (!tmp) return LF_ERR_NOMEM;
    for (int h = 0; h < heads; h++) {
        float *blk = w + (size_t)h * (size_t)(hd * cols);
        for (int64_t i = 0; i < hd / 2; i++)
            for (int s = 0; s < 2; s++)
                memcpy(tmp + (size_t)((s * hd / 2 + i) * cols), blk + (size_t)((2 * i + s) * cols), sizeof(float) * (size_t)cols);
        memcpy(blk, tmp, sizeof(float) * (size_t)(hd * cols));
    }
    free(tmp);
    return LF_OK;
}

static lf_status load_weights(const lf_gguf *g, lf_model *m, int llama) {
    const lf_config *c = lf_model_config(m);
    for (int i = 0; i < lf_model_num_params(m); i++) {
        lf_param *p = lf_model_param(m, i);
        char gn[160];
        int rope;
        if (gguf_name(p->name, llama, gn, sizeof gn, &rope)) {
            lf_set_error("%s: no GGUF name for parameter %s", g->path, p->name);
            return LF_ERR_FORMAT;
        }
        const gtensor *t = find_tensor(g, gn);
        if (!t) {
            lf_set_error("%s: tensor %s (for %s) is missing", g->path, gn, p->name);
            return LF_ERR_FORMAT;
        }
        /* ne[0] is the fastest dimension: (rows, cols) = (ne[1], ne[0]) */
        int64_t rows = t->ndim >= 2 ? (int64_t)t->ne[1] : 1, cols = (int64_t)t->ne[0];
        int64_t want_r = p->ndim == 2 ? p->shape[0] : 1, want_c = p->ndim == 2 ? p->shape[1] : p->shape[0];
        if (t->ndim > 2 || rows != want_r || cols != want_c) {
            lf_set_error("%s: tensor %s is %lldx%lld, the metadata's architecture needs %lldx%lld for %s", g->path, gn,
                         (long long)rows, (long long)cols, (long long)want_r, (long long)want_c, p->name);
            return LF_ERR_FORMAT;
        }
        lf_status st = lf_gguf_dequantize(t->type, g->base + g->data + t->offset, (size_t)t->numel, p->data);
        if (!st && rope) st = unpermute_rows(p->data, rope == 1 ? c->n_head : c->n_kv_head, rows, cols);
        if (st) return st;
    }
    return LF_OK;
}

/* ---- tokenizer: the tokenizer.ggml.* metadata as a tokenizer.json */
static const gkv *arr(const lf_gguf *g, const char *key, uint32_t type) {
    const gkv *kv = find_kv(g, key);
    return kv && kv->type == GT_ARRAY && kv->atype == type ? kv : NULL;
}

/* the i-th string of a string array (walks; callers go in order through next_str) */
static const uint8_t *next_str(const uint8_t *p, gstr *s) {
    uint64_t n;
    memcpy(&n, p, 8);
    s->s = (const char *)p + 8;
    s->len = (size_t)n;
    return p + 8 + n;
}

/* llama.cpp's pre-tokenizers as one regex with the Isolated behaviour. "smollm" (and the types
 * sharing its list) first isolate every \p{N}, then run GPT-2's regex inside the stretches between;
 * in one pass that is \p{N} first, no digit inside the other alternatives, and whitespace's
 * lookahead also stopping before a digit (where a stretch ended). */
static const char *pre_regex(const char *pre) {
    static const char *gpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
    static const char *digits = "\\p{N}|'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?![^\\s\\p{N}])";
    if (!pre[0] || !strcmp(pre, "default") || !strcmp(pre, "gpt2") || !strcmp(pre, "gpt-2") || !strcmp(pre, "olmo") ||
        !strcmp(pre, "jais"))
        return gpt2;
    if (!strcmp(pre, "smollm") || !strcmp(pre, "starcoder") || !strcmp(pre, "refact") || !strcmp(pre, "command-r") ||
        !strcmp(pre, "codeshell") || !strcmp(pre, "exaone"))
        return digits;
    return NULL;
}

static char *tokenizer_json(const lf_gguf *g, lf_status *st) {
    char model[64] = "", pre[64] = "";
    *st = LF_ERR_FORMAT;
    if (kv_str(g, "tokenizer.ggml.model", model, sizeof model)) {
        lf_set_error("%s: no tokenizer.ggml.model in the metadata (no tokenizer inside; pass --tokenizer)", g->path);
        return NULL;
    }
    if (strcmp(model, "gpt2") != 0) {
        lf_set_error("%s: tokenizer.ggml.model '%s' is not supported yet (lmforge reads byte-level BPE, 'gpt2'); "
                     "pass --tokenizer with a tokenizer.json", g->path, model);
        return NULL;
    }
    kv_str(g, "tokenizer.ggml.pre", pre, sizeof pre);
    const char *rx = pre_regex(pre);
    if (!rx) {
        lf_set_error("%s: pre-tokenizer '%s' (tokenizer.ggml.pre) is not supported (gpt2, smollm and their kin are)",
                     g->path, pre);
        return NULL;
    }
    const gkv *toks = arr(g, "tokenizer.ggml.tokens", GT_STRING), *merges = arr(g, "tokenizer.ggml.merges", GT_STRING);
    const gkv *types = arr(g, "tokenizer.ggml.token_type", GT_I32);
    if (!toks || !merges) {
        lf_set_error("%s: tokenizer.ggml.tokens / merges missing or not string arrays", g->path);
        return NULL;
    }
    if (types && types->count != toks->count) {
        lf_set_error("%s: tokenizer.ggml.token_type has %llu entries for %llu tokens", g->path,
                     (unsigned long long)types->count, (unsigned long long)toks->count);
        return NULL;
    }
    json_t *root = json_object(), *vocab = json_object(), *mg = json_array(), *added = json_array();
    const uint8_t *p = toks->val + 12; /* past the array's type and count */
    for (uint64_t i = 0; i < toks->count; i++) {
        gstr s;
        p = next_str(p, &s);
        int32_t ty = 1;
        if (types) memcpy(&ty, types->val + 12 + 4 * i, 4);
        char *k = strndup(s.s, s.len);
        if (!k || memchr(s.s, 0, s.len)) {
            free(k);
            lf_set_error("%s: token %llu contains a NUL byte", g->path, (unsigned long long)i);
            json_decref(root), json_decref(vocab), json_decref(mg), json_decref(added);
            return NULL;
        }
        if (ty == 3 || ty == 4) { /* control / user-defined: literal added tokens */
            json_t *a = json_object();
            json_object_set_new(a, "id", json_integer((json_int_t)i));
            json_object_set_new(a, "content", json_string(k));
            json_object_set_new(a, "single_word", json_false());
            json_object_set_new(a, "lstrip", json_false());
            json_object_set_new(a, "rstrip", json_false());
            json_object_set_new(a, "normalized", json_boolean(ty == 4));
            json_object_set_new(a, "special", json_boolean(ty == 3));
            json_array_append_new(added, a);
        }
        if (!json_object_get(vocab, k)) json_object_set_new(vocab, k, json_integer((json_int_t)i));
        free(k);
    }
    p = merges->val + 12;
    for (uint64_t i = 0; i < merges->count; i++) {
        gstr s;
        p = next_str(p, &s);
        json_array_append_new(mg, json_stringn(s.s, s.len));
    }
    json_t *mdl = json_object(), *seq = json_array(), *split = json_object(), *bl = json_object(), *pt = json_object();
    json_object_set_new(mdl, "type", json_string("BPE"));
    json_object_set_new(mdl, "dropout", json_null());
    json_object_set_new(mdl, "unk_token", json_null());
    json_object_set_new(mdl, "continuing_subword_prefix", json_null());
    json_object_set_new(mdl, "end_of_word_suffix", json_null());
    json_object_set_new(mdl, "fuse_unk", json_false());
    json_object_set_new(mdl, "byte_fallback", json_false());
    json_object_set_new(mdl, "vocab", vocab);
    json_object_set_new(mdl, "merges", mg);
    json_object_set_new(split, "type", json_string("Split"));
    json_object_set_new(split, "pattern", json_pack("{s:s}", "Regex", rx));
    json_object_set_new(split, "behavior", json_string("Isolated"));
    json_object_set_new(split, "invert", json_false());
    json_object_set_new(bl, "type", json_string("ByteLevel"));
    json_object_set_new(bl, "add_prefix_space", json_false());
    json_object_set_new(bl, "trim_offsets", json_true());
    json_object_set_new(bl, "use_regex", json_false());
    json_array_append_new(seq, split);
    json_array_append_new(seq, bl);
    json_object_set_new(pt, "type", json_string("Sequence"));
    json_object_set_new(pt, "pretokenizers", seq);
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "truncation", json_null());
    json_object_set_new(root, "padding", json_null());
    json_object_set_new(root, "added_tokens", added);
    json_object_set_new(root, "normalizer", json_null());
    json_object_set_new(root, "pre_tokenizer", pt);
    json_object_set_new(root, "post_processor", json_null());
    json_object_set_new(root, "decoder", json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                                                   "trim_offsets", 1, "use_regex", 1));
    json_object_set_new(root, "model", mdl);
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    *st = out ? LF_OK : LF_ERR_NOMEM;
    return out;
}

lf_status lf_gguf_tokenizer_json(const char *path, char **json) {
    lf_gguf *g;
    lf_status st = lf_gguf_open(&g, path);
    if (st) return st;
    *json = tokenizer_json(g, &st);
    lf_gguf_close(g);
    return st;
}

int lf_is_gguf(const char *path) {
    FILE *f = fopen(path, "rb");
    char m[4] = {0};
    int ok = f && fread(m, 1, 4, f) == 4 && !memcmp(m, "GGUF", 4);
    if (f) fclose(f);
    return ok;
}

lf_status lf_gguf_load(lf_model **out, lf_tokenizer **tok, const char *path) {
    *out = NULL;
    if (tok) *tok = NULL;
    lf_gguf *g;
    lf_status st = lf_gguf_open(&g, path);
    if (st) return st;
    lf_config c;
    char arch[64];
    lf_model *m = NULL;
    if (!(st = read_config(g, &c, arch, sizeof arch)) && !(st = lf_model_init_table(&m, &c)) &&
        !(st = lf_model_alloc_weights(m)))
        st = load_weights(g, m, c.arch == LF_ARCH_LLAMA);
    if (!st) st = lf_model_check_finite(m, path);
    if (!st && tok) {
        char *js = tokenizer_json(g, &st);
        if (js) st = lf_tokenizer_from_json(tok, js, strlen(js), path);
        free(js);
    }
    lf_gguf_close(g);
    if (st) {
        lf_model_free(m);
        return st;
    }
    *out = m;
    return LF_OK;
}
