/* authd_health.c — what authd does while the store cannot be reached.
 *
 * With a database on another host (PostgreSQL) the store can go away while the
 * gateway runs. authd then fails closed: nothing is decided without the store
 * (logins answer 503 with Retry-After; the network side may keep serving sessions
 * it checked shortly before, see [store] outage_grace), the operators get one alarm
 * per ALARM_EVERY while it lasts (only when a probe confirms the store is away,
 * so a failure of another kind raises no false alarm), and authd probes the
 * store every PROBE_EVERY_MS until it answers again, then says so (log, audit,
 * mail). No restart is needed:
 * the backend reconnects by itself on the next operation. */
#include <string.h>
#include <time.h>

#include "authd_int.h"
#include "sk_notify.h"

#define ALARM_EVERY 600
#define PROBE_EVERY_MS 2000

static void tell_operators(sk_authd *a, const char *event, const char *during, const char *subject,
                           const char *body)
{
    sk_audit_kv kv[] = { { "during", during }, { "backend", sk_store_backend_name(a->store) } };
    sk_audit_event e = { .event = event, .actor = "sekisho", .kv = kv, .n_kv = SK_ARRAY_LEN(kv) };
    if (a->audit != NULL && sk_audit_append(a->audit, &e, 1, NULL) != 0)
        sk_log(SK_LOG_ERR, "AUDIT WRITE FAILED for %s", event);
    if (a->conf == NULL || sk_conf_operators_for(a->conf, SK_NOTIFY_MAJOR)[0] == '\0')
        return;
    {
        struct sk_notify_msg m = { .from = a->conf->notify_from[0] ? a->conf->notify_from : NULL,
                                   .to = sk_conf_operators_for(a->conf, SK_NOTIFY_MAJOR),
                                   .subject = subject,
                                   .body = body };
        if (sk_notify_send_level(a->conf->notify_command, &m, SK_NOTIFY_MAJOR) != 0)
            sk_log(SK_LOG_ERR, "the mail \"%s\" could not be sent", subject);
    }
}

/* Does the store answer a small read? */
static int store_answers(sk_authd *a)
{
    uint8_t v[SK_STORE_VALUE_MAX];
    size_t len = 0;
    int rc = sk_store_value_get(a->store, "chore.sweep", v, sizeof v, &len);
    sk_wipe(v, sizeof v);
    return rc == SK_STORE_OK || rc == SK_STORE_NOTFOUND;
}

int32_t authd_store_trouble(sk_authd *a, const char *during)
{
    int64_t now = authd_now(), last;
    char body[512];

    if (!__atomic_load_n(&a->store_down, __ATOMIC_ACQUIRE) && store_answers(a)) {
        sk_log(SK_LOG_ERR, "authd: a %s failed although the store answers (see above)", during);
        return SK_WIRE_ERR_INTERNAL;
    }
    if (!__atomic_exchange_n(&a->store_down, 1, __ATOMIC_ACQ_REL))
        sk_log(SK_LOG_ERR, "the store (%s) does not answer (during %s): logins are refused with 503 until it does",
               sk_store_backend_name(a->store), during);
    last = __atomic_load_n(&a->store_alarm_at, __ATOMIC_ACQUIRE);
    if (last != 0 && now - last < ALARM_EVERY && now >= last)
        return SK_WIRE_ERR_UNAVAILABLE;
    if (!__atomic_compare_exchange_n(&a->store_alarm_at, &last, now, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return SK_WIRE_ERR_UNAVAILABLE; /* another thread raises this one */
    if (sk_snprintf(body, sizeof body,
                    "Sekisho cannot reach its store (%s backend) since it tried a %s.\n"
                    "Logins are refused (503) until it answers again; sessions checked in the last\n"
                    "[store] outage_grace seconds are still served. Nothing needs restarting:\n"
                    "the gateway reconnects by itself and will mail when it has.\n",
                    sk_store_backend_name(a->store), during) != 0)
        body[0] = '\0';
    tell_operators(a, "alarm.store_unavailable", during, "Sekisho ALARM: store unreachable", body);
    return SK_WIRE_ERR_UNAVAILABLE;
}

void authd_store_probe(sk_authd *a)
{
    static int64_t last_probe_ms;
    struct timespec ts;
    int64_t now_ms;

    if (!__atomic_load_n(&a->store_down, __ATOMIC_ACQUIRE))
        return;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (now_ms - last_probe_ms < PROBE_EVERY_MS)
        return;
    last_probe_ms = now_ms;
    if (!store_answers(a))
        return;
    __atomic_store_n(&a->store_down, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&a->store_alarm_at, 0, __ATOMIC_RELEASE);
    sk_log(SK_LOG_INFO, "the store (%s) answers again: logins are accepted", sk_store_backend_name(a->store));
    tell_operators(a, "store.recovered", "probe", "Sekisho: store reachable again",
                   "Sekisho reaches its store again; logins are accepted.\n");
}
