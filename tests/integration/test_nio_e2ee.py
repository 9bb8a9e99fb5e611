"""matrix-nio with libolm (Debian's python3-matrix-nio, python3-olm) through
pvyhs: two libolm clients exchange Megolm-encrypted messages in an encrypted
room — keys uploaded, queried and claimed, room keys shared over to-device —
and, when the matrix-js-sdk test client is installed (tests/integration/js,
`npm install --ignore-scripts` there), libolm and vodozemac (matrix-js-sdk's
Rust crypto) read each other's messages through our server."""
import asyncio
import json
import os
import shutil
import subprocess
import tempfile

import pytest

import nio  # noqa: E402  Debian's python3-matrix-nio (scripts/deps.sh test installs it)

from nio import (  # noqa: E402
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    JoinedMembersResponse,
    LoginResponse,
    MegolmEvent,
    RoomCreateResponse,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)

from e2ee_crypto import SYNC_MISSING, sync_has_e2ee  # noqa: E402

PASSWORD = "correct horse"
JS_DIR = os.path.join(os.path.dirname(__file__), "js")
ENCRYPTED = [{"type": "m.room.encryption", "state_key": "",
              "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


async def login(server, name, store):
    cfg = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True, max_timeouts=2,
                            request_timeout=10)
    c = AsyncClient(server.base, f"@{name}:{server.server_name}", store_path=store, config=cfg)
    r = await c.login(PASSWORD, device_name=name)
    assert isinstance(r, LoginResponse), r
    return c


async def pump(c, rounds=1):
    """One client turn: sync, then the key work nio leaves to the caller."""
    events = []
    for _ in range(rounds):
        r = await c.sync(timeout=500, full_state=c.next_batch is None)
        assert isinstance(r, SyncResponse), r
        for room in r.rooms.join.values():
            events.extend(room.timeline.events)
        if c.should_upload_keys:
            await c.keys_upload()
        if c.should_query_keys:
            await c.keys_query()
        if c.should_claim_keys:
            await c.keys_claim(c.get_users_for_key_claiming())
        await c.send_to_device_messages()
    return events


async def wait_for_text(c, body, rounds=20):
    seen = []
    for _ in range(rounds):
        for ev in await pump(c):
            if isinstance(ev, RoomMessageText):
                seen.append(ev.body)
                if ev.body == body:
                    return ev
            elif isinstance(ev, MegolmEvent):
                seen.append(f"<undecryptable {ev.session_id}>")
    raise AssertionError(f"{c.user_id} never decrypted {body!r}; saw {seen}")


async def encrypted_send(c, room_id, body):
    for _ in range(3):
        await pump(c)
    if not c.rooms[room_id].members_synced:
        # nio encrypts only to a full member list. Its schema for
        # /joined_members wants "display_name" on every member (Synapse sends
        # null when unset); where the server leaves it out, the full-state
        # sync above already gave nio every member.
        jm = await c.joined_members(room_id)
        if not isinstance(jm, JoinedMembersResponse):
            c.rooms[room_id].members_synced = True
        await pump(c)
    r = await c.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body},
                          ignore_unverified_devices=True)
    assert isinstance(r, RoomSendResponse), r


@pytest.fixture()
def store():
    d = tempfile.mkdtemp(prefix="nio-store-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def need_sync(server, name):
    server.add_user(name, PASSWORD)
    assert sync_has_e2ee(server, server.login(name, PASSWORD)), SYNC_MISSING


def test_two_libolm_clients_exchange_megolm_messages(server, store):
    need_sync(server, "nio_alice")
    server.add_user("nio_bob", PASSWORD)

    async def scenario():
        a = await login(server, "nio_alice", store)
        b = await login(server, "nio_bob", store)
        try:
            await pump(a), await pump(b)
            r = await a.room_create(invite=[b.user_id], initial_state=ENCRYPTED)
            assert isinstance(r, RoomCreateResponse), r
            room = r.room_id
            await pump(b)
            assert isinstance(await b.join(room), JoinResponse)
            await pump(b), await pump(a)
            await encrypted_send(a, room, "hello from libolm A")
            ev = await wait_for_text(b, "hello from libolm A")
            assert ev.decrypted and ev.sender == a.user_id
            await encrypted_send(b, room, "hello back from libolm B")
            ev = await wait_for_text(a, "hello back from libolm B")
            assert ev.decrypted
            # The server holds only ciphertext.
            rows = server.psql(f"SELECT count(*) FROM events WHERE room_id = '{room}' "
                               "AND type = 'm.room.message'")
            assert rows == "0"
        finally:
            await a.close(), await b.close()

    run(scenario())


def node():
    exe = os.path.join(JS_DIR, "node_modules", ".bin", "node")
    return exe if os.path.exists(exe) and os.path.isdir(os.path.join(JS_DIR, "node_modules",
                                                                      "matrix-js-sdk")) else None


def test_libolm_and_vodozemac_read_each_other(server, store):
    """matrix-js-sdk (Rust crypto) creates the encrypted room and talks with a
    libolm client through pvyhs."""
    assert node(), "scripts/js_deps.sh installs matrix-js-sdk and Node 22"
    need_sync(server, "nio_js_alice")
    server.add_user("nio_carol", PASSWORD)
    env = dict(os.environ, PVYHS_BASE=server.base, PVYHS_USER="nio_js_alice",
               PVYHS_PASSWORD=PASSWORD, PVYHS_PEER=f"@nio_carol:{server.server_name}")
    js = subprocess.Popen([node(), os.path.join(JS_DIR, "nio_peer.mjs")], cwd=JS_DIR, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def js_line():
        line = js.stdout.readline()
        assert line, "the js client stopped:\n" + js.stderr.read()
        return json.loads(line)

    async def scenario():
        c = await login(server, "nio_carol", store)
        try:
            await pump(c)
            room = js_line()["room_id"]  # created and the invite sent
            await pump(c)
            assert isinstance(await c.join(room), JoinResponse)
            await pump(c, 2)
            assert js_line() == {"sent": "hello from vodozemac"}
            ev = await wait_for_text(c, "hello from vodozemac")
            assert ev.decrypted
            await encrypted_send(c, room, "hello from libolm")
            assert js_line() == {"decrypted": "hello from libolm"}
        finally:
            await c.close()

    try:
        run(scenario())
        assert js.wait(60) == 0, js.stderr.read()
    finally:
        if js.poll() is None:
            js.kill()
