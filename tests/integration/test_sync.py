"""/sync as clients use it: initial and incremental, long-polling woken by
what the user can see, invites, leaves, limited timelines."""
import json
import threading
import time
import urllib.parse

import pytest

V3 = "/_matrix/client/v3"


@pytest.fixture(scope="module")
def users(server):
    out = {}
    for name in ("sy_alice", "sy_bob", "sy_eve"):
        uid = server.add_user(name)
        out[name] = (uid, server.login(name))
    return out


def sync(server, token, since=None, timeout=0, **extra):
    q = {"timeout": str(timeout)}
    if since:
        q["since"] = since
    q.update(extra)
    r = server.request("GET", f"{V3}/sync?" + urllib.parse.urlencode(q), token=token,
                       timeout=timeout / 1000 + 30)
    assert r.status == 200, r
    return r.json


def send(server, token, room, body, txn):
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/{txn}",
                       {"msgtype": "m.text", "body": body}, token=token)
    assert r.status == 200, r
    return r.json["event_id"]


def test_initial_and_incremental(server, users):
    a_id, a = users["sy_alice"]
    room = server.request("POST", V3 + "/createRoom", {"name": "S"}, token=a).json["room_id"]
    s1 = sync(server, a)
    assert s1["next_batch"]
    joined = s1["rooms"]["join"][room]
    types = [e["type"] for e in joined["timeline"]["events"]]
    assert types[0] == "m.room.create" and "m.room.name" in types
    assert joined["timeline"]["limited"] is False
    assert "room_id" not in joined["timeline"]["events"][0]
    assert joined["summary"]["m.joined_member_count"] == 1
    # Both sections, empty, as Synapse gives them (Complement reads them).
    assert joined["ephemeral"] == {"events": []} and joined["account_data"] == {"events": []}
    eid = send(server, a, room, "one", "s1")
    s2 = sync(server, a, since=s1["next_batch"])
    assert s2["rooms"]["join"][room]["ephemeral"] == {"events": []}
    tl = s2["rooms"]["join"][room]["timeline"]
    assert [e["event_id"] for e in tl["events"]] == [eid]
    assert s2["rooms"]["join"][room]["state"]["events"] == []
    # An unchanged summary may be left out of an incremental sync (spec);
    # after a membership change it comes with the new counts.
    assert "summary" not in s2["rooms"]["join"][room]
    s3 = sync(server, a, since=s2["next_batch"])
    assert room not in s3["rooms"]["join"]
    b_id, b = users["sy_bob"]
    server.request("POST", f"{V3}/rooms/{room}/invite", {"user_id": b_id}, token=a)
    assert server.request("POST", f"{V3}/join/{room}", {}, token=b).status == 200
    s4 = sync(server, a, since=s3["next_batch"])
    summary = s4["rooms"]["join"][room]["summary"]
    # A named room has no heroes (Synapse; SyTest's "Named room comes with
    # just joined member count summary"); an unnamed one has them.
    assert summary["m.joined_member_count"] == 2 and "m.heroes" not in summary, summary
    unnamed = server.request("POST", V3 + "/createRoom", {"invite": [b_id]}, token=a).json["room_id"]
    assert server.request("POST", f"{V3}/join/{unnamed}", {}, token=b).status == 200
    summary = sync(server, a, since=s4["next_batch"])["rooms"]["join"][unnamed]["summary"]
    assert summary["m.heroes"] == [b_id] and summary["m.joined_member_count"] == 2, summary


def test_limited_timeline_and_gap_state(server, users):
    _, a = users["sy_alice"]
    room = server.request("POST", V3 + "/createRoom", {}, token=a).json["room_id"]
    s1 = sync(server, a)
    server.request("PUT", f"{V3}/rooms/{room}/state/m.room.topic", {"topic": "gap"}, token=a)
    for i in range(15):
        send(server, a, room, f"m{i}", f"lim{i}")
    s2 = sync(server, a, since=s1["next_batch"])
    j = s2["rooms"]["join"][room]
    assert j["timeline"]["limited"] is True and len(j["timeline"]["events"]) == 10
    assert j["timeline"]["prev_batch"]
    # the topic changed in the gap the timeline does not cover: it comes as state
    assert [e["content"] for e in j["state"]["events"] if e["type"] == "m.room.topic"] == \
        [{"topic": "gap"}]
    s3 = sync(server, a, since=s1["next_batch"],
              filter=json.dumps({"room": {"timeline": {"limit": 3}}}))
    assert len(s3["rooms"]["join"][room]["timeline"]["events"]) == 3


