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
    # Only what changes is checked: once the alias is deleted, the event may
    # still be edited around it (Synapse); and it may always be removed.
    assert server.request("DELETE", f"{V3}/directory/room/%23cs-mine:{hs}", token=a).status == 200
    r = set_canonical(server, a, room, {"alias": mine, "alt_aliases": [mine]})
    assert r.status == 200, r
    r = set_canonical(server, a, room, {"alias": mine, "alt_aliases": [mine, gone]})
    assert r.status == 400 and r.json["errcode"] == "M_BAD_ALIAS"
    assert set_canonical(server, a, room, {}).status == 200
    r = set_canonical(server, a, room, {"alias": mine})
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
