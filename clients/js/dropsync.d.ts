/**
 * Types of the dropsync real-time client (`dropsync.js`) and of every message it delivers.
 *
 * The event list and each payload are those of docs/realtime.md ("The events"); a payload that is
 * "the resource as GET returns it" is the resource's interface below.
 */

// ---- resources, as GET returns them -----------------------------------------------------------

/** A decimal amount as a string with two places, e.g. "12.99". */
export type Money = string;
/** An ISO 8601 time in UTC, e.g. "2026-12-02T10:15:00.000Z". */
export type IsoTime = string;

export type ProductStatus = "active" | "draft" | "archived";
export type OrderStatus = "pending" | "processing" | "shipped" | "delivered" | "cancelled";

export interface Product {
  id: number;
  seller_id: number | null;
  sku: string;
  name: string;
  description: string;
  cost_price: Money | null;
  price: Money;
  currency: string;
  stock: number;
  /** The product's own threshold; null: the user's `low_stock_threshold` setting. */
  low_stock_threshold: number | null;
  status: ProductStatus;
  shopify_id: string | null;
  synced_at: IsoTime | null;
  /** Goes up by one with every change; send it back as `If-Match: "v<version>"`. */
  version: number;
  created_at: IsoTime;
  updated_at: IsoTime;
}

export interface Seller {
  id: number;
  name: string;
  email: string | null;
  feed_url: string | null;
  feed_format: "json" | "csv" | null;
  notes: string | null;
  version: number;
  created_at: IsoTime;
  updated_at: IsoTime;
}

export interface OrderItem {
  product_id: number | null;
  sku: string;
  quantity: number;
  unit_price: Money;
}

export interface Order {
  id: number;
  external_id: string;
  customer: { name: string; email: string | null; address: string };
  items: OrderItem[];
  total: Money;
  currency: string;
  status: OrderStatus;
  carrier: string | null;
  tracking_number: string | null;
  version: number;
  created_at: IsoTime;
  updated_at: IsoTime;
}

export interface Settings {
  low_stock_threshold: number;
  default_markup_percent: Money;
  currency: string;
  /** The store token is write-only: never in a response or an event. */
  store: { shopify_domain: string | null; connected: boolean };
  updated_at: IsoTime;
}

// ---- event payloads -----------------------------------------------------------------------------

export interface StockAlert {
  product_id: number;
  sku: string;
  stock: number;
  threshold: number;
}

/** The `data` of each recorded event type. */
export interface EventData {
  product_added: Product;
  product_updated: Product & { changed: string[] };
  product_deleted: { id: number; sku: string };
  product_stock_changed: { product_id: number; sku: string; old: number; new: number };
  product_price_changed: { product_id: number; sku: string; old: Money; new: Money };
  product_synced: { product_id: number; shopify_id: string; synced_at: IsoTime };
  seller_added: Seller;
  seller_updated: Seller;
  seller_deleted: { id: number; name: string };
  seller_products_fetched: { seller_id: number; added: number; updated: number; total: number };
  order_created: Order;
  order_updated: Order;
  order_status_changed: { order_id: number; old: OrderStatus; new: OrderStatus };
  order_processed: Order;
  /** A bulk stock update (`total`) or a feed import (`seller_id`, `total`) starts. */
  stock_sync_started: { job_id: string; total: number; seller_id?: number };
  /** ... and ends: a bulk stock update counts `changed`/`unchanged`, a feed import `added`/`updated`/`unchanged`. */
  stock_sync_completed: {
    job_id: string;
    total: number;
    seller_id?: number;
    changed?: number;
    added?: number;
    updated?: number;
    unchanged: number;
  };
  stock_low: StockAlert;
  stock_out: StockAlert;
  settings_updated: Settings;
  system_notification: { level: "info" | "success" | "warning" | "error"; title: string; message: string };
}

export type EventType = keyof EventData;

/** A recorded event: `id` is the user's own sequence (1, 2, 3 ... no gaps), `timestamp` epoch ms. */
export type DropsyncEvent<T extends EventType = EventType> = {
  [K in T]: { id: number; type: K; data: EventData[K]; timestamp: number; user_id: number };
}[T];

/** The `data` of each connection message (not recorded: no `id`). */
export interface ConnectionData {
  connected: { connection_id: string; transport: "sse" | "ws"; heartbeat_s: number; last_event_id: number };
  resync_required: { last_event_id: number; oldest_id: number | null; latest_id: number; message: string };
  error: {
    code: "server_restart" | "slow_consumer" | "reconnect" | "unauthorized" | "bad_request" | "bad_message" | (string & {});
    message: string;
  };
}

export type ConnectionType = keyof ConnectionData;

export type ConnectionMessage<T extends ConnectionType = ConnectionType> = {
  [K in T]: { type: K; data: ConnectionData[K]; timestamp?: number };
}[T];

/** Anything a `"*"` listener receives. */
export type DropsyncMessage = DropsyncEvent | ConnectionMessage;

// ---- the client ---------------------------------------------------------------------------------

export type ConnectionState = "connecting" | "live" | "offline";
export type Role = "solo" | "leader" | "follower";
export type Transport = "sse" | "ws";

/** Why a connection ended or was not made; `reasonText(reason)` gives readable text. */
export type Reason =
  | "server_restart"
  | "slow_consumer"
  | "reconnect"
  | "stream_ended"
  | "connection_lost"
  | "closed"
  | "connect_failed"
  | "connect_timeout"
  | "heartbeat_timeout"
  | "send_failed"
  | "browser_offline"
  | "open_failed"
  | "token"
  | "token_refresh"
  | "unauthorized"
  | "bad_request"
  | "bad_config"
  | "stopped";