class Poll:
    """A long-polling /sync in a thread: .resp, and .dt the seconds it took."""

    def __init__(self, server, token, since, timeout):
        def run():
            t0 = time.time()
            self.resp = sync(server, token, since=since, timeout=timeout)
            self.dt = time.time() - t0
        self.resp = self.dt = None
        self.thread = threading.Thread(target=run)
        self.thread.start()

    def join(self, limit):
        self.thread.join(limit)
        assert not self.thread.is_alive(), "the /sync did not answer"
        return self.resp


def test_long_poll_wakes_on_message(server, users):
    a_id, a = users["sy_alice"]
    b_id, b = users["sy_bob"]
    room = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"},
                          token=a).json["room_id"]
    server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b)
    since = sync(server, b)["next_batch"]
    poll = Poll(server, b, since, 20000)
    time.sleep(0.5)
    sent = time.time()
    eid = send(server, a, room, "wake up", "lp1")
    events = poll.join(25)["rooms"]["join"][room]["timeline"]["events"]
    assert [e["event_id"] for e in events] == [eid]
    assert poll.dt < 5 and time.time() - sent < 5


def test_long_poll_times_out_empty_and_ignores_other_rooms(server, users):
    _, a = users["sy_alice"]
    _, e = users["sy_eve"]
    other = server.request("POST", V3 + "/createRoom", {}, token=a).json["room_id"]
    since = sync(server, e)["next_batch"]
    # A write eve cannot see between her syncs must not end her next wait at
    # once with an empty answer (clients would spin).
    send(server, a, other, "before eve's poll", "lp1")
    poll = Poll(server, e, since, 1500)
    time.sleep(0.3)
    send(server, a, other, "eve can't see this", "lp2")  # must not wake eve
    assert poll.join(10)["rooms"]["join"] == {}
    assert poll.dt >= 1.4


def test_identical_waiting_syncs_share_one_answer(server, users):
    # Several connections of one device waiting on the same token (or a
    # client's retries) are woken by one message: all get the same answer.
    _, a = users["sy_alice"]
    room = server.request("POST", V3 + "/createRoom", {}, token=a).json["room_id"]
    since = sync(server, a)["next_batch"]
    polls = [Poll(server, a, since, 20000) for _ in range(6)]
    time.sleep(0.5)
    eid = send(server, a, room, "to all six", "share1")
    got = [p.join(30) for p in polls]
    for g in got:
        assert [e["event_id"] for e in g["rooms"]["join"][room]["timeline"]["events"]] == [eid]
        assert g["next_batch"] == got[0]["next_batch"]


def test_long_poll_wakes_on_own_join(server, users):
    # A client's waiting /sync must see the room it joins from another request
    # at once, though it was not waiting on that room.
    a_id, a = users["sy_alice"]
    _, b = users["sy_bob"]
    room = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"},
                          token=a).json["room_id"]
    since = sync(server, b)["next_batch"]
    poll = Poll(server, b, since, 20000)
    time.sleep(0.5)
    assert server.request("POST", f"{V3}/join/{room}", {}, token=b).status == 200
    assert room in poll.join(30)["rooms"]["join"]
    assert poll.dt < 5


def test_invite_and_leave_sections(server, users):
    a_id, a = users["sy_alice"]
    e_id, e = users["sy_eve"]
    room = server.request("POST", V3 + "/createRoom", {"name": "Invite me"},
                          token=a).json["room_id"]
    since = sync(server, e)["next_batch"]
    server.request("POST", f"{V3}/rooms/{room}/invite", {"user_id": e_id}, token=a)
    s = sync(server, e, since=since, timeout=5000)
    inv = s["rooms"]["invite"][room]["invite_state"]["events"]
    kinds = {(x["type"], x.get("state_key")) for x in inv}
    assert ("m.room.create", "") in kinds and ("m.room.name", "") in kinds
    assert ("m.room.member", e_id) in kinds
    # Stripped, but the create event whole (v1.16, MSC4311: Complement's
    # TestMSC4311FullCreateEventOnStrippedState).
    assert all(set(x) == {"type", "state_key", "content", "sender"} for x in inv
               if x["type"] != "m.room.create")
    create = [x for x in inv if x["type"] == "m.room.create"][0]
    assert create["event_id"].startswith("$") and create["content"]["room_version"]
    assert isinstance(create["origin_server_ts"], int)
    server.request("POST", f"{V3}/rooms/{room}/join", {}, token=e)
    s2 = sync(server, e, since=s["next_batch"])
    j = s2["rooms"]["join"][room]
    assert any(x["type"] == "m.room.name" for x in j["state"]["events"] + j["timeline"]["events"])
    server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=e)
    s3 = sync(server, e, since=s2["next_batch"])
    left = s3["rooms"]["leave"][room]["timeline"]["events"]
    assert left[-1]["type"] == "m.room.member" and left[-1]["content"]["membership"] == "leave"
    assert room not in s3["rooms"]["join"]


