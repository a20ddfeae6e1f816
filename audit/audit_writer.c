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

#include "audit_wint.h"


int64_t audit_now_ms(const sk_audit *a)
{
    struct timespec ts;
    if (a->clock_ms)
        return a->clock_ms(a->clock_ctx);
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

int64_t audit_mono_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Append the MAC, (the signature,) and the hash suffix to the entry body in
 * line[0..*llen); h receives the entry hash. */
static int seal_line(sk_audit *a, char *line, size_t *len, int is_checkpoint,
                     char h[SK_AUDIT_HASH_HEX + 1])
{
    size_t llen = *len;
    /* The MAC lets the next writer tell its own tail from lines appended by
     * someone without the key (FORMAT.md, "Entry MAC"). */
    if (audit_ekey_mac(&a->key, line, llen, h) != 0)
        return -1;
    memcpy(line + llen, ",\"mac\":\"", 8);
    memcpy(line + llen + 8, h, SK_AUDIT_HASH_HEX);
    line[llen + 8 + SK_AUDIT_HASH_HEX] = '"';
    llen += AUDIT_MAC_PART_LEN;
    if (is_checkpoint) {
        uint8_t sig[SK_AUDIT_SIG_LEN];
        size_t dl = sizeof(AUDIT_SIG_DOMAIN) - 1;
        uint8_t *msg = malloc(dl + llen);
        int src;
        if (!msg)
            return -1;
        memcpy(msg, AUDIT_SIG_DOMAIN, dl);
        memcpy(msg + dl, line, llen);
        src = audit_ekey_sign(&a->key, msg, dl + llen, sig);
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
    *len = llen;
    return 0;
}

/* Serialise, MAC, (sign,) chain and write one entry. details is the compact JSON
 * text of an object in the log's ASCII form. */
int audit_emit_text_locked(sk_audit *a, int64_t now, const char *ev, const char *actor,
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
    sk_buf_init(&b, line, SK_AUDIT_MAX_LINE - AUDIT_MAC_PART_LEN - AUDIT_SIG_PART_LEN -
                              AUDIT_H_SUFFIX_LEN);
    sk_buf_add(&b, "{\"seq\":", 7);
    audit_buf_u64(&b, a->seq + 1);
    sk_buf_add(&b, ",\"ts\":\"", 7);
    sk_buf_puts(&b, ts);
    sk_buf_add(&b, "\",\"ev\":", 7);
    audit_buf_json_str(&b, ev);
    if (a->node[0]) { /* format 3: every entry names its node, under h, mac and sig */
        sk_buf_add(&b, ",\"node\":", 8);
        audit_buf_json_str(&b, a->node);
    }
    sk_buf_add(&b, ",\"actor\":", 9);
    audit_buf_json_str(&b, actor);
    sk_buf_add(&b, ",\"tenant\":", 10);
    audit_buf_json_str(&b, tenant);
    sk_buf_add(&b, ",\"peer\":", 8);
    audit_buf_json_str(&b, peer);
    sk_buf_add(&b, ",\"serial\":", 10);
    audit_buf_json_str(&b, serial);
    sk_buf_add(&b, ",\"details\":", 11);
    sk_buf_puts(&b, details);
    sk_buf_add(&b, ",\"prev\":\"", 9);
    sk_buf_add(&b, a->prev, SK_AUDIT_HASH_HEX);
    sk_buf_add(&b, "\"", 1);
    if (sk_buf_finish(&b) != 0 || b.len + AUDIT_MAC_PART_LEN + AUDIT_SIG_PART_LEN +
                                          AUDIT_H_SUFFIX_LEN + 1 > SK_AUDIT_MAX_LINE) {
        sk_log(SK_LOG_ERR, "audit: entry too large");
        return -1;
    }
    llen = b.len;
    if (seal_line(a, line, &llen, is_checkpoint, h) != 0)
        return -1;
    line[llen] = '\0'; /* the last line stays readable (witness, epochs file) */
    if (sk_write_all(a->seg_fd, line, llen) != 0) {
        int saved = errno;
        /* Never leave half a line in front of the next entry. */
        if (ftruncate(a->seg_fd, a->seg_end) != 0)
            a->broken = 1;
        sk_log(SK_LOG_ERR, "audit: write to %s failed: %s", a->seg_name, strerror(saved));
        return -1;
    }
    a->seg_end += (off_t)llen;
    a->tail_is_close = 0;
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
    rc = audit_emit_text_locked(a, now, ev, actor, tenant, peer, serial, text, is_checkpoint);
    free(text);
    return rc;
}

int audit_emit_locked(sk_audit *a, int64_t now, const char *ev, json_t *details, int is_checkpoint)
{
    return emit_locked(a, now, ev, NULL, NULL, NULL, NULL, details, is_checkpoint);
}

/* A checkpoint covers everything since the previous one ("from"), names the
 * epoch and its key, and, at a handoff, the next epoch's public key. */
int audit_checkpoint_locked(sk_audit *a, int64_t now, const char *reason, const char *next_seg,
                            const uint8_t *next_pub)
{
    json_t *d;
    char nhex[65];
    if (a->seg_fd < 0)
        return 0;
    d = json_pack("{s:I, s:s, s:s, s:I, s:s, s:s, s:I}", "epoch", (json_int_t)a->key.epoch, "key",
                  a->key.keyid, "origin", a->key.origin, "from", (json_int_t)(a->last_cp + 1),
                  "reason", reason, "segment", a->seg_name, "epoch_s",
                  (json_int_t)(a->epoch_ms / 1000));
    if (d && next_seg && json_object_set_new(d, "next_segment", json_string(next_seg)) != 0) {
        json_decref(d);
        return -1;
    }
    if (d && next_pub) {
        sk_hex_encode(next_pub, 32, nhex);
        if (json_object_set_new(d, "next", json_string(nhex)) != 0) {
            json_decref(d);
            return -1;
        }
    }
    if (emit_locked(a, now, SK_AUDIT_EV_CHECKPOINT, NULL, NULL, NULL, NULL, d, 1) != 0)
        return -1;
    a->last_cp = a->seq;
    a->last_cp_ms = now;
    a->tail_is_close = strcmp(reason, "close") == 0;
    audit_witness_queue_locked(a);
    return 0;
}

/* Start a new segment for the day of `now`. The previous segment ends with a
 * checkpoint (always written, which also tells other processes appending to
 * the same directory that their view is stale: its size changes). */
static int rotate_locked(sk_audit *a, int64_t now)
{
    char name[SK_AUDIT_SEG_MAX], path[4200], prev_seg[SK_AUDIT_SEG_MAX];
    int64_t day = now / AUDIT_DAY_MS;
    int fd = -1;
    int rc = -1;

    prev_seg[0] = '\0';
    if (audit_segment_name(day, a->node, name, sizeof(name)) != 0 || seg_path(a, name, path, sizeof(path)) != 0)
        goto out;
    if (a->seg_fd >= 0) {
        if (audit_checkpoint_locked(a, now, "rotate", name, NULL) != 0 || fdatasync(a->seg_fd) != 0)
            goto out;
        memcpy(prev_seg, a->seg_name, sizeof(prev_seg));
    }
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
                    json_pack("{s:s, s:s?, s:I, s:s, s:I}", "segment", name, "prev_segment",
                              prev_seg[0] ? prev_seg : NULL, "epoch", (json_int_t)a->key.epoch,
                              "key", a->key.keyid, "seq", (json_int_t)(a->seq + 1)),
                    0) != 0)
        goto out;
    rc = 0;
out:
    if (fd >= 0)
        (void)close(fd);
    return rc;
}

