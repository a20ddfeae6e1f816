/*
 * sekishoctl session list|revoke
 *
 * Sessions are listed by a prefix of SHA-256(token): enough to tell them apart,
 * useless for taking one over (the token itself is never stored).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "sk_admin_audit.h"
#include "sk_store.h"

#define HASH_PREFIX_BYTES 8

static const char usage_list[] = "session list [--json]";
static const char usage_revoke[] =
    "session revoke (SESSION-ID | --user ID[@TENANT] [--tenant T] | --all)";

void ctl_session_usage_to(FILE *f)
{
    fprintf(f, "  %s\n  %s\n", usage_list, usage_revoke);
}

void ctl_session_usage(void)
{
    ctl_session_usage_to(stderr);
}

static int usage_error(const char *usage, const char *what, const char *arg)
{
    ctl_err("%s%s%s", what, arg ? " " : "", arg ? arg : "");
    fprintf(stderr, "usage: sekishoctl [-c FILE] %s\n", usage);
    return CTL_USAGE;
}

struct list_ctx {
    json_t *arr;
    int failed;
};

static int list_cb(const sk_session *ss, void *arg)
{
    struct list_ctx *c = arg;
    char id[HASH_PREFIX_BYTES * 2 + 1], created[32], seen[32];
    sk_hex_encode(ss->hash, HASH_PREFIX_BYTES, id);
    ctl_time_str(ss->created, created, sizeof created);
    ctl_time_str(ss->last_seen, seen, sizeof seen);
    if (!c->arr) {
        printf("%-16s %-20s %-12s %-8s %-20s %-20s %s\n", id, ss->user, ss->tenant,
               sk_store_role_name(ss->role), created, seen,
               ss->cert_serial[0] ? ss->cert_serial : "-");
        return 0;
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", id, "user", ss->user,
                          "tenant", ss->tenant, "role", sk_store_role_name(ss->role),
                          "cert_serial", ss->cert_serial, "created", created, "last_seen", seen);
    if (!o || json_array_append_new(c->arr, o) != 0) {
        c->failed = 1;
        return -1;
    }
    return 0;
}

static int cmd_list(const sk_conf *conf, int json)
{
    sk_store *s = NULL;
    struct list_ctx c = { 0 };
    int rc, ret = CTL_REFUSED;

    if (json && !(c.arr = json_array())) {
        ctl_err("out of memory");
        goto out;
    }
    rc = ctl_store_open(conf, 1, &s, "session");
    if (rc != SK_STORE_OK && rc != SK_STORE_NOTFOUND)
        goto out;
    if (!json)
        printf("%-16s %-20s %-12s %-8s %-20s %-20s %s\n", "SESSION", "USER", "TENANT", "ROLE",
               "CREATED", "LAST-SEEN", "CERT-SERIAL");
    if (s && sk_store_session_list(s, list_cb, &c) != 0) {
        ctl_err("cannot list sessions");
        goto out;
    }
    if (json) {
        if (json_dumpf(c.arr, stdout, JSON_INDENT(2)) != 0 || fputc('\n', stdout) == EOF) {
            ctl_err("cannot write JSON output");
            goto out;
        }
    }
    ret = CTL_OK;
out:
    json_decref(c.arr);
    sk_store_close(s);
    return ret;
}

/* A SESSION-ID is the listing's hex prefix of SHA-256(token) (or more of it). */
struct find_sess {
    const char *hex;
    size_t hexlen;
    uint8_t hash[SK_SESSION_HASH_LEN];
    char user[SK_USER_ID_MAX + 1];
    char tenant[SK_TENANT_MAX + 1];
    int n;
};

static int find_sess_cb(const sk_session *ss, void *arg)
{
    struct find_sess *f = arg;
    char hex[SK_SESSION_HASH_LEN * 2 + 1];
    sk_hex_encode(ss->hash, SK_SESSION_HASH_LEN, hex);
    if (strncmp(hex, f->hex, f->hexlen) != 0)
        return 0;
    if (f->n++ == 0) {
        memcpy(f->hash, ss->hash, sizeof f->hash);
        memcpy(f->user, ss->user, sizeof f->user);
        memcpy(f->tenant, ss->tenant, sizeof f->tenant);
    }
    return 0;
}

static int cmd_revoke_one(const sk_conf *conf, const char *sid)
{
    sk_store *s = NULL;
    sk_adm_audit *log = NULL;
    struct find_sess f = { .hex = sid, .hexlen = strlen(sid) };
    char lower[SK_SESSION_HASH_LEN * 2 + 1];
    int rc, ret = CTL_REFUSED;

    if (f.hexlen < HASH_PREFIX_BYTES * 2 || f.hexlen > SK_SESSION_HASH_LEN * 2) {
        ctl_err("invalid session ID '%s' (the %d hex digits `session list` shows)", sid,
                HASH_PREFIX_BYTES * 2);
        return CTL_REFUSED;
    }
    for (size_t i = 0; i < f.hexlen; i++) {
        char c = sid[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c + 32);
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            ctl_err("invalid session ID '%s' (hex digits only)", sid);
            return CTL_REFUSED;
        }
        lower[i] = c;
    }
    lower[f.hexlen] = '\0';
    f.hex = lower;
    if (ctl_log_open(conf, &log) != CTL_OK)
        goto out;
    if (ctl_store_open(conf, 0, &s, "session") != SK_STORE_OK)
        goto out;
    if (sk_store_session_list(s, find_sess_cb, &f) != 0) {
        ctl_err("cannot list sessions");
        goto out;
    }
    if (f.n == 0) {
        ctl_err("no session '%s' (it may have ended already; see session list)", sid);
        goto out;
    }
    if (f.n > 1) {
        ctl_err("session ID '%s' matches %d sessions; give more digits", sid, f.n);
        goto out;
    }
    rc = sk_store_session_delete(s, f.hash);
    if (rc != SK_STORE_OK && rc != SK_STORE_NOTFOUND) {
        ctl_err("cannot revoke session '%s'", sid);
        goto out;
    }
    {
        sk_audit_kv kv[] = { { "user", f.user },
                             { "scope", "session" },
                             { "session", lower },
                             { "sessions_ended", rc == SK_STORE_OK ? "1" : "0" },
                             { "result", rc == SK_STORE_OK ? "ok" : "unchanged" } };
        if (ctl_log_change(log, "session.revoke", f.tenant, kv, SK_ARRAY_LEN(kv)) != CTL_OK)
            goto out;
    }
    printf(rc == SK_STORE_OK ? "revoked session %s of %s (tenant %s)\n"
                             : "session %s of %s (tenant %s) had already ended\n",
           lower, f.user, f.tenant);
    ret = CTL_OK;
