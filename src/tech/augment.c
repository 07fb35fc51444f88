/* Text augmentation: EDA's four word operations, character noise, word/token noise and the
 * parallel driver that makes n seeded copies of every record. Words are whitespace-separated
 * tokens whose separators are kept (a fortune's line breaks survive a swap); only ASCII letters
 * and digits are ever edited, so a multibyte UTF-8 character is never split. */
#include "lmforge/augment.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const char *const op_names[LF_AUG_NOPS] = {"syn",  "ins",  "swap", "del",  "kbd",     "cins", "cdel",
                                                  "cswap", "char", "mask", "span", "shuffle", "bt"};
static const float op_default[LF_AUG_NOPS] = {0.1f, 0.1f, 0.1f, 0.1f, 0.05f, 0.05f, 0.05f,
                                              0.05f, 0.05f, 0.15f, 0.15f, 3.0f, 1.0f};

const char *lf_aug_op_name(lf_aug_op op) { return (unsigned)op < LF_AUG_NOPS ? op_names[op] : "?"; }

void lf_aug_config_default(lf_aug_config *c) {
    memset(c, 0, sizeof *c);
    c->mask_token = "<mask>";
    c->max_bytes = (size_t)1 << 20;
    c->apertium = "apertium";
}

lf_status lf_aug_config_parse(lf_aug_config *c, const char *spec) {
    c->n_ops = 0;
    const char *p = spec;
    while (p && *p) {
        size_t l = strcspn(p, ",");
        char item[64];
        if (l == 0 || l >= sizeof item) {
            lf_set_error("--ops '%s': empty or overlong item (expected e.g. syn=0.1,del=0.1,char=0.05,bt)", spec);
            return LF_ERR_ARG;
        }
        memcpy(item, p, l);
        item[l] = 0;
        char *eq = strchr(item, '=');
        if (eq) *eq = 0;
        int op = -1;
        for (int k = 0; k < LF_AUG_NOPS; k++)
            if (!strcmp(item, op_names[k])) op = k;
        if (op < 0) {
            lf_set_error("--ops: unknown operation '%s' (syn, ins, swap, del, kbd, cins, cdel, cswap, char, mask, span, "
                         "shuffle, bt)",
                         item);
            return LF_ERR_ARG;
        }
        float r = op_default[op];
        if (eq) {
            char *end;
            r = strtof(eq + 1, &end);
            int bad = end == eq + 1 || *end || !(r >= 0);
            if (op == LF_AUG_SHUFFLE) bad |= r < 1 || r > 1000 || r != (float)(int)r;
            else if (op == LF_AUG_BT) bad |= 1;
            else bad |= r > 1;
            if (bad) {
                lf_set_error("--ops: %s=%s is not a valid rate (%s)", item, eq + 1,
                             op == LF_AUG_SHUFFLE ? "a window of 1 to 1000 words"
                             : op == LF_AUG_BT    ? "bt takes no rate"
                                                  : "a number from 0 to 1");
                return LF_ERR_ARG;
            }
        }
        for (int k = 0; k < c->n_ops; k++)
            if (c->op[k] == (lf_aug_op)op) {
                lf_set_error("--ops: %s is given twice", item);
                return LF_ERR_ARG;
            }
        c->op[c->n_ops] = (lf_aug_op)op;
        c->rate[c->n_ops++] = r;
        p += l;
        if (*p == ',') p++;
    }
    if (c->n_ops == 0) {
        lf_set_error("--ops: no operation given (e.g. syn=0.1,ins=0.1,swap=0.1,del=0.1)");
        return LF_ERR_ARG;
    }
    return LF_OK;
}

struct lf_augmenter {
    lf_aug_config c;
    lf_wordnet *wn;
    int has_bt;
};

