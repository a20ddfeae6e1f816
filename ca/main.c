/* sekisho-ca: command-line front end of the mini-CA (contract in DESIGN.md).
 * Exit codes: 0 success, 1 refused/invalid input (one line on stderr), 2 usage.
 *
 * Audit. With --audit-config FILE (or, when the option is absent, the
 * environment variable SEKISHO_CONF) naming the gateway's configuration, every
 * state-changing command (init, issue, reissue, revoke, crl, server-cert)
 * records one admin.change entry in that configuration's [audit] log
 * (sk_admin_audit.h): command, user, tenant, serial(s), reason, validity,
 * never key material or the PKCS#12 password. The log is opened BEFORE the CA
 * directory is touched; when it cannot be opened the command is refused and
 * nothing changes. The entry is written after the commit and before the
 * success report; should that append fail, the command exits 1 saying that
 * the change was made unrecorded. Without either setting the CA works
 * unaudited, as before: operators set SEKISHO_CONF (dist/sekisho-crl.service
 * does). `list` is read-only and never opens the log. */
#define _GNU_SOURCE
#include "sk_ca.h"
#include "sk_admin_audit.h"
#include "sk_store.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
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
    "  server-cert --dir D --host NAME[,NAME...] [--days N] --out PREFIX\n"
    "  --version, --help, COMMAND --help\n"
    "every command also takes --audit-config FILE (default: $SEKISHO_CONF): the gateway\n"
    "configuration whose [audit] log records each change\n"
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
    OPT_AUDIT_CONFIG,
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
    {"audit-config", required_argument, NULL, OPT_AUDIT_CONFIG},
    {NULL, 0, NULL, 0},
};

struct args {
    const char *dir, *name, *days, *user, *tenant, *out, *password_file, *csr, *serial, *reason, *host;
    const char *audit_config;
    int legacy, json;
    unsigned seen; /* bit per OPT_* */
};

static int usage(void)
{
    fputs(usage_text, stderr);
    return 2;
}

