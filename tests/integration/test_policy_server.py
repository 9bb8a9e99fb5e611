"""test_policy_server.py — Policy Servers (spec v1.18, MSC4284) as a
homeserver meets them: a room of A whose m.room.policy names F, a server
played by Python (test_federation_rooms.py's FakeServer) with a joined user
in the room, that answers POST /_matrix/policy/v1/sign with an ed25519
signature under "ed25519:policy_server" — a key of its own, published only
in the state event — unless the event's content says "spam".

  - A's own events (messages and state) are sent to F for signing and are
    stored and served with F's signature beside A's;
  - an event F refuses is not sent: the client gets F's error verbatim;
  - the m.room.policy state event itself is never sent to F;
  - a PDU pushed to A without F's signature makes A ask F: refused, it is
    soft-failed (stored, not in /messages or /sync); signed, it goes in;
  - a PDU carrying a valid signature goes in without asking;
  - events pulled by backfill get the same check: refused, stored
    soft-failed (never shown);
  - send_join (v1, v2) and send_leave of a membership F refuses, and an
    invite F refuses, are answered 403 and not stored or signed; accepted,
    they carry F's signature;
  - once F has no joined member, the room no longer uses a Policy Server.
"""
import json
import time
import urllib.parse
import uuid

import pytest
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json, verify_signed_json

from test_federation_rooms import (FakeServer, create_room, fake_join, finish, gap_routes, q, redact,  # noqa: F401
                                   send_txn, sync_room, timeline_bodies, user)
from synapse_peer import tls_peer
from test_federation_transport import FedServer, pki, stop_clean  # noqa: F401
from test_synapse_federation import Client

SPAM_ERROR = {"errcode": "M_FORBIDDEN", "error": "The message appears to contain possible spam"}


@pytest.fixture(scope="module")
def ps(pki):  # noqa: F811
    a = FedServer(pki, prefix="fedps", extra=FedServer.NO_LIMITS)
    a.start()
    f = FakeServer(pki)
    psk = generate_signing_key("policy_server")  # key ID ed25519:policy_server
    f.sign_calls = []

    def sign(method, path, body):
        f.sign_calls.append(body)
        if method != "POST":
            return 405, {"errcode": "M_UNRECOGNIZED", "error": "POST only"}
        if "spam" in json.dumps(body.get("content", {})):
            return 400, SPAM_ERROR
        signed = sign_json(redact(body), f.name, psk)
        return 200, {f.name: signed["signatures"][f.name]}

    f.routes["/_matrix/policy/v1/sign"] = sign
    f.routes["/_matrix/federation/v1/send/"] = lambda m, p, b: (200, {"pdus": {}})
    fed = {"a": a, "f": f}
    alice, atok = user(a, "fedps_alice")
    room = create_room(a, atok, name="Guarded")
    pid, fr, _ = fake_join(fed, room, "policy")
    vk = get_verify_key(psk)
    r = a.request("PUT", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.policy/",
                  {"via": f.name, "public_keys": {"ed25519": encode_verify_key_base64(vk)}},
                  token=atok)
    assert r.status == 200, r.raw
    yield {"a": a, "f": f, "fed": fed, "room": room, "atok": atok, "alice": alice, "fr": fr,
           "pid": pid, "psk": psk, "vk": vk, "policy_event": r.json["event_id"]}
    f.close()
    try:
        stop_clean(a)
    finally:
        a.__exit__(None, None, None)


def fetch_pdu(ps, eid):
    """The event as A serves it over federation (to F, who is in the room)."""
    r = ps["f"].request(ps["a"], "GET", f"/_matrix/federation/v1/event/{q(eid)}")
    assert r.status == 200, r.raw
    return r.json["pdus"][0]


