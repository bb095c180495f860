// Compiled by `tsc -p tsconfig.json` (strict) in the package's tests: the declarations must accept
// the documented usage and reject the mistakes marked @ts-expect-error.
import {
  DropsyncClient,
  EVENT_TYPES,
  OLD_APP_RECONNECT,
  reasonText,
  type ConnectionState,
  type DropsyncEvent,
  type DropsyncMessage,
  type EventType,
  type StateInfo,
} from "../../dropsync.js";

// No DOM and no Node types: the declarations must stand alone, as in React Native.
declare function show(...values: unknown[]): void;

const client = new DropsyncClient({
  url: "https://shop.example.com",
  getToken: async ({ refresh }) => (refresh ? "fresh" : "cached"),
  transport: "ws",
  reconnect: OLD_APP_RECONNECT,
  onResync: (data) => show(data.latest_id.toFixed(0)),
  onError: ({ code, message }) => show(code, message),
});

const off = client.on("product_updated", (event) => {
  const changed: string[] = event.data.changed;
  const price: string = event.data.price;
  const id: number = event.id;
  show(changed, price, id);
});
off();

client.on("product_stock_changed", (event) => {
  const fresh: number = event.data.new;
  // @ts-expect-error stock events carry product_id, not id
  show(event.data.id, fresh);
});

client.on("order_status_changed", (event) => {
  // @ts-expect-error an order status is one of the five names
  const wrong: typeof event.data.new = "lost";
  show(wrong);
});

client.on("system_notification", (event) => show(event.data.level, event.data.title));
client.on("connected", (message) => show(message.data.heartbeat_s, message.data.transport));
client.on("error", (message) => show(message.data.code));

client.on("*", (message: DropsyncMessage) => {
  if ("id" in message) {
    const recorded: DropsyncEvent = message;
    if (recorded.type === "order_created") {
      show(recorded.data.customer.name, recorded.data.items.length);
    }
  }
});

client.onState((state: ConnectionState, info: StateInfo) => {
  if (state === "offline" && info.reason) {
    show(reasonText(info.reason), info.retryInMs ?? 0, info.gaveUp === true);
  }
});

const types: readonly EventType[] = EVENT_TYPES;
show(types.length, client.start().state, client.lastEventId);
client.reconnect();
client.wake(1000);
client.stop();

// @ts-expect-error transport is "auto", "sse" or "ws"
new DropsyncClient({ transport: "socket.io" });
