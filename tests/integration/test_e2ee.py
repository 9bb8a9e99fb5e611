"""End-to-end encryption support through the Client-Server API: device keys,
one-time and fallback keys, cross-signing, signatures, to-device messages,
device lists and key backups — with real ed25519 signatures made in Python
(python3-signedjson) as a client makes them, and the errors the spec names."""
import concurrent.futures
import json
import os

import pytest

from e2ee_crypto import SYNC_MISSING, CrossSigningKey, Device, forge, random_key, sync_has_e2ee
from harness import http

V3 = "/_matrix/client/v3"
PASSWORD = "correct horse"


class User:
    def __init__(self, server, name, device_id=None):
        self.server = server
        self.name = name
        self.user_id = f"@{name}:{server.server_name}"
        self.token = server.login(name, device_id=device_id)
        who = server.request("GET", V3 + "/account/whoami", token=self.token).json
        self.device_id = who["device_id"]
        self.device = Device(self.user_id, self.device_id)

    def req(self, method, path, body=None, **kw):
        return self.server.request(method, V3 + path, body, token=self.token, **kw)

    def upload(self, **body):
        return self.req("POST", "/keys/upload", body)

    def query(self, *users, **devices):
        body = {"device_keys": {u: [] for u in users}}
        body["device_keys"].update(devices)
        r = self.req("POST", "/keys/query", body)
        assert r.status == 200, r
        return r.json

    def sync(self, since=None, timeout=0):
        q = f"/sync?timeout={timeout}" + (f"&since={since}" if since else "")
        r = self.req("GET", q)
        assert r.status == 200, r
        return r.json


_made = set()


def user(server, name, device_id=None):
    if name not in _made:
        server.add_user(name, PASSWORD)
        _made.add(name)
    return User(server, name, device_id)


def need_sync(server, u):
    assert sync_has_e2ee(server, u.token), SYNC_MISSING


def err(r, status, errcode):
    assert r.status == status, r
    assert r.json["errcode"] == errcode, r


# ---- /keys/upload ------------------------------------------------------------

def test_upload_device_keys_and_query(server):
    a = user(server, "e2_alice")
    b = user(server, "e2_bob")
    r = a.upload(device_keys=a.device.device_keys())
    assert r.status == 200, r
    assert r.json == {"one_time_key_counts": {"signed_curve25519": 0}}
    got = b.query(a.user_id)
    dev = got["device_keys"][a.user_id][a.device_id]
    assert dev["unsigned"] == {}
    served = {k: v for k, v in dev.items() if k != "unsigned"}
    assert served == a.device.device_keys()  # byte-exact keys and signature come back
    assert got["failures"] == {}
    # Uploading the same keys again changes nothing.
    assert a.upload(device_keys=a.device.device_keys()).status == 200


def test_upload_rejects_bad_device_keys(server):
    a = user(server, "e2_carol")
    dk = a.device.device_keys()
    err(a.upload(device_keys=forge(dk, a.user_id, f"ed25519:{a.device_id}")), 400,
        "M_INVALID_SIGNATURE")
    unsigned = dict(dk)
    del unsigned["signatures"]
    err(a.upload(device_keys=unsigned), 400, "M_BAD_JSON")
    # Signed by another key than the device's own.
    other = Device(a.user_id, a.device_id)
    wrong = other.sign({k: v for k, v in dk.items() if k != "signatures"})
    err(a.upload(device_keys=wrong), 400, "M_INVALID_SIGNATURE")
    # Keys for another user or another device, correctly signed.
    for uid, did in ((f"@e2_bob:{server.server_name}", a.device_id), (a.user_id, "OTHERDEV")):
        d = Device(uid, did)
        err(a.upload(device_keys=d.device_keys()), 400, "M_BAD_JSON")
    for bad in ({"user_id": a.user_id}, {**dk, "algorithms": "m.olm"}, {**dk, "keys": {"x": 1}},
                None, "keys"):
        err(a.upload(device_keys=bad), 400, "M_BAD_JSON")
    # Nothing was stored.
    assert a.query(a.user_id)["device_keys"][a.user_id] == {}
    assert server.psql(f"SELECT count(*) FROM e2e_device_keys WHERE user_id = '{a.user_id}'") == "0"


def test_upload_takes_keys_without_a_self_signature(server):
    """Synapse checks no signature on upload (Complement's device list tests
    upload "signatures": {}); one that is there must still verify (above)."""
    a = user(server, "e2_erin")
    b = user(server, "e2_bob")
    dk = {k: v for k, v in a.device.device_keys().items() if k != "signatures"}
    r = a.upload(device_keys={**dk, "signatures": {}})
    assert r.status == 200, r
    got = b.query(a.user_id)["device_keys"][a.user_id][a.device_id]
    assert got["keys"] == dk["keys"] and got["signatures"] == {}
    # Signed by someone else only: not the device's self-signature, taken.
    other = Device(b.user_id, "ELSEWHERE")
    r = a.upload(device_keys=other.sign(dk))
    assert r.status == 200, r
    # A one-time key object with no signature is taken too.
    r = a.upload(one_time_keys={"signed_curve25519:AAAA": {"key": random_key(),
                                                           "signatures": {}}})
    assert r.status == 200 and r.json["one_time_key_counts"]["signed_curve25519"] == 1, r


