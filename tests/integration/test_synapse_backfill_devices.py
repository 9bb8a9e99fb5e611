"""test_synapse_backfill_devices.py — outbound backfill and device-list
resyncs against Synapse (the Synapse venv, scripts/synapse_venv.sh, on its
own PostgreSQL), over TLS from the test CA: a pvyhs user joins a Synapse
room after its history was written and pages back through it; Synapse's
device list updates are followed in order, fetched whole (/user/devices)
when pvyhs holds none.
"""
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import tempfile
import time
import urllib.request

import pytest
import yaml

from harness import free_port
from pgserver import PgServer
from test_federation_rooms import q, user  # noqa: F401
from test_federation_transport import FedServer, pki, stop_clean  # noqa: F401

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class Synapse:
    def __init__(self, pki):
        self.py = subprocess.run([os.path.join(ROOT, "scripts", "synapse_venv.sh")],
                                 capture_output=True, text=True, check=True).stdout.split()[-1]
        self.dir = tempfile.mkdtemp(prefix="synapse-fed-")
        os.chmod(self.dir, 0o755)
        self.port, self.fed_port = free_port(), free_port()
        self.server_name = f"localhost:{self.fed_port}"
        self.secret = secrets.token_hex(16)
        self.pki = pki
        self.proc = self.pg = None

    def _config(self):
        cfg = os.path.join(self.dir, "homeserver.yaml")
        subprocess.run([self.py, "-m", "synapse.app.homeserver", "--generate-config",
                        "-H", self.server_name, "--report-stats=no", "-c", cfg],
                       cwd=self.dir, check=True, capture_output=True)
        with open(cfg) as f:
            c = yaml.safe_load(f)
        logcfg = os.path.join(self.dir, "log.yaml")
        with open(logcfg, "w") as f:
            f.write(f"""version: 1
formatters: {{precise: {{format: '%(asctime)s %(name)s %(levelname)s %(message)s'}}}}
handlers:
  file: {{class: logging.FileHandler, formatter: precise, filename: {self.dir}/synapse.log}}
loggers: {{synapse.storage.SQL: {{level: WARNING}}}}
root: {{level: INFO, handlers: [file]}}
disable_existing_loggers: false
""")
        big = {"per_second": 1000000, "burst_count": 1000000}
        c.update({
            "listeners": [
                {"port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                 "resources": [{"names": ["client"], "compress": False}]},
                {"port": self.fed_port, "bind_addresses": ["127.0.0.1", "::1"], "type": "http",
                 "tls": True, "resources": [{"names": ["federation"], "compress": False}]}],
            "tls_certificate_path": str(self.pki / "server.pem"),
            "tls_private_key_path": str(self.pki / "server.key"),
            "federation_custom_ca_list": [str(self.pki / "ca.pem")],
            "ip_range_whitelist": ["127.0.0.0/8", "::1/128"],
            "database": {"name": "psycopg2", "args": {
                "user": "synapse_user", "database": "synapse", "host": self.pg.dir,
                "port": self.pg.port, "cp_min": 2, "cp_max": 5}},
            "log_config": logcfg,
            "registration_shared_secret": self.secret,
            "bcrypt_rounds": 4,
            "report_stats": False,
            "enable_metrics": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "rc_message": big, "rc_registration": big, "rc_room_creation": big,
            "rc_login": {"address": big, "account": big, "failed_attempts": big},
            "rc_joins": {"local": big, "remote": big}, "rc_joins_per_room": big,
            "rc_federation": {"window_size": 1000, "sleep_limit": 1000, "sleep_delay": 1,
                              "reject_limit": 1000, "concurrent": 100},
        })
        with open(cfg, "w") as f:
            yaml.safe_dump(c, f)
        return cfg

    def start(self):
        self.pg = PgServer().start()
        self.pg.sql("CREATE DATABASE synapse OWNER synapse_user TEMPLATE template0 "
                    "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
        cfg = self._config()
        self.log = open(os.path.join(self.dir, "stderr.log"), "ab")
        env = dict(os.environ, SSL_CERT_FILE=str(self.pki / "ca.pem"))
        self.proc = subprocess.Popen([self.py, "-m", "synapse.app.homeserver", "-c", cfg],
                                     stdout=self.log, stderr=self.log, cwd=self.dir, env=env)
        deadline = time.time() + 180
        while time.time() < deadline:
            assert self.proc.poll() is None, self.read_log()[-3000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2)
                return self
            except Exception:
                time.sleep(0.5)
        raise AssertionError("Synapse did not start")

    def read_log(self):
        out = ""
        for name in ("synapse.log", "stderr.log"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    out += f.read()
        return out

    def call(self, method, path, body=None, token=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def register(self, name, device_id=None):
        _, n = self.call("GET", "/_synapse/admin/v1/register")
        mac = hmac.new(self.secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([n["nonce"].encode(), name.encode(), b"pw", b"notadmin"]))
        st, j = self.call("POST", "/_synapse/admin/v1/register", {
            "nonce": n["nonce"], "username": name, "password": "pw", "admin": False,
            "mac": mac.hexdigest()})
        assert st == 200, j
        return j["user_id"], j["access_token"], j["device_id"]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.pg:
            self.pg.stop()


@pytest.fixture(scope="module")
def net(pki):  # noqa: F811
    syn = Synapse(pki).start()
    b = FedServer(pki, prefix="synbf", extra=FedServer.NO_LIMITS).start()
    yield {"syn": syn, "b": b}
    try:
        stop_clean(b)
    finally:
        keep = os.environ.get("PVYHS_KEEP_LOGS")
        if keep:
            with open(os.path.join(keep, "synbf_synapse.log"), "w") as out:
                out.write(syn.read_log())
            with open(os.path.join(keep, "synbf_b.log"), "w") as out:
                out.write(b.read_log())
        syn.stop()
        b.__exit__(None, None, None)


def page_back(s, tok, room, limit=10):
    out, frm = [], None
    for _ in range(40):
        path = f"/_matrix/client/v3/rooms/{q(room)}/messages?dir=b&limit={limit}"
        if frm:
            path += f"&from={q(frm)}"
        r = s.request("GET", path, token=tok)
        assert r.status == 200, r.raw
        out += r.json["chunk"]
        if "end" not in r.json:
            return out
        frm = r.json["end"]
    raise AssertionError("pagination did not end")


def bodies(events):
    return [e["content"].get("body") for e in events if e["type"] == "m.room.message"]


def test_backfill_from_synapse(net):
    syn, b = net["syn"], net["b"]
    sally, stok, _ = syn.register("sally")
    st, j = syn.call("POST", "/_matrix/client/v3/createRoom",
                     {"preset": "public_chat", "name": "Synapse history"}, stok)
    assert st == 200, j
    room = j["room_id"]
    for i in range(30):
        st, j = syn.call("PUT", f"/_matrix/client/v3/rooms/{q(room)}/send/m.room.message/t{i}",
                         {"msgtype": "m.text", "body": f"syn {i}"}, stok)
        assert st == 200, j
    bob, btok = user(b, "synbf_bob")
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}?server_name={q(syn.server_name)}", {},
                  token=btok)
    assert r.status == 200, r.raw
    events = page_back(b, btok, room)
    assert bodies(events) == [f"syn {i}" for i in reversed(range(30))], bodies(events)
    assert events[-1]["type"] == "m.room.create"
    r = b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.name", token=btok)
    assert r.status == 200 and r.json["name"] == "Synapse history", r.raw
    net["room"] = room
    net["sally"] = (sally, stok)


def dev_keys(user_id, device_id):
    return {"user_id": user_id, "device_id": device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"ed25519:{device_id}": "E" * 43, f"curve25519:{device_id}": "C" * 43},
            "signatures": {user_id: {f"ed25519:{device_id}": "S" * 86}}}


def test_device_lists_from_synapse(net):
    syn, b = net["syn"], net["b"]
    room = net["room"]
    sally, stok = net["sally"]
    bob, btok = user(b, "synbf_bob")
    # sally's first device's keys: Synapse tells B, which has no list of hers: fetched whole.
    _, st1 = syn.call("GET", "/_matrix/client/v3/account/whoami", token=stok)
    dev1 = st1["device_id"]
    st, j = syn.call("POST", "/_matrix/client/v3/keys/upload",
                     {"device_keys": dev_keys(sally, dev1)}, stok)
    assert st == 200, j

    def followed():
        return b.psql(f"SELECT stream_id FROM fed_device_list_remote WHERE user_id = '{sally}'")
    deadline = time.time() + 60
    while time.time() < deadline and not followed():
        time.sleep(0.3)
    assert followed(), b.read_log()[-4000:]
    fetched = b.read_log().count(f"device list of {sally} fetched again")
    assert fetched >= 1
    r = b.request("POST", "/_matrix/client/v3/keys/query", {"device_keys": {sally: []}}, token=btok)
    assert r.status == 200 and dev1 in r.json["device_keys"][sally], r.raw

    # A second device: an update that follows the first, applied in order.
    s2 = syn.call("POST", "/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "sally"},
        "password": "pw", "device_id": "SALLY2"})[1]
    st, j = syn.call("POST", "/_matrix/client/v3/keys/upload",
                     {"device_keys": dev_keys(sally, "SALLY2")}, s2["access_token"])
    assert st == 200, j

    def has_two():
        r = b.request("POST", "/_matrix/client/v3/keys/query", {"device_keys": {sally: []}},
                      token=btok)
        return {dev1, "SALLY2"} <= set(r.json["device_keys"].get(sally, {}))
    deadline = time.time() + 60
    while time.time() < deadline and not has_two():
        time.sleep(0.3)
    assert has_two(), b.read_log()[-4000:]
    print("resyncs:", b.read_log().count(f"device list of {sally} fetched again"), "first:", fetched)


