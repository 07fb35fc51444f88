/* Training configuration JSON (lf_train_config_from_json_text): every key of the table with every
 * JSON type. An accepted configuration writes itself out (lf_train_config_json) as JSON that
 * reads back to the same configuration. */
#include "fuzz_common.h"
#include "lmforge/train.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) { return 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_cstr(data, size);
    lf_train_config c;
    lf_train_config_defaults(&c);
    if (lf_train_config_from_json_text(&c, text, "fuzz") != LF_OK) {
        FUZZ_CHECK(lf_last_error()[0], "a refusal without a message");
        free(text);
        return 0;
    }
    (void)lf_train_config_check(&c);
    char *js = lf_train_config_json(&c);
    FUZZ_CHECK(js, "the configuration does not write itself out");
    lf_train_config d;
    lf_train_config_defaults(&d);
    FUZZ_CHECK(lf_train_config_from_json_text(&d, js, "fuzz") == LF_OK, "its own JSON is refused: %s", lf_last_error());
    char *js2 = lf_train_config_json(&d);
    FUZZ_CHECK(js2 && strcmp(js, js2) == 0, "the configuration does not read back the same");
    free(js);
    free(js2);
    free(text);
    return 0;
}
