/* The login state machine and role names. */
#include <string.h>

#include "sk_policy.h"

enum guard { G_ANY = 1, G_ENROLLED, G_NOT_ENROLLED };

struct transition {
    unsigned char valid;        /* 0 = not allowed */
    unsigned char guard;
    unsigned char next;
};

#define T(g, n) { 1, (g), SK_POLICY_LOGIN_##n }

/* [state][event]; every cell not listed is an invalid transition. */
static const struct transition table[SK_POLICY_LOGIN_STATE_COUNT_][SK_POLICY_LOGIN_EVENT_COUNT_] = {
    [SK_POLICY_LOGIN_CERT_VERIFIED] = {
        [SK_POLICY_EV_PASSWORD_VALID] = T(G_ANY, PASSWORD_OK),
        [SK_POLICY_EV_PASSWORD_INVALID] = T(G_ANY, CERT_VERIFIED),
        [SK_POLICY_EV_ABORT] = T(G_ANY, CLOSED),
    },
    [SK_POLICY_LOGIN_PASSWORD_OK] = {
        [SK_POLICY_EV_TOTP_REQUIRED] = T(G_ENROLLED, TOTP_PENDING),
        [SK_POLICY_EV_SESSION_OPEN] = T(G_NOT_ENROLLED, SESSION),
        [SK_POLICY_EV_ABORT] = T(G_ANY, CLOSED),
    },
    [SK_POLICY_LOGIN_TOTP_PENDING] = {
        [SK_POLICY_EV_TOTP_VALID] = T(G_ENROLLED, SESSION),
        [SK_POLICY_EV_TOTP_INVALID] = T(G_ANY, CERT_VERIFIED),
        [SK_POLICY_EV_ABORT] = T(G_ANY, CLOSED),
    },
    [SK_POLICY_LOGIN_SESSION] = {
        [SK_POLICY_EV_LOGOUT] = T(G_ANY, CLOSED),
        [SK_POLICY_EV_EXPIRED] = T(G_ANY, CLOSED),
        [SK_POLICY_EV_ABORT] = T(G_ANY, CLOSED),
    },
    /* CLOSED is terminal. */
};

int sk_policy_login_step(sk_policy_login_state state, sk_policy_login_event event, int totp_enrolled,
                         sk_policy_login_state *next)
{
    const struct transition *t;

    if ((unsigned)state >= SK_POLICY_LOGIN_STATE_COUNT_ || (unsigned)event >= SK_POLICY_LOGIN_EVENT_COUNT_)
        return -1;
    t = &table[state][event];
    if (!t->valid)
        return -1;
    if ((t->guard == G_ENROLLED && !totp_enrolled) || (t->guard == G_NOT_ENROLLED && totp_enrolled))
        return -1;
    *next = (sk_policy_login_state)t->next;
    return 0;
}

static const char *const state_names[SK_POLICY_LOGIN_STATE_COUNT_] = {
    [SK_POLICY_LOGIN_CERT_VERIFIED] = "cert_verified",
    [SK_POLICY_LOGIN_PASSWORD_OK] = "password_ok",
    [SK_POLICY_LOGIN_TOTP_PENDING] = "totp_pending",
    [SK_POLICY_LOGIN_SESSION] = "session",
    [SK_POLICY_LOGIN_CLOSED] = "closed",
};

static const char *const event_names[SK_POLICY_LOGIN_EVENT_COUNT_] = {
    [SK_POLICY_EV_PASSWORD_VALID] = "password_valid",
    [SK_POLICY_EV_PASSWORD_INVALID] = "password_invalid",
    [SK_POLICY_EV_TOTP_REQUIRED] = "totp_required",
    [SK_POLICY_EV_SESSION_OPEN] = "session_open",
    [SK_POLICY_EV_TOTP_VALID] = "totp_valid",
    [SK_POLICY_EV_TOTP_INVALID] = "totp_invalid",
    [SK_POLICY_EV_LOGOUT] = "logout",
    [SK_POLICY_EV_EXPIRED] = "expired",
    [SK_POLICY_EV_ABORT] = "abort",
};

const char *sk_policy_login_state_name(sk_policy_login_state s)
{
    return (unsigned)s < SK_POLICY_LOGIN_STATE_COUNT_ ? state_names[s] : "unknown";
}

const char *sk_policy_login_event_name(sk_policy_login_event e)
{
    return (unsigned)e < SK_POLICY_LOGIN_EVENT_COUNT_ ? event_names[e] : "unknown";
}

/* ---- roles --------------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned bit;
} roles[] = {
    { "admin", SK_POLICY_ROLE_ADMIN },
    { "general", SK_POLICY_ROLE_GENERAL },
};

int sk_policy_role_parse(const char *name, size_t len, unsigned *mask)
{
    size_t i;

    if (name == NULL)
        return -1;
    for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (strlen(roles[i].name) == len && memcmp(roles[i].name, name, len) == 0) {
            *mask = roles[i].bit;
            return 0;
        }
    }
    return -1;
}

const char *sk_policy_role_name(unsigned bit)
{
    size_t i;

    for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (roles[i].bit == bit)
            return roles[i].name;
    return NULL;
}
