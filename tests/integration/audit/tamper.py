#!/usr/bin/env python3
"""tamper.py — what an attacker does to an audit log, for the tamper matrix.

  append DIR EV [K=V ...]        hand-append one correctly chained entry (no key:
                                 its MAC is garbage) to the newest segment
  rewrite DIR KEYFILE SEG LINE OLD NEW
                                 replace OLD by NEW in that line, then re-chain,
                                 re-MAC and re-sign everything from there with
                                 KEYFILE (an attacker holding the current key)
  extend DIR KEYFILE SEG LINE EPOCH
                                 cut the log after SEG:LINE and append one entry
                                 and a checkpoint claiming EPOCH signed with
                                 KEYFILE (truncate-and-extend with a newer key)
"""
import base64
import hashlib
import hmac
import json
import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HASH_DOMAIN = b"sekisho-audit-v2\n"
SIG_DOMAIN = b"sekisho-audit-checkpoint-v2\n"
MAC_DOMAIN = b"sekisho-audit-mac-v2\n"
MACKEY_DOMAIN = b"sekisho-audit-mackey-v2\n"


def segments(d):
    return sorted(n for n in os.listdir(d) if n.startswith("audit-") and n.endswith(".jsonl")
                  and len(n) == 20)


def load_key(path):
    data = open(path, "rb").read()
    pem = data[data.index(b"-----BEGIN"):]
    k = serialization.load_pem_private_key(pem, None)
    assert isinstance(k, Ed25519PrivateKey)
    seed = k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                           serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    mac_key = hashlib.sha256(MACKEY_DOMAIN + seed).digest()
    return k, hashlib.sha256(pub).hexdigest(), mac_key


def body_of(line):
    """The line up to (excluding) ,"mac": — what the MAC covers."""
    return line[:line.rindex(b',"mac":"')]


def seal(body, prev_mac_key, key=None):
    """body ends after "prev":"..."; returns the full line (without newline)."""
    mac = hmac.new(prev_mac_key, MAC_DOMAIN + body, hashlib.sha256).hexdigest() \
        if prev_mac_key else os.urandom(32).hex()
    line = body + b',"mac":"' + mac.encode() + b'"'
    if key is not None:
        sig = key.sign(SIG_DOMAIN + line)
        line += b',"sig":"' + base64.urlsafe_b64encode(sig).rstrip(b"=") + b'"'
    h = hashlib.sha256(HASH_DOMAIN + line).hexdigest()
    return line + b',"h":"' + h.encode() + b'"}'


def set_prev(body, prev):
    i = body.rindex(b',"prev":"')
    return body[:i] + b',"prev":"' + prev.encode() + b'"'


def fields(line):
    return json.loads(line)


def cmd_append(d, ev, kvs):
    segs = segments(d)
    path = os.path.join(d, segs[-1])
    last = open(path, "rb").read().splitlines()[-1]
    e = fields(last)
    details = dict(kv.split("=", 1) for kv in kvs)
    body = ('{"seq":%d,"ts":"%s","ev":%s,"actor":"mallory","tenant":null,"peer":null,'
            '"serial":null,"details":%s,"prev":"%s"' %
            (e["seq"] + 1, e["ts"], json.dumps(ev), json.dumps(details, separators=(",", ":")),
             e["h"])).encode()
    with open(path, "ab") as f:
        f.write(seal(body, None) + b"\n")


def rewrite_from(d, key_path, seg, lineno, edit):
    key, keyid, mac_key = load_key(key_path)
    prev = None
    started = False
    for s in segments(d):
        path = os.path.join(d, s)
        lines = open(path, "rb").read().splitlines()
        out = []
        for i, line in enumerate(lines, 1):
            if s == seg and i == lineno:
                started = True
                line = edit(line)
            if not started:
                out.append(line)
                prev = fields(line)["h"]
                continue
            e = fields(line)
            body = set_prev(body_of(line), prev)
            is_cp = e["ev"] == "audit.checkpoint"
            if is_cp:
                body = body.replace(b'"key":"' + e["details"]["key"].encode() + b'"',
                                    b'"key":"' + keyid.encode() + b'"')
            line = seal(body, mac_key, key if is_cp else None)
            prev = fields(line)["h"]
            out.append(line)
        with open(path, "wb") as f:
            f.write(b"".join(x + b"\n" for x in out))


def cmd_rewrite(d, key_path, seg, lineno, old, new):
    def edit(line):
        assert old.encode() in line, "text to replace not found"
        return line.replace(old.encode(), new.encode(), 1)
    rewrite_from(d, key_path, seg, int(lineno), edit)


def cmd_extend(d, key_path, seg, lineno, epoch):
    key, keyid, mac_key = load_key(key_path)
    segs = segments(d)
    for s in segs[segs.index(seg) + 1:]:
        os.unlink(os.path.join(d, s))
    path = os.path.join(d, seg)
    lines = open(path, "rb").read().splitlines()[:int(lineno)]
    last_cp = 0
    origin = None
    for s in segments(d):
        for line in open(os.path.join(d, s), "rb").read().splitlines():
            e = fields(line)
            if e["ev"] == "audit.checkpoint":
                last_cp = e["seq"]
                origin = e["details"]["origin"]
            if s == seg and line == lines[-1]:
                break
    last = fields(lines[-1])
    if last["ev"] == "audit.checkpoint":
        last_cp = last["seq"]
    seq, prev = last["seq"] + 1, last["h"]
    body = ('{"seq":%d,"ts":"%s","ev":"admin.change","actor":"mallory","tenant":null,'
            '"peer":null,"serial":null,"details":{"op":"nothing happened"},"prev":"%s"'
            % (seq, last["ts"], prev)).encode()
    l1 = seal(body, mac_key)
    details = {"epoch": int(epoch), "key": keyid, "origin": origin, "from": last_cp + 1,
               "reason": "close", "segment": seg, "epoch_s": 900}
    body = ('{"seq":%d,"ts":"%s","ev":"audit.checkpoint","actor":null,"tenant":null,'
            '"peer":null,"serial":null,"details":%s,"prev":"%s"'
            % (seq + 1, last["ts"], json.dumps(details, separators=(",", ":")),
               fields(l1)["h"])).encode()
    l2 = seal(body, mac_key, key)
    with open(path, "wb") as f:
        f.write(b"".join(x + b"\n" for x in lines + [l1, l2]))


def main(argv):
    if len(argv) >= 3 and argv[0] == "append":
        cmd_append(argv[1], argv[2], argv[3:])
    elif len(argv) == 7 and argv[0] == "rewrite":
        cmd_rewrite(*argv[1:])
    elif len(argv) == 6 and argv[0] == "extend":
        cmd_extend(*argv[1:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
