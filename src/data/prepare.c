/* lmforge prepare: text files, folders, JSONL task files and built-in corpora -> token shards.
 * Documents are gathered (in a deterministic order), split into train/validation by a seeded
 * hash of their content (stratified by label for classification data), tokenized in parallel
 * with one encoder per thread, and written as two shards plus meta.json. Labelled built-in sets
 * carry a test split fixed by their source (or by a fixed seed): it is never part of the
 * train/validation split, and is written as test.bin and, for `eval --task classify` and
 * baselines, with the other splits as {train,val,test}.jsonl. */
#define _GNU_SOURCE /* memmem */
#include "data_internal.h"
#include "lmforge/report.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

lf_status lf_docs_push(doc_list *l, char *text, size_t len, size_t prompt_len, int task, int label, const char *src) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 1024;
        lf_doc *d = realloc(l->d, nc * sizeof *d);
        if (!d) {
            free(text);
            lf_set_error("out of memory holding %zu documents", l->n);
            return LF_ERR_NOMEM;
        }
        l->d = d;
        l->cap = nc;
    }
    l->d[l->n++] = (lf_doc){text, len, prompt_len, task, label, src, 0};
    return LF_OK;
}

static size_t name_hash(const char *s) { return (size_t)lf_fnv1a(s, strlen(s)); }

int lf_docs_intern(lf_names *t, const char *s) {
    if ((size_t)t->n * 2 + 2 > t->mask + 1 || !t->slot) { /* grow the index (load <= 1/2) */
        size_t cap = t->slot ? (t->mask + 1) * 2 : 64;
        uint32_t *slot = calloc(cap, sizeof *slot);
        if (!slot) {
            lf_set_error("out of memory interning %d names", t->n);
            return -1;
        }
        for (int i = 0; i < t->n; i++) {
            size_t h = name_hash(t->name[i]) & (cap - 1);
            while (slot[h]) h = (h + 1) & (cap - 1);
            slot[h] = (uint32_t)i + 1;
        }
        free(t->slot);
        t->slot = slot;
        t->mask = cap - 1;
    }
    size_t h = name_hash(s) & t->mask;
    while (t->slot[h]) {
        int i = (int)t->slot[h] - 1;
        if (!strcmp(t->name[i], s)) return i;
        h = (h + 1) & t->mask;
    }
    if (t->n == INT32_MAX - 1) {
        lf_set_error("more than %d distinct names", t->n);
        return -1;
    }
    if (t->n == t->cap) {
        int nc = t->cap ? (t->cap > INT32_MAX / 2 ? INT32_MAX - 1 : t->cap * 2) : 16;
        char **nn = realloc(t->name, sizeof *nn * (size_t)nc);
        if (!nn) {
            lf_set_error("out of memory interning %d names", t->n);
            return -1;
        }
        t->name = nn;
        t->cap = nc;
    }
    if (!(t->name[t->n] = strdup(s))) {
        lf_set_error("out of memory interning %d names", t->n);
        return -1;
    }
    t->slot[h] = (uint32_t)t->n + 1;
    return t->n++;
}

void lf_names_free(lf_names *t) {
    for (int i = 0; i < t->n; i++) free(t->name[i]);
    free(t->name);
    free(t->slot);
    memset(t, 0, sizeof *t);
}

void lf_docs_free(doc_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->d[i].text);
    free(l->d);
    lf_names_free(&l->labels);
    lf_names_free(&l->tasks);
    memset(l, 0, sizeof *l);
}

/* ---------------------------------------------------------------- reading inputs */

typedef struct {
    const lf_prepare_opts *o;
    doc_list *docs;
    size_t skipped;
    char **paths; /* interned source paths for messages */
    size_t npaths, cap_paths;
    struct stat *dirs; /* the folders being walked (device + inode), to catch symbolic-link loops */
    int ndirs, cap_dirs;
} gather_ctx;

