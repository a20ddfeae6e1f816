/* The HTTP engine of a network worker: one libmicrohttpd daemon on the worker's
 * loop, connection lifetimes, and handlers that run off the loop on the auth pool
 * with their connection suspended. */
#include "http_int.h"

#include <stdint.h>


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


/* Set on an auth pool thread while it runs a handler: http_respond() then records the
 * answer instead of touching libmicrohttpd, which only its worker may call. */
static _Thread_local struct off_loop *tl_off;

static enum MHD_Result respond_now(struct MHD_Connection *mc, int status, const char *ctype, const char *body,
                                   size_t len, const char *location, const char *cookie, int close_conn);

/* Queue a gateway-made response. close_conn for anything after which the rest of the
 * byte stream cannot be trusted (bad framing, unread bodies). */
enum MHD_Result http_respond(struct MHD_Connection *mc, int status, const char *ctype, const char *body,
                               size_t len, const char *location, const char *cookie, int close_conn)
{
    struct off_loop *o = tl_off;
    if (o == NULL)
        return respond_now(mc, status, ctype, body, len, location, cookie, close_conn);
    if (o->answered)
        return MHD_NO;
    o->body = malloc(len + 1);
    o->location = location ? strdup(location) : NULL;
    if (o->body == NULL || (location && o->location == NULL) ||
        (cookie && sk_strlcpy(o->cookie, sizeof o->cookie, cookie) != 0))
        return MHD_NO;
    memcpy(o->body, body, len);
    o->len = len;
    o->status = status;
    o->ctype = ctype;
    o->close_conn = close_conn;
    o->answered = 1;
    return MHD_YES;
}

