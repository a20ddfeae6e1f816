/* Unit tests of the REQUEST_BATCH codec (sk_wire_audit.h): round trip, every
 * prefix refused, counts and lengths out of bounds refused, non-canonical
 * lines refused, and the permit (network workers only). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sk_wire_audit.h"

static sk_wire_audit_request_batch b, back;
static sk_wire_audit_request q, line;
static uint8_t buf[SK_WIRE_MAX];

static void set_line(unsigned i)
{
    char path[64];
    memset(&q, 0, sizeof q);
    assert_int_equal(sk_snprintf(path, sizeof path, "/item/%u?q=%u", i, i * 7), 0);
    q.has_user = i % 2 == 0;
    if (q.has_user)
        assert_int_equal(sk_strlcpy(q.user, sizeof q.user, "alice"), 0);
    q.has_peer = 1;
    assert_int_equal(sk_strlcpy(q.peer, sizeof q.peer, "127.0.0.1"), 0);
    assert_int_equal(sk_strlcpy(q.method, sizeof q.method, "GET"), 0);
    assert_int_equal(sk_strlcpy(q.path, sizeof q.path, path), 0);
    q.status = 200 + (int32_t)i;
    q.bytes = i;
    q.duration_us = 1000 + i;
}

static size_t encode_batch(const sk_wire_audit_request_batch *x)
{
    sk_wire_w w;
    sk_wire_w_init(&w, buf, sizeof buf);
    assert_int_equal(sk_wire_audit_encode(SK_WIRE_AUDIT_REQUEST_BATCH, 0, x, &w), 0);
    return w.len;
}

static void assert_zero(const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(((const uint8_t *)p)[i], 0);
}

static void round_trip_in_order_and_every_prefix_refused(void **state)
{
    size_t n, off = 0;
    (void)state;
    memset(&b, 0, sizeof b);
    for (unsigned i = 0; i < 5; i++) {
        set_line(i);
        assert_int_equal(sk_wire_audit_batch_add(&b, &q), 0);
    }
    assert_int_equal(b.n, 5);
    n = encode_batch(&b);
    assert_int_equal(sk_wire_audit_decode(SK_WIRE_AUDIT_REQUEST_BATCH, 0, buf, n, &back), 0);
    assert_int_equal(back.n, 5);
    assert_int_equal(back.len, b.len);
    assert_memory_equal(back.lines, b.lines, b.len);
    for (unsigned i = 0; i < 5; i++) {
        set_line(i);
        memset(line.user, 'X', 8); /* stale text must not survive an absent field */
        assert_int_equal(sk_wire_audit_batch_next(&back, &off, &line), 0);
        assert_int_equal(line.has_user, q.has_user);
        assert_string_equal(line.user, q.user);
        assert_string_equal(line.path, q.path);
        assert_string_equal(line.peer, "127.0.0.1");
        assert_int_equal(line.status, q.status);
        assert_int_equal(line.duration_us, q.duration_us);
    }
    assert_int_equal(sk_wire_audit_batch_next(&back, &off, &line), 1);
    for (size_t k = 0; k < n; k++) {
        assert_int_not_equal(sk_wire_audit_decode(SK_WIRE_AUDIT_REQUEST_BATCH, 0, buf, k, &back), 0);
        assert_zero(&back, sizeof back);
    }
    buf[n] = 0;
    assert_int_not_equal(sk_wire_audit_decode(SK_WIRE_AUDIT_REQUEST_BATCH, 0, buf, n + 1, &back), 0);
}