out:
    sk_store_close(s);
    ctl_log_close(log);
    return ret;
}

static int cmd_revoke(const sk_conf *conf, const char *user, const char *tenant, int all)
{
    sk_store *s = NULL;
    sk_adm_audit *log = NULL;
    char count[16];
    int n, ret = CTL_REFUSED;

    if (user && !sk_store_valid_id(user)) {
        ctl_err("invalid user ID '%s'", user);
        goto out;
    }
    if (!sk_store_valid_tenant(tenant)) {
        ctl_err("invalid tenant '%s'", tenant);
        goto out;
    }
    if (ctl_log_open(conf, &log) != CTL_OK)
        goto out;
    if (ctl_store_open(conf, 0, &s, "session") != SK_STORE_OK)
        goto out;
    n = all ? sk_store_session_delete_all(s) : sk_store_session_delete_user(s, tenant, user);
    if (n < 0) {
        ctl_err("cannot revoke sessions");
        goto out;
    }
    if (sk_snprintf(count, sizeof count, "%d", n) != 0)
        count[0] = '\0';
    {
        sk_audit_kv kv[] = { { "user", all ? NULL : user },
                             { "scope", all ? "all" : "user" },
                             { "sessions_ended", count },
                             { "result", "ok" } };
        if (ctl_log_change(log, "session.revoke", all ? NULL : tenant, kv, SK_ARRAY_LEN(kv)) !=
            CTL_OK)
            goto out;
    }
    printf("revoked %d session(s)\n", n);
    ret = CTL_OK;
out:
    sk_store_close(s);
    ctl_log_close(log);
    return ret;
}

int ctl_session_main(const sk_conf *conf, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },
        { "user", required_argument, NULL, 'u' },
        { "tenant", required_argument, NULL, 't' },
        { "all", no_argument, NULL, 'a' },
        { NULL, 0, NULL, 0 },
    };
    const char *user = NULL, *tenant = NULL;
    int json = 0, all = 0, c;
    const char *usage;
    int is_list;

    if (argc < 1) {
        ctl_session_usage();
        return CTL_USAGE;
    }
    if (strcmp(argv[0], "list") == 0) {
        is_list = 1;
        usage = usage_list;
    } else if (strcmp(argv[0], "revoke") == 0) {
        is_list = 0;
        usage = usage_revoke;
    } else {
        ctl_err("unknown subcommand 'session %s'", argv[0]);
        fputs("usage:\n", stderr);
        ctl_session_usage();
        return CTL_USAGE;
    }
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        int ok = is_list ? c == 'j' : (c == 'u' || c == 't' || c == 'a');
        if (c == ':')
            return usage_error(usage, "option needs a value:", argv[optind - 1]);
        if (c == '?' && optopt != 0) {
            char so[3] = { '-', (char)optopt, '\0' };
            return usage_error(usage, "unknown option", so);
        }
        if (c == '?' || !ok)
            return usage_error(usage, "unknown or misplaced option", argv[optind - 1]);
        if (c == 'j')
            json = 1;
        else if (c == 'u')
            user = optarg;
        else if (c == 't')
            tenant = optarg;
        else
            all = 1;
    }
    if (is_list) {
        if (optind < argc)
            return usage_error(usage, "unexpected argument", argv[optind]);
        return cmd_list(conf, json);
    }
    if (optind < argc) {
        if (optind + 1 < argc)
            return usage_error(usage, "unexpected argument", argv[optind + 1]);
        if (all || user || tenant)
            return usage_error(usage, "give one of SESSION-ID, --user ID or --all", NULL);
        return cmd_revoke_one(conf, argv[optind]);
    }
    if (all == (user != NULL) || (all && tenant))
        return usage_error(usage, "give one of SESSION-ID, --user ID [--tenant T] or --all", NULL);
    if (all)
        return cmd_revoke(conf, NULL, SK_DEFAULT_TENANT, 1);
    {
        /* The account, as every user command resolves it (ctl_account.c). */
        static char rid[SK_USER_ID_MAX + 1], rtenant[SK_TENANT_MAX + 1];
        int r = ctl_resolve_user(conf, user, tenant, rid, rtenant);
        if (r == CTL_NOTFOUND) {
            ctl_err("no user '%s' in any tenant", rid);
            return CTL_REFUSED;
        }
        if (r != CTL_OK)
            return r;
        return cmd_revoke(conf, rid, rtenant, 0);
    }
}
