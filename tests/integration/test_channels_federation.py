"""Channels across servers (issue 7): the directory visibility matrix for
other servers — closed by default, open to public_rooms_federation_allowlist,
or to all with allow_public_rooms_over_federation — seen by local users
browsing through `?server=`; a space with rooms on two servers, browsed with
/hierarchy from each (federation /hierarchy); room summaries of remote rooms
through `via`; requests to join from another server's users, answered
through the moderation queue (`pvyhs channel requests|approve|deny`).

Three pvyhs servers with TLS federation listeners, as in
test_federation_transport.py (whose test CA and server class this reuses):
  A  publishes a channel; its directory is open to B only (allowlist)
  B  allow_public_rooms_over_federation: true
  C  a stranger to A's directory
"""
import time
import urllib.parse

import pytest

from directory_paging import check_paging
from test_federation_transport import FedServer, pki, stop_clean  # noqa: F401 (pki is a fixture)

LIMITS = """rc_message: {per_second: 100000, burst_count: 100000}
rc_joins:
  local: {per_second: 100000, burst_count: 100000}
  remote: {per_second: 100000, burst_count: 100000}
"""


def q(s):
    return urllib.parse.quote(s, safe="")


@pytest.fixture(scope="module")
def net(pki):  # noqa: F811
    b = FedServer(pki, prefix="chfb", extra=LIMITS + "allow_public_rooms_over_federation: true\n")
    c = FedServer(pki, prefix="chfc", extra=LIMITS)
    a = FedServer(pki, prefix="chfa",
                  extra=LIMITS + f'public_rooms_federation_allowlist: ["{b.server_name}"]\n')
    for s in (a, b, c):
        s.start()
    users = {}
    for s, name in ((a, "chf_anna"), (b, "chf_ben"), (c, "chf_cleo")):
        s.add_user(name)
        users[name] = s.login(name)
    yield {"a": a, "b": b, "c": c, "tok": users}
    stop_clean(a, b, c)
    for s in (a, b, c):
        s.__exit__(None, None, None)


def create(s, tok, body):
    r = s.request("POST", "/_matrix/client/v3/createRoom", body, token=tok)
    assert r.status == 200, r
    return r.json["room_id"]


def test_directory_matrix_across_servers(net):
    a, b, c, tok = net["a"], net["b"], net["c"], net["tok"]
    room = create(a, tok["chf_anna"], {"preset": "public_chat", "visibility": "public",
                                        "name": "chf town hall", "room_alias_name": "chf-town"})
    # B is on A's allowlist: its users browse A's directory through B.
    r = b.request("GET", "/_matrix/client/v3/publicRooms?server=" + q(a.server_name), token=tok["chf_ben"])
    assert r.status == 200, r
    assert [x["room_id"] for x in r.json["chunk"]] == [room]
    assert r.json["chunk"][0]["canonical_alias"] == f"#chf-town:{a.server_name}"
    r = b.request("POST", "/_matrix/client/v3/publicRooms?server=" + q(a.server_name),
                  {"limit": 5, "filter": {"generic_search_term": "town"}}, token=tok["chf_ben"])
    assert r.status == 200 and [x["room_id"] for x in r.json["chunk"]] == [room], r
    r = b.request("POST", "/_matrix/client/v3/publicRooms?server=" + q(a.server_name),
                  {"filter": {"generic_search_term": "nothing-like-it"}}, token=tok["chf_ben"])
    assert r.status == 200 and r.json["chunk"] == []
    # C is not: A refuses it, and C's user hears so.
    r = c.request("GET", "/_matrix/client/v3/publicRooms?server=" + q(a.server_name), token=tok["chf_cleo"])
    assert r.status == 403 and r.json["errcode"] == "M_FORBIDDEN", r
    # B is open to every server; A's user browses it (empty, but answered).
    r = a.request("GET", "/_matrix/client/v3/publicRooms?server=" + q(b.server_name), token=tok["chf_anna"])
    assert r.status == 200 and r.json["chunk"] == [], r
    # C is closed (the default): nobody browses it.
    r = a.request("GET", "/_matrix/client/v3/publicRooms?server=" + q(c.server_name), token=tok["chf_anna"])
    assert r.status == 403, r
    # Anonymous users never make us ask another server.
    assert b.request("GET", "/_matrix/client/v3/publicRooms?server=" + q(a.server_name)).status == 401
    # A server that does not exist: 502.
    r = a.request("GET", "/_matrix/client/v3/publicRooms?server=nowhere.invalid", token=tok["chf_anna"])
    assert r.status == 502, r


