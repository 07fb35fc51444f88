/* lmforge report RUNDIR: the HTML report of a 'lmforge run' folder (the recipe's report stage runs
 * this too). */
#include "cli.h"
#include "lmforge/report.h"

#include <stdio.h>
#include <string.h>

int cmd_report(int argc, char **argv) {
    const char *dir = NULL, *out = NULL, *title = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) goto usage;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--title") && i + 1 < argc) title = argv[++i];
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else goto usage;
    }
    if (!dir) goto usage;
    char def[1200];
    if (!out) {
        snprintf(def, sizeof def, "%s/report.html", dir);
        out = def;
    }
    int charts;
    if (lf_report_html(dir, out, title, &charts)) return cli_fail("report");
    printf("%s (%d charts)\n", out, charts);
    return 0;
usage:
    fprintf(argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? stdout : stderr,
            "usage: lmforge report RUNDIR [--out report.html] [--title TEXT]\n"
            "One self-contained HTML file (no script, no network) from a 'lmforge run' folder: the evaluated\n"
            "models (parameters, file size, perplexity, accuracy and macro-F1 with 95 %% intervals, tokens/s,\n"
            "the time of the stage that made them), SVG charts drawn by lmforge (training and validation\n"
            "curves, accuracy/F1 per model, confusion matrices, perplexity vs sparsity, size vs accuracy)\n"
            "and the stages with their settings. Default output: RUNDIR/report.html.\n");
    return argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? 0 : 2;
}
