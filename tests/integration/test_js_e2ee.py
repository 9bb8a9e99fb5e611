"""Two users on matrix-js-sdk's Rust crypto (vodozemac) through pvyhs
(tests/integration/js/e2ee_two_users.mjs): an encrypted room, a second
device, cross-signing, key backup restored on a new device, SAS
verification between two devices. Needs `npm install --ignore-scripts` in
tests/integration/js (matrix-js-sdk and Node 22 from npm)."""
import json
import os
import subprocess

import pytest

from e2ee_crypto import SYNC_MISSING, sync_has_e2ee

JS_DIR = os.path.join(os.path.dirname(__file__), "js")
NODE = os.path.join(JS_DIR, "node_modules", ".bin", "node")
PASSWORD = "correct horse"


def test_js_sdk_two_users_devices_backup_and_sas(server):
    assert os.path.isdir(os.path.join(JS_DIR, "node_modules", "matrix-js-sdk")) and \
        os.path.exists(NODE), "scripts/js_deps.sh installs matrix-js-sdk and Node 22"
    server.add_user("js_alice", PASSWORD)
    server.add_user("js_bob", PASSWORD)
    assert sync_has_e2ee(server, server.login("js_alice", PASSWORD)), SYNC_MISSING
    env = dict(os.environ, PVYHS_BASE=server.base, PVYHS_ALICE="js_alice", PVYHS_BOB="js_bob",
               PVYHS_PASSWORD=PASSWORD)
    p = subprocess.run([NODE, "e2ee_two_users.mjs"], cwd=JS_DIR, env=env, capture_output=True,
                       text=True, timeout=600)
    steps = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert p.returncode == 0, f"steps {steps}\n{p.stderr[-6000:]}"
    names = [s.get("step") for s in steps if "step" in s]
    assert names == ["exchange", "second device", "backup", "sas"], steps
    assert steps[-1] == {"ok": True}
