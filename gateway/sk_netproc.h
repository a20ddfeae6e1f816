/*
 * sk_netproc.h — the network process's entry (gateway/netproc.c).
 *
 * The monitor forks it with a listening socket and its ends of the channels to
 * authd; it runs until SIGTERM (drain, then exit 0) and reloads certificates and the
 * CRL on SIGHUP. Returns the process's exit status.
 */
#ifndef SK_NETPROC_H
#define SK_NETPROC_H

#include "sk_audit.h"
#include "sk_conf.h"
#include "sk_http.h"

typedef struct sk_netproc_fds {
    int listen_fd;          /* bound and listening; owned by the process afterwards */
    const int *authd;       /* channel ends to authd (the process owns them) */
    unsigned n_authd;
    void (*ready)(void *arg);   /* called once connections are accepted (may be NULL) */
    void *ready_arg;
    const char *restarted_after;  /* why the previous process died ("" or NULL: first start) */
    const volatile uint64_t *authd_generation; /* shared with authd (see http_lookup.c), may be NULL */
    sk_audit *audit;            /* a remote handle: auditd writes (owned by the process) */
    /* Lock the process in (sk_sandbox): called once TLS and HTTP are set up and the
     * listeners bound, before the first thread; non-zero ends the process. */
    int (*sandbox)(void *arg);
    void *sandbox_arg;
    /* [listen] processes: this one is slot (< n_slots). slots and admit_region are
     * shared by all of them (MAP_SHARED, see sk_http_slot and sk_admit.h); NULL: a
     * process on its own. */
    unsigned slot, n_slots;
    struct sk_http_slot *slots;
    void *admit_region;
    int metrics_fd;             /* [metrics] listen, bound by the monitor; -1: none */
    const char *title;          /* "sekisho-net[1]" */
} sk_netproc_fds;

int sk_netproc_main(const sk_conf *conf, const sk_netproc_fds *fds);

#endif