static void counts_and_lengths_out_of_bounds_refused(void **state)
{
    size_t n;
    (void)state;
    memset(&b, 0, sizeof b);
    set_line(1);
    assert_int_equal(sk_wire_audit_batch_add(&b, &q), 0);
    assert_int_equal(sk_wire_audit_batch_add(&b, &q), 0);
    n = encode_batch(&b);
    /* n = 0, n one more or one less than the lines, n beyond the maximum */
    const uint32_t bad[] = { 0, 1, 3, SK_WIRE_AUDIT_BATCH_MAX + 1, 0xffffffffu };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *p = buf;
        p[0] = (uint8_t)bad[i];
        p[1] = (uint8_t)(bad[i] >> 8);
        p[2] = (uint8_t)(bad[i] >> 16);
        p[3] = (uint8_t)(bad[i] >> 24);
        assert_int_not_equal(sk_wire_audit_decode(SK_WIRE_AUDIT_REQUEST_BATCH, 0, buf, n, &back), 0);
        assert_zero(&back, sizeof back);
    }
    /* An empty batch cannot be encoded, nor one claiming more bytes than it holds. */
    memset(&back, 0, sizeof back);
    {
        sk_wire_w w;
        sk_wire_w_init(&w, buf, sizeof buf);
        assert_int_not_equal(sk_wire_audit_encode(SK_WIRE_AUDIT_REQUEST_BATCH, 0, &back, &w), 0);
        back.n = 1;
        back.len = SK_WIRE_AUDIT_BATCH_BYTES + 1;
        sk_wire_w_init(&w, buf, sizeof buf);
        assert_int_not_equal(sk_wire_audit_encode(SK_WIRE_AUDIT_REQUEST_BATCH, 0, &back, &w), 0);
    }
    /* A lines blob longer than SK_WIRE_AUDIT_BATCH_BYTES. */
    memset(buf, 0, sizeof buf);
    buf[0] = 1;
    buf[4] = (uint8_t)((SK_WIRE_AUDIT_BATCH_BYTES + 1) & 0xff);
    buf[5] = (uint8_t)((SK_WIRE_AUDIT_BATCH_BYTES + 1) >> 8);
    assert_int_not_equal(
        sk_wire_audit_decode(SK_WIRE_AUDIT_REQUEST_BATCH, 0, buf, 6 + SK_WIRE_AUDIT_BATCH_BYTES + 1, &back), 0);
    assert_zero(&back, sizeof back);
}

static void non_canonical_line_refused(void **state)
{
    size_t n;
    (void)state;
    memset(&b, 0, sizeof b);
    set_line(1); /* has_user 0 */
    assert_int_equal(sk_wire_audit_batch_add(&b, &q), 0);
    n = encode_batch(&b);
    /* u32 n, u16 len, then the line: its first byte is has_user; 2 is no flag. */
    assert_int_equal(buf[6], 0);
    buf[6] = 2;
    assert_int_not_equal(sk_wire_audit_decode(SK_WIRE_AUDIT_REQUEST_BATCH, 0, buf, n, &back), 0);
    assert_zero(&back, sizeof back);
}

static void full_batch_says_so(void **state)
{
    unsigned added = 0;
    int r;
    (void)state;
    memset(&b, 0, sizeof b);
    set_line(2);
    while ((r = sk_wire_audit_batch_add(&b, &q)) == 0)
        added++;
    assert_int_equal(r, 1);
    assert_int_equal(added, SK_WIRE_AUDIT_BATCH_MAX);
    /* Long lines: the byte bound is reached before the count. */
    memset(&b, 0, sizeof b);
    memset(q.path, 'p', SK_WIRE_AUDIT_FIELD - 1);
    q.path[SK_WIRE_AUDIT_FIELD - 1] = '\0';
    added = 0;
    while ((r = sk_wire_audit_batch_add(&b, &q)) == 0)
        added++;
    assert_int_equal(r, 1);
    assert_true(added > 0 && added < SK_WIRE_AUDIT_BATCH_MAX);
    assert_true(b.len <= SK_WIRE_AUDIT_BATCH_BYTES);
    assert_int_equal(sk_wire_audit_decode(SK_WIRE_AUDIT_REQUEST_BATCH, 0, buf, encode_batch(&b), &back), 0);
    assert_int_equal(back.n, added);
}

static void permit_is_net_only(void **state)
{
    (void)state;
    assert_true(sk_wire_permitted(SK_WIRE_PEER_NET, SK_WIRE_AUDIT_REQUEST_BATCH));
    assert_false(sk_wire_permitted(SK_WIRE_PEER_AUTHD, SK_WIRE_AUDIT_REQUEST_BATCH));
    assert_false(sk_wire_permitted(SK_WIRE_PEER_CTL, SK_WIRE_AUDIT_REQUEST_BATCH));
    assert_false(sk_wire_permitted(SK_WIRE_PEER_AUDITD, SK_WIRE_AUDIT_REQUEST_BATCH));
    assert_string_equal(sk_wire_type_name(SK_WIRE_AUDIT_REQUEST_BATCH), "audit.request_batch");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_in_order_and_every_prefix_refused),
        cmocka_unit_test(counts_and_lengths_out_of_bounds_refused),
        cmocka_unit_test(non_canonical_line_refused),
        cmocka_unit_test(full_batch_says_so),
        cmocka_unit_test(permit_is_net_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