def test_upload_device_keys_without_the_devices_ed25519_key(server):
    """SyTest's device-list tests upload device keys whose only key is
    "ed25519:test" (not "ed25519:<device_id>"), unsigned, with one-time
    keys, in one request: taken, as Synapse takes them. This crashed the
    server (strdup of the missing key) before."""
    a = user(server, "e2_frank")
    b = user(server, "e2_bob")
    dk = {"user_id": a.user_id, "device_id": a.device_id,
          "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
          "keys": {"ed25519:test": random_key()}, "signatures": {}}
    r = a.upload(device_keys=dk, one_time_keys={"my_algorithm:my_id_1": "my+base64+key"})
    assert r.status == 200, r
    assert r.json["one_time_key_counts"]["my_algorithm"] == 1, r
    got = b.query(a.user_id)["device_keys"][a.user_id][a.device_id]
    assert got["keys"] == dk["keys"]
    # Still serving.
    assert a.req("GET", "/account/whoami").status == 200


def test_upload_errors_of_the_http_layer(server):
    r = server.request("POST", V3 + "/keys/upload", {})
    err(r, 401, "M_MISSING_TOKEN")
    r = server.request("POST", V3 + "/keys/upload", {}, token="pvy_nope")
    err(r, 401, "M_UNKNOWN_TOKEN")
    a = user(server, "e2_alice")
    r = server.request("POST", V3 + "/keys/upload", raw=b"{not json", token=a.token)
    err(r, 400, "M_NOT_JSON")
    r = server.request("POST", "/_matrix/client/r0/keys/query", {"device_keys": {}}, token=a.token)
    assert r.status == 200, r


def test_one_time_keys_upload_rules(server):
    a = user(server, "e2_dave")
    assert a.upload(device_keys=a.device.device_keys()).status == 200
    otks = a.device.one_time_keys(5)
    r = a.upload(one_time_keys=otks)
    assert r.status == 200 and r.json["one_time_key_counts"]["signed_curve25519"] == 5, r
    # The same keys again (a retried request): nothing changes.
    r = a.upload(one_time_keys=otks)
    assert r.status == 200 and r.json["one_time_key_counts"]["signed_curve25519"] == 5, r
    # Same key ID, different key: refused, and nothing of the request is kept.
    kid = next(iter(otks))
    clash = {kid: a.device.sign({"key": random_key()})}
    clash.update(a.device.one_time_keys(1))
    err(a.upload(one_time_keys=clash), 400, "M_INVALID_PARAM")
    r = a.upload()
    assert r.json["one_time_key_counts"]["signed_curve25519"] == 5, r
    # Forged signature, wrong key ID shape, bad values.
    kid2, okey = next(iter(a.device.one_time_keys(1).items()))
    err(a.upload(one_time_keys={kid2: forge({"key": okey["key"]}, a.user_id,
                                            f"ed25519:{a.device_id}")}), 400, "M_INVALID_SIGNATURE")
    err(a.upload(one_time_keys={"signed_curve25519": okey}), 400, "M_BAD_JSON")
    err(a.upload(one_time_keys={"a:b:c": okey}), 400, "M_BAD_JSON")
    err(a.upload(one_time_keys={"signed_curve25519:X": {"nokey": 1}}), 400, "M_BAD_JSON")
    err(a.upload(one_time_keys=[1]), 400, "M_BAD_JSON")
    # Unsigned curve25519 keys are plain strings.
    r = a.upload(one_time_keys={"curve25519:AAAAAQ": random_key()})
    assert r.json["one_time_key_counts"] == {"signed_curve25519": 5, "curve25519": 1}, r
    # Two fallback keys for one algorithm in one request are refused.
    fb = a.device.fallback_key()
    fb.update(a.device.fallback_key())
    err(a.upload(fallback_keys=fb), 400, "M_INVALID_PARAM")


