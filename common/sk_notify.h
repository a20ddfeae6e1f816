/*
 * sk_notify.h — mail to people through the system's `sendmail -t` interface.
 *
 * Contracts:
 *  - The command ([notify] command) comes from the operator's configuration and is run
 *    with /bin/sh -c; the message (headers + body) goes to its standard input.
 *  - Addresses and subject must not contain CR, LF or NUL (header injection): such a
 *    message is refused with -1 and nothing runs.
 *  - The call waits at most SK_NOTIFY_TIMEOUT seconds, then kills the command. It
 *    blocks the calling thread: call it from maintenance threads, never on a request.
 */
#ifndef SK_NOTIFY_H
#define SK_NOTIFY_H

#include "sk_util.h"

#define SK_NOTIFY_TIMEOUT 20

struct sk_notify_msg {
    const char *from;     /* may be NULL: the MTA's default */
    const char *to;       /* one address or a comma-separated list */
    const char *subject;  /* UTF-8; encoded per RFC 2047 when not ASCII */
    const char *body;     /* UTF-8 text */
};

/* 0 if the command ran and exited 0. */
int sk_notify_send(const char *command, const struct sk_notify_msg *m) SK_MUST_CHECK;

#endif
