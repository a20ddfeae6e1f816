/*
 * Connections of the PostgreSQL backend: connecting with the handle's
 * parameters, the pool, bounded execution of statements, and rate-limited
 * error logging. Nothing here waits without a deadline.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store_pg_int.h"

int64_t sk_pg_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sk_pg_log(pg_store *s, const char *fmt, ...)
{
    char msg[sizeof s->recent[0].msg];
    va_list ap;
    int64_t now = sk_pg_now_ms();
    struct pg_recent *slot = NULL;

    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    (void)pthread_mutex_lock(&s->log_mu);
    /* During an outage every op fails the same way: one line per kind of
     * failure per PG_LOG_REPEAT_MS, then how often it recurred. */
    for (int i = 0; i < PG_LOG_RECENT && slot == NULL; i++)
        if (strcmp(s->recent[i].msg, msg) == 0)
            slot = &s->recent[i];
    if (slot != NULL && now - slot->at < PG_LOG_REPEAT_MS) {
        slot->suppressed++;
    } else {
        if (slot == NULL) {
            slot = &s->recent[0];
            for (int i = 1; i < PG_LOG_RECENT; i++)
                if (s->recent[i].at < slot->at)
                    slot = &s->recent[i];
            memcpy(slot->msg, msg, sizeof msg);
        } else if (slot->suppressed > 0) {
            sk_log(SK_LOG_ERR, "store: (repeated %u more times in %d s)", slot->suppressed, PG_LOG_REPEAT_MS / 1000);
        }
        sk_log(SK_LOG_ERR, "store: %s", msg);
        slot->at = now;
        slot->suppressed = 0;
    }
    (void)pthread_mutex_unlock(&s->log_mu);
}

/* The first line of a libpq message, without its newline. */
static void first_line(const char *m, char *buf, size_t cap)
{
    size_t n = m ? strcspn(m, "\r\n") : 0;
    if (cap == 0)
        return;
    if (n >= cap)
        n = cap - 1;
    if (n > 0)
        memcpy(buf, m, n);
    buf[n] = '\0';
    if (n == 0 && sk_strlcpy(buf, cap, "unknown error") != 0)
        buf[0] = '\0';
}

void sk_pg_conn_msg(PGconn *c, char *buf, size_t cap)
{
    first_line(c ? PQerrorMessage(c) : "out of memory", buf, cap);
}

/* ---- parameters and result fields ---------------------------------------- */

static void p_add(pg_params *p, const void *v, int len, int fmt)
{
    if (p->n >= PG_MAX_PARAMS)
        abort(); /* a programming error in a statement's caller */
    p->val[p->n] = v;
    p->len[p->n] = len;
    p->fmt[p->n] = fmt;
    p->n++;
}

void sk_pg_p_text(pg_params *p, const char *s)
{
    p_add(p, s, (int)strlen(s), 1); /* binary text is its bytes */
}

void sk_pg_p_bytes(pg_params *p, const void *b, size_t n)
{
    p_add(p, b, (int)n, 1);
}

void sk_pg_p_int8(pg_params *p, int64_t v)
{
    uint64_t be = htobe64((uint64_t)v);
    memcpy(p->num[p->n], &be, 8);
    p_add(p, p->num[p->n], 8, 1);
}

void sk_pg_p_int2(pg_params *p, int v)
{
    uint16_t be = htobe16((uint16_t)v);
    memcpy(p->num[p->n], &be, 2);
    p_add(p, p->num[p->n], 2, 1);
}

void sk_pg_p_null(pg_params *p)
{
    p_add(p, NULL, 0, 1);
}

int sk_pg_get_int8(const PGresult *r, int row, int col, int64_t *out)
{
    uint64_t be;
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8)
        return -1;
    memcpy(&be, PQgetvalue(r, row, col), 8);
    *out = (int64_t)be64toh(be);
    return 0;
}

int sk_pg_get_int2(const PGresult *r, int row, int col, int *out)
{
    uint16_t be;
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 2)
        return -1;
    memcpy(&be, PQgetvalue(r, row, col), 2);
    *out = (int16_t)be16toh(be);
    return 0;
}