def send(ps, type_, content, state_key=None):
    a, room, atok = ps["a"], ps["room"], ps["atok"]
    if state_key is None:
        path = f"/_matrix/client/v3/rooms/{q(room)}/send/{type_}/{uuid.uuid4().hex}"
    else:
        path = f"/_matrix/client/v3/rooms/{q(room)}/state/{type_}/{q(state_key)}"
    return a.request("PUT", path, content, token=atok)


def test_policy_state_event_is_not_sent_for_signing(ps):
    assert ps["f"].sign_calls == []
    pdu = fetch_pdu(ps, ps["policy_event"])
    assert list(pdu["signatures"]) == [ps["a"].server_name]


def test_local_events_carry_the_policy_server_signature(ps):
    a, f = ps["a"], ps["f"]
    before = len(f.sign_calls)
    r = send(ps, "m.room.message", {"msgtype": "m.text", "body": "hello, guarded room"})
    assert r.status == 200, r.raw
    eid = r.json["event_id"]
    # F was asked once, with the PDU in federation format: hashed and signed by A.
    assert len(f.sign_calls) == before + 1
    asked = f.sign_calls[-1]
    assert asked["type"] == "m.room.message" and asked["content"]["body"] == "hello, guarded room"
    assert asked["room_id"] == ps["room"] and "hashes" in asked and "unsigned" not in asked
    assert a.server_name in asked["signatures"]
    # Stored and served with both signatures; F's verifies with the key of m.room.policy.
    pdu = fetch_pdu(ps, eid)
    assert set(pdu["signatures"]) == {a.server_name, f.name}
    assert list(pdu["signatures"][f.name]) == ["ed25519:policy_server"]
    verify_signed_json(redact(pdu), f.name, ps["vk"])
    assert "hello, guarded room" in timeline_bodies(a, ps["atok"], ps["room"])
    # State events too (here a topic).
    r = send(ps, "m.room.topic", {"topic": "kept clean"}, state_key="")
    assert r.status == 200, r.raw
    assert f.sign_calls[-1]["type"] == "m.room.topic"
    verify_signed_json(redact(fetch_pdu(ps, r.json["event_id"])), f.name, ps["vk"])


def test_refused_local_event_is_not_sent(ps):
    a, f = ps["a"], ps["f"]
    before = len(f.sign_calls)
    r = send(ps, "m.room.message", {"msgtype": "m.text", "body": "buy spam now"})
    assert r.status == 400, r.raw
    assert r.json == SPAM_ERROR, r.raw  # the Policy Server's error, verbatim
    assert len(f.sign_calls) == before + 1
    assert "buy spam now" not in timeline_bodies(a, ps["atok"], ps["room"])
    assert a.psql("SELECT count(*) FROM events WHERE convert_from(json, 'UTF8') LIKE '%buy spam now%'") == "0"
    # A state event it refuses is not set either.
    r = send(ps, "m.room.topic", {"topic": "spam topic"}, state_key="")
    assert r.status == 400 and r.json["errcode"] == "M_FORBIDDEN", r.raw
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(ps['room'])}/state/m.room.topic/",
                  token=ps["atok"])
    assert r.json == {"topic": "kept clean"}, r.raw


