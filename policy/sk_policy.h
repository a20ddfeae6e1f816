/*
 * sk_policy.h — Sekisho's security policy core.
 *
 * Every decision the gateway, auth and sekishoctl take about accounts, sessions,
 * passwords, addresses and paths is made here, by small functions that are easy
 * to test exhaustively.
 *
 * Purity contract (checked by the test "policy_purity"):
 *  - no I/O, no allocation, no global mutable state, no locale, no clock:
 *    the current time is always a parameter (int64_t seconds since the epoch, UTC);
 *  - the only library calls are the mem and str functions of <string.h>;
 *  - every function is reentrant; state lives in caller-provided structs, which
 *    the caller persists (LMDB) and serialises per account.
 *
 * Time arithmetic saturates: a huge or hostile timestamp never wraps around and
 * never turns an expired answer into a valid one.
 *
 * Functions whose result must be looked at are marked SK_POLICY_MUST_CHECK.
 * Inputs given as (pointer, length) need not be NUL-terminated, and a NUL byte
 * inside them is an error, never a terminator.
 */
#ifndef SK_POLICY_H
#define SK_POLICY_H

#include <stddef.h>
#include <stdint.h>

#define SK_POLICY_MUST_CHECK __attribute__((warn_unused_result))

#define SK_POLICY_MINUTE INT64_C(60)
#define SK_POLICY_HOUR (60 * SK_POLICY_MINUTE)
#define SK_POLICY_DAY (24 * SK_POLICY_HOUR)

/* ======================================================================== */
/* 1. Configuration                                                          */
/* ======================================================================== */

/* Ring capacity of sk_policy_burst: burst_threshold may not exceed it. */
#define SK_POLICY_BURST_CAP 256
/* Hard ceiling for password_max_length (bounds the bytes handed to argon2). */
#define SK_POLICY_PASSWORD_HARD_MAX 1024
/* Longest duration any setting accepts: 100 years. */
#define SK_POLICY_DURATION_MAX (INT64_C(36500) * SK_POLICY_DAY)

typedef struct sk_policy_config {
    uint32_t lockout_threshold;     /* consecutive failures that lock: 5 */
    int64_t lockout_duration;       /* seconds a timed lock lasts: 30 min */
    int64_t idle_timeout;           /* seconds without a request: 60 min */
    int64_t absolute_timeout;       /* seconds since login: 12 h */
    int64_t dormant_notify_after;   /* no login for this long -> reminder: 180 d */
    int64_t dormant_lock_after;     /* reminder + this long -> locked: 30 d */
    int64_t dormant_delete_after;   /* lock + this long -> general account deleted: 90 d */
    uint32_t password_min_length;   /* code points: 8 */
    uint32_t password_max_length;   /* code points: 128 (must be >= 64) */
    int password_require_upper;     /* non-zero: needs A-Z (default 1) */
    int password_require_lower;     /* non-zero: needs a-z (default 1) */
    int password_require_digit;     /* non-zero: needs 0-9 (default 1) */
    uint32_t burst_threshold;       /* failures across all accounts: 20 */
    int64_t burst_window;           /* ... within this many seconds: 5 min */
    int64_t totp_step;              /* RFC 6238 time step: 30 s */
    uint32_t totp_window;           /* steps accepted either side of now: 1 */
} sk_policy_config;

/* Fill *c with the defaults listed above (DESIGN.md "Required behaviour"). */
void sk_policy_defaults(sk_policy_config *c);

/*
 * Check that *c is usable and consistent. Returns 0 when it is; otherwise -1
 * and *reason (when reason != NULL) points to a static English sentence naming
 * the offending key, e.g. "password_min_length must be at least 8".
 * Rules:
 *   lockout_threshold 1..100 (NIST SP 800-63B allows at most 100);
 *   every duration 1..SK_POLICY_DURATION_MAX seconds;
 *   idle_timeout <= absolute_timeout;
 *   password_min_length >= 8, password_max_length 20..SK_POLICY_PASSWORD_HARD_MAX (NIST SP 800-63B: >= 64),
 *   password_min_length <= password_max_length;
 *   burst_threshold 1..SK_POLICY_BURST_CAP;
 *   totp_step 1..300, totp_window 0..10.
 * Every sk_policy_* function taking a config assumes it passed this check.
 */
