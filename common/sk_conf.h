/*
 * sk_conf.h — the one configuration file of a Sekisho installation.
 *
 * INI syntax, parsed with inih. Contract:
 *  - Every key has a default; the file only states what differs.
 *  - Unknown sections and keys, duplicate keys, bad values and values that do not
 *    fit their buffer are errors reported as "FILE:LINE: message" in err.
 *  - Durations accept 30s, 30m, 12h, 180d or plain seconds.
 *  - Relative paths are resolved against the directory holding the config file, so
 *    a config can be moved together with its certificates.
 *  - sk_conf_load() never leaves a half-filled struct to the caller: on failure
 *    *out is reset to defaults.
 */
#ifndef SK_CONF_H
#define SK_CONF_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include "sk_policy.h"
#include "sk_util.h"

#define SK_CONF_PATH_MAX 1024
#define SK_CONF_URL_MAX 1024
#define SK_CONF_MAX_CIDRS 64
#define SK_CONF_MAX_PROXIES 16
#define SK_CONF_MAX_PATH_RULES 64
#define SK_CONF_PATH_PREFIX_MAX 256
#define SK_CONF_MAX_TENANTS 32
#define SK_CONF_MAX_HOSTS 8

/* An upstream origin parsed from http://host[:port][/prefix]. */
typedef struct sk_conf_upstream {
    char url[SK_CONF_URL_MAX];
    char host[256];
    char port[8];
    char prefix[512];          /* "" or "/prefix" without trailing slash */
} sk_conf_upstream;

/* [tenant.NAME]: a portal chosen by host name (SNI and Host), with its own upstream
 * and allowlist. Certificates of this tenant carry O = NAME. */
typedef struct sk_conf_tenant {
    char name[64];
    char hosts[SK_CONF_MAX_HOSTS][256];
    uint32_t n_hosts;
    sk_conf_upstream upstream;
    sk_policy_cidr allow[SK_CONF_MAX_CIDRS];
    uint32_t n_allow;
} sk_conf_tenant;

typedef struct sk_conf_path_rule {
    char prefix[SK_CONF_PATH_PREFIX_MAX];   /* normalised path prefix */
    unsigned roles;                         /* SK_POLICY_ROLE_* mask */
} sk_conf_path_rule;

