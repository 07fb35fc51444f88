/* File helpers shared by every module: whole-file reads that refuse what is not a regular file
 * (a FIFO or device would block or never end), atomic writes (temp file, fsync, rename, fsync of
 * the folder), mkdir -p, recursive removal, and folder publication by rename. */
#define _GNU_SOURCE /* renameat2 */
#include "lmforge/core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int lf_path_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

int lf_is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static const char *kind_of(mode_t m) {
    return S_ISDIR(m) ? "a folder" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) || S_ISBLK(m) ? "a device" : "not a regular file";
}

lf_status lf_check_regular(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        lf_set_error("%s: cannot open (%s)", path, strerror(errno));
        return LF_ERR_IO;
    }
    if (!S_ISREG(sb.st_mode)) {
        lf_set_error("%s: is %s, expected a regular file", path, kind_of(sb.st_mode));
        return LF_ERR_IO;
    }
    return LF_OK;
}

char *lf_read_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_NONBLOCK); /* O_NONBLOCK: opening a FIFO must not wait for a writer */
    if (fd < 0) {
        lf_set_error("%s: cannot open (%s)", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        lf_set_error("%s: is %s, expected a regular file", path, kind_of(sb.st_mode));
        close(fd);
        return NULL;
    }
    size_t n = (size_t)sb.st_size;
    char *b = malloc(n + 1);
    if (!b) {
        lf_set_error("%s: out of memory reading %zu bytes", path, n);
        close(fd);
        return NULL;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        lf_set_error("%s: read failed (%zu of %zu bytes)", path, got, n);
        free(b);
        return NULL;
    }
    b[n] = 0;
    if (len) *len = n;
    return b;
}

lf_status lf_mkdirs(const char *path) {
    size_t n = strlen(path);
    char *tmp = malloc(n + 1);
    if (!tmp) return LF_ERR_NOMEM;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) break;
            *p = '/';
        }
    int ok = mkdir(tmp, 0755) == 0 || (errno == EEXIST && lf_is_dir(tmp));
    int err = errno;
    free(tmp);
    if (!ok) {
        lf_set_error("%s: cannot create folder (%s)", path, err == EEXIST ? "a file of that name exists" : strerror(err));
        return LF_ERR_IO;
    }
    return LF_OK;
}

void lf_rm_rf(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (!S_ISDIR(sb.st_mode)) {
        unlink(path);
        return;
    }
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            size_t n = strlen(path) + strlen(e->d_name) + 2;
            char *p = malloc(n);
            if (!p) break;
            snprintf(p, n, "%s/%s", path, e->d_name);
            lf_rm_rf(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(path);
}

void lf_fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static void fsync_parent(const char *path) {
    size_t n = strlen(path);
    char *dir = malloc(n + 2);
    if (!dir) return;
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    lf_fsync_path(dir);
    free(dir);
}

lf_status lf_write_atomic_with(const char *path, lf_writer_fn fn, const void *ctx) {
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) return LF_ERR_NOMEM;
    snprintf(tmp, n, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        lf_set_error("%s: cannot create (%s)", tmp, strerror(errno));
        free(tmp);
        return LF_ERR_IO;
    }
    lf_status st = fn(f, path, ctx);
    if (st == LF_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0)) {
        lf_set_error("%s: flush failed (%s); disk full?", path, strerror(errno));
        st = LF_ERR_IO;
    }
    if (fclose(f) != 0 && st == LF_OK) {
        lf_set_error("%s: close failed (%s)", path, strerror(errno));
        st = LF_ERR_IO;
    }
    if (st == LF_OK && rename(tmp, path) != 0) {
        lf_set_error("%s: rename from temporary file failed (%s)", path, strerror(errno));
        st = LF_ERR_IO;
    }
    if (st != LF_OK) unlink(tmp);
    else fsync_parent(path);
    free(tmp);
    return st;
}

lf_status lf_write_all(FILE *f, const void *p, size_t n, const char *path) {
    if (n && fwrite(p, 1, n, f) != n) {
        lf_set_error("%s: write failed (%s); disk full?", path, strerror(errno));
        return LF_ERR_IO;
    }
    return LF_OK;
}

typedef struct {
    const void *data;
    size_t len;
} blob;
static lf_status write_blob(FILE *f, const char *path, const void *ctx) {
    const blob *b = ctx;
    return lf_write_all(f, b->data, b->len, path);
}

lf_status lf_write_file_atomic(const char *path, const void *data, size_t len) {
    blob b = {data, len};
    return lf_write_atomic_with(path, write_blob, &b);
}

lf_status lf_publish_dir(const char *tmp, const char *dir) {
    lf_fsync_path(tmp);
    if (lf_path_exists(dir)) {
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) != 0) {
            lf_set_error("%s: cannot replace (%s)", dir, strerror(errno));
            return LF_ERR_IO;
        }
        lf_rm_rf(tmp); /* now the old contents */
    } else if (rename(tmp, dir) != 0) {
        lf_set_error("%s: cannot rename from %s (%s)", dir, tmp, strerror(errno));
        return LF_ERR_IO;
    }
    fsync_parent(dir);
    return LF_OK;
}
