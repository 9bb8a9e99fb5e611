#!/usr/bin/python3
"""bench_client.py — the Client-Server API figures of issue 4, measured on the real
pvyhs binary (its embedded PostgreSQL) and, in the same run on the same machine,
on Synapse (its own throwaway PostgreSQL cluster), printed side by side.

usage: /usr/bin/python3 tests/bench/bench_client.py [--bin build/bin/pvyhs]
         [--no-synapse] [--workloads initial,send,tput,syncwait] [--quick]
         [--profile DIR] [--keep] [sizes: see --help]

Build pvyhs first (RelWithDebInfo: cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo); this
script builds nothing. Needs wrk, PostgreSQL's binaries (pgbench), psql and, for
Synapse, scripts/synapse_venv.sh (run to find the venv). The default run takes
7-9 minutes on 2 cores (--budget, 9.5 minutes, bounds it), two thirds of it
Synapse's; --no-synapse about 2-3.
--quick scales every size down (a smoke test of a minute or two).
--profile DIR records `perf record -g` of pvyhs during each workload into DIR
(read with `perf report -i DIR/<workload>.perf.data`).

Workloads (--workloads, comma-separated, run in the order given):

  initial   initial /sync (no since, default filter) of a user in --initial-rooms
            rooms it created (public_chat preset with a name): time and bytes,
            median of 3 (the timeout parameter differs between the 3 so Synapse's
            response cache is not hit). Then the same user's incremental /sync
            after one new message in one of its rooms (median of 5): what every
            wake-up of such a user costs. Running first, it also gives the
            database some history before the other workloads.
  send      message send latency: one user, one room, sequential
            PUT /rooms/{id}/send/m.room.message/{txn} on one keep-alive connection
            (--send-count, after 200 unmeasured warm-up sends). Goal p50 <= 2 ms.
  tput      sustained messages/s: --tput-senders users over --tput-rooms rooms
            (each room has two of the senders), --tput-conns concurrent keep-alive
            connections driven by wrk for --tput-seconds (after a 3 s warm-up);
            every request has a fresh txn ID. Goal >= 5,000/s on 2 cores. Beside it
            PostgreSQL's own single-row commit rate (pgbench, a one-row INSERT per
            transaction, 1 and --tput-conns clients) on a throwaway cluster with
            default settings, like the embedded one.
  syncwait  --sync-conns concurrent waiting GET /sync (timeout 5 min) from
            --sync-users users: --probe-users of them have --probe-conns
            connections each and share one room each with a sender; the others
            (the background) split the rest of the connections, each in a room of
            its own. Then --probes messages, one at a time, round-robin into the
            probe rooms: each wakes exactly --probe-conns waiting requests, and the
            send->wake latency is from writing the PUT to the complete /sync response
            that holds the message ("first wake": the earliest of the probe-conns).
            Each connection first asks GET /versions (a long-poll follows earlier
            requests on a kept-alive connection), and every /sync response is
            followed at once by the next /sync, as a client does.
            Reports the server's threads and RSS with all connections parked.
            Goal p99 <= 10 ms. Opening stops after --sync-open-limit seconds, or
            sooner to keep the whole run within --budget (Synapse parks 65-100
            requests/s on this 2-core machine: about 8,000 in 2 minutes), and the
            report says how many were parked.

RSS (VmRSS of the server process; PostgreSQL not included) is reported at idle
after start, the peak under the tput and syncwait loads, and at idle at the end.
Each measured phase logs the CPU used by the server, by its PostgreSQL and by
other processes on the machine (it may be shared: before each measurement the
script waits up to --quiet-wait seconds for the others to go quiet, and says
when they did not).

Ratios say how many times better pvyhs is (synapse/pvyhs for times and memory,
pvyhs/synapse for rates); below 1 means Synapse is better.

Set-up that is not measured: pvyhs users come from `pvyhs user add` then /login;
Synapse users from the shared-secret admin API (bcrypt_rounds 4 so registering
is quick). Both get their rate limits out of the way; Synapse gets log level WARNING, presence
left on (its default), PostgreSQL over a unix socket as pvyhs has. /sync
long-polls use set_presence=offline so presence does not wake them. After each
workload's set-up both databases get a VACUUM ANALYZE, as autovacuum would
give them within a minute or two: a fresh pvyhs keeps generic plans made on
near-empty tables until then, and the vacuum of the tables the messages/s
workload filled would otherwise run during the next workload's measurement
(--no-analyze shows that state). The messages/s workload ends with a
CHECKPOINT: its 500 MB of WAL would start one during the next workload. No
workload is measured right after a forced checkpoint (the full-page writes
that follow one would weigh on it). Rooms carry a random
creation_content key: room version 12 derives the room ID from the create event,
and concurrent createRoom calls of one user in the same millisecond would
otherwise collide. Everything listens on 127.0.0.1 only, every phase is bounded
in count and in time, and the servers run one after the other, never together.
"""
import argparse
import asyncio
import concurrent.futures
import http.client
import json
import os
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import ROOT, free_port  # noqa: E402
from pgserver import PgServer, _bindir  # noqa: E402
from synapse_peer import Synapse as SynapsePeer  # noqa: E402

