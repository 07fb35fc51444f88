/* Augmentation (src/tech/augment*.c): option parsing, WordNet lookups, each operation's rate
 * measured over many draws, output identical for any thread count, UTF-8 kept whole, bad records
 * counted and passed over, back-translation order (when Apertium is installed), and the online
 * noise source resuming bit for bit. */
#include "testutil.h"
#include "lmforge/augment.h"

#include <ctype.h>

static const char *const sample[] = {
    "The quick brown fox jumps over the lazy dog while happy children laugh loudly in the garden.",
    "A small company builds fast computers and sells them to careful buyers across the country.",
    "Politicians argue about taxes, schools and roads, but voters remember only the weather.",
    "Science begins with a question and ends, if ever, with a better question.",
    "My cat sleeps on the warm keyboard whenever I try to write an important letter.",
};
#define NS (int)(sizeof sample / sizeof sample[0])

static int n_words(const char *s) {
    int n = 0, in = 0;
    for (; *s; s++) {
        int sp = isspace((unsigned char)*s);
        if (!sp && !in) n++;
        in = !sp;
    }
    return n;
}

static int count_str(const char *s, const char *w) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, w)); p += strlen(w)) n++;
    return n;
}

static lf_augmenter *make(const char *ops) {
    lf_aug_config c;
    lf_aug_config_default(&c);
    if (lf_aug_config_parse(&c, ops)) {
        fprintf(stderr, "parse %s: %s\n", ops, lf_last_error());
        exit(1);
    }
    lf_augmenter *a = NULL;
    if (lf_augmenter_init(&a, &c)) {
        fprintf(stderr, "init %s: %s\n", ops, lf_last_error());
        exit(1);
    }
    return a;
}

static char *one(lf_augmenter *a, lf_aug_op op, float rate, const char *t, uint64_t stream) {
    char *o = NULL;
    LF_ASSERT(lf_augment_one(a, op, rate, t, 42, stream, &o) == LF_OK && o);
    return o;
}

static void test_parse(void) {
    lf_aug_config c;
    lf_aug_config_default(&c);
    CHECK(lf_aug_config_parse(&c, "syn=0.1,ins=0.2,swap,del=0.3,char=0.05,shuffle=4,bt") == LF_OK, "parse: %s",
          lf_last_error());
    CHECK(c.n_ops == 7 && c.op[1] == LF_AUG_INS && fabsf(c.rate[1] - 0.2f) < 1e-6f && c.rate[2] > 0 && c.rate[5] == 4.0f &&
              c.op[6] == LF_AUG_BT,
          "parsed %d ops", c.n_ops);
    const char *bad[] = {"", "syn=2", "foo=0.1", "syn=0.1,syn=0.2", "del=-1", "shuffle=0.5", "bt=1", "syn=abc", ",,"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lf_aug_config d;
        lf_aug_config_default(&d);
        CHECK(lf_aug_config_parse(&d, bad[i]) == LF_ERR_ARG && strstr(lf_last_error(), "--ops"), "'%s' must be refused",
              bad[i]);
    }
    CHECK(lf_aug_is_stopword("the", 3) && lf_aug_is_stopword("The", 3) && lf_aug_is_stopword("yourselves", 10) &&
              !lf_aug_is_stopword("dog", 3) && lf_aug_is_stopword("a", 1),
          "stop words");
}

static int has(char **s, int n, const char *w) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i], w)) return 1;
    return 0;
}

