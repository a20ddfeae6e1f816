/*
 * Opening the store a configuration names ([store] backend, url, password_file).
 * Kept apart from store.c so that the dispatch (and the fuzzer that compiles it)
 * does not depend on the configuration module.
 */
#include <stdio.h>
#include <string.h>

#include "sk_conf.h"
#include "sk_store.h"

static int open_lmdb(const sk_conf *conf, int readonly, sk_store **out, char *err, size_t errcap)
{
    int rc = sk_store_open(conf->state_dir, readonly, out);
    if (rc != SK_STORE_OK && rc != SK_STORE_NOTFOUND)
        (void)snprintf(err, errcap, "cannot open the LMDB store in %s/db (the reason is logged above)",
                       conf->state_dir);
    return rc;
}

/* One row per backend [store] backend may name; open == NULL: not in this build. */
static const struct store_backend {
    const char *name;
    int (*open)(const sk_conf *conf, int readonly, sk_store **out, char *err, size_t errcap);
} backends[] = {
    { "lmdb", open_lmdb },
    { "postgresql", NULL },
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
