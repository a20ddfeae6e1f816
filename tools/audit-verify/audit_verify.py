#!/usr/bin/env python3
"""audit_verify.py — an independent verifier of a Sekisho audit log, written
from audit/FORMAT.md alone (Python 3 standard library + python3-cryptography).

usage: audit_verify.py --pubkey EPOCH0.pub [--witness FILE...] [--at EPOCH_SECONDS] DIR
       audit_verify.py --pubkey K [--pubkey K...] [--at EPOCH_SECONDS] DIR DIR...
several DIRs: several nodes' logs, each verified as its own chain; one --pubkey
for all of them, or one per DIR in the same order.
exit: 0 OK, 1 a log fails verification, 2 usage error
"""
import base64
import calendar
import hashlib
import json
import os
import re
import sys
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HASH_DOMAIN = b"sekisho-audit-v2\n"
SIG_DOMAIN = b"sekisho-audit-checkpoint-v2\n"
MAX_LINE = 65536
GRACE_MS = 60000
SEG_RE = re.compile(r"^audit-(?:([A-Za-z0-9._-]{1,63})-)?(\d{4})(\d{2})(\d{2})\.jsonl$")
NODE_RE = re.compile(r"^[A-Za-z0-9._-]{1,63}$")
SEG_CAP = 96
TS_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
B64URL = re.compile(r"^[A-Za-z0-9_-]{86}$")
KEYS = ["seq", "ts", "ev", "node", "actor", "tenant", "peer", "serial", "details", "prev",
        "mac", "sig", "h"]
ZERO = "0" * 64
I64 = 2 ** 63 - 1


class Fail(Exception):
    def __init__(self, kind, seg, line, seq, detail):
        super().__init__(detail)
        self.kind, self.seg, self.line, self.seq, self.detail = kind, seg, line, seq, detail


class Bad(Exception):
    """A line that is not a valid entry."""


def keyid(raw):
    return hashlib.sha256(raw).hexdigest()


def is_int(v, lo=0):
    return type(v) is int and lo <= v <= I64


def segment_parts(n):
    """(day string YYYYMMDD, node or "") of a segment name, None if not one."""
    m = SEG_RE.match(n)
    if not m:
        return None
    y, mo, d = map(int, m.groups()[1:])
    try:
        if y < 1970 or time.strptime("%04d%02d%02d" % (y, mo, d), "%Y%m%d") is None:
            return None
    except ValueError:
        return None
    return ("%04d%02d%02d" % (y, mo, d), m.group(1) or "")


def valid_segment_name(n):
    return segment_parts(n) is not None


def seg_key(n):
    """Segments sort by day, then by name (format 3, section 1)."""
    p = segment_parts(n)
    return (p[0] if p else "", n)


def parse_ts(s):
    m = TS_RE.match(s) if isinstance(s, str) else None
    if not m:
        raise Bad("bad ts")
    y, mo, d, h, mi, se, f = map(int, m.groups())
    if y < 1970 or not 1 <= mo <= 12 or not 1 <= d <= 31 or h > 23 or mi > 59 or se > 60:
        raise Bad("bad ts")
    return calendar.timegm((y, mo, d, h, mi, se, 0, 0, 0)) * 1000 + f


def strict_int(s):
    v = int(s)
    if abs(v) > I64:
        raise Bad("integer out of range")
    return v


def no_constant(c):
    raise Bad("not JSON: " + c)


