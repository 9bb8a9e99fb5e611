"""Server notices (spec: Server Notices module, Synapse's admin API and its
server_notices config block): POST/PUT /_synapse/admin/v1/send_server_notice,
the notices room (made by the system user, tagged m.server_notice, invite
that cannot be rejected, join, leave, re-invite to the same room), and
`pvyhs server-notice send`."""
import urllib.parse

import pytest

from harness import Server, run_cli

V3 = "/_matrix/client/v3"
API = "/_synapse/admin/v1/send_server_notice"

NOTICES_YAML = """server_notices:
  system_mxid_localpart: _server
  system_mxid_display_name: "Server Alert"
  room_name: "Server Alert"
  room_topic: "From the admins"
"""


def q(s):
    return urllib.parse.quote(s, safe="")


@pytest.fixture(scope="module")
def hs():
    with Server(extra_yaml=NOTICES_YAML) as s:
        s.start()
        s.system = f"@_server:{s.server_name}"
        s.toks = {}
        for name, admin in (("sn_admin", True), ("sn_alice", False), ("sn_bob", False)):
            s.add_user(name, admin=admin)
            s.toks[name] = s.login(name)
        yield s
        assert s.stop() == 0
        log = s.read_log()
        assert "Sanitizer" not in log and "runtime error:" not in log, log


def notice(hs, user, body="hello from server notices!", tok=None, txn=None, **extra):
    req = {"user_id": user, "content": {"msgtype": "m.text", "body": body}, **extra}
    if txn is None:
        return hs.request("POST", API, req, token=tok or hs.toks["sn_admin"])
    return hs.request("PUT", f"{API}/{q(txn)}", req, token=tok or hs.toks["sn_admin"])


def uid(hs, name):
    return f"@{name}:{hs.server_name}"


def invites(hs, name):
    r = hs.request("GET", V3 + "/sync?timeout=0", token=hs.toks[name])
    assert r.status == 200, r
    return r.json.get("rooms", {}).get("invite", {})


def notice_rooms(hs, name):
    return hs.psql(f"SELECT count(*) FROM server_notice_rooms WHERE user_id = '{uid(hs, name)}'")


def test_non_admin_is_forbidden(hs):
    r = hs.request("POST", API, None, token=hs.toks["sn_bob"])
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
    r = notice(hs, uid(hs, "sn_alice"), tok=hs.toks["sn_bob"], txn="x")
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
    r = hs.request("POST", API, {"user_id": uid(hs, "sn_alice"), "content": {}})
    assert r.status == 401, r


def test_bad_requests(hs):
    r = hs.request("POST", API, {"user_id": uid(hs, "sn_alice")}, token=hs.toks["sn_admin"])
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM", r
    r = notice(hs, "@someone:elsewhere.example")
    assert r.status == 400 and "local users" in r.json["error"], r
    r = notice(hs, uid(hs, "sn_nobody"))
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r
    r = notice(hs, "not a user id")
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r


