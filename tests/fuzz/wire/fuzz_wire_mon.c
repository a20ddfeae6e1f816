/*
 * libFuzzer target for what the monitor reads from its children: the datagram
 * header (sk_wire_recv, fed through a real SEQPACKET socketpair) and the NOTIFY
 * decoder. Properties beyond "no crash": a header is accepted only with the
 * version byte and a zero reserved byte and at least 8 bytes; a rejected NOTIFY
 * leaves the struct all zero; an accepted one re-encodes to the same bytes and has
 * a level within 0..3.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sk_wire_mon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int sv[2] = { -1, -1 };
    static uint8_t buf[SK_WIRE_MAX], again[SK_WIRE_MAX];
    static sk_wire_notify n;
    sk_wire_msg m;
    sk_wire_w w;

    if (sv[0] < 0 && socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
        abort();
    if (size == 0 || size > 60000)
        return 0;
    if (send(sv[0], data, size, 0) != (ssize_t)size)
        return 0;
    if (sk_wire_recv(sv[1], buf, sizeof buf, &m, 1000) != 0) {
        if (size >= SK_WIRE_HDR_LEN && data[0] == SK_WIRE_VERSION && data[1] == 0)
            abort(); /* a well-formed header was refused */
        return 0;
    }
    if (size < SK_WIRE_HDR_LEN || data[0] != SK_WIRE_VERSION || data[1] != 0 || m.len != size - SK_WIRE_HDR_LEN)
        abort();
    if (sk_wire_notify_decode(m.payload, m.len, &n) != 0) {
        if (!all_zero(&n, sizeof n))
            abort();
        return 0;
    }
    if (n.level < 0 || n.level > 3)
        abort();
    sk_wire_w_init(&w, again, sizeof again);
    if (sk_wire_notify_encode(&n, &w) != 0 || w.len != m.len || memcmp(again, m.payload, m.len) != 0)
        abort();
    return 0;
}
