"""test_federation_rooms.py — rooms across servers: joins (both sides of the
handshake), /send with its checks on receipt, the read endpoints other
servers use, invites, leaves, knocks and remote aliases.

Two pvyhs servers A and B named localhost:PORT over TLS (the helpers of
test_federation_transport.py: a test CA, ip_range_whitelist 127.0.0.0/8),
plus a fake server F played by Python: it serves its own signing key over
TLS, signs X-Matrix requests and events with it, and so can join rooms on
A through make_join/send_join and push hand-made (and forged) PDUs and
EDUs with PUT /send, exactly as another homeserver would.
"""
import base64
import copy
import hashlib
import http.server
import json
import os
import ssl
import subprocess
import threading
import time
import urllib.parse

import pytest
from canonicaljson import encode_canonical_json
from signedjson.key import generate_signing_key, get_verify_key, encode_verify_key_base64
from signedjson.sign import sign_json, verify_signed_json
from unpaddedbase64 import encode_base64, decode_base64

from harness import free_port
from test_federation_transport import FedServer, https, pki, stop_clean, xmatrix_header  # noqa: F401

# ---- events as the spec builds them (room versions 11 and 12) -------------------------

KEEP_TOP = {"event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
            "signatures", "depth", "prev_events", "auth_events", "origin_server_ts"}
KEEP_CONTENT = {
    "m.room.member": {"membership", "join_authorised_via_users_server"},
    "m.room.create": None,  # v11+: all of it
    "m.room.join_rules": {"join_rule", "allow"},
    "m.room.power_levels": {"ban", "events", "events_default", "invite", "kick", "redact",
                            "state_default", "users", "users_default"},
    "m.room.history_visibility": {"history_visibility"},
    "m.room.redaction": {"redacts"},  # v11+
}


def redact(ev):
    out = {k: copy.deepcopy(v) for k, v in ev.items() if k in KEEP_TOP}
    keep = KEEP_CONTENT.get(ev["type"], set())
    content = ev.get("content", {})
    out["content"] = copy.deepcopy(content) if keep is None else \
        {k: copy.deepcopy(v) for k, v in content.items() if k in keep}
    return out


def content_hash(ev):
    e = {k: v for k, v in ev.items() if k not in ("unsigned", "signatures", "hashes")}
    return encode_base64(hashlib.sha256(encode_canonical_json(e)).digest())


def event_id(ev, redact_fn=None):
    r = (redact_fn or redact)(ev)
    r.pop("signatures", None)
    r.pop("unsigned", None)
    return "$" + encode_base64(hashlib.sha256(encode_canonical_json(r)).digest(), urlsafe=True)


def finish(ev, server_name, sk, redact_fn=None):
    """Hash and sign an event as server_name (redact_fn: the room version's
    redaction, v11's by default); returns (event, event_id)."""
    ev = copy.deepcopy(ev)
    ev.pop("signatures", None)
    ev["hashes"] = {"sha256": content_hash(ev)}
    signed = sign_json((redact_fn or redact)(ev), server_name, sk)
    ev["signatures"] = signed["signatures"]
    return ev, event_id(ev, redact_fn)


# ---- the fake server F ---------------------------------------------------------------------


class FakeServer:
    """A homeserver played by Python: keys over TLS, signed requests, and
    whatever event endpoints a test sets in self.routes."""

    def __init__(self, pki_dir):
        self.port = free_port()
        self.name = f"localhost:{self.port}"
        self.sk = generate_signing_key("f1")
        self.key_id = f"{self.sk.alg}:{self.sk.version}"
        self.pki = pki_dir
        self.routes = {}  # path prefix -> fn(method, path, body) -> (status, body)
        self.seen = []
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pki_dir / "server.pem"), str(pki_dir / "server.key"))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        self.httpd = srv
        threading.Thread(target=srv.serve_forever, daemon=True).start()

    def keys(self):
        body = {"server_name": self.name, "valid_until_ts": int(time.time() * 1000) + 86400000,
                "verify_keys": {self.key_id: {"key": encode_verify_key_base64(get_verify_key(self.sk))}},
                "old_verify_keys": {}}
        return sign_json(body, self.name, self.sk)

    def _handler(fake):
        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                fake.seen.append((self.command, self.path, body))
                if self.path.startswith("/_matrix/key/v2/server"):
                    status, out = 200, fake.keys()
                else:
                    status, out = 404, {"errcode": "M_NOT_FOUND", "error": "no"}
                    for prefix, fn in fake.routes.items():
                        if self.path.startswith(prefix):
                            status, out = fn(self.command, self.path, body)
                            break
                data = json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = _answer
        return H

    def request(self, dest, method, path, content=None):
        auth = xmatrix_header(self.sk, self.name, dest.server_name, method, path, content)
        return https(self.pki, dest.fed_base, method, path, content, headers={"Authorization": auth})

    def user(self, local):
        return f"@{local}:{self.name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fed(pki):  # noqa: F811
    a = FedServer(pki, prefix="fedra", extra=FedServer.NO_LIMITS)
    b = FedServer(pki, prefix="fedrb", extra=FedServer.NO_LIMITS)
    a.start()
    b.start()
    f = FakeServer(pki)
    yield {"a": a, "b": b, "f": f}
    f.close()
    try:
        stop_clean(a, b)
    finally:
        keep = os.environ.get("PVYHS_KEEP_LOGS")
        for name, s in (("a", a), ("b", b)):
            if keep:
                with open(os.path.join(keep, f"fedr_{name}.log"), "w") as out:
                    out.write(s.read_log())
            s.__exit__(None, None, None)


def user(s, name):
    """A user on server s and their token (created once)."""
    cache = s.__dict__.setdefault("_users", {})
    if name not in cache:
        uid = s.add_user(name)
        cache[name] = (uid, s.login(name))
    return cache[name]


def create_room(s, tok, **body):
    body.setdefault("preset", "public_chat")
    r = s.request("POST", "/_matrix/client/v3/createRoom", body, token=tok)
    assert r.status == 200, r.raw
    return r.json["room_id"]


def send_text(s, tok, room, text):
    txn = hashlib.sha1(f"{room}{text}{time.time()}".encode()).hexdigest()
    r = s.request("PUT", f"/_matrix/client/v3/rooms/{urllib.parse.quote(room)}/send/m.room.message/{txn}",
                  {"msgtype": "m.text", "body": text}, token=tok)
    assert r.status == 200, r.raw
    return r.json["event_id"]


def q(x):
    return urllib.parse.quote(x, safe="")


def wait_for(fn, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def timeline_bodies(s, tok, room):
    r = s.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/messages?dir=b&limit=50", token=tok)
    assert r.status == 200, r.raw
    return [e["content"].get("body") for e in r.json["chunk"] if e["type"] == "m.room.message"]


def sync_room(s, tok, room, section="join"):
    r = s.request("GET", "/_matrix/client/v3/sync?timeout=0", token=tok)
    assert r.status == 200, r.raw
    return r.json["rooms"][section].get(room)


# ---- joining a room of another pvyhs ---------------------------------------------------


def test_remote_join_asks_the_servers_named(fed):
    """A client naming servers has those asked, not the room ID's own too
    (Complement's TestRestrictedRoomsRemoteJoinFailOver: a join through a
    server that cannot grant it fails); naming none, a pre-v12 room ID's
    server is the fallback."""
    a, b, f = fed["a"], fed["b"], fed["f"]
    _, atok = user(a, "fedra_alice")
    _, btok = user(b, "fedrb_bob")
    room = create_room(a, atok, room_version="11")
    assert room.endswith(":" + a.server_name)
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}?via={q(f.name)}", {}, token=btok)
    assert r.status != 200, r.raw
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}", {}, token=btok)
    assert r.status == 200, r.raw


def test_remote_join_and_messages_both_ways(fed):
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fedra_alice")
    bob, btok = user(b, "fedrb_bob")
    room = create_room(a, atok, name="Across")
    send_text(a, atok, room, "before bob")
    # B knows no server for a v12 room ID: the client names one.
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}", {}, token=btok)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r.raw
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}?via={q(a.server_name)}", {}, token=btok)
    assert r.status == 200, r.raw
    assert r.json["room_id"] == room
    # B holds the room's state now: name, both members, and A sees bob joined.
    r = b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.name", token=btok)
    assert r.status == 200 and r.json["name"] == "Across", r.raw
    r = b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/joined_members", token=btok)
    assert r.status == 200 and set(r.json["joined"]) == {alice, bob}, r.raw
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/joined_members", token=atok)
    assert set(r.json["joined"]) == {alice, bob}, r.raw
    # bob's /sync shows the room joined, with its name in the state.
    entry = sync_room(b, btok, room)
    assert entry is not None
    # Messages both ways (through the federation sender).
    send_text(a, atok, room, "hello from A")
    wait_for(lambda: "hello from A" in timeline_bodies(b, btok, room), what="A's message on B")
    send_text(b, btok, room, "hello from B")
    wait_for(lambda: "hello from B" in timeline_bodies(a, atok, room), what="B's message on A")
    # A state event that came over federation names the one it replaced
    # (v1.19 unsigned.replaces_state), on B as on A.
    old = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.name/?format=event",
                    token=atok).json["event_id"]
    r = a.request("PUT", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.name/", {"name": "Renamed"},
                  token=atok)
    new = r.json["event_id"]

    def renamed_on_b():
        r = b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.name/?format=event",
                      token=btok)
        return r.json if r.status == 200 and r.json["event_id"] == new else None
    ev = wait_for(renamed_on_b, what="the rename on B")
    assert ev["unsigned"]["replaces_state"] == old
    assert ev["unsigned"]["prev_content"] == {"name": "Across"}


# ---- F, a server played by Python, in a room of A -------------------------------------


class FakeRoom:
    """What F knows of a room it joined: the state it was given and the
    events it made, to build its next events on."""

    redact_fn = None  # the room version's redaction (finish's default: v11's)

    def __init__(self, f, room_id, version):
        self.f, self.room_id, self.version = f, room_id, version
        self.state = {}  # (type, state_key) -> event id
        self.events = {}  # event id -> PDU
        self.last, self.depth = None, 0

    def learn(self, pdu):
        eid = event_id(pdu, self.redact_fn)
        self.events[eid] = pdu
        if "state_key" in pdu:
            self.state[(pdu["type"], pdu["state_key"])] = eid
        return eid

    def build(self, sender, type_, content, state_key=None, prev=None, auth_types=None):
        auth = [self.state[k] for k in (auth_types or [("m.room.power_levels", ""),
                                                       ("m.room.member", sender)])
                if k in self.state]
        ev = {"type": type_, "room_id": self.room_id, "sender": sender, "content": content,
              "origin_server_ts": int(time.time() * 1000), "depth": self.depth + 1,
              "prev_events": prev if prev is not None else [self.last], "auth_events": auth}
        if state_key is not None:
            ev["state_key"] = state_key
        return finish(ev, self.f.name, self.f.sk, self.redact_fn)

    def advance(self, pdu, eid):
        self.learn(pdu)
        self.last, self.depth = eid, max(self.depth, pdu["depth"])


