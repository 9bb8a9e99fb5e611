// flows.mjs — what Element does, through matrix-js-sdk against pvyhs:
// registration and login of three users, started clients (PREPARED), rooms of
// every preset, membership (invite, join, leave, reject, kick, ban, unban,
// forget), messages arriving by /sync, typing, receipts and unread counts,
// edits, reactions, replies, threads, redactions, pagination back through
// 1,000 messages, room upgrade, knocking, search, the public room directory,
// media and profiles.
//
// Each step prints one JSON line on stdout: {"step": name, "ok": true|false,
// "ms": ..., "error"?, "status"?, "errcode"?}; the Python wrapper
// (tests/integration/test_js_flows.py) asserts every step. A failing step does
// not stop the ones after it (each builds its own rooms) unless the clients
// themselves could not start. The last line is {"done": true}.
// Env: PVYHS_BASE, PVYHS_SERVER_NAME, PVYHS_PASSWORD, PVYHS_PREFIX (user name prefix).
import * as sdk from "matrix-js-sdk";

import { BASE, PASSWORD, STEP_MS, log, nextEvent, report, rest, until as untilLib, within, run } from "./lib.mjs";

const SERVER = process.env.PVYHS_SERVER_NAME;
const PREFIX = process.env.PVYHS_PREFIX || "flows";
const { Preset, NotificationCountType, ReceiptType, Direction, ClientEvent, RoomMemberEvent } = sdk;

// ---------------------------------------------------------------- harness

// Everything here arrives within milliseconds on a healthy server: a short
// wait keeps a failing run short.
const until = (what, fn, timeoutMs = 15000, everyMs = 100) => untilLib(what, fn, timeoutMs, everyMs);

let fatal = false;

// PVYHS_ONLY (a development aid: a regular expression) runs only the steps it
// matches, and the ones that set up what the others use.
const ONLY = process.env.PVYHS_ONLY ? new RegExp(process.env.PVYHS_ONLY) : null;
const SETUP = /^(register|log in|start clients|messages arrive)/;