def test_incoming_events_without_signature_are_checked(ps):
    a, f, fr, pid = ps["a"], ps["f"], ps["fr"], ps["pid"]
    atok, room = ps["atok"], ps["room"]
    # 1. Unsigned and refused by F when A asks: soft-failed.
    before = len(f.sign_calls)
    ev, eid = fr.build(pid, "m.room.message", {"msgtype": "m.text", "body": "federated spam"})
    r = send_txn(ps["fed"], [ev])
    assert r.status == 200 and r.json == {"pdus": {eid: {}}}, r.raw
    assert len(f.sign_calls) == before + 1 and f.sign_calls[-1]["content"]["body"] == "federated spam"
    assert a.psql(f"SELECT soft_failed FROM events WHERE event_id = '{eid}'") == "t"
    assert "federated spam" not in timeline_bodies(a, atok, room)
    entry = sync_room(a, atok, room)
    assert all(e.get("event_id") != eid for e in entry["timeline"]["events"])
    # 2. Carrying a valid signature of F: in, and F is not asked.
    ev, eid = fr.build(pid, "m.room.message", {"msgtype": "m.text", "body": "federated, pre-signed"})
    ev["signatures"][f.name]["ed25519:policy_server"] = \
        sign_json(redact(ev), f.name, ps["psk"])["signatures"][f.name]["ed25519:policy_server"]
    before = len(f.sign_calls)
    r = send_txn(ps["fed"], [ev])
    assert r.status == 200 and r.json == {"pdus": {eid: {}}}, r.raw
    fr.advance(ev, eid)
    assert len(f.sign_calls) == before
    assert a.psql(f"SELECT soft_failed FROM events WHERE event_id = '{eid}'") == "f"
    assert "federated, pre-signed" in timeline_bodies(a, atok, room)
    # 3. Unsigned but F signs when asked: in, stored with the signature.
    ev, eid = fr.build(pid, "m.room.message", {"msgtype": "m.text", "body": "federated, signed late"})
    r = send_txn(ps["fed"], [ev])
    assert r.status == 200 and r.json == {"pdus": {eid: {}}}, r.raw
    fr.advance(ev, eid)
    assert len(f.sign_calls) == before + 1
    assert a.psql(f"SELECT soft_failed FROM events WHERE event_id = '{eid}'") == "f"
    assert "federated, signed late" in timeline_bodies(a, atok, room)
    verify_signed_json(redact(fetch_pdu(ps, eid)), f.name, ps["vk"])
    # 4. A signature by another key (not the one in m.room.policy) does not count.
    ev, eid = fr.build(pid, "m.room.message", {"msgtype": "m.text", "body": "more spam, forged"})
    forger = generate_signing_key("policy_server")
    ev["signatures"][f.name]["ed25519:policy_server"] = \
        sign_json(redact(ev), f.name, forger)["signatures"][f.name]["ed25519:policy_server"]
    r = send_txn(ps["fed"], [ev])
    assert r.status == 200 and r.json == {"pdus": {eid: {}}}, r.raw
    assert len(f.sign_calls) == before + 2
    assert a.psql(f"SELECT soft_failed FROM events WHERE event_id = '{eid}'") == "t"


def ps_sign(ps, ev):
    """ev with the Policy Server's signature added, as F would give it."""
    f = ps["f"]
    ev["signatures"][f.name]["ed25519:policy_server"] = \
        sign_json(redact(ev), f.name, ps["psk"])["signatures"][f.name]["ed25519:policy_server"]
    return ev


def test_missing_events_are_checked_too(ps):
    """A pushed event whose prev event A lacks: A pulls it (get_missing_events),
    and the pulled one goes through the same check."""
    a, f, fr, pid = ps["a"], ps["f"], ps["fr"], ps["pid"]
    gap, gap_id = fr.build(pid, "m.room.message", {"msgtype": "m.text", "body": "spam in the gap"})
    top, top_id = fr.build(pid, "m.room.message", {"msgtype": "m.text", "body": "on top of the gap"},
                           prev=[gap_id])
    ps_sign(ps, top)
    f.routes["/_matrix/federation/v1/get_missing_events/"] = lambda m, p, b: (200, {"events": [gap]})
    try:
        before = len(f.sign_calls)
        r = send_txn(ps["fed"], [top])
        assert r.status == 200 and r.json == {"pdus": {top_id: {}}}, r.raw
    finally:
        del f.routes["/_matrix/federation/v1/get_missing_events/"]
    assert [c["content"]["body"] for c in f.sign_calls[before:]] == ["spam in the gap"]
    assert a.psql(f"SELECT soft_failed FROM events WHERE event_id = '{gap_id}'") == "t"
    assert a.psql(f"SELECT soft_failed FROM events WHERE event_id = '{top_id}'") == "f"
    fr.advance(top, top_id)
    bodies = timeline_bodies(a, ps["atok"], ps["room"])
    assert "on top of the gap" in bodies and "spam in the gap" not in bodies


