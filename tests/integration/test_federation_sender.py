"""test_federation_sender.py — the outbound side of federation and the
queries, between real servers over TLS.

Two pvyhs servers named localhost:PORT trusting a test CA (the helpers of
test_federation_transport.py), and Python peers: HTTPS servers with their
own signing key that check every transaction's X-Matrix signature and record
it, answer what the test says (200, 500, 400), or are switched off.
  hs1  backs off for one second at first (PVYHS_FEDERATION_MIN_RETRY_MS) and
       catches up in full up to 30 queued PDUs (PVYHS_FEDERATION_CATCHUP_MAX_PDUS)
  hs2  Synapse's back-off (ten minutes), for the "came back" signal
  (both without the quick retries before a back-off: PVYHS_FEDERATION_SEND_RETRIES=0)
  hs4  everything as shipped: quick retries (4 s, 16 s, 60 s ...), then ten minutes
A peer takes part in a room of hs1 by a row in hs1's current_state (the
joins over federation are not this file's subject): what the sender reads to
find a room's servers.
"""
import http.server
import json
import re
import socket
import ssl
import threading
import time
import urllib.parse

import pytest
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json, verify_signed_json
from unpaddedbase64 import decode_base64

from e2ee_crypto import CrossSigningKey, Device
from harness import Server, free_port
from test_federation_transport import FedServer, https, pki, stop_clean, xmatrix_header  # noqa: F401

V3 = "/_matrix/client/v3"


def q(s):
    return urllib.parse.quote(s, safe="")