int sk_policy_config_validate(const sk_policy_config *c, const char **reason) SK_POLICY_MUST_CHECK;

/* ======================================================================== */
/* 2. Account lockout                                                        */
/* ======================================================================== */

/*
 * Per-account state. Zero-initialised (or sk_policy_lockout_init) = clean.
 * A timed lock is active while now < locked_until: it ends exactly at
 * locked_until. An operator lock has no end; only sk_policy_lockout_unlock
 * (an operator action) lifts it.
 */
typedef struct sk_policy_lockout {
    uint32_t failures;          /* consecutive failures since the last success/unlock */
    int64_t locked_until;       /* 0 = no timed lock */
    int operator_locked;        /* non-zero = indefinite lock */
} sk_policy_lockout;

typedef enum sk_policy_lock_state {
    SK_POLICY_LOCK_NONE = 0,    /* the account may attempt a login */
    SK_POLICY_LOCK_TIMED,       /* locked by failures until locked_until */
    SK_POLICY_LOCK_OPERATOR,    /* locked until an operator unlocks (also dormancy) */
} sk_policy_lock_state;

void sk_policy_lockout_init(sk_policy_lockout *s);

/* The lock in force at now. An operator lock wins over a timed one. */
sk_policy_lock_state sk_policy_lockout_state(const sk_policy_lockout *s, int64_t now) SK_POLICY_MUST_CHECK;

/* 1 when the account may attempt a login at now, 0 when it is locked. */
int sk_policy_lockout_may_attempt(const sk_policy_lockout *s, int64_t now) SK_POLICY_MUST_CHECK;

/*
 * Record one failed attempt (wrong password or wrong TOTP code) at now.
 * Returns 1 exactly when this failure locked the account (the
 * lockout_threshold-th consecutive failure: with 5, the 5th locks, the 4th does
 * not); then locked_until = now + lockout_duration. Returns 0 otherwise.
 * A timed lock that has expired is cleared first, so the account gets a fresh
 * series of attempts. A failure recorded while a lock is in force changes
 * nothing and returns 0: a lock is never extended by further guessing.
 */
int sk_policy_lockout_record_failure(const sk_policy_config *cfg, sk_policy_lockout *s,
                                     int64_t now) SK_POLICY_MUST_CHECK;

/* A successful login: clears the failure count and any timed lock. An operator
 * lock stays (callers never let a locked account reach a success). */
void sk_policy_lockout_record_success(sk_policy_lockout *s);

/* Operator actions: lock indefinitely; unlock clears everything. */
void sk_policy_lockout_operator_lock(sk_policy_lockout *s);
void sk_policy_lockout_unlock(sk_policy_lockout *s);

/* ======================================================================== */
/* 3. Sessions                                                               */
/* ======================================================================== */

typedef enum sk_policy_session_verdict {
    SK_POLICY_SESSION_OK = 0,
    SK_POLICY_SESSION_IDLE_EXPIRED,
    SK_POLICY_SESSION_ABSOLUTE_EXPIRED,
    SK_POLICY_SESSION_INVALID,      /* corrupt record: last_activity < created */
} sk_policy_session_verdict;

/*
 * Is a session created at `created` and last used at `last_activity` still
 * valid at now? Both limits are exclusive ends:
 *   idle:     valid while now - last_activity <  idle_timeout
 *             (60 min: 59:59 of silence is OK, 60:00 is expired);
 *   absolute: valid while now - created       <  absolute_timeout.
 * When both have passed the verdict is ABSOLUTE_EXPIRED. A clock that stepped
 * back (now earlier than last_activity) counts as no time elapsed; it cannot
 * extend a session beyond the limits measured from the recorded times.
 * On OK the caller stores now as the new last_activity.
 */