def add_child(s, tok, space, child, via, **extra):
    r = s.request("PUT", f"/_matrix/client/v3/rooms/{q(space)}/state/m.space.child/{q(child)}",
                  {"via": via, **extra}, token=tok)
    assert r.status == 200, r


def test_space_across_two_servers(net):
    a, b, tok = net["a"], net["b"], net["tok"]
    ra = create(a, tok["chf_anna"], {"preset": "public_chat", "name": "chf a room"})
    rb = create(b, tok["chf_ben"], {"preset": "public_chat", "name": "chf b room", "topic": "on b"})
    rb_private = create(b, tok["chf_ben"], {"preset": "private_chat", "name": "chf b secret"})
    sa = create(a, tok["chf_anna"], {"preset": "public_chat", "name": "chf space a",
                                     "creation_content": {"type": "m.space"}})
    sb = create(b, tok["chf_ben"], {"preset": "public_chat", "name": "chf space b",
                                    "creation_content": {"type": "m.space"}})
    add_child(a, tok["chf_anna"], sa, ra, [a.server_name], order="1")
    add_child(a, tok["chf_anna"], sa, rb, [b.server_name], order="2")
    add_child(a, tok["chf_anna"], sa, sb, [b.server_name], order="3")
    add_child(b, tok["chf_ben"], sb, rb, [b.server_name])
    add_child(b, tok["chf_ben"], sb, rb_private, [b.server_name])
    add_child(b, tok["chf_ben"], sb, ra, [a.server_name])
    # From A: its own room, B's room (through B's federation /hierarchy), and
    # B's space with its children (B's private room left out).
    r = a.request("GET", f"/_matrix/client/v1/rooms/{q(sa)}/hierarchy", token=tok["chf_anna"])
    assert r.status == 200, r
    ids = [x["room_id"] for x in r.json["rooms"]]
    assert ids[:4] == [sa, ra, rb, sb] and rb_private not in ids, ids
    remote = {x["room_id"]: x for x in r.json["rooms"]}[rb]
    assert remote["name"] == "chf b room" and remote["topic"] == "on b" and remote["join_rule"] == "public"
    space_b = {x["room_id"]: x for x in r.json["rooms"]}[sb]
    assert space_b["room_type"] == "m.space"
    assert {e["state_key"] for e in space_b["children_state"]} == {rb, rb_private, ra}
    # From B: the mirror image.
    r = b.request("GET", f"/_matrix/client/v1/rooms/{q(sb)}/hierarchy", token=tok["chf_ben"])
    assert r.status == 200, r
    ids = [x["room_id"] for x in r.json["rooms"]]
    assert sb in ids and rb in ids and ra in ids and rb_private in ids     # Ben is in his own
    assert {x["room_id"]: x for x in r.json["rooms"]}[ra]["name"] == "chf a room"
    # max_depth keeps the remote space's children out.
    r = a.request("GET", f"/_matrix/client/v1/rooms/{q(sa)}/hierarchy?max_depth=1", token=tok["chf_anna"])
    assert [x["room_id"] for x in r.json["rooms"]] == [sa, ra, rb, sb]


