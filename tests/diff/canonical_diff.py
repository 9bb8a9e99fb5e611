#!/usr/bin/python3
"""canonical_diff.py — pvyhs's canonical JSON, signing and content hashing
against Python's canonicaljson and signedjson (what Synapse uses), byte for byte.

Generates random JSON objects from a fixed seed (unicode from every plane,
control characters, escapes, nesting, integers up to ±(2^53-1), empty
containers, U+0000), writes each in a randomly chosen but equivalent spelling
(whitespace, key order, \\u escapes, surrogate pairs, "\\/", "-0", "1e2"), and
runs tests/tools/core_canon over all of them in four modes:

  canonical   C output == canonicaljson.encode_canonical_json
  --sign      C output == signedjson.sign_json (ed25519 is deterministic, so
              the signatures themselves must be identical), and Python
              verifies what C signed
  --verify    C verifies what Python signed, still verifies after "unsigned"
              changes, and rejects it after a signed member changes
  --hash      C content hash == sha256 of the canonical JSON without
              unsigned/signatures/hashes

One object in 25 carries a value that pvyhs must refuse where Python does not
(a fraction, an integer outside ±(2^53-1), U+0000 in a key); for those the
expected answer is M_BAD_JSON. Run with /usr/bin/python3 (Debian's packages).
Exits 1 on any mismatch; the last line is "canonical_diff: N passed, M failed".
"""
import argparse
import copy
import hashlib
import json
import os
import random
import subprocess
import sys
import time

from canonicaljson import encode_canonical_json
from signedjson.key import decode_signing_key_base64, get_verify_key, encode_verify_key_base64
from signedjson.sign import sign_json, verify_signed_json, SignatureVerifyException
from unpaddedbase64 import encode_base64

MAX_SAFE = 2**53 - 1
SEED_B64 = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"  # the spec's test vector key
ENTITY = "domain"
POISON_EVERY = 25


class Poison:
    """A value Python encodes but pvyhs must refuse: raw is its JSON spelling,
    value what Python makes of it, parse_fails whether jansson already refuses
    it while parsing (rather than when writing canonical JSON)."""

    def __init__(self, raw, value, parse_fails):
        self.raw = raw
        self.value = value
        self.parse_fails = parse_fails


# ---- random values ----------------------------------------------------------

def rand_char(rng):
    pick = rng.random()
    if pick < 0.45:
        return chr(rng.randint(0x20, 0x7E))
    if pick < 0.55:
        return chr(rng.randint(0x00, 0x1F))
    if pick < 0.62:
        return rng.choice('"\\/\x7f\u2028\u2029\ufeff\uffff\u0080\u00e9')
    if pick < 0.75:
        return chr(rng.randint(0x80, 0x7FF))
    if pick < 0.88:
        c = rng.randint(0x800, 0xFFFF)
        return chr(c) if not 0xD800 <= c <= 0xDFFF else "\ue000"
    return chr(rng.randint(0x10000, 0x10FFFF))


def rand_string(rng, allow_nul=True):
    n = rng.choice([0, 1, 2, 3, 5, 8, 13]) if rng.random() < 0.95 else rng.randint(50, 400)
    s = "".join(rand_char(rng) for _ in range(n))
    return s if allow_nul else s.replace("\x00", "\x01")


def rand_int(rng):
    pick = rng.random()
    if pick < 0.4:
        return rng.randint(-10, 10)
    if pick < 0.55:
        return rng.choice([0, MAX_SAFE, -MAX_SAFE, MAX_SAFE - 1, -MAX_SAFE + 1,
                           2**31, -(2**31), 2**32, 2**31 - 1, 10**15, -(10**15)])
    if pick < 0.8:
        return rng.randint(-MAX_SAFE, MAX_SAFE)
    return rng.randint(-(10 ** rng.randint(1, 15)), 10 ** rng.randint(1, 15))


def rand_value(rng, depth):
    pick = rng.random()
    if depth > 5 or pick < 0.55:
        scalar = rng.random()
        if scalar < 0.45:
            return rand_string(rng)
        if scalar < 0.85:
            return rand_int(rng)
        return rng.choice([True, False, None])
    if pick < 0.75:
        return [rand_value(rng, depth + 1) for _ in range(rng.choice([0, 0, 1, 2, 3, 5]))]
    return rand_object(rng, depth + 1)


def rand_object(rng, depth):
    obj = {}
    for _ in range(rng.choice([0, 1, 2, 3, 4, 6, 9])):
        obj[rand_string(rng, allow_nul=False)] = rand_value(rng, depth)
    return obj


def rand_top(rng):
    """A top-level object, sometimes with the members signing treats apart."""
    obj = rand_object(rng, 0)
    if rng.random() < 0.3:
        obj["unsigned"] = rand_value(rng, 3)
    if rng.random() < 0.3:
        obj["hashes"] = rand_value(rng, 3)
    if rng.random() < 0.3:
        obj["signatures"] = {
            rng.choice([ENTITY, "other.example", rand_string(rng, False)]): {
                rng.choice(["ed25519:1", "ed25519:old", "ed25519:x"]): rand_string(rng)
            }
            for _ in range(rng.randint(0, 2))
        }
    keys = list(obj)
    rng.shuffle(keys)  # insertion order must not matter
    return {k: obj[k] for k in keys}


