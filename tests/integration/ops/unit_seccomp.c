/* sk_unit_seccomp LIST CMD [ARG...] — run CMD under a seccomp allowlist: the
 * system calls named in LIST (one per line) are allowed, every other one fails
 * with EPERM, as systemd applies SystemCallFilter= with SystemCallErrorNumber=EPERM
 * (ops_unit_seccomp computes LIST from the installed unit). Sets no_new_privs, as
 * systemd does for a User= service. Names this architecture does not have are
 * skipped (the groups list other architectures' calls too). Test helper only. */
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char line[128];
    scmp_filter_ctx ctx;
    FILE *f;
    int allowed = 0, rc;

    if (argc < 3) {
        fprintf(stderr, "usage: sk_unit_seccomp LIST CMD [ARG...]\n");
        return 2;
    }
    ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    f = fopen(argv[1], "re");
    if (ctx == NULL || f == NULL) {
        fprintf(stderr, "sk_unit_seccomp: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        int nr;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0')
            continue;
        nr = seccomp_syscall_resolve_name(line);
        if (nr == __NR_SCMP_ERROR)
            continue;
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        if (rc != 0) {
            fprintf(stderr, "sk_unit_seccomp: %s: %s\n", line, strerror(-rc));
            return 2;
        }
        allowed++;
    }
    fclose(f);
    rc = seccomp_load(ctx);
    if (rc != 0) {
        fprintf(stderr, "sk_unit_seccomp: seccomp_load: %s\n", strerror(-rc));
        return 2;
    }
    seccomp_release(ctx);
    (void)allowed;
    execvp(argv[2], argv + 2);
    fprintf(stderr, "sk_unit_seccomp: %s: %s\n", argv[2], strerror(errno));
    return 127;
}