PASSWORD = "bench horse battery"
CS = "/_matrix/client/v3"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def q(s):
    return urllib.parse.quote(s, safe="")


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    i = int(k)
    return xs[i] + (xs[min(i + 1, len(xs) - 1)] - xs[i]) * (k - i)


# ---------------------------------------------------------------- processes

def proc_status(pid):
    """(RSS in MiB, threads) of a live process."""
    with open(f"/proc/{pid}/status") as f:
        s = f.read()
    return (int(re.search(r"VmRSS:\s+(\d+)", s).group(1)) / 1024,
            int(re.search(r"Threads:\s+(\d+)", s).group(1)))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except OSError:
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for k in kids.get(p, []):
            out.append(k)
            todo.append(k)
    return out


def tree_cpu(pids):
    t = 0.0
    for p in pids:
        try:
            t += cpu_seconds(p)
        except OSError:
            pass
    return t


class CpuMeter:
    """CPU used by the server process and by its PostgreSQL between start and stop."""

    def __init__(self, target):
        self.t = target

    def __enter__(self):
        self.pg = self.t.pg_pids()
        self.s0, self.p0, self.w0 = cpu_seconds(self.t.pid), tree_cpu(self.pg), time.time()
        self.m0, self.b0 = machine_busy(), bench_cpu()
        return self

    def __exit__(self, *exc):
        wall = time.time() - self.w0
        server, pg = cpu_seconds(self.t.pid) - self.s0, tree_cpu(self.pg) - self.p0
        self.server, self.postgres = server / wall * 100, pg / wall * 100
        bench = bench_cpu() - self.b0
        self.others = max(0.0, machine_busy() - self.m0 - server - pg - bench) / wall * 100
        return False

    def text(self):
        return (f"CPU {self.t.name} {self.server:.0f}% + PostgreSQL {self.postgres:.0f}%, "
                f"other processes {self.others:.0f}%")


def machine_busy():
    """CPU seconds the whole machine has been busy (all cores)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def bench_cpu():
    """CPU of this process and its finished children (wrk, pgbench)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class PeakSampler(threading.Thread):
    """The highest RSS and thread count of a process while a load runs."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.rss, self.threads = pid, 0.0, 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                r, t = proc_status(self.pid)
                self.rss, self.threads = max(self.rss, r), max(self.threads, t)
            except OSError:
                return
            self.halt.wait(0.2)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        self.join()
        return False


def wait_idle(pid, limit, share=0.05):
    """Wait until the process uses under `share` of a core over half a second."""
    deadline = time.time() + limit
    while time.time() < deadline:
        c0 = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - c0 < share * 0.5:
            return True
    return False


# ---------------------------------------------------------------- blocking HTTP

class Http:
    """A keep-alive HTTP/1.1 connection for the set-up and the sequential sends."""

    def __init__(self, port):
        self.port, self.c = port, None

    def req(self, method, path, body=None, token=None, timeout=120):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if token:
            headers["Authorization"] = "Bearer " + token
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                self.c.request(method, path, data, headers)
                r = self.c.getresponse()
                return r.status, r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A keep-alive connection the server closed while idle: retry once.
                self.c.close()
                self.c = None
                if attempt:
                    raise

    def call(self, method, path, body=None, token=None, ok=(200,)):
        st, raw = self.req(method, path, body, token)
        if st not in ok:
            raise RuntimeError(f"{method} {path}: {st} {raw[:300]!r}")
        return json.loads(raw) if raw else {}

    def close(self):
        if self.c:
            self.c.close()


_local = threading.local()


def pmap(fn, items, workers, port):
    """fn(http, item) over items with `workers` threads, each with its own connection."""
    def one(item):
        if getattr(_local, "port", None) != port:
            _local.http, _local.port = Http(port), port
        return fn(_local.http, item)
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        return list(ex.map(one, items))


# ---------------------------------------------------------------- the servers

# Rate limits out of the way of the load, as for Synapse.
BIG = "{per_second: 1000000, burst_count: 1000000}"
PVYHS_NO_LIMITS = f"""rc_message: {BIG}
rc_registration: {BIG}
rc_admin_redaction: {BIG}
rc_login: {{address: {BIG}, account: {BIG}, failed_attempts: {BIG}}}
rc_joins: {{local: {BIG}, remote: {BIG}}}
rc_invites: {{per_room: {BIG}, per_user: {BIG}}}
"""


class Pvyhs:
    name = "pvyhs"
    setup_workers = 2

    def __init__(self, binary, keep):
        self.bin, self.keep = binary, keep
        self.dir = tempfile.mkdtemp(prefix="pvyhs-bench-")
        os.chmod(self.dir, 0o755)  # the embedded cluster's user must reach it
        self.port = free_port()
        self.config = os.path.join(self.dir, "homeserver.yaml")
        with open(self.config, "w") as f:
            f.write(f"""server_name: "localhost:{self.port}"
public_baseurl: "http://localhost:{self.port}/"
data_dir: data
signing_key_path: signing.key
log_level: warning
listeners:
  - port: {self.port}
    bind_addresses: ['127.0.0.1']
    type: http
    resources:
      - names: [client, federation]
