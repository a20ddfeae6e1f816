/*
 * Unit tests for sk_sandbox: each role enters the sandbox in a forked child, does
 * its real work (threads, epoll, socketpair messages, LMDB, argon2, TCP, OpenSSL,
 * audit-style files), and every forbidden action is shown to kill it with SIGSYS
 * (or to answer the documented errno). The parent reads /proc/CHILD/status to see
 * no_new_privs and exactly one seccomp filter. Children exit with exit() (not
 * _exit) after legitimate work so that, in the ASan build, LeakSanitizer's
 * exit-time check runs under the filter too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <argon2.h>
#include <lmdb.h>
#include <seccomp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "sk_sandbox.h"

extern char **environ;

/* The same detection as the library (sandbox_internal.h): gcc and clang. */
#if defined(__SANITIZE_ADDRESS__)
#define SK_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SK_TEST_ASAN 1
#endif
#endif

/* Child exit codes: 0 = all good; anything else names the failed step. */
enum { C_OK = 0, C_ENTER = 90, C_RETURNED = 91 };

typedef struct fixture {
    char dir[256]; /* read_write for authd/auditd */
    char ro[300];  /* read_only: a directory with a certificate and a CA file */
    char out[300]; /* outside every allowed path */
    char cert[400];
    int listen_fd; /* loopback TCP listener, inherited by net children */
    int port;
} fixture;

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static int write_cert(const char *path)
{
    int ok = -1;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    FILE *f = NULL;
    if (k == NULL || x == NULL)
        goto out;
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"sandbox-test", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    if (X509_set_pubkey(x, k) != 1 || X509_sign(x, k, EVP_sha256()) == 0)
        goto out;
    f = fopen(path, "w");
    if (f == NULL || PEM_write_X509(f, x) != 1)
        goto out;
    ok = 0;
out:
    if (f != NULL && fclose(f) != 0)
        ok = -1;
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    const char *t = getenv("TMPDIR");
    assert_int_equal(sk_snprintf(fx->dir, sizeof fx->dir, "%s/sk-sandbox-XXXXXX", t ? t : "/tmp"),
                     0);
    assert_non_null(mkdtemp(fx->dir));
    char base[256];
    assert_int_equal(sk_strlcpy(base, sizeof base, fx->dir), 0);
    /* dir = BASE/rw, ro = BASE/ro, out = BASE/out: siblings, none inside another */
    assert_int_equal(sk_snprintf(fx->ro, sizeof fx->ro, "%s/ro", base), 0);
    assert_int_equal(sk_snprintf(fx->out, sizeof fx->out, "%s/out", base), 0);
    assert_int_equal(sk_snprintf(fx->dir, sizeof fx->dir, "%s/rw", base), 0);
    assert_int_equal(mkdir(fx->ro, 0700), 0);
    assert_int_equal(mkdir(fx->out, 0700), 0);
    assert_int_equal(mkdir(fx->dir, 0700), 0);
    assert_int_equal(sk_snprintf(fx->cert, sizeof fx->cert, "%s/cert.pem", fx->ro), 0);
    assert_int_equal(write_cert(fx->cert), 0);
    char secret[400];
    assert_int_equal(sk_snprintf(secret, sizeof secret, "%s/secret", fx->out), 0);
    FILE *f = fopen(secret, "w");
    assert_non_null(f);
    assert_int_equal(fputs("outside\n", f) >= 0, 1);
    assert_int_equal(fclose(f), 0);

    fx->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fx->listen_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fx->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fx->listen_fd, 8), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(fx->listen_fd, (struct sockaddr *)&a, &al), 0);
    fx->port = ntohs(a.sin_port);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char base[256];
    assert_int_equal(sk_strlcpy(base, sizeof base, fx->dir), 0);
    char *slash = strrchr(base, '/');
    assert_non_null(slash);
    *slash = '\0';
    close(fx->listen_fd);
    (void)nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static void fill_paths(const fixture *fx, enum sk_sandbox_role role, sk_sandbox_paths *p)
{
    memset(p, 0, sizeof *p);
    p->read_only[0] = fx->ro;
    if (role != SK_SANDBOX_NET)
        p->read_write[0] = fx->dir;
}

