"""Client-Server behaviours Complement's csapi tests check, each as the spec
(v1.19) and Synapse have it: canonical alias validation, kicks, idempotent
joins and state, ignored inviters, event size, push rule actions, device key
upload, createRoom's room_version and topic."""
import pytest

V3 = "/_matrix/client/v3"


@pytest.fixture(scope="module")
def users(server):
    out = {}
    for name in ("cs_alice", "cs_bob", "cs_carol"):
        uid = server.add_user(name)
        out[name] = (uid, server.login(name))
    return out


def create(server, token, **body):
    r = server.request("POST", V3 + "/createRoom", body, token=token)
    assert r.status == 200, r
    return r.json["room_id"]


def put_alias(server, token, alias, room):
    enc = alias.replace("#", "%23")
    r = server.request("PUT", f"{V3}/directory/room/{enc}", {"room_id": room}, token=token)
    assert r.status == 200, r


def set_canonical(server, token, room, content):
    return server.request("PUT", f"{V3}/rooms/{room}/state/m.room.canonical_alias", content,
                          token=token)


def test_canonical_alias_must_point_to_the_room(server, users):
    _, a = users["cs_alice"]
    hs = server.server_name
    room, other = create(server, a), create(server, a)
    mine, theirs, gone = f"#cs-mine:{hs}", f"#cs-theirs:{hs}", f"#cs-gone:{hs}"
    put_alias(server, a, mine, room)
    put_alias(server, a, theirs, other)
    put_alias(server, a, gone, room)
    assert server.request("DELETE", f"{V3}/directory/room/%23cs-gone:{hs}", token=a).status == 200
    for content, code in (
        ({"alias": f"#cs-missing:{hs}"}, "M_BAD_ALIAS"),
        ({"alias": gone}, "M_BAD_ALIAS"),
        ({"alias": theirs}, "M_BAD_ALIAS"),
        ({"alias": f"%cs-invalid:{hs}"}, "M_INVALID_PARAM"),
        ({"alias": "#no-server"}, "M_INVALID_PARAM"),
        ({"alias": 7}, "M_INVALID_PARAM"),
        ({"alias": mine, "alt_aliases": [f"#cs-missing:{hs}"]}, "M_BAD_ALIAS"),
        ({"alias": mine, "alt_aliases": [theirs]}, "M_BAD_ALIAS"),
        ({"alias": mine, "alt_aliases": [f"%cs-invalid:{hs}"]}, "M_INVALID_PARAM"),
        ({"alias": mine, "alt_aliases": [7]}, "M_INVALID_PARAM"),
        ({"alias": mine, "alt_aliases": mine}, "M_INVALID_PARAM"),
    ):
        r = set_canonical(server, a, room, content)
        assert r.status == 400 and r.json["errcode"] == code, (content, r)
    assert set_canonical(server, a, room, {"alias": mine, "alt_aliases": [mine]}).status == 200
    # Only what changes is checked: an alias deleted by someone who could not
    # update the event (it stays there) does not stop edits around it
    # (Synapse); and the event may always be emptied.
    _, b = users["cs_bob"]
    room_b = create(server, a, preset="public_chat")
    assert server.request("POST", f"{V3}/join/{room_b}", {}, token=b).status == 200
    bobs = f"#cs-bobs:{hs}"
    put_alias(server, b, bobs, room_b)
    assert set_canonical(server, a, room_b, {"alias": bobs}).status == 200
    assert server.request("DELETE", f"{V3}/directory/room/%23cs-bobs:{hs}", token=b).status == 200
    r = set_canonical(server, a, room_b, {"alias": bobs, "alt_aliases": []})
    assert r.status == 200, r
    r = set_canonical(server, a, room_b, {"alias": bobs, "alt_aliases": [gone]})
    assert r.status == 400 and r.json["errcode"] == "M_BAD_ALIAS"
    assert set_canonical(server, a, room_b, {}).status == 200
    r = set_canonical(server, a, room_b, {"alias": bobs})
    assert r.status == 400 and r.json["errcode"] == "M_BAD_ALIAS"