static const char *keep_path(gather_ctx *g, const char *p) {
    if (g->npaths == g->cap_paths) {
        size_t nc = g->cap_paths ? g->cap_paths * 2 : 64;
        char **np = realloc(g->paths, sizeof *np * nc);
        if (!np) return p;
        g->paths = np;
        g->cap_paths = nc;
    }
    g->paths[g->npaths] = strdup(p);
    return g->paths[g->npaths] ? g->paths[g->npaths++] : p;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* a JSON string's value as a name: no NUL inside (jansson refuses \u0000 unless asked; checked anyway) */
static const char *name_value(json_t *v) {
    const char *s = json_string_value(v);
    return s && strlen(s) == json_string_length(v) ? s : NULL;
}

lf_status lf_jsonl_record(doc_list *docs, const char *line, size_t len, char **text_out, size_t *text_len,
                          size_t *prompt_len, int *task_out, int *label_out) {
    *text_out = NULL;
    json_error_t jerr;
    json_t *r = json_loadb(line, len, 0, &jerr);
#define REC_FAIL(...)                                                                              \
    do {                                                                                           \
        lf_set_error(__VA_ARGS__);                                                                 \
        json_decref(r);                                                                            \
        return LF_ERR_FORMAT;                                                                      \
    } while (0)
    if (!r) REC_FAIL("invalid JSON at column %d: %s", jerr.column, jerr.text);
    if (!json_is_object(r)) REC_FAIL("each line must be a JSON object");
    json_t *text = json_object_get(r, "text"), *prompt = json_object_get(r, "prompt"),
           *comp = json_object_get(r, "completion"), *label = json_object_get(r, "label"),
           *task = json_object_get(r, "task");
    int task_id = 0;
    if (task) {
        if (!json_is_string(task)) REC_FAIL("\"task\" must be a string");
        if (!name_value(task)) REC_FAIL("\"task\" contains a NUL character");
        task_id = lf_docs_intern(&docs->tasks, name_value(task));
        if (task_id < 0) {
            json_decref(r);
            return LF_ERR_NOMEM;
        }
        if (task_id > 65535) REC_FAIL("more than 65536 tasks");
    }
    char *t;
    size_t tl, pl = 0;
    int lab = -1;
    if (text) {
        if (!json_is_string(text)) REC_FAIL("\"text\" must be a string, got %s", json_is_null(text) ? "null" : "another type");
        if (prompt || comp) REC_FAIL("a record has either \"text\" or \"prompt\"+\"completion\", not both");
        if (label) { /* any length: a label is never cut (two long labels must not become one) */
            char num[32];
            const char *lb = num;
            if (json_is_string(label)) {
                if (!(lb = name_value(label))) REC_FAIL("\"label\" contains a NUL character");
            } else if (json_is_integer(label)) snprintf(num, sizeof num, "%lld", (long long)json_integer_value(label));
            else REC_FAIL("\"label\" must be a string or an integer");
            if (!lb[0]) REC_FAIL("\"label\" is empty");
            lab = lf_docs_intern(&docs->labels, lb);
            if (lab < 0) {
                json_decref(r);
                return LF_ERR_NOMEM;
            }
        }
        tl = json_string_length(text);
        t = malloc(tl + 1);
        if (!t) REC_FAIL("out of memory");
        memcpy(t, json_string_value(text), tl);
    } else if (prompt || comp) {
        if (!json_is_string(prompt)) REC_FAIL("\"prompt\" must be a string (missing or mistyped)");
        if (!json_is_string(comp)) REC_FAIL("\"completion\" must be a string (missing or mistyped)");
        if (label) REC_FAIL("\"label\" goes with \"text\", not with prompt/completion");
        pl = json_string_length(prompt);
        tl = pl + json_string_length(comp);
        t = malloc(tl + 1);
        if (!t) REC_FAIL("out of memory");
        memcpy(t, json_string_value(prompt), pl);
        memcpy(t + pl, json_string_value(comp), tl - pl);
    } else {
        REC_FAIL("record has no \"text\" and no \"prompt\"/\"completion\" field");
    }
#undef REC_FAIL
    t[tl] = 0;
    json_decref(r);
    *text_out = t;
    *text_len = tl;
    *prompt_len = pl;
    *task_out = task_id;
    *label_out = lab;
    return LF_OK;
}

static lf_status jsonl_records(gather_ctx *g, const char *path, char *buf, size_t len) {
    const char *src = keep_path(g, path);
    size_t line = 0, pos = 0, found = 0;
    while (pos < len) {
        char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        line++;
        size_t a = pos, b = end;
        pos = end + 1;
        while (a < b && (buf[a] == ' ' || buf[a] == '\t' || buf[a] == '\r')) a++;
        while (b > a && (buf[b - 1] == ' ' || buf[b - 1] == '\t' || buf[b - 1] == '\r')) b--;
        if (a == b) continue;
        char *t;
        size_t tl, pl;
        int task, lab;
        lf_status st = lf_jsonl_record(g->docs, buf + a, b - a, &t, &tl, &pl, &task, &lab);
        if (st) {
            size_t n = strlen(lf_last_error()) + 1;
            char *m = malloc(n);
            if (m) {
                memcpy(m, lf_last_error(), n);
                lf_set_error("%s:%zu: %s", path, line, m);
                free(m);
            }
            return st;
        }
        st = lf_docs_push(g->docs, t, tl, pl, task, lab, src);
        if (st) return st;
        found++;
    }
    if (!found) {
        lf_set_error("%s: no records (the file has only blank lines)", path);
        return LF_ERR_FORMAT;
    }
    return LF_OK;
}

static void skip_note(gather_ctx *g, const char *path, const char *why) {
    if (!g->o->quiet) fprintf(stderr, "lmforge prepare: skipping %s: %s\n", path, why);
    g->skipped++;
}

/* explicit: the user named this file (errors) rather than a folder holding it (skip + note) */
static lf_status add_file(gather_ctx *g, const char *path, int explicit_file) {
    size_t len;
    char *buf = lf_read_file(path, &len); /* never blocks: a FIFO swapped in since the stat is refused */
    if (!buf) return LF_ERR_IO;
    const char *why = NULL;
    if (len == 0) why = "empty";
    else if (memchr(buf, 0, len < 8192 ? len : 8192)) why = "binary (contains NUL bytes)";
    if (why) {
        free(buf);
        if (explicit_file) {
            lf_set_error("%s: file is %s; give text, or JSONL with a .jsonl extension", path, why);
            return LF_ERR_FORMAT;
        }
        skip_note(g, path, why);
        return LF_OK;
    }
    if (ends_with(path, ".jsonl")) {
        lf_status st = jsonl_records(g, path, buf, len);
        free(buf);
        return st;
    }
    const char *src = keep_path(g, path);
    const char *delim = g->o->delimiter;
    if (!delim || !*delim) return lf_docs_push(g->docs, buf, len, 0, 0, -1, src);
    size_t dl = strlen(delim), pos = 0;
    lf_status st = LF_OK;
    while (pos <= len && !st) {
        char *hit = memmem(buf + pos, len - pos, delim, dl);
        size_t end = hit ? (size_t)(hit - buf) : len;
        size_t a = pos, b = end;
        while (a < b && (buf[a] == '\n' || buf[a] == '\r')) a++; /* no empty documents from runs of delimiters */
        while (b > a && (buf[b - 1] == '\n' || buf[b - 1] == '\r')) b--;
        if (b > a) {
            char *d = malloc(b - a + 1);
            if (!d) st = LF_ERR_NOMEM;
            else {
                memcpy(d, buf + a, b - a);
                st = lf_docs_push(g->docs, d, b - a, 0, 0, -1, src);
            }
        }
        if (!hit) break;
        pos = end + dl;
    }
    free(buf);
    return st;
}

static const char *kind_name(mode_t m) {
    return S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : "not a regular file";
}

/* top: named on the command line (problems are errors); inside a folder, what is not a readable
 * regular file or folder is skipped with a one-line note naming it */
static lf_status add_path(gather_ctx *g, const char *path, int top) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int err = errno;
        if (!top && lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode)) { /* dangling or looping symbolic link */
            skip_note(g, path, err == ELOOP ? "symbolic link loop" : "broken symbolic link");
            return LF_OK;
        }
        lf_set_error("%s: %s", path, strerror(err));
        return LF_ERR_IO;
    }
    if (S_ISREG(sb.st_mode)) return add_file(g, path, top);
    if (!S_ISDIR(sb.st_mode)) { /* sockets, FIFOs, devices: reading them could block or never end */
        if (top) {
            lf_set_error("%s: is %s; give text files, folders or .jsonl files", path, kind_name(sb.st_mode));
            return LF_ERR_ARG;
        }
        skip_note(g, path, kind_name(sb.st_mode));
        return LF_OK;
    }
    for (int i = 0; i < g->ndirs; i++)
        if (g->dirs[i].st_dev == sb.st_dev && g->dirs[i].st_ino == sb.st_ino) { /* a link back up the tree */
            if (top) return LF_OK; /* the same folder named twice, or a folder and its parent: read once */
            skip_note(g, path, "symbolic link loop (a folder that holds itself)");
            return LF_OK;
        }
    if (g->ndirs == g->cap_dirs) {
        int nc = g->cap_dirs ? g->cap_dirs * 2 : 16;
        struct stat *nd = realloc(g->dirs, sizeof *nd * (size_t)nc);
        if (!nd) return LF_ERR_NOMEM;
        g->dirs = nd;
        g->cap_dirs = nc;
    }
    g->dirs[g->ndirs++] = sb;
    struct dirent **ents;
    int n = scandir(path, &ents, NULL, alphasort); /* sorted: the same documents in the same order */
    if (n < 0) {
        g->ndirs--;
        lf_set_error("%s: cannot list folder (%s)", path, strerror(errno));
        return LF_ERR_IO;
    }
    size_t before = g->docs->n, skipped_before = g->skipped;
    lf_status st = LF_OK;
    for (int i = 0; i < n; i++) {
        if (!st && ents[i]->d_name[0] != '.') {
            size_t cl = strlen(path) + strlen(ents[i]->d_name) + 2;
            char *child = malloc(cl); /* any depth: never a cut path */
            if (!child) st = LF_ERR_NOMEM;
            else {
                snprintf(child, cl, "%s/%s", path, ents[i]->d_name);
                st = add_path(g, child, 0);
                free(child);
            }
        }
        free(ents[i]);
    }
    free(ents);
    g->ndirs--;
    if (!st && top && g->docs->n == before) {
        lf_set_error("%s: folder has no readable text files (hidden, empty and binary files, sockets, FIFOs and "
                     "devices are skipped%s)", path, g->skipped > skipped_before ? "; see the notes above" : "");
        return LF_ERR_NOTFOUND;
    }
    return st;
}

