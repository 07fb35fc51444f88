/* lmforge tune: the search space. Parsed from JSON with every bound, step and choice checked, so
 * that a bad space fails at once with the file and the key named, not in the middle of a study;
 * and points turned back into training-config overrides. */
#include "lmforge/tune.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lf_space {
    int n;
    lf_hparam p[LF_TUNE_MAX_PARAMS];
};

void lf_space_free(lf_space *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        for (int c = 0; c < s->p[i].n_choices; c++) free(s->p[i].choices[c]);
        free(s->p[i].choices);
        free(s->p[i].cond_values);
    }
    free(s);
}

int lf_space_size(const lf_space *s) { return s->n; }
const lf_hparam *lf_space_param(const lf_space *s, int i) { return &s->p[i]; }

static int num(json_t *v, double *out) {
    if (!json_is_number(v)) return 0;
    *out = json_number_value(v);
    return isfinite(*out);
}

static lf_status parse_param(lf_space *s, lf_hparam *p, const char *key, json_t *v, const char *what) {
    const char *hint = "hint: {\"lr\": {\"type\": \"float\", \"low\": 1e-4, \"high\": 1e-2, \"log\": true}}";
    if (strlen(key) >= sizeof p->name) {
        lf_set_error("%s: parameter name '%.40s...' is too long (at most %zu characters)", what, key, sizeof p->name - 1);
        return LF_ERR_FORMAT;
    }
    snprintf(p->name, sizeof p->name, "%s", key);
    p->cond_param = -1;
    if (!json_is_object(v)) {
        lf_set_error("%s: '%s' is not an object; %s", what, key, hint);
        return LF_ERR_FORMAT;
    }
    const char *type = json_string_value(json_object_get(v, "type"));
    const char *k;
    json_t *e;
    json_object_foreach(v, k, e) {
        static const char *known[] = {"type", "low", "high", "log", "step", "choices", "grid", "when"};
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) ok |= !strcmp(k, known[i]);
        if (!ok) {
            lf_set_error("%s: '%s' has an unknown member '%s' (known: type, low, high, log, step, choices, grid, when)", what, key, k);
            return LF_ERR_FORMAT;
        }
    }
    if (!type || (strcmp(type, "float") && strcmp(type, "int") && strcmp(type, "categorical"))) {
        lf_set_error("%s: '%s' needs \"type\": \"float\", \"int\" or \"categorical\"; %s", what, key, hint);
        return LF_ERR_FORMAT;
    }
    json_t *g = json_object_get(v, "grid");
    if (g && (!json_is_integer(g) || json_integer_value(g) < 1 || json_integer_value(g) > 1000)) {
        lf_set_error("%s: '%s': \"grid\" must be an integer from 1 to 1000 (points of the grid sampler)", what, key);
        return LF_ERR_FORMAT;
    }
    p->grid = g ? (int)json_integer_value(g) : 0;
    if (!strcmp(type, "categorical")) {
        p->kind = LF_HP_CAT;
        json_t *ch = json_object_get(v, "choices");
        if (!json_is_array(ch) || json_array_size(ch) == 0 || json_array_size(ch) > 1000) {
            lf_set_error("%s: '%s' needs \"choices\": a non-empty array (at most 1000), e.g. [\"cosine\", \"linear\"]", what, key);
            return LF_ERR_FORMAT;
        }
        p->n_choices = (int)json_array_size(ch);
        p->choices = calloc((size_t)p->n_choices, sizeof *p->choices);
        if (!p->choices) return LF_ERR_NOMEM;
        for (int c = 0; c < p->n_choices; c++) {
            json_t *x = json_array_get(ch, (size_t)c);
            if (json_is_object(x) || json_is_array(x) || json_is_null(x)) {
                lf_set_error("%s: '%s': choice %d is not a string, number or boolean", what, key, c);
                return LF_ERR_FORMAT;
            }
            p->choices[c] = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
            if (!p->choices[c]) return LF_ERR_NOMEM;
        }
        p->low = 0;
        p->high = p->n_choices - 1;
    } else {
        p->kind = !strcmp(type, "int") ? LF_HP_INT : LF_HP_FLOAT;
        if (!num(json_object_get(v, "low"), &p->low) || !num(json_object_get(v, "high"), &p->high) || !(p->low <= p->high)) {
            lf_set_error("%s: '%s' needs finite numbers \"low\" <= \"high\"; %s", what, key, hint);
            return LF_ERR_FORMAT;
        }
        json_t *lg = json_object_get(v, "log");
        if (lg && !json_is_boolean(lg)) {
            lf_set_error("%s: '%s': \"log\" must be true or false", what, key);
            return LF_ERR_FORMAT;
        }
        p->log = lg && json_is_true(lg);
        json_t *st = json_object_get(v, "step");
        p->step = p->kind == LF_HP_INT ? 1 : 0;
        if (st && (!num(st, &p->step) || p->step <= 0 || (p->kind == LF_HP_INT && p->step != floor(p->step)))) {
            lf_set_error("%s: '%s': \"step\" must be a positive number (an integer for an int)", what, key);
            return LF_ERR_FORMAT;
        }
        if (p->kind == LF_HP_INT && (p->low != floor(p->low) || p->high != floor(p->high) || fabs(p->low) > 1e15 || fabs(p->high) > 1e15)) {
            lf_set_error("%s: '%s': an int's \"low\" and \"high\" must be integers", what, key);
            return LF_ERR_FORMAT;
        }
        if (p->log && (p->low <= 0 || (st && p->step != 1))) {
            lf_set_error("%s: '%s': a log-scaled parameter needs \"low\" > 0 and no step (other than 1 for an int)", what, key);
            return LF_ERR_FORMAT;
        }
        if (p->step > 0 && p->kind == LF_HP_FLOAT) { /* the top must lie on the step grid, as Optuna requires */
            double q = (p->high - p->low) / p->step;
            if (fabs(q - round(q)) > 1e-9 * (1 + q)) {
                lf_set_error("%s: '%s': high - low (%g) is not a multiple of step %g", what, key, p->high - p->low, p->step);
                return LF_ERR_FORMAT;
            }
        }
        if (p->kind == LF_HP_INT && fmod(p->high - p->low, p->step) != 0) {
            lf_set_error("%s: '%s': high - low (%g) is not a multiple of step %g", what, key, p->high - p->low, p->step);
            return LF_ERR_FORMAT;
        }
    }
    json_t *w = json_object_get(v, "when");
    if (w) {
        const char *ck;
        json_t *cv;
        if (!json_is_object(w) || json_object_size(w) != 1) {
            lf_set_error("%s: '%s': \"when\" must be one {\"other\": value or [values]} of an earlier parameter", what, key);
            return LF_ERR_FORMAT;
        }
        json_object_foreach(w, ck, cv) {
            int j = -1;
            for (int i = 0; i < s->n; i++)
                if (!strcmp(s->p[i].name, ck)) j = i;
            if (j < 0) {
                lf_set_error("%s: '%s': \"when\" names '%s', which is not an earlier parameter of the space", what, key, ck);
                return LF_ERR_FORMAT;
            }
            p->cond_param = j;
            size_t m = json_is_array(cv) ? json_array_size(cv) : 1;
            p->cond_values = calloc(m ? m : 1, sizeof *p->cond_values);
            if (!p->cond_values) return LF_ERR_NOMEM;
            for (size_t i = 0; i < m; i++) {
                json_t *x = json_is_array(cv) ? json_array_get(cv, i) : cv;
                const lf_hparam *q = &s->p[j];
                int found = -1;
                if (q->kind == LF_HP_CAT) {
                    char *t = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
                    for (int c = 0; t && c < q->n_choices; c++)
                        if (!strcmp(t, q->choices[c])) found = c;
                    free(t);
                    if (found < 0) {
                        lf_set_error("%s: '%s': \"when\" value %zu is not one of '%s''s choices", what, key, i, ck);
                        return LF_ERR_FORMAT;
                    }
                    p->cond_values[i] = found;
                } else if (!num(x, &p->cond_values[i])) {
                    lf_set_error("%s: '%s': \"when\" values of '%s' must be numbers", what, key, ck);
                    return LF_ERR_FORMAT;
                }
            }
            p->n_cond = (int)m;
        }
    }
    return LF_OK;
}

