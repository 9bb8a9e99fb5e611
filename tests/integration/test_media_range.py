"""HEAD and HTTP Range on media downloads (RFC 9110 §14): the authenticated
download and the legacy one where it is allowed. Files are sealed at rest in
64 KiB messages, so a range starts decrypting at the message that holds its
first byte; ranges across message boundaries, at the very end, open-ended
and suffix ranges must all give exactly the bytes asked for."""
import hashlib
import http.client
import os
import time

import pytest

from test_media import V1, UPLOAD, download, own_server, upload

CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def tok(server):
    server.add_user("range_alice")
    return server.login("range_alice")


@pytest.fixture(scope="module")
def blob(server, tok):
    data = os.urandom(3 * CHUNK + 1234)
    return upload(server, tok, data, "video/mp4", "clip.mp4"), data


def get(server, path, token, method="GET", **headers):
    """(status, headers, body) through http.client, which shows a HEAD as sent."""
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    if token:
        headers["Authorization"] = "Bearer " + token
    c.request(method, path, headers=headers)
    r = c.getresponse()
    body = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, body


def test_head_answers_the_get_headers_without_a_body(server, tok, blob):
    sid, data = blob
    path = f"{V1}/download/{sid}"
    st, gh, body = get(server, path, tok)
    assert st == 200 and body == data
    assert gh["accept-ranges"] == "bytes"
    st, hh, body = get(server, path, tok, "HEAD")
    assert st == 200 and body == b""
    for h in ("content-type", "content-disposition", "content-length", "accept-ranges",
              "content-security-policy", "x-content-type-options", "cache-control"):
        assert hh.get(h) == gh.get(h), h
    assert hh["content-length"] == str(len(data))
    # With a file name in the path, and a range: the same headers as GET too.
    st, hh, body = get(server, path + "/other.bin", tok, "HEAD", Range="bytes=10-19")
    assert st == 206 and body == b"" and hh["content-length"] == "10"
    assert hh["content-range"] == f"bytes 10-19/{len(data)}"
    assert hh["content-disposition"] == "inline; filename=other.bin"  # video/mp4 is inline
    # The same refusals as GET.
    st, hh, body = get(server, path, None, "HEAD")
    assert st == 401 and body == b""
    st, _, _ = get(server, f"{V1}/download/{server.server_name}/nosuchmedia", tok, "HEAD")
    assert st == 404


@pytest.mark.parametrize("spec,first,last", [
    ("0-0", 0, 0),
    ("0-99", 0, 99),
    (f"{CHUNK - 10}-{CHUNK + 10}", CHUNK - 10, CHUNK + 10),   # across a message boundary
    (f"{CHUNK}-{2 * CHUNK - 1}", CHUNK, 2 * CHUNK - 1),       # exactly one message
    (f"{2 * CHUNK + 5}-", 2 * CHUNK + 5, None),              # open-ended, into the last one
    (f"{3 * CHUNK}-", 3 * CHUNK, None),                      # the last message alone
    ("-1", -1, None),                                        # the last byte
    ("-70000", -70000, None),                                # a suffix over two messages
    ("-99999999", 0, None),                                  # a suffix longer than the file
    ("100-99999999", 100, None),                             # clipped to the end
    ("1-", 1, None),                                         # all but the first byte
])
def test_ranges(server, tok, blob, spec, first, last):
    sid, data = blob
    size = len(data)
    first = first % size if first < 0 else first
    last = size - 1 if last is None else last
    st, h, body = get(server, f"{V1}/download/{sid}", tok, Range=f"bytes={spec}")
    assert st == 206, (st, body[:200])
    assert body == data[first:last + 1]
    assert h["content-range"] == f"bytes {first}-{last}/{size}"
    assert h["content-length"] == str(last - first + 1)
    assert h["accept-ranges"] == "bytes" and h["content-type"] == "video/mp4"
    assert h["content-security-policy"].startswith("sandbox;")


