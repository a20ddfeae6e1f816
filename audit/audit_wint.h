/* audit_wint.h — the writer's state, shared by audit_writer.c (entries,
 * segments, retention), audit_seal.c (epoch keys, heartbeat, remembered head,
 * witness) and audit_text.c. Not installed. */
#ifndef SK_AUDIT_WINT_H
#define SK_AUDIT_WINT_H

#include <pthread.h>
#include <sys/types.h>

#include <jansson.h>

#include "audit_int.h"

#define GROUP_COMMIT_MS 100
#define REFUSAL_SLOTS 32

struct refusal {
    char peer[64];
    char reason[32];
    char serial[80];
    uint64_t count;
};

/* Request lines are group-committed: queued in memory under the mutex only and
 * written as one batch under one cross-process lock, by sk_audit_flush (the gateway
 * calls it every second), before any other entry (so the order of the log follows
 * time), when the queue is full, and at close. A request line is never an
 * acknowledged security event, so a crash may lose at most one batch of them. */
#define RQ_LEN 128
#define RQ_FIELD 80
#define RQ_DETAILS 1536

struct queued_req {
    int64_t ts;
    char actor[RQ_FIELD], tenant[RQ_FIELD], peer[RQ_FIELD], serial[RQ_FIELD];
    unsigned char is_null[4];
    char details[RQ_DETAILS];
};

struct sk_audit {
    /* remote handle (audit_remote.c): every public call goes to rops, nothing else is set */
    const sk_audit_remote_ops *rops;
    void *rctx;
    pthread_mutex_t mu;
    char dir[4096];
    int lock_fd;
    int seg_fd;                  /* -1: no segment yet */
    char seg_name[SK_AUDIT_SEG_MAX];
    int64_t seg_day;
    off_t seg_end;               /* size of the segment as we wrote it */
    uint64_t seq;                /* last assigned */
    char prev[SK_AUDIT_HASH_HEX + 1];
    int64_t last_cp_ms;
    int dirty;
    int64_t last_sync_ms;
    int broken;                  /* a write failed and could not be undone */
    audit_ekey key;              /* the current epoch's key */
    char key_path[4096];
    int64_t epoch_ms;
    uint64_t last_cp;            /* seq of the newest checkpoint in the log */
    int64_t tail_ms;             /* ts of the tail found by the last resync */
    int pending_handoff;
    int64_t evolve_retry_ms;     /* after a failed handoff, not before this time */
    int tail_is_close;
    int opening;                 /* the first begin_locked checks the remembered head */           /* the newest entry is a closing checkpoint */         /* the tail is a handoff whose audit.epoch is missing */
    int64_t tail_ms_at_open;     /* ts of the newest entry before we wrote (0: none) */
    int64_t open_real_ms, open_mono_ms;
    /* remembered head (outside the log directory) */
    char head_path[4200];
    int head_fd;
    pthread_mutex_t head_mu;
    uint64_t head_written;
    /* witness: checkpoint notes waiting to be handed to the command */
    char *witness_cmd;
    char *wq[16];
    unsigned wq_len;
    pthread_mutex_t wit_mu;      /* one delivery at a time */
    /* operators' alarm: text waiting to be mailed (under mu) */
    char *notify_cmd, *notify_to, *notify_from;
    char *alarm_text;
    /* heartbeat thread */
    pthread_t thr;
    int thr_started, thr_stop;
    pthread_cond_t thr_cv;
    int64_t retention_ms;
    uint32_t cp_every, cp_secs, ref_secs;
    int64_t (*clock_ms)(void *);
    void *clock_ctx;
    struct refusal refs[REFUSAL_SLOTS];
    size_t n_refs;
    uint64_t ref_total, ref_other;
    int64_t ref_start_ms;
    uint64_t pending_dropped;    /* torn bytes cut by the last resync */
    char *line;                  /* SK_AUDIT_MAX_LINE + 4 bytes, used under mu */
    char pending_seg[SK_AUDIT_SEG_MAX];
    /* the node written into entries and segment names ("" none: format 2) */
    char node[SK_AUDIT_NODE_MAX + 1];
    int node_configured;         /* from the options: a tail of another node is refused */
    char node_clash[SK_AUDIT_NODE_MAX + 1]; /* the tail's node when it was refused */
    struct queued_req *rq;       /* request lines waiting for the next batch */
    unsigned rq_len;
};

