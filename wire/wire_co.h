/* wire_co.h — the field codec the message families share (wire_auth.c,
 * wire_audit.c): one function per field kind that either writes (dec == 0) or
 * reads (dec == 1) it, so that a message's codec is one walk over its fields used
 * in both directions and the two can never drift apart. Internal to wire/. */
#ifndef WIRE_CO_H
#define WIRE_CO_H

#include "sk_wire.h"

typedef struct co {
    int dec;
    sk_wire_w *w;
    sk_wire_r *r;
} co;

static inline void co_fail(co *c)
{
    if (c->dec)
        c->r->err = 1;
    else
        c->w->err = 1;
}

static inline void co_u8(co *c, uint8_t *v)
{
    if (c->dec)
        *v = sk_wire_get_u8(c->r);
    else
        sk_wire_put_u8(c->w, *v);
}

/* A presence or flag byte: 0 or 1 only (canonical). */
static inline void co_flag(co *c, uint8_t *v)
{
    co_u8(c, v);
    if (*v > 1)
        co_fail(c);
}

static inline void co_u32(co *c, uint32_t *v)
{
    if (c->dec)
        *v = sk_wire_get_u32(c->r);
    else
        sk_wire_put_u32(c->w, *v);
}

static inline void co_u64(co *c, uint64_t *v)
{
    if (c->dec)
        *v = sk_wire_get_u64(c->r);
    else
        sk_wire_put_u64(c->w, *v);
}

static inline void co_i32(co *c, int32_t *v)
{
    if (c->dec)
        *v = sk_wire_get_i32(c->r);
    else
        sk_wire_put_i32(c->w, *v);
}

static inline void co_i64(co *c, int64_t *v)
{
    if (c->dec)
        *v = sk_wire_get_i64(c->r);
    else
        sk_wire_put_i64(c->w, *v);
}

/* An int-sized enum or flag, carried as i32 and bounded to [0, max]. */
static inline void co_enum(co *c, int *v, int max)
{
    int32_t x = (int32_t)*v;
    co_i32(c, &x);
    if (c->dec) {
        if (x < 0 || x > max)
            c->r->err = 1;
        *v = (int)x;
    }
}

static inline void co_str(co *c, char *s, size_t cap)
{
    if (c->dec)
        sk_wire_get_str(c->r, s, cap);
    else
        sk_wire_put_str(c->w, s, cap);
}

static inline void co_fixed(co *c, uint8_t *p, size_t n)
{
    if (c->dec)
        sk_wire_get_fixed(c->r, p, n);
    else
        sk_wire_put_bytes(c->w, p, n, n);
}

static inline void co_bytes(co *c, uint8_t *p, size_t max, size_t *n)
{
    if (c->dec)
        sk_wire_get_bytes(c->r, p, max, n);
    else
        sk_wire_put_bytes(c->w, p, *n, max);
}

#endif
