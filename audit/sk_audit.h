/*
 * sk_audit.h — Sekisho's tamper-evident access log.
 *
 * On-disk format: audit/FORMAT.md (the contract with independent verifiers).
 * In short: a directory of daily segments "audit-<node>-YYYYMMDD.jsonl" ("audit-
 * YYYYMMDD.jsonl" before format 3; JSON Lines, pure ASCII, keys in a fixed order,
 * every entry naming its node since format 3), every entry hash-chained to the previous
 * one across segments and carrying the writer's MAC; signed checkpoints cover
 * contiguous ranges; the signing key evolves every [audit] epoch (forward
 * security: the next epoch's public key is committed in a checkpoint signed by
 * the current one, the old private key is erased); epochs.jsonl keeps the
 * handoffs so a pruned log still verifies from epoch 0's public key.
 *
 * Forward security and witnesses: every checkpoint (at least one per epoch, by
 * the heartbeat thread even when idle) is handed to [audit] witness in the
 * stable text form of FORMAT.md section 9; `audit verify --witness FILE...`
 * then proves nothing after a witnessed checkpoint was cut or rewritten. The
 * writer refuses a tail without its MAC, remembers its head in KEY.head and
 * records audit.truncated (and alarms the operators) when the log ends before it.
 *
 * Durability and crash semantics
 * ------------------------------
 * Every entry is written with a single write(2) of the complete line while the
 * writer holds both its mutex and an flock on "<dir>/.lock" (sekishoctl and
 * sekisho-ca append to the same log as the running gateway; each writer re-reads
 * the chain head when another process appended). An append with durable != 0
 * returns only after fdatasync(2) of the segment; callers answer their client
 * after that, so an acknowledged security event is on stable storage. Request
 * lines (durable == 0) are group-committed: fsync'd at most every 100 ms by a
 * later append, by sk_audit_flush, by the next durable append or at close.
 * sk_audit_request lines are first queued in memory and written as one batch
 * (see there): a crash can lose at most that batch, never a security event.
 * On a remote handle (sk_auditd.h) a line first waits in the sending process
 * (at most SK_AUDITD_BATCH_MS, 5 ms, while traffic flows) to travel to auditd
 * with its neighbours: a crash of that process can also lose the lines of its
 * last few milliseconds, never an acknowledged append.
 *
 * A torn last line (no trailing newline) can only be produced by a crash or
 * power loss in the middle of that single write — i.e. before its append
 * returned, so the entry was never acknowledged. sk_audit_open cuts it off and
 * logs audit.recover. Until a writer has reopened the log, verify reports it
 * as "truncated tail" (exit 1): verify cannot distinguish a torn write from
 * someone cutting bytes, so it refuses to call it OK, but the writer may repair
 * it because nothing acknowledged is lost by doing so. kill -9 alone never
 * tears a line (the kernel completes the write), so such a log verifies as is.
 * Whole lines removed from the end are found by witnesses, by the writer's
 * remembered head, and by verify when the log ends neither on a closing
 * checkpoint nor within one epoch of its newest checkpoint.
 *
 * Retention: segments whose whole UTC day is older than `retention` are removed
 * at open and by sk_audit_prune (call it daily), never the three newest and never
 * on an implausible clock; the audit.prune record is signed before the unlink.
 *
 * Thread safety: every sk_audit_* function taking an sk_audit* is thread-safe
 * (except sk_audit_close, see there). Several processes may append to one
 * directory at once (the gateway, sekishoctl, sekisho-ca): each opens its own
 * sk_audit, appends, and closes (which signs what it wrote).
 */
#ifndef SK_AUDIT_H
#define SK_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "sk_util.h"