/* The last line of the newest segment becomes our chain head only if it is
 * intact and carries our MAC; the newest checkpoint before it sets "from". */
static int adopt_tail(sk_audit *a, const char *path, int fd, off_t size, const char *last,
                      size_t len)
{
    sk_audit_entry e;
    int rc = -1;
    memset(&e, 0, sizeof(e));
    if (sk_audit_parse_line(last, len, &e, NULL, 0) != 0 || !e.hash_ok) {
        sk_log(SK_LOG_ERR,
               "audit: the last entry of %s is corrupt; run 'sekishoctl audit verify' and "
               "move the damaged segment aside",
               path);
        goto out;
    }
    /* Before the MAC: two nodes pointed at one directory get the precise reason. */
    if (e.node && a->node_configured && strcmp(e.node, a->node) != 0) {
        sk_log(SK_LOG_ERR,
               "audit: %s holds the log of node %s, but [audit] node is %s: a chain belongs "
               "to one node (set [audit] node = %s, or give this node its own directory)",
               a->dir, e.node, a->node, e.node);
        if (sk_strlcpy(a->node_clash, sizeof(a->node_clash), e.node) != 0)
            a->node_clash[0] = '\0';
        goto out;
    }
    if (audit_tail_auth_locked(a, last, len, &e) != 0) {
        audit_alarm(a,
                    "the last entry of %s (seq %llu) does not carry this writer's MAC: it "
                    "was not written with the audit key (appended by hand?). Refusing to "
                    "continue the chain; run 'sekishoctl audit verify'",
                    path, (unsigned long long)e.seq);
        goto out;
    }
    if (audit_find_last_cp(fd, size, &a->last_cp) != 0) {
        sk_log(SK_LOG_ERR, "audit: cannot find the last checkpoint in %s", path);
        goto out;
    }
    if (e.node && !a->node_configured &&
        sk_strlcpy(a->node, sizeof(a->node), e.node) != 0)
        goto out;
    a->tail_ms = e.ts_ms;
    a->tail_is_close = e.has_sig && strcmp(e.reason, "close") == 0;
    a->seq = e.seq;
    memcpy(a->prev, e.hash, sizeof(a->prev));
    rc = 0;
out:
    sk_audit_entry_free(&e);
    return rc;
}

