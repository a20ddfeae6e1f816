#!/usr/bin/env bash
# Role path rules through the real gateway (issue 4):
#   [access] path_rule = /admin admin      path_rule = / admin,general
#  - a general user gets 403 on /admin and everything under it, however the path is
#    spelled (dot segments, escaped unreserved letters, and by default case and
#    trailing dots or spaces of a segment, as IIS reads them: issue 13 item 3), and
#    such requests never reach the upstream; paths the rules cannot judge and empty
#    segments ("//", which upstreams disagree about) are 400;
#  - /administrator, /adminx and other paths pass (segment boundary);
#  - an admin passes /admin, and the upstream gets the normalised path that was
#    authorised, never the raw one (issue 13 item 2);
#  - path_case_insensitive = no makes matching byte-exact (restart with that setting).
# The demo upstream answers 404 "not found" for paths it does not serve: a request
# that passed the gateway is recognised by that body and by the upstream's log line.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup

sk_make_ca root:acme gen:acme
sk_start_upstream
ACCESS='[access]
path_rule = /admin admin
path_rule = / admin,general'
sk_write_config <<<"$ACCESS"
pr=$(sk_password) pg=$(sk_password)
pc_add_user root acme admin "$pr"
pc_add_user gen acme general "$pg"
sk_start_gateway
UP=$SK_UP_LOG
up_lines() { grep -c '^demo-upstream:' "$UP" || true; }

# forbidden USER COOKIE PATH STATUS: the gateway answers STATUS itself.
forbidden() {
    local before code
    before=$(up_lines)
    code=$(pc_curl -u "$1" -C "$2" "$3" -H 'Accept: text/html')
    sk_assert_eq "$code" "$4" "$1 GET $3"
    sk_assert_not_contains "$(sk_last_body)" "not found" "$1 GET $3: answer of the gateway, not the upstream"
    sk_assert_eq "$(up_lines)" "$before" "$1 GET $3: requests reaching the upstream"
}
# passes USER COOKIE PATH [FORWARDED]: the request reached the upstream with that
# path (or FORWARDED, the normalised path the gateway authorised).
passes() {
    local before code path=${4:-${3%%\?*}} # the upstream logs the path without the query
    before=$(pc_up_count "$UP" "GET $path")
    code=$(pc_curl -u "$1" -C "$2" "$3" -H 'Accept: text/html')
    if [[ $3 == /echo* ]]; then
        sk_assert_eq "$code" 200 "$1 GET $3"
    else
        sk_assert_eq "$code" 404 "$1 GET $3 (the upstream's 404)"
        sk_assert_eq "$(sk_last_body)" "not found" "$1 GET $3: body from the upstream"
    fi
    sk_assert_eq "$(pc_up_count "$UP" "GET $path")" $((before + 1)) "$1 GET $3 reaching the upstream"
}

gc=$(pc_login gen "$pg")
rc=$(pc_login root "$pr")

for p in /admin /admin/ /admin/x /admin/x/y?z=1 /x/../admin /x/../admin/x /%61dmin /%61%64%6D%69%6E/x \
    /./admin /%2e/admin /x/%2E%2E/admin/y/../../admin /admin/. /echo/../admin \
    /public/../admin /admin/%2e%2e/admin /ADMIN/x /Admin /admin. /admin./x /admin%20 /admin%20/x /AdMiN.%20. /admin//../users; do
    forbidden gen "$gc" "$p" 403
done
# The 403 page is the gateway's error page.
forbidden gen "$gc" /admin 403
sk_assert_contains "$(sk_last_body)" "Access is not allowed." "403 page text"

# Paths the rules cannot judge are refused, not guessed.
for p in "/admin;x=1" "/admin%2fx" "/admin%5cx" "/../admin" "/x/../../admin" "/adm%00in" "/%zzadmin" \
    //admin ///admin/x /x//admin; do
    forbidden gen "$gc" "$p" 400
done

for p in /administrator /adminx /admin.html /x/admin /echo "/echo?admin=1" /ADMINISTRATOR /admin.x; do
    passes gen "$gc" "$p"
done
# What passes is forwarded as authorised: normalised, never the raw spelling.
passes gen "$gc" /admin/../public /public
passes gen "$gc" /x/./y/%2e%2e/z /x/z
passes gen "$gc" "/%78/y?a=1" /x/y

for p in /admin /admin/x /administrator /echo; do
    passes root "$rc" "$p"
done
passes root "$rc" /x/../admin /admin
passes root "$rc" /ADMIN./x /ADMIN./x
sk_assert_eq "$(pc_curl -u root -C "$rc" /echo)" 200 "root /echo"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-Roles)" admin "roles of root toward the upstream"
sk_assert_eq "$(pc_curl -u gen -C "$gc" /echo)" 200 "gen /echo"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-Roles)" general "roles of gen toward the upstream"

# Without a session the rules are not the question: 401 / login redirect.
sk_assert_eq "$(pc_curl -u gen /admin)" 401 "gen /admin without a session"

# An operator who knows the upstream is byte-exact asks for exact matching:
# /ADMIN and /admin. are then other resources.
sk_stop_gateway
sk_write_config <<<"$ACCESS
path_case_insensitive = no"
sk_start_gateway
gc=$(pc_login gen "$pg")
rc=$(pc_login root "$pr")
for p in /admin /admin/x /%61dmin; do
    forbidden gen "$gc" "$p" 403
done
for p in /ADMIN /Admin/x /admin. /ADMINISTRATOR; do
    passes gen "$gc" "$p"
done
passes root "$rc" /admin
# Role refusals reach the journal summed (not a line per request) and the metrics.
n=$(grep -c "refused by a role rule (403)" "$SK_GW_LOG" || true)
sk_assert_lt 0 "$n" "journal lines for role refusals"
sk_assert_file_contains "$SK_GW_LOG" "(latest acme/gen from 127.0.0.1)" "role refusal line names the latest refused user"
code=$(sk_curl -u root -C "$rc" /.sekisho/metrics)
sk_assert_eq "$code" 200 "metrics"
m=$(awk '$1 == "sekisho_requests_refused_total{by=\"role\"}" { print $2 }' "$SK_TMP/last.body")
sk_assert_lt 1 "${m:-0}" "sekisho_requests_refused_total{by=role} after several role refusals"
sk_stop_gateway
sk_pass