/* ---- event names (use these; readers filter on them) ------------------- */
#define SK_AUDIT_EV_LOGIN_OK        "login.success"
#define SK_AUDIT_EV_LOGIN_FAIL      "login.failure"   /* details.reason: see below */
#define SK_AUDIT_EV_LOCKOUT         "account.locked"
#define SK_AUDIT_EV_UNLOCK          "account.unlocked"
#define SK_AUDIT_EV_LOGOUT          "session.logout"
#define SK_AUDIT_EV_IDLE            "session.idle_logoff"
#define SK_AUDIT_EV_EXPIRED         "session.expired"
#define SK_AUDIT_EV_REVOKED         "session.revoked"
#define SK_AUDIT_EV_TLS_REFUSED     "tls.refused.summary"
#define SK_AUDIT_EV_ADMIN           "admin.change"    /* sekishoctl / sekisho-ca */
#define SK_AUDIT_EV_CONFIG_RELOAD   "config.reload"
#define SK_AUDIT_EV_CRL_RELOAD      "crl.reload"
#define SK_AUDIT_EV_START           "gateway.start"
#define SK_AUDIT_EV_STOP            "gateway.stop"
#define SK_AUDIT_EV_REQUEST         "http.request"
#define SK_AUDIT_EV_SEGMENT         "audit.segment"
#define SK_AUDIT_EV_CHECKPOINT      "audit.checkpoint"
#define SK_AUDIT_EV_RECOVER         "audit.recover"
#define SK_AUDIT_EV_PRUNE           "audit.prune"
#define SK_AUDIT_EV_EPOCH           "audit.epoch"     /* first entry of a key epoch */
#define SK_AUDIT_EV_TRUNCATED       "audit.truncated" /* the log ended before the remembered head */

/* Internal login failure reasons (details.reason). Never shown to the client. */
#define SK_AUDIT_REASON_UNKNOWN_USER  "unknown_user"
#define SK_AUDIT_REASON_BAD_PASSWORD  "bad_password"
#define SK_AUDIT_REASON_BAD_TOTP      "bad_totp"
#define SK_AUDIT_REASON_CERT_MISMATCH "cert_mismatch"
#define SK_AUDIT_REASON_LOCKED        "locked"
#define SK_AUDIT_REASON_DORMANT       "dormant"
#define SK_AUDIT_REASON_ADDR_REFUSED  "address_refused"

/* Limits. Client strings longer than SK_AUDIT_MAX_FIELD bytes are cut and end
 * in "...[cut]" (the audit record must not be lost because a path was long). */
#define SK_AUDIT_MAX_FIELD 2048
#define SK_AUDIT_MAX_LINE  65536
#define SK_AUDIT_HASH_HEX  64
#define SK_AUDIT_SIG_LEN   64
/* A node name ([audit] node): 1..63 of [A-Za-z0-9._-]. */
#define SK_AUDIT_NODE_MAX  63
/* Segment names: "audit-<node>-YYYYMMDD.jsonl" (at most 84 bytes) or the
 * unnamed "audit-YYYYMMDD.jsonl" of format 2. */
#define SK_AUDIT_SEG_MAX   96

/* ---- signer interface ---------------------------------------------------
 * The writer never touches the private key itself: it hands the bytes to sign
 * to this interface, so the key can later live in a separate process (sign()
 * would then be an IPC round trip). sign() must be thread-safe or be called
 * under the writer's lock (it is). */
typedef struct sk_audit_signer {
    void *ctx;
    /* Ed25519 signature over msg[0..n) into sig. 0 ok, -1 failure. */
    int (*sign)(void *ctx, const uint8_t *msg, size_t n, uint8_t sig[SK_AUDIT_SIG_LEN]);
    /* The raw 32-byte Ed25519 public key (used for the key id). */
    int (*public_key)(void *ctx, uint8_t pub[32]);
    /* Release ctx (may be NULL). */
    void (*destroy)(void *ctx);
} sk_audit_signer;

/* A signer backed by a PEM PKCS#8 Ed25519 key file. The file must be a
 * regular file with no group/other permission bits, and must not be inside
 * audit_dir (pass NULL to skip that check). On success the caller owns *out
 * and releases it with out->destroy(out->ctx). */
int sk_audit_signer_from_file(const char *key_path, const char *audit_dir,
                              sk_audit_signer *out) SK_MUST_CHECK;

/* Create a new Ed25519 key: key_path (PEM PKCS#8, mode 0600) and
 * key_path + ".pub" (PEM SubjectPublicKeyInfo, mode 0644). Refuses (-1) when
 * either exists or when key_path is inside audit_dir (NULL: no check). err
 * (may be NULL) receives a one-line reason. */
int sk_audit_keygen(const char *key_path, const char *audit_dir,
                    char *err, size_t errcap) SK_MUST_CHECK;

