/*
 * sekisho-demo-upstream — plain-HTTP "admin portal" behind the gateway (demo, tests, bench).
 * /: greeting page; /echo: JSON of method, path, query and every header as received
 * ([name, value] pairs in arrival order); /download?bytes=N: byte i = (i*31+7) & 0xff from
 * a reader callback; /upload: body hashed as it arrives (?pace=MS: MS ms per 64 KiB read);
 * /slow?ms=N: answers after N ms; /status/NNN. Loopback use only.
 */
#include "demo_ws.h"
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sk_util.h"
#define SK_DEMO_MAX_DOWNLOAD (UINT64_C(1) << 40)
static int sk_demo_log_requests;

/* Per-request state: every body is hashed so /upload can report what arrived. */
typedef struct sk_demo_req {
    EVP_MD_CTX *md;
    uint64_t body_bytes;
    uint64_t download; /* /download size, read by the content reader */
    int failed;
} sk_demo_req;

static void sk_demo_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    sk_demo_req *r = *con_cls;

    if (r != NULL)
        EVP_MD_CTX_free(r->md);
    free(r);
    *con_cls = NULL;
}

static enum MHD_Result sk_demo_queue(struct MHD_Connection *c, unsigned int status,
                                     const char *type, const char *body, size_t len)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    ret = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (ret == MHD_YES)
        ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result sk_demo_queue_json(struct MHD_Connection *c, unsigned int status, json_t *j)
{
    enum MHD_Result ret = MHD_NO;
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

    if (s != NULL)
        ret = sk_demo_queue(c, status, "application/json", s, strlen(s));
    free(s);
    json_decref(j);
    return ret;
}

/* json_string, but with bytes of invalid UTF-8 turned into '?': a test must see
 * every header, even one that a client filled with garbage. */
static json_t *sk_demo_jstr(const char *s)
{
    json_t *j = json_string(s != NULL ? s : "");
    char *copy;
    size_t i;

    if (j != NULL || s == NULL || (copy = strdup(s)) == NULL)
        return j;
    for (i = 0; copy[i] != '\0'; i++)
        if ((unsigned char)copy[i] >= 0x80)
            copy[i] = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

typedef struct sk_demo_collector {
    json_t *dst; /* array of [name, value] pairs, or object name -> value */
    int failed;
} sk_demo_collector;

static enum MHD_Result sk_demo_collect(void *cls, enum MHD_ValueKind kind, const char *k,
                                       const char *v)
{
    sk_demo_collector *col = cls;
    json_t *key = sk_demo_jstr(k), *val = sk_demo_jstr(v);
    int rc = json_is_array(col->dst) ? json_array_append_new(col->dst, json_pack("[OO]", key, val))
             : key == NULL           ? -1
                                     : json_object_set(col->dst, json_string_value(key), val);

    json_decref(key);
    json_decref(val);
    col->failed |= rc != 0;
    return rc == 0 ? MHD_YES : MHD_NO;
}

static enum MHD_Result sk_demo_echo(struct MHD_Connection *c, const char *method,
                                    const char *url, const sk_demo_req *r)
{
    sk_demo_collector hdrs = { json_array(), 0 }, query = { json_object(), 0 };
    json_t *j = json_pack("{s:s, s:s, s:o, s:o, s:I}", "method", method, "path", url,
                          "query", query.dst, "headers", hdrs.dst, "body_bytes",
                          (json_int_t)r->body_bytes);

    if (j == NULL)
        return MHD_NO;
    if (MHD_get_connection_values(c, MHD_HEADER_KIND, sk_demo_collect, &hdrs) < 0 ||
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, sk_demo_collect, &query) < 0 ||
        hdrs.failed || query.failed) {
        json_decref(j);
        return sk_demo_queue(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "echo\n", 5);
    }
    return sk_demo_queue_json(c, MHD_HTTP_OK, j);
}