/* ---------------------------------------------------------------- split */

typedef struct {
    int64_t group; /* label, -1 for unlabelled documents among labelled ones; 0 without labels */
    uint64_t h;
    size_t i;
} keyed;

static int cmp_keyed(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->group != y->group) return x->group < y->group ? -1 : 1;
    return x->h < y->h ? -1 : x->h > y->h ? 1 : (x->i < y->i ? -1 : x->i > y->i);
}

/* is_val[i] = 1 for validation documents, 2 for the source's test split (left out of the draw).
 * Keyed by content, so the split does not depend on the order of the inputs; labelled data is
 * split per label (stratified). One sort by (label, key): O(n log n) however many labels. */
static lf_status split_docs(const doc_list *l, float frac, uint64_t seed, uint8_t *is_val) {
    keyed *k = malloc(sizeof *k * (l->n ? l->n : 1));
    if (!k) return LF_ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->d[i].test) {
            is_val[i] = 2;
            continue;
        }
        k[n++] = (keyed){l->labels.n > 0 ? l->d[i].label : 0, lf_hash64(seed, lf_fnv1a(l->d[i].text, l->d[i].len), 0), i};
    }
    qsort(k, n, sizeof *k, cmp_keyed);
    for (size_t a = 0; a < n;) {
        size_t b = a + 1;
        while (b < n && k[b].group == k[a].group) b++;
        size_t m = b - a;
        size_t nv = (size_t)((double)frac * (double)m + 0.5);
        if (frac > 0 && nv == 0 && m >= 2) nv = 1;
        if (nv >= m && m > 0) nv = m - 1; /* keep at least one training document */
        for (size_t j = 0; j < m; j++) is_val[k[a + j].i] = j < nv;
        a = b;
    }
    free(k);
    return LF_OK;
}

