"""POST /rooms/{roomId}/upgrade: tombstone, predecessor (v12's form without
event_id), transferred state, power levels with v12 creators, bans,
aliases and directory, the old room restricted, and every refusal."""
import urllib.parse

import pytest

V3 = "/_matrix/client/v3"
R0 = "/_matrix/client/r0"


@pytest.fixture(scope="module")
def users(server):
    out = {}
    for name in ("ug_alice", "ug_bob", "ug_carol", "ug_zed"):
        uid = server.add_user(name)
        out[name] = (uid, server.login(name))
    return out


def q(s):
    return urllib.parse.quote(s, safe="")


def create(server, tok, **body):
    r = server.request("POST", V3 + "/createRoom", body, token=tok)
    assert r.status == 200, r
    return r.json["room_id"]


def state(server, tok, room, etype, key=""):
    r = server.request("GET", f"{V3}/rooms/{q(room)}/state/{etype}/{q(key)}?format=event", token=tok)
    return r.json if r.status == 200 else None


def upgrade(server, tok, room, prefix=V3, **body):
    return server.request("POST", f"{prefix}/rooms/{q(room)}/upgrade", body, token=tok)


def all_state(server, tok, room):
    r = server.request("GET", f"{V3}/rooms/{q(room)}/state", token=tok)
    assert r.status == 200
    return r.json


def test_upgrade_v12_to_v11_carries_state(server, users):
    a_id, a = users["ug_alice"]
    b_id, b = users["ug_bob"]
    alias = "#ug-carry:" + server.server_name
    old = create(server, a, preset="public_chat", name="Carry", topic="Things",
                 visibility="public", room_alias_name="ug-carry", initial_state=[
                     {"type": "m.room.avatar", "content": {"url": "mxc://x/y"}},
                     {"type": "m.room.server_acl", "content": {"allow": ["*"], "deny": ["bad.example"]}},
                     {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}},
                     {"type": "org.example.custom", "content": {"x": 1}}])
    assert server.request("POST", f"{V3}/rooms/{q(old)}/join", {}, token=b).status == 200
    r = server.request("POST", f"{V3}/rooms/{q(old)}/ban", {"user_id": "@troll:bad.example",
                                                             "reason": "trolling"}, token=a)
    assert r.status == 200
    r = upgrade(server, a, old, new_version="11")
    assert r.status == 200, r
    new = r.json["replacement_room"]
    assert new != old and new.endswith(":" + server.server_name)
    tomb = state(server, a, old, "m.room.tombstone")
    assert tomb["content"]["replacement_room"] == new and tomb["sender"] == a_id
    create_ev = state(server, a, new, "m.room.create")
    assert create_ev["content"]["room_version"] == "11"
    assert create_ev["content"]["predecessor"] == {"room_id": old, "event_id": tomb["event_id"]}
    for etype, field, value in (("m.room.name", "name", "Carry"), ("m.room.topic", "topic", "Things"),
                                ("m.room.avatar", "url", "mxc://x/y"),
                                ("m.room.join_rules", "join_rule", "public"),
                                ("m.room.history_visibility", "history_visibility", "joined"),
                                ("m.room.server_acl", "deny", ["bad.example"])):
        assert state(server, a, new, etype)["content"][field] == value, etype
    assert state(server, a, new, "org.example.custom") is None        # not transferable
    # what the old room lacked of the private_chat preset comes from it (Synapse)
    assert state(server, a, old, "m.room.guest_access") is None
    assert state(server, a, new, "m.room.guest_access")["content"] == {"guest_access": "can_join"}
    ban = state(server, a, new, "m.room.member", "@troll:bad.example")
    assert ban["content"]["membership"] == "ban" and ban["content"]["reason"] == "trolling"
    # v12 creators have no number: the upgrader gets one above everything needed
    pl = state(server, a, new, "m.room.power_levels")["content"]
    assert pl["users"][a_id] >= 150 and pl["events"]["m.room.tombstone"] == 150
    # aliases, canonical alias and directory move
    res = server.request("GET", f"{V3}/directory/room/{q(alias)}", token=b).json
    assert res["room_id"] == new
    assert state(server, a, new, "m.room.canonical_alias")["content"]["alias"] == alias
    assert "alias" not in state(server, a, old, "m.room.canonical_alias")["content"]
    pub = server.request("GET", V3 + "/publicRooms?limit=500", token=a)
    if pub.status == 200:
        listed = {x["room_id"] for x in pub.json["chunk"]}
        assert new in listed and old not in listed
    # the old room is closed to regular users; bob stays where he was
    old_pl = state(server, a, old, "m.room.power_levels")["content"]
    assert old_pl["events_default"] == 50 and old_pl["invite"] == 50
    r = server.request("PUT", f"{V3}/rooms/{q(old)}/send/m.room.message/ug1",
                       {"msgtype": "m.text", "body": "still here?"}, token=b)
    assert r.status == 403
    assert state(server, b, new, "m.room.create") is None
    assert server.request("POST", f"{V3}/rooms/{q(new)}/join", {}, token=b).status == 200
    # the new room's name is searchable, and /sync shows the upgrader in it
    sync = server.request("GET", V3 + "/sync?timeout=0", token=a).json
    assert new in sync["rooms"]["join"]
    hits = server.request("POST", V3 + "/search", {"search_categories": {"room_events": {
        "search_term": "carry", "keys": ["content.name"]}}}, token=a).json
    assert new in {h["result"]["room_id"] for h in hits["search_categories"]["room_events"]["results"]}


