/* Back-translation through Apertium (Debian's apertium + apertium-eng-spa): one process pair
 * "apertium -u eng-spa | apertium -u spa-eng" for a whole batch of texts instead of one per text
 * (each start loads the pair's transducers: about 0.5 s). The texts travel as one stream, each
 * after a marker paragraph "[@@<index>@@]" that Apertium passes through untouched; the stream is
 * written and read at once with poll(), so neither side can fill a pipe and wait on the other. */
#include "lmforge/augment.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char *p;
    size_t n, cap;
} buf;

static int buf_add(buf *b, const void *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

/* is prog an executable on PATH (or a path that is one)? */
static int on_path(const char *prog) {
    if (strchr(prog, '/')) return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    while (*path) {
        size_t l = strcspn(path, ":");
        char p[1024];
        snprintf(p, sizeof p, "%.*s/%s", (int)l, path, prog);
        if (l && access(p, X_OK) == 0) return 1;
        path += l;
        if (*path) path++;
    }
    return 0;
}

/* Runs the pair on in; out gets stdout, err the last of stderr; *rc the shell's exit status. */
static lf_status run_pair(const char *apertium, const buf *in, buf *out, char *err, size_t errcap, int *rc) {
    int pin[2], pout[2], perr[2];
    if (pipe(pin) || pipe(pout) || pipe(perr)) {
        lf_set_error("back-translation: pipe: %s", strerror(errno));
        return LF_ERR_IO;
    }
    pid_t pid = fork();
    if (pid < 0) {
        lf_set_error("back-translation: fork: %s", strerror(errno));
        return LF_ERR_IO;
    }
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        close(pin[0]), close(pin[1]), close(pout[0]), close(pout[1]), close(perr[0]), close(perr[1]);
        execlp("sh", "sh", "-c", "\"$0\" -u eng-spa | \"$0\" -u spa-eng", apertium, (char *)NULL);
        _exit(127);
    }
    close(pin[0]), close(pout[1]), close(perr[1]);
    void (*old)(int) = signal(SIGPIPE, SIG_IGN); /* a dying child must give an error, not kill us */
    fcntl(pin[1], F_SETFL, O_NONBLOCK);
    size_t off = 0, en = 0;
    int wfd = pin[1], ofd = pout[0], efd = perr[0];
    lf_status st = LF_OK;
    if (in->n == 0) close(wfd), wfd = -1;
    while (ofd >= 0 || efd >= 0) {
        struct pollfd fds[3] = {{wfd, POLLOUT, 0}, {ofd, POLLIN, 0}, {efd, POLLIN, 0}};
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            st = LF_ERR_IO;
            break;
        }
        if (wfd >= 0 && fds[0].revents) {
            ssize_t w = write(wfd, in->p + off, in->n - off);
            if (w > 0) off += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || off == in->n) close(wfd), wfd = -1;
        }
        if (ofd >= 0 && fds[1].revents) {
            char b[65536];
            ssize_t r = read(ofd, b, sizeof b);
            if (r > 0) {
                if (buf_add(out, b, (size_t)r)) st = LF_ERR_NOMEM;
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(ofd), ofd = -1;
            }
        }
        if (efd >= 0 && fds[2].revents) {
            char b[4096];
            ssize_t r = read(efd, b, sizeof b);
            if (r > 0) { /* keep the tail of what it said */
                for (ssize_t i = 0; i < r; i++) {
                    if (en + 1 >= errcap) {
                        memmove(err, err + errcap / 2, en - errcap / 2);
                        en -= errcap / 2;
                    }
                    err[en++] = b[i];
                }
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(efd), efd = -1;
            }
        }
        if (st) break;
    }
    if (wfd >= 0) close(wfd);
    if (ofd >= 0) close(ofd);
    if (efd >= 0) close(efd);
    err[en] = 0;
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    signal(SIGPIPE, old);
    *rc = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
    if (st == LF_ERR_NOMEM) lf_set_error("back-translation: out of memory");
    else if (st) lf_set_error("back-translation: poll: %s", strerror(errno));
    return st;
}

