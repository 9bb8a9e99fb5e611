"""test_federation_third_party_invite.py — PUT /v1/exchange_third_party_invite:
F (a server played by Python) asks A to turn a third-party invite of A's
room into an invite of F's user, carrying the identity server's signed
{mxid, token}; A checks it with the auth rules, has F sign the invite
(PUT /v2/invite) and stores it.
"""
import copy
import os

from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from unpaddedbase64 import encode_base64

from test_federation_rooms import create_room, fed, q, redact, user  # noqa: F401
from test_federation_transport import pki  # noqa: F401


def third_party_invite(a, atok, room, is_key, display_name):
    token = "tok" + os.urandom(6).hex()
    pk = encode_base64(get_verify_key(is_key).encode())
    url = "https://is.example/_matrix/identity/v2/pubkey/isvalid"
    r = a.request("PUT", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.third_party_invite/{token}",
                  {"display_name": display_name, "key_validity_url": url, "public_key": pk,
                   "public_keys": [{"public_key": pk, "key_validity_url": url}]}, token=atok)
    assert r.status == 200, r.raw
    return token


def redact_v11(ev):
    """Room versions 11+ keep third_party_invite.signed of a member event."""
    out = redact(ev)
    tpi = ev["content"].get("third_party_invite")
    if isinstance(tpi, dict) and "signed" in tpi:
        out["content"]["third_party_invite"] = {"signed": copy.deepcopy(tpi["signed"])}
    return out


def partial(room, sender, target, signed):
    return {"type": "m.room.member", "room_id": room, "sender": sender, "state_key": target,
            "content": {"membership": "invite",
                        "third_party_invite": {"display_name": "whatever", "signed": signed}}}


def test_exchange_third_party_invite(fed):
    a, f = fed["a"], fed["f"]
    alice, atok = user(a, "fed3p_alice")
    room = create_room(a, atok, preset="private_chat")
    is_key = generate_signing_key("0")
    token = third_party_invite(a, atok, room, is_key, "f...@example.org")
    fiona = f.user("fiona3p")
    signed = sign_json({"mxid": fiona, "token": token}, "is.example", is_key)
    got = []

    def invite(method, path, body):
        got.append(body)
        ev = copy.deepcopy(body["event"])
        ev["signatures"].update(sign_json(redact_v11(ev), f.name, f.sk)["signatures"])
        return 200, {"event": ev}
    f.routes["/_matrix/federation/v2/invite/"] = invite
    path = f"/_matrix/federation/v1/exchange_third_party_invite/{q(room)}"
    member = f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(fiona)}"
    try:
        # Refusals first: nothing is asked of F, nobody is invited.
        forged = sign_json({"mxid": fiona, "token": token}, "is.example", generate_signing_key("0"))
        r = f.request(a, "PUT", path, partial(room, alice, fiona, forged))
        assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
        other = sign_json({"mxid": fiona, "token": "nosuchtoken"}, "is.example", is_key)
        r = f.request(a, "PUT", path, partial(room, alice, fiona, other))
        assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
        someone = "@someone:" + a.server_name
        r = f.request(a, "PUT", path, partial(room, alice, someone,
                                             sign_json({"mxid": someone, "token": token},
                                                       "is.example", is_key)))
        assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r.raw
        bad = partial(room, alice, fiona, signed)
        bad["content"]["membership"] = "join"
        r = f.request(a, "PUT", path, bad)
        assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", r.raw
        r = f.request(a, "PUT", f"/_matrix/federation/v1/exchange_third_party_invite/{q('!nope:' + a.server_name)}",
                      dict(partial(room, alice, fiona, signed), room_id="!nope:" + a.server_name))
        assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r.raw
        assert got == []
        assert a.request("GET", member, token=atok).status == 404

        r = f.request(a, "PUT", path, partial(room, alice, fiona, signed))
        assert r.status == 200 and r.json == {}, r.raw
        # F was asked to sign the invite, with the third-party invite's display name.
        (body,) = got
        ev = body["event"]
        assert ev["sender"] == alice and ev["state_key"] == fiona
        assert ev["content"]["third_party_invite"] == {"display_name": "f...@example.org", "signed": signed}
        assert a.server_name in ev["signatures"]
        r = a.request("GET", member, token=atok)
        assert r.status == 200 and r.json["membership"] == "invite", r.raw
        assert r.json["third_party_invite"]["signed"] == signed
    finally:
        f.routes.clear()
