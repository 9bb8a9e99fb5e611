"""test_federation_v1.py — the deprecated v1 endpoints the spec still lists:
PUT /v1/send_join, /v1/send_leave and /v1/invite, answered [200, {...}],
called directly by F (a server played by Python, test_federation_rooms.py)
with signed requests.
"""
import copy
import os
import time

from signedjson.key import decode_verify_key_bytes
from signedjson.sign import sign_json, verify_signed_json
from unpaddedbase64 import decode_base64

from test_federation_rooms import (FakeRoom, content_hash, create_room, event_id, fed, finish,  # noqa: F401
                                   q, user)
from test_federation_transport import https, pki  # noqa: F401


def a_verify_key(a):
    keys = https(a.pki, a.fed_base, "GET", "/_matrix/key/v2/server").json
    (kid, vk), = keys["verify_keys"].items()
    return decode_verify_key_bytes(kid, decode_base64(vk["key"]))


def v1_join(fed, room, local):
    """F's user joins room of A through make_join and the v1 send_join."""
    a, f = fed["a"], fed["f"]
    uid = f.user(local)
    r = f.request(a, "GET", f"/_matrix/federation/v1/make_join/{q(room)}/{q(uid)}?ver=12")
    assert r.status == 200, r.raw
    tmpl = r.json["event"]
    tmpl["origin_server_ts"] = int(time.time() * 1000)
    ev, eid = finish(tmpl, f.name, f.sk)
    r = f.request(a, "PUT", f"/_matrix/federation/v1/send_join/{q(room)}/{q(eid)}", ev)
    return uid, ev, eid, r


def test_v1_send_join_and_send_leave(fed):
    a, f = fed["a"], fed["f"]
    alice, atok = user(a, "fedv1_alice")
    room = create_room(a, atok, name="Old API")
    uid, ev, eid, r = v1_join(fed, room, "fv1_joiner")
    assert r.status == 200, r.raw
    ans = r.json
    assert isinstance(ans, list) and len(ans) == 2 and ans[0] == 200, r.raw
    body = ans[1]
    assert body["origin"] == a.server_name
    assert "members_omitted" not in body
    types = {(p["type"], p["state_key"]) for p in body["state"]}
    assert {("m.room.create", ""), ("m.room.name", ""), ("m.room.member", alice)} <= types
    assert ("m.room.member", uid) not in types  # the state before the join
    assert event_id(body["event"]) == eid
    vk = a_verify_key(a)
    chain = {event_id(p) for p in body["auth_chain"]}
    for p in body["state"]:
        verify_signed_json(_redacted(p), a.server_name, vk)
        assert p["hashes"]["sha256"] == content_hash(p)
        assert all(x in chain for x in p["auth_events"])
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/joined_members", token=atok)
    assert uid in r.json["joined"], r.raw

    # A join of an event the path does not name is refused.
    fr = FakeRoom(f, room, "12")
    for p in body["auth_chain"] + body["state"]:
        fr.learn(p)
    fr.advance(body["event"], eid)
    bad, bad_id = fr.build(uid, "m.room.member", {"membership": "join"}, state_key=uid)
    r = f.request(a, "PUT", f"/_matrix/federation/v1/send_join/{q(room)}/{q('$not' + bad_id[1:])}", bad)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r.raw

    # Leaving through the v1 send_leave.
    r = f.request(a, "GET", f"/_matrix/federation/v1/make_leave/{q(room)}/{q(uid)}")
    assert r.status == 200, r.raw
    tmpl = r.json["event"]
    tmpl["origin_server_ts"] = int(time.time() * 1000)
    lev, lid = finish(tmpl, f.name, f.sk)
    r = f.request(a, "PUT", f"/_matrix/federation/v1/send_leave/{q(room)}/{q(lid)}", lev)
    assert r.status == 200 and r.json == [200, {}], r.raw
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(uid)}", token=atok)
    assert r.status == 200 and r.json["membership"] == "leave", r.raw


def test_v1_send_join_refusals(fed):
    a, f = fed["a"], fed["f"]
    alice, atok = user(a, "fedv1_alice")
    room = create_room(a, atok, preset="private_chat")
    uid = f.user("fv1_uninvited")
    # make_join refuses (not invited); a hand-made join is refused by send_join too.
    r = f.request(a, "GET", f"/_matrix/federation/v1/make_join/{q(room)}/{q(uid)}?ver=12")
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state", token=atok)
    state = {(e["type"], e["state_key"]): e["event_id"] for e in r.json}
    ev = {"type": "m.room.member", "room_id": room, "sender": uid, "state_key": uid,
          "content": {"membership": "join"}, "origin_server_ts": int(time.time() * 1000),
          "depth": 100, "prev_events": [state[("m.room.member", alice)]],
          "auth_events": [state[("m.room.power_levels", "")], state[("m.room.join_rules", "")]]}
    ev, eid = finish(ev, f.name, f.sk)
    r = f.request(a, "PUT", f"/_matrix/federation/v1/send_join/{q(room)}/{q(eid)}", ev)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
    # Unsigned: 401.
    r = https(a.pki, a.fed_base, "PUT", f"/_matrix/federation/v1/send_join/{q(room)}/{q(eid)}", ev)
    assert r.status == 401, r.raw
    r = https(a.pki, a.fed_base, "PUT", f"/_matrix/federation/v1/invite/{q(room)}/{q(eid)}", ev)
    assert r.status == 401, r.raw


