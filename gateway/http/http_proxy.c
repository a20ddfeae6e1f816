/* The way to the upstream: the request head it gets, the exchange driven by the
 * worker's loop without blocking it, response streaming with backpressure, and the
 * WebSocket relay after a 101. */
#include "http_int.h"


#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "sk_page.h"
#include "sk_policy.h"
#include "sk_req.h"


/* ---- proxying ----------------------------------------------------------- */

/* Framing the gateway will not guess about: two Content-Length headers, Content-Length
 * together with Transfer-Encoding, or any transfer coding but plain "chunked". */
struct framing {
    int cl_count, te_count, te_chunked;
    const char *cl;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct framing *f = cls;
    if (strcasecmp(key, "Content-Length") == 0) {
        f->cl_count++;
        f->cl = value;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        f->te_count++;
        f->te_chunked = value && strcasecmp(value, "chunked") == 0;
    }
    return MHD_YES;
}

int http_framing_ok(struct MHD_Connection *mc, enum sk_proxy_body *mode, uint64_t *len)
{
    struct framing f = { 0 };
    (void)MHD_get_connection_values(mc, MHD_HEADER_KIND, count_framing, &f);
    if (f.cl_count > 1 || f.te_count > 1 || (f.cl_count && f.te_count) || (f.te_count && !f.te_chunked))
        return 0;
    if (f.cl_count && (f.cl == NULL || sk_parse_u64(f.cl, 0, INT64_MAX, len) != 0))
        return 0;
    *mode = f.te_count ? SK_PROXY_BODY_CHUNKED : f.cl_count ? SK_PROXY_BODY_LENGTH : SK_PROXY_BODY_NONE;
    return 1;
}

/* Every value of a header, joined with ", " (a list header may be sent in
 * pieces: a second X-Forwarded-For or Connection must count too). -1 when the
 * joined list does not fit; *out is NULL when the header is absent. */
struct join_ctx {
    const char *name;
    sk_buf b;
    int n;
};

static enum MHD_Result join_one(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct join_ctx *j = cls;
    (void)kind;
    if (strcasecmp(key, j->name) == 0) {
        if (j->n++ > 0)
            sk_buf_puts(&j->b, ", ");
        sk_buf_puts(&j->b, value ? value : "");
    }
    return MHD_YES;
}

int http_join_headers(struct MHD_Connection *mc, const char *name, char *mem, size_t cap, const char **out)
{
    struct join_ctx j = { name, { 0 }, 0 };
    sk_buf_init(&j.b, mem, cap);
    (void)MHD_get_connection_values(mc, MHD_HEADER_KIND, join_one, &j);
    *out = j.n > 0 ? mem : NULL;
    return sk_buf_finish(&j.b);
}

static enum MHD_Result head_client(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    sk_req_head_client(cls, key, value);
    return MHD_YES;
}

/* The upstream head, from what was authorised only: the normalised path, the
 * chosen Host, the certificate's identity; client headers pass the sk_req filter. */
int http_build_head(struct req *rq, struct MHD_Connection *mc, const sk_conn *c, const char *method,
                      enum sk_proxy_body mode, uint64_t len, size_t *head_len)
{
    const sk_conf *conf = rq->h->d.conf;
    char upstream_host[280], conn[1024];
    sk_req_upstream u = { 0 };
    sk_req_head *hd = malloc(sizeof *hd);
    int rc = -1, begun = 0;

    rq->head = malloc(SK_PROXY_HEAD_MAX);
    if (hd == NULL || rq->head == NULL || http_join_headers(mc, "Connection", conn, sizeof conn, &u.conn_tokens) != 0 ||
        sk_snprintf(upstream_host, sizeof upstream_host, "%s:%s", conf->upstream_host, conf->upstream_port) != 0)
        goto out;
    u.method = method;
    u.prefix = rq->route->prefix;
    u.path = rq->path;
    u.query = rq->query;
    u.host = rq->fwd_host[0] ? rq->fwd_host : upstream_host;
    u.forwarded_host = rq->fwd_host[0] ? rq->fwd_host : NULL;
    u.user = c->user;
    u.tenant = c->tenant;
    u.roles = sk_store_role_name(rq->sess.role);
    u.serial = c->serial;
    u.peer = c->peer_str;
    u.body = mode == SK_PROXY_BODY_LENGTH ? SK_REQ_BODY_LENGTH : mode == SK_PROXY_BODY_CHUNKED ? SK_REQ_BODY_CHUNKED
                                                                                              : SK_REQ_BODY_NONE;
    u.length = len;
    u.upgrade = rq->upgrade;
    sk_req_head_begin(hd, rq->head, SK_PROXY_HEAD_MAX, &u);
    begun = 1;
    (void)MHD_get_connection_values(mc, MHD_HEADER_KIND, head_client, hd);
    rc = sk_req_head_finish(hd, head_len);
out:
    if (begun)
        sk_req_head_wipe(hd); /* the client's other cookies */
    free(hd);
    return rc;
}