def test_initial_sync_shows_rooms_one_was_removed_from(server, users):
    """Without include_leave an initial sync leaves out the rooms one left,
    but shows those one was kicked or banned from (Synapse's behaviour), so
    a client that logs in again learns why the room went away."""
    a_id, a = users["sy_alice"]
    b_id, b = users["sy_bob"]
    rooms = {}
    for how in ("left", "kicked", "banned"):
        room = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"},
                              token=a).json["room_id"]
        assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b).status == 200
        if how == "left":
            r = server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=b)
        else:
            action = {"kicked": "kick", "banned": "ban"}[how]
            r = server.request("POST", f"{V3}/rooms/{room}/{action}",
                               {"user_id": b_id, "reason": how}, token=a)
        assert r.status == 200, r
        rooms[how] = room
    left = sync(server, b)["rooms"]["leave"]
    assert rooms["left"] not in left
    for how, membership in (("kicked", "leave"), ("banned", "ban")):
        ev = [e for e in left[rooms[how]]["timeline"]["events"] if e["type"] == "m.room.member"
              and e["state_key"] == b_id][-1]
        assert ev["content"]["membership"] == membership and ev["sender"] == a_id, ev
        assert ev["content"]["reason"] == how
    flt = json.dumps({"room": {"include_leave": True}})
    assert rooms["left"] in sync(server, b, filter=flt)["rooms"]["leave"]


def test_sync_errors_and_r0(server, users):
    _, a = users["sy_alice"]
    r = server.request("GET", V3 + "/sync?since=garbage", token=a)
    assert r.status == 400
    r = server.request("GET", V3 + "/sync")
    assert r.status == 401
    r = server.request("GET", "/_matrix/client/r0/sync?timeout=0", token=a)
    assert r.status == 200 and "next_batch" in r.json


def test_shutdown_answers_waiting_syncs():
    from harness import Server
    with Server() as s:
        s.start()
        s.add_user("sy_stop")
        tok = s.login("sy_stop")
        since = sync(s, tok)["next_batch"]
        got = {}

        def poll():
            got["resp"] = sync(s, tok, since=since, timeout=60000)

        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.5)
        t0 = time.time()
        assert s.stop() == 0
        th.join(10)
        assert not th.is_alive() and time.time() - t0 < 10
        assert got["resp"]["next_batch"]


def test_left_room_state_filter_and_empty_timeline(server, users):
    """Complement's TestArchivedRoomsHistory: a left room (include_leave)
    with a state filter gets only the state types asked for (none here: the
    one state event of that type is in the timeline), and a timeline limit
    of 0 is taken (Synapse), giving an empty timeline."""
    a_id, a = users["sy_alice"]
    e_id, e = users["sy_eve"]
    f = {"room": {"timeline": {"types": ["m.room.message", "a.madeup"]},
                  "state": {"types": ["a.madeup"]}, "include_leave": True}}
    fid = server.request("POST", f"{V3}/user/{e_id}/filter", f, token=e).json["filter_id"]
    room = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=a).json["room_id"]
    assert server.request("POST", f"{V3}/join/{room}", {}, token=e).status == 200
    since = sync(server, e)["next_batch"]
    server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/arch1",
                   {"msgtype": "m.text", "body": "before"}, token=a)
    server.request("PUT", f"{V3}/rooms/{room}/state/a.madeup/", {"my_key": "before"}, token=a)
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=e).status == 200
    server.request("PUT", f"{V3}/rooms/{room}/state/a.madeup/", {"my_key": "after"}, token=a)
    for s in (None, since):
        q = f"{V3}/sync?timeout=0&filter={fid}" + (f"&since={s}" if s else "")
        left = server.request("GET", q, token=e).json["rooms"]["leave"][room]
        assert left["state"]["events"] == [], left
        assert [x["content"].get("body", x["content"].get("my_key")) for x in left["timeline"]["events"]] \
            == ["before", "before"]
    empty = urllib.parse.quote('{"room": {"timeline": {"limit": 0}, "include_leave": true}}')
    r = server.request("GET", f"{V3}/sync?timeout=0&filter={empty}", token=e)
    assert r.status == 200, r
    assert r.json["rooms"]["leave"][room]["timeline"]["events"] == []



