/* The run report: one self-contained HTML page (inline CSS and SVG; no script, no network) from a
 * 'lmforge run' folder. It reads what the stages left: OUT/.stages/NAME.json (kind, settings,
 * output, seconds), training stages' metrics.jsonl, and eval stages' eval.json (perplexity from
 * eval --json, accuracy / macro-F1 / confusion from eval --task classify --json). The charts are
 * drawn here as SVG, and only those whose data the run has. */
#include "lmforge/ckpt.h"
#include "lmforge/report.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- a growing string */
typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = b->cap ? b->cap * 2 : 1 << 16;
        while (nc < b->n + (size_t)k + 1) nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) return; /* out of memory: the text is cut, the caller checks b->s */
        b->s = ns;
        b->cap = nc;
    }
}

static void sb_esc(sbuf *b, const char *t) {
    for (; t && *t; t++) {
        if (*t == '<') sb_printf(b, "&lt;");
        else if (*t == '>') sb_printf(b, "&gt;");
        else if (*t == '&') sb_printf(b, "&amp;");
        else if (*t == '"') sb_printf(b, "&quot;");
        else sb_printf(b, "%c", *t);
    }
}

/* ---- what the run left */
typedef struct {
    double *x, *y;
    int n, cap;
} series;

static void series_add(series *s, double x, double y) {
    if (!isfinite(x) || !isfinite(y)) return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->x = realloc(s->x, sizeof *s->x * (size_t)s->cap);
        s->y = realloc(s->y, sizeof *s->y * (size_t)s->cap);
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
}

typedef struct {
    json_t *rec;
    const char *name, *kind;
    series loss, val_loss, val_acc;
    double params;
} stage_info;

typedef struct {
    char label[300];
    char made_by[128];
    char path[1300];
    double params, size, ppl, acc, f1, tok_s, train_s, sparsity;
    double acc_lo, acc_hi, f1_lo, f1_hi;
    json_t *classify; /* the classify eval's JSON (borrowed) */
} model_row;

static int cmp_rec(const void *a, const void *b) {
    const stage_info *x = a, *y = b;
    return (int)(json_integer_value(json_object_get(x->rec, "index")) - json_integer_value(json_object_get(y->rec, "index")));
}

static void read_metrics(stage_info *si, const char *run_dir) {
    char p[1400];
    snprintf(p, sizeof p, "%s/metrics.jsonl", run_dir);
    FILE *f = fopen(p, "r");
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        const char *ev = json_string_value(json_object_get(j, "event"));
        double step = json_number_value(json_object_get(j, "step"));
        if (ev && !strcmp(ev, "train")) series_add(&si->loss, step, json_number_value(json_object_get(j, "loss")));
        else if (ev && !strcmp(ev, "eval")) {
            json_t *vl = json_object_get(j, "val_loss"), *va = json_object_get(j, "val_accuracy");
            if (json_is_number(vl)) series_add(&si->val_loss, step, json_number_value(vl));
            if (json_is_number(va)) series_add(&si->val_acc, step, json_number_value(va));
        } else if (ev && !strcmp(ev, "start") && json_is_number(json_object_get(j, "params")))
            si->params = json_number_value(json_object_get(j, "params"));
        json_decref(j);
    }
    free(line);
    fclose(f);
}

/* "${NAME}/x" resolved with the record's dep_outputs; *first: the first NAME */
static void resolve(json_t *rec, const char *s, char *out, size_t cap, char *first, size_t fcap) {
    json_t *outs = json_object_get(rec, "dep_outputs");
    size_t n = 0;
    if (first && fcap) first[0] = 0;
    while (*s && n + 1 < cap) {
        const char *e;
        if (s[0] == '$' && s[1] == '{' && (e = strchr(s, '}'))) {
            char name[128];
            size_t l = (size_t)(e - s - 2) < sizeof name - 1 ? (size_t)(e - s - 2) : sizeof name - 1;
            memcpy(name, s + 2, l);
            name[l] = 0;
            if (first && !first[0]) snprintf(first, fcap, "%s", name);
            const char *o = json_string_value(json_object_get(outs, name));
            n += (size_t)snprintf(out + n, cap - n, "%s", o ? o : name);
            if (n >= cap) n = cap - 1;
            s = e + 1;
        } else out[n++] = *s++;
    }
    out[n] = 0;
}

/* display form: "${pretrain}/best" -> "pretrain/best" */
static void label_of(const char *s, char *out, size_t cap) {
    size_t n = 0;
    for (; *s && n + 1 < cap; s++)
        if (!(*s == '$' || *s == '{' || *s == '}')) out[n++] = *s;
    out[n] = 0;
}

