/* libFuzzer target for the witness-note parser (`audit verify --witness FILE`
 * reads files an auditor received from elsewhere). A note that parses must
 * format back to a note that parses to the same fields. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    audit_note n, m;
    char *text = NULL;
    if (audit_note_parse((const char *)data, size, &n) != 0)
        return 0;
    if (audit_note_format(&n, &text) != 0 || audit_note_parse(text, strlen(text), &m) != 0 ||
        m.seq != n.seq || strcmp(m.h, n.h) != 0 || strcmp(m.origin, n.origin) != 0 ||
        strcmp(m.sig, n.sig) != 0)
        __builtin_trap();
    free(text);
    return 0;
}
