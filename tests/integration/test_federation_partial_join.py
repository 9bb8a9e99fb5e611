"""test_federation_partial_join.py — joins with partial state ("faster joins",
MSC3706): B joins a room of A with many members; send_join answers without
the members, the join returns at once with the room marked partial, and B
fetches the full state in the background.

Two pvyhs over TLS (test_federation_transport.py's FedServer and test CA).
A's room gets its many members through the Client-Server API: guests
(POST /register?kind=guest, no password to hash) who each POST /join, a few
threads at a time. B holds its resync back a few seconds
(PVYHS_PARTIAL_STATE_RESYNC_DELAY_MS, a test-only knob) so the tests can
watch the room while it is partial.

A client whose /sync does not lazy-load members is not shown a partial-state
room (its member list would be incomplete) until the resync, then gets it as
newly joined with every member, as Synapse does; sliding sync likewise for
the lists whose required_state needs all members.
"""
import concurrent.futures
import json
import threading
import time

import pytest

from harness import Server
from test_federation_rooms import q, wait_for
from test_federation_transport import FedServer, pki, stop_clean  # noqa: F401

V3 = "/_matrix/client/v3"
SS = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
GUESTS = 200
DELAY_MS = 6000


def populate(s, room, n, threads=8, prefix=""):
    """n guests of s joined to room (which lets guests in); their user IDs
    and tokens."""
    def one(_):
        for attempt in range(5):
            r = s.request("POST", f"{V3}/register?kind=guest", {}, timeout=120)
            if r.status == 200:
                break
            time.sleep(0.5)
        assert r.status == 200, r
        uid, tok = r.json["user_id"], r.json["access_token"]
        r = s.request("POST", f"{V3}/join/{q(room)}", {}, token=tok, timeout=120)
        assert r.status == 200, r
        return uid, tok
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        return list(ex.map(one, range(n)))


def user(s, name):
    cache = s.__dict__.setdefault("_users", {})
    if name not in cache:
        uid = s.add_user(name)
        cache[name] = (uid, s.login(name))
    return cache[name]


def big_room(a, atok, n, name):
    r = a.request("POST", f"{V3}/createRoom", {"preset": "public_chat", "name": name},
                  token=atok)
    assert r.status == 200, r
    room = r.json["room_id"]
    r = a.request("PUT", f"{V3}/rooms/{q(room)}/state/m.room.guest_access/",
                  {"guest_access": "can_join"}, token=atok)
    assert r.status == 200, r
    guests = populate(a, room, n)
    return room, guests


def send_text(s, tok, room, text):
    r = s.request("PUT", f"{V3}/rooms/{q(room)}/send/m.room.message/{q(text)}{time.time()}",
                  {"msgtype": "m.text", "body": text}, token=tok)
    assert r.status == 200, r
    return r.json["event_id"]


def bodies(s, tok, room):
    r = s.request("GET", f"{V3}/rooms/{q(room)}/messages?dir=b&limit=50", token=tok)
    assert r.status == 200, r
    return [e["content"].get("body") for e in r.json["chunk"] if e["type"] == "m.room.message"]


def partial_rows(s, room):
    return int(s.psql(f"SELECT count(*) FROM fed_partial_state_rooms WHERE room_id = '{room}'"))


@pytest.fixture(scope="module")
def fed(pki):  # noqa: F811
    extra = Server.NO_LIMITS + "allow_guest_access: true\n"
    a = FedServer(pki, prefix="fpja", extra=extra)
    b = FedServer(pki, prefix="fpjb", extra=extra,
                  env={"PVYHS_PARTIAL_STATE_RESYNC_DELAY_MS": str(DELAY_MS)})
    a.start()
    b.start()
    yield {"a": a, "b": b}
    try:
        stop_clean(a, b)
    finally:
        for s in (a, b):
            s.__exit__(None, None, None)


