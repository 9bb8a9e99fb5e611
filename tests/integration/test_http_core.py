"""The HTTP core as clients see it: routing, errors, CORS, JSON bodies, auth."""
import hashlib
import json
import socket
import time

LOGIN = "/_matrix/client/v3/login"


def test_versions_is_json_with_cors(server):
    r = server.request("GET", "/_matrix/client/versions")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json"
    assert isinstance(r.json["versions"], list)
    # Every stable version from v1.1 to the current one, v1.19.
    assert [v for v in r.json["versions"] if v.startswith("v")] == [f"v1.{n}" for n in range(1, 20)]
    assert isinstance(r.json["unstable_features"], dict)
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]


def test_options_preflight(server):
    r = server.request("OPTIONS", "/_matrix/client/v3/rooms/!x:y/send/m.room.message/1",
                       headers={"Origin": "https://app.element.io",
                                "Access-Control-Request-Method": "PUT"})
    assert r.status == 200
    # v1.13 (MSC4138): exactly these methods.
    methods = [m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")]
    assert sorted(methods) == sorted(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"])
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_head_is_get_without_body(server):
    # HEAD, advertised above, answers as GET does, with headers and no body.
    r = server.request("HEAD", "/_matrix/client/versions")
    assert r.status == 200 and r.raw == b""
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Content-Type"].startswith("application/json")


def test_unknown_endpoint_and_wrong_method(server):
    r = server.request("GET", "/_matrix/client/v3/no/such/thing")
    assert r.status == 404 and r.json["errcode"] == "M_UNRECOGNIZED"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    r = server.request("DELETE", "/_matrix/client/versions")
    assert r.status == 405 and r.json["errcode"] == "M_UNRECOGNIZED"


def test_well_known_and_health(server):
    r = server.request("GET", "/.well-known/matrix/client")
    assert r.json == {"m.homeserver": {"base_url": f"http://localhost:{server.port}/"}}
    r = server.request("GET", "/.well-known/matrix/server")
    assert r.json == {"m.server": f"localhost:{server.port}"}
    r = server.request("GET", "/health")
    assert r.status == 200 and r.raw == b"OK"


def test_missing_and_unknown_token(server):
    r = server.request("GET", "/_matrix/client/v3/account/whoami")
    assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN"
    r = server.request("GET", "/_matrix/client/v3/account/whoami", token="nope")
    assert r.status == 401 and r.json["errcode"] == "M_UNKNOWN_TOKEN"
    assert r.json["soft_logout"] is False


def test_login_whoami_header_query_and_r0(server):
    uid = server.add_user("whoami")
    tok = server.login("whoami", device_id="DEV1")
    r = server.request("GET", "/_matrix/client/v3/account/whoami", token=tok)
    assert r.status == 200
    assert r.json == {"user_id": uid, "device_id": "DEV1", "is_guest": False}
    r = server.request("GET", "/_matrix/client/v3/account/whoami?access_token=" + tok)
    assert r.status == 200 and r.json["user_id"] == uid
    r = server.request("GET", "/_matrix/client/r0/account/whoami", token=tok)
    assert r.status == 200 and r.json["user_id"] == uid
    # The database holds only the token's hash.
    assert server.psql("SELECT count(*) FROM access_tokens WHERE token_hash = '\\x"
                       + hashlib.sha256(tok.encode()).hexdigest() + "'") == "1"
    assert tok not in server.psql("SELECT string_agg(encode(token_hash, 'escape'), ',') "
                                  "FROM access_tokens")


def test_expired_token_is_soft_logout(server):
    server.add_user("expiry")
    tok = server.login("expiry")
    h = hashlib.sha256(tok.encode()).hexdigest()
    server.psql(f"UPDATE access_tokens SET valid_until_ts = 1 WHERE token_hash = '\\x{h}'")
    r = server.request("GET", "/_matrix/client/v3/account/whoami", token=tok)
    assert r.status == 401 and r.json["errcode"] == "M_UNKNOWN_TOKEN"
    assert r.json["soft_logout"] is True


def test_logout_revokes_token(server):
    server.add_user("leaver")
    tok = server.login("leaver")
    assert server.request("POST", "/_matrix/client/v3/logout", token=tok).status == 200
    r = server.request("GET", "/_matrix/client/v3/account/whoami", token=tok)
    assert r.status == 401 and r.json["errcode"] == "M_UNKNOWN_TOKEN"


def test_login_errors(server):
    server.add_user("pw")
    r = server.request("POST", LOGIN, {"type": "m.login.password", "user": "pw", "password": "x"})
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = server.request("POST", LOGIN, {"type": "m.login.password", "user": "nobody",
                                       "password": "x"})
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = server.request("POST", LOGIN, {"type": "m.login.fancy"})
    assert r.status == 400 and r.json["errcode"] == "M_UNKNOWN"
    assert server.request("GET", LOGIN).json == {"flows": [{"type": "m.login.password"}]}


def test_bad_json_bodies(server):
    for raw, code in [(b"{", "M_NOT_JSON"), (b"not json", "M_NOT_JSON"),
                      (b"\xff\xfe{}", "M_NOT_JSON"),
                      (b'{"type": "a", "type": "b"}', "M_BAD_JSON"),
                      (b"[1, 2]", "M_BAD_JSON"), (b'"str"', "M_BAD_JSON"),
                      (b'{"a": NaN}', "M_NOT_JSON"), (b'{"a": 1} trailing', "M_NOT_JSON")]:
        r = server.request("POST", LOGIN, raw=raw)
        assert r.status == 400, (raw, r)
        assert r.json["errcode"] == code, (raw, r)


def test_body_too_large(server):
    r = server.request("POST", LOGIN, raw=b'{"a": "' + b"x" * (9 * 1024 * 1024) + b'"}')
    assert r.status == 413 and r.json["errcode"] == "M_TOO_LARGE"


def test_percent_decoding_keeps_slashes_in_params(server):
    # An encoded slash inside a segment must not split the path.
    r = server.request("GET", "/_matrix/key/v2/server/ed25519%2Fx")
    assert r.status == 200


def test_malformed_http_does_not_hurt(server):
    for junk in [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00\x01\x02\x03\r\n\r\n",
                 b"POST /_matrix/client/v3/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{"]:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(junk)
            try:
                s.shutdown(socket.SHUT_WR)
                s.recv(4096)
            except OSError:
                pass
    assert server.request("GET", "/health").status == 200


def test_server_keys_self_signed(server):
    from signedjson.key import decode_verify_key_base64
    from signedjson.sign import verify_signed_json

    r = server.request("GET", "/_matrix/key/v2/server")
    assert r.status == 200
    keys = r.json
    assert keys["server_name"] == server.server_name
    assert keys["valid_until_ts"] > time.time() * 1000
    (key_id, key), = keys["verify_keys"].items()
    assert key_id.startswith("ed25519:")
    algo, version = key_id.split(":", 1)
    vk = decode_verify_key_base64(algo, version, key["key"])
    vk.version = version
    verify_signed_json(keys, server.server_name, vk)  # raises if the signature is wrong


def test_server_keys_signature_holds_on_the_bytes_sent(server):
    """gomatrixserverlib (Complement's TestInboundFederationKeys) checks the
    self-signature against the response bytes with the "signatures" member cut
    out, not against a re-encoding: the body must be canonical JSON."""
    import base64
    import re
    from nacl.signing import VerifyKey

    for path in ["/_matrix/key/v2/server", "/_matrix/key/v2/query/" + server.server_name]:
        r = server.request("GET", path)
        assert r.status == 200
        body = r.json
        assert r.raw == json.dumps(body, sort_keys=True, separators=(",", ":"),
                                   ensure_ascii=False).encode(), path
    r = server.request("GET", "/_matrix/key/v2/server")
    keys = r.json
    (key_id, key), = keys["verify_keys"].items()
    sig = keys["signatures"][server.server_name][key_id]
    # What sjson.DeleteBytes(body, "signatures") leaves: the member and one comma.
    without = re.sub(rb'"signatures":\{"[^"]*":\{"[^"]*":"[^"]*"\}\},', b"", r.raw)
    assert b"signatures" not in without
    unb64 = lambda s: base64.b64decode(s + "=" * (-len(s) % 4))
    VerifyKey(unb64(key["key"])).verify(without, unb64(sig))  # raises if wrong


def test_federation_version(server):
    r = server.request("GET", "/_matrix/federation/v1/version")
    assert r.json["server"]["name"] == "pvyhs"