// Each step is bounded (timeoutMs; most need seconds): a stuck one fails
// with its name and the ones after it still run.
async function step(name, fn, timeoutMs = STEP_MS) {
  if (ONLY && !ONLY.test(name) && !SETUP.test(name)) return;
  const t0 = Date.now();
  if (fatal) {
    report({ step: name, ok: false, ms: 0, error: "not run: the clients did not start" });
    return;
  }
  try {
    const extra = await within(`step "${name}"`, fn(), timeoutMs);
    report({ step: name, ok: true, ms: Date.now() - t0, ...(extra || {}) });
  } catch (e) {
    const out = { step: name, ok: false, ms: Date.now() - t0, error: String(e?.stack || e).slice(0, 2000) };
    if (e?.httpStatus) out.status = e.httpStatus;
    if (e?.errcode) out.errcode = e.errcode;
    report(out);
    log(`step ${name} failed`, out);
  }
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// The MatrixError a call must fail with.
async function refused(promise, status, errcode, what) {
  try {
    await promise;
  } catch (e) {
    check(e.httpStatus === status, `${what}: status ${e.httpStatus} (want ${status}) ${e}`);
    if (errcode) check(e.errcode === errcode, `${what}: errcode ${e.errcode} (want ${errcode})`);
    return e;
  }
  throw new Error(`${what}: succeeded, should fail with ${status} ${errcode}`);
}

const text = (body, extra = {}) => ({ msgtype: "m.text", body, ...extra });

// An event in a client's view of a room: main timeline or any thread.
function findEvent(client, roomId, eventId) {
  const room = client.getRoom(roomId);
  if (!room) return null;
  const ev = room.findEventById(eventId);
  if (ev) return ev;
  for (const t of room.getThreads()) {
    const tev = t.findEventById(eventId);
    if (tev) return tev;
  }
  return null;
}

const seen = (client, roomId, eventId, timeoutMs = 20000) =>
  until(`${client.getUserId()} to see ${eventId} in ${roomId}`,
    () => findEvent(client, roomId, eventId), timeoutMs, 100);

const membership = (client, roomId, userId) =>
  client.getRoom(roomId)?.getMember(userId)?.membership;

const sees = (client, roomId, userId, m, timeoutMs = 20000) =>
  until(`${client.getUserId()} to see ${userId} as ${m} in ${roomId}`,
    () => membership(client, roomId, userId) === m, timeoutMs, 100);

const myMembership = (client, roomId, m, timeoutMs = 20000) =>
  until(`${client.getUserId()} to be ${m} in ${roomId}`,
    () => client.getRoom(roomId)?.getMyMembership() === m, timeoutMs, 100);

const stateEvent = (client, roomId, type, key = "") =>
  client.getRoom(roomId)?.currentState.getStateEvents(type, key) || null;

// A room whose members are joined, as every client sees it.
async function roomWith(creator, members, opts = {}) {
  const { room_id: roomId } = await creator.createRoom({ preset: Preset.PrivateChat, ...opts });
  for (const m of members) {
    await creator.invite(roomId, m.getUserId());
    await myMembership(m, roomId, "invite");
    await m.joinRoom(roomId);
  }
  for (const m of members) await sees(creator, roomId, m.getUserId(), "join");
  for (const m of members) await myMembership(m, roomId, "join");
  return roomId;
}

async function send(client, roomId, content, type = "m.room.message") {
  const { event_id } = await client.sendEvent(roomId, type, content);
  return event_id;
}

// ---------------------------------------------------------------- accounts

const names = { alice: `${PREFIX}_alice`, bob: `${PREFIX}_bob`, carol: `${PREFIX}_carol` };
const creds = {};
const C = {}; // started clients by short name

// Element's registration: 401 to learn the flows, availability, m.login.dummy.
async function register(name) {
  const anon = sdk.createClient({ baseUrl: BASE });
  check(await anon.isUsernameAvailable(name), `${name} available`);
  let session;
  try {
    await anon.registerRequest({ username: name, password: PASSWORD });
    throw new Error("POST /register without auth did not ask for user-interactive auth");
  } catch (e) {
    if (e.httpStatus !== 401) throw e;
    session = e.data?.session;
    const stages = (e.data?.flows || []).map((f) => f.stages.join(","));
    check(stages.includes("m.login.dummy"), `m.login.dummy among the flows ${JSON.stringify(stages)}`);
  }
  const r = await anon.registerRequest({
    username: name, password: PASSWORD, initial_device_display_name: "flows register",
    auth: { type: "m.login.dummy", session },
  });
  check(r.user_id === `@${name}:${SERVER}`, `user_id ${r.user_id}`);
  check(r.access_token && r.device_id, "register returned a token and a device");
  check(!(await anon.isUsernameAvailable(name)), "the name is taken now (M_USER_IN_USE)");
  return r;
}

async function login(name) {
  const anon = sdk.createClient({ baseUrl: BASE });
  const flows = await anon.loginFlows();
  check(flows.flows.some((f) => f.type === "m.login.password"), "m.login.password offered");
  await refused(anon.loginRequest({
    type: "m.login.password", identifier: { type: "m.id.user", user: name }, password: "wrong",
  }), 403, "M_FORBIDDEN", "a wrong password");
  const r = await anon.loginRequest({
    type: "m.login.password", identifier: { type: "m.id.user", user: name }, password: PASSWORD,
    initial_device_display_name: "flows",
  });
  return { userId: r.user_id, accessToken: r.access_token, deviceId: r.device_id };
}

async function startClient(c) {
  const client = sdk.createClient({ baseUrl: BASE, ...c, localTimeoutMs: STEP_MS });
  client.on(ClientEvent.Sync, (state, prev, data) => {
    if (state === "ERROR") log("sync error", { user: c.userId, error: String(data?.error) });
  });
  const prepared = nextEvent(`${c.userId} to be PREPARED`, client, ClientEvent.Sync, (state) => state === "PREPARED");
  await client.startClient({ initialSyncLimit: 20, threadSupport: true, lazyLoadMembers: true });
  await prepared;
  return client;
}

// ---------------------------------------------------------------- the flows

async function main() {
  await step("register three users", async () => {
    for (const [k, n] of Object.entries(names)) creds[k] = await register(n);
  });
  await step("log in three users", async () => {
    for (const [k, n] of Object.entries(names)) {
      const c = await login(n);
      check(c.deviceId !== creds[k]?.device_id, "a new device at each login");
      const who = await sdk.createClient({ baseUrl: BASE, ...c }).whoami();
      check(who.user_id === c.userId && who.device_id === c.deviceId, `whoami ${JSON.stringify(who)}`);
      creds[k] = c;
    }
  });
  await step("start clients (PREPARED)", async () => {
    for (const k of Object.keys(names)) C[k] = await startClient(creds[k]);
  });
  if (!C.alice || !C.bob || !C.carol) fatal = true;
  const { alice, bob, carol } = C;
  const A = () => alice.getUserId(), B = () => bob.getUserId(), Cu = () => carol.getUserId();

  await step("create rooms of every preset", async () => {
    const want = {
      [Preset.PrivateChat]: { join: "invite", hist: "shared", guest: "can_join" },
      [Preset.TrustedPrivateChat]: { join: "invite", hist: "shared", guest: "can_join" },
      [Preset.PublicChat]: { join: "public", hist: "shared", guest: "forbidden" },
    };
    for (const [preset, w] of Object.entries(want)) {
      const opts = { preset, name: `flows ${preset}`, topic: `topic of ${preset}` };
      if (preset === Preset.TrustedPrivateChat) Object.assign(opts, { invite: [B()], is_direct: true });
      const { room_id: roomId } = await alice.createRoom(opts);
      const room = await until(`room ${roomId} in alice's client`, () => alice.getRoom(roomId));
      await until(`${preset} state`, () => stateEvent(alice, roomId, "m.room.join_rules"));
      check(room.getJoinRule() === w.join, `${preset} join rule ${room.getJoinRule()}`);
      check(room.getHistoryVisibility() === w.hist, `${preset} history ${room.getHistoryVisibility()}`);
      check(room.getGuestAccess() === w.guest, `${preset} guest access ${room.getGuestAccess()}`);
      check(room.name === `flows ${preset}`, `${preset} name ${room.name}`);
      check(stateEvent(alice, roomId, "m.room.topic")?.getContent().topic === `topic of ${preset}`, "topic");
      check(room.getVersion() === "12", `default room version ${room.getVersion()}`);
      const create = stateEvent(alice, roomId, "m.room.create");
      check(create.getSender() === A(), "creator");
      const pl = stateEvent(alice, roomId, "m.room.power_levels").getContent();
      if (preset === Preset.TrustedPrivateChat) {
        // In room version 12 invitees get the creator's power as additional creators.
        check(create.getContent().additional_creators?.includes(B()) && !pl.users?.[A()],
          `trusted_private_chat makes invitees creators: ${JSON.stringify(create.getContent())}`);
        await myMembership(bob, roomId, "invite");
        const inv = bob.getRoom(roomId).getMember(B()).events.member;
        check(inv.getContent().is_direct === true, "is_direct on the invite");
        check(inv.getSender() === A(), "inviter");
        await bob.joinRoom(roomId);
        await sees(alice, roomId, B(), "join");
      }
    }
    // Element records direct rooms in m.direct.
    await alice.setAccountData("m.direct", { [B()]: ["!x"] });
    await until("m.direct account data", () => alice.getAccountData("m.direct")?.getContent()[B()]);
  });

  await step("invites carry the invitee's profile (createRoom and /invite)", async () => {
    // Synapse fills displayname/avatar_url into invite events (its
    // include_profile_data_on_invite, on by default); clients show the name.
    const carolName = (await carol.getProfileInfo(Cu())).displayname;
    check(carolName, "carol has a display name");
    const { room_id: viaCreate } = await alice.createRoom({ preset: Preset.PrivateChat, invite: [Cu()] });
    const { room_id: viaInvite } = await alice.createRoom({ preset: Preset.PrivateChat });
    await alice.invite(viaInvite, Cu());
    for (const [how, roomId] of [["/invite", viaInvite], ["createRoom", viaCreate]]) {
      const ev = await until(`carol's invite via ${how}`, () => stateEvent(alice, roomId, "m.room.member", Cu()));
      check(ev.getContent().displayname === carolName,
        `the invite via ${how} names carol: ${JSON.stringify(ev.getContent())}`);
    }
  });

  await step("invite, join, reject, leave", async () => {
    const { room_id: roomId } = await alice.createRoom({ preset: Preset.PrivateChat, name: "flows members" });
    await refused(carol.joinRoom(roomId), 403, "M_FORBIDDEN", "joining an invite-only room uninvited");
    await alice.invite(roomId, Cu());
    await myMembership(carol, roomId, "invite");
    check(carol.getRoom(roomId).name === "flows members", "the invite carries the room name (stripped state)");
    await carol.leave(roomId); // reject
    await sees(alice, roomId, Cu(), "leave");
    await alice.invite(roomId, Cu());
    await myMembership(carol, roomId, "invite");
    await carol.joinRoom(roomId);
    await sees(alice, roomId, Cu(), "join");
    await myMembership(carol, roomId, "join");
    const joined = await alice.getJoinedRoomMembers(roomId);
    check(Object.keys(joined.joined).sort().join() === [A(), Cu()].sort().join(), "joined_members");
    await carol.leave(roomId);
    await sees(alice, roomId, Cu(), "leave");
    await myMembership(carol, roomId, "leave");
    await carol.forget(roomId);
    check(!(await carol.getJoinedRooms()).joined_rooms.includes(roomId), "no longer in joined_rooms");
  });

  await step("join by alias, kick, ban, unban", async () => {
    const alias = `#${PREFIX}-pub:${SERVER}`;
    const { room_id: roomId } = await alice.createRoom({
      preset: Preset.PublicChat, room_alias_name: `${PREFIX}-pub`, name: "flows public",
    });
    check((await carol.getRoomIdForAlias(alias)).room_id === roomId, "alias resolves");
    await carol.joinRoom(alias);
    await sees(alice, roomId, Cu(), "join");
    await bob.joinRoom(roomId);
    await sees(alice, roomId, B(), "join");
    await refused(bob.kick(roomId, Cu(), "no"), 403, "M_FORBIDDEN", "bob (PL 0) kicking");
    await alice.kick(roomId, Cu(), "flows kick");
    await myMembership(carol, roomId, "leave");
    const kick = carol.getRoom(roomId).getMember(Cu()).events.member;
    check(kick.getSender() === A() && kick.getContent().reason === "flows kick", "the kick as carol sees it");
    await carol.joinRoom(roomId); // a kick is not a ban
    await sees(alice, roomId, Cu(), "join");
    await alice.ban(roomId, Cu(), "flows ban");
    await sees(bob, roomId, Cu(), "ban");
    await myMembership(carol, roomId, "ban");
    await refused(carol.joinRoom(roomId), 403, "M_FORBIDDEN", "joining while banned");
    await alice.unban(roomId, Cu());
    await sees(alice, roomId, Cu(), "leave");
    await carol.joinRoom(roomId);
    await sees(bob, roomId, Cu(), "join");
    await bob.leave(roomId);
    await sees(alice, roomId, B(), "leave");
  });

  let chat; // alice, bob and carol, joined
  await step("messages arrive by sync", async () => {
    chat = await roomWith(alice, [bob, carol], { name: "flows chat" });
    const arrivals = nextEvent("bob's timeline event", bob, sdk.RoomEvent.Timeline,
      (ev, room, toStart) => room?.roomId === chat && !toStart && ev.getContent().body === "hello from alice",
      20000);
    const id = await send(alice, chat, text("hello from alice"));
    const ev = await arrivals;
    check(ev.getId() === id && ev.getSender() === A(), "bob got alice's event");
    const id2 = await send(bob, chat, text("hello from bob"));
    const mine = await seen(alice, chat, id2);
    check(mine.getContent().body === "hello from bob", "alice got bob's");
    await seen(carol, chat, id2);
    // The local echo of alice's own message became the remote event.
    const own = findEvent(alice, chat, id);
    check(own && own.status === null, `alice's own event is sent (${own?.status})`);
    // Room name and topic changes reach the others.
    await alice.setRoomName(chat, "flows chat renamed");
    await alice.setRoomTopic(chat, "a topic");
    await until("bob to see the new name", () => bob.getRoom(chat).name === "flows chat renamed");
    await until("carol to see the topic",
      () => stateEvent(carol, chat, "m.room.topic")?.getContent().topic === "a topic");
  });

  await step("lazy-loaded members: a sender's membership comes with the message", async () => {
    // Carol joined after bob, with lazy_load_members: bob's m.room.member must
    // reach her in the state section of the sync that brings his message.
    const id = await send(bob, chat, text("who am I?"));
    const ev = await seen(carol, chat, id);
    await until(`carol to know bob's membership (${carol.getRoom(chat).getMembers().map((m) => m.userId)})`,
      () => membership(carol, chat, B()) === "join", 5000);
    check(findEvent(carol, chat, id).sender?.userId === B(), "the event's sender member");
  });

  await step("typing", async () => {
    // Element loads the member list when a room is opened.
    for (const c of [alice, bob, carol]) await c.getRoom(chat).loadMembersIfNeeded();
    await bob.sendTyping(chat, true, 20000);
    await until("alice to see bob typing", () => alice.getRoom(chat).getMember(B())?.typing === true);
    await until("carol to see bob typing", () => carol.getRoom(chat).getMember(B())?.typing === true);
    await bob.sendTyping(chat, false, 0);
    await until("alice to see bob stop", () => alice.getRoom(chat).getMember(B())?.typing === false);
  });

  await step("receipts and unread counts", async () => {
    const roomId = await roomWith(alice, [bob], { name: "flows unread" });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await send(alice, roomId, text(`unread ${i}`)));
    ids.push(await send(alice, roomId, text(`hey ${B()}`, { "m.mentions": { user_ids: [B()] } })));
    const room = bob.getRoom(roomId);
    await until(`bob's unread count 4 (is ${room.getUnreadNotificationCount(NotificationCountType.Total)})`,
      () => room.getUnreadNotificationCount(NotificationCountType.Total) === 4);
    await until(`bob's highlight count 1 (is ${room.getUnreadNotificationCount(NotificationCountType.Highlight)})`,
      () => room.getUnreadNotificationCount(NotificationCountType.Highlight) === 1);
    // A private receipt clears the count but stays unseen by alice.
    const second = await seen(bob, roomId, ids[1]);
    await bob.sendReadReceipt(second, ReceiptType.ReadPrivate);
    await until("bob's unread count 2 after a private receipt",
      () => room.getUnreadNotificationCount(NotificationCountType.Total) === 2);
    // Then the public one, up to the last message, with the fully-read marker.
    const last = await seen(bob, roomId, ids[3]);
    await bob.setRoomReadMarkers(roomId, ids[3], last);
    await until("bob's unread counts 0", () =>
      room.getUnreadNotificationCount(NotificationCountType.Total) === 0 &&
      room.getUnreadNotificationCount(NotificationCountType.Highlight) === 0);
    const aroom = alice.getRoom(roomId);
    await until("alice to see bob's public receipt", () =>
      aroom.getReadReceiptForUserId(B(), true, ReceiptType.Read)?.eventId === ids[3]);
    check(!aroom.getReadReceiptForUserId(B(), true, ReceiptType.ReadPrivate), "no private receipt for alice");
    await until("bob's m.fully_read", () =>
      room.getAccountData("m.fully_read")?.getContent().event_id === ids[3]);
  });

  await step("edits (m.replace)", async () => {
    const orig = await send(alice, chat, text("first draft"));
    await seen(bob, chat, orig);
    const edit = await send(alice, chat, text("* final text", {
      "m.new_content": text("final text"),
      "m.relates_to": { rel_type: "m.replace", event_id: orig },
    }));
    await until("bob to apply the edit", () => findEvent(bob, chat, orig)?.replacingEventId() === edit);
    check(findEvent(bob, chat, orig).getContent().body === "final text", "the edited body");
    // Someone else's edit is not applied.
    const forged = await send(bob, chat, text("* forged", {
      "m.new_content": text("forged"), "m.relates_to": { rel_type: "m.replace", event_id: orig },
    }));
    await seen(alice, chat, forged);
    check(findEvent(alice, chat, orig).getContent().body === "final text", "bob's edit of alice's message ignored");
  });

  await step("edits: server-side aggregation (m.relations on the original)", async () => {
    const orig = await send(alice, chat, text("v1"));
    const edit = await send(alice, chat, text("* v2", {
      "m.new_content": text("v2"), "m.relates_to": { rel_type: "m.replace", event_id: orig },
    }));
    const ev = await bob.fetchRoomEvent(chat, orig);
    const agg = ev.unsigned?.["m.relations"]?.["m.replace"];
    check(agg?.event_id === edit, `unsigned.m.relations.m.replace on /event: ${JSON.stringify(ev.unsigned)}`);
  });

  let reacted;
  await step("reactions", async () => {
    reacted = await send(alice, chat, text("react to me"));
    await seen(bob, chat, reacted);
    const r1 = await send(bob, chat, { "m.relates_to": { rel_type: "m.annotation", event_id: reacted, key: "👍" } }, "m.reaction");
    await send(carol, chat, { "m.relates_to": { rel_type: "m.annotation", event_id: reacted, key: "👍" } }, "m.reaction");
    await send(carol, chat, { "m.relates_to": { rel_type: "m.annotation", event_id: reacted, key: "🎉" } }, "m.reaction");
    const keys = () => {
      const rel = alice.getRoom(chat).relations.getChildEventsForEvent(reacted, "m.annotation", "m.reaction");
      return rel ? Object.fromEntries(rel.getSortedAnnotationsByKey().map(([k, s]) => [k, s.size])) : {};
    };
    await until(`alice to see 👍×2 🎉×1 (${JSON.stringify(keys())})`, () => keys()["👍"] === 2 && keys()["🎉"] === 1);
    // Taking a reaction back is a redaction.
    await bob.redactEvent(chat, r1);
    await until(`alice to see 👍×1 (${JSON.stringify(keys())})`, () => keys()["👍"] === 1);
  });

  await step("relations API (/relations)", async () => {
    const r = await bob.fetchRelations(chat, reacted, "m.annotation", "m.reaction");
    const ks = r.chunk.map((e) => e.content["m.relates_to"].key).sort();
    check(JSON.stringify(ks) === JSON.stringify(["🎉", "👍"]), `reactions over /relations: ${JSON.stringify(ks)}`);
    const all = await bob.fetchRelations(chat, reacted, null);
    check(all.chunk.length === 2, `all relations: ${all.chunk.length}`);
  });

  await step("replies", async () => {
    const q = await send(alice, chat, text("question?"));
    await seen(bob, chat, q);
    const a = await send(bob, chat, text("answer!", { "m.relates_to": { "m.in_reply_to": { event_id: q } } }));
    const ev = await seen(alice, chat, a);
    check(ev.replyEventId === q, `replyEventId ${ev.replyEventId}`);
    // Element fetches the replied-to event by ID to render the quote.
    const quoted = await alice.fetchRoomEvent(chat, q);
    check(quoted.content.body === "question?", "the quoted event over /event");
  });

  let root;
  await step("threads", async () => {
    root = await send(alice, chat, text("thread root"));
    await seen(bob, chat, root);
    const rel = () => ({ "m.relates_to": { rel_type: "m.thread", event_id: root, is_falling_back: true, "m.in_reply_to": { event_id: root } } });
    const t1 = (await bob.sendMessage(chat, root, text("in thread 1", rel()))).event_id;
    const t2 = (await carol.sendMessage(chat, root, text("in thread 2", rel()))).event_id;
    // matrix-js-sdk files m.thread replies into threads only when /versions
    // lists v1.4 or later; below that it knows only io.element.thread.
    const support = sdk.Thread.hasServerSideSupport;
    const why = support === sdk.FeatureSupport.Stable ? "" :
      ` (matrix-js-sdk's thread support is ${sdk.FeatureSupport[support]}: /versions lists no v1.4+, so m.thread is not recognised)`;
    await until(`alice to see the thread with ${t1} and ${t2}${why}`, () => {
      const t = alice.getRoom(chat).getThread(root);
      return t && t.findEventById(t1) && t.findEventById(t2);
    }, 10000);
    const thread = alice.getRoom(chat).getThread(root);
    check(thread.rootEvent?.getId() === root, "thread root");
    check(!alice.getRoom(chat).getLiveTimeline().getEvents().some((e) => e.getId() === t1),
      "thread replies stay out of the main timeline");
  });

  await step("threads: server-side (/threads, thread aggregation, thread unread counts)", async () => {
    // The spec's v1 endpoint (matrix-js-sdk would call it once /versions lists
    // v1.4; before that it asks MSC3856's unstable path).
    const r = await alice.http.authedRequest(sdk.Method.Get, `/rooms/${encodeURIComponent(chat)}/threads`,
      { limit: "20" }, undefined, { prefix: sdk.ClientPrefix.V1 });
    check(r.chunk.some((e) => e.event_id === root), `root in /threads: ${JSON.stringify(r.chunk.map((e) => e.event_id))}`);
    const ev = await alice.fetchRoomEvent(chat, root);
    const t = ev.unsigned?.["m.relations"]?.["m.thread"];
    // alice sent the root: she has participated (spec, threading module)
    check(t?.count === 2 && t.current_user_participated === true && t.latest_event?.content?.body === "in thread 2",
      `unsigned.m.relations.m.thread: ${JSON.stringify(ev.unsigned)}`);
    // eventType null, as Element passes it (undefined would be sent as a path segment)
    const rel = await alice.fetchRelations(chat, root, "m.thread", null);
    check(rel.chunk.length === 2, `thread relations: ${rel.chunk.length}`);
    // Thread unread counts, asked for in the filter as matrix-js-sdk does once
    // /versions lists v1.4 (it does not ask before).
    const filter = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 1, unread_thread_notifications: true } } }));
    const sync = await rest("GET", `/_matrix/client/v3/sync?timeout=0&filter=${filter}`, alice.getAccessToken());
    const utn = sync.json.rooms?.join?.[chat]?.unread_thread_notifications;
    check(utn?.[root]?.notification_count === 2, `alice's unread_thread_notifications: ${JSON.stringify(utn)}`);
  });

  await step("redactions", async () => {
    const id = await send(alice, chat, text("oops, secret"));
    await seen(bob, chat, id);
    await refused(bob.redactEvent(chat, id), 403, "M_FORBIDDEN", "bob (PL 0) redacting alice's event");
    await alice.redactEvent(chat, id, undefined, { reason: "flows redaction" });
    await until("bob to see it redacted", () => findEvent(bob, chat, id)?.isRedacted());
    const ev = findEvent(bob, chat, id);
    check(!ev.getContent().body, "redacted content gone");
    const raw = await carol.fetchRoomEvent(chat, id);
    check(Object.keys(raw.content).length === 0, `/event content after redaction: ${JSON.stringify(raw.content)}`);
    check(raw.unsigned?.redacted_because?.content?.reason === "flows redaction",
      `redacted_because ${JSON.stringify(raw.unsigned)}`);
  });

  await step("pagination back through 1,000 messages", async () => {
    const { room_id: roomId } = await alice.createRoom({ preset: Preset.PublicChat, name: "flows history" });
    const t0 = Date.now();
    const tok = alice.getAccessToken();
    for (let i = 0; i < 1000; i++) {
      const r = await rest("PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/h${i}`,
        tok, text(`history ${i}`));
      check(r.status === 200, `send ${i}: ${r.status} ${JSON.stringify(r.json)}`);
    }
    const sendMs = Date.now() - t0;
    await carol.joinRoom(roomId);
    const room = await until("carol's room", () => carol.getRoom(roomId)?.getMyMembership() === "join" && carol.getRoom(roomId));
    const tl = room.getLiveTimeline();
    const t1 = Date.now();
    let pages = 0;
    while (await carol.paginateEventTimeline(tl, { backwards: true, limit: 100 })) {
      check(++pages < 40, "pagination ends");
    }
    const pageMs = Date.now() - t1;
    const bodies = tl.getEvents().filter((e) => e.getType() === "m.room.message").map((e) => e.getContent().body);
    const want = Array.from({ length: 1000 }, (_, i) => `history ${i}`);
    check(bodies.length === 1000, `1000 messages back (got ${bodies.length})`);
    check(JSON.stringify(bodies) === JSON.stringify(want), "in order, none missing");
    check(tl.getEvents()[0].getType() === "m.room.create", "reached the create event");
    // And forwards from the start, as /messages?dir=f without from.
    let from = null, fwd = 0;
    for (let n = 0; n < 40; n++) {
      const r = await carol.createMessagesRequest(roomId, from, 250, Direction.Forward);
      fwd += r.chunk.filter((e) => e.type === "m.room.message").length;
      if (!r.end) break;
      from = r.end;
    }
    check(fwd === 1000, `forward pagination saw ${fwd}`);
    return { send_ms: sendMs, paginate_ms: pageMs, pages };
  }, 5 * STEP_MS); // 1,000 sends, then paging back and forth

  await step("room upgrade", async () => {
    const old = await roomWith(alice, [bob], { preset: Preset.PrivateChat, room_version: "11", name: "flows old" });
    const { replacement_room: neu } = await alice.upgradeRoom(old, "12");
    check(neu && neu !== old, "a replacement room");
    await until("bob to see the tombstone", () =>
      stateEvent(bob, old, "m.room.tombstone")?.getContent().replacement_room === neu);
    await refused(send(bob, old, text("too late")), 403, "M_FORBIDDEN", "sending in the old room (PLs raised)");
    // An invite-only room: Element's upgrade dialog invites the old members itself.
    await alice.invite(neu, B());
    await myMembership(bob, neu, "invite");
    await bob.joinRoom(neu);
    const nroom = await until("bob's new room", () => bob.getRoom(neu)?.getMyMembership() === "join" && bob.getRoom(neu));
    check(nroom.findPredecessor()?.roomId === old, "predecessor in the new create event");
    check(nroom.getVersion() === "12", `new version ${nroom.getVersion()}`);
    check(nroom.name === "flows old", "the name carried over");
  });

  await step("knocking", async () => {
    const knockRules = { type: "m.room.join_rules", state_key: "", content: { join_rule: "knock" } };
    const { room_id: roomId } = await alice.createRoom({ name: "flows knock", initial_state: [knockRules] });
    // Knock, accepted by an invite.
    await carol.knockRoom(roomId, { reason: "let me in" });
    await myMembership(carol, roomId, "knock");
    check(carol.getRoom(roomId).name === "flows knock", "knock section carries stripped state");
    await sees(alice, roomId, Cu(), "knock");
    check(alice.getRoom(roomId).getMember(Cu()).events.member.getContent().reason === "let me in", "knock reason");
    await alice.invite(roomId, Cu());
    await myMembership(carol, roomId, "invite");
    await carol.joinRoom(roomId);
    await sees(alice, roomId, Cu(), "join");
    // Knock, denied by a kick.
    await bob.knockRoom(roomId);
    await sees(alice, roomId, B(), "knock");
    await alice.kick(roomId, B(), "no");
    await myMembership(bob, roomId, "leave");
    // Knocking where the join rule does not allow it.
    const { room_id: closed } = await alice.createRoom({ preset: Preset.PrivateChat });
    await refused(bob.knockRoom(closed), 403, "M_FORBIDDEN", "knocking on an invite-only room");
  });

  await step("search (/search)", async () => {
    const id = await send(alice, chat, text("the quokka is a small marsupial"));
    await seen(bob, chat, id);
    const r = await bob.searchRoomEvents({ term: "quokka" });
    check(r.results.some((x) => x.context.getEvent().getId() === id), `search results: ${r.results.length}`);
  });

  await step("public room directory (/publicRooms)", async () => {
    const { room_id: roomId } = await alice.createRoom({
      preset: Preset.PublicChat, visibility: sdk.Visibility.Public, name: "flows directory",
      room_alias_name: `${PREFIX}-dir`, topic: "listed",
    });
    check((await alice.getRoomDirectoryVisibility(roomId)).visibility === "public", "directory visibility");
    const r = await carol.publicRooms({ limit: 50 });
    const entry = r.chunk.find((x) => x.room_id === roomId);
    check(entry?.name === "flows directory" && entry.topic === "listed" &&
      entry.canonical_alias === `#${PREFIX}-dir:${SERVER}` && entry.num_joined_members === 1,
      `the room in /publicRooms: ${JSON.stringify(entry)}`);
    await alice.setRoomDirectoryVisibility(roomId, sdk.Visibility.Private);
    const r2 = await carol.publicRooms({ limit: 50 });
    check(!r2.chunk.some((x) => x.room_id === roomId), "unlisted again");
  });

  await step("media: upload, send an image, download", async () => {
    // An 8x8 red PNG.
    const png = Buffer.from(
      "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEklEQVR4nGP4z8CAFWEXHbQSACj/P8Fu7N9hAAAAAElFTkSuQmCC",
      "base64");
    const { content_uri: mxc } = await alice.uploadContent(png, { type: "image/png", name: "red.png" });
    check(mxc?.startsWith(`mxc://${SERVER}/`), `mxc ${mxc}`);
    const id = await send(alice, chat, {
      msgtype: "m.image", body: "red.png", url: mxc, info: { mimetype: "image/png", w: 8, h: 8, size: png.length },
    });
    const ev = await seen(bob, chat, id);
    const url = bob.mxcUrlToHttp(ev.getContent().url, undefined, undefined, undefined, false, true, true);
    const r = await fetch(url, { headers: { Authorization: `Bearer ${bob.getAccessToken()}` } });
    check(r.status === 200, `download ${r.status} ${url}`);
    const got = Buffer.from(await r.arrayBuffer());
    check(got.equals(png), "the same bytes back");
    const thumb = bob.mxcUrlToHttp(mxc, 4, 4, "scale", false, true, true);
    const t = await fetch(thumb, { headers: { Authorization: `Bearer ${bob.getAccessToken()}` } });
    check(t.status === 200 && t.headers.get("content-type")?.startsWith("image/"), `thumbnail ${t.status}`);
    // An avatar: Element uploads, then sets avatar_url.
    await alice.setAvatarUrl(mxc);
    await until("bob to see alice's avatar in the room", () =>
      bob.getRoom(chat).getMember(A())?.getMxcAvatarUrl() === mxc);
  });

  await step("profile: display name reaches the rooms", async () => {
    await bob.setDisplayName("Bob Flows");
    await until("alice to see bob's new name", () => alice.getRoom(chat).getMember(B())?.name === "Bob Flows");
    check((await carol.getProfileInfo(B())).displayname === "Bob Flows", "the profile");
  });

  await step("tags and leave", async () => {
    await carol.setRoomTag(chat, "m.favourite", { order: 0.5 });
    await until("carol's favourite tag", () => carol.getRoom(chat).tags["m.favourite"]?.order === 0.5);
    await carol.leave(chat);
    await sees(alice, chat, Cu(), "leave");
    await myMembership(carol, chat, "leave");
  });

  for (const c of Object.values(C)) c.stopClient();
  report({ done: true });
}

run(main, (e) => report({ fatal: String(e?.stack || e) }));
