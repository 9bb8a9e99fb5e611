"""Accounts and devices over the Client-Server API: registration (closed, by
token, open, guests, shared secret), login forms, refresh and login tokens,
UIA, password change, deactivation, devices, profiles, capabilities, 3PIDs,
OpenID, TURN and the user directory.

The shared `server` fixture keeps the default config (registration closed);
the registration variants run on servers of their own."""
import base64
import hashlib
import hmac
import time

import pytest

from harness import Server, run_cli

V3 = "/_matrix/client/v3"
LOGIN = V3 + "/login"
PW = "correct horse"


def sha256_hex(s):
    return hashlib.sha256(s.encode()).hexdigest()


def pw_auth(user, session=None, password=PW):
    a = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
         "password": password}
    if session:
        a["session"] = session
    return a


def with_uia(srv, method, path, body, token, user, password=PW):
    """Run a UIA-protected request: first without auth (must be 401), then
    with the password stage in the session the server gave."""
    r = srv.request(method, path, body, token=token)
    assert r.status == 401, r
    assert r.json["flows"] == [{"stages": ["m.login.password"]}], r.json
    assert r.json["params"] == {}
    sid = r.json["session"]
    return srv.request(method, path, dict(body, auth=pw_auth(user, sid, password)), token=token)


def login_body(user, **extra):
    return dict({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
                 "password": PW}, **extra)


def whoami(srv, tok):
    return srv.request("GET", V3 + "/account/whoami", token=tok)


# ---------------------------------------------------------------- login

def test_login_identifier_forms(server):
    uid = server.add_user("acct_login")
    for ident in [{"type": "m.id.user", "user": "acct_login"},
                  {"type": "m.id.user", "user": uid},
                  {"type": "m.id.user", "user": "ACCT_Login"}]:
        r = server.request("POST", LOGIN, {"type": "m.login.password", "identifier": ident,
                                           "password": PW})
        assert r.status == 200, (ident, r)
        assert r.json["user_id"] == uid
        assert r.json["home_server"] == server.server_name
        assert r.json["well_known"]["m.homeserver"]["base_url"].startswith("http://localhost:")
        assert "expires_in_ms" not in r.json and "refresh_token" not in r.json
    # The deprecated top-level "user".
    r = server.request("POST", LOGIN, {"type": "m.login.password", "user": "acct_login",
                                       "password": PW})
    assert r.status == 200 and r.json["user_id"] == uid
    # No 3PID is bound to any account here: the spec's 403.
    for body in [{"identifier": {"type": "m.id.thirdparty", "medium": "email",
                                 "address": "a@example.org"}},
                 {"medium": "email", "address": "a@example.org"},
                 {"identifier": {"type": "m.id.phone", "country": "GB", "phone": "07700900001"}},
                 {"identifier": {"type": "m.id.user", "user": "@acct_login:elsewhere.example"}},
                 {"identifier": {"type": "m.id.user", "user": "acct nobody"}}]:
        r = server.request("POST", LOGIN, dict(body, type="m.login.password", password=PW))
        assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", (body, r)
    for body, code in [({"identifier": {"type": "m.id.phone", "phone": "0770"}}, "M_INVALID_PARAM"),
                       ({"identifier": {"type": "m.id.thirdparty", "medium": "email"}},
                        "M_MISSING_PARAM"),
                       ({"identifier": {"type": "m.id.weird", "user": "x"}}, "M_UNKNOWN"),
                       ({"identifier": {"user": "acct_login"}}, "M_MISSING_PARAM"),
                       ({"identifier": {"type": "m.id.user"}}, "M_MISSING_PARAM"),
                       ({"identifier": "acct_login"}, "M_INVALID_PARAM"),
                       ({}, "M_INVALID_PARAM")]:
        r = server.request("POST", LOGIN, dict(body, type="m.login.password", password=PW))
        assert r.status == 400 and r.json["errcode"] == code, (body, r)
    r = server.request("POST", LOGIN, {"type": "m.login.password", "user": "acct_login"})
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    r = server.request("POST", LOGIN, login_body("acct_login", refresh_token="yes"))
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = server.request("POST", LOGIN, login_body("acct_login", initial_device_display_name="x" * 101))
    assert r.status == 400 and r.json["errcode"] == "M_TOO_LARGE"
    r = server.request("POST", LOGIN, login_body("acct_login", device_id=""))
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"


def test_login_again_with_device_id_revokes_its_old_token(server):
    server.add_user("acct_relogin")
    old = server.login("acct_relogin", device_id="RELOGIN")
    new = server.login("acct_relogin", device_id="RELOGIN")
    assert whoami(server, old).json["errcode"] == "M_UNKNOWN_TOKEN"
    assert whoami(server, new).json["device_id"] == "RELOGIN"


def test_login_token_flow_is_off_by_default(server):
    assert server.request("GET", LOGIN).json == {"flows": [{"type": "m.login.password"}]}
    r = server.request("POST", LOGIN, {"type": "m.login.token", "token": "pvyl_x"})
    assert r.status == 400 and r.json["errcode"] == "M_UNKNOWN"
    server.add_user("acct_notoken")
    tok = server.login("acct_notoken")
    r = server.request("POST", "/_matrix/client/v1/login/get_token", {}, token=tok)
    assert r.status == 400 and r.json["errcode"] == "M_FORBIDDEN"
    caps = server.request("GET", V3 + "/capabilities", token=tok).json["capabilities"]
    assert caps["m.get_login_token"] == {"enabled": False}


# ---------------------------------------------------------------- refresh

def test_refresh_tokens(server):
    server.add_user("acct_refresh")
    r = server.request("POST", LOGIN, login_body("acct_refresh", refresh_token=True))
    assert r.status == 200, r
    a1, r1 = r.json["access_token"], r.json["refresh_token"]
    assert r.json["expires_in_ms"] == 300000  # refreshable_access_token_lifetime: 5m
    assert whoami(server, a1).status == 200
    # Only hashes are stored.
    assert server.psql(f"SELECT count(*) FROM refresh_tokens WHERE token_hash = "
                       f"'\\x{sha256_hex(r1)}'") == "1"
    # Refresh: a new pair. Until it is used, the old refresh token still works
    # (the client may not have received the answer) and supersedes it.
    r = server.request("POST", V3 + "/refresh", {"refresh_token": r1})
    assert r.status == 200, r
    a2, r2 = r.json["access_token"], r.json["refresh_token"]
    assert r.json["expires_in_ms"] == 300000
    r = server.request("POST", V3 + "/refresh", {"refresh_token": r1})
    assert r.status == 200, r
    a3, r3 = r.json["access_token"], r.json["refresh_token"]
    assert whoami(server, a2).status == 401  # the lost answer is void
    assert server.request("POST", V3 + "/refresh", {"refresh_token": r2}).status == 401
    # Using the newest access token retires the old refresh token and its token.
    assert whoami(server, a3).status == 200
    r = server.request("POST", V3 + "/refresh", {"refresh_token": r1})
    assert r.status == 401 and r.json["errcode"] == "M_UNKNOWN_TOKEN"
    assert whoami(server, a1).status == 401
    # Using the newest refresh token retires its predecessor too.
    r = server.request("POST", V3 + "/refresh", {"refresh_token": r3})
    assert r.status == 200
    a4, r4 = r.json["access_token"], r.json["refresh_token"]
    assert server.request("POST", V3 + "/refresh", {"refresh_token": r4}).status == 200
    assert server.request("POST", V3 + "/refresh", {"refresh_token": r3}).status == 401
    assert whoami(server, a4).status == 200  # until r4's successor or its token is used
    # Errors.
    r = server.request("POST", V3 + "/refresh", {"refresh_token": "pvyr_nonsense"})
    assert r.status == 401 and r.json["errcode"] == "M_UNKNOWN_TOKEN"
    assert r.json["soft_logout"] is False
    r = server.request("POST", V3 + "/refresh", {})
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM"


