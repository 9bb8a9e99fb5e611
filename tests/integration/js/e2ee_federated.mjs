// e2ee_federated.mjs — end-to-end encryption across two servers, one
// matrix-js-sdk client (Rust crypto) on each: device lists, one-time keys and
// the Megolm room keys (to-device, Olm-encrypted) all cross federation.
//  1. Alice (on PVYHS_BASE) creates an encrypted room and invites Bob (on
//     PEER_BASE); both send, and each decrypts the other's message.
//  2. The same in a room Bob creates on his server.
//  3. Alice's device and Bob's verify each other with SAS emoji over
//     to-device messages, and each then sees the other's device as verified.
// Env: PVYHS_BASE, PEER_BASE, PVYHS_ALICE, PEER_BOB (user names on each),
// PVYHS_PASSWORD. Exit code 0 and a last line {"ok": true} on success.
import {
  BASE, ENCRYPTION, decrypted, joined, log, report, start, stopAll, text, until, verifyBySas, within,
  run,
} from "./lib.mjs";

const PEER = process.env.PEER_BASE;

async function exchange(owner, guest, tag) {
  const me = owner.getUserId(), them = guest.getUserId();
  const { room_id: room } = await within(`${me} to create the room`,
    owner.createRoom({ invite: [them], initial_state: [ENCRYPTION] }));
  await until(`${them}'s invite`, () => guest.getRoom(room)?.getMyMembership() === "invite");
  await within(`${them} to join ${room}`, guest.joinRoom(room));
  await joined(owner, room, them);
  await within(`${me} to send`, owner.sendMessage(room, text(`${tag}: from the room's creator`)));
  await decrypted(guest, room, `${tag}: from the room's creator`);
  await within(`${them} to send`, guest.sendMessage(room, text(`${tag}: from the invited user`)));
  await decrypted(owner, room, `${tag}: from the invited user`);
  log("exchanged", { room, me, them });
  return room;
}

async function main() {
  const alice = await start(process.env.PVYHS_ALICE, {}, BASE);
  const bob = await start(process.env.PEER_BOB, {}, PEER);

  await exchange(alice, bob, "pvyhs room");
  report({ step: "room on pvyhs" });
  await exchange(bob, alice, "peer room");
  report({ step: "room on the peer" });

  const emojis = await verifyBySas(alice, bob,
    () => alice.getCrypto().requestDeviceVerification(bob.getUserId(), bob.getDeviceId()));
  await until("Bob's device verified as Alice sees it", async () =>
    (await alice.getCrypto().getDeviceVerificationStatus(bob.getUserId(), bob.getDeviceId()))
      ?.isVerified());
  await until("Alice's device verified as Bob sees it", async () =>
    (await bob.getCrypto().getDeviceVerificationStatus(alice.getUserId(), alice.getDeviceId()))
      ?.isVerified());
  report({ step: "sas", emojis });

  await stopAll(alice, bob);
  report({ ok: true });
}

run(main, (e) => report({ ok: false, error: String(e) }));
