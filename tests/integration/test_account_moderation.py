"""Account moderation: suspension (spec v1.13, M_USER_SUSPENDED), locking
(v1.12, M_USER_LOCKED), the v1.18 admin endpoints GET/PUT
/_matrix/client/v1/admin/suspend|lock/{userId}, the m.account_moderation
capability, and `pvyhs user suspend|unsuspend|lock|unlock`."""
import time
import urllib.parse

import pytest

from harness import run_cli

V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"
R0 = "/_matrix/client/r0"


def q(s):
    return urllib.parse.quote(s, safe="")


@pytest.fixture(scope="module")
def admin(server):
    server.add_user("am_admin", admin=True)
    return server.login("am_admin")


def user(server, name):
    uid = server.add_user(name)
    return uid, server.login(name)


def create(server, tok, **body):
    r = server.request("POST", V3 + "/createRoom", body, token=tok)
    assert r.status == 200, r
    return r.json["room_id"]


def send(server, tok, room, body, txn):
    return server.request("PUT", f"{V3}/rooms/{q(room)}/send/m.room.message/{txn}",
                          {"msgtype": "m.text", "body": body}, token=tok)


def moderate(server, tok, kind, uid, value=None, body=None):
    path = f"{V1}/admin/{kind}/{q(uid)}"
    if value is None and body is None:
        return server.request("GET", path, token=tok)
    field = "suspended" if kind == "suspend" else "locked"
    return server.request("PUT", path, body if body is not None else {field: value}, token=tok)


def suspended_error(r):
    assert r.status == 403, r
    assert r.json["errcode"] == "M_USER_SUSPENDED", r


def locked_error(r):
    assert r.status == 401, r
    assert r.json["errcode"] == "M_USER_LOCKED" and r.json["soft_logout"] is True, r


def test_suspension_refuses_acting_but_not_reading(server, admin):
    uid, tok = user(server, "am_sus")
    other_id, other = user(server, "am_sus_other")
    room = create(server, other, preset="public_chat")
    assert server.request("POST", f"{V3}/join/{q(room)}", {}, token=tok).status == 200
    mine = send(server, tok, room, "before", "s0").json["event_id"]
    theirs = send(server, other, room, "theirs", "o0").json["event_id"]
    invite_room = create(server, other, preset="private_chat", invite=[uid])
    room2 = create(server, other, preset="public_chat")
    sync = server.request("GET", V3 + "/sync?timeout=0", token=tok)
    assert sync.status == 200
    since = sync.json["next_batch"]

    r = moderate(server, admin, "suspend", uid, True)
    assert r.status == 200 and r.json == {"suspended": True}, r
    assert moderate(server, admin, "suspend", uid).json == {"suspended": True}

    # The token was used just before: its cached entry must not hide this.
    suspended_error(send(server, tok, room, "after", "s1"))
    suspended_error(server.request("POST", f"{V3}/join/{q(room2)}", {}, token=tok))
    suspended_error(server.request("POST", f"{V3}/rooms/{q(room2)}/join", {}, token=tok))
    suspended_error(server.request("POST", V3 + "/createRoom", {}, token=tok))
    suspended_error(server.request("PUT", f"{V3}/profile/{q(uid)}/displayname",
                                   {"displayname": "new name"}, token=tok))
    suspended_error(server.request("PUT", f"{R0}/profile/{q(uid)}/avatar_url",
                                   {"avatar_url": "mxc://x/y"}, token=tok))
    suspended_error(server.request("POST", f"{V3}/rooms/{q(room)}/invite",
                                   {"user_id": "@nobody:" + server.server_name}, token=tok))
    suspended_error(server.request("PUT", f"{V3}/rooms/{q(room)}/state/m.room.topic/",
                                   {"topic": "x"}, token=tok))
    suspended_error(server.request("PUT", f"{V3}/rooms/{q(room)}/state/m.room.member/{q(uid)}",
                                   {"membership": "join", "displayname": "x"}, token=tok))
    suspended_error(server.request("PUT", f"{V3}/rooms/{q(room)}/redact/{q(theirs)}/r0", {},
                                   token=tok))
    suspended_error(server.request("POST", "/_matrix/media/v3/upload", raw=b"hello",
                                   headers={"Content-Type": "text/plain"}, token=tok))
    assert "displayname" not in server.request("GET", f"{V3}/profile/{q(uid)}").json or \
        server.request("GET", f"{V3}/profile/{q(uid)}").json["displayname"] != "new name"

    # Reading still works, and so do the corrective actions.
    r = server.request("GET", f"{V3}/sync?timeout=0&since={since}", token=tok)
    assert r.status == 200, r
    r = server.request("GET", f"{V3}/rooms/{q(room)}/messages?dir=b&limit=10", token=tok)
    assert r.status == 200 and any(e["event_id"] == theirs for e in r.json["chunk"]), r
    assert server.request("GET", f"{V3}/profile/{q(uid)}", token=tok).status == 200
    assert server.request("GET", V3 + "/capabilities", token=tok).status == 200
    r = server.request("GET", f"{V3}/rooms/{q(room)}/state/m.room.create/", token=tok)
    assert r.status == 200, r  # one state event (a merge once refused it to the suspended)
    # A redaction through /send (MSC4169) is checked as /redact is: own events only.
    r = server.request("PUT", f"{V3}/rooms/{q(room)}/send/m.room.redaction/rs1",
                       {"redacts": theirs}, token=tok)
    suspended_error(r)
    r = server.request("PUT", f"{V3}/rooms/{q(room)}/redact/{q(mine)}/r1", {}, token=tok)
    assert r.status == 200, r
    r = server.request("POST", f"{V3}/rooms/{q(invite_room)}/leave", {}, token=tok)
    assert r.status == 200, r  # rejecting an invite
    r = server.request("POST", f"{V3}/rooms/{q(room)}/leave", {}, token=tok)
    assert r.status == 200, r
    # A new login works, and its session is suspended too.
    tok2 = server.login("am_sus")
    suspended_error(server.request("POST", f"{V3}/join/{q(room)}", {}, token=tok2))

    r = moderate(server, admin, "suspend", uid, False)
    assert r.status == 200 and r.json == {"suspended": False}, r
    assert server.request("POST", f"{V3}/join/{q(room)}", {}, token=tok).status == 200
    assert send(server, tok, room, "back", "s2").status == 200
    r = server.request("PUT", f"{V3}/profile/{q(uid)}/displayname", {"displayname": "ok"},
                       token=tok2)
    assert r.status == 200, r
    # Logging out works while suspended.
    assert moderate(server, admin, "suspend", uid, True).status == 200
    assert server.request("POST", V3 + "/logout", {}, token=tok2).status == 200
    assert moderate(server, admin, "suspend", uid, False).status == 200