lf_status lf_space_parse(lf_space **out, const char *json_text, const char *what) {
    *out = NULL;
    json_error_t e;
    json_t *j = json_loads(json_text, 0, &e);
    if (!j || !json_is_object(j) || json_object_size(j) == 0) {
        if (j) lf_set_error("%s: the search space must be a non-empty JSON object of parameters", what);
        else lf_set_error("%s: line %d: %s (the search space is JSON)", what, e.line, e.text);
        json_decref(j);
        return LF_ERR_FORMAT;
    }
    if (json_object_size(j) > LF_TUNE_MAX_PARAMS) {
        lf_set_error("%s: %zu parameters; at most %d", what, json_object_size(j), LF_TUNE_MAX_PARAMS);
        json_decref(j);
        return LF_ERR_FORMAT;
    }
    lf_space *s = calloc(1, sizeof *s);
    if (!s) {
        json_decref(j);
        return LF_ERR_NOMEM;
    }
    const char *k;
    json_t *v;
    lf_status st = LF_OK;
    json_object_foreach(j, k, v) {
        st = parse_param(s, &s->p[s->n], k, v, what);
        s->n++;
        if (st) break;
    }
    json_decref(j);
    if (st) {
        lf_space_free(s);
        return st;
    }
    *out = s;
    return LF_OK;
}