/* ---------------------------------------------------------------- tokenize + write */

static int utf8_valid(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k || i + k > n) return 0;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xc0) != 0x80) return 0;
        i += k;
    }
    return 1;
}

typedef struct {
    lf_ids ids;
    size_t n_prompt; /* leading ids that carry no loss */
    lf_status st;
} doc_ids;

static lf_status tokenize_doc(lf_tok_encoder *e, const lf_tokenizer *t, const doc_list *l, const lf_doc *d, doc_ids *out) {
    lf_ids ids = {0};
    lf_status st = LF_OK;
    if (lf_tokenizer_bos(t) >= 0 && lf_tokenizer_kind(t) == LF_TOK_SENTENCEPIECE) st = lf_ids_push(&ids, lf_tokenizer_bos(t));
    size_t prompt = 0;
    if (!st && d->label >= 0) { /* classification: "<text>\nlabel:" is the prompt, " <label>" the answer */
        const char *lab = l->labels.name[d->label];
        char *p = malloc(d->len + 8);
        if (!p) st = LF_ERR_NOMEM;
        else {
            memcpy(p, d->text, d->len);
            memcpy(p + d->len, "\nlabel:", 7);
            st = lf_tok_encode(e, p, d->len + 7, 0, &ids);
            free(p);
        }
        prompt = ids.n;
        size_t ll = strlen(lab);
        char *ans = st ? NULL : malloc(ll + 2); /* the whole label, however long */
        if (!st && !ans) st = LF_ERR_NOMEM;
        if (!st) {
            ans[0] = ' ';
            memcpy(ans + 1, lab, ll + 1);
            st = lf_tok_encode(e, ans, ll + 1, LF_ENC_CONTINUE, &ids);
        }
        free(ans);
    } else if (!st && d->prompt_len > 0) {
        st = lf_tok_encode(e, d->text, d->prompt_len, 0, &ids);
        prompt = ids.n;
        if (!st) st = lf_tok_encode(e, d->text + d->prompt_len, d->len - d->prompt_len, LF_ENC_CONTINUE, &ids);
    } else if (!st) {
        st = lf_tok_encode(e, d->text, d->len, 0, &ids);
        prompt = lf_tokenizer_kind(t) == LF_TOK_SENTENCEPIECE && lf_tokenizer_bos(t) >= 0; /* BOS is never a target */
    }
    if (!st && lf_tokenizer_eos(t) >= 0) st = lf_ids_push(&ids, lf_tokenizer_eos(t));
    if (ids.n && ids.cap > ids.n + ids.n / 4) { /* many small documents: keep what they hold, not 1 KB each */
        int32_t *p = realloc(ids.ids, ids.n * sizeof *p);
        if (p) {
            ids.ids = p;
            ids.cap = ids.n;
        }
    }
    out->ids = ids;
    out->n_prompt = prompt;
    out->st = st;
    return st;
}

