/*
 * sk_loop.h — one epoll event loop, owned by one worker thread.
 *
 * Contracts:
 *  - A loop is driven by exactly one thread (the worker that created it); only
 *    sk_loop_wake() may be called from other threads.
 *  - A watch is caller memory that stays valid while it is registered. Its callback
 *    runs on the loop's thread with the epoll event bits; it may delete its own
 *    watch (and free it) or any other: events for a watch deleted during the same
 *    dispatch round are dropped, never delivered to freed memory.
 *  - Every function that can fail returns 0 / -1 (errno set) and must be checked.
 */
#ifndef SK_LOOP_H
#define SK_LOOP_H

#include <stdint.h>

#include "sk_util.h"

typedef struct sk_loop sk_loop;
typedef struct sk_loop_watch sk_loop_watch;

struct sk_loop_watch {
    int fd;
    void (*on_event)(sk_loop_watch *w, uint32_t events);
};

int sk_loop_create(sk_loop **out) SK_MUST_CHECK;
void sk_loop_destroy(sk_loop *l);
/* events: EPOLLIN / EPOLLOUT / EPOLLET / EPOLLEXCLUSIVE ... */
int sk_loop_add(sk_loop *l, sk_loop_watch *w, uint32_t events) SK_MUST_CHECK;
int sk_loop_mod(sk_loop *l, sk_loop_watch *w, uint32_t events) SK_MUST_CHECK;
/* Never fails from the caller's point of view: the fd is closed by the caller next. */
void sk_loop_del(sk_loop *l, sk_loop_watch *w);
/* Wait up to timeout_ms (-1: no limit) and dispatch what is ready. Returns the
 * number of events dispatched (a wake counts as one), 0 on timeout, -1 on a loop
 * failure. */
int sk_loop_run_once(sk_loop *l, int timeout_ms) SK_MUST_CHECK;
/* Make a sk_loop_run_once in progress (or the next one) return soon. Any thread. */
void sk_loop_wake(sk_loop *l);

#endif
