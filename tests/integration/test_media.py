"""The content repository through HTTP and the CLI: uploads (plain, async
create + PUT, streamed with 413 while counting), downloads with safe headers,
thumbnails with libvips, the freeze of the legacy endpoints, quotas, the
admin's quarantine/delete, storage that holds no plaintext and needs the
master key, and a 1 GB round trip in constant memory.

Encrypted attachments as matrix-js-sdk makes them (m.file with an
EncryptedFile) are in test_js_media; to the server they are opaque
application/octet-stream uploads, which test_octet_stream_is_never_decoded
covers here. HEAD and Range requests are in test_media_range."""
import contextlib
import glob
import hashlib
import http.client
import io
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest
from PIL import Image

from harness import Server

V1 = "/_matrix/client/v1/media"
UPLOAD = "/_matrix/media/v3/upload"


# ---- helpers -------------------------------------------------------------

@pytest.fixture(scope="module")
def alice(server):
    server.add_user("media_alice")
    return server.login("media_alice")


@pytest.fixture(scope="module")
def bob(server):
    server.add_user("media_bob")
    return server.login("media_bob")


def upload(server, token, data, ctype="application/octet-stream", filename=None, path=UPLOAD):
    q = "?filename=" + urllib.parse.quote(filename) if filename else ""
    r = server.request("POST", path + q, raw=data, token=token, headers={"Content-Type": ctype})
    assert r.status == 200, r
    uri = r.json["content_uri"]
    assert uri.startswith(f"mxc://{server.server_name}/")
    return uri[len("mxc://"):]


def download(server, token, sid, suffix="", legacy=False):
    base = "/_matrix/media/v3" if legacy else V1
    return server.request("GET", f"{base}/download/{sid}{suffix}", token=token)


def image_bytes(fmt, size=(640, 480), frames=1, **kw):
    buf = io.BytesIO()
    base = tuple(os.urandom(3))  # every image (and so every thumbnail) differs
    imgs = [Image.new("RGB", size, ((base[0] + 40 * i) % 256, base[1], base[2]))
            for i in range(frames)]
    for i, im in enumerate(imgs):  # something that is not flat colour
        for x in range(0, size[0], 7):
            im.putpixel((x, (x * 3 + i) % size[1]), (255, 0, 0))
    if frames > 1:
        imgs[0].save(buf, fmt, save_all=True, append_images=imgs[1:], duration=100, loop=0, **kw)
    else:
        imgs[0].save(buf, fmt, **kw)
    return buf.getvalue()