def test_suspended_may_send_only_own_redaction(server, admin):
    uid, tok = user(server, "am_red")
    _, other = user(server, "am_red_other")
    room = create(server, other, preset="public_chat",
                  power_level_content_override={"users_default": 100})
    assert server.request("POST", f"{V3}/join/{q(room)}", {}, token=tok).status == 200
    mine = send(server, tok, room, "mine", "m0").json["event_id"]
    theirs = send(server, other, room, "theirs", "t0").json["event_id"]
    assert moderate(server, admin, "suspend", uid, True).status == 200
    # With power to redact others, a suspended user still may not.
    suspended_error(server.request("PUT", f"{V3}/rooms/{q(room)}/redact/{q(theirs)}/a", {},
                                   token=tok))
    suspended_error(server.request("PUT", f"{V3}/rooms/{q(room)}/send/m.room.redaction/b",
                                   {"redacts": theirs}, token=tok))
    suspended_error(server.request("POST", f"{V3}/rooms/{q(room)}/kick",
                                   {"user_id": "@x:" + server.server_name}, token=tok))
    r = server.request("PUT", f"{V3}/rooms/{q(room)}/redact/{q(mine)}/c", {}, token=tok)
    assert r.status == 200, r
    # Leaving through the state endpoint is allowed too.
    r = server.request("PUT", f"{V3}/rooms/{q(room)}/state/m.room.member/{q(uid)}",
                       {"membership": "leave"}, token=tok)
    assert r.status == 200, r
    assert moderate(server, admin, "suspend", uid, False).status == 200


