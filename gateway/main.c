/* sekisho — the gateway executable: options and configuration; then the monitor
 * (gateway/monitor/) starts authd and the network process. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sk_audit.h"
#include "sk_conf.h"
#include "sk_monitor.h"
#include "sk_net.h"
#include "sk_store.h"
#include "sk_util.h"

/* -V tells a test build apart: its test hooks must never reach production. */
#ifdef SEKISHO_TEST_HOOKS
#define SK_BUILD_NOTE " (TEST BUILD: test hooks compiled in)"
#else
#define SK_BUILD_NOTE ""
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: sekisho -c FILE [-t | -T]\n"
               "  -c, --config FILE  configuration file (INI)\n"
               "  -t, --test         check the configuration and exit (0 valid, 1 invalid); run it as\n"
               "                     the service user: it also checks that user can use the files\n"
               "  -T, --dump         check, then print the effective configuration (defaults included)\n"
               "  -V, --version      print the version\n"
               "  SIGHUP reloads certificates and the CRL; SIGTERM drains and exits.\n");
}

static int check_only(const sk_conf *conf)
{
    char err[1024];
    /* Files first: "not readable by user sekisho" says more than a TLS error. */
    if (sk_conf_check_access(conf, err, sizeof err) != 0) {
        fprintf(stderr, "sekisho: %s\n", err);
        return 1;
    }
    (void)sk_conf_warnings(conf, stderr);
    if (sk_net_check_conf(conf, err, sizeof err) != 0) {
        fprintf(stderr, "sekisho: %s: %s\n", conf->file, err);
        return 1;
    }
    printf("sekisho: configuration %s is valid\n", conf->file);
    return 0;
}

/* Before any child starts: the state directory, and on the first start the audit
 * signing key (and KEY.pub for auditors) when neither exists; a lone KEY.pub means
 * the key was removed, which must not be papered over (the audit writer refuses). */
static int prepare(const sk_conf *conf)
{
    char pub[SK_CONF_PATH_MAX + 8], err[512];
    if (sk_mkdir_p(conf->state_dir, 0700) != 0) {
        sk_log(SK_LOG_ERR, "cannot create state directory %s: %s", conf->state_dir, strerror(errno));
        return -1;
    }
    if (sk_snprintf(pub, sizeof pub, "%s.pub", conf->audit_key) != 0)
        return -1;
    if (access(conf->audit_key, F_OK) != 0 && access(pub, F_OK) != 0) {
        if (sk_audit_keygen(conf->audit_key, conf->audit_dir, err, sizeof err) != 0) {
            sk_log(SK_LOG_ERR, "cannot create the audit key %s: %s", conf->audit_key, err);
            return -1;
        }
        sk_log(SK_LOG_WARN, "created audit signing key %s; give %s to the auditors", conf->audit_key, pub);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static sk_conf conf;
    const char *conf_path = NULL;
    char err[2048];
    int opt, test = 0;

    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' }, { "test", no_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
        { "dump", no_argument, NULL, 'T' },
        { NULL, 0, NULL, 0 },
    };
    while ((opt = getopt_long(argc, argv, "c:thVT", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf_path = optarg; break;
        case 't': test = 1; break;
        case 'T': test = 2; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("sekisho %s%s\n", SEKISHO_VERSION, SK_BUILD_NOTE); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (conf_path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (sk_conf_load(conf_path, &conf, err, sizeof err) != 0 ||
        sk_conf_check_gateway(&conf, err, sizeof err) != 0) {
        fprintf(stderr, "sekisho: %s\n", err);
        return 1;
    }
    if (sk_store_conf_check(&conf, err, sizeof err) != 0) {
        fprintf(stderr, "sekisho: %s: %s\n", conf.file, err);
        return 1;
    }
    sk_log_set_level((enum sk_log_level)conf.log_level);
    if (test == 2) {
        if (sk_conf_dump(&conf, stdout) != 0) {
            fprintf(stderr, "sekisho: cannot write the configuration to standard output\n");
            return 1;
        }
        return 0;
    }
    if (test)
        return check_only(&conf);

    if (prepare(&conf) != 0)
        return 1;
    return sk_monitor_run(&conf);
}