def test_notice_room_lifecycle(hs):
    alice = hs.toks["sn_alice"]
    r = notice(hs, uid(hs, "sn_alice"))
    assert r.status == 200, r
    first = r.json["event_id"]
    inv = invites(hs, "sn_alice")
    assert len(inv) == 1, inv
    room, data = next(iter(inv.items()))
    state = data["invite_state"]["events"]
    assert state[0]["sender"] == hs.system
    by_type = {e["type"]: e for e in state}
    assert by_type["m.room.name"]["content"]["name"] == "Server Alert"
    # The room is tagged for the user as the server notices room.
    r = hs.request("GET", f"{V3}/user/{q(uid(hs, 'sn_alice'))}/rooms/{q(room)}/tags", token=alice)
    assert r.status == 200 and "m.server_notice" in r.json["tags"], r

    # The invite cannot be rejected, neither by /leave nor by a member event.
    r = hs.request("POST", f"{V3}/rooms/{q(room)}/leave", {}, token=alice)
    assert r.status == 403 and r.json["errcode"] == "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM", r
    r = hs.request("PUT", f"{V3}/rooms/{q(room)}/state/m.room.member/{q(uid(hs, 'sn_alice'))}",
                   {"membership": "leave"}, token=alice)
    assert r.status == 403 and r.json["errcode"] == "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM", r

    # Joining shows the notice, sent by the system user with its profile.
    r = hs.request("POST", f"{V3}/join/{q(room)}", {}, token=alice)
    assert r.status == 200, r
    r = hs.request("GET", f"{V3}/rooms/{q(room)}/messages?dir=b&limit=50", token=alice)
    assert r.status == 200, r
    events = {e["event_id"]: e for e in r.json["chunk"]}
    assert events[first]["sender"] == hs.system
    assert events[first]["content"] == {"msgtype": "m.text", "body": "hello from server notices!"}
    r = hs.request("GET", f"{V3}/rooms/{q(room)}/state/m.room.member/{q(hs.system)}", token=alice)
    assert r.status == 200 and r.json["displayname"] == "Server Alert", r
    r = hs.request("GET", f"{V3}/rooms/{q(room)}/state/m.room.topic", token=alice)
    assert r.status == 200 and r.json["topic"] == "From the admins", r
    # No forced encryption, and the user reads but cannot write.
    r = hs.request("GET", f"{V3}/rooms/{q(room)}/state/m.room.encryption", token=alice)
    assert r.status == 404, r
    r = hs.request("PUT", f"{V3}/rooms/{q(room)}/send/m.room.message/t1",
                   {"msgtype": "m.text", "body": "hi"}, token=alice)
    assert r.status == 403, r

    # A second notice while joined: no new invite, same room.
    r = notice(hs, uid(hs, "sn_alice"), body="second")
    assert r.status == 200, r
    assert invites(hs, "sn_alice") == {}

    # Leaving after joining is allowed; the next notice invites back to the
    # same room.
    r = hs.request("POST", f"{V3}/rooms/{q(room)}/leave", {}, token=alice)
    assert r.status == 200, r
    r = notice(hs, uid(hs, "sn_alice"), body="third")
    assert r.status == 200, r
    assert list(invites(hs, "sn_alice")) == [room]
    assert notice_rooms(hs, "sn_alice") == "1"


def test_txn_is_idempotent(hs):
    bob = uid(hs, "sn_bob")
    a = notice(hs, bob, txn="t-1")
    b = notice(hs, bob, txn="t-1")
    c = notice(hs, bob, txn="t-2")
    assert a.status == b.status == c.status == 200, (a, b, c)
    assert a.json["event_id"] == b.json["event_id"]
    assert c.json["event_id"] != a.json["event_id"]
    # The repeat sent nothing: two notices in the room.
    n = hs.psql("SELECT count(*) FROM events e JOIN server_notice_rooms s USING (room_id)"
                f" WHERE s.user_id = '{bob}' AND e.type = 'm.room.message'")
    assert n == "2"
    # Transaction IDs are kept for a day: a day-old one is cleared by the
    # next notice and then sends anew.
    hs.psql("UPDATE server_notice_txns SET created_ts = created_ts - 25 * 3600 * 1000"
            " WHERE txn_id = 't-1'")
    d = notice(hs, bob, txn="t-3")
    assert d.status == 200, d
    assert hs.psql("SELECT count(*) FROM server_notice_txns WHERE txn_id = 't-1'") == "0"
    e = notice(hs, bob, txn="t-1")
    assert e.status == 200 and e.json["event_id"] != a.json["event_id"], e


def test_concurrent_first_notices_make_one_room(hs):
    """Four first notices to a user at once: one notices room, all four
    notices in it, and the user invited to that room only."""
    import concurrent.futures
    hs.add_user("sn_race")
    hs.toks["sn_race"] = hs.login("sn_race")
    made = f"SELECT room_id FROM events WHERE sender = '{hs.system}' AND type = 'm.room.create'"
    before = set(hs.psql(made).split())
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        rs = list(ex.map(lambda i: notice(hs, uid(hs, "sn_race"), body=f"race {i}"), range(4)))
    assert all(r.status == 200 for r in rs), rs
    rooms = set(hs.psql(made).split()) - before
    assert len(rooms) == 1, rooms
    assert set(invites(hs, "sn_race")) == rooms


