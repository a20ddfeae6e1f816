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
} sk_netproc_fds;

int sk_netproc_main(const sk_conf *conf, const sk_netproc_fds *fds);

#endif