def fake_join(fed, room, local, omit=False, dest="a", room_cls=FakeRoom, vers=("11", "12")):
    s, f = fed[dest], fed["f"]
    uid = f.user(local)
    ver = "&".join(f"ver={v}" for v in vers)
    r = f.request(s, "GET", f"/_matrix/federation/v1/make_join/{q(room)}/{q(uid)}?{ver}")
    assert r.status == 200, r.raw
    tmpl, version = r.json["event"], r.json["room_version"]
    assert tmpl["type"] == "m.room.member" and tmpl["state_key"] == uid and tmpl["sender"] == uid
    assert tmpl["content"]["membership"] == "join" and tmpl["room_id"] == room
    tmpl["origin"] = f.name
    tmpl["origin_server_ts"] = int(time.time() * 1000)
    ev, eid = finish(tmpl, f.name, f.sk, room_cls.redact_fn)
    path = f"/_matrix/federation/v2/send_join/{q(room)}/{q(eid)}"
    r = f.request(s, "PUT", path + ("?omit_members=true" if omit else ""), ev)
    assert r.status == 200, r.raw
    fr = room_cls(f, room, version)
    for pdu in r.json["auth_chain"] + r.json["state"]:
        fr.learn(pdu)
    fr.advance(r.json["event"], eid)
    return uid, fr, r.json


def send_txn(fed, pdus=(), edus=(), dest="a", txn=None):
    s, f = fed[dest], fed["f"]
    txn = txn or hashlib.sha1(os.urandom(8)).hexdigest()
    body = {"origin": f.name, "origin_server_ts": int(time.time() * 1000), "pdus": list(pdus)}
    if edus:
        body["edus"] = list(edus)
    return f.request(s, "PUT", f"/_matrix/federation/v1/send/{txn}", body)


@pytest.fixture(scope="module")
def froom(fed):
    """A public room of A that F's user fred joined through send_join."""
    a = fed["a"]
    alice, atok = user(a, "fedra_alice")
    room = create_room(a, atok, name="With F")
    send_text(a, atok, room, "hi fred")
    uid, fr, answer = fake_join(fed, room, "fred")
    return {"room": room, "fred": uid, "fr": fr, "answer": answer, "alice": alice, "atok": atok}


def test_send_join_answer(fed, froom):
    a, f = fed["a"], fed["f"]
    ans, fr = froom["answer"], froom["fr"]
    types = {(p["type"], p["state_key"]) for p in ans["state"]}
    assert ("m.room.create", "") in types and ("m.room.power_levels", "") in types
    assert ("m.room.member", froom["alice"]) in types
    assert ("m.room.member", froom["fred"]) not in types  # the state *before* the join
    assert ans["members_omitted"] is False
    # Everything is signed by A (and the join by F, now A too is fine).
    a_keys = https(a.pki, a.fed_base, "GET", "/_matrix/key/v2/server").json
    (kid, vk), = a_keys["verify_keys"].items()
    from signedjson.key import decode_verify_key_bytes
    a_vk = decode_verify_key_bytes(kid, decode_base64(vk["key"]))
    for p in ans["state"]:
        verify_signed_json(redact(p), a.server_name, a_vk)
        assert p["hashes"]["sha256"] == content_hash(p)
    # The auth chain holds what the state's events cite.
    chain = {event_id(p) for p in ans["auth_chain"]}
    for p in ans["state"] + [ans["event"]]:
        for aid in p["auth_events"]:
            assert aid in chain or aid in fr.events
    # fred is joined on A, and alice's sync shows it.
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(froom['room'])}/joined_members",
                  token=froom["atok"])
    assert froom["fred"] in r.json["joined"], r.raw


def test_send_join_partial_state(fed, froom):
    uid, fr, ans = fake_join(fed, froom["room"], "fred_partial", omit=True)
    assert ans["members_omitted"] is True
    assert fed["f"].name in ans["servers_in_room"] or True
    assert fed["a"].server_name in ans["servers_in_room"]
    members = [p for p in ans["state"] if p["type"] == "m.room.member"]
    # The room has a name: no heroes; only the joiner's own (none before) member event.
    assert members == [], [m["state_key"] for m in members]
    state_ids = {event_id(p) for p in ans["state"]}
    assert not state_ids & {event_id(p) for p in ans["auth_chain"]}


def test_make_join_errors(fed, froom):
    a, f = fed["a"], fed["f"]
    room = froom["room"]
    uid = f.user("fred_err")
    r = f.request(a, "GET", f"/_matrix/federation/v1/make_join/{q(room)}/{q(uid)}?ver=1&ver=2")
    assert r.status == 400 and r.json["errcode"] == "M_INCOMPATIBLE_ROOM_VERSION", r.raw
    assert r.json["room_version"] == fed_room_version(froom)
    r = f.request(a, "GET", f"/_matrix/federation/v1/make_join/{q(room)}/{q('@x:elsewhere.example')}?ver=12")
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
    r = f.request(a, "GET", f"/_matrix/federation/v1/make_join/{q('!nope:' + a.server_name)}/{q(uid)}?ver=12")
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r.raw
    # Unsigned requests never get in.
    r = https(a.pki, a.fed_base, "GET", f"/_matrix/federation/v1/make_join/{q(room)}/{q(uid)}?ver=12")
    assert r.status == 401, r.raw
    # send_join of an event that is not what the path says.
    fr = froom["fr"]
    ev, eid = fr.build(uid, "m.room.member", {"membership": "join"}, state_key=uid)
    r = f.request(a, "PUT", f"/_matrix/federation/v2/send_join/{q(room)}/{q('$other')}", ev)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r.raw
    ev2, eid2 = fr.build(uid, "m.room.member", {"membership": "leave"}, state_key=uid)
    r = f.request(a, "PUT", f"/_matrix/federation/v2/send_join/{q(room)}/{q(eid2)}", ev2)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r.raw
    # A join of someone else's user: 403 (Synapse; SyTest's "Inbound
    # /v1/send_join rejects joins from other servers").
    other = "@mallory:" + a.server_name
    ev3, eid3 = fr.build(other, "m.room.member", {"membership": "join"}, state_key=other)
    r = f.request(a, "PUT", f"/_matrix/federation/v2/send_join/{q(room)}/{q(eid3)}", ev3)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
    # A join whose signature does not hold: 403 too ("… rejects
    # incorrectly-signed joins").
    ev4, eid4 = fr.build(uid, "m.room.member", {"membership": "join"}, state_key=uid)
    forged = dict(ev4, signatures={f.name: {f.key_id: "A" * 86}})
    r = f.request(a, "PUT", f"/_matrix/federation/v2/send_join/{q(room)}/{q(eid4)}", forged)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw


def fed_room_version(froom):
    return froom["fr"].version


def test_pdus_from_f_reach_alice(fed, froom):
    a = fed["a"]
    fr = froom["fr"]
    ev, eid = fr.build(froom["fred"], "m.room.message", {"msgtype": "m.text", "body": "from F"})
    r = send_txn(fed, [ev])
    assert r.status == 200, r.raw
    assert r.json == {"pdus": {eid: {}}}, r.raw
    fr.advance(ev, eid)
    assert "from F" in timeline_bodies(a, froom["atok"], froom["room"])
    # The same PDU again: known, fine, and stored once.
    r = send_txn(fed, [ev])
    assert r.json == {"pdus": {eid: {}}}
    assert a.psql(f"SELECT count(*) FROM events WHERE event_id = '{eid}'") == "1"


def test_user_directory_forgets_a_room_the_server_left(fed):
    """SyTest's "User in remote room doesn't appear in user directory after
    server left room": B's copy of a room it left is frozen at the leave."""
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fedra_dir_alice")
    bob, btok = user(b, "fedrb_dir_bob")
    room = create_room(a, atok, name="Directory")
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}?via={q(a.server_name)}", {},
                  token=btok)
    assert r.status == 200, r.raw

    def found():
        r = b.request("POST", "/_matrix/client/v3/user_directory/search",
                      {"search_term": "fedra_dir_alice"}, token=btok)
        assert r.status == 200, r.raw
        return [x["user_id"] for x in r.json["results"]]

    # (A partial-state join lists the room's members once its resync is done.)
    wait_for(lambda: found() == [alice], what="alice in B's directory")
    r = b.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/leave", {}, token=btok)
    assert r.status == 200, r.raw
    assert found() == []


def test_initial_sync_timeline_follows_the_dag(fed, froom):
    """Complement's TestSyncOmitsStateChangeOnFilteredEvents, with a
    message: an event that reaches A late but forks early in the DAG is not
    the newest of an initial sync's timeline, which is read in DAG order
    (depth), as Synapse reads it; A's own later events are."""
    a, fr, room, atok = fed["a"], froom["fr"], froom["room"], froom["atok"]
    fred = froom["fred"]
    fork, fork_id = fr.build(fred, "m.room.member", {"membership": "join", "displayname": "Forked"},
                             state_key=fred)
    later = [send_text(a, atok, room, f"dag {i}") for i in range(3)]
    r = send_txn(fed, [fork])
    assert r.status == 200 and r.json == {"pdus": {fork_id: {}}}, r.raw
    fr.advance(fork, fork_id)
    wait_for(lambda: a.psql(f"SELECT count(*) FROM current_state WHERE event_id = '{fork_id}'")
             == "1", what="the fork in A's current state")
    r = a.request("PUT", f"/_matrix/client/v3/rooms/{q(room)}/send/please_filter_me/dag-merge",
                  {"body": "merge"}, token=atok)
    assert r.status == 200, r.raw
    merge = r.json["event_id"]

    def entry(flt):
        r = a.request("GET", "/_matrix/client/v3/sync?timeout=0&filter=" + q(json.dumps(flt)),
                      token=atok)
        assert r.status == 200, r.raw
        j = r.json["rooms"]["join"][room]
        return [e["event_id"] for e in j["timeline"]["events"]], \
            [e["event_id"] for e in j["state"]["events"]]

    tl, st = entry({"room": {"timeline": {"limit": 2}}})
    assert tl == [later[-1], merge], tl
    # The fork is not in the timeline, nor in the state where it starts:
    # it comes in the state, as the room's state at the sync's end has it.
    assert fork_id in st, st
    # Filtered: the newest event shown is A's last message, not the fork.
    tl, st = entry({"room": {"timeline": {"limit": 1, "not_types": ["please_filter_me"]}}})
    assert tl == [later[-1]] and fork_id in st, (tl, st)
    # With room for it, the fork comes in its place in the DAG, not as state.
    tl, st = entry({"room": {"timeline": {"limit": 5}}})
    assert fork_id in tl and tl.index(fork_id) < tl.index(later[-1]) and fork_id not in st, tl


