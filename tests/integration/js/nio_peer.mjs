// nio_peer.mjs — the matrix-js-sdk side of tests/integration/test_nio_e2ee.py:
// creates an encrypted room, invites PVYHS_PEER (a matrix-nio/libolm
// client), sends it a message once it has joined and decrypts its answer.
// Reports each step as a JSON line on stdout for the Python driver.
import { ENCRYPTION, decrypted, joined, report, start, stopAll, text, until } from "./lib.mjs";

const USER = process.env.PVYHS_USER;
const PEER = process.env.PVYHS_PEER;

async function main() {
  const c = await start(USER);
  const { room_id: room } = await c.createRoom({ invite: [PEER], initial_state: [ENCRYPTION] });
  report({ room_id: room });
  await joined(c, room, PEER);
  await until("the peer's device keys", async () => {
    const devs = await c.getCrypto().getUserDeviceInfo([PEER], true);
    return (devs.get(PEER)?.size ?? 0) > 0;
  });
  await c.sendMessage(room, text("hello from vodozemac"));
  report({ sent: "hello from vodozemac" });
  await decrypted(c, room, "hello from libolm", 90000);
  report({ decrypted: "hello from libolm" });
  await stopAll(c);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`FAILED ${e && e.stack || e}\n`);
    process.exit(1);
  },
);
