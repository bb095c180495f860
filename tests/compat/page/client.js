// The browser clients of the compatibility matrix, each used the way its documentation shows.
// Everything they see goes to window.report (the harness reads it); nothing is judged here.
import { fetchEventSource } from "/fes/index.js";

const params = new URLSearchParams(location.search);
const api = params.get("api");
const token = params.get("token");
const report = (window.report = []);
let lastId = null;

const SSE_NAMES = [
  "connected", "resync_required", "stream_error",
  "product_added", "product_updated", "product_deleted", "product_stock_changed", "product_price_changed",
  "product_synced", "seller_added", "seller_updated", "seller_deleted", "seller_products_fetched",
  "order_created", "order_updated", "order_status_changed", "order_processed", "stock_sync_started",
  "stock_sync_completed", "stock_low", "stock_out", "settings_updated", "system_notification",
];

function emit(kind, fields = {}) {
  report.push({ kind, ...fields });
}

function data(text, sseEvent = null, sseId = null) {
  if (text === "" || text === undefined || text === null) return emit("empty", { sse_event: sseEvent });
  const envelope = JSON.parse(text);
  if (typeof envelope.id === "number") {
    lastId = envelope.id;
    emit("event", { id: envelope.id, type: envelope.type, sse_event: sseEvent, sse_id: sseId });
  } else {
    emit("message", { type: envelope.type, code: (envelope.data || {}).code ?? null, sse_event: sseEvent });
  }
}

// Native EventSource: it reconnects by itself with Last-Event-ID. It stops for good (CLOSED) on
// any non-200 answer (a proxy's 502): then, as docs/clients.md recommends, open a new one from the
// last id (the harness counts how often that was needed: never, in every scenario it runs).
function eventSource() {
  const source = new EventSource(`${api}/events?access_token=${encodeURIComponent(token)}&last_event_id=${lastId ?? 0}`);
  for (const name of SSE_NAMES) source.addEventListener(name, (event) => data(event.data, event.type, event.lastEventId));
  source.onmessage = (event) => data(event.data, "message", event.lastEventId);
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      emit("closed");
      setTimeout(eventSource, 500);
    }
  };
}

// @microsoft/fetch-event-source, as its README shows: onopen checks the answer, onclose throws to
// retry, onerror returns the retry interval. It resumes with Last-Event-ID by itself.
class RetriableError extends Error {}

function fetchEventSourceClient() {
  fetchEventSource(`${api}/events?last_event_id=0`, {
    headers: { Authorization: `Bearer ${token}` },
    openWhenHidden: true,
    async onopen(response) {
      if (response.status !== 200) {
        emit("status", { status: response.status });
        throw new RetriableError(`status ${response.status}`);
      }
    },
    onmessage(event) {
      data(event.data, event.event || "message", event.id);
    },
    onclose() {
      throw new RetriableError("the server ended the stream");
    },
    onerror(error) {
      if (!(error instanceof RetriableError)) emit("error", { error: String(error) });
      return 500; // retry in 500 ms, forever
    },
  });
}

function webSocket() {
  const socket = new WebSocket(
    `${api.replace(/^http/, "ws")}/ws?access_token=${encodeURIComponent(token)}&last_event_id=${lastId ?? 0}`,
  );
  socket.onmessage = (event) => data(event.data);
  socket.onclose = (event) => {
    emit("ws_close", { code: event.code, reason: event.reason });
    setTimeout(webSocket, 500);
  };
}

const clients = { eventsource: eventSource, "fetch-event-source": fetchEventSourceClient, websocket: webSocket };
clients[params.get("client")]();