def test_backfilled_events_are_checked_too(ps):
    """A gap too wide for get_missing_events leaves A without the oldest
    events; a client paging back makes A pull them (GET /backfill), and the
    one F refuses is stored soft-failed, never shown."""
    a, f, fr, pid = ps["a"], ps["f"], ps["fr"], ps["pid"]
    ids = []
    for i in range(13):
        body = "spam, backfilled" if i == 0 else f"backfill {i}"
        ev, eid = fr.build(pid, "m.room.message", {"msgtype": "m.text", "body": body})
        if i:
            ps_sign(ps, ev)
        fr.advance(ev, eid)
        ids.append(eid)
    backfills = []

    def backfill(method, path, body):
        backfills.append(path)
        return 200, {"origin": f.name, "origin_server_ts": int(time.time() * 1000),
                     "pdus": [fr.events[ids[1]], fr.events[ids[0]]]}
    # ids[0] stays unknown to A until it backfills it.
    routes = dict(gap_routes(f, fr, ids, first=1, withheld={ids[0]}),
                  **{"/_matrix/federation/v1/backfill/": backfill})
    f.routes.update(routes)
    try:
        r = send_txn(ps["fed"], [fr.events[ids[-1]]])
        assert r.status == 200 and r.json == {"pdus": {ids[-1]: {}}}, r.raw
        assert a.psql(f"SELECT count(*) FROM events WHERE event_id = '{ids[0]}'") == "0"
        before = len(f.sign_calls)
        bodies, frm = [], None
        for _ in range(20):
            path = f"/_matrix/client/v3/rooms/{q(ps['room'])}/messages?dir=b&limit=10"
            r = a.request("GET", path + (f"&from={frm}" if frm else ""), token=ps["atok"])
            assert r.status == 200, r.raw
            bodies += [e["content"].get("body") for e in r.json["chunk"]]
            if "end" not in r.json:
                break
            frm = r.json["end"]
    finally:
        for k in routes:
            del f.routes[k]
    assert backfills, "A never asked F for the room's history"
    # F was asked about the unsigned one only; A keeps it, soft-failed, as history.
    assert [c["content"]["body"] for c in f.sign_calls[before:]] == ["spam, backfilled"]
    assert a.psql(f"SELECT soft_failed::text || ' ' || (stream_ordering < 0)::text FROM events"
                  f" WHERE event_id = '{ids[0]}'") == "true true"
    assert a.psql(f"SELECT soft_failed::text || outlier::text FROM events"
                  f" WHERE event_id = '{ids[1]}'") == "falsefalse"
    assert "backfill 1" in bodies and "backfill 12" in bodies, bodies
    assert "spam, backfilled" not in bodies


def make_and_send(ps, uid, kind, extra=None, api="v2"):
    """F's make_{kind}/send_{kind} dance for uid, with extra content."""
    a, f, room = ps["a"], ps["f"], ps["room"]
    r = f.request(a, "GET", f"/_matrix/federation/v1/make_{kind}/{q(room)}/{q(uid)}?ver=11&ver=12")
    assert r.status == 200, r.raw
    tmpl = r.json["event"]
    tmpl["content"].update(extra or {})
    tmpl["origin"] = f.name
    tmpl["origin_server_ts"] = int(time.time() * 1000)
    ev, eid = finish(tmpl, f.name, f.sk)
    return eid, f.request(a, "PUT", f"/_matrix/federation/{api}/send_{kind}/{q(room)}/{q(eid)}", ev)


def member_of(ps, uid):
    r = ps["a"].request("GET", f"/_matrix/client/v3/rooms/{q(ps['room'])}/state/m.room.member/{q(uid)}",
                        token=ps["atok"])
    return r.json.get("membership") if r.status == 200 else None


