/* TensorBoard event files without TensorFlow: Event { wall_time = 1 (double), step = 2 (int64),
 * file_version = 3 (string), summary = 5 (Summary { value = 1 (Value { tag = 1 (string),
 * simple_value = 2 (float) }) }) } in protobuf wire format, framed as TFRecords. */
#define _GNU_SOURCE /* gethostname */
#include "lmforge/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct lf_tb {
    FILE *f;
    char path[4200];
};

uint32_t lf_crc32c(const void *data, size_t n) {
    static uint32_t table[256];
    static int ready = 0; /* written once with identical values: benign if two threads race */
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t lf_tb_masked_crc(const void *data, size_t n) {
    uint32_t c = lf_crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

static size_t varint(unsigned char *p, uint64_t v) {
    size_t k = 0;
    do {
        p[k++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return k;
}

static lf_status write_record(lf_tb *tb, const unsigned char *data, size_t n) {
    unsigned char hdr[12];
    uint64_t len = n;
    memcpy(hdr, &len, 8);
    uint32_t c1 = lf_tb_masked_crc(hdr, 8), c2 = lf_tb_masked_crc(data, n);
    memcpy(hdr + 8, &c1, 4);
    if (fwrite(hdr, 1, 12, tb->f) != 12 || fwrite(data, 1, n, tb->f) != n || fwrite(&c2, 1, 4, tb->f) != 4) {
        lf_set_error("%s: write failed (%s)", tb->path, strerror(errno));
        return LF_ERR_IO;
    }
    return LF_OK;
}

static size_t event_header(unsigned char *p, int64_t step) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double wall = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    size_t k = 0;
    p[k++] = 0x09; /* field 1, fixed64 */
    memcpy(p + k, &wall, 8);
    k += 8;
    p[k++] = 0x10; /* field 2, varint */
    k += varint(p + k, (uint64_t)step);
    return k;
}

lf_status lf_tb_open(lf_tb **out, const char *dir) {
    *out = NULL;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        lf_set_error("%s: cannot create TensorBoard folder (%s)", dir, strerror(errno));
        return LF_ERR_IO;
    }
    lf_tb *tb = calloc(1, sizeof *tb);
    if (!tb) return LF_ERR_NOMEM;
    char host[128] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(tb->path, sizeof tb->path, "%s/events.out.tfevents.%lld.%s.%d.lmforge", dir, (long long)time(NULL), host, (int)getpid());
    tb->f = fopen(tb->path, "wb");
    if (!tb->f) {
        lf_set_error("%s: cannot create (%s)", tb->path, strerror(errno));
        free(tb);
        return LF_ERR_IO;
    }
    unsigned char ev[64];
    size_t k = event_header(ev, 0);
    const char *ver = "brain.Event:2";
    ev[k++] = 0x1a; /* field 3, length-delimited */
    ev[k++] = (unsigned char)strlen(ver);
    memcpy(ev + k, ver, strlen(ver));
    k += strlen(ver);
    lf_status st = write_record(tb, ev, k);
    if (st) {
        lf_tb_close(tb);
        return st;
    }
    fflush(tb->f);
    *out = tb;
    return LF_OK;
}

lf_status lf_tb_scalar(lf_tb *tb, const char *tag, int64_t step, float value) {
    size_t tl = strlen(tag);
    if (tl > 200) tl = 200;
    unsigned char val[256], sum[270], ev[320];
    size_t v = 0;
    val[v++] = 0x0a; /* Value.tag */
    v += varint(val + v, tl);
    memcpy(val + v, tag, tl);
    v += tl;
    val[v++] = 0x15; /* Value.simple_value, fixed32 */
    memcpy(val + v, &value, 4);
    v += 4;
    size_t s = 0;
    sum[s++] = 0x0a; /* Summary.value */
    s += varint(sum + s, v);
    memcpy(sum + s, val, v);
    s += v;
    size_t k = event_header(ev, step);
    ev[k++] = 0x2a; /* Event.summary */
    k += varint(ev + k, s);
    memcpy(ev + k, sum, s);
    k += s;
    return write_record(tb, ev, k);
}

void lf_tb_flush(lf_tb *tb) {
    if (tb) fflush(tb->f);
}
const char *lf_tb_path(const lf_tb *tb) { return tb->path; }

void lf_tb_close(lf_tb *tb) {
    if (!tb) return;
    if (tb->f) fclose(tb->f);
    free(tb);
}
