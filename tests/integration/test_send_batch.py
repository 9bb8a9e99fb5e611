"""Group commit of concurrent sends (homeserver/db/group_commit.c): messages
sent at the same time into different rooms are written in one transaction by
a writer thread while their requests are parked. Each must still get the
answer it would have had alone: its own event, exactly once, in order, with
idempotent transaction IDs, and its own refusal when the rules refuse it."""
import concurrent.futures
import http.client
import json
import os
import urllib.parse

import pytest

from harness import Server

V3 = "/_matrix/client/v3"
ROOMS = 12
PER_ROOM = 25


@pytest.fixture(scope="module")
def srv():
    s = Server()
    # The writer logs each batch at debug level: the tests check batches formed.
    with open(s.config) as f:
        text = f.read().replace("log_level: info", "log_level: debug")
    with open(s.config, "w") as f:
        f.write(text)
    s.start()
    yield s
    s.stop_checked()


@pytest.fixture(scope="module")
def world(srv):
    users = {}
    for name in ("gb_a", "gb_b", "gb_out"):
        srv.add_user(name)
        users[name] = srv.login(name)
    rooms = []
    for i in range(ROOMS):
        r = srv.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=users["gb_a"])
        assert r.status == 200, r
        rid = r.json["room_id"]
        assert srv.request("POST", f"{V3}/join/{urllib.parse.quote(rid)}", {},
                           token=users["gb_b"]).status == 200
        rooms.append(rid)
    return users, rooms


class Conn:
    """One keep-alive connection, as each sender of a client has."""

    def __init__(self, srv):
        self.c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)

    def put(self, tok, room, txn, content, type_="m.room.message"):
        path = f"{V3}/rooms/{urllib.parse.quote(room)}/send/{type_}/{txn}"
        self.c.request("PUT", path, body=json.dumps(content).encode(),
                       headers={"Authorization": "Bearer " + tok,
                                "Content-Type": "application/json"})
        r = self.c.getresponse()
        return r.status, json.loads(r.read() or b"{}")


def batches(srv):
    return [line for line in srv.read_log().splitlines()
            if "sends in one transaction" in line]


def room_bodies(srv, tok, room):
    q = urllib.parse.urlencode({"dir": "f", "limit": 1000})
    r = srv.request("GET", f"{V3}/rooms/{urllib.parse.quote(room)}/messages?{q}", token=tok)
    assert r.status == 200, r
    return [(e["event_id"], e["content"].get("body")) for e in r.json["chunk"]
            if e["type"] == "m.room.message"]


def test_concurrent_sends_each_stored_once_in_order(srv, world):
    users, rooms = world
    before = len(batches(srv))

    def sender(k):
        # Sender k goes through the rooms one message at a time, so every
        # room gets messages from several connections at once.
        c, tok = Conn(srv), users["gb_a" if k % 2 else "gb_b"]
        out = []
        for i in range(PER_ROOM):
            room = rooms[(k + i) % ROOMS]
            st, body = c.put(tok, room, f"c{k}-{i}", {"msgtype": "m.text", "body": f"{k}:{i}"})
            assert st == 200, body
            out.append((room, body["event_id"], f"{k}:{i}"))
        return out

    with concurrent.futures.ThreadPoolExecutor(ROOMS) as ex:
        sent = [x for part in ex.map(sender, range(ROOMS)) for x in part]
    assert len({e for _, e, _ in sent}) == len(sent) == ROOMS * PER_ROOM
    # Each room holds exactly the messages sent to it, each once, and each
    # sender's messages in the order it sent them.
    for room in rooms:
        got = room_bodies(srv, users["gb_a"], room)
        want = {(e, b) for r, e, b in sent if r == room}
        assert sorted(got) == sorted(want)
        pos = {b: i for i, (_, b) in enumerate(got)}
        for k in range(ROOMS):
            mine = [b for r, _, b in sent if r == room and b.startswith(f"{k}:")]
            assert [pos[b] for b in mine] == sorted(pos[b] for b in mine)
    # And they were written in batches, not one by one.
    assert len(batches(srv)) > before, "no send was batched"


