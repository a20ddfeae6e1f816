/* sk_util: see sk_util.h for the contracts. */
#include "sk_util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netdb.h>
#include <sys/timex.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

int sk_strlcpy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (cap == 0)
        return -1;
    if (n >= cap) {
        dst[0] = '\0';
        return -1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

int sk_snprintf(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (cap == 0)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        dst[0] = '\0';
        return -1;
    }
    return 0;
}

void sk_buf_init(sk_buf *b, char *mem, size_t cap)
{
    b->data = mem;
    b->len = 0;
    b->cap = cap;
    b->failed = cap == 0;
    if (cap)
        mem[0] = '\0';
}

void sk_buf_add(sk_buf *b, const void *p, size_t n)
{
    if (b->failed)
        return;
    if (n >= b->cap - b->len) {
        b->failed = 1;
        return;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sk_buf_puts(sk_buf *b, const char *s)
{
    sk_buf_add(b, s, strlen(s));
}

void sk_buf_printf(sk_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (b->failed)
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->failed = 1;
        b->data[b->len] = '\0';
        return;
    }
    b->len += (size_t)n;
}

void sk_buf_html(sk_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': sk_buf_puts(b, "&amp;"); break;
        case '<': sk_buf_puts(b, "&lt;"); break;
        case '>': sk_buf_puts(b, "&gt;"); break;
        case '"': sk_buf_puts(b, "&quot;"); break;
        case '\'': sk_buf_puts(b, "&#39;"); break;
        default: sk_buf_add(b, s, 1); break;
        }
    }
}

int sk_buf_finish(const sk_buf *b)
{
    return b->failed ? -1 : 0;
}

int sk_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || *s == '\0')
        return -1;
    for (; *s; s++) {
        unsigned d;
        if (*s < '0' || *s > '9')
            return -1;
        d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int sk_parse_duration(const char *s, int64_t *seconds)
{
    static const struct { char suffix; int64_t mult; } units[] = {
        { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
    };
    char num[24];
    size_t n;
    int64_t mult = 1;
    uint64_t v;

    if (s == NULL)
        return -1;
    n = strlen(s);
    if (n == 0 || n >= sizeof num)
        return -1;
    memcpy(num, s, n + 1);
    for (size_t i = 0; i < SK_ARRAY_LEN(units); i++) {
        if (num[n - 1] == units[i].suffix) {
            mult = units[i].mult;
            num[--n] = '\0';
            break;
        }
    }
    /* A century covers audit retention and keeps products far from overflow. */
    if (sk_parse_u64(num, 0, (uint64_t)(100 * 366 * 86400LL) / (uint64_t)mult, &v) != 0)
        return -1;
    *seconds = (int64_t)v * mult;
    return 0;
}

void sk_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

int sk_clock_synced(void)
{
    struct timex tx;
    int state;
    memset(&tx, 0, sizeof tx); /* modes 0: only read */
    state = adjtimex(&tx);
    if (state < 0)
        return -1;
    return state != TIME_ERROR && !(tx.status & STA_UNSYNC);
}

int sk_hex_digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sk_hex_decode(const char *in, uint8_t *out, size_t n)
{
    if (strlen(in) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = sk_hex_digit_value(in[2 * i]), lo = sk_hex_digit_value(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void sk_b64url_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
}

static int b64url_value(char c)
{
    const char *p = c ? strchr(b64url_alphabet, c) : NULL;
    return p ? (int)(p - b64url_alphabet) : -1;
}

int sk_b64url_decode(const char *in, size_t inlen, uint8_t *out, size_t n)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;

    if (inlen != SK_B64URL_LEN(n))
        return -1;
    for (size_t i = 0; i < inlen; i++) {
        int v = b64url_value(in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Non-canonical encodings (stray low bits) are rejected so that one token has
     * exactly one spelling. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    return o == n ? 0 : -1;
}

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); /* kept for the process's life */
}

int sk_sha256(const void *data, size_t len, uint8_t out[32])
{
    if (pthread_once(&sha256_once, sha256_fetch) != 0 || sha256_md == NULL)
        return -1;
    return EVP_Digest(data, len, out, NULL, sha256_md, NULL) == 1 ? 0 : -1;
}

void sk_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}

int sk_secret_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

int sk_random(void *out, size_t n)
{
    if (n > INT32_MAX)
        return -1;
    return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
}

static int read_line_into(int fd, char *out, size_t cap, size_t *len)
{
    size_t n = 0;
    int rc = -1;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n')
            break;
        if (n + 1 >= cap)
            goto out;
        out[n++] = c;
    }
    while (n > 0 && out[n - 1] == '\r')
        n--;
    out[n] = '\0';
    *len = n;
    rc = 0;
out:
    if (rc != 0)
        sk_wipe(out, cap);
    return rc;
}

int sk_read_secret_file(const char *path, char *out, size_t cap, size_t *len)
{
    struct stat st;
    int fd, rc = -1;

    if (cap == 0)
        return -1;
    out[0] = '\0';
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto out;
    rc = read_line_into(fd, out, cap, len);
out:
    close(fd);
    return rc;
}

int sk_read_secret_tty(const char *prompt, char *out, size_t cap, size_t *len)
{
    struct termios old, quiet;
    int fd, rc = -1;

    if (cap == 0)
        return -1;
    fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (tcgetattr(fd, &old) != 0)
        goto out;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    if (write(fd, prompt, strlen(prompt)) < 0)
        goto out;
    if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0)
        goto out;
    rc = read_line_into(fd, out, cap, len);
    (void)tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0) {
        /* The newline is cosmetic; the secret was read. */
    }
