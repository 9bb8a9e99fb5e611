"""The published room directory (issue 7): /publicRooms (GET and POST with
filter, room_types, pagination, include_all_networks,
third_party_instance_id), /directory/list/room visibility, who may publish
(server admins and room moderators; room_list_publication_rules), and the
visibility matrix: anonymous clients, local users, other servers (the
federation route answers only allowed servers; its X-Matrix signature is
checked before anything, so unsigned requests are refused here — browsing
between two servers is for the federation tests)."""
import urllib.parse

import pytest

from directory_paging import check_paging
from harness import Server

MEGOLM = "m.megolm.v1.aes-sha2"


def q(s):
    return urllib.parse.quote(s, safe="")


def create(s, tok, body):
    r = s.request("POST", "/_matrix/client/v3/createRoom", body, token=tok)
    assert r.status == 200, r
    return r.json["room_id"]


def public_rooms(s, tok=None, body=None, query=""):
    if body is None:
        return s.request("GET", "/_matrix/client/v3/publicRooms" + query, token=tok)
    return s.request("POST", "/_matrix/client/v3/publicRooms" + query, body, token=tok)


def all_ids(s, tok, body):
    """Every room of a filtered listing, following next_batch."""
    ids, since = [], None
    for _ in range(100):
        b = dict(body, **({"since": since} if since else {}))
        r = public_rooms(s, tok, b)
        assert r.status == 200, r
        ids += [c["room_id"] for c in r.json["chunk"]]
        since = r.json.get("next_batch")
        if not since:
            return ids
    raise AssertionError("pagination does not end")


@pytest.fixture(scope="module")
def rooms(server):
    """A handful of published rooms with distinct sizes and kinds."""
    tok = {}
    for n in ("dir_alice", "dir_bob", "dir_carol", "dir_dave"):
        server.add_user(n)
        tok[n] = server.login(n)
    a = tok["dir_alice"]
    made = {}
    made["big"] = create(server, a, {"preset": "public_chat", "visibility": "public",
                                     "name": "DirBig Garden Club", "topic": "roses and 100% tulips",
                                     "room_alias_name": "dir-big"})
    for n in ("dir_bob", "dir_carol"):
        r = server.request("POST", f"/_matrix/client/v3/join/{q(made['big'])}", {}, token=tok[n])
        assert r.status == 200, r
    made["mid"] = create(server, a, {"preset": "public_chat", "visibility": "public",
                                     "name": "DirMid chess", "room_alias_name": "dir-mid"})
    server.request("POST", f"/_matrix/client/v3/join/{q(made['mid'])}", {}, token=tok["dir_bob"])
    made["space"] = create(server, a, {"preset": "public_chat", "visibility": "public",
                                       "name": "DirSpace hub", "creation_content": {"type": "m.space"}})
    made["knock"] = create(server, a, {"preset": "private_chat", "visibility": "public",
                                       "name": "DirKnock club", "initial_state": [
                                           {"type": "m.room.join_rules", "state_key": "",
                                            "content": {"join_rule": "knock"}}]})
    # Published but invite-only and not world-readable: not listed (as Synapse).
    made["invite"] = create(server, a, {"preset": "private_chat", "visibility": "public",
                                        "name": "DirInvite secret"})
    made["unlisted"] = create(server, a, {"preset": "public_chat", "name": "DirUnlisted"})
    made["readable"] = create(server, a, {"preset": "private_chat", "visibility": "public",
                                          "name": "DirReadable archive", "initial_state": [
                                              {"type": "m.room.history_visibility", "state_key": "",
                                               "content": {"history_visibility": "world_readable"}}]})
    return made, tok


