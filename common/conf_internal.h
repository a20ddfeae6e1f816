/* conf_internal.h — helpers shared by conf.c and conf_check.c; not an API. */
#ifndef SK_CONF_INTERNAL_H
#define SK_CONF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* 1 if tz names a zone of the tz database ($TZDIR or /usr/share/zoneinfo, a TZif file). */
int sk_conf_valid_timezone(const char *tz);
/* 1 for "IPV4:PORT", "[IPV6]:PORT", "HOSTNAME:PORT" or ":PORT" with PORT 1-65535. */
int sk_conf_valid_listen_address(const char *a);
/* Seconds as the ranges are said: 60 -> "60s", 1800 -> "30m", 43200 -> "12h", 86400 -> "1d". */
void sk_conf_fmt_duration(uint64_t s, char *out, size_t cap);

/* 1 if url is a libpq connection string (postgresql://... or postgres://... URI, or
 * keyword=value pairs) that holds no password (URI user:password@, a password
 * parameter or keyword); else 0 with why filled. */
int sk_conf_valid_store_url(const char *url, char *why, size_t whycap);

#endif