static enum MHD_Result respond_now(struct MHD_Connection *mc, int status, const char *ctype, const char *body,
                                   size_t len, const char *location, const char *cookie, int close_conn)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;
    if (r == NULL)
        return MHD_NO;
    http_add_security_headers(r);
    if (ctype)
        (void)MHD_add_response_header(r, "Content-Type", ctype);
    if (location && MHD_add_response_header(r, "Location", location) != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    if (cookie)
        (void)MHD_add_response_header(r, "Set-Cookie", cookie);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        (void)MHD_add_response_header(r, "Retry-After", "5");
    if (close_conn)
        (void)MHD_add_response_header(r, "Connection", "close");
    ret = MHD_queue_response(mc, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result http_respond_error(struct req *rq, struct MHD_Connection *mc, int status, int close_conn)
{
    char page[PAGE_MAX];
    sk_buf b;
    sk_buf_init(&b, page, sizeof page);
    if (sk_page_error(&b, rq->lang, status) != 0)
        return MHD_NO;
    return http_respond(mc, status, "text/html; charset=utf-8", b.data, b.len, NULL, NULL, close_conn);
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

void http_buf_urlencode(sk_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (is_unreserved(*p) || *p == '/')
            sk_buf_add(b, p, 1);
        else
            sk_buf_printf(b, "%%%02X", *p);
    }
}


void http_off_loop_free(struct off_loop *o)
{
    if (o == NULL)
        return;
    sk_wipe(o->cookie, sizeof o->cookie);
    free(o->body);
    free(o->location);
    free(o);
}

/* On an auth pool thread: run the handler, then hand the connection back to its
 * worker. The connection is suspended, so libmicrohttpd neither reads it nor frees
 * it meanwhile; the handler only reads the request's headers. */
static void off_loop_main(void *arg)
{
    struct off_loop *o = arg;
    struct req *rq = o->rq;
    struct hworker *w = o->w;
    uint64_t one = 1;

    int64_t t0 = http_mono_us();
    tl_off = o;
    (void)o->fn(rq, o->mc, rq->conn); /* an answer not recorded means MHD_NO: the connection closes */
    tl_off = NULL;
    if (rq->kind == K_LOGIN_POST)
        http_hist_observe(&rq->h->ctr->lat_login, http_mono_us() - t0);
    pthread_mutex_lock(&w->done_lock);
    o->done = 1;
    o->next = w->done_list;
    w->done_list = o;
    pthread_mutex_unlock(&w->done_lock);
    (void)!write(w->done_w.fd, &one, sizeof one);
}

enum MHD_Result http_off_loop(struct req *rq, struct MHD_Connection *mc, route_fn fn)
{
    struct hconn *hc = http_hconn_of(mc);
    struct off_loop *o;
    int r;

    if (hc == NULL || (o = calloc(1, sizeof *o)) == NULL)
        return MHD_NO;
    o->rq = rq;
    o->mc = mc;
    o->w = hc->w;
    o->fn = fn;
    rq->off = o;
    /* Queued before the suspension: the job may finish at once, but its completion
     * is taken up by this worker only after this handler has returned. */
    r = sk_auth_pool_run(rq->h->d.auth, off_loop_main, o);
    if (r == 0) {
        hc->w->pending++;
        MHD_suspend_connection(mc);
        return MHD_YES;
    }
    rq->off = NULL;
    http_off_loop_free(o);
    if (r == SK_AUTH_BUSY) {
        atomic_fetch_add(&rq->h->ctr->login_busy, 1);
        if (rq->kind == K_LOGIN_POST)
            return http_send_login_page(rq, mc, rq->conn, MHD_HTTP_SERVICE_UNAVAILABLE, SK_MSG_BUSY,
                                   sk_req_return_path(rq->f->f_return));
        return http_respond_error(rq, mc, MHD_HTTP_SERVICE_UNAVAILABLE, 0);
    }
    return http_respond_error(rq, mc, MHD_HTTP_SERVICE_UNAVAILABLE, 1);
}

/* The worker, after the resume: queue what the handler prepared. */
enum MHD_Result http_off_loop_answer(struct req *rq, struct MHD_Connection *mc)
{
    struct off_loop *o = rq->off;
    enum MHD_Result res = MHD_NO;
    if (!o->done)
        return MHD_YES; /* still running (a spurious call): stay suspended */
    rq->off = NULL;
    if (o->answered)
        res = respond_now(mc, o->status, o->ctype, o->body, o->len, o->location, o->cookie[0] ? o->cookie : NULL,
                          o->close_conn);
    http_off_loop_free(o);
    return res;
}

/* Wakes the worker when handlers it sent off the loop have finished. */
static void off_loop_finished(sk_loop_watch *lw, uint32_t events)
{
    struct hworker *w = (struct hworker *)((char *)lw - offsetof(struct hworker, done_w));
    struct off_loop *list, *next;
    uint64_t v;
    (void)events;
    while (read(lw->fd, &v, sizeof v) == (ssize_t)sizeof v)
        ;
    pthread_mutex_lock(&w->done_lock);
    list = w->done_list;
    w->done_list = NULL;
    pthread_mutex_unlock(&w->done_lock);
    for (; list != NULL; list = next) {
        next = list->next;
        w->pending--;
        MHD_resume_connection(list->mc);
    }
    (void)MHD_run(w->d);
}


static void hconn_unref(struct hconn *hc)
{
    if (--hc->refs > 0)
        return;
    http_ws_free(hc);
    free(hc->c);
    free(hc);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct hworker *w = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        /* Called from inside MHD_add_connection, on this worker's thread. */
        *socket_context = w->adding;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context != NULL) {
        http_req_abandon(*socket_context, mc);
        hconn_unref(*socket_context);
        *socket_context = NULL;
    }
}

/* Paths and query values are kept exactly as the client sent them, so the upstream
 * sees the same bytes; our own routes compare raw paths. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

/* libmicrohttpd hands us its own format strings; they are not client data. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    sk_log(SK_LOG_DEBUG, "mhd: %s", msg);
}

static void mhd_ready(sk_loop_watch *lw, uint32_t events)
{
    struct hworker *w = (struct hworker *)((char *)lw - offsetof(struct hworker, mhd_w));
    (void)events;
    (void)MHD_run(w->d);
}

void *sk_http_worker_open(void *arg, sk_loop *loop)
{
    sk_http *h = arg;
    const sk_conf *conf = h->d.conf;
    const union MHD_DaemonInfo *di;
    struct hworker *w = calloc(1, sizeof *w);

    if (w == NULL)
        return NULL;
    w->h = h;
    w->loop = loop;
    /* No thread and no listening socket of its own: connections come from the TLS
     * side through MHD_add_connection, and MHD_run is called from this worker's
     * loop when MHD's epoll descriptor is ready. */
    w->d = MHD_start_daemon(
        MHD_USE_NO_LISTEN_SOCKET | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_ALLOW_UPGRADE | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, http_on_request, h, MHD_OPTION_URI_LOG_CALLBACK, http_on_uri, h, MHD_OPTION_NOTIFY_COMPLETED,
        http_on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, w, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape,
        h, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)conf->request_timeout, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)SK_NET_MAX_CONNECTIONS_AUTO * 10, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
        MHD_OPTION_STRICT_FOR_CLIENT, (int)1, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_END);
    if (w->d == NULL || (di = MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_EPOLL_FD)) == NULL) {
        sk_log(SK_LOG_ERR, "cannot start the HTTP engine of a worker");
        goto fail;
    }
    w->mhd_w.fd = di->epoll_fd;
    w->mhd_w.on_event = mhd_ready;
    w->done_w.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->done_w.on_event = off_loop_finished;
    if (w->done_w.fd < 0 || pthread_mutex_init(&w->done_lock, NULL) != 0)
        goto fail;
    if (sk_loop_add(loop, &w->mhd_w, EPOLLIN) != 0 || sk_loop_add(loop, &w->done_w, EPOLLIN) != 0) {
        pthread_mutex_destroy(&w->done_lock);
        goto fail;
    }
    return w;
