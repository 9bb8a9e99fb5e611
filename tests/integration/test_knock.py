"""Join requests (issue 7): knocking on a channel, the knocker's pending state
in /sync, the moderators' queue — the knock in their /sync and a notification
from pvyhs's server-default push rule .org.pvyhs.rule.knock, which reaches only
members able to answer — and the answers: approve (invite) and deny (kick)
from `pvyhs channel` and from the API, withdrawal by leaving, rate limits.
Knocks from other servers (make_knock/send_knock) are for the federation
tests."""
import json
import os
import subprocess
import threading
import time
import urllib.parse

import pytest

from harness import BIN, Server

JS_DIR = os.path.join(os.path.dirname(__file__), "js")
NODE = os.path.join(JS_DIR, "node_modules", ".bin", "node")


def q(s):
    return urllib.parse.quote(s, safe="")


def sync(s, tok, since=None, timeout=0):
    path = "/_matrix/client/v3/sync?timeout=%d" % timeout + (f"&since={q(since)}" if since else "")
    r = s.request("GET", path, token=tok, timeout=60)
    assert r.status == 200, r
    return r.json


def member(s, tok, room, user):
    r = s.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(user)}?format=event",
                  token=tok)
    assert r.status == 200, r
    return r.json


def knock(s, tok, room, reason=None):
    body = {"reason": reason} if reason else {}
    return s.request("POST", f"/_matrix/client/v3/knock/{q(room)}", body, token=tok)


def cli(s, *args):
    return s.cli("channel", args[0], "--config", s.config, *args[1:])


@pytest.fixture(scope="module")
def channel(server):
    toks, ids = {}, {}
    for n in ("kn_mod", "kn_member", "kn_k1", "kn_k2", "kn_k3", "kn_k4", "kn_k5", "kn_banned"):
        ids[n] = server.add_user(n)
        toks[n] = server.login(n)
    r = server.request("POST", "/_matrix/client/v3/createRoom", {
        "preset": "private_chat", "name": "kn club", "room_alias_name": "kn-club",
        "invite": [ids["kn_member"]],
        "initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]},
        token=toks["kn_mod"])
    assert r.status == 200, r
    room = r.json["room_id"]
    assert server.request("POST", f"/_matrix/client/v3/join/{q(room)}", {}, token=toks["kn_member"]).status == 200
    r = server.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/ban", {"user_id": ids["kn_banned"]},
                       token=toks["kn_mod"])
    assert r.status == 200
    return room, toks, ids


def test_knock_rule_is_a_server_default_before_member_event(server, channel):
    room, toks, ids = channel
    r = server.request("GET", "/_matrix/client/v3/pushrules/", token=toks["kn_mod"])
    rules = [x["rule_id"] for x in r.json["global"]["override"]]
    i = rules.index(".org.pvyhs.rule.knock")
    assert rules[i + 1] == ".m.rule.member_event"
    rule = r.json["global"]["override"][i]
    assert rule["default"] is True and rule["enabled"] is True and "notify" in rule["actions"]


def test_knock_queue_and_cli_approve(server, channel):
    room, toks, ids = channel
    mod_since = sync(server, toks["kn_mod"])["next_batch"]
    mem_since = sync(server, toks["kn_member"])["next_batch"]
    r = knock(server, toks["kn_k1"], f"#kn-club:{server.server_name}", "hello, it's k1")
    assert r.status == 200 and r.json == {"room_id": room}, r
    # The knocker sees the request pending, with the room's stripped state.
    k = sync(server, toks["kn_k1"])["rooms"]["knock"][room]["knock_state"]["events"]
    mine = [e for e in k if e["type"] == "m.room.member" and e["state_key"] == ids["kn_k1"]]
    assert mine and mine[0]["content"]["membership"] == "knock"
    assert any(e["type"] == "m.room.join_rules" for e in k)
    # The moderator sees the knock and is notified; a member who cannot answer is not.
    m = sync(server, toks["kn_mod"], mod_since)["rooms"]["join"][room]
    evs = [e for e in m["timeline"]["events"] if e["type"] == "m.room.member"
           and e["state_key"] == ids["kn_k1"]]
    assert evs and evs[-1]["content"]["membership"] == "knock"
    assert evs[-1]["content"]["reason"] == "hello, it's k1"
    assert m["unread_notifications"]["notification_count"] >= 1
    assert m["unread_notifications"]["highlight_count"] >= 1
    n = server.request("GET", "/_matrix/client/v3/notifications", token=toks["kn_mod"]).json
    assert any(x["event"]["event_id"] == evs[-1]["event_id"] for x in n["notifications"])
    mm = sync(server, toks["kn_member"], mem_since)["rooms"]["join"][room]
    assert mm["unread_notifications"].get("notification_count", 0) == 0
    # The queue, from the command line.
    r = cli(server, "requests", f"#kn-club:{server.server_name}")
    assert r.returncode == 0, r.stderr
    lines = [l.split("\t") for l in r.stdout.splitlines()]
    assert [l[0] for l in lines] == [ids["kn_k1"]] and lines[0][3] == "hello, it's k1"
    assert cli(server, "requests", "kn-club").stdout == r.stdout          # a local alias's name
    # Approve: an invite from the member with the highest power level.
    r = cli(server, "approve", room, "kn_k1")
    assert r.returncode == 0, r.stderr
    ev = member(server, toks["kn_mod"], room, ids["kn_k1"])
    assert ev["content"]["membership"] == "invite" and ev["sender"] == ids["kn_mod"]
    assert server.request("POST", f"/_matrix/client/v3/join/{q(room)}", {}, token=toks["kn_k1"]).status == 200
    assert member(server, toks["kn_mod"], room, ids["kn_k1"])["content"]["membership"] == "join"
    assert cli(server, "requests", room).stdout == ""
    # The CLI's temporary device is gone again.
    assert server.psql(f"SELECT count(*) FROM devices WHERE device_id LIKE 'PVYHSCLI%'") == "0"


