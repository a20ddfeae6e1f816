/* sk_conf: table-driven INI configuration. See sk_conf.h. */
#include "sk_conf.h"
#include "conf_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

enum conf_type { T_STR, T_PATH, T_U32, T_DUR, T_BOOL, T_LOGLEVEL };

struct conf_key {
    const char *section;
    const char *name;
    enum conf_type type;
    size_t offset;
    size_t size;     /* buffer size for strings */
    uint64_t min, max;
};

#define STR(s, n, f) { s, n, T_STR, offsetof(sk_conf, f), sizeof(((sk_conf *)0)->f), 0, 0 }
#define PATH(s, n, f) { s, n, T_PATH, offsetof(sk_conf, f), sizeof(((sk_conf *)0)->f), 0, 0 }
#define U32(s, n, f, lo, hi) { s, n, T_U32, offsetof(sk_conf, f), 0, lo, hi }
#define DUR(s, n, f, lo, hi) { s, n, T_DUR, offsetof(sk_conf, f), 0, lo, hi }
#define BOOL(s, n, f) { s, n, T_BOOL, offsetof(sk_conf, f), 0, 0, 1 }

static const struct conf_key conf_keys[] = {
    STR("listen", "address", listen_address),
    PATH("listen", "cert", listen_cert),
    PATH("listen", "key", listen_key),
    U32("listen", "max_connections", max_connections, 1, 1000000),
    U32("listen", "workers", listen_workers, 1, 256),
    U32("listen", "processes", listen_processes, 1, 64),
    U32("listen", "handshakes_per_address", handshakes_per_address, 1, 100000),
    DUR("listen", "handshake_timeout", handshake_timeout, 1, 300),
    DUR("listen", "drain_timeout", drain_timeout, 1, 3600),
    DUR("listen", "request_timeout", request_timeout, 1, 86400),
    PATH("tls", "client_ca", tls_client_ca),
    PATH("tls", "crl", tls_crl),
    DUR("tls", "session_lifetime", tls_session_lifetime, 0, 86400),
    DUR("tls", "crl_warn_before", tls_crl_warn_before, 0, 365 * 86400),
    DUR("tls", "crl_check_interval", tls_crl_check_interval, 1, 3600),
    STR("upstream", "url", upstream_url),
    DUR("upstream", "timeout", upstream_timeout, 1, 86400),
    U32("upstream", "keepalive", upstream_keepalive, 0, 10000),
    PATH("state", "dir", state_dir),
    STR("store", "backend", store_backend),
    STR("store", "url", store_url),
    PATH("store", "password_file", store_password_file),
    DUR("store", "outage_grace", store_outage_grace, 0, 3600),
    U32("store", "pool", store_pool, 1, 64),
    U32("policy", "lockout_threshold", lockout_threshold, 1, 100),
    DUR("policy", "lockout_duration", lockout_duration, 1, 366 * 86400),
    DUR("policy", "idle_timeout", idle_timeout, 60, 86400),
    DUR("policy", "absolute_timeout", absolute_timeout, 60, 30 * 86400),
    DUR("policy", "dormant_notify_after", dormant_notify_after, 86400, 3660 * 86400),
    DUR("policy", "dormant_lock_after", dormant_lock_after, 86400, 3660 * 86400),
    DUR("policy", "dormant_delete_after", dormant_delete_after, 86400, 3660 * 86400),
    U32("policy", "password_min_length", password_min_length, 8, 1024),
    U32("policy", "password_max_length", password_max_length, 20, 1024),
    BOOL("policy", "password_require_upper", password_require_upper),
    BOOL("policy", "password_require_lower", password_require_lower),
    BOOL("policy", "password_require_digit", password_require_digit),
    U32("policy", "burst_threshold", burst_threshold, 2, 100000),
    DUR("policy", "burst_window", burst_window, 10, 86400),
    U32("auth", "workers", auth_workers, 1, 256),
    U32("auth", "queue", auth_queue, 0, 100000),
    U32("auth", "argon2_memory_kib", argon2_memory_kib, 1024, 4u * 1024 * 1024),
    U32("auth", "argon2_iterations", argon2_iterations, 1, 100),
    U32("auth", "argon2_parallelism", argon2_parallelism, 1, 64),
    PATH("auth", "totp_key", auth_totp_key),
    STR("metrics", "listen", metrics_listen),
    STR("notify", "command", notify_command),
    STR("notify", "operators", notify_operators),
    STR("notify", "from", notify_from),
    STR("notify", "operators_warning", notify_operators_level[0]),
    STR("notify", "operators_minor", notify_operators_level[1]),
    STR("notify", "operators_major", notify_operators_level[2]),
    STR("notify", "allowed_domains", notify_allowed_domains),
    STR("notify", "portal_url", notify_portal_url),
    PATH("notify", "outbox", notify_outbox),
    PATH("audit", "dir", audit_dir),
    PATH("audit", "key", audit_key),
    DUR("audit", "retention", audit_retention, 86400, 100 * 366 * 86400LL),
    STR("audit", "timezone", audit_timezone),
    BOOL("audit", "log_requests", audit_log_requests),
    DUR("audit", "epoch", audit_epoch, 60, 86400),
    STR("audit", "witness", audit_witness),
    STR("audit", "node", audit_node),
    { "log", "level", T_LOGLEVEL, offsetof(sk_conf, log_level), 0, 0, 0 },
};

