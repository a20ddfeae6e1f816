/* libFuzzer target: the configuration loader. Each input is written to a file and
 * loaded; the loader must never crash, must NUL-terminate its error, and after a
 * failure must leave exactly the defaults behind. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sk_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void cleanup(void)
{
    char dir[64];
    if (path[0] == '\0')
        return;
    (void)unlink(path);
    memcpy(dir, path, sizeof dir);
    *strrchr(dir, '/') = '\0';
    (void)rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sk_conf c, d;
    char err[2048];
    int fd;

    if (path[0] == '\0') {
        char dir[] = "/tmp/sk-fuzz-conf-XXXXXX";
        if (mkdtemp(dir) == NULL || sk_snprintf(path, sizeof path, "%s/f.conf", dir) != 0)
            abort();
        atexit(cleanup);
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd) != 0)
        abort();
    memset(err, 'E', sizeof err);
    if (sk_conf_load(path, &c, err, sizeof err) == 0) {
        if (c.upstream_host[0] == '\0' || c.upstream_port[0] == '\0')
            __builtin_trap();
        size_t n = strlen(c.upstream_prefix);
        if (n > 0 && (c.upstream_prefix[0] != '/' || c.upstream_prefix[n - 1] == '/'))
            __builtin_trap();
        if (c.listen_cert[0] == '\0' || c.tls_client_ca[0] == '\0' || c.idle_timeout > c.absolute_timeout)
            __builtin_trap();
    } else {
        if (memchr(err, '\0', sizeof err) == NULL || strncmp(err, path, strlen(path)) != 0)
            __builtin_trap();
        sk_conf_defaults(&d);
        memcpy(d.file, c.file, sizeof d.file);
        if (memcmp(&c, &d, sizeof c) != 0)
            __builtin_trap();
    }
    return 0;
}