/* Read the chain head from the newest segment; cut a torn tail. */
static int resync_locked(sk_audit *a)
{
    char **segs = NULL;
    size_t nsegs = 0;
    char *buf = NULL;
    int fd = -1, rc = -1;

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
            a->last_cp = 0;
            a->tail_ms = 0;
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
        if (adopt_tail(a, path, fd, cut, last, (size_t)(buf + n - 1 - last)) != 0 ||
            sk_strlcpy(a->seg_name, sizeof(a->seg_name), segs[nsegs - 1]) != 0)
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
    audit_free_list(segs, nsegs);
    free(buf);
    return rc;
}

static int prune_locked(sk_audit *a, int64_t now, unsigned *removed);

/* Take the cross-process lock and make sure our view is current. */
int audit_begin_locked(sk_audit *a, int64_t now)
{
    char found_h[SK_AUDIT_HASH_HEX + 1];
    uint64_t found;
    struct stat st;
    int stale = a->seg_fd < 0, opening = a->opening;
    while (flock(a->lock_fd, LOCK_EX) != 0) {
        if (errno != EINTR)
            return -1;
    }
    if (audit_key_sync_locked(a) != 0)
        goto fail;
    if (!stale && (fstat(a->seg_fd, &st) != 0 || st.st_size != a->seg_end || st.st_nlink == 0))
        stale = 1;
    if (stale && resync_locked(a) != 0)
        goto fail;
    found = a->seq;
    memcpy(found_h, a->prev, sizeof(found_h));
    if (a->pending_handoff && audit_evolve_locked(a, now) != 0)
        goto fail; /* finishes the handoff a crash interrupted */
    if (a->seg_fd < 0 || now / AUDIT_DAY_MS > a->seg_day) {
        if (rotate_locked(a, now) != 0)
            goto fail;
    }
    /* At open, before anything of ours: does the log end where this host left it? */
    if (a->opening && audit_head_check_locked(a, now, found, found_h) != 0)
        goto fail;
    a->opening = 0;
    if (a->pending_dropped) {
        json_t *d = json_pack("{s:s, s:I}", "segment", a->pending_seg, "dropped_bytes",
                              (json_int_t)a->pending_dropped);
        if (emit_locked(a, now, SK_AUDIT_EV_RECOVER, NULL, NULL, NULL, NULL, d, 0) != 0)
            goto fail;
        a->pending_dropped = 0;
    }
    /* With a heartbeat thread the handoff is its job (never a request's); a
     * process without one evolves when it opens or appends. */
    if ((opening || !a->thr_started) && audit_evolve_due(a, now) &&
        audit_evolve_locked(a, now) != 0)
        sk_log(SK_LOG_ERR, "audit: evolving the epoch key failed; retrying later");
    return 0;
fail:
    (void)flock(a->lock_fd, LOCK_UN);
    return -1;
}

void audit_end_locked(sk_audit *a)
{
    (void)flock(a->lock_fd, LOCK_UN);
}

