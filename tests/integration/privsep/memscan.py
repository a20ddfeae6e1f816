#!/usr/bin/env python3
"""memscan.py PID NEEDLES: search a process's memory for secrets.

NEEDLES holds one needle per line, "label hex". Every readable mapping listed in
/proc/PID/maps is read through /proc/PID/mem (root or CAP_SYS_PTRACE needed) and
searched; the labels found are printed, one per line. Exit 0 when the scan ran
(whatever it found), 2 when nothing at all could be read (so that an unreadable
process never passes for a clean one)."""
import re
import sys

pid, needles_path = sys.argv[1], sys.argv[2]
needles = []
with open(needles_path) as f:
    for line in f:
        if line.strip():
            label, hexs = line.split()
            needles.append((label, bytes.fromhex(hexs)))
CHUNK = 16 << 20
MAX_REGION = 4 << 30
overlap = max(len(n) for _, n in needles) - 1 if needles else 0
found, readable = set(), 0
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in maps:
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
        if not m or m.group(3)[0] != "r" or "[vsyscall]" in line or "[vvar" in line:
            continue
        lo, hi = int(m.group(1), 16), int(m.group(2), 16)
        if hi - lo > MAX_REGION:
            continue  # a sanitizer's shadow reservation (terabytes), not the heap
        # In chunks that overlap by the longest needle, so none is cut in two.
        pos = lo
        while pos < hi:
            n_read = min(CHUNK, hi - pos)
            try:
                mem.seek(pos)
                data = mem.read(n_read + overlap if pos + n_read < hi else n_read)
            except (OSError, ValueError, OverflowError):
                break
            readable += len(data)
            for label, n in needles:
                if n in data:
                    found.add(label)
            pos += n_read
if readable == 0:
    sys.exit(2)
for label in sorted(found):
    print(label)
