/* audit_verify.c — the verifier (see FORMAT.md, "Verification"). Everything
 * here treats the log as hostile input. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_int.h"

#define GRACE_MS 60000
#define DEFAULT_EPOCH_S 900
#define MAX_WITNESS 64

const char *sk_audit_problem_name(enum sk_audit_problem p)
{
    switch (p) {
    case SK_AUDIT_OK: return "ok";
    case SK_AUDIT_EDITED: return "edited";
    case SK_AUDIT_DELETED: return "deleted";
    case SK_AUDIT_REORDERED: return "reordered";
    case SK_AUDIT_TRUNCATED_TAIL: return "truncated tail";
    case SK_AUDIT_BAD_SIGNATURE: return "bad signature";
    case SK_AUDIT_UNKNOWN_KEY: return "unknown key";
    case SK_AUDIT_IO_ERROR: return "unreadable";
    case SK_AUDIT_UNSIGNED: return "unsigned";
    case SK_AUDIT_EPOCH_GAP: return "epoch gap";
    case SK_AUDIT_WRONG_EPOCH_KEY: return "wrong epoch key";
    case SK_AUDIT_TRUNCATED: return "truncated";
    }
    return "unknown";
}

static void fail(sk_audit_verdict *v, enum sk_audit_problem p, const char *seg, uint64_t line,
                 uint64_t seq, const char *fmt, ...) SK_PRINTF(6, 7);
static void fail(sk_audit_verdict *v, enum sk_audit_problem p, const char *seg, uint64_t line,
                 uint64_t seq, const char *fmt, ...)
{
    va_list ap;
    if (v->problem != SK_AUDIT_OK)
        return; /* the first problem is the one reported */
    v->problem = p;
    if (sk_strlcpy(v->segment, sizeof(v->segment), seg ? seg : "") != 0)
        v->segment[0] = '\0';
    v->line = line;
    v->seq = seq;
    va_start(ap, fmt);
    (void)vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
    va_end(ap);
}

/* Is there an entry with sequence number seq later in this segment? Used to
 * tell "reordered" (it is there, just elsewhere) from "deleted". */
static int seq_later_in(FILE *f, char *buf, uint64_t seq)
{
    sk_audit_entry e;
    size_t len;
    int torn, found = 0;
    long pos = ftell(f);
    memset(&e, 0, sizeof(e));
    while (audit_read_line(f, buf, SK_AUDIT_MAX_LINE + 2, &len, &torn) == 1) {
        if (sk_audit_parse_line(buf, len, &e, NULL, 0) == 0 && e.seq == seq) {
            found = 1;
            break;
        }
    }
    sk_audit_entry_free(&e);
    if (pos >= 0)
        (void)fseek(f, pos, SEEK_SET);
    return found;
}

struct witness {
    audit_note n;
    const char *file;
    int seen;                        /* 1 found and equal */
};

struct vstate {
    const char *dir;
    char **segs;
    size_t nsegs;
    char *buf, *scratch;
    uint8_t pub0[32];
    char keyid0[SK_AUDIT_HASH_HEX + 1];
    /* epoch 1.. keys from epochs.jsonl (needed once old segments are pruned) */
    uint8_t (*epub)[32];
    size_t n_epub;                   /* epub[i] is the key of epoch i (epub[0] = pub0) */
    /* running state */
    uint64_t cur_epoch;
    uint8_t cur_pub[32];
    char cur_keyid[SK_AUDIT_HASH_HEX + 1];
    int have_prev, expect_epoch_entry;
    char prev_h[SK_AUDIT_HASH_HEX + 1];
    uint64_t expected, last_cp;
    char last_reason[16], last_next_seg[SK_AUDIT_SEG_MAX];
    uint64_t prune_seq;
    char prune_kept[SK_AUDIT_SEG_MAX], last_kept[SK_AUDIT_SEG_MAX];
    /* first unsealed entry after the last checkpoint */
    char us_seg[SK_AUDIT_SEG_MAX];
    uint64_t us_line, us_seq;
    int64_t us_ms;
    /* an audit.truncated record */
    char tr_seg[SK_AUDIT_SEG_MAX], tr_detail[200];
    uint64_t tr_line, tr_seq;
    /* where the log ends */
    char end_seg[SK_AUDIT_SEG_MAX];
    uint64_t end_line;
    struct witness *w;
    size_t nw;
};

