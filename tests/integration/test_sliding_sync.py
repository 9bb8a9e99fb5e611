"""Simplified sliding sync (MSC4186) as Element X uses it: lists sorted by
activity with ranges, required_state, timelines, subscriptions, extensions,
long-polling and the connection's memory of what it has sent."""
import threading
import time

import pytest

V3 = "/_matrix/client/v3"
SS = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"


@pytest.fixture(scope="module")
def users(server):
    out = {}
    for name in ("ss_alice", "ss_bob"):
        uid = server.add_user(name)
        out[name] = (uid, server.login(name))
    return out


def ss(server, tok, body, pos=None, timeout=0):
    q = f"?timeout={timeout}" + (f"&pos={pos}" if pos else "")
    r = server.request("POST", SS + q, body, token=tok, timeout=timeout / 1000 + 30)
    return r


BODY = {"conn_id": "main", "lists": {"all": {
    "ranges": [[0, 1]], "timeline_limit": 2,
    "required_state": [["m.room.name", ""], ["m.room.member", "$LAZY"]]}},
    "extensions": {"e2ee": {"enabled": True}, "to_device": {"enabled": True},
                   "account_data": {"enabled": True}, "typing": {"enabled": True},
                   "receipts": {"enabled": True}}}


def send(server, tok, room, body, txn):
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/{txn}",
                       {"msgtype": "m.text", "body": body}, token=tok)
    assert r.status == 200
    return r.json["event_id"]


def test_lists_windows_and_incremental(server, users):
    _, a = users["ss_alice"]
    rooms = []
    for i in range(3):
        rooms.append(server.request("POST", V3 + "/createRoom", {"name": f"SS {i}"},
                                    token=a).json["room_id"])
    send(server, a, rooms[0], "bump", "ss-bump")  # room 0 is now the most recent
    r = ss(server, a, BODY)
    assert r.status == 200, r
    body = r.json
    assert body["lists"]["all"]["count"] >= 3
    got = body["rooms"]
    assert rooms[0] in got and rooms[2] in got and rooms[1] not in got  # window [0, 1]
    room0 = got[rooms[0]]
    assert room0["initial"] is True and room0["name"] == "SS 0"
    assert [e["content"].get("body") for e in room0["timeline"]][-1] == "bump"
    assert len(room0["timeline"]) == 2 and room0["limited"] is True
    assert any(e["type"] == "m.room.name" for e in room0["required_state"])
    assert room0["joined_count"] == 1 and room0["bump_stamp"] > 0
    assert "signed_curve25519" in body["extensions"]["e2ee"]["device_one_time_keys_count"]
    pos = body["pos"]
    # nothing new: a quick empty answer
    r2 = ss(server, a, BODY, pos=pos).json
    assert r2["rooms"] == {}
    # a message: only that room, not initial, with just the new event
    eid = send(server, a, rooms[2], "new", "ss-new")
    r3 = ss(server, a, BODY, pos=r2["pos"]).json
    assert list(r3["rooms"]) == [rooms[2]]
    assert "initial" not in r3["rooms"][rooms[2]]
    assert [e["event_id"] for e in r3["rooms"][rooms[2]]["timeline"]] == [eid]
    assert r3["rooms"][rooms[2]]["num_live"] == 1


def test_long_poll_and_subscription(server, users):
    _, a = users["ss_alice"]
    b_id, b = users["ss_bob"]
    room = server.request("POST", V3 + "/createRoom", {"preset": "public_chat", "name": "Sub"},
                          token=a).json["room_id"]
    server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b)
    body = {"conn_id": "subs", "room_subscriptions": {room: {
        "required_state": [["*", "*"]], "timeline_limit": 5}}}
    first = ss(server, b, body).json
    assert first["rooms"][room]["initial"] is True
    assert {e["type"] for e in first["rooms"][room]["required_state"]} >= {
        "m.room.create", "m.room.name", "m.room.member"}
    got = {}

    def poll():
        t0 = time.time()
        got["r"] = ss(server, b, body, pos=first["pos"], timeout=20000).json
        got["dt"] = time.time() - t0

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.5)
    eid = send(server, a, room, "wake", "ss-wake")
    th.join(25)
    assert [e["event_id"] for e in got["r"]["rooms"][room]["timeline"]] == [eid]
    assert got["dt"] < 5


def test_invites_and_unknown_pos(server, users):
    _, a = users["ss_alice"]
    b_id, b = users["ss_bob"]
    room = server.request("POST", V3 + "/createRoom", {"name": "Invite", "invite": [b_id]},
                          token=a).json["room_id"]
    body = {"conn_id": "inv", "lists": {"invites": {"ranges": [[0, 20]], "timeline_limit": 1,
                                                    "filters": {"is_invite": True}}}}
    r = ss(server, b, body).json
    assert room in r["rooms"]
    types = {e["type"] for e in r["rooms"][room]["invite_state"]}
    assert {"m.room.create", "m.room.name", "m.room.member"} <= types
    bad = ss(server, b, {"conn_id": "never-seen"}, pos=r["pos"])
    assert bad.status == 400 and bad.json["errcode"] == "M_UNKNOWN_POS"
    assert ss(server, b, {}, pos="garbage").status == 400
    assert server.request("POST", SS, {}).status == 401


def test_ignored_users_messages_are_left_out(server):
    me_id = server.add_user("ss_ign_me")
    me = server.login("ss_ign_me")
    pest_id = server.add_user("ss_ign_pest")
    pest = server.login("ss_ign_pest")
    room = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"},
                          token=me).json["room_id"]
    assert server.request("POST", f"{V3}/join/{room}", {}, token=pest).status == 200
    mine = send(server, me, room, "mine", "ssig0")
    noise = send(server, pest, room, "noise", "ssig1")
    r = server.request("PUT", f"{V3}/user/{me_id}/account_data/m.ignored_user_list",
                       {"ignored_users": {pest_id: {}}}, token=me)
    assert r.status == 200, r
    body = {"conn_id": "ign", "room_subscriptions": {room: {"timeline_limit": 5,
                                                            "required_state": []}}}
    tl = ss(server, me, body).json["rooms"][room]["timeline"]
    ids = [e["event_id"] for e in tl]
    # The pest's message is gone; their join (a state event) stays (spec).
    assert mine in ids and noise not in ids, ids
    assert any(e.get("state_key") == pest_id for e in tl), tl
