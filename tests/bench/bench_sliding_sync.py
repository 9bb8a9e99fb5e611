#!/usr/bin/python3
"""bench_sliding_sync.py — simplified sliding sync (MSC4186) as Element X
uses it, on the real pvyhs binary and its embedded PostgreSQL.

Set-up (not measured): one user in --rooms named rooms. One connection asks
for a list over every room (timeline_limit 1, Element X's room-list
required_state) with all five extensions.

Measured:
  initial         the first response (every room initial): time and bytes
  incremental     --samples times: a message in one room, then the next
                  response (that room only): median and max
  stored row      the connection's sliding_sync_connections row as stored
                  (TOAST-compressed) and as text

usage: /usr/bin/python3 tests/bench/bench_sliding_sync.py [--bin build/bin/pvyhs]
         [--rooms 200] [--samples 20]
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402

SS = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
V3 = "/_matrix/client/v3"
REQUIRED_STATE = [["m.room.name", ""], ["m.room.avatar", ""], ["m.room.encryption", ""],
                  ["m.room.member", "$LAZY"], ["m.room.member", "$ME"],
                  ["m.room.power_levels", ""], ["m.room.join_rules", ""],
                  ["m.room.canonical_alias", ""], ["m.room.topic", ""], ["m.room.create", ""],
                  ["m.room.history_visibility", ""]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("PVYHS_BIN", harness.BIN))
    ap.add_argument("--rooms", type=int, default=200)
    ap.add_argument("--samples", type=int, default=20)
    args = ap.parse_args()
    harness.BIN = os.path.abspath(args.bin)
    with harness.Server(name="bench") as s:
        s.start()
        s.add_user("bench")
        tok = s.login("bench")
        rooms = [s.request("POST", V3 + "/createRoom", {"name": f"R{i}"}, token=tok).json["room_id"]
                 for i in range(args.rooms)]
        body = {"conn_id": "room-list", "lists": {"all": {
            "ranges": [[0, args.rooms - 1]], "timeline_limit": 1, "required_state": REQUIRED_STATE}},
            "extensions": {k: {"enabled": True} for k in
                           ("e2ee", "to_device", "account_data", "receipts", "typing")}}
        t = time.perf_counter()
        r = s.request("POST", SS + "?timeout=0", body, token=tok)
        initial_ms = (time.perf_counter() - t) * 1000
        assert r.status == 200 and len(r.json["rooms"]) == args.rooms, r
        size = len(json.dumps(r.json))
        pos, times = r.json["pos"], []
        for i in range(args.samples):
            room = rooms[(i * 7) % args.rooms]
            s.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/b{i}",
                      {"msgtype": "m.text", "body": "x"}, token=tok)
            t = time.perf_counter()
            r = s.request("POST", SS + f"?timeout=0&pos={pos}", body, token=tok)
            times.append((time.perf_counter() - t) * 1000)
            assert list(r.json["rooms"]) == [room], r
            pos = r.json["pos"]
        row = s.psql("SELECT pg_column_size(rooms), length(rooms::text) FROM sliding_sync_connections"
                     " WHERE conn_id = 'room-list' ORDER BY used_ts DESC LIMIT 1").split("|")
        print(f"rooms {args.rooms}")
        print(f"initial         {initial_ms:.0f} ms, {size} bytes")
        print(f"incremental     median {statistics.median(times):.1f} ms, max {max(times):.1f} ms"
              f" ({args.samples} samples)")
        print(f"stored row      {row[0]} bytes stored, {row[1]} bytes as text")


if __name__ == "__main__":
    main()
