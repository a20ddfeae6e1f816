/*
 * sandbox.c — sk_sandbox_enter(): the order of the lockdown steps (see sk_sandbox.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "sandbox_internal.h"

#if SK_SANDBOX_SANITIZED
#include <sanitizer/common_interface_defs.h>
#endif

static int sandbox_entered;

void sk_sandbox_err(char *err, size_t errcap, const char *fmt, ...)
{
    if (err == NULL || errcap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
    if (n < 0)
        err[0] = '\0';
}

const char *sk_sandbox_role_name(enum sk_sandbox_role role)
{
    switch (role) {
    case SK_SANDBOX_NET:
        return "net";
    case SK_SANDBOX_AUTHD:
        return "authd";
    case SK_SANDBOX_AUDITD:
        return "auditd";
    }
    return "?";
}

int sk_sandbox_active(void)
{
    return sandbox_entered;
}

/* Landlock binds only the calling thread (and later children): with a second
 * thread already running, half the process would stay outside. */
static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Files glibc opens on first use, out of reach once Landlock is in force:
 * /etc/localtime (localtime), and libgcc_s, which pthread_exit and thread
 * cancellation dlopen to unwind (argon2's worker threads end with pthread_exit).
 * A missing libgcc_s is not an error here: glibc reports it if ever needed. */
static void preload_lazy_files(void)
{
    tzset();
    (void)dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NODELETE);
#if SK_SANDBOX_SANITIZED
    /* clang's runtime symbolises reports with an llvm-symbolizer child it forks
     * on first use: a fork inside the sandbox would kill the process and lose
     * the report. Symbolising once now starts it (gcc's uses libbacktrace). */
    char sym[256];
    __sanitizer_symbolize_pc(__builtin_return_address(0), "%p %F %L", sym, sizeof sym);
#endif
}

static int check_args(enum sk_sandbox_role role, unsigned flags, char *err, size_t errcap)
{
    if (sandbox_entered) {
        sk_sandbox_err(err, errcap, "already sandboxed: sk_sandbox_enter is called once");
        return -1;
    }
    if (role != SK_SANDBOX_NET && role != SK_SANDBOX_AUTHD && role != SK_SANDBOX_AUDITD) {
        sk_sandbox_err(err, errcap, "unknown sandbox role %d", (int)role);
        return -1;
    }
    if ((flags & ~(SK_SANDBOX_ALLOW_EXEC | SK_SANDBOX_ALLOW_DB)) != 0 ||
        ((flags & SK_SANDBOX_ALLOW_EXEC) && role != SK_SANDBOX_AUDITD) ||
        ((flags & SK_SANDBOX_ALLOW_DB) && role != SK_SANDBOX_AUTHD)) {
        sk_sandbox_err(err, errcap, "sandbox flags 0x%x not valid for role %s", flags,
                       sk_sandbox_role_name(role));
        return -1;
    }
    int n = count_threads();
    if (n != 1) {
        sk_sandbox_err(err, errcap,
                       n < 0 ? "cannot count threads (/proc/self/task unreadable)"
                             : "process has %d threads: enter the sandbox before starting any",
                       n);
        return -1;
    }
    return 0;
}

int sk_sandbox_enter(enum sk_sandbox_role role, unsigned flags, const sk_sandbox_paths *paths,
                     char *err, size_t errcap)
{
    int llfd = -1;
    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (check_args(role, flags, err, errcap) != 0)
        return -1;
    /* Every path is opened here, before anything is restricted: a typo in the
     * configuration leaves the process as it was, with a clear error. */
    if (sk_sandbox_landlock_prepare(role, flags, paths, &llfd, err, errcap) != 0)
        return -1;
    int abi = sk_sandbox_landlock_abi();
    preload_lazy_files();
    /* From here on a failure leaves the process half-locked: the caller exits. */
    sandbox_entered = 1;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        sk_sandbox_err(err, errcap, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));
        goto fail;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        sk_sandbox_err(err, errcap, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
        goto fail;
    }
    if (sk_sandbox_landlock_apply(llfd, err, errcap) != 0) {
        llfd = -1; /* closed by apply */
        goto fail;
    }
    llfd = -1;
    if (sk_sandbox_seccomp_load(role, flags, err, errcap) != 0)
        goto fail;
    if (abi == 0)
        sk_log(SK_LOG_WARN,
               "sandbox %s: the kernel has no Landlock: files are fenced by seccomp only",
               sk_sandbox_role_name(role));
    else
        sk_log(SK_LOG_DEBUG, "sandbox %s: seccomp allowlist and Landlock ABI %d in force",
               sk_sandbox_role_name(role), abi);
    return 0;
fail:
    if (llfd >= 0)
        close(llfd);
    return -1;
}