def test_refresh_token_expiry_and_access_token_expiry(server):
    server.add_user("acct_refresh2")
    r = server.request("POST", LOGIN, login_body("acct_refresh2", refresh_token=True))
    a1, r1 = r.json["access_token"], r.json["refresh_token"]
    server.psql(f"UPDATE access_tokens SET valid_until_ts = 1 WHERE token_hash = "
                f"'\\x{sha256_hex(a1)}'")
    r = whoami(server, a1)
    assert r.status == 401 and r.json["soft_logout"] is True
    r = server.request("POST", V3 + "/refresh", {"refresh_token": r1})
    assert r.status == 200 and whoami(server, r.json["access_token"]).status == 200
    r2 = r.json["refresh_token"]
    server.psql(f"UPDATE refresh_tokens SET valid_until_ts = 1 WHERE token_hash = "
                f"'\\x{sha256_hex(r2)}'")
    r = server.request("POST", V3 + "/refresh", {"refresh_token": r2})
    assert r.status == 401 and r.json["errcode"] == "M_UNKNOWN_TOKEN"


# ---------------------------------------------------------------- devices and UIA

def test_devices_list_get_update(server):
    uid = server.add_user("acct_dev")
    r = server.request("POST", LOGIN, login_body("acct_dev", device_id="DEVA",
                                                 initial_device_display_name="Phone"))
    ta = r.json["access_token"]
    tb = server.login("acct_dev", device_id="DEVB")
    r = server.request("GET", V3 + "/devices", token=ta)
    assert r.status == 200
    devs = {d["device_id"]: d for d in r.json["devices"]}
    assert set(devs) == {"DEVA", "DEVB"}
    assert devs["DEVA"]["display_name"] == "Phone" and "display_name" not in devs["DEVB"]
    # Seen (the request above), but no address or user agent: not tracked.
    assert abs(devs["DEVA"]["last_seen_ts"] - time.time() * 1000) < 60000
    assert "last_seen_ip" not in devs["DEVA"] and "last_seen_user_agent" not in devs["DEVA"]
    assert server.psql("SELECT count(*) FROM devices WHERE last_seen_ip IS NOT NULL "
                       "OR last_seen_user_agent IS NOT NULL") == "0"
    r = server.request("GET", V3 + "/devices/DEVB", token=ta)
    assert r.status == 200 and r.json["device_id"] == "DEVB"
    r = server.request("GET", V3 + "/devices/NOPE", token=ta)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    assert server.request("PUT", V3 + "/devices/DEVB", {"display_name": "Laptop"},
                          token=ta).json == {}
    assert server.request("GET", "/_matrix/client/r0/devices/DEVB",
                          token=tb).json["display_name"] == "Laptop"
    assert server.request("PUT", V3 + "/devices/DEVB", {}, token=ta).status == 200
    r = server.request("PUT", V3 + "/devices/NOPE", {"display_name": "x"}, token=ta)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    r = server.request("PUT", V3 + "/devices/DEVB", {"display_name": 5}, token=ta)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = server.request("PUT", V3 + "/devices/DEVB", {"display_name": "é" * 101}, token=ta)
    assert r.status == 400 and r.json["errcode"] == "M_TOO_LARGE"
    # Another user's device is just unknown.
    server.add_user("acct_dev_other")
    to = server.login("acct_dev_other")
    assert server.request("GET", V3 + "/devices/DEVA", token=to).status == 404
    r = server.request("GET", V3 + "/devices")
    assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN"
    assert uid


def test_delete_device_with_uia(server):
    server.add_user("acct_del")
    ta = server.login("acct_del", device_id="KEEP")
    tb = server.login("acct_del", device_id="GONE")
    path = V3 + "/devices/GONE"
    r = server.request("DELETE", path, token=ta)
    assert r.status == 401
    assert set(r.json) == {"flows", "params", "session"}
    sid = r.json["session"]
    # A wrong password: 401 again, same session, with the error.
    r = server.request("DELETE", path, {"auth": pw_auth("acct_del", sid, "wrong")}, token=ta)
    assert r.status == 401 and r.json["errcode"] == "M_FORBIDDEN"
    assert r.json["session"] == sid and r.json["completed"] == []
    # A stage that is not offered.
    r = server.request("DELETE", path, {"auth": {"type": "m.login.dummy", "session": sid}}, token=ta)
    assert r.status == 401 and r.json["errcode"] == "M_UNRECOGNIZED"
    # Someone else's password does not confirm this user: 403, as Synapse
    # answers (Complement's "requires UI auth user to match device owner").
    server.add_user("acct_del_other")
    r = server.request("DELETE", path, {"auth": pw_auth("acct_del_other", sid)}, token=ta)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    assert server.request("GET", path, token=ta).status == 200
    # The session is bound to this operation.
    r = server.request("DELETE", V3 + "/devices/KEEP", {"auth": pw_auth("acct_del", sid)}, token=ta)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = server.request("DELETE", path, {"auth": pw_auth("acct_del", "nosuchsession")}, token=ta)
    assert r.status == 400
    r = server.request("DELETE", path, {"auth": "x"}, token=ta)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = server.request("DELETE", path, {"auth": pw_auth("acct_del", sid)}, token=ta)
    assert r.status == 200 and r.json == {}
    assert whoami(server, tb).json["errcode"] == "M_UNKNOWN_TOKEN"
    assert whoami(server, ta).status == 200
    assert server.psql("SELECT count(*) FROM devices WHERE user_id LIKE '@acct_del:%'") == "1"
    # Both devices' arrival and GONE's departure reached the device lists (E2EE).
    assert server.psql("SELECT string_agg(device_id, ',' ORDER BY stream_id) FROM "
                       "e2e_device_list_changes WHERE user_id LIKE '@acct_del:%'") == "KEEP,GONE,GONE"
    # Deleting an unknown (or already deleted) device succeeds.
    r = with_uia(server, "DELETE", path, {}, ta, "acct_del")
    assert r.status == 200


def test_delete_devices_bulk(server):
    server.add_user("acct_bulk")
    ta = server.login("acct_bulk", device_id="B0")
    others = [server.login("acct_bulk", device_id=f"B{i}") for i in (1, 2)]
    path = V3 + "/delete_devices"
    # The body is checked before anyone is asked for a password.
    for body in [{}, {"devices": "B1"}, {"devices": [1]}]:
        r = server.request("POST", path, body, token=ta)
        assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON", body
    r = with_uia(server, "POST", path, {"devices": ["B1", "B2", "NOPE"]}, ta, "acct_bulk")
    assert r.status == 200, r
    for t in others:
        assert whoami(server, t).status == 401
    assert [d["device_id"] for d in
            server.request("GET", V3 + "/devices", token=ta).json["devices"]] == ["B0"]