/* Called with mu held and the flock released: a dup of the segment fd to
 * fdatasync outside the mutex (fd -1 when nothing needs syncing), and the head
 * that becomes durable with it. */
static struct audit_sync take_sync(sk_audit *a, int64_t now, int force)
{
    struct audit_sync y = {.fd = -1};
    if (!a->dirty || a->seg_fd < 0)
        return y;
    if (!force && now - a->last_sync_ms < GROUP_COMMIT_MS)
        return y;
    y.fd = dup(a->seg_fd);
    if (y.fd < 0) {
        y.fd = -2;
        return y;
    }
    y.seq = a->seq;
    memcpy(y.h, a->prev, sizeof(y.h));
    a->dirty = 0;
    a->last_sync_ms = now;
    return y;
}

/* fdatasync on a dup'd descriptor: the open file description is shared, so
 * this flushes the segment even if a rotation closes a->seg_fd meanwhile.
 * Only then is the head remembered outside the log (never ahead of it). */
static int do_sync(sk_audit *a, struct audit_sync y)
{
    int rc;
    if (y.fd == -1)
        return 0;
    if (y.fd < 0)
        return -1;
    rc = fdatasync(y.fd);
    (void)close(y.fd);
    if (rc != 0) {
        pthread_mutex_lock(&a->mu);
        a->dirty = 1;
        pthread_mutex_unlock(&a->mu);
        sk_log(SK_LOG_ERR, "audit: fdatasync failed: %s", strerror(errno));
        return rc;
    }
    audit_head_update(a, y.seq, y.h);
    return 0;
}

static int due_checkpoint(const sk_audit *a, int64_t now)
{
    return a->seq > a->last_cp && (a->seq - a->last_cp >= a->cp_every ||
                                   now - a->last_cp_ms >= (int64_t)a->cp_secs * 1000);
}

/* ---- public API -------------------------------------------------------- */

static void free_audit(sk_audit *a)
{
    if (a->seg_fd >= 0)
        (void)close(a->seg_fd);
    if (a->lock_fd >= 0)
        (void)close(a->lock_fd);
    if (a->head_fd >= 0)
        (void)close(a->head_fd);
    audit_ekey_free(&a->key);
    for (unsigned i = 0; i < a->wq_len; i++)
        free(a->wq[i]);
    free(a->witness_cmd);
    free(a->notify_cmd);
    free(a->notify_to);
    free(a->notify_from);
    free(a->alarm_text);
    free(a->line);
    free(a->rq);
    free(a);
}

static int init_sync(sk_audit *a)
{
    if (pthread_mutex_init(&a->mu, NULL) != 0)
        return -1;
    if (pthread_mutex_init(&a->head_mu, NULL) != 0) {
        pthread_mutex_destroy(&a->mu);
        return -1;
    }
    if (pthread_mutex_init(&a->wit_mu, NULL) != 0) {
        pthread_mutex_destroy(&a->mu);
        pthread_mutex_destroy(&a->head_mu);
        return -1;
    }
    if (pthread_cond_init(&a->thr_cv, NULL) != 0) {
        pthread_mutex_destroy(&a->mu);
        pthread_mutex_destroy(&a->head_mu);
        pthread_mutex_destroy(&a->wit_mu);
        return -1;
    }
    return 0;
}

static void destroy_sync(sk_audit *a)
{
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->head_mu);
    pthread_mutex_destroy(&a->wit_mu);
    pthread_cond_destroy(&a->thr_cv);
}

