"""Rooms through the Client-Server API: createRoom, membership, sending,
state, redaction, members — and the errors the spec names."""
import json
import os
from urllib.parse import quote

import pytest

from harness import Server

V3 = "/_matrix/client/v3"


@pytest.fixture(scope="module")
def users(server):
    out = {}
    for name in ("rm_alice", "rm_bob", "rm_carol"):
        uid = server.add_user(name)
        out[name] = (uid, server.login(name))
    return out


def create(server, token, **body):
    r = server.request("POST", V3 + "/createRoom", body, token=token)
    assert r.status == 200, r
    return r.json["room_id"]


def state(server, token, room, typ, key=""):
    return server.request("GET", f"{V3}/rooms/{room}/state/{typ}/{key}", token=token)


def test_create_room_presets_and_defaults(server, users):
    a_id, a = users["rm_alice"]
    room = create(server, a, name="Family", topic="hello", room_alias_name="rm-family")
    assert room.startswith("!") and ":" not in room  # version 12: a hash, no server part
    create_ev = state(server, a, room, "m.room.create").json
    assert create_ev["room_version"] == "12" and "creator" not in create_ev
    assert state(server, a, room, "m.room.join_rules").json == {"join_rule": "invite"}
    assert state(server, a, room, "m.room.history_visibility").json == {"history_visibility": "shared"}
    assert state(server, a, room, "m.room.guest_access").json == {"guest_access": "can_join"}
    assert state(server, a, room, "m.room.name").json == {"name": "Family"}
    assert state(server, a, room, "m.room.topic").json == {
        "topic": "hello", "m.topic": {"m.text": [{"body": "hello"}]}}
    pl = state(server, a, room, "m.room.power_levels").json
    assert a_id not in pl["users"] and pl["invite"] == 0 and pl["events"]["m.room.tombstone"] == 150
    alias = state(server, a, room, "m.room.canonical_alias").json["alias"]
    assert alias == f"#rm-family:{server.server_name}"
    pub = create(server, a, preset="public_chat", room_version="10")
    assert pub.endswith(":" + server.server_name)
    assert state(server, a, pub, "m.room.join_rules").json == {"join_rule": "public"}
    assert state(server, a, pub, "m.room.create").json["creator"] == a_id
    assert state(server, a, pub, "m.room.power_levels").json["users"] == {a_id: 100}
    assert state(server, a, pub, "m.room.guest_access").status == 404


def test_create_room_errors(server, users):
    _, a = users["rm_alice"]
    r = server.request("POST", V3 + "/createRoom", {"room_version": "99"}, token=a)
    assert r.status == 400 and r.json["errcode"] == "M_UNSUPPORTED_ROOM_VERSION"
    r = server.request("POST", V3 + "/createRoom", {"room_alias_name": "rm-family"}, token=a)
    assert r.status == 400 and r.json["errcode"] == "M_ROOM_IN_USE"
    r = server.request("POST", V3 + "/createRoom", {"preset": "secret"}, token=a)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = server.request("POST", V3 + "/createRoom", {"invite": ["not-a-user"]}, token=a)
    assert r.status == 400
    r = server.request("POST", V3 + "/createRoom", {})
    assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN"
    r = server.request("POST", V3 + "/createRoom", raw=b"{nope", token=a)
    assert r.status == 400 and r.json["errcode"] == "M_NOT_JSON"


def test_trusted_private_chat_v12_additional_creators(server, users):
    _, a = users["rm_alice"]
    b_id, _ = users["rm_bob"]
    room = create(server, a, preset="trusted_private_chat", invite=[b_id], is_direct=True)
    assert state(server, a, room, "m.room.create").json["additional_creators"] == [b_id]
    inv = state(server, a, room, "m.room.member", b_id).json
    assert inv == {"membership": "invite", "is_direct": True, "displayname": "rm_bob"}


