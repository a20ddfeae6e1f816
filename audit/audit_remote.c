/* audit_remote.c — an sk_audit whose calls go to auditd (sk_audit.h, "remote
 * handle"). Only rops and rctx of the struct are used; the writer functions check
 * them first and never touch the rest. */
#include <stdlib.h>

#include "audit_wint.h"

int sk_audit_open_remote(const sk_audit_remote_ops *ops, void *ctx, sk_audit **out)
{
    sk_audit *a;
    *out = NULL;
    if (ops == NULL || ops->append == NULL || ops->request == NULL || ops->refused == NULL ||
        ops->flush == NULL || ops->lag == NULL || ops->close == NULL)
        return -1;
    a = calloc(1, sizeof *a);
    if (a == NULL)
        return -1;
    a->rops = ops;
    a->rctx = ctx;
    *out = a;
    return 0;
}
