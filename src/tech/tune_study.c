/* lmforge tune: the study, stored in DIR/study.db (SQLite). WAL mode lets readers (`tune show`)
 * run beside one writer; every write is a short BEGIN IMMEDIATE transaction under a busy timeout,
 * so worker processes and separate `lmforge tune` invocations queue instead of failing with
 * "database is locked". Claiming a trial (numbering, sampling, recording it RUNNING with pid, host
 * and heartbeat) is one transaction, so two workers never get the same number. The file is
 * marked with an application id and a schema version, checked on open. */
#include "lmforge/tune.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define STUDY_APP_ID 0x4c465455 /* "LFTU" */
#define STUDY_VERSION 1

struct lf_study {
    sqlite3 *db;
    char dir[512], path[600], host[64];
    lf_space *space;
    lf_tune_opts opts;
    char *extra;
};

static double wall_now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

static lf_status db_fail(lf_study *s, const char *what) {
    lf_set_error("%s: %s: %s (hint: is the study folder on a local disk? SQLite's WAL mode needs one)", s->path, what, sqlite3_errmsg(s->db));
    return LF_ERR_IO;
}

static lf_status exec(lf_study *s, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        lf_set_error("%s: %s: %s", s->path, sql, err ? err : sqlite3_errmsg(s->db));
        sqlite3_free(err);
        return LF_ERR_IO;
    }
    return LF_OK;
}

/* BEGIN IMMEDIATE takes the write lock up front (no deadlock between two readers that both want
 * to write); the busy timeout waits for it, and this loop covers the rare SQLITE_BUSY that
 * SQLite returns without waiting */
static lf_status begin(lf_study *s) {
    for (int tries = 0;; tries++) {
        int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK) return LF_OK;
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || tries > 600) return db_fail(s, "cannot start a write transaction");
        usleep(100000);
    }
}
static lf_status commit(lf_study *s) {
    for (int tries = 0;; tries++) {
        int rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        if (rc == SQLITE_OK) return LF_OK;
        if (rc != SQLITE_BUSY || tries > 600) {
            lf_status st = db_fail(s, "commit failed");
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return st;
        }
        usleep(100000);
    }
}
static void rollback(lf_study *s) { sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL); }

