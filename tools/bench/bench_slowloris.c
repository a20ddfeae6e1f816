/*
 * sekisho-bench slowloris mode: many TCP connections from one source address
 * that never send a byte, held until SIGTERM; then how many the server closed.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_int.h"
#include "sk_util.h"

static int SK_MUST_CHECK sk_bench_sock_addr(const char *host, const char *port,
                                            struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints, *ai = NULL;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* Wait (<= 10 s) for the non-blocking connects; failed (or still pending)
 * sockets are closed and their fd set to -1. Returns how many connected. */
static uint64_t sk_bench_slow_settle(int *fds, struct pollfd *pf, uint64_t n)
{
    uint64_t i, pending, opened = 0;
    double deadline = sk_bench_now() + 10;
    unsigned char *done = calloc(n, 1);

    if (done == NULL)
        return 0;
    do {
        for (i = 0, pending = 0; i < n; i++) {
            pf[i].fd = done[i] ? -1 : fds[i];
            pf[i].events = POLLOUT;
            pf[i].revents = 0;
        }
        if (poll(pf, n, 100) < 0 && errno != EINTR)
            break;
        for (i = 0; i < n; i++) {
            int err = 0;
            socklen_t el = sizeof(err);
            if (done[i] || fds[i] < 0)
                continue;
            if (pf[i].revents == 0) {
                pending++;
                continue;
            }
            done[i] = 1;
            if (getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
                close(fds[i]);
                fds[i] = -1;
                continue;
            }
            opened++;
        }
    } while (pending > 0 && sk_bench_now() < deadline);
    for (i = 0; i < n; i++) {
        if (!done[i] && fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
    free(done);
    return opened;
}

/* How many of the open sockets the server has closed (EOF or reset). */
static uint64_t sk_bench_slow_closed(const int *fds, struct pollfd *pf, uint64_t n)
{
    uint64_t i, closed = 0;
    char b;

    for (i = 0; i < n; i++) {
        pf[i].fd = fds[i];
        pf[i].events = POLLIN | POLLRDHUP;
        pf[i].revents = 0;
    }
    if (poll(pf, n, 0) < 0)
        return 0;
    for (i = 0; i < n; i++)
        if (fds[i] >= 0 && pf[i].revents != 0 && recv(fds[i], &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
            closed++;
    return closed;
}

int sk_bench_slowloris(const sk_bench_opts *o, const sigset_t *set)
{
    struct sockaddr_storage dst, src;
    socklen_t dlen, slen;
    int *fds = calloc(o->count, sizeof(int)), one = 1, rc = -1;
    struct pollfd *pf = calloc(o->count, sizeof(*pf));
    uint64_t i, opened, closed, failed = 0;

    for (i = 0; fds != NULL && i < o->count; i++)
        fds[i] = -1;
    if (fds == NULL || pf == NULL || sk_bench_sock_addr(o->host, o->port, &dst, &dlen) != 0 ||
        sk_bench_sock_addr(o->bind, "0", &src, &slen) != 0) {
        fprintf(stderr, "sekisho-bench: bad address or out of memory\n");
        goto out;
    }
    for (i = 0; i < o->count; i++) {
        fds[i] = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        /* The port is picked at connect time per 4-tuple, not per bind. */
        if (fds[i] < 0 ||
            setsockopt(fds[i], IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) != 0 ||
            bind(fds[i], (struct sockaddr *)&src, slen) != 0 ||
            (connect(fds[i], (struct sockaddr *)&dst, dlen) != 0 && errno != EINPROGRESS)) {
            if (failed++ == 0)
                fprintf(stderr, "sekisho-bench: slowloris socket %llu: %s\n",
                        (unsigned long long)i, strerror(errno));
            if (fds[i] >= 0)
                close(fds[i]);
            fds[i] = -1;
        }
    }
    opened = sk_bench_slow_settle(fds, pf, o->count);
    printf("mode=slowloris count=%llu opened=%llu failed=%llu\n", (unsigned long long)o->count,
           (unsigned long long)opened, (unsigned long long)(o->count - opened));
    sk_bench_wait_signal(set);
    closed = sk_bench_slow_closed(fds, pf, o->count);
    printf("mode=slowloris_end opened=%llu closed_by_server=%llu still_open=%llu\n",
           (unsigned long long)opened, (unsigned long long)closed,
           (unsigned long long)(opened - closed));
    rc = 0;
out:
    for (i = 0; fds != NULL && i < o->count; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    free(pf);
    return rc;
}