def test_upgrade_to_v12_with_additional_creators(server, users):
    a_id, a = users["ug_alice"]
    b_id, b = users["ug_bob"]
    c_id, _ = users["ug_carol"]
    old = create(server, a, room_version="11", preset="private_chat", invite=[b_id],
                 power_level_content_override={"users": {a_id: 100, b_id: 100, c_id: 50}})
    r = upgrade(server, a, old, prefix=R0, new_version="12", additional_creators=[b_id])
    assert r.status == 200, r
    new = r.json["replacement_room"]
    tomb = state(server, a, old, "m.room.tombstone")
    assert tomb["content"]["replacement_room"] == new
    create_ev = state(server, a, new, "m.room.create")
    assert create_ev["content"]["predecessor"] == {"room_id": old}       # no event_id in v12
    assert create_ev["content"]["additional_creators"] == [b_id]
    assert "creator" not in create_ev["content"]
    assert new == "!" + create_ev["event_id"][1:]
    pl = state(server, a, new, "m.room.power_levels")["content"]
    assert a_id not in pl["users"] and b_id not in pl["users"]           # creators are not listed
    assert pl["users"][c_id] == 50


def test_temporary_power_and_space(server, users):
    a_id, a = users["ug_alice"]
    # the room guards a state event above alice's 100: she is raised in the
    # new room only to copy it, then put back
    old = create(server, a, room_version="10", creation_content={"type": "m.space"},
                 power_level_content_override={"users": {a_id: 150},
                                               "events": {"m.room.server_acl": 150}})
    r = server.request("PUT", f"{V3}/rooms/{q(old)}/state/m.room.server_acl",
                       {"allow": ["*"], "deny": []}, token=a)
    assert r.status == 200
    r = server.request("PUT", f"{V3}/rooms/{q(old)}/state/m.space.child/{q('!child:example.org')}",
                       {"via": ["example.org"]}, token=a)
    assert r.status == 200
    r = server.request("PUT", f"{V3}/rooms/{q(old)}/state/m.space.child/{q('!gone:example.org')}",
                       {}, token=a)
    assert r.status == 200
    pl = state(server, a, old, "m.room.power_levels")["content"]
    pl["users"][a_id] = 100
    assert server.request("PUT", f"{V3}/rooms/{q(old)}/state/m.room.power_levels", pl, token=a).status == 200
    r = upgrade(server, a, old, new_version="11")
    assert r.status == 200, r
    new = r.json["replacement_room"]
    assert state(server, a, new, "m.room.create")["content"]["type"] == "m.space"
    assert state(server, a, new, "m.room.server_acl")["content"]["allow"] == ["*"]
    assert state(server, a, new, "m.space.child", "!child:example.org")["content"]["via"] == ["example.org"]
    assert state(server, a, new, "m.space.child", "!gone:example.org") is None
    final = state(server, a, new, "m.room.power_levels")["content"]
    assert final["users"][a_id] == 100 and final["events"]["m.room.server_acl"] == 150
    pls = [e for e in all_state(server, a, new) if e["type"] == "m.room.power_levels"]
    assert len(pls) == 1
    msgs = server.request("GET", f"{V3}/rooms/{q(new)}/messages?dir=f&limit=100", token=a).json["chunk"]
    levels = [e["content"]["users"][a_id] for e in msgs if e["type"] == "m.room.power_levels"]
    assert levels == [150, 100]


