"""Spaces (issue 7): m.space rooms and their m.space.child events, browsed
with GET /_matrix/client/v1/rooms/{roomId}/hierarchy (depth first, ordered
children, suggested_only, max_depth, pagination); restricted and
knock_restricted joins through space membership (a local member authorises
the join); room summaries (GET /_matrix/client/v1/room_summary). Rooms on
other servers (federation /hierarchy) are for the federation tests."""
import urllib.parse

import pytest

MEGOLM = "m.megolm.v1.aes-sha2"


def q(s):
    return urllib.parse.quote(s, safe="")


def create(s, tok, body):
    r = s.request("POST", "/_matrix/client/v3/createRoom", body, token=tok)
    assert r.status == 200, r
    return r.json["room_id"]


def add_child(s, tok, space, child, **content):
    content.setdefault("via", [s.server_name])
    r = s.request("PUT", f"/_matrix/client/v3/rooms/{q(space)}/state/m.space.child/{q(child)}", content,
                  token=tok)
    assert r.status == 200, r


def join(s, tok, room):
    return s.request("POST", f"/_matrix/client/v3/join/{q(room)}", {}, token=tok)


def hierarchy(s, tok, room, query=""):
    return s.request("GET", f"/_matrix/client/v1/rooms/{q(room)}/hierarchy{query}", token=tok)


def ids(r):
    assert r.status == 200, r
    return [x["room_id"] for x in r.json["rooms"]]


@pytest.fixture(scope="module")
def space(server):
    t, u = {}, {}
    for n in ("sp_alice", "sp_bob", "sp_carol"):
        u[n] = server.add_user(n)
        t[n] = server.login(n)
    a = t["sp_alice"]
    rooms = {}
    rooms["S"] = create(server, a, {"preset": "private_chat", "name": "sp family", "room_alias_name": "sp-family",
                                    "creation_content": {"type": "m.space"}, "invite": [u["sp_bob"]],
                                    "initial_state": [{"type": "m.room.encryption", "state_key": "",
                                                       "content": {"algorithm": MEGOLM}}]})
    assert join(server, t["sp_bob"], rooms["S"]).status == 200
    rooms["A"] = create(server, a, {"preset": "public_chat", "name": "sp general", "topic": "all"})
    rooms["B"] = create(server, a, {"preset": "private_chat", "name": "sp restricted", "initial_state": [
        {"type": "m.room.join_rules", "state_key": "",
         "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": rooms["S"]}]}}]})
    rooms["C"] = create(server, a, {"preset": "private_chat", "name": "sp secret"})
    rooms["SS"] = create(server, a, {"preset": "public_chat", "name": "sp subspace",
                                     "creation_content": {"type": "m.space"}})
    rooms["D"] = create(server, a, {"preset": "public_chat", "name": "sp deep"})
    rooms["E"] = create(server, a, {"preset": "public_chat", "name": "sp removed"})
    add_child(server, a, rooms["S"], rooms["A"], suggested=True, order="a")
    add_child(server, a, rooms["S"], rooms["B"], order="b")
    add_child(server, a, rooms["S"], rooms["C"])
    add_child(server, a, rooms["S"], rooms["SS"], suggested=True)
    add_child(server, a, rooms["S"], rooms["E"], via=[])          # a removed child: no via
    add_child(server, a, rooms["SS"], rooms["D"])
    return rooms, t, u