def test_v12_content_refusals_are_400(server, users):
    """What Complement's v12 tests ask: a creator listed in the power levels'
    users (v12 auth rule 10.4) is malformed content, 400 as in Synapse; a
    second m.room.create is refused with 400 in every version."""
    a_id, a = users["rm_alice"]
    for version in ("11", "12"):
        room = create(server, a, room_version=version)
        r = server.request("PUT", f"/_matrix/client/v3/rooms/{quote(room)}/state/m.room.create/",
                           {"room_version": version, "entropy": 100}, token=a)
        assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r
    r = server.request("PUT", f"/_matrix/client/v3/rooms/{quote(room)}/state/m.room.power_levels/",
                       {"users": {a_id: 100}}, token=a)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON", r


def test_membership_lifecycle(server, users):
    a_id, a = users["rm_alice"]
    b_id, b = users["rm_bob"]
    room = create(server, a)
    r = server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    assert server.request("POST", f"{V3}/rooms/{room}/invite", {"user_id": b_id}, token=a).status == 200
    r = server.request("POST", f"{V3}/join/{room}", {}, token=b)
    assert r.status == 200 and r.json["room_id"] == room
    joined = server.request("GET", f"{V3}/rooms/{room}/joined_members", token=b).json["joined"]
    assert set(joined) == {a_id, b_id}
    assert room in server.request("GET", V3 + "/joined_rooms", token=b).json["joined_rooms"]
    # bob has power 0: he may not kick alice
    r = server.request("POST", f"{V3}/rooms/{room}/kick", {"user_id": a_id}, token=b)
    assert r.status == 403
    assert server.request("POST", f"{V3}/rooms/{room}/kick", {"user_id": b_id, "reason": "bye"},
                          token=a).status == 200
    left = state(server, a, room, "m.room.member", b_id).json
    assert left == {"membership": "leave", "reason": "bye"}
    assert server.request("POST", f"{V3}/rooms/{room}/ban", {"user_id": b_id}, token=a).status == 200
    server.request("POST", f"{V3}/rooms/{room}/invite", {"user_id": b_id}, token=a)
    assert state(server, a, room, "m.room.member", b_id).json["membership"] == "ban"
    assert server.request("POST", f"{V3}/rooms/{room}/unban", {"user_id": b_id}, token=a).status == 200
    assert state(server, a, room, "m.room.member", b_id).json["membership"] == "leave"
    r = server.request("POST", f"{V3}/rooms/{room}/invite", {}, token=a)
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM"
    # forget: only after leaving
    r = server.request("POST", f"{V3}/rooms/{room}/forget", {}, token=a)
    assert r.status == 400
    assert server.request("POST", f"{V3}/rooms/{room}/forget", {}, token=b).status == 200


def test_join_by_alias_and_unknown_rooms(server, users):
    _, a = users["rm_alice"]
    _, c = users["rm_carol"]
    room = create(server, a, preset="public_chat", room_alias_name="rm-open")
    r = server.request("POST", f"{V3}/join/%23rm-open:{server.server_name}", {}, token=c)
    assert r.status == 200 and r.json["room_id"] == room
    r = server.request("POST", f"{V3}/join/%23rm-none:{server.server_name}", {}, token=c)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    r = server.request("POST", f"{V3}/rooms/!nope:{server.server_name}/join", {}, token=c)
    assert r.status == 404