export interface StateInfo {
  /** Why the client is offline (see `Reason`). */
  reason?: Reason | (string & {});
  /** The WebSocket close code, when the server closed it. */
  closeCode?: number;
  /** Reconnection attempts made in a row so far. */
  attempt?: number;
  /** The wait before the next attempt. */
  retryInMs?: number;
  /** No more attempts: `maxAttempts` reached, or refused for good (`reason` says which). */
  gaveUp?: boolean;
  /** With a refusal: the server's or the client's message. */
  message?: string;
  transport?: Transport;
  role?: Role;
}

export interface ReconnectOptions {
  /** Shortest wait between attempts (1000 ms). */
  floorMs?: number;
  /** Longest wait between attempts (30000 ms). */
  ceilingMs?: number;
  /** Growth of the wait per attempt (2). */
  factor?: number;
  /** Full jitter: a random wait between the floor and the exponential cap (true). */
  jitter?: boolean;
  /** Attempts in a row before giving up (Infinity). */
  maxAttempts?: number;
}

export interface DropsyncError {
  code: "unauthorized" | "bad_request" | "bad_config" | (string & {});
  message: string;
}

export interface WebSocketLike {
  readonly readyState?: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface EventSourceLike {
  addEventListener(type: string, listener: (event: { data?: unknown }) => void): void;
  onerror: ((event: { data?: unknown }) => void) | null;
  close(): void;
}

export interface DropsyncClientOptions {
  /** The server's base URL, e.g. "https://shop.example.com". Default: the page's origin (required outside a browser). */
  url?: string;
  /** The access token. */
  token?: string;
  /**
   * Asked before each attempt instead of `token`. `refresh` is true when the server has just refused
   * the previous token: return a fresh one (the client tries once with it, then calls `onError`).
   */
  getToken?: (info: { refresh: boolean }) => string | Promise<string>;
  /** "auto" (default): EventSource where tabs can share it, else WebSocket. */
  transport?: "auto" | Transport;
  /** Receive only these event types (connection messages always come). */
  types?: readonly (EventType | (string & {}))[];
  /** Event names to listen to over SSE besides the known ones (a newer server's types). */
  extraTypes?: readonly string[];
  /** Resume after this id; null/undefined: from now. */
  lastEventId?: number | null;
  reconnect?: ReconnectOptions;
  /** WebSocket ping interval (default: the server's `heartbeat_s`). */
  heartbeatMs?: number;
  /** An attempt without `connected` by then has failed (15000 ms). */
  connectTimeoutMs?: number;
  /** Share one connection between the tabs of a browser (default: yes, unless `lastEventId` is given). */
  share?: boolean;
  /** Tabs with the same key share (default: URL + a fingerprint of the token). */
  shareKey?: string;
  /** `resync_required`: your resume point is gone; reload your lists. */
  onResync?: (data: ConnectionData["resync_required"]) => void;
  /** The client stopped for good: a refused token, bad parameters, or a setup mistake. */
  onError?: (error: DropsyncError) => void;
  /** A WebSocket implementation (default: the global one). */
  WebSocket?: new (url: string) => WebSocketLike;
  /** An EventSource implementation (default: the global one). */
  EventSource?: new (url: string) => EventSourceLike;
}

export type Unsubscribe = () => void;

export declare class DropsyncClient {
  constructor(options?: DropsyncClientOptions);
  readonly options: DropsyncClientOptions;
  /** The server's base URL, without a trailing slash. */
  readonly url: string;
  /** The last recorded event id delivered (where a reconnection resumes). Settable to force a resume point. */
  lastEventId: number | null;
  readonly state: ConnectionState;
  readonly role: Role;
  readonly transport: Transport | null;
  readonly running: boolean;

  /** Call `listener` for each event of `type`. Returns a function that removes it. */
  on<T extends EventType>(type: T, listener: (event: DropsyncEvent<T>) => void): Unsubscribe;
  on<T extends ConnectionType>(type: T, listener: (message: ConnectionMessage<T>) => void): Unsubscribe;
  on(type: "*", listener: (message: DropsyncMessage) => void): Unsubscribe;
  on(type: string, listener: (message: DropsyncMessage) => void): Unsubscribe;
  /** Remove `listener` from `type`; without it, every listener of `type`. */
  off(type: string, listener?: (message: never) => void): void;
  /** Call `listener(state, info)` on each change of state. */
  onState(listener: (state: ConnectionState, info: StateInfo) => void): Unsubscribe;
  /** Connect (or join the tab that is connected). */
  start(): this;
  /** Close the connection and stop reconnecting. */
  stop(): void;
  /** Reconnect now, forgetting the back-off (also after the client gave up). */
  reconnect(): void;
  /** The app came back (network up, app active): reconnect at once unless live. */
  wake(absentMs?: number): void;
}

export declare const EVENT_TYPES: readonly EventType[];
export declare const CONNECTION_TYPES: readonly ConnectionType[];
/** The SSE event name under which the server sends an `error` envelope ("stream_error"). */
export declare const SSE_ERROR_EVENT: string;
export declare const DEFAULT_RECONNECT: Readonly<Required<ReconnectOptions>>;
/** The old app's behaviour: 5 tries, 3 s apart, then offline with `gaveUp`. */
export declare const OLD_APP_RECONNECT: Readonly<ReconnectOptions>;
export declare const REASONS: Readonly<Record<Reason, string>>;
/** A reason or error code as readable text ("the server is restarting"). */
export declare function reasonText(code: string | null | undefined): string;
/** The wait before reconnection attempt `attempt` (0-based), in milliseconds. */
export declare function backoffDelay(attempt: number, options?: ReconnectOptions, random?: () => number): number;
