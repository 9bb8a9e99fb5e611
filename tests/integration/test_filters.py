"""Filters: POST /user/{userId}/filter and GET /user/{userId}/filter/{filterId}."""
import urllib.parse

import pytest

V3 = "/_matrix/client/v3"


def q(s):
    return urllib.parse.quote(s, safe="")


@pytest.fixture(scope="module")
def fl(server):
    class Ctx:
        pass
    c = Ctx()
    c.alice = server.add_user("fl_alice")
    c.bob = server.add_user("fl_bob")
    c.at = server.login("fl_alice")
    c.bt = server.login("fl_bob")
    return c


def post(server, user, body, token):
    return server.request("POST", f"{V3}/user/{q(user)}/filter", body, token=token)


def get(server, user, fid, token):
    return server.request("GET", f"{V3}/user/{q(user)}/filter/{q(fid)}", token=token)


# What matrix-js-sdk uploads before it reaches PREPARED, and Element's
# lazy-loading filter.
JS_SDK_FILTER = {"room": {"timeline": {"limit": 20}, "state": {"lazy_load_members": True}}}
FULL_FILTER = {
    "event_fields": ["type", "content", "sender", "content.m\\.relates_to"],
    "event_format": "client",
    "presence": {"types": ["m.presence"], "not_senders": ["@spam:example.com"], "limit": 5},
    "account_data": {"types": ["m.*"], "not_types": ["m.push_rules"]},
    "room": {
        "rooms": ["!a:example.com", "!v12roomwithoutserver"],
        "not_rooms": ["!b:example.com"],
        "include_leave": True,
        "ephemeral": {"types": ["m.receipt", "m.typing"], "not_senders": ["@spam:example.com"]},
        "state": {"types": ["m.room.*"], "lazy_load_members": True,
                  "include_redundant_members": False},
        "timeline": {"limit": 10, "types": ["m.room.message"], "contains_url": False,
                     "senders": ["@alice:example.com"], "unread_thread_notifications": True},
        "account_data": {"not_types": ["*"]},
    },
    "org.example.future_key": {"anything": [1]},
}


def test_round_trip(server, fl):
    for body in (JS_SDK_FILTER, FULL_FILTER, {}):
        r = post(server, fl.alice, body, fl.at)
        assert r.status == 200, r
        fid = r.json["filter_id"]
        assert isinstance(fid, str) and fid and not fid.startswith("{")
        r = get(server, fl.alice, fid, fl.at)
        assert r.status == 200 and r.json == body
        # r0
        r = server.request("GET", f"/_matrix/client/r0/user/{q(fl.alice)}/filter/{fid}",
                           token=fl.at)
        assert r.status == 200 and r.json == body


def test_same_filter_same_id_new_filter_new_id(server, fl):
    a = post(server, fl.alice, {"room": {"timeline": {"limit": 7}}}, fl.at).json["filter_id"]
    b = post(server, fl.alice, {"room": {"timeline": {"limit": 7}}}, fl.at).json["filter_id"]
    c = post(server, fl.alice, {"room": {"timeline": {"limit": 8}}}, fl.at).json["filter_id"]
    assert a == b != c
    assert int(c) > int(a)
    # IDs are per user: bob's filter doesn't collide and can't be read by alice
    d = post(server, fl.bob, {"room": {"timeline": {"limit": 9}}}, fl.bt).json["filter_id"]
    r = get(server, fl.bob, d, fl.bt)
    assert r.json == {"room": {"timeline": {"limit": 9}}}
    r = get(server, fl.alice, d, fl.at)
    assert r.status == 404 or r.json != {"room": {"timeline": {"limit": 9}}}


def test_unknown_filter_is_404(server, fl):
    for fid in ["999999", "abc", "-1", "{}", "1.5"]:
        r = get(server, fl.alice, fid, fl.at)
        assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", fid


def test_other_users_filters_are_forbidden(server, fl):
    fid = post(server, fl.alice, {"presence": {"limit": 3}}, fl.at).json["filter_id"]
    r = get(server, fl.alice, fid, fl.bt)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = post(server, fl.alice, {}, fl.bt)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"


def test_tokens_are_required(server, fl):
    r = server.request("POST", f"{V3}/user/{q(fl.alice)}/filter", {})
    assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN"
    r = get(server, fl.alice, "0", "bogus")
    assert r.status == 401 and r.json["errcode"] == "M_UNKNOWN_TOKEN"


@pytest.mark.parametrize("bad", [
    {"event_fields": "type"},
    {"event_fields": [1]},
    {"event_format": "xml"},
    {"event_format": 1},
    {"presence": []},
    {"presence": {"limit": -3}},
    {"presence": {"limit": 1.5}},
    {"presence": {"limit": "10"}},
    {"account_data": {"types": "m.direct"}},
    {"account_data": {"not_types": [None]}},
    {"presence": {"senders": ["alice"]}},
    {"presence": {"not_senders": ["@nocolon"]}},
    {"room": []},
    {"room": {"rooms": ["#alias:example.com"]}},
    {"room": {"not_rooms": [5]}},
    {"room": {"include_leave": "yes"}},
    {"room": {"timeline": {"limit": -1}}},
    {"room": {"timeline": []}},
    {"room": {"state": {"lazy_load_members": 1}}},
    {"room": {"state": {"include_redundant_members": "true"}}},
    {"room": {"timeline": {"contains_url": "false"}}},
    {"room": {"timeline": {"unread_thread_notifications": None}}},
    {"room": {"ephemeral": {"rooms": ["room"]}}},
    {"room": {"account_data": {"senders": [{}]}}},
])
def test_invalid_filters_are_refused(server, fl, bad):
    r = post(server, fl.alice, bad, fl.at)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON", (bad, r)


def test_body_must_be_an_object(server, fl):
    r = server.request("POST", f"{V3}/user/{q(fl.alice)}/filter", raw=b"[]", token=fl.at)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = server.request("POST", f"{V3}/user/{q(fl.alice)}/filter", raw=b"{", token=fl.at)
    assert r.status == 400 and r.json["errcode"] == "M_NOT_JSON"


def test_integral_limit_written_as_real_is_accepted(server, fl):
    r = post(server, fl.alice, {"room": {"timeline": {"limit": 10.0}}}, fl.at)
    assert r.status == 200
