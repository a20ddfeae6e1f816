/*
 * sk_sdnotify.h — the systemd notification protocol (sd_notify(3)) without libsystemd:
 * one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET.
 *
 * Contracts:
 *  - Without $NOTIFY_SOCKET (not started by systemd, or Type= is not notify) every
 *    call does nothing and returns 0.
 *  - $NOTIFY_SOCKET is a path ("/run/systemd/notify") or an abstract name ("@...");
 *    anything else (too long for sun_path, another scheme) is -1, nothing sent.
 *  - Each call opens, sends and closes its own socket: safe from any thread, never
 *    blocks (a full socket queue is -1 with EAGAIN, not a wait).
 *  - The unit says NotifyAccess=main: only the service's main process is heard.
 */
#ifndef SK_SDNOTIFY_H
#define SK_SDNOTIFY_H

#include <stdint.h>

#include "sk_util.h"

/* READY=1: the listener accepts connections. */
int sk_sdnotify_ready(void) SK_MUST_CHECK;
/* STOPPING=1: shutdown has begun (SIGTERM). */
int sk_sdnotify_stopping(void) SK_MUST_CHECK;
/* RELOADING=1 with MONOTONIC_USEC=<now> (what systemd >= 253 wants for
 * Type=notify-reload; older versions ignore the extra field). Follow with
 * sk_sdnotify_ready() when the reload is done. */
int sk_sdnotify_reloading(void) SK_MUST_CHECK;
/* WATCHDOG=1: the service is alive. */
int sk_sdnotify_watchdog(void) SK_MUST_CHECK;
/* The watchdog interval systemd expects pings within (WatchdogSec=), in *usec: 0
 * when there is none for this process ($WATCHDOG_USEC unset, or $WATCHDOG_PID names
 * another process). -1 (and *usec 0) when either variable is malformed. */
int sk_sdnotify_watchdog_usec(uint64_t *usec) SK_MUST_CHECK;

/* WATCHDOG=1 when half the watchdog interval has passed since the last ping (0 and
 * nothing sent otherwise, or when there is no watchdog). Call it often (at least
 * every second or so) from the thread whose progress proves the service alive;
 * other threads may call it too while they wait on something bounded (sk_notify
 * does while a mail command runs): one ping per half period whoever sends it. The
 * environment is read at the first call; a malformed one is -1 once, then off.
 * In a process forked after that first call it does nothing. */
int sk_sdnotify_watchdog_tick(void) SK_MUST_CHECK;

/* Send STATE (newline-separated VAR=value lines) as is; the calls above use it. */
int sk_sdnotify_send(const char *state) SK_MUST_CHECK;

#endif
