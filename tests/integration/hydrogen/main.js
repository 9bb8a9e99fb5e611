// main.js — the whole Hydrogen web client, as its own index page starts it:
// root view model (session picker, login form, session) mounted in #app.
// The config (defaultHomeServer) comes from config.json beside the page.
import { FeatureSet, Platform, RootViewModel, createNavigation, createRouter } from "hydrogen-view-sdk";
import "hydrogen-view-sdk/theme-element-light.css";

const assetPaths = {
  downloadSandbox: "download-sandbox.html",
  worker: "worker.js",
  serviceWorker: "sw.js", // without it login fails ("reading 'updateAuthData'")
  olm: { wasm: "olm.wasm", legacyBundle: "olm_legacy.js", wasmBundle: "olm.js" },
};

async function main() {
  const container = document.getElementById("app");
  const platform = new Platform({ container, assetPaths, configURL: "config.json", options: { development: true } });
  const navigation = createNavigation();
  platform.setNavigation(navigation);
  await platform.init();
  const urlRouter = createRouter({ navigation, history: platform.history });
  urlRouter.attach();
  const vm = new RootViewModel({
    platform, urlRouter, navigation, logger: platform.logger,
    features: await FeatureSet.load(platform.settingsStorage),
  });
  await vm.load();
  platform.createAndMountRootView(vm);
  window.__hydrogenReady = true;
}

main().catch((e) => {
  window.__hydrogenError = String(e && e.stack || e);
  console.error(window.__hydrogenError);
});
