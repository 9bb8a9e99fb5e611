#!/usr/bin/env python3
"""bench_media.py — the media figures, measured on the real binary:

  * upload and download throughput (MB/s) of 100 MB files over loopback HTTP,
    with at-rest encryption (pvyhs has no switch to store media in the clear;
    Synapse-like admins have no reason to want one), next to the cost of that
    encryption alone (build/bin/bench_media_crypto: the same secretstream,
    HMAC and chunk size, in memory) and what throughput would be without it;
  * thumbnail time for a 12-megapixel JPEG (first request: decode, scale,
    encode, store; second: served from the store);
  * RSS of pvyhs during a 1 GB upload and download.

usage: tests/bench/bench_media.py [--bin build/bin/pvyhs] [--runs 3]
Needs python3-pil. Prints one line per figure.
"""
import argparse
import hashlib
import http.client
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402
from harness import ROOT, Server  # noqa: E402

MB = 1 << 20


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def post(s, tok, blocks, size, ctype="application/octet-stream"):
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=600)
    c.request("POST", "/_matrix/media/v3/upload", body=blocks,
              headers={"Authorization": "Bearer " + tok, "Content-Length": str(size),
                       "Content-Type": ctype})
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 200, body
    return json.loads(body)["content_uri"][len("mxc://"):]


def get(s, tok, path):
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=600)
    c.request("GET", path, headers={"Authorization": "Bearer " + tok})
    r = c.getresponse()
    n = 0
    while True:
        chunk = r.read(MB)
        if not chunk:
            break
        n += len(chunk)
    c.close()
    assert r.status == 200
    return n


def throughput(s, tok, runs):
    block = os.urandom(MB)
    up, down = [], []
    for i in range(runs):
        blocks = [block[:-8] + i.to_bytes(8, "big")] + [block] * 99  # new content each run
        t0 = time.perf_counter()
        sid = post(s, tok, iter(blocks), 100 * MB)
        up.append(100 / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        assert get(s, tok, f"/_matrix/client/v1/media/download/{sid}") == 100 * MB
        down.append(100 / (time.perf_counter() - t0))
    return max(up), max(down)


def crypto_rates(bench_bin):
    out = subprocess.run([bench_bin, "100"], capture_output=True, text=True).stdout
    print(out.strip())
    seal = float(out.split("seal+address ")[1].split(" MB/s")[0])
    opn = float(out.split("open ")[1].split(" MB/s")[0])
    return seal, opn


def without(rate, crypto_rate):
    """Throughput with the crypto's time taken out (time per MB adds up), and
    the crypto's share of the time."""
    left = 1 / rate - 1 / crypto_rate
    share = min(100, 100 * rate / crypto_rate)
    return (f"~{1 / left:.0f} MB/s" if left > 0 else "not measurable (noise)"), share


def thumbnail_time(s, tok):
    from PIL import Image
    im = Image.effect_noise((4000, 3000), 64).convert("RGB")  # 12 MP, photo-like size
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    sid = post(s, tok, iter([data]), len(data), "image/jpeg")
    path = f"/_matrix/client/v1/media/thumbnail/{sid}?width=800&height=600&method=scale"
    t0 = time.perf_counter()
    get(s, tok, path)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    get(s, tok, path)
    again = time.perf_counter() - t0
    print(f"thumbnail of a 12-megapixel JPEG ({len(data) / MB:.1f} MB) at 800x600: "
          f"{first * 1000:.0f} ms first, {again * 1000:.1f} ms from the store")


def gigabyte_rss(s, tok):
    pid = s.proc.pid
    base, peak, stop = rss_kib(pid), [0], [False]

    def watch():
        while not stop[0]:
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.05)

    t = threading.Thread(target=watch)
    t.start()
    block = os.urandom(MB)
    t0 = time.perf_counter()
    sid = post(s, tok, iter([block] * 1024), 1024 * MB)
    t1 = time.perf_counter()
    get(s, tok, f"/_matrix/client/v1/media/download/{sid}")
    t2 = time.perf_counter()
    stop[0] = True
    t.join()
    print(f"1 GB upload {1024 / (t1 - t0):.0f} MB/s, download {1024 / (t2 - t1):.0f} MB/s; "
          f"RSS {base / 1024:.1f} MB before, {peak[0] / 1024:.1f} MB peak "
          f"(+{(peak[0] - base) / 1024:.1f} MB)")
    r = s.cli("media", "delete", "--config", s.config, sid)
    assert r.returncode == 0, r.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "pvyhs"))
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    harness.BIN = a.bin
    with Server(extra_yaml="max_upload_size: 2G\n") as s:
        s.start()
        s.add_user("bench")
        tok = s.login("bench")
        post(s, tok, iter([b"warm up"]), 7)
        up, down = throughput(s, tok, a.runs)
        print(f"100 MB files, encrypted at rest: upload {up:.0f} MB/s, download {down:.0f} MB/s "
              f"(best of {a.runs})")
        crypto = os.path.join(os.path.dirname(a.bin), "bench_media_crypto")
        if os.path.exists(crypto):
            seal, opn = crypto_rates(crypto)
            (u, us), (d, ds) = without(up, seal), without(down, opn)
            print(f"encryption's share of the time: upload {us:.0f}%, download {ds:.0f}%; "
                  f"without it (estimated): upload {u}, download {d}")
        thumbnail_time(s, tok)
        gigabyte_rss(s, tok)
    shutil.rmtree(s.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