def test_send_idempotent_state_and_redact(server, users):
    a_id, a = users["rm_alice"]
    b_id, b = users["rm_bob"]
    room = create(server, a, preset="public_chat")
    server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b)
    msg = {"msgtype": "m.text", "body": "hello"}
    r1 = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/txn1", msg, token=b)
    r2 = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/txn1", msg, token=b)
    assert r1.status == 200 and r1.json == r2.json
    r3 = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/txn2", msg, token=b)
    assert r3.json["event_id"] != r1.json["event_id"]
    ev = server.request("GET", f"{V3}/rooms/{room}/event/{r1.json['event_id']}", token=a).json
    assert ev["content"] == msg and ev["sender"] == b_id and ev["room_id"] == room
    assert "auth_events" not in ev and "hashes" not in ev and ev["unsigned"]["age"] >= 0
    # state: bob may not set the name (state_default 50), alice may
    r = server.request("PUT", f"{V3}/rooms/{room}/state/m.room.name", {"name": "x"}, token=b)
    assert r.status == 403
    r = server.request("PUT", f"{V3}/rooms/{room}/state/m.room.name/", {"name": "Room"}, token=a)
    assert r.status == 200
    full = state(server, a, room, "m.room.name").json
    assert full == {"name": "Room"}
    r = server.request("GET", f"{V3}/rooms/{room}/state/m.room.name/?format=event", token=a)
    assert r.json["event_id"] and r.json["content"] == {"name": "Room"}
    assert r.json["type"] == "m.room.name" and r.json["state_key"] == "" and r.json["sender"] == a_id
    assert r.json["room_id"] == room and "origin_server_ts" in r.json
    # v1.16: format=content is the default; anything else is refused as Synapse does.
    r = server.request("GET", f"{V3}/rooms/{room}/state/m.room.name/?format=content", token=a)
    assert r.json == {"name": "Room"}
    r = server.request("GET", f"{V3}/rooms/{room}/state/m.room.name/?format=pdu", token=a)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    assert state(server, a, room, "m.room.nothing").status == 404
    all_state = server.request("GET", f"{V3}/rooms/{room}/state", token=b).json
    assert {e["type"] for e in all_state} >= {"m.room.create", "m.room.member", "m.room.name"}
    # redaction: not someone else's without power; one's own yes; power levels yes
    target = r3.json["event_id"]
    r = server.request("PUT", f"{V3}/rooms/{room}/redact/{r1.json['event_id']}/x1", {}, token=b)
    assert r.status == 200
    carol_id, c = users["rm_carol"]
    server.request("POST", f"{V3}/rooms/{room}/join", {}, token=c)
    r = server.request("PUT", f"{V3}/rooms/{room}/redact/{target}/x2", {}, token=c)
    assert r.status == 403
    r = server.request("PUT", f"{V3}/rooms/{room}/redact/{target}/x3", {"reason": "spam"}, token=a)
    assert r.status == 200
    red = server.request("GET", f"{V3}/rooms/{room}/event/{target}", token=b).json
    assert red["content"] == {} and red["unsigned"]["redacted_because"]["content"]["reason"] == "spam"
    # And the redaction's ID in unsigned.redacted_by, as Synapse gives it.
    assert red["unsigned"]["redacted_by"] == r.json["event_id"], red


def test_read_paths_need_membership(server, users):
    _, a = users["rm_alice"]
    _, c = users["rm_carol"]
    room = create(server, a)
    for path in ("state", "state/m.room.create", "members", "joined_members"):
        r = server.request("GET", f"{V3}/rooms/{room}/{path}", token=c)
        assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", path
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/t", {"body": "x"}, token=c)
    assert r.status == 403
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/t", raw=b"[]", token=a)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"


@pytest.mark.parametrize("version", ["1", "6", "9", "11"])
def test_older_room_versions_work(server, users, version):
    _, a = users["rm_alice"]
    b_id, b = users["rm_bob"]
    room = create(server, a, room_version=version, preset="public_chat")
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b).status == 200
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/v{version}",
                       {"msgtype": "m.text", "body": "old"}, token=b)
    assert r.status == 200
    if version == "1":
        assert r.json["event_id"].endswith(":" + server.server_name)
    r = server.request("PUT", f"{V3}/rooms/{room}/redact/{r.json['event_id']}/rv{version}", {},
                       token=a)
    assert r.status == 200