/* `sekisho-ca COMMAND --help`: that command's usage lines and the notes. */
static int command_help(const char *cmd)
{
    size_t n = strlen(cmd);
    fputs("usage: sekisho-ca COMMAND [OPTIONS]\n", stdout);
    for (const char *line = usage_text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        int mine = strncmp(line, "  ", 2) == 0 && strncmp(line + 2, cmd, n) == 0 && line[2 + n] == ' ';
        int note = line[0] != ' ' && strncmp(line, "usage:", 6) != 0;
        if (mine || note || (note == 0 && line[0] == ' ' && line[1] == ' ' && line[2] == ' '))
            fwrite(line, 1, (size_t)(nl - line + 1), stdout);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

static int refuse(const char *msg)
{
    fprintf(stderr, "sekisho-ca: %s\n", msg[0] ? msg : "failed");
    return 1;
}

#define B(o) (1u << (o))

/* 1 when only options from `allowed` (bitmask) were given; --audit-config is
 * accepted by every command. */
static int only(const struct args *a, unsigned allowed)
{
    return (a->seen & ~(allowed | B(OPT_AUDIT_CONFIG))) == 0;
}

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

/* ---- audit (see the comment at the top) ------------------------------------ */

/* Open the audit log of the gateway configuration `path`, and a memory stream
 * that collects the command's report until its entry is written. */
static int audit_open(const char *path, sk_adm_audit **log, FILE **rep, char **buf, size_t *len)
{
    static sk_conf conf; /* large: keep it off the stack */
    char err[SK_CONF_PATH_MAX + 600];

    *log = NULL;
    *rep = NULL;
    *buf = NULL;
    *len = 0;
    if (sk_conf_load(path, &conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "sekisho-ca: audit log unavailable: %s; nothing was changed\n", err);
        return -1;
    }
    *rep = open_memstream(buf, len);
    if (*rep == NULL) {
        fprintf(stderr, "sekisho-ca: out of memory\n");
        return -1;
    }
    if (sk_adm_open(&conf, "sekisho-ca", *rep, log, err, sizeof(err)) != 0) {
        fprintf(stderr, "sekisho-ca: audit log unavailable: %s; nothing was changed\n", err);
        if (fclose(*rep) == 0)
            free(*buf);
        *rep = NULL;
        *buf = NULL;
        return -1;
    }
    return 0;
}

/* Copy the word after `key` in line (characters of serials, numbers and ISO
 * times only) into out; 0 when found. */
static int word_after(const char *line, const char *key, char *out, size_t cap)
{
    const char *p = strstr(line, key);
    size_t n = 0;

    if (p == NULL || cap == 0)
        return -1;
    p += strlen(key);
    while (p[n] != '\0' && strchr("0123456789ABCDEFabcdefTZ:-", p[n]) != NULL && n + 1 < cap)
        n++;
    if (n == 0)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

struct ca_facts {
    char serial[SK_CA_SERIAL_HEX_CAP];
    char old_serial[SK_CA_SERIAL_HEX_CAP];
    char crl_number[24];
    char until[32];            /* CA validity (init) or CRL nextUpdate (crl) */
    char tenant[SK_CA_TENANT_MAX + 1];
    char name[SK_CA_HOST_MAX + 1];
    char kind[8];
    char not_before[32], not_after[32];
};

/* What the library reported, line by line (its report is the only place that
 * names the serial it chose). */
static void parse_report(const char *text, struct ca_facts *f)
{
    char line[1024];
    const char *p = text;

    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (n >= sizeof(line))
            n = sizeof(line) - 1;
        memcpy(line, p, n);
        line[n] = '\0';
        p += nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);
        if (strncmp(line, "issued ", 7) == 0) {
            if (word_after(line, "serial ", f->serial, sizeof(f->serial)) != 0)
                f->serial[0] = '\0';
        } else if (strncmp(line, "revoked serial ", 15) == 0) {
            char *dst = strstr(line, "(superseded)") != NULL && f->serial[0] != '\0' ? f->old_serial
                                                                                      : f->serial;
            if (word_after(line, "revoked serial ", dst, SK_CA_SERIAL_HEX_CAP) != 0)
                dst[0] = '\0';
        } else if (strncmp(line, "created CA ", 11) == 0) {
            if (word_after(line, "valid until ", f->until, sizeof(f->until)) != 0)
                f->until[0] = '\0';
        }
        if (strstr(line, "CRL number ") != NULL &&
            word_after(line, "CRL number ", f->crl_number, sizeof(f->crl_number)) != 0)
            f->crl_number[0] = '\0';
        if (strstr(line, "next update ") != NULL &&
            word_after(line, "next update ", f->until, sizeof(f->until)) != 0)
            f->until[0] = '\0';
    }
}

/* Tenant, name, kind and validity of a serial from the CA's own listing. */
static void lookup_serial(const char *dir, struct ca_facts *f)
{
    sk_ca_err e;
    char *buf = NULL;
    size_t len = 0;
    FILE *m;
    json_t *arr = NULL, *o;
    size_t i;
    int ok;

    memset(&e, 0, sizeof(e));
    if (f->serial[0] == '\0' || (m = open_memstream(&buf, &len)) == NULL)
        return;
    ok = sk_ca_cmd_list(dir, 1, m, &e) == 0;
    if (fclose(m) != 0)
        return;
    if (ok)
        arr = json_loadb(buf, len, 0, NULL);
    free(buf);
    json_array_foreach(arr, i, o) {
        const char *s = json_string_value(json_object_get(o, "serial"));
        const char *t = json_string_value(json_object_get(o, "tenant"));
        const char *u = json_string_value(json_object_get(o, "user"));
        const char *k = json_string_value(json_object_get(o, "kind"));
        const char *nb = json_string_value(json_object_get(o, "not_before"));
        const char *na = json_string_value(json_object_get(o, "not_after"));
        if (s == NULL || strcmp(s, f->serial) != 0)
            continue;
        if ((t != NULL && sk_strlcpy(f->tenant, sizeof(f->tenant), t) != 0) ||
            (u != NULL && sk_strlcpy(f->name, sizeof(f->name), u) != 0) ||
            (k != NULL && sk_strlcpy(f->kind, sizeof(f->kind), k) != 0) ||
            (nb != NULL && sk_strlcpy(f->not_before, sizeof(f->not_before), nb) != 0) ||
            (na != NULL && sk_strlcpy(f->not_after, sizeof(f->not_after), na) != 0))
            memset(f->tenant, 0, sizeof(f->tenant));
        break;
    }
    json_decref(arr);
}

/* --user ID@TENANT (TENANT a tenant name; "alice@example.com" is never split)
 * when --tenant is absent: the same reading as sekishoctl's. */
static void split_user(struct args *a, char *id, size_t idcap, char *tenant, size_t tcap)
{
    const char *at = a->user != NULL ? strrchr(a->user, '@') : NULL;
    size_t n;
    if (a->tenant != NULL || at == NULL || at == a->user || sk_ca_check_tenant(at + 1) != 0)
        return;
    n = (size_t)(at - a->user);
    if (n >= idcap || sk_strlcpy(tenant, tcap, at + 1) != 0)
        return;
    memcpy(id, a->user, n);
    id[n] = '\0';
    if (sk_ca_check_user(id) != 0)
        return;
    a->user = id;
    a->tenant = tenant;
}

/* The tenant of the user's valid client certificate(s), from the CA's own
 * listing, when --tenant is absent for a command about an existing certificate
 * (revoke --user, reissue): exactly one tenant is used; several are refused
 * listing them, so that a command never acts on a namesake in another tenant.
 * 0: a->tenant set (or left NULL when none: the command reports that); -1:
 * refused (printed). */
static int resolve_tenant(struct args *a, char *tenant, size_t cap)
{
    sk_ca_err e;
    char *buf = NULL, mem[512];
    size_t len = 0, i, n = 0;
    sk_buf list;
    FILE *m;
    json_t *arr = NULL, *o;
    int ok;

    memset(&e, 0, sizeof(e));
    sk_buf_init(&list, mem, sizeof(mem));
    if (a->tenant != NULL || a->user == NULL || (m = open_memstream(&buf, &len)) == NULL)
        return 0;
    ok = sk_ca_cmd_list(a->dir, 1, m, &e) == 0;
    if (fclose(m) != 0)
        return 0;
    if (ok)
        arr = json_loadb(buf, len, 0, NULL);
    free(buf);
    json_array_foreach(arr, i, o) {
        const char *t = json_string_value(json_object_get(o, "tenant"));
        const char *u = json_string_value(json_object_get(o, "user"));
        const char *k = json_string_value(json_object_get(o, "kind"));
        const char *st = json_string_value(json_object_get(o, "status"));
        if (t == NULL || u == NULL || k == NULL || st == NULL || strcmp(k, "client") != 0 ||
            strcmp(st, "valid") != 0 || strcmp(u, a->user) != 0)
            continue;
        if (n++ == 0 && sk_strlcpy(tenant, cap, t) != 0)
            tenant[0] = '\0';
        sk_buf_printf(&list, n > 1 ? ", %s" : "%s", t);
    }
    json_decref(arr);
    if (n > 1) {
        fprintf(stderr, "sekisho-ca: user %s has valid certificates in %zu tenants (%s); name one: "
                        "--user %s@TENANT or --tenant TENANT\n", a->user, n, mem, a->user);
        return -1;
    }
    if (n == 1 && tenant[0] != '\0')
        a->tenant = tenant;
    return 0;
}

/* issue/reissue: say so when the gateway (its configuration, when named) would
 * not know the certificate's tenant or user: a bundle nobody can log in with is
 * usually a typo. Only a warning: the account may be added afterwards. */
static void warn_unknown(const char *conf_path, const char *user, const char *tenant)
{
    static sk_conf conf; /* large */
    char err[SK_CONF_PATH_MAX + 256];
    sk_store *st = NULL;
    sk_user u;
    int rc, known = conf_path == NULL;

    if (conf_path == NULL || sk_conf_load(conf_path, &conf, err, sizeof(err)) != 0)
        return;
    for (uint32_t i = 0; i < conf.n_tenants; i++)
        known |= strcmp(conf.tenants[i].name, tenant) == 0;
    if (conf.n_tenants > 0 && !known)
        fprintf(stderr, "sekisho-ca: warning: tenant '%s' is not configured in %s (no [tenant.%s] "
                        "section): no portal accepts this certificate\n", tenant, conf_path, tenant);
    rc = sk_store_open_conf(&conf, 1, &st, err, sizeof(err));
    if (rc == SK_STORE_OK)
        rc = sk_store_user_get(st, tenant, user, &u);
    sk_wipe(&u, sizeof(u));
    sk_store_close(st);
    if (rc == SK_STORE_NOTFOUND)
        fprintf(stderr, "sekisho-ca: warning: the gateway has no user '%s' in tenant '%s'; add it "
                        "with: sekishoctl user add %s --tenant %s\n", user, tenant, user, tenant);
}

static const char *nz(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* One admin.change entry for a committed command; 0 written, -1 not (reason
 * on stderr). */
static int audit_record(sk_adm_audit *log, const char *cmd, const struct args *a, uint32_t days,
                        int reason, const char *report)
{
    struct ca_facts f;
    char command[32], days_s[16], err[600], ca_dir[PATH_MAX];
    const char *tenant = NULL, *format = NULL;
    sk_audit_kv kv[16];
    size_t n = 0;

    memset(&f, 0, sizeof(f));
    parse_report(report, &f);
    if (strcmp(cmd, "init") != 0 && strcmp(cmd, "crl") != 0)
        lookup_serial(a->dir, &f);
    if (sk_snprintf(command, sizeof(command), "ca.%s", cmd) != 0)
        command[0] = '\0';
    if (days == 0 || sk_snprintf(days_s, sizeof(days_s), "%u", (unsigned)days) != 0)
        days_s[0] = '\0';
    /* Absolute, so that an auditor knows which CA without the shell's cwd. */
    kv[n++] = (sk_audit_kv){"ca_dir", realpath(a->dir, ca_dir) != NULL ? ca_dir : a->dir};
    if (strcmp(cmd, "init") == 0) {
        kv[n++] = (sk_audit_kv){"name", a->name};
        kv[n++] = (sk_audit_kv){"valid_until", nz(f.until)};
    } else if (strcmp(cmd, "issue") == 0 || strcmp(cmd, "reissue") == 0) {
        tenant = a->tenant != NULL ? a->tenant : SK_CA_DEFAULT_TENANT;
        format = a->csr != NULL ? "csr" : a->legacy ? "pkcs12-legacy" : "pkcs12";
        kv[n++] = (sk_audit_kv){"user", a->user};
        kv[n++] = (sk_audit_kv){"format", format};
        kv[n++] = (sk_audit_kv){"out", a->out};
        kv[n++] = (sk_audit_kv){"not_before", nz(f.not_before)};
        kv[n++] = (sk_audit_kv){"not_after", nz(f.not_after)};
        if (nz(f.old_serial) != NULL) {
            kv[n++] = (sk_audit_kv){"revoked_serial", f.old_serial};
            kv[n++] = (sk_audit_kv){"revoked_reason", "superseded"};
            kv[n++] = (sk_audit_kv){"crl_number", nz(f.crl_number)};
        }
    } else if (strcmp(cmd, "revoke") == 0) {
        tenant = nz(f.tenant) != NULL && strcmp(f.tenant, "-") != 0 ? f.tenant : NULL;
        kv[n++] = (sk_audit_kv){"user", nz(f.name) != NULL ? f.name : a->user};
        kv[n++] = (sk_audit_kv){"kind", nz(f.kind)};
        kv[n++] = (sk_audit_kv){"by", a->serial != NULL ? "serial" : "user"};
        kv[n++] = (sk_audit_kv){"reason", sk_ca_reason_name(reason)};
        kv[n++] = (sk_audit_kv){"crl_number", nz(f.crl_number)};
    } else if (strcmp(cmd, "crl") == 0) {
        kv[n++] = (sk_audit_kv){"crl_number", nz(f.crl_number)};
        kv[n++] = (sk_audit_kv){"next_update", nz(f.until)};
    } else { /* server-cert */
        kv[n++] = (sk_audit_kv){"host", a->host};
        kv[n++] = (sk_audit_kv){"out", a->out};
        kv[n++] = (sk_audit_kv){"not_before", nz(f.not_before)};
        kv[n++] = (sk_audit_kv){"not_after", nz(f.not_after)};
    }
    kv[n++] = (sk_audit_kv){"days", nz(days_s)};
    if (sk_adm_change(log, command, tenant, nz(f.serial), kv, n, err, sizeof(err)) != 0) {
        fprintf(stderr, "sekisho-ca: audit: %s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct args a;
    sk_ca_err err;
    const char *cmd;
    uint32_t days = 0;
    int c, rc, reason = SK_CA_REASON_UNSPECIFIED;
    const char *audit_conf;
    sk_adm_audit *log = NULL;
    char user_id[SK_CA_HOST_MAX + 1], user_tenant[SK_CA_TENANT_MAX + 1];
    FILE *rep = NULL, *report;
    char *rep_buf = NULL;
    size_t rep_len = 0;

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
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("sekisho-ca %s\n", SEKISHO_VERSION);
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
        case OPT_AUDIT_CONFIG: slot = &a.audit_config; break;
        case OPT_LEGACY: a.legacy = 1; break;
        case OPT_JSON: a.json = 1; break;
        case OPT_HELP:
            return command_help(cmd);
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

    /* Usage is checked in full before the audit log is opened. */
    if (strcmp(cmd, "init") == 0) {
        if (!only(&a, B(OPT_DIR) | B(OPT_NAME) | B(OPT_DAYS)) || a.name == NULL)
            return usage();
    } else if (strcmp(cmd, "issue") == 0 || strcmp(cmd, "reissue") == 0) {
        unsigned common = B(OPT_DIR) | B(OPT_USER) | B(OPT_TENANT) | B(OPT_DAYS) | B(OPT_OUT);
        if (a.user == NULL || a.out == NULL)
            return usage();
        if (a.csr != NULL ? !only(&a, common | B(OPT_CSR))
                          : (!only(&a, common | B(OPT_PASSWORD_FILE) | B(OPT_LEGACY)) || a.password_file == NULL))
            return usage();
    } else if (strcmp(cmd, "revoke") == 0) {
        if (!only(&a, B(OPT_DIR) | B(OPT_SERIAL) | B(OPT_USER) | B(OPT_TENANT) | B(OPT_REASON)) ||
            (a.serial == NULL) == (a.user == NULL) || (a.serial != NULL && a.tenant != NULL))
            return usage();
        if (a.reason != NULL && sk_ca_reason_parse(a.reason, &reason) != 0)
            return refuse("unknown --reason (see usage for RFC 5280 names)");
    } else if (strcmp(cmd, "crl") == 0) {
        if (!only(&a, B(OPT_DIR) | B(OPT_DAYS)))
            return usage();
    } else if (strcmp(cmd, "list") == 0) {
        if (!only(&a, B(OPT_DIR) | B(OPT_JSON)))
            return usage();
        if (sk_ca_cmd_list(a.dir, a.json, stdout, &err) != 0)
            return refuse(err.msg);
        if (fflush(stdout) != 0)
            return refuse("cannot write to standard output");
        return 0;
    } else if (strcmp(cmd, "server-cert") == 0) {
        if (!only(&a, B(OPT_DIR) | B(OPT_HOST) | B(OPT_DAYS) | B(OPT_OUT)) || a.host == NULL || a.out == NULL)
            return usage();
    } else {
        fprintf(stderr, "sekisho-ca: unknown command\n");
        return usage();
    }

    audit_conf = a.audit_config;
    if (audit_conf == NULL) {
        audit_conf = getenv("SEKISHO_CONF");
        if (audit_conf != NULL && audit_conf[0] == '\0')
            audit_conf = NULL;
    }
    /* Which account: ID@TENANT, --tenant, or (for an existing certificate) the one
     * tenant that holds it. */
    if (strcmp(cmd, "issue") == 0 || strcmp(cmd, "reissue") == 0 || strcmp(cmd, "revoke") == 0) {
        split_user(&a, user_id, sizeof(user_id), user_tenant, sizeof(user_tenant));
        if ((strcmp(cmd, "reissue") == 0 || (strcmp(cmd, "revoke") == 0 && a.user != NULL)) &&
            resolve_tenant(&a, user_tenant, sizeof(user_tenant)) != 0)
            return 1;
    }

    /* A state change from here on: audit before act. */
    if (audit_conf != NULL) {
        if (audit_open(audit_conf, &log, &rep, &rep_buf, &rep_len) != 0)
            return 1;
    }
    report = log != NULL ? rep : stdout;

    if (strcmp(cmd, "init") == 0) {
        rc = sk_ca_cmd_init(a.dir, a.name, days ? days : SK_CA_DEFAULT_CA_DAYS, report, &err);
    } else if (strcmp(cmd, "issue") == 0 || strcmp(cmd, "reissue") == 0) {
        sk_ca_issue_opts o;
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
        rc = sk_ca_cmd_issue(&o, report, &err);
    } else if (strcmp(cmd, "revoke") == 0) {
        rc = sk_ca_cmd_revoke(a.dir, a.serial, a.user, a.tenant, reason, report, &err);
    } else if (strcmp(cmd, "crl") == 0) {
        rc = sk_ca_cmd_crl(a.dir, days, report, &err);
    } else {
        rc = sk_ca_cmd_server_cert(a.dir, a.host, days, a.out, report, &err);
    }

    if (log != NULL) {
        int wrote = 0;
        if (fclose(rep) != 0) {
            rep_buf = NULL; /* undefined after a failed fclose: do not touch */
            rep_len = 0;
        }
        rep = NULL;
        if (rc == 0)
            wrote = audit_record(log, cmd, &a, days, reason, rep_buf != NULL ? rep_buf : "");
        sk_adm_close(log);
        /* The report goes out after the entry is on disk, so "success" on the
         * terminal always has its audit record. */
        if (rep_buf != NULL && rep_len > 0 && fwrite(rep_buf, 1, rep_len, stdout) != rep_len) {
            free(rep_buf);
            return refuse("cannot write to standard output");
        }
        free(rep_buf);
        if (rc == 0 && wrote != 0)
            return refuse("the change was made but its audit entry could not be written "
                          "(see above); record it by hand");
    }
    if (rc != 0)
        return refuse(err.msg);
    if (strcmp(cmd, "issue") == 0 || strcmp(cmd, "reissue") == 0)
        warn_unknown(audit_conf, a.user, a.tenant != NULL ? a.tenant : SK_CA_DEFAULT_TENANT);
    if (fflush(stdout) != 0)
        return refuse("cannot write to standard output");
    return 0;
}
