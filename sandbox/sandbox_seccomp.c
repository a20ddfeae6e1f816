/*
 * sandbox_seccomp.c — the per-role seccomp-bpf allowlists (libseccomp).
 *
 * The lists are tables, not branches: a base every role needs, one table per
 * role, one for SK_SANDBOX_ALLOW_EXEC and one for sanitizer runtimes. Calls that
 * need an argument check (clone, socket, socketpair, openat in net, prctl, kill,
 * tgkill, prlimit64) are not in the tables: sk_sandbox_seccomp_load() adds them
 * with their conditions. They were derived by running the gateway's integration
 * tests (release and ASan builds) under `strace -f` and by the unit tests in
 * tests/unit/sandbox, which exercise what each role does for real. To redo the
 * derivation after a change: python3 sandbox/trace-syscalls.py BUILD_DIR TESTS...
 * (per process: what it called, and what each role's tables would refuse).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox_internal.h"

/* clang-format off */
/* Everyone: memory, threads' bookkeeping, signals delivered to itself, time,
 * randomness, I/O on descriptors it already holds, event loops. */
static const char *const base_calls[] = {
    "read", "readv", "write", "writev", "pread64", "close", "fstat", "newfstatat", "statx",
    "lseek", "fcntl", "dup", "dup2", "dup3", "getdents64", "readlink", "readlinkat",
    /* audit_seal.c probes audit.key.next with access(); like stat, it reveals
     * only existence, which Landlock does not fence either */
    "access", "faccessat", "faccessat2",
    "mmap", "munmap", "mprotect", "madvise", "brk", "mremap",
    "futex", "set_robust_list", "rseq", "exit", "exit_group", "sched_yield",
    "sched_getaffinity", "membarrier",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "rt_sigsuspend",
    "sigaltstack", "restart_syscall",
    "getpid", "gettid", "getuid", "geteuid", "getgid", "getegid",
    "clock_gettime", "clock_getres", "gettimeofday", "time", "clock_nanosleep", "nanosleep",
    /* sk_clock_synced(): modes=0 is a read; setting the clock needs CAP_SYS_TIME,
     * which no Sekisho process holds. */
    "clock_adjtime", "adjtimex",
    "getrandom", "uname", "sysinfo",
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "poll", "ppoll", "select", "pselect6",
    "eventfd2", "timerfd_create", "timerfd_settime", "timerfd_gettime", "pipe2",
    "sendmsg", "recvmsg", "sendto", "recvfrom", "sendmmsg", "recvmmsg", "shutdown",
    "getsockopt", "setsockopt", "getsockname", "getpeername",
};

/* TLS, HTTP, proxy. socket() and openat are added with conditions. */
static const char *const net_calls[] = {
    "connect", "accept4", "accept",
};

/* LMDB (mmap MAP_SHARED, pwrite, fdatasync, flock, fcntl locks), TOTP key file. */
static const char *const authd_calls[] = {
    "openat", "pwrite64", "pwritev", "fdatasync", "fsync", "msync", "ftruncate", "fallocate",
    "flock", "fstatfs", "rename", "renameat", "renameat2", "unlink", "unlinkat",
    "mkdir", "mkdirat", "fchmod", "umask",
    /* the TOTP key is published with link(2) so that a concurrent creator loses */
    "link", "linkat",
};

/* The audit directory, the key and its .head file; accepting the tools on the
 * ctl socket the monitor created. */
static const char *const auditd_calls[] = {
    "accept4", "openat", "pwrite64", "pwritev", "fdatasync", "fsync", "ftruncate", "flock", "fstatfs",
    "rename", "renameat", "renameat2", "unlink", "unlinkat", "mkdir", "mkdirat", "rmdir",
    "fchmod", "umask",
};

/* auditd with a witness/notify command: posix_spawn or fork of /bin/sh, what the
 * dynamic loader and a plain shell do after execve (they inherit this filter),
 * and reaping/killing the child. */
static const char *const exec_calls[] = {
    "execve", "wait4", "waitid", "kill", "vfork", "arch_prctl", "set_tid_address", "getppid", "getpgrp", "setpgid", "getcwd", "chdir",
    "ioctl", "prlimit64", "pipe", "stat", "lstat", "open", "fadvise64",
};

