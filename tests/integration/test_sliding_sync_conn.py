"""Simplified sliding sync (MSC4186): what a connection remembers between
requests, as Element X relies on it (Synapse keeps the same per connection):
$LAZY members sent once and when needed, a widened required_state or a larger
timeline_limit sending the room again, changes made while a room was out of
the window, a retry on the previous pos; and the room list itself: bump_stamp
moved only by the events Synapse counts, kicks and bans listed until
forgotten, filters, heroes only for unnamed rooms, subscriptions that leak
nothing; tags and not_tags filters."""
import itertools

import pytest

V3 = "/_matrix/client/v3"
SS = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
_txn = itertools.count()


@pytest.fixture(scope="module")
def users(server):
    out = {}
    for name in ("ssc_alice", "ssc_bob", "ssc_carol"):
        uid = server.add_user(name)
        out[name] = (uid, server.login(name))
    return out


def ss(server, tok, body, pos=None, status=200):
    r = server.request("POST", SS + "?timeout=0" + (f"&pos={pos}" if pos else ""), body, token=tok)
    assert r.status == status, r
    return r.json


def send(server, tok, room, body, etype="m.room.message"):
    content = {"msgtype": "m.text", "body": body} if etype == "m.room.message" else body
    r = server.request("PUT", f"{V3}/rooms/{room}/send/{etype}/ssc{next(_txn)}", content,
                       token=tok)
    assert r.status == 200, r
    return r.json["event_id"]


def state(server, tok, room, etype, content, key=""):
    r = server.request("PUT", f"{V3}/rooms/{room}/state/{etype}/{key}", content, token=tok)
    assert r.status == 200, r
    return r.json["event_id"]


def create(server, tok, **body):
    r = server.request("POST", V3 + "/createRoom", body, token=tok)
    assert r.status == 200, r
    return r.json["room_id"]


def join(server, tok, room):
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=tok).status == 200


def members_in(room_obj):
    return {e["state_key"] for e in room_obj.get("required_state", [])
            if e["type"] == "m.room.member"}


def sub(room, required_state, limit):
    return {"room_subscriptions": {room: {"required_state": required_state,
                                          "timeline_limit": limit}}}


def test_lazy_members_sent_once_when_they_speak(server, users):
    a_id, a = users["ssc_alice"]
    b_id, b = users["ssc_bob"]
    c_id, c = users["ssc_carol"]
    room = create(server, a, preset="public_chat", name="Lazy")
    join(server, b, room)
    join(server, c, room)
    send(server, a, room, "from alice")
    body = {"conn_id": "lazy", **sub(room, [["m.room.member", "$LAZY"]], 1)}
    first = ss(server, a, body)
    got = first["rooms"][room]
    assert got["initial"] is True
    assert members_in(got) == {a_id}  # only the timeline's sender (and the requester)
    # Bob, whose membership is old, speaks: his member event comes with it
    send(server, b, room, "from bob")
    r2 = ss(server, a, body, pos=first["pos"])
    assert members_in(r2["rooms"][room]) == {b_id}
    assert "initial" not in r2["rooms"][room]
    # he speaks again: the client has his member event, none is sent
    send(server, b, room, "bob again")
    r3 = ss(server, a, body, pos=r2["pos"])
    assert "required_state" not in r3["rooms"][room]
    # his member event changes: sent again, though he is not in the timeline
    state(server, b, room, "m.room.member", {"membership": "join", "displayname": "Bobby"},
          key=b_id)
    send(server, c, room, "from carol")
    r4 = ss(server, a, {**body, "room_subscriptions": {room: {
        "required_state": [["m.room.member", "$LAZY"]], "timeline_limit": 1}}}, pos=r3["pos"])
    got = r4["rooms"][room]
    assert [e["sender"] for e in got["timeline"]] == [c_id]
    assert members_in(got) == {b_id, c_id}
    bob = [e for e in got["required_state"] if e["state_key"] == b_id][0]
    assert bob["content"]["displayname"] == "Bobby"


