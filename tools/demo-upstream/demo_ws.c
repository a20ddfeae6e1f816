/* sekisho-demo-upstream: /ws, a WebSocket echo (RFC 6455) for the gateway's
 * upgrade passthrough tests. Frames are decoded (clients mask them) and echoed back
 * unmasked; ping gets pong; close is answered and ends the connection. */
#include "demo_ws.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_PAYLOAD (1u << 20)

struct sk_demo_ws_conn {
    MHD_socket sock;
    struct MHD_UpgradeResponseHandle *urh;
    char extra[4096];
    size_t extra_len, extra_off;
};

static int sk_demo_ws_read(struct sk_demo_ws_conn *w, void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r;
        if (w->extra_off < w->extra_len) {
            size_t k = w->extra_len - w->extra_off < n ? w->extra_len - w->extra_off : n;
            memcpy(p, w->extra + w->extra_off, k);
            w->extra_off += k;
            p += k;
            n -= k;
            continue;
        }
        r = recv(w->sock, p, n, 0);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int sk_demo_ws_send(MHD_socket s, unsigned opcode, const unsigned char *data, uint64_t n)
{
    unsigned char hdr[10];
    size_t hl = 2;
    hdr[0] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        hdr[1] = (unsigned char)n;
    } else if (n < 65536) {
        hdr[1] = 126;
        hdr[2] = (unsigned char)(n >> 8);
        hdr[3] = (unsigned char)n;
        hl = 4;
    } else {
        hdr[1] = 127;
        for (int i = 0; i < 8; i++)
            hdr[2 + i] = (unsigned char)(n >> (56 - 8 * i));
        hl = 10;
    }
    if (send(s, hdr, hl, MSG_NOSIGNAL) != (ssize_t)hl)
        return -1;
    while (n > 0) {
        ssize_t w = send(s, data, (size_t)n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        data += w;
        n -= (uint64_t)w;
    }
    return 0;
}

static void *sk_demo_ws_echo(void *arg)
{
    struct sk_demo_ws_conn *w = arg;
    unsigned char *payload = malloc(WS_MAX_PAYLOAD);
    int fl = fcntl(w->sock, F_GETFL);
    /* libmicrohttpd hands the socket over non-blocking; this thread simply waits. */
    if (fl < 0 || fcntl(w->sock, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        free(payload);
        payload = NULL;
    }
    for (;;) {
        unsigned char h[2], mask[4], ext[8];
        uint64_t n;
        unsigned opcode;
        if (payload == NULL || sk_demo_ws_read(w, h, 2) != 0)
            break;
        opcode = h[0] & 0x0f;
        n = h[1] & 0x7f;
        if (n == 126) {
            if (sk_demo_ws_read(w, ext, 2) != 0)
                break;
            n = (uint64_t)ext[0] << 8 | ext[1];
        } else if (n == 127) {
            if (sk_demo_ws_read(w, ext, 8) != 0)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | ext[i];
        }
        /* RFC 6455 5.1: a server closes on an unmasked client frame. */
        if (!(h[1] & 0x80) || n > WS_MAX_PAYLOAD || sk_demo_ws_read(w, mask, 4) != 0 ||
            sk_demo_ws_read(w, payload, (size_t)n) != 0)
            break;
        for (uint64_t i = 0; i < n; i++)
            payload[i] ^= mask[i & 3];
        if (opcode == 0x8) {
            (void)sk_demo_ws_send(w->sock, 0x8, payload, n);
            break;
        }
        if (sk_demo_ws_send(w->sock, opcode == 0x9 ? 0xA : opcode, payload, n) != 0)
            break;
    }
    free(payload);
    (void)MHD_upgrade_action(w->urh, MHD_UPGRADE_ACTION_CLOSE);
    free(w);
    return NULL;
}

static void sk_demo_ws_upgraded(void *cls, struct MHD_Connection *c, void *con_cls, const char *extra_in,
                                size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct sk_demo_ws_conn *w = calloc(1, sizeof *w);
    pthread_t t;
    if (w == NULL || extra_in_size > sizeof w->extra) {
        free(w);
        (void)MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    w->sock = sock;
    w->urh = urh;
    memcpy(w->extra, extra_in, extra_in_size);
    w->extra_len = extra_in_size;
    if (pthread_create(&t, NULL, sk_demo_ws_echo, w) != 0) {
        free(w);
        (void)MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    pthread_detach(t);
}

enum MHD_Result sk_demo_ws(struct MHD_Connection *c)
{
    const char *up = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Upgrade");
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    unsigned char digest[SHA_DIGEST_LENGTH], accept[32];
    char in[128];
    struct MHD_Response *r;
    enum MHD_Result ret;
    size_t kl;

    if (up == NULL || strcasecmp(up, "websocket") != 0 || key == NULL || (kl = strlen(key)) == 0 ||
        kl + sizeof WS_GUID > sizeof in) {
        r = MHD_create_response_from_buffer(18, (void *)"websocket expected", MHD_RESPMEM_PERSISTENT);
        if (r == NULL)
            return MHD_NO;
        ret = MHD_queue_response(c, MHD_HTTP_BAD_REQUEST, r);
        MHD_destroy_response(r);
        return ret;
    }
    memcpy(in, key, kl);
    memcpy(in + kl, WS_GUID, sizeof WS_GUID);
    SHA1((const unsigned char *)in, kl + sizeof WS_GUID - 1, digest);
    EVP_EncodeBlock(accept, digest, sizeof digest);
    r = MHD_create_response_for_upgrade(sk_demo_ws_upgraded, NULL);
    if (r == NULL)
        return MHD_NO;
    (void)MHD_add_response_header(r, "Upgrade", "websocket");
    (void)MHD_add_response_header(r, "Sec-WebSocket-Accept", (const char *)accept);
    ret = MHD_queue_response(c, MHD_HTTP_SWITCHING_PROTOCOLS, r);
    MHD_destroy_response(r);
    return ret;
}