fail:
    if (w->d != NULL)
        MHD_stop_daemon(w->d);
    if (w->done_w.fd >= 0)
        close(w->done_w.fd);
    free(w);
    return NULL;
}

int sk_http_worker_run(void *wctx)
{
    struct hworker *w = wctx;
    MHD_UNSIGNED_LONG_LONG to = 0;
    int64_t now = http_mono_us() / 1000, next = -1;
    struct ws_relay *ws, *ws_next;

    /* WebSockets have no next request at which a revocation could bite. */
    for (ws = w->ws_list; ws != NULL; ws = ws_next) {
        ws_next = ws->next;
        if (now >= ws->next_check_ms)
            http_ws_relay_run(ws->hc);
        else if (next < 0 || ws->next_check_ms - now < next)
            next = ws->next_check_ms - now;
    }
    if (w->ws_list != NULL && next < 0)
        next = 1000;
    {
        int64_t up = http_up_expire(w, now);
        if (up >= 0 && (next < 0 || up < next))
            next = up;
    }
    http_refusal_tick(w->h);
    if (atomic_load(&w->h->refusals_pending) && (next < 0 || next > 1000))
        next = 1000; /* the summed journal line is due even when nothing else happens */
    if (w->run_mhd) {
        w->run_mhd = 0;
        (void)MHD_run(w->d);
    }
    if (MHD_get_timeout(w->d, &to) == MHD_YES) {
        if (to == 0) {
            (void)MHD_run(w->d);
            if (MHD_get_timeout(w->d, &to) != MHD_YES)
                return (int)next;
        }
        if (next < 0 || (int64_t)to < next)
            next = to > INT32_MAX ? INT32_MAX : (int64_t)to;
    }
    return (int)next;
}

int sk_http_worker_pending(void *wctx)
{
    struct hworker *w = wctx;
    return w->pending;
}

void sk_http_worker_close(void *wctx)
{
    struct hworker *w = wctx;
    if (w == NULL)
        return;
    /* Requests still waiting for the upstream (cut at the drain deadline) are failed
     * and resumed first: libmicrohttpd must not be stopped with connections it
     * cannot see. INT64_MAX makes every wait overdue. */
    (void)http_up_expire(w, INT64_MAX);
    (void)MHD_run(w->d);
    sk_loop_del(w->loop, &w->mhd_w);
    sk_loop_del(w->loop, &w->done_w);
    MHD_stop_daemon(w->d); /* closes what is left; NOTIFY_CLOSED frees each hconn */
    close(w->done_w.fd);
    pthread_mutex_destroy(&w->done_lock);
    free(w);
}

void *sk_http_conn_open(void *wctx, int fd, sk_conn *c)
{
    struct hworker *w = wctx;
    struct hconn *hc = calloc(1, sizeof *hc);

    if (hc == NULL) {
        close(fd);
        free(c);
        return NULL;
    }
    hc->w = w;
    hc->h = w->h;
    hc->c = c;
    hc->refs = 2; /* libmicrohttpd's side and the TLS side */
    w->adding = hc;
    /* On failure libmicrohttpd has closed fd and never reported the connection. */
    if (MHD_add_connection(w->d, fd, (const struct sockaddr *)&c->peer, c->peer_len) != MHD_YES) {
        w->adding = NULL;
        free(c);
        free(hc);
        return NULL;
    }
    w->adding = NULL;
    return hc;
}

int sk_http_conn_busy(void *ctx)
{
    struct hconn *hc = ctx;
    return hc->busy > 0 || (hc->ws != NULL && !hc->ws->done);
}

void sk_http_conn_close(void *ctx)
{
    struct hconn *hc = ctx;
    /* The TLS side is gone; libmicrohttpd notices the end of the stream itself. */
    if (hc->ws != NULL)
        http_ws_end(hc);
    hconn_unref(hc);
}