lf_status lf_augmenter_init(lf_augmenter **out, const lf_aug_config *c) {
    *out = NULL;
    if (c->n_ops < 1 || c->n_ops > LF_AUG_NOPS) {
        lf_set_error("augment: no operations configured");
        return LF_ERR_ARG;
    }
    lf_augmenter *a = calloc(1, sizeof *a);
    if (!a) return LF_ERR_NOMEM;
    a->c = *c;
    int need_wn = 0;
    for (int k = 0; k < c->n_ops; k++) {
        need_wn |= c->op[k] == LF_AUG_SYN || c->op[k] == LF_AUG_INS;
        a->has_bt |= c->op[k] == LF_AUG_BT;
    }
    lf_status st = need_wn ? lf_wordnet_open(&a->wn, c->wordnet_dir) : LF_OK;
    if (!st && a->has_bt) { /* fail now, naming the package, rather than after the word operations */
        const char *probe = "ok";
        char *r = NULL;
        st = lf_backtranslate(c->apertium, &probe, 1, &r);
        free(r);
    }
    if (st) {
        lf_augmenter_free(a);
        return st;
    }
    *out = a;
    return LF_OK;
}

void lf_augmenter_free(lf_augmenter *a) {
    if (!a) return;
    lf_wordnet_close(a->wn);
    free(a);
}

/* ---- random numbers: a counter-based stream per (seed, record, copy) */
static uint64_t rng_u64(lf_aug_rng *r) { return lf_hash64(r->seed, r->stream, r->counter++); }
static float rng_u01(lf_aug_rng *r) { return lf_u01(rng_u64(r)); }
static size_t rng_below(lf_aug_rng *r, size_t n) { return n ? (size_t)(rng_u64(r) % n) : 0; }

/* ---- token noise on int arrays (shared by text words and token ids) */
void lf_noise_mask(int32_t *ids, int n, float p, int32_t mask_id, lf_aug_rng *r) {
    for (int i = 0; i < n; i++)
        if (rng_u01(r) < p) ids[i] = mask_id;
}

/* T5's random_spans_noise_mask: round(p·n) noise positions in round(noise/3) spans, the noise and
 * the kept positions each cut into that many non-empty runs at random, alternating kept-noise. */
static void random_segments(int m, int k, int *len, lf_aug_rng *r) {
    /* k non-empty lengths summing to m: k-1 distinct cuts among 1..m-1 */
    int *cut = malloc((size_t)(m > 1 ? m - 1 : 1) * sizeof *cut);
    LF_ASSERT(cut != NULL && k >= 1 && k <= m);
    for (int i = 0; i < m - 1; i++) cut[i] = i + 1;
    for (int i = 0; i < k - 1; i++) { /* partial Fisher-Yates */
        int j = i + (int)rng_below(r, (size_t)(m - 1 - i));
        int t = cut[i];
        cut[i] = cut[j];
        cut[j] = t;
    }
    for (int i = 1; i < k - 1; i++) /* sort the chosen cuts (insertion) */
        for (int j = i; j > 0 && cut[j - 1] > cut[j]; j--) {
            int t = cut[j];
            cut[j] = cut[j - 1];
            cut[j - 1] = t;
        }
    int prev = 0;
    for (int i = 0; i < k - 1; i++) {
        len[i] = cut[i] - prev;
        prev = cut[i];
    }
    len[k - 1] = m - prev;
    free(cut);
}

void lf_noise_span(int32_t *ids, int n, float p, int32_t mask_id, lf_aug_rng *r) {
    if (n < 2 || p <= 0) return;
    int noise = (int)(p * (float)n + 0.5f);
    if (noise < 1) noise = 1;
    if (noise > n - 1) noise = n - 1;
    int spans = (int)((float)noise / 3.0f + 0.5f);
    if (spans < 1) spans = 1;
    if (spans > n - noise) spans = n - noise;
    int *nl = malloc((size_t)spans * sizeof *nl), *kl = malloc((size_t)spans * sizeof *kl);
    LF_ASSERT(nl != NULL && kl != NULL);
    random_segments(noise, spans, nl, r);
    random_segments(n - noise, spans, kl, r);
    int pos = 0;
    for (int s = 0; s < spans; s++) {
        pos += kl[s];
        for (int j = 0; j < nl[s]; j++) ids[pos++] = mask_id;
    }
    free(nl);
    free(kl);
}

/* Lample et al. (2018)'s local shuffle: sort by i + U(0,k)·... so no item moves k places or more */
void lf_noise_shuffle(int32_t *ids, int n, int k, lf_aug_rng *r) {
    if (k <= 1 || n < 2) return;
    float *key = malloc((size_t)n * sizeof *key);
    LF_ASSERT(key != NULL);
    for (int i = 0; i < n; i++) key[i] = (float)i + rng_u01(r) * (float)k;
    for (int i = 1; i < n; i++) /* nearly sorted: insertion sort is O(n·k), and stable */
        for (int j = i; j > 0 && key[j - 1] > key[j]; j--) {
            float t = key[j];
            key[j] = key[j - 1];
            key[j - 1] = t;
            int32_t u = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = u;
        }
    free(key);
}

