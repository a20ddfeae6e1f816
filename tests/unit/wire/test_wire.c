/* Unit tests of the wire protocol: codecs, permits, datagrams, client and server. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "sk_wire_auth.h"

static size_t enc(uint16_t type, int reply, const void *m, uint8_t *buf, size_t cap)
{
    sk_wire_w w;
    sk_wire_w_init(&w, buf, cap);
    assert_int_equal(sk_wire_auth_encode(type, reply, m, &w), 0);
    return w.len;
}

static void fill_user(sk_user *u)
{
    memset(u, 0, sizeof *u);
    assert_int_equal(sk_strlcpy(u->id, sizeof u->id, "alice"), 0);
    assert_int_equal(sk_strlcpy(u->tenant, sizeof u->tenant, "acme"), 0);
    u->role = SK_ROLE_ADMIN;
    assert_int_equal(sk_strlcpy(u->email, sizeof u->email, "alice@example.org"), 0);
    assert_int_equal(sk_strlcpy(u->pw_hash, sizeof u->pw_hash, "$argon2id$v=19$m=65536,t=3,p=1$U0VDUkVUU0FMVA$SECRETHASHSECRETHASH"), 0);
    memset(u->totp_secret, 0xA5, 49);
    u->totp_secret_len = 49;
    memset(u->totp_pending, 0x5A, 49);
    u->totp_pending_len = 49;
    memset(u->activation_hash, 0x77, 32);
    u->created = 1700000000;
    u->last_login = 1700000100;
    u->failures = 3;
    u->flags = SK_USER_F_TOTP_ENABLED;
    u->allow_count = 2;
    assert_int_equal(sk_strlcpy(u->allow[0], sizeof u->allow[0], "10.0.0.0/8"), 0);
    assert_int_equal(sk_strlcpy(u->allow[1], sizeof u->allow[1], "2001:db8::/32"), 0);
}

static void lookup_reply_never_carries_secrets(void **state)
{
    static sk_wire_lookup_rep rep, back;
    static uint8_t buf[SK_WIRE_MAX];
    size_t n;
    (void)state;
    memset(&rep, 0, sizeof rep);
    fill_user(&rep.user);
    rep.user_found = 1;
    rep.session_found = 1;
    memset(rep.session.hash, 1, sizeof rep.session.hash);
    assert_int_equal(sk_strlcpy(rep.session.user, sizeof rep.session.user, "alice"), 0);
    assert_int_equal(sk_strlcpy(rep.session.tenant, sizeof rep.session.tenant, "acme"), 0);
    assert_int_equal(sk_strlcpy(rep.session.cert_serial, sizeof rep.session.cert_serial, "0A1B"), 0);
    rep.session.created = 5;
    rep.session.last_seen = 6;
    n = enc(SK_WIRE_AUTH_LOOKUP, 1, &rep, buf, sizeof buf);
    assert_null(memmem(buf, n, "SECRETHASH", 10));
    assert_null(memmem(buf, n, "$argon2id", 9));
    {
        uint8_t t[16], p[16], a[16];
        memset(t, 0xA5, sizeof t);
        memset(p, 0x5A, sizeof p);
        memset(a, 0x77, sizeof a);
        assert_null(memmem(buf, n, t, sizeof t));
        assert_null(memmem(buf, n, p, sizeof p));
        assert_null(memmem(buf, n, a, sizeof a));
    }
    assert_int_equal(sk_wire_auth_decode(SK_WIRE_AUTH_LOOKUP, 1, buf, n, &back), 0);
    assert_string_equal(back.user.id, "alice");
    assert_string_equal(back.user.email, "alice@example.org");
    assert_int_equal(back.user.failures, 3);
    assert_int_equal(back.user.allow_count, 2);
    assert_string_equal(back.user.allow[1], "2001:db8::/32");
    assert_string_equal(back.user.pw_hash, "");
    assert_int_equal(back.user.totp_secret_len, 0);
    assert_int_equal(back.session.last_seen, 6);
    assert_string_equal(back.session.cert_serial, "0A1B");
}

static void login_round_trip_and_every_prefix_refused(void **state)
{
    static sk_wire_login_req q, back;
    static uint8_t buf[SK_WIRE_MAX];
    size_t n;
    (void)state;
    memset(&q, 0, sizeof q);
    assert_int_equal(sk_strlcpy(q.req.cert_tenant, sizeof q.req.cert_tenant, "acme"), 0);
    assert_int_equal(sk_strlcpy(q.req.cert_id, sizeof q.req.cert_id, "alice"), 0);
    assert_int_equal(sk_strlcpy(q.req.login_id, sizeof q.req.login_id, "alice"), 0);
    memcpy(q.req.password, "pass\0word", 9);
    q.req.password_len = 9;
    assert_int_equal(sk_strlcpy(q.req.totp, sizeof q.req.totp, "123456"), 0);
    assert_int_equal(sk_strlcpy(q.req.peer, sizeof q.req.peer, "127.0.0.1"), 0);
    q.req.now = 42;
    assert_int_equal(sk_strlcpy(q.cert_serial, sizeof q.cert_serial, "ABCDEF"), 0);
    n = enc(SK_WIRE_AUTH_LOGIN, 0, &q, buf, sizeof buf);
    assert_int_equal(sk_wire_auth_decode(SK_WIRE_AUTH_LOGIN, 0, buf, n, &back), 0);
    assert_memory_equal(&q, &back, sizeof q);
    for (size_t k = 0; k < n; k++) {
        assert_int_not_equal(sk_wire_auth_decode(SK_WIRE_AUTH_LOGIN, 0, buf, k, &back), 0);
        for (size_t i = 0; i < sizeof back; i++)
            assert_int_equal(((uint8_t *)&back)[i], 0);
    }
    buf[n] = 0;
    assert_int_not_equal(sk_wire_auth_decode(SK_WIRE_AUTH_LOGIN, 0, buf, n + 1, &back), 0);
}

static void hostile_fields_refused(void **state)
{
    static sk_wire_totp_req q, back;
    static sk_wire_lookup_rep rep;
    static uint8_t buf[4096];
    size_t n;
    sk_wire_w w;
    (void)state;

    memset(&q, 0, sizeof q);
    assert_int_equal(sk_strlcpy(q.who.tenant, sizeof q.who.tenant, "acme"), 0);
    assert_int_equal(sk_strlcpy(q.who.id, sizeof q.who.id, "bob"), 0);
    n = enc(SK_WIRE_AUTH_TOTP_CONFIRM, 0, &q, buf, sizeof buf);
    /* "acme" -> "ac\0e": a NUL inside text. */
    buf[4] = 0;
    assert_int_not_equal(sk_wire_auth_decode(SK_WIRE_AUTH_TOTP_CONFIRM, 0, buf, n, &back), 0);

    /* A tenant longer than its field. */
    sk_wire_w_init(&w, buf, sizeof buf);
    {
        char longname[200];
        memset(longname, 'a', sizeof longname);
        sk_wire_put_bytes(&w, longname, sizeof longname, sizeof longname);
    }
    sk_wire_put_str(&w, "bob", 65);
    sk_wire_put_str(&w, "", 16);
    sk_wire_put_i64(&w, 0);
    assert_int_equal(sk_wire_w_ok(&w), 0);
    assert_int_not_equal(sk_wire_auth_decode(SK_WIRE_AUTH_TOTP_CONFIRM, 0, buf, w.len, &back), 0);

    /* An allowlist count beyond SK_ALLOW_MAX, and a role out of range. */
    memset(&rep, 0, sizeof rep);
    fill_user(&rep.user);
    rep.user_found = 1;
    n = enc(SK_WIRE_AUTH_LOOKUP, 1, &rep, buf, sizeof buf);
    rep.user.allow_count = SK_ALLOW_MAX + 1;
    sk_wire_w_init(&w, buf, sizeof buf);
    assert_int_not_equal(sk_wire_auth_encode(SK_WIRE_AUTH_LOOKUP, 1, &rep, &w), 0);
    rep.user.allow_count = 0;
    rep.user.role = (enum sk_role)7;
    sk_wire_w_init(&w, buf, sizeof buf);
    assert_int_equal(sk_wire_auth_encode(SK_WIRE_AUTH_LOOKUP, 1, &rep, &w), 0);
    assert_int_not_equal(sk_wire_auth_decode(SK_WIRE_AUTH_LOOKUP, 1, buf, w.len, &rep), 0);
    (void)n;
}