static void enter_or_die(const fixture *fx, enum sk_sandbox_role role, unsigned flags)
{
    sk_sandbox_paths p;
    fill_paths(fx, role, &p);
    char err[256];
    if (sk_sandbox_enter(role, flags, &p, err, sizeof err) != 0) {
        fprintf(stderr, "child: sk_sandbox_enter(%s): %s\n", sk_sandbox_role_name(role), err);
        _exit(C_ENTER);
    }
}

typedef int (*child_fn)(const fixture *fx, const void *arg);

/* Fork, run fn in the child (its return value is the exit status, via exit()
 * so that atexit/LSan run), return the raw wait status. */
static int run_child(const fixture *fx, child_fn fn, const void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        exit(fn(fx, arg));
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

static void assert_exit_ok(int st)
{
    if (WIFSIGNALED(st))
        fail_msg("child killed by signal %d", WTERMSIG(st));
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), C_OK);
}

static void assert_sigsys(int st)
{
    if (WIFEXITED(st))
        fail_msg("child exited with %d instead of dying from SIGSYS", WEXITSTATUS(st));
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSYS);
}

/* ---- what every role does --------------------------------------------- */

static void *thread_main(void *arg)
{
    int *v = arg;
    *v = 42;
    return NULL;
}

static int common_work(void)
{
    pthread_t th;
    int v = 0;
    if (pthread_create(&th, NULL, thread_main, &v) != 0 || pthread_join(th, NULL) != 0 || v != 42)
        return 10;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int ev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ep < 0 || ev < 0)
        return 11;
    struct epoll_event e = {.events = EPOLLIN, .data.fd = ev};
    uint64_t one = 1;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) != 0 || write(ev, &one, sizeof one) != sizeof one ||
        epoll_wait(ep, &e, 1, 1000) != 1)
        return 12;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return 13;
    char msg[] = "ping", buf[8] = {0};
    struct iovec io = {.iov_base = msg, .iov_len = 4};
    struct msghdr mh = {.msg_iov = &io, .msg_iovlen = 1};
    if (sendmsg(sv[0], &mh, 0) != 4)
        return 14;
    io.iov_base = buf;
    io.iov_len = sizeof buf;
    if (recvmsg(sv[1], &mh, 0) != 4 || memcmp(buf, "ping", 4) != 0)
        return 15;
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
        return 16;
    struct timespec ts;
    struct tm tm;
    time_t now = time(NULL);
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0 || localtime_r(&now, &tm) == NULL)
        return 17;
    sk_log(SK_LOG_DEBUG, "sandboxed child logging");
    close(sv[0]);
    close(sv[1]);
    close(ev);
    close(ep);
    return 0;
}

/* ---- net ------------------------------------------------------------------ */

static int net_tls_and_tcp(const fixture *fx)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, fx->cert) != 1 ||
        SSL_CTX_load_verify_locations(ctx, fx->cert, NULL) != 1)
        return 20;
    SSL_CTX_free(ctx);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 21;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)fx->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS)
        return 22;
    struct pollfd pf = {.fd = fd, .events = POLLOUT};
    if (poll(&pf, 1, 5000) != 1)
        return 23;
    /* accept on the inherited listener: what a worker does */
    int c = accept4(fx->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return 24;
    if (send(fd, "hi", 2, MSG_NOSIGNAL) != 2)
        return 25;
    char b[2];
    if (recv(c, b, 2, MSG_WAITALL) != 2)
        return 26;
    close(c);
    close(fd);
    return 0;
}

static int child_net_work(const fixture *fx, const void *arg)
{
    (void)arg;
    OPENSSL_init_ssl(0, NULL); /* the process initialises OpenSSL before the sandbox */
    enter_or_die(fx, SK_SANDBOX_NET, 0);
    int rc = common_work();
    return rc != 0 ? rc : net_tls_and_tcp(fx);
}

static void test_net_legit(void **state)
{
    fixture *fx = *state;
    assert_exit_ok(run_child(fx, child_net_work, NULL));
}

/* ---- authd ---------------------------------------------------------------- */

