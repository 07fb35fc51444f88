/* lmforge augment: seeded data augmentation for text and token data.
 *
 * Word operations after EDA (Wei & Zou 2019): synonym replacement and random insertion from
 * WordNet, random swap, random deletion. Character noise after nlpaug: keyboard-neighbour
 * substitution (QWERTY), insertion, deletion, transposition. Token noise for language-model data:
 * masking, span corruption, shuffling within a window. Back-translation English -> Spanish ->
 * English through Apertium. Every random choice is a counter-based hash of (seed, record, copy),
 * so the output of a seed is the same whatever the thread count. */
#ifndef LMFORGE_AUGMENT_H
#define LMFORGE_AUGMENT_H

#include "lmforge/batch.h"
#include "lmforge/core.h"

/* ---- WordNet, read from its database files (wndb(5): index.POS, data.POS, POS.exc). The files
 * are loaded once and only read afterwards, so lookups are safe from many threads. */
typedef struct lf_wordnet lf_wordnet;
/* dir NULL: $WNSEARCHDIR, else /usr/share/wordnet (Debian's wordnet-base) */
lf_status lf_wordnet_open(lf_wordnet **out, const char *dir);
void lf_wordnet_close(lf_wordnet *wn);
/* The synonyms of a word (any case; inflections reduced by WordNet's morphology rules and
 * exception lists) in the part of speech it most often has (WordNet's tagged sense counts;
 * "-ly" prefers adverbs, "-ing"/"-ed" verbs). Each synonym is lower case, '_' and '-' as spaces,
 * letters and spaces only, the word itself and proper nouns (capitalised lemmas) left out. Writes up to cap malloc'd strings into out and
 * returns how many (0: none or not in WordNet). */
int lf_wordnet_synonyms(const lf_wordnet *wn, const char *word, size_t len, char **out, int cap);

/* EDA's stop words are never replaced nor used for insertion */
int lf_aug_is_stopword(const char *w, size_t len);

/* ---- operations */
typedef enum {
    LF_AUG_SYN = 0, /* synonym replacement: max(1, α·words) distinct words, every occurrence */
    LF_AUG_INS,     /* random insertion: max(1, α·words) synonyms of random words at random places */
    LF_AUG_SWAP,    /* random swap: max(1, α·words) swaps of two positions */
    LF_AUG_DEL,     /* random deletion: each word with probability p (one is always kept) */
    LF_AUG_KBD,     /* each letter/digit replaced by a QWERTY neighbour with probability p */
    LF_AUG_CINS,    /* a random letter inserted after each letter with probability p */
    LF_AUG_CDEL,    /* each letter deleted with probability p (a word keeps its first letter) */
    LF_AUG_CSWAP,   /* each letter swapped with the next one of its word with probability p */
    LF_AUG_CHAR,    /* each letter edited with probability p by one of the four above */
    LF_AUG_MASK,    /* each word (token) replaced by the mask with probability p */
    LF_AUG_SPAN,    /* spans (mean length 3) replaced by one mask each, p of the words in all */
    LF_AUG_SHUFFLE, /* words moved at most k-1 places (sort by i + U(0,k)); rate = k */
    LF_AUG_BT,      /* back-translation eng -> spa -> eng through Apertium */
    LF_AUG_NOPS
} lf_aug_op;

const char *lf_aug_op_name(lf_aug_op op); /* "syn", "ins", ..., "bt" */

typedef struct {
    int n_ops;
    lf_aug_op op[LF_AUG_NOPS];
    float rate[LF_AUG_NOPS];  /* per entry of op[] */
    int chain;                /* 0: copy c uses op[c % n_ops] (EDA); 1: every copy applies all, in order */
    const char *mask_token;   /* text masking/span corruption (default "<mask>") */
    size_t max_bytes;         /* longer texts are kept as they are, not augmented (default 1 MiB) */
    const char *wordnet_dir;  /* NULL: lf_wordnet_open's default */
    const char *apertium;     /* the apertium program (default "apertium") */
} lf_aug_config;

void lf_aug_config_default(lf_aug_config *c);
/* "syn=0.1,ins=0.1,swap=0.1,del=0.1,char=0.05,bt" (a bare name takes its default rate) */
lf_status lf_aug_config_parse(lf_aug_config *c, const char *spec);

typedef struct lf_augmenter lf_augmenter;
/* Opens WordNet when syn/ins are asked and checks the Apertium pair when bt is: a missing
 * installation is an LF_ERR_NOTFOUND naming the Debian package. */
lf_status lf_augmenter_init(lf_augmenter **out, const lf_aug_config *c);
void lf_augmenter_free(lf_augmenter *a);

typedef struct {
    size_t records, copies_made, unchanged; /* unchanged: copies equal to their original */
    size_t empty, too_long, invalid_utf8;   /* kept as they are, not augmented */
    size_t bt_failed;                       /* back-translations lost (markers garbled) */
    double seconds_bt;
} lf_aug_stats;

/* Progress callback: records done so far (called from one thread). */
typedef void (*lf_aug_progress_fn)(void *ctx, size_t done, size_t total);

/* copies versions of each of the n texts: out[i*copies + c] (malloc'd, the caller frees each) for
 * record i, copy c, or NULL where the text is not augmented (empty, too long, not UTF-8: counted
 * in stats). Copy c of record i depends only on (seed, i, c), never on the thread count. */
lf_status lf_augment_texts(lf_augmenter *a, const char *const *texts, size_t n, int copies, uint64_t seed,
                           int threads, char **out, lf_aug_stats *stats, lf_aug_progress_fn progress, void *pctx);

/* One operation on one text with a given random stream (what lf_augment_texts does per copy);
 * bt is not available here. Returns a malloc'd string. */
lf_status lf_augment_one(const lf_augmenter *a, lf_aug_op op, float rate, const char *text, uint64_t seed,
                         uint64_t stream, char **out);

/* Back-translation of n texts through one Apertium process pair (eng-spa | spa-eng, unknown-word
 * marks off): the texts go in as one stream separated by numbered marker paragraphs, written and
 * read concurrently, and come back in order. out[i] NULL when its markers did not survive. */
lf_status lf_backtranslate(const char *apertium, const char *const *texts, size_t n, char **out);

/* ---- token noise on ids (in place), the same algorithms as the word operations */
typedef struct {
    uint64_t seed, stream, counter;
} lf_aug_rng;
void lf_noise_mask(int32_t *ids, int n, float p, int32_t mask_id, lf_aug_rng *r);
void lf_noise_span(int32_t *ids, int n, float p, int32_t mask_id, lf_aug_rng *r); /* spans masked in place */
void lf_noise_shuffle(int32_t *ids, int n, int k, lf_aug_rng *r);

/* ---- online augmentation: a batch source that wraps another and noises its inputs (targets stay
 * the clean next tokens, so the model learns to predict through the noise). Row r of batch k is
 * noised from (seed, k, r): with the inner source's state words followed by k, a resumed run
 * gets bit-identical batches. */
typedef struct {
    float mask, span;   /* probabilities (0 = off) */
    int shuffle;        /* window k (0 or 1 = off) */
    int32_t mask_id;
    uint64_t seed;
} lf_noise_config;
/* takes ownership of inner */
lf_status lf_noise_source(lf_batch_source **out, lf_batch_source *inner, const lf_noise_config *c);

#endif