def test_claim_order_fallback_and_remote(server):
    a = user(server, "e2_erin")
    b = user(server, "e2_frank")
    a.upload(device_keys=a.device.device_keys())
    otks = a.device.one_time_keys(2)
    fb = a.device.fallback_key()
    assert a.upload(one_time_keys=otks, fallback_keys=fb).status == 200
    claim = {"one_time_keys": {a.user_id: {a.device_id: "signed_curve25519", "NODEVICE": "signed_curve25519"},
                               "@x:elsewhere.example": {"D": "signed_curve25519"},
                               "not-a-user": {"D": "signed_curve25519"}}}
    got = []
    for _ in range(4):
        r = b.req("POST", "/keys/claim", claim)
        assert r.status == 200, r
        assert r.json["failures"] == {"elsewhere.example": r.json["failures"]["elsewhere.example"]}
        keys = r.json["one_time_keys"][a.user_id]
        assert list(keys) == [a.device_id]  # unknown devices are simply absent
        got.append(keys[a.device_id])
    # Upload order first, then the fallback key, which stays.
    assert got[0] == {k: v for k, v in otks.items() if k == list(otks)[0]}
    assert got[1] == {k: v for k, v in otks.items() if k == list(otks)[1]}
    assert got[2] == fb and got[3] == fb
    assert server.psql(f"SELECT used FROM e2e_fallback_keys WHERE user_id = '{a.user_id}'") == "t"
    # Re-uploading the used fallback key keeps it used; a new one is unused.
    a.upload(fallback_keys=fb)
    assert server.psql(f"SELECT used FROM e2e_fallback_keys WHERE user_id = '{a.user_id}'") == "t"
    a.upload(fallback_keys=a.device.fallback_key())
    assert server.psql(f"SELECT used FROM e2e_fallback_keys WHERE user_id = '{a.user_id}'") == "f"
    for bad in ({}, {"one_time_keys": []}, {"one_time_keys": {a.user_id: ["x"]}},
                {"one_time_keys": {a.user_id: {a.device_id: 5}}}):
        err(b.req("POST", "/keys/claim", bad), 400, "M_BAD_JSON")


def test_claim_follows_upload_order_across_uploads(server):
    """v1.13 (MSC4225): one-time keys go out in the order they were uploaded,
    whatever their key IDs; the fallback key only once none is left."""
    a = user(server, "e2_otk_order")
    b = user(server, "e2_otk_claimer")
    a.upload(device_keys=a.device.device_keys())
    order = []
    # Key IDs that sort backwards, each in its own upload.
    for kid in ("ZZZZZZ", "MMMMMM", "AAAAAA", "BBBBBB"):
        (_, signed), = a.device.one_time_keys(1).items()
        key = {f"signed_curve25519:{kid}": signed}
        assert a.upload(one_time_keys=key).status == 200
        order.append(key)
    fb = a.device.fallback_key()
    assert a.upload(fallback_keys=fb).status == 200
    body = {"one_time_keys": {a.user_id: {a.device_id: "signed_curve25519"}}}
    got = [b.req("POST", "/keys/claim", body).json["one_time_keys"][a.user_id][a.device_id]
           for _ in range(5)]
    assert got[:4] == order and got[4] == fb


def test_concurrent_claims_hand_out_each_key_once(server):
    a = user(server, "e2_grace")
    a.upload(device_keys=a.device.device_keys())
    otks = a.device.one_time_keys(40)
    fb = a.device.fallback_key()
    for i in range(0, 40, 10):
        part = dict(list(otks.items())[i:i + 10])
        assert a.upload(one_time_keys=part).status == 200
    a.upload(fallback_keys=fb)
    claimers = [user(server, f"e2_claim{i % 5}") for i in range(5)]
    body = {"one_time_keys": {a.user_id: {a.device_id: "signed_curve25519"}}}

    def claim(i):
        c = claimers[i % 5]
        r = http(server.base, "POST", V3 + "/keys/claim", body, token=c.token)
        assert r.status == 200, r
        return r.json["one_time_keys"][a.user_id][a.device_id]

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(claim, range(50)))
    ids = [next(iter(k)) for k in results]
    otk_ids = [i for i in ids if i in otks]
    assert len(otk_ids) == 40 and len(set(otk_ids)) == 40  # every OTK exactly once
    assert sorted(set(ids) - set(otks)) == list(fb)  # then only the fallback key
    assert server.psql(f"SELECT count(*) FROM e2e_one_time_keys WHERE user_id = '{a.user_id}'") == "0"


# ---- cross-signing -----------------------------------------------------------

def cross_signing(u):
    master = CrossSigningKey(u.user_id, "master")
    ssk = CrossSigningKey(u.user_id, "self_signing")
    usk = CrossSigningKey(u.user_id, "user_signing")
    return master, ssk, usk