/* ---- text as words */
typedef struct {
    const char *s;   /* the word (into the text or into the arena) */
    size_t n;
    const char *sep; /* whitespace after it */
    size_t sepn;
} word;

typedef struct {
    word *w;
    int n, cap;
    char **arena; /* strings made for replacements and insertions */
    int na, acap;
} words;

static void words_free(words *ws) {
    for (int i = 0; i < ws->na; i++) free(ws->arena[i]);
    free(ws->arena);
    free(ws->w);
}

static char *arena_keep(words *ws, char *s) {
    if (!s) return NULL;
    if (ws->na == ws->acap) {
        int cap = ws->acap ? 2 * ws->acap : 8;
        char **a = realloc(ws->arena, (size_t)cap * sizeof *a);
        if (!a) {
            free(s);
            return NULL;
        }
        ws->arena = a;
        ws->acap = cap;
    }
    return ws->arena[ws->na++] = s;
}

static int words_reserve(words *ws, int n) {
    if (n <= ws->cap) return 0;
    int cap = ws->cap ? ws->cap : 16;
    while (cap < n) cap *= 2;
    word *w = realloc(ws->w, (size_t)cap * sizeof *w);
    if (!w) return -1;
    ws->w = w;
    ws->cap = cap;
    return 0;
}

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* leading whitespace goes back in front of the first word when the text is rebuilt */
static int words_split(words *ws, const char *t, size_t *lead) {
    memset(ws, 0, sizeof *ws);
    size_t i = 0;
    while (t[i] && is_space((unsigned char)t[i])) i++;
    *lead = i;
    while (t[i]) {
        size_t s = i;
        while (t[i] && !is_space((unsigned char)t[i])) i++;
        size_t e = i;
        while (t[i] && is_space((unsigned char)t[i])) i++;
        if (words_reserve(ws, ws->n + 1)) return -1;
        ws->w[ws->n++] = (word){t + s, e - s, t + e, i - e};
    }
    return 0;
}

/* words joined with their separators; the last word's separator (the text's trailing space) stays last */
static char *words_join(const words *ws, const char *t, size_t lead, const char *tail, size_t tailn) {
    size_t len = lead + tailn + 1;
    for (int i = 0; i < ws->n; i++) len += ws->w[i].n + ws->w[i].sepn + 1;
    char *o = malloc(len), *p = o;
    if (!o) return NULL;
    memcpy(p, t, lead);
    p += lead;
    for (int i = 0; i < ws->n; i++) {
        memcpy(p, ws->w[i].s, ws->w[i].n);
        p += ws->w[i].n;
        if (i + 1 < ws->n) {
            const char *sep = ws->w[i].sepn ? ws->w[i].sep : " ";
            size_t sn = ws->w[i].sepn ? ws->w[i].sepn : 1;
            memcpy(p, sep, sn);
            p += sn;
        }
    }
    memcpy(p, tail, tailn);
    p += tailn;
    *p = 0;
    return o;
}

/* the word's core: ASCII letters with inner apostrophes/hyphens, punctuation around it cut off */
static int word_core(const word *w, size_t *b, size_t *e) {
    size_t i = 0, j = w->n;
    while (i < j && ispunct((unsigned char)w->s[i])) i++;
    while (j > i && ispunct((unsigned char)w->s[j - 1])) j--;
    if (i == j) return 0;
    for (size_t k = i; k < j; k++) {
        unsigned char c = (unsigned char)w->s[k];
        if (!isalpha(c) && c != '\'' && c != '-') return 0;
    }
    *b = i;
    *e = j;
    return 1;
}

#define MAX_SYN 64

/* synonyms of a word's core (0 for stop words and non-words) */
static int word_synonyms(const lf_augmenter *a, const word *w, char **syn) {
    size_t b, e;
    if (!word_core(w, &b, &e) || lf_aug_is_stopword(w->s + b, e - b)) return 0;
    return lf_wordnet_synonyms(a->wn, w->s + b, e - b, syn, MAX_SYN);
}