def test_incremental_leave_has_no_unchanged_state(server, users):
    """Complement's TestLeaveEventVisibility: the incremental sync after a
    leave shows the leave in the room's timeline and no state events when no
    state changed since the token (an initial sync with include_leave still
    gives the whole state)."""
    a_id, a = users["sy_alice"]
    e_id, e = users["sy_eve"]
    room = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=a).json["room_id"]
    assert server.request("POST", f"{V3}/join/{room}", {}, token=e).status == 200
    flt = urllib.parse.quote('{"room": {"include_leave": true}}')
    since = server.request("GET", f"{V3}/sync?timeout=0&filter={flt}", token=e).json["next_batch"]
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=e).status == 200
    left = server.request("GET", f"{V3}/sync?timeout=0&filter={flt}&since={since}",
                          token=e).json["rooms"]["leave"][room]
    assert left["state"]["events"] == [], left
    assert left["timeline"]["events"][-1]["content"]["membership"] == "leave"
    full = server.request("GET", f"{V3}/sync?timeout=0&filter={flt}", token=e).json["rooms"]["leave"][room]
    assert any(x["type"] == "m.room.create" for x in full["state"]["events"] + full["timeline"]["events"])


def test_initial_sync_of_a_whole_room_pages_back_from_its_end(server, users):
    """SyTest's "GET /rooms/:room_id/messages returns a message": an initial
    sync whose timeline holds the room's whole history has the sync's own
    position as prev_batch (Synapse), so paging back from it gives the
    messages, then an end, then nothing and no end."""
    a_id, a = users["sy_alice"]
    room = server.request("POST", V3 + "/createRoom", {}, token=a).json["room_id"]
    msg = send(server, a, room, "whole-1", "whole1")
    tl = sync(server, a)["rooms"]["join"][room]["timeline"]
    assert tl["limited"] is False and tl["events"][0]["type"] == "m.room.create", tl
    r = server.request("GET", f"{V3}/rooms/{room}/messages?dir=b&from={tl['prev_batch']}", token=a)
    assert r.status == 200, r
    assert r.json["chunk"][0]["event_id"] == msg and "end" in r.json, r.json
    r = server.request("GET", f"{V3}/rooms/{room}/messages?dir=b&from={r.json['end']}", token=a)
    assert r.status == 200 and r.json["chunk"] == [] and "end" not in r.json, r.json
    # A timeline cut short still points back from its first event.
    for i in range(12):
        send(server, a, room, f"whole-more-{i}", f"wholemore{i}")
    tl = sync(server, a)["rooms"]["join"][room]["timeline"]
    assert tl["limited"] is True, tl
    r = server.request("GET", f"{V3}/rooms/{room}/messages?dir=b&limit=1&from={tl['prev_batch']}",
                       token=a)
    assert r.json["chunk"][0]["event_id"] not in {e["event_id"] for e in tl["events"]}