def test_cli_send(hs):
    name = "sn_carol"
    hs.add_user(name)
    tok = hs.toks[name] = hs.login(name)
    r = run_cli("server-notice", "send", "--config", hs.config, uid(hs, name), "maintenance at 6")
    assert r.returncode == 0, r.stderr
    event_id = r.stdout.strip()
    assert event_id.startswith("$")
    room = next(iter(invites(hs, name)))
    assert hs.request("POST", f"{V3}/join/{q(room)}", {}, token=tok).status == 200
    r = hs.request("GET", f"{V3}/rooms/{q(room)}/event/{q(event_id)}", token=tok)
    assert r.status == 200, r
    assert r.json["sender"] == hs.system and r.json["content"]["body"] == "maintenance at 6"
    # A local name works too; a remote user or a missing one is a usage error.
    r = run_cli("server-notice", "send", "--config", hs.config, name, "again")
    assert r.returncode == 0, r.stderr
    r = run_cli("server-notice", "send", "--config", hs.config, "@x:elsewhere.example", "hi")
    assert r.returncode == 2
    r = run_cli("server-notice", "send", "--config", hs.config, "sn_nobody", "hi")
    assert r.returncode == 2 and "User not found" in r.stderr, r.stderr
    assert run_cli("server-notice", "send", "--config", hs.config, name).returncode == 2
    r = run_cli("server-notice", "--help")
    assert r.returncode == 0 and "usage: pvyhs server-notice send" in r.stdout
    assert run_cli("server-notice").returncode == 2
    assert run_cli("server-notice", "frobnicate").returncode == 2


def test_off_without_the_block(server):
    server.add_user("sn_off_admin", admin=True)
    tok = server.login("sn_off_admin")
    r = server.request("POST", API, {"user_id": f"@sn_off_admin:{server.server_name}",
                                     "content": {"msgtype": "m.text", "body": "x"}}, token=tok)
    assert r.status == 400 and "not enabled" in r.json["error"], r
    r = run_cli("server-notice", "send", "--config", server.config, "sn_off_admin", "x")
    assert r.returncode == 2 and "server_notices" in r.stderr


def test_auto_join_and_cli_with_server_stopped():
    with Server(extra_yaml=NOTICES_YAML + "  auto_join: true\n") as s:
        s.start()
        s.add_user("aj_admin", admin=True)
        user = s.add_user("aj_user")
        tok = s.login("aj_user")
        r = s.request("POST", API, {"user_id": user, "content": {"msgtype": "m.text", "body": "1"}},
                      token=s.login("aj_admin"))
        assert r.status == 200, r
        r = s.request("GET", V3 + "/joined_rooms", token=tok)
        assert r.status == 200 and len(r.json["joined_rooms"]) == 1, r
        room = r.json["joined_rooms"][0]
        assert s.stop() == 0
        # Stopped: the command runs the same handlers itself. A changed
        # room name and display name reach the existing room with it.
        with open(s.config) as f:
            text = f.read()
        with open(s.config, "w") as f:
            f.write(text.replace('room_name: "Server Alert"', 'room_name: "Alerts"')
                    .replace('system_mxid_display_name: "Server Alert"',
                             'system_mxid_display_name: "The Admins"'))
        r = run_cli("server-notice", "send", "--config", s.config, "aj_user", "while stopped")
        assert r.returncode == 0, r.stderr
        s.start()
        r = s.request("GET", f"{V3}/rooms/{q(room)}/messages?dir=b&limit=5", token=tok)
        assert r.status == 200, r
        bodies = [e["content"].get("body") for e in r.json["chunk"] if e["type"] == "m.room.message"]
        assert bodies[0] == "while stopped", bodies
        r = s.request("GET", f"{V3}/rooms/{q(room)}/state/m.room.name", token=tok)
        assert r.status == 200 and r.json["name"] == "Alerts", r
        system = f"@_server:{s.server_name}"
        r = s.request("GET", f"{V3}/rooms/{q(room)}/state/m.room.member/{q(system)}", token=tok)
        assert r.status == 200 and r.json["displayname"] == "The Admins", r
        r = s.request("GET", V3 + "/joined_rooms", token=tok)
        assert r.json["joined_rooms"] == [room]
