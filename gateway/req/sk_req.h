/*
 * sk_req.h — the gateway's handling of hostile request input, in units that link
 * alone (no libmicrohttpd, no store, no I/O): what http.c asks of client bytes
 * before anything reaches the upstream. Each unit has cmocka tests
 * (tests/unit/req/) and a libFuzzer target (tests/fuzz/req/).
 *
 *  req_head.c      the request head as libmicrohttpd left it: control characters,
 *                  bare LF and obs-fold are refused (issue 13 item 1)
 *  req_hdr.c       header-name folding and the one strip table (item 4)
 *  req_cookie.c    Cookie parsing for the session lookup and the stripper (item 6)
 *  req_host.c      Host/SNI tenant choice and the Host to forward (item 7)
 *  req_target.c    request target: authorised path, audit path, return path (2, 5)
 *  req_xff.c       forwarding-header trust (X-Forwarded-For behind trusted proxies)
 *  req_upstream.c  the upstream request head, built from plain inputs only
 *  req_form.c      application/x-www-form-urlencoded bodies of the gateway's forms
 *
 * Everything that returns a status is SK_MUST_CHECK; "1/0" predicates are plain.
 */
#ifndef SK_REQ_H
#define SK_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "sk_conf.h"
#include "sk_policy.h"
#include "sk_util.h"

/* ---- req_head: character classes and the head walk ------------------------ */

int sk_req_is_tchar(unsigned char c);
/* RFC 9110 5.5 field value: VCHAR, obs-text, SP, HTAB; no other CTL, no DEL. */
int sk_req_value_clean(const char *s, size_t n);
/* A request target or other URI text: printable ASCII (0x21-0x7e) only. */
int sk_req_target_clean(const char *s);
/* A header name: one or more tchar. */
int sk_req_name_clean(const char *s, size_t n);

/*
 * libmicrohttpd 0.9.75 parses the head in place (each CR, LF, header colon and
 * request-line space becomes a NUL) and hands out pointers into that buffer.
 * The walk checks that the request line and every header sit exactly where a
 * clean "name: value CRLF" sequence would put them; an obs-fold line, a NUL, a
 * bare LF or a control character leaves a gap, a misplaced field or a bad byte.
 * Pointers are compared as integers; bytes are read only inside [head, head+size).
 * Call start, then field for each header in order, then end (1 = intact).
 */
typedef struct sk_req_walk {
    uintptr_t base;
    size_t off, size;
    int bad;
} sk_req_walk;

void sk_req_walk_start(sk_req_walk *w, const char *head, size_t size, const char *target_at,
                       const char *raw_target, const char *version);
void sk_req_walk_field(sk_req_walk *w, const char *name, size_t name_len, const char *value, size_t value_len);
int sk_req_walk_end(sk_req_walk *w);

/* ---- req_hdr: names and the strip table ------------------------------------ */

#define SK_REQ_NAME_MAX 128

/* Lower case, and '_' and '.' as '-': every spelling a framework may treat as the
 * same header (PHP and CGI map '-', '.' and '_' alike). -1 when too long. */
int sk_req_hdr_fold(const char *name, char *out, size_t cap) SK_MUST_CHECK;
/* 1 when a client header (folded name) must not reach the upstream: hop-by-hop and
 * framing, the gateway's own, and every identity, forwarding, rewrite and
 * method-override family an upstream might believe. One table (req_hdr.c). */
int sk_req_hdr_request_drop(const char *folded);
/* 1 when an upstream response header (folded) is hop-by-hop. */
int sk_req_hdr_response_drop(const char *folded);
/* 1 when folded is one of the comma-separated tokens (a Connection value). */
int sk_req_hdr_in_tokens(const char *folded, const char *tokens);

/* ---- req_cookie ------------------------------------------------------------ */

#define SK_REQ_COOKIE_NAME "__Host-sekisho"

/* Calls fn for each cookie-pair of one Cookie header value (split at ';' only, as
 * RFC 6265 5.4 sends them; OWS trimmed). name is what precedes the first '='. */
typedef void (*sk_req_cookie_fn)(void *arg, const char *pair, size_t n, const char *name, size_t name_len,
                                 const char *value, size_t value_len);
void sk_req_cookie_each(const char *header, sk_req_cookie_fn fn, void *arg);
/* The session lookup: exactly the name SK_REQ_COOKIE_NAME, case-sensitive, no
 * whitespace. Call for every Cookie header; the token is usable when count == 1. */
typedef struct sk_req_session_cookie {
    const char *value;
    size_t len;
    unsigned count;
} sk_req_session_cookie;
void sk_req_cookie_find_session(const char *header, sk_req_session_cookie *found);
/* The stripper: 1 for every pair the session lookup could take and every pair in
 * which a lenient parser (case-folding, splitting at ',', trimming) could find it. */
int sk_req_cookie_is_ours(const char *pair, size_t n);
/* Appends the pairs of header that are not ours to out, "; "-separated
 * (*first is 1 until one was written). */
void sk_req_cookie_strip(const char *header, sk_buf *out, int *first);

/* ---- req_host -------------------------------------------------------------- */