/* Defaults are literals that fit by construction; checked at compile time. */
#define COPY_LITERAL(dst, lit)                                              \
    do {                                                                    \
        _Static_assert(sizeof(lit) <= sizeof(dst), "default fits " #dst);   \
        memcpy(dst, lit, sizeof(lit));                                      \
    } while (0)

void sk_conf_defaults(sk_conf *c)
{
    memset(c, 0, sizeof *c);
    COPY_LITERAL(c->listen_address, "127.0.0.1:8443");
    c->max_connections = 0;  /* derived from the open-file limit at start */
    c->listen_workers = 0;   /* one per CPU */
    c->listen_processes = 1; /* see README, "Several network processes" */
    c->handshakes_per_address = 64;
    c->handshake_timeout = 10;
    c->drain_timeout = 30;
    c->request_timeout = 300;
    c->tls_session_lifetime = 3600;
    c->tls_crl_warn_before = 3 * 86400;
    c->tls_crl_check_interval = 2;
    COPY_LITERAL(c->upstream_url, "http://127.0.0.1:8080");
    c->upstream_timeout = 60;
    c->upstream_keepalive = 64;
    COPY_LITERAL(c->state_dir, "/var/lib/sekisho");
    COPY_LITERAL(c->store_backend, "lmdb");
    c->store_outage_grace = 60;
    c->store_pool = SK_CONF_STORE_POOL_DEFAULT;
    {
        /* The policy module owns the behavioural defaults (DESIGN.md's table). */
        sk_policy_config p;
        sk_policy_defaults(&p);
        c->lockout_threshold = p.lockout_threshold;
        c->lockout_duration = p.lockout_duration;
        c->idle_timeout = p.idle_timeout;
        c->absolute_timeout = p.absolute_timeout;
        c->dormant_notify_after = p.dormant_notify_after;
        c->dormant_lock_after = p.dormant_lock_after;
        c->dormant_delete_after = p.dormant_delete_after;
        c->password_min_length = p.password_min_length;
        c->password_max_length = p.password_max_length;
        c->password_require_upper = p.password_require_upper;
        c->password_require_lower = p.password_require_lower;
        c->password_require_digit = p.password_require_digit;
        c->burst_threshold = p.burst_threshold;
        c->burst_window = p.burst_window;
    }
    c->auth_workers = 2;
    c->auth_queue = 64;
    c->argon2_memory_kib = 65536;
    c->argon2_iterations = 3;
    c->argon2_parallelism = 1;
    COPY_LITERAL(c->notify_command, "/usr/sbin/sendmail -t");
    c->audit_retention = 365 * 86400;
    COPY_LITERAL(c->audit_timezone, "Asia/Tokyo");
    c->audit_log_requests = 1;
    c->audit_epoch = 900;
    c->log_level = SK_LOG_INFO;
    /* Fail safe: the gateway cannot know whether the upstream folds case and
     * trailing dots (IIS does), so rules match the lenient way unless told. */
    c->path_icase = 1;
}

struct conf_parse {
    sk_conf *conf;
    FILE *fp;
    int line;
    int line_too_long;      /* line number of the first overlong line, 0 = none */
    int bad_section;        /* line number of the first unknown section header */
    char bad_section_name[64];
    int err_line;
    char basedir[SK_CONF_PATH_MAX];
    char err[SK_CONF_PATH_MAX + 256];
    unsigned char seen[SK_ARRAY_LEN(conf_keys)];
    int seen_line[SK_ARRAY_LEN(conf_keys)];
    char why[256];          /* what the value must be, set by the validator that refused it */
};

/* Our reader counts lines so that errors can name one, which the stock inih build
 * on Debian (no INI_HANDLER_LINENO) cannot do, and refuses overlong lines instead of
 * letting inih split them silently. */
static int known_section(const char *name, size_t n)
{
    static const char *const sections[] = { "listen", "tls", "upstream", "state", "policy", "auth",
                                            "notify", "audit", "log", "access", "metrics", "store" };
    for (size_t i = 0; i < SK_ARRAY_LEN(sections); i++)
        if (strlen(sections[i]) == n && memcmp(sections[i], name, n) == 0)
            return 1;
    return n > 7 && memcmp(name, "tenant.", 7) == 0;
}

/* Our reader counts lines so that errors can name one, which the stock inih build
 * on Debian (no INI_HANDLER_LINENO) cannot do. It also catches what that build
 * lets through silently: overlong lines (inih would split them) and unknown
 * section headers that hold no keys (inih never reports empty sections). */
static char *conf_reader(char *str, int num, void *stream)
{
    struct conf_parse *p = stream;
    char *r = fgets(str, num, p->fp);
    const char *s;
    if (r == NULL)
        return NULL;
    p->line++;
    if (strchr(str, '\n') == NULL && !feof(p->fp)) {
        int c;
        if (p->line_too_long == 0)
            p->line_too_long = p->line;
        while ((c = fgetc(p->fp)) != EOF && c != '\n')
            ; /* the rest of the overlong line is not parsed */
        str[0] = '\0';
        return r;
    }
    for (s = str; *s == ' ' || *s == '\t'; s++)
        ;
    if (*s == '[' && p->bad_section == 0) {
        const char *end = strchr(s, ']');
        if (end == NULL || !known_section(s + 1, (size_t)(end - s - 1))) {
            size_t n = end ? (size_t)(end - s - 1) : strcspn(s + 1, "\r\n");
            p->bad_section = p->line;
            if (n >= sizeof p->bad_section_name)
                n = sizeof p->bad_section_name - 1;
            memcpy(p->bad_section_name, s + 1, n);
            p->bad_section_name[n] = '\0';
        }
    }
    return r;
}

static int set_error(struct conf_parse *p, const char *what, const char *section, const char *name)
{
    /* The first error is the one to report; later ones are often its echoes. Error
     * text may be cut; it is a message, not data. */
    if (p->err[0] == '\0') {
        (void)snprintf(p->err, sizeof p->err, "%s:%d: %s [%s] %s", p->conf->file, p->line, what,
                       section, name);
        p->err_line = p->line;
    }
    return 0;
}

/* "FILE:LINE: [section] key = value: must be ..." — the value as written (cut and
 * with control bytes replaced, it is quoted back to a terminal) and what it must be. */
static int set_value_error(struct conf_parse *p, const char *section, const char *name, const char *value,
                           const char *why)
{
    char v[72];
    size_t i;
    if (p->err[0] != '\0')
        return 0;
    if (strcmp(section, "store") == 0 && strcmp(name, "url") == 0)
        value = "(not repeated: it may hold a password)";
    for (i = 0; value[i] != '\0' && i < sizeof v - 4; i++)
        v[i] = (unsigned char)value[i] < 0x20 || value[i] == 0x7f ? '?' : value[i];
    v[i] = '\0';
    if (value[i] != '\0')
        memcpy(v + i, "...", 4);
    (void)snprintf(p->err, sizeof p->err, "%s:%d: [%s] %s = %s: %s", p->conf->file, p->line, section, name, v,
                   why != NULL && why[0] != '\0' ? why : "invalid value");
    p->err_line = p->line;
    return 0;
}

static int resolve_path(const struct conf_parse *p, const char *value, char *out, size_t cap)
{
    if (value[0] == '/' || value[0] == '\0')
        return sk_strlcpy(out, cap, value);
    return sk_snprintf(out, cap, "%s/%s", p->basedir, value);
}

static int parse_bool(const char *v, int *out)
{
    static const struct { const char *word; int value; } words[] = {
        { "yes", 1 }, { "true", 1 }, { "on", 1 }, { "1", 1 },
        { "no", 0 }, { "false", 0 }, { "off", 0 }, { "0", 0 },
    };
    for (size_t i = 0; i < SK_ARRAY_LEN(words); i++) {
        if (strcmp(v, words[i].word) == 0) {
            *out = words[i].value;
            return 0;
        }
    }
    return -1;
}

static int parse_loglevel(const char *v, int *out)
{
    static const char *const names[] = { "error", "warn", "info", "debug" };
    for (size_t i = 0; i < SK_ARRAY_LEN(names); i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    return -1;
}

static int valid_tenant_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '-')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
            return 0;
    return 1;
}

