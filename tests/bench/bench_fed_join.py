#!/usr/bin/env python3
"""bench_fed_join.py — joining a big room of another pvyhs (issue 6's figure
"join of a 5,000-member room"), on the real binary over TLS.

Set-up (not measured): server A, a room created by alice with
m.room.guest_access can_join, and --members guests (POST /register?kind=guest:
no password to hash) who each POST /join, --threads at a time; optionally
--extra-state state events more (alice's org.example.bench events, one state
key each) for a room of members + extra state events.

Measured:
  partial   a user of server B joins (POST /join with via=A): B asks
            send_join with omit_members=true, so the call returns once the
            non-member state is stored; then the time until B's background
            resync has the full state (the fed_partial_state_rooms row gone,
            polled every 50 ms), and B's peak RSS over both.
  full      the same join by a user of server C started with
            PVYHS_FEDERATION_FULL_JOIN=1 (a knob for this comparison only):
            send_join without omit_members, the whole state stored before
            the call returns; C's peak RSS.
  synapse   (--synapse) the same join by a user of a Synapse (synapse_peer's
            TLS peer, the venv of scripts/synapse_venv.sh, on its own
            PostgreSQL): /join time (Synapse also joins with partial state
            when the resident offers it), then the time until Synapse's
            /joined_members lists every member, and Synapse's peak RSS.
Both joiners' /joined_members are checked to list every member at the end.

usage: tests/bench/bench_fed_join.py [--bin build/bin/pvyhs] [--members 5000]
                                     [--extra-state 0] [--threads 16]

Measured on the shared 2-core build machine (RelWithDebInfo, log_level debug):
  5,000 members:            partial /join 0.12-0.13 s, full state after
                            4.3-4.4 s, 45-47 MB; full join 3.7-3.9 s, 44 MB
  5,000 members + 15,000    partial /join 7.6 s (the non-member state is
  other state events:       all stored first), full state after 12.5 s,
                            118 MB; full join 12.1 s, 123 MB
  5,000 members, quiet machine, RelWithDebInfo (--synapse): partial /join
  0.11 s, full state after 4.13 s, 46 MB; full join 4.35 s, 44 MB; Synapse
  1.163.2 joining the same room: /join 0.17 s, every member listed after
  3.64 s, 170 MB
"""
import argparse
import concurrent.futures
import json
import os
import pathlib
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
sys.path.insert(0, os.path.dirname(__file__))
from bench_fed_catchup import make_pki, rss_kb  # noqa: E402

V3 = "/_matrix/client/v3"


def q(x):
    return urllib.parse.quote(x, safe="")


class Peak:
    """Samples a process's RSS until stopped."""

    def __init__(self, pid):
        self.pid, self.peak, self.done = pid, rss_kb(pid, "VmRSS"), threading.Event()
        self.th = threading.Thread(target=self.run)
        self.th.start()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, rss_kb(self.pid, "VmRSS"))
            time.sleep(0.01)

    def stop(self):
        self.done.set()
        self.th.join()
        return self.peak / 1024


