#!/bin/bash
# Issue 10: the store's contract tests (test_store) and the PostgreSQL-only
# tests (test_store_pg: two handles as two nodes, change notification, an outage
# and recovery, schema versions, connection-string refusals) against a real
# PostgreSQL that this script starts itself (tests/integration/pg.sh).
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/pg.sh"
sk_setup
tests=$SK_BIN/../tests
for t in test_store test_store_pg; do
    [[ -x $tests/$t ]] || sk_fail "$tests/$t not built"
done
sk_pg_start
export SK_TEST_PG_URL=$SK_PG_URL SK_TEST_PG_PASSWORD_FILE=$SK_PG_PWFILE SK_TEST_PG_CTL=$SK_PG_CTL

run() { # NAME
    local rc=0
    "$tests/$1" >"$SK_TMP/$1.out" 2>&1 || rc=$?
    cat "$SK_TMP/$1.out" >&2
    ((rc == 0)) || sk_fail "$1 against PostgreSQL: exit $rc"
    # cmocka's summary: every test of the group ran and passed
    grep -qE '^\[  PASSED  \] [0-9]+ test' "$SK_TMP/$1.out" || sk_fail "$1: no PASSED summary"
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SK_TMP/$1.out"; then
        sk_fail "$1: sanitizer report"
    fi
}
run test_store
grep -q 'the store contract on postgresql' "$SK_TMP/test_store.out" || sk_fail "test_store did not run in PostgreSQL mode"
run test_store_pg
sk_pass
