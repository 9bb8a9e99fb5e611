// knock.mjs — a knock seen by the moderator's matrix-js-sdk client (the
// membership event and a notification from pvyhs's knock push rule),
// answered from the `pvyhs channel approve` command, after which the knocker
// joins and the moderator's client sees it.
// Env: PVYHS_BASE, PVYHS_MOD (the moderator's name), PVYHS_ROOM,
// PVYHS_KNOCKER_TOKEN, PVYHS_KNOCKER (user ID), PVYHS_BIN, PVYHS_CONFIG.
import { execFileSync } from "node:child_process";

import { NotificationCountType } from "matrix-js-sdk";

import { STEP_MS, log, report, rest, start, stopAll, until, run } from "./lib.mjs";

const ROOM = process.env.PVYHS_ROOM;
const KNOCKER = process.env.PVYHS_KNOCKER;
const KTOK = process.env.PVYHS_KNOCKER_TOKEN;

async function main() {
  const mod = await start(process.env.PVYHS_MOD);
  const room = await until("the channel in the moderator's client", () => mod.getRoom(ROOM));
  // The channel is encrypted: the SDK trusts the server only for highlights there.
  const before = room.getUnreadNotificationCount(NotificationCountType.Highlight);

  const t0 = Date.now();
  const k = await rest("POST", `/_matrix/client/v3/knock/${encodeURIComponent(ROOM)}`, KTOK,
                       { reason: "let me in please" });
  if (k.status !== 200) throw new Error(`knock: ${k.status} ${JSON.stringify(k.json)}`);
  const member = await until("the knock in the moderator's client", () => {
    const m = room.getMember(KNOCKER);
    return m && m.membership === "knock" ? m : null;
  }, 30000, 5);
  const seenMs = Date.now() - t0;
  const count = await until("a notification for the knock", () => {
    const n = room.getUnreadNotificationCount(NotificationCountType.Highlight);
    return n > before ? n : null;
  }, 30000, 5);
  const notifiedMs = Date.now() - t0;
  report({ step: "knock seen", reason: member.events.member.getContent().reason, seen_ms: seenMs,
           notified_ms: notifiedMs, count, before });

  const out = execFileSync(process.env.PVYHS_BIN,
    ["channel", "approve", "--config", process.env.PVYHS_CONFIG, ROOM, KNOCKER],
    { encoding: "utf8", timeout: STEP_MS });
  log("cli", { out });
  await until("the invite in the moderator's client", () => room.getMember(KNOCKER)?.membership === "invite");
  const j = await rest("POST", `/_matrix/client/v3/join/${encodeURIComponent(ROOM)}`, KTOK, {});
  if (j.status !== 200) throw new Error(`join: ${j.status} ${JSON.stringify(j.json)}`);
  await until("the join in the moderator's client", () => room.getMember(KNOCKER)?.membership === "join");
  report({ step: "joined", cli: out.trim() });

  await stopAll(mod);
  report({ ok: true });
}

run(main);
