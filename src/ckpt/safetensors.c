/* safetensors read/write. The reader treats the file as untrusted: the header length, the JSON,
 * every dtype, shape and offset is checked against the file before any tensor byte is touched,
 * and the data regions must tile the buffer exactly (as the reference Rust implementation
 * requires). Errors name the file and the problem. */
#include "lmforge/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER (100u * 1024u * 1024u)
#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    lf_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    uint64_t begin, end;
} st_entry;

struct lf_st {
    char *path;
    unsigned char *map;
    size_t size;
    const unsigned char *data; /* start of the byte buffer */
    size_t data_size;
    st_entry *t;
    int n;
    json_t *meta;
};

static const struct {
    const char *name;
    lf_dtype dt;
    int size;
} dtypes[] = {
    {"F32", LF_DT_F32, 4}, {"F16", LF_DT_F16, 2}, {"BF16", LF_DT_BF16, 2}, {"F64", LF_DT_F64, 8},
    {"I32", LF_DT_I32, 4}, {"I64", LF_DT_I64, 8}, {"I16", LF_DT_I16, 2}, {"I8", LF_DT_I8, 1},
    {"U8", LF_DT_U8, 1},   {"BOOL", LF_DT_BOOL, 1},
};

static const char *dtype_name(lf_dtype d) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dt == d) return dtypes[i].name;
    return "?";
}

static int cmp_begin(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}
static int cmp_name(const void *a, const void *b) {
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

void lf_st_close(lf_st *st) {
    if (!st) return;
    if (st->map && st->map != MAP_FAILED) munmap(st->map, st->size);
    for (int i = 0; i < st->n; i++) free(st->t[i].name);
    free(st->t);
    json_decref(st->meta);
    free(st->path);
    free(st);
}

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        char msg_[512];                                                                            \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                                                  \
        lf_set_error("%s: %s", path, msg_);                                                        \
        status = code;                                                                             \
        goto fail;                                                                                 \
    } while (0)

