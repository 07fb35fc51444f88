/* JSONL records of 'lmforge prepare' (lf_jsonl_record, the parser prepare uses per line): text,
 * prompt/completion, label, task. Labels and tasks are interned across the lines of one input;
 * an accepted record's label and task must come back by name, never cut. */
#include "fuzz_common.h"
#include "data/data_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) { return 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    doc_list docs = {0};
    size_t pos = 0;
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - data) : size;
        char *text;
        size_t tl, pl;
        int task, label;
        if (lf_jsonl_record(&docs, (const char *)data + pos, end - pos, &text, &tl, &pl, &task, &label) == LF_OK) {
            FUZZ_CHECK(pl <= tl && text[tl] == 0, "prompt %zu of %zu bytes", pl, tl);
            FUZZ_CHECK(task >= 0 && task < docs.tasks.n + (docs.tasks.n == 0) && task <= 65535, "task %d", task);
            FUZZ_CHECK(label >= -1 && label < docs.labels.n, "label %d", label);
            if (label >= 0) FUZZ_CHECK(lf_docs_intern(&docs.labels, docs.labels.name[label]) == label, "label not found again");
            FUZZ_CHECK(lf_docs_push(&docs, text, tl, pl, task, label, "fuzz") == LF_OK, "push failed");
        } else {
            FUZZ_CHECK(lf_last_error()[0], "a refusal without a message");
        }
        pos = end + 1;
    }
    for (int i = 0; i < docs.labels.n; i++)
        for (int j = 0; j < i && docs.labels.n < 64; j++)
            FUZZ_CHECK(strcmp(docs.labels.name[i], docs.labels.name[j]) != 0, "label interned twice");
    lf_docs_free(&docs);
    return 0;
}