def poison(rng, obj):
    """Plant a value pvyhs must refuse somewhere in obj."""
    kind = rng.randrange(5)
    if kind == 0:
        raw = rng.choice(["1.5", "-0.25", "3.14159", "1e-3", "2.5e-1", "9007199254740993.0"])
        bad = Poison(raw, float(raw), False)
    elif kind in (1, 2):
        n = rng.randint(MAX_SAFE + 1, 2**63 - 1) * (1 if kind == 1 else -1)
        bad = Poison(str(n), n, False)
    elif kind == 3:
        n = rng.randint(2**64, 2**80)  # beyond int64: jansson refuses it
        bad = Poison(str(n), n, True)
    else:
        bad = Poison("1", 1, True)  # the key below holds U+0000: jansson refuses it
    # Not inside the members that signing or hashing leave out.
    skip = ("signatures", "unsigned", "hashes")
    target = obj
    while rng.random() < 0.5:
        inner = [v for k, v in target.items() if isinstance(v, dict) and k not in skip]
        if not inner:
            break
        target = rng.choice(inner)
    key = ("bad\x00" if kind == 4 else "bad") + rand_string(rng, False)
    target[key] = bad
    return obj


# ---- writing a document in a random but equivalent spelling -----------------

SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                 "\r": "\\r", "\t": "\\t"}


def u_escape(rng, c):
    def one(cp):
        h = "%04x" % cp
        return "\\u" + (h.upper() if rng.random() < 0.5 else h)
    cp = ord(c)
    if cp < 0x10000:
        return one(cp)
    cp -= 0x10000
    return one(0xD800 + (cp >> 10)) + one(0xDC00 + (cp & 0x3FF))


def spell_string(rng, s):
    out = ['"']
    for c in s:
        r = rng.random()
        if c in SHORT_ESCAPES and (r < 0.7 or c in '"\\'):
            out.append(SHORT_ESCAPES[c] if r < 0.7 else u_escape(rng, c))
        elif ord(c) < 0x20 or r < 0.1:
            out.append(u_escape(rng, c))
        elif c == "/" and r < 0.5:
            out.append("\\/")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def spell_int(rng, n):
    r = rng.random()
    if n == 0 and r < 0.3:
        return "-0"
    if r < 0.03 and n != 0 and n % 100 == 0:
        # A whole number written as a real: the spec's {"b":1e10} example.
        m, e = n, 0
        while m % 10 == 0:
            m, e = m // 10, e + 1
        return "%de%d" % (m, e) if rng.random() < 0.5 else "%d.0" % n
    return str(n)


def ws(rng):
    return "" if rng.random() < 0.7 else rng.choice([" ", "  ", "\t", "\r", " \t "])


def spell(rng, v):
    if isinstance(v, Poison):
        return v.raw
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return spell_int(rng, v)
    if isinstance(v, str):
        return spell_string(rng, v)
    if isinstance(v, list):
        return "[" + ws(rng) + ("," + ws(rng)).join(spell(rng, x) for x in v) + ws(rng) + "]"
    members = (ws(rng) + spell_string(rng, k) + ws(rng) + ":" + ws(rng) + spell(rng, x) + ws(rng)
               for k, x in v.items())
    return "{" + ",".join(members) + "}"


def line(rng, v):
    return (ws(rng) + spell(rng, v) + ws(rng)).encode("utf-8")


# ---- what Python says -------------------------------------------------------

def has_poison(v):
    if isinstance(v, Poison):
        return True
    if isinstance(v, dict):
        return any(has_poison(x) for x in v.values())
    if isinstance(v, list):
        return any(has_poison(x) for x in v)
    return False


def parse_fails(v):
    if isinstance(v, Poison):
        return v.parse_fails
    if isinstance(v, dict):
        return any(parse_fails(x) for x in v.values())
    if isinstance(v, list):
        return any(parse_fails(x) for x in v)
    return False


def unpoison(v):
    if isinstance(v, Poison):
        return v.value
    if isinstance(v, dict):
        return {k: unpoison(x) for k, x in v.items()}
    if isinstance(v, list):
        return [unpoison(x) for x in v]
    return v


def repoison(v, like):
    """v (Python-signed) with like's Poison markers back in, for spelling."""
    if isinstance(like, Poison):
        return like
    if isinstance(v, dict) and isinstance(like, dict):
        return {k: repoison(x, like.get(k)) for k, x in v.items()}
    if isinstance(v, list) and isinstance(like, list):
        return [repoison(x, y) for x, y in zip(v, like)]
    return v


def py_sign(obj, key):
    signed = sign_json(unpoison(obj), ENTITY, key)
    # signedjson (like the spec's sketch) drops "unsigned": null; pvyhs keeps
    # members it did not sign, whatever their value.
    if "unsigned" in obj and obj["unsigned"] is None:
        signed["unsigned"] = None
    return signed


