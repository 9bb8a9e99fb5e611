"""Account data (global and per room) and room tags, through the HTTP API."""
import json
import urllib.parse

import pytest

V3 = "/_matrix/client/v3"


def q(s):
    return urllib.parse.quote(s, safe="")


@pytest.fixture(scope="module")
def ad(server):
    """Two users (alice, bob) of this area, logged in, and a room alice made."""
    class Ctx:
        pass
    c = Ctx()
    c.alice = server.add_user("ad_alice")
    c.bob = server.add_user("ad_bob")
    c.at = server.login("ad_alice")
    c.bt = server.login("ad_bob")
    r = server.request("POST", V3 + "/createRoom", {"name": "ad room"}, token=c.at)
    assert r.status == 200, r
    c.room = r.json["room_id"]
    return c


def gpath(user, typ):
    return f"{V3}/user/{q(user)}/account_data/{q(typ)}"


def rpath(user, room, typ):
    return f"{V3}/user/{q(user)}/rooms/{q(room)}/account_data/{q(typ)}"


def test_global_put_get_overwrite(server, ad):
    p = gpath(ad.alice, "org.example.ad.settings")
    assert server.request("GET", p, token=ad.at).json["errcode"] == "M_NOT_FOUND"
    r = server.request("PUT", p, {"theme": "dark", "n": [1, 2.5, None, True]}, token=ad.at)
    assert r.status == 200 and r.json == {}
    r = server.request("GET", p, token=ad.at)
    assert r.status == 200 and r.json == {"theme": "dark", "n": [1, 2.5, None, True]}
    assert server.request("PUT", p, {"theme": "light"}, token=ad.at).status == 200
    assert server.request("GET", p, token=ad.at).json == {"theme": "light"}
    # r0 paths answer too (matrix-nio uses them)
    r = server.request("GET", p.replace("/v3/", "/r0/"), token=ad.at)
    assert r.status == 200 and r.json == {"theme": "light"}


def test_unknown_type_is_404(server, ad):
    r = server.request("GET", gpath(ad.alice, "org.example.ad.never"), token=ad.at)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    r = server.request("GET", rpath(ad.alice, ad.room, "org.example.ad.never"), token=ad.at)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"


def test_other_users_data_is_forbidden(server, ad):
    p = gpath(ad.alice, "org.example.ad.private")
    assert server.request("PUT", p, {"secret": 1}, token=ad.at).status == 200
    r = server.request("GET", p, token=ad.bt)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = server.request("PUT", p, {"secret": 2}, token=ad.bt)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = server.request("PUT", rpath(ad.alice, ad.room, "org.example.ad.x"), {}, token=ad.bt)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = server.request("GET", rpath(ad.alice, ad.room, "org.example.ad.x"), token=ad.bt)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    # bob's own namespace is separate
    r = server.request("GET", gpath(ad.bob, "org.example.ad.private"), token=ad.bt)
    assert r.status == 404
    assert server.request("GET", p, token=ad.at).json == {"secret": 1}


def test_tokens_are_required(server, ad):
    p = gpath(ad.alice, "org.example.ad.settings")
    r = server.request("GET", p)
    assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN"
    r = server.request("PUT", p, {"a": 1}, token="nonsense")
    assert r.status == 401 and r.json["errcode"] == "M_UNKNOWN_TOKEN"


def test_body_must_be_a_json_object(server, ad):
    p = gpath(ad.alice, "org.example.ad.body")
    r = server.request("PUT", p, raw=b"[1, 2]", token=ad.at)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = server.request("PUT", p, raw=b'"text"', token=ad.at)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = server.request("PUT", p, raw=b"{not json", token=ad.at)
    assert r.status == 400 and r.json["errcode"] == "M_NOT_JSON"
    # PostgreSQL's jsonb can't hold U+0000; refused up front, not a 500
    r = server.request("PUT", p, raw=b'{"a": "x\\u0000y"}', token=ad.at)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    assert server.request("GET", p, token=ad.at).status == 404