def test_federation_hierarchy_answers_for_the_asking_server(net):
    a, b, c, tok = net["a"], net["b"], net["c"], net["tok"]
    secret = create(a, tok["chf_anna"], {"preset": "private_chat", "name": "chf a secret",
                                         "creation_content": {"type": "m.space"}})
    inner = create(a, tok["chf_anna"], {"preset": "private_chat", "name": "chf inner"})
    add_child(a, tok["chf_anna"], secret, inner, [a.server_name])
    # B has nobody in the private space: A says it does not know it.
    r = b.fed_request(a.server_name, f"/_matrix/federation/v1/hierarchy/{q(secret)}")
    assert r.status == 200 and r.json["status"] == 404, r
    assert r.json["body"]["errcode"] == "M_NOT_FOUND"
    # Invite Ben: now B may see the space, but not its private child.
    r = a.request("POST", f"/_matrix/client/v3/rooms/{q(secret)}/invite",
                  {"user_id": f"@chf_ben:{b.server_name}"}, token=tok["chf_anna"])
    assert r.status == 200, r
    r = b.fed_request(a.server_name, f"/_matrix/federation/v1/hierarchy/{q(secret)}")
    assert r.status == 200 and r.json["status"] == 200, r
    body = r.json["body"]
    assert body["room"]["room_id"] == secret and body["children"] == []
    assert body["inaccessible_children"] == [inner]


def test_federation_public_rooms_policy(net):
    a, b, c = net["a"], net["b"], net["c"]
    # Straight from the servers: A answers B (allowlist), not C.
    r = b.fed_request(a.server_name, "/_matrix/federation/v1/publicRooms?limit=5")
    assert r.status == 200 and r.json["status"] == 200 and "chunk" in r.json["body"], r
    r = c.fed_request(a.server_name, "/_matrix/federation/v1/publicRooms")
    assert r.status == 200 and r.json["status"] == 403, r
    assert r.json["body"]["errcode"] == "M_FORBIDDEN"
    r = b.fed_request(a.server_name, "/_matrix/federation/v1/publicRooms", method="POST",
                      content={"limit": 1, "filter": {"generic_search_term": "chf"}})
    assert r.json["status"] == 200 and len(r.json["body"]["chunk"]) <= 1, r


def test_room_summary_through_via(net):
    a, b, tok = net["a"], net["b"], net["tok"]
    rb = create(b, tok["chf_ben"], {"preset": "public_chat", "name": "chf summary room"})
    r = a.request("GET", f"/_matrix/client/v1/room_summary/{q(rb)}?via={q(b.server_name)}",
                  token=tok["chf_anna"])
    assert r.status == 200, r
    assert r.json["room_id"] == rb and r.json["name"] == "chf summary room"
    assert r.json["membership"] == "leave" and "children_state" not in r.json
    r = a.request("GET", f"/_matrix/client/v1/room_summary/{q(rb)}", token=tok["chf_anna"])
    assert r.status == 404                                   # no via: we can't know it
    private = create(b, tok["chf_ben"], {"preset": "private_chat"})
    r = a.request("GET", f"/_matrix/client/v1/room_summary/{q(private)}?via={q(b.server_name)}",
                  token=tok["chf_anna"])
    assert r.status == 404


