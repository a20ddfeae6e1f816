/*
 * sk_auditd.h — auditd, the only writer of the audit log (issue 9), as a library
 * (`sekisho_auditd`, prefix sk_auditd_). The monitor forks auditd and calls
 * sk_auditd_run in it; every other process gets a remote sk_audit handle
 * (sk_auditd_client_open) and keeps calling the sk_audit_* API unchanged.
 *
 * Who holds what. auditd alone opens the audit key and the audit directory
 * (sk_audit_open in auditd's process, before sk_auditd_run). The network
 * workers and authd reach it over SOCK_SEQPACKET channels the monitor created
 * (sk_wire.h); each channel has a peer class fixed by the monitor. The operator
 * tools (sekishoctl, sekisho-ca) reach it over the ctl socket (below) as
 * SK_WIRE_PEER_CTL. What each class may send is wire.c's permit table: NET may
 * APPEND, REQUEST, REQUEST_BATCH, REFUSED, FLUSH, LAG; AUTHD and CTL may APPEND
 * and FLUSH.
 * Nobody can read, rewrite or delete entries through auditd, and no peer may
 * append an event named "audit.*" (those are the writer's own: checkpoints,
 * segments, epochs, prune, recover, truncated): such an APPEND is answered -1
 * and logged.
 *
 * The ctl socket: "<[state] dir>/auditd.sock" (sk_auditd_ctl_path), an AF_UNIX
 * SOCK_SEQPACKET listening socket, mode 0600, created by the monitor
 * (sk_auditd_ctl_listen, before any child drops privileges) and handed to
 * auditd. auditd accepts only peers whose SO_PEERCRED uid is 0 (sekishoctl run
 * through sudo, the CRL timer) or its own uid; anyone else is logged and
 * closed. At most SK_AUDITD_CTL_MAX ctl connections are served at once (more
 * wait in the listen backlog); one idle for SK_AUDITD_CTL_IDLE_MS is closed.
 * While auditd runs the tools submit their entries through it and never open
 * audit.key; when nothing listens (no socket file, or a stale one: ENOENT /
 * ECONNREFUSED) they write under the lock themselves (ca/sk_admin_audit.h).
 *
 * Housekeeping. sk_auditd_run calls sk_audit_flush about once a second and
 * sk_audit_prune once a day itself (on a remote handle prune and checkpoint are
 * no-ops), so the log is flushed, summarised, checkpointed and pruned whether
 * or not the clients send FLUSH.
 *
 * Restart. When auditd dies, the monitor restarts it on the same channel ends
 * and writes SK_WIRE_RESET into them: a client waiting for a reply fails at
 * once with ECONNRESET and the sk_audit_* call returns -1 (an append that was
 * not acknowledged; the caller handles it like any failed audit write).
 * Posted REQUEST/REQUEST_BATCH/REFUSED datagrams queued in the socket are
 * served by the new auditd; those auditd had read but not yet written are lost
 * (never acknowledged events, like a crash of the in-process writer).
 *
 * Request lines are batched by the client: a remote handle encodes each
 * sk_audit_request line into one buffer (no allocation per line) and sends
 * the buffer as one REQUEST_BATCH datagram when it holds
 * SK_WIRE_AUDIT_BATCH_MAX lines or SK_WIRE_AUDIT_BATCH_BYTES, when its oldest
 * line is SK_AUDITD_BATCH_MS old (checked at the next line, and by a flusher
 * thread the handle starts with its first line, so no line waits much longer
 * when traffic stops), before sk_audit_flush's FLUSH, and at sk_audit_close.
 * Lines keep their order. A crash of the sending process loses at most the
 * lines of its last few milliseconds (never an acknowledged append).
 *
 * Contracts: int functions return 0 on success and -1 on failure (errno set
 * for I/O) unless documented otherwise, and are SK_MUST_CHECK.
 */
#ifndef SK_AUDITD_H
#define SK_AUDITD_H

#include <stddef.h>

#include "sk_audit.h"
#include "sk_conf.h"
#include "sk_util.h"
#include "sk_wire.h"

#define SK_AUDITD_CTL_NAME "auditd.sock"
#define SK_AUDITD_CTL_MAX 8
#define SK_AUDITD_CTL_IDLE_MS (15 * 60 * 1000)
/* Client side: how long an APPEND or FLUSH waits for auditd (a durable append
 * includes an fdatasync), and a LAG (metrics must not hang). */
#define SK_AUDITD_CALL_TIMEOUT_MS 30000
#define SK_AUDITD_LAG_TIMEOUT_MS 2000
/* Client side: the longest a request line waits in its handle's batch. */
#define SK_AUDITD_BATCH_MS 5