static void set_key(struct vstate *s, uint64_t epoch, const uint8_t pub[32])
{
    s->cur_epoch = epoch;
    memcpy(s->cur_pub, pub, 32);
    if (audit_keyid(pub, s->cur_keyid) != 0)
        s->cur_keyid[0] = '\0';
}

/* epochs.jsonl: a copy of every handoff checkpoint, kept when segments
 * are pruned so that the key of the first retained epoch is still reachable
 * from epoch 0's key. Each line is checked on its own (hash, signature by the
 * previous epoch's key); reading stops at the first line that does not hold. */
static int load_epochs(struct vstate *s)
{
    char path[4200];
    FILE *f;
    sk_audit_entry e;
    size_t len;
    int torn;
    memset(&e, 0, sizeof(e));
    s->epub = malloc(sizeof(*s->epub));
    if (!s->epub)
        return -1;
    memcpy(s->epub[0], s->pub0, 32);
    s->n_epub = 1;
    if (sk_snprintf(path, sizeof(path), "%s/%s", s->dir, AUDIT_EPOCHS_FILE) != 0)
        return -1;
    f = fopen(path, "re");
    if (!f)
        return 0;
    while (audit_read_line(f, s->buf, SK_AUDIT_MAX_LINE + 2, &len, &torn) == 1 && !torn) {
        char kid[SK_AUDIT_HASH_HEX + 1];
        void *nv;
        if (sk_audit_parse_line(s->buf, len, &e, NULL, 0) != 0 || !e.hash_ok || !e.has_sig ||
            !e.has_next || e.epoch != s->n_epub - 1 || audit_keyid(s->epub[e.epoch], kid) != 0 ||
            strcmp(kid, e.keyid) != 0 || !sk_audit_check_sig(s->buf, &e, s->epub[e.epoch]))
            break;
        nv = realloc(s->epub, (s->n_epub + 1) * sizeof(*s->epub));
        if (!nv)
            break;
        s->epub = nv;
        memcpy(s->epub[s->n_epub++], e.next_pub, 32);
    }
    sk_audit_entry_free(&e);
    fclose(f);
    return 0;
}

static int load_witnesses(struct vstate *s, const sk_audit_verify_opts *o, sk_audit_verdict *v)
{
    if (!o || o->n_witness == 0)
        return 0;
    if (o->n_witness > MAX_WITNESS) {
        fail(v, SK_AUDIT_IO_ERROR, "", 0, 0, "at most %d witness files", MAX_WITNESS);
        return 0;
    }
    s->w = calloc(o->n_witness, sizeof(*s->w));
    if (!s->w)
        return -1;
    for (size_t i = 0; i < o->n_witness; i++) {
        char *text = NULL;
        size_t len = 0;
        int ok = sk_read_file(o->witness[i], 16384, &text, &len) == 0 &&
                 audit_note_parse(text, len, &s->w[i].n) == 0;
        free(text);
        s->w[i].file = o->witness[i];
        if (!ok) {
            fail(v, SK_AUDIT_IO_ERROR, o->witness[i], 0, 0,
                 "witness file %s is unreadable or not a sekisho checkpoint", o->witness[i]);
            return 0;
        }
        if (strcmp(s->w[i].n.origin, s->keyid0) != 0) {
            fail(v, SK_AUDIT_UNKNOWN_KEY, o->witness[i], 0, s->w[i].n.seq,
                 "witness file %s is for another log (origin %.16s...)", o->witness[i],
                 s->w[i].n.origin);
            return 0;
        }
    }
    s->nw = o->n_witness;
    v->witnesses = (unsigned)s->nw;
    return 0;
}