static lf_status builder_append(shard_builder *b, const doc_ids *di, int task, int need_mask) {
    size_t n = di->ids.n;
    if (b->n + n > b->cap) {
        size_t nc = (b->n + n) * 2;
        int32_t *p = realloc(b->tokens, nc * sizeof *p);
        if (!p) return LF_ERR_NOMEM;
        b->tokens = p;
        if (need_mask) {
            uint8_t *m = realloc(b->mask, nc);
            if (!m) return LF_ERR_NOMEM;
            b->mask = m;
        }
        b->cap = nc;
    }
    if (b->n_docs + 2 > b->doc_cap) {
        size_t nc = (b->n_docs + 2) * 2;
        uint64_t *p = realloc(b->doc_start, nc * sizeof *p);
        uint16_t *q = realloc(b->tasks, nc * sizeof *q);
        if (p) b->doc_start = p;
        if (q) b->tasks = q;
        if (!p || !q) return LF_ERR_NOMEM;
        b->doc_cap = nc;
    }
    b->doc_start[b->n_docs] = b->n;
    b->tasks[b->n_docs] = (uint16_t)task;
    b->n_docs++;
    memcpy(b->tokens + b->n, di->ids.ids, n * sizeof(int32_t));
    if (need_mask)
        for (size_t i = 0; i < n; i++) b->mask[b->n + i] = i >= di->n_prompt;
    b->n += n;
    return LF_OK;
}

