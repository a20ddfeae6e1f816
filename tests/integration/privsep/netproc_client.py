#!/usr/bin/env python3
"""Holds mTLS keep-alive connections to the gateway and makes requests on them, one
command a line on stdin, one answer a line on stdout (for a bash coprocess):

  cookie VALUE              -> "ok": the session cookie sent from now on
  open                      -> "ok IDX LOCALPORT"
  get IDX PATH [OUTFILE]    -> "ok STATUS": a GET on connection IDX (body to OUTFILE)
  quit

A request on a connection the server closed answers "err ..." and never reconnects:
a later "ok" proves the same TCP connection carried it. Loopback only; every wait
bounded (--timeout)."""
import argparse
import http.client
import ssl
import sys


class Conn:
    def __init__(self, a, ctx):
        self.c = http.client.HTTPSConnection(a.host, a.port, context=ctx, timeout=a.timeout)
        self.c.auto_open = 0  # never reconnect behind the test's back
        self.c.connect()
        self.port = self.c.sock.getsockname()[1]

    def request(self, method, path, cookie):
        if self.c.sock is None:
            raise ConnectionError("connection closed by the server")
        if self.c.sock.getsockname()[1] != self.port:
            raise ConnectionError("not the same connection")
        h = {"Cookie": "__Host-sekisho=" + cookie} if cookie else {}
        self.c.request(method, path, headers=h)
        r = self.c.getresponse()
        data = r.read()
        return r, data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--timeout", type=float, default=20)
    a = ap.parse_args()
    if not a.host.startswith("127."):
        sys.exit("loopback addresses only")
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.check_hostname = False
    conns, cookie = [], None
    for line in sys.stdin:
        w = line.split()
        try:
            if not w:
                continue
            if w[0] == "quit":
                break
            if w[0] == "open":
                conns.append(Conn(a, ctx))
                print(f"ok {len(conns) - 1} {conns[-1].port}", flush=True)
            elif w[0] == "cookie":
                cookie = w[1]
                print("ok", flush=True)
            elif w[0] == "get":
                r, data = conns[int(w[1])].request("GET", w[2], cookie)
                if len(w) > 3:
                    with open(w[3], "wb") as f:
                        f.write(data)
                print(f"ok {r.status}", flush=True)
            else:
                print("err unknown command", flush=True)
        except Exception as e:  # one answer line whatever happened
            msg = str(e).replace("\n", " ")[:200] or type(e).__name__
            print("err " + msg, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
