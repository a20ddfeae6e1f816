/* audit_int.h — helpers shared by the writer, the reader and the key code.
 * Not installed; not part of the module's public contract. */
#ifndef SK_AUDIT_INT_H
#define SK_AUDIT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

#include <openssl/evp.h>

#include "sk_audit.h"

#define AUDIT_HASH_DOMAIN "sekisho-audit-v2\n"
#define AUDIT_SIG_DOMAIN  "sekisho-audit-checkpoint-v2\n"
#define AUDIT_MAC_DOMAIN  "sekisho-audit-mac-v2\n"
#define AUDIT_MACKEY_DOMAIN "sekisho-audit-mackey-v2\n"
/* `,"mac":"` + 64 hex + `"` */
#define AUDIT_MAC_PART_LEN 73
#define AUDIT_EPOCHS_FILE "epochs.jsonl"
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
/* The name of day's segment: node-named when node is set (format 3). */
int audit_segment_name(int64_t day, const char *node, char *out, size_t cap) SK_MUST_CHECK;
/* Sorted list of segment names in dir (malloc'd array of malloc'd strings). */
int audit_list_segments(const char *dir, char ***names, size_t *n) SK_MUST_CHECK;
void audit_free_list(char **names, size_t n);
/* 1 if path (which may not exist yet) lies inside dir (which must exist). */
int audit_path_inside(const char *path, const char *dir);
/* fsync the directory holding path. */
int audit_fsync_dir_of(const char *path) SK_MUST_CHECK;
/* The leading `{"seq":N,"ts":"...","ev":"` of a stored line: its seq and
 * whether its event is ev. 0 ok, -1 not a line of ours. */
int audit_line_head(const char *l, size_t n, uint64_t *seq, const char *ev, int *is_ev);

#include <stdio.h>
/* One line into buf without its newline. 1 line, 0 EOF, -1 too long or I/O
 * error; *torn = 1 when the line ended at EOF without a newline. */
int audit_read_line(FILE *f, char *buf, size_t cap, size_t *len, int *torn);

/* ---- the checkpoint's witness text (FORMAT.md, "Witness form") ---- */
typedef struct audit_note {
    char origin[SK_AUDIT_HASH_HEX + 1];
    uint64_t seq;
    char h[SK_AUDIT_HASH_HEX + 1];
    char ts[32];
    uint64_t epoch;
    char keyid[SK_AUDIT_HASH_HEX + 1];
    char sig[AUDIT_SIG_B64_LEN + 1];
} audit_note;
/* Text of a note into a malloc'd string. */
int audit_note_format(const audit_note *n, char **out) SK_MUST_CHECK;
int audit_note_parse(const char *text, size_t len, audit_note *n) SK_MUST_CHECK;
/* The note of a parsed checkpoint line. */
int audit_note_of(const char *line, const sk_audit_entry *e, audit_note *n) SK_MUST_CHECK;

/* ---- the writer's epoch key (audit_epoch.c) ---- */
typedef struct audit_ekey {
    EVP_PKEY *pk;
    uint8_t pub[32];
    char keyid[SK_AUDIT_HASH_HEX + 1];
    char origin[SK_AUDIT_HASH_HEX + 1];   /* key id of epoch 0: names the log */
    uint8_t mac_key[32];
    uint64_t epoch;
    int64_t start_ms;
    dev_t dev;
    ino_t ino;
} audit_ekey;
int audit_ekey_load(const char *path, audit_ekey *k) SK_MUST_CHECK;
int audit_ekey_generate(audit_ekey *k, uint64_t epoch, int64_t start_ms, const char *origin) SK_MUST_CHECK;
/* exclusive: O_EXCL create (keygen); else atomic replace. */
int audit_ekey_write(const audit_ekey *k, const char *path, int exclusive) SK_MUST_CHECK;
int audit_ekey_changed(const char *path, const audit_ekey *k);
int audit_ekey_sign(const audit_ekey *k, const uint8_t *msg, size_t n,
                    uint8_t sig[SK_AUDIT_SIG_LEN]) SK_MUST_CHECK;
int audit_ekey_mac(const audit_ekey *k, const char *l, size_t n,
                   char out[SK_AUDIT_HASH_HEX + 1]) SK_MUST_CHECK;
int audit_ekey_next_path(const char *path, char *out, size_t cap) SK_MUST_CHECK;
int audit_ekey_commit_next(const char *path) SK_MUST_CHECK;
void audit_ekey_free(audit_ekey *k);

/* Format an error into err (never fails; err may be NULL). */
void audit_err(char *err, size_t cap, const char *fmt, ...) SK_PRINTF(3, 4);

#endif