@pytest.mark.parametrize("typ", ["m.fully_read", "m.push_rules"])
def test_server_managed_types_are_405(server, ad, typ):
    r = server.request("PUT", gpath(ad.alice, typ), {"event_id": "$x"}, token=ad.at)
    assert r.status == 405 and r.json["errcode"] == "M_BAD_JSON"
    r = server.request("PUT", rpath(ad.alice, ad.room, typ), {"event_id": "$x"}, token=ad.at)
    assert r.status == 405 and r.json["errcode"] == "M_BAD_JSON"


def test_room_account_data(server, ad):
    typ = "org.example.ad.room"
    p = rpath(ad.alice, ad.room, typ)
    assert server.request("PUT", p, {"colour": "blue"}, token=ad.at).status == 200
    assert server.request("GET", p, token=ad.at).json == {"colour": "blue"}
    # no fallback between room and global data of the same type
    assert server.request("GET", gpath(ad.alice, typ), token=ad.at).status == 404
    assert server.request("PUT", gpath(ad.alice, typ), {"colour": "red"}, token=ad.at).status == 200
    assert server.request("GET", p, token=ad.at).json == {"colour": "blue"}
    # another room (existing or not: Synapse doesn't ask) holds its own
    other = "!ad-unknown-room:" + server.server_name
    assert server.request("GET", rpath(ad.alice, other, typ), token=ad.at).status == 404
    assert server.request("PUT", rpath(ad.alice, other, typ), {"c": 1}, token=ad.at).status == 200
    assert server.request("GET", rpath(ad.alice, other, typ), token=ad.at).json == {"c": 1}


def test_room_id_must_be_valid(server, ad):
    for bad in ["@ad_alice:" + server.server_name, "not-a-room", "!"]:
        r = server.request("PUT", rpath(ad.alice, bad, "org.example.ad.r"), {}, token=ad.at)
        assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", (bad, r)
        r = server.request("GET", rpath(ad.alice, bad, "org.example.ad.r"), token=ad.at)
        assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", (bad, r)


def test_each_write_takes_a_new_stream_position(server, ad):
    p = gpath(ad.alice, "org.example.ad.stream")
    server.request("PUT", p, {"v": 1}, token=ad.at)
    sql = ("SELECT stream_id FROM account_data WHERE user_id = '%s' AND type = "
           "'org.example.ad.stream'" % ad.alice)
    first = int(server.psql(sql))
    server.request("PUT", p, {"v": 2}, token=ad.at)
    second = int(server.psql(sql))
    assert second > first
    assert json.loads(server.psql(
        "SELECT content FROM account_data WHERE user_id = '%s' AND type = "
        "'org.example.ad.stream'" % ad.alice)) == {"v": 2}


# ---- tags ----

def tags_path(user, room, tag=None):
    p = f"{V3}/user/{q(user)}/rooms/{q(room)}/tags"
    return p + "/" + q(tag) if tag is not None else p


