/* conf_check.c — configuration checks that need the file system or the running
 * user (sekisho -t), and warnings about weak but allowed settings. See sk_conf.h. */
#include "sk_conf.h"
#include "conf_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int sk_conf_check_gateway(const sk_conf *c, char *err, size_t errlen)
{
    if (!c->upstream_url_set && c->n_tenants == 0) {
        (void)snprintf(err, errlen, "%s: [upstream] url is required: the portal behind the gateway, "
                       "http://HOST[:PORT][/PREFIX] (or [tenant.NAME] sections with upstream)", c->file);
        return -1;
    }
    return 0;
}

static void who(char *out, size_t cap)
{
    uid_t uid = geteuid();
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) != 0 || res == NULL ||
        sk_snprintf(out, cap, "%s (uid %u)", pw.pw_name, (unsigned)uid) != 0)
        (void)snprintf(out, cap, "uid %u", (unsigned)uid);
}

static int access_error(const sk_conf *c, const char *what, const char *path, const char *need, int e, char *err,
                        size_t errlen)
{
    char user[300];
    who(user, sizeof user);
    (void)snprintf(err, errlen, "%s: %s %s: not %s by user %s: %s", c->file, what, path, need, user, strerror(e));
    return -1;
}

/* A file the gateway reads. */
static int check_readable(const sk_conf *c, const char *what, const char *path, int must_exist, char *err,
                          size_t errlen)
{
    struct stat st;
    if (path[0] == '\0')
        return 0;
    if (stat(path, &st) != 0) {
        int e = errno;
        if (e == ENOENT && !must_exist)
            return 0;
        if (e == ENOENT) {
            (void)snprintf(err, errlen, "%s: %s %s: does not exist", c->file, what, path);
            return -1;
        }
        return access_error(c, what, path, "readable", e, err, errlen);
    }
    if (!S_ISREG(st.st_mode)) {
        (void)snprintf(err, errlen, "%s: %s %s: not a regular file", c->file, what, path);
        return -1;
    }
    if (faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) != 0)
        return access_error(c, what, path, "readable", errno, err, errlen);
    return 0;
}

/* A directory the gateway writes into, or the nearest existing parent it would
 * create it in. */
static int check_writable_dir(const sk_conf *c, const char *what, const char *path, char *err, size_t errlen)
{
    char probe[SK_CONF_PATH_MAX];
    struct stat st;
    if (sk_strlcpy(probe, sizeof probe, path) != 0) {
        (void)snprintf(err, errlen, "%s: %s: path too long", c->file, what);
        return -1;
    }
    for (;;) {
        char *slash;
        if (stat(probe, &st) == 0)
            break;
        if (errno != ENOENT)
            return access_error(c, what, probe, "usable", errno, err, errlen);
        slash = strrchr(probe, '/');
        if (slash == NULL || slash == probe) {
            if (sk_strlcpy(probe, sizeof probe, slash == probe ? "/" : ".") != 0)
                return -1;
            if (stat(probe, &st) != 0)
                return access_error(c, what, probe, "usable", errno, err, errlen);
            break;
        }
        *slash = '\0';
    }
    if (!S_ISDIR(st.st_mode)) {
        (void)snprintf(err, errlen, "%s: %s %s: not a directory", c->file, what, probe);
        return -1;
    }
    if (faccessat(AT_FDCWD, probe, R_OK | W_OK | X_OK, AT_EACCESS) != 0) {
        char what2[160];
        if (strcmp(probe, path) == 0)
            return access_error(c, what, path, "writable", errno, err, errlen);
        (void)snprintf(what2, sizeof what2, "%s %s (to be created in)", what, path);
        return access_error(c, what2, probe, "writable", errno, err, errlen);
    }
    return 0;
}

/* A secret the gateway reads: readable, and by nobody but its owner. */
static int check_secret(const sk_conf *c, const char *what, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (path[0] == '\0')
        return 0;
    if (check_readable(c, what, path, 1, err, errlen) != 0)
        return -1;
    if (stat(path, &st) != 0)
        return access_error(c, what, path, "readable", errno, err, errlen);
    if ((st.st_mode & 077) != 0) {
        (void)snprintf(err, errlen, "%s: %s %s: accessible to group or others (mode %03o); refusing it (chmod 600)",
                       c->file, what, path, (unsigned)(st.st_mode & 0777));
        return -1;
    }
    return 0;
}