static int parse_upstream_url(const char *url, sk_conf_upstream *u);

/* [audit] node: the same rule as the audit module's (sk_audit_valid_node), kept
 * here because common/ does not link the audit module. */
static int conf_valid_node(const char *v)
{
    size_t n = strlen(v);
    return n >= 1 && n <= 63 &&
           strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* Default [audit] node: the host name, which must itself be a valid node name. */
static int conf_default_node(sk_conf *c, char *err, size_t errlen)
{
    char host[256];
    if (gethostname(host, sizeof host) != 0 || (host[sizeof host - 1] = '\0', !conf_valid_node(host))) {
        (void)snprintf(err, errlen, "%s: [audit] node is not set and the host name cannot serve as "
                       "one (1 to 63 of A-Z a-z 0-9 . _ -): set [audit] node", c->file);
        return -1;
    }
    memcpy(c->audit_node, host, strlen(host) + 1);
    return 0;
}

/* 1 (and why filled) if a [store] value is refused. The connection string never
 * carries the password: the config file is often readable by more people than
 * the secret files, and the same string would show in `sekisho -T`. */
static int store_value_bad(const char *name, const char *value, char *why, size_t whycap)
{
    if (strcmp(name, "backend") == 0 && strcmp(value, "lmdb") != 0 && strcmp(value, "postgresql") != 0) {
        (void)snprintf(why, whycap, "must be lmdb (one node, the default) or postgresql (several nodes)");
        return 1;
    }
    if (strcmp(name, "url") == 0 && value[0] != '\0' && !sk_conf_valid_store_url(value, why, whycap))
        return 1;
    return 0;
}

/* Parse one table key into the struct; on failure p->why says what it must be. */
static int conf_set(struct conf_parse *p, const struct conf_key *k, const char *value)
{
    char *field = (char *)p->conf + k->offset;
    char lo[24], hi[24];
    uint64_t u;
    int64_t d;

    p->why[0] = '\0';
    switch (k->type) {
    case T_STR:
    case T_PATH:
        if (strcmp(k->section, "audit") == 0 && strcmp(k->name, "timezone") == 0 && !sk_conf_valid_timezone(value)) {
            (void)snprintf(p->why, sizeof p->why, "unknown time zone: must be a name of the tz database "
                                                  "(e.g. Asia/Tokyo, Europe/Berlin, UTC)");
            return -1;
        }
        if (strcmp(k->section, "notify") == 0 && strcmp(k->name, "allowed_domains") == 0 &&
            strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-, ") != strlen(value)) {
            (void)snprintf(p->why, sizeof p->why, "must be mail domains separated by commas (example.com; "
                                                  ".example.com for its subdomains)");
            return -1;
        }
        if (strcmp(k->section, "notify") == 0 && strcmp(k->name, "portal_url") == 0 && value[0] != '\0' &&
            (strncmp(value, "https://", 8) != 0 || strpbrk(value, " \t\"<>") != NULL)) {
            (void)snprintf(p->why, sizeof p->why, "must be the portal's https:// address");
            return -1;
        }
        if (strcmp(k->section, "store") == 0 && store_value_bad(k->name, value, p->why, sizeof p->why))
            return -1;
        if (strcmp(k->section, "audit") == 0 && strcmp(k->name, "node") == 0 && !conf_valid_node(value)) {
            (void)snprintf(p->why, sizeof p->why, "must be 1 to 63 characters of A-Z a-z 0-9 . _ - "
                                                  "(this node's name in the audit log)");
            return -1;
        }
        if (strcmp(k->section, "upstream") == 0 && strcmp(k->name, "url") == 0) {
            sk_conf_upstream up;
            if (parse_upstream_url(value, &up) != 0) {
                (void)snprintf(p->why, sizeof p->why, "must be http://HOST[:PORT][/PREFIX] with PORT between 1 "
                                                      "and 65535 (plain HTTP to a local or private upstream)");
                return -1;
            }
            p->conf->upstream_url_set = 1;
        }
        if (((strcmp(k->section, "listen") == 0 && strcmp(k->name, "address") == 0) ||
             (strcmp(k->section, "metrics") == 0 && strcmp(k->name, "listen") == 0 && value[0] != '\0')) &&
            !sk_conf_valid_listen_address(value)) {
            (void)snprintf(p->why, sizeof p->why, "must be IPV4:PORT, [IPV6]:PORT, HOSTNAME:PORT or :PORT "
                                                  "with PORT between 1 and 65535");
            return -1;
        }
        if ((k->type == T_STR ? sk_strlcpy(field, k->size, value) : resolve_path(p, value, field, k->size)) != 0) {
            (void)snprintf(p->why, sizeof p->why, "too long (at most %zu characters%s)", k->size - 1,
                           k->type == T_PATH ? " after resolving it against the file's directory" : "");
            return -1;
        }
        return 0;
    case T_U32:
        if (sk_parse_u64(value, k->min, k->max, &u) != 0) {
            (void)snprintf(p->why, sizeof p->why, "must be a whole number between %llu and %llu",
                           (unsigned long long)k->min, (unsigned long long)k->max);
            return -1;
        }
        *(uint32_t *)(void *)field = (uint32_t)u;
        return 0;
    case T_DUR:
        if (sk_parse_duration(value, &d) != 0 || (uint64_t)d < k->min || (uint64_t)d > k->max) {
            sk_conf_fmt_duration(k->min, lo, sizeof lo);
            sk_conf_fmt_duration(k->max, hi, sizeof hi);
            (void)snprintf(p->why, sizeof p->why, "must be between %s and %s (a number with s, m, h or d)", lo, hi);
            return -1;
        }
        *(int64_t *)(void *)field = d;
        return 0;
    case T_BOOL:
        if (parse_bool(value, (int *)(void *)field) != 0) {
            (void)snprintf(p->why, sizeof p->why, "must be yes or no (also true/false, on/off, 1/0)");
            return -1;
        }
        return 0;
    case T_LOGLEVEL:
        if (parse_loglevel(value, (int *)(void *)field) != 0) {
            (void)snprintf(p->why, sizeof p->why, "must be one of error, warn, info, debug");
            return -1;
        }
        return 0;
    }
    return -1;
}

/* Split a comma/space separated list and hand each item to fn. */
static int for_each_item(const char *value, int (*fn)(void *ctx, const char *item), void *ctx)
{
    char item[SK_CONF_PATH_PREFIX_MAX + 64];
    const char *p = value;
    int any = 0;
    while (*p) {
        size_t n;
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        n = strcspn(p, ", \t");
        if (n == 0)
            break;
        if (n >= sizeof item)
            return -1;
        memcpy(item, p, n);
        item[n] = '\0';
        if (fn(ctx, item) != 0)
            return -1;
        any = 1;
        p += n;
    }
    return any ? 0 : -1;
}

struct cidr_sink {
    sk_policy_cidr *items;
    uint32_t *count;
    uint32_t cap;
    char *why;              /* p->why, filled when an item is refused */
    size_t whycap;
};

static int add_cidr(void *ctx, const char *item)
{
    struct cidr_sink *s = ctx;
    sk_policy_cidr_err e;
    if (*s->count >= s->cap) {
        (void)snprintf(s->why, s->whycap, "too many entries (at most %u in this list)", (unsigned)s->cap);
        return -1;
    }
    e = sk_policy_cidr_parse(item, strlen(item), &s->items[*s->count]);
    if (e != SK_POLICY_CIDR_OK) {
        (void)snprintf(s->why, s->whycap, "'%.60s' is not a CIDR (%s): must be addresses or networks such as "
                       "192.0.2.0/24, 2001:db8::/32 or 10.1.2.3, separated by commas",
                       item, sk_policy_cidr_strerror(e));
        return -1;
    }
    (*s->count)++;
    return 0;
}

static int add_host(void *ctx, const char *item)
{
    sk_conf_tenant *t = ctx;
    if (t->n_hosts >= SK_CONF_MAX_HOSTS || sk_strlcpy(t->hosts[t->n_hosts], sizeof t->hosts[0], item) != 0)
        return -1;
    for (char *c = t->hosts[t->n_hosts]; *c; c++) {
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c + 32);
        else if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
            return -1;
    }
    t->n_hosts++;
    return 0;
}

