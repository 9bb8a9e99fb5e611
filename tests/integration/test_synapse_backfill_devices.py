"""test_synapse_backfill_devices.py — outbound backfill and device-list
resyncs against Synapse (the Synapse venv, scripts/synapse_venv.sh, on its
own PostgreSQL), over TLS from the test CA: a pvyhs user joins a Synapse
room after its history was written and pages back through it; Synapse's
device list updates are followed in order, fetched whole (/user/devices)
when pvyhs holds none.
"""
import json
import os
import time

import pytest

from synapse_peer import Synapse as SynapsePeer, tls_peer
from test_federation_rooms import q, user  # noqa: F401
from test_federation_transport import FedServer, pki, stop_clean  # noqa: F401

class Synapse(SynapsePeer):
    """synapse_peer's TLS peer, with the (status, body) calls and the
    (user, token, device) registrations these tests use."""

    def __init__(self, pki):
        peer = tls_peer(pki, prefix="synapse-bf-")
        self.__dict__.update(peer.__dict__)
        self._peer = peer  # its directory lives as long as the peer object (Disposable)

    def call(self, method, path, body=None, token=None):
        st, out = SynapsePeer.call(self, method, path, body, token, ok=None)
        return st, json.loads(out or b"{}")

    def register(self, name, device_id=None):
        uid, tok = SynapsePeer.register(
            self, name, "pw", call=lambda m, p, b=None: SynapsePeer.call(self, m, p, b))
        _, me = self.call("GET", "/_matrix/client/v3/account/whoami", token=tok)
        return uid, tok, me["device_id"]


@pytest.fixture(scope="module")
def net(pki):  # noqa: F811
    syn = Synapse(pki).start()
    b = FedServer(pki, prefix="synbf", extra=FedServer.NO_LIMITS).start()
    yield {"syn": syn, "b": b}
    try:
        stop_clean(b)
    finally:
        keep = os.environ.get("PVYHS_KEEP_LOGS")
        if keep:
            with open(os.path.join(keep, "synbf_synapse.log"), "w") as out:
                out.write(syn.read_log())
            with open(os.path.join(keep, "synbf_b.log"), "w") as out:
                out.write(b.read_log())
        syn.stop()
        syn.cleanup()
        b.__exit__(None, None, None)


def page_back(s, tok, room, limit=10):
    out, frm = [], None
    for _ in range(40):
        path = f"/_matrix/client/v3/rooms/{q(room)}/messages?dir=b&limit={limit}"
        if frm:
            path += f"&from={q(frm)}"
        r = s.request("GET", path, token=tok)
        assert r.status == 200, r.raw
        out += r.json["chunk"]
        if "end" not in r.json:
            return out
        frm = r.json["end"]
    raise AssertionError("pagination did not end")


def bodies(events):
    return [e["content"].get("body") for e in events if e["type"] == "m.room.message"]


def test_backfill_from_synapse(net):
    syn, b = net["syn"], net["b"]
    sally, stok, _ = syn.register("sally")
    st, j = syn.call("POST", "/_matrix/client/v3/createRoom",
                     {"preset": "public_chat", "name": "Synapse history"}, stok)
    assert st == 200, j
    room = j["room_id"]
    for i in range(30):
        st, j = syn.call("PUT", f"/_matrix/client/v3/rooms/{q(room)}/send/m.room.message/t{i}",
                         {"msgtype": "m.text", "body": f"syn {i}"}, stok)
        assert st == 200, j
    bob, btok = user(b, "synbf_bob")
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}?server_name={q(syn.server_name)}", {},
                  token=btok)
    assert r.status == 200, r.raw
    events = page_back(b, btok, room)
    assert bodies(events) == [f"syn {i}" for i in reversed(range(30))], bodies(events)
    assert events[-1]["type"] == "m.room.create"
    r = b.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.name", token=btok)
    assert r.status == 200 and r.json["name"] == "Synapse history", r.raw
    net["room"] = room
    net["sally"] = (sally, stok)


