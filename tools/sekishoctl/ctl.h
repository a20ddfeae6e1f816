/*
 * ctl.h — shared pieces of sekishoctl.
 *
 * Every group handler gets the loaded configuration and argv starting at the
 * subcommand (argv[0] = "add", "list", ...), and returns the process exit code:
 *   CTL_OK (0)      success
 *   CTL_REFUSED (1) refused or invalid input; a one-line reason went to stderr,
 *                   prefixed "sekishoctl: "
 *   CTL_USAGE (2)   usage error; the group's usage went to stderr
 * Secrets are read from files or the terminal, never from argv, and wiped after use.
 *
 * Audit (ctl_adminlog.c, entries described in ca/sk_admin_audit.h). Every
 * command that changes state opens the [audit] log of the configuration
 * (ctl_log_open) before it writes anything, and refuses (CTL_REFUSED, one
 * line) when that fails: audit before act. The log is created like the
 * gateway creates it: when neither [audit] key nor KEY.pub exists, the key
 * pair is generated (a notice on stdout names KEY.pub). After the change, and
 * before anything reports success, one durable "admin.change" entry is
 * appended (ctl_log_change): details.command ("user.add", ...), details.user,
 * details.result ("ok", "unchanged", "refused") and the command's non-secret
 * parameters — never a password, hash, TOTP secret or otpauth URI.
 * Read-only commands (show, list, audit show/export/verify) never open it.
 */
#ifndef CTL_H
#define CTL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "sk_conf.h"
#include "sk_store.h"
#include "sk_util.h"

enum { CTL_OK = 0, CTL_REFUSED = 1, CTL_USAGE = 2 };
/* Internal only, never an exit code: ctl_resolve_user found no such user. */
#define CTL_NOTFOUND 100

/* "sekishoctl: <message>\n" on stderr. */
void ctl_err(const char *fmt, ...) SK_PRINTF(1, 2);

/* Seconds since the epoch (UTC). */
int64_t ctl_now(void);
/* "2024-05-01T09:30:00Z", or "never" for 0. out needs 32 bytes. */
void ctl_time_str(int64_t t, char *out, size_t cap);

typedef struct sk_adm_audit sk_adm_audit;
typedef struct sk_audit_kv sk_audit_kv;

/* Open the audit log for a state change: CTL_OK, or CTL_REFUSED after printing
 * "sekishoctl: audit log unavailable: <why>; nothing was changed". */
int ctl_log_open(const sk_conf *conf, sk_adm_audit **out);
/* Append the admin.change entry of a command (durable). CTL_OK, or
 * CTL_REFUSED after printing why (the state change already happened). */
int ctl_log_change(sk_adm_audit *log, const char *command, const char *tenant,
                   const sk_audit_kv *kv, size_t n);
/* Same for another event (sweep steps); actor NULL = the operator. */
int ctl_log_event(sk_adm_audit *log, const char *event, const char *actor, const char *tenant,
                  const sk_audit_kv *kv, size_t n);
/* Sign and close; NULL ok. */
void ctl_log_close(sk_adm_audit *log);

/* Open the store the configuration names ([store] backend): SK_STORE_OK,
 * SK_STORE_NOTFOUND (read-only and no store yet; nothing printed), or -1 after
 * printing "cannot open the WHAT database: why". */
int ctl_store_open(const sk_conf *conf, int readonly, sk_store **s, const char *what);

/* ---- accounts (ctl_account.c) ---- */
/* 1 if e is a well-formed address in a conservative character set. */
int ctl_valid_email(const char *e);
/* ctl_valid_email plus [notify] allowed_domains; CTL_OK or CTL_REFUSED (said why). */
int ctl_check_email(const sk_conf *conf, const char *email);
/* "ID@TENANT" (TENANT a valid tenant name, ID a valid user ID) -> 1 and both
 * parts; anything else -> 0 (arg is a plain ID). */
int ctl_split_id(const char *arg, char id[SK_USER_ID_MAX + 1], char tenant[SK_TENANT_MAX + 1]);
/* Which account arg names (see ctl_account.c): CTL_OK with id and tenant filled,
 * CTL_NOTFOUND (nothing printed; id filled, tenant "") when no tenant holds the
 * ID, or CTL_REFUSED after one line (ambiguous, invalid, unreadable). tenant_opt is
 * --tenant (NULL when not given). */
int ctl_resolve_user(const sk_conf *conf, const char *arg, const char *tenant_opt,
                     char id[SK_USER_ID_MAX + 1], char tenant[SK_TENANT_MAX + 1]);
/* `user modify`: role and/or e-mail ("" clears it); a role change ends the
 * user's sessions in the same transaction. Exit code. */
int ctl_user_modify(const sk_conf *conf, const char *id, const char *tenant, const char *role,
                    const char *email);

/* `user notify`: mail the account notice (ID, tenant, portal, how to import the
 * certificate; never a password) to the user's address. Exit code. */
int ctl_user_notify(const sk_conf *conf, const char *id, const char *tenant);
/* Mail an activation link (lifetime seconds) with which the user chooses the first password. */
int ctl_user_invite(const sk_conf *conf, const char *id, const char *tenant, int64_t lifetime);

int ctl_backup_main(const sk_conf *conf, int argc, char **argv);
void ctl_backup_usage(void);
void ctl_backup_usage_to(FILE *f);
int ctl_restore_main(const sk_conf *conf, int argc, char **argv);
void ctl_restore_usage(void);
void ctl_restore_usage_to(FILE *f);

int ctl_user_main(const sk_conf *conf, int argc, char **argv);
void ctl_user_usage(void);
/* The usage lines of a group on f (the *_usage() forms write to stderr). */
void ctl_user_usage_to(FILE *f);
void ctl_session_usage_to(FILE *f);
void ctl_sweep_usage_to(FILE *f);
int ctl_session_main(const sk_conf *conf, int argc, char **argv);
void ctl_session_usage(void);
int ctl_sweep_main(const sk_conf *conf, int argc, char **argv);
void ctl_sweep_usage(void);

/* ---- store copy (ctl_store_copy.c): `store copy --to postgresql` ---- */
int ctl_store_copy_main(const sk_conf *conf, int argc, char **argv);
void ctl_store_copy_usage_to(FILE *f);

#endif