static void test_wordnet(const lf_wordnet *wn) {
    char *s[64];
    int n = lf_wordnet_synonyms(wn, "happy", 5, s, 64);
    CHECK(n > 0 && has(s, n, "glad") && !has(s, n, "happy"), "happy: %d synonyms, glad %s", n, n > 0 && has(s, n, "glad") ? "in" : "missing");
    for (int i = 0; i < n; i++) free(s[i]);
    n = lf_wordnet_synonyms(wn, "Dogs", 4, s, 64); /* plural, capitalised: noun rules */
    CHECK(n > 0 && has(s, n, "domestic dog"), "Dogs: %d synonyms (want 'domestic dog')", n);
    int upper = 0;
    for (int i = 0; i < n; i++) {
        for (const char *p = s[i]; *p; p++) upper |= !islower((unsigned char)*p) && *p != ' ';
        free(s[i]);
    }
    CHECK(!upper, "synonyms must be lower-case letters and spaces");
    n = lf_wordnet_synonyms(wn, "running", 7, s, 64); /* -ing: the verb run */
    CHECK(n > 0 && (has(s, n, "run") || has(s, n, "go") || has(s, n, "operate")), "running: %d synonyms", n);
    for (int i = 0; i < n; i++) free(s[i]);
    n = lf_wordnet_synonyms(wn, "went", 4, s, 64); /* verb.exc: went -> go */
    CHECK(n > 0, "went (exception list): %d synonyms", n);
    for (int i = 0; i < n; i++) free(s[i]);
    CHECK(lf_wordnet_synonyms(wn, "xyzzyq", 6, s, 64) == 0, "a non-word has synonyms");
    lf_wordnet *bad = NULL;
    CHECK(lf_wordnet_open(&bad, "/nonexistent") == LF_ERR_NOTFOUND && strstr(lf_last_error(), "wordnet-base"),
          "a missing WordNet must name the package: %s", lf_last_error());
}