sk_policy_session_verdict sk_policy_session_check(const sk_policy_config *cfg, int64_t created,
                                                  int64_t last_activity, int64_t now) SK_POLICY_MUST_CHECK;

/* First instant at which the session stops being valid (for cookie Max-Age and
 * sweeping): min(last_activity + idle_timeout, created + absolute_timeout). */
int64_t sk_policy_session_expires_at(const sk_policy_config *cfg, int64_t created,
                                     int64_t last_activity) SK_POLICY_MUST_CHECK;

/* ======================================================================== */
/* 7a. Roles (used by dormancy and path rules)                               */
/* ======================================================================== */

#define SK_POLICY_ROLE_ADMIN   (1u << 0)
#define SK_POLICY_ROLE_GENERAL (1u << 1)
#define SK_POLICY_ROLE_ALL     (SK_POLICY_ROLE_ADMIN | SK_POLICY_ROLE_GENERAL)

/* "admin" -> SK_POLICY_ROLE_ADMIN, "general" -> SK_POLICY_ROLE_GENERAL (exact,
 * lower case). Returns 0, or -1 for anything else (*mask untouched). */
int sk_policy_role_parse(const char *name, size_t len, unsigned *mask) SK_POLICY_MUST_CHECK;
/* Name of a single role bit; NULL for anything that is not exactly one known bit. */
const char *sk_policy_role_name(unsigned bit);

/* ======================================================================== */
/* 4. Dormancy                                                               */
/* ======================================================================== */

typedef struct sk_policy_dormancy {
    int64_t last_login;     /* last successful login, or creation time if never */
    int64_t notified_at;    /* when the dormancy reminder was sent; 0 = not sent */
    int64_t locked_at;      /* when the dormancy lock was applied; 0 = not locked */
    unsigned roles;         /* SK_POLICY_ROLE_* mask */
} sk_policy_dormancy;

typedef enum sk_policy_dormancy_action {
    SK_POLICY_DORMANCY_NONE = 0,
    SK_POLICY_DORMANCY_NOTIFY,      /* send the reminder, then set notified_at = now */
    SK_POLICY_DORMANCY_LOCK,        /* lock (operator-style), then set locked_at = now */
    SK_POLICY_DORMANCY_DELETE,      /* delete the account (general accounts only) */
} sk_policy_dormancy_action;

/*
 * The next dormancy action due at now. Schedule (defaults):
 *   NOTIFY when now >= last_login + dormant_notify_after              (day 180)
 *   LOCK   when notified and now >= notified_at + dormant_lock_after  (day 210)
 *          and now >= last_login + notify_after + lock_after
 *   DELETE when locked and now >= locked_at + dormant_delete_after    (day 300)
 *          and the account holds SK_POLICY_ROLE_GENERAL but not
 *          SK_POLICY_ROLE_ADMIN. Admin accounts (and accounts with no role)
 *          stay locked until an operator acts.
 * Idempotent: an action already recorded is never returned again. The steps are
 * taken in order: an account the sweep first sees at day 250 is notified, not
 * locked, and gets its full dormant_lock_after of warning from then.
 * A notified_at or locked_at earlier than last_login belongs to a previous
 * dormant period (the user came back) and counts as not set, so callers need
 * not clear them on login.
 */
sk_policy_dormancy_action sk_policy_dormancy_next(const sk_policy_config *cfg,
                                                  const sk_policy_dormancy *d,
                                                  int64_t now) SK_POLICY_MUST_CHECK;

/* ======================================================================== */
/* 5. Password rules                                                         */
/* ======================================================================== */

typedef enum sk_policy_pw_result {
    SK_POLICY_PW_OK = 0,
    SK_POLICY_PW_TOO_SHORT,
    SK_POLICY_PW_TOO_LONG,
    SK_POLICY_PW_NO_UPPER,
    SK_POLICY_PW_NO_LOWER,
    SK_POLICY_PW_NO_DIGIT,
    SK_POLICY_PW_BLOCKLISTED,
    SK_POLICY_PW_CONTAINS_USER_ID,
    SK_POLICY_PW_INVALID_BYTES,
    SK_POLICY_PW_RESULT_COUNT_
} sk_policy_pw_result;

