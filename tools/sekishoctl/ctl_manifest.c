/* ctl_manifest.c — strict parse of a backup MANIFEST file line. See ctl_manifest.h. */
#include "ctl_manifest.h"

#include <string.h>

#include "sk_util.h"

static int valid_rel(const char *p, size_t n)
{
    size_t start = 0;
    if (n == 0 || n > CTL_MANIFEST_PATH_MAX || p[0] == '/' || p[n - 1] == '/')
        return 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && !((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') ||
                       p[i] == '.' || p[i] == '_' || p[i] == '-' || p[i] == '/'))
            return 0;
        if (i == n || p[i] == '/') {
            size_t len = i - start;
            if (len == 0 || (len == 1 && p[start] == '.') || (len == 2 && p[start] == '.' && p[start + 1] == '.'))
                return 0;
            start = i + 1;
        }
    }
    return 1;
}

int ctl_manifest_line(const char *line, char hex[65], long long *size, char rel[CTL_MANIFEST_PATH_MAX + 1])
{
    const char *p = line, *sp;
    char num[20];
    uint64_t v;
    size_t n;

    if (strncmp(p, "sha256 ", 7) != 0)
        return -1;
    p += 7;
    for (n = 0; n < 64; n++)
        if (!((p[n] >= '0' && p[n] <= '9') || (p[n] >= 'a' && p[n] <= 'f')))
            return -1;
    if (p[64] != ' ')
        return -1;
    memcpy(hex, p, 64);
    hex[64] = '\0';
    p += 65;
    sp = strchr(p, ' ');
    if (sp == NULL || sp == p || (size_t)(sp - p) >= sizeof num)
        return -1;
    memcpy(num, p, (size_t)(sp - p));
    num[sp - p] = '\0';
    if (sk_parse_u64(num, 0, (uint64_t)1 << 50, &v) != 0)
        return -1;
    p = sp + 1;
    n = strlen(p);
    if (!valid_rel(p, n))
        return -1;
    memcpy(rel, p, n + 1);
    *size = (long long)v;
    return 0;
}