def test_cross_signing_upload_query_and_replace(server):
    a = user(server, "e2_heidi")
    b = user(server, "e2_ivan")
    master, ssk, usk = cross_signing(a)
    body = {"master_key": master.key(), "self_signing_key": ssk.key(master),
            "user_signing_key": usk.key(master)}
    # A self-signing key with a bad signature, or without a master key.
    bad = dict(body, self_signing_key=forge(ssk.key(), a.user_id, master.key_id))
    err(a.req("POST", "/keys/device_signing/upload", bad), 400, "M_INVALID_SIGNATURE")
    err(a.req("POST", "/keys/device_signing/upload", {"self_signing_key": ssk.key(master)}), 400,
        "M_MISSING_PARAM")
    err(a.req("POST", "/keys/device_signing/upload",
              dict(body, master_key=CrossSigningKey(b.user_id, "master").key())), 400,
        "M_INVALID_PARAM")
    err(a.req("POST", "/keys/device_signing/upload",
              dict(body, master_key=dict(master.key(), usage=["self_signing"]))), 400,
        "M_INVALID_PARAM")
    # The first upload needs no user-interactive auth.
    r = a.req("POST", "/keys/device_signing/upload", body)
    assert r.status == 200 and r.json == {}, r
    # The same keys again: still no UIA (idempotent); also on the unstable
    # path older clients use (MSC1756, as Synapse serves it).
    assert a.req("POST", "/keys/device_signing/upload", body).status == 200
    r = server.request("POST", "/_matrix/client/unstable/keys/device_signing/upload", body,
                       token=a.token)
    assert r.status == 200 and r.json == {}, r
    r = server.request("POST", "/_matrix/client/unstable/keys/signatures/upload", {},
                       token=a.token)
    assert r.status == 200 and r.json == {"failures": {}}, r
    theirs, mine = b.query(a.user_id), a.query(a.user_id)
    assert theirs["master_keys"][a.user_id] == master.key()
    assert theirs["self_signing_keys"][a.user_id] == ssk.key(master)
    assert theirs["user_signing_keys"] == {}  # only the user sees their own
    assert mine["user_signing_keys"][a.user_id] == usk.key(master)
    # Replacing them needs the password.
    master2 = CrossSigningKey(a.user_id, "master")
    new = {"master_key": master2.key(), "self_signing_key": ssk.key(master2)}
    r = a.req("POST", "/keys/device_signing/upload", new)
    assert r.status == 401 and {"stages": ["m.login.password"]} in r.json["flows"], r
    new["auth"] = {"type": "m.login.password", "session": r.json["session"], "password": "wrong",
                   "identifier": {"type": "m.id.user", "user": a.user_id}}
    r = a.req("POST", "/keys/device_signing/upload", new)
    assert r.status == 401 and r.json.get("errcode") == "M_FORBIDDEN", r
    new["auth"]["password"] = PASSWORD
    r = a.req("POST", "/keys/device_signing/upload", new)
    assert r.status == 200, r
    assert b.query(a.user_id)["master_keys"][a.user_id] == master2.key()


def test_cross_signing_key_may_not_be_a_device_id(server):
    a = user(server, "e2_judy")
    master = CrossSigningKey(a.user_id, "master")
    user(server, "e2_judy", device_id=master.public)  # a device named like the key
    err(a.req("POST", "/keys/device_signing/upload", {"master_key": master.key()}), 403,
        "M_FORBIDDEN")


def test_signatures_upload(server):
    a = user(server, "e2_ken")
    b = user(server, "e2_leo")
    a.upload(device_keys=a.device.device_keys())
    b.upload(device_keys=b.device.device_keys())
    am, assk, ausk = cross_signing(a)
    bm, bssk, busk = cross_signing(b)
    for u, (m, s, us) in ((a, (am, assk, ausk)), (b, (bm, bssk, busk))):
        r = u.req("POST", "/keys/device_signing/upload",
                  {"master_key": m.key(), "self_signing_key": s.key(m), "user_signing_key": us.key(m)})
        assert r.status == 200, r
    dk = a.device.device_keys()
    signed_dev = assk.sign(dk)
    signed_master = a.device.sign(am.key())
    signed_bob = ausk.sign(bm.key())
    body = {a.user_id: {a.device_id: signed_dev, am.public: signed_master,
                        "NOSUCHDEV": assk.sign(Device(a.user_id, "NOSUCHDEV").device_keys())},
            b.user_id: {bm.public: signed_bob}}
    r = a.req("POST", "/keys/signatures/upload", body)
    assert r.status == 200, r
    assert r.json["failures"] == {a.user_id: {"NOSUCHDEV": r.json["failures"][a.user_id]["NOSUCHDEV"]}}
    assert r.json["failures"][a.user_id]["NOSUCHDEV"]["errcode"] == "M_NOT_FOUND"
    # Bob sees Alice's self-signing signature on her device and her device's
    # signature on her master key, but not her user-signing signature on him.
    seen = b.query(a.user_id, b.user_id)
    sigs = seen["device_keys"][a.user_id][a.device_id]["signatures"][a.user_id]
    assert sigs[assk.key_id] == signed_dev["signatures"][a.user_id][assk.key_id]
    assert seen["master_keys"][a.user_id]["signatures"][a.user_id][f"ed25519:{a.device_id}"]
    assert a.user_id not in seen["master_keys"][b.user_id].get("signatures", {})
    # Alice sees her own signature on Bob's master key.
    mine = a.query(b.user_id)
    assert mine["master_keys"][b.user_id]["signatures"][a.user_id][ausk.key_id] == \
        signed_bob["signatures"][a.user_id][ausk.key_id]
    # Forged signatures and keys that differ from the stored ones fail per key.
    forged = {a.user_id: {a.device_id: forge(dk, a.user_id, assk.key_id)},
              b.user_id: {bm.public: forge(bm.key(), a.user_id, ausk.key_id)}}
    r = a.req("POST", "/keys/signatures/upload", forged)
    assert r.json["failures"][a.user_id][a.device_id]["errcode"] == "M_INVALID_SIGNATURE", r
    assert r.json["failures"][b.user_id][bm.public]["errcode"] == "M_INVALID_SIGNATURE", r
    changed = assk.sign(dict(dk, algorithms=["x"]))
    r = a.req("POST", "/keys/signatures/upload", {a.user_id: {a.device_id: changed}})
    assert r.json["failures"][a.user_id][a.device_id]["errcode"] == "M_INVALID_PARAM", r
    err(a.req("POST", "/keys/signatures/upload", {a.user_id: []}), 400, "M_INVALID_PARAM")
    # A user without a user-signing key cannot sign others.
    c = user(server, "e2_mia")
    r = c.req("POST", "/keys/signatures/upload", {b.user_id: {bm.public: signed_bob}})
    assert r.json["failures"][b.user_id][bm.public]["errcode"] == "M_NOT_FOUND", r