static char *opts_json(const lf_tune_opts *o) {
    json_t *j = json_object();
    json_object_set_new(j, "sampler", json_string(o->sampler));
    json_object_set_new(j, "pruner", json_string(o->pruner));
    json_object_set_new(j, "direction", json_string(o->maximize ? "max" : "min"));
    json_object_set_new(j, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(j, "n_startup_trials", json_integer(o->n_startup_trials));
    json_object_set_new(j, "n_ei_candidates", json_integer(o->n_ei_candidates));
    json_object_set_new(j, "multivariate", json_boolean(o->multivariate));
    json_object_set_new(j, "prior_weight", json_real(o->prior_weight));
    json_object_set_new(j, "median_startup_trials", json_integer(o->median_startup_trials));
    json_object_set_new(j, "warmup_steps", json_integer(o->warmup_steps));
    json_object_set_new(j, "interval_steps", json_integer(o->interval_steps));
    json_object_set_new(j, "min_resource", json_integer(o->min_resource));
    json_object_set_new(j, "reduction_factor", json_integer(o->reduction_factor));
    json_object_set_new(j, "min_early_stopping_rate", json_integer(o->min_early_stopping_rate));
    char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return t;
}

static lf_status opts_parse(lf_tune_opts *o, const char *txt, const char *path) {
    json_t *j = json_loads(txt, 0, NULL);
    lf_tune_opts_defaults(o);
    const char *sa = json_string_value(json_object_get(j, "sampler")), *pr = json_string_value(json_object_get(j, "pruner")),
               *di = json_string_value(json_object_get(j, "direction"));
    if (!j || !sa || !pr || !di || strlen(sa) >= sizeof o->sampler || strlen(pr) >= sizeof o->pruner) {
        json_decref(j);
        lf_set_error("%s: the stored tuning options are unreadable (not written by this lmforge?)", path);
        return LF_ERR_FORMAT;
    }
    strcpy(o->sampler, sa);
    strcpy(o->pruner, pr);
    o->maximize = !strcmp(di, "max");
    o->seed = (uint64_t)json_integer_value(json_object_get(j, "seed"));
    o->n_startup_trials = (int)json_integer_value(json_object_get(j, "n_startup_trials"));
    o->n_ei_candidates = (int)json_integer_value(json_object_get(j, "n_ei_candidates"));
    o->multivariate = json_is_true(json_object_get(j, "multivariate"));
    o->prior_weight = json_number_value(json_object_get(j, "prior_weight"));
    o->median_startup_trials = (int)json_integer_value(json_object_get(j, "median_startup_trials"));
    o->warmup_steps = (int)json_integer_value(json_object_get(j, "warmup_steps"));
    o->interval_steps = (int)json_integer_value(json_object_get(j, "interval_steps"));
    o->min_resource = (int)json_integer_value(json_object_get(j, "min_resource"));
    o->reduction_factor = (int)json_integer_value(json_object_get(j, "reduction_factor"));
    o->min_early_stopping_rate = (int)json_integer_value(json_object_get(j, "min_early_stopping_rate"));
    json_decref(j);
    return LF_OK;
}

static char *meta_get(lf_study *s, const char *key) {
    sqlite3_stmt *q;
    char *v = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = ?", -1, &q, NULL) != SQLITE_OK) return NULL;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0)) v = strdup((const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    return v;
}
static lf_status meta_put(lf_study *s, const char *key, const char *value) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, "cannot write the study's settings");
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? LF_OK : db_fail(s, "cannot write the study's settings");
}

static int pragma_int(lf_study *s, const char *sql) {
    sqlite3_stmt *q;
    int v = -1;
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK) return -1;
    if (sqlite3_step(q) == SQLITE_ROW) v = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return v;
}

void lf_study_free(lf_study *s) {
    if (!s) return;
    if (s->db) sqlite3_close(s->db);
    lf_space_free(s->space);
    free(s->extra);
    free(s);
}