/* Checks of a checkpoint's signature and epoch, before its hash is trusted. */
static void check_sig(struct vstate *s, sk_audit_verdict *v, const char *seg, uint64_t ln,
                      const sk_audit_entry *e)
{
    if (e->epoch < s->cur_epoch) {
        fail(v, SK_AUDIT_WRONG_EPOCH_KEY, seg, ln, e->seq,
             "checkpoint claims epoch %llu inside epoch %llu (replayed or re-signed)",
             (unsigned long long)e->epoch, (unsigned long long)s->cur_epoch);
    } else if (e->epoch > s->cur_epoch) {
        fail(v, SK_AUDIT_EPOCH_GAP, seg, ln, e->seq,
             "checkpoint of epoch %llu follows epoch %llu without a handoff (epochs %llu..%llu "
             "missing)", (unsigned long long)e->epoch, (unsigned long long)s->cur_epoch,
             (unsigned long long)s->cur_epoch + 1, (unsigned long long)e->epoch);
    } else if (strcmp(e->keyid, s->cur_keyid) != 0) {
        if (s->cur_epoch == 0)
            fail(v, SK_AUDIT_UNKNOWN_KEY, seg, ln, e->seq,
                 "checkpoint signed by key %.16s..., not by the given initial public key",
                 e->keyid);
        else
            fail(v, SK_AUDIT_WRONG_EPOCH_KEY, seg, ln, e->seq,
                 "checkpoint signed by key %.16s..., epoch %llu's key is %.16s...", e->keyid,
                 (unsigned long long)s->cur_epoch, s->cur_keyid);
    } else if (!sk_audit_check_sig(s->buf, e, s->cur_pub)) {
        fail(v, SK_AUDIT_BAD_SIGNATURE, seg, ln, e->seq, "checkpoint signature does not verify");
    }
}

/* The first entry present: a fresh chain, or the anchor after pruning. */
static void first_entry(struct vstate *s, sk_audit_verdict *v, const char *seg, uint64_t ln,
                        const sk_audit_entry *e)
{
    v->first_seq = e->seq;
    if (e->seq == 1) {
        if (strcmp(e->prev, AUDIT_ZERO_HASH) != 0)
            fail(v, SK_AUDIT_EDITED, seg, ln, e->seq, "first entry does not start a chain");
        set_key(s, 0, s->pub0);
        s->last_cp = 0;
        v->first_epoch = 0;
        return;
    }
    /* Pruned: a segment header after the previous segment's rotation
     * checkpoint (seq - 1); its epoch names the key, which must be reachable
     * from epoch 0 through epochs.jsonl. Both are checked by the first
     * checkpoint (epoch, key, from). */
    if (!e->has_epoch || e->epoch >= s->n_epub) {
        fail(v, SK_AUDIT_UNKNOWN_KEY, seg, ln, e->seq,
             "the key of epoch %llu is not known (%s missing or shorter)",
             (unsigned long long)e->epoch, AUDIT_EPOCHS_FILE);
        return;
    }
    set_key(s, e->epoch, s->epub[e->epoch]);
    s->last_cp = e->seq - 1;
    v->first_epoch = e->epoch;
}

static void on_checkpoint(struct vstate *s, sk_audit_verdict *v, const char *seg, uint64_t ln,
                          const sk_audit_entry *e)
{
    if (e->cp_from != s->last_cp + 1) {
        fail(v, SK_AUDIT_UNSIGNED, seg, ln, e->seq,
             "checkpoint covers %llu..%llu but the previous checkpoint is %llu (ranges must be "
             "contiguous)", (unsigned long long)e->cp_from, (unsigned long long)e->seq,
             (unsigned long long)s->last_cp);
        return;
    }
    s->last_cp = e->seq;
    v->checkpoints++;
    v->last_signed_seq = e->seq;
    v->last_signed_ms = e->ts_ms;
    v->newest_cp_ms = e->ts_ms;
    v->epoch_secs = (int64_t)e->epoch_secs;
    v->last_epoch = e->epoch;
    memcpy(s->last_reason, e->reason, sizeof(s->last_reason));
    memcpy(s->last_next_seg, e->next_segment, sizeof(s->last_next_seg));
    s->us_seq = 0;
    if (s->prune_seq) { /* a prune record counts once a checkpoint covers it */
        memcpy(s->last_kept, s->prune_kept, sizeof(s->last_kept));
        s->prune_seq = 0;
    }
    if (e->has_next) {
        if (s->cur_epoch + 1 < s->n_epub && memcmp(s->epub[s->cur_epoch + 1], e->next_pub, 32) != 0) {
            fail(v, SK_AUDIT_WRONG_EPOCH_KEY, seg, ln, e->seq,
                 "handoff to epoch %llu names another key than %s",
                 (unsigned long long)s->cur_epoch + 1, AUDIT_EPOCHS_FILE);
            return;
        }
        set_key(s, s->cur_epoch + 1, e->next_pub);
        s->expect_epoch_entry = 1;
    }
}