static void syn_free(char **syn, int n) {
    for (int i = 0; i < n; i++) free(syn[i]);
}

/* w with its core replaced by s, the first letter's case kept */
static char *word_with_core(const word *w, const char *s) {
    size_t b = 0, e = w->n;
    if (!word_core(w, &b, &e)) b = 0, e = w->n;
    size_t sl = strlen(s);
    char *o = malloc(b + sl + (w->n - e) + 1);
    if (!o) return NULL;
    memcpy(o, w->s, b);
    memcpy(o + b, s, sl);
    if (sl && isupper((unsigned char)w->s[b])) o[b] = (char)toupper((unsigned char)o[b]);
    memcpy(o + b + sl, w->s + e, w->n - e);
    o[b + sl + w->n - e] = 0;
    return o;
}

static int same_core(const word *x, const word *y) {
    size_t xb, xe, yb, ye;
    if (!word_core(x, &xb, &xe) || !word_core(y, &yb, &ye) || xe - xb != ye - yb) return 0;
    for (size_t i = 0; i < xe - xb; i++)
        if (tolower((unsigned char)x->s[xb + i]) != tolower((unsigned char)y->s[yb + i])) return 0;
    return 1;
}

static int n_changes(float alpha, int n) {
    int k = (int)(alpha * (float)n);
    return k < 1 ? 1 : k;
}

static int op_syn(const lf_augmenter *a, words *ws, float alpha, lf_aug_rng *r) {
    int n = ws->n, want = n_changes(alpha, n), done = 0;
    int *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order) return -1;
    int m = 0;
    for (int i = 0; i < n; i++) { /* distinct words, first occurrences */
        int seen = 0;
        for (int j = 0; j < m && !seen; j++) seen = same_core(&ws->w[order[j]], &ws->w[i]);
        if (!seen) order[m++] = i;
    }
    for (int i = m - 1; i > 0; i--) { /* EDA shuffles the candidates */
        int j = (int)rng_below(r, (size_t)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    char *syn[MAX_SYN];
    for (int k = 0; k < m && done < want; k++) {
        word orig = ws->w[order[k]];
        int ns = word_synonyms(a, &orig, syn);
        if (ns == 0) continue;
        const char *pick = syn[rng_below(r, (size_t)ns)];
        for (int i = 0; i < n; i++) { /* every occurrence, as EDA */
            if (!same_core(&ws->w[i], &orig)) continue;
            char *s = arena_keep(ws, word_with_core(&ws->w[i], pick));
            if (!s) {
                syn_free(syn, ns);
                free(order);
                return -1;
            }
            ws->w[i].s = s;
            ws->w[i].n = strlen(s);
        }
        syn_free(syn, ns);
        done++;
    }
    free(order);
    return 0;
}

static int op_ins(const lf_augmenter *a, words *ws, float alpha, lf_aug_rng *r) {
    int want = n_changes(alpha, ws->n);
    char *syn[MAX_SYN];
    for (int k = 0; k < want && ws->n > 0; k++) {
        int ns = 0;
        for (int tries = 0; tries < 10 && ns == 0; tries++) ns = word_synonyms(a, &ws->w[rng_below(r, (size_t)ws->n)], syn);
        if (ns == 0) return 0; /* EDA gives up after ten words without synonyms */
        char *s = arena_keep(ws, strdup(syn[rng_below(r, (size_t)ns)]));
        syn_free(syn, ns);
        if (!s || words_reserve(ws, ws->n + 1)) return -1;
        int at = (int)rng_below(r, (size_t)ws->n);
        memmove(ws->w + at + 1, ws->w + at, (size_t)(ws->n - at) * sizeof *ws->w);
        ws->w[at] = (word){s, strlen(s), " ", 1};
        ws->n++;
    }
    return 0;
}

/* a swap exchanges the words and keeps the separators where they were */
static void op_swap(words *ws, float alpha, lf_aug_rng *r) {
    int want = n_changes(alpha, ws->n);
    for (int k = 0; k < want && ws->n > 1; k++) {
        int i = (int)rng_below(r, (size_t)ws->n), j = i;
        for (int tries = 0; j == i && tries < 4; tries++) j = (int)rng_below(r, (size_t)ws->n);
        if (j == i) continue;
        word t = ws->w[i];
        ws->w[i].s = ws->w[j].s, ws->w[i].n = ws->w[j].n;
        ws->w[j].s = t.s, ws->w[j].n = t.n;
    }
}

static void op_del(words *ws, float p, lf_aug_rng *r) {
    if (ws->n <= 1) return;
    int n = ws->n, m = 0;
    size_t keep1 = rng_below(r, (size_t)n); /* drawn first so the stream does not depend on the outcome */
    word one = ws->w[keep1];
    for (int i = 0; i < n; i++)
        if (rng_u01(r) >= p) ws->w[m++] = ws->w[i];
    if (m == 0) ws->w[m++] = one;
    ws->n = m;
}

/* mask / span / shuffle on words: ids are word positions, -1 a mask */
static int op_tokens(words *ws, lf_aug_op op, float rate, const char *mask, lf_aug_rng *r) {
    int n = ws->n;
    if (n == 0) return 0;
    int32_t *id = malloc((size_t)n * sizeof *id);
    word *old = malloc((size_t)n * sizeof *old);
    if (!id || !old) {
        free(id);
        free(old);
        return -1;
    }
    for (int i = 0; i < n; i++) id[i] = i;
    memcpy(old, ws->w, (size_t)n * sizeof *old);
    if (op == LF_AUG_MASK) lf_noise_mask(id, n, rate, -1, r);
    else if (op == LF_AUG_SPAN) lf_noise_span(id, n, rate, -1, r);
    else lf_noise_shuffle(id, n, (int)rate, r);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (id[i] >= 0) {
            ws->w[m] = old[id[i]];
            if (op == LF_AUG_SHUFFLE) ws->w[m].sep = old[i].sep, ws->w[m].sepn = old[i].sepn;
            m++;
        } else if (op == LF_AUG_MASK || m == 0 || ws->w[m - 1].s != mask) { /* a span is one mask */
            ws->w[m++] = (word){mask, strlen(mask), old[i].sep, old[i].sepn};
        } else {
            ws->w[m - 1].sep = old[i].sep, ws->w[m - 1].sepn = old[i].sepn;
        }
    }
    ws->n = m;
    free(id);
    free(old);
    return 0;
}