/* each operation's rate, measured */
static void test_rates(lf_augmenter *a, int have_wn) {
    const int R = 400;
    /* deletion: the share of words dropped is p */
    double kept = 0, total = 0;
    for (int r = 0; r < R; r++) {
        const char *t = sample[r % NS];
        char *o = one(a, LF_AUG_DEL, 0.3f, t, (uint64_t)r);
        kept += n_words(o), total += n_words(t);
        free(o);
    }
    double p = 1 - kept / total, sd = sqrt(0.3 * 0.7 / total);
    CHECK(fabs(p - 0.3) < 4 * sd, "del=0.3: %.4f of words deleted (sd %.4f)", p, sd);
    /* swap: max(1, int(α·n)) swaps; the words are a permutation */
    for (int r = 0; r < 50; r++) {
        const char *t = sample[0]; /* 17 words: α = 0.2 -> 3 swaps -> at most 6 positions differ */
        char *o = one(a, LF_AUG_SWAP, 0.2f, t, (uint64_t)r);
        CHECK(n_words(o) == n_words(t) && strlen(o) == strlen(t), "swap changed the words: %s", o);
        char x[256], y[256];
        snprintf(x, sizeof x, "%s", t), snprintf(y, sizeof y, "%s", o);
        int diff = 0;
        char *sx, *sy, *px = strtok_r(x, " ", &sx), *py = strtok_r(y, " ", &sy);
        for (; px && py; px = strtok_r(NULL, " ", &sx), py = strtok_r(NULL, " ", &sy)) diff += strcmp(px, py) != 0;
        CHECK(diff <= 6, "swap 0.2 of 17 words: %d positions differ (at most 6)", diff);
        free(o);
    }
    /* character noise: the share of letters/digits edited is p */
    const lf_aug_op cop[] = {LF_AUG_KBD, LF_AUG_CINS, LF_AUG_CSWAP};
    for (int k = 0; k < 3; k++) {
        double edits = 0, letters = 0;
        for (int r = 0; r < R; r++) {
            const char *t = sample[r % NS];
            char *o = one(a, cop[k], 0.1f, t, (uint64_t)r);
            for (const char *q = t; *q; q++) letters += isalnum((unsigned char)*q) != 0;
            if (cop[k] == LF_AUG_KBD) {
                CHECK(strlen(o) == strlen(t), "kbd changed the length");
                for (size_t i = 0; t[i] && o[i]; i++) edits += t[i] != o[i];
            } else if (cop[k] == LF_AUG_CINS) {
                edits += (double)(strlen(o) - strlen(t));
            } else {
                for (size_t i = 0; t[i] && o[i]; i++) edits += t[i] != o[i];
            }
            free(o);
        }
        double rate = edits / letters;
        /* a transposition changes two letters; one that meets a word end or a double letter does nothing */
        double want = cop[k] == LF_AUG_CSWAP ? 0.2 : 0.1, tol = cop[k] == LF_AUG_CSWAP ? 0.05 : 4 * sqrt(0.1 * 0.9 / letters);
        CHECK(fabs(rate - want) < tol || (cop[k] == LF_AUG_CSWAP && rate < want && rate > 0.12),
              "%s=0.1: edit rate %.4f (want ~%.2f)", lf_aug_op_name(cop[k]), rate, want);
    }
    /* masking: p of the words */
    double masks = 0, words = 0;
    for (int r = 0; r < R; r++) {
        const char *t = sample[r % NS];
        char *o = one(a, LF_AUG_MASK, 0.15f, t, (uint64_t)r);
        masks += count_str(o, "<mask>"), words += n_words(t);
        CHECK(n_words(o) == n_words(t), "mask changed the word count");
        free(o);
    }
    sd = sqrt(0.15 * 0.85 / words);
    CHECK(fabs(masks / words - 0.15) < 4 * sd, "mask=0.15: %.4f masked", masks / words);
    /* span corruption on ids: exactly round(p·n) masked, in round(noise/3) spans, the rest in order */
    for (int r = 0; r < 50; r++) {
        int32_t ids[100];
        for (int i = 0; i < 100; i++) ids[i] = i;
        lf_aug_rng g = {7, (uint64_t)r, 0};
        lf_noise_span(ids, 100, 0.15f, -1, &g);
        int m = 0, spans = 0, last = -1, order = 1;
        for (int i = 0; i < 100; i++) {
            if (ids[i] < 0) m++, spans += i == 0 || ids[i - 1] >= 0;
            else order &= ids[i] > last, last = ids[i];
        }
        CHECK(m == 15 && spans == 5 && order && ids[0] >= 0, "span 0.15 of 100: %d masked in %d spans (want 15 in 5)", m, spans);
    }
    /* local shuffle: a permutation that moves nothing k places or more, and moves something */
    int moved = 0;
    for (int r = 0; r < 50; r++) {
        int32_t ids[60];
        int seen[60] = {0};
        for (int i = 0; i < 60; i++) ids[i] = i;
        lf_aug_rng g = {7, (uint64_t)r, 0};
        lf_noise_shuffle(ids, 60, 3, &g);
        int maxd = 0, perm = 1;
        for (int i = 0; i < 60; i++) {
            int d = abs(ids[i] - i);
            if (d > maxd) maxd = d;
            moved += d > 0;
            perm &= ids[i] >= 0 && ids[i] < 60 && !seen[ids[i]]++;
        }
        CHECK(perm && maxd <= 2, "shuffle k=3: max displacement %d (at most 2), permutation %d", maxd, perm);
    }
    CHECK(moved > 50 * 60 / 4, "shuffle k=3 moved only %d of %d items", moved, 50 * 60);
    if (!have_wn) return;
    /* synonym replacement: max(1, int(α·n)) distinct words changed when that many have synonyms */
    const char *t = "happy children quickly build large houses near quiet rivers";
    for (int r = 0; r < 30; r++) {
        char *o = one(a, LF_AUG_SYN, 0.25f, t, (uint64_t)r); /* 9 words -> 2 replaced */
        char x[256], y[512];
        snprintf(x, sizeof x, "%s", t), snprintf(y, sizeof y, "%s", o);
        /* count original words missing from the output */
        int gone = 0;
        char *sx, *px = strtok_r(x, " ", &sx);
        for (; px; px = strtok_r(NULL, " ", &sx)) {
            char pad[64], hay[520];
            snprintf(pad, sizeof pad, " %s ", px), snprintf(hay, sizeof hay, " %s ", y);
            gone += strstr(hay, pad) == NULL;
        }
        CHECK(gone == 2, "syn=0.25 of 9 words: %d replaced (want 2): %s", gone, o);
        free(o);
    }
    for (int r = 0; r < 30; r++) {
        char *o = one(a, LF_AUG_INS, 0.25f, t, (uint64_t)r);
        CHECK(n_words(o) >= n_words(t) + 2, "ins=0.25 of 9 words: %d words (want at least 11): %s", n_words(o), o);
        free(o);
    }
    /* stop words are never replaced */
    for (int r = 0; r < 20; r++) {
        char *o = one(a, LF_AUG_SYN, 1.0f, "the and of to in with", (uint64_t)r);
        CHECK(!strcmp(o, "the and of to in with"), "stop words replaced: %s", o);
        free(o);
    }
}

