/* Token shards: the atomic writer, the validating reader (mmap) and the batch loader. */
#include "data_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR 128
static const char MAGIC[8] = {'L', 'F', 'S', 'H', 'A', 'R', 'D', 0};

struct lf_shard {
    char *path;
    unsigned char *map;
    size_t size;
    uint32_t tbytes, vocab, flags;
    uint64_t ntok, ndocs, fp;
    const unsigned char *tok;
    const uint64_t *docs;
    const uint8_t *mask;
    const unsigned char *tasks; /* u16 each, not necessarily aligned */
};

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* the whole file is built in memory, then written atomically */
lf_status lf_shard_write(const char *path, const shard_builder *b, uint64_t fingerprint, uint32_t vocab) {
    uint32_t tb = vocab <= 65536 ? 2 : 4;
    uint32_t flags = (b->mask ? LF_SHARD_MASK : 0) | (b->has_tasks ? LF_SHARD_TASKS : 0);
    size_t off_tok = HDR, off_docs = (off_tok + b->n * tb + 7) & ~(size_t)7;
    size_t off_mask = off_docs + (b->n_docs + 1) * 8;
    size_t off_tasks = off_mask + (b->mask ? b->n : 0);
    size_t size = off_tasks + (b->has_tasks ? b->n_docs * 2 : 0);
    unsigned char *buf = calloc(1, size);
    if (!buf) {
        lf_set_error("%s: out of memory building a %.1f MB shard", path, size / 1e6);
        return LF_ERR_NOMEM;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (tb == 2) {
            uint16_t v = (uint16_t)b->tokens[i];
            memcpy(buf + off_tok + 2 * i, &v, 2);
        } else {
            put32(buf + off_tok + 4 * i, (uint32_t)b->tokens[i]);
        }
    }
    for (size_t d = 0; d < b->n_docs; d++) put64(buf + off_docs + 8 * d, b->doc_start[d]);
    put64(buf + off_docs + 8 * b->n_docs, b->n);
    if (b->mask) memcpy(buf + off_mask, b->mask, b->n);
    if (b->has_tasks) memcpy(buf + off_tasks, b->tasks, b->n_docs * 2);
    memcpy(buf, MAGIC, 8);
    put32(buf + 8, LF_SHARD_VERSION);
    put32(buf + 12, tb);
    put64(buf + 16, b->n);
    put64(buf + 24, b->n_docs);
    put64(buf + 32, fingerprint);
    put32(buf + 40, vocab);
    put32(buf + 44, flags);
    put64(buf + 48, off_tok);
    put64(buf + 56, off_docs);
    put64(buf + 64, b->mask ? off_mask : 0);
    put64(buf + 72, b->has_tasks ? off_tasks : 0);
    put64(buf + 80, size);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = HDR; i < size; i++) h = (h ^ buf[i]) * 0x100000001b3ULL;
    put64(buf + 88, h);
    lf_status st = lf_write_file_atomic(path, buf, size);
    free(buf);
    return st;
}

#define BAD(...)                                                                                   \
    do {                                                                                           \
        char m_[600];                                                                              \
        snprintf(m_, sizeof m_, __VA_ARGS__);                                                      \
        lf_set_error("%s: %s", path, m_);                                                          \
        lf_shard_close(s);                                                                         \
        return LF_ERR_FORMAT;                                                                      \
    } while (0)