int sk_conf_check_access(const sk_conf *c, char *err, size_t errlen)
{
    if (check_writable_dir(c, "[state] dir", c->state_dir, err, errlen) != 0 ||
        check_writable_dir(c, "[audit] dir", c->audit_dir, err, errlen) != 0 ||
        (c->notify_outbox[0] != '\0' && check_writable_dir(c, "[notify] outbox", c->notify_outbox, err, errlen) != 0) ||
        check_readable(c, "[listen] cert", c->listen_cert, 1, err, errlen) != 0 ||
        check_readable(c, "[listen] key", c->listen_key, 1, err, errlen) != 0 ||
        check_readable(c, "[tls] client_ca", c->tls_client_ca, 1, err, errlen) != 0 ||
        check_readable(c, "[tls] crl", c->tls_crl, 1, err, errlen) != 0 ||
        check_readable(c, "[auth] totp_key", c->auth_totp_key, 0, err, errlen) != 0 ||
        check_readable(c, "[audit] key", c->audit_key, 0, err, errlen) != 0 ||
        check_secret(c, "[store] password_file", c->store_password_file, err, errlen) != 0)
        return -1;
    return 0;
}

int sk_conf_warnings(const sk_conf *c, FILE *out)
{
    int n = 0;
    if (c->password_max_length < 64) {
        fprintf(out, "%s: warning: [policy] password_max_length = %u is below 64, the maximum NIST SP 800-63B "
                     "(5.1.1.2) says verifiers should permit at least; long passphrases will be refused\n",
                c->file, (unsigned)c->password_max_length);
        n++;
    }
    if (strcmp(c->store_backend, "lmdb") == 0 &&
        (c->store_url[0] != '\0' || c->store_password_file[0] != '\0' || c->store_pool != SK_CONF_STORE_POOL_DEFAULT)) {
        fprintf(out, "%s: warning: [store] url, password_file and pool are not used with backend = lmdb\n", c->file);
        n++;
    }
    if (c->listen_workers != 0 && c->listen_processes > c->listen_workers) {
        fprintf(out, "%s: warning: [listen] processes = %u is more than workers = %u: each process runs one "
                     "worker thread (%u in all)\n",
                c->file, (unsigned)c->listen_processes, (unsigned)c->listen_workers, (unsigned)c->listen_processes);
        n++;
    }
    return n;
}

const char *sk_conf_operators_for(const sk_conf *c, int level)
{
    if (level >= 1 && level <= 3 && c->notify_operators_level[level - 1][0] != '\0')
        return c->notify_operators_level[level - 1];
    return c->notify_operators;
}

int sk_conf_email_allowed(const sk_conf *c, const char *email)
{
    const char *at = strrchr(email, '@'), *p = c->notify_allowed_domains;
    size_t dl;
    if (p[0] == '\0')
        return 1;
    if (at == NULL)
        return 0;
    at++;
    dl = strlen(at);
    while (*p) {
        size_t n;
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        n = strcspn(p, ", \t");
        if (n == 0)
            break;
        if (p[0] == '.') {
            /* ".example.com": any subdomain (not example.com itself) */
            if (dl > n && strncasecmp(at + dl - n, p, n) == 0)
                return 1;
        } else if (dl == n && strncasecmp(at, p, n) == 0) {
            return 1;
        }
        p += n;
    }
    return 0;
}

/* ---- value checks used by the parser (conf_internal.h) ---- */

/* A zone the tz database knows (the file exists and is TZif), so that a typo such
 * as Asia/Tokio does not silently show audit times in UTC. */
int sk_conf_valid_timezone(const char *tz)
{
    const char *dir = getenv("TZDIR");
    char path[SK_CONF_PATH_MAX + 80], magic[4];
    size_t n = strlen(tz);
    FILE *f;
    int ok;

    if (n == 0 || n > 63 || tz[0] == '/' || strstr(tz, "..") != NULL)
        return 0;
    for (const char *c = tz; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              strchr("/_+-", *c)))
            return 0;
    if (dir == NULL || dir[0] == '\0' || strlen(dir) > SK_CONF_PATH_MAX)
        dir = "/usr/share/zoneinfo";
    if (sk_snprintf(path, sizeof path, "%s/%s", dir, tz) != 0 || (f = fopen(path, "re")) == NULL)
        return 0;
    ok = fread(magic, 1, sizeof magic, f) == sizeof magic && memcmp(magic, "TZif", 4) == 0;
    fclose(f);
    return ok;
}

static int valid_port(const char *s)
{
    uint64_t v;
    return sk_parse_u64(s, 1, 65535, &v) == 0;
}

/* "127.0.0.1:8443", "[::1]:8443", "portal.example:8443", ":8443". */
int sk_conf_valid_listen_address(const char *a)
{
    char host[256];
    const char *colon;
    size_t n;

    if (a[0] == '[') {
        const char *rb = strchr(a, ']');
        struct in6_addr a6;
        n = rb != NULL ? (size_t)(rb - a - 1) : 0;
        if (rb == NULL || rb[1] != ':' || n == 0 || n >= sizeof host)
            return 0;
        memcpy(host, a + 1, n);
        host[n] = '\0';
        return inet_pton(AF_INET6, host, &a6) == 1 && valid_port(rb + 2);
    }
    colon = strchr(a, ':');
    if (colon == NULL || strchr(colon + 1, ':') != NULL || !valid_port(colon + 1))
        return 0;
    n = (size_t)(colon - a);
    if (n >= sizeof host)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= 'A' && a[i] <= 'Z') || (a[i] >= '0' && a[i] <= '9') ||
              a[i] == '.' || a[i] == '-'))
            return 0;
    return 1;
}