def raw_request(port, head, body=b"", read_before_body=False, timeout=30):
    """Send an HTTP request by hand; returns (status, response bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(head.encode())
    if read_before_body:
        data = s.recv(65536)
        s.close()
        return int(data.split()[1]), data
    try:
        s.sendall(body)
    except (BrokenPipeError, ConnectionResetError):
        pass
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    return int(data.split()[1]), data


def media_files(server):
    return [p for p in glob.glob(os.path.join(server.dir, "data", "media_store", "blobs", "**"),
                                 recursive=True) if os.path.isfile(p)]


def rows(server, sql):
    out = server.psql(sql)
    return out.splitlines() if out else []


@contextlib.contextmanager
def own_server(extra_yaml=""):
    """A server of this test's own (its config differs), checked like the
    shared one: clean exit, no sanitizer report in its log."""
    s = Server(extra_yaml=extra_yaml)
    try:
        s.start()
        yield s
        rc = s.stop()
        log = s.read_log()
        assert rc == 0, log
        assert "ERROR: AddressSanitizer" not in log and "runtime error:" not in log, log
    finally:
        s.stop()
        shutil.rmtree(s.dir, ignore_errors=True)


# ---- upload and download -------------------------------------------------

def test_upload_download_round_trip_with_safe_headers(server, alice, bob):
    data = b"a picture, in a way\n" * 100
    sid = upload(server, alice, data, "image/png", "holiday.png")
    r = download(server, bob, sid)  # any user may download
    assert r.status == 200 and r.raw == data
    assert r.headers["Content-Type"] == "image/png"
    assert r.headers["Content-Disposition"] == "inline; filename=holiday.png"
    assert r.headers["Content-Security-Policy"].startswith("sandbox;")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert r.headers["Content-Length"] == str(len(data))
    # The name in the path replaces the uploaded one.
    r = download(server, alice, sid, "/other.png")
    assert r.status == 200 and r.headers["Content-Disposition"] == "inline; filename=other.png"


def test_dispositions_follow_the_spec_list(server, alice):
    html = upload(server, alice, b"<script>alert(1)</script>", "text/html", "x.html")
    r = download(server, alice, html)
    assert r.headers["Content-Disposition"] == "attachment; filename=x.html"
    assert r.headers["Content-Security-Policy"].startswith("sandbox")
    svg = upload(server, alice, b"<svg/>", "image/svg+xml")
    assert download(server, alice, svg).headers["Content-Disposition"] == "attachment"
    txt = upload(server, alice, "grüße".encode(), "text/plain", "grüße 1.txt")
    r = download(server, alice, txt)
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["Content-Disposition"] == "inline; filename*=utf-8''gr%C3%BC%C3%9Fe%201.txt"
    # No Content-Type at all: application/octet-stream, an attachment.
    r = server.request("POST", UPLOAD, raw=b"\x00\x01", token=alice,
                       headers={"Content-Type": ""})
    assert r.status == 200, r
    r = download(server, alice, r.json["content_uri"][6:])
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"] == "attachment"


def test_empty_upload_and_r0_v1_paths(server, alice):
    sid = upload(server, alice, b"", "text/plain")
    r = download(server, alice, sid)
    assert r.status == 200 and r.raw == b""
    for path in ("/_matrix/media/r0/upload", "/_matrix/media/v1/upload"):
        sid = upload(server, alice, b"old path", "text/plain", path=path)
        assert download(server, alice, sid).raw == b"old path"


def test_authentication_required(server, alice):
    sid = upload(server, alice, b"x", "text/plain")
    for method, path in (("GET", f"{V1}/download/{sid}"),
                         ("GET", f"{V1}/thumbnail/{sid}?width=32&height=32"),
                         ("GET", f"{V1}/config"), ("GET", f"{V1}/preview_url?url=https://x"),
                         ("GET", "/_matrix/media/v3/config"), ("POST", UPLOAD),
                         ("POST", "/_matrix/media/v1/create"),
                         ("PUT", f"/_matrix/media/v3/upload/{sid}")):
        r = server.request(method, path, raw=b"" if method != "GET" else None)
        assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN", (path, r)
        r = server.request(method, path, token="nope", raw=b"" if method != "GET" else None)
        assert r.status == 401 and r.json["errcode"] == "M_UNKNOWN_TOKEN", (path, r)


def test_unknown_and_malformed_media(server, alice):
    for sid in (f"{server.server_name}/NoSuchMedia", f"{server.server_name}/bad.id"):
        r = download(server, alice, sid)
        assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", (sid, r)
    r = server.request("GET", f"{V1}/download/{server.server_name}/..%2F..%2Fetc", token=alice)
    assert r.status == 404


def test_config_and_preview(server, alice):
    for path in (f"{V1}/config", "/_matrix/media/v3/config", "/_matrix/media/r0/config"):
        r = server.request("GET", path, token=alice)
        assert r.status == 200 and r.json == {"m.upload.size": 50 * 1024 * 1024}, (path, r)
    r = server.request("GET", f"{V1}/preview_url?url=https://matrix.org", token=alice)
    assert r.status == 404 and r.json["errcode"] == "M_UNRECOGNIZED"


def test_same_content_is_stored_once(server, alice, bob):
    data = os.urandom(200_000)
    a = upload(server, alice, data)
    b = upload(server, bob, data, "image/jpeg", "other-name.jpg")
    assert a != b
    addr = rows(server, f"SELECT DISTINCT encode(address, 'hex') FROM media "
                        f"WHERE media_id IN ('{a.split('/')[1]}', '{b.split('/')[1]}')")
    assert len(addr) == 1
    assert len([p for p in media_files(server) if p.endswith(addr[0])]) == 1
    assert download(server, alice, a).raw == data
    r = download(server, alice, b)
    assert r.raw == data and r.headers["Content-Type"] == "image/jpeg"


# ---- asynchronous upload -------------------------------------------------

def test_create_then_upload(server, alice, bob):
    r = server.request("POST", "/_matrix/media/v1/create", {}, token=alice)
    assert r.status == 200, r
    sid = r.json["content_uri"][6:]
    assert r.json["unused_expires_at"] > time.time() * 1000 + 23 * 3600 * 1000
    t0 = time.time()
    r = server.request("GET", f"{V1}/download/{sid}?timeout_ms=600", token=alice)
    assert r.status == 504 and r.json["errcode"] == "M_NOT_YET_UPLOADED"
    assert 0.5 < time.time() - t0 < 5
    # A download waiting while the upload arrives gets the content.
    got = {}
    waiter = threading.Thread(target=lambda: got.update(
        r=server.request("GET", f"{V1}/download/{sid}?timeout_ms=10000", token=bob)))
    waiter.start()
    time.sleep(0.5)
    path = f"/_matrix/media/v3/upload/{sid}?filename=late.txt"
    r = server.request("PUT", path, raw=b"late", token=bob, headers={"Content-Type": "text/plain"})
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    r = server.request("PUT", path, raw=b"late", token=alice, headers={"Content-Type": "text/plain"})
    assert r.status == 200 and r.json == {}
    waiter.join(15)
    assert got["r"].status == 200 and got["r"].raw == b"late"
    assert got["r"].headers["Content-Disposition"] == "inline; filename=late.txt"
    r = server.request("PUT", path, raw=b"again", token=alice)
    assert r.status == 409 and r.json["errcode"] == "M_CANNOT_OVERWRITE_MEDIA"
    r = server.request("PUT", f"/_matrix/media/v3/upload/{server.server_name}/NoSuchId",
                       raw=b"x", token=alice)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    r = server.request("PUT", "/_matrix/media/v3/upload/other.example/abc", raw=b"x", token=alice)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"


def test_pending_uploads_are_limited(server):
    server.add_user("media_pending")
    tok = server.login("media_pending")
    for _ in range(5):
        assert server.request("POST", "/_matrix/media/v1/create", {}, token=tok).status == 200
    r = server.request("POST", "/_matrix/media/v1/create", {}, token=tok)
    assert r.status == 429 and r.json["errcode"] == "M_LIMIT_EXCEEDED"
    assert r.json["retry_after_ms"] > 0


# ---- thumbnails ----------------------------------------------------------

def thumb(server, token, sid, w, h, method="scale", legacy=False, **extra):
    base = "/_matrix/media/v3" if legacy else V1
    q = urllib.parse.urlencode(dict(width=w, height=h, method=method, **extra))
    return server.request("GET", f"{base}/thumbnail/{sid}?{q}", token=token)


@pytest.mark.parametrize("fmt,ctype,out", [("PNG", "image/png", "image/png"),
                                           ("JPEG", "image/jpeg", "image/jpeg"),
                                           ("WEBP", "image/webp", "image/jpeg"),
                                           ("GIF", "image/gif", "image/png")])
def test_thumbnails(server, alice, fmt, ctype, out):
    sid = upload(server, alice, image_bytes(fmt, (1200, 900)), ctype)
    r = thumb(server, alice, sid, 32, 32, "crop")
    assert r.status == 200, r
    assert r.headers["Content-Type"] == out
    assert r.headers["Content-Disposition"].startswith("inline; filename=thumbnail.")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    im = Image.open(io.BytesIO(r.raw))
    assert im.size == (32, 32)
    # scale: the closest configured size at least as big, aspect kept.
    r = thumb(server, alice, sid, 300, 200)
    im = Image.open(io.BytesIO(r.raw))
    assert im.size == (320, 240), im.size
    # Made once, then served from the store (encrypted like the rest).
    again = thumb(server, alice, sid, 300, 200)
    assert again.raw == r.raw
    n = rows(server, f"SELECT count(*) FROM media_thumbnails WHERE media_id = '{sid.split('/')[1]}'")
    assert n == ["2"]


def test_animated_thumbnails(server, alice):
    sid = upload(server, alice, image_bytes("GIF", (400, 300), frames=3), "image/gif")
    r = thumb(server, alice, sid, 96, 96, "crop", animated="true")
    assert r.status == 200 and r.headers["Content-Type"] == "image/webp"
    im = Image.open(io.BytesIO(r.raw))
    assert getattr(im, "n_frames", 1) == 3 and im.size == (96, 96)
    r = thumb(server, alice, sid, 96, 96, "crop", animated="false")
    assert r.headers["Content-Type"] == "image/png"
    assert getattr(Image.open(io.BytesIO(r.raw)), "n_frames", 1) == 1
    r = thumb(server, alice, sid, 96, 96, "crop")  # unset: not animated either
    assert r.headers["Content-Type"] == "image/png"
    # A still image asked for animation gets a still thumbnail.
    jpg = upload(server, alice, image_bytes("JPEG", (400, 300)), "image/jpeg")
    r = thumb(server, alice, jpg, 96, 96, "crop", animated="true")
    assert r.status == 200 and r.headers["Content-Type"] == "image/jpeg"


def test_small_image_is_its_own_thumbnail(server, alice):
    data = image_bytes("PNG", (20, 10))
    sid = upload(server, alice, data, "image/png")
    r = thumb(server, alice, sid, 32, 32, "crop")
    assert r.status == 200 and r.raw == data  # never upscaled


def test_thumbnail_errors(server, alice):
    sid = upload(server, alice, image_bytes("PNG", (100, 100)), "image/png")
    r = server.request("GET", f"{V1}/thumbnail/{sid}?height=32", token=alice)
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM"
    for q in ("width=x&height=32", "width=-3&height=32", "width=32&height=32&method=stretch",
              "width=32&height=32&animated=maybe"):
        r = server.request("GET", f"{V1}/thumbnail/{sid}?{q}", token=alice)
        assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM", (q, r)
    r = thumb(server, alice, f"{server.server_name}/NoSuchMedia", 32, 32)
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"


def test_corrupt_images_get_an_error_not_a_crash(server, alice):
    good = image_bytes("JPEG", (800, 600))
    for junk, ctype, data in ((1, "image/png", b"\x89PNG\r\n\x1a\n" + os.urandom(3000)),
                              (1, "image/jpeg", b"\xff\xd8\xff\xe0" + os.urandom(5000)),
                              (1, "image/gif", b"GIF89a" + os.urandom(100)),
                              (1, "image/webp", b"RIFF\x00\x10\x00\x00WEBPVP8 " + os.urandom(400)),
                              (1, "image/png", b""),
                              (0, "image/jpeg", good[:len(good) // 3])):
        sid = upload(server, alice, data, ctype)
        r = thumb(server, alice, sid, 96, 96, "crop")
        # A truncated JPEG may still decode (libvips fills in the rest); junk must not.
        assert r.status == 400 if junk else r.status in (200, 400), (ctype, r)
        if r.status == 400:
            assert r.json["errcode"] == "M_UNKNOWN"
    assert server.request("GET", "/health").status == 200


def test_octet_stream_is_never_decoded(server, alice):
    # What an E2EE client uploads: ciphertext as application/octet-stream.
    sid = upload(server, alice, image_bytes("PNG", (100, 100)), "application/octet-stream")
    r = thumb(server, alice, sid, 32, 32)
    assert r.status == 400 and r.json["errcode"] == "M_UNKNOWN"


def test_image_pixel_limit(tmp_path):
    with own_server("max_image_pixels: 1000\n") as s:
        s.add_user("media_px")
        tok = s.login("media_px")
        sid = upload(s, tok, image_bytes("PNG", (100, 100)), "image/png")
        r = thumb(s, tok, sid, 32, 32)
        assert r.status == 413 and r.json["errcode"] == "M_TOO_LARGE"


# ---- limits --------------------------------------------------------------

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A server with a 1 MiB upload limit and a 1.5 MiB/day quota."""
    s = Server(extra_yaml="max_upload_size: 1M\n"
                          "media_upload_limits:\n"
                          "  - time_period: 1d\n"
                          "    max_size: 1536K\n")
    s.start()
    s.add_user("media_small")
    s.tok = s.login("media_small")
    yield s
    assert s.stop() == 0
    log = s.read_log()
    assert "ERROR: AddressSanitizer" not in log and "runtime error:" not in log, log
    shutil.rmtree(s.dir, ignore_errors=True)


