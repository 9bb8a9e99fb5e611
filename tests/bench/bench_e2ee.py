#!/usr/bin/env python3
"""bench_e2ee.py — end-to-end encryption figures, measured on the real binary:

  * POST /keys/query latency for the 500 members of a room, one of whom has
    10 devices (what a client asks before sending into such a room);
  * POST /keys/claim latency for that user's 10 devices;
  * to-device delivery latency: PUT /sendToDevice → the recipient's waiting
    /sync returns with it (p50/p99), when /sync carries to_device;
  * storage per device: identity keys, 50 one-time keys and a fallback key,
    as PostgreSQL sizes the tables.

usage: tests/bench/bench_e2ee.py [--bin build/bin/pvyhs] [--runs 50]
The 500 users and their keys are written with SQL (creating accounts over
the CLI would time argon2, not E2EE). Prints one line per figure.
"""
import argparse
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from e2ee_crypto import Device  # noqa: E402
from harness import Server, http  # noqa: E402

V3 = "/_matrix/client/v3"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def timed(fn, runs):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def line(name, ms):
    print(f"{name}: p50 {pct(ms, 50):.2f} ms, p99 {pct(ms, 99):.2f} ms ({len(ms)} runs)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("PVYHS_BIN"))
    ap.add_argument("--runs", type=int, default=50)
    a = ap.parse_args()
    if a.bin:
        os.environ["PVYHS_BIN"] = a.bin
        import harness
        harness.BIN = a.bin
    with Server() as s:
        s.start()
        sn = s.server_name
        # One user with 10 real devices and keys, over HTTP.
        s.add_user("bench_t")
        tokens = []
        for i in range(10):
            tok = s.login("bench_t")
            who = http(s.base, "GET", V3 + "/account/whoami", token=tok).json
            d = Device(who["user_id"], who["device_id"])
            r = http(s.base, "POST", V3 + "/keys/upload",
                     {"device_keys": d.device_keys(), "one_time_keys": d.one_time_keys(50),
                      "fallback_keys": d.fallback_key()}, token=tok)
            assert r.status == 200, r
            tokens.append(tok)
        per_dev = s.psql(
            "SELECT (pg_total_relation_size('e2e_device_keys') + pg_total_relation_size('e2e_one_time_keys')"
            " + pg_total_relation_size('e2e_fallback_keys')) / 10")
        print(f"storage per device (identity keys, 50 one-time keys, a fallback key; table and index pages): "
              f"{int(per_dev) / 1024:.1f} KiB")
        # 499 more members with one device each, written directly.
        s.psql(f"""
            INSERT INTO users (user_id, created_ts) SELECT '@bench_m' || g || ':{sn}', 0 FROM generate_series(1, 499) g;
            INSERT INTO devices (user_id, device_id, created_ts) SELECT '@bench_m' || g || ':{sn}', 'DEV' || g, 0
                FROM generate_series(1, 499) g;
            INSERT INTO e2e_device_keys (user_id, device_id, key_json, added_ts)
                SELECT d.user_id, d.device_id, k.key_json, 0 FROM devices d,
                (SELECT key_json FROM e2e_device_keys LIMIT 1) k WHERE d.user_id LIKE '@bench_m%';""")
        members = [f"@bench_m{g}:{sn}" for g in range(1, 500)] + [f"@bench_t:{sn}"]
        q = {"device_keys": {u: [] for u in members}}
        r = http(s.base, "POST", V3 + "/keys/query", q, token=tokens[0])
        assert r.status == 200 and len(r.json["device_keys"]) == 500, r
        assert len(r.json["device_keys"][f"@bench_t:{sn}"]) == 10
        line("/keys/query, 500 users (one with 10 devices)",
             timed(lambda: http(s.base, "POST", V3 + "/keys/query", q, token=tokens[0]), a.runs))
        devs = list(r.json["device_keys"][f"@bench_t:{sn}"])
        c = {"one_time_keys": {f"@bench_t:{sn}": {d: "signed_curve25519" for d in devs}}}
        line("/keys/claim, 10 devices",
             timed(lambda: http(s.base, "POST", V3 + "/keys/claim", c, token=tokens[0]), a.runs))
        # To-device delivery into a waiting /sync.
        recv, send = tokens[1], tokens[2]
        rdev = http(s.base, "GET", V3 + "/account/whoami", token=recv).json["device_id"]
        since = http(s.base, "GET", V3 + "/sync?timeout=0", token=recv).json["next_batch"]
        lat = []
        for i in range(a.runs):
            got = {}

            def wait():
                r = http(s.base, "GET", V3 + f"/sync?timeout=30000&since={since}", token=recv, timeout=40)
                got["t"] = time.perf_counter()
                got["r"] = r.json

            th = threading.Thread(target=wait)
            th.start()
            time.sleep(0.05)  # let the sync park
            t0 = time.perf_counter()
            http(s.base, "PUT", V3 + f"/sendToDevice/m.bench/{i}",
                 {"messages": {f"@bench_t:{sn}": {rdev: {"i": i}}}}, token=send)
            th.join()
            if not got["r"].get("to_device", {}).get("events"):
                print("to-device delivery latency: not measured (/sync has no to_device yet)")
                break
            lat.append((got["t"] - t0) * 1000)
            since = got["r"]["next_batch"]
        if lat:
            line("to-device delivery (send -> waiting sync returns)", lat)


if __name__ == "__main__":
    main()
