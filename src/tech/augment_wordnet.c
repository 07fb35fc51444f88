/* WordNet synonyms for augmentation, read straight from the database files that Debian's
 * wordnet-base installs (format in wndb(5)). Chosen over libwordnet (wn.h) because that library
 * keeps its lookups in process globals and is not thread-safe: here the files are read into
 * memory once, index lines are found by binary search, and nothing is written after loading, so
 * every augmentation thread can look words up at once. */
#include "lmforge/augment.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

enum { WN_NOUN, WN_VERB, WN_ADJ, WN_ADV, WN_NPOS };
static const char *const wn_pos_name[WN_NPOS] = {"noun", "verb", "adj", "adv"};

typedef struct {
    char *text;    /* whole file, NUL-terminated */
    size_t len;
    size_t *lines; /* starts of the sorted entry lines (license header skipped) */
    size_t n;
} wn_file;

struct lf_wordnet {
    wn_file index[WN_NPOS], exc[WN_NPOS];
    char *data[WN_NPOS];
    size_t data_len[WN_NPOS];
};

static void wn_file_free(wn_file *f) {
    free(f->text);
    free(f->lines);
}

/* reads a file and lists its lines that do not start with a space (the license header does) */
static lf_status wn_file_load(wn_file *f, const char *dir, const char *name, int need) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    memset(f, 0, sizeof *f);
    if (!lf_path_exists(p) && !need) return LF_OK;
    f->text = lf_read_file(p, &f->len);
    if (!f->text) return LF_ERR_IO;
    size_t cap = 1024;
    f->lines = malloc(cap * sizeof *f->lines);
    if (!f->lines) return LF_ERR_NOMEM;
    for (size_t i = 0; i < f->len;) {
        size_t e = i;
        while (e < f->len && f->text[e] != '\n') e++;
        if (e > i && f->text[i] != ' ') {
            if (f->n == cap) {
                size_t *nl = realloc(f->lines, (cap *= 2) * sizeof *nl);
                if (!nl) return LF_ERR_NOMEM;
                f->lines = nl;
            }
            f->lines[f->n++] = i;
        }
        i = e + 1;
    }
    return LF_OK;
}