/* Options, key, remembered head: everything before the log is touched. */
static int setup(sk_audit *a, const sk_audit_options *o, char *err, size_t errcap)
{
    char head[4200], lock_path[4200];
    if (sk_strlcpy(a->dir, sizeof(a->dir), o->dir) != 0 ||
        sk_strlcpy(a->key_path, sizeof(a->key_path), o->key_path) != 0) {
        audit_err(err, errcap, "audit: directory or key path too long");
        return -1;
    }
    if (sk_mkdir_p(a->dir, 0700) != 0) {
        audit_err(err, errcap, "audit: cannot create %s: %s", a->dir, strerror(errno));
        return -1;
    }
    if (o->node && *o->node) {
        if (!sk_audit_valid_node(o->node)) {
            audit_err(err, errcap, "audit: invalid node name (1..%d of A-Z a-z 0-9 . _ -)",
                      SK_AUDIT_NODE_MAX);
            return -1;
        }
        memcpy(a->node, o->node, strlen(o->node) + 1);
        a->node_configured = 1;
    }
    if (audit_path_inside(a->key_path, a->dir) || audit_ekey_load(a->key_path, &a->key) != 0) {
        audit_err(err, errcap, "audit: cannot use signing key %s (must be a 0600 PEM Ed25519 key "
                  "outside the audit directory)", o->key_path);
        return -1;
    }
    a->epoch_ms = (int64_t)(o->epoch_secs ? o->epoch_secs : 900) * 1000;
    a->retention_ms = o->retention_secs == 0 ? 365LL * AUDIT_DAY_MS
                      : o->retention_secs < 0 ? -1
                                              : o->retention_secs * 1000;
    a->cp_every = o->checkpoint_every ? o->checkpoint_every : 1000;
    a->cp_secs = o->checkpoint_secs ? o->checkpoint_secs : 300;
    a->ref_secs = o->refusal_interval_secs ? o->refusal_interval_secs : 60;
    a->clock_ms = o->clock_ms;
    a->clock_ctx = o->clock_ctx;
    if ((o->witness && *o->witness && !(a->witness_cmd = strdup(o->witness))) ||
        (o->notify_command && *o->notify_command && !(a->notify_cmd = strdup(o->notify_command))) ||
        (o->notify_to && *o->notify_to && !(a->notify_to = strdup(o->notify_to))) ||
        (o->notify_from && *o->notify_from && !(a->notify_from = strdup(o->notify_from))))
        return -1;
    if (o->head_path ? sk_strlcpy(head, sizeof(head), o->head_path) != 0
                     : sk_snprintf(head, sizeof(head), "%s.head", a->key_path) != 0)
        return -1;
    if (audit_path_inside(head, a->dir) || audit_head_open(a, head) != 0) {
        audit_err(err, errcap, "audit: cannot use %s to remember the log's head (it must be "
                  "writable and outside the audit directory)", head);
        return -1;
    }
    if (seg_path(a, ".lock", lock_path, sizeof(lock_path)) != 0)
        return -1;
    a->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->lock_fd < 0) {
        audit_err(err, errcap, "audit: cannot open %s: %s", lock_path, strerror(errno));
        return -1;
    }
    return 0;
}

int sk_audit_open(const sk_audit_options *o, sk_audit **out, char *err, size_t errcap)
{
    sk_audit *a = NULL;
    int rc = -1, sync_ok = 0, locked = 0;
    int64_t now = 0;

    *out = NULL;
    if (!o || !o->dir || !*o->dir || !o->key_path || !*o->key_path || o->signer) {
        audit_err(err, errcap, "audit: directory and epoch key file are required");
        return -1;
    }
    a = calloc(1, sizeof(*a));
    if (!a)
        return -1;
    a->lock_fd = a->seg_fd = a->head_fd = -1;
    a->line = malloc(SK_AUDIT_MAX_LINE + 4);
    a->rq = malloc(RQ_LEN * sizeof(*a->rq));
    if (!a->line || !a->rq || init_sync(a) != 0)
        goto out;
    sync_ok = 1;
    if (setup(a, o, err, errcap) != 0)
        goto out;
    now = audit_now_ms(a);
    a->open_real_ms = now;
    a->open_mono_ms = audit_mono_ms();
    a->last_cp_ms = now;
    a->last_sync_ms = now;
    a->opening = 1;
    pthread_mutex_lock(&a->mu);
    if (audit_begin_locked(a, now) != 0) {
        pthread_mutex_unlock(&a->mu);
        if (a->node_clash[0])
            audit_err(err, errcap, "audit: %s holds the log of node %s, not of [audit] node %s "
                      "(a chain belongs to one node)", a->dir, a->node_clash, a->node);
        else
            audit_err(err, errcap, "audit: cannot open the log in %s (see the log for why)", a->dir);
        goto out;
    }
    locked = 1;
    a->tail_ms_at_open = a->tail_ms;
    if (a->retention_ms > 0 && prune_locked(a, now, NULL) != 0) {
        audit_err(err, errcap, "audit: retention pruning failed in %s", a->dir);
        goto out;
    }
    rc = 0;
out:
    if (locked) {
        struct audit_sync y;
        audit_end_locked(a);
        y = take_sync(a, now, 1);
        pthread_mutex_unlock(&a->mu);
        if (do_sync(a, y) != 0 && rc == 0) {
            audit_err(err, errcap, "audit: cannot sync %s", a->dir);
            rc = -1;
        }
    }
    if (rc == 0 && !o->no_thread && !o->clock_ms && audit_thread_start(a) != 0) {
        audit_err(err, errcap, "audit: cannot start the heartbeat thread");
        rc = -1;
    }
    if (sync_ok)
        audit_alarm_deliver(a);
    if (rc == 0) {
        *out = a;
    } else if (a) {
        if (sync_ok)
            destroy_sync(a);
        free_audit(a);
    }
    return rc;
}

