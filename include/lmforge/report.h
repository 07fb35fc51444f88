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

#endif
