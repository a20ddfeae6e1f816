/* audit_common.c — hashing, time stamps, segment names, directory listing. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
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

int sk_audit_valid_node(const char *s)
{
    size_t n;
    if (!s)
        return 0;
    n = strlen(s);
    return n >= 1 && n <= SK_AUDIT_NODE_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* "YYYYMMDD" (8 bytes at s) as a day number, -1 if not a valid date. */
static int64_t parse_day(const char *s)
{
    int y, mo, d;
    struct tm tm;
    time_t t;
    if (digits(s, 4, &y) || digits(s + 4, 2, &mo) || digits(s + 6, 2, &d))
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

int sk_audit_segment_parse(const char *name, int64_t *day, char node[SK_AUDIT_NODE_MAX + 1])
{
    /* audit-YYYYMMDD.jsonl (format 2) or audit-<node>-YYYYMMDD.jsonl; the node
     * may itself contain '-', so the date is taken from the end. */
    size_t n = name ? strlen(name) : 0, nl;
    int64_t dn;
    if (n < 20 || memcmp(name, "audit-", 6) != 0 || memcmp(name + n - 6, ".jsonl", 6) != 0)
        return -1;
    dn = parse_day(name + n - 14);
    if (dn < 0)
        return -1;
    if (n == 20) {
        if (node)
            node[0] = '\0';
    } else {
        char tmp[SK_AUDIT_NODE_MAX + 1];
        if (name[n - 15] != '-' || n - 21 > SK_AUDIT_NODE_MAX)
            return -1;
        nl = n - 21;
        memcpy(tmp, name + 6, nl);
        tmp[nl] = '\0';
        if (!sk_audit_valid_node(tmp))
            return -1;
        if (node)
            memcpy(node, tmp, nl + 1);
    }
    if (day)
        *day = dn;
    return 0;
}

int64_t audit_segment_day(const char *name)
{
    int64_t day;
    return sk_audit_segment_parse(name, &day, NULL) == 0 ? day : -1;
}

int sk_audit_is_segment_name(const char *name)
{
    return audit_segment_day(name) >= 0;
}

int sk_audit_segment_cmp(const char *a, const char *b)
{
    int64_t da = audit_segment_day(a), db = audit_segment_day(b);
    if (da != db)
        return da < db ? -1 : 1;
    return strcmp(a, b);
}

int audit_segment_name(int64_t day, const char *node, char *out, size_t cap)
{
    struct tm tm;
    time_t t = (time_t)(day * 86400);
    if (day < 0 || !gmtime_r(&t, &tm))
        return -1;
    if (node && *node)
        return sk_snprintf(out, cap, "audit-%s-%04d%02d%02d.jsonl", node, tm.tm_year + 1900,
                           tm.tm_mon + 1, tm.tm_mday);
    return sk_snprintf(out, cap, "audit-%04d%02d%02d.jsonl", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday);
}

static int cmp_names(const void *a, const void *b)
{
    return sk_audit_segment_cmp(*(char *const *)a, *(char *const *)b);
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

int audit_fsync_dir_of(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int fd, rc;
    if (!slash) {
        if (sk_strlcpy(dir, sizeof(dir), ".") != 0)
            return -1;
    } else if (slash == path) {
        if (sk_strlcpy(dir, sizeof(dir), "/") != 0)
            return -1;
    } else {
        size_t l = (size_t)(slash - path);
        if (l >= sizeof(dir))
            return -1;
        memcpy(dir, path, l);
        dir[l] = '\0';
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

int audit_line_head(const char *l, size_t n, uint64_t *seq, const char *ev, int *is_ev)
{
    static const char pre[] = "{\"seq\":";
    size_t i = sizeof(pre) - 1, el = strlen(ev);
    uint64_t v = 0;
    if (n < i || memcmp(l, pre, i) != 0)
        return -1;
    if (i >= n || l[i] < '1' || l[i] > '9')
        return -1;
    while (i < n && l[i] >= '0' && l[i] <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(l[i++] - '0');
    }
    /* ,"ts":"<24>","ev":" */
    if (n < i + 7 + 24 + 8 || memcmp(l + i, ",\"ts\":\"", 7) != 0 ||
        memcmp(l + i + 31, "\",\"ev\":\"", 8) != 0)
        return -1;
    i += 39;
    *seq = v;
    *is_ev = n >= i + el + 1 && memcmp(l + i, ev, el) == 0 && l[i + el] == '"';
    return 0;
}

#define NOTE_SIG_PREFIX "\xe2\x80\x94 sekisho-audit "

int audit_note_format(const audit_note *n, char **out)
{
    char buf[1024];
    *out = NULL;
    if (sk_snprintf(buf, sizeof(buf),
                    "sekisho-audit/%s\n%llu\n%s\ntime %s\nepoch %llu %s\n\n" NOTE_SIG_PREFIX "%s\n",
                    n->origin, (unsigned long long)n->seq, n->h, n->ts,
                    (unsigned long long)n->epoch, n->keyid, n->sig) != 0)
        return -1;
    *out = strdup(buf);
    return *out ? 0 : -1;
}

/* Next line of text (without '\n') into out; -1 when missing or too long. */
static int note_line(const char **p, const char *end, char *out, size_t cap)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t l;
    if (!nl)
        return -1;
    l = (size_t)(nl - *p);
    if (l >= cap)
        return -1;
    memcpy(out, *p, l);
    out[l] = '\0';
    *p = nl + 1;
    return 0;
}

static int hex64(const char *s)
{
    if (strlen(s) != SK_AUDIT_HASH_HEX)
        return 0;
    for (size_t i = 0; i < SK_AUDIT_HASH_HEX; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int audit_note_parse(const char *text, size_t len, audit_note *n)
{
    const char *p = text, *end = text + len;
    char l[256];
    uint64_t v;
    memset(n, 0, sizeof(*n));
    if (note_line(&p, end, l, sizeof(l)) != 0 || strncmp(l, "sekisho-audit/", 14) != 0 ||
        !hex64(l + 14))
        return -1;
    memcpy(n->origin, l + 14, SK_AUDIT_HASH_HEX + 1);
    if (note_line(&p, end, l, sizeof(l)) != 0 || sk_parse_u64(l, 1, UINT64_MAX / 2, &v) != 0)
        return -1;
    n->seq = v;
    if (note_line(&p, end, l, sizeof(l)) != 0 || !hex64(l))
        return -1;
    memcpy(n->h, l, SK_AUDIT_HASH_HEX + 1);
    if (note_line(&p, end, l, sizeof(l)) != 0 || strncmp(l, "time ", 5) != 0 ||
        sk_strlcpy(n->ts, sizeof(n->ts), l + 5) != 0)
        return -1;
    if (note_line(&p, end, l, sizeof(l)) != 0 || strncmp(l, "epoch ", 6) != 0)
        return -1;
    {
        char *sp = strchr(l + 6, ' ');
        if (!sp)
            return -1;
        *sp = '\0';
        if (sk_parse_u64(l + 6, 0, UINT64_MAX / 2, &v) != 0 || !hex64(sp + 1))
            return -1;
        n->epoch = v;
        memcpy(n->keyid, sp + 1, SK_AUDIT_HASH_HEX + 1);
    }
    if (note_line(&p, end, l, sizeof(l)) != 0 || l[0] != '\0')
        return -1;
    /* Signature lines: ours is required; others (a witness's cosignature) are kept
     * by the witness and ignored here. */
    while (p < end) {
        if (note_line(&p, end, l, sizeof(l)) != 0)
            return -1;
        if (strncmp(l, NOTE_SIG_PREFIX, sizeof(NOTE_SIG_PREFIX) - 1) == 0 &&
            strlen(l) == sizeof(NOTE_SIG_PREFIX) - 1 + AUDIT_SIG_B64_LEN)
            memcpy(n->sig, l + sizeof(NOTE_SIG_PREFIX) - 1, AUDIT_SIG_B64_LEN + 1);
    }
    return n->sig[0] ? 0 : -1;
}

int audit_note_of(const char *line, const sk_audit_entry *e, audit_note *n)
{
    memset(n, 0, sizeof(*n));
    if (!e->has_sig || !e->has_epoch || !e->origin[0])
        return -1;
    memcpy(n->origin, e->origin, sizeof(n->origin));
    n->seq = e->seq;
    memcpy(n->h, e->hash, sizeof(n->h));
    if (sk_strlcpy(n->ts, sizeof(n->ts), e->ts) != 0)
        return -1;
    n->epoch = e->epoch;
    memcpy(n->keyid, e->keyid, sizeof(n->keyid));
    memcpy(n->sig, line + e->signed_len + 8, AUDIT_SIG_B64_LEN);
    n->sig[AUDIT_SIG_B64_LEN] = '\0';
    return 0;
}
