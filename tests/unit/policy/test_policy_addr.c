/* Unit tests: address / CIDR parsing, formatting, matching and allowlist levels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sk_policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Valid input -> canonical text written back by cidr_format. */
static const struct {
    const char *in, *canon;
} good[] = {
    { "192.0.2.0/24", "192.0.2.0/24" },
    { "192.0.2.1", "192.0.2.1/32" },
    { "0.0.0.0/0", "0.0.0.0/0" },
    { "255.255.255.255", "255.255.255.255/32" },
    { "255.255.255.255/32", "255.255.255.255/32" },
    { "10.0.0.0/8", "10.0.0.0/8" },
    { "172.16.0.0/12", "172.16.0.0/12" },
    { "198.51.100.128/25", "198.51.100.128/25" },
    { "203.0.113.7/32", "203.0.113.7/32" },
    { "0.0.0.0", "0.0.0.0/32" },
    { "2001:db8::/32", "2001:db8::/32" },
    { "2001:DB8::/32", "2001:db8::/32" },
    { "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1/128" },
    { "::", "::/128" },
    { "::/0", "::/0" },
    { "::1", "::1/128" },
    { "1::", "1::/128" },
    { "fe80::/10", "fe80::/10" },
    { "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8/128" },
    { "1:2:3:4:5:6::8", "1:2:3:4:5:6:0:8/128" },       /* single zero group not compressed */
    { "1::4:5:6:7:8", "1::4:5:6:7:8/128" },            /* a run of two is compressed */
    { "1:0:0:2:0:0:0:3", "1:0:0:2::3/128" },           /* longest run */
    { "1:0:0:2:0:0:3:4", "1::2:0:0:3:4/128" },         /* tie: first run */
    { "0:0:1::", "0:0:1::/128" },
    { "::ffff:192.0.2.1", "::ffff:192.0.2.1/128" },    /* embedded IPv4 */
    { "::ffff:c000:201", "::ffff:192.0.2.1/128" },
    { "::ffff:0.0.0.0/96", "::ffff:0.0.0.0/96" },
    { "64:ff9b::192.0.2.33", "64:ff9b::c000:221/128" },
    { "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304/128" },
    { "::1.2.3.4", "::102:304/128" },
    { "2001:db8:abcd:12::/64", "2001:db8:abcd:12::/64" },
    { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128" },
    { "2001:db8::8000/113", "2001:db8::8000/113" },
    { "2001:db8::/127", "2001:db8::/127" },
};

static void test_cidr_good(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < N(good); i++) {
        sk_policy_cidr c, c2;
        char buf[SK_POLICY_CIDR_STRLEN];
        sk_policy_cidr_err e = sk_policy_cidr_parse(good[i].in, strlen(good[i].in), &c);
        if (e != SK_POLICY_CIDR_OK)
            fail_msg("%s: %s", good[i].in, sk_policy_cidr_strerror(e));
        assert_int_equal(sk_policy_cidr_format(&c, buf, sizeof(buf)), 0);
        if (strcmp(buf, good[i].canon) != 0)
            fail_msg("%s: formatted %s want %s", good[i].in, buf, good[i].canon);
        /* Round trip: the canonical text parses to the same value. */
        assert_int_equal(sk_policy_cidr_parse(buf, strlen(buf), &c2), SK_POLICY_CIDR_OK);
        assert_memory_equal(&c.addr, &c2.addr, sizeof(c.addr));
        assert_int_equal(c.prefix, c2.prefix);
    }
}

