"""test_federation_gaps.py — a PDU pushed to A whose prev events A lacks,
when /get_missing_events cannot bring the whole gap.

F (a server played by Python, test_federation_rooms.py) pushes an event;
A asks F for the events in between, and an event so pulled whose own prev
events are still missing takes the state after them from F (/state_ids,
then /event for what A lacks). As in Synapse (federation_event.py,
_get_state_ids_after_missing_prev_event), state events that cannot be had
are left out of that state rather than failing the whole gap; an event
Synapse before v11 let into a room (a state key over 255 bytes but not 255
codepoints) is stored rejected rather than dropped, so the events after it
still have their prev event; and a pushed event whose prev events stay
missing is dropped with {} as its /send result, the answer Synapse gives
since it handles PDUs after answering.
"""
import copy
import hashlib
import time
import urllib.parse

from unpaddedbase64 import encode_base64

from test_federation_rooms import (FakeRoom, create_room, fake_join, fed, froom,  # noqa: F401
                                   q, send_txn, timeline_bodies, user)
from test_federation_transport import pki  # noqa: F401


def serve_events(f, fr, withheld=()):
    """F's /event: the events it knows, but the withheld ones."""
    def event(method, path, body):
        eid = urllib.parse.unquote(path.split("/event/")[1])
        if eid in fr.events and eid not in withheld:
            return 200, {"origin": f.name, "origin_server_ts": 0, "pdus": [fr.events[eid]]}
        return 404, {"errcode": "M_NOT_FOUND", "error": "no"}
    return event


def test_state_at_a_gap_goes_without_what_cannot_be_had(fed, froom):
    """The gap's oldest event takes the state at its missing prev event from
    /state_ids; two of those state events cannot be had (zed's join is not
    served, the topic zed set cites it): the event and the pushed one are
    still stored, and that state simply lacks them."""
    a, f = fed["a"], fed["f"]
    fr, fred, room, atok = froom["fr"], froom["fred"], froom["room"], froom["atok"]
    zed = f.user("zed")
    y, yid = fr.build(zed, "m.room.member", {"membership": "join"}, state_key=zed)
    fr.advance(y, yid)
    x, xid = fr.build(zed, "m.room.topic", {"topic": "zed was here"}, state_key="")
    fr.advance(x, xid)
    state_at_p = list(fr.state.values())
    p, pid = fr.build(fred, "m.room.message", {"msgtype": "m.text", "body": "before the gap"})
    fr.advance(p, pid)
    g, gid = fr.build(fred, "m.room.message", {"msgtype": "m.text", "body": "in the gap"})
    fr.advance(g, gid)
    t, tid = fr.build(fred, "m.room.message", {"msgtype": "m.text", "body": "on top"})
    asked = []

    def state_ids(method, path, body):
        asked.append(urllib.parse.parse_qs(urllib.parse.urlparse(path).query)["event_id"])
        chain = [e for e, pdu in fr.events.items() if "state_key" in pdu]
        return 200, {"pdu_ids": state_at_p, "auth_chain_ids": chain}
    f.routes.update({"/_matrix/federation/v1/get_missing_events/":
                     lambda m, pth, b: (200, {"events": [g]}),
                     "/_matrix/federation/v1/state_ids/": state_ids,
                     "/_matrix/federation/v1/event/": serve_events(f, fr, withheld={yid})})
    try:
        r = send_txn(fed, [t])
    finally:
        f.routes.clear()
    assert r.status == 200 and r.json == {"pdus": {tid: {}}}, r.raw
    fr.advance(t, tid)
    assert asked == [[pid]], asked
    bodies = timeline_bodies(a, atok, room)
    assert "in the gap" in bodies and "on top" in bodies, bodies
    # The prev event is known (an outlier); what could not be had is not.
    assert a.psql(f"SELECT outlier FROM events WHERE event_id = '{pid}'") == "t"
    assert a.psql(f"SELECT count(*) FROM events WHERE event_id IN ('{xid}', '{yid}')") == "0"
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(zed)}",
                  token=atok)
    assert r.status == 404, r.raw
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.topic/", token=atok)
    assert r.status == 404 or r.json.get("topic") != "zed was here", r.raw


