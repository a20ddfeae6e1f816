/*
 * Schema of the PostgreSQL backend: versioned migrations (an ordered list of
 * SQL steps) and the check at open. sekisho_schema holds the version; a
 * migration runs in one transaction under an advisory lock, so two nodes (or
 * two operators) migrating at once apply each step exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg_int.h"

/* Arbitrary, fixed: the advisory lock key of Sekisho's migrations. */
#define MIGRATE_LOCK "SELECT pg_advisory_xact_lock(7338471953902208)"

/* Step N brings the schema from version N-1 to N. Never edit a released step;
 * append a new one (and raise SK_STORE_PG_SCHEMA). */
static const char *const migrations[] = {
    /* 1: users, sessions, shared values, the timing pad, change notification */
    "CREATE TABLE sekisho_users ("
    " tenant text COLLATE \"C\" NOT NULL,"
    " id text COLLATE \"C\" NOT NULL,"
    " record bytea NOT NULL,"
    " PRIMARY KEY (tenant, id));"
    /* user_put_new refuses an ID that differs from another of its tenant
     * only in case; the index makes that hold across nodes */
    "CREATE UNIQUE INDEX sekisho_users_id_ci ON sekisho_users (tenant, lower(id));"
    "CREATE TABLE sekisho_sessions ("
    " hash bytea PRIMARY KEY CHECK (length(hash) = 32),"
    " tenant text COLLATE \"C\" NOT NULL,"
    " user_id text COLLATE \"C\" NOT NULL,"
    " role smallint NOT NULL,"
    " cert_serial text COLLATE \"C\" NOT NULL,"
    " created bigint NOT NULL,"
    " last_seen bigint NOT NULL,"
    " csrf bytea NOT NULL CHECK (length(csrf) = 32));"
    "CREATE INDEX sekisho_sessions_user ON sekisho_sessions (tenant, user_id);"
    "CREATE TABLE sekisho_values ("
    " name text COLLATE \"C\" PRIMARY KEY,"
    " value bytea NOT NULL CHECK (length(value) <= 1024));"
    "CREATE TABLE sekisho_pad (slot smallint PRIMARY KEY, n bigint NOT NULL);"
    "INSERT INTO sekisho_pad SELECT g, 0 FROM generate_series(0, 63) AS g;"
    "CREATE FUNCTION sekisho_notify() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN PERFORM pg_notify('sekisho_store', ''); RETURN NULL; END $$;"
    "CREATE TRIGGER sekisho_users_notify AFTER INSERT OR UPDATE OR DELETE ON sekisho_users"
    " FOR EACH ROW EXECUTE FUNCTION sekisho_notify();"
    "CREATE TRIGGER sekisho_users_notify_t AFTER TRUNCATE ON sekisho_users"
    " FOR EACH STATEMENT EXECUTE FUNCTION sekisho_notify();"
    "CREATE TRIGGER sekisho_sessions_notify AFTER INSERT OR UPDATE OR DELETE ON sekisho_sessions"
    " FOR EACH ROW EXECUTE FUNCTION sekisho_notify();"
    "CREATE TRIGGER sekisho_sessions_notify_t AFTER TRUNCATE ON sekisho_sessions"
    " FOR EACH STATEMENT EXECUTE FUNCTION sekisho_notify();"
    "CREATE TRIGGER sekisho_values_notify AFTER INSERT OR UPDATE OR DELETE ON sekisho_values"
    " FOR EACH ROW EXECUTE FUNCTION sekisho_notify();"
    "CREATE TRIGGER sekisho_values_notify_t AFTER TRUNCATE ON sekisho_values"
    " FOR EACH STATEMENT EXECUTE FUNCTION sekisho_notify();"
    /* the pad notifies too: it must cost what a login's counter update costs */
    "CREATE TRIGGER sekisho_pad_notify AFTER UPDATE ON sekisho_pad"
    " FOR EACH ROW EXECUTE FUNCTION sekisho_notify();",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == SK_STORE_PG_SCHEMA,
               "one migration step per schema version");