def test_widened_required_state_sends_the_state_again(server, users):
    _, a = users["ssc_alice"]
    room = create(server, a, name="Widen", topic="the topic")
    narrow = {"conn_id": "widen", **sub(room, [["m.room.name", ""]], 1)}
    first = ss(server, a, narrow)
    assert {e["type"] for e in first["rooms"][room]["required_state"]} == {"m.room.name"}
    r2 = ss(server, a, narrow, pos=first["pos"])
    assert room not in r2["rooms"]
    wide = {"conn_id": "widen", **sub(room, [["m.room.name", ""], ["m.room.topic", ""]], 1)}
    r3 = ss(server, a, wide, pos=r2["pos"])
    got = r3["rooms"][room]
    assert "initial" not in got
    assert "m.room.topic" in {e["type"] for e in got["required_state"]}
    assert "timeline" not in got  # nothing new happened: state only
    r4 = ss(server, a, wide, pos=r3["pos"])
    assert room not in r4["rooms"]


def test_larger_timeline_limit_expands_the_timeline(server, users):
    _, a = users["ssc_alice"]
    room = create(server, a, name="Expand")
    ids = [send(server, a, room, f"m{i}") for i in range(4)]
    first = ss(server, a, {"conn_id": "expand", **sub(room, [], 1)})
    assert [e["event_id"] for e in first["rooms"][room]["timeline"]] == ids[-1:]
    r2 = ss(server, a, {"conn_id": "expand", **sub(room, [], 3)}, pos=first["pos"])
    got = r2["rooms"][room]
    assert got["unstable_expanded_timeline"] is True and "initial" not in got
    assert [e["event_id"] for e in got["timeline"]] == ids[-3:]
    assert got["limited"] is True and got["num_live"] == 0
    r3 = ss(server, a, {"conn_id": "expand", **sub(room, [], 3)}, pos=r2["pos"])
    assert room not in r3["rooms"]


def test_changes_while_out_of_the_window_are_not_lost(server, users):
    _, a = users["ssc_alice"]
    # a user of their own, so that the window [0, 0] holds exactly these rooms
    uid = server.add_user("ssc_window")
    tok = server.login("ssc_window")
    room_b = create(server, tok, name="B")
    room_a = create(server, tok, name="A")
    send(server, tok, room_b, "b first")
    body = {"conn_id": "window", "lists": {"top": {
        "ranges": [[0, 0]], "timeline_limit": 5, "required_state": [["m.room.name", ""]]}}}
    r1 = ss(server, tok, body)
    assert list(r1["rooms"]) == [room_b]
    assert r1["lists"]["top"]["count"] == 2
    assert r1["lists"]["top"]["ops"] == [{"op": "SYNC", "range": [0, 0], "room_ids": [room_b]}]
    send(server, tok, room_a, "a now on top")
    r2 = ss(server, tok, body, pos=r1["pos"])
    assert list(r2["rooms"]) == [room_a]
    # B, out of the window, is renamed (a rename does not bump it)
    rename = state(server, tok, room_b, "m.room.name", {"name": "B renamed"})
    r3 = ss(server, tok, body, pos=r2["pos"])
    assert r3["rooms"] == {}
    # a message brings B back: with the rename it missed
    msg = send(server, tok, room_b, "b back")
    r4 = ss(server, tok, body, pos=r3["pos"])
    got = r4["rooms"][room_b]
    assert "initial" not in got
    assert [e["event_id"] for e in got["timeline"]] == [rename, msg]
    assert got["num_live"] == 1  # only the message came after the request's pos
    assert got["name"] == "B renamed"
    assert [e["content"]["name"] for e in got["required_state"]] == ["B renamed"]
    assert uid


def test_retry_on_the_previous_pos(server, users):
    _, a = users["ssc_alice"]
    room = create(server, a, name="Retry")
    body = {"conn_id": "retry", **sub(room, [], 5)}
    p1 = ss(server, a, body)["pos"]
    m1 = send(server, a, room, "one")
    r2 = ss(server, a, body, pos=p1)
    assert [e["event_id"] for e in r2["rooms"][room]["timeline"]] == [m1]
    # the response was lost: the same request again gets the same message
    again = ss(server, a, body, pos=p1)
    assert [e["event_id"] for e in again["rooms"][room]["timeline"]] == [m1]
    assert "initial" not in again["rooms"][room]
    m2 = send(server, a, room, "two")
    r3 = ss(server, a, body, pos=again["pos"])
    assert [e["event_id"] for e in r3["rooms"][room]["timeline"]] == [m2]
    # p1 is now two positions back: unknown
    bad = server.request("POST", SS + f"?pos={p1}", body, token=a)
    assert bad.status == 400 and bad.json["errcode"] == "M_UNKNOWN_POS"
    # a new connection without pos starts over, with the room initial again
    fresh = ss(server, a, body)
    assert fresh["rooms"][room]["initial"] is True


