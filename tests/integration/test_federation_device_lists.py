"""test_federation_device_lists.py — following another server's device
lists in order (spec "Device management"): m.device_list_update EDUs carry
stream_id and prev_id; one that follows the last update applied is applied,
one already seen is dropped, and one whose prev_id we do not know makes A
fetch the whole list again (GET /user/devices/{userId}) and continue from
its stream_id. While A follows a user, its /keys/query answers for them
from what it holds, without asking their server.

F is a server played by Python (test_federation_rooms.py), in a room of A.
"""
import urllib.parse

from test_federation_rooms import fed, froom, send_txn  # noqa: F401
from test_federation_transport import pki  # noqa: F401


def dev_keys(user, device):
    return {"user_id": user, "device_id": device,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"ed25519:{device}": device[:1] * 43, f"curve25519:{device}": device[-1:] * 43},
            "signatures": {user: {f"ed25519:{device}": "s" * 86}}}


def update(user, device, stream_id, prev_id, keys=True, deleted=False, name=None):
    c = {"user_id": user, "device_id": device, "stream_id": stream_id, "prev_id": prev_id}
    if name is not None:
        c["device_display_name"] = name
    if deleted:
        c["deleted"] = True
    elif keys:
        c["keys"] = dev_keys(user, device)
    return {"edu_type": "m.device_list_update", "content": c}


def keys_query(a, tok, user):
    r = a.request("POST", "/_matrix/client/v3/keys/query", {"device_keys": {user: []}}, token=tok)
    assert r.status == 200, r.raw
    return r.json