def test_aliases(server, users):
    a_id, a = users["rm_alice"]
    _, b = users["rm_bob"]
    room = create(server, a, preset="public_chat")
    alias = f"#rm-dir:{server.server_name}"
    enc = alias.replace("#", "%23")
    r = server.request("PUT", f"{V3}/directory/room/{enc}", {"room_id": room}, token=a)
    assert r.status == 200
    r = server.request("PUT", f"{V3}/directory/room/{enc}", {"room_id": room}, token=a)
    assert r.status == 409
    r = server.request("GET", f"{V3}/directory/room/{enc}")
    assert r.json == {"room_id": room, "servers": [server.server_name]}
    assert server.request("GET", f"{V3}/rooms/{room}/aliases", token=a).json["aliases"] == [alias]
    r = server.request("PUT", f"{V3}/directory/room/%23x:elsewhere.org", {"room_id": room}, token=a)
    assert r.status == 400
    server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b)
    r = server.request("DELETE", f"{V3}/directory/room/{enc}", token=b)
    assert r.status == 403
    assert server.request("DELETE", f"{V3}/directory/room/{enc}", token=a).status == 200
    assert server.request("GET", f"{V3}/directory/room/{enc}").status == 404


@pytest.mark.parametrize("version", ["9", "11", "12"])
def test_redaction_through_send(server, users, version):
    """v1.18 (MSC4169): PUT /send/m.room.redaction/{txnId} is a redaction in every
    room version, checked and stored as PUT /redact makes it: content.redacts
    from v11 on, moved to the top level before."""
    a_id, a = users["rm_alice"]
    b_id, b = users["rm_bob"]
    _, c = users["rm_carol"]
    room = create(server, a, room_version=version, preset="public_chat")
    for tok in (b, c):
        assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=tok).status == 200
    sent = [server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/m{version}{i}",
                           {"msgtype": "m.text", "body": str(i)}, token=b).json["event_id"]
            for i in range(3)]
    # Errors: no target, a target that is no event ID, another's event without power.
    for body in ({}, {"redacts": 5}, {"redacts": "nope"}):
        r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.redaction/bad{version}", body,
                           token=b)
        assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON", (body, r)
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.redaction/c{version}",
                       {"redacts": sent[0]}, token=c)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.redaction/n{version}",
                       {"redacts": f"$missing{version}"}, token=b)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    # With the power to redact, an event the server does not have is redacted
    # all the same, as Synapse does (the room's other servers may have it).
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.redaction/m{version}",
                       {"redacts": f"$missing{version}"}, token=a)
    assert r.status == 200, r
    r = server.request("PUT", f"{V3}/rooms/{room}/redact/$missing{version}/mr{version}", {},
                       token=a)
    assert r.status == 200, r
    # One's own, through /send, idempotent per transaction ID.
    body = {"redacts": sent[0], "reason": "typo"}
    r1 = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.redaction/s{version}", body, token=b)
    r2 = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.redaction/s{version}", body, token=b)
    assert r1.status == 200 and r1.json == r2.json
    # The same through /redact, for comparison of the stored shape.
    r3 = server.request("PUT", f"{V3}/rooms/{room}/redact/{sent[1]}/r{version}", {"reason": "typo"},
                        token=b)
    assert r3.status == 200
    # A moderator through /send redacts another's event.
    r4 = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.redaction/a{version}",
                        {"redacts": sent[2]}, token=a)
    assert r4.status == 200
    for target in sent:
        ev = server.request("GET", f"{V3}/rooms/{room}/event/{target}", token=c).json
        assert ev["content"] == {} and "redacted_because" in ev["unsigned"], ev
    stored = {}
    for name, rid in (("send", r1.json["event_id"]), ("redact", r3.json["event_id"])):
        pdu = json.loads(server.psql(
            f"SELECT convert_from(json, 'UTF8') FROM events WHERE event_id = '{rid}'"))
        stored[name] = pdu
        if version in ("11", "12"):
            assert pdu["content"] == {"redacts": sent[0 if name == "send" else 1], "reason": "typo"}
            assert "redacts" not in pdu
        else:
            assert pdu["content"] == {"reason": "typo"}
            assert pdu["redacts"] == sent[0 if name == "send" else 1]
    assert set(stored["send"]) == set(stored["redact"])
    assert server.request("GET", f"{V3}/rooms/{room}/event/{r1.json['event_id']}",
                          token=a).json["sender"] == b_id


@pytest.fixture(scope="module")
def forgetful_server():
    with Server(extra_yaml="forget_rooms_on_leave: true\n") as s:
        s.start()
        yield s


