#!/usr/bin/env python3
"""Re-derive the sandbox allowlists from a real run (developer tool, not a test).

    python3 sandbox/trace-syscalls.py BUILD_DIR TEST [TEST...]
    e.g. python3 sandbox/trace-syscalls.py build/release gateway_login auditgw_audit_flow

Runs each integration test (tests/integration/<area>/<name>.sh for TEST =
<area>_<name>) with `sekisho` wrapped in `strace -D -f`, then prints, for every
process of every traced sekisho (threads folded into their process), the
syscalls it made and those that the role tables in sandbox_seccomp.c do not
allow for net, authd and auditd. Calls made before sk_sandbox_enter() (start-up)
show up too: judge them by where they happen. ASan builds get detect_leaks=0
(LeakSanitizer cannot run under ptrace).
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)


def tables():
    s = open(os.path.join(HERE, "sandbox_seccomp.c")).read()

    def t(name):
        m = re.search(r"static const char \*const " + name + r"\[\] = \{(.*?)\};", s, re.S)
        return set(re.findall(r'"([a-z_0-9]+)"', m.group(1))) if m else set()

    cond = set(re.findall(r"RULE\(SCMP_ACT_ALLOW, ([a-z_0-9]+),", s))
    # conditional rules, and clone3/openat2 which answer ENOSYS
    base = t("base_calls") | {"clone", "clone3", "openat2", "socketpair", "tgkill", "kill",
                              "prlimit64", "prctl"}
    san = t("sanitizer_calls")
    return {
        "net": base | t("net_calls") | {"socket", "openat"} | san,
        "authd": base | t("authd_calls") | san,
        "auditd": base | t("auditd_calls") | san,
        "auditd+exec": base | t("auditd_calls") | t("exec_calls") | san | cond,
    }


LINE = re.compile(r"^(\d+) +(?:<\.\.\. )?([a-z_0-9]+)[( ]")
CLONE = re.compile(r"^(\d+) +(?:<\.\.\. )?clone3?(?:\(| resumed>).*= (\d+)$")


def analyse(path, roles):
    # A new thread often runs before strace prints its parent's clone result:
    # collect per thread id first, fold threads into processes at the end.
    parent_of, per_tid, pending = {}, {}, {}
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        m = LINE.match(line)
        if not m:
            continue
        tid, name = m.groups()
        if name in ("clone", "clone3") and "resumed" not in line:
            pending[tid] = "CLONE_THREAD" in line
        c = CLONE.match(line)
        if c:
            parent, child = c.groups()
            if pending.pop(parent, "CLONE_THREAD" in line):
                parent_of[child] = parent
        if name == "execve" and "build" not in line:
            per_tid.setdefault(tid, set()).add("<exec of another program>")
        per_tid.setdefault(tid, set()).add(name)

    def root(t):
        while t in parent_of:
            t = parent_of[t]
        return t

    calls = {}
    for tid, cs in per_tid.items():
        calls.setdefault(root(tid), set()).update(cs)
    for pid, cs in sorted(calls.items()):
        print(f"  process {pid}: {len(cs)} syscalls")
        print("    " + " ".join(sorted(cs)))
        for role, allowed in roles.items():
            missing = sorted(c for c in cs - allowed if not c.startswith("<"))
            print(f"    not allowed for {role}: {' '.join(missing) or '-'}")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    build = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="sk-trace-")
    bindir, out = os.path.join(work, "bin"), os.path.join(work, "out")
    os.makedirs(bindir)
    os.makedirs(out)
    for f in glob.glob(os.path.join(build, "bin", "*")):
        if os.path.basename(f) != "sekisho":
            os.symlink(f, os.path.join(bindir, os.path.basename(f)))
    with open(os.path.join(bindir, "sekisho"), "w") as w:
        w.write("#!/bin/bash\nexport ASAN_OPTIONS=\"${ASAN_OPTIONS:-}:detect_leaks=0\"\n"
                f"exec strace -D -f -qq -o {out}/tr.$$ {build}/bin/sekisho \"$@\"\n")
    os.chmod(os.path.join(bindir, "sekisho"), 0o755)
    for t in sys.argv[2:]:
        area, _, name = t.partition("_")
        script = os.path.join(SRC, "tests", "integration", area, name + ".sh")
        env = dict(os.environ, SK_BIN=bindir, SK_SRC=SRC, SK_TMP=os.path.join(work, "tmp", t))
        rc = subprocess.run(["bash", script], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode
        print(f"{t}: exit {rc} (timing-sensitive tests may fail under strace; the trace still counts)")
    roles = tables()
    for f in sorted(glob.glob(os.path.join(out, "tr.*"))):
        print(f"sekisho run {os.path.basename(f)}:")
        analyse(f, roles)
    print(f"traces kept in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
