"""Relations (v1.3+): /relations with filters, pagination and recursion,
/threads, the checks on sending relations, and bundled aggregations
(unsigned.m.relations) on every read path."""
import itertools
import urllib.parse

import pytest

V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"
_txn = itertools.count()


@pytest.fixture(scope="module")
def users(server):
    out = {}
    for name in ("rl_alice", "rl_bob", "rl_carol", "rl_zed"):
        uid = server.add_user(name)
        out[name] = (uid, server.login(name))
    return out


def create(server, tok, **body):
    r = server.request("POST", V3 + "/createRoom", body, token=tok)
    assert r.status == 200, r
    return r.json["room_id"]


def join(server, tok, room):
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=tok).status == 200


def send(server, tok, room, content, etype="m.room.message", expect=200):
    r = server.request("PUT", f"{V3}/rooms/{room}/send/{etype}/rl{next(_txn)}", content, token=tok)
    assert r.status == expect, r
    return r.json.get("event_id") if expect == 200 else r


def msg(body, rel=None, **extra):
    c = {"msgtype": "m.text", "body": body, **extra}
    if rel:
        c["m.relates_to"] = rel
    return c


def thread(root):
    return {"rel_type": "m.thread", "event_id": root}


def edit(target, new_body):
    return msg("* " + new_body, {"rel_type": "m.replace", "event_id": target},
               **{"m.new_content": {"msgtype": "m.text", "body": new_body}})


def react(server, tok, room, target, key, expect=200):
    return send(server, tok, room, {"m.relates_to": {"rel_type": "m.annotation", "event_id": target,
                                                     "key": key}}, "m.reaction", expect)


def redact(server, tok, room, event_id):
    r = server.request("PUT", f"{V3}/rooms/{room}/redact/{event_id}/rl{next(_txn)}", {}, token=tok)
    assert r.status == 200, r


def relations(server, tok, room, parent, *path, **q):
    p = "/".join([f"{V1}/rooms/{room}/relations/{urllib.parse.quote(parent)}", *path])
    return server.request("GET", p + ("?" + urllib.parse.urlencode(q) if q else ""), token=tok)


def ids(chunk):
    return [e["event_id"] for e in chunk]


def event(server, tok, room, event_id):
    r = server.request("GET", f"{V3}/rooms/{room}/event/{event_id}", token=tok)
    assert r.status == 200, r
    return r.json


def timeline_event(server, tok, room, event_id):
    r = server.request("GET", f"{V3}/rooms/{room}/messages?dir=b&limit=100", token=tok)
    assert r.status == 200
    return next(e for e in r.json["chunk"] if e["event_id"] == event_id)


def test_children_filters_and_order(server, users):
    _, a = users["rl_alice"]
    room = create(server, a)
    root = send(server, a, room, msg("root"))
    t1 = send(server, a, room, msg("t1", thread(root)))
    r1 = react(server, a, room, root, "👍")
    e1 = send(server, a, room, edit(root, "root v2"))
    unrelated = send(server, a, room, msg("plain"))
    r = relations(server, a, room, root)
    assert r.status == 200
    assert ids(r.json["chunk"]) == [e1, r1, t1]          # newest first
    assert unrelated not in ids(r.json["chunk"])
    assert "next_batch" not in r.json and "prev_batch" not in r.json
    assert "recursion_depth" not in r.json
    assert all(e["room_id"] == room for e in r.json["chunk"])
    assert ids(relations(server, a, room, root, "m.thread").json["chunk"]) == [t1]
    assert ids(relations(server, a, room, root, "m.annotation", "m.reaction").json["chunk"]) == [r1]
    assert relations(server, a, room, root, "m.annotation", "m.room.message").json["chunk"] == []
    assert ids(relations(server, a, room, root, dir="f").json["chunk"]) == [t1, r1, e1]
    # r0 never had this endpoint, and v3 is not its home
    assert server.request("GET", f"{V3}/rooms/{room}/relations/{root}", token=a).status == 404