/* KEYS: round trip for 1..3 ticket keys; a count of 0 or beyond the maximum and a
 * non-positive rotation are refused, whichever side encodes them. */
static void keys_round_trip_and_bounds(void **state)
{
    static sk_wire_keys_rep p, back;
    static uint8_t buf[4096];
    sk_wire_w w;
    size_t n;
    (void)state;
    memset(&p, 0, sizeof p);
    for (size_t i = 0; i < sizeof p.csrf; i++)
        p.csrf[i] = (uint8_t)(i + 1);
    for (uint32_t k = 1; k <= SK_WIRE_TICKET_KEYS_MAX; k++) {
        p.n_tickets = k;
        memset(p.ticket[k - 1].name, (int)(0x10 + k), sizeof p.ticket[k - 1].name);
        memset(p.ticket[k - 1].aes, (int)(0x20 + k), sizeof p.ticket[k - 1].aes);
        memset(p.ticket[k - 1].hmac, (int)(0x30 + k), sizeof p.ticket[k - 1].hmac);
        p.rotate_every = 3600;
        n = enc(SK_WIRE_AUTH_KEYS, 1, &p, buf, sizeof buf);
        assert_int_equal(sk_wire_auth_decode(SK_WIRE_AUTH_KEYS, 1, buf, n, &back), 0);
        assert_memory_equal(&p, &back, sizeof p);
        assert_int_not_equal(sk_wire_auth_decode(SK_WIRE_AUTH_KEYS, 1, buf, n - 1, &back), 0);
    }
    p.n_tickets = SK_WIRE_TICKET_KEYS_MAX + 1;
    sk_wire_w_init(&w, buf, sizeof buf);
    assert_int_not_equal(sk_wire_auth_encode(SK_WIRE_AUTH_KEYS, 1, &p, &w), 0);
    p.n_tickets = 0;
    sk_wire_w_init(&w, buf, sizeof buf);
    assert_int_not_equal(sk_wire_auth_encode(SK_WIRE_AUTH_KEYS, 1, &p, &w), 0);
    /* The same refusal on decode: a hand-made reply with 4 keys. */
    sk_wire_w_init(&w, buf, sizeof buf);
    sk_wire_put_i32(&w, 0);
    sk_wire_put_bytes(&w, p.csrf, sizeof p.csrf, sizeof p.csrf);
    sk_wire_put_u32(&w, SK_WIRE_TICKET_KEYS_MAX + 1);
    assert_int_equal(sk_wire_w_ok(&w), 0);
    assert_int_not_equal(sk_wire_auth_decode(SK_WIRE_AUTH_KEYS, 1, buf, w.len, &back), 0);
    p.n_tickets = 1;
    p.rotate_every = 0;
    sk_wire_w_init(&w, buf, sizeof buf);
    assert_int_not_equal(sk_wire_auth_encode(SK_WIRE_AUTH_KEYS, 1, &p, &w), 0);
    assert_true(sk_wire_permitted(SK_WIRE_PEER_NET, SK_WIRE_AUTH_KEYS));
    assert_false(sk_wire_permitted(SK_WIRE_PEER_CTL, SK_WIRE_AUTH_KEYS));
}

