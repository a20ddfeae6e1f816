/*
 * sk_sandbox.h — confine one Sekisho child process (issue 9, item 3).
 *
 * The monitor forks three children (net, authd, auditd). Each one opens what it
 * needs (inherited sockets, the store, key files, the CA bundle), then calls
 * sk_sandbox_enter() once, before it reads anything a client sent. From then on:
 *
 *  1. prctl(PR_SET_DUMPABLE, 0): a sibling running as the same uid can no longer
 *     ptrace it, read /proc/PID/mem or /proc/PID/environ (the kernel checks
 *     dumpability for those; root with CAP_SYS_PTRACE still can).
 *  2. prctl(PR_SET_NO_NEW_PRIVS, 1): execve can never gain privileges again (also
 *     what lets an unprivileged process load seccomp and Landlock).
 *  3. Landlock (raw syscalls; the ABI is detected, every right the running kernel
 *     knows is handled): the process may touch only the paths in sk_sandbox_paths.
 *     Everything else on disk answers EACCES. Where the kernel supports it, TCP
 *     bind (all roles) and TCP connect (authd, auditd) are denied (ABI 4), and
 *     signals to / abstract UNIX sockets of processes outside the sandbox are
 *     refused (ABI 6). A kernel without Landlock gives one logged notice and the
 *     process continues with seccomp only: not a failure.
 *  4. A seccomp-bpf allowlist for the role (libseccomp), default action
 *     SCMP_ACT_KILL_PROCESS: any syscall not on the list kills the whole process
 *     with SIGSYS (the monitor sees WTERMSIG == SIGSYS, restarts and audits it).
 *     The filter is synchronised to all threads (SECCOMP_FILTER_FLAG_TSYNC).
 *
 * Role lists (the tables in sandbox_seccomp.c are the reference):
 *  - common to all: memory (mmap/mprotect/munmap/madvise/brk/mremap), threads
 *    (clone ONLY with CLONE_THREAD; clone3 answers ENOSYS so glibc falls back to
 *    clone, where the flags can be checked), futex, signals to itself (tgkill/
 *    kill of its own pid only), time, getrandom, read/write/close/fstat/access,
 *    poll/epoll, eventfd, timerfd, pipe2, sendmsg/recvmsg on inherited or paired
 *    sockets, socketpair(AF_UNIX), fcntl, openat read-only/read-write as the role
 *    allows (Landlock decides which paths), prctl only PR_SET_NAME/PR_GET_NAME.
 *  - net: + socket() of AF_INET/AF_INET6 (AF_UNIX answers EACCES: connect() to a
 *    pathname socket such as D-Bus or the journal is beyond Landlock, and the
 *    gateway never creates one; glibc's nscd probe falls back quietly; any other
 *    family kills), connect, accept4 (on inherited listeners),
 *    getsockname/getpeername/setsockopt/getsockopt/shutdown. openat
 *    with O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND or O_TMPFILE answers EACCES
 *    (not killed: a stray library write attempt fails softly; a file outside the
 *    read-only paths is EACCES from Landlock anyway). No bind, no listen.
 *  - authd: + file writes (pwrite, fdatasync, fsync, ftruncate, rename, unlink,
 *    flock, msync), mmap MAP_SHARED. No socket(), connect, bind, listen, accept,
 *    except with SK_SANDBOX_ALLOW_DB (a PostgreSQL store): socket() of
 *    AF_INET/AF_INET6/AF_UNIX and connect, never bind, listen or accept; TCP
 *    connect only to sk_sandbox_paths.connect_tcp (Landlock ABI 4).
 *  - auditd: + file writes, mkdir, rename, unlink. No socket() and friends.
 *    With SK_SANDBOX_ALLOW_EXEC (a witness or notify command is configured) also
 *    fork (clone without CLONE_THREAD), execve, wait4 and kill. Beware: an
 *    exec'd program inherits this seccomp filter AND the Landlock domain, so the
 *    command must be a simple local program (sh, a script writing a file...), its
 *    binary and libraries must be in read_only (they get execute right with this
 *    flag) and it cannot open a network socket or run setgid. Running those
 *    commands from the (unsandboxed) monitor on auditd's request is the better
 *    design; this flag exists for the transition.
 *  - nowhere: execve/execveat (except ALLOW_EXEC), fork, ptrace,
 *    process_vm_readv/writev, kexec, bpf, mount, umount, pivot_root, chroot,
 *    setuid family, init/delete_module, keyctl, perf_event_open, userfaultfd,
 *    io_uring, unshare, setns, reboot, swapon, iopl/ioperm, open_by_handle_at.
 *
 * Sanitizer builds (SEKISHO_SANITIZE: __SANITIZE_ADDRESS__ or
 * __has_feature(address_sanitizer)) add what ASan/UBSan/LSan need to run and to
 * report: read-only Landlock access to /proc (maps, task list) and to the
 * executable (symbolisation), sched_getaffinity, sigaltstack, readlink,
 * prlimit64, getdents64, plus LeakSanitizer's exit-time StopTheWorld: one
 * clone with exactly CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_UNTRACED (a fork still
 * kills), ptrace (Landlock keeps it inside the process's own domain: attaching
 * to any process outside answers EPERM), wait4, prctl PR_SET_PTRACER/
 * PR_SET_DUMPABLE/PR_GET_DUMPABLE/PR_SET_PDEATHSIG (LSan makes the process
 * dumpable again for its own tracer at exit), and the legacy open/stat/getdents
 * the runtimes' internal syscalls use (net keeps its no-write rule on open).
 * clang's runtime (the fuzz build) symbolises with an llvm-symbolizer child: it
 * is started before the lockdown, so such a process has one extra child; gcc's
 * uses libbacktrace in-process. These never exist in a release build.
 *
 * Typical paths (what each child passes):
 *   net:    read_only  = CA file, CRL file, the server certificate chain (and the
 *                        config file if SIGHUP re-reads it); read_write = none.
 *   authd:  read_write = the state directory (LMDB store), and the directory of
 *                        the TOTP key file when it lives elsewhere (it is created
 *                        there on first enrolment).
 *   auditd: read_write = the audit directory, and the directory of audit.key
 *                        (its .head file is rewritten there by rename).
 *
 * Threads: Landlock confines only the calling thread and its future children,
 * so sk_sandbox_enter() must be called while the process has ONE thread; it
 * refuses (-1) otherwise. Start worker threads afterwards.
 *
 * Before the lockdown it calls tzset() (so localtime() never needs /etc/localtime
 * later) and loads libgcc_s.so.1 (glibc dlopens it on the first pthread_exit or
 * cancellation; argon2's threads end with pthread_exit). Anything else read
 * lazily (OpenSSL config and providers: call OPENSSL_init_ssl first; locale,
 * NSS, dlopen'd modules) must happen before, or its path be listed in read_only.
 * Name resolution after the lockdown (an upstream given by host name and
 * resolved again on SIGHUP) needs /etc/hosts, /etc/resolv.conf,
 * /etc/nsswitch.conf, /etc/host.conf and /etc/gai.conf in net's read_only, and
 * the libnss modules loaded by one getaddrinfo() before; a numeric address needs
 * nothing. DNS itself (UDP sockets) is allowed.
 */
