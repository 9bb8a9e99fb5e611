"""POST /search (full text over joined, unencrypted rooms, history visibility
applied) and GET /timestamp_to_event."""
import base64
import itertools
import time
import urllib.parse

import pytest

V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"
R0 = "/_matrix/client/r0"
_txn = itertools.count()


@pytest.fixture(scope="module")
def users(server):
    out = {}
    for name in ("sr_alice", "sr_bob", "sr_zed"):
        uid = server.add_user(name)
        out[name] = (uid, server.login(name))
    return out


def create(server, tok, **body):
    r = server.request("POST", V3 + "/createRoom", body, token=tok)
    assert r.status == 200, r
    return r.json["room_id"]


def send(server, tok, room, body, etype="m.room.message", content=None):
    c = content or {"msgtype": "m.text", "body": body}
    r = server.request("PUT", f"{V3}/rooms/{room}/send/{etype}/sr{next(_txn)}", c, token=tok)
    assert r.status == 200, r
    return r.json["event_id"]


def search(server, tok, term=None, prefix=V3, next_batch=None, raw=None, **crit):
    body = raw if raw is not None else {"search_categories": {"room_events": {"search_term": term, **crit}}}
    path = prefix + "/search" + ("?next_batch=" + urllib.parse.quote(next_batch) if next_batch else "")
    return server.request("POST", path, body, token=tok)


def hit_ids(r):
    return [x["result"]["event_id"] for x in r.json["search_categories"]["room_events"]["results"]]


def test_finds_messages_names_topics(server, users):
    _, a = users["sr_alice"]
    room = create(server, a, name="Zanzibar harbour", topic="Quokka sightings")
    m1 = send(server, a, room, "the quokkas are smiling today")
    send(server, a, room, "nothing to see here")
    r = search(server, a, "quokka")
    assert r.status == 200
    re = r.json["search_categories"]["room_events"]
    found = hit_ids(r)
    assert m1 in found and len(found) == 2                 # the message and the topic
    assert re["count"] == 2
    assert "quokkas" in re["highlights"] or "quokka" in re["highlights"]
    res = re["results"][0]
    assert res["rank"] > 0 and res["result"]["room_id"] == room
    types = {x["result"]["type"] for x in re["results"]}
    assert types == {"m.room.message", "m.room.topic"}
    # keys narrow the fields searched
    r = search(server, a, "quokka", keys=["content.body"])
    assert hit_ids(r) == [m1]
    r = search(server, a, "zanzibar", keys=["content.name"])
    assert [x["result"]["type"] for x in r.json["search_categories"]["room_events"]["results"]] == [
        "m.room.name"]
    assert hit_ids(search(server, a, "zanzibar", keys=["content.topic"])) == []
    # stemming and websearch syntax
    assert m1 in hit_ids(search(server, a, "smile"))
    assert m1 not in hit_ids(search(server, a, "quokka -smiling"))
    # r0 path
    assert search(server, a, "quokka", prefix=R0).status == 200


