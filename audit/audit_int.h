/* audit_int.h — helpers shared by the writer, the reader and the key code.
 * Not installed; not part of the module's public contract. */
#ifndef SK_AUDIT_INT_H
#define SK_AUDIT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "sk_audit.h"

#define AUDIT_HASH_DOMAIN "sekisho-audit-v1\n"
#define AUDIT_SIG_DOMAIN  "sekisho-audit-checkpoint-v1\n"
/* `,"h":"` + 64 hex + `"}` */
#define AUDIT_H_SUFFIX_LEN 72
/* `,"sig":"` + 86 base64url + `"` */
#define AUDIT_SIG_B64_LEN 86
#define AUDIT_SIG_PART_LEN (8 + AUDIT_SIG_B64_LEN + 1)
#define AUDIT_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_DAY_MS 86400000LL

/* h over L (see sk_audit.h) as lowercase hex. */
int audit_hash_hex(const char *l, size_t n, char out[SK_AUDIT_HASH_HEX + 1]) SK_MUST_CHECK;
/* Key id of a raw Ed25519 public key. */
int audit_keyid(const uint8_t pub[32], char out[SK_AUDIT_HASH_HEX + 1]) SK_MUST_CHECK;
/* "YYYY-MM-DDTHH:MM:SS.mmmZ" <-> ms. */
int audit_format_ts(int64_t ms, char out[32]) SK_MUST_CHECK;
int audit_parse_ts(const char *s, int64_t *ms) SK_MUST_CHECK;
/* Day number (days since 1970-01-01) of a segment name, -1 if not one. */
int64_t audit_segment_day(const char *name);
int audit_segment_name(int64_t day, char out[32]) SK_MUST_CHECK;
/* Sorted list of segment names in dir (malloc'd array of malloc'd strings). */
int audit_list_segments(const char *dir, char ***names, size_t *n) SK_MUST_CHECK;
void audit_free_list(char **names, size_t n);
/* 1 if path (which may not exist yet) lies inside dir (which must exist). */
int audit_path_inside(const char *path, const char *dir);
/* Format an error into err (never fails; err may be NULL). */
void audit_err(char *err, size_t cap, const char *fmt, ...) SK_PRINTF(3, 4);

#endif
