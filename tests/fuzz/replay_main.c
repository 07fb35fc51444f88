/* A standalone driver for a fuzz target: calls LLVMFuzzerInitialize once, then
 * LLVMFuzzerTestOneInput on every file named, or held by a folder named (sorted, hidden files
 * skipped). Built in every build (gcc too) so that ctest replays the regression inputs and the seed
 * corpora; a regression comes back as an abort or a sanitizer report, and a non-zero exit. */
#include "fuzz_common.h"

#include <dirent.h>
#include <sys/stat.h>

static int replay_file(const char *path) {
    size_t len;
    char *buf = lf_read_file(path, &len);
    if (!buf) {
        fprintf(stderr, "replay: %s\n", lf_last_error());
        return 1;
    }
    /* an exact-size copy, so that a sanitizer sees reads past the end */
    uint8_t *data = malloc(len ? len : 1);
    if (!data) abort();
    memcpy(data, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

int main(int argc, char **argv) {
    LLVMFuzzerInitialize(&argc, &argv);
    int files = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) continue; /* a target with no regressions yet has no folder */
        if (!S_ISDIR(sb.st_mode)) {
            bad += replay_file(argv[i]);
            files++;
            continue;
        }
        struct dirent **ents;
        int n = scandir(argv[i], &ents, NULL, alphasort);
        for (int k = 0; k < n; k++) {
            if (ents[k]->d_name[0] != '.') {
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", argv[i], ents[k]->d_name);
                if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
                    bad += replay_file(p);
                    files++;
                }
            }
            free(ents[k]);
        }
        if (n >= 0) free(ents);
    }
    printf("replayed %d inputs through %s\n", files, argv[0]);
    return bad ? 1 : 0;
}
