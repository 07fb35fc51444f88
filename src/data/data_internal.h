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

typedef struct {
    lf_doc *d;
    size_t n, cap;
    char **labels;
    int n_labels;
    char **tasks;
    int n_tasks;
} doc_list;

lf_status lf_docs_push(doc_list *l, char *text, size_t len, size_t prompt_len, int task, int label, const char *src);
int lf_docs_intern(char ***names, int *n, const char *s); /* index of s, adding it; -1 on OOM */
void lf_docs_free(doc_list *l);
lf_status lf_builtin_docs(const char *name, doc_list *out);

#endif