def test_cli_approve_reaches_a_server_that_checked_the_knock(server, channel):
    """The server keeps the current-state events it authorised a send with
    while the room's state stamp stays (rooms/current_cache.c). Here it has
    just checked a send against the knocker's membership (knock) when another
    process, the command line, invites them: the join must be checked against
    the invite, not the knock the server remembers."""
    _, toks, ids = channel
    r = server.request("POST", "/_matrix/client/v3/createRoom", {
        "preset": "private_chat", "name": "kn stamp",
        "initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]},
        token=toks["kn_mod"])
    assert r.status == 200, r
    room = r.json["room_id"]
    uid = server.add_user("kn_k6")
    tok = server.login("kn_k6")
    assert knock(server, tok, room, "k6").status == 200
    for i in range(2):  # looked up (and kept) with the knock as the member event
        r = server.request("PUT", f"/_matrix/client/v3/rooms/{q(room)}/send/m.room.message/k6-{i}",
                           {"msgtype": "m.text", "body": "let me in"}, token=tok)
        assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
    stamp = server.psql(f"SELECT state_stamp FROM rooms WHERE room_id = '{room}'")
    r = cli(server, "approve", room, "kn_k6")
    assert r.returncode == 0, r.stderr
    assert int(server.psql(f"SELECT state_stamp FROM rooms WHERE room_id = '{room}'")) > int(stamp)
    r = server.request("POST", f"/_matrix/client/v3/join/{q(room)}", {}, token=tok)
    assert r.status == 200, r
    r = server.request("PUT", f"/_matrix/client/v3/rooms/{q(room)}/send/m.room.message/k6-in",
                       {"msgtype": "m.text", "body": "in"}, token=tok)
    assert r.status == 200, r
    assert member(server, toks["kn_mod"], room, uid)["content"]["membership"] == "join"


def test_cli_deny_and_withdraw(server, channel):
    room, toks, ids = channel
    assert knock(server, toks["kn_k2"], room, "k2 here").status == 200
    assert knock(server, toks["kn_k3"], room).status == 200
    since = sync(server, toks["kn_k2"])["next_batch"]
    r = cli(server, "deny", room, ids["kn_k2"], "--reason", "not today", "--as", "kn_mod")
    assert r.returncode == 0, r.stderr
    ev = member(server, toks["kn_mod"], room, ids["kn_k2"])
    assert ev["content"] == {"membership": "leave", "reason": "not today"} and ev["sender"] == ids["kn_mod"]
    left = sync(server, toks["kn_k2"], since)["rooms"]["leave"]
    assert room in left
    # Withdrawn by the knocker's own leave: out of the queue.
    assert server.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/leave", {}, token=toks["kn_k3"]).status == 200
    assert member(server, toks["kn_mod"], room, ids["kn_k3"])["sender"] == ids["kn_k3"]
    assert cli(server, "requests", room).stdout == ""
    # Denied users may ask again.
    assert knock(server, toks["kn_k2"], room).status == 200
    r = cli(server, "deny", room, ids["kn_k2"])
    assert r.returncode == 0, r.stderr


def test_api_approve_and_deny(server, channel):
    room, toks, ids = channel
    for k in ("kn_k4", "kn_k5"):
        assert knock(server, toks[k], room).status == 200
    r = server.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": ids["kn_k4"]},
                       token=toks["kn_mod"])
    assert r.status == 200, r
    assert member(server, toks["kn_mod"], room, ids["kn_k4"])["content"]["membership"] == "invite"
    # A member without the kick power cannot deny.
    r = server.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/kick", {"user_id": ids["kn_k5"]},
                       token=toks["kn_member"])
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = cli(server, "deny", room, ids["kn_k5"], "--as", "kn_member")
    assert r.returncode == 1 and "M_FORBIDDEN" in r.stderr
    r = server.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/kick", {"user_id": ids["kn_k5"]},
                       token=toks["kn_mod"])
    assert r.status == 200
    assert member(server, toks["kn_mod"], room, ids["kn_k5"])["content"]["membership"] == "leave"


