/*
 * libFuzzer target for src/tls/bundle.c: the input is PEM text as PUT
 * /certificates/NAME takes it. Checked invariants (abort on violation):
 *   refused  - why is set, NUL-terminated inside its buffer
 *   parsed   - the description is {"key": string, "chain": [one or more]},
 *              and json_dumps serializes it
 * Everything is freed: LeakSanitizer reports what is not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[WR_TLS_WHY_MAX];
    wr_tls_bundle_t *b;
    json_t *info, *chain;
    char *dump;

    if (size > WR_TLS_BUNDLE_MAX)
        return 0;
    memset(why, 'x', sizeof(why));
    why[sizeof(why) - 1] = '\0';
    why[0] = '\0';
    b = wr_tls_bundle_parse((const char *) data, size, why, sizeof(why));
    if (b == NULL) {
        CHECK(why[0] != '\0');
        CHECK(memchr(why, '\0', sizeof(why)) != NULL);
        return 0;
    }
    info = wr_tls_bundle_info(b);
    CHECK(info != NULL);
    CHECK(json_is_string(json_object_get(info, "key")));
    chain = json_object_get(info, "chain");
    CHECK(json_is_array(chain) && json_array_size(chain) >= 1);
    dump = json_dumps(info, JSON_COMPACT);
    CHECK(dump != NULL);
    free(dump);
    json_decref(info);
    wr_tls_bundle_free(b);
    return 0;
}
