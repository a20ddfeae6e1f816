/*
 * libFuzzer target: Host/SNI parsing and tenant choice (issue 13 item 7).
 * Input: "HOST\0SNI\0CERT-TENANT" plus a Host count from the first byte.
 * Invariants: an accepted route's forwarded Host is a configured name (plus the
 * client's numeric port) of a tenant the certificate belongs to, free of CTLs;
 * more than one Host header is always 400.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sk_conf_tenant tenants[2];

static void init(void)
{
    if (tenants[0].n_hosts)
        return;
    memcpy(tenants[0].name, "acme", 5);
    memcpy(tenants[0].hosts[0], "acme.test", 10);
    tenants[0].n_hosts = 1;
    memcpy(tenants[1].name, "globex", 7);
    memcpy(tenants[1].hosts[0], "globex.test", 12);
    memcpy(tenants[1].hosts[1], "portal.globex.test", 19);
    tenants[1].n_hosts = 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[1024], *parts[3] = { NULL, NULL, NULL };
    unsigned n_host;
    sk_req_route r;
    size_t p = 0;

    init();
    if (size < 1 || size >= sizeof buf)
        return 0;
    n_host = data[0] % 3;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    parts[0] = buf;
    for (size_t i = 0; i + 1 < size && p < 2; i++)
        if (buf[i] == '\0')
            parts[++p] = buf + i + 1;
    for (size_t nt = 0; nt <= 2; nt += 2) {
        int st = sk_req_host_route(tenants, nt, n_host ? parts[0] : NULL, n_host, parts[1] ? parts[1] : "",
                                   parts[2] ? parts[2] : "acme", &r);
        if (n_host > 1 && st != 400)
            abort();
        if (st != 0)
            continue;
        if (!sk_req_value_clean(r.host, strlen(r.host)))
            abort();
        if (nt == 0 && r.host[0] != '\0')
            abort();
        if (nt > 0) {
            const sk_conf_tenant *t = &tenants[r.tenant];
            int found = 0;
            if (r.tenant >= nt || strcmp(t->name, parts[2] ? parts[2] : "acme") != 0)
                abort();
            for (uint32_t j = 0; j < t->n_hosts; j++) {
                size_t l = strlen(t->hosts[j]);
                if (strncmp(r.host, t->hosts[j], l) == 0 && (r.host[l] == '\0' || r.host[l] == ':'))
                    found = 1;
            }
            if (!found)
                abort();
        }
    }
    {
        char h[256], port[8];
        if (sk_req_host_parse(buf, h, sizeof h, port, sizeof port) == 0 &&
            (h[0] == '\0' || strspn(port, "0123456789") != strlen(port)))
            abort();
    }
    return 0;
}
