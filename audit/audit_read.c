/* audit_read.c — entry parser, reader and verifier. Everything here treats the
 * log as hostile input: bounded lines, strict fields, no crash on garbage. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit_int.h"

struct entry_priv {
    json_t *root;
    char *details;
};

void sk_audit_entry_free(sk_audit_entry *e)
{
    struct entry_priv *p;
    if (!e)
        return;
    p = e->priv_;
    if (p) {
        json_decref(p->root);
        free(p->details);
        free(p);
    }
    memset(e, 0, sizeof(*e));
}

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* A field that must be present and be a string or null. */
static int opt_string(json_t *root, const char *key, const char **out)
{
    json_t *v = json_object_get(root, key);
    if (!v)
        return -1;
    if (json_is_null(v)) {
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

static int copy_detail(json_t *details, const char *key, char *out, size_t cap)
{
    json_t *v = json_object_get(details, key);
    out[0] = '\0';
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    return sk_strlcpy(out, cap, json_string_value(v));
}

/* An optional non-negative integer detail; *has = 1 when present. */
static int get_uint(json_t *details, const char *key, uint64_t *out, int *has)
{
    json_t *v = json_object_get(details, key);
    if (has)
        *has = 0;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    if (has)
        *has = 1;
    return 0;
}

/* The mac field must sit exactly before mac_end (the sig part or the h suffix). */
static int parse_mac(const char *line, size_t mac_end, json_t *v, sk_audit_entry *e)
{
    if (mac_end < AUDIT_MAC_PART_LEN || !json_is_string(v) ||
        json_string_length(v) != SK_AUDIT_HASH_HEX ||
        memcmp(line + mac_end - AUDIT_MAC_PART_LEN, ",\"mac\":\"", 8) != 0 ||
        line[mac_end - 1] != '"' ||
        memcmp(line + mac_end - AUDIT_MAC_PART_LEN + 8, json_string_value(v), SK_AUDIT_HASH_HEX) != 0 ||
        !is_lower_hex(json_string_value(v), SK_AUDIT_HASH_HEX))
        return -1;
    memcpy(e->mac, json_string_value(v), SK_AUDIT_HASH_HEX + 1);
    e->mac_len = mac_end - AUDIT_MAC_PART_LEN;
    return 0;
}

static int parse_checkpoint(json_t *details, sk_audit_entry *e, char *err, size_t errcap)
{
    json_t *v = json_object_get(details, "key");
    int has_from = 0, has_es = 0;
    if (!json_is_string(v) || json_string_length(v) != SK_AUDIT_HASH_HEX) {
        audit_err(err, errcap, "checkpoint without key id");
        return -1;
    }
    memcpy(e->keyid, json_string_value(v), SK_AUDIT_HASH_HEX + 1);
    if (get_uint(details, "epoch", &e->epoch, &e->has_epoch) != 0 || !e->has_epoch ||
        get_uint(details, "from", &e->cp_from, &has_from) != 0 || !has_from ||
        get_uint(details, "epoch_s", &e->epoch_secs, &has_es) != 0 || !has_es ||
        copy_detail(details, "reason", e->reason, sizeof(e->reason)) != 0 ||
        copy_detail(details, "origin", e->origin, sizeof(e->origin)) != 0 ||
        strlen(e->origin) != SK_AUDIT_HASH_HEX ||
        copy_detail(details, "next_segment", e->next_segment, sizeof(e->next_segment)) != 0) {
        audit_err(err, errcap, "checkpoint without epoch/from/epoch_s/reason");
        return -1;
    }
    v = json_object_get(details, "next");
    if (v) {
        if (!json_is_string(v) || json_string_length(v) != 64 ||
            !is_lower_hex(json_string_value(v), 64) || sk_hex_decode(json_string_value(v), e->next_pub, 32) != 0) {
            audit_err(err, errcap, "bad next key");
            return -1;
        }
        e->has_next = 1;
    }
    return 0;
}

int sk_audit_parse_line(const char *line, size_t n, sk_audit_entry *e, char *err, size_t errcap)
{
    static const char *const allowed[] = {"seq",    "ts",     "ev",      "actor", "tenant", "peer",
                                          "serial", "details", "prev",   "mac",   "sig",   "h",
                                          "node"};
    struct entry_priv *p = NULL;
    json_error_t jerr;
    json_t *root = NULL, *v, *details;
    const char *key;
    char computed[SK_AUDIT_HASH_HEX + 1];
    size_t hashed_len, mac_end;
    int rc = -1;

    sk_audit_entry_free(e);
    if (!line || n == 0) {
        audit_err(err, errcap, "empty line");
        goto out;
    }
    if (n > SK_AUDIT_MAX_LINE) {
        audit_err(err, errcap, "line longer than %d bytes", SK_AUDIT_MAX_LINE);
        goto out;
    }
    if (memchr(line, '\0', n) || memchr(line, '\n', n)) {
        audit_err(err, errcap, "line contains a NUL or newline byte");
        goto out;
    }
    if (n < AUDIT_H_SUFFIX_LEN + 2 || memcmp(line + n - AUDIT_H_SUFFIX_LEN, ",\"h\":\"", 6) != 0 ||
        memcmp(line + n - 2, "\"}", 2) != 0 ||
        !is_lower_hex(line + n - AUDIT_H_SUFFIX_LEN + 6, SK_AUDIT_HASH_HEX)) {
        audit_err(err, errcap, "line does not end with a hash field");
        goto out;
    }
    hashed_len = n - AUDIT_H_SUFFIX_LEN;
    root = json_loadb(line, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        audit_err(err, errcap, "not a JSON object: %s", root ? "wrong type" : jerr.text);
        goto out;
    }
    json_object_foreach(root, key, v) {
        size_t i;
        for (i = 0; i < SK_ARRAY_LEN(allowed); i++)
            if (strcmp(key, allowed[i]) == 0)
                break;
        if (i == SK_ARRAY_LEN(allowed)) {
            audit_err(err, errcap, "unknown field");
            goto out;
        }
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        audit_err(err, errcap, "out of memory");
        goto out;
    }
    p->root = root;
    e->priv_ = p;
    root = NULL;

    v = json_object_get(p->root, "seq");
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        audit_err(err, errcap, "bad seq");
        goto out;
    }
    e->seq = (uint64_t)json_integer_value(v);
    v = json_object_get(p->root, "ts");
    if (!json_is_string(v) || audit_parse_ts(json_string_value(v), &e->ts_ms) != 0) {
        audit_err(err, errcap, "bad ts");
        goto out;
    }
    e->ts = json_string_value(v);
    v = json_object_get(p->root, "ev");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        audit_err(err, errcap, "bad ev");
        goto out;
    }
    e->event = json_string_value(v);
    v = json_object_get(p->root, "node");
    if (v && (!json_is_string(v) || json_string_length(v) != strlen(json_string_value(v)) ||
              !sk_audit_valid_node(json_string_value(v)))) {
        audit_err(err, errcap, "bad node");
        goto out;
    }
    e->node = v ? json_string_value(v) : NULL;
    if (opt_string(p->root, "actor", &e->actor) || opt_string(p->root, "tenant", &e->tenant) ||
        opt_string(p->root, "peer", &e->peer) || opt_string(p->root, "serial", &e->serial)) {
        audit_err(err, errcap, "bad actor/tenant/peer/serial");
        goto out;
    }
    details = json_object_get(p->root, "details");
    if (!json_is_object(details)) {
        audit_err(err, errcap, "bad details");
        goto out;
    }
    p->details = json_dumps(details, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!p->details) {
        audit_err(err, errcap, "out of memory");
        goto out;
    }
    e->details = p->details;
    v = json_object_get(p->root, "prev");
    if (!json_is_string(v) || json_string_length(v) != SK_AUDIT_HASH_HEX ||
        !is_lower_hex(json_string_value(v), SK_AUDIT_HASH_HEX)) {
        audit_err(err, errcap, "bad prev");
        goto out;
    }
    memcpy(e->prev, json_string_value(v), SK_AUDIT_HASH_HEX + 1);
    v = json_object_get(p->root, "h");
    if (!json_is_string(v) || json_string_length(v) != SK_AUDIT_HASH_HEX ||
        memcmp(json_string_value(v), line + hashed_len + 6, SK_AUDIT_HASH_HEX) != 0) {
        audit_err(err, errcap, "bad h");
        goto out;
    }
    memcpy(e->hash, json_string_value(v), SK_AUDIT_HASH_HEX + 1);

    v = json_object_get(p->root, "sig");
    mac_end = hashed_len;
    if (strcmp(e->event, SK_AUDIT_EV_CHECKPOINT) == 0) {
        const char *sp;
        if (!json_is_string(v) || hashed_len < AUDIT_SIG_PART_LEN) {
            audit_err(err, errcap, "checkpoint without signature");
            goto out;
        }
        sp = line + hashed_len - AUDIT_SIG_PART_LEN;
        if (memcmp(sp, ",\"sig\":\"", 8) != 0 || sp[AUDIT_SIG_PART_LEN - 1] != '"' ||
            json_string_length(v) != AUDIT_SIG_B64_LEN ||
            memcmp(json_string_value(v), sp + 8, AUDIT_SIG_B64_LEN) != 0 ||
            sk_b64url_decode(sp + 8, AUDIT_SIG_B64_LEN, e->sig, SK_AUDIT_SIG_LEN) != 0) {
            audit_err(err, errcap, "malformed signature field");
            goto out;
        }
        e->has_sig = 1;
        e->signed_len = hashed_len - AUDIT_SIG_PART_LEN;
        mac_end = e->signed_len;
        if (parse_checkpoint(details, e, err, errcap) != 0)
            goto out;
    } else if (v) {
        audit_err(err, errcap, "signature on a non-checkpoint entry");
        goto out;
    }
    if (parse_mac(line, mac_end, json_object_get(p->root, "mac"), e) != 0) {
        audit_err(err, errcap, "bad mac field");
        goto out;
    }
    if ((strcmp(e->event, SK_AUDIT_EV_SEGMENT) == 0 || strcmp(e->event, SK_AUDIT_EV_EPOCH) == 0) &&
        get_uint(details, "epoch", &e->epoch, &e->has_epoch) != 0) {
        audit_err(err, errcap, "bad epoch");
        goto out;
    }
    if (strcmp(e->event, SK_AUDIT_EV_SEGMENT) == 0 &&
        (copy_detail(details, "segment", e->segment, sizeof(e->segment)) != 0 ||
         copy_detail(details, "prev_segment", e->prev_segment, sizeof(e->prev_segment)) != 0)) {
        audit_err(err, errcap, "bad segment header");
        goto out;
    }
    if (strcmp(e->event, SK_AUDIT_EV_PRUNE) == 0 &&
        copy_detail(details, "oldest_kept", e->oldest_kept, sizeof(e->oldest_kept)) != 0) {
        audit_err(err, errcap, "bad prune record");
        goto out;
    }
    if (audit_hash_hex(line, hashed_len, computed) != 0) {
        audit_err(err, errcap, "hash failure");
        goto out;
    }
    e->hash_ok = memcmp(computed, e->hash, SK_AUDIT_HASH_HEX) == 0;
    rc = 0;
out:
    json_decref(root);
    if (rc != 0)
        sk_audit_entry_free(e);
    return rc;
}