static int utf8_ok(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int k = *p < 0x80 ? 0 : (*p >> 5) == 6 ? 1 : (*p >> 4) == 14 ? 2 : (*p >> 3) == 30 ? 3 : -1;
        if (k < 0) return 0;
        for (int j = 1; j <= k; j++)
            if ((p[j] & 0xc0) != 0x80) return 0;
        p += k + 1;
    }
    return 1;
}

/* the non-ASCII bytes of s, in order */
static void non_ascii(const char *s, char *o) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) *o++ = *s;
    *o = 0;
}

static void test_utf8(lf_augmenter *a) {
    const char *t = "Café naïve résumé — 日本語のテキスト and emoji 😀 mixed with plain words über straße";
    char na[256], nb[256];
    non_ascii(t, na);
    for (int op = 0; op < LF_AUG_BT; op++) {
        if (op == LF_AUG_SYN || op == LF_AUG_INS) continue; /* without WordNet in this augmenter */
        for (int r = 0; r < 40; r++) {
            char *o = one(a, (lf_aug_op)op, op == LF_AUG_SHUFFLE ? 4.0f : 0.5f, t, (uint64_t)r);
            CHECK(utf8_ok(o), "%s broke UTF-8: %s", lf_aug_op_name((lf_aug_op)op), o);
            if (op >= LF_AUG_KBD && op <= LF_AUG_CHAR) { /* only ASCII letters are edited */
                non_ascii(o, nb);
                CHECK(!strcmp(na, nb), "%s changed a multibyte character: %s", lf_aug_op_name((lf_aug_op)op), o);
            }
            free(o);
        }
    }
    char *o = one(a, LF_AUG_KBD, 1.0f, "bad \xff\xfe bytes", 1); /* not UTF-8: passed through */
    CHECK(!strcmp(o, "bad \xff\xfe bytes"), "invalid UTF-8 must pass through unchanged");
    free(o);
}

static void test_driver(void) {
    lf_augmenter *a = make("del=0.2,swap=0.2,kbd=0.1,mask=0.2,span=0.2,shuffle=3,cdel=0.1,char=0.1");
    enum { N = 300, C = 8 };
    const char *texts[N];
    char buf[N][200];
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "%s record %d", sample[i % NS], i);
        texts[i] = buf[i];
    }
    texts[5] = "";
    texts[6] = "   \n ";
    texts[7] = "not \xc3\x28 utf-8";
    char *long_text = malloc(2u << 20);
    memset(long_text, 'a', (2u << 20) - 1);
    long_text[(2u << 20) - 1] = 0;
    texts[8] = long_text;
    char **ref = calloc(N * C, sizeof *ref), **got = calloc(N * C, sizeof *got);
    lf_aug_stats st;
    CHECK(lf_augment_texts(a, texts, N, C, 99, 1, ref, &st, NULL, NULL) == LF_OK, "augment: %s", lf_last_error());
    CHECK(st.empty == 2 && st.invalid_utf8 == 1 && st.too_long == 1, "bad records: empty %zu, not UTF-8 %zu, too long %zu",
          st.empty, st.invalid_utf8, st.too_long);
    CHECK(!ref[5 * C] && !ref[7 * C] && !ref[8 * C] && ref[9 * C], "skipped records must have no copies");
    CHECK(st.copies_made == (N - 4) * C, "copies made %zu, want %d", st.copies_made, (N - 4) * C);
    int threads[] = {2, 3, 4};
    for (int k = 0; k < 3; k++) {
        CHECK(lf_augment_texts(a, texts, N, C, 99, threads[k], got, NULL, NULL, NULL) == LF_OK, "augment");
        int diff = 0;
        for (int i = 0; i < N * C; i++) {
            diff += (ref[i] == NULL) != (got[i] == NULL) || (ref[i] && strcmp(ref[i], got[i]));
            free(got[i]);
        }
        CHECK(diff == 0, "%d threads: %d of %d copies differ from 1 thread", threads[k], diff, N * C);
    }
    /* another seed gives other copies; copy c uses op c mod 8 */
    CHECK(lf_augment_texts(a, texts, N, C, 100, 2, got, NULL, NULL, NULL) == LF_OK, "augment");
    int same = 0;
    for (int i = 0; i < N * C; i++) {
        same += ref[i] && got[i] && !strcmp(ref[i], got[i]);
        free(got[i]);
    }
    CHECK(same < N * C / 4, "seed 100 repeats %d of %d copies of seed 99", same, N * C);
    CHECK(count_str(ref[20 * C + 3], "<mask>") > 0 || n_words(ref[20 * C + 3]) > 0, "copy 3 is a masking");
    for (int i = 0; i < N * C; i++) free(ref[i]);
    free(ref);
    free(got);
    free(long_text);
    lf_augmenter_free(a);
}

