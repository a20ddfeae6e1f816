/* libFuzzer target for the entry parser that verify runs on untrusted logs.
 * Also exercises the signature check on whatever parses as a checkpoint, and
 * the segment-name and node-name parsers (format 3) on the same bytes: a
 * directory listing and a node field are untrusted input too. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sk_audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t pub[32] = {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7,
                                    0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
                                    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25,
                                    0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
    sk_audit_entry e;
    char err[128];
    memset(&e, 0, sizeof(e));
    if (sk_audit_parse_line((const char *)data, size, &e, err, sizeof(err)) == 0) {
        if (e.has_sig)
            (void)sk_audit_check_sig((const char *)data, &e, pub);
        if (e.seq == 0 || !e.event || !e.details)
            __builtin_trap(); /* parser contract: these are always set */
        if (e.node && !sk_audit_valid_node(e.node))
            __builtin_trap(); /* a parsed node is always a valid one */
    }
    if (size < 256) {
        char name[256], node[SK_AUDIT_NODE_MAX + 1];
        int64_t day = -1;
        memcpy(name, data, size);
        name[size] = '\0';
        (void)sk_audit_valid_node(name);
        if (sk_audit_segment_parse(name, &day, node) == 0) {
            /* contract: a valid date, a valid node or none, and the name is a segment */
            if (day < 0 || (node[0] && !sk_audit_valid_node(node)) ||
                !sk_audit_is_segment_name(name) || sk_audit_segment_cmp(name, name) != 0)
                __builtin_trap();
        }
    }
    sk_audit_entry_free(&e);
    return 0;
}
