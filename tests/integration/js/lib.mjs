// lib.mjs — matrix-js-sdk clients with Rust crypto (vodozemac) for pvyhs's
// end-to-end encryption tests: log in, start, wait for things, decrypt,
// verify devices with SAS.
//
// Every wait on the server or on another client is bounded (within, until,
// nextEvent, the clients' localTimeoutMs): a stuck step fails in about a
// minute with a message naming it, instead of hanging the script until the
// Python driver's time-out kills it without a word.
import * as sdk from "matrix-js-sdk";
import { CryptoEvent } from "matrix-js-sdk/lib/crypto-api/index.js";
import { VerificationPhase, VerifierEvent } from "matrix-js-sdk/lib/crypto-api/verification.js";

// stdout carries only the JSON step reports the Python driver reads: the
// SDK's own logging goes to stderr.
for (const level of ["log", "info", "debug", "warn", "error", "trace"]) {
  console[level] = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
}

export const BASE = process.env.PVYHS_BASE;
export const PASSWORD = process.env.PVYHS_PASSWORD || "correct horse";

// How long one step may wait, and one HTTP request of the SDK's take.
export const STEP_MS = 60000;

export function log(what, extra = {}) {
  process.stderr.write(`[js ${new Date().toISOString()}] ${what} ${JSON.stringify(extra)}\n`);
}

// Run a script's main: exit 0 when it resolves; when it throws, log the error
// with its stack, let onFailure report it (the driver may read a last line),
// and exit 1.
export function run(main, onFailure = () => {}) {
  main().then(
    () => process.exit(0),
    (e) => {
      log("FAILED", { error: String((e && e.stack) || e) });
      onFailure(e);
      process.exit(1);
    },
  );
}

// One line of JSON on stdout: what the Python driver reads.
export function report(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// promise, or an error naming `what` (a string, or a function called then,
// for the state at that moment) when it has not settled in timeoutMs.
export function within(what, promise, timeoutMs = STEP_MS) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const name = typeof what === "function" ? what() : what;
      reject(new Error(`timed out after ${timeoutMs / 1000} s: ${name}`));
    }, timeoutMs);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// The first `event` of emitter whose arguments pass test (its first
// argument). It listens from the call on: call it before what causes it.
export function nextEvent(what, emitter, event, test = () => true, timeoutMs = STEP_MS) {
  let listener;
  const got = new Promise((resolve) => {
    listener = (...args) => {
      if (test(...args)) resolve(args[0]);
    };
    emitter.on(event, listener);
  });
  return within(what, got, timeoutMs).finally(() => emitter.off(event, listener));
}

// `base` defaults to PVYHS_BASE; the federation tests pass another server's.
export async function rest(method, path, token, body, base = BASE) {
  const r = await fetch(base + path, {
    signal: AbortSignal.timeout(STEP_MS),
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
  const client = sdk.createClient({ baseUrl: base, ...creds, cryptoCallbacks, localTimeoutMs: STEP_MS });
  await within(`${user}'s crypto to start`,
    client.initRustCrypto({ useIndexedDB: false, cryptoDatabasePrefix: `pvyhs-${clients++}` }));
  const prepared = nextEvent(`${user}'s first sync`, client, sdk.ClientEvent.Sync,
    (state) => state === "PREPARED" || state === "SYNCING");
  await within(`${user}'s client to start`, client.startClient({ initialSyncLimit: 30 }));
  await prepared;
  log("started", { user: creds.userId, device: creds.deviceId });
  return client;
}

export async function until(what, fn, timeoutMs = STEP_MS, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await within(what, fn(), Math.max(1, deadline - Date.now()));
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  const name = typeof what === "function" ? what() : what;
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${name}${last ? ": " + last : ""}`);
}

// The event in roomId whose decrypted body is `body`, decrypting as needed.
export async function decrypted(client, roomId, body, timeoutMs = STEP_MS) {
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

const deviceOf = (c) => `${c.getUserId()}/${c.getDeviceId()}`;

// SAS emoji verification between a and b over to-device messages: a sends
// the request (request(): e.g. requestOwnUserVerification), b accepts, a
// starts m.sas.v1 and both confirm the emoji. Each stage is bounded and
// named, with the request's phase when it timed out. The emoji both saw.
//
// Each side first waits until it has the other device's keys: the Rust
// crypto ignores a request from a device it does not know yet ("Could not
// retrieve the device data for the incoming verification request, ignoring
// it"), and a device that has just logged in may not have fetched its own
// user's device list when the request reaches it (test_js_e2ee.py hung on
// this under load).
export async function verifyBySas(a, b, request) {
  const A = deviceOf(a), B = deviceOf(b);
  for (const [x, y] of [[a, b], [b, a]]) {
    await until(`SAS: ${deviceOf(x)} to have the keys of ${deviceOf(y)}`, async () =>
      (await x.getCrypto().getUserDeviceInfo([y.getUserId()], true)).get(y.getUserId())?.has(y.getDeviceId()));
  }
  const incoming = nextEvent(`SAS: ${A}'s verification request to reach ${B}`, b,
    CryptoEvent.VerificationRequestReceived);
  const reqA = await within(`SAS: ${A} to send the verification request`, request());
  const reqB = await incoming;
  const phases = () =>
    `(phase at ${A}: ${VerificationPhase[reqA.phase]}, at ${B}: ${VerificationPhase[reqB.phase]})`;
  await within(() => `SAS: ${B} to accept ${phases()}`, reqB.accept());
  await until(() => `SAS: the request to be ready at ${A} ${phases()}`,
    () => reqA.phase === VerificationPhase.Ready);
  const verifierA = await within(() => `SAS: ${A} to start m.sas.v1 ${phases()}`,
    reqA.startVerification("m.sas.v1"));
  const verifierB = await until(() => `SAS: ${B}'s side of the verifier ${phases()}`, () => reqB.verifier);
  const emojis = {};
  for (const [name, v] of [[A, verifierA], [B, verifierB]]) {
    v.on(VerifierEvent.ShowSas, async (s) => {
      emojis[name] = s.sas.emoji.map((e) => e[1]).join(" ");
      await s.confirm();
    });
  }
  const done = (name, v) => within(() => `SAS: ${name} to finish (emoji shown at ` +
    `${Object.keys(emojis).join(", ") || "neither"}) ${phases()}`, v.verify());
  await Promise.all([done(A, verifierA), done(B, verifierB)]);
  if (!emojis[A] || emojis[A] !== emojis[B]) throw new Error(`SAS mismatch: ${JSON.stringify(emojis)}`);
  log("sas done", emojis);
  return emojis[A];
}

export async function stopAll(...clients) {
  for (const c of clients) if (c) c.stopClient();
}
