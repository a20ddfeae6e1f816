/* Private helpers shared by the policy sources. Not part of the API. */
#ifndef SK_POLICY_INT_H
#define SK_POLICY_INT_H

#include <stdint.h>

/* a + b for b >= 0, clamped at INT64_MAX: an expiry computed from a hostile
 * timestamp saturates instead of wrapping into the past. */
static inline int64_t skp_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

static inline int64_t skp_sub(int64_t a, int64_t b)
{
    if (b == INT64_MIN)
        return a >= 0 ? INT64_MAX : a - INT64_MIN;
    return skp_add(a, -b);
}

static inline unsigned char skp_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

#endif