""" + PVYHS_NO_LIMITS)
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.dir, "pvyhs.log"), "ab")
        self.proc = subprocess.Popen([self.bin, "serve", "--config", self.config], stdout=self.log,
                                     stderr=self.log, cwd=self.dir)
        wait_health(self.port, self.proc, 120)
        self.pid = self.proc.pid

    def pg_pids(self):
        return descendants(self.pid)

    def sql(self, *stmts):
        psql(["-h", os.path.join(self.dir, "data", "pg", "run"), "-U", "pvyhs", "-d", "pvyhs"],
             stmts)

    def add_users(self, names):
        def add(name):
            r = subprocess.run([self.bin, "user", "add", "--config", self.config, name,
                                "--password", PASSWORD], capture_output=True, text=True,
                               timeout=120)
            if r.returncode != 0:
                raise RuntimeError(f"pvyhs user add {name}: {r.stderr}")
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            list(ex.map(add, names))

        def login(h, name):
            j = h.call("POST", CS + "/login", {
                "type": "m.login.password", "identifier": {"type": "m.id.user", "user": name},
                "password": PASSWORD})
            return name, j["access_token"]
        return dict(pmap(login, names, 2, self.port))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


class Synapse(SynapsePeer):
    """Synapse on its own cluster (tests/integration/synapse_peer.py), with
    what the workloads ask of a target."""
    name = "synapse"
    setup_workers = 4

    def __init__(self, keep):
        super().__init__(prefix="synapse-bench-", keep=keep)

    def start(self):
        super().start(timeout=180)

    def pg_pids(self):
        return descendants(self.pg.proc.pid)

    def sql(self, *stmts):
        psql(["-h", self.pg.dir, "-p", str(self.pg.port), "-U", "postgres", "-d", "synapse"],
             stmts)

    def add_users(self, names):
        def reg(h, name):
            return name, self.register(name, PASSWORD, call=h.call)[1]
        return dict(pmap(reg, names, self.setup_workers, self.port))

    def stop(self):
        super().stop()
        self.cleanup()


def psql(conn, stmts):
    """Run stmts, one after the other, on a server's database."""
    r = subprocess.run(["psql", *conn, "-qAt", *[x for q in stmts for x in ("-c", q)]],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"{'; '.join(stmts)}: {r.stderr}")


def settle(t, a):
    """After a workload's set-up: fresh statistics (unless --no-analyze), then quiet."""
    if not a.no_analyze:
        t.sql("VACUUM ANALYZE")  # as autovacuum would within a minute or two
    wait_idle(t.pid, 30)
    wait_machine_quiet(t, a.quiet_wait)


def wait_machine_quiet(t, limit, share=0.25):
    """This machine may be shared: wait (at most `limit` s) until processes other than
    the server, its PostgreSQL and this benchmark use under `share` of a core."""
    deadline, others = time.time() + limit, 0.0
    while True:
        with CpuMeter(t) as m:
            time.sleep(1)
        others = m.others / 100
        if others < share or time.time() >= deadline:
            break
    if others >= share:
        log(f"the machine is busy: other processes use {others * 100:.0f}% of a core")


def wait_health(port, proc, limit):
    deadline = time.time() + limit
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/_matrix/client/versions")
            if c.getresponse().status == 200:
                c.close()
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not answer /versions in time")


def create_rooms(t, token, n, preset, workers=None):
    def one(h, i):
        # The nonce keeps concurrent create events of one user apart: in room
        # version 12 the room ID is the create event's hash.
        return h.call("POST", CS + "/createRoom", {
            "preset": preset, "name": f"bench {i}",
            "creation_content": {"bench_nonce": secrets.token_hex(8)}}, token)["room_id"]
    return pmap(one, range(n), workers or t.setup_workers, t.port)


def join_all(t, pairs):
    """pairs of (token, room_id)."""
    pmap(lambda h, p: h.call("POST", f"{CS}/join/{q(p[1])}", {}, p[0]), pairs,
         t.setup_workers, t.port)


def send_path(room, txn):
    return f"{CS}/rooms/{q(room)}/send/m.room.message/{txn}"


# ---------------------------------------------------------------- workloads

def w_send(t, tok, a, res):
    h = Http(t.port)
    room = h.call("POST", CS + "/createRoom", {"preset": "private_chat"}, tok)["room_id"]
    run = secrets.token_hex(4)
    body = {"msgtype": "m.text", "body": "hello, this is a benchmark message"}
    for i in range(200):  # so the statistics ANALYZE takes describe a used room
        h.call("PUT", send_path(room, f"w{run}{i}"), body, tok)
    settle(t, a)
    lat = []
    with CpuMeter(t) as cpu:
        for i in range(a.send_count):
            t0 = time.perf_counter()
            h.call("PUT", send_path(room, f"m{run}{i}"), body, tok)
            lat.append((time.perf_counter() - t0) * 1000)
    h.close()
    res["send_p50"], res["send_p99"] = pct(lat, 50), pct(lat, 99)
    log(f"{t.name} send: p50 {res['send_p50']:.2f} ms p99 {res['send_p99']:.2f} ms "
        f"({a.send_count} sends, {cpu.text()})")


