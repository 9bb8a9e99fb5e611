"""The deprecated v1 APIs (old_sync.yaml): the global GET /events stream,
GET /initialSync, GET /events/{eventId}, and GET /rooms/{roomId}/initialSync's
presence, receipts and departed rooms."""
import itertools
import threading
import time
import urllib.parse

import pytest

V3 = "/_matrix/client/v3"
_txn = itertools.count()


def q(s):
    return urllib.parse.quote(s, safe="")


def send(server, token, room, body):
    r = server.request("PUT", f"{V3}/rooms/{q(room)}/send/m.room.message/os{next(_txn)}",
                       {"msgtype": "m.text", "body": body}, token=token)
    assert r.status == 200, r
    return r.json["event_id"]


def events(server, token, frm=None, timeout=0, **params):
    qs = {"timeout": timeout, **params}
    if frm is not None:
        qs["from"] = frm
    r = server.request("GET", f"{V3}/events?" + urllib.parse.urlencode(qs), token=token,
                       timeout=60)
    assert r.status == 200, r
    assert set(r.json) == {"chunk", "start", "end"}, r.json
    return r.json


def now_token(server, token):
    return events(server, token)["end"]


@pytest.fixture(scope="module")
def ctx(server):
    class Ctx:
        pass
    c = Ctx()
    c.alice = server.add_user("os_alice")
    c.bob = server.add_user("os_bob")
    c.carol = server.add_user("os_carol")
    c.at, c.bt, c.ct = (server.login(n) for n in ("os_alice", "os_bob", "os_carol"))
    r = server.request("POST", V3 + "/createRoom",
                       {"preset": "public_chat", "visibility": "public", "name": "Old"},
                       token=c.at)
    assert r.status == 200, r
    c.room = r.json["room_id"]
    assert server.request("POST", f"{V3}/join/{q(c.room)}", {}, token=c.bt).status == 200
    r = server.request("POST", V3 + "/createRoom", {}, token=c.ct)
    c.carol_room = r.json["room_id"]
    c.carol_event = send(server, c.ct, c.carol_room, "carol's own")
    return c


def test_stream_without_from_answers_at_once_with_a_token(server, ctx):
    t0 = time.time()
    b = events(server, ctx.at, timeout=20000)
    assert b["chunk"] == [] and b["start"] == b["end"] and b["end"].startswith("s")
    assert time.time() - t0 < 5


def test_stream_gives_messages_after_from_with_room_id(server, ctx):
    tok = now_token(server, ctx.bt)
    e1 = send(server, ctx.at, ctx.room, "after the token")
    send(server, ctx.ct, ctx.carol_room, "not bob's room")
    b = events(server, ctx.bt, tok)
    msgs = [e for e in b["chunk"] if e["type"] == "m.room.message"]
    assert [(e["event_id"], e["room_id"], e["content"]["body"]) for e in msgs] == \
        [(e1, ctx.room, "after the token")]
    assert b["start"] == tok and b["end"] != tok
    # The end token goes on from there: nothing again.
    assert [e for e in events(server, ctx.bt, b["end"])["chunk"]
            if e["type"] == "m.room.message"] == []


def test_stream_long_poll_wakes_on_a_message(server, ctx):
    tok = now_token(server, ctx.bt)
    box = {}

    def poll():
        # The sender's presence may wake the poll first: follow end until
        # the message comes.
        frm, t0 = tok, time.time()
        while time.time() - t0 < 25:
            b = events(server, ctx.bt, frm, timeout=20000)
            box.setdefault("dt", time.time() - t0)
            if box.get("eid") in [e.get("event_id") for e in b["chunk"]]:
                box["seen"] = True
                return
            frm = b["end"]
    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.7)
    box["eid"] = send(server, ctx.at, ctx.room, "wake up")
    th.join(30)
    assert box.get("seen") and box["dt"] < 10, box


def test_stream_times_out_empty(server, ctx):
    tok = now_token(server, ctx.ct)
    t0 = time.time()
    b = events(server, ctx.ct, tok, timeout=600)
    assert time.time() - t0 >= 0.5
    assert [e for e in b["chunk"] if e["type"] == "m.room.message"] == []


def test_stream_limit_pages_through_a_backlog(server, ctx):
    tok = now_token(server, ctx.bt)
    sent = [send(server, ctx.at, ctx.room, f"many {i}") for i in range(7)]
    got, frm = [], tok
    for _ in range(10):
        b = events(server, ctx.bt, frm, limit=3)
        got += [e["event_id"] for e in b["chunk"] if e["type"] == "m.room.message"]
        if b["end"] == frm:
            break
        frm = b["end"]
    assert got == sent