def test_bump_stamp_moves_only_for_messages(server, users):
    _, a = users["ssc_alice"]
    room = create(server, a, name="Bump")
    msg = send(server, a, room, "bumps")
    body = {"conn_id": "bump", **sub(room, [], 1)}
    first = ss(server, a, body)
    stamp = first["rooms"][room]["bump_stamp"]
    send(server, a, room, {"m.relates_to": {"rel_type": "m.annotation", "event_id": msg,
                                            "key": "+1"}}, etype="m.reaction")
    state(server, a, room, "m.room.topic", {"topic": "not a bump"})
    r2 = ss(server, a, body, pos=first["pos"])
    assert r2["rooms"][room]["bump_stamp"] == stamp
    send(server, a, room, "bumps again")
    r3 = ss(server, a, body, pos=r2["pos"])
    assert r3["rooms"][room]["bump_stamp"] > stamp


def test_kicked_and_banned_listed_until_forgotten(server, users):
    a_id, a = users["ssc_alice"]
    uid = server.add_user("ssc_kicked")
    tok = server.login("ssc_kicked")
    kicked = create(server, a, preset="public_chat", name="Kicked from")
    banned = create(server, a, preset="public_chat", name="Banned from")
    left = create(server, a, preset="public_chat", name="Left")
    for room in (kicked, banned, left):
        join(server, tok, room)
    body = {"conn_id": "kick", "lists": {"all": {"ranges": [[0, 9]], "timeline_limit": 1,
                                                 "required_state": [["m.room.member", "$ME"]]}}}
    first = ss(server, tok, body)
    assert set(first["rooms"]) == {kicked, banned, left}
    assert server.request("POST", f"{V3}/rooms/{kicked}/kick", {"user_id": uid},
                          token=a).status == 200
    assert server.request("POST", f"{V3}/rooms/{banned}/ban", {"user_id": uid},
                          token=a).status == 200
    assert server.request("POST", f"{V3}/rooms/{left}/leave", {}, token=tok).status == 200
    # the next response has the three, each with its final membership
    r2 = ss(server, tok, body, pos=first["pos"])
    final = {rid: r2["rooms"][rid]["timeline"][-1]["content"]["membership"] for rid in r2["rooms"]}
    assert final == {kicked: "leave", banned: "ban", left: "leave"}
    # a new connection: kicks and bans stay, one's own leave is gone
    again = ss(server, tok, {**body, "conn_id": "kick2"})
    assert set(again["rooms"]) == {kicked, banned}
    assert again["lists"]["all"]["count"] == 2
    assert again["rooms"][banned]["timeline"][-1]["sender"] == a_id
    assert server.request("POST", f"{V3}/rooms/{kicked}/forget", {}, token=tok).status == 200
    after = ss(server, tok, {**body, "conn_id": "kick3"})
    assert set(after["rooms"]) == {banned}