/* 60 -> "60s", 1800 -> "30m", 43200 -> "12h", 86400 -> "1d": how the ranges are said. */
void sk_conf_fmt_duration(uint64_t s, char *out, size_t cap)
{
    int r;
    if (s != 0 && s % 86400 == 0)
        r = sk_snprintf(out, cap, "%llud", (unsigned long long)(s / 86400));
    else if (s != 0 && s % 3600 == 0)
        r = sk_snprintf(out, cap, "%lluh", (unsigned long long)(s / 3600));
    else if (s >= 600 && s % 60 == 0)
        r = sk_snprintf(out, cap, "%llum", (unsigned long long)(s / 60));
    else
        r = sk_snprintf(out, cap, "%llus", (unsigned long long)s);
    if (r != 0 && cap > 0)
        out[0] = '\0';
}

/* ---- [store] url: a libpq connection string without a password ---- */

#define STORE_URL_NO_PASSWORD "must not hold a password: put it in [store] password_file (mode 0600)"

static int hexval(char h)
{
    if (h >= '0' && h <= '9')
        return h - '0';
    h = (char)(h | 0x20);
    return h >= 'a' && h <= 'f' ? h - 'a' + 10 : -1;
}

/* A URI query or keyword named "password" (libpq decodes %XX in URI keys). */
static int is_password_key(const char *k, size_t n, int uri)
{
    static const char want[] = "password";
    size_t j = 0;
    for (size_t i = 0; i < n; i++, j++) {
        int c = (unsigned char)k[i];
        if (uri && c == '%' && i + 2 < n && hexval(k[i + 1]) >= 0 && hexval(k[i + 2]) >= 0) {
            c = hexval(k[i + 1]) * 16 + hexval(k[i + 2]);
            i += 2;
        }
        if (j >= sizeof want - 1 || (c | 0x20) != want[j])
            return 0;
    }
    return j == sizeof want - 1;
}

static int store_uri_ok(const char *url, char *why, size_t whycap)
{
    const char *auth = strstr(url, "://") + 3, *end = auth + strcspn(auth, "/?"), *at = NULL, *q;
    for (const char *c = auth; c < end; c++)
        if (*c == '@')
            at = c;
    if (at != NULL && memchr(auth, ':', (size_t)(at - auth)) != NULL) {
        (void)snprintf(why, whycap, "%s (not as user:password@ in the URI)", STORE_URL_NO_PASSWORD);
        return 0;
    }
    q = strchr(end, '?');
    while (q != NULL) {
        const char *k = q + 1;
        size_t n = strcspn(k, "=&");
        if (is_password_key(k, n, 1)) {
            (void)snprintf(why, whycap, "%s (not as ?password=)", STORE_URL_NO_PASSWORD);
            return 0;
        }
        q = strchr(k, '&');
    }
    return 1;
}

/* keyword = value pairs, values bare or 'quoted' with \-escapes (libpq's syntax). */
static int store_kv_ok(const char *s, char *why, size_t whycap)
{
    int pairs = 0;
    for (;;) {
        const char *k;
        size_t n;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0')
            break;
        k = s;
        n = strcspn(s, "= \t");
        s += n;
        while (*s == ' ' || *s == '\t')
            s++;
        if (n == 0 || *s != '=')
            goto bad;
        if (is_password_key(k, n, 0)) {
            (void)snprintf(why, whycap, "%s (not as password=)", STORE_URL_NO_PASSWORD);
            return 0;
        }
        s++;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\'') {
            for (s++; *s != '\''; s++) {
                if (*s == '\\' && s[1] != '\0')
                    s++;
                else if (*s == '\0')
                    goto bad;
            }
            s++;
        } else {
            for (; *s != '\0' && *s != ' ' && *s != '\t'; s++)
                if (*s == '\\' && s[1] != '\0')
                    s++;
        }
        pairs++;
    }
    if (pairs > 0)
        return 1;
bad:
    (void)snprintf(why, whycap, "must be a libpq connection string: postgresql://USER@HOST[:PORT]/DB[?sslmode=verify-full] "
                                "or keyword=value pairs (host=... dbname=... user=...)");
    return 0;
}

int sk_conf_valid_store_url(const char *url, char *why, size_t whycap)
{
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            (void)snprintf(why, whycap, "must not contain control characters");
            return 0;
        }
    if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
        return store_uri_ok(url, why, whycap);
    return store_kv_ok(url, why, whycap);
}
