// e2ee_two_users.mjs — two users on matrix-js-sdk's Rust crypto through pvyhs:
//  1. Alice creates an encrypted room and invites Bob; both send and decrypt.
//  2. Bob logs in on a second device, which gets the room key and decrypts
//     new messages.
//  3. Alice bootstraps cross-signing and a key backup, logs in on a new
//     device, restores the backup there and reads the history.
//  4. Alice's two devices verify each other with SAS emoji over to-device
//     messages, and each then sees the other as verified.
// Env: PVYHS_BASE, PVYHS_ALICE, PVYHS_BOB (local user names), PVYHS_PASSWORD.
// Exit code 0 and a last line {"ok": true} on success.
import {
  ENCRYPTION, PASSWORD, decrypted, joined, log, report, rest, start, stopAll, text, until, verifyBySas, within,
  run,
} from "./lib.mjs";

const ALICE = process.env.PVYHS_ALICE || "js_alice";
const BOB = process.env.PVYHS_BOB || "js_bob";

async function uploadCrossSigning(client) {
  const userId = client.getUserId();
  await within(`${userId} to bootstrap cross-signing`, client.getCrypto().bootstrapCrossSigning({
    authUploadDeviceSigningKeys: async (makeRequest) => {
      try {
        await makeRequest(null); // the first upload needs no UIA
      } catch (e) {
        if (e.httpStatus !== 401) throw e;
        await makeRequest({
          type: "m.login.password",
          identifier: { type: "m.id.user", user: userId },
          password: PASSWORD,
          session: e.data?.session,
        });
      }
    },
  }));
}

async function backupCount(client) {
  const r = await rest("GET", "/_matrix/client/v3/room_keys/version", client.getAccessToken());
  return r.status === 200 ? r.json.count : 0;
}

async function main() {
  const a1 = await start(ALICE);
  const b1 = await start(BOB);
  const alice = a1.getUserId(), bob = b1.getUserId();

  // 1. An encrypted room, messages both ways.
  const { room_id: room } = await within("Alice to create the room",
    a1.createRoom({ invite: [bob], initial_state: [ENCRYPTION] }));
  await until("Bob's invite", () => b1.getRoom(room)?.getMyMembership() === "invite");
  await within("Bob to join", b1.joinRoom(room));
  await joined(a1, room, bob);
  await within("a1 to send", a1.sendMessage(room, text("a1: hello bob")));
  await decrypted(b1, room, "a1: hello bob");
  await within("b1 to send", b1.sendMessage(room, text("b1: hello alice")));
  await decrypted(a1, room, "b1: hello alice");
  report({ step: "exchange" });

  // 2. Bob's new device receives the keys of new messages.
  const b2 = await start(BOB);
  await until("Alice to see Bob's second device", async () => {
    const devs = await a1.getCrypto().getUserDeviceInfo([bob], true);
    return devs.get(bob)?.has(b2.getDeviceId());
  });
  await within("a1 to send after b2", a1.sendMessage(room, text("a1: after b2")));
  await decrypted(b2, room, "a1: after b2");
  await decrypted(b1, room, "a1: after b2");
  report({ step: "second device" });

  // 3. Cross-signing, key backup, a new device restores history.
  await uploadCrossSigning(a1);
  await until("cross-signing ready", () => a1.getCrypto().isCrossSigningReady());
  await within("a1 to make a key backup", a1.getCrypto().resetKeyBackup());
  await until("room keys in the backup", async () => (await backupCount(a1)) >= 2, 60000, 1000);
  const key = await within("a1's backup key", a1.getCrypto().getSessionBackupPrivateKey());
  const version = await within("a1's backup version", a1.getCrypto().getActiveSessionBackupVersion());
  const a2 = await start(ALICE);
  await within("a2 to store the backup key", a2.getCrypto().storeSessionBackupPrivateKey(key, version));
  const restored = await within("a2 to restore the backup", a2.getCrypto().restoreKeyBackup());
  if (restored.imported < 1) throw new Error(`restored nothing: ${JSON.stringify(restored)}`);
  await decrypted(a2, room, "a1: hello bob");
  await decrypted(a2, room, "b1: hello alice");
  report({ step: "backup", imported: restored.imported, total: restored.total });

  // 4. SAS between Alice's devices.
  const emojis = await verifyBySas(a1, a2, () => a1.getCrypto().requestOwnUserVerification());
  await until("a2 verified as seen by a1", async () =>
    (await a1.getCrypto().getDeviceVerificationStatus(alice, a2.getDeviceId()))?.isVerified());
  await until("a1 verified as seen by a2", async () =>
    (await a2.getCrypto().getDeviceVerificationStatus(alice, a1.getDeviceId()))?.isVerified());
  report({ step: "sas", emojis });

  await stopAll(a1, a2, b1, b2);
  report({ ok: true });
}

run(main);
