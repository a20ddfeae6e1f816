#!/usr/bin/env bash
# Backups (issue 11, item 3), a restore drill through the real gateway, sekishoctl,
# oathtool and curl: back up a live gateway (LMDB hot copy, audit log, TOTP key,
# manifest), verify; change and delete users; restore is refused while the gateway
# runs; after stopping it, restore; the old password and TOTP secret log in again,
# the deleted user is back. The audit log never goes backwards: the live log, which
# extends the backup's, is kept, records the restore and still verifies. Only a live
# log that does not verify is replaced by the backup's, and then the writer's
# truncation detection reports the gap. A damaged backup is refused; --into/--keep
# keeps N generations.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lifecycle/common.sh"
source "$(dirname "$0")/../policy/common.sh"
source "$(dirname "$0")/../ctl/ctl_lib.sh"
sk_setup
command -v oathtool >/dev/null || sk_fail "oathtool not installed"

sk_make_ca alice:acme bob:acme
sk_start_upstream
sk_write_config </dev/null
pa=$(sk_password) pb=$(sk_password)
pc_add_user alice acme admin "$pa"
pc_add_user bob acme general "$pb"
sk_start_gateway
pc_ctl user totp enable alice --tenant acme
secret=$(grep -m1 '^otpauth://' "$SK_TMP/ctl.out" | sed -E 's/.*[?&]secret=([A-Z2-7]+).*/\1/')
[[ -n $secret ]] || sk_fail "no TOTP secret"
pc_login bob "$pb" >/dev/null    # something in the audit log and the store

