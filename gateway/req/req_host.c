/* sk_req Host and SNI: syntax, tenant choice, the Host to forward. See sk_req.h. */
#include <string.h>
#include <strings.h>

#include "sk_req.h"

static int host_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
}

static int v6_char(unsigned char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

int sk_req_host_parse(const char *in, char *host, size_t host_cap, char *port, size_t port_cap)
{
    const char *h = in, *end, *p;
    size_t n, pn;
    int (*ok)(unsigned char) = host_char;

    if (in == NULL || host_cap == 0 || port_cap == 0)
        return -1;
    host[0] = port[0] = '\0';
    if (in[0] == '[') {
        h = in + 1;
        end = strchr(h, ']');
        if (end == NULL)
            return -1;
        p = end + 1;
        ok = v6_char;
    } else {
        end = strchr(in, ':');
        if (end == NULL)
            end = in + strlen(in);
        p = end;
    }
    if (*p == ':') {
        p++;
        pn = strlen(p);
        uint64_t v;
        if (pn == 0 || pn > 5 || pn >= port_cap || strspn(p, "0123456789") != pn ||
            sk_parse_u64(p, 1, 65535, &v) != 0)
            return -1;
        memcpy(port, p, pn + 1);
    } else if (*p != '\0') {
        return -1;
    }
    n = (size_t)(end - h);
    if (n > 1 && ok == host_char && h[n - 1] == '.')
        n--; /* "portal.example." is the same name */
    if (n == 0 || n >= host_cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!ok(c) || (ok == host_char && c == '.' && (i == 0 || h[i - 1] == '.')))
            return -1; /* no empty labels */
        host[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
    }
    host[n] = '\0';
    return 0;
}

int sk_req_host_route(const sk_conf_tenant *tenants, size_t n_tenants, const char *host_hdr, unsigned n_host,
                      const char *sni, const char *cert_tenant, sk_req_route *out)
{
    char host[256] = "", port[8] = "", sni_h[256] = "", sni_p[8] = "";
    const char *name;

    memset(out, 0, sizeof *out);
    if (n_host > 1)
        return 400; /* RFC 9112 3.2: more than one Host */
    if (host_hdr != NULL && sk_req_host_parse(host_hdr, host, sizeof host, port, sizeof port) != 0)
        return 400;
    if (sni != NULL && sni[0] != '\0' &&
        (sk_req_host_parse(sni, sni_h, sizeof sni_h, sni_p, sizeof sni_p) != 0 || sni_p[0] != '\0'))
        return 421;
    if (sni_h[0] && host[0] && strcmp(sni_h, host) != 0)
        return 421;
    if (n_tenants == 0)
        return 0;
    name = host[0] ? host : sni_h;
    for (size_t i = 0; i < n_tenants && name[0]; i++) {
        const sk_conf_tenant *t = &tenants[i];
        for (uint32_t j = 0; j < t->n_hosts && j < SK_CONF_MAX_HOSTS; j++) {
            if (strcasecmp(t->hosts[j], name) != 0)
                continue;
            if (cert_tenant == NULL || strcmp(t->name, cert_tenant) != 0)
                return 403; /* a certificate of another tenant */
            out->tenant = i;
            if (sk_snprintf(out->host, sizeof out->host, "%s%s%s", t->hosts[j], port[0] ? ":" : "", port) != 0 ||
                !sk_req_value_clean(out->host, strlen(out->host)))
                return 400;
            return 0;
        }
    }
    return 421;
}
