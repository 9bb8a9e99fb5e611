"""harness.py — start the real pvyhs binary on free ports and talk HTTP to it.

Each Server gets its own temporary directory with a config, a signing key and
(unless a DSN is given) its own embedded PostgreSQL cluster, exactly as an
admin's first start would create them.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PVYHS_BIN", os.path.join(ROOT, "build", "bin", "pvyhs"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _discard(live, path, keep):
    p = live.get("proc")
    if p is not None and p.poll() is None:
        p.terminate()
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if not keep:
        shutil.rmtree(path, ignore_errors=True)


class Disposable:
    """A process with a temporary directory that goes away once nothing holds
    the object (the end of the test or fixture that made it, or the end of
    the run), its process stopped first. Tests do not all stop and remove
    their servers, and a full run used to leave tens of gigabytes of clusters
    in /tmp, which ran the 1 GB upload test out of disk. PVYHS_TEST_KEEP=1
    keeps the directories for a post-mortem."""

    def _dispose_with(self, path, keep=False):
        self._live = {}
        keep = keep or os.environ.get("PVYHS_TEST_KEEP") == "1"
        weakref.finalize(self, _discard, self._live, path, keep)

    @property
    def proc(self):
        return self._live.get("proc")

    @proc.setter
    def proc(self, p):
        self._live["proc"] = p


def run_cli(*args, input=None, timeout=120):
    """Run `pvyhs ARGS`; returns CompletedProcess with text output."""
    return subprocess.run([BIN, *args], input=input, capture_output=True, text=True,
                          timeout=timeout)


class Response:
    def __init__(self, status, body, headers):
        self.status = status
        self.raw = body
        self.headers = headers

    @property
    def json(self):
        return json.loads(self.raw)

    def __repr__(self):
        return f"<{self.status} {self.raw[:200]!r}>"


def http(base, method, path, body=None, token=None, raw=None, headers=None, timeout=30):
    """One HTTP request. body is JSON-encoded; raw is sent as bytes unchanged."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, r.read(), dict(r.headers))
    except urllib.error.HTTPError as e:
        return Response(e.code, e.read(), dict(e.headers))


class Server(Disposable):
    """A pvyhs process with its own directory. Use as a context manager."""

    # Tests send far faster than people: lift the rc_* limits unless a test
    # is about them (limits=True keeps Synapse's defaults).
    NO_LIMITS = """rc_message: {per_second: 100000, burst_count: 100000}
rc_registration: {per_second: 100000, burst_count: 100000}
rc_login:
  address: {per_second: 100000, burst_count: 100000}
  account: {per_second: 100000, burst_count: 100000}
  failed_attempts: {per_second: 100000, burst_count: 100000}
rc_joins:
  local: {per_second: 100000, burst_count: 100000}
  remote: {per_second: 100000, burst_count: 100000}
rc_invites:
  per_room: {per_second: 100000, burst_count: 100000}
  per_user: {per_second: 100000, burst_count: 100000}
"""

    # pvyhs encrypts new private rooms by default (issue 7), which clients
    # without end-to-end encryption cannot write to. Tests about other things
    # get Synapse's default, off; encryption_default=None keeps pvyhs's own
    # (or lets extra_yaml set it).
    def __init__(self, extra_yaml="", dsn_yaml=None, name="localhost", limits=False,
                 encryption_default="off"):
        self.dir = tempfile.mkdtemp(prefix="pvyhs-test-")
        self._dispose_with(self.dir)
        os.chmod(self.dir, 0o755)  # the embedded cluster's user must reach it
        self.port = free_port()
        self.server_name = f"{name}:{self.port}"
        self.base = f"http://127.0.0.1:{self.port}"
        self.config = os.path.join(self.dir, "homeserver.yaml")
        self.log_path = os.path.join(self.dir, "pvyhs.log")
        self.proc = None
        with open(self.config, "w") as f:
            f.write(f"""server_name: "{self.server_name}"
public_baseurl: "http://localhost:{self.port}/"
data_dir: data
signing_key_path: signing.key
log_level: info
listeners:
  - port: {self.port}
    bind_addresses: ['127.0.0.1']
    type: http
    resources:
      - names: [client, federation]
""")
            if dsn_yaml:
                f.write(dsn_yaml)
            if not limits:
                f.write(self.NO_LIMITS)
            if encryption_default:
                f.write(f"encryption_enabled_by_default_for_room_type: {encryption_default}\n")
            f.write(extra_yaml)

    def start(self, wait=True, timeout=90):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, "serve", "--config", self.config], stdout=self.log,
                                     stderr=self.log, cwd=self.dir)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pvyhs exited with {self.proc.returncode}:\n{self.read_log()}")
            try:
                if http(self.base, "GET", "/health", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("pvyhs did not answer /health in time:\n" + self.read_log())

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.log.close()
        self.proc = None
        return rc

    def stop_checked(self):
        """Stop, and fail on an unclean exit or a sanitizer report in the log."""
        rc = self.stop()
        log = self.read_log()
        assert rc == 0, "pvyhs did not exit cleanly:\n" + log
        assert "ERROR: AddressSanitizer" not in log and "runtime error:" not in log, log

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def request(self, method, path, body=None, **kw):
        return http(self.base, method, path, body, **kw)

    def cli(self, *args, **kw):
        return run_cli(*args, **kw)

    def add_user(self, name, password="correct horse", admin=False):
        args = ["user", "add", "--config", self.config, name, "--password", password]
        if admin:
            args.append("--admin")
        r = run_cli(*args)
        assert r.returncode == 0, r.stderr
        return f"@{name}:{self.server_name}"

    def login(self, name, password="correct horse", device_id=None):
        body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": name},
                "password": password}
        if device_id:
            body["device_id"] = device_id
        r = self.request("POST", "/_matrix/client/v3/login", body)
        assert r.status == 200, r
        return r.json["access_token"]

    def psql(self, sql):
        """Run SQL on the embedded cluster (for checks a client cannot make)."""
        sock = os.path.join(self.dir, "data", "pg", "run")
        psql = shutil.which("psql") or "/usr/bin/psql"
        r = subprocess.run([psql, "-h", sock, "-U", "pvyhs", "-d", "pvyhs", "-At", "-c", sql],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        rc = self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        return False
