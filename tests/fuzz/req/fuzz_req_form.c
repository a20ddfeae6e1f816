/*
 * libFuzzer target: the urlencoded form parser. Invariants: every field handed
 * on is a C string of the length reported, within the value limit.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int field(void *arg, const char *name, const char *value, size_t len)
{
    (void)arg;
    if (strlen(value) != len || len > SK_REQ_FORM_VALUE_MAX || strlen(name) >= 64)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)sk_req_form_parse((const char *)data, size, field, NULL);
    return 0;
}