def test_newly_joined_room_timeline_is_an_initial_one(server, users):
    """Complement's "Newly joined room has correct timeline in incremental
    sync": a room joined since the token comes with its newest events, those
    from before the token too (not only what happened since), `limited`
    when older ones exist, with a prev_batch to page back from; a later
    profile change is not a new join and gives only what is new."""
    a_id, a = users["sy_alice"]
    b_id, b = users["sy_bob"]
    f = {"room": {"timeline": {"limit": 10, "types": ["m.room.message"]},
                  "state": {"types": []}}}
    fid = server.request("POST", f"{V3}/user/{b_id}/filter", f, token=b).json["filter_id"]
    room = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=a).json["room_id"]
    first = [send(server, a, room, f"nj1-{i}", f"nj1{i}") for i in range(4)]
    since = sync(server, b, filter=fid)["next_batch"]
    second = [send(server, a, room, f"nj2-{i}", f"nj2{i}") for i in range(4)]
    assert server.request("POST", f"{V3}/join/{room}", {}, token=b).status == 200
    s = sync(server, b, since=since, filter=fid)
    tl = s["rooms"]["join"][room]["timeline"]
    assert [e["event_id"] for e in tl["events"]] == first + second, tl
    assert tl["limited"] is True and tl["prev_batch"], tl
    # Paging back from prev_batch gives what comes before (the room's state
    # events), not the messages again.
    r = server.request("GET", f"{V3}/rooms/{room}/messages?dir=b&limit=50&from={tl['prev_batch']}",
                       token=b)
    assert r.status == 200 and r.json["chunk"], r
    assert not {e["event_id"] for e in r.json["chunk"]} & set(first + second)
    # Without a filter the whole state comes too (the join is in the timeline).
    full = sync(server, b, since=since)["rooms"]["join"][room]
    assert any(e["type"] == "m.room.create" for e in full["state"]["events"]), full
    assert full["timeline"]["events"][-1]["state_key"] == b_id
    # A displayname change is no new join: the next sync has just that.
    nxt = s["next_batch"]
    r = server.request("PUT", f"{V3}/profile/{b_id}/displayname", {"displayname": "Bobby"}, token=b)
    assert r.status == 200, r
    entry = sync(server, b, since=nxt)["rooms"]["join"][room]
    tl = entry["timeline"]
    assert [e["type"] for e in tl["events"]] == ["m.room.member"], tl
    assert tl["events"][0]["content"]["displayname"] == "Bobby" and tl["limited"] is False
    # … and no state: nothing else changed (it used to bring the whole
    # room's state, as if the user had just joined).
    assert entry.get("state", {}).get("events", []) == [], entry
    # Leaving and coming back within the span is a new join again: the
    # messages from before the token come back, as a fresh timeline.
    nxt = sync(server, b, since=nxt)["next_batch"]
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=b).status == 200
    assert server.request("POST", f"{V3}/join/{room}", {}, token=b).status == 200
    tl = sync(server, b, since=nxt, filter=fid)["rooms"]["join"][room]["timeline"]
    ids = [e["event_id"] for e in tl["events"]]
    # The filter's refusals (bob's member events) do not count towards the
    # limit: older events are read in their place, and all 8 messages come.
    assert ids == first + second and tl["limited"] is True, tl