static int authd_lmdb(const fixture *fx)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int rc = 30;
    if (mdb_env_create(&env) != 0 || mdb_env_set_mapsize(env, (size_t)8 << 20) != 0 ||
        mdb_env_open(env, fx->dir, 0, 0600) != 0)
        goto out;
    rc = 31;
    if (mdb_txn_begin(env, NULL, 0, &txn) != 0 || mdb_dbi_open(txn, NULL, 0, &dbi) != 0)
        goto out;
    MDB_val k = {.mv_size = 4, .mv_data = "user"}, v = {.mv_size = 5, .mv_data = "hash!"};
    rc = 32;
    if (mdb_put(txn, dbi, &k, &v, 0) != 0)
        goto out;
    int c = mdb_txn_commit(txn);
    txn = NULL;
    if (c != 0)
        goto out;
    rc = 33;
    MDB_val got;
    if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0 || mdb_get(txn, dbi, &k, &got) != 0 ||
        got.mv_size != 5)
        goto out;
    rc = 0;
out:
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (env != NULL)
        mdb_env_close(env);
    return rc;
}

static int authd_argon2_and_key(const fixture *fx)
{
    char enc[128];
    const char pw[] = "correct horse";
    const unsigned char salt[16] = "0123456789abcdef";
    /* 32 MiB, two lanes: big mmaps and argon2's own threads */
    if (argon2id_hash_encoded(2, 32768, 2, pw, strlen(pw), salt, sizeof salt, 32, enc,
                              sizeof enc) != ARGON2_OK ||
        argon2id_verify(enc, pw, strlen(pw)) != ARGON2_OK)
        return 40;
    /* first TOTP enrolment: the key file is created atomically */
    char tmp[400], key[400];
    if (sk_snprintf(tmp, sizeof tmp, "%s/totp.key.tmp", fx->dir) != 0 ||
        sk_snprintf(key, sizeof key, "%s/totp.key", fx->dir) != 0)
        return 41;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, "k3y", 3) != 3 || fsync(fd) != 0 || close(fd) != 0 ||
        rename(tmp, key) != 0)
        return 42;
    return 0;
}

static int child_authd_work(const fixture *fx, const void *arg)
{
    (void)arg;
    enter_or_die(fx, SK_SANDBOX_AUTHD, 0);
    int rc = common_work();
    if (rc == 0)
        rc = authd_lmdb(fx);
    return rc != 0 ? rc : authd_argon2_and_key(fx);
}

static void test_authd_legit(void **state)
{
    fixture *fx = *state;
    assert_exit_ok(run_child(fx, child_authd_work, NULL));
    /* the work really happened on disk */
    char key[400];
    assert_int_equal(sk_snprintf(key, sizeof key, "%s/totp.key", fx->dir), 0);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_size, 3);
}

/* ---- auditd --------------------------------------------------------------- */

static int child_auditd_work(const fixture *fx, const void *arg)
{
    (void)arg;
    enter_or_die(fx, SK_SANDBOX_AUDITD, 0);
    int rc = common_work();
    if (rc != 0)
        return rc;
    char sub[400], log[450], head[450], tmp[450];
    if (sk_snprintf(sub, sizeof sub, "%s/audit", fx->dir) != 0 ||
        sk_snprintf(log, sizeof log, "%s/current.log", sub) != 0 ||
        sk_snprintf(head, sizeof head, "%s/audit.key.head", fx->dir) != 0 ||
        sk_snprintf(tmp, sizeof tmp, "%s/audit.key.head.tmp", fx->dir) != 0)
        return 50;
    if (mkdir(sub, 0700) != 0)
        return 51;
    /* the key-rotation probe (audit_seal.c) */
    if (access(tmp, F_OK) != -1 || errno != ENOENT)
        return 55;
    for (int i = 0; i < 3; i++) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0 || flock(fd, LOCK_EX) != 0 || write(fd, "line\n", 5) != 5 ||
            fdatasync(fd) != 0 || close(fd) != 0)
            return 52;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, "head", 4) != 4 || fsync(fd) != 0 || close(fd) != 0 ||
        rename(tmp, head) != 0)
        return 53;
    char rotated[460];
    if (sk_snprintf(rotated, sizeof rotated, "%s.1", log) != 0 || rename(log, rotated) != 0 ||
        unlink(rotated) != 0)
        return 54;
    return 0;
}

static void test_auditd_legit(void **state)
{
    fixture *fx = *state;
    assert_exit_ok(run_child(fx, child_auditd_work, NULL));
    char head[400];
    assert_int_equal(sk_snprintf(head, sizeof head, "%s/audit.key.head", fx->dir), 0);
    struct stat st;
    assert_int_equal(stat(head, &st), 0);
    assert_int_equal(st.st_size, 4);
}