def dev_keys(user_id, device_id):
    return {"user_id": user_id, "device_id": device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"ed25519:{device_id}": "E" * 43, f"curve25519:{device_id}": "C" * 43},
            "signatures": {user_id: {f"ed25519:{device_id}": "S" * 86}}}


def test_device_lists_from_synapse(net):
    syn, b = net["syn"], net["b"]
    room = net["room"]
    sally, stok = net["sally"]
    bob, btok = user(b, "synbf_bob")
    # sally's first device's keys: Synapse tells B, which has no list of hers: fetched whole.
    _, st1 = syn.call("GET", "/_matrix/client/v3/account/whoami", token=stok)
    dev1 = st1["device_id"]
    st, j = syn.call("POST", "/_matrix/client/v3/keys/upload",
                     {"device_keys": dev_keys(sally, dev1)}, stok)
    assert st == 200, j

    def followed():
        return b.psql(f"SELECT stream_id FROM fed_device_list_remote WHERE user_id = '{sally}'")
    deadline = time.time() + 60
    while time.time() < deadline and not followed():
        time.sleep(0.3)
    assert followed(), b.read_log()[-4000:]
    fetched = b.read_log().count(f"device list of {sally} fetched again")
    assert fetched >= 1
    r = b.request("POST", "/_matrix/client/v3/keys/query", {"device_keys": {sally: []}}, token=btok)
    assert r.status == 200 and dev1 in r.json["device_keys"][sally], r.raw

    # A second device: an update that follows the first, applied in order.
    s2 = syn.call("POST", "/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "sally"},
        "password": "pw", "device_id": "SALLY2"})[1]
    st, j = syn.call("POST", "/_matrix/client/v3/keys/upload",
                     {"device_keys": dev_keys(sally, "SALLY2")}, s2["access_token"])
    assert st == 200, j

    def has_two():
        r = b.request("POST", "/_matrix/client/v3/keys/query", {"device_keys": {sally: []}},
                      token=btok)
        return {dev1, "SALLY2"} <= set(r.json["device_keys"].get(sally, {}))
    deadline = time.time() + 60
    while time.time() < deadline and not has_two():
        time.sleep(0.3)
    assert has_two(), b.read_log()[-4000:]
    print("resyncs:", b.read_log().count(f"device list of {sally} fetched again"), "first:", fetched)


def test_backfill_from_synapse_joined_history(net):
    """history_visibility joined: the history before the pvyhs user came stays hidden."""
    syn, b = net["syn"], net["b"]
    sally, stok = net["sally"]
    st, j = syn.call("POST", "/_matrix/client/v3/createRoom", {
        "preset": "public_chat", "initial_state": [
            {"type": "m.room.history_visibility", "state_key": "",
             "content": {"history_visibility": "joined"}}]}, stok)
    assert st == 200, j
    room = j["room_id"]
    for i in range(12):
        st, j = syn.call("PUT", f"/_matrix/client/v3/rooms/{q(room)}/send/m.room.message/j{i}",
                         {"msgtype": "m.text", "body": f"hidden {i}"}, stok)
        assert st == 200, j
    carl, ctok = user(b, "synbf_carl")
    r = b.request("POST", f"/_matrix/client/v3/join/{q(room)}?server_name={q(syn.server_name)}", {},
                  token=ctok)
    assert r.status == 200, r.raw
    events = page_back(b, ctok, room)
    assert bodies(events) == [], bodies(events)
    assert any(e["type"] == "m.room.member" and e["state_key"] == carl for e in events)
    # B did pull the history (Synapse sends it redacted), and keeps its visibility.
    n = int(b.psql(f"SELECT count(*) FROM events WHERE room_id = '{room}' AND stream_ordering < 0"
                   " AND type = 'm.room.message'"))
    assert n == 12, n
    assert b.psql(f"SELECT DISTINCT history_visibility_at FROM events WHERE room_id = '{room}'"
                  " AND stream_ordering < 0 AND type = 'm.room.message'") == "joined"