/* "path_rule = /admin admin" or "path_rule = / admin,general" */
static int add_path_rule(sk_conf *c, const char *value)
{
    sk_conf_path_rule *r;
    const char *sp = strpbrk(value, " \t");
    char norm[SK_CONF_PATH_PREFIX_MAX];
    size_t plen;
    unsigned mask = 0;
    if (c->n_path_rules >= SK_CONF_MAX_PATH_RULES || sp == NULL)
        return -1;
    r = &c->path_rules[c->n_path_rules];
    plen = (size_t)(sp - value);
    if (plen >= sizeof r->prefix)
        return -1;
    memcpy(r->prefix, value, plen);
    r->prefix[plen] = '\0';
    /* A rule must already be in normal form, or it would never match what the
     * gateway compares it with. */
    if (sk_policy_path_normalize(r->prefix, plen, norm, sizeof norm, NULL) != SK_POLICY_PATH_OK ||
        strcmp(norm, r->prefix) != 0 || sk_policy_path_has_empty_segment(r->prefix, plen))
        return -1;
    while (*sp == ' ' || *sp == '\t')
        sp++;
    while (*sp) {
        unsigned bit;
        size_t n = strcspn(sp, ",+ \t");
        if (n == 0 || sk_policy_role_parse(sp, n, &bit) != 0)
            return -1;
        mask |= bit;
        sp += n;
        while (*sp == ',' || *sp == '+' || *sp == ' ' || *sp == '\t')
            sp++;
    }
    if (mask == 0)
        return -1;
    r->roles = mask;
    c->n_path_rules++;
    return 0;
}

