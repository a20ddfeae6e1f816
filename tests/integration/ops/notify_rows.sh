#!/usr/bin/env bash
# The seeds' rows outside the gateway (issue 11, item 8), through sekishoctl and a
# recording sendmail: operator mail carries an alert level in subject and header and
# goes to that level's recipients; [notify] allowed_domains refuses other domains on
# user add/modify; `user notify` mails the account notice without any password;
# password_max_length 20 is accepted and enforced.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../ctl/ctl_lib.sh"
sk_setup
sk_need_bin sekishoctl
ctl_config
mail=$SK_TMP/mail
mkdir -p "$mail"
cat >"$SK_TMP/sendmail" <<SH
#!/bin/sh
[ "\$1" = -t ] || exit 3
n=\$(ls "$mail" | wc -l)
cat >"$mail/msg.\$n"
SH
chmod 700 "$SK_TMP/sendmail"
cat >>"$SK_CONF" <<CONF

[notify]
command = $SK_TMP/sendmail -t
operators = ops@example.com
operators_warning = desk@example.com
operators_minor = admins@example.com, desk@example.com
allowed_domains = example.com, .example.co.jp
portal_url = https://portal.example.com/

[tenant.acme]
host = acme.example.com
upstream = http://127.0.0.1:9

[policy]
password_max_length = 20
CONF
msg_to() { grep -lx "To: $1" "$mail"/* 2>/dev/null | head -1 || true; }

# allowed_domains
pw=$(ctl_pwfile pw Cedar-Field-58)
ctl 1 user add eve --email eve@evil.test --password-file "$pw"
ctl_refused "other domain"
sk_assert_contains "$(ctl_err_text)" "not in [notify] allowed_domains" "the refusal names the setting"
ctl 1 user show eve
ctl 0 user add gen --email gen@example.com --password-file "$pw"
ctl 0 user add jp --tenant acme --email jp@mail.example.co.jp --password-file "$pw"
ctl 1 user add jp2 --email jp@example.co.jp --password-file "$pw"      # only subdomains of .example.co.jp
ctl 0 user add noemail --password-file "$pw"
ctl 1 user modify gen --email gen@elsewhere.test
sk_assert_contains "$(ctl_err_text)" "allowed_domains" "modify checks the domain"
ctl 0 user show gen --json
sk_assert_eq "$(ctl_json .email)" gen@example.com "address unchanged after the refusal"
ctl 0 user modify gen --email GEN@EXAMPLE.COM
ctl 0 user modify gen --email gen@example.com

# password_max_length = 20: 21 characters refused, 20 accepted.
ctl 1 user passwd gen --password-file "$(ctl_pwfile long Abcdefghij-123456789x)"
sk_assert_contains "$(ctl_err_text)" "password refused" "21 characters over a maximum of 20"
ctl 0 user passwd gen --password-file "$(ctl_pwfile twenty Abcdefghij-123456789)"

# user notify: the account notice, to the user, never a password.
ctl 0 user notify jp
sk_assert_contains "$(ctl_out)" "account notice sent to jp@mail.example.co.jp for jp (tenant acme)" "notify output"
f=$(msg_to jp@mail.example.co.jp)
[[ -n $f ]] || sk_fail "no notice to jp"
sk_assert_file_contains "$f" "Subject: Sekisho: your account jp" "notice subject"
sk_assert_file_contains "$f" "User ID:  jp" "notice names the ID"
sk_assert_file_contains "$f" "Tenant:   acme" "notice names the tenant"
sk_assert_file_contains "$f" "Portal:   https://portal.example.com/" "notice names the portal"
sk_assert_file_contains "$f" "Import the certificate bundle" "notice explains the import"
sk_assert_file_not_contains "$f" "X-Sekisho-Alert-Level" "a personal mail has no alert level"
sk_assert_file_not_contains "$f" "Cedar-Field-58" "never the password"
ctl 1 user notify noemail
sk_assert_contains "$(ctl_err_text)" "has no e-mail address" "no address, no notice"
n_before=$(ls "$mail" | wc -l)
ctl 0 user notify gen
sk_assert_eq "$(ls "$mail" | wc -l)" $((n_before + 1)) "re-sending sends one more notice"

# Operator mail: levels and routing (the dormancy sweep's operator notices).
rm -f "$mail"/*
T0=$(date +%s)
ctl 0 sweep --now $((T0 + 180 * 86400 + 60))   # reminders; noemail's goes to the operators
f=$(msg_to desk@example.com)
[[ -n $f ]] || sk_fail "warning-level mail did not go to operators_warning: $(ls "$mail")"
sk_assert_file_contains "$f" "X-Sekisho-Alert-Level: warning" "warning header"
sk_assert_match "$(grep '^Subject:' "$f")" 'no e-mail address \[warning\]$' "level in the subject"
[[ -z $(msg_to ops@example.com) ]] || sk_fail "routed mail also went to the default operators"
g=$(msg_to gen@example.com)
sk_assert_file_not_contains "$g" "X-Sekisho-Alert-Level" "the user's own reminder has no level"
rm -f "$mail"/*
ctl 0 sweep --now $((T0 + 210 * 86400 + 60))   # dormancy locks: operators are told (minor)
f=$(msg_to "admins@example.com, desk@example.com")
[[ -n $f ]] || sk_fail "minor-level mail did not go to operators_minor: $(grep -h '^To:' "$mail"/*)"
sk_assert_file_contains "$f" "X-Sekisho-Alert-Level: minor" "minor header"
sk_assert_match "$(grep '^Subject:' "$f" | head -1)" 'locked \[minor\]$' "minor in the subject"
sk_assert_file_not_contains "$f" "Importance: high" "only major mail is marked important"
sk_pass