/* Key id (hex SHA-256 of the raw public key, 64 chars + NUL) of a public key
 * PEM file, plus the raw key. */
int sk_audit_pubkey_load(const char *pub_path, uint8_t pub[32],
                         char keyid[SK_AUDIT_HASH_HEX + 1]) SK_MUST_CHECK;

/* ---- witness hand-off ---------------------------------------------------
 * A writer that may not run commands (auditd in its sandbox) hands each
 * checkpoint's witness text to fn instead (the monitor runs [audit] witness with
 * it); fn returns 0 when it took the text. Set once, before sk_audit_open. */
typedef int (*sk_audit_witness_fn)(void *ctx, const char *text);
void sk_audit_set_witness_transport(sk_audit_witness_fn fn, void *ctx);
/* Run cmd with /bin/sh -c, text on its standard input, bounded in time: what the
 * writer does itself without a transport. 0 when it exited 0. */
int sk_audit_run_witness(const char *cmd, const char *text) SK_MUST_CHECK;

/* ---- writer ------------------------------------------------------------ */
typedef struct sk_audit sk_audit;

typedef struct sk_audit_options {
    const char *dir;                 /* audit directory (created 0700) */
    const char *key_path;            /* the epoch key file (required; evolves in place) */
    const sk_audit_signer *signer;   /* no longer supported (epoch keys): must be NULL */
    int64_t retention_secs;          /* 0: 365 days; < 0: never prune */
    uint32_t checkpoint_every;       /* 0: 1000 entries */
    uint32_t checkpoint_secs;        /* 0: 300 s */
    uint32_t refusal_interval_secs;  /* 0: 60 s (handshake refusal summary) */
    /* Clock in ms since the epoch (UTC); NULL: CLOCK_REALTIME. For tests. */
    int64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
    uint32_t epoch_secs;             /* key epoch ([audit] epoch); 0: 900 s */
    const char *witness;             /* [audit] witness: shell command, checkpoint on stdin */
    const char *head_path;           /* remembered head; NULL: key_path + ".head" */
    int no_thread;                   /* no heartbeat thread (it is never started with clock_ms) */
    /* Operators' alarm (truncation found, forged tail refused, witness failing):
     * mailed through [notify] command when both are set. */
    const char *notify_command;
    const char *notify_to;
    const char *notify_from;
    /* [audit] node: written into every entry and into new segments' names.
     * NULL or "": the node of the log's tail (none for a format 2 log). A
     * chain belongs to one node: open refuses a log whose tail names another. */
    const char *node;
} sk_audit_options;

typedef struct sk_audit_kv {
    const char *key;
    const char *value;               /* stored as a JSON string; NULL -> null */
} sk_audit_kv;

typedef struct sk_audit_event {
    const char *event;               /* required, e.g. SK_AUDIT_EV_LOGIN_FAIL */
    const char *actor;               /* user ID or operator; NULL allowed */
    const char *tenant;
    const char *peer;                /* client address text */
    const char *serial;              /* certificate serial (hex) */
    const sk_audit_kv *kv;           /* details as key/value pairs, may be NULL */
    size_t n_kv;
    const char *details_json;        /* optional JSON object text; kv are added
                                        to it (kv win). Invalid JSON -> -1. */
} sk_audit_event;

/* Open (or create) the log. Recovers a torn tail, prunes by retention, and is
 * ready to append. err (may be NULL) receives a one-line reason on failure. */
int sk_audit_open(const sk_audit_options *o, sk_audit **out, char *err, size_t errcap) SK_MUST_CHECK;

/* Append one entry. The assigned sequence number goes to *seq_out (may be
 * NULL). durable != 0: returns after the entry is on stable storage. */
int sk_audit_append(sk_audit *a, const sk_audit_event *ev, int durable, uint64_t *seq_out) SK_MUST_CHECK;

/* A proxied request line, group-committed: queued in memory (a mutex, no I/O) and
 * written in one batch by the next sk_audit_flush, append, checkpoint or close, or
 * when 128 are waiting. Its ts is the time of this call (on a remote handle: when
 * auditd queues it, at most a few milliseconds later, see sk_auditd.h). A crash can
 * lose the lines of one batch; request lines are never acknowledged security
 * events. duration in microseconds. */