static int access_key(struct conf_parse *p, const char *name, const char *value)
{
    sk_conf *c = p->conf;
    if (strcmp(name, "allow") == 0) {
        struct cidr_sink s = { c->access_allow, &c->n_access_allow, SK_CONF_MAX_CIDRS, p->why, sizeof p->why };
        return for_each_item(value, add_cidr, &s);
    }
    if (strcmp(name, "trusted_proxies") == 0) {
        struct cidr_sink s = { c->trusted_proxies, &c->n_trusted_proxies, SK_CONF_MAX_PROXIES, p->why,
                               sizeof p->why };
        return for_each_item(value, add_cidr, &s);
    }
    if (strcmp(name, "path_rule") == 0) {
        (void)snprintf(p->why, sizeof p->why, "must be '/PREFIX ROLE[,ROLE]': a normalised path (no //, . or "
                       "..) and roles admin, general (at most %d rules)", SK_CONF_MAX_PATH_RULES);
        return add_path_rule(c, value);
    }
    if (strcmp(name, "path_case_insensitive") == 0) {
        (void)snprintf(p->why, sizeof p->why, "must be yes or no (also true/false, on/off, 1/0)");
        return parse_bool(value, &c->path_icase);
    }
    return 1; /* unknown */
}

static int tenant_key(struct conf_parse *p, const char *section, const char *name, const char *value)
{
    sk_conf *c = p->conf;
    const char *tname = section + 7; /* after "tenant." */
    sk_conf_tenant *t = NULL;
    for (uint32_t i = 0; i < c->n_tenants; i++)
        if (strcmp(c->tenants[i].name, tname) == 0)
            t = &c->tenants[i];
    if (t == NULL) {
        if (c->n_tenants >= SK_CONF_MAX_TENANTS || !valid_tenant_name(tname)) {
            (void)snprintf(p->why, sizeof p->why, "the tenant name must be 1-63 characters a-z 0-9 - (not "
                           "starting with -), at most %d tenants", SK_CONF_MAX_TENANTS);
            return -1;
        }
        t = &c->tenants[c->n_tenants++];
        memset(t, 0, sizeof *t);
        memcpy(t->name, tname, strlen(tname) + 1);
    }
    if (strcmp(name, "host") == 0) {
        (void)snprintf(p->why, sizeof p->why, "must be host names (a-z 0-9 . -), separated by commas, at most "
                       "%d per tenant", SK_CONF_MAX_HOSTS);
        return for_each_item(value, add_host, t);
    }
    if (strcmp(name, "upstream") == 0) {
        (void)snprintf(p->why, sizeof p->why, t->upstream.url[0] != '\0'
                       ? "given twice in this tenant"
                       : "must be http://HOST[:PORT][/PREFIX] with PORT between 1 and 65535");
        return t->upstream.url[0] != '\0' ? -1 : parse_upstream_url(value, &t->upstream);
    }
    if (strcmp(name, "allow") == 0) {
        struct cidr_sink s = { t->allow, &t->n_allow, SK_CONF_MAX_CIDRS, p->why, sizeof p->why };
        return for_each_item(value, add_cidr, &s);
    }
    return 1;
}