static const struct {
    const char *in;
    sk_policy_cidr_err want;
} bad[] = {
    { "", SK_POLICY_CIDR_EMPTY },
    { "/24", SK_POLICY_CIDR_EMPTY },
    { "1.2.3.4 ", SK_POLICY_CIDR_BAD_CHAR },
    { " 1.2.3.4", SK_POLICY_CIDR_BAD_CHAR },
    { "1.2.3.4\n", SK_POLICY_CIDR_BAD_CHAR },
    { "1.2.3.-4", SK_POLICY_CIDR_BAD_CHAR },
    { "+1.2.3.4", SK_POLICY_CIDR_BAD_CHAR },
    { "[::1]", SK_POLICY_CIDR_BAD_CHAR },
    { "fe80::1%eth0", SK_POLICY_CIDR_BAD_CHAR },
    { "localhost", SK_POLICY_CIDR_BAD_CHAR },
    { "1.2.3.4/24 ", SK_POLICY_CIDR_BAD_CHAR },
    { "1.2.3.0/2x", SK_POLICY_CIDR_BAD_CHAR },
    { "gggg::", SK_POLICY_CIDR_BAD_CHAR },
    { "1.2.3", SK_POLICY_CIDR_BAD_IPV4 },
    { "1.2.3.", SK_POLICY_CIDR_BAD_IPV4 },
    { "1..3.4", SK_POLICY_CIDR_BAD_IPV4 },
    { ".1.2.3.4", SK_POLICY_CIDR_BAD_IPV4 },
    { "1", SK_POLICY_CIDR_BAD_IPV4 },
    { "16909060", SK_POLICY_CIDR_OCTET_RANGE },            /* inet_aton's integer form */
    { "0x7f.0.0.1", SK_POLICY_CIDR_BAD_CHAR },
    { "1.2.3.a", SK_POLICY_CIDR_BAD_IPV4 },
    { "1.2.3.4.5", SK_POLICY_CIDR_TRAILING },
    { "1.2.3.4.", SK_POLICY_CIDR_TRAILING },
    { "01.2.3.4", SK_POLICY_CIDR_LEADING_ZERO },
    { "1.2.3.04", SK_POLICY_CIDR_LEADING_ZERO },
    { "1.2.3.00", SK_POLICY_CIDR_LEADING_ZERO },
    { "010.0.0.0/8", SK_POLICY_CIDR_LEADING_ZERO },
    { "256.0.0.0", SK_POLICY_CIDR_OCTET_RANGE },
    { "1.2.3.999", SK_POLICY_CIDR_OCTET_RANGE },
    { "1.2.3.1000", SK_POLICY_CIDR_OCTET_RANGE },
    { "1.2.3.99999999999999999999", SK_POLICY_CIDR_OCTET_RANGE },
    { "1.2.3.4/", SK_POLICY_CIDR_BAD_PREFIX },
    { "1.2.3.4/024", SK_POLICY_CIDR_BAD_PREFIX },
    { "1.2.3.4/00", SK_POLICY_CIDR_BAD_PREFIX },
    { "1.2.3.0/2a", SK_POLICY_CIDR_BAD_PREFIX },
    { "1.2.3.0/:", SK_POLICY_CIDR_BAD_PREFIX },
    { "1.2.3.4/33", SK_POLICY_CIDR_PREFIX_RANGE },
    { "1.2.3.4/100", SK_POLICY_CIDR_PREFIX_RANGE },
    { "1.2.3.4/1000", SK_POLICY_CIDR_PREFIX_RANGE },
    { "::/129", SK_POLICY_CIDR_PREFIX_RANGE },
    { "::/999", SK_POLICY_CIDR_PREFIX_RANGE },
    { "1.2.3.4/24", SK_POLICY_CIDR_HOST_BITS },
    { "192.0.2.1/31", SK_POLICY_CIDR_HOST_BITS },
    { "11.0.0.0/7", SK_POLICY_CIDR_HOST_BITS },
    { "10.0.0.0/6", SK_POLICY_CIDR_HOST_BITS },
    { "128.0.0.0/0", SK_POLICY_CIDR_HOST_BITS },
    { "2001:db8::1/64", SK_POLICY_CIDR_HOST_BITS },
    { "2001:db8::/16", SK_POLICY_CIDR_HOST_BITS },
    { "::1/127", SK_POLICY_CIDR_HOST_BITS },
    { "1.2.3.0/24/24", SK_POLICY_CIDR_TRAILING },
    { "1.2.3.0//24", SK_POLICY_CIDR_TRAILING },
    { "::1::", SK_POLICY_CIDR_DOUBLE_COLON },
    { "1::2::3", SK_POLICY_CIDR_DOUBLE_COLON },
    { "::1::2", SK_POLICY_CIDR_DOUBLE_COLON },
    { ":::", SK_POLICY_CIDR_BAD_IPV6 },
    { "1:::2", SK_POLICY_CIDR_BAD_IPV6 },
    { ":1", SK_POLICY_CIDR_BAD_IPV6 },
    { ":1::", SK_POLICY_CIDR_BAD_IPV6 },
    { "1:", SK_POLICY_CIDR_BAD_IPV6 },
    { "1::2:", SK_POLICY_CIDR_BAD_IPV6 },
    { ":", SK_POLICY_CIDR_BAD_IPV6 },
    { "1:2:3:4:5:6:7", SK_POLICY_CIDR_BAD_IPV6 },
    { "1:2:3:4:5:6:7:8:9", SK_POLICY_CIDR_BAD_IPV6 },
    { "1:2:3:4:5:6:7:8::", SK_POLICY_CIDR_BAD_IPV6 },      /* '::' standing for nothing */
    { "::1:2:3:4:5:6:7:8", SK_POLICY_CIDR_BAD_IPV6 },
    { "1:2:3:4::5:6:7:8", SK_POLICY_CIDR_BAD_IPV6 },
    { "12345::", SK_POLICY_CIDR_BAD_IPV6 },
    { "1:2:3:4:5:6:7:00000", SK_POLICY_CIDR_BAD_IPV6 },
    { "1.2.3.4::", SK_POLICY_CIDR_BAD_IPV6 },
    { "1:2:3:4:5:6:7:1.2.3.4", SK_POLICY_CIDR_BAD_IPV6 },  /* IPv4 part would be groups 8-9 */
    { "1:2:3:4:5:1.2.3.4", SK_POLICY_CIDR_BAD_IPV6 },      /* too few groups, no '::' */
    { "::1.2.3.4:5", SK_POLICY_CIDR_BAD_IPV4 },
    { "::ffff:1.2.3", SK_POLICY_CIDR_BAD_IPV4 },
    { "::ffff:1.2.3.256", SK_POLICY_CIDR_OCTET_RANGE },
    { "::ffff:01.2.3.4", SK_POLICY_CIDR_LEADING_ZERO },
    { "::ffff:1.2.3.4.5", SK_POLICY_CIDR_TRAILING },
    { "::.1.2.3", SK_POLICY_CIDR_BAD_IPV6 },
    { "1:2:3:4:5:6:7:8/", SK_POLICY_CIDR_BAD_PREFIX },
    { "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb", SK_POLICY_CIDR_BAD_IPV6 },
    { "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee", SK_POLICY_CIDR_TOO_LONG },
};