def test_logout_all_ends_every_session(server):
    server.add_user("acct_lall")
    toks = [server.login("acct_lall") for _ in range(2)]
    assert server.request("POST", V3 + "/logout/all", {}, token=toks[0]).status == 200
    for t in toks:
        assert whoami(server, t).status == 401
    assert server.psql("SELECT count(*) FROM devices WHERE user_id LIKE '@acct_lall:%'") == "0"


# ---------------------------------------------------------------- password, deactivation

def test_password_change_logs_out_other_devices(server):
    server.add_user("acct_pw")
    keep = server.login("acct_pw", device_id="PW1")
    other = server.login("acct_pw", device_id="PW2")
    path = V3 + "/account/password"
    r = server.request("POST", path, {"logout_devices": True}, token=keep)
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM"
    r = server.request("POST", path, {"new_password": "x", "logout_devices": "no"}, token=keep)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = with_uia(server, "POST", path, {"new_password": "battery staple"}, keep, "acct_pw")
    assert r.status == 200 and r.json == {}
    assert whoami(server, keep).status == 200
    assert whoami(server, other).status == 401
    assert server.request("POST", LOGIN, login_body("acct_pw")).status == 403
    r = server.request("POST", LOGIN, dict(login_body("acct_pw"), password="battery staple"))
    assert r.status == 200
    third = r.json["access_token"]
    # logout_devices: false keeps the other sessions.
    r = with_uia(server, "POST", path, {"new_password": "third", "logout_devices": False},
                 keep, "acct_pw", "battery staple")
    assert r.status == 200 and whoami(server, third).status == 200
    # Without an access token, the password stage says who the user is; every
    # device is then logged out.
    r = with_uia(server, "POST", path, {"new_password": PW}, None, "acct_pw", "third")
    assert r.status == 200
    assert whoami(server, keep).status == 401 and whoami(server, third).status == 401
    assert server.request("POST", LOGIN, login_body("acct_pw")).status == 200


def test_deactivate_account(server):
    uid = server.add_user("acct_deact")
    tok = server.login("acct_deact")
    other_tok = server.login("acct_deact")
    server.add_user("acct_deact_host")
    host = server.login("acct_deact_host")
    r = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=host)
    assert r.status == 200, r
    room = r.json["room_id"]
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=tok).status == 200
    r = server.request("POST", V3 + "/createRoom", {"invite": [uid]}, token=host)
    invited_room = r.json["room_id"]
    assert server.request("PUT", f"{V3}/user/{uid}/account_data/org.example.acct",
                          {"a": 1}, token=tok).status == 200
    r = server.request("POST", V3 + "/account/deactivate", {"erase": "yes"}, token=tok)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = with_uia(server, "POST", V3 + "/account/deactivate", {"erase": True}, tok, "acct_deact")
    assert r.status == 200 and r.json == {"id_server_unbind_result": "success"}
    for t in (tok, other_tok):
        assert whoami(server, t).json["errcode"] == "M_UNKNOWN_TOKEN"
    r = server.request("POST", LOGIN, login_body("acct_deact"))
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    assert server.psql(f"SELECT deactivated, password_hash IS NULL, erased FROM users "
                       f"WHERE user_id = '{uid}'") == "t|t|t"
    assert server.psql(f"SELECT count(*) FROM account_data WHERE user_id = '{uid}'") == "0"
    assert server.psql(f"SELECT count(*) FROM devices WHERE user_id = '{uid}'") == "0"
    # Erased: the profile is gone.
    r = server.request("GET", f"{V3}/profile/{uid}")
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    # They left the room and rejected the invite.
    for rid in (room, invited_room):
        assert server.psql(f"SELECT membership FROM current_state WHERE room_id = '{rid}' "
                           f"AND type = 'm.room.member' AND state_key = '{uid}'") == "leave"


def test_erased_users_events_are_redacted_for_later_joiners(server):
    """Deactivation with erase (spec): users who join after it are served
    redacted copies of the erased user's events; those who were joined
    when they were sent still see them."""
    server.add_user("acct_erase")
    tok = server.login("acct_erase")
    server.add_user("acct_erase_early")
    early = server.login("acct_erase_early")
    server.add_user("acct_erase_late")
    late = server.login("acct_erase_late")
    r = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=early)
    room = r.json["room_id"]
    # Shared history: the late joiner may read what came before it joined.
    r = server.request("PUT", f"{V3}/rooms/{room}/state/m.room.history_visibility/",
                       {"history_visibility": "shared"}, token=early)
    assert r.status == 200, r
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=tok).status == 200
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/e1",
                       {"msgtype": "m.text", "body": "forget me"}, token=tok)
    eid = r.json["event_id"]
    r = with_uia(server, "POST", V3 + "/account/deactivate", {"erase": True}, tok, "acct_erase")
    assert r.status == 200, r
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=late).status == 200

    def seen(t):
        r = server.request("GET", f"{V3}/rooms/{room}/messages?dir=b&limit=50", token=t)
        assert r.status == 200, r
        return next(e for e in r.json["chunk"] if e["event_id"] == eid)
    assert seen(early)["content"]["body"] == "forget me"
    assert seen(late)["content"] == {}
    r = server.request("GET", f"{V3}/rooms/{room}/event/{eid}", token=late)
    assert r.status == 200 and r.json["content"] == {}, r


def test_deactivate_needs_the_password(server):
    server.add_user("acct_deact2")
    tok = server.login("acct_deact2")
    r = server.request("POST", V3 + "/account/deactivate", {}, token=tok)
    assert r.status == 401
    r = server.request("POST", V3 + "/account/deactivate",
                       {"auth": pw_auth("acct_deact2", r.json["session"], "wrong")}, token=tok)
    assert r.status == 401 and r.json["errcode"] == "M_FORBIDDEN"
    assert whoami(server, tok).status == 200


# ---------------------------------------------------------------- profile

def test_profile_fields(server):
    uid = server.add_user("acct_prof")
    tok = server.login("acct_prof")
    base = f"{V3}/profile/{uid}"
    # Accounts start with their localpart as display name (as in Synapse).
    assert server.request("GET", base).json == {"displayname": "acct_prof"}
    assert server.request("PUT", base + "/displayname", {"displayname": " Alice "},
                          token=tok).json == {}
    assert server.request("GET", base + "/displayname").json == {"displayname": "Alice"}
    assert server.request("GET", f"/_matrix/client/r0/profile/{uid}/displayname").status == 200
    # Any string, as Synapse takes it (Complement's TestAvatarUrlUpdate), and
    # it reaches the member events as given.
    room = server.request("POST", V3 + "/createRoom", {}, token=tok).json["room_id"]
    r = server.request("PUT", base + "/avatar_url", {"avatar_url": "LemurLover"}, token=tok)
    assert r.status == 200, r
    assert server.request("GET", base + "/avatar_url").json == {"avatar_url": "LemurLover"}
    r = server.request("GET", f"{V3}/rooms/{room}/state/m.room.member/{uid}", token=tok)
    assert r.json["avatar_url"] == "LemurLover"
    r = server.request("PUT", base + "/avatar_url", {"avatar_url": 5}, token=tok)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    assert server.request("PUT", base + "/avatar_url", {"avatar_url": "mxc://example.org/abc"},
                          token=tok).status == 200
    assert server.request("PUT", base + "/m.tz", {"m.tz": "Europe/Paris"}, token=tok).status == 200
    job = {"title": "Engineer", "since": 2020}
    assert server.request("PUT", base + "/org.example.job", {"org.example.job": job},
                          token=tok).status == 200
    assert server.request("GET", base + "/org.example.job").json == {"org.example.job": job}
    assert server.request("GET", base).json == {
        "displayname": "Alice", "avatar_url": "mxc://example.org/abc", "m.tz": "Europe/Paris",
        "org.example.job": job}
    # Delete a custom field; deleting again is fine.
    for _ in range(2):
        assert server.request("DELETE", base + "/org.example.job", token=tok).status == 200
    r = server.request("GET", base + "/org.example.job")
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    # "" removes the display name.
    assert server.request("PUT", base + "/displayname", {"displayname": ""}, token=tok).status == 200
    assert server.request("GET", base + "/displayname").status == 404
    assert server.request("DELETE", base + "/avatar_url", token=tok).status == 200
    assert server.request("GET", base).json == {"m.tz": "Europe/Paris"}