def test_413_from_content_length_before_the_body(small):
    head = (f"POST {UPLOAD} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {small.tok}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {2 << 20}\r\n"
            "Connection: close\r\nExpect: 100-continue\r\n\r\n")
    status, data = raw_request(small.port, head, read_before_body=True)
    assert status == 413 and b"M_TOO_LARGE" in data
    # Without Expect the body is read and dropped, then the same answer.
    status, data = raw_request(small.port, head.replace("Expect: 100-continue\r\n", ""),
                               b"\0" * (2 << 20))
    assert status == 413 and b"M_TOO_LARGE" in data


def test_413_while_streaming_a_chunked_body(small):
    conn = http.client.HTTPConnection("127.0.0.1", small.port, timeout=60)

    def body():
        for _ in range(40):  # 2.5 MiB in 64 KiB chunks, no Content-Length
            yield b"\1" * 65536

    conn.request("POST", UPLOAD, body=body(), encode_chunked=True,
                 headers={"Authorization": "Bearer " + small.tok,
                          "Content-Type": "application/octet-stream"})
    r = conn.getresponse()
    assert r.status == 413 and b"M_TOO_LARGE" in r.read()
    conn.close()
    # Nothing was kept: no temporary file, no row.
    assert os.listdir(os.path.join(small.dir, "data", "media_store", "tmp")) == []
    assert rows(small, "SELECT count(*) FROM media WHERE address IS NOT NULL") == ["0"]
    # Under the limit, chunked works.
    conn = http.client.HTTPConnection("127.0.0.1", small.port, timeout=60)
    conn.request("POST", UPLOAD, body=iter([b"ab"] * 1000), encode_chunked=True,
                 headers={"Authorization": "Bearer " + small.tok})
    r = conn.getresponse()
    assert r.status == 200
    sid = __import__("json").loads(r.read())["content_uri"][6:]
    assert download(small, small.tok, sid).raw == b"ab" * 1000