static void permits(void **state)
{
    (void)state;
    assert_true(sk_wire_permitted(SK_WIRE_PEER_NET, SK_WIRE_AUTH_LOGIN));
    assert_true(sk_wire_permitted(SK_WIRE_PEER_NET, SK_WIRE_AUDIT_APPEND));
    assert_true(sk_wire_permitted(SK_WIRE_PEER_CTL, SK_WIRE_AUDIT_APPEND));
    assert_false(sk_wire_permitted(SK_WIRE_PEER_CTL, SK_WIRE_AUTH_LOGIN));
    assert_false(sk_wire_permitted(SK_WIRE_PEER_CTL, SK_WIRE_AUDIT_REQUEST));
    assert_false(sk_wire_permitted(SK_WIRE_PEER_AUTHD, SK_WIRE_AUTH_LOOKUP));
    assert_false(sk_wire_permitted(SK_WIRE_PEER_NET, SK_WIRE_RESET));
    assert_false(sk_wire_permitted(SK_WIRE_PEER_NET, 0x7777));
    assert_false(sk_wire_permitted(SK_WIRE_PEER_NET, SK_WIRE_AUTH_LOGIN | SK_WIRE_REPLY));
    assert_false(sk_wire_permitted((enum sk_wire_peer)99, SK_WIRE_AUTH_LOGIN));
}