/* ---- forbidden actions ------------------------------------------------------ */

typedef struct violation {
    enum sk_sandbox_role role;
    const char *what;
} violation;

static int child_violate(const fixture *fx, const void *arg)
{
    const violation *v = arg;
    enter_or_die(fx, v->role, 0);
    char what[500];
    if (strcmp(v->what, "openat-outside") == 0) {
        if (sk_snprintf(what, sizeof what, "openat-ro:%s/secret", fx->out) != 0)
            return 60;
    } else if (strcmp(v->what, "openat-write") == 0) {
        if (sk_snprintf(what, sizeof what, "openat:%s/new", fx->ro) != 0)
            return 60;
    } else if (sk_strlcpy(what, sizeof what, v->what) != 0) {
        return 60;
    }
    int rc = sk_sandbox_test_violate(what);
    /* Refused without a kill: report errno to the parent (EACCES=13, EPERM=1). */
    if (rc == -1)
        _exit(100 + (errno & 0x1f));
    _exit(C_RETURNED);
}

static int violate(fixture *fx, enum sk_sandbox_role role, const char *what)
{
    violation v = {.role = role, .what = what};
    return run_child(fx, child_violate, &v);
}

static const enum sk_sandbox_role all_roles[] = {SK_SANDBOX_NET, SK_SANDBOX_AUTHD,
                                                 SK_SANDBOX_AUDITD};

static void test_forbidden_everywhere(void **state)
{
    fixture *fx = *state;
    for (size_t i = 0; i < 3; i++) {
        enum sk_sandbox_role r = all_roles[i];
        print_message("role %s\n", sk_sandbox_role_name(r));
        assert_sigsys(violate(fx, r, "execve"));
        assert_sigsys(violate(fx, r, "fork"));
        assert_sigsys(violate(fx, r, "process_vm_readv"));
#if defined(SK_TEST_ASAN)
        /* ASan builds allow ptrace for LeakSanitizer; Landlock still refuses to
         * attach to a process outside the sandbox. */
        int st = violate(fx, r, "ptrace");
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 100 + EPERM);
#else
        assert_sigsys(violate(fx, r, "ptrace"));
#endif
        /* outside the allowed paths: Landlock answers EACCES */
        int so = violate(fx, r, "openat-outside");
        assert_true(WIFEXITED(so));
        assert_int_equal(WEXITSTATUS(so), 100 + EACCES);
    }
}

static void test_forbidden_sockets(void **state)
{
    fixture *fx = *state;
    assert_sigsys(violate(fx, SK_SANDBOX_AUTHD, "socket"));
    assert_sigsys(violate(fx, SK_SANDBOX_AUDITD, "socket"));
    /* net may create sockets but never bind one */
    assert_sigsys(violate(fx, SK_SANDBOX_NET, "bind"));
}

static void test_net_no_write_open(void **state)
{
    fixture *fx = *state;
    /* inside its read-only directory: the seccomp filter answers EACCES */
    int st = violate(fx, SK_SANDBOX_NET, "openat-write");
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 100 + EACCES);
    char p[400];
    assert_int_equal(sk_snprintf(p, sizeof p, "%s/new", fx->ro), 0);
    assert_int_equal(access(p, F_OK), -1); /* nothing was created */
}

static int child_misc_kills(const fixture *fx, const void *arg)
{
    const char *what = arg;
    enter_or_die(fx, SK_SANDBOX_NET, 0);
    if (strcmp(what, "kill-parent") == 0)
        (void)kill(getppid(), SIGTERM);
    else if (strcmp(what, "netlink") == 0)
        (void)socket(AF_NETLINK, SOCK_RAW, 0);
    else if (strcmp(what, "unix") == 0)
        return socket(AF_UNIX, SOCK_STREAM, 0) == -1 && errno == EACCES ? 0 : 71;
    else if (strcmp(what, "listen") == 0)
        (void)listen(fx->listen_fd, 4);
    else if (strcmp(what, "clone3") == 0)
        return syscall(SYS_clone3, NULL, 0) == -1 && errno == ENOSYS ? 0 : 70;
    _exit(C_RETURNED);
}

