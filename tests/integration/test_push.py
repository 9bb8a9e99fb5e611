"""Push rules, pushers and notifications through the Client-Server API: the
default rule set as Element reads it, every change a client can make and
every error the spec names, pushers stored and listed, and /notifications
with read state from receipts and one's own messages."""
import json
import urllib.parse

import pytest

V3 = "/_matrix/client/v3"
R0 = "/_matrix/client/r0"

OVERRIDE = [".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me",
            ".org.pvyhs.rule.knock", ".m.rule.member_event", ".m.rule.is_user_mention", ".m.rule.contains_display_name",
            ".m.rule.is_room_mention", ".m.rule.roomnotif", ".m.rule.tombstone",
            ".m.rule.reaction", ".m.rule.room.server_acl", ".m.rule.suppress_edits"]
UNDERRIDE = [".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one",
             ".m.rule.message", ".m.rule.encrypted", ".im.vector.jitsi"]


@pytest.fixture(scope="module")
def users(server):
    out = {}
    for name in ("push_alice", "push_bob", "push_carol", "push_dave"):
        uid = server.add_user(name)
        out[name] = (uid, server.login(name))
    return out


def req(server, method, path, body=None, token=None, **kw):
    return server.request(method, V3 + path, body, token=token, **kw)


def rules(server, token):
    r = req(server, "GET", "/pushrules/", token=token)
    assert r.status == 200, r
    return r.json["global"]


def ids(ruleset, kind):
    return [x["rule_id"] for x in ruleset[kind]]


def err(r, status, errcode):
    assert r.status == status, r
    assert r.json["errcode"] == errcode, r


def q(s):
    return urllib.parse.quote(s, safe="")


# ---- the default rule set ----