/* ---- the upstream, without blocking the worker ---------------------------- */

static void up_event(sk_loop_watch *lw, uint32_t events);

/* Watch the upstream socket for exactly what the exchange waits for. */
static int up_watch(struct req *rq, uint32_t want)
{
    uint32_t ev = ((want & POLLIN) ? EPOLLIN : 0) | ((want & POLLOUT) ? EPOLLOUT : 0);
    int fd = sk_proxy_fd(rq->px);
    if (rq->up_registered && rq->up_w.fd != fd) {
        sk_loop_del(rq->w->loop, &rq->up_w); /* a stale pooled connection was replaced */
        rq->up_registered = 0;
    }
    if (!rq->up_registered) {
        rq->up_w.fd = fd;
        rq->up_w.on_event = up_event;
        if (sk_loop_add(rq->w->loop, &rq->up_w, ev) != 0)
            return -1;
        rq->up_registered = 1;
        rq->up_ev = ev;
        return 0;
    }
    if (ev != rq->up_ev && sk_loop_mod(rq->w->loop, &rq->up_w, ev) != 0)
        return -1;
    rq->up_ev = ev;
    return 0;
}

void http_up_unwatch(struct req *rq)
{
    if (rq->up_registered)
        sk_loop_del(rq->w->loop, &rq->up_w);
    rq->up_registered = 0;
}

/* Wait for the upstream: MHD leaves the connection alone until up_resume. */
void http_up_suspend(struct req *rq)
{
    struct hworker *w = rq->w;
    if (rq->suspended)
        return;
    MHD_suspend_connection(rq->mc);
    rq->suspended = 1;
    rq->up_deadline_ms = http_mono_us() / 1000 + rq->h->d.conf->upstream_timeout * 1000;
    rq->wait_prev = NULL;
    rq->wait_next = w->up_wait;
    if (w->up_wait != NULL)
        w->up_wait->wait_prev = rq;
    w->up_wait = rq;
}

static void up_resume(struct req *rq)
{
    struct hworker *w = rq->w;
    if (!rq->suspended)
        return;
    if (rq->wait_prev != NULL)
        rq->wait_prev->wait_next = rq->wait_next;
    else
        w->up_wait = rq->wait_next;
    if (rq->wait_next != NULL)
        rq->wait_next->wait_prev = rq->wait_prev;
    rq->suspended = 0;
    MHD_resume_connection(rq->mc);
    w->run_mhd = 1;
}

/* Moves the exchange on; 1 the response head is there, 0 waiting, -1 failed. */
int http_up_progress(struct req *rq)
{
    uint32_t want = 0;
    int rc = sk_proxy_io(rq->px, &want);
    if (rc < 0 || up_watch(rq, rc == 1 ? 0 : want) != 0) {
        rq->upstream_failed = 1;
        return -1;
    }
    return rc;
}

/* The upstream socket is ready: let the suspended request try again (it suspends
 * itself once more if what it waits for is not there yet). */
static void up_event(sk_loop_watch *lw, uint32_t events)
{
    struct req *rq = (struct req *)((char *)lw - offsetof(struct req, up_w));
    (void)events;
    if (rq->px != NULL && !sk_proxy_head_complete(rq->px))
        (void)http_up_progress(rq);
    else if (up_watch(rq, 0) != 0)
        rq->upstream_failed = 1;
    up_resume(rq);
}

/* [upstream] timeout: counted while a request waits for the upstream. Returns the
 * ms until the next deadline (-1: none). */
int64_t http_up_expire(struct hworker *w, int64_t now_ms)
{
    int64_t next = -1;
    struct req *rq = w->up_wait, *n;
    for (; rq != NULL; rq = n) {
        n = rq->wait_next;
        if (now_ms >= rq->up_deadline_ms) {
            rq->upstream_failed = rq->timed_out = 1;
            up_resume(rq);
        } else if (next < 0 || rq->up_deadline_ms - now_ms < next) {
            next = rq->up_deadline_ms - now_ms;
        }
    }
    return next;
}