static void test_cidr_bad(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < N(bad); i++) {
        sk_policy_cidr c;
        sk_policy_cidr_err e;
        memset(&c, 0xA5, sizeof(c));
        e = sk_policy_cidr_parse(bad[i].in, strlen(bad[i].in), &c);
        if (e != bad[i].want)
            fail_msg("%s: got %d (%s) want %d (%s)", bad[i].in, (int)e, sk_policy_cidr_strerror(e), (int)bad[i].want,
                     sk_policy_cidr_strerror(bad[i].want));
        /* The output is untouched on failure. */
        assert_int_equal(c.prefix, 0xA5);
        /* Every error has a distinct, non-empty text. */
        assert_true(strlen(sk_policy_cidr_strerror(e)) > 3);
    }
    /* Embedded NUL is an error, not a terminator. */
    {
        sk_policy_cidr c;
        assert_int_equal(sk_policy_cidr_parse("1.2.3.4\0/8", 10, &c), SK_POLICY_CIDR_BAD_CHAR);
        assert_int_equal(sk_policy_cidr_parse("1.2.3.4\0", 8, &c), SK_POLICY_CIDR_BAD_CHAR);
        assert_int_equal(sk_policy_cidr_parse(NULL, 0, &c), SK_POLICY_CIDR_EMPTY);
        assert_int_equal(sk_policy_cidr_parse(NULL, 5, &c), SK_POLICY_CIDR_EMPTY);
        /* Length is respected: a longer buffer read only up to len. */
        assert_int_equal(sk_policy_cidr_parse("10.0.0.0/8junk", 10, &c), SK_POLICY_CIDR_OK);
        assert_int_equal(c.prefix, 8);
    }
    assert_string_equal(sk_policy_cidr_strerror(SK_POLICY_CIDR_OK), "ok");
    assert_string_equal(sk_policy_cidr_strerror((sk_policy_cidr_err)99), "unknown error");
}

/* Every prefix length: network address with that prefix parses, and the same
 * address with the first host bit set is refused. */
