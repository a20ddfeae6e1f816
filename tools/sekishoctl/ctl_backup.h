/*
 * ctl_backup.h — backups of a gateway's state (sekishoctl backup|restore).
 *
 * A backup is a directory:
 *   db/data.mdb      a consistent hot copy of the LMDB store (mdb_env_copy2, compacted)
 *   audit/...        the audit log files ([audit] dir, without its lock file); restore
 *                    puts them back only when the live log is missing or fails to verify
 *   totp.key         the key sealing TOTP secrets (when the state has one)
 *   audit.key.pub    the audit public key (when present), to verify the copy anywhere
 *   MANIFEST         "sekisho-backup 1", "created <UTC>", "source <state dir>", then one
 *                    "sha256 <hex> <bytes> <relative path>" line per file above
 * It is written as DIR.partial and renamed to DIR only when complete, so a DIR that
 * exists is a whole backup. The audit signing key is not copied: verification needs
 * only the public key, and a signing key belongs on one host.
 */
#ifndef CTL_BACKUP_H
#define CTL_BACKUP_H

#include "ctl.h"

#define CTL_BACKUP_MAX_FILES 4096

/* Check DIR against its MANIFEST (every file present with its size and digest, no
 * file unlisted) and that db/data.mdb opens as an LMDB store. CTL_OK, or
 * CTL_REFUSED after one line saying what is wrong. *users (may be NULL) gets the
 * number of user records. */
int ctl_backup_verify_dir(const char *dir, long *users, size_t *files);

/* Copy one regular file (0600, fsynced); 0 or -1 with errno. */
int ctl_copy_file(const char *from, const char *to);

#endif