/* the text between marker i and the next marker, trimmed, with Apertium's leftover marks
 * ("#" before a word it could not generate, "*" and "@" before unknown or untranslated ones)
 * taken off where the source had none of that character */
static char *clean(const char *s, size_t n, const char *src) {
    while (n && (*s == '\n' || *s == ' ')) s++, n--;
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ')) n--;
    char *o = malloc(n + 1), *q = o;
    if (!o) return NULL;
    int keep_hash = strchr(src, '#') != NULL, keep_star = strchr(src, '*') != NULL, keep_at = strchr(src, '@') != NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int word_start = (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\n') && i + 1 < n && s[i + 1] != ' ' && s[i + 1] != '\n';
        if (word_start && ((c == '#' && !keep_hash) || (c == '*' && !keep_star) || (c == '@' && !keep_at))) continue;
        *q++ = c;
    }
    *q = 0;
    return o;
}

lf_status lf_backtranslate(const char *apertium, const char *const *texts, size_t n, char **out) {
    if (!apertium || !*apertium) apertium = "apertium";
    for (size_t i = 0; i < n; i++) out[i] = NULL;
    if (!on_path(apertium)) {
        lf_set_error("back-translation: '%s' not found: install Debian's apertium and apertium-eng-spa "
                     "(apt-get install apertium apertium-eng-spa)",
                     apertium);
        return LF_ERR_NOTFOUND;
    }
    if (!strcmp(apertium, "apertium") && (!lf_path_exists("/usr/share/apertium/modes/eng-spa.mode") ||
                                          !lf_path_exists("/usr/share/apertium/modes/spa-eng.mode"))) {
        lf_set_error("back-translation: the English-Spanish pair is not installed (no "
                     "/usr/share/apertium/modes/eng-spa.mode): apt-get install apertium-eng-spa");
        return LF_ERR_NOTFOUND;
    }
    buf in = {0}, res = {0};
    char mk[64], err[1024];
    lf_status st = LF_OK;
    for (size_t i = 0; i < n && !st; i++) {
        int l = snprintf(mk, sizeof mk, "[@@%zu@@]\n\n", i);
        if (buf_add(&in, mk, (size_t)l) || buf_add(&in, texts[i], strlen(texts[i])) || buf_add(&in, "\n\n", 2))
            st = LF_ERR_NOMEM;
    }
    int rc = 0;
    if (!st) st = run_pair(apertium, &in, &res, err, sizeof err, &rc);
    if (!st && rc != 0) {
        char *nl;
        while ((nl = strrchr(err, '\n')) && nl[1] == 0) *nl = 0;
        nl = strrchr(err, '\n');
        lf_set_error("back-translation: %s -u eng-spa | %s -u spa-eng failed (exit %d)%s%s%s", apertium, apertium, rc,
                     err[0] ? ": " : "", nl ? nl + 1 : err,
                     rc == 127 ? " (install Debian's apertium and apertium-eng-spa)" : "");
        st = LF_ERR_IO;
    }
    /* split at the markers, in order; a missing marker loses its text only */
    const char *p = res.p ? res.p : "";
    for (size_t i = 0; i < n && !st; i++) {
        int l = snprintf(mk, sizeof mk, "[@@%zu@@]", i);
        const char *m = strstr(p, mk);
        if (!m) continue;
        const char *b = m + l, *e = NULL;
        for (size_t j = i + 1; j < n && !e; j++) { /* the next marker that survived */
            char nx[64];
            snprintf(nx, sizeof nx, "[@@%zu@@]", j);
            e = strstr(b, nx);
            if (j > i + 64) break; /* so garbled output cannot make this quadratic */
        }
        if (!e) e = i + 1 < n ? NULL : b + strlen(b);
        if (!e) continue;
        if (!(out[i] = clean(b, (size_t)(e - b), texts[i]))) st = LF_ERR_NOMEM;
        else if (!out[i][0]) free(out[i]), out[i] = NULL;
        p = e;
    }
    if (st == LF_ERR_NOMEM) lf_set_error("back-translation: out of memory");
    if (st)
        for (size_t i = 0; i < n; i++) free(out[i]), out[i] = NULL;
    free(in.p);
    free(res.p);
    return st;
}
