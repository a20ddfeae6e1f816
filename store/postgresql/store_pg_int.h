/*
 * store_pg_int.h — what the files of the PostgreSQL backend share (internal to
 * store/postgresql/): the handle, the connection pool, the statement table and
 * bounded execution of one statement.
 */
#ifndef SK_STORE_PG_INT_H
#define SK_STORE_PG_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "sk_store.h"
#include "store_pg.h"

#define PG_PASSWORD_MAX 1024
#define PG_MAX_PARAMS 8
#define PG_MAX_SUBS 64          /* change_fd sockets handed out by one handle */
#define PG_DOWN_BACKOFF_MS 1000 /* after a failed connect, fail at once for this long */
#define PG_LOG_REPEAT_MS 10000  /* an identical error is logged once per this */
#define PG_LOG_RECENT 8         /* distinct errors remembered for that */

/* Statements, prepared once per connection (store_pg_sql.c holds their text). */
enum pg_stmt {
    ST_USER_GET,
    ST_USER_GET_LOCK,
    ST_USER_INSERT,
    ST_USER_UPDATE,
    ST_USER_DELETE,
    ST_USER_LIST,
    ST_USER_LIST_TENANT,
    ST_SESS_DELETE_USER_EXCEPT,
    ST_VALUE_GET,
    ST_VALUE_GET_LOCK,
    ST_VALUE_CREATE,
    ST_VALUE_SET,
    ST_PAD_LOCK,
    ST_PAD_SET,
    ST_SESS_PUT,
    ST_SESS_GET,
    ST_SESS_DELETE,
    ST_SESS_TOUCH,
    ST_SESS_LIST,
    ST_SESS_SWEEP,
    ST_SESS_DELETE_ALL,
    ST_COUNT
};

typedef struct pg_stmt_def {
    const char *name;
    const char *sql;
    int nparams;
    Oid types[PG_MAX_PARAMS];
} pg_stmt_def;

extern const pg_stmt_def sk_pg_stmts[ST_COUNT];

/* Parameters of one statement, all sent in binary. */
typedef struct pg_params {
    int n;
    const char *val[PG_MAX_PARAMS];
    int len[PG_MAX_PARAMS];
    int fmt[PG_MAX_PARAMS];
    char num[PG_MAX_PARAMS][8];
} pg_params;

void sk_pg_p_text(pg_params *p, const char *s);
void sk_pg_p_bytes(pg_params *p, const void *b, size_t n);
void sk_pg_p_int8(pg_params *p, int64_t v);
void sk_pg_p_int2(pg_params *p, int v);
void sk_pg_p_null(pg_params *p);

/* Binary result fields; -1 when NULL or of the wrong size. */
int sk_pg_get_int8(const PGresult *r, int row, int col, int64_t *out) SK_MUST_CHECK;
int sk_pg_get_int2(const PGresult *r, int row, int col, int *out) SK_MUST_CHECK;
/* A text column into buf (NUL-terminated); -1 when it does not fit. */
int sk_pg_get_text(const PGresult *r, int row, int col, char *buf, size_t cap) SK_MUST_CHECK;
/* Wipe every field of a result before PQclear (secrets in the rows). */
void sk_pg_clear_wipe(PGresult *r);

typedef struct pg_conn {
    PGconn *conn;
    uint32_t prepared; /* bit per enum pg_stmt prepared on conn */
    int busy;
} pg_conn;

typedef struct pg_store {
    int readonly;
    /* connection parameters for PQconnectdbParams (url expanded by libpq) */
    char *url;
    char password[PG_PASSWORD_MAX];
    int has_password;

    pthread_mutex_t mu; /* pool */
    pthread_cond_t cv;
    int pool_size;
    pg_conn *slots;
    int64_t down_until; /* monotonic ms */

    pthread_mutex_t log_mu; /* recent distinct errors, each logged once per PG_LOG_REPEAT_MS */
    struct pg_recent {
        char msg[320];
        int64_t at;
        unsigned suppressed;
    } recent[PG_LOG_RECENT];

    /* change notification (store_pg_notify.c) */
    pthread_mutex_t lmu;
    _Atomic int listener_started;
    pthread_t listener;
    int stop_fd;                 /* eventfd: wakes the listener to stop */
    int subs[PG_MAX_SUBS];       /* our ends of the change_fd sockets */
    int nsubs;
    _Atomic uint64_t gen;
    _Atomic int listening;
    _Atomic int stopping;
} pg_store;

int64_t sk_pg_now_ms(void);
/* Log one line "store: ...", once per PG_LOG_REPEAT_MS when identical. */
void sk_pg_log(pg_store *s, const char *fmt, ...) SK_PRINTF(2, 3);
/* First line of libpq's message for conn (never holds the password). */
void sk_pg_conn_msg(PGconn *c, char *buf, size_t cap);

/* A new connection with the handle's parameters and session settings, or NULL
 * (logged, with why in err when err is not NULL). */
