// channels.mjs — the four kinds of channel made with matrix-js-sdk exactly as
// Element's create dialog makes them (createRoom.ts), and a real Megolm
// message in the encrypted private one (the Python side checks that the
// database holds only its ciphertext).
// Env: PVYHS_BASE, PVYHS_ALICE, PVYHS_BOB, PVYHS_MARKER (the plaintext).
// Prints {"kind", "room_id", "encryption", "join_rule"} per kind, then
// {"step": "sent"|"decrypted", …}, then {"ok": true}.
import { ENCRYPTION, decrypted, joined, log, report, start, stopAll, text, until, run } from "./lib.mjs";

const ALICE = process.env.PVYHS_ALICE;
const BOB = process.env.PVYHS_BOB;
const MARKER = process.env.PVYHS_MARKER;

const GUESTS = { type: "m.room.guest_access", state_key: "", content: { guest_access: "can_join" } };

// Element: private rooms are private_chat with guest access, and encryption
// in initial_state when the toggle is on (always on when the server forces it).
function privateOpts(name, encrypted) {
  return {
    preset: "private_chat",
    visibility: "private",
    name,
    initial_state: encrypted ? [GUESTS, ENCRYPTION] : [GUESTS],
  };
}

// Element: public rooms are public_chat, published, with the alias field.
function publicOpts(name, alias) {
  return { preset: "public_chat", visibility: "public", name, room_alias_name: alias, initial_state: [] };
}

async function describe(client, kind, roomId) {
  const room = await until(`${roomId} in Alice's client`, () => client.getRoom(roomId));
  await until(`${roomId}'s join rules`, () => room.currentState.getStateEvents("m.room.join_rules", ""));
  const enc = room.currentState.getStateEvents("m.room.encryption", "");
  const rule = room.currentState.getStateEvents("m.room.join_rules", "").getContent().join_rule;
  const out = { kind, room_id: roomId, encryption: enc ? enc.getContent().algorithm : null, join_rule: rule };
  report(out);
  return out;
}

async function main() {
  const alice = await start(ALICE);
  const bob = await start(BOB);
  const forced = await alice.doesServerForceEncryptionForPreset("private_chat");
  log("server forces encryption for private_chat", { forced });

  const privEnc = (await alice.createRoom(privateOpts("js family", forced || true))).room_id;
  // An Element that did not ask /versions: the server encrypts it anyway.
  const privAsked = (await alice.createRoom(privateOpts("js asked plain", false))).room_id;
  const pub = (await alice.createRoom(publicOpts("js square", "js-square-" + Date.now()))).room_id;
  const pubEnc = (await alice.createRoom(publicOpts("js secrets", "js-secrets-" + Date.now()))).room_id;
  // Element's settings switch: encryption for a public room is a state event.
  await alice.sendStateEvent(pubEnc, "m.room.encryption", ENCRYPTION.content, "");
  await until("the public room's encryption", () =>
    alice.getRoom(pubEnc)?.currentState.getStateEvents("m.room.encryption", ""));

  await describe(alice, "private-encrypted", privEnc);
  await describe(alice, "private-unencrypted-asked", privAsked);
  await describe(alice, "public", pub);
  await describe(alice, "public-encrypted", pubEnc);

  // A real end-to-end encrypted message.
  await alice.invite(privEnc, bob.getUserId());
  await until("Bob's invite", () => bob.getRoom(privEnc)?.getMyMembership() === "invite");
  await bob.joinRoom(privEnc);
  await joined(alice, privEnc, bob.getUserId());
  const { event_id } = await alice.sendMessage(privEnc, text(MARKER));
  report({ step: "sent", event_id });
  const ev = await decrypted(bob, privEnc, MARKER);
  report({ step: "decrypted", body: ev.getContent().body });

  await stopAll(alice, bob);
  report({ ok: true });
}

run(main);