def test_send_join_and_leave_are_checked(ps):
    """Memberships A is asked to make (send_join v1 and v2, send_leave,
    send_knock): one
    F will not sign is refused with 403 and not stored; one it signs goes in
    with F's signature, which the send_join answer carries."""
    a, f = ps["a"], ps["f"]
    spammer = f.user("ps_spammer")
    for api in ("v2", "v1"):
        before = len(f.sign_calls)
        eid, r = make_and_send(ps, spammer, "join", {"displayname": f"spam bot {api}"}, api=api)
        assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", (api, r.raw)
        assert "policy server" in r.json["error"], r.raw
        assert [c["content"].get("displayname") for c in f.sign_calls[before:]] == [f"spam bot {api}"]
        assert a.psql(f"SELECT count(*) FROM events WHERE event_id = '{eid}'") == "0"
        assert member_of(ps, spammer) is None
    joiner = f.user("ps_joiner")
    before = len(f.sign_calls)
    eid, r = make_and_send(ps, joiner, "join", {"displayname": "a fine joiner"})
    assert r.status == 200, r.raw
    assert len(f.sign_calls) == before + 1
    verify_signed_json(redact(r.json["event"]), f.name, ps["vk"])
    assert member_of(ps, joiner) == "join"
    verify_signed_json(redact(fetch_pdu(ps, eid)), f.name, ps["vk"])
    # Leaving: refused, the member stays joined; signed, it leaves.
    eid, r = make_and_send(ps, joiner, "leave", {"reason": "spam"})
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
    assert member_of(ps, joiner) == "join"
    eid, r = make_and_send(ps, joiner, "leave", {"reason": "done here"})
    assert r.status == 200 and r.json == {}, r.raw
    assert member_of(ps, joiner) == "leave"
    # Knocking, in the room made knockable for a moment.
    r = send(ps, "m.room.join_rules", {"join_rule": "knock"}, state_key="")
    assert r.status == 200, r.raw
    try:
        knocker = f.user("ps_knocker")
        eid, r = make_and_send(ps, knocker, "knock", {"reason": "spam"}, api="v1")
        assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
        assert member_of(ps, knocker) is None
        eid, r = make_and_send(ps, knocker, "knock", {"reason": "let me in"}, api="v1")
        assert r.status == 200 and "knock_room_state" in r.json, r.raw
        assert member_of(ps, knocker) == "knock"
        verify_signed_json(redact(fetch_pdu(ps, eid)), f.name, ps["vk"])
    finally:
        r = send(ps, "m.room.join_rules", {"join_rule": "public"}, state_key="")
        assert r.status == 200, r.raw


def test_invite_is_checked(ps):
    """F's member invites a user of A into the room, which A knows to use F:
    an invite F will not sign is refused (403, not signed by A); one it
    signs is answered with both signatures."""
    a, f, fr, pid = ps["a"], ps["f"], ps["fr"], ps["pid"]
    bob, _ = user(a, "fedps_bob")
    types = [("m.room.power_levels", ""), ("m.room.member", pid)]
    if fr.version not in ("12",):
        types.append(("m.room.create", ""))
    create = fr.events[fr.state[("m.room.create", "")]]
    for reason, status in (("spam invite", 403), ("come in", 200)):
        ev, eid = fr.build(pid, "m.room.member", {"membership": "invite", "reason": reason},
                           state_key=bob, auth_types=types)
        before = len(f.sign_calls)
        r = f.request(a, "PUT", f"/_matrix/federation/v2/invite/{q(ps['room'])}/{q(eid)}",
                      {"room_version": fr.version, "event": ev, "invite_room_state": [create]})
        assert r.status == status, (reason, r.raw)
        assert [c["content"]["reason"] for c in f.sign_calls[before:]] == [reason]
    assert r.json["event"]["signatures"][a.server_name]
    verify_signed_json(redact(r.json["event"]), f.name, ps["vk"])


