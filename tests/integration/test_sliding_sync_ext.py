"""Simplified sliding sync (MSC4186) extensions as Element X uses them:
account_data (with m.push_rules, and room account data only for the rooms of
the response, all of it the first time a room is there), receipts (a room new
to the connection brings its receipts as they stand), the lists/rooms keys
that narrow an extension, typing, to_device (since/next_batch, delivered
messages gone) and e2ee."""
import itertools

import pytest

V3 = "/_matrix/client/v3"
SS = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
_txn = itertools.count()


@pytest.fixture(scope="module")
def me(server):
    uid = server.add_user("sse_user")
    return uid, server.login("sse_user", device_id="SSEDEV")


def ss(server, tok, body, pos=None):
    r = server.request("POST", SS + "?timeout=0" + (f"&pos={pos}" if pos else ""), body, token=tok)
    assert r.status == 200, r
    return r.json


def create(server, tok, name):
    r = server.request("POST", V3 + "/createRoom", {"name": name}, token=tok)
    assert r.status == 200, r
    return r.json["room_id"]


def send(server, tok, room, body):
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/sse{next(_txn)}",
                       {"msgtype": "m.text", "body": body}, token=tok)
    assert r.status == 200, r
    return r.json["event_id"]


def room_ad(server, tok, uid, room, etype, content):
    r = server.request("PUT", f"{V3}/user/{uid}/rooms/{room}/account_data/{etype}", content,
                       token=tok)
    assert r.status == 200, r


def window(ext, top=0):
    return {"conn_id": "ext", "lists": {"top": {"ranges": [[0, top]], "timeline_limit": 1,
                                                "required_state": []}},
            "extensions": ext}


def test_account_data_push_rules_and_room_data_of_the_window(server, me):
    uid, tok = me
    old = create(server, tok, "AD old")
    room_ad(server, tok, uid, old, "org.example.old", {"n": 1})
    new = create(server, tok, "AD new")
    room_ad(server, tok, uid, new, "org.example.new", {"n": 2})
    assert server.request("PUT", f"{V3}/user/{uid}/account_data/org.example.global", {"g": 1},
                          token=tok).status == 200
    body = window({"account_data": {"enabled": True}})
    first = ss(server, tok, body)
    assert list(first["rooms"]) == [new]
    ad = first["extensions"]["account_data"]
    types = {e["type"] for e in ad["global"]}
    assert {"m.push_rules", "org.example.global"} <= types
    rules = [e for e in ad["global"] if e["type"] == "m.push_rules"][0]["content"]
    assert any(r["rule_id"] == ".m.rule.master" for r in rules["global"]["override"])
    # only the room in the window has its account data
    assert set(ad["rooms"]) == {new}
    assert ad["rooms"][new] == [{"type": "org.example.new", "content": {"n": 2}}]
    # nothing changed: nothing again (push rules included)
    r2 = ss(server, tok, body, pos=first["pos"])
    assert r2["extensions"]["account_data"] == {"global": [], "rooms": {}}
    # the old room comes into the window: all its account data, though old
    send(server, tok, old, "back on top")
    r3 = ss(server, tok, body, pos=r2["pos"])
    assert list(r3["rooms"]) == [old]
    assert r3["extensions"]["account_data"]["rooms"] == {
        old: [{"type": "org.example.old", "content": {"n": 1}}]}
    # a change to a room the client has: just the change
    room_ad(server, tok, uid, old, "org.example.more", {"n": 3})
    r4 = ss(server, tok, body, pos=r3["pos"])
    assert r4["extensions"]["account_data"]["rooms"] == {
        old: [{"type": "org.example.more", "content": {"n": 3}}]}
    # lists: [] narrows the extension to no list's rooms
    room_ad(server, tok, uid, old, "org.example.hidden", {"n": 4})
    narrowed = window({"account_data": {"enabled": True, "lists": [], "rooms": []}})
    r5 = ss(server, tok, narrowed, pos=r4["pos"])
    assert r5["extensions"]["account_data"]["rooms"] == {}


def test_receipts_of_a_room_new_to_the_connection(server, me):
    uid, tok = me
    other_id = server.add_user("sse_other")
    other = server.login("sse_other")
    room = create(server, tok, "Receipts")
    assert server.request("POST", f"{V3}/rooms/{room}/invite", {"user_id": other_id},
                          token=tok).status == 200
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=other).status == 200
    eid = send(server, tok, room, "read me")
    assert server.request("POST", f"{V3}/rooms/{room}/receipt/m.read/{eid}", {},
                          token=other).status == 200
    # a connection whose window first holds another room
    filler = create(server, tok, "Filler")
    send(server, tok, filler, "on top")
    body = {**window({"receipts": {"enabled": True}, "typing": {"enabled": True}}),
            "conn_id": "rcpt"}
    # the other user starts typing before the connection starts
    assert server.request("PUT", f"{V3}/rooms/{room}/typing/{other_id}",
                          {"typing": True, "timeout": 30000}, token=other).status == 200
    first = ss(server, tok, body)
    assert list(first["rooms"]) == [filler]
    assert room not in first["extensions"]["receipts"]["rooms"]
    assert room not in first["extensions"]["typing"]["rooms"]
    # a message brings the room in: with the old receipt and who is typing
    send(server, tok, room, "on top now")
    r2 = ss(server, tok, body, pos=first["pos"])
    assert list(r2["rooms"]) == [room]
    receipt = r2["extensions"]["receipts"]["rooms"][room]
    assert receipt["type"] == "m.receipt" and other_id in receipt["content"][eid]["m.read"]
    assert r2["extensions"]["typing"]["rooms"][room]["content"]["user_ids"] == [other_id]
    # and not again
    r3 = ss(server, tok, body, pos=r2["pos"])
    assert room not in r3["extensions"]["receipts"]["rooms"]