def wait_until(pred, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# ---- a Python peer ----------------------------------------------------------------------


class Peer:
    """A federation server played by Python: its key at /_matrix/key/v2/server,
    signed /send transactions checked and recorded."""

    def __init__(self, pki, trusted):
        self.pki = pki
        self.port = free_port()
        self.server_name = f"localhost:{self.port}"
        self.sk = generate_signing_key("peer")
        self.trusted = trusted  # server name -> verify key
        self.txns = []  # (txn_id, origin, body)
        self.answer = 200
        self.refused = 0
        self.lock = threading.Lock()
        self.httpd = None
        self.conns = set()

    # -- the server --

    def start(self):
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # connections are kept, as servers do
            disable_nagle_algorithm = True  # headers and body go in separate writes

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with peer.lock:
                    peer.conns.add(self.connection)

            def finish(self):
                with peer.lock:
                    peer.conns.discard(self.connection)
                super().finish()

            def reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/_matrix/key/v2/server":
                    return self.reply(200, peer.key_response())
                self.reply(404, {"errcode": "M_UNRECOGNIZED", "error": "nope"})

            def do_PUT(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                m = re.fullmatch(r"/_matrix/federation/v1/send/([^/?]+)", self.path)
                if not m:
                    return self.reply(404, {"errcode": "M_UNRECOGNIZED", "error": "nope"})
                origin = peer.check_signature("PUT", self.path, self.headers["Authorization"],
                                              body)
                if origin is None:
                    return self.reply(401, {"errcode": "M_UNAUTHORIZED", "error": "bad sig"})
                if peer.answer != 200:
                    with peer.lock:
                        peer.refused += 1
                    return self.reply(peer.answer, {"errcode": "M_UNKNOWN", "error": "test says"})
                with peer.lock:
                    peer.txns.append((m.group(1), origin, body))
                self.reply(200, {"pdus": {}})

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.pki / "server.pem"), str(self.pki / "server.key"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        """Down: no new connections, and the kept-alive ones cut."""
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def key_response(self):
        vk = get_verify_key(self.sk)
        return sign_json({"server_name": self.server_name,
                          "valid_until_ts": int(time.time() * 1000) + 86400000,
                          "verify_keys": {f"ed25519:{self.sk.version}":
                                          {"key": encode_verify_key_base64(vk)}},
                          "old_verify_keys": {}}, self.server_name, self.sk)

    def check_signature(self, method, uri, header, content):
        params = dict(re.findall(r'(\w+)="([^"]*)"', header or ""))
        origin = params.get("origin")
        if origin not in self.trusted or params.get("destination") != self.server_name:
            return None
        obj = {"method": method, "uri": uri, "origin": origin, "destination": self.server_name,
               "content": content, "signatures": {origin: {params["key"]: params["sig"]}}}
        try:
            verify_signed_json(obj, origin, self.trusted[origin])
        except Exception:
            return None
        return origin

    # -- what arrived --

    def pdus(self):
        with self.lock:
            return [p for _, _, b in self.txns for p in b["pdus"]]

    def edus(self, edu_type=None):
        with self.lock:
            return [e for _, _, b in self.txns for e in b.get("edus", [])
                    if edu_type is None or e["edu_type"] == edu_type]

    def bodies(self):
        return [p["content"].get("body") for p in self.pdus() if p["type"] == "m.room.message"]

    def signed_get(self, hs, path):
        """A signed request from this peer to hs (it then fetches our key)."""
        header = xmatrix_header(self.sk, self.server_name, hs.server_name, "GET", path)
        return https(self.pki, hs.fed_base, "GET", path, headers={"Authorization": header})


# ---- servers -----------------------------------------------------------------------------


def verify_key_of(pki, hs):
    keys = https(pki, hs.fed_base, "GET", "/_matrix/key/v2/server").json
    (key_id, k), = keys["verify_keys"].items()
    vk = get_verify_key(hs.signing_key())
    assert encode_verify_key_base64(vk) == k["key"]
    return vk


@pytest.fixture(scope="module")
def net(pki):
    hs1 = FedServer(pki, prefix="fsq1", extra=Server.NO_LIMITS + "presence:\n  enabled: true\n",
                    env={"PVYHS_FEDERATION_MIN_RETRY_MS": "1000",
                         "PVYHS_FEDERATION_CATCHUP_MAX_PDUS": "30",
                         "PVYHS_FEDERATION_SEND_RETRIES": "0"})
    hs2 = FedServer(pki, prefix="fsq2", extra=Server.NO_LIMITS,
                    env={"PVYHS_FEDERATION_SEND_RETRIES": "0"})
    hs1.start()
    hs2.start()
    trusted = {hs1.server_name: verify_key_of(pki, hs1), hs2.server_name: verify_key_of(pki, hs2)}
    yield {"hs1": hs1, "hs2": hs2, "trusted": trusted}
    stop_clean(hs1, hs2)
    for s in (hs1, hs2):
        s.__exit__(None, None, None)


@pytest.fixture
def peer(net, pki):
    p = Peer(pki, net["trusted"]).start()
    yield p
    p.stop()


class User:
    def __init__(self, hs, name, device_id=None):
        self.hs = hs
        self.user_id = hs.add_user(name)
        self.token = hs.login(name, device_id=device_id)
        self.n = 0

    def req(self, method, path, body=None):
        return self.hs.request(method, V3 + path, body, token=self.token)

    def room(self):
        r = self.req("POST", "/createRoom", {"preset": "private_chat"})
        assert r.status == 200, r
        return r.json["room_id"]

    def say(self, room, body):
        self.n += 1
        r = self.req("PUT", f"/rooms/{q(room)}/send/m.room.message/t{time.time()}.{self.n}",
                     {"msgtype": "m.text", "body": body})
        assert r.status == 200, r
        return r.json["event_id"]


def let_in(hs, room, peer, name="peer"):
    """Make peer's server a member of room as hs's sender sees it."""
    user = f"@{name}:{peer.server_name}"
    hs.psql("INSERT INTO current_state (room_id, type, state_key, event_id, membership)"
            f" VALUES ('{room}', 'm.room.member', '{user}', '$fsq-{name}-{peer.port}', 'join')")
    return user


def queued(hs, dest):
    return int(hs.psql(f"SELECT count(*) FROM federation_outbound_pdus WHERE destination = '{dest}'"))


def backoff(hs, dest):
    v = hs.psql(f"SELECT retry_interval_ms FROM federation_destinations WHERE destination = '{dest}'")
    return int(v) if v else None


# ---- PDUs ----------------------------------------------------------------------------------


def test_local_events_go_to_the_servers_in_the_room(net, peer):
    hs1 = net["hs1"]
    alice = User(hs1, "fsq_alice")
    room = alice.room()
    alice.say(room, "before the peer")
    let_in(hs1, room, peer)
    ids = [alice.say(room, f"hello {i}") for i in range(3)]
    wait_until(lambda: len(peer.bodies()) >= 3, what="three messages")
    # Exactly the events after it joined, in order, signed by hs1, as PDUs.
    assert peer.bodies() == ["hello 0", "hello 1", "hello 2"]
    for p in peer.pdus():
        assert p["room_id"] == room and p["sender"] == alice.user_id
        assert hs1.server_name in p["signatures"] and "sha256" in p["hashes"]
        assert "unsigned" not in p and "event_id" not in p  # v3+: the ID is the hash
    assert {t[1] for t in peer.txns} == {hs1.server_name}
    for txn_id, _, body in peer.txns:
        assert body["origin"] == hs1.server_name
        assert abs(body["origin_server_ts"] - time.time() * 1000) < 60000
        assert len(body["pdus"]) <= 50 and len(body.get("edus", [])) <= 100
    # A transaction ID is never reused.
    assert len({t[0] for t in peer.txns}) == len(peer.txns)
    wait_until(lambda: queued(hs1, peer.server_name) == 0, what="an empty queue")
    stored = hs1.psql("SELECT count(*) FROM events WHERE event_id IN ("
                      + ",".join(f"'{i}'" for i in ids) + ")")
    assert stored == "3"


def test_many_events_are_batched_fifty_per_transaction(net, peer):
    hs2 = net["hs2"]  # its catch-up resends everything up to 50,000 PDUs
    alice = User(hs2, "fsq_batch")
    room = alice.room()
    let_in(hs2, room, peer)
    peer.stop()  # let a backlog build up
    for i in range(120):
        alice.say(room, f"m{i}")
    wait_until(lambda: queued(hs2, peer.server_name) == 120, what="120 queued PDUs")
    peer.start()
    peer.signed_get(hs2, "/_matrix/federation/v1/version")  # "I am back"
    wait_until(lambda: len(peer.bodies()) >= 120, what="the backlog", timeout=60)
    assert peer.bodies() == [f"m{i}" for i in range(120)]
    sizes = [len(b["pdus"]) for _, _, b in peer.txns]
    assert max(sizes) == 50 and sum(sizes) == 120, sizes


def test_outage_backoff_and_restart_lose_nothing(net, peer):
    """The peer is down: hs1 backs off (1 s, then about twice that), keeps
    the queue across its own restart, and delivers everything in order once
    the peer is back."""
    hs1 = net["hs1"]
    alice = User(hs1, "fsq_outage")
    room = alice.room()
    let_in(hs1, room, peer)
    peer.stop()
    for i in range(12):
        alice.say(room, f"while down {i}")
    wait_until(lambda: backoff(hs1, peer.server_name), what="a back-off")
    assert backoff(hs1, peer.server_name) == 1000
    assert queued(hs1, peer.server_name) == 12
    # The second failure backs off longer: 1 s x 2 x (0.8 .. 1.4).
    wait_until(lambda: (backoff(hs1, peer.server_name) or 0) > 1000, what="more back-off")
    assert 1600 <= backoff(hs1, peer.server_name) <= 2800
    failure_ts = int(hs1.psql("SELECT failure_ts FROM federation_destinations"
                              f" WHERE destination = '{peer.server_name}'"))
    assert failure_ts <= time.time() * 1000

    # hs1 restarts with the peer still down: the queue is in PostgreSQL.
    assert hs1.stop() == 0
    hs1.start()
    assert queued(hs1, peer.server_name) == 12
    alice.token = hs1.login("fsq_outage")
    alice.say(room, "after the restart")
    peer.start()
    wait_until(lambda: len(peer.bodies()) >= 13, timeout=60, what="the catch-up")
    assert peer.bodies() == [f"while down {i}" for i in range(12)] + ["after the restart"]
    wait_until(lambda: backoff(hs1, peer.server_name) == 0, what="the back-off to end")
    assert hs1.psql("SELECT failure_ts IS NULL AND last_success_ts > 0 FROM federation_destinations"
                    f" WHERE destination = '{peer.server_name}'") == "t"
    assert queued(hs1, peer.server_name) == 0
    assert "is reachable again" in hs1.read_log()


def test_a_server_that_comes_back_is_served_at_once(net, peer):
    """hs2 backs off ten minutes after a 500; a signed request from the peer
    shows it is up again, and the queue goes out without waiting."""
    hs2 = net["hs2"]
    bob = User(hs2, "fsq_bob2")
    room = bob.room()
    let_in(hs2, room, peer)
    peer.answer = 500
    bob.say(room, "refused")
    wait_until(lambda: backoff(hs2, peer.server_name), what="a back-off")
    assert backoff(hs2, peer.server_name) == 600000  # Synapse's ten minutes
    assert peer.refused == 1
    bob.say(room, "queued behind it")
    time.sleep(1)
    assert peer.refused == 1 and peer.pdus() == []  # no retry before the time
    peer.answer = 200
    r = peer.signed_get(hs2, "/_matrix/federation/v1/version")
    assert r.status == 200, r.raw
    wait_until(lambda: len(peer.bodies()) >= 2, what="the queue after the signal")
    assert peer.bodies() == ["refused", "queued behind it"]
    wait_until(lambda: backoff(hs2, peer.server_name) == 0, what="no back-off")


def test_a_refused_transaction_is_dropped_not_retried(net, peer):
    hs1 = net["hs1"]
    alice = User(hs1, "fsq_refused")
    room = alice.room()
    let_in(hs1, room, peer)
    peer.answer = 400
    alice.say(room, "never accepted")
    wait_until(lambda: peer.refused == 1 and queued(hs1, peer.server_name) == 0,
               what="the transaction to be dropped")
    assert not backoff(hs1, peer.server_name)  # a 400 is an answer: no back-off
    peer.answer = 200
    alice.say(room, "accepted")
    wait_until(lambda: peer.bodies() == ["accepted"], what="the next message")
    assert peer.refused == 1
    assert "refused a transaction" in hs1.read_log()


def test_catch_up_past_the_limit_sends_the_newest_of_each_room(net, peer):
    hs1 = net["hs1"]
    alice = User(hs1, "fsq_catchup")
    rooms = [alice.room(), alice.room()]
    for room in rooms:
        let_in(hs1, room, peer)
    peer.stop()
    for room in rooms:
        for i in range(20):
            alice.say(room, f"{room[:6]} {i}")
    wait_until(lambda: queued(hs1, peer.server_name) == 40, what="40 queued PDUs")
    wait_until(lambda: backoff(hs1, peer.server_name), what="a back-off")
    peer.start()
    peer.signed_get(hs1, "/_matrix/federation/v1/version")
    wait_until(lambda: len(peer.bodies()) >= 2, what="the catch-up")
    time.sleep(0.5)
    # 40 > 30: the newest event of each room, which names its prev_events
    # for the peer to fetch the rest.
    assert sorted(peer.bodies()) == sorted(f"{room[:6]} 19" for room in rooms)
    assert all(p["prev_events"] for p in peer.pdus())
    assert queued(hs1, peer.server_name) == 0
    assert "catches up with the newest event of each room" in hs1.read_log()


# ---- EDUs ----------------------------------------------------------------------------------


def test_typing_receipts_and_presence(net, peer):
    hs1 = net["hs1"]
    alice = User(hs1, "fsq_edus")
    room = alice.room()
    let_in(hs1, room, peer)
    ev = alice.say(room, "read me")
    r = alice.req("PUT", f"/rooms/{q(room)}/typing/{q(alice.user_id)}",
                  {"typing": True, "timeout": 20000})
    assert r.status == 200
    typing = wait_until(lambda: peer.edus("m.typing"), what="m.typing")
    assert typing[0]["content"] == {"room_id": room, "user_id": alice.user_id, "typing": True}
    alice.req("PUT", f"/rooms/{q(room)}/typing/{q(alice.user_id)}", {"typing": False})
    wait_until(lambda: len(peer.edus("m.typing")) == 2, what="typing stopped")
    assert peer.edus("m.typing")[1]["content"]["typing"] is False
    # A time-out the client never ends is a stop for other servers too.
    r = alice.req("PUT", f"/rooms/{q(room)}/typing/{q(alice.user_id)}",
                  {"typing": True, "timeout": 1000})
    assert r.status == 200
    wait_until(lambda: len(peer.edus("m.typing")) == 4, what="typing timed out")
    third, fourth = [e["content"] for e in peer.edus("m.typing")[2:]]
    assert third["typing"] is True and fourth == {"room_id": room, "user_id": alice.user_id,
                                                  "typing": False}

    assert alice.req("POST", f"/rooms/{q(room)}/receipt/m.read/{q(ev)}", {}).status == 200
    rec = wait_until(lambda: peer.edus("m.receipt"), what="m.receipt")
    (content,) = [e["content"] for e in rec]
    mine = content[room]["m.read"][alice.user_id]
    assert mine["event_ids"] == [ev]
    assert abs(mine["data"]["ts"] - time.time() * 1000) < 60000
    # A private receipt stays here.
    assert alice.req("POST", f"/rooms/{q(room)}/receipt/m.read.private/{q(ev)}", {}).status == 200

    r = alice.req("PUT", f"/presence/{q(alice.user_id)}/status",
                  {"presence": "unavailable", "status_msg": "baking"})
    assert r.status == 200
    pres = wait_until(lambda: [e for e in peer.edus("m.presence")
                               if e["content"]["push"][0].get("status_msg") == "baking"],
                      what="m.presence")
    (push,) = pres[-1]["content"]["push"]
    assert push["user_id"] == alice.user_id and push["presence"] == "unavailable"
    assert isinstance(push["last_active_ago"], int) and push["last_active_ago"] >= 0
    assert isinstance(push["currently_active"], bool)
    time.sleep(0.5)
    for e in peer.edus("m.receipt"):  # never the private one
        assert list(e["content"][room]) == ["m.read"]
    for _, _, body in peer.txns:
        assert len(body.get("edus", [])) <= 100


def test_device_list_and_signing_key_updates(net, peer):
    hs1 = net["hs1"]
    alice = User(hs1, "fsq_devs", device_id="FSQDEV1")
    room = alice.room()
    let_in(hs1, room, peer)
    dev = Device(alice.user_id, "FSQDEV1")
    r = alice.req("POST", "/keys/upload", {"device_keys": dev.device_keys(),
                                           "one_time_keys": dev.one_time_keys(2)})
    assert r.status == 200, r
    upd = wait_until(lambda: peer.edus("m.device_list_update"), what="m.device_list_update")
    first = upd[0]["content"]
    assert first["user_id"] == alice.user_id and first["device_id"] == "FSQDEV1"
    assert first["keys"] == dev.device_keys()
    assert isinstance(first["stream_id"], int) and first["prev_id"] == []  # the peer's first
    assert "device_display_name" not in first  # not shared over federation
    assert "deleted" not in first

    # Cross-signing keys: an m.signing_key_update; the self-signing key's
    # signature on the device: another device list update naming the first.
    master = CrossSigningKey(alice.user_id, "master")
    ssk = CrossSigningKey(alice.user_id, "self_signing")
    usk = CrossSigningKey(alice.user_id, "user_signing")
    r = alice.req("POST", "/keys/device_signing/upload",
                  {"master_key": master.key(), "self_signing_key": ssk.key(master),
                   "user_signing_key": usk.key(master)})
    assert r.status == 200, r
    sku = wait_until(lambda: peer.edus("m.signing_key_update"), what="m.signing_key_update")
    c = sku[-1]["content"]
    assert c["user_id"] == alice.user_id
    assert c["master_key"] == master.key() and c["self_signing_key"] == ssk.key(master)
    assert "user_signing_key" not in c
    signed = ssk.sign(dev.device_keys())
    r = alice.req("POST", "/keys/signatures/upload", {alice.user_id: {"FSQDEV1": signed}})
    assert r.status == 200 and r.json["failures"] == {}, r
    upd = wait_until(lambda: len(peer.edus("m.device_list_update")) >= 2, what="a second update")
    second = peer.edus("m.device_list_update")[1]["content"]
    assert second["device_id"] == "FSQDEV1"
    assert second["prev_id"] == [first["stream_id"]] and second["stream_id"] > first["stream_id"]
    assert second["keys"]["signatures"][alice.user_id][ssk.key_id] == \
        signed["signatures"][alice.user_id][ssk.key_id]

    # Logging the device out deletes it.
    assert alice.req("POST", "/logout").status == 200
    gone = wait_until(lambda: [e["content"] for e in peer.edus("m.device_list_update")
                               if e["content"].get("deleted")], what="the deletion")
    assert gone[0]["device_id"] == "FSQDEV1" and gone[0]["prev_id"] == [second["stream_id"]]
    assert "keys" not in gone[0]


def test_device_names_in_device_list_updates_when_allowed(net, peer, pki):  # noqa: F811
    """allow_device_name_lookup_over_federation on: m.device_list_update
    carries the device's display name (Synapse's device_display_name), so a
    rename reaches the servers following the list and their clients'
    /keys/query (Complement's TestFederationKeyUploadQuery); no name, no
    field. Off (hs1, above), never."""
    hs5 = FedServer(pki, prefix="fsq5",
                    extra=Server.NO_LIMITS + "allow_device_name_lookup_over_federation: true\n")
    try:
        hs5.start()
        net["trusted"][hs5.server_name] = verify_key_of(pki, hs5)
        alice = User(hs5, "fsq_names", device_id="NAMEDEV")
        room = alice.room()
        let_in(hs5, room, peer)
        dev = Device(alice.user_id, "NAMEDEV")
        assert alice.req("POST", "/keys/upload", {"device_keys": dev.device_keys()}).status == 200
        first = wait_until(lambda: peer.edus("m.device_list_update"), what="the upload")[0]["content"]
        assert first["device_id"] == "NAMEDEV" and "device_display_name" not in first
        r = alice.req("PUT", "/devices/NAMEDEV", {"display_name": "Alice's phone"})
        assert r.status == 200, r
        upd = wait_until(lambda: peer.edus("m.device_list_update")[1:], what="the rename")
        second = upd[0]["content"]
        assert second["device_display_name"] == "Alice's phone"
        assert second["keys"] == dev.device_keys() and second["prev_id"] == [first["stream_id"]]
    finally:
        stop_clean(hs5)
        hs5.__exit__(None, None, None)


def test_to_device_messages_for_remote_users(net, peer):
    hs1 = net["hs1"]
    alice = User(hs1, "fsq_todev")
    room = alice.room()
    bob = let_in(hs1, room, peer, name="bob")
    msgs = {bob: {"BOBDEV": {"ciphertext": "opaque"}, "*": {"ciphertext": "to all"}}}
    r = alice.req("PUT", "/sendToDevice/m.room.encrypted/fsq1", {"messages": msgs})
    assert r.status == 200, r
    got = wait_until(lambda: peer.edus("m.direct_to_device"), what="m.direct_to_device")
    c = got[0]["content"]
    assert c["sender"] == alice.user_id and c["type"] == "m.room.encrypted"
    assert c["messages"] == msgs and isinstance(c["message_id"], str) and c["message_id"]
    wait_until(lambda: hs1.psql("SELECT count(*) FROM device_federation_outbox"
                                f" WHERE destination = '{peer.server_name}'") == "0",
               what="the outbox drained")
    # The same transaction ID again: nothing more.
    assert alice.req("PUT", "/sendToDevice/m.room.encrypted/fsq1", {"messages": msgs}).status == 200
    time.sleep(0.5)
    assert len(peer.edus("m.direct_to_device")) == 1

    # A sender's messages arrive in the order sent, even when they queued up
    # while the peer was down: one of a sender per transaction, since Synapse
    # handles a transaction's EDUs concurrently (a SAS verification's mac
    # and done, reordered, time the verification out).
    carol = User(hs1, "fsq_todev_c")
    peer.stop()
    steps = ["m.key.verification.key", "m.key.verification.mac", "m.key.verification.done"]
    for i, t in enumerate(steps):
        r = alice.req("PUT", f"/sendToDevice/{t}/fsq-o{i}", {"messages": {bob: {"BOBDEV": {"n": i}}}})
        assert r.status == 200, r
        r = carol.req("PUT", f"/sendToDevice/m.dummy/fsq-c{i}", {"messages": {bob: {"*": {"n": i}}}})
        assert r.status == 200, r
    wait_until(lambda: backoff(hs1, peer.server_name), what="a back-off")
    peer.start()
    wait_until(lambda: len(peer.edus("m.direct_to_device")) == 7, what="the queued messages")
    assert [e["content"]["type"] for e in peer.edus("m.direct_to_device")
            if e["content"]["sender"] == alice.user_id][1:] == steps
    for _, _, body in peer.txns:
        senders = [e["content"]["sender"] for e in body.get("edus", [])
                   if e["edu_type"] == "m.direct_to_device"]
        assert len(senders) == len(set(senders)), body
    # Both senders' first messages still share one transaction.
    assert any(len([e for e in b.get("edus", []) if e["edu_type"] == "m.direct_to_device"]) == 2
               for _, _, b in peer.txns)
    wait_until(lambda: backoff(hs1, peer.server_name) == 0, what="the back-off to end")


# ---- quick retries (as shipped) ------------------------------------------------------------


@pytest.fixture(scope="module")
def hs4(net, pki):  # noqa: F811
    hs = FedServer(pki, prefix="fsq4", extra=Server.NO_LIMITS)
    hs.start()
    net["trusted"][hs.server_name] = verify_key_of(pki, hs)  # peers check its signatures
    yield hs
    stop_clean(hs)
    hs.__exit__(None, None, None)


def to_device(user, peer, tag):
    r = user.req("PUT", f"/sendToDevice/my.test.type/{tag}",
                 {"messages": {f"@bob:{peer.server_name}": {"BOBDEV": {"tag": tag}}}})
    assert r.status == 200, r


def tags(peer):
    return [e["content"]["messages"][f"@bob:{peer.server_name}"]["BOBDEV"]["tag"]
            for e in peer.edus("m.direct_to_device")]


def test_a_failed_send_is_retried_within_seconds(hs4, peer):
    """Complement's interrupted connectivity: a 500 (or no answer) is retried
    after about 4 s (Synapse's retries within one /send), with no back-off
    stored, so a server that comes back gets its to-device messages without
    sending us anything first."""
    alice = User(hs4, "fsq_quick")
    peer.answer = 500
    to_device(alice, peer, "q1")
    wait_until(lambda: peer.refused == 1, what="the first attempt")
    refused_at = time.time()
    assert not backoff(hs4, peer.server_name)  # not backing off (yet)
    peer.answer = 200
    wait_until(lambda: tags(peer) == ["q1"], timeout=10, what="the retry")
    waited = time.time() - refused_at
    assert 2.5 < waited < 7, waited  # 4 s x (0.8 .. 1.4)
    assert peer.refused == 1
    assert "retry 1 of 10 in" in hs4.read_log()
    assert not backoff(hs4, peer.server_name)

    # While it waits for a quick retry, a signed request from the peer shows
    # it is up: the queue goes out at once.
    peer.answer = 500
    to_device(alice, peer, "q2")
    wait_until(lambda: peer.refused == 2, what="the second refusal")
    refused_at = time.time()
    peer.answer = 200
    assert peer.signed_get(hs4, "/_matrix/federation/v1/version").status == 200
    wait_until(lambda: tags(peer) == ["q1", "q2"], timeout=10, what="the queue after the signal")
    assert time.time() - refused_at < 2.5


def test_a_restart_during_quick_retries_sends_at_once(hs4, peer):
    """Complement's stopped server: the peer is down, hs4 restarts, then the
    peer comes back; the quick retries were never stored as a back-off, so
    the restarted hs4 sends what waited within seconds."""
    alice = User(hs4, "fsq_quick_restart")
    before = hs4.read_log().count(f"cannot send to {peer.server_name}")
    peer.stop()
    to_device(alice, peer, "r1")
    wait_until(lambda: hs4.read_log().count(f"cannot send to {peer.server_name}") > before,
               what="a failed attempt")
    assert not backoff(hs4, peer.server_name)
    assert hs4.stop() == 0
    hs4.start()
    peer.start()
    wait_until(lambda: tags(peer) == ["r1"], timeout=15, what="the message after the restart")


# ---- queries -------------------------------------------------------------------------------


def test_profiles_across_servers(net):
    hs1, hs2 = net["hs1"], net["hs2"]
    alice = User(hs1, "fsq_prof")
    bob = User(hs2, "fsq_prof_bob")
    assert alice.req("PUT", f"/profile/{q(alice.user_id)}/displayname",
                     {"displayname": "Alice F"}).status == 200
    assert alice.req("PUT", f"/profile/{q(alice.user_id)}/m.tz", {"m.tz": "Europe/Paris"}).status == 200
    r = bob.req("GET", f"/profile/{q(alice.user_id)}")
    assert r.status == 200, r
    assert r.json["displayname"] == "Alice F" and r.json["m.tz"] == "Europe/Paris"
    assert "avatar_url" not in r.json
    r = bob.req("GET", f"/profile/{q(alice.user_id)}/displayname")
    assert r.status == 200 and r.json == {"displayname": "Alice F"}, r
    r = bob.req("GET", f"/profile/{q(alice.user_id)}/avatar_url")
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r
    r = bob.req("GET", f"/profile/{q('@nobody_fsq:' + hs1.server_name)}")
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r
    r = bob.req("GET", f"/profile/{q('@x:localhost:' + str(free_port()))}")
    assert r.status == 502, r
    # The federation endpoint itself.
    path = f"/_matrix/federation/v1/query/profile?user_id={q(alice.user_id)}"
    r = hs2.fed_request(hs1.server_name, path)
    assert r.json["status"] == 200 and r.json["body"]["displayname"] == "Alice F", r.raw
    r = hs2.fed_request(hs1.server_name, path + "&field=m.tz")
    assert r.json["body"] == {"m.tz": "Europe/Paris"}, r.raw
    # A field the user has not set: left out of a 200 (the spec; Synapse's answer).
    r = hs2.fed_request(hs1.server_name, path + "&field=avatar_url")
    assert r.json["status"] == 200 and r.json["body"] == {}, r.raw
    r = hs2.fed_request(hs1.server_name, f"/_matrix/federation/v1/query/profile?user_id="
                        f"{q('@nobody_fsq:' + hs1.server_name)}&field=displayname")
    assert r.json["status"] == 404 and r.json["body"]["errcode"] == "M_NOT_FOUND", r.raw
    r = hs2.fed_request(hs1.server_name, f"/_matrix/federation/v1/query/profile?user_id="
                        f"{q(bob.user_id)}")
    assert r.json["status"] == 400, r.raw  # not hs1's user
    r = hs2.fed_request(hs1.server_name, "/_matrix/federation/v1/query/profile")
    assert r.json["status"] == 400 and r.json["body"]["errcode"] == "M_MISSING_PARAM"
    r = https(hs1.pki, hs1.fed_base, "GET", path)  # unsigned
    assert r.status == 401 and r.json["errcode"] == "M_UNAUTHORIZED"


def test_keys_across_servers(net):
    hs1, hs2 = net["hs1"], net["hs2"]
    alice = User(hs1, "fsq_keys", device_id="AKEYS")
    bob = User(hs2, "fsq_keys_bob", device_id="BKEYS")
    dev = Device(alice.user_id, "AKEYS")
    otks = dev.one_time_keys(2)
    fb = dev.fallback_key()
    r = alice.req("POST", "/keys/upload", {"device_keys": dev.device_keys(), "one_time_keys": otks,
                                           "fallback_keys": fb})
    assert r.status == 200, r
    master = CrossSigningKey(alice.user_id, "master")
    ssk = CrossSigningKey(alice.user_id, "self_signing")
    r = alice.req("POST", "/keys/device_signing/upload",
                  {"master_key": master.key(), "self_signing_key": ssk.key(master),
                   "user_signing_key": CrossSigningKey(alice.user_id, "user_signing").key(master)})
    assert r.status == 200, r
    stranger = f"@x:localhost:{free_port()}"

    r = bob.req("POST", "/keys/query", {"device_keys": {alice.user_id: [], stranger: []},
                                        "timeout": 5000})
    assert r.status == 200, r
    got = r.json["device_keys"][alice.user_id]["AKEYS"]
    expected = dict(dev.device_keys(), unsigned={})
    assert got == expected  # no display name over federation
    assert r.json["master_keys"][alice.user_id] == master.key()
    assert r.json["self_signing_keys"][alice.user_id] == ssk.key(master)
    assert r.json["user_signing_keys"] == {}
    assert list(r.json["failures"]) == [stranger.split(":", 1)[1]]
    assert stranger not in r.json["device_keys"]
    # Only the devices asked for.
    r = bob.req("POST", "/keys/query", {"device_keys": {alice.user_id: ["NOPE"]}})
    assert r.json["device_keys"] == {alice.user_id: {}} and r.json["failures"] == {}

    claim = {"one_time_keys": {alice.user_id: {"AKEYS": "signed_curve25519"}}}
    seen = []
    for _ in range(3):
        r = bob.req("POST", "/keys/claim", claim)
        assert r.status == 200 and r.json["failures"] == {}, r
        ((kid, key),) = r.json["one_time_keys"][alice.user_id]["AKEYS"].items()
        seen.append((kid, key))
    # Each one-time key once, then the fallback key.
    assert sorted(k for k, _ in seen[:2]) == sorted(otks)
    assert seen[2] == next(iter(fb.items()))
    r = bob.req("POST", "/keys/claim", {"one_time_keys": {stranger: {"D": "signed_curve25519"}}})
    assert r.status == 200 and list(r.json["failures"]) == [stranger.split(":", 1)[1]], r

    # The federation endpoints: /user/devices, and what they refuse.
    r = hs2.fed_request(hs1.server_name, f"/_matrix/federation/v1/user/devices/{q(alice.user_id)}")
    body = r.json["body"]
    assert r.json["status"] == 200, r.raw
    assert body["user_id"] == alice.user_id and body["stream_id"] > 0
    assert body["devices"] == [{"device_id": "AKEYS", "keys": expected}]
    assert body["master_key"] == master.key() and body["self_signing_key"] == ssk.key(master)
    r = hs2.fed_request(hs1.server_name, f"/_matrix/federation/v1/user/devices/{q(bob.user_id)}")
    assert r.json["status"] == 400
    r = hs2.fed_request(hs1.server_name, "/_matrix/federation/v1/user/keys/query", "POST",
                        {"device_keys": {bob.user_id: []}})
    assert r.json["status"] == 400
    r = hs2.fed_request(hs1.server_name, "/_matrix/federation/v1/user/keys/query", "POST",
                        {"device_keys": []})
    assert r.json["status"] == 400 and r.json["body"]["errcode"] == "M_BAD_JSON"
    r = hs2.fed_request(hs1.server_name, "/_matrix/federation/v1/user/keys/claim", "POST",
                        {"one_time_keys": {alice.user_id: {"AKEYS": 5}}})
    assert r.json["status"] == 400 and r.json["body"]["errcode"] == "M_BAD_JSON"
    r = https(hs1.pki, hs1.fed_base, "POST", "/_matrix/federation/v1/user/keys/query",
              {"device_keys": {alice.user_id: []}})
    assert r.status == 401


def test_openid_userinfo(net):
    hs1 = net["hs1"]
    alice = User(hs1, "fsq_openid")
    r = alice.req("POST", f"/user/{q(alice.user_id)}/openid/request_token", {})
    assert r.status == 200, r
    token = r.json["access_token"]
    # No X-Matrix: whoever holds the token asks.
    r = https(hs1.pki, hs1.fed_base, "GET",
              f"/_matrix/federation/v1/openid/userinfo?access_token={q(token)}")
    assert r.status == 200 and r.json == {"sub": alice.user_id}, r.raw
    r = https(hs1.pki, hs1.fed_base, "GET", "/_matrix/federation/v1/openid/userinfo?access_token=no")
    assert r.status == 401 and r.json["errcode"] == "M_UNKNOWN_TOKEN"
    # Without one: 401 (the spec's only error here), M_MISSING_TOKEN as Synapse.
    r = https(hs1.pki, hs1.fed_base, "GET", "/_matrix/federation/v1/openid/userinfo")
    assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN", r.raw
    # The client listener does not serve it.
    r = hs1.request("GET", f"/_matrix/federation/v1/openid/userinfo?access_token={q(token)}")
    assert r.status == 404


# ---- two pvyhs servers ------------------------------------------------------------------


def messages(user, room):
    r = user.req("GET", f"/rooms/{q(room)}/messages?dir=b&limit=100")
    assert r.status == 200, r
    return [e["content"].get("body") for e in reversed(r.json["chunk"])
            if e["type"] == "m.room.message"]


def test_a_stopped_server_catches_up_with_nothing_lost(net):
    """bob on hs2 is in alice's room on hs1; hs2 stops while alice keeps
    talking, then starts again: hs1's retries find it and it gets every
    message, in order; typing and replies flow again both ways."""
    hs1, hs2 = net["hs1"], net["hs2"]
    alice = User(hs1, "fsq_two_a")
    bob = User(hs2, "fsq_two_b")
    r = alice.req("POST", "/createRoom", {"preset": "public_chat"})
    room = r.json["room_id"]
    r = bob.req("POST", f"/join/{q(room)}?server_name={q(hs1.server_name)}", {})
    assert r.status == 200, r
    alice.say(room, "before")
    wait_until(lambda: messages(bob, room) == ["before"], what="the first message on hs2")

    assert hs2.stop() == 0
    sent = [f"while hs2 is down {i}" for i in range(25)]
    for body in sent:
        alice.say(room, body)
    wait_until(lambda: backoff(hs1, hs2.server_name), what="hs1 to back off")
    time.sleep(3)  # a few failed retries
    assert queued(hs1, hs2.server_name) == 25
    hs2.start()
    wait_until(lambda: messages(bob, room) == ["before"] + sent, timeout=90,
               what="hs2 to catch up")
    wait_until(lambda: backoff(hs1, hs2.server_name) == 0, what="the back-off to end")
    assert queued(hs1, hs2.server_name) == 0

    # Both ways again, EDUs too.
    bob.say(room, "back")
    wait_until(lambda: messages(alice, room)[-1:] == ["back"], what="hs2's reply on hs1")
    r = alice.req("PUT", f"/rooms/{q(room)}/typing/{q(alice.user_id)}", {"typing": True,
                                                                          "timeout": 20000})
    assert r.status == 200

    def bob_sees_typing():
        r = bob.req("GET", "/sync?timeout=0")
        ev = r.json.get("rooms", {}).get("join", {}).get(room, {}).get("ephemeral", {})
        return any(e["type"] == "m.typing" and alice.user_id in e["content"]["user_ids"]
                   for e in ev.get("events", []))
    wait_until(bob_sees_typing, what="alice's typing on hs2")


def fnv1a_shard(name, n):
    """fed_sender_shard_of: FNV-1a of the server name, modulo n."""
    h = 2166136261
    for b in name.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h % n


def test_sender_shard_from_the_config(net, peer, pki):  # noqa: F811
    """federation_sender_shard: "i/n" — a process sends only to the servers
    whose name hashes to i. Configured for the other shard, hs3 leaves the
    peer's PDUs queued (for the process that owns it); restarted as the
    peer's shard, it delivers them."""
    mine = fnv1a_shard(peer.server_name, 2)
    hs3 = FedServer(pki, prefix="fsq3", extra=Server.NO_LIMITS + f'federation_sender_shard: "{1 - mine}/2"\n')
    try:
        hs3.start()
        net["trusted"][hs3.server_name] = verify_key_of(pki, hs3)  # the peer checks its signatures
        alice = User(hs3, "fsq_shard")
        room = alice.room()
        let_in(hs3, room, peer)
        alice.say(room, "for the other sender")
        time.sleep(2)
        assert peer.bodies() == [] and queued(hs3, peer.server_name) == 1
        assert f"federation sender: instance {1 - mine} of 2" in hs3.read_log()
        assert hs3.stop() == 0
        with open(hs3.config) as f:
            text = f.read()
        with open(hs3.config, "w") as f:
            f.write(text.replace(f'federation_sender_shard: "{1 - mine}/2"', f'federation_sender_shard: "{mine}/2"'))
        hs3.start()
        wait_until(lambda: peer.bodies() == ["for the other sender"], what="the owning shard to send")
        wait_until(lambda: queued(hs3, peer.server_name) == 0, what="an empty queue")
    finally:
        stop_clean(hs3)
        hs3.__exit__(None, None, None)