static int conf_handler(void *user, const char *section, const char *name, const char *value)
{
    struct conf_parse *p = user;

    p->why[0] = '\0';
    if (strcmp(section, "access") == 0 || strncmp(section, "tenant.", 7) == 0) {
        int r = strcmp(section, "access") == 0 ? access_key(p, name, value) : tenant_key(p, section, name, value);
        if (r > 0)
            return set_error(p, "unknown key", section, name);
        if (r < 0)
            return set_value_error(p, section, name, value, p->why);
        return 1;
    }
    for (size_t i = 0; i < SK_ARRAY_LEN(conf_keys); i++) {
        const struct conf_key *k = &conf_keys[i];
        if (strcmp(k->section, section) != 0 || strcmp(k->name, name) != 0)
            continue;
        if (p->seen[i]) {
            (void)snprintf(p->why, sizeof p->why, "duplicate key, given twice (first on line %d)", p->seen_line[i]);
            return set_value_error(p, section, name, value, p->why);
        }
        p->seen[i] = 1;
        p->seen_line[i] = p->line;
        if (conf_set(p, k, value) != 0)
            return set_value_error(p, section, name, value, p->why);
        return 1;
    }
    return set_error(p, "unknown key", section, name);
}

/* http://host[:port][/prefix]: only plain HTTP to a local or private upstream for now;
 * the parse is strict so a typo cannot silently point the proxy elsewhere. */
static int parse_upstream_url(const char *url, sk_conf_upstream *out)
{
    const char *host, *end, *colon, *slash;
    sk_conf_upstream u;
    size_t hostlen, n;

    memset(&u, 0, sizeof u);
    if (sk_strlcpy(u.url, sizeof u.url, url) != 0 || strncmp(url, "http://", 7) != 0)
        return -1;
    host = url + 7;
    slash = strchr(host, '/');
    end = slash ? slash : host + strlen(host);
    if (*host == '[') {
        const char *rb = memchr(host, ']', (size_t)(end - host));
        if (rb == NULL)
            return -1;
        colon = rb[1] == ':' ? rb + 1 : NULL;
        if (colon == NULL && rb + 1 != end)
            return -1;
        hostlen = (size_t)(rb - host - 1);
        host++;
    } else {
        colon = memchr(host, ':', (size_t)(end - host));
        hostlen = (size_t)((colon ? colon : end) - host);
    }
    if (hostlen == 0 || hostlen >= sizeof u.host)
        return -1;
    memcpy(u.host, host, hostlen);
    u.host[hostlen] = '\0';
    if (colon) {
        uint64_t v;
        size_t plen = (size_t)(end - colon - 1);
        if (plen == 0 || plen >= sizeof u.port)
            return -1;
        memcpy(u.port, colon + 1, plen);
        u.port[plen] = '\0';
        if (sk_parse_u64(u.port, 1, 65535, &v) != 0)
            return -1;
    } else {
        COPY_LITERAL(u.port, "80");
    }
    if (sk_strlcpy(u.prefix, sizeof u.prefix, slash ? slash : "") != 0)
        return -1;
    n = strlen(u.prefix);
    while (n > 0 && u.prefix[n - 1] == '/')
        u.prefix[--n] = '\0';
    for (const char *q = u.prefix; *q; q++)
        if (*q <= ' ' || *q == '?' || *q == '#' || *q == 0x7f)
            return -1;
    *out = u;
    return 0;
}

/* Plain HTTP only: the upstream sits on a trusted network or loopback; the parse is
 * strict so a typo cannot silently point the proxy elsewhere. */
static int parse_upstream(sk_conf *c)
{
    sk_conf_upstream u;
    if (parse_upstream_url(c->upstream_url, &u) != 0)
        return -1;
    memcpy(c->upstream_host, u.host, sizeof c->upstream_host);
    memcpy(c->upstream_port, u.port, sizeof c->upstream_port);
    memcpy(c->upstream_prefix, u.prefix, sizeof c->upstream_prefix);
    return 0;
}

/* Line of a table key in the file, 0 when it was not given. */
static int key_line(const struct conf_parse *p, const char *section, const char *name)
{
    for (size_t i = 0; i < SK_ARRAY_LEN(conf_keys); i++)
        if (strcmp(conf_keys[i].section, section) == 0 && strcmp(conf_keys[i].name, name) == 0)
            return p->seen[i] ? p->seen_line[i] : 0;
    return 0;
}

/* "FILE:LINE: what" (or "FILE: what" when the key is not in the file). */
static int finish_error(const struct conf_parse *p, const char *section, const char *name, char *err,
                        size_t errlen, const char *what)
{
    int line = section != NULL ? key_line(p, section, name) : 0;
    if (line > 0)
        (void)snprintf(err, errlen, "%s:%d: %s", p->conf->file, line, what);
    else
        (void)snprintf(err, errlen, "%s: %s", p->conf->file, what);
    return -1;
}