def test_lazy_members_are_not_sent_again(server, users):
    """SyTest's 15lazy-members.pl: with lazy_load_members, a sender's
    membership comes once per device's sync sequence (not with every
    incremental sync), again with include_redundant_members, again after
    an initial sync; a gappy sync brings every membership that changed in
    the gap, not only the timeline's senders."""
    # Users of its own: the record holds the last 100 member events a
    # device was sent, and the module's users are in many rooms.
    (a_id, a), (b_id, b), (e_id, e) = [(server.add_user(n), server.login(n))
                                       for n in ("sy_ll_a", "sy_ll_b", "sy_ll_e")]
    ll = json.dumps({"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 1}}})
    red = json.dumps({"room": {"state": {"lazy_load_members": True,
                                         "include_redundant_members": True}}})
    room = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=a).json["room_id"]
    assert server.request("POST", f"{V3}/join/{room}", {}, token=b).status == 200

    def members(body):
        st = body["rooms"]["join"].get(room, {}).get("state", {}).get("events", [])
        return sorted(x["state_key"] for x in st if x["type"] == "m.room.member")

    send(server, b, room, "ll-1", "ll1")
    first = sync(server, a, filter=ll)
    assert members(first) == sorted([a_id, b_id])
    send(server, b, room, "ll-2", "ll2")
    again = sync(server, a, since=first["next_batch"], filter=ll)
    assert again["rooms"]["join"][room]["timeline"]["events"][-1]["content"]["body"] == "ll-2"
    assert members(again) == []
    send(server, b, room, "ll-3", "ll3")
    redundant = sync(server, a, since=again["next_batch"], filter=red)
    assert members(redundant) == [b_id]
    # A gap: eve joins, then bob says more than the timeline holds.
    assert server.request("POST", f"{V3}/join/{room}", {}, token=e).status == 200
    for i in range(8):
        send(server, b, room, f"ll-gap-{i}", f"llgap{i}")
    gappy = sync(server, a, since=redundant["next_batch"], filter=ll)
    assert gappy["rooms"]["join"][room]["timeline"]["limited"] is True
    assert members(gappy) == [e_id]
    # A new sequence (an initial sync) gets the senders' memberships again.
    assert members(sync(server, a, filter=ll)) == sorted([a_id, b_id])


def test_room_the_filters_empty_is_left_out(server, users):
    """SyTest's "A change to displayname should not result in a full state
    sync": incrementally, a joined room whose entry the filters leave empty
    is not in the response (Synapse); an initial sync still lists it."""
    a_id, a = users["sy_alice"]
    f = json.dumps({"room": {"timeline": {"types": []}, "state": {"types": ["x.made.up"]},
                             "ephemeral": {"types": []}}, "presence": {"types": []}})
    room = server.request("POST", V3 + "/createRoom", {}, token=a).json["room_id"]
    r = server.request("PUT", f"{V3}/rooms/{room}/state/x.made.up/", {"k": 1}, token=a)
    assert r.status == 200
    first = sync(server, a, filter=f)
    assert [e["type"] for e in first["rooms"]["join"][room]["state"]["events"]] == ["x.made.up"]
    r = server.request("PUT", f"{V3}/rooms/{room}/state/m.room.member/{a_id}",
                       {"membership": "join", "displayname": "boris"}, token=a)
    assert r.status == 200
    send(server, a, room, "filtered away", "empty1")
    again = sync(server, a, since=first["next_batch"], filter=f)
    assert room not in again["rooms"]["join"], again["rooms"]["join"].get(room)
    # without the filter the same span has the room
    full = sync(server, a, since=first["next_batch"])
    assert full["rooms"]["join"][room]["timeline"]["events"]


def test_current_state_shows_through_history_visibility(server):
    """SyTest's "Current state appears in timeline in private history (with
    many messages after)": under history_visibility "joined", a member who
    left and came back gets, in the sync of the rejoin, the join that
    happened while they were away (it is current state, which Synapse's sync
    always shows), even behind more hidden messages than the timeline
    holds; the hidden messages stay hidden."""
    (a_id, a), (s_id, s), (i_id, i) = [(server.add_user(n), server.login(n))
                                       for n in ("sy_cs_a", "sy_cs_s", "sy_cs_i")]
    room = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=a).json["room_id"]
    assert server.request("POST", f"{V3}/join/{room}", {}, token=s).status == 200
    r = server.request("PUT", f"{V3}/rooms/{room}/state/m.room.history_visibility/",
                       {"history_visibility": "joined"}, token=a)
    assert r.status == 200
    since = sync(server, s)["next_batch"]
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=s).status == 200
    assert server.request("POST", f"{V3}/join/{room}", {}, token=i).status == 200
    for n in range(15):
        send(server, a, room, f"hidden {n}", f"cshidden{n}")
    assert server.request("POST", f"{V3}/join/{room}", {}, token=s).status == 200
    tl = sync(server, s, since=since)["rooms"]["join"][room]["timeline"]["events"]
    assert any(e["type"] == "m.room.member" and e["state_key"] == i_id and
               e["content"]["membership"] == "join" for e in tl), tl
    assert not any(e["content"].get("body", "").startswith("hidden") for e in tl), tl


