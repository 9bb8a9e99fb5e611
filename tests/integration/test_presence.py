"""Presence: GET/PUT /presence/{userId}/status, time-outs, the config switch."""
import time
import urllib.parse

import pytest

from harness import Server

V3 = "/_matrix/client/v3"


def q(s):
    return urllib.parse.quote(s, safe="")


@pytest.fixture(scope="module")
def pr(server):
    """alice and bob share a room; carol shares none with them."""
    class Ctx:
        pass
    c = Ctx()
    c.alice = server.add_user("pr_alice")
    c.bob = server.add_user("pr_bob")
    c.carol = server.add_user("pr_carol")
    c.at, c.bt, c.ct = (server.login(n) for n in ("pr_alice", "pr_bob", "pr_carol"))
    r = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=c.at)
    assert r.status == 200, r
    c.room = r.json["room_id"]
    assert server.request("POST", f"{V3}/join/{q(c.room)}", {}, token=c.bt).status == 200
    return c


def put(server, token, user, body):
    return server.request("PUT", f"{V3}/presence/{q(user)}/status", body, token=token)


def get(server, token, user):
    return server.request("GET", f"{V3}/presence/{q(user)}/status", token=token)


def row(server, user, cols="state, currently_active, stream_id"):
    return server.psql(f"SELECT {cols} FROM presence WHERE user_id = '{user}'").split("|")


def test_set_and_get_own_presence(server, pr):
    r = put(server, pr.at, pr.alice, {"presence": "online", "status_msg": "lunch soon"})
    assert r.status == 200 and r.json == {}
    r = get(server, pr.at, pr.alice)
    assert r.status == 200
    assert r.json["presence"] == "online" and r.json["status_msg"] == "lunch soon"
    assert r.json["currently_active"] is True
    assert 0 <= r.json["last_active_ago"] < 60000
    assert "user_id" not in r.json
    # without status_msg the message is cleared (as in Synapse)
    assert put(server, pr.at, pr.alice, {"presence": "unavailable"}).status == 200
    r = get(server, pr.at, pr.alice)
    assert r.json["presence"] == "unavailable"
    assert "status_msg" not in r.json and "currently_active" not in r.json
    assert put(server, pr.at, pr.alice, {"presence": "offline", "status_msg": "away"}).status == 200
    r = get(server, pr.at, pr.alice)
    assert r.json["presence"] == "offline" and r.json["status_msg"] == "away"
    # r0
    r = server.request("GET", f"/_matrix/client/r0/presence/{q(pr.alice)}/status", token=pr.at)
    assert r.status == 200 and r.json["presence"] == "offline"


def test_each_change_takes_a_stream_position(server, pr):
    put(server, pr.bt, pr.bob, {"presence": "online"})
    first = int(row(server, pr.bob)[2])
    put(server, pr.bt, pr.bob, {"presence": "unavailable", "status_msg": "busy"})
    second = int(row(server, pr.bob)[2])
    assert second > first
    assert row(server, pr.bob, "state, status_msg") == ["unavailable", "busy"]


def test_presence_of_others(server, pr):
    put(server, pr.bt, pr.bob, {"presence": "online", "status_msg": "hi all"})
    r = get(server, pr.at, pr.bob)  # they share a room
    assert r.status == 200 and r.json["presence"] == "online"
    assert r.json["status_msg"] == "hi all"
    r = get(server, pr.ct, pr.bob)  # carol shares none
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = get(server, pr.ct, "@pr_nobody:" + server.server_name)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    # a user who never set presence (but is visible) is offline; so is one's own
    r = get(server, pr.ct, pr.carol)
    assert r.status == 200 and r.json == {"presence": "offline"}


def test_newly_met_members_presence_in_incremental_sync(server, pr):
    """Complement's TestSync "Newly joined room includes presence" and
    TestMembersLocal: joining a room shows its members' presence in the
    joiner's next incremental sync, and the joiner's in the members', though
    neither presence changed since their tokens."""
    dave = server.add_user("pr_erin")
    dt = server.login("pr_erin")
    assert put(server, dt, dave, {"presence": "online"}).status == 200
    assert put(server, pr.ct, pr.carol, {"presence": "unavailable", "status_msg": "away"}).status == 200
    room = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=pr.ct).json["room_id"]

    def since(tok):
        return server.request("GET", f"{V3}/sync?timeout=0&set_presence=offline", token=tok).json["next_batch"]

    def presence(tok, frm):
        r = server.request("GET", f"{V3}/sync?timeout=0&set_presence=offline&since={q(frm)}", token=tok)
        assert r.status == 200, r
        return {e["sender"]: e["content"] for e in r.json["presence"]["events"]}

    d0, c0 = since(dt), since(pr.ct)
    assert server.request("POST", f"{V3}/join/{q(room)}", {}, token=dt).status == 200
    seen = presence(dt, d0)
    assert seen.get(pr.carol, {}).get("status_msg") == "away", seen
    assert presence(pr.ct, c0).get(dave, {}).get("presence") == "online"
    # A member who never set a presence (only synced with set_presence=offline)
    # is sent as offline, as Synapse does (SyTest 31sync/03joined).
    frank = server.add_user("pr_frank")
    ft = server.login("pr_frank")
    since(ft)
    quiet = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"},
                           token=ft).json["room_id"]
    d1 = since(dt)
    assert server.request("POST", f"{V3}/join/{q(quiet)}", {}, token=dt).status == 200
    seen = presence(dt, d1)
    assert seen.get(frank) == {"presence": "offline"}, seen
    assert row(server, frank) == [""], "frank has no stored presence"


