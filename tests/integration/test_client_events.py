"""Events as a client reads them, per requester: unsigned.transaction_id for
the device that sent the event, unsigned.membership (v1.11, MSC4115), and
GET /event under history visibility; /members?at=."""
import urllib.parse

import pytest

V3 = "/_matrix/client/v3"


def login(server, name, device_id=None, refresh=False):
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": name},
            "password": "correct horse"}
    if device_id:
        body["device_id"] = device_id
    if refresh:
        body["refresh_token"] = True
    r = server.request("POST", V3 + "/login", body)
    assert r.status == 200, r
    return r.json


def create_room(server, tok, **body):
    r = server.request("POST", V3 + "/createRoom", body, token=tok)
    assert r.status == 200, r
    return r.json["room_id"]


def send(server, tok, room, body, txn):
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/{txn}",
                       {"msgtype": "m.text", "body": body}, token=tok)
    assert r.status == 200, r
    return r.json["event_id"]


def join(server, tok, room):
    r = server.request("POST", f"{V3}/join/{urllib.parse.quote(room)}", {}, token=tok)
    assert r.status == 200, r


def get_event(server, tok, room, event_id):
    return server.request("GET", f"{V3}/rooms/{room}/event/{urllib.parse.quote(event_id)}",
                          token=tok)


def sync_timeline(server, tok, room):
    flt = urllib.parse.quote('{"room":{"timeline":{"limit":50}}}')
    r = server.request("GET", f"{V3}/sync?timeout=0&filter={flt}", token=tok)
    assert r.status == 200, r
    return r.json["rooms"]["join"][room]["timeline"]["events"]


def messages(server, tok, room):
    r = server.request("GET", f"{V3}/rooms/{room}/messages?dir=b&limit=50", token=tok)
    assert r.status == 200, r
    return r.json["chunk"]


def context(server, tok, room, event_id):
    r = server.request("GET", f"{V3}/rooms/{room}/context/{urllib.parse.quote(event_id)}"
                       "?limit=10", token=tok)
    assert r.status == 200, r
    return r.json


def search_hit(server, tok, room, term, event_id, context=False):
    body = {"search_categories": {"room_events": {"search_term": term,
                                                  "filter": {"rooms": [room]}}}}
    if context:
        body["search_categories"]["room_events"]["event_context"] = {"before_limit": 1,
                                                                     "after_limit": 1}
    r = server.request("POST", V3 + "/search", body, token=tok)
    assert r.status == 200, r
    hits = [x for x in r.json["search_categories"]["room_events"]["results"]
            if x["result"]["event_id"] == event_id]
    assert len(hits) == 1, r.json
    return hits[0]


def by_id(events, event_id):
    found = [e for e in events if e["event_id"] == event_id]
    assert len(found) == 1, events
    return found[0]


def test_transaction_id_only_for_the_sending_device(server):
    server.add_user("ce_txn_a")
    server.add_user("ce_txn_b")
    one = login(server, "ce_txn_a", device_id="DEVONE")["access_token"]
    two = login(server, "ce_txn_a", device_id="DEVTWO")["access_token"]
    bob = login(server, "ce_txn_b")["access_token"]
    room = create_room(server, one, preset="public_chat")
    join(server, bob, room)
    eid = send(server, one, room, "hello", "txn-ce-1")

    def check_has(tok):
        r = get_event(server, tok, room, eid)
        assert r.status == 200, r
        assert r.json["unsigned"]["transaction_id"] == "txn-ce-1"
        assert by_id(sync_timeline(server, tok, room), eid)["unsigned"]["transaction_id"] == "txn-ce-1"
        assert by_id(messages(server, tok, room), eid)["unsigned"]["transaction_id"] == "txn-ce-1"
        assert context(server, tok, room, eid)["event"]["unsigned"]["transaction_id"] == "txn-ce-1"
        assert search_hit(server, tok, room, "hello", eid)["result"]["unsigned"][
            "transaction_id"] == "txn-ce-1"
        # In another hit's context too.
        later = search_hit(server, tok, room, "later", after, context=True)
        assert by_id(later["context"]["events_before"], eid)["unsigned"][
            "transaction_id"] == "txn-ce-1"

    after = send(server, one, room, "later", "txn-ce-2")
    check_has(one)
    # A new login on the same device (the old token ends): still that device's.
    check_has(login(server, "ce_txn_a", device_id="DEVONE")["access_token"])
    # Another device of the same user, and another user: never.
    for tok in (two, bob):
        r = get_event(server, tok, room, eid)
        assert r.status == 200, r
        assert "transaction_id" not in r.json["unsigned"]
        assert "transaction_id" not in by_id(sync_timeline(server, tok, room), eid)["unsigned"]
        assert "transaction_id" not in by_id(messages(server, tok, room), eid)["unsigned"]
        assert "transaction_id" not in context(server, tok, room, eid)["event"]["unsigned"]
        assert "transaction_id" not in search_hit(server, tok, room, "hello", eid)["result"][
            "unsigned"]
    # Events the device did not send with a txn ID (createRoom's) have none.
    assert all("transaction_id" not in e["unsigned"]
               for e in sync_timeline(server, two, room))


