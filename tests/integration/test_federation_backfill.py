"""test_federation_backfill.py — outbound backfill: a user of B, joined to a
room of A after its history was written, pages back through /messages and
B pulls that history from A (GET /backfill), stores it as the room's past
(the current state untouched, /sync unaware) and shows it as the room's
history visibility allows.

Two pvyhs servers A and B over TLS (the fixtures of test_federation_rooms.py).
"""
import time

from test_federation_rooms import create_room, fed, q, send_text, user  # noqa: F401
from test_federation_transport import pki  # noqa: F401


def page_back(s, tok, room, limit=10, max_pages=30):
    """Every event /messages gives going backwards from now, pages of limit."""
    out, frm, pages = [], None, 0
    while pages < max_pages:
        path = f"/_matrix/client/v3/rooms/{q(room)}/messages?dir=b&limit={limit}"
        if frm:
            path += f"&from={q(frm)}"
        r = s.request("GET", path, token=tok)
        assert r.status == 200, r.raw
        assert len(r.json["chunk"]) <= limit
        out += r.json["chunk"]
        pages += 1
        if "end" not in r.json:
            return out, pages
        frm = r.json["end"]
    raise AssertionError("pagination did not end")


def bodies(events):
    return [e["content"].get("body") for e in events if e["type"] == "m.room.message"]


def history_room(a, atok, name, visibility, n=30):
    room = create_room(a, atok, name=f"{name} (old)", initial_state=[
        {"type": "m.room.history_visibility", "state_key": "",
         "content": {"history_visibility": visibility}}])
    for i in range(n):
        send_text(a, atok, room, f"{name} {i}")
    r = a.request("PUT", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.name", {"name": name},
                  token=atok)
    assert r.status == 200, r.raw
    return room


def join_b(b, btok, room, a):
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}?via={q(a.server_name)}", {}, token=btok)
    assert r.status == 200, r.raw


def backfilled(b, room):
    return int(b.psql(f"SELECT count(*) FROM events WHERE room_id = '{room}' AND stream_ordering < 0"))


def visibility_kept(b, room):
    """The history visibility stored with each backfilled message (sql/016)."""
    return b.psql(f"SELECT DISTINCT history_visibility_at FROM events WHERE room_id = '{room}'"
                  " AND stream_ordering < 0 AND type = 'm.room.message'")


def test_backfill_shared_history(fed):
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fedbf_alice")
    bob, btok = user(b, "fedbf_bob")
    room = history_room(a, atok, "Shared", "shared")
    join_b(b, btok, room, a)
    r = b.request("GET", "/_matrix/client/v3/sync?timeout=0", token=btok)
    assert r.status == 200, r.raw
    since = r.json["next_batch"]
    assert backfilled(b, room) == 0

    events, pages = page_back(b, btok, room)
    want = [f"Shared {i}" for i in reversed(range(30))]
    assert bodies(events) == want, bodies(events)
    assert pages >= 4  # 30 messages in pages of 10: the history came in several pulls
    # The walk reaches the room's beginning: its create event, last.
    assert events[-1]["type"] == "m.room.create", events[-1]
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids))
    # B asked A (GET /backfill) and holds it at negative positions.
    assert backfilled(b, room) >= 30
    assert visibility_kept(b, room) == "shared"
    assert "/_matrix/federation/v1/backfill/" in b.read_log()

    # /context works inside the pulled history, both ways.
    mid = next(e for e in events if e["content"].get("body") == "Shared 15")
    r = b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/context/{q(mid['event_id'])}?limit=4",
                  token=btok)
    assert r.status == 200, r.raw
    assert bodies(r.json["events_before"]) == ["Shared 14", "Shared 13"], r.json["events_before"]
    assert bodies(r.json["events_after"]) == ["Shared 16", "Shared 17"], r.json["events_after"]

    # The current state is the room's present: the name set last, both members.
    r = b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.name", token=btok)
    assert r.status == 200 and r.json["name"] == "Shared", r.raw
    r = b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/joined_members", token=btok)
    assert set(r.json["joined"]) == {alice, bob}, r.raw
    # /sync goes forwards only: the past does not come as news.
    r = b.request("GET", f"/_matrix/client/v3/sync?timeout=0&since={q(since)}", token=btok)
    assert room not in r.json.get("rooms", {}).get("join", {}) or \
        not bodies(r.json["rooms"]["join"][room]["timeline"]["events"]), r.json
    # New messages still arrive and the room moves on from its present.
    send_text(a, atok, room, "after the backfill")
    deadline = time.time() + 30
    while time.time() < deadline:
        r = b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/messages?dir=b&limit=1", token=btok)
        if bodies(r.json["chunk"]) == ["after the backfill"]:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("A's new message did not reach B")
    send_text(b, btok, room, "bob answers")
    r = b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.name", token=btok)
    assert r.json["name"] == "Shared", r.raw
    # A second walk is served from B's own store, without asking A again.
    before = b.read_log().count("/_matrix/federation/v1/backfill/")
    again, _ = page_back(b, btok, room, limit=50)
    assert bodies(again)[2:] == want
    assert b.read_log().count("/_matrix/federation/v1/backfill/") == before


def test_backfill_joined_history_stays_hidden(fed):
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fedbf_alice")
    carol, ctok = user(b, "fedbf_carol")
    room = history_room(a, atok, "Joined", "joined")
    join_b(b, btok=ctok, room=room, a=a)
    send_text(a, atok, room, "Joined after carol")
    deadline = time.time() + 30
    while time.time() < deadline:
        events, _ = page_back(b, ctok, room)
        if "Joined after carol" in bodies(events):
            break
        time.sleep(0.2)
    # Only what was said since carol joined; the walk did reach back (B asked A).
    assert bodies(events) == ["Joined after carol"], bodies(events)
    assert backfilled(b, room) > 0
    # A sent them redacted (B had nobody in the room then); B, on its own, keeps
    # the visibility of their time, which hides them from carol anyway.
    assert visibility_kept(b, room) == "joined"
    assert any(e["type"] == "m.room.member" and e["state_key"] == carol for e in events)
    # A's own member sees everything, as before.
    mine, _ = page_back(a, atok, room, limit=100)
    assert bodies(mine)[1:] == [f"Joined {i}" for i in reversed(range(30))]


def test_backfill_when_nobody_answers(fed):
    """The room's only other server is down: /messages answers with what B
    holds, after one short try, and does not try again at once."""
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fedbf_alice")
    dan, dtok = user(b, "fedbf_dan")
    room = history_room(a, atok, "Down", "shared", n=5)
    join_b(b, dtok, room, a)
    a.stop()
    try:
        mark = f"/backfill of {room} from {a.server_name}"
        t0 = time.time()
        events, _ = page_back(b, dtok, room)
        assert time.time() - t0 < 15
        assert bodies(events) == []
        assert any(e["type"] == "m.room.member" and e["state_key"] == dan for e in events)
        assert b.read_log().count(mark) == 1
        page_back(b, dtok, room)
        assert b.read_log().count(mark) == 1  # left alone for a while
    finally:
        a.start()
