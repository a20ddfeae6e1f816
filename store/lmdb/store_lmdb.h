/*
 * store_lmdb.h — the LMDB backend of the store (internal to store/).
 *
 * The embedded default for a single node ([store] backend = lmdb). One LMDB
 * environment lives in <state_dir>/db (directory mode 0700, files 0600) and
 * holds three named databases:
 *   "users"    key "<tenant>\0<id>"              value: serialized sk_user
 *   "sessions" key SHA-256(session token), 32 B  value: serialized sk_session
 *   "meta"     key "schema"                       value: schema version (u32 LE)
 *              key "pad"                          written by timing_pad
 *              key "v:<name>"                     a shared value (sk_store_value_*)
 * The gateway (authd) and sekishoctl / sekisho-ca may have the environment open
 * at the same time (LMDB's lock file arbitrates); one writer at a time, readers
 * never block.
 *
 * How the contracts of sk_store.h are met here:
 *  - Thread safety: the environment is opened with MDB_NOTLS, so read
 *    transactions are not tied to a thread; named-database handles are opened
 *    once at open. MAX_READERS (512) bounds live read transactions across all
 *    processes.
 *  - user_update_ex / user_delete_if run the caller's callback inside one write
 *    transaction, i.e. while holding LMDB's single writer lock: this is what
 *    makes the decision and the counter commit together.
 *  - Durability: mdb_txn_commit with the default flags (fsync) before return.
 *  - Generation: the environment's last committed transaction id
 *    (mdb_env_info), which every committing process advances.
 *  - Change notification: an inotify descriptor on <state_dir>/db/data.mdb
 *    (IN_MODIFY; every commit writes a meta page last).
 *  - Errors are logged with mdb_strerror.
 *  - The map size bounds the file (it grows lazily up to it);
 *    SK_STORE_MAP_SIZE by default, smaller in tests (sk_store_open_ex).
 */
#ifndef SK_STORE_LMDB_H
#define SK_STORE_LMDB_H

#include <stddef.h>
#include "sk_store_backend.h"

/* Default LMDB map size (the file grows lazily up to it). */
#define SK_STORE_MAP_SIZE ((size_t)1 << 30)

extern const sk_store_ops sk_store_lmdb_ops;

/* Open (creating if needed, unless readonly) <state_dir>/db. *impl gets the
 * backend handle for sk_store_lmdb_ops. SK_STORE_OK, SK_STORE_NOTFOUND (readonly
 * and no database yet; nothing created) or -1 (logged). */
int sk_store_lmdb_open(const char *state_dir, int readonly, size_t map_size, void **impl) SK_MUST_CHECK;

#endif