def test_profile_errors(server):
    uid = server.add_user("acct_prof_err")
    tok = server.login("acct_prof_err")
    other = server.add_user("acct_prof_err2")
    base = f"{V3}/profile/{uid}"
    cases = [
        ("PUT", base + "/Bad", {"Bad": 1}, 400, "M_INVALID_PARAM"),
        ("PUT", base + "/nodots", {"nodots": 1}, 400, "M_INVALID_PARAM"),
        ("PUT", base + "/org.example.", {"org.example.": 1}, 400, "M_INVALID_PARAM"),
        ("PUT", base + "/org.a" + "a" * 260, {}, 400, "M_KEY_TOO_LARGE"),
        ("GET", base + "/org.a" + "a" * 260, None, 400, "M_KEY_TOO_LARGE"),
        ("PUT", base + "/org.example.x", {"other": 1}, 400, "M_MISSING_PARAM"),
        ("PUT", base + "/displayname", {"displayname": 5}, 400, "M_INVALID_PARAM"),
        ("PUT", base + "/displayname", {"displayname": "x" * 257}, 400, "M_INVALID_PARAM"),
        ("PUT", base + "/org.example.big", {"org.example.big": "x" * 70000}, 400,
         "M_PROFILE_TOO_LARGE"),
        ("PUT", f"{V3}/profile/{other}/displayname", {"displayname": "Mallory"}, 403,
         "M_FORBIDDEN"),
        ("GET", f"{V3}/profile/@acct_nobody:{server.server_name}", None, 404, "M_NOT_FOUND"),
        ("GET", f"{V3}/profile/@acct_nobody:{server.server_name}/displayname", None, 404,
         "M_NOT_FOUND"),
        # Another server is asked; this one does not exist (Synapse: 502).
        ("GET", f"{V3}/profile/@someone:elsewhere.example", None, 502, "M_UNKNOWN"),
        ("GET", f"{V3}/profile/notauser", None, 400, "M_INVALID_PARAM"),
    ]
    for method, path, body, status, code in cases:
        r = server.request(method, path, body, token=tok if method != "GET" else None)
        assert r.status == status and r.json["errcode"] == code, (method, path[:80], r)
    r = server.request("PUT", base + "/displayname", {"displayname": "x"})
    assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN"
    # Many fields together can't pass 64 KiB either.
    for i in range(3):
        r = server.request("PUT", f"{base}/org.example.f{i}", {f"org.example.f{i}": "y" * 30000},
                           token=tok)
        assert r.status == (200 if i < 2 else 400), r
    assert r.json["errcode"] == "M_PROFILE_TOO_LARGE"
    assert server.request("GET", f"{V3}/profile/{other}").json == {"displayname": "acct_prof_err2"}


def test_profile_change_reaches_joined_rooms(server):
    uid = server.add_user("acct_prop")
    tok = server.login("acct_prop")
    rooms = [server.request("POST", V3 + "/createRoom", {}, token=tok).json["room_id"]
             for _ in range(2)]
    assert server.request("PUT", f"{V3}/profile/{uid}/displayname", {"displayname": "Prop"},
                          token=tok).status == 200
    assert server.request("PUT", f"{V3}/profile/{uid}/avatar_url",
                          {"avatar_url": "mxc://example.org/prop"}, token=tok).status == 200
    for room in rooms:
        r = server.request("GET", f"{V3}/rooms/{room}/state/m.room.member/{uid}", token=tok)
        assert r.status == 200, r
        assert r.json == {"membership": "join", "displayname": "Prop",
                          "avatar_url": "mxc://example.org/prop"}
    # Custom fields stay out of rooms; an unchanged name sends nothing.
    n = server.psql(f"SELECT count(*) FROM events WHERE room_id = '{rooms[0]}'")
    assert server.request("PUT", f"{V3}/profile/{uid}/m.tz", {"m.tz": "UTC"}, token=tok).status == 200
    assert server.request("PUT", f"{V3}/profile/{uid}/displayname", {"displayname": "Prop"},
                          token=tok).status == 200
    assert server.psql(f"SELECT count(*) FROM events WHERE room_id = '{rooms[0]}'") == n


# ---------------------------------------------------------------- capabilities, misc

def test_capabilities(server):
    server.add_user("acct_caps")
    tok = server.login("acct_caps")
    r = server.request("GET", V3 + "/capabilities", token=tok)
    assert r.status == 200
    c = r.json["capabilities"]
    assert c["m.room_versions"]["default"] == "12"
    assert c["m.room_versions"]["available"] == {str(v): "stable" for v in range(1, 13)}
    assert c["m.change_password"] == {"enabled": True}
    assert c["m.set_displayname"] == {"enabled": True}
    assert c["m.set_avatar_url"] == {"enabled": True}
    assert c["m.3pid_changes"] == {"enabled": False}
    assert c["m.profile_fields"] == {"enabled": True}
    assert server.request("GET", "/_matrix/client/r0/capabilities", token=tok).status == 200
    assert server.request("GET", V3 + "/capabilities").status == 401


def test_3pid_endpoints_and_protocols(server):
    server.add_user("acct_3pid")
    tok = server.login("acct_3pid")
    assert server.request("GET", V3 + "/account/3pid", token=tok).json == {"threepids": []}
    for path in ("/account/3pid", "/account/3pid/add", "/account/3pid/bind",
                 "/account/3pid/delete"):
        r = server.request("POST", V3 + path, {"medium": "email", "address": "a@b.c",
                                               "sid": "x", "client_secret": "y"}, token=tok)
        assert r.status == 400 and r.json["errcode"] == "M_FORBIDDEN", path
    r = server.request("POST", V3 + "/account/3pid/unbind", {"medium": "email",
                                                              "address": "a@b.c"}, token=tok)
    assert r.json == {"id_server_unbind_result": "success"}
    r = server.request("POST", V3 + "/account/3pid/unbind",
                       {"medium": "email", "address": "a@b.c", "id_server": "id.example"},
                       token=tok)
    assert r.json == {"id_server_unbind_result": "no-support"}
    req = {"client_secret": "s", "email": "a@b.c", "send_attempt": 1}
    for path, status, code in [("/account/3pid/email/requestToken", 400,
                                "M_THREEPID_MEDIUM_NOT_SUPPORTED"),
                               ("/account/3pid/msisdn/requestToken", 400,
                                "M_THREEPID_MEDIUM_NOT_SUPPORTED"),
                               ("/account/password/email/requestToken", 400,
                                "M_THREEPID_NOT_FOUND"),
                               ("/register/email/requestToken", 403, "M_THREEPID_DENIED"),
                               ("/register/msisdn/requestToken", 403, "M_THREEPID_DENIED")]:
        r = server.request("POST", V3 + path, req)
        assert r.status == status and r.json["errcode"] == code, path
    assert server.request("GET", V3 + "/thirdparty/protocols", token=tok).json == {}
    assert server.request("GET", V3 + "/account/3pid").status == 401