# Hot backup while the gateway runs.
bk=$SK_TMP/backups/one
mkdir -p "$SK_TMP/backups"
ctl 0 backup --to "$bk"
sk_assert_contains "$(ctl_out)" "backup written to $bk" "backup output"
for f in MANIFEST db/data.mdb totp.key audit.key.pub; do [[ -f $bk/$f ]] || sk_fail "backup lacks $f"; done
ls "$bk"/audit/*.jsonl >/dev/null 2>&1 || sk_fail "backup lacks the audit log"
[[ ! -e $bk.partial ]] || sk_fail "partial directory left behind"
sk_assert_eq "$(stat -c %a "$bk")" 700 "backup directory is private"
sk_assert_eq "$(grep -c '^sha256 [0-9a-f]\{64\} [0-9]\+ ' "$bk/MANIFEST")" "$(cd "$bk" && find . -type f ! -name MANIFEST | wc -l)" \
    "every file has a manifest line"
(cd "$bk" && grep '^sha256 ' MANIFEST | awk '{ print $2 "  " $4 }' | sha256sum -c --quiet) ||
    sk_fail "manifest digests do not match sha256sum"
ctl 0 backup verify "$bk"
sk_assert_contains "$(ctl_out)" "is intact" "verify"
sk_assert_contains "$(ctl_out)" "2 user(s)" "verify counts the users"
ctl 1 backup --to "$bk"
sk_assert_contains "$(ctl_err_text)" "already exists" "no overwrite"

# Change and delete.
np=$(sk_password)
pc_ctl user passwd alice --tenant acme --no-force-change --password-file "$(pc_pwfile new "$np")"
pc_ctl user totp disable alice --tenant acme
pc_ctl user delete bob --tenant acme
ctl 0 audit show --event admin.change
sk_assert_contains "$(ctl_out)" '"command":"user.delete"' "the deletion is audited"
sk_assert_eq "$(pc_login_attempt bob bob "$pb")" 401 "bob deleted"

# Refused while the gateway has the store open.
ctl 1 restore --from "$bk"
sk_assert_contains "$(ctl_err_text)" "has the store" "restore refused over a live gateway"
sk_assert_contains "$(ctl_err_text)" "nothing was changed" "refusal says nothing changed"
ctl 1 user show bob@acme      # still deleted: the refusal changed nothing

# A damaged backup is refused (and so is restoring it).
cp -a "$bk" "$SK_TMP/backups/bad"
printf 'x' >>"$SK_TMP/backups/bad/totp.key"
ctl 1 backup verify "$SK_TMP/backups/bad"
sk_assert_contains "$(ctl_err_text)" "totp.key does not match the manifest" "damage found"
cp -a "$bk" "$SK_TMP/backups/extra"
touch "$SK_TMP/backups/extra/audit/planted.jsonl"
ctl 1 backup verify "$SK_TMP/backups/extra"
sk_assert_contains "$(ctl_err_text)" "audit/planted.jsonl is not in the manifest" "unlisted file found"

cp -a "$bk" "$SK_TMP/backups/evil"
printf 'sha256 %s 5 ../../etc/passwd\n' "$(printf '0%.0s' {1..64})" >>"$SK_TMP/backups/evil/MANIFEST"
ctl 1 backup verify "$SK_TMP/backups/evil"
sk_assert_contains "$(ctl_err_text)" "is malformed" "a path leaving the backup is refused"

sk_stop_gateway
ctl 1 restore --from "$SK_TMP/backups/bad"
sk_assert_contains "$(ctl_err_text)" "nothing was changed" "damaged backup not restored"
ctl 0 audit verify --pubkey "$SK_TMP/audit.key.pub"     # the live log is intact before the restore
live_seg=$(ls "$SK_TMP"/state/audit/audit-*.jsonl | tail -1)
live_lines=$(wc -l <"$live_seg")
# As if the host crashed mid-write (the reason one restores): a torn last line is
# repaired by the writer (audit.recover), not a reason to go back to the backup's log.
printf '{"seq":%s,"ts":"20' "$((live_lines + 1))" >>"$live_seg"
ctl 1 audit verify --pubkey "$SK_TMP/audit.key.pub"
sk_assert_contains "$(ctl_out)$(ctl_err_text)" "truncated tail" "the torn line is seen"
ctl 0 restore --from "$bk"
sk_assert_contains "$(ctl_out)" "restored" "restore output"
sk_assert_contains "$(ctl_out)" "before-restore-" "the previous state is kept"
sk_assert_contains "$(ctl_out)" "audit log: kept the live log" "the live audit log is kept"
ls -d "$SK_TMP"/state/db.before-restore-* >/dev/null || sk_fail "old store not kept"
! ls -d "$SK_TMP"/state/audit.before-restore-* >/dev/null 2>&1 || sk_fail "the live audit log was set aside"
(( $(wc -l <"$live_seg") > live_lines )) || sk_fail "the live audit log did not grow by the restore event"

# The drill: old password + TOTP log in, bob is back, the new password is gone.
sk_start_gateway
pc_totp_settle 5
code=$(pc_login_attempt alice alice "$pa" --data-urlencode "totp=$(pc_totp "$secret")")
sk_assert_eq "$code" 303 "old password and TOTP secret log in after the restore"
sk_assert_eq "$(pc_login_attempt alice alice "$np")" 401 "the password set after the backup is gone"
pc_login bob "$pb" >/dev/null
sk_stop_gateway
ctl 0 audit verify --pubkey "$SK_TMP/audit.key.pub"
sk_assert_contains "$(ctl_out)" "OK" "the live, extended log verifies"
ctl 0 audit show --event admin.change
sk_assert_contains "$(ctl_out)" '"command":"restore"' "the restore is in the live log"
sk_assert_contains "$(ctl_out)" '"audit_log":"kept"' "the restore event says the live log was kept"
sk_assert_contains "$(ctl_out)" '"command":"user.delete"' "what happened after the backup is still in the log"
ctl 0 audit show --event audit.truncated
sk_assert_eq "$(ctl_out)" "" "no truncation after a restore that kept the live log"
ctl 0 audit show --event audit.recover
sk_assert_contains "$(ctl_out)" "audit.recover" "the torn line was repaired by the writer"

# A backup of another log (another state directory, its own audit key): the live log
# verifies but does not contain the backup's end, so restore refuses, changing nothing.
sed -e 's|^dir = state$|dir = other-state|' -e 's|^key = audit.key$|key = other.key|' "$SK_CONF" >"$SK_TMP/other.conf"
grep -q '^dir = other-state$' "$SK_TMP/other.conf" && grep -q '^key = other.key$' "$SK_TMP/other.conf" ||
    sk_fail "cannot derive a second configuration"
SK_CONF=$SK_TMP/other.conf ctl 0 user add carol --tenant acme --role general --password-file "$(pc_pwfile carol "$(sk_password)")"
SK_CONF=$SK_TMP/other.conf ctl 0 backup --to "$SK_TMP/backups/foreign"
ctl 0 backup verify "$SK_TMP/backups/foreign"
ctl 1 restore --from "$SK_TMP/backups/foreign"
sk_assert_contains "$(ctl_err_text)" "does not contain the backup's last audit entry" "a foreign backup is refused"
sk_assert_contains "$(ctl_err_text)" "nothing was changed" "the refusal says nothing changed"
ctl 1 user show carol@acme
ctl 0 user show bob@acme
ctl 0 audit verify --pubkey "$SK_TMP/audit.key.pub"

# Generations: --into PARENT --keep 2 keeps the newest two.
for i in 1 2 3; do ctl 0 backup --into "$SK_TMP/gen" --keep 2; done
sk_assert_contains "$(ctl_out)" "removed 1 old generation(s), keeping 2" "pruned"
sk_assert_eq "$(find "$SK_TMP/gen" -mindepth 1 -maxdepth 1 -type d | wc -l)" 2 "two generations left"
for d in "$SK_TMP"/gen/*; do ctl 0 backup verify "$d"; done

# A damaged live log (an entry edited by hand) is set aside and the backup's log put
# in place; the writer remembers a later head, so the gap is recorded as
# audit.truncated and verify keeps failing on it: honest, not silently shorter.
seg=$(ls "$SK_TMP"/state/audit/audit-*.jsonl | tail -1)
grep -q '"actor":"bob"' "$seg" || sk_fail "no entry of bob to edit"
sed -i '0,/"actor":"bob"/s//"actor":"bod"/' "$seg"
ctl 1 audit verify --pubkey "$SK_TMP/audit.key.pub"
sk_assert_contains "$(ctl_err_text)" "edited" "the edit is found"
ctl 0 restore --from "$bk"
sk_assert_contains "$(ctl_out)" "audit log: put the backup's log in place: the live audit log does not verify (edited" \
    "the damaged live log is replaced and the operator told why"
ls -d "$SK_TMP"/state/audit.before-restore-* >/dev/null || sk_fail "the damaged live log was not kept aside"
grep -q '"actor":"bod"' "$SK_TMP"/state/audit.before-restore-*/audit-*.jsonl || sk_fail "the kept log is not the damaged one"
ctl 1 audit verify --pubkey "$SK_TMP/audit.key.pub"
sk_assert_contains "$(ctl_out)$(ctl_err_text)" "truncated" "the gap to the remembered head is reported"
ctl 0 audit show --event audit.truncated
sk_assert_contains "$(ctl_out)" "expected_seq" "the writer recorded audit.truncated"
ctl 0 audit show --event admin.change
sk_assert_contains "$(ctl_out)" '"audit_log":"from_backup"' "the restore event says the log came from the backup"
sk_start_gateway
pc_totp_settle 5
code=$(pc_login_attempt alice alice "$pa" --data-urlencode "totp=$(pc_totp "$secret")")
sk_assert_eq "$code" 303 "the store is restored on the damaged-log path too"
sk_stop_gateway

