"""test_federation_transport.py — the federation transport between real
servers over TLS: server keys fetched directly and through a notary, X-Matrix
signatures accepted and refused, the IP and domain policies, and .well-known
delegation.

Three pvyhs servers named localhost:PORT (the port of their TLS federation
listener), a test CA made with OpenSSL's CLI that every server trusts through
federation_custom_ca_list, and ip_range_whitelist: ['127.0.0.0/8'] so they
may reach each other on loopback:
  A  the notary and the sender; its admin drives outbound requests through
     POST /_pvyhs/admin/v1/federation/request
  B  a plain peer
  C  trusts A as its notary (with A's verify key) and federates only with A
     and B (federation_domain_whitelist)
Python plays the remaining parts: a forger signing with A's key file, and
tiny HTTPS servers for /.well-known/matrix/server and a delegated target.
SRV discovery has no DNS server here: tests/unit/test_federation_discovery.c.
"""
import http.server
import json
import os
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from signedjson.key import decode_signing_key_base64, decode_verify_key_bytes, get_verify_key
from signedjson.sign import sign_json, verify_signed_json
from unpaddedbase64 import decode_base64, encode_base64

from harness import BIN, Server, free_port

# ---- the test CA -----------------------------------------------------------------


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("fedt-pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=pvyhs federation test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost", cwd=d)
    (d / "ext.cnf").write_text("basicConstraints=CA:FALSE\n"
                               "keyUsage=digitalSignature,keyEncipherment\n"
                               "extendedKeyUsage=serverAuth\n"
                               "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return d


def tls_client_context(pki):
    return ssl.create_default_context(cafile=str(pki / "ca.pem"))


# ---- servers -----------------------------------------------------------------------


class FedServer(Server):
    """A pvyhs with a plain client listener (for the harness and admin calls)
    and a TLS federation listener whose port names the server."""

    def __init__(self, pki, extra="", env=None, prefix="fedt"):
        super().__init__()
        self.pki = pki
        self.env = env or {}
        self.fed_port = free_port()
        self.server_name = f"localhost:{self.fed_port}"
        self.fed_base = f"https://127.0.0.1:{self.fed_port}"
        with open(self.config, "w") as f:
            f.write(f"""server_name: "{self.server_name}"
public_baseurl: "http://localhost:{self.port}/"
data_dir: data
signing_key_path: signing.key
log_level: debug
tls_certificate_path: {pki / 'server.pem'}
tls_private_key_path: {pki / 'server.key'}
federation_custom_ca_list: [{pki / 'ca.pem'}]
ip_range_whitelist: ['127.0.0.0/8']
listeners:
  - port: {self.port}
    bind_addresses: ['127.0.0.1']
    type: http
    resources: [{{names: [client]}}]
  - port: {self.fed_port}
    bind_addresses: ['127.0.0.1', '::1']
    type: http
    tls: true
    resources: [{{names: [federation]}}]
""")
            f.write(extra)
        self.prefix = prefix

    def start(self, wait=True, timeout=90):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, "serve", "--config", self.config], stdout=self.log,
                                     stderr=self.log, cwd=self.dir, env=dict(os.environ, **self.env))
        if wait:
            self.wait_ready(timeout)
        return self

    def signing_key(self):
        with open(os.path.join(self.dir, "signing.key")) as f:
            alg, version, seed = f.read().split()
        return decode_signing_key_base64(alg, version, seed)

    def admin_token(self):
        if not hasattr(self, "_admin"):
            self.add_user(f"{self.prefix}_admin", admin=True)
            self._admin = self.login(f"{self.prefix}_admin")
        return self._admin

    def fed_request(self, destination, path, method="GET", content=None):
        body = {"destination": destination, "method": method, "path": path}
        if content is not None:
            body["content"] = content
        return self.request("POST", "/_pvyhs/admin/v1/federation/request", body,
                            token=self.admin_token())

    def stored_key(self, server_name):
        """(key_id, from_server) rows of server_signing_keys for server_name."""
        out = self.psql("SELECT key_id || ' ' || from_server FROM server_signing_keys"
                        f" WHERE server_name = '{server_name}' ORDER BY key_id")
        return [tuple(line.split(" ")) for line in out.splitlines() if line]


class Resp:
    def __init__(self, status, raw, headers):
        self.status, self.raw, self.headers = status, raw, headers

    @property
    def json(self):
        return json.loads(self.raw)


def https(pki, base, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=tls_client_context(pki), timeout=60) as r:
            return Resp(r.status, r.read(), dict(r.headers))
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.read(), dict(e.headers))


def stop_clean(*servers):
    for s in servers:
        rc = s.stop()
        log = s.read_log()
        assert rc == 0, log[-3000:]
        assert "Sanitizer" not in log and "runtime error:" not in log, log  # ASan, LSan, UBSan


