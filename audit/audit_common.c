/* audit_common.c — hashing, time stamps, segment names, directory listing. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "audit_int.h"

void audit_err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (!err || cap == 0)
        return;
    va_start(ap, fmt);
    /* A cut error message is still better than none, so plain vsnprintf. */
    (void)vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

int audit_hash_hex(const char *l, size_t n, char out[SK_AUDIT_HASH_HEX + 1])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    unsigned mdlen = 0;
    int rc = -1;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c)
        goto out;
    if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(c, AUDIT_HASH_DOMAIN, sizeof(AUDIT_HASH_DOMAIN) - 1) != 1 ||
        EVP_DigestUpdate(c, l, n) != 1 || EVP_DigestFinal_ex(c, md, &mdlen) != 1 ||
        mdlen != sizeof(md))
        goto out;
    sk_hex_encode(md, sizeof(md), out);
    rc = 0;
out:
    EVP_MD_CTX_free(c);
    return rc;
}

int audit_keyid(const uint8_t pub[32], char out[SK_AUDIT_HASH_HEX + 1])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    if (!SHA256(pub, 32, md))
        return -1;
    sk_hex_encode(md, sizeof(md), out);
    return 0;
}

int audit_format_ts(int64_t ms, char out[32])
{
    struct tm tm;
    time_t t;
    if (ms < 0)
        return -1;
    t = (time_t)(ms / 1000);
    if (!gmtime_r(&t, &tm))
        return -1;
    return sk_snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                       (int)(ms % 1000));
}

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int audit_parse_ts(const char *s, int64_t *ms)
{
    /* Strict: exactly the writer's format, so two spellings of one instant
     * cannot both exist in a verified log. */
    int y, mo, d, h, mi, se, f;
    struct tm tm;
    time_t t;
    if (!s || strlen(s) != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != '.' || s[23] != 'Z')
        return -1;
    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se) ||
        digits(s + 20, 3, &f))
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *ms = (int64_t)t * 1000 + f;
    return 0;
}

int64_t audit_segment_day(const char *name)
{
    int y, mo, d;
    struct tm tm;
    time_t t;
    /* audit-YYYYMMDD.jsonl */
    if (!name || strlen(name) != 20 || memcmp(name, "audit-", 6) != 0 ||
        memcmp(name + 14, ".jsonl", 6) != 0)
        return -1;
    if (digits(name + 6, 4, &y) || digits(name + 10, 2, &mo) || digits(name + 12, 2, &d))
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != d) /* reject 20250231 */
        return -1;
    return (int64_t)t / 86400;
}

int sk_audit_is_segment_name(const char *name)
{
    return audit_segment_day(name) >= 0;
}

int audit_segment_name(int64_t day, char out[32])
{
    struct tm tm;
    time_t t = (time_t)(day * 86400);
    if (day < 0 || !gmtime_r(&t, &tm))
        return -1;
    return sk_snprintf(out, 32, "audit-%04d%02d%02d.jsonl", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void audit_free_list(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int audit_list_segments(const char *dir, char ***names, size_t *n)
{
    DIR *d = NULL;
    struct dirent *de;
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = -1;
    *names = NULL;
    *n = 0;
    d = opendir(dir);
    if (!d)
        goto out;
    while ((errno = 0, de = readdir(d)) != NULL) {
        if (!sk_audit_is_segment_name(de->d_name))
            continue;
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nv = realloc(v, ncap * sizeof(*nv));
            if (!nv)
                goto out;
            v = nv;
            cap = ncap;
        }
        v[cnt] = strdup(de->d_name);
        if (!v[cnt])
            goto out;
        cnt++;
    }
    if (errno != 0)
        goto out;
    if (cnt > 1)
        qsort(v, cnt, sizeof(*v), cmp_names);
    *names = v;
    *n = cnt;
    v = NULL;
    rc = 0;
out:
    if (v)
        audit_free_list(v, cnt);
    if (d)
        closedir(d);
    return rc;
}

int audit_path_inside(const char *path, const char *dir)
{
    char rdir[PATH_MAX], rparent[PATH_MAX], parent[PATH_MAX];
    const char *slash;
    size_t dl;
    if (!realpath(dir, rdir))
        return 0;
    dl = strlen(rdir);
    if (realpath(path, rparent)) { /* existing file, symlinks resolved */
        if (dl == 1)
            return 1;
        return strncmp(rparent, rdir, dl) == 0 && rparent[dl] == '/';
    }
    /* The key file may not exist yet: resolve its parent directory. */
    slash = strrchr(path, '/');
    if (!slash) {
        if (sk_strlcpy(parent, sizeof(parent), ".") != 0)
            return 1; /* cannot decide: be safe */
    } else if (slash == path) {
        if (sk_strlcpy(parent, sizeof(parent), "/") != 0)
            return 1;
    } else {
        size_t pl = (size_t)(slash - path);
        if (pl >= sizeof(parent))
            return 1;
        memcpy(parent, path, pl);
        parent[pl] = '\0';
    }
    if (!realpath(parent, rparent))
        return 0; /* parent does not exist: cannot be inside an existing dir */
    if (strcmp(rparent, rdir) == 0)
        return 1;
    if (dl == 1) /* audit dir "/" contains everything */
        return 1;
    return strncmp(rparent, rdir, dl) == 0 && rparent[dl] == '/';
}
