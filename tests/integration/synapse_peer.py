"""synapse_peer.py — a real Synapse (the venv of scripts/synapse_venv.sh) on its
own throwaway PostgreSQL cluster: for the federation interop tests and the
benchmarks that compare pvyhs with it.

The config is written whole (no --generate-config run: that costs a Python
start-up) from Synapse's documented keys, plus whatever the caller overrides.
Users come from the shared-secret admin API, with bcrypt_rounds 4 so that is
quick. Synapse's own log goes to synapse.log in its directory (log_level).
"""
import hashlib
import hmac
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time

import yaml

from harness import ROOT, Disposable, free_port
from pgserver import PgServer

VENV_PYTHON = os.path.join(ROOT, "tests", "integration", ".venv", "bin", "python")

BIG = {"per_second": 1000000, "burst_count": 1000000}
# Every rc_* of Synapse 1.163 out of the way of tests and benchmarks.
NO_LIMITS = {
    "rc_message": BIG, "rc_registration": BIG, "rc_admin_redaction": BIG,
    "rc_room_creation": BIG, "rc_reports": BIG, "rc_presence": {"per_user": BIG},
    "rc_login": {"address": BIG, "account": BIG, "failed_attempts": BIG},
    "rc_joins": {"local": BIG, "remote": BIG}, "rc_joins_per_room": BIG,
    "rc_invites": {"per_room": BIG, "per_user": BIG, "per_issuer": BIG},
    "rc_3pid_validation": BIG, "rc_media_create": BIG, "rc_delayed_event_mgmt": BIG,
    "rc_federation": {"window_size": 1000, "sleep_limit": 1000, "sleep_delay": 0,
                      "reject_limit": 1000, "concurrent": 100},
}


def synapse_python():
    """The venv's python, or an AssertionError: the tests that need Synapse fail
    (never skip) when it is missing."""
    r = subprocess.run([VENV_PYTHON, "-c", "import synapse, psycopg2; print(synapse.__version__)"],
                       capture_output=True, text=True) if os.path.exists(VENV_PYTHON) else None
    assert r is not None and r.returncode == 0, \
        f"no Synapse in {VENV_PYTHON}: run scripts/synapse_venv.sh ({r.stderr if r else 'missing'})"
    return VENV_PYTHON


def _signing_key_line():
    """A Synapse signing key file's line: 'ed25519 <key id> <unpadded base64 seed>'."""
    from signedjson.key import encode_signing_key_base64, generate_signing_key
    sk = generate_signing_key("a_" + secrets.token_hex(2))
    return f"{sk.alg} {sk.version} {encode_signing_key_base64(sk)}\n"