int audit_append_common(sk_audit *a, const char *event, const char *actor, const char *tenant,
                         const char *peer, const char *serial, json_t *d, const char *dtext,
                         int durable, uint64_t *seq_out)
{
    int64_t now;
    int rc = -1, erc;
    struct audit_sync y;
    if (!a || !event || !*event || (!d && !dtext)) {
        json_decref(d);
        return -1;
    }
    pthread_mutex_lock(&a->mu);
    now = audit_now_ms(a);
    if (audit_begin_locked(a, now) != 0) {
        json_decref(d);
        goto unlock;
    }
    (void)audit_drain_requests_locked(a); /* earlier lines first; failures are logged there */
    if (audit_refusal_due(a, now) && audit_refusal_summary_locked(a, now) != 0) {
        json_decref(d);
        goto end;
    }
    erc = d ? emit_locked(a, now, event, actor, tenant, peer, serial, d, 0)
            : audit_emit_text_locked(a, now, event, actor, tenant, peer, serial, dtext, 0);
    if (erc != 0)
        goto end;
    if (seq_out)
        *seq_out = a->seq;
    rc = 0;
    /* A failed checkpoint does not un-write the entry; it is retried later. */
    if (due_checkpoint(a, now) && audit_checkpoint_locked(a, now, "periodic", NULL, NULL) != 0)
        sk_log(SK_LOG_ERR, "audit: periodic checkpoint failed");
end:
    audit_end_locked(a);
unlock:
    y = rc == 0 ? take_sync(a, now, durable) : (struct audit_sync){.fd = -1};
    pthread_mutex_unlock(&a->mu);
    if (do_sync(a, y) != 0)
        rc = -1;
    return rc;
}

int sk_audit_append(sk_audit *a, const sk_audit_event *ev, int durable, uint64_t *seq_out)
{
    json_t *d = NULL;
    if (a && a->rops)
        return a->rops->append(a->rctx, ev, durable, seq_out);
    if (!a || !ev || !ev->event)
        return -1;
    if (audit_kv_details(ev, &d) != 0)
        return -1;
    return audit_append_common(a, ev->event, ev->actor, ev->tenant, ev->peer, ev->serial, d, NULL,
                         durable, seq_out);
}

int sk_audit_checkpoint(sk_audit *a)
{
    int64_t now;
    int rc = -1;
    struct audit_sync y;
    if (!a)
        return -1;
    if (a->rops)
        return 0; /* auditd checkpoints itself */
    pthread_mutex_lock(&a->mu);
    now = audit_now_ms(a);
    if (audit_begin_locked(a, now) != 0)
        goto unlock;
    (void)audit_drain_requests_locked(a);
    rc = audit_checkpoint_locked(a, now, "manual", NULL, NULL);
    audit_end_locked(a);
unlock:
    y = rc == 0 ? take_sync(a, now, 1) : (struct audit_sync){.fd = -1};
    pthread_mutex_unlock(&a->mu);
    if (do_sync(a, y) != 0)
        rc = -1;
    return rc;
}

