"""Media over federation: /_matrix/federation/v1/media/download and
/thumbnail answer a signed request from another server with multipart/mixed
(metadata, then the content), and nothing unsigned; a local user's download
of another server's mxc URI fetches it that way, caches it (encrypted like
local media) and serves it, thumbnails included."""
import email.parser
import io
import os
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from harness import free_port, http
from test_federation_transport import (FedServer, https, pki, stop_clean,  # noqa: F401
                                       xmatrix_header)


@pytest.fixture(scope="module")
def pair(pki):  # noqa: F811
    a = FedServer(pki, prefix="medfa")
    b = FedServer(pki, prefix="medfb")
    a.start()
    b.start()
    b.add_user("medf_bob")
    b.tok = b.login("medf_bob")
    a.add_user("medf_alice")
    a.tok = a.login("medf_alice")
    yield a, b
    stop_clean(a, b)
    for s in (a, b):
        s.__exit__(None, None, None)


def signed_get(pki, frm, to, path):  # noqa: F811
    auth = xmatrix_header(frm.signing_key(), frm.server_name, to.server_name, "GET", path)
    return https(pki, to.fed_base, "GET", path, headers={"Authorization": auth})


def parts(resp):
    ctype = resp.headers["Content-Type"]
    assert ctype.startswith("multipart/mixed; boundary="), ctype
    msg = email.parser.BytesParser().parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + resp.raw)
    return [(p.get_content_type(), p.get("Content-Disposition"), p.get_payload(decode=True))
            for p in msg.get_payload()]


def upload(b, data, ctype, name=None):
    q = "?filename=" + urllib.parse.quote(name) if name else ""
    r = http(b.base, "POST", "/_matrix/media/v3/upload" + q, raw=data, token=b.tok,
             headers={"Content-Type": ctype})
    assert r.status == 200, r
    return r.json["content_uri"].rsplit("/", 1)[1]


def test_download_over_federation(pair, pki):  # noqa: F811
    a, b = pair
    data = os.urandom(300_000)
    mid = upload(b, data, "application/pdf", "report.pdf")
    r = signed_get(pki, a, b, f"/_matrix/federation/v1/media/download/{mid}")
    assert r.status == 200, r.raw[:300]
    (t1, _, meta), (t2, disp, body) = parts(r)
    assert t1 == "application/json" and meta == b"{}"
    assert t2 == "application/pdf" and disp == "attachment; filename=report.pdf"
    assert body == data
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_thumbnail_over_federation(pair, pki):  # noqa: F811
    a, b = pair
    buf = io.BytesIO()
    Image.effect_noise((640, 480), 40).convert("RGB").save(buf, "JPEG")
    mid = upload(b, buf.getvalue(), "image/jpeg")
    path = f"/_matrix/federation/v1/media/thumbnail/{mid}?width=96&height=96&method=crop"
    for _ in range(2):  # made, then from the store
        r = signed_get(pki, a, b, path)
        assert r.status == 200, r.raw[:300]
        (_, _, meta), (t2, disp, body) = parts(r)
        assert meta == b"{}" and t2 == "image/jpeg" and disp.startswith("inline")
        assert Image.open(io.BytesIO(body)).size == (96, 96)


def test_federation_media_needs_a_signature_and_existing_media(pair, pki):  # noqa: F811
    a, b = pair
    mid = upload(b, b"x", "text/plain")
    r = https(pki, b.fed_base, "GET", f"/_matrix/federation/v1/media/download/{mid}")
    assert r.status == 401
    r = signed_get(pki, a, b, "/_matrix/federation/v1/media/download/NoSuchMedia")
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    # Quarantined media is refused to other servers too.
    assert b.cli("media", "quarantine", "--config", b.config, f"{b.server_name}/{mid}").returncode == 0
    r = signed_get(pki, a, b, f"/_matrix/federation/v1/media/download/{mid}")
    assert r.status == 404


