// media_e2ee.mjs — an encrypted attachment the way Element sends one, between
// two matrix-js-sdk clients with Rust crypto through pvyhs:
//  1. Alice encrypts a file in the client (AES-CTR-256 under a random key
//     and IV, SHA-256 of the ciphertext: the spec's EncryptedFile, v2, as
//     matrix-encrypt-attachment makes it), uploads the ciphertext and sends
//     an m.file event carrying the EncryptedFile in a Megolm-encrypted room.
//  2. Bob decrypts the event, downloads the ciphertext through the
//     authenticated media endpoint (mxcUrlToHttp with useAuthentication) with
//     his access token, checks its SHA-256, decrypts it and compares it with
//     what Alice had, byte for byte.
// The plaintext, the ciphertext and the key's k go to PVYHS_OUT for the
// Python side, which looks for them on disk and in the database.
// Env: PVYHS_BASE, PVYHS_ALICE, PVYHS_BOB, PVYHS_PASSWORD, PVYHS_OUT,
// PVYHS_SIZE (bytes of plaintext). Last line {"ok": true} on success.
import { createHash, webcrypto } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { ENCRYPTION, STEP_MS, decrypted, joined, log, report, start, stopAll, text, until, run } from "./lib.mjs";

const ALICE = process.env.PVYHS_ALICE || "js_media_alice";
const BOB = process.env.PVYHS_BOB || "js_media_bob";
const OUT = process.env.PVYHS_OUT;
const SIZE = Number(process.env.PVYHS_SIZE || 1 << 20);
const subtle = webcrypto.subtle;

const b64 = (buf) => Buffer.from(buf).toString("base64").replace(/=+$/, ""); // unpadded, as the spec says
const unb64 = (s) => Buffer.from(s, "base64");

// matrix-encrypt-attachment's encryptAttachment: a fresh AES-256 key, an IV
// whose low 64 bits (the counter) start at zero, SHA-256 of the ciphertext.
async function encryptAttachment(plaintext) {
  const iv = new Uint8Array(16);
  webcrypto.getRandomValues(iv.subarray(0, 8));
  const key = await subtle.generateKey({ name: "AES-CTR", length: 256 }, true, ["encrypt", "decrypt"]);
  const jwk = await subtle.exportKey("jwk", key);
  const ciphertext = new Uint8Array(
    await subtle.encrypt({ name: "AES-CTR", counter: iv, length: 64 }, key, plaintext));
  const sha256 = await subtle.digest("SHA-256", ciphertext);
  return {
    ciphertext,
    info: {
      v: "v2",
      key: { alg: "A256CTR", ext: true, k: jwk.k, key_ops: ["encrypt", "decrypt"], kty: "oct" },
      iv: b64(iv),
      hashes: { sha256: b64(sha256) },
    },
  };
}

// matrix-encrypt-attachment's decryptAttachment: the hash first, then AES-CTR.
async function decryptAttachment(ciphertext, info) {
  if (info.v !== "v2") throw new Error(`unknown EncryptedFile version ${info.v}`);
  const got = b64(await subtle.digest("SHA-256", ciphertext));
  if (got !== info.hashes.sha256) throw new Error(`SHA-256 mismatch: ${got} != ${info.hashes.sha256}`);
  const key = await subtle.importKey("jwk", info.key, { name: "AES-CTR" }, false, ["encrypt", "decrypt"]);
  return new Uint8Array(
    await subtle.decrypt({ name: "AES-CTR", counter: unb64(info.iv), length: 64 }, key, ciphertext));
}

async function main() {
  const a = await start(ALICE);
  const b = await start(BOB);
  const bob = b.getUserId();
  const { room_id: room } = await a.createRoom({ invite: [bob], initial_state: [ENCRYPTION] });
  await until("Bob's invite", () => b.getRoom(room)?.getMyMembership() === "invite");
  await b.joinRoom(room);
  await joined(a, room, bob);
  await a.sendMessage(room, text("a file follows"));
  await decrypted(b, room, "a file follows");
  report({ step: "room" });

  // 1. Alice: a distinctive file, encrypted, uploaded, sent.
  const marker = Buffer.from(`PVYHS-ATTACHMENT-PLAINTEXT-${webcrypto.randomUUID()}-`);
  const plaintext = new Uint8Array(SIZE);
  for (let off = 0; off < SIZE; off += 65536) // getRandomValues takes 64 KiB at most
    webcrypto.getRandomValues(plaintext.subarray(off, Math.min(off + 65536, SIZE)));
  for (let off = 0; off + marker.length <= SIZE; off += 100_000) plaintext.set(marker, off);
  const { ciphertext, info } = await encryptAttachment(plaintext);
  const up = await a.uploadContent(ciphertext, { type: "application/octet-stream", includeFilename: false });
  const file = { url: up.content_uri, ...info };
  const name = `report-${webcrypto.randomUUID()}.pdf`;
  await a.sendEvent(room, "m.room.message", {
    msgtype: "m.file",
    body: name,
    info: { mimetype: "application/pdf", size: SIZE },
    file,
  });
  writeFileSync(join(OUT, "plaintext.bin"), plaintext);
  writeFileSync(join(OUT, "ciphertext.bin"), ciphertext);
  writeFileSync(join(OUT, "secrets.json"), JSON.stringify({ k: info.key.k, name, marker: marker.toString() }));
  report({ step: "sent", mxc: up.content_uri, size: SIZE });

  // 2. Bob: the event, the download, the check, the plaintext.
  const ev = await decrypted(b, room, name);
  if (!ev.isEncrypted()) throw new Error("the m.file event was not encrypted");
  const got = ev.getContent().file;
  if (!got || got.url !== file.url || got.key.k !== info.key.k) throw new Error(`bad file: ${JSON.stringify(got)}`);
  const url = b.mxcUrlToHttp(got.url, undefined, undefined, undefined, false, true, true);
  if (!url || !url.includes("/_matrix/client/v1/media/download/")) throw new Error(`not authenticated media: ${url}`);
  const unauth = await fetch(url, { signal: AbortSignal.timeout(STEP_MS) });
  if (unauth.status !== 401) throw new Error(`download without a token: ${unauth.status}`);
  const r = await fetch(url, { headers: { Authorization: `Bearer ${b.getAccessToken()}` },
                          signal: AbortSignal.timeout(STEP_MS) });
  if (r.status !== 200) throw new Error(`download: ${r.status} ${await r.text()}`);
  const downloaded = new Uint8Array(await r.arrayBuffer());
  if (downloaded.length !== ciphertext.length) throw new Error(`downloaded ${downloaded.length} bytes`);
  const back = await decryptAttachment(downloaded, got);
  if (Buffer.compare(Buffer.from(back), Buffer.from(plaintext)) !== 0) throw new Error("plaintext differs");
  // A flipped byte is caught by the hash, as Element would refuse it.
  const bad = Uint8Array.from(downloaded);
  bad[12345] ^= 1;
  const refused = await decryptAttachment(bad, got).then(() => false, () => true);
  if (!refused) throw new Error("a corrupted download was accepted");
  report({
    step: "received",
    content_type: r.headers.get("content-type"),
    sha256: createHash("sha256").update(back).digest("hex"),
  });

  await stopAll(a, b);
  report({ ok: true });
}

run(main);
