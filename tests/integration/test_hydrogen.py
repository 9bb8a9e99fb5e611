"""The Hydrogen web client (npm hydrogen-view-sdk, bundled with esbuild:
tests/integration/hydrogen/) in Debian's headless Chromium, driven by
playwright-core (hydrogen/drive.mjs): the login form (homeserver, then
password), the room list, a room of version 12 (room ID without a server
part), a message sent from Hydrogen reaching the other user, and the other
user's answer appearing in Hydrogen. The screenshot is kept in
tests/.work/hydrogen.png."""
import json
import os
import subprocess

from harness import ROOT

HERE = os.path.dirname(__file__)
HYD_DIR = os.path.join(HERE, "hydrogen")
NODE = os.path.join(HERE, "js", "node_modules", ".bin", "node")  # Node 22 (scripts/js_deps.sh)
WORK = os.path.join(ROOT, "tests", ".work")
WEB = os.path.join(WORK, "hydrogen-web")
SHOT = os.path.join(WORK, "hydrogen.png")
PASSWORD = "correct horse"
ROOM_NAME = "Hydrogen tea room"
STEPS = ["page loads, login form", "homeserver in the form (.well-known, login flows)",
         "password login, first sync", "open the room", "send a message", "the peer receives it",
         "the peer's answer appears in Hydrogen",
         "reading the room clears its unread badge (receipts, unread counts)"]


def test_hydrogen_login_open_room_send_and_receive(server):
    assert os.path.exists(NODE) and \
        os.path.isdir(os.path.join(HYD_DIR, "node_modules", "hydrogen-view-sdk")), \
        "scripts/js_deps.sh installs Node 22, hydrogen-view-sdk, esbuild and playwright-core"
    assert os.path.exists("/usr/bin/chromium"), "scripts/deps.sh test installs chromium"
    alice = server.add_user("hyd_alice", PASSWORD)
    bob = server.add_user("hyd_bob", PASSWORD)
    bob_tok = server.login("hyd_bob", PASSWORD)
    r = server.request("POST", "/_matrix/client/v3/createRoom",
                       {"name": ROOM_NAME, "preset": "private_chat", "invite": [alice]}, token=bob_tok)
    assert r.status == 200, r
    room_id = r.json["room_id"]
    assert ":" not in room_id  # a version 12 room ID
    r = server.request("POST", f"/_matrix/client/v3/join/{room_id}", {},
                       token=server.login("hyd_alice", PASSWORD))
    assert r.status == 200, r
    r = server.request("PUT", f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/h1",
                       {"msgtype": "m.text", "body": "welcome, Hydrogen"}, token=bob_tok)
    assert r.status == 200, r

    os.makedirs(WORK, exist_ok=True)
    p = subprocess.run([NODE, "build.mjs", WEB], cwd=HYD_DIR, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-4000:]
    if os.path.exists(SHOT):
        os.unlink(SHOT)
    env = dict(os.environ, PVYHS_BASE=server.base, PVYHS_WEB=WEB, PVYHS_USER="hyd_alice",
               PVYHS_PASSWORD=PASSWORD, PVYHS_PEER_TOKEN=bob_tok, PVYHS_ROOM_ID=room_id,
               PVYHS_ROOM_NAME=ROOM_NAME, PVYHS_SCREENSHOT=SHOT)
    p = subprocess.run([NODE, "drive.mjs"], cwd=HYD_DIR, env=env, capture_output=True, text=True,
                       timeout=300)
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    steps = {s["step"]: s for s in lines if "step" in s}
    failed = [s for s in lines if s.get("ok") is False]
    assert not failed and p.returncode == 0, f"{failed or lines[-1:]}\n{p.stderr[-6000:]}"
    assert list(steps) == STEPS, list(steps)
    assert lines[-1].get("done"), lines[-1]
    assert os.path.getsize(SHOT) > 10000, "a screenshot of the conversation"