static char *op_words(const lf_augmenter *a, lf_aug_op op, float rate, const char *t, lf_aug_rng *r) {
    words ws;
    size_t lead;
    char *o = NULL;
    if (words_split(&ws, t, &lead) == 0) {
        size_t tailn = ws.n ? ws.w[ws.n - 1].sepn : 0;
        const char *tail = ws.n ? ws.w[ws.n - 1].sep : "";
        int rc = 0;
        switch (op) {
        case LF_AUG_SYN: rc = op_syn(a, &ws, rate, r); break;
        case LF_AUG_INS: rc = op_ins(a, &ws, rate, r); break;
        case LF_AUG_SWAP: op_swap(&ws, rate, r); break;
        case LF_AUG_DEL: op_del(&ws, rate, r); break;
        default: rc = op_tokens(&ws, op, rate, a->c.mask_token, r); break;
        }
        if (ws.n) ws.w[ws.n - 1].sepn = 0;
        if (!rc) o = words_join(&ws, t, lead, tail, tailn);
    }
    words_free(&ws);
    return o;
}

/* ---- character noise */
static const char *const qwerty[] = {"qwertyuiop", "asdfghjkl", "zxcvbnm"};
static const char *const digits_row = "1234567890";

/* keyboard neighbours of a lower-case letter or digit (same row and the rows above/below) */
static int kbd_neighbours(char c, char *out) {
    int n = 0;
    const char *rows[4] = {digits_row, qwerty[0], qwerty[1], qwerty[2]};
    for (int r = 0; r < 4; r++) {
        const char *p = strchr(rows[r], c);
        if (!p) continue;
        int col = (int)(p - rows[r]);
        for (int dr = -1; dr <= 1; dr++) {
            int rr = r + dr;
            if (rr < 0 || rr > 3) continue;
            int len = (int)strlen(rows[rr]);
            for (int dc = -1; dc <= 1; dc++) {
                int cc = col + dc;
                if ((dr == 0 && dc == 0) || cc < 0 || cc >= len) continue;
                out[n++] = rows[rr][cc];
            }
        }
    }
    return n;
}