@pytest.fixture(scope="module")
def fed(pki):
    wk_port = free_port()
    a = FedServer(pki, env={"PVYHS_FEDERATION_WELL_KNOWN_PORT": str(wk_port)}, prefix="fedta")
    b = FedServer(pki, prefix="fedtb")
    a.start()
    b.start()
    a_key = https(pki, a.fed_base, "GET", "/_matrix/key/v2/server").json
    (a_key_id, a_vk), = a_key["verify_keys"].items()
    c = FedServer(pki, prefix="fedtc", extra=f"""trusted_key_servers:
  - server_name: "{a.server_name}"
    verify_keys:
      "{a_key_id}": "{a_vk['key']}"
federation_domain_whitelist: ["{a.server_name}", "{b.server_name}"]
""")
    c.start()
    a.wk_port = wk_port
    yield {"a": a, "b": b, "c": c}
    stop_clean(a, b, c)
    for s in (a, b, c):
        s.__exit__(None, None, None)


# ---- keys -----------------------------------------------------------------------------


def verify_key_of(resp, key_id):
    return decode_verify_key_bytes(key_id, decode_base64(resp["verify_keys"][key_id]["key"]))


def test_key_server_over_tls(fed, pki):
    b = fed["b"]
    r = https(pki, b.fed_base, "GET", "/_matrix/key/v2/server")
    assert r.status == 200, r.raw
    keys = r.json
    assert keys["server_name"] == b.server_name
    (key_id,) = keys["verify_keys"]
    verify_signed_json(keys, b.server_name, verify_key_of(keys, key_id))
    assert keys["valid_until_ts"] > time.time() * 1000
    # Key endpoints need no signature; the version endpoint neither.
    assert https(pki, b.fed_base, "GET", "/_matrix/federation/v1/version").status == 200


def test_notary_fetches_directly_and_vouches(fed, pki):
    a, b = fed["a"], fed["b"]
    r = https(pki, a.fed_base, "GET", f"/_matrix/key/v2/query/{b.server_name}")
    assert r.status == 200, r.raw
    (entry,) = r.json["server_keys"]
    assert entry["server_name"] == b.server_name
    (key_id,) = entry["verify_keys"]
    # Signed by B itself and by A as notary.
    verify_signed_json(entry, b.server_name, verify_key_of(entry, key_id))
    a_sk = a.signing_key()
    verify_signed_json(entry, a.server_name, get_verify_key(a_sk))
    # A fetched it from B itself and keeps it.
    assert a.stored_key(b.server_name) == [(key_id, b.server_name)]
    valid = int(a.psql(f"SELECT valid_until_ts FROM server_signing_keys"
                       f" WHERE server_name = '{b.server_name}'"))
    assert valid <= time.time() * 1000 + 7 * 86400 * 1000  # the spec's 7-day cap

    # The batch form, with a key ID and a minimum validity we can meet.
    body = {"server_keys": {b.server_name: {key_id: {"minimum_valid_until_ts": 1}},
                            a.server_name: {}}}
    r = https(pki, a.fed_base, "POST", "/_matrix/key/v2/query", body)
    assert r.status == 200, r.raw
    names = sorted(e["server_name"] for e in r.json["server_keys"])
    assert names == sorted([a.server_name, b.server_name])
    for e in r.json["server_keys"]:
        verify_signed_json(e, a.server_name, get_verify_key(a_sk))

    # A server nobody answers for: no keys, still 200.
    r = https(pki, a.fed_base, "GET", f"/_matrix/key/v2/query/localhost:{free_port()}")
    assert r.status == 200 and r.json == {"server_keys": []}
    # Nonsense is refused as the spec's schema says.
    r = https(pki, a.fed_base, "POST", "/_matrix/key/v2/query", {"server_keys": []})
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = https(pki, a.fed_base, "GET",
              f"/_matrix/key/v2/query/{b.server_name}?minimum_valid_until_ts=soon")
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    r = https(pki, a.fed_base, "POST", "/_matrix/key/v2/query", {})
    assert r.status == 400


def test_signed_request_is_accepted(fed):
    a, b = fed["a"], fed["b"]
    r = a.fed_request(b.server_name, "/_matrix/federation/v1/version")
    assert r.status == 200, r.raw
    assert r.json["status"] == 200
    assert r.json["body"]["server"]["name"] == "pvyhs"
    # B checked the signature: it fetched A's key from A to do so.
    (key_id,) = [k for k, _ in b.stored_key(a.server_name)]
    assert b.stored_key(a.server_name) == [(key_id, a.server_name)]
    assert key_id == a.signing_key().alg + ":" + a.signing_key().version