# ---- to-device ---------------------------------------------------------------

def inbox(server, u):
    return int(server.psql(
        f"SELECT count(*) FROM device_inbox WHERE user_id = '{u.user_id}' AND device_id = '{u.device_id}'"))


def test_send_to_device_idempotent_and_wildcard(server):
    a = user(server, "e2_nina")
    b1 = user(server, "e2_oscar")
    b2 = user(server, "e2_oscar")
    msg = {"messages": {b1.user_id: {b1.device_id: {"n": 1}}}}
    assert a.req("PUT", "/sendToDevice/m.test/t1", msg).status == 200
    assert a.req("PUT", "/sendToDevice/m.test/t1", msg).status == 200  # a retry
    assert inbox(server, b1) == 1 and inbox(server, b2) == 0
    # The same txnId on another path (event type) is another request.
    assert a.req("PUT", "/sendToDevice/m.other/t1", msg).status == 200
    assert inbox(server, b1) == 2
    # "*": every device of the user; a named device gets its own message only.
    star = {"messages": {b1.user_id: {"*": {"n": "all"}, b2.device_id: {"n": "two"}}}}
    assert a.req("PUT", "/sendToDevice/m.test/t2", star).status == 200
    assert inbox(server, b1) == 3 and inbox(server, b2) == 1
    got = server.psql(f"SELECT message_json FROM device_inbox WHERE device_id = '{b2.device_id}'")
    assert json.loads(got) == {"sender": a.user_id, "type": "m.test", "content": {"n": "two"}}
    # Unknown devices and users are dropped; remote users are queued for federation.
    other = {"messages": {b1.user_id: {"NOPE": {}}, f"@e2_nobody:{server.server_name}": {"*": {}},
                          "@x:remote.example": {"D": {"k": 1}}}}
    assert a.req("PUT", "/sendToDevice/m.test/t3", other).status == 200
    assert inbox(server, b1) == 3
    edu = json.loads(server.psql(
        "SELECT edu_json FROM device_federation_outbox WHERE destination = 'remote.example'"))
    assert edu["messages"] == {"@x:remote.example": {"D": {"k": 1}}} and edu["sender"] == a.user_id


def test_send_to_device_errors(server):
    a = user(server, "e2_nina")
    b = user(server, "e2_oscar")
    err(a.req("PUT", "/sendToDevice/m.test/e1", {}), 400, "M_MISSING_PARAM")
    err(a.req("PUT", "/sendToDevice/m.test/e2", {"messages": {b.user_id: {"D": "x"}}}), 400,
        "M_BAD_JSON")
    err(a.req("PUT", "/sendToDevice/m.test/e3", {"messages": {b.user_id: []}}), 400, "M_BAD_JSON")
    big = {"messages": {b.user_id: {b.device_id: {"blob": "x" * 70000}}}}
    before = inbox(server, b)
    err(a.req("PUT", "/sendToDevice/m.test/e4", big), 413, "M_TOO_LARGE")
    assert inbox(server, b) == before
    err(server.request("PUT", V3 + "/sendToDevice/m.test/e5", {"messages": {}}), 401,
        "M_MISSING_TOKEN")


def test_to_device_in_sync(server):
    """Delivered at least once, deleted once the next token acknowledges
    them, at most 100 per response."""
    a = user(server, "e2_pat")
    b = user(server, "e2_quinn")
    need_sync(server, b)
    first = b.sync()
    for i in range(130):
        body = {"messages": {b.user_id: {b.device_id: {"i": i}}}}
        assert a.req("PUT", f"/sendToDevice/m.test/n{i}", body).status == 200
    s1 = b.sync(first["next_batch"])
    evs = s1["to_device"]["events"]
    assert [e["content"]["i"] for e in evs] == list(range(100)), "to-device not wired into /sync?"
    assert evs[0]["sender"] == a.user_id and evs[0]["type"] == "m.test"
    # Retrying with the old token gets the same messages again.
    again = b.sync(first["next_batch"])
    assert [e["content"]["i"] for e in again["to_device"]["events"]] == list(range(100))
    s2 = b.sync(s1["next_batch"])
    assert [e["content"]["i"] for e in s2["to_device"]["events"]] == list(range(100, 130))
    s3 = b.sync(s2["next_batch"])
    assert s3["to_device"]["events"] == []
    assert inbox(server, b) == 0


# ---- device lists ------------------------------------------------------------

