#!/usr/bin/python3
"""bench_directory.py — /publicRooms latency with many published channels
(issue 7's figure), on the real pvyhs binary and its embedded PostgreSQL.

Set-up (not measured): --users local users create --rooms public channels
through POST /createRoom (preset public_chat, visibility public), --threads
at a time over keep-alive connections; every 100th is a space, every 25th
gets one to four more members so the order (largest first) is not just room
IDs. Creation stops at --setup-seconds whatever the count, and the figures
say how many channels there were.

Measured (after a few unmeasured warm-up requests), each --samples times:

  first page      GET /publicRooms?limit=20
  page walk       POST /publicRooms {limit: 100, since} through the whole
                  directory, one page after another (every page timed)
  search hit      POST with filter.generic_search_term matching ~1% of rooms
  search miss     POST with a term that matches nothing
  spaces          POST with filter.room_types ["m.space"]
  count check     total_room_count_estimate equals the rooms published

pvyhs reuses a filter's total_room_count_estimate for 5 s (counting scans
every published room), so repeated requests measure the page query itself;
a search scans every published room's name, topic and alias (no trigram
index), which the search rows show.

usage: /usr/bin/python3 tests/bench/bench_directory.py [--bin build/bin/pvyhs]
         [--rooms 10000] [--users 16] [--threads 16] [--samples 200]
         [--setup-seconds 900] [--quick]
--quick: 1,000 rooms, 50 samples (a smoke test).
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402


class Conn:
    """One keep-alive HTTP connection to the server."""

    def __init__(self, port, token=None):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.token = token

    def req(self, method, path, body=None):
        h = {"Content-Type": "application/json"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (0, 1):
            try:
                self.c.request(method, path, body=data, headers=h)
                r = self.c.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # The server closed an idle keep-alive connection: open another.
                self.c.close()
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def setup(server, args):
    tokens = []
    for i in range(args.users):
        server.add_user(f"bd{i}")
        tokens.append(server.login(f"bd{i}"))
    deadline = time.time() + args.setup_seconds
    next_i = [0]
    lock = threading.Lock()
    made = []
    errors = []

    def worker(k):
        try:
            work(k)
        except Exception as e:  # a failed worker must not hang the run
            errors.append(("exception", repr(e)))

    def work(k):
        conn = Conn(server.port, tokens[k % len(tokens)])
        others = [Conn(server.port, t) for t in tokens]
        while time.time() < deadline:
            with lock:
                i = next_i[0]
                if i >= args.rooms:
                    return
                next_i[0] += 1
            body = {"preset": "public_chat", "visibility": "public", "name": f"bench channel {i}",
                    "topic": f"topic-{i % 100} about things"}
            if i % 100 == 0:
                body["creation_content"] = {"type": "m.space"}
            st, j = conn.req("POST", "/_matrix/client/v3/createRoom", body)
            if st != 200:
                errors.append((st, j))
                return
            room = j["room_id"]
            if i % 25 == 0:
                for o in others[: 1 + (i // 25) % 4]:
                    if o.token != conn.token:
                        o.req("POST", f"/_matrix/client/v3/join/{urllib.parse.quote(room, safe='')}", {})
            with lock:
                made.append(room)

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"createRoom failed: {errors[:3]}")
    return tokens[0], len(made), time.time() - t0


def timed(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def measure(server, token, n_rooms, args):
    c = Conn(server.port, token)
    for _ in range(5):
        c.req("GET", "/_matrix/client/v3/publicRooms?limit=20")
    rows = []

    def check(st, j):
        assert st == 200, (st, j)
        return j

    rows.append(("first page (GET, limit 20)",
                 timed(lambda: check(*c.req("GET", "/_matrix/client/v3/publicRooms?limit=20")), args.samples)))
    walk, seen, since = [], 0, None
    while True:
        body = {"limit": 100, **({"since": since} if since else {})}
        t = time.perf_counter()
        j = check(*c.req("POST", "/_matrix/client/v3/publicRooms", body))
        walk.append((time.perf_counter() - t) * 1000)
        seen += len(j["chunk"])
        since = j.get("next_batch")
        if not since:
            break
    rows.append((f"page walk (POST, limit 100, {len(walk)} pages)", walk))
    hit = {"limit": 20, "filter": {"generic_search_term": "topic-42 "}}
    j = check(*c.req("POST", "/_matrix/client/v3/publicRooms", hit))
    hits = j["total_room_count_estimate"]
    rows.append((f"search hit ({hits} rooms match)",
                 timed(lambda: check(*c.req("POST", "/_matrix/client/v3/publicRooms", hit)), args.samples)))
    miss = {"limit": 20, "filter": {"generic_search_term": "no-such-channel-anywhere"}}
    rows.append(("search miss", timed(lambda: check(*c.req("POST", "/_matrix/client/v3/publicRooms", miss)),
                                      args.samples)))
    spaces = {"limit": 20, "filter": {"room_types": ["m.space"]}}
    j = check(*c.req("POST", "/_matrix/client/v3/publicRooms", spaces))
    rows.append((f"spaces only ({j['total_room_count_estimate']} spaces)",
                 timed(lambda: check(*c.req("POST", "/_matrix/client/v3/publicRooms", spaces)), args.samples)))
    total = check(*c.req("GET", "/_matrix/client/v3/publicRooms?limit=1"))["total_room_count_estimate"]
    return rows, seen, total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("PVYHS_BIN", harness.BIN))
    ap.add_argument("--rooms", type=int, default=10000)
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--setup-seconds", type=int, default=900)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.rooms, args.samples = 1000, 50
    harness.BIN = args.bin
    with harness.Server(name="bench") as server:
        server.start()
        token, n, secs = setup(server, args)
        print(f"set-up: {n} published channels in {secs:.0f} s ({n / secs:.0f}/s, {args.threads} threads)")
        rows, seen, total = measure(server, token, n, args)
        print(f"\n/publicRooms with {n} published channels (ms)")
        print(f"{'':48} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
        for name, xs in rows:
            print(f"{name:48} {statistics.median(xs):8.2f} {percentile(xs, 95):8.2f} "
                  f"{percentile(xs, 99):8.2f} {max(xs):8.2f}")
        print(f"\npage walk saw {seen} rooms; total_room_count_estimate {total}")
        if seen != n or total != n:
            raise SystemExit("the directory did not list every channel exactly once")


if __name__ == "__main__":
    main()
