/*
 * sk_wire_auth.h — the messages between the network workers and authd.
 *
 * authd alone reads password hashes and TOTP secrets, decides logins, password
 * changes, TOTP enrolment and activations, and alone mints sessions. What a network
 * worker may learn (LOOKUP) is the public part of a user record: the password hash,
 * the sealed TOTP secrets and the activation hash are never encoded (the codec has
 * no field for them), so no reply can carry them whatever authd's state.
 *
 * Every request struct below has a reply struct; `status` (first in every reply) is
 * the call's result as the in-process API documents it (sk_auth.h, sk_store.h), or
 * one of SK_WIRE_ERR_* from the server.
 *
 * sk_wire_auth_encode / _decode convert between the structs and payloads for every
 * type (table-driven: one codec function per struct serves both directions, so the
 * two cannot drift). Decoding zeroes *out first and again on failure.
 */
#ifndef SK_WIRE_AUTH_H
#define SK_WIRE_AUTH_H

#include "sk_auth.h"
#include "sk_store.h"
#include "sk_wire.h"

typedef struct sk_wire_who {
    char tenant[SK_TENANT_MAX + 1];
    char id[SK_USER_ID_MAX + 1];
} sk_wire_who;

/* LOOKUP: the user's public record, and the session whose hash is given. */
typedef struct sk_wire_lookup_req {
    sk_wire_who who;
    uint8_t has_session;
    uint8_t hash[SK_SESSION_HASH_LEN];
} sk_wire_lookup_req;
typedef struct sk_wire_lookup_rep {
    int32_t status;           /* 0 (even when nothing was found) or an error */
    uint8_t user_found;
    sk_user user;             /* pw_hash, totp_*, activation_hash always zero */
    uint8_t session_found;
    sk_session session;
} sk_wire_lookup_rep;

/* LOGIN: on SK_AUTH_OK authd has stored the session SHA-256(token) for the
 * certificate (cert_serial) and returns the token for the cookie. */
typedef struct sk_wire_login_req {
    sk_auth_request req;
    char cert_serial[SK_CERT_SERIAL_MAX + 1];
} sk_wire_login_req;
typedef struct sk_wire_login_rep {
    int32_t status;           /* 0, SK_AUTH_BUSY, or an error */
    sk_auth_verdict verdict;
    uint8_t token[32];        /* valid when verdict.outcome == SK_AUTH_OK */
} sk_wire_login_rep;

typedef struct sk_wire_pwchange_req {
    sk_auth_pwchange_request req;
} sk_wire_pwchange_req;
typedef struct sk_wire_pwchange_rep {
    int32_t status;
    sk_auth_pwchange_verdict verdict;
} sk_wire_pwchange_rep;

typedef struct sk_wire_session_req {  /* SESSION_END, SESSION_TOUCH */
    uint8_t hash[SK_SESSION_HASH_LEN];
    int64_t now, every;               /* TOUCH only */
} sk_wire_session_req;

typedef struct sk_wire_totp_req {     /* TOTP_BEGIN, TOTP_PENDING, TOTP_CONFIRM */
    sk_wire_who who;
    uint8_t session[SK_SESSION_HASH_LEN];  /* a live session of `who` (authd checks it) */
    char code[SK_AUTH_TOTP_MAX + 1];  /* CONFIRM only */
    int64_t now;
} sk_wire_totp_req;
typedef struct sk_wire_totp_rep {
    int32_t status;
    char b32[SK_AUTH_TOTP_B32_MAX];   /* BEGIN / PENDING */
    char uri[SK_AUTH_TOTP_URI_MAX];
} sk_wire_totp_rep;

typedef struct sk_wire_activate_req { /* ACTIVATION_VALID, ACTIVATE */
    sk_wire_who who;
    uint8_t token[SK_AUTH_ACTIVATION_TOKEN_LEN];
    uint8_t password[SK_AUTH_PASSWORD_MAX];  /* ACTIVATE only */
    size_t password_len;
    int64_t now;
} sk_wire_activate_req;
typedef struct sk_wire_activate_rep {
    int32_t status;
    int32_t why;                      /* sk_policy_pw_result, ACTIVATE refused */
} sk_wire_activate_rep;

typedef struct sk_wire_status_rep {   /* SESSION_END, SESSION_TOUCH, TOTP_CONFIRM */
    int32_t status;
} sk_wire_status_rep;

typedef struct sk_wire_census_rep {
    int32_t status;
    uint64_t sessions, locked;
} sk_wire_census_rep;

/* KEYS: what the network side needs to be interchangeable with every other network
 * process and gateway node sharing the store: the key of its stateless CSRF tokens
 * and the TLS session-ticket keys, newest first (tickets are issued with ticket[0]
 * and accepted under any of them), so that a client resumes its TLS session and
 * posts its form on any node. authd keeps them in the store, sealed, and rotates the
 * ticket keys every rotate_every seconds; a network process asks again well within
 * that. (They are the network side's own secrets: it needs them to do its job.) */
#define SK_WIRE_TICKET_KEYS_MAX 3
#define SK_WIRE_TICKET_NAME_LEN 16
typedef struct sk_wire_ticket_key {
    uint8_t name[SK_WIRE_TICKET_NAME_LEN];
    uint8_t aes[32];
    uint8_t hmac[32];
} sk_wire_ticket_key;
typedef struct sk_wire_keys_rep {
    int32_t status;
    uint8_t csrf[SK_CSRF_LEN];
    uint32_t n_tickets;               /* 1..SK_WIRE_TICKET_KEYS_MAX */
    sk_wire_ticket_key ticket[SK_WIRE_TICKET_KEYS_MAX];
    int64_t rotate_every;             /* seconds */
} sk_wire_keys_rep;

/* Size of the request (reply != 0: reply) struct of an authd type, 0 if unknown. */
size_t sk_wire_auth_size(uint16_t type, int reply);
int sk_wire_auth_encode(uint16_t type, int reply, const void *msg, sk_wire_w *w) SK_MUST_CHECK;
int sk_wire_auth_decode(uint16_t type, int reply, const void *payload, size_t len, void *out) SK_MUST_CHECK;

#endif