lf_status lf_space_load(lf_space **out, const char *path) {
    char *txt = lf_read_file(path, NULL);
    if (!txt) return LF_ERR_IO;
    lf_status st = lf_space_parse(out, txt, path);
    free(txt);
    return st;
}

char *lf_space_json(const lf_space *s) {
    json_t *j = json_object();
    for (int i = 0; i < s->n; i++) {
        const lf_hparam *p = &s->p[i];
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string(p->kind == LF_HP_CAT ? "categorical" : p->kind == LF_HP_INT ? "int" : "float"));
        if (p->kind == LF_HP_CAT) {
            json_t *a = json_array();
            for (int c = 0; c < p->n_choices; c++) json_array_append_new(a, json_loads(p->choices[c], JSON_DECODE_ANY, NULL));
            json_object_set_new(o, "choices", a);
        } else {
            json_object_set_new(o, "low", p->kind == LF_HP_INT ? json_integer((json_int_t)p->low) : json_real(p->low));
            json_object_set_new(o, "high", p->kind == LF_HP_INT ? json_integer((json_int_t)p->high) : json_real(p->high));
            if (p->log) json_object_set_new(o, "log", json_true());
            if (p->step > 0) json_object_set_new(o, "step", p->kind == LF_HP_INT ? json_integer((json_int_t)p->step) : json_real(p->step));
        }
        if (p->grid) json_object_set_new(o, "grid", json_integer(p->grid));
        if (p->cond_param >= 0) {
            const lf_hparam *q = &s->p[p->cond_param];
            json_t *a = json_array();
            for (int c = 0; c < p->n_cond; c++)
                json_array_append_new(a, q->kind == LF_HP_CAT ? json_loads(q->choices[(int)p->cond_values[c]], JSON_DECODE_ANY, NULL)
                                                                 : json_real(p->cond_values[c]));
            json_t *w = json_object();
            json_object_set_new(w, q->name, a);
            json_object_set_new(o, "when", w);
        }
        json_object_set_new(j, p->name, o);
    }
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return txt;
}

static json_t *value_json(const lf_hparam *p, double x) {
    if (p->kind == LF_HP_CAT) return json_loads(p->choices[(int)x], JSON_DECODE_ANY, NULL);
    if (p->kind == LF_HP_INT) return json_integer((json_int_t)llround(x));
    return json_real(x);
}

char *lf_space_point_json(const lf_space *s, const double *x) {
    json_t *j = json_object();
    for (int i = 0; i < s->n; i++)
        if (!isnan(x[i])) json_object_set_new(j, s->p[i].name, value_json(&s->p[i], x[i]));
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return txt;
}

int lf_space_point_args(const lf_space *s, const double *x, char **out, int cap) {
    int n = 0;
    for (int i = 0; i < s->n && n < cap; i++) {
        if (isnan(x[i])) continue;
        const lf_hparam *p = &s->p[i];
        char v[600];
        if (p->kind == LF_HP_CAT) {
            json_t *c = json_loads(p->choices[(int)x[i]], JSON_DECODE_ANY, NULL);
            if (json_is_string(c)) snprintf(v, sizeof v, "%s", json_string_value(c));
            else snprintf(v, sizeof v, "%s", json_is_true(c) ? "true" : json_is_false(c) ? "false" : p->choices[(int)x[i]]);
            json_decref(c);
        } else if (p->kind == LF_HP_INT) {
            snprintf(v, sizeof v, "%lld", llround(x[i]));
        } else {
            snprintf(v, sizeof v, "%.9g", x[i]);
        }
        size_t len = strlen(p->name) + strlen(v) + 4;
        out[n] = malloc(len);
        if (!out[n]) break;
        snprintf(out[n], len, "--%s=%s", p->name, v);
        n++;
    }
    return n;
}