def test_presence_errors(server, pr):
    r = put(server, pr.at, pr.bob, {"presence": "online"})
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = put(server, pr.at, pr.alice, {"presence": "busy"})
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    r = put(server, pr.at, pr.alice, {"status_msg": "no state"})
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = put(server, pr.at, pr.alice, {"presence": "online", "status_msg": 5})
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = put(server, pr.at, pr.alice, {"presence": "online", "status_msg": "a\u0000b"})
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = server.request("PUT", f"{V3}/presence/{q(pr.alice)}/status", raw=b"{", token=pr.at)
    assert r.status == 400 and r.json["errcode"] == "M_NOT_JSON"
    r = get(server, pr.at, "not-a-user")
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    r = get(server, None, pr.alice)
    assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN"
    r = put(server, "bogus", pr.alice, {"presence": "online"})
    assert r.status == 401 and r.json["errcode"] == "M_UNKNOWN_TOKEN"


def wait_state(server, token, user, want, timeout=10):
    """Time-outs are applied when presence is next read (at most once a
    second): poll until the state shows."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = get(server, token, user)
        if r.json["presence"] == want:
            return r.json
        time.sleep(0.3)
    raise AssertionError(f"{user} never became {want}: {r.json}")


def test_time_outs(server, pr):
    dave = server.add_user("pr_dave")
    dt = server.login("pr_dave")
    assert put(server, dt, dave, {"presence": "online"}).status == 200
    before = int(row(server, dave)[2])
    # no longer currently active once the last activity is older than 1 minute
    server.psql(f"UPDATE presence SET last_active_ts = last_active_ts - 120000 "
                f"WHERE user_id = '{dave}'")
    deadline = time.time() + 10
    while get(server, dt, dave).json.get("currently_active") is not False:
        assert time.time() < deadline
        time.sleep(0.3)
    assert get(server, dt, dave).json["presence"] == "online"
    assert int(row(server, dave)[2]) > before
    # idle for more than 5 minutes: unavailable
    server.psql(f"UPDATE presence SET last_active_ts = last_active_ts - 600000 "
                f"WHERE user_id = '{dave}'")
    got = wait_state(server, dt, dave, "unavailable")
    assert got["last_active_ago"] >= 600000
    # no /sync for longer than the sync time-out (30 s + a long-poll): offline
    server.psql(f"UPDATE presence SET last_sync_ts = last_sync_ts - 100000 "
                f"WHERE user_id = '{dave}'")
    wait_state(server, dt, dave, "offline")
    # activity brings the user back
    assert put(server, dt, dave, {"presence": "online"}).status == 200
    assert get(server, dt, dave).json["presence"] == "online"


def test_typing_counts_as_activity(server, pr):
    put(server, pr.bt, pr.bob, {"presence": "unavailable"})
    r = server.request("PUT", f"{V3}/rooms/{q(pr.room)}/typing/{q(pr.bob)}",
                       {"typing": True, "timeout": 1000}, token=pr.bt)
    assert r.status == 200
    got = get(server, pr.bt, pr.bob).json
    assert got["presence"] == "online" and got["currently_active"] is True


def test_presence_disabled():
    """presence.enabled false: PUT still answers, nothing is kept, everyone
    is offline."""
    with Server(extra_yaml="presence:\n  enabled: false\n").start() as s:
        s.add_user("pr_off")
        tok = s.login("pr_off")
        uid = "@pr_off:" + s.server_name
        r = s.request("PUT", f"{V3}/presence/{q(uid)}/status",
                      {"presence": "online", "status_msg": "here"}, token=tok)
        assert r.status == 200
        r = s.request("GET", f"{V3}/presence/{q(uid)}/status", token=tok)
        assert r.status == 200 and r.json == {"presence": "offline"}
        assert s.psql("SELECT count(*) FROM presence") == "0"
        # the same validation as when enabled
        r = s.request("PUT", f"{V3}/presence/{q(uid)}/status", {"presence": "x"}, token=tok)
        assert r.status == 400
        log = s.read_log()
    assert "AddressSanitizer" not in log and "runtime error:" not in log, log