def test_hierarchy_depth_first_in_order(server, space):
    rooms, t, u = space
    r = hierarchy(server, t["sp_bob"], rooms["S"])
    # C is private and Bob is not in it; E has no via; order "a" < "b" < none.
    assert ids(r) == [rooms[k] for k in ("S", "A", "B", "SS", "D")]
    assert "next_batch" not in r.json
    root = r.json["rooms"][0]
    assert root["room_type"] == "m.space" and root["name"] == "sp family"
    assert root["canonical_alias"] == f"#sp-family:{server.server_name}"
    assert root["num_joined_members"] == 2 and root["join_rule"] == "invite"
    assert root["encryption"] == MEGOLM and root["room_version"]
    kids = root["children_state"]
    assert [k["state_key"] for k in kids] == [rooms[k] for k in ("A", "B", "C", "SS")]
    assert kids[0] == {"type": "m.space.child", "state_key": rooms["A"], "sender": u["sp_alice"],
                       "content": {"via": [server.server_name], "suggested": True, "order": "a"},
                       "origin_server_ts": kids[0]["origin_server_ts"]}
    general = r.json["rooms"][1]
    assert general["children_state"] == [] and general["topic"] == "all" and general["join_rule"] == "public"
    assert r.json["rooms"][2]["allowed_room_ids"] == [rooms["S"]]
    # v1.15 (MSC3266): every chunk names its room version; only encrypted
    # rooms have "encryption", only restricted ones "allowed_room_ids".
    assert all(x["room_version"] == "12" for x in r.json["rooms"])
    assert "encryption" not in general and "allowed_room_ids" not in general
    assert "allowed_room_ids" not in root
    # Alice sees her private room too.
    assert ids(hierarchy(server, t["sp_alice"], rooms["S"])) == [rooms[k] for k in ("S", "A", "B", "C", "SS", "D")]


def test_hierarchy_options(server, space):
    rooms, t, u = space
    b = t["sp_bob"]
    assert ids(hierarchy(server, b, rooms["S"], "?max_depth=0")) == [rooms["S"]]
    assert ids(hierarchy(server, b, rooms["S"], "?max_depth=1")) == [rooms[k] for k in ("S", "A", "B", "SS")]
    assert ids(hierarchy(server, b, rooms["S"], "?suggested_only=true")) == [rooms[k] for k in ("S", "A", "SS")]
    r = hierarchy(server, b, rooms["S"], "?suggested_only=true")
    assert [k["state_key"] for k in r.json["rooms"][0]["children_state"]] == [rooms["A"], rooms["SS"]]
    # Pages of two.
    pages, tok = [], None
    while True:
        r = hierarchy(server, b, rooms["S"], "?limit=2" + (f"&from={q(tok)}" if tok else ""))
        pages.append(ids(r))
        tok = r.json.get("next_batch")
        if not tok:
            break
    assert pages == [[rooms["S"], rooms["A"]], [rooms["B"], rooms["SS"]], [rooms["D"]]]
    r = hierarchy(server, b, rooms["S"], "?limit=2")
    tok = r.json["next_batch"]
    for bad in (f"?from={q(tok)}&suggested_only=true", f"?from={q(tok)}&max_depth=1", "?from=nope"):
        r = hierarchy(server, b, rooms["S"], bad)
        assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", (bad, r)
    # Another user can't continue Bob's walk.
    r = hierarchy(server, t["sp_alice"], rooms["S"], f"?from={q(tok)}")
    assert r.status == 400
    for bad in ("?limit=0", "?limit=x", "?max_depth=-1", "?suggested_only=maybe"):
        r = hierarchy(server, b, rooms["S"], bad)
        assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", (bad, r)


def test_hierarchy_refusals(server, space):
    rooms, t, u = space
    r = hierarchy(server, t["sp_carol"], rooms["S"])
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = hierarchy(server, t["sp_bob"], "!unknown:" + server.server_name)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    assert hierarchy(server, None, rooms["S"]).status == 401
    # A public subspace is open to anyone.
    assert ids(hierarchy(server, t["sp_carol"], rooms["SS"])) == [rooms["SS"], rooms["D"]]


