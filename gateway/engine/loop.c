/* sk_loop: epoll event loop of one worker. See sk_loop.h for the contracts. */
#include "sk_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define LOOP_BATCH 128

/* Watches deleted during one dispatch round: their pending events must not be
 * delivered. A round is at most LOOP_BATCH events, so the list is bounded. */
struct sk_loop {
    int epfd;
    sk_loop_watch wake;
    int dispatching;
    size_t n_dead;
    sk_loop_watch *dead[LOOP_BATCH * 2];
    int dead_overflow;
};

static void on_wake(sk_loop_watch *w, uint32_t events)
{
    uint64_t v;
    (void)events;
    while (read(w->fd, &v, sizeof v) == (ssize_t)sizeof v)
        ;
}

int sk_loop_create(sk_loop **out)
{
    sk_loop *l = calloc(1, sizeof *l);
    if (l == NULL)
        return -1;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l->wake.on_event = on_wake;
    if (l->epfd < 0 || l->wake.fd < 0 || sk_loop_add(l, &l->wake, EPOLLIN) != 0) {
        sk_loop_destroy(l);
        return -1;
    }
    *out = l;
    return 0;
}

void sk_loop_destroy(sk_loop *l)
{
    if (l == NULL)
        return;
    if (l->wake.fd >= 0)
        close(l->wake.fd);
    if (l->epfd >= 0)
        close(l->epfd);
    free(l);
}

int sk_loop_add(sk_loop *l, sk_loop_watch *w, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = w };
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev) == 0 ? 0 : -1;
}

int sk_loop_mod(sk_loop *l, sk_loop_watch *w, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = w };
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0 ? 0 : -1;
}

void sk_loop_del(sk_loop *l, sk_loop_watch *w)
{
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    if (!l->dispatching)
        return;
    if (l->n_dead < SK_ARRAY_LEN(l->dead))
        l->dead[l->n_dead++] = w;
    else
        l->dead_overflow = 1; /* the rest of this round is skipped: safe, events recur */
}

static int is_dead(const sk_loop *l, const sk_loop_watch *w)
{
    for (size_t i = 0; i < l->n_dead; i++)
        if (l->dead[i] == w)
            return 1;
    return 0;
}

int sk_loop_run_once(sk_loop *l, int timeout_ms)
{
    struct epoll_event evs[LOOP_BATCH];
    int n = epoll_wait(l->epfd, evs, LOOP_BATCH, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    l->dispatching = 1;
    l->n_dead = 0;
    l->dead_overflow = 0;
    for (int i = 0; i < n && !l->dead_overflow; i++) {
        sk_loop_watch *w = evs[i].data.ptr;
        if (is_dead(l, w))
            continue;
        w->on_event(w, evs[i].events);
    }
    l->dispatching = 0;
    return n;
}

void sk_loop_wake(sk_loop *l)
{
    uint64_t one = 1;
    (void)!write(l->wake.fd, &one, sizeof one);
}