static void datagrams(void **state)
{
    int sv[2];
    static uint8_t buf[SK_WIRE_MAX];
    uint8_t small[16];
    sk_wire_msg m;
    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    assert_int_equal(sk_wire_send(sv[0], 0x0102, 77, "abc", 3), 0);
    assert_int_equal(sk_wire_recv(sv[1], buf, sizeof buf, &m, 1000), 0);
    assert_int_equal(m.type, 0x0102);
    assert_int_equal(m.id, 77);
    assert_int_equal(m.len, 3);
    assert_memory_equal(m.payload, "abc", 3);
    /* Longer than the receiver's buffer: refused, not cut. */
    assert_int_equal(sk_wire_send(sv[0], 0x0102, 78, buf, 100), 0);
    assert_int_equal(sk_wire_recv(sv[1], small, sizeof small, &m, 1000), -1);
    assert_int_equal(errno, EBADMSG);
    /* Wrong version, and a runt. */
    assert_int_equal(send(sv[0], "\x02\x00\x01\x01\x00\x00\x00\x00", 8, 0), 8);
    assert_int_equal(sk_wire_recv(sv[1], buf, sizeof buf, &m, 1000), -1);
    assert_int_equal(errno, EBADMSG);
    assert_int_equal(send(sv[0], "\x01\x00", 2, 0), 2);
    assert_int_equal(sk_wire_recv(sv[1], buf, sizeof buf, &m, 1000), -1);
    assert_int_equal(errno, EBADMSG);
    /* Nothing waiting: timeout. */
    assert_int_equal(sk_wire_recv(sv[1], buf, sizeof buf, &m, 10), 1);
    assert_int_equal(sk_wire_send(sv[0], 1, 1, NULL, SK_WIRE_MAX), -1);
    close(sv[0]);
    assert_int_equal(sk_wire_recv(sv[1], buf, sizeof buf, &m, 1000), -1);
    assert_int_equal(errno, EPIPE);
    close(sv[1]);
}

/* ---- client and server ---- */

static int census_handler(void *ctx, enum sk_wire_peer peer, const sk_wire_msg *msg, sk_wire_w *w)
{
    sk_wire_census_rep rep = { 0, 11, 22 };
    int *calls = ctx;
    (void)peer;
    if (msg->type != SK_WIRE_AUTH_CENSUS)
        return -1;
    (*calls)++;
    return sk_wire_auth_encode(SK_WIRE_AUTH_CENSUS, 1, &rep, w) == 0 ? 0 : -1;
}

struct srv {
    int fd, calls;
    volatile int stop;
};