def test_listing_for_local_users(server, rooms):
    made, tok = rooms
    r = public_rooms(server, tok["dir_dave"], {"filter": {"generic_search_term": "dir"}})
    assert r.status == 200, r
    chunk = {c["room_id"]: c for c in r.json["chunk"]}
    for k in ("big", "mid", "space", "knock", "readable"):
        assert made[k] in chunk, k
    assert made["invite"] not in chunk and made["unlisted"] not in chunk
    big = chunk[made["big"]]
    assert big == {"room_id": made["big"], "name": "DirBig Garden Club", "topic": "roses and 100% tulips",
                   "canonical_alias": f"#dir-big:{server.server_name}", "num_joined_members": 3,
                   "world_readable": False, "guest_can_join": False, "join_rule": "public"}
    assert chunk[made["space"]]["room_type"] == "m.space"
    assert chunk[made["knock"]]["join_rule"] == "knock"
    assert chunk[made["readable"]]["world_readable"] is True
    assert chunk[made["readable"]]["guest_can_join"] is True
    # Largest first, then room ID.
    order = [c["room_id"] for c in r.json["chunk"]]
    assert order.index(made["big"]) < order.index(made["mid"]) < order.index(made["space"])
    assert r.json["total_room_count_estimate"] == len(r.json["chunk"])
    # GET lists them too.
    r = public_rooms(server, tok["dir_dave"], query="?limit=100")
    assert r.status == 200 and made["big"] in [c["room_id"] for c in r.json["chunk"]]


def test_search_and_room_types(server, rooms):
    made, tok = rooms
    t = tok["dir_dave"]
    ids = lambda body: [c["room_id"] for c in public_rooms(server, t, body).json["chunk"]]
    assert ids({"filter": {"generic_search_term": "TULIPS"}}) == [made["big"]]      # topic, any case
    assert ids({"filter": {"generic_search_term": "dir-mid"}}) == [made["mid"]]     # alias
    assert ids({"filter": {"generic_search_term": "100%"}}) == [made["big"]]        # % is literal
    assert ids({"filter": {"generic_search_term": "_"}}) == []                      # so is _
    spaces = ids({"filter": {"generic_search_term": "dir", "room_types": ["m.space"]}})
    assert spaces == [made["space"]]
    plain = ids({"filter": {"generic_search_term": "dir", "room_types": [None]}})
    assert made["space"] not in plain and made["big"] in plain
    both = ids({"filter": {"generic_search_term": "dir", "room_types": [None, "m.space"]}})
    assert set(both) == set(plain) | {made["space"]}
    assert set(ids({"filter": {"generic_search_term": "dir", "room_types": []}})) == set(both)
    for bad in ({"filter": "x"}, {"filter": {"generic_search_term": 5}}, {"filter": {"room_types": "m.space"}},
                {"filter": {"room_types": [5]}}, {"limit": "ten"}, {"limit": -1}, {"since": 5},
                {"include_all_networks": "yes"}, {"third_party_instance_id": 7}):
        r = public_rooms(server, t, bad)
        assert r.status == 400 and r.json["errcode"] in ("M_BAD_JSON", "M_INVALID_PARAM"), (bad, r)


def test_pagination_both_ways(server, rooms):
    made, tok = rooms
    t = tok["dir_dave"]
    body = {"filter": {"generic_search_term": "dir"}}
    everything = [c["room_id"] for c in public_rooms(server, t, body).json["chunk"]]
    assert len(everything) == 5
    assert all_ids(server, t, dict(body, limit=2)) == everything
    r1 = public_rooms(server, t, dict(body, limit=2))
    assert "prev_batch" not in r1.json and r1.json["total_room_count_estimate"] == 5
    r2 = public_rooms(server, t, dict(body, limit=2, since=r1.json["next_batch"]))
    assert [c["room_id"] for c in r2.json["chunk"]] == everything[2:4]
    back = public_rooms(server, t, dict(body, limit=2, since=r2.json["prev_batch"]))
    assert [c["room_id"] for c in back.json["chunk"]] == everything[:2]
    assert "prev_batch" not in back.json and "next_batch" in back.json
    # GET takes the same tokens.
    r = public_rooms(server, t, query=f"?limit=2&since={q(r1.json['next_batch'])}")
    assert r.status == 200 and len(r.json["chunk"]) == 2
    for bad in ("?since=nonsense", "?since=" + q("Zm9v"), "?limit=x"):
        r = public_rooms(server, t, query=bad)
        assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", (bad, r)


