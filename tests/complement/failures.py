#!/usr/bin/env python3
"""failures.py LOG — for each failing Complement test in a `go test -v` log,
the lines that say why: the test's own error lines (file_test.go:NN: ...)
and the requests pvyhs answered with an error status, in order.

go test -v interleaves parallel tests; "=== RUN/CONT name" says whose output
follows, so each indented line is credited to the last test named."""
import re, sys, collections

cur = None
lines = collections.defaultdict(list)
failed = []
for raw in open(sys.argv[1], errors="replace"):
    line = re.sub(r"\x1b\[[0-9;]*m", "", raw.rstrip("\n"))
    m = re.match(r"=== (?:RUN|CONT|PAUSE|NAME)\s+(\S+)", line)
    if m:
        cur = m.group(1)
        continue
    m = re.match(r"\s*--- FAIL: (\S+)", line)
    if m:
        failed.append(m.group(1))
        continue
    if cur and line.startswith("    "):
        lines[cur].append(line.strip())

err = re.compile(r"(_test\.go:\d+:|match\.go|must\.go|helpers|Error|error|FAIL|panic|timed out|failed)")
req = re.compile(r"\[CSAPI\] .* => (\d{3})")
names = set(failed)
for name in failed:
    # A parent whose only failures are its subtests says nothing new.
    own = lines.get(name, [])
    picked = []
    for l in own:
        r = req.search(l)
        if r and not r.group(1).startswith("2"):
            picked.append(l)
        elif not r and err.search(l) and "Deploy times" not in l and "runtime.SkipIf" not in l:
            picked.append(l)
    children = [n for n in names if n.startswith(name + "/")]
    if not picked and children:
        continue
    # Complement skips some tests for Synapse (runtime.SkipIf) when run with
    # -tags synapse_blacklist; without a tag it runs them and says so.
    skip_for = sorted({h for l in own + [x for n in children for x in lines.get(n, [])]
                       for m in [re.search(r"runtime\.SkipIf\(\[([^]]*)\]\)", l)] if m
                       for h in m.group(1).split()})
    print(f"### {name}" + (f"   [SkipIf: {' '.join(skip_for)}]" if skip_for else ""))
    for l in picked[:12]:
        print("   ", l[:600])
    if len(picked) > 12:
        print(f"    ... {len(picked) - 12} more lines")
    print()
