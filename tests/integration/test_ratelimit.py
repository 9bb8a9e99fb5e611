"""rc_* rate limits with Synapse's defaults: M_LIMIT_EXCEEDED with
retry_after_ms (and Retry-After), per user and per client address."""
import pytest

from harness import Server

V3 = "/_matrix/client/v3"


@pytest.fixture(scope="module")
def limited():
    s = Server(limits=True, extra_yaml="rc_message: {per_second: 0.5, burst_count: 3}\n").start()
    yield s
    assert s.stop() == 0


def test_messages_are_limited_per_user(limited):
    s = limited
    s.add_user("rl_a")
    s.add_user("rl_b")
    a, b = s.login("rl_a"), s.login("rl_b")
    room = s.request("POST", V3 + "/createRoom", {"preset": "public_chat"}, token=a).json["room_id"]
    s.request("POST", f"{V3}/rooms/{room}/join", {}, token=b)
    codes = []
    for i in range(4):
        r = s.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/rl{i}",
                      {"msgtype": "m.text", "body": str(i)}, token=a)
        codes.append(r.status)
    assert codes == [200, 200, 200, 429]
    assert r.json["errcode"] == "M_LIMIT_EXCEEDED"
    assert 0 < r.json["retry_after_ms"] <= 2000
    assert int(r.headers["Retry-After"]) >= 1
    # another user has their own bucket
    r = s.request("PUT", f"{V3}/rooms/{room}/send/m.room.message/rlb",
                  {"msgtype": "m.text", "body": "b"}, token=b)
    assert r.status == 200


def test_failed_logins_are_limited(limited):
    s = limited
    s.add_user("rl_c")
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "rl_c"},
            "password": "wrong"}
    codes = [s.request("POST", V3 + "/login", body).status for _ in range(5)]
    # Synapse's default rc_login.failed_attempts: burst 3
    assert codes[:3] == [403, 403, 403] and codes[3] == 429
