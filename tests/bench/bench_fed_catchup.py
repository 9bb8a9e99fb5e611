#!/usr/bin/env python3
"""bench_fed_catchup.py — outbound federation catch-up, on the real binary:
how long a pvyhs takes to deliver N queued PDUs (default 10,000) to a
server that was down while they were sent.

A pvyhs (TLS federation listener, a test CA) and a receiving server:
  --receiver python  (default) played by Python (the Peer of
      tests/integration/test_federation_sender.py: it checks each
      transaction's X-Matrix signature and records it; connections are kept
      alive, as servers do); it takes part in the room through a row of the
      sender's current_state. This measures the sender alone.
  --receiver pvyhs   a second pvyhs whose user joined the room over
      federation; its inbound /send checks, authorises and stores every PDU,
      so this measures the pair.
The receiver is stopped, a user sends N messages into the room (queued in
PostgreSQL), the receiver comes back and tells the sender so with a signed
request; the clock runs from that request until the receiver holds all N
PDUs (for pvyhs: until its 200s emptied the sender's queue).

usage: tests/bench/bench_fed_catchup.py [--bin build/bin/pvyhs] [--pdus 10000]
                                        [--receiver python|pvyhs]
Prints: the time to queue, the time to drain, PDUs per second, transactions
and their sizes, the sender's peak RSS.
"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))


def make_pki(d):
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,"
                               "keyEncipherment\nextendedKeyUsage=serverAuth\n"
                               "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")


def rss_kb(pid, field="VmHWM"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("PVYHS_BIN"))
    ap.add_argument("--pdus", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--receiver", choices=["python", "pvyhs"], default="python")
    ap.add_argument("--profile", metavar="FILE",
                    help="perf record -g of the receiving pvyhs during the drain into FILE")
    ap.add_argument("--pg-stats", action="store_true",
                    help="print the receiving pvyhs's statements during the drain "
                         "(pg_stat_statements: calls per PDU, time)")
    a = ap.parse_args()
    if a.bin:
        os.environ["PVYHS_BIN"] = a.bin
    import harness
    if a.bin:
        harness.BIN = a.bin
    import test_federation_transport as ft
    ft.BIN = harness.BIN
    import test_federation_sender as fs

    pki = pathlib.Path(tempfile.mkdtemp(prefix="bench-fed-pki-"))
    make_pki(pki)
    hs = ft.FedServer(pki, prefix="bfc", extra=harness.Server.NO_LIMITS)
    hs.start()
    hs2 = None
    try:
        alice = fs.User(hs, "bfc_alice")
        if a.receiver == "python":
            peer = fs.Peer(pki, {hs.server_name: fs.verify_key_of(pki, hs)}).start()
            room = alice.room()
            fs.let_in(hs, room, peer)
            dest = peer.server_name
            down, up = peer.stop, peer.start
        else:
            hs2 = ft.FedServer(pki, prefix="bfc2", extra=harness.Server.NO_LIMITS)
            hs2.start()
            bob = fs.User(hs2, "bfc_bob")
            room = alice.req("POST", "/createRoom", {"preset": "public_chat"}).json["room_id"]
            r = bob.req("POST", f"/join/{fs.q(room)}?server_name={fs.q(hs.server_name)}", {})
            assert r.status == 200, r
            dest = hs2.server_name

            if a.pg_stats:  # loaded when the receiver comes back
                hs2.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")

            def down():
                assert hs2.stop() == 0

            def up():
                hs2.start()
        down()

        t0 = time.perf_counter()
        per = a.pdus // a.threads
        counts = [per] * a.threads
        counts[0] += a.pdus - per * a.threads

        def send(k):
            u = fs.User.__new__(fs.User)
            u.hs, u.user_id, u.token, u.n = hs, alice.user_id, alice.token, k * 10 ** 7
            for i in range(counts[k]):
                u.say(room, f"catch-up {k} {i}")
        ths = [threading.Thread(target=send, args=(k,)) for k in range(a.threads)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        fs.wait_until(lambda: fs.queued(hs, dest) == a.pdus, timeout=600, what="the queue")
        t_queue = time.perf_counter() - t0
        rss_before = rss_kb(hs.proc.pid, "VmRSS")
        peak = [rss_before]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kb(hs.proc.pid, "VmRSS"))
                time.sleep(0.01)
        sampler = threading.Thread(target=sample)
        sampler.start()
        up()
        t1 = time.perf_counter()
        if a.receiver == "python":
            peer.signed_get(hs, "/_matrix/federation/v1/version")
            fs.wait_until(lambda: len(peer.pdus()) >= a.pdus, timeout=3600, what="the drain")
        else:
            prof = subprocess.Popen(["perf", "record", "--call-graph", "dwarf,16384", "-F", "499", "-o", a.profile, "-p",
                                     str(hs2.proc.pid)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL) if a.profile else None
            if a.pg_stats:
                hs2.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                hs2.psql("SELECT pg_stat_statements_reset()")
            hs2.fed_request(hs.server_name, "/_matrix/federation/v1/version")
            fs.wait_until(lambda: fs.queued(hs, dest) == 0, timeout=3600, what="the drain")
            if prof:
                prof.send_signal(2)
                prof.wait()
            if a.pg_stats:
                print(hs2.psql(
                    f"SELECT round(calls::numeric / {a.pdus}, 2) AS per_pdu,"
                    " round(total_exec_time::numeric) AS ms,"
                    " left(regexp_replace(query, '\\s+', ' ', 'g'), 110)"
                    " FROM pg_stat_statements ORDER BY calls DESC LIMIT 40"))
        t_drain = time.perf_counter() - t1
        done.set()
        sampler.join()
        fs.wait_until(lambda: fs.queued(hs, dest) == 0, timeout=60, what="empty")
        if a.receiver == "python":
            sizes = [len(b["pdus"]) for _, _, b in peer.txns]
            bodies = peer.bodies()
            assert len(bodies) == a.pdus and len(set(bodies)) == a.pdus, "lost or doubled PDUs"
            txns = f"{len(sizes)} transactions (max {max(sizes)} PDUs, mean {sum(sizes) / len(sizes):.1f})"
            who = "a Python receiver"
        else:
            got = int(hs2.psql(f"SELECT count(*) FROM events WHERE room_id = '{room}'"
                               " AND type = 'm.room.message' AND rejected_reason IS NULL"))
            assert got == a.pdus, f"hs2 stored {got} of {a.pdus} messages"
            txns = f"{a.pdus // 50 + (a.pdus % 50 > 0)} transactions of up to 50 PDUs"
            who = "a pvyhs receiver (inbound /send stores each PDU)"
        print(f"queue {a.pdus} PDUs (sent over the Client-Server API, {a.threads} clients): "
              f"{t_queue:.1f} s")
        print(f"drain {a.pdus} queued PDUs to {who}: {t_drain:.2f} s, "
              f"{a.pdus / t_drain:.0f} PDUs/s, {txns}")
        print(f"sender RSS: {rss_before / 1024:.1f} MB before the drain, "
              f"{peak[0] / 1024:.1f} MB at most during it")
        if a.receiver == "python":
            peer.stop()
    finally:
        for s in (hs, hs2):
            if s:
                s.stop()
                s.__exit__(None, None, None)


if __name__ == "__main__":
    main()