/* ---- server (auditd's process) ------------------------------------------- */

/* The sk_wire_handler of auditd; ctx is the real sk_audit * (opened by the
 * caller with the key). sk_wire_serve has checked the permit. Decodes the
 * request and calls the sk_audit_* function:
 *   APPEND  -> sk_audit_append(durable as sent); reply {status 0|-1, seq}
 *   REQUEST -> sk_audit_request; no reply
 *   REQUEST_BATCH -> sk_audit_request per line, in order, once the whole
 *              batch decoded (a malformed one is dropped whole); no reply
 *   REFUSED -> sk_audit_refused; no reply
 *   FLUSH   -> sk_audit_flush; reply {status}
 *   LAG     -> sk_audit_lag; reply {0, queued, oldest_ms}
 * An undecodable request is answered SK_WIRE_ERR_BADMSG (posted ones: logged,
 * no reply). Never aborts. */
int sk_auditd_handler(void *ctx, enum sk_wire_peer peer, const sk_wire_msg *msg, sk_wire_w *w);

/* Serve until *stop becomes nonzero (a signal handler or another thread sets
 * it; checked every 200 ms): one thread per channel fds[i] as peer class
 * peers[i] (n may be 0), and, when ctl_listen_fd >= 0, the ctl socket as
 * described above (ctl_listen_fd: an AF_UNIX SOCK_SEQPACKET socket already
 * listening, e.g. from sk_auditd_ctl_listen). Does the housekeeping above.
 * At stop, each channel's datagrams already queued are still served (up to
 * 4096 per channel) before its thread ends, so posted request lines are not
 * dropped by an orderly shutdown. Returns 0 after every thread has ended, -1
 * when it could not start (nothing is then left running). The fds stay the
 * caller's (never closed here); ctl_listen_fd is set O_NONBLOCK; ctl
 * connections it accepted are closed. `a` stays the caller's: close it
 * (sk_audit_close) after sk_auditd_run returned. */
int sk_auditd_run(sk_audit *a, const int *fds, const enum sk_wire_peer *peers, unsigned n,
                  int ctl_listen_fd, const volatile int *stop) SK_MUST_CHECK;

/* ---- client (network workers, authd, operator tools) --------------------- */

/* A remote sk_audit over the channels of c: sk_audit_append / _flush / _lag
 * wait for auditd's reply (APPEND and FLUSH up to SK_AUDITD_CALL_TIMEOUT_MS,
 * LAG up to SK_AUDITD_LAG_TIMEOUT_MS, then zeros); sk_audit_request / _refused
 * are posted (no reply awaited), request lines batched as described above
 * (sk_audit_flush sends the batch before its FLUSH, which then borrows the same
 * channel unless another thread's call took it meanwhile: a single-threaded
 * caller reads every line in the log once the flush returned 0; LAG counts only
 * what auditd holds). A durable append returns 0 only after auditd's
 * sk_audit_append(durable) returned 0. Strings are cut as sk_wire_audit.h says
 * (the log then holds what an in-process append would have written); an event
 * name >= 64 bytes, a kv key >= 64 bytes, more than 32 kv, details_json >= 8 KiB
 * or an event whose encoding exceeds SK_WIRE_MAX make the append fail (-1).
 * On success the handle owns c (sk_audit_close frees it); on failure c stays
 * the caller's. Thread-safe like the in-process writer (each call borrows one
 * channel of c). */
int sk_auditd_client_open(sk_wire_client *c, sk_audit **out) SK_MUST_CHECK;

/* ---- the ctl socket ------------------------------------------------------ */

/* "<conf->state_dir>/auditd.sock" into out; -1 when it does not fit out or an
 * AF_UNIX address (108 bytes). */
int sk_auditd_ctl_path(const sk_conf *conf, char *out, size_t cap) SK_MUST_CHECK;

/* For the monitor: a listening AF_UNIX SOCK_SEQPACKET socket at path, mode 0600
 * (close-on-exec). A stale socket file is replaced; any other file at path is
 * refused (EEXIST). */
int sk_auditd_ctl_listen(const char *path, int *out) SK_MUST_CHECK;

/* For the tools: connect to the ctl socket at path. 0: connected (*out is the
 * fd); 1: nothing listens there (ENOENT or ECONNREFUSED: write locally);
 * -1: another error (errno; e.g. EACCES: do NOT fall back, auditd may run). */
int sk_auditd_ctl_connect(const char *path, int *out) SK_MUST_CHECK;

#endif