def test_errors(server, users):
    a_id, a = users["ug_alice"]
    b_id, b = users["ug_bob"]
    _, z = users["ug_zed"]
    room = create(server, a, preset="public_chat")
    assert server.request("POST", f"{V3}/rooms/{q(room)}/join", {}, token=b).status == 200
    before = server.request("GET", V3 + "/joined_rooms", token=b).json["joined_rooms"]
    r = upgrade(server, a, room)
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM"
    for v in ("99", 12, None):
        r = upgrade(server, a, room, new_version=v)
        assert r.status == 400 and r.json["errcode"] == "M_UNSUPPORTED_ROOM_VERSION", v
    for extra in ("@x:y", ["not a user"], [5]):
        r = upgrade(server, a, room, new_version="12", additional_creators=extra)
        assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON", extra
    # versions without additional creators ignore them (spec)
    r = server.request("POST", f"{V3}/rooms/{q(room)}/upgrade", raw=b"{", token=a)
    assert r.status == 400 and r.json["errcode"] == "M_NOT_JSON"
    r = upgrade(server, b, room, new_version="12")          # joined, not powerful enough
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    assert server.request("GET", V3 + "/joined_rooms", token=b).json["joined_rooms"] == before
    assert state(server, a, room, "m.room.tombstone") is None   # nothing was left behind
    r = upgrade(server, z, room, new_version="12")          # not in the room
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = upgrade(server, a, "!unknown:example.org", new_version="12")
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    assert server.request("POST", f"{V3}/rooms/{q(room)}/upgrade", {"new_version": "12"}).status == 401
    r = upgrade(server, a, room, new_version="10", additional_creators=["bad"])
    assert r.status == 200 and "additional_creators" not in state(
        server, a, r.json["replacement_room"], "m.room.create")["content"]


def put_account_data(server, tok, uid, etype, content, room=None):
    path = f"/user/{q(uid)}" + (f"/rooms/{q(room)}" if room else "") + f"/account_data/{etype}"
    assert server.request("PUT", V3 + path, content, token=tok).status == 200


def get_account_data(server, tok, uid, etype, room=None):
    path = f"/user/{q(uid)}" + (f"/rooms/{q(room)}" if room else "") + f"/account_data/{etype}"
    r = server.request("GET", V3 + path, token=tok)
    return r.json if r.status == 200 else None


def test_tags_and_direct_follow_each_users_join(server, users):
    """Synapse's copy_room_tags_and_direct_to_room: the upgrader's tags and
    m.direct entry follow at once, another member's when they join."""
    a_id, a = users["ug_alice"]
    c_id, c = users["ug_carol"]
    old = create(server, a, preset="private_chat", invite=[c_id], is_direct=True)
    assert server.request("POST", f"{V3}/join/{q(old)}", {}, token=c).status == 200
    for uid, tok, other in ((a_id, a, c_id), (c_id, c, a_id)):
        put_account_data(server, tok, uid, "m.direct", {other: [old], "@x:elsewhere": ["!y:z"]})
        r = server.request("PUT", f"{V3}/user/{q(uid)}/rooms/{q(old)}/tags/u.work",
                           {"order": 0.5}, token=tok)
        assert r.status == 200
    r = upgrade(server, a, old, new_version="11")
    assert r.status == 200, r
    new = r.json["replacement_room"]
    assert get_account_data(server, a, a_id, "m.direct") == {c_id: [old, new], "@x:elsewhere": ["!y:z"]}
    tags = server.request("GET", f"{V3}/user/{q(a_id)}/rooms/{q(new)}/tags", token=a).json
    assert tags == {"tags": {"u.work": {"order": 0.5}}}
    # carol's follow when she joins, not before
    assert get_account_data(server, c, c_id, "m.direct") == {a_id: [old], "@x:elsewhere": ["!y:z"]}
    assert server.request("POST", f"{V3}/rooms/{q(new)}/invite", {"user_id": c_id}, token=a).status == 200
    assert server.request("POST", f"{V3}/join/{q(new)}", {}, token=c).status == 200
    assert get_account_data(server, c, c_id, "m.direct")[a_id] == [old, new]
    tags = server.request("GET", f"{V3}/user/{q(c_id)}/rooms/{q(new)}/tags", token=c).json
    assert tags == {"tags": {"u.work": {"order": 0.5}}}


def test_a_predecessor_without_tombstone_takes_no_alias(server, users):
    """A room that names another as predecessor, without that room's
    tombstone naming it back, does not move the other's aliases or listing
    when a local user joins it."""
    a_id, a = users["ug_alice"]
    z_id, z = users["ug_zed"]
    alias = "#ug-keep:" + server.server_name
    old = create(server, a, preset="public_chat", visibility="public", room_alias_name="ug-keep")
    fake = create(server, z, preset="public_chat",
                  creation_content={"predecessor": {"room_id": old, "event_id": "$nope"}})
    assert server.request("POST", f"{V3}/join/{q(fake)}", {}, token=a).status == 200
    assert server.request("GET", f"{V3}/directory/room/{q(alias)}", token=a).json["room_id"] == old
    r = server.request("GET", f"{V3}/directory/list/room/{q(old)}", token=a)
    assert r.json["visibility"] == "public"