/* Per-event bookkeeping of a verified entry. */
static void on_entry(struct vstate *s, sk_audit_verdict *v, const char *seg, uint64_t ln,
                     const sk_audit_entry *e)
{
    int is_epoch = strcmp(e->event, SK_AUDIT_EV_EPOCH) == 0;
    if (s->expect_epoch_entry || is_epoch) {
        if (!s->expect_epoch_entry || !is_epoch || !e->has_epoch || e->epoch != s->cur_epoch) {
            fail(v, SK_AUDIT_EPOCH_GAP, seg, ln, e->seq,
                 "a handoff to epoch %llu must be followed by exactly its audit.epoch entry",
                 (unsigned long long)s->cur_epoch);
            return;
        }
        s->expect_epoch_entry = 0;
    }
    if (e->has_sig) {
        on_checkpoint(s, v, seg, ln, e);
    } else if (!s->us_seq) {
        s->us_seq = e->seq;
        s->us_line = ln;
        s->us_ms = e->ts_ms;
        if (sk_strlcpy(s->us_seg, sizeof(s->us_seg), seg) != 0)
            s->us_seg[0] = '\0';
    }
    if (strcmp(e->event, SK_AUDIT_EV_PRUNE) == 0 && e->oldest_kept[0]) {
        s->prune_seq = e->seq;
        memcpy(s->prune_kept, e->oldest_kept, sizeof(s->prune_kept));
    }
    if (strcmp(e->event, SK_AUDIT_EV_TRUNCATED) == 0 && !s->tr_seq) {
        s->tr_seq = e->seq;
        s->tr_line = ln;
        if (sk_strlcpy(s->tr_seg, sizeof(s->tr_seg), seg) != 0 ||
            sk_strlcpy(s->tr_detail, sizeof(s->tr_detail), e->details) != 0)
            s->tr_detail[0] = '\0';
    }
    for (size_t i = 0; i < s->nw; i++) {
        if (s->w[i].n.seq != e->seq)
            continue;
        if (strcmp(s->w[i].n.h, e->hash) != 0)
            fail(v, SK_AUDIT_EDITED, seg, ln, e->seq,
                 "entry %llu differs from the checkpoint witnessed in %s (history rewritten)",
                 (unsigned long long)e->seq, s->w[i].file);
        else
            s->w[i].seen = 1;
    }
}

