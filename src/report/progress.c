/* Terminal progress line: redrawn at most 10 times a second, erased at the end. */
#include "lmforge/report.h"

#include <stdio.h>
#include <unistd.h>

void lf_progress_start(lf_progress *p, const char *label, const char *unit, double total, int quiet) {
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->start = lf_now();
    p->last_draw = 0;
    p->enabled = !quiet && isatty(2);
}

void lf_progress_update(lf_progress *p, double done, const char *extra) {
    if (!p->enabled) return;
    double now = lf_now();
    if (now - p->last_draw < 0.1 && !(p->total > 0 && done >= p->total)) return;
    p->last_draw = now;
    double el = now - p->start, rate = el > 0 ? done / el : 0;
    char eta[32] = "";
    if (p->total > 0 && rate > 0) snprintf(eta, sizeof eta, ", ETA %.0f s", (p->total - done) / rate);
    if (p->total > 0)
        fprintf(stderr, "\r\033[K%s: %.1f/%.1f %s (%.0f%%), %.1f %s/s%s%s%s", p->label, done, p->total, p->unit,
                100.0 * done / p->total, rate, p->unit, eta, extra ? ", " : "", extra ? extra : "");
    else
        fprintf(stderr, "\r\033[K%s: %.1f %s, %.1f %s/s%s%s", p->label, done, p->unit, rate, p->unit, extra ? ", " : "",
                extra ? extra : "");
    fflush(stderr);
}

void lf_progress_end(lf_progress *p) {
    if (p->enabled) fprintf(stderr, "\r\033[K");
}