def test_cannot_kick_who_is_not_in_the_room(server, users):
    a_id, a = users["cs_alice"]
    b_id, b = users["cs_bob"]
    c_id, c = users["cs_carol"]
    room = create(server, a, preset="public_chat")
    kick = lambda who: server.request("POST", f"{V3}/rooms/{room}/kick",  # noqa: E731
                                      {"user_id": who, "reason": "testing"}, token=a)
    # never joined
    r = kick(b_id)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
    # joined, then left
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b).status == 200
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=b).status == 200
    r = kick(b_id)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
    # banned
    assert server.request("POST", f"{V3}/rooms/{room}/ban", {"user_id": b_id}, token=a).status == 200
    assert kick(b_id).status == 403
    # invited, and joined: a kick is a leave by alice
    assert server.request("POST", f"{V3}/rooms/{room}/invite", {"user_id": c_id}, token=a).status == 200
    assert kick(c_id).status == 200
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=c).status == 200
    assert kick(c_id).status == 200
    ev = server.request("GET", f"{V3}/rooms/{room}/state/m.room.member/{c_id}?format=event",
                        token=a).json
    assert ev["content"] == {"membership": "leave", "reason": "testing"} and ev["sender"] == a_id


def member_event_id(server, token, room, uid):
    r = server.request("GET", f"{V3}/rooms/{room}/state/m.room.member/{uid}?format=event",
                       token=token)
    assert r.status == 200, r
    return r.json["event_id"]


def test_joining_twice_and_setting_state_twice_are_idempotent(server, users):
    a_id, a = users["cs_alice"]
    b_id, b = users["cs_bob"]
    room = create(server, a, preset="public_chat")
    assert server.request("POST", f"{V3}/join/{room}", {}, token=b).status == 200
    first = member_event_id(server, b, room, b_id)
    r = server.request("POST", f"{V3}/join/{room}", {}, token=b)
    assert r.status == 200 and r.json == {"room_id": room}
    assert member_event_id(server, b, room, b_id) == first
    # A join that changes the content is a new event: one after a per-room
    # display name puts the profile's name back, as Synapse's does.
    r = server.request("PUT", f"{V3}/rooms/{room}/state/m.room.member/{b_id}",
                       {"membership": "join", "displayname": "Bobby"}, token=b)
    assert r.status == 200
    nick = r.json["event_id"]
    assert nick != first
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b).status == 200
    again = member_event_id(server, b, room, b_id)
    assert again not in (first, nick)
    content = server.request("GET", f"{V3}/rooms/{room}/state/m.room.member/{b_id}", token=b).json
    assert content["displayname"] == "cs_bob"
    # State: the same content by the same sender answers the same event ID.
    body = {"a_key": "a_value"}
    one = server.request("PUT", f"{V3}/rooms/{room}/state/a.test.state.type/", body, token=a)
    two = server.request("PUT", f"{V3}/rooms/{room}/state/a.test.state.type/", body, token=a)
    assert one.status == two.status == 200 and one.json == two.json
    three = server.request("PUT", f"{V3}/rooms/{room}/state/a.test.state.type/", {"a_key": "b"},
                           token=a)
    assert three.status == 200 and three.json != one.json
    # … and by another sender is a new event (bob may not, so 403).
    r = server.request("PUT", f"{V3}/rooms/{room}/state/a.test.state.type/", {"a_key": "b"},
                       token=b)
    assert r.status == 403
    # Leaving twice: the second leave changes nothing and is no error.
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=b).status == 200
    left = member_event_id(server, a, room, b_id)
    assert server.request("POST", f"{V3}/rooms/{room}/leave", {}, token=b).status == 200
    assert member_event_id(server, a, room, b_id) == left


