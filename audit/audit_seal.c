/* audit_seal.c — what keeps the log trustworthy when the host is not: epoch
 * key evolution (forward security), the tail MAC check, the remembered head
 * (truncation seen by the writer), the witness hand-off, the heartbeat thread
 * and the clock sanity check before pruning. See FORMAT.md. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "sk_notify.h"

#include "audit_wint.h"

extern char **environ;

#define HEAD_FMT "sekisho-audit-head v1 seq=%020" PRIu64 " h=%s\n"
#define HEAD_LEN (22 + 4 + 20 + 3 + 64 + 1)
#define WITNESS_TIMEOUT_MS 10000
#define CLOCK_DRIFT_MS (3600 * 1000LL)
#define MAX_SILENT_GAP_MS (2 * 86400 * 1000LL)

/* ---- epoch key ---------------------------------------------------------- */

int audit_key_sync_locked(sk_audit *a)
{
    audit_ekey k;
    if (!audit_ekey_changed(a->key_path, &a->key))
        return 0;
    /* Another process evolved the key (or an operator replaced it). */
    if (audit_ekey_load(a->key_path, &k) != 0)
        return -1;
    if (strcmp(k.origin, a->key.origin) != 0 || k.epoch < a->key.epoch) {
        audit_alarm(a, "%s now holds epoch %llu of another log or an older "
               "epoch (was epoch %llu); refusing to use it", a->key_path,
               (unsigned long long)k.epoch, (unsigned long long)a->key.epoch);
        audit_ekey_free(&k);
        return -1;
    }
    audit_ekey_free(&a->key);
    a->key = k;
    return 0;
}

static int mac_ok(const audit_ekey *k, const char *line, const sk_audit_entry *e)
{
    char m[SK_AUDIT_HASH_HEX + 1];
    if (audit_ekey_mac(k, line, e->mac_len, m) != 0)
        return 0;
    return CRYPTO_memcmp(m, e->mac, SK_AUDIT_HASH_HEX) == 0;
}

int audit_tail_auth_locked(sk_audit *a, const char *line, size_t n, const sk_audit_entry *e)
{
    char np[4200];
    audit_ekey next;
    int have_next, rc = -1;
    (void)n;
    memset(&next, 0, sizeof(next));
    if (audit_ekey_next_path(a->key_path, np, sizeof(np)) != 0)
        return -1;
    have_next = access(np, F_OK) == 0;
    if (have_next && audit_ekey_load(np, &next) != 0)
        have_next = 0;
    a->pending_handoff = 0;
    if (mac_ok(&a->key, line, e)) {
        if (e->has_sig && e->has_next) {
            /* A handoff whose audit.epoch entry a crash prevented. */
            if (!have_next || memcmp(next.pub, e->next_pub, 32) != 0) {
                audit_alarm(a, "the log hands off to an epoch key that %s does not hold", np);
                goto out;
            }
            a->pending_handoff = 1;
        } else if (have_next) {
            (void)unlink(np); /* a handoff that never reached the log */
        }
        rc = 0;
    } else if (have_next && mac_ok(&next, line, e)) {
        /* The new epoch's first entry is written; only the rename was lost. */
        if (audit_ekey_commit_next(a->key_path) != 0)
            goto out;
        audit_ekey_free(&a->key);
        a->key = next;
        memset(&next, 0, sizeof(next));
        rc = audit_ekey_changed(a->key_path, &a->key) ? audit_key_sync_locked(a) : 0;
    }
out:
    audit_ekey_free(&next);
    return rc;
}

int audit_evolve_due(const sk_audit *a, int64_t now)
{
    /* A clock far before the epoch's start (set back, or the key made with a
     * wrong clock) evolves too: evolving early is always safe, never is not. */
    if (!a->pending_handoff && now < a->evolve_retry_ms && now >= a->evolve_retry_ms - 60000)
        return 0;
    return a->pending_handoff || now - a->key.start_ms >= a->epoch_ms ||
           a->key.start_ms - now >= a->epoch_ms;
}

static void keep_epoch_line(sk_audit *a, const char *line, size_t n)
{
    char path[4200];
    int fd;
    if (sk_snprintf(path, sizeof(path), "%s/%s", a->dir, AUDIT_EPOCHS_FILE) != 0)
        return;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0 || sk_write_all(fd, line, n) != 0 || fdatasync(fd) != 0)
        sk_log(SK_LOG_ERR, "audit: cannot append to %s: %s", path, strerror(errno));
    if (fd >= 0)
        (void)close(fd);
}