def test_forged_pdus(fed, froom):
    a, f = fed["a"], fed["f"]
    fr, fred, room = froom["fr"], froom["fred"], froom["room"]
    # 1. Bad signature: signed by a key F never published under that ID.
    ev, eid = fr.build(fred, "m.room.message", {"msgtype": "m.text", "body": "forged sig"})
    bad = copy.deepcopy(ev)
    other = generate_signing_key("f1")
    bad["signatures"] = sign_json(redact({k: v for k, v in bad.items() if k != "signatures"}),
                                  f.name, other)["signatures"]
    # 2. Bad hash: the body changed after hashing and signing (the signature,
    #    over the redacted event, still holds): stored redacted.
    ev2, eid2 = fr.build(fred, "m.room.message", {"msgtype": "m.text", "body": "original"},
                         prev=[fr.last])
    ev2["content"]["body"] = "tampered"
    # 3. Unauthorised state change: fred (power 0) makes himself admin.
    pl_id = fr.state[("m.room.power_levels", "")]
    pl = copy.deepcopy(fr.events[pl_id]["content"])
    pl["users"][fred] = 100
    ev3, eid3 = fr.build(fred, "m.room.power_levels", pl, state_key="", prev=[fr.last])
    # 4. A PDU of a room A is not in.
    ev4 = dict(ev, room_id="!unknown:" + f.name)
    ev4, eid4 = finish(ev4, f.name, f.sk)
    r = send_txn(fed, [bad, ev2, ev3, ev4])
    assert r.status == 200, r.raw
    res = r.json["pdus"]
    assert "error" in res[eid], res
    assert "signature" in res[eid]["error"].lower(), res
    assert res[eid2] == {}, res   # stored, redacted
    assert res[eid3] == {}, res   # stored, rejected (a rejection is no error: spec)
    # A room we don't know has no version to compute the ID with: no entry (Synapse).
    assert eid4 not in res and len(res) == 3, res
    assert a.psql(f"SELECT count(*) FROM events WHERE event_id = '{eid4}'") == "0"
    assert a.psql(f"SELECT count(*) FROM events WHERE event_id = '{eid}'") == "0"
    atok = froom["atok"]
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/event/{q(eid2)}", token=atok)
    assert r.status == 200, r.raw
    assert r.json["content"] == {}, r.json  # the redacted copy is what we kept
    assert a.psql(f"SELECT rejected_reason IS NOT NULL FROM events WHERE event_id = '{eid3}'") == "t"
    # No state at a rejected event (Synapse: 404; SyTest's "/state returns
    # M_NOT_FOUND for a rejected … event").
    for kind in ("state", "state_ids"):
        r = f.request(a, "GET", f"/_matrix/federation/v1/{kind}/{q(room)}?event_id={q(eid3)}")
        assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.power_levels", token=atok)
    assert r.json["users"].get(fred, 0) == 0, r.json
    bodies = timeline_bodies(a, atok, room)
    assert "forged sig" not in bodies and "tampered" not in bodies and "original" not in bodies
    fr.advance(ev2, eid2)  # F builds on the redacted-but-accepted event from now on


def test_transaction_rules(fed, froom):
    a, f = fed["a"], fed["f"]
    fr = froom["fr"]
    ev, eid = fr.build(froom["fred"], "m.room.message", {"msgtype": "m.text", "body": "txn once"})
    txn = "txn-" + hashlib.sha1(os.urandom(8)).hexdigest()
    r1 = send_txn(fed, [ev], txn=txn)
    assert r1.status == 200 and r1.json == {"pdus": {eid: {}}}, r1.raw
    fr.advance(ev, eid)
    # The same transaction ID again: the first answer, nothing processed.
    ev2, eid2 = fr.build(froom["fred"], "m.room.message", {"msgtype": "m.text", "body": "txn twice"})
    r2 = send_txn(fed, [ev2], txn=txn)
    assert r2.status == 200 and r2.json == r1.json, r2.raw
    assert a.psql(f"SELECT count(*) FROM events WHERE event_id = '{eid2}'") == "0"
    # Too many PDUs / EDUs.
    r = send_txn(fed, [ev] * 51)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON", r.raw
    r = send_txn(fed, [], [{"edu_type": "m.typing", "content": {}}] * 101)
    assert r.status == 400, r.raw
    # An origin that is not the signer.
    body = {"origin": "elsewhere.example", "origin_server_ts": 1, "pdus": []}
    r = f.request(a, "PUT", "/_matrix/federation/v1/send/txn-origin", body)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
    # Not JSON lists.
    r = f.request(a, "PUT", "/_matrix/federation/v1/send/txn-bad", {"origin": f.name, "pdus": {}})
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON", r.raw
    # Unsigned: refused.
    r = https(a.pki, a.fed_base, "PUT", "/_matrix/federation/v1/send/x", {"pdus": []})
    assert r.status == 401, r.raw


def test_erased_users_events_go_out_redacted(fed, froom):
    """An erased user's (deactivate with erase) events are served to other
    servers redacted (Synapse's filter_events_for_server; SyTest's
    "Inbound federation redacts events from erased users")."""
    a, f = fed["a"], fed["f"]
    room = froom["room"]
    uid, tok = user(a, "fedra_erin")
    assert a.request("POST", f"/_matrix/client/v3/join/{q(room)}", {}, token=tok).status == 200
    msg = send_text(a, tok, room, "erase this")
    r = f.request(a, "GET", f"/_matrix/federation/v1/event/{q(msg)}")
    assert r.status == 200 and r.json["pdus"][0]["content"]["body"] == "erase this", r.raw
    r = a.request("POST", "/_matrix/client/v3/account/deactivate", {"erase": True}, token=tok)
    assert r.status == 401, r
    auth = {"type": "m.login.password", "session": r.json["session"],
            "identifier": {"type": "m.id.user", "user": uid}, "password": "correct horse"}
    r = a.request("POST", "/_matrix/client/v3/account/deactivate",
                  {"erase": True, "auth": auth}, token=tok)
    assert r.status == 200, r
    r = f.request(a, "GET", f"/_matrix/federation/v1/event/{q(msg)}")
    assert r.status == 200 and r.json["pdus"][0]["content"] == {}, r.raw
    assert event_id(r.json["pdus"][0]) == msg


def test_read_endpoints(fed, froom):
    a, b, f = fed["a"], fed["b"], fed["f"]
    room, atok = froom["room"], froom["atok"]
    msg = send_text(a, atok, room, "readable")
    # /event
    r = f.request(a, "GET", f"/_matrix/federation/v1/event/{q(msg)}")
    assert r.status == 200, r.raw
    assert r.json["origin"] == a.server_name and len(r.json["pdus"]) == 1
    assert event_id(r.json["pdus"][0]) == msg and r.json["pdus"][0]["content"]["body"] == "readable"
    r = f.request(a, "GET", f"/_matrix/federation/v1/event/{q('$nope')}")
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r.raw
    # /state_ids and /state: the state before the event, with the auth chain.
    r = f.request(a, "GET", f"/_matrix/federation/v1/state_ids/{q(room)}?event_id={q(msg)}")
    assert r.status == 200, r.raw
    ids = set(r.json["pdu_ids"])
    fr = froom["fr"]
    assert fr.state[("m.room.create", "")] in ids and fr.state[("m.room.member", froom["fred"])] in ids
    assert fr.state[("m.room.create", "")] in r.json["auth_chain_ids"]
    r2 = f.request(a, "GET", f"/_matrix/federation/v1/state/{q(room)}?event_id={q(msg)}")
    assert r2.status == 200, r2.raw
    assert {event_id(p) for p in r2.json["pdus"]} == ids
    assert {event_id(p) for p in r2.json["auth_chain"]} == set(r.json["auth_chain_ids"])
    r = f.request(a, "GET", f"/_matrix/federation/v1/state_ids/{q(room)}")
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM", r.raw
    r = f.request(a, "GET", f"/_matrix/federation/v1/state_ids/{q(room)}?event_id={q('$nope')}")
    assert r.status == 404, r.raw
    # /event_auth
    r = f.request(a, "GET", f"/_matrix/federation/v1/event_auth/{q(room)}/{q(msg)}")
    assert r.status == 200, r.raw
    chain = {event_id(p) for p in r.json["auth_chain"]}
    assert fr.state[("m.room.power_levels", "")] in chain and fr.state[("m.room.create", "")] in chain
    # /backfill: from the message back, newest first, limit respected.
    r = f.request(a, "GET", f"/_matrix/federation/v1/backfill/{q(room)}?v={q(msg)}&limit=3")
    assert r.status == 200, r.raw
    got = [event_id(p) for p in r.json["pdus"]]
    assert len(got) == 3 and got[0] == msg, got
    depths = [p["depth"] for p in r.json["pdus"]]
    assert depths == sorted(depths, reverse=True)
    r = f.request(a, "GET", f"/_matrix/federation/v1/backfill/{q(room)}?limit=3")
    assert r.status == 400, r.raw
    # /get_missing_events: what lies between earliest and latest.
    msg2 = send_text(a, atok, room, "readable 2")
    msg3 = send_text(a, atok, room, "readable 3")
    r = f.request(a, "POST", f"/_matrix/federation/v1/get_missing_events/{q(room)}",
                  {"earliest_events": [msg], "latest_events": [msg3], "limit": 10})
    assert r.status == 200, r.raw
    assert [event_id(p) for p in r.json["events"]] == [msg2], r.json
    # Absent lists are empty, as Synapse takes them; a list of another type is refused.
    r = f.request(a, "POST", f"/_matrix/federation/v1/get_missing_events/{q(room)}",
                  {"latest_events": [msg3], "limit": 2})
    assert r.status == 200 and [event_id(p) for p in r.json["events"]][-1] == msg2, r.raw
    r = f.request(a, "POST", f"/_matrix/federation/v1/get_missing_events/{q(room)}", {})
    assert r.status == 200 and r.json["events"] == [], r.raw
    r = f.request(a, "POST", f"/_matrix/federation/v1/get_missing_events/{q(room)}",
                  {"earliest_events": msg, "latest_events": [msg3]})
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON", r.raw
    # /timestamp_to_event
    ts = r2.json["pdus"][0]["origin_server_ts"]
    r = f.request(a, "GET", f"/_matrix/federation/v1/timestamp_to_event/{q(room)}?ts={int(time.time() * 1000) + 60000}&dir=b")
    assert r.status == 200 and r.json["event_id"] == msg3, r.raw
    r = f.request(a, "GET", f"/_matrix/federation/v1/timestamp_to_event/{q(room)}?ts={int(time.time() * 1000) + 60000}&dir=f")
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r.raw
    r = f.request(a, "GET", f"/_matrix/federation/v1/timestamp_to_event/{q(room)}?ts=1&dir=x")
    assert r.status == 400, r.raw
    assert ts > 0
    # A server with nobody in the room gets nothing.
    for path in (f"/_matrix/federation/v1/event/{q(msg)}",
                 f"/_matrix/federation/v1/state_ids/{q(room)}?event_id={q(msg)}",
                 f"/_matrix/federation/v1/backfill/{q(room)}?v={q(msg)}&limit=3",
                 f"/_matrix/federation/v1/event_auth/{q(room)}/{q(msg)}",
                 f"/_matrix/federation/v1/timestamp_to_event/{q(room)}?ts=1&dir=f"):
        r = b.fed_request(a.server_name, path)
        assert r.status == 200 and r.json["status"] == 403, (path, r.raw)
        assert r.json["body"]["errcode"] == "M_FORBIDDEN"


def test_history_visibility_for_servers(fed):
    """Events from while a server had nobody in a "joined"-visibility room go
    out redacted (Synapse's filter_events_for_server)."""
    a, f = fed["a"], fed["f"]
    alice, atok = user(a, "fedra_alice")
    room = create_room(a, atok, name="Private past",
                       initial_state=[{"type": "m.room.history_visibility", "state_key": "",
                                       "content": {"history_visibility": "joined"}}])
    secret = send_text(a, atok, room, "before F came")
    fake_join(fed, room, "fred_hv")
    after = send_text(a, atok, room, "after F came")
    r = f.request(a, "GET", f"/_matrix/federation/v1/backfill/{q(room)}?v={q(after)}&limit=20")
    assert r.status == 200, r.raw
    by_id = {event_id(p): p for p in r.json["pdus"]}
    assert by_id[after]["content"]["body"] == "after F came"
    assert by_id[secret]["content"] == {}, by_id[secret]
    r = f.request(a, "GET", f"/_matrix/federation/v1/event/{q(secret)}")
    assert r.status == 200 and r.json["pdus"][0]["content"] == {}, r.raw


