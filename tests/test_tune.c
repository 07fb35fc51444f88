/* lmforge tune: the search space (parsing, errors), the samplers (bounds, log scale, steps,
 * categories, conditions, determinism, TPE beating random over fixed seeds), the pruners against
 * hand-computed cases, and the SQLite study (two processes on one study, resume after kill -9). */
#include "lmforge/tune.h"
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *SPACE = "{\"lr\": {\"type\": \"float\", \"low\": 1e-4, \"high\": 1e-1, \"log\": true},"
                           " \"warmup_steps\": {\"type\": \"int\", \"low\": 0, \"high\": 100, \"step\": 10},"
                           " \"layers\": {\"type\": \"int\", \"low\": 1, \"high\": 64, \"log\": true},"
                           " \"dropout\": {\"type\": \"float\", \"low\": 0, \"high\": 0.5, \"step\": 0.05},"
                           " \"schedule\": {\"type\": \"categorical\", \"choices\": [\"cosine\", \"linear\", \"constant\"]},"
                           " \"min_lr\": {\"type\": \"float\", \"low\": 0, \"high\": 1, \"when\": {\"schedule\": [\"cosine\", \"linear\"]}}}";

static void test_space_errors(void) {
    static const struct {
        const char *json, *expect;
    } bad[] = {
        {"[]", "non-empty JSON object"},
        {"{\"a\": {\"type\": \"float\", \"low\": 2, \"high\": 1}}", "\"low\" <= \"high\""},
        {"{\"a\": {\"type\": \"float\", \"low\": 0, \"high\": 1, \"log\": true}}", "log-scaled"},
        {"{\"a\": {\"type\": \"int\", \"low\": 0, \"high\": 10, \"step\": 3}}", "not a multiple"},
        {"{\"a\": {\"type\": \"int\", \"low\": 0.5, \"high\": 10}}", "must be integers"},
        {"{\"a\": {\"type\": \"real\", \"low\": 0, \"high\": 1}}", "needs \"type\""},
        {"{\"a\": {\"type\": \"categorical\", \"choices\": []}}", "non-empty array"},
        {"{\"a\": {\"type\": \"float\", \"low\": 0, \"high\": 1, \"hgih\": 2}}", "unknown member 'hgih'"},
        {"{\"a\": {\"type\": \"float\", \"low\": 0, \"high\": 1, \"when\": {\"b\": 1}}}", "not an earlier parameter"},
        {"{\"a\": {\"type\": \"float\", \"low\": 0, \"high\": 1", "line 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lf_space *s = NULL;
        lf_status st = lf_space_parse(&s, bad[i].json, "space.json");
        CHECK(st != LF_OK && !s, "bad space %zu accepted", i);
        CHECK(strstr(lf_last_error(), "space.json") && strstr(lf_last_error(), bad[i].expect), "bad space %zu: message '%s' lacks '%s'", i,
              lf_last_error(), bad[i].expect);
    }
}

/* every value legal; log-uniform in log space; conditions honoured */
static void check_point(const lf_space *s, const double *x, const char *what) {
    const lf_hparam *lr = lf_space_param(s, 0);
    CHECK(x[0] >= lr->low && x[0] <= lr->high, "%s: lr %g outside [%g, %g]", what, x[0], lr->low, lr->high);
    CHECK(x[1] >= 0 && x[1] <= 100 && fmod(x[1], 10) == 0, "%s: warmup_steps %g not a multiple of 10 in [0, 100]", what, x[1]);
    CHECK(x[2] >= 1 && x[2] <= 64 && x[2] == floor(x[2]), "%s: layers %g not an integer in [1, 64]", what, x[2]);
    double k = x[3] / 0.05;
    CHECK(x[3] >= 0 && x[3] <= 0.5 && fabs(k - round(k)) < 1e-9, "%s: dropout %g not on the 0.05 grid", what, x[3]);
    CHECK(x[4] == 0 || x[4] == 1 || x[4] == 2, "%s: schedule index %g", what, x[4]);
    if (x[4] == 2) CHECK(isnan(x[5]), "%s: min_lr %g set while schedule is constant", what, x[5]);
    else CHECK(x[5] >= 0 && x[5] <= 1, "%s: min_lr %g with schedule %g", what, x[5], x[4]);
}

static lf_trial *fake_history(const lf_space *s, lf_tune_opts *o, int n, double (*f)(const double *)) {
    lf_trial *h = calloc((size_t)n, sizeof *h);
    for (int i = 0; i < n; i++) {
        h[i].number = i;
        lf_tune_sample(s, o, h, i, i, h[i].x, NULL);
        h[i].state = LF_TRIAL_COMPLETE;
        h[i].value = f(h[i].x);
        h[i].last_step = -1;
    }
    return h;
}
static double obj_space(const double *x) { return fabs(log10(x[0]) + 2.5) + fabs(x[3] - 0.2) + (x[4] == 1 ? 0 : 0.5); }

static void test_sampling(void) {
    lf_space *s;
    CHECK(lf_space_parse(&s, SPACE, "space") == LF_OK, "space: %s", lf_last_error());
    if (!s) return;
    const char *samplers[] = {"random", "tpe", "grid"};
    for (int m = 0; m < 3; m++) {
        for (int mv = 0; mv < 2; mv++) {
            lf_tune_opts o;
            lf_tune_opts_defaults(&o);
            strcpy(o.sampler, samplers[m]);
            o.multivariate = mv;
            o.seed = 5;
            int n = 80;
            lf_trial *h = fake_history(s, &o, n, obj_space); /* TPE's history is its own draws after the 10 startup ones */
            int below_1e3 = 0, cats[3] = {0};
            for (int i = 0; i < n; i++) {
                char what[64];
                snprintf(what, sizeof what, "%s%s trial %d", samplers[m], mv ? " multivariate" : "", i);
                check_point(s, h[i].x, what);
                below_1e3 += h[i].x[0] < 1e-3;
                cats[(int)h[i].x[4]]++;
            }
            if (m == 0 && !mv) { /* log-uniform on [1e-4, 1e-1]: a third of the draws below 1e-3 */
                CHECK(below_1e3 >= 15 && below_1e3 <= 40, "random: %d of %d log-uniform draws below 1e-3 (expected ~27)", below_1e3, n);
                CHECK(cats[0] > 10 && cats[1] > 10 && cats[2] > 10, "random: categories drawn %d/%d/%d", cats[0], cats[1], cats[2]);
            }
            if (m == 1) { /* TPE concentrates on the good category */
                int late1 = 0;
                for (int i = 40; i < n; i++) late1 += h[i].x[4] == 1;
                CHECK(late1 >= (mv ? 20 : 25), "tpe%s: 'linear' (the best category) drawn in %d of the last 40 trials", mv ? " mv" : "", late1);
            }
            /* determinism: the same seed and history give the same point; another seed another */
            double a[LF_TUNE_MAX_PARAMS], b[LF_TUNE_MAX_PARAMS], c[LF_TUNE_MAX_PARAMS];
            lf_tune_sample(s, &o, h, n, n, a, NULL);
            lf_tune_sample(s, &o, h, n, n, b, NULL);
            o.seed = 6;
            lf_tune_sample(s, &o, h, n, n, c, NULL);
            int same = 1, diff = 0;
            for (int i = 0; i < lf_space_size(s); i++) {
                same &= (isnan(a[i]) && isnan(b[i])) || a[i] == b[i];
                diff |= !((isnan(a[i]) && isnan(c[i])) || a[i] == c[i]);
            }
            CHECK(same, "%s: two draws with one seed differ", samplers[m]);
            if (m != 2) CHECK(diff, "%s: seeds 5 and 6 gave the same point", samplers[m]);
            free(h);
        }
    }
    /* grid: every point once, then exhausted */
    lf_space *g;
    CHECK(lf_space_parse(&g, "{\"a\": {\"type\": \"int\", \"low\": 1, \"high\": 3}, \"b\": {\"type\": \"categorical\", \"choices\": [true, false]},"
                             " \"c\": {\"type\": \"float\", \"low\": 0, \"high\": 1, \"grid\": 2}}", "grid") == LF_OK, "grid space: %s", lf_last_error());
    if (g) {
        lf_tune_opts o;
        lf_tune_opts_defaults(&o);
        strcpy(o.sampler, "grid");
        lf_trial h[13] = {0};
        int ex = 0, seen[3][2][2] = {{{0}}};
        for (int i = 0; i < 12; i++) {
            lf_tune_sample(g, &o, h, i, i, h[i].x, &ex);
            h[i].state = LF_TRIAL_COMPLETE;
            CHECK(!ex, "grid exhausted after %d of 12 points", i);
            seen[(int)h[i].x[0] - 1][(int)h[i].x[1]][(int)h[i].x[2]]++;
        }
        for (int i = 0; i < 12; i++) CHECK(seen[i / 4][(i / 2) % 2][i % 2] == 1, "grid point %d drawn %d times", i, seen[i / 4][(i / 2) % 2][i % 2]);
        lf_tune_sample(g, &o, h, 12, 12, h[12].x, &ex);
        CHECK(ex, "grid not exhausted after its 12 points");
        lf_space_free(g);
    }
    lf_space_free(s);
}

/* TPE against random on Branin and a shifted 2-D sphere: median best over 20 fixed seeds */
static double median(double *v, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
static void test_tpe_beats_random(void) {
    const char *fns[] = {"branin", "sphere"};
    for (int f = 0; f < 2; f++) {
        lf_space *s;
        char *sj = NULL;
        if (f == 0) lf_tune_objective_space("branin", &sj);
        else sj = strdup("{\"x\": {\"type\": \"float\", \"low\": -5, \"high\": 5}, \"y\": {\"type\": \"float\", \"low\": -5, \"high\": 5}}");
        lf_space_parse(&s, sj, fns[f]);
        free(sj);
        double best[2][20];
        int wins = 0;
        for (int sm = 0; sm < 2; sm++)
            for (int seed = 0; seed < 20; seed++) {
                lf_tune_opts o;
                lf_tune_opts_defaults(&o);
                strcpy(o.sampler, sm ? "tpe" : "random");
                o.seed = (uint64_t)seed + 100;
                int n = 50;
                lf_trial *h = calloc((size_t)n, sizeof *h);
                double b = INFINITY;
                for (int i = 0; i < n; i++) {
                    h[i].number = i;
                    lf_tune_sample(s, &o, h, i, i, h[i].x, NULL);
                    h[i].state = LF_TRIAL_COMPLETE;
                    if (f == 0) lf_tune_objective_eval("branin", h[i].x, o.seed, i, &h[i].value);
                    else h[i].value = (h[i].x[0] - 1.3) * (h[i].x[0] - 1.3) + (h[i].x[1] + 0.7) * (h[i].x[1] + 0.7);
                    if (h[i].value < b) b = h[i].value;
                }
                best[sm][seed] = b;
                free(h);
            }
        for (int seed = 0; seed < 20; seed++) wins += best[1][seed] < best[0][seed];
        double mr = median(best[0], 20), mt = median(best[1], 20);
        printf("%s, 50 trials, 20 seeds: median best random %.4f, tpe %.4f; tpe better on %d of 20 seeds\n", fns[f], mr, mt, wins);
        CHECK(mt < 0.6 * mr, "%s: TPE's median best %.4f is not under 0.6 x random's %.4f", fns[f], mt, mr);
        CHECK(wins >= 12, "%s: TPE beat random on only %d of 20 seeds", fns[f], wins);
        lf_space_free(s);
    }
}

/* ---- pruners against hand-computed cases */
typedef struct { /* per rung (8), up to 64 recorded values */
    int n[8];
    double v[8][64];
    int who[8][64];
} mem_rungs;
static int m_get(void *ctx, int rung, int self, double *vals, int cap) {
    mem_rungs *m = ctx;
    int k = 0;
    for (int i = 0; i < m->n[rung] && k < cap; i++)
        if (m->who[rung][i] != self) vals[k++] = m->v[rung][i];
    return k;
}
static int m_nr(void *ctx, int number) {
    mem_rungs *m = ctx;
    int c = 0;
    for (int r = 0; r < 8; r++)
        for (int i = 0; i < m->n[r]; i++) c += m->who[r][i] == number;
    return c;
}
static lf_status m_set(void *ctx, int number, int rung, double value) {
    mem_rungs *m = ctx;
    m->who[rung][m->n[rung]] = number;
    m->v[rung][m->n[rung]++] = value;
    return LF_OK;
}

static void test_pruners(void) {
    lf_tune_opts o;
    lf_tune_opts_defaults(&o);
    strcpy(o.pruner, "median");
    /* five completed trials reported 1..5 at step 10 (and 9..5 at step 20) */
    lf_trial h[7] = {0};
    int steps[2] = {10, 20};
    double vals[5][2] = {{1, 9}, {2, 8}, {3, 7}, {4, 6}, {5, 5}};
    for (int i = 0; i < 5; i++) {
        h[i].number = i;
        h[i].state = LF_TRIAL_COMPLETE;
        h[i].n_inter = 2;
        h[i].inter_step = steps;
        h[i].inter_value = vals[i];
    }
    int self_steps[2] = {5, 10};
    double self_vals[2] = {2.0, 3.5};
    lf_trial self = {.number = 5, .state = LF_TRIAL_RUNNING, .n_inter = 1, .inter_step = self_steps + 1, .inter_value = self_vals + 1};
    int p;
    lf_tune_should_prune(&o, h, 5, &self, 10, 3.5, NULL, &p);
    CHECK(p == 1, "median: 3.5 at step 10 against a median of 3 not pruned");
    self_vals[1] = 2.5;
    lf_tune_should_prune(&o, h, 5, &self, 10, 2.5, NULL, &p);
    CHECK(p == 0, "median: 2.5 at step 10 against a median of 3 pruned");
    self_vals[1] = 3.5;
    self.n_inter = 2; /* an earlier report of 2.0 at step 5 is this trial's best so far: kept */
    self.inter_step = self_steps;
    self.inter_value = self_vals;
    lf_tune_should_prune(&o, h, 5, &self, 10, 3.5, NULL, &p);
    CHECK(p == 0, "median: best-so-far 2.0 against a median of 3 pruned");
    self.n_inter = 1;
    self.inter_step = self_steps + 1;
    self.inter_value = self_vals + 1;
    self.n_inter = 0; /* no earlier report */
    lf_tune_should_prune(&o, h, 5, &self, 20, 7.5, NULL, &p);
    CHECK(p == 1, "median: 7.5 at step 20 against a median of 7 not pruned");
    self.n_inter = 1;
    lf_tune_should_prune(&o, h, 5, &self, 20, 7.5, NULL, &p);
    CHECK(p == 0, "median: best-so-far 3.5 (step 10) against a median of 7 at step 20 pruned");
    o.warmup_steps = 15;
    lf_tune_should_prune(&o, h, 5, &self, 10, 3.5, NULL, &p);
    CHECK(p == 0, "median: pruned inside the warm-up (step 10 < 15)");
    o.warmup_steps = 0;
    lf_tune_should_prune(&o, h, 4, &self, 10, 3.5, NULL, &p);
    CHECK(p == 0, "median: pruned with 4 completed trials (startup 5)");
    o.maximize = 1; /* maximising: 2.5 against a median of 3 is worse */
    lf_tune_should_prune(&o, h, 5, &self, 10, 3.5, NULL, &p);
    CHECK(p == 0, "median (max): 3.5 against 3 pruned");
    self_vals[1] = 2.5;
    lf_tune_should_prune(&o, h, 5, &self, 10, 2.5, NULL, &p);
    CHECK(p == 1, "median (max): 2.5 against 3 not pruned");

    /* ASHA, reduction factor 4, min_resource 1: rungs at steps 1, 4, 16 */
    lf_tune_opts_defaults(&o);
    strcpy(o.pruner, "asha");
    mem_rungs m = {0};
    lf_rung_store rs = {&m, m_get, m_nr, m_set};
    lf_trial t = {.number = 0};
    lf_tune_should_prune(&o, h, 0, &t, 1, 5.0, &rs, &p); /* alone at rung 0: promoted */
    CHECK(p == 0 && m.n[0] == 1, "asha: a first trial pruned (p %d, rung 0 holds %d)", p, m.n[0]);
    for (int i = 1; i <= 6; i++) m_set(&m, 100 + i, 0, i); /* rung 0 now {5, 1..6} */
    t.number = 7;
    lf_tune_should_prune(&o, h, 7, &t, 1, 2.5, &rs, &p); /* 8 values, keep the top 8/4 = 2: {1, 2} */
    CHECK(p == 1, "asha: 2.5 is third of 8 at rung 0 and not pruned");
    t.number = 8;
    lf_tune_should_prune(&o, h, 8, &t, 1, 1.5, &rs, &p); /* 9 values {1, 1.5, 2, ...}: top 2 keeps 1.5 */
    CHECK(p == 0, "asha: 1.5 is second of 9 at rung 0 and pruned");
    lf_tune_should_prune(&o, h, 8, &t, 3, 1.4, &rs, &p); /* step 3 < 4: no new rung, no decision */
    CHECK(p == 0 && m_nr(&m, 8) == 1, "asha: a decision between rungs (rungs passed %d)", m_nr(&m, 8));
    lf_tune_should_prune(&o, h, 8, &t, 4, 1.4, &rs, &p); /* rung 1 alone: promoted */
    CHECK(p == 0 && m_nr(&m, 8) == 2, "asha: rung 1 (rungs passed %d, pruned %d)", m_nr(&m, 8), p);
}

/* ---- the study: concurrency and resume */
static void worker(const char *dir, int n_trials, int id) {
    lf_study *st;
    if (lf_study_open(&st, dir, NULL, NULL, NULL)) {
        fprintf(stderr, "worker %d: %s\n", id, lf_last_error());
        _exit(3);
    }
    for (;;) {
        lf_trial t;
        int got;
        if (lf_study_ask(st, n_trials, &t, &got)) {
            fprintf(stderr, "worker %d: %s\n", id, lf_last_error());
            _exit(4);
        }
        if (!got) break;
        double v;
        lf_tune_objective_eval("branin", t.x, 0, t.number, &v);
        usleep(2000); /* a trial takes some time, so the two workers interleave */
        int p;
        if (lf_study_report(st, &t, 1, v, &p) || lf_study_tell(st, &t, LF_TRIAL_COMPLETE, v, NULL)) {
            fprintf(stderr, "worker %d: %s\n", id, lf_last_error());
            _exit(5);
        }
    }
    lf_study_free(st);
    _exit(0);
}

static void test_study(const char *tmp) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/study", tmp);
    char *sj;
    lf_tune_objective_space("branin", &sj);
    lf_tune_opts o;
    lf_tune_opts_defaults(&o);
    strcpy(o.pruner, "median");
    lf_study *st;
    CHECK(lf_study_open(&st, dir, sj, &o, "") == LF_OK, "create study: %s", lf_last_error());
    lf_study_free(st);
    /* reopening with another space or options is refused */
    lf_tune_opts o2 = o;
    strcpy(o2.sampler, "random");
    CHECK(lf_study_open(&st, dir, sj, &o2, "") != LF_OK && strstr(lf_last_error(), "other options"), "other options accepted: %s", lf_last_error());
    CHECK(lf_study_open(&st, dir, "{\"x\": {\"type\": \"float\", \"low\": 0, \"high\": 1}}", &o, "") != LF_OK &&
              strstr(lf_last_error(), "another search space"), "another space accepted: %s", lf_last_error());
    /* two processes, 60 trials */
    pid_t a = fork();
    if (a == 0) worker(dir, 60, 1);
    pid_t b = fork();
    if (b == 0) worker(dir, 60, 2);
    int sa, sb;
    waitpid(a, &sa, 0);
    waitpid(b, &sb, 0);
    CHECK(WIFEXITED(sa) && WEXITSTATUS(sa) == 0 && WIFEXITED(sb) && WEXITSTATUS(sb) == 0, "workers exited %d and %d", sa, sb);
    CHECK(lf_study_open(&st, dir, NULL, NULL, NULL) == LF_OK, "reopen: %s", lf_last_error());
    lf_trial *t = NULL;
    int n = 0;
    if (st) lf_study_trials(st, &t, &n);
    int complete = 0, numbers_ok = 1, by_a = 0, by_b = 0;
    for (int i = 0; i < n; i++) {
        complete += t[i].state == LF_TRIAL_COMPLETE;
        numbers_ok &= t[i].number == i;
        by_a += t[i].pid == a;
        by_b += t[i].pid == b;
        CHECK(t[i].n_inter == 1 && t[i].inter_value[0] == t[i].value, "trial %d: intermediate value not stored", i);
    }
    printf("two workers: %d trials (%d complete), %d by one worker, %d by the other\n", n, complete, by_a, by_b);
    CHECK(n == 60 && complete == 60 && numbers_ok, "two workers: %d trials, %d complete, numbers 0..n-1 %s", n, complete, numbers_ok ? "yes" : "no");
    CHECK(by_a > 0 && by_b > 0, "one worker did everything (%d / %d)", by_a, by_b);
    lf_trials_free(t, n);
    lf_study_free(st);

    /* resume after kill -9: a worker claims a trial and dies */
    pid_t c = fork();
    if (c == 0) {
        lf_study *s2;
        lf_trial tr;
        int got;
        if (lf_study_open(&s2, dir, NULL, NULL, NULL) || lf_study_ask(s2, 100, &tr, &got) || !got) _exit(3);
        raise(SIGKILL);
    }
    int sc;
    waitpid(c, &sc, 0);
    CHECK(WIFSIGNALED(sc) && WTERMSIG(sc) == SIGKILL, "the dying worker ended with status %d", sc);
    CHECK(lf_study_open(&st, dir, NULL, NULL, NULL) == LF_OK, "reopen after kill: %s", lf_last_error());
    if (st) {
        lf_study_trials(st, &t, &n);
        CHECK(n == 61 && t[60].state == LF_TRIAL_RUNNING && t[60].pid == c, "the killed worker's trial: %d trials, last state %d", n, n ? (int)t[n - 1].state : -1);
        lf_trials_free(t, n);
        int marked = 0;
        lf_study_reap(st, 600, &marked);
        CHECK(marked == 1, "reap marked %d trials (expected 1)", marked);
        lf_study_trials(st, &t, &n);
        CHECK(n == 61 && t[60].state == LF_TRIAL_FAILED && strstr(t[60].message, "is gone"), "after reap: state %d, message '%s'",
              n == 61 ? (int)t[60].state : -1, n == 61 ? t[60].message : "");
        lf_trials_free(t, n);
        /* a failed trial does not count: with 61 wanted, one more is sampled, as number 61 */
        lf_trial tr;
        int got;
        CHECK(lf_study_ask(st, 61, &tr, &got) == LF_OK && got && tr.number == 61, "re-sampled trial: got %d, number %d", got, tr.number);
        CHECK(lf_study_tell(st, &tr, LF_TRIAL_COMPLETE, 1.0, NULL) == LF_OK, "tell: %s", lf_last_error());
        CHECK(lf_study_ask(st, 61, &tr, &got) == LF_OK && !got, "a 62nd trial handed out for 61 wanted");
        lf_study_free(st);
    }
    /* not a study */
    char p[700];
    snprintf(p, sizeof p, "%s/bad", tmp);
    lf_mkdirs(p);
    snprintf(p, sizeof p, "%s/bad/study.db", tmp);
    lf_write_file_atomic(p, "hello, not sqlite at all, padded to be longer than a header......................................"
                            "........................................................................", 170);
    snprintf(p, sizeof p, "%s/bad", tmp);
    CHECK(lf_study_open(&st, p, sj, &o, "") != LF_OK && strstr(lf_last_error(), "study.db"), "a non-SQLite study.db opened: %s", lf_last_error());
    free(sj);
}

static void test_importance(void) {
    /* y depends on a only: a's share near 1 */
    lf_space *s;
    lf_space_parse(&s, "{\"a\": {\"type\": \"float\", \"low\": 0, \"high\": 1}, \"b\": {\"type\": \"float\", \"low\": 0, \"high\": 1}}", "imp");
    lf_trial t[100] = {0};
    for (int i = 0; i < 100; i++) {
        t[i].state = LF_TRIAL_COMPLETE;
        t[i].x[0] = lf_u01(lf_hash64(1, 1, (uint64_t)i));
        t[i].x[1] = lf_u01(lf_hash64(1, 2, (uint64_t)i));
        t[i].value = t[i].x[0] * t[i].x[0];
    }
    double imp[2];
    lf_tune_importance(s, t, 100, 0, imp);
    printf("importance, y = a^2: a %.3f, b %.3f\n", imp[0], imp[1]);
    CHECK(imp[0] > 0.85 && imp[1] < 0.15 && fabs(imp[0] + imp[1] - 1) < 1e-9, "importance a %.3f b %.3f", imp[0], imp[1]);
    lf_space_free(s);
}

int main(int argc, char **argv) {
    char tmp[] = "/tmp/lf_tune_XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    test_space_errors();
    test_sampling();
    test_tpe_beats_random();
    test_pruners();
    test_importance();
    test_study(tmp);
    lf_rm_rf(tmp);
    return tu_finish("test_tune");
}