def test_knock_from_another_server_through_the_queue(net):
    """A user of C asks to join A's channel; A's moderator sees the request in
    /sync with a notification; the CLI lists and approves it; the user joins.
    Another is denied, a third withdraws."""
    a, c, tok = net["a"], net["c"], net["tok"]
    room = create(a, tok["chf_anna"], {"preset": "private_chat", "name": "chf knock club", "initial_state": [
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]})
    since = a.request("GET", "/_matrix/client/v3/sync?timeout=0", token=tok["chf_anna"]).json["next_batch"]
    users = {}
    net["knock_room"] = room
    for n in ("chf_k1", "chf_k2", "chf_k3"):
        users[n] = (c.add_user(n), c.login(n))
    for n, (uid, t) in users.items():
        r = c.request("POST", f"/_matrix/client/v3/knock/{q(room)}?via={q(a.server_name)}",
                      {"reason": f"{n} asks"}, token=t)
        assert r.status == 200, r
    # The knocker's sliding sync lists the room C is not in, with its stripped state.
    k1_id, k1_tok = users["chf_k1"]
    r = c.request("POST", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?timeout=0",
                  {"conn_id": "knock", "lists": {"all": {"ranges": [[0, 9]]}}}, token=k1_tok)
    assert r.status == 200 and r.json["lists"]["all"]["count"] == 1, r
    st = {(e["type"], e["state_key"]): e for e in r.json["rooms"][room]["invite_state"]}
    assert st[("m.room.member", k1_id)]["content"]["membership"] == "knock", st
    assert r.json["rooms"][room]["name"] == "chf knock club"
    r = a.request("GET", f"/_matrix/client/v3/sync?since={q(since)}&timeout=0", token=tok["chf_anna"])
    joined = r.json["rooms"]["join"][room]
    knocks = [e for e in joined["timeline"]["events"] if e["type"] == "m.room.member"
              and e["content"]["membership"] == "knock"]
    assert {e["state_key"] for e in knocks} == {uid for uid, _ in users.values()}
    assert joined["unread_notifications"]["notification_count"] >= 3
    out = a.cli("channel", "requests", "--config", a.config, room)
    assert out.returncode == 0, out.stderr
    assert [l.split("\t")[0] for l in out.stdout.splitlines()] == [users[n][0] for n in ("chf_k1", "chf_k2", "chf_k3")]
    k1, t1 = users["chf_k1"]
    out = a.cli("channel", "approve", "--config", a.config, room, k1)
    assert out.returncode == 0, out.stderr
    r = c.request("POST", f"/_matrix/client/v3/join/{q(room)}?via={q(a.server_name)}", {}, token=t1)
    assert r.status == 200, r
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/joined_members", token=tok["chf_anna"])
    assert k1 in r.json["joined"]
    k2, t2 = users["chf_k2"]
    out = a.cli("channel", "deny", "--config", a.config, room, k2, "--reason", "full")
    assert out.returncode == 0, out.stderr
    ev = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(k2)}",
                   token=tok["chf_anna"]).json
    assert ev == {"membership": "leave", "reason": "full"}
    net["knock_users"] = users


def test_knock_withdrawn_from_another_server(net):
    a, c, tok = net["a"], net["c"], net["tok"]
    room, users = net.get("knock_room"), net.get("knock_users")
    assert users, "runs after test_knock_from_another_server_through_the_queue (same module)"
    t1 = users["chf_k1"][1]
    k3, t3 = users["chf_k3"]
    r = c.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/leave", {}, token=t3)
    assert r.status == 200, r
    for _ in range(50):     # the withdrawal reaches A through federation
        out = a.cli("channel", "requests", "--config", a.config, room)
        if out.stdout == "":
            break
        time.sleep(0.2)
    if out.stdout != "":
        st = c.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(k3)}", token=t1)
        pytest.fail(f"A still lists the withdrawn knock; C's view of it: {st.status} {st.raw[:300]}")