def test_federation_format_and_event_fields(server, users):
    a_id, a = users["sy_alice"]
    room = server.request("POST", V3 + "/createRoom", {"name": "Fmt"}, token=a).json["room_id"]
    eid = send(server, a, room, "in federation form", "fmt1")
    fed = json.dumps({"event_format": "federation", "room": {"timeline": {"limit": 1}}})
    tl = sync(server, a, filter=fed)["rooms"]["join"][room]["timeline"]["events"]
    ev = tl[0]
    # The PDU's fields beside the client ones (SyTest 13filtered_sync).
    for k in ("event_id", "content", "room_id", "sender", "origin_server_ts", "type",
              "prev_events", "auth_events", "depth", "hashes", "signatures"):
        assert k in ev, (k, ev)
    assert ev["event_id"] == eid and ev["room_id"] == room
    assert ev["content"]["body"] == "in federation form"
    assert "unsigned" in ev and "transaction_id" in ev["unsigned"]  # still the sender's view
    # Client format (the default) has none of them.
    plain = sync(server, a, filter=json.dumps({"room": {"timeline": {"limit": 1}}}))
    assert "hashes" not in plain["rooms"]["join"][room]["timeline"]["events"][0]
    # event_fields keeps the paths named, in timeline and state alike.
    proj = json.dumps({"event_fields": ["type", "content.body", "event_id"],
                       "room": {"timeline": {"limit": 1}}})
    j = sync(server, a, filter=proj)["rooms"]["join"][room]
    assert j["timeline"]["events"] == [{"type": "m.room.message", "event_id": eid,
                                        "content": {"body": "in federation form"}}]
    assert j["state"]["events"], j
    for e in j["state"]["events"]:
        assert set(e) <= {"type", "content", "event_id"}, e
        assert set(e.get("content", {})) <= {"body"}, e
    # Both at once: projected from the federation form.
    both = json.dumps({"event_format": "federation", "event_fields": ["depth", "hashes.sha256"],
                       "room": {"timeline": {"limit": 1}}})
    ev = sync(server, a, filter=both)["rooms"]["join"][room]["timeline"]["events"][0]
    assert set(ev) == {"depth", "hashes"} and set(ev["hashes"]) == {"sha256"}, ev


def test_room_joined_and_left_in_one_span_has_full_state(server, users):
    a_id, a = users["sy_alice"]
    b_id, b = users["sy_bob"]
    room = server.request("POST", V3 + "/createRoom", {"preset": "private_chat"},
                          token=a).json["room_id"]
    r = server.request("PUT", f"{V3}/rooms/{room}/state/a.madeup.test.state", {"my_key": 1},
                       token=a)
    assert r.status == 200, r
    assert server.request("POST", f"{V3}/rooms/{room}/invite", {"user_id": b_id},
                          token=a).status == 200
    flt = json.dumps({"room": {"timeline": {"types": []}, "include_leave": True,
                               "state": {"types": ["a.madeup.test.state"]},
                               "ephemeral": {"types": []}}, "presence": {"types": []}})
    since = sync(server, b, filter=flt)["next_batch"]
    assert server.request("POST", f"{V3}/join/{room}", {}, token=b).status == 200
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=b).status == 200
    left = sync(server, b, since=since, filter=flt)["rooms"]["leave"][room]
    # Bob never had the room's state: its leave entry brings it whole (SyTest 06state).
    assert [(e["type"], e["content"]) for e in left["state"]["events"]] == \
        [("a.madeup.test.state", {"my_key": 1})], left
    # Joined at the token and left since: only what changed, so nothing here.
    assert server.request("POST", f"{V3}/rooms/{room}/invite", {"user_id": b_id},
                          token=a).status == 200
    assert server.request("POST", f"{V3}/join/{room}", {}, token=b).status == 200
    since = sync(server, b, filter=flt)["next_batch"]
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=b).status == 200
    left = sync(server, b, since=since, filter=flt)["rooms"]["leave"][room]
    assert left["state"]["events"] == [], left


def test_filtered_timeline_reads_past_what_the_filter_refuses(server, users):
    a_id, a = users["sy_alice"]
    room = server.request("POST", V3 + "/createRoom", {"name": "Sieve"}, token=a).json["room_id"]
    eid = send(server, a, room, "the one message", "sv1")
    for i in range(12):
        r = server.request("PUT", f"{V3}/rooms/{room}/send/a.made.up.filler.type/sv-f{i}", {},
                           token=a)
        assert r.status == 200, r
    flt = json.dumps({"room": {"timeline": {"limit": 1, "types": ["m.room.message"]},
                               "state": {"types": []}}})
    tl = sync(server, a, filter=flt)["rooms"]["join"][room]["timeline"]
    # The twelve newer events the filter refuses do not use up the limit
    # (SyTest "A filtered timeline reaches its limit"); nothing older is
    # a message, so the timeline is not limited.
    assert [e["event_id"] for e in tl["events"]] == [eid] and tl["limited"] is False, tl
    # A second message: the limit is reached, older ones are left out.
    eid2 = send(server, a, room, "another", "sv2")
    tl = sync(server, a, filter=flt)["rooms"]["join"][room]["timeline"]
    assert [e["event_id"] for e in tl["events"]] == [eid2] and tl["limited"] is True, tl
    # prev_batch points just before the message shown: paging back with the
    # same filter gives the first message.
    r = server.request("GET", f"{V3}/rooms/{room}/messages?dir=b&limit=1&from={tl['prev_batch']}"
                       "&filter=" + urllib.parse.quote(json.dumps({"types": ["m.room.message"]})),
                       token=a)
    assert [e["event_id"] for e in r.json["chunk"]] == [eid], r
    # A filter that lets no timeline event through reads none: the state
    # alone, and never limited.
    none = json.dumps({"room": {"timeline": {"types": []}}})
    j = sync(server, a, filter=none)["rooms"]["join"][room]
    assert j["timeline"]["events"] == [] and j["timeline"]["limited"] is False, j
    assert any(e["type"] == "m.room.create" for e in j["state"]["events"]), j