def test_refused_send_in_a_batch_gets_its_own_error(srv, world):
    users, rooms = world

    def one(k):
        c = Conn(srv)
        if k == 0:  # not in the room: refused by the auth rules, alone
            return c.put(users["gb_out"], rooms[1], "out-1", {"msgtype": "m.text", "body": "x"})
        if k == 1:  # over the 64 KiB event limit
            return c.put(users["gb_a"], rooms[2], "big-1",
                         {"msgtype": "m.text", "body": "y" * 70000})
        return c.put(users["gb_a"], rooms[(k + 2) % ROOMS], f"ok-{k}",
                     {"msgtype": "m.text", "body": f"ok {k}"})

    for _ in range(3):
        with concurrent.futures.ThreadPoolExecutor(ROOMS) as ex:
            res = list(ex.map(one, range(ROOMS)))
        assert res[0][0] == 403 and res[0][1]["errcode"] == "M_FORBIDDEN", res[0]
        assert res[1][0] == 413 and res[1][1]["errcode"] == "M_TOO_LARGE", res[1]
        assert all(st == 200 and b["event_id"].startswith("$") for st, b in res[2:]), res
    bodies = [b for _, b in room_bodies(srv, users["gb_a"], rooms[1])]
    assert "x" not in bodies


def test_transaction_ids_idempotent_under_load(srv, world):
    users, rooms = world
    room = rooms[5]
    # The same transaction from the same device, many times at once, among
    # other sends: one event, and every answer names it.
    def one(k):
        c = Conn(srv)
        if k % 2 == 0:
            return c.put(users["gb_b"], room, "same-txn", {"msgtype": "m.text", "body": "once"})
        return c.put(users["gb_b"], rooms[(k + 6) % ROOMS], f"other-{k}",
                     {"msgtype": "m.text", "body": f"other {k}"})

    with concurrent.futures.ThreadPoolExecutor(ROOMS) as ex:
        res = list(ex.map(one, range(2 * ROOMS)))
    assert all(st == 200 for st, _ in res), res
    ids = {b["event_id"] for k, (_, b) in enumerate(res) if k % 2 == 0}
    assert len(ids) == 1
    assert [b for _, b in room_bodies(srv, users["gb_b"], room)].count("once") == 1
    # A retry long after is answered the same, and sends nothing.
    st, b = Conn(srv).put(users["gb_b"], room, "same-txn", {"msgtype": "m.text", "body": "once"})
    assert st == 200 and b["event_id"] in ids
    assert [b for _, b in room_bodies(srv, users["gb_b"], room)].count("once") == 1


def test_batched_sends_wake_sync_and_count_unread(srv, world):
    users, rooms = world
    tok_b = users["gb_b"]
    r = srv.request("GET", V3 + "/sync?timeout=0", token=tok_b)
    since = r.json["next_batch"]

    def one(k):
        return Conn(srv).put(users["gb_a"], rooms[k], f"wake-{k}",
                             {"msgtype": "m.text", "body": f"wake {k}"})

    with concurrent.futures.ThreadPoolExecutor(ROOMS) as ex:
        assert all(st == 200 for st, _ in ex.map(one, range(ROOMS)))
    seen = {}
    for _ in range(20):
        r = srv.request("GET", f"{V3}/sync?timeout=2000&since={since}", token=tok_b)
        assert r.status == 200, r
        since = r.json["next_batch"]
        for rid, room in r.json.get("rooms", {}).get("join", {}).items():
            for e in room["timeline"]["events"]:
                if e["content"].get("body", "").startswith("wake "):
                    seen[rid] = room.get("unread_notifications", {})
        if len(seen) == ROOMS:
            break
    assert set(seen) == set(rooms)
    # Push actions were written with the batch: each message counts for b.
    assert all(n.get("notification_count", 0) >= 1 for n in seen.values()), seen