def test_policy_server_failures_refuse_the_send(ps):
    """Unreachable (no answer), an answer that is no valid signature, or an
    error of its own (verbatim): the event is not sent."""
    a, f = ps["a"], ps["f"]
    sign = f.routes["/_matrix/policy/v1/sign"]

    def hang_up(m, p, b):
        raise ConnectionAbortedError("the Policy Server hangs up")
    cases = [
        (hang_up, 502, "M_UNKNOWN"),
        (lambda m, p, b: (200, {}), 403, "M_FORBIDDEN"),
        (lambda m, p, b: (200, {f.name: {"ed25519:policy_server": "AAAA"}}), 403, "M_FORBIDDEN"),
        (lambda m, p, b: (429, {"errcode": "M_LIMIT_EXCEEDED", "error": "slow down",
                                "retry_after_ms": 1000}), 429, "M_LIMIT_EXCEEDED"),
    ]
    try:
        for i, (route, status, errcode) in enumerate(cases):
            f.routes["/_matrix/policy/v1/sign"] = route
            body = f"attempt {i} while the policy server misbehaves"
            r = send(ps, "m.room.message", {"msgtype": "m.text", "body": body})
            assert r.status == status and r.json["errcode"] == errcode, (i, r.raw)
            assert body not in timeline_bodies(a, ps["atok"], ps["room"])
        assert r.json["error"] == "slow down"
    finally:
        f.routes["/_matrix/policy/v1/sign"] = sign
    r = send(ps, "m.room.message", {"msgtype": "m.text", "body": "back to normal"})
    assert r.status == 200, r.raw


def test_invalid_policy_event_disables_it(ps):
    """An m.room.policy without public_keys.ed25519 is no Policy Server; it
    is exempt itself, and the valid one set back enables F again."""
    a, f = ps["a"], ps["f"]
    before = len(f.sign_calls)
    for bad in ({"via": f.name}, {"via": f.name, "public_keys": {"ed25519": 5}},
                {"via": 7, "public_keys": {"ed25519": encode_verify_key_base64(ps["vk"])}}):
        r = send(ps, "m.room.policy", bad, state_key="")
        assert r.status == 200, r.raw
        r = send(ps, "m.room.message", {"msgtype": "m.text", "body": f"spam under {bad}"})
        assert r.status == 200, r.raw
    assert len(f.sign_calls) == before
    # A non-state m.room.policy is not exempt: with the valid one back, it is asked for.
    r = send(ps, "m.room.policy", {"via": f.name,
                                   "public_keys": {"ed25519": encode_verify_key_base64(ps["vk"])}},
             state_key="")
    assert r.status == 200, r.raw
    assert len(f.sign_calls) == before
    r = send(ps, "m.room.policy", {"note": "not state"})
    assert r.status == 200, r.raw
    assert len(f.sign_calls) == before + 1 and f.sign_calls[-1]["type"] == "m.room.policy"
    r = send(ps, "m.room.message", {"msgtype": "m.text", "body": "spam again"})
    assert r.status == 400 and r.json == SPAM_ERROR, r.raw


def test_no_joined_member_no_policy_server(ps):
    """Last: F's only user leaves, so the room no longer uses F."""
    a, f, fr, pid = ps["a"], ps["f"], ps["fr"], ps["pid"]
    ev, eid = fr.build(pid, "m.room.member", {"membership": "leave"}, state_key=pid,
                       auth_types=[("m.room.power_levels", ""), ("m.room.member", pid)])
    ev["signatures"][f.name]["ed25519:policy_server"] = \
        sign_json(redact(ev), f.name, ps["psk"])["signatures"][f.name]["ed25519:policy_server"]
    r = send_txn(ps["fed"], [ev])
    assert r.status == 200 and r.json == {"pdus": {eid: {}}}, r.raw
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(ps['room'])}/joined_members", token=ps["atok"])
    assert pid not in r.json["joined"], r.raw
    before = len(f.sign_calls)
    r = send(ps, "m.room.message", {"msgtype": "m.text", "body": "spam, but nobody checks"})
    assert r.status == 200, r.raw
    assert len(f.sign_calls) == before
    stored = json.loads(a.psql("SELECT convert_from(json, 'UTF8') FROM events"
                               f" WHERE event_id = '{r.json['event_id']}'"))
    assert list(stored["signatures"]) == [a.server_name]