static double file_size(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode) ? (double)sb.st_size : 0;
}

/* a model's bytes on disk and parameters: a file as it is, a folder by its weights' files */
static void model_size(const char *path, double *size, double *params) {
    struct stat sb;
    if (stat(path, &sb)) return;
    if (S_ISREG(sb.st_mode)) {
        *size += (double)sb.st_size;
        return;
    }
    static const char *const files[] = {"model.safetensors", "adapter_model.safetensors"};
    for (int i = 0; i < 2; i++) {
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", path, files[i]);
        double sz = file_size(p);
        if (!sz) continue;
        *size += sz;
        lf_st *st;
        if (lf_st_open(&st, p) == LF_OK) {
            double np = 0;
            for (int t = 0; t < lf_st_count(st); t++) np += (double)lf_st_numel(st, t);
            lf_st_close(st);
            if (!*params || i == 0) *params = np + (i ? *params : 0);
        }
    }
}

static model_row *find_row(model_row **rows, int *n, const char *label) {
    for (int i = 0; i < *n; i++)
        if (!strcmp((*rows)[i].label, label)) return &(*rows)[i];
    *rows = realloc(*rows, sizeof **rows * (size_t)(*n + 1));
    model_row *r = &(*rows)[(*n)++];
    memset(r, 0, sizeof *r);
    snprintf(r->label, sizeof r->label, "%s", label);
    r->params = r->size = r->ppl = r->acc = r->f1 = r->tok_s = r->train_s = r->sparsity = NAN;
    r->acc_lo = r->acc_hi = r->f1_lo = r->f1_hi = NAN;
    return r;
}

/* ---- SVG charts */
static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
#define NPAL 10

static double nice_step(double range, int target) {
    double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

typedef struct {
    double x0, x1, y0, y1;
    int logx;
    double L, R, T, B; /* plot area in pixels */
} frame;

static double fx(const frame *f, double x) {
    double a = f->logx ? log10(x) : x, lo = f->logx ? log10(f->x0) : f->x0, hi = f->logx ? log10(f->x1) : f->x1;
    return f->L + (a - lo) / (hi - lo) * (f->R - f->L);
}
static double fy(const frame *f, double y) { return f->B - (y - f->y0) / (f->y1 - f->y0) * (f->B - f->T); }

static void fmt_num(char *b, size_t n, double v) {
    double a = fabs(v);
    if (a >= 1e9) snprintf(b, n, "%.3gG", v / 1e9);
    else if (a >= 1e6) snprintf(b, n, "%.3gM", v / 1e6);
    else if (a >= 1e4) snprintf(b, n, "%.3gk", v / 1e3);
    else snprintf(b, n, "%.4g", v);
}

/* axes, ticks and labels; the frame's ranges padded to whole steps */
static void axes(sbuf *b, frame *f, const char *xlabel, const char *ylabel, int W, int H) {
    if (!(f->x1 > f->x0)) f->x1 = f->x0 + 1;
    if (!(f->y1 > f->y0)) {
        f->y0 -= 0.5;
        f->y1 += 0.5;
    }
    f->L = 64;
    f->R = W - 16;
    f->T = 16;
    f->B = H - 44;
    double ys = nice_step(f->y1 - f->y0, 5);
    f->y0 = floor(f->y0 / ys) * ys;
    f->y1 = ceil(f->y1 / ys) * ys;
    sb_printf(b, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#fff\" stroke=\"#999\"/>\n", f->L, f->T,
              f->R - f->L, f->B - f->T);
    char t[32];
    for (double y = f->y0; y <= f->y1 + ys * 1e-6; y += ys) {
        fmt_num(t, sizeof t, fabs(y) < ys * 1e-6 ? 0 : y);
        sb_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", f->L, f->R, fy(f, y), fy(f, y));
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" class=\"tick\">%s</text>\n", f->L - 4, fy(f, y) + 4, t);
    }
    if (f->logx) {
        for (double x = pow(10, floor(log10(f->x0))); x <= f->x1 * 1.0001; x *= 10) {
            if (x < f->x0 * 0.9999) continue;
            fmt_num(t, sizeof t, x);
            sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"tick\">%s</text>\n", fx(f, x), f->B + 16, t);
        }
    } else {
        double xs = nice_step(f->x1 - f->x0, 6);
        for (double x = ceil(f->x0 / xs) * xs; x <= f->x1 + xs * 1e-6; x += xs) {
            fmt_num(t, sizeof t, fabs(x) < xs * 1e-6 ? 0 : x);
            sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"tick\">%s</text>\n", fx(f, x), f->B + 16, t);
        }
    }
    sb_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" class=\"axis\">", (f->L + f->R) / 2, H - 8);
    sb_esc(b, xlabel);
    sb_printf(b, "</text><text transform=\"translate(14,%.1f) rotate(-90)\" text-anchor=\"middle\" class=\"axis\">", (f->T + f->B) / 2);
    sb_esc(b, ylabel);
    sb_printf(b, "</text>\n");
}