def test_stream_typing_receipts_and_account_data(server, ctx):
    tok = now_token(server, ctx.bt)
    eid = send(server, ctx.at, ctx.room, "read me")
    assert server.request("PUT", f"{V3}/rooms/{q(ctx.room)}/typing/{q(ctx.alice)}",
                          {"typing": True, "timeout": 10000}, token=ctx.at).status == 200
    assert server.request("POST", f"{V3}/rooms/{q(ctx.room)}/receipt/m.read/{q(eid)}", {},
                          token=ctx.at).status == 200
    assert server.request("PUT", f"{V3}/user/{q(ctx.bob)}/rooms/{q(ctx.room)}/tags/u.old",
                          {"order": 0.25}, token=ctx.bt).status == 200
    assert server.request("PUT", f"{V3}/user/{q(ctx.bob)}/account_data/org.example.g",
                          {"cats": 1}, token=ctx.bt).status == 200
    assert server.request("PUT",
                          f"{V3}/user/{q(ctx.bob)}/rooms/{q(ctx.room)}/account_data/org.example.r",
                          {"rats": 2}, token=ctx.bt).status == 200
    chunk = events(server, ctx.bt, tok)["chunk"]
    by_type = {}
    for e in chunk:
        by_type.setdefault(e["type"], []).append(e)
    assert {"type": "m.typing", "room_id": ctx.room,
            "content": {"user_ids": [ctx.alice]}} in by_type["m.typing"]
    rec = by_type["m.receipt"][0]
    assert rec["room_id"] == ctx.room and ctx.alice in rec["content"][eid]["m.read"]
    assert {"type": "m.tag", "room_id": ctx.room,
            "content": {"tags": {"u.old": {"order": 0.25}}}} in by_type["m.tag"]
    assert {"type": "org.example.g", "content": {"cats": 1}} in by_type["org.example.g"]
    assert {"type": "org.example.r", "room_id": ctx.room,
            "content": {"rats": 2}} in by_type["org.example.r"]
    # Another user's account data is not in bob's stream.
    tok2 = now_token(server, ctx.bt)
    assert server.request("PUT", f"{V3}/user/{q(ctx.carol)}/account_data/org.example.c",
                          {}, token=ctx.ct).status == 200
    assert [e for e in events(server, ctx.bt, tok2)["chunk"]
            if e["type"] == "org.example.c"] == []


def test_stream_presence_has_user_id(server, ctx):
    tok = now_token(server, ctx.bt)
    assert server.request("PUT", f"{V3}/presence/{q(ctx.alice)}/status",
                          {"presence": "unavailable", "status_msg": "old api"},
                          token=ctx.at).status == 200
    pres = [e for e in events(server, ctx.bt, tok)["chunk"] if e["type"] == "m.presence"]
    mine = [e for e in pres if e["content"].get("user_id") == ctx.alice]
    assert mine and mine[-1]["content"]["presence"] == "unavailable"
    assert mine[-1]["content"]["status_msg"] == "old api"


def test_stream_brings_an_invite_to_a_new_room(server, ctx):
    tok = now_token(server, ctx.bt)
    r = server.request("POST", V3 + "/createRoom", {"invite": [ctx.bob]}, token=ctx.ct)
    room = r.json["room_id"]
    chunk = events(server, ctx.bt, tok)["chunk"]
    inv = [e for e in chunk if e["type"] == "m.room.member" and e["room_id"] == room]
    assert [e["content"]["membership"] for e in inv] == ["invite"]
    # ... but not the rest of that room's events, bob not being in it.
    assert {e["type"] for e in chunk if e.get("room_id") == room} == {"m.room.member"}


def test_stream_errors(server, ctx):
    for bad in ("nonsense", "s1_2", "t-x"):
        r = server.request("GET", f"{V3}/events?from={q(bad)}&timeout=0", token=ctx.at)
        assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", (bad, r)
    r = server.request("GET", f"{V3}/events?timeout=soon", token=ctx.at)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r
    assert server.request("GET", f"{V3}/events").status == 401


