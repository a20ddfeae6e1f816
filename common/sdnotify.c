/* sk_sdnotify: sd_notify(3) in one datagram. See sk_sdnotify.h. */
#define _GNU_SOURCE
#include "sk_sdnotify.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The address $NOTIFY_SOCKET names. 0 with *len set; 1 when the variable is unset
 * or empty; -1 when it cannot be an AF_UNIX address. */
static int notify_address(struct sockaddr_un *sa, socklen_t *len)
{
    const char *name = getenv("NOTIFY_SOCKET");
    size_t n;

    if (name == NULL || name[0] == '\0')
        return 1;
    n = strlen(name);
    if ((name[0] != '/' && name[0] != '@') || n < 2 || n >= sizeof sa->sun_path) {
        errno = EINVAL;
        return -1;
    }
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, name, n);
    if (name[0] == '@') {
        /* Abstract: a leading NUL, and the length says where the name ends. */
        sa->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

int sk_sdnotify_send(const char *state)
{
    struct sockaddr_un sa;
    socklen_t len = 0;
    size_t n = strlen(state);
    ssize_t sent;
    int fd, rc;

    rc = notify_address(&sa, &len);
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    do
        sent = sendto(fd, state, n, MSG_NOSIGNAL, (const struct sockaddr *)&sa, len);
    while (sent < 0 && errno == EINTR);
    rc = sent >= 0 && (size_t)sent == n ? 0 : -1;
    close(fd);
    return rc;
}

int sk_sdnotify_ready(void)
{
    return sk_sdnotify_send("READY=1\nSTATUS=accepting connections");
}

int sk_sdnotify_stopping(void)
{
    return sk_sdnotify_send("STOPPING=1\nSTATUS=draining connections");
}

int sk_sdnotify_reloading(void)
{
    struct timespec ts;
    char msg[96];

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return -1;
    if (sk_snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
                    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL) != 0)
        return -1;
    return sk_sdnotify_send(msg);
}

int sk_sdnotify_watchdog(void)
{
    return sk_sdnotify_send("WATCHDOG=1");
}

int sk_sdnotify_watchdog_usec(uint64_t *usec)
{
    const char *us = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    uint64_t v = 0, p = 0;

    *usec = 0;
    if (us == NULL || us[0] == '\0')
        return 0;
    /* systemd's own bound: a period it could not express in its timers is bogus. */
    if (sk_parse_u64(us, 1, UINT64_MAX - 1, &v) != 0)
        return -1;
    if (pid != NULL && pid[0] != '\0') {
        if (sk_parse_u64(pid, 1, INT32_MAX, &p) != 0)
            return -1;
        if ((pid_t)p != getpid())
            return 0; /* meant for another process (the one that exec'd us) */
    }
    *usec = v;
    return 0;
}

static pthread_once_t wd_once = PTHREAD_ONCE_INIT;
static uint64_t wd_every;            /* half of $WATCHDOG_USEC; 0 = no watchdog */
static atomic_int wd_malformed;      /* 1: to be reported once, 2: reported */
static atomic_uint_fast64_t wd_next; /* CLOCK_MONOTONIC microseconds */
static pid_t wd_pid;                 /* the process the watchdog is for */

static void wd_init(void)
{
    uint64_t usec = 0;
    if (sk_sdnotify_watchdog_usec(&usec) != 0)
        atomic_store(&wd_malformed, 1);
    /* Half the period, as sd_watchdog_enabled(3) advises: one late ping is not a kill. */
    wd_every = usec / 2;
    wd_pid = getpid();
}

int sk_sdnotify_watchdog_tick(void)
{
    struct timespec ts;
    uint_fast64_t now, next;
    int one = 1;

    if (pthread_once(&wd_once, wd_init) != 0)
        return -1;
    if (atomic_compare_exchange_strong(&wd_malformed, &one, 2))
        return -1;
    /* A child forked after the first tick is not the service's main process. */
    if (wd_every == 0 || getpid() != wd_pid || clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    now = (uint_fast64_t)ts.tv_sec * 1000000U + (uint_fast64_t)ts.tv_nsec / 1000U;
    next = atomic_load(&wd_next);
    /* Whoever moves the deadline sends the ping: one per half period. */
    if (now < next || !atomic_compare_exchange_strong(&wd_next, &next, now + wd_every))
        return 0;
    return sk_sdnotify_watchdog();
}