/* MHD asks for response body bytes: what the upstream has sent, or a suspension
 * until it sends more. Nothing is read ahead of the client, so a slow reader
 * holds the upstream back instead of filling the gateway's memory. */
static ssize_t body_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct req *rq = cls;
    ssize_t n;
    (void)pos;
    if (rq->upstream_failed) {
        atomic_fetch_add(&rq->h->ctr->upstream_errors, 1);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    n = sk_proxy_read_body_nb(rq->px, buf, max);
    if (n > 0) {
        rq->bytes_out += (uint64_t)n;
        return n;
    }
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n == SK_PROXY_AGAIN && up_watch(rq, POLLIN) == 0) {
        http_up_suspend(rq);
        return 0;
    }
    atomic_fetch_add(&rq->h->ctr->upstream_errors, 1);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

int http_is_websocket_request(struct MHD_Connection *mc)
{
    const char *up = http_header(mc, "Upgrade"), *conn = http_header(mc, "Connection");
    return up != NULL && conn != NULL && strcasecmp(up, "websocket") == 0 && sk_req_hdr_in_tokens("upgrade", conn);
}

void http_ws_relay_run(struct hconn *hc);

static void ws_client_event(sk_loop_watch *w, uint32_t events)
{
    struct ws_relay *ws = (struct ws_relay *)((char *)w - offsetof(struct ws_relay, client_w));
    (void)events;
    http_ws_relay_run(ws->hc);
}

static void ws_upstream_event(sk_loop_watch *w, uint32_t events)
{
    struct ws_relay *ws = (struct ws_relay *)((char *)w - offsetof(struct ws_relay, upstream_w));
    (void)events;
    http_ws_relay_run(ws->hc);
}

static void ws_unlink(struct ws_relay *ws)
{
    struct ws_relay **p = &ws->hc->w->ws_list;
    while (*p != NULL && *p != ws)
        p = &(*p)->next;
    if (*p == ws)
        *p = ws->next;
}