static char kbd_sub(char c, lf_aug_rng *r) {
    char nb[16];
    int up = isupper((unsigned char)c);
    int n = kbd_neighbours((char)tolower((unsigned char)c), nb);
    if (n == 0) return c;
    char s = nb[rng_below(r, (size_t)n)];
    return up && isalpha((unsigned char)s) ? (char)toupper((unsigned char)s) : s;
}

static int is_alnum_ascii(unsigned char c) { return c < 128 && isalnum(c); }

static char *op_chars(lf_aug_op op, float p, const char *t, lf_aug_rng *r) {
    size_t n = strlen(t);
    char *o = malloc(2 * n + 1), *q = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (!is_alnum_ascii(c) || rng_u01(r) >= p) {
            *q++ = (char)c;
            continue;
        }
        lf_aug_op k = op;
        if (op == LF_AUG_CHAR) k = (lf_aug_op)(LF_AUG_KBD + (int)rng_below(r, 4));
        int first = i == 0 || !is_alnum_ascii((unsigned char)t[i - 1]);
        switch (k) {
        case LF_AUG_KBD: *q++ = kbd_sub((char)c, r); break;
        case LF_AUG_CINS: {
            char x = (char)('a' + rng_below(r, 26));
            *q++ = (char)c;
            *q++ = isupper(c) ? (char)toupper((unsigned char)x) : x;
            break;
        }
        case LF_AUG_CDEL:
            if (first) *q++ = (char)c; /* a word keeps its first letter */
            break;
        default: /* CSWAP: with the next character of the same word */
            if (i + 1 < n && is_alnum_ascii((unsigned char)t[i + 1]) && t[i + 1] != (char)c) {
                *q++ = t[i + 1];
                *q++ = (char)c;
                i++;
            } else {
                *q++ = (char)c;
            }
            break;
        }
    }
    *q = 0;
    return o;
}

static int utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        int k = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
        if (k < 0 || (k == 1 && c < 0xc2) || (k == 3 && c > 0xf4) || i + (size_t)k >= n) return 0;
        for (int j = 1; j <= k; j++)
            if ((p[i + j] & 0xc0) != 0x80) return 0;
        if (k == 2) {
            unsigned v = ((c & 15u) << 12) | ((p[i + 1] & 63u) << 6);
            if (v < 0x800 || (v >= 0xd800 && v <= 0xdfff)) return 0;
        }
        if (k == 3) {
            unsigned v = ((c & 7u) << 18) | ((p[i + 1] & 63u) << 12);
            if (v < 0x10000 || v > 0x10ffff) return 0;
        }
        i += (size_t)k + 1;
    }
    return 1;
}

static char *apply(const lf_augmenter *a, lf_aug_op op, float rate, const char *t, lf_aug_rng *r) {
    if (op >= LF_AUG_KBD && op <= LF_AUG_CHAR) return op_chars(op, rate, t, r);
    return op_words(a, op, rate, t, r);
}

lf_status lf_augment_one(const lf_augmenter *a, lf_aug_op op, float rate, const char *text, uint64_t seed,
                         uint64_t stream, char **out) {
    *out = NULL;
    if (op == LF_AUG_BT || (unsigned)op >= LF_AUG_NOPS) {
        lf_set_error("lf_augment_one: %s is not a per-text operation", lf_aug_op_name(op));
        return LF_ERR_ARG;
    }
    if ((op == LF_AUG_SYN || op == LF_AUG_INS) && !a->wn) {
        lf_set_error("augment: %s needs WordNet, which this augmenter did not open", lf_aug_op_name(op));
        return LF_ERR_ARG;
    }
    lf_aug_rng r = {seed, stream, 0};
    if (!utf8_valid(text, strlen(text))) { /* passed through unchanged */
        *out = strdup(text);
    } else {
        *out = apply(a, op, rate, text, &r);
    }
    return *out ? LF_OK : LF_ERR_NOMEM;
}

static int blank(const char *s) {
    for (; *s; s++)
        if (!is_space((unsigned char)*s)) return 0;
    return 1;
}