static void test_net_misc(void **state)
{
    fixture *fx = *state;
    assert_sigsys(run_child(fx, child_misc_kills, "kill-parent"));
    assert_sigsys(run_child(fx, child_misc_kills, "netlink"));
    assert_sigsys(run_child(fx, child_misc_kills, "listen"));
    /* socket(AF_UNIX) is refused softly (no pathname socket can be reached) */
    assert_exit_ok(run_child(fx, child_misc_kills, "unix"));
    /* clone3 answers ENOSYS (so glibc falls back to clone, whose flags are checked) */
    assert_exit_ok(run_child(fx, child_misc_kills, "clone3"));
}

/* ---- the state the kernel reports ------------------------------------------ */

static int child_pause(const fixture *fx, const void *arg)
{
    const int *pipes = arg; /* [0] read end: wait; [1] write end: ready */
    enter_or_die(fx, SK_SANDBOX_AUTHD, 0);
    char err[256];
    sk_sandbox_paths p;
    fill_paths(fx, SK_SANDBOX_AUTHD, &p);
    int again = sk_sandbox_enter(SK_SANDBOX_AUTHD, 0, &p, err, sizeof err);
    char r = (again == -1 && strstr(err, "already sandboxed") != NULL && sk_sandbox_active()) ? 'y'
                                                                                              : 'n';
    if (write(pipes[1], &r, 1) != 1 || read(pipes[0], &r, 1) != 1)
        return 80;
    return 0;
}

static void test_kernel_state(void **state)
{
    fixture *fx = *state;
    int down[2], up[2];
    assert_int_equal(pipe(down), 0);
    assert_int_equal(pipe(up), 0);
    int ends[2] = {down[0], up[1]};
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        exit(child_pause(fx, ends));
    char r = 0;
    assert_int_equal(read(up[0], &r, 1), 1);
    assert_int_equal(r, 'y'); /* the second sk_sandbox_enter was refused */
    char path[64], buf[4096];
    assert_int_equal(sk_snprintf(path, sizeof path, "/proc/%d/status", (int)pid), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "NoNewPrivs:\t1"));
    assert_non_null(strstr(buf, "Seccomp:\t2"));
    assert_non_null(strstr(buf, "Seccomp_filters:\t1")); /* one filter, not two */
    assert_int_equal(write(down[1], "x", 1), 1);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_exit_ok(st);
    close(down[0]);
    close(down[1]);
    close(up[0]);
    close(up[1]);
}

/* ---- auditd with a command -------------------------------------------------- */

static int child_exec(const fixture *fx, const void *arg)
{
    (void)arg;
    sk_sandbox_paths p;
    fill_paths(fx, SK_SANDBOX_AUDITD, &p);
    /* the shell, its loader and libraries */
    const char *sys[] = {"/bin", "/usr", "/lib", "/lib64", "/etc/ld.so.cache"};
    size_t k = 1;
    for (size_t i = 0; i < SK_ARRAY_LEN(sys); i++)
        if (access(sys[i], F_OK) == 0)
            p.read_only[k++] = sys[i];
    char err[256];
    if (sk_sandbox_enter(SK_SANDBOX_AUDITD, SK_SANDBOX_ALLOW_EXEC, &p, err, sizeof err) != 0) {
        fprintf(stderr, "child: %s\n", err);
        return C_ENTER;
    }
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"exit 7", NULL};
    pid_t c;
    if (posix_spawn(&c, "/bin/sh", NULL, NULL, argv, environ) != 0)
        return 85;
    int st;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
        return 86;
    return 0;
}

static void test_auditd_exec_flag(void **state)
{
    fixture *fx = *state;
    assert_exit_ok(run_child(fx, child_exec, NULL));
    /* without the flag the same spawn dies */
    assert_sigsys(violate(fx, SK_SANDBOX_AUDITD, "execve"));
}

/* authd with a database server (SK_SANDBOX_ALLOW_DB): TCP and unix sockets and
 * connect work; bind and listen still kill; the flag is refused for the other
 * roles. arg: the loopback port of a listener the parent holds. */
