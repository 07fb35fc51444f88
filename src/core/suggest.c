/* "Did you mean" hints for names typed by a user (training-config keys, recipe keys, stage kinds
 * and stage names): one rule everywhere, so every message suggests the same way. */
#include "lmforge/core.h"

#include <string.h>

static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b), row[64];
    if (lb >= 63) return 99;
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t sub = prev + (a[i - 1] != b[j - 1]);
            size_t best = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            prev = cur;
        }
    }
    return row[lb];
}

const char *lf_closest_name(const char *name, const char *const *names, size_t n) {
    /* a name that the typed one extends or abbreviates ("lr_max", "max_step"), else the nearest spelling */
    const char *best = NULL;
    size_t best_len = 0, bd = 99;
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(names[i]), nl = strlen(name), m = kl < nl ? kl : nl;
        if (m >= 2 && strncmp(names[i], name, m) == 0 && m > best_len) {
            best = names[i];
            best_len = m;
        }
    }
    if (best) return best;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(name, names[i]);
        if (d < bd) {
            bd = d;
            best = names[i];
        }
    }
    return bd <= 3 ? best : NULL;
}