static void test_bt(void) {
    lf_aug_config c;
    lf_aug_config_default(&c);
    lf_aug_config_parse(&c, "bt");
    c.apertium = "/nonexistent/apertium";
    lf_augmenter *a = NULL;
    CHECK(lf_augmenter_init(&a, &c) == LF_ERR_NOTFOUND && strstr(lf_last_error(), "apertium-eng-spa"),
          "a missing Apertium must name the package: %s", lf_last_error());
    if (!lf_path_exists("/usr/share/apertium/modes/eng-spa.mode") || system("command -v apertium >/dev/null 2>&1")) {
        printf("back-translation: skipped (apertium or apertium-eng-spa not installed)\n");
        return;
    }
    enum { N = 40 };
    const char *texts[N];
    char buf[N][160];
    const char *frames[] = {"I have %d green apples in my kitchen.", "The train leaves at %d in the morning.",
                            "She wrote %d letters to her old friend.\nHe never answered.", "We counted %d birds near the river."};
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], frames[i % 4], 1000 + i);
        texts[i] = buf[i];
    }
    char *out[N];
    double t0 = lf_now();
    lf_status st = lf_backtranslate("apertium", texts, N, out);
    CHECK(st == LF_OK, "back-translation: %s", lf_last_error());
    int in_order = 0, marks = 0;
    for (int i = 0; i < N && !st; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", 1000 + i);
        in_order += out[i] && strstr(out[i], num) != NULL;
        marks += out[i] && (strchr(out[i], '*') || strstr(out[i], "[@@"));
    }
    CHECK(in_order == N && marks == 0, "back-translation: %d of %d in order, %d with marks left", in_order, N, marks);
    if (!st) printf("back-translation: %d texts in %.2f s; e.g. \"%s\" -> \"%s\"\n", N, lf_now() - t0, texts[0], out[0]);
    for (int i = 0; i < N && !st; i++) free(out[i]);
}

/* an inner source: row r of batch k is k*1000 + r*100 + t, targets the next id */
typedef struct {
    uint64_t step;
} src_ctx;
static lf_status src_next(lf_batch_source *s, lf_batch *b) {
    src_ctx *c = s->ctx;
    for (int r = 0; r < b->B; r++)
        for (int t = 0; t < b->T; t++) {
            size_t i = (size_t)r * (size_t)b->T + (size_t)t;
            b->inputs[i] = (int32_t)((c->step * 7 + (uint64_t)r * 3 + (uint64_t)t) % 500) + 1;
            b->targets[i] = t >= b->T - 2 && r == 1 ? -1 : b->inputs[i] + 1;
        }
    c->step++;
    return LF_OK;
}
static int src_get(const lf_batch_source *s, uint64_t *w) {
    w[0] = ((src_ctx *)s->ctx)->step;
    return 1;
}
static lf_status src_set(lf_batch_source *s, const uint64_t *w, int n) {
    if (n != 1) return LF_ERR_FORMAT;
    ((src_ctx *)s->ctx)->step = w[0];
    return LF_OK;
}
static void src_free(lf_batch_source *s) {
    free(s->ctx);
    free(s);
}
static lf_batch_source *inner_source(void) {
    lf_batch_source *s = calloc(1, sizeof *s);
    *s = (lf_batch_source){"synth", calloc(1, sizeof(src_ctx)), src_next, src_get, src_set, src_free};
    return s;
}

