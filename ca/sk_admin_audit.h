/*
 * sk_admin_audit.h — audit entries of the operator tools (library
 * `sekisho_adminaudit`, used by sekishoctl and sekisho-ca; prefix sk_adm_).
 *
 * Every state change made by sekishoctl or sekisho-ca is recorded in the same
 * audit log the gateway writes ([audit] dir, key, retention of the gateway's
 * configuration) as one durable SK_AUDIT_EV_ADMIN ("admin.change") entry:
 *
 *   actor    the operator: login name of the effective uid, plus the invoking
 *            user when run through sudo: "root (sudo: alice)"
 *   tenant   the tenant the change applies to (NULL when none)
 *   serial   a certificate serial (sekisho-ca), else NULL
 *   details  {"command": "user.add" | "ca.issue" | ..., "tool": "sekishoctl" |
 *             "sekisho-ca", "uid": "<effective uid>", ...the caller's pairs}
 *
 * Audit before act. A tool opens the log (sk_adm_open) BEFORE it touches any
 * state and refuses the command when that fails: a change that cannot be
 * recorded does not happen. The entry itself is appended after the change
 * (it records the outcome); if that append fails the tool exits 1 saying so.
 * Secrets (passwords, TOTP secrets and URIs, private keys, PKCS#12 passwords)
 * must never be passed in kv.
 *
 * Key creation. Like the gateway (gateway/main.c open_audit), sk_adm_open
 * creates the signing key ([audit] key, 0600) and KEY.pub when NEITHER exists:
 * the first tool or gateway to run on a fresh install makes the key, so
 * "install, add a user, start the gateway" works and every change of that
 * first session is already signed. A lone KEY.pub means the key was removed:
 * that is refused, never papered over with a new key.
 *
 * Ownership. The gateway runs as an unprivileged user (dist/sekisho.service)
 * and owns the audit directory; an operator tool often runs as root (sudo, the
 * CRL timer). Files root would create there (a new day's segment) would lock
 * the gateway out of its own log. So when the effective uid is 0 and the audit
 * directory (or, before it exists, its parent) belongs to another user, the
 * tool switches its effective uid/gid to that owner for every audit operation
 * (open, append, close) and back to root afterwards; it then reads the key
 * with the gateway's rights, not root's. The tools are single-threaded.
 *
 * auditd (issue 9). While the gateway runs, auditd is the only writer of the
 * log: sk_adm_open first connects to its ctl socket "<[state] dir>/auditd.sock"
 * (sk_auditd.h). When something answers there, every entry is submitted through
 * it (one connection per entry: APPEND durable, then FLUSH; sk_adm_change
 * returns 0 only after auditd's durable append did), and the tool never opens,
 * creates or checks audit.key and never switches uid for the audit. auditd
 * accepts root and its own uid only: another user gets an error, not a local
 * write. When nothing listens (no socket file, or a stale one: ENOENT,
 * ECONNREFUSED) the tool writes under the lock itself as described above. A
 * socket that cannot be reached for another reason (EACCES, ...) is an error:
 * auditd may run, so writing locally would make two writers. If auditd stops
 * between sk_adm_open and an append, that append fails (the tool says so).
 *
 * Error strings are one line, without the tool's prefix.
 */
#ifndef SK_ADMIN_AUDIT_H
#define SK_ADMIN_AUDIT_H

#include <stddef.h>
#include <stdio.h>

#include "sk_audit.h"
#include "sk_conf.h"
#include "sk_util.h"

#define SK_ADM_ACTOR_MAX 192
#define SK_ADM_MAX_KV 24

typedef struct sk_adm_audit sk_adm_audit;

/* The operator's name as described above, into out (truncated names end in
 * "..."; never fails). */
void sk_adm_actor(char *out, size_t cap);

/* Open the audit log of conf for tool ("sekishoctl", "sekisho-ca"). When the
 * key was created, a one-line notice naming KEY.pub goes to notice (may be
 * NULL). On failure err gets a one-line reason and nothing was changed. */
int sk_adm_open(const sk_conf *conf, const char *tool, FILE *notice, sk_adm_audit **out, char *err,
                size_t errcap) SK_MUST_CHECK;

/* Append one durable admin.change entry (details.command = command, then
 * tool, uid and kv[0..n), n <= SK_ADM_MAX_KV; a kv with a NULL value is
 * skipped). tenant and serial may be NULL. Returns after fdatasync. */
int sk_adm_change(sk_adm_audit *a, const char *command, const char *tenant, const char *serial,
                  const sk_audit_kv *kv, size_t n, char *err, size_t errcap) SK_MUST_CHECK;

/* Append one durable entry of another event (e.g. the sweep's
 * "account.dormancy"); actor NULL means the operator. details get "by" (the
 * operator) and "tool" after kv. */
int sk_adm_event(sk_adm_audit *a, const char *event, const char *actor, const char *tenant,
                 const sk_audit_kv *kv, size_t n, char *err, size_t errcap) SK_MUST_CHECK;

/* The operator string recorded as actor. */
const char *sk_adm_operator(const sk_adm_audit *a);

/* Write the closing signed checkpoint and release. NULL ok. */
void sk_adm_close(sk_adm_audit *a);

#endif
