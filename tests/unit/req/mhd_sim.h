/*
 * mhd_sim.h — a model of how libmicrohttpd 0.9.75 parses a request head in place
 * (src/microhttpd/connection.c: get_next_header_line, parse_initial_message_line,
 * process_header_line, process_broken_line), for the unit tests and the fuzzer of
 * sk_req_walk. The in-process harness (tests/fuzz/req/fuzz_req_mhd.c) runs the real
 * library; this model lets the walk be tested alone and fast.
 *
 * Also: raw_head_clean(), the strict form of what the walk decides: the head is
 * "METHOD SP TARGET SP VERSION CRLF *(NAME ':' VALUE CRLF) CRLF" with token
 * method and names, printable-ASCII target and version, values without CTL
 * (HTAB allowed) or DEL, and no obs-fold line.
 */
#ifndef MHD_SIM_H
#define MHD_SIM_H

#include <stdlib.h>
#include <string.h>

#include "sk_req.h"

#define SIM_MAX 8192
#define SIM_FIELDS 64

struct sim {
    char buf[SIM_MAX + 1];
    char reloc[SIM_MAX + 1];   /* obs-fold: libmicrohttpd moves the name to a new block */
    size_t reloc_used;
    size_t head_off, size;     /* the head: [buf + head_off, + size) */
    size_t raw_end;            /* end of the head in the input */
    const char *url, *version;
    char raw_target[SIM_MAX + 1];
    const char *name[SIM_FIELDS], *value[SIM_FIELDS];
    size_t n;
};

/* The next line from *pos: CRLF or bare LF ends it (a bare CR does not). The
 * terminator is blanked. Returns the line start or NULL (no complete line). */
static char *sim_line(struct sim *s, size_t len, size_t *pos, size_t *line_len)
{
    size_t p = *pos;
    for (size_t i = p; i < len; i++) {
        if (s->buf[i] == '\r' && i + 1 < len && s->buf[i + 1] == '\n') {
            s->buf[i] = s->buf[i + 1] = '\0';
            *line_len = i - p;
            *pos = i + 2;
            return s->buf + p;
        }
        if (s->buf[i] == '\n') {
            s->buf[i] = '\0';
            *line_len = i - p;
            *pos = i + 1;
            return s->buf + p;
        }
    }
    return NULL;
}

/* 0 when libmicrohttpd would accept the head (and call the application), -1 not. */
static int sim_parse(struct sim *s, const char *in, size_t len)
{
    size_t pos = 0, ll = 0;
    char *line, *uri, *ver, *last = NULL, *colon = NULL;

    memset(s, 0, sizeof *s);
    if (len > SIM_MAX)
        return -1;
    memcpy(s->buf, in, len);
    do { /* empty lines before the request line are tolerated */
        s->head_off = pos;
        line = sim_line(s, len, &pos, &ll);
    } while (line != NULL && ll == 0);
    if (line == NULL || (uri = memchr(line, ' ', ll)) == NULL || uri == line)
        return -1;
    *uri++ = '\0';
    while (*uri == ' ' && uri < line + ll)
        uri++;
    ver = line + ll - 1;
    while (*ver == ' ' && ver > uri)
        ver--;
    while (*ver != ' ' && ver > uri)
        ver--;
    if (ver <= uri || memchr(uri, ' ', (size_t)(ver - uri)) != NULL) /* strict: no space in the URI */
        return -1;
    *ver++ = '\0';
    if (strcmp(ver, "HTTP/1.1") != 0 && strcmp(ver, "HTTP/1.0") != 0)
        return -1;
    memcpy(s->raw_target, uri, strlen(uri) + 1); /* the URI log callback's copy */
    if ((colon = strchr(uri, '?')) != NULL)
        *colon = '\0';
    s->url = uri;
    s->version = ver;
    for (;;) {
        line = sim_line(s, len, &pos, &ll);
        if (line == NULL)
            return -1;
        if (last != NULL && (line[0] == ' ' || line[0] == '\t')) {
            /* obs-fold: the name and the continuation land in a new block */
            char *t = line, *nb = s->reloc + s->reloc_used;
            size_t ln = strlen(last), tn;
            while (*t == ' ' || *t == '\t')
                t++;
            tn = strlen(t);
            if (s->reloc_used + ln + tn + 1 > SIM_MAX)
                return -1;
            memcpy(nb, last, ln);
            memcpy(nb + ln, t, tn + 1);
            s->reloc_used += ln + tn + 1;
            last = nb;
            continue;
        }
        if (last != NULL) {
            if (s->n == SIM_FIELDS)
                return -1;
            s->name[s->n] = last;
            s->value[s->n++] = colon;
            last = NULL;
        }
        if (ll == 0)
            break;
        if ((colon = strchr(line, ':')) == NULL)
            return -1;
        *colon++ = '\0';
        while (*colon == ' ' || *colon == '\t')
            colon++;
        last = line;
    }
    s->raw_end = pos;
    s->size = pos - s->head_off;
    return 0;
}