#if SK_SANDBOX_SANITIZED
/* ASan/UBSan/LSan runtimes: start-up probes, report writing, and LeakSanitizer's
 * exit-time StopTheWorld (a tracer task attaching to every thread). */
static const char *const sanitizer_calls[] = {
    "ptrace", "wait4", "getdents", "stat", "lstat", "getppid", "sched_getparam", "getrusage", "getrlimit", "ioctl",
    "getcwd",
};
#endif

/* clang-format on */

static int add_table(scmp_filter_ctx ctx, const char *const *names, size_t n, char *err,
                     size_t errcap)
{
    for (size_t i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr == __NR_SCMP_ERROR) {
            sk_sandbox_err(err, errcap, "seccomp: unknown syscall name %s", names[i]);
            return -1;
        }
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        /* -EEXIST: listed in two tables (harmless); anything else is a bug. */
        if (rc < 0 && rc != -EEXIST) {
            sk_sandbox_err(err, errcap, "seccomp: allowing %s: %s", names[i], strerror(-rc));
            return -1;
        }
    }
    return 0;
}

/* One conditional rule; the name is for the error message. */
#define RULE(action, name, ...)                                                                    \
    do {                                                                                           \
        int rc_ = seccomp_rule_add(ctx, (action), SCMP_SYS(name), __VA_ARGS__);                    \
        if (rc_ < 0 && rc_ != -EEXIST) {                                                           \
            sk_sandbox_err(err, errcap, "seccomp: rule for %s: %s", #name, strerror(-rc_));        \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* Flags that make an open write-capable. O_TRUNC truncates even with O_RDONLY. */
/* O_TMPFILE's own bit: glibc's O_TMPFILE includes O_DIRECTORY, which a read-only
 * opendir() uses, so it must not be in the mask. */
#define SK_O_TMPFILE_BIT 020000000
static const unsigned long net_write_open_flags[] = {O_WRONLY, O_RDWR,   O_CREAT,
                                                     O_TRUNC,  O_APPEND, SK_O_TMPFILE_BIT};

static int add_conditional(scmp_filter_ctx ctx, enum sk_sandbox_role role, unsigned flags,
                           char *err, size_t errcap)
{
    int ret = -1;
    scmp_datum_t self = (scmp_datum_t)getpid();

    /* Threads only: a fork or a vfork without CLONE_THREAD dies. clone3 hides its
     * flags behind a pointer BPF cannot follow, so it answers ENOSYS and glibc
     * falls back to clone(), whose flags are checked here. */
    RULE(SCMP_ACT_ALLOW, clone, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    RULE(SCMP_ACT_ERRNO(ENOSYS), clone3, 0);
    RULE(SCMP_ACT_ALLOW, socketpair, 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
    /* Signals only to itself (raise, abort, pthread_kill). */
    RULE(SCMP_ACT_ALLOW, tgkill, 1, SCMP_A0(SCMP_CMP_EQ, self, 0));
    RULE(SCMP_ACT_ALLOW, kill, 1, SCMP_A0(SCMP_CMP_EQ, self, 0));
    /* Reading limits (pthread stack size), never raising them. */
    RULE(SCMP_ACT_ALLOW, prlimit64, 2, SCMP_A0(SCMP_CMP_EQ, 0, 0), SCMP_A2(SCMP_CMP_EQ, 0, 0));
    RULE(SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME, 0));
    RULE(SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME, 0));
    /* openat2 (its flags behind a pointer): glibc never needs it; ENOSYS makes a
     * library that tries it fall back to openat. */
    RULE(SCMP_ACT_ERRNO(ENOSYS), openat2, 0);

    if (flags & SK_SANDBOX_ALLOW_DB) {
        /* The database client: TCP or the server's unix socket, nothing else. */
        RULE(SCMP_ACT_ALLOW, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_INET, 0));
        RULE(SCMP_ACT_ALLOW, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_INET6, 0));
        RULE(SCMP_ACT_ALLOW, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
        RULE(SCMP_ACT_ALLOW, connect, 0);
    }
    if (role == SK_SANDBOX_NET) {
        RULE(SCMP_ACT_ALLOW, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_INET, 0));
        RULE(SCMP_ACT_ALLOW, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_INET6, 0));
        /* Not AF_UNIX: connect() to a pathname socket (D-Bus, the journal, any
         * local daemon) is beyond Landlock's reach. The gateway never creates one
         * (its AF_UNIX sockets come from socketpair or are inherited); glibc's
         * resolver tries nscd's socket and falls back quietly on EACCES. */
        RULE(SCMP_ACT_ERRNO(EACCES), socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
        unsigned long all = 0;
        for (size_t i = 0; i < SK_ARRAY_LEN(net_write_open_flags); i++) {
            all |= net_write_open_flags[i];
            RULE(SCMP_ACT_ERRNO(EACCES), openat, 1,
                 SCMP_A2(SCMP_CMP_MASKED_EQ, net_write_open_flags[i], net_write_open_flags[i]));
        }
        RULE(SCMP_ACT_ALLOW, openat, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, all, 0));
#if SK_SANDBOX_SANITIZED
        /* the sanitizer runtimes' internal_open is the legacy open(2) */
        for (size_t i = 0; i < SK_ARRAY_LEN(net_write_open_flags); i++)
            RULE(SCMP_ACT_ERRNO(EACCES), open, 1,
                 SCMP_A1(SCMP_CMP_MASKED_EQ, net_write_open_flags[i], net_write_open_flags[i]));
        RULE(SCMP_ACT_ALLOW, open, 1, SCMP_A1(SCMP_CMP_MASKED_EQ, all, 0));
    } else {
        RULE(SCMP_ACT_ALLOW, open, 0);
#endif
    }
    if (flags & SK_SANDBOX_ALLOW_EXEC) {
        /* Any clone: posix_spawn's CLONE_VM|CLONE_VFORK, fork's SIGCHLD. */
        RULE(SCMP_ACT_ALLOW, clone, 0);
    }
#if SK_SANDBOX_SANITIZED
    /* LeakSanitizer's tracer task shares memory but is not a thread. */
    RULE(SCMP_ACT_ALLOW, clone, 1,
         SCMP_A0(SCMP_CMP_EQ, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED, 0));
    RULE(SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_PTRACER, 0));
    RULE(SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_GET_DUMPABLE, 0));
    RULE(SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_DUMPABLE, 0));
    RULE(SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_PDEATHSIG, 0));