def test_batched_sends_highlight_the_display_name_in_the_room(srv, world):
    # contains_display_name reads each recipient's display name in the room
    # (current_state.display_name, sql/034): a per-room name counts, and a
    # renamed member's old name no longer does, in batches too.
    users, rooms = world
    tok_a, tok_b = users["gb_a"], users["gb_b"]
    me = srv.request("GET", V3 + "/account/whoami", token=tok_b).json["user_id"]

    def rename(k, name):
        path = f"{V3}/rooms/{urllib.parse.quote(rooms[k])}/state/m.room.member/{urllib.parse.quote(me)}"
        r = srv.request("PUT", path, {"membership": "join", "displayname": name}, token=tok_b)
        assert r.status == 200, r

    def burst(tag, body):
        def one(k):
            return Conn(srv).put(tok_a, rooms[k], f"{tag}-{k}", {"msgtype": "m.text",
                                                                 "body": body(k)})
        with concurrent.futures.ThreadPoolExecutor(ROOMS) as ex:
            res = list(ex.map(one, range(ROOMS)))
        assert all(st == 200 for st, _ in res), res
        return [b["event_id"] for _, b in res]

    def highlighted(ids):
        r = srv.request("GET", V3 + "/notifications?limit=200", token=tok_b)
        assert r.status == 200, r
        acts = {n["event"]["event_id"]: n["actions"] for n in r.json["notifications"]}
        return [{"set_tweak": "highlight"} in acts.get(e, []) for e in ids]

    before = len(batches(srv))
    for k in range(ROOMS):
        rename(k, f"Zebulon{k}")
    first = burst("dn1", lambda k: f"ping zebulon{k}, lunch?")
    assert highlighted(first) == [True] * ROOMS
    for k in range(ROOMS):
        rename(k, f"Quentin{k}")
    old = burst("dn2", lambda k: f"zebulon{k} again")
    new = burst("dn3", lambda k: f"QUENTIN{k}!")
    assert highlighted(old) == [False] * ROOMS
    assert highlighted(new) == [True] * ROOMS
    assert len(batches(srv)) > before, "no send was batched"


def test_legacy_post_send_and_redact_without_txn_id(srv, world):
    # Synapse still serves POST /send/{type} and POST /redact/{id} (no
    # transaction ID, so no idempotency: each POST sends); SyTest and older
    # clients use them. Among batched sends too.
    users, rooms = world
    tok = users["gb_a"]

    def post(k):
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        path = f"{V3}/rooms/{urllib.parse.quote(rooms[k])}/send/m.room.message"
        c.request("POST", path, body=json.dumps({"msgtype": "m.text", "body": "legacy"}).encode(),
                  headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, json.loads(r.read())

    for _ in range(2):
        with concurrent.futures.ThreadPoolExecutor(ROOMS) as ex:
            res = list(ex.map(post, range(ROOMS)))
        assert all(st == 200 and b["event_id"].startswith("$") for st, b in res), res
    for room in rooms:
        assert [b for _, b in room_bodies(srv, tok, room)].count("legacy") == 2
    target = res[0][1]["event_id"]
    r = srv.request("POST", f"{V3}/rooms/{urllib.parse.quote(rooms[0])}/redact/"
                    f"{urllib.parse.quote(target)}", {"reason": "old client"}, token=tok)
    assert r.status == 200 and r.json["event_id"].startswith("$"), r
    ev = srv.request("GET", f"{V3}/rooms/{urllib.parse.quote(rooms[0])}/event/"
                     f"{urllib.parse.quote(target)}", token=tok)
    assert ev.status == 200 and ev.json["content"] == {}, ev
    # The same path with r0, as older clients call it.
    r = srv.request("POST", f"/_matrix/client/r0/rooms/{urllib.parse.quote(rooms[1])}/send/m.room.message",
                    {"msgtype": "m.text", "body": "r0"}, token=tok)
    assert r.status == 200, r
