// What every Node driver prints: one JSON object a line on stdout (see report.py for the kinds).
export class Reporter {
  constructor() {
    this.lastId = null;
  }

  emit(kind, fields = {}) {
    process.stdout.write(JSON.stringify({ kind, ...fields }) + "\n");
  }

  data(data, sseEvent = null, sseId = null) {
    if (data === "" || data === undefined || data === null) {
      this.emit("empty", { sse_event: sseEvent });
      return;
    }
    const envelope = JSON.parse(data);
    if (typeof envelope.id === "number") {
      this.lastId = envelope.id;
      this.emit("event", { id: envelope.id, type: envelope.type, sse_event: sseEvent, sse_id: sseId });
    } else {
      this.emit("message", { type: envelope.type, code: (envelope.data || {}).code ?? null, sse_event: sseEvent });
    }
  }
}

// The SSE event names a client must listen to (EventSource reports only the names it listens to).
export const SSE_NAMES = [
  "connected", "resync_required", "stream_error",
  "product_added", "product_updated", "product_deleted", "product_stock_changed", "product_price_changed",
  "product_synced", "seller_added", "seller_updated", "seller_deleted", "seller_products_fetched",
  "order_created", "order_updated", "order_status_changed", "order_processed", "stock_sync_started",
  "stock_sync_completed", "stock_low", "stock_out", "settings_updated", "system_notification",
];