static void ws_upgraded(void *cls, struct MHD_Connection *mc, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct req *rq = cls;
    struct hconn *hc = http_hconn_of(mc);
    struct ws_relay *ws = calloc(1, sizeof *ws);
    const uint32_t ev = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

    if (ws == NULL || hc == NULL || extra_in_size > sizeof ws->c2u.buf)
        goto fail;
    ws->hc = hc;
    ws->client = sock;
    ws->upstream = -1;
    ws->urh = urh;
    if (sk_proxy_detach(rq->px, &ws->upstream, ws->u2c.buf, sizeof ws->u2c.buf, &ws->u2c.len) != 0)
        goto fail;
    memcpy(ws->c2u.buf, extra_in, extra_in_size);
    ws->c2u.len = extra_in_size;
    memcpy(ws->sess_hash, rq->sess_hash, sizeof ws->sess_hash);
    ws->sess_created = rq->sess.created;
    if (fcntl(ws->client, F_SETFL, fcntl(ws->client, F_GETFL) | O_NONBLOCK) != 0 ||
        fcntl(ws->upstream, F_SETFL, fcntl(ws->upstream, F_GETFL) | O_NONBLOCK) != 0)
        goto fail;
    ws->client_w.fd = ws->client;
    ws->client_w.on_event = ws_client_event;
    ws->upstream_w.fd = ws->upstream;
    ws->upstream_w.on_event = ws_upstream_event;
    if (sk_loop_add(hc->w->loop, &ws->client_w, ev) != 0)
        goto fail;
    if (sk_loop_add(hc->w->loop, &ws->upstream_w, ev) != 0) {
        sk_loop_del(hc->w->loop, &ws->client_w);
        goto fail;
    }
    ws->next = hc->w->ws_list;
    hc->w->ws_list = ws;
    hc->ws = ws;
    return;
fail:
    if (ws != NULL) {
        if (ws->upstream >= 0)
            close(ws->upstream);
        free(ws);
    }
    (void)MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

/* One direction: 1 moved bytes, 0 would block, -1 ended (EOF or error). */
static int ws_move(int from, int to, struct ws_dir *d)
{
    int moved = 0;
    for (;;) {
        if (d->len == 0) {
            ssize_t r = recv(from, d->buf, sizeof d->buf, 0);
            if (r == 0)
                return -1;
            if (r < 0)
                return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? moved : -1;
            d->off = 0;
            d->len = (size_t)r;
        }
        while (d->len > 0) {
            ssize_t w = send(to, d->buf + d->off, d->len, MSG_NOSIGNAL);
            if (w < 0)
                return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 1 : -1;
            d->off += (size_t)w;
            d->len -= (size_t)w;
            moved = 1;
        }
    }
}

/* 1 while the WebSocket may go on: certificate not revoked, CRL fresh, session
 * still there (not logged out, revoked or ended by a password change) and within
 * its absolute lifetime. */
static int ws_still_allowed(struct hconn *hc)
{
    sk_http *h = hc->h;
    struct ws_relay *ws = hc->ws;
    sk_wire_lookup_req q;
    sk_wire_lookup_rep *p;
    int found = 0;
    if (h->d.net != NULL && (!sk_net_crl_usable(h->d.net) || sk_net_serial_revoked(h->d.net, hc->c->serial)))
        return 0;
    if (http_now_s() - ws->sess_created >= h->pol.absolute_timeout)
        return 0;
    p = malloc(sizeof *p);
    if (p == NULL)
        return 1; /* keep the relay; the next check decides */
    memset(&q, 0, sizeof q);
    q.has_session = 1;
    memcpy(q.hash, ws->sess_hash, sizeof q.hash);
    if (sk_strlcpy(q.who.tenant, sizeof q.who.tenant, hc->c->tenant) == 0 &&
        sk_strlcpy(q.who.id, sizeof q.who.id, hc->c->user) == 0 && http_authd(h, SK_WIRE_AUTH_LOOKUP, &q, p) == 0)
        found = p->session_found;
    sk_wipe(p, sizeof *p);
    free(p);
    return found;
}

/* Ends the relay: the upstream socket is closed, libmicrohttpd closes the client's
 * stream (and with it the TLS connection). */
void http_ws_end(struct hconn *hc)
{
    struct ws_relay *ws = hc->ws;
    if (ws == NULL || ws->done)
        return;
    ws->done = 1;
    sk_loop_del(hc->w->loop, &ws->client_w);
    sk_loop_del(hc->w->loop, &ws->upstream_w);
    ws_unlink(ws);
    close(ws->upstream);
    ws->upstream = -1;
    (void)MHD_upgrade_action(ws->urh, MHD_UPGRADE_ACTION_CLOSE);
    hc->w->run_mhd = 1; /* the close happens in MHD_run */
}

void http_ws_relay_run(struct hconn *hc)
{
    struct ws_relay *ws = hc->ws;
    int64_t now = http_mono_us() / 1000;
    if (ws == NULL || ws->done)
        return;
    if (now >= ws->next_check_ms) {
        ws->next_check_ms = now + 1000;
        if (!ws_still_allowed(hc)) {
            sk_log(SK_LOG_INFO, "WebSocket of %s/%s closed: certificate or session no longer valid", hc->c->tenant,
                   hc->c->user);
            http_ws_end(hc);
            return;
        }
    }
    if (ws_move(ws->client, ws->upstream, &ws->c2u) < 0 || ws_move(ws->upstream, ws->client, &ws->u2c) < 0)
        http_ws_end(hc); /* either side is gone: end both */
}

void http_ws_free(struct hconn *hc)
{
    if (hc->ws == NULL)
        return;
    http_ws_end(hc);
    free(hc->ws);
    hc->ws = NULL;
}

static enum MHD_Result ws_respond(struct req *rq, struct MHD_Connection *mc)
{
    sk_proxy_req *px = rq->px;
    struct MHD_Response *r = MHD_create_response_for_upgrade(ws_upgraded, rq);
    enum MHD_Result ret;
    if (r == NULL)
        return MHD_NO;
    http_up_unwatch(rq); /* the WebSocket relay watches that socket from now on */
    for (size_t i = 0; i < sk_proxy_header_count(px); i++) {
        const char *name = sk_proxy_header_name(px, i), *value = sk_proxy_header_value(px, i);
        char folded[128];
        /* The 101's own Upgrade and Sec-WebSocket-* headers pass; libmicrohttpd
         * writes Connection itself. */
        if (sk_req_hdr_fold(name, folded, sizeof folded) != 0 || strcmp(folded, "connection") == 0 ||
            strcmp(folded, "keep-alive") == 0 || strcmp(folded, "transfer-encoding") == 0 ||
            strcmp(folded, "content-length") == 0)
            continue;
        (void)MHD_add_response_header(r, name, value);
    }
    rq->status = 101;
    ret = MHD_queue_response(mc, MHD_HTTP_SWITCHING_PROTOCOLS, r);
    MHD_destroy_response(r);
    return ret;
}

/* libmicrohttpd zeroes a response's whole block at creation (calloc), and a
 * fresh 32 KiB per response also faulted its pages in: a tenth of the network
 * process's CPU for a small page. A body of known length gets a block its size. */
#define BODY_BLOCK_MIN 1024
#define BODY_BLOCK_MAX (32 * 1024)
static size_t body_block(int64_t content_length)
{
    if (content_length < 0 || content_length > BODY_BLOCK_MAX)
        return BODY_BLOCK_MAX;
    return content_length < BODY_BLOCK_MIN ? BODY_BLOCK_MIN : (size_t)content_length;
}

enum MHD_Result http_proxy_respond(struct req *rq, struct MHD_Connection *mc, const char *method)
{
    sk_proxy_req *px = rq->px;
    struct MHD_Response *r;
    const char *conn_tokens = NULL;
    enum MHD_Result ret;
    int64_t cl;

    if (rq->upstream_failed) {
        atomic_fetch_add(&rq->h->ctr->upstream_errors, 1);
        return http_respond_error(rq, mc, rq->timed_out ? MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_BAD_GATEWAY, 1);
    }
    if (sk_proxy_upgraded(px))
        return ws_respond(rq, mc);
    cl = sk_proxy_content_length(px);
    if (!sk_proxy_has_body(px) && strcmp(method, "HEAD") != 0)
        r = MHD_create_response_from_buffer(0, (void *)(uintptr_t)"", MHD_RESPMEM_PERSISTENT);
    else
        r = MHD_create_response_from_callback(cl >= 0 ? (uint64_t)cl : MHD_SIZE_UNKNOWN, body_block(cl), body_reader,
                                              rq, NULL);
    if (r == NULL)
        return MHD_NO;
    for (size_t i = 0; i < sk_proxy_header_count(px); i++)
        if (strcasecmp(sk_proxy_header_name(px, i), "Connection") == 0)
            conn_tokens = sk_proxy_header_value(px, i);
    for (size_t i = 0; i < sk_proxy_header_count(px); i++) {
        const char *name = sk_proxy_header_name(px, i), *value = sk_proxy_header_value(px, i);
        char folded[128];
        if (sk_req_hdr_fold(name, folded, sizeof folded) != 0 || sk_req_hdr_response_drop(folded) ||
            (conn_tokens && sk_req_hdr_in_tokens(folded, conn_tokens)))
            continue;
        /* The upstream cannot set or clear the gateway's own cookie. */
        if (strcmp(folded, "set-cookie") == 0 && strncmp(value, COOKIE_NAME, sizeof COOKIE_NAME - 1) == 0)
            continue;
        (void)MHD_add_response_header(r, name, value);
    }
    rq->status = sk_proxy_status(px);
    http_hist_observe(&rq->h->ctr->lat_upstream, http_mono_us() - rq->start_us);
    ret = MHD_queue_response(mc, (unsigned)rq->status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result http_unauthenticated(struct req *rq, struct MHD_Connection *mc, const char *method,
                                       enum sess_result why, int has_body)
{
    const char *accept = http_header(mc, "Accept");
    char loc[RETURN_MAX * 3 + 64];
    sk_buf b;
    if (accept != NULL && strstr(accept, "text/html") != NULL &&
        (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)) {
        sk_buf_init(&b, loc, sizeof loc);
        sk_buf_puts(&b, "/.sekisho/login?return=");
        http_buf_urlencode(&b, sk_req_return_path(rq->raw_uri));
        if (why == SESS_IDLE)
            sk_buf_puts(&b, "&msg=idle");
        else if (why == SESS_EXPIRED)
            sk_buf_puts(&b, "&msg=expired");
        if (sk_buf_finish(&b) != 0)
            return http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
        return http_respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, loc, NULL, has_body);
    }
    return http_respond(mc, MHD_HTTP_UNAUTHORIZED, "text/plain; charset=utf-8", "authentication required\n", 24, NULL,
                   NULL, has_body);
}
