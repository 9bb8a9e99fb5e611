// guest.mjs — a guest as Element Web makes one, through matrix-js-sdk:
// registerGuest, a started client with setGuest(true) (its sync sends an
// inline filter, no push rules, no POST filter), peekInRoom into a
// world-readable room (GET /rooms/{id}/initialSync, then the /events long
// poll brings a later message), joinRoom into a room that lets guests in,
// messages both ways, a refused createRoom, and the upgrade to a full account
// through register(…, guestAccessToken), which keeps the user ID.
// Env: PVYHS_BASE, PVYHS_HOST_TOKEN, PVYHS_PEEK_ROOM (world readable),
// PVYHS_ROOM (guest_access can_join).
import * as sdk from "matrix-js-sdk";

import { BASE, log, report, rest, until, run } from "./lib.mjs";

const HOST = process.env.PVYHS_HOST_TOKEN;
const PEEK = process.env.PVYHS_PEEK_ROOM;
const ROOM = process.env.PVYHS_ROOM;

const bodies = (room) =>
  room ? room.getLiveTimeline().getEvents().map((e) => e.getContent()?.body).filter(Boolean) : [];

async function hostSays(roomId, body, txn) {
  const r = await rest("PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`,
                       HOST, { msgtype: "m.text", body });
  if (r.status !== 200) throw new Error(`host send: ${r.status} ${JSON.stringify(r.json)}`);
}

async function main() {
  const tmp = sdk.createClient({ baseUrl: BASE });
  const creds = await tmp.registerGuest({ body: { initial_device_display_name: "js guest" } });
  const guest = sdk.createClient({ baseUrl: BASE, userId: creds.user_id, accessToken: creds.access_token,
                                   deviceId: creds.device_id });
  guest.setGuest(true);
  const prepared = new Promise((resolve) => guest.on(sdk.ClientEvent.Sync, (s) => {
    if (s === "PREPARED" || s === "SYNCING") resolve();
  }));
  await guest.startClient({ initialSyncLimit: 10 });
  await prepared;
  report({ step: "started", user_id: creds.user_id });

  const peeked = await guest.peekInRoom(PEEK);
  const first = bodies(peeked);
  // js-sdk's first /events poll after /initialSync carries no `from` (so
  // "from now on", on Synapse too): a message sent before that poll reached
  // the server would be missed by any server. Let it get there first.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await hostSays(PEEK, "said while peeking", "p1");
  await until("the peeked room's next message (/events)", () => bodies(peeked).includes("said while peeking"), 40000, 100);
  report({ step: "peeked", first, name: peeked.name });
  guest.stopPeeking();

  await guest.joinRoom(ROOM);
  await guest.sendTextMessage(ROOM, "hello from a js guest");
  await hostSays(ROOM, "welcome, guest", "w1");
  await until("the host's message in the guest's room", () => bodies(guest.getRoom(ROOM)).includes("welcome, guest"), 30000, 100);
  report({ step: "joined" });

  let refused = null;
  try {
    await guest.createRoom({ name: "not for guests" });
  } catch (e) {
    refused = { status: e.httpStatus, errcode: e.errcode };
  }
  report({ step: "createRoom", refused });
  guest.stopClient();

  const localpart = creds.user_id.slice(1).split(":")[0];
  let session;
  try {
    await tmp.register(localpart, "js-upgraded", undefined, undefined, undefined, creds.access_token);
  } catch (e) {
    if (e.httpStatus !== 401) throw e;
    session = e.data.session;
  }
  const up = await tmp.register(localpart, "js-upgraded", session, { type: "m.login.dummy" }, undefined,
                                creds.access_token);
  const who = await rest("GET", "/_matrix/client/v3/account/whoami", up.access_token);
  report({ step: "upgraded", user_id: up.user_id, is_guest: who.json.is_guest });
  report({ ok: true });
}

run(main);