int sk_audit_request(sk_audit *a, const char *user, const char *tenant, const char *peer,
                     const char *serial, const char *method, const char *path,
                     int status, uint64_t bytes, uint64_t duration_us) SK_MUST_CHECK;

/* Count one certificate refused at the TLS handshake. Refusals are aggregated
 * per (peer, reason, serial) in a bounded table; one tls.refused.summary entry
 * per refusal interval carries the counts, so a flood costs at most one entry
 * per interval. reason is a short fixed word ("revoked", "expired",
 * "unknown_ca", "no_cert", ...). The summary is emitted by the first call of
 * sk_audit_refused / sk_audit_flush / sk_audit_close after the interval. */
int sk_audit_refused(sk_audit *a, const char *peer, const char *reason, const char *serial) SK_MUST_CHECK;

/* Write a signed checkpoint now (durable). */
int sk_audit_checkpoint(sk_audit *a) SK_MUST_CHECK;

/* Housekeeping: emit a due refusal summary, a due time-based checkpoint, and
 * fsync group-committed lines. Call about once a second from a timer. */
int sk_audit_flush(sk_audit *a) SK_MUST_CHECK;
/* How far the writer lags: request lines queued and not yet written, and the age
 * in ms of the oldest of them (0 when none). For the metrics; a may be NULL. */
void sk_audit_lag(sk_audit *a, uint64_t *queued, int64_t *oldest_ms);

/* Remove segments older than the retention (logged as audit.prune). *removed
 * (may be NULL) gets the number of files removed. Call once a day. */
int sk_audit_prune(sk_audit *a, unsigned *removed) SK_MUST_CHECK;

/* Last assigned sequence number (0 for an empty log). */
uint64_t sk_audit_last_seq(sk_audit *a);

/* Flush refusals, write a final signed checkpoint, fsync, release. NULL ok.
 * No other call on a may be running or follow (join the appending threads
 * first). */
void sk_audit_close(sk_audit *a);

/* ---- remote handle (privilege separation, issue 9) ------------------------
 * A process that must not hold the audit key (a network worker, authd, an
 * operator tool while the gateway runs) gets an sk_audit whose calls go to
 * auditd, the only writer, so the code calling sk_audit_* stays unchanged.
 * On a remote handle every public writer function dispatches to ops:
 * sk_audit_append / _request / _refused / _flush / _lag / _close. sk_audit_prune
 * and sk_audit_checkpoint return 0 doing nothing (*removed = 0), and
 * sk_audit_last_seq returns 0: auditd prunes, checkpoints and counts itself.
 * The ops keep the contracts above (a durable append returns 0 only once the
 * writer's durable append returned 0); an I/O failure is -1, as a failed
 * write would be. ops->close releases ctx; ops must outlive the handle. */
typedef struct sk_audit_remote_ops {
    int (*append)(void *ctx, const sk_audit_event *ev, int durable, uint64_t *seq_out);
    int (*request)(void *ctx, const char *user, const char *tenant, const char *peer,
                   const char *serial, const char *method, const char *path, int status,
                   uint64_t bytes, uint64_t duration_us);
    int (*refused)(void *ctx, const char *peer, const char *reason, const char *serial);
    int (*flush)(void *ctx);
    void (*lag)(void *ctx, uint64_t *queued, int64_t *oldest_ms);
    void (*close)(void *ctx);
} sk_audit_remote_ops;

/* A remote handle over ops/ctx (every op required). Released by sk_audit_close,
 * which calls ops->close(ctx); on failure ctx stays the caller's. */
int sk_audit_open_remote(const sk_audit_remote_ops *ops, void *ctx, sk_audit **out) SK_MUST_CHECK;

/* ---- reading ----------------------------------------------------------- */

/* One parsed entry. String pointers point into the entry's own storage and
 * stay valid until the next sk_audit_parse_line on the same struct or
 * sk_audit_entry_free. Absent/null fields are NULL. */