static void test_cidr_all_prefixes(void **state)
{
    unsigned p;
    (void)state;
    for (p = 0; p <= 128; p++) {
        sk_policy_addr a;
        sk_policy_cidr c, net;
        char txt[SK_POLICY_CIDR_STRLEN];
        memset(&a, 0, sizeof(a));
        a.family = SK_POLICY_AF_INET6;
        memset(a.bytes, 0xFF, 16);
        /* network with prefix p: first p bits ones */
        net.addr = a;
        memset(net.addr.bytes, 0, 16);
        {
            unsigned b;
            for (b = 0; b < p; b++)
                net.addr.bytes[b / 8] |= (uint8_t)(0x80u >> (b % 8));
        }
        net.prefix = (uint8_t)p;
        assert_int_equal(sk_policy_cidr_format(&net, txt, sizeof(txt)), 0);
        assert_int_equal(sk_policy_cidr_parse(txt, strlen(txt), &c), SK_POLICY_CIDR_OK);
        assert_int_equal(c.prefix, p);
        assert_true(sk_policy_cidr_match(&c, &a));
        if (p < 128) {
            net.addr.bytes[p / 8] |= (uint8_t)(0x80u >> (p % 8));
            assert_int_equal(sk_policy_cidr_format(&net, txt, sizeof(txt)), 0);
            if (sk_policy_cidr_parse(txt, strlen(txt), &c) != SK_POLICY_CIDR_HOST_BITS)
                fail_msg("/%u with host bit: %s", p, txt);
        }
        if (p <= 32) {
            sk_policy_cidr c4 = { { SK_POLICY_AF_INET4, { 0 } }, (uint8_t)p };
            unsigned b;
            for (b = 0; b < p; b++)
                c4.addr.bytes[b / 8] |= (uint8_t)(0x80u >> (b % 8));
            assert_int_equal(sk_policy_cidr_format(&c4, txt, sizeof(txt)), 0);
            assert_int_equal(sk_policy_cidr_parse(txt, strlen(txt), &c), SK_POLICY_CIDR_OK);
            if (p < 32) {
                c4.addr.bytes[p / 8] |= (uint8_t)(0x80u >> (p % 8));
                assert_int_equal(sk_policy_cidr_format(&c4, txt, sizeof(txt)), 0);
                assert_int_equal(sk_policy_cidr_parse(txt, strlen(txt), &c), SK_POLICY_CIDR_HOST_BITS);
            }
        }
    }
}

static void test_addr_parse(void **state)
{
    sk_policy_addr a;
    static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    (void)state;
    assert_int_equal(sk_policy_addr_parse("192.0.2.1", 9, &a), SK_POLICY_CIDR_OK);
    assert_int_equal(a.family, SK_POLICY_AF_INET4);
    assert_int_equal(a.bytes[0], 192);
    assert_int_equal(a.bytes[3], 1);
    assert_int_equal(a.bytes[4], 0);
    assert_int_equal(sk_policy_addr_parse("2001:db8::1", 11, &a), SK_POLICY_CIDR_OK);
    assert_int_equal(a.family, SK_POLICY_AF_INET6);
    assert_memory_equal(a.bytes, v6, 16);
    /* A prefix is not an address. */
    assert_int_equal(sk_policy_addr_parse("192.0.2.0/24", 12, &a), SK_POLICY_CIDR_TRAILING);
    assert_int_equal(sk_policy_addr_parse("", 0, &a), SK_POLICY_CIDR_EMPTY);
    assert_int_equal(sk_policy_addr_parse("1.2.3.04", 8, &a), SK_POLICY_CIDR_LEADING_ZERO);
}