static int child_db(const fixture *fx, const void *arg)
{
    const struct sockaddr_in *to = arg; /* [0]: the database's port, [1]: another */
    sk_sandbox_paths p;
    char err[256];
    int fd, ufd, other, abi = sk_sandbox_landlock_abi(); /* asked before: no Landlock calls after */
    fill_paths(fx, SK_SANDBOX_AUTHD, &p);
    p.connect_tcp[0] = ntohs(to[0].sin_port);
    p.n_connect_tcp = 1;
    if (sk_sandbox_enter(SK_SANDBOX_AUTHD, SK_SANDBOX_ALLOW_DB, &p, err, sizeof err) != 0) {
        fprintf(stderr, "child: sk_sandbox_enter(authd, db): %s\n", err);
        return C_ENTER;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    other = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ufd < 0 || other < 0)
        return 1;
    if (connect(fd, (const struct sockaddr *)&to[0], sizeof to[0]) != 0)
        return 2;
    /* Another port: refused by Landlock where the kernel has ABI 4. */
    if (abi >= 4 &&
        (connect(other, (const struct sockaddr *)&to[1], sizeof to[1]) == 0 || errno != EACCES))
        return 3;
    close(fd);
    close(other);
    close(ufd);
    return C_OK;
}

static int child_db_listen(const fixture *fx, const void *arg)
{
    int fd;
    (void)arg;
    enter_or_die(fx, SK_SANDBOX_AUTHD, SK_SANDBOX_ALLOW_DB);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1;
    (void)listen(fd, 1); /* must not return */
    return C_RETURNED;
}

static void test_authd_db_flag(void **state)
{
    fixture *fx = *state;
    struct sockaddr_in a[2];
    char err[256];
    int l[2];
    for (int i = 0; i < 2; i++) {
        socklen_t len = sizeof a[i];
        l[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(l[i] >= 0);
        memset(&a[i], 0, sizeof a[i]);
        a[i].sin_family = AF_INET;
        a[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(l[i], (struct sockaddr *)&a[i], sizeof a[i]), 0);
        assert_int_equal(listen(l[i], 4), 0);
        assert_int_equal(getsockname(l[i], (struct sockaddr *)&a[i], &len), 0);
    }
    assert_exit_ok(run_child(fx, child_db, a));
    assert_sigsys(run_child(fx, child_db_listen, NULL));
    close(l[0]);
    close(l[1]);
    /* without the flag authd's socket() kills (test_forbidden_sockets) */
    assert_int_equal(sk_sandbox_enter(SK_SANDBOX_NET, SK_SANDBOX_ALLOW_DB, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "not valid for role net"));
    assert_int_equal(sk_sandbox_enter(SK_SANDBOX_AUDITD, SK_SANDBOX_ALLOW_DB, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "not valid for role auditd"));
}

/* ---- LeakSanitizer still works inside the sandbox (ASan build only) --------- */

#if defined(SK_TEST_ASAN)
static void *volatile leak_sink;

static int child_leak(const fixture *fx, const void *arg)
{
    (void)arg;
    enter_or_die(fx, SK_SANDBOX_NET, 0);
    leak_sink = malloc(4242);
    leak_sink = NULL; /* lost: LSan must find it at exit, under the filter */
    return 0;
}
#endif

static void test_lsan_in_sandbox(void **state)
{
#if defined(SK_TEST_ASAN)
    fixture *fx = *state;
    const char *o = getenv("ASAN_OPTIONS");
    if (o != NULL && strstr(o, "detect_leaks=0") != NULL)
        skip();
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (dup2(pp[1], 2) < 0)
            _exit(1);
        close(pp[0]);
        exit(child_leak(fx, NULL));
    }
    close(pp[1]);
    static char report[65536];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof report - 1 && (n = read(pp[0], report + len, sizeof report - 1 - len)) > 0)
        len += (size_t)n;
    report[len] = '\0';
    close(pp[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    /* LSan ran under the filter, found the leak, and ended the process its way:
     * a non-zero exit (ASan's exitcode, 1 by default), or abort() with
     * abort_on_error=1 (scripts/test.sh) */
    if (strstr(report, "LeakSanitizer: detected memory leaks") == NULL)
        fail_msg("no leak report (wait status 0x%x); the child's stderr was:\n%s", st, report);
    assert_non_null(strstr(report, "4242 byte(s)"));
    if (WIFSIGNALED(st))
        assert_int_equal(WTERMSIG(st), SIGABRT);
    else
        assert_int_not_equal(WEXITSTATUS(st), 0);
#else
    (void)state;
    skip();
#endif
}

/* ---- a kernel without Landlock: seccomp alone, one notice, no failure ------- */

static int child_no_landlock(const fixture *fx, const void *arg)
{
    (void)arg;
    /* Simulate the old kernel: landlock_create_ruleset answers ENOSYS. */
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL ||
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(landlock_create_ruleset), 0) != 0 ||
        seccomp_load(ctx) != 0)
        return 95;
    seccomp_release(ctx);
    if (sk_sandbox_landlock_abi() != 0)
        return 96;
    enter_or_die(fx, SK_SANDBOX_AUTHD, 0);
    /* no file fence now: a file outside the paths opens */
    char p[400];
    if (sk_snprintf(p, sizeof p, "%s/secret", fx->out) != 0)
        return 97;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 98;
    close(fd);
    /* but the syscall allowlist is in force */
    (void)socket(AF_INET, SOCK_STREAM, 0);
    return C_RETURNED;
}

