#ifndef SK_DEMO_WS_H
#define SK_DEMO_WS_H
#include <microhttpd.h>
/* Answer a WebSocket upgrade on /ws and echo frames until the client closes. */
enum MHD_Result sk_demo_ws(struct MHD_Connection *c);
#endif
