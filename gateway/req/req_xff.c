/* sk_req forwarding-header trust. See sk_req.h. */
#include <string.h>

#include "sk_req.h"

int sk_req_client_addr(const sk_policy_cidr_list *trusted, const sk_policy_addr *peer, const char *xff,
                       sk_policy_addr *out)
{
    *out = *peer;
    if (trusted == NULL || trusted->count == 0 || !sk_policy_cidr_list_match(trusted, peer) || xff == NULL)
        return 0;
    for (size_t end = strlen(xff); end > 0;) {
        size_t start = end, n;
        sk_policy_addr cand;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        n = end - start;
        while (n > 0 && (xff[start] == ' ' || xff[start] == '\t')) {
            start++;
            n--;
        }
        while (n > 0 && (xff[start + n - 1] == ' ' || xff[start + n - 1] == '\t'))
            n--;
        if (n == 0 || n >= SK_POLICY_CIDR_INPUT_MAX ||
            sk_policy_addr_parse(xff + start, n, &cand) != SK_POLICY_CIDR_OK)
            return -1;
        *out = cand;
        if (!sk_policy_cidr_list_match(trusted, &cand))
            return 0;
        /* start may have moved past OWS; step to the ',' before this item. */
        while (start > 0 && xff[start - 1] != ',')
            start--;
        end = start > 0 ? start - 1 : 0;
    }
    return 0;
}