def test_gap_filled_with_get_missing_events(fed, froom):
    a = fed["a"]
    fr, fred = froom["fr"], froom["fred"]
    e1, id1 = fr.build(fred, "m.room.message", {"msgtype": "m.text", "body": "gap 1"})
    fr.advance(e1, id1)
    e2, id2 = fr.build(fred, "m.room.message", {"msgtype": "m.text", "body": "gap 2"})
    fr.advance(e2, id2)
    asked = []

    def missing(method, path, body):
        asked.append(body)
        wanted = [fr.events[p] for p in fr.events[body["latest_events"][0]]["prev_events"]
                  if p not in body["earliest_events"]]
        return 200, {"events": wanted}
    fed["f"].routes["/_matrix/federation/v1/get_missing_events/"] = missing
    try:
        r = send_txn(fed, [e2])
    finally:
        fed["f"].routes.clear()
    assert r.status == 200 and r.json == {"pdus": {id2: {}}}, r.raw
    assert asked and asked[0]["latest_events"] == [id2], asked
    bodies = timeline_bodies(a, froom["atok"], froom["room"])
    assert "gap 1" in bodies and "gap 2" in bodies
    assert a.psql(f"SELECT outlier FROM events WHERE event_id = '{id1}'") == "f"


def gap_routes(f, fr, ids, first=0, withheld=()):
    """F's answers while A fills the gap before ids[-1] (F's events, in
    order): /get_missing_events from ids[first:] as far back as the asker's
    limit, /state_ids the room's state as F knows it, /event any of F's
    events but the withheld. Returns the routes, to put in f.routes."""
    order = {eid: i for i, eid in enumerate(ids)}

    def missing(method, path, body):
        latest = order[body["latest_events"][0]]
        lo = max(first, latest - body["limit"])
        return 200, {"events": [fr.events[ids[i]] for i in range(lo, latest)]}

    def state_ids(method, path, body):
        return 200, {"pdu_ids": list(fr.state.values()), "auth_chain_ids": []}

    def event(method, path, body):
        eid = urllib.parse.unquote(path.split("/event/")[1])
        return (200, {"origin": f.name, "origin_server_ts": 0, "pdus": [fr.events[eid]]}) \
            if eid in fr.events and eid not in withheld \
            else (404, {"errcode": "M_NOT_FOUND", "error": "no"})
    return {"/_matrix/federation/v1/get_missing_events/": missing,
            "/_matrix/federation/v1/state_ids/": state_ids,
            "/_matrix/federation/v1/event/": event}


def push_past_gap(fed, fr, sender, n, word):
    """F makes n messages ("word i") and pushes only the last; A fills what
    it can of the gap (gap_routes). Returns the messages' IDs."""
    f = fed["f"]
    ids = []
    for i in range(n):
        ev, eid = fr.build(sender, "m.room.message", {"msgtype": "m.text", "body": f"{word} {i}"})
        fr.advance(ev, eid)
        ids.append(eid)
    f.routes.update(gap_routes(f, fr, ids))
    try:
        r = send_txn(fed, [fr.events[ids[-1]]])
    finally:
        f.routes.clear()
    assert r.status == 200 and r.json == {"pdus": {ids[-1]: {}}}, r.raw
    return ids


def test_gap_too_wide_takes_the_state(fed, froom):
    """12 events missing: get_missing_events brings the last 10; the oldest
    of those gets its state from /state_ids, its prev event from /event."""
    a = fed["a"]
    ids = push_past_gap(fed, froom["fr"], froom["fred"], 13, "wide")
    bodies = timeline_bodies(a, froom["atok"], froom["room"])
    assert "wide 12" in bodies and "wide 3" in bodies
    # The oldest, fetched for its state, is known but not in the timeline.
    assert a.psql(f"SELECT outlier FROM events WHERE event_id = '{ids[1]}'") == "t"


def test_edus_from_f(fed, froom):
    a = fed["a"]
    room, fred, atok, alice = froom["room"], froom["fred"], froom["atok"], froom["alice"]
    fr = froom["fr"]
    r = a.request("GET", "/_matrix/client/v3/sync?timeout=0", token=atok)
    since = r.json["next_batch"]
    target = send_text(a, atok, room, "read me")
    edus = [
        {"edu_type": "m.typing", "content": {"room_id": room, "user_id": fred, "typing": True}},
        # Another server's user: ignored.
        {"edu_type": "m.typing", "content": {"room_id": room, "user_id": alice, "typing": True}},
        {"edu_type": "m.receipt", "content": {room: {"m.read": {fred: {
            "event_ids": [target], "data": {"ts": 1234}}}}}},
        # For an event A does not have (yet): kept, as Synapse does.
        {"edu_type": "m.receipt", "content": {room: {"m.read": {fred: {
            "event_ids": ["$not-here-yet"], "data": {"ts": 99, "thread_id": "$some-thread"}}}}}},
        {"edu_type": "m.presence", "content": {"push": [{
            "user_id": fred, "presence": "online", "last_active_ago": 5000,
            "currently_active": True, "status_msg": "in F"}]}},
        {"edu_type": "m.nonsense", "content": {}},
    ]
    r = send_txn(fed, [], edus)
    assert r.status == 200 and r.json == {"pdus": {}}, r.raw
    r = a.request("GET", f"/_matrix/client/v3/sync?timeout=0&since={since}", token=atok)
    assert r.status == 200, r.raw
    joined = r.json["rooms"]["join"][room]
    typing = [e for e in joined["ephemeral"]["events"] if e["type"] == "m.typing"]
    assert typing and typing[0]["content"]["user_ids"] == [fred], joined["ephemeral"]
    receipts = [e for e in joined["ephemeral"]["events"] if e["type"] == "m.receipt"]
    assert receipts and receipts[0]["content"][target]["m.read"][fred]["ts"] == 1234, receipts
    assert receipts[0]["content"]["$not-here-yet"]["m.read"][fred] == \
        {"ts": 99, "thread_id": "$some-thread"}, receipts
    pres = [e for e in r.json.get("presence", {}).get("events", []) if e["sender"] == fred]
    assert pres and pres[0]["content"]["presence"] == "online", r.json.get("presence")
    assert pres[0]["content"]["status_msg"] == "in F"
    # Typing stops.
    send_txn(fed, [], [{"edu_type": "m.typing",
                        "content": {"room_id": room, "user_id": fred, "typing": False}}])
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/messages?dir=b&limit=1", token=atok)
    assert r.status == 200
    assert fr is not None


def test_to_device_from_f(fed, froom):
    a = fed["a"]
    alice, _ = user(a, "fedra_alice")
    tok = a.login("fedra_alice", device_id="FEDRDEV")
    r = a.request("GET", "/_matrix/client/v3/sync?timeout=0", token=tok)
    since = r.json["next_batch"]
    edu = {"edu_type": "m.direct_to_device", "content": {
        "sender": froom["fred"], "type": "m.room_key_request", "message_id": "mid-1",
        "messages": {alice: {"FEDRDEV": {"hello": "device"}}}}}
    send_txn(fed, [], [edu])
    send_txn(fed, [], [edu])  # retried under another transaction: delivered once
    r = a.request("GET", f"/_matrix/client/v3/sync?timeout=0&since={since}", token=tok)
    msgs = r.json.get("to_device", {}).get("events", [])
    assert msgs == [{"sender": froom["fred"], "type": "m.room_key_request",
                     "content": {"hello": "device"}}], msgs


def test_device_list_and_signing_key_updates(fed, froom):
    a = fed["a"]
    fred = froom["fred"]
    keys = {"user_id": fred, "device_id": "FREDDEV", "algorithms": ["m.megolm.v1.aes-sha2"],
            "keys": {"ed25519:FREDDEV": "x" * 43, "curve25519:FREDDEV": "y" * 43}}
    master = {"user_id": fred, "usage": ["master"],
              "keys": {"ed25519:" + "M" * 43: "M" * 43}}
    r = a.request("GET", "/_matrix/client/v3/sync?timeout=0", token=froom["atok"])
    since = r.json["next_batch"]
    # A list A never had: A fetches it whole (test_federation_device_lists.py
    # has the rules), and F serves it.
    path = f"/_matrix/federation/v1/user/devices/{urllib.parse.quote(fred, safe='')}"
    fed["f"].routes[path] = lambda m, p, b: (200, {"user_id": fred, "stream_id": 1, "devices": [
        {"device_id": "FREDDEV", "keys": keys, "device_display_name": "F phone"}]})
    try:
        send_txn(fed, [], [
            {"edu_type": "m.device_list_update", "content": {
                "user_id": fred, "device_id": "FREDDEV", "stream_id": 1, "prev_id": [],
                "device_display_name": "F phone", "keys": keys}},
            {"edu_type": "m.signing_key_update", "content": {"user_id": fred, "master_key": master}},
        ])
    finally:
        fed["f"].routes.pop(path, None)
    assert a.psql(f"SELECT display_name FROM e2e_device_keys WHERE user_id = '{fred}'") == "F phone"
    assert a.psql(f"SELECT keytype FROM e2e_cross_signing_keys WHERE user_id = '{fred}'") == "master"
    r = a.request("GET", f"/_matrix/client/v3/sync?timeout=0&since={since}", token=froom["atok"])
    assert fred in r.json.get("device_lists", {}).get("changed", []), r.json.get("device_lists")
    send_txn(fed, [], [{"edu_type": "m.device_list_update", "content": {
        "user_id": fred, "device_id": "FREDDEV", "stream_id": 2, "prev_id": [1], "deleted": True}}])
    assert a.psql(f"SELECT count(*) FROM e2e_device_keys WHERE user_id = '{fred}'") == "0"


# ---- invites, leaves, knocks, aliases between A and B --------------------------------


def test_invite_to_a_room_of_another_server(fed):
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fedra_alice")
    carol, ctok = user(b, "fedrb_carol")
    room = create_room(a, atok, preset="private_chat", name="Invite only")
    r = b.request("GET", "/_matrix/client/v3/sync?timeout=0", token=ctok)
    since = r.json["next_batch"]
    r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": carol}, token=atok)
    assert r.status == 200, r.raw
    # A's copy of the invite carries B's signature.
    sigs = json.loads(a.psql("SELECT convert_from(e.json, 'UTF8') FROM current_state cs"
                             " JOIN events e USING (event_id) WHERE cs.room_id = '" + room +
                             f"' AND cs.state_key = '{carol}'"))["signatures"]
    assert b.server_name in sigs and a.server_name in sigs
    # carol's /sync: the invite with the room's stripped state.
    r = b.request("GET", f"/_matrix/client/v3/sync?timeout=0&since={since}", token=ctok)
    inv = r.json["rooms"]["invite"].get(room)
    assert inv, r.json["rooms"]
    types = {(e["type"], e["state_key"]) for e in inv["invite_state"]["events"]}
    assert ("m.room.create", "") in types and ("m.room.name", "") in types
    assert ("m.room.member", carol) in types
    # Accepting: joined through the inviter's server, no via needed.
    r = b.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/join", {}, token=ctok)
    assert r.status == 200, r.raw
    # The join has partial state: a /sync that does not lazy-load members
    # shows the room once the members are in (a waiting one is woken then).
    def joined():
        r = b.request("GET", f"/_matrix/client/v3/sync?timeout=5000&since={since}", token=ctok,
                      timeout=30)
        assert r.status == 200, r.raw
        return r.json if room in r.json["rooms"]["join"] else None
    body = wait_for(joined, what="the joined room in carol's /sync")
    assert room not in body["rooms"]["invite"]
    send_text(a, atok, room, "welcome carol")
    wait_for(lambda: "welcome carol" in timeline_bodies(b, ctok, room), what="message to carol")