#ifndef SK_SANDBOX_H
#define SK_SANDBOX_H

#include <stddef.h>

#include "sk_util.h"

enum sk_sandbox_role {
    SK_SANDBOX_NET,    /* TLS + HTTP + proxy workers */
    SK_SANDBOX_AUTHD,  /* LMDB store, TOTP key, argon2 */
    SK_SANDBOX_AUDITD, /* the audit directory and the audit key */
};

/* auditd with a configured witness or notify command: permit fork+execve (see
 * the warning above). Refused (-1) for the other roles. */
#define SK_SANDBOX_ALLOW_EXEC 0x1u
/* authd whose store is a database server (PostgreSQL): permit socket() of
 * AF_INET, AF_INET6 and AF_UNIX with connect, and TCP connect under Landlock;
 * still no bind, listen or accept. The files the client library reads at each
 * connection (TLS roots, the resolver's files) must be in read_only. Refused (-1)
 * for the other roles. */
#define SK_SANDBOX_ALLOW_DB 0x2u

#define SK_SANDBOX_MAX_PATHS 16
#define SK_SANDBOX_MAX_PORTS 8

/* Paths the process may still use on disk. Each array is NULL-terminated (at
 * most SK_SANDBOX_MAX_PATHS - 1 entries). Every entry must exist when
 * sk_sandbox_enter() is called (an absent path is an error, not a silent hole):
 *  - read_only:  files or directories (a directory covers its whole subtree)
 *    that may be opened for reading (and listed). With SK_SANDBOX_ALLOW_EXEC
 *    they may be executed too.
 *  - read_write: directories (or single files) where the role may create,
 *    write, truncate, rename and unlink regular files and create/remove
 *    directories. Never device nodes, FIFOs, sockets or symlinks.
 * A NULL `paths` means: nothing at all on disk. For net the seccomp filter also
 * refuses every open for writing, whatever read_write says, so net passes none. */