/* ---- line reading ------------------------------------------------------ */

/* Reads one line into buf (without '\n'). 1: line, 0: EOF, -1: too long or
 * I/O error. *torn = 1 when the line ended at EOF without a newline. */
int audit_read_line(FILE *f, char *buf, size_t cap, size_t *len, int *torn)
{
    size_t n = 0;
    int c;
    *torn = 0;
    while ((c = getc_unlocked(f)) != EOF) {
        if (c == '\n') {
            *len = n;
            buf[n] = '\0';
            return 1;
        }
        if (n + 1 >= cap)
            return -1;
        buf[n++] = (char)c;
    }
    if (ferror(f))
        return -1;
    if (n == 0)
        return 0;
    *torn = 1;
    *len = n;
    buf[n] = '\0';
    return 1;
}

struct sk_audit_reader {
    char dir[4096];
    char **segs;
    size_t nsegs, cur;
    FILE *f;
    char *buf;
    uint64_t lineno;
};

int sk_audit_reader_open(const char *dir, sk_audit_reader **out, char *err, size_t errcap)
{
    sk_audit_reader *r = calloc(1, sizeof(*r));
    int rc = -1;
    *out = NULL;
    if (!r)
        goto out;
    if (sk_strlcpy(r->dir, sizeof(r->dir), dir) != 0) {
        audit_err(err, errcap, "audit directory path too long");
        goto out;
    }
    r->buf = malloc(SK_AUDIT_MAX_LINE + 2);
    if (!r->buf)
        goto out;
    if (audit_list_segments(dir, &r->segs, &r->nsegs) != 0) {
        audit_err(err, errcap, "cannot list %s: %s", dir, strerror(errno));
        goto out;
    }
    *out = r;
    r = NULL;
    rc = 0;
out:
    sk_audit_reader_close(r);
    return rc;
}