static void legend(sbuf *b, const frame *f, const char *const *names, int n) {
    for (int i = 0; i < n; i++) {
        double y = f->T + 14 + 16 * i;
        sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"4\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\" class=\"legend\">",
                  f->R - 150, y - 4, palette[i % NPAL], f->R - 134, y);
        sb_esc(b, names[i]);
        sb_printf(b, "</text>\n");
    }
}

static void chart_open(sbuf *b, const char *id, const char *title, int W, int H) {
    sb_printf(b, "<figure id=\"%s\"><figcaption>", id);
    sb_esc(b, title);
    sb_printf(b, "</figcaption>\n<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
              W, H, W, H);
}
static void chart_close(sbuf *b) { sb_printf(b, "</svg></figure>\n"); }

/* one line per series (series with fewer than 2 points are points) */
static int line_chart(sbuf *b, const char *id, const char *title, const char *xl, const char *yl, series *const *s,
                      const char *const *names, int n) {
    frame f = {INFINITY, -INFINITY, INFINITY, -INFINITY, 0, 0, 0, 0, 0};
    int any = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < s[i]->n; k++) {
            f.x0 = fmin(f.x0, s[i]->x[k]);
            f.x1 = fmax(f.x1, s[i]->x[k]);
            f.y0 = fmin(f.y0, s[i]->y[k]);
            f.y1 = fmax(f.y1, s[i]->y[k]);
            any = 1;
        }
    if (!any) return 0;
    const int W = 640, H = 300;
    chart_open(b, id, title, W, H);
    axes(b, &f, xl, yl, W, H);
    for (int i = 0; i < n; i++) {
        const char *c = palette[i % NPAL];
        sb_printf(b, "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", c);
        for (int k = 0; k < s[i]->n; k++) sb_printf(b, "%.1f,%.1f ", fx(&f, s[i]->x[k]), fy(&f, s[i]->y[k]));
        sb_printf(b, "\"/>\n");
        for (int k = 0; s[i]->n < 12 && k < s[i]->n; k++)
            sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", fx(&f, s[i]->x[k]), fy(&f, s[i]->y[k]), c);
    }
    legend(b, &f, names, n);
    chart_close(b);
    return 1;
}

/* labelled points (x, y) */
static int scatter(sbuf *b, const char *id, const char *title, const char *xl, const char *yl, const double *x, const double *y,
                   const char *const *labels, int n, int logx) {
    frame f = {INFINITY, -INFINITY, INFINITY, -INFINITY, logx, 0, 0, 0, 0};
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]) || (logx && x[i] <= 0)) continue;
        f.x0 = fmin(f.x0, x[i]);
        f.x1 = fmax(f.x1, x[i]);
        f.y0 = fmin(f.y0, y[i]);
        f.y1 = fmax(f.y1, y[i]);
        m++;
    }
    if (m < 2) return 0;
    if (logx) {
        f.x0 /= 1.5;
        f.x1 *= 1.5;
    } else {
        double pad = (f.x1 - f.x0) * 0.08 + 1e-9;
        f.x0 -= pad;
        f.x1 += pad;
    }
    const int W = 640, H = 300;
    chart_open(b, id, title, W, H);
    axes(b, &f, xl, yl, W, H);
    /* labels placed greedily: the first of a few offsets (above, below, further out) whose box
     * (about 6.5 px a character, 12 px high) clears the labels already placed, so that models at
     * nearly the same point (a model and its q8_0 copy) stay readable */
    double *box = malloc(sizeof(double) * 4 * (size_t)n); // (n,4) x0 y0 x1 y1
    int nbox = 0;
    for (int i = 0, c = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]) || (logx && x[i] <= 0)) continue;
        double px = fx(&f, x[i]), py = fy(&f, y[i]), lw = 6.5 * (double)strlen(labels[i]), ly = py - 6;
        int left = px + 7 + lw > W - 4; /* near the right edge: the label goes left of its point */
        double bx = left ? px - 7 - lw : px + 7;
        static const double dy[] = {-6, 16, -20, 30, -34, 44, -48, 58};
        for (int k = 0; box && k < (int)(sizeof dy / sizeof dy[0]); k++) {
            int clear = 1;
            for (int j = 0; j < nbox && clear; j++)
                clear = bx + lw < box[4 * j] || bx > box[4 * j + 2] || py + dy[k] < box[4 * j + 1] ||
                        py + dy[k] - 12 > box[4 * j + 3];
            if (clear) {
                ly = py + dy[k];
                break;
            }
        }
        if (box) {
            box[4 * nbox] = bx, box[4 * nbox + 1] = ly - 12, box[4 * nbox + 2] = bx + lw, box[4 * nbox + 3] = ly;
            nbox++;
        }
        sb_printf(b, "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\"%s class=\"legend\">",
                  px, py, palette[c % NPAL], left ? px - 7 : px + 7, ly, left ? " text-anchor=\"end\"" : "");
        sb_esc(b, labels[i]);
        sb_printf(b, "</text>\n");
        c++;
    }
    free(box);
    chart_close(b);
    return 1;
}

