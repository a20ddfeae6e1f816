/* audit_writer.c — the appending side of the audit log (see sk_audit.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
    pthread_mutex_t mu;
    char dir[4096];
    int lock_fd;
    int seg_fd;                  /* -1: no segment yet */
    char seg_name[32];
    int64_t seg_day;
    off_t seg_end;               /* size of the segment as we wrote it */
    uint64_t seq;                /* last assigned */
    char prev[SK_AUDIT_HASH_HEX + 1];
    uint64_t since_cp, cp_from;
    int64_t last_cp_ms;
    int dirty;
    int64_t last_sync_ms;
    int broken;                  /* a write failed and could not be undone */
    sk_audit_signer signer;
    char keyid[SK_AUDIT_HASH_HEX + 1];
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
    char pending_seg[32];
    struct queued_req *rq;       /* request lines waiting for the next batch */
    unsigned rq_len;
};

static int64_t now_ms(const sk_audit *a)
{
    struct timespec ts;
    if (a->clock_ms)
        return a->clock_ms(a->clock_ctx);
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- strings from clients ---------------------------------------------- */

/* Valid UTF-8 copy of s: invalid sequences become U+FFFD, long strings are cut
 * at SK_AUDIT_MAX_FIELD bytes with a visible marker. */
static size_t utf8_next(const unsigned char *u, size_t avail, uint32_t *cp);

static char *sanitize(const char *s)
{
    static const char cut_mark[] = "...[cut]";
    size_t n = strlen(s), o = 0, i = 0;
    size_t cap = (n > SK_AUDIT_MAX_FIELD ? SK_AUDIT_MAX_FIELD : n) * 3 + sizeof(cut_mark) + 4;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    while (i < n) {
        uint32_t cp;
        size_t len;
        if (i >= SK_AUDIT_MAX_FIELD) {
            memcpy(out + o, cut_mark, sizeof(cut_mark) - 1);
            o += sizeof(cut_mark) - 1;
            break;
        }
        len = utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (len == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += 1;
            continue;
        }
        memcpy(out + o, s + i, len);
        o += len;
        i += len;
    }
    out[o] = '\0';
    return out;
}

static json_t *jstr(const char *s)
{
    char *c;
    json_t *v;
    if (!s)
        return json_null();
    c = sanitize(s);
    if (!c)
        return NULL;
    v = json_string(c);
    free(c);
    return v;
}

/* ---- low-level file handling ------------------------------------------- */


static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

static int seg_path(const sk_audit *a, const char *name, char *out, size_t cap)
{
    return sk_snprintf(out, cap, "%s/%s", a->dir, name);
}

/* ---- writing entries (caller holds mu and the flock) -------------------- */

static int rotate_locked(sk_audit *a, int64_t now);
static int checkpoint_locked(sk_audit *a, int64_t now, const char *reason);

/* Decode one UTF-8 sequence at u (avail bytes). Returns its length, or 0 when
 * it is invalid (overlong, surrogate, out of range, truncated). */
static size_t utf8_next(const unsigned char *u, size_t avail, uint32_t *cp)
{
    size_t len, k;
    uint32_t c;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    if ((u[0] & 0xe0) == 0xc0) {
        len = 2;
        c = u[0] & 0x1f;
    } else if ((u[0] & 0xf0) == 0xe0) {
        len = 3;
        c = u[0] & 0x0f;
    } else if ((u[0] & 0xf8) == 0xf0) {
        len = 4;
        c = u[0] & 0x07;
    } else {
        return 0;
    }
    if (len > avail)
        return 0;
    for (k = 1; k < len; k++) {
        if ((u[k] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (u[k] & 0x3f);
    }
    if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
        c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

static void buf_u16(sk_buf *b, uint32_t v)
{
    static const char hx[] = "0123456789abcdef";
    char t[6] = {'\\', 'u', hx[(v >> 12) & 15], hx[(v >> 8) & 15], hx[(v >> 4) & 15], hx[v & 15]};
    sk_buf_add(b, t, sizeof(t));
}

static void buf_u64(sk_buf *b, uint64_t v)
{
    char t[24];
    size_t i = sizeof(t);
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sk_buf_add(b, t + i, sizeof(t) - i);
}

/* A JSON string (or null) in the log's form: pure ASCII, every control
 * character and DEL escaped, non-ASCII as \u escapes, invalid UTF-8 as
 * U+FFFD, cut after SK_AUDIT_MAX_FIELD input bytes with a visible marker. */
static void buf_json_str(sk_buf *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n, i = 0, run = 0;
    if (!s) {
        sk_buf_add(b, "null", 4);
        return;
    }
    n = strlen(s);
    sk_buf_add(b, "\"", 1);
    while (i < n) {
        unsigned char c = u[i];
        uint32_t cp;
        size_t len;
        if (i >= SK_AUDIT_MAX_FIELD) {
            sk_buf_add(b, s + run, i - run);
            run = i = n;
            sk_buf_add(b, "...[cut]", 8);
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            i++;
            continue;
        }
        sk_buf_add(b, s + run, i - run); /* the plain run before this byte */
        if (c == '"' || c == '\\') {
            char t[2] = {'\\', (char)c};
            sk_buf_add(b, t, 2);
            len = 1;
        } else if (c == '\n') {
            sk_buf_add(b, "\\n", 2);
            len = 1;
        } else if (c == '\r') {
            sk_buf_add(b, "\\r", 2);
            len = 1;
        } else if (c == '\t') {
            sk_buf_add(b, "\\t", 2);
            len = 1;
        } else if (c < 0x80) {
            buf_u16(b, c);
            len = 1;
        } else {
            len = utf8_next(u + i, n - i, &cp);
            if (len == 0) {
                cp = 0xfffd;
                len = 1;
            }
            if (cp >= 0x10000) {
                cp -= 0x10000;
                buf_u16(b, 0xd800 + (cp >> 10));
                buf_u16(b, 0xdc00 + (cp & 0x3ff));
            } else {
                buf_u16(b, cp);
            }
        }
        i += len;
        run = i;
    }
    sk_buf_add(b, s + run, i - run);
    sk_buf_add(b, "\"", 1);
}

/* Serialise, chain, (sign,) and write one entry. details is the compact JSON
 * text of an object in the log's ASCII form. */
static int emit_text_locked(sk_audit *a, int64_t now, const char *ev, const char *actor,
                            const char *tenant, const char *peer, const char *serial,
                            const char *details, int is_checkpoint)
{
    char ts[32], h[SK_AUDIT_HASH_HEX + 1];
    sk_buf b;
    char *line = a->line;
    size_t llen;

    if (a->broken) {
        sk_log(SK_LOG_ERR, "audit: log is in a failed state after a write error");
        return -1;
    }
    if (!details || audit_format_ts(now, ts) != 0)
        return -1;
    /* Leave room for the signature and hash suffix behind the body. */
    sk_buf_init(&b, line, SK_AUDIT_MAX_LINE - AUDIT_SIG_PART_LEN - AUDIT_H_SUFFIX_LEN);
    sk_buf_add(&b, "{\"seq\":", 7);
    buf_u64(&b, a->seq + 1);
    sk_buf_add(&b, ",\"ts\":\"", 7);
    sk_buf_puts(&b, ts);
    sk_buf_add(&b, "\",\"ev\":", 7);
    buf_json_str(&b, ev);
    sk_buf_add(&b, ",\"actor\":", 9);
    buf_json_str(&b, actor);
    sk_buf_add(&b, ",\"tenant\":", 10);
    buf_json_str(&b, tenant);
    sk_buf_add(&b, ",\"peer\":", 8);
    buf_json_str(&b, peer);
    sk_buf_add(&b, ",\"serial\":", 10);
    buf_json_str(&b, serial);
    sk_buf_add(&b, ",\"details\":", 11);
    sk_buf_puts(&b, details);
    sk_buf_add(&b, ",\"prev\":\"", 9);
    sk_buf_add(&b, a->prev, SK_AUDIT_HASH_HEX);
    sk_buf_add(&b, "\"", 1);
    if (sk_buf_finish(&b) != 0) {
        sk_log(SK_LOG_ERR, "audit: entry too large");
        return -1;
    }
    llen = b.len;
    if (is_checkpoint) {
        uint8_t sig[SK_AUDIT_SIG_LEN];
        size_t dl = sizeof(AUDIT_SIG_DOMAIN) - 1;
        uint8_t *msg = malloc(dl + llen);
        int src;
        if (!msg)
            return -1;
        memcpy(msg, AUDIT_SIG_DOMAIN, dl);
        memcpy(msg + dl, line, llen);
        src = a->signer.sign(a->signer.ctx, msg, dl + llen, sig);
        free(msg);
        if (src != 0) {
            sk_log(SK_LOG_ERR, "audit: signing a checkpoint failed");
            return -1;
        }
        memcpy(line + llen, ",\"sig\":\"", 8);
        llen += 8;
        sk_b64url_encode(sig, sizeof(sig), line + llen); /* 86 chars + NUL */
        llen += AUDIT_SIG_B64_LEN;
        line[llen++] = '"';
    }
    if (audit_hash_hex(line, llen, h) != 0)
        return -1;
    memcpy(line + llen, ",\"h\":\"", 6);
    llen += 6;
    memcpy(line + llen, h, SK_AUDIT_HASH_HEX);
    llen += SK_AUDIT_HASH_HEX;
    memcpy(line + llen, "\"}\n", 3);
    llen += 3;
    if (sk_write_all(a->seg_fd, line, llen) != 0) {
        int saved = errno;
        /* Never leave half a line in front of the next entry. */
        if (ftruncate(a->seg_fd, a->seg_end) != 0)
            a->broken = 1;
        sk_log(SK_LOG_ERR, "audit: write to %s failed: %s", a->seg_name, strerror(saved));
        return -1;
    }
    a->seg_end += (off_t)llen;
    a->seq++;
    memcpy(a->prev, h, sizeof(a->prev));
    a->dirty = 1;
    return 0;
}

/* Same with details as a jansson object (consumed). */
static int emit_locked(sk_audit *a, int64_t now, const char *ev, const char *actor,
                       const char *tenant, const char *peer, const char *serial, json_t *details,
                       int is_checkpoint)
{
    char *text;
    int rc;
    if (!details)
        return -1;
    text = json_dumps(details, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(details);
    if (!text)
        return -1;
    rc = emit_text_locked(a, now, ev, actor, tenant, peer, serial, text, is_checkpoint);
    free(text);
    return rc;
}

static json_t *checkpoint_details(const sk_audit *a, const char *reason)
{
    return json_pack("{s:s, s:I, s:I, s:s}", "key", a->keyid, "from", (json_int_t)a->cp_from,
                     "count", (json_int_t)a->since_cp, "reason", reason);
}

static int checkpoint_locked(sk_audit *a, int64_t now, const char *reason)
{
    if (a->seg_fd < 0)
        return 0;
    if (emit_locked(a, now, SK_AUDIT_EV_CHECKPOINT, NULL, NULL, NULL, NULL,
                    checkpoint_details(a, reason), 1) != 0)
        return -1;
    a->since_cp = 0;
    a->cp_from = a->seq + 1;
    a->last_cp_ms = now;
    return 0;
}

/* Start a new segment for the day of `now`. The previous segment ends with a
 * checkpoint (always written, which also tells other processes appending to
 * the same directory that their view is stale: its size changes). */
static int rotate_locked(sk_audit *a, int64_t now)
{
    char name[32], path[4200], prev_seg[32];
    int64_t day = now / AUDIT_DAY_MS;
    int fd = -1;
    int rc = -1;

    prev_seg[0] = '\0';
    if (a->seg_fd >= 0) {
        if (checkpoint_locked(a, now, "rotate") != 0 || fdatasync(a->seg_fd) != 0)
            goto out;
        memcpy(prev_seg, a->seg_name, sizeof(prev_seg));
    }
    if (audit_segment_name(day, name) != 0 || seg_path(a, name, path, sizeof(path)) != 0)
        goto out;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0) {
        sk_log(SK_LOG_ERR, "audit: cannot create segment %s: %s", path, strerror(errno));
        goto out;
    }
    if (fsync_dir(a->dir) != 0)
        goto out;
    if (a->seg_fd >= 0)
        (void)close(a->seg_fd);
    a->seg_fd = fd;
    fd = -1;
    memcpy(a->seg_name, name, sizeof(a->seg_name));
    a->seg_day = day;
    a->seg_end = 0;
    if (emit_locked(a, now, SK_AUDIT_EV_SEGMENT, NULL, NULL, NULL, NULL,
                    json_pack("{s:s, s:s?, s:s, s:I}", "segment", name, "prev_segment",
                              prev_seg[0] ? prev_seg : NULL, "key", a->keyid, "seq",
                              (json_int_t)(a->seq + 1)),
                    0) != 0)
        goto out;
    a->since_cp++;
    rc = 0;
out:
    if (fd >= 0)
        (void)close(fd);
    return rc;
}

/* Read the chain head from the newest segment; cut a torn tail. */
static int resync_locked(sk_audit *a)
{
    char **segs = NULL;
    size_t nsegs = 0;
    char *buf = NULL;
    sk_audit_entry e;
    int fd = -1, rc = -1;

    memset(&e, 0, sizeof(e));
    if (a->seg_fd >= 0) {
        (void)close(a->seg_fd);
        a->seg_fd = -1;
    }
    buf = malloc(SK_AUDIT_MAX_LINE + 3);
    if (!buf)
        goto out;
    for (;;) {
        char path[4200];
        struct stat st;
        off_t start, cut;
        ssize_t got;
        size_t n;
        char *nl, *last;

        audit_free_list(segs, nsegs);
        segs = NULL;
        if (audit_list_segments(a->dir, &segs, &nsegs) != 0) {
            sk_log(SK_LOG_ERR, "audit: cannot list %s: %s", a->dir, strerror(errno));
            goto out;
        }
        if (nsegs == 0) {
            a->seq = 0;
            memcpy(a->prev, AUDIT_ZERO_HASH, sizeof(a->prev));
            a->seg_name[0] = '\0';
            a->seg_day = -1;
            break;
        }
        if (seg_path(a, segs[nsegs - 1], path, sizeof(path)) != 0)
            goto out;
        fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || fstat(fd, &st) != 0) {
            sk_log(SK_LOG_ERR, "audit: cannot open %s: %s", path, strerror(errno));
            goto out;
        }
        start = st.st_size > SK_AUDIT_MAX_LINE + 2 ? st.st_size - (SK_AUDIT_MAX_LINE + 2) : 0;
        n = (size_t)(st.st_size - start);
        got = n ? pread(fd, buf, n, start) : 0;
        if (got < 0 || (size_t)got != n)
            goto out;
        buf[n] = '\0';
        cut = st.st_size;
        if (n > 0 && buf[n - 1] != '\n') {
            /* Torn write from a crash: the append never returned, nothing
             * acknowledged is lost by cutting it. */
            nl = memrchr(buf, '\n', n);
            if (!nl && start > 0) {
                sk_log(SK_LOG_ERR, "audit: %s ends in an over-long unterminated line", path);
                goto out;
            }
            cut = nl ? start + (off_t)(nl - buf) + 1 : 0;
            if (ftruncate(fd, cut) != 0 || fsync(fd) != 0)
                goto out;
            a->pending_dropped += (uint64_t)(st.st_size - cut);
            if (sk_strlcpy(a->pending_seg, sizeof(a->pending_seg), segs[nsegs - 1]) != 0)
                goto out;
            sk_log(SK_LOG_WARN, "audit: cut %lld bytes of a torn last line in %s",
                   (long long)(st.st_size - cut), path);
            n = nl ? (size_t)(nl - buf) + 1 : 0;
        }
        if (cut == 0) {
            /* A segment created by a writer that died before its header. */
            (void)close(fd);
            fd = -1;
            if (unlink(path) != 0 || fsync_dir(a->dir) != 0)
                goto out;
            continue;
        }
        /* n > 0 and buf[n-1] == '\n': find the last complete line. */
        buf[n - 1] = '\0';
        last = memrchr(buf, '\n', n - 1);
        last = last ? last + 1 : buf;
        if (last == buf && start > 0) {
            sk_log(SK_LOG_ERR, "audit: %s: last line too long", path);
            goto out;
        }
        if (sk_audit_parse_line(last, (size_t)(buf + n - 1 - last), &e, NULL, 0) != 0 ||
            !e.hash_ok) {
            sk_log(SK_LOG_ERR,
                   "audit: the last entry of %s is corrupt; run 'sekishoctl audit verify' and "
                   "move the damaged segment aside",
                   path);
            goto out;
        }
        a->seq = e.seq;
        memcpy(a->prev, e.hash, sizeof(a->prev));
        if (sk_strlcpy(a->seg_name, sizeof(a->seg_name), segs[nsegs - 1]) != 0)
            goto out;
        a->seg_day = audit_segment_day(a->seg_name);
        a->seg_end = cut;
        a->seg_fd = fd;
        fd = -1;
        break;
    }
    rc = 0;
out:
    if (fd >= 0)
        (void)close(fd);
    sk_audit_entry_free(&e);
    audit_free_list(segs, nsegs);
    free(buf);
    return rc;
}

static int prune_locked(sk_audit *a, int64_t now, unsigned *removed);

/* Take the cross-process lock and make sure our view is current. */
static int begin_locked(sk_audit *a, int64_t now)
{
    struct stat st;
    int stale = a->seg_fd < 0;
    while (flock(a->lock_fd, LOCK_EX) != 0) {
        if (errno != EINTR)
            return -1;
    }
    if (!stale && (fstat(a->seg_fd, &st) != 0 || st.st_size != a->seg_end || st.st_nlink == 0))
        stale = 1;
    if (stale) {
        if (resync_locked(a) != 0)
            goto fail;
        a->since_cp = 0;
        a->cp_from = a->seq + 1;
    }
    if (a->seg_fd < 0 || now / AUDIT_DAY_MS > a->seg_day) {
        if (rotate_locked(a, now) != 0)
            goto fail;
    }
    if (a->pending_dropped) {
        json_t *d = json_pack("{s:s, s:I}", "segment", a->pending_seg, "dropped_bytes",
                              (json_int_t)a->pending_dropped);
        if (emit_locked(a, now, SK_AUDIT_EV_RECOVER, NULL, NULL, NULL, NULL, d, 0) != 0)
            goto fail;
        a->since_cp++;
        a->pending_dropped = 0;
    }
    return 0;
fail:
    (void)flock(a->lock_fd, LOCK_UN);
    return -1;
}

static void end_locked(sk_audit *a)
{
    (void)flock(a->lock_fd, LOCK_UN);
}

/* Called with mu held and the flock released. Returns a dup of the segment
 * fd to fdatasync outside the mutex, or -1 when nothing needs syncing. */
static int take_sync_fd(sk_audit *a, int64_t now, int force)
{
    int fd;
    if (!a->dirty || a->seg_fd < 0)
        return -1;
    if (!force && now - a->last_sync_ms < GROUP_COMMIT_MS)
        return -1;
    fd = dup(a->seg_fd);
    if (fd < 0)
        return -2;
    a->dirty = 0;
    a->last_sync_ms = now;
    return fd;
}

/* fdatasync on a dup'd descriptor: the open file description is shared, so
 * this flushes the segment even if a rotation closes a->seg_fd meanwhile. */
static int sync_fd(sk_audit *a, int fd)
{
    int rc;
    if (fd == -1)
        return 0;
    if (fd < 0)
        return -1;
    rc = fdatasync(fd);
    (void)close(fd);
    if (rc != 0) {
        pthread_mutex_lock(&a->mu);
        a->dirty = 1;
        pthread_mutex_unlock(&a->mu);
        sk_log(SK_LOG_ERR, "audit: fdatasync failed: %s", strerror(errno));
    }
    return rc;
}

static int due_checkpoint(const sk_audit *a, int64_t now)
{
    return a->since_cp > 0 &&
           (a->since_cp >= a->cp_every || now - a->last_cp_ms >= (int64_t)a->cp_secs * 1000);
}

/* ---- handshake refusals ------------------------------------------------ */

static void bounded_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1; /* a cut UTF-8 sequence is turned into U+FFFD later */
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static int refusal_summary_locked(sk_audit *a, int64_t now)
{
    json_t *d = NULL, *arr = NULL;
    if (a->ref_total == 0)
        return 0;
    arr = json_array();
    if (!arr)
        return -1;
    for (size_t i = 0; i < a->n_refs; i++) {
        json_t *it = json_pack("{s:o, s:o, s:o, s:I}", "peer", jstr(a->refs[i].peer), "reason",
                               jstr(a->refs[i].reason), "serial",
                               a->refs[i].serial[0] ? jstr(a->refs[i].serial) : json_null(),
                               "count", (json_int_t)a->refs[i].count);
        if (!it || json_array_append_new(arr, it) != 0) {
            json_decref(arr);
            return -1;
        }
    }
    d = json_pack("{s:I, s:I, s:I, s:o}", "interval_s",
                  (json_int_t)((now - a->ref_start_ms) / 1000), "total", (json_int_t)a->ref_total,
                  "other", (json_int_t)a->ref_other, "refusals", arr);
    if (!d)
        return -1;
    if (emit_locked(a, now, SK_AUDIT_EV_TLS_REFUSED, NULL, NULL, NULL, NULL, d, 0) != 0)
        return -1;
    a->since_cp++;
    a->n_refs = 0;
    a->ref_total = 0;
    a->ref_other = 0;
    return 0;
}

static int refusal_due(const sk_audit *a, int64_t now)
{
    return a->ref_total > 0 && now - a->ref_start_ms >= (int64_t)a->ref_secs * 1000;
}

/* ---- public API -------------------------------------------------------- */

int sk_audit_open(const sk_audit_options *o, sk_audit **out, char *err, size_t errcap)
{
    sk_audit *a = NULL;
    char lock_path[4200];
    uint8_t pub[32];
    int rc = -1, mu_ok = 0, locked = 0;
    int64_t now = 0;

    *out = NULL;
    if (!o || !o->dir || !*o->dir || (!o->signer && !o->key_path)) {
        audit_err(err, errcap, "audit: directory and signing key are required");
        goto out;
    }
    a = calloc(1, sizeof(*a));
    if (!a)
        goto out;
    a->lock_fd = -1;
    a->seg_fd = -1;
    a->line = malloc(SK_AUDIT_MAX_LINE + 4);
    a->rq = malloc(RQ_LEN * sizeof(*a->rq));
    if (!a->line || !a->rq || pthread_mutex_init(&a->mu, NULL) != 0)
        goto out;
    mu_ok = 1;
    if (sk_strlcpy(a->dir, sizeof(a->dir), o->dir) != 0) {
        audit_err(err, errcap, "audit: directory path too long");
        goto out;
    }
    if (sk_mkdir_p(a->dir, 0700) != 0) {
        audit_err(err, errcap, "audit: cannot create %s: %s", a->dir, strerror(errno));
        goto out;
    }
    if (o->signer) {
        a->signer = *o->signer;
    } else if (sk_audit_signer_from_file(o->key_path, a->dir, &a->signer) != 0) {
        audit_err(err, errcap, "audit: cannot use signing key %s (must be a 0600 PEM Ed25519 key "
                  "outside the audit directory)", o->key_path);
        goto out;
    }
    if (!a->signer.sign || !a->signer.public_key || a->signer.public_key(a->signer.ctx, pub) != 0 ||
        audit_keyid(pub, a->keyid) != 0) {
        audit_err(err, errcap, "audit: signer has no usable public key");
        goto out;
    }
    a->retention_ms = o->retention_secs == 0 ? 365LL * AUDIT_DAY_MS
                      : o->retention_secs < 0 ? -1
                                              : o->retention_secs * 1000;
    a->cp_every = o->checkpoint_every ? o->checkpoint_every : 1000;
    a->cp_secs = o->checkpoint_secs ? o->checkpoint_secs : 300;
    a->ref_secs = o->refusal_interval_secs ? o->refusal_interval_secs : 60;
    a->clock_ms = o->clock_ms;
    a->clock_ctx = o->clock_ctx;
    if (seg_path(a, ".lock", lock_path, sizeof(lock_path)) != 0)
        goto out;
    a->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->lock_fd < 0) {
        audit_err(err, errcap, "audit: cannot open %s: %s", lock_path, strerror(errno));
        goto out;
    }
    now = now_ms(a);
    a->last_cp_ms = now;
    a->last_sync_ms = now;
    pthread_mutex_lock(&a->mu);
    if (begin_locked(a, now) != 0) {
        pthread_mutex_unlock(&a->mu);
        audit_err(err, errcap, "audit: cannot open the log in %s (see the log for why)", a->dir);
        goto out;
    }
    locked = 1;
    if (a->retention_ms > 0 && prune_locked(a, now, NULL) != 0) {
        audit_err(err, errcap, "audit: retention pruning failed in %s", a->dir);
        goto out;
    }
    rc = 0;
out:
    if (locked) {
        int fd;
        end_locked(a);
        fd = take_sync_fd(a, now, 1);
        pthread_mutex_unlock(&a->mu);
        if (sync_fd(a, fd) != 0 && rc == 0) {
            audit_err(err, errcap, "audit: cannot sync %s", a->dir);
            rc = -1;
        }
    }
    if (rc == 0) {
        *out = a;
    } else if (a) {
        if (a->seg_fd >= 0)
            (void)close(a->seg_fd);
        if (a->lock_fd >= 0)
            (void)close(a->lock_fd);
        if (a->signer.destroy)
            a->signer.destroy(a->signer.ctx);
        if (mu_ok)
            pthread_mutex_destroy(&a->mu);
        free(a->line);
        free(a->rq);
        free(a);
    }
    return rc;
}

static int kv_details(const sk_audit_event *ev, json_t **out)
{
    json_t *d = NULL;
    json_error_t jerr;
    if (ev->details_json) {
        d = json_loads(ev->details_json, JSON_REJECT_DUPLICATES, &jerr);
        if (!d || !json_is_object(d)) {
            json_decref(d);
            return -1;
        }
    } else {
        d = json_object();
        if (!d)
            return -1;
    }
    for (size_t i = 0; i < ev->n_kv; i++) {
        char *k;
        int r;
        if (!ev->kv || !ev->kv[i].key) {
            json_decref(d);
            return -1;
        }
        k = sanitize(ev->kv[i].key);
        if (!k) {
            json_decref(d);
            return -1;
        }
        r = json_object_set_new(d, k, jstr(ev->kv[i].value));
        free(k);
        if (r != 0) {
            json_decref(d);
            return -1;
        }
    }
    *out = d;
    return 0;
}

/* Append with details either as a jansson object d (consumed) or as text. */
/* Write the queued request lines; called with mu and the flock held. A line that
 * cannot be written is reported and dropped: the rest still go out in order. */
static int drain_requests_locked(sk_audit *a)
{
    int rc = 0;
    for (unsigned i = 0; i < a->rq_len; i++) {
        const struct queued_req *q = &a->rq[i];
        if (emit_text_locked(a, q->ts, SK_AUDIT_EV_REQUEST, q->is_null[0] ? NULL : q->actor,
                             q->is_null[1] ? NULL : q->tenant, q->is_null[2] ? NULL : q->peer,
                             q->is_null[3] ? NULL : q->serial, q->details, 0) != 0) {
            rc = -1;
            continue;
        }
        a->since_cp++;
    }
    if (rc != 0)
        sk_log(SK_LOG_ERR, "audit: request lines of a batch could not be written");
    a->rq_len = 0;
    return rc;
}

static int append_common(sk_audit *a, const char *event, const char *actor, const char *tenant,
                         const char *peer, const char *serial, json_t *d, const char *dtext,
                         int durable, uint64_t *seq_out)
{
    int64_t now;
    int rc = -1, fd, erc;
    if (!a || !event || !*event || (!d && !dtext)) {
        json_decref(d);
        return -1;
    }
    pthread_mutex_lock(&a->mu);
    now = now_ms(a);
    if (begin_locked(a, now) != 0) {
        json_decref(d);
        goto unlock;
    }
    (void)drain_requests_locked(a); /* earlier lines first; failures are logged there */
    if (refusal_due(a, now) && refusal_summary_locked(a, now) != 0) {
        json_decref(d);
        goto end;
    }
    erc = d ? emit_locked(a, now, event, actor, tenant, peer, serial, d, 0)
            : emit_text_locked(a, now, event, actor, tenant, peer, serial, dtext, 0);
    if (erc != 0)
        goto end;
    a->since_cp++;
    if (seq_out)
        *seq_out = a->seq;
    rc = 0;
    /* A failed checkpoint does not un-write the entry; it is retried later. */
    if (due_checkpoint(a, now) && checkpoint_locked(a, now, "periodic") != 0)
        sk_log(SK_LOG_ERR, "audit: periodic checkpoint failed");
end:
    end_locked(a);
unlock:
    fd = rc == 0 ? take_sync_fd(a, now, durable) : -1;
    pthread_mutex_unlock(&a->mu);
    if (sync_fd(a, fd) != 0)
        rc = -1;
    return rc;
}

int sk_audit_append(sk_audit *a, const sk_audit_event *ev, int durable, uint64_t *seq_out)
{
    json_t *d = NULL;
    if (!a || !ev || !ev->event)
        return -1;
    if (kv_details(ev, &d) != 0)
        return -1;
    return append_common(a, ev->event, ev->actor, ev->tenant, ev->peer, ev->serial, d, NULL,
                         durable, seq_out);
}

int sk_audit_request(sk_audit *a, const char *user, const char *tenant, const char *peer,
                     const char *serial, const char *method, const char *path, int status,
                     uint64_t bytes, uint64_t duration_us)
{
    /* The hot path: serialised by hand, no jansson allocations. */
    char d[2 * 6 * SK_AUDIT_MAX_FIELD + 256];
    sk_buf b;
    sk_buf_init(&b, d, sizeof(d));
    sk_buf_add(&b, "{\"method\":", 10);
    buf_json_str(&b, method ? method : "");
    sk_buf_add(&b, ",\"path\":", 8);
    buf_json_str(&b, path ? path : "");
    sk_buf_add(&b, ",\"status\":", 10);
    if (status < 0) {
        sk_buf_add(&b, "-", 1);
        buf_u64(&b, (uint64_t)(-(int64_t)status));
    } else {
        buf_u64(&b, (uint64_t)status);
    }
    sk_buf_add(&b, ",\"bytes\":", 9);
    buf_u64(&b, bytes > INT64_MAX ? INT64_MAX : bytes);
    sk_buf_add(&b, ",\"duration_us\":", 15);
    buf_u64(&b, duration_us > INT64_MAX ? INT64_MAX : duration_us);
    sk_buf_add(&b, "}", 1);
    if (sk_buf_finish(&b) != 0)
        return -1;
    if (!a)
        return -1;
    {
        const char *fields[4] = { user, tenant, peer, serial };
        struct queued_req *q;
        int rc = 0;
        /* Anything that does not fit a queue slot takes the direct path. */
        if (b.len >= RQ_DETAILS)
            return append_common(a, SK_AUDIT_EV_REQUEST, user, tenant, peer, serial, NULL, d, 0, NULL);
        for (int i = 0; i < 4; i++)
            if (fields[i] != NULL && strlen(fields[i]) >= RQ_FIELD)
                return append_common(a, SK_AUDIT_EV_REQUEST, user, tenant, peer, serial, NULL, d, 0, NULL);
        pthread_mutex_lock(&a->mu);
        if (a->rq_len == RQ_LEN) {
            int64_t now = now_ms(a);
            if (begin_locked(a, now) != 0) {
                rc = -1;
                a->rq_len = 0; /* cannot write: drop rather than grow */
            } else {
                rc = drain_requests_locked(a);
                end_locked(a);
            }
        }
        q = &a->rq[a->rq_len++];
        q->ts = now_ms(a);
        for (int i = 0; i < 4; i++) {
            char *dst = i == 0 ? q->actor : i == 1 ? q->tenant : i == 2 ? q->peer : q->serial;
            q->is_null[i] = fields[i] == NULL;
            memcpy(dst, fields[i] ? fields[i] : "", fields[i] ? strlen(fields[i]) + 1 : 1);
        }
        memcpy(q->details, d, b.len + 1);
        pthread_mutex_unlock(&a->mu);
        return rc;
    }
}

int sk_audit_refused(sk_audit *a, const char *peer, const char *reason, const char *serial)
{
    char p[64], r[32], s[80];
    int64_t now;
    int rc = 0;
    size_t i;
    if (!a)
        return -1;
    bounded_copy(p, sizeof(p), peer);
    bounded_copy(r, sizeof(r), reason);
    bounded_copy(s, sizeof(s), serial);
    pthread_mutex_lock(&a->mu);
    now = now_ms(a);
    if (refusal_due(a, now)) {
        if (begin_locked(a, now) != 0) {
            rc = -1;
        } else {
            (void)drain_requests_locked(a);
            rc = refusal_summary_locked(a, now);
            end_locked(a);
        }
    }
    if (a->ref_total == 0)
        a->ref_start_ms = now;
    a->ref_total++;
    for (i = 0; i < a->n_refs; i++)
        if (!strcmp(a->refs[i].peer, p) && !strcmp(a->refs[i].reason, r) &&
            !strcmp(a->refs[i].serial, s))
            break;
    if (i < a->n_refs) {
        a->refs[i].count++;
    } else if (a->n_refs < REFUSAL_SLOTS) {
        memcpy(a->refs[i].peer, p, sizeof(p));
        memcpy(a->refs[i].reason, r, sizeof(r));
        memcpy(a->refs[i].serial, s, sizeof(s));
        a->refs[i].count = 1;
        a->n_refs++;
    } else {
        a->ref_other++; /* the table is full: counted, not itemised */
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int sk_audit_checkpoint(sk_audit *a)
{
    int64_t now;
    int rc = -1, fd;
    if (!a)
        return -1;
    pthread_mutex_lock(&a->mu);
    now = now_ms(a);
    if (begin_locked(a, now) != 0)
        goto unlock;
    (void)drain_requests_locked(a);
    rc = checkpoint_locked(a, now, "manual");
    end_locked(a);
unlock:
    fd = rc == 0 ? take_sync_fd(a, now, 1) : -1;
    pthread_mutex_unlock(&a->mu);
    if (sync_fd(a, fd) != 0)
        rc = -1;
    return rc;
}

int sk_audit_flush(sk_audit *a)
{
    int64_t now;
    int rc = 0, fd;
    if (!a)
        return -1;
    pthread_mutex_lock(&a->mu);
    now = now_ms(a);
    if (a->rq_len > 0 || refusal_due(a, now) || due_checkpoint(a, now)) {
        if (begin_locked(a, now) != 0) {
            rc = -1;
        } else {
            if (drain_requests_locked(a) != 0)
                rc = -1;
            if (refusal_due(a, now) && refusal_summary_locked(a, now) != 0)
                rc = -1;
            if (due_checkpoint(a, now) && checkpoint_locked(a, now, "periodic") != 0)
                rc = -1;
            end_locked(a);
        }
    }
    fd = take_sync_fd(a, now, 1);
    pthread_mutex_unlock(&a->mu);
    if (sync_fd(a, fd) != 0)
        rc = -1;
    return rc;
}

static int prune_locked(sk_audit *a, int64_t now, unsigned *removed)
{
    char **segs = NULL;
    size_t nsegs = 0, ncut = 0;
    int64_t cutoff = now - a->retention_ms;
    int rc = -1;
    if (removed)
        *removed = 0;
    if (a->retention_ms <= 0)
        return 0;
    if (audit_list_segments(a->dir, &segs, &nsegs) != 0)
        goto out;
    /* Whole days only, never the newest (current) segment. */
    while (ncut + 1 < nsegs && (audit_segment_day(segs[ncut]) + 1) * AUDIT_DAY_MS <= cutoff &&
           strcmp(segs[ncut], a->seg_name) != 0)
        ncut++;
    if (ncut == 0) {
        rc = 0;
        goto out;
    }
    /* Record first, fsync, then unlink: a crash in between leaves extra old
     * segments (harmless), never a silent gap. */
    if (emit_locked(a, now, SK_AUDIT_EV_PRUNE, NULL, NULL, NULL, NULL,
                    json_pack("{s:s, s:s, s:I, s:s, s:I}", "removed_first", segs[0],
                              "removed_last", segs[ncut - 1], "count", (json_int_t)ncut,
                              "oldest_kept", segs[ncut], "retention_s",
                              (json_int_t)(a->retention_ms / 1000)),
                    0) != 0)
        goto out;
    a->since_cp++;
    if (fdatasync(a->seg_fd) != 0)
        goto out;
    for (size_t i = 0; i < ncut; i++) {
        char path[4200];
        if (seg_path(a, segs[i], path, sizeof(path)) != 0 || unlink(path) != 0) {
            sk_log(SK_LOG_ERR, "audit: cannot remove %s: %s", segs[i], strerror(errno));
            goto out;
        }
    }
    if (fsync_dir(a->dir) != 0)
        goto out;
    if (removed)
        *removed = (unsigned)ncut;
    rc = 0;
out:
    audit_free_list(segs, nsegs);
    return rc;
}

int sk_audit_prune(sk_audit *a, unsigned *removed)
{
    int64_t now;
    int rc = -1, fd;
    if (!a)
        return -1;
    pthread_mutex_lock(&a->mu);
    now = now_ms(a);
    if (begin_locked(a, now) != 0)
        goto unlock;
    rc = prune_locked(a, now, removed);
    end_locked(a);
unlock:
    fd = rc == 0 ? take_sync_fd(a, now, 1) : -1;
    pthread_mutex_unlock(&a->mu);
    if (sync_fd(a, fd) != 0)
        rc = -1;
    return rc;
}

uint64_t sk_audit_last_seq(sk_audit *a)
{
    uint64_t s;
    pthread_mutex_lock(&a->mu);
    s = a->seq;
    pthread_mutex_unlock(&a->mu);
    return s;
}

void sk_audit_close(sk_audit *a)
{
    int64_t now;
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    now = now_ms(a);
    if (begin_locked(a, now) == 0) {
        if (drain_requests_locked(a) != 0)
            sk_log(SK_LOG_ERR, "audit: final request lines failed");
        if (refusal_summary_locked(a, now) != 0)
            sk_log(SK_LOG_ERR, "audit: final refusal summary failed");
        if (a->since_cp > 0 && checkpoint_locked(a, now, "close") != 0)
            sk_log(SK_LOG_ERR, "audit: final checkpoint failed");
        end_locked(a);
    } else {
        sk_log(SK_LOG_ERR, "audit: cannot write the final checkpoint");
    }
    if (a->seg_fd >= 0) {
        if (fdatasync(a->seg_fd) != 0)
            sk_log(SK_LOG_ERR, "audit: final fdatasync failed: %s", strerror(errno));
        (void)close(a->seg_fd);
    }
    if (a->lock_fd >= 0)
        (void)close(a->lock_fd);
    if (a->signer.destroy)
        a->signer.destroy(a->signer.ctx);
    pthread_mutex_unlock(&a->mu);
    pthread_mutex_destroy(&a->mu);
    free(a->line);
    free(a->rq);
    free(a);
}
