/* wire_mon.c — codec of the monitor's messages (sk_wire_mon.h). */
#include <string.h>

#include <stdlib.h>

#include "sk_notify.h"
#include "sk_wire_mon.h"

int sk_wire_notify_encode(const sk_wire_notify *m, sk_wire_w *w)
{
    sk_wire_put_i32(w, m->level);
    sk_wire_put_str(w, m->from, sizeof m->from);
    sk_wire_put_str(w, m->to, sizeof m->to);
    sk_wire_put_str(w, m->subject, sizeof m->subject);
    sk_wire_put_str(w, m->body, sizeof m->body);
    return sk_wire_w_ok(w);
}

int sk_wire_notify_decode(const void *payload, size_t len, sk_wire_notify *out)
{
    sk_wire_r r;
    memset(out, 0, sizeof *out);
    sk_wire_r_init(&r, payload, len);
    out->level = sk_wire_get_i32(&r);
    sk_wire_get_str(&r, out->from, sizeof out->from);
    sk_wire_get_str(&r, out->to, sizeof out->to);
    sk_wire_get_str(&r, out->subject, sizeof out->subject);
    sk_wire_get_str(&r, out->body, sizeof out->body);
    if (sk_wire_r_end(&r) != 0 || out->level < 0 || out->level > 3) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    return 0;
}

int sk_wire_notify_transport(void *ctx, const struct sk_notify_msg *m, int level)
{
    sk_wire_notify *n = calloc(1, sizeof *n);
    uint8_t *buf = malloc(SK_WIRE_MAX);
    sk_wire_w w;
    int rc = -1;
    if (n == NULL || buf == NULL)
        goto out;
    n->level = level;
    if ((m->from != NULL && sk_strlcpy(n->from, sizeof n->from, m->from) != 0) ||
        sk_strlcpy(n->to, sizeof n->to, m->to) != 0 || sk_strlcpy(n->subject, sizeof n->subject, m->subject) != 0 ||
        sk_strlcpy(n->body, sizeof n->body, m->body) != 0) {
        sk_log(SK_LOG_ERR, "mail too large for the monitor, dropped: %s", m->subject);
        goto out;
    }
    sk_wire_w_init(&w, buf, SK_WIRE_MAX);
    if (sk_wire_notify_encode(n, &w) == 0 && sk_wire_post(ctx, SK_WIRE_MON_NOTIFY, buf, w.len) == 0)
        rc = 0;
out:
    free(n);
    free(buf);
    return rc;
}