def test_pagination(server, users):
    _, a = users["rl_alice"]
    room = create(server, a)
    root = send(server, a, room, msg("root"))
    kids = [send(server, a, room, msg(f"k{i}", thread(root))) for i in range(5)]
    seen, tok = [], None
    for _ in range(10):
        q = {"limit": "2"}
        if tok:
            q["from"] = tok
        r = relations(server, a, room, root, **q)
        assert r.status == 200
        assert len(r.json["chunk"]) <= 2
        if tok:
            assert r.json["prev_batch"] == tok
        seen += ids(r.json["chunk"])
        tok = r.json.get("next_batch")
        if not tok:
            break
    assert seen == kids[::-1]
    # forwards, and a `to` bound from an earlier page
    r = relations(server, a, room, root, dir="f", limit="3")
    assert ids(r.json["chunk"]) == kids[:3]
    r2 = relations(server, a, room, root, dir="f", **{"from": r.json["next_batch"]})
    assert ids(r2.json["chunk"]) == kids[3:]
    first = relations(server, a, room, root, limit="1")
    r = relations(server, a, room, root, to=first.json["next_batch"])
    assert ids(r.json["chunk"]) == [kids[-1]]
    # a /messages or /sync token is a valid starting point
    nb = server.request("GET", V3 + "/sync?timeout=0", token=a).json["next_batch"]
    assert ids(relations(server, a, room, root, limit="1", **{"from": nb}).json["chunk"]) == [kids[-1]]
    assert relations(server, a, room, root, limit="0").json["chunk"] == []


def test_recurse(server, users):
    _, a = users["rl_alice"]
    room = create(server, a)
    root = send(server, a, room, msg("root"))
    reply = send(server, a, room, msg("in thread", thread(root)))
    reaction = react(server, a, room, reply, "🎉")
    edit_of_reply = send(server, a, room, edit(reply, "in thread, edited"))
    r = relations(server, a, room, root, recurse="true")
    assert r.status == 200 and r.json["recursion_depth"] == 3
    assert set(ids(r.json["chunk"])) == {reply, reaction, edit_of_reply}
    r = relations(server, a, room, root, recurse="false")
    assert ids(r.json["chunk"]) == [reply] and r.json["recursion_depth"] == 1
    # filters apply to every event returned, direct or not
    r = relations(server, a, room, root, "m.annotation", recurse="true")
    assert ids(r.json["chunk"]) == [reaction]
    r = relations(server, a, room, root, "m.thread", recurse="true")
    assert ids(r.json["chunk"]) == [reply]


def test_errors(server, users):
    _, a = users["rl_alice"]
    _, z = users["rl_zed"]
    room = create(server, a)
    other = create(server, a)
    root = send(server, a, room, msg("root"))
    assert server.request("GET", f"{V1}/rooms/{room}/relations/{root}").status == 401
    r = server.request("GET", f"{V1}/rooms/{room}/relations/{root}", token="nope")
    assert r.status == 401 and r.json["errcode"] == "M_UNKNOWN_TOKEN"
    for q in ({"dir": "x"}, {"limit": "-1"}, {"limit": "ten"}, {"recurse": "yes"},
              {"from": "bogus"}, {"to": "bogus"}):
        r = relations(server, a, room, root, **q)
        assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", q
    for r in (relations(server, a, room, "$unknown"), relations(server, a, other, root),
              relations(server, z, room, root)):
        assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"


def test_history_visibility(server, users):
    _, a = users["rl_alice"]
    _, b = users["rl_bob"]
    room = create(server, a, preset="public_chat", initial_state=[
        {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}])
    old = send(server, a, room, msg("before bob"))
    send(server, a, room, msg("old reply", thread(old)))
    join(server, b, room)
    r = relations(server, b, room, old)
    assert r.status == 404                     # the parent is history bob may not see
    new = send(server, a, room, msg("after bob"))
    reply = send(server, a, room, msg("new reply", thread(new)))
    assert ids(relations(server, b, room, new).json["chunk"]) == [reply]
    # children sent after bob left are hidden under a parent he saw
    seen = send(server, a, room, msg("root2"))
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=b).status == 200
    send(server, a, room, msg("while away", thread(seen)))
    r = relations(server, b, room, seen)
    assert r.status == 200 and r.json["chunk"] == []
    assert len(relations(server, a, room, seen).json["chunk"]) == 1