out:
    close(fd);
    return rc;
}

static int fsync_parent_dir(const char *path)
{
    char dir[4096];
    int fd, rc;
    if (sk_strlcpy(dir, sizeof dir, path) != 0)
        return -1;
    fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc == 0 ? 0 : -1;
}

int sk_write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int sk_write_file_atomic(const char *path, const void *data, size_t n, mode_t mode)
{
    char tmp[4096];
    const char *p = data;
    int fd = -1, rc = -1;
    uint8_t rnd[6];
    char rhex[13];

    if (sk_random(rnd, sizeof rnd) != 0)
        return -1;
    sk_hex_encode(rnd, sizeof rnd, rhex);
    if (sk_snprintf(tmp, sizeof tmp, "%s.tmp-%s", path, rhex) != 0)
        return -1;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -1;
    if (fchmod(fd, mode) != 0)
        goto out;
    if (sk_write_all(fd, p, n) != 0)
        goto out;
    if (fsync(fd) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto out;
    rc = fsync_parent_dir(path);
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        (void)unlink(tmp);
    return rc;
}

int sk_read_file(const char *path, size_t max, char **out, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max)
        goto out;
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL)
        goto out;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto out;
        got += (size_t)r;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

int sk_mkdir_p(const char *path, mode_t mode)
{
    char tmp[4096];
    if (sk_strlcpy(tmp, sizeof tmp, path) != 0 || tmp[0] == '\0')
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        struct stat st;
        if (*p != '/')
            continue;
        *p = '\0';
        /* An existing directory is not created again: mkdir in a parent one may
         * only search (mode 0711, a private clone) fails with EACCES, not EEXIST. */
        if (!(stat(tmp, &st) == 0 && S_ISDIR(st.st_mode)) && mkdir(tmp, mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    {
        struct stat st;
        if (stat(tmp, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
    }
    if (mkdir(tmp, mode) != 0) {
        struct stat st;
        /* EEXIST is fine only when what exists is a directory. */
        if (errno != EEXIST || stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode))
            return -1;
    }
    return 0;
}

static enum sk_log_level log_level = SK_LOG_INFO;
/* Decided once (sk_log_setup, or the first line): text or JSON, and whether
 * stderr is journald's stream. Logging threads only read these afterwards. */
static int log_ready, log_json, log_journal;

void sk_log_set_level(enum sk_log_level lvl)
{
    log_level = lvl;
}

void sk_log_setup(void)
{
    const char *fmt = getenv("SEKISHO_LOG_FORMAT");
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    char tail;

    log_json = fmt != NULL && strcmp(fmt, "json") == 0;
    /* systemd sets JOURNAL_STREAM=DEV:INODE of the stream it connected; it is
     * ours only while stderr is still that stream (not redirected since). */
    log_journal = js != NULL && sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
                  (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
    log_ready = 1;
}

/* Control bytes escaped so that a client string cannot forge lines. */
static void log_escaped(sk_buf *b, const char *msg)
{
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            sk_buf_printf(b, "\\x%02x", *p);
        else
            sk_buf_add(b, p, 1);
    }
}

/* JSON string body: RFC 8259 escapes; bytes >= 0x80 pass as they are (the
 * message is UTF-8 or already escaped by its producer). */
static void log_json_string(sk_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            sk_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            sk_buf_printf(b, "\\u%04x", *p);
        else
            sk_buf_add(b, p, 1);
    }
}

void sk_log(enum sk_log_level lvl, const char *fmt, ...)
{
    static const char *const names[] = { "error", "warn", "info", "debug" };
    /* syslog priorities: err, warning, info, debug */
    static const char prio[] = { '3', '4', '6', '7' };
    char msg[2048], line[4096 + 128], ts[32];
    struct timespec now;
    struct tm tm;
    sk_buf b;
    va_list ap;

    if (lvl > log_level)
        return;
    if (!log_ready)
        sk_log_setup();
    va_start(ap, fmt);
    /* A message that does not fit is cut: logging must not fail the caller. */
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    sk_buf_init(&b, line, sizeof line);
    /* Under journald: its priority prefix, and no time or pid (the journal
     * records both; repeating them only clutters journalctl). */
    if (log_journal)
        sk_buf_printf(&b, "<%c>", prio[lvl]);
    if (log_json) {
        sk_buf_puts(&b, "{\"level\":\"");
        sk_buf_puts(&b, names[lvl]);
        if (!log_journal)
            sk_buf_printf(&b, "\",\"time\":\"%s\",\"pid\":%d", ts, (int)getpid());
        else
            sk_buf_puts(&b, "\"");
        sk_buf_puts(&b, ",\"msg\":\"");
        log_json_string(&b, msg);
        sk_buf_puts(&b, "\"}\n");
    } else {
        if (log_journal)
            sk_buf_printf(&b, "%s: ", names[lvl]);
        else
            sk_buf_printf(&b, "%s sekisho[%d] %s: ", ts, (int)getpid(), names[lvl]);
        log_escaped(&b, msg);
        sk_buf_puts(&b, "\n");
    }
    if (b.failed) {
        /* Cut, but still one line (and for JSON still an object). */
        size_t keep = sizeof line - 8;
        if (log_json)
            memcpy(line + keep, "...\"}\n", 7);
        else
            memcpy(line + keep, "...\n", 5);
    }
    (void)fputs(line, stderr);
}

int sk_tcp_listen(const char *spec, int backlog, int *out)
{
    char host[256] = "", port[8];
    const char *colon;
    struct addrinfo hints, *ai = NULL;
    int fd = -1, one = 1, rc = -1;

    if (spec[0] == '[') {
        const char *rb = strchr(spec, ']');
        if (rb == NULL || rb[1] != ':' || (size_t)(rb - spec - 1) >= sizeof host)
            return -1;
        memcpy(host, spec + 1, (size_t)(rb - spec - 1));
        host[rb - spec - 1] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL || (size_t)(colon - spec) >= sizeof host)
            return -1;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
    }
    if (sk_strlcpy(port, sizeof port, colon + 1) != 0)
        return -1;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &ai) != 0 || ai == NULL)
        return -1;
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto out;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, backlog) != 0)
        goto out;
    *out = fd;
    fd = -1;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}