def test_knock_errors(server, channel):
    room, toks, ids = channel
    r = server.request("POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat"}, token=toks["kn_mod"])
    invite_only = r.json["room_id"]
    r = knock(server, toks["kn_k4"], invite_only)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = knock(server, toks["kn_member"], room)                 # already in
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = knock(server, toks["kn_banned"], room)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = knock(server, toks["kn_k4"], "!nowhere:" + server.server_name)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    r = knock(server, toks["kn_k4"], "#nowhere:" + server.server_name)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    r = server.request("POST", f"/_matrix/client/v3/knock/{q(room)}", {"reason": 5}, token=toks["kn_k4"])
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    assert server.request("POST", f"/_matrix/client/v3/knock/{q(room)}", {}).status == 401
    # The queue's commands refuse what is not a request.
    r = cli(server, "approve", room, "kn_member")
    assert r.returncode == 2 and "has not asked to join" in r.stderr
    assert cli(server, "requests", "#nowhere:" + server.server_name).returncode == 2
    assert cli(server, "approve", room).returncode == 2
    assert cli(server, "deny", "#nowhere:" + server.server_name, "kn_k4").returncode == 2


def test_knock_wakes_the_moderator_quickly(server, channel):
    """Figure for the closing note: knock -> the moderator's waiting /sync
    returns with it (and its notification count)."""
    room, toks, ids = channel
    s = server.add_user("kn_fast")
    t = server.login("kn_fast")
    since = sync(server, toks["kn_mod"])["next_batch"]
    got = {}

    def wait():
        got["resp"] = sync(server, toks["kn_mod"], since, timeout=20000)
        got["t"] = time.monotonic()

    th = threading.Thread(target=wait)
    th.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    assert knock(server, t, room).status == 200
    th.join(25)
    ms = (got["t"] - t0) * 1000
    m = got["resp"]["rooms"]["join"][room]
    assert any(e["state_key"] == s for e in m["timeline"]["events"] if e["type"] == "m.room.member")
    assert m["unread_notifications"]["notification_count"] >= 1
    print(f"\nknock -> moderator /sync with notification: {ms:.1f} ms")
    assert ms < 2000


def test_js_moderator_sees_knock_and_cli_approves(server):
    mod = server.add_user("kn_js_mod")
    knocker = server.add_user("kn_js_knocker")
    mt, kt = server.login("kn_js_mod"), server.login("kn_js_knocker")
    r = server.request("POST", "/_matrix/client/v3/createRoom", {
        "preset": "private_chat", "name": "kn js club",
        "initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]},
        token=mt)
    room = r.json["room_id"]
    env = dict(os.environ, PVYHS_BASE=server.base, PVYHS_MOD="kn_js_mod", PVYHS_ROOM=room,
               PVYHS_KNOCKER=knocker, PVYHS_KNOCKER_TOKEN=kt, PVYHS_BIN=BIN, PVYHS_CONFIG=server.config)
    p = subprocess.run([NODE, "knock.mjs"], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=300)
    steps = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert p.returncode == 0, f"steps {steps}\n{p.stderr[-6000:]}"
    seen = [s for s in steps if s.get("step") == "knock seen"][0]
    assert seen["reason"] == "let me in please" and seen["count"] > seen["before"]
    print(f"\nknock -> moderator's js-sdk client: event {seen['seen_ms']} ms, notification "
          f"{seen['notified_ms']} ms")
    assert "invited" in [s for s in steps if s.get("step") == "joined"][0]["cli"]
    assert steps[-1] == {"ok": True}


def test_knock_rate_limits(tmp_path):
    with Server(extra_yaml="rc_knocks:\n  per_room: {per_second: 0.001, burst_count: 2}\n"
                           "  per_user: {per_second: 0.001, burst_count: 2}\n", limits=False) as s:
        s.start()
        s.add_user("knr_mod")
        mt = s.login("knr_mod")
        r = s.request("POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat", "initial_state": [
            {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]}, token=mt)
        room = r.json["room_id"]
        toks = []
        for i in range(3):
            s.add_user(f"knr_{i}")
            toks.append(s.login(f"knr_{i}"))
        assert knock(s, toks[0], room).status == 200
        assert knock(s, toks[1], room).status == 200
        r = knock(s, toks[2], room)                        # the room's bucket is empty
        assert r.status == 429 and r.json["errcode"] == "M_LIMIT_EXCEEDED" and "retry_after_ms" in r.json
        # Per user: knocking and withdrawing over and over.
        r2 = s.request("POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat", "initial_state": [
            {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]}, token=mt)
        other = r2.json["room_id"]
        assert knock(s, toks[0], other).status == 200          # toks[0]'s second knock
        r = knock(s, toks[0], other)
        assert r.status == 429