/* A durable position of the log: fd to fdatasync, and the head it makes durable. */
struct audit_sync {
    int fd;                      /* -1 nothing to do, -2 error */
    uint64_t seq;
    char h[SK_AUDIT_HASH_HEX + 1];
};

/* audit_text.c */
char *audit_sanitize(const char *s);
json_t *audit_jstr(const char *s);
void audit_buf_u64(sk_buf *b, uint64_t v);
void audit_buf_json_str(sk_buf *b, const char *s);

/* audit_writer.c (caller holds mu and the flock) */
int audit_emit_locked(sk_audit *a, int64_t now, const char *ev, json_t *details, int is_checkpoint);
int audit_checkpoint_locked(sk_audit *a, int64_t now, const char *reason, const char *next_seg,
                            const uint8_t *next_pub) SK_MUST_CHECK;
int64_t audit_now_ms(const sk_audit *a);
int audit_emit_text_locked(sk_audit *a, int64_t now, const char *ev, const char *actor,
                           const char *tenant, const char *peer, const char *serial,
                           const char *details, int is_checkpoint) SK_MUST_CHECK;
/* Take the cross-process lock and bring our view up to date / release it. */
int audit_begin_locked(sk_audit *a, int64_t now) SK_MUST_CHECK;
void audit_end_locked(sk_audit *a);
/* Append with details as a jansson object d (consumed) or as JSON text. */
int audit_append_common(sk_audit *a, const char *event, const char *actor, const char *tenant,
                        const char *peer, const char *serial, json_t *d, const char *dtext,
                        int durable, uint64_t *seq_out) SK_MUST_CHECK;

/* audit_events.c (under mu; the _locked ones also under the flock) */
int audit_refusal_summary_locked(sk_audit *a, int64_t now) SK_MUST_CHECK;
int audit_refusal_due(const sk_audit *a, int64_t now);
int audit_drain_requests_locked(sk_audit *a);
int audit_kv_details(const sk_audit_event *ev, json_t **out) SK_MUST_CHECK;
int64_t audit_mono_ms(void);

/* audit_seal.c */
/* Load the key (again, when another process evolved it). mu held, flock held. */
int audit_key_sync_locked(sk_audit *a) SK_MUST_CHECK;
/* The tail line of the log must carry a MAC of our key (or of KEY.next, which
 * is then put in place). Finishes a handoff a crash interrupted. */
int audit_tail_auth_locked(sk_audit *a, const char *line, size_t n, const sk_audit_entry *e) SK_MUST_CHECK;
/* Seq of the newest checkpoint at or before the end of the segment open on fd. */
int audit_find_last_cp(int fd, off_t size, uint64_t *cp_seq) SK_MUST_CHECK;
int audit_evolve_due(const sk_audit *a, int64_t now);
int audit_evolve_locked(sk_audit *a, int64_t now) SK_MUST_CHECK;
/* After the checkpoint just written (a->line): queue its witness note. */
void audit_witness_queue_locked(sk_audit *a);
void audit_witness_deliver(sk_audit *a);
int audit_head_open(sk_audit *a, const char *head_path) SK_MUST_CHECK;
/* The remembered head; 0 ok (*seq 0 when none). */
int audit_head_read(sk_audit *a, uint64_t *seq, char h[SK_AUDIT_HASH_HEX + 1]) SK_MUST_CHECK;
void audit_head_update(sk_audit *a, uint64_t seq, const char *h);
/* Compare the log with the remembered head at open; log audit.truncated. */
int audit_head_check_locked(sk_audit *a, int64_t now, uint64_t found,
                            const char found_h[SK_AUDIT_HASH_HEX + 1]) SK_MUST_CHECK;
int audit_thread_start(sk_audit *a) SK_MUST_CHECK;
void audit_thread_stop(sk_audit *a);
/* Log an alarm now (error level) and queue it for the operators' mail. */
void audit_alarm(sk_audit *a, const char *fmt, ...) SK_PRINTF(2, 3);
/* Mail queued alarms; call without mu (blocks up to SK_NOTIFY_TIMEOUT). */
void audit_alarm_deliver(sk_audit *a);
/* Pruning is refused when the clock looks wrong. 1 plausible. */
int audit_clock_plausible(const sk_audit *a, int64_t now);

#endif
