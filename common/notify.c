/* sk_notify: mail through sendmail -t. See sk_notify.h. */
#define _GNU_SOURCE
#include "sk_notify.h"
#include "sk_sdnotify.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *sk_notify_level_name(int level)
{
    static const char *const names[] = { NULL, "warning", "minor", "major" };
    return level > 0 && (size_t)level < sizeof names / sizeof names[0] ? names[level] : NULL;
}

static int header_safe(const char *s)
{
    return s == NULL || strpbrk(s, "\r\n") == NULL;
}

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

static void add_subject(sk_buf *b, const char *subject)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = (const unsigned char *)subject;
    size_t n = strlen(subject);
    if (is_ascii(subject)) {
        sk_buf_printf(b, "Subject: %s\n", subject);
        return;
    }
    /* RFC 2047 encoded-word, base64 */
    sk_buf_puts(b, "Subject: =?UTF-8?B?");
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        char q[4] = { b64[v >> 18], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
                      i + 2 < n ? b64[v & 63] : '=' };
        sk_buf_add(b, q, 4);
    }
    sk_buf_puts(b, "?=\n");
}


/* Mails that could not be handed to the mail command, in this process (metrics). */
static atomic_uint_fast64_t notify_failures;

static sk_notify_transport transport;
static void *transport_ctx;

void sk_notify_set_transport(sk_notify_transport fn, void *ctx)
{
    transport = fn;
    transport_ctx = ctx;
}

/* [notify] outbox; set once before threads send mail, read-only afterwards. */
static char outbox[PATH_MAX - 64];

int sk_notify_set_outbox(const char *dir)
{
    static const char *const sub[] = { "tmp", "new", "hold" };
    char p[PATH_MAX];

    outbox[0] = '\0';
    if (dir == NULL || dir[0] == '\0')
        return 0;
    if (dir[0] != '/') {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++)
        if (sk_snprintf(p, sizeof p, "%s/%s", dir, sub[i]) != 0 || sk_mkdir_p(p, 0700) != 0)
            return -1;
    return sk_strlcpy(outbox, sizeof outbox, dir);
}

/* One message into the outbox: tmp/NAME (written, synced), then new/NAME. */
static int outbox_put(const char *data, size_t n)
{
    char name[96], tmp[PATH_MAX], dst[PATH_MAX], newdir[PATH_MAX], rhex[17];
    uint8_t rnd[8];
    struct timespec ts;
    int dfd, rc = -1;

    if (sk_random(rnd, sizeof rnd) != 0 || clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    sk_hex_encode(rnd, sizeof rnd, rhex);
    /* Time first: the helper sends in name order, which is the order of queueing. */
    if (sk_snprintf(name, sizeof name, "%010lld.%06ld.%ld.%s.eml", (long long)ts.tv_sec, ts.tv_nsec / 1000L,
                    (long)getpid(), rhex) != 0 ||
        sk_snprintf(tmp, sizeof tmp, "%s/tmp/%s", outbox, name) != 0 ||
        sk_snprintf(dst, sizeof dst, "%s/new/%s", outbox, name) != 0 ||
        sk_snprintf(newdir, sizeof newdir, "%s/new", outbox) != 0)
        return -1;
    if (sk_write_file_atomic(tmp, data, n, 0600) != 0)
        return -1;
    if (rename(tmp, dst) != 0) {
        (void)unlink(tmp);
        return -1;
    }
    /* The rename is durable before the mail counts as handed over. */
    dfd = open(newdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        rc = fsync(dfd);
        close(dfd);
    }
    return rc;
}

int sk_notify_send(const char *command, const struct sk_notify_msg *m)
{
    return sk_notify_send_level(command, m, SK_NOTIFY_PERSONAL);
}

/* The message on the command's standard input; 0 if it exited 0 within
 * SK_NOTIFY_TIMEOUT seconds. */
static int pipe_to_command(const char *command, const char *data, size_t len)
{
    int pipefd[2] = { -1, -1 }, status = 0, wr, rc = -1;
    pid_t pid;

    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -1;
    pid = fork();
    if (pid < 0)
        goto out;
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(pipefd[0], STDIN_FILENO) < 0)
            _exit(127);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    close(pipefd[0]);
    pipefd[0] = -1;
    /* The MTA may exit early; SIGPIPE is ignored by the gateway, EPIPE is an error. */
    wr = sk_write_all(pipefd[1], data, len);
    close(pipefd[1]);
    pipefd[1] = -1;
    for (int i = 0; i < SK_NOTIFY_TIMEOUT * 20; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            pid = -1;
            break;
        }
        if (r < 0 && errno != EINTR)
            break;
        /* A slow MTA is not a hung gateway: the wait is bounded, keep systemd's
         * watchdog fed meanwhile (the daily sweep may mail many users in a row). */
        if (sk_sdnotify_watchdog_tick() != 0)
            sk_log(SK_LOG_WARN, "systemd notification WATCHDOG=1 failed: %s", strerror(errno));
        usleep(50 * 1000);
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        (void)waitpid(pid, &status, 0);
        sk_log(SK_LOG_ERR, "notify: command timed out after %d s", SK_NOTIFY_TIMEOUT);
        goto out;
    }
    rc = wr == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
out:
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    return rc;
}

int sk_notify_send_level(const char *command, const struct sk_notify_msg *m, int mlevel)
{
    size_t cap = strlen(m->body) + 4096;
    const char *level = sk_notify_level_name(mlevel);
    char subject[1024];
    char *msg = NULL;
    int rc = -1;
    sk_buf b;

    if (((command == NULL || command[0] == '\0') && outbox[0] == '\0') || m->to == NULL || m->to[0] == '\0' ||
        m->subject == NULL || !header_safe(m->from) || !header_safe(m->to) || !header_safe(m->subject))
        return -1;
    if (transport != NULL)
        return transport(transport_ctx, m, mlevel);
    /* The level at the end, so that subjects still sort and filter by their text. */
    if (level != NULL ? sk_snprintf(subject, sizeof subject, "%s [%s]", m->subject, level)
                      : sk_strlcpy(subject, sizeof subject, m->subject))
        return -1;
    msg = malloc(cap);
    if (msg == NULL)
        return -1;
    sk_buf_init(&b, msg, cap);
    if (m->from)
        sk_buf_printf(&b, "From: %s\n", m->from);
    sk_buf_printf(&b, "To: %s\n", m->to);
    add_subject(&b, subject);
    if (level != NULL)
        sk_buf_printf(&b, "X-Sekisho-Alert-Level: %s\n%s", level,
                      mlevel == SK_NOTIFY_MAJOR ? "Importance: high\nX-Priority: 1\n" : "");
    sk_buf_puts(&b, "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
                    "Content-Transfer-Encoding: 8bit\nAuto-Submitted: auto-generated\n\n");
    sk_buf_puts(&b, m->body);
    if (sk_buf_finish(&b) != 0)
        goto out;
    if (outbox[0] != '\0') {
        rc = outbox_put(b.data, b.len);
        if (rc != 0)
            sk_log(SK_LOG_ERR, "notify: cannot queue mail in %s: %s", outbox, strerror(errno));
    } else {
        rc = pipe_to_command(command, b.data, b.len);
    }
out:
    free(msg);
    if (rc != 0) {
        atomic_fetch_add(&notify_failures, 1);
        sk_log(SK_LOG_ERR, "notify: mail \"%s\" to %s was not sent", m->subject, m->to);
    }
    return rc;
}

uint64_t sk_notify_failures(void)
{
    return atomic_load(&notify_failures);
}