typedef struct sk_audit_entry {
    uint64_t seq;
    int64_t ts_ms;                   /* UTC ms since the epoch */
    const char *ts;                  /* as stored */
    const char *event;
    const char *actor;
    const char *tenant;
    const char *peer;
    const char *serial;
    const char *details;             /* compact JSON object text */
    const char *node;                /* the writing node (format 3); NULL when absent */
    char prev[SK_AUDIT_HASH_HEX + 1];
    char hash[SK_AUDIT_HASH_HEX + 1];       /* stored h */
    int hash_ok;                     /* stored h equals the recomputed one */
    int has_sig;
    uint8_t sig[SK_AUDIT_SIG_LEN];
    size_t signed_len;               /* bytes of the line covered by sig */
    char keyid[SK_AUDIT_HASH_HEX + 1];      /* checkpoints: details.key */
    char segment[SK_AUDIT_SEG_MAX];                /* audit.segment: details.segment */
    char prev_segment[SK_AUDIT_SEG_MAX];           /* audit.segment: details.prev_segment */
    char oldest_kept[SK_AUDIT_SEG_MAX];            /* audit.prune: details.oldest_kept */
    char mac[SK_AUDIT_HASH_HEX + 1]; /* the writer's MAC (not verifiable without its key) */
    size_t mac_len;                  /* bytes of the line covered by mac */
    /* checkpoints (and audit.segment / audit.epoch where present) */
    uint64_t epoch;
    int has_epoch;
    uint64_t cp_from;                /* first seq this checkpoint covers */
    uint64_t epoch_secs;             /* the writer's epoch length */
    char reason[16];
    char origin[SK_AUDIT_HASH_HEX + 1];     /* key id of epoch 0 (names the log) */
    char next_segment[SK_AUDIT_SEG_MAX];           /* rotate checkpoints */
    int has_next;
    uint8_t next_pub[32];            /* handoff: the next epoch's public key */
    void *priv_;                     /* owned storage */
} sk_audit_entry;

/* Parse one line (without its newline). Never crashes on malformed input;
 * returns -1 with a reason in err. A line whose h does not match still parses
 * (hash_ok = 0) when its JSON is well-formed, so the caller can tell "edited"
 * from "garbage". */
int sk_audit_parse_line(const char *line, size_t n, sk_audit_entry *e,
                        char *err, size_t errcap) SK_MUST_CHECK;
void sk_audit_entry_free(sk_audit_entry *e);

/* Verify the Ed25519 signature of a parsed checkpoint line: 1 valid, 0 not. */
int sk_audit_check_sig(const char *line, const sk_audit_entry *e, const uint8_t pub[32]);

/* Iterate over all entries of a log directory in order. */
typedef struct sk_audit_reader sk_audit_reader;
int sk_audit_reader_open(const char *dir, sk_audit_reader **out, char *err, size_t errcap) SK_MUST_CHECK;
/* 1: *e and *line (valid until the next call) filled; 0: end; -1: error
 * (malformed line, with err). */
int sk_audit_reader_next(sk_audit_reader *r, sk_audit_entry *e, const char **line,
                         char *err, size_t errcap) SK_MUST_CHECK;
void sk_audit_reader_close(sk_audit_reader *r);

/* Verification verdict. */
enum sk_audit_problem {
    SK_AUDIT_OK = 0,
    SK_AUDIT_EDITED,
    SK_AUDIT_DELETED,
    SK_AUDIT_REORDERED,
    SK_AUDIT_TRUNCATED_TAIL,
    SK_AUDIT_BAD_SIGNATURE,
    SK_AUDIT_UNKNOWN_KEY,
    SK_AUDIT_IO_ERROR,
    SK_AUDIT_UNSIGNED,               /* entries no valid checkpoint covers */
    SK_AUDIT_EPOCH_GAP,              /* a key epoch is missing */
    SK_AUDIT_WRONG_EPOCH_KEY,        /* signed by a key not of the epoch it is in */
    SK_AUDIT_TRUNCATED,              /* entries cut off (witness, writer's head, missing segment) */
};
const char *sk_audit_problem_name(enum sk_audit_problem p);