def test_backfill_from_synapse_joined_history(net):
    """history_visibility joined: the history before the pvyhs user came stays hidden."""
    syn, b = net["syn"], net["b"]
    sally, stok = net["sally"]
    st, j = syn.call("POST", "/_matrix/client/v3/createRoom", {
        "preset": "public_chat", "initial_state": [
            {"type": "m.room.history_visibility", "state_key": "",
             "content": {"history_visibility": "joined"}}]}, stok)
    assert st == 200, j
    room = j["room_id"]
    for i in range(12):
        st, j = syn.call("PUT", f"/_matrix/client/v3/rooms/{q(room)}/send/m.room.message/j{i}",
                         {"msgtype": "m.text", "body": f"hidden {i}"}, stok)
        assert st == 200, j
    carl, ctok = user(b, "synbf_carl")
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}?server_name={q(syn.server_name)}", {},
                  token=ctok)
    assert r.status == 200, r.raw
    events = page_back(b, ctok, room)
    assert bodies(events) == [], bodies(events)
    assert any(e["type"] == "m.room.member" and e["state_key"] == carl for e in events)
    # B did pull the history (Synapse sends it redacted), and keeps its visibility.
    n = int(b.psql(f"SELECT count(*) FROM events WHERE room_id = '{room}' AND stream_ordering < 0"
                   " AND type = 'm.room.message'"))
    assert n == 12, n
    assert b.psql(f"SELECT DISTINCT history_visibility_at FROM events WHERE room_id = '{room}'"
                  " AND stream_ordering < 0 AND type = 'm.room.message'") == "joined"