def test_forget_forced_upon_leave_capability(server, users):
    _, a = users["rm_alice"]
    caps = server.request("GET", f"{V3}/capabilities", token=a).json["capabilities"]
    assert caps["m.forget_forced_upon_leave"] == {"enabled": False}


def test_forget_rooms_on_leave(forgetful_server, server, users):
    s = forgetful_server
    toks = {}
    for name in ("fl_alice", "fl_bob", "fl_carol"):
        uid = s.add_user(name)
        toks[name] = (uid, s.login(name))
    (a_id, a), (b_id, b), (c_id, c) = toks["fl_alice"], toks["fl_bob"], toks["fl_carol"]
    caps = s.request("GET", f"{V3}/capabilities", token=b).json["capabilities"]
    assert caps["m.forget_forced_upon_leave"] == {"enabled": True}
    left, kicked, banned = (create(s, a, preset="public_chat") for _ in range(3))
    for room in (left, kicked, banned):
        for tok in (b, c):
            assert s.request("POST", f"{V3}/rooms/{room}/join", {}, token=tok).status == 200
    since = s.request("GET", f"{V3}/sync", token=b).json["next_batch"]
    assert s.request("POST", f"{V3}/rooms/{left}/leave", {}, token=b).status == 200
    assert s.request("POST", f"{V3}/rooms/{kicked}/kick", {"user_id": b_id}, token=a).status == 200
    assert s.request("POST", f"{V3}/rooms/{banned}/ban", {"user_id": b_id}, token=a).status == 200
    # The sync that follows still tells bob's client he left (or was removed).
    inc = s.request("GET", f"{V3}/sync?since={since}&timeout=0", token=b).json
    assert set(inc["rooms"]["leave"]) == {left, kicked, banned}
    assert s.request("GET", f"{V3}/sync?since={inc['next_batch']}&timeout=0",
                     token=b).json.get("rooms", {}).get("leave", {}) == {}
    flt = json.dumps({"room": {"include_leave": True}})
    sync = s.request("GET", f"{V3}/sync?filter={quote(flt)}", token=b).json
    assert not set(sync["rooms"].get("leave", {})) & {left, kicked, banned}
    # Without the key (the shared server), a left room stays until /forget.
    _, sa = users["rm_alice"]
    _, sb = users["rm_bob"]
    room = create(server, sa, preset="public_chat")
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=sb).status == 200
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=sb).status == 200
    sync = server.request("GET", f"{V3}/sync?filter={quote(flt)}", token=sb).json
    assert room in sync["rooms"]["leave"]
    # /forget hides it; coming back and leaving again shows it again (a
    # forget is of that membership, as in Synapse).
    assert server.request("POST", f"{V3}/rooms/{room}/forget", {}, token=sb).status == 200
    sync = server.request("GET", f"{V3}/sync?filter={quote(flt)}", token=sb).json
    assert room not in sync["rooms"].get("leave", {})
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=sb).status == 200
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=sb).status == 200
    sync = server.request("GET", f"{V3}/sync?filter={quote(flt)}", token=sb).json
    assert room in sync["rooms"]["leave"]
    # Carol, who stayed, still has the rooms.
    sync = s.request("GET", f"{V3}/sync", token=c).json
    assert {left, kicked, banned} <= set(sync["rooms"]["join"])


