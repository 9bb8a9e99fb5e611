#!/usr/bin/env python3
"""rooms_diff.py — differential test of rooms/ against Synapse: redaction,
reference hashes, event IDs, v12 room IDs and content hashes.

It generates random events of every room version (fixed seed, so a failure
reproduces), feeds them to tests/tools/rooms_hash (our code) and compares
with what Synapse computes for the same event:

  redaction       synapse.synapse_rust.events.redact_event_dict
  reference hash  SHA-256 of Synapse's redacted event, as
                  synapse.crypto.event_signing.compute_event_reference_hash
                  does it (checked against that function where Synapse can
                  build the event)
  event/room ID   synapse.events.make_event_from_dict(...).event_id / room_id
  content hash    synapse.crypto.event_signing.compute_content_hash

How to run, from the repository root:

  python3 -m venv tests/integration/.venv
  tests/integration/.venv/bin/pip install matrix-synapse
  cmake -S . -B build && cmake --build build --target rooms_hash
  tests/integration/.venv/bin/python tests/diff/rooms_diff.py \
      [--tool build/bin/rooms_hash] [--per-version 500] [--seed 1]

Without --tool the script uses $ROOMS_HASH or the first build*/bin/rooms_hash.
The last line reads "rooms_diff: N passed, M failed"; the exit status is 1 if
anything failed (or 2 if it could not run).

Known, deliberate differences that the generator avoids (see rooms/*.c):
floats (no two implementations write them alike; we drop such events),
Synapse's extra "unsigned" keys in redacted events (outside every hash and
signature), and Synapse also leaving top-level age_ts/outlier/destinations
out of content hashes (the spec names only unsigned, signatures, hashes).
"""

import argparse
import base64
import copy
import glob
import hashlib
import json
import os
import random
import subprocess
import sys

try:
    from canonicaljson import encode_canonical_json
    from synapse.api.room_versions import KNOWN_ROOM_VERSIONS
    from synapse.crypto.event_signing import compute_content_hash, compute_event_reference_hash
    from synapse.events import make_event_from_dict
    from synapse.synapse_rust.events import redact_event_dict
except ImportError as e:  # pragma: no cover - environment problem
    print(f"rooms_diff: cannot import Synapse ({e}); see the top of this file", file=sys.stderr)
    sys.exit(2)

VERSIONS = [str(i) for i in range(1, 13)]
MAX_SAFE = 2**53 - 1
MAX_I64 = 2**63 - 1

SERVERS = ["example.org", "matrix.org:8448", "[::1]:8448", "1.2.3.4", "a-b.c-d.example", "x"]
TYPES_STATE = ["m.room.member", "m.room.create", "m.room.join_rules", "m.room.power_levels",
               "m.room.aliases", "m.room.history_visibility", "m.room.name", "m.room.topic",
               "m.room.third_party_invite", "m.room.server_acl", "org.example.custom"]
TYPES_MESSAGE = ["m.room.message", "m.room.redaction", "m.reaction", "m.room.encrypted",
                 "org.example.event"]
PL_KEYS = ["ban", "events", "events_default", "kick", "redact", "state_default", "users",
           "users_default", "invite", "notifications"]
# Characters that stress canonical JSON: escapes, controls, non-ASCII, astral.
SPICE = ["\"", "\\", "\n", "\t", "\b", "\f", "\r", "\x00", "\x01", "\x1f", "\x7f", "é", "中",
         "\u2028", "\ufeff", "\uffff", "\ue000", "😀", "𝄞", "/", "<", "'"]


