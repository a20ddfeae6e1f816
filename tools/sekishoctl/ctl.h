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
 */
#ifndef CTL_H
#define CTL_H

#include <stddef.h>
#include <stdint.h>

#include "sk_conf.h"
#include "sk_util.h"

enum { CTL_OK = 0, CTL_REFUSED = 1, CTL_USAGE = 2 };

/* "sekishoctl: <message>\n" on stderr. */
void ctl_err(const char *fmt, ...) SK_PRINTF(1, 2);

/* Seconds since the epoch (UTC). */
int64_t ctl_now(void);
/* "2024-05-01T09:30:00Z", or "never" for 0. out needs 32 bytes. */
void ctl_time_str(int64_t t, char *out, size_t cap);

int ctl_user_main(const sk_conf *conf, int argc, char **argv);
void ctl_user_usage(void);
int ctl_session_main(const sk_conf *conf, int argc, char **argv);
void ctl_session_usage(void);
int ctl_sweep_main(const sk_conf *conf, int argc, char **argv);
void ctl_sweep_usage(void);

#endif
