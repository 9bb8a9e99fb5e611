"""The basics through matrix-nio 0.20 (Debian's python3-matrix-nio), which
speaks the r0 paths: login, create a room, invite, join, send, receive by
/sync, typing, read receipts and markers, unread counts, paging back through
/messages, joined members, leave and forget — once in a room of the default
version 12 (room IDs without a server part, which nio's sync schema does not
expect) and once in a version 11 room."""
import asyncio

import pytest

from nio import (  # Debian's python3-matrix-nio (scripts/deps.sh test installs it)
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    JoinResponse,
    JoinedMembersResponse,
    LoginError,
    LoginResponse,
    MessageDirection,
    ReceiptEvent,
    RoomCreateResponse,
    RoomForgetResponse,
    RoomGetStateEventResponse,
    RoomInviteResponse,
    RoomLeaveResponse,
    RoomMemberEvent,
    RoomMessagesResponse,
    RoomMessageText,
    RoomReadMarkersResponse,
    RoomSendResponse,
    RoomTypingResponse,
    SyncResponse,
    TypingNoticeEvent,
    UpdateReceiptMarkerResponse,
)

PASSWORD = "correct horse"
CFG = AsyncClientConfig(max_timeouts=2, request_timeout=5)


def run(coro):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


@pytest.fixture(scope="module")
def nio_users(server):
    return {n: server.add_user(f"niob_{n}", PASSWORD) for n in ("alice", "bob", "carol")}


async def login(server, user_id):
    c = AsyncClient(server.base, user_id, config=CFG)
    r = await c.login(PASSWORD, device_name="nio basics")
    assert isinstance(r, LoginResponse), r
    assert r.user_id == user_id and r.access_token and r.device_id
    return c


async def sync_until(c, what, pred, rounds=20):
    """Sync (long-polling briefly) until pred(response) is truthy."""
    for _ in range(rounds):
        r = await c.sync(timeout=500, full_state=c.next_batch is None)
        assert isinstance(r, SyncResponse), f"{c.user_id}: {what}: {r}"
        got = pred(r)
        if got:
            return got
    raise AssertionError(f"{c.user_id} never saw {what}")


def timeline(r, room_id):
    room = r.rooms.join.get(room_id)
    return room.timeline.events if room else []


def ephemeral(r, room_id):
    room = r.rooms.join.get(room_id)
    return room.ephemeral if room else []


def test_nio_login_errors(server, nio_users):
    async def go():
        c = AsyncClient(server.base, nio_users["alice"], config=CFG)
        r = await c.login("wrong password")
        assert isinstance(r, LoginError) and r.status_code == "M_FORBIDDEN", r
        await c.close()
    run(go())


@pytest.mark.parametrize("version", ["12", "11"])
def test_nio_room_basics(server, nio_users, version):
    async def go():
        a = await login(server, nio_users["alice"])
        b = await login(server, nio_users["bob"])
        try:
            await basics(a, b, version)
        finally:
            await a.close()
            await b.close()
    run(go())