def test_upload_cut_off_by_the_client_leaves_nothing(small):
    s = socket.create_connection(("127.0.0.1", small.port), timeout=30)
    s.sendall((f"POST {UPLOAD} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {small.tok}\r\n"
               f"Content-Length: {900 * 1024}\r\n\r\n").encode() + b"\7" * (300 * 1024))
    tmp = os.path.join(small.dir, "data", "media_store", "tmp")
    deadline = time.time() + 10
    while not os.listdir(tmp) and time.time() < deadline:  # the upload has begun
        time.sleep(0.02)
    assert os.listdir(tmp)
    s.close()
    while os.listdir(tmp) and time.time() < deadline:
        time.sleep(0.05)
    assert os.listdir(tmp) == []
    assert small.request("GET", "/health").status == 200


def test_quota(small):
    small.add_user("media_quota")
    tok = small.login("media_quota")
    upload(small, tok, os.urandom(1000 * 1024))
    r = small.request("POST", UPLOAD, raw=os.urandom(600 * 1024), token=tok)
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN"
    upload(small, tok, os.urandom(400 * 1024))  # still fits
    # Known from Content-Length: refused before the body (Expect).
    head = (f"POST {UPLOAD} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n"
            f"Content-Length: {200 * 1024}\r\nConnection: close\r\nExpect: 100-continue\r\n\r\n")
    status, data = raw_request(small.port, head, read_before_body=True)
    assert status == 403 and b"M_FORBIDDEN" in data