def test_pagination_with_equal_sizes(server, rooms):
    """Rooms of equal size are ordered by room ID (descending, as Synapse),
    so pages of any size tile the list forwards and back."""
    made, tok = rooms
    a, t = tok["dir_alice"], tok["dir_dave"]
    tie = [create(server, a, {"preset": "public_chat", "visibility": "public", "name": f"EqualTie {i}"})
           for i in range(6)]
    r = server.request("POST", f"/_matrix/client/v3/join/{q(tie[0])}", {}, token=tok["dir_bob"])
    assert r.status == 200, r
    body = {"filter": {"generic_search_term": "equaltie"}}
    listed = public_rooms(server, t, body).json["chunk"]
    expected = [tie[0]] + sorted(tie[1:], reverse=True)
    assert [c["room_id"] for c in listed] == expected, listed
    assert [c["num_joined_members"] for c in listed] == [2] + [1] * 5, listed

    def fetch(since, limit):
        r = public_rooms(server, t, dict(body, limit=limit, **({"since": since} if since else {})))
        assert r.status == 200, r
        return r.json

    for limit in (1, 2, 4):
        check_paging(fetch, limit, expected)


def test_networks_and_servers(server, rooms):
    made, tok = rooms
    t = tok["dir_dave"]
    r = public_rooms(server, t, {"include_all_networks": True, "filter": {"generic_search_term": "dirbig"}})
    assert [c["room_id"] for c in r.json["chunk"]] == [made["big"]]
    r = public_rooms(server, t, {"third_party_instance_id": "irc|libera"})
    assert r.status == 200 and r.json["chunk"] == [] and r.json["total_room_count_estimate"] == 0
    r = public_rooms(server, t, {"third_party_instance_id": "irc"})
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    r = public_rooms(server, t, {"third_party_instance_id": "irc|x", "include_all_networks": True})
    assert r.status == 400
    r = public_rooms(server, t, {}, query="?server=" + q(server.server_name))
    assert r.status == 200 and made["big"] in [c["room_id"] for c in r.json["chunk"]]
    # Another server's directory needs federation, which can't browse yet.
    r = public_rooms(server, t, {}, query="?server=elsewhere.example")
    assert r.status == 502, r


def test_anonymous_and_remote_see_nothing_by_default(server, rooms):
    r = public_rooms(server)
    assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN"
    assert public_rooms(server, body={}).status == 401
    r = public_rooms(server, "not-a-token")
    assert r.status == 401 and r.json["errcode"] == "M_UNKNOWN_TOKEN"
    r = server.request("GET", "/_matrix/client/v1/room_summary/" + q(rooms[0]["big"]))
    assert r.status == 401
    # Other servers: the federation route wants a signed request.
    r = server.request("GET", "/_matrix/federation/v1/publicRooms")
    assert r.status == 401, r


def test_listing_visibility_get_and_put(server, rooms):
    made, tok = rooms
    a, b, d = tok["dir_alice"], tok["dir_bob"], tok["dir_dave"]
    path = lambda room: f"/_matrix/client/v3/directory/list/room/{q(room)}"
    assert server.request("GET", path(made["big"])).json == {"visibility": "public"}
    assert server.request("GET", path(made["unlisted"])).json == {"visibility": "private"}
    r = server.request("GET", path("!nope:" + server.server_name))
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    # Not in the room, or in it without the power: refused.
    r = server.request("PUT", path(made["unlisted"]), {"visibility": "public"}, token=d)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
    r = server.request("PUT", path(made["big"]), {"visibility": "private"}, token=b)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
    assert server.request("PUT", path(made["unlisted"]), {"visibility": "public"}).status == 401
    r = server.request("PUT", path(made["unlisted"]), {"visibility": "hidden"}, token=a)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    r = server.request("PUT", path("!nope:" + server.server_name), {"visibility": "public"}, token=a)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    # The moderator publishes; a body without visibility means public.
    assert server.request("PUT", path(made["unlisted"]), {}, token=a).status == 200
    assert server.request("GET", path(made["unlisted"])).json == {"visibility": "public"}
    ids = [c["room_id"] for c in public_rooms(server, d, {"filter": {"generic_search_term": "DirUnlisted"}}).json["chunk"]]
    assert ids == [made["unlisted"]]
    assert server.request("PUT", path(made["unlisted"]), {"visibility": "private"}, token=a).status == 200
    ids = [c["room_id"] for c in public_rooms(server, d, {"filter": {"generic_search_term": "DirUnlisted"}}).json["chunk"]]
    assert ids == []
    # A server admin may change any room's listing, member or not.
    server.add_user("dir_admin", admin=True)
    adm = server.login("dir_admin")
    assert server.request("PUT", path(made["mid"]), {"visibility": "private"}, token=adm).status == 200
    assert server.request("GET", path(made["mid"])).json == {"visibility": "private"}
    assert server.request("PUT", path(made["mid"]), {"visibility": "public"}, token=adm).status == 200


