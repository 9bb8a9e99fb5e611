"""What Element does, through matrix-js-sdk (tests/integration/js/flows.mjs):
registration and login, PREPARED clients, every preset, membership, messages
by /sync, typing, receipts and unread counts, edits, reactions, replies,
threads, redactions, 1,000 messages of history, room upgrade, knocking,
search, the room directory, media and profiles.

The script runs once on its own server (open registration); each of its
steps is one test here, so a report names exactly the flows that fail. A step
the script never reported fails too."""
import json
import os
import re
import subprocess
import time

import pytest

from harness import Server

JS_DIR = os.path.join(os.path.dirname(__file__), "js")
NODE = os.path.join(JS_DIR, "node_modules", ".bin", "node")
SCRIPT = os.path.join(JS_DIR, "flows.mjs")
PASSWORD = "correct horse"

# The steps, in the script's order, read from the script itself.
with open(SCRIPT) as f:
    STEPS = re.findall(r'await step\("([^"]+)"', f.read())

REGISTRATION = """enable_registration: true
enable_registration_without_verification: true
"""


@pytest.fixture(scope="module")
def flows():
    assert os.path.isdir(os.path.join(JS_DIR, "node_modules", "matrix-js-sdk")) and \
        os.path.exists(NODE), "scripts/js_deps.sh installs matrix-js-sdk and Node 22"
    with Server(extra_yaml=REGISTRATION) as srv:
        srv.start()
        env = dict(os.environ, PVYHS_BASE=srv.base, PVYHS_SERVER_NAME=srv.server_name,
                   PVYHS_PASSWORD=PASSWORD, PVYHS_PREFIX="flows")
        t0 = time.time()
        p = subprocess.run([NODE, SCRIPT], cwd=JS_DIR, env=env, capture_output=True, text=True,
                           timeout=600)
        lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
        steps = {s["step"]: s for s in lines if "step" in s}
        yield {"rc": p.returncode, "steps": steps, "lines": lines, "stderr": p.stderr,
               "seconds": time.time() - t0}
        rc = srv.stop()
        log = srv.read_log()
        assert rc == 0, "pvyhs did not exit cleanly:\n" + log[-4000:]
        assert "ERROR: AddressSanitizer" not in log and "runtime error:" not in log, log


def test_script_ran_to_the_end(flows):
    assert flows["rc"] == 0 and flows["lines"] and flows["lines"][-1] == {"done": True}, \
        f"{flows['lines'][-3:]}\n{flows['stderr'][-6000:]}"


@pytest.mark.parametrize("name", STEPS)
def test_flow(flows, name):
    s = flows["steps"].get(name)
    assert s is not None, f"step {name!r} never reported\n{flows['stderr'][-3000:]}"
    assert s["ok"], f"{name}: {s.get('status', '')} {s.get('errcode', '')}\n{s.get('error')}"
