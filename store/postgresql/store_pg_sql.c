/*
 * The statements of the PostgreSQL backend, prepared once per connection. Every
 * value travels as a binary parameter; no SQL is ever built from data.
 * Tables and columns are described in store_pg.h and created by the migrations
 * in store_pg_schema.c.
 */
#include "store_pg_int.h"

#define T_TEXT 25
#define T_BYTEA 17
#define T_INT8 20
#define T_INT2 21

#define SESS_COLS "tenant, user_id, role, cert_serial, created, last_seen, csrf"

const pg_stmt_def sk_pg_stmts[ST_COUNT] = {
    [ST_USER_GET] = { "sk_user_get", "SELECT record FROM sekisho_users WHERE tenant = $1 AND id = $2",
                      2, { T_TEXT, T_TEXT } },
    [ST_USER_GET_LOCK] = { "sk_user_get_lock",
                           "SELECT record FROM sekisho_users WHERE tenant = $1 AND id = $2 FOR UPDATE",
                           2, { T_TEXT, T_TEXT } },
    [ST_USER_INSERT] = { "sk_user_insert", "INSERT INTO sekisho_users (tenant, id, record) VALUES ($1, $2, $3)",
                         3, { T_TEXT, T_TEXT, T_BYTEA } },
    [ST_USER_UPDATE] = { "sk_user_update", "UPDATE sekisho_users SET record = $3 WHERE tenant = $1 AND id = $2",
                         3, { T_TEXT, T_TEXT, T_BYTEA } },
    [ST_USER_DELETE] = { "sk_user_delete", "DELETE FROM sekisho_users WHERE tenant = $1 AND id = $2",
                         2, { T_TEXT, T_TEXT } },
    /* COLLATE "C" columns: byte order, as the LMDB backend lists them */
    [ST_USER_LIST] = { "sk_user_list", "SELECT tenant, id, record FROM sekisho_users ORDER BY tenant, id",
                       0, { 0 } },
    [ST_USER_LIST_TENANT] = { "sk_user_list_tenant",
                              "SELECT tenant, id, record FROM sekisho_users WHERE tenant = $1 ORDER BY id",
                              1, { T_TEXT } },
    [ST_SESS_DELETE_USER_EXCEPT] = { "sk_sess_delete_user",
                                     "DELETE FROM sekisho_sessions WHERE tenant = $1 AND user_id = $2 "
                                     "AND ($3::bytea IS NULL OR hash <> $3::bytea)",
                                     3, { T_TEXT, T_TEXT, T_BYTEA } },
    [ST_VALUE_GET] = { "sk_value_get", "SELECT value FROM sekisho_values WHERE name = $1", 1, { T_TEXT } },
    [ST_VALUE_GET_LOCK] = { "sk_value_get_lock", "SELECT value FROM sekisho_values WHERE name = $1 FOR UPDATE",
                            1, { T_TEXT } },
    [ST_VALUE_CREATE] = { "sk_value_create",
                          "INSERT INTO sekisho_values (name, value) VALUES ($1, ''::bytea) "
                          "ON CONFLICT (name) DO NOTHING RETURNING 1",
                          1, { T_TEXT } },
    [ST_VALUE_SET] = { "sk_value_set", "UPDATE sekisho_values SET value = $2 WHERE name = $1", 2,
                       { T_TEXT, T_BYTEA } },
    [ST_PAD_LOCK] = { "sk_pad_lock", "SELECT n FROM sekisho_pad WHERE slot = $1 FOR UPDATE", 1, { T_INT2 } },
    [ST_PAD_SET] = { "sk_pad_set", "UPDATE sekisho_pad SET n = n + 1 WHERE slot = $1", 1, { T_INT2 } },
    [ST_SESS_PUT] = { "sk_sess_put",
                      "INSERT INTO sekisho_sessions (hash, " SESS_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                      "ON CONFLICT (hash) DO UPDATE SET tenant = EXCLUDED.tenant, user_id = EXCLUDED.user_id, "
                      "role = EXCLUDED.role, cert_serial = EXCLUDED.cert_serial, created = EXCLUDED.created, "
                      "last_seen = EXCLUDED.last_seen, csrf = EXCLUDED.csrf",
                      8, { T_BYTEA, T_TEXT, T_TEXT, T_INT2, T_TEXT, T_INT8, T_INT8, T_BYTEA } },
    [ST_SESS_GET] = { "sk_sess_get", "SELECT hash, " SESS_COLS " FROM sekisho_sessions WHERE hash = $1", 1,
                      { T_BYTEA } },
    [ST_SESS_DELETE] = { "sk_sess_delete", "DELETE FROM sekisho_sessions WHERE hash = $1", 1, { T_BYTEA } },
    /* $3 = now - interval: written only when last_seen is at least that old,
     * so concurrent touches write once and last_seen never moves back */
    [ST_SESS_TOUCH] = { "sk_sess_touch",
                        "UPDATE sekisho_sessions SET last_seen = $2 WHERE hash = $1 AND last_seen <= $3", 3,
                        { T_BYTEA, T_INT8, T_INT8 } },
    [ST_SESS_LIST] = { "sk_sess_list", "SELECT hash, " SESS_COLS " FROM sekisho_sessions ORDER BY hash", 0,
                       { 0 } },
    /* a NULL bound disables its rule (a comparison with NULL is never true) */
    [ST_SESS_SWEEP] = { "sk_sess_sweep", "DELETE FROM sekisho_sessions WHERE last_seen <= $1 OR created <= $2",
                        2, { T_INT8, T_INT8 } },
    [ST_SESS_DELETE_ALL] = { "sk_sess_delete_all", "DELETE FROM sekisho_sessions", 0, { 0 } },
};