def test_device_list_resync(fed, froom):
    a, f = fed["a"], fed["f"]
    fred, atok = froom["fred"], froom["atok"]
    master = {"user_id": fred, "usage": ["master"], "keys": {"ed25519:" + "M" * 43: "M" * 43}}
    served = {"user_id": fred, "stream_id": 10, "master_key": master, "devices": [
        {"device_id": "FONE", "keys": dev_keys(fred, "FONE"), "device_display_name": "F one"},
        {"device_id": "FTWO", "keys": dev_keys(fred, "FTWO")},
        {"device_id": "FBAD", "keys": dev_keys(fred, "OTHER")},  # keys of another device: left out
    ]}
    fetches = []

    def devices(method, path, body):
        fetches.append(path)
        return 200, served

    def keys_q(method, path, body):
        return 200, {"device_keys": {fred: {"FLIVE": dev_keys(fred, "FLIVE")}}}
    def down(method, path, body):
        fetches.append(path)
        return 502, {"errcode": "M_UNKNOWN", "error": "down"}
    path = f"/_matrix/federation/v1/user/devices/{urllib.parse.quote(fred, safe='')}"
    f.routes[path] = down
    f.routes["/_matrix/federation/v1/user/keys/query"] = keys_q
    try:
        # A list A never had, and F cannot serve it: nothing is kept and A's
        # users are told of no change (Synapse: the list stays unknown and
        # /keys/query asks F); the next update fetches it.
        since = a.request("GET", "/_matrix/client/v3/sync?timeout=0", token=atok).json["next_batch"]
        r = send_txn(fed, [], [update(fred, "FZERO", 4, [])])
        assert r.status == 200, r.raw
        assert len(fetches) == 1
        fetches.clear()
        assert a.psql(f"SELECT count(*) FROM e2e_device_keys WHERE user_id = '{fred}'") == "0"
        assert a.psql(f"SELECT count(*) FROM fed_device_list_remote WHERE user_id = '{fred}'") == "0"
        r = a.request("GET", f"/_matrix/client/v3/sync?timeout=0&since={since}", token=atok)
        assert fred not in r.json.get("device_lists", {}).get("changed", []), r.json
        f.routes[path] = devices

        # Before A follows fred's list, /keys/query asks F.
        assert set(keys_query(a, atok, fred)["device_keys"][fred]) == {"FLIVE"}

        # A list A never had (no prev_id A knows): fetched whole.
        r = send_txn(fed, [], [update(fred, "FONE", 5, [])])
        assert r.status == 200, r.raw
        assert len(fetches) == 1
        assert a.psql(f"SELECT stream_id FROM fed_device_list_remote WHERE user_id = '{fred}'") == "10"
        ans = keys_query(a, atok, fred)
        assert set(ans["device_keys"][fred]) == {"FONE", "FTWO"}, ans
        assert ans["device_keys"][fred]["FONE"]["keys"] == dev_keys(fred, "FONE")["keys"]
        assert ans["device_keys"][fred]["FONE"]["unsigned"]["device_display_name"] == "F one"
        assert ans["master_keys"][fred]["keys"] == master["keys"]
        assert not ans["failures"]

        # In order: applied as it comes, no fetch; the display name it
        # carries (a server that lets names out) is what A's clients see.
        r = send_txn(fed, [], [update(fred, "FTHREE", 11, [10], name="F three")])
        assert r.status == 200, r.raw
        assert len(fetches) == 1
        ans = keys_query(a, atok, fred)
        assert set(ans["device_keys"][fred]) == {"FONE", "FTWO", "FTHREE"}
        assert ans["device_keys"][fred]["FTHREE"]["unsigned"] == {"device_display_name": "F three"}
        r = send_txn(fed, [], [update(fred, "FTWO", 12, [11], deleted=True)])
        assert len(fetches) == 1
        assert set(keys_query(a, atok, fred)["device_keys"][fred]) == {"FONE", "FTHREE"}

        # A gap: stream 13 was missed, 14 names it. Fetched again; the list
        # F serves now is what A holds, from its stream_id on.
        served.update(stream_id=14, devices=[{"device_id": "FONE", "keys": dev_keys(fred, "FONE")},
                                             {"device_id": "FFOUR", "keys": dev_keys(fred, "FFOUR")}])
        r = send_txn(fed, [], [update(fred, "FFOUR", 14, [13])])
        assert r.status == 200, r.raw
        assert len(fetches) == 2
        assert set(keys_query(a, atok, fred)["device_keys"][fred]) == {"FONE", "FFOUR"}
        assert a.psql(f"SELECT stream_id FROM fed_device_list_remote WHERE user_id = '{fred}'") == "14"

        # Seen already: dropped (no fetch, nothing changes).
        r = send_txn(fed, [], [update(fred, "FTWO", 12, [11])])
        assert len(fetches) == 2
        assert set(keys_query(a, atok, fred)["device_keys"][fred]) == {"FONE", "FFOUR"}

        # F cannot answer: the update is applied as it came, and the list
        # is fetched again on the next update.
        del f.routes[path]
        r = send_txn(fed, [], [update(fred, "FFIVE", 20, [19])])
        assert r.status == 200, r.raw
        assert set(keys_query(a, atok, fred)["device_keys"][fred]) == {"FONE", "FFOUR", "FFIVE"}
        f.routes[path] = devices
        r = send_txn(fed, [], [update(fred, "FSIX", 21, [20])])
        assert len(fetches) == 3
        assert set(keys_query(a, atok, fred)["device_keys"][fred]) == {"FONE", "FFOUR"}

        # fred leaves A's room: his list is no longer followed (a return later
        # fetches it again), and /keys/query asks F again.
        fr = froom["fr"]
        leave, leave_id = fr.build(fred, "m.room.member", {"membership": "leave"}, state_key=fred)
        r = send_txn(fed, [leave])
        assert r.status == 200 and r.json["pdus"][leave_id] == {}, r.raw
        fr.advance(leave, leave_id)
        assert a.psql(f"SELECT count(*) FROM fed_device_list_remote WHERE user_id = '{fred}'") == "0"
        assert set(keys_query(a, atok, fred)["device_keys"][fred]) == {"FLIVE"}
    finally:
        f.routes.pop(path, None)
        f.routes.pop("/_matrix/federation/v1/user/keys/query", None)


def test_updates_of_strangers_are_ignored(fed, froom):
    """A user of F who shares no room with A's users: no fetch, nothing kept."""
    a, f = fed["a"], fed["f"]
    stranger = f.user("stranger")
    before = len(f.seen)
    r = send_txn(fed, [], [update(stranger, "SDEV", 3, [])])
    assert r.status == 200, r.raw
    assert not [p for m, p, b in f.seen[before:] if "/user/devices/" in p]
    assert a.psql(f"SELECT count(*) FROM e2e_device_keys WHERE user_id = '{stranger}'") == "0"
    assert a.psql(f"SELECT count(*) FROM fed_device_list_remote WHERE user_id = '{stranger}'") == "0"