static lf_status write_text_only(const lf_prepare_opts *o, const doc_list *l) {
    char path[4200];
    int jsonl = l->labels.n > 0;
    snprintf(path, sizeof path, "%s/%s.%s", o->output, o->builtin ? o->builtin : "corpus", jsonl ? "jsonl" : "txt");
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    for (size_t i = 0; buf && i < l->n; i++) {
        char *piece;
        if (jsonl) {
            json_t *r = json_object();
            json_object_set_new(r, "text", json_stringn(l->d[i].text, l->d[i].len));
            json_object_set_new(r, "label", json_string(l->labels.name[l->d[i].label]));
            piece = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(r);
        } else {
            piece = malloc(l->d[i].len + 1);
            if (piece) {
                memcpy(piece, l->d[i].text, l->d[i].len);
                piece[l->d[i].len] = 0;
            }
        }
        if (!piece) break;
        size_t pl = strlen(piece);
        while (n + pl + 2 > cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        if (buf) {
            memcpy(buf + n, piece, pl);
            n += pl;
            buf[n++] = '\n';
            if (!jsonl) buf[n++] = '\n'; /* documents separated by a blank line */
        }
        free(piece);
    }
    if (!buf) return LF_ERR_NOMEM;
    lf_status st = lf_write_file_atomic(path, buf, n);
    free(buf);
    if (!st && !o->quiet) printf("wrote %s (%zu documents)\n", path, l->n);
    return st;
}

static const char *const split_name[3] = {"train", "val", "test"};

/* DIR/{train,val,test}.jsonl: {"text", "label"} per line, documents in input order */
static lf_status write_split_jsonl(const lf_prepare_opts *o, const doc_list *l, const uint8_t *split) {
    for (int v = 0; v < 3; v++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.jsonl", o->output, split_name[v]);
        size_t cap = 1 << 20, n = 0;
        char *buf = malloc(cap);
        for (size_t i = 0; buf && i < l->n; i++) {
            if (split[i] != v) continue;
            json_t *r = json_object();
            json_object_set_new(r, "text", json_stringn(l->d[i].text, l->d[i].len));
            json_object_set_new(r, "label", json_string(l->labels.name[l->d[i].label]));
            char *piece = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(r);
            if (!piece) {
                free(buf);
                buf = NULL;
                break;
            }
            size_t pl = strlen(piece);
            while (buf && n + pl + 1 > cap) {
                char *nb = realloc(buf, cap *= 2);
                if (!nb) free(buf);
                buf = nb;
            }
            if (buf) {
                memcpy(buf + n, piece, pl);
                n += pl;
                buf[n++] = '\n';
            }
            free(piece);
        }
        if (!buf) {
            lf_set_error("%s: out of memory", path);
            return LF_ERR_NOMEM;
        }
        lf_status st = lf_write_file_atomic(path, buf, n);
        free(buf);
        if (st) return st;
    }
    if (!o->quiet) printf("wrote %s/{train,val,test}.jsonl (text, label)\n", o->output);
    return LF_OK;
}

/* counts[label * 3 + split]; NULL on OOM */
static size_t *label_counts(const doc_list *l, const uint8_t *split) {
    size_t *c = calloc((size_t)l->labels.n * 3 + 3, sizeof *c);
    for (size_t i = 0; c && i < l->n; i++)
        if (l->d[i].label >= 0) c[(size_t)l->d[i].label * 3 + split[i]]++;
    return c;
}

static void print_label_counts(const doc_list *l, const size_t *c, int has_test) {
    int w = 5;
    for (int j = 0; j < l->labels.n; j++) {
        int k = (int)strlen(l->labels.name[j]);
        if (k > w) w = k < 40 ? k : 40;
    }
    printf("%-*s %8s %8s", w, "label", "train", "val");
    if (has_test) printf(" %8s", "test");
    printf("\n");
    size_t tot[3] = {0};
    for (int j = 0; j < l->labels.n; j++) {
        printf("%-*.*s", w, w, l->labels.name[j]);
        for (int v = 0; v < 2 + has_test; v++) {
            printf(" %8zu", c[(size_t)j * 3 + v]);
            tot[v] += c[(size_t)j * 3 + v];
        }
        printf("\n");
    }
    printf("%-*s", w, "total");
    for (int v = 0; v < 2 + has_test; v++) printf(" %8zu", tot[v]);
    printf("\n");
}

lf_status lf_prepare(const lf_prepare_opts *o, lf_prepare_stats *stats) {
    memset(stats, 0, sizeof *stats);
    double t0 = lf_now();
    if (!o->output) {
        lf_set_error("prepare: an output folder is required");
        return LF_ERR_ARG;
    }
    if (strlen(o->output) + 64 > 4200) { /* the file names built below would be cut */
        lf_set_error("prepare: output folder path too long (%zu bytes)", strlen(o->output));
        return LF_ERR_ARG;
    }
    if (!(o->val_fraction >= 0.0f && o->val_fraction < 1.0f)) {
        lf_set_error("prepare: --val-fraction %g must be in [0, 1)", o->val_fraction);
        return LF_ERR_ARG;
    }
    if (!o->text_only && !o->tokenizer) { /* before any reading or fetching */
        lf_set_error("prepare: --tokenizer is required (or --text-only to write the corpus as text)");
        return LF_ERR_ARG;
    }
    if (mkdir(o->output, 0755) != 0 && errno != EEXIST) {
        lf_set_error("%s: cannot create folder (%s)", o->output, strerror(errno));
        return LF_ERR_IO;
    }
    doc_list docs = {0};
    gather_ctx g = {.o = o, .docs = &docs};
    lf_status st = LF_OK;
    if (o->builtin) st = lf_builtin_docs(o->builtin, &docs);
    for (int i = 0; i < o->n_inputs && !st; i++) st = add_path(&g, o->inputs[i], 1);
    lf_tokenizer *tok = NULL;
    if (!st && !docs.n) {
        lf_set_error("prepare: no documents in the inputs (give text files, folders or .jsonl files, or --builtin)");
        st = LF_ERR_NOTFOUND;
    }
    uint8_t *is_val = NULL;
    int has_test = 0;
    if (!st) {
        is_val = calloc(docs.n ? docs.n : 1, 1);
        if (!is_val) st = LF_ERR_NOMEM;
    }
    if (!st) st = split_docs(&docs, o->val_fraction, o->seed, is_val);
    for (size_t i = 0; !st && i < docs.n; i++) has_test |= is_val[i] == 2;
    if (!st && docs.labels.n && !o->quiet) {
        size_t *c = label_counts(&docs, is_val);
        if (c) print_label_counts(&docs, c, has_test);
        free(c);
    }
    if (!st && has_test && docs.labels.n) st = write_split_jsonl(o, &docs, is_val);
    if (!st && o->text_only) {
        if (!has_test) st = write_text_only(o, &docs);
        goto done;
    }
    if (!st) st = lf_tokenizer_load(&tok, o->tokenizer);
    doc_ids *di = NULL;
    shard_builder sb[3];
    memset(sb, 0, sizeof sb);
    if (!st) {
        di = calloc(docs.n, sizeof *di);
        if (!di) st = LF_ERR_NOMEM;
    }
    int need_mask = docs.labels.n > 0;
    for (size_t i = 0; i < docs.n; i++) {
        need_mask |= docs.d[i].prompt_len > 0;
        stats->bytes += docs.d[i].len;
    }
    if (!st) {
        int nt = o->threads > 0 ? o->threads : lf_num_threads();
        lf_progress pr;
        lf_progress_start(&pr, "tokenizing", "MB", stats->bytes / 1e6, o->quiet);
        size_t done_bytes = 0, bad_utf8 = 0;
        int fail = 0;
#pragma omp parallel num_threads(nt) reduction(+ : bad_utf8) reduction(| : fail)
        {
            lf_tok_encoder *e = NULL;
            if (lf_tok_encoder_init(&e, tok)) fail = 1;
#pragma omp for schedule(dynamic, 8)
            for (size_t i = 0; i < docs.n; i++) {
                if (fail) continue;
                doc_ids local;
                if (tokenize_doc(e, tok, &docs, &docs.d[i], &local)) fail = 1;
                di[i] = local;
                bad_utf8 += !utf8_valid((const unsigned char *)docs.d[i].text, docs.d[i].len);
                size_t now;
#pragma omp atomic capture
                now = done_bytes += docs.d[i].len;
                if (omp_get_thread_num() == 0) lf_progress_update(&pr, now / 1e6, NULL);
            }
            lf_tok_encoder_free(e);
        }
        lf_progress_end(&pr);
        stats->invalid_utf8_docs = bad_utf8;
        for (size_t i = 0; i < docs.n && !st; i++)
            if (di[i].st) st = di[i].st;
        if (!st && fail) st = LF_ERR_NOMEM;
    }
    for (size_t i = 0; i < docs.n && !st; i++) { /* documents keep their input order within each split */
        int v = is_val[i];
        sb[v].has_tasks = docs.tasks.n > 0;
        st = builder_append(&sb[v], &di[i], docs.d[i].task, need_mask);
        stats->docs[v]++;
        stats->tokens[v] += di[i].ids.n;
    }
    for (int v = 0; v < 2 + has_test && !st; v++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.bin", o->output, split_name[v]);
        if (!need_mask) {
            free(sb[v].mask);
            sb[v].mask = NULL;
        }
        st = lf_shard_write(path, &sb[v], lf_tokenizer_fingerprint(tok), (uint32_t)lf_tokenizer_vocab_size(tok));
    }
    if (!st && lf_tokenizer_kind(tok) == LF_TOK_BYTELEVEL) { /* shards + tokenizer travel together */
        char path[4200];
        snprintf(path, sizeof path, "%s/tokenizer.json", o->output);
        st = lf_tokenizer_save_json(tok, path);
    }
    if (!st) { /* meta.json: what the shards hold and how they were made */
        json_t *m = json_object(), *labels = json_array(), *tasks = json_array();
        char fp[32];
        snprintf(fp, sizeof fp, "%016llx", (unsigned long long)lf_tokenizer_fingerprint(tok));
        json_object_set_new(m, "format", json_string("lmforge-shards"));
        json_object_set_new(m, "version", json_integer(LF_SHARD_VERSION));
        json_object_set_new(m, "tokenizer", json_string(o->tokenizer));
        json_object_set_new(m, "tokenizer_fingerprint", json_string(fp));
        json_object_set_new(m, "vocab_size", json_integer(lf_tokenizer_vocab_size(tok)));
        json_object_set_new(m, "kind", json_string(docs.labels.n ? "classification" : need_mask ? "prompt-completion" : "text"));
        if (docs.labels.n) json_object_set_new(m, "verbalizer", json_string("{text}\nlabel: {label}"));
        for (int i = 0; i < docs.labels.n; i++) json_array_append_new(labels, json_string(docs.labels.name[i]));
        for (int i = 0; i < docs.tasks.n; i++) json_array_append_new(tasks, json_string(docs.tasks.name[i]));
        json_object_set_new(m, "labels", labels);
        json_object_set_new(m, "tasks", tasks);
        json_object_set_new(m, "val_fraction", json_real(round(o->val_fraction * 1e6) / 1e6));
        json_object_set_new(m, "seed", json_integer((json_int_t)o->seed));
        json_object_set_new(m, "train_docs", json_integer((json_int_t)stats->docs[0]));
        json_object_set_new(m, "val_docs", json_integer((json_int_t)stats->docs[1]));
        json_object_set_new(m, "train_tokens", json_integer((json_int_t)stats->tokens[0]));
        json_object_set_new(m, "val_tokens", json_integer((json_int_t)stats->tokens[1]));
        if (has_test) { /* the source's test split: test.bin, and with the others as JSONL */
            json_object_set_new(m, "test_docs", json_integer((json_int_t)stats->docs[2]));
            json_object_set_new(m, "test_tokens", json_integer((json_int_t)stats->tokens[2]));
            json_object_set_new(m, "jsonl", json_string("{train,val,test}.jsonl"));
        }
        if (docs.labels.n) { /* documents per label and split */
            size_t *c = label_counts(&docs, is_val);
            json_t *lc = json_object();
            for (int v = 0; c && v < 2 + has_test; v++) {
                json_t *sp = json_object();
                for (int j = 0; j < docs.labels.n; j++)
                    json_object_set_new(sp, docs.labels.name[j], json_integer((json_int_t)c[(size_t)j * 3 + v]));
                json_object_set_new(lc, split_name[v], sp);
            }
            json_object_set_new(m, "label_counts", lc);
            free(c);
        }
        json_object_set_new(m, "input_bytes", json_integer((json_int_t)stats->bytes));
        char *s = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(m);
        char path[4200];
        snprintf(path, sizeof path, "%s/meta.json", o->output);
        st = s ? lf_write_file_atomic(path, s, strlen(s)) : LF_ERR_NOMEM;
        free(s);
    }
    stats->n_labels = docs.labels.n;
    stats->n_tasks = docs.tasks.n;
    for (size_t i = 0; di && i < docs.n; i++) lf_ids_free(&di[i].ids);
    free(di);
    for (int v = 0; v < 3; v++) {
        free(sb[v].tokens);
        free(sb[v].mask);
        free(sb[v].doc_start);
        free(sb[v].tasks);
    }
done:
    free(is_val);
    stats->skipped_files = g.skipped;
    stats->seconds = lf_now() - t0;
    for (size_t i = 0; i < g.npaths; i++) free(g.paths[i]);
    free(g.paths);
    free(g.dirs);
    lf_tokenizer_free(tok);
    lf_docs_free(&docs);
    return st;
}
