#!/usr/bin/env python3
"""bench_foundation.py — the foundation's figures, measured on the real binary:

  * cold first start (initdb included) to the first /versions answer, and warm start;
  * idle RSS of `pvyhs serve` (PostgreSQL not included);
  * /versions requests/s with wrk on this machine, next to a bare libmicrohttpd
    server (build/bin/mhd_hello) with the same threading.

usage: tests/bench/bench_foundation.py [--bin build/bin/pvyhs] [--seconds 10]
Needs wrk (Debian package). Prints one line per figure.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import ROOT, free_port  # noqa: E402


def wait_versions(port, proc, limit=120):
    t0 = time.time()
    while time.time() - t0 < limit:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_matrix/client/versions",
                                        timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.005)
    raise SystemExit("no answer")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def wrk(port, seconds):
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s",
                          f"http://127.0.0.1:{port}/_matrix/client/versions"],
                         capture_output=True, text=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "pvyhs"))
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="pvyhs-bench-")
    os.chmod(d, 0o755)
    port = free_port()
    cfg = os.path.join(d, "homeserver.yaml")
    with open(cfg, "w") as f:
        f.write(f"server_name: localhost\ndata_dir: data\nlog_level: warning\n"
                f"listeners:\n  - port: {port}\n    bind_addresses: ['127.0.0.1']\n"
                f"    resources: [{{names: [client, federation]}}]\n")
    try:
        for label in ("cold start (initdb)", "warm start"):
            t0 = time.time()
            p = subprocess.Popen([a.bin, "serve", "--config", cfg], stderr=subprocess.DEVNULL)
            wait_versions(port, p)
            print(f"{label}: {time.time() - t0:.2f} s to the first /versions answer")
            if label == "warm start":
                time.sleep(2)
                print(f"idle RSS of pvyhs serve: {rss_kib(p.pid) / 1024:.1f} MiB")
                rps = wrk(port, a.seconds)
                print(f"/versions with wrk (2 threads, 64 connections): {rps:,.0f} requests/s")
                print(f"RSS after the load: {rss_kib(p.pid) / 1024:.1f} MiB")
            p.send_signal(signal.SIGTERM)
            p.wait(60)
        hello = os.path.join(os.path.dirname(a.bin), "mhd_hello")
        hp = free_port()
        h = subprocess.Popen([hello, str(hp)])
        time.sleep(0.3)
        print(f"bare libmicrohttpd hello with wrk: {wrk(hp, a.seconds):,.0f} requests/s")
        h.send_signal(signal.SIGTERM)
        h.wait(10)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
