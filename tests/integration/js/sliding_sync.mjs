// sliding_sync.mjs — matrix-js-sdk's SlidingSync (the simplified MSC4186
// endpoint, as Element Web uses it) driving a MatrixClient against pvyhs:
// a list sorted by activity, a subscription to a room outside the list's
// window, a message arriving live, and the typing, receipts and account_data
// extensions SlidingSyncSdk registers. The Python driver is
// test_sliding_sync_js.py; each step reports one JSON line on stdout.
import * as sdk from "matrix-js-sdk";
import { SlidingSync, SlidingSyncEvent, SlidingSyncState } from "matrix-js-sdk/lib/sliding-sync.js";
import { BASE, login, nextEvent, report, rest, run, until, within } from "./lib.mjs";

const ALICE = process.env.PVYHS_ALICE, BOB = process.env.PVYHS_BOB;

async function main() {
  const alice = await login(ALICE), bob = await login(BOB);
  const V3 = "/_matrix/client/v3";
  const make = async (name) => {
    const r = await rest("POST", `${V3}/createRoom`, alice.accessToken,
      { name, preset: "public_chat", invite: [bob.userId] });
    if (r.status !== 200) throw new Error(`createRoom ${JSON.stringify(r.json)}`);
    await rest("POST", `${V3}/rooms/${r.json.room_id}/join`, bob.accessToken, {});
    return r.json.room_id;
  };
  let txn = 0;
  const say = (room, body) => rest("PUT", `${V3}/rooms/${room}/send/m.room.message/js${txn++}`,
    alice.accessToken, { msgtype: "m.text", body });
  // "Old" is the least recent: outside the list's window [0, 1].
  const old = await make("Old");
  await say(old, "old news");
  const mid = await make("Mid");
  const top = await make("Top");
  await say(mid, "mid");
  await say(top, "top");
  await rest("PUT", `${V3}/user/${bob.userId}/account_data/org.example.js`, bob.accessToken, { v: 1 });

  const client = sdk.createClient({ baseUrl: BASE, ...bob, localTimeoutMs: 60000 });
  const lists = new Map([["all", {
    ranges: [[0, 1]],
    timeline_limit: 5,
    required_state: [["m.room.name", ""], ["m.room.create", ""], ["m.room.member", "$LAZY"],
      ["m.room.join_rules", ""], ["m.room.power_levels", ""]],
  }]]);
  const subInfo = { timeline_limit: 10, required_state: [["*", "*"]] };
  const slidingSync = new SlidingSync(BASE, lists, subInfo, client, 5000);
  slidingSync.modifyRoomSubscriptions(new Set([old]));
  const responses = [];
  slidingSync.on(SlidingSyncEvent.Lifecycle, (state, resp, err) => {
    if (state === SlidingSyncState.RequestFinished) responses.push(err ? { err: String(err) } : resp);
  });
  await client.startClient({ slidingSync });

  await until("the list's rooms and the subscribed room", () =>
    [old, mid, top].every((id) => client.getRoom(id)?.name));
  const first = responses.find((r) => r && r.rooms);
  report({
    step: "first", count: slidingSync.getListData("all")?.joinedCount,
    names: Object.fromEntries([old, mid, top].map((id) => [id, client.getRoom(id).name])),
    oldTimeline: client.getRoom(old).getLiveTimeline().getEvents().map((e) => e.getType()),
    initial: Object.fromEntries(Object.entries(first.rooms).map(([id, r]) => [id, !!r.initial])),
    accountData: client.getAccountData("org.example.js")?.getContent() ?? null,
    errors: responses.filter((r) => r && r.err).length,
  });

  // A live message in a room of the window reaches the Room's timeline.
  const t0 = Date.now();
  const got = nextEvent("the live message", client, sdk.RoomEvent.Timeline,
    (ev) => ev.getRoomId() === mid && ev.getContent().body === "live!");
  await say(mid, "live!");
  await got;
  report({ step: "live", ms: Date.now() - t0,
    last: client.getRoom(mid).getLiveTimeline().getEvents().at(-1).getContent().body });

  // Typing and a read receipt from Alice come through the extensions.
  const typing = nextEvent("typing", client, sdk.RoomMemberEvent.Typing,
    (_ev, member) => member.userId === alice.userId && member.typing);
  await rest("PUT", `${V3}/rooms/${mid}/typing/${alice.userId}`, alice.accessToken,
    { typing: true, timeout: 30000 });
  await typing;
  const lastId = client.getRoom(mid).getLiveTimeline().getEvents().at(-1).getId();
  await rest("POST", `${V3}/rooms/${mid}/receipt/m.read/${encodeURIComponent(lastId)}`,
    alice.accessToken, {});
  await until("alice's receipt", () =>
    client.getRoom(mid).getReadReceiptForUserId(alice.userId)?.eventId === lastId);
  report({ step: "extensions", typing: true, receipt: lastId });

  slidingSync.stop();
  client.stopClient();
  report({ ok: true });
}

run(main, (e) => report({ ok: false, error: String(e) }));