def test_pushed_event_whose_prevs_cannot_be_had_is_dropped(fed, froom):
    """Synapse's answer: {} (it handles the PDU after answering), and the
    event is not stored: nobody could check the state it claims."""
    a, f = fed["a"], fed["f"]
    fr, fred = froom["fr"], froom["fred"]
    ghost = "$" + encode_base64(hashlib.sha256(str(time.time()).encode()).digest(), urlsafe=True)
    ev, eid = fr.build(fred, "m.room.message", {"msgtype": "m.text", "body": "orphan"},
                       prev=[ghost])
    r = send_txn(fed, [ev])  # F answers get_missing_events with 404
    assert r.status == 200 and r.json == {"pdus": {eid: {}}}, r.raw
    assert a.psql(f"SELECT count(*) FROM events WHERE event_id = '{eid}'") == "0"
    assert f"dropping PDU {eid}" in a.read_log()


# ---- room version 10: size limits counted in codepoints by older Synapse --------------

V10_TOP = {"event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
           "signatures", "depth", "prev_events", "prev_state", "auth_events", "origin",
           "origin_server_ts", "membership"}
V10_CONTENT = {
    "m.room.member": {"membership", "join_authorised_via_users_server"},
    "m.room.create": {"creator"},
    "m.room.join_rules": {"join_rule", "allow"},
    "m.room.power_levels": {"ban", "events", "events_default", "kick", "redact",
                            "state_default", "users", "users_default"},
    "m.room.history_visibility": {"history_visibility"},
}


def redact_v10(ev):
    out = {k: copy.deepcopy(v) for k, v in ev.items() if k in V10_TOP}
    keep = V10_CONTENT.get(ev["type"], set())
    out["content"] = {k: copy.deepcopy(v) for k, v in ev.get("content", {}).items() if k in keep}
    return out


class FakeRoomV10(FakeRoom):
    redact_fn = staticmethod(redact_v10)

    def build(self, sender, type_, content, state_key=None, prev=None):
        return super().build(sender, type_, content, state_key, prev, auth_types=[
            ("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", sender)])


def test_oversized_state_key_of_a_v10_room_is_stored_rejected(fed):
    """A state key of 70 four-byte characters (280 bytes, 70 codepoints) in a
    v10 room, pulled through /get_missing_events: stored rejected, so the
    pushed event citing it as its prev event is accepted and shown."""
    a, f = fed["a"], fed["f"]
    alice, atok = user(a, "fedgap_alice")
    room = create_room(a, atok, room_version="10")
    fred, fr, _ = fake_join(fed, room, "fred10", room_cls=FakeRoomV10, vers=("10",))
    assert fr.version == "10"

    breaker, bid = fr.build(fred, "my.room.breaker", {}, state_key="\U0001F4A5" * 70)
    fr.advance(breaker, bid)
    msg, mid = fr.build(fred, "m.room.message", {"msgtype": "m.text", "body": "after the breaker"})
    asked = []

    def missing(method, path, body):
        asked.append(body)
        return 200, {"events": [breaker]}
    f.routes["/_matrix/federation/v1/get_missing_events/"] = missing
    try:
        r = send_txn(fed, [msg])
    finally:
        f.routes.clear()
    assert r.status == 200 and r.json == {"pdus": {mid: {}}}, r.raw
    assert asked and asked[0]["latest_events"] == [mid], asked
    assert a.psql(f"SELECT outlier::text || ' ' || rejected_reason FROM events"
                  f" WHERE event_id = '{bid}'") == "false 'state_key' is longer than 255 bytes"
    assert "after the breaker" in timeline_bodies(a, atok, room)
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state", token=atok)
    assert r.status == 200 and not [e for e in r.json if e["type"] == "my.room.breaker"], r.raw