static void test_addr_from_bytes_and_format(void **state)
{
    static const uint8_t b4[4] = { 198, 51, 100, 7 };
    static const uint8_t mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 198, 51, 100, 7 };
    static const uint8_t b6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1 };
    sk_policy_addr a, v4;
    char buf[SK_POLICY_ADDR_STRLEN];
    char small[8];
    (void)state;
    assert_int_equal(sk_policy_addr_from_bytes(&a, b4, 4), 0);
    assert_int_equal(a.family, SK_POLICY_AF_INET4);
    assert_int_equal(sk_policy_addr_format(&a, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "198.51.100.7");
    assert_int_equal(sk_policy_addr_from_bytes(&a, b6, 16), 0);
    assert_int_equal(sk_policy_addr_format(&a, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "2001:db8::1:0:0:1"); /* tie: first run */
    assert_false(sk_policy_addr_is_v4_mapped(&a, NULL));
    assert_int_equal(sk_policy_addr_from_bytes(&a, mapped, 16), 0);
    assert_int_equal(a.family, SK_POLICY_AF_INET6);
    assert_true(sk_policy_addr_is_v4_mapped(&a, &v4));
    assert_int_equal(v4.family, SK_POLICY_AF_INET4);
    assert_memory_equal(v4.bytes, b4, 4);
    assert_int_equal(sk_policy_addr_format(&a, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "::ffff:198.51.100.7");
    /* Bad lengths / NULLs. */
    assert_int_equal(sk_policy_addr_from_bytes(&a, b4, 0), -1);
    assert_int_equal(sk_policy_addr_from_bytes(&a, b4, 5), -1);
    assert_int_equal(sk_policy_addr_from_bytes(&a, NULL, 4), -1);
    assert_int_equal(sk_policy_addr_from_bytes(NULL, b4, 4), -1);
    /* Truncation is an error and leaves "". */
    assert_int_equal(sk_policy_addr_from_bytes(&a, b4, 4), 0);
    assert_int_equal(sk_policy_addr_format(&a, small, sizeof(small)), -1);
    assert_string_equal(small, "");
    assert_int_equal(sk_policy_addr_format(&a, buf, strlen("198.51.100.7")), -1);
    assert_int_equal(sk_policy_addr_format(&a, buf, strlen("198.51.100.7") + 1), 0);
    assert_int_equal(sk_policy_addr_format(&a, buf, 0), -1);
    /* The longest forms fit the advertised sizes exactly. */
    {
        sk_policy_addr m;
        sk_policy_cidr c;
        static const uint8_t ff[16] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
        char cb[SK_POLICY_CIDR_STRLEN];
        assert_int_equal(sk_policy_addr_from_bytes(&m, ff, 16), 0);
        assert_int_equal(sk_policy_addr_format(&m, buf, sizeof(buf)), 0);
        assert_true(strlen(buf) < SK_POLICY_ADDR_STRLEN);
        c.addr = m;
        c.prefix = 128;
        assert_int_equal(sk_policy_cidr_format(&c, cb, sizeof(cb)), 0);
        assert_string_equal(cb, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
        c.prefix = 129;
        assert_int_equal(sk_policy_cidr_format(&c, cb, sizeof(cb)), -1);
    }
    /* Unknown family is refused by the formatter. */
    memset(&a, 0, sizeof(a));
    a.family = 5;
    assert_int_equal(sk_policy_addr_format(&a, buf, sizeof(buf)), -1);
}

static sk_policy_addr A(const char *s)
{
    sk_policy_addr a;
    assert_int_equal(sk_policy_addr_parse(s, strlen(s), &a), SK_POLICY_CIDR_OK);
    return a;
}

static sk_policy_cidr C(const char *s)
{
    sk_policy_cidr c;
    assert_int_equal(sk_policy_cidr_parse(s, strlen(s), &c), SK_POLICY_CIDR_OK);
    return c;
}

static void test_cidr_match_table(void **state)
{
    static const struct {
        const char *net, *addr;
        int want;
    } t[] = {
        { "192.0.2.0/24", "192.0.2.0", 1 },
        { "192.0.2.0/24", "192.0.2.255", 1 },
        { "192.0.2.0/24", "192.0.3.0", 0 },
        { "192.0.2.0/24", "192.0.1.255", 0 },
        { "192.0.2.128/25", "192.0.2.127", 0 },
        { "192.0.2.128/25", "192.0.2.128", 1 },
        { "192.0.2.1", "192.0.2.1", 1 },
        { "192.0.2.1", "192.0.2.2", 0 },
        { "0.0.0.0/0", "203.0.113.9", 1 },
        { "0.0.0.0/0", "2001:db8::1", 0 },               /* families differ */
        { "::/0", "192.0.2.1", 0 },
        { "::/0", "2001:db8::1", 1 },
        { "2001:db8::/32", "2001:db8:ffff::1", 1 },
        { "2001:db8::/32", "2001:db9::", 0 },
        { "2001:db8::/33", "2001:db8:7fff::", 1 },
        { "2001:db8::/33", "2001:db8:8000::", 0 },
        { "::1", "::1", 1 },
        { "::1", "::2", 0 },
        /* IPv4-mapped peers match IPv4 rules by their IPv4 address ... */
        { "192.0.2.0/24", "::ffff:192.0.2.77", 1 },
        { "192.0.2.0/24", "::ffff:192.0.3.77", 0 },
        { "0.0.0.0/0", "::ffff:1.2.3.4", 1 },
        /* ... and IPv6 rules by their IPv6 form. */
        { "::ffff:0.0.0.0/96", "::ffff:1.2.3.4", 1 },
        { "::/0", "::ffff:1.2.3.4", 1 },
        { "2001:db8::/32", "::ffff:1.2.3.4", 0 },
        /* IPv4-compatible (deprecated) and NAT64 forms are not IPv4. */
        { "192.0.2.0/24", "::192.0.2.1", 0 },
        { "192.0.2.0/24", "64:ff9b::192.0.2.1", 0 },
        /* An IPv4 peer never matches an IPv6 mapped rule. */
        { "::ffff:192.0.2.0/120", "192.0.2.1", 0 },
    };
    size_t i;
    (void)state;
    for (i = 0; i < N(t); i++) {
        sk_policy_cidr c = C(t[i].net);
        sk_policy_addr a = A(t[i].addr);
        if (sk_policy_cidr_match(&c, &a) != t[i].want)
            fail_msg("%s in %s: want %d", t[i].addr, t[i].net, t[i].want);
    }
    /* Corrupt values never match. */
    {
        sk_policy_cidr c = C("0.0.0.0/0");
        sk_policy_addr a = A("1.2.3.4");
        c.prefix = 33;
        assert_false(sk_policy_cidr_match(&c, &a));
        c = C("0.0.0.0/0");
        c.addr.family = 0;
        a.family = 0;
        assert_false(sk_policy_cidr_match(&c, &a));
        assert_false(sk_policy_cidr_match(NULL, &a));
        c = C("0.0.0.0/0");
        assert_false(sk_policy_cidr_match(&c, NULL));
    }
}

static void test_allowlist_levels(void **state)
{
    const sk_policy_cidr g_items[] = { C("192.0.2.0/24"), C("2001:db8::/32") };
    const sk_policy_cidr t_items[] = { C("192.0.2.0/25") };
    const sk_policy_cidr u_items[] = { C("192.0.2.10"), C("192.0.2.200") };
    const sk_policy_cidr_list g = { g_items, N(g_items) };
    const sk_policy_cidr_list t = { t_items, N(t_items) };
    const sk_policy_cidr_list u = { u_items, N(u_items) };
    const sk_policy_cidr_list empty = { NULL, 0 };
    sk_policy_addr in10 = A("192.0.2.10"), in11 = A("192.0.2.11"), in200 = A("192.0.2.200");
    sk_policy_addr out = A("198.51.100.1"), v6 = A("2001:db8::5"), m10 = A("::ffff:192.0.2.10");
    sk_policy_addr junk;
    (void)state;
    /* No restriction at all. */
    assert_true(sk_policy_ip_allowed(NULL, NULL, NULL, &out));
    assert_true(sk_policy_ip_allowed(&empty, &empty, &empty, &out));
    /* Single levels. */
    assert_true(sk_policy_ip_allowed(&g, NULL, NULL, &in11));
    assert_false(sk_policy_ip_allowed(&g, NULL, NULL, &out));
    assert_true(sk_policy_ip_allowed(NULL, &t, NULL, &in11));
    assert_false(sk_policy_ip_allowed(NULL, &t, NULL, &in200));
    assert_true(sk_policy_ip_allowed(NULL, NULL, &u, &in200));
    assert_false(sk_policy_ip_allowed(NULL, NULL, &u, &in11));
    /* Every non-empty level must pass. */
    assert_true(sk_policy_ip_allowed(&g, &t, &u, &in10));
    assert_false(sk_policy_ip_allowed(&g, &t, &u, &in11));   /* fails user */
    assert_false(sk_policy_ip_allowed(&g, &t, &u, &in200));  /* fails tenant */
    assert_false(sk_policy_ip_allowed(&g, &t, &u, &out));
    assert_true(sk_policy_ip_allowed(&g, &empty, &u, &in200));
    assert_true(sk_policy_ip_allowed(&g, NULL, NULL, &v6));
    assert_false(sk_policy_ip_allowed(&g, &t, NULL, &v6));
    /* Dual-stack socket: IPv4-mapped peer. */
    assert_true(sk_policy_ip_allowed(&g, &t, &u, &m10));
    /* Unknown family: refused when any level restricts. */
    memset(&junk, 0, sizeof(junk));
    assert_false(sk_policy_ip_allowed(&g, NULL, NULL, &junk));
    assert_true(sk_policy_ip_allowed(NULL, NULL, NULL, &junk));
    assert_false(sk_policy_ip_allowed(&g, NULL, NULL, NULL));
    /* list_match on its own. */
    assert_true(sk_policy_cidr_list_match(&u, &in10));
    assert_false(sk_policy_cidr_list_match(&empty, &in10));
    assert_false(sk_policy_cidr_list_match(NULL, &in10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr_good),
        cmocka_unit_test(test_cidr_bad),
        cmocka_unit_test(test_cidr_all_prefixes),
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_addr_from_bytes_and_format),
        cmocka_unit_test(test_cidr_match_table),
        cmocka_unit_test(test_allowlist_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