def test_send_checks(server, users):
    _, a = users["rl_alice"]
    _, b = users["rl_bob"]
    room = create(server, a, preset="public_chat")
    join(server, b, room)
    other = create(server, a)
    root = send(server, a, room, msg("root"))
    elsewhere = send(server, a, other, msg("elsewhere"))
    first = react(server, b, room, root, "👍")
    r = react(server, b, room, root, "👍", expect=400)
    assert r.json["errcode"] == "M_DUPLICATE_ANNOTATION"
    react(server, a, room, root, "👍")               # someone else may
    react(server, b, room, root, "👎")               # and another key
    redact(server, b, room, first)
    react(server, b, room, root, "👍")               # once the first is redacted
    r = react(server, b, room, root, "x" * 501, expect=400)
    assert r.json["errcode"] == "M_UNKNOWN"
    r = send(server, b, room, {"m.relates_to": {"rel_type": "m.annotation", "event_id": root}},
             "m.reaction", expect=400)
    assert r.json["errcode"] == "M_UNKNOWN"
    # threads cannot grow off a child
    child = send(server, a, room, msg("child", thread(root)))
    r = send(server, a, room, msg("nested", thread(child)), expect=400)
    assert r.json["errcode"] == "M_UNKNOWN"
    r = send(server, a, room, msg("nested", thread(first)), expect=400)
    assert r.json["errcode"] == "M_UNKNOWN"
    # the parent must be known, and in this room
    r = send(server, a, room, msg("x", thread("$nowhere")), expect=400)
    assert r.json["errcode"] == "M_UNKNOWN"
    r = send(server, a, room, msg("x", {"rel_type": "m.reference", "event_id": elsewhere}), expect=400)
    assert r.json["errcode"] == "M_UNKNOWN"
    # replies carry no rel_type and are not relations here
    send(server, a, room, msg("reply", {"m.in_reply_to": {"event_id": "$nowhere"}}))
    # a non-member is refused by the auth rules first, learning nothing
    _, z = users["rl_zed"]
    r = send(server, z, room, msg("x", thread("$nowhere")), expect=403)
    assert r.json["errcode"] == "M_FORBIDDEN"


def test_thread_aggregation(server, users):
    a_id, a = users["rl_alice"]
    b_id, b = users["rl_bob"]
    _, c = users["rl_carol"]
    room = create(server, a, preset="public_chat")
    join(server, b, room)
    join(server, c, room)
    root = send(server, a, room, msg("root"))
    send(server, b, room, msg("one", thread(root)))
    last = send(server, b, room, msg("two", thread(root)))
    last_edit = send(server, b, room, edit(last, "two!"))
    t = timeline_event(server, c, room, root)["unsigned"]["m.relations"]["m.thread"]
    assert t["count"] == 2 and t["current_user_participated"] is False
    assert t["latest_event"]["event_id"] == last
    # the latest event carries its own aggregations, in the same format
    assert t["latest_event"]["unsigned"]["m.relations"]["m.replace"]["event_id"] == last_edit
    assert t["latest_event"]["room_id"] == room
    assert timeline_event(server, a, room, root)["unsigned"]["m.relations"]["m.thread"][
        "current_user_participated"] is True          # the root's sender
    send(server, c, room, msg("three", thread(root)))
    t = event(server, c, room, root)["unsigned"]["m.relations"]["m.thread"]
    assert t["count"] == 3 and t["current_user_participated"] is True
    # /context, /sync and /event bundle too; /sync's events have no room_id
    ctx = server.request("GET", f"{V3}/rooms/{room}/context/{root}", token=c).json
    assert ctx["event"]["unsigned"]["m.relations"]["m.thread"]["count"] == 3
    tl = server.request("GET", V3 + "/sync?timeout=0", token=c).json["rooms"]["join"][room]
    synced = next(e for e in tl["timeline"]["events"] if e["event_id"] == root)
    st = synced["unsigned"]["m.relations"]["m.thread"]
    assert st["count"] == 3 and "room_id" not in st["latest_event"]
    # ignored users drop out of count and latest event
    server.request("PUT", f"{V3}/user/{urllib.parse.quote(a_id)}/account_data/m.ignored_user_list",
                   {"ignored_users": {b_id: {}}}, token=a)
    try:
        t = timeline_event(server, a, room, root)["unsigned"]["m.relations"]["m.thread"]
        assert t["count"] == 1 and t["latest_event"]["sender"] != b_id
    finally:
        server.request("PUT", f"{V3}/user/{urllib.parse.quote(a_id)}/account_data/m.ignored_user_list",
                       {"ignored_users": {}}, token=a)
    # state events get no bundle
    name = server.request("PUT", f"{V3}/rooms/{room}/state/m.room.name", {"name": "n"}, token=a).json
    send(server, a, room, msg("x", {"rel_type": "m.reference", "event_id": name["event_id"]}))
    st = timeline_event(server, a, room, name["event_id"])
    assert "m.relations" not in st["unsigned"]