/* Sequence, segment header and chain checks of one parsed entry. */
static void check_links(struct vstate *s, sk_audit_verdict *v, FILE *f, size_t si, uint64_t ln,
                        const sk_audit_entry *e)
{
    const char *seg = s->segs[si];
    /* Whole files first: a swapped or missing segment is named as such. */
    if (ln == 1) {
        if (strcmp(e->event, SK_AUDIT_EV_SEGMENT) != 0)
            fail(v, SK_AUDIT_DELETED, seg, ln, e->seq,
                 "segment does not start with its audit.segment header");
        else if (strcmp(e->segment, seg) != 0)
            fail(v, SK_AUDIT_REORDERED, seg, ln, e->seq, "segment header names %s", e->segment);
        else if (si > 0 && strcmp(e->prev_segment, s->segs[si - 1]) != 0)
            fail(v, SK_AUDIT_DELETED, seg, ln, e->seq, "previous segment %s is missing",
                 e->prev_segment);
        if (v->problem != SK_AUDIT_OK)
            return;
    }
    if (s->have_prev && e->seq != s->expected) {
        if (e->seq < s->expected)
            fail(v, SK_AUDIT_REORDERED, seg, ln, e->seq, "sequence %llu appears after %llu",
                 (unsigned long long)e->seq, (unsigned long long)(s->expected - 1));
        else if (seq_later_in(f, s->scratch, s->expected))
            fail(v, SK_AUDIT_REORDERED, seg, ln, e->seq,
                 "expected sequence %llu here, it appears later", (unsigned long long)s->expected);
        else
            fail(v, SK_AUDIT_DELETED, seg, ln, e->seq, "entries %llu..%llu are missing",
                 (unsigned long long)s->expected, (unsigned long long)(e->seq - 1));
        return;
    }
    if (s->have_prev && memcmp(e->prev, s->prev_h, SK_AUDIT_HASH_HEX) != 0) {
        fail(v, SK_AUDIT_EDITED, seg, ln, e->seq,
             "does not chain to entry %llu (one of them was rewritten)",
             (unsigned long long)(e->seq - 1));
        return;
    }
    if (s->have_prev && ln == 1 && s->last_next_seg[0] && strcmp(s->last_next_seg, seg) != 0)
        fail(v, SK_AUDIT_DELETED, seg, ln, e->seq, "the rotation named %s, found %s",
             s->last_next_seg, seg);
}

/* Format 3: a chain belongs to one node. Once an entry names its node, every
 * later one names the same node (entries before it are format 2, written before
 * the upgrade), and a node-named segment holds that node's entries only. The
 * node is under h, so it cannot be relabelled without breaking the chain. */
static void check_node(sk_audit_verdict *v, const char *seg, uint64_t ln, const sk_audit_entry *e)
{
    char seg_node[SK_AUDIT_NODE_MAX + 1];
    if (v->node[0] && (!e->node || strcmp(e->node, v->node) != 0)) {
        fail(v, SK_AUDIT_EDITED, seg, ln, e->seq, "entry of %s%s in the chain of node %s",
             e->node ? "node " : "no node", e->node ? e->node : "", v->node);
        return;
    }
    if (sk_audit_segment_parse(seg, NULL, seg_node) == 0 && seg_node[0] &&
        (!e->node || strcmp(e->node, seg_node) != 0)) {
        fail(v, SK_AUDIT_EDITED, seg, ln, e->seq, "segment of node %s holds an entry of %s%s",
             seg_node, e->node ? "node " : "no node", e->node ? e->node : "");
        return;
    }
    if (!v->node[0] && e->node)
        memcpy(v->node, e->node, strlen(e->node) + 1);
}