def xmatrix_header(sk, origin, destination, method, uri, content=None, unquoted=False,
                   with_destination=True, sig_hook=None):
    obj = {"method": method, "uri": uri, "origin": origin, "destination": destination}
    if content is not None:
        obj["content"] = content
    signed = sign_json(obj, origin, sk)
    key_id = f"{sk.alg}:{sk.version}"
    sig = signed["signatures"][origin][key_id]
    if sig_hook:
        sig = sig_hook(sig)
    params = [("origin", origin)]
    if with_destination:
        params.append(("destination", destination))
    params += [("key", key_id), ("sig", sig)]
    if unquoted:
        return "X-Matrix " + " , ".join(f"{k}={v}" for k, v in params)
    return "X-Matrix " + ",".join(f'{k}="{v}"' for k, v in params)


def flip(sig):
    raw = bytearray(decode_base64(sig))
    raw[0] ^= 1
    return encode_base64(bytes(raw))


def test_forged_and_tampered_requests_are_refused(fed, pki):
    a, b = fed["a"], fed["b"]
    sk = a.signing_key()
    path = "/_matrix/federation/v1/version?probe=1"

    def send(header, uri=path):
        return https(pki, b.fed_base, "GET", uri, headers={"Authorization": header})

    ok = send(xmatrix_header(sk, a.server_name, b.server_name, "GET", path))
    assert ok.status == 200, ok.raw
    # Older senders: no destination; unquoted values with ':' inside.
    assert send(xmatrix_header(sk, a.server_name, b.server_name, "GET", path,
                               with_destination=False)).status == 200
    assert send(xmatrix_header(sk, a.server_name, b.server_name, "GET", path,
                               unquoted=True)).status == 200

    refused = {
        "bad signature": send(xmatrix_header(sk, a.server_name, b.server_name, "GET", path,
                                             sig_hook=flip)),
        "other target": send(xmatrix_header(sk, a.server_name, b.server_name, "GET", path),
                             uri="/_matrix/federation/v1/version?probe=2"),
        "other method": send(xmatrix_header(sk, a.server_name, b.server_name, "PUT", path)),
        "signed with content": send(xmatrix_header(sk, a.server_name, b.server_name, "GET", path,
                                                   content={})),
        "destination mismatch": send(xmatrix_header(sk, a.server_name, "localhost:1", "GET", path)),
        "signed for another destination": send(
            xmatrix_header(sk, a.server_name, "localhost:1", "GET", path, with_destination=False)),
        "malformed": send('X-Matrix origin="' + a.server_name + '",key="ed25519:x"'),
        "origin not a server name": send(xmatrix_header(sk, "not a name", b.server_name, "GET", path)),
        "unknown key": send(xmatrix_header(sk, a.server_name, b.server_name, "GET", path)
                            .replace(f'key="{sk.alg}:{sk.version}"', 'key="ed25519:nope"')),
    }
    for what, r in refused.items():
        assert r.status == 401, (what, r.status, r.raw)
        assert r.json["errcode"] == "M_UNAUTHORIZED", (what, r.raw)
    assert "Destination mismatch" in refused["destination mismatch"].json["error"]
    # A body with no canonical JSON form (a float) is a bad request, not a
    # failed signature: 400 M_BAD_JSON, as Synapse answers (SyTest's
    # "… rejects invalid JSON for room version 6").
    txn = "/_matrix/federation/v1/send/floaty"
    r = https(pki, b.fed_base, "PUT", txn, {"pdus": [], "x": 1.5},
              headers={"Authorization": xmatrix_header(sk, a.server_name, b.server_name, "PUT",
                                                       txn, content={"pdus": []})})
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON", r.raw
    # Another scheme is not X-Matrix at all: /version, where signing is
    # optional, ignores it (as Synapse does).
    assert send("Bearer something").status == 200


def test_notary_serves_a_third_server(fed):
    """C trusts A as notary: to check B's request it asks A for B's keys."""
    a, b, c = fed["a"], fed["b"], fed["c"]
    assert c.stored_key(b.server_name) == []
    r = b.fed_request(c.server_name, "/_matrix/federation/v1/version")
    assert r.status == 200, r.raw
    assert r.json["status"] == 200, r.json
    rows = c.stored_key(b.server_name)
    assert len(rows) == 1 and rows[0][1] == a.server_name, rows
    # What C keeps is B's response with B's signatures only.
    kept = json.loads(c.psql("SELECT key_json FROM server_key_responses"
                             f" WHERE server_name = '{b.server_name}'"))
    assert list(kept["signatures"]) == [b.server_name]
    assert c.psql("SELECT from_server FROM server_key_responses"
                  f" WHERE server_name = '{b.server_name}'") == a.server_name


