#!/bin/bash
# Every sekishoctl and sekisho-ca state change leaves one admin.change entry
# (issue 5): a sequence of user, session, sweep and CA commands, then `audit
# verify` exits 0 and `audit export` holds exactly one entry per successful
# command with its details (operator, tenant, user, role, CIDR, counts,
# serials, reason, validity); refused and read-only commands add none; no
# password, TOTP secret, otpauth URI, hash or key is anywhere in the log.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ctl/ctl_lib.sh"
source "$SK_SRC/tests/integration/adminaudit/aa_lib.sh"
sk_setup
sk_need_bin sekishoctl sekisho-ca
command -v jq >/dev/null || sk_fail "jq not installed"
ctl_config
mail=$SK_TMP/mail
mkdir -p "$mail"
cat >"$SK_TMP/sendmail" <<SH
#!/bin/sh
n=\$(ls "$mail" | wc -l)
cat >"$mail/msg.\$n"
SH
chmod 700 "$SK_TMP/sendmail"
cat >>"$SK_CONF" <<CONF

[notify]
command = $SK_TMP/sendmail -t
operators = ops@example.com
CONF
unset SUDO_USER SEKISHO_CONF
me=$(id -un)

PWA=Alpine-Lake-42x
PWB=Birch-Grove-77y
PWC=Cedar-Field-58z
pwa=$(ctl_pwfile a "$PWA")
pwb=$(ctl_pwfile b "$PWB")
pwc=$(ctl_pwfile c "$PWC")

# ---- sekishoctl ------------------------------------------------------------------
# The first state change creates the key like the gateway does (fresh install).
T0=$(date +%s)
SUDO_USER=opal ctl 0 user add alice --tenant acme --role admin --email alice@example.com \
    --password-file "$pwa"