/* accuracy and macro-F1 side by side per model (bars from 0 to 1, 95 % intervals as whiskers) */
static int bars(sbuf *b, const model_row *rows, int n) {
    int m = 0;
    for (int i = 0; i < n; i++) m += isfinite(rows[i].acc);
    if (!m) return 0;
    const int W = 640, row = 34, H = 40 + row * m, L = 200, R = W - 20;
    chart_open(b, "chart-accuracy", "accuracy and macro-F1 per model (lines: 95 % bootstrap intervals)", W, H);
    for (int t = 0; t <= 10; t += 2) {
        double x = L + (R - L) * t / 10.0;
        sb_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"10\" y2=\"%d\" stroke=\"#eee\"/><text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" class=\"tick\">%.1f</text>\n",
                  x, x, H - 24, x, H - 10, t / 10.0);
    }
    for (int i = 0, k = 0; i < n; i++) {
        if (!isfinite(rows[i].acc)) continue;
        double y = 12 + row * k++;
        sb_printf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" class=\"legend\">", L - 6, y + 16);
        sb_esc(b, rows[i].label);
        sb_printf(b, "</text>\n");
        const double v[2] = {rows[i].acc, rows[i].f1}, lo[2] = {rows[i].acc_lo, rows[i].f1_lo}, hi[2] = {rows[i].acc_hi, rows[i].f1_hi};
        for (int j = 0; j < 2; j++) {
            if (!isfinite(v[j])) continue;
            double yy = y + 2 + j * 13;
            sb_printf(b, "<rect class=\"bar\" x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"11\" fill=\"%s\"/>", L, yy, (R - L) * v[j],
                      palette[j]);
            if (isfinite(lo[j]) && isfinite(hi[j]))
                sb_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>", L + (R - L) * lo[j], L + (R - L) * hi[j],
                          yy + 5.5, yy + 5.5);
            sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">%.3f</text>\n", L + (R - L) * v[j] + 4, yy + 9, v[j]);
        }
    }
    sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"8\" fill=\"%s\"/><text x=\"%d\" y=\"%d\" class=\"legend\">accuracy</text>"
                 "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"8\" fill=\"%s\"/><text x=\"%d\" y=\"%d\" class=\"legend\">macro-F1</text>\n",
              8, H - 18, palette[0], 22, H - 10, 90, H - 18, palette[1], 104, H - 10);
    chart_close(b);
    return 1;
}

/* rows: true label, columns: predicted; cell shade by the row's share */
static int confusion(sbuf *b, const char *id, const char *title, json_t *cls) {
    json_t *cm = json_object_get(cls, "confusion"), *labels = json_object_get(cls, "labels");
    size_t K = json_array_size(cm);
    if (!K || K > 40 || json_array_size(labels) != K) return 0;
    const int cell = K > 12 ? 18 : 40, L = 130, T = 110, W = L + cell * (int)K + 20, H = T + cell * (int)K + 20;
    chart_open(b, id, title, W, H);
    for (size_t i = 0; i < K; i++) {
        json_t *row = json_array_get(cm, i);
        double tot = 0;
        for (size_t j = 0; j < K; j++) tot += json_number_value(json_array_get(row, j));
        sb_printf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" class=\"tick\">", L - 4, T + cell * (i + 0.65));
        sb_esc(b, json_string_value(json_array_get(labels, i)));
        sb_printf(b, "</text>\n");
        for (size_t j = 0; j < K; j++) {
            double c = json_number_value(json_array_get(row, j)), s = tot > 0 ? c / tot : 0;
            int g = (int)(255 - 200 * s);
            sb_printf(b, "<rect class=\"cell\" x=\"%zu\" y=\"%zu\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,255)\" stroke=\"#fff\"/>",
                      (size_t)L + (size_t)cell * j, (size_t)T + (size_t)cell * i, cell, cell, g, g);
            if (cell >= 30)
                sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"tick\"%s>%.0f</text>", L + cell * (j + 0.5),
                          T + cell * (i + 0.6), s > 0.6 ? " style=\"fill:#fff\"" : "", c);
        }
        sb_printf(b, "\n");
    }
    /* the predicted labels along the top */
    for (size_t j = 0; j < K; j++) {
        sb_printf(b, "<text transform=\"translate(%.1f,%d) rotate(-60)\" class=\"tick\">", L + cell * (j + 0.6), T - 4);
        sb_esc(b, json_string_value(json_array_get(labels, j)));
        sb_printf(b, "</text>\n");
    }
    sb_printf(b, "<text x=\"4\" y=\"%d\" class=\"axis\">true \xe2\x86\x93 / predicted \xe2\x86\x92</text>\n", T - 10);
    chart_close(b);
    return 1;
}

