"""matrix-js-sdk's SlidingSync (lib/sliding-sync.js, the simplified MSC4186
endpoint Element Web uses) driving a MatrixClient against pvyhs: a list, a
subscription to a room outside its window, a live message, typing, a read
receipt and account data reaching the client's models (js/sliding_sync.mjs)."""
import json
import os
import subprocess

JS_DIR = os.path.join(os.path.dirname(__file__), "js")
NODE = os.path.join(JS_DIR, "node_modules", ".bin", "node")


def test_js_sdk_sliding_sync(server):
    server.add_user("ssjs_alice")
    server.add_user("ssjs_bob")
    env = dict(os.environ, PVYHS_BASE=server.base, PVYHS_ALICE="ssjs_alice", PVYHS_BOB="ssjs_bob")
    p = subprocess.run([NODE, "sliding_sync.mjs"], cwd=JS_DIR, env=env, capture_output=True,
                       text=True, timeout=300)
    steps = {s.get("step", "end"): s for s in
             (json.loads(line) for line in p.stdout.splitlines() if line.startswith("{"))}
    assert p.returncode == 0 and steps.get("end") == {"ok": True}, f"{steps}\n{p.stderr[-6000:]}"
    first = steps["first"]
    assert first["count"] >= 3 and first["errors"] == 0
    assert sorted(first["names"].values()) == ["Mid", "Old", "Top"]
    # the subscribed room, outside the window [0, 1], came with its timeline
    assert "m.room.message" in first["oldTimeline"] and "m.room.create" in first["oldTimeline"]
    assert all(first["initial"].values())
    assert first["accountData"] == {"v": 1}
    assert steps["live"]["last"] == "live!" and steps["live"]["ms"] < 10000
    assert steps["extensions"]["typing"] is True
    print(f"\njs-sdk sliding sync: live message in {steps['live']['ms']} ms")
