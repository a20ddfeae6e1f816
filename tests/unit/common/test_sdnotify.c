/* Unit tests for sk_sdnotify: the datagrams a real AF_UNIX socket bound here
 * receives when $NOTIFY_SOCKET names it (path and abstract forms), the no-op
 * without it, refused addresses, and $WATCHDOG_USEC / $WATCHDOG_PID. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "sk_sdnotify.h"

typedef struct fixture {
    char dir[64];
    char env[128]; /* what NOTIFY_SOCKET is set to */
    int fd;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    memcpy(f->dir, "/tmp/sk-test-sdn-XXXXXX", sizeof "/tmp/sk-test-sdn-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    f->fd = -1;
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char p[128];
    if (f->fd >= 0)
        close(f->fd);
    if (snprintf(p, sizeof p, "%s/notify", f->dir) > 0)
        (void)unlink(p);
    (void)rmdir(f->dir);
    unsetenv("NOTIFY_SOCKET");
    free(f);
    return 0;
}

/* Bind a datagram socket the way systemd does and point NOTIFY_SOCKET at it. */
static void listen_at(fixture *f, int abstract)
{
    struct sockaddr_un sa;
    socklen_t len;
    struct timeval tv = { 2, 0 };
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (abstract) {
        int n = snprintf(f->env, sizeof f->env, "@sk-test-sdnotify-%ld-%s", (long)getpid(), f->dir + 17);
        assert_true(n > 0 && (size_t)n < sizeof sa.sun_path);
        memcpy(sa.sun_path + 1, f->env + 1, (size_t)n - 1);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n);
    } else {
        int n = snprintf(f->env, sizeof f->env, "%s/notify", f->dir);
        assert_true(n > 0 && (size_t)n < sizeof sa.sun_path);
        memcpy(sa.sun_path, f->env, (size_t)n);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
    }
    f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(f->fd >= 0);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, len), 0);
    assert_int_equal(setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", f->env, 1), 0);
}

/* The next datagram, NUL-terminated. */
static void recv_msg(fixture *f, char *out, size_t cap)
{
    ssize_t n = recv(f->fd, out, cap - 1, 0);
    assert_true(n > 0);
    out[n] = '\0';
}