PGconn *sk_pg_connect(pg_store *s, const char *purpose, char *err, size_t errcap);

/* Check a connection out of the pool (connecting it if needed): NULL on
 * failure (logged). Release puts it back; a connection that is broken or left
 * inside a transaction is dropped. */
pg_conn *sk_pg_acquire(pg_store *s, const char *op);
void sk_pg_release(pg_store *s, pg_conn *c);

enum { PG_UNIQUE = 2 }; /* sk_pg_exec: a unique constraint refused the row */

/* Run a prepared statement; *res gets the result (PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK) for the caller to PQclear. 0, PG_UNIQUE (not logged), or -1
 * (logged with op). */
int sk_pg_exec(pg_store *s, pg_conn *c, enum pg_stmt st, const pg_params *p, const char *op,
               PGresult **res) SK_MUST_CHECK;
/* The same returning the number of rows affected/returned, or -1. */
int sk_pg_exec_count(pg_store *s, pg_conn *c, enum pg_stmt st, const pg_params *p,
                     const char *op) SK_MUST_CHECK;
/* Run sql (not one of the statements) with parameters p (NULL = none): as sk_pg_exec. */
int sk_pg_query(pg_store *s, PGconn *conn, const char *sql, const pg_params *p, const char *op,
                PGresult **res) SK_MUST_CHECK;
/* A constant SQL string without parameters (BEGIN, COMMIT, ...): 0 or -1 (logged). */
int sk_pg_simple(pg_store *s, PGconn *conn, const char *sql, const char *op) SK_MUST_CHECK;
int sk_pg_begin(pg_store *s, pg_conn *c, const char *op) SK_MUST_CHECK;
/* COMMIT; on success the handle's generation advances. */
int sk_pg_commit(pg_store *s, pg_conn *c, const char *op) SK_MUST_CHECK;
/* Abort an open transaction (best effort; a failure drops the connection). */
void sk_pg_rollback(pg_store *s, pg_conn *c);
/* A write op on a read-only handle: log and -1. */
int sk_pg_refuse_readonly(pg_store *s, const char *op);

/* A handle without the schema check (store_pg.c); free with sk_pg_handle_free. */
int sk_pg_handle_new(const char *url, const char *password_file, int readonly, int pool_size, pg_store **out,
                     char *err, size_t errcap) SK_MUST_CHECK;
void sk_pg_handle_free(pg_store *s);

/* Schema (store_pg_schema.c): the version in the database (0 = none), or -1. */
int sk_pg_schema_version(pg_store *s, PGconn *conn, unsigned *out) SK_MUST_CHECK;

/* Notification (store_pg_notify.c). */
int sk_pg_notify_init(pg_store *s) SK_MUST_CHECK;
void sk_pg_notify_stop(pg_store *s);
void sk_pg_bump(pg_store *s); /* this handle committed a change */
void sk_pg_ensure_listener(pg_store *s); /* start the LISTEN thread unless running */
uint64_t sk_pg_generation(void *impl);
int sk_pg_change_fd(void *impl);

/* Ops (store_pg_users.c, store_pg_sessions.c). */
int sk_pg_user_get(void *impl, const char *tenant, const char *id, sk_user *out);
int sk_pg_user_put_new(void *impl, const sk_user *u);
int sk_pg_user_delete(void *impl, const char *tenant, const char *id);
int sk_pg_user_list(void *impl, const char *tenant, int (*cb)(const sk_user *u, void *ctx), void *ctx);
int sk_pg_user_update_ex(void *impl, const char *tenant, const char *id,
                         int (*fn)(sk_user *u, int *end_sessions, void *ctx), void *ctx,
                         const uint8_t *keep, int *ended);
int sk_pg_user_delete_if(void *impl, const char *tenant, const char *id,
                         int (*pred)(const sk_user *u, void *ctx), void *ctx);
int sk_pg_value_get(void *impl, const char *name, uint8_t *buf, size_t cap, size_t *len);
int sk_pg_value_update(void *impl, const char *name,
                       int (*fn)(uint8_t *val, size_t *len, int exists, void *ctx), void *ctx);
int sk_pg_timing_pad(void *impl);
int sk_pg_session_put(void *impl, const sk_session *sess);
int sk_pg_session_get(void *impl, const uint8_t hash[SK_SESSION_HASH_LEN], sk_session *out);
int sk_pg_session_delete(void *impl, const uint8_t hash[SK_SESSION_HASH_LEN]);
int sk_pg_session_touch_every(void *impl, const uint8_t hash[SK_SESSION_HASH_LEN], int64_t now,
                              int64_t interval);
int sk_pg_session_delete_user(void *impl, const char *tenant, const char *id);
int sk_pg_session_list(void *impl, int (*cb)(const sk_session *sess, void *ctx), void *ctx);
int sk_pg_session_sweep(void *impl, int64_t idle_timeout, int64_t absolute_timeout, int64_t now);
int sk_pg_session_delete_all(void *impl);

#endif