typedef enum sk_policy_lang {
    SK_POLICY_LANG_EN = 0,
    SK_POLICY_LANG_JA,
    SK_POLICY_LANG_COUNT_
} sk_policy_lang;

/* The shortest user ID that CONTAINS_USER_ID looks for: shorter IDs would
 * reject ordinary passwords ("a" occurs everywhere). */
#define SK_POLICY_PW_USER_ID_MIN 3

/*
 * Check a proposed password (len bytes of UTF-8) for user_id (user_id_len
 * bytes; may be NULL/0). Checks run in this order and the first failure is
 * returned:
 *   INVALID_BYTES  not valid UTF-8 (overlong, surrogate, > U+10FFFF, truncated)
 *                  or a control character: U+0000-U+001F, U+007F-U+009F.
 *                  Space and all other characters are allowed.
 *   TOO_SHORT / TOO_LONG   length in Unicode code points, not bytes, against
 *                  password_min_length / password_max_length (both inclusive).
 *   NO_UPPER / NO_LOWER / NO_DIGIT   when required: ASCII A-Z / a-z / 0-9
 *                  (other scripts have no case; they count toward length only).
 *   CONTAINS_USER_ID   user_id (>= SK_POLICY_PW_USER_ID_MIN bytes) occurs in
 *                  the password, ASCII case-insensitively.
 *   BLOCKLISTED    the password, ASCII-lowercased, is in the embedded list of
 *                  common passwords.
 */
sk_policy_pw_result sk_policy_password_check(const sk_policy_config *cfg, const char *pw, size_t len,
                                             const char *user_id, size_t user_id_len) SK_POLICY_MUST_CHECK;

/* Static, NUL-terminated, UTF-8 message for a result; never NULL (an unknown
 * result or language gives a generic message). Suitable for the password page. */
const char *sk_policy_password_message(sk_policy_pw_result r, sk_policy_lang lang);

/* 1 when pw (ASCII case-insensitively) is in the common-password list. */
int sk_policy_password_is_common(const char *pw, size_t len) SK_POLICY_MUST_CHECK;
/* The embedded list (lower case, strictly ascending byte order), for tests. */
size_t sk_policy_blocklist_count(void);
const char *sk_policy_blocklist_at(size_t i);

/* Number of code points in valid UTF-8, or -1 when s is not valid UTF-8. */
int64_t sk_policy_utf8_length(const char *s, size_t len) SK_POLICY_MUST_CHECK;

/* ======================================================================== */
/* 6. IP addresses, CIDR prefixes and allowlists                             */
/* ======================================================================== */

#define SK_POLICY_AF_INET4 4
#define SK_POLICY_AF_INET6 6
/* Longest text the formatters write, including the NUL. */
#define SK_POLICY_ADDR_STRLEN 46   /* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" */
#define SK_POLICY_CIDR_STRLEN 50   /* ... + "/128" */
/* The parsers refuse longer input outright. */
#define SK_POLICY_CIDR_INPUT_MAX 64

/* An address: family SK_POLICY_AF_INET4 uses bytes[0..3] (network order) and
 * keeps bytes[4..15] zero; SK_POLICY_AF_INET6 uses all 16. */
typedef struct sk_policy_addr {
    uint8_t family;
    uint8_t bytes[16];
} sk_policy_addr;

/* A network: addr with every bit after `prefix` zero. */
typedef struct sk_policy_cidr {
    sk_policy_addr addr;
    uint8_t prefix;         /* 0..32 or 0..128 */
} sk_policy_cidr;