#endif
    ret = 0;
out:
    return ret;
}

int sk_sandbox_seccomp_load(enum sk_sandbox_role role, unsigned flags, char *err, size_t errcap)
{
    int ret = -1;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (ctx == NULL) {
        sk_sandbox_err(err, errcap, "seccomp: seccomp_init failed");
        return -1;
    }
    /* Syscalls of another ABI (i386 int 0x80, x32) kill too; every thread gets
     * the filter, not only the caller. */
    if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0 ||
        seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0) {
        sk_sandbox_err(err, errcap, "seccomp: setting filter attributes failed");
        goto out;
    }
    if (add_table(ctx, base_calls, SK_ARRAY_LEN(base_calls), err, errcap) != 0)
        goto out;
    int trc = 0;
    switch (role) {
    case SK_SANDBOX_NET:
        trc = add_table(ctx, net_calls, SK_ARRAY_LEN(net_calls), err, errcap);
        break;
    case SK_SANDBOX_AUTHD:
        trc = add_table(ctx, authd_calls, SK_ARRAY_LEN(authd_calls), err, errcap);
        break;
    case SK_SANDBOX_AUDITD:
        trc = add_table(ctx, auditd_calls, SK_ARRAY_LEN(auditd_calls), err, errcap);
        break;
    }
    if (trc != 0)
        goto out;
    if ((flags & SK_SANDBOX_ALLOW_EXEC) &&
        add_table(ctx, exec_calls, SK_ARRAY_LEN(exec_calls), err, errcap) != 0)
        goto out;
#if SK_SANDBOX_SANITIZED
    if (add_table(ctx, sanitizer_calls, SK_ARRAY_LEN(sanitizer_calls), err, errcap) != 0)
        goto out;
#endif
    if (add_conditional(ctx, role, flags, err, errcap) != 0)
        goto out;
    int rc = seccomp_load(ctx);
    if (rc != 0) {
        sk_sandbox_err(err, errcap, "seccomp: loading the filter: %s", strerror(-rc));
        goto out;
    }
    ret = 0;
out:
    seccomp_release(ctx);
    return ret;
}