lf_status lf_study_open(lf_study **out, const char *dir, const char *space_json, const lf_tune_opts *o, const char *extra_json) {
    *out = NULL;
    lf_study *s = calloc(1, sizeof *s);
    if (!s) return LF_ERR_NOMEM;
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    snprintf(s->path, sizeof s->path, "%s/study.db", dir);
    if (gethostname(s->host, sizeof s->host - 1)) strcpy(s->host, "localhost");
    lf_status st = LF_OK;
    int exists = lf_path_exists(s->path);
    if (!exists && !space_json) {
        lf_set_error("%s: no study here (hint: start one with lmforge tune --space SPACE.json --study %s)", s->path, dir);
        st = LF_ERR_NOTFOUND;
    }
    if (!st && !exists) st = lf_mkdirs(dir);
    if (!st && exists) st = lf_check_regular(s->path);
    if (!st && sqlite3_open_v2(s->path, &s->db, exists ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        st = db_fail(s, "cannot open");
    if (!st) sqlite3_busy_timeout(s->db, 60000);
    if (!st) {
        /* another process may hold the file while it switches to WAL: retry under the timeout */
        int mode_ok = 0;
        for (int tries = 0; tries < 600 && !mode_ok; tries++) {
            sqlite3_stmt *q;
            int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &q, NULL);
            if (rc == SQLITE_OK) {
                if ((rc = sqlite3_step(q)) == SQLITE_ROW) mode_ok = !strcmp((const char *)sqlite3_column_text(q, 0), "wal");
                sqlite3_finalize(q);
            }
            if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break; /* not a lock: a damaged or foreign file */
            if (!mode_ok) usleep(100000);
        }
        if (!mode_ok) st = db_fail(s, "cannot switch to WAL mode");
    }
    if (!st) st = exec(s, "PRAGMA synchronous=NORMAL");
    if (!st) {
        int app = pragma_int(s, "PRAGMA application_id"), ver = pragma_int(s, "PRAGMA user_version");
        int tables = pragma_int(s, "SELECT count(*) FROM sqlite_master");
        if (tables > 0 && app != STUDY_APP_ID) {
            lf_set_error("%s: not an lmforge study (SQLite application id %#x, expected %#x)", s->path, app, STUDY_APP_ID);
            st = LF_ERR_FORMAT;
        } else if (tables > 0 && ver != STUDY_VERSION) {
            lf_set_error("%s: study schema version %d; this lmforge reads version %d", s->path, ver, STUDY_VERSION);
            st = LF_ERR_FORMAT;
        }
    }
    if (!st && space_json) { /* create, or agree with, the stored settings: one transaction */
        char *oj = opts_json(o);
        st = begin(s);
        if (!st) st = exec(s, "PRAGMA application_id=1279677525; PRAGMA user_version=1;"
                              "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
                              "CREATE TABLE IF NOT EXISTS trial(number INTEGER PRIMARY KEY, state INTEGER, value REAL, params TEXT,"
                              " last_step INTEGER, started REAL, finished REAL, heartbeat REAL, pid INTEGER, host TEXT, run_dir TEXT,"
                              " message TEXT);"
                              "CREATE TABLE IF NOT EXISTS inter(number INTEGER, step INTEGER, value REAL, PRIMARY KEY(number, step));"
                              "CREATE TABLE IF NOT EXISTS rung(number INTEGER, rung INTEGER, value REAL, PRIMARY KEY(number, rung));");
        if (!st) st = meta_put(s, "space", space_json);
        if (!st) st = meta_put(s, "options", oj ? oj : "{}");
        if (!st) st = meta_put(s, "extra", extra_json ? extra_json : "");
        if (!st) st = commit(s);
        else rollback(s);
        free(oj);
    } else if (!st && pragma_int(s, "SELECT count(*) FROM sqlite_master WHERE name = 'meta'") != 1) {
        lf_set_error("%s: an empty study (no settings stored)", s->path);
        st = LF_ERR_FORMAT;
    }
    char *sp = NULL, *op = NULL;
    if (!st) {
        sp = meta_get(s, "space");
        op = meta_get(s, "options");
        s->extra = meta_get(s, "extra");
        if (!sp || !op || !s->extra) {
            lf_set_error("%s: the study's settings are missing", s->path);
            st = LF_ERR_FORMAT;
        }
    }
    if (!st) st = lf_space_parse(&s->space, sp, s->path);
    if (!st) st = opts_parse(&s->opts, op, s->path);
    if (!st && space_json) {
        /* an existing study keeps its space and options: a second `lmforge tune` joins it as is */
        lf_space *given = NULL;
        char *a = NULL, *b = NULL, *oj = opts_json(o);
        st = lf_space_parse(&given, space_json, "the given space");
        if (!st) {
            a = lf_space_json(given);
            b = lf_space_json(s->space);
            if (!a || !b || strcmp(a, b)) {
                lf_set_error("%s: this study was started with another search space (hint: use a new --study folder, or "
                             "'lmforge tune show %s' for its space)", s->path, dir);
                st = LF_ERR_ARG;
            } else if (!oj || strcmp(oj, op)) {
                lf_set_error("%s: this study was started with other options (stored: %s)", s->path, op);
                st = LF_ERR_ARG;
            } else if (extra_json && strcmp(extra_json, s->extra)) {
                lf_set_error("%s: this study was started with another fixed training configuration (hint: a new --study folder)", s->path);
                st = LF_ERR_ARG;
            }
        }
        lf_space_free(given);
        free(a);
        free(b);
        free(oj);
    }
    free(sp);
    free(op);
    if (st) {
        lf_study_free(s);
        return st;
    }
    *out = s;
    return LF_OK;
}

const lf_space *lf_study_space(const lf_study *s) { return s->space; }
const lf_tune_opts *lf_study_opts(const lf_study *s) { return &s->opts; }
const char *lf_study_extra(const lf_study *s) { return s->extra ? s->extra : ""; }
const char *lf_study_dir(const lf_study *s) { return s->dir; }

void lf_trials_free(lf_trial *t, int n) {
    if (!t) return;
    for (int i = 0; i < n; i++) {
        free(t[i].inter_step);
        free(t[i].inter_value);
    }
    free(t);
}

static void copy_text(char *dst, size_t cap, const unsigned char *src) { snprintf(dst, cap, "%s", src ? (const char *)src : ""); }

static lf_status parse_params(lf_study *s, const char *txt, double *x) {
    int n = lf_space_size(s->space);
    for (int i = 0; i < LF_TUNE_MAX_PARAMS; i++) x[i] = NAN;
    json_t *j = txt ? json_loads(txt, 0, NULL) : NULL;
    if (!json_is_array(j) || (int)json_array_size(j) != n) {
        json_decref(j);
        lf_set_error("%s: a trial's parameters are unreadable", s->path);
        return LF_ERR_FORMAT;
    }
    for (int i = 0; i < n; i++) {
        json_t *v = json_array_get(j, (size_t)i);
        x[i] = json_is_number(v) ? json_number_value(v) : NAN;
    }
    json_decref(j);
    return LF_OK;
}

static lf_status load_trials(lf_study *s, lf_trial **out, int *nout) {
    *out = NULL;
    *nout = 0;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "SELECT number, state, value, params, last_step, started, finished, heartbeat, pid, host, run_dir, "
                                  "message FROM trial ORDER BY number", -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, "cannot read the trials");
    int cap = 16, n = 0, rc;
    lf_trial *t = calloc((size_t)cap, sizeof *t);
    lf_status st = t ? LF_OK : LF_ERR_NOMEM;
    while (!st && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == cap) {
            lf_trial *nt = realloc(t, sizeof *t * (size_t)cap * 2);
            if (!nt) {
                st = LF_ERR_NOMEM;
                break;
            }
            t = nt;
            memset(t + cap, 0, sizeof *t * (size_t)cap);
            cap *= 2;
        }
        lf_trial *r = &t[n++];
        r->number = sqlite3_column_int(q, 0);
        r->state = (lf_trial_state)sqlite3_column_int(q, 1);
        r->value = sqlite3_column_type(q, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 2);
        st = parse_params(s, (const char *)sqlite3_column_text(q, 3), r->x);
        r->last_step = sqlite3_column_type(q, 4) == SQLITE_NULL ? -1 : sqlite3_column_int(q, 4);
        r->started = sqlite3_column_double(q, 5);
        r->finished = sqlite3_column_double(q, 6);
        r->heartbeat = sqlite3_column_double(q, 7);
        r->pid = sqlite3_column_int(q, 8);
        copy_text(r->host, sizeof r->host, sqlite3_column_text(q, 9));
        copy_text(r->run_dir, sizeof r->run_dir, sqlite3_column_text(q, 10));
        copy_text(r->message, sizeof r->message, sqlite3_column_text(q, 11));
        if ((unsigned)r->state > LF_TRIAL_FAILED) {
            lf_set_error("%s: trial %d has an unknown state %d", s->path, r->number, (int)r->state);
            st = LF_ERR_FORMAT;
        }
    }
    sqlite3_finalize(q);
    if (!st && sqlite3_prepare_v2(s->db, "SELECT number, step, value FROM inter ORDER BY number, step", -1, &q, NULL) != SQLITE_OK)
        st = db_fail(s, "cannot read the intermediate values");
    if (!st) {
        int i = 0;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW && !st) {
            int num = sqlite3_column_int(q, 0);
            while (i < n && t[i].number < num) i++;
            if (i == n || t[i].number != num) continue;
            lf_trial *r = &t[i];
            int *ns = realloc(r->inter_step, sizeof(int) * (size_t)(r->n_inter + 1));
            if (ns) r->inter_step = ns;
            double *nv = realloc(r->inter_value, sizeof(double) * (size_t)(r->n_inter + 1));
            if (nv) r->inter_value = nv;
            if (!ns || !nv) {
                st = LF_ERR_NOMEM;
                break;
            }
            r->inter_step[r->n_inter] = sqlite3_column_int(q, 1);
            r->inter_value[r->n_inter] = sqlite3_column_type(q, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 2);
            r->n_inter++;
        }
        sqlite3_finalize(q);
    }
    if (st) {
        lf_trials_free(t, n);
        if (st == LF_ERR_NOMEM) lf_set_error("%s: out of memory reading the trials", s->path);
        return st;
    }
    *out = t;
    *nout = n;
    return LF_OK;
}

