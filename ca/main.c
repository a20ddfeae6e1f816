/* sekisho-ca: command-line front end of the mini-CA (contract in DESIGN.md).
 * Exit codes: 0 success, 1 refused/invalid input (one line on stderr), 2 usage. */
#include "sk_ca.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage_text[] =
    "usage: sekisho-ca COMMAND [OPTIONS]\n"
    "  init --dir D --name NAME [--days N]\n"
    "  issue --dir D --user ID [--tenant T] [--days N] --out FILE.p12 --password-file F [--legacy]\n"
    "  issue --dir D --user ID [--tenant T] [--days N] --csr FILE --out FILE.crt\n"
    "  reissue --dir D --user ID [--tenant T] [--days N] (same outputs as issue)\n"
    "  revoke --dir D (--serial HEX | --user ID [--tenant T]) [--reason R]\n"
    "  crl --dir D [--days N]\n"
    "  list --dir D [--json]\n"
    "  server-cert --dir D --host NAME [--days N] --out PREFIX\n"
    "reasons: unspecified keyCompromise cACompromise affiliationChanged superseded\n"
    "         cessationOfOperation certificateHold privilegeWithdrawn\n";

enum {
    OPT_DIR = 1,
    OPT_NAME,
    OPT_DAYS,
    OPT_USER,
    OPT_TENANT,
    OPT_OUT,
    OPT_PASSWORD_FILE,
    OPT_LEGACY,
    OPT_CSR,
    OPT_SERIAL,
    OPT_REASON,
    OPT_JSON,
    OPT_HOST,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"dir", required_argument, NULL, OPT_DIR},
    {"name", required_argument, NULL, OPT_NAME},
    {"days", required_argument, NULL, OPT_DAYS},
    {"user", required_argument, NULL, OPT_USER},
    {"tenant", required_argument, NULL, OPT_TENANT},
    {"out", required_argument, NULL, OPT_OUT},
    {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
    {"legacy", no_argument, NULL, OPT_LEGACY},
    {"csr", required_argument, NULL, OPT_CSR},
    {"serial", required_argument, NULL, OPT_SERIAL},
    {"reason", required_argument, NULL, OPT_REASON},
    {"json", no_argument, NULL, OPT_JSON},
    {"host", required_argument, NULL, OPT_HOST},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

struct args {
    const char *dir, *name, *days, *user, *tenant, *out, *password_file, *csr, *serial, *reason, *host;
    int legacy, json;
    unsigned seen; /* bit per OPT_* */
};

static int usage(void)
{
    fputs(usage_text, stderr);
    return 2;
}

static int refuse(const char *msg)
{
    fprintf(stderr, "sekisho-ca: %s\n", msg[0] ? msg : "failed");
    return 1;
}

/* 1 when only options from `allowed` (bitmask) were given. */
static int only(const struct args *a, unsigned allowed)
{
    return (a->seen & ~allowed) == 0;
}

#define B(o) (1u << (o))

static int parse_days(const char *s, uint32_t *out)
{
    uint64_t v;

    if (s == NULL) {
        *out = 0;
        return 0;
    }
    if (sk_parse_u64(s, 1, SK_CA_DAYS_MAX, &v) != 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    struct args a;
    sk_ca_err err;
    const char *cmd;
    uint32_t days = 0;
    int c, rc;

    /* Keys are written by this process: no window in which one is readable by
     * others, whatever the caller's umask (public files get explicit modes). */
    umask(077);
    memset(&a, 0, sizeof(a));
    memset(&err, 0, sizeof(err));
    if (argc < 2)
        return usage();
    cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(cmd, "init") != 0 && strcmp(cmd, "issue") != 0 && strcmp(cmd, "reissue") != 0 &&
        strcmp(cmd, "revoke") != 0 && strcmp(cmd, "crl") != 0 && strcmp(cmd, "list") != 0 &&
        strcmp(cmd, "server-cert") != 0) {
        fprintf(stderr, "sekisho-ca: unknown command\n");
        return usage();
    }
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "", long_opts, NULL)) != -1) {
        const char **slot = NULL;
        switch (c) {
        case OPT_DIR: slot = &a.dir; break;
        case OPT_NAME: slot = &a.name; break;
        case OPT_DAYS: slot = &a.days; break;
        case OPT_USER: slot = &a.user; break;
        case OPT_TENANT: slot = &a.tenant; break;
        case OPT_OUT: slot = &a.out; break;
        case OPT_PASSWORD_FILE: slot = &a.password_file; break;
        case OPT_CSR: slot = &a.csr; break;
        case OPT_SERIAL: slot = &a.serial; break;
        case OPT_REASON: slot = &a.reason; break;
        case OPT_HOST: slot = &a.host; break;
        case OPT_LEGACY: a.legacy = 1; break;
        case OPT_JSON: a.json = 1; break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return 0;
        default:
            fprintf(stderr, "sekisho-ca: unknown option or missing value\n");
            return usage();
        }
        if ((a.seen & B(c)) != 0) {
            fprintf(stderr, "sekisho-ca: option given twice\n");
            return usage();
        }
        a.seen |= B(c);
        if (slot != NULL)
            *slot = optarg;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "sekisho-ca: unexpected argument\n");
        return usage();
    }
    if (a.dir == NULL)
        return usage();
    if (parse_days(a.days, &days) != 0)
        return refuse("invalid --days (1..36500)");

    if (strcmp(cmd, "init") == 0) {
        if (!only(&a, B(OPT_DIR) | B(OPT_NAME) | B(OPT_DAYS)) || a.name == NULL)
            return usage();
        rc = sk_ca_cmd_init(a.dir, a.name, days ? days : SK_CA_DEFAULT_CA_DAYS, stdout, &err);
    } else if (strcmp(cmd, "issue") == 0 || strcmp(cmd, "reissue") == 0) {
        sk_ca_issue_opts o;
        unsigned common = B(OPT_DIR) | B(OPT_USER) | B(OPT_TENANT) | B(OPT_DAYS) | B(OPT_OUT);
        if (a.user == NULL || a.out == NULL)
            return usage();
        if (a.csr != NULL ? !only(&a, common | B(OPT_CSR))
                          : (!only(&a, common | B(OPT_PASSWORD_FILE) | B(OPT_LEGACY)) || a.password_file == NULL))
            return usage();
        memset(&o, 0, sizeof(o));
        o.dir = a.dir;
        o.user = a.user;
        o.tenant = a.tenant;
        o.days = days;
        o.out = a.out;
        o.password_file = a.password_file;
        o.csr = a.csr;
        o.legacy = a.legacy;
        o.reissue = strcmp(cmd, "reissue") == 0;
        rc = sk_ca_cmd_issue(&o, stdout, &err);
    } else if (strcmp(cmd, "revoke") == 0) {
        int reason = SK_CA_REASON_UNSPECIFIED;
        if (!only(&a, B(OPT_DIR) | B(OPT_SERIAL) | B(OPT_USER) | B(OPT_TENANT) | B(OPT_REASON)) ||
            (a.serial == NULL) == (a.user == NULL) || (a.serial != NULL && a.tenant != NULL))
            return usage();
        if (a.reason != NULL && sk_ca_reason_parse(a.reason, &reason) != 0)
            return refuse("unknown --reason (see usage for RFC 5280 names)");
        rc = sk_ca_cmd_revoke(a.dir, a.serial, a.user, a.tenant, reason, stdout, &err);
    } else if (strcmp(cmd, "crl") == 0) {
        if (!only(&a, B(OPT_DIR) | B(OPT_DAYS)))
            return usage();
        rc = sk_ca_cmd_crl(a.dir, days, stdout, &err);
    } else if (strcmp(cmd, "list") == 0) {
        if (!only(&a, B(OPT_DIR) | B(OPT_JSON)))
            return usage();
        rc = sk_ca_cmd_list(a.dir, a.json, stdout, &err);
    } else if (strcmp(cmd, "server-cert") == 0) {
        if (!only(&a, B(OPT_DIR) | B(OPT_HOST) | B(OPT_DAYS) | B(OPT_OUT)) || a.host == NULL || a.out == NULL)
            return usage();
        rc = sk_ca_cmd_server_cert(a.dir, a.host, days, a.out, stdout, &err);
    } else {
        fprintf(stderr, "sekisho-ca: unknown command\n");
        return usage();
    }
    if (rc != 0)
        return refuse(err.msg);
    if (fflush(stdout) != 0)
        return refuse("cannot write to standard output");
    return 0;
}