def py_hash(obj):
    stripped = {k: v for k, v in obj.items() if k not in ("unsigned", "signatures", "hashes")}
    return encode_base64(hashlib.sha256(encode_canonical_json(stripped)).digest()).encode()


# ---- running the C side -----------------------------------------------------

def run_tool(tool, args, lines):
    proc = subprocess.run([tool] + args, input=b"\n".join(lines) + b"\n",
                          stdout=subprocess.PIPE, check=True)
    out = proc.stdout.split(b"\n")
    if out[-1] != b"" or len(out) - 1 != len(lines):
        raise SystemExit("core_canon %s: %d lines in, %d out" % (args, len(lines), len(out) - 1))
    return out[:-1]


def default_tool():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    dirs = [os.environ["PVYHS_BUILD"]] if os.environ.get("PVYHS_BUILD") else []
    for d in dirs + ["build", "build-core", "build-core-asan"]:
        p = os.path.join(root, d, "bin", "core_canon")
        if os.path.exists(p):
            return p
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tool", default=default_tool(), help="path to core_canon")
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument("--show", type=int, default=10, help="failures to print in full")
    args = ap.parse_args()
    if not args.tool:
        raise SystemExit("canonical_diff: core_canon not found; build it or pass --tool")

    started = time.monotonic()
    rng = random.Random(args.seed)
    key = decode_signing_key_base64("ed25519", "1", SEED_B64)
    vk_b64 = encode_verify_key_base64(get_verify_key(key))
    objs = []
    for i in range(args.count):
        obj = rand_top(rng)
        objs.append(poison(rng, obj) if i % POISON_EVERY == POISON_EVERY - 1 else obj)

    # Expected answers, and the inputs for each mode.
    inputs, verify_in, expect = [], [], []
    for obj in objs:
        inputs.append(line(rng, obj))
        if has_poison(obj):
            # Python signs it; pvyhs must refuse it, whatever the signature.
            err = b"ERROR M_BAD_JSON"
            verify_err = err if parse_fails(obj) else b"FAIL M_BAD_JSON"
            verify_in += [line(rng, repoison(py_sign(obj, key), obj))] * 3
            expect.append(dict(canon=err, sign=err, hash=err, verify=[verify_err] * 3))
            continue
        signed = py_sign(obj, key)
        resigned = copy.deepcopy(signed)
        resigned["unsigned"] = {"age_ts": rng.randint(0, 10**12)}  # not covered
        tampered = copy.deepcopy(signed)
        tampered["tampered"] = rand_value(rng, 3)                 # covered
        verify_in += [line(rng, signed), line(rng, resigned), line(rng, tampered)]
        expect.append(dict(canon=encode_canonical_json(obj),
                           sign=encode_canonical_json(signed), hash=py_hash(obj),
                           verify=[b"OK", b"OK", b"FAIL M_UNAUTHORIZED"]))
    generated = time.monotonic()

    got_canon = run_tool(args.tool, [], inputs)
    got_sign = run_tool(args.tool, ["--sign", SEED_B64, "--entity", ENTITY], inputs)
    got_hash = run_tool(args.tool, ["--hash"], inputs)
    got_verify = run_tool(args.tool, ["--verify", vk_b64, "--entity", ENTITY], verify_in)
    ran = time.monotonic()

    passed = failed = 0
    for i, (obj, exp) in enumerate(zip(objs, expect)):
        problems = []
        for mode, got in (("canonical", got_canon[i]), ("sign", got_sign[i]),
                          ("hash", got_hash[i])):
            want = exp["canon" if mode == "canonical" else mode]
            if got != want:
                problems.append("%s:\n    input %r\n    C     %r\n    py    %r"
                                % (mode, inputs[i], got, want))
        for j in range(3):
            if got_verify[3 * i + j] != exp["verify"][j]:
                problems.append("verify #%d:\n    input %r\n    C     %r\n    want  %r"
                                % (j, verify_in[3 * i + j], got_verify[3 * i + j], exp["verify"][j]))
        if not has_poison(obj) and got_sign[i] == exp["sign"]:
            try:  # Python verifies what C signed (the bytes equal, but check anyway)
                verify_signed_json(json.loads(got_sign[i]), ENTITY, get_verify_key(key))
            except SignatureVerifyException as e:
                problems.append("python verify of C signature: %s" % e)
        if problems:
            failed += 1
            if failed <= args.show:
                print("object %d:\n  %s" % (i, "\n  ".join(problems)))
        else:
            passed += 1

    done = time.monotonic()
    print("canonical_diff: seed %d, %d objects (%d must be refused), %d C lines; "
          "generate %.1fs, C %.2fs, compare %.1fs"
          % (args.seed, len(objs), sum(map(has_poison, objs)),
             3 * len(inputs) + len(verify_in), generated - started, ran - generated, done - ran))
    print("canonical_diff: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