lf_status lf_study_trials(lf_study *s, lf_trial **out, int *n) {
    /* a read transaction: one consistent snapshot of trials and their reports */
    if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) return db_fail(s, "cannot read");
    lf_status st = load_trials(s, out, n);
    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    return st;
}

/* inside a write transaction */
static lf_status reap_locked(lf_study *s, double stale_s, int *n_marked) {
    sqlite3_stmt *q, *u;
    int marked = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT number, pid, host, heartbeat FROM trial WHERE state = 0", -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, "cannot read the running trials");
    if (sqlite3_prepare_v2(s->db, "UPDATE trial SET state = 3, finished = ?, message = ? WHERE number = ?", -1, &u, NULL) != SQLITE_OK) {
        sqlite3_finalize(q);
        return db_fail(s, "cannot mark a trial");
    }
    double now = wall_now();
    lf_status st = LF_OK;
    while (!st && sqlite3_step(q) == SQLITE_ROW) {
        int num = sqlite3_column_int(q, 0), pid = sqlite3_column_int(q, 1);
        const char *host = (const char *)sqlite3_column_text(q, 2);
        double hb = sqlite3_column_double(q, 3);
        int dead;
        char msg[256];
        if (host && !strcmp(host, s->host)) {
            dead = pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
            snprintf(msg, sizeof msg, "worker pid %d on %s is gone", pid, s->host);
        } else {
            dead = now - hb > stale_s;
            snprintf(msg, sizeof msg, "no heartbeat from worker pid %d on %s for %.0f s", pid, host ? host : "?", now - hb);
        }
        if (!dead) continue;
        sqlite3_reset(u);
        sqlite3_bind_double(u, 1, now);
        sqlite3_bind_text(u, 2, msg, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(u, 3, num);
        if (sqlite3_step(u) != SQLITE_DONE) st = db_fail(s, "cannot mark a dead worker's trial failed");
        marked++;
    }
    sqlite3_finalize(q);
    sqlite3_finalize(u);
    if (n_marked) *n_marked = marked;
    return st;
}

lf_status lf_study_reap(lf_study *s, double stale_s, int *n_marked) {
    lf_status st = begin(s);
    if (st) return st;
    st = reap_locked(s, stale_s, n_marked);
    if (!st) return commit(s);
    rollback(s);
    return st;
}

#define STALE_S 600.0 /* another host's worker with no heartbeat for this long is taken as dead */

lf_status lf_study_ask(lf_study *s, int n_trials, lf_trial *t, int *got) {
    *got = 0;
    memset(t, 0, sizeof *t);
    lf_status st = begin(s);
    if (st) return st;
    lf_trial *hist = NULL;
    int n = 0, live = 0, next = 0, exhausted = 0;
    st = reap_locked(s, STALE_S, NULL);
    if (!st) st = load_trials(s, &hist, &n);
    for (int i = 0; !st && i < n; i++) {
        live += hist[i].state != LF_TRIAL_FAILED;
        if (hist[i].number >= next) next = hist[i].number + 1;
    }
    if (!st && live < n_trials) {
        t->number = next;
        st = lf_tune_sample(s->space, &s->opts, hist, n, next, t->x, &exhausted);
    }
    if (!st && live < n_trials && !exhausted) {
        json_t *a = json_array();
        for (int i = 0; i < lf_space_size(s->space); i++) json_array_append_new(a, isnan(t->x[i]) ? json_null() : json_real(t->x[i]));
        char *pj = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        sqlite3_stmt *q;
        double now = wall_now();
        if (!pj || sqlite3_prepare_v2(s->db, "INSERT INTO trial(number, state, params, started, heartbeat, pid, host, message) "
                                             "VALUES (?, 0, ?, ?, ?, ?, ?, '')", -1, &q, NULL) != SQLITE_OK) {
            st = db_fail(s, "cannot record a new trial");
        } else {
            sqlite3_bind_int(q, 1, next);
            sqlite3_bind_text(q, 2, pj, -1, SQLITE_TRANSIENT);
            sqlite3_bind_double(q, 3, now);
            sqlite3_bind_double(q, 4, now);
            sqlite3_bind_int(q, 5, (int)getpid());
            sqlite3_bind_text(q, 6, s->host, -1, SQLITE_STATIC);
            if (sqlite3_step(q) != SQLITE_DONE) st = db_fail(s, "cannot record a new trial");
            sqlite3_finalize(q);
        }
        free(pj);
        if (!st) {
            t->state = LF_TRIAL_RUNNING;
            t->value = NAN;
            t->last_step = -1;
            t->started = t->heartbeat = now;
            t->pid = (int)getpid();
            snprintf(t->host, sizeof t->host, "%s", s->host);
            *got = 1;
        }
    }
    lf_trials_free(hist, n);
    if (st) {
        rollback(s);
        return st;
    }
    return commit(s);
}

typedef struct {
    lf_study *s;
} rung_ctx;
static int get_rung(void *ctx, int rung, int self, double *vals, int cap) {
    lf_study *s = ((rung_ctx *)ctx)->s;
    sqlite3_stmt *q;
    int n = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM rung WHERE rung = ? AND number != ?", -1, &q, NULL) != SQLITE_OK) return 0;
    sqlite3_bind_int(q, 1, rung);
    sqlite3_bind_int(q, 2, self);
    while (n < cap && sqlite3_step(q) == SQLITE_ROW) vals[n++] = sqlite3_column_double(q, 0);
    sqlite3_finalize(q);
    return n;
}
static int n_rungs(void *ctx, int number) {
    lf_study *s = ((rung_ctx *)ctx)->s;
    sqlite3_stmt *q;
    int n = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM rung WHERE number = ?", -1, &q, NULL) != SQLITE_OK) return 0;
    sqlite3_bind_int(q, 1, number);
    if (sqlite3_step(q) == SQLITE_ROW) n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return n;
}
static lf_status set_rung(void *ctx, int number, int rung, double value) {
    lf_study *s = ((rung_ctx *)ctx)->s;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO rung(number, rung, value) VALUES (?, ?, ?)", -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, "cannot record a rung");
    sqlite3_bind_int(q, 1, number);
    sqlite3_bind_int(q, 2, rung);
    sqlite3_bind_double(q, 3, value);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? LF_OK : db_fail(s, "cannot record a rung");
}

lf_status lf_study_report(lf_study *s, lf_trial *t, int step, double value, int *prune) {
    *prune = 0;
    lf_status st = begin(s);
    if (st) return st;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO inter(number, step, value) VALUES (?, ?, ?)", -1, &q, NULL) != SQLITE_OK) {
        rollback(s);
        return db_fail(s, "cannot record a report");
    }
    sqlite3_bind_int(q, 1, t->number);
    sqlite3_bind_int(q, 2, step);
    if (isnan(value)) sqlite3_bind_null(q, 3);
    else sqlite3_bind_double(q, 3, value);
    if (sqlite3_step(q) != SQLITE_DONE) st = db_fail(s, "cannot record a report");
    sqlite3_finalize(q);
    if (!st && sqlite3_prepare_v2(s->db, "UPDATE trial SET last_step = ?, heartbeat = ? WHERE number = ?", -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int(q, 1, step);
        sqlite3_bind_double(q, 2, wall_now());
        sqlite3_bind_int(q, 3, t->number);
        if (sqlite3_step(q) != SQLITE_DONE) st = db_fail(s, "cannot record a report");
        sqlite3_finalize(q);
    }
    t->last_step = step;
    lf_trial *hist = NULL;
    int n = 0;
    if (!st && strcmp(s->opts.pruner, "none")) {
        st = load_trials(s, &hist, &n);
        const lf_trial *self = NULL;
        for (int i = 0; !st && i < n; i++)
            if (hist[i].number == t->number) self = &hist[i];
        if (!st && !self) {
            lf_set_error("%s: trial %d is not in the study", s->path, t->number);
            st = LF_ERR_NOTFOUND;
        }
        rung_ctx rc = {s};
        lf_rung_store rs = {&rc, get_rung, n_rungs, set_rung};
        if (!st) st = lf_tune_should_prune(&s->opts, hist, n, self, step, value, &rs, prune);
    }
    lf_trials_free(hist, n);
    if (st) {
        rollback(s);
        return st;
    }
    return commit(s);
}

lf_status lf_study_heartbeat(lf_study *s, const lf_trial *t) {
    lf_status st = begin(s);
    if (st) return st;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "UPDATE trial SET heartbeat = ? WHERE number = ?", -1, &q, NULL) != SQLITE_OK) {
        rollback(s);
        return db_fail(s, "cannot write a heartbeat");
    }
    sqlite3_bind_double(q, 1, wall_now());
    sqlite3_bind_int(q, 2, t->number);
    if (sqlite3_step(q) != SQLITE_DONE) st = db_fail(s, "cannot write a heartbeat");
    sqlite3_finalize(q);
    if (st) {
        rollback(s);
        return st;
    }
    return commit(s);
}