typedef enum sk_policy_cidr_err {
    SK_POLICY_CIDR_OK = 0,
    SK_POLICY_CIDR_EMPTY,           /* no input */
    SK_POLICY_CIDR_TOO_LONG,        /* more than SK_POLICY_CIDR_INPUT_MAX bytes */
    SK_POLICY_CIDR_BAD_CHAR,        /* byte that cannot occur in an address (incl. NUL, space) */
    SK_POLICY_CIDR_BAD_IPV4,        /* not four dotted decimal octets */
    SK_POLICY_CIDR_LEADING_ZERO,    /* "010" octet: ambiguous (octal in some parsers) */
    SK_POLICY_CIDR_OCTET_RANGE,     /* octet > 255 */
    SK_POLICY_CIDR_BAD_IPV6,        /* malformed IPv6 text */
    SK_POLICY_CIDR_DOUBLE_COLON,    /* "::" more than once */
    SK_POLICY_CIDR_BAD_PREFIX,      /* "/" not followed by a plain decimal number */
    SK_POLICY_CIDR_PREFIX_RANGE,    /* prefix > 32 (IPv4) or > 128 (IPv6) */
    SK_POLICY_CIDR_HOST_BITS,       /* bits set after the prefix: write the network address */
    SK_POLICY_CIDR_TRAILING,        /* junk after a complete address or prefix */
    SK_POLICY_CIDR_ERR_COUNT_
} sk_policy_cidr_err;

/* Static English text for an error code ("ok" for SK_POLICY_CIDR_OK). */
const char *sk_policy_cidr_strerror(sk_policy_cidr_err e);

/* From raw network-order bytes: len 4 -> IPv4, len 16 -> IPv6 (kept as given,
 * IPv4-mapped included). Returns 0, or -1 for any other length or NULL. */
int sk_policy_addr_from_bytes(sk_policy_addr *out, const void *bytes, size_t len) SK_POLICY_MUST_CHECK;

/*
 * Parse one address: dotted-quad IPv4 ("192.0.2.1": exactly four decimal octets,
 * no leading zeros, each <= 255) or IPv6 text (RFC 4291 §2.2: up to eight groups
 * of 1-4 hex digits, "::" at most once and never standing for zero groups, an
 * embedded IPv4 dotted quad allowed as the last 32 bits). Zone IDs ("%eth0"),
 * brackets, whitespace and anything trailing are refused. *out is written only
 * on success.
 */
sk_policy_cidr_err sk_policy_addr_parse(const char *s, size_t len, sk_policy_addr *out) SK_POLICY_MUST_CHECK;

/*
 * Parse "ADDRESS" or "ADDRESS/PREFIX". A bare address is a /32 or /128. The
 * prefix is decimal without leading zeros ("/0" is valid: everything).
 * Host bits set after the prefix ("192.0.2.1/24") are refused with
 * SK_POLICY_CIDR_HOST_BITS rather than silently masked, because such an entry
 * usually means the operator meant something narrower than what would be
 * allowed. *out is written only on success.
 */
sk_policy_cidr_err sk_policy_cidr_parse(const char *s, size_t len, sk_policy_cidr *out) SK_POLICY_MUST_CHECK;

/* Canonical text: IPv4 dotted quad; IPv6 per RFC 5952 (lower case, longest run
 * of two or more zero groups shortened to "::", first run on a tie,
 * ::ffff:a.b.c.d for IPv4-mapped). cidr_format appends "/prefix" always.
 * Return 0, or -1 when cap is too small (out then holds "") or the input is not
 * a valid address/prefix. */
int sk_policy_addr_format(const sk_policy_addr *a, char *out, size_t cap) SK_POLICY_MUST_CHECK;
int sk_policy_cidr_format(const sk_policy_cidr *c, char *out, size_t cap) SK_POLICY_MUST_CHECK;

/* 1 when a is IPv6 ::ffff:a.b.c.d, and then *v4 (if not NULL) gets the IPv4 address. */
int sk_policy_addr_is_v4_mapped(const sk_policy_addr *a, sk_policy_addr *v4);

/*
 * 1 when a lies in c. An IPv4-mapped IPv6 peer matches IPv4 networks by its
 * embedded IPv4 address (dual-stack sockets report IPv4 clients that way), and
 * IPv6 networks by its IPv6 form. Otherwise families must be equal.
 */
int sk_policy_cidr_match(const sk_policy_cidr *c, const sk_policy_addr *a) SK_POLICY_MUST_CHECK;