static void cell_num(sbuf *b, double v, const char *fmt) {
    if (!isfinite(v)) {
        sb_printf(b, "<td>\xe2\x80\x93</td>");
        return;
    }
    sb_printf(b, "<td>");
    sb_printf(b, fmt, v);
    sb_printf(b, "</td>");
}

/* a study (tune stage): one validation curve per trial and a table of the trials' values */
static int study_section(sbuf *b, const char *name, const char *dir) {
    char p[1500];
    snprintf(p, sizeof p, "%s/space.json", dir);
    json_t *space = json_load_file(p, 0, NULL);
    snprintf(p, sizeof p, "%s/trials", dir);
    DIR *d = opendir(p);
    if (!d) {
        json_decref(space);
        return 0;
    }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256)
        if (!strncmp(e->d_name, "trial-", 6)) names[n++] = strdup(e->d_name);
    closedir(d);
    for (int i = 0; i < n; i++) /* trial-NNNN sorts as text */
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    series *cur = calloc((size_t)n + 1, sizeof *cur), *curp[256];
    const char *lab[256];
    int acc = 0;
    sb_printf(b, "<table class=\"study\"><tr><th>trial</th>");
    const char *k;
    json_t *v;
    json_object_foreach(space, k, v) {
        sb_printf(b, "<th>");
        sb_esc(b, k);
        sb_printf(b, "</th>");
    }
    sb_printf(b, "<th>best validation accuracy</th><th>best validation loss</th></tr>\n");
    for (int i = 0; i < n; i++) {
        stage_info si;
        memset(&si, 0, sizeof si);
        snprintf(p, sizeof p, "%s/trials/%s", dir, names[i]);
        read_metrics(&si, p);
        snprintf(p, sizeof p, "%s/trials/%s/train_config.json", dir, names[i]);
        json_t *cfg = json_load_file(p, 0, NULL);
        sb_printf(b, "<tr><td>");
        sb_esc(b, names[i]);
        sb_printf(b, "</td>");
        json_object_foreach(space, k, v) {
            json_t *x = json_object_get(cfg, k);
            if (json_is_number(x)) cell_num(b, json_number_value(x), "%.4g");
            else {
                char *t = x ? json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
                sb_printf(b, "<td>");
                sb_esc(b, t ? t : "");
                sb_printf(b, "</td>");
                free(t);
            }
        }
        double ba = NAN, bl = NAN;
        for (int j = 0; j < si.val_acc.n; j++) ba = isnan(ba) || si.val_acc.y[j] > ba ? si.val_acc.y[j] : ba;
        for (int j = 0; j < si.val_loss.n; j++) bl = isnan(bl) || si.val_loss.y[j] < bl ? si.val_loss.y[j] : bl;
        cell_num(b, ba, "%.3f");
        cell_num(b, bl, "%.4f");
        sb_printf(b, "</tr>\n");
        acc |= si.val_acc.n > 0;
        cur[i] = si.val_acc.n ? si.val_acc : si.val_loss;
        if (si.val_acc.n) free(si.val_loss.x), free(si.val_loss.y);
        else free(si.val_acc.x), free(si.val_acc.y);
        free(si.loss.x), free(si.loss.y);
        json_decref(cfg);
        curp[i] = &cur[i];
        lab[i] = names[i];
    }
    sb_printf(b, "</table>\n");
    char id[200], title[300];
    snprintf(id, sizeof id, "chart-study-%s", name);
    snprintf(title, sizeof title, "study %s: validation %s per trial", name, acc ? "accuracy" : "loss");
    int drawn = line_chart(b, id, title, "step", acc ? "validation accuracy" : "validation loss", curp, lab, n);
    for (int i = 0; i < n; i++) {
        free(cur[i].x), free(cur[i].y);
        free(names[i]);
    }
    free(cur);
    json_decref(space);
    return drawn;
}

