// Entry point of the Attention tab. TensorBoard's plugin_entry.html does
// `import("./index.js").then((m) => m.render())` inside an iframe whose
// <base href> is the plugin's route prefix; every other URL below is relative.

export async function render() {
  // Ask for the series list while the rest of the frontend loads.
  const earlyTags = fetch("./tags", { credentials: "same-origin" });
  earlyTags.catch(() => {});

  const style = document.createElement("link");
  style.rel = "stylesheet";
  style.href = new URL("./static/style.css", import.meta.url).href;
  document.head.appendChild(style);
  const meta = document.createElement("meta");
  meta.name = "viewport";
  meta.content = "width=device-width, initial-scale=1";
  document.head.appendChild(meta);
  document.title = "Attention";

  const [{ App }, { bootstrap }] = await Promise.all([import("./static/app.js"), import("./static/ipc.js")]);
  const app = new App(document.body, { earlyTags });
  window.attentionApp = app; // for debugging, tests and the screenshot script
  bootstrap({
    onDataReloaded: () => app.refresh(),
  });
  await app.start();
  return app;
}
