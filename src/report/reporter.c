/* The run reporter (see report.h): metrics.jsonl, TensorBoard scalars, JSON lines on stdout,
 * human lines and a terminal progress line. */
#include "lmforge/report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lf_reporter {
    FILE *metrics;
    lf_tb *tb;
    int quiet, json, tty, progress_shown;
};

lf_status lf_report_open(lf_reporter **out, const lf_report_opts *o) {
    *out = NULL;
    lf_reporter *r = calloc(1, sizeof *r);
    if (!r) return LF_ERR_NOMEM;
    r->quiet = o->quiet;
    r->json = o->json;
    r->tty = isatty(1);
    if (o->metrics_path) {
        r->metrics = fopen(o->metrics_path, "a");
        if (!r->metrics) {
            lf_set_error("%s: cannot open (%s)", o->metrics_path, strerror(errno));
            free(r);
            return LF_ERR_IO;
        }
    }
    if (o->tb_dir && o->tb_dir[0]) {
        lf_status st = lf_tb_open(&r->tb, o->tb_dir);
        if (st) {
            lf_report_close(r);
            return st;
        }
    }
    *out = r;
    return LF_OK;
}

void lf_report_close(lf_reporter *r) {
    if (!r) return;
    if (r->metrics) fclose(r->metrics);
    lf_tb_close(r->tb);
    free(r);
}

int lf_report_is_tty(const lf_reporter *r) { return r->tty && !r->quiet && !r->json; }

void lf_report_event(lf_reporter *r, json_t *ev) {
    char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
    if (s) {
        if (r->metrics) {
            fputs(s, r->metrics);
            fputc('\n', r->metrics);
            fflush(r->metrics);
        }
        if (r->json) {
            puts(s);
            fflush(stdout);
        }
        free(s);
    }
    json_decref(ev);
}

void lf_report_say(lf_reporter *r, const char *fmt, ...) {
    if (r->quiet || r->json) return;
    if (r->tty) fprintf(stdout, "\r\033[K");
    r->progress_shown = 0;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fflush(stdout);
}

void lf_report_progress(lf_reporter *r, const char *fmt, ...) {
    if (!lf_report_is_tty(r)) return;
    fprintf(stdout, "\r\033[K");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fflush(stdout);
    r->progress_shown = 1;
}

void lf_report_progress_end(lf_reporter *r) {
    if (lf_report_is_tty(r)) fprintf(stdout, "\r\033[K");
    r->progress_shown = 0;
}

void lf_report_scalar(lf_reporter *r, const char *tag, int64_t step, float value) {
    if (r->tb) lf_tb_scalar(r->tb, tag, step, value);
}

void lf_report_flush(lf_reporter *r) {
    if (r->tb) lf_tb_flush(r->tb);
}

lf_status lf_metrics_trim(const char *path, int step) {
    size_t len;
    if (!lf_path_exists(path)) return LF_OK;
    char *txt = lf_read_file(path, &len);
    if (!txt) return LF_ERR_IO;
    size_t k = 0;
    char *out = malloc(len + 1);
    if (!out) {
        free(txt);
        return LF_ERR_NOMEM;
    }
    for (char *line = txt; *line;) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line + 1) : strlen(line);
        json_t *j = json_loadb(line, ll, 0, NULL);
        json_t *js = j ? json_object_get(j, "step") : NULL;
        if (!js || json_integer_value(js) <= step) {
            memcpy(out + k, line, ll);
            k += ll;
        }
        json_decref(j);
        line += ll;
    }
    lf_status st = k == len ? LF_OK : lf_write_file_atomic(path, out, k);
    free(out);
    free(txt);
    return st;
}