def test_restricted_join_through_the_space(server, space):
    rooms, t, u = space
    r = join(server, t["sp_carol"], rooms["B"])
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
    r = join(server, t["sp_bob"], rooms["B"])
    assert r.status == 200, r
    ev = server.request("GET", f"/_matrix/client/v3/rooms/{q(rooms['B'])}/state/m.room.member/{q(u['sp_bob'])}",
                        token=t["sp_bob"]).json
    assert ev["membership"] == "join" and ev["join_authorised_via_users_server"] == u["sp_alice"]
    # Once in, a join (a profile update) needs no authoriser.
    r = join(server, t["sp_bob"], rooms["B"])
    assert r.status == 200
    # A client's join -> join naming one (copied from its member event, or
    # made up: Complement's TestRestrictedRoomsLocalJoin) has it dropped, as
    # in Synapse, rather than refused for the missing signature.
    r = server.request("PUT", f"/_matrix/client/v3/rooms/{q(rooms['B'])}/state/m.room.member/{q(u['sp_bob'])}",
                       {"membership": "join", "displayname": "Bobby", "join_authorised_via_users_server": "unused"},
                       token=t["sp_bob"])
    assert r.status == 200, r
    ev = server.request("GET", f"/_matrix/client/v3/rooms/{q(rooms['B'])}/state/m.room.member/{q(u['sp_bob'])}",
                        token=t["sp_bob"]).json
    assert ev == {"membership": "join", "displayname": "Bobby"}, ev
    # Nobody here may invite: the join can't be granted.
    b2 = create(server, t["sp_alice"], {"preset": "private_chat", "room_version": "10",
                                        "power_level_content_override": {"invite": 150}, "initial_state": [
        {"type": "m.room.join_rules", "state_key": "",
         "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": rooms["S"]}]}}]})
    r = join(server, t["sp_bob"], b2)
    assert r.status == 400 and r.json["errcode"] == "M_UNABLE_TO_GRANT_JOIN", r


def test_knock_restricted(server, space):
    rooms, t, u = space
    k = create(server, t["sp_alice"], {"preset": "private_chat", "room_version": "10", "initial_state": [
        {"type": "m.room.join_rules", "state_key": "",
         "content": {"join_rule": "knock_restricted",
                     "allow": [{"type": "m.room_membership", "room_id": rooms["S"]}]}}]})
    assert join(server, t["sp_bob"], k).status == 200           # in the space: straight in
    r = join(server, t["sp_carol"], k)
    assert r.status == 403
    r = server.request("POST", f"/_matrix/client/v3/knock/{q(k)}", {}, token=t["sp_carol"])
    assert r.status == 200, r                                    # others may ask


def test_room_summary(server, space):
    rooms, t, u = space
    path = lambda x: "/_matrix/client/v1/room_summary/" + q(x)
    r = server.request("GET", path(f"#sp-family:{server.server_name}"), token=t["sp_bob"])
    assert r.status == 200, r
    assert r.json["room_id"] == rooms["S"] and r.json["membership"] == "join"
    assert r.json["room_type"] == "m.space" and r.json["encryption"] == MEGOLM
    assert r.json["guest_can_join"] is True and r.json["world_readable"] is False
    r = server.request("GET", path(rooms["A"]), token=t["sp_carol"])
    assert r.status == 200 and r.json["membership"] == "leave" and r.json["name"] == "sp general"
    # The space is private and Carol not in it: as if it did not exist.
    r = server.request("GET", path(rooms["S"]), token=t["sp_carol"])
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    r = server.request("GET", path("!nope:" + server.server_name), token=t["sp_bob"])
    assert r.status == 404
    r = server.request("GET", path("#nope:" + server.server_name), token=t["sp_bob"])
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    r = server.request("GET", path("nonsense"), token=t["sp_bob"])
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    # A restricted room is visible to members of an allowed room, with the list.
    r = server.request("GET", path(rooms["C"]), token=t["sp_bob"])
    assert r.status == 404
    b3 = create(server, t["sp_alice"], {"preset": "private_chat", "initial_state": [
        {"type": "m.room.join_rules", "state_key": "",
         "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": rooms["S"]}]}}]})
    r = server.request("GET", path(b3), token=t["sp_bob"])
    assert r.status == 200 and r.json["allowed_room_ids"] == [rooms["S"]] and r.json["membership"] == "leave"
    assert server.request("GET", path(b3), token=t["sp_carol"]).status == 404
    assert server.request("GET", path(b3)).status == 401