def test_replaces_state_and_prev_content(server, users):
    """v1.19: a state event's unsigned.replaces_state names the state event it
    replaced, and unsigned.prev_content and prev_sender (Synapse gives them)
    that one's content and sender, on every path that serves events."""
    a_id, a = users["rm_alice"]
    b_id, b = users["rm_bob"]
    room = create(server, a, preset="public_chat", room_version="11")
    first = server.request("PUT", f"{V3}/rooms/{room}/state/m.room.name/", {"name": "One"},
                           token=a).json["event_id"]
    second = server.request("PUT", f"{V3}/rooms/{room}/state/m.room.name/", {"name": "Two"},
                            token=a).json["event_id"]
    ev1 = server.request("GET", f"{V3}/rooms/{room}/event/{first}", token=a).json
    assert "replaces_state" not in ev1["unsigned"] and "prev_content" not in ev1["unsigned"]
    ev2 = server.request("GET", f"{V3}/rooms/{room}/event/{second}", token=a).json
    assert ev2["unsigned"]["replaces_state"] == first
    assert ev2["unsigned"]["prev_content"] == {"name": "One"}
    assert ev2["unsigned"]["prev_sender"] == a_id
    assert "prev_sender" not in ev1["unsigned"]
    # /state/{type}/{key}?format=event and /state
    r = server.request("GET", f"{V3}/rooms/{room}/state/m.room.name/?format=event", token=a).json
    assert r["event_id"] == second and r["unsigned"]["replaces_state"] == first
    full = server.request("GET", f"{V3}/rooms/{room}/state", token=a).json
    name_ev = next(e for e in full if e["type"] == "m.room.name")
    assert name_ev["unsigned"]["replaces_state"] == first
    # Memberships: bob's join replaces nothing, his leave his join.
    join = server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b).json
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=b).status == 200
    msgs = server.request("GET", f"{V3}/rooms/{room}/messages?dir=b&limit=20", token=a).json
    mine = [e for e in msgs["chunk"] if e["type"] == "m.room.member" and e["state_key"] == b_id]
    leave, joined = mine[0], mine[1]
    assert joined["content"]["membership"] == "join" and "replaces_state" not in joined["unsigned"]
    assert leave["unsigned"]["replaces_state"] == joined["event_id"]
    assert leave["unsigned"]["prev_content"]["membership"] == "join"
    assert leave["unsigned"]["prev_sender"] == b_id and "prev_sender" not in joined["unsigned"]
    # A message is no state event: neither field.
    msg = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/rs1",
                         {"msgtype": "m.text", "body": "hi"}, token=a).json["event_id"]
    r = server.request("GET", f"{V3}/rooms/{room}/event/{msg}", token=a).json
    assert "replaces_state" not in r["unsigned"] and "prev_content" not in r["unsigned"]
    assert "prev_sender" not in r["unsigned"]
    # /sync's timeline carries them too.
    sync = server.request("GET", f"{V3}/sync", token=a).json
    tl = sync["rooms"]["join"][room]["timeline"]["events"]
    by_id = {e["event_id"]: e for e in tl}
    assert by_id[leave["event_id"]]["unsigned"]["replaces_state"] == joined["event_id"]
    assert by_id[leave["event_id"]]["unsigned"]["prev_sender"] == b_id
    # A redacted predecessor gives its redacted content.
    assert server.request("PUT", f"{V3}/rooms/{room}/redact/{first}/rs2", {}, token=a).status == 200
    ev2 = server.request("GET", f"{V3}/rooms/{room}/event/{second}", token=a).json
    assert ev2["unsigned"]["replaces_state"] == first and ev2["unsigned"]["prev_content"] == {}
    assert ev2["unsigned"]["prev_sender"] == a_id  # redaction keeps the sender
    assert join["room_id"] == room


def test_join_after_invite_has_prev_sender(server, users):
    """Complement's "Invited user has 'is_direct' flag in prev_content after
    joining": the join's unsigned carries the invite's content and its sender
    (the inviter, not the joiner) in /sync."""
    a_id, a = users["rm_alice"]
    b_id, b = users["rm_bob"]
    room = create(server, a, preset="private_chat", invite=[b_id], is_direct=True)
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b).status == 200
    sync = server.request("GET", f"{V3}/sync", token=b).json
    joined = sync["rooms"]["join"][room]
    evs = joined["timeline"]["events"] + joined.get("state", {}).get("events", [])
    me = next(e for e in evs if e["type"] == "m.room.member" and e["state_key"] == b_id
              and e["content"]["membership"] == "join")
    assert me["unsigned"]["prev_content"]["membership"] == "invite"
    assert me["unsigned"]["prev_content"]["is_direct"] is True
    assert me["unsigned"]["prev_sender"] == a_id