def test_invite_blocked_across_servers(net):
    """v1.18 invite blocking (m.invite_permission_config): B's user blocks
    invites; A's user invites them into a room on A. B refuses the federation
    /invite with 403 M_INVITE_BLOCKED, A's user gets that error, and A keeps
    no trace of the invite. Unblocked, the same invite goes through."""
    a, b, tok = net["a"], net["b"], net["tok"]
    bob, btok = b.add_user("chf_blocker"), b.login("chf_blocker")
    r = b.request("PUT", f"/_matrix/client/v3/user/{q(bob)}/account_data/m.invite_permission_config",
                  {"default_action": "block"}, token=btok)
    assert r.status == 200, r
    room = create(a, tok["chf_anna"], {"preset": "private_chat", "name": "chf blocked invite"})
    r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": bob},
                  token=tok["chf_anna"])
    assert r.status == 403 and r.json["errcode"] == "M_INVITE_BLOCKED", r
    r = a.request("GET", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(bob)}",
                  token=tok["chf_anna"])
    assert r.status == 404, r
    assert a.psql(f"SELECT count(*) FROM events WHERE room_id = '{room}' AND state_key = '{bob}'") == "0"
    assert b.psql(f"SELECT count(*) FROM fed_remote_memberships WHERE user_id = '{bob}'") == "0"
    # The same through the state endpoint.
    r = a.request("PUT", f"/_matrix/client/v3/rooms/{q(room)}/state/m.room.member/{q(bob)}",
                  {"membership": "invite"}, token=tok["chf_anna"])
    assert r.status == 403 and r.json["errcode"] == "M_INVITE_BLOCKED", r
    # createRoom's invite list too: the room is not created.
    before = a.psql("SELECT count(*) FROM rooms")
    r = a.request("POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat", "invite": [bob]},
                  token=tok["chf_anna"])
    assert r.status == 403 and r.json["errcode"] == "M_INVITE_BLOCKED", r
    assert a.psql("SELECT count(*) FROM rooms") == before
    # Any other value lets invites through again.
    r = b.request("PUT", f"/_matrix/client/v3/user/{q(bob)}/account_data/m.invite_permission_config",
                  {"default_action": "allow"}, token=btok)
    assert r.status == 200, r
    r = a.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/invite", {"user_id": bob},
                  token=tok["chf_anna"])
    assert r.status == 200, r
    r = b.request("GET", "/_matrix/client/v3/sync?timeout=0", token=btok)
    assert room in r.json["rooms"]["invite"], r


def ip_named(pki, prefix, extra):  # noqa: F811
    """A FedServer named by its IP literal (127.0.0.1:port), so that a server
    ACL can tell it from the localhost:port servers (ACLs ignore ports)."""
    s = FedServer(pki, prefix=prefix, extra=extra)
    old, s.server_name = s.server_name, f"127.0.0.1:{s.fed_port}"
    with open(s.config) as f:
        text = f.read()
    with open(s.config, "w") as f:
        f.write(text.replace(f'server_name: "{old}"', f'server_name: "{s.server_name}"'))
    return s


@pytest.fixture(scope="module")
def acl_host(pki):  # noqa: F811
    d = ip_named(pki, "chfd", LIMITS + "allow_public_rooms_over_federation: true\n")
    d.start()
    d.add_user("chf_dora")
    yield d, d.login("chf_dora")
    stop_clean(d)
    d.__exit__(None, None, None)


