#!/usr/bin/env python3
"""summarize.py LOG... — the summary of SyTest runs (TAP output, -O tap).

Reads logs of run-tests.pl (its TAP lines and the file names it prints to
stderr, interleaved by run.sh) and prints counts per test directory, then
every test as PASS / FAIL / SKIP / XFAIL (SyTest's "expected fail") with its
file. With several logs (runs of different directories), a test seen in a
later log replaces the earlier result.
"""
import re
import sys
from collections import OrderedDict

FILE_RE = re.compile(r"^(tests/\S+\.pl):$")
OK_RE = re.compile(r"^ok \d+ (.*?)(?: # skip (.*))?$")
NOT_OK_RE = re.compile(r"^not ok \d+ (\(expected fail\) )?(.*?)(?: # TODO expected fail)?$")


def parse(path, results):
    current = "?"
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            # A file name can follow "    Test N name... " on the same line
            # (stderr, unterminated), so look for it at the end too.
            m = re.search(r"(tests/\S+\.pl):$", line)
            if m and (FILE_RE.match(line) or not line.startswith(("ok ", "not ok "))):
                current = m.group(1)
                continue
            m = OK_RE.match(line)
            if m:
                name, skip = m.group(1), m.group(2)
                results[(current, name)] = ("SKIP " + skip) if skip else "PASS"
                continue
            m = NOT_OK_RE.match(line)
            if m:
                results[(current, m.group(2))] = "XFAIL" if m.group(1) else "FAIL"


def directory(path):
    parts = path.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else path


def main():
    results = OrderedDict()
    for path in sys.argv[1:]:
        parse(path, results)
    per_dir = OrderedDict()
    for (path, _), status in results.items():
        c = per_dir.setdefault(directory(path), {"PASS": 0, "FAIL": 0, "SKIP": 0, "XFAIL": 0})
        c[status.split()[0]] += 1
    total = {"PASS": 0, "FAIL": 0, "SKIP": 0, "XFAIL": 0}
    print("%-32s %5s %5s %5s %5s" % ("directory / file", "pass", "fail", "skip", "xfail"))
    for d, c in sorted(per_dir.items()):
        print("%-32s %5d %5d %5d %5d" % (d, c["PASS"], c["FAIL"], c["SKIP"], c["XFAIL"]))
        for k in total:
            total[k] += c[k]
    print("%-32s %5d %5d %5d %5d" % ("total", total["PASS"], total["FAIL"], total["SKIP"], total["XFAIL"]))
    print()
    print("== failing ==")
    for (path, name), status in results.items():
        if status == "FAIL":
            print("FAIL %s: %s" % (path, name))
    print()
    print("== every test ==")
    for (path, name), status in results.items():
        print("%s %s: %s" % (status, path, name))


if __name__ == "__main__":
    main()