def test_keys_changes_and_sync_device_lists(server):
    a = user(server, "e2_rita")
    b = user(server, "e2_sam")
    c = user(server, "e2_tom")
    need_sync(server, b)
    start = b.sync()["next_batch"]
    room = a.req("POST", "/createRoom", {"invite": [b.user_id]}).json["room_id"]
    assert b.req("POST", f"/rooms/{room}/join", {}).status == 200
    mid = b.sync()["next_batch"]
    # Alice uploads keys: Bob, who shares a room, sees her in `changed`;
    # Carol's key upload concerns nobody but Carol.
    assert a.upload(device_keys=a.device.device_keys()).status == 200
    assert c.upload(device_keys=c.device.device_keys()).status == 200
    r = b.req("GET", f"/keys/changes?from={mid}&to={b.sync()['next_batch']}")
    assert r.status == 200, r
    assert a.user_id in r.json["changed"] and c.user_id not in r.json["changed"], r
    s = b.sync(mid)
    assert a.user_id in s["device_lists"]["changed"], s["device_lists"]
    # From before the join, Alice is `changed` because they now share a room.
    r = b.req("GET", f"/keys/changes?from={start}&to={s['next_batch']}")
    assert a.user_id in r.json["changed"], r
    # A device renamed is a change too (clients show devices by name;
    # Complement's TestFederationKeyUploadQuery waits for it over federation).
    before_rename = b.sync()["next_batch"]
    r = a.req("PUT", f"/devices/{a.device.device_id}", {"display_name": "Rita's phone"})
    assert r.status == 200, r
    assert a.user_id in b.sync(before_rename)["device_lists"]["changed"]
    # Carol joins without touching her keys: Bob must fetch them, she is `changed`.
    before_join = b.sync()["next_batch"]
    assert a.req("POST", f"/rooms/{room}/invite", {"user_id": c.user_id}).status == 200
    assert c.req("POST", f"/rooms/{room}/join", {}).status == 200
    s = b.sync(before_join)
    assert c.user_id in s["device_lists"]["changed"], s["device_lists"]
    # Alice leaves: Bob sees her in `left`, not in `changed`.
    before_leave = b.sync()["next_batch"]
    assert a.req("POST", f"/rooms/{room}/leave", {}).status == 200
    s = b.sync(before_leave)
    assert a.user_id in s["device_lists"]["left"], s["device_lists"]
    assert a.user_id not in s["device_lists"]["changed"]
    # Errors.
    err(b.req("GET", "/keys/changes"), 400, "M_MISSING_PARAM")
    err(b.req("GET", "/keys/changes?from=garbage&to=x"), 400, "M_INVALID_PARAM")


def test_otk_counts_in_sync(server):
    a = user(server, "e2_uma")
    need_sync(server, a)
    a.upload(device_keys=a.device.device_keys(), one_time_keys=a.device.one_time_keys(3),
             fallback_keys=a.device.fallback_key())
    s = a.sync()
    assert s["device_one_time_keys_count"]["signed_curve25519"] == 3, s
    assert s["device_unused_fallback_key_types"] == ["signed_curve25519"]


# ---- key backup --------------------------------------------------------------

BACKUP = "m.megolm_backup.v1.curve25519-aes-sha2"


def session(fmi, fc, verified, tag="x"):
    return {"first_message_index": fmi, "forwarded_count": fc, "is_verified": verified,
            "session_data": {"ephemeral": "e", "ciphertext": tag, "mac": "m"}}


def test_backup_versions(server):
    a = user(server, "e2_vera")
    err(a.req("GET", "/room_keys/version"), 404, "M_NOT_FOUND")
    auth = {"public_key": random_key(), "signatures": {}}
    err(a.req("POST", "/room_keys/version", {"algorithm": BACKUP, "auth_data": {"public_key": "x"}}),
        400, "M_INVALID_PARAM")
    err(a.req("POST", "/room_keys/version", {"algorithm": BACKUP}), 400, "M_MISSING_PARAM")
    # There but of the wrong type is bad JSON, not a missing parameter.
    err(a.req("POST", "/room_keys/version", {"algorithm": BACKUP, "auth_data": "anything"}), 400,
        "M_BAD_JSON")
    err(a.req("POST", "/room_keys/version", {"algorithm": 1, "auth_data": {}}), 400, "M_BAD_JSON")
    r = a.req("POST", "/room_keys/version", {"algorithm": BACKUP, "auth_data": auth})
    assert r.status == 200 and r.json == {"version": "1"}, r
    cur = a.req("GET", "/room_keys/version").json
    assert cur == {"version": "1", "algorithm": BACKUP, "auth_data": auth, "count": 0, "etag": "0"}
    assert a.req("GET", "/room_keys/version/1").json == cur
    err(a.req("GET", "/room_keys/version/2"), 404, "M_NOT_FOUND")
    err(a.req("GET", "/room_keys/version/abc"), 404, "M_NOT_FOUND")
    # Update: only auth_data; algorithm and version must match.
    auth2 = {"public_key": random_key()}
    err(a.req("PUT", "/room_keys/version/1", {"algorithm": "other", "auth_data": auth2}), 400,
        "M_INVALID_PARAM")
    err(a.req("PUT", "/room_keys/version/1", {"algorithm": BACKUP, "auth_data": auth2, "version": "2"}),
        400, "M_INVALID_PARAM")
    err(a.req("PUT", "/room_keys/version/7", {"algorithm": BACKUP, "auth_data": auth2}), 404,
        "M_NOT_FOUND")
    assert a.req("PUT", "/room_keys/version/1", {"algorithm": BACKUP, "auth_data": auth2}).status == 200
    assert a.req("GET", "/room_keys/version").json["auth_data"] == auth2
    # A second version becomes current; deleting it makes 1 current again;
    # deleting twice succeeds; a never-created version is 404.
    assert a.req("POST", "/room_keys/version", {"algorithm": BACKUP, "auth_data": auth}).json == {"version": "2"}
    assert a.req("GET", "/room_keys/version").json["version"] == "2"
    assert a.req("DELETE", "/room_keys/version/2").status == 200
    assert a.req("DELETE", "/room_keys/version/2").status == 200
    err(a.req("DELETE", "/room_keys/version/9"), 404, "M_NOT_FOUND")
    assert a.req("GET", "/room_keys/version").json["version"] == "1"
    assert a.req("POST", "/room_keys/version", {"algorithm": BACKUP, "auth_data": auth}).json == {"version": "3"}
    # Another user sees none of it.
    err(user(server, "e2_walt").req("GET", "/room_keys/version/3"), 404, "M_NOT_FOUND")


