/*
 * argon2id password hashing (RFC 9106) on top of libargon2.
 */
#include <argon2.h>
#include <string.h>

#include "sk_auth.h"

/* Upper bounds on the cost fields of a stored hash: a corrupted or planted record
 * must not make a verify allocate gigabytes or spin for minutes. */
#define MAX_ITERATIONS 1024u
#define MAX_PARALLELISM 64u

void sk_auth_params_default(sk_auth_params *p)
{
    p->memory_kib = 65536;
    p->iterations = 3;
    p->parallelism = 1;
}

int sk_auth_params_check(const sk_auth_params *p)
{
    if (p->parallelism < 1 || p->parallelism > MAX_PARALLELISM)
        return -1;
    if (p->iterations < 1 || p->iterations > MAX_ITERATIONS)
        return -1;
    /* argon2 needs 8 KiB per lane at least. */
    if (p->memory_kib < 8u * p->parallelism || p->memory_kib > SK_AUTH_MEMORY_MAX_KIB)
        return -1;
    return 0;
}

int sk_auth_hash_password(const sk_auth_params *p, const void *pw, size_t len, char *out,
                          size_t cap)
{
    uint8_t salt[SK_AUTH_SALT_LEN];
    int rc, ret = -1;

    if (cap > 0)
        out[0] = '\0';
    if (sk_auth_params_check(p) != 0 || len == 0 || len > SK_AUTH_PASSWORD_MAX || cap == 0)
        goto out;
    if (sk_random(salt, sizeof salt) != 0)
        goto out;
    rc = argon2id_hash_encoded(p->iterations, p->memory_kib, p->parallelism, pw, len, salt,
                               sizeof salt, SK_AUTH_HASH_LEN, out, cap);
    if (rc != ARGON2_OK) {
        sk_log(SK_LOG_ERR, "auth: argon2id hash: %s", argon2_error_message(rc));
        out[0] = '\0';
        goto out;
    }
    ret = 0;
out:
    sk_wipe(salt, sizeof salt);
    return ret;
}

/* Read decimal digits at *s up to a non-digit; -1 on none or overflow. */
static int parse_field(const char **s, const char *name, uint32_t *v)
{
    size_t nl = strlen(name);
    const char *p = *s;
    uint64_t acc = 0;
    int digits = 0;

    if (strncmp(p, name, nl) != 0)
        return -1;
    p += nl;
    while (*p >= '0' && *p <= '9') {
        acc = acc * 10 + (uint64_t)(*p - '0');
        if (++digits > 10 || acc > UINT32_MAX)
            return -1;
        p++;
    }
    if (digits == 0)
        return -1;
    *v = (uint32_t)acc;
    *s = p;
    return 0;
}

/* Validate the parameters of an encoded argon2id hash before libargon2 acts on
 * them: "$argon2id$v=19$m=M,t=T,p=P$...". */
static int check_encoded(const char *enc)
{
    static const char prefix[] = "$argon2id$";
    const char *s = enc;
    uint32_t v = 0;
    sk_auth_params p;

    if (strncmp(s, prefix, sizeof prefix - 1) != 0)
        return -1;
    s += sizeof prefix - 1;
    if (strncmp(s, "v=", 2) == 0) {
        if (parse_field(&s, "v=", &v) != 0 || *s != '$')
            return -1;
        s++;
    }
    if (parse_field(&s, "m=", &p.memory_kib) != 0 || *s++ != ',' ||
        parse_field(&s, "t=", &p.iterations) != 0 || *s++ != ',' ||
        parse_field(&s, "p=", &p.parallelism) != 0 || *s != '$')
        return -1;
    return sk_auth_params_check(&p);
}

int sk_auth_verify_password(const char *encoded, const void *pw, size_t len)
{
    if (len > SK_AUTH_PASSWORD_MAX)
        return -1;
    if (check_encoded(encoded) != 0) {
        sk_log(SK_LOG_ERR, "auth: stored password hash is malformed or out of range");
        return -1;
    }
    int rc = argon2id_verify(encoded, pw, len);
    if (rc == ARGON2_OK)
        return 1;
    if (rc == ARGON2_VERIFY_MISMATCH)
        return 0;
    sk_log(SK_LOG_ERR, "auth: argon2id verify: %s", argon2_error_message(rc));
    return -1;
}
