#!/usr/bin/env python3
"""Opens N TCP connections that never send a byte (a pre-authentication flood) and
reports, at the given moments, how many the server still holds open.

  silent_clients.py HOST PORT --bind 127.0.0.2[,127.0.0.3...] -n N --at 1,5 [--ready FILE]

Prints one line per moment: "t=SECONDS open=N closed=N failed=N". Loopback only;
every wait is bounded; all sockets are closed at exit."""
import argparse
import errno
import select
import socket
import sys
import time


def still_open(s):
    try:
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            return True
        return len(s.recv(1, socket.MSG_PEEK)) > 0
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--bind", default="127.0.0.2")
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--at", default="1")
    ap.add_argument("--ready", default="")
    a = ap.parse_args()
    if not a.host.startswith("127.") or any(not b.startswith("127.") for b in a.bind.split(",")):
        sys.exit("loopback addresses only")
    binds = a.bind.split(",")
    socks, failed = [], 0
    for i in range(a.n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.bind((binds[i % len(binds)], 0))
            s.connect((a.host, a.port))
            socks.append(s)
        except OSError:
            failed += 1
            s.close()
    t0 = time.monotonic()
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("ready\n")
    for at in [float(x) for x in a.at.split(",")]:
        delay = t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        n_open = sum(1 for s in socks if still_open(s))
        print(f"t={at:g} open={n_open} closed={len(socks) - n_open} failed={failed}", flush=True)
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