def test_state_change_the_timeline_filter_refuses_comes_as_state(server, users):
    a_id, a = users["sy_alice"]
    room = server.request("POST", V3 + "/createRoom", {"name": "Before"}, token=a).json["room_id"]
    flt = json.dumps({"room": {"timeline": {"types": ["m.room.message"]}}})
    since = sync(server, a, filter=flt)["next_batch"]
    r = server.request("PUT", f"{V3}/rooms/{room}/state/m.room.name", {"name": "After"}, token=a)
    assert r.status == 200, r
    name_id = r.json["event_id"]
    send(server, a, room, "after the rename", "sc1")
    j = sync(server, a, since=since, filter=flt)["rooms"]["join"][room]
    # The rename is not a message: it comes as state, not lost (Synapse).
    assert [e["content"]["body"] for e in j["timeline"]["events"]] == ["after the rename"], j
    assert [e["event_id"] for e in j["state"]["events"]] == [name_id], j
    # A topic change alone, which the filter refuses: the state brings it.
    since = sync(server, a, since=since, filter=flt)["next_batch"]
    r = server.request("PUT", f"{V3}/rooms/{room}/state/m.room.topic", {"topic": "t"}, token=a)
    j = sync(server, a, since=since, filter=flt)["rooms"]["join"][room]
    assert j["timeline"]["events"] == [] and \
        [e["event_id"] for e in j["state"]["events"]] == [r.json["event_id"]], j


def test_ignored_users_messages_are_left_out_but_not_their_state(server):
    """The spec's ignoring of users: their events leave /sync, /messages and
    /context, except their state events; and they do not use up the limit."""
    me_id = server.add_user("sy_ign_me")
    me = server.login("sy_ign_me")
    pest_id = server.add_user("sy_ign_pest")
    pest = server.login("sy_ign_pest")
    room = server.request("POST", V3 + "/createRoom", {
        "preset": "public_chat", "power_level_content_override": {"events": {"m.room.topic": 0}}},
        token=me).json["room_id"]
    assert server.request("POST", f"{V3}/join/{room}", {}, token=pest).status == 200
    mine = send(server, me, room, "mine", "ig0")
    for i in range(12):
        send(server, pest, room, f"noise {i}", f"ig{i + 1}")
    r = server.request("PUT", f"{V3}/rooms/{room}/state/m.room.topic", {"topic": "pest's"},
                       token=pest)
    assert r.status == 200, r
    topic = r.json["event_id"]
    r = server.request("PUT", f"{V3}/user/{me_id}/account_data/m.ignored_user_list",
                       {"ignored_users": {pest_id: {}}}, token=me)
    assert r.status == 200, r
    flt = json.dumps({"room": {"timeline": {"limit": 2}}})
    tl = sync(server, me, filter=flt)["rooms"]["join"][room]["timeline"]["events"]
    assert [e["event_id"] for e in tl] == [mine, topic], tl
    r = server.request("GET", f"{V3}/rooms/{room}/messages?dir=b&limit=2", token=me)
    assert [e["event_id"] for e in r.json["chunk"]] == [topic, mine], r
    r = server.request("GET", f"{V3}/rooms/{room}/context/{urllib.parse.quote(topic)}?limit=2",
                       token=me)
    assert [e["event_id"] for e in r.json["events_before"]] == [mine], r