typedef struct sk_sandbox_paths {
    const char *read_only[SK_SANDBOX_MAX_PATHS];
    const char *read_write[SK_SANDBOX_MAX_PATHS];
    /* With SK_SANDBOX_ALLOW_DB: the TCP ports the database may be reached on
     * (Landlock ABI 4: a connect to any other port answers EACCES). None listed:
     * any port (e.g. a url naming only a unix socket directory needs none, and a
     * url whose port libpq would take from elsewhere cannot be predicted). */
    uint16_t connect_tcp[SK_SANDBOX_MAX_PORTS];
    unsigned n_connect_tcp;
} sk_sandbox_paths;

/* Enter the sandbox for `role` (steps 1-4 above). `flags`: 0 or
 * SK_SANDBOX_ALLOW_EXEC (auditd only). On failure returns -1 and writes a
 * one-line reason to err (capacity errcap); the process is then in an unknown,
 * partly restricted state: the caller must exit (the monitor restarts it). A
 * second call in the same process is refused (-1, "already sandboxed") without
 * touching anything: stacking filters would only confuse the contract.
 * On success returns 0; a kernel without Landlock is logged (sk_log notice)
 * and is still a success. */
int sk_sandbox_enter(enum sk_sandbox_role role, unsigned flags, const sk_sandbox_paths *paths,
                     char *err, size_t errcap) SK_MUST_CHECK;

/* "net", "authd", "auditd"; "?" for a value outside the enum. */
const char *sk_sandbox_role_name(enum sk_sandbox_role role);

/* The Landlock ABI version of the running kernel: >= 1, or 0 when absent or
 * disabled. Informational (logs, tests). */
int sk_sandbox_landlock_abi(void);

/* 1 when this process already entered the sandbox, else 0. */
int sk_sandbox_active(void);

#ifdef SEKISHO_TEST_HOOKS
/* TEST BUILDS ONLY (CMake -DSEKISHO_TEST_HOOKS=ON; the release and packaging
 * paths refuse the option). Performs one forbidden action so a test can watch
 * the filter kill the process:
 *   "openat:PATH"  open PATH for writing (net: EACCES; a path outside the
 *                  sandbox: EACCES from Landlock) — returns -1 with errno set
 *   "openat-ro:PATH" open PATH read-only (outside the paths: EACCES)
 *   "execve"       execve("/bin/true")   -> SIGSYS
 *   "fork"         fork()                -> SIGSYS
 *   "socket"       socket(AF_INET, SOCK_STREAM) (authd/auditd: SIGSYS)
 *   "bind"         bind a new TCP socket to 127.0.0.1:0 (net: SIGSYS)
 *   "ptrace"       ptrace(PTRACE_ATTACH, getppid())  -> SIGSYS (release)
 *   "process_vm_readv" read the parent's memory -> SIGSYS
 * Returns only when the action did not kill: 0 if it succeeded, -1 with errno
 * if the kernel refused it, -2 for an unknown `what`. */
int sk_sandbox_test_violate(const char *what);
#endif

#endif
