/* sekisho-bench internals shared by bench_client.c and bench_slowloris.c. */
#ifndef SK_BENCH_INT_H
#define SK_BENCH_INT_H

#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>

#include "sk_util.h"

#define SK_BENCH_MAX_PIDS 32

typedef enum { SK_BENCH_HANDSHAKE, SK_BENCH_RESUME, SK_BENCH_KEEPALIVE, SK_BENCH_HOLD,
               SK_BENCH_SLOWLORIS } sk_bench_mode;
typedef struct sk_bench_opts {
    sk_bench_mode mode;
    char host[256];
    char port[8];
    const char *ca, *cert, *key, *path, *bind;
    uint64_t count, conns, reqs, expect;
    uint64_t timeout_s;    /* --timeout: per connect/read/write; a stuck request is an error */
    double deadline;       /* --max-seconds: requests not started by then are errors */
    int tls12;
    SSL_SESSION *session; /* resume mode: the session every connection resumes */
    long cpu_pids[SK_BENCH_MAX_PIDS]; /* --cpu-pid: front-end processes to account */
    int n_cpu_pids;
    char cookie[4096];
} sk_bench_opts;

double sk_bench_now(void);
/* Hold and slowloris modes wait here until the script is done measuring. */
void sk_bench_wait_signal(const sigset_t *set);
/* N silent TCP connections from o->bind; they never send a byte. */
int sk_bench_slowloris(const sk_bench_opts *o, const sigset_t *set) SK_MUST_CHECK;

#endif
