/* Unit tests of the engine's building blocks: the per-worker event loop and the
 * per-address admission counters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sk_admit.h"
#include "sk_loop.h"

static struct sockaddr_storage v4(const char *s)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    memset(&ss, 0, sizeof ss);
    in->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, s, &in->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *s)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    memset(&ss, 0, sizeof ss);
    in6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, s, &in6->sin6_addr), 1);
    return ss;
}

static void test_admit_limit_per_address(void **state)
{
    sk_admit *a;
    sk_admit_key k1, k2;
    struct sockaddr_storage s1 = v4("127.0.0.2"), s2 = v4("127.0.0.1");
    (void)state;
    assert_int_equal(sk_admit_create(3, &a), 0);
    assert_int_equal(sk_admit_key_of(&s1, &k1), 0);
    assert_int_equal(sk_admit_key_of(&s2, &k2), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(sk_admit_enter(a, &k1), 0);
    assert_int_equal(sk_admit_enter(a, &k1), -1); /* the 4th from one address */
    assert_int_equal(sk_admit_enter(a, &k2), 0);  /* another address is not affected */
    assert_int_equal(sk_admit_count(a, &k1), 3);
    sk_admit_leave(a, &k1);
    assert_int_equal(sk_admit_enter(a, &k1), 0); /* a slot freed is a slot again */
    for (int i = 0; i < 3; i++)
        sk_admit_leave(a, &k1);
    assert_int_equal(sk_admit_count(a, &k1), 0);
    sk_admit_leave(a, &k1); /* an extra leave never underflows */
    assert_int_equal(sk_admit_count(a, &k1), 0);
    assert_int_equal(sk_admit_count(a, &k2), 1);
    sk_admit_destroy(a);
}

static void test_admit_keys(void **state)
{
    sk_admit_key a, b, c, d;
    struct sockaddr_storage x = v6("2001:db8:1:2::1"), y = v6("2001:db8:1:2:ffff::9"), z = v6("2001:db8:1:3::1"),
                            m = v6("::ffff:127.0.0.2"), p = v4("127.0.0.2"), u;
    (void)state;
    assert_int_equal(sk_admit_key_of(&x, &a), 0);
    assert_int_equal(sk_admit_key_of(&y, &b), 0);
    assert_int_equal(sk_admit_key_of(&z, &c), 0);
    assert_memory_equal(a.b, b.b, sizeof a.b);      /* one /64 is one client */
    assert_memory_not_equal(a.b, c.b, sizeof a.b);  /* the next /64 is another */
    assert_int_equal(sk_admit_key_of(&m, &c), 0);
    assert_int_equal(sk_admit_key_of(&p, &d), 0);
    assert_memory_equal(c.b, d.b, sizeof c.b);      /* v4-mapped = the IPv4 client */
    memset(&u, 0, sizeof u);
    u.ss_family = AF_UNIX;
    assert_int_equal(sk_admit_key_of(&u, &a), -1);
}

static void test_admit_many_addresses(void **state)
{
    sk_admit *a;
    (void)state;
    assert_int_equal(sk_admit_create(1, &a), 0);
    /* 20,000 distinct addresses spread over the buckets, then all leave: nothing is
     * left counted (destroy under ASan proves nothing leaks either). */
    for (uint32_t i = 0; i < 20000; i++) {
        struct sockaddr_storage ss = v4("10.0.0.0");
        sk_admit_key k;
        ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(0x0a000000u + i);
        assert_int_equal(sk_admit_key_of(&ss, &k), 0);
        assert_int_equal(sk_admit_enter(a, &k), 0);
        assert_int_equal(sk_admit_enter(a, &k), -1);
    }
    for (uint32_t i = 0; i < 20000; i++) {
        struct sockaddr_storage ss = v4("10.0.0.0");
        sk_admit_key k;
        ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(0x0a000000u + i);
        assert_int_equal(sk_admit_key_of(&ss, &k), 0);
        sk_admit_leave(a, &k);
        assert_int_equal(sk_admit_count(a, &k), 0);
    }
    sk_admit_destroy(a);
}