def test_invites_from_ignored_users_stay_out_of_sync(server, users):
    a_id, a = users["cs_alice"]
    b_id, b = users["cs_bob"]
    _, c = users["cs_carol"]
    r = server.request("PUT", f"{V3}/user/{a_id}/account_data/m.ignored_user_list",
                       {"ignored_users": {b_id: {}}}, token=a)
    assert r.status == 200
    since = server.request("GET", f"{V3}/sync?timeout=0", token=a).json["next_batch"]
    bob_room = create(server, b, preset="private_chat", invite=[a_id])
    carol_room = create(server, c, preset="private_chat", invite=[a_id])
    for q in (f"?since={since}&timeout=0", "?timeout=0"):
        invites = server.request("GET", f"{V3}/sync{q}", token=a).json["rooms"]["invite"]
        assert carol_room in invites and bob_room not in invites, q
    body = {"conn_id": "cs-ign", "lists": {"inv": {"ranges": [[0, 20]], "timeline_limit": 1,
                                                   "filters": {"is_invite": True}}}}
    ss = server.request("POST", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync",
                        body, token=a).json
    assert carol_room in ss["rooms"] and bob_room not in ss["rooms"]
    # Unignored, the invite is there again (it was hidden, not refused).
    r = server.request("PUT", f"{V3}/user/{a_id}/account_data/m.ignored_user_list",
                       {"ignored_users": {}}, token=a)
    invites = server.request("GET", f"{V3}/sync?timeout=0", token=a).json["rooms"]["invite"]
    assert bob_room in invites and carol_room in invites
    assert server.request("POST", f"{V3}/rooms/{bob_room}/join", {}, token=a).status == 200


def test_event_over_64k_is_413_too_large(server, users):
    _, a = users["cs_alice"]
    room = create(server, a, room_version="6")
    big = {"msgtype": "m.text", "body": "and they dont stop coming " * 2700}
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/big1", big, token=a)
    assert r.status == 413 and r.json["errcode"] == "M_TOO_LARGE", r
    r = server.request("PUT", f"{V3}/rooms/{room}/state/marvel.universe.fate",
                       {"body": "Dormammu, I've Come To Bargain.\n" * 2200}, token=a)
    assert r.status == 413 and r.json["errcode"] == "M_TOO_LARGE", r
    # Just under the limit is fine.
    ok = {"msgtype": "m.text", "body": "x" * 60000}
    assert server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/big2", ok,
                          token=a).status == 200


def push_rules(server, token):
    r = server.request("GET", f"{V3}/pushrules/", token=token)
    assert r.status == 200, r
    return r.json["global"]


def test_push_rule_legacy_actions_read_back_as_set(server, users):
    a_id, a = users["cs_alice"]
    r = server.request("PUT", f"{V3}/pushrules/global/sender/{a_id}",
                       {"actions": ["dont_notify"]}, token=a)
    assert r.status == 200
    for _ in range(2):
        got = [x for x in push_rules(server, a)["sender"] if x["rule_id"] == a_id]
        assert got and got[0]["actions"] == ["dont_notify"]
    r = server.request("GET", f"{V3}/pushrules/global/sender/{a_id}/actions", token=a)
    assert r.json == {"actions": ["dont_notify"]}
    r = server.request("PUT", f"{V3}/pushrules/global/sender/{a_id}",
                       {"actions": ["dont_notify", "wiggle"]}, token=a)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    assert server.request("DELETE", f"{V3}/pushrules/global/sender/{a_id}", token=a).status == 200


def room_rule(rules, kind, rule_id):
    got = [x for x in rules[kind] if x["rule_id"] == rule_id]
    return got[0] if got else None