typedef struct {
    const char *text;
} html_ctx;
static lf_status write_html(FILE *f, const char *path, const void *ctx) {
    const html_ctx *h = ctx;
    return lf_write_all(f, h->text, strlen(h->text), path);
}

lf_status lf_report_html(const char *run_dir, const char *out_path, const char *title, int *charts_out) {
    char p[1400];
    snprintf(p, sizeof p, "%s/.stages", run_dir);
    DIR *d = opendir(p);
    if (!d) {
        lf_set_error("%s: not a 'lmforge run' folder (no .stages/ records)", run_dir);
        return LF_ERR_NOTFOUND;
    }
    stage_info *st = NULL;
    int ns = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") || !strcmp(e->d_name, "recipe.json")) continue;
        snprintf(p, sizeof p, "%s/.stages/%s", run_dir, e->d_name);
        json_t *rec = json_load_file(p, 0, NULL);
        if (!rec || !json_is_string(json_object_get(rec, "kind"))) {
            json_decref(rec);
            continue;
        }
        st = realloc(st, sizeof *st * (size_t)(ns + 1));
        memset(&st[ns], 0, sizeof *st);
        st[ns].rec = rec;
        st[ns].name = json_string_value(json_object_get(rec, "stage"));
        st[ns].kind = json_string_value(json_object_get(rec, "kind"));
        ns++;
    }
    closedir(d);
    if (!ns) {
        lf_set_error("%s: no finished stages to report", run_dir);
        return LF_ERR_NOTFOUND;
    }
    qsort(st, (size_t)ns, sizeof *st, cmp_rec);
    snprintf(p, sizeof p, "%s/.stages/recipe.json", run_dir);
    json_t *recipe = lf_path_exists(p) ? json_load_file(p, 0, NULL) : NULL;

    /* the models: one row per evaluated model (an lm and a classify eval of one model share it) */
    model_row *rows = NULL;
    int nr = 0;
    for (int i = 0; i < ns; i++) {
        const char *out = json_string_value(json_object_get(st[i].rec, "output"));
        if (!strcmp(st[i].kind, "train") || !strcmp(st[i].kind, "distill")) read_metrics(&st[i], out);
        if (strcmp(st[i].kind, "eval")) continue;
        json_t *set = json_object_get(st[i].rec, "settings"), *ev = json_load_file(out, 0, NULL);
        const char *model = json_string_value(json_object_get(set, "model")), *adapter = json_string_value(json_object_get(set, "adapter"));
        if (!ev || !model) {
            json_decref(ev);
            continue;
        }
        char label[300], lab2[140], mpath[1300], first[128], afirst[128] = "";
        label_of(model, label, sizeof label);
        if (adapter) {
            label_of(adapter, lab2, sizeof lab2);
            snprintf(label + strlen(label), sizeof label - strlen(label), " + %s", lab2);
        }
        model_row *r = find_row(&rows, &nr, label);
        resolve(st[i].rec, model, mpath, sizeof mpath, first, sizeof first);
        if (!r->path[0]) {
            snprintf(r->path, sizeof r->path, "%s", mpath);
            double size = 0, params = 0;
            model_size(mpath, &size, &params);
            if (adapter) {
                char apath[1300], ap2[1400];
                resolve(st[i].rec, adapter, apath, sizeof apath, afirst, sizeof afirst);
                snprintf(ap2, sizeof ap2, "%s/adapter_model.safetensors", apath);
                size += file_size(ap2);
                snprintf(ap2, sizeof ap2, "%s/score.safetensors", apath); /* a head trained with it */
                size += file_size(ap2);
            }
            r->size = size > 0 ? size : NAN;
            r->params = params > 0 ? params : NAN;
            /* made by: the stage that produced the adapter, else the model */
            const char *maker = afirst[0] ? afirst : first;
            for (int j = 0; j < ns; j++)
                if (maker[0] && !strcmp(st[j].name, maker)) {
                    snprintf(r->made_by, sizeof r->made_by, "%s (%s)", st[j].name, st[j].kind);
                    if (strcmp(st[j].kind, "fetch") && strcmp(st[j].kind, "convert"))
                        r->train_s = json_number_value(json_object_get(st[j].rec, "seconds"));
                }
        }
        if (json_is_number(json_object_get(ev, "perplexity"))) {
            r->ppl = json_number_value(json_object_get(ev, "perplexity"));
            double secs = json_number_value(json_object_get(ev, "seconds")), tok = json_number_value(json_object_get(ev, "targets"));
            if (secs > 0) r->tok_s = tok / secs;
            if (json_is_number(json_object_get(ev, "params"))) r->params = json_number_value(json_object_get(ev, "params"));
            if (json_is_number(json_object_get(ev, "linear_sparsity")))
                r->sparsity = json_number_value(json_object_get(ev, "linear_sparsity"));
            json_decref(ev);
        } else if (json_is_number(json_object_get(ev, "accuracy"))) {
            r->acc = json_number_value(json_object_get(ev, "accuracy"));
            r->f1 = json_number_value(json_object_get(ev, "macro_f1"));
            json_t *a = json_object_get(ev, "accuracy_ci95"), *f = json_object_get(ev, "macro_f1_ci95");
            if (json_array_size(a) == 2) {
                r->acc_lo = json_number_value(json_array_get(a, 0));
                r->acc_hi = json_number_value(json_array_get(a, 1));
            }
            if (json_array_size(f) == 2) {
                r->f1_lo = json_number_value(json_array_get(f, 0));
                r->f1_hi = json_number_value(json_array_get(f, 1));
            }
            json_decref(r->classify);
            r->classify = ev;
        } else json_decref(ev);
    }

    sbuf b = {0};
    const char *rname = json_string_value(json_object_get(recipe, "name")), *desc = json_string_value(json_object_get(recipe, "description"));
    char ttl[400];
    snprintf(ttl, sizeof ttl, "%s", title ? title : rname ? rname : run_dir);
    sb_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lmforge report: ");
    sb_esc(&b, ttl);
    sb_printf(&b, "</title>\n<style>\nbody{font:14px/1.4 sans-serif;margin:24px;color:#222;max-width:1340px}\n"
                  "table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                  "td:first-child,th:first-child,td.l{text-align:left}th{background:#f2f2f2}\n"
                  "figure{display:inline-block;margin:0 16px 16px 0;vertical-align:top}figcaption{font-weight:bold;margin-bottom:4px}\n"
                  ".tick{font-size:11px;fill:#444}.axis{font-size:12px;fill:#222}.legend{font-size:12px;fill:#222}\n"
                  "</style></head><body>\n<h1>lmforge report: ");
    sb_esc(&b, ttl);
    sb_printf(&b, "</h1>\n");
    if (desc) {
        sb_printf(&b, "<p>");
        sb_esc(&b, desc);
        sb_printf(&b, "</p>\n");
    }
    sb_printf(&b, "<p>Run folder <code>");
    sb_esc(&b, run_dir);
    sb_printf(&b, "</code>, %d stages finished before this report.</p>\n<h2>Models</h2>\n", ns);
    if (nr) {
        sb_printf(&b, "<table id=\"summary\"><tr><th>model</th><th>made by</th><th>parameters</th><th>file size (MB)</th>"
                      "<th>perplexity</th><th>accuracy [95 %% CI]</th><th>macro-F1 [95 %% CI]</th><th>tokens/s (eval)</th>"
                      "<th>stage time (s)</th></tr>\n");
        for (int i = 0; i < nr; i++) {
            model_row *r = &rows[i];
            sb_printf(&b, "<tr><td>");
            sb_esc(&b, r->label);
            sb_printf(&b, "</td><td class=\"l\">");
            sb_esc(&b, r->made_by);
            sb_printf(&b, "</td>");
            char pn[32] = "\xe2\x80\x93";
            if (isfinite(r->params)) fmt_num(pn, sizeof pn, r->params);
            sb_printf(&b, "<td>%s</td>", pn);
            cell_num(&b, r->size / 1e6, "%.2f");
            cell_num(&b, r->ppl, "%.2f");
            if (isfinite(r->acc) && isfinite(r->acc_lo)) sb_printf(&b, "<td>%.3f [%.3f, %.3f]</td>", r->acc, r->acc_lo, r->acc_hi);
            else cell_num(&b, r->acc, "%.3f");
            if (isfinite(r->f1) && isfinite(r->f1_lo)) sb_printf(&b, "<td>%.3f [%.3f, %.3f]</td>", r->f1, r->f1_lo, r->f1_hi);
            else cell_num(&b, r->f1, "%.3f");
            cell_num(&b, r->tok_s, "%.0f");
            cell_num(&b, r->train_s, "%.1f");
            sb_printf(&b, "</tr>\n");
        }
        sb_printf(&b, "</table>\n");
    } else sb_printf(&b, "<p>No eval stages: no model table.</p>\n");

    /* charts */
    int charts = 0;
    sb_printf(&b, "<h2>Charts</h2>\n");
    series *ls[64], *vs[64], *va[64];
    const char *ln[64], *vn[64], *an[64];
    int nl = 0, nv = 0, na = 0;
    for (int i = 0; i < ns; i++) {
        if (st[i].loss.n && nl < 64) ls[nl] = &st[i].loss, ln[nl++] = st[i].name;
        if (st[i].val_loss.n && nv < 64) vs[nv] = &st[i].val_loss, vn[nv++] = st[i].name;
        if (st[i].val_acc.n && na < 64) va[na] = &st[i].val_acc, an[na++] = st[i].name;
    }
    charts += line_chart(&b, "chart-loss", "training loss", "step", "loss", ls, ln, nl);
    charts += line_chart(&b, "chart-val", "validation loss", "step", "validation loss", vs, vn, nv);
    charts += line_chart(&b, "chart-val-acc", "validation accuracy (classification runs)", "step", "accuracy", va, an, na);
    charts += bars(&b, rows, nr);
    double *x = calloc((size_t)nr + 1, sizeof *x), *y = calloc((size_t)nr + 1, sizeof *y);
    const char **lab = calloc((size_t)nr + 1, sizeof *lab);
    for (int i = 0; i < nr; i++) {
        x[i] = rows[i].sparsity;
        y[i] = rows[i].ppl;
        lab[i] = rows[i].label;
    }
    int distinct = 0; /* drawn only when the run has models at two sparsities or more */
    double first = NAN;
    for (int i = 0; i < nr; i++)
        if (isfinite(x[i]) && isfinite(y[i])) {
            if (isnan(first)) first = x[i];
            else if (fabs(x[i] - first) > 1e-6) distinct = 1;
        }
    if (distinct) charts += scatter(&b, "chart-sparsity", "perplexity vs sparsity of the linear weights", "sparsity", "perplexity", x, y, lab, nr, 0);
    for (int i = 0; i < nr; i++) {
        x[i] = rows[i].size;
        y[i] = rows[i].acc;
    }
    charts += scatter(&b, "chart-size", "file size vs accuracy", "file size (bytes, log scale)", "accuracy", x, y, lab, nr, 1);
    free(x);
    free(y);
    free(lab);
    for (int i = 0; i < nr; i++)
        if (rows[i].classify) {
            char id[64], t[400];
            snprintf(id, sizeof id, "chart-confusion-%d", i);
            snprintf(t, sizeof t, "confusion matrix: %s (%d examples)", rows[i].label,
                     (int)json_integer_value(json_object_get(rows[i].classify, "examples")));
            charts += confusion(&b, id, t, rows[i].classify);
        }
    for (int i = 0; i < ns; i++)
        if (!strcmp(st[i].kind, "tune")) {
            sb_printf(&b, "<h3>study ");
            sb_esc(&b, st[i].name);
            sb_printf(&b, "</h3>\n");
            charts += study_section(&b, st[i].name, json_string_value(json_object_get(st[i].rec, "output")));
        }
    if (!charts) sb_printf(&b, "<p>No chart data in this run.</p>\n");

    /* stages */
    sb_printf(&b, "<h2>Stages</h2>\n<table id=\"stages\"><tr><th>stage</th><th>kind</th><th>seconds</th><th>output</th><th>settings</th></tr>\n");
    double total = 0;
    for (int i = 0; i < ns; i++) {
        double s = json_number_value(json_object_get(st[i].rec, "seconds"));
        total += s;
        char *set = json_dumps(json_object_get(st[i].rec, "settings"), JSON_COMPACT | JSON_SORT_KEYS);
        sb_printf(&b, "<tr><td>");
        sb_esc(&b, st[i].name);
        sb_printf(&b, "</td><td class=\"l\">");
        sb_esc(&b, st[i].kind);
        sb_printf(&b, "</td><td>%.1f</td><td class=\"l\"><code>", s);
        sb_esc(&b, json_string_value(json_object_get(st[i].rec, "output")));
        sb_printf(&b, "</code></td><td class=\"l\"><code>");
        sb_esc(&b, set);
        sb_printf(&b, "</code></td></tr>\n");
        free(set);
    }
    sb_printf(&b, "</table>\n<p>Stage time in total: %.0f s. Made by lmforge report.</p>\n</body></html>\n", total);

    lf_status rc = LF_OK;
    if (!b.s) {
        lf_set_error("%s: out of memory writing the report", out_path);
        rc = LF_ERR_NOMEM;
    } else {
        html_ctx h = {b.s};
        rc = lf_write_atomic_with(out_path, write_html, &h);
    }
    if (charts_out) *charts_out = charts;
    free(b.s);
    for (int i = 0; i < nr; i++) json_decref(rows[i].classify);
    free(rows);
    for (int i = 0; i < ns; i++) {
        free(st[i].loss.x), free(st[i].loss.y), free(st[i].val_loss.x), free(st[i].val_loss.y);
        free(st[i].val_acc.x), free(st[i].val_acc.y);
        json_decref(st[i].rec);
    }
    free(st);
    json_decref(recipe);
    return rc;
}
