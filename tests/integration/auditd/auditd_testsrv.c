/* auditd_testsrv CONFIG — a stand-in for the forked auditd while the monitor is
 * not there yet: opens the audit log of CONFIG the way the gateway does (creating
 * the key on a fresh install), listens on the ctl socket <[state] dir>/auditd.sock
 * and serves it with sk_auditd_run until SIGTERM/SIGINT; prints "ready" once the
 * socket listens. Test-only, not installed. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sk_auditd.h"

static volatile int stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int open_log(const sk_conf *conf, sk_audit **a)
{
    sk_audit_options o;
    char pub[SK_CONF_PATH_MAX + 8], err[512];
    if (sk_snprintf(pub, sizeof pub, "%s.pub", conf->audit_key) != 0 || sk_mkdir_p(conf->state_dir, 0700) != 0)
        return -1;
    if (access(conf->audit_key, F_OK) != 0 && access(pub, F_OK) != 0 &&
        sk_audit_keygen(conf->audit_key, conf->audit_dir, err, sizeof err) != 0) {
        fprintf(stderr, "auditd_testsrv: keygen: %s\n", err);
        return -1;
    }
    memset(&o, 0, sizeof o);
    o.dir = conf->audit_dir;
    o.key_path = conf->audit_key;
    o.retention_secs = conf->audit_retention;
    o.epoch_secs = (uint32_t)conf->audit_epoch;
    if (sk_audit_open(&o, a, err, sizeof err) != 0) {
        fprintf(stderr, "auditd_testsrv: open: %s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static sk_conf conf;
    struct sigaction sa;
    sk_audit *a = NULL;
    char err[512], path[SK_CONF_PATH_MAX + 32];
    int lfd = -1, rc = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: auditd_testsrv CONFIG\n");
        return 2;
    }
    if (sk_conf_load(argv[1], &conf, err, sizeof err) != 0) {
        fprintf(stderr, "auditd_testsrv: %s\n", err);
        return 1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return 1;
    if (open_log(&conf, &a) != 0)
        goto out;
    if (sk_auditd_ctl_path(&conf, path, sizeof path) != 0 || sk_auditd_ctl_listen(path, &lfd) != 0) {
        fprintf(stderr, "auditd_testsrv: ctl socket: %s\n", strerror(errno));
        goto out;
    }
    printf("ready\n");
    fflush(stdout);
    if (sk_auditd_run(a, NULL, NULL, 0, lfd, &stop) != 0)
        goto out;
    rc = 0;
out:
    if (lfd >= 0) {
        close(lfd);
        (void)unlink(path);
    }
    sk_audit_close(a);
    return rc;
}