WRK_LUA = """
local targets = {%s}
local run = "%s"
local n = #targets
local counter = 0
local seq = 0
function setup(thread)
  seq = seq + 1
  thread:set("tid", seq)
end
function init(args)
  counter = tid * 7919
end
local body = '{"msgtype":"m.text","body":"hello, this is a benchmark message"}'
function request()
  counter = counter + 1
  local t = targets[(counter %% n) + 1]
  return wrk.format("PUT", t[1] .. run .. "-" .. tid .. "-" .. counter,
    {["Authorization"] = t[2], ["Content-Type"] = "application/json"}, body)
end
"""


def wrk_run(port, pairs, conns, seconds, script_dir):
    """Run wrk over the (token, room) pairs; returns (req/s, p50 ms, p99 ms, errors)."""
    run = secrets.token_hex(4)
    targets = ",".join('{"%s","Bearer %s"}' % (send_path(room, ""), tok) for tok, room in pairs)
    path = os.path.join(script_dir, f"send-{run}.lua")
    with open(path, "w") as f:
        f.write(WRK_LUA % (targets, run))
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency",
                          "--timeout", "10s", "-s", path, f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label):
        m = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)\b", out)
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else 0
    errs = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errs += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errs += sum(int(x) for x in m.groups())
    return rps, ms("50"), ms("99"), errs


def w_tput(t, toks, a, res, workdir):
    senders = [toks[f"s{i}"] for i in range(a.tput_senders)]
    rooms = [None] * a.tput_rooms

    def make(h, j):
        rooms[j] = h.call("POST", CS + "/createRoom", {
            "preset": "public_chat", "creation_content": {"bench_nonce": secrets.token_hex(8)}},
            senders[j % len(senders)])["room_id"]
    pmap(make, range(a.tput_rooms), t.setup_workers, t.port)
    joins = [(senders[(j + 1) % len(senders)], rooms[j]) for j in range(a.tput_rooms)]
    join_all(t, joins)
    pairs = [(senders[j % len(senders)], rooms[j]) for j in range(a.tput_rooms)] + joins
    wrk_run(t.port, pairs, a.tput_conns, 3, workdir)  # warm-up
    settle(t, a)
    with PeakSampler(t.pid) as peak, CpuMeter(t) as cpu:
        rps, p50, p99, errs = wrk_run(t.port, pairs, a.tput_conns, a.tput_seconds, workdir)
    res.update(tput=rps, tput_p50=p50, tput_p99=p99, tput_errors=errs, rss_tput=peak.rss,
               tput_cpu=cpu.text())
    log(f"{t.name} tput: {rps:,.0f} messages/s, latency p50 {p50:.1f} ms p99 {p99:.1f} ms, "
        f"{errs} errors, peak RSS {peak.rss:.1f} MiB, {cpu.text()}")
    # Some 500 MB of WAL: its checkpoint now, not in the next workload's measurement.
    t.sql("CHECKPOINT")


def w_initial(t, tok, a, res):
    t0 = time.time()
    create_rooms(t, tok, a.initial_rooms, "public_chat")
    log(f"{t.name} initial: {a.initial_rooms} rooms created in {time.time() - t0:.1f} s")
    settle(t, a)
    h = Http(t.port)
    runs = []
    for i in range(3):
        t0 = time.perf_counter()
        st, raw = h.req("GET", f"{CS}/sync?timeout={i}", token=tok)
        dt = (time.perf_counter() - t0) * 1000
        if st != 200:
            raise RuntimeError(f"initial sync: {st} {raw[:300]!r}")
        n = len(json.loads(raw)["rooms"]["join"])
        if n != a.initial_rooms:
            raise RuntimeError(f"initial sync lists {n} joined rooms, not {a.initial_rooms}")
        runs.append((dt, len(raw)))
    res["initial_ms"] = statistics.median(r[0] for r in runs)
    res["initial_bytes"] = statistics.median(r[1] for r in runs)
    log(f"{t.name} initial sync: " + ", ".join(f"{d:.0f} ms {b / 1024:.0f} KiB" for d, b in runs))
    # The same user's next incremental /sync after one new message in one of its
    # rooms: what every wake-up of such a user costs.
    since = json.loads(raw)["next_batch"]
    rooms = sorted(json.loads(raw)["rooms"]["join"])
    inc = []
    for i in range(5):
        h.call("PUT", send_path(rooms[i * 97 % len(rooms)], f"inc{secrets.token_hex(4)}"),
               {"msgtype": "m.text", "body": "one new message"}, tok)
        t0 = time.perf_counter()
        st, raw = h.req("GET", f"{CS}/sync?since={q(since)}&timeout=0", token=tok)
        inc.append((time.perf_counter() - t0) * 1000)
        if st != 200:
            raise RuntimeError(f"incremental sync: {st} {raw[:300]!r}")
        since = json.loads(raw)["next_batch"]
    h.close()
    res["incremental_ms"] = statistics.median(inc)
    log(f"{t.name} incremental sync of the same user after one message: "
        + ", ".join(f"{d:.1f} ms" for d in inc))


# ---------------------------------------------------------------- syncwait (asyncio)

