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

#endif