def test_remote_invite_in_the_old_sync_apis(fed):
    """An invite to a room of another server, which B has only the member
    event of, comes down the deprecated /events stream and /initialSync."""
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fedra_alice")
    dora, dtok = user(b, "fedrb_dora")
    room = create_room(a, atok, preset="private_chat", name="Old APIs")
    tok = b.request("GET", "/_matrix/client/v3/events?timeout=0", token=dtok).json["end"]
    r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": dora},
                  token=atok)
    assert r.status == 200, r.raw
    r = b.request("GET", f"/_matrix/client/v3/events?timeout=10000&from={q(tok)}", token=dtok,
                  timeout=30)
    assert r.status == 200, r.raw
    inv = [e for e in r.json["chunk"] if e.get("room_id") == room]
    assert [(e["type"], e["state_key"], e["content"]["membership"], e["sender"]) for e in inv] \
        == [("m.room.member", dora, "invite", alice)], r.json
    rooms = b.request("GET", "/_matrix/client/v3/initialSync", token=dtok).json["rooms"]
    entry = [x for x in rooms if x["room_id"] == room]
    assert entry and entry[0]["membership"] == "invite" and entry[0]["inviter"] == alice
    assert entry[0]["invite"]["event_id"] == inv[0]["event_id"]


def test_reject_a_remote_invite(fed):
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fedra_alice")
    dave, dtok = user(b, "fedrb_dave")
    room = create_room(a, atok, preset="private_chat")
    r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": dave}, token=atok)
    assert r.status == 200, r.raw
    r = b.request("GET", "/_matrix/client/v3/sync?timeout=0", token=dtok)
    assert room in r.json["rooms"]["invite"]
    since = r.json["next_batch"]
    r = b.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/leave", {"reason": "no thanks"}, token=dtok)
    assert r.status == 200, r.raw
    # A took the rejection (make_leave/send_leave through it).
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(dave)}", token=atok)
    assert r.status == 200 and r.json["membership"] == "leave", r.raw
    assert r.json.get("reason") == "no thanks"
    r = b.request("GET", f"/_matrix/client/v3/sync?timeout=0&since={since}", token=dtok)
    assert room not in r.json["rooms"]["invite"]
    left = r.json["rooms"]["leave"].get(room)
    assert left and left["timeline"]["events"][-1]["content"]["membership"] == "leave", r.json["rooms"]


def test_knock_through_another_server(fed):
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fedra_alice")
    erin, etok = user(b, "fedrb_erin")
    room = create_room(a, atok, preset="private_chat", name="Knock here",
                       initial_state=[{"type": "m.room.join_rules", "state_key": "",
                                       "content": {"join_rule": "knock"}}])
    r = b.request("POST", f"/_matrix/client/v3/knock/{q(room)}?via={q(a.server_name)}",
                  {"reason": "let me in"}, token=etok)
    assert r.status == 200 and r.json["room_id"] == room, r.raw
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(erin)}", token=atok)
    assert r.status == 200 and r.json["membership"] == "knock", r.raw
    r = b.request("GET", "/_matrix/client/v3/sync?timeout=0", token=etok)
    knock = r.json["rooms"]["knock"].get(room)
    assert knock, r.json["rooms"]
    assert any(e["type"] == "m.room.name" and e["content"]["name"] == "Knock here"
               for e in knock["knock_state"]["events"])
    # Approved: alice invites, erin joins.
    r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": erin}, token=atok)
    assert r.status == 200, r.raw
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}", {}, token=etok)
    assert r.status == 200, r.raw
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/joined_members", token=atok)
    assert erin in r.json["joined"]


def test_knock_where_knocking_is_not_allowed(fed):
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fedra_alice")
    erin, etok = user(b, "fedrb_erin")
    room = create_room(a, atok, preset="private_chat")
    r = b.request("POST", f"/_matrix/client/v3/knock/{q(room)}?via={q(a.server_name)}", {}, token=etok)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw


def test_remote_alias(fed):
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fedra_alice")
    gus, gtok = user(b, "fedrb_gus")
    room = create_room(a, atok, name="Aliased")
    alias = f"#fedr-aliased:{a.server_name}"
    r = a.request("PUT", f"/_matrix/client/v3/directory/room/{q(alias)}", {"room_id": room}, token=atok)
    assert r.status == 200, r.raw
    r = b.request("GET", f"/_matrix/client/v3/directory/room/{q(alias)}", token=gtok)
    assert r.status == 200, r.raw
    assert r.json["room_id"] == room and r.json["servers"][0] == a.server_name
    r = b.request("GET", f"/_matrix/client/v3/directory/room/{q('#fedr-none:' + a.server_name)}", token=gtok)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r.raw
    r = b.request("POST", f"/_matrix/client/v3/join/{q(alias)}", {}, token=gtok)
    assert r.status == 200 and r.json["room_id"] == room, r.raw
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/joined_members", token=atok)
    assert gus in r.json["joined"]


def test_query_directory_endpoint(fed):
    a, f = fed["a"], fed["f"]
    r = f.request(a, "GET", "/_matrix/federation/v1/query/directory")
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM", r.raw
    r = f.request(a, "GET", f"/_matrix/federation/v1/query/directory?room_alias={q('#none:' + a.server_name)}")
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r.raw
    r = f.request(a, "GET", f"/_matrix/federation/v1/query/directory?room_alias={q('#x:' + f.name)}")
    assert r.status == 404, r.raw


# ---- restricted joins, leaves and invites with F ----------------------------------------


def test_restricted_join_authorised_by_a(fed):
    a, f = fed["a"], fed["f"]
    alice, atok = user(a, "fedra_alice")
    space = create_room(a, atok, name="Club")
    uid, _, _ = fake_join(fed, space, "frida")
    inner = create_room(a, atok, preset="private_chat", name="Members only", initial_state=[{
        "type": "m.room.join_rules", "state_key": "",
        "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}}])
    r = f.request(a, "GET", f"/_matrix/federation/v1/make_join/{q(inner)}/{q(uid)}?ver=12")
    assert r.status == 200, r.raw
    assert r.json["event"]["content"]["join_authorised_via_users_server"] == alice
    uid2, _, ans = fake_join(fed, inner, "frida")
    assert a.server_name in ans["event"]["signatures"] and f.name in ans["event"]["signatures"]
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(inner)}/joined_members", token=atok)
    assert uid in r.json["joined"]
    # Someone in no allowed room: refused.
    stranger = f.user("stranger")
    r = f.request(a, "GET", f"/_matrix/federation/v1/make_join/{q(inner)}/{q(stranger)}?ver=12")
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
    # Allowed rooms A is not in: A cannot tell.
    other = create_room(a, atok, preset="private_chat", initial_state=[{
        "type": "m.room.join_rules", "state_key": "",
        "content": {"join_rule": "restricted",
                    "allow": [{"type": "m.room_membership", "room_id": "!elsewhere:" + f.name}]}}])
    r = f.request(a, "GET", f"/_matrix/federation/v1/make_join/{q(other)}/{q(uid)}?ver=12")
    assert r.status == 400 and r.json["errcode"] == "M_UNABLE_TO_AUTHORISE_JOIN", r.raw
    # No allowed room at all (knock_restricted without "allow", as Complement's
    # knocking tests make it): only an invite lets one in, so 403, not 400
    # (which would send the joining server to ask elsewhere).
    shut = create_room(a, atok, preset="private_chat", initial_state=[{
        "type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock_restricted"}}])
    r = f.request(a, "GET", f"/_matrix/federation/v1/make_join/{q(shut)}/{q(uid)}?ver=12")
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw


def test_restricted_join_through_the_server_that_may_invite(fed):
    """B is in a restricted room but none of its members may invite: a user
    of B who is in the allowed space joins through A, whose member
    authorises the join (Synapse's _should_perform_remote_join; Complement's
    TestRestrictedRoomsRemoteJoinLocalUser). B asks A for the whole state,
    as it holds the room already: no partial-state resync of a full room."""
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fedra_alice")
    bob, btok = user(b, "fedrb_bob")
    carol, ctok = user(b, "fedrb_carol")
    space = create_room(a, atok, name="Space")
    room = create_room(a, atok, name="Inner", initial_state=[{
        "type": "m.room.join_rules", "state_key": "",
        "content": {"join_rule": "restricted",
                    "allow": [{"type": "m.room_membership", "room_id": space,
                               "via": [a.server_name]}]}}])
    r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": bob}, token=atok)
    assert r.status == 200, r.raw
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}?via={q(a.server_name)}", {}, token=btok)
    assert r.status == 200, r.raw
    wait_for(lambda: a.psql(f"SELECT membership FROM current_state WHERE room_id = '{room}'"
                            f" AND state_key = '{bob}'") == "join", what="bob's join on A")
    # bob may not invite (invite: 50): nobody on B can let carol in.
    r = b.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": carol},
                  token=btok)
    assert r.status == 403, r.raw
    # carol in no allowed room: A refuses her, and so does B.
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}?via={q(b.server_name)}", {},
                  token=ctok)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
    # In the space, she joins through A although she names only B.
    r = b.request("POST", f"/_matrix/client/v3/join/{q(space)}?via={q(a.server_name)}", {},
                  token=ctok)
    assert r.status == 200, r.raw
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}?via={q(b.server_name)}", {},
                  token=ctok)
    assert r.status == 200, r.raw
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(carol)}",
                  token=atok)
    assert r.status == 200 and r.json["membership"] == "join", r.raw
    assert r.json["join_authorised_via_users_server"] == alice, r.json
    r = b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/joined_members", token=btok)
    assert set(r.json["joined"]) == {alice, bob, carol}, r.raw
    assert b.read_log().count(f"joined {room} with partial state") <= 1
    # Once B's members may invite, B lets her back in itself.
    r = a.request("PUT", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.power_levels/",
                  {"invite": 0}, token=atok)  # v12: the creator is above any level
    assert r.status == 200, r.raw
    wait_for(lambda: b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.power_levels/",
                               token=btok).json.get("invite") == 0, what="the new power levels on B")
    r = b.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/leave", {}, token=ctok)
    assert r.status == 200, r.raw
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}", {}, token=ctok)
    assert r.status == 200, r.raw
    r = b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(carol)}",
                  token=ctok)
    assert r.json["join_authorised_via_users_server"] == bob, r.json


def test_leave_through_make_leave(fed):
    a, f = fed["a"], fed["f"]
    alice, atok = user(a, "fedra_alice")
    room = create_room(a, atok)
    uid, fr, _ = fake_join(fed, room, "fritz")
    r = f.request(a, "GET", f"/_matrix/federation/v1/make_leave/{q(room)}/{q(uid)}")
    assert r.status == 200, r.raw
    tmpl = r.json["event"]
    assert tmpl["content"]["membership"] == "leave"
    tmpl["origin_server_ts"] = int(time.time() * 1000)
    ev, eid = finish(tmpl, f.name, f.sk)
    r = f.request(a, "PUT", f"/_matrix/federation/v2/send_leave/{q(room)}/{q(eid)}", ev)
    assert r.status == 200 and r.json == {}, r.raw
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(uid)}", token=atok)
    assert r.json["membership"] == "leave", r.raw