/* Sign a checkpoint that commits to the next epoch's public key, switch to
 * that key, start the epoch with its audit.epoch entry, and erase the old key
 * (file and memory). Order matters for crashes: KEY.next exists before the
 * handoff is in the log; KEY is replaced only after the new epoch's first
 * entry is durable (audit_tail_auth_locked finishes either half). */
int audit_evolve_locked(sk_audit *a, int64_t now)
{
    char np[4200], *handoff = NULL;
    size_t hlen = 0;
    audit_ekey next;
    int rc = -1;
    memset(&next, 0, sizeof(next));
    if (a->seg_fd < 0 || audit_ekey_next_path(a->key_path, np, sizeof(np)) != 0)
        return -1;
    if (a->pending_handoff) {
        if (audit_ekey_load(np, &next) != 0)
            goto out;
    } else {
        if (audit_ekey_generate(&next, a->key.epoch + 1, now, a->key.origin) != 0 ||
            audit_ekey_write(&next, np, 0) != 0 ||
            audit_checkpoint_locked(a, now, "epoch", NULL, next.pub) != 0 ||
            fdatasync(a->seg_fd) != 0)
            goto out;
        hlen = strlen(a->line);
        handoff = strndup(a->line, hlen);
    }
    audit_ekey_free(&a->key);
    a->key = next;
    memset(&next, 0, sizeof(next));
    a->pending_handoff = 0;
    if (audit_emit_locked(a, now, SK_AUDIT_EV_EPOCH,
                          json_pack("{s:I, s:s}", "epoch", (json_int_t)a->key.epoch, "key",
                                    a->key.keyid), 0) != 0 ||
        fdatasync(a->seg_fd) != 0)
        goto out;
    if (handoff)
        keep_epoch_line(a, handoff, hlen);
    if (audit_ekey_commit_next(a->key_path) != 0)
        goto out;
    {
        struct stat st;
        if (stat(a->key_path, &st) == 0) {
            a->key.dev = st.st_dev;
            a->key.ino = st.st_ino;
        }
    }
    sk_log(SK_LOG_INFO, "audit: epoch %llu began (key %.16s...)",
           (unsigned long long)a->key.epoch, a->key.keyid);
    rc = 0;
out:
    if (rc != 0)
        a->evolve_retry_ms = now + 60000; /* e.g. the key directory is read-only */
    audit_ekey_free(&next);
    free(handoff);
    return rc;
}

/* ---- the newest checkpoint of a segment (scanning backwards) ------------ */

int audit_find_last_cp(int fd, off_t size, uint64_t *cp_seq)
{
    const size_t chunk = 65536, cap = chunk + SK_AUDIT_MAX_LINE + 4;
    char *buf = malloc(cap);
    off_t lo = size;
    size_t len = 0;
    int rc = -1;
    if (!buf)
        return -1;
    for (;;) {
        char *p = len > 1 ? memrchr(buf, '\n', len - 1) : NULL;
        const char *l;
        size_t ll;
        uint64_t seq;
        int is_cp, is_seg;
        if (!p && lo > 0) { /* need more bytes before buf */
            size_t take = (size_t)lo < chunk ? (size_t)lo : chunk;
            if (len + take > cap)
                goto out;
            memmove(buf + take, buf, len);
            if (pread(fd, buf, take, lo - (off_t)take) != (ssize_t)take)
                goto out;
            lo -= (off_t)take;
            len += take;
            continue;
        }
        if (len == 0)
            goto out; /* no header at the start of the segment */
        l = p ? p + 1 : buf;
        ll = (size_t)(buf + len - 1 - l);
        if (audit_line_head(l, ll, &seq, SK_AUDIT_EV_CHECKPOINT, &is_cp) == 0 && is_cp) {
            *cp_seq = seq;
            rc = 0;
            goto out;
        }
        if (audit_line_head(l, ll, &seq, SK_AUDIT_EV_SEGMENT, &is_seg) == 0 && is_seg && !p &&
            lo == 0) {
            /* A segment starts right after the previous one's rotation checkpoint. */
            *cp_seq = seq - 1;
            rc = 0;
            goto out;
        }
        if (!p)
            goto out;
        len = (size_t)(p - buf) + 1;
    }
out:
    free(buf);
    return rc;
}

