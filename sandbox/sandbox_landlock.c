/*
 * sandbox_landlock.c — the filesystem (and TCP, signal) fence, raw Landlock syscalls.
 *
 * Debian 12's linux/landlock.h stops at ABI 2; the newer rights are defined here
 * with their kernel values, and only those the running kernel's ABI knows are
 * "handled" (asking for an unknown right is EINVAL). Unhandled rights are simply
 * not restricted, so an older kernel gives a weaker but working fence.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox_internal.h"

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

#ifndef LANDLOCK_RULE_NET_PORT
#define LANDLOCK_RULE_NET_PORT 2
#endif
/* The kernel's struct landlock_net_port_attr (ABI 4). */
struct sk_ll_net_port_attr {
    uint64_t allowed_access;
    uint64_t port;
};

/* The kernel's struct landlock_ruleset_attr as of ABI 6; its size is passed
 * per ABI so older kernels see only the fields they know. */
struct sk_ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

#define LL_FS_ABI1 ((1ULL << 13) - 1) /* EXECUTE .. MAKE_SYM */
#define LL_FILE_RIGHTS                                                                             \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |   \
     LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define LL_RO (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_RW                                                                                      \
    (LL_RO | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |                       \
     LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |  \
     LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE)

int sk_sandbox_landlock_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return v < 0 ? 0 : (int)v;
}

static uint64_t handled_fs(int abi)
{
    uint64_t fs = LL_FS_ABI1;
    if (abi >= 2)
        fs |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return fs;
}

/* Open one configured path (O_PATH: no read right needed, no side effect) and,
 * when fd >= 0, add it to the ruleset with `rights` (trimmed to what a
 * non-directory can carry). */
static int add_path(int fd, const char *path, uint64_t rights, uint64_t handled, char *err,
                    size_t errcap)
{
    int ret = -1;
    if (path[0] != '/') {
        sk_sandbox_err(err, errcap, "landlock: %s: not an absolute path", path);
        return -1;
    }
    int pfd = open(path, O_PATH | O_CLOEXEC);
    if (pfd < 0) {
        sk_sandbox_err(err, errcap, "landlock: %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(pfd, &st) != 0) {
        sk_sandbox_err(err, errcap, "landlock: %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISDIR(st.st_mode))
        rights &= LL_FILE_RIGHTS;
    struct landlock_path_beneath_attr pb = {.allowed_access = rights & handled, .parent_fd = pfd};
    if (fd >= 0 && syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0) {
        sk_sandbox_err(err, errcap, "landlock: rule for %s: %s", path, strerror(errno));
        goto out;
    }
    ret = 0;
out:
    close(pfd);
    return ret;
}

static int add_list(int fd, const char *const *list, uint64_t rights, uint64_t handled,
                    const char *what, char *err, size_t errcap)
{
    size_t i = 0;
    for (; i < SK_SANDBOX_MAX_PATHS && list[i] != NULL; i++)
        if (add_path(fd, list[i], rights, handled, err, errcap) != 0)
            return -1;
    if (i == SK_SANDBOX_MAX_PATHS) {
        sk_sandbox_err(err, errcap, "landlock: %s: more than %d paths or no NULL terminator", what,
                       SK_SANDBOX_MAX_PATHS - 1);
        return -1;
    }
    return 0;
}

/* The database's TCP ports (SK_SANDBOX_ALLOW_DB): connect allowed to these only. */
static int add_ports(int fd, const sk_sandbox_paths *paths, char *err, size_t errcap)
{
    if (paths == NULL)
        return 0;
    if (paths->n_connect_tcp > SK_SANDBOX_MAX_PORTS) {
        sk_sandbox_err(err, errcap, "landlock: more than %d database ports", SK_SANDBOX_MAX_PORTS);
        return -1;
    }
    for (unsigned i = 0; i < paths->n_connect_tcp; i++) {
        struct sk_ll_net_port_attr np = { LANDLOCK_ACCESS_NET_CONNECT_TCP, paths->connect_tcp[i] };
        if (syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_NET_PORT, &np, 0) != 0) {
            sk_sandbox_err(err, errcap, "landlock: rule for TCP port %u: %s", paths->connect_tcp[i], strerror(errno));
            return -1;
        }
    }
    return 0;
}

#if SK_SANDBOX_SANITIZED
/* The sanitizer runtimes read /proc/self/{maps,task,...} and, to symbolise a
 * report, the executable itself. Test builds only. */
static int add_sanitizer_paths(int fd, uint64_t handled, char *err, size_t errcap)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        sk_sandbox_err(err, errcap, "landlock: readlink /proc/self/exe: %s", strerror(errno));
        return -1;
    }
    exe[n] = '\0';
    if (add_path(fd, "/proc", LL_RO, handled, err, errcap) != 0 ||
        add_path(fd, exe, LL_RO, handled, err, errcap) != 0)
        return -1;
    return 0;
}
#endif

