/* libFuzzer target: the sekisho-ca index and journal parsers. Anything accepted
 * must serialize back to exactly the same bytes (one canonical form). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sk_ca_index idx;
    sk_ca_entry e;
    sk_ca_err err;
    char *text = NULL;
    size_t len = 0;

    memset(&err, 0, sizeof(err));
    sk_ca_index_init(&idx);
    if (sk_ca_index_parse((const char *)data, size, &idx, &err) == 0) {
        if (sk_ca_index_serialize(&idx, &text, &len) != 0)
            abort();
        if (len != size || memcmp(text, data, size) != 0)
            abort();
        free(text);
        text = NULL;
    } else if (err.msg[0] == '\0' || idx.n != 0) {
        abort();
    }
    sk_ca_index_free(&idx);

    memset(&err, 0, sizeof(err));
    if (sk_ca_pending_parse((const char *)data, size, &e, &err) == 0) {
        if (sk_ca_pending_serialize(&e, &text, &len) != 0)
            abort();
        if (len != size || memcmp(text, data, size) != 0)
            abort();
        free(text);
    } else if (err.msg[0] == '\0') {
        abort();
    }
    return 0;
}