def test_transaction_id_in_sliding_sync_and_initial_sync(server):
    server.add_user("ce_txn_ss")
    one = login(server, "ce_txn_ss", device_id="SSONE")["access_token"]
    two = login(server, "ce_txn_ss", device_id="SSTWO")["access_token"]
    room = create_room(server, one)
    eid = send(server, one, room, "hi", "txn-ce-ss")
    body = {"conn_id": "ce", "lists": {"all": {"ranges": [[0, 10]], "timeline_limit": 5}}}
    for tok, want in ((one, "txn-ce-ss"), (two, None)):
        r = server.request("POST", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync",
                           body, token=tok)
        assert r.status == 200, r
        ev = by_id(r.json["rooms"][room]["timeline"], eid)
        assert ev["unsigned"].get("transaction_id") == want
        assert ev["unsigned"]["membership"] == "join"
        r = server.request("GET", f"{V3}/rooms/{room}/initialSync", token=tok)
        assert r.status == 200, r
        assert by_id(r.json["messages"]["chunk"], eid)["unsigned"].get("transaction_id") == want


def test_transaction_id_survives_a_token_refresh(server):
    server.add_user("ce_refresh")
    res = login(server, "ce_refresh", refresh=True)
    assert "refresh_token" in res, res
    room = create_room(server, res["access_token"])
    eid = send(server, res["access_token"], room, "first", "txn-ce-r")
    r = server.request("POST", V3 + "/refresh", {"refresh_token": res["refresh_token"]})
    assert r.status == 200, r
    tok = r.json["access_token"]
    assert by_id(sync_timeline(server, tok, room), eid)["unsigned"]["transaction_id"] == "txn-ce-r"
    # The same txn ID from the refreshed token is still the same event.
    assert send(server, tok, room, "first", "txn-ce-r") == eid


def test_membership_on_events(server):
    server.add_user("ce_mem_a")
    server.add_user("ce_mem_b")
    alice = login(server, "ce_mem_a")["access_token"]
    bob = login(server, "ce_mem_b")["access_token"]
    room = create_room(server, alice, preset="public_chat")
    pre = send(server, alice, room, "prejoin", "ce-m1")
    join(server, bob, room)
    post = send(server, alice, room, "postjoin", "ce-m2")
    bob_id = f"@ce_mem_b:{server.server_name}"

    def check(events):
        seen_join = False
        assert events
        for e in events:
            if e["type"] == "m.room.member" and e["state_key"] == bob_id:
                seen_join = True
            assert e["unsigned"]["membership"] == ("join" if seen_join else "leave"), e
        assert seen_join

    check(sync_timeline(server, bob, room))
    check(list(reversed(messages(server, bob, room))))
    ctx = context(server, bob, room, post)
    assert ctx["event"]["unsigned"]["membership"] == "join"
    assert get_event(server, bob, room, pre).json["unsigned"]["membership"] == "leave"
    assert get_event(server, bob, room, post).json["unsigned"]["membership"] == "join"
    # The creator was joined for everything after its own join.
    assert get_event(server, alice, room, pre).json["unsigned"]["membership"] == "join"


def set_visibility(server, tok, room, hv):
    r = server.request("PUT", f"{V3}/rooms/{room}/state/m.room.history_visibility/",
                       {"history_visibility": hv}, token=tok)
    assert r.status == 200, r


def test_event_hidden_by_history_visibility_is_404(server):
    server.add_user("ce_hv_a")
    bob_id = server.add_user("ce_hv_b")
    alice = login(server, "ce_hv_a")["access_token"]
    bob = login(server, "ce_hv_b")["access_token"]

    # joined: an event from before bob's join is not his to see.
    room = create_room(server, alice, preset="public_chat")
    set_visibility(server, alice, room, "joined")
    before = send(server, alice, room, "before", "ce-hv1")
    join(server, bob, room)
    after = send(server, alice, room, "after", "ce-hv2")
    r = get_event(server, bob, room, before)
    assert (r.status, r.json["errcode"]) == (404, "M_NOT_FOUND"), r
    assert get_event(server, bob, room, after).status == 200

    # invited: an event from before the invite is hidden, after it visible.
    room = create_room(server, alice, preset="private_chat")
    set_visibility(server, alice, room, "invited")
    before = send(server, alice, room, "before", "ce-hv3")
    r = server.request("POST", f"{V3}/rooms/{room}/invite", {"user_id": bob_id}, token=alice)
    assert r.status == 200, r
    between = send(server, alice, room, "between", "ce-hv4")
    join(server, bob, room)
    r = get_event(server, bob, room, before)
    assert (r.status, r.json["errcode"]) == (404, "M_NOT_FOUND"), r
    assert get_event(server, bob, room, between).status == 200

    # Not in a room that is not world-readable: 404 too, not 403.
    room = create_room(server, alice, preset="private_chat")
    eid = send(server, alice, room, "secret", "ce-hv5")
    r = get_event(server, bob, room, eid)
    assert (r.status, r.json["errcode"]) == (404, "M_NOT_FOUND"), r
    # A world-readable one is readable to anyone.
    set_visibility(server, alice, room, "world_readable")
    eid = send(server, alice, room, "public", "ce-hv6")
    assert get_event(server, bob, room, eid).status == 200
    # An event of another room under this room's ID: 404.
    other = create_room(server, alice)
    r = get_event(server, alice, other, eid)
    assert (r.status, r.json["errcode"]) == (404, "M_NOT_FOUND"), r


