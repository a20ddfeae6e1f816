/*
 * store_pg.h — the PostgreSQL backend of the store (internal to store/).
 *
 * For several gateway nodes sharing one database ([store] backend = postgresql).
 * [store] url is a libpq connection string (keyword=value pairs or a
 * postgresql:// URI); TLS is libpq's own: sslmode=verify-full and
 * sslrootcert=/path in the url are passed through untouched. The password comes
 * only from [store] password_file (first line), read once at open and kept in
 * the handle for reconnections (wiped at close; libpq holds its own copy per
 * connection); a url carrying a password is refused.
 *
 * Tables (schema version SK_STORE_PG_SCHEMA, created by sk_store_pg_migrate,
 * i.e. `sekishoctl store migrate`; the handle refuses to open a schema that is
 * older or newer than this build's):
 *   sekisho_schema   the version (one row)
 *   sekisho_users    (tenant, id) key, record bytea: the versioned user record
 *                    of sk_store.h's codec; unique (tenant, lower(id)) enforces
 *                    the case-variant rule of user_put_new across nodes
 *   sekisho_sessions hash bytea (SHA-256 of the token) key, plain columns
 *   sekisho_values   the shared values (sk_store_value_*)
 *   sekisho_pad      rows written by timing_pad
 * A trigger on every table calls pg_notify('sekisho_store', '') for each
 * changed row (collapsed to one notification per transaction by PostgreSQL).
 *
 * How the contracts of sk_store.h are met here:
 *  - Thread safety: a pool of connections (libpq connections are not
 *    thread-safe), one checked out per operation; a caller waits for a free one.
 *    Connections are made on first use and remade after a failure.
 *  - user_update_ex / user_delete_if / value_update: one transaction with
 *    SELECT ... FOR UPDATE (the row lock serialises writers on every node), the
 *    callback decides inside it, COMMIT before returning. A value that does not
 *    exist yet is created with INSERT ... ON CONFLICT DO NOTHING so two nodes
 *    creating it at once both end up serialised on the one row.
 *  - Durability: COMMIT returns once PostgreSQL reports it (synchronous_commit
 *    as the server is configured; on by default).
 *  - Failures: connect_timeout 3 s, statement_timeout 5 s, and every wait for
 *    an answer is bounded on the client side too (SK_STORE_PG_OP_TIMEOUT_MS), so an
 *    unreachable database makes every op return -1 within seconds; after a failed
 *    connect, ops fail at once for a second rather than each waiting for
 *    another timeout. A broken connection is dropped and remade on the next
 *    call: the handle recovers by itself when the database is back. Repeated
 *    identical errors are logged once per 10 s.
 *  - Generation: a background thread (started by the first operation or
 *    generation() call after open; never by open or change_fd, so a caller
 *    may sandbox itself in between) holds one LISTEN connection; every notification, and
 *    every (re)connection of that thread (notifications may have been missed),
 *    advances an in-memory counter, and this handle's own commits advance it
 *    at once. While that connection is down generation() reads 0 ("treat as
 *    changed"). change_fd gives each caller its own socket, written on every
 *    advance.
 *  - Records read from the database go through the record codec (users) or
 *    explicit checks of every column (sessions); anything out of range is
 *    refused with -1 and logged.
 *
 * A process that confines itself after opening a handle must still let libpq
 * (re)connect, since connections are remade after any failure: socket()
 * (AF_INET/AF_INET6, AF_UNIX for a socket-directory host), connect,
 * setsockopt/getsockopt/getsockname/getpeername, sendto/recvfrom, poll, a TCP
 * connect to the database's port (Landlock ABI 4), read access to what libpq
 * and glibc's resolver read (/etc/hosts, /etc/resolv.conf, /etc/nsswitch.conf,
 * /etc/passwd when the url names no user, sslrootcert/sslcert/sslkey files) and
 * one more thread (the LISTEN thread starts at the first operation after open).
 */
#ifndef SK_STORE_PG_H
#define SK_STORE_PG_H

#include <stddef.h>
#include "sk_store_backend.h"

#define SK_STORE_PG_SCHEMA 1u          /* schema version this build reads and writes */
#define SK_STORE_PG_POOL_DEFAULT 4
#define SK_STORE_PG_POOL_MAX 64
#define SK_STORE_PG_OP_TIMEOUT_MS 8000 /* client-side bound on one statement */

extern const sk_store_ops sk_store_pg_ops;

/* Open a handle on the database url names (password from password_file, "" or
 * NULL = none), with at most pool_size connections (0 = the default). Checks
 * the schema version. SK_STORE_OK, SK_STORE_NOTFOUND (readonly and no schema
 * yet: nothing created), or -1 with err saying why in one line (also logged). */
int sk_store_pg_open(const char *url, const char *password_file, int readonly, int pool_size,
                     void **impl, char *err, size_t errcap) SK_MUST_CHECK;

/* Apply the migrations the database lacks, in one transaction under an advisory
 * lock (several nodes migrating at once are safe). *from gets the version found,
 * *to the version now in place (equal: nothing to do). 0, or -1 with err. */
int sk_store_pg_migrate(const char *url, const char *password_file, unsigned *from, unsigned *to,
                        char *err, size_t errcap) SK_MUST_CHECK;

/* The files libpq may read when it (re)connects with this url, each passed to
 * add when it exists: sslrootcert (or the system's certificate directories for
 * sslrootcert=system), sslcert, sslkey, sslcrl, sslcrldir, passfile. 0, or -1
 * when the url does not parse or add failed. */
int sk_store_pg_client_files(const char *url, int (*add)(const char *path, void *ctx), void *ctx) SK_MUST_CHECK;

/* The TCP ports libpq connects to for this url: one per host that is not a unix
 * socket directory, from "port" (one for all, or one per host), else $PGPORT,
 * else 5432; duplicates once. *n = 0 when every host is a socket directory.
 * 0, or -1 when the url does not parse, a port is invalid or there are more
 * than cap. */
int sk_store_pg_tcp_ports(const char *url, uint16_t *ports, unsigned cap, unsigned *n) SK_MUST_CHECK;

#endif