static void verify_segment(struct vstate *s, sk_audit_verdict *v, size_t si)
{
    char path[4200], perr[160];
    const char *seg = s->segs[si];
    sk_audit_entry e;
    uint64_t ln = 0;
    size_t len;
    int torn, k;
    FILE *f;
    memset(&e, 0, sizeof(e));
    if (sk_snprintf(path, sizeof(path), "%s/%s", s->dir, seg) != 0 || !(f = fopen(path, "re"))) {
        fail(v, SK_AUDIT_IO_ERROR, seg, 0, 0, "cannot open: %s", strerror(errno));
        return;
    }
    while (v->problem == SK_AUDIT_OK &&
           (k = audit_read_line(f, s->buf, SK_AUDIT_MAX_LINE + 2, &len, &torn)) != 0) {
        uint64_t here = s->have_prev ? s->expected : 0;
        ln++;
        if (k < 0) {
            fail(v, SK_AUDIT_EDITED, seg, ln, here, "line too long or unreadable");
        } else if (torn) {
            if (si + 1 == s->nsegs)
                fail(v, SK_AUDIT_TRUNCATED_TAIL, seg, ln, here,
                     "last line is incomplete (never acknowledged, or cut)");
            else
                fail(v, SK_AUDIT_EDITED, seg, ln, here,
                     "incomplete line at the end of a closed segment");
        } else if (sk_audit_parse_line(s->buf, len, &e, perr, sizeof(perr)) != 0) {
            fail(v, SK_AUDIT_EDITED, seg, ln, here, "malformed entry: %s", perr);
        } else {
            if (!s->have_prev)
                first_entry(s, v, seg, ln, &e);
            if (e.has_sig && v->problem == SK_AUDIT_OK)
                check_sig(s, v, seg, ln, &e);
            if (!e.hash_ok)
                fail(v, SK_AUDIT_EDITED, seg, ln, e.seq, "entry content does not match its hash");
            if (v->problem == SK_AUDIT_OK)
                check_links(s, v, f, si, ln, &e);
            if (v->problem == SK_AUDIT_OK)
                check_node(v, seg, ln, &e);
            if (v->problem == SK_AUDIT_OK)
                on_entry(s, v, seg, ln, &e);
            if (v->problem != SK_AUDIT_OK)
                break;
            memcpy(s->prev_h, e.hash, sizeof(s->prev_h));
            s->have_prev = 1;
            s->expected = e.seq + 1;
            v->last_seq = e.seq;
            v->entries++;
            if (sk_strlcpy(s->end_seg, sizeof(s->end_seg), seg) != 0)
                s->end_seg[0] = '\0';
            s->end_line = ln;
        }
    }
    sk_audit_entry_free(&e);
    fclose(f);
}

/* What only the end of the log can tell: pruning, the unsealed tail, a cut
 * after the last checkpoint, recorded truncations, witnesses. */
static void verify_end(struct vstate *s, sk_audit_verdict *v, int64_t now)
{
    int64_t epoch_ms = (v->epoch_secs > 0 ? v->epoch_secs : DEFAULT_EPOCH_S) * 1000LL;
    /* Most specific first: a witness names exactly what was cut. */
    for (size_t i = 0; i < s->nw; i++) {
        char *st = i < 8 ? v->witness_status[i] : NULL;
        const audit_note *n = &s->w[i].n;
        if (s->w[i].seen) {
            v->witnesses_ok++;
            if (st && sk_snprintf(st, 160, "%s: checkpoint %llu present", s->w[i].file,
                                  (unsigned long long)n->seq) != 0)
                st[0] = '\0';
            continue;
        }
        if (st && sk_snprintf(st, 160, "%s: checkpoint %llu MISSING", s->w[i].file,
                              (unsigned long long)n->seq) != 0)
            st[0] = '\0';
        if (n->seq > v->last_seq)
            fail(v, SK_AUDIT_TRUNCATED, s->end_seg, s->end_line, v->last_seq,
                 "the log ends at %llu but %s witnessed checkpoint %llu (entries %llu..%llu cut)",
                 (unsigned long long)v->last_seq, s->w[i].file, (unsigned long long)n->seq,
                 (unsigned long long)v->last_seq + 1, (unsigned long long)n->seq);
        else
            fail(v, SK_AUDIT_DELETED, s->segs[0], 1, v->first_seq,
                 "checkpoint %llu witnessed in %s is no longer in the log",
                 (unsigned long long)n->seq, s->w[i].file);
    }
    if (v->first_seq > 1) {
        if (!s->last_kept[0])
            fail(v, SK_AUDIT_DELETED, s->segs[0], 1, v->first_seq,
                 "entries 1..%llu are missing and no signed audit.prune record explains it",
                 (unsigned long long)(v->first_seq - 1));
        else if (sk_audit_segment_cmp(s->segs[0], s->last_kept) > 0)
            fail(v, SK_AUDIT_DELETED, s->segs[0], 1, v->first_seq,
                 "segments before %s are missing (the last prune kept %s)", s->segs[0],
                 s->last_kept);
    }
    v->unsealed = v->last_seq - s->last_cp;
    v->closed = v->unsealed == 0 && strcmp(s->last_reason, "close") == 0;
    if (s->us_seq && now - s->us_ms > epoch_ms + GRACE_MS)
        fail(v, SK_AUDIT_UNSIGNED, s->us_seg, s->us_line, s->us_seq,
             "entries %llu..%llu are covered by no checkpoint and are older than one epoch "
             "(appended without the key, or the writer died)",
             (unsigned long long)s->us_seq, (unsigned long long)v->last_seq);
    if (v->unsealed == 0 && strcmp(s->last_reason, "rotate") == 0)
        fail(v, SK_AUDIT_TRUNCATED, s->end_seg, s->end_line, v->last_seq,
             "the log ends with the rotation to %s, which is missing", s->last_next_seg);
    if (v->unsealed == 0 && !v->closed && now - v->newest_cp_ms > epoch_ms + GRACE_MS)
        fail(v, SK_AUDIT_TRUNCATED, s->end_seg, s->end_line, v->last_seq,
             "the log ends at a checkpoint that is not a closing one and no heartbeat followed "
             "within one epoch: entries after it may have been cut");
    if (s->tr_seq)
        fail(v, SK_AUDIT_TRUNCATED, s->tr_seg, s->tr_line, s->tr_seq,
             "the writer found the log shorter than it had left it: %s", s->tr_detail);
}