def test_lock_refuses_everything_but_logout(server, admin):
    uid, tok = user(server, "am_lock")
    tok_b = server.login("am_lock")
    room = create(server, tok)
    # Both tokens were used just before (cached).
    assert server.request("GET", V3 + "/account/whoami", token=tok).status == 200
    assert server.request("GET", V3 + "/account/whoami", token=tok_b).status == 200

    r = moderate(server, admin, "lock", uid, True)
    assert r.status == 200 and r.json == {"locked": True}, r
    assert moderate(server, admin, "lock", uid).json == {"locked": True}
    for method, path, body in (("GET", V3 + "/account/whoami", None),
                               ("GET", V3 + "/sync?timeout=0", None),
                               ("GET", f"{V3}/rooms/{q(room)}/messages?dir=b", None),
                               ("GET", V3 + "/capabilities", None),
                               ("GET", V3 + "/publicRooms", None),
                               ("POST", f"{V3}/rooms/{q(room)}/leave", {}),
                               ("GET", f"{V1}/media/config", None),
                               ("GET", R0 + "/account/whoami", None)):
        locked_error(server.request(method, path, body, token=tok))
    # No new token either: not by password, not by a second device.
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "am_lock"},
            "password": "correct horse"}
    locked_error(server.request("POST", V3 + "/login", body))
    # A wrong password still says only that.
    bad = dict(body, password="wrong")
    assert server.request("POST", V3 + "/login", bad).json["errcode"] == "M_FORBIDDEN"
    # /versions answers (as Synapse lets locked tokens), logout works.
    assert server.request("GET", "/_matrix/client/versions", token=tok).status == 200
    assert server.request("POST", V3 + "/logout", {}, token=tok_b).status == 200
    assert server.request("GET", V3 + "/account/whoami", token=tok_b).json["errcode"] == \
        "M_UNKNOWN_TOKEN"

    # Unlocking keeps the session: the same token works again.
    r = moderate(server, admin, "lock", uid, False)
    assert r.status == 200 and r.json == {"locked": False}, r
    r = server.request("GET", V3 + "/account/whoami", token=tok)
    assert r.status == 200 and r.json["user_id"] == uid, r
    assert server.request("POST", V3 + "/login", body).status == 200
    # /logout/all too while locked.
    assert moderate(server, admin, "lock", uid, True).status == 200
    assert server.request("POST", V3 + "/logout/all", {}, token=tok).status == 200
    assert moderate(server, admin, "lock", uid, False).status == 200
    assert server.request("GET", V3 + "/account/whoami", token=tok).status == 401


def test_refresh_refused_while_locked(server, admin):
    uid = server.add_user("am_refresh")
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "am_refresh"},
            "password": "correct horse", "refresh_token": True}
    r = server.request("POST", V3 + "/login", body)
    assert r.status == 200, r
    refresh = r.json.get("refresh_token")
    if refresh is None:
        pytest.fail("the server did not issue a refresh token: " + repr(r))
    assert moderate(server, admin, "lock", uid, True).status == 200
    locked_error(server.request("POST", V3 + "/refresh", {"refresh_token": refresh}))
    assert moderate(server, admin, "lock", uid, False).status == 200
    # The refresh token was kept for the unlock.
    r = server.request("POST", V3 + "/refresh", {"refresh_token": refresh})
    assert r.status == 200 and r.json["access_token"], r


def test_admin_endpoint_errors(server, admin):
    uid, tok = user(server, "am_err")
    other_admin = server.add_user("am_err_admin", admin=True)
    admin_id = "@am_admin:" + server.server_name
    for kind in ("suspend", "lock"):
        field = "suspended" if kind == "suspend" else "locked"
        # Not an admin: refused before any lookup (even of unknown users).
        for target in (uid, "@nobody:" + server.server_name, "@x:elsewhere.example"):
            r = moderate(server, tok, kind, target)
            assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
            r = moderate(server, tok, kind, target, True)
            assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
        # Unknown local user.
        for value in (None, True):
            r = moderate(server, admin, kind, "@nobody:" + server.server_name, value)
            assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r
        # Remote user.
        for value in (None, True):
            r = moderate(server, admin, kind, "@x:elsewhere.example", value)
            assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r
        r = moderate(server, admin, kind, "not-a-user-id")
        assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r
        # Bad bodies.
        for body in ({}, {field: "true"}, {field: 1}, {field: None},
                     {"suspended" if kind == "lock" else "locked": True}):
            r = moderate(server, admin, kind, uid, body=body)
            assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON", (body, r)
        r = server.request("PUT", f"{V1}/admin/{kind}/{q(uid)}", raw=b"{nope", token=admin)
        assert r.status == 400 and r.json["errcode"] == "M_NOT_JSON", r
        # Another admin, and oneself.
        for value in (None, True):
            r = moderate(server, admin, kind, other_admin, value)
            assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
        r = moderate(server, admin, kind, admin_id, True)
        assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
        assert moderate(server, admin, kind, admin_id).json == {field: False}
        # Unchanged state answers the same; nothing was changed by the errors.
        assert moderate(server, admin, kind, uid).json == {field: False}
        r = moderate(server, admin, kind, uid, False)
        assert r.status == 200 and r.json == {field: False}, r
        # No token.
        r = server.request("GET", f"{V1}/admin/{kind}/{q(uid)}")
        assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN", r
    # Deactivated users are not found.
    dead_id, dead = user(server, "am_dead")
    r = server.request("POST", V3 + "/account/deactivate",
                       {"auth": {"type": "m.login.password", "password": "correct horse",
                                 "identifier": {"type": "m.id.user", "user": "am_dead"}}},
                       token=dead)
    assert r.status == 200, r
    r = moderate(server, admin, "suspend", dead_id, True)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r


