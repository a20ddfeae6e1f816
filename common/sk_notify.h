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

/* Alert levels of operator mail (SK_NOTIFY_PERSONAL: a mail to a user). An
 * operator mail carries its level at the end of the subject (" [major]") and in
 * the header "X-Sekisho-Alert-Level: major"; [notify] operators_LEVEL routes it
 * (sk_conf_operators_for). What each level means:
 *   warning  something to look at when convenient (a user without an address)
 *   minor    an account or certificate needs an operator soon (dormancy lock,
 *            deletion, CRL close to its nextUpdate)
 *   major    service or security at stake now (failed-login burst, CRL expired so
 *            everyone is refused, audit log not writable) */
enum sk_notify_level {
    SK_NOTIFY_PERSONAL = 0,
    SK_NOTIFY_WARNING = 1,
    SK_NOTIFY_MINOR = 2,
    SK_NOTIFY_MAJOR = 3,
};

struct sk_notify_msg {
    const char *from;     /* may be NULL: the MTA's default */
    const char *to;       /* one address or a comma-separated list */
    const char *subject;  /* UTF-8; encoded per RFC 2047 when not ASCII */
    const char *body;     /* UTF-8 text */
};

/* "warning", "minor", "major"; NULL for SK_NOTIFY_PERSONAL or out of range. */
const char *sk_notify_level_name(int level);

/* 0 if the command ran and exited 0. A personal mail (no alert level). */
int sk_notify_send(const char *command, const struct sk_notify_msg *m) SK_MUST_CHECK;
/* The same with an alert level (enum sk_notify_level) in subject and header. */
int sk_notify_send_level(const char *command, const struct sk_notify_msg *m, int level) SK_MUST_CHECK;

/* A process that may not run commands (the sandboxed children of the monitor) hands
 * its mail to a transport instead: once set, sk_notify_send_level calls fn(ctx, m,
 * level) for every mail that passes the header checks, and runs nothing itself
 * (command is still required: no command configured means no mail). fn returns 0
 * when it accepted the mail. Set it once, before any thread sends mail. */
typedef int (*sk_notify_transport)(void *ctx, const struct sk_notify_msg *m, int level);
void sk_notify_set_transport(sk_notify_transport fn, void *ctx);

/* The mail outbox ([notify] outbox): when DIR is set (not NULL or ""), this
 * process no longer runs the command but writes each message, exactly what the
 * command would have read, as DIR/new/<time>.<pid>.<random>.eml: written and
 * synced in DIR/tmp, then renamed into DIR/new, so a reader never sees half a
 * mail. sekisho-mail.service hands them to `sendmail -t` outside the gateway's
 * sandbox (NoNewPrivileges=yes forbids a setgid sendmail; see the README). Creates
 * DIR, DIR/tmp, DIR/new and DIR/hold (0700). Call before any thread sends mail. */
int sk_notify_set_outbox(const char *dir) SK_MUST_CHECK;

/* How many mails this process failed to send (for metrics). */
uint64_t sk_notify_failures(void);

#endif