static enum MHD_Result sk_demo_portal(struct MHD_Connection *c)
{
    char page[8192];
    const char *user = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Sekisho-User");
    const char *tenant = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Sekisho-Tenant");
    const char *roles = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Sekisho-Roles");
    sk_buf b;

    sk_buf_init(&b, page, sizeof(page));
    sk_buf_puts(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                    "<title>Demo admin portal</title></head><body>\n"
                    "<h1>Demo admin portal</h1>\n<p>Welcome, <b>");
    sk_buf_html(&b, user != NULL ? user : "(no X-Sekisho-User: not behind Sekisho?)");
    sk_buf_puts(&b, "</b>.</p>\n<ul><li>Tenant: ");
    sk_buf_html(&b, tenant != NULL ? tenant : "-");
    sk_buf_puts(&b, "</li><li>Roles: ");
    sk_buf_html(&b, roles != NULL ? roles : "-");
    sk_buf_puts(&b, "</li></ul>\n<p><a href=\"/echo\">Request as seen by the portal</a></p>\n"
                    "<form method=\"get\" action=\"/.sekisho/logout\">"
                    "<button>Log out</button></form>\n</body></html>\n");
    if (sk_buf_finish(&b) != 0)
        return MHD_NO;
    return sk_demo_queue(c, MHD_HTTP_OK, "text/html; charset=utf-8", b.data, b.len);
}

static ssize_t sk_demo_pattern(void *cls, uint64_t pos, char *buf, size_t max)
{
    uint64_t total = *(const uint64_t *)cls;
    size_t n, i;

    if (pos >= total)
        return MHD_CONTENT_READER_END_OF_STREAM;
    n = (total - pos < max) ? (size_t)(total - pos) : max;
    for (i = 0; i < n; i++)
        buf[i] = (char)(((pos + i) * 31 + 7) & 0xff);
    return (ssize_t)n;
}

static enum MHD_Result sk_demo_download(struct MHD_Connection *c, sk_demo_req *r)
{
    const char *arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "bytes");
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (arg == NULL || sk_parse_u64(arg, 0, SK_DEMO_MAX_DOWNLOAD, &r->download) != 0)
        return sk_demo_queue(c, MHD_HTTP_BAD_REQUEST, "text/plain", "bad bytes=\n", 11);
    /* r outlives the response: MHD reports completion after the last byte. */
    resp = MHD_create_response_from_callback(r->download, 64 * 1024, sk_demo_pattern,
                                             &r->download, NULL);
    if (resp == NULL)
        return MHD_NO;
    ret = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    if (ret == MHD_YES)
        ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result sk_demo_upload(struct MHD_Connection *c, sk_demo_req *r)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    unsigned int mdlen = 0;

    if (r->failed || EVP_DigestFinal_ex(r->md, md, &mdlen) != 1)
        return sk_demo_queue(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "hash\n", 5);
    sk_hex_encode(md, mdlen, hex);
    return sk_demo_queue_json(c, MHD_HTTP_OK, json_pack("{s:I, s:s}", "bytes",
                                                        (json_int_t)r->body_bytes, "sha256", hex));
}