lf_status lf_augment_texts(lf_augmenter *a, const char *const *texts, size_t n, int copies, uint64_t seed,
                           int threads, char **out, lf_aug_stats *stats, lf_aug_progress_fn progress, void *pctx) {
    lf_aug_stats st;
    memset(&st, 0, sizeof st);
    st.records = n;
    if (copies < 0) {
        lf_set_error("augment: copies must be >= 0");
        return LF_ERR_ARG;
    }
    size_t nc = (size_t)copies;
    memset(out, 0, n * nc * sizeof *out);
    unsigned char *skip = calloc(n ? n : 1, 1); /* 1 empty, 2 too long, 3 not UTF-8 */
    if (!skip) return LF_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(texts[i]);
        if (blank(texts[i])) skip[i] = 1, st.empty++;
        else if (len > a->c.max_bytes) skip[i] = 2, st.too_long++;
        else if (!utf8_valid(texts[i], len)) skip[i] = 3, st.invalid_utf8++;
    }
    char **bt = NULL;
    int bt_used = 0;
    for (int k = 0; k < a->c.n_ops; k++) bt_used |= a->c.op[k] == LF_AUG_BT;
    bt_used &= copies > 0;
    lf_status status = LF_OK;
    if (bt_used) { /* one Apertium pass over every text, before the parallel part */
        double t0 = lf_now();
        const char **src = malloc((n ? n : 1) * sizeof *src);
        size_t *idx = malloc((n ? n : 1) * sizeof *idx);
        char **res = calloc(n ? n : 1, sizeof *res);
        bt = calloc(n ? n : 1, sizeof *bt);
        size_t m = 0;
        if (!src || !idx || !res || !bt) status = LF_ERR_NOMEM;
        for (size_t i = 0; !status && i < n; i++)
            if (!skip[i]) src[m] = texts[i], idx[m++] = i;
        if (!status) status = lf_backtranslate(a->c.apertium, src, m, res);
        for (size_t j = 0; !status && j < m; j++) {
            bt[idx[j]] = res[j];
            if (!res[j]) st.bt_failed++;
        }
        free(src);
        free(idx);
        free(res);
        st.seconds_bt = lf_now() - t0;
    }
    volatile int failed = 0;
    size_t done = 0;
    if (!status) {
#pragma omp parallel for schedule(dynamic, 8) num_threads(threads > 0 ? threads : lf_num_threads())
        for (size_t i = 0; i < n; i++) {
            if (failed) continue;
            for (size_t c = 0; c < nc && !skip[i]; c++) {
                lf_aug_rng r = {seed, i, (uint64_t)c << 40};
                char *s = NULL;
                if (a->c.chain) {
                    s = strdup(bt ? (bt[i] ? bt[i] : texts[i]) : texts[i]);
                    for (int k = 0; s && k < a->c.n_ops; k++) {
                        if (a->c.op[k] == LF_AUG_BT) continue;
                        char *t = apply(a, a->c.op[k], a->c.rate[k], s, &r);
                        free(s);
                        s = t;
                    }
                    if (!s) failed = 1;
                } else {
                    int k = (int)(c % (size_t)a->c.n_ops);
                    if (a->c.op[k] == LF_AUG_BT) {
                        if (bt[i] && !(s = strdup(bt[i]))) failed = 1;
                    } else if (!(s = apply(a, a->c.op[k], a->c.rate[k], texts[i], &r))) {
                        failed = 1;
                    }
                }
                out[i * nc + c] = s;
            }
            size_t d;
#pragma omp atomic capture
            d = ++done;
#ifdef _OPENMP
            if (progress && omp_get_thread_num() == 0) progress(pctx, d, n);
#else
            if (progress) progress(pctx, d, n);
#endif
        }
        if (failed) {
            lf_set_error("augment: out of memory");
            status = LF_ERR_NOMEM;
        }
    }
    for (size_t i = 0; i < n && !status; i++)
        for (size_t c = 0; c < nc; c++) {
            if (out[i * nc + c]) st.copies_made++;
            if (out[i * nc + c] && !strcmp(out[i * nc + c], texts[i])) st.unchanged++;
        }
    if (status)
        for (size_t i = 0; i < n * nc; i++) free(out[i]), out[i] = NULL;
    if (bt)
        for (size_t i = 0; i < n; i++) free(bt[i]);
    free(bt);
    free(skip);
    if (progress && !status) progress(pctx, n, n);
    if (stats) *stats = st;
    return status;
}
