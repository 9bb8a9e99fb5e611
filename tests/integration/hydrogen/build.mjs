// build.mjs OUTDIR — bundle main.js with esbuild and lay out the page with
// the assets Hydrogen loads at run time (olm, its worker, the service worker,
// the download sandbox). OUTDIR is then served as static files.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) throw new Error("usage: build.mjs OUTDIR");
mkdirSync(out, { recursive: true });
const sdk = join(here, "node_modules", "hydrogen-view-sdk");
const olm = join(here, "node_modules", "@matrix-org", "olm");

await build({
  entryPoints: [join(here, "main.js")],
  bundle: true,
  format: "esm",
  target: "es2020",
  outdir: out,
  loader: { ".woff": "file", ".woff2": "file", ".svg": "file", ".png": "file" },
  // olm.js (imported by the SDK) requires these only when it runs in Node.
  external: ["crypto", "path", "fs"],
  logLevel: "warning",
});
for (const [from, to] of [
  [join(here, "index.html"), "index.html"],
  [join(sdk, "lib-build", "sw.js"), "sw.js"],
  [join(sdk, "asset-build", "assets", "main.js"), "worker.js"],
  [join(sdk, "asset-build", "assets", "download-sandbox.html"), "download-sandbox.html"],
  [join(olm, "olm.js"), "olm.js"],
  [join(olm, "olm.wasm"), "olm.wasm"],
  [join(olm, "olm_legacy.js"), "olm_legacy.js"],
]) copyFileSync(from, join(out, to));
process.stdout.write(JSON.stringify({ built: out }) + "\n");