def test_global_initial_sync(server, ctx):
    assert server.request("PUT", f"{V3}/user/{q(ctx.alice)}/account_data/org.example.top",
                          {"x": 1}, token=ctx.at).status == 200
    assert server.request("PUT", f"{V3}/user/{q(ctx.alice)}/rooms/{q(ctx.room)}/tags/u.fav",
                          {}, token=ctx.at).status == 200
    last = send(server, ctx.bt, ctx.room, "latest")
    assert server.request("POST", f"{V3}/rooms/{q(ctx.room)}/receipt/m.read/{q(last)}", {},
                          token=ctx.bt).status == 200
    r = server.request("PUT", f"{V3}/presence/{q(ctx.bob)}/status", {"presence": "online"},
                       token=ctx.bt)
    assert r.status == 200
    r = server.request("GET", f"{V3}/initialSync?limit=2", token=ctx.at)
    assert r.status == 200, r
    b = r.json
    assert {"rooms", "presence", "account_data", "receipts", "end"} <= set(b)
    rooms = {x["room_id"]: x for x in b["rooms"]}
    assert ctx.carol_room not in rooms
    room = rooms[ctx.room]
    assert room["membership"] == "join" and room["visibility"] == "public"
    # Presence and receipts are the answer's, not each room's (Synapse).
    assert "presence" not in room and "receipts" not in room
    assert len(room["messages"]["chunk"]) == 2
    assert room["messages"]["chunk"][-1]["event_id"] == last
    assert {"m.room.create", "m.room.name", "m.room.member"} <= {e["type"] for e in room["state"]}
    assert room["account_data"][0] == {"type": "m.tag", "content": {"tags": {"u.fav": {}}}}
    assert {"type": "org.example.top", "content": {"x": 1}} in b["account_data"]
    rec = [x for x in b["receipts"] if x["room_id"] == ctx.room][0]
    assert ctx.bob in rec["content"][last]["m.read"]
    pres = {p["content"]["user_id"]: p for p in b["presence"]}
    assert pres[ctx.bob]["content"]["presence"] == "online" and pres[ctx.bob]["type"] == "m.presence"
    # messages.start pages back with /messages.
    older = server.request("GET", f"{V3}/rooms/{q(ctx.room)}/messages?dir=b&limit=1&from="
                                  f"{q(room['messages']['start'])}", token=ctx.at)
    assert older.status == 200 and len(older.json["chunk"]) == 1
    assert older.json["chunk"][0]["event_id"] != last
    # end carries on in /events.
    eid = send(server, ctx.bt, ctx.room, "after initialSync")
    assert eid in [e.get("event_id") for e in events(server, ctx.at, b["end"])["chunk"]]
    # The per-room form has presence and receipts too.
    r = server.request("GET", f"{V3}/rooms/{q(ctx.room)}/initialSync", token=ctx.at)
    assert r.status == 200 and isinstance(r.json["presence"], list), r
    assert ctx.bob in [p["content"]["user_id"] for p in r.json["presence"]]
    assert r.json["receipts"][0]["type"] == "m.receipt"


def test_global_initial_sync_invites_and_archived(server, ctx):
    dave = server.add_user("os_dave")
    dt = server.login("os_dave")
    r = server.request("POST", V3 + "/createRoom", {}, token=ctx.at)
    left = r.json["room_id"]
    assert server.request("POST", f"{V3}/rooms/{q(left)}/invite", {"user_id": dave},
                          token=ctx.at).status == 200
    assert server.request("POST", f"{V3}/join/{q(left)}", {}, token=dt).status == 200
    send(server, ctx.at, left, "before dave left")
    assert server.request("POST", f"{V3}/rooms/{q(left)}/leave", {}, token=dt).status == 200
    send(server, ctx.at, left, "after dave left")
    r = server.request("POST", V3 + "/createRoom", {"invite": [dave]}, token=ctx.at)
    invited = r.json["room_id"]

    rooms = {x["room_id"]: x for x in server.request("GET", f"{V3}/initialSync",
                                                      token=dt).json["rooms"]}
    assert left not in rooms
    inv = rooms[invited]
    assert inv["membership"] == "invite" and inv["inviter"] == ctx.alice
    assert inv["invite"]["type"] == "m.room.member" and inv["invite"]["state_key"] == dave
    assert inv["invite"]["content"]["membership"] == "invite"

    r = server.request("GET", f"{V3}/initialSync?archived=true&limit=3", token=dt)
    assert r.status == 200, r
    rooms = {x["room_id"]: x for x in r.json["rooms"]}
    gone = rooms[left]
    assert gone["membership"] == "leave"
    bodies = [e["content"].get("body") for e in gone["messages"]["chunk"]]
    assert "before dave left" in bodies and "after dave left" not in bodies
    assert gone["messages"]["chunk"][-1]["content"].get("membership") == "leave"
    # The per-room form of a departed room: the same, without presence or receipts.
    r = server.request("GET", f"{V3}/rooms/{q(left)}/initialSync?limit=2", token=dt)
    assert r.status == 200 and r.json["membership"] == "leave", r
    assert r.json["messages"]["chunk"][0]["content"]["body"] == "before dave left"
    assert r.json["presence"] == [] and r.json["receipts"] == []

    r = server.request("GET", f"{V3}/initialSync?archived=maybe", token=dt)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r
    r = server.request("GET", f"{V3}/initialSync?limit=-1", token=dt)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r


