"""/messages and /context: pagination both ways through stream tokens, and
history visibility on every read."""
import urllib.parse

import pytest

V3 = "/_matrix/client/v3"


@pytest.fixture(scope="module")
def users(server):
    out = {}
    for name in ("mg_alice", "mg_bob", "mg_zoe"):
        uid = server.add_user(name)
        out[name] = (uid, server.login(name))
    return out


def send(server, tok, room, body, txn):
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/{txn}",
                       {"msgtype": "m.text", "body": body}, token=tok)
    assert r.status == 200, r
    return r.json["event_id"]


def messages(server, tok, room, **q):
    r = server.request("GET", f"{V3}/rooms/{room}/messages?" + urllib.parse.urlencode(q), token=tok)
    return r


def bodies(chunk):
    return [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]


def test_paginate_back_and_forward(server, users):
    _, a = users["mg_alice"]
    room = server.request("POST", V3 + "/createRoom", {}, token=a).json["room_id"]
    for i in range(30):
        send(server, a, room, f"m{i}", f"pg{i}")
    seen, tok = [], None
    for _ in range(10):
        q = {"dir": "b", "limit": "10"}
        if tok:
            q["from"] = tok
        r = messages(server, a, room, **q)
        assert r.status == 200
        seen += bodies(r.json["chunk"])
        tok = r.json.get("end")
        if not tok:
            break
    assert seen == [f"m{i}" for i in reversed(range(30))]
    # forward from the start
    r = messages(server, a, room, dir="f", limit="1000")
    fwd = bodies(r.json["chunk"])
    assert fwd == [f"m{i}" for i in range(30)]
    assert r.json["chunk"][0]["type"] == "m.room.create"
    # a sync token works as a start point
    nb = server.request("GET", V3 + "/sync?timeout=0", token=a).json["next_batch"]
    r = messages(server, a, room, dir="b", limit="3", **{"from": nb})
    assert bodies(r.json["chunk"]) == ["m29", "m28", "m27"]


def test_context(server, users):
    _, a = users["mg_alice"]
    room = server.request("POST", V3 + "/createRoom", {}, token=a).json["room_id"]
    ids = [send(server, a, room, f"c{i}", f"cx{i}") for i in range(9)]
    r = server.request("GET", f"{V3}/rooms/{room}/context/{ids[4]}?limit=4", token=a)
    assert r.status == 200
    assert r.json["event"]["event_id"] == ids[4]
    assert bodies(r.json["events_before"]) == ["c3", "c2"]
    assert bodies(r.json["events_after"]) == ["c5", "c6"]
    r = server.request("GET", f"{V3}/rooms/{room}/context/$nope", token=a)
    assert r.status == 404


def test_context_state_and_filter(server, users):
    """/context's state is the room's state as of the last event returned
    (with the create event: Complement's RoomIDIsOnCreateEvent); its filter
    applies to the events around, and lazy_load_members keeps of the members
    only those whose events are shown."""
    a_id, a = users["mg_alice"]
    b_id, b = users["mg_bob"]
    room = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=a).json["room_id"]
    assert server.request("POST", f"{V3}/join/{room}", {}, token=b).status == 200
    ids = [send(server, a, room, f"s{i}", f"cs{i}") for i in range(3)]
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.reaction/cs-r",
                       {"m.relates_to": {"rel_type": "m.annotation", "event_id": ids[0], "key": "+"}},
                       token=b)
    assert r.status == 200
    ids.append(send(server, a, room, "s3", "cs3"))
    r = server.request("GET", f"{V3}/rooms/{room}/context/{ids[2]}?limit=10", token=a)
    assert r.status == 200, r
    kinds = {(e["type"], e["state_key"]) for e in r.json["state"]}
    assert ("m.room.create", "") in kinds and ("m.room.power_levels", "") in kinds
    assert ("m.room.member", a_id) in kinds and ("m.room.member", b_id) in kinds
    assert all(e["room_id"] == room for e in r.json["state"])
    assert "m.reaction" in {e["type"] for e in r.json["events_after"]}
    f = urllib.parse.quote('{"types": ["m.room.message"], "lazy_load_members": true}')
    r = server.request("GET", f"{V3}/rooms/{room}/context/{ids[2]}?limit=10&filter={f}", token=a)
    assert r.status == 200, r
    assert {e["type"] for e in r.json["events_before"] + r.json["events_after"]} == {"m.room.message"}
    kinds = {(e["type"], e["state_key"]) for e in r.json["state"]}
    assert ("m.room.member", a_id) in kinds and ("m.room.member", b_id) not in kinds
    assert ("m.room.create", "") in kinds
    r = server.request("GET", f"{V3}/rooms/{room}/context/{ids[2]}?filter=nope", token=a)
    assert r.status == 400 and r.json["errcode"] == "M_NOT_JSON", r


