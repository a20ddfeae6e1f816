/*
 * The PostgreSQL backend of the store: opening, closing and the ops table.
 * How it meets the contracts of sk_store.h is told in store_pg.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg_int.h"

/* Refuse a url that is not libpq's syntax or that carries a password: the
 * password belongs in [store] password_file only. */
static int check_url(const char *url, char *err, size_t errcap)
{
    char *msg = NULL, m[200];
    PQconninfoOption *opts = PQconninfoParse(url, &msg);
    int ret = 0;

    if (opts == NULL) {
        sk_pg_conn_msg(NULL, m, sizeof m);
        if (msg != NULL) {
            size_t n = strcspn(msg, "\r\n");
            (void)snprintf(m, sizeof m, "%.*s", (int)(n < 150 ? n : 150), msg);
        }
        (void)snprintf(err, errcap, "[store] url is not a libpq connection string: %s", m);
        PQfreemem(msg);
        return -1;
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL) {
            (void)snprintf(err, errcap, "[store] url must not hold a password: put it in [store] password_file "
                                        "(mode 0600)");
            ret = -1;
        }
    PQconninfoFree(opts);
    return ret;
}

void sk_pg_handle_free(pg_store *s)
{
    if (s == NULL)
        return;
    sk_pg_notify_stop(s);
    for (int i = 0; s->slots != NULL && i < s->pool_size; i++)
        PQfinish(s->slots[i].conn);
    free(s->slots);
    sk_wipe(s->password, sizeof s->password);
    free(s->url);
    (void)pthread_mutex_destroy(&s->mu);
    (void)pthread_cond_destroy(&s->cv);
    (void)pthread_mutex_destroy(&s->log_mu);
    (void)pthread_mutex_destroy(&s->lmu);
    free(s);
}

int sk_pg_handle_new(const char *url, const char *password_file, int readonly, int pool_size, pg_store **out,
                     char *err, size_t errcap)
{
    pg_store *s = NULL;
    size_t len = 0;

    *out = NULL;
    if (!PQisthreadsafe()) {
        (void)snprintf(err, errcap, "this libpq is not thread-safe");
        return -1;
    }
    if (url == NULL || url[0] == '\0') {
        (void)snprintf(err, errcap, "[store] url is empty (a libpq connection string is required)");
        return -1;
    }
    if (check_url(url, err, errcap) != 0)
        return -1;
    if (pool_size <= 0)
        pool_size = SK_STORE_PG_POOL_DEFAULT;
    if (pool_size > SK_STORE_PG_POOL_MAX)
        pool_size = SK_STORE_PG_POOL_MAX;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        goto oom;
    s->stop_fd = -1;
    if (pthread_mutex_init(&s->mu, NULL) != 0 || pthread_cond_init(&s->cv, NULL) != 0 ||
        pthread_mutex_init(&s->log_mu, NULL) != 0 || pthread_mutex_init(&s->lmu, NULL) != 0) {
        free(s);
        s = NULL;
        goto oom;
    }
    s->readonly = readonly;
    s->pool_size = pool_size;
    s->slots = calloc((size_t)pool_size, sizeof *s->slots);
    s->url = strdup(url);
    if (s->slots == NULL || s->url == NULL)
        goto oom;
    if (password_file != NULL && password_file[0] != '\0') {
        if (sk_read_secret_file(password_file, s->password, sizeof s->password, &len) != 0) {
            (void)snprintf(err, errcap, "cannot read [store] password_file %s (a regular file, its first line "
                                        "the password, at most %d bytes)", password_file, PG_PASSWORD_MAX - 1);
            goto fail;
        }
        s->has_password = len > 0;
    }
    if (sk_pg_notify_init(s) != 0) {
        (void)snprintf(err, errcap, "cannot set up change notification (the reason is logged)");
        goto fail;
    }
    *out = s;
    return 0;
oom:
    (void)snprintf(err, errcap, "out of memory");
fail:
    sk_pg_handle_free(s);
    return -1;
}

static void pg_close(void *impl)
{
    sk_pg_handle_free(impl);
}

int sk_store_pg_open(const char *url, const char *password_file, int readonly, int pool_size, void **impl,
                     char *err, size_t errcap)
{
    pg_store *s = NULL;
    unsigned v = 0;
    int ret = -1;

    *impl = NULL;
    if (errcap > 0)
        err[0] = '\0';
    if (sk_pg_handle_new(url, password_file, readonly, pool_size, &s, err, errcap) != 0)
        goto out;
    /* The first connection is made now, so that a wrong url, password or
     * schema is a clear error at start rather than at the first request. */
    s->slots[0].conn = sk_pg_connect(s, "open", err, errcap);
    if (s->slots[0].conn == NULL)
        goto out;
    if (sk_pg_schema_version(s, s->slots[0].conn, &v) != 0) {
        (void)snprintf(err, errcap, "cannot read the schema version (the reason is logged)");
        goto out;
    }
    if (v == 0 && readonly) {
        ret = SK_STORE_NOTFOUND;
        goto out;
    }
    if (v == 0) {
        (void)snprintf(err, errcap, "the database has no Sekisho schema yet: run `sekishoctl store migrate`");
        goto out;
    }
    if (v < SK_STORE_PG_SCHEMA) {
        (void)snprintf(err, errcap, "the database has schema version %u, older than this Sekisho's %u: run "
                                    "`sekishoctl store migrate`", v, SK_STORE_PG_SCHEMA);
        goto out;
    }
    if (v > SK_STORE_PG_SCHEMA) {
        (void)snprintf(err, errcap, "the database has schema version %u, newer than this Sekisho knows (%u): "
                                    "upgrade Sekisho", v, SK_STORE_PG_SCHEMA);
        goto out;
    }
    *impl = s;
    s = NULL;
    ret = SK_STORE_OK;
out:
    sk_pg_handle_free(s); /* err says why: the caller reports it, once */
    return ret;
}

const sk_store_ops sk_store_pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .user_get = sk_pg_user_get,
    .user_put_new = sk_pg_user_put_new,
    .user_delete = sk_pg_user_delete,
    .user_list = sk_pg_user_list,
    .user_update_ex = sk_pg_user_update_ex,
    .user_delete_if = sk_pg_user_delete_if,
    .value_get = sk_pg_value_get,
    .value_update = sk_pg_value_update,
    .timing_pad = sk_pg_timing_pad,
    .generation = sk_pg_generation,
    .change_fd = sk_pg_change_fd,
    .session_put = sk_pg_session_put,
    .session_get = sk_pg_session_get,
    .session_delete = sk_pg_session_delete,
    .session_touch_every = sk_pg_session_touch_every,
    .session_delete_user = sk_pg_session_delete_user,
    .session_list = sk_pg_session_list,
    .session_sweep = sk_pg_session_sweep,
    .session_delete_all = sk_pg_session_delete_all,
};
