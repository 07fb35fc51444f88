/* lmforge core: status codes with a per-thread error message, an assert that stays on in release
 * builds, aligned allocation, a counter-based RNG (reproducible per step, per element, per thread
 * count) and a monotonic clock. Everything else in lmforge builds on these. */
#ifndef LMFORGE_CORE_H
#define LMFORGE_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    LF_OK = 0,
    LF_ERR_IO,      /* a file could not be opened, read or written */
    LF_ERR_FORMAT,  /* a file's content is malformed or unsupported */
    LF_ERR_ARG,     /* a caller passed an invalid value */
    LF_ERR_NOMEM,   /* an allocation failed */
    LF_ERR_NOTFOUND /* a named thing (tensor, key) does not exist */
} lf_status;

/* Library functions that fail set a one-line message (file, problem, hint) and return a status;
 * they never print or exit. The message is per thread. */
void lf_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *lf_last_error(void);
const char *lf_status_name(lf_status s);

/* Invariant checks: on in every build, never used for user input. */
void lf_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define LF_ASSERT(e) ((e) ? (void)0 : lf_assert_fail(#e, __FILE__, __LINE__))

/* 64-byte aligned allocation (zeroed); NULL with an error message on failure. */
void *lf_alloc(size_t bytes);
void lf_free(void *p);

/* Counter-based RNG: the value depends only on (seed, stream, counter), so dropout masks can be
 * regenerated in backward instead of stored and results do not depend on the thread schedule. */
uint64_t lf_hash64(uint64_t seed, uint64_t stream, uint64_t counter);
static inline float lf_u01(uint64_t h) { return (float)(h >> 40) * (1.0f / 16777216.0f); }
/* standard normal from two counters (Box-Muller) */
float lf_randn(uint64_t seed, uint64_t stream, uint64_t counter);

/* FNV-1a 64 of a byte string (content hashes for splits, dedup, checksums) */
uint64_t lf_fnv1a(const void *p, size_t n);

double lf_now(void); /* seconds, monotonic */
double lf_machine_memory(void); /* bytes of physical memory, 0 when unknown */
void lf_format_bytes(char *buf, size_t n, double bytes); /* "4.0 TiB" */
int lf_num_threads(void);

/* The run context: what used to be process state (thread count, base seed) travels in this
 * struct; lf_ctx_apply makes it current for the OpenMP kernels. threads <= 0 keeps the default. */
typedef struct {
    int threads;
    uint64_t seed;
} lf_ctx;
void lf_ctx_apply(const lf_ctx *c);

/* ---- files (core/file.c) */
int lf_path_exists(const char *path);
int lf_is_dir(const char *path);
/* Whole regular file, NUL-terminated (len may be NULL); NULL with a message for anything else
 * (missing, a folder, a FIFO or device: never blocks). */
char *lf_read_file(const char *path, size_t *len);
/* LF_OK for an existing regular file; otherwise an error naming it (missing, a folder, a FIFO,
 * a device or a socket: opening those could block or never end). */
lf_status lf_check_regular(const char *path);
lf_status lf_mkdirs(const char *path); /* mkdir -p */
void lf_rm_rf(const char *path);       /* rm -rf; silent */
void lf_fsync_path(const char *path);
/* Atomic whole-file write: path.tmp.PID, fsync, rename, fsync of the folder. The _with form
 * streams through fn (which reports errors with lf_write_all). */
typedef lf_status (*lf_writer_fn)(FILE *f, const char *path, const void *ctx);
lf_status lf_write_atomic_with(const char *path, lf_writer_fn fn, const void *ctx);
lf_status lf_write_all(FILE *f, const void *p, size_t n, const char *path);
lf_status lf_write_file_atomic(const char *path, const void *data, size_t len);
/* Publish a filled folder tmp as dir by rename (an existing dir is exchanged out and removed). */
lf_status lf_publish_dir(const char *tmp, const char *dir);

/* ---- SHA-256 (core/sha256.c): checks on fetched packages */
typedef struct {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t buf[64];
    size_t fill;
} lf_sha256;
void lf_sha256_init(lf_sha256 *s);
void lf_sha256_update(lf_sha256 *s, const void *data, size_t n);
void lf_sha256_final(lf_sha256 *s, uint8_t out[32]);
void lf_sha256_hex(const void *data, size_t n, char hex[65]); /* lower-case hex, NUL-terminated */
/* a regular file's digest (hex) and size; LF_ERR_IO naming the file otherwise */
lf_status lf_sha256_file(const char *path, char hex[65], uint64_t *size);

/* ---- "did you mean" (core/suggest.c): the name among names that the typed one extends or
 * abbreviates, else the nearest spelling within 3 edits; NULL when none is close */
const char *lf_closest_name(const char *name, const char *const *names, size_t n);

#endif