/* A list of networks, e.g. one level of allowlist. count 0 = empty. */
typedef struct sk_policy_cidr_list {
    const sk_policy_cidr *items;
    size_t count;
} sk_policy_cidr_list;

/* 1 when a matches any entry of the list, 0 otherwise (also for an empty list). */
int sk_policy_cidr_list_match(const sk_policy_cidr_list *l, const sk_policy_addr *a) SK_POLICY_MUST_CHECK;

/*
 * The allowlist verdict for a peer: 1 allowed, 0 refused. Each level (global,
 * tenant, user; NULL counts as empty) restricts only when it is non-empty, and
 * the peer must match every non-empty level. All empty = no restriction.
 * A peer whose family is neither INET4 nor INET6 is refused whenever any level
 * is non-empty.
 */
int sk_policy_ip_allowed(const sk_policy_cidr_list *global, const sk_policy_cidr_list *tenant,
                         const sk_policy_cidr_list *user, const sk_policy_addr *peer) SK_POLICY_MUST_CHECK;

/* ======================================================================== */
/* 7b. Path rules and path normalisation                                     */
/* ======================================================================== */

/* A rule: requests whose path lies under prefix are allowed for roles in mask.
 * The prefix must be a normalised path (sk_policy_path_rules_validate). */
typedef struct sk_policy_path_rule {
    const char *prefix;
    unsigned roles;
} sk_policy_path_rule;

/* Compare ASCII letters case-insensitively: for upstreams (IIS, ...) that treat
 * "/ADMIN" and "/admin" as the same resource. */
#define SK_POLICY_PATH_ICASE 1u
/* Compare segment by segment, ignoring trailing dots and spaces (raw or %20) of
 * each: IIS and Windows serve "/admin./x" and "/admin%20/x" as "/admin/x". */
#define SK_POLICY_PATH_TRIM 2u
/* What the gateway uses unless the operator asks for exact matching: fail safe
 * when it cannot know how the upstream resolves names. */
#define SK_POLICY_PATH_LENIENT (SK_POLICY_PATH_ICASE | SK_POLICY_PATH_TRIM)

/*
 * May a user holding roles (mask) reach path (len bytes)? Returns 1 or 0.
 * The rule with the longest prefix that matches wins; among equally long
 * prefixes the first in the table wins. A prefix matches only at a segment
 * boundary: "/admin" (or "/admin/") matches "/admin", "/admin/" and
 * "/admin/x", never "/administrator"; "/" matches every path. A trailing "/" in
 * a prefix is ignored for matching. The winning rule allows when
 * (rule.roles & roles) != 0. No matching rule = allowed for every role.
 * CONTRACT: path must be the output of sk_policy_path_normalize(): the matcher
 * compares bytes and would be bypassed by "/x/../admin" or "/%61dmin".
 */
int sk_policy_path_allowed(const sk_policy_path_rule *rules, size_t n, const char *path, size_t len,
                           unsigned roles, unsigned flags) SK_POLICY_MUST_CHECK;

/* 0 when every rule's prefix is non-NULL and already normalised (starts with
 * "/", normalize() leaves it unchanged); else -1 and *bad = index of the first
 * bad rule (when bad != NULL). */
int sk_policy_path_rules_validate(const sk_policy_path_rule *rules, size_t n, size_t *bad) SK_POLICY_MUST_CHECK;

typedef enum sk_policy_path_err {
    SK_POLICY_PATH_OK = 0,
    SK_POLICY_PATH_EMPTY,           /* no input */
    SK_POLICY_PATH_NOT_ABSOLUTE,    /* does not start with "/" */
    SK_POLICY_PATH_BAD_CHAR,        /* control, space, non-ASCII, '\\', ';', '?', '#' */
    SK_POLICY_PATH_BAD_ESCAPE,      /* '%' not followed by two hex digits */
    SK_POLICY_PATH_ENCODED_SLASH,   /* %2F or %5C */
    SK_POLICY_PATH_ENCODED_NUL,     /* %00 */
    SK_POLICY_PATH_ESCAPES_ROOT,    /* ".." above "/" */
    SK_POLICY_PATH_TOO_LONG,        /* result does not fit cap */
    SK_POLICY_PATH_ERR_COUNT_
} sk_policy_path_err;