def synapse_join(pki, room, sa, members):
    """A Synapse user joins the room on A: /join time, time until Synapse lists
    every member, Synapse's peak RSS (its process only, not its PostgreSQL)."""
    from synapse_peer import tls_peer
    syn = tls_peer(pki, prefix="bench-fed-join-syn-", log_level="WARNING").start()
    try:
        uid, tok = syn.register("bfjs_sam", "pw")
        peak = Peak(syn.proc.pid)
        t0 = time.perf_counter()
        syn.call("POST", f"{V3}/join/{q(room)}?server_name={q(sa.server_name)}", {}, token=tok,
                 timeout=1800)
        t_join = time.perf_counter() - t0
        n = 0
        while time.perf_counter() - t0 < 1800:
            st, out = syn.call("GET", f"{V3}/rooms/{q(room)}/joined_members", token=tok, ok=None,
                               timeout=600)
            n = len(json.loads(out).get("joined", {})) if st == 200 else 0
            if n >= members:
                break
            time.sleep(0.1)
        t_all = time.perf_counter() - t0
        rss = peak.stop()
        print(f"Synapse joining the same room: /join answered in {t_join:.2f} s, all {n} members "
              f"listed after {t_all:.2f} s; Synapse peak RSS {rss:.0f} MB")
    finally:
        syn.stop()
        syn.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("PVYHS_BIN"))
    ap.add_argument("--members", type=int, default=5000)
    ap.add_argument("--extra-state", type=int, default=0)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--synapse", action="store_true", help="also time a Synapse joining")
    a = ap.parse_args()
    if a.bin:
        os.environ["PVYHS_BIN"] = a.bin
    import harness
    if a.bin:
        harness.BIN = a.bin
    import test_federation_transport as ft
    ft.BIN = harness.BIN
    import test_federation_partial_join as pj

    pki = pathlib.Path(tempfile.mkdtemp(prefix="bench-fed-join-"))
    make_pki(pki)
    extra = harness.Server.NO_LIMITS + "allow_guest_access: true\n"
    sa = ft.FedServer(pki, prefix="bfja", extra=extra)
    sb = ft.FedServer(pki, prefix="bfjb", extra=extra)
    sc = ft.FedServer(pki, prefix="bfjc", extra=extra, env={"PVYHS_FEDERATION_FULL_JOIN": "1"})
    servers = [sa, sb, sc]
    try:
        for s in servers:
            s.start()
        alice, atok = pj.user(sa, "bfja_alice")
        bob, btok = pj.user(sb, "bfjb_bob")
        carol, ctok = pj.user(sc, "bfjc_carol")
        t0 = time.perf_counter()
        room, guests = pj.big_room(sa, atok, 0, "Bench")
        with concurrent.futures.ThreadPoolExecutor(a.threads) as ex:
            chunks = [a.members // a.threads + (i < a.members % a.threads) for i in range(a.threads)]
            guests = [g for part in ex.map(lambda n: pj.populate(sa, room, n, threads=1), chunks)
                      for g in part]
        t_members = time.perf_counter() - t0

        def state(i):
            r = sa.request("PUT", f"{V3}/rooms/{q(room)}/state/org.example.bench/k{i}",
                           {"i": i}, token=atok)
            assert r.status == 200, r
        t1 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            list(ex.map(state, range(a.extra_state)))
        t_state = time.perf_counter() - t1
        n_state = int(sa.psql(f"SELECT count(*) FROM current_state WHERE room_id = '{room}'"))
        print(f"room on A: {len(guests) + 1} members, {n_state} state events "
              f"(members joined in {t_members:.1f} s with {a.threads} clients"
              + (f", extra state in {t_state:.1f} s" if a.extra_state else "") + ")")
        everyone = {alice, bob, carol} | {g for g, _ in guests}

        # Partial state: B.
        peak = Peak(sb.proc.pid)
        t0 = time.perf_counter()
        r = sb.request("POST", f"{V3}/join/{q(room)}?via={q(sa.server_name)}", {}, token=btok,
                       timeout=900)
        t_join = time.perf_counter() - t0
        assert r.status == 200, r
        marked = pj.partial_rows(sb, room)
        while pj.partial_rows(sb, room):
            time.sleep(0.05)
            assert time.perf_counter() - t0 < 1800, "the resync did not finish"
        t_resync = time.perf_counter() - t0
        b_rss = peak.stop()
        # Full state: C.
        peak = Peak(sc.proc.pid)
        t0 = time.perf_counter()
        r = sc.request("POST", f"{V3}/join/{q(room)}?via={q(sa.server_name)}", {}, token=ctok,
                       timeout=1800)
        t_full = time.perf_counter() - t0
        assert r.status == 200, r
        c_rss = peak.stop()
        assert pj.partial_rows(sc, room) == 0
        for s, tok in ((sb, btok), (sc, ctok)):
            r = s.request("GET", f"{V3}/rooms/{q(room)}/joined_members", token=tok, timeout=120)
            got = set(r.json["joined"])
            assert everyone - {carol} <= got, (s.server_name, len(got), len(everyone))
        print(f"partial-state join (omit_members): /join answered in {t_join:.2f} s "
              f"(room marked partial: {'yes' if marked else 'no'}), full state after "
              f"{t_resync:.2f} s; B peak RSS {b_rss:.0f} MB")
        print(f"full-state join (PVYHS_FEDERATION_FULL_JOIN=1): /join answered in {t_full:.2f} s; "
              f"C peak RSS {c_rss:.0f} MB")
        if a.synapse:
            synapse_join(pki, room, sa, len(everyone) - 1)
    finally:
        for s in servers:
            s.stop()
            s.__exit__(None, None, None)


if __name__ == "__main__":
    main()
