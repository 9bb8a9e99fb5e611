"""test_sync_federation_gap.py — /sync over a hole in a room's timeline.

Complement's TestSyncTimelineGap (Synapse's timeline_gaps): events from
another server whose predecessors are too many for get_missing_events
leave a gap in the DAG. An incremental /sync across it must say `limited`
and start the timeline after the gap, so a client never shows what came
before the gap and what came after it as one run; it pages back over the
gap from prev_batch. Server A is a pvyhs, F a server played by Python (the
helpers of test_federation_rooms.py).
"""
import json
import urllib.parse

from test_federation_rooms import (  # noqa: F401  (fixtures)
    fed, froom, pki, push_past_gap, q, send_text, send_txn)

V3 = "/_matrix/client/v3"


def sync(s, tok, since=None, flt=None):
    qs = {"timeout": "0"}
    if since:
        qs["since"] = since
    if flt:
        qs["filter"] = json.dumps(flt)
    r = s.request("GET", f"{V3}/sync?" + urllib.parse.urlencode(qs), token=tok)
    assert r.status == 200, r.raw
    return r.json


def test_incremental_sync_across_a_federation_gap_is_limited(fed, froom):
    a = fed["a"]
    fr, fred, room, atok = froom["fr"], froom["fred"], froom["room"], froom["atok"]
    flt = {"room": {"timeline": {"limit": 20}}}
    since = sync(a, atok, flt=flt)["next_batch"]
    before = send_text(a, atok, room, "before the gap")
    # F makes 25 messages, and pushes only the last: get_missing_events
    # brings the 10 before it, the oldest of those gets its state from
    # /state_ids; the 14 before them stay unknown: the gap.
    ids = push_past_gap(fed, fr, fred, 25, "far")
    got = sync(a, atok, since=since, flt=flt)
    tl = got["rooms"]["join"][room]["timeline"]
    # What follows the gap, and nothing from before it, although all of it
    # (alice's message too) would fit in the limit of 20.
    assert [e["event_id"] for e in tl["events"]] == ids[14:], tl
    assert tl["limited"] is True and tl["prev_batch"], tl
    # Paging back from prev_batch reaches alice's message, across the gap.
    r = a.request("GET", f"{V3}/rooms/{q(room)}/messages?dir=b&limit=5&from={q(tl['prev_batch'])}",
                  token=atok)
    assert r.status == 200 and r.json["chunk"][0]["event_id"] == before, r.raw
    # From a token after the gap: F's next message, on known ground, is
    # an ordinary unlimited timeline.
    nxt = got["next_batch"]
    ev, eid = fr.build(fred, "m.room.message", {"msgtype": "m.text", "body": "after the gap"})
    fr.advance(ev, eid)
    r = send_txn(fed, [ev])
    assert r.status == 200 and r.json == {"pdus": {eid: {}}}, r.raw
    tl = sync(a, atok, since=nxt, flt=flt)["rooms"]["join"][room]["timeline"]
    assert [e["event_id"] for e in tl["events"]] == [eid] and tl["limited"] is False, tl
    # An initial sync says `limited` too, though the whole timeline fits in
    # its limit: there is history to page for in the gap (Synapse).
    tl = sync(a, atok, flt={"room": {"timeline": {"limit": 100}}})["rooms"]["join"][room]["timeline"]
    assert tl["events"][0]["type"] == "m.room.create" and tl["events"][-1]["event_id"] == eid, tl
    assert tl["limited"] is True, tl