lf_status lf_st_open(lf_st **out, const char *path) {
    *out = NULL;
    lf_status status = LF_OK;
    json_t *root = NULL;
    lf_st *st = calloc(1, sizeof *st);
    if (!st) return LF_ERR_NOMEM;
    st->path = strdup(path);
    if (!st->path) FAIL(LF_ERR_NOMEM, "out of memory");
    int fd = open(path, O_RDONLY | O_NONBLOCK); /* a FIFO must not block: refused just below */
    if (fd < 0) FAIL(LF_ERR_IO, "cannot open (%s)", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        FAIL(LF_ERR_IO, "not a regular file (a folder, FIFO, socket or device)");
    }
    st->size = (size_t)sb.st_size;
    if (st->size < 8) {
        close(fd);
        FAIL(LF_ERR_FORMAT, "file is %zu bytes, too short for a safetensors header (is it truncated?)", st->size);
    }
    st->map = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (st->map == MAP_FAILED) FAIL(LF_ERR_IO, "cannot map file (%s)", strerror(errno));
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | st->map[i];
    if (hlen > ST_MAX_HEADER)
        FAIL(LF_ERR_FORMAT, "header length %llu exceeds the 100 MiB limit (not a safetensors file?)", (unsigned long long)hlen);
    if (hlen > st->size - 8)
        FAIL(LF_ERR_FORMAT, "header length %llu runs past the end of the %zu-byte file (truncated?)", (unsigned long long)hlen, st->size);
    if (hlen < 2 || st->map[8] != '{') FAIL(LF_ERR_FORMAT, "header does not start with a JSON object");
    json_error_t jerr;
    root = json_loadb((const char *)st->map + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) FAIL(LF_ERR_FORMAT, "header JSON invalid at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) FAIL(LF_ERR_FORMAT, "header is not a JSON object");
    st->data = st->map + 8 + hlen;
    st->data_size = st->size - 8 - (size_t)hlen;
    size_t cap = json_object_size(root);
    st->t = calloc(cap ? cap : 1, sizeof *st->t);
    if (!st->t) FAIL(LF_ERR_NOMEM, "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) FAIL(LF_ERR_FORMAT, "__metadata__ is not an object");
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) if (!json_is_string(mv))
                FAIL(LF_ERR_FORMAT, "__metadata__ value for '%s' is not a string", mk);
            st->meta = json_incref(val);
            continue;
        }
        st_entry *e = &st->t[st->n];
        if (!json_is_object(val)) FAIL(LF_ERR_FORMAT, "tensor '%s': entry is not an object", key);
        json_t *jd = json_object_get(val, "dtype"), *js = json_object_get(val, "shape"),
               *jo = json_object_get(val, "data_offsets");
        if (!json_is_string(jd)) FAIL(LF_ERR_FORMAT, "tensor '%s': missing or non-string dtype", key);
        int dsz = 0;
        for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
            if (strcmp(json_string_value(jd), dtypes[i].name) == 0) {
                e->dtype = dtypes[i].dt;
                dsz = dtypes[i].size;
            }
        if (!dsz) FAIL(LF_ERR_FORMAT, "tensor '%s': unsupported dtype '%s'", key, json_string_value(jd));
        if (!json_is_array(js) || json_array_size(js) > ST_MAX_DIMS)
            FAIL(LF_ERR_FORMAT, "tensor '%s': shape must be an array of at most %d integers", key, ST_MAX_DIMS);
        e->ndim = (int)json_array_size(js);
        size_t numel = 1;
        for (int d = 0; d < e->ndim; d++) {
            json_t *x = json_array_get(js, (size_t)d);
            if (!json_is_integer(x) || json_integer_value(x) < 0)
                FAIL(LF_ERR_FORMAT, "tensor '%s': shape[%d] is not a non-negative integer", key, d);
            e->shape[d] = json_integer_value(x);
            if (e->shape[d] != 0 && numel > SIZE_MAX / 16 / (size_t)e->shape[d])
                FAIL(LF_ERR_FORMAT, "tensor '%s': shape overflows", key);
            numel *= (size_t)e->shape[d];
        }
        e->numel = numel;
        if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
            !json_is_integer(json_array_get(jo, 1)))
            FAIL(LF_ERR_FORMAT, "tensor '%s': data_offsets must be [begin, end]", key);
        json_int_t b = json_integer_value(json_array_get(jo, 0)), en = json_integer_value(json_array_get(jo, 1));
        if (b < 0 || en < b || (uint64_t)en > st->data_size)
            FAIL(LF_ERR_FORMAT, "tensor '%s': data_offsets [%lld, %lld] outside the %zu-byte data buffer (truncated?)",
                 key, (long long)b, (long long)en, st->data_size);
        if ((uint64_t)(en - b) != (uint64_t)numel * (uint64_t)dsz)
            FAIL(LF_ERR_FORMAT, "tensor '%s': %lld bytes for shape with %zu %s elements (expected %llu)", key,
                 (long long)(en - b), numel, dtype_name(e->dtype), (unsigned long long)numel * dsz);
        e->begin = (uint64_t)b;
        e->end = (uint64_t)en;
        e->name = strdup(key);
        if (!e->name) FAIL(LF_ERR_NOMEM, "out of memory");
        st->n++;
    }
    /* tensors must tile the data buffer: no overlap, no hole, nothing trailing */
    qsort(st->t, (size_t)st->n, sizeof *st->t, cmp_begin);
    uint64_t pos = 0;
    for (int i = 0; i < st->n; i++) {
        if (st->t[i].begin != pos)
            FAIL(LF_ERR_FORMAT, "tensor '%s' starts at byte %llu, expected %llu (overlapping or gapped tensors)",
                 st->t[i].name, (unsigned long long)st->t[i].begin, (unsigned long long)pos);
        pos = st->t[i].end;
    }
    if (pos != st->data_size)
        FAIL(LF_ERR_FORMAT, "tensors cover %llu bytes but the data buffer has %zu", (unsigned long long)pos, st->data_size);
    qsort(st->t, (size_t)st->n, sizeof *st->t, cmp_name);
    json_decref(root);
    *out = st;
    return LF_OK;
fail:
    json_decref(root);
    lf_st_close(st);
    return status;
}
#undef FAIL

int lf_st_count(const lf_st *st) { return st->n; }
const char *lf_st_name(const lf_st *st, int i) { return st->t[i].name; }
lf_dtype lf_st_dtype(const lf_st *st, int i) { return st->t[i].dtype; }
int lf_st_ndim(const lf_st *st, int i) { return st->t[i].ndim; }
const int64_t *lf_st_shape(const lf_st *st, int i) { return st->t[i].shape; }
size_t lf_st_numel(const lf_st *st, int i) { return st->t[i].numel; }

