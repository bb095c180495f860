// npm `eventsource` 2.x (the CommonJS generation many apps still pin), as its README uses it:
// `headers` in the options; it reconnects by itself with Last-Event-ID.
// Usage: node eventsource2.cjs URL TOKEN
const EventSource = require("eventsource2");

const [base, token] = process.argv.slice(2);
let lastId = null;
const emit = (kind, fields = {}) => process.stdout.write(JSON.stringify({ kind, ...fields }) + "\n");
const NAMES = [
  "connected", "resync_required", "stream_error",
  "product_added", "product_updated", "product_deleted", "product_stock_changed", "product_price_changed",
  "product_synced", "seller_added", "seller_updated", "seller_deleted", "seller_products_fetched",
  "order_created", "order_updated", "order_status_changed", "order_processed", "stock_sync_started",
  "stock_sync_completed", "stock_low", "stock_out", "settings_updated", "system_notification",
];

function data(text, sseEvent, sseId) {
  if (!text) return emit("empty", { sse_event: sseEvent });
  const envelope = JSON.parse(text);
  if (typeof envelope.id === "number") {
    lastId = envelope.id;
    emit("event", { id: envelope.id, type: envelope.type, sse_event: sseEvent, sse_id: sseId });
  } else {
    emit("message", { type: envelope.type, code: (envelope.data || {}).code ?? null, sse_event: sseEvent });
  }
}

function open() {
  const source = new EventSource(`${base}/events?last_event_id=${lastId ?? 0}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  for (const name of NAMES) source.addEventListener(name, (event) => data(event.data, event.type, event.lastEventId));
  source.onmessage = (event) => data(event.data, "message", event.lastEventId);
  source.onerror = (event) => {
    if (event && event.status) emit("status", { status: event.status });
    if (source.readyState === EventSource.CLOSED) {
      emit("closed");
      setTimeout(open, 500);
    }
  };
}

open();