static void *serve_thread(void *arg)
{
    struct srv *s = arg;
    if (sk_wire_serve(s->fd, SK_WIRE_PEER_NET, census_handler, &s->calls, &s->stop) != 0)
        s->calls = -100;
    return NULL;
}

/* Answers the next request first with a stale reply (wrong id), then a reset. */
static void *stale_then_reset(void *arg)
{
    struct srv *s = arg;
    static uint8_t b[SK_WIRE_MAX];
    sk_wire_msg q;
    if (sk_wire_recv(s->fd, b, sizeof b, &q, 5000) != 0)
        return NULL;
    s->calls++;
    if (sk_wire_send(s->fd, SK_WIRE_AUTH_CENSUS | SK_WIRE_REPLY, q.id + 1, "x", 1) == 0 &&
        sk_wire_send(s->fd, SK_WIRE_RESET, 0, NULL, 0) == 0)
        s->calls++;
    return NULL;
}

static void client_server(void **state)
{
    int sv[2];
    struct srv s = { 0, 0, 0 };
    pthread_t t;
    sk_wire_client *c;
    static uint8_t buf[SK_WIRE_MAX];
    sk_wire_msg m;
    sk_wire_census_rep rep;
    (void)state;

    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    s.fd = sv[1];
    assert_int_equal(sk_wire_client_new(&sv[0], 1, "test", &c), 0);
    assert_int_equal(pthread_create(&t, NULL, serve_thread, &s), 0);

    assert_int_equal(sk_wire_call(c, SK_WIRE_AUTH_CENSUS, NULL, 0, buf, sizeof buf, &m, 5000), 0);
    assert_int_equal(sk_wire_auth_decode(SK_WIRE_AUTH_CENSUS, 1, m.payload, m.len, &rep), 0);
    assert_int_equal(rep.sessions, 11);
    assert_int_equal(rep.locked, 22);
    /* A request this peer may not send is answered DENIED, never handled. */
    assert_int_equal(sk_wire_call(c, SK_WIRE_RESET, NULL, 0, buf, sizeof buf, &m, 5000), 0);
    {
        sk_wire_r r;
        sk_wire_r_init(&r, m.payload, m.len);
        assert_int_equal(sk_wire_get_i32(&r), SK_WIRE_ERR_DENIED);
    }
    assert_int_equal(s.calls, 1);
    s.stop = 1;
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(s.calls, 1);
    s.calls = 0;

    /* Nobody serves now: a call times out. A reply that comes too late is skipped
     * by the next call (another id), and a reset (the monitor restarting the
     * server) makes a waiting call fail at once with ECONNRESET. */
    assert_int_equal(sk_wire_call(c, SK_WIRE_AUTH_CENSUS, NULL, 0, buf, sizeof buf, &m, 50), -1);
    assert_int_equal(errno, ETIMEDOUT);
    {
        sk_wire_msg q;
        assert_int_equal(sk_wire_recv(sv[1], buf, sizeof buf, &q, 100), 0);
        assert_int_equal(sk_wire_send(sv[1], SK_WIRE_AUTH_CENSUS | SK_WIRE_REPLY, q.id, "late", 4), 0);
    }
    s.fd = sv[1];
    assert_int_equal(pthread_create(&t, NULL, stale_then_reset, &s), 0);
    assert_int_equal(sk_wire_call(c, SK_WIRE_AUTH_CENSUS, NULL, 0, buf, sizeof buf, &m, 5000), -1);
    assert_int_equal(errno, ECONNRESET);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(s.calls, 2);
    sk_wire_client_free(c);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lookup_reply_never_carries_secrets),
        cmocka_unit_test(login_round_trip_and_every_prefix_refused),
        cmocka_unit_test(hostile_fields_refused),
        cmocka_unit_test(keys_round_trip_and_bounds),
        cmocka_unit_test(permits),
        cmocka_unit_test(datagrams),
        cmocka_unit_test(client_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