def test_unsatisfiable_ranges_get_416(server, tok, blob):
    sid, data = blob
    for spec in (f"{len(data)}-", f"{len(data)}-{len(data) + 10}", "-0", "99999999-"):
        st, h, body = get(server, f"{V1}/download/{sid}", tok, Range=f"bytes={spec}")
        assert st == 416, spec
        assert h["content-range"] == f"bytes */{len(data)}"
        assert b"M_UNKNOWN" in body
    empty = upload(server, tok, b"")
    st, h, _ = get(server, f"{V1}/download/{empty}", tok, Range="bytes=0-")
    assert st == 416 and h["content-range"] == "bytes */0"
    st, h, body = get(server, f"{V1}/download/{empty}", tok)
    assert st == 200 and body == b""


def test_ranges_answered_with_the_whole_file(server, tok, blob):
    sid, data = blob
    # Several ranges, a syntactically invalid one, another unit, If-Range
    # (we give out no validators, so it cannot match): 200 and everything.
    for headers in ({"Range": "bytes=0-1,5-6"}, {"Range": "bytes=9-3"}, {"Range": "bytes=x-"},
                    {"Range": "lines=1-2"}, {"Range": "bytes=0-9", "If-Range": '"abc"'}):
        st, h, body = get(server, f"{V1}/download/{sid}", tok, **headers)
        assert st == 200 and body == data, headers
        assert "content-range" not in h


def test_legacy_download_ranges_and_head():
    with own_server("enable_authenticated_media: false\n") as s:
        s.add_user("range_legacy")
        t = s.login("range_legacy")
        data = os.urandom(2 * CHUNK + 7)
        sid = upload(s, t, data)
        for v in ("v3", "r0"):
            path = f"/_matrix/media/{v}/download/{sid}"
            st, h, body = get(s, path, None, Range=f"bytes={CHUNK + 3}-")
            assert st == 206 and body == data[CHUNK + 3:]
            assert h["content-range"] == f"bytes {CHUNK + 3}-{len(data) - 1}/{len(data)}"
            st, h, body = get(s, path, None, "HEAD")
            assert st == 200 and body == b"" and h["content-length"] == str(len(data))


def test_range_near_the_end_of_100_mb_is_cheap():
    """A read near the end seeks to its message instead of decrypting the
    file from the start: timed against the full download."""
    size = 100 << 20
    block = os.urandom(1 << 20)
    with own_server("max_upload_size: 200M\n") as s:
        s.add_user("range_big")
        t = s.login("range_big")
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=600)
        c.request("POST", UPLOAD, body=iter([block] * (size // len(block))),
                  headers={"Authorization": "Bearer " + t, "Content-Length": str(size),
                           "Content-Type": "application/octet-stream"})
        r = c.getresponse()
        assert r.status == 200
        sid = __import__("json").loads(r.read())["content_uri"][6:]
        c.close()
        path = f"{V1}/download/{sid}"
        t0 = time.monotonic()
        st, _, body = get(s, path, t)
        full = time.monotonic() - t0
        assert st == 200 and len(body) == size
        assert hashlib.sha256(body).digest() == hashlib.sha256(block * 100).digest()
        del body
        times = []
        for _ in range(5):
            t0 = time.monotonic()
            st, h, tail = get(s, path, t, Range=f"bytes={size - 1000}-")
            times.append(time.monotonic() - t0)
            assert st == 206 and tail == block[-1000:]
        t0 = time.monotonic()
        st, _, mid = get(s, path, t, Range=f"bytes={size // 2}-{size // 2 + 65535}")
        mid_t = time.monotonic() - t0
        assert st == 206 and mid == block[:65536]  # 50 MB is a block boundary
        best = min(times)
        print(f"100 MB: full download {full * 1000:.0f} ms, last 1000 bytes "
              f"{best * 1000:.1f} ms (best of 5), 64 KiB from the middle {mid_t * 1000:.1f} ms")
        assert best < full / 5, (best, full)