async def basics(a, b, version):
    alice, bob = a.user_id, b.user_id
    await a.sync(timeout=0, full_state=True)
    await b.sync(timeout=0, full_state=True)

    # Create and invite; the invite reaches bob by /sync with the room's name.
    r = await a.room_create(name=f"nio basics v{version}", room_version=version, topic="nio")
    assert isinstance(r, RoomCreateResponse), r
    room_id = r.room_id
    assert room_id.startswith("!")
    if version == "12":
        assert ":" not in room_id, room_id  # v12: the ID is the create event's hash
    r = await a.room_invite(room_id, bob)
    assert isinstance(r, RoomInviteResponse), r
    await sync_until(b, "the invite", lambda r: room_id in r.rooms.invite)
    assert room_id in b.invited_rooms
    assert b.invited_rooms[room_id].name == f"nio basics v{version}"

    # Join; alice sees bob's membership arrive.
    r = await b.join(room_id)
    assert isinstance(r, JoinResponse) and r.room_id == room_id, r
    await sync_until(b, "the joined room", lambda r: room_id in r.rooms.join)
    # nio 0.20's schema requires the create event's `creator`, which room
    # versions 11 and later dropped: it files the event as BadEvent and keeps
    # room_version at "1". The room works all the same.
    create = await b.room_get_state_event(room_id, "m.room.create")
    assert isinstance(create, RoomGetStateEventResponse), create
    assert create.content["room_version"] == version, create
    assert b.rooms[room_id].room_version == "1"  # a nio limitation, not ours
    assert b.rooms[room_id].topic == "nio"
    await sync_until(a, "bob's join", lambda r: any(
        isinstance(e, RoomMemberEvent) and e.state_key == bob and e.membership == "join"
        for e in timeline(r, room_id)))
    assert bob in a.rooms[room_id].users

    # Send; the message arrives by sync, the sender's own one with its txn id.
    r = await a.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hi bob"})
    assert isinstance(r, RoomSendResponse), r
    sent = r.event_id
    ev = await sync_until(b, "alice's message", lambda r: next(
        (e for e in timeline(r, room_id) if isinstance(e, RoomMessageText) and e.body == "hi bob"),
        None))
    assert ev.event_id == sent and ev.sender == alice
    r = await b.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hi alice"})
    assert isinstance(r, RoomSendResponse), r
    ev = await sync_until(a, "bob's reply", lambda r: next(
        (e for e in timeline(r, room_id) if isinstance(e, RoomMessageText) and e.body == "hi alice"),
        None))
    assert ev.sender == bob

    # Typing, on and off.
    r = await b.room_typing(room_id, True, timeout=10000)
    assert isinstance(r, RoomTypingResponse), r
    await sync_until(a, "bob typing", lambda r: any(
        isinstance(e, TypingNoticeEvent) and bob in e.users for e in ephemeral(r, room_id)))
    assert bob in a.rooms[room_id].typing_users
    await b.room_typing(room_id, False)
    await sync_until(a, "bob stopping", lambda r: any(
        isinstance(e, TypingNoticeEvent) and bob not in e.users for e in ephemeral(r, room_id)))

    # Unread counts, then a receipt and read markers clear them.
    ids = []
    for i in range(3):
        r = await a.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": f"u{i}"})
        assert isinstance(r, RoomSendResponse), r
        ids.append(r.event_id)
    await sync_until(b, "3 unread", lambda r: room_id in r.rooms.join and
                     r.rooms.join[room_id].unread_notifications.notification_count == 3)
    r = await b.update_receipt_marker(room_id, ids[-1])
    assert isinstance(r, UpdateReceiptMarkerResponse), r
    r = await b.room_read_markers(room_id, fully_read_event=ids[-1], read_event=ids[-1])
    assert isinstance(r, RoomReadMarkersResponse), r
    await sync_until(b, "0 unread", lambda r: room_id in r.rooms.join and
                     r.rooms.join[room_id].unread_notifications.notification_count == 0)
    rec = await sync_until(a, "bob's receipt", lambda r: next(
        (x for e in ephemeral(r, room_id) if isinstance(e, ReceiptEvent)
         for x in e.receipts if x.user_id == bob and x.event_id == ids[-1]), None))
    assert rec.receipt_type == "m.read" and rec.timestamp > 0

    # History: 60 more messages, paged back 25 at a time from the sync token.
    for i in range(60):
        r = await a.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": f"page {i}"})
        assert isinstance(r, RoomSendResponse), r
    r = await b.sync(timeout=0)
    assert isinstance(r, SyncResponse), r
    token, bodies, ends = b.next_batch, [], []
    for _ in range(20):
        r = await b.room_messages(room_id, start=token, limit=25, direction=MessageDirection.back)
        assert isinstance(r, RoomMessagesResponse), r
        bodies += [e.body for e in r.chunk if isinstance(e, RoomMessageText)]
        if not r.end:
            break
        token = r.end
        ends.append(r.end)
    else:
        raise AssertionError("backward paging never ended")
    assert r.chunk == [] or r.chunk[-1].source["type"] == "m.room.create", r.chunk
    want = [f"page {i}" for i in reversed(range(60))] + ["u2", "u1", "u0", "hi alice", "hi bob"]
    assert bodies == want, bodies
    # Forwards from the end of the first page: the 25 events that page held.
    r = await b.room_messages(room_id, start=ends[0], limit=100, direction=MessageDirection.front)
    assert isinstance(r, RoomMessagesResponse), r
    fwd = [e.body for e in r.chunk if isinstance(e, RoomMessageText)]
    assert fwd == [f"page {i}" for i in range(35, 60)], fwd

    r = await a.joined_members(room_id)
    assert isinstance(r, JoinedMembersResponse), r
    assert sorted(m.user_id for m in r.members) == sorted([alice, bob])

    # Leave: alice sees it, bob can no longer send, then forgets the room.
    r = await b.room_leave(room_id)
    assert isinstance(r, RoomLeaveResponse), r
    await sync_until(a, "bob's leave", lambda r: any(
        isinstance(e, RoomMemberEvent) and e.state_key == bob and e.membership == "leave"
        for e in timeline(r, room_id)))
    assert bob not in a.rooms[room_id].users
    await sync_until(b, "the room under leave", lambda r: room_id in r.rooms.leave)
    r = await b.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "gone"})
    assert isinstance(r, ErrorResponse) and r.status_code == "M_FORBIDDEN", r
    r = await b.room_forget(room_id)
    assert isinstance(r, RoomForgetResponse), r