def test_push_rules_follow_an_upgraded_room(server, users):
    a_id, a = users["cs_alice"]
    b_id, b = users["cs_bob"]
    room = create(server, a, preset="public_chat", room_version="10")
    assert server.request("POST", f"{V3}/join/{room}", {}, token=b).status == 200
    for tok in (a, b):
        r = server.request("PUT", f"{V3}/pushrules/global/room/{room}",
                           {"actions": ["dont_notify"]}, token=tok)
        assert r.status == 200
    cond = [{"kind": "event_match", "key": "room_id", "pattern": room},
            {"kind": "event_match", "key": "content.body", "pattern": "*cake*"}]
    r = server.request("PUT", f"{V3}/pushrules/global/override/cake",
                       {"actions": ["notify"], "conditions": cond}, token=b)
    assert r.status == 200
    since = server.request("GET", f"{V3}/sync?timeout=0", token=b).json["next_batch"]
    r = server.request("POST", f"{V3}/rooms/{room}/upgrade", {"new_version": "11"}, token=a)
    assert r.status == 200, r
    new = r.json["replacement_room"]
    # Both local members have the room rule for the new room, before bob joins it.
    for tok in (a, b):
        rules = push_rules(server, tok)
        assert room_rule(rules, "room", room)["actions"] == ["dont_notify"]
        assert room_rule(rules, "room", new)["actions"] == ["dont_notify"]
    over = room_rule(push_rules(server, b), "override", new)
    assert over and over["conditions"] == [dict(cond[0], pattern=new), cond[1]]
    assert over["actions"] == ["notify"]
    # … and /sync brings the change.
    sync = server.request("GET", f"{V3}/sync?since={since}&timeout=0", token=b).json
    pr = [e for e in sync["account_data"]["events"] if e["type"] == "m.push_rules"]
    assert pr and room_rule(pr[0]["content"]["global"], "room", new)
    # A room made by hand with a predecessor: the rule follows a local user
    # on their first join; one they removed does not come back on a rejoin.
    manual = create(server, a, preset="public_chat",
                    creation_content={"predecessor": {"room_id": room}})
    assert room_rule(push_rules(server, a), "room", manual)["actions"] == ["dont_notify"]
    assert room_rule(push_rules(server, b), "room", manual) is None
    assert server.request("POST", f"{V3}/join/{manual}", {}, token=b).status == 200
    assert room_rule(push_rules(server, b), "room", manual)["actions"] == ["dont_notify"]
    assert server.request("DELETE", f"{V3}/pushrules/global/room/{manual}", token=b).status == 200
    assert server.request("POST", f"{V3}/rooms/{manual}/leave", {}, token=b).status == 200
    assert server.request("POST", f"{V3}/join/{manual}", {}, token=b).status == 200
    assert room_rule(push_rules(server, b), "room", manual) is None


def test_create_room_version_must_be_a_string(server, users):
    _, a = users["cs_alice"]
    r = server.request("POST", f"{V3}/createRoom", {"room_version": 10}, token=a)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON", r
    r = server.request("POST", f"{V3}/createRoom", {"room_version": "999"}, token=a)
    assert r.status == 400 and r.json["errcode"] == "M_UNSUPPORTED_ROOM_VERSION", r


def test_create_room_topic_writes_the_rich_topic(server, users):
    """v1.15: createRoom's topic is also given as m.topic's text/plain body
    (Synapse); an initial_state topic is left as the client wrote it."""
    _, a = users["cs_alice"]
    rich = {"topic": "Test Room", "m.topic": {"m.text": [{"body": "Test Room"}]}}
    room = create(server, a, topic="Test Room", preset="public_chat")
    got = server.request("GET", f"{V3}/rooms/{room}/state/m.room.topic/", token=a).json
    assert got == rich
    # topic overrides an initial_state topic; an initial_state topic alone
    # stays as given.
    initial = [{"type": "m.room.topic", "state_key": "", "content": {"topic": "Shenanigans"}}]
    room = create(server, a, topic="Test Room", initial_state=initial, preset="public_chat")
    got = server.request("GET", f"{V3}/rooms/{room}/state/m.room.topic/", token=a).json
    assert got == rich
    room = create(server, a, initial_state=initial, preset="public_chat")
    got = server.request("GET", f"{V3}/rooms/{room}/state/m.room.topic/", token=a).json
    assert got == {"topic": "Shenanigans"}


