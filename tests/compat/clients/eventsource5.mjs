// npm `eventsource` (current major), as its README uses it: headers through a custom `fetch`.
// Like a browser it reconnects by itself with Last-Event-ID, and stops for good (CLOSED) on any
// non-200 answer; then, as docs/clients.md recommends, we open a new one from the last id.
// Usage: node eventsource5.mjs URL TOKEN
import { EventSource } from "eventsource";
import { Reporter, SSE_NAMES } from "./report.mjs";

const [base, token] = process.argv.slice(2);
const report = new Reporter();

function open() {
  const url = `${base}/events?last_event_id=${report.lastId ?? 0}`;
  const source = new EventSource(url, {
    fetch: (input, init) =>
      fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${token}` } }).then((response) => {
        if (response.status !== 200) report.emit("status", { status: response.status });
        return response;
      }),
  });
  for (const name of SSE_NAMES) {
    source.addEventListener(name, (event) => report.data(event.data, event.type, event.lastEventId));
  }
  source.onmessage = (event) => report.data(event.data, "message", event.lastEventId);
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      report.emit("closed");
      setTimeout(open, 500);
    }
  };
}

open();
// eventsource 5 unrefs its reconnect timer: a script with nothing else to do would exit while it
// waits to reconnect (an app with a server or a UI does not). Keep this one alive.
setInterval(() => {}, 1 << 30);