def test_edit_aggregation(server, users):
    _, a = users["rl_alice"]
    _, b = users["rl_bob"]
    room = create(server, a, preset="public_chat")
    join(server, b, room)
    orig = send(server, a, room, msg("v1"))
    e2 = send(server, a, room, edit(orig, "v2"))
    e3 = send(server, a, room, edit(orig, "v3"))
    send(server, b, room, edit(orig, "bob's"))          # not the sender: ignored
    send(server, a, room, msg("* no new content", {"rel_type": "m.replace", "event_id": orig}))
    send(server, a, room, {"m.relates_to": {"rel_type": "m.replace", "event_id": orig},
                           "m.new_content": {"x": 1}}, "m.custom")  # other type: ignored
    rel = event(server, b, room, orig)["unsigned"]["m.relations"]
    assert rel["m.replace"]["event_id"] == e3
    assert rel["m.replace"]["content"]["m.new_content"]["body"] == "v3"
    assert event(server, b, room, orig)["content"]["body"] == "v1"  # never replaced by the server
    # edits of edits do not count; edits themselves carry no bundle
    send(server, a, room, edit(e3, "edit of edit"))
    assert "m.relations" not in event(server, a, room, e3)["unsigned"]
    # a redacted edit falls back to the one before
    redact(server, a, room, e3)
    assert event(server, a, room, orig)["unsigned"]["m.relations"]["m.replace"]["event_id"] == e2
    # a redacted original bundles no edit at all
    redact(server, a, room, orig)
    assert "m.replace" not in event(server, a, room, orig)["unsigned"].get("m.relations", {})


def test_reference_aggregation(server, users):
    _, a = users["rl_alice"]
    room = create(server, a)
    target = send(server, a, room, msg("poll"))
    refs = [send(server, a, room, {"body": "vote", "m.relates_to": {
        "rel_type": "m.reference", "event_id": target}}, "m.poll.response") for _ in range(2)]
    react(server, a, room, target, "👀")
    rel = timeline_event(server, a, room, target)["unsigned"]["m.relations"]
    assert rel["m.reference"] == {"chunk": [{"event_id": refs[0]}, {"event_id": refs[1]}]}
    assert "m.annotation" not in rel                      # not aggregated (spec v1.7)
    redact(server, a, room, refs[0])
    rel = timeline_event(server, a, room, target)["unsigned"]["m.relations"]
    assert rel["m.reference"] == {"chunk": [{"event_id": refs[1]}]}


def threads(server, tok, room, **q):
    return server.request("GET", f"{V1}/rooms/{room}/threads" + ("?" + urllib.parse.urlencode(q) if q else ""),
                          token=tok)


def test_threads_list(server, users):
    a_id, a = users["rl_alice"]
    b_id, b = users["rl_bob"]
    _, z = users["rl_zed"]
    room = create(server, a, preset="public_chat")
    join(server, b, room)
    r1 = send(server, a, room, msg("root 1"))
    r2 = send(server, b, room, msg("root 2"))
    r3 = send(server, b, room, msg("root 3"))
    send(server, b, room, msg("not a thread"))
    send(server, a, room, msg("x", thread(r1)))
    send(server, b, room, msg("x", thread(r2)))
    send(server, b, room, msg("x", thread(r3)))
    send(server, b, room, msg("bump", thread(r1)))      # r1 is now the most recent thread
    r = threads(server, a, room)
    assert r.status == 200 and ids(r.json["chunk"]) == [r1, r3, r2]
    assert r.json["chunk"][0]["unsigned"]["m.relations"]["m.thread"]["count"] == 2
    assert "next_batch" not in r.json
    # participated: a started r1 and posted in it; b's r2 and r3 are not hers
    assert ids(threads(server, a, room, include="participated").json["chunk"]) == [r1]
    assert ids(threads(server, b, room, include="participated").json["chunk"]) == [r1, r3, r2]
    page = threads(server, a, room, limit="2")
    assert ids(page.json["chunk"]) == [r1, r3]
    rest = threads(server, a, room, limit="2", **{"from": page.json["next_batch"]})
    assert ids(rest.json["chunk"]) == [r2] and "next_batch" not in rest.json
    # roots of ignored users come redacted
    server.request("PUT", f"{V3}/user/{urllib.parse.quote(a_id)}/account_data/m.ignored_user_list",
                   {"ignored_users": {b_id: {}}}, token=a)
    try:
        chunk = threads(server, a, room).json["chunk"]
        assert next(e for e in chunk if e["event_id"] == r3)["content"] == {}
        assert next(e for e in chunk if e["event_id"] == r1)["content"]["body"] == "root 1"
    finally:
        server.request("PUT", f"{V3}/user/{urllib.parse.quote(a_id)}/account_data/m.ignored_user_list",
                       {"ignored_users": {}}, token=a)
    # errors
    for q in ({"include": "mine"}, {"limit": "0"}, {"limit": "x"}, {"from": "bogus"}):
        r = threads(server, a, room, **q)
        assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", q
    r = threads(server, z, room)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = threads(server, a, "!nowhere:example.org")
    assert r.status == 403
    assert server.request("GET", f"{V1}/rooms/{room}/threads").status == 401