def members(server, tok, room, at):
    q = urllib.parse.urlencode({"at": at})
    return server.request("GET", f"{V3}/rooms/{room}/members?{q}", token=tok)


def member_ids(r):
    assert r.status == 200, r
    return sorted(e["state_key"] for e in r.json["chunk"]
                  if e["content"]["membership"] == "join")


def test_members_at_a_token(server):
    alice_id = server.add_user("ce_at_a")
    bob_id = server.add_user("ce_at_b")
    carol_id = server.add_user("ce_at_c")
    alice = login(server, "ce_at_a")["access_token"]
    bob = login(server, "ce_at_b")["access_token"]
    carol = login(server, "ce_at_c")["access_token"]
    room = create_room(server, alice, preset="public_chat")
    send(server, alice, room, "hello", "ce-at1")
    r = server.request("GET", V3 + "/sync?timeout=0", token=alice)
    prev_batch = r.json["rooms"]["join"][room]["timeline"]["prev_batch"]
    before_bob = r.json["next_batch"]
    join(server, bob, room)
    send(server, bob, room, "hello back", "ce-at2")

    # Complement's TestGetRoomMembersAtPoint: the prev_batch of a timeline
    # that begins with the room's creation names the room as made.
    assert member_ids(members(server, alice, room, prev_batch)) == [alice_id]
    assert member_ids(members(server, alice, room, before_bob)) == [alice_id]
    now = server.request("GET", V3 + "/sync?timeout=0", token=alice).json["next_batch"]
    assert member_ids(members(server, alice, room, now)) == sorted([alice_id, bob_id])
    # Without `at`: the current members.
    r = server.request("GET", f"{V3}/rooms/{room}/members", token=alice)
    assert member_ids(r) == sorted([alice_id, bob_id])

    # Bob leaves; carol joins after: his view ends at his leave.
    r = server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=bob)
    assert r.status == 200, r
    join(server, carol, room)
    later = server.request("GET", V3 + "/sync?timeout=0", token=alice).json["next_batch"]
    assert member_ids(members(server, bob, room, later)) == [alice_id]
    assert member_ids(members(server, alice, room, later)) == sorted([alice_id, carol_id])

    r = members(server, alice, room, "not-a-token")
    assert (r.status, r.json["errcode"]) == (400, "M_INVALID_PARAM"), r


def test_members_at_hidden_by_history_visibility(server):
    server.add_user("ce_atv_a")
    server.add_user("ce_atv_b")
    alice = login(server, "ce_atv_a")["access_token"]
    bob = login(server, "ce_atv_b")["access_token"]
    room = create_room(server, alice, preset="public_chat")
    set_visibility(server, alice, room, "joined")
    send(server, alice, room, "before", "ce-atv1")
    before_bob = server.request("GET", V3 + "/sync?timeout=0", token=alice).json["next_batch"]
    join(server, bob, room)
    r = members(server, bob, room, before_bob)
    assert (r.status, r.json["errcode"]) == (403, "M_FORBIDDEN"), r
    assert members(server, alice, room, before_bob).status == 200


def test_transaction_ids_expire_after_a_day():
    """As in Synapse, a transaction ID is kept for a day: the hourly sweep
    (the first send after start runs it) deletes older ones, so the table
    does not grow for ever, and a day-old ID makes a new event."""
    from harness import Server
    with Server() as s:
        s.start()
        s.add_user("txnexp")
        tok = s.login("txnexp", device_id="TXNDEV")
        room = create_room(s, tok)
        day_ago = "(extract(epoch from now()) * 1000)::bigint - 25 * 3600 * 1000"
        s.psql("INSERT INTO event_txn_ids (user_id, device_id, txn_id, room_id, event_id, created_ts)"
               f" SELECT user_id, 'TXNDEV', 'old-txn', '{room}', '$gone', {day_ago}"
               " FROM users WHERE user_id LIKE '@txnexp:%'")
        s.psql("INSERT INTO event_txn_ids (user_id, device_id, txn_id, room_id, event_id, created_ts)"
               f" SELECT user_id, 'TXNDEV', 'recent-txn', '{room}', '$kept',"
               " (extract(epoch from now()) * 1000)::bigint - 3600 * 1000"
               " FROM users WHERE user_id LIKE '@txnexp:%'")
        first = send(s, tok, room, "hello", "new-txn")
        assert s.psql("SELECT txn_id FROM event_txn_ids ORDER BY txn_id") == "new-txn\nrecent-txn"
        # The expired ID sends anew; the kept one answers its recorded event.
        assert send(s, tok, room, "again", "old-txn") not in ("$gone", first)
        assert send(s, tok, room, "again", "recent-txn") == "$kept"
        assert send(s, tok, room, "hello", "new-txn") == first