def test_server_acls_hide_rooms_from_denied_servers(net, acl_host):
    """D (named 127.0.0.1:port) opens its directory to every server; one of its
    rooms has a server ACL denying "localhost" (A, B and C here), another one
    denying someone else. The denied servers don't see the first room in
    D's federation /publicRooms (GET, POST, page by page), its federation
    /hierarchy is 403 M_FORBIDDEN, its alias 403 over /query/directory, and
    in a space it is an inaccessible child."""
    a, b, tok = net["a"], net["b"], net["tok"]
    d, dtok = acl_host
    acl_deny = {"type": "m.room.server_acl", "state_key": "",
                "content": {"allow": ["*"], "deny": ["localhost"], "allow_ip_literals": True}}
    acl_other = {"type": "m.room.server_acl", "state_key": "",
                 "content": {"allow": ["*"], "deny": ["evil.example"]}}
    rooms = {}
    for name, extra in (("open", []), ("banned", [acl_deny]), ("other", [acl_other])):
        rooms[name] = create(d, dtok, {"preset": "public_chat", "visibility": "public",
                                       "name": f"chf acl {name}", "room_alias_name": f"chf-acl-{name}",
                                       "initial_state": extra})
    # D's own user sees all three.
    r = d.request("GET", "/_matrix/client/v3/publicRooms", token=dtok)
    assert {x["room_id"] for x in r.json["chunk"]} == set(rooms.values()), r
    # B (localhost:…) does not see the banned one, in one page …
    r = b.fed_request(d.server_name, "/_matrix/federation/v1/publicRooms")
    assert r.status == 200 and r.json["status"] == 200, r
    assert {x["room_id"] for x in r.json["body"]["chunk"]} == {rooms["open"], rooms["other"]}, r.json
    r = b.fed_request(d.server_name, "/_matrix/federation/v1/publicRooms", method="POST",
                      content={"filter": {"generic_search_term": "chf acl"}})
    assert {x["room_id"] for x in r.json["body"]["chunk"]} == {rooms["open"], rooms["other"]}, r.json
    # … nor page by page (the tokens step over it), forwards then back.
    seen, since, pages = [], None, []
    for _ in range(5):
        path = "/_matrix/federation/v1/publicRooms?limit=1" + (f"&since={q(since)}" if since else "")
        body = b.fed_request(d.server_name, path).json["body"]
        pages.append(body)
        seen += [x["room_id"] for x in body["chunk"]]
        since = body.get("next_batch")
        if not since:
            break
    assert sorted(seen) == sorted([rooms["open"], rooms["other"]]), pages
    prev = pages[-1].get("prev_batch")
    assert prev, pages
    body = b.fed_request(d.server_name, f"/_matrix/federation/v1/publicRooms?limit=1&since={q(prev)}").json["body"]
    assert [x["room_id"] for x in body["chunk"]] == [seen[-2]], (body, seen)
    # B's user browsing D through B: the same.
    r = b.request("GET", "/_matrix/client/v3/publicRooms?server=" + q(d.server_name), token=tok["chf_ben"])
    assert r.status == 200 and {x["room_id"] for x in r.json["chunk"]} == {rooms["open"], rooms["other"]}, r
    # /hierarchy of the banned room: 403; of the others: answered.
    r = b.fed_request(d.server_name, f"/_matrix/federation/v1/hierarchy/{q(rooms['banned'])}")
    assert r.json["status"] == 403 and r.json["body"]["errcode"] == "M_FORBIDDEN", r.json
    r = b.fed_request(d.server_name, f"/_matrix/federation/v1/hierarchy/{q(rooms['other'])}")
    assert r.json["status"] == 200 and r.json["body"]["room"]["room_id"] == rooms["other"], r.json
    # … and so A's user gets no summary of it through D.
    r = a.request("GET", f"/_matrix/client/v1/room_summary/{q(rooms['banned'])}?via={q(d.server_name)}",
                  token=tok["chf_anna"])
    assert r.status == 404, r
    r = a.request("GET", f"/_matrix/client/v1/room_summary/{q(rooms['open'])}?via={q(d.server_name)}",
                  token=tok["chf_anna"])
    assert r.status == 200 and r.json["name"] == "chf acl open", r
    # The alias of the banned room: 403 over /query/directory, and B's user hears so.
    alias = f"#chf-acl-banned:{d.server_name}"
    r = b.fed_request(d.server_name, f"/_matrix/federation/v1/query/directory?room_alias={q(alias)}")
    assert r.json["status"] == 403 and r.json["body"]["errcode"] == "M_FORBIDDEN", r.json
    r = b.fed_request(d.server_name, "/_matrix/federation/v1/query/directory?room_alias="
                      + q(f"#chf-acl-other:{d.server_name}"))
    assert r.json["status"] == 200 and r.json["body"]["room_id"] == rooms["other"], r.json
    # A space of D holding both: the banned room is an inaccessible child for B.
    space = create(d, dtok, {"preset": "public_chat", "name": "chf acl space",
                             "creation_content": {"type": "m.space"}})
    add_child(d, dtok, space, rooms["banned"], [d.server_name])
    add_child(d, dtok, space, rooms["open"], [d.server_name])
    r = b.fed_request(d.server_name, f"/_matrix/federation/v1/hierarchy/{q(space)}")
    body = r.json["body"]
    assert [x["room_id"] for x in body["children"]] == [rooms["open"]], body
    assert body["inaccessible_children"] == [rooms["banned"]], body


