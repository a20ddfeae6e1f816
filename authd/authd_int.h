/* authd_int.h — what authd's own files share (internal to authd/). */
#ifndef AUTHD_INT_H
#define AUTHD_INT_H

#include "sk_authd.h"

/* authd's clock: every decision is taken at authd's time, never a caller's. */
int64_t authd_now(void);

/* SK_WIRE_AUTH_KEYS (authd_keys.c): the shared CSRF and ticket keys, created or
 * rotated in the store as needed. 0 or SK_WIRE_ERR_INTERNAL. */
int32_t authd_do_keys(sk_authd *a, void *in, void *out);

#endif