int sk_pg_get_text(const PGresult *r, int row, int col, char *buf, size_t cap)
{
    int n = PQgetlength(r, row, col);
    if (PQgetisnull(r, row, col) || n < 0 || (size_t)n >= cap)
        return -1;
    memcpy(buf, PQgetvalue(r, row, col), (size_t)n);
    buf[n] = '\0';
    return strlen(buf) == (size_t)n ? 0 : -1;
}

void sk_pg_clear_wipe(PGresult *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < PQntuples(r); i++)
        for (int j = 0; j < PQnfields(r); j++)
            sk_wipe(PQgetvalue(r, i, j), (size_t)PQgetlength(r, i, j));
    PQclear(r);
}

/* ---- executing --------------------------------------------------------- */

/* Wait (bounded) for the whole answer to what was sent on conn. The first error
 * result wins, else the last result. NULL when the connection failed or timed
 * out (the caller drops the connection; logged here). */
static PGresult *collect(pg_store *s, PGconn *conn, const char *op)
{
    int64_t deadline = sk_pg_now_ms() + SK_STORE_PG_OP_TIMEOUT_MS;
    PGresult *keep = NULL, *r;
    char m[200];

    for (;;) {
        while (PQisBusy(conn)) {
            int64_t left = deadline - sk_pg_now_ms();
            struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };
            if (left <= 0) {
                sk_pg_log(s, "%s: no answer from PostgreSQL within %d s", op, SK_STORE_PG_OP_TIMEOUT_MS / 1000);
                goto fail;
            }
            if (pfd.fd < 0)
                goto broken;
            int n = poll(&pfd, 1, (int)left);
            if (n < 0 && errno != EINTR) {
                sk_pg_log(s, "%s: poll: %s", op, strerror(errno));
                goto fail;
            }
            if (n > 0 && !PQconsumeInput(conn))
                goto broken;
        }
        r = PQgetResult(conn);
        if (r == NULL)
            break;
        int keep_err = keep != NULL && PQresultStatus(keep) != PGRES_COMMAND_OK &&
                       PQresultStatus(keep) != PGRES_TUPLES_OK && PQresultStatus(keep) != PGRES_EMPTY_QUERY;
        if (keep == NULL || !keep_err) { /* the first error wins */
            PQclear(keep);
            keep = r;
        } else {
            PQclear(r);
        }
    }
    if (keep == NULL && PQstatus(conn) != CONNECTION_OK)
        goto broken;
    return keep;
broken:
    sk_pg_conn_msg(conn, m, sizeof m);
    sk_pg_log(s, "%s: lost the connection to PostgreSQL: %s", op, m);
fail:
    PQclear(keep);
    return NULL;
}

/* Judge a result: 0 good, PG_UNIQUE, or -1 (logged). Frees r unless good. */
static int judge(pg_store *s, PGresult *r, const char *op)
{
    char m[200];
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return 0;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (state != NULL && strcmp(state, "23505") == 0) {
        PQclear(r);
        return PG_UNIQUE;
    }
    /* the primary message only: DETAIL may quote row values */
    first_line(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), m, sizeof m);
    sk_pg_log(s, "%s: PostgreSQL: %s (SQLSTATE %s)", op, m, state ? state : "?");
    PQclear(r);
    return -1;
}

/* A connection that failed mid-statement is of no further use. */
static void drop(pg_conn *c)
{
    PQfinish(c->conn);
    c->conn = NULL;
    c->prepared = 0;
}

/* The result of what was just sent (sent: what PQsend* returned), or NULL with
 * the connection dropped: it can no longer be trusted to be in step. */
static PGresult *result_of(pg_store *s, pg_conn *c, int sent, const char *op)
{
    PGresult *r = NULL;
    if (!sent) {
        char m[200];
        sk_pg_conn_msg(c->conn, m, sizeof m);
        sk_pg_log(s, "%s: cannot send to PostgreSQL: %s", op, m);
    } else {
        r = collect(s, c->conn, op);
    }
    if (r == NULL)
        drop(c);
    return r;
}

static int prepare(pg_store *s, pg_conn *c, enum pg_stmt st, const char *op)
{
    const pg_stmt_def *d = &sk_pg_stmts[st];
    PGresult *r = result_of(s, c, PQsendPrepare(c->conn, d->name, d->sql, d->nparams, d->types), op);
    if (r == NULL)
        return -1;
    if (judge(s, r, op) != 0)
        return -1;
    PQclear(r);
    c->prepared |= 1u << st;
    return 0;
}