/* The version in sekisho_schema: 0 when the table or its row is missing. */
static int read_version(pg_store *s, PGconn *conn, int lock, unsigned *out)
{
    PGresult *r = NULL;
    int64_t v = 0;
    int ret = -1;

    *out = 0;
    if (sk_pg_query(s, conn, "SELECT CASE WHEN to_regclass('sekisho_schema') IS NULL THEN 0 ELSE 1 END::bigint",
                    NULL, "schema: look for the version table", &r) != 0)
        return -1;
    if (PQntuples(r) != 1 || sk_pg_get_int8(r, 0, 0, &v) != 0)
        goto bad;
    PQclear(r);
    r = NULL;
    if (v == 0)
        return 0;
    if (sk_pg_query(s, conn, lock ? "SELECT version::bigint FROM sekisho_schema WHERE id = 1 FOR UPDATE"
                                  : "SELECT version::bigint FROM sekisho_schema WHERE id = 1",
                    NULL, "schema: read the version", &r) != 0)
        return -1;
    v = 0;
    if (PQntuples(r) > 1 || (PQntuples(r) == 1 && (sk_pg_get_int8(r, 0, 0, &v) != 0 || v < 0 || v > 1000000)))
        goto bad;
    *out = (unsigned)v;
    ret = 0;
    goto out;
bad:
    sk_pg_log(s, "schema: sekisho_schema holds no valid version");
out:
    PQclear(r);
    return ret;
}

int sk_pg_schema_version(pg_store *s, PGconn *conn, unsigned *out)
{
    return read_version(s, conn, 0, out);
}

static int set_version(pg_store *s, PGconn *conn, unsigned v)
{
    pg_params p = { 0 };
    PGresult *r = NULL;
    sk_pg_p_int8(&p, (int64_t)v);
    if (sk_pg_query(s, conn, "UPDATE sekisho_schema SET version = $1::bigint WHERE id = 1", &p,
                    "migrate: record the version", &r) != 0)
        return -1;
    PQclear(r);
    return 0;
}

/* Inside the migration's transaction: apply the steps after *from. */
static int apply(pg_store *s, PGconn *conn, unsigned *from, unsigned *to, char *err, size_t errcap)
{
    char op[48];
    if (sk_pg_simple(s, conn, MIGRATE_LOCK, "migrate: lock") != 0 ||
        sk_pg_simple(s, conn, "CREATE TABLE IF NOT EXISTS sekisho_schema (id smallint PRIMARY KEY CHECK (id = 1), "
                              "version integer NOT NULL); "
                              "INSERT INTO sekisho_schema VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
                     "migrate: schema table") != 0 ||
        read_version(s, conn, 1, from) != 0) {
        (void)snprintf(err, errcap, "cannot prepare the migration (the reason is logged)");
        return -1;
    }
    *to = *from;
    if (*from > SK_STORE_PG_SCHEMA) {
        (void)snprintf(err, errcap, "the database has schema version %u, newer than this Sekisho knows (%u): "
                                    "upgrade Sekisho", *from, SK_STORE_PG_SCHEMA);
        return -1;
    }
    for (unsigned v = *from + 1; v <= SK_STORE_PG_SCHEMA; v++) {
        if (sk_snprintf(op, sizeof op, "migrate: step %u", v) != 0 ||
            sk_pg_simple(s, conn, migrations[v - 1], op) != 0 || set_version(s, conn, v) != 0) {
            (void)snprintf(err, errcap, "migration step %u failed (the reason is logged); nothing was changed", v);
            return -1;
        }
        *to = v;
    }
    return 0;
}

int sk_store_pg_migrate(const char *url, const char *password_file, unsigned *from, unsigned *to, char *err,
                        size_t errcap)
{
    pg_store *s = NULL;
    PGconn *conn = NULL;
    int ret = -1;

    *from = *to = 0;
    if (errcap > 0)
        err[0] = '\0';
    /* a handle without the schema check: migrating is what makes it pass */
    if (sk_pg_handle_new(url, password_file, 0, 1, &s, err, errcap) != 0)
        return -1;
    conn = sk_pg_connect(s, "migrate", err, errcap);
    if (conn == NULL)
        goto out;
    if (sk_pg_simple(s, conn, "BEGIN", "migrate: begin") != 0) {
        (void)snprintf(err, errcap, "cannot begin the migration (the reason is logged)");
        goto out;
    }
    if (apply(s, conn, from, to, err, errcap) != 0)
        goto out;
    if (sk_pg_simple(s, conn, "COMMIT", "migrate: commit") != 0) {
        (void)snprintf(err, errcap, "the migration did not commit (the reason is logged)");
        *to = *from;
        goto out;
    }
    ret = 0;
out:
    PQfinish(conn); /* an open transaction is rolled back by the server */
    sk_pg_handle_free(s);
    return ret;
}
