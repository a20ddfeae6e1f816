/* ctl_audit.h — `sekishoctl audit ...` (keygen, show, export, verify).
 *
 * ctl_audit_main runs one audit subcommand. argv[0] is the subcommand name.
 * audit_dir and key_path come from the configuration ([audit] dir, key);
 * tz is [audit] timezone (NULL: Asia/Tokyo) and is used only to display
 * times and to interpret --since/--until without an explicit zone.
 * Returns the process exit code: 0 success, 1 refused / verification failed /
 * invalid input (one-line reason on stderr), 2 usage error.
 * It sets the TZ environment variable of the process (sekishoctl is short-lived).
 */
#ifndef CTL_AUDIT_H
#define CTL_AUDIT_H

int ctl_audit_main(const char *audit_dir, const char *key_path, const char *tz, int argc,
                   char **argv);

#endif
