/* Shared by the fuzz targets (tests/fuzz/fuzz_*.c). Each target defines LLVMFuzzerInitialize and
 * LLVMFuzzerTestOneInput; libFuzzer drives them in build-fuzz/ (scripts/fuzz), and replay_main.c
 * drives the same functions over the regression inputs and seed corpora in the ordinary ctest
 * builds. Parsers that read files get the input written to a file in a private temporary folder. */
#ifndef LF_FUZZ_COMMON_H
#define LF_FUZZ_COMMON_H

#include "lmforge/core.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a property a parser must keep: a failure aborts, which libFuzzer reports as a crash */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz property violated: %s (%s:%d): ", #cond, __FILE__, __LINE__);    \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char fuzz_dir[64];

static inline void fuzz_cleanup(void) {
    if (fuzz_dir[0]) lf_rm_rf(fuzz_dir);
}

/* a private temporary folder, removed at exit */
static inline const char *fuzz_tmpdir(void) {
    if (!fuzz_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/lf_fuzz_XXXXXX", base && strlen(base) < 40 ? base : "/tmp");
        if (!mkdtemp(fuzz_dir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fuzz_cleanup);
    }
    return fuzz_dir;
}

/* path of name inside the temporary folder (a static buffer per call site is enough here) */
static inline void fuzz_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", fuzz_tmpdir(), name); }

static inline void fuzz_write(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* the input as a NUL-terminated string (malloc'd) */
static inline char *fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = 0;
    return s;
}

#endif
