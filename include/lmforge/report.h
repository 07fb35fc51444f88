/* lmforge report: progress display for long work. On a terminal it redraws one line (rate, ETA);
 * in a pipe or file it prints nothing (callers print their own summary lines). */
#ifndef LMFORGE_REPORT_H
#define LMFORGE_REPORT_H

#include "lmforge/core.h"

typedef struct {
    const char *label;
    const char *unit; /* e.g. "MB" */
    double total;     /* in units; 0 = unknown */
    double start, last_draw;
    int enabled;
} lf_progress;

/* enabled only when stderr is a terminal and quiet is 0 */
void lf_progress_start(lf_progress *p, const char *label, const char *unit, double total, int quiet);
void lf_progress_update(lf_progress *p, double done, const char *extra);
void lf_progress_end(lf_progress *p);

#endif