/* ---- remembered head ---------------------------------------------------- */

int audit_head_open(sk_audit *a, const char *head_path)
{
    if (sk_strlcpy(a->head_path, sizeof(a->head_path), head_path) != 0)
        return -1;
    a->head_fd = open(head_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->head_fd < 0) {
        /* The log still works; truncation is then found by witnesses only. */
        sk_log(SK_LOG_WARN, "audit: cannot open %s (%s): the log's head is not remembered",
               head_path, strerror(errno));
    }
    return 0;
}

static int head_parse(int fd, uint64_t *seq, char h[SK_AUDIT_HASH_HEX + 1])
{
    char buf[HEAD_LEN + 1];
    unsigned long long s;
    ssize_t n = pread(fd, buf, HEAD_LEN, 0);
    *seq = 0;
    h[0] = '\0';
    if (n == 0)
        return 0;
    if (n != HEAD_LEN)
        return -1;
    buf[HEAD_LEN] = '\0';
    if (sscanf(buf, "sekisho-audit-head v1 seq=%20llu h=%64s", &s, h) != 2 ||
        strlen(h) != SK_AUDIT_HASH_HEX)
        return -1;
    *seq = s;
    return 0;
}

int audit_head_read(sk_audit *a, uint64_t *seq, char h[SK_AUDIT_HASH_HEX + 1])
{
    int rc;
    *seq = 0;
    if (a->head_fd < 0)
        return 0;
    (void)flock(a->head_fd, LOCK_SH);
    rc = head_parse(a->head_fd, seq, h);
    (void)flock(a->head_fd, LOCK_UN);
    return rc;
}

static void head_write(sk_audit *a, uint64_t seq, const char *h, int force)
{
    char rec[HEAD_LEN + 1], cur_h[SK_AUDIT_HASH_HEX + 1];
    uint64_t cur = 0;
    if (a->head_fd < 0)
        return;
    (void)flock(a->head_fd, LOCK_EX);
    /* Several processes append: the head only moves forward (except after a
     * truncation was recorded, force). */
    if (force || head_parse(a->head_fd, &cur, cur_h) != 0 || seq > cur) {
        /* Only entries already on stable storage are ever named here, so the head
         * can lag after a power loss but never run ahead of the log: no fsync
         * needed except when a recorded truncation moves it back. */
        if (sk_snprintf(rec, sizeof(rec), HEAD_FMT, seq, h) != 0 ||
            pwrite(a->head_fd, rec, HEAD_LEN, 0) != HEAD_LEN ||
            (force && fdatasync(a->head_fd) != 0))
            sk_log(SK_LOG_ERR, "audit: cannot update %s: %s", a->head_path, strerror(errno));
    }
    (void)flock(a->head_fd, LOCK_UN);
}

void audit_head_update(sk_audit *a, uint64_t seq, const char *h)
{
    pthread_mutex_lock(&a->head_mu);
    if (seq > a->head_written) {
        head_write(a, seq, h, 0);
        a->head_written = seq;
    }
    pthread_mutex_unlock(&a->head_mu);
}

int audit_head_check_locked(sk_audit *a, int64_t now, uint64_t found,
                            const char found_h[SK_AUDIT_HASH_HEX + 1])
{
    uint64_t hs = 0;
    char hh[SK_AUDIT_HASH_HEX + 1] = "";
    if (audit_head_read(a, &hs, hh) != 0) {
        sk_log(SK_LOG_WARN, "audit: %s is unreadable; rewriting it", a->head_path);
        hs = 0;
    }
    if (hs == 0 || found > hs || (found == hs && strcmp(hh, found_h) == 0))
        return 0;
    audit_alarm(a, "the log in %s ends at entry %llu but this host left it at entry %llu: "
                "entries were cut off. Recorded as audit.truncated; tell the auditors",
                a->dir, (unsigned long long)found, (unsigned long long)hs);
    if (audit_emit_locked(a, now, SK_AUDIT_EV_TRUNCATED,
                          json_pack("{s:I, s:s, s:I, s:s}", "expected_seq", (json_int_t)hs,
                                    "expected_h", hh, "found_seq", (json_int_t)found, "found_h",
                                    found_h), 0) != 0 ||
        audit_checkpoint_locked(a, now, "truncated", NULL, NULL) != 0 ||
        fdatasync(a->seg_fd) != 0)
        return -1;
    pthread_mutex_lock(&a->head_mu);
    head_write(a, a->seq, a->prev, 1);
    a->head_written = a->seq;
    pthread_mutex_unlock(&a->head_mu);
    return 0;
}