def test_domain_whitelist_both_ways(fed, pki):
    a, c = fed["a"], fed["c"]
    stranger = f"localhost:{free_port()}"
    # Outbound: C will not talk to a server outside its list.
    r = c.fed_request(stranger, "/_matrix/federation/v1/version")
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
    assert "federation_domain_whitelist" in r.json["error"]
    # Inbound: a request from outside the list is refused before any key fetch.
    sk = a.signing_key()
    path = "/_matrix/federation/v1/version"
    r = https(pki, c.fed_base, "GET", path,
              headers={"Authorization": xmatrix_header(sk, stranger, c.server_name, "GET", path)})
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
    assert c.stored_key(stranger) == []
    # As notary C vouches for nobody outside the list either.
    r = https(pki, c.fed_base, "GET", f"/_matrix/key/v2/query/{stranger}")
    assert r.status == 200 and r.json["server_keys"] == []
    # And A, listed, gets through.
    r = a.fed_request(c.server_name, path)
    assert r.status == 200 and r.json["status"] == 200, r.raw


def test_blacklisted_address_is_refused(fed):
    a, b = fed["a"], fed["b"]
    # B listens on ::1 too, but ::1 is in the default blacklist and not in
    # A's ip_range_whitelist (127.0.0.0/8): A must not connect.
    r = a.fed_request(f"[::1]:{b.fed_port}", "/_matrix/federation/v1/version")
    assert r.status == 403, r.raw
    assert r.json["errcode"] == "M_FORBIDDEN"
    assert "ip_range_blacklist" in r.json["error"]
    # 127.0.0.1 is whitelisted: that connection happens (and B refuses the
    # signature, made for another destination, which proves we got there).
    r = a.fed_request(f"127.0.0.1:{b.fed_port}", "/_matrix/federation/v1/version")
    assert r.status == 200 and r.json["status"] == 401, r.raw


def test_admin_hook_is_admin_only(fed):
    a, b = fed["a"], fed["b"]
    a.add_user("fedta_user")
    tok = a.login("fedta_user")
    r = a.request("POST", "/_pvyhs/admin/v1/federation/request",
                  {"destination": b.server_name, "path": "/_matrix/federation/v1/version"},
                  token=tok)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = a.request("POST", "/_pvyhs/admin/v1/federation/request",
                  {"destination": b.server_name, "path": "/_matrix/federation/v1/version"})
    assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN"
    r = a.fed_request(b.server_name, "/not/matrix")
    assert r.status == 400


# ---- .well-known delegation --------------------------------------------------------------


class Recorder(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        srv.seen.append({"path": self.path, "host": self.headers.get("Host"),
                         "auth": self.headers.get("Authorization")})
        status, body, headers = srv.answer(self.path)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def https_server(pki, port, answer):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Recorder)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.seen = []
    srv.answer = answer
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_well_known_delegation(fed, pki):
    """'localhost' (no port) delegates through its well-known to a target on
    another port: A connects there with Host = the delegated name, signs for
    the original name, and caches the well-known."""
    a = fed["a"]
    target_port = free_port()
    target = https_server(pki, target_port, lambda path: (
        200, {"server": {"name": "delegated-target", "version": "1"}}, {}))
    wk = https_server(pki, a.wk_port, lambda path: (
        (200, {"m.server": f"localhost:{target_port}"}, {"Cache-Control": "max-age=3600"})
        if path == "/.well-known/matrix/server" else (404, {}, {})))
    try:
        for _ in range(2):
            r = a.fed_request("localhost", "/_matrix/federation/v1/version")
            assert r.status == 200, r.raw
            assert r.json["status"] == 200
            assert r.json["body"]["server"]["name"] == "delegated-target"
        assert [s["path"] for s in wk.seen] == ["/.well-known/matrix/server"]  # cached
        assert len(target.seen) == 2
        seen = target.seen[0]
        assert seen["path"] == "/_matrix/federation/v1/version"
        assert seen["host"] == f"localhost:{target_port}"
        # The signature names the server as known before delegation.
        auth = seen["auth"]
        assert f'destination="localhost"' in auth and f'origin="{a.server_name}"' in auth
        sk = a.signing_key()
        sig = auth.split('sig="')[1].rstrip('"')
        obj = {"method": "GET", "uri": "/_matrix/federation/v1/version", "origin": a.server_name,
               "destination": "localhost",
               "signatures": {a.server_name: {f"{sk.alg}:{sk.version}": sig}}}
        verify_signed_json(obj, a.server_name, get_verify_key(sk))
    finally:
        for s in (target, wk):
            s.shutdown()
            s.server_close()
