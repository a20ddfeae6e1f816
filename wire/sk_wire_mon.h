/*
 * sk_wire_mon.h — what the children send the monitor.
 *
 * NOTIFY: a mail for the operators or a user. The children run no commands (their
 * sandbox forbids execve); they post the mail here (sk_notify's transport, see
 * sk_notify.h) and the monitor runs [notify] command. Posted: no reply. The monitor
 * applies the same header checks again before anything runs.
 */
#ifndef SK_WIRE_MON_H
#define SK_WIRE_MON_H

#include "sk_wire.h"

#define SK_WIRE_MAIL_ADDR_MAX 1024
#define SK_WIRE_MAIL_SUBJECT_MAX 512
#define SK_WIRE_MAIL_BODY_MAX 16384

typedef struct sk_wire_notify {
    int32_t level;                          /* enum sk_notify_level */
    char from[SK_WIRE_MAIL_ADDR_MAX];       /* "" = the MTA's default */
    char to[SK_WIRE_MAIL_ADDR_MAX];
    char subject[SK_WIRE_MAIL_SUBJECT_MAX];
    char body[SK_WIRE_MAIL_BODY_MAX];
} sk_wire_notify;

int sk_wire_notify_encode(const sk_wire_notify *m, sk_wire_w *w) SK_MUST_CHECK;
/* Zeroes *out first and on failure. level must be 0..3. */
int sk_wire_notify_decode(const void *payload, size_t len, sk_wire_notify *out) SK_MUST_CHECK;

/* An sk_notify transport (sk_notify_set_transport) for a child: ctx is the
 * sk_wire_client of its channel to the monitor; the mail is posted, never waited for. */
struct sk_notify_msg;
int sk_wire_notify_transport(void *ctx, const struct sk_notify_msg *m, int level);

#endif
