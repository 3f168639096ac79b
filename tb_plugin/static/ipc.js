// The guest side of TensorBoard's iframe-plugin message channel
// (tensorboard/components/experimental/plugin_util: plugin-guest.ts, message.ts).
// The guest transfers one end of a MessageChannel to the parent with
// "experimental.bootstrap"; messages are JSON strings
// {type, id, payload, error, isReply}; every non-reply is answered.

export function bootstrap({ onDataReloaded } = {}) {
  if (!window.parent || window.parent === window) return null;
  const channel = new MessageChannel();
  const port = channel.port1;
  const listeners = new Map();
  const waits = new Map();
  let nextId = 0;
  if (onDataReloaded) listeners.set("experimental.DataReloaded", onDataReloaded);

  port.addEventListener("message", async (event) => {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch (e) {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (msg.isReply) {
      const w = waits.get(msg.id);
      if (!w) return;
      waits.delete(msg.id);
      if (msg.error) w.reject(new Error(String(msg.error)));
      else w.resolve(msg.payload);
      return;
    }
    let payload = null;
    let error = null;
    const fn = listeners.get(msg.type);
    if (fn) {
      try {
        payload = (await fn(msg.payload)) ?? null;
      } catch (e) {
        error = String(e && e.message ? e.message : e);
      }
    }
    port.postMessage(JSON.stringify({ type: msg.type, id: msg.id, payload, error, isReply: true }));
  });
  port.start();
  try {
    window.parent.postMessage("experimental.bootstrap", "*", [channel.port2]);
  } catch (e) {
    return null;
  }
  return {
    listen(type, fn) {
      listeners.set(type, fn);
    },
    send(type, payload) {
      const id = nextId++;
      port.postMessage(JSON.stringify({ type, id, payload: payload ?? null, error: null, isReply: false }));
      return new Promise((resolve, reject) => waits.set(id, { resolve, reject }));
    },
  };
}