def test_directory_pages_step_over_rooms_hidden_by_acls(net, acl_host):
    """Seven rooms of D with one member each, ordered by room ID; server ACLs
    deny B the first, the fourth and fifth and the last. B pages D's
    federation directory with limit 1, 2 and 4: the pages hold just the
    three others, none is empty (no next_batch leads past the last shown
    room to rooms all hidden), and prev_batch/next_batch lead back and forth
    between the same pages."""
    b = net["b"]
    d, dtok = acl_host
    made = [create(d, dtok, {"preset": "public_chat", "visibility": "public", "name": f"chf tie {i}"})
            for i in range(7)]
    search = {"filter": {"generic_search_term": "chf tie"}}
    r = d.request("POST", "/_matrix/client/v3/publicRooms", search, token=dtok)
    order = [x["room_id"] for x in r.json["chunk"]]
    assert order == sorted(made, reverse=True), r
    deny = {"allow": ["*"], "deny": ["localhost"], "allow_ip_literals": True}
    for i in (0, 3, 4, 6):
        r = d.request("PUT", f"/_matrix/client/v3/rooms/{q(order[i])}/state/m.room.server_acl/", deny,
                      token=dtok)
        assert r.status == 200, r

    def fetch(since, limit):
        body = dict(search, limit=limit, **({"since": since} if since else {}))
        r = b.fed_request(d.server_name, "/_matrix/federation/v1/publicRooms", method="POST", content=body)
        assert r.status == 200 and r.json["status"] == 200, r.json
        return r.json["body"]

    for limit in (1, 2, 4):
        check_paging(fetch, limit, [order[1], order[2], order[5]])


def test_room_summary_of_a_remote_alias(net):
    """room_summary/#alias:B from A: A asks B's directory (federation
    /query/directory), then B's federation /hierarchy through the servers
    the directory named; no `via` needed."""
    a, b, tok = net["a"], net["b"], net["tok"]
    rb = create(b, tok["chf_ben"], {"preset": "public_chat", "name": "chf aliased room",
                                    "topic": "found by alias", "room_alias_name": "chf-aliased"})
    alias = f"#chf-aliased:{b.server_name}"
    r = a.request("GET", f"/_matrix/client/v1/room_summary/{q(alias)}", token=tok["chf_anna"])
    assert r.status == 200, r
    assert r.json["room_id"] == rb and r.json["name"] == "chf aliased room", r.json
    assert r.json["topic"] == "found by alias" and r.json["membership"] == "leave", r.json
    assert r.json["canonical_alias"] == alias and "children_state" not in r.json
    # An alias B does not have: 404, B's answer.
    r = a.request("GET", f"/_matrix/client/v1/room_summary/{q('#chf-nothing:' + b.server_name)}",
                  token=tok["chf_anna"])
    assert r.status == 404 and r.json["errcode"] == "M_NOT_FOUND", r
    # A private room's alias resolves, but its summary stays B's secret.
    create(b, tok["chf_ben"], {"preset": "private_chat", "room_alias_name": "chf-aliased-secret"})
    r = a.request("GET", f"/_matrix/client/v1/room_summary/{q('#chf-aliased-secret:' + b.server_name)}",
                  token=tok["chf_anna"])
    assert r.status == 404, r
    # A server that does not exist: the directory can't be asked.
    r = a.request("GET", f"/_matrix/client/v1/room_summary/{q('#x:nowhere.invalid')}", token=tok["chf_anna"])
    assert r.status == 502, r
    # Once A is in the room, A answers from its own copy.
    r = a.request("POST", f"/_matrix/client/v3/join/{q(alias)}", {}, token=tok["chf_anna"])
    assert r.status == 200, r
    r = a.request("GET", f"/_matrix/client/v1/room_summary/{q(alias)}", token=tok["chf_anna"])
    assert r.status == 200 and r.json["membership"] == "join" and r.json["num_joined_members"] == 2, r


