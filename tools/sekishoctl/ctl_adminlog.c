/* ctl_adminlog.c — sekishoctl's side of the admin audit entries (contract in
 * ctl.h and ca/sk_admin_audit.h). */
#include <stdio.h>

#include "ctl.h"
#include "sk_admin_audit.h"

int ctl_log_open(const sk_conf *conf, sk_adm_audit **out)
{
    char err[SK_CONF_PATH_MAX * 2 + 512];
    if (sk_adm_open(conf, "sekishoctl", stdout, out, err, sizeof err) != 0) {
        ctl_err("audit log unavailable: %s; nothing was changed", err);
        return CTL_REFUSED;
    }
    return CTL_OK;
}

int ctl_log_change(sk_adm_audit *log, const char *command, const char *tenant,
                   const sk_audit_kv *kv, size_t n)
{
    char err[512];
    if (sk_adm_change(log, command, tenant, NULL, kv, n, err, sizeof err) != 0) {
        ctl_err("%s was done but its audit entry could not be written (%s); record it by hand",
                command, err);
        return CTL_REFUSED;
    }
    return CTL_OK;
}

int ctl_log_event(sk_adm_audit *log, const char *event, const char *actor, const char *tenant,
                  const sk_audit_kv *kv, size_t n)
{
    char err[512];
    if (sk_adm_event(log, event, actor, tenant, kv, n, err, sizeof err) != 0) {
        ctl_err("audit: %s", err);
        return CTL_REFUSED;
    }
    return CTL_OK;
}

void ctl_log_close(sk_adm_audit *log)
{
    sk_adm_close(log);
}
