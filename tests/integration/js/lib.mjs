// lib.mjs — matrix-js-sdk clients with Rust crypto (vodozemac) for pvyhs's
// end-to-end encryption tests: log in, start, wait for things, decrypt.
import * as sdk from "matrix-js-sdk";

// stdout carries only the JSON step reports the Python driver reads: the
// SDK's own logging goes to stderr.
for (const level of ["log", "info", "debug", "warn", "error", "trace"]) {
  console[level] = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
}

export const BASE = process.env.PVYHS_BASE;
export const PASSWORD = process.env.PVYHS_PASSWORD || "correct horse";

export function log(what, extra = {}) {
  process.stderr.write(`[js ${new Date().toISOString()}] ${what} ${JSON.stringify(extra)}\n`);
}

// One line of JSON on stdout: what the Python driver reads.
export function report(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// `base` defaults to PVYHS_BASE; the federation tests pass another server's.
export async function rest(method, path, token, body, base = BASE) {
  const r = await fetch(base + path, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : {} };
}

export async function login(user, base = BASE) {
  const r = await rest("POST", "/_matrix/client/v3/login", null, {
    type: "m.login.password",
    identifier: { type: "m.id.user", user },
    password: PASSWORD,
  }, base);
  if (r.status !== 200) throw new Error(`login ${user}: ${r.status} ${JSON.stringify(r.json)}`);
  return { userId: r.json.user_id, accessToken: r.json.access_token, deviceId: r.json.device_id };
}

let clients = 0;

// A started client with Rust crypto, past its first sync.
export async function start(user, cryptoCallbacks = {}, base = BASE) {
  const creds = await login(user, base);
  const client = sdk.createClient({ baseUrl: base, ...creds, cryptoCallbacks });
  await client.initRustCrypto({ useIndexedDB: false, cryptoDatabasePrefix: `pvyhs-${clients++}` });
  const prepared = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${user}: no first sync in 60 s`)), 60000);
    client.on(sdk.ClientEvent.Sync, (state) => {
      if (state === "PREPARED" || state === "SYNCING") {
        clearTimeout(t);
        resolve();
      }
    });
  });
  await client.startClient({ initialSyncLimit: 30 });
  await prepared;
  log("started", { user: creds.userId, device: creds.deviceId });
  return client;
}

export async function until(what, fn, timeoutMs = 60000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? ": " + last : ""}`);
}

// The event in roomId whose decrypted body is `body`, decrypting as needed.
export async function decrypted(client, roomId, body, timeoutMs = 60000) {
  return until(`${client.getUserId()}/${client.getDeviceId()} to decrypt "${body}"`, async () => {
    const room = client.getRoom(roomId);
    if (!room) return null;
    for (const ev of room.getLiveTimeline().getEvents()) {
      if (ev.getType() !== "m.room.encrypted" && !ev.isEncrypted()) continue;
      await client.decryptEventIfNeeded(ev);
      if (ev.getContent()?.body === body) return ev;
    }
    return null;
  }, timeoutMs, 500);
}

export async function joined(client, roomId, userId) {
  return until(`${userId} to be joined to ${roomId} as ${client.getUserId()} sees it`, () =>
    client.getRoom(roomId)?.getMember(userId)?.membership === "join");
}

export const ENCRYPTION = {
  type: "m.room.encryption",
  state_key: "",
  content: { algorithm: "m.megolm.v1.aes-sha2" },
};

export function text(body) {
  return { msgtype: "m.text", body };
}

export async function stopAll(...clients) {
  for (const c of clients) if (c) c.stopClient();
}