/* A region shared the way the monitor shares it: MAP_SHARED before fork. */
static void *shared_region(unsigned slots)
{
    void *mem = mmap(NULL, sk_admit_region_size(slots), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    assert_int_equal(sk_admit_region_init(mem, slots), 0);
    return mem;
}

static int child_status(pid_t pid)
{
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void test_admit_across_processes(void **state)
{
    void *mem = shared_region(2);
    sk_admit *a;
    sk_admit_key k;
    struct sockaddr_storage ss = v4("127.0.0.2");
    pid_t pid;
    (void)state;
    assert_int_equal(sk_admit_key_of(&ss, &k), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* process slot 1: two of the three */
        sk_admit *b;
        int ok = sk_admit_attach(mem, 2, 1, 3, &b) == 0 && sk_admit_enter(b, &k) == 0 && sk_admit_enter(b, &k) == 0;
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(child_status(pid), 0);
    assert_int_equal(sk_admit_attach(mem, 2, 0, 3, &a), 0);
    assert_int_equal(sk_admit_count(a, &k), 2);
    assert_int_equal(sk_admit_enter(a, &k), 0);  /* the third, in slot 0 */
    assert_int_equal(sk_admit_enter(a, &k), -1); /* the limit holds for both together */
    sk_admit_leave(a, &k);
    sk_admit_leave(a, &k); /* slot 0 never takes what slot 1 counted */
    assert_int_equal(sk_admit_count(a, &k), 2);
    /* Slot 1's process died: its column goes, the address has room again. */
    assert_int_equal(sk_admit_clear_slot(a, 1, 0), 0);
    assert_int_equal(sk_admit_count(a, &k), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(sk_admit_enter(a, &k), 0);
    assert_int_equal(sk_admit_enter(a, &k), -1);
    sk_admit_destroy(a);
    munmap(mem, sk_admit_region_size(2));
}

static void test_admit_owner_died(void **state)
{
    void *mem = shared_region(2);
    sk_admit *a;
    sk_admit_key k;
    struct sockaddr_storage ss = v4("127.0.0.3");
    pid_t pid;
    (void)state;
    assert_int_equal(sk_admit_key_of(&ss, &k), 0);
    assert_int_equal(sk_admit_attach(mem, 2, 0, 1, &a), 0);
    assert_int_equal(sk_admit_enter(a, &k), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) /* dies holding the lock (the region begins with it, admit.c) */
        _exit(pthread_mutex_lock((pthread_mutex_t *)mem) == 0 ? 0 : 1);
    assert_int_equal(child_status(pid), 0);
    /* Not wedged: the table is emptied (what it counted is forgotten) and works. */
    assert_int_equal(sk_admit_enter(a, &k), 0);
    assert_int_equal(sk_admit_count(a, &k), 1);
    assert_int_equal(sk_admit_enter(a, &k), -1);
    sk_admit_leave(a, &k);
    sk_admit_leave(a, &k); /* the leave of the forgotten one: no underflow */
    assert_int_equal(sk_admit_count(a, &k), 0);
    sk_admit_destroy(a);
    munmap(mem, sk_admit_region_size(2));
}

static sk_admit_key key_n(uint32_t n)
{
    struct sockaddr_storage ss = v4("10.0.0.0");
    sk_admit_key k;
    ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(0x0a000000u + n);
    assert_int_equal(sk_admit_key_of(&ss, &k), 0);
    return k;
}

static void test_admit_full_sheds(void **state)
{
    sk_admit *a;
    uint32_t n = 0;
    sk_admit_key k;
    (void)state;
    assert_int_equal(sk_admit_create(1, &a), 0);
    /* Fixed size: new addresses are refused once it is three quarters full. */
    for (; n < 70000; n++) {
        k = key_n(n);
        if (sk_admit_enter(a, &k) != 0)
            break;
    }
    assert_int_equal(n, 65536 / 4 * 3);
    k = key_n(5);
    sk_admit_leave(a, &k);
    k = key_n(n);
    assert_int_equal(sk_admit_enter(a, &k), 0); /* a freed entry is room again */
    k = key_n(n + 1);
    assert_int_equal(sk_admit_enter(a, &k), -1);
    /* Removal moves entries back along their probe run: every other one removed, the
     * rest must still be found (and then removed) one by one. */
    for (uint32_t i = 0; i <= n; i += 2) {
        k = key_n(i);
        sk_admit_leave(a, &k);
        assert_int_equal(sk_admit_count(a, &k), 0);
    }
    for (uint32_t i = 1; i <= n; i += 2) {
        k = key_n(i);
        assert_int_equal(sk_admit_count(a, &k), i == 5 ? 0 : 1);
        sk_admit_leave(a, &k);
        assert_int_equal(sk_admit_count(a, &k), 0);
    }
    sk_admit_destroy(a);
}

struct probe {
    sk_loop_watch w;
    sk_loop *loop;
    int calls;
    struct probe *kill; /* deleted by this watch's callback */
};

static void on_probe(sk_loop_watch *w, uint32_t events)
{
    struct probe *p = (struct probe *)w;
    char b[16];
    (void)events;
    p->calls++;
    (void)!read(w->fd, b, sizeof b);
    if (p->kill != NULL) {
        sk_loop_del(p->loop, &p->kill->w);
        p->kill->w.fd = -1;
    }
}

static void test_loop_dispatch_and_delete(void **state)
{
    sk_loop *l;
    int a[2], b[2];
    struct probe pa = { 0 }, pb = { 0 };
    (void)state;
    assert_int_equal(sk_loop_create(&l), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    pa.w.fd = a[0];
    pa.w.on_event = on_probe;
    pa.loop = l;
    pb.w.fd = b[0];
    pb.w.on_event = on_probe;
    pb.loop = l;
    assert_int_equal(sk_loop_add(l, &pa.w, EPOLLIN), 0);
    assert_int_equal(sk_loop_add(l, &pb.w, EPOLLIN), 0);
    assert_int_equal(sk_loop_run_once(l, 0), 0); /* nothing ready */
    /* Both ready in one round; whichever runs first deletes the other, which then
     * must not be called in that round. */
    pa.kill = &pb;
    pb.kill = &pa;
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "y", 1), 1);
    assert_int_equal(sk_loop_run_once(l, 1000), 2);
    assert_int_equal(pa.calls + pb.calls, 1);
    /* A wake from another thread (here: this one) ends a wait without events. */
    sk_loop_wake(l);
    assert_int_equal(sk_loop_run_once(l, 5000), 1);
    assert_int_equal(sk_loop_run_once(l, 0), 0);
    sk_loop_destroy(l);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admit_limit_per_address),
        cmocka_unit_test(test_admit_keys),
        cmocka_unit_test(test_admit_many_addresses),
        cmocka_unit_test(test_admit_across_processes),
        cmocka_unit_test(test_admit_owner_died),
        cmocka_unit_test(test_admit_full_sheds),
        cmocka_unit_test(test_loop_dispatch_and_delete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