const char *sk_policy_path_strerror(sk_policy_path_err e);

/*
 * Normalise the path part of a request target (the caller cuts the query at the
 * first '?' beforehand) into out (cap bytes, NUL-terminated, *out_len without
 * the NUL; out_len may be NULL). Steps, on the raw segments split at '/':
 *  - percent-escapes of unreserved characters (A-Z a-z 0-9 - . _ ~) are
 *    decoded, so "%2e%2E" is "..". Every other escape stays encoded, with upper
 *    case hex, so decoding cannot create a separator or change what the upstream
 *    sees (RFC 3986 §6.2.2). %2F and %5C (encoded separators) and %00 are refused.
 *  - then RFC 3986 5.2.4 remove_dot_segments, exactly: "." segments go, ".."
 *    removes the previous segment (an empty one too: "/a//../b" is "/a/b") and
 *    is refused when nothing is left to remove ("/.." climbs above the root).
 *    Empty segments are kept, as the RFC keeps them (see has_empty_segment).
 *  - a final "." / ".." segment leaves the result ending in "/".
 *  - raw bytes outside printable ASCII, '\\' (a separator on Windows), ';'
 *    (Java containers cut path parameters: "/admin;x/" would reach "/admin/"),
 *    '?' and '#' are refused.
 * The output is never longer than the input, so cap >= len + 1 always suffices;
 * a smaller cap may fail with TOO_LONG even when the final result would fit,
 * because dot segments are resolved in place.
 * On any error out holds "" (when cap > 0) and nothing is guaranteed about *out_len.
 */
sk_policy_path_err sk_policy_path_normalize(const char *in, size_t len, char *out, size_t cap,
                                            size_t *out_len) SK_POLICY_MUST_CHECK;

/* 1 when a path has an empty segment ("//"). Upstreams disagree about those
 * (nginx merges them, most frameworks keep them), so a gateway that must forward
 * exactly what it authorised refuses them rather than guess. */
int sk_policy_path_has_empty_segment(const char *path, size_t len) SK_POLICY_MUST_CHECK;

/* ======================================================================== */
/* 8. TOTP step acceptance (RFC 6238 replay guard)                           */
/* ======================================================================== */

/* last_accepted_step value for "no code ever accepted". */
#define SK_POLICY_TOTP_NONE INT64_C(-1)

typedef enum sk_policy_totp_verdict {
    SK_POLICY_TOTP_ACCEPT = 0,
    SK_POLICY_TOTP_REPLAY,          /* step <= last accepted step: code already used */
    SK_POLICY_TOTP_OUT_OF_WINDOW,   /* step further than totp_window from now */
} sk_policy_totp_verdict;

/* The RFC 6238 time step T = floor(now / totp_step) (floor also for now < 0). */
int64_t sk_policy_totp_step_at(const sk_policy_config *cfg, int64_t now) SK_POLICY_MUST_CHECK;

/* The steps a code may be checked against at now: [*first, *last] =
 * [T - window, T + window], clamped so that *first > last_accepted_step.
 * Returns 0, or -1 when no step remains (every candidate is a replay). */
int sk_policy_totp_candidates(const sk_policy_config *cfg, int64_t last_accepted_step, int64_t now,
                              int64_t *first, int64_t *last) SK_POLICY_MUST_CHECK;

/* A code matched `matched_step`: accept it at now? ACCEPT only when
 * |matched_step - T| <= totp_window and matched_step > last_accepted_step; on
 * ACCEPT the caller stores matched_step as the new last accepted step in the
 * same transaction. The replay check comes first. */
sk_policy_totp_verdict sk_policy_totp_check(const sk_policy_config *cfg, int64_t last_accepted_step,
                                            int64_t now, int64_t matched_step) SK_POLICY_MUST_CHECK;