def test_partial_join_and_resync(fed):
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fpja_alice")
    bob, btok = user(b, "fpjb_bob")
    room, guests = big_room(a, atok, GUESTS, "Crowd")
    carol, ctok = user(a, "fpja_carol")
    assert a.request("POST", f"{V3}/join/{q(room)}", {}, token=ctok).status == 200
    everyone = {alice, bob, carol} | {g for g, _ in guests}

    t0 = time.time()
    r = b.request("POST", f"{V3}/join/{q(room)}?via={q(a.server_name)}", {}, token=btok)
    took = time.time() - t0
    assert r.status == 200, r
    # Marked partial, with the servers A listed; only a few members known.
    assert partial_rows(b, room) == 1
    assert b.psql(f"SELECT servers FROM fed_partial_state_rooms WHERE room_id = '{room}'") \
        == "{" + a.server_name + "}"
    known = int(b.psql(f"SELECT count(*) FROM current_state WHERE room_id = '{room}'"
                       " AND type = 'm.room.member'"))
    assert known < 10, known
    assert took < DELAY_MS / 1000, took
    assert "with partial state" in b.read_log()

    # Messages both ways during the resync: a guest B has never seen a
    # member event of (its event is judged by its auth events), and bob (our
    # event goes to the servers the join answer listed).
    g_uid, g_tok = guests[17]
    send_text(a, g_tok, room, "from a guest")
    wait_for(lambda: "from a guest" in bodies(b, btok, room), what="the guest's message on B")
    send_text(b, btok, room, "from bob while partial")
    wait_for(lambda: "from bob while partial" in bodies(a, atok, room), what="bob's message on A")
    # The guest renames itself: on B, under the partial state, that member
    # event seems to replace nothing (v1.19 unsigned.replaces_state).
    r = a.request("PUT", f"{V3}/rooms/{q(room)}/state/m.room.member/{q(g_uid)}",
                  {"membership": "join", "displayname": "G17"}, token=g_tok)
    assert r.status == 200, r
    renamed = r.json["event_id"]
    wait_for(lambda: b.psql(f"SELECT count(*) FROM events WHERE event_id = '{renamed}'"
                            " AND NOT outlier") == "1", what="the rename on B")
    assert b.psql(f"SELECT replaces_state IS NULL FROM events WHERE event_id = '{renamed}'") == "t"
    assert partial_rows(b, room) == 1, "the resync ran before the test could look"

    # A lazy-loading /sync: the guest's member event comes with its message
    # (from the event's auth events), and the counts are not claimed.
    filt = json.dumps({"room": {"state": {"lazy_load_members": True}}})
    r = b.request("GET", f"{V3}/sync?timeout=0&filter={q(filt)}", token=btok)
    assert r.status == 200, r
    entry = r.json["rooms"]["join"][room]
    assert "m.joined_member_count" not in entry.get("summary", {}), entry.get("summary")
    members = {e["state_key"] for e in entry["state"]["events"] if e["type"] == "m.room.member"}
    assert g_uid in members, members

    # A member B knows nothing of yet types and reads: B takes it from A,
    # a server the join answer listed, and bob sees both (Synapse too).
    t_uid, t_tok = carol, ctok
    assert b.psql(f"SELECT count(*) FROM current_state WHERE room_id = '{room}'"
                  f" AND state_key = '{t_uid}'") == "0"
    r = a.request("PUT", f"{V3}/rooms/{q(room)}/typing/{q(t_uid)}",
                  {"typing": True, "timeout": 30000}, token=t_tok)
    assert r.status == 200, r
    seen = a.request("GET", f"{V3}/rooms/{q(room)}/messages?dir=b&limit=1", token=atok).json
    r = a.request("POST", f"{V3}/rooms/{q(room)}/receipt/m.read/{q(seen['chunk'][0]['event_id'])}",
                  {}, token=t_tok)
    assert r.status == 200, r

    def ephemeral():
        r = b.request("GET", f"{V3}/sync?timeout=0&filter={q(filt)}", token=btok)
        evs = r.json["rooms"]["join"].get(room, {}).get("ephemeral", {}).get("events", [])
        typing = any(t_uid in e["content"].get("user_ids", []) for e in evs if e["type"] == "m.typing")
        read = any(t_uid in json.dumps(e["content"]) for e in evs if e["type"] == "m.receipt")
        return typing and read
    wait_for(ephemeral, what="the unknown member's typing and receipt on B")
    assert partial_rows(b, room) == 1, "the resync ran before the test could look"

    # An alias made on B during the resync resolves with B first and A, the
    # server the join answer listed, to join through (Synapse).
    alias = f"#crowd:{b.server_name}"
    r = b.request("PUT", f"{V3}/directory/room/{q(alias)}", {"room_id": room}, token=btok)
    assert r.status == 200, r
    r = b.request("GET", f"{V3}/directory/room/{q(alias)}", token=btok)
    assert r.status == 200 and r.json["servers"] == [b.server_name, a.server_name], r

    dl_since = b.request("GET", f"{V3}/sync?timeout=0&filter={q(filt)}", token=btok).json["next_batch"]

    # While partial, B turns away joins and knocks through it (404, as if
    # not in the room: it could neither give the state nor check against it).
    for path in (f"/_matrix/federation/v1/make_join/{q(room)}/{q(alice)}?ver=12&ver=11",
                 f"/_matrix/federation/v1/make_knock/{q(room)}/{q(alice)}?ver=12&ver=11"):
        r = a.fed_request(b.server_name, path)
        assert r.status == 200 and r.json["status"] == 404, r
        assert r.json["body"]["errcode"] == "M_NOT_FOUND", r
    for kind in ("send_join", "send_knock"):
        r = a.fed_request(b.server_name, f"/_matrix/federation/v2/{kind}/{q(room)}/$x"
                          if kind == "send_join" else f"/_matrix/federation/v1/{kind}/{q(room)}/$x",
                          method="PUT", content={"type": "m.room.member"})
        assert r.status == 200 and r.json["status"] == 404, r
    # Another server asking B for the state at an event while B's state is
    # partial waits for the resync and gets the whole of it: B does not
    # answer at once with the few members it knows (Synapse blocks too).
    ev = b.psql(f"SELECT event_id FROM events WHERE room_id = '{room}' AND sender = '{g_uid}'"
                " AND type = 'm.room.message'")
    assert partial_rows(b, room) == 1
    r = a.fed_request(b.server_name, f"/_matrix/federation/v1/state_ids/{q(room)}?event_id={q(ev)}")
    assert r.status == 200 and r.json["status"] == 200, r
    assert len(r.json["body"]["pdu_ids"]) >= len(everyone), len(r.json["body"]["pdu_ids"])
    assert partial_rows(b, room) == 0
    # The members the resync brought now share a room with bob: their
    # device lists are `changed` for him (he must fetch their keys).
    r = b.request("GET", f"{V3}/sync?timeout=0&since={q(dl_since)}&filter={q(filt)}", token=btok)
    changed = set(r.json.get("device_lists", {}).get("changed", []))
    assert carol in changed and guests[40][0] in changed, sorted(changed)[:5]

    # /members lists everybody (it would wait for the resync too).
    r = b.request("GET", f"{V3}/rooms/{q(room)}/members", token=btok, timeout=60)
    assert r.status == 200, r
    got = {e["state_key"] for e in r.json["chunk"] if e["content"]["membership"] == "join"}
    assert got == everyone, (len(got), len(everyone))
    assert partial_rows(b, room) == 0
    # The resync gave the rename the guest's join it replaced, as on A.
    on_a = a.request("GET", f"{V3}/rooms/{q(room)}/event/{q(renamed)}", token=atok).json
    on_b = b.request("GET", f"{V3}/rooms/{q(room)}/event/{q(renamed)}", token=btok).json
    assert on_a["unsigned"]["replaces_state"].startswith("$")
    assert on_b["unsigned"]["replaces_state"] == on_a["unsigned"]["replaces_state"], (on_a, on_b)
    assert on_b["unsigned"]["prev_content"]["membership"] == "join"
    r = b.request("GET", f"{V3}/rooms/{q(room)}/joined_members", token=btok)
    assert set(r.json["joined"]) == everyone
    # The event received while partial has the full state now: A asks B
    # for the state at it again.
    r = a.fed_request(b.server_name, f"/_matrix/federation/v1/state_ids/{q(room)}?event_id={q(ev)}")
    assert r.status == 200 and r.json["status"] == 200, r
    n_state = len(r.json["body"]["pdu_ids"])
    assert n_state >= len(everyone), n_state
    # The counts are back in /sync.
    r = b.request("GET", f"{V3}/sync?timeout=0&filter={q(filt)}", token=btok)
    summary = r.json["rooms"]["join"][room]["summary"]
    assert summary["m.joined_member_count"] == len(everyone), summary
    # And messages still flow.
    send_text(b, btok, room, "from bob after")
    wait_for(lambda: "from bob after" in bodies(a, atok, room), what="bob's later message on A")
    send_text(a, guests[3][1], room, "guest after")
    wait_for(lambda: "guest after" in bodies(b, btok, room), what="a later guest message on B")