def test_inviting_a_user_of_f(fed):
    a, f = fed["a"], fed["f"]
    alice, atok = user(a, "fedra_alice")
    room = create_room(a, atok, preset="private_chat", name="For F")
    frank, fiona = f.user("frank"), f.user("fiona")
    got = []

    def invite(method, path, body):
        got.append(body)
        if fiona in path or body["event"]["state_key"] == fiona:
            return 403, {"errcode": "M_FORBIDDEN", "error": "fiona takes no invites"}
        ev = copy.deepcopy(body["event"])
        ev["signatures"].update(sign_json(redact(ev), f.name, f.sk)["signatures"])
        return 200, {"event": ev}
    f.routes["/_matrix/federation/v2/invite/"] = invite
    try:
        r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": frank}, token=atok)
        assert r.status == 200, r.raw
        r2 = a.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": fiona}, token=atok)
    finally:
        f.routes.clear()
    body = got[0]
    assert body["room_version"] and body["event"]["state_key"] == frank
    assert {e["type"] for e in body["invite_room_state"]} >= {"m.room.create", "m.room.name"}
    # F refused fiona: her invite is not in the room, and alice hears why.
    assert r2.status == 403 and r2.json["errcode"] == "M_FORBIDDEN", r2.raw
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(fiona)}", token=atok)
    assert r.status == 404, r.raw
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(frank)}", token=atok)
    assert r.status == 200 and r.json["membership"] == "invite", r.raw


def test_inviting_through_the_v1_invite_api(fed):
    """F lacks PUT /v2/invite (404 M_UNRECOGNIZED): the invite goes through
    v1, whose body is the event with the stripped state in unsigned and whose
    answer is [200, {"event": …}] (spec; Synapse falls back so too; SyTest's
    'Outbound federation can send invites via v1 API')."""
    a, f = fed["a"], fed["f"]
    _, atok = user(a, "fedra_v1inviter")
    room = create_room(a, atok, preset="private_chat", name="v1 only")
    vic = f.user("victor_v1")
    got = []

    def v1_invite(method, path, body):
        got.append(body)
        ev = copy.deepcopy(body)
        ev.pop("unsigned", None)
        ev["signatures"].update(sign_json(redact(ev), f.name, f.sk)["signatures"])
        return 200, [200, {"event": ev}]
    f.routes["/_matrix/federation/v2/invite/"] = \
        lambda m, p, b: (404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})
    f.routes["/_matrix/federation/v1/invite/"] = v1_invite
    try:
        assert f.request(a, "GET", "/_matrix/federation/v1/version").status == 200
        r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": vic},
                      token=atok)
    finally:
        f.routes.clear()
    assert r.status == 200, r.raw
    assert got and got[0]["state_key"] == vic and got[0]["content"]["membership"] == "invite"
    assert {e["type"] for e in got[0]["unsigned"]["invite_room_state"]} >= {"m.room.create"}
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(vic)}",
                  token=atok)
    assert r.status == 200 and r.json["membership"] == "invite", r.raw


def test_invite_from_f_to_a_room_a_is_not_in(fed):
    a, f = fed["a"], fed["f"]
    hal, htok = user(a, "fedra_hal")
    fred = f.user("fred_host")
    now = int(time.time() * 1000)
    create, create_id = finish({"type": "m.room.create", "state_key": "", "sender": fred,
                                "content": {"room_version": "12"}, "origin_server_ts": now,
                                "depth": 1, "prev_events": [], "auth_events": []}, f.name, f.sk)
    room = "!" + create_id[1:]
    name, name_id = finish({"type": "m.room.name", "state_key": "", "sender": fred, "room_id": room,
                            "content": {"name": "F's room"}, "origin_server_ts": now, "depth": 2,
                            "prev_events": [create_id], "auth_events": []}, f.name, f.sk)
    inv, inv_id = finish({"type": "m.room.member", "state_key": hal, "sender": fred, "room_id": room,
                          "content": {"membership": "invite"}, "origin_server_ts": now, "depth": 3,
                          "prev_events": [name_id], "auth_events": []}, f.name, f.sk)
    path = f"/_matrix/federation/v2/invite/{q(room)}/{q(inv_id)}"
    # Without the create event in the stripped state (room version 12): refused.
    r = f.request(a, "PUT", path, {"room_version": "12", "event": inv, "invite_room_state": [name]})
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r.raw
    r = f.request(a, "PUT", path, {"room_version": "12", "event": inv,
                                   "invite_room_state": "nope"})
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r.raw
    r = f.request(a, "PUT", path, {"room_version": "99", "event": inv, "invite_room_state": [create]})
    assert r.status == 400 and r.json["errcode"] == "M_INCOMPATIBLE_ROOM_VERSION", r.raw
    assert r.json["room_version"] == "99"
    bad = dict(inv, content={"membership": "join"})
    bad, bad_id = finish(bad, f.name, f.sk)
    r = f.request(a, "PUT", f"/_matrix/federation/v2/invite/{q(room)}/{q(bad_id)}",
                  {"room_version": "12", "event": bad, "invite_room_state": [create]})
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r.raw
    r = a.request("GET", "/_matrix/client/v3/sync?timeout=0", token=htok)
    since = r.json["next_batch"]
    r = f.request(a, "PUT", path, {"room_version": "12", "event": inv, "invite_room_state": [create, name]})
    assert r.status == 200, r.raw
    signed = r.json["event"]
    assert a.server_name in signed["signatures"] and event_id(signed) == inv_id
    r = a.request("GET", f"/_matrix/client/v3/sync?timeout=0&since={since}", token=htok)
    entry = r.json["rooms"]["invite"].get(room)
    assert entry, r.json["rooms"]
    evs = entry["invite_state"]["events"]
    assert {"type": "m.room.name", "state_key": "", "sender": fred, "content": {"name": "F's room"}} in evs
    # The create event keeps its client fields (v1.16, MSC4311).
    c = [e for e in evs if e["type"] == "m.room.create"][0]
    assert c["origin_server_ts"] == create["origin_server_ts"], c
    assert any(e["type"] == "m.room.member" and e["state_key"] == hal for e in evs)
    # hal rejects; F answers nothing (no make_leave route): rejected locally.
    r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/leave", {}, token=htok)
    assert r.status == 200, r.raw
    r = a.request("GET", f"/_matrix/client/v3/sync?timeout=0&since={since}", token=htok)
    assert room not in r.json["rooms"]["invite"] and room in r.json["rooms"]["leave"], r.json["rooms"]


def test_invite_with_empty_stripped_state(fed):
    """Complement's TestIsDirectFlagFederation: gomatrixserverlib sends
    "invite_room_state": [] with a room version 12 invite. Synapse takes it;
    so do we (only a list that is given must hold the create event), and the
    invitee's /sync shows the invite with its is_direct."""
    a, f = fed["a"], fed["f"]
    ivy, itok = user(a, "fedra_ivy")
    fred = f.user("fred_dm")
    now = int(time.time() * 1000)
    create, create_id = finish({"type": "m.room.create", "state_key": "", "sender": fred,
                                "content": {"room_version": "12"}, "origin_server_ts": now,
                                "depth": 1, "prev_events": [], "auth_events": []}, f.name, f.sk)
    room = "!" + create_id[1:]
    inv, inv_id = finish({"type": "m.room.member", "state_key": ivy, "sender": fred, "room_id": room,
                          "content": {"membership": "invite", "is_direct": True},
                          "origin_server_ts": now, "depth": 2, "prev_events": [create_id],
                          "auth_events": [create_id]}, f.name, f.sk)
    since = a.request("GET", "/_matrix/client/v3/sync?timeout=0", token=itok).json["next_batch"]
    path = f"/_matrix/federation/v2/invite/{q(room)}/{q(inv_id)}"
    r = f.request(a, "PUT", path, {"room_version": "12", "event": inv, "invite_room_state": []})
    assert r.status == 200, r.raw
    assert a.server_name in r.json["event"]["signatures"]
    r = a.request("GET", f"/_matrix/client/v3/sync?timeout=0&since={since}", token=itok)
    evs = r.json["rooms"]["invite"][room]["invite_state"]["events"]
    me = next(e for e in evs if e["type"] == "m.room.member" and e["state_key"] == ivy)
    assert me["content"] == {"membership": "invite", "is_direct": True} and me["sender"] == fred


def test_a_join_through_send_join_is_passed_on(fed):
    """F's join, made through A, reaches B, the room's other server."""
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fedra_alice")
    bob, btok = user(b, "fedrb_bob")
    room = create_room(a, atok, name="Three servers")
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}?via={q(a.server_name)}", {}, token=btok)
    assert r.status == 200, r.raw
    uid, _, ans = fake_join(fed, room, "fred_relay")
    join_id = event_id(ans["event"])

    def on_b():
        r = b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/joined_members", token=btok)
        return r.status == 200 and uid in r.json["joined"]
    # Queued for B (not for F, whose event it is) in the transaction that stored it.
    queued = a.psql(f"SELECT destination FROM federation_outbound_pdus WHERE event_id = '{join_id}'")
    assert queued in ("", b.server_name), queued
    assert queued or on_b()
    # The sender picks up what was queued this way on its next full scan (60 s).
    wait_for(on_b, timeout=75, what="F's join on B")


def test_server_acl(fed):
    """Every server here is "localhost": an ACL denying that host refuses F's
    PDUs, joins, reads and EDUs (A's own events are not requests to itself)."""
    a, f = fed["a"], fed["f"]
    alice, atok = user(a, "fedra_alice")
    room = create_room(a, atok, name="ACL")
    uid, fr, _ = fake_join(fed, room, "fred_acl")
    ev, eid = fr.build(uid, "m.room.message", {"msgtype": "m.text", "body": "acl ok"})
    r = send_txn(fed, [ev])
    assert r.json["pdus"][eid] == {}, r.raw
    fr.advance(ev, eid)
    r = a.request("PUT", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.server_acl/",
                  {"allow": ["*"], "deny": ["localhost"]}, token=atok)
    assert r.status == 200, r.raw
    ev, eid = fr.build(uid, "m.room.message", {"msgtype": "m.text", "body": "acl denied"})
    r = send_txn(fed, [ev])
    assert "error" in r.json["pdus"][eid] and "ACL" in r.json["pdus"][eid]["error"], r.raw
    r = f.request(a, "GET", f"/_matrix/federation/v1/make_join/{q(room)}/{q(f.user('fred_acl2'))}?ver=12")
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
    r = f.request(a, "GET", f"/_matrix/federation/v1/state_ids/{q(room)}?event_id={q(fr.last)}")
    assert r.status == 403, r.raw
    # An invite from a denied server: the ACL first, before whether the user
    # exists (Synapse; SyTest's "Banned servers cannot /invite").
    nobody = "@nobody:" + a.server_name
    inv, inv_id = fr.build(uid, "m.room.member", {"membership": "invite"}, state_key=nobody)
    r = f.request(a, "PUT", f"/_matrix/federation/v2/invite/{q(room)}/{q(inv_id)}",
                  {"room_version": "12", "event": inv, "invite_room_state": []})
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
    # And get_missing_events, even with a body that is no request at all
    # ("Banned servers cannot get missing events").
    r = f.request(a, "POST", f"/_matrix/federation/v1/get_missing_events/{q(room)}", {})
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
    send_txn(fed, [], [{"edu_type": "m.typing", "content": {"room_id": room, "user_id": uid, "typing": True}}])
    r = a.request("GET", "/_matrix/client/v3/sync?timeout=0", token=atok)
    eph = r.json["rooms"]["join"][room].get("ephemeral", {}).get("events", [])
    assert not [e for e in eph if e["type"] == "m.typing" and uid in e["content"]["user_ids"]], eph
    bodies = timeline_bodies(a, atok, room)
    assert "acl ok" in bodies and "acl denied" not in bodies