# ---- the freeze ----------------------------------------------------------

def test_legacy_endpoints_serve_only_media_from_before_the_freeze():
    with own_server("enable_authenticated_media: false\n") as s:
        s.add_user("media_freeze")
        tok = s.login("media_freeze")
        png = image_bytes("PNG", (300, 300))
        old = upload(s, tok, png, "image/png")
        assert download(s, None, old, legacy=True).raw == png
        assert download(s, None, old, "/n.png", legacy=True).status == 200
        r = s.request("GET", f"/_matrix/media/r0/download/{old}")
        assert r.status == 200 and r.raw == png
        assert thumb(s, None, old, 32, 32, legacy=True).status == 200
        assert s.stop() == 0
        with open(s.config) as f:
            text = f.read()
        with open(s.config, "w") as f:
            f.write(text.replace("enable_authenticated_media: false", ""))
        s.start()
        tok = s.login("media_freeze")
        # From before the freeze: still served without a token.
        assert download(s, None, old, legacy=True).raw == png
        assert thumb(s, None, old, 96, 96, legacy=True).status == 200
        # New media: only through the authenticated endpoints.
        new = upload(s, tok, png, "image/png")
        for r in (download(s, None, new, legacy=True),
                  s.request("GET", f"/_matrix/media/r0/download/{new}"),
                  thumb(s, None, new, 32, 32, legacy=True)):
            assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r
        assert download(s, tok, new).raw == png
        # A token on the legacy endpoint does not lift the freeze.
        assert download(s, tok, new, legacy=True).status == 404


# ---- the admin's tools ---------------------------------------------------

def cli(server, *args):
    r = server.cli("media", *args[:1], "--config", server.config, *args[1:])
    return r


def test_quarantine_and_delete_via_cli(server, alice, bob):
    data = os.urandom(50_000)
    sid = upload(server, alice, data)
    r = cli(server, "quarantine", "mxc://" + sid)
    assert r.returncode == 0 and "quarantined 1 media" in r.stdout, r.stderr
    for tok in (alice, bob):
        r = download(server, tok, sid)
        assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND"
    assert thumb(server, alice, sid, 32, 32).status == 404
    # The same content uploaded again is quarantined with it.
    again = upload(server, bob, data)
    assert download(server, bob, again).status == 404
    r = cli(server, "quarantine", "--undo", sid)
    assert r.returncode == 0 and "released 2 media" in r.stdout
    assert download(server, bob, sid).raw == data
    # Delete: gone from the database and from disk.
    mid, mid2 = sid.split("/")[1], again.split("/")[1]
    addr = rows(server, f"SELECT encode(address, 'hex') FROM media WHERE media_id = '{mid}'")[0]
    assert any(p.endswith(addr) for p in media_files(server))
    r = cli(server, "delete", "mxc://" + sid)
    assert r.returncode == 0 and "deleted 1 media" in r.stdout
    assert download(server, alice, sid).status == 404
    assert any(p.endswith(addr) for p in media_files(server))  # `again` still uses it
    assert cli(server, "delete", again).returncode == 0
    assert rows(server, f"SELECT count(*) FROM media WHERE media_id IN ('{mid}', '{mid2}')") == ["0"]
    assert rows(server, f"SELECT count(*) FROM media_blobs WHERE address = '\\x{addr}'") == ["0"]
    assert not any(addr in p for p in media_files(server))


def test_quarantine_a_users_media_and_thumbnails_go_with_delete(server):
    server.add_user("media_spammer")
    tok = server.login("media_spammer")
    sid = upload(server, tok, image_bytes("JPEG", (500, 500)), "image/jpeg")
    assert thumb(server, tok, sid, 32, 32, "crop").status == 200
    r = cli(server, "quarantine", "--user", f"@media_spammer:{server.server_name}")
    assert r.returncode == 0 and "quarantined 1 media" in r.stdout, r.stdout
    assert download(server, tok, sid).status == 404
    mid = sid.split("/")[1]
    taddr = rows(server, f"SELECT encode(address, 'hex') FROM media_thumbnails WHERE media_id = '{mid}'")
    assert len(taddr) == 1
    assert cli(server, "delete", sid).returncode == 0
    assert rows(server, f"SELECT count(*) FROM media_thumbnails WHERE media_id = '{mid}'") == ["0"]
    assert not any(taddr[0] in p for p in media_files(server))