def test_deleting_an_alias_takes_it_out_of_the_canonical_alias(server, users):
    _, a = users["cs_alice"]
    _, b = users["cs_bob"]
    hs = server.server_name
    room = create(server, a, preset="public_chat")
    one, two = f"#cs-del-one:{hs}", f"#cs-del-two:{hs}"
    put_alias(server, a, one, room)
    put_alias(server, a, two, room)
    assert set_canonical(server, a, room, {"alias": one, "alt_aliases": [one, two]}).status == 200
    canonical = lambda: server.request(  # noqa: E731
        "GET", f"{V3}/rooms/{room}/state/m.room.canonical_alias/", token=a).json
    assert server.request("DELETE", f"{V3}/directory/room/%23cs-del-one:{hs}",
                          token=a).status == 200
    assert canonical() == {"alt_aliases": [two]}
    assert server.request("DELETE", f"{V3}/directory/room/%23cs-del-two:{hs}",
                          token=a).status == 200
    assert canonical() == {}
    # An alias that is not in it changes nothing; one deleted by its creator
    # without the power to send the event is deleted all the same.
    three = f"#cs-del-three:{hs}"
    assert server.request("POST", f"{V3}/join/{room}", {}, token=b).status == 200
    put_alias(server, b, three, room)
    assert set_canonical(server, a, room, {"alias": three}).status == 200
    r = server.request("DELETE", f"{V3}/directory/room/%23cs-del-three:{hs}", token=b)
    assert r.status == 200
    assert server.request("GET", f"{V3}/directory/room/%23cs-del-three:{hs}").status == 404
    assert canonical() == {"alias": three}


def test_join_with_custom_content(server, users):
    """POST /join's body goes into the member event (Complement's TestRoomMembers
    "can join a room with custom content"; Synapse takes it, a per-room
    display name included), but for the keys the server sets."""
    a_id, a = users["cs_alice"]
    b_id, b = users["cs_bob"]
    room = create(server, a, preset="public_chat")
    r = server.request("POST", f"{V3}/join/{room}",
                       {"foo": "bar", "displayname": "Bobby here", "membership": "leave",
                        "join_authorised_via_users_server": a_id}, token=b)
    assert r.status == 200, r
    ev = server.request("GET", f"{V3}/rooms/{room}/state/m.room.member/{b_id}", token=a).json
    assert ev["membership"] == "join" and ev["foo"] == "bar" and ev["displayname"] == "Bobby here", ev
    assert "join_authorised_via_users_server" not in ev


def test_redacting_another_rooms_event(server, users):
    """SyTest's "PUT /redact disallows redaction of event in different
    room": 400 to a user with the power to redact in the room named (as
    Synapse); "not found" to one without it, as for an unknown event, so
    it learns nothing of other rooms."""
    a_id, a = users["cs_alice"]
    b_id, b = users["cs_bob"]
    elsewhere = create(server, a, preset="private_chat")
    r = server.request("PUT", f"{V3}/rooms/{elsewhere}/send/m.room.message/rd1",
                       {"msgtype": "m.text", "body": "secret"}, token=a)
    assert r.status == 200, r
    target = r.json["event_id"]
    mine = create(server, b, preset="public_chat")
    r = server.request("PUT", f"{V3}/rooms/{mine}/redact/{target}/rd2", {}, token=b)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r
    # carol joins b's room with power 0: another room's event is "not found"
    c_id, c = users["cs_carol"]
    assert server.request("POST", f"{V3}/join/{mine}", {}, token=c).status == 200
    r = server.request("PUT", f"{V3}/rooms/{mine}/redact/{target}/rd3", {}, token=c)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r
    # and the event itself stands
    r = server.request("GET", f"{V3}/rooms/{elsewhere}/event/{target}", token=a)
    assert r.status == 200 and r.json["content"]["body"] == "secret", r