/* ---- witness ------------------------------------------------------------ */

void audit_witness_queue_locked(sk_audit *a)
{
    sk_audit_entry e;
    audit_note n;
    char *text = NULL;
    size_t len;
    if (!a->witness_cmd)
        return;
    memset(&e, 0, sizeof(e));
    len = strlen(a->line);
    if (len > 0 && a->line[len - 1] == '\n')
        len--;
    if (sk_audit_parse_line(a->line, len, &e, NULL, 0) != 0 || audit_note_of(a->line, &e, &n) != 0 ||
        audit_note_format(&n, &text) != 0) {
        sk_log(SK_LOG_ERR, "audit: cannot form the witness text of checkpoint %llu",
               (unsigned long long)a->seq);
        goto out;
    }
    if (a->wq_len == SK_ARRAY_LEN(a->wq)) {
        /* Each checkpoint extends the earlier ones: the newest matters most. */
        free(a->wq[0]);
        memmove(a->wq, a->wq + 1, (a->wq_len - 1) * sizeof(a->wq[0]));
        a->wq_len--;
        sk_log(SK_LOG_WARN, "audit: witness backlog full; an older checkpoint was skipped");
    }
    a->wq[a->wq_len++] = text;
    text = NULL;
out:
    free(text);
    sk_audit_entry_free(&e);
}

static int run_witness(char *cmd, const char *text)
{
    static char sh[] = "/bin/sh", dash_c[] = "-c";
    posix_spawn_file_actions_t fa;
    char *argv[] = {sh, dash_c, cmd, NULL};
    int sv[2] = {-1, -1}, status = 0, fa_ok = 0, rc = -1;
    pid_t pid = -1;
    size_t off = 0, n = strlen(text);
    int64_t waited = 0;
    /* A socket rather than a pipe: MSG_NOSIGNAL, so a command that does not
     * read its stdin cannot kill us with SIGPIPE. */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
        posix_spawn_file_actions_init(&fa) != 0)
        goto out;
    fa_ok = 1;
    if (posix_spawn_file_actions_adddup2(&fa, sv[1], 0) != 0 ||
        posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ) != 0) {
        pid = -1;
        goto out;
    }
    (void)close(sv[1]);
    sv[1] = -1;
    while (off < n) {
        ssize_t w = send(sv[0], text + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    (void)close(sv[0]);
    sv[0] = -1;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        struct timespec ts = {0, 50 * 1000000L};
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            goto out;
        if (waited >= WITNESS_TIMEOUT_MS) {
            (void)kill(pid, SIGKILL);
            (void)waitpid(pid, &status, 0);
            sk_log(SK_LOG_ERR, "audit: the witness command did not finish in %d s; killed",
                   WITNESS_TIMEOUT_MS / 1000);
            pid = -1;
            goto out;
        }
        (void)nanosleep(&ts, NULL);
        waited += 50;
    }
    pid = -1;
    rc = off == n && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
out:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (sv[0] >= 0)
        (void)close(sv[0]);
    if (sv[1] >= 0)
        (void)close(sv[1]);
    if (pid > 0)
        (void)waitpid(pid, &status, 0);
    return rc;
}

static sk_audit_witness_fn witness_transport;
static void *witness_transport_ctx;

void sk_audit_set_witness_transport(sk_audit_witness_fn fn, void *ctx)
{
    witness_transport = fn;
    witness_transport_ctx = ctx;
}

int sk_audit_run_witness(const char *cmd, const char *text)
{
    char *c = strdup(cmd);
    int rc = c != NULL ? run_witness(c, text) : -1;
    free(c);
    return rc;
}

void audit_witness_deliver(sk_audit *a)
{
    char *todo[SK_ARRAY_LEN(a->wq)];
    unsigned n;
    if (!a->witness_cmd)
        return;
    pthread_mutex_lock(&a->wit_mu);
    pthread_mutex_lock(&a->mu);
    n = a->wq_len;
    memcpy(todo, a->wq, n * sizeof(todo[0]));
    a->wq_len = 0;
    pthread_mutex_unlock(&a->mu);
    for (unsigned i = 0; i < n; i++) {
        if ((witness_transport != NULL ? witness_transport(witness_transport_ctx, todo[i])
                                       : run_witness(a->witness_cmd, todo[i])) != 0)
            sk_log(SK_LOG_ERR, "audit: ALARM: the witness command failed; a checkpoint was not "
                   "handed to the witness");
        /* (not mailed: the witness is often the mail path itself) */
        free(todo[i]);
    }
    pthread_mutex_unlock(&a->wit_mu);
}