lf_status lf_shard_open(lf_shard **out, const char *path, uint64_t expect_fp) {
    *out = NULL;
    lf_shard *s = calloc(1, sizeof *s);
    if (!s) return LF_ERR_NOMEM;
    s->path = strdup(path);
    lf_status st = s->path ? lf_check_regular(path) : LF_ERR_NOMEM;
    if (st) {
        lf_shard_close(s);
        return st;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK); /* a FIFO swapped in since the check must not block */
    if (fd < 0) {
        lf_set_error("%s: cannot open (%s)", path, strerror(errno));
        lf_shard_close(s);
        return LF_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        lf_set_error("%s: not a regular file", path);
        lf_shard_close(s);
        return LF_ERR_IO;
    }
    s->size = (size_t)sb.st_size;
    if (s->size < HDR) {
        close(fd);
        BAD("%zu bytes, too short for a shard header (not an lmforge shard, or truncated)", s->size);
    }
    s->map = mmap(NULL, s->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        BAD("cannot map (%s)", strerror(errno));
    }
    const unsigned char *h = s->map;
    if (memcmp(h, MAGIC, 8)) BAD("not an lmforge token shard (bad magic); make one with 'lmforge prepare'");
    if (get32(h + 8) != LF_SHARD_VERSION) BAD("shard version %u, this lmforge reads version %d", get32(h + 8), LF_SHARD_VERSION);
    s->tbytes = get32(h + 12);
    s->ntok = get64(h + 16);
    s->ndocs = get64(h + 24);
    s->fp = get64(h + 32);
    s->vocab = get32(h + 40);
    s->flags = get32(h + 44);
    uint64_t ot = get64(h + 48), od = get64(h + 56), om = get64(h + 64), ok = get64(h + 72), size = get64(h + 80);
    if (size != s->size) BAD("header says %llu bytes, file has %zu (truncated or appended to)", (unsigned long long)size, s->size);
    if (s->tbytes != 2 && s->tbytes != 4) BAD("token size %u is neither 2 nor 4", s->tbytes);
    if (s->vocab == 0 || s->vocab > INT32_MAX) BAD("vocabulary size %u is out of range", s->vocab); /* ids are int32 */
    /* every offset is compared with the size before anything is added to it: no sum can wrap */
    uint64_t fsz = s->size;
    if (s->ntok > fsz || s->ndocs > fsz || ot != HDR || od > fsz || od % 8 || ot + s->ntok * s->tbytes > od ||
        (s->ndocs + 1) * 8 > fsz - od)
        BAD("section offsets are inconsistent with the header");
    uint64_t docs_end = od + (s->ndocs + 1) * 8;
    if ((s->flags & LF_SHARD_MASK) && (om > fsz || om < docs_end || s->ntok > fsz - om)) BAD("mask section out of range");
    if ((s->flags & LF_SHARD_TASKS) && (ok > fsz || ok < docs_end || s->ndocs * 2 > fsz - ok)) BAD("task section out of range");
    if (s->flags & ~(uint32_t)(LF_SHARD_MASK | LF_SHARD_TASKS)) BAD("unknown flags 0x%x", s->flags);
    uint64_t sum = 0xcbf29ce484222325ULL;
    for (size_t i = HDR; i < s->size; i++) sum = (sum ^ s->map[i]) * 0x100000001b3ULL;
    if (sum != get64(h + 88)) BAD("checksum mismatch: the file is corrupted");
    s->tok = s->map + ot;
    s->docs = (const uint64_t *)(s->map + od);
    s->mask = (s->flags & LF_SHARD_MASK) ? s->map + om : NULL;
    s->tasks = (s->flags & LF_SHARD_TASKS) ? s->map + ok : NULL;
    for (uint64_t d = 0; d <= s->ndocs; d++)
        if (s->docs[d] > s->ntok || (d && s->docs[d] < s->docs[d - 1])) BAD("document table is not increasing");
    for (uint64_t i = 0; i < s->ntok; i++)
        if ((uint32_t)lf_shard_token(s, i) >= s->vocab) BAD("token %llu is %d, outside the vocabulary of %u", (unsigned long long)i, lf_shard_token(s, i), s->vocab);
    if (expect_fp && s->fp != expect_fp)
        BAD("was tokenized with a different tokenizer (fingerprint %016llx, the model's is %016llx); re-run "
            "'lmforge prepare --tokenizer' with the model's tokenizer",
            (unsigned long long)s->fp, (unsigned long long)expect_fp);
    *out = s;
    return LF_OK;
}
#undef BAD

