// drive.mjs — a person using Hydrogen in Debian's headless Chromium against
// pvyhs: open the page, give the homeserver and the password in the login
// form, open a room, send a message, see it reach the other user (plain HTTP
// as the peer), see the peer's answer appear, and keep a screenshot.
//
// Each step prints one JSON line on stdout: {"step": name, "ok": ..., "ms": ...,
// "error"?}; the last line is {"done": true}. A failed step ends the run (each
// needs the one before it).
// Env: PVYHS_BASE (homeserver URL), PVYHS_WEB (the page built by build.mjs),
// PVYHS_USER, PVYHS_PASSWORD (the Hydrogen user), PVYHS_PEER_TOKEN (the other
// user's access token), PVYHS_ROOM_ID, PVYHS_ROOM_NAME, PVYHS_SCREENSHOT (PNG path).
import { readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const BASE = env("PVYHS_BASE"), WEB = env("PVYHS_WEB"), USER = env("PVYHS_USER");
const PASSWORD = env("PVYHS_PASSWORD"), PEER = env("PVYHS_PEER_TOKEN");
const ROOM_ID = env("PVYHS_ROOM_ID"), ROOM_NAME = env("PVYHS_ROOM_NAME"), SHOT = env("PVYHS_SCREENSHOT");
const CHROMIUM = process.env.PVYHS_CHROMIUM || "/usr/bin/chromium";

const log = (...a) => process.stderr.write(`[hydrogen ${new Date().toISOString()}] ${a.join(" ")}\n`);
const report = (o) => process.stdout.write(JSON.stringify(o) + "\n");

async function step(name, fn) {
  const t0 = Date.now();
  try {
    const extra = await fn();
    report({ step: name, ok: true, ms: Date.now() - t0, ...(extra || {}) });
  } catch (e) {
    report({ step: name, ok: false, ms: Date.now() - t0, error: String(e?.stack || e).slice(0, 3000) });
    throw e;
  }
}

const TYPES = {
  ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json",
  ".wasm": "application/wasm", ".woff": "font/woff", ".woff2": "font/woff2", ".svg": "image/svg+xml",
  ".png": "image/png",
};

// The page's own origin: a static file server on a free port.
function serve(dir) {
  const srv = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^\/+/, "");
    if (path.startsWith("..")) return res.writeHead(403).end();
    try {
      const body = await readFile(join(dir, path || "index.html"));
      res.writeHead(200, { "Content-Type": TYPES[extname(path || "index.html")] || "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => srv.listen(0, "127.0.0.1", () => resolve(srv)));
}

async function rest(method, path, body) {
  const r = await fetch(BASE + path, {
    method, headers: { Authorization: `Bearer ${PEER}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

async function until(what, fn, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function main() {
  await writeFile(join(WEB, "config.json"), JSON.stringify({ defaultHomeServer: "matrix.invalid" }));
  const srv = await serve(WEB);
  const pageUrl = `http://127.0.0.1:${srv.address().port}/`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
  page.on("console", (m) => log("console", m.type(), m.text().slice(0, 500)));
  page.on("pageerror", (e) => log("pageerror", String(e)));
  page.on("requestfailed", (r) => log("requestfailed", r.method(), r.url(), r.failure()?.errorText));
  page.on("response", (r) => { if (r.status() >= 400) log("response", r.status(), r.request().method(), r.url()); });
  const body = `hello from Hydrogen ${Date.now()}`;
  const answer = `answer to Hydrogen ${Date.now()}`;
  try {
    await step("page loads, login form", async () => {
      await page.goto(pageUrl);
      await page.waitForSelector("#homeserver", { timeout: 30000 });
      const err = await page.evaluate(() => window.__hydrogenError);
      if (err) throw new Error(err);
    });
    await step("homeserver in the form (.well-known, login flows)", async () => {
      await page.fill("#homeserver", BASE);
      await page.press("#homeserver", "Tab"); // its change event queries the server
      await page.waitForSelector("#username", { timeout: 30000 });
      const resolved = await page.textContent(".LoginView_forwardInfo");
      return { resolved };
    });
    await step("password login, first sync", async () => {
      await page.fill("#username", USER);
      await page.fill("#password", PASSWORD);
      await page.click("button[type=submit]");
      await page.waitForSelector(".RoomList", { timeout: 60000 }).catch(async (e) => {
        const text = await page.textContent("body").catch(() => "");
        throw new Error(`${e.message}\npage says: ${text.slice(0, 1000)}`);
      });
    });
    await step("open the room", async () => {
      await page.getByText(ROOM_NAME, { exact: true }).first().click({ timeout: 30000 });
      await page.waitForSelector(".RoomView .Timeline", { timeout: 30000 });
      await page.waitForSelector(".MessageComposer_input textarea", { timeout: 30000 });
      const hash = await page.evaluate(() => location.hash);
      if (!decodeURIComponent(hash).includes(ROOM_ID)) throw new Error(`room route ${hash}, want ${ROOM_ID}`);
      return { hash };
    });
    await step("send a message", async () => {
      await page.fill(".MessageComposer_input textarea", body);
      await page.press(".MessageComposer_input textarea", "Enter");
      await page.getByText(body).first().waitFor({ timeout: 30000 });
    });
    await step("the peer receives it", async () => {
      const ev = await until("the message in the peer's /messages", async () => {
        const r = await rest("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(ROOM_ID)}/messages?dir=b&limit=20`);
        return r.status === 200 && r.json.chunk.find((e) => e.content?.body === body);
      });
      return { event_id: ev.event_id, sender: ev.sender };
    });
    await step("the peer's answer appears in Hydrogen", async () => {
      const r = await rest("PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(ROOM_ID)}/send/m.room.message/hyd${Date.now()}`,
        { msgtype: "m.text", body: answer });
      if (r.status !== 200) throw new Error(`peer send: ${r.status} ${JSON.stringify(r.json)}`);
      await page.getByText(answer).first().waitFor({ timeout: 30000 });
    });
    await step("reading the room clears its unread badge (receipts, unread counts)", async () => {
      // Hydrogen sends a read receipt for what the open room shows; the
      // server's next sync then reports no unread notifications.
      await page.waitForSelector(".RoomList li.active .badge.hidden", { state: "attached", timeout: 30000 })
        .catch(async (e) => {
          const badge = await page.textContent(".RoomList li.active .badge").catch(() => "?");
          throw new Error(`${e.message}\nthe badge still says ${badge}`);
        });
    });
  } finally {
    await page.screenshot({ path: SHOT }).catch((e) => log("screenshot failed", String(e)));
    await browser.close();
    srv.close();
  }
  report({ done: true, screenshot: SHOT });
}

main().then(() => process.exit(0), (e) => {
  log("fatal", String(e?.stack || e));
  process.exit(1);
});
