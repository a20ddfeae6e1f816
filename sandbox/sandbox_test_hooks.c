/*
 * sandbox_test_hooks.c — sk_sandbox_test_violate(), compiled only with
 * -DSEKISHO_TEST_HOOKS=ON (never in a release or a package: CMake refuses it
 * there). It performs one forbidden action so a test can watch the sandbox stop it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sandbox_internal.h"

#ifndef SEKISHO_TEST_HOOKS
#error "sandbox_test_hooks.c is built only with SEKISHO_TEST_HOOKS"
#endif

static int violate_open(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int violate_bind(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

static int violate_vm_read(void)
{
    char buf[16];
    struct iovec local = {.iov_base = buf, .iov_len = sizeof buf};
    struct iovec remote = {.iov_base = (void *)&local, .iov_len = sizeof buf};
    return process_vm_readv(getppid(), &local, 1, &remote, 1, 0) < 0 ? -1 : 0;
}

int sk_sandbox_test_violate(const char *what)
{
    if (what == NULL)
        return -2;
    if (strncmp(what, "openat:", 7) == 0)
        return violate_open(what + 7, O_RDWR | O_CREAT);
    if (strncmp(what, "openat-ro:", 10) == 0)
        return violate_open(what + 10, O_RDONLY);
    if (strcmp(what, "execve") == 0) {
        char *const argv[] = {(char *)"true", NULL};
        char *const envp[] = {NULL};
        return execve("/bin/true", argv, envp);
    }
    if (strcmp(what, "fork") == 0) {
        pid_t p = fork();
        if (p == 0)
            _exit(0);
        return p < 0 ? -1 : 0;
    }
    if (strcmp(what, "socket") == 0) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        close(fd);
        return 0;
    }
    if (strcmp(what, "bind") == 0)
        return violate_bind();
    if (strcmp(what, "ptrace") == 0)
        return ptrace(PTRACE_ATTACH, getppid(), NULL, NULL) < 0 ? -1 : 0;
    if (strcmp(what, "process_vm_readv") == 0)
        return violate_vm_read();
    return -2;
}