int lf_st_find(const lf_st *st, const char *name) {
    int lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(st->t[mid].name, name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

const char *lf_st_metadata(const lf_st *st, const char *key) {
    return st->meta ? json_string_value(json_object_get(st->meta, key)) : NULL;
}

static float half_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: renormalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

lf_status lf_st_read_f32(const lf_st *st, int i, float *dst, size_t numel) {
    const st_entry *e = &st->t[i];
    if (numel != e->numel) {
        lf_set_error("%s: tensor '%s' has %zu elements, expected %zu", st->path, e->name, e->numel, numel);
        return LF_ERR_FORMAT;
    }
    const unsigned char *p = st->data + e->begin;
    switch (e->dtype) {
    case LF_DT_F32: memcpy(dst, p, numel * 4); break;
    case LF_DT_F64:
        for (size_t k = 0; k < numel; k++) {
            double d;
            memcpy(&d, p + 8 * k, 8);
            dst[k] = (float)d;
        }
        break;
    case LF_DT_F16:
        for (size_t k = 0; k < numel; k++) dst[k] = half_to_f32((uint16_t)(p[2 * k] | p[2 * k + 1] << 8));
        break;
    case LF_DT_BF16:
        for (size_t k = 0; k < numel; k++) {
            uint32_t bits = (uint32_t)(p[2 * k] | p[2 * k + 1] << 8) << 16;
            memcpy(&dst[k], &bits, 4);
        }
        break;
    default:
        lf_set_error("%s: tensor '%s' has dtype %s, expected a floating-point type", st->path, e->name, dtype_name(e->dtype));
        return LF_ERR_FORMAT;
    }
    return LF_OK;
}

lf_status lf_st_read_i32(const lf_st *st, int i, int32_t *dst, size_t numel) {
    const st_entry *e = &st->t[i];
    if (numel != e->numel) {
        lf_set_error("%s: tensor '%s' has %zu elements, expected %zu", st->path, e->name, e->numel, numel);
        return LF_ERR_FORMAT;
    }
    const unsigned char *p = st->data + e->begin;
    for (size_t k = 0; k < numel; k++) {
        int64_t v;
        switch (e->dtype) {
        case LF_DT_I32: { int32_t x; memcpy(&x, p + 4 * k, 4); v = x; } break;
        case LF_DT_I64: { memcpy(&v, p + 8 * k, 8); } break;
        case LF_DT_I16: { int16_t x; memcpy(&x, p + 2 * k, 2); v = x; } break;
        case LF_DT_I8: v = (int8_t)p[k]; break;
        case LF_DT_U8: v = p[k]; break;
        default:
            lf_set_error("%s: tensor '%s' has dtype %s, expected an integer type", st->path, e->name, dtype_name(e->dtype));
            return LF_ERR_FORMAT;
        }
        if (v < INT32_MIN || v > INT32_MAX) {
            lf_set_error("%s: tensor '%s' element %zu (%lld) does not fit in int32", st->path, e->name, k, (long long)v);
            return LF_ERR_FORMAT;
        }
        dst[k] = (int32_t)v;
    }
    return LF_OK;
}

/* ---------------------------------------------------------------- writing */

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp((*(const lf_st_tensor *const *)a)->name, (*(const lf_st_tensor *const *)b)->name);
}

typedef struct {
    const lf_st_tensor **sorted;
    int n;
    const char *header;
    size_t hlen;
} st_write_ctx;

static lf_status write_st_body(FILE *f, const char *path, const void *vctx) {
    const st_write_ctx *c = vctx;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)c->hlen >> (8 * i));
    lf_status st = lf_write_all(f, len8, 8, path);
    if (!st) st = lf_write_all(f, c->header, c->hlen, path);
    float *buf = NULL;
    size_t bufn = 0;
    for (int i = 0; i < c->n && !st; i++) {
        const lf_st_tensor *t = c->sorted[i];
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (size_t)t->shape[d];
        if (t->fill) {
            if (numel > bufn) {
                free(buf);
                buf = malloc(numel * sizeof(float));
                bufn = numel;
                if (!buf) {
                    lf_set_error("%s: out of memory", path);
                    return LF_ERR_NOMEM;
                }
            }
            t->fill(t->ctx, buf);
            st = lf_write_all(f, buf, numel * 4, path);
        } else {
            st = lf_write_all(f, t->data, numel * 4, path);
        }
    }
    free(buf);
    return st;
}

lf_status lf_st_write(const char *path, const lf_st_tensor *t, int n, const char *const *meta_kv, int nmeta) {
    const lf_st_tensor **sorted = malloc(sizeof *sorted * (size_t)(n ? n : 1));
    json_t *root = json_object();
    if (!sorted || !root) {
        free(sorted);
        json_decref(root);
        return LF_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) sorted[i] = &t[i];
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_tensor_name);
    if (nmeta > 0) {
        json_t *meta = json_object();
        for (int i = 0; i < nmeta; i++) json_object_set_new(meta, meta_kv[2 * i], json_string(meta_kv[2 * i + 1]));
        json_object_set_new(root, "__metadata__", meta);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const lf_st_tensor *x = sorted[i];
        size_t numel = 1;
        json_t *shape = json_array();
        for (int d = 0; d < x->ndim; d++) {
            json_array_append_new(shape, json_integer(x->shape[d]));
            numel *= (size_t)x->shape[d];
        }
        json_t *e = json_object();
        json_object_set_new(e, "dtype", json_string("F32"));
        json_object_set_new(e, "shape", shape);
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)off));
        off += (uint64_t)numel * 4;
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_object_set_new(e, "data_offsets", offs);
        json_object_set_new(root, x->name, e);
    }
    char *js = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!js) {
        free(sorted);
        return LF_ERR_NOMEM;
    }
    size_t jl = strlen(js), hlen = (jl + 7) & ~(size_t)7;
    char *header = malloc(hlen);
    if (!header) {
        free(js);
        free(sorted);
        return LF_ERR_NOMEM;
    }
    memcpy(header, js, jl);
    memset(header + jl, ' ', hlen - jl); /* spaces pad the header to 8 bytes, as the spec allows */
    free(js);
    st_write_ctx ctx = {sorted, n, header, hlen};
    lf_status st = lf_write_atomic_with(path, write_st_body, &ctx);
    free(header);
    free(sorted);
    return st;
}