def test_capability_only_for_admins(server, admin):
    _, tok = user(server, "am_cap")
    caps = server.request("GET", V3 + "/capabilities", token=admin).json["capabilities"]
    assert caps["m.account_moderation"] == {"suspend": True, "lock": True}
    caps = server.request("GET", V3 + "/capabilities", token=tok).json["capabilities"]
    assert "m.account_moderation" not in caps


def eventually(fn, timeout=5.0):
    """The CLI's NOTIFY reaches the server's listener thread asynchronously."""
    deadline = time.time() + timeout
    while True:
        r = fn()
        if r or time.time() > deadline:
            return r
        time.sleep(0.05)


def test_cli(server, admin):
    uid, tok = user(server, "am_cli")
    room = create(server, tok)

    def cli(verb, name=uid):
        return run_cli("user", verb, "--config", server.config, name)

    # The token is cached by the running server; the CLI is another process.
    assert send(server, tok, room, "hi", "c0").status == 200
    r = cli("suspend")
    assert r.returncode == 0 and "is now suspended" in r.stdout, r
    assert moderate(server, admin, "suspend", uid).json == {"suspended": True}
    t0 = time.time()
    assert eventually(lambda: send(server, tok, room, "hi", f"c{time.time()}").status == 403)
    assert time.time() - t0 < 5
    suspended_error(send(server, tok, room, "hi", "c1"))
    fresh = server.login("am_cli")
    suspended_error(server.request("POST", V3 + "/createRoom", {}, token=fresh))
    r = cli("suspend", "am_cli")  # a localpart works too
    assert r.returncode == 0 and "was already suspended" in r.stdout, r
    r = cli("unsuspend")
    assert r.returncode == 0 and "is now unsuspended" in r.stdout, r
    assert moderate(server, admin, "suspend", uid).json == {"suspended": False}

    assert eventually(lambda: send(server, tok, room, "hi", f"c{time.time()}").status == 200)
    assert server.request("GET", V3 + "/account/whoami", token=tok).status == 200

    r = cli("lock")
    assert r.returncode == 0 and "is now locked" in r.stdout, r
    assert moderate(server, admin, "lock", uid).json == {"locked": True}
    assert eventually(lambda: server.request("GET", V3 + "/account/whoami",
                                             token=tok).status == 401)
    locked_error(server.request("GET", V3 + "/account/whoami", token=tok))
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "am_cli"},
            "password": "correct horse"}
    locked_error(server.request("POST", V3 + "/login", body))
    r = cli("unlock")
    assert r.returncode == 0 and "is now unlocked" in r.stdout, r
    assert server.request("POST", V3 + "/login", body).status == 200
    assert eventually(lambda: server.request("GET", V3 + "/account/whoami",
                                             token=tok).status == 200)

    r = cli("lock", "@nobody:" + server.server_name)
    assert r.returncode == 1 and "not found" in r.stderr, r
    r = cli("lock", "@x:elsewhere.example")
    assert r.returncode == 2, r
    r = run_cli("user", "lock", "--config", server.config)
    assert r.returncode == 2 and "usage" in r.stderr, r
    r = run_cli("user", "suspend", "--help")
    assert r.returncode == 0, r