def test_openid_token(server):
    uid = server.add_user("acct_openid")
    tok = server.login("acct_openid")
    r = server.request("POST", f"{V3}/user/{uid}/openid/request_token", {}, token=tok)
    assert r.status == 200, r
    j = r.json
    assert j["token_type"] == "Bearer" and j["expires_in"] == 3600
    assert j["matrix_server_name"] == server.server_name
    assert server.psql(f"SELECT user_id FROM openid_tokens WHERE token_hash = "
                       f"'\\x{sha256_hex(j['access_token'])}'") == uid
    # The OpenID token is no access token.
    assert whoami(server, j["access_token"]).status == 401
    other = server.add_user("acct_openid2")
    r = server.request("POST", f"{V3}/user/{other}/openid/request_token", {}, token=tok)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"


def test_turn_server_unconfigured(server):
    server.add_user("acct_turn0")
    tok = server.login("acct_turn0")
    assert server.request("GET", V3 + "/voip/turnServer", token=tok).json == {}
    assert server.request("GET", V3 + "/voip/turnServer").status == 401


def test_registration_closed(server):
    for kind in ("", "?kind=user", "?kind=guest"):
        r = server.request("POST", V3 + "/register" + kind,
                           {"username": "acct_closed", "password": PW})
        assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", kind
    r = server.request("POST", V3 + "/register?kind=admin", {})
    assert r.status == 400
    r = server.request("GET", V3 + "/register/available?username=acct_closed")
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = server.request("GET", "/_matrix/client/v1/register/m.login.registration_token/validity"
                       "?token=abc")
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    assert server.request("GET", "/_synapse/admin/v1/register").status == 400
    assert server.request("POST", "/_synapse/admin/v1/register", {"nonce": "x"}).status == 400


def test_user_directory(server):
    me = server.add_user("acctdir_me")
    friend = server.add_user("acctdir_friend")
    public = server.add_user("acctdir_public")
    hermit = server.add_user("acctdir_hermit")
    stranger = server.add_user("acctdir_private")
    t_me, t_friend, t_pub, t_str = (server.login(n) for n in
                                    ("acctdir_me", "acctdir_friend", "acctdir_public",
                                     "acctdir_private"))
    r = server.request("POST", V3 + "/createRoom", {"invite": [friend]}, token=t_me)
    room = r.json["room_id"]
    assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=t_friend).status == 200
    server.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=t_pub)
    server.request("POST", V3 + "/createRoom", {"preset": "private_chat"}, token=t_str)
    server.request("PUT", f"{V3}/profile/{friend}/displayname", {"displayname": "Best Friend"},
                   token=t_friend)
    r = server.request("POST", V3 + "/user_directory/search", {"search_term": "acctdir"},
                       token=t_me)
    assert r.status == 200, r
    found = {u["user_id"]: u for u in r.json["results"]}
    assert friend in found and public in found
    assert hermit not in found and stranger not in found
    # Sharing a room with oneself does not count (Synapse; Complement's
    # TestRoomSpecificUsernameAtJoin): the searcher is found once in a public room.
    assert me not in found
    pub_room = server.request("POST", V3 + "/createRoom", {"preset": "public_chat"},
                              token=t_pub).json["room_id"]
    assert server.request("POST", f"{V3}/rooms/{pub_room}/join", {}, token=t_me).status == 200
    r = server.request("POST", V3 + "/user_directory/search", {"search_term": "acctdir"},
                       token=t_me)
    assert me in {u["user_id"] for u in r.json["results"]}
    assert server.request("POST", f"{V3}/rooms/{pub_room}/leave", {}, token=t_me).status == 200
    assert r.json["limited"] is False
    assert found[friend]["display_name"] == "Best Friend"
    # By display name, case-insensitively.
    r = server.request("POST", V3 + "/user_directory/search", {"search_term": "best FRIEND"},
                       token=t_me)
    assert [u["user_id"] for u in r.json["results"]] == [friend]
    r = server.request("POST", V3 + "/user_directory/search",
                       {"search_term": "acctdir", "limit": 1}, token=t_me)
    assert len(r.json["results"]) == 1 and r.json["limited"] is True
    # Wildcards are literal.
    r = server.request("POST", V3 + "/user_directory/search", {"search_term": "%"}, token=t_me)
    assert r.json["results"] == []
    for body, code in [({}, "M_MISSING_PARAM"), ({"search_term": 5}, "M_BAD_JSON"),
                       ({"search_term": "a", "limit": "x"}, "M_BAD_JSON")]:
        r = server.request("POST", V3 + "/user_directory/search", body, token=t_me)
        assert r.status == 400 and r.json["errcode"] == code


# ---------------------------------------------------------------- a server with tokens

TOKEN_YAML = """
registration_requires_token: true
allow_guest_access: true
registration_shared_secret: "shared-secret-for-tests"
turn_uris: ["turn:turn.example.org?transport=udp", "turns:turn.example.org:5349?transport=tcp"]
turn_shared_secret: "coturn-secret"
turn_user_lifetime: 2h
login_via_existing_session:
  enabled: true
  token_timeout: 2m
"""

VALIDITY = "/_matrix/client/v1/register/m.login.registration_token/validity?token="


@pytest.fixture(scope="module")
def tok_server():
    s = Server(extra_yaml=TOKEN_YAML).start()
    yield s
    assert s.stop() == 0
    log = s.read_log()
    assert "ERROR: AddressSanitizer" not in log and "runtime error:" not in log, log


def cli_token(srv, *args):
    return run_cli("registration-token", *args, "--config", srv.config)


def test_registration_token_cli(tok_server):
    s = tok_server
    r = cli_token(s, "add", "--uses", "2", "--token", "family-2026")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "family-2026"
    r = cli_token(s, "add", "--expires", "2099-01-01")
    assert r.returncode == 0, r.stderr
    gen = r.stdout.strip()
    assert len(gen) == 16 and gen.isalnum()
    # Stored hashed, named by a hint.
    assert s.psql("SELECT count(*) FROM registration_tokens WHERE token_hash = "
                  f"'\\x{sha256_hex('family-2026')}'") == "1"
    assert "family-2026" not in s.psql("SELECT string_agg(hint, ',') FROM registration_tokens")
    out = cli_token(s, "list").stdout
    assert "0/2" in out and "fa…" in out and "2099-01-01T00:00:00Z" in out, out
    for args in [("add", "--uses", "0"), ("add", "--token", "bad token!"),
                 ("add", "--expires", "2001-01-01"), ("add", "--expires", "tomorrow"),
                 ("delete",), ("list", "extra"), ("frobnicate",)]:
        assert cli_token(s, *args).returncode == 2, args
    assert cli_token(s, "add", "--token", "family-2026").returncode == 2  # exists
    assert cli_token(s, "delete", gen).returncode == 0
    assert s.request("GET", VALIDITY + gen).json == {"valid": False}
    assert cli_token(s, "delete", gen).returncode == 1
    assert run_cli("registration-token", "--help").returncode == 0
    assert "registration-token" in run_cli("--help").stdout