/* ======================================================================== */
/* 9. Login state machine                                                    */
/* ======================================================================== */

/* One login attempt: the TLS layer verified the certificate (CERT_VERIFIED),
 * then password, then TOTP when enrolled, then a session. */
typedef enum sk_policy_login_state {
    SK_POLICY_LOGIN_CERT_VERIFIED = 0,
    SK_POLICY_LOGIN_PASSWORD_OK,
    SK_POLICY_LOGIN_TOTP_PENDING,
    SK_POLICY_LOGIN_SESSION,
    SK_POLICY_LOGIN_CLOSED,             /* logged out / expired: terminal */
    SK_POLICY_LOGIN_STATE_COUNT_
} sk_policy_login_state;

typedef enum sk_policy_login_event {
    SK_POLICY_EV_PASSWORD_VALID = 0,    /* CERT_VERIFIED -> PASSWORD_OK */
    SK_POLICY_EV_PASSWORD_INVALID,      /* CERT_VERIFIED -> CERT_VERIFIED (try again) */
    SK_POLICY_EV_TOTP_REQUIRED,         /* PASSWORD_OK -> TOTP_PENDING   (enrolled only) */
    SK_POLICY_EV_SESSION_OPEN,          /* PASSWORD_OK -> SESSION        (not enrolled only) */
    SK_POLICY_EV_TOTP_VALID,            /* TOTP_PENDING -> SESSION */
    SK_POLICY_EV_TOTP_INVALID,          /* TOTP_PENDING -> CERT_VERIFIED (password again) */
    SK_POLICY_EV_LOGOUT,                /* SESSION -> CLOSED */
    SK_POLICY_EV_EXPIRED,               /* SESSION -> CLOSED */
    SK_POLICY_EV_ABORT,                 /* any non-terminal -> CLOSED (lock, mismatch, ...) */
    SK_POLICY_LOGIN_EVENT_COUNT_
} sk_policy_login_event;

/*
 * Apply event to state. Returns 0 and sets *next, or -1 (and leaves *next
 * untouched) for a transition the table does not allow, including every
 * transition that would skip the TOTP step of an enrolled user, and anything
 * out of range. totp_enrolled: non-zero when the user has TOTP.
 */
int sk_policy_login_step(sk_policy_login_state state, sk_policy_login_event event, int totp_enrolled,
                         sk_policy_login_state *next) SK_POLICY_MUST_CHECK;

const char *sk_policy_login_state_name(sk_policy_login_state s);
const char *sk_policy_login_event_name(sk_policy_login_event e);

/* ======================================================================== */
/* 10. Burst detector (failures across all accounts)                         */
/* ======================================================================== */

/* Caller-provided, fixed size. Zero-initialised (or sk_policy_burst_init) = empty. */
typedef struct sk_policy_burst {
    int64_t ts[SK_POLICY_BURST_CAP];    /* ring of the most recent failure times */
    uint32_t head;                      /* next slot to write */
    uint32_t count;                     /* valid entries, <= SK_POLICY_BURST_CAP */
    int alarmed;                        /* non-zero once an alarm was raised */
    int64_t alarm_at;                   /* time of the last alarm */
} sk_policy_burst;

void sk_policy_burst_init(sk_policy_burst *b);

/*
 * Record one failure at now. Returns 1 exactly when the alarm is to be raised:
 * at least burst_threshold failures lie in the window (now - burst_window, now]
 * (a failure exactly burst_window old no longer counts) and no alarm was raised
 * in the last burst_window seconds (now < alarm_at + burst_window suppresses).
 * So a sustained attack raises one alarm per window, not one per failure.
 */
int sk_policy_burst_record(const sk_policy_config *cfg, sk_policy_burst *b, int64_t now) SK_POLICY_MUST_CHECK;

/* Number of recorded failures in (now - burst_window, now] (for metrics). */
uint32_t sk_policy_burst_count(const sk_policy_config *cfg, const sk_policy_burst *b, int64_t now) SK_POLICY_MUST_CHECK;

#endif