static int create_ruleset(enum sk_sandbox_role role, unsigned flags, const sk_sandbox_paths *paths, int abi,
                          char *err, size_t errcap)
{
    struct sk_ll_ruleset_attr attr = {.handled_access_fs = handled_fs(abi)};
    size_t size = sizeof attr.handled_access_fs;
    if (abi >= 4) {
        /* No TCP port is ever bound after the sandbox (net accepts on inherited
         * listeners); authd and auditd connect nowhere either. */
        attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP;
        /* authd with a database: only its ports, when they are known. */
        if (role != SK_SANDBOX_NET &&
            (!(flags & SK_SANDBOX_ALLOW_DB) || (paths != NULL && paths->n_connect_tcp > 0)))
            attr.handled_access_net |= LANDLOCK_ACCESS_NET_CONNECT_TCP;
        size = offsetof(struct sk_ll_ruleset_attr, scoped);
    }
    if (abi >= 6) {
        /* No signals to, no abstract sockets of, processes outside the domain
         * (the monitor, the siblings, the rest of the system). */
        attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
        size = sizeof attr;
    }
    long fd = syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (fd < 0)
        sk_sandbox_err(err, errcap, "landlock: create_ruleset (ABI %d): %s", abi, strerror(errno));
    return (int)fd;
}

int sk_sandbox_landlock_prepare(enum sk_sandbox_role role, unsigned flags,
                                const sk_sandbox_paths *paths, int *fd, char *err, size_t errcap)
{
    *fd = -1;
    int abi = sk_sandbox_landlock_abi();
    uint64_t handled = handled_fs(abi);
    int rfd = -1;
    if (abi > 0 && (rfd = create_ruleset(role, flags, paths, abi, err, errcap)) < 0)
        return -1;
    uint64_t ro = LL_RO | ((flags & SK_SANDBOX_ALLOW_EXEC) ? LANDLOCK_ACCESS_FS_EXECUTE : 0);
    if (paths != NULL &&
        (add_list(rfd, paths->read_only, ro, handled, "read_only", err, errcap) != 0 ||
         add_list(rfd, paths->read_write, LL_RW, handled, "read_write", err, errcap) != 0))
        goto fail;
    if (abi >= 4 && (flags & SK_SANDBOX_ALLOW_DB) && add_ports(rfd, paths, err, errcap) != 0)
        goto fail;
#if SK_SANDBOX_SANITIZED
    if (add_sanitizer_paths(rfd, handled, err, errcap) != 0)
        goto fail;
#endif
    *fd = rfd;
    return 0;
fail:
    if (rfd >= 0)
        close(rfd);
    return -1;
}

int sk_sandbox_landlock_apply(int fd, char *err, size_t errcap)
{
    if (fd < 0)
        return 0;
    int rc = (int)syscall(SYS_landlock_restrict_self, fd, 0);
    int e = errno;
    close(fd);
    if (rc != 0) {
        sk_sandbox_err(err, errcap, "landlock: restrict_self: %s", strerror(e));
        return -1;
    }
    return 0;
}