lf_status lf_study_set_run_dir(lf_study *s, const lf_trial *t, const char *run_dir) {
    lf_status st = begin(s);
    if (st) return st;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "UPDATE trial SET run_dir = ? WHERE number = ?", -1, &q, NULL) != SQLITE_OK) {
        rollback(s);
        return db_fail(s, "cannot record a run folder");
    }
    sqlite3_bind_text(q, 1, run_dir, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 2, t->number);
    if (sqlite3_step(q) != SQLITE_DONE) st = db_fail(s, "cannot record a run folder");
    sqlite3_finalize(q);
    if (st) {
        rollback(s);
        return st;
    }
    return commit(s);
}

lf_status lf_study_tell(lf_study *s, const lf_trial *t, lf_trial_state state, double value, const char *message) {
    lf_status st = begin(s);
    if (st) return st;
    sqlite3_stmt *q;
    /* only a RUNNING trial finishes: one a reaper already marked failed stays failed */
    if (sqlite3_prepare_v2(s->db, "UPDATE trial SET state = ?, value = ?, finished = ?, message = ? WHERE number = ? AND state = 0", -1, &q,
                           NULL) != SQLITE_OK) {
        rollback(s);
        return db_fail(s, "cannot record a result");
    }
    sqlite3_bind_int(q, 1, (int)state);
    if (isnan(value)) sqlite3_bind_null(q, 2);
    else sqlite3_bind_double(q, 2, value);
    sqlite3_bind_double(q, 3, wall_now());
    sqlite3_bind_text(q, 4, message ? message : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 5, t->number);
    if (sqlite3_step(q) != SQLITE_DONE) st = db_fail(s, "cannot record a result");
    sqlite3_finalize(q);
    if (st) {
        rollback(s);
        return st;
    }
    return commit(s);
}