static void nothing_pending(fixture *f)
{
    char buf[16];
    ssize_t n = recv(f->fd, buf, sizeof buf, MSG_DONTWAIT);
    assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

static void each_message(fixture *f)
{
    char m[256];
    unsigned long long usec = 0;
    assert_int_equal(sk_sdnotify_ready(), 0);
    recv_msg(f, m, sizeof m);
    assert_string_equal(m, "READY=1\nSTATUS=accepting connections");
    assert_int_equal(sk_sdnotify_stopping(), 0);
    recv_msg(f, m, sizeof m);
    assert_string_equal(m, "STOPPING=1\nSTATUS=draining connections");
    assert_int_equal(sk_sdnotify_watchdog(), 0);
    recv_msg(f, m, sizeof m);
    assert_string_equal(m, "WATCHDOG=1");
    assert_int_equal(sk_sdnotify_reloading(), 0);
    recv_msg(f, m, sizeof m);
    assert_true(strncmp(m, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
    assert_int_equal(sscanf(m + 27, "%llu", &usec), 1);
    assert_true(usec > 0);
    assert_non_null(strstr(m, "\nSTATUS=reloading"));
    nothing_pending(f);
}

static void test_path_socket(void **state)
{
    fixture *f = *state;
    listen_at(f, 0);
    each_message(f);
}

static void test_abstract_socket(void **state)
{
    fixture *f = *state;
    listen_at(f, 1);
    each_message(f);
}

static void test_unset_is_noop(void **state)
{
    fixture *f = *state;
    listen_at(f, 0);
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(sk_sdnotify_ready(), 0);
    assert_int_equal(sk_sdnotify_watchdog(), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
    assert_int_equal(sk_sdnotify_stopping(), 0);
    nothing_pending(f); /* nothing went anywhere */
}

static void test_bad_addresses(void **state)
{
    fixture *f = *state;
    char lng[200];
    (void)f;
    memset(lng, 'a', sizeof lng - 1);
    lng[0] = '/';
    lng[sizeof lng - 1] = '\0';
    static const char *const bad[] = { "relative/notify", "vsock:2:1234", "@", "/" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(setenv("NOTIFY_SOCKET", bad[i], 1), 0);
        assert_int_equal(sk_sdnotify_ready(), -1);
    }
    assert_int_equal(setenv("NOTIFY_SOCKET", lng, 1), 0); /* longer than sun_path */
    assert_int_equal(sk_sdnotify_ready(), -1);
    /* A well-formed name nobody listens on: the send fails, it does not hang. */
    assert_int_equal(setenv("NOTIFY_SOCKET", "/nonexistent/sk-notify", 1), 0);
    assert_int_equal(sk_sdnotify_watchdog(), -1);
    assert_int_equal(setenv("NOTIFY_SOCKET", "@sk-test-nobody-listens-here", 1), 0);
    assert_int_equal(sk_sdnotify_watchdog(), -1);
}

static void test_watchdog_usec(void **state)
{
    uint64_t us = 99;
    char pid[24];
    (void)state;
    assert_int_equal(sk_sdnotify_watchdog_usec(&us), 0);
    assert_int_equal(us, 0); /* no watchdog */
    assert_int_equal(setenv("WATCHDOG_USEC", "30000000", 1), 0);
    assert_int_equal(sk_sdnotify_watchdog_usec(&us), 0);
    assert_int_equal(us, 30000000);
    assert_true(snprintf(pid, sizeof pid, "%ld", (long)getpid()) > 0);
    assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
    us = 0;
    assert_int_equal(sk_sdnotify_watchdog_usec(&us), 0);
    assert_int_equal(us, 30000000);
    assert_true(snprintf(pid, sizeof pid, "%ld", (long)getpid() + 1) > 0);
    assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
    assert_int_equal(sk_sdnotify_watchdog_usec(&us), 0);
    assert_int_equal(us, 0); /* another process's watchdog */
    assert_int_equal(setenv("WATCHDOG_PID", "12x", 1), 0);
    us = 5;
    assert_int_equal(sk_sdnotify_watchdog_usec(&us), -1);
    assert_int_equal(us, 0);
    unsetenv("WATCHDOG_PID");
    static const char *const bad[] = { "0", "-5", "abc", "30s", "99999999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(setenv("WATCHDOG_USEC", bad[i], 1), 0);
        assert_int_equal(sk_sdnotify_watchdog_usec(&us), -1);
        assert_int_equal(us, 0);
    }
    unsetenv("WATCHDOG_USEC");
}

/* The only test of the tick: its timer lives for the whole process. */
static void test_watchdog_tick(void **state)
{
    fixture *f = *state;
    char m[64];
    listen_at(f, 0);
    assert_int_equal(setenv("WATCHDOG_USEC", "400000", 1), 0); /* pings due every 200 ms */
    assert_int_equal(sk_sdnotify_watchdog_tick(), 0);
    recv_msg(f, m, sizeof m);
    assert_string_equal(m, "WATCHDOG=1");
    assert_int_equal(sk_sdnotify_watchdog_tick(), 0); /* too early: nothing */
    nothing_pending(f);
    assert_int_equal(usleep(250 * 1000), 0);
    assert_int_equal(sk_sdnotify_watchdog_tick(), 0);
    recv_msg(f, m, sizeof m);
    assert_string_equal(m, "WATCHDOG=1");
    nothing_pending(f);
    /* A forked child is not the service's main process: its ticks send nothing. */
    assert_int_equal(usleep(250 * 1000), 0);
    {
        int status = -1;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            _exit(sk_sdnotify_watchdog_tick() == 0 ? 0 : 1);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    nothing_pending(f);
    assert_int_equal(sk_sdnotify_watchdog_tick(), 0); /* the parent still pings */
    recv_msg(f, m, sizeof m);
    assert_string_equal(m, "WATCHDOG=1");
    unsetenv("WATCHDOG_USEC");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_path_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abstract_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unset_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_usec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog_tick, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
