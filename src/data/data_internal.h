/* data module internals shared by shard.c, prepare.c and builtin.c */
#ifndef LF_DATA_INTERNAL_H
#define LF_DATA_INTERNAL_H

#include "lmforge/data.h"

typedef struct {
    int32_t *tokens;
    size_t n, cap;
    uint64_t *doc_start; /* n_docs + 1 entries once finished */
    size_t n_docs, doc_cap;
    uint8_t *mask;       /* NULL until a document needs one */
    uint16_t *tasks;
    size_t task_cap;
    int has_tasks;
} shard_builder;

lf_status lf_shard_write(const char *path, const shard_builder *b, uint64_t fingerprint, uint32_t vocab);

/* a document: text bytes, how many leading bytes are prompt (no loss), task id */
typedef struct {
    char *text;
    size_t len, prompt_len;
    int task;
    int label;      /* index into the label table, or -1 */
    const char *src; /* file it came from (for messages) */
    int test;        /* 1: in the test split the source fixed (built-in labelled sets) */
} lf_doc;

/* interned names (labels, tasks): index by hash, so n distinct names cost O(n), not O(n^2) */
typedef struct {
    char **name; /* NUL-terminated; a name holds no NUL */
    int n, cap;
    uint32_t *slot; /* index + 1, 0 = empty */
    size_t mask;
} lf_names;

typedef struct {
    lf_doc *d;
    size_t n, cap;
    lf_names labels, tasks;
} doc_list;

lf_status lf_docs_push(doc_list *l, char *text, size_t len, size_t prompt_len, int task, int label, const char *src);
int lf_docs_intern(lf_names *t, const char *s); /* index of s, adding it; -1 on OOM (message set) */
void lf_names_free(lf_names *t);

/* One JSONL record (a line without its newline) -> the document's text, prompt length, task and
 * label; names are interned into docs. LF_ERR_FORMAT with a message (without file and line: the
 * caller adds them), *text malloc'd on success. Exposed for the fuzzers. */
lf_status lf_jsonl_record(doc_list *docs, const char *line, size_t len, char **text, size_t *text_len,
                          size_t *prompt_len, int *task, int *label);
void lf_docs_free(doc_list *l);
lf_status lf_builtin_docs(const char *name, doc_list *out);

/* The labelled built-in sets' source formats (builtin.c), exposed for the tests. src names the
 * file in messages. Rotten Tomatoes: CSV with a header naming "category" and "text" (RFC 4180
 * quoting), categories fresh/rotten kept and plot dropped (documents' src: "builtin"). Orange .tab: 3 header lines, then
 * "label<TAB>text" per line; test marks the documents as the test split. */
lf_status lf_bz2_read(const char *path, char **buf, size_t *len);
lf_status lf_rt_csv_docs(const char *buf, size_t len, const char *src, doc_list *out);
lf_status lf_tab_docs(const char *buf, size_t len, const char *src, int test, doc_list *out);
/* marks round(frac * n) documents of each label as test, keyed by a hash of (seed, text) */
lf_status lf_mark_test_split(doc_list *l, float frac, uint64_t seed);

#endif
