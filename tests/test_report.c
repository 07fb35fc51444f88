/* TensorBoard event files: CRC-32C against its published check value, then a written file is
 * parsed back record by record (length, masked CRCs of length and data) and its Event protos
 * decoded (wall_time, step, file_version, summary tag and simple_value). */
#include "lmforge/report.h"
#include "testutil.h"

#include <unistd.h>

static uint64_t rd_varint(const unsigned char *p, size_t *k) {
    uint64_t v = 0;
    int sh = 0;
    while (p[*k] & 0x80) v |= (uint64_t)(p[(*k)++] & 0x7f) << sh, sh += 7;
    v |= (uint64_t)p[(*k)++] << sh;
    return v;
}

int main(void) {
    CHECK(lf_crc32c("123456789", 9) == 0xE3069283u, "CRC-32C check value: %08x", lf_crc32c("123456789", 9));
    char dir[] = "/tmp/lf_test_tb_XXXXXX";
    LF_ASSERT(mkdtemp(dir));
    lf_tb *tb;
    LF_ASSERT(lf_tb_open(&tb, dir) == LF_OK);
    const char *tags[] = {"train/loss", "train/lr", "val/perplexity"};
    float vals[] = {3.25f, 1e-3f, 123.5f};
    for (int i = 0; i < 3; i++) LF_ASSERT(lf_tb_scalar(tb, tags[i], 100 + i, vals[i]) == LF_OK);
    char path[4200];
    snprintf(path, sizeof path, "%s", lf_tb_path(tb));
    lf_tb_close(tb);
    FILE *f = fopen(path, "rb");
    LF_ASSERT(f);
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f), pos = 0;
    fclose(f);
    int rec = 0;
    while (pos + 12 <= n) {
        uint64_t len;
        uint32_t c1, c2;
        memcpy(&len, buf + pos, 8);
        memcpy(&c1, buf + pos + 8, 4);
        CHECK(c1 == lf_tb_masked_crc(buf + pos, 8), "record %d: length CRC", rec);
        CHECK(pos + 12 + len + 4 <= n, "record %d runs past the file", rec);
        const unsigned char *d = buf + pos + 12;
        memcpy(&c2, d + len, 4);
        CHECK(c2 == lf_tb_masked_crc(d, len), "record %d: data CRC", rec);
        size_t k = 0;
        double wall = 0;
        int64_t step = -1;
        char tag[64] = "", ver[32] = "";
        float value = 0;
        while (k < len) {
            unsigned key = d[k++];
            if (key == 0x09) { memcpy(&wall, d + k, 8); k += 8; }
            else if (key == 0x10) step = (int64_t)rd_varint(d, &k);
            else if (key == 0x1a) { size_t l = rd_varint(d, &k); memcpy(ver, d + k, l < 31 ? l : 31); k += l; }
            else if (key == 0x2a) { /* Summary { Value { tag, simple_value } } */
                size_t sl = rd_varint(d, &k), end = k + sl;
                CHECK(d[k++] == 0x0a, "summary field");
                size_t vl = rd_varint(d, &k), vend = k + vl;
                while (k < vend) {
                    unsigned vk = d[k++];
                    if (vk == 0x0a) { size_t l = rd_varint(d, &k); memcpy(tag, d + k, l < 63 ? l : 63); k += l; }
                    else if (vk == 0x15) { memcpy(&value, d + k, 4); k += 4; }
                    else { CHECK(0, "unexpected Value field %u", vk); break; }
                }
                k = end;
            } else {
                CHECK(0, "unexpected Event field %u", key);
                break;
            }
        }
        CHECK(wall > 1.7e9, "record %d: wall_time %f", rec, wall);
        if (rec == 0) CHECK(!strcmp(ver, "brain.Event:2"), "first record must carry file_version, got '%s'", ver);
        else {
            CHECK(!strcmp(tag, tags[rec - 1]) && value == vals[rec - 1] && step == 100 + rec - 1,
                  "record %d: %s=%g at %lld, want %s=%g at %d", rec, tag, value, (long long)step, tags[rec - 1], vals[rec - 1], 100 + rec - 1);
        }
        pos += 12 + len + 4;
        rec++;
    }
    CHECK(rec == 4 && pos == n, "%d records, %zu of %zu bytes parsed", rec, pos, n);
    unlink(path);
    rmdir(dir);
    return tu_finish("test_report");
}
