"""Channels (issue 7): the four kinds — private or public, encrypted or not —
as Element creates them and as `pvyhs channel create` creates them, with the
same state; encryption on by default for private channels
(encryption_enabled_by_default_for_room_type: invite) and the other values;
forbid_unencrypted_private_rooms; encryption that a local client can never
turn off, change or redact; messages in an encrypted channel stored only as
ciphertext; invite blocking (spec v1.18, MSC4380)."""
import json
import os
import subprocess
import urllib.parse

import pytest

from harness import Server

MEGOLM = "m.megolm.v1.aes-sha2"
JS_DIR = os.path.join(os.path.dirname(__file__), "js")
NODE = os.path.join(JS_DIR, "node_modules", ".bin", "node")


def q(s):
    return urllib.parse.quote(s, safe="")


@pytest.fixture(scope="module")
def server():
    """pvyhs with its own defaults (the shared server has encryption off for
    clients without end-to-end encryption): new private rooms encrypted."""
    with Server(encryption_default=None) as s:
        s.start()
        yield s
        assert s.stop() == 0, s.read_log()[-3000:]
        log = s.read_log()
        assert "Sanitizer" not in log and "runtime error:" not in log, log


def login_user(server, name):
    user_id = server.add_user(name)
    return user_id, server.login(name)


def create(server, token, body):
    r = server.request("POST", "/_matrix/client/v3/createRoom", body, token=token)
    assert r.status == 200, r
    return r.json["room_id"]


def state(server, token, room_id):
    r = server.request("GET", f"/_matrix/client/v3/rooms/{q(room_id)}/state", token=token)
    assert r.status == 200, r
    return {(e["type"], e["state_key"]): e["content"] for e in r.json}


def put_state(server, token, room_id, etype, content, state_key=""):
    return server.request("PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/state/{etype}/{q(state_key)}",
                          content, token=token)


def visibility(server, room_id):
    r = server.request("GET", f"/_matrix/client/v3/directory/list/room/{q(room_id)}")
    assert r.status == 200, r
    return r.json["visibility"]


