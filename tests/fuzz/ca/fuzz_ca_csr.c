/* libFuzzer target: CSR loading (PEM/DER parse, signature check, key policy). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    X509_REQ *req = NULL;
    sk_ca_err err;

    memset(&err, 0, sizeof(err));
    if (sk_ca_csr_load(data, size, &req, &err) == 0) {
        /* accepted means: a verified request with an allowed key */
        EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
        if (pub == NULL || X509_REQ_verify(req, pub) != 1)
            abort();
        X509_REQ_free(req);
    } else if (err.msg[0] == '\0' || req != NULL) {
        abort();
    }
    return 0;
}