def test_register_with_token(tok_server):
    s = tok_server
    assert cli_token(s, "add", "--uses", "1", "--token", "one-use").returncode == 0
    assert s.request("GET", VALIDITY + "one-use").json == {"valid": True}
    assert s.request("GET", VALIDITY + "unknown-token").json == {"valid": False}
    assert s.request("GET", VALIDITY + "bad%20token").json == {"valid": False}
    r = s.request("GET", VALIDITY.rstrip("?token="))
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM"
    body = {"username": "acct_tok", "password": PW, "device_id": "TOKDEV",
            "initial_device_display_name": "Token phone"}
    r = s.request("POST", V3 + "/register", body)
    assert r.status == 401, r
    assert r.json["flows"] == [{"stages": ["m.login.registration_token"]}]
    sid = r.json["session"]
    r = s.request("POST", V3 + "/register", dict(body, auth={
        "type": "m.login.registration_token", "token": "wrong", "session": sid}))
    assert r.status == 401 and r.json["errcode"] == "M_FORBIDDEN"
    r = s.request("POST", V3 + "/register", dict(body, auth={"type": "m.login.dummy",
                                                             "session": sid}))
    assert r.status == 401 and r.json["errcode"] == "M_UNRECOGNIZED"
    r = s.request("POST", V3 + "/register", dict(body, auth={
        "type": "m.login.registration_token", "token": "one-use", "session": sid}))
    assert r.status == 200, r
    uid = f"@acct_tok:{s.server_name}"
    assert r.json["user_id"] == uid and r.json["device_id"] == "TOKDEV"
    tok = r.json["access_token"]
    assert whoami(s, tok).json == {"user_id": uid, "device_id": "TOKDEV", "is_guest": False}
    assert s.request("GET", V3 + "/devices/TOKDEV", token=tok).json["display_name"] == "Token phone"
    assert s.request("GET", f"{V3}/profile/{uid}").json == {"displayname": "acct_tok"}
    assert s.request("POST", LOGIN, login_body("acct_tok")).status == 200
    # Used up.
    assert s.request("GET", VALIDITY + "one-use").json == {"valid": False}
    assert "1/1" in cli_token(s, "list").stdout
    r = s.request("POST", V3 + "/register", {"username": "acct_tok2", "password": PW})
    r = s.request("POST", V3 + "/register", {"auth": {
        "type": "m.login.registration_token", "token": "one-use", "session": r.json["session"]}})
    assert r.status == 401 and r.json["errcode"] == "M_FORBIDDEN"
    # Repeating the finished session logs in again, it does not register twice.
    r = s.request("POST", V3 + "/register", dict(body, auth={"session": sid}))
    assert r.status == 200 and r.json["user_id"] == uid
    assert s.psql("SELECT completed FROM registration_tokens WHERE hint = 'o'") == "1"


def test_registration_token_pending_use(tok_server):
    s = tok_server
    assert cli_token(s, "add", "--uses", "1", "--token", "pending-one").returncode == 0
    # Pass the token stage without a password: the use is pending, not spent.
    r = s.request("POST", V3 + "/register", {"username": "acct_pend"})
    sid = r.json["session"]
    r = s.request("POST", V3 + "/register", {"username": "acct_pend", "auth": {
        "type": "m.login.registration_token", "token": "pending-one", "session": sid}})
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM", r
    assert s.request("GET", VALIDITY + "pending-one").json == {"valid": False}
    out = [l for l in cli_token(s, "list").stdout.splitlines() if l.startswith("pe")]
    assert out and "0/1" in out[0] and " 1 " in out[0], out
    # The same session finishes with a password: the use is completed.
    r = s.request("POST", V3 + "/register", {"username": "acct_pend", "password": PW,
                                             "auth": {"session": sid}})
    assert r.status == 200, r
    out = [l for l in cli_token(s, "list").stdout.splitlines() if l.startswith("pe")]
    assert "1/1" in out[0] and "used up" in out[0], out


def test_register_remembers_params_and_options(tok_server):
    s = tok_server
    assert cli_token(s, "add", "--token", "many-uses").returncode == 0
    # The password only in the first request; the last carries only auth.
    r = s.request("POST", V3 + "/register", {"username": "Acct_Upper", "password": PW,
                                             "refresh_token": True})
    sid = r.json["session"]
    # The session never stores the password itself.
    assert PW not in s.psql(f"SELECT params::text || coalesce(password_hash, '') FROM uia_sessions "
                            f"WHERE session_id = '{sid}'")
    r = s.request("POST", V3 + "/register", {"auth": {
        "type": "m.login.registration_token", "token": "many-uses", "session": sid}})
    assert r.status == 200, r
    assert r.json["user_id"] == f"@acct_upper:{s.server_name}"
    assert "refresh_token" in r.json and r.json["expires_in_ms"] == 300000
    assert s.request("POST", LOGIN, login_body("acct_upper")).status == 200
    # inhibit_login: an account, no session.
    r = s.request("POST", V3 + "/register", {"username": "acct_inhibit", "password": PW,
                                             "inhibit_login": True})
    r = s.request("POST", V3 + "/register", {"username": "acct_inhibit", "password": PW,
                                             "inhibit_login": True, "auth": {
                                                 "type": "m.login.registration_token",
                                                 "token": "many-uses",
                                                 "session": r.json["session"]}})
    assert r.status == 200 and set(r.json) == {"user_id", "home_server"}
    # No username: a generated numeric one.
    r = s.request("POST", V3 + "/register", {"password": PW})
    r = s.request("POST", V3 + "/register", {"password": PW, "auth": {
        "type": "m.login.registration_token", "token": "many-uses", "session": r.json["session"]}})
    assert r.status == 200
    assert r.json["user_id"][1:].split(":")[0].isdigit()


def test_register_username_checks_come_first(tok_server):
    s = tok_server
    for name, code in [("acct_tok", "M_USER_IN_USE"), ("ACCT_TOK", "M_USER_IN_USE"),
                       ("bad name", "M_INVALID_USERNAME"), ("_reserved", "M_INVALID_USERNAME"),
                       ("12345", "M_INVALID_USERNAME"), ("", "M_INVALID_USERNAME"),
                       ("é", "M_INVALID_USERNAME"), (5, "M_INVALID_USERNAME")]:
        r = s.request("POST", V3 + "/register", {"username": name, "password": PW})
        assert r.status == 400 and r.json["errcode"] == code, (name, r)
    r = s.request("POST", V3 + "/register", {"username": "acct_ok", "password": 5})
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    r = s.request("POST", V3 + "/register", {"username": "acct_ok", "refresh_token": "y"})
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = s.request("POST", V3 + "/register", {"username": "acct_ok",
                                             "initial_device_display_name": "d" * 101})
    assert r.status == 400 and r.json["errcode"] == "M_TOO_LARGE"
    r = s.request("POST", V3 + "/register", {"username": "acct_ok", "device_id": 7})
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    r = s.request("POST", V3 + "/register", {"type": "m.login.application_service",
                                             "username": "acct_as"})
    assert r.status == 400
    # Registration by token: available answers too.
    assert s.request("GET", V3 + "/register/available?username=acct_free").json == \
        {"available": True}
    r = s.request("GET", V3 + "/register/available?username=acct_tok")
    assert r.status == 400 and r.json["errcode"] == "M_USER_IN_USE"


