"""An encrypted attachment the way Element sends one, between two
matrix-js-sdk clients with Rust crypto (tests/integration/js/media_e2ee.mjs):
AES-CTR in the client, the ciphertext uploaded, an m.file event with the
EncryptedFile in a Megolm room, downloaded through authenticated media and
decrypted byte-identically by the other user. Then pvyhs's own encryption at
rest: no file under the data directory and nothing in a dump of the database
holds the plaintext, the client's ciphertext (pvyhs seals even what is
already encrypted), the attachment key or the file's name."""
import json
import os
import random
import shutil
import subprocess
import tempfile

from e2ee_crypto import SYNC_MISSING, sync_has_e2ee
from test_media import scan

JS_DIR = os.path.join(os.path.dirname(__file__), "js")
NODE = os.path.join(JS_DIR, "node_modules", ".bin", "node")
PASSWORD = "correct horse"
SIZE = 1 << 20


def windows(blob, n=4, width=64):
    """n distinctive 64-byte windows of blob, from all over it."""
    rnd = random.Random(len(blob))
    return [blob[o:o + width] for o in [0, len(blob) - width] +
            [rnd.randrange(0, len(blob) - width) for _ in range(n - 2)]]


def pg_dump(server):
    sock = os.path.join(server.dir, "data", "pg", "run")
    pg = shutil.which("pg_dump") or "/usr/lib/postgresql/15/bin/pg_dump"
    r = subprocess.run([pg, "-h", sock, "-U", "pvyhs", "-d", "pvyhs"], capture_output=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_js_sdk_encrypted_attachment_is_opaque_everywhere(server):
    assert os.path.isdir(os.path.join(JS_DIR, "node_modules", "matrix-js-sdk")) and \
        os.path.exists(NODE), "scripts/js_deps.sh installs matrix-js-sdk and Node 22"
    server.add_user("js_media_alice", PASSWORD)
    server.add_user("js_media_bob", PASSWORD)
    assert sync_has_e2ee(server, server.login("js_media_alice", PASSWORD)), SYNC_MISSING
    out = tempfile.mkdtemp(prefix="pvyhs-js-media-")
    try:
        env = dict(os.environ, PVYHS_BASE=server.base, PVYHS_ALICE="js_media_alice",
                   PVYHS_BOB="js_media_bob", PVYHS_PASSWORD=PASSWORD, PVYHS_OUT=out,
                   PVYHS_SIZE=str(SIZE))
        p = subprocess.run([NODE, "media_e2ee.mjs"], cwd=JS_DIR, env=env, capture_output=True,
                           text=True, timeout=600)
        steps = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
        assert p.returncode == 0, f"steps {steps}\n{p.stderr[-6000:]}"
        assert [s.get("step") for s in steps if "step" in s] == ["room", "sent", "received"]
        assert steps[-1] == {"ok": True}
        with open(os.path.join(out, "plaintext.bin"), "rb") as f:
            plaintext = f.read()
        with open(os.path.join(out, "ciphertext.bin"), "rb") as f:
            ciphertext = f.read()
        with open(os.path.join(out, "secrets.json")) as f:
            secrets = json.load(f)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    assert len(plaintext) == SIZE and len(ciphertext) == SIZE and plaintext != ciphertext
    sent, received = steps[1], steps[2]
    assert received["content_type"] == "application/octet-stream"
    assert received["sha256"] == __import__("hashlib").sha256(plaintext).hexdigest()

    # The server holds the ciphertext, under its own seal.
    origin, media_id = sent["mxc"][len("mxc://"):].split("/")
    assert server.psql(f"SELECT length FROM media WHERE media_id = '{media_id}'") == str(SIZE)

    needles = windows(plaintext) + windows(ciphertext) + [
        secrets["marker"].encode(), secrets["k"].encode(), secrets["name"].encode()]
    server.psql("CHECKPOINT")
    found = scan(os.path.join(server.dir, "data"), needles)
    assert not found, found
    # A dump shows every row decompressed, bytea as hex.
    dump = pg_dump(server)
    assert b"CREATE TABLE" in dump and media_id.encode() in dump
    leaks = [n[:16] for n in needles if n in dump or n.hex().encode() in dump]
    assert not leaks, leaks
    log = server.read_log()
    assert secrets["name"] not in log and secrets["k"] not in log