def test_get_event_by_id(server, ctx):
    eid = send(server, ctx.at, ctx.room, "by id")
    r = server.request("GET", f"{V3}/events/{q(eid)}", token=ctx.bt)
    assert r.status == 200, r
    assert r.json["event_id"] == eid and r.json["room_id"] == ctx.room
    assert r.json["content"]["body"] == "by id"
    # r0 too, as SyTest calls it.
    assert server.request("GET", f"/_matrix/client/r0/events/{q(eid)}",
                          token=ctx.bt).status == 200
    # Not bob's room: as unknown.
    r = server.request("GET", f"{V3}/events/{q(ctx.carol_event)}", token=ctx.bt)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r
    r = server.request("GET", f"{V3}/events/{q('$nope')}", token=ctx.bt)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r


def test_initial_sync_marks_the_user_online(server, ctx):
    server.add_user("os_erin")
    et = server.login("os_erin")
    b = server.request("GET", f"{V3}/initialSync", token=et).json
    mine = [p for p in b["presence"] if p["content"]["user_id"] == "@os_erin:" + server.server_name]
    assert mine and mine[0]["content"]["presence"] == "online", b["presence"]


def test_history_visibility_change_seen_on_its_boundary(server, ctx):
    r = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=ctx.at)
    room = r.json["room_id"]
    send(server, ctx.at, room, "private")
    r = server.request("PUT", f"{V3}/rooms/{q(room)}/state/m.room.history_visibility/",
                       {"history_visibility": "world_readable"}, token=ctx.at)
    assert r.status == 200, r
    hv = r.json["event_id"]
    send(server, ctx.at, room, "public")
    # carol is not in the room: she sees from the change on, the change included
    # (judged by the less restrictive of old and new, as Synapse).
    r = server.request("GET", f"{V3}/rooms/{q(room)}/initialSync", token=ctx.ct)
    assert r.status == 200, r
    chunk = r.json["messages"]["chunk"]
    assert [e["event_id"] for e in chunk][0] == hv
    assert [e["content"].get("body") for e in chunk[1:]] == ["public"]


def test_peek_stream_brings_the_rooms_typing_and_receipts(server, ctx):
    r = server.request("POST", V3 + "/createRoom", {"preset": "public_chat", "initial_state": [
        {"type": "m.room.history_visibility", "content": {"history_visibility": "world_readable"}}]},
        token=ctx.at)
    room = r.json["room_id"]
    b = events(server, ctx.ct, room_id=room)
    assert b["end"].startswith("s") and b["chunk"] == []
    eid = send(server, ctx.at, room, "peek at me")
    assert server.request("PUT", f"{V3}/rooms/{q(room)}/typing/{q(ctx.alice)}",
                          {"typing": True, "timeout": 10000}, token=ctx.at).status == 200
    assert server.request("POST", f"{V3}/rooms/{q(room)}/receipt/m.read/{q(eid)}", {},
                          token=ctx.at).status == 200
    # Typing elsewhere is not this room's.
    assert server.request("PUT", f"{V3}/rooms/{q(ctx.room)}/typing/{q(ctx.alice)}",
                          {"typing": True, "timeout": 10000}, token=ctx.at).status == 200
    got = events(server, ctx.ct, b["end"], room_id=room)
    assert got["start"] == b["end"]
    types = {(e["type"], e.get("room_id")) for e in got["chunk"]}
    assert {("m.room.message", room), ("m.typing", room), ("m.receipt", room)} <= types
    assert ("m.typing", ctx.room) not in types


def test_v1_event_format_and_offline_members(server, ctx):
    frank = server.add_user("os_frank")
    ft = server.login("os_frank")
    r = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=ctx.at)
    room = r.json["room_id"]
    assert server.request("POST", f"{V3}/join/{q(room)}", {}, token=ft).status == 200
    eid = send(server, ctx.at, room, "v1")
    # A member never seen online (no presence stored): offline, as Synapse.
    server.psql(f"DELETE FROM presence WHERE user_id = '{frank}'")
    b = server.request("GET", f"{V3}/rooms/{q(room)}/initialSync", token=ctx.at).json
    pres = {p["content"]["user_id"]: p["content"] for p in b["presence"]}
    assert pres[frank] == {"presence": "offline", "user_id": frank}
    assert pres[ctx.alice]["presence"] in ("online", "unavailable")
    # Events carry user_id (their sender) and age at the top level, as
    # Synapse's v1 format has them.
    members = [e for e in b["state"] if e["type"] == "m.room.member"]
    assert members and all(e["user_id"] == e["sender"] for e in members)
    msg = b["messages"]["chunk"][-1]
    assert msg["event_id"] == eid and msg["user_id"] == ctx.alice and isinstance(msg["age"], int)
    r = server.request("GET", f"{V3}/events/{q(eid)}", token=ft)
    assert r.json["user_id"] == ctx.alice and "age" in r.json
    tok = now_token(server, ft)
    e2 = send(server, ctx.at, room, "v1 again")
    got = [e for e in events(server, ft, tok)["chunk"] if e.get("event_id") == e2]
    assert got and got[0]["user_id"] == ctx.alice