def test_guest_registration(tok_server):
    s = tok_server
    r = s.request("POST", V3 + "/register?kind=guest",
                  {"username": "acct_ignored", "device_id": "IGNORED",
                   "initial_device_display_name": "Guest tablet"})
    assert r.status == 200, r
    g = r.json
    assert g["user_id"][1:].split(":")[0].isdigit() and g["device_id"] != "IGNORED"
    assert "refresh_token" not in g
    assert whoami(s, g["access_token"]).json["is_guest"] is True
    assert s.request("GET", V3 + "/devices", token=g["access_token"]).json["devices"][0][
        "display_name"] == "Guest tablet"
    caps = s.request("GET", V3 + "/capabilities", token=g["access_token"]).json["capabilities"]
    assert caps["m.change_password"] == {"enabled": False}
    assert caps["m.profile_fields"] == {"enabled": True, "allowed": ["displayname"]}
    uid = g["user_id"]
    r = s.request("PUT", f"{V3}/profile/{uid}/displayname", {"displayname": "Visitor"},
                  token=g["access_token"])
    assert r.status == 200
    r = s.request("PUT", f"{V3}/profile/{uid}/m.tz", {"m.tz": "UTC"}, token=g["access_token"])
    assert r.status == 403 and r.json["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"
    # Guests get TURN credentials (turn_allow_guests defaults to true).
    assert "username" in s.request("GET", V3 + "/voip/turnServer", token=g["access_token"]).json
    # Guests join only rooms whose m.room.guest_access is can_join.
    s.add_user("acct_host")
    host = s.login("acct_host")
    closed = s.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=host).json["room_id"]
    r = s.request("POST", f"{V3}/join/{closed}", {}, token=g["access_token"])
    assert r.status == 403 and r.json["errcode"] == "M_GUEST_ACCESS_FORBIDDEN", r
    open_room = s.request("POST", V3 + "/createRoom", {"preset": "public_chat", "initial_state": [
        {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "can_join"}}]},
        token=host).json["room_id"]
    assert s.request("POST", f"{V3}/join/{open_room}", {}, token=g["access_token"]).status == 200


def shared_secret_register(s, username, password, admin=False, secret="shared-secret-for-tests",
                           **extra):
    nonce = s.request("GET", "/_synapse/admin/v1/register").json["nonce"]
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\x00".join([nonce.encode(), username.encode(), password.encode(),
                             b"admin" if admin else b"notadmin"]))
    body = dict({"nonce": nonce, "username": username, "password": password, "admin": admin,
                 "mac": mac.hexdigest()}, **extra)
    return s.request("POST", "/_synapse/admin/v1/register", body), body


def test_shared_secret_registration(tok_server):
    s = tok_server
    r, body = shared_secret_register(s, "acct_ss_admin", "pw1", admin=True, displayname="Boss")
    assert r.status == 200, r
    uid = r.json["user_id"]
    assert uid == f"@acct_ss_admin:{s.server_name}" and "access_token" in r.json
    assert whoami(s, r.json["access_token"]).json["user_id"] == uid
    assert s.psql(f"SELECT admin FROM users WHERE user_id = '{uid}'") == "t"
    assert s.request("GET", f"{V3}/profile/{uid}").json == {"displayname": "Boss"}
    # A nonce works once.
    r = s.request("POST", "/_synapse/admin/v1/register", dict(body, username="acct_ss_again"))
    assert r.status == 400
    r, _ = shared_secret_register(s, "acct_ss_user", "pw2", inhibit_login=True)
    assert r.status == 200 and "access_token" not in r.json
    assert s.psql(f"SELECT admin FROM users WHERE user_id = '{r.json['user_id']}'") == "f"
    # A wrong secret, or admin claimed without being signed for.
    r, _ = shared_secret_register(s, "acct_ss_bad", "pw", secret="guess")
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r, body = shared_secret_register(s, "acct_ss_bad2", "pw")
    nonce = s.request("GET", "/_synapse/admin/v1/register").json["nonce"]
    r = s.request("POST", "/_synapse/admin/v1/register", dict(body, nonce=nonce, admin=True))
    assert r.status == 403
    r, _ = shared_secret_register(s, "acct_ss_admin", "pw")
    assert r.status == 400 and r.json["errcode"] == "M_USER_IN_USE"
    # An expired nonce.
    nonce = s.request("GET", "/_synapse/admin/v1/register").json["nonce"]
    s.psql(f"UPDATE registration_nonces SET created_ts = created_ts - 61000 "
           f"WHERE nonce = '{nonce}'")
    r = s.request("POST", "/_synapse/admin/v1/register", dict(body, nonce=nonce))
    assert r.status == 400
    r = s.request("POST", "/_synapse/admin/v1/register", {"username": "x"})
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    nonce = s.request("GET", "/_synapse/admin/v1/register").json["nonce"]
    r = s.request("POST", "/_synapse/admin/v1/register", {"nonce": nonce, "password": "x"})
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"


def test_login_token_via_existing_session(tok_server):
    s = tok_server
    r, _ = shared_secret_register(s, "acct_qr", PW)
    tok = r.json["access_token"]
    flows = s.request("GET", LOGIN).json["flows"]
    assert {"type": "m.login.token", "get_login_token": True} in flows
    caps = s.request("GET", V3 + "/capabilities", token=tok).json["capabilities"]
    assert caps["m.get_login_token"] == {"enabled": True}
    path = "/_matrix/client/v1/login/get_token"
    r = with_uia(s, "POST", path, {}, tok, "acct_qr")
    assert r.status == 200, r
    assert r.json["expires_in_ms"] == 120000
    lt = r.json["login_token"]
    assert s.psql(f"SELECT count(*) FROM login_tokens WHERE token_hash = '\\x{sha256_hex(lt)}'") \
        == "1"
    r = s.request("POST", LOGIN, {"type": "m.login.token", "token": lt, "device_id": "QRDEV"})
    assert r.status == 200 and r.json["user_id"].startswith("@acct_qr:")
    assert r.json["device_id"] == "QRDEV"
    # Single use.
    r = s.request("POST", LOGIN, {"type": "m.login.token", "token": lt})
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = s.request("POST", LOGIN, {"type": "m.login.token"})
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM"
    # Every token needs fresh consent: a finished session can't mint another.
    r = s.request("POST", path, {}, token=tok)
    sid = r.json["session"]
    assert s.request("POST", path, {"auth": pw_auth("acct_qr", sid)}, token=tok).status == 200
    r = s.request("POST", path, {"auth": pw_auth("acct_qr", sid)}, token=tok)
    assert r.status == 400
    # An expired token.
    r = with_uia(s, "POST", path, {}, tok, "acct_qr")
    lt = r.json["login_token"]
    s.psql(f"UPDATE login_tokens SET valid_until_ts = 1 WHERE token_hash = '\\x{sha256_hex(lt)}'")
    assert s.request("POST", LOGIN, {"type": "m.login.token", "token": lt}).status == 403


