#!/usr/bin/env python3
"""Opens N mTLS keep-alive connections to the gateway, makes one authenticated GET on
each (so each is a signed-in connection past its handshake) and holds them idle.

  hold_clients.py HOST PORT --ca CA --cert CRT --key KEY --cookie-file F -n N
                  --ready FILE --stop FILE [--max-seconds S]

Writes "ok=N failed=M" to the ready file once all are open, then holds until the stop
file exists (or max seconds pass). Loopback only; every wait bounded."""
import argparse
import os
import socket
import ssl
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--cookie-file", required=True)
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--path", default="/echo")
    ap.add_argument("--ready", required=True)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--max-seconds", type=float, default=120)
    a = ap.parse_args()
    if not a.host.startswith("127."):
        sys.exit("loopback addresses only")
    cookie = open(a.cookie_file).read().strip()
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.check_hostname = False
    req = (f"GET {a.path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\nCookie: {cookie}\r\n\r\n").encode()
    conns, failed = [], 0
    t0 = time.monotonic()
    for _ in range(a.n):
        try:
            raw = socket.create_connection((a.host, a.port), timeout=10)
            s = ctx.wrap_socket(raw, server_hostname=None)
            s.sendall(req)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = s.recv(65536)
                if not chunk:
                    break
                head += chunk
            if not head.startswith(b"HTTP/1.1 200"):
                failed += 1
                s.close()
                continue
            # read the rest of the body (Content-Length) so the connection is idle
            hdr, _, body = head.partition(b"\r\n\r\n")
            length = 0
            for line in hdr.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while len(body) < length:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
            conns.append(s)
        except (OSError, ssl.SSLError):
            failed += 1
        if time.monotonic() - t0 > a.max_seconds:
            break
    with open(a.ready, "w") as f:
        f.write(f"ok={len(conns)} failed={failed}\n")
    while not os.path.exists(a.stop) and time.monotonic() - t0 < a.max_seconds:
        time.sleep(0.1)
    for s in conns:
        s.close()


if __name__ == "__main__":
    main()
