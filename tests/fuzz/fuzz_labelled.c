/* The labelled built-in sets' source formats (issue 9): the same bytes to the Rotten Tomatoes CSV
 * parser (lf_rt_csv_docs: RFC 4180 quoting) and to the Orange .tab parser (lf_tab_docs), then the
 * fixed test split over what was accepted. Accepted documents are non-empty, NUL-terminated and
 * labelled inside the label table; a refusal always has a message; the split is stratified. */
#include "fuzz_common.h"
#include "data/data_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) { return 0; }

static void check_docs(doc_list *l, const char *what) {
    for (size_t i = 0; i < l->n; i++) {
        FUZZ_CHECK(l->d[i].len > 0 && l->d[i].text[l->d[i].len] == 0, "%s: document %zu of %zu bytes", what, i, l->d[i].len);
        FUZZ_CHECK(l->d[i].label >= 0 && l->d[i].label < l->labels.n, "%s: label %d of %d", what, l->d[i].label, l->labels.n);
    }
    if (lf_mark_test_split(l, 0.2f, 7) != LF_OK) return;
    /* per label: round(0.2 * n) test documents */
    for (int c = 0; c < l->labels.n && c < 64; c++) {
        size_t n = 0, t = 0;
        for (size_t i = 0; i < l->n; i++)
            if (l->d[i].label == c) n++, t += l->d[i].test != 0;
        FUZZ_CHECK(t == (size_t)(0.2 * (double)n + 0.5), "%s: label %d: %zu of %zu in test", what, c, t, n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    doc_list a = {0}, b = {0};
    if (lf_rt_csv_docs((const char *)data, size, "fuzz.csv", &a) == LF_OK) check_docs(&a, "csv");
    else FUZZ_CHECK(lf_last_error()[0], "a CSV refusal without a message");
    if (lf_tab_docs((const char *)data, size, "fuzz.tab", size & 1, &b) == LF_OK) check_docs(&b, "tab");
    else FUZZ_CHECK(lf_last_error()[0], "a .tab refusal without a message");
    lf_docs_free(&a);
    lf_docs_free(&b);
    return 0;
}