# ---- v1 invites: room versions 1 and 2, whose events carry their ID ------------------

V1_TOP = {"event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures",
          "depth", "prev_events", "prev_state", "auth_events", "origin", "origin_server_ts",
          "membership"}


def _redacted(ev):
    from test_federation_rooms import redact
    return redact(ev)


def redact_v1(ev):
    out = {k: copy.deepcopy(v) for k, v in ev.items() if k in V1_TOP}
    out["content"] = {k: v for k, v in ev.get("content", {}).items() if k == "membership"} \
        if ev["type"] == "m.room.member" else {}
    return out


def finish_v1(ev, server_name, sk):
    ev = copy.deepcopy(ev)
    ev["hashes"] = {"sha256": content_hash(ev)}
    ev["signatures"] = sign_json(redact_v1(ev), server_name, sk)["signatures"]
    return ev


def v1_invite(f, room, sender, target, membership="invite"):
    tag = os.urandom(6).hex()
    return finish_v1({
        "event_id": f"${tag}:{f.name}", "room_id": room, "type": "m.room.member",
        "state_key": target, "sender": sender, "origin": f.name,
        "origin_server_ts": int(time.time() * 1000), "depth": 3,
        "prev_events": [[f"$prev{tag}:{f.name}", {"sha256": "aGVsbG8"}]],
        "auth_events": [[f"$create{tag}:{f.name}", {"sha256": "aGVsbG8"}]],
        "content": {"membership": membership}}, f.name, f.sk)


def test_v1_invite(fed):
    a, f = fed["a"], fed["f"]
    hal, htok = user(a, "fedv1_hal")
    fred = f.user("fred_v1")
    room = f"!v1room{os.urandom(4).hex()}:{f.name}"
    stripped = [{"type": "m.room.name", "state_key": "", "sender": fred,
                 "content": {"name": "A room of version 1"}},
                {"type": "m.room.join_rules", "state_key": "", "sender": fred,
                 "content": {"join_rule": "invite"}}]
    r = a.request("GET", "/_matrix/client/v3/sync?timeout=0", token=htok)
    since = r.json["next_batch"]

    # Not an invite: refused with the spec's error, nothing kept.
    bad = v1_invite(f, room, fred, hal, membership="join")
    r = f.request(a, "PUT", f"/_matrix/federation/v1/invite/{q(room)}/{q(bad['event_id'])}", bad)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r.raw
    # Tampered after signing: the signature no longer holds.
    forged = v1_invite(f, room, fred, hal)
    forged["origin_server_ts"] += 1
    forged["sender"] = f.user("someone_else")
    r = f.request(a, "PUT", f"/_matrix/federation/v1/invite/{q(room)}/{q(forged['event_id'])}", forged)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw

    inv = v1_invite(f, room, fred, hal)
    body = dict(inv, unsigned={"invite_room_state": stripped})
    r = f.request(a, "PUT", f"/_matrix/federation/v1/invite/{q(room)}/{q(inv['event_id'])}", body)
    assert r.status == 200, r.raw
    assert isinstance(r.json, list) and len(r.json) == 2 and r.json[0] == 200, r.raw
    signed = r.json[1]["event"]
    assert signed["event_id"] == inv["event_id"]
    # A added its signature and left F's and the event as they were.
    assert signed["signatures"][f.name] == inv["signatures"][f.name]
    verify_signed_json(redact_v1(signed), a.server_name, a_verify_key(a))
    for k in ("content", "hashes", "prev_events", "auth_events", "origin_server_ts"):
        assert signed[k] == inv[k], k

    # hal sees the invite, with the room's stripped state.
    r = a.request("GET", f"/_matrix/client/v3/sync?timeout=0&since={since}", token=htok)
    entry = r.json["rooms"]["invite"].get(room)
    assert entry, r.json["rooms"]
    evs = entry["invite_state"]["events"]
    assert {"type": "m.room.name", "state_key": "", "sender": fred,
            "content": {"name": "A room of version 1"}} in evs
    mine = [e for e in evs if e["type"] == "m.room.member" and e["state_key"] == hal]
    assert mine and mine[0]["content"]["membership"] == "invite"
    # Only the one valid invite was kept.
    kept = a.psql(f"SELECT room_version || ' ' || event_id FROM fed_remote_memberships"
                  f" WHERE room_id = '{room}'")
    assert kept == f"1 {inv['event_id']}", kept
