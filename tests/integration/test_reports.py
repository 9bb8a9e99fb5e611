"""Reports of events (r0), rooms (v1.13) and users (v1.14), stored and
listed by `pvyhs report list`; and GET /admin/whois."""
import json
import urllib.parse

import pytest

from harness import run_cli

V3 = "/_matrix/client/v3"
R0 = "/_matrix/client/r0"


@pytest.fixture(scope="module")
def users(server):
    out = {}
    for name, admin in (("rp_alice", False), ("rp_bob", False), ("rp_admin", True)):
        uid = server.add_user(name, admin=admin)
        out[name] = (uid, server.login(name))
    return out


def create(server, tok, **body):
    r = server.request("POST", V3 + "/createRoom", body, token=tok)
    assert r.status == 200, r
    return r.json["room_id"]


def send(server, tok, room, body, txn):
    r = server.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/{txn}",
                       {"msgtype": "m.text", "body": body}, token=tok)
    assert r.status == 200, r
    return r.json["event_id"]


def reports(server):
    r = run_cli("report", "list", "--config", server.config, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def q(s):
    return urllib.parse.quote(s, safe="")


def test_report_event(server, users):
    a_id, a = users["rp_alice"]
    _, b = users["rp_bob"]
    room = create(server, a, preset="public_chat")
    ev = send(server, a, room, "rude words", "rp1")
    url = f"{V3}/rooms/{q(room)}/report/{q(ev)}"
    r = server.request("POST", url, {"reason": "rude", "score": -100}, token=a)
    assert r.status == 200 and r.json == {}
    mine = [x for x in reports(server) if x.get("event_id") == ev]
    assert len(mine) == 1
    assert mine[0]["kind"] == "event" and mine[0]["room_id"] == room
    assert mine[0]["reporter"] == a_id and mine[0]["reason"] == "rude" and mine[0]["score"] == -100
    # reason and score are optional; r0 path
    r = server.request("POST", f"{R0}/rooms/{q(room)}/report/{q(ev)}", {}, token=a)
    assert r.status == 200
    # not joined: 404, the same answer as for an unknown event
    r = server.request("POST", url, {"reason": "x"}, token=b)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    assert server.request("POST", f"{V3}/rooms/{q(room)}/join", {}, token=b).status == 200
    assert server.request("POST", url, {"reason": "x"}, token=b).status == 200
    r = server.request("POST", f"{V3}/rooms/{q(room)}/report/{q('$nope')}", {"reason": "x"}, token=b)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    other = create(server, a)
    r = server.request("POST", f"{V3}/rooms/{q(other)}/report/{q(ev)}", {}, token=a)
    assert r.status == 404                                  # the event is not in that room
    # redacted events are gone
    assert server.request("PUT", f"{V3}/rooms/{q(room)}/redact/{q(ev)}/rpr1", {}, token=a).status == 200
    assert server.request("POST", url, {}, token=b).status == 404
    # bad bodies
    for body, code in (({"reason": 5}, "M_BAD_JSON"), ({"score": "bad"}, "M_BAD_JSON"),
                       ({"score": 1.5}, "M_BAD_JSON"), ({"reason": "x" * 1001}, "M_BAD_JSON")):
        r = server.request("POST", url, body, token=a)
        assert r.status == 400 and r.json["errcode"] == code, body
    r = server.request("POST", url, raw=b"[", token=a)
    assert r.status == 400 and r.json["errcode"] == "M_NOT_JSON"
    assert server.request("POST", url, {}).status == 401


def test_report_room(server, users):
    a_id, a = users["rp_alice"]
    _, b = users["rp_bob"]
    room = create(server, a)
    url = f"{V3}/rooms/{q(room)}/report"
    # the reporter need not be in the room
    r = server.request("POST", url, {"reason": "spam room"}, token=b)
    assert r.status == 200 and r.json == {}
    assert [x["reason"] for x in reports(server) if x["kind"] == "room" and x["room_id"] == room] == [
        "spam room"]
    assert server.request("POST", url, {"reason": ""}, token=b).status == 200   # may be blank
    r = server.request("POST", f"{V3}/rooms/{q('!unknown:example.org')}/report", {"reason": "x"}, token=b)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    r = server.request("POST", url, {}, token=b)
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM"
    r = server.request("POST", url, {"reason": None}, token=b)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"
    # v1.13 endpoint: no r0 form
    assert server.request("POST", f"{R0}/rooms/{q(room)}/report", {"reason": "x"}, token=b).status == 404


def test_report_user(server, users):
    a_id, a = users["rp_alice"]
    b_id, b = users["rp_bob"]
    before = len(reports(server))
    r = server.request("POST", f"{V3}/users/{q(b_id)}/report", {"reason": "harassment"}, token=a)
    assert r.status == 200 and r.json == {}
    # unknown local users answer the same and are not stored (their absence stays private)
    ghost = "@rp_ghost:" + server.server_name
    assert server.request("POST", f"{V3}/users/{q(ghost)}/report", {"reason": "x"}, token=a).status == 200
    # remote users are kept: the admin may act on them in local rooms
    remote = "@spammer:elsewhere.example"
    assert server.request("POST", f"{V3}/users/{q(remote)}/report", {"reason": "spam"}, token=a).status == 200
    new = reports(server)[before:]
    assert [(x["kind"], x["user_id"], x["reason"]) for x in new] == [
        ("user", b_id, "harassment"), ("user", remote, "spam")]
    r = server.request("POST", f"{V3}/users/{q('not-a-user')}/report", {"reason": "x"}, token=a)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    r = server.request("POST", f"{V3}/users/{q(b_id)}/report", {}, token=a)
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM"
    r = server.request("POST", f"{V3}/users/{q(b_id)}/report", {"reason": "y" * 1001}, token=a)
    assert r.status == 400 and r.json["errcode"] == "M_BAD_JSON"


def test_report_list_cli(server, users):
    _, a = users["rp_alice"]
    room = create(server, a)
    server.request("POST", f"{V3}/rooms/{q(room)}/report", {"reason": "cli check"}, token=a)
    r = run_cli("report", "list", "--config", server.config)
    assert r.returncode == 0, r.stderr
    assert f"reported room {room}" in r.stdout and "reason: cli check" in r.stdout
    listed = reports(server)
    assert all({"id", "kind", "reporter", "received_ts"} <= set(x) for x in listed)
    assert [x["id"] for x in listed] == sorted(x["id"] for x in listed)
    assert run_cli("report", "--help").returncode == 0
    assert run_cli("report", "list").returncode == 2                 # no --config
    assert run_cli("report", "delete", "--config", server.config).returncode == 2
    assert run_cli("report").returncode == 2
    assert "report list" in run_cli("--help").stdout + run_cli("--help").stderr


def test_whois(server, users):
    a_id, a = users["rp_alice"]
    b_id, b = users["rp_bob"]
    _, admin = users["rp_admin"]
    server.login("rp_alice", device_id="RPWHOIS")
    server.request("GET", V3 + "/account/whoami", token=a)
    r = server.request("GET", f"{V3}/admin/whois/{q(a_id)}", token=a)     # oneself
    assert r.status == 200 and r.json["user_id"] == a_id
    devices = r.json["devices"]
    assert "RPWHOIS" in devices
    conns = [c for d in devices.values() for s in d["sessions"] for c in s["connections"]]
    assert conns and all("last_seen" in c for c in conns)
    # no addresses or user agents unless the admin turned tracking on
    assert all("ip" not in c and "user_agent" not in c for c in conns)
    # with track_client_ips on, devices keep an address and agent: whois shows them
    server.psql("UPDATE devices SET last_seen_ip = '192.0.2.7', last_seen_user_agent = 'ua/1'"
                f" WHERE user_id = '{a_id}' AND device_id = 'RPWHOIS'")
    r = server.request("GET", f"{V3}/admin/whois/{q(a_id)}", token=a)
    conn = r.json["devices"]["RPWHOIS"]["sessions"][0]["connections"][0]
    assert conn["ip"] == "192.0.2.7" and conn["user_agent"] == "ua/1"
    r = server.request("GET", f"{R0}/admin/whois/{q(a_id)}", token=admin)   # an admin, r0
    assert r.status == 200 and r.json["user_id"] == a_id
    r = server.request("GET", f"{V3}/admin/whois/{q(a_id)}", token=b)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = server.request("GET", f"{V3}/admin/whois/{q('@nobody:' + server.server_name)}", token=admin)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    r = server.request("GET", f"{V3}/admin/whois/{q('@x:elsewhere.example')}", token=admin)
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    # a non-admin learns nothing about others, even whether they exist
    r = server.request("GET", f"{V3}/admin/whois/{q('@nobody:' + server.server_name)}", token=b)
    assert r.status == 403
    assert server.request("GET", f"{V3}/admin/whois/{q(a_id)}").status == 401