int sk_pg_exec(pg_store *s, pg_conn *c, enum pg_stmt st, const pg_params *p, const char *op, PGresult **res)
{
    static const pg_params none;
    PGresult *r;
    int rc;

    *res = NULL;
    if (p == NULL)
        p = &none;
    if (c->conn == NULL)
        return -1;
    if (!(c->prepared & (1u << st)) && prepare(s, c, st, op) != 0)
        return -1;
    r = result_of(s, c, PQsendQueryPrepared(c->conn, sk_pg_stmts[st].name, p->n, p->val, p->len, p->fmt, 1), op);
    if (r == NULL)
        return -1;
    rc = judge(s, r, op);
    if (rc == 0)
        *res = r;
    return rc;
}

int sk_pg_query(pg_store *s, PGconn *conn, const char *sql, const pg_params *p, const char *op, PGresult **res)
{
    static const pg_params none;
    PGresult *r;
    int rc;

    *res = NULL;
    if (p == NULL)
        p = &none;
    if (conn == NULL)
        return -1;
    if (!PQsendQueryParams(conn, sql, p->n, NULL, p->val, p->len, p->fmt, 1)) {
        char m[200];
        sk_pg_conn_msg(conn, m, sizeof m);
        sk_pg_log(s, "%s: cannot send to PostgreSQL: %s", op, m);
        return -1;
    }
    r = collect(s, conn, op);
    if (r == NULL)
        return -1;
    rc = judge(s, r, op);
    if (rc == 0)
        *res = r;
    return rc;
}

int sk_pg_exec_count(pg_store *s, pg_conn *c, enum pg_stmt st, const pg_params *p, const char *op)
{
    PGresult *r = NULL;
    int rc = sk_pg_exec(s, c, st, p, op, &r), n = -1;
    if (rc != 0)
        return -1;
    const char *t = PQcmdTuples(r);
    uint64_t v = 0;
    if (t[0] != '\0' && sk_parse_u64(t, 0, INT32_MAX, &v) == 0)
        n = (int)v;
    else if (t[0] == '\0')
        n = PQntuples(r);
    PQclear(r);
    if (n < 0)
        sk_pg_log(s, "%s: unexpected row count from PostgreSQL", op);
    return n;
}

int sk_pg_simple(pg_store *s, PGconn *conn, const char *sql, const char *op)
{
    PGresult *r;
    if (conn == NULL)
        return -1;
    if (!PQsendQuery(conn, sql)) {
        char m[200];
        sk_pg_conn_msg(conn, m, sizeof m);
        sk_pg_log(s, "%s: cannot send to PostgreSQL: %s", op, m);
        return -1;
    }
    r = collect(s, conn, op);
    if (r == NULL)
        return -1;
    if (judge(s, r, op) != 0)
        return -1;
    PQclear(r);
    return 0;
}

/* BEGIN or COMMIT. A connection on which it failed (broken, timed out with the
 * answer still due, or refused) is not reused; after a failed COMMIT whether it
 * committed is unknown, and it is reported as failed either way. */
static int simple_or_drop(pg_store *s, pg_conn *c, const char *sql, const char *op)
{
    if (sk_pg_simple(s, c->conn, sql, op) != 0) {
        if (c->conn != NULL)
            drop(c);
        return -1;
    }
    return 0;
}

int sk_pg_begin(pg_store *s, pg_conn *c, const char *op)
{
    return simple_or_drop(s, c, "BEGIN", op);
}

int sk_pg_commit(pg_store *s, pg_conn *c, const char *op)
{
    if (simple_or_drop(s, c, "COMMIT", op) != 0)
        return -1;
    sk_pg_bump(s);
    return 0;
}

void sk_pg_rollback(pg_store *s, pg_conn *c)
{
    if (c->conn == NULL || PQtransactionStatus(c->conn) == PQTRANS_IDLE)
        return;
    if (PQisBusy(c->conn) || PQtransactionStatus(c->conn) == PQTRANS_ACTIVE) {
        drop(c); /* an answer is still due (a statement timed out): the server rolls back */
        return;
    }
    if (sk_pg_simple(s, c->conn, "ROLLBACK", "rollback") != 0)
        drop(c);
}