class Gen:
    def __init__(self, rng, version):
        self.r = rng
        self.v = version
        self.rv = KNOWN_ROOM_VERSIONS[version]
        self.strict = int(version) >= 6

    def chance(self, p):
        return self.r.random() < p

    def text(self, n=None):
        n = self.r.randint(0, 12) if n is None else n
        out = []
        for _ in range(n):
            if self.chance(0.25):
                out.append(self.r.choice(SPICE))
            else:
                out.append(self.r.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789 ._-"))
        return "".join(out)

    def id_text(self, n=None):
        """Text for type and state_key: anything but U+0000, which we refuse
        there (no database can store it in a key column)."""
        return self.text(n).replace("\x00", "0")

    def ident(self, alphabet="abcdefghijklmnopqrstuvwxyz0123456789", lo=1, hi=10):
        return "".join(self.r.choice(alphabet) for _ in range(self.r.randint(lo, hi)))

    def user(self):
        if self.chance(0.15):  # historical localparts are still accepted
            local = self.ident("ABCxyz._=-/+éü ", 0, 8)
        else:
            local = self.ident("abcdefghijklmnopqrstuvwxyz0123456789._=-/+")
        return f"@{local}:{self.r.choice(SERVERS)}"

    def hash_id(self, sigil):
        abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        if self.v == "3":
            abc = abc[:-2] + "+/"
        return sigil + "".join(self.r.choice(abc) for _ in range(43))

    def event_ref(self):
        if self.v in ("1", "2"):
            return [f"${self.ident()}:{self.r.choice(SERVERS)}", {"sha256": self.ident(lo=43, hi=43)}]
        return self.hash_id("$")

    def integer(self):
        limit = MAX_SAFE if self.strict else MAX_I64
        pick = self.r.random()
        if pick < 0.5:
            return self.r.randint(-100, 100)
        if pick < 0.8:
            return self.r.randint(-limit, limit)
        return self.r.choice([limit, -limit, 0, MAX_SAFE, -MAX_SAFE])

    def value(self, depth=0):
        kinds = ["str", "int", "bool", "null"] + (["list", "obj"] if depth < 3 else [])
        k = self.r.choice(kinds)
        if k == "str":
            return self.text()
        if k == "int":
            return self.integer()
        if k == "bool":
            return self.chance(0.5)
        if k == "null":
            return None
        if k == "list":
            return [self.value(depth + 1) for _ in range(self.r.randint(0, 4))]
        return self.obj(depth + 1)

    def key(self):
        if self.chance(0.3):  # jansson cannot hold U+0000 in object keys
            return self.text(self.r.randint(1, 6)).replace("\x00", "0")
        return self.ident(lo=1, hi=8)

    def obj(self, depth=0, n=None):
        n = self.r.randint(0, 4) if n is None else n
        return {self.key(): self.value(depth) for _ in range(n)}

    def maybe(self, content, key, value, p=0.6):
        if self.chance(p):
            content[key] = value

    # ---- content per type ----

    def member_content(self):
        c = self.obj(n=self.r.randint(0, 2))
        self.maybe(c, "membership",
                   self.r.choice(["join", "invite", "leave", "ban", "knock", self.text(3)]), 0.9)
        self.maybe(c, "displayname", self.text())
        self.maybe(c, "join_authorised_via_users_server",
                   self.user() if self.chance(0.8) else self.value(), 0.3)
        if self.chance(0.3):
            tpi = self.r.choice([
                {"display_name": self.text(), "signed": {"mxid": self.user(), "token": self.text(),
                                                          "signatures": self.obj(n=1)}},
                {"display_name": self.text()},
                {"signed": self.value()},
                self.value(),
            ])
            c["third_party_invite"] = tpi
        return c

    def create_content(self):
        c = self.obj(n=self.r.randint(0, 2))
        self.maybe(c, "creator", self.user(), 0.7)
        self.maybe(c, "room_version", self.r.choice(VERSIONS + [self.text(2)]))
        self.maybe(c, "m.federate", self.chance(0.5), 0.3)
        self.maybe(c, "predecessor", {"room_id": "!" + self.ident(), "event_id": self.hash_id("$")}, 0.3)
        self.maybe(c, "additional_creators", [self.user() for _ in range(self.r.randint(0, 3))], 0.4)
        return c

    def power_levels_content(self):
        c = self.obj(n=self.r.randint(0, 2))
        for k in PL_KEYS:
            if not self.chance(0.6):
                continue
            if k in ("events", "notifications"):
                c[k] = {self.r.choice(TYPES_STATE + TYPES_MESSAGE + ["room"]): self.integer()
                        for _ in range(self.r.randint(0, 3))}
            elif k == "users":
                c[k] = {self.user(): self.integer() for _ in range(self.r.randint(0, 3))}
            else:
                c[k] = self.integer() if self.chance(0.8) else str(self.r.randint(0, 100))
        return c

    def content(self, etype):
        if etype == "m.room.member":
            return self.member_content()
        if etype == "m.room.create":
            return self.create_content()
        if etype == "m.room.power_levels":
            return self.power_levels_content()
        c = self.obj()
        if etype == "m.room.join_rules":
            self.maybe(c, "join_rule", self.r.choice(["public", "invite", "knock", "restricted",
                                                       "knock_restricted", "private"]), 0.9)
            self.maybe(c, "allow", [{"type": "m.room_membership", "room_id": "!" + self.ident()}])
        elif etype == "m.room.aliases":
            self.maybe(c, "aliases", ["#" + self.ident() + ":example.org"], 0.9)
        elif etype == "m.room.history_visibility":
            self.maybe(c, "history_visibility", self.r.choice(["shared", "joined", "invited"]), 0.9)
        elif etype == "m.room.redaction":
            self.maybe(c, "redacts", self.hash_id("$"))
            self.maybe(c, "reason", self.text())
        return c

    # ---- the whole event ----

    def room_id(self):
        if self.rv.msc4291_room_ids_as_hashes:
            return self.hash_id("!")
        return f"!{self.ident('abcdefghijklmnopqrstuvwxyzABCDEF0123456789')}:{self.r.choice(SERVERS)}"

    def event(self):
        state = self.chance(0.7)
        etype = self.r.choice(TYPES_STATE if state else TYPES_MESSAGE)
        if self.chance(0.05):
            etype = self.id_text(5) or "x"
        ev = {
            "type": etype,
            "sender": self.user(),
            "content": self.content(etype),
            "depth": self.r.randint(0, MAX_SAFE if self.strict else MAX_I64),
            "origin_server_ts": self.r.randint(0, MAX_SAFE),
            "hashes": {"sha256": "placeholder"},
            "signatures": {self.r.choice(SERVERS): {"ed25519:" + self.ident(): self.ident(lo=20, hi=40)}},
            "prev_events": [self.event_ref() for _ in range(self.r.randint(0, 3))],
            "auth_events": [self.event_ref() for _ in range(self.r.randint(0, 3))],
        }
        if state or self.chance(0.2):
            ev["state_key"] = "" if self.chance(0.5) else self.r.choice([self.user(), self.id_text()])
        is_create = etype == "m.room.create" and ev.get("state_key") == ""
        if not (is_create and self.rv.msc4291_room_ids_as_hashes) or self.chance(0.1):
            ev["room_id"] = self.room_id()
        if self.v in ("1", "2"):
            ev["event_id"] = f"${self.ident()}:{self.r.choice(SERVERS)}"
        self.maybe(ev, "origin", self.r.choice(SERVERS), 0.5)
        self.maybe(ev, "membership", self.r.choice(["join", "leave"]), 0.2)
        self.maybe(ev, "prev_state", [], 0.1)
        self.maybe(ev, "redacts", self.hash_id("$"), 0.2 if etype == "m.room.redaction" else 0.05)
        self.maybe(ev, "unsigned", {"age": self.r.randint(0, 1000), "x": self.value()}, 0.3)
        self.maybe(ev, self.ident(lo=3, hi=6) + "_extra", self.value(), 0.2)
        return ev


def b64(data):
    return base64.b64encode(data).decode().rstrip("=")


def synapse_view(version, ev):
    """What Synapse computes for ev: redacted canonical JSON, reference hash,
    and (when Synapse can build the event) its event and room IDs."""
    rv = KNOWN_ROOM_VERSIONS[version]
    red = redact_event_dict(rv, copy.deepcopy(ev))
    red.pop("unsigned", None)  # Synapse keeps age_ts etc. for itself
    hashed = {k: v for k, v in red.items() if k not in ("signatures", "age_ts")}
    out = {"redacted": encode_canonical_json(red).decode(),
           "ref": b64(hashlib.sha256(encode_canonical_json(hashed)).digest())}
    try:
        event = make_event_from_dict(copy.deepcopy(ev), rv)
    except Exception:  # Synapse refuses it (e.g. a v12 create with room_id)
        return out
    try:
        out["ref_synapse"] = b64(compute_event_reference_hash(event)[1])
    except ValueError:
        # Synapse cannot re-read its own redaction of a v12 m.room.create
        # with a non-empty state_key (the redaction drops room_id).
        pass
    out["event_id"] = event.event_id
    out["room_id"] = event.room_id
    return out


def find_tool(arg):
    if arg:
        return arg
    if os.environ.get("ROOMS_HASH"):
        return os.environ["ROOMS_HASH"]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = sorted(glob.glob(os.path.join(root, "build*", "bin", "rooms_hash")))
    if not found:
        print("rooms_diff: no rooms_hash binary; build the rooms_hash target", file=sys.stderr)
        sys.exit(2)
    return found[0]


def compare(version, ev, ours, syn, hash_right):
    """The list of differences (empty when all agree)."""
    diffs = []
    if "error" in ours:
        return [f"tool refused the input line: {ours['error']}"]
    if ours.get("redacted") != syn["redacted"]:
        diffs.append(f"redacted: ours {ours.get('redacted') or ours.get('redact_error')}\n"
                     f"      synapse {syn['redacted']}")
    if ours.get("ref") != syn["ref"]:
        diffs.append(f"reference hash: ours {ours.get('ref') or ours.get('ref_error')} "
                     f"synapse {syn['ref']}")
    if "ref_synapse" in syn and syn["ref_synapse"] != syn["ref"]:
        diffs.append("harness: compute_event_reference_hash disagrees with redact_event_dict")
    if "parse_error" in ours:
        diffs.append(f"we refused a valid event: {ours['parse_error']}")
        return diffs
    if "event_id" in syn:
        if version not in ("1", "2") and ours.get("event_id") != syn["event_id"]:
            diffs.append(f"event_id: ours {ours.get('event_id')} synapse {syn['event_id']}")
        if ours.get("room_id") != syn["room_id"]:
            diffs.append(f"room_id: ours {ours.get('room_id')} synapse {syn['room_id']}")
    if ours.get("content_hash_ok") != hash_right:
        diffs.append(f"content hash check said {ours.get('content_hash_ok')}, expected {hash_right}")
    return diffs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tool")
    ap.add_argument("--per-version", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--show", type=int, default=5, help="failures to print in full")
    args = ap.parse_args()
    rng = random.Random(args.seed)

    cases = []
    for version in VERSIONS:
        gen = Gen(rng, version)
        for _ in range(args.per_version):
            ev = gen.event()
            hash_right = rng.random() < 0.75
            if hash_right:
                ev["hashes"]["sha256"] = b64(compute_content_hash(ev, hashlib.sha256)[1])
            else:
                ev["hashes"]["sha256"] = b64(hashlib.sha256(gen.text().encode()).digest())
            cases.append((version, ev, hash_right))

    lines = "".join(json.dumps({"version": v, "event": ev}, ensure_ascii=False) + "\n"
                    for v, ev, _ in cases)
    proc = subprocess.run([find_tool(args.tool)], input=lines.encode(), capture_output=True)
    outputs = proc.stdout.decode().split("\n")[:-1]  # not splitlines: U+2028 is data
    if proc.returncode != 0 or len(outputs) != len(cases):
        print(f"rooms_diff: tool failed (status {proc.returncode}, {len(outputs)} of "
              f"{len(cases)} answers): {proc.stderr.decode()[:500]}", file=sys.stderr)
        print(f"rooms_diff: 0 passed, {len(cases)} failed")
        sys.exit(1)

    passed = failed = 0
    for (version, ev, hash_right), line in zip(cases, outputs):
        diffs = compare(version, ev, json.loads(line), synapse_view(version, ev), hash_right)
        if not diffs:
            passed += 1
            continue
        failed += 1
        if failed <= args.show:
            print(f"--- v{version}: {json.dumps(ev, ensure_ascii=False)}")
            for d in diffs:
                print("  " + d)
    print(f"rooms_diff: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
