/*
 * sk_util.h — the small toolbox every Sekisho module below the gateway uses.
 *
 * Contracts:
 *  - Every function that can fail returns int: 0 on success, -1 on failure, and is
 *    marked SK_MUST_CHECK. Truncation is always a failure, never silent.
 *  - Functions never abort on bad input; they return -1 and leave outputs either
 *    untouched or NUL-terminated empty strings (documented per function).
 *  - Nothing here logs secrets: sk_log callers must not pass them either.
 */
#ifndef SK_UTIL_H
#define SK_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SK_MUST_CHECK __attribute__((warn_unused_result))
#define SK_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define SK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- bounded strings --------------------------------------------------- */

/* Copy src into dst (capacity cap incl. NUL). -1 if it does not fit (dst then ""). */
int sk_strlcpy(char *dst, size_t cap, const char *src) SK_MUST_CHECK;
/* snprintf that treats truncation and encoding errors as failure (dst then ""). */
int sk_snprintf(char *dst, size_t cap, const char *fmt, ...) SK_PRINTF(3, 4) SK_MUST_CHECK;

/* An append buffer over caller memory. Overflow is sticky: once an append does not
 * fit, the buffer is marked failed and sk_buf_finish() returns -1. The content is
 * always NUL-terminated. */
typedef struct sk_buf {
    char *data;
    size_t len;
    size_t cap;
    int failed;
} sk_buf;

void sk_buf_init(sk_buf *b, char *mem, size_t cap);
void sk_buf_add(sk_buf *b, const void *p, size_t n);
void sk_buf_puts(sk_buf *b, const char *s);
void sk_buf_printf(sk_buf *b, const char *fmt, ...) SK_PRINTF(2, 3);
/* Append s with &, <, >, ", ' escaped for HTML text and attribute values. */
void sk_buf_html(sk_buf *b, const char *s);
int sk_buf_finish(const sk_buf *b) SK_MUST_CHECK;

/* ---- numbers and durations --------------------------------------------- */

/* Decimal unsigned integer within [min, max]; the whole string must be consumed. */
int sk_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) SK_MUST_CHECK;
/* "30s", "30m", "12h", "180d" or a bare number of seconds -> seconds (> 0 unless "0"). */
int sk_parse_duration(const char *s, int64_t *seconds) SK_MUST_CHECK;

/* ---- encodings --------------------------------------------------------- */

/* Lowercase hex; out must hold 2*n+1 bytes. */
void sk_hex_encode(const uint8_t *in, size_t n, char *out);
/* A listening TCP socket (close-on-exec, SO_REUSEADDR) on "HOST:PORT", "[V6]:PORT"
 * or ":PORT" (all addresses). 0 with *out set, or -1 (errno from the failing call). */
int sk_tcp_listen(const char *spec, int backlog, int *out) SK_MUST_CHECK;
/* Is the system clock synchronised (NTP/PTP discipline, adjtimex(2) read-only)?
 * 1 yes, 0 no (TIME_ERROR or STA_UNSYNC), -1 the kernel would not say. TOTP
 * windows, lockout and idle timeouts and audit times all depend on it. */
int sk_clock_synced(void);
/* The value of one hex digit (either case), -1 for anything else. */
int sk_hex_digit_value(char c);
/* Exact-length hex decode (upper or lower case); -1 on bad digit or length. */
int sk_hex_decode(const char *in, uint8_t *out, size_t n) SK_MUST_CHECK;
/* base64url without padding; out must hold SK_B64URL_LEN(n)+1 bytes. */
#define SK_B64URL_LEN(n) (((n) * 4 + 2) / 3)
void sk_b64url_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly n bytes from unpadded base64url; -1 on any deviation. */
int sk_b64url_decode(const char *in, size_t inlen, uint8_t *out, size_t n) SK_MUST_CHECK;

/* ---- secrets and randomness -------------------------------------------- */

/* Wipe memory the compiler may not optimise away (OPENSSL_cleanse). */
void sk_wipe(void *p, size_t n);
/* Constant-time equality of two equal-length buffers: 1 equal, 0 different. */
int sk_secret_equal(const void *a, const void *b, size_t n);
/* SHA-256 for hot paths (a session cookie per request): OpenSSL 3's one-shot
 * SHA256() looks the algorithm up in the provider store on every call; this
 * fetches it once per process. 0 or -1. */
int sk_sha256(const void *data, size_t len, uint8_t out[32]) SK_MUST_CHECK;
/* CSPRNG (OpenSSL RAND_bytes). */
int sk_random(void *out, size_t n) SK_MUST_CHECK;
/* Read a secret from a file: the first line without its trailing CR/LF. The file
 * must be a regular file no larger than cap-1 bytes of content; out is
 * NUL-terminated; *len gets the length. On failure out is wiped. */
int sk_read_secret_file(const char *path, char *out, size_t cap, size_t *len) SK_MUST_CHECK;
/* Read a secret line from the terminal with echo off (prompt on stderr). */
int sk_read_secret_tty(const char *prompt, char *out, size_t cap, size_t *len) SK_MUST_CHECK;

/* ---- files ------------------------------------------------------------- */

/* Write all n bytes to fd, retrying on EINTR and short writes. -1 on any error
 * (errno set) or a zero-length write. */
int sk_write_all(int fd, const void *data, size_t n) SK_MUST_CHECK;
/* Write path atomically: temp file in the same directory, fsync, rename, fsync dir.
 * Either the old content or the new one survives a crash, never a mix. */
int sk_write_file_atomic(const char *path, const void *data, size_t n, mode_t mode) SK_MUST_CHECK;
/* Read a whole regular file of at most max bytes into a malloc'd, NUL-terminated
 * buffer (*out, *len). Caller frees. */
int sk_read_file(const char *path, size_t max, char **out, size_t *len) SK_MUST_CHECK;
/* mkdir -p with the given mode for created components. */
int sk_mkdir_p(const char *path, mode_t mode) SK_MUST_CHECK;

/* ---- logging ----------------------------------------------------------- */

enum sk_log_level { SK_LOG_ERR = 0, SK_LOG_WARN, SK_LOG_INFO, SK_LOG_DEBUG };
void sk_log_set_level(enum sk_log_level lvl);
/* Read the environment once (sk_log does it before its first line; tests call
 * it again after changing it):
 *   JOURNAL_STREAM=DEV:INO naming stderr (systemd) -> every line starts with the
 *     syslog priority "<3>" error, "<4>" warn, "<6>" info, "<7>" debug, and carries
 *     no time or pid (the journal has both);
 *   SEKISHO_LOG_FORMAT=json -> one JSON object per line:
 *     {"level":"warn","time":"2024-05-01T09:30:00Z","pid":42,"msg":"..."}
 *     (time and pid left out under journald). */
void sk_log_setup(void);
/* One line on stderr: "<UTC time> sekisho[<pid>] <level>: <message>" (or as
 * sk_log_setup decided). Control characters in the message are escaped so a
 * client string cannot forge lines. */
void sk_log(enum sk_log_level lvl, const char *fmt, ...) SK_PRINTF(2, 3);

#endif