def test_filters_and_heroes(server, users):
    a_id, a = users["ssc_alice"]
    b_id, b = users["ssc_bob"]
    uid = server.add_user("ssc_filters")
    tok = server.login("ssc_filters")
    dm = create(server, a, invite=[uid], is_direct=True, preset="trusted_private_chat")
    join(server, tok, dm)
    assert server.request("PUT", f"{V3}/user/{uid}/account_data/m.direct", {a_id: [dm]},
                          token=tok).status == 200
    enc = create(server, tok, name="Encrypted", initial_state=[{
        "type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    space = create(server, tok, name="Space", creation_content={"type": "m.space"})
    invited = create(server, b, name="Invite to filters", invite=[uid])

    def room_ids(filters):
        r = ss(server, tok, {"lists": {"l": {"ranges": [[0, 20]], "timeline_limit": 0,
                                             "filters": filters}}})
        assert r["lists"]["l"]["count"] == len(r["rooms"])
        return set(r["rooms"])

    assert room_ids({"is_dm": True}) == {dm}
    assert room_ids({"is_dm": False}) == {enc, space, invited}
    assert room_ids({"is_encrypted": True}) == {enc}
    assert room_ids({"is_invite": True}) == {invited}
    assert room_ids({"room_types": ["m.space"]}) == {space}
    assert room_ids({"not_room_types": ["m.space"]}) == {dm, enc, invited}
    assert room_ids({"room_types": [None]}) == {dm, enc, invited}
    for room, tag in ((enc, "m.favourite"), (space, "u.work")):
        assert server.request("PUT", f"{V3}/user/{uid}/rooms/{room}/tags/{tag}", {"order": 0.5},
                              token=tok).status == 200
    assert room_ids({"tags": ["m.favourite", "u.work"]}) == {enc, space}
    assert room_ids({"not_tags": ["m.favourite"]}) == {dm, space, invited}
    assert room_ids({"tags": ["u.work"], "not_room_types": ["m.space"]}) == set()
    every = ss(server, tok, {"lists": {"l": {"ranges": [[0, 20]], "timeline_limit": 0}}})["rooms"]
    # the DM has no name: heroes (the other member) name it; named rooms have none
    assert every[dm]["is_dm"] is True and "name" not in every[dm]
    assert [h["user_id"] for h in every[dm]["heroes"]] == [a_id]
    assert every[enc]["name"] == "Encrypted" and "heroes" not in every[enc]
    assert "is_dm" not in every[enc]


def test_subscription_to_a_room_one_cannot_see(server, users):
    _, a = users["ssc_alice"]
    _, c = users["ssc_carol"]
    secret = create(server, a, name="Secret")
    send(server, a, secret, "private words")
    r = ss(server, c, {"conn_id": "peek", **sub(secret, [["*", "*"]], 10)})
    assert r["rooms"] == {}
    bogus = ss(server, c, {"conn_id": "peek2", **sub("!nope:localhost", [["*", "*"]], 10)})
    assert bogus["rooms"] == {}


def test_connection_survives_a_restart():
    """The records are in PostgreSQL: after a restart the client goes on
    from its pos (no M_UNKNOWN_POS, no initial rooms again), and only the
    latest two positions of a connection are kept."""
    from harness import Server
    with Server() as srv:
        srv.start()
        srv.add_user("ssc_restart")
        tok = srv.login("ssc_restart")
        rooms = [create(srv, tok, name=f"R{i}") for i in range(3)]
        body = {"conn_id": "restart", "lists": {"all": {
            "ranges": [[0, 9]], "timeline_limit": 1,
            "required_state": [["m.room.name", ""], ["m.room.member", "$LAZY"]]}}}
        first = ss(srv, tok, body)
        assert set(first["rooms"]) == set(rooms)
        # the three rooms share one stored required_state
        stored = srv.psql("SELECT jsonb_array_length(rooms->'rs') FROM sliding_sync_connections"
                          " WHERE conn_id = 'restart'")
        assert stored == "1"
        assert srv.stop() == 0
        srv.start()
        msg = send(srv, tok, rooms[0], "after the restart")
        r2 = ss(srv, tok, body, pos=first["pos"])
        assert list(r2["rooms"]) == [rooms[0]]
        assert "initial" not in r2["rooms"][rooms[0]]
        assert [e["event_id"] for e in r2["rooms"][rooms[0]]["timeline"]] == [msg]
        send(srv, tok, rooms[1], "again")
        r3 = ss(srv, tok, body, pos=r2["pos"])
        assert srv.psql("SELECT count(*) FROM sliding_sync_connections WHERE conn_id = 'restart'") == "2"
        assert list(r3["rooms"]) == [rooms[1]]
        bad = srv.request("POST", SS + f"?pos={first['pos']}", body, token=tok)
        assert bad.status == 400 and bad.json["errcode"] == "M_UNKNOWN_POS"
        assert srv.stop() == 0
        log = srv.read_log()
        assert "ERROR: AddressSanitizer" not in log and "runtime error:" not in log, log


def test_a_deleted_devices_connections_go(server):
    server.add_user("ssc_devices")
    old = server.login("ssc_devices", device_id="SSCOLD")
    new = server.login("ssc_devices", device_id="SSCNEW")
    ss(server, old, {"conn_id": "dev"})
    count = "SELECT count(*) FROM sliding_sync_connections WHERE user_id LIKE '@ssc_devices:%'"
    assert server.psql(count) == "1"
    r = server.request("POST", V3 + "/delete_devices", {"devices": ["SSCOLD"], "auth": {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "ssc_devices"},
        "password": "correct horse"}}, token=new)
    assert r.status == 200, r
    ss(server, new, {"conn_id": "dev"})
    assert server.psql(count) == "1"  # the new device's, the old one's gone
    assert server.psql(count + " AND device_id = 'SSCOLD'") == "0"


def test_subscription_to_a_room_one_left(server, users):
    """As Synapse: a subscription reaches a room the user left long ago (up
    to their leave, nothing after), without putting it back in the lists."""
    _, a = users["ssc_alice"]
    uid = server.add_user("ssc_leaver")
    tok = server.login("ssc_leaver")
    room = create(server, a, preset="public_chat", name="Left long ago")
    join(server, tok, room)
    before = send(server, a, room, "while there")
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=tok).status == 200
    send(server, a, room, "after the leave")
    body = {"conn_id": "left", "lists": {"all": {"ranges": [[0, 9]], "timeline_limit": 0}},
            **sub(room, [["m.room.name", ""], ["m.room.member", "$ME"]], 5)}
    r = ss(server, tok, body)
    assert r["lists"]["all"]["count"] == 0
    got = r["rooms"][room]
    bodies = [e["content"].get("body") for e in got["timeline"]]
    assert "while there" in bodies and "after the leave" not in bodies
    assert got["timeline"][-1]["content"]["membership"] == "leave"
    me = [e for e in got["required_state"] if e["type"] == "m.room.member"][0]
    assert me["state_key"] == uid and me["content"]["membership"] == "leave"
    assert before
    # forgotten: nothing
    assert server.request("POST", f"{V3}/rooms/{room}/forget", {}, token=tok).status == 200
    assert ss(server, tok, {**body, "conn_id": "left2"})["rooms"] == {}


def test_each_response_has_its_own_pos(server, users):
    """Even when no stream moved, so that a retry after a lost response that
    widened required_state gets that state again."""
    _, a = users["ssc_alice"]
    room = create(server, a, name="Own pos", topic="t")
    narrow = {"conn_id": "ownpos", **sub(room, [["m.room.name", ""]], 1)}
    wide = {"conn_id": "ownpos", **sub(room, [["m.room.name", ""], ["m.room.topic", ""]], 1)}
    p1 = ss(server, a, narrow)["pos"]
    lost = ss(server, a, wide, pos=p1)
    assert lost["pos"] != p1
    assert "m.room.topic" in {e["type"] for e in lost["rooms"][room]["required_state"]}
    retry = ss(server, a, wide, pos=p1)
    assert "m.room.topic" in {e["type"] for e in retry["rooms"][room]["required_state"]}
    quiet = ss(server, a, wide, pos=retry["pos"])
    assert quiet["rooms"] == {} and quiet["pos"] != retry["pos"]
    assert server.request("POST", SS + "?pos=x/s1", {}, token=a).status == 400


def test_bad_bodies_and_old_positions(server, users):
    _, a = users["ssc_alice"]
    for body in ({"lists": {"l": {"ranges": [[3, 1]]}}},
                 {"lists": {"l": {"timeline_limit": "1"}}},
                 {"room_subscriptions": {"!r:localhost": {"required_state": ["m.room.name"]}}},
                 {"conn_id": 5}):
        r = server.request("POST", SS, body, token=a)
        assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON", (body, r)
    # a plain /sync token (what pvyhs handed out as pos before): start over
    since = server.request("GET", V3 + "/sync?timeout=0", token=a).json["next_batch"]
    r = server.request("POST", SS + f"?pos={since}", {}, token=a)
    assert r.status == 400 and r.json["errcode"] == "M_UNKNOWN_POS"