def no_dups(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise Bad("duplicate key")
        d[k] = v
    return d


def opt_str(details, key, cap):
    v = details.get(key)
    if v is None:
        return ""
    if not isinstance(v, str) or len(v.encode()) >= cap:
        raise Bad("bad " + key)
    return v


def parse(line):
    """line: bytes without LF. Returns a dict of what verification needs."""
    n = len(line)
    if n == 0 or n > MAX_LINE or b"\0" in line:
        raise Bad("bad line")
    if n < 74 or line[n - 72:n - 66] != b',"h":"' or line[n - 2:] != b'"}' \
            or not HEX64.match(line[n - 66:n - 2].decode("ascii", "replace")):
        raise Bad("line does not end with a hash field")
    hashed = n - 72
    try:
        o = json.loads(line.decode("utf-8"), object_pairs_hook=no_dups, parse_int=strict_int,
                       parse_constant=no_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise Bad("not JSON: %s" % e)
    if not isinstance(o, dict) or any(k not in KEYS for k in o):
        raise Bad("not an entry object")
    e = {}
    if not is_int(o.get("seq"), 1):
        raise Bad("bad seq")
    e["seq"] = o["seq"]
    e["ts_ms"] = parse_ts(o.get("ts"))
    if not isinstance(o.get("ev"), str) or not o["ev"]:
        raise Bad("bad ev")
    e["ev"] = o["ev"]
    e["node"] = None
    if "node" in o:
        if not isinstance(o["node"], str) or not NODE_RE.match(o["node"]):
            raise Bad("bad node")
        e["node"] = o["node"]
    for k in ("actor", "tenant", "peer", "serial"):
        if k not in o or not (o[k] is None or isinstance(o[k], str)):
            raise Bad("bad " + k)
    d = o.get("details")
    if not isinstance(d, dict):
        raise Bad("bad details")
    if not isinstance(o.get("prev"), str) or not HEX64.match(o["prev"]):
        raise Bad("bad prev")
    e["prev"] = o["prev"]
    e["h"] = line[n - 66:n - 2].decode()
    if o.get("h") != e["h"]:
        raise Bad("bad h")
    mac_end = hashed
    e["cp"] = e["ev"] == "audit.checkpoint"
    if e["cp"]:
        sp = hashed - 95
        if not isinstance(o.get("sig"), str) or sp < 0 or line[sp:sp + 8] != b',"sig":"' \
                or line[hashed - 1:hashed] != b'"' or line[sp + 8:hashed - 1].decode() != o["sig"] \
                or not B64URL.match(o["sig"]):
            raise Bad("malformed signature field")
        sig = base64.urlsafe_b64decode(o["sig"] + "==")
        if len(sig) != 64 or base64.urlsafe_b64encode(sig).rstrip(b"=").decode() != o["sig"]:
            raise Bad("malformed signature field")
        e["sig"], e["signed"] = sig, line[:sp]
        mac_end = sp
        if not isinstance(d.get("key"), str) or len(d["key"]) != 64:
            raise Bad("checkpoint without key id")
        e["key"] = d["key"]
        for k in ("epoch", "from", "epoch_s"):
            if not is_int(d.get(k)):
                raise Bad("checkpoint without " + k)
        e["epoch"], e["from"], e["epoch_s"] = d["epoch"], d["from"], d["epoch_s"]
        e["reason"] = opt_str(d, "reason", 16)
        if len(opt_str(d, "origin", 65)) != 64:
            raise Bad("bad origin")
        e["next_segment"] = opt_str(d, "next_segment", SEG_CAP)
        e["next"] = None
        if "next" in d:
            if not isinstance(d["next"], str) or not HEX64.match(d["next"]):
                raise Bad("bad next key")
            e["next"] = bytes.fromhex(d["next"])
    elif "sig" in o:
        raise Bad("signature on a non-checkpoint entry")
    ms = mac_end - 73
    if ms < 0 or not isinstance(o.get("mac"), str) or line[ms:ms + 8] != b',"mac":"' \
            or line[mac_end - 1:mac_end] != b'"' or line[ms + 8:mac_end - 1].decode() != o["mac"] \
            or not HEX64.match(o["mac"]):
        raise Bad("bad mac field")
    e["epoch_here"] = None
    if e["ev"] in ("audit.segment", "audit.epoch") and "epoch" in d:
        if not is_int(d["epoch"]):
            raise Bad("bad epoch")
        e["epoch_here"] = d["epoch"]
    if e["ev"] == "audit.segment":
        e["segment"] = opt_str(d, "segment", SEG_CAP)
        e["prev_segment"] = opt_str(d, "prev_segment", SEG_CAP)
    if e["ev"] == "audit.prune":
        e["oldest_kept"] = opt_str(d, "oldest_kept", SEG_CAP)
    e["details"] = d
    e["hash_ok"] = hashlib.sha256(HASH_DOMAIN + line[:hashed]).hexdigest() == e["h"]
    return e


def sig_ok(pub, e):
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(e["sig"], SIG_DOMAIN + e["signed"])
        return True
    except InvalidSignature:
        return False


def read_lines(path):
    """Yields (line bytes without LF, torn)."""
    data = open(path, "rb").read()
    parts = data.split(b"\n")
    for i, p in enumerate(parts):
        if i == len(parts) - 1:
            if p:
                yield p, True
            return
        yield p, False


def parse_note(text):
    lines = text.split("\n")
    try:
        if not lines[0].startswith("sekisho-audit/") or not HEX64.match(lines[0][14:]):
            return None
        seq = int(lines[1])
        if not lines[1].isdigit() or seq < 1 or not HEX64.match(lines[2]):
            return None
        if not lines[3].startswith("time ") or not lines[4].startswith("epoch ") or lines[5]:
            return None
        sigs = [l for l in lines[6:] if l.startswith("\u2014 sekisho-audit ")
                and len(l) == len("\u2014 sekisho-audit ") + 86]
        if not sigs or lines[-1] != "":
            return None
        return {"origin": lines[0][14:], "seq": seq, "h": lines[2]}
    except (IndexError, ValueError):
        return None


class Verifier:
    def __init__(self, d, pub0, now_ms, witnesses):
        self.d, self.pub0, self.now = d, pub0, now_ms
        self.witness_files = witnesses
        self.v = {"entries": 0, "checkpoints": 0, "first_seq": 0, "last_seq": 0,
                  "first_epoch": 0, "newest_cp_ms": 0, "epoch_s": 0, "closed": False,
                  "unsealed": 0}

    def load_epochs(self):
        self.epub = [self.pub0]
        p = os.path.join(self.d, "epochs.jsonl")
        if not os.path.exists(p):
            return
        for line, torn in read_lines(p):
            if torn:
                break
            try:
                e = parse(line)
            except Bad:
                break
            i = len(self.epub) - 1
            if not e["hash_ok"] or not e["cp"] or e["next"] is None or e["epoch"] != i \
                    or e["key"] != keyid(self.epub[i]) or not sig_ok(self.epub[i], e):
                break
            self.epub.append(e["next"])

    def load_witnesses(self):
        self.w = []
        for f in self.witness_files:
            try:
                n = parse_note(open(f, encoding="utf-8").read())
            except (OSError, UnicodeDecodeError):
                n = None
            if n is None:
                raise Fail("unreadable", f, 0, 0, "witness file is not a sekisho checkpoint")
            if n["origin"] != keyid(self.pub0):
                raise Fail("unknown key", f, 0, n["seq"], "witness is for another log")
            n["file"], n["seen"] = f, False
            self.w.append(n)

    def set_key(self, epoch, pub):
        self.epoch, self.pub, self.kid = epoch, pub, keyid(pub)

    def run(self):
        self.load_epochs()
        self.load_witnesses()
        self.set_key(0, self.pub0)
        self.segs = sorted((n for n in os.listdir(self.d) if valid_segment_name(n)), key=seg_key)
        self.node = None
        self.have_prev = False
        self.expect_epoch = False
        self.last_cp, self.last_reason, self.last_next_seg = 0, "", ""
        self.prune_kept = self.last_kept = None
        self.us = None
        self.tr = None
        self.end = ("", 0)
        for si, seg in enumerate(self.segs):
            self.segment(si, seg)
        if self.have_prev:
            self.finish()
        elif self.w:
            raise Fail("truncated", "", 0, 0, "the log is empty but checkpoints were witnessed")
        self.v["last_epoch"] = self.epoch
        return self.v

    def segment(self, si, seg):
        lines = list(read_lines(os.path.join(self.d, seg)))
        for ln, (line, torn) in enumerate(lines, 1):
            here = self.expected if self.have_prev else 0
            if len(line) >= MAX_LINE + 1:
                raise Fail("edited", seg, ln, here, "line too long")
            if torn:
                if si + 1 == len(self.segs):
                    raise Fail("truncated tail", seg, ln, here, "last line is incomplete")
                raise Fail("edited", seg, ln, here, "incomplete line in a closed segment")
            try:
                e = parse(line)
            except Bad as x:
                raise Fail("edited", seg, ln, here, "malformed entry: %s" % x)
            if not self.have_prev:
                self.first_entry(seg, ln, e)
            if e["cp"]:
                self.check_sig(seg, ln, e)
            if not e["hash_ok"]:
                raise Fail("edited", seg, ln, e["seq"], "entry content does not match its hash")
            self.links(si, seg, ln, e, lines)
            self.check_node(seg, ln, e)
            self.on_entry(seg, ln, e)
            self.prev_h = e["h"]
            self.have_prev = True
            self.expected = e["seq"] + 1
            self.v["last_seq"] = e["seq"]
            self.v["entries"] += 1
            self.end = (seg, ln)

    def first_entry(self, seg, ln, e):
        self.v["first_seq"] = e["seq"]
        if e["seq"] == 1:
            if e["prev"] != ZERO:
                raise Fail("edited", seg, ln, 1, "first entry does not start a chain")
            self.set_key(0, self.pub0)
            self.last_cp = 0
            return
        k = e["epoch_here"]
        if k is None or k >= len(self.epub):
            raise Fail("unknown key", seg, ln, e["seq"], "the key of that epoch is not known")
        self.set_key(k, self.epub[k])
        self.last_cp = e["seq"] - 1
        self.v["first_epoch"] = k

    def check_sig(self, seg, ln, e):
        if e["epoch"] < self.epoch:
            raise Fail("wrong epoch key", seg, ln, e["seq"], "checkpoint of an earlier epoch")
        if e["epoch"] > self.epoch:
            raise Fail("epoch gap", seg, ln, e["seq"], "epochs %d..%d missing" %
                       (self.epoch + 1, e["epoch"]))
        if e["key"] != self.kid:
            raise Fail("unknown key" if self.epoch == 0 else "wrong epoch key", seg, ln, e["seq"],
                       "signed by %s..., not epoch %d's key" % (e["key"][:16], self.epoch))
        if not sig_ok(self.pub, e):
            raise Fail("bad signature", seg, ln, e["seq"], "checkpoint signature does not verify")

    def links(self, si, seg, ln, e, lines):
        if ln == 1:
            if e["ev"] != "audit.segment":
                raise Fail("deleted", seg, ln, e["seq"], "segment does not start with its header")
            if e["segment"] != seg:
                raise Fail("reordered", seg, ln, e["seq"], "header names " + e["segment"])
            if si > 0 and e["prev_segment"] != self.segs[si - 1]:
                raise Fail("deleted", seg, ln, e["seq"], "previous segment %s is missing"
                           % e["prev_segment"])
        if self.have_prev and e["seq"] != self.expected:
            later = False
            for line, torn in lines[ln:]:
                try:
                    if parse(line)["seq"] == self.expected:
                        later = True
                        break
                except Bad:
                    pass
            if e["seq"] < self.expected or later:
                raise Fail("reordered", seg, ln, e["seq"], "expected %d here" % self.expected)
            raise Fail("deleted", seg, ln, e["seq"], "entries %d..%d are missing"
                       % (self.expected, e["seq"] - 1))
        if self.have_prev and e["prev"] != self.prev_h:
            raise Fail("edited", seg, ln, e["seq"], "does not chain to the entry before")
        if self.have_prev and ln == 1 and self.last_next_seg and self.last_next_seg != seg:
            raise Fail("deleted", seg, ln, e["seq"], "the rotation named " + self.last_next_seg)

    def check_node(self, seg, ln, e):
        if self.node is not None and e["node"] != self.node:
            raise Fail("edited", seg, ln, e["seq"], "entry of %s in the chain of node %s"
                       % (e["node"] or "no node", self.node))
        seg_node = segment_parts(seg)[1]
        if seg_node and e["node"] != seg_node:
            raise Fail("edited", seg, ln, e["seq"], "segment of node %s holds an entry of %s"
                       % (seg_node, e["node"] or "no node"))
        if self.node is None and e["node"] is not None:
            self.node = e["node"]

    def on_entry(self, seg, ln, e):
        is_epoch = e["ev"] == "audit.epoch"
        if self.expect_epoch or is_epoch:
            if not (self.expect_epoch and is_epoch and e["epoch_here"] == self.epoch):
                raise Fail("epoch gap", seg, ln, e["seq"],
                           "a handoff must be followed by exactly its audit.epoch entry")
            self.expect_epoch = False
        if e["cp"]:
            if e["from"] != self.last_cp + 1:
                raise Fail("unsigned", seg, ln, e["seq"], "checkpoint ranges must be contiguous")
            self.last_cp = e["seq"]
            self.v["checkpoints"] += 1
            self.v["newest_cp_ms"] = e["ts_ms"]
            self.v["epoch_s"] = e["epoch_s"]
            self.last_reason, self.last_next_seg = e["reason"], e["next_segment"]
            self.us = None
            if self.prune_kept is not None:
                self.last_kept, self.prune_kept = self.prune_kept, None
            if e["next"] is not None:
                if self.epoch + 1 < len(self.epub) and self.epub[self.epoch + 1] != e["next"]:
                    raise Fail("wrong epoch key", seg, ln, e["seq"],
                               "handoff names another key than epochs.jsonl")
                self.set_key(self.epoch + 1, e["next"])
                self.expect_epoch = True
        elif self.us is None:
            self.us = (seg, ln, e["seq"], e["ts_ms"])
        if e["ev"] == "audit.prune" and e["oldest_kept"]:
            self.prune_kept = e["oldest_kept"]
        if e["ev"] == "audit.truncated" and self.tr is None:
            self.tr = (seg, ln, e["seq"], json.dumps(e["details"]))
        for w in self.w:
            if w["seq"] == e["seq"]:
                if w["h"] != e["h"]:
                    raise Fail("edited", seg, ln, e["seq"],
                               "differs from the checkpoint witnessed in " + w["file"])
                w["seen"] = True

    def finish(self):
        v, last = self.v, self.v["last_seq"]
        epoch_ms = (v["epoch_s"] or 900) * 1000
        for w in self.w:
            if w["seen"]:
                continue
            if w["seq"] > last:
                raise Fail("truncated", self.end[0], self.end[1], last,
                           "log ends at %d but %s witnessed %d" % (last, w["file"], w["seq"]))
            raise Fail("deleted", self.segs[0], 1, v["first_seq"],
                       "witnessed checkpoint %d is no longer in the log" % w["seq"])
        if v["first_seq"] > 1:
            if self.last_kept is None:
                raise Fail("deleted", self.segs[0], 1, v["first_seq"],
                           "entries before are missing and no signed audit.prune explains it")
            if seg_key(self.segs[0]) > seg_key(self.last_kept):
                raise Fail("deleted", self.segs[0], 1, v["first_seq"],
                           "segments before are missing")
        v["unsealed"] = last - self.last_cp
        v["closed"] = v["unsealed"] == 0 and self.last_reason == "close"
        if self.us and self.now - self.us[3] > epoch_ms + GRACE_MS:
            raise Fail("unsigned", self.us[0], self.us[1], self.us[2],
                       "entries after the last checkpoint are older than one epoch")
        if v["unsealed"] == 0 and self.last_reason == "rotate":
            raise Fail("truncated", self.end[0], self.end[1], last,
                       "the log ends with the rotation to a missing segment")
        if v["unsealed"] == 0 and not v["closed"] and self.now - v["newest_cp_ms"] > epoch_ms + GRACE_MS:
            raise Fail("truncated", self.end[0], self.end[1], last,
                       "the log ends on a checkpoint that is not closing, no heartbeat since")
        if self.tr:
            raise Fail("truncated", self.tr[0], self.tr[1], self.tr[2],
                       "the writer found the log shorter than it had left it: " + self.tr[3])


def load_pub(path):
    try:
        k = serialization.load_pem_public_key(open(path, "rb").read())
        return k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    except (OSError, ValueError, TypeError):
        sys.stderr.write("audit_verify: cannot load Ed25519 public key %s\n" % path)
        return None


def verify_one(d, pub0, now, wit):
    """Prints the verdict of one directory; returns (exit code, node or None)."""
    ver = Verifier(d, pub0, now, wit)
    try:
        v = ver.run()
    except Fail as f:
        print("FAIL: %s: %s line %d, seq %d: %s" % (f.kind, f.seg, f.line, f.seq, f.detail))
        return 1, getattr(ver, "node", None)
    except OSError as e:
        print("FAIL: unreadable: %s line 0, seq 0: %s" % (d, e))
        return 1, getattr(ver, "node", None)
    if v["entries"] == 0:
        print("OK: no entries")
        return 0, ver.node
    print("OK: entries %d..%d verified, %d checkpoints, epochs %d..%d" %
          (v["first_seq"], v["last_seq"], v["checkpoints"], v["first_epoch"], v["last_epoch"]))
    for w in ver.w:
        print("witness %s: checkpoint %d present" % (w["file"], w["seq"]))
    return 0, ver.node


def main(argv):
    pubs = []
    wit = []
    at = None
    dirs = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--pubkey" and i + 1 < len(argv):
            pubs.append(argv[i + 1])
            i += 2
        elif a == "--at" and i + 1 < len(argv) and argv[i + 1].isdigit():
            at, i = int(argv[i + 1]) * 1000, i + 2
        elif a == "--witness":
            i += 1
            while i < len(argv) and not argv[i].startswith("--") and i < len(argv) - 1:
                wit.append(argv[i])
                i += 1
        elif not a.startswith("--"):
            dirs.append(a)
            i += 1
        else:
            sys.stderr.write(__doc__)
            return 2
    if not pubs or not dirs or (len(pubs) != 1 and len(pubs) != len(dirs)) \
            or (len(dirs) > 1 and wit):
        sys.stderr.write(__doc__)
        return 2
    keys = []
    for p in pubs:
        k = load_pub(p)
        if k is None:
            return 1
        keys.append(k)
    now = at if at is not None else int(time.time() * 1000)
    if len(dirs) == 1:
        return verify_one(dirs[0], keys[0], now, wit)[0]
    rc, seen, failed = 0, {}, []
    for n, d in enumerate(dirs):
        print("== %s" % d)
        r, node = verify_one(d, keys[n if len(keys) > 1 else 0], now, [])
        label = node or "-"
        if r == 0 and node is not None and node in seen:
            print("FAIL: node %s: both %s and %s hold its log" % (node, seen[node], d))
            r = 1
        if node is not None:
            seen.setdefault(node, d)
        print("node %s: %s" % (label, "OK" if r == 0 else "FAIL"))
        if r:
            rc = 1
            failed.append(label)
    print("nodes: %d verified, %d failed%s" % (len(dirs) - len(failed), len(failed),
          (" (" + ", ".join(failed) + ")") if failed else ""))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
