/* monitor_int.h — shared between the monitor's two halves: monitor.c (start,
 * restart, stop, mail) and monitor_kids.c (what each child gets and runs). */
#ifndef MONITOR_INT_H
#define MONITOR_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "sk_admit.h"
#include "sk_conf.h"
#include "sk_http.h"
#include "sk_monitor.h"
#include "sk_sandbox.h"
#include "sk_wire.h"

#define MON_MAX_FDS 8192

/* Start order; they stop in the reverse order (the network processes drain first).
 * kids[KID_NET + i] is network process i ([listen] processes of them). */
enum { KID_AUDITD, KID_AUTHD, KID_NET };
#define MON_MAX_KIDS (KID_NET + 64)

/* A set of channels: client[i] <-> server[i]. */
struct chans {
    unsigned n;
    int *client, *server;
};

struct monitor;

struct child {
    const char *name;                 /* "auditd", "authd", "net" */
    unsigned slot;                    /* a network process's number, 0.. */
    char title[24];                   /* "sekisho-net[1]": logs and the restart's audit entry */
    enum sk_wire_peer peer;           /* its class when it talks to the monitor */
    int (*body)(struct monitor *m, struct child *c);
    pid_t pid;
    int mon_end, child_end;           /* its channel to the monitor */
    int ready, ever_ready;
    int64_t restart_at_ms;            /* 0: not waiting for a restart */
    int64_t window_start_ms;
    unsigned deaths_in_window, backoff_ms;
    int status;                       /* last wait status */
    char last_death[96];              /* why the previous one died; "" at the first start */
    int64_t mail_window_ms;           /* its mail rate (see send_mail) */
    int mails_in_window;
};

struct monitor {
    const sk_conf *conf;
    int listen_fd;
    int ctl_fd;                       /* auditd's socket for sekishoctl and sekisho-ca */
    char ctl_path[SK_CONF_PATH_MAX];  /* removed at exit: the tools then write themselves */
    struct chans authd;               /* net -> authd; per_net of them per network process */
    struct chans audit_net;           /* net -> auditd; the same slices */
    struct chans audit_authd;         /* authd -> auditd */
    unsigned per_net;                 /* channels of each network process, to each server */
    volatile uint64_t *generation;    /* shared page: authd writes, net reads */
    /* Shared by the network processes (mapped before forking; nothing secret):
     * their counters, one slot each, and the admission table. */
    struct sk_http_slot *slots;
    void *admit_region;
    void *shared_map;                 /* both, one mapping */
    size_t shared_size;
    struct sk_admit *admit;           /* the monitor's handle: releases a dead one's column */
    int metrics_fd;                   /* [metrics] listen, shared by the network processes; -1 */
    int all_fds[MON_MAX_FDS];
    unsigned n_fds;
    struct child kids[MON_MAX_KIDS];
    unsigned n_kids;                  /* KID_NET + [listen] processes */
    struct alarm_seen {               /* operators' mails of the network processes (send_mail) */
        uint8_t digest[32];
        pid_t pid;
        int64_t at_ms;
    } alarms[16];
    int stopping, failed;
    int told_ready;                   /* READY=1 sent to systemd */
    int64_t stop_started_ms;          /* when stopping began (monotonic) */
};

/* Remember fd so that every child closes what is not its own. */
int mon_track(struct monitor *m, int fd) SK_MUST_CHECK;
/* The listener, auditd's ctl socket, every channel, the shared page, the children's
 * table. 0 or -1 (errno). */
int mon_setup(struct monitor *m) SK_MUST_CHECK;
/* In the child after fork: keep its descriptors only, enter its body, exit. */
void mon_child_main(struct monitor *m, struct child *c) __attribute__((noreturn));
/* A server died: every caller waiting on it gets SK_WIRE_RESET. A network process
 * died: its gauges and admission counts go (without ever blocking the monitor). */
void mon_reset_clients(struct monitor *m, const struct child *c);

#endif