def test_messages_filter_and_lazy_members(server, users):
    """/messages applies its RoomEventFilter, and a page still holds `limit`
    events when the filter skips many; lazy_load_members brings the page's
    senders' member events in `state`."""
    a_id, a = users["mg_alice"]
    b_id, b = users["mg_bob"]
    room = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=a).json["room_id"]
    assert server.request("POST", f"{V3}/join/{room}", {}, token=b).status == 200
    for i in range(24):
        tok = b if i % 6 == 0 else a
        send(server, tok, room, f"f{i}", f"mf{i}")
    # Bob's messages only, two at a time, newest first, following `end`.
    f = '{"senders": ["%s"], "lazy_load_members": true}' % b_id
    seen, frm, sizes = [], None, []
    for _ in range(10):
        q = {"dir": "b", "limit": 2, "filter": f}
        if frm:
            q["from"] = frm
        r = messages(server, a, room, **q)
        assert r.status == 200, r
        assert all(e["sender"] == b_id for e in r.json["chunk"])
        sizes.append(len(r.json["chunk"]))
        if r.json["chunk"]:
            assert [(e["type"], e["state_key"]) for e in r.json["state"]] == [("m.room.member", b_id)]
        seen += [e["content"].get("body") for e in r.json["chunk"] if e["type"] == "m.room.message"]
        frm = r.json.get("end")
        if not frm:
            break
    assert seen == ["f18", "f12", "f6", "f0"], seen
    assert sizes[:2] == [2, 2] and sizes[-1] == 0, sizes  # full pages; an empty one ends
    # not_types, forwards.
    r = messages(server, a, room, dir="f", limit=100, filter='{"not_types": ["m.room.message"]}')
    assert r.status == 200 and r.json["chunk"]
    assert "m.room.message" not in {e["type"] for e in r.json["chunk"]}
    assert "state" not in r.json
    assert messages(server, a, room, dir="b", filter="{").json["errcode"] == "M_NOT_JSON"


def test_errors(server, users):
    _, a = users["mg_alice"]
    _, z = users["mg_zoe"]
    room = server.request("POST", V3 + "/createRoom", {}, token=a).json["room_id"]
    assert messages(server, a, room, dir="x").status == 400
    assert messages(server, a, room, dir="b", **{"from": "bogus"}).status == 400
    r = messages(server, z, room, dir="b")
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    # No dir: forwards (Synapse; Complement leaves it out). A page with
    # events has an end; the empty one after it has none.
    r = messages(server, a, room)
    assert r.status == 200 and r.json["chunk"][0]["type"] == "m.room.create" and "end" in r.json
    r = messages(server, a, room, **{"from": r.json["end"]})
    assert r.status == 200 and r.json["chunk"] == [] and "end" not in r.json
    # A forgotten room's history is closed (Complement's TestRoomForget).
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=a).status == 200
    assert server.request("POST", f"{V3}/rooms/{room}/forget", {}, token=a).status == 200
    r = messages(server, a, room)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r


@pytest.mark.parametrize("visibility,sees_before", [("joined", False), ("invited", False),
                                                     ("shared", True)])
def test_history_visibility(server, users, visibility, sees_before):
    _, a = users["mg_alice"]
    b_id, b = users["mg_bob"]
    room = server.request("POST", V3 + "/createRoom", {
        "preset": "public_chat",
        "initial_state": [{"type": "m.room.history_visibility", "content": {
            "history_visibility": visibility}}]}, token=a).json["room_id"]
    send(server, a, room, "before", f"hv-{visibility}-1")
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b).status == 200
    send(server, a, room, "after", f"hv-{visibility}-2")
    seen = bodies(messages(server, b, room, dir="b", limit="50").json["chunk"])
    assert ("before" in seen) == sees_before and "after" in seen
    tl = server.request("GET", V3 + "/sync?timeout=0", token=b).json["rooms"]["join"][room]
    assert ("before" in bodies(tl["timeline"]["events"])) == sees_before
    # after leaving, nothing new is visible
    server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=b)
    send(server, a, room, "gone", f"hv-{visibility}-3")
    seen = bodies(messages(server, b, room, dir="b", limit="50").json["chunk"])
    assert "gone" not in seen and "after" in seen


def test_world_readable_peek(server, users):
    _, a = users["mg_alice"]
    _, z = users["mg_zoe"]
    room = server.request("POST", V3 + "/createRoom", {
        "preset": "public_chat",
        "initial_state": [{"type": "m.room.history_visibility", "content": {
            "history_visibility": "world_readable"}}]}, token=a).json["room_id"]
    send(server, a, room, "public words", "wr1")
    r = messages(server, z, room, dir="b")
    assert r.status == 200 and "public words" in bodies(r.json["chunk"])