def test_cli_usage_errors(server):
    assert server.cli("media", "--help").returncode == 0
    for args in (["frobnicate"], ["delete", "--config", server.config],
                 ["purge-remote", "--config", server.config],
                 ["delete", "--config", server.config, "--before", "yesterday"],
                 ["quarantine", "--config", server.config, "--before", "2020-01-01", "x/y"]):
        assert server.cli("media", *args).returncode == 2, args
    r = server.cli("media", "delete", "--config", server.config, "not an mxc")
    assert r.returncode == 2
    r = server.cli("media", "purge-remote", "--config", server.config, "--before", "2000-01-01")
    assert r.returncode == 0 and "deleted 0 media" in r.stdout


def test_delete_before_date(small):
    sid = upload(small, small.tok, b"old stuff", "text/plain")
    mid = sid.split("/")[1]
    small.psql(f"UPDATE media SET last_access_ts = 946684800000 WHERE media_id = '{mid}'")
    r = small.cli("media", "delete", "--config", small.config, "--before", "2001-01-01")
    assert r.returncode == 0 and "deleted 1 media" in r.stdout, r.stderr
    assert download(small, small.tok, sid).status == 404


# ---- storage at rest -----------------------------------------------------

def scan(root, needles):
    """Which of needles occur in any file under root."""
    found = set()
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            try:
                with open(p, "rb") as f:
                    blob = f.read()
            except OSError:
                continue
            for n in needles:
                if n in blob:
                    found.add((n[:20], p))
    return found


def test_nothing_on_disk_or_in_the_database_equals_the_plaintext():
    with own_server() as s:
        s.add_user("media_secret")
        tok = s.login("media_secret")
        marker = b"PLAINTEXT-MARKER-" + os.urandom(8).hex().encode()
        data = (marker + b" " + os.urandom(64)) * 4000  # ~360 KB, many chunks
        name = "secret-name-" + os.urandom(6).hex() + ".png"
        png = image_bytes("PNG", (900, 700))
        sid = upload(s, tok, data, "text/plain", name)
        pid = upload(s, tok, png, "image/png")
        assert thumb(s, tok, pid, 96, 96, "crop").status == 200
        assert download(s, tok, sid).raw == data
        s.psql("CHECKPOINT")
        needles = [marker, name.encode(), png[100:164], data[1000:1064]]
        found = scan(os.path.join(s.dir, "data"), needles)
        assert not found, found
        assert name not in s.read_log()
        # The database holds no key in the clear: only sealed ones.
        with open(os.path.join(s.dir, "media.key")) as f:
            key = f.read().strip()
        assert not scan(os.path.join(s.dir, "data"), [key.encode()])


def test_the_store_needs_the_master_key():
    with own_server() as s:
        s.add_user("media_keyed")
        tok = s.login("media_keyed")
        data = os.urandom(100_000)
        sid = upload(s, tok, data)
        keyfile = os.path.join(s.dir, "media.key")
        assert oct(os.stat(keyfile).st_mode & 0o777) == "0o600"
        assert "generated the media encryption key" in s.read_log()
        assert "back it up" in s.read_log()
        with open(keyfile) as f:
            key = f.read().strip()
        assert s.stop() == 0
        os.rename(keyfile, keyfile + ".bak")
        # Without the key: nothing can be read, and no new key is made.
        s.start()
        r = download(s, tok, sid)
        assert r.status == 500 and "unavailable" in r.json["error"]
        assert s.request("POST", UPLOAD, raw=b"x", token=tok).status == 500
        assert not os.path.exists(keyfile)
        assert "is missing, but the media store was written with one" in s.read_log()
        assert s.stop() == 0
        # A wrong key is recognised, not used.
        os.environ["PVYHS_MEDIA_KEY"] = "A" * 43
        try:
            s.start()
            assert download(s, tok, sid).status == 500
            assert "is not the key this server's media was stored with" in s.read_log()
            assert s.stop() == 0
            # The right one from the environment opens everything.
            os.environ["PVYHS_MEDIA_KEY"] = key
            s.start()
            assert download(s, tok, sid).raw == data
        finally:
            del os.environ["PVYHS_MEDIA_KEY"]


# ---- a gigabyte in constant memory --------------------------------------

def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssWatch:
    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except FileNotFoundError:  # the server is gone (a failed test)
                return
            time.sleep(0.05)

    def done(self):
        self.stop = True
        self.t.join()
        return self.peak