typedef struct sk_audit_verdict {
    enum sk_audit_problem problem;
    uint64_t first_seq, last_seq;    /* verified range (OK) */
    uint64_t entries;
    unsigned checkpoints;
    uint64_t last_signed_seq;        /* seq of the last valid checkpoint */
    int64_t last_signed_ms;          /* its ts; 0 when none */
    /* on failure: where */
    char segment[SK_AUDIT_SEG_MAX];
    uint64_t line;                   /* 1-based line within the segment */
    uint64_t seq;                    /* sequence number at that line (0 unknown) */
    char detail[256];
    /* epochs and freshness */
    uint64_t first_epoch, last_epoch;
    int64_t newest_cp_ms;            /* ts of the newest valid checkpoint (0: none) */
    int closed;                      /* the newest checkpoint is a writer's closing one */
    uint64_t unsealed;               /* entries after it (allowed only while young) */
    int64_t epoch_secs;              /* the writer's epoch length, from the log */
    unsigned witnesses, witnesses_ok;
    char witness_status[8][160];     /* first 8 witnesses: one line each */
    char node[SK_AUDIT_NODE_MAX + 1]; /* the node the chain belongs to ("" format 2 only) */
} sk_audit_verdict;

/* Verify the log in dir against the initial public key pub (raw 32 bytes,
 * epoch 0's key). Returns 0 when the verdict was produced (check v->problem),
 * -1 on usage errors. */
int sk_audit_verify(const char *dir, const uint8_t pub[32], sk_audit_verdict *v) SK_MUST_CHECK;

typedef struct sk_audit_verify_opts {
    int64_t now_ms;                  /* 0: CLOCK_REALTIME */
    const char *const *witness;      /* witnessed checkpoint files (text form) */
    size_t n_witness;
} sk_audit_verify_opts;
int sk_audit_verify_ex(const char *dir, const uint8_t pub[32], const sk_audit_verify_opts *o,
                       sk_audit_verdict *v) SK_MUST_CHECK;

/* The newest checkpoint of the log in its stable text form (witness form,
 * see FORMAT.md) into a malloc'd string. 0 ok, -1 none or error (err). */
int sk_audit_head_text(const char *dir, char **out, char *err, size_t errcap) SK_MUST_CHECK;

/* Segment-name helpers: 1 if name is "audit-YYYYMMDD.jsonl" or
 * "audit-<node>-YYYYMMDD.jsonl" (a valid date, a valid node name). */
int sk_audit_is_segment_name(const char *name);
/* 1 if s is a valid node name (1..SK_AUDIT_NODE_MAX of [A-Za-z0-9._-]). */
int sk_audit_valid_node(const char *s);
/* The parts of a segment name: its day (days since 1970-01-01) and its node
 * ("" for the unnamed form). 0 ok, -1 not a segment name. node may be NULL. */
int sk_audit_segment_parse(const char *name, int64_t *day, char node[SK_AUDIT_NODE_MAX + 1]) SK_MUST_CHECK;
/* Order of segments in a directory: by day, then by name (so an unnamed
 * segment and the node-named one that follows it the next day sort in time). */
int sk_audit_segment_cmp(const char *a, const char *b);
/* The node a log directory belongs to, for labels: the node in the newest
 * segment's name, else the node of the newest segment's last entry. 1 found,
 * 0 none (format 2 log, or empty), -1 error (err). */
int sk_audit_dir_node(const char *dir, char node[SK_AUDIT_NODE_MAX + 1], char *err, size_t errcap) SK_MUST_CHECK;

/* ---- several nodes' logs merged by time ----------------------------------
 * Each directory is read in its own order; the next entry is the one with the
 * smallest (ts, node, directory index, seq), so each node's entries stay in chain
 * order and equal times are ordered stably. The node of an entry is its node
 * field, else the directory's label (sk_audit_dir_node, "-" when none). Two
 * directories with the same label are refused (the same node given twice). */
typedef struct sk_audit_merge sk_audit_merge;
int sk_audit_merge_open(const char *const *dirs, size_t n, sk_audit_merge **out, char *err,
                        size_t errcap) SK_MUST_CHECK;
/* 1: *e (valid until the next call), *line, *node and *src (index into dirs)
 * filled; 0: end; -1: error (err names the directory). */
int sk_audit_merge_next(sk_audit_merge *m, const sk_audit_entry **e, const char **line,
                        const char **node, size_t *src, char *err, size_t errcap) SK_MUST_CHECK;
void sk_audit_merge_close(sk_audit_merge *m);

#endif