def test_turn_server_shared_secret(tok_server):
    s = tok_server
    r, _ = shared_secret_register(s, "acct_turn", PW)
    uid, tok = r.json["user_id"], r.json["access_token"]
    before = int(time.time())
    r = s.request("GET", V3 + "/voip/turnServer", token=tok)
    assert r.status == 200, r
    j = r.json
    expiry, user = j["username"].split(":", 1)
    assert user == uid
    assert before + 7200 - 5 <= int(expiry) <= int(time.time()) + 7200 + 1
    want = base64.b64encode(hmac.new(b"coturn-secret", j["username"].encode(),
                                     hashlib.sha1).digest()).decode()
    assert j["password"] == want
    assert j["ttl"] == 7200
    assert j["uris"] == ["turn:turn.example.org?transport=udp",
                         "turns:turn.example.org:5349?transport=tcp"]


# ---------------------------------------------------------------- an open server

OPEN_YAML = """
enable_registration: true
enable_registration_without_verification: true
track_client_ips: true
user_directory:
  search_all_users: true
"""


@pytest.fixture(scope="module")
def open_server():
    s = Server(extra_yaml=OPEN_YAML).start()
    yield s
    assert s.stop() == 0
    log = s.read_log()
    assert "ERROR: AddressSanitizer" not in log and "runtime error:" not in log, log


def register_dummy(s, username, **extra):
    body = dict({"username": username, "password": PW}, **extra)
    r = s.request("POST", V3 + "/register", body)
    assert r.status == 401, r
    assert r.json["flows"] == [{"stages": ["m.login.dummy"]}]
    return s.request("POST", V3 + "/register",
                     dict(body, auth={"type": "m.login.dummy", "session": r.json["session"]}))


def test_open_registration(open_server):
    s = open_server
    r = register_dummy(s, "acct_open")
    assert r.status == 200, r
    assert whoami(s, r.json["access_token"]).status == 200
    assert register_dummy(s, "acct_open_r0").status == 200
    assert s.request("GET", V3 + "/register/available?username=acct_open2").json == \
        {"available": True}
    for name, code in [("acct_open", "M_USER_IN_USE"), ("Bad Name", "M_INVALID_USERNAME"),
                       ("_x", "M_INVALID_USERNAME")]:
        r = s.request("GET", V3 + "/register/available?username=" + name.replace(" ", "%20"))
        assert r.status == 400 and r.json["errcode"] == code, name
    r = s.request("GET", V3 + "/register/available")
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM"
    r = s.request("GET", "/_matrix/client/r0/register/available?username=acct_open3")
    assert r.status == 200
    # A password is required (after the stages).
    r = s.request("POST", V3 + "/register", {"username": "acct_nopw"})
    r = s.request("POST", V3 + "/register", {"username": "acct_nopw", "auth": {
        "type": "m.login.dummy", "session": r.json["session"]}})
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM"
    # No tokens on this server; no guests either.
    assert s.request("GET", VALIDITY + "x").status == 403
    assert s.request("POST", V3 + "/register?kind=guest", {}).status == 403


def test_track_client_ips_when_enabled(open_server):
    s = open_server
    r = register_dummy(s, "acct_ip", device_id="IPDEV")
    tok = r.json["access_token"]
    r = s.request("GET", V3 + "/devices/IPDEV", token=tok, headers={"User-Agent": "acct-test/1"})
    d = r.json
    assert d["last_seen_ip"] == "127.0.0.1", d
    assert "last_seen_ts" in d
    assert d.get("last_seen_user_agent", "").startswith("Python-urllib") or \
        d.get("last_seen_user_agent") == "acct-test/1"


def test_search_all_users(open_server):
    s = open_server
    r = register_dummy(s, "acct_searcher")
    tok = r.json["access_token"]
    assert register_dummy(s, "acct_loner").status == 200
    r = s.request("POST", V3 + "/user_directory/search", {"search_term": "acct_loner"}, token=tok)
    assert [u["user_id"] for u in r.json["results"]] == [f"@acct_loner:{s.server_name}"]
    assert r.json["results"][0]["display_name"] == "acct_loner"
    # Never oneself, as Synapse's search_all_users ("user_id != searcher").
    r = s.request("POST", V3 + "/user_directory/search", {"search_term": "acct_searcher"},
                  token=tok)
    assert r.json["results"] == []


def test_turning_ip_tracking_off_forgets_addresses(open_server):
    s = open_server
    assert s.psql("SELECT count(*) FROM devices WHERE last_seen_ip IS NOT NULL") != "0"
    assert s.stop() == 0
    with open(s.config) as f:
        text = f.read()
    with open(s.config, "w") as f:
        f.write(text.replace("track_client_ips: true", "track_client_ips: false"))
    s.start()
    tok = s.request("POST", LOGIN, login_body("acct_open")).json["access_token"]
    assert whoami(s, tok).status == 200
    assert s.psql("SELECT count(*) FROM devices WHERE last_seen_ip IS NOT NULL "
                  "OR last_seen_user_agent IS NOT NULL") == "0"


def warm(srv, tok):
    """Use a token until the server answers it from its in-memory cache (the
    second authenticated request caches it; the third is served from it)."""
    for _ in range(3):
        assert whoami(srv, tok).status == 200


def test_revocation_reaches_cached_tokens_at_once(server):
    # Every way a token ends, after it was served from the cache.
    server.add_user("acct_cache")
    a, b, c = (server.login("acct_cache", device_id=d) for d in ("CA", "CB", "CC"))
    for t in (a, b, c):
        warm(server, t)
    assert server.request("POST", V3 + "/logout", {}, token=c).status == 200
    assert whoami(server, c).json["errcode"] == "M_UNKNOWN_TOKEN"
    r = with_uia(server, "DELETE", V3 + "/devices/CB", {}, a, "acct_cache")
    assert r.status == 200 and whoami(server, b).status == 401
    # Logging in again with a device ID ends that device's previous token.
    d1 = server.login("acct_cache", device_id="CD")
    warm(server, d1)
    d2 = server.login("acct_cache", device_id="CD")
    assert whoami(server, d1).status == 401 and whoami(server, d2).status == 200
    # Refresh: using the new access token retires the old one.
    r = server.request("POST", LOGIN, login_body("acct_cache", refresh_token=True))
    old, rt = r.json["access_token"], r.json["refresh_token"]
    warm(server, old)
    r = server.request("POST", V3 + "/refresh", {"refresh_token": rt})
    new = r.json["access_token"]
    assert whoami(server, new).status == 200
    assert whoami(server, old).status == 401
    # Password change with logout_devices, then deactivation.
    warm(server, d2)
    r = with_uia(server, "POST", V3 + "/account/password", {"new_password": "p2"}, a, "acct_cache")
    assert r.status == 200
    assert whoami(server, d2).status == 401 and whoami(server, new).status == 401
    warm(server, a)
    r = with_uia(server, "POST", V3 + "/account/deactivate", {}, a, "acct_cache", "p2")
    assert r.status == 200
    assert whoami(server, a).json["errcode"] == "M_UNKNOWN_TOKEN"