def test_retract_a_remote_knock(fed):
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fedra_alice")
    ivy, itok = user(b, "fedrb_ivy")
    room = create_room(a, atok, preset="private_chat", initial_state=[
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}])
    r = b.request("POST", f"/_matrix/client/v3/knock/{q(room)}?via={q(a.server_name)}", {}, token=itok)
    assert r.status == 200, r.raw
    r = b.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/leave", {}, token=itok)
    assert r.status == 200, r.raw
    # Through the server that took the knock (v12 room IDs name no server).
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(ivy)}", token=atok)
    assert r.status == 200 and r.json["membership"] == "leave", r.raw
    r = b.request("GET", "/_matrix/client/v3/sync?timeout=0", token=itok)
    assert room not in r.json["rooms"]["knock"], r.json["rooms"]


def test_joining_a_room_of_f_checks_its_state(fed):
    """A joins a room hosted by F: the state send_join brings is verified
    event by event; a state event with a bad signature is dropped, one its
    auth events do not allow is rejected, and neither becomes room state."""
    a, f = fed["a"], fed["f"]
    kim, ktok = user(a, "fedra_kim")
    host, mallory = f.user("host"), f.user("mallory")
    now = int(time.time() * 1000)

    def mk(ev, depth, prev, auth, key=None):
        ev = dict(ev, origin_server_ts=now, depth=depth, prev_events=prev, auth_events=auth)
        if room_id:
            ev["room_id"] = room_id
        return finish(ev, f.name, key or f.sk)
    room_id = None
    create, c_id = mk({"type": "m.room.create", "state_key": "", "sender": host,
                       "content": {"room_version": "12"}}, 1, [], [])
    room_id = "!" + c_id[1:]
    member, m_id = mk({"type": "m.room.member", "state_key": host, "sender": host,
                       "content": {"membership": "join"}}, 2, [c_id], [])
    pl, pl_id = mk({"type": "m.room.power_levels", "state_key": "", "sender": host,
                    "content": {"users": {}}}, 3, [m_id], [m_id])  # v12: creators are not listed
    jr, jr_id = mk({"type": "m.room.join_rules", "state_key": "", "sender": host,
                    "content": {"join_rule": "public"}}, 4, [pl_id], [pl_id, m_id])
    name, n_id = mk({"type": "m.room.name", "state_key": "", "sender": host,
                     "content": {"name": "F room"}}, 5, [jr_id], [pl_id, m_id])
    topic, t_id = mk({"type": "m.room.topic", "state_key": "", "sender": host,
                      "content": {"topic": "forged"}}, 6, [n_id], [pl_id, m_id],
                     key=generate_signing_key("f1"))
    avatar, av_id = mk({"type": "m.room.avatar", "state_key": "", "sender": mallory,
                        "content": {"url": "mxc://x/y"}}, 6, [n_id], [pl_id])
    state = [create, member, pl, jr, name, topic, avatar]
    joins = {}

    def make_join(method, path, body):
        user_id = urllib.parse.unquote(path.split("?")[0].split("/")[-1])
        return 200, {"room_version": "12", "event": {
            "type": "m.room.member", "state_key": user_id, "sender": user_id, "room_id": room_id,
            "content": {"membership": "join"}, "origin": f.name, "origin_server_ts": now,
            "depth": 7, "prev_events": [n_id], "auth_events": [pl_id, jr_id]}}

    def send_join(method, path, body):
        joins["event"] = body
        return 200, {"state": state, "auth_chain": [create, member, pl], "event": body,
                     "members_omitted": False}
    f.routes.update({"/_matrix/federation/v1/make_join/": make_join,
                     "/_matrix/federation/v2/send_join/": send_join})
    try:
        r = a.request("POST", f"/_matrix/client/v3/join/{q(room_id)}?via={q(f.name)}", {}, token=ktok)
    finally:
        f.routes.clear()
    assert r.status == 200, r.raw
    # What A sent was signed by A, with kim's profile, on F's template.
    ev = joins["event"]
    assert ev["sender"] == kim and a.server_name in ev["signatures"] and ev["prev_events"] == [n_id]
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room_id)}/state/m.room.name", token=ktok)
    assert r.status == 200 and r.json["name"] == "F room", r.raw
    for t in ("m.room.topic", "m.room.avatar"):
        r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room_id)}/state/{t}", token=ktok)
        assert r.status == 404, (t, r.raw)
    assert a.psql(f"SELECT count(*) FROM events WHERE event_id = '{t_id}'") == "0"
    assert a.psql(f"SELECT rejected_reason IS NOT NULL FROM events WHERE event_id = '{av_id}'") == "t"
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room_id)}/joined_members", token=ktok)
    assert set(r.json["joined"]) == {kim, host}, r.raw
    entry = sync_room(a, ktok, room_id)
    assert entry and any(e["type"] == "m.room.name" for e in entry["state"]["events"]), entry


def join_f_room(fed, local, pl=None, v1_only=False):
    """A room hosted by F (v12, public, power levels pl) that local (a user
    on A) joins through make_join/send_join. F records the PDUs of every
    /send from A afterwards. Returns (room_id, token, sent PDUs); the caller
    clears f.routes."""
    a, f = fed["a"], fed["f"]
    uid, tok = user(a, local)
    host = f.user("host2")
    now = int(time.time() * 1000)
    room_id = None

    def mk(ev, depth, prev, auth):
        ev = dict(ev, origin_server_ts=now, depth=depth, prev_events=prev, auth_events=auth)
        if room_id:
            ev["room_id"] = room_id
        return finish(ev, f.name, f.sk)
    create, c_id = mk({"type": "m.room.create", "state_key": "", "sender": host,
                       "content": {"room_version": "12"}}, 1, [], [])
    room_id = "!" + c_id[1:]
    member, m_id = mk({"type": "m.room.member", "state_key": host, "sender": host,
                       "content": {"membership": "join"}}, 2, [c_id], [])
    pl, pl_id = mk({"type": "m.room.power_levels", "state_key": "", "sender": host,
                    "content": dict(pl or {}, users={})}, 3, [m_id], [m_id])
    jr, jr_id = mk({"type": "m.room.join_rules", "state_key": "", "sender": host,
                    "content": {"join_rule": "public"}}, 4, [pl_id], [pl_id, m_id])
    state = [create, member, pl, jr]
    sent = []  # the PDUs of every /send from A, in order

    def make_join(method, path, body):
        user_id = urllib.parse.unquote(path.split("?")[0].split("/")[-1])
        return 200, {"room_version": "12", "event": {
            "type": "m.room.member", "state_key": user_id, "sender": user_id, "room_id": room_id,
            "content": {"membership": "join"}, "origin": f.name, "origin_server_ts": now,
            "depth": 5, "prev_events": [jr_id], "auth_events": [pl_id, jr_id]}}

    def send_join(method, path, body):
        return 200, {"state": state, "auth_chain": [create, member, pl], "event": body,
                     "members_omitted": False}

    def send(method, path, body):
        sent.extend(p for p in body.get("pdus", []) if p.get("room_id") == room_id)
        return 200, {"pdus": {}}
    def unknown(method, path, body):
        return 404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}

    def send_join_v1(method, path, body):
        return 200, [200, send_join(method, path, body)[1]]
    f.routes.update({"/_matrix/federation/v1/make_join/": make_join,
                     "/_matrix/federation/v2/send_join/": unknown if v1_only else send_join,
                     "/_matrix/federation/v1/send_join/": send_join_v1,
                     "/_matrix/federation/v1/send/": send})
    # F's 404s to earlier /send may have A backing off: a signed request ends it.
    assert f.request(a, "GET", "/_matrix/federation/v1/version").status == 200
    r = a.request("POST", f"/_matrix/client/v3/join/{q(room_id)}?via={q(f.name)}", {}, token=tok)
    assert r.status == 200, r.raw
    return room_id, tok, sent


def test_join_falls_back_to_v1_send_join(fed):
    """A resident server without the v2 send_join (404 M_UNRECOGNIZED): the
    join goes through v1, whose answer is [200, {…}] (spec; Synapse falls
    back so too; SyTest's 'Outbound federation can send_join via v1')."""
    a, f = fed["a"], fed["f"]
    try:
        room_id, tok, _ = join_f_room(fed, "fedra_v1joiner", v1_only=True)
    finally:
        f.routes.clear()
    paths = [p for (m, p, _) in f.seen if "send_join" in p]
    assert any("/v2/send_join/" in p for p in paths) and any("/v1/send_join/" in p for p in paths)
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room_id)}/joined_members", token=tok)
    assert r.status == 200 and len(r.json["joined"]) == 2, r.raw


def test_join_of_a_room_of_unsupported_version(fed):
    """The resident server refuses make_join with 400 M_INCOMPATIBLE_ROOM_VERSION
    (our ?ver= list lacks the room's version), or answers with a version we
    do not know: the client gets 400 M_INCOMPATIBLE_ROOM_VERSION with the
    room's version (spec; Synapse; SyTest's 'Outbound federation correctly
    handles unsupported room versions')."""
    a, f = fed["a"], fed["f"]
    _, tok = user(a, "fedra_oldver")
    answers = [(400, {"errcode": "M_INCOMPATIBLE_ROOM_VERSION", "error": "Your homeserver does not"
                      " support the features required to join this room",
                      "room_version": "sytest-room-ver"}),
               (200, {"room_version": "future-ver", "event": {}})]
    try:
        for status, body in answers:
            f.routes["/_matrix/federation/v1/make_join/"] = \
                lambda m, p, b, status=status, body=body: (status, body)
            assert f.request(a, "GET", "/_matrix/federation/v1/version").status == 200
            room = f"!unsupported{status}:{f.name}"
            r = a.request("POST", f"/_matrix/client/v3/join/{q(room)}?via={q(f.name)}", {},
                          token=tok)
            assert r.status == 400, r.raw
            assert r.json["errcode"] == "M_INCOMPATIBLE_ROOM_VERSION", r.raw
            assert r.json["room_version"] == body["room_version"], r.raw
    finally:
        f.routes.clear()


def test_our_join_through_send_join_is_not_sent_again(fed):
    """A joins a room of F through make_join/send_join: F already has the
    join and passes it on itself (Synapse: proactively_send false), so A's
    first /send to F carries kim's next message, not the join again
    (Complement's TestOutboundFederationSend)."""
    a, f = fed["a"], fed["f"]
    try:
        room_id, ktok, sent = join_f_room(fed, "fedra_kim_send")
        msg = send_text(a, ktok, room_id, "after the join")
        wait_for(lambda: sent, timeout=30, what="kim's message at F")
        time.sleep(0.5)  # anything else queued would have gone out with it
    finally:
        f.routes.clear()
    assert [p["type"] for p in sent] == ["m.room.message"], sent
    assert event_id(sent[0]) == msg and sent[0]["content"]["body"] == "after the join"
    kim = user(a, "fedra_kim_send")[0]
    assert a.psql("SELECT proactively_send FROM events WHERE type = 'm.room.member'"
                  f" AND state_key = '{kim}' AND room_id = '{room_id}'") == "f"