def test_defaults_for_a_new_user(server, users):
    uid, tok = users["push_alice"]
    g = rules(server, tok)
    assert set(g) == {"override", "content", "room", "sender", "underride"}
    assert ids(g, "override") == OVERRIDE
    assert ids(g, "underride") == UNDERRIDE
    assert ids(g, "content") == [".m.rule.contains_user_name"]
    assert g["room"] == [] and g["sender"] == []
    for kind in g:
        for rule in g[kind]:
            assert rule["default"] is True and isinstance(rule["actions"], list)
            assert rule["enabled"] is (rule["rule_id"] != ".m.rule.master")
            assert ("conditions" in rule) == (kind in ("override", "underride"))
    by_id = {r["rule_id"]: r for r in g["override"] + g["underride"] + g["content"]}
    assert by_id[".m.rule.master"] == {"rule_id": ".m.rule.master", "default": True,
                                       "enabled": False, "conditions": [], "actions": []}
    assert by_id[".m.rule.invite_for_me"]["conditions"] == [
        {"key": "type", "kind": "event_match", "pattern": "m.room.member"},
        {"key": "content.membership", "kind": "event_match", "pattern": "invite"},
        {"key": "state_key", "kind": "event_match", "pattern": uid}]
    assert by_id[".m.rule.invite_for_me"]["actions"] == [
        "notify", {"set_tweak": "sound", "value": "default"}]
    assert by_id[".m.rule.is_user_mention"]["conditions"] == [
        {"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": uid}]
    assert by_id[".m.rule.is_user_mention"]["actions"] == [
        "notify", {"set_tweak": "sound", "value": "default"}, {"set_tweak": "highlight"}]
    assert by_id[".m.rule.is_room_mention"]["conditions"] == [
        {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
        {"kind": "sender_notification_permission", "key": "room"}]
    assert by_id[".m.rule.suppress_edits"]["conditions"] == [
        {"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type",
         "value": "m.replace"}]
    assert by_id[".m.rule.tombstone"]["conditions"] == [
        {"kind": "event_match", "key": "type", "pattern": "m.room.tombstone"},
        {"kind": "event_match", "key": "state_key", "pattern": ""}]
    assert by_id[".m.rule.contains_user_name"]["pattern"] == "push_alice"
    assert by_id[".m.rule.room_one_to_one"]["conditions"] == [
        {"kind": "room_member_count", "is": "2"},
        {"kind": "event_match", "key": "type", "pattern": "m.room.message"}]
    assert by_id[".m.rule.call"]["actions"] == ["notify", {"set_tweak": "sound", "value": "ring"}]
    assert by_id[".m.rule.message"]["actions"] == ["notify"]


def test_every_path_form_answers(server, users):
    _, tok = users["push_alice"]
    g = rules(server, tok)
    # The spec's listings end with a slash (every client uses them); r0
    # for older clients.
    r = req(server, "GET", "/pushrules/global/", token=tok)
    assert r.status == 200 and r.json == g
    r = server.request("GET", R0 + "/pushrules/", token=tok)
    assert r.status == 200 and r.json == {"global": g}
    for kind in g:
        r = req(server, "GET", f"/pushrules/global/{kind}/", token=tok)
        assert r.status == 200 and r.json == g[kind], kind
    # Without the slash, as Synapse answers (SyTest 61push/80torture).
    err(req(server, "GET", "/pushrules", token=tok), 404, "M_UNRECOGNIZED")
    for path in ("/pushrules/global", "/pushrules/global/room"):
        err(req(server, "GET", path, token=tok), 400, "M_UNRECOGNIZED")
    for path in ("/pushrules/", "/pushrules/global", "/pushrules/global/room",
                 "/pushrules/global/room/"):
        err(req(server, "PUT", path, {"actions": ["notify"]}, token=tok), 400, "M_UNRECOGNIZED")
    r = req(server, "GET", "/pushrules/global/override/.m.rule.master", token=tok)
    assert r.status == 200 and r.json == g["override"][0]
    r = req(server, "GET", "/pushrules/global/underride/.m.rule.call/actions", token=tok)
    assert r.json == {"actions": ["notify", {"set_tweak": "sound", "value": "ring"}]}
    r = req(server, "GET", "/pushrules/global/override/.m.rule.master/enabled", token=tok)
    assert r.json == {"enabled": False}


def test_read_errors(server, users):
    _, tok = users["push_alice"]
    err(req(server, "GET", "/pushrules/"), 401, "M_MISSING_TOKEN")
    err(req(server, "GET", "/pushrules/", token="nope"), 401, "M_UNKNOWN_TOKEN")
    err(req(server, "GET", "/pushrules/device/", token=tok), 400, "M_UNRECOGNIZED")
    err(req(server, "GET", "/pushrules/global/nonsense/", token=tok), 400, "M_UNRECOGNIZED")
    err(req(server, "GET", "/pushrules/global/override/nothing", token=tok), 404, "M_NOT_FOUND")
    err(req(server, "GET", "/pushrules/global/underride/.m.rule.master", token=tok), 404,
        "M_NOT_FOUND")
    err(req(server, "GET", "/pushrules/global/override/nothing/enabled", token=tok), 404,
        "M_NOT_FOUND")
    err(req(server, "GET", "/pushrules/global/override/.m.rule.master/colour", token=tok), 400,
        "M_UNRECOGNIZED")


# ---- changing rules ----

def test_add_get_replace_delete(server, users):
    _, tok = users["push_bob"]
    body = {"pattern": "cake", "actions": ["notify", {"set_tweak": "sound", "value": "cakealarm.wav"}]}
    r = req(server, "PUT", "/pushrules/global/content/SSByZWFsbHkgbGlrZSBjYWtl", body, token=tok)
    assert r.status == 200 and r.json == {}
    rule = req(server, "GET", "/pushrules/global/content/SSByZWFsbHkgbGlrZSBjYWtl", token=tok).json
    assert rule == {"rule_id": "SSByZWFsbHkgbGlrZSBjYWtl", "pattern": "cake", "enabled": True,
                    "default": False, "actions": body["actions"]}
    # user rules come before the defaults of their kind
    assert ids(rules(server, tok), "content") == ["SSByZWFsbHkgbGlrZSBjYWtl",
                                                  ".m.rule.contains_user_name"]
    # replacing keeps it enabled state and place; legacy actions are kept as
    # set (Synapse; they do nothing when evaluated, v1.7)
    r = req(server, "PUT", "/pushrules/global/content/SSByZWFsbHkgbGlrZSBjYWtl/enabled",
            {"enabled": False}, token=tok)
    assert r.status == 200
    r = req(server, "PUT", "/pushrules/global/content/SSByZWFsbHkgbGlrZSBjYWtl",
            {"pattern": "pie", "actions": ["dont_notify"]}, token=tok)
    assert r.status == 200
    rule = req(server, "GET", "/pushrules/global/content/SSByZWFsbHkgbGlrZSBjYWtl", token=tok).json
    assert rule["pattern"] == "pie" and rule["actions"] == ["dont_notify"] and rule["enabled"] is False
    # room and sender rules, as in the spec's examples
    room = "!dj234r78wl45Gh4D:matrix.org"
    assert req(server, "PUT", f"/pushrules/global/room/{q(room)}", {"actions": []},
               token=tok).status == 200
    assert req(server, "PUT", f"/pushrules/global/sender/{q('@spambot:matrix.org')}",
               {"actions": []}, token=tok).status == 200
    g = rules(server, tok)
    assert g["room"] == [{"rule_id": room, "actions": [], "enabled": True, "default": False}]
    assert ids(g, "sender") == ["@spambot:matrix.org"]
    # an override rule without conditions matches everything (conditions [])
    assert req(server, "PUT", "/pushrules/global/override/all", {"actions": ["notify"]},
               token=tok).status == 200
    assert req(server, "GET", "/pushrules/global/override/all", token=tok).json["conditions"] == []
    # delete
    for path in ("/pushrules/global/content/SSByZWFsbHkgbGlrZSBjYWtl",
                 f"/pushrules/global/room/{q(room)}", "/pushrules/global/override/all",
                 f"/pushrules/global/sender/{q('@spambot:matrix.org')}"):
        r = req(server, "DELETE", path, token=tok)
        assert r.status == 200 and r.json == {}, path
        err(req(server, "GET", path, token=tok), 404, "M_NOT_FOUND")
        err(req(server, "DELETE", path, token=tok), 404, "M_NOT_FOUND")
    g = rules(server, tok)
    assert ids(g, "content") == [".m.rule.contains_user_name"] and g["room"] == []
    # other users never see them
    assert ids(rules(server, users["push_alice"][1]), "content") == [".m.rule.contains_user_name"]


def test_before_and_after(server, users):
    _, tok = users["push_carol"]
    cond = [{"kind": "event_match", "key": "type", "pattern": "m.room.message"}]

    def put(rid, **query):
        qs = ("?" + urllib.parse.urlencode(query)) if query else ""
        return req(server, "PUT", f"/pushrules/global/override/{rid}{qs}",
                   {"conditions": cond, "actions": []}, token=tok)

    def mine():
        return [x for x in ids(rules(server, tok), "override") if not x.startswith(".")]

    assert put("a").status == 200
    assert put("b").status == 200          # new rules go first
    assert mine() == ["b", "a"]
    assert put("c", before="a").status == 200
    assert mine() == ["b", "c", "a"]
    assert put("d", after="b").status == 200
    assert mine() == ["b", "d", "c", "a"]
    assert put("e", after="a").status == 200
    assert mine() == ["b", "d", "c", "a", "e"]
    # moving an existing rule
    assert put("e", before="b").status == 200
    assert mine() == ["e", "b", "d", "c", "a"]
    assert put("e", after="a").status == 200
    assert mine() == ["b", "d", "c", "a", "e"]
    # before wins over after
    assert put("c", before="b", after="a").status == 200
    assert mine() == ["c", "b", "d", "a", "e"]
    # replacing without before/after keeps the place
    assert put("d").status == 200
    assert mine() == ["c", "b", "d", "a", "e"]
    # the master rule still comes first; the defaults after the user's
    o = ids(rules(server, tok), "override")
    assert o[0] == ".m.rule.master" and o[1:6] == ["c", "b", "d", "a", "e"]
    # relative to nothing, to a default rule, to itself, or to another kind: 400
    for query in ({"before": "zz"}, {"after": ".m.rule.master"}, {"before": "f"}):
        r = put("f", **query)
        err(r, 400, "M_UNKNOWN")
        assert "before/after rule not found" in r.json["error"]
    r = req(server, "PUT", "/pushrules/global/underride/u?before=a",
            {"conditions": [], "actions": []}, token=tok)
    err(r, 400, "M_UNKNOWN")
    assert "f" not in mine() and "u" not in ids(rules(server, tok), "underride")
    for rid in mine():
        assert req(server, "DELETE", f"/pushrules/global/override/{rid}", token=tok).status == 200
    assert mine() == []


def test_put_errors(server, users):
    _, tok = users["push_carol"]
    ok = {"conditions": [], "actions": ["notify"]}
    # no token
    err(req(server, "PUT", "/pushrules/global/override/x", ok), 401, "M_MISSING_TOKEN")
    err(req(server, "PUT", "/pushrules/global/override/x", ok, token="bad"), 401, "M_UNKNOWN_TOKEN")
    # reserved and impossible rule IDs: a default rule's body can't be replaced
    for rid in (".m.rule.master", ".mine", q("a/b"), q("a\\b")):
        err(req(server, "PUT", f"/pushrules/global/override/{rid}", ok, token=tok), 400,
            "M_INVALID_PARAM")
    err(req(server, "PUT", "/pushrules/global/content/.m.rule.contains_user_name",
            {"pattern": "x", "actions": []}, token=tok), 400, "M_INVALID_PARAM")
    # scope and kind
    err(req(server, "PUT", "/pushrules/device/override/x", ok, token=tok), 400, "M_UNRECOGNIZED")
    err(req(server, "PUT", "/pushrules/global/postcontent/x", ok, token=tok), 400,
        "M_UNRECOGNIZED")
    # bodies
    err(req(server, "PUT", "/pushrules/global/content/x", {"actions": []}, token=tok), 400,
        "M_MISSING_PARAM")
    err(req(server, "PUT", "/pushrules/global/content/x", {"pattern": 5, "actions": []},
            token=tok), 400, "M_INVALID_PARAM")
    err(req(server, "PUT", "/pushrules/global/override/x", {"conditions": []}, token=tok), 400,
        "M_MISSING_PARAM")
    for actions in (["ring"], "notify", [{"value": 1}], [3]):
        err(req(server, "PUT", "/pushrules/global/override/x",
                {"conditions": [], "actions": actions}, token=tok), 400, "M_INVALID_PARAM")
    err(req(server, "PUT", "/pushrules/global/override/x", {"conditions": {}, "actions": []},
            token=tok), 400, "M_INVALID_PARAM")
    err(req(server, "PUT", "/pushrules/global/override/x",
            {"conditions": [{"key": "type"}], "actions": []}, token=tok), 400, "M_INVALID_PARAM")
    err(req(server, "PUT", "/pushrules/global/override/x",
            {"conditions": ["kind"], "actions": []}, token=tok), 400, "M_INVALID_PARAM")
    r = req(server, "PUT", "/pushrules/global/override/x", token=tok, raw=b"{not json")
    err(r, 400, "M_NOT_JSON")
    r = req(server, "PUT", "/pushrules/global/override/x", token=tok,
            raw=b'{"conditions": [{"kind": "event_match", "key": "a", "pattern": "x\\u0000"}],'
                b' "actions": []}')
    err(r, 400, "M_INVALID_PARAM")
    # nothing of that was stored
    g = rules(server, tok)
    assert "x" not in ids(g, "override") + ids(g, "content")
    # unknown condition kinds are accepted (they just never match)
    r = req(server, "PUT", "/pushrules/global/underride/future",
            {"conditions": [{"kind": "org.example.future"}], "actions": ["notify"]}, token=tok)
    assert r.status == 200
    assert req(server, "DELETE", "/pushrules/global/underride/future", token=tok).status == 200


def test_enabled_and_actions(server, users):
    _, tok = users["push_dave"]
    base = "/pushrules/global/underride/.m.rule.message"
    assert req(server, "PUT", base + "/enabled", {"enabled": False}, token=tok).json == {}
    assert req(server, "GET", base + "/enabled", token=tok).json == {"enabled": False}
    msg = [x for x in rules(server, tok)["underride"] if x["rule_id"] == ".m.rule.message"][0]
    assert msg["enabled"] is False and msg["default"] is True
    new = ["notify", {"set_tweak": "highlight", "value": False}, "coalesce"]
    assert req(server, "PUT", base + "/actions", {"actions": new}, token=tok).status == 200
    assert req(server, "GET", base + "/actions", token=tok).json == {"actions": new}
    # changing actions kept it disabled; enabling keeps the actions
    assert req(server, "PUT", base + "/enabled", {"enabled": True}, token=tok).status == 200
    msg = req(server, "GET", base, token=tok).json
    assert msg["enabled"] is True and msg["actions"] == new
    # the master rule: off switch for everything
    assert req(server, "PUT", "/pushrules/global/override/.m.rule.master/enabled",
               {"enabled": True}, token=tok).status == 200
    assert rules(server, tok)["override"][0]["enabled"] is True
    assert req(server, "PUT", "/pushrules/global/override/.m.rule.master/enabled",
               {"enabled": False}, token=tok).status == 200
    # a user rule
    assert req(server, "PUT", "/pushrules/global/sender/%40x%3Ay", {"actions": []},
               token=tok).status == 200
    assert req(server, "PUT", "/pushrules/global/sender/%40x%3Ay/enabled", {"enabled": False},
               token=tok).status == 200
    assert req(server, "PUT", "/pushrules/global/sender/%40x%3Ay/actions", {"actions": ["notify"]},
               token=tok).status == 200
    r = req(server, "GET", "/pushrules/global/sender/%40x%3Ay", token=tok).json
    assert r["enabled"] is False and r["actions"] == ["notify"]
    # errors
    for path in ("/pushrules/global/sender/%40nobody%3Ay", "/pushrules/global/override/.m.rule.nope",
                 "/pushrules/global/content/.m.rule.master"):
        err(req(server, "PUT", path + "/enabled", {"enabled": True}, token=tok), 404, "M_NOT_FOUND")
        err(req(server, "PUT", path + "/actions", {"actions": []}, token=tok), 404, "M_NOT_FOUND")
        err(req(server, "GET", path + "/actions", token=tok), 404, "M_NOT_FOUND")
    err(req(server, "PUT", base + "/enabled", {}, token=tok), 400, "M_MISSING_PARAM")
    err(req(server, "PUT", base + "/enabled", {"enabled": "no"}, token=tok), 400, "M_INVALID_PARAM")
    err(req(server, "PUT", base + "/actions", {}, token=tok), 400, "M_MISSING_PARAM")
    err(req(server, "PUT", base + "/actions", {"actions": ["ring"]}, token=tok), 400,
        "M_INVALID_PARAM")
    err(req(server, "PUT", base + "/colour", {"colour": 1}, token=tok), 400, "M_UNRECOGNIZED")
    err(req(server, "PUT", base + "/enabled", {"enabled": True}), 401, "M_MISSING_TOKEN")
    # server-default rules cannot be deleted
    err(req(server, "DELETE", base, token=tok), 404, "M_NOT_FOUND")
    assert req(server, "GET", base, token=tok).status == 200


def test_changes_move_the_account_data_stream(server, users):
    uid, tok = users["push_dave"]

    def pos():
        return int(server.psql(
            f"SELECT coalesce(max(stream_id), 0) FROM push_rules_stream WHERE user_id = '{uid}'"))

    path = "/pushrules/global/underride/.m.rule.call/enabled"
    assert req(server, "PUT", path, {"enabled": False}, token=tok).status == 200
    before = pos()
    assert before > 0
    assert req(server, "PUT", path, {"enabled": True}, token=tok).status == 200
    after = pos()
    assert after > before
    # a refused change moves nothing
    err(req(server, "PUT", "/pushrules/global/override/.x", {"actions": []}, token=tok), 400,
        "M_INVALID_PARAM")
    err(req(server, "PUT", "/pushrules/global/override/y?before=nothing", {"actions": []},
            token=tok), 400, "M_UNKNOWN")
    assert pos() == after


# ---- pushers ----

def http_pusher(pushkey="key1", app_id="org.example.app", **over):
    p = {"kind": "http", "app_id": app_id, "pushkey": pushkey, "app_display_name": "Example",
         "device_display_name": "Phone", "profile_tag": "xyz", "lang": "en-US",
         "data": {"url": "https://push.example.org/_matrix/push/v1/notify",
                  "format": "event_id_only", "custom": {"a": 1}}}
    p.update(over)
    return p


def pushers(server, tok):
    r = req(server, "GET", "/pushers", token=tok)
    assert r.status == 200, r
    return r.json["pushers"]


def test_pushers_set_list_delete(server, users):
    _, tok = users["push_alice"]
    assert pushers(server, tok) == []
    r = req(server, "POST", "/pushers/set", http_pusher(), token=tok)
    assert r.status == 200 and r.json == {}
    p = http_pusher()
    assert pushers(server, tok) == [{k: p[k] for k in ("pushkey", "kind", "app_id", "app_display_name",
                                                        "device_display_name", "profile_tag", "lang",
                                                        "data")}]
    # the same app_id + pushkey is updated, not added
    assert req(server, "POST", "/pushers/set", http_pusher(device_display_name="Tablet", lang="fr"),
               token=tok).status == 200
    ps = pushers(server, tok)
    assert len(ps) == 1 and ps[0]["device_display_name"] == "Tablet" and ps[0]["lang"] == "fr"
    assert req(server, "POST", "/pushers/set", http_pusher("key2"), token=tok).status == 200
    assert sorted(x["pushkey"] for x in pushers(server, tok)) == ["key1", "key2"]
    # profile_tag is optional; r0 works
    body = http_pusher("key3")
    del body["profile_tag"]
    assert server.request("POST", R0 + "/pushers/set", body, token=tok).status == 200
    assert [x["profile_tag"] for x in pushers(server, tok) if x["pushkey"] == "key3"] == [""]
    # kind null deletes (only app_id and pushkey needed); deleting again is fine
    for key in ("key2", "key3", "key3"):
        r = req(server, "POST", "/pushers/set",
                {"kind": None, "app_id": "org.example.app", "pushkey": key}, token=tok)
        assert r.status == 200
    assert [x["pushkey"] for x in pushers(server, tok)] == ["key1"]


def test_pushers_append(server, users):
    _, a = users["push_bob"]
    _, b = users["push_carol"]
    shared = http_pusher("shared-key", app_id="org.example.shared")
    assert req(server, "POST", "/pushers/set", shared, token=a).status == 200
    # without append, the pushkey moves to the new user
    assert req(server, "POST", "/pushers/set", shared, token=b).status == 200
    assert pushers(server, a) == [] and len(pushers(server, b)) == 1
    # with append, both keep it
    assert req(server, "POST", "/pushers/set", dict(shared, append=True), token=a).status == 200
    assert len(pushers(server, a)) == 1 and len(pushers(server, b)) == 1
    err(req(server, "POST", "/pushers/set", dict(shared, append="yes"), token=a), 400,
        "M_INVALID_PARAM")
    for t in (a, b):
        req(server, "POST", "/pushers/set",
            {"kind": None, "app_id": "org.example.shared", "pushkey": "shared-key"}, token=t)


def test_pushers_errors(server, users):
    _, tok = users["push_dave"]
    err(req(server, "GET", "/pushers"), 401, "M_MISSING_TOKEN")
    err(req(server, "POST", "/pushers/set", http_pusher(), token="bad"), 401, "M_UNKNOWN_TOKEN")
    r = req(server, "POST", "/pushers/set", {"kind": "http", "app_id": "a", "pushkey": "k"},
            token=tok)
    err(r, 400, "M_MISSING_PARAM")
    for name in ("app_display_name", "device_display_name", "lang", "data"):
        assert name in r.json["error"]
    err(req(server, "POST", "/pushers/set", {}, token=tok), 400, "M_MISSING_PARAM")
    err(req(server, "POST", "/pushers/set", {"kind": None, "app_id": "a"}, token=tok), 400,
        "M_MISSING_PARAM")
    bad = [
        ("M_MISSING_PARAM", http_pusher(data={"format": "event_id_only"})),
        ("M_INVALID_PARAM", http_pusher(data={"url": "https://push.example.org/notify"})),
        ("M_INVALID_PARAM", http_pusher(data={"url": "https://push.example.org/_matrix/push/v1/notify/x"})),
        ("M_INVALID_PARAM", http_pusher(data={"url": "ftp://push.example.org/_matrix/push/v1/notify"})),
        ("M_INVALID_PARAM", http_pusher(data={"url": 5})),
        ("M_INVALID_PARAM", http_pusher(data="https://x/_matrix/push/v1/notify")),
        ("M_INVALID_PARAM", http_pusher(kind="carrier-pigeon")),
        ("M_INVALID_PARAM", http_pusher(kind=5)),
        ("M_INVALID_PARAM", http_pusher(pushkey="k" * 513)),
        ("M_INVALID_PARAM", http_pusher(app_id="a" * 65)),
        ("M_INVALID_PARAM", http_pusher(app_id="")),
        ("M_INVALID_PARAM", http_pusher(lang=5)),
        # email pushers need an address bound to the account; none can be here
        ("M_THREEPID_NOT_FOUND", http_pusher(kind="email", app_id="m.email",
                                             pushkey="dave@example.org")),
        ("M_INVALID_PARAM", http_pusher(kind="email", app_id="org.example",
                                        pushkey="dave@example.org")),
    ]
    for code, body in bad:
        err(req(server, "POST", "/pushers/set", body, token=tok), 400, code)
    err(req(server, "POST", "/pushers/set", token=tok, raw=b"[1]"), 400, "M_BAD_JSON")
    assert pushers(server, tok) == []
    # 512 bytes and 64 characters are fine; a query string on the URL is fine
    ok = http_pusher(pushkey="k" * 512, app_id="é" * 64,
                     data={"url": "http://localhost:5000/_matrix/push/v1/notify?x=1"})
    assert req(server, "POST", "/pushers/set", ok, token=tok).status == 200
    assert len(pushers(server, tok)) == 1
    req(server, "POST", "/pushers/set", {"kind": None, "app_id": "é" * 64, "pushkey": "k" * 512},
        token=tok)
    assert pushers(server, tok) == []


def test_pushers_go_with_their_device(server, users):
    tok = server.login("push_dave", device_id="PUSHPHONE")
    assert req(server, "POST", "/pushers/set", http_pusher("phone"), token=tok).status == 200
    other = users["push_dave"][1]
    assert [x["pushkey"] for x in pushers(server, other)] == ["phone"]
    assert req(server, "POST", "/logout", {}, token=tok).status == 200
    assert pushers(server, other) == []


# ---- notifications ----

def create_room(server, tok, **body):
    r = req(server, "POST", "/createRoom", body, token=tok)
    assert r.status == 200, r
    return r.json["room_id"]


def send(server, tok, room, content, typ="m.room.message", txn=[0]):
    txn[0] += 1
    r = req(server, "PUT", f"/rooms/{q(room)}/send/{typ}/push{txn[0]}", content, token=tok)
    assert r.status == 200, r
    return r.json["event_id"]


def notifications(server, tok, **query):
    qs = ("?" + urllib.parse.urlencode(query)) if query else ""
    r = req(server, "GET", "/notifications" + qs, token=tok)
    assert r.status == 200, r
    return r.json


def test_notifications(server, users):
    a_id, a = users["push_alice"]
    b_id, b = users["push_bob"]
    room = create_room(server, a, preset="private_chat", invite=[b_id])
    assert req(server, "POST", f"/rooms/{q(room)}/join", {}, token=b).status == 200
    m1 = send(server, a, room, {"msgtype": "m.text", "body": "hello bob"})
    m2 = send(server, a, room, {"msgtype": "m.text", "body": "look", "m.mentions": {"user_ids": [b_id]}})
    send(server, a, room, {"msgtype": "m.notice", "body": "a bot says"})
    m4 = send(server, a, room, {"msgtype": "m.text", "body": "third"})
    n = notifications(server, b)["notifications"]
    mine = [x for x in n if x["room_id"] == room]
    # createRoom's invite notified bob first (.m.rule.invite_for_me)
    assert mine[-1]["event"]["type"] == "m.room.member" and "notify" in mine[-1]["actions"]
    mine = [x for x in mine if x["event"]["type"] == "m.room.message"]
    assert [x["event"]["event_id"] for x in mine] == [m4, m2, m1]  # newest first, no notice
    first = mine[2]
    assert first["read"] is False and first["actions"] == ["notify", {"set_tweak": "sound",
                                                                       "value": "default"}]
    assert first["event"]["content"] == {"msgtype": "m.text", "body": "hello bob"}
    assert first["event"]["sender"] == a_id and "room_id" not in first["event"]
    assert isinstance(first["ts"], int) and first["ts"] > 0
    assert "profile_tag" in first and first["profile_tag"] is None  # as Synapse (SyTest reads it)
    assert mine[1]["actions"][-1] == {"set_tweak": "highlight"}
    # only=highlight
    hl = [x["event"]["event_id"] for x in notifications(server, b, only="highlight")["notifications"]]
    assert hl == [m2]
    # the sender is never notified of their own messages
    assert all(x["room_id"] != room or x["event"]["sender"] != a_id
               for x in notifications(server, a)["notifications"])
    # paging
    p1 = notifications(server, b, limit=2)
    assert [x["event"]["event_id"] for x in p1["notifications"]] == [m4, m2]
    p2 = notifications(server, b, limit=2, **{"from": p1["next_token"]})
    assert [x["event"]["event_id"] for x in p2["notifications"]][:1] == [m1]
    everything = notifications(server, b, limit=1000)
    assert "next_token" not in everything
    err(req(server, "GET", "/notifications?from=abc", token=b), 400, "M_INVALID_PARAM")
    err(req(server, "GET", "/notifications?limit=x", token=b), 400, "M_INVALID_PARAM")
    err(req(server, "GET", "/notifications"), 401, "M_MISSING_TOKEN")
    # bob's invite notified him too (.m.rule.invite_for_me) when it came by /invite
    c_id, c = users["push_carol"]
    assert req(server, "POST", f"/rooms/{q(room)}/invite", {"user_id": c_id}, token=a).status == 200
    inv = notifications(server, c)["notifications"][0]
    assert inv["room_id"] == room and inv["event"]["type"] == "m.room.member"
    assert inv["event"]["state_key"] == c_id and "notify" in inv["actions"]


def read_flags(server, tok, room):
    return {x["event"]["event_id"]: x["read"]
            for x in notifications(server, tok)["notifications"]
            if x["room_id"] == room and x["event"]["type"] == "m.room.message"}


def put_receipt(server, room, user, event_id, rtype="m.read", thread=""):
    server.psql(
        "INSERT INTO receipts (room_id, receipt_type, user_id, thread_id, event_id, data, stream_id)"
        f" VALUES ('{room}', '{rtype}', '{user}', '{thread}', '{event_id}', '{{}}',"
        " nextval('receipts_stream_seq')) ON CONFLICT (room_id, receipt_type, user_id, thread_id)"
        " DO UPDATE SET event_id = EXCLUDED.event_id")


def test_read_state_from_receipts_and_own_messages(server, users):
    a_id, a = users["push_carol"]
    b_id, b = users["push_dave"]
    room = create_room(server, a, preset="private_chat", invite=[b_id])
    assert req(server, "POST", f"/rooms/{q(room)}/join", {}, token=b).status == 200
    e1 = send(server, a, room, {"msgtype": "m.text", "body": "one"})
    e2 = send(server, a, room, {"msgtype": "m.text", "body": "two"})
    root = send(server, a, room, {"msgtype": "m.text", "body": "root"})
    t1 = send(server, a, room, {"msgtype": "m.text", "body": "in thread",
                                "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    # a reaction to a thread message belongs to the thread (but reactions never notify);
    # an edit of a thread message likewise — check the stored thread of a message that
    # relates to the thread message by reference
    ref = send(server, a, room, {"msgtype": "m.text", "body": "see above",
                                 "m.relates_to": {"rel_type": "m.reference", "event_id": t1}})
    threads = dict(line.split("|") for line in server.psql(
        f"SELECT event_id, thread_id FROM event_push_actions WHERE user_id = '{b_id}'"
        f" AND room_id = '{room}' AND event_id IN (SELECT event_id FROM events"
        f" WHERE type = 'm.room.message')").splitlines())
    assert threads == {e1: "main", e2: "main", root: "main", t1: root, ref: root}
    assert not any(read_flags(server, b, room).values())
    # m.read.private on e1, m.read on e2: the later one counts
    put_receipt(server, room, b_id, e1, "m.read.private")
    assert read_flags(server, b, room) == {e1: True, e2: False, root: False, t1: False, ref: False}
    put_receipt(server, room, b_id, e2, "m.read")
    assert read_flags(server, b, room) == {e1: True, e2: True, root: False, t1: False, ref: False}
    # a threaded receipt on the thread reads the thread only
    put_receipt(server, room, b_id, ref, "m.read", thread=root)
    assert read_flags(server, b, room) == {e1: True, e2: True, root: False, t1: True, ref: True}
    # bob sending a message in the main timeline reads it up to there
    send(server, b, room, {"msgtype": "m.text", "body": "hi"})
    assert all(read_flags(server, b, room).values())
    # an unthreaded receipt covers every thread
    e3 = send(server, a, room, {"msgtype": "m.text", "body": "later"})
    t2 = send(server, a, room, {"msgtype": "m.text", "body": "thread later",
                                "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    flags = read_flags(server, b, room)
    assert flags[e3] is False and flags[t2] is False
    put_receipt(server, room, b_id, t2, "m.read")
    flags = read_flags(server, b, room)
    assert flags[e3] is True and flags[t2] is True


def test_rules_change_what_notifies(server, users):
    a_id, a = users["push_bob"]
    b_id, b = users["push_alice"]
    room = create_room(server, a, preset="private_chat", invite=[b_id])
    assert req(server, "POST", f"/rooms/{q(room)}/join", {}, token=b).status == 200
    # mute the room
    assert req(server, "PUT", f"/pushrules/global/room/{q(room)}", {"actions": []},
               token=b).status == 200
    muted = send(server, a, room, {"msgtype": "m.text", "body": "muted"})
    # a keyword that highlights beats the room rule (content comes first)
    assert req(server, "PUT", "/pushrules/global/content/kw",
               {"pattern": "urgent", "actions": ["notify", {"set_tweak": "highlight"}]},
               token=b).status == 200
    urgent = send(server, a, room, {"msgtype": "m.text", "body": "this is URGENT!"})
    assert req(server, "DELETE", f"/pushrules/global/room/{q(room)}", token=b).status == 200
    # the display name rule (no m.mentions) and the user name rule
    named = send(server, a, room, {"msgtype": "m.text", "body": "push_alice: look"})
    # the master rule silences everything
    assert req(server, "PUT", "/pushrules/global/override/.m.rule.master/enabled",
               {"enabled": True}, token=b).status == 200
    silent = send(server, a, room, {"msgtype": "m.text", "body": "urgent push_alice"})
    assert req(server, "PUT", "/pushrules/global/override/.m.rule.master/enabled",
               {"enabled": False}, token=b).status == 200
    # an edit is not a notification
    edit = send(server, a, room, {"msgtype": "m.text", "body": "* fixed", "m.new_content": {
        "msgtype": "m.text", "body": "fixed"}, "m.relates_to": {"rel_type": "m.replace",
                                                                  "event_id": named}})
    got = {x["event"]["event_id"]: x for x in notifications(server, b)["notifications"]
           if x["room_id"] == room}
    assert muted not in got and silent not in got and edit not in got
    assert got[urgent]["actions"] == ["notify", {"set_tweak": "highlight"}]
    assert {"set_tweak": "highlight"} in got[named]["actions"]
    req(server, "DELETE", "/pushrules/global/content/kw", token=b)


def test_room_mentions_need_power(server, users):
    a_id, a = users["push_alice"]
    b_id, b = users["push_dave"]
    c_id, c = users["push_carol"]
    room = create_room(server, a, preset="private_chat", invite=[b_id, c_id])
    for t in (b, c):
        assert req(server, "POST", f"/rooms/{q(room)}/join", {}, token=t).status == 200
    # the creator may notify the room (power 100 >= notifications.room 50) ...
    by_a = send(server, a, room, {"msgtype": "m.text", "body": "all: lunch",
                                  "m.mentions": {"room": True}})
    legacy = send(server, a, room, {"msgtype": "m.text", "body": "@room lunch"})
    # ... a member with power 0 may not: a plain message for the others
    by_b = send(server, b, room, {"msgtype": "m.text", "body": "all: lunch?",
                                  "m.mentions": {"room": True}})
    got = {x["event"]["event_id"]: x["actions"] for x in notifications(server, c)["notifications"]
           if x["room_id"] == room}
    assert {"set_tweak": "highlight"} in got[by_a] and {"set_tweak": "highlight"} in got[legacy]
    assert got[by_b] == ["notify"]
    # the room's power levels decide: let everyone notify the room
    pl = req(server, "GET", f"/rooms/{q(room)}/state/m.room.power_levels/", token=a).json
    pl["notifications"] = {"room": 0}
    assert req(server, "PUT", f"/rooms/{q(room)}/state/m.room.power_levels/", pl,
               token=a).status == 200
    by_b2 = send(server, b, room, {"msgtype": "m.text", "body": "all: now?",
                                   "m.mentions": {"room": True}})
    got = {x["event"]["event_id"]: x["actions"] for x in notifications(server, c)["notifications"]
           if x["room_id"] == room}
    assert {"set_tweak": "highlight"} in got[by_b2]


def test_ignored_users_do_not_notify(server, users):
    a_id, a = users["push_dave"]
    b_id, b = users["push_carol"]
    room = create_room(server, a, preset="private_chat", invite=[b_id])
    assert req(server, "POST", f"/rooms/{q(room)}/join", {}, token=b).status == 200
    heard = send(server, a, room, {"msgtype": "m.text", "body": "before"})
    r = req(server, "PUT", f"/user/{q(b_id)}/account_data/m.ignored_user_list",
            {"ignored_users": {a_id: {}}}, token=b)
    assert r.status == 200, r
    ignored = send(server, a, room, {"msgtype": "m.text", "body": "after"})
    got = [x["event"]["event_id"] for x in notifications(server, b)["notifications"]
           if x["room_id"] == room]
    assert heard in got and ignored not in got
    assert req(server, "PUT", f"/user/{q(b_id)}/account_data/m.ignored_user_list",
               {"ignored_users": {}}, token=b).status == 200
    again = send(server, a, room, {"msgtype": "m.text", "body": "again"})
    assert again in [x["event"]["event_id"] for x in notifications(server, b)["notifications"]]


def test_sync_reports_unread_counts(server, users):
    """unread_notifications in /sync, once /sync carries them."""
    a_id, a = users["push_carol"]
    b_id, b = users["push_bob"]
    room = create_room(server, a, preset="private_chat", invite=[b_id])
    assert req(server, "POST", f"/rooms/{q(room)}/join", {}, token=b).status == 200
    send(server, a, room, {"msgtype": "m.text", "body": "one"})
    send(server, a, room, {"msgtype": "m.text", "body": "two", "m.mentions": {"user_ids": [b_id]}})
    r = req(server, "GET", "/sync?timeout=0", token=b)
    assert r.status == 200
    joined = r.json["rooms"]["join"][room]
    assert joined["unread_notifications"] == {"notification_count": 2, "highlight_count": 1}