void lf_shard_close(lf_shard *s) {
    if (!s) return;
    if (s->map) munmap(s->map, s->size);
    free(s->path);
    free(s);
}

size_t lf_shard_num_tokens(const lf_shard *s) { return s->ntok; }
size_t lf_shard_num_docs(const lf_shard *s) { return s->ndocs; }
uint32_t lf_shard_vocab_size(const lf_shard *s) { return s->vocab; }
uint64_t lf_shard_fingerprint(const lf_shard *s) { return s->fp; }
size_t lf_shard_doc_start(const lf_shard *s, size_t d) { return d <= s->ndocs ? s->docs[d] : s->ntok; }
int lf_shard_doc_task(const lf_shard *s, size_t d) {
    if (!s->tasks || d >= s->ndocs) return 0;
    uint16_t v;
    memcpy(&v, s->tasks + 2 * d, 2);
    return v;
}
int lf_shard_is_target(const lf_shard *s, size_t i) { return s->mask ? s->mask[i] : 1; }
int32_t lf_shard_token(const lf_shard *s, size_t i) {
    if (s->tbytes == 2) {
        uint16_t v;
        memcpy(&v, s->tok + 2 * i, 2);
        return v;
    }
    uint32_t v;
    memcpy(&v, s->tok + 4 * i, 4);
    return (int32_t)v;
}

lf_status lf_shard_check_vocab(const lf_shard *s, int vocab) {
    size_t n = lf_shard_num_tokens(s), at = 0;
    int32_t mx = -1;
    for (size_t i = 0; i < n; i++) {
        int32_t v = lf_shard_token(s, i);
        if (v > mx) {
            mx = v;
            at = i;
        }
    }
    if (mx >= vocab) {
        lf_set_error("%s: token id %d (at token %zu) is outside the model's vocabulary of %d: the shard was made with "
                     "another tokenizer", s->path, mx, at, vocab);
        return LF_ERR_FORMAT;
    }
    return LF_OK;
}

struct lf_loader {
    const lf_shard *s;
    int B, T, sequential, within_doc;
    uint64_t seed;
    lf_loader_state st;
};

lf_status lf_loader_init(lf_loader **out, const lf_shard *s, int B, int T, uint64_t seed, int sequential) {
    *out = NULL;
    if (B <= 0 || T <= 0 || s->ntok < (uint64_t)T + 1) {
        lf_set_error("%s: %llu tokens, too few for one window of %d+1 tokens (use a smaller context or more data)",
                     s->path, (unsigned long long)s->ntok, T);
        return LF_ERR_ARG;
    }
    lf_loader *l = calloc(1, sizeof *l);
    if (!l) return LF_ERR_NOMEM;
    *l = (lf_loader){s, B, T, sequential, 0, seed, {0, 0, 0}};
    *out = l;
    return LF_OK;
}

void lf_loader_set_within_doc(lf_loader *l, int on) { l->within_doc = on != 0; }
void lf_loader_free(lf_loader *l) { free(l); }
lf_loader_state lf_loader_get_state(const lf_loader *l) { return l->st; }
void lf_loader_set_state(lf_loader *l, lf_loader_state st) { l->st = st; }