/* the line whose first field equals key, or NULL (lines are sorted by their first field) */
static const char *wn_find(const wn_file *f, const char *key, size_t klen) {
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *l = f->text + f->lines[mid];
        size_t ll = strcspn(l, " \n");
        int c = memcmp(l, key, ll < klen ? ll : klen);
        if (c == 0) c = ll < klen ? -1 : ll > klen ? 1 : 0;
        if (c == 0) return l;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

lf_status lf_wordnet_open(lf_wordnet **out, const char *dir) {
    *out = NULL;
    if (!dir) dir = getenv("WNSEARCHDIR");
    if (!dir || !*dir) dir = "/usr/share/wordnet";
    char p[1024];
    snprintf(p, sizeof p, "%s/index.noun", dir);
    if (!lf_path_exists(p)) {
        lf_set_error("WordNet: %s not found: install Debian's wordnet-base (apt-get install wordnet-base) or set "
                     "WNSEARCHDIR to a folder with WordNet 3.0's database files",
                     p);
        return LF_ERR_NOTFOUND;
    }
    lf_wordnet *wn = calloc(1, sizeof *wn);
    if (!wn) return LF_ERR_NOMEM;
    lf_status st = LF_OK;
    for (int k = 0; k < WN_NPOS && !st; k++) {
        char name[32];
        snprintf(name, sizeof name, "index.%s", wn_pos_name[k]);
        if ((st = wn_file_load(&wn->index[k], dir, name, 1))) break;
        snprintf(name, sizeof name, "%s.exc", wn_pos_name[k]);
        if ((st = wn_file_load(&wn->exc[k], dir, name, 0))) break;
        snprintf(p, sizeof p, "%s/data.%s", dir, wn_pos_name[k]);
        if (!(wn->data[k] = lf_read_file(p, &wn->data_len[k]))) st = LF_ERR_IO;
    }
    if (st) {
        lf_wordnet_close(wn);
        return st;
    }
    *out = wn;
    return LF_OK;
}

void lf_wordnet_close(lf_wordnet *wn) {
    if (!wn) return;
    for (int k = 0; k < WN_NPOS; k++) {
        wn_file_free(&wn->index[k]);
        wn_file_free(&wn->exc[k]);
        free(wn->data[k]);
    }
    free(wn);
}

/* WordNet's detachment rules (morph.c's sufx/addr tables as wndb documents them) */
static const struct {
    int pos;
    const char *suf, *add;
} wn_rules[] = {
    {WN_NOUN, "s", ""},    {WN_NOUN, "ses", "s"}, {WN_NOUN, "xes", "x"},  {WN_NOUN, "zes", "z"},
    {WN_NOUN, "ches", "ch"}, {WN_NOUN, "shes", "sh"}, {WN_NOUN, "men", "man"}, {WN_NOUN, "ies", "y"},
    {WN_VERB, "s", ""},    {WN_VERB, "ies", "y"}, {WN_VERB, "es", "e"},   {WN_VERB, "es", ""},
    {WN_VERB, "ed", "e"},  {WN_VERB, "ed", ""},   {WN_VERB, "ing", "e"},  {WN_VERB, "ing", ""},
    {WN_ADJ, "er", ""},    {WN_ADJ, "est", ""},   {WN_ADJ, "er", "e"},    {WN_ADJ, "est", "e"},
};

/* the index line of word (or of a base form of it) in part of speech pos, or NULL */
static const char *wn_lookup(const lf_wordnet *wn, int pos, const char *w, size_t len) {
    const char *l = wn_find(&wn->index[pos], w, len);
    if (l) return l;
    const char *e = wn->exc[pos].text ? wn_find(&wn->exc[pos], w, len) : NULL;
    if (e) { /* "inflected base ...": the first base that is in the index */
        const char *b = e + len;
        while (*b == ' ') {
            b++;
            size_t bl = strcspn(b, " \n");
            if ((l = wn_find(&wn->index[pos], b, bl))) return l;
            b += bl;
        }
    }
    char buf[128];
    for (size_t r = 0; r < sizeof wn_rules / sizeof wn_rules[0]; r++) {
        if (wn_rules[r].pos != pos) continue;
        size_t sl = strlen(wn_rules[r].suf), al = strlen(wn_rules[r].add);
        if (len <= sl || len - sl + al >= sizeof buf || memcmp(w + len - sl, wn_rules[r].suf, sl)) continue;
        memcpy(buf, w, len - sl);
        memcpy(buf + len - sl, wn_rules[r].add, al);
        if ((l = wn_find(&wn->index[pos], buf, len - sl + al))) return l;
    }
    return NULL;
}

/* field k (0-based) of an index line */
static const char *wn_field(const char *l, int k) {
    for (; k > 0; k--) {
        l += strcspn(l, " \n");
        if (*l != ' ') return NULL;
        l++;
    }
    return l;
}

static long wn_int(const char *s) { return s ? strtol(s, NULL, 10) : 0; }

int lf_wordnet_synonyms(const lf_wordnet *wn, const char *word, size_t len, char **out, int cap) {
    char w[128];
    if (!wn || len == 0 || len >= sizeof w) return 0;
    for (size_t i = 0; i < len; i++) { /* index keys: lower case, '_' for spaces */
        unsigned char c = (unsigned char)word[i];
        w[i] = c == ' ' ? '_' : (char)tolower(c);
    }
    w[len] = 0;
    const char *line[WN_NPOS];
    long tag[WN_NPOS];
    int best = -1;
    for (int k = 0; k < WN_NPOS; k++) {
        line[k] = wn_lookup(wn, k, w, len);
        tag[k] = -1;
        if (!line[k]) continue;
        /* lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offsets... */
        long p_cnt = wn_int(wn_field(line[k], 3));
        tag[k] = wn_int(wn_field(line[k], 5 + (int)p_cnt));
        if (best < 0 || tag[k] > tag[best]) best = k;
    }
    if (best < 0) return 0;
    /* suffixes that name the part of speech beat the tagged counts */
    if (len > 3 && !memcmp(w + len - 2, "ly", 2) && line[WN_ADV]) best = WN_ADV;
    else if (len > 4 && (!memcmp(w + len - 3, "ing", 3) || !memcmp(w + len - 2, "ed", 2)) && line[WN_VERB])
        best = WN_VERB;
    const char *l = line[best];
    long synsets = wn_int(wn_field(l, 2)), p_cnt = wn_int(wn_field(l, 3));
    int n = 0;
    for (long s = 0; s < synsets && n < cap; s++) {
        const char *f = wn_field(l, 6 + (int)p_cnt + (int)s);
        if (!f) break;
        size_t off = (size_t)strtoull(f, NULL, 10);
        if (off >= wn->data_len[best]) continue;
        /* offset lex_filenum ss_type w_cnt(hex) word lex_id [word lex_id ...] */
        const char *d = wn->data[best] + off;
        const char *wc = wn_field(d, 3);
        if (!wc) continue;
        long words = strtol(wc, NULL, 16);
        for (long k = 0; k < words && n < cap; k++) {
            const char *x = wn_field(d, 4 + 2 * (int)k);
            if (!x) break;
            size_t xl = strcspn(x, " \n(");
            char syn[128];
            size_t m = 0;
            int ok = xl > 0 && xl < sizeof syn;
            for (size_t i = 0; ok && i < xl; i++) {
                unsigned char c = (unsigned char)x[i];
                if (c == '_' || c == '-') syn[m++] = ' ';
                else if (isupper(c)) ok = 0; /* a proper noun (George_Fox for "fox"): not a paraphrase */
                else if (isalpha(c)) syn[m++] = (char)c;
                else if (c != '.' && c != '\'') ok = 0; /* digits and the like: not a word to put in text */
            }
            if (!ok || m == 0) continue;
            syn[m] = 0;
            if (m == len && !memcmp(syn, w, len)) continue;
            int dup = 0;
            for (int j = 0; j < n && !dup; j++) dup = !strcmp(out[j], syn);
            if (dup) continue;
            if (!(out[n] = strdup(syn))) break;
            n++;
        }
    }
    return n;
}

/* English stop words (the usual NLTK-style list EDA keeps out of replacement) */
static const char *const stop_words[] = {
    "a", "about", "above", "after", "again", "against", "ain", "all", "am", "an", "and", "any", "are", "aren",
    "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can",
    "couldn", "d", "did", "didn", "do", "does", "doesn", "doing", "don", "down", "during", "each", "few", "for",
    "from", "further", "had", "hadn", "has", "hasn", "have", "haven", "having", "he", "her", "here", "hers",
    "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "isn", "it", "its", "itself",
    "just", "ll", "m", "ma", "me", "mightn", "more", "most", "mustn", "my", "myself", "needn", "no", "nor",
    "not", "now", "o", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out",
    "over", "own", "re", "s", "same", "shan", "she", "should", "shouldn", "so", "some", "such", "t", "than",
    "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "ve", "very", "was", "wasn", "we", "were", "weren", "what",
    "when", "where", "which", "while", "who", "whom", "why", "will", "with", "won", "wouldn", "y", "you",
    "your", "yours", "yourself", "yourselves"};

int lf_aug_is_stopword(const char *w, size_t len) {
    char b[16];
    if (len == 0 || len >= sizeof b) return len == 0;
    for (size_t i = 0; i < len; i++) b[i] = (char)tolower((unsigned char)w[i]);
    b[len] = 0;
    size_t lo = 0, hi = sizeof stop_words / sizeof stop_words[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(stop_words[mid], b);
        if (c == 0) return 1;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}