static int conf_finish(const struct conf_parse *p, sk_conf *c, char *err, size_t errlen)
{
    const char *what = NULL;
    char msg[256];

    if (parse_upstream(c) != 0)
        return finish_error(p, "upstream", "url", err, errlen,
                            "[upstream] url must be http://HOST[:PORT][/PREFIX] with PORT between 1 and 65535");
    if (c->listen_cert[0] == '\0' || c->listen_key[0] == '\0')
        return finish_error(p, NULL, NULL, err, errlen,
                            "[listen] cert and key are required (the gateway's certificate chain and key, PEM)");
    if (c->tls_client_ca[0] == '\0')
        return finish_error(p, NULL, NULL, err, errlen,
                            "[tls] client_ca is required (the CA that issues the client certificates, PEM)");
    if (c->password_max_length < c->password_min_length) {
        (void)snprintf(msg, sizeof msg, "[policy] password_max_length = %u: must be at least password_min_length (%u)",
                       (unsigned)c->password_max_length, (unsigned)c->password_min_length);
        return finish_error(p, "policy", key_line(p, "policy", "password_max_length") ? "password_max_length"
                                                                                        : "password_min_length",
                            err, errlen, msg);
    }
    if (c->idle_timeout > c->absolute_timeout) {
        char a[24], b[24];
        sk_conf_fmt_duration((uint64_t)c->idle_timeout, a, sizeof a);
        sk_conf_fmt_duration((uint64_t)c->absolute_timeout, b, sizeof b);
        (void)snprintf(msg, sizeof msg, "[policy] idle_timeout = %s: must not exceed absolute_timeout (%s)", a, b);
        return finish_error(p, "policy", key_line(p, "policy", "idle_timeout") ? "idle_timeout" : "absolute_timeout",
                            err, errlen, msg);
    }
    if (strcmp(c->store_backend, "postgresql") == 0 && c->store_url[0] == '\0')
        return finish_error(p, "store", "backend", err, errlen,
                            "[store] url is required with backend = postgresql (a libpq connection string)");
    for (uint32_t i = 0; what == NULL && i < c->n_tenants; i++) {
        if (c->tenants[i].n_hosts == 0 || c->tenants[i].upstream.url[0] == '\0') {
            (void)snprintf(err, errlen, "%s: [tenant.%s] needs host (its portal's host names) and upstream "
                           "(http://HOST[:PORT][/PREFIX])", c->file, c->tenants[i].name);
            return -1;
        }
        for (uint32_t j = 0; j < i; j++)
            for (uint32_t a = 0; a < c->tenants[i].n_hosts; a++)
                for (uint32_t b = 0; b < c->tenants[j].n_hosts; b++)
                    if (strcmp(c->tenants[i].hosts[a], c->tenants[j].hosts[b]) == 0) {
                        (void)snprintf(err, errlen, "%s: host %s belongs to two tenants", c->file,
                                       c->tenants[i].hosts[a]);
                        return -1;
                    }
    }
    if (what != NULL) {
        (void)snprintf(err, errlen, "%s: %s", c->file, what);
        return -1;
    }
    if (c->audit_dir[0] == '\0' &&
        sk_snprintf(c->audit_dir, sizeof c->audit_dir, "%s/audit", c->state_dir) != 0)
        goto toolong;
    if (c->auth_totp_key[0] == '\0' &&
        sk_snprintf(c->auth_totp_key, sizeof c->auth_totp_key, "%s/totp.key", c->state_dir) != 0)
        goto toolong;
    if (c->audit_key[0] == '\0' &&
        sk_snprintf(c->audit_key, sizeof c->audit_key, "%s/audit.key", c->state_dir) != 0)
        goto toolong;
    if (c->audit_node[0] == '\0' && conf_default_node(c, err, errlen) != 0)
        return -1;
    (void)p;
    return 0;
toolong:
    (void)snprintf(err, errlen, "%s: [state] dir is too long", c->file);
    return -1;
}