def test_remote_media_is_fetched_cached_and_served(pair, pki):  # noqa: F811
    a, b = pair
    data = os.urandom(700_000)  # several 64 KiB messages, several TLS records
    mid = upload(b, data, "audio/ogg", "voice message.ogg")
    path = f"/_matrix/client/v1/media/download/{b.server_name}/{mid}"
    r = http(a.base, "GET", path, token=a.tok)
    assert r.status == 200, r
    assert r.raw == data
    assert r.headers["Content-Type"] == "audio/ogg"
    assert r.headers["Content-Disposition"] == "inline; filename*=utf-8''voice%20message.ogg"
    row = a.psql(f"SELECT remote, authenticated, length FROM media WHERE media_id = '{mid}'")
    assert row == f"t|t|{len(data)}"
    # From the cache now: B no longer needs to be asked.
    b.cli("media", "quarantine", "--config", b.config, f"{b.server_name}/{mid}")
    r = http(a.base, "GET", path, token=a.tok)
    assert r.status == 200 and r.raw == data
    # A thumbnail of remote media is made from the cached original.
    buf = io.BytesIO()
    Image.effect_noise((500, 400), 40).convert("RGB").save(buf, "PNG")
    pid = upload(b, buf.getvalue(), "image/png")
    r = http(a.base, "GET", f"/_matrix/client/v1/media/thumbnail/{b.server_name}/{pid}"
             "?width=32&height=32&method=crop", token=a.tok)
    assert r.status == 200 and Image.open(io.BytesIO(r.raw)).size == (32, 32)
    # Cached after the freeze: never served unauthenticated.
    r = http(a.base, "GET", f"/_matrix/media/v3/download/{b.server_name}/{mid}")
    assert r.status == 404


def test_remote_media_errors(pair, pki):  # noqa: F811
    a, b = pair
    r = http(a.base, "GET", f"/_matrix/client/v1/media/download/{b.server_name}/NoSuchMedia",
             token=a.tok)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    mid = upload(b, b"quarantined", "text/plain")
    b.cli("media", "quarantine", "--config", b.config, f"{b.server_name}/{mid}")
    r = http(a.base, "GET", f"/_matrix/client/v1/media/download/{b.server_name}/{mid}", token=a.tok)
    assert r.status == 404
    # Legacy download with allow_remote=false never asks B.
    r = http(a.base, "GET", f"/_matrix/media/v3/download/{b.server_name}/x?allow_remote=false")
    assert r.status == 404
    # A server that is not there: 502.
    r = http(a.base, "GET", "/_matrix/client/v1/media/download/localhost:1/abc", token=a.tok)
    assert r.status == 502, r


def test_legacy_endpoint_only_for_servers_without_federation_media(pair, pki):  # noqa: F811
    """A server that does not know /_matrix/federation/v1/media/download
    (404 M_UNRECOGNIZED, or 404 without JSON, as older servers answer) is
    asked on the legacy /_matrix/media/v3/download; a 404 M_NOT_FOUND is an
    answer about the media, and the legacy endpoint is not asked."""
    a, _ = pair
    port = free_port()
    name = f"localhost:{port}"
    asked = []

    class Old(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def send(self, status, body, ctype="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?")[0]
            asked.append(path)
            mid = path.rsplit("/", 1)[1]
            if path.startswith("/_matrix/federation/v1/media/download/"):
                if mid == "plain404":
                    return self.send(404, b"<html>Not Found</html>", "text/html")
                if mid == "gone":
                    return self.send(404, b'{"errcode":"M_NOT_FOUND","error":"Not found"}')
                return self.send(404, b'{"errcode":"M_UNRECOGNIZED","error":"Unrecognized"}')
            if path.startswith(f"/_matrix/media/v3/download/{name}/"):
                return self.send(200, f"legacy bytes of {mid}".encode(), "text/plain")
            self.send(404, b'{"errcode":"M_UNRECOGNIZED","error":"Unrecognized"}')

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Old)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        for mid in ("unrecognized", "plain404"):
            r = http(a.base, "GET", f"/_matrix/client/v1/media/download/{name}/{mid}",
                        token=a.tok)
            assert r.status == 200 and r.raw == f"legacy bytes of {mid}".encode(), r
        asked.clear()
        r = http(a.base, "GET", f"/_matrix/client/v1/media/download/{name}/gone", token=a.tok)
        assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r
        assert asked == ["/_matrix/federation/v1/media/download/gone"]
    finally:
        httpd.shutdown()
        httpd.server_close()