def test_tags_add_list_delete(server, ad):
    r = server.request("GET", tags_path(ad.alice, ad.room), token=ad.at)
    assert r.status == 200 and r.json == {"tags": {}}
    assert server.request("PUT", tags_path(ad.alice, ad.room, "m.favourite"), {"order": 0.25},
                          token=ad.at).status == 200
    assert server.request("PUT", tags_path(ad.alice, ad.room, "u.work"), {},
                          token=ad.at).status == 200
    r = server.request("GET", tags_path(ad.alice, ad.room), token=ad.at)
    assert r.json == {"tags": {"m.favourite": {"order": 0.25}, "u.work": {}}}
    # tags are the room's m.tag account data, as /sync delivers them
    r = server.request("GET", rpath(ad.alice, ad.room, "m.tag"), token=ad.at)
    assert r.status == 200 and r.json == {"tags": {"m.favourite": {"order": 0.25}, "u.work": {}}}
    # re-tagging replaces the tag's content
    server.request("PUT", tags_path(ad.alice, ad.room, "m.favourite"), {"order": 0.5}, token=ad.at)
    assert server.request("GET", tags_path(ad.alice, ad.room),
                          token=ad.at).json["tags"]["m.favourite"] == {"order": 0.5}
    r = server.request("DELETE", tags_path(ad.alice, ad.room, "m.favourite"), token=ad.at)
    assert r.status == 200 and r.json == {}
    assert server.request("GET", tags_path(ad.alice, ad.room), token=ad.at).json == {
        "tags": {"u.work": {}}}
    # deleting a tag that isn't there is fine
    r = server.request("DELETE", tags_path(ad.alice, ad.room, "m.lowpriority"), token=ad.at)
    assert r.status == 200
    # r0
    r = server.request("GET", tags_path(ad.alice, ad.room).replace("/v3/", "/r0/"), token=ad.at)
    assert r.status == 200 and r.json == {"tags": {"u.work": {}}}


def test_tag_names_with_slashes_and_dots(server, ad):
    tag = "u.a/b.c d"
    assert server.request("PUT", tags_path(ad.alice, ad.room, tag), {"order": 1},
                          token=ad.at).status == 200
    assert server.request("GET", tags_path(ad.alice, ad.room), token=ad.at).json["tags"][tag] == {
        "order": 1}
    assert server.request("DELETE", tags_path(ad.alice, ad.room, tag), token=ad.at).status == 200
    assert tag not in server.request("GET", tags_path(ad.alice, ad.room), token=ad.at).json["tags"]


def test_tag_errors(server, ad):
    r = server.request("PUT", tags_path(ad.alice, ad.room, "u.bad"), {"order": "0.5"}, token=ad.at)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = server.request("PUT", tags_path(ad.alice, ad.room, "u." + "x" * 254), {}, token=ad.at)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    r = server.request("PUT", tags_path(ad.alice, ad.room, "u.x"), raw=b"[]", token=ad.at)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    # bob is not in alice's room: tagging it would only store junk
    r = server.request("PUT", tags_path(ad.bob, ad.room, "u.x"), {}, token=ad.bt)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    # nobody touches another user's tags
    for method in ("GET", "PUT", "DELETE"):
        tag = None if method == "GET" else "u.x"
        r = server.request(method, tags_path(ad.alice, ad.room, tag), {} if method == "PUT" else None,
                           token=ad.bt)
        assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", method
    r = server.request("GET", tags_path(ad.alice, ad.room))
    assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN"
    assert "u.bad" not in server.request("GET", tags_path(ad.alice, ad.room), token=ad.at).json["tags"]


def test_tags_survive_concurrent_writers(server, ad):
    """Two devices tagging at once both keep their tag (edited inside SQL)."""
    import concurrent.futures
    r = server.request("POST", V3 + "/createRoom", {}, token=ad.at)
    room = r.json["room_id"]
    tags = [f"u.t{i}" for i in range(12)]
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        res = list(ex.map(lambda t: server.request("PUT", tags_path(ad.alice, room, t), {},
                                                   token=ad.at).status, tags))
    assert res == [200] * len(tags)
    got = server.request("GET", tags_path(ad.alice, room), token=ad.at).json["tags"]
    assert sorted(got) == sorted(tags)


def test_push_rules_read_as_account_data(server, ad):
    """m.push_rules is the server's: readable here, set through /pushrules."""
    r = server.request("GET", gpath(ad.alice, "m.push_rules"), token=ad.at)
    assert r.status == 200, r
    rules = r.json["global"]
    assert any(rule["rule_id"] == ".m.rule.master" for rule in rules["override"])
    assert "underride" in rules and "content" in rules
    r = server.request("GET", rpath(ad.alice, ad.room, "m.push_rules"), token=ad.at)
    assert r.status == 200 and r.json == {}