int sk_pg_refuse_readonly(pg_store *s, const char *op)
{
    sk_pg_log(s, "%s: write attempted on a read-only handle", op);
    return -1;
}

/* ---- connecting -------------------------------------------------------- */

/* Notices ("relation already exists, skipping") are not errors; libpq would
 * print them on stderr. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Bounds for every connection. The url's own settings come later in the
 * list and win (libpq: later parameters override earlier ones). */
PGconn *sk_pg_connect(pg_store *s, const char *purpose, char *err, size_t errcap)
{
    const char *kw[16], *val[16];
    int n = 0;
    char m[200];
    PGconn *c;

    kw[n] = "connect_timeout"; val[n++] = "3";
    kw[n] = "keepalives"; val[n++] = "1";
    kw[n] = "keepalives_idle"; val[n++] = "10";
    kw[n] = "keepalives_interval"; val[n++] = "3";
    kw[n] = "keepalives_count"; val[n++] = "3";
    kw[n] = "tcp_user_timeout"; val[n++] = "15000";
    kw[n] = "application_name"; val[n++] = "sekisho";
    kw[n] = "dbname"; val[n++] = s->url;
    if (s->has_password) {
        kw[n] = "password";
        val[n++] = s->password;
    }
    kw[n] = NULL;
    val[n] = NULL;
    c = PQconnectdbParams(kw, val, 1);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        sk_pg_conn_msg(c, m, sizeof m);
        if (err != NULL && errcap > 0)
            (void)snprintf(err, errcap, "cannot connect to PostgreSQL: %s", m);
        else
            sk_pg_log(s, "cannot connect to PostgreSQL (%s): %s", purpose, m);
        PQfinish(c);
        return NULL;
    }
    (void)PQsetNoticeProcessor(c, ignore_notice, NULL);
    /* Server-side bounds on top of the client's: a statement or a lock wait
     * never outlives the client's patience, and a session left inside a
     * transaction by a dead client frees its row locks. */
    if (sk_pg_simple(s, c, s->readonly ? "SET statement_timeout = 5000; SET idle_in_transaction_session_timeout = 30000; "
                                         "SET default_transaction_read_only = on"
                                       : "SET statement_timeout = 5000; SET idle_in_transaction_session_timeout = 30000",
                     "session settings") != 0) {
        if (err != NULL && errcap > 0)
            (void)snprintf(err, errcap, "cannot set up the PostgreSQL session (the reason is logged)");
        PQfinish(c);
        return NULL;
    }
    return c;
}

pg_conn *sk_pg_acquire(pg_store *s, const char *op)
{
    pg_conn *c = NULL;
    struct timespec until;
    int down;

    if (!s->listener_started)
        sk_pg_ensure_listener(s);
    (void)clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += SK_STORE_PG_OP_TIMEOUT_MS / 1000;
    (void)pthread_mutex_lock(&s->mu);
    for (;;) {
        for (int i = 0; i < s->pool_size && c == NULL; i++)
            if (!s->slots[i].busy)
                c = &s->slots[i];
        if (c != NULL)
            break;
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT) {
            (void)pthread_mutex_unlock(&s->mu);
            sk_pg_log(s, "%s: no free PostgreSQL connection within %d s", op, SK_STORE_PG_OP_TIMEOUT_MS / 1000);
            return NULL;
        }
    }
    c->busy = 1;
    down = c->conn == NULL && sk_pg_now_ms() < s->down_until;
    (void)pthread_mutex_unlock(&s->mu);

    if (c->conn != NULL && PQstatus(c->conn) != CONNECTION_OK)
        drop(c);
    if (c->conn == NULL && !down) {
        c->conn = sk_pg_connect(s, op, NULL, 0);
        if (c->conn == NULL) {
            (void)pthread_mutex_lock(&s->mu);
            s->down_until = sk_pg_now_ms() + PG_DOWN_BACKOFF_MS;
            (void)pthread_mutex_unlock(&s->mu);
        }
    }
    if (c->conn == NULL) {
        if (down)
            sk_pg_log(s, "%s: PostgreSQL is unreachable (retrying within a second)", op);
        sk_pg_release(s, c);
        return NULL;
    }
    return c;
}