int sk_audit_verify_ex(const char *dir, const uint8_t pub[32], const sk_audit_verify_opts *o,
                       sk_audit_verdict *v)
{
    struct vstate s;
    int64_t now = o && o->now_ms ? o->now_ms : 0;
    int rc = -1;
    memset(v, 0, sizeof(*v));
    memset(&s, 0, sizeof(s));
    if (!dir || !pub || audit_keyid(pub, s.keyid0) != 0)
        return -1;
    if (!now) {
        struct timespec ts;
        if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
            return -1;
        now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    s.dir = dir;
    memcpy(s.pub0, pub, 32);
    set_key(&s, 0, pub);
    s.buf = malloc(SK_AUDIT_MAX_LINE + 2);
    s.scratch = malloc(SK_AUDIT_MAX_LINE + 2);
    if (!s.buf || !s.scratch || load_epochs(&s) != 0 || load_witnesses(&s, o, v) != 0)
        goto out;
    if (v->problem == SK_AUDIT_OK && audit_list_segments(dir, &s.segs, &s.nsegs) != 0)
        fail(v, SK_AUDIT_IO_ERROR, dir, 0, 0, "cannot list the audit directory: %s",
             strerror(errno));
    for (size_t si = 0; si < s.nsegs && v->problem == SK_AUDIT_OK; si++)
        verify_segment(&s, v, si);
    if (v->problem == SK_AUDIT_OK && s.have_prev)
        verify_end(&s, v, now);
    else if (v->problem == SK_AUDIT_OK && s.nw)
        fail(v, SK_AUDIT_TRUNCATED, "", 0, 0, "the log is empty but checkpoints were witnessed");
    v->last_epoch = s.cur_epoch;
    rc = 0;
out:
    audit_free_list(s.segs, s.nsegs);
    free(s.epub);
    free(s.w);
    free(s.buf);
    free(s.scratch);
    return rc;
}

int sk_audit_verify(const char *dir, const uint8_t pub[32], sk_audit_verdict *v)
{
    return sk_audit_verify_ex(dir, pub, NULL, v);
}

int sk_audit_head_text(const char *dir, char **out, char *err, size_t errcap)
{
    sk_audit_reader *r = NULL;
    sk_audit_entry e;
    const char *line;
    audit_note n, best;
    int k, have = 0, rc = -1;
    memset(&e, 0, sizeof(e));
    *out = NULL;
    if (sk_audit_reader_open(dir, &r, err, errcap) != 0)
        return -1;
    while ((k = sk_audit_reader_next(r, &e, &line, err, errcap)) == 1)
        if (e.has_sig && audit_note_of(line, &e, &n) == 0) {
            best = n;
            have = 1;
        }
    if (k == 0 && !have)
        audit_err(err, errcap, "the log has no checkpoint yet");
    if (k == 0 && have && audit_note_format(&best, out) == 0)
        rc = 0;
    sk_audit_entry_free(&e);
    sk_audit_reader_close(r);
    return rc;
}
