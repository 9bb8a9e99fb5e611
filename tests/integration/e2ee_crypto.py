"""e2ee_crypto.py — what a client does with keys, in Python, for the E2EE
tests: device keys, one-time and fallback keys, cross-signing keys and
signatures, signed with python3-signedjson (ed25519 over canonical JSON)
exactly as Olm/vodozemac clients sign them."""
import base64
import copy
import os

from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json

OLM = "m.olm.v1.curve25519-aes-sha2"
MEGOLM = "m.megolm.v1.aes-sha2"


def b64(raw):
    return base64.b64encode(raw).decode().rstrip("=")


def random_key():
    """A stand-in for a curve25519 public key: 32 random bytes, unpadded base64."""
    return b64(os.urandom(32))


class Device:
    """A device's ed25519 identity key and what it signs."""

    def __init__(self, user_id, device_id):
        self.user_id, self.device_id = user_id, device_id
        self.sk = generate_signing_key(device_id)
        self.ed25519 = encode_verify_key_base64(get_verify_key(self.sk))
        self.curve25519 = random_key()
        self.n = 0

    def device_keys(self):
        dk = {"user_id": self.user_id, "device_id": self.device_id, "algorithms": [OLM, MEGOLM],
              "keys": {f"curve25519:{self.device_id}": self.curve25519,
                       f"ed25519:{self.device_id}": self.ed25519}}
        return sign_json(dk, self.user_id, self.sk)

    def sign(self, obj):
        return sign_json(copy.deepcopy(obj), self.user_id, self.sk)

    def key_id(self):
        self.n += 1
        return f"AAAA{self.n:04d}"

    def one_time_keys(self, count):
        return {f"signed_curve25519:{self.key_id()}": self.sign({"key": random_key()})
                for _ in range(count)}

    def fallback_key(self):
        return {f"signed_curve25519:{self.key_id()}": self.sign({"key": random_key(),
                                                                  "fallback": True})}


class CrossSigningKey:
    """A master, self-signing or user-signing key: its key ID is its public key."""

    def __init__(self, user_id, usage):
        self.user_id, self.usage = user_id, usage
        self.sk = generate_signing_key("x")
        self.public = encode_verify_key_base64(get_verify_key(self.sk))
        self.sk.version = self.public
        self.key_id = "ed25519:" + self.public

    def key(self, signed_by=None):
        k = {"user_id": self.user_id, "usage": [self.usage], "keys": {self.key_id: self.public}}
        if signed_by is not None:
            sign_json(k, self.user_id, signed_by.sk)
        return k

    def sign(self, obj):
        return sign_json(copy.deepcopy(obj), self.user_id, self.sk)


def forge(obj, user_id, key_id):
    """obj with a well-formed but wrong signature under key_id."""
    o = copy.deepcopy(obj)
    o.setdefault("signatures", {}).setdefault(user_id, {})[key_id] = b64(os.urandom(64))
    return o


def sync_has_e2ee(server, token):
    """Whether /sync carries this area's sections yet: the integrator wires
    client_otk_counts (which always reports signed_curve25519) together with
    to_device and device_lists. Tests that need /sync assert it, naming what is
    missing, until then; once wired, any failure is a real one."""
    r = server.request("GET", "/_matrix/client/v3/sync?timeout=0", token=token)
    return r.status == 200 and "signed_curve25519" in r.json.get("device_one_time_keys_count", {})


SYNC_MISSING = ("/sync does not call client_otk_counts / client_to_device_sync / "
                "client_device_lists_sync (homeserver/client/e2ee.h) yet")