typedef struct sk_conf {
    char file[SK_CONF_PATH_MAX];

    /* [listen] */
    char listen_address[256];      /* "127.0.0.1:8443", "[::1]:8443", ":8443" */
    char listen_cert[SK_CONF_PATH_MAX];
    char listen_key[SK_CONF_PATH_MAX];
    uint32_t max_connections;      /* concurrent client connections; 0 = from the open-file limit */
    uint32_t listen_workers;       /* event-loop threads; 0 = one per CPU */
    uint32_t handshakes_per_address; /* unfinished TLS handshakes per client address */
    uint32_t listen_processes;     /* network processes sharing the listener (workers split among them) */

    /* [metrics] */
    char metrics_listen[256];      /* plain-HTTP /metrics and /health; "" = none */
    int64_t handshake_timeout;     /* seconds for the TLS handshake */
    int64_t drain_timeout;         /* SIGTERM: seconds requests in flight may still take */
    int64_t request_timeout;       /* seconds of client silence on a connection */

    /* [tls] */
    char tls_client_ca[SK_CONF_PATH_MAX];
    char tls_crl[SK_CONF_PATH_MAX];          /* "" = no CRL configured */
    int64_t tls_session_lifetime;            /* resumption lifetime, seconds */
    int64_t tls_crl_warn_before;             /* warn (log + mail) this long before nextUpdate */
    int64_t tls_crl_check_interval;          /* seconds between checks of the CRL file */

    /* [upstream] */
    char upstream_url[SK_CONF_URL_MAX];      /* http://host:port[/prefix] */
    int upstream_url_set;                    /* given in the file (the gateway requires it) */
    char upstream_host[256];                 /* parsed from url */
    char upstream_port[8];
    char upstream_prefix[512];               /* "" or "/prefix" without trailing slash */
    int64_t upstream_timeout;                /* seconds waiting for the upstream */
    uint32_t upstream_keepalive;             /* idle connections kept to the upstream */

    /* [state] */
    char state_dir[SK_CONF_PATH_MAX];

    /* [store] */
    char store_backend[16];                  /* "lmdb" (default) or "postgresql" */
    char store_url[SK_CONF_URL_MAX];         /* libpq connection string, never with a password */
    char store_password_file[SK_CONF_PATH_MAX]; /* the database password, mode 0600; "" = none */
    int64_t store_outage_grace;              /* seconds a session checked before the store became
                                              * unreachable is still served (0: none); default 60 */
    uint32_t store_pool;                     /* PostgreSQL connections per process (1-64) */
#define SK_CONF_STORE_POOL_DEFAULT 4

    /* [policy] */
    uint32_t lockout_threshold;
    int64_t lockout_duration;
    int64_t idle_timeout;
    int64_t absolute_timeout;
    int64_t dormant_notify_after;
    int64_t dormant_lock_after;
    int64_t dormant_delete_after;
    uint32_t password_min_length;
    uint32_t password_max_length;
    int password_require_upper;
    int password_require_lower;
    int password_require_digit;
    uint32_t burst_threshold;       /* failed logins across all accounts ... */
    int64_t burst_window;           /* ... within this long raise one alarm mail */

    /* [auth] */
    uint32_t auth_workers;          /* argon2 worker threads */
    uint32_t auth_queue;            /* logins waiting beyond that -> 503 */
    uint32_t argon2_memory_kib;     /* RFC 9106 second recommendation: 64 MiB */
    uint32_t argon2_iterations;
    uint32_t argon2_parallelism;
    char auth_totp_key[SK_CONF_PATH_MAX];    /* AES-256 key for TOTP secrets at rest; default <state>/totp.key */

    /* [access] (all lists may be given as repeated keys or comma-separated) */
    sk_policy_cidr access_allow[SK_CONF_MAX_CIDRS];       /* global allowlist; empty = any */
    uint32_t n_access_allow;
    sk_policy_cidr trusted_proxies[SK_CONF_MAX_PROXIES];  /* peers whose X-Forwarded-For counts */
    uint32_t n_trusted_proxies;
    sk_conf_path_rule path_rules[SK_CONF_MAX_PATH_RULES];  /* "path_rule = /admin admin" */
    uint32_t n_path_rules;
    int path_icase;  /* default 1: rules ignore case and trailing dots/spaces of segments (IIS); 0 = exact */

    /* [tenant.NAME] sections; none = single portal at [upstream] url, any host */
    sk_conf_tenant tenants[SK_CONF_MAX_TENANTS];
    uint32_t n_tenants;

    /* [notify] */
    char notify_command[SK_CONF_PATH_MAX];   /* sendmail -t compatible */
    char notify_operators[512];              /* comma-separated addresses for alarms */
    char notify_from[256];                   /* From: of Sekisho's mail, "" = MTA default */
    char notify_operators_level[3][512];     /* operators_warning/_minor/_major; "" = operators */
    char notify_allowed_domains[512];        /* comma-separated; "" = any domain for user addresses */
    char notify_portal_url[SK_CONF_URL_MAX]; /* in account notices; "" = from [tenant.*] host */
    char notify_outbox[SK_CONF_PATH_MAX];    /* gateway mail as files in DIR/new, "" = run command */

    /* [audit] */
    char audit_dir[SK_CONF_PATH_MAX];        /* default <state>/audit */
    char audit_key[SK_CONF_PATH_MAX];        /* default <state>/audit.key, never inside audit_dir */
    int64_t audit_retention;
    char audit_timezone[64];
    int audit_log_requests;
    int64_t audit_epoch;                     /* key epoch: handoff + heartbeat checkpoint */
    char audit_witness[SK_CONF_PATH_MAX];    /* command given each checkpoint on stdin, "" = none */
    char audit_node[64];                     /* this node's name in the log; default: the host name */

    /* [log] */
    int log_level;                           /* enum sk_log_level */
} sk_conf;

void sk_conf_defaults(sk_conf *c);
/* Load and validate path. err gets "FILE:LINE: message" (or "FILE: message"). */
int sk_conf_load(const char *path, sk_conf *out, char *err, size_t errlen) SK_MUST_CHECK;

/* Recipients of operator mail of an alert level (1 warning, 2 minor, 3 major):
 * [notify] operators_LEVEL when set, else [notify] operators ("" = nobody). */
const char *sk_conf_operators_for(const sk_conf *c, int level);
/* 1 if the e-mail address is in [notify] allowed_domains (its domain equal to one
 * of them, case-insensitively, or a subdomain of an entry written ".example.com"),
 * or the list is empty; else 0. */
int sk_conf_email_allowed(const sk_conf *c, const char *email);

/* Print the configuration as an INI file that loads back to the same values,
 * every key with its effective value (defaults included; paths absolute when the
 * file named them relative). 0, or -1 on a write error. */
int sk_conf_dump(const sk_conf *c, FILE *out) SK_MUST_CHECK;

/* ---- checks beyond the syntax (conf_check.c), for `sekisho -t` and start ---- */

/* What the gateway needs that the tools do not: [upstream] url given (unless every
 * portal is a [tenant.NAME] with its own upstream). 0, or -1 with err. */
int sk_conf_check_gateway(const sk_conf *c, char *err, size_t errlen) SK_MUST_CHECK;
/* The files and directories the gateway uses are usable by the user running this
 * check (run it as the service user): state and audit directories writable (or
 * creatable), certificates, keys, CA and CRL readable, existing key files
 * readable. 0, or -1 with "FILE: [section] key PATH: not readable by user NAME
 * (uid N): why". */
int sk_conf_check_access(const sk_conf *c, char *err, size_t errlen) SK_MUST_CHECK;
/* Settings that are allowed but weaker than the standards behind the defaults,
 * one "FILE: warning: ..." line each on out. Returns the number printed. */
int sk_conf_warnings(const sk_conf *c, FILE *out);

#endif
