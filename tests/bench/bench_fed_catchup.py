#!/usr/bin/env python3
"""bench_fed_catchup.py — outbound federation catch-up, on the real binary:
how long a pvyhs takes to deliver N queued PDUs (default 10,000) to a
server that was down while they were sent.

A pvyhs (TLS federation listener, a test CA) and a receiving server played
by Python (the Peer of tests/integration/test_federation_sender.py: it
checks each transaction's X-Matrix signature and records it; connections
are kept alive, as servers do). The receiver takes part in the room through a
row of the sender's current_state. It is stopped, a user sends N messages
into the room (queued in PostgreSQL), it comes back and tells the sender so
with a signed request; the clock runs from that request until the
receiver holds all N PDUs.

usage: tests/bench/bench_fed_catchup.py [--bin build/bin/pvyhs] [--pdus 10000]
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
    try:
        peer = fs.Peer(pki, {hs.server_name: fs.verify_key_of(pki, hs)}).start()
        alice = fs.User(hs, "bfc_alice")
        room = alice.room()
        fs.let_in(hs, room, peer)
        peer.stop()

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
        fs.wait_until(lambda: fs.queued(hs, peer.server_name) == a.pdus, timeout=600,
                      what="the queue")
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
        peer.start()
        t1 = time.perf_counter()
        peer.signed_get(hs, "/_matrix/federation/v1/version")
        fs.wait_until(lambda: len(peer.pdus()) >= a.pdus, timeout=3600, what="the drain")
        t_drain = time.perf_counter() - t1
        done.set()
        sampler.join()
        fs.wait_until(lambda: fs.queued(hs, peer.server_name) == 0, timeout=60, what="empty")
        sizes = [len(b["pdus"]) for _, _, b in peer.txns]
        bodies = peer.bodies()
        assert len(bodies) == a.pdus and len(set(bodies)) == a.pdus, "lost or doubled PDUs"
        print(f"queue {a.pdus} PDUs (sent over the Client-Server API, {a.threads} clients): "
              f"{t_queue:.1f} s")
        print(f"drain {a.pdus} queued PDUs to a Python receiver: {t_drain:.2f} s, "
              f"{a.pdus / t_drain:.0f} PDUs/s, {len(sizes)} transactions "
              f"(max {max(sizes)} PDUs, mean {sum(sizes) / len(sizes):.1f})")
        print(f"sender RSS: {rss_before / 1024:.1f} MB before the drain, "
              f"{peak[0] / 1024:.1f} MB at most during it")
        peer.stop()
    finally:
        hs.stop()
        hs.__exit__(None, None, None)


if __name__ == "__main__":
    main()
