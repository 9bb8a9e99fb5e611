"""GET /_matrix/client/v1/mutual_rooms (v1.19, MSC2666): the rooms both the
requester and user_id are joined to, paginated with next_batch/from, and the
spec's 400s."""
import base64
from urllib.parse import quote

V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"


def mutual(server, token, user_id=None, frm=None, raw_query=None):
    q = raw_query if raw_query is not None else (
        (f"user_id={quote(user_id)}" if user_id is not None else "")
        + (f"&from={quote(frm)}" if frm is not None else ""))
    return server.request("GET", f"{V1}/mutual_rooms?{q}", token=token)


def create(server, token, **body):
    r = server.request("POST", V3 + "/createRoom", body, token=token)
    assert r.status == 200, r
    return r.json["room_id"]


def test_mutual_rooms(server):
    ids, toks = {}, {}
    for name in ("mr_alice", "mr_bob", "mr_carol"):
        ids[name] = server.add_user(name)
        toks[name] = server.login(name)
    a, b, c = toks["mr_alice"], toks["mr_bob"], toks["mr_carol"]
    # Nothing shared yet.
    r = mutual(server, a, ids["mr_bob"])
    assert r.status == 200 and r.json == {"joined": [], "count": 0}
    shared = create(server, a, preset="public_chat")
    assert server.request("POST", f"{V3}/rooms/{shared}/join", {}, token=b).status == 200
    alone = create(server, a, preset="public_chat")                     # bob not in it
    invited = create(server, a, invite=[ids["mr_bob"]])                 # bob only invited
    gone = create(server, a, preset="public_chat")                      # bob joined and left
    assert server.request("POST", f"{V3}/rooms/{gone}/join", {}, token=b).status == 200
    assert server.request("POST", f"{V3}/rooms/{gone}/leave", {}, token=b).status == 200
    r = mutual(server, a, ids["mr_bob"])
    assert r.status == 200 and r.json == {"joined": [shared], "count": 1}, r
    assert "next_batch" not in r.json
    # Symmetric, and carol shares none of them.
    assert mutual(server, b, ids["mr_alice"]).json == {"joined": [shared], "count": 1}
    assert mutual(server, c, ids["mr_alice"]).json == {"joined": [], "count": 0}
    # A valid user ID nobody has: an empty list, as the spec says.
    r = mutual(server, a, f"@nobody_here:{server.server_name}")
    assert r.status == 200 and r.json == {"joined": [], "count": 0}
    assert alone and invited


def test_mutual_rooms_errors(server):
    uid = server.add_user("mr_dave")
    tok = server.login("mr_dave")
    other = f"@mr_alice:{server.server_name}"
    cases = [
        (uid, None, "M_INVALID_PARAM"),                          # oneself
        ("not-a-user", None, "M_INVALID_PARAM"),
        ("@Upper:" + server.server_name, None, "M_INVALID_PARAM"),  # historical, non-compliant
        ("@x:", None, "M_INVALID_PARAM"),
        ("@x:bad_server_name!", None, "M_INVALID_PARAM"),
        (other, "!!!not base64!!!", "M_INVALID_PARAM"),
    ]
    for user, frm, code in cases:
        r = mutual(server, tok, user, frm)
        assert r.status == 400 and r.json["errcode"] == code, (user, frm, r)
    r = mutual(server, tok, raw_query="")
    assert r.status == 400 and r.json["errcode"] == "M_MISSING_PARAM"
    r = mutual(server, tok, raw_query=f"user_id={quote(other)}&user_id={quote(uid)}")
    assert r.status == 400 and r.json["errcode"] == "M_INVALID_PARAM"
    r = server.request("GET", f"{V1}/mutual_rooms?user_id={quote(other)}")
    assert r.status == 401 and r.json["errcode"] == "M_MISSING_TOKEN"


def test_mutual_rooms_pagination(server):
    a_id = server.add_user("mr_erin")
    b_id = server.add_user("mr_frank")
    a, b = server.login("mr_erin"), server.login("mr_frank")
    rooms = []
    for _ in range(103):
        room = create(server, a, preset="public_chat")
        assert server.request("POST", f"{V3}/rooms/{room}/join", {}, token=b).status == 200
        rooms.append(room)
    rooms.sort(key=lambda s: s.encode())
    r = mutual(server, a, b_id)
    assert r.status == 200 and r.json["count"] == 103
    assert r.json["joined"] == rooms[:100]
    token = r.json["next_batch"]
    # Synapse's token: the batch's last room ID, unpadded URL-safe base64.
    assert token == base64.urlsafe_b64encode(rooms[99].encode()).decode().rstrip("=")
    r = mutual(server, a, b_id, token)
    assert r.status == 200 and r.json == {"joined": rooms[100:], "count": 103}
    # The other side sees the same rooms.
    r = mutual(server, b, a_id)
    assert r.json["joined"] == rooms[:100] and r.json["count"] == 103 and "next_batch" in r.json
