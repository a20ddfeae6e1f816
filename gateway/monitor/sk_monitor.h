/*
 * sk_monitor.h — the gateway's first process: it starts the others and keeps them
 * running. It holds no secret and parses nothing a client sends.
 *
 * At start it binds the listening socket, creates every channel (socketpairs; it
 * keeps both ends, see sk_wire.h) and forks:
 *   authd  the store, password hashes, TOTP secrets, argon2 (sk_authd.h)
 *   net    TLS, HTTP, the upstream; only the server key is secret there (sk_netproc.h);
 *          [listen] processes of them share the listener, each restarted on its own
 *          (slot N, "sekisho-net[N]" in logs and audit) and sharing with the others
 *          only counters and the admission table (memory mapped before forking)
 * Each child gets only its own ends, a name (comm "sekisho-authd", "sekisho-net",
 * so that operators and tests find them: `pgrep -P MONITOR -x sekisho-net`), dies
 * with the monitor (PR_SET_PDEATHSIG) and tells it when it is ready.
 *
 * Restarts: a child that dies after it was ready (a crash, SIGSYS from its sandbox,
 * SIGKILL) is restarted after a short back-off (100 ms doubling to 5 s); a server's
 * clients waiting on it get SK_WIRE_RESET at once. More than 5 deaths of one child
 * within 60 s, or a death before the first ready, stop the gateway (exit 1): a
 * configuration that cannot start must not loop.
 *
 * Signals: SIGTERM/SIGINT drain the network processes first, then stop authd; the
 * exit status is 0 when all ended cleanly. SIGHUP goes to every network process
 * (certificates, CRL). Mail the children post (sk_notify's transport) is sent here
 * through [notify] command.
 */
#ifndef SK_MONITOR_H
#define SK_MONITOR_H

#include "sk_conf.h"

/* Runs until the gateway stops; returns the process exit status. */
int sk_monitor_run(const sk_conf *conf);

#endif
