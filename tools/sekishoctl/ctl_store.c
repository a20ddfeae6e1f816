/*
 * sekishoctl store migrate
 *
 * Brings the schema of the [store] backend up to date: with backend =
 * postgresql, applies the versioned migrations the database lacks (one
 * transaction; several nodes running it at once are safe; running it again
 * changes nothing). Gateways and tools refuse a schema older or newer than
 * their own, so this runs before the first start and after each upgrade. With
 * backend = lmdb there is nothing to migrate (LMDB keeps its layout itself).
 * A migration that changes the schema is audited as admin.change
 * "store.migrate" with the versions before and after.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "sk_admin_audit.h"
#include "sk_store.h"

static const char usage_migrate[] = "store migrate";

void ctl_store_usage_to(FILE *f)
{
    fprintf(f, "  %s\n", usage_migrate);
    ctl_store_copy_usage_to(f);
}

void ctl_store_usage(void)
{
    ctl_store_usage_to(stderr);
}

static int migrate(const sk_conf *conf)
{
    sk_adm_audit *log = NULL;
    char err[768], vfrom[16], vto[16];
    unsigned from = 0, to = 0;
    int rc;

    if (strcmp(conf->store_backend, "lmdb") == 0) {
        printf("store migrate: backend = lmdb keeps its own layout; nothing to migrate\n");
        return CTL_OK;
    }
    if (ctl_log_open(conf, &log) != CTL_OK)
        return CTL_REFUSED;
    rc = sk_store_migrate_conf(conf, &from, &to, err, sizeof err);
    if (sk_snprintf(vfrom, sizeof vfrom, "%u", from) != 0 || sk_snprintf(vto, sizeof vto, "%u", to) != 0)
        vfrom[0] = vto[0] = '\0';
    sk_audit_kv kv[] = { { "result", rc != 0 ? "refused" : from == to ? "unchanged" : "ok" },
                         { "backend", conf->store_backend }, { "from", vfrom }, { "to", vto } };
    if (rc != 0) {
        ctl_err("store migrate: %s", err);
        (void)ctl_log_change(log, "store.migrate", NULL, kv, SK_ARRAY_LEN(kv));
        ctl_log_close(log);
        return CTL_REFUSED;
    }
    rc = ctl_log_change(log, "store.migrate", NULL, kv, SK_ARRAY_LEN(kv));
    ctl_log_close(log);
    if (from == to)
        printf("store migrate: schema version %u is current; nothing to do\n", to);
    else
        printf("store migrate: schema version %u -> %u\n", from, to);
    return rc;
}

int ctl_store_main(const sk_conf *conf, int argc, char **argv)
{
    if (strcmp(argv[0], "copy") == 0)
        return ctl_store_copy_main(conf, argc, argv);
    if (strcmp(argv[0], "migrate") != 0) {
        ctl_err("unknown store subcommand '%s'", argv[0]);
        ctl_store_usage();
        return CTL_USAGE;
    }
    if (argc > 1) {
        ctl_err("store migrate: unexpected argument '%s'", argv[1]);
        ctl_store_usage();
        return CTL_USAGE;
    }
    return migrate(conf);
}