def test_repeated_state_is_not_sent_again(server, users):
    """As Synapse (deduplicate_state_event), and as Complement's
    get_missing_events test for a "shared" room expects: a state event with
    the same type, key, sender and content as the current one is not sent;
    the answer is the current event's ID. Another sender, other content, or
    a sender no longer allowed make the usual difference."""
    a_id, a = users["rm_alice"]
    b_id, b = users["rm_bob"]
    room = create(server, a, preset="public_chat")
    path = f"{V3}/rooms/{room}/state/m.room.history_visibility/"
    hv = state(server, a, room, "m.room.history_visibility").json
    assert hv == {"history_visibility": "shared"}
    before = server.request("GET", f"{V3}/rooms/{room}/state/m.room.history_visibility/?format=event",
                            token=a).json["event_id"]
    r = server.request("PUT", path, {"history_visibility": "shared"}, token=a)
    assert r.status == 200 and r.json["event_id"] == before, r
    msgs = server.request("GET", f"{V3}/rooms/{room}/messages?dir=b&limit=50", token=a).json
    assert sum(e["type"] == "m.room.history_visibility" for e in msgs["chunk"]) == 1
    r = server.request("PUT", path, {"history_visibility": "joined"}, token=a)
    assert r.status == 200 and r.json["event_id"] != before
    joined = r.json["event_id"]
    # The same content from someone else (bob, given the power) is sent.
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b).status == 200
    pl = state(server, a, room, "m.room.power_levels").json
    pl["users"][b_id] = 100
    assert server.request("PUT", f"{V3}/rooms/{room}/state/m.room.power_levels/", pl,
                          token=a).status == 200
    r = server.request("PUT", path, {"history_visibility": "joined"}, token=b)
    assert r.status == 200 and r.json["event_id"] != joined
    by_bob = r.json["event_id"]
    # bob repeats it after leaving: refused, not answered with his old event.
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=b).status == 200
    r = server.request("PUT", path, {"history_visibility": "joined"}, token=b)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
    r = server.request("GET", f"{V3}/rooms/{room}/state/m.room.history_visibility/?format=event",
                       token=a)
    assert r.json["event_id"] == by_bob


def test_replaces_state_migration_backfill_agrees(server, users):
    """Migration 023 fills replaces_state for events stored before it from
    the timeline; on a linear room it gives what storing computes."""
    _, a = users["rm_alice"]
    _, b = users["rm_bob"]
    room = create(server, a, preset="public_chat", room_version="10")
    for i, tok in enumerate((a, a)):
        server.request("PUT", f"{V3}/rooms/{room}/state/m.room.topic/", {"topic": str(i)}, token=tok)
    server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b)
    server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=b)
    before = server.psql(f"SELECT event_id, replaces_state FROM events WHERE room_id = '{room}'"
                         " AND state_key IS NOT NULL ORDER BY event_id")
    assert before.count("|$") == 2  # the second topic, the leave
    sql = open(os.path.join(os.path.dirname(__file__), "..", "..", "sql",
                            "023_events_replaces_state.sql")).read()
    update = sql[sql.index("UPDATE events e"):]
    server.psql(f"UPDATE events SET replaces_state = NULL WHERE room_id = '{room}'")
    server.psql(update.replace("WHERE e.event_id = p.event_id",
                               f"WHERE e.room_id = '{room}' AND e.event_id = p.event_id"))
    after = server.psql(f"SELECT event_id, replaces_state FROM events WHERE room_id = '{room}'"
                        " AND state_key IS NOT NULL ORDER BY event_id")
    assert after == before


def test_default_room_version_setting():
    """default_room_version (Synapse's key) decides the version of rooms made
    without one, and /capabilities says so."""
    with Server(extra_yaml='default_room_version: "11"\n') as s:
        s.start()
        s.add_user("dv_alice")
        tok = s.login("dv_alice")
        caps = s.request("GET", f"{V3}/capabilities", token=tok).json["capabilities"]
        assert caps["m.room_versions"]["default"] == "11"
        room = create(s, tok)
        assert state(s, tok, room, "m.room.create").json["room_version"] == "11"
        assert create(s, tok, room_version="12").startswith("!")