def test_only_joined_and_visible(server, users):
    _, a = users["sr_alice"]
    _, b = users["sr_bob"]
    _, z = users["sr_zed"]
    room = create(server, a, preset="public_chat", initial_state=[
        {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}])
    early = send(server, a, room, "wombat before bob")
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b).status == 200
    late = send(server, a, room, "wombat after bob")
    assert hit_ids(search(server, b, "wombat")) == [late]
    assert set(hit_ids(search(server, a, "wombat"))) == {early, late}
    assert hit_ids(search(server, z, "wombat")) == []       # not in the room
    # encrypted events are never indexed
    enc = create(server, a, initial_state=[{"type": "m.room.encryption",
                                            "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    send(server, a, enc, None, "m.room.encrypted", {"algorithm": "m.megolm.v1.aes-sha2",
                                                    "ciphertext": "wombat", "sender_key": "k",
                                                    "session_id": "s", "device_id": "D"})
    assert all(x != enc for x in (h["result"]["room_id"] for h in
               search(server, a, "wombat").json["search_categories"]["room_events"]["results"]))
    # redacted messages drop out
    r = server.request("PUT", f"{V3}/rooms/{room}/redact/{late}/sr{next(_txn)}", {}, token=a)
    assert r.status == 200
    assert hit_ids(search(server, a, "wombat")) == [early]


def test_order_pagination_and_groups(server, users):
    a_id, a = users["sr_alice"]
    r1 = create(server, a)
    r2 = create(server, a)
    ids = []
    for i in range(5):
        ids.append(send(server, a, r1 if i % 2 == 0 else r2, f"platypus number {i}"))
        time.sleep(0.002)
    f = {"limit": 2}
    r = search(server, a, "platypus", order_by="recent", filter=f,
               groupings={"group_by": [{"key": "room_id"}, {"key": "sender"}]})
    assert r.status == 200
    re = r.json["search_categories"]["room_events"]
    assert hit_ids(r) == [ids[4], ids[3]] and re["count"] == 5
    groups = re["groups"]["room_id"]
    assert groups[r1]["results"] == [ids[4]] and groups[r2]["results"] == [ids[3]]
    assert groups[r1]["order"] == 1 and groups[r2]["order"] == 2
    assert re["groups"]["sender"][a_id]["results"] == [ids[4], ids[3]]
    seen = hit_ids(r)
    nb = re["next_batch"]
    while nb:
        r = search(server, a, "platypus", order_by="recent", filter=f, next_batch=nb)
        assert r.status == 200
        seen += hit_ids(r)
        nb = r.json["search_categories"]["room_events"].get("next_batch")
    assert seen == ids[::-1]
    # a group's token stays in its group
    g = search(server, a, "platypus", order_by="recent", filter={"limit": 1},
               groupings={"group_by": [{"key": "room_id"}]})
    tok = g.json["search_categories"]["room_events"]["groups"]["room_id"][r1]["next_batch"]
    r = search(server, a, "platypus", order_by="recent", filter={"limit": 1}, next_batch=tok)
    assert hit_ids(r) == [ids[2]]
    # rank order pages too, with no repeats
    seen, nb = [], None
    for _ in range(6):
        r = search(server, a, "platypus", filter=f, next_batch=nb)
        seen += hit_ids(r)
        nb = r.json["search_categories"]["room_events"].get("next_batch")
        if not nb:
            break
    assert sorted(seen) == sorted(ids)
    # the filter: rooms, senders
    assert set(hit_ids(search(server, a, "platypus", filter={"rooms": [r2]}))) == {ids[1], ids[3]}
    assert hit_ids(search(server, a, "platypus", filter={"not_senders": [a_id]})) == []


def test_context_profile_state(server, users):
    a_id, a = users["sr_alice"]
    server.request("PUT", f"{V3}/profile/{urllib.parse.quote(a_id)}/displayname",
                   {"displayname": "Alice S"}, token=a)
    room = create(server, a, name="context room")
    before = [send(server, a, room, f"b{i}") for i in range(3)]
    hit = send(server, a, room, "echidna spotted")
    after = [send(server, a, room, f"a{i}") for i in range(3)]
    r = search(server, a, "echidna", include_state=True, event_context={
        "before_limit": 2, "after_limit": 1, "include_profile": True})
    assert r.status == 200
    re = r.json["search_categories"]["room_events"]
    ctx = re["results"][0]["context"]
    assert [e["event_id"] for e in ctx["events_before"]] == [before[2], before[1]]
    assert [e["event_id"] for e in ctx["events_after"]] == [after[0]]
    assert ctx["profile_info"][a_id]["displayname"] == "Alice S"
    assert ctx["start"].startswith("t") and ctx["end"].startswith("t")
    # the tokens work with /messages
    m = server.request("GET", f"{V3}/rooms/{room}/messages?dir=f&limit=1&from={ctx['end']}", token=a)
    assert m.json["chunk"][0]["event_id"] == after[1]
    assert any(e["type"] == "m.room.name" for e in re["state"][room])
    # without event_context, no context
    r = search(server, a, "echidna")
    assert "context" not in r.json["search_categories"]["room_events"]["results"][0]
    assert "state" not in r.json["search_categories"]["room_events"]


def test_errors(server, users):
    _, a = users["sr_alice"]
    assert search(server, None, "x").status == 401
    r = server.request("POST", V3 + "/search", raw=b"{not json", token=a)
    assert r.status == 400 and r.json["errcode"] == "M_NOT_JSON"
    cases = [
        ({}, "M_MISSING_PARAM"),
        ({"search_categories": []}, "M_BAD_JSON"),
        ({"search_categories": {"room_events": {}}}, "M_MISSING_PARAM"),
        ({"search_categories": {"room_events": {"search_term": 5}}}, "M_BAD_JSON"),
        ({"search_categories": {"room_events": {"search_term": "x", "keys": ["content.url"]}}},
         "M_INVALID_PARAM"),
        ({"search_categories": {"room_events": {"search_term": "x", "order_by": "best"}}},
         "M_INVALID_PARAM"),
        ({"search_categories": {"room_events": {"search_term": "x", "filter": {"limit": -1}}}},
         "M_BAD_JSON"),
        ({"search_categories": {"room_events": {"search_term": "x",
                                                "groupings": {"group_by": [{"key": "type"}]}}}},
         "M_INVALID_PARAM"),
        ({"search_categories": {"room_events": {"search_term": "x",
                                                "event_context": {"before_limit": -1}}}},
         "M_BAD_JSON"),
    ]
    for body, code in cases:
        r = search(server, a, raw=body)
        assert r.status == 400 and r.json["errcode"] == code, (body, r)
    # A filter limit of 0 is a filter /sync takes; a search page holds one.
    r = search(server, a, raw={"search_categories": {"room_events": {"search_term": "x",
                                                                      "filter": {"limit": 0}}}})
    assert r.status == 200, r
    for nb in ("!!!", base64.urlsafe_b64encode(b"nonsense").decode(),
               base64.urlsafe_b64encode(b"all\n\nnot,numbers").decode().rstrip("=")):
        r = search(server, a, "x", order_by="recent", next_batch=nb)
        assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", nb
    # no room_events asked: nothing searched
    r = search(server, a, raw={"search_categories": {}})
    assert r.status == 200 and r.json == {"search_categories": {}}
    # stop words only: no hits, no error
    r = search(server, a, "the")
    assert r.status == 200 and hit_ids(r) == []


def test_timestamp_to_event(server, users):
    _, a = users["sr_alice"]
    _, z = users["sr_zed"]
    room = create(server, a)
    e1 = send(server, a, room, "first")
    time.sleep(0.01)
    mid = int(time.time() * 1000)
    time.sleep(0.01)
    e2 = send(server, a, room, "second")
    q = f"{V1}/rooms/{room}/timestamp_to_event"
    r = server.request("GET", f"{q}?ts={mid}&dir=f", token=a)
    assert r.status == 200 and r.json["event_id"] == e2
    ev = server.request("GET", f"{V3}/rooms/{room}/event/{e2}", token=a).json
    assert r.json["origin_server_ts"] == ev["origin_server_ts"]
    r = server.request("GET", f"{q}?ts={mid}&dir=b", token=a)
    assert r.status == 200 and r.json["event_id"] == e1
    r = server.request("GET", f"{q}?ts={mid + 3600_000}&dir=f", token=a)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    for path, code in ((f"{q}?dir=f", "M_MISSING_PARAM"), (f"{q}?ts={mid}", "M_MISSING_PARAM"),
                       (f"{q}?ts=soon&dir=f", "M_INVALID_PARAM"),
                       (f"{q}?ts={mid}&dir=x", "M_INVALID_PARAM")):
        r = server.request("GET", path, token=a)
        assert r.status == 400 and r.json["errcode"] == code, path
    r = server.request("GET", f"{q}?ts={mid}&dir=f", token=z)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    assert server.request("GET", f"{q}?ts={mid}&dir=f").status == 401


def test_ignored_users_messages_are_not_found(server):
    me_id = server.add_user("sr_ign_me")
    me = server.login("sr_ign_me")
    pest_id = server.add_user("sr_ign_pest")
    pest = server.login("sr_ign_pest")
    room = create(server, me, preset="public_chat")
    assert server.request("POST", f"{V3}/join/{room}", {}, token=pest).status == 200
    mine = send(server, me, room, "aardvark sighting")
    theirs = send(server, pest, room, "aardvark spam")
    assert set(hit_ids(search(server, me, "aardvark"))) == {mine, theirs}
    r = server.request("PUT", f"{V3}/user/{me_id}/account_data/m.ignored_user_list",
                       {"ignored_users": {pest_id: {}}}, token=me)
    assert r.status == 200, r
    assert hit_ids(search(server, me, "aardvark")) == [mine]