# That log now carries a recorded gap; verify keeps reporting it, but the log is
# otherwise intact and extends the backup's, so a further restore keeps it.
ctl 0 restore --from "$bk"
sk_assert_contains "$(ctl_out)" "audit log: kept the live log" "a log with a recorded gap is not replaced again"
ctl 0 restore --from "$bk"     # at once again: every previous state is kept, none overwritten
sk_assert_eq "$(find "$SK_TMP/state" -maxdepth 1 -name 'db.before-restore-*' | wc -l)" 4 "four restores, four kept stores"
ctl 0 audit show --event audit.truncated
sk_assert_eq "$(ctl_out | grep -c expected_seq)" 1 "still the one recorded gap, no new one"
ctl 1 audit verify --pubkey "$SK_TMP/audit.key.pub"
sk_assert_contains "$(ctl_out)$(ctl_err_text)" "truncated" "the gap stays reported"

# A damaged live log is never replaced by another host's log: refused, nothing changed.
seg=$(ls "$SK_TMP"/state/audit/audit-*.jsonl | tail -1)
sed -i '0,/"actor":"alice"/s//"actor":"alicf"/' "$seg"
ctl 1 restore --from "$SK_TMP/backups/foreign"
sk_assert_contains "$(ctl_err_text)" "the backup's audit log does not verify against this host's audit key" \
    "a foreign log does not replace a damaged one"
grep -q '"actor":"alicf"' "$seg" || sk_fail "the refused restore changed the audit log"
ctl 1 user show carol@acme
sk_pass