static void test_source(void) {
    enum { B = 4, T = 64, K = 6 };
    lf_noise_config nc = {0.1f, 0.15f, 3, 0, 5};
    lf_batch_source *s;
    CHECK(lf_noise_source(&s, inner_source(), &nc) == LF_OK, "noise source: %s", lf_last_error());
    lf_batch b[K], clean;
    uint64_t state[LF_SOURCE_STATE_MAX];
    int ns = 0;
    lf_batch_alloc(&clean, B, T);
    lf_batch_source *ref = inner_source();
    for (int k = 0; k < K; k++) {
        lf_batch_alloc(&b[k], B, T);
        if (k == 3) ns = s->get_state(s, state);
        CHECK(s->next(s, &b[k]) == LF_OK, "next");
        ref->next(ref, &clean);
        int changed = 0, tdiff = 0;
        for (size_t i = 0; i < (size_t)B * T; i++) {
            changed += b[k].inputs[i] != clean.inputs[i];
            tdiff += b[k].targets[i] != clean.targets[i];
        }
        CHECK(tdiff == 0 && changed > B * T / 8, "batch %d: %d inputs noised, %d targets changed (want 0)", k, changed, tdiff);
        CHECK(b[k].inputs[1 * T + T - 1] == clean.inputs[1 * T + T - 1], "a row's no-loss tail must stay put");
    }
    lf_batch_source_free(s);
    lf_batch_source_free(ref);
    CHECK(ns == 2 && state[1] == 3, "state: %d words, batch counter %llu", ns, (unsigned long long)state[ns - 1]);
    /* a fresh source set to the saved state continues with the same batches */
    CHECK(lf_noise_source(&s, inner_source(), &nc) == LF_OK, "noise source");
    CHECK(s->set_state(s, state, ns) == LF_OK, "set_state: %s", lf_last_error());
    for (int k = 3; k < K; k++) {
        s->next(s, &clean);
        int diff = memcmp(clean.inputs, b[k].inputs, sizeof(int32_t) * B * T) != 0 ||
                   memcmp(clean.targets, b[k].targets, sizeof(int32_t) * B * T) != 0;
        CHECK(!diff, "resumed batch %d differs from the uninterrupted one", k);
    }
    lf_batch_source_free(s);
    for (int k = 0; k < K; k++) lf_batch_free(&b[k]);
    lf_batch_free(&clean);
    lf_noise_config bad = {1.5f, 0, 0, 0, 1};
    CHECK(lf_noise_source(&s, NULL, &bad) == LF_ERR_ARG, "aug_mask 1.5 accepted");
}

int main(void) {
    test_parse();
    lf_wordnet *wn = NULL;
    int have_wn = lf_wordnet_open(&wn, NULL) == LF_OK;
    if (have_wn) test_wordnet(wn);
    else printf("wordnet: skipped (%s)\n", lf_last_error());
    lf_wordnet_close(wn);
    lf_augmenter *a = make(have_wn ? "syn,ins,del,swap,kbd,cins,cdel,cswap,char,mask,span,shuffle"
                                   : "del,swap,kbd,cins,cdel,cswap,char,mask,span,shuffle");
    test_rates(a, have_wn);
    test_utf8(a);
    lf_augmenter_free(a);
    test_driver();
    test_bt();
    test_source();
    return tu_finish("augment");
}