int sk_audit_flush(sk_audit *a)
{
    int64_t now;
    int rc = 0;
    struct audit_sync y;
    if (!a)
        return -1;
    if (a->rops)
        return a->rops->flush(a->rctx);
    pthread_mutex_lock(&a->mu);
    now = audit_now_ms(a);
    if (a->rq_len > 0 || audit_refusal_due(a, now) || due_checkpoint(a, now) ||
        audit_evolve_due(a, now)) {
        if (audit_begin_locked(a, now) != 0) {
            rc = -1;
        } else {
            if (audit_drain_requests_locked(a) != 0)
                rc = -1;
            if (audit_refusal_due(a, now) && audit_refusal_summary_locked(a, now) != 0)
                rc = -1;
            if (due_checkpoint(a, now) && audit_checkpoint_locked(a, now, "periodic", NULL, NULL) != 0)
                rc = -1;
            if (audit_evolve_due(a, now) && audit_evolve_locked(a, now) != 0)
                rc = -1;
            audit_end_locked(a);
        }
    }
    y = take_sync(a, now, 1);
    pthread_mutex_unlock(&a->mu);
    if (do_sync(a, y) != 0)
        rc = -1;
    audit_witness_deliver(a);
    audit_alarm_deliver(a);
    return rc;
}

/* The newest segments are never pruned, whatever the clock says. */
#define KEEP_NEWEST 3

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
    if (!audit_clock_plausible(a, now))
        return 0; /* logged there; deleting on a wrong clock cannot be undone */
    if (audit_list_segments(a->dir, &segs, &nsegs) != 0)
        goto out;
    /* Whole days only, never the newest segments (nor the current one). */
    while (ncut + KEEP_NEWEST < nsegs &&
           (audit_segment_day(segs[ncut]) + 1) * AUDIT_DAY_MS <= cutoff &&
           strcmp(segs[ncut], a->seg_name) != 0)
        ncut++;
    if (ncut == 0) {
        rc = 0;
        goto out;
    }
    /* Record, sign, fsync, then unlink: a crash in between leaves extra old
     * segments (harmless), never a silent gap; the record counts for verify
     * only because the checkpoint after it signs it. */
    if (emit_locked(a, now, SK_AUDIT_EV_PRUNE, NULL, NULL, NULL, NULL,
                    json_pack("{s:s, s:s, s:I, s:s, s:I}", "removed_first", segs[0],
                              "removed_last", segs[ncut - 1], "count", (json_int_t)ncut,
                              "oldest_kept", segs[ncut], "retention_s",
                              (json_int_t)(a->retention_ms / 1000)),
                    0) != 0 ||
        audit_checkpoint_locked(a, now, "prune", NULL, NULL) != 0)
        goto out;
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
    int rc = -1;
    struct audit_sync y;
    if (!a)
        return -1;
    if (a->rops) {
        if (removed)
            *removed = 0;
        return 0; /* auditd prunes itself */
    }
    pthread_mutex_lock(&a->mu);
    now = audit_now_ms(a);
    if (audit_begin_locked(a, now) != 0)
        goto unlock;
    rc = prune_locked(a, now, removed);
    audit_end_locked(a);
unlock:
    y = rc == 0 ? take_sync(a, now, 1) : (struct audit_sync){.fd = -1};
    pthread_mutex_unlock(&a->mu);
    if (do_sync(a, y) != 0)
        rc = -1;
    return rc;
}

uint64_t sk_audit_last_seq(sk_audit *a)
{
    uint64_t s;
    if (a->rops)
        return 0;
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
    if (a->rops) {
        a->rops->close(a->rctx);
        free(a);
        return;
    }
    audit_thread_stop(a);
    pthread_mutex_lock(&a->mu);
    now = audit_now_ms(a);
    if (audit_begin_locked(a, now) == 0) {
        if (audit_drain_requests_locked(a) != 0)
            sk_log(SK_LOG_ERR, "audit: final request lines failed");
        if (audit_refusal_summary_locked(a, now) != 0)
            sk_log(SK_LOG_ERR, "audit: final refusal summary failed");
        /* Always end on a closing checkpoint: a log that ends anywhere else is
         * either still being written (young) or was cut. */
        if (!a->tail_is_close && audit_checkpoint_locked(a, now, "close", NULL, NULL) != 0)
            sk_log(SK_LOG_ERR, "audit: final checkpoint failed");
        audit_end_locked(a);
    } else {
        sk_log(SK_LOG_ERR, "audit: cannot write the final checkpoint");
    }
    if (a->seg_fd >= 0) {
        if (fdatasync(a->seg_fd) != 0)
            sk_log(SK_LOG_ERR, "audit: final fdatasync failed: %s", strerror(errno));
        else
            audit_head_update(a, a->seq, a->prev);
    }
    pthread_mutex_unlock(&a->mu);
    audit_witness_deliver(a);
    audit_alarm_deliver(a);
    destroy_sync(a);
    free_audit(a);
}