static int sim_walk(const struct sim *s)
{
    sk_req_walk w;
    sk_req_walk_start(&w, s->buf + s->head_off, s->size, s->url, s->raw_target, s->version);
    for (size_t i = 0; i < s->n; i++)
        sk_req_walk_field(&w, s->name[i], strlen(s->name[i]), s->value[i], strlen(s->value[i]));
    return sk_req_walk_end(&w);
}

/* The property, decided on the raw bytes [from, to) of the head alone. */
static int raw_head_clean(const char *in, size_t from, size_t to)
{
    const unsigned char *p = (const unsigned char *)in + from, *end = (const unsigned char *)in + to;
    int line = 0;
    while (p < end) {
        const unsigned char *eol = p, *c;
        while (eol < end && *eol != '\r' && *eol != '\n')
            eol++;
        if (eol + 1 >= end || eol[0] != '\r' || eol[1] != '\n')
            return 0; /* bare CR, bare LF or no line end */
        if (eol == p)
            return eol + 2 == end && line > 0; /* the empty line ends the head */
        if (line == 0) {
            const unsigned char *sp1 = memchr(p, ' ', (size_t)(eol - p)), *sp2;
            if (sp1 == NULL || sp1 == p)
                return 0;
            for (c = p; c < sp1; c++)
                if (!sk_req_is_tchar(*c))
                    return 0;
            sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
            if (sp2 == NULL || sp2 == sp1 + 1)
                return 0;
            for (c = sp1 + 1; c < eol; c++)
                if (c != sp2 && (*c <= 0x20 || *c >= 0x7f))
                    return 0;
        } else {
            const unsigned char *colon = memchr(p, ':', (size_t)(eol - p));
            if (colon == NULL || colon == p)
                return 0;
            for (c = p; c < colon; c++)
                if (!sk_req_is_tchar(*c))
                    return 0;
            if (!sk_req_value_clean((const char *)colon + 1, (size_t)(eol - colon - 1)))
                return 0;
        }
        line++;
        p = eol + 2;
    }
    return 0;
}

/*
 * What the walk guarantees when it calls a head intact, decided on the raw bytes:
 * no control character but CR, LF, HTAB and NUL, every CR followed by LF, and no
 * line starting with SP or HTAB (obs-fold). It cannot promise more: once
 * libmicrohttpd has blanked CR, LF and the colons, a client's "NUL LF" looks like
 * "CR LF" and "NUL NUL LF LF" like the end of the head. That is harmless: each
 * field libmicrohttpd hands on is then exactly clean bytes of the head (a NUL
 * cuts the line; nothing after it on that line survives), so such a request
 * means the same as its clean spelling. raw_head_clean() always implies a walk
 * verdict of 1; a verdict of 1 always implies raw_head_weak().
 */
static int raw_head_weak(const char *in, size_t from, size_t to)
{
    int line_start = 1;
    for (size_t i = from; i < to; i++) {
        unsigned char c = (unsigned char)in[i];
        if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t' && c != 0) || c == 0x7f)
            return 0;
        if (c == '\r' && (i + 1 >= to || in[i + 1] != '\n'))
            return 0;
        if (line_start && (c == ' ' || c == '\t'))
            return 0;
        line_start = c == '\n';
    }
    return 1;
}

#endif