sk_assert_contains "$(ctl_out)" "created the audit signing key" "first change creates the key"
[[ -f $SK_TMP/state/audit.key && -f $SK_TMP/state/audit.key.pub ]] || sk_fail "audit key pair not created"
sk_assert_eq "$(stat -c %a "$SK_TMP/state/audit.key")" 600 "audit key mode"
ctl 0 user add bob --password-file "$pwb" --must-change
sk_assert_not_contains "$(ctl_out)" "created the audit signing key" "key created once"
ctl 1 user add alice --tenant acme --password-file "$pwb"          # duplicate: refused
ctl_refused "duplicate add"
ctl 1 user add carol --role root --password-file "$pwb"            # bad role: refused
ctl 0 user passwd alice --tenant acme --password-file "$pwc"
ctl 0 user lock alice --tenant acme
ctl 0 user lock alice --tenant acme                                # unchanged
ctl 0 user unlock alice --tenant acme
ctl 1 user unlock ghost                                            # refused, logged as such
ctl_refused "unlock of an unknown user"
ctl 0 user allow-ip bob 192.0.2.0/24
ctl 0 user allow-ip bob 192.0.2.0/24                               # unchanged
ctl 0 user deny-ip bob 192.0.2.0/24
ctl 1 user deny-ip bob 192.0.2.0/24                                # absent: refused
ctl 0 user totp enable bob
uri=$(ctl_out | grep -m1 '^otpauth://')
secret=$(sed -E 's/.*secret=([A-Z2-7]+).*/\1/' <<<"$uri")
[[ ${#secret} -ge 16 ]] || sk_fail "no TOTP secret in: $uri"
ctl 0 user totp disable bob
ctl 0 session revoke --all
ctl 0 session revoke --user alice --tenant acme
ctl 0 sweep --now $((T0 + 181 * 86400))
sk_assert_contains "$(ctl_out)" "2 notified" "sweep notified both users"
ctl 0 user delete bob

# read-only commands write nothing
aa_export "$SK_TMP/before-ro.jsonl"
ctl 0 user list --json
ctl 0 user show alice --tenant acme
ctl 0 session list
ctl 0 audit show
ctl 0 audit verify
aa_export "$SK_TMP/after-ro.jsonl"
sk_assert_eq "$(wc -l <"$SK_TMP/after-ro.jsonl")" "$(wc -l <"$SK_TMP/before-ro.jsonl")" \
    "read-only commands appended entries"

# ---- sekisho-ca --------------------------------------------------------------------
ca=$SK_TMP/ca
printf '%s' "p12-$(openssl rand -hex 12)" >"$SK_TMP/p12pass"
P12PW=$(cat "$SK_TMP/p12pass")
cax() { # RC ARGS...
    local want=$1 rc=0
    shift
    "$SK_BIN/sekisho-ca" "$@" >"$SK_TMP/out" 2>"$SK_TMP/err" </dev/null || rc=$?
    [[ $rc == "$want" ]] || sk_fail "sekisho-ca $*: exit $rc, expected $want: $(cat "$SK_TMP/err")"
}
cax 0 init --dir "$ca" --name "Audit Test CA" --audit-config "$SK_CONF"
cax 0 issue --dir "$ca" --user alice --tenant acme --out "$SK_TMP/alice.p12" \
    --password-file "$SK_TMP/p12pass" --audit-config "$SK_CONF"
s1=$(openssl pkcs12 -in "$SK_TMP/alice.p12" -passin "file:$SK_TMP/p12pass" -nokeys -clcerts 2>/dev/null |
    openssl x509 -noout -serial | sed 's/^serial=//') || true
[[ -n $s1 ]] || s1=$(openssl pkcs12 -legacy -in "$SK_TMP/alice.p12" -passin "file:$SK_TMP/p12pass" \
    -nokeys -clcerts | openssl x509 -noout -serial | sed 's/^serial=//')
# the environment variable is the fallback
SEKISHO_CONF=$SK_CONF cax 1 issue --dir "$ca" --user alice --tenant acme --out "$SK_TMP/alice2.p12" \
    --password-file "$SK_TMP/p12pass"                                # has one: refused
SEKISHO_CONF=$SK_CONF cax 0 reissue --dir "$ca" --user alice --tenant acme --out "$SK_TMP/alice2.p12" \
    --password-file "$SK_TMP/p12pass" --legacy --days 30
s2=$(sed -nE 's/^issued serial ([0-9A-F]+) .*/\1/p' "$SK_TMP/out")
[[ -n $s2 && $s2 != "$s1" ]] || sk_fail "reissue printed no new serial: $(cat "$SK_TMP/out")"
SEKISHO_CONF=$SK_CONF cax 0 revoke --dir "$ca" --serial "$s2" --reason keyCompromise
cax 0 crl --dir "$ca" --days 5 --audit-config "$SK_CONF"
cax 0 server-cert --dir "$ca" --host gw.example.com --out "$SK_TMP/srv" --audit-config "$SK_CONF"
s3=$(openssl x509 -in "$SK_TMP/srv.crt" -noout -serial | sed 's/^serial=//')
cax 0 list --dir "$ca" --json --audit-config "$SK_CONF"
# without the option or the variable the CA works unaudited, as before
cax 0 crl --dir "$ca"

# ---- the log ----------------------------------------------------------------------
aa_verify
X=$SK_TMP/export.jsonl
aa_export "$X"
n_admin=$(aa_count "$X" '.ev == "admin.change"')
# 16 sekishoctl entries (2 add, passwd, 2 lock, unlock + refused unlock, 2 allow-ip,
# deny-ip, totp enable + disable, 2 revoke, sweep, delete) + 6 audited CA commands
sk_assert_eq "$n_admin" 22 "number of admin.change entries: $(jq -c 'select(.ev=="admin.change")|.details.command' "$X" | tr '\n' ' ')"
for c in user.passwd user.deny-ip user.totp.enable user.totp.disable sweep user.delete \
    ca.init ca.issue ca.reissue ca.revoke ca.crl ca.server-cert; do
    sk_assert_eq "$(aa_admin "$X" "$c" | wc -l)" 1 "one $c entry"
done
for c in user.add user.lock user.unlock user.allow-ip session.revoke; do
    sk_assert_eq "$(aa_admin "$X" "$c" | wc -l)" 2 "two $c entries"
done
sk_assert_eq "$(aa_count "$X" '.ev == "admin.change" and .details.tool == "sekishoctl"')" 16 "sekishoctl entries"
sk_assert_eq "$(aa_count "$X" '.ev == "admin.change" and .details.tool == "sekisho-ca"')" 6 "sekisho-ca entries"
sk_assert_eq "$(aa_count "$X" '.ev == "admin.change" and .details.uid != "'"$(id -u)"'"')" 0 "uid recorded"

e=$(aa_admin "$X" user.add | head -n 1)
sk_assert_eq "$(aa_field "$e" .actor)" "$me (sudo: opal)" "operator under sudo"
sk_assert_eq "$(aa_field "$e" .tenant)" acme "user.add tenant"
sk_assert_eq "$(aa_field "$e" '.details | [.user,.role,.email,.must_change_password,.result] | join(" ")')" \
    "alice admin alice@example.com no ok" "user.add details"
e=$(aa_admin "$X" user.add | tail -n 1)
sk_assert_eq "$(aa_field "$e" .actor)" "$me" "operator without sudo"
sk_assert_eq "$(aa_field "$e" '[.tenant,.details.user,.details.role,.details.must_change_password] | join(" ")')" \
    "default bob general yes" "second user.add"
e=$(aa_admin "$X" user.passwd)
sk_assert_eq "$(aa_field "$e" '[.tenant,.details.user,.details.must_change_password,.details.sessions_ended] | join(" ")')" \
    "acme alice yes 0" "user.passwd details"
sk_assert_eq "$(aa_admin "$X" user.lock | jq -r .details.result | tr '\n' ' ')" "ok unchanged " "lock results"
sk_assert_eq "$(aa_admin "$X" user.unlock | jq -r '[.details.user,.details.result] | join(" ")' | tr '\n' ',')" \
    "alice ok,ghost refused," "unlock entries"
sk_assert_eq "$(aa_admin "$X" user.allow-ip | jq -r '[.details.user,.details.cidr,.details.result] | join(" ")' | tr '\n' ',')" \
    "bob 192.0.2.0/24 ok,bob 192.0.2.0/24 unchanged," "allow-ip entries"
sk_assert_eq "$(aa_field "$(aa_admin "$X" user.deny-ip)" '[.details.cidr,.details.result] | join(" ")')" \
    "192.0.2.0/24 ok" "deny-ip entry"
sk_assert_eq "$(aa_field "$(aa_admin "$X" user.totp.enable)" '[.tenant,.details.user] | join(" ")')" \
    "default bob" "totp enable entry"
sk_assert_eq "$(aa_admin "$X" session.revoke | jq -r '[.details.scope,(.details.user // "-"),(.tenant // "-"),.details.sessions_ended] | join(" ")' | tr '\n' ',')" \
    "all - - 0,user alice acme 0," "session.revoke entries"
e=$(aa_admin "$X" sweep)
sk_assert_eq "$(aa_field "$e" '[.details.now_given,.details.notified,.details.locked,.details.deleted,.details.result] | join(" ")')" \
    "yes 2 0 0 ok" "sweep summary entry"
sk_assert_eq "$(aa_count "$X" '.ev == "account.dormancy" and .details.action == "notified"')" 2 "dormancy steps"
e=$(jq -c 'select(.ev == "account.dormancy" and .details.action == "notified" and .actor == "bob")' "$X")
sk_assert_eq "$(aa_field "$e" '[.tenant,.details.role,.details.by,.details.tool] | join(" ")')" \
    "default general $me sekishoctl" "dormancy step of bob"
sk_assert_eq "$(aa_count "$X" '.ev == "account.dormancy" and .details.action == "mailed"')" 2 "mail steps"
sk_assert_eq "$(aa_field "$(aa_admin "$X" user.delete)" '[.tenant,.details.user,.details.result] | join(" ")')" \
    "default bob ok" "user.delete entry"

norm() { sk_norm_serial "$1"; }
e=$(aa_admin "$X" ca.init)
sk_assert_eq "$(aa_field "$e" .details.name)" "Audit Test CA" "ca.init name"
sk_assert_match "$(aa_field "$e" .details.valid_until)" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "ca.init validity"
e=$(aa_admin "$X" ca.issue)
sk_assert_eq "$(norm "$(aa_field "$e" .serial)")" "$(norm "$s1")" "ca.issue serial"
sk_assert_eq "$(aa_field "$e" '[.tenant,.details.user,.details.format] | join(" ")')" "acme alice pkcs12" "ca.issue details"
sk_assert_match "$(aa_field "$e" .details.not_after)" '^[0-9]{4}-' "ca.issue not_after"
e=$(aa_admin "$X" ca.reissue)
sk_assert_eq "$(norm "$(aa_field "$e" .serial)")" "$(norm "$s2")" "ca.reissue serial"
sk_assert_eq "$(norm "$(aa_field "$e" .details.revoked_serial)")" "$(norm "$s1")" "ca.reissue revoked serial"
sk_assert_eq "$(aa_field "$e" '[.details.format,.details.days,.details.revoked_reason] | join(" ")')" \
    "pkcs12-legacy 30 superseded" "ca.reissue details"
e=$(aa_admin "$X" ca.revoke)
sk_assert_eq "$(norm "$(aa_field "$e" .serial)")" "$(norm "$s2")" "ca.revoke serial"
sk_assert_eq "$(aa_field "$e" '[.tenant,.details.user,.details.reason,.details.by] | join(" ")')" \
    "acme alice keyCompromise serial" "ca.revoke details (tenant found by serial)"
e=$(aa_admin "$X" ca.crl)
sk_assert_eq "$(aa_field "$e" .details.days)" 5 "ca.crl days"
sk_assert_match "$(aa_field "$e" .details.crl_number)" '^[0-9]+$' "ca.crl number"
e=$(aa_admin "$X" ca.server-cert)
sk_assert_eq "$(norm "$(aa_field "$e" .serial)")" "$(norm "$s3")" "ca.server-cert serial"
sk_assert_eq "$(aa_field "$e" '[(.tenant // "-"),.details.host] | join(" ")')" "- gw.example.com" "ca.server-cert details"

# no secrets anywhere in the log (case-insensitive)
for f in "$AUDIT_DIR"/audit-*.jsonl; do
    for s in "$PWA" "$PWB" "$PWC" "$P12PW" "$secret" otpauth "secret=" argon2 "PRIVATE KEY"; do
        sk_assert_file_not_contains "$f" "$s" "secret in the audit log"
    done
done
sk_pass