int sk_conf_load(const char *path, sk_conf *out, char *err, size_t errlen)
{
    struct conf_parse p;
    char *slash;
    int rc = -1, r;

    memset(&p, 0, sizeof p);
    sk_conf_defaults(out);
    p.conf = out;
    if (sk_strlcpy(out->file, sizeof out->file, path) != 0 ||
        sk_strlcpy(p.basedir, sizeof p.basedir, path) != 0) {
        (void)snprintf(err, errlen, "configuration path too long");
        goto out;
    }
    slash = strrchr(p.basedir, '/');
    if (slash == NULL)
        COPY_LITERAL(p.basedir, ".");
    else if (slash == p.basedir)
        slash[1] = '\0';
    else
        *slash = '\0';
    p.fp = fopen(path, "re");
    if (p.fp == NULL) {
        (void)snprintf(err, errlen, "%s: cannot open: %m", path);
        goto out;
    }
    r = ini_parse_stream(conf_reader, &p, conf_handler, &p);
    fclose(p.fp);
    {
        /* Report whichever problem comes first in the file. */
        int first = 0;
        const char *kind = NULL;
        if (p.err[0] != '\0')
            first = p.err_line, kind = "key";
        if (p.line_too_long && (first == 0 || p.line_too_long < first))
            first = p.line_too_long, kind = "long";
        if (p.bad_section && (first == 0 || p.bad_section < first))
            first = p.bad_section, kind = "section";
        if (r > 0 && (first == 0 || r < first))
            first = r, kind = "syntax";
        if (r < 0 && kind == NULL)
            first = p.line, kind = "syntax";
        if (kind != NULL) {
            if (strcmp(kind, "key") == 0)
                (void)snprintf(err, errlen, "%s", p.err);
            else if (strcmp(kind, "section") == 0)
                (void)snprintf(err, errlen, "%s:%d: unknown or malformed section [%s]", path, first,
                               p.bad_section_name);
            else
                (void)snprintf(err, errlen, "%s:%d: %s", path, first,
                               strcmp(kind, "long") == 0      ? "line too long (at most 199 characters)"
                               : strcmp(kind, "section") == 0 ? "unknown or malformed section"
                                                              : "syntax error");
            goto out;
        }
    }
    rc = conf_finish(&p, out, err, errlen);
out:
    if (rc != 0) {
        char file[SK_CONF_PATH_MAX];
        memcpy(file, out->file, sizeof file);
        sk_conf_defaults(out);
        memcpy(out->file, file, sizeof file);
    }
    return rc;
}

/* ---- -T: the effective configuration ------------------------------------------ */

static void dump_cidrs(FILE *out, const char *key, const sk_policy_cidr *v, uint32_t n)
{
    char s[64];
    if (n == 0)
        return;
    fprintf(out, "%s = ", key);
    for (uint32_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? ", " : "", sk_policy_cidr_format(&v[i], s, sizeof s) == 0 ? s : "?");
    fputc('\n', out);
}

static void dump_extra(const sk_conf *c, const char *section, FILE *out)
{
    if (strcmp(section, "log") != 0)
        return;
    /* [access] and [tenant.*] are lists, not table keys: after the last table section. */
    fputs("\n[access]\n", out);
    dump_cidrs(out, "allow", c->access_allow, c->n_access_allow);
    dump_cidrs(out, "trusted_proxies", c->trusted_proxies, c->n_trusted_proxies);
    for (uint32_t i = 0; i < c->n_path_rules; i++) {
        fprintf(out, "path_rule = %s ", c->path_rules[i].prefix);
        for (unsigned bit = 1, first = 1; bit != 0 && bit <= c->path_rules[i].roles; bit <<= 1)
            if ((c->path_rules[i].roles & bit) && sk_policy_role_name(bit) != NULL) {
                fprintf(out, "%s%s", first ? "" : ",", sk_policy_role_name(bit));
                first = 0;
            }
        fputc('\n', out);
    }
    fprintf(out, "path_case_insensitive = %s\n", c->path_icase ? "yes" : "no");
    for (uint32_t i = 0; i < c->n_tenants; i++) {
        const sk_conf_tenant *t = &c->tenants[i];
        fprintf(out, "\n[tenant.%s]\nhost = ", t->name);
        for (uint32_t h = 0; h < t->n_hosts; h++)
            fprintf(out, "%s%s", h ? ", " : "", t->hosts[h]);
        fprintf(out, "\nupstream = %s\n", t->upstream.url);
        dump_cidrs(out, "allow", t->allow, t->n_allow);
    }
}

int sk_conf_dump(const sk_conf *c, FILE *out)
{
    static const char *const levels[] = { "error", "warn", "info", "debug" };
    const char *section = "";
    char d[24];

    fprintf(out, "# effective configuration of %s, defaults included\n", c->file);
    for (size_t i = 0; i < SK_ARRAY_LEN(conf_keys); i++) {
        const struct conf_key *k = &conf_keys[i];
        const char *field = (const char *)c + k->offset;
        if (strcmp(section, k->section) != 0) {
            if (section[0] != '\0')
                dump_extra(c, section, out);
            fprintf(out, "\n[%s]\n", k->section);
            section = k->section;
        }
        if (k->type == T_U32) {
            uint32_t v = *(const uint32_t *)(const void *)field;
            /* A default outside the settable range means "decided at start" (e.g.
             * 0 = from the open-file limit): shown, but as a comment, so that the
             * dump still loads back. */
            if (v < k->min || v > k->max)
                fprintf(out, "; %s = %u (automatic)\n", k->name, (unsigned)v);
            else
                fprintf(out, "%s = %u\n", k->name, (unsigned)v);
            continue;
        }
        fprintf(out, "%s = ", k->name);
        switch (k->type) {
        case T_STR:
        case T_PATH:
            fputs(field, out);
            break;
        case T_U32: /* printed above */
            break;
        case T_DUR:
            sk_conf_fmt_duration((uint64_t)*(const int64_t *)(const void *)field, d, sizeof d);
            fputs(d, out);
            break;
        case T_BOOL:
            fputs(*(const int *)(const void *)field ? "yes" : "no", out);
            break;
        case T_LOGLEVEL: {
            int l = *(const int *)(const void *)field;
            fputs(l >= 0 && (size_t)l < SK_ARRAY_LEN(levels) ? levels[l] : "info", out);
            break;
        }
        }
        fputc('\n', out);
    }
    dump_extra(c, section, out);
    return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}