static void test_no_landlock_kernel(void **state)
{
    fixture *fx = *state;
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (dup2(pp[1], 2) < 0)
            _exit(1);
        close(pp[0]);
        exit(child_no_landlock(fx, NULL));
    }
    close(pp[1]);
    char log[4096];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof log - 1 && (n = read(pp[0], log + len, sizeof log - 1 - len)) > 0)
        len += (size_t)n;
    log[len] = '\0';
    close(pp[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFSIGNALED(st))
        fail_msg("child status 0x%x, stderr:\n%s", st, log);
    assert_int_equal(WTERMSIG(st), SIGSYS);
    assert_non_null(strstr(log, "the kernel has no Landlock"));
}

/* ---- argument errors: refused before anything is restricted ----------------- */

static void *sleeper(void *arg)
{
    int fd = *(int *)arg;
    char c;
    return read(fd, &c, 1) == 1 ? NULL : arg;
}

static void test_bad_arguments(void **state)
{
    fixture *fx = *state;
    char err[256];
    sk_sandbox_paths p;
    memset(&p, 0, sizeof p);
    p.read_only[0] = "/nonexistent/sekisho-ca.pem";
    assert_int_equal(sk_sandbox_enter(SK_SANDBOX_NET, 0, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/sekisho-ca.pem"));
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(sk_sandbox_active(), 0);

    memset(&p, 0, sizeof p);
    p.read_write[0] = "relative/dir";
    assert_int_equal(sk_sandbox_enter(SK_SANDBOX_AUTHD, 0, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "not an absolute path"));

    for (size_t i = 0; i < SK_SANDBOX_MAX_PATHS; i++)
        p.read_only[i] = fx->ro; /* no NULL terminator */
    p.read_write[0] = NULL;
    assert_int_equal(sk_sandbox_enter(SK_SANDBOX_NET, 0, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "NULL terminator"));

    assert_int_equal(sk_sandbox_enter(SK_SANDBOX_NET, SK_SANDBOX_ALLOW_EXEC, NULL, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "not valid for role net"));
    assert_int_equal(sk_sandbox_enter((enum sk_sandbox_role)7, 0, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown sandbox role"));

    /* a second thread already running */
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sleeper, &pp[0]), 0);
    assert_int_equal(sk_sandbox_enter(SK_SANDBOX_NET, 0, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "2 threads"));
    assert_int_equal(write(pp[1], "x", 1), 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    close(pp[0]);
    close(pp[1]);

    /* and this process is still unrestricted: it can fork and exec */
    assert_int_equal(sk_sandbox_active(), 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(1);
    }
    int st;
    assert_int_equal(waitpid(c, &st, 0), c);
    assert_exit_ok(st);
}

static void test_role_names(void **state)
{
    (void)state;
    assert_string_equal(sk_sandbox_role_name(SK_SANDBOX_NET), "net");
    assert_string_equal(sk_sandbox_role_name(SK_SANDBOX_AUTHD), "authd");
    assert_string_equal(sk_sandbox_role_name(SK_SANDBOX_AUDITD), "auditd");
    assert_string_equal(sk_sandbox_role_name((enum sk_sandbox_role)9), "?");
    assert_true(sk_sandbox_landlock_abi() >= 0);
    print_message("Landlock ABI %d\n", sk_sandbox_landlock_abi());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_names),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_net_legit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authd_legit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auditd_legit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forbidden_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forbidden_sockets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_net_no_write_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_net_misc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kernel_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auditd_exec_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authd_db_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lsan_in_sandbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_landlock_kernel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