def test_backup_keys_replacement_rule(server):
    a = user(server, "e2_xena")
    auth = {"public_key": random_key()}
    v = a.req("POST", "/room_keys/version", {"algorithm": BACKUP, "auth_data": auth}).json["version"]
    room, sid = "!r1:example.org", "sess1"
    path = f"/room_keys/keys/{room}/{sid}?version={v}"

    def put(k):
        r = a.req("PUT", path, k)
        assert r.status == 200, r
        return r.json

    def stored():
        return a.req("GET", path).json["session_data"]["ciphertext"]

    assert put(session(5, 1, False, "first")) == {"etag": "1", "count": 1}
    # Verified wins over unverified, whatever the indexes.
    assert put(session(9, 9, True, "verified"))["etag"] == "2" and stored() == "verified"
    assert put(session(0, 0, False, "unverified-better-index"))["etag"] == "2"
    assert stored() == "verified"
    # Same is_verified: the lower first_message_index wins …
    put(session(3, 9, True, "lower-index"))
    assert stored() == "lower-index"
    put(session(4, 0, True, "higher-index"))
    assert stored() == "lower-index"
    # … then the lower forwarded_count; a tie keeps what is stored.
    put(session(3, 2, True, "fewer-forwards"))
    assert stored() == "fewer-forwards"
    r = put(session(3, 2, True, "tie"))
    assert stored() == "fewer-forwards" and r == {"etag": "4", "count": 1}
    # Room and top level.
    r = a.req("PUT", f"/room_keys/keys/{room}?version={v}",
              {"sessions": {"sess2": session(0, 0, False)}})
    assert r.json == {"etag": "5", "count": 2}, r
    r = a.req("PUT", f"/room_keys/keys?version={v}",
              {"rooms": {"!r2:example.org": {"sessions": {"s3": session(1, 0, True)}}}})
    assert r.json == {"etag": "6", "count": 3}, r
    everything = a.req("GET", f"/room_keys/keys?version={v}").json
    assert set(everything["rooms"]) == {room, "!r2:example.org"}
    assert set(everything["rooms"][room]["sessions"]) == {sid, "sess2"}
    assert a.req("GET", f"/room_keys/keys/!none:x?version={v}").json == {"sessions": {}}
    err(a.req("GET", f"/room_keys/keys/{room}/nosuch?version={v}"), 404, "M_NOT_FOUND")
    assert a.req("GET", f"/room_keys/version/{v}").json["count"] == 3
    assert a.req("GET", f"/room_keys/version/{v}").json["etag"] == "6"
    # Deleting at each level.
    assert a.req("DELETE", f"/room_keys/keys/{room}/{sid}?version={v}").json == {"etag": "7", "count": 2}
    assert a.req("DELETE", f"/room_keys/keys/{room}?version={v}").json == {"etag": "8", "count": 1}
    assert a.req("DELETE", f"/room_keys/keys?version={v}").json == {"etag": "9", "count": 0}


