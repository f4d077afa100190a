// Server-sent events read with fetch(), so the token can travel as a header (EventSource
// cannot send one). followEvents reconnects with Last-Event-ID after a drop.
"use strict";

function sseParser(onEvent) {
  let buffer = "";
  let event = { type: "message", id: null, data: [] };
  return (chunk) => {
    buffer += chunk;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (event.data.length) onEvent({ type: event.type, id: event.id, data: event.data.join("\n") });
        event = { type: "message", id: event.id, data: [] };
      } else if (!line.startsWith(":")) {
        const at = line.indexOf(":");
        const field = at < 0 ? line : line.slice(0, at);
        const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
        if (field === "event") event.type = value;
        else if (field === "id") event.id = value;
        else if (field === "data") event.data.push(value);
      }
    }
  };
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Reads path's stream until the server ends it and isDone() agrees. onState gets "live",
// "reconnecting" or "idle"; onRefused(status, detail) a 4xx/5xx answer, which ends it.
// Aborting the signal ends it quietly.
async function followEvents(path, { headers, onEvent, onState, onRefused, isDone, signal }) {
  let lastId = null;
  let failures = 0;
  while (!signal.aborted) {
    try {
      const sent = { ...headers(), Accept: "text/event-stream" };
      if (lastId !== null) sent["Last-Event-ID"] = lastId;
      const response = await fetch(path, { headers: sent, signal, cache: "no-store" });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        onState("idle");
        onRefused(response.status, body.detail || response.statusText);
        return;
      }
      onState("live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      const parse = sseParser((ev) => {
        lastId = ev.id ?? lastId;
        failures = 0;
        onEvent(ev.type, JSON.parse(ev.data));
      });
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parse(value);
      }
      if (isDone()) { onState("idle"); return; }
    } catch (err) {
      if (signal.aborted) return;
      failures += 1;
    }
    onState("reconnecting");
    await pause(Math.min(500 * 2 ** failures, 10000));
  }
}