/* the document holding token i: the last d with doc_start(d) <= i */
static size_t doc_of(const lf_shard *s, uint64_t i) {
    size_t lo = 0, hi = lf_shard_num_docs(s); /* doc_start(lo) <= i < doc_start(hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (lf_shard_doc_start(s, mid) <= i) lo = mid;
        else hi = mid;
    }
    return lo;
}

lf_status lf_loader_next_batch(lf_loader *l, int32_t *inputs, int32_t *targets, int32_t *task) {
    const lf_shard *s = l->s;
    uint64_t span = s->ntok - (uint64_t)l->T; /* valid window starts: [0, span) */
    int has_docs = lf_shard_num_docs(s) > 0;
    for (int b = 0; b < l->B; b++) {
        uint64_t start;
        if (l->sequential) {
            if (l->st.pos >= span) {
                l->st.pos = 0;
                l->st.epoch++;
            }
            start = l->st.pos;
            l->st.pos += (uint64_t)l->T;
        } else {
            start = lf_hash64(l->seed, l->st.step, (uint64_t)b) % span;
        }
        size_t d = has_docs && (l->within_doc || task) ? doc_of(s, start) : 0;
        /* within one document: inputs stop at its last token, targets at its end (the rest is padding
         * that causal attention keeps away from the real positions) */
        uint64_t end = s->ntok;
        if (l->within_doc && has_docs) {
            end = lf_shard_doc_start(s, d + 1);
            if (l->sequential && start + (uint64_t)l->T >= end) l->st.pos = end; /* next window: next document */
        }
        for (int t = 0; t < l->T; t++) {
            uint64_t i = start + (uint64_t)t, y = i + 1;
            int in = i < end;
            inputs[(size_t)b * l->T + t] = in ? lf_shard_token(s, i) : 0;
            targets[(size_t)b * l->T + t] = in && y < end && lf_shard_is_target(s, y) ? lf_shard_token(s, y) : -1;
        }
        if (task) task[b] = has_docs ? lf_shard_doc_task(s, d) : 0;
    }
    l->st.step++;
    return LF_OK;
}

lf_status lf_loader_next(lf_loader *l, int32_t *inputs, int32_t *targets) {
    return lf_loader_next_batch(l, inputs, targets, NULL);
}

/* ---------------------------------------------------------------- as a batch source */

typedef struct {
    lf_loader *l;
    int owns;
} src_ctx;

static lf_status src_next(lf_batch_source *src, lf_batch *b) {
    src_ctx *c = src->ctx;
    if (b->B != c->l->B || b->T != c->l->T) {
        lf_set_error("batch source '%s': batch is %dx%d, the loader makes %dx%d", src->name, b->B, b->T, c->l->B, c->l->T);
        return LF_ERR_ARG;
    }
    if (b->row_weight)
        for (int i = 0; i < b->B; i++) b->row_weight[i] = 1.0f;
    return lf_loader_next_batch(c->l, b->inputs, b->targets, b->task);
}

static int src_get_state(const lf_batch_source *src, uint64_t *w) {
    const src_ctx *c = src->ctx;
    w[0] = c->l->st.step;
    w[1] = c->l->st.pos;
    w[2] = c->l->st.epoch;
    return 3;
}

static lf_status src_set_state(lf_batch_source *src, const uint64_t *w, int n) {
    src_ctx *c = src->ctx;
    if (n != 3 || (c->l->sequential && w[1] > lf_shard_num_tokens(c->l->s))) {
        lf_set_error("batch source '%s': saved state does not fit this data (%d words, position %llu)", src->name, n,
                     n > 1 ? (unsigned long long)w[1] : 0ULL);
        return LF_ERR_FORMAT;
    }
    c->l->st = (lf_loader_state){w[0], w[1], w[2]};
    return LF_OK;
}

static void src_free(lf_batch_source *src) {
    src_ctx *c = src->ctx;
    if (c->owns) lf_loader_free(c->l);
    free(c);
    free(src);
}

lf_status lf_loader_source(lf_batch_source **out, lf_loader *l, int take_ownership) {
    *out = NULL;
    lf_batch_source *s = calloc(1, sizeof *s);
    src_ctx *c = calloc(1, sizeof *c);
    if (!s || !c) {
        free(s);
        free(c);
        return LF_ERR_NOMEM;
    }
    c->l = l;
    c->owns = take_ownership;
    *s = (lf_batch_source){"shard", c, src_next, src_get_state, src_set_state, src_free};
    *out = s;
    return LF_OK;
}
