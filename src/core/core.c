/* Core services: error messages, assertion failure, aligned allocation, counter-based RNG, clock. */
#include "lmforge/core.h"

#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char lf_errbuf[1024];

void lf_set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lf_errbuf, sizeof lf_errbuf, fmt, ap);
    va_end(ap);
}

const char *lf_last_error(void) { return lf_errbuf[0] ? lf_errbuf : "unknown error"; }

const char *lf_status_name(lf_status s) {
    switch (s) {
    case LF_OK: return "ok";
    case LF_ERR_IO: return "I/O error";
    case LF_ERR_FORMAT: return "format error";
    case LF_ERR_ARG: return "invalid argument";
    case LF_ERR_NOMEM: return "out of memory";
    case LF_ERR_NOTFOUND: return "not found";
    }
    return "unknown status";
}

void lf_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "lmforge: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
    abort();
}

void *lf_alloc(size_t bytes) {
    size_t n = (bytes + 63) & ~(size_t)63;
    if (n == 0) n = 64;
    void *p = aligned_alloc(64, n);
    if (!p) {
        lf_set_error("out of memory allocating %.1f MiB", (double)bytes / 1048576.0);
        return NULL;
    }
    memset(p, 0, n);
    return p;
}

void lf_free(void *p) { free(p); }

/* splitmix64 finaliser over a combined key: cheap, statistically good enough for dropout masks
 * and initialisation, and stateless. */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t lf_hash64(uint64_t seed, uint64_t stream, uint64_t counter) {
    uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL);
    h = mix64(h ^ (stream + 0x632be59bd9b4e019ULL));
    return mix64(h ^ (counter * 0x9e3779b97f4a7c15ULL + 0x85157af5ULL));
}

float lf_randn(uint64_t seed, uint64_t stream, uint64_t counter) {
    double u1 = ((double)(lf_hash64(seed, stream, 2 * counter) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double u2 = (double)(lf_hash64(seed, stream, 2 * counter + 1) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t lf_fnv1a(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

double lf_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int lf_num_threads(void) { return omp_get_max_threads(); }

void lf_ctx_apply(const lf_ctx *c) {
    if (c && c->threads > 0) omp_set_num_threads(c->threads);
}

double lf_machine_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? (double)pages * (double)size : 0.0;
}

void lf_format_bytes(char *buf, size_t n, double bytes) {
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 6) {
        bytes /= 1024.0;
        u++;
    }
    snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}