void sk_pg_release(pg_store *s, pg_conn *c)
{
    if (c == NULL)
        return;
    if (c->conn != NULL && (PQstatus(c->conn) != CONNECTION_OK || PQtransactionStatus(c->conn) != PQTRANS_IDLE))
        drop(c);
    (void)pthread_mutex_lock(&s->mu);
    c->busy = 0;
    (void)pthread_cond_signal(&s->cv);
    (void)pthread_mutex_unlock(&s->mu);
}

int sk_store_pg_client_files(const char *url, int (*add)(const char *path, void *ctx), void *ctx)
{
    static const char *const keys[] = { "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslcrldir", "passfile" };
    static const char *const system_roots[] = { "/etc/ssl/certs", "/usr/lib/ssl" };
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    int ret = -1;

    if (opts == NULL)
        return -1;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        int wanted = 0;
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        for (size_t i = 0; i < SK_ARRAY_LEN(keys); i++)
            wanted |= strcmp(o->keyword, keys[i]) == 0;
        if (!wanted)
            continue;
        if (strcmp(o->keyword, "sslrootcert") == 0 && strcmp(o->val, "system") == 0) {
            for (size_t i = 0; i < SK_ARRAY_LEN(system_roots); i++)
                if (access(system_roots[i], R_OK) == 0 && add(system_roots[i], ctx) != 0)
                    goto out;
            continue;
        }
        if (access(o->val, R_OK) == 0 && add(o->val, ctx) != 0)
            goto out;
    }
    ret = 0;
out:
    PQconninfoFree(opts);
    return ret;
}

/* The n-th comma-separated item of list into out (cap); "" past the end. */
static void list_item(const char *list, unsigned n, char *out, size_t cap)
{
    const char *p = list;
    size_t len;
    out[0] = '\0';
    for (; n > 0 && p != NULL; n--) {
        p = strchr(p, ',');
        if (p != NULL)
            p++;
    }
    if (p == NULL)
        return;
    len = strcspn(p, ",");
    if (len >= cap)
        len = cap - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

static unsigned list_count(const char *list)
{
    unsigned n = 1;
    for (const char *p = list; *p != '\0'; p++)
        n += *p == ',';
    return n;
}

static int parse_port(const char *s, uint16_t *out)
{
    unsigned long v = 0;
    if (s[0] == '\0' || strlen(s) > 5)
        return -1;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static const char *conninfo_value(const PQconninfoOption *opts, const char *key)
{
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, key) == 0)
            return o->val != NULL ? o->val : "";
    return "";
}

int sk_store_pg_tcp_ports(const char *url, uint16_t *ports, unsigned cap, unsigned *n)
{
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    const char *hosts, *addrs, *port_list, *env = getenv("PGPORT");
    unsigned count;
    int ret = -1;

    *n = 0;
    if (opts == NULL)
        return -1;
    hosts = conninfo_value(opts, "host");
    addrs = conninfo_value(opts, "hostaddr");
    port_list = conninfo_value(opts, "port");
    count = list_count(hosts[0] != '\0' ? hosts : addrs);
    for (unsigned i = 0; i < count; i++) {
        char host[256], port[16];
        uint16_t v;
        int dup = 0;
        list_item(hosts, i, host, sizeof host);
        if (host[0] == '\0' && addrs[0] == '\0')
            continue; /* libpq's default: the server's unix socket directory */
        if (host[0] == '/' || host[0] == '@')
            continue; /* a unix socket directory (or abstract socket) */
        list_item(port_list, list_count(port_list) == 1 ? 0 : i, port, sizeof port);
        if (port[0] == '\0' && sk_strlcpy(port, sizeof port, env != NULL && env[0] != '\0' ? env : "5432") != 0)
            goto out;
        if (parse_port(port, &v) != 0)
            goto out;
        for (unsigned k = 0; k < *n; k++)
            dup |= ports[k] == v;
        if (dup)
            continue;
        if (*n == cap)
            goto out;
        ports[(*n)++] = v;
    }
    ret = 0;
out:
    if (ret != 0)
        *n = 0;
    PQconninfoFree(opts);
    return ret;
}
