"""Receipts, read markers and typing notifications through the HTTP API."""
import itertools
import json
import urllib.parse

import pytest

V3 = "/_matrix/client/v3"
_txn = itertools.count()


def q(s):
    return urllib.parse.quote(s, safe="")


def send(server, token, room, content, typ="m.room.message"):
    r = server.request("PUT", f"{V3}/rooms/{q(room)}/send/{typ}/rt{next(_txn)}", content,
                       token=token)
    assert r.status == 200, r
    return r.json["event_id"]


def text(body):
    return {"msgtype": "m.text", "body": body}


@pytest.fixture(scope="module")
def rt(server):
    """alice and bob in a public room, carol outside it, a few messages."""
    class Ctx:
        pass
    c = Ctx()
    c.alice = server.add_user("rt_alice")
    c.bob = server.add_user("rt_bob")
    c.carol = server.add_user("rt_carol")
    c.at, c.bt, c.ct = (server.login(n) for n in ("rt_alice", "rt_bob", "rt_carol"))
    r = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=c.at)
    assert r.status == 200, r
    c.room = r.json["room_id"]
    r = server.request("POST", f"{V3}/join/{q(c.room)}", {}, token=c.bt)
    assert r.status == 200, r
    c.e1 = send(server, c.at, c.room, text("one"))
    c.e2 = send(server, c.at, c.room, text("two"))
    c.e3 = send(server, c.at, c.room, text("three"))
    # a thread under e3, and a reaction to a thread reply
    c.t1 = send(server, c.bt, c.room, {"msgtype": "m.text", "body": "in thread",
                                       "m.relates_to": {"rel_type": "m.thread",
                                                        "event_id": c.e3}})
    c.react = send(server, c.at, c.room, {"m.relates_to": {"rel_type": "m.annotation",
                                                           "event_id": c.t1, "key": "+1"}},
                   typ="m.reaction")
    r = server.request("POST", V3 + "/createRoom", {}, token=c.ct)
    c.other_room = r.json["room_id"]
    c.other_event = send(server, c.ct, c.other_room, text("elsewhere"))
    return c


def receipt(server, token, room, typ, event, body=None):
    return server.request("POST", f"{V3}/rooms/{q(room)}/receipt/{q(typ)}/{q(event)}",
                          body if body is not None else {}, token=token)


def stored(server, room, user, typ, thread=""):
    return server.psql(
        "SELECT event_id || '|' || data::text || '|' || stream_id FROM receipts WHERE room_id = '%s'"
        " AND user_id = '%s' AND receipt_type = '%s' AND thread_id = '%s'" % (room, user, typ, thread))


def test_read_receipt_stored_and_moves_only_forward(server, rt):
    r = receipt(server, rt.bt, rt.room, "m.read", rt.e2)
    assert r.status == 200 and r.json == {}
    ev, data, pos = stored(server, rt.room, rt.bob, "m.read").split("|")
    assert ev == rt.e2 and isinstance(json.loads(data)["ts"], int)
    assert "thread_id" not in json.loads(data)
    # an older event: accepted, ignored
    assert receipt(server, rt.bt, rt.room, "m.read", rt.e1).status == 200
    assert stored(server, rt.room, rt.bob, "m.read").split("|")[0] == rt.e2
    # the same again: nothing new
    assert receipt(server, rt.bt, rt.room, "m.read", rt.e2).status == 200
    assert stored(server, rt.room, rt.bob, "m.read").split("|")[2] == pos
    # a later one moves it, with a new stream position
    assert receipt(server, rt.bt, rt.room, "m.read", rt.e3).status == 200
    ev, _, pos2 = stored(server, rt.room, rt.bob, "m.read").split("|")
    assert ev == rt.e3 and int(pos2) > int(pos)
    # r0
    r = server.request("POST", f"/_matrix/client/r0/rooms/{q(rt.room)}/receipt/m.read/{q(rt.e3)}",
                       {}, token=rt.at)
    assert r.status == 200


def test_private_receipt_is_its_own_row(server, rt):
    assert receipt(server, rt.at, rt.room, "m.read.private", rt.e1).status == 200
    assert stored(server, rt.room, rt.alice, "m.read.private").split("|")[0] == rt.e1
    assert receipt(server, rt.at, rt.room, "m.read.private", rt.e2).status == 200
    assert stored(server, rt.room, rt.alice, "m.read.private").split("|")[0] == rt.e2


def test_threaded_receipts(server, rt):
    # main timeline
    r = receipt(server, rt.bt, rt.room, "m.read", rt.e2, {"thread_id": "main"})
    assert r.status == 200, r
    ev, data, _ = stored(server, rt.room, rt.bob, "m.read", "main").split("|")
    assert ev == rt.e2 and json.loads(data)["thread_id"] == "main"
    # in the thread rooted at e3: the reply, the root itself, a reaction to the reply
    for event in (rt.t1, rt.e3, rt.react):
        r = receipt(server, rt.bt, rt.room, "m.read", event, {"thread_id": rt.e3})
        assert r.status == 200, (event, r)
    ev, data, _ = stored(server, rt.room, rt.bob, "m.read", rt.e3).split("|")
    assert ev == rt.react and json.loads(data)["thread_id"] == rt.e3
    # an event of the thread is not in the main timeline, and vice versa
    r = receipt(server, rt.bt, rt.room, "m.read", rt.t1, {"thread_id": "main"})
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    r = receipt(server, rt.bt, rt.room, "m.read", rt.e1, {"thread_id": rt.e3})
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    # the unthreaded receipt is separate
    assert stored(server, rt.room, rt.bob, "m.read").split("|")[0] != rt.react