def test_rooms_everyone_left_drop_out(server, rooms):
    made, tok = rooms
    room = create(server, tok["dir_carol"], {"preset": "public_chat", "visibility": "public",
                                             "name": "DirEmpty soon"})
    find = lambda: [c["room_id"] for c in public_rooms(server, tok["dir_dave"], {
        "filter": {"generic_search_term": "DirEmpty"}}).json["chunk"]]
    assert find() == [room]
    assert server.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/leave", {}, token=tok["dir_carol"]).status == 200
    assert find() == []


@pytest.fixture(scope="module")
def open_server():
    """An opened directory, and publication rules."""
    with Server(extra_yaml="allow_public_rooms_without_auth: true\n"
                           "room_list_publication_rules:\n"
                           "  - user_id: '@dirr_spammer:*'\n"
                           "    action: deny\n"
                           "  - alias: '#ok-*'\n"
                           "    action: allow\n") as s:
        s.start()
        yield s


def test_anonymous_listing_when_allowed(open_server):
    s = open_server
    s.add_user("dirr_alice")
    t = s.login("dirr_alice")
    room = create(s, t, {"preset": "public_chat", "visibility": "public", "room_alias_name": "ok-open",
                         "name": "open one"})
    r = public_rooms(s)
    assert r.status == 200 and [c["room_id"] for c in r.json["chunk"]] == [room]
    # POST still wants a login (the spec gives it a token), and so does
    # browsing another server through ours.
    assert public_rooms(s, body={}).status == 401
    assert public_rooms(s, query="?server=elsewhere.example").status == 401
    r = s.request("GET", "/_matrix/client/v1/room_summary/" + q(room))
    assert r.status == 200 and r.json["room_id"] == room and "membership" not in r.json


def test_publication_rules(open_server):
    s = open_server
    for n in ("dirr_spammer", "dirr_bob"):
        s.add_user(n)
    spam, bob = s.login("dirr_spammer"), s.login("dirr_bob")
    path = lambda room: f"/_matrix/client/v3/directory/list/room/{q(room)}"
    # Refused at creation: the room is made, not published (as Synapse).
    room = create(s, spam, {"preset": "public_chat", "visibility": "public", "room_alias_name": "ok-spam"})
    assert s.request("GET", path(room)).json == {"visibility": "private"}
    r = s.request("PUT", path(room), {"visibility": "public"}, token=spam)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    # No alias matching #ok-*: no rule matches, so no.
    room = create(s, bob, {"preset": "public_chat", "visibility": "public", "room_alias_name": "nope"})
    assert s.request("GET", path(room)).json == {"visibility": "private"}
    # An alias that matches: yes.
    r = s.request("PUT", f"/_matrix/client/v3/directory/room/{q('#ok-bob:' + s.server_name)}",
                  {"room_id": room}, token=bob)
    assert r.status == 200, r
    assert s.request("PUT", path(room), {"visibility": "public"}, token=bob).status == 200
    # Unpublishing is always allowed to the moderator; admins pass the rules.
    assert s.request("PUT", path(room), {"visibility": "private"}, token=spam).status == 403
    assert s.request("PUT", path(room), {"visibility": "private"}, token=bob).status == 200
    s.add_user("dirr_admin", admin=True)
    adm = s.login("dirr_admin")
    room = create(s, adm, {"preset": "public_chat", "visibility": "public"})
    assert s.request("GET", path(room)).json == {"visibility": "public"}


def test_directory_off(tmp_path):
    with Server(extra_yaml="enable_room_list_search: false\n") as s:
        s.start()
        s.add_user("diroff", admin=True)
        t = s.login("diroff")
        room = create(s, t, {"preset": "public_chat", "visibility": "public"})
        r = public_rooms(s, t, {})
        assert r.status == 200 and r.json["chunk"] == []
        r = s.request("PUT", f"/_matrix/client/v3/directory/list/room/{q(room)}", {"visibility": "public"},
                      token=t)
        assert r.status == 403
