#!/bin/bash
# Issue 10: TLS to the database is libpq's, configured in [store] url and passed
# through as written. The test server (tests/integration/pg.sh, tls) accepts TCP
# only with TLS and presents a certificate for 127.0.0.1 from its own CA:
# sslmode=verify-full with that CA works (URI and keyword forms), without TLS the
# server refuses, and another CA fails verification — each refusal one line.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ctl/ctl_lib.sh"
source "$SK_SRC/tests/integration/pg.sh"
sk_setup
sk_need_bin sekishoctl
sk_pg_start tls
ctl_config
base=$(cat "$SK_CONF")
with_url() { printf '%s\n\n[store]\nbackend = postgresql\nurl = %s\npassword_file = %s\n' "$base" "$1" "$SK_PG_PWFILE" >"$SK_CONF"; }
good=$(ctl_pwfile good Cedar-Field-58)

with_url "$SK_PG_URL?sslmode=verify-full&sslrootcert=$SK_PG_CA"
ctl 0 store migrate
ctl 0 user add alice --password-file "$good"
ctl 0 user list --json
sk_assert_eq "$(ctl_json '[.[] | .id] | join(",")')" alice "users over TLS"

with_url "host=127.0.0.1 port=$SK_PG_PORT dbname=sekisho user=sekisho sslmode=verify-full sslrootcert=$SK_PG_CA"
ctl 0 user show alice --json
sk_assert_eq "$(ctl_json .id)" alice "keyword form over TLS"

# without TLS: the server refuses (hostssl only)
with_url "$SK_PG_URL?sslmode=disable"
ctl 1 user list
ctl_refused "sslmode=disable"
sk_assert_contains "$(ctl_err_text)" "no encryption" "plain TCP refused by the server"

# a CA that did not sign the server's certificate
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$SK_TMP/other.key" \
    -out "$SK_TMP/other.crt" -subj /CN=other -days 1 >/dev/null 2>&1 || sk_fail "other CA"
with_url "$SK_PG_URL?sslmode=verify-full&sslrootcert=$SK_TMP/other.crt"
ctl 1 user list
ctl_refused "wrong CA"
sk_assert_contains "$(ctl_err_text)" "certificate verify failed" "wrong CA refused"
sk_pass