def test_redacting_an_event_a_never_got(fed):
    """In F's room anyone may redact (redact: 0): a user on A redacts an
    event of F that never reached A; A sends the redaction to F all the same
    (Synapse; Complement's TestFederationRedactSendsWithoutEvent), instead
    of answering 404."""
    a, f = fed["a"], fed["f"]
    missing = "$" + encode_base64(hashlib.sha256(b"never sent to A").digest(), urlsafe=True)
    try:
        room_id, tok, sent = join_f_room(fed, "fedra_redactor", pl={"redact": 0})
        r = a.request("PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/redact/{q(missing)}/t1",
                      {"reason": "reasons..."}, token=tok)
        assert r.status == 200, r.raw
        wait_for(lambda: sent, timeout=30, what="the redaction at F")
        time.sleep(0.5)
    finally:
        f.routes.clear()
    assert [p["type"] for p in sent] == ["m.room.redaction"], sent
    assert event_id(sent[0]) == r.json["event_id"]
    assert sent[0]["content"] == {"redacts": missing, "reason": "reasons..."}


def test_invite_blocking_applies_to_other_servers(fed):
    a, f = fed["a"], fed["f"]
    uid, tok = user(a, "fedra_blocker")
    r = a.request("PUT", f"/_matrix/client/v3/user/{q(uid)}/account_data/m.invite_permission_config",
                  {"default_action": "block"}, token=tok)
    assert r.status == 200, r.raw
    host = f.user("host_blk")
    now = int(time.time() * 1000)
    create, c_id = finish({"type": "m.room.create", "state_key": "", "sender": host,
                           "content": {"room_version": "12"}, "origin_server_ts": now, "depth": 1,
                           "prev_events": [], "auth_events": []}, f.name, f.sk)
    room = "!" + c_id[1:]
    inv, inv_id = finish({"type": "m.room.member", "state_key": uid, "sender": host, "room_id": room,
                          "content": {"membership": "invite"}, "origin_server_ts": now, "depth": 2,
                          "prev_events": [c_id], "auth_events": []}, f.name, f.sk)
    r = f.request(a, "PUT", f"/_matrix/federation/v2/invite/{q(room)}/{q(inv_id)}",
                  {"room_version": "12", "event": inv, "invite_room_state": [create]})
    assert r.status == 403 and r.json["errcode"] == "M_INVITE_BLOCKED", r.raw
    assert a.psql(f"SELECT count(*) FROM fed_remote_memberships WHERE user_id = '{uid}'") == "0"


def test_megolm_and_sas_across_two_pvyhs_with_matrix_js_sdk(fed):
    """js/e2ee_federated.mjs between the two pvyhs servers: one matrix-js-sdk
    client (Rust crypto) on each, an encrypted room on each server whose
    messages the other side decrypts (device lists, one-time keys and room
    keys all cross federation), then SAS verification of the two devices."""
    js_dir = os.path.join(os.path.dirname(__file__), "js")
    node = os.path.join(js_dir, "node_modules", ".bin", "node")
    assert os.path.exists(node), "scripts/js_deps.sh installs matrix-js-sdk and Node 22"
    a, b = fed["a"], fed["b"]
    user(a, "fedra_jsalice")
    user(b, "fedrb_jsbob")
    env = dict(os.environ, PVYHS_BASE=a.base, PEER_BASE=b.base, PVYHS_ALICE="fedra_jsalice",
               PEER_BOB="fedrb_jsbob", PVYHS_PASSWORD="correct horse")
    p = subprocess.run([node, "e2ee_federated.mjs"], cwd=js_dir, env=env, capture_output=True,
                       text=True, timeout=300)
    steps = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert p.returncode == 0, f"steps {steps}\n{p.stderr[-6000:]}"
    assert [s.get("step") for s in steps if "step" in s] == \
        ["room on pvyhs", "room on the peer", "sas"], steps
    assert steps[-1] == {"ok": True}


def test_unban_then_invite_then_join_across_servers(fed):
    """Complement's TestUnbanViaInvite: B's bob bans A's ann (A then has no
    one left in the room), unbans her, invites her again; she accepts."""
    a, b = fed["a"], fed["b"]
    ann, atok = user(a, "fedra_ann")
    bob, btok = user(b, "fedrb_bobu")
    room = create_room(b, btok)
    r = a.request("POST", f"/_matrix/client/v3/join/{q(room)}?via={q(b.server_name)}", {}, token=atok)
    assert r.status == 200, r.raw
    r = b.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/ban", {"user_id": ann}, token=btok)
    assert r.status == 200, r.raw
    wait_for(lambda: sync_room(a, atok, room, "leave"), what="ann banned on A")
    r = b.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/unban", {"user_id": ann}, token=btok)
    assert r.status == 200, r.raw
    r = b.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": ann}, token=btok)
    assert r.status == 200, r.raw
    wait_for(lambda: sync_room(a, atok, room, "invite"), what="ann invited on A")
    r = a.request("POST", f"/_matrix/client/v3/join/{q(room)}?via={q(b.server_name)}", {}, token=atok)
    assert r.status == 200, r.raw
    r = b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/joined_members", token=btok)
    assert set(r.json["joined"]) == {ann, bob}, r.raw
    # On A too, once its resync of the members is done: the join made the
    # state the current one (not the ban A knew from before).
    wait_for(lambda: set(a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/joined_members",
                                   token=atok).json.get("joined", {})) == {ann, bob},
             what="both joined on A")


def test_invite_rejection_reaches_the_rooms_other_servers(fed):
    """Complement's TestFederationRejectInvite: A's room has F's user in it;
    A invites B's user, who rejects. F sees the invite, then the rejection
    (B's leave through make_leave/send_leave at A, which A passes on)."""
    a, b, f = fed["a"], fed["b"], fed["f"]
    amy, atok = user(a, "fedra_amy")
    cal, ctok = user(b, "fedrb_cal")
    room = create_room(a, atok)
    f.routes["/_matrix/federation/v1/send/"] = lambda m, p, body: (200, {"pdus": {}})
    fake_join(fed, room, "delia_rj")

    def member_pdu(membership):
        for method, path, body in list(f.seen):
            if method != "PUT" or not path.startswith("/_matrix/federation/v1/send/") or not body:
                continue
            for pdu in body.get("pdus", []):
                if (pdu.get("type") == "m.room.member" and pdu.get("state_key") == cal
                        and pdu["content"].get("membership") == membership):
                    return pdu
        return None
    r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": cal}, token=atok)
    assert r.status == 200, r.raw
    wait_for(lambda: member_pdu("invite"), timeout=10, what="the invite at F")
    wait_for(lambda: sync_room(b, ctok, room, "invite"), what="cal invited on B")
    r = b.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/leave", {}, token=ctok)
    assert r.status == 200, r.raw
    wait_for(lambda: member_pdu("leave"), timeout=10, what="the rejection at F")


def test_inviter_rescinds_invite_across_servers(fed):
    """Complement's "Inviter user can rescind invite over federation": A's
    inviter kicks B's invited user; B, not in the room, takes that leave
    (the inviter's, citing the invite) and its user's /sync shows the room
    left. Another member's kick of an invite is not taken (Synapse's rule)."""
    a, b = fed["a"], fed["b"]
    amy, atok = user(a, "fedra_amyr")
    ada, dtok = user(a, "fedra_adar")
    ben, btok = user(b, "fedrb_benr")
    room = create_room(a, atok, preset="private_chat", invite=[ben])
    wait_for(lambda: sync_room(b, btok, room, "invite"), what="ben invited on B")
    r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/kick", {"user_id": ben, "reason": "t"},
                  token=atok)
    assert r.status == 200, r.raw
    flt = q(json.dumps({"room": {"include_leave": True}}))

    def left():
        r = b.request("GET", f"/_matrix/client/v3/sync?timeout=0&filter={flt}", token=btok)
        return r.json["rooms"]["leave"].get(room) if room not in r.json["rooms"]["invite"] else None
    entry = wait_for(left, timeout=20, what="the rescission on B")
    evs = entry["timeline"]["events"] + entry.get("state", {}).get("events", [])
    assert any(e["type"] == "m.room.member" and e["state_key"] == ben and e["sender"] == amy
               and e["content"]["membership"] == "leave" for e in evs), entry
    # Invited by ada, kicked by amy: B keeps the invite.
    room2 = create_room(a, atok, preset="private_chat", invite=[ada])
    assert a.request("POST", f"/_matrix/client/v3/join/{q(room2)}", {}, token=dtok).status == 200
    r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room2)}/invite", {"user_id": ben}, token=dtok)
    assert r.status == 200, r.raw
    wait_for(lambda: sync_room(b, btok, room2, "invite"), what="ben invited to room2 on B")
    r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room2)}/kick", {"user_id": ben}, token=atok)
    assert r.status == 200, r.raw
    # A rescission sent after it (the sender keeps the order) shows that B
    # had that kick by then.
    room3 = create_room(a, atok, preset="private_chat", invite=[ben])
    wait_for(lambda: sync_room(b, btok, room3, "invite"), what="ben invited to room3 on B")
    r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room3)}/kick", {"user_id": ben}, token=atok)
    assert r.status == 200, r.raw
    wait_for(lambda: not sync_room(b, btok, room3, "invite"), timeout=20, what="room3 rescinded")
    assert sync_room(b, btok, room2, "invite"), "a non-inviter's kick rescinded the invite"


def test_device_names_over_federation_only_when_allowed(fed, pki):  # noqa: F811
    """allow_device_name_lookup_over_federation (Synapse's key): off, other
    servers see no device names (test_federation_sender checks that); on,
    /user/keys/query and /user/devices carry them (Complement's
    TestFederationKeyUploadQuery, run against Synapse with it on)."""
    from e2ee_crypto import Device
    a = fed["a"]
    x = FedServer(pki, prefix="fedrx",
                  extra=FedServer.NO_LIMITS + "allow_device_name_lookup_over_federation: true\n")
    x.start()
    try:
        uid = x.add_user("fedrx_ann")
        tok = x.login("fedrx_ann", device_id="ANNPHONE")
        r = x.request("POST", "/_matrix/client/v3/keys/upload",
                      {"device_keys": Device(uid, "ANNPHONE").device_keys()}, token=tok)
        assert r.status == 200, r.raw
        r = x.request("PUT", "/_matrix/client/v3/devices/ANNPHONE", {"display_name": "Ann's phone"},
                      token=tok)
        assert r.status == 200, r.raw
        r = a.fed_request(x.server_name, "/_matrix/federation/v1/user/keys/query", "POST",
                          {"device_keys": {uid: []}})
        assert r.json["status"] == 200, r.raw
        got = r.json["body"]["device_keys"][uid]["ANNPHONE"]
        assert got["unsigned"] == {"device_display_name": "Ann's phone"}, got
        r = a.fed_request(x.server_name, f"/_matrix/federation/v1/user/devices/{q(uid)}")
        assert r.json["status"] == 200, r.raw
        assert r.json["body"]["devices"][0]["device_display_name"] == "Ann's phone"
    finally:
        stop_clean(x)
        x.__exit__(None, None, None)