def test_one_gigabyte_upload_and_download_in_constant_memory():
    size = 1 << 30
    block = os.urandom(1 << 20)
    with own_server("max_upload_size: 2G\n") as s:
        s.add_user("media_big")
        tok = s.login("media_big")
        upload(s, tok, b"warm up" * 1000)  # key, pool, vips-free paths all touched once
        pid = s.proc.pid
        base = rss_kb(pid)
        watch = RssWatch(pid)
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=600)
        conn.request("POST", UPLOAD, body=iter([block] * (size // len(block))),
                     headers={"Authorization": "Bearer " + tok, "Content-Length": str(size),
                              "Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        # Room for the file is the one thing this test needs of the machine:
        # say how much there was if the store refused it.
        assert r.status == 200, (r.status, r.read()[:300], shutil.disk_usage(s.dir),
                                 s.read_log()[-2000:])
        sid = __import__("json").loads(r.read())["content_uri"][6:]
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=600)
        conn.request("GET", f"{V1}/download/{sid}", headers={"Authorization": "Bearer " + tok})
        r = conn.getresponse()
        assert r.status == 200 and int(r.headers["Content-Length"]) == size
        h, want, n = hashlib.sha256(), hashlib.sha256(), 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        conn.close()
        peak = watch.done()
        for _ in range(size // len(block)):
            want.update(block)
        assert n == size and h.digest() == want.digest()
        growth_mb = (peak - base) / 1024
        print(f"RSS before {base / 1024:.1f} MB, peak {peak / 1024:.1f} MB, growth {growth_mb:.1f} MB")
        assert growth_mb < 20, growth_mb
        assert cli(s, "delete", sid).returncode == 0


# ---- URL previews --------------------------------------------------------

class _Site:
    """A small web site on a loopback address, counting its requests."""

    def __init__(self, host, pages):
        import http.server

        site = self
        self.hits = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                site.hits.append(self.path)
                status, ctype, body = pages.get(self.path, (404, "text/plain", b"no"))
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("Location", body.decode())
                    body = b""
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), H)
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_url_previews_with_the_ssrf_guard():
    png = image_bytes("PNG", (120, 80))
    inner = _Site("127.0.0.2", {"/page.html": (200, "text/html", b"<title>inner</title>")})
    page = (b"<html><head><title>Fallback &amp; title</title>"
            b"<meta property='og:title' content='The &quot;Title&quot;'>"
            b"<meta name=\"description\" content=\"A page about things\">"
            b"<meta property=\"og:image\" content=\"/img.png\"></head><body>hi</body></html>")
    site = _Site("127.0.0.1", {"/page.html": (200, "text/html; charset=utf-8", page),
                               "/img.png": (200, "image/png", png),
                               "/bare.html": (200, "text/html", b"<title>Just a title</title>"),
                               "/rel/page.html": (200, "text/html",
                                                  b"<meta property='og:image' content='img.png'>"),
                               "/rel/img.png": (200, "image/png", png),
                               "/away": (302, "text/plain", (inner.base + "/page.html").encode())})
    try:
        # 127.0.0.0/8 is in the default denylist; only 127.0.0.1 is let through.
        with own_server("url_preview_enabled: true\n"
                        "url_preview_ip_range_whitelist: ['127.0.0.1']\n") as s:
            s.add_user("media_preview")
            tok = s.login("media_preview")

            def preview(url):
                return s.request("GET", f"{V1}/preview_url?" + urllib.parse.urlencode({"url": url}),
                                 token=tok)

            r = preview(site.base + "/page.html")
            assert r.status == 200, r
            og = r.json
            assert og["og:title"] == 'The "Title"'
            assert og["og:description"] == "A page about things"
            assert og["og:image"].startswith(f"mxc://{s.server_name}/")
            assert og["og:image:type"] == "image/png" and og["matrix:image:size"] == len(png)
            assert (og["og:image:width"], og["og:image:height"]) == (120, 80)
            assert download(s, tok, og["og:image"][6:]).raw == png
            r = preview(site.base + "/bare.html")
            assert r.status == 200 and r.json == {"og:title": "Just a title"}
            # A document-relative og:image ("img.png", as Complement's page
            # has it) resolves against the page, as in a browser.
            r = preview(site.base + "/rel/page.html")
            assert r.status == 200 and r.json["og:image"].startswith("mxc://"), r
            assert r.json["matrix:image:size"] == len(png)
            r = preview(site.base + "/img.png")  # an image is its own preview
            assert r.status == 200 and r.json["og:image:type"] == "image/png"
            # The legacy path works the same (with a token).
            r = s.request("GET", "/_matrix/media/v3/preview_url?url=" +
                          urllib.parse.quote(site.base + "/bare.html"), token=tok)
            assert r.status == 200 and r.json["og:title"] == "Just a title"
            # Denied addresses are never contacted, directly or by a redirect.
            for url in (inner.base + "/page.html", site.base + "/away"):
                r = preview(url)
                assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", (url, r)
            assert inner.hits == []
            r = preview("file:///etc/passwd")
            assert r.status == 400
            r = s.request("GET", f"{V1}/preview_url", token=tok)
            assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM"
            r = preview(site.base + "/missing")
            assert r.status == 502
    finally:
        site.close()
        inner.close()


def test_url_preview_url_blacklist_and_the_hour_long_cache():
    png = image_bytes("PNG", (60, 40))
    title = "Cached-" + os.urandom(6).hex()

    def pages():
        return {
            "/count.html": (200, "text/html", f"<title>{title}</title>".encode()),
            "/count.html?other": (200, "text/html", b"<title>other</title>"),
            "/blocked/x.html": (200, "text/html", b"<title>should not be read</title>"),
            "/blocked/img.png": (200, "image/png", png),
            "/to-blocked": (302, "text/plain", (site.base + "/blocked/x.html").encode()),
            "/img-blocked.html": (200, "text/html",
                                  b"<title>T</title><meta property='og:image' "
                                  b"content='/blocked/img.png'>"),
            "/img-ok.html": (200, "text/html",
                             b"<title>I</title><meta property='og:image' content='/img.png'>"),
            "/img.png": (200, "image/png", png),
        }

    table = {}
    site = _Site("127.0.0.1", table)
    table.update(pages())  # now that the redirect's base URL is known
    try:
        with own_server("url_preview_enabled: true\n"
                        "url_preview_ip_range_whitelist: ['127.0.0.1']\n"
                        "url_preview_url_blacklist:\n"
                        "  - path: '/blocked/*'\n"
                        "  - username: '*'\n"
                        "  - query: '^secret='\n"
                        "  - scheme: http\n"
                        "    hostname: 'example.invalid'\n") as s:
            s.add_user("prev_a")
            s.add_user("prev_b")
            ta, tb = s.login("prev_a"), s.login("prev_b")

            def preview(url, tok=ta):
                return s.request("GET", f"{V1}/preview_url?" + urllib.parse.urlencode({"url": url}),
                                 token=tok)

            port = site.base.rsplit(":", 1)[1]
            for url in (site.base + "/blocked/x.html", f"http://user@127.0.0.1:{port}/count.html",
                        f"http://@127.0.0.1:{port}/count.html", site.base + "/count.html?secret=1",
                        "http://example.invalid/", "http://EXAMPLE.invalid/x"):
                r = preview(url)
                assert r.status == 403 and r.json["errcode"] == "M_UNKNOWN", (url, r)
                assert "blocklist" in r.json["error"]
            assert site.hits == []  # never contacted
            # https://example.invalid is not blocked by the http-only entry: it is tried.
            assert preview("https://example.invalid/").status == 502
            assert preview("http://127.0.0.1:99999/").status == 400
            # A redirect into a blocked shape is not followed.
            r = preview(site.base + "/to-blocked")
            assert r.status == 403 and r.json["errcode"] == "M_UNKNOWN", r
            assert site.hits == ["/to-blocked"]
            # A blocked og:image is left out; the page is still previewed.
            r = preview(site.base + "/img-blocked.html")
            assert r.status == 200 and r.json == {"og:title": "T"}, r
            assert "/blocked/img.png" not in site.hits
            r = preview(site.base + "/img-ok.html")
            assert r.status == 200 and r.json["og:image"].startswith("mxc://")

            # The cache: the same URL within the hour is not fetched again,
            # for any user, nor after a restart (it lives in PostgreSQL).
            url = site.base + "/count.html"
            first = preview(url)
            assert first.status == 200 and first.json == {"og:title": title}
            assert preview(url, tb).json == first.json
            img = preview(site.base + "/img-ok.html", tb)
            assert img.status == 200 and img.json["og:image"] == r.json["og:image"]
            assert site.hits.count("/count.html") == 1 and site.hits.count("/img-ok.html") == 1
            # Another URL is another entry.
            assert preview(url + "?other").json == {"og:title": "other"}
            assert site.hits.count("/count.html?other") == 1
            assert s.stop() == 0
            s.start()
            ta = s.login("prev_a")
            assert preview(url).json == first.json
            assert site.hits.count("/count.html") == 1
            # Neither the URL nor the preview is readable in the database.
            rows_n = int(s.psql("SELECT count(*) FROM media_url_cache"))
            assert rows_n == 4, rows_n
            for needle in ("count.html", title, "127.0.0.1"):
                assert s.psql("SELECT count(*) FROM media_url_cache WHERE position("
                              f"convert_to('{needle}', 'UTF8') IN og) > 0 OR position("
                              f"convert_to('{needle}', 'UTF8') IN url_hash) > 0") == "0"
            want = hashlib.sha256(url.encode()).hexdigest()
            assert s.psql(f"SELECT count(*) FROM media_url_cache WHERE encode(url_hash, 'hex') = "
                          f"'{want}'") == "0"
            # Once the hour is over the page is fetched again, and the expired
            # rows go as new ones are kept.
            s.psql("UPDATE media_url_cache SET expires_ts = 1")
            assert preview(url).json == first.json
            assert site.hits.count("/count.html") == 2
            assert s.psql("SELECT count(*) FROM media_url_cache") == "1"
    finally:
        site.close()