# Element's create dialog (createRoom.ts / CreateRoomDialog.tsx): private rooms
# use private_chat with guest access and, when encrypted, m.room.encryption in
# initial_state; public rooms use public_chat, visibility public and an alias,
# and get encryption later from the room settings (a state event).
def element_private(name, encrypted):
    init = [{"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "can_join"}}]
    if encrypted:
        init.append({"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}})
    return {"preset": "private_chat", "visibility": "private", "name": name, "initial_state": init}


def element_public(name, alias):
    return {"preset": "public_chat", "visibility": "public", "name": name,
            "room_alias_name": alias, "initial_state": []}


def kind_of(st):
    """The four kinds as pvyhs names them, from a room's state."""
    rule = st[("m.room.join_rules", "")]["join_rule"]
    enc = st.get(("m.room.encryption", ""), {}).get("algorithm")
    return ("public" if rule == "public" else "private", enc)


def summary_of(st):
    """The state that makes a kind, for comparing two rooms."""
    pl = dict(st[("m.room.power_levels", "")])
    pl.pop("users", None)
    return {
        "join_rule": st[("m.room.join_rules", "")],
        "history": st[("m.room.history_visibility", "")],
        "guest": st.get(("m.room.guest_access", "")),
        "encryption": st.get(("m.room.encryption", "")),
        "power_levels": pl,
    }


def test_versions_tell_element_which_presets_are_encrypted(server):
    r = server.request("GET", "/_matrix/client/versions")
    u = r.json["unstable_features"]
    assert u["io.element.e2ee_forced.private"] is True
    assert u["io.element.e2ee_forced.trusted_private"] is True
    assert u["io.element.e2ee_forced.public"] is False
    assert u["org.matrix.msc3266"] is True


def test_four_kinds_as_element_makes_them(server):
    alice, tok = login_user(server, "ch_alice")
    priv_enc = create(server, tok, element_private("ch family", True))
    # Element asks for no encryption, but the server forces it for private_chat
    # (e2ee_forced.private): the room is encrypted anyway.
    priv_forced = create(server, tok, element_private("ch forced", False))
    pub = create(server, tok, element_public("ch town square", "ch-town-square"))
    pub_enc = create(server, tok, element_public("ch town secrets", "ch-town-secrets"))
    assert put_state(server, tok, pub_enc, "m.room.encryption", {"algorithm": MEGOLM}).status == 200

    st = state(server, tok, priv_enc)
    assert kind_of(st) == ("private", MEGOLM)
    assert st[("m.room.join_rules", "")] == {"join_rule": "invite"}
    assert st[("m.room.history_visibility", "")] == {"history_visibility": "shared"}
    assert st[("m.room.guest_access", "")] == {"guest_access": "can_join"}
    assert st[("m.room.name", "")] == {"name": "ch family"}
    assert st[("m.room.power_levels", "")]["invite"] == 0
    assert kind_of(state(server, tok, priv_forced)) == ("private", MEGOLM)

    st = state(server, tok, pub)
    assert kind_of(st) == ("public", None)
    assert ("m.room.guest_access", "") not in st
    assert st[("m.room.canonical_alias", "")]["alias"] == f"#ch-town-square:{server.server_name}"
    assert st[("m.room.power_levels", "")]["invite"] == 50
    assert kind_of(state(server, tok, pub_enc)) == ("public", MEGOLM)

    assert visibility(server, pub) == "public" and visibility(server, pub_enc) == "public"
    assert visibility(server, priv_enc) == "private"
    # The encrypted public channel shows its encryption in the room summary.
    r = server.request("GET", f"/_matrix/client/v1/room_summary/{q('#ch-town-secrets:' + server.server_name)}",
                       token=tok)
    assert r.status == 200 and r.json["encryption"] == MEGOLM and r.json["join_rule"] == "public"
    r = server.request("GET", f"/_matrix/client/v1/room_summary/{q(pub)}", token=tok)
    assert r.status == 200 and "encryption" not in r.json


def test_default_encryption_event_sits_where_synapse_puts_it(server):
    alice, tok = login_user(server, "ch_order")
    bob = server.add_user("ch_order_bob")
    room = create(server, tok, {"preset": "private_chat", "name": "n", "topic": "t", "invite": [bob],
                                "initial_state": [{"type": "m.room.avatar", "state_key": "",
                                                   "content": {"url": "mxc://x/y"}}]})
    types = server.psql(f"SELECT type FROM events WHERE room_id = '{room}' ORDER BY stream_ordering").split()
    # ... initial_state, then the encryption event, then name, topic, invites.
    i = types.index("m.room.encryption")
    assert types[i - 1] == "m.room.avatar" and types[i + 1:] == ["m.room.name", "m.room.topic",
                                                                  "m.room.member"], types
    # A client's own m.room.encryption is kept, not doubled.
    room = create(server, tok, element_private("x", True))
    n = server.psql(f"SELECT count(*) FROM events WHERE room_id = '{room}' AND type = 'm.room.encryption'")
    assert n == "1"
    # trusted_private_chat (DMs) is encrypted too; public_chat is not.
    room = create(server, tok, {"preset": "trusted_private_chat", "invite": [bob], "is_direct": True})
    assert kind_of(state(server, tok, room))[1] == MEGOLM
    room = create(server, tok, {"preset": "public_chat"})
    assert kind_of(state(server, tok, room)) == ("public", None)


def test_encryption_cannot_be_turned_off_changed_or_redacted(server):
    alice, tok = login_user(server, "ch_keep")
    bob, btok = login_user(server, "ch_keep_bob")
    room = create(server, tok, element_private("keep", True))
    enc_id = server.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.encryption/?format=event",
                            token=tok).json["event_id"]
    for content in ({}, {"algorithm": "m.olm.v1.curve25519-aes-sha2"}, {"algorithm": None},
                    {"algorithm": ""}):
        r = put_state(server, tok, room, "m.room.encryption", content)
        assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", (content, r)
    r = server.request("PUT", f"/_matrix/client/v3/rooms/{q(room)}/redact/{q(enc_id)}/t1", {}, token=tok)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
    # The same algorithm with other settings is not turning it off.
    r = put_state(server, tok, room, "m.room.encryption", {"algorithm": MEGOLM, "rotation_period_ms": 3600000})
    assert r.status == 200, r
    st = state(server, tok, room)
    assert st[("m.room.encryption", "")] == {"algorithm": MEGOLM, "rotation_period_ms": 3600000}
    # Someone outside the room hears only the auth rules' refusal.
    r = put_state(server, btok, room, "m.room.encryption", {})
    assert r.status == 403 and "encrypted" not in r.json["error"], r
    # Other redactions and state still work.
    r = server.request("PUT", f"/_matrix/client/v3/rooms/{q(room)}/send/m.room.message/t2",
                       {"msgtype": "m.text", "body": "x"}, token=tok)
    r = server.request("PUT", f"/_matrix/client/v3/rooms/{q(room)}/redact/{q(r.json['event_id'])}/t3", {},
                       token=tok)
    assert r.status == 200, r
    # An unencrypted room can be encrypted, and then stays so.
    pub = create(server, tok, {"preset": "public_chat"})
    assert put_state(server, tok, pub, "m.room.encryption", {"algorithm": MEGOLM}).status == 200
    assert put_state(server, tok, pub, "m.room.encryption", {}).status == 403


def test_encrypted_message_is_stored_only_as_ciphertext(server):
    alice, tok = login_user(server, "ch_cipher")
    room = create(server, tok, element_private("cipher", True))
    marker = "pvyhs-plaintext-marker-7d1c"
    # What a client sends in an encrypted room: m.room.encrypted with a Megolm
    # ciphertext (the plaintext never leaves the client).
    ciphertext = "AwgAEnACp6Lr5bBc3dUq" + "Qk9" * 40
    content = {"algorithm": MEGOLM, "sender_key": "Zb/N+2yYcqMQ5uTE0THFWbnY3X8F2mTFr5aI5pGQ1Sc",
               "ciphertext": ciphertext, "session_id": "X3lUlvLELLYxeTx4yOVu6UDpasGEVO0Jbu+QFnm0cKQ",
               "device_id": "ALICEDEV"}
    r = server.request("PUT", f"/_matrix/client/v3/rooms/{q(room)}/send/m.room.encrypted/c1", content,
                       token=tok)
    assert r.status == 200, r
    eid = r.json["event_id"]
    stored = server.psql(f"SELECT convert_from(json, 'UTF8') FROM events WHERE event_id = '{eid}'")
    ev = json.loads(stored)
    assert ev["type"] == "m.room.encrypted" and ev["content"]["ciphertext"] == ciphertext
    assert marker not in server.psql("SELECT string_agg(convert_from(json, 'UTF8'), '') FROM events")


def test_js_sdk_four_kinds_and_real_ciphertext(server):
    """matrix-js-sdk with its Rust crypto creates the four kinds as Element
    does and sends a real Megolm message; the database holds only ciphertext."""
    server.add_user("ch_js_alice")
    server.add_user("ch_js_bob")
    marker = "pvyhs-js-plaintext-4af9e1"
    env = dict(os.environ, PVYHS_BASE=server.base, PVYHS_ALICE="ch_js_alice", PVYHS_BOB="ch_js_bob",
               PVYHS_MARKER=marker, PVYHS_SERVER=server.server_name)
    p = subprocess.run([NODE, "channels.mjs"], cwd=JS_DIR, env=env, capture_output=True, text=True,
                       timeout=300)
    steps = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert p.returncode == 0, f"steps {steps}\n{p.stderr[-6000:]}"
    rooms = {s["kind"]: s for s in steps if "kind" in s}
    assert rooms["private-encrypted"]["encryption"] == MEGOLM
    assert rooms["private-unencrypted-asked"]["encryption"] == MEGOLM  # forced by the server
    assert rooms["public"]["encryption"] is None and rooms["public"]["join_rule"] == "public"
    assert rooms["public-encrypted"]["encryption"] == MEGOLM
    sent = [s for s in steps if s.get("step") == "sent"][0]
    assert [s for s in steps if s.get("step") == "decrypted"][0]["body"] == marker
    row = json.loads(server.psql(f"SELECT convert_from(json, 'UTF8') FROM events WHERE event_id = '{sent['event_id']}'"))
    assert row["type"] == "m.room.encrypted" and row["content"]["algorithm"] == MEGOLM
    assert marker not in server.psql("SELECT string_agg(convert_from(json, 'UTF8'), '') FROM events")


def cli(server, *args):
    return server.cli("channel", args[0], "--config", server.config, *args[1:])


def test_cli_makes_the_four_kinds_like_element(server):
    alice, tok = login_user(server, "ch_cli")
    made = {}
    for kind, flag in (("private", "--encrypted"), ("private", "--unencrypted"),
                       ("public", "--unencrypted"), ("public", "--encrypted")):
        name = f"ch cli {kind} {flag[2:]}"
        r = cli(server, "create", name, "--kind", kind, flag, "--as", "ch_cli", "--topic", "hello")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.split()
        made[(kind, flag)] = lines[0]
        if kind == "public":
            assert lines[1] == f"#ch-cli-{kind}-{flag[2:]}:{server.server_name}"
    api = {
        ("private", "--encrypted"): create(server, tok, element_private("a", True)),
        ("public", "--unencrypted"): create(server, tok, element_public("b", "ch-cli-api-b")),
    }
    for key, room in made.items():
        st = state(server, tok, room)
        enc = MEGOLM if key[1] == "--encrypted" else None
        assert kind_of(st) == (key[0], enc), (key, st)
        assert st[("m.room.topic", "")]["topic"] == "hello"
        assert st[("m.room.member", alice)]["membership"] == "join"
        assert visibility(server, room) == ("public" if key[0] == "public" else "private")
    # Same state as Element's rooms of the same kind.
    assert summary_of(state(server, tok, made[("private", "--encrypted")])) == \
        summary_of(state(server, tok, api[("private", "--encrypted")]))
    assert summary_of(state(server, tok, made[("public", "--unencrypted")])) == \
        summary_of(state(server, tok, api[("public", "--unencrypted")]))
    # The unencrypted private channel is Element's private room, minus encryption.
    a = summary_of(state(server, tok, made[("private", "--unencrypted")]))
    b = summary_of(state(server, tok, api[("private", "--encrypted")]))
    assert a["encryption"] is None and {**a, "encryption": None} == {**b, "encryption": None}


def test_cli_errors(server):
    server.add_user("ch_cli_admin", admin=True)
    assert cli(server, "create", "x").returncode == 2                       # no --kind
    assert cli(server, "create", "x", "--kind", "secret").returncode == 2
    assert cli(server, "create", "x", "--kind", "public", "--encrypted", "--unencrypted").returncode == 2
    assert cli(server, "requests").returncode == 2
    assert server.cli("channel", "frobnicate", "--config", server.config).returncode == 2
    r = cli(server, "create", "x", "--kind", "private", "--as", "@nobody:elsewhere.example")
    assert r.returncode != 0
    # Without --as the oldest server admin creates it.
    r = cli(server, "create", "ch admin made", "--kind", "private")
    assert r.returncode == 0, r.stderr
    room = r.stdout.split()[0]
    creator = server.psql(f"SELECT sender FROM events WHERE room_id = '{room}' AND type = 'm.room.create'")
    assert creator == server.psql("SELECT user_id FROM users WHERE admin ORDER BY created_ts, user_id LIMIT 1")
    # A taken alias is refused.
    r = cli(server, "create", "ch admin made", "--kind", "public")
    assert r.returncode == 0, r.stderr
    r = cli(server, "create", "ch admin made", "--kind", "public")
    assert r.returncode == 1 and "M_ROOM_IN_USE" in r.stderr
    assert cli(server, "requests", "#no-such-channel:" + server.server_name).returncode == 2


def test_invite_blocking(server):
    alice, tok = login_user(server, "ch_inv_alice")
    bob, btok = login_user(server, "ch_inv_bob")
    room = create(server, tok, {"preset": "private_chat"})
    early = create(server, tok, {"preset": "private_chat", "invite": [bob]})
    r = server.request("PUT", f"/_matrix/client/v3/user/{q(bob)}/account_data/m.invite_permission_config",
                       {"default_action": "block"}, token=btok)
    assert r.status == 200, r
    r = server.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": bob}, token=tok)
    assert r.status == 403 and r.json["errcode"] == "M_INVITE_BLOCKED", r
    r = put_state(server, tok, room, "m.room.member", {"membership": "invite"}, state_key=bob)
    assert r.status == 403 and r.json["errcode"] == "M_INVITE_BLOCKED", r
    r = server.request("POST", "/_matrix/client/v3/createRoom", {"invite": [bob]}, token=tok)
    assert r.status == 403 and r.json["errcode"] == "M_INVITE_BLOCKED", r
    # The invite from before is hidden from /sync while invites are blocked.
    r = server.request("GET", "/_matrix/client/v3/sync", token=btok)
    assert early not in r.json["rooms"]["invite"]
    # Lifting the block: invites work again and the old one shows.
    r = server.request("PUT", f"/_matrix/client/v3/user/{q(bob)}/account_data/m.invite_permission_config",
                       {}, token=btok)
    assert r.status == 200
    r = server.request("GET", "/_matrix/client/v3/sync", token=btok)
    assert early in r.json["rooms"]["invite"]
    r = server.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": bob}, token=tok)
    assert r.status == 200, r


@pytest.fixture(scope="module")
def strict_server():
    """Encryption off by default, but unencrypted private rooms forbidden."""
    with Server(extra_yaml="encryption_enabled_by_default_for_room_type: off\n"
                           "forbid_unencrypted_private_rooms: true\n", encryption_default=None) as s:
        s.start()
        yield s


def test_forbid_unencrypted_private_rooms(strict_server):
    s = strict_server
    alice, tok = login_user(s, "ch_strict")
    u = s.request("GET", "/_matrix/client/versions").json["unstable_features"]
    assert u["io.element.e2ee_forced.private"] and not u["io.element.e2ee_forced.public"]
    # Private rooms are encrypted whatever the client asks; public ones are not.
    assert kind_of(state(s, tok, create(s, tok, element_private("p", False)))) == ("private", MEGOLM)
    pub = create(s, tok, {"preset": "public_chat"})
    assert kind_of(state(s, tok, pub)) == ("public", None)
    # Even a public preset with an invite-only join rule gets encryption.
    room = create(s, tok, {"preset": "public_chat", "initial_state": [
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]})
    assert kind_of(state(s, tok, room)) == ("private", MEGOLM)
    # A client's explicitly empty encryption is refused for a private room.
    r = s.request("POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat", "initial_state": [
        {"type": "m.room.encryption", "state_key": "", "content": {}}]}, token=tok)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
    # An unencrypted public room can't turn private until it is encrypted.
    r = put_state(s, tok, pub, "m.room.join_rules", {"join_rule": "invite"})
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
    assert put_state(s, tok, pub, "m.room.join_rules", {"join_rule": "public"}).status == 200
    assert put_state(s, tok, pub, "m.room.encryption", {"algorithm": MEGOLM}).status == 200
    assert put_state(s, tok, pub, "m.room.join_rules", {"join_rule": "invite"}).status == 200
    # The CLI says so instead of trying.
    r = cli(s, "create", "nope", "--kind", "private", "--unencrypted", "--as", "ch_strict")
    assert r.returncode == 2 and "forbid_unencrypted_private_rooms" in r.stderr
    r = cli(s, "create", "fine", "--kind", "public", "--as", "ch_strict")
    assert r.returncode == 0, r.stderr


def test_encryption_default_all_and_off(tmp_path):
    with Server(encryption_default="all") as s:
        s.start()
        alice, tok = login_user(s, "ch_all")
        assert s.request("GET", "/_matrix/client/versions").json["unstable_features"][
            "io.element.e2ee_forced.public"] is True
        assert kind_of(state(s, tok, create(s, tok, {"preset": "public_chat"}))) == ("public", MEGOLM)
        r = cli(s, "create", "open", "--kind", "public", "--unencrypted", "--as", "ch_all")
        assert r.returncode == 2 and "encrypts every new channel" in r.stderr
        s.stop()
    with Server(encryption_default="off") as s:
        s.start()
        alice, tok = login_user(s, "ch_off")
        assert s.request("GET", "/_matrix/client/versions").json["unstable_features"][
            "io.element.e2ee_forced.private"] is False
        assert kind_of(state(s, tok, create(s, tok, {"preset": "private_chat"}))) == ("private", None)
        # With the server stopped the CLI runs the same handlers itself.
        s.stop()
        r = cli(s, "create", "offline channel", "--kind", "private", "--as", "ch_off")
        assert r.returncode == 0, r.stderr
        room = r.stdout.split()[0]
        s.start()
        assert kind_of(state(s, tok, room)) == ("private", MEGOLM)
