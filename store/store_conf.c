/*
 * Opening the store a configuration names ([store] backend, url, password_file).
 * Kept apart from store.c so that the dispatch (and the fuzzer that compiles it)
 * does not depend on the configuration module.
 */
#include <stdio.h>
#include <string.h>

#include "sk_conf.h"
#include "sk_store.h"
#include "sk_store_backend.h"
#include "store_pg.h"

static int open_lmdb(const sk_conf *conf, int readonly, sk_store **out, char *err, size_t errcap)
{
    int rc = sk_store_open(conf->state_dir, readonly, out);
    if (rc != SK_STORE_OK && rc != SK_STORE_NOTFOUND)
        (void)snprintf(err, errcap, "cannot open the LMDB store in %s/db (the reason is logged above)",
                       conf->state_dir);
    return rc;
}

static int open_pg(const sk_conf *conf, int readonly, sk_store **out, char *err, size_t errcap)
{
    void *impl = NULL;
    int rc = sk_store_pg_open(conf->store_url, conf->store_password_file, readonly, (int)conf->store_pool, &impl,
                              err, errcap);
    if (rc != SK_STORE_OK)
        return rc;
    return sk_store_wrap(&sk_store_pg_ops, impl, out);
}

static int migrate_lmdb(const sk_conf *conf, unsigned *from, unsigned *to, char *err, size_t errcap)
{
    (void)conf;
    (void)err;
    (void)errcap;
    *from = *to = 0; /* LMDB creates and checks its layout itself at open */
    return 0;
}

static int migrate_pg(const sk_conf *conf, unsigned *from, unsigned *to, char *err, size_t errcap)
{
    return sk_store_pg_migrate(conf->store_url, conf->store_password_file, from, to, err, errcap);
}

/* One row per backend [store] backend may name; open == NULL: not in this build. */
static const struct store_backend {
    const char *name;
    int (*open)(const sk_conf *conf, int readonly, sk_store **out, char *err, size_t errcap);
    int (*migrate)(const sk_conf *conf, unsigned *from, unsigned *to, char *err, size_t errcap);
} backends[] = {
    { "lmdb", open_lmdb, migrate_lmdb },
    { "postgresql", open_pg, migrate_pg },
};

static const struct store_backend *find_backend(const sk_conf *conf, char *err, size_t errcap)
{
    for (size_t i = 0; i < SK_ARRAY_LEN(backends); i++) {
        if (strcmp(conf->store_backend, backends[i].name) != 0)
            continue;
        if (backends[i].open == NULL) {
            (void)snprintf(err, errcap, "[store] backend = %s: the %s backend is not built yet (use backend = lmdb)",
                           backends[i].name, backends[i].name);
            return NULL;
        }
        return &backends[i];
    }
    (void)snprintf(err, errcap, "[store] backend = %.32s: unknown backend (must be lmdb or postgresql)",
                   conf->store_backend);
    return NULL;
}

int sk_store_conf_check(const sk_conf *conf, char *err, size_t errcap)
{
    if (errcap > 0)
        err[0] = '\0';
    return find_backend(conf, err, errcap) != NULL ? 0 : -1;
}

int sk_store_open_conf(const sk_conf *conf, int readonly, sk_store **out, char *err, size_t errcap)
{
    const struct store_backend *b;

    *out = NULL;
    if (errcap > 0)
        err[0] = '\0';
    b = find_backend(conf, err, errcap);
    if (b == NULL)
        return -1;
    return b->open(conf, readonly, out, err, errcap);
}

int sk_store_migrate_conf(const sk_conf *conf, unsigned *from, unsigned *to, char *err, size_t errcap)
{
    const struct store_backend *b;

    *from = *to = 0;
    if (errcap > 0)
        err[0] = '\0';
    b = find_backend(conf, err, errcap);
    if (b == NULL)
        return -1;
    return b->migrate(conf, from, to, err, errcap);
}

int sk_store_conf_sandbox_needs(const sk_conf *conf, int *network, int (*add)(const char *path, void *ctx),
                                void *ctx)
{
    *network = 0;
    if (strcmp(conf->store_backend, "postgresql") != 0)
        return 0; /* LMDB: files under [state] dir, which authd has anyway */
    *network = 1;
    return sk_store_pg_client_files(conf->store_url, add, ctx);
}

int sk_store_conf_tcp_ports(const sk_conf *conf, uint16_t *ports, unsigned cap, unsigned *n)
{
    *n = 0;
    if (strcmp(conf->store_backend, "postgresql") != 0)
        return 0;
    return sk_store_pg_tcp_ports(conf->store_url, ports, cap, n);
}