/* Host (or SNI) syntax check: reg-name (letters, digits, '-', '.'), IPv4 or
 * [IPv6], optional :port (digits). host gets the lowercased name without port,
 * brackets or one trailing dot; port gets the port or "". -1 when malformed. */
int sk_req_host_parse(const char *in, char *host, size_t host_cap, char *port, size_t port_cap) SK_MUST_CHECK;

typedef struct sk_req_route {
    size_t tenant;     /* index into the tenants (when n_tenants > 0) */
    char host[280];    /* the Host to forward; "" = the upstream's own authority */
} sk_req_route;

/*
 * Picks where a request goes (RFC 9112 3.2, RFC 9110 15.5.20). Two Host headers
 * or a malformed one: 400. SNI and Host disagree: 421. With tenants, the name
 * must be one configured for a tenant (421 otherwise) and the certificate must
 * belong to that tenant (403); the forwarded Host is that configured name, with
 * the client's port. Without tenants every name is served and the forwarded Host
 * is the upstream's own (out->host ""). Returns 0 or the HTTP status.
 */
int sk_req_host_route(const sk_conf_tenant *tenants, size_t n_tenants, const char *host_hdr, unsigned n_host,
                      const char *sni, const char *cert_tenant, sk_req_route *out) SK_MUST_CHECK;

/* ---- req_target ------------------------------------------------------------ */

#define SK_REQ_PATH_MAX 2048

/*
 * Splits a request target into the path the rules judge and the upstream gets,
 * and the raw query (after '?', NULL when none). The path is normalised
 * (sk_policy_path_normalize: RFC 3986 percent-encoding normalisation and
 * remove_dot_segments); empty segments are refused. Returns 0, 400 or 414.
 */
int sk_req_target_split(const char *target, char *path, size_t cap, const char **query) SK_MUST_CHECK;
/* The path of a target for the audit log: the query dropped first, then cut to
 * fit cap with a visible "...[truncated]" marker. Always a string. */
void sk_req_audit_path(const char *target, char *out, size_t cap);
/* A return path that stays on this site, else "/". */
const char *sk_req_return_path(const char *p);
/* Percent-decode a query value ('+' is a space); %00 and bad escapes: -1. */
int sk_req_pct_decode(const char *in, char *out, size_t cap) SK_MUST_CHECK;

/* ---- req_xff --------------------------------------------------------------- */

/* The client address: the TCP peer, unless the peer is a trusted proxy; then the
 * X-Forwarded-For chain (all headers joined with ',') is read from the right and
 * the first address that is not a trusted proxy is the client. A malformed chain
 * from a trusted proxy: -1 (refuse rather than guess). */
int sk_req_client_addr(const sk_policy_cidr_list *trusted, const sk_policy_addr *peer, const char *xff,
                       sk_policy_addr *out) SK_MUST_CHECK;

/* ---- req_upstream ---------------------------------------------------------- */

enum sk_req_body { SK_REQ_BODY_NONE, SK_REQ_BODY_LENGTH, SK_REQ_BODY_CHUNKED };

typedef struct sk_req_upstream {
    const char *method, *prefix, *path, *query; /* query NULL = none */
    const char *host;                           /* Host to send */
    const char *forwarded_host;                 /* X-Forwarded-Host, NULL = none */
    const char *user, *tenant, *roles, *serial, *peer;
    enum sk_req_body body;
    uint64_t length;
    int upgrade;                                /* WebSocket */
    const char *conn_tokens;                    /* the client's Connection value(s) */
} sk_req_upstream;

typedef struct sk_req_head {
    sk_buf b;
    const sk_req_upstream *u;
    char cookies[8192];
    sk_buf cb;
    int cookie_first;
    int bad;
} sk_req_head;

/* Builds into mem[cap]: the request line and Host first, client headers through
 * sk_req_head_client (filtered by the strip table, Connection tokens and the
 * cookie stripper; a name or value with a control character makes the head bad),
 * then the gateway's identity and framing in finish. Every plain input is
 * checked too: nothing with a CR, LF or other CTL gets into the head. */
void sk_req_head_begin(sk_req_head *h, char *mem, size_t cap, const sk_req_upstream *u);
void sk_req_head_client(sk_req_head *h, const char *name, const char *value);
int sk_req_head_finish(sk_req_head *h, size_t *len) SK_MUST_CHECK;
/* Wipes the client's cookies kept in h: only the bytes written, not the whole
 * 8 KiB buffer (this runs once per proxied request). Only after begin. */
void sk_req_head_wipe(sk_req_head *h);

/* ---- req_form -------------------------------------------------------------- */

/* One urlencoded body (complete, at most cap bytes): fn gets each decoded field.
 * Malformed escapes, NUL, a field without '=' handled as empty value; a value
 * longer than SK_REQ_FORM_VALUE_MAX: -1. fn returning non-zero stops with -1. */
#define SK_REQ_FORM_VALUE_MAX 4096
typedef int (*sk_req_form_fn)(void *arg, const char *name, const char *value, size_t value_len);
int sk_req_form_parse(const char *body, size_t n, sk_req_form_fn fn, void *arg) SK_MUST_CHECK;

#endif