def test_to_device_and_e2ee(server, me):
    uid, tok = me
    sender_id = server.add_user("sse_sender")
    sender = server.login("sse_sender")
    for i in range(3):
        assert server.request("PUT", f"{V3}/sendToDevice/org.example.td/sse-td{i}",
                              {"messages": {uid: {"SSEDEV": {"i": i}}}}, token=sender).status == 200
    keys = {"one_time_keys": {f"signed_curve25519:K{i}": {"key": f"k{i}"} for i in range(2)}}
    assert server.request("POST", V3 + "/keys/upload", keys, token=tok).status == 200
    body = {"conn_id": "td", "extensions": {"to_device": {"enabled": True},
                                            "e2ee": {"enabled": True}}}
    first = ss(server, tok, body)
    td = first["extensions"]["to_device"]
    assert [e["content"]["i"] for e in td["events"]] == [0, 1, 2]
    assert td["events"][0]["sender"] == sender_id
    e2ee = first["extensions"]["e2ee"]
    assert e2ee["device_one_time_keys_count"]["signed_curve25519"] == 2
    assert "device_unused_fallback_key_types" in e2ee
    # a retry without since gets them again (not yet acknowledged) ...
    again = ss(server, tok, body)
    assert len(again["extensions"]["to_device"]["events"]) == 3
    # ... acknowledging with since deletes them
    acked = {"conn_id": "td", "extensions": {"to_device": {"enabled": True,
                                                           "since": td["next_batch"]}}}
    r2 = ss(server, tok, acked, pos=again["pos"])
    assert r2["extensions"]["to_device"]["events"] == []
    assert server.psql(f"SELECT count(*) FROM device_inbox WHERE user_id = '{uid}'") == "0"


def test_to_device_limit(server):
    uid = server.add_user("sse_limit")
    tok = server.login("sse_limit", device_id="SSELIM")
    server.add_user("sse_limit_sender")
    sender = server.login("sse_limit_sender")
    for i in range(5):
        assert server.request("PUT", f"{V3}/sendToDevice/org.example.td/sse-lim{i}",
                              {"messages": {uid: {"SSELIM": {"i": i}}}}, token=sender).status == 200
    got, since, pos = [], None, None
    for _ in range(3):
        td = {"enabled": True, "limit": 2, **({"since": since} if since else {})}
        r = ss(server, tok, {"conn_id": "lim", "extensions": {"to_device": td}}, pos=pos)
        batch = [e["content"]["i"] for e in r["extensions"]["to_device"]["events"]]
        assert len(batch) <= 2
        got += batch
        since, pos = r["extensions"]["to_device"]["next_batch"], r["pos"]
    assert got == [0, 1, 2, 3, 4]


def test_encryption_connection_long_polls_for_to_device(server):
    """Element X's second connection: extensions only, long-polling; a
    to-device message wakes it at once."""
    import threading
    import time
    uid = server.add_user("sse_poll")
    tok = server.login("sse_poll", device_id="SSEPOLL")
    server.add_user("sse_poll_sender")
    sender = server.login("sse_poll_sender")
    body = {"conn_id": "encryption", "extensions": {"to_device": {"enabled": True},
                                                    "e2ee": {"enabled": True}}}
    first = ss(server, tok, body)
    since = first["extensions"]["to_device"]["next_batch"]
    got = {}

    def poll():
        t0 = time.time()
        r = server.request("POST", SS + f"?timeout=20000&pos={first['pos']}",
                           {**body, "extensions": {**body["extensions"], "to_device": {
                               "enabled": True, "since": since}}}, token=tok, timeout=40)
        got["r"], got["dt"] = r, time.time() - t0

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.5)
    assert server.request("PUT", f"{V3}/sendToDevice/m.room_key_request/sse-poll",
                          {"messages": {uid: {"SSEPOLL": {"action": "cancellation"}}}},
                          token=sender).status == 200
    th.join(30)
    assert got["r"].status == 200
    events = got["r"].json["extensions"]["to_device"]["events"]
    assert [e["type"] for e in events] == ["m.room_key_request"]
    assert got["dt"] < 5