static enum MHD_Result sk_demo_handler(void *cls, struct MHD_Connection *c, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_size,
                                       void **con_cls)
{
    sk_demo_req *r = *con_cls;
    uint64_t code;

    if (r == NULL) {
        /* First call: headers only. Answering now would bypass the body. */
        if ((r = calloc(1, sizeof(*r))) == NULL)
            return MHD_NO;
        *con_cls = r; /* freed by sk_demo_completed whatever happens next */
        r->md = EVP_MD_CTX_new();
        if (r->md == NULL || EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1)
            return MHD_NO;
        if (sk_demo_log_requests)
            fprintf(stderr, "demo-upstream: %s %s\n", method, url);
        return MHD_YES;
    }
    if (*upload_size > 0) {
        /* /upload?pace=MS: a slow reader, MS ms per 64 KiB (tests backpressure). */
        const char *pace = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "pace");
        uint64_t ms;
        if (pace != NULL && sk_parse_u64(pace, 1, 1000, &ms) == 0)
            usleep((useconds_t)(ms * 1000 * *upload_size / 65536));
        if (EVP_DigestUpdate(r->md, upload_data, *upload_size) != 1)
            r->failed = 1;
        r->body_bytes += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/") == 0)
        return sk_demo_portal(c);
    if (strcmp(url, "/echo") == 0)
        return sk_demo_echo(c, method, url, r);
    if (strcmp(url, "/ws") == 0)
        return sk_demo_ws(c);
    if (strcmp(url, "/download") == 0)
        return sk_demo_download(c, r);
    if (strcmp(url, "/upload") == 0) {
        if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0)
            return sk_demo_queue(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "POST/PUT\n", 9);
        return sk_demo_upload(c, r);
    }
    if (strcmp(url, "/slow") == 0) {
        /* /slow?ms=N: answers after N ms (a slow portal page); this server runs a
         * thread per connection, so only this request waits. */
        const char *arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ms");
        uint64_t ms;
        if (arg == NULL || sk_parse_u64(arg, 0, 30000, &ms) != 0)
            return sk_demo_queue(c, MHD_HTTP_BAD_REQUEST, "text/plain", "bad ms=\n", 8);
        usleep((useconds_t)(ms * 1000));
        return sk_demo_queue(c, MHD_HTTP_OK, "text/plain", "slow\n", 5);
    }
    if (strncmp(url, "/status/", 8) == 0 && sk_parse_u64(url + 8, 200, 599, &code) == 0)
        return sk_demo_queue(c, (unsigned int)code, "text/plain", "status\n", 7);
    return sk_demo_queue(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10);
}

/* "A.B.C.D:PORT": the peer is meant for loopback only, IPv4 keeps it simple. */
static int sk_demo_parse_listen(const char *spec, struct sockaddr_in *sin)
{
    char host[INET_ADDRSTRLEN], port[8], tail;
    uint64_t p;

    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    if (sscanf(spec, "%15[0-9.]:%7[0-9]%c", host, port, &tail) != 2 ||
        sk_parse_u64(port, 1, 65535, &p) != 0 || inet_pton(AF_INET, host, &sin->sin_addr) != 1)
        return -1;
    sin->sin_port = htons((uint16_t)p);
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sin;
    struct MHD_Daemon *d;
    sigset_t set;
    int sig = 0, i;
    const char *listen_spec = NULL;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen_spec = argv[++i];
        else if (strcmp(argv[i], "--log") == 0)
            sk_demo_log_requests = 1;
        else
            break;
    }
    if (listen_spec == NULL || i < argc || sk_demo_parse_listen(listen_spec, &sin) != 0) {
        fprintf(stderr, "usage: sekisho-demo-upstream --listen 127.0.0.1:PORT [--log]\n");
        return 2;
    }
    /* Block the signals in every thread; main collects them with sigwait. */
    if (sigemptyset(&set) != 0 || sigaddset(&set, SIGINT) != 0 || sigaddset(&set, SIGTERM) != 0 ||
        sigaddset(&set, SIGPIPE) != 0 || pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return 1;
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                             MHD_USE_POLL | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG,
                         0, NULL, NULL, sk_demo_handler, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                         MHD_OPTION_NOTIFY_COMPLETED, sk_demo_completed, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
                         /* The benchmark runs several front ends against one upstream
                          * in turn; each keeps idle keep-alive connections for a
                          * while, which together passed 512 at 256 clients. */
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned int)2048,
                         MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
                         MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "sekisho-demo-upstream: cannot listen on %s: %s\n", listen_spec,
                strerror(errno));
        return 1;
    }
    fprintf(stderr, "sekisho-demo-upstream: listening on http://%s\n", listen_spec);
    sigdelset(&set, SIGPIPE);
    while (sig != SIGINT && sig != SIGTERM && sigwait(&set, &sig) == 0)
        ;
    MHD_stop_daemon(d);
    return 0;
}