@pytest.mark.parametrize("body", [{"thread_id": ""}, {"thread_id": 5}, {"thread_id": None}])
def test_bad_thread_ids(server, rt, body):
    r = receipt(server, rt.bt, rt.room, "m.read", rt.e2, body)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"


def test_receipt_errors(server, rt):
    r = receipt(server, rt.bt, rt.room, "m.unknown", rt.e2)
    assert r.status == 400
    r = receipt(server, rt.bt, rt.room, "m.fully_read", rt.e2, {"thread_id": "main"})
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    r = receipt(server, rt.bt, rt.room, "m.read", "not-an-event")
    assert r.status == 400
    # carol is not in the room
    r = receipt(server, rt.ct, rt.room, "m.read", rt.e2)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    # an event of another room, an unknown event
    r = receipt(server, rt.bt, rt.room, "m.read", rt.other_event)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    r = receipt(server, rt.bt, rt.room, "m.read", "$nope")
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    # an unknown room: forbidden, like any room the user is not in
    r = receipt(server, rt.bt, "!nope:" + server.server_name, "m.read", rt.e2)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = server.request("POST", f"{V3}/rooms/{q(rt.room)}/receipt/m.read/{q(rt.e2)}", {})
    assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN"
    r = server.request("POST", f"{V3}/rooms/{q(rt.room)}/receipt/m.read/{q(rt.e2)}",
                       raw=b"[]", token=rt.bt)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"


def fully_read(server, token, user, room):
    return server.request("GET", f"{V3}/user/{q(user)}/rooms/{q(room)}/account_data/m.fully_read",
                          token=token)


def test_fully_read_through_the_receipt_endpoint(server, rt):
    r = receipt(server, rt.at, rt.room, "m.fully_read", rt.e2)
    assert r.status == 200
    assert fully_read(server, rt.at, rt.alice, rt.room).json == {"event_id": rt.e2}
    # never under m.receipt
    assert stored(server, rt.room, rt.alice, "m.fully_read") == ""
    # only forward
    receipt(server, rt.at, rt.room, "m.fully_read", rt.e1)
    assert fully_read(server, rt.at, rt.alice, rt.room).json == {"event_id": rt.e2}
    receipt(server, rt.at, rt.room, "m.fully_read", rt.e3)
    assert fully_read(server, rt.at, rt.alice, rt.room).json == {"event_id": rt.e3}


def test_read_markers(server, rt):
    p = f"{V3}/rooms/{q(rt.room)}/read_markers"
    r = server.request("POST", p, {"m.fully_read": rt.e2, "m.read": rt.e2,
                                   "m.read.private": rt.e3}, token=rt.bt)
    assert r.status == 200 and r.json == {}
    assert fully_read(server, rt.bt, rt.bob, rt.room).json == {"event_id": rt.e2}
    assert stored(server, rt.room, rt.bob, "m.read.private").split("|")[0] == rt.e3
    # m.fully_read is optional since v1.4; unknown keys are ignored
    r = server.request("POST", p, {"m.read": rt.e3, "org.example.unknown": "x"}, token=rt.bt)
    assert r.status == 200
    assert stored(server, rt.room, rt.bob, "m.read").split("|")[0] == rt.e3
    r = server.request("POST", p, {"m.fully_read": rt.e3}, token=rt.bt)
    assert fully_read(server, rt.bt, rt.bob, rt.room).json == {"event_id": rt.e3}
    # errors
    r = server.request("POST", p, {"m.fully_read": 5}, token=rt.bt)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = server.request("POST", p, {"m.read": rt.other_event}, token=rt.bt)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    r = server.request("POST", p, {"m.fully_read": rt.e1}, token=rt.ct)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = server.request("POST", p, {"m.fully_read": rt.e1})
    assert r.status == 401
    r = server.request("POST", p.replace("/v3/", "/r0/"), {"m.fully_read": rt.e1}, token=rt.bt)
    assert r.status == 200
    # the marker stays where it was: e1 is older
    assert fully_read(server, rt.bt, rt.bob, rt.room).json == {"event_id": rt.e3}


# ---- typing ----

def typing(server, token, room, user, body):
    return server.request("PUT", f"{V3}/rooms/{q(room)}/typing/{q(user)}", body, token=token)


def test_typing_endpoint(server, rt):
    r = typing(server, rt.at, rt.room, rt.alice, {"typing": True, "timeout": 30000})
    assert r.status == 200 and r.json == {}
    assert typing(server, rt.at, rt.room, rt.alice, {"typing": False}).status == 200
    # no timeout: the default applies
    assert typing(server, rt.bt, rt.room, rt.bob, {"typing": True}).status == 200
    assert typing(server, rt.bt, rt.room, rt.bob, {"typing": False}).status == 200
    r = server.request("PUT", f"/_matrix/client/r0/rooms/{q(rt.room)}/typing/{q(rt.bob)}",
                       {"typing": False}, token=rt.bt)
    assert r.status == 200


def test_typing_errors(server, rt):
    r = typing(server, rt.at, rt.room, rt.bob, {"typing": True, "timeout": 1000})
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = typing(server, rt.ct, rt.room, rt.carol, {"typing": True, "timeout": 1000})
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    for body in ({}, {"typing": "yes"}, {"typing": True, "timeout": "30000"},
                 {"typing": True, "timeout": -5}):
        r = typing(server, rt.at, rt.room, rt.alice, body)
        assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON", body
    r = typing(server, None, rt.room, rt.alice, {"typing": True})
    assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN"
