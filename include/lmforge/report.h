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

/* TensorBoard event files: TFRecord framing (u64 length, masked CRC-32C of the length, the data,
 * masked CRC-32C of the data) around hand-encoded Event protos holding scalar summaries. */
typedef struct lf_tb lf_tb;
lf_status lf_tb_open(lf_tb **out, const char *dir);
lf_status lf_tb_scalar(lf_tb *tb, const char *tag, int64_t step, float value);
void lf_tb_flush(lf_tb *tb);
void lf_tb_close(lf_tb *tb);
const char *lf_tb_path(const lf_tb *tb);
uint32_t lf_crc32c(const void *data, size_t n);
uint32_t lf_tb_masked_crc(const void *data, size_t n);

/* ---- the run reporter: where a training run's events and lines go. Library code hands it
 * everything it would say; only the reporter writes to the terminal, metrics.jsonl and
 * TensorBoard, so the same run is quiet in a pipe, JSON lines with --json, and a redrawn
 * progress line (loss, tokens/s, ETA) on a terminal. */
#include <jansson.h>
typedef struct lf_reporter lf_reporter;
typedef struct {
    const char *metrics_path; /* metrics.jsonl (appended), or NULL */
    const char *tb_dir;       /* TensorBoard folder, or NULL */
    int quiet;                /* no human lines */
    int json;                 /* events also on stdout, one JSON object a line; no human lines */
} lf_report_opts;
lf_status lf_report_open(lf_reporter **out, const lf_report_opts *o);
void lf_report_close(lf_reporter *r);
/* one event (steals ev): a line of metrics.jsonl, and of stdout in JSON mode */
void lf_report_event(lf_reporter *r, json_t *ev);
/* a human line on stdout (nothing when quiet or JSON); erases the progress line first */
void lf_report_say(lf_reporter *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* the progress line: redrawn on a terminal, nothing elsewhere */
void lf_report_progress(lf_reporter *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lf_report_progress_end(lf_reporter *r);
int lf_report_is_tty(const lf_reporter *r);
void lf_report_scalar(lf_reporter *r, const char *tag, int64_t step, float value); /* TensorBoard */
void lf_report_flush(lf_reporter *r);
/* After a resume the steps after the checkpoint run again: drop the records of steps > step from
 * a metrics.jsonl so that it reads as one uninterrupted run. */
lf_status lf_metrics_trim(const char *path, int step);

/* ---- the run report (report/html_report.c): one self-contained HTML page (inline CSS + SVG, no
 * script) from a 'lmforge run' folder: a table of the evaluated models (parameters, file size,
 * perplexity, accuracy and macro-F1 with intervals, tokens/s, stage time), the charts whose data
 * the run has (training and validation curves, accuracy/F1 per model, confusion matrices,
 * perplexity vs sparsity, size vs accuracy) and the stages. title NULL: the recipe's name.
 * *charts (may be NULL): how many charts were drawn. Written atomically. */
lf_status lf_report_html(const char *run_dir, const char *out_path, const char *title, int *charts);

#endif