class Synapse(Disposable):
    """Synapse named localhost:<port>. `listeners` defaults to one plain
    listener on `port` with client and federation (give client_port when
    `listeners` puts the client API elsewhere); `overrides` replace or add
    top-level config keys."""

    def __init__(self, port=None, listeners=None, overrides=None, log_level="WARNING",
                 prefix="synapse-", keep=False, client_port=None):
        self.py = synapse_python()
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self._dispose_with(self.dir, keep)
        os.chmod(self.dir, 0o755)
        self.port = port or free_port()
        self.server_name = f"localhost:{self.port}"
        self.client_port = client_port or self.port
        self.base = f"http://127.0.0.1:{self.client_port}"
        self.listeners = listeners or [
            {"port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
             "x_forwarded": False, "resources": [{"names": ["client", "federation"],
                                                  "compress": False}]}]
        self.overrides = overrides or {}
        self.log_level = log_level
        self.keep = keep
        self.secret = secrets.token_hex(16)
        self.log_path = os.path.join(self.dir, "synapse.log")
        self.proc = self.pg = None

    def _config(self):
        key = os.path.join(self.dir, "signing.key")
        with open(key, "w") as f:
            f.write(_signing_key_line())
        logcfg = os.path.join(self.dir, "log.yaml")
        with open(logcfg, "w") as f:
            f.write(f"""version: 1
formatters: {{precise: {{format: '%(asctime)s %(name)s %(levelname)s %(request)s %(message)s'}}}}
filters: {{context: {{(): synapse.logging.context.LoggingContextFilter, request: ""}}}}
handlers:
  file: {{class: logging.FileHandler, formatter: precise, filters: [context],
          filename: {self.log_path}}}
loggers: {{synapse.storage.SQL: {{level: WARNING}}}}
root: {{level: {self.log_level}, handlers: [file]}}
disable_existing_loggers: false
""")
        c = {
            "server_name": self.server_name,
            "pid_file": os.path.join(self.dir, "homeserver.pid"),
            "listeners": self.listeners,
            "database": {"name": "psycopg2", "args": {
                "user": "synapse_user", "database": "synapse", "host": self.pg.dir,
                "port": self.pg.port, "cp_min": 5, "cp_max": 10}},
            "log_config": logcfg,
            "media_store_path": os.path.join(self.dir, "media_store"),
            "signing_key_path": key,
            "registration_shared_secret": self.secret,
            "macaroon_secret_key": secrets.token_hex(16),
            "form_secret": secrets.token_hex(16),
            "bcrypt_rounds": 4,
            "report_stats": False,
            "enable_metrics": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            **NO_LIMITS,
        }
        c.update(self.overrides)
        cfg = os.path.join(self.dir, "homeserver.yaml")
        with open(cfg, "w") as f:
            yaml.safe_dump(c, f)
        return cfg

    def start(self, timeout=180):
        self.pg = PgServer().start()
        self.pg.sql("CREATE DATABASE synapse OWNER synapse_user TEMPLATE template0 "
                    "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
        self.cfg = self._config()
        self._launch(timeout)
        return self

    def _launch(self, timeout):
        self.stderr = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.proc = subprocess.Popen([self.py, "-m", "synapse.app.homeserver", "-c", self.cfg],
                                     stdout=self.stderr, stderr=self.stderr, cwd=self.dir)
        self.pid = self.proc.pid
        self._wait_ready(timeout)

    def stop_process(self, timeout=60):
        """SIGTERM to Synapse alone (its database stays up); its exit code."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.stderr.close()
        self.proc = None
        return rc

    def start_process(self, timeout=120):
        """Synapse again after stop_process, on the same database."""
        self._launch(timeout)

    def _wait_ready(self, limit):
        deadline = time.time() + limit
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Synapse exited with {self.proc.returncode}:\n"
                                   + self.read_log()[-4000:] + self._read("stderr.log")[-4000:])
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.client_port, timeout=2)
                c.request("GET", "/_matrix/client/versions")
                ok = c.getresponse().status == 200
                c.close()
                if ok:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("Synapse did not answer /versions in time:\n" + self.read_log()[-4000:])

    def _read(self, name):
        try:
            with open(os.path.join(self.dir, name), "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def read_log(self):
        return self._read("synapse.log")

    def call(self, method, path, body=None, token=None, ok=(200,), raw=None, headers=None,
             timeout=60):
        """One request to the client listener; the decoded JSON body, or
        RuntimeError when the status is not in ok (ok=None: (status, bytes))."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        h = {"Content-Type": "application/json"} if body is not None else {}
        h.update(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        c = http.client.HTTPConnection("127.0.0.1", self.client_port, timeout=timeout)
        try:
            c.request(method, path, data, h)
            r = c.getresponse()
            st, out = r.status, r.read()
        finally:
            c.close()
        if ok is None:
            return st, out
        if st not in ok:
            raise RuntimeError(f"Synapse {method} {path}: {st} {out[:300]!r}")
        return json.loads(out) if out else {}

    def register(self, name, password, admin=False, call=None):
        """A user through the shared-secret admin API: (user_id, access_token).
        `call` lets a caller bring its own connection (the benchmarks)."""
        call = call or self.call
        nonce = call("GET", "/_synapse/admin/v1/register")["nonce"]
        mac = hmac.new(self.secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), name.encode(), password.encode(),
                                 b"admin" if admin else b"notadmin"]))
        j = call("POST", "/_synapse/admin/v1/register", {
            "nonce": nonce, "username": name, "password": password, "admin": admin,
            "mac": mac.hexdigest()})
        return j["user_id"], j["access_token"]

    def stop(self, timeout=60):
        """SIGTERM, then the cluster; returns Synapse's exit code."""
        rc = None
        if self.proc:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
            self.stderr.close()
            self.proc = None
        if self.pg:
            self.pg.stop()
            self.pg = None
        return rc

    def cleanup(self):
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def tls_peer(pki, prefix="synapse-fed-", overrides=None, log_level="INFO", keep=False):
    """A Synapse federating over TLS with the test CA (test_federation_transport's
    pki): named localhost:PORT with its federation listener on PORT (the test
    server certificate) and the client API on a plain port of its own; it
    trusts the test CA and may reach loopback. Not started."""
    port, client = free_port(), free_port()
    return Synapse(port=port, client_port=client, prefix=prefix, listeners=[
        {"port": port, "bind_addresses": ["127.0.0.1", "::1"], "type": "http", "tls": True,
         "x_forwarded": False, "resources": [{"names": ["federation"], "compress": False}]},
        {"port": client, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
         "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]},
    ], overrides={
        "tls_certificate_path": str(pki / "server.pem"),
        "tls_private_key_path": str(pki / "server.key"),
        "federation_custom_ca_list": [str(pki / "ca.pem")],
        "federation_verify_certificates": True,
        # Synapse applies ip_range_blacklist (its private-range default) to
        # federation too unless federation_ip_range_blacklist is set: the
        # whitelist lets loopback through, both families (localhost may
        # resolve to ::1).
        "ip_range_whitelist": ["127.0.0.0/8", "::1/128"],
        **(overrides or {}),
    }, log_level=log_level, keep=keep)