SS = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"


def ss(server, tok, body, pos=None):
    r = server.request("POST", SS + "?timeout=0" + (f"&pos={q(pos)}" if pos else ""), body, token=tok)
    assert r.status == 200, r
    return r.json


def test_sliding_sync_lists_invites_to_rooms_on_other_servers(net):
    """B's user is invited to a room on A that B is not in: sliding sync
    lists it (is_invite), with the stripped state A sent as invite_state, a
    name from it and the encryption the create/encryption events say; the
    rejection comes next as a leave; a blocked user's invites are hidden."""
    a, b, tok = net["a"], net["b"], net["tok"]
    bea, btok = b.add_user("chf_ss_bea"), b.login("chf_ss_bea")
    room = create(a, tok["chf_anna"], {"preset": "private_chat", "name": "chf ss invite",
                                        "topic": "for bea", "invite": [bea]})
    body = {"conn_id": "remote", "lists": {
        "invites": {"ranges": [[0, 9]], "timeline_limit": 1, "filters": {"is_invite": True}},
        "encrypted": {"ranges": [[0, 9]], "filters": {"is_encrypted": True}},
        "all": {"ranges": [[0, 9]], "required_state": [["*", "*"]]}}}
    first = ss(b, btok, body)
    assert first["lists"]["invites"]["count"] == 1, first
    assert first["lists"]["encrypted"]["count"] == 1, first       # private: encrypted by default
    entry = first["rooms"][room]
    assert entry["name"] == "chf ss invite" and entry["initial"] is True, entry
    st = {(e["type"], e["state_key"]): e for e in entry["invite_state"]}
    assert ("m.room.create", "") in st and ("m.room.topic", "") in st, entry
    assert st[("m.room.member", bea)]["content"]["membership"] == "invite"
    assert st[("m.room.member", bea)]["sender"] == f"@chf_anna:{a.server_name}"
    assert all(set(e) <= {"type", "state_key", "content", "sender"} for e in entry["invite_state"]
               if e["type"] != "m.room.create")
    assert "origin_server_ts" in st[("m.room.create", "")]  # whole (v1.16, MSC4311)
    # Nothing new: the room is not sent again.
    again = ss(b, btok, body, pos=first["pos"])
    assert room not in again.get("rooms", {}), again
    # Rejected: it comes once more, as the leave, and leaves the invite list.
    r = b.request("POST", f"/_matrix/client/v3/rooms/{q(room)}/leave", {}, token=btok)
    assert r.status == 200, r
    after = ss(b, btok, body, pos=again["pos"])
    assert after["lists"]["invites"]["count"] == 0, after
    left = after["rooms"][room]
    assert [e["content"]["membership"] for e in left["timeline"]] == ["leave"], left
    # A user who blocks invites sees none, the remote ones included.
    room2 = create(a, tok["chf_anna"], {"preset": "private_chat", "invite": [bea]})
    assert room2 in ss(b, btok, {"conn_id": "fresh", "lists": body["lists"]})["rooms"]
    r = b.request("PUT", f"/_matrix/client/v3/user/{q(bea)}/account_data/m.invite_permission_config",
                  {"default_action": "block"}, token=btok)
    assert r.status == 200, r
    hidden = ss(b, btok, {"conn_id": "blocked", "lists": body["lists"]})
    assert hidden["lists"]["invites"]["count"] == 0 and room2 not in hidden.get("rooms", {}), hidden
