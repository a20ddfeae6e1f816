/* audit_merge.c — several nodes' logs read as one stream ordered by time (see
 * sk_audit.h, "several nodes' logs merged by time"). Reading only: nothing here
 * verifies; `audit verify` does that per directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit_int.h"

/* The node of the last complete entry of path that names one (format 3). Only the
 * tail is read: a day's segment can be large. */
static int tail_node(const char *path, char node[SK_AUDIT_NODE_MAX + 1], char *err, size_t errcap)
{
    FILE *f = fopen(path, "re");
    struct stat st;
    sk_audit_entry e;
    char *buf = NULL;
    size_t len;
    int torn, k, rc = -1;
    memset(&e, 0, sizeof(e));
    if (!f || fstat(fileno(f), &st) != 0) {
        audit_err(err, errcap, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    buf = malloc(SK_AUDIT_MAX_LINE + 2);
    if (!buf)
        goto out;
    if (st.st_size > 2 * (SK_AUDIT_MAX_LINE + 2)) {
        /* Skip to a line start within the last two maximal lines. */
        if (fseeko(f, st.st_size - 2 * (SK_AUDIT_MAX_LINE + 2), SEEK_SET) != 0)
            goto out;
        while ((k = getc_unlocked(f)) != EOF && k != '\n')
            ;
    }
    rc = 0;
    while ((k = audit_read_line(f, buf, SK_AUDIT_MAX_LINE + 2, &len, &torn)) == 1) {
        if (!torn && sk_audit_parse_line(buf, len, &e, NULL, 0) == 0 && e.node) {
            memcpy(node, e.node, strlen(e.node) + 1);
            rc = 1;
        }
    }
    if (k < 0 && rc == 0) {
        audit_err(err, errcap, "cannot read %s", path);
        rc = -1;
    }
out:
    sk_audit_entry_free(&e);
    free(buf);
    if (f)
        fclose(f);
    return rc;
}

int sk_audit_dir_node(const char *dir, char node[SK_AUDIT_NODE_MAX + 1], char *err, size_t errcap)
{
    char **segs = NULL, path[4200];
    size_t n = 0;
    int rc = -1;
    node[0] = '\0';
    if (audit_list_segments(dir, &segs, &n) != 0) {
        audit_err(err, errcap, "cannot list %s: %s", dir, strerror(errno));
        return -1;
    }
    if (n == 0) {
        rc = 0;
        goto out;
    }
    if (sk_audit_segment_parse(segs[n - 1], NULL, node) != 0)
        goto out;
    if (node[0]) {
        rc = 1;
        goto out;
    }
    /* An unnamed (format 2) segment: the node of its newest entries, if a format 3
     * writer has continued it since the upgrade. */
    if (sk_snprintf(path, sizeof(path), "%s/%s", dir, segs[n - 1]) != 0) {
        audit_err(err, errcap, "path too long: %s", dir);
        goto out;
    }
    rc = tail_node(path, node, err, errcap);
out:
    audit_free_list(segs, n);
    return rc;
}

struct msrc {
    sk_audit_reader *r;
    sk_audit_entry e;
    const char *line;
    int have;                       /* e holds this source's next entry */
    int done;
    char label[SK_AUDIT_NODE_MAX + 1];
    const char *dir;
};

struct sk_audit_merge {
    struct msrc *s;
    size_t n;
    ssize_t last;                   /* the source handed out last: advance it next */
};

void sk_audit_merge_close(sk_audit_merge *m)
{
    if (!m)
        return;
    for (size_t i = 0; m->s && i < m->n; i++) {
        sk_audit_entry_free(&m->s[i].e);
        sk_audit_reader_close(m->s[i].r);
    }
    free(m->s);
    free(m);
}

int sk_audit_merge_open(const char *const *dirs, size_t n, sk_audit_merge **out, char *err,
                        size_t errcap)
{
    sk_audit_merge *m = calloc(1, sizeof(*m));
    char why[256];
    int rc = -1;
    *out = NULL;
    if (n == 0) {
        audit_err(err, errcap, "no audit directory given");
        goto out;
    }
    if (!m || !(m->s = calloc(n, sizeof(*m->s)))) {
        audit_err(err, errcap, "out of memory");
        goto out;
    }
    m->n = n;
    m->last = -1;
    for (size_t i = 0; i < n; i++) {
        struct msrc *s = &m->s[i];
        int k = sk_audit_dir_node(dirs[i], s->label, why, sizeof(why));
        s->dir = dirs[i];
        if (k < 0) {
            audit_err(err, errcap, "%s", why);
            goto out;
        }
        if (k == 0)
            memcpy(s->label, "-", 2);
        for (size_t j = 0; k == 1 && j < i; j++)
            if (strcmp(m->s[j].label, s->label) == 0) {
                audit_err(err, errcap, "node %s: both %s and %s hold its log (give each node's "
                          "directory once)", s->label, dirs[j], dirs[i]);
                goto out;
            }
        if (sk_audit_reader_open(dirs[i], &s->r, why, sizeof(why)) != 0) {
            audit_err(err, errcap, "%s", why);
            goto out;
        }
    }
    *out = m;
    m = NULL;
    rc = 0;
out:
    sk_audit_merge_close(m);
    return rc;
}

static const char *node_of(const struct msrc *s)
{
    return s->e.node ? s->e.node : s->label;
}

/* Is a's next entry before b's? (ts, node, source, seq) */
static int before(const struct msrc *a, size_t ia, const struct msrc *b, size_t ib)
{
    int c;
    if (a->e.ts_ms != b->e.ts_ms)
        return a->e.ts_ms < b->e.ts_ms;
    c = strcmp(node_of(a), node_of(b));
    if (c != 0)
        return c < 0;
    if (ia != ib)
        return ia < ib;
    return a->e.seq < b->e.seq;
}

int sk_audit_merge_next(sk_audit_merge *m, const sk_audit_entry **e, const char **line,
                        const char **node, size_t *src, char *err, size_t errcap)
{
    char why[512];
    ssize_t best = -1;
    if (m->last >= 0)
        m->s[m->last].have = 0;
    for (size_t i = 0; i < m->n; i++) {
        struct msrc *s = &m->s[i];
        if (!s->have && !s->done) {
            int k = sk_audit_reader_next(s->r, &s->e, &s->line, why, sizeof(why));
            if (k < 0) {
                audit_err(err, errcap, "%s: %s", s->dir, why);
                return -1;
            }
            s->have = k == 1;
            s->done = k == 0;
        }
        if (s->have && (best < 0 || before(s, i, &m->s[best], (size_t)best)))
            best = (ssize_t)i;
    }
    m->last = best;
    if (best < 0)
        return 0;
    *e = &m->s[best].e;
    *line = m->s[best].line;
    *node = node_of(&m->s[best]);
    *src = (size_t)best;
    return 1;
}