class RawConn(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection; one request at a time; on_resp(status, body, t)."""

    def __init__(self, port):
        self.host = f"127.0.0.1:{port}".encode()
        self.buf = bytearray()
        self.tr = None
        self.on_resp = None
        self.closed = False

    def connection_made(self, tr):
        self.tr = tr

    def connection_lost(self, exc):
        self.closed = True
        cb, self.on_resp = self.on_resp, None
        if cb:
            cb(None, b"", time.perf_counter())

    def request(self, method, path, token, body, on_resp):
        self.on_resp = on_resp
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n" % (
            method.encode(), path.encode(), self.host, token.encode())
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self.tr.write(head + b"\r\n" + (body or b""))

    def data_received(self, data):
        now = time.perf_counter()
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            status = int(head.split(" ", 2)[1])
            m = re.search(r"(?im)^content-length:\s*(\d+)", head)
            if m:
                total = end + 4 + int(m.group(1))
                if len(self.buf) < total:
                    return
                body = bytes(self.buf[end + 4:total])
            elif re.search(r"(?im)^transfer-encoding:\s*chunked", head):
                body, total = self._chunks(end + 4)
                if body is None:
                    return
            else:
                body, total = b"", end + 4
            del self.buf[:total]
            cb, self.on_resp = self.on_resp, None
            if cb:
                cb(status, body, now)

    def _chunks(self, i):
        out = bytearray()
        while True:
            eol = self.buf.find(b"\r\n", i)
            if eol < 0:
                return None, 0
            size = int(bytes(self.buf[i:eol]).split(b";")[0], 16)
            if len(self.buf) < eol + 2 + size + 2:
                return None, 0
            out += self.buf[eol + 2:eol + 2 + size]
            i = eol + 2 + size + 2
            if size == 0:
                return bytes(out), i


class SyncWait:
    """The long-poll side: every connection always has a /sync outstanding."""

    def __init__(self, port, timeout_ms):
        self.port, self.timeout_ms = port, timeout_ms
        self.conns = []  # dicts: conn, token, since, user
        self.errors = {}
        self.answers = 0  # 200 answers, woken by a probe or not
        self.expect = None  # (marker bytes, user, t0, latencies list, pending set, future)
        self.stopping = False

    def issue(self, c):
        path = (f"{CS}/sync?since={q(c['since'])}&timeout={self.timeout_ms}"
                f"&set_presence=offline")
        c["conn"].request("GET", path, c["token"], None, lambda s, b, t: self.answered(c, s, b, t))

    def failed(self, c, status):
        self.errors[status] = self.errors.get(status, 0) + 1

    def answered(self, c, status, body, t):
        if status is None:
            self.errors["closed"] = self.errors.get("closed", 0) + 1
            return
        if status != 200:
            self.errors[status] = self.errors.get(status, 0) + 1
            if not self.stopping:
                asyncio.get_event_loop().call_later(1, self.issue, c)
            return
        self.answers += 1
        e = self.expect
        if e and c["user"] == e["user"] and id(c) in e["pending"] and e["marker"] in body:
            e["lat"].append((t - e["t0"]) * 1000)
            e["pending"].discard(id(c))
            if not e["pending"] and not e["done"].done():
                e["done"].set_result(None)
        c["since"] = json.loads(body)["next_batch"]
        if not self.stopping:
            self.issue(c)

    async def open(self, users, limit, batch=64):
        loop = asyncio.get_running_loop()
        deadline = time.time() + limit

        async def one(u):
            _, p = await loop.create_connection(lambda: RawConn(self.port), "127.0.0.1", self.port)
            c = {"conn": p, "token": u["token"], "since": u["since"], "user": u["name"]}
            self.conns.append(c)
            # A client's long-poll follows its earlier requests on a kept-alive
            # connection, and a server may keep more per connection after the
            # first request (libmicrohttpd clears its whole per-connection pool),
            # so each connection asks something cheap first.
            p.request("GET", "/_matrix/client/versions", u["token"], None,
                      lambda s, b, t: self.issue(c) if s == 200 else self.failed(c, s))
        for i in range(0, len(users), batch):
            if time.time() > deadline:
                log(f"stopped opening /sync connections after {limit:.0f} s (--sync-open-limit)")
                return
            await asyncio.gather(*(one(u) for u in users[i:i + batch]))


async def syncwait_async(t, a, res, probe_tok, probe_rooms, waiters):
    """waiters: list of dict(name, token, since, conns); the first probe_users are probed."""
    sw = SyncWait(t.port, 300000)
    plan = []
    for w in waiters:
        plan += [w] * w["conns"]
    t0 = time.time()
    with PeakSampler(t.pid) as peak:
        # Bounded by --sync-open-limit and by what is left of --budget (the
        # probes, the report and stopping take about 40 s after it).
        limit = min(a.sync_open_limit, max(20.0, a.t_end - time.time() - 40))
        await sw.open(plan, limit)
        opened = time.time() - t0
        loop = asyncio.get_running_loop()
        idle = await loop.run_in_executor(None, wait_idle, t.pid, 180)
        parked = time.time() - t0
        rss, threads = proc_status(t.pid)
        live = sum(1 for c in sw.conns if not c["conn"].closed)
        log(f"{t.name} syncwait: {len(sw.conns)} connections opened in {opened:.1f} s, "
            f"idle after {parked:.1f} s{'' if idle else ' (NOT idle)'}, {live} open, "
            f"threads {threads}, RSS {rss:.1f} MiB, {sw.answers} answered early, "
            f"errors {sw.errors}")
        early = sw.answers
        sender = RawConn(t.port)
        await loop.create_connection(lambda: sender, "127.0.0.1", t.port)
        lat, first, put_lat = [], [], []
        by_user = {}
        for c in sw.conns:
            by_user.setdefault(c["user"], []).append(c)
        run = secrets.token_hex(4)
        timeouts = 0
        for m in range(a.probes):
            w = waiters[m % a.probe_users]
            room = probe_rooms[m % a.probe_users]
            marker = f"probe-{run}-{m}"
            e = {"marker": marker.encode(), "user": w["name"], "lat": [], "done": loop.create_future(),
                 "pending": {id(c) for c in by_user[w["name"]]}}
            sent = loop.create_future()
            body = json.dumps({"msgtype": "m.text", "body": marker}).encode()
            sw.expect = e
            e["t0"] = time.perf_counter()
            sender.request("PUT", send_path(room, marker), probe_tok, body,
                           lambda s, b, tt: sent.set_result((s, tt)))
            try:
                await asyncio.wait_for(asyncio.shield(e["done"]), 10)
            except asyncio.TimeoutError:
                timeouts += 1
            st, t_sent = await asyncio.wait_for(sent, 10)
            put_lat.append((t_sent - e["t0"]) * 1000)
            if st != 200:
                raise RuntimeError(f"probe send answered {st}")
            sw.expect = None
            lat += e["lat"]
            if e["lat"]:
                first.append(min(e["lat"]))
            await asyncio.sleep(a.probe_gap)
        sw.stopping = True
        rss_end, _ = proc_status(t.pid)
        for c in sw.conns:
            c["conn"].tr.close()
        sender.tr.close()
    res.update(sync_threads=threads, sync_rss=rss, rss_sync_peak=peak.rss, sync_conns=live,
               wake_p50=pct(lat, 50), wake_p99=pct(lat, 99), wake_first_p50=pct(first, 50),
               wake_first_p99=pct(first, 99), wake_n=len(lat), wake_timeouts=timeouts,
               sync_open_s=parked)
    log(f"{t.name} syncwait: wake p50 {res['wake_p50']:.1f} ms p99 {res['wake_p99']:.1f} ms "
        f"over {len(lat)} wake-ups, first of each message p50 {res['wake_first_p50']:.1f} ms "
        f"p99 {res['wake_first_p99']:.1f} ms, the PUTs themselves p50 {pct(put_lat, 50):.1f} ms, "
        f"{timeouts} probes timed out, {sw.answers - early} answers in all, "
        f"RSS {rss_end:.1f} MiB at the end, peak {peak.rss:.1f} MiB, errors {sw.errors}")


def w_syncwait(t, toks, a, res):
    names = [f"w{i}" for i in range(a.sync_users)]
    probe_tok = toks["probe"]
    probe_rooms = create_rooms(t, probe_tok, a.probe_users, "public_chat")
    join_all(t, [(toks[names[i]], probe_rooms[i]) for i in range(a.probe_users)])
    background = names[a.probe_users:]
    pmap(lambda h, n: h.call("POST", CS + "/createRoom", {
        "preset": "private_chat", "creation_content": {"bench_nonce": secrets.token_hex(8)}},
        toks[n]), background, t.setup_workers, t.port)
    rest = a.sync_conns - a.probe_users * a.probe_conns
    waiters = []
    for i, n in enumerate(names):
        if i < a.probe_users:
            k = a.probe_conns
        else:
            j = i - a.probe_users
            k = rest // len(background) + (1 if j < rest % len(background) else 0)
        waiters.append({"name": n, "token": toks[n], "conns": k})

    def since(h, w):
        w["since"] = h.call("GET", f"{CS}/sync?timeout=0&set_presence=offline",
                            token=w["token"])["next_batch"]
    pmap(since, waiters, t.setup_workers, t.port)
    settle(t, a)
    asyncio.run(syncwait_async(t, a, res, probe_tok, probe_rooms, waiters))


# ---------------------------------------------------------------- pgbench

def pgbench(a):
    pg = PgServer().start()
    try:
        pg.sql("CREATE TABLE bench_commit (id bigserial PRIMARY KEY, v text)")
        script = os.path.join(pg.dir, "insert.sql")
        with open(script, "w") as f:
            f.write("INSERT INTO bench_commit (v) VALUES ('hello, this is a benchmark message');\n")
        os.chmod(script, 0o644)
        out = {}
        for clients, secs in ((1, 3), (a.tput_conns, 8)):
            r = subprocess.run([_bindir() + "/pgbench", "-n", "-f", script, "-c", str(clients),
                                "-j", str(min(clients, 2)), "-T", str(secs), "-h", pg.dir, "-p",
                                str(pg.port), "-U", "postgres", "postgres"],
                               capture_output=True, text=True, timeout=secs + 60)
            m = re.search(r"tps = ([\d.]+)", r.stdout)
            if not m:
                raise RuntimeError(f"pgbench: {r.stdout}\n{r.stderr}")
            out[clients] = float(m.group(1))
            log(f"pgbench one-row INSERT commits, {clients} clients: {out[clients]:,.0f}/s")
        return out
    finally:
        pg.stop()


# ---------------------------------------------------------------- driver

class Profile:
    """perf record of the pvyhs process during one workload, when --profile is set."""

    def __init__(self, a, t, label):
        self.on = a.profile and t.name == "pvyhs"
        self.a, self.t, self.label = a, t, label

    def __enter__(self):
        if self.on:
            os.makedirs(self.a.profile, exist_ok=True)
            self.p = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(self.t.pid),
                                       "-o", os.path.join(self.a.profile, f"{self.label}.perf.data")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        if self.on:
            self.p.send_signal(signal.SIGINT)
            self.p.wait(60)
        return False


def run_target(t, a, res):
    log(f"{t.name}: starting")
    try:
        t.start()
        time.sleep(2)
        res["rss_idle"] = proc_status(t.pid)[0]
        res["threads_idle"] = proc_status(t.pid)[1]
        names = []
        if "send" in a.workloads:
            names.append("lat")
        if "tput" in a.workloads:
            names += [f"s{i}" for i in range(a.tput_senders)]
        if "syncwait" in a.workloads:
            names += ["probe"] + [f"w{i}" for i in range(a.sync_users)]
        if "initial" in a.workloads:
            names.append("init")
        t0 = time.time()
        toks = t.add_users(names)
        log(f"{t.name}: {len(names)} users in {time.time() - t0:.1f} s")
        with tempfile.TemporaryDirectory() as wd:
            for w in a.workloads:
                t0 = time.time()
                with Profile(a, t, w):
                    if w == "send":
                        w_send(t, toks["lat"], a, res)
                    elif w == "tput":
                        w_tput(t, toks, a, res, wd)
                    elif w == "initial":
                        w_initial(t, toks["init"], a, res)
                    elif w == "syncwait":
                        w_syncwait(t, toks, a, res)
                log(f"{t.name} {w}: {time.time() - t0:.1f} s in all, "
                    f"RSS {proc_status(t.pid)[0]:.1f} MiB after it")
        wait_idle(t.pid, 60)
        time.sleep(1)
        res["rss_end"] = proc_status(t.pid)[0]
    finally:
        t.stop()


def fmt(v, unit, prec=1):
    if v is None or v != v:
        return "n/a"
    return f"{v:,.{prec}f}{unit}"


def ratio(p, s, higher_better=False):
    if p is None or s is None or p != p or s != s or not p or not s:
        return ""
    r = p / s if higher_better else s / p
    return f" | ratio {r:.1f}x"


def goal(ok, text):
    return f" (goal {text}: {'met' if ok else 'MISSED'})"


def report(a, P, S, pgb):
    syn = not a.no_synapse
    lines = []

    def line(label, key_fmt, keys, higher=False, goal_txt=""):
        p = key_fmt(P, keys)
        out = f"{label}: pvyhs {p}"
        if syn:
            out += f" | synapse {key_fmt(S, keys)}{ratio(P.get(keys[0]), S.get(keys[0]), higher)}"
        lines.append(out + goal_txt)

    if "send" in a.workloads:
        line("send latency", lambda R, k: f"p50 {fmt(R.get(k[0]), ' ms', 2)} p99 {fmt(R.get(k[1]), ' ms', 2)}",
             ("send_p50", "send_p99"), goal_txt=goal(P.get("send_p50", 99) <= 2, "p50 <= 2 ms"))
    if "tput" in a.workloads:
        line(f"messages/s ({a.tput_senders} senders, {a.tput_rooms} rooms, {a.tput_conns} connections)",
             lambda R, k: f"{fmt(R.get(k[0]), '/s', 0)} (p50 {fmt(R.get('tput_p50'), ' ms')} "
                          f"p99 {fmt(R.get('tput_p99'), ' ms')}, {R.get('tput_errors', 'n/a')} errors, "
                          f"{R.get('tput_cpu', '')})",
             ("tput",), higher=True, goal_txt=goal(P.get("tput", 0) >= 5000, ">= 5,000/s"))
        if pgb:
            lines.append(f"PostgreSQL single-row INSERT commits (pgbench, same machine): "
                         f"{pgb[1]:,.0f}/s with 1 client, {pgb[a.tput_conns]:,.0f}/s with "
                         f"{a.tput_conns} clients")
    if "syncwait" in a.workloads:
        line(f"waiting /sync ({a.sync_conns} connections)",
             lambda R, k: f"{R.get('sync_conns', 'n/a')} parked, threads {R.get('sync_threads', 'n/a')}, "
                          f"RSS {fmt(R.get('sync_rss'), ' MiB')}",
             ("sync_rss",))
        line(f"send->wake latency ({a.probes} messages x {a.probe_conns} waiting requests)",
             lambda R, k: f"p50 {fmt(R.get(k[0]), ' ms')} p99 {fmt(R.get(k[1]), ' ms')} "
                          f"(first wake p50 {fmt(R.get('wake_first_p50'), ' ms')} "
                          f"p99 {fmt(R.get('wake_first_p99'), ' ms')}; {R.get('wake_timeouts', 'n/a')} timed out)",
             ("wake_p50", "wake_p99"), goal_txt=goal(P.get("wake_p99", 99) <= 10, "p99 <= 10 ms"))
    if "initial" in a.workloads:
        line(f"initial /sync, {a.initial_rooms} rooms",
             lambda R, k: f"{fmt(R.get(k[0]), ' ms', 0)} {fmt((R.get('initial_bytes') or 0) / 1024, ' KiB', 0)}",
             ("initial_ms",))
        line(f"incremental /sync of that user after one new message (median of 5)",
             lambda R, k: fmt(R.get(k[0]), " ms"), ("incremental_ms",))
    line("RSS idle after start", lambda R, k: f"{fmt(R.get(k[0]), ' MiB')} ({R.get('threads_idle', 'n/a')} threads)",
         ("rss_idle",))
    if "tput" in a.workloads:
        line("RSS peak under the messages/s load", lambda R, k: fmt(R.get(k[0]), " MiB"), ("rss_tput",))
    if "syncwait" in a.workloads:
        line("RSS peak with the waiting /sync load", lambda R, k: fmt(R.get(k[0]), " MiB"),
             ("rss_sync_peak",))
    line("RSS idle at the end", lambda R, k: fmt(R.get(k[0]), " MiB"), ("rss_end",))
    print("\n".join(lines), flush=True)


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        m = re.search(r"model name\s*:\s*(.*)", f.read())
        cpu = m.group(1) if m else cpu
    with open("/proc/meminfo") as f:
        mem = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1)) / 1024 / 1024
    pgv = subprocess.run([_bindir() + "/postgres", "--version"], capture_output=True,
                         text=True).stdout.strip()
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    return (f"machine: {os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB RAM, {os.uname().release}, "
            f"{pgv}, load average {load}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "pvyhs"))
    ap.add_argument("--no-synapse", action="store_true", help="measure pvyhs only")
    ap.add_argument("--workloads", default="initial,send,tput,syncwait",
                    help="run in this order (initial first gives the database some history)")
    ap.add_argument("--no-analyze", action="store_true",
                    help="do not VACUUM ANALYZE the database after each workload's set-up")
    ap.add_argument("--send-count", type=int, default=1000)
    ap.add_argument("--tput-senders", type=int, default=20)
    ap.add_argument("--tput-rooms", type=int, default=50)
    ap.add_argument("--tput-conns", type=int, default=20)
    ap.add_argument("--tput-seconds", type=int, default=15)
    ap.add_argument("--sync-conns", type=int, default=10000)
    ap.add_argument("--sync-users", type=int, default=100)
    ap.add_argument("--sync-open-limit", type=float, default=120,
                    help="stop opening /sync connections after this many seconds")
    ap.add_argument("--probe-users", type=int, default=20)
    ap.add_argument("--probe-conns", type=int, default=10)
    ap.add_argument("--probes", type=int, default=100)
    ap.add_argument("--probe-gap", type=float, default=0.02, help="seconds between probes")
    ap.add_argument("--initial-rooms", type=int, default=1000)
    ap.add_argument("--budget", type=float, default=570,
                    help="seconds for the whole run: the last /sync opening phase is "
                         "cut short to stay within it")
    ap.add_argument("--quiet-wait", type=float, default=5,
                    help="before each measurement, wait up to this long for other "
                         "processes on the machine to go quiet")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    ap.add_argument("--keep", action="store_true", help="keep the servers' directories")
    ap.add_argument("--profile", metavar="DIR", help="perf record pvyhs per workload into DIR")
    a = ap.parse_args()
    a.bin = os.path.abspath(a.bin)
    a.workloads = [w for w in a.workloads.split(",") if w]
    bad = set(a.workloads) - {"send", "tput", "initial", "syncwait"}
    if bad:
        ap.error(f"unknown workloads {bad}")
    if a.quick:
        a.send_count, a.tput_seconds, a.sync_conns, a.sync_users = 300, 3, 1000, 40
        a.probes, a.initial_rooms, a.tput_rooms = 20, 100, 20
    if a.probe_users >= a.sync_users or a.sync_conns < a.sync_users:
        ap.error("need more sync users than probe users, and a connection per sync user")
    if not os.access(a.bin, os.X_OK):
        ap.error(f"no pvyhs binary at {a.bin} (build it, or pass --bin)")
    # 10,000 client sockets live in this process; the servers inherit the raised
    # limit too, but raise their own as well.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if "syncwait" in a.workloads and hard < a.sync_conns + 500:
        sys.exit(f"the open-file limit ({hard}) is too low for {a.sync_conns} connections")
    t_all = time.time()
    a.t_end = t_all + a.budget
    print(machine(), flush=True)
    pgb = pgbench(a) if "tput" in a.workloads else None
    P, S = {}, {}
    run_target(Pvyhs(a.bin, a.keep), a, P)
    if not a.no_synapse:
        run_target(Synapse(a.keep), a, S)
    report(a, P, S, pgb)
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print(f"total run time: {time.time() - t_all:.0f} s, load average at the end {load}", flush=True)


if __name__ == "__main__":
    main()