def test_resync_resumes_after_a_restart(fed):
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fpja_alice")
    carol, ctok = user(b, "fpjb_carol")
    room, guests = big_room(a, atok, GUESTS // 2, "Restart")
    r = b.request("POST", f"{V3}/join/{q(room)}?via={q(a.server_name)}", {}, token=ctok)
    assert r.status == 200, r
    assert partial_rows(b, room) == 1
    # Stop B while the room is partial; the mark survives.
    assert b.stop() == 0
    b.start()
    assert partial_rows(b, room) == 1
    wait_for(lambda: partial_rows(b, room) == 0, timeout=90, what="the resumed resync")
    r = b.request("GET", f"{V3}/rooms/{q(room)}/joined_members", token=ctok)
    assert r.status == 200, r
    assert set(r.json["joined"]) == {alice, carol} | {g for g, _ in guests}
    send_text(b, ctok, room, "carol after the restart")
    wait_for(lambda: "carol after the restart" in bodies(a, atok, room), what="carol's message")


def test_small_room_resyncs_at_once(fed):
    """Without the test delay (A), the resync follows the join at once."""
    a, b = fed["a"], fed["b"]
    dave, dtok = user(b, "fpjb_dave")
    erin, etok = user(a, "fpja_erin")
    r = b.request("POST", f"{V3}/createRoom", {"preset": "public_chat"}, token=dtok)
    room = r.json["room_id"]
    r = a.request("POST", f"{V3}/join/{q(room)}?via={q(b.server_name)}", {}, token=etok)
    assert r.status == 200, r
    wait_for(lambda: partial_rows(a, room) == 0, what="A's resync")
    r = a.request("GET", f"{V3}/rooms/{q(room)}/joined_members", token=etok)
    assert set(r.json["joined"]) == {dave, erin}


def joined_in(events):
    return {e["state_key"] for e in events
            if e["type"] == "m.room.member" and e["content"].get("membership") == "join"}


def sliding(s, tok, lists, pos=None, timeout=0, conn="c"):
    qs = f"?timeout={timeout}" + (f"&pos={q(pos)}" if pos else "")
    r = s.request("POST", SS + qs, {"conn_id": conn, "lists": lists}, token=tok,
                  timeout=timeout / 1000 + 30)
    assert r.status == 200, r
    return r.json


LAZY_LIST = {"ranges": [[0, 20]], "timeline_limit": 5,
             "required_state": [["m.room.member", "$LAZY"], ["m.room.member", "$ME"]]}
ALL_MEMBERS_LIST = {"ranges": [[0, 20]], "timeline_limit": 5,
                    "required_state": [["m.room.member", "*"], ["m.room.name", ""]]}


def test_non_lazy_sync_gets_the_room_with_its_full_state(fed):
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fpja_alice")
    gina, gtok = user(b, "fpjb_gina")
    room, guests = big_room(a, atok, GUESTS // 2, "Eager")
    everyone = {alice, gina} | {g for g, _ in guests}
    send_text(a, atok, room, "before gina")
    r = b.request("GET", f"{V3}/sync?timeout=0", token=gtok)
    assert r.status == 200, r
    before = r.json["next_batch"]
    eager_ss = sliding(b, gtok, {"members": ALL_MEMBERS_LIST}, conn="eager")

    r = b.request("POST", f"{V3}/join/{q(room)}?via={q(a.server_name)}", {}, token=gtok)
    assert r.status == 200, r
    assert partial_rows(b, room) == 1

    # Not lazy: neither an initial nor an incremental sync shows the room.
    r = b.request("GET", f"{V3}/sync?timeout=0", token=gtok)
    assert room not in r.json["rooms"]["join"], "a partial room in a non-lazy initial sync"
    r = b.request("GET", f"{V3}/sync?timeout=0&since={q(before)}", token=gtok)
    assert room not in r.json["rooms"]["join"], "a partial room in a non-lazy incremental sync"
    mid = r.json["next_batch"]  # past gina's join
    # Lazy: at once, with gina's own membership.
    filt = json.dumps({"room": {"state": {"lazy_load_members": True}}})
    r = b.request("GET", f"{V3}/sync?timeout=0&filter={q(filt)}", token=gtok)
    entry = r.json["rooms"]["join"][room]
    assert gina in joined_in(entry["state"]["events"] + entry["timeline"]["events"])
    # Sliding sync: in the $LAZY list, not in the one asking for every member;
    # a guest's message brings the guest's member event, which the partial
    # state lacks (it comes from the message's auth events).
    g_uid, g_tok = guests[7]
    send_text(a, g_tok, room, "a guest speaks")
    wait_for(lambda: "a guest speaks" in bodies(b, gtok, room), what="the guest's message on B")
    body = sliding(b, gtok, {"lazy": LAZY_LIST, "members": ALL_MEMBERS_LIST}, conn="both")
    assert body["lists"]["lazy"]["count"] == 1 and body["lists"]["members"]["count"] == 0, \
        body["lists"]
    assert room in body["rooms"]
    assert {gina, g_uid} <= joined_in(body["rooms"][room].get("required_state", [])), \
        joined_in(body["rooms"][room].get("required_state", []))
    body = sliding(b, gtok, {"members": ALL_MEMBERS_LIST}, pos=eager_ss["pos"], conn="eager")
    assert room not in body["rooms"] and body["lists"]["members"]["count"] == 0
    eager_pos = body["pos"]
    assert partial_rows(b, room) == 1, "the resync ran before the test could look"

    # Parked, both kinds are woken by the resync's completion, long before
    # their time-out; a return for something else while partial parks again.
    got = {}

    def eager_sliding():
        pos, t0 = eager_pos, time.time()
        while time.time() < t0 + 90:
            body = sliding(b, gtok, {"members": ALL_MEMBERS_LIST}, pos=pos, timeout=60000,
                           conn="eager")
            if room in body["rooms"]:
                got["ss"] = (time.time() - t0, body)
                return
            pos = body["pos"]

    th = threading.Thread(target=eager_sliding)
    th.start()
    since, t0 = mid, time.time()
    while True:
        r = b.request("GET", f"{V3}/sync?timeout=60000&since={q(since)}", token=gtok,
                      timeout=90)
        assert r.status == 200, r
        if room in r.json["rooms"]["join"] or time.time() > t0 + 90:
            break
        since = r.json["next_batch"]
    took = time.time() - t0
    th.join(90)
    assert partial_rows(b, room) == 0
    assert took < 40, f"the parked /sync was not woken by the resync ({took:.1f} s)"
    # Newly joined: the whole state, every member, a timeline and the counts.
    entry = r.json["rooms"]["join"].get(room)
    assert entry, "the room never came"
    members = joined_in(entry["state"]["events"] + entry["timeline"]["events"])
    assert members == everyone, (len(members), len(everyone))
    assert entry["timeline"]["events"], entry["timeline"]
    assert entry["summary"]["m.joined_member_count"] == len(everyone), entry["summary"]
    assert any(e["type"] == "m.room.create" for e in entry["state"]["events"])
    # Their device lists are news to gina's client too (Synapse: newly joined rooms).
    missing = everyone - {gina} - set(r.json["device_lists"]["changed"])
    assert not missing, f"{len(missing)} members missing from device_lists.changed"
    # Once: the next incremental sync has nothing more of it.
    r = b.request("GET", f"{V3}/sync?timeout=0&since={q(r.json['next_batch'])}", token=gtok)
    assert room not in r.json["rooms"]["join"], r.json["rooms"]["join"].get(room)
    # An initial sync now shows it with every member too.
    r = b.request("GET", f"{V3}/sync?timeout=0", token=gtok)
    entry = r.json["rooms"]["join"][room]
    assert joined_in(entry["state"]["events"] + entry["timeline"]["events"]) == everyone

    # Sliding sync: the room arrives as initial with every member.
    assert "ss" in got, "the parked sliding sync never got the room"
    ss_took, body = got["ss"]
    assert ss_took < 40, f"the parked sliding sync was not woken ({ss_took:.1f} s)"
    ss_room = body["rooms"][room]
    assert ss_room["initial"] is True and body["lists"]["members"]["count"] == 1
    assert joined_in(ss_room["required_state"]) == everyone
    assert ss_room["joined_count"] == len(everyone)


def test_device_list_updates_reach_servers_the_join_answer_left_out(fed, pki):  # noqa: F811
    """A server in the room that the join answer did not list (simulated by
    taking it out of B's mark) misses the device-list updates B's users make
    while the state is partial; when the resync shows it in the room, B
    sends them (Synapse; Complement's Device_list_updates_reach_incorrectly_
    absent_servers...)."""
    a, b = fed["a"], fed["b"]
    alice, atok = user(a, "fpja_alice")
    c = FedServer(pki, prefix="fpjc", extra=Server.NO_LIMITS)
    c.start()
    try:
        cid = c.add_user("fpjc_cora")
        ctok = c.login("fpjc_cora")
        room, _ = big_room(a, atok, 5, "Absent")
        r = c.request("POST", f"{V3}/join/{q(room)}?via={q(a.server_name)}", {}, token=ctok)
        assert r.status == 200, r
        wait_for(lambda: a.psql(f"SELECT count(*) FROM current_state WHERE room_id = '{room}'"
                                f" AND state_key = '{cid}'") == "1", what="cora's join on A")
        erin, etok = user(b, "fpjb_erin")
        r = b.request("POST", f"{V3}/join/{q(room)}?via={q(a.server_name)}", {}, token=etok)
        assert r.status == 200, r
        assert partial_rows(b, room) == 1
        # As if A's answer had not listed C.
        b.psql(f"UPDATE fed_partial_state_rooms SET servers = array_remove(servers,"
               f" '{c.server_name}') WHERE room_id = '{room}'")
        wait_for(lambda: c.psql(f"SELECT count(*) FROM current_state WHERE room_id = '{room}'"
                                f" AND state_key = '{erin}'") == "1", what="erin's join on C")
        since = c.request("GET", f"{V3}/sync?timeout=0", token=ctok).json["next_batch"]
        b.login("fpjb_erin", device_id="NEWPHONE")  # a device-list change, while partial
        time.sleep(1)
        r = c.request("GET", f"{V3}/sync?timeout=0&since={q(since)}", token=ctok)
        assert erin not in r.json.get("device_lists", {}).get("changed", []), r.json
        wait_for(lambda: partial_rows(b, room) == 0, timeout=30, what="B's resync")

        def told():
            r = c.request("GET", f"{V3}/sync?timeout=0&since={q(since)}", token=ctok)
            return erin in r.json.get("device_lists", {}).get("changed", [])
        wait_for(told, timeout=30, what="erin's device list update on C")
    finally:
        try:
            stop_clean(c)
        finally:
            c.__exit__(None, None, None)