/* ---- heartbeat ---------------------------------------------------------- */

static void *heartbeat_main(void *p)
{
    sk_audit *a = p;
    pthread_mutex_lock(&a->mu);
    while (!a->thr_stop) {
        struct timespec ts;
        if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
            break;
        ts.tv_sec += 1;
        (void)pthread_cond_timedwait(&a->thr_cv, &a->mu, &ts);
        if (a->thr_stop)
            break;
        pthread_mutex_unlock(&a->mu);
        /* Checkpoints and epoch handoffs even when nothing else happens, so the
         * age of the newest checkpoint bounds what can be cut off silently. */
        if (sk_audit_flush(a) != 0)
            sk_log(SK_LOG_ERR, "audit: heartbeat flush failed");
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

int audit_thread_start(sk_audit *a)
{
    int rc = -1;
    /* Under mu: appenders read thr_started there (and the thread starts by
     * taking mu). */
    pthread_mutex_lock(&a->mu);
    if (pthread_create(&a->thr, NULL, heartbeat_main, a) == 0) {
        a->thr_started = 1;
        rc = 0;
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

void audit_thread_stop(sk_audit *a)
{
    if (!a->thr_started)
        return;
    pthread_mutex_lock(&a->mu);
    a->thr_stop = 1;
    pthread_cond_signal(&a->thr_cv);
    pthread_mutex_unlock(&a->mu);
    (void)pthread_join(a->thr, NULL);
    a->thr_started = 0;
}

/* ---- clock sanity before deleting anything ------------------------------ */

int audit_clock_plausible(const sk_audit *a, int64_t now)
{
    int64_t mono = audit_mono_ms() - a->open_mono_ms;
    if (!a->clock_ms) {
        int64_t drift = (now - a->open_real_ms) - mono;
        if (drift > CLOCK_DRIFT_MS || drift < -CLOCK_DRIFT_MS) {
            sk_log(SK_LOG_WARN, "audit: the clock moved %lld s against the monotonic clock; "
                   "retention pruning skipped", (long long)(drift / 1000));
            return 0;
        }
    }
    if (a->tail_ms_at_open <= 0)
        return 1;
    if (now < a->tail_ms_at_open - CLOCK_DRIFT_MS ||
        (now - a->tail_ms_at_open > MAX_SILENT_GAP_MS && (a->clock_ms || mono < AUDIT_DAY_MS))) {
        sk_log(SK_LOG_WARN, "audit: the clock is %lld s away from the log's newest entry; "
               "retention pruning skipped until the clock is confirmed",
               (long long)((now - a->tail_ms_at_open) / 1000));
        return 0;
    }
    return 1;
}

/* ---- operators' alarm --------------------------------------------------- */

void audit_alarm(sk_audit *a, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    size_t old, n;
    char *t;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sk_log(SK_LOG_ERR, "audit: ALARM: %s", msg);
    if (!a->notify_cmd || !a->notify_to)
        return;
    old = a->alarm_text ? strlen(a->alarm_text) : 0;
    n = strlen(msg);
    if (old > 16384)
        return; /* enough to act on */
    t = realloc(a->alarm_text, old + n + 2);
    if (!t)
        return;
    memcpy(t + old, msg, n);
    t[old + n] = '\n';
    t[old + n + 1] = '\0';
    a->alarm_text = t;
}

void audit_alarm_deliver(sk_audit *a)
{
    char *text;
    struct sk_notify_msg m;
    pthread_mutex_lock(&a->mu);
    text = a->alarm_text;
    a->alarm_text = NULL;
    pthread_mutex_unlock(&a->mu);
    if (!text)
        return;
    memset(&m, 0, sizeof(m));
    m.from = a->notify_from;
    m.to = a->notify_to;
    m.subject = "Sekisho audit log ALARM";
    m.body = text;
    if (sk_notify_send(a->notify_cmd, &m) != 0)
        sk_log(SK_LOG_ERR, "audit: the alarm mail could not be sent");
    free(text);
}