def test_backup_keys_errors(server):
    a = user(server, "e2_yves")
    err(a.req("PUT", "/room_keys/keys?version=1", {"rooms": {}}), 404, "M_NOT_FOUND")
    auth = {"public_key": random_key()}
    v1 = a.req("POST", "/room_keys/version", {"algorithm": BACKUP, "auth_data": auth}).json["version"]
    v2 = a.req("POST", "/room_keys/version", {"algorithm": BACKUP, "auth_data": auth}).json["version"]
    r = a.req("PUT", f"/room_keys/keys/!r:x/s?version={v1}", session(0, 0, False))
    assert r.status == 403 and r.json["errcode"] == "M_WRONG_ROOM_KEYS_VERSION", r
    assert r.json["current_version"] == v2
    err(a.req("PUT", "/room_keys/keys/!r:x/s", session(0, 0, False)), 400, "M_MISSING_PARAM")
    err(a.req("GET", "/room_keys/keys"), 400, "M_MISSING_PARAM")
    err(a.req("PUT", f"/room_keys/keys/!r:x/s?version=99", session(0, 0, False)), 404, "M_NOT_FOUND")
    err(a.req("GET", f"/room_keys/keys?version=99"), 404, "M_NOT_FOUND")
    err(a.req("PUT", f"/room_keys/keys/!r:x/s?version={v2}", dict(session(0, 0, False), is_verified="yes")),
        400, "M_INVALID_PARAM")
    err(a.req("PUT", f"/room_keys/keys/!r:x/s?version={v2}", {"first_message_index": 0}), 400,
        "M_BAD_JSON")
    err(a.req("PUT", f"/room_keys/keys?version={v2}", {"rooms": []}), 400, "M_BAD_JSON")
    err(a.req("PUT", f"/room_keys/keys/!r:x?version={v2}", {"sessions": 1}), 400, "M_BAD_JSON")
    # Nothing was stored by the failed requests.
    assert a.req("GET", f"/room_keys/version/{v2}").json["count"] == 0


# ---- dehydrated devices (MSC3814) ---------------------------------------------

MSC3814 = "/_matrix/client/unstable/org.matrix.msc3814.v1"


def test_dehydrated_device(server):
    a = user(server, "e2_zoe")
    b = user(server, "e2_zack")
    req = lambda m, p, body=None: server.request(m, MSC3814 + p, body, token=a.token)  # noqa: E731
    err(req("GET", "/dehydrated_device"), 404, "M_NOT_FOUND")
    dev = Device(a.user_id, "DEHYDRATED1")
    body = {"device_id": "DEHYDRATED1", "device_data": {"algorithm": "x", "account": "pickle"},
            "initial_device_display_name": "Dehydrated device",
            "device_keys": dev.device_keys(), "one_time_keys": dev.one_time_keys(2),
            "fallback_keys": dev.fallback_key()}
    err(req("PUT", "/dehydrated_device", dict(body, device_keys=None)), 400, "M_BAD_JSON")
    err(req("PUT", "/dehydrated_device",
            dict(body, device_keys=forge(dev.device_keys(), a.user_id, "ed25519:DEHYDRATED1"))),
        400, "M_INVALID_SIGNATURE")
    err(req("PUT", "/dehydrated_device", dict(body, device_id=a.device_id)), 400, "M_INVALID_PARAM")
    r = req("PUT", "/dehydrated_device", body)
    assert r.status == 200 and r.json == {"device_id": "DEHYDRATED1"}, r
    assert req("GET", "/dehydrated_device").json == {"device_id": "DEHYDRATED1",
                                                     "device_data": body["device_data"]}
    # Others see it as a device with keys and can claim its one-time keys.
    assert "DEHYDRATED1" in b.query(a.user_id)["device_keys"][a.user_id]
    claim = b.req("POST", "/keys/claim", {"one_time_keys": {a.user_id: {"DEHYDRATED1": "signed_curve25519"}}})
    assert list(claim.json["one_time_keys"][a.user_id]["DEHYDRATED1"])[0] in body["one_time_keys"]
    # It receives to-device messages, paged with next_batch while more follow.
    for i in range(105):
        assert b.req("PUT", f"/sendToDevice/m.test/dh{i}",
                     {"messages": {a.user_id: {"DEHYDRATED1": {"i": i}}}}).status == 200
    page = req("GET", "/dehydrated_device/DEHYDRATED1/events")
    assert page.status == 200 and len(page.json["events"]) == 100, page
    rest = req("GET", f"/dehydrated_device/DEHYDRATED1/events?from={page.json['next_batch']}")
    assert [e["content"]["i"] for e in rest.json["events"]] == list(range(100, 105))
    assert "next_batch" not in rest.json
    err(req("GET", "/dehydrated_device/OTHER/events"), 403, "M_FORBIDDEN")
    err(req("GET", "/dehydrated_device/DEHYDRATED1/events?from=x1"), 400, "M_INVALID_PARAM")
    # A new one replaces it: the old device, its keys and messages are gone.
    dev2 = Device(a.user_id, "DEHYDRATED2")
    r = req("PUT", "/dehydrated_device", dict(body, device_id="DEHYDRATED2", device_keys=dev2.device_keys(),
                                              one_time_keys={}, fallback_keys={}))
    assert r.status == 200, r
    keys = b.query(a.user_id)["device_keys"][a.user_id]
    assert "DEHYDRATED2" in keys and "DEHYDRATED1" not in keys
    assert server.psql(f"SELECT count(*) FROM device_inbox WHERE device_id = 'DEHYDRATED1'") == "0"
    assert req("DELETE", "/dehydrated_device").json == {"device_id": "DEHYDRATED2"}
    err(req("DELETE", "/dehydrated_device"), 404, "M_NOT_FOUND")
    assert "DEHYDRATED2" not in b.query(a.user_id)["device_keys"][a.user_id]
