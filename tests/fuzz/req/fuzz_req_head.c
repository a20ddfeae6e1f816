/*
 * libFuzzer target: sk_req_walk (issue 13 item 1). The input is a raw request
 * head; a model of libmicrohttpd 0.9.75's in-place parse (tests/unit/req/mhd_sim.h)
 * produces what the library would hand the gateway. Invariants: a clean head (no
 * CTL but HTAB in values, no bare CR or LF, no obs-fold, token method and names,
 * printable target) is always intact; an intact head never holds a CTL but
 * CR/LF/HTAB/NUL, a bare CR or an obs-fold line (see raw_head_weak for why NUL and
 * LF cannot be excluded entirely).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "mhd_sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sim s;
    if (sim_parse(&s, (const char *)data, size) != 0)
        return 0;
    int v = sim_walk(&s);
    if (raw_head_clean((const char *)data, s.head_off, s.raw_end) && !v)
        abort();
    if (v && !raw_head_weak((const char *)data, s.head_off, s.raw_end))
        abort();
    return 0;
}