void sk_audit_reader_close(sk_audit_reader *r)
{
    if (!r)
        return;
    if (r->f)
        fclose(r->f);
    audit_free_list(r->segs, r->nsegs);
    free(r->buf);
    free(r);
}

int sk_audit_reader_next(sk_audit_reader *r, sk_audit_entry *e, const char **line, char *err,
                         size_t errcap)
{
    char perr[160];
    for (;;) {
        size_t len;
        int torn, k;
        if (!r->f) {
            char path[4200];
            if (r->cur >= r->nsegs)
                return 0;
            if (sk_snprintf(path, sizeof(path), "%s/%s", r->dir, r->segs[r->cur]) != 0)
                return -1;
            r->f = fopen(path, "re");
            if (!r->f) {
                audit_err(err, errcap, "cannot open %s: %s", path, strerror(errno));
                return -1;
            }
            r->lineno = 0;
        }
        k = audit_read_line(r->f, r->buf, SK_AUDIT_MAX_LINE + 2, &len, &torn);
        if (k == 0) {
            fclose(r->f);
            r->f = NULL;
            r->cur++;
            continue;
        }
        r->lineno++;
        if (k < 0) {
            audit_err(err, errcap, "%s:%llu: line too long or unreadable", r->segs[r->cur],
                      (unsigned long long)r->lineno);
            return -1;
        }
        if (torn) {
            /* An unterminated last line was never acknowledged; readers skip it
             * (verify reports it). */
            continue;
        }
        if (sk_audit_parse_line(r->buf, len, e, perr, sizeof(perr)) != 0) {
            audit_err(err, errcap, "%s:%llu: %s", r->segs[r->cur], (unsigned long long)r->lineno,
                      perr);
            return -1;
        }
        *line = r->buf;
        return 1;
    }
}