# ---- with a real Synapse in the room ----------------------------------------------------------


@pytest.fixture(scope="module")
def with_synapse(pki, ps):  # noqa: F811
    """ps's F as the Policy Server of a new room of A that a Synapse user
    joins: Synapse checks A's signed events and asks F for its own."""
    syn = tls_peer(pki, prefix="synapse-ps-")
    syn.start()
    a, f = ps["a"], ps["f"]
    alice = Client(a.base, ps["alice"], ps["atok"])
    room = alice.create(preset="public_chat", name="Guarded with Synapse")
    pid, fr, _ = fake_join(ps["fed"], room, "policy2")
    alice.ok("PUT", f"/rooms/{q(room)}/state/m.room.policy/",
             {"via": f.name, "public_keys": {"ed25519": encode_verify_key_base64(ps["vk"])}})
    sally_id, sally_tok = syn.register("ps_sally", "correct horse")
    sally = Client(syn.base, sally_id, sally_tok)
    r = sally.req("POST", f"/join/{q(room)}?server_name={q(a.server_name)}", {})
    assert r.status == 200, r
    yield {"syn": syn, "alice": alice, "sally": sally, "room": room}
    rc = syn.stop()
    assert rc == 0, syn.read_log()[-3000:]
    syn.cleanup()


def test_synapse_accepts_signed_events_and_asks_for_its_own(ps, with_synapse):
    f, syn = ps["f"], with_synapse["syn"]
    alice, sally, room = with_synapse["alice"], with_synapse["sally"], with_synapse["room"]
    # pvyhs's signed event: Synapse finds F's signature valid and shows it.
    before = len(f.sign_calls)
    alice.say(room, "pvyhs, signed by the policy server")
    assert len(f.sign_calls) == before + 1
    sally.sees(room, alice.user_id, "pvyhs, signed by the policy server")
    # Synapse's own: signed by F on Synapse's request; pvyhs accepts it
    # without asking again.
    before = len(f.sign_calls)
    eid = sally.say(room, "synapse, signed by the policy server")
    alice.sees(room, sally.user_id, "synapse, signed by the policy server")
    asked = [c for c in f.sign_calls[before:] if c.get("type") == "m.room.message"]
    assert len(asked) == 1 and asked[0]["sender"] == sally.user_id, f.sign_calls[before:]
    assert ps["a"].psql(f"SELECT soft_failed FROM events WHERE event_id = '{eid}'") == "f"
    # Synapse refuses what F refuses, with F's error, as pvyhs does.
    r = sally.req("PUT", f"/rooms/{q(room)}/send/m.room.message/spam1", {"msgtype": "m.text",
                                                                        "body": "spam from synapse"})
    assert r.status == 400 and r.json["errcode"] == "M_FORBIDDEN", r
    r = alice.req("PUT", f"/rooms/{q(room)}/send/m.room.message/spam1", {"msgtype": "m.text",
                                                                        "body": "spam from pvyhs"})
    assert r.status == 400 and r.json == SPAM_ERROR, r
    # Synapse found F's signature on pvyhs's events valid: it would have
    # asked F again otherwise (as it does for the room's events from before
    # m.room.policy, which it backfilled: "Not signed by" in its log).
    signed = [c for c in f.sign_calls if c.get("content", {}).get("body") ==
              "pvyhs, signed by the policy server"]
    assert len(signed) == 1, signed
    assert "not allowed by policy server" not in syn.read_log()
